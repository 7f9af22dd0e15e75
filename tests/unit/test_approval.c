/*
 * test_approval.c - ClawShield approval artifacts (approval.c, SPEC 4).
 *
 * Proves: every denial has SPEC 4's code and text; the checks run in SPEC
 * 4's order (each order test pairs two faults and expects the earlier one);
 * the signature's base64 is strict; expiry is exact to the microsecond and
 * skipped only in replay mode; issued_at skew is exact at +300 s; timezone
 * offsets; key rotation; the time grammar and Python's isoformat(); and
 * artifacts minted by tests/tools/clawshield.py (an independent Python
 * implementation of ClawShield) verify here.
 *
 * Fixed instants were computed with python3's datetime, e.g.
 *   NOW = 2026-11-25T19:41:28.123456 (naive UTC) = 1795635688123456 us.
 * Most artifacts here are signed by the test itself (sign_fields), which
 * signs exactly SPEC 4's concatenation, so each case can set any field.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <sodium.h>

#include "approval.h"
#include "cli.h"
#include "keys.h"
#include "testutil.h"

#define NOW 1795635688123456LL
#define NOW_TEXT "2026-11-25T19:41:28.123456"
#define SEC 1000000LL

/* json.dumps({"action":"echo","payload":{}}, sort_keys=True,
 * separators=(",", ":")) hashed with sha256, by python3. */
#define HASH_ECHO_EMPTY "4d9b97d6e60f36b9c5d3107933b358b55c858aa5814c742b4783ce871e2ca981"
#define HASH_OTHER "0000000000000000000000000000000000000000000000000000000000000000"

static keys_private K1, K2, K3;
static keys_public_set SET1;  /* K1 */
static keys_public_set SET21; /* K2, K1: rotation */
static char tmpdir[256];

static const char *SOURCE_DIR(void)
{
    const char *s = getenv("OE_SOURCE_DIR");
    return s ? s : ".";
}

/* ---- helpers ----------------------------------------------------------- */

typedef struct fields {
    const char *id, *tenant, *hash, *issued, *expires;
} fields;

static fields good_fields(void)
{
    fields f = {"6fb611a6-bc0a-4202-9b87-62b5f8e04923", "acme", HASH_ECHO_EMPTY, NOW_TEXT,
                "2026-11-25T19:46:28.123456"};
    return f;
}

/* Base64 of an Ed25519 signature by key over the concatenation of the five
 * values given with explicit lengths (so U+0000 can be inside). */
static void sign_bytes(const keys_private *key, const char *const v[5], const size_t len[5],
                       char out[89])
{
    unsigned char msg[4096], sig[64];
    size_t n = 0, i;

    for (i = 0; i < 5; i++) {
        memcpy(msg + n, v[i], len[i]);
        n += len[i];
    }
    crypto_sign_detached(sig, NULL, msg, n, key->sk);
    sodium_bin2base64(out, 89, sig, 64, sodium_base64_VARIANT_ORIGINAL);
}

static json_t *artifact_with_sig(const fields *f, const char *sig)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "approval_id", f->id, "tenant_id", f->tenant,
                     "action_hash", f->hash, "issued_at", f->issued, "expires_at", f->expires,
                     "signature", sig);
}

static json_t *sign_fields(const keys_private *key, const fields *f)
{
    const char *v[5] = {f->id, f->tenant, f->hash, f->issued, f->expires};
    size_t len[5], i;
    char sig[89];

    for (i = 0; i < 5; i++)
        len[i] = strlen(v[i]);
    sign_bytes(key, v, len, sig);
    return artifact_with_sig(f, sig);
}

static json_t *good_artifact(void)
{
    fields f = good_fields();
    return sign_fields(&K1, &f);
}

static oe_error last_err;
static approval_verified last_out;

/* Runs approval_check and compares the code (NULL = pass) and, when given,
 * the exact detail text. */
static int expect(const json_t *art, const char *hash, const keys_public_set *keys,
                  const char *tenant, int64_t now, approval_mode mode, const char *code,
                  const char *detail)
{
    approval_policy pol = {keys, tenant};
    int r, ok;

    approval_verified_free(&last_out);
    r = approval_check(art, hash, &pol, now, mode, &last_out, &last_err);
    if (code == NULL)
        ok = r == 0 && last_err.code == NULL;
    else
        ok = r == -1 && last_err.status == 403 && last_err.code != NULL &&
             strcmp(last_err.code, code) == 0 &&
             (detail == NULL || (last_err.detail_len == strlen(detail) &&
                                 memcmp(last_err.detail, detail, last_err.detail_len) == 0));
    if (!ok)
        fprintf(stderr, "  want %s%s%s, got r=%d %d %s \"%s\"\n", code ? code : "pass",
                detail ? " " : "", detail ? detail : "", r, last_err.status,
                last_err.code ? last_err.code : "-", last_err.detail);
    return ok;
}

/* The common case: key K1, tenant acme, full mode, at NOW. */
static int expect1(const json_t *art, const char *code, const char *detail)
{
    return expect(art, HASH_ECHO_EMPTY, &SET1, "acme", NOW, APPROVAL_FULL, code, detail);
}

static int out_is_empty(void)
{
    static const unsigned char zero[32];
    return last_out.signature_ok == 0 && last_out.approval_id == NULL &&
           memcmp(last_out.message_sha256, zero, 32) == 0;
}

/* ---- SPEC 4 texts, one check at a time ---------------------------------- */

static void test_missing_artifact_is_approval_required(void)
{
    json_t *null = json_null();

    CHECK(expect1(NULL, "approval_required", "ClawShield mode requires an approval artifact"));
    CHECK(expect1(null, "approval_required", "ClawShield mode requires an approval artifact"));
    json_decref(null);
}

static void test_no_key_is_key_not_configured_even_for_garbage(void)
{
    keys_public_set empty = {0};
    json_t *art = json_object();

    CHECK(expect(art, HASH_ECHO_EMPTY, NULL, "acme", NOW, APPROVAL_FULL, "key_not_configured",
                 "CLAWSHIELD_PUBLIC_KEY not configured"));
    CHECK(expect(art, HASH_ECHO_EMPTY, &empty, "acme", NOW, APPROVAL_FULL, "key_not_configured",
                 "CLAWSHIELD_PUBLIC_KEY not configured"));
    /* ...but a missing artifact is reported first. */
    CHECK(
        expect(NULL, HASH_ECHO_EMPTY, NULL, "acme", NOW, APPROVAL_FULL, "approval_required", NULL));
    json_decref(art);
}

static void test_empty_object_and_each_missing_field_is_invalid_artifact(void)
{
    static const char *names[] = {"approval_id", "tenant_id",  "action_hash",
                                  "issued_at",   "expires_at", "signature"};
    json_t *art = json_object(), *full;
    char detail[128];
    size_t i;

    CHECK(
        expect1(art, "invalid_artifact", "Invalid approval artifact: missing field 'approval_id'"));
    json_decref(art);
    for (i = 0; i < 6; i++) {
        full = good_artifact();
        json_object_del(full, names[i]);
        snprintf(detail, sizeof(detail), "Invalid approval artifact: missing field '%s'", names[i]);
        CHECK(expect1(full, "invalid_artifact", detail));
        CHECK(out_is_empty());
        json_object_set_new(full, names[i], json_integer(1));
        snprintf(detail, sizeof(detail), "Invalid approval artifact: field '%s' must be a string",
                 names[i]);
        CHECK(expect1(full, "invalid_artifact", detail));
        json_object_set_new(full, names[i], json_null());
        CHECK(expect1(full, "invalid_artifact", detail));
        json_decref(full);
    }
    art = json_string("not an object");
    CHECK(expect1(art, "invalid_artifact", NULL));
    json_decref(art);
    art = json_array();
    CHECK(expect1(art, "invalid_artifact", NULL));
    json_decref(art);
}

static void test_valid_artifact_passes_and_fills_out(void)
{
    json_t *art = good_artifact();
    fields f = good_fields();
    unsigned char want[32];
    char msg[512];

    CHECK(expect1(art, NULL, NULL));
    CHECK_INT(last_out.signature_ok, 1);
    CHECK_STR(last_out.approval_id, f.id);
    snprintf(msg, sizeof(msg), "%s%s%s%s%s", f.id, f.tenant, f.hash, f.issued, f.expires);
    crypto_hash_sha256(want, (const unsigned char *)msg, strlen(msg));
    CHECK_MEM(last_out.message_sha256, want, 32);
    /* Unknown extra fields are ignored, as the reference's model did. */
    json_object_set_new(art, "note", json_string("hello"));
    CHECK(expect1(art, NULL, NULL));
    /* No tenant policy (NULL or ""): any tenant. */
    CHECK(expect(art, HASH_ECHO_EMPTY, &SET1, NULL, NOW, APPROVAL_FULL, NULL, NULL));
    CHECK(expect(art, HASH_ECHO_EMPTY, &SET1, "", NOW, APPROVAL_FULL, NULL, NULL));
    json_decref(art);
}

static void test_any_changed_field_breaks_the_signature(void)
{
    static const char *names[] = {"approval_id", "tenant_id", "action_hash", "issued_at",
                                  "expires_at"};
    size_t i;

    for (i = 0; i < 5; i++) {
        json_t *art = good_artifact();
        char *v = strdup(json_string_value(json_object_get(art, names[i])));
        v[strlen(v) - 1] ^= 1; /* still a plausible value, one bit off */
        json_object_set_new(art, names[i], json_string(v));
        CHECK(expect1(art, "invalid_signature",
                      "Invalid signature: approval artifact is not authentic"));
        CHECK(out_is_empty());
        free(v);
        json_decref(art);
    }
    {
        /* Signed by a key that is not configured. */
        fields f = good_fields();
        json_t *art = sign_fields(&K3, &f);
        CHECK(expect1(art, "invalid_signature", NULL));
        json_decref(art);
    }
}

static void test_signature_base64_must_be_canonical_64_bytes(void)
{
    json_t *art = good_artifact();
    const char *sig = json_string_value(json_object_get(art, "signature"));
    char good[89], bad[200];
    unsigned char raw[66], check[66];
    size_t n;
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    snprintf(good, sizeof(good), "%s", sig);
    CHECK_INT(strlen(good), 88);
    CHECK(good[86] == '=' && good[87] == '=');

#define TRY_SIG(s)                                                                                 \
    do {                                                                                           \
        json_object_set_new(art, "signature", json_string(s));                                     \
        CHECK(expect1(art, "invalid_signature",                                                    \
                      "Invalid signature: approval artifact is not authentic"));                   \
    } while (0)

    /* Padding removed, one '=' removed, one added. */
    snprintf(bad, sizeof(bad), "%.86s", good);
    TRY_SIG(bad);
    snprintf(bad, sizeof(bad), "%.87s", good);
    TRY_SIG(bad);
    snprintf(bad, sizeof(bad), "%s=", good);
    TRY_SIG(bad);
    /* Whitespace: trailing newline, a space inside, a line break inside. */
    snprintf(bad, sizeof(bad), "%s\n", good);
    TRY_SIG(bad);
    snprintf(bad, sizeof(bad), "%.40s %s", good, good + 40);
    TRY_SIG(bad);
    snprintf(bad, sizeof(bad), "%.40s\r\n%s", good, good + 40);
    TRY_SIG(bad);
    /* Non-zero unused bits: char 85 carries 2 data bits and 4 unused bits.
     * Setting an unused bit decodes to the same 64 bytes in a lenient
     * decoder (proved below with the ignore-less, bits-checking decoder
     * failing while the bytes would be equal). */
    snprintf(bad, sizeof(bad), "%s", good);
    {
        const char *pos = strchr(alphabet, good[85]);
        int v = (int)(pos - alphabet);
        bad[85] = alphabet[(v & 0x30) | 0x01];
    }
    CHECK(strcmp(bad, good) != 0);
    CHECK(sodium_base642bin(raw, sizeof(raw), bad, 88, NULL, &n, NULL,
                            sodium_base64_VARIANT_ORIGINAL) != 0);
    TRY_SIG(bad);
    /* 63 and 65 bytes. */
    sodium_base642bin(raw, sizeof(raw), good, 88, NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL);
    CHECK_INT(n, 64);
    memcpy(check, raw, 64);
    sodium_bin2base64(bad, sizeof(bad), raw, 63, sodium_base64_VARIANT_ORIGINAL);
    TRY_SIG(bad);
    raw[64] = 0;
    sodium_bin2base64(bad, sizeof(bad), raw, 65, sodium_base64_VARIANT_ORIGINAL);
    TRY_SIG(bad);
    /* URL-safe alphabet and unpadded variants of the same bytes. */
    sodium_bin2base64(bad, sizeof(bad), check, 64, sodium_base64_VARIANT_URLSAFE);
    if (strcmp(bad, good) != 0)
        TRY_SIG(bad);
    sodium_bin2base64(bad, sizeof(bad), check, 64, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    TRY_SIG(bad);
    /* Hex instead of base64, and the empty string. */
    sodium_bin2hex(bad, sizeof(bad), check, 64);
    TRY_SIG(bad);
    TRY_SIG("");
    /* A NUL inside the value (JSON "\u0000"). */
    {
        char withnul[88];
        memcpy(withnul, good, 88);
        withnul[10] = '\0';
        json_object_set_new(art, "signature", json_stringn(withnul, 88));
        CHECK(expect1(art, "invalid_signature", NULL));
    }
    /* And the original still passes: the cases above failed for their fault. */
    json_object_set_new(art, "signature", json_string(good));
    CHECK(expect1(art, NULL, NULL));
#undef TRY_SIG
    json_decref(art);
}

/* ---- order of checks ---------------------------------------------------- */

static void test_bad_signature_wins_over_wrong_tenant(void)
{
    fields f = good_fields();
    json_t *art;

    f.tenant = "evil";
    art = sign_fields(&K1, &f);
    json_object_set_new(art, "approval_id", json_string("tampered"));
    CHECK(expect1(art, "invalid_signature", NULL));
    CHECK(out_is_empty());
    json_decref(art);
}

static void test_wrong_tenant_wins_over_wrong_hash(void)
{
    fields f = good_fields();
    json_t *art;

    f.tenant = "evil";
    f.hash = HASH_OTHER;
    art = sign_fields(&K1, &f);
    CHECK(expect1(art, "tenant_mismatch", "Tenant mismatch: expected acme, got evil"));
    /* Denied, but genuinely signed: the receipt may name the approval. */
    CHECK_INT(last_out.signature_ok, 1);
    CHECK_STR(last_out.approval_id, f.id);
    json_decref(art);
}

static void test_wrong_hash_wins_over_expiry(void)
{
    fields f = good_fields();
    json_t *art;

    f.hash = HASH_OTHER;
    f.expires = "2020-01-01T00:00:00";
    art = sign_fields(&K1, &f);
    CHECK(expect1(art, "action_hash_mismatch",
                  "Action hash mismatch: approval does not match this request"));
    json_decref(art);
}

static void test_expiry_wins_over_issued_at(void)
{
    fields f = good_fields();
    json_t *art;

    f.expires = "2020-01-01T00:00:00";
    f.issued = "2099-01-01T00:00:00";
    art = sign_fields(&K1, &f);
    CHECK(expect1(art, "approval_expired", "Approval artifact expired"));
    json_decref(art);
    f.expires = "";
    art = sign_fields(&K1, &f);
    CHECK(expect1(art, "expires_at_missing", NULL));
    json_decref(art);
}

static void test_action_hash_compare_is_exact(void)
{
    fields f = good_fields();
    char upper[65];
    json_t *art;
    size_t i;

    for (i = 0; i < 64; i++)
        upper[i] = (char)(HASH_ECHO_EMPTY[i] >= 'a' ? HASH_ECHO_EMPTY[i] - 32 : HASH_ECHO_EMPTY[i]);
    upper[64] = '\0';
    f.hash = upper;
    art = sign_fields(&K1, &f);
    CHECK(expect1(art, "action_hash_mismatch", NULL));
    json_decref(art);
    f.hash = "4d9b97d6e60f36b9";
    art = sign_fields(&K1, &f);
    CHECK(expect1(art, "action_hash_mismatch", NULL));
    json_decref(art);
    f.hash = "";
    art = sign_fields(&K1, &f);
    CHECK(expect1(art, "action_hash_mismatch", NULL));
    json_decref(art);
}

/* ---- time --------------------------------------------------------------- */

static void test_expires_at_missing_invalid_expired(void)
{
    fields f = good_fields();
    json_t *art;

    f.expires = "";
    art = sign_fields(&K1, &f);
    CHECK(expect1(art, "expires_at_missing", "Missing expires_at in approval artifact"));
    json_decref(art);
    f.expires = "tomorrow";
    art = sign_fields(&K1, &f);
    CHECK(expect1(art, "expires_at_invalid", "Invalid expires_at timestamp"));
    json_decref(art);
    f.expires = "2026-11-25 19:46:28"; /* space separator: not our grammar */
    art = sign_fields(&K1, &f);
    CHECK(expect1(art, "expires_at_invalid", NULL));
    json_decref(art);
    f.expires = "2026-11-25T19:41:28.123455";
    art = sign_fields(&K1, &f);
    CHECK(expect1(art, "approval_expired", "Approval artifact expired"));
    json_decref(art);
}

static void test_expiry_is_exact_to_the_microsecond(void)
{
    fields f = good_fields();
    json_t *art;

    f.expires = NOW_TEXT;
    art = sign_fields(&K1, &f);
    CHECK(expect(art, HASH_ECHO_EMPTY, &SET1, "acme", NOW, APPROVAL_FULL, NULL, NULL));
    CHECK(expect(art, HASH_ECHO_EMPTY, &SET1, "acme", NOW + 1, APPROVAL_FULL, "approval_expired",
                 "Approval artifact expired"));
    json_decref(art);
}

static void test_replay_mode_skips_only_the_expiry_comparison(void)
{
    fields f = good_fields();
    json_t *art;

    f.issued = "2026-11-25T19:00:00";
    f.expires = "2026-11-25T19:05:00";
    art = sign_fields(&K1, &f);
    CHECK(
        expect(art, HASH_ECHO_EMPTY, &SET1, "acme", NOW, APPROVAL_FULL, "approval_expired", NULL));
    CHECK(expect(art, HASH_ECHO_EMPTY, &SET1, "acme", NOW, APPROVAL_REPLAY, NULL, NULL));
    /* Everything else still applies in replay mode. */
    CHECK(
        expect(art, HASH_OTHER, &SET1, "acme", NOW, APPROVAL_REPLAY, "action_hash_mismatch", NULL));
    CHECK(expect(art, HASH_ECHO_EMPTY, &SET1, "other", NOW, APPROVAL_REPLAY, "tenant_mismatch",
                 NULL));
    json_decref(art);
    f.expires = "soon";
    art = sign_fields(&K1, &f);
    CHECK(expect(art, HASH_ECHO_EMPTY, &SET1, "acme", NOW, APPROVAL_REPLAY, "expires_at_invalid",
                 NULL));
    json_decref(art);
    f.expires = "2099-01-01T00:00:00";
    f.issued = "2098-01-01T00:00:00";
    art = sign_fields(&K1, &f);
    CHECK(expect(art, HASH_ECHO_EMPTY, &SET1, "acme", NOW, APPROVAL_REPLAY,
                 "approval_not_yet_valid", NULL));
    json_decref(art);
}

static void test_timezone_offsets(void)
{
    static const char *same_instant[] = {
        "2026-11-25T21:41:28.123456+02:00", "2026-11-25T14:11:28.123456-05:30",
        "2026-11-25T19:41:28.123456Z", "2026-11-25T19:41:28.123456+00:00",
        "2026-11-25T19:41:28.123456-00:00"};
    fields f = good_fields();
    size_t i;

    for (i = 0; i < sizeof(same_instant) / sizeof(same_instant[0]); i++) {
        json_t *art;
        f.expires = same_instant[i];
        art = sign_fields(&K1, &f);
        CHECK(expect(art, HASH_ECHO_EMPTY, &SET1, "acme", NOW, APPROVAL_FULL, NULL, NULL));
        CHECK(expect(art, HASH_ECHO_EMPTY, &SET1, "acme", NOW + 1, APPROVAL_FULL,
                     "approval_expired", NULL));
        json_decref(art);
    }
}

static void test_issued_at_skew_boundary_is_300_seconds(void)
{
    fields f = good_fields();
    json_t *art;

    f.expires = "2026-11-25T20:00:00";
    f.issued = "2026-11-25T19:46:28.123456"; /* NOW + 300 s */
    art = sign_fields(&K1, &f);
    CHECK(expect1(art, NULL, NULL));
    CHECK(expect(art, HASH_ECHO_EMPTY, &SET1, "acme", NOW - 1, APPROVAL_FULL,
                 "approval_not_yet_valid", "Approval artifact issued_at is in the future"));
    json_decref(art);
    f.issued = "2026-11-25T19:46:28.123457"; /* NOW + 300 s + 1 us */
    art = sign_fields(&K1, &f);
    CHECK(expect1(art, "approval_not_yet_valid", "Approval artifact issued_at is in the future"));
    json_decref(art);
    /* The same instant written with an offset. */
    f.issued = "2026-11-25T20:46:28.123457+01:00";
    art = sign_fields(&K1, &f);
    CHECK(expect1(art, "approval_not_yet_valid", NULL));
    json_decref(art);
    /* Long in the past is fine: only expires_at bounds the end. */
    f.issued = "2001-01-01T00:00:00";
    art = sign_fields(&K1, &f);
    CHECK(expect1(art, NULL, NULL));
    json_decref(art);
}

static void test_unparsable_issued_at_is_invalid_artifact(void)
{
    fields f = good_fields();
    json_t *art;

    f.issued = "yesterday";
    art = sign_fields(&K1, &f);
    CHECK(expect1(art, "invalid_artifact", "Invalid issued_at timestamp"));
    CHECK_INT(last_out.signature_ok, 1);
    json_decref(art);
    f.issued = "";
    art = sign_fields(&K1, &f);
    CHECK(expect1(art, "invalid_artifact", "Invalid issued_at timestamp"));
    json_decref(art);
}

static void test_time_grammar(void)
{
    static const struct {
        const char *s;
        long long us;
    } good[] = {
        /* python3: datetime.fromisoformat(s) as microseconds since the epoch */
        {"2026-11-25T19:41:28.123456", 1795635688123456LL},
        {"2026-11-25T19:41:28.1", 1795635688100000LL},
        {"2026-11-25T21:41:28.123456+02:00", 1795635688123456LL},
        {"2026-11-25T14:11:28.123456-05:30", 1795635688123456LL},
        {"2026-11-25T19:41:28.123456Z", 1795635688123456LL},
        {"2024-02-29T00:00:00", 1709164800000000LL},
        {"2000-02-29T12:00:00.5", 951825600500000LL},
        {"0001-01-01T00:00:00", -62135596800000000LL},
        {"9999-12-31T23:59:59.999999", 253402300799999999LL},
        {"1969-12-31T23:59:59.999999", -1LL},
        {"1970-01-01T00:00:00", 0LL},
        {"0001-01-01T00:00:00+23:59", -62135683140000000LL},
        {"9999-12-31T23:59:59.999999-23:59", 253402387139999999LL},
    };
    static const char *bad[] = {
        "",
        "2026-11-25",
        "2026-11-25T19:41",
        "2026-11-25T19:41:28.",
        "2026-11-25T19:41:28.1234567",
        "2026-11-25 19:41:28",
        "2026-11-25t19:41:28",
        "2026-11-25T19:41:28z",
        " 2026-11-25T19:41:28",
        "2026-11-25T19:41:28 ",
        "2026-11-25T19:41:28\n",
        "2026-1-25T19:41:28",
        "26-11-25T19:41:28",
        "+2026-11-25T19:41:28",
        "0000-01-01T00:00:00",
        "2026-00-10T00:00:00",
        "2026-13-10T00:00:00",
        "2026-02-29T00:00:00",
        "1900-02-29T00:00:00",
        "2026-04-31T00:00:00",
        "2026-11-00T00:00:00",
        "2026-11-25T24:00:00",
        "2026-11-25T23:60:00",
        "2026-11-25T23:59:60",
        "2026-11-25T19:41:28+24:00",
        "2026-11-25T19:41:28+23:60",
        "2026-11-25T19:41:28+0530",
        "2026-11-25T19:41:28+05",
        "2026-11-25T19:41:28+05:30:00",
        "2026-11-25T19:41:28Z+00:00",
        "2026-11-25T19:41:28.-1",
        "２０２６-11-25T19:41:28",
    };
    int64_t us;
    size_t i;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        us = 42;
        if (!CHECK_INT(approval_parse_time(good[i].s, strlen(good[i].s), &us), 0) ||
            !CHECK_INT(us, good[i].us))
            fprintf(stderr, "  time: %s\n", good[i].s);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (!CHECK_INT(approval_parse_time(bad[i], strlen(bad[i]), &us), -1))
            fprintf(stderr, "  time accepted: \"%s\"\n", bad[i]);
    /* Length, not NUL, ends the input. */
    CHECK_INT(approval_parse_time("2026-11-25T19:41:28\0garbage", 27, &us), -1);
    CHECK_INT(approval_parse_time("2026-11-25T19:41:28xyz", 19, &us), 0);
}

static void test_format_time_is_python_isoformat(void)
{
    char out[32];
    int64_t back;
    int i;

    approval_format_time(NOW, out);
    CHECK_STR(out, "2026-11-25T19:41:28.123456");
    approval_format_time(NOW - 123456, out);
    CHECK_STR(out, "2026-11-25T19:41:28"); /* isoformat omits .000000 */
    approval_format_time(NOW - 123455, out);
    CHECK_STR(out, "2026-11-25T19:41:28.000001");
    approval_format_time(0, out);
    CHECK_STR(out, "1970-01-01T00:00:00");
    approval_format_time(-1, out);
    CHECK_STR(out, "1969-12-31T23:59:59.999999");
    approval_format_time(951825600500000LL, out);
    CHECK_STR(out, "2000-02-29T12:00:00.500000");
    approval_format_time(253402300799999999LL, out);
    CHECK_STR(out, "9999-12-31T23:59:59.999999");
    approval_format_time(INT64_MAX, out); /* clamped to Python's range */
    CHECK_STR(out, "9999-12-31T23:59:59.999999");
    approval_format_time(INT64_MIN, out);
    CHECK_STR(out, "0001-01-01T00:00:00");
    /* Round trip over a spread of instants. */
    for (i = 0; i < 2000; i++) {
        int64_t t;
        randombytes_buf(&t, sizeof(t));
        t = (int64_t)((uint64_t)t % 253402300800000000ULL);
        approval_format_time(t, out);
        if (!CHECK_INT(approval_parse_time(out, strlen(out), &back), 0) || !CHECK_INT(back, t))
            break;
    }
}

/* ---- rotation, ambiguity, NUL -------------------------------------------- */

static void test_key_rotation_any_configured_key_verifies(void)
{
    fields f = good_fields();
    json_t *a1 = sign_fields(&K1, &f), *a2 = sign_fields(&K2, &f), *a3 = sign_fields(&K3, &f);

    CHECK(expect(a1, HASH_ECHO_EMPTY, &SET21, "acme", NOW, APPROVAL_FULL, NULL, NULL));
    CHECK(expect(a2, HASH_ECHO_EMPTY, &SET21, "acme", NOW, APPROVAL_FULL, NULL, NULL));
    CHECK(
        expect(a3, HASH_ECHO_EMPTY, &SET21, "acme", NOW, APPROVAL_FULL, "invalid_signature", NULL));
    CHECK(
        expect(a2, HASH_ECHO_EMPTY, &SET1, "acme", NOW, APPROVAL_FULL, "invalid_signature", NULL));
    json_decref(a1);
    json_decref(a2);
    json_decref(a3);
}

static void test_moving_characters_keep_signature_and_message_hash(void)
{
    fields f = good_fields();
    unsigned char first[32];
    const char *sig;
    json_t *a, *b;

    /* approval_id "ab" + tenant "c" and "a" + "bc" sign the same bytes. */
    f.id = "ab";
    f.tenant = "c";
    a = sign_fields(&K1, &f);
    sig = json_string_value(json_object_get(a, "signature"));
    f.id = "a";
    f.tenant = "bc";
    b = artifact_with_sig(&f, sig); /* the same signature, moved characters */
    CHECK(expect(a, HASH_ECHO_EMPTY, &SET1, NULL, NOW, APPROVAL_FULL, NULL, NULL));
    memcpy(first, last_out.message_sha256, 32);
    CHECK_STR(last_out.approval_id, "ab");
    CHECK(expect(b, HASH_ECHO_EMPTY, &SET1, NULL, NOW, APPROVAL_FULL, NULL, NULL));
    CHECK_STR(last_out.approval_id, "a");
    /* ...so single use must key on this hash, which both share. */
    CHECK_MEM(last_out.message_sha256, first, 32);
    json_decref(a);
    json_decref(b);
}

static void test_embedded_nul_is_part_of_the_signed_bytes(void)
{
    const char *v[5] = {"a\0b", "acme", HASH_ECHO_EMPTY, NOW_TEXT, "2026-11-25T19:46:28"};
    size_t len[5] = {3, 4, 64, strlen(NOW_TEXT), 19};
    char sig[89];
    unsigned char want[32];
    unsigned char msg[256];
    json_t *art;

    sign_bytes(&K1, v, len, sig);
    art = json_pack("{s:s#, s:s, s:s, s:s, s:s, s:s}", "approval_id", "a\0b", (size_t)3,
                    "tenant_id", v[1], "action_hash", v[2], "issued_at", v[3], "expires_at", v[4],
                    "signature", sig);
    CHECK(art != NULL);
    /* Verified, and then refused last: the id cannot be stored as text. */
    CHECK(expect1(art, "invalid_artifact",
                  "Invalid approval artifact: approval_id must not contain U+0000"));
    CHECK(last_out.signature_ok == 1 && last_out.approval_id == NULL);
    memcpy(msg, "a\0bacme", 7);
    memcpy(msg + 7, HASH_ECHO_EMPTY, 64);
    memcpy(msg + 71, NOW_TEXT, 26);
    memcpy(msg + 97, "2026-11-25T19:46:28", 19);
    crypto_hash_sha256(want, msg, 116);
    CHECK_MEM(last_out.message_sha256, want, 32);
    /* The NUL is signed: "ab" with the same signature fails. */
    json_object_set_new(art, "approval_id", json_string("ab"));
    CHECK(expect1(art, "invalid_signature", NULL));
    /* And a NUL in the tenant is compared, not a terminator. */
    v[0] = "id";
    len[0] = 2;
    v[1] = "acme\0x";
    len[1] = 6;
    sign_bytes(&K1, v, len, sig);
    json_decref(art);
    art = json_pack("{s:s, s:s#, s:s, s:s, s:s, s:s}", "approval_id", "id", "tenant_id", "acme\0x",
                    (size_t)6, "action_hash", v[2], "issued_at", v[3], "expires_at", v[4],
                    "signature", sig);
    /* Quoted as it is, the NUL included (the answer escapes it). */
    CHECK(expect1(art, "tenant_mismatch", NULL));
    CHECK_INT(last_err.detail_len, sizeof("Tenant mismatch: expected acme, got acme\0x") - 1);
    CHECK_MEM(last_err.detail, "Tenant mismatch: expected acme, got acme\0x",
              sizeof("Tenant mismatch: expected acme, got acme\0x"));
    json_decref(art);
}

/* A NUL in approval_id is refused after every other check: each earlier
 * failure keeps its own code, in full and in replay mode. */
static void test_nul_in_approval_id_is_checked_last(void)
{
    const char *v[5] = {"a\0b", "acme", HASH_ECHO_EMPTY, NOW_TEXT, "2026-11-25T19:46:28"};
    size_t len[5] = {3, 4, 64, strlen(NOW_TEXT), 19};
    char sig[89];
    json_t *art;

    sign_bytes(&K1, v, len, sig);
    art = json_pack("{s:s#, s:s, s:s, s:s, s:s, s:s}", "approval_id", "a\0b", (size_t)3,
                    "tenant_id", v[1], "action_hash", v[2], "issued_at", v[3], "expires_at", v[4],
                    "signature", sig);
    CHECK(
        expect(art, HASH_ECHO_EMPTY, &SET1, "other", NOW, APPROVAL_FULL, "tenant_mismatch", NULL));
    CHECK(expect(art, HASH_OTHER, &SET1, "acme", NOW, APPROVAL_FULL, "action_hash_mismatch", NULL));
    CHECK(expect(art, HASH_ECHO_EMPTY, &SET1, "acme", NOW + 301 * SEC, APPROVAL_FULL,
                 "approval_expired", NULL));
    /* Replay mode skips the expiry, and still refuses the id. */
    CHECK(expect(art, HASH_ECHO_EMPTY, &SET1, "acme", NOW + 301 * SEC, APPROVAL_REPLAY,
                 "invalid_artifact",
                 "Invalid approval artifact: approval_id must not contain U+0000"));
    CHECK(last_out.signature_ok == 1 && last_out.approval_id == NULL);
    json_decref(art);
}

/* The tenant shown in a mismatch is as much of it as the detail holds
 * (OE_ERROR_DETAIL_MAX - 1 bytes), cut at a character boundary. */
static void test_long_tenant_is_shown_as_valid_utf8(void)
{
    char tenant[2 + 300 * 2 + 1] = "ab";
    const char *v[5] = {"id-long-tenant", tenant, HASH_ECHO_EMPTY, NOW_TEXT, "2026-11-25T19:46:28"};
    size_t len[5], i;
    char sig[89], want[OE_ERROR_DETAIL_MAX] = "Tenant mismatch: expected acme, got ab";
    json_t *art;

    for (i = 0; i < 300; i++)
        memcpy(tenant + 2 + 2 * i, "\xc3\xa9", 2); /* "é" */
    for (i = 0; i < 5; i++)
        len[i] = strlen(v[i]);
    sign_bytes(&K1, v, len, sig);
    art = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "approval_id", v[0], "tenant_id", tenant,
                    "action_hash", v[2], "issued_at", v[3], "expires_at", v[4], "signature", sig);
    CHECK(art != NULL);
    /* 511 - 36 bytes of prefix leave 475 for the tenant: "ab" and 236
     * whole "é", since the 237th would end one byte past. */
    for (i = 0; i < 236; i++)
        strcat(want, "\xc3\xa9");
    CHECK(expect1(art, "tenant_mismatch", want));
    json_decref(art);
}

/* ---- minting ------------------------------------------------------------- */

static void test_mint_produces_an_artifact_that_verifies(void)
{
    json_t *art = approval_mint(&K1, "acme", HASH_ECHO_EMPTY, NOW, 300 * SEC);
    const char *id;
    size_t i;

    CHECK(art != NULL);
    if (art == NULL)
        return;
    CHECK_STR(json_string_value(json_object_get(art, "issued_at")), NOW_TEXT);
    CHECK_STR(json_string_value(json_object_get(art, "expires_at")), "2026-11-25T19:46:28.123456");
    CHECK_STR(json_string_value(json_object_get(art, "tenant_id")), "acme");
    id = json_string_value(json_object_get(art, "approval_id"));
    /* uuid4: 8-4-4-4-12 lowercase hex, version 4, variant 10xx. */
    CHECK_INT(strlen(id), 36);
    for (i = 0; i < 36; i++)
        if (!CHECK(i == 8 || i == 13 || i == 18 || i == 23
                       ? id[i] == '-'
                       : strchr("0123456789abcdef", id[i]) != NULL))
            break;
    CHECK(id[14] == '4');
    CHECK(strchr("89ab", id[19]) != NULL);
    CHECK(expect1(art, NULL, NULL));
    CHECK(expect(art, HASH_ECHO_EMPTY, &SET1, "acme", NOW + 300 * SEC, APPROVAL_FULL, NULL, NULL));
    CHECK(expect(art, HASH_ECHO_EMPTY, &SET1, "acme", NOW + 300 * SEC + 1, APPROVAL_FULL,
                 "approval_expired", NULL));
    json_decref(art);
    /* Two mints never share an approval_id. */
    {
        json_t *a = approval_mint(&K1, "acme", HASH_ECHO_EMPTY, NOW, SEC);
        json_t *b = approval_mint(&K1, "acme", HASH_ECHO_EMPTY, NOW, SEC);
        CHECK(strcmp(json_string_value(json_object_get(a, "approval_id")),
                     json_string_value(json_object_get(b, "approval_id"))) != 0);
        json_decref(a);
        json_decref(b);
    }
    /* Invalid UTF-8 in the tenant cannot become JSON. */
    CHECK(approval_mint(&K1, "\xff", HASH_ECHO_EMPTY, NOW, SEC) == NULL);
}

/* ---- the independent Python reference ------------------------------------ */

/* Runs clawshield.py with args; returns its first stdout line (malloc'd). */
static char *run_clawshield(const char *args)
{
    char cmd[4096], line[8192];
    FILE *p;
    char *res = NULL;

    snprintf(cmd, sizeof(cmd), "python3 %s/tests/tools/clawshield.py %s", SOURCE_DIR(), args);
    p = popen(cmd, "r");
    if (p == NULL)
        return NULL;
    if (fgets(line, sizeof(line), p) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        res = strdup(line);
    }
    if (pclose(p) != 0) {
        free(res);
        res = NULL;
    }
    return res;
}

static int64_t wall_now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * SEC + tv.tv_usec;
}

static void test_python_minted_artifacts_verify(void)
{
    char keypath[512], args[2048];
    char *pem, *line, *hash;
    json_t *art;
    json_error_t jerr;
    FILE *f;

    snprintf(keypath, sizeof(keypath), "%s/k1.key", tmpdir);
    pem = keys_private_pem(&K1);
    f = fopen(keypath, "w");
    fputs(pem, f);
    fclose(f);
    free(pem);

    /* Now-based, as ClawShield does; a payload with non-ASCII, floats,
     * nesting and keys out of order. */
    hash = run_clawshield("action-hash --action deploy --payload "
                          "'{\"z\":[1,2.5,\"\\u00e9\"],\"a\":{\"y\":null,\"b\":true}}'");
    CHECK(hash != NULL && strlen(hash) == 64);
    snprintf(args, sizeof(args),
             "mint --key %s --tenant acme --action deploy --payload "
             "'{\"z\":[1,2.5,\"\\u00e9\"],\"a\":{\"y\":null,\"b\":true}}'",
             keypath);
    line = run_clawshield(args);
    CHECK(line != NULL);
    if (line == NULL || hash == NULL) {
        free(line);
        free(hash);
        return;
    }
    art = json_loads(line, 0, &jerr);
    CHECK(art != NULL);
    CHECK(expect(art, hash, &SET1, "acme", wall_now_us(), APPROVAL_FULL, NULL, NULL));
    CHECK(expect(art, hash, &SET1, "other", wall_now_us(), APPROVAL_FULL, "tenant_mismatch",
                 "Tenant mismatch: expected other, got acme"));
    CHECK(expect(art, HASH_ECHO_EMPTY, &SET1, "acme", wall_now_us(), APPROVAL_FULL,
                 "action_hash_mismatch", NULL));
    CHECK(expect(art, hash, &SET21, "acme", wall_now_us(), APPROVAL_FULL, NULL, NULL));
    json_decref(art);
    free(line);

    /* Fixed times, a non-ASCII tenant (UTF-8 bytes are signed), expiry
     * boundary at our NOW. */
    snprintf(args, sizeof(args),
             "mint --key %s --tenant 'caf\xc3\xa9' --action echo --payload '{}' "
             "--approval-id fixed-id --issued-at 2026-11-25T19:41:00 --expires-at %s",
             keypath, NOW_TEXT);
    line = run_clawshield(args);
    CHECK(line != NULL);
    art = line ? json_loads(line, 0, &jerr) : NULL;
    CHECK(art != NULL);
    CHECK(expect(art, HASH_ECHO_EMPTY, &SET1, "caf\xc3\xa9", NOW, APPROVAL_FULL, NULL, NULL));
    CHECK_STR(last_out.approval_id, "fixed-id");
    CHECK(expect(art, HASH_ECHO_EMPTY, &SET1, "caf\xc3\xa9", NOW + 1, APPROVAL_FULL,
                 "approval_expired", NULL));
    json_decref(art);
    free(line);
    free(hash);
}

static void test_c_minted_artifact_verifies_in_python(void)
{
    /* The other direction: python-cryptography verifies our signature over
     * the message it builds itself. */
    json_t *art = approval_mint(&K1, "acme", HASH_ECHO_EMPTY, NOW, 300 * SEC);
    char *pub = keys_public_pem(K1.pk), *js = json_dumps(art, JSON_COMPACT);
    char path[512], cmd[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/verify.py", tmpdir);
    f = fopen(path, "w");
    fputs("import base64, json, sys\n"
          "sys.path.insert(0, sys.argv[3] + '/tests/tools')\n"
          "import clawshield\n"
          "from cryptography.hazmat.primitives import serialization\n"
          "a = json.loads(sys.argv[1])\n"
          "k = serialization.load_pem_public_key(sys.argv[2].encode())\n"
          "m = clawshield.signed_message(a['approval_id'], a['tenant_id'],"
          " a['action_hash'], a['issued_at'], a['expires_at'])\n"
          "k.verify(base64.b64decode(a['signature'], validate=True), m)\n",
          f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "python3 %s '%s' '%s' '%s'", path, js, pub, SOURCE_DIR());
    CHECK_INT(system(cmd), 0);
    free(pub);
    free(js);
    json_decref(art);
}

/* ---- openexec keygen / mint (cli_keys.c) ---------------------------------- */

/* Runs a cli_* function in-process with stdout and stderr captured into
 * out/err (NUL-terminated, truncated to their size).  Returns its status. */
static int run_cli(int (*fn)(int, char **), char **argv, char *out, size_t out_len, char *err,
                   size_t err_len)
{
    char po[512], pe[512];
    int argc = 0, saved_out, saved_err, fo, fe, rc;
    FILE *f;
    size_t n;

    while (argv[argc] != NULL)
        argc++;
    snprintf(po, sizeof(po), "%s/cli.out", tmpdir);
    snprintf(pe, sizeof(pe), "%s/cli.err", tmpdir);
    fflush(stdout);
    fflush(stderr);
    saved_out = dup(1);
    saved_err = dup(2);
    fo = open(po, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    fe = open(pe, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    dup2(fo, 1);
    dup2(fe, 2);
    rc = fn(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    close(fo);
    close(fe);
    f = fopen(po, "r");
    n = fread(out, 1, out_len - 1, f);
    out[n] = '\0';
    fclose(f);
    f = fopen(pe, "r");
    n = fread(err, 1, err_len - 1, f);
    err[n] = '\0';
    fclose(f);
    return rc;
}

static int file_mode(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int)(st.st_mode & 0777) : -1;
}

static void test_keygen_writes_a_pair_and_never_overwrites(void)
{
    char prefix[300], key[320], pub[320], out[2048], err[2048], why[256];
    char *argv[] = {"keygen", "--out", prefix, NULL};
    keys_private k;
    keys_public_set set;
    char *before, *after;

    snprintf(prefix, sizeof(prefix), "%s/cs", tmpdir);
    snprintf(key, sizeof(key), "%s.key", prefix);
    snprintf(pub, sizeof(pub), "%s.pub", prefix);
    CHECK_INT(run_cli(cli_keygen, argv, out, sizeof(out), err, sizeof(err)), 0);
    CHECK_INT(file_mode(key), 0600);
    CHECK_INT(keys_load_private_file(key, &k, why, sizeof(why)), 0);
    CHECK_INT(keys_load_public_file(pub, &set, why, sizeof(why)), 0);
    CHECK_MEM(set.keys[0].pk, k.pk, 32);
    CHECK(strstr(out, k.key_id) != NULL);
    CHECK(strstr(out, key) != NULL && strstr(out, pub) != NULL);
    CHECK_STR(err, "");
    /* A second run refuses and leaves the key untouched. */
    before = keys_private_pem(&k);
    CHECK_INT(run_cli(cli_keygen, argv, out, sizeof(out), err, sizeof(err)), 1);
    CHECK(strncmp(err, "openexec keygen: ", 17) == 0);
    CHECK(strstr(err, "file exists, refusing to overwrite a key") != NULL);
    keys_private_wipe(&k);
    CHECK_INT(keys_load_private_file(key, &k, why, sizeof(why)), 0);
    after = keys_private_pem(&k);
    CHECK_STR(after, before);
    free(before);
    free(after);
    /* Only the .pub exists: refused, and no orphan .key is left behind. */
    unlink(key);
    CHECK_INT(run_cli(cli_keygen, argv, out, sizeof(out), err, sizeof(err)), 1);
    CHECK(strstr(err, "cs.pub: file exists") != NULL);
    CHECK_INT(access(key, F_OK), -1);
    unlink(pub);
    keys_private_wipe(&k);
}

static void test_keygen_usage(void)
{
    char out[2048], err[2048];
    char *help[] = {"keygen", "--help", NULL};
    char *bad[] = {"keygen", "--bogus", NULL};
    char *missing[] = {"keygen", "--out", NULL};

    CHECK_INT(run_cli(cli_keygen, help, out, sizeof(out), err, sizeof(err)), 0);
    CHECK(strncmp(out, "usage: openexec keygen", 22) == 0);
    CHECK_INT(run_cli(cli_keygen, bad, out, sizeof(out), err, sizeof(err)), 2);
    CHECK(strncmp(err, "openexec keygen: --bogus: unknown argument", 42) == 0);
    CHECK_INT(run_cli(cli_keygen, missing, out, sizeof(out), err, sizeof(err)), 2);
    CHECK(strncmp(err, "openexec keygen: --out: missing value", 37) == 0);
}

/* Mints with `openexec mint`, checks the artifact against the action hash
 * that clawshield.py (Python's json.dumps) computes for the same payload. */
static void test_mint_cli_matches_the_python_reference(void)
{
    static const char payload[] =
        "{\"z\":[1,2.5,1e2,\"\\u00e9\\n\"],\"a\":{\"y\":null,\"b\":true}}";
    char keypath[512], out[4096], err[2048], args[2048];
    char *argv[] = {"mint",   "--key",     keypath,         "--tenant", "acme", "--action",
                    "deploy", "--payload", (char *)payload, "--ttl=60", NULL};
    char *hash;
    json_t *art;
    json_error_t jerr;
    int64_t issued, expires;
    FILE *f;
    char *pem = keys_private_pem(&K1);

    snprintf(keypath, sizeof(keypath), "%s/mint.key", tmpdir);
    f = fopen(keypath, "w");
    fputs(pem, f);
    fclose(f);
    free(pem);
    CHECK_INT(run_cli(cli_mint, argv, out, sizeof(out), err, sizeof(err)), 0);
    CHECK_STR(err, "");
    /* One line of compact JSON. */
    CHECK(strchr(out, '\n') == out + strlen(out) - 1);
    art = json_loads(out, 0, &jerr);
    CHECK(art != NULL);
    snprintf(args, sizeof(args), "action-hash --action deploy --payload '%s'", payload);
    hash = run_clawshield(args);
    CHECK(hash != NULL);
    if (art == NULL || hash == NULL) {
        json_decref(art);
        free(hash);
        return;
    }
    CHECK_STR(json_string_value(json_object_get(art, "action_hash")), hash);
    CHECK(expect(art, hash, &SET1, "acme", wall_now_us(), APPROVAL_FULL, NULL, NULL));
    CHECK_INT(approval_parse_time(json_string_value(json_object_get(art, "issued_at")),
                                  json_string_length(json_object_get(art, "issued_at")), &issued),
              0);
    CHECK_INT(approval_parse_time(json_string_value(json_object_get(art, "expires_at")),
                                  json_string_length(json_object_get(art, "expires_at")), &expires),
              0);
    CHECK_INT(expires - issued, 60 * SEC);
    json_decref(art);
    free(hash);

    /* --payload null hashes as {} (SPEC 3.3), as does no --payload. */
    argv[5] = "--action";
    argv[6] = "echo";
    argv[8] = " null ";
    CHECK_INT(run_cli(cli_mint, argv, out, sizeof(out), err, sizeof(err)), 0);
    art = json_loads(out, 0, &jerr);
    CHECK_STR(json_string_value(json_object_get(art, "action_hash")), HASH_ECHO_EMPTY);
    json_decref(art);
    argv[7] = NULL;
    CHECK_INT(run_cli(cli_mint, argv, out, sizeof(out), err, sizeof(err)), 0);
    art = json_loads(out, 0, &jerr);
    CHECK_STR(json_string_value(json_object_get(art, "action_hash")), HASH_ECHO_EMPTY);
    json_decref(art);
}

static void test_mint_cli_errors(void)
{
    char keypath[512], out[4096], err[2048];
    char *argv[12];
    static const struct {
        const char *opt, *val;
        int rc;
        const char *msg;
    } cases[] = {
        {"--payload", "[1,2]", 2, "openexec mint: --payload: must be a JSON object or null"},
        {"--payload", "{\"a\":1,\"a\":2}", 2, "openexec mint: --payload: "},
        {"--payload", "{", 2, "openexec mint: --payload: "},
        {"--ttl", "-1", 2, "openexec mint: --ttl: '-1': expected seconds"},
        {"--ttl", "5s", 2, "openexec mint: --ttl: '5s'"},
        {"--ttl", "99999999999999999999", 2, "openexec mint: --ttl: "},
        {"--action", "", 2, "openexec mint: --action: must be 1-128 bytes"},
        {"--tenant", "\xff", 2, "openexec mint: --tenant: not valid UTF-8"},
        {"--key", "/nonexistent/x.key", 1, "openexec mint: /nonexistent/x.key: No such file"},
        {"--bogus", "x", 2, "openexec mint: --bogus: unknown argument"},
    };
    size_t i;

    snprintf(keypath, sizeof(keypath), "%s/mint.key", tmpdir); /* written above */
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int n = 0;
        argv[n++] = "mint";
        if (strcmp(cases[i].opt, "--key") != 0) {
            argv[n++] = "--key";
            argv[n++] = keypath;
        }
        if (strcmp(cases[i].opt, "--tenant") != 0) {
            argv[n++] = "--tenant";
            argv[n++] = "acme";
        }
        if (strcmp(cases[i].opt, "--action") != 0) {
            argv[n++] = "--action";
            argv[n++] = "echo";
        }
        argv[n++] = (char *)cases[i].opt;
        argv[n++] = (char *)cases[i].val;
        argv[n] = NULL;
        if (!CHECK_INT(run_cli(cli_mint, argv, out, sizeof(out), err, sizeof(err)), cases[i].rc) ||
            !CHECK(strncmp(err, cases[i].msg, strlen(cases[i].msg)) == 0))
            fprintf(stderr, "  case %zu: stderr: %s", i, err);
        CHECK_STR(out, "");
    }
    {
        char *missing[] = {"mint", "--key", keypath, "--action", "echo", NULL};
        char *help[] = {"mint", "-h", NULL};
        char *novalue[] = {"mint", "--key", NULL};
        CHECK_INT(run_cli(cli_mint, missing, out, sizeof(out), err, sizeof(err)), 2);
        CHECK(strncmp(err, "openexec mint: --tenant: required option missing", 48) == 0);
        CHECK_INT(run_cli(cli_mint, help, out, sizeof(out), err, sizeof(err)), 0);
        CHECK(strncmp(out, "usage: openexec mint", 20) == 0);
        CHECK_INT(run_cli(cli_mint, novalue, out, sizeof(out), err, sizeof(err)), 2);
        CHECK(strncmp(err, "openexec mint: --key: missing value", 35) == 0);
    }
}

int main(void)
{
    char cmd[300];

    if (sodium_init() < 0)
        return 1;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/oe_test_approval.XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    keys_generate(&K1);
    keys_generate(&K2);
    keys_generate(&K3);
    SET1.count = 1;
    memcpy(SET1.keys[0].pk, K1.pk, 32);
    SET21.count = 2;
    memcpy(SET21.keys[0].pk, K2.pk, 32);
    memcpy(SET21.keys[1].pk, K1.pk, 32);

    RUN(test_missing_artifact_is_approval_required);
    RUN(test_no_key_is_key_not_configured_even_for_garbage);
    RUN(test_empty_object_and_each_missing_field_is_invalid_artifact);
    RUN(test_valid_artifact_passes_and_fills_out);
    RUN(test_any_changed_field_breaks_the_signature);
    RUN(test_signature_base64_must_be_canonical_64_bytes);
    RUN(test_bad_signature_wins_over_wrong_tenant);
    RUN(test_wrong_tenant_wins_over_wrong_hash);
    RUN(test_wrong_hash_wins_over_expiry);
    RUN(test_expiry_wins_over_issued_at);
    RUN(test_action_hash_compare_is_exact);
    RUN(test_expires_at_missing_invalid_expired);
    RUN(test_expiry_is_exact_to_the_microsecond);
    RUN(test_replay_mode_skips_only_the_expiry_comparison);
    RUN(test_timezone_offsets);
    RUN(test_issued_at_skew_boundary_is_300_seconds);
    RUN(test_unparsable_issued_at_is_invalid_artifact);
    RUN(test_time_grammar);
    RUN(test_format_time_is_python_isoformat);
    RUN(test_key_rotation_any_configured_key_verifies);
    RUN(test_moving_characters_keep_signature_and_message_hash);
    RUN(test_embedded_nul_is_part_of_the_signed_bytes);
    RUN(test_nul_in_approval_id_is_checked_last);
    RUN(test_long_tenant_is_shown_as_valid_utf8);
    RUN(test_mint_produces_an_artifact_that_verifies);
    RUN(test_python_minted_artifacts_verify);
    RUN(test_c_minted_artifact_verifies_in_python);
    RUN(test_keygen_writes_a_pair_and_never_overwrites);
    RUN(test_keygen_usage);
    RUN(test_mint_cli_matches_the_python_reference);
    RUN(test_mint_cli_errors);

    approval_verified_free(&last_out);
    keys_private_wipe(&K1);
    keys_private_wipe(&K2);
    keys_private_wipe(&K3);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return tu_finish();
}

/*
 * approval.c - ClawShield approval artifacts (SPEC 4).
 *
 * approval_check is one straight line through SPEC 4's order of checks; the
 * first failure wins and is reported with the SPEC's code and Compat text:
 *
 *   1. artifact present            approval_required
 *   2. a key configured            key_not_configured
 *   3. six fields, all strings     invalid_artifact
 *   4. Ed25519 signature           invalid_signature
 *   5. tenant                      tenant_mismatch
 *   6. action hash                 action_hash_mismatch
 *   7. expires_at                  expires_at_missing / expires_at_invalid /
 *                                  approval_expired (not in APPROVAL_REPLAY)
 *   8. issued_at                   invalid_artifact (unparsable) /
 *                                  approval_not_yet_valid (> 300 s ahead)
 *   8b. approval_id without U+0000 invalid_artifact (see below)
 *   (9. single use: the caller, in the nonce-claiming transaction)
 *
 * Decisions on points the SPEC leaves open (also in docs/clawshield.md):
 *   - expires_at "" is expires_at_missing (the reference tested the value for
 *     truthiness); a missing or non-string expires_at is invalid_artifact,
 *     because step 3 already runs.  In replay mode only the expiry comparison
 *     is skipped; an empty or unparsable expires_at is still refused.
 *   - An unparsable issued_at (including "") is invalid_artifact "Invalid
 *     issued_at timestamp": the reference never read issued_at, so there is
 *     no Compat text, and the artifact is malformed rather than early.
 *   - policy->tenant_id "" means "any tenant", like NULL: the reference
 *     checked `if CLAWSHIELD_TENANT_ID and ...`.
 *   - An approval_id holding U+0000 is invalid_artifact.  The id is stored
 *     and compared as text by both stores (PostgreSQL text cannot hold
 *     U+0000 at all), and a NUL would make "a\u0000b" and "a" the same id to
 *     every C-string consumer: the replay binding and single use would
 *     compare prefixes.  No approver mints such ids (ClawShield's are
 *     uuid4s).  It is checked last, so every other answer stays the SPEC's
 *     (a vector signed over bytes holding NUL still gets its verdict at
 *     step 4), and out->approval_id stays NULL: a denial's receipt names no
 *     id rather than a cut-off one.
 *
 * The signed message is the plain concatenation of five field values, taken
 * with their JSON lengths (json_string_length), so a value holding U+0000 is
 * signed and hashed byte for byte.  The concatenation is ambiguous
 * (approval_id "ab" + tenant "c" equals "a" + "bc"); that is Compat and is
 * why single use keys on message_sha256, which both readings share.
 *
 * Signatures must be canonical padded standard base64 of exactly 64 bytes
 * (88 characters) and verify under any configured key with libsodium's
 * crypto_sign_verify_detached, which is strict: canonical S, no small-order
 * or non-canonical R or A.  The action hash is compared in constant time.
 *
 * Invariant for `out`: until the signature verified, it is all zero
 * (signature_ok 0, approval_id NULL, message_sha256 zero); afterwards it
 * stays filled even when a later check denies, because the receipt of a
 * denied attempt still names a genuinely signed approval (SPEC 4).
 *
 * Times: YYYY-MM-DDTHH:MM:SS(.d{1,6})?(Z|+HH:MM|-HH:MM)?, naive = UTC, years
 * 0001-9999 (Python's datetime range), no leap seconds, offsets below 24 h.
 * Values are microseconds since the Unix epoch in int64, which holds the
 * whole range with room for the 300 s skew arithmetic.
 */
#include "approval.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "util.h"

#define SIG_BYTES 64
#define SIG_B64_LEN 88 /* 4 * ceil(64 / 3) */
#define US_PER_SEC 1000000LL

/* Field order is the signed message's order, with the signature last. */
static const char *const FIELDS[] = {"approval_id", "tenant_id",  "action_hash",
                                     "issued_at",   "expires_at", "signature"};
enum { F_ID, F_TENANT, F_HASH, F_ISSUED, F_EXPIRES, F_SIG, F_COUNT };

typedef struct field {
    const char *s;
    size_t len;
} field;

/* ------------------------------------------------------------------------
 * Time
 * ------------------------------------------------------------------------ */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil; exact for every year we accept). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int64_t m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Reads exactly n decimal digits at s[*i]. */
static int digits(const char *s, size_t len, size_t *i, int n, int64_t *out)
{
    int64_t v = 0;
    int k;

    if (len - *i < (size_t)n)
        return -1;
    for (k = 0; k < n; k++) {
        char c = s[*i + (size_t)k];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *i += (size_t)n;
    *out = v;
    return 0;
}

static int expect(const char *s, size_t len, size_t *i, char c)
{
    if (*i >= len || s[*i] != c)
        return -1;
    (*i)++;
    return 0;
}

int approval_parse_time(const char *s, size_t len, int64_t *out_us)
{
    /* Zeroed for gcc -O3, which cannot see that digits() sets them. */
    int64_t y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, frac = 0, oh = 0, om = 0, offset_s = 0;
    int64_t sign;
    size_t i = 0;
    int nfrac = 0;

    *out_us = 0;
    if (digits(s, len, &i, 4, &y) || expect(s, len, &i, '-') || digits(s, len, &i, 2, &mo) ||
        expect(s, len, &i, '-') || digits(s, len, &i, 2, &d) || expect(s, len, &i, 'T') ||
        digits(s, len, &i, 2, &h) || expect(s, len, &i, ':') || digits(s, len, &i, 2, &mi) ||
        expect(s, len, &i, ':') || digits(s, len, &i, 2, &sec))
        return -1;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
        sec > 59)
        return -1;
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9' && nfrac < 6) {
            frac = frac * 10 + (s[i] - '0');
            nfrac++;
            i++;
        }
        if (nfrac == 0 || (i < len && s[i] >= '0' && s[i] <= '9'))
            return -1; /* ".": no digits; a 7th digit: not microseconds */
        for (; nfrac < 6; nfrac++)
            frac *= 10;
    }
    if (i < len && s[i] == 'Z') {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        sign = s[i] == '-' ? -1 : 1;
        i++;
        if (digits(s, len, &i, 2, &oh) || expect(s, len, &i, ':') || digits(s, len, &i, 2, &om) ||
            oh > 23 || om > 59)
            return -1;
        offset_s = sign * (oh * 3600 + om * 60);
    }
    if (i != len)
        return -1;
    /* Local time minus its offset is UTC. */
    *out_us =
        ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) - offset_s) * US_PER_SEC +
        frac;
    return 0;
}

void approval_format_time(int64_t us, char out[32])
{
    char utc[OE_UTC_TEXT_LEN + 1];

    /* Python's isoformat() of a naive time: ours without the "Z", and
     * without the fraction when it is zero.  Both clamp to years 1..9999,
     * as Python's datetime does, so the text always fits. */
    oe_format_utc(us, utc);
    utc[strcmp(utc + 20, "000000Z") == 0 ? 19 : 26] = '\0';
    oe_strlcpy(out, utc, 32);
}

/* ------------------------------------------------------------------------
 * Signature
 * ------------------------------------------------------------------------ */

/* Canonical padded base64 of exactly 64 bytes, or -1.  libsodium's decoder
 * already refuses missing or extra padding, non-zero unused bits and (with
 * no ignore set) whitespace; the length test up front also rules out NUL. */
static int decode_signature(const field *f, unsigned char sig[SIG_BYTES])
{
    size_t n = 0;

    if (f->len != SIG_B64_LEN)
        return -1;
    if (sodium_base642bin(sig, SIG_BYTES, f->s, f->len, NULL, &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        n != SIG_BYTES)
        return -1;
    return 0;
}

/* 0 when any configured key verifies sig over msg. */
static int verify_any_key(const keys_public_set *keys, const unsigned char *msg, size_t len,
                          const unsigned char sig[SIG_BYTES]) __attribute__((warn_unused_result));

static int verify_any_key(const keys_public_set *keys, const unsigned char *msg, size_t len,
                          const unsigned char sig[SIG_BYTES])
{
    size_t k;

    for (k = 0; k < keys->count && k < KEYS_MAX_PUBLIC; k++)
        if (crypto_sign_verify_detached(sig, msg, (unsigned long long)len, keys->keys[k].pk) == 0)
            return 0;
    return -1;
}

/* approval_id + tenant_id + action_hash + issued_at + expires_at, malloc'd.
 * Lengths come from JSON, each below the 1 MiB body limit, so the sum
 * cannot overflow; we check anyway because this is the security boundary. */
static unsigned char *signed_message(const field f[F_COUNT], size_t *out_len)
{
    unsigned char *msg;
    size_t total = 0, k, n = 0;

    for (k = F_ID; k <= F_EXPIRES; k++) {
        if (f[k].len > SIZE_MAX - total - 1)
            return NULL;
        total += f[k].len;
    }
    msg = malloc(total + 1); /* +1: malloc(0) may return NULL */
    if (msg == NULL)
        return NULL;
    for (k = F_ID; k <= F_EXPIRES; k++) {
        if (f[k].len > 0)
            memcpy(msg + n, f[k].s, f[k].len);
        n += f[k].len;
    }
    *out_len = total;
    return msg;
}

/* ------------------------------------------------------------------------
 * The check
 * ------------------------------------------------------------------------ */

static int read_fields(const json_t *artifact, field f[F_COUNT], oe_error *err)
{
    size_t k;

    if (!json_is_object(artifact)) {
        oe_error_set(err, 403, "invalid_artifact",
                     "Invalid approval artifact: approval_artifact must be an object");
        return -1;
    }
    for (k = 0; k < F_COUNT; k++) {
        const json_t *v = json_object_get(artifact, FIELDS[k]);
        if (v == NULL) {
            oe_error_set(err, 403, "invalid_artifact",
                         "Invalid approval artifact: missing field '%s'", FIELDS[k]);
            return -1;
        }
        if (!json_is_string(v)) {
            oe_error_set(err, 403, "invalid_artifact",
                         "Invalid approval artifact: field '%s' must be a string", FIELDS[k]);
            return -1;
        }
        f[k].s = json_string_value(v);
        f[k].len = json_string_length(v);
    }
    return 0;
}

static int check_time_window(const field f[F_COUNT], int64_t now_us, approval_mode mode,
                             int64_t *expires_out, oe_error *err)
{
    int64_t expires_us, issued_us;

    if (f[F_EXPIRES].len == 0) {
        oe_error_set(err, 403, "expires_at_missing", "Missing expires_at in approval artifact");
        return -1;
    }
    if (approval_parse_time(f[F_EXPIRES].s, f[F_EXPIRES].len, &expires_us) != 0) {
        oe_error_set(err, 403, "expires_at_invalid", "Invalid expires_at timestamp");
        return -1;
    }
    /* A replay re-serves a finished execution; its approval may have expired
     * since, and that must not turn the stored answer into a denial. */
    if (mode == APPROVAL_FULL && now_us > expires_us) {
        oe_error_set(err, 403, "approval_expired", "Approval artifact expired");
        return -1;
    }
    if (approval_parse_time(f[F_ISSUED].s, f[F_ISSUED].len, &issued_us) != 0) {
        oe_error_set(err, 403, "invalid_artifact", "Invalid issued_at timestamp");
        return -1;
    }
    /* Exactly +300 s is still accepted.  Written so that no clock value,
     * however absurd, can overflow the addition. */
    if (now_us < INT64_MAX - APPROVAL_MAX_SKEW_US && issued_us > now_us + APPROVAL_MAX_SKEW_US) {
        oe_error_set(err, 403, "approval_not_yet_valid",
                     "Approval artifact issued_at is in the future");
        return -1;
    }
    *expires_out = expires_us;
    return 0;
}

int approval_check(const json_t *artifact, const char *action_hash_hex,
                   const approval_policy *policy, int64_t now_us, approval_mode mode,
                   approval_verified *out, oe_error *err)
{
    field f[F_COUNT];
    unsigned char sig[SIG_BYTES];
    unsigned char *msg = NULL;
    size_t msg_len = 0, want_len;
    int id_has_nul = 0, ret = -1;

    memset(out, 0, sizeof(*out));
    oe_error_clear(err);

    if (artifact == NULL || json_is_null(artifact)) {
        oe_error_set(err, 403, "approval_required",
                     "ClawShield mode requires an approval artifact");
        goto out;
    }
    if (policy == NULL || policy->keys == NULL || policy->keys->count == 0) {
        oe_error_set(err, 403, "key_not_configured", "CLAWSHIELD_PUBLIC_KEY not configured");
        goto out;
    }
    if (read_fields(artifact, f, err) != 0)
        goto out;

    msg = signed_message(f, &msg_len);
    if (msg == NULL) {
        /* Fail closed: no memory means no verified approval. */
        oe_error_set(err, 403, "invalid_signature",
                     "Invalid signature: approval artifact is not authentic");
        goto out;
    }
    if (decode_signature(&f[F_SIG], sig) != 0 ||
        verify_any_key(policy->keys, msg, msg_len, sig) != 0) {
        oe_error_set(err, 403, "invalid_signature",
                     "Invalid signature: approval artifact is not authentic");
        goto out;
    }
    id_has_nul = memchr(f[F_ID].s, '\0', f[F_ID].len) != NULL;
    if (!id_has_nul) {
        out->approval_id = malloc(f[F_ID].len + 1);
        if (out->approval_id == NULL) { /* fail closed, as above */
            oe_error_set(err, 403, "invalid_signature",
                         "Invalid signature: approval artifact is not authentic");
            goto out;
        }
        memcpy(out->approval_id, f[F_ID].s, f[F_ID].len + 1);
    }
    crypto_hash_sha256(out->message_sha256, msg, (unsigned long long)msg_len);
    out->signature_ok = 1;

    if (policy->tenant_id != NULL && policy->tenant_id[0] != '\0' &&
        (f[F_TENANT].len != strlen(policy->tenant_id) ||
         sodium_memcmp(f[F_TENANT].s, policy->tenant_id, f[F_TENANT].len) != 0)) {
        char before[OE_ERROR_DETAIL_MAX];
        /* The artifact's tenant quoted as it is, U+0000 included, as SPEC
         * 4's text quotes it (cut at a character to fit the detail). */
        oe_message(before, sizeof(before), "Tenant mismatch: expected %s, got ", policy->tenant_id);
        oe_error_set_quoting(err, 403, "tenant_mismatch", before, f[F_TENANT].s, f[F_TENANT].len,
                             "");
        goto out;
    }
    /* Lengths are public (64 hex digits); the bytes are compared in
     * constant time so a mismatch leaks no prefix length. */
    want_len = action_hash_hex != NULL ? strlen(action_hash_hex) : 0;
    if (want_len == 0 || f[F_HASH].len != want_len ||
        sodium_memcmp(f[F_HASH].s, action_hash_hex, want_len) != 0) {
        oe_error_set(err, 403, "action_hash_mismatch",
                     "Action hash mismatch: approval does not match this request");
        goto out;
    }
    if (check_time_window(f, now_us, mode, &out->expires_us, err) != 0)
        goto out;
    if (id_has_nul) {
        oe_error_set(err, 403, "invalid_artifact",
                     "Invalid approval artifact: approval_id must not contain U+0000");
        goto out;
    }
    ret = 0;
out:
    sodium_memzero(sig, sizeof(sig));
    free(msg);
    return ret;
}

void approval_verified_free(approval_verified *v)
{
    if (v == NULL)
        return;
    free(v->approval_id);
    memset(v, 0, sizeof(*v));
}

/* ------------------------------------------------------------------------
 * Minting (what a ClawShield approver does; for keygen/mint and tests)
 * ------------------------------------------------------------------------ */

static void uuid4(char out[37])
{
    unsigned char b[16];

    randombytes_buf(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

json_t *approval_mint(const keys_private *key, const char *tenant_id, const char *action_hash_hex,
                      int64_t now_us, int64_t ttl_us)
{
    char id[37], issued[32], expires[32];
    char sig_b64[SIG_B64_LEN + 1];
    unsigned char sig[SIG_BYTES];
    field f[F_COUNT];
    unsigned char *msg = NULL;
    size_t msg_len = 0;
    json_t *art = NULL;

    if (sodium_init() < 0 || key == NULL || tenant_id == NULL || action_hash_hex == NULL)
        return NULL;
    uuid4(id);
    approval_format_time(now_us, issued);
    approval_format_time(now_us + ttl_us, expires);

    f[F_ID] = (field){id, strlen(id)};
    f[F_TENANT] = (field){tenant_id, strlen(tenant_id)};
    f[F_HASH] = (field){action_hash_hex, strlen(action_hash_hex)};
    f[F_ISSUED] = (field){issued, strlen(issued)};
    f[F_EXPIRES] = (field){expires, strlen(expires)};
    msg = signed_message(f, &msg_len);
    if (msg == NULL)
        goto out;
    crypto_sign_detached(sig, NULL, msg, (unsigned long long)msg_len, key->sk);
    sodium_bin2base64(sig_b64, sizeof(sig_b64), sig, sizeof(sig), sodium_base64_VARIANT_ORIGINAL);

    /* Keys in the order ClawShield documents them; jansson keeps insertion
     * order when dumping. */
    art = json_object();
    if (art == NULL || json_object_set_new(art, "approval_id", json_string(id)) != 0 ||
        json_object_set_new(art, "tenant_id", json_string(tenant_id)) != 0 ||
        json_object_set_new(art, "action_hash", json_string(action_hash_hex)) != 0 ||
        json_object_set_new(art, "issued_at", json_string(issued)) != 0 ||
        json_object_set_new(art, "expires_at", json_string(expires)) != 0 ||
        json_object_set_new(art, "signature", json_string(sig_b64)) != 0) {
        /* json_string(NULL) for invalid UTF-8 makes set_new fail. */
        json_decref(art);
        art = NULL;
    }
out:
    free(msg);
    return art;
}

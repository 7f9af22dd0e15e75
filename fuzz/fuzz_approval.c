/*
 * fuzz_approval.c - libFuzzer target for approval_check and the time grammar.
 *
 * Input: one flag byte, then JSON (parsed by jansson with NUL allowed, any
 * top-level value).  Flags:
 *   bit 0  re-sign: when the six fields are strings, replace the signature
 *          with a genuine one over the fuzzed fields, so the checks *after*
 *          the signature (tenant, hash, times) are fuzzed too; the fuzzer
 *          cannot forge Ed25519, and without this it would never get there
 *   bit 1  tenant policy "acme" (else any tenant)
 *   bit 2  two keys configured (rotation; the signer is the second)
 * Every input runs in both APPROVAL_FULL and APPROVAL_REPLAY mode.
 * Properties (abort() on a violation):
 *   - the return value and err agree; a denial is 403 with a SPEC 4 code;
 *   - before the signature verified, `out` is all zero;
 *   - a re-signed artifact always verifies (signature_ok), and then the
 *     message hash is SHA-256 of the concatenated fields;
 *   - replay mode differs from full mode only where full says expired;
 *   - the raw input, read as a time, round-trips through
 *     approval_format_time when inside Python's year range.
 *
 * Build: CC=clang cmake -S . -B build-fuzz -DOE_FUZZ=ON && make -C build-fuzz fuzz_approval
 * Run:   build-fuzz/fuzz_approval -max_len=2048 fuzz/corpus/approval
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "approval.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1795635688123456LL /* 2026-11-25T19:41:28.123456 */
#define HASH "4d9b97d6e60f36b9c5d3107933b358b55c858aa5814c742b4783ce871e2ca981"
#define TIME_MIN_US (-62135596800LL * 1000000LL)
#define TIME_MAX_US (253402300799LL * 1000000LL + 999999)

static const char *const FIELDS[] = {"approval_id", "tenant_id", "action_hash", "issued_at",
                                     "expires_at"};
static const char *const CODES[] = {
    "approval_required", "key_not_configured",    "invalid_artifact",   "invalid_signature",
    "tenant_mismatch",   "action_hash_mismatch",  "expires_at_missing", "expires_at_invalid",
    "approval_expired",  "approval_not_yet_valid"};

static unsigned char other_pk[32], signer_pk[32], signer_sk[64];

static int known_code(const char *code)
{
    size_t i;

    for (i = 0; i < sizeof(CODES) / sizeof(CODES[0]); i++)
        if (code != NULL && strcmp(code, CODES[i]) == 0)
            return 1;
    return 0;
}

/* Signs the five fields; returns the message hash in h.  0 if all strings. */
static int resign(json_t *art, unsigned char h[32])
{
    unsigned char sig[64], *msg;
    char b64[89];
    size_t i, total = 0, n = 0;

    if (!json_is_object(art))
        return -1;
    for (i = 0; i < 5; i++) {
        json_t *v = json_object_get(art, FIELDS[i]);
        if (!json_is_string(v))
            return -1;
        total += json_string_length(v);
    }
    if (!json_is_string(json_object_get(art, "signature")))
        return -1;
    msg = malloc(total + 1);
    for (i = 0; i < 5; i++) {
        json_t *v = json_object_get(art, FIELDS[i]);
        memcpy(msg + n, json_string_value(v), json_string_length(v));
        n += json_string_length(v);
    }
    crypto_sign_detached(sig, NULL, msg, total, signer_sk);
    crypto_hash_sha256(h, msg, total);
    free(msg);
    sodium_bin2base64(b64, sizeof(b64), sig, 64, sodium_base64_VARIANT_ORIGINAL);
    json_object_set_new(art, "signature", json_string(b64));
    return 0;
}

static void check_time_roundtrip(const uint8_t *data, size_t size)
{
    int64_t us, back;
    char out[32];

    if (approval_parse_time((const char *)data, size, &us) != 0)
        return;
    if (us < TIME_MIN_US || us > TIME_MAX_US)
        return;
    approval_format_time(us, out);
    if (approval_parse_time(out, strlen(out), &back) != 0 || back != us)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    keys_public_set keys;
    approval_policy pol;
    approval_verified full, replay;
    oe_error e_full, e_replay;
    unsigned char h[32];
    int flags, resigned = 0, r_full, r_replay;
    json_error_t jerr;
    json_t *art;

    if (!init) {
        unsigned char seed[32], sk[64];
        if (sodium_init() < 0)
            abort();
        memset(seed, 7, sizeof(seed));
        crypto_sign_seed_keypair(signer_pk, signer_sk, seed);
        memset(seed, 9, sizeof(seed));
        crypto_sign_seed_keypair(other_pk, sk, seed);
        init = 1;
    }
    check_time_roundtrip(data, size);
    if (size < 1)
        return 0;
    flags = data[0];
    art = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (art == NULL)
        return 0;
    if (flags & 1)
        resigned = resign(art, h) == 0;

    memset(&keys, 0, sizeof(keys));
    if (flags & 4) {
        keys.count = 2;
        memcpy(keys.keys[0].pk, other_pk, 32);
        memcpy(keys.keys[1].pk, signer_pk, 32);
    } else {
        keys.count = 1;
        memcpy(keys.keys[0].pk, signer_pk, 32);
    }
    pol.keys = &keys;
    pol.tenant_id = (flags & 2) ? "acme" : NULL;

    r_full = approval_check(art, HASH, &pol, NOW, APPROVAL_FULL, &full, &e_full);
    r_replay = approval_check(art, HASH, &pol, NOW, APPROVAL_REPLAY, &replay, &e_replay);

    if ((r_full == 0) != (e_full.code == NULL) || (r_replay == 0) != (e_replay.code == NULL))
        abort();
    if (r_full != 0 && (e_full.status != 403 || !known_code(e_full.code)))
        abort();
    if (!full.signature_ok &&
        (full.approval_id != NULL || sodium_is_zero(full.message_sha256, 32) != 1))
        abort();
    if (resigned && (!full.signature_ok || memcmp(full.message_sha256, h, 32) != 0))
        abort();
    if (full.signature_ok != replay.signature_ok)
        abort();
    /* Replay differs from full only by skipping the expiry comparison. */
    if (r_full == 0 && r_replay != 0)
        abort();
    if (r_full != 0 && strcmp(e_full.code, "approval_expired") != 0 &&
        (r_replay == 0 || strcmp(e_full.code, e_replay.code) != 0))
        abort();

    approval_verified_free(&full);
    approval_verified_free(&replay);
    json_decref(art);
    return 0;
}

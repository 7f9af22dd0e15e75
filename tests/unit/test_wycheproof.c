/*
 * test_wycheproof.c - Project Wycheproof's Ed25519 vectors through our
 * whole verification path.
 *
 * SPEC 4 asks for strict Ed25519 (canonical S, no small-order keys); the
 * vectors in $OE_SHARED_DIR/testdata/wycheproof/ed25519_test.json say, for
 * each (key, message, signature), whether a strict verifier must accept it.
 *
 * Rather than calling libsodium directly, each vector goes through the code
 * a request takes: the group's key is loaded from its PEM with
 * keys_parse_public_pem (and must equal the group's raw key and DER), the
 * signature is base64-encoded into an artifact, and approval_check decides.
 * The message is put whole into approval_id and the other four signed
 * fields are empty, so the signed concatenation is exactly the vector's
 * message (messages need not be UTF-8; jansson's _nocheck constructor lets
 * the bytes through, which the JSON parser never would, but the verify path
 * only sees bytes and lengths).  Signatures of the wrong length (truncated,
 * with garbage) are encoded as they are and must fail at the base64 step.
 *
 * Agreement means: "valid" -> the signature verified (signature_ok == 1,
 * whatever later check then fails); "invalid" -> invalid_signature.
 * A missing or unreadable vector file fails the test: a silent skip would
 * turn this into a test that cannot fail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "approval.h"
#include "keys.h"
#include "testutil.h"

/* Any 64-hex request hash: a verified vector then stops at the hash check. */
#define HASH_FOR_VECTORS "0000000000000000000000000000000000000000000000000000000000000000"

/* Hex to bytes; -1 on odd length or bad digits.  *out malloc'd. */
static int unhex(const char *hex, unsigned char **out, size_t *len)
{
    size_t n = strlen(hex);

    *out = malloc(n / 2 + 1);
    if (*out == NULL || n % 2 != 0)
        return -1;
    return sodium_hex2bin(*out, n / 2 + 1, hex, n, NULL, len, NULL);
}

/* Runs one vector; returns 1 if our verdict matches `expected_valid`. */
static int run_vector(const keys_public_set *keys, const unsigned char *msg, size_t msg_len,
                      const unsigned char *sig, size_t sig_len, int expected_valid)
{
    approval_policy pol = {keys, NULL};
    approval_verified out;
    oe_error err;
    size_t b64_size = sodium_base64_ENCODED_LEN(sig_len, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = malloc(b64_size);
    json_t *art;
    int r, verified, agree;

    sodium_bin2base64(b64, b64_size, sig, sig_len, sodium_base64_VARIANT_ORIGINAL);
    art = json_object();
    json_object_set_new(art, "approval_id", json_stringn_nocheck((const char *)msg, msg_len));
    json_object_set_new(art, "tenant_id", json_string(""));
    json_object_set_new(art, "action_hash", json_string(""));
    json_object_set_new(art, "issued_at", json_string(""));
    json_object_set_new(art, "expires_at", json_string(""));
    json_object_set_new(art, "signature", json_string(b64));
    r = approval_check(art, HASH_FOR_VECTORS, &pol, 0, APPROVAL_FULL, &out, &err);
    verified = out.signature_ok == 1;
    /* A verified vector still fails later (empty action_hash); an
     * unverified one must fail exactly at the signature. */
    CHECK_INT(r, -1);
    if (!verified)
        CHECK_STR(err.code, "invalid_signature");
    else
        CHECK_STR(err.code, "action_hash_mismatch");
    agree = verified == expected_valid;
    approval_verified_free(&out);
    json_decref(art);
    free(b64);
    return agree;
}

static void test_every_wycheproof_vector_agrees(void)
{
    const char *shared = getenv("OE_SHARED_DIR");
    char path[1024], why[256];
    json_error_t jerr;
    json_t *root, *groups, *g, *t;
    size_t gi, ti, total = 0, agree = 0, valid = 0, invalid = 0, declared;

    snprintf(path, sizeof(path), "%s/testdata/wycheproof/ed25519_test.json",
             shared ? shared : "../shared");
    root = json_load_file(path, 0, &jerr);
    if (!CHECK(root != NULL)) {
        fprintf(stderr, "  cannot read %s: %s\n", path, jerr.text);
        return;
    }
    CHECK_STR(json_string_value(json_object_get(root, "algorithm")), "EDDSA");
    declared = (size_t)json_integer_value(json_object_get(root, "numberOfTests"));
    groups = json_object_get(root, "testGroups");
    CHECK(json_array_size(groups) > 0);

    json_array_foreach(groups, gi, g)
    {
        const char *pem = json_string_value(json_object_get(g, "publicKeyPem"));
        const char *pk_hex =
            json_string_value(json_object_get(json_object_get(g, "publicKey"), "pk"));
        const char *der_hex = json_string_value(json_object_get(g, "publicKeyDer"));
        keys_public_set keys;
        unsigned char *pk = NULL, *der = NULL;
        size_t pk_len = 0, der_len = 0;

        if (!CHECK(pem != NULL && pk_hex != NULL && der_hex != NULL))
            continue;
        if (!CHECK_INT(keys_parse_public_pem(pem, strlen(pem), &keys, why, sizeof(why)), 0)) {
            fprintf(stderr, "  group %zu: %s\n", gi, why);
            continue;
        }
        CHECK_INT(keys.count, 1);
        CHECK_INT(unhex(pk_hex, &pk, &pk_len), 0);
        CHECK_INT(pk_len, 32);
        CHECK_MEM(keys.keys[0].pk, pk, 32);
        CHECK_INT(unhex(der_hex, &der, &der_len), 0);
        CHECK(der_len == 44 && memcmp(der + 12, pk, 32) == 0);
        free(pk);
        free(der);

        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            const char *result = json_string_value(json_object_get(t, "result"));
            unsigned char *msg = NULL, *sig = NULL;
            size_t msg_len = 0, sig_len = 0;
            int expected_valid = result != NULL && strcmp(result, "valid") == 0;

            total++;
            CHECK(result != NULL &&
                  (strcmp(result, "valid") == 0 || strcmp(result, "invalid") == 0));
            if (!CHECK_INT(unhex(json_string_value(json_object_get(t, "msg")), &msg, &msg_len),
                           0) ||
                !CHECK_INT(unhex(json_string_value(json_object_get(t, "sig")), &sig, &sig_len),
                           0)) {
                free(msg);
                free(sig);
                continue;
            }
            if (expected_valid)
                valid++;
            else
                invalid++;
            if (run_vector(&keys, msg, msg_len, sig, sig_len, expected_valid))
                agree++;
            else
                fprintf(stderr, "  tcId %lld (%s): expected %s, we disagree\n",
                        json_integer_value(json_object_get(t, "tcId")),
                        json_string_value(json_object_get(t, "comment")), result);
            free(msg);
            free(sig);
        }
    }
    printf("     wycheproof ed25519: %zu vectors (%zu valid, %zu invalid), %zu agree\n", total,
           valid, invalid, agree);
    CHECK_INT(total, declared);
    CHECK_INT(agree, total);
    CHECK(total > 100);
    json_decref(root);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    RUN(test_every_wycheproof_vector_agrees);
    return tu_finish();
}

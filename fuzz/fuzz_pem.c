/*
 * fuzz_pem.c - libFuzzer target for keys_parse_public_pem and
 * keys_parse_private_pem.
 *
 * Every input is tried three ways, so the fuzzer reaches the DER walker
 * without first having to discover base64:
 *   1. as PEM text, by both parsers;
 *   2. base64-encoded inside a PUBLIC KEY block;
 *   3. base64-encoded inside a PRIVATE KEY block.
 * Properties (abort() on a violation):
 *   - a refusal always has a reason and leaves the output zeroed;
 *   - an accepted public key is a valid curve point, its key_id is
 *     keys_key_id(pk), and keys_public_pem of it parses back to the same key;
 *   - an accepted private key's pk is derived from its seed, and
 *     keys_private_pem of it parses back to the same key;
 *   - DER accepted in 2/3 is exactly one of the RFC 8410 images (44 bytes
 *     SPKI; 48-byte PKCS#8 v1/v2 or 83-byte v2 with the public key): the
 *     parser may only ever be as lenient as the templates in keys.c.
 *
 * Build: CC=clang cmake -S . -B build-fuzz -DOE_FUZZ=ON && make -C build-fuzz fuzz_pem
 * Run:   build-fuzz/fuzz_pem -max_len=4096 fuzz/corpus/pem
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char SPKI_PREFIX[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                              0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

static int all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t i;

    for (i = 0; i < n; i++)
        if (b[i] != 0)
            return 0;
    return 1;
}

/* Returns 1 when accepted; aborts on a broken property. */
static int check_public(const char *text, size_t len)
{
    keys_public_set set, again;
    char why[256] = "", id[KEYS_ID_LEN + 1];
    size_t i;

    if (keys_parse_public_pem(text, len, &set, why, sizeof(why)) != 0) {
        if (why[0] == '\0' || !all_zero(&set, sizeof(set)))
            abort();
        return 0;
    }
    if (set.count == 0 || set.count > KEYS_MAX_PUBLIC)
        abort();
    for (i = 0; i < set.count; i++) {
        char *pem = keys_public_pem(set.keys[i].pk);
        if (crypto_core_ed25519_is_valid_point(set.keys[i].pk) != 1)
            abort();
        keys_key_id(set.keys[i].pk, id);
        if (strcmp(id, set.keys[i].key_id) != 0)
            abort();
        if (pem == NULL || keys_parse_public_pem(pem, strlen(pem), &again, why, sizeof(why)) != 0 ||
            again.count != 1 || memcmp(again.keys[0].pk, set.keys[i].pk, 32) != 0)
            abort();
        free(pem);
    }
    return 1;
}

static int check_private(const char *text, size_t len)
{
    keys_private k, again;
    unsigned char pk[32], sk[64];
    char why[256] = "";
    char *pem;

    if (keys_parse_private_pem(text, len, &k, why, sizeof(why)) != 0) {
        if (why[0] == '\0' || !all_zero(&k, sizeof(k)))
            abort();
        return 0;
    }
    crypto_sign_seed_keypair(pk, sk, k.sk);
    if (memcmp(pk, k.pk, 32) != 0 || memcmp(sk, k.sk, 64) != 0)
        abort();
    pem = keys_private_pem(&k);
    if (pem == NULL || keys_parse_private_pem(pem, strlen(pem), &again, why, sizeof(why)) != 0 ||
        memcmp(again.sk, k.sk, 64) != 0)
        abort();
    free(pem);
    return 1;
}

/* PEM of label around der, in 64-column lines.  Caller frees. */
static char *wrap(const char *label, const uint8_t *der, size_t len, size_t *out_len)
{
    size_t b64_size = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = malloc(b64_size), *pem = malloc(b64_size * 2 + 100);
    size_t i, n, bl;

    sodium_bin2base64(b64, b64_size, der, len, sodium_base64_VARIANT_ORIGINAL);
    bl = strlen(b64);
    n = (size_t)snprintf(pem, 64, "-----BEGIN %s-----\n", label);
    for (i = 0; i < bl; i += 64) {
        size_t c = bl - i < 64 ? bl - i : 64;
        memcpy(pem + n, b64 + i, c);
        n += c;
        pem[n++] = '\n';
    }
    n += (size_t)snprintf(pem + n, 64, "-----END %s-----\n", label);
    free(b64);
    *out_len = n;
    return pem;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    char *pem;
    size_t n;

    if (!init) {
        if (sodium_init() < 0)
            abort();
        init = 1;
    }
    if (size > 8192)
        return 0;
    check_public((const char *)data, size);
    check_private((const char *)data, size);

    pem = wrap("PUBLIC KEY", data, size, &n);
    if (check_public(pem, n) && (size != 44 || memcmp(data, SPKI_PREFIX, 12) != 0))
        abort();
    free(pem);

    pem = wrap("PRIVATE KEY", data, size, &n);
    if (check_private(pem, n) && size != 48 && size != 83)
        abort();
    free(pem);
    return 0;
}

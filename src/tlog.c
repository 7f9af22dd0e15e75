/*
 * tlog.c - RFC 6962 / RFC 9162 Merkle trees and C2SP checkpoints (tlog.h).
 *
 * Addressing: a perfect subtree is (level L, index i), covering leaves
 * [i << L, (i + 1) << L).  Every range the RFC's recursive definitions ask
 * for is either such a perfect subtree or a right edge [lo, size) that
 * splits into O(log n) of them, so roots and proofs need O(log n) node
 * lookups.
 *
 * The proof generators follow the RFC's recursive definitions literally
 * (PATH and SUBPROOF, RFC 6962 2.1.1-2.1.2); the verifiers follow RFC 9162's
 * iterative algorithms.  Having the two written independently is what the
 * round-trip tests lean on.
 */
#include "tlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define EM_DASH "\xe2\x80\x94"
#define ROOT_B64_LEN 44 /* base64 of 32 bytes, padded */

void tlog_leaf_hash(const void *data, size_t len, uint8_t out[32])
{
    crypto_hash_sha256_state st;
    static const uint8_t prefix = 0x00;

    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, &prefix, 1);
    crypto_hash_sha256_update(&st, data, len);
    crypto_hash_sha256_final(&st, out);
}

void tlog_node_hash(const uint8_t left[32], const uint8_t right[32], uint8_t out[32])
{
    uint8_t buf[65];

    buf[0] = 0x01;
    memcpy(buf + 1, left, 32);
    memcpy(buf + 33, right, 32);
    crypto_hash_sha256(out, buf, sizeof(buf));
}

static void empty_root(uint8_t out[32])
{
    crypto_hash_sha256(out, (const unsigned char *)"", 0);
}

/* ---- frontier ------------------------------------------------------------ */

void tlog_frontier_init(tlog_frontier *f)
{
    memset(f, 0, sizeof(*f));
}

int tlog_frontier_load(tlog_frontier *f, uint64_t size, tlog_node_fn get, void *ctx)
{
    unsigned level;

    tlog_frontier_init(f);
    for (level = 0; level < 64; level++) {
        if (((size >> level) & 1) == 0)
            continue;
        if (get(ctx, level, (size >> level) - 1, f->hash[level]) != 0)
            return -1;
    }
    f->size = size;
    return 0;
}

int tlog_frontier_append(tlog_frontier *f, const uint8_t leaf[32], tlog_emit_fn emit, void *ctx)
{
    uint64_t s = f->size;
    uint8_t h[32];
    unsigned level = 0;

    if (emit != NULL && emit(ctx, 0, s, leaf) != 0)
        return -1;
    memcpy(h, leaf, 32);
    while ((s >> level) & 1) {
        tlog_node_hash(f->hash[level], h, h);
        level++;
        if (emit != NULL && emit(ctx, level, s >> level, h) != 0)
            return -1;
    }
    memcpy(f->hash[level], h, 32);
    f->size = s + 1;
    return 0;
}

void tlog_frontier_root(const tlog_frontier *f, uint8_t out[32])
{
    uint8_t acc[32];
    unsigned level;
    int have = 0;

    for (level = 0; level < 64; level++) {
        if (((f->size >> level) & 1) == 0)
            continue;
        if (have) {
            tlog_node_hash(f->hash[level], acc, acc);
        } else {
            memcpy(acc, f->hash[level], 32);
            have = 1;
        }
    }
    if (have)
        memcpy(out, acc, 32);
    else
        empty_root(out);
}

/* ---- subtree hashes and proofs ----------------------------------------- */

/* Largest power of two strictly less than n (n >= 2). */
static uint64_t split_point(uint64_t n)
{
    uint64_t k = 1;

    while (k << 1 < n)
        k <<= 1;
    return k;
}

static int is_perfect(uint64_t lo, uint64_t n, unsigned *level)
{
    unsigned l = 0;

    if ((n & (n - 1)) != 0)
        return 0;
    while ((1ULL << l) < n)
        l++;
    if ((lo & (n - 1)) != 0)
        return 0;
    *level = l;
    return 1;
}

int tlog_subtree_hash(tlog_node_fn get, void *ctx, uint64_t lo, uint64_t hi, uint8_t out[32])
{
    uint8_t left[32], right[32];
    uint64_t n = hi - lo, k;
    unsigned level;

    if (hi <= lo)
        return -1;
    if (is_perfect(lo, n, &level))
        return get(ctx, level, lo >> level, out);
    k = split_point(n);
    if (tlog_subtree_hash(get, ctx, lo, lo + k, left) != 0 ||
        tlog_subtree_hash(get, ctx, lo + k, hi, right) != 0)
        return -1;
    tlog_node_hash(left, right, out);
    return 0;
}

int tlog_root(tlog_node_fn get, void *ctx, uint64_t size, uint8_t out[32])
{
    if (size == 0) {
        empty_root(out);
        return 0;
    }
    return tlog_subtree_hash(get, ctx, 0, size, out);
}

static int push(uint8_t proof[][32], size_t *count, const uint8_t h[32])
{
    if (*count >= TLOG_MAX_PROOF)
        return -1;
    memcpy(proof[(*count)++], h, 32);
    return 0;
}

/* PATH(m, D[lo:hi]) of RFC 6962 2.1.1; m relative to lo. */
static int path(tlog_node_fn get, void *ctx, uint64_t m, uint64_t lo, uint64_t hi,
                uint8_t proof[][32], size_t *count)
{
    uint64_t n = hi - lo, k;
    uint8_t h[32];

    if (n <= 1)
        return 0;
    k = split_point(n);
    if (m < k) {
        if (path(get, ctx, m, lo, lo + k, proof, count) != 0 ||
            tlog_subtree_hash(get, ctx, lo + k, hi, h) != 0)
            return -1;
    } else {
        if (path(get, ctx, m - k, lo + k, hi, proof, count) != 0 ||
            tlog_subtree_hash(get, ctx, lo, lo + k, h) != 0)
            return -1;
    }
    return push(proof, count, h);
}

int tlog_inclusion_proof(tlog_node_fn get, void *ctx, uint64_t index, uint64_t size,
                         uint8_t proof[][32], size_t *count)
{
    *count = 0;
    if (index >= size)
        return -1;
    return path(get, ctx, index, 0, size, proof, count);
}

/* SUBPROOF(m, D[lo:hi], b) of RFC 6962 2.1.2; m relative to lo. */
static int subproof(tlog_node_fn get, void *ctx, uint64_t m, uint64_t lo, uint64_t hi, int b,
                    uint8_t proof[][32], size_t *count)
{
    uint64_t n = hi - lo, k;
    uint8_t h[32];

    if (m == n) {
        if (b)
            return 0;
        if (tlog_subtree_hash(get, ctx, lo, hi, h) != 0)
            return -1;
        return push(proof, count, h);
    }
    k = split_point(n);
    if (m <= k) {
        if (subproof(get, ctx, m, lo, lo + k, b, proof, count) != 0 ||
            tlog_subtree_hash(get, ctx, lo + k, hi, h) != 0)
            return -1;
    } else {
        if (subproof(get, ctx, m - k, lo + k, hi, 0, proof, count) != 0 ||
            tlog_subtree_hash(get, ctx, lo, lo + k, h) != 0)
            return -1;
    }
    return push(proof, count, h);
}

int tlog_consistency_proof(tlog_node_fn get, void *ctx, uint64_t m, uint64_t n, uint8_t proof[][32],
                           size_t *count)
{
    *count = 0;
    if (m == 0 || m > n)
        return -1;
    if (m == n)
        return 0;
    return subproof(get, ctx, m, 0, n, 1, proof, count);
}

int tlog_verify_inclusion(const uint8_t leaf[32], uint64_t index, uint64_t size,
                          const uint8_t proof[][32], size_t count, const uint8_t root[32])
{
    uint64_t fn = index, sn;
    uint8_t r[32];
    size_t i;

    if (index >= size)
        return 0;
    sn = size - 1;
    memcpy(r, leaf, 32);
    for (i = 0; i < count; i++) {
        if (sn == 0)
            return 0;
        if ((fn & 1) || fn == sn) {
            tlog_node_hash(proof[i], r, r);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            tlog_node_hash(r, proof[i], r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && sodium_memcmp(r, root, 32) == 0;
}

int tlog_verify_consistency(uint64_t m, uint64_t n, const uint8_t old_root[32],
                            const uint8_t new_root[32], const uint8_t proof[][32], size_t count)
{
    uint8_t fr[32], sr[32];
    uint64_t fn, sn;
    size_t i = 0;

    if (m == 0 || m > n)
        return 0;
    if (m == n)
        return count == 0 && sodium_memcmp(old_root, new_root, 32) == 0;
    if (count == 0)
        return 0;
    fn = m - 1;
    sn = n - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    /* When m is a power of two the old root is itself the first node of the
     * path (RFC 9162 step 2: "prepend first_hash"). */
    if ((m & (m - 1)) == 0) {
        memcpy(fr, old_root, 32);
    } else {
        memcpy(fr, proof[0], 32);
        i = 1;
    }
    memcpy(sr, fr, 32);
    for (; i < count; i++) {
        if (sn == 0)
            return 0;
        if ((fn & 1) || fn == sn) {
            tlog_node_hash(proof[i], fr, fr);
            tlog_node_hash(proof[i], sr, sr);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            tlog_node_hash(sr, proof[i], sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && sodium_memcmp(fr, old_root, 32) == 0 && sodium_memcmp(sr, new_root, 32) == 0;
}

/* ---- checkpoints -------------------------------------------------------- */

static void key_hash4(const char *origin, const unsigned char pk[32], uint8_t out[4])
{
    crypto_hash_sha256_state st;
    uint8_t full[32];
    static const uint8_t sep[2] = {0x0a, 0x01}; /* "\n" then the Ed25519 type byte */

    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)origin, strlen(origin));
    crypto_hash_sha256_update(&st, sep, 2);
    crypto_hash_sha256_update(&st, pk, 32);
    crypto_hash_sha256_final(&st, full);
    memcpy(out, full, 4);
}

static void append_body(oe_buf *b, const char *origin, uint64_t size, const uint8_t root[32])
{
    char root64[ROOT_B64_LEN + 1];

    sodium_bin2base64(root64, sizeof(root64), root, 32, sodium_base64_VARIANT_ORIGINAL);
    oe_buf_printf(b, "%s\n%llu\n%s\n", origin, (unsigned long long)size, root64);
}

int tlog_checkpoint_sign(const keys_private *key, const char *origin, uint64_t size,
                         const uint8_t root[32], oe_buf *note)
{
    uint8_t sigblob[4 + crypto_sign_BYTES];
    char sig64[sodium_base64_ENCODED_LEN(sizeof(sigblob), sodium_base64_VARIANT_ORIGINAL)];
    size_t body_start = note->len;

    append_body(note, origin, size, root);
    if (note->failed)
        return -1;
    key_hash4(origin, key->pk, sigblob);
    crypto_sign_detached(sigblob + 4, NULL, (const unsigned char *)note->data + body_start,
                         note->len - body_start, key->sk);
    sodium_bin2base64(sig64, sizeof(sig64), sigblob, sizeof(sigblob),
                      sodium_base64_VARIANT_ORIGINAL);
    oe_buf_printf(note, "\n" EM_DASH " %s %s\n", origin, sig64);
    return note->failed ? -1 : 0;
}

int tlog_checkpoint_parse(const char *note, size_t len, tlog_checkpoint *out)
{
    const char *p = note, *end = note + len, *nl;
    char num[24], root64[ROOT_B64_LEN + 1];
    size_t n, root_len;
    unsigned long long size = 0;
    size_t i;

    /* origin line */
    if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL || nl == p ||
        (size_t)(nl - p) >= sizeof(out->origin))
        return -1;
    memcpy(out->origin, p, (size_t)(nl - p));
    out->origin[nl - p] = '\0';
    if (memchr(out->origin, '\0', (size_t)(nl - p)) != NULL)
        return -1;
    p = nl + 1;
    /* size line: decimal, no sign, no leading zeros except "0" */
    if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL || nl == p ||
        (n = (size_t)(nl - p)) >= sizeof(num) || (n > 1 && p[0] == '0'))
        return -1;
    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9' || size > (UINT64_MAX - (uint64_t)(p[i] - '0')) / 10)
            return -1;
        size = size * 10 + (uint64_t)(p[i] - '0');
    }
    out->size = size;
    p = nl + 1;
    /* root line */
    if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL || (size_t)(nl - p) != ROOT_B64_LEN)
        return -1;
    memcpy(root64, p, ROOT_B64_LEN);
    root64[ROOT_B64_LEN] = '\0';
    if (sodium_base642bin(out->root, 32, root64, ROOT_B64_LEN, NULL, &root_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        root_len != 32)
        return -1;
    return 0;
}

int tlog_checkpoint_verify(const char *note, size_t len, const unsigned char pk[32],
                           tlog_checkpoint *out, char *why, size_t why_len)
{
    const char *sep, *line, *end = note + len;
    uint8_t want[4];
    size_t body_len;

    if (tlog_checkpoint_parse(note, len, out) != 0) {
        snprintf(why, why_len, "malformed checkpoint");
        return 0;
    }
    /* The body ends at the blank line; signature lines follow. */
    sep = NULL;
    for (line = note; line + 1 < end; line++)
        if (line[0] == '\n' && line[1] == '\n') {
            sep = line;
            break;
        }
    if (sep == NULL) {
        snprintf(why, why_len, "checkpoint has no signature block");
        return 0;
    }
    body_len = (size_t)(sep - note) + 1;
    key_hash4(out->origin, pk, want);
    for (line = sep + 2; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *name, *sig64;
        size_t name_len = strlen(out->origin), sig_len;
        uint8_t blob[4 + crypto_sign_BYTES + 1];
        size_t blob_len;

        if (nl == NULL)
            break;
        name = line + sizeof(EM_DASH) - 1 + 1;
        if ((size_t)(nl - line) > sizeof(EM_DASH) + name_len &&
            memcmp(line, EM_DASH " ", sizeof(EM_DASH)) == 0 &&
            memcmp(name, out->origin, name_len) == 0 && name[name_len] == ' ') {
            sig64 = name + name_len + 1;
            sig_len = (size_t)(nl - sig64);
            if (sodium_base642bin(blob, sizeof(blob), sig64, sig_len, NULL, &blob_len, NULL,
                                  sodium_base64_VARIANT_ORIGINAL) == 0 &&
                blob_len == sizeof(blob) - 1 && memcmp(blob, want, 4) == 0 &&
                crypto_sign_verify_detached(blob + 4, (const unsigned char *)note, body_len, pk) ==
                    0)
                return 1;
        }
        line = nl + 1;
    }
    snprintf(why, why_len, "no valid signature by this key for origin %s", out->origin);
    return 0;
}

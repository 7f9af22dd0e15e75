/*
 * test_tlog.c - the Merkle tree against published RFC 6962 test vectors and
 * against itself (every proof the generators make must verify; every
 * tampered one must not), plus C2SP checkpoint signing and verification.
 *
 * Vectors: the eight-leaf test tree of Certificate Transparency's reference
 * implementation (certificate-transparency, src/merkletree/
 * merkle_tree_test.cc: kInputs, kSHA256Roots, kSHA256Paths, kSHA256Proofs),
 * which Trillian and RFC 9162 implementations reuse.  Leaf indices there are
 * 1-based; here 0-based.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "testutil.h"
#include "tlog.h"

#define MAX_NODES 4096

typedef struct mem_tree {
    size_t count;
    unsigned level[MAX_NODES];
    uint64_t index[MAX_NODES];
    uint8_t hash[MAX_NODES][32];
    int lookups;
} mem_tree;

static int mem_emit(void *ctx, unsigned level, uint64_t index, const uint8_t h[32])
{
    mem_tree *t = ctx;

    if (t->count == MAX_NODES)
        return -1;
    t->level[t->count] = level;
    t->index[t->count] = index;
    memcpy(t->hash[t->count], h, 32);
    t->count++;
    return 0;
}

static int mem_get(void *ctx, unsigned level, uint64_t index, uint8_t out[32])
{
    mem_tree *t = ctx;
    size_t i;

    t->lookups++;
    for (i = 0; i < t->count; i++)
        if (t->level[i] == level && t->index[i] == index) {
            memcpy(out, t->hash[i], 32);
            return 0;
        }
    return -1;
}

static void hex(const char *s, uint8_t out[32])
{
    size_t n;
    sodium_hex2bin(out, 32, s, 64, NULL, &n, NULL);
}

static const char *const ROOTS[8] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

static mem_tree tree;

static void build_ct_tree(void)
{
    static const char *const inputs[8] = {"", "\x00", "\x10", "\x20\x21", "\x30\x31",
                                          "\x40\x41\x42\x43",
                                          "\x50\x51\x52\x53\x54\x55\x56\x57",
                                          "\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f"};
    static const size_t lens[8] = {0, 1, 1, 2, 2, 4, 8, 16};
    tlog_frontier f;
    uint8_t leaf[32], root[32], want[32];
    int i;

    memset(&tree, 0, sizeof(tree));
    tlog_frontier_init(&f);
    for (i = 0; i < 8; i++) {
        tlog_leaf_hash(inputs[i], lens[i], leaf);
        CHECK(tlog_frontier_append(&f, leaf, mem_emit, &tree) == 0);
        tlog_frontier_root(&f, root);
        hex(ROOTS[i], want);
        CHECK_MEM(root, want, 32);
        CHECK(tlog_root(mem_get, &tree, (uint64_t)i + 1, root) == 0);
        CHECK_MEM(root, want, 32);
    }
}

static void test_roots_match_ct_vectors(void)
{
    uint8_t root[32], empty[32];

    build_ct_tree();
    CHECK(tlog_root(mem_get, &tree, 0, root) == 0);
    hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", empty);
    CHECK_MEM(root, empty, 32);
}

static void check_proof(const uint8_t proof[][32], size_t count, const char *const *want, size_t n)
{
    uint8_t h[32];
    size_t i;

    CHECK_INT(count, n);
    for (i = 0; i < n && i < count; i++) {
        hex(want[i], h);
        CHECK_MEM(proof[i], h, 32);
    }
}

static void test_inclusion_proofs_match_ct_vectors(void)
{
    static const char *const p0_8[] = {
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"};
    static const char *const p5_8[] = {
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"};
    static const char *const p2_3[] = {
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"};
    static const char *const p1_5[] = {
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"};
    uint8_t proof[TLOG_MAX_PROOF][32];
    size_t count;

    build_ct_tree();
    CHECK(tlog_inclusion_proof(mem_get, &tree, 0, 1, proof, &count) == 0);
    CHECK_INT(count, 0);
    CHECK(tlog_inclusion_proof(mem_get, &tree, 0, 8, proof, &count) == 0);
    check_proof((const uint8_t(*)[32])proof, count, p0_8, 3);
    CHECK(tlog_inclusion_proof(mem_get, &tree, 5, 8, proof, &count) == 0);
    check_proof((const uint8_t(*)[32])proof, count, p5_8, 3);
    CHECK(tlog_inclusion_proof(mem_get, &tree, 2, 3, proof, &count) == 0);
    check_proof((const uint8_t(*)[32])proof, count, p2_3, 1);
    CHECK(tlog_inclusion_proof(mem_get, &tree, 1, 5, proof, &count) == 0);
    check_proof((const uint8_t(*)[32])proof, count, p1_5, 3);
    CHECK(tlog_inclusion_proof(mem_get, &tree, 8, 8, proof, &count) != 0);
}

static void test_consistency_proofs_match_ct_vectors(void)
{
    static const char *const c1_8[] = {
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"};
    static const char *const c6_8[] = {
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"};
    static const char *const c2_5[] = {
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"};
    uint8_t proof[TLOG_MAX_PROOF][32];
    size_t count;

    build_ct_tree();
    CHECK(tlog_consistency_proof(mem_get, &tree, 1, 1, proof, &count) == 0);
    CHECK_INT(count, 0);
    CHECK(tlog_consistency_proof(mem_get, &tree, 1, 8, proof, &count) == 0);
    check_proof((const uint8_t(*)[32])proof, count, c1_8, 3);
    CHECK(tlog_consistency_proof(mem_get, &tree, 6, 8, proof, &count) == 0);
    check_proof((const uint8_t(*)[32])proof, count, c6_8, 3);
    CHECK(tlog_consistency_proof(mem_get, &tree, 2, 5, proof, &count) == 0);
    check_proof((const uint8_t(*)[32])proof, count, c2_5, 2);
    CHECK(tlog_consistency_proof(mem_get, &tree, 0, 5, proof, &count) != 0);
    CHECK(tlog_consistency_proof(mem_get, &tree, 6, 5, proof, &count) != 0);
}

/* Every proof of every leaf/size pair of a 300-leaf tree verifies, and
 * flipping any bit of any input makes it fail. */
static void test_all_proofs_round_trip_and_tampering_fails(void)
{
    static mem_tree big;
    static uint8_t leaves[300][32], roots[301][32];
    uint8_t proof[TLOG_MAX_PROOF][32];
    tlog_frontier f;
    size_t count;
    uint64_t n, m, i;
    char data[16];

    memset(&big, 0, sizeof(big));
    tlog_frontier_init(&f);
    tlog_frontier_root(&f, roots[0]);
    for (i = 0; i < 300; i++) {
        int len = snprintf(data, sizeof(data), "leaf %llu", (unsigned long long)i);
        tlog_leaf_hash(data, (size_t)len, leaves[i]);
        CHECK(tlog_frontier_append(&f, leaves[i], mem_emit, &big) == 0);
        tlog_frontier_root(&f, roots[i + 1]);
    }
    CHECK_INT(big.count, 2 * 300 - 4); /* leaves + internal perfect nodes (300 = 256+32+8+4) */
    for (n = 1; n <= 300; n += 7) {
        for (i = 0; i < n; i += 3) {
            CHECK(tlog_inclusion_proof(mem_get, &big, i, n, proof, &count) == 0);
            CHECK(tlog_verify_inclusion(leaves[i], i, n, (const uint8_t(*)[32])proof, count,
                                        roots[n]));
            /* The proof is bound to its root: another tree head refuses it. */
            CHECK(!tlog_verify_inclusion(leaves[i], i, n, (const uint8_t(*)[32])proof, count,
                                         roots[n - 1]));
            if (n > 1)
                CHECK(!tlog_verify_inclusion(leaves[(i + 1) % n], i, n,
                                             (const uint8_t(*)[32])proof, count, roots[n]));
            if (count > 0) {
                proof[count / 2][5] ^= 0x10;
                CHECK(!tlog_verify_inclusion(leaves[i], i, n, (const uint8_t(*)[32])proof,
                                             count, roots[n]));
                CHECK(!tlog_verify_inclusion(leaves[i], i, n, (const uint8_t(*)[32])proof,
                                             count - 1, roots[n]));
            }
        }
        for (m = 1; m <= n; m += 5) {
            CHECK(tlog_consistency_proof(mem_get, &big, m, n, proof, &count) == 0);
            CHECK(tlog_verify_consistency(m, n, roots[m], roots[n], (const uint8_t(*)[32])proof,
                                          count));
            if (m < n) {
                CHECK(!tlog_verify_consistency(m, n, roots[m - 1], roots[n],
                                               (const uint8_t(*)[32])proof, count));
                CHECK(!tlog_verify_consistency(m, n, roots[m], roots[n - 1],
                                               (const uint8_t(*)[32])proof, count));
                proof[0][0] ^= 1;
                CHECK(!tlog_verify_consistency(m, n, roots[m], roots[n],
                                               (const uint8_t(*)[32])proof, count));
            }
        }
    }
}

static void test_frontier_reload_continues_the_same_tree(void)
{
    tlog_frontier f, g;
    uint8_t leaf[32], a[32], b[32];
    int i;

    build_ct_tree();
    CHECK(tlog_frontier_load(&f, 7, mem_get, &tree) == 0);
    tlog_frontier_root(&f, a);
    hex(ROOTS[6], b);
    CHECK_MEM(a, b, 32);
    tlog_leaf_hash("\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f", 16, leaf);
    g = f;
    CHECK(tlog_frontier_append(&g, leaf, NULL, NULL) == 0);
    tlog_frontier_root(&g, a);
    hex(ROOTS[7], b);
    CHECK_MEM(a, b, 32);
    for (i = 0; i < 3; i++)
        CHECK(tlog_frontier_load(&f, 9, mem_get, &tree) != 0); /* no such nodes */
}

/* Lookups stay logarithmic: a proof in a tree of 2^20 + 12345 leaves. */
static int synthetic_get(void *ctx, unsigned level, uint64_t index, uint8_t out[32])
{
    int *lookups = ctx;
    (*lookups)++;
    memset(out, 0, 32);
    memcpy(out, &level, sizeof(level));
    memcpy(out + 8, &index, sizeof(index));
    return 0;
}

static void test_proofs_cost_logarithmic_lookups(void)
{
    uint8_t proof[TLOG_MAX_PROOF][32];
    size_t count;
    int lookups = 0;
    uint64_t n = (1ULL << 40) + 12345;

    CHECK(tlog_inclusion_proof(synthetic_get, &lookups, 777, n, proof, &count) == 0);
    CHECK(lookups <= 2 * 41);
    lookups = 0;
    CHECK(tlog_consistency_proof(synthetic_get, &lookups, (1ULL << 39) + 5, n, proof, &count) == 0);
    CHECK(lookups <= 3 * 41);
}

static void test_checkpoint_sign_and_verify(void)
{
    keys_private key, other;
    uint8_t root[32];
    tlog_checkpoint cp;
    oe_buf note, again;
    char why[128];

    keys_generate(&key);
    keys_generate(&other);
    hex(ROOTS[7], root);
    oe_buf_init(&note, 4096);
    CHECK(tlog_checkpoint_sign(&key, "openexec/test", 8, root, &note) == 0);
    CHECK(strncmp(note.data, "openexec/test\n8\nXcnaeacGWamtVZy3Ad7Zoqudgjqt L0lgz+Nw7/RgQyg=\n", 10) == 0);
    CHECK(strstr(note.data, "\n\n\xe2\x80\x94 openexec/test ") != NULL);
    CHECK(tlog_checkpoint_verify(note.data, note.len, key.pk, &cp, why, sizeof(why)));
    CHECK_STR(cp.origin, "openexec/test");
    CHECK_INT(cp.size, 8);
    CHECK_MEM(cp.root, root, 32);
    CHECK(!tlog_checkpoint_verify(note.data, note.len, other.pk, &cp, why, sizeof(why)));
    /* Deterministic: the same inputs sign the same bytes. */
    oe_buf_init(&again, 4096);
    CHECK(tlog_checkpoint_sign(&key, "openexec/test", 8, root, &again) == 0);
    CHECK(again.len == note.len && memcmp(again.data, note.data, note.len) == 0);
    /* Any change to the body breaks it. */
    note.data[14] = '9';
    CHECK(!tlog_checkpoint_verify(note.data, note.len, key.pk, &cp, why, sizeof(why)));
    CHECK(tlog_checkpoint_parse("x\n01\nAAAA\n", 10, &cp) != 0);
    CHECK(tlog_checkpoint_parse("", 0, &cp) != 0);
    oe_buf_free(&note);
    oe_buf_free(&again);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    RUN(test_roots_match_ct_vectors);
    RUN(test_inclusion_proofs_match_ct_vectors);
    RUN(test_consistency_proofs_match_ct_vectors);
    RUN(test_all_proofs_round_trip_and_tampering_fails);
    RUN(test_frontier_reload_continues_the_same_tree);
    RUN(test_proofs_cost_logarithmic_lookups);
    RUN(test_checkpoint_sign_and_verify);
    return tu_finish();
}

/*
 * tlog.h - RFC 6962 / RFC 9162 Merkle tree math and C2SP checkpoints.
 *
 * Pure functions: no I/O, no allocation beyond the caller's buffers.  Where
 * hashes of earlier subtrees are needed they come from a node source, a
 * callback returning the stored hash of a *perfect* subtree, named by
 * (level, index) and covering leaves [index << level, (index + 1) << level).
 * A log that stores every perfect node it completes can answer any root,
 * inclusion or consistency proof with O(log n) lookups, never a scan.
 */
#ifndef OE_TLOG_H
#define OE_TLOG_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "keys.h"

#define TLOG_HASH_LEN 32
#define TLOG_MAX_PROOF 128 /* > 2 * 64 levels: enough for any uint64 tree */

typedef int (*tlog_node_fn)(void *ctx, unsigned level, uint64_t index, uint8_t out[32]);
typedef int (*tlog_emit_fn)(void *ctx, unsigned level, uint64_t index, const uint8_t hash[32]);

/* SHA-256(0x00 || data) and SHA-256(0x01 || left || right). */
void tlog_leaf_hash(const void *data, size_t len, uint8_t out[32]);
void tlog_node_hash(const uint8_t left[32], const uint8_t right[32], uint8_t out[32]);

/* The right edge of a tree: the roots of the perfect subtrees that make up
 * its first `size` leaves (one per set bit of size).  Enough to append
 * leaves and compute roots without reading anything. */
typedef struct tlog_frontier {
    uint64_t size;
    uint8_t hash[64][32]; /* hash[L] is valid iff bit L of size is set */
} tlog_frontier;

void tlog_frontier_init(tlog_frontier *f);
/* Loads the frontier of a tree of `size` leaves from a node source. */
int tlog_frontier_load(tlog_frontier *f, uint64_t size, tlog_node_fn get, void *ctx);
/* Appends one leaf hash; calls emit for the leaf (level 0) and for every
 * perfect subtree the leaf completes.  -1 if emit failed (f unchanged). */
int tlog_frontier_append(tlog_frontier *f, const uint8_t leaf[32], tlog_emit_fn emit, void *ctx);
/* The tree head; SHA-256 of the empty string for size 0. */
void tlog_frontier_root(const tlog_frontier *f, uint8_t out[32]);

/* MTH of leaves [lo, hi) (RFC 6962 2.1), lo < hi. */
int tlog_subtree_hash(tlog_node_fn get, void *ctx, uint64_t lo, uint64_t hi, uint8_t out[32]);
/* Root of the first `size` leaves (empty-string hash for 0). */
int tlog_root(tlog_node_fn get, void *ctx, uint64_t size, uint8_t out[32]);

/* RFC 9162 2.1.3.1 inclusion proof of leaf `index` in a tree of `size`.
 * proof must hold TLOG_MAX_PROOF hashes. */
int tlog_inclusion_proof(tlog_node_fn get, void *ctx, uint64_t index, uint64_t size,
                         uint8_t proof[][32], size_t *count);
/* RFC 9162 2.1.4.1 consistency proof between sizes 0 < m <= n. */
int tlog_consistency_proof(tlog_node_fn get, void *ctx, uint64_t m, uint64_t n, uint8_t proof[][32],
                           size_t *count);

/* RFC 9162 2.1.3.2 and 2.1.4.2.  1 when the proof holds, 0 otherwise. */
int tlog_verify_inclusion(const uint8_t leaf[32], uint64_t index, uint64_t size,
                          const uint8_t proof[][32], size_t count, const uint8_t root[32])
    __attribute__((warn_unused_result));
int tlog_verify_consistency(uint64_t m, uint64_t n, const uint8_t old_root[32],
                            const uint8_t new_root[32], const uint8_t proof[][32], size_t count)
    __attribute__((warn_unused_result));

/* C2SP tlog-checkpoint as a C2SP signed-note:
 *   ORIGIN\nSIZE\nBASE64(ROOT)\n\n— ORIGIN BASE64(KEYHASH4 || SIG)\n
 * KEYHASH4 = SHA-256(ORIGIN || 0x0A || 0x01 || pk)[:4]; SIG = Ed25519 over
 * the body (the first three lines).  Ed25519 is deterministic, so the note
 * for a given (origin, size, root, key) is always the same bytes. */
int tlog_checkpoint_sign(const keys_private *key, const char *origin, uint64_t size,
                         const uint8_t root[32], oe_buf *note);

typedef struct tlog_checkpoint {
    char origin[256];
    uint64_t size;
    uint8_t root[32];
} tlog_checkpoint;

/* Parses a note's body without checking any signature.  0 ok, -1 malformed. */
int tlog_checkpoint_parse(const char *note, size_t len, tlog_checkpoint *out);
/* Parses and verifies the signature line named after the origin with pk.
 * 1 when valid; 0 otherwise (why says what is wrong). */
int tlog_checkpoint_verify(const char *note, size_t len, const unsigned char pk[32],
                           tlog_checkpoint *out, char *why, size_t why_len)
    __attribute__((warn_unused_result));

#endif

/*
 * store_backend.h - what a database must provide to sit behind store.h.
 *
 * store.c owns the queue, the writer thread, group commit, the Merkle
 * frontier, proofs for a batch, checkpoint signing and the health probe; a
 * backend only runs statements.  The writer calls begin, then for each item
 * claim (executions only) / append_receipt / put_node / complete, then
 * commit; if any call fails the whole batch is rolled back and every item
 * reports STORE_FAILED (nothing is half-written).
 *
 * Tables (see store_sqlite.c for the reference schema):
 *   executions(nonce PK, exec_id, action_hash, approval_id, state, status,
 *              response, tree_size, tree_root, result_sha256, error,
 *              claimed_by (the log origin of the claiming instance), ...)
 *   approvals_used(message_sha256 PK, approval_id UNIQUE, nonce, used_us)
 *   logs(log_id PK, origin UNIQUE, public_key, lease_holder, lease_expires_us,
 *        checkpoint, checkpoint_size)
 *   receipts(log_id, seq, exec_id, body; PK (log_id, seq))
 *   tlog_nodes(log_id, level, idx, hash; PK (log_id, level, idx))
 *   checkpoints(log_id, size, note; PK (log_id, size)): every signed head,
 *              saved in the transaction of the entries it covers
 */
#ifndef OE_STORE_BACKEND_H
#define OE_STORE_BACKEND_H

#include <stddef.h>

#include "config.h"
#include "store.h"

typedef struct store_lease {
    const char *origin;
    const unsigned char *public_key; /* 32 bytes */
    const char *holder;              /* this instance: "host:pid:uuid" */
    int64_t now_us, expires_us;
    /* 1 when another holder is provably gone (same host, process dead or
     * an earlier incarnation of this pid): its lease need not run out. */
    int (*holder_is_stale)(const char *holder);
} store_lease;

/* Whether the holder of another log's lease is gone: the lease ran out
 * before `self->now_us` (a released lease has expiry 0) or its process is
 * provably dead.  The caller puts now_us a lease length in the past, so a
 * clock that differs between hosts cannot make a live instance look gone. */
static inline int store_lease_gone(const store_lease *self, const char *holder, int64_t expires_us)
{
    return expires_us < self->now_us || (holder != NULL && self->holder_is_stale(holder));
}

typedef struct store_backend_ops {
    /* The writer's connection (opened on the caller's thread, then used only
     * by the writer thread).  Creates or migrates the schema. */
    void *(*open_writer)(const oe_config *cfg, char *why, size_t why_len);
    void (*close_writer)(void *db);

    /* Takes (or renews) the lease on a log, creating the log's row the first
     * time; refuses when another live holder has it or the key differs.
     * Fills log_id and the log's current size (number of receipts). */
    int (*take_lease)(void *db, const store_lease *lease, int64_t *log_id, uint64_t *size,
                      char *why, size_t why_len);
    int (*release_lease)(void *db, int64_t log_id, const char *holder);

    int (*begin)(void *db);
    int (*commit)(void *db);
    void (*rollback)(void *db);
    /* Claims the nonce for an execution item and uses up its approval; a
     * refused claim leaves no trace (SQLite checks before it writes,
     * PostgreSQL rolls back to a savepoint).  Sets item->result (and
     * item->existing when taken).  A backend that stores answers as head +
     * receipt place (see complete) may write an EXECUTION item's row whole
     * here: item->seq, tree_size and head are final, and its receipt goes to
     * log_id.  Returns -1 only for database failures. */
    int (*claim)(void *db, store_item *item, const char *exec_id, const char *action,
                 const char *claimed_by, int64_t log_id);
    /* Whether item's approval (its message hash or its approval_id) was
     * used, by an earlier commit or earlier in this transaction; writes
     * nothing.  1 used, 0 not, -1 on a database failure. */
    int (*approval_used)(void *db, const store_item *item);
    /* At start, after taking the lease: this log's executions still marked
     * running were cut off by a crash; mark them unknown (SPEC 3.2). */
    int (*mark_unknown)(void *db, const char *claimed_by, int64_t *count);
    /* The same for other logs whose instance is gone (store_lease_gone):
     * an instance that never comes back would otherwise leave its running
     * executions answering request_in_progress forever (a retired key, a
     * dead host).  Each such log is then marked swept (lease expiry -1) so
     * it is looked at again only after its instance took the lease again.
     * A live instance's log is never touched: PostgreSQL skips rows whose
     * lease another instance is renewing right now. */
    int (*release_orphans)(void *db, const store_lease *self, int64_t *count);
    /* Reads an execution by nonce inside the writer's transaction. */
    int (*find_execution_w)(void *db, const char *nonce, size_t nonce_len, store_execution *out);
    /* Records the answer of a claimed execution: item->prefix, or (to
     * write less) item->head and the receipt's place, log_id and
     * item->seq, from which store.c rebuilds the prefix and the tree root
     * (store_execution). */
    int (*complete)(void *db, const store_item *item, int64_t log_id);
    int (*append_receipt)(void *db, int64_t log_id, uint64_t seq, const char *exec_id,
                          const char *body, size_t len);
    int (*put_node)(void *db, int64_t log_id, unsigned level, uint64_t index,
                    const uint8_t hash[32]);
    int (*get_node_w)(void *db, int64_t log_id, unsigned level, uint64_t index, uint8_t out[32]);
    int (*save_checkpoint)(void *db, int64_t log_id, uint64_t size, const char *note, size_t len);
    /* 1 when the last failed batch was aborted by the database for a
     * conflict with another writer (deadlock, serialization) and may simply
     * be run again.  NULL: never. */
    int (*retryable)(void *db);
    /* A tiny durable write, to learn whether the database is writable again. */
    int (*probe)(void *db);

    void *(*open_reader)(const oe_config *cfg, char *why, size_t why_len);
    void (*close_reader)(void *rd);
    int (*find_execution)(void *rd, const char *nonce, size_t nonce_len, store_execution *out);
    int (*find_log)(void *rd, const char *origin, store_log_info *out);
    int (*get_node)(void *rd, int64_t log_id, unsigned level, uint64_t index, uint8_t out[32]);
    int (*find_receipt)(void *rd, const char *exec_id, int64_t *log_id, uint64_t *seq,
                        oe_buf *receipt);
    int (*find_checkpoint)(void *rd, const char *origin, uint64_t size, oe_buf *note);
    int (*export_receipts)(void *rd, int64_t log_id, uint64_t from, uint64_t limit, oe_buf *out);
    int (*list_pending)(void *rd, void (*fn)(const store_pending *p, void *ctx), void *ctx);
} store_backend_ops;

extern const store_backend_ops store_sqlite_ops;
extern const store_backend_ops store_pg_ops;

#endif

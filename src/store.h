/*
 * store.h - the storage interface: nonces, executions, single-use approvals
 * and this instance's receipt log.
 *
 * Two sides with different rules:
 *
 *  - Readers (one store_reader per event-loop thread) look things up: an
 *    execution by nonce, log nodes for proofs, receipts for export.  They
 *    never wait behind the writer (SQLite WAL snapshots, PostgreSQL MVCC).
 *
 *  - One writer thread owns every write.  Callers hand it store_item values
 *    with store_submit; it takes everything queued, applies the items in one
 *    transaction (a refused item leaves no trace but its receipt, so one
 *    item's conflict never undoes another's work), appends one receipt per
 *    item to the Merkle log, commits durably, signs one checkpoint for the
 *    new tree head, and only then calls each item's on_done.  Nothing is
 *    acknowledged before its commit, and one fsync and one signature serve
 *    the whole batch.
 *
 * Every item is an attempt and appends exactly one receipt, in the same
 * transaction as the nonce state it reports (SPEC 5.2).  An execution item
 * also claims its nonce and records its answer, so that a replay can be
 * answered byte for byte.
 *
 * Answers end with their signed receipt, and the checkpoint inside it exists
 * only after the commit.  So the store keeps each answer as a *prefix* (all
 * bytes up to the checkpoint string) plus the tree head it is proven
 * against; the full answer is prefix + note + "}}", where the note is the
 * deterministic Ed25519 signature of that tree head (store_checkpoint_note).
 *
 * The store knows nothing of HTTP; execute.c decides what answers say.
 */
#ifndef OE_STORE_H
#define OE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "keys.h"
#include "receipt.h"

typedef struct store store;
typedef struct store_reader store_reader;

enum { STORE_OK = 0, STORE_NOT_FOUND = 1, STORE_ERROR = -1 };

typedef enum {
    EXEC_STATE_RUNNING = 0, /* claimed, the action may be running now */
    EXEC_STATE_DONE = 1,    /* finished; response holds the answer */
    EXEC_STATE_UNKNOWN = 2  /* the process died while it ran (SPEC 3.2) */
} exec_state;

typedef struct store_execution {
    char exec_id[37];
    char action_hash[65];
    char *approval_id; /* malloc'd; NULL when no approval */
    exec_state state;
    int status;     /* HTTP status of the first answer */
    char *response; /* malloc'd answer prefix (see above) */
    size_t response_len;
    uint64_t tree_size; /* the tree head the first answer is proven against */
    uint8_t tree_root[32];
    char result_sha256[65]; /* "" when none */
    char error[48];         /* stable code of the first answer, "" when none */
    char action[129];
    /* A backend may keep only the answer's head (SQLite, schema 4): then
     * response is that head, and receipt (malloc'd), receipt_log and
     * receipt_seq name the attempt's receipt; store.c rebuilds the prefix
     * from it and its inclusion proof at tree_size before anyone sees it.
     * Callers of store.h always get receipt == NULL. */
    char *receipt;
    size_t receipt_len;
    int64_t receipt_log;
    uint64_t receipt_seq;
} store_execution;

/* Frees what ex holds and leaves it empty (all zero), as it was before
 * it was filled; freeing an empty one does nothing. */
void store_execution_free(store_execution *ex);

/* Who this instance's log is: its origin and the key that signs it. */
typedef struct store_log_identity {
    const char *origin;
    const keys_private *key;
} store_log_identity;

/* Opens (creating or migrating the schema), takes the lease on this
 * instance's log, and starts the writer thread.  0 on success; -1 with a
 * reason that never contains a password. */
int store_open(const oe_config *cfg, const store_log_identity *log, store **out, char *why,
               size_t why_len);
/* Finishes every queued item, releases the lease, stops the writer, closes.
 * Readers must be closed first. */
void store_close(store *st);
/* 1 when the last write (or write probe) succeeded.  While 0, the writer
 * probes the database every second and flips back by itself. */
int store_writable(store *st);

/* The latest signed checkpoint of this instance's log (malloc'd copy). */
char *store_latest_checkpoint(store *st, size_t *len, uint64_t *size);
/* The signed note for a tree head of this instance's log: the same bytes
 * every time (Ed25519 is deterministic); recent ones are cached. */
int store_checkpoint_note(store *st, uint64_t size, const uint8_t root[32], oe_buf *note);
const char *store_log_origin(const store *st);
/* Every group commit's duration goes into h (set before serving). */
struct metrics_histogram;
void store_observe_commits(store *st, struct metrics_histogram *h);

/* ---- readers ------------------------------------------------------------ */

store_reader *store_reader_open(store *st, char *why, size_t why_len);
void store_reader_close(store_reader *rd);
/* STORE_OK with *out filled (free with store_execution_free), STORE_NOT_FOUND,
 * or STORE_ERROR. */
int store_find_execution(store_reader *rd, const char *nonce, size_t nonce_len,
                         store_execution *out);

/* A log of the database, by origin; NULL origin = this instance's. */
typedef struct store_log_info {
    int64_t log_id;
    char origin[256];
    unsigned char public_key[32];
    uint64_t size;    /* size of its latest signed checkpoint */
    char *checkpoint; /* malloc'd latest signed checkpoint; NULL if none */
    size_t checkpoint_len;
} store_log_info;

int store_find_log(store_reader *rd, const char *origin, store_log_info *out);
void store_log_info_free(store_log_info *info);

/* Node source for tlog proofs over one log (ctx: a store_node_ctx). */
typedef struct store_node_ctx {
    store_reader *rd;
    int64_t log_id;
} store_node_ctx;
int store_get_node(void *ctx, unsigned level, uint64_t index, uint8_t out[32]);

/* The signed checkpoint of size `size` of the log `origin`, as that log's
 * instance saved it.  STORE_OK, STORE_NOT_FOUND (not saved yet), STORE_ERROR. */
int store_find_checkpoint(store_reader *rd, const char *origin, uint64_t size, oe_buf *note);

/* The first receipt carrying exec_id, in any log: its log, seq and JSON. */
int store_find_receipt(store_reader *rd, const char *exec_id, int64_t *log_id, uint64_t *seq,
                       oe_buf *receipt);
/* Appends receipts seq >= from (at most limit) as JSON lines. */
int store_export_receipts(store_reader *rd, int64_t log_id, uint64_t from, uint64_t limit,
                          oe_buf *out);

/* ---- the writer --------------------------------------------------------- */

typedef enum {
    STORE_ITEM_ATTEMPT,   /* a receipt only (denied, rejected, replayed) */
    STORE_ITEM_EXECUTION, /* claim the nonce, record the answer, and a receipt */
    STORE_ITEM_CLAIM,     /* claim the nonce as running; no receipt, no answer yet */
    STORE_ITEM_FINISH     /* record the answer of a claimed nonce, and a receipt */
} store_item_kind;

typedef enum {
    STORE_COMMITTED,     /* the item's rows are durable */
    STORE_NONCE_TAKEN,   /* another execution holds the nonce: see existing */
    STORE_APPROVAL_USED, /* the approval was used by another execution */
    STORE_FAILED         /* nothing written: the database refused */
} store_result;

typedef struct store_item store_item;
struct store_item {
    store_item_kind kind;

    /* EXECUTION: the execution to record (borrowed until on_done) */
    const char *nonce;
    size_t nonce_len;
    const char *action_hash;
    const char *approval_id;                  /* NULL when none */
    const unsigned char *approval_msg_sha256; /* 32 bytes, NULL when none */
    int64_t approval_expires_us;              /* its expires_at */
    /* ATTEMPT with approval_msg_sha256 set: a built-in refused its
     * arguments after the approval passed every check but single use,
     * which SPEC 3 puts before execution.  The writer looks (without using
     * it up) whether the approval was used, and if so turns the attempt
     * into that denial (on_conflict with STORE_APPROVAL_USED). */
    /* FINISH: the state its claim must still be in: EXEC_STATE_RUNNING,
     * or EXEC_STATE_UNKNOWN for an operator's resolution.  An answer never
     * overwrites an outcome decided meanwhile (a claim of a vanished
     * instance marked unknown by another, then resolved). */
    exec_state finishes_state;

    /* The receipt of this attempt (log and seq are the writer's).  On a
     * conflict, on_conflict rewrites it to what really happened. */
    receipt_fields receipt;

    /* The answer: `head` is its JSON up to and including "signed_receipt":
     * (the writer appends this item's signed receipt to it).  When
     * `replay_of` is set instead, the answer is that stored execution's. */
    oe_buf head;
    int status;
    const store_execution *replay_of;

    /* out: filled by the writer before on_done */
    store_result result;
    store_execution existing; /* STORE_NONCE_TAKEN only */
    uint64_t seq;
    oe_buf prefix;      /* the answer without its checkpoint note */
    uint64_t tree_size; /* the tree head the answer is proven against */
    uint8_t tree_root[32];
    char *note; /* malloc'd signed checkpoint of that head */
    size_t note_len;
    /* A replay of an execution recorded in another instance's log: only
     * that log's key may sign its heads, so note stays NULL and the caller
     * fetches the signed note (store_find_checkpoint). */
    char foreign_log[256];

    /* Writer thread, inside the transaction, when the nonce was taken or
     * the approval used: must update receipt/head/status/replay_of. */
    void (*on_conflict)(store_item *item);
    /* Writer thread, after the commit (or the failure).  The item belongs
     * to the caller again from then on. */
    void (*on_done)(store_item *item);
    void *cookie;

    store_item *next; /* queue link, private to the store */
};

/* Queues the item for the next commit.  Never blocks on I/O. */
void store_submit(store *st, store_item *item);

/* Executions whose outcome is unknown (the process died while they ran)
 * or not known yet (state RUNNING: the action runs now, or its instance
 * died and has not been restarted, which is what an operator sees right
 * after a crash), oldest first, for `openexec pending`; opens its own
 * connection, takes no lease.  Calls fn once per execution; returns the
 * count or -1. */
typedef struct store_pending {
    const char *nonce;
    size_t nonce_len;
    const char *exec_id, *action, *claimed_by;
    int64_t created_us;
    exec_state state; /* EXEC_STATE_RUNNING or EXEC_STATE_UNKNOWN */
} store_pending;
int store_list_pending(const oe_config *cfg, void (*fn)(const store_pending *p, void *ctx),
                       void *ctx, char *why, size_t why_len);

#endif

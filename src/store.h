/*
 * store.h - the storage interface: nonces, executions, approvals used.
 *
 * Two sides with different rules:
 *
 *  - Readers (one store_reader per event-loop thread) look executions up by
 *    nonce.  They never wait behind the writer (SQLite WAL snapshots,
 *    PostgreSQL MVCC).
 *
 *  - One writer thread owns every write.  Callers hand it store_item values
 *    with store_submit; it takes everything queued, applies the items in one
 *    transaction (each item in its own savepoint, so one item's conflict
 *    never undoes another's work), commits durably (WAL + synchronous=FULL),
 *    and only then calls each item's on_done.  Nothing is acknowledged before
 *    its commit: that is the durability promise, and group commit is what
 *    makes it cheap (one fsync for many requests).
 *
 * Exactly once rests on the database, not on the callers: an execution row
 * is keyed by its nonce, and an approval is used up by two unique keys (the
 * SHA-256 of its signed message, and its approval_id), in the same
 * transaction as the execution that uses it.
 *
 * The store knows nothing of HTTP; execute.c turns results into answers.
 */
#ifndef OE_STORE_H
#define OE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

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
    char *response; /* malloc'd first answer body */
    size_t response_len;
} store_execution;

void store_execution_free(store_execution *ex);

/* Opens (creating or migrating the schema) and starts the writer thread.
 * 0 on success; -1 with a reason that never contains a password. */
int store_open(const oe_config *cfg, store **out, char *why, size_t why_len);
/* Finishes every queued item, stops the writer, closes.  Readers must be
 * closed first. */
void store_close(store *st);
/* 1 when the last write (or write probe) succeeded.  While 0, the writer
 * probes the database every second and flips back by itself. */
int store_writable(store *st);

store_reader *store_reader_open(store *st, char *why, size_t why_len);
void store_reader_close(store_reader *rd);
/* STORE_OK with *out filled (free with store_execution_free), STORE_NOT_FOUND,
 * or STORE_ERROR. */
int store_find_execution(store_reader *rd, const char *nonce, size_t nonce_len,
                         store_execution *out);

typedef enum {
    STORE_COMMITTED,         /* the item's rows are durable */
    STORE_NONCE_TAKEN,       /* another execution holds the nonce: see existing */
    STORE_APPROVAL_USED,     /* the approval was used by another execution */
    STORE_FAILED             /* nothing written: the database refused */
} store_result;

typedef struct store_item store_item;
struct store_item {
    /* in: the execution to record (borrowed until on_done) */
    const char *nonce;
    size_t nonce_len;
    const char *exec_id;
    const char *action;
    const char *action_hash;
    const char *approval_id;                  /* NULL when none */
    const unsigned char *approval_msg_sha256; /* 32 bytes, NULL when none */
    int status;
    const char *response;
    size_t response_len;

    /* out: filled by the writer before on_done */
    store_result result;
    store_execution existing; /* STORE_NONCE_TAKEN only; the caller frees */

    /* Called on the writer thread after the commit (or the failure).  The
     * item belongs to the caller again from then on. */
    void (*on_done)(store_item *item);
    void *cookie;

    store_item *next; /* queue link, private to the store */
};

/* Queues the item for the next commit.  Never blocks on I/O. */
void store_submit(store *st, store_item *item);

#endif

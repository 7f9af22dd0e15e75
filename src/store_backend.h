/*
 * store_backend.h - what a database must provide to sit behind store.h.
 *
 * store.c owns the queue, the writer thread, group commit and the health
 * probe; a backend only knows how to run one transaction's statements.  The
 * writer calls begin, then apply for each queued item, then commit; if any
 * call fails the whole batch is rolled back and every item reports
 * STORE_FAILED (nothing is half-written).
 */
#ifndef OE_STORE_BACKEND_H
#define OE_STORE_BACKEND_H

#include <stddef.h>

#include "config.h"
#include "store.h"

typedef struct store_backend_ops {
    /* The writer's connection (opened on the caller's thread, then used only
     * by the writer thread).  Creates or migrates the schema. */
    void *(*open_writer)(const oe_config *cfg, char *why, size_t why_len);
    void (*close_writer)(void *db);
    int (*begin)(void *db);
    /* Applies one item inside the open transaction; sets item->result.
     * Returns -1 only for database failures (the batch is then rolled back). */
    int (*apply)(void *db, store_item *item);
    int (*commit)(void *db);
    void (*rollback)(void *db);
    /* A tiny durable write, to learn whether the database is writable again. */
    int (*probe)(void *db);

    void *(*open_reader)(const oe_config *cfg, char *why, size_t why_len);
    void (*close_reader)(void *rd);
    int (*find_execution)(void *rd, const char *nonce, size_t nonce_len, store_execution *out);
} store_backend_ops;

extern const store_backend_ops store_sqlite_ops;

#endif

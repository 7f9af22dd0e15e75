/*
 * store.c - the writer thread and group commit behind store.h.
 *
 * Queue: a singly linked FIFO under one mutex.  store_submit appends and
 * signals; the writer takes the whole queue at once, so a batch is
 * "everything that arrived while the previous commit was being fsynced".
 * Under load batches grow by themselves and one fsync serves many requests;
 * when idle a request commits alone with no added delay.
 *
 * Invariants
 *  - An item's on_done runs after its batch's COMMIT returned (or after the
 *    rollback of a failed batch), never before: nothing is acknowledged
 *    before it is durable.
 *  - A failed batch leaves no trace in the database (one transaction).
 *  - `writable` is 0 from the first failed commit until a probe or a later
 *    commit succeeds; execute.c refuses to run actions while it is 0.
 *  - store_close runs every item already queued before it returns.
 */
#include "store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "store_backend.h"

#define PROBE_INTERVAL_MS 1000

struct store {
    const store_backend_ops *ops;
    const oe_config *cfg;
    void *writer_db;

    pthread_mutex_t lock;
    pthread_cond_t wake;
    store_item *head, *tail;
    int stopping;
    pthread_t writer;

    atomic_int writable;
};

struct store_reader {
    store *st;
    void *rd;
};

void store_execution_free(store_execution *ex)
{
    free(ex->approval_id);
    free(ex->response);
    ex->approval_id = NULL;
    ex->response = NULL;
    ex->response_len = 0;
}

static void finish_batch(store_item *batch, int failed)
{
    store_item *item, *next;

    for (item = batch; item != NULL; item = next) {
        next = item->next; /* on_done may free the item */
        item->next = NULL;
        if (failed) {
            if (item->result == STORE_NONCE_TAKEN)
                store_execution_free(&item->existing);
            item->result = STORE_FAILED;
        }
        item->on_done(item);
    }
}

static int run_batch(store *st, store_item *batch)
{
    store_item *item;

    if (st->ops->begin(st->writer_db) != 0)
        return -1;
    for (item = batch; item != NULL; item = item->next) {
        if (st->ops->apply(st->writer_db, item) != 0)
            goto fail;
    }
    if (st->ops->commit(st->writer_db) != 0)
        goto fail;
    return 0;
fail:
    st->ops->rollback(st->writer_db);
    return -1;
}

static void set_writable(store *st, int ok)
{
    int was = atomic_exchange(&st->writable, ok);

    if (was && !ok)
        oe_log("error", "store: the database cannot be written; refusing executions");
    else if (!was && ok)
        oe_log("info", "store: the database is writable again");
}

static void *writer_main(void *arg)
{
    store *st = arg;
    store_item *batch;
    struct timespec deadline;
    int failed;

    pthread_mutex_lock(&st->lock);
    for (;;) {
        while (st->head == NULL && !st->stopping) {
            if (atomic_load(&st->writable)) {
                pthread_cond_wait(&st->wake, &st->lock);
                continue;
            }
            /* Unwritable: wake up periodically to probe. */
            clock_gettime(CLOCK_REALTIME, &deadline);
            deadline.tv_nsec += (long)PROBE_INTERVAL_MS * 1000000L;
            deadline.tv_sec += deadline.tv_nsec / 1000000000L;
            deadline.tv_nsec %= 1000000000L;
            if (pthread_cond_timedwait(&st->wake, &st->lock, &deadline) != 0 &&
                st->head == NULL) {
                pthread_mutex_unlock(&st->lock);
                set_writable(st, st->ops->probe(st->writer_db) == 0);
                pthread_mutex_lock(&st->lock);
            }
        }
        if (st->head == NULL && st->stopping)
            break;
        batch = st->head;
        st->head = st->tail = NULL;
        pthread_mutex_unlock(&st->lock);

        failed = run_batch(st, batch) != 0;
        set_writable(st, !failed);
        finish_batch(batch, failed);

        pthread_mutex_lock(&st->lock);
    }
    pthread_mutex_unlock(&st->lock);
    return NULL;
}

int store_open(const oe_config *cfg, store **out, char *why, size_t why_len)
{
    store *st = calloc(1, sizeof(*st));

    *out = NULL;
    if (st == NULL)
        return -1;
    st->cfg = cfg;
    st->ops = &store_sqlite_ops;
    if (cfg->db_kind != OE_DB_SQLITE) {
        snprintf(why, why_len, "PostgreSQL support is not built into this version");
        free(st);
        return -1;
    }
    st->writer_db = st->ops->open_writer(cfg, why, why_len);
    if (st->writer_db == NULL) {
        free(st);
        return -1;
    }
    pthread_mutex_init(&st->lock, NULL);
    pthread_cond_init(&st->wake, NULL);
    atomic_init(&st->writable, 1);
    if (pthread_create(&st->writer, NULL, writer_main, st) != 0) {
        snprintf(why, why_len, "cannot start the writer thread");
        st->ops->close_writer(st->writer_db);
        free(st);
        return -1;
    }
    *out = st;
    return 0;
}

void store_close(store *st)
{
    if (st == NULL)
        return;
    pthread_mutex_lock(&st->lock);
    st->stopping = 1;
    pthread_cond_signal(&st->wake);
    pthread_mutex_unlock(&st->lock);
    pthread_join(st->writer, NULL);
    st->ops->close_writer(st->writer_db);
    pthread_mutex_destroy(&st->lock);
    pthread_cond_destroy(&st->wake);
    free(st);
}

int store_writable(store *st)
{
    return atomic_load(&st->writable);
}

void store_submit(store *st, store_item *item)
{
    item->next = NULL;
    item->result = STORE_FAILED;
    memset(&item->existing, 0, sizeof(item->existing));
    pthread_mutex_lock(&st->lock);
    if (st->tail)
        st->tail->next = item;
    else
        st->head = item;
    st->tail = item;
    pthread_cond_signal(&st->wake);
    pthread_mutex_unlock(&st->lock);
}

store_reader *store_reader_open(store *st, char *why, size_t why_len)
{
    store_reader *rd = calloc(1, sizeof(*rd));

    if (rd == NULL)
        return NULL;
    rd->st = st;
    rd->rd = st->ops->open_reader(st->cfg, why, why_len);
    if (rd->rd == NULL) {
        free(rd);
        return NULL;
    }
    return rd;
}

void store_reader_close(store_reader *rd)
{
    rd->st->ops->close_reader(rd->rd);
    free(rd);
}

int store_find_execution(store_reader *rd, const char *nonce, size_t nonce_len,
                         store_execution *out)
{
    memset(out, 0, sizeof(*out));
    return rd->st->ops->find_execution(rd->rd, nonce, nonce_len, out);
}

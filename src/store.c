/*
 * store.c - the writer thread, group commit and the receipt log behind
 * store.h.
 *
 * Queue: a singly linked FIFO under one mutex.  store_submit appends and
 * signals; the writer takes up to MAX_BATCH items at once, so a batch is
 * "what arrived while the previous commit was being fsynced".  Under load
 * batches grow by themselves and one fsync and one signature serve many
 * requests; an idle server commits each request alone, with no added delay.
 *
 * The log: the writer alone appends to this instance's Merkle log.  It keeps
 * the tree's frontier in memory (tlog.h), writes every perfect node it
 * completes, and proves each batch item's inclusion from memory: every node
 * such a proof needs is either in the frontier from before the batch or was
 * completed during it (see batch_get).  After the commit it signs one
 * checkpoint for the new tree head.
 *
 * Invariants
 *  - An item's on_done runs after its batch's COMMIT returned (or after the
 *    rollback of a failed batch), never before: nothing is acknowledged
 *    before it is durable, and no answer cites a checkpoint not yet signed.
 *  - A failed batch leaves no trace: one transaction, and the in-memory
 *    frontier is restored to its state before the batch.
 *  - Checkpoints only grow: the last signed one is also kept in a file next
 *    to the receipt key, and a database behind it (a restored backup) is
 *    refused at start rather than forked.
 *  - `writable` is 0 from the first failed commit until a probe or a later
 *    commit succeeds; execute.c refuses to run actions while it is 0.
 *  - store_close runs every item already queued before it returns.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "store_backend.h"
#include "tlog.h"
#include "util.h"

#define PROBE_INTERVAL_MS 1000
#define MAX_BATCH 1024
#define MAX_BATCH_RETRIES 5
#define LEASE_MS 30000
#define LEASE_RENEW_MS 10000
#define NOTE_CACHE 16
#define NOTE_MAX 4096

typedef struct note_entry {
    uint64_t size;
    uint8_t root[32];
    char *note;
    size_t len;
} note_entry;

struct store {
    const store_backend_ops *ops;
    const oe_config *cfg;
    void *writer_db;

    /* this instance's log; frontier and log_id belong to the writer */
    char origin[256];
    const keys_private *key;
    char holder[300];
    int64_t log_id;
    tlog_frontier frontier;
    uint64_t lease_renewed_ms;
    uint64_t orphans_swept_ms; /* release_orphans: once per renewal interval */
    int checkpoint_saved;      /* the latest note is in the database too */
    int resync;                /* a batch failed: re-read the log before the next one */
    int side_fd;               /* last signed checkpoint, outside the database */

    /* signed notes: the latest, and recent ones for replays */
    pthread_mutex_t notes_lock;
    note_entry latest;
    note_entry cache[NOTE_CACHE];
    unsigned cache_next;

    pthread_mutex_t lock;
    pthread_cond_t wake;
    store_item *head, *tail;
    int stopping;
    pthread_t writer;

    atomic_int writable;
    metrics_histogram *commit_latency; /* may be NULL */
};

struct store_reader {
    store *st;
    void *rd;
};

void store_execution_free(store_execution *ex)
{
    free(ex->approval_id);
    free(ex->response);
    free(ex->receipt);
    memset(ex, 0, sizeof(*ex));
}

/* A row that keeps only its answer's head (store_execution.receipt): the
 * prefix the first answer had is that head, then the receipt, then its
 * inclusion proof at the tree size the answer was proven against; the
 * root of that tree is rebuilt too (such rows may be written before it is
 * known).  Proofs and roots use only perfect subtrees, which never change
 * once written, so the bytes are the first answer's however much the log
 * grew since. */
static int expand_response(store_execution *ex, tlog_node_fn get, void *ctx)
{
    uint8_t proof[TLOG_MAX_PROOF][32];
    size_t count;
    oe_buf b;

    if (ex->receipt == NULL)
        return 0;
    if (tlog_inclusion_proof(get, ctx, ex->receipt_seq, ex->tree_size, proof, &count) != 0 ||
        tlog_root(get, ctx, ex->tree_size, ex->tree_root) != 0)
        return -1;
    oe_buf_init(&b, ex->response_len + ex->receipt_len + 128 + count * 48);
    oe_buf_append(&b, ex->response, ex->response_len);
    if (receipt_append_signed_head(&b, ex->receipt, ex->receipt_len, ex->receipt_seq, ex->tree_size,
                                   (const uint8_t(*)[32])proof, count) != 0) {
        oe_buf_free(&b);
        return -1;
    }
    free(ex->response);
    free(ex->receipt);
    ex->receipt = NULL;
    ex->receipt_len = 0;
    ex->response = oe_buf_detach(&b, &ex->response_len);
    return ex->response != NULL ? 0 : -1;
}

/* ---- signed notes -------------------------------------------------------- */

static int sign_note(const store *st, uint64_t size, const uint8_t root[32], note_entry *e)
{
    oe_buf b;

    oe_buf_init(&b, NOTE_MAX);
    if (tlog_checkpoint_sign(st->key, st->origin, size, root, &b) != 0) {
        oe_buf_free(&b);
        return -1;
    }
    e->size = size;
    memcpy(e->root, root, 32);
    e->note = oe_buf_detach(&b, &e->len);
    return e->note ? 0 : -1;
}

static int copy_note(const note_entry *e, oe_buf *out)
{
    return oe_buf_append(out, e->note, e->len);
}

int store_checkpoint_note(store *st, uint64_t size, const uint8_t root[32], oe_buf *note)
{
    note_entry fresh;
    unsigned i;
    int rc = -1;

    pthread_mutex_lock(&st->notes_lock);
    if (st->latest.note && st->latest.size == size && memcmp(st->latest.root, root, 32) == 0) {
        rc = copy_note(&st->latest, note);
        goto out;
    }
    for (i = 0; i < NOTE_CACHE; i++) {
        note_entry *e = &st->cache[i];
        if (e->note && e->size == size && memcmp(e->root, root, 32) == 0) {
            rc = copy_note(e, note);
            goto out;
        }
    }
    pthread_mutex_unlock(&st->notes_lock);
    /* Deterministic signature: signing again yields the bytes signed before. */
    if (sign_note(st, size, root, &fresh) != 0)
        return -1;
    pthread_mutex_lock(&st->notes_lock);
    rc = copy_note(&fresh, note);
    free(st->cache[st->cache_next].note);
    st->cache[st->cache_next] = fresh;
    st->cache_next = (st->cache_next + 1) % NOTE_CACHE;
out:
    pthread_mutex_unlock(&st->notes_lock);
    return rc;
}

char *store_latest_checkpoint(store *st, size_t *len, uint64_t *size)
{
    char *copy;

    pthread_mutex_lock(&st->notes_lock);
    copy = malloc(st->latest.len + 1);
    if (copy) {
        memcpy(copy, st->latest.note, st->latest.len);
        copy[st->latest.len] = '\0';
        *len = st->latest.len;
        *size = st->latest.size;
    }
    pthread_mutex_unlock(&st->notes_lock);
    return copy;
}

const char *store_log_origin(const store *st)
{
    return st->origin;
}

/* Publishes a newly signed head as the latest and records it outside the
 * database (best effort: a lost write only weakens the fork check). */
static void publish_latest(store *st, note_entry *e)
{
    pthread_mutex_lock(&st->notes_lock);
    free(st->latest.note);
    st->latest = *e;
    pthread_mutex_unlock(&st->notes_lock);
    st->checkpoint_saved = 0;
    if (st->side_fd != -1 && (pwrite(st->side_fd, e->note, e->len, 0) != (ssize_t)e->len ||
                              ftruncate(st->side_fd, (off_t)e->len) != 0))
        oe_log("warn", "store: cannot record the last checkpoint outside the database: %s",
               strerror(errno));
}

/* ---- batch proofs from memory ------------------------------------------- */

/* Nodes a batch completes, addressed by (level, index).  At level L they
 * have consecutive indices from start >> L, so each level is an array. */
typedef struct batch_nodes {
    store *st;
    tlog_frontier before;
    /* end: the head after the batch's appends so far; end_max: after all of
     * them (one receipt per item that is not a bare claim), known before
     * the first so that an execution's row is written whole at its claim */
    uint64_t start, end, end_max;
    size_t offset[65];
    uint8_t (*hash)[32];
    uint8_t *present;
} batch_nodes;

static int batch_init(batch_nodes *bn, store *st, uint64_t count)
{
    size_t total = 0;
    uint64_t last;
    unsigned level;

    bn->st = st;
    bn->before = st->frontier;
    bn->start = st->frontier.size;
    bn->end = bn->start;
    bn->end_max = bn->start + count;
    last = bn->start + (count > 0 ? count - 1 : 0); /* a batch of bare claims has no leaf */
    for (level = 0; level < 64; level++) {
        bn->offset[level] = total;
        total += (size_t)((last >> level) - (bn->start >> level) + 1);
    }
    bn->offset[64] = total;
    bn->hash = malloc(total * 32);
    bn->present = calloc(total, 1);
    return bn->hash && bn->present ? 0 : -1;
}

static void batch_free(batch_nodes *bn)
{
    free(bn->hash);
    free(bn->present);
}

static int batch_slot(const batch_nodes *bn, unsigned level, uint64_t index, size_t *slot)
{
    uint64_t base = bn->start >> level;

    if (level >= 64 || bn->end_max == bn->start || index < base ||
        index > (bn->end_max - 1) >> level)
        return -1;
    *slot = bn->offset[level] + (size_t)(index - base);
    return 0;
}

static int batch_emit(void *ctx, unsigned level, uint64_t index, const uint8_t hash[32])
{
    batch_nodes *bn = ctx;
    store *st = bn->st;
    size_t slot;

    if (batch_slot(bn, level, index, &slot) == 0) {
        memcpy(bn->hash[slot], hash, 32);
        bn->present[slot] = 1;
    }
    return st->ops->put_node(st->writer_db, st->log_id, level, index, hash);
}

/* Every node an inclusion proof of a batch leaf needs is a perfect subtree
 * either completed during the batch or part of the frontier from before it
 * (the left siblings of a leaf are the binary decomposition of its index,
 * which shares its prefix with the batch start).  The database is only a
 * fallback. */
static int batch_get(void *ctx, unsigned level, uint64_t index, uint8_t out[32])
{
    batch_nodes *bn = ctx;
    store *st = bn->st;
    size_t slot;

    if (level < 64 && ((bn->start >> level) & 1) && index == (bn->start >> level) - 1) {
        memcpy(out, bn->before.hash[level], 32);
        return 0;
    }
    if (batch_slot(bn, level, index, &slot) == 0 && bn->present[slot]) {
        memcpy(out, bn->hash[slot], 32);
        return 0;
    }
    return st->ops->get_node_w(st->writer_db, st->log_id, level, index, out);
}

/* ---- the writer ---------------------------------------------------------- */

/* The id of our pid namespace (the number in /proc/self/ns/pid), or "?":
 * two processes' ids can only be compared inside one namespace. */
static void pid_namespace(char *out, size_t cap)
{
    char link[64];
    ssize_t n = readlink("/proc/self/ns/pid", link, sizeof(link) - 1);
    const char *open_bracket;

    snprintf(out, cap, "?");
    if (n <= 0)
        return;
    link[n] = '\0';
    if ((open_bracket = strchr(link, '[')) != NULL)
        snprintf(out, cap, "%.*s", (int)strcspn(open_bracket + 1, "]"), open_bracket + 1);
}

/* Holder ids are "host:pid:uuid:pidns" ("host:pid:uuid" before the
 * namespace was added).  Whether the holder's process is provably gone:
 * it ran on this host name, and its pid no longer exists.
 *
 * For our own origin (own_origin) we also count our own pid as an earlier
 * us (a restarted container gets pid 1 again and a new namespace), as we
 * always did: two live processes with one origin are a misconfiguration
 * the lease exists to catch.  For another origin's lease the pid is only
 * meaningful in our own pid namespace: with a shared host name (host
 * networking) another container's pid says nothing about its process, so
 * there only the lease's expiry counts. */
static int holder_process_gone(const char *holder, int own_origin)
{
    char host[256], mine[256], ns[32];
    const char *colon = strchr(holder, ':'), *uuid, *holder_ns;
    long pid;
    char *end;

    if (colon == NULL || (size_t)(colon - holder) >= sizeof(host) ||
        gethostname(mine, sizeof(mine)) != 0)
        return 0;
    mine[sizeof(mine) - 1] = '\0';
    memcpy(host, holder, (size_t)(colon - holder));
    host[colon - holder] = '\0';
    if (strcmp(host, mine) != 0)
        return 0;
    pid = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != ':' || pid <= 0)
        return 0;
    if (!own_origin) {
        uuid = end + 1;
        holder_ns = strchr(uuid, ':');
        pid_namespace(ns, sizeof(ns));
        if (holder_ns == NULL || strcmp(ns, "?") == 0 || strcmp(holder_ns + 1, ns) != 0)
            return 0;
    }
    if ((pid_t)pid == getpid())
        return 1; /* an earlier us: we are alive and hold only our own origin */
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static int holder_is_stale(const char *holder)
{
    return holder_process_gone(holder, 1);
}

static int other_holder_is_dead(const char *holder)
{
    return holder_process_gone(holder, 0);
}

static void make_holder_id(char *out, size_t cap)
{
    char host[200], uuid[37], ns[32];

    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "unknown");
    host[sizeof(host) - 1] = '\0';
    oe_uuid4(uuid);
    pid_namespace(ns, sizeof(ns));
    snprintf(out, cap, "%s:%ld:%s:%s", host, (long)getpid(), uuid, ns);
}

static void warn_unknown(int64_t cut, const char *what)
{
    if (cut > 0)
        oe_log("warn",
               "store: %lld execution(s) %s; their outcome is unknown (see openexec pending)",
               (long long)cut, what);
}

/* Marks unknown what other instances were running when they went away
 * for good (SPEC 3.2: outcome_unknown, not request_in_progress forever).
 * "Gone" is judged a lease length late, so that clocks that differ
 * between hosts cannot make a live instance look gone. */
static int release_orphans(store *st)
{
    store_lease self = {st->origin, st->key->pk, st->holder, 0, 0, other_holder_is_dead};
    int64_t cut = 0;

    self.now_us = oe_now_us() - (int64_t)LEASE_MS * 1000;
    st->orphans_swept_ms = oe_monotonic_ms();
    if (st->ops->begin(st->writer_db) != 0 ||
        st->ops->release_orphans(st->writer_db, &self, &cut) != 0 ||
        st->ops->commit(st->writer_db) != 0) {
        st->ops->rollback(st->writer_db);
        oe_log("warn", "store: could not look for executions of instances that are gone; "
                       "trying again later");
        return -1;
    }
    warn_unknown(cut, "of instances that are gone were running");
    return 0;
}

/* Between batches, as often as the lease is renewed.  In a transaction of
 * its own: whatever happens to it, our own lease and batches go on. */
static void sweep_orphans_when_due(store *st)
{
    if (oe_monotonic_ms() - st->orphans_swept_ms > LEASE_RENEW_MS)
        release_orphans(st);
}

static int renew_lease(store *st)
{
    store_lease lease;
    uint64_t size;
    int64_t log_id;
    char why[256];

    lease.origin = st->origin;
    lease.public_key = st->key->pk;
    lease.holder = st->holder;
    lease.now_us = oe_now_us();
    lease.expires_us = lease.now_us + (int64_t)LEASE_MS * 1000;
    lease.holder_is_stale = holder_is_stale;
    if (st->ops->take_lease(st->writer_db, &lease, &log_id, &size, why, sizeof(why)) != 0) {
        oe_log("error", "store: lease on log %s: %s", st->origin, why);
        return -1;
    }
    st->lease_renewed_ms = oe_monotonic_ms();
    return 0;
}

/* Node source for proofs over one log, inside the writer's transaction. */
typedef struct writer_log {
    store *st;
    int64_t log_id;
} writer_log;
static int writer_node(void *ctx, unsigned level, uint64_t index, uint8_t out[32]);

/* Decides, before the batch's receipts are counted, what only the
 * database can tell about an operator action's items: whether a claim gets
 * its nonce, and whether an outcome's claim is still the one it expects
 * (not marked unknown by another instance, or resolved, meanwhile).  Either
 * way a loser becomes an attempt with a receipt of its own (on_conflict),
 * so the count is exact; built-in executions, whose conflicts cost the same
 * one receipt, are claimed in order by apply_item. */
static int decide_early(store *st, store_item *item)
{
    item->result = STORE_COMMITTED;
    if (item->kind == STORE_ITEM_CLAIM) {
        if (st->ops->claim(st->writer_db, item, item->receipt.exec_id, item->receipt.action,
                           st->origin, st->log_id) != 0)
            return -1;
    } else if (item->kind == STORE_ITEM_FINISH) {
        store_execution_free(&item->existing);
        if (st->ops->find_execution_w(st->writer_db, item->nonce, item->nonce_len,
                                      &item->existing) != STORE_OK)
            return -1; /* a claim is never deleted: the database failed */
        if (item->existing.state == item->finishes_state) {
            store_execution_free(&item->existing);
            return 0;
        }
        item->result = STORE_NONCE_TAKEN;
    }
    if (item->result != STORE_COMMITTED)
        item->on_conflict(item);
    return 0;
}

/* Applies one item: the claim (built-in executions), then its receipt and
 * nodes. */
static int apply_item(store *st, store_item *item, batch_nodes *bn, oe_buf *rendered)
{
    uint64_t seq = st->frontier.size;
    uint8_t leaf[32];

    item->seq = seq;
    item->tree_size = bn->end_max; /* what this item's answer is proven against */
    if (item->kind == STORE_ITEM_ATTEMPT && item->approval_msg_sha256 != NULL) {
        int used = st->ops->approval_used(st->writer_db, item);
        if (used < 0)
            return -1;
        if (used) {
            item->result = STORE_APPROVAL_USED;
            item->on_conflict(item);
        }
    }
    if (item->kind == STORE_ITEM_EXECUTION) {
        if (st->ops->claim(st->writer_db, item, item->receipt.exec_id, item->receipt.action,
                           st->origin, st->log_id) != 0)
            return -1;
        if (item->result != STORE_COMMITTED)
            item->on_conflict(item); /* makes it an attempt with its own receipt */
    }
    if (item->kind == STORE_ITEM_CLAIM)
        return 0; /* the receipt comes with the outcome (STORE_ITEM_FINISH) */
    oe_buf_reset(rendered);
    if (receipt_render(&item->receipt, st->origin, seq, rendered, leaf) != 0 ||
        st->ops->append_receipt(st->writer_db, st->log_id, seq, item->receipt.exec_id,
                                rendered->data, rendered->len) != 0 ||
        tlog_frontier_append(&st->frontier, leaf, batch_emit, bn) != 0)
        return -1;
    return 0;
}

/* Builds the item's answer prefix, proven against the batch's tree head. */
static int finish_item(store *st, store_item *item, batch_nodes *bn, const uint8_t root[32],
                       const char *rendered, size_t rendered_len)
{
    uint8_t proof[TLOG_MAX_PROOF][32];
    size_t count;

    oe_buf_reset(&item->prefix);
    if (item->kind == STORE_ITEM_CLAIM)
        return 0;
    if (item->replay_of == &item->existing) {
        /* A conflict found at claim time may name an execution claimed
         * earlier in this very batch, whose answer was only completed since
         * (items finish in claim order): read it again. */
        store_execution_free(&item->existing);
        if (st->ops->find_execution_w(st->writer_db, item->nonce, item->nonce_len,
                                      &item->existing) != STORE_OK ||
            expand_response(&item->existing, writer_node,
                            &(writer_log){st, item->existing.receipt_log}) != 0)
            return -1;
    }
    if (item->replay_of != NULL) {
        const store_execution *ex = item->replay_of;
        item->tree_size = ex->tree_size;
        memcpy(item->tree_root, ex->tree_root, 32);
        item->status = ex->status;
        return oe_buf_append(&item->prefix, ex->response, ex->response_len);
    }
    item->tree_size = bn->end;
    memcpy(item->tree_root, root, 32);
    if (tlog_inclusion_proof(batch_get, bn, item->seq, bn->end, proof, &count) != 0 ||
        oe_buf_append(&item->prefix, item->head.data, item->head.len) != 0 ||
        receipt_append_signed_head(&item->prefix, rendered, rendered_len, item->seq, bn->end,
                                   (const uint8_t(*)[32])proof, count) != 0)
        return -1;
    if ((item->kind == STORE_ITEM_EXECUTION || item->kind == STORE_ITEM_FINISH) &&
        item->result == STORE_COMMITTED)
        return st->ops->complete(st->writer_db, item, st->log_id);
    return 0;
}

static size_t batch_length(const store_item *batch, size_t *receipts)
{
    size_t n = 0;

    *receipts = 0;
    for (; batch != NULL; batch = batch->next, n++)
        if (batch->kind != STORE_ITEM_CLAIM)
            ++*receipts;
    return n;
}

/* A failed batch may have committed after all: with PostgreSQL the
 * connection can break while COMMIT is on its way, and then nobody may be
 * able to tell at once.  So before appending again, re-read the log's size
 * (taking the lease again) and reload the frontier from the database: a
 * batch that did commit is then continued from, never appended twice.  A
 * log that shrank (a failover to a standby that lacks commits) is refused:
 * signing on would fork it. */
static int resync_log(store *st)
{
    store_lease lease = {st->origin, st->key->pk, st->holder, oe_now_us(), 0, holder_is_stale};
    uint64_t size = 0, before = st->frontier.size;
    int64_t log_id;
    char why[256] = "";

    lease.expires_us = lease.now_us + (int64_t)LEASE_MS * 1000;
    if (st->ops->begin(st->writer_db) != 0)
        return -1;
    if (st->ops->take_lease(st->writer_db, &lease, &log_id, &size, why, sizeof(why)) != 0 ||
        size < before ||
        tlog_frontier_load(&st->frontier, size, writer_node, &(writer_log){st, st->log_id}) != 0 ||
        st->ops->commit(st->writer_db) != 0) {
        st->ops->rollback(st->writer_db);
        if (size < before)
            oe_log("error",
                   "store: log %s holds %llu entries, fewer than the %llu written; "
                   "refusing to fork it",
                   st->origin, (unsigned long long)size, (unsigned long long)before);
        else if (why[0] != '\0')
            oe_log("error", "store: lease on log %s: %s", st->origin, why);
        return -1;
    }
    if (size != before)
        oe_log("warn", "store: log %s: the interrupted commit went through; continuing at %llu",
               st->origin, (unsigned long long)size);
    st->lease_renewed_ms = oe_monotonic_ms();
    st->resync = 0;
    return 0;
}

/* Runs one batch in one transaction. */
static int run_batch(store *st, store_item *batch, note_entry *signed_head)
{
    size_t receipts = 0, count = 0, i;
    oe_buf *rendered = NULL;
    batch_nodes bn;
    uint8_t root[32];
    store_item *item;
    int rc = -1;

    if (st->resync && resync_log(st) != 0)
        return -1;
    memset(&bn, 0, sizeof(bn));
    bn.before = st->frontier;
    if (st->ops->begin(st->writer_db) != 0)
        return -1;
    if (oe_monotonic_ms() - st->lease_renewed_ms > LEASE_RENEW_MS && renew_lease(st) != 0)
        goto fail;
    if (!st->checkpoint_saved &&
        st->ops->save_checkpoint(st->writer_db, st->log_id, st->latest.size, st->latest.note,
                                 st->latest.len) != 0)
        goto fail;
    for (item = batch; item != NULL; item = item->next)
        if (decide_early(st, item) != 0)
            goto fail;
    count = batch_length(batch, &receipts);
    if (batch_init(&bn, st, receipts) != 0 || (rendered = calloc(count, sizeof(*rendered))) == NULL)
        goto fail;
    for (i = 0; i < count; i++)
        oe_buf_init(&rendered[i], 64 * 1024);
    for (item = batch, i = 0; item != NULL; item = item->next, i++)
        if (apply_item(st, item, &bn, &rendered[i]) != 0)
            goto fail;
    bn.end = st->frontier.size;
    if (bn.end != bn.end_max) {
        oe_log("error", "store: a batch appended %llu receipts, not the %zu planned",
               (unsigned long long)(bn.end - bn.start), receipts);
        goto fail;
    }
    tlog_frontier_root(&st->frontier, root);
    for (item = batch, i = 0; item != NULL; item = item->next, i++)
        if (finish_item(st, item, &bn, root, rendered[i].data, rendered[i].len) != 0)
            goto fail;
    /* The new head is signed inside the transaction and stored with the
     * entries it covers, so any instance can answer a replay of them with
     * this very note; nobody sees it before the commit (publish_latest). */
    if (sign_note(st, bn.end, root, signed_head) != 0 ||
        st->ops->save_checkpoint(st->writer_db, st->log_id, signed_head->size, signed_head->note,
                                 signed_head->len) != 0)
        goto fail;
    if (st->ops->commit(st->writer_db) != 0)
        goto fail;
    rc = 0;
    goto out;
fail:
    free(signed_head->note);
    signed_head->note = NULL;
    st->ops->rollback(st->writer_db);
    st->frontier = bn.before;
    st->resync = 1;
out:
    if (rendered)
        for (i = 0; i < count; i++)
            oe_buf_free(&rendered[i]);
    free(rendered);
    batch_free(&bn);
    return rc;
}

static void attach_note(store *st, store_item *item, const note_entry *head)
{
    oe_buf b;

    item->foreign_log[0] = '\0';
    if (item->replay_of != NULL &&
        (receipt_answer_origin(item->prefix.data, item->prefix.len, item->foreign_log,
                               sizeof(item->foreign_log)) != 0 ||
         strcmp(item->foreign_log, st->origin) != 0)) {
        /* Another log's head (or one we cannot name): never sign it with
         * our key, which would fork our own log; the caller fetches it. */
        if (item->foreign_log[0] == '\0')
            snprintf(item->foreign_log, sizeof(item->foreign_log), "?");
        return;
    }
    item->foreign_log[0] = '\0';
    oe_buf_init(&b, NOTE_MAX);
    if (head->note && item->tree_size == head->size)
        oe_buf_append(&b, head->note, head->len);
    else
        store_checkpoint_note(st, item->tree_size, item->tree_root, &b);
    item->note = oe_buf_detach(&b, &item->note_len);
    if (item->note != NULL && item->note_len == 0) {
        free(item->note);
        item->note = NULL;
    }
}

static void finish_batch(store *st, store_item *batch, int failed, note_entry *head)
{
    store_item *item, *next;

    for (item = batch; item != NULL; item = next) {
        next = item->next; /* on_done may free the item */
        item->next = NULL;
        if (failed) {
            if (item->result == STORE_NONCE_TAKEN)
                store_execution_free(&item->existing);
            item->result = STORE_FAILED;
        } else {
            attach_note(st, item, head);
        }
        item->on_done(item);
    }
}

static void set_writable(store *st, int ok)
{
    int was = atomic_exchange(&st->writable, ok);

    if (was && !ok)
        oe_log("error", "store: the database cannot be written; refusing executions");
    else if (!was && ok)
        oe_log("info", "store: the database is writable again");
}

static store_item *take_batch(store *st)
{
    store_item *batch = st->head, *last = st->head;
    size_t n = 1;

    while (last->next != NULL && n < MAX_BATCH) {
        last = last->next;
        n++;
    }
    st->head = last->next;
    if (st->head == NULL)
        st->tail = NULL;
    last->next = NULL;
    return batch;
}

static void timed_wait(store *st, uint64_t ms)
{
    struct timespec deadline;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += (time_t)(ms / 1000);
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    deadline.tv_sec += deadline.tv_nsec / 1000000000L;
    deadline.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&st->wake, &st->lock, &deadline);
}

static void save_checkpoint_now(store *st)
{
    if (st->ops->begin(st->writer_db) == 0 &&
        st->ops->save_checkpoint(st->writer_db, st->log_id, st->latest.size, st->latest.note,
                                 st->latest.len) == 0 &&
        st->ops->commit(st->writer_db) == 0) {
        st->checkpoint_saved = 1;
        return;
    }
    st->ops->rollback(st->writer_db);
    /* Not fatal: the next batch or lease renewal saves it; but do not spin. */
    st->checkpoint_saved = 1;
}

/* Idle work: probing an unwritable database, renewing the lease. */
static void idle_tick(store *st)
{
    if (!atomic_load(&st->writable)) {
        set_writable(st, st->ops->probe(st->writer_db) == 0);
        return;
    }
    if (oe_monotonic_ms() - st->lease_renewed_ms > LEASE_RENEW_MS) {
        int ok = st->ops->begin(st->writer_db) == 0 && renew_lease(st) == 0 &&
                 (st->checkpoint_saved ||
                  st->ops->save_checkpoint(st->writer_db, st->log_id, st->latest.size,
                                           st->latest.note, st->latest.len) == 0) &&
                 st->ops->commit(st->writer_db) == 0;
        if (ok)
            st->checkpoint_saved = 1;
        else
            st->ops->rollback(st->writer_db);
        set_writable(st, ok);
    }
    if (atomic_load(&st->writable))
        sweep_orphans_when_due(st);
}

static void *writer_main(void *arg)
{
    store *st = arg;
    store_item *batch;
    note_entry head;
    uint64_t started;
    int failed, attempt;

    pthread_mutex_lock(&st->lock);
    for (;;) {
        if (st->head == NULL && !st->checkpoint_saved) {
            /* Idle after a commit: publish the head in the database now, so
             * other instances serving ?log= see it (under load the next
             * batch carries it at no extra cost). */
            pthread_mutex_unlock(&st->lock);
            save_checkpoint_now(st);
            pthread_mutex_lock(&st->lock);
        }
        while (st->head == NULL && !st->stopping) {
            timed_wait(st, atomic_load(&st->writable) ? LEASE_RENEW_MS / 2 : PROBE_INTERVAL_MS);
            if (st->head == NULL && !st->stopping) {
                pthread_mutex_unlock(&st->lock);
                idle_tick(st);
                pthread_mutex_lock(&st->lock);
            }
        }
        if (st->head == NULL && st->stopping)
            break;
        batch = take_batch(st);
        pthread_mutex_unlock(&st->lock);

        memset(&head, 0, sizeof(head));
        started = oe_monotonic_us();
        for (attempt = 0;; attempt++) {
            failed = run_batch(st, batch, &head) != 0;
            if (!failed || attempt == MAX_BATCH_RETRIES || st->ops->retryable == NULL ||
                !st->ops->retryable(st->writer_db))
                break;
            /* Another instance's batch locked the same keys in the other
             * order; ours was rolled back whole.  Items keep what their
             * conflicts decided, which the other's commit made final. */
            oe_log("warn", "store: batch aborted by a deadlock with another instance; retrying");
        }
        if (st->commit_latency != NULL)
            metrics_observe(st->commit_latency, oe_monotonic_us() - started);
        set_writable(st, !failed);
        /* Publish the new head before any answer citing it goes out, so a
         * client that reads /checkpoint after its answer sees it. */
        if (!failed) {
            publish_latest(st, &head); /* st->latest owns the note from here */
            st->checkpoint_saved = 1;
        }
        finish_batch(st, batch, failed, &head);
        if (!failed)
            sweep_orphans_when_due(st);

        pthread_mutex_lock(&st->lock);
    }
    pthread_mutex_unlock(&st->lock);
    return NULL;
}

/* ---- open / close -------------------------------------------------------- */

static int writer_node(void *ctx, unsigned level, uint64_t index, uint8_t out[32])
{
    const writer_log *wl = ctx;

    return wl->st->ops->get_node_w(wl->st->writer_db, wl->log_id, level, index, out);
}

/* Refuses a database behind the last checkpoint this key signed. */
static int check_side_file(store *st, const char *path, char *why, size_t why_len)
{
    char buf[NOTE_MAX];
    tlog_checkpoint cp;
    ssize_t n;

    st->side_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (st->side_fd == -1) {
        oe_log("warn", "store: cannot open %s: %s", path, strerror(errno));
        return 0;
    }
    n = pread(st->side_fd, buf, sizeof(buf), 0);
    if (n <= 0)
        return 0;
    if (tlog_checkpoint_parse(buf, (size_t)n, &cp) != 0 || strcmp(cp.origin, st->origin) != 0)
        return 0;
    if (cp.size > st->frontier.size) {
        snprintf(why, why_len,
                 "log %s: this key already signed a checkpoint of size %llu but the database "
                 "holds %llu entries (restored from an older backup?); refusing to fork the log",
                 st->origin, (unsigned long long)cp.size, (unsigned long long)st->frontier.size);
        return -1;
    }
    return 0;
}

static int open_log(store *st, const store_log_identity *id, char *why, size_t why_len)
{
    char side[4096];
    note_entry first;
    uint8_t root[32];
    uint64_t size;

    snprintf(st->origin, sizeof(st->origin), "%s", id->origin);
    st->key = id->key;
    make_holder_id(st->holder, sizeof(st->holder));
    {
        store_lease lease = {st->origin, st->key->pk, st->holder, oe_now_us(), 0, holder_is_stale};
        lease.expires_us = lease.now_us + (int64_t)LEASE_MS * 1000;
        if (st->ops->begin(st->writer_db) != 0 ||
            st->ops->take_lease(st->writer_db, &lease, &st->log_id, &size, why, why_len) != 0 ||
            st->ops->commit(st->writer_db) != 0) {
            st->ops->rollback(st->writer_db);
            if (why[0] == '\0')
                snprintf(why, why_len, "cannot take the lease on log %s", st->origin);
            return -1;
        }
    }
    st->lease_renewed_ms = oe_monotonic_ms();
    {
        /* We hold the lease on our origin: nothing of ours is running now. */
        int64_t cut = 0;
        if (st->ops->begin(st->writer_db) != 0 ||
            st->ops->mark_unknown(st->writer_db, st->origin, &cut) != 0 ||
            st->ops->commit(st->writer_db) != 0) {
            st->ops->rollback(st->writer_db);
            snprintf(why, why_len, "cannot mark interrupted executions");
            return -1;
        }
        warn_unknown(cut, "were running when this instance stopped");
    }
    release_orphans(st); /* not fatal: tried again every renewal interval */
    if (tlog_frontier_load(&st->frontier, size, writer_node, &(writer_log){st, st->log_id}) != 0) {
        snprintf(why, why_len, "log %s: the stored tree of %llu entries is incomplete", st->origin,
                 (unsigned long long)size);
        return -1;
    }
    snprintf(side, sizeof(side), "%s.checkpoint", st->cfg->receipt_key_path);
    if (check_side_file(st, side, why, why_len) != 0)
        return -1;
    tlog_frontier_root(&st->frontier, root);
    if (sign_note(st, size, root, &first) != 0)
        return -1;
    publish_latest(st, &first);
    return 0;
}

int store_open(const oe_config *cfg, const store_log_identity *id, store **out, char *why,
               size_t why_len)
{
    store *st = calloc(1, sizeof(*st));

    *out = NULL;
    if (st == NULL)
        return -1;
    why[0] = '\0';
    st->cfg = cfg;
    st->side_fd = -1;
    st->ops = cfg->db_kind == OE_DB_POSTGRES ? &store_pg_ops : &store_sqlite_ops;
    pthread_mutex_init(&st->lock, NULL);
    pthread_mutex_init(&st->notes_lock, NULL);
    pthread_cond_init(&st->wake, NULL);
    atomic_init(&st->writable, 1);
    st->writer_db = st->ops->open_writer(cfg, why, why_len);
    if (st->writer_db == NULL || open_log(st, id, why, why_len) != 0)
        goto fail;
    if (pthread_create(&st->writer, NULL, writer_main, st) != 0) {
        snprintf(why, why_len, "cannot start the writer thread");
        goto fail;
    }
    pthread_setname_np(st->writer, "oe-writer"); /* for top -H and perf */
    *out = st;
    return 0;

fail:
    if (st->writer_db)
        st->ops->close_writer(st->writer_db);
    if (st->side_fd != -1)
        close(st->side_fd);
    free(st->latest.note);
    free(st);
    return -1;
}

void store_close(store *st)
{
    unsigned i;

    if (st == NULL)
        return;
    pthread_mutex_lock(&st->lock);
    st->stopping = 1;
    pthread_cond_signal(&st->wake);
    pthread_mutex_unlock(&st->lock);
    pthread_join(st->writer, NULL);
    /* Leave the latest checkpoint in the database and free the origin. */
    if (st->ops->begin(st->writer_db) == 0) {
        if ((st->checkpoint_saved ||
             st->ops->save_checkpoint(st->writer_db, st->log_id, st->latest.size, st->latest.note,
                                      st->latest.len) == 0) &&
            st->ops->release_lease(st->writer_db, st->log_id, st->holder) == 0)
            st->ops->commit(st->writer_db);
        else
            st->ops->rollback(st->writer_db);
    }
    st->ops->close_writer(st->writer_db);
    if (st->side_fd != -1)
        close(st->side_fd);
    free(st->latest.note);
    for (i = 0; i < NOTE_CACHE; i++)
        free(st->cache[i].note);
    pthread_mutex_destroy(&st->lock);
    pthread_mutex_destroy(&st->notes_lock);
    pthread_cond_destroy(&st->wake);
    free(st);
}

void store_observe_commits(store *st, metrics_histogram *h)
{
    st->commit_latency = h;
}

int store_writable(store *st)
{
    return atomic_load(&st->writable);
}

void store_submit(store *st, store_item *item)
{
    item->next = NULL;
    item->result = STORE_FAILED;
    item->note = NULL;
    item->note_len = 0;
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

/* ---- readers ------------------------------------------------------------- */

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
    store *st = rd->st;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = st->ops->find_execution(rd->rd, nonce, nonce_len, out);
    if (rc == STORE_OK &&
        expand_response(out, store_get_node, &(store_node_ctx){rd, out->receipt_log}) != 0) {
        /* This row only (out of memory, or a damaged log): this request
         * fails, the store stays usable. */
        oe_log("error", "store: cannot rebuild the stored answer of execution %s", out->exec_id);
        store_execution_free(out);
        return STORE_ERROR;
    }
    if (rc == STORE_ERROR && atomic_exchange(&st->writable, 0)) {
        /* The lookup every request starts with failed (PostgreSQL went
         * away, say): say so on /health and /ready now, and have the writer
         * probe at once instead of waiting for a write that will not come. */
        oe_log("error", "store: the database cannot be read; refusing executions");
        pthread_mutex_lock(&st->lock);
        pthread_cond_signal(&st->wake);
        pthread_mutex_unlock(&st->lock);
    }
    return rc;
}

int store_find_log(store_reader *rd, const char *origin, store_log_info *out)
{
    store *st = rd->st;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = st->ops->find_log(rd->rd, origin ? origin : st->origin, out);
    if (rc != STORE_OK)
        return rc;
    if (origin == NULL || strcmp(origin, st->origin) == 0) {
        /* Our own log: the latest head is in memory, ahead of the database. */
        free(out->checkpoint);
        out->checkpoint = store_latest_checkpoint(st, &out->checkpoint_len, &out->size);
        if (out->checkpoint == NULL)
            return STORE_ERROR;
    }
    return STORE_OK;
}

void store_log_info_free(store_log_info *info)
{
    free(info->checkpoint);
    info->checkpoint = NULL;
}

int store_get_node(void *ctx, unsigned level, uint64_t index, uint8_t out[32])
{
    store_node_ctx *c = ctx;

    return c->rd->st->ops->get_node(c->rd->rd, c->log_id, level, index, out) == STORE_OK ? 0 : -1;
}

int store_find_receipt(store_reader *rd, const char *exec_id, int64_t *log_id, uint64_t *seq,
                       oe_buf *receipt)
{
    return rd->st->ops->find_receipt(rd->rd, exec_id, log_id, seq, receipt);
}

int store_export_receipts(store_reader *rd, int64_t log_id, uint64_t from, uint64_t limit,
                          oe_buf *out)
{
    return rd->st->ops->export_receipts(rd->rd, log_id, from, limit, out);
}

int store_list_pending(const oe_config *cfg, void (*fn)(const store_pending *p, void *ctx),
                       void *ctx, char *why, size_t why_len)
{
    const store_backend_ops *ops =
        cfg->db_kind == OE_DB_POSTGRES ? &store_pg_ops : &store_sqlite_ops;
    void *rd;
    int rc;

    if ((rd = ops->open_reader(cfg, why, why_len)) == NULL)
        return -1;
    rc = ops->list_pending(rd, fn, ctx);
    ops->close_reader(rd);
    if (rc < 0)
        snprintf(why, why_len, "cannot read the executions");
    return rc;
}

int store_find_checkpoint(store_reader *rd, const char *origin, uint64_t size, oe_buf *note)
{
    return rd->st->ops->find_checkpoint(rd->rd, origin, size, note);
}

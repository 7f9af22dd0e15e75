/*
 * ceilings.c - the hardware ceilings bench/run compares the server against.
 *
 * Each subcommand measures one thing the server needs, without HTTP, on this
 * machine, in this run, and prints one line of key=value pairs that
 * bench/run parses:
 *
 *   ceilings fsync DIR SECONDS
 *       p50/p99 of one small durable write on DIR's disk: pwrite 4 KiB into
 *       a preallocated file (the pattern of SQLite's WAL once it has reached
 *       its working size), then fdatasync; timed together, many samples.
 *
 *   ceilings ed25519 THREADS SECONDS
 *       libsodium crypto_sign_verify_detached per second on THREADS threads
 *       (one per core), over a message the size of a ClawShield approval.
 *
 *   ceilings sqlite SECONDS PRODUCERS INFLIGHT
 *       durable executions per second through the server's own store
 *       (src/store.h: one writer thread, group commit, WAL, synchronous=FULL)
 *       with no HTTP: each item is what execute.c submits for a demo echo
 *       (claim the nonce, store the answer, append a receipt to the Merkle
 *       log; one checkpoint signature per commit).  The database and the
 *       receipt key are the ones the environment names (OPENEXEC_DB_URL,
 *       OPENEXEC_RECEIPT_KEY), read by the server's own config_load and
 *       instance_load.  PRODUCERS threads stand in for the event loops; each
 *       keeps INFLIGHT items queued and submits a new one as soon as one of
 *       its own commits, exactly as a loop does with its connections.
 *       fdatasync/fsync are interposed (this executable's definitions win
 *       over libc's for the shared libsqlite3), so the line also says how
 *       many rows one fsync carried; and the CPU time and bytes written per
 *       row, which the neighbours on a shared machine disturb far less than
 *       rows per second.
 *
 *   ceilings sqlite-approvals SECONDS PRODUCERS INFLIGHT
 *       the same, but each item also uses up a ClawShield approval, as a
 *       clawshield echo does: a uuid4 approval_id and a message hash, both
 *       random, expiring 300 s from now.  A reference for what the
 *       clawshield scenario writes, not one of the ceilings.
 *
 *   ceilings sqlite-raw PATH SECONDS BATCH ROW_BYTES
 *       a reference, not a ceiling: SQLite alone, BATCH rows of ROW_BYTES
 *       per transaction with the same durability, one thread.  The gap to
 *       `sqlite` is the store's own per-item work.
 *
 * Invariants: every subcommand stops by itself after SECONDS (plus the time
 * to drain what is in flight); an item's memory is only reused after its
 * on_done ran; nothing here is linked into the server.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "canon.h"
#include "config.h"
#include "instance.h"
#include "keys.h"
#include "receipt.h"
#include "store.h"
#include "util.h"

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted samples, in the samples' unit. */
static uint64_t percentile(const uint64_t *sorted, size_t n, double p)
{
    size_t rank;

    if (n == 0)
        return 0;
    rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

static void die(const char *what)
{
    fprintf(stderr, "ceilings: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ---- fsync ---------------------------------------------------------------- */

#define FSYNC_FILE_BYTES (4u << 20)
#define FSYNC_WRITE_BYTES 4096u
#define FSYNC_MAX_SAMPLES 20000u

static int (*real_fdatasync)(int);
static int (*real_fsync)(int);
static atomic_ulong sync_calls;

/* Interposed for libsqlite3 (see the header comment); also used below. */
int fdatasync(int fd)
{
    if (real_fdatasync == NULL)
        real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    atomic_fetch_add(&sync_calls, 1);
    return real_fdatasync(fd);
}

int fsync(int fd)
{
    if (real_fsync == NULL)
        real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    atomic_fetch_add(&sync_calls, 1);
    return real_fsync(fd);
}

static int cmd_fsync(const char *dir, double seconds)
{
    static unsigned char block[FSYNC_WRITE_BYTES];
    uint64_t *samples = calloc(FSYNC_MAX_SAMPLES, sizeof(*samples));
    char path[4096];
    uint64_t end, t0;
    size_t n = 0, off;
    int fd;

    if (samples == NULL)
        die("calloc");
    snprintf(path, sizeof(path), "%s/fsync-probe.bin", dir);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd == -1)
        die(path);
    unlink(path);
    memset(block, 0xa5, sizeof(block));
    for (off = 0; off < FSYNC_FILE_BYTES; off += sizeof(block))
        if (pwrite(fd, block, sizeof(block), (off_t)off) != (ssize_t)sizeof(block))
            die("pwrite");
    if (fsync(fd) != 0)
        die("fsync");

    end = now_ns() + (uint64_t)(seconds * 1e9);
    for (off = 0; n < FSYNC_MAX_SAMPLES && now_ns() < end; n++) {
        block[0] = (unsigned char)n;
        t0 = now_ns();
        if (pwrite(fd, block, sizeof(block), (off_t)off) != (ssize_t)sizeof(block) ||
            fdatasync(fd) != 0)
            die("pwrite+fdatasync");
        samples[n] = now_ns() - t0;
        off = (off + sizeof(block)) % FSYNC_FILE_BYTES;
    }
    close(fd);
    qsort(samples, n, sizeof(*samples), cmp_u64);
    printf("fsync samples=%zu p50_us=%.1f p99_us=%.1f max_us=%.1f\n", n,
           percentile(samples, n, 50) / 1e3, percentile(samples, n, 99) / 1e3,
           n ? samples[n - 1] / 1e3 : 0.0);
    free(samples);
    return 0;
}

/* ---- ed25519 -------------------------------------------------------------- */

typedef struct verify_thread {
    pthread_t thread;
    const unsigned char *pk, *sig, *msg;
    size_t msg_len;
    uint64_t end_ns;
    uint64_t ops;
    int bad;
} verify_thread;

static void *verify_main(void *arg)
{
    verify_thread *t = arg;
    uint64_t ops = 0;
    int i;

    do {
        for (i = 0; i < 64; i++)
            if (crypto_sign_verify_detached(t->sig, t->msg, t->msg_len, t->pk) != 0)
                t->bad = 1;
        ops += 64;
    } while (now_ns() < t->end_ns);
    t->ops = ops;
    return NULL;
}

static int cmd_ed25519(int threads, double seconds)
{
    /* approval_id + tenant_id + action_hash + issued_at + expires_at */
    static const char msg[] = "8f14e45f-ceea-467f-a0e6-1c7a2b3d4e5f"
                              "acme"
                              "0b7d2a7c9f3e4c1d8a6b5e2f0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d"
                              "2026-11-25T19:41:28.123456"
                              "2026-11-25T20:41:28.123456";
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    unsigned char sig[crypto_sign_BYTES];
    verify_thread *ts = calloc((size_t)threads, sizeof(*ts));
    uint64_t start, total = 0;
    double elapsed;
    int i, bad = 0;

    if (ts == NULL || sodium_init() < 0)
        die("init");
    crypto_sign_keypair(pk, sk);
    crypto_sign_detached(sig, NULL, (const unsigned char *)msg, sizeof(msg) - 1, sk);
    start = now_ns();
    for (i = 0; i < threads; i++) {
        ts[i] = (verify_thread){.pk = pk, .sig = sig, .msg = (const unsigned char *)msg,
                                .msg_len = sizeof(msg) - 1,
                                .end_ns = start + (uint64_t)(seconds * 1e9)};
        if (pthread_create(&ts[i].thread, NULL, verify_main, &ts[i]) != 0)
            die("pthread_create");
    }
    for (i = 0; i < threads; i++) {
        pthread_join(ts[i].thread, NULL);
        total += ts[i].ops;
        bad |= ts[i].bad;
    }
    elapsed = (double)(now_ns() - start) / 1e9;
    if (bad) {
        fprintf(stderr, "ceilings: ed25519: a valid signature failed to verify\n");
        return 1;
    }
    printf("ed25519 threads=%d verifications=%llu seconds=%.2f rate=%.0f\n", threads,
           (unsigned long long)total, elapsed, (double)total / elapsed);
    free(ts);
    return 0;
}

/* ---- sqlite (the server's store) ------------------------------------------ */

typedef struct producer producer;

typedef struct bench_item {
    store_item item; /* first: on_done gets &item */
    producer *owner;
    uint64_t submitted_ns;
    char nonce[64];
    char approval_id[37];
    unsigned char approval_sha256[32];
    struct bench_item *next_done;
} bench_item;

struct producer {
    pthread_t thread;
    int id;
    int inflight;
    int approvals; /* each item uses up an approval (sqlite-approvals) */
    store *st;
    const uint64_t *end_ns;

    pthread_mutex_t lock;
    pthread_cond_t wake;
    bench_item *done; /* completed by the writer, not yet seen */

    uint64_t seq;
    uint64_t committed, failed;
    uint64_t *lat; /* ns, one per completion */
    size_t lat_n, lat_cap;
};

/* sha256 of canon({"action":"echo","payload":{"amount":5}}), as the demo
 * scenario sends; the result hash is as arbitrary as it is irrelevant. */
static const char ACTION_HASH[] =
    "91296e44655e0a5c17464300c4af3f2fa5b1dc70285502018c110f59bbd93063";
static const char RESULT_SHA256[] =
    "51eed75cc483d6bc9948d3d94b5b8a3cdcdbe13c5fff1add101bdf23e43081f5";
#define ITEM_BUF_MAX (64 * 1024)

/* Writer thread, inside the transaction: cannot happen (nonces are unique
 * per run and the database is fresh), but the store requires it. */
static void on_item_conflict(store_item *si)
{
    si->kind = STORE_ITEM_ATTEMPT;
    si->receipt.outcome = "rejected";
    si->receipt.error = "nonce_reused";
}

/* Writer thread: hand the item back to its producer, as the server posts a
 * completion to its event loop. */
static void on_item_done(store_item *si)
{
    bench_item *it = (bench_item *)si;
    producer *p = it->owner;

    pthread_mutex_lock(&p->lock);
    it->next_done = p->done;
    p->done = it;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

/* What execute.c does for a demo echo before store_submit: a receipt for
 * an executed attempt and the answer's head (up to "signed_receipt":). */
static void submit_new(producer *p, bench_item *it)
{
    store_item *si = &it->item;
    receipt_fields *rf = &si->receipt;
    int len;

    si->kind = STORE_ITEM_EXECUTION;
    len = snprintf(it->nonce, sizeof(it->nonce), "ceil-%d-%llu", p->id,
                   (unsigned long long)p->seq++);
    si->nonce = it->nonce;
    si->nonce_len = (size_t)len;
    si->action_hash = ACTION_HASH;
    si->approval_id = NULL;
    si->approval_msg_sha256 = NULL;
    if (p->approvals) {
        oe_uuid4(it->approval_id);
        randombytes_buf(it->approval_sha256, sizeof(it->approval_sha256));
        si->approval_id = it->approval_id;
        si->approval_msg_sha256 = it->approval_sha256;
        si->approval_expires_us = oe_now_us() + 300 * 1000000LL;
    }

    memset(rf, 0, sizeof(*rf));
    oe_exec_id(rf->exec_id);
    receipt_stamp(rf);
    rf->action = "echo";
    rf->action_len = 4;
    memcpy(rf->action_hash, ACTION_HASH, sizeof(rf->action_hash));
    canon_sha256_hex(it->nonce, (size_t)len, rf->nonce_sha256);
    rf->outcome = "executed";
    rf->status = 200;
    memcpy(rf->result_sha256, RESULT_SHA256, sizeof(rf->result_sha256));
    rf->error = NULL;
    rf->approval_id = si->approval_id;

    oe_buf_reset(&si->head);
    oe_buf_printf(&si->head,
                  "{\"id\":\"%s\",\"action\":\"echo\",\"result\":{\"echo\":{\"amount\":5}},"
                  "\"approved\":true,\"receipt\":\"%s\",\"signed_receipt\":",
                  rf->exec_id, RESULT_SHA256);
    si->status = 200;
    si->replay_of = NULL;
    si->on_conflict = on_item_conflict;
    si->on_done = on_item_done;
    si->cookie = it;
    it->submitted_ns = now_ns();
    store_submit(p->st, si);
}

/* Back to the caller after on_done: what execute_finish/job_free release. */
static void reclaim(bench_item *it)
{
    store_item *si = &it->item;

    store_execution_free(&si->existing);
    memset(&si->existing, 0, sizeof(si->existing));
    free(si->note);
    si->note = NULL;
    si->note_len = 0;
    oe_buf_reset(&si->prefix);
}

static void *producer_main(void *arg)
{
    producer *p = arg;
    bench_item *items = calloc((size_t)p->inflight, sizeof(*items));
    int i, outstanding = p->inflight, stopping = 0;

    if (items == NULL)
        die("calloc");
    for (i = 0; i < p->inflight; i++) {
        items[i].owner = p;
        oe_buf_init(&items[i].item.head, ITEM_BUF_MAX);
        oe_buf_init(&items[i].item.prefix, ITEM_BUF_MAX);
        submit_new(p, &items[i]);
    }
    while (outstanding > 0) {
        bench_item *done;

        pthread_mutex_lock(&p->lock);
        while (p->done == NULL)
            pthread_cond_wait(&p->wake, &p->lock);
        done = p->done;
        p->done = NULL;
        pthread_mutex_unlock(&p->lock);

        if (!stopping && now_ns() >= *p->end_ns)
            stopping = 1;
        while (done != NULL) {
            bench_item *it = done;
            uint64_t t = now_ns();
            done = it->next_done;
            if (it->item.result == STORE_COMMITTED && it->item.note != NULL)
                p->committed++;
            else
                p->failed++;
            reclaim(it);
            if (p->lat_n == p->lat_cap) {
                p->lat_cap = p->lat_cap ? p->lat_cap * 2 : 65536;
                p->lat = realloc(p->lat, p->lat_cap * sizeof(*p->lat));
                if (p->lat == NULL)
                    die("realloc");
            }
            p->lat[p->lat_n++] = t - it->submitted_ns;
            if (stopping)
                outstanding--;
            else
                submit_new(p, it);
        }
    }
    for (i = 0; i < p->inflight; i++) {
        oe_buf_free(&items[i].item.head);
        oe_buf_free(&items[i].item.prefix);
    }
    free(items);
    return NULL;
}

/* CPU seconds of this process so far (all threads). */
static double cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

/* Bytes this process caused to be written to storage (/proc/self/io). */
static unsigned long long write_bytes(void)
{
    unsigned long long v = 0;
    char line[128];
    FILE *f = fopen("/proc/self/io", "r");

    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "write_bytes: %llu", &v) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return v;
}

static int cmd_sqlite(double seconds, int producers, int inflight, int approvals)
{
    char why[512], warn[512], origin[INSTANCE_ORIGIN_MAX];
    keys_private key;
    store_log_identity id;
    oe_config cfg;
    store *st = NULL;
    producer *ps = calloc((size_t)producers, sizeof(*ps));
    uint64_t start, end_ns, committed = 0, failed = 0, *lat = NULL;
    unsigned long syncs0, syncs;
    unsigned long long wb0, wb;
    size_t lat_n = 0;
    double elapsed, cpu0, cpu;
    int i;

    if (ps == NULL || sodium_init() < 0)
        die("init");
    if (config_load(&cfg, NULL, NULL, why, sizeof(why), warn, sizeof(warn)) != 0) {
        fprintf(stderr, "ceilings: sqlite: configuration: %s\n", why);
        return 1;
    }
    if (instance_load(&cfg, &key, origin, why, sizeof(why)) != 0) {
        fprintf(stderr, "ceilings: sqlite: receipt key: %s\n", why);
        return 1;
    }
    id.origin = origin;
    id.key = &key;
    if (store_open(&cfg, &id, &st, why, sizeof(why)) != 0) {
        fprintf(stderr, "ceilings: sqlite: store_open: %s\n", why);
        return 1;
    }
    syncs0 = atomic_load(&sync_calls);
    cpu0 = cpu_seconds();
    wb0 = write_bytes();
    start = now_ns();
    end_ns = start + (uint64_t)(seconds * 1e9);
    for (i = 0; i < producers; i++) {
        producer *p = &ps[i];
        p->id = i;
        p->inflight = inflight;
        p->approvals = approvals;
        p->st = st;
        p->end_ns = &end_ns;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->wake, NULL);
        if (pthread_create(&p->thread, NULL, producer_main, p) != 0)
            die("pthread_create");
    }
    for (i = 0; i < producers; i++) {
        pthread_join(ps[i].thread, NULL);
        committed += ps[i].committed;
        failed += ps[i].failed;
        lat_n += ps[i].lat_n;
    }
    elapsed = (double)(now_ns() - start) / 1e9;
    syncs = atomic_load(&sync_calls) - syncs0;
    cpu = cpu_seconds() - cpu0;
    wb = write_bytes() - wb0;
    store_close(st);
    keys_private_wipe(&key);

    lat = malloc((lat_n ? lat_n : 1) * sizeof(*lat));
    if (lat == NULL)
        die("malloc");
    lat_n = 0;
    for (i = 0; i < producers; i++) {
        memcpy(lat + lat_n, ps[i].lat, ps[i].lat_n * sizeof(*lat));
        lat_n += ps[i].lat_n;
        free(ps[i].lat);
    }
    qsort(lat, lat_n, sizeof(*lat), cmp_u64);
    printf("%s producers=%d inflight=%d committed=%llu failed=%llu seconds=%.2f rate=%.0f "
           "syncs=%lu rows_per_sync=%.1f p50_us=%.1f p99_us=%.1f cpu_us_per_row=%.1f "
           "kib_written_per_row=%.1f\n",
           approvals ? "sqlite-approvals" : "sqlite", producers, inflight,
           (unsigned long long)committed, (unsigned long long)failed, elapsed,
           (double)committed / elapsed, syncs, syncs ? (double)committed / (double)syncs : 0.0,
           percentile(lat, lat_n, 50) / 1e3, percentile(lat, lat_n, 99) / 1e3,
           committed ? cpu * 1e6 / (double)committed : 0.0,
           committed ? (double)wb / 1024.0 / (double)committed : 0.0);
    free(lat);
    free(ps);
    config_free(&cfg);
    return failed ? 1 : 0;
}

/* ---- raw SQLite (a reference, not a ceiling) ------------------------------- */

/* What SQLite alone does on this disk with the same durability and batch
 * size, without the store's per-item work: BATCH rows per transaction
 * (WAL, synchronous=FULL), each row a nonce key, a unique id made as the
 * server makes exec_ids and a blob the size of a stored answer, in one
 * thread. */
static int cmd_sqlite_raw(const char *path, double seconds, int batch, int row_bytes)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL;
    unsigned char *blob = calloc(1, (size_t)row_bytes);
    uint64_t start, end, rows = 0;
    unsigned long syncs0;
    char nonce[64], uuid[37];
    double elapsed;
    int i, len;

    if (blob == NULL || sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     "CREATE TABLE t (nonce BLOB PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
                     " body BLOB NOT NULL);",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO t(nonce, id, body) VALUES (?1, ?2, ?3)", -1, &ins,
                           NULL) != SQLITE_OK) {
        fprintf(stderr, "ceilings: sqlite-raw: %s\n", db ? sqlite3_errmsg(db) : "open");
        return 1;
    }
    memset(blob, 'x', (size_t)row_bytes);
    syncs0 = atomic_load(&sync_calls);
    start = now_ns();
    end = start + (uint64_t)(seconds * 1e9);
    while (now_ns() < end) {
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
            die("begin");
        for (i = 0; i < batch; i++) {
            len = snprintf(nonce, sizeof(nonce), "raw-%llu", (unsigned long long)rows + i);
            oe_exec_id(uuid);
            sqlite3_bind_blob(ins, 1, nonce, len, SQLITE_STATIC);
            sqlite3_bind_text(ins, 2, uuid, 36, SQLITE_STATIC);
            sqlite3_bind_blob(ins, 3, blob, row_bytes, SQLITE_STATIC);
            if (sqlite3_step(ins) != SQLITE_DONE)
                die("insert");
            sqlite3_reset(ins);
        }
        if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            die("commit");
        rows += (uint64_t)batch;
    }
    elapsed = (double)(now_ns() - start) / 1e9;
    printf("sqlite-raw batch=%d row_bytes=%d rows=%llu seconds=%.2f rate=%.0f syncs=%lu\n", batch,
           row_bytes, (unsigned long long)rows, elapsed, (double)rows / elapsed,
           atomic_load(&sync_calls) - syncs0);
    sqlite3_finalize(ins);
    sqlite3_close(db);
    free(blob);
    return 0;
}

/* ---- main ------------------------------------------------------------------ */

static const char USAGE[] = "usage: ceilings fsync DIR SECONDS\n"
                            "       ceilings ed25519 THREADS SECONDS\n"
                            "       ceilings sqlite SECONDS PRODUCERS INFLIGHT"
                            "   (database: OPENEXEC_DB_URL)\n"
                            "       ceilings sqlite-approvals SECONDS PRODUCERS INFLIGHT\n"
                            "       ceilings sqlite-raw PATH SECONDS BATCH ROW_BYTES\n";

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 4 && strcmp(argv[1], "fsync") == 0)
        return cmd_fsync(argv[2], atof(argv[3]));
    if (argc == 4 && strcmp(argv[1], "ed25519") == 0 && atoi(argv[2]) > 0)
        return cmd_ed25519(atoi(argv[2]), atof(argv[3]));
    if (argc == 5 && (strcmp(argv[1], "sqlite") == 0 || strcmp(argv[1], "sqlite-approvals") == 0) &&
        atoi(argv[3]) > 0 && atoi(argv[4]) > 0)
        return cmd_sqlite(atof(argv[2]), atoi(argv[3]), atoi(argv[4]),
                          strcmp(argv[1], "sqlite-approvals") == 0);
    if (argc == 6 && strcmp(argv[1], "sqlite-raw") == 0 && atoi(argv[4]) > 0 && atoi(argv[5]) > 0)
        return cmd_sqlite_raw(argv[2], atof(argv[3]), atoi(argv[4]), atoi(argv[5]));
    fputs(USAGE, stderr);
    return 2;
}

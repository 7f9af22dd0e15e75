/*
 * store_sqlite.c - the SQLite backend of store.h (the default store).
 *
 * Durability: WAL journal with synchronous=FULL, so a COMMIT that returned
 * has been fsynced (WAL frames and all) and survives kill -9 and power loss.
 * The single writer connection belongs to the writer thread (store.c); each
 * event loop has its own read-only connection, and WAL lets those read a
 * consistent snapshot while the writer commits, so replays never wait.
 *
 * Schema versions live in PRAGMA user_version; MIGRATIONS[i] upgrades
 * version i to i+1, all pending ones in one transaction.  A file that is not
 * an OpenExec database (or not a database at all, or from a newer version)
 * is refused with a clear message and never written to.
 *
 * Exactly once: executions.nonce is the primary key, and approvals_used has
 * two independent unique keys (message_sha256, approval_id), so a second
 * use is refused by the database itself, inside the transaction that would
 * record the second execution.
 *
 * The receipt log (schema 6): receipts, tree nodes and signed heads live in
 * rowid tables whose integer key packs the log and the position in it
 * (log_key, node_key), so every commit appends at the end of each table.
 * That bounds a SQLite database to LOG_ID_LIMIT - 1 logs (one per origin
 * ever used) of POSITION_LIMIT - 1 entries each; beyond them the keys are
 * refused, never wrapped.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "log.h"
#include "store_backend.h"
#include "util.h"

#define BUSY_TIMEOUT_MS 5000

/* The columns of executions after nonce and exec_id, the same in schemas 1
 * and 2 (2 only drops exec_id's unique index).  Frozen, like every
 * migration: a change to the table is a new migration. */
#define EXECUTION_COLUMNS                                                                          \
    "  action TEXT NOT NULL,"                                                                      \
    "  action_hash TEXT NOT NULL,"                                                                 \
    "  approval_id TEXT,"                                                                          \
    "  state INTEGER NOT NULL,"                                                                    \
    "  status INTEGER NOT NULL,"                                                                   \
    "  response BLOB NOT NULL,"                                                                    \
    "  tree_size INTEGER NOT NULL,"                                                                \
    "  tree_root BLOB,"                                                                            \
    "  result_sha256 TEXT,"                                                                        \
    "  error TEXT,"                                                                                \
    "  claimed_by TEXT NOT NULL,"                                                                  \
    "  created_us INTEGER NOT NULL"

static const char *const MIGRATIONS[] = {
    /* 0 -> 1: nonces, executions, single-use approvals, the receipt logs. */
    "CREATE TABLE executions ("
    "  nonce BLOB PRIMARY KEY,"
    "  exec_id TEXT NOT NULL UNIQUE,"
    EXECUTION_COLUMNS
    ");"
    "CREATE INDEX executions_by_state ON executions(state) WHERE state <> 1;"
    "CREATE TABLE approvals_used ("
    "  message_sha256 BLOB PRIMARY KEY,"
    "  approval_id TEXT NOT NULL UNIQUE,"
    "  nonce BLOB NOT NULL,"
    "  used_us INTEGER NOT NULL"
    ");"
    "CREATE TABLE logs ("
    "  log_id INTEGER PRIMARY KEY,"
    "  origin TEXT NOT NULL UNIQUE,"
    "  public_key BLOB NOT NULL,"
    "  lease_holder TEXT,"
    "  lease_expires_us INTEGER NOT NULL DEFAULT 0,"
    "  checkpoint TEXT,"
    "  checkpoint_size INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE TABLE receipts ("
    "  log_id INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  exec_id TEXT NOT NULL,"
    "  body BLOB NOT NULL,"
    "  PRIMARY KEY (log_id, seq)"
    ") WITHOUT ROWID;"
    "CREATE INDEX receipts_by_exec_id ON receipts(exec_id);"
    "CREATE TABLE tlog_nodes ("
    "  log_id INTEGER NOT NULL,"
    "  level INTEGER NOT NULL,"
    "  idx INTEGER NOT NULL,"
    "  hash BLOB NOT NULL,"
    "  PRIMARY KEY (log_id, level, idx)"
    ") WITHOUT ROWID;"
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT INTO meta(key, value) VALUES ('application', 'openexec');",
    /* 1 -> 2: every signed head (see store_pg.c); and executions without
     * the unique index on exec_id (see store_pg.c), which SQLite can only
     * drop by copying the table. */
    "CREATE TABLE executions_v2 ("
    "  nonce BLOB PRIMARY KEY,"
    "  exec_id TEXT NOT NULL,"
    EXECUTION_COLUMNS
    ");"
    "INSERT INTO executions_v2 SELECT nonce, exec_id, action, action_hash, approval_id, state,"
    " status, response, tree_size, tree_root, result_sha256, error, claimed_by, created_us"
    " FROM executions;"
    "DROP TABLE executions;"
    "ALTER TABLE executions_v2 RENAME TO executions;"
    "CREATE INDEX executions_by_state ON executions(state) WHERE state <> 1;"
    "CREATE TABLE checkpoints ("
    "  log_id INTEGER NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  note TEXT NOT NULL,"
    "  PRIMARY KEY (log_id, size)"
    ") WITHOUT ROWID;"
    "INSERT INTO checkpoints(log_id, size, note)"
    " SELECT log_id, checkpoint_size, checkpoint FROM logs WHERE checkpoint IS NOT NULL;",
    /* 2 -> 3: tree nodes keyed by the leaf whose append completed them
     * (leaf = ((idx + 1) << level) - 1), so the nodes of one batch are
     * adjacent in the B-tree: a commit writes them into a page or two at
     * its end instead of into one page per tree level (docs/performance.md).
     * SQL_GET_NODE and W_INSERT_NODE map (level, idx) to the key. */
    "CREATE TABLE tlog_nodes_v3 ("
    "  log_id INTEGER NOT NULL,"
    "  leaf INTEGER NOT NULL,"
    "  level INTEGER NOT NULL,"
    "  hash BLOB NOT NULL,"
    "  PRIMARY KEY (log_id, leaf, level)"
    ") WITHOUT ROWID;"
    "INSERT INTO tlog_nodes_v3(log_id, leaf, level, hash)"
    " SELECT log_id, ((idx + 1) << level) - 1, level, hash FROM tlog_nodes ORDER BY 1, 2, 3;"
    "DROP TABLE tlog_nodes;"
    "ALTER TABLE tlog_nodes_v3 RENAME TO tlog_nodes;",
    /* 3 -> 4: an answer is stored as its head and the place of its receipt
     * (receipt_log, receipt_seq); the receipt and its inclusion proof, two
     * thirds of the bytes, are in the log already, and store.c rebuilds
     * the prefix from them (docs/storage.md).  Rows of older versions keep
     * the whole prefix and NULL here. */
    "ALTER TABLE executions ADD COLUMN receipt_log INTEGER;"
    "ALTER TABLE executions ADD COLUMN receipt_seq INTEGER;",
    /* 4 -> 5: a used approval keyed by (expires_us, message_sha256), so that
     * approvals, which are used soon after they are minted, are inserted
     * near the end of the B-tree instead of on a random page (one page
     * written per approval instead of one per approval and key; see
     * W_INSERT_APPROVAL for why the key is still "the same message").
     * Rows of older versions do not know their expiry: they get 0, which no
     * approval that may still be used has, and are looked up as such. */
    "CREATE TABLE approvals_used_v5 ("
    "  expires_us INTEGER NOT NULL,"
    "  message_sha256 BLOB NOT NULL,"
    "  approval_id TEXT NOT NULL UNIQUE,"
    "  nonce BLOB NOT NULL,"
    "  used_us INTEGER NOT NULL,"
    "  PRIMARY KEY (expires_us, message_sha256)"
    ") WITHOUT ROWID;"
    "INSERT INTO approvals_used_v5(expires_us, message_sha256, approval_id, nonce, used_us)"
    " SELECT 0, message_sha256, approval_id, nonce, used_us FROM approvals_used;"
    "DROP TABLE approvals_used;"
    "ALTER TABLE approvals_used_v5 RENAME TO approvals_used;",
    /* 5 -> 6: receipts, tree nodes and signed heads in rowid tables keyed
     * by one integer that packs (log, position): log_seq = log_id << 44 |
     * seq, log_node = log_id << 50 | leaf << 6 | level, log_size = log_id
     * << 44 | size (log_key, node_key).  As WITHOUT ROWID tables every
     * interior page of receipts held whole ~500-byte receipts (a fan-out of
     * about 8: four interior pages rewritten per commit), and an append to
     * an index B-tree rebalances three leaves at each split; a rowid table
     * appends into a fresh page.  A commit writes a fifth fewer bytes
     * (docs/performance.md).  The named CHECK refuses the upgrade, before
     * anything is copied, of a database whose logs the keys cannot hold. */
    "CREATE TEMP TABLE schema_6_limits (fits INTEGER"
    "  CONSTRAINT \"every log id below 8192 and every log below 2^44 entries\" CHECK (fits));"
    "INSERT INTO schema_6_limits SELECT NOT EXISTS (SELECT 1 FROM logs"
    "  WHERE log_id NOT BETWEEN 0 AND 8191 OR checkpoint_size >= 17592186044416);"
    "DROP TABLE schema_6_limits;"
    "CREATE TABLE receipts_v6 ("
    "  log_seq INTEGER PRIMARY KEY,"
    "  exec_id TEXT NOT NULL,"
    "  body BLOB NOT NULL"
    ");"
    "INSERT INTO receipts_v6(log_seq, exec_id, body)"
    " SELECT (log_id << 44) | seq, exec_id, body FROM receipts ORDER BY log_id, seq;"
    "DROP TABLE receipts;"
    "ALTER TABLE receipts_v6 RENAME TO receipts;"
    "CREATE INDEX receipts_by_exec_id ON receipts(exec_id);"
    "CREATE TABLE tlog_nodes_v6 ("
    "  log_node INTEGER PRIMARY KEY,"
    "  hash BLOB NOT NULL"
    ");"
    "INSERT INTO tlog_nodes_v6(log_node, hash)"
    " SELECT (log_id << 50) | (leaf << 6) | level, hash FROM tlog_nodes"
    " ORDER BY log_id, leaf, level;"
    "DROP TABLE tlog_nodes;"
    "ALTER TABLE tlog_nodes_v6 RENAME TO tlog_nodes;"
    "CREATE TABLE checkpoints_v6 ("
    "  log_size INTEGER PRIMARY KEY,"
    "  note TEXT NOT NULL"
    ");"
    "INSERT INTO checkpoints_v6(log_size, note)"
    " SELECT (log_id << 44) | size, note FROM checkpoints ORDER BY log_id, size;"
    "DROP TABLE checkpoints;"
    "ALTER TABLE checkpoints_v6 RENAME TO checkpoints;",
};
#define SCHEMA_VERSION ((int)(sizeof(MIGRATIONS) / sizeof(MIGRATIONS[0])))

/* The packed keys of schema 6.  The SQL below spells POSITION_BITS as 44. */
#define POSITION_BITS 44
#define LEVEL_BITS 6
#define LOG_ID_LIMIT ((int64_t)1 << (63 - POSITION_BITS - LEVEL_BITS)) /* 8192 */
#define POSITION_LIMIT ((uint64_t)1 << POSITION_BITS)

/* The key of position (seq or tree size) in log: -1 when the pair has no
 * key, which no stored row can then have either. */
static int log_key(int64_t log_id, uint64_t position, sqlite3_int64 *key)
{
    if (log_id < 0 || log_id >= LOG_ID_LIMIT || position >= POSITION_LIMIT)
        return -1;
    *key = (sqlite3_int64)(((uint64_t)log_id << POSITION_BITS) | position);
    return 0;
}

/* The key of tree node (level, index) in log: the node is filed under the
 * leaf whose append completed it, ((index + 1) << level) - 1, so the nodes
 * of one commit are adjacent (schema 3). */
static int node_key(int64_t log_id, unsigned level, uint64_t index, sqlite3_int64 *key)
{
    uint64_t leaf;

    if (log_id < 0 || log_id >= LOG_ID_LIMIT || level >= POSITION_BITS ||
        index >= POSITION_LIMIT >> level)
        return -1;
    leaf = ((index + 1) << level) - 1;
    *key = (sqlite3_int64)(((uint64_t)log_id << (POSITION_BITS + LEVEL_BITS)) |
                           (leaf << LEVEL_BITS) | level);
    return 0;
}

static int exec_sql(sqlite3 *db, const char *sql, char *why, size_t why_len)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(why, why_len, "%s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int query_int(sqlite3 *db, const char *sql, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Refuses anything that is not an OpenExec database we understand, without
 * writing to it.  (No full integrity check here: it is linear in the size of
 * the database; damage found later fails closed as store_unavailable.) */
static int check_existing(sqlite3 *db, int *version, char *why, size_t why_len)
{
    int tables = 0;

    if (query_int(db, "PRAGMA user_version", version) != 0 ||
        query_int(db, "SELECT count(*) FROM sqlite_schema", &tables) != 0) {
        snprintf(why, why_len, "not a usable SQLite database (%s); refusing to touch it",
                 sqlite3_errmsg(db));
        return -1;
    }
    if (*version > SCHEMA_VERSION) {
        snprintf(why, why_len,
                 "the database has schema version %d, newer than this build's %d; refusing to "
                 "touch it",
                 *version, SCHEMA_VERSION);
        return -1;
    }
    if (*version == 0 && tables > 0) {
        snprintf(why, why_len,
                 "the file holds a database that is not OpenExec's; refusing to touch it");
        return -1;
    }
    return 0;
}

static int migrate(sqlite3 *db, int from, char *why, size_t why_len)
{
    char sql[64];
    int v;

    if (from == SCHEMA_VERSION)
        return 0;
    /* An upgrade may copy a table (1 -> 2 copies executions, 2 -> 3 the
     * tree nodes: about half a minute per million rows on a small VM); say
     * why the server is not ready. */
    if (from > 0)
        oe_log("info", "store: upgrading the database schema from version %d to %d", from,
               SCHEMA_VERSION);
    if (exec_sql(db, "BEGIN IMMEDIATE", why, why_len) != 0)
        return -1;
    for (v = from; v < SCHEMA_VERSION; v++)
        if (exec_sql(db, MIGRATIONS[v], why, why_len) != 0)
            goto fail;
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
    if (exec_sql(db, sql, why, why_len) != 0 || exec_sql(db, "COMMIT", why, why_len) != 0)
        goto fail;
    if (from > 0)
        oe_log("info", "store: database schema upgraded from version %d to %d", from,
               SCHEMA_VERSION);
    return 0;
fail:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

/* Statements, prepared once per connection.  Writer and readers share the
 * read statements' SQL so they cannot drift. */
enum {
    W_BEGIN,
    W_COMMIT,
    W_ROLLBACK,
    W_INSERT_EXECUTION,
    W_INSERT_APPROVAL,
    W_APPROVAL_USED,
    W_COMPLETE,
    W_INSERT_RECEIPT,
    W_INSERT_NODE,
    W_FIND_EXECUTION,
    W_GET_NODE,
    W_FIND_LOG,
    W_INSERT_LOG,
    W_UPDATE_LEASE,
    W_RELEASE_LEASE,
    W_LOG_SIZE,
    W_SAVE_CHECKPOINT,
    W_KEEP_CHECKPOINT,
    W_PROBE,
    W_MARK_UNKNOWN,
    W_OTHER_LEASES,
    W_RETIRE_LEASE,
    W_COUNT
};
enum {
    R_FIND_EXECUTION,
    R_GET_NODE,
    R_FIND_LOG,
    R_FIND_RECEIPT,
    R_EXPORT,
    R_PENDING,
    R_FIND_CHECKPOINT,
    R_COUNT
};

#define SQL_FIND_EXECUTION                                                                         \
    "SELECT e.exec_id, e.action_hash, e.approval_id, e.state, e.status, e.response, e.tree_size,"  \
    " e.tree_root, e.result_sha256, e.error, e.action, e.receipt_log, e.receipt_seq, r.body"       \
    " FROM executions e LEFT JOIN receipts r"                                                      \
    " ON r.log_seq = (e.receipt_log << 44) | e.receipt_seq"                                        \
    " WHERE e.nonce = ?1"
#define SQL_GET_NODE "SELECT hash FROM tlog_nodes WHERE log_node = ?1"
#define SQL_FIND_LOG                                                                               \
    "SELECT log_id, public_key, lease_holder, lease_expires_us, checkpoint, checkpoint_size"       \
    " FROM logs WHERE origin = ?1"

static const char *const WRITER_SQL[W_COUNT] = {
    [W_BEGIN] = "BEGIN IMMEDIATE",
    [W_COMMIT] = "COMMIT",
    [W_ROLLBACK] = "ROLLBACK",
    [W_INSERT_EXECUTION] =
        "INSERT INTO executions(nonce, exec_id, action, action_hash, approval_id,"
        " state, status, response, tree_size, tree_root, result_sha256, error, claimed_by,"
        " created_us, receipt_log, receipt_seq)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?12, ?13, NULL, ?8, ?9, ?11, ?10, ?14, ?15)",
    /* Ignored (0 changes) when the approval_id was used, or the message:
     * (expires_us, message_sha256) is as unique as the message alone,
     * because expires_us is read from the message itself (its last field;
     * given this request's action hash the split of issued_at + expires_at
     * is unique under the time grammar), and rows from before schema 5
     * are found under expires_us 0. */
    [W_INSERT_APPROVAL] =
        "INSERT OR IGNORE INTO approvals_used(expires_us, message_sha256, approval_id, nonce,"
        " used_us) SELECT ?5, ?1, ?2, ?3, ?4 WHERE NOT EXISTS (SELECT 1 FROM approvals_used"
        " WHERE expires_us = 0 AND message_sha256 = ?1)",
    /* The same two keys as W_INSERT_APPROVAL's, read without writing. */
    [W_APPROVAL_USED] =
        "SELECT EXISTS (SELECT 1 FROM approvals_used WHERE approval_id = ?2)"
        " OR EXISTS (SELECT 1 FROM approvals_used WHERE expires_us = ?3 AND message_sha256 = ?1)"
        " OR EXISTS (SELECT 1 FROM approvals_used WHERE expires_us = 0 AND message_sha256 = ?1)",
    [W_COMPLETE] = "UPDATE executions SET state = 1, response = ?2, tree_size = ?3,"
                   " tree_root = ?4, status = ?5, result_sha256 = ?6, error = ?7,"
                   " receipt_log = ?8, receipt_seq = ?9 WHERE nonce = ?1 AND state = ?10",
    [W_INSERT_RECEIPT] = "INSERT INTO receipts(log_seq, exec_id, body) VALUES (?1, ?2, ?3)",
    [W_INSERT_NODE] = "INSERT INTO tlog_nodes(log_node, hash) VALUES (?1, ?2)",
    [W_FIND_EXECUTION] = SQL_FIND_EXECUTION,
    [W_GET_NODE] = SQL_GET_NODE,
    [W_FIND_LOG] = SQL_FIND_LOG,
    [W_INSERT_LOG] = "INSERT INTO logs(origin, public_key, lease_holder, lease_expires_us)"
                     " VALUES (?1, ?2, ?3, ?4)",
    [W_UPDATE_LEASE] = "UPDATE logs SET lease_holder = ?2, lease_expires_us = ?3 WHERE log_id = ?1",
    [W_RELEASE_LEASE] =
        "UPDATE logs SET lease_expires_us = 0 WHERE log_id = ?1 AND lease_holder = ?2",
    /* ?1 and ?2: the keys of positions 0 and POSITION_LIMIT - 1. */
    [W_LOG_SIZE] = "SELECT COALESCE((SELECT log_seq FROM receipts WHERE log_seq BETWEEN ?1 AND ?2"
                   " ORDER BY log_seq DESC LIMIT 1) - ?1 + 1, 0)",
    [W_SAVE_CHECKPOINT] = "UPDATE logs SET checkpoint = ?2, checkpoint_size = ?3 WHERE log_id = ?1",
    [W_KEEP_CHECKPOINT] = "INSERT OR IGNORE INTO checkpoints(log_size, note) VALUES (?1, ?2)",
    [W_PROBE] = "INSERT OR REPLACE INTO meta(key, value) VALUES ('probe', ?1)",
    [W_MARK_UNKNOWN] = "UPDATE executions SET state = 2 WHERE state = 0 AND claimed_by = ?1",
    [W_OTHER_LEASES] = "SELECT origin, lease_holder, lease_expires_us FROM logs"
                       " WHERE origin <> ?1 AND lease_expires_us >= 0",
    [W_RETIRE_LEASE] =
        "UPDATE logs SET lease_holder = NULL, lease_expires_us = -1 WHERE origin = ?1",
};

static const char *const READER_SQL[R_COUNT] = {
    [R_FIND_EXECUTION] = SQL_FIND_EXECUTION,
    [R_GET_NODE] = SQL_GET_NODE,
    [R_FIND_LOG] = SQL_FIND_LOG,
    [R_FIND_RECEIPT] =
        "SELECT log_seq, body FROM receipts WHERE exec_id = ?1 ORDER BY log_seq LIMIT 1",
    /* ?1 and ?2: the keys of positions from and POSITION_LIMIT - 1. */
    [R_EXPORT] = "SELECT body FROM receipts WHERE log_seq BETWEEN ?1 AND ?2 ORDER BY log_seq"
                 " LIMIT ?3",
    /* state <> 1: running or unknown, the partial index's own condition. */
    [R_PENDING] = "SELECT nonce, exec_id, action, claimed_by, created_us, state FROM executions"
                  " WHERE state <> 1 ORDER BY created_us",
    /* ?2 < POSITION_LIMIT, checked by the caller. */
    [R_FIND_CHECKPOINT] = "SELECT c.note FROM logs l JOIN checkpoints c"
                          " ON c.log_size = (l.log_id << 44) | ?2 WHERE l.origin = ?1",
};

typedef struct checkpointer checkpointer;

typedef struct sqlite_conn {
    sqlite3 *db;
    size_t count;
    sqlite3_stmt *st[W_COUNT];
    checkpointer *ckpt; /* the writer's; NULL on readers */
} sqlite_conn;

/* ---- WAL checkpoints in the background ---------------------------------------
 *
 * A checkpoint copies the WAL's pages into the database file and fsyncs it.
 * Left to SQLite (wal_autocheckpoint), the commit that pushes the WAL past
 * 1,000 pages does that work itself, and the answers of that commit and of
 * every request queued behind it wait: that stall was the p99 of every
 * benchmark scenario (docs/performance.md).  So the writer's connection
 * never checkpoints on its own; a thread with its own connection runs
 * PASSIVE checkpoints (they take no lock a committing writer waits for)
 * whenever CHECKPOINT_MIN_FRAMES pages wait to be copied.
 *
 * The WAL is reused from its start only when a write transaction begins with
 * every frame copied, which a busy writer never lets the background thread
 * see.  So once the WAL holds WAL_RESTART_FRAMES, the writer checkpoints
 * after its commit itself; the background thread has copied all but the
 * last few commits by then, so that costs the writer little, and the next
 * transaction starts the WAL over.  The same rule bounds the WAL when the
 * background thread fails or falls behind.
 *
 * Durability does not depend on any of this: commits are fsynced in the WAL
 * (synchronous=FULL); a checkpoint copies committed pages and fsyncs the
 * database file before it lets the WAL be reused. */
#define CHECKPOINT_MIN_FRAMES 128
#define WAL_RESTART_FRAMES 4096
#define CHECKPOINT_IDLE_MS 1000 /* also copies a quiet tail now and then */
#define CHECKPOINT_RETRY_MS 100 /* after an error */

struct checkpointer {
    sqlite3 *db;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int frames; /* in the WAL at the writer's last commit */
    int copied; /* of those, copied by the last pass (0 after a restart) */
    int stop;
    int failing; /* the last pass failed: log once, not per pass */
};

static void deadline_in_ms(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *checkpointer_main(void *arg)
{
    checkpointer *c = arg;
    struct timespec until;

    pthread_mutex_lock(&c->lock);
    while (!c->stop) {
        int log_frames = 0, copied = 0, rc, woken;

        if (c->failing || c->frames - c->copied < CHECKPOINT_MIN_FRAMES) {
            /* Until the writer reports work; a timeout copies a quiet tail,
             * or retries after a failure. */
            deadline_in_ms(&until, c->failing ? CHECKPOINT_RETRY_MS : CHECKPOINT_IDLE_MS);
            woken = pthread_cond_timedwait(&c->wake, &c->lock, &until) != ETIMEDOUT;
            if (c->stop)
                break;
            if (woken ? c->frames - c->copied < CHECKPOINT_MIN_FRAMES
                      : c->frames == c->copied && !c->failing)
                continue;
        }
        pthread_mutex_unlock(&c->lock);
        rc =
            sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames, &copied);
        pthread_mutex_lock(&c->lock);
        if (rc == SQLITE_OK || rc == SQLITE_BUSY) {
            /* BUSY: the writer is checkpointing; its pass counts as ours. */
            if (rc == SQLITE_OK && log_frames >= 0 && copied >= 0)
                c->copied = copied <= c->frames ? copied : c->frames;
            if (c->failing)
                oe_log("info", "store: background checkpoints work again");
            c->failing = 0;
        } else {
            if (!c->failing)
                oe_log("warn", "store: background checkpoint failed (%s); retrying",
                       sqlite3_errstr(rc));
            c->failing = 1;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* The writer's WAL hook, after each commit (in place of SQLite's
 * autocheckpoint). */
static int after_commit(void *arg, sqlite3 *db, const char *name, int frames)
{
    checkpointer *c = arg;

    if (frames >= WAL_RESTART_FRAMES)
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    pthread_mutex_lock(&c->lock);
    if (frames < c->frames || frames >= WAL_RESTART_FRAMES)
        c->copied = 0; /* the WAL started over, or is about to */
    c->frames = frames;
    if (frames - c->copied >= CHECKPOINT_MIN_FRAMES)
        pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    return SQLITE_OK;
}

static void checkpointer_free(checkpointer *c)
{
    sqlite3_close(c->db);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static void checkpointer_stop(checkpointer *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    c->stop = 1;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    checkpointer_free(c);
}

/* Starts the background checkpoints of the writer's database. */
static int checkpointer_start(sqlite_conn *w, const char *path, char *why, size_t why_len)
{
    checkpointer *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        snprintf(why, why_len, "out of memory");
        return -1;
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->wake, NULL);
    if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        exec_sql(c->db, "PRAGMA synchronous=FULL", why, why_len) != 0) {
        if (c->db != NULL && why[0] == '\0')
            snprintf(why, why_len, "checkpoint connection: %s", sqlite3_errmsg(c->db));
        checkpointer_free(c);
        return -1;
    }
    if (pthread_create(&c->thread, NULL, checkpointer_main, c) != 0) {
        snprintf(why, why_len, "cannot start the checkpoint thread");
        checkpointer_free(c);
        return -1;
    }
    pthread_setname_np(c->thread, "oe-checkpoint");
    w->ckpt = c;
    sqlite3_wal_hook(w->db, after_commit, c);
    return 0;
}

static int prepare_all(sqlite_conn *c, const char *const *sql, size_t n, char *why, size_t why_len)
{
    size_t i;

    c->count = n;
    for (i = 0; i < n; i++) {
        if (sqlite3_prepare_v3(c->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &c->st[i], NULL) !=
            SQLITE_OK) {
            snprintf(why, why_len, "prepare: %s", sqlite3_errmsg(c->db));
            return -1;
        }
    }
    return 0;
}

static void close_conn(void *p)
{
    sqlite_conn *c = p;
    size_t i;

    if (c == NULL)
        return;
    if (c->ckpt != NULL)
        sqlite3_wal_hook(c->db, NULL, NULL);
    checkpointer_stop(c->ckpt);
    for (i = 0; i < c->count; i++)
        sqlite3_finalize(c->st[i]);
    sqlite3_close(c->db);
    free(c);
}

static void *open_writer(const oe_config *cfg, char *why, size_t why_len)
{
    sqlite_conn *w = calloc(1, sizeof(*w));
    char err[256] = "";
    int version = 0;

    if (w == NULL)
        return NULL;
    if (sqlite3_open_v2(cfg->sqlite_path, &w->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, sizeof(err), "%s", w->db ? sqlite3_errmsg(w->db) : "out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(w->db, 1);
    sqlite3_busy_timeout(w->db, BUSY_TIMEOUT_MS);
    if (check_existing(w->db, &version, err, sizeof(err)) != 0)
        goto fail;
    if (sqlite3_db_readonly(w->db, "main") == 1) {
        snprintf(err, sizeof(err), "the database file is read-only");
        goto fail;
    }
    if (exec_sql(w->db, "PRAGMA journal_mode=WAL", err, sizeof(err)) != 0 ||
        exec_sql(w->db, "PRAGMA synchronous=FULL", err, sizeof(err)) != 0 ||
        migrate(w->db, version, err, sizeof(err)) != 0 ||
        prepare_all(w, WRITER_SQL, W_COUNT, err, sizeof(err)) != 0 ||
        checkpointer_start(w, cfg->sqlite_path, err, sizeof(err)) != 0)
        goto fail;
    return w;

fail:
    snprintf(why, why_len, "%s: %s", cfg->sqlite_path, err);
    close_conn(w);
    return NULL;
}

/* Says why a write or a transaction failed, while SQLite still knows: a
 * batch that fails is rolled back whole and its requests get a 503, and
 * without this line the operator would not learn that the disk is full or
 * the file corrupt.  The statement's first words say which one it was.
 * Failed reads are not logged here: readers run one per request, and a
 * broken database would flood the log (the store logs its state changes). */
static void log_step_failure(sqlite3_stmt *st, int rc)
{
    const char *sql = sqlite3_sql(st);

    if (sql != NULL && strncmp(sql, "SELECT", 6) == 0)
        return;

    oe_log("error", "store: SQLite error %d, %s, in \"%.40s...\"", rc,
           sqlite3_errmsg(sqlite3_db_handle(st)), sql ? sql : "?");
}

/* Runs a statement that returns no rows. */
static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    if (rc != SQLITE_DONE)
        log_step_failure(st, rc);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Steps a one-row query; STORE_OK leaves the row readable until reset. */
static int step_row(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    if (rc == SQLITE_ROW)
        return STORE_OK;
    if (rc != SQLITE_DONE)
        log_step_failure(st, rc);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? STORE_NOT_FOUND : STORE_ERROR;
}

static void done_row(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static int writer_begin(void *p)
{
    return step_done(((sqlite_conn *)p)->st[W_BEGIN]);
}

static int writer_commit(void *p)
{
    return step_done(((sqlite_conn *)p)->st[W_COMMIT]);
}

static void writer_rollback(void *p)
{
    sqlite_conn *w = p;

    /* A failed COMMIT may already have rolled back; then this is a no-op. */
    if (!sqlite3_get_autocommit(w->db))
        step_done(w->st[W_ROLLBACK]);
}

static void copy_text(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);

    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

/* Reads one execution row from a bound SQL_FIND_EXECUTION statement. */
static int read_execution(sqlite3_stmt *st, store_execution *out)
{
    int rc = step_row(st);
    const unsigned char *text;
    const void *blob;

    if (rc != STORE_OK)
        return rc;
    copy_text(out->exec_id, sizeof(out->exec_id), st, 0);
    copy_text(out->action_hash, sizeof(out->action_hash), st, 1);
    text = sqlite3_column_text(st, 2);
    out->approval_id = text ? strdup((const char *)text) : NULL;
    out->state = (exec_state)sqlite3_column_int(st, 3);
    out->status = sqlite3_column_int(st, 4);
    blob = sqlite3_column_blob(st, 5);
    out->response_len = (size_t)sqlite3_column_bytes(st, 5);
    out->response = malloc(out->response_len + 1);
    out->tree_size = (uint64_t)sqlite3_column_int64(st, 6);
    if (sqlite3_column_bytes(st, 7) == 32)
        memcpy(out->tree_root, sqlite3_column_blob(st, 7), 32);
    copy_text(out->result_sha256, sizeof(out->result_sha256), st, 8);
    copy_text(out->error, sizeof(out->error), st, 9);
    copy_text(out->action, sizeof(out->action), st, 10);
    if (sqlite3_column_type(st, 12) != SQLITE_NULL) {
        /* A schema-4 row; its receipt was written in the same transaction. */
        const void *body = sqlite3_column_blob(st, 13);
        out->receipt_log = sqlite3_column_int64(st, 11);
        out->receipt_seq = (uint64_t)sqlite3_column_int64(st, 12);
        out->receipt_len = (size_t)sqlite3_column_bytes(st, 13);
        if (body == NULL)
            oe_log("error", "store: execution %s names receipt %llu of log %lld, which is missing",
                   out->exec_id, (unsigned long long)out->receipt_seq, (long long)out->receipt_log);
        if (body == NULL || (out->receipt = malloc(out->receipt_len + 1)) == NULL) {
            done_row(st);
            store_execution_free(out);
            return STORE_ERROR;
        }
        memcpy(out->receipt, body, out->receipt_len);
        out->receipt[out->receipt_len] = '\0';
    }
    if (out->response == NULL || (text != NULL && out->approval_id == NULL)) {
        done_row(st);
        store_execution_free(out);
        return STORE_ERROR;
    }
    if (out->response_len)
        memcpy(out->response, blob, out->response_len);
    out->response[out->response_len] = '\0';
    done_row(st);
    return STORE_OK;
}

static void bind_nonce(sqlite3_stmt *st, int idx, const char *nonce, size_t len)
{
    sqlite3_bind_blob(st, idx, nonce, (int)len, SQLITE_STATIC);
}

/* The answer's head, all a schema-4 row keeps of it (never NULL: the
 * column is NOT NULL, and a head that was never written is empty). */
static void bind_head(sqlite3_stmt *st, int idx, const store_item *item)
{
    sqlite3_bind_blob(st, idx, item->head.data ? item->head.data : "", (int)item->head.len,
                      SQLITE_STATIC);
}

static void bind_text_or_null(sqlite3_stmt *st, int idx, const char *s)
{
    if (s != NULL && s[0] != '\0')
        sqlite3_bind_text(st, idx, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, idx);
}

static int writer_find_execution(void *p, const char *nonce, size_t nonce_len,
                                 store_execution *out);

/* An execution of a built-in is written whole here, head and receipt place
 * (see writer_complete): one row write instead of an insert and an update.
 * A bare claim (an operator action about to run) is written as running,
 * with an empty answer.
 *
 * Both refusals (nonce taken, approval used) are found before the first
 * write, so a refused claim writes nothing and no savepoint is needed.  A
 * savepoint is not free in SQLite: every page the batch had already
 * dirtied that the item touches again is copied into the statement
 * journal, and freeing those copies at RELEASE made glibc hand the heap
 * back and fault it in again, batch after batch (about a fifth of the
 * writer's CPU with ClawShield approvals).  Checking first is exact here:
 * this connection is the only writer, inside BEGIN IMMEDIATE. */
static int writer_claim(void *p, store_item *item, const char *exec_id, const char *action,
                        const char *claimed_by, int64_t log_id)
{
    sqlite_conn *w = p;
    sqlite3_stmt *st;
    int64_t now = oe_now_us();
    int found = writer_find_execution(w, item->nonce, item->nonce_len, &item->existing);

    if (found == STORE_OK) {
        /* The nonce was taken, by an earlier batch or earlier in this one. */
        item->result = STORE_NONCE_TAKEN;
        return 0;
    }
    if (found != STORE_NOT_FOUND)
        return -1;
    if (item->approval_msg_sha256 != NULL) {
        st = w->st[W_INSERT_APPROVAL];
        sqlite3_bind_blob(st, 1, item->approval_msg_sha256, 32, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, item->approval_id, -1, SQLITE_STATIC);
        bind_nonce(st, 3, item->nonce, item->nonce_len);
        sqlite3_bind_int64(st, 4, now);
        sqlite3_bind_int64(st, 5, item->approval_expires_us);
        if (step_done(st) != 0)
            return -1;
        if (sqlite3_changes(w->db) == 0) {
            item->result = STORE_APPROVAL_USED;
            return 0;
        }
    }
    st = w->st[W_INSERT_EXECUTION];
    bind_nonce(st, 1, item->nonce, item->nonce_len);
    sqlite3_bind_text(st, 2, exec_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, action, (int)item->receipt.action_len, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, item->action_hash, -1, SQLITE_STATIC);
    /* NULL only without an approval: "" is an id like any other. */
    if (item->approval_id != NULL)
        sqlite3_bind_text(st, 5, item->approval_id, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 5);
    sqlite3_bind_int(st, 6, item->kind == STORE_ITEM_CLAIM ? EXEC_STATE_RUNNING : EXEC_STATE_DONE);
    sqlite3_bind_int(st, 7, item->status);
    bind_text_or_null(st, 8, item->receipt.result_sha256);
    bind_text_or_null(st, 9, item->receipt.error);
    sqlite3_bind_int64(st, 10, now);
    sqlite3_bind_text(st, 11, claimed_by, -1, SQLITE_STATIC);
    if (item->kind == STORE_ITEM_EXECUTION) {
        bind_head(st, 12, item);
        sqlite3_bind_int64(st, 13, (sqlite3_int64)item->tree_size);
        sqlite3_bind_int64(st, 14, log_id);
        sqlite3_bind_int64(st, 15, (sqlite3_int64)item->seq);
    } else {
        sqlite3_bind_zeroblob(st, 12, 0);
        sqlite3_bind_int64(st, 13, 0);
        sqlite3_bind_null(st, 14);
        sqlite3_bind_null(st, 15);
    }
    if (step_done(st) != 0)
        return -1;
    item->result = STORE_COMMITTED;
    return 0;
}

static int writer_approval_used(void *p, const store_item *item)
{
    sqlite_conn *w = p;
    sqlite3_stmt *st = w->st[W_APPROVAL_USED];
    int used;

    sqlite3_bind_blob(st, 1, item->approval_msg_sha256, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, item->approval_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, item->approval_expires_us);
    if (step_row(st) != STORE_OK)
        return -1; /* one row always comes back: anything else failed */
    used = sqlite3_column_int(st, 0) != 0;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return used;
}

static int writer_find_execution(void *p, const char *nonce, size_t nonce_len, store_execution *out)
{
    sqlite3_stmt *st = ((sqlite_conn *)p)->st[W_FIND_EXECUTION];

    bind_nonce(st, 1, nonce, nonce_len);
    return read_execution(st, out);
}

/* Stores the answer's head only (schema 4); the rest of the prefix is
 * item->prefix's receipt and proof, rebuilt from the log on a replay.  An
 * EXECUTION item's row was written whole by writer_claim. */
static int writer_complete(void *p, const store_item *item, int64_t log_id)
{
    sqlite_conn *w = p;
    sqlite3_stmt *st = w->st[W_COMPLETE];

    if (item->kind == STORE_ITEM_EXECUTION)
        return 0;

    bind_nonce(st, 1, item->nonce, item->nonce_len);
    bind_head(st, 2, item);
    sqlite3_bind_int64(st, 8, log_id);
    sqlite3_bind_int64(st, 9, (sqlite3_int64)item->seq);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)item->tree_size);
    sqlite3_bind_blob(st, 4, item->tree_root, 32, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, item->status);
    bind_text_or_null(st, 6, item->receipt.result_sha256);
    bind_text_or_null(st, 7, item->receipt.error);
    sqlite3_bind_int(st, 10, (int)item->finishes_state);
    if (step_done(st) != 0)
        return -1;
    return sqlite3_changes(((sqlite_conn *)p)->db) == 1 ? 0 : -1;
}

static int writer_mark_unknown(void *p, const char *claimed_by, int64_t *count)
{
    sqlite_conn *w = p;
    sqlite3_stmt *st = w->st[W_MARK_UNKNOWN];

    sqlite3_bind_text(st, 1, claimed_by, -1, SQLITE_STATIC);
    if (step_done(st) != 0)
        return -1;
    *count = sqlite3_changes(w->db);
    return 0;
}

/* Frees a list of strings ending in NULL. */
static void free_strings(char **list)
{
    size_t i;

    for (i = 0; list != NULL && list[i] != NULL; i++)
        free(list[i]);
    free(list);
}

/* The origins of other logs whose instance is gone, as a NULL-terminated
 * list (collected first: the logs are updated after the scan). */
static int gone_origins(sqlite_conn *w, const store_lease *self, char ***out)
{
    sqlite3_stmt *st = w->st[W_OTHER_LEASES];
    char **list = calloc(1, sizeof(*list)), **grown;
    size_t n = 0;
    int rc = SQLITE_DONE;

    sqlite3_bind_text(st, 1, self->origin, -1, SQLITE_STATIC);
    while (list != NULL && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *origin = (const char *)sqlite3_column_text(st, 0);
        const char *holder = (const char *)sqlite3_column_text(st, 1);

        if (origin == NULL || !store_lease_gone(self, holder, sqlite3_column_int64(st, 2)))
            continue;
        if ((grown = realloc(list, (n + 2) * sizeof(*list))) == NULL ||
            (grown[n] = strdup(origin)) == NULL) {
            free_strings(grown ? grown : list);
            list = NULL;
            break;
        }
        list = grown;
        list[++n] = NULL;
    }
    if (list != NULL && rc != SQLITE_DONE) {
        free_strings(list); /* a failed read: release_orphans says so */
        list = NULL;
    }
    done_row(st);
    *out = list;
    return list != NULL ? 0 : -1;
}

static int writer_release_orphans(void *p, const store_lease *self, int64_t *count)
{
    sqlite_conn *w = p;
    char **gone;
    int64_t cut;
    size_t i;
    int rc = 0;

    *count = 0;
    if (gone_origins(w, self, &gone) != 0)
        return -1;
    for (i = 0; gone[i] != NULL; i++) {
        sqlite3_stmt *st = w->st[W_RETIRE_LEASE];

        if (writer_mark_unknown(w, gone[i], &cut) != 0) {
            rc = -1;
            break;
        }
        *count += cut;
        sqlite3_bind_text(st, 1, gone[i], -1, SQLITE_STATIC);
        if (step_done(st) != 0) {
            rc = -1;
            break;
        }
    }
    free_strings(gone);
    return rc;
}

static int writer_append_receipt(void *p, int64_t log_id, uint64_t seq, const char *exec_id,
                                 const char *body, size_t len)
{
    sqlite3_stmt *st = ((sqlite_conn *)p)->st[W_INSERT_RECEIPT];
    sqlite3_int64 key, size_key;

    /* The entry's seq and the tree size after it must both have a key. */
    if (log_key(log_id, seq, &key) != 0 || log_key(log_id, seq + 1, &size_key) != 0) {
        oe_log("error", "store: log %lld is full: SQLite holds %llu entries per log at most",
               (long long)log_id, (unsigned long long)(POSITION_LIMIT - 1));
        return -1;
    }
    sqlite3_bind_int64(st, 1, key);
    sqlite3_bind_text(st, 2, exec_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, body, (int)len, SQLITE_STATIC);
    return step_done(st);
}

static int writer_put_node(void *p, int64_t log_id, unsigned level, uint64_t index,
                           const uint8_t hash[32])
{
    sqlite3_stmt *st = ((sqlite_conn *)p)->st[W_INSERT_NODE];
    sqlite3_int64 key;

    /* Unreachable: a node's leaf was appended, and so has a key. */
    if (node_key(log_id, level, index, &key) != 0)
        return -1;
    sqlite3_bind_int64(st, 1, key);
    sqlite3_bind_blob(st, 2, hash, 32, SQLITE_STATIC);
    return step_done(st);
}

static int read_node(sqlite3_stmt *st, int64_t log_id, unsigned level, uint64_t index,
                     uint8_t out[32])
{
    sqlite3_int64 key;
    int rc;

    if (node_key(log_id, level, index, &key) != 0)
        return STORE_NOT_FOUND;
    sqlite3_bind_int64(st, 1, key);
    if ((rc = step_row(st)) != STORE_OK)
        return rc;
    if (sqlite3_column_bytes(st, 0) != 32)
        rc = STORE_ERROR;
    else
        memcpy(out, sqlite3_column_blob(st, 0), 32);
    done_row(st);
    return rc;
}

static int writer_get_node(void *p, int64_t log_id, unsigned level, uint64_t index, uint8_t out[32])
{
    return read_node(((sqlite_conn *)p)->st[W_GET_NODE], log_id, level, index, out) == STORE_OK
               ? 0
               : -1;
}

static int writer_take_lease(void *p, const store_lease *lease, int64_t *log_id, uint64_t *size,
                             char *why, size_t why_len)
{
    sqlite_conn *w = p;
    sqlite3_stmt *st = w->st[W_FIND_LOG];
    int rc;

    sqlite3_bind_text(st, 1, lease->origin, -1, SQLITE_STATIC);
    rc = step_row(st);
    if (rc == STORE_ERROR)
        return -1;
    if (rc == STORE_OK) {
        const unsigned char *holder = sqlite3_column_text(st, 2);
        int64_t expires = sqlite3_column_int64(st, 3);
        int same_key = sqlite3_column_bytes(st, 1) == 32 &&
                       memcmp(sqlite3_column_blob(st, 1), lease->public_key, 32) == 0;
        int held = holder != NULL && strcmp((const char *)holder, lease->holder) != 0 &&
                   expires > lease->now_us && !lease->holder_is_stale((const char *)holder);
        *log_id = sqlite3_column_int64(st, 0);
        done_row(st);
        if (!same_key) {
            snprintf(why, why_len, "log %s is signed by another key", lease->origin);
            return -1;
        }
        if (held) {
            snprintf(why, why_len, "another live instance holds log %s", lease->origin);
            return -1;
        }
        st = w->st[W_UPDATE_LEASE];
        sqlite3_bind_int64(st, 1, *log_id);
        sqlite3_bind_text(st, 2, lease->holder, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, lease->expires_us);
        if (step_done(st) != 0)
            return -1;
    } else {
        st = w->st[W_INSERT_LOG];
        sqlite3_bind_text(st, 1, lease->origin, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, lease->public_key, 32, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, lease->holder, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, lease->expires_us);
        if (step_done(st) != 0)
            return -1;
        *log_id = sqlite3_last_insert_rowid(w->db);
        if (*log_id >= LOG_ID_LIMIT) {
            snprintf(why, why_len,
                     "the database holds %lld logs, the most SQLite's schema can key; "
                     "see docs/storage.md",
                     (long long)(LOG_ID_LIMIT - 1));
            return -1;
        }
    }
    {
        sqlite3_int64 first, last;
        if (log_key(*log_id, 0, &first) != 0 || log_key(*log_id, POSITION_LIMIT - 1, &last) != 0)
            return -1;
        st = w->st[W_LOG_SIZE];
        sqlite3_bind_int64(st, 1, first);
        sqlite3_bind_int64(st, 2, last);
    }
    if (step_row(st) != STORE_OK)
        return -1;
    *size = (uint64_t)sqlite3_column_int64(st, 0);
    done_row(st);
    return 0;
}

static int writer_release_lease(void *p, int64_t log_id, const char *holder)
{
    sqlite3_stmt *st = ((sqlite_conn *)p)->st[W_RELEASE_LEASE];

    sqlite3_bind_int64(st, 1, log_id);
    sqlite3_bind_text(st, 2, holder, -1, SQLITE_STATIC);
    return step_done(st);
}

static int writer_save_checkpoint(void *p, int64_t log_id, uint64_t size, const char *note,
                                  size_t len)
{
    sqlite_conn *w = p;
    sqlite3_stmt *st = w->st[W_SAVE_CHECKPOINT];
    sqlite3_int64 key;

    if (log_key(log_id, size, &key) != 0)
        return -1;
    /* The latest head on the log's row, and every head in checkpoints, so
     * other instances can answer replays of this log byte for byte. */
    sqlite3_bind_int64(st, 1, log_id);
    sqlite3_bind_text(st, 2, note, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)size);
    if (step_done(st) != 0)
        return -1;
    st = w->st[W_KEEP_CHECKPOINT];
    sqlite3_bind_int64(st, 1, key);
    sqlite3_bind_text(st, 2, note, (int)len, SQLITE_STATIC);
    return step_done(st);
}

static int writer_probe(void *p)
{
    sqlite3_stmt *st = ((sqlite_conn *)p)->st[W_PROBE];
    char stamp[32];

    snprintf(stamp, sizeof(stamp), "%lld", (long long)oe_now_us());
    sqlite3_bind_text(st, 1, stamp, -1, SQLITE_TRANSIENT);
    return step_done(st);
}

/* ---- readers ------------------------------------------------------------- */

static void *open_reader(const oe_config *cfg, char *why, size_t why_len)
{
    sqlite_conn *r = calloc(1, sizeof(*r));
    char err[256] = "";

    if (r == NULL)
        return NULL;
    if (sqlite3_open_v2(cfg->sqlite_path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(r->db, BUSY_TIMEOUT_MS) != SQLITE_OK ||
        sqlite3_exec(r->db, "PRAGMA query_only=1", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, sizeof(err), "%s", r->db ? sqlite3_errmsg(r->db) : "out of memory");
        goto fail;
    }
    if (prepare_all(r, READER_SQL, R_COUNT, err, sizeof(err)) != 0)
        goto fail;
    return r;
fail:
    snprintf(why, why_len, "%s: reader: %s", cfg->sqlite_path, err);
    close_conn(r);
    return NULL;
}

static int reader_find_execution(void *p, const char *nonce, size_t nonce_len, store_execution *out)
{
    sqlite3_stmt *st = ((sqlite_conn *)p)->st[R_FIND_EXECUTION];

    bind_nonce(st, 1, nonce, nonce_len);
    return read_execution(st, out);
}

static int reader_get_node(void *p, int64_t log_id, unsigned level, uint64_t index, uint8_t out[32])
{
    return read_node(((sqlite_conn *)p)->st[R_GET_NODE], log_id, level, index, out);
}

static int reader_find_log(void *p, const char *origin, store_log_info *out)
{
    sqlite3_stmt *st = ((sqlite_conn *)p)->st[R_FIND_LOG];
    const unsigned char *note;
    int rc;

    sqlite3_bind_text(st, 1, origin, -1, SQLITE_STATIC);
    if ((rc = step_row(st)) != STORE_OK)
        return rc;
    out->log_id = sqlite3_column_int64(st, 0);
    snprintf(out->origin, sizeof(out->origin), "%s", origin);
    if (sqlite3_column_bytes(st, 1) == 32)
        memcpy(out->public_key, sqlite3_column_blob(st, 1), 32);
    note = sqlite3_column_text(st, 4);
    out->checkpoint = note ? strdup((const char *)note) : NULL;
    out->checkpoint_len = note ? (size_t)sqlite3_column_bytes(st, 4) : 0;
    out->size = (uint64_t)sqlite3_column_int64(st, 5);
    done_row(st);
    return note != NULL && out->checkpoint == NULL ? STORE_ERROR : STORE_OK;
}

static int reader_find_receipt(void *p, const char *exec_id, int64_t *log_id, uint64_t *seq,
                               oe_buf *receipt)
{
    sqlite3_stmt *st = ((sqlite_conn *)p)->st[R_FIND_RECEIPT];
    int rc;

    sqlite3_bind_text(st, 1, exec_id, -1, SQLITE_STATIC);
    if ((rc = step_row(st)) != STORE_OK)
        return rc;
    *log_id = (int64_t)((uint64_t)sqlite3_column_int64(st, 0) >> POSITION_BITS);
    *seq = (uint64_t)sqlite3_column_int64(st, 0) & (POSITION_LIMIT - 1);
    oe_buf_append(receipt, sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1));
    done_row(st);
    return receipt->failed ? STORE_ERROR : STORE_OK;
}

static int reader_export(void *p, int64_t log_id, uint64_t from, uint64_t limit, oe_buf *out)
{
    sqlite3_stmt *st = ((sqlite_conn *)p)->st[R_EXPORT];
    sqlite3_int64 first, last;
    int rc;

    if (log_key(log_id, POSITION_LIMIT - 1, &last) != 0)
        return STORE_ERROR;
    if (log_key(log_id, from, &first) != 0)
        return STORE_OK; /* past the end of any log */
    sqlite3_bind_int64(st, 1, first);
    sqlite3_bind_int64(st, 2, last);
    sqlite3_bind_int64(st, 3, limit > INT64_MAX ? INT64_MAX : (sqlite3_int64)limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        oe_buf_append(out, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
        oe_buf_putc(out, '\n');
    }
    done_row(st);
    return rc == SQLITE_DONE && !out->failed ? STORE_OK : STORE_ERROR;
}

static int reader_list_pending(void *p, void (*fn)(const store_pending *pe, void *ctx), void *ctx)
{
    sqlite3_stmt *st = ((sqlite_conn *)p)->st[R_PENDING];
    int rc, n = 0;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_pending pe;
        pe.nonce = sqlite3_column_blob(st, 0);
        pe.nonce_len = (size_t)sqlite3_column_bytes(st, 0);
        pe.exec_id = (const char *)sqlite3_column_text(st, 1);
        pe.action = (const char *)sqlite3_column_text(st, 2);
        pe.claimed_by = (const char *)sqlite3_column_text(st, 3);
        pe.created_us = sqlite3_column_int64(st, 4);
        pe.state = (exec_state)sqlite3_column_int(st, 5);
        fn(&pe, ctx);
        n++;
    }
    done_row(st);
    return rc == SQLITE_DONE ? n : -1;
}

static int reader_find_checkpoint(void *p, const char *origin, uint64_t size, oe_buf *note)
{
    sqlite3_stmt *st = ((sqlite_conn *)p)->st[R_FIND_CHECKPOINT];
    int rc;

    if (size >= POSITION_LIMIT)
        return STORE_NOT_FOUND; /* no log is that long */
    sqlite3_bind_text(st, 1, origin, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
    if ((rc = step_row(st)) != STORE_OK)
        return rc;
    oe_buf_append(note, sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    done_row(st);
    return note->failed ? STORE_ERROR : STORE_OK;
}

const store_backend_ops store_sqlite_ops = {
    .open_writer = open_writer,
    .close_writer = close_conn,
    .take_lease = writer_take_lease,
    .release_lease = writer_release_lease,
    .begin = writer_begin,
    .commit = writer_commit,
    .rollback = writer_rollback,
    .claim = writer_claim,
    .approval_used = writer_approval_used,
    .find_execution_w = writer_find_execution,
    .complete = writer_complete,
    .mark_unknown = writer_mark_unknown,
    .release_orphans = writer_release_orphans,
    .append_receipt = writer_append_receipt,
    .put_node = writer_put_node,
    .get_node_w = writer_get_node,
    .save_checkpoint = writer_save_checkpoint,
    .probe = writer_probe,
    .open_reader = open_reader,
    .close_reader = close_conn,
    .find_execution = reader_find_execution,
    .find_log = reader_find_log,
    .get_node = reader_get_node,
    .find_receipt = reader_find_receipt,
    .find_checkpoint = reader_find_checkpoint,
    .export_receipts = reader_export,
    .list_pending = reader_list_pending,
};

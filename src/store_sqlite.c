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
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store_backend.h"
#include "util.h"

#define BUSY_TIMEOUT_MS 5000

static const char *const MIGRATIONS[] = {
    /* 0 -> 1: nonces, executions and single-use approvals. */
    "CREATE TABLE executions ("
    "  nonce BLOB PRIMARY KEY,"
    "  exec_id TEXT NOT NULL UNIQUE,"
    "  action TEXT NOT NULL,"
    "  action_hash TEXT NOT NULL,"
    "  approval_id TEXT,"
    "  state INTEGER NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  response BLOB NOT NULL,"
    "  created_us INTEGER NOT NULL"
    ");"
    "CREATE TABLE approvals_used ("
    "  message_sha256 BLOB PRIMARY KEY,"
    "  approval_id TEXT NOT NULL UNIQUE,"
    "  nonce BLOB NOT NULL,"
    "  used_us INTEGER NOT NULL"
    ");"
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT INTO meta(key, value) VALUES ('application', 'openexec');",
};
#define SCHEMA_VERSION ((int)(sizeof(MIGRATIONS) / sizeof(MIGRATIONS[0])))

typedef struct sqlite_writer {
    sqlite3 *db;
    sqlite3_stmt *begin, *commit, *rollback;
    sqlite3_stmt *savepoint, *release, *rollback_to;
    sqlite3_stmt *insert_execution, *insert_approval, *find, *probe;
} sqlite_writer;

typedef struct sqlite_reader {
    sqlite3 *db;
    sqlite3_stmt *find;
} sqlite_reader;

static const char FIND_SQL[] = "SELECT exec_id, action_hash, approval_id, state, status, response"
                               " FROM executions WHERE nonce = ?1";

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
    if (exec_sql(db, "BEGIN IMMEDIATE", why, why_len) != 0)
        return -1;
    for (v = from; v < SCHEMA_VERSION; v++)
        if (exec_sql(db, MIGRATIONS[v], why, why_len) != 0)
            goto fail;
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
    if (exec_sql(db, sql, why, why_len) != 0 || exec_sql(db, "COMMIT", why, why_len) != 0)
        goto fail;
    return 0;
fail:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

static int prepare(sqlite3 *db, sqlite3_stmt **st, const char *sql, char *why, size_t why_len)
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
        snprintf(why, why_len, "prepare: %s", sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

static void close_writer(void *p)
{
    sqlite_writer *w = p;

    if (w == NULL)
        return;
    sqlite3_finalize(w->begin);
    sqlite3_finalize(w->commit);
    sqlite3_finalize(w->rollback);
    sqlite3_finalize(w->savepoint);
    sqlite3_finalize(w->release);
    sqlite3_finalize(w->rollback_to);
    sqlite3_finalize(w->insert_execution);
    sqlite3_finalize(w->insert_approval);
    sqlite3_finalize(w->find);
    sqlite3_finalize(w->probe);
    sqlite3_close(w->db);
    free(w);
}

static void *open_writer(const oe_config *cfg, char *why, size_t why_len)
{
    sqlite_writer *w = calloc(1, sizeof(*w));
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
        migrate(w->db, version, err, sizeof(err)) != 0)
        goto fail;
    if (prepare(w->db, &w->begin, "BEGIN IMMEDIATE", err, sizeof(err)) ||
        prepare(w->db, &w->commit, "COMMIT", err, sizeof(err)) ||
        prepare(w->db, &w->rollback, "ROLLBACK", err, sizeof(err)) ||
        prepare(w->db, &w->savepoint, "SAVEPOINT item", err, sizeof(err)) ||
        prepare(w->db, &w->release, "RELEASE item", err, sizeof(err)) ||
        prepare(w->db, &w->rollback_to, "ROLLBACK TO item", err, sizeof(err)) ||
        prepare(w->db, &w->insert_execution,
                "INSERT OR IGNORE INTO executions(nonce, exec_id, action, action_hash,"
                " approval_id, state, status, response, created_us)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                err, sizeof(err)) ||
        prepare(w->db, &w->insert_approval,
                "INSERT OR IGNORE INTO approvals_used(message_sha256, approval_id, nonce, used_us)"
                " VALUES (?1, ?2, ?3, ?4)",
                err, sizeof(err)) ||
        prepare(w->db, &w->find, FIND_SQL, err, sizeof(err)) ||
        prepare(w->db, &w->probe,
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('probe', ?1)", err, sizeof(err)))
        goto fail;
    return w;

fail:
    snprintf(why, why_len, "%s: %s", cfg->sqlite_path, err);
    close_writer(w);
    return NULL;
}

/* Runs a statement that returns no rows. */
static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int writer_begin(void *p)
{
    return step_done(((sqlite_writer *)p)->begin);
}

static int writer_commit(void *p)
{
    return step_done(((sqlite_writer *)p)->commit);
}

static void writer_rollback(void *p)
{
    sqlite_writer *w = p;

    /* A failed COMMIT may already have rolled back; then this is a no-op. */
    if (!sqlite3_get_autocommit(w->db))
        step_done(w->rollback);
}

/* Reads one execution row from a prepared FIND_SQL statement already bound. */
static int read_execution(sqlite3_stmt *st, store_execution *out)
{
    int rc = sqlite3_step(st);
    const void *blob;
    const unsigned char *text;

    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return STORE_NOT_FOUND;
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return STORE_ERROR;
    }
    snprintf(out->exec_id, sizeof(out->exec_id), "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(out->action_hash, sizeof(out->action_hash), "%s",
             (const char *)sqlite3_column_text(st, 1));
    text = sqlite3_column_text(st, 2);
    out->approval_id = text ? strdup((const char *)text) : NULL;
    out->state = (exec_state)sqlite3_column_int(st, 3);
    out->status = sqlite3_column_int(st, 4);
    blob = sqlite3_column_blob(st, 5);
    out->response_len = (size_t)sqlite3_column_bytes(st, 5);
    out->response = malloc(out->response_len + 1);
    if (out->response == NULL || (text != NULL && out->approval_id == NULL)) {
        sqlite3_reset(st);
        store_execution_free(out);
        return STORE_ERROR;
    }
    if (out->response_len)
        memcpy(out->response, blob, out->response_len);
    out->response[out->response_len] = '\0';
    sqlite3_reset(st);
    return STORE_OK;
}

static int bind_nonce(sqlite3_stmt *st, int idx, const char *nonce, size_t len)
{
    return sqlite3_bind_blob(st, idx, nonce, (int)len, SQLITE_STATIC);
}

static int writer_apply(void *p, store_item *item)
{
    sqlite_writer *w = p;
    sqlite3_stmt *st = w->insert_execution;
    int64_t now = oe_now_us();

    if (step_done(w->savepoint) != 0)
        return -1;
    bind_nonce(st, 1, item->nonce, item->nonce_len);
    sqlite3_bind_text(st, 2, item->exec_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, item->action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, item->action_hash, -1, SQLITE_STATIC);
    if (item->approval_id)
        sqlite3_bind_text(st, 5, item->approval_id, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 5);
    sqlite3_bind_int(st, 6, EXEC_STATE_DONE);
    sqlite3_bind_int(st, 7, item->status);
    sqlite3_bind_blob(st, 8, item->response, (int)item->response_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, now);
    if (step_done(st) != 0)
        goto fail;
    sqlite3_clear_bindings(st);

    if (sqlite3_changes(w->db) == 0) {
        /* The nonce was taken, by an earlier batch or earlier in this one. */
        bind_nonce(w->find, 1, item->nonce, item->nonce_len);
        if (read_execution(w->find, &item->existing) != STORE_OK)
            goto fail;
        item->result = STORE_NONCE_TAKEN;
        return step_done(w->release);
    }

    if (item->approval_msg_sha256 != NULL) {
        st = w->insert_approval;
        sqlite3_bind_blob(st, 1, item->approval_msg_sha256, 32, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, item->approval_id, -1, SQLITE_STATIC);
        bind_nonce(st, 3, item->nonce, item->nonce_len);
        sqlite3_bind_int64(st, 4, now);
        if (step_done(st) != 0)
            goto fail;
        sqlite3_clear_bindings(st);
        if (sqlite3_changes(w->db) == 0) {
            /* Used before: undo this item's execution row, keep the batch. */
            if (step_done(w->rollback_to) != 0)
                return -1;
            item->result = STORE_APPROVAL_USED;
            return step_done(w->release);
        }
    }
    item->result = STORE_COMMITTED;
    return step_done(w->release);

fail:
    sqlite3_clear_bindings(st);
    return -1;
}

static int writer_probe(void *p)
{
    sqlite_writer *w = p;
    char stamp[32];

    snprintf(stamp, sizeof(stamp), "%lld", (long long)oe_now_us());
    sqlite3_bind_text(w->probe, 1, stamp, -1, SQLITE_TRANSIENT);
    return step_done(w->probe);
}

static void close_reader(void *p)
{
    sqlite_reader *r = p;

    if (r == NULL)
        return;
    sqlite3_finalize(r->find);
    sqlite3_close(r->db);
    free(r);
}

static void *open_reader(const oe_config *cfg, char *why, size_t why_len)
{
    sqlite_reader *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    if (sqlite3_open_v2(cfg->sqlite_path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(r->db, BUSY_TIMEOUT_MS) != SQLITE_OK ||
        sqlite3_exec(r->db, "PRAGMA query_only=1", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(r->db, FIND_SQL, -1, SQLITE_PREPARE_PERSISTENT, &r->find, NULL) !=
            SQLITE_OK) {
        snprintf(why, why_len, "%s: reader: %s", cfg->sqlite_path,
                 r->db ? sqlite3_errmsg(r->db) : "out of memory");
        close_reader(r);
        return NULL;
    }
    return r;
}

static int reader_find(void *p, const char *nonce, size_t nonce_len, store_execution *out)
{
    sqlite_reader *r = p;
    int rc;

    bind_nonce(r->find, 1, nonce, nonce_len);
    rc = read_execution(r->find, out);
    sqlite3_clear_bindings(r->find);
    return rc;
}

const store_backend_ops store_sqlite_ops = {
    .open_writer = open_writer,
    .close_writer = close_writer,
    .begin = writer_begin,
    .apply = writer_apply,
    .commit = writer_commit,
    .rollback = writer_rollback,
    .probe = writer_probe,
    .open_reader = open_reader,
    .close_reader = close_reader,
    .find_execution = reader_find,
};

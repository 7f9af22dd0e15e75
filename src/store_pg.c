/*
 * store_pg.c - the PostgreSQL backend of store.h (OPENEXEC_DB_URL=postgresql://
 * or postgres://): several OpenExec instances share one database, with the
 * same exactly-once behaviour as the SQLite store.
 *
 * Connections (the pool).  One connection for the writer (store.c's writer
 * thread) and one per event loop (store_reader_open is called once per loop
 * thread): an instance holds OPENEXEC_THREADS + 1 connections, never more,
 * and each is only ever used by the thread that owns it.  Connections are
 * opened non-blocking with a deadline (CONNECT_MS) and every statement is
 * sent asynchronously and awaited with a deadline, so a database that hangs
 * (a dead host, a black-holed network) costs a thread at most that long.
 * Each connection prepares its statements once (PQprepare) when it
 * connects; parameters and results travel in binary (nonces, answers,
 * receipts and hashes are bytea: any byte, no escaping).
 *
 * Reconnecting.  A connection that breaks (the server went away, a statement
 * timed out) is closed at once and the call fails (STORE_ERROR or -1: the
 * request is answered 503 store_unavailable, /health says degraded).  The
 * next call on it connects again, but never sooner than its backoff allows:
 * 100 ms after the first failed attempt, doubling to at most 2 s (1 s for
 * readers, so that once the writer's probe finds the database back, and
 * /ready says so, the event loops are not still waiting out a long
 * backoff), back to 100 ms after a success: a dead database is not hammered.  A connection
 * found stale when used (the server restarted while we were idle) is
 * reconnected and the statement retried once where that is safe: reads
 * outside a transaction, BEGIN, the probe; never anything inside a
 * transaction, which died with the connection.  The writer's probe (store.c
 * runs it every second while the store is unwritable) reconnects and
 * commits a tiny row: that is how an instance comes back by itself.
 *
 * Durability.  The writer runs READ COMMITTED transactions with
 * synchronous_commit on (if the database default is `off` the writer's
 * session turns it on; stronger settings such as remote_apply are kept): a
 * COMMIT that returned is on disk, and on the synchronous standbys if any.
 * A COMMIT whose outcome is unknown (the connection broke during it) fails
 * the batch; a retry with the same nonce finds the row if it was committed.
 *
 * Exactly once across instances.  executions.nonce is the primary key and
 * approvals_used has two unique keys (message_sha256, approval_id); claims
 * are INSERT ... ON CONFLICT DO NOTHING and the affected row count says who
 * won, as in the SQLite store.  When another instance has inserted the same
 * key and not committed yet, PostgreSQL makes our insert wait for it: if it
 * commits, ours does nothing and the following SELECT (READ COMMITTED: a new
 * snapshot per statement) sees the winner's row; if it rolls back, ours goes
 * in.  A claim that uses an approval runs in a SAVEPOINT, so a used-up
 * approval undoes only that item's execution row; one without an approval
 * needs none (ON CONFLICT never raises, and a real error fails the batch).
 * Two instances whose batches claim the same two nonces in opposite orders
 * can deadlock; PostgreSQL then aborts one transaction (after
 * deadlock_timeout, 1 s by default).  Nothing of it was written, and
 * retryable() (SQLSTATE 40P01 or 40001) tells store.c to run that batch
 * again; only if that keeps failing does it fail closed (503).
 *
 * Logs.  Each instance appends only to its own log (logs, receipts,
 * tlog_nodes rows of its log_id), so instances never contend there.  The
 * lease on an origin is a row with an expiry (SPEC 5.2: not an advisory
 * lock): take_lease creates the row with INSERT ... ON CONFLICT DO NOTHING,
 * or locks the existing one with SELECT ... FOR UPDATE before deciding, so
 * two instances starting with the same origin cannot both win it.
 *
 * Schema.  The version is meta's `schema_version` row.  Migrations run at
 * start in one transaction holding pg_advisory_xact_lock(MIGRATION_LOCK), so
 * instances starting at the same moment do not race to create the tables:
 * the second waits, then finds the schema current.  That lock exists only
 * for the length of a migration; nothing else uses advisory locks.  A
 * database whose tables of those names are not OpenExec's, or whose schema
 * is newer than this build's, is refused and not written to.
 *
 * Start.  If the database cannot be reached, open_writer retries with the
 * same backoff for START_WINDOW_MS (a service and its database are often
 * started together), then fails with the reason and the process exits 1.
 * Refusals that waiting cannot cure (bad password, pg_hba) fail at once.
 *
 * Secrets.  The URL may hold a password.  It is never printed: messages name
 * the target as user@host:port/db, and every libpq message that reaches a
 * log or an error is scrubbed first (the password, and PGPASSWORD's,
 * replaced by ***, anything after "password=" dropped, URL userinfo
 * masked); libpq's own notice printing to stderr is replaced by the
 * scrubbed log.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libpq-fe.h>

#include "log.h"
#include "store_backend.h"
#include "util.h"

#define CONNECT_MS 2000       /* one connection attempt, all of it */
#define WRITER_QUERY_MS 10000 /* client-side deadline of one writer statement */
#define READER_QUERY_MS 5000  /* ... and of one read */
#define BACKOFF_MIN_MS 100
#define WRITER_BACKOFF_MAX_MS 2000
#define READER_BACKOFF_MAX_MS 1000 /* no later than the writer's next probe */
#define START_WINDOW_MS 10000      /* how long the first connection may take */
#define RESOLVE_MS 3000            /* how long to find out whether a lost COMMIT committed */
#define ERR_MAX 256
#define MAX_PARAMS 11
#define PIPELINE_MAX 512                     /* deferred statements before an intermediate sync */
#define MIGRATION_LOCK "5724879017170134371" /* 0x4f70656e45786563, "OpenExec" */

/* Parameter types (pg_type OIDs, fixed). */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT4 23
#define OID_TEXT 25

/* Server-side limits of each session, below the client deadlines, so a slow
 * statement is normally cancelled by the server and the connection lives.
 * idle_in_transaction_session_timeout frees the rows a stuck writer holds,
 * so one hung instance cannot stall the others' claims for long. */
static const char WRITER_SESSION[] = "SET statement_timeout = '8s';"
                                     "SET lock_timeout = '5s';"
                                     "SET idle_in_transaction_session_timeout = '15s'";
static const char READER_SESSION[] = "SET statement_timeout = '4s';"
                                     "SET default_transaction_read_only = on";

static const char *const MIGRATIONS[] = {
    /* 0 -> 1: nonces, executions, single-use approvals, the receipt logs. */
    "CREATE TABLE executions ("
    "  nonce bytea PRIMARY KEY,"
    "  exec_id text NOT NULL UNIQUE,"
    "  action text NOT NULL,"
    "  action_hash text NOT NULL,"
    "  approval_id text,"
    "  state integer NOT NULL,"
    "  status integer NOT NULL,"
    "  response bytea NOT NULL,"
    "  tree_size bigint NOT NULL,"
    "  tree_root bytea,"
    "  result_sha256 text,"
    "  error text,"
    "  claimed_by text NOT NULL,"
    "  created_us bigint NOT NULL"
    ");"
    "CREATE INDEX executions_by_state ON executions(state) WHERE state <> 1;"
    "CREATE TABLE approvals_used ("
    "  message_sha256 bytea PRIMARY KEY,"
    "  approval_id text NOT NULL UNIQUE,"
    "  nonce bytea NOT NULL,"
    "  used_us bigint NOT NULL"
    ");"
    "CREATE TABLE logs ("
    "  log_id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  origin text NOT NULL UNIQUE,"
    "  public_key bytea NOT NULL,"
    "  lease_holder text,"
    "  lease_expires_us bigint NOT NULL DEFAULT 0,"
    "  checkpoint text,"
    "  checkpoint_size bigint NOT NULL DEFAULT 0"
    ");"
    "CREATE TABLE receipts ("
    "  log_id bigint NOT NULL,"
    "  seq bigint NOT NULL,"
    "  exec_id text NOT NULL,"
    "  body bytea NOT NULL,"
    "  PRIMARY KEY (log_id, seq)"
    ");"
    "CREATE INDEX receipts_by_exec_id ON receipts(exec_id);"
    "CREATE TABLE tlog_nodes ("
    "  log_id bigint NOT NULL,"
    "  level integer NOT NULL,"
    "  idx bigint NOT NULL,"
    "  hash bytea NOT NULL,"
    "  PRIMARY KEY (log_id, level, idx)"
    ");"
    "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);"
    "INSERT INTO meta(key, value) VALUES ('application', 'openexec');",
    /* 1 -> 2: every signed head, so any instance answers a replay of
     * another's entry with that log's own note (only the latest head was
     * kept before: it is carried over).  And no unique index on
     * executions.exec_id: nothing looks executions up by it, ids are random
     * uuid4s, and a random-key index costs every execution a page write
     * (about 15% of the SQLite store's throughput, docs/performance.md). */
    "ALTER TABLE executions DROP CONSTRAINT executions_exec_id_key;"
    "CREATE TABLE checkpoints ("
    "  log_id bigint NOT NULL,"
    "  size bigint NOT NULL,"
    "  note text NOT NULL,"
    "  PRIMARY KEY (log_id, size)"
    ");"
    "INSERT INTO checkpoints(log_id, size, note)"
    " SELECT log_id, checkpoint_size, checkpoint FROM logs WHERE checkpoint IS NOT NULL;",
};
#define SCHEMA_VERSION ((int)(sizeof(MIGRATIONS) / sizeof(MIGRATIONS[0])))

/* The tables of the schema, to tell an empty database from a foreign one. */
static const char SCHEMA_TABLES_SQL[] = "SELECT concat((to_regclass('meta') IS NOT NULL)::int,"
                                        " (to_regclass('executions') IS NOT NULL)::int,"
                                        " (to_regclass('approvals_used') IS NOT NULL)::int,"
                                        " (to_regclass('logs') IS NOT NULL)::int,"
                                        " (to_regclass('receipts') IS NOT NULL)::int,"
                                        " (to_regclass('tlog_nodes') IS NOT NULL)::int)";

/* ---- statements ----------------------------------------------------------- */

typedef struct pg_statement {
    const char *name;
    const char *sql;
    int nparams;
    Oid types[MAX_PARAMS];
} pg_statement;

#define SQL_FIND_EXECUTION                                                                         \
    "SELECT exec_id, action_hash, approval_id, state, status, response, tree_size, tree_root,"     \
    " result_sha256, error, action FROM executions WHERE nonce = $1"
#define SQL_GET_NODE "SELECT hash FROM tlog_nodes WHERE log_id = $1 AND level = $2 AND idx = $3"

static const pg_statement ST_FIND_EXECUTION = {
    "oe_find_execution", SQL_FIND_EXECUTION, 1, {OID_BYTEA}};
static const pg_statement ST_GET_NODE = {
    "oe_get_node", SQL_GET_NODE, 3, {OID_INT8, OID_INT4, OID_INT8}};
static const pg_statement ST_INSERT_EXECUTION = {
    "oe_insert_execution",
    "INSERT INTO executions(nonce, exec_id, action, action_hash, approval_id, state, status,"
    " response, tree_size, tree_root, result_sha256, error, created_us, claimed_by)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, '', 0, NULL, $8, $9, $10, $11)"
    " ON CONFLICT DO NOTHING",
    11,
    {OID_BYTEA, OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT, OID_INT4, OID_INT4, OID_TEXT, OID_TEXT,
     OID_INT8, OID_TEXT}};
static const pg_statement ST_INSERT_APPROVAL = {
    "oe_insert_approval",
    "INSERT INTO approvals_used(message_sha256, approval_id, nonce, used_us)"
    " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    4,
    {OID_BYTEA, OID_TEXT, OID_BYTEA, OID_INT8}};
/* The same two keys as oe_insert_approval's, read without writing. */
static const pg_statement ST_APPROVAL_USED = {
    "oe_approval_used",
    "SELECT count(*) FROM approvals_used WHERE message_sha256 = $1 OR approval_id = $2",
    2,
    {OID_BYTEA, OID_TEXT}};
static const pg_statement ST_COMPLETE = {
    "oe_complete",
    "UPDATE executions SET state = 1, response = $2, tree_size = $3, tree_root = $4,"
    " status = $5, result_sha256 = $6, error = $7 WHERE nonce = $1 AND state = $8",
    8,
    {OID_BYTEA, OID_BYTEA, OID_INT8, OID_BYTEA, OID_INT4, OID_TEXT, OID_TEXT, OID_INT4}};
static const pg_statement ST_MARK_UNKNOWN = {
    "oe_mark_unknown",
    "UPDATE executions SET state = 2 WHERE state = 0 AND claimed_by = $1",
    1,
    {OID_TEXT}};
/* Other logs' leases, for release_orphans: read without locks (a live
 * instance's row is never locked by another's sweep), then each one that
 * looks gone is locked and judged again.  SKIP LOCKED passes over a log
 * whose instance is renewing its lease right now (it is alive); the lock
 * keeps an instance that comes back from claiming anew while its old
 * claims are being marked. */
static const pg_statement ST_OTHER_LEASES = {
    "oe_other_leases",
    "SELECT origin, lease_holder, lease_expires_us FROM logs"
    " WHERE origin <> $1 AND lease_expires_us >= 0",
    1,
    {OID_TEXT}};
static const pg_statement ST_LOCK_OTHER_LEASE = {
    "oe_lock_other_lease",
    "SELECT origin, lease_holder, lease_expires_us FROM logs"
    " WHERE origin = $1 AND lease_expires_us >= 0 FOR UPDATE SKIP LOCKED",
    1,
    {OID_TEXT}};
static const pg_statement ST_RETIRE_LEASE = {
    "oe_retire_lease",
    "UPDATE logs SET lease_holder = NULL, lease_expires_us = -1 WHERE origin = $1",
    1,
    {OID_TEXT}};
static const pg_statement ST_INSERT_RECEIPT = {
    "oe_insert_receipt",
    "INSERT INTO receipts(log_id, seq, exec_id, body) VALUES ($1, $2, $3, $4)",
    4,
    {OID_INT8, OID_INT8, OID_TEXT, OID_BYTEA}};
static const pg_statement ST_INSERT_NODE = {
    "oe_insert_node",
    "INSERT INTO tlog_nodes(log_id, level, idx, hash) VALUES ($1, $2, $3, $4)",
    4,
    {OID_INT8, OID_INT4, OID_INT8, OID_BYTEA}};
static const pg_statement ST_CREATE_LOG = {
    "oe_create_log",
    "INSERT INTO logs(origin, public_key, lease_holder, lease_expires_us)"
    " VALUES ($1, $2, $3, $4) ON CONFLICT (origin) DO NOTHING RETURNING log_id",
    4,
    {OID_TEXT, OID_BYTEA, OID_TEXT, OID_INT8}};
static const pg_statement ST_LOCK_LOG = {
    "oe_lock_log",
    "SELECT log_id, public_key, lease_holder, lease_expires_us FROM logs WHERE origin = $1"
    " FOR UPDATE",
    1,
    {OID_TEXT}};
static const pg_statement ST_UPDATE_LEASE = {
    "oe_update_lease",
    "UPDATE logs SET lease_holder = $2, lease_expires_us = $3 WHERE log_id = $1",
    3,
    {OID_INT8, OID_TEXT, OID_INT8}};
static const pg_statement ST_RELEASE_LEASE = {
    "oe_release_lease",
    "UPDATE logs SET lease_expires_us = 0 WHERE log_id = $1 AND lease_holder = $2",
    2,
    {OID_INT8, OID_TEXT}};
static const pg_statement ST_LOG_SIZE = {
    "oe_log_size",
    "SELECT COALESCE(MAX(seq) + 1, 0) FROM receipts WHERE log_id = $1",
    1,
    {OID_INT8}};
static const pg_statement ST_SAVE_CHECKPOINT = {
    "oe_save_checkpoint",
    "WITH kept AS (INSERT INTO checkpoints(log_id, size, note) VALUES ($1, $3, $2)"
    " ON CONFLICT DO NOTHING)"
    " UPDATE logs SET checkpoint = $2, checkpoint_size = $3 WHERE log_id = $1",
    3,
    {OID_INT8, OID_TEXT, OID_INT8}};
static const pg_statement ST_PROBE = {"oe_probe",
                                      "INSERT INTO meta(key, value) VALUES ('probe', $1)"
                                      " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                                      1,
                                      {OID_TEXT}};
static const pg_statement ST_XID = {"oe_xid", "SELECT txid_current()", 0, {0}};
static const pg_statement ST_XID_STATUS = {
    "oe_xid_status", "SELECT txid_status($1)", 1, {OID_INT8}};
static const pg_statement ST_FIND_LOG = {
    "oe_find_log",
    "SELECT log_id, public_key, checkpoint, checkpoint_size FROM logs WHERE origin = $1",
    1,
    {OID_TEXT}};
static const pg_statement ST_FIND_RECEIPT = {
    "oe_find_receipt",
    "SELECT log_id, seq, body FROM receipts WHERE exec_id = $1 ORDER BY log_id, seq LIMIT 1",
    1,
    {OID_TEXT}};
static const pg_statement ST_LIST_PENDING = {
    "oe_list_pending",
    "SELECT nonce, exec_id, action, claimed_by, created_us, state FROM executions"
    " WHERE state <> 1 ORDER BY created_us",
    0,
    {0}};
static const pg_statement ST_FIND_CHECKPOINT = {
    "oe_find_checkpoint",
    "SELECT c.note FROM checkpoints c JOIN logs l ON l.log_id = c.log_id"
    " WHERE l.origin = $1 AND c.size = $2",
    2,
    {OID_TEXT, OID_INT8}};
static const pg_statement ST_EXPORT = {
    "oe_export",
    "SELECT body FROM receipts WHERE log_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3",
    3,
    {OID_INT8, OID_INT8, OID_INT8}};

static const pg_statement *const WRITER_STATEMENTS[] = {&ST_FIND_EXECUTION,
                                                        &ST_GET_NODE,
                                                        &ST_INSERT_EXECUTION,
                                                        &ST_INSERT_APPROVAL,
                                                        &ST_APPROVAL_USED,
                                                        &ST_COMPLETE,
                                                        &ST_INSERT_RECEIPT,
                                                        &ST_INSERT_NODE,
                                                        &ST_CREATE_LOG,
                                                        &ST_LOCK_LOG,
                                                        &ST_UPDATE_LEASE,
                                                        &ST_RELEASE_LEASE,
                                                        &ST_LOG_SIZE,
                                                        &ST_SAVE_CHECKPOINT,
                                                        &ST_PROBE,
                                                        &ST_MARK_UNKNOWN,
                                                        &ST_OTHER_LEASES,
                                                        &ST_LOCK_OTHER_LEASE,
                                                        &ST_RETIRE_LEASE,
                                                        &ST_XID,
                                                        &ST_XID_STATUS,
                                                        NULL};
static const pg_statement *const READER_STATEMENTS[] = {
    &ST_FIND_EXECUTION, &ST_GET_NODE, &ST_FIND_LOG,        &ST_FIND_RECEIPT,
    &ST_LIST_PENDING,   &ST_EXPORT,   &ST_FIND_CHECKPOINT, NULL};

/* One connection and its reconnect state. */
typedef struct pg_link {
    const char *role; /* "writer" or "reader": for messages */
    const char *url;  /* borrowed from the configuration; never printed */
    char *secret;     /* the URL's password (malloc'd), scrubbed from messages */
    char target[160]; /* user@host:port/db, safe to print */
    int is_writer;
    const char *session_sql;
    const pg_statement *const *statements;
    int prepare; /* 0 until the schema exists (the writer at start) */
    int query_ms;

    PGconn *conn; /* NULL while disconnected */
    /* The writer's pipeline: statements sent since the last sync, with the
     * row count each must report (-1: any).  Readers never pipeline. */
    struct pg_sent {
        const char *name;
        long expect;
    } * sent;
    size_t nsent, capsent;
    uint64_t next_try_ms;
    int backoff_ms;
    int down; /* a failure was logged; log the recovery */
    char err[ERR_MAX];
    char sqlstate[6]; /* of the last statement error, "" when none */
} pg_link;

typedef struct pg_writer {
    pg_link link;
    int64_t xid; /* the open transaction's id, to learn a lost COMMIT's fate */
} pg_writer;

typedef struct pg_reader {
    pg_link link;
} pg_reader;

/* ---- secrets ------------------------------------------------------------ */

static void put_char(char *out, size_t out_len, size_t *n, char c)
{
    if (*n + 1 < out_len)
        out[(*n)++] = c;
}

static void put_str(char *out, size_t out_len, size_t *n, const char *s)
{
    while (*s)
        put_char(out, out_len, n, *s++);
}

/* Copies msg to out as one line a log may show: each occurrence of a secret
 * becomes ***, everything after "password=" is dropped, the userinfo of
 * anything shaped like a URL is masked, and line breaks become spaces. */
static void scrub(const char *msg, const char *secret, char *out, size_t out_len)
{
    const char *env = getenv("PGPASSWORD");
    const char *secrets[2] = {secret, env};
    size_t n = 0, i, len;
    const char *p = msg ? msg : "";

    if (out_len == 0)
        return;
    while (*p) {
        for (i = 0; i < 2; i++) {
            len = secrets[i] ? strlen(secrets[i]) : 0;
            if (len > 0 && strncmp(p, secrets[i], len) == 0)
                break;
        }
        if (i < 2) {
            put_str(out, out_len, &n, "***");
            p += strlen(secrets[i]);
            continue;
        }
        if (strncasecmp(p, "password=", 9) == 0) {
            put_str(out, out_len, &n, "password=***");
            break;
        }
        if (strncmp(p, "://", 3) == 0) {
            /* scheme://user:secret@host: keep the user, mask the rest. */
            const char *at = strpbrk(p + 3, "@/ \"'\n");
            const char *colon = strchr(p + 3, ':');

            put_str(out, out_len, &n, "://");
            p += 3;
            if (at != NULL && *at == '@' && colon != NULL && colon < at) {
                while (p < colon)
                    put_char(out, out_len, &n, *p++);
                put_str(out, out_len, &n, ":***");
                p = at;
            }
            continue;
        }
        if (*p == '\n' || *p == '\r' || *p == '\t') {
            if (n > 0 && out[n - 1] != ' ')
                put_char(out, out_len, &n, ' ');
        } else {
            put_char(out, out_len, &n, *p);
        }
        p++;
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
}

static void notice_to_log(void *arg, const char *message)
{
    pg_link *l = arg;
    char clean[ERR_MAX];

    scrub(message, l->secret, clean, sizeof(clean));
    oe_log("warn", "store: postgresql %s: %s", l->role, clean);
}

/* Learns the URL's password (to scrub it) and a printable target.  -1 when
 * libpq cannot parse the URL; its message is not used, since it may quote
 * the URL. */
static int link_init(pg_link *l, const oe_config *cfg, int is_writer)
{
    PQconninfoOption *opts, *o;
    const char *user = "", *host = "", *port = "", *db = "";
    char *msg = NULL;

    memset(l, 0, sizeof(*l));
    l->is_writer = is_writer;
    l->role = is_writer ? "writer" : "reader";
    l->url = cfg->db_url;
    l->query_ms = is_writer ? WRITER_QUERY_MS : READER_QUERY_MS;
    l->session_sql = is_writer ? WRITER_SESSION : READER_SESSION;
    l->statements = is_writer ? WRITER_STATEMENTS : READER_STATEMENTS;
    l->backoff_ms = BACKOFF_MIN_MS;
    opts = PQconninfoParse(cfg->db_url, &msg);
    PQfreemem(msg);
    if (opts == NULL)
        return -1;
    for (o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL)
            continue;
        if (strcmp(o->keyword, "password") == 0 && o->val[0] != '\0')
            l->secret = strdup(o->val);
        else if (strcmp(o->keyword, "user") == 0)
            user = o->val;
        else if (strcmp(o->keyword, "host") == 0 || (strcmp(o->keyword, "hostaddr") == 0 && !*host))
            host = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            db = o->val;
    }
    oe_message(l->target, sizeof(l->target), "%s%s%s%s%s/%s", user, *user ? "@" : "",
               *host ? host : "localhost", *port ? ":" : "", port, db);
    PQconninfoFree(opts);
    return 0;
}

static void link_free(pg_link *l)
{
    if (l->conn)
        PQfinish(l->conn);
    l->conn = NULL;
    free(l->sent);
    l->sent = NULL;
    if (l->secret) {
        memset(l->secret, 0, strlen(l->secret));
        free(l->secret);
    }
    l->secret = NULL;
}

/* ---- waiting with deadlines --------------------------------------------- */

/* 1 when the socket is ready for events (POLLIN, POLLOUT), 0 at the
 * deadline, -1 on error. */
static int wait_socket(PGconn *conn, short events, uint64_t deadline)
{
    struct pollfd p;
    uint64_t now;
    int rc;

    p.fd = PQsocket(conn);
    p.events = events;
    if (p.fd < 0)
        return -1;
    for (;;) {
        now = oe_monotonic_ms();
        if (now >= deadline)
            return 0;
        rc = poll(&p, 1, (int)(deadline - now));
        if (rc > 0)
            return 1;
        if (rc == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

/* Drops the connection after a failure, with the reason in l->err. */
static void link_broken(pg_link *l, const char *what)
{
    char clean[ERR_MAX];

    scrub(l->conn ? PQerrorMessage(l->conn) : "", l->secret, clean, sizeof(clean));
    oe_message(l->err, sizeof(l->err), "%s%s%s", what, clean[0] ? ": " : "", clean);
    if (l->conn)
        PQfinish(l->conn);
    l->conn = NULL;
    l->nsent = 0;
    if (!l->down)
        oe_log("error", "store: lost the PostgreSQL %s connection to %s: %s", l->role, l->target,
               l->err);
    l->down = 1;
}

/* Waits for everything sent on l->conn to be answered; returns the last
 * result (the first error, if any), for the caller to PQclear.  NULL when
 * the connection broke or the deadline passed: the connection is then
 * closed and the reason is in l->err. */
static PGresult *await_result(pg_link *l, uint64_t deadline)
{
    PGresult *res, *last = NULL;
    int rc;

    while ((rc = PQflush(l->conn)) == 1) {
        if (wait_socket(l->conn, POLLIN | POLLOUT, deadline) <= 0 || !PQconsumeInput(l->conn))
            goto broken;
    }
    if (rc < 0)
        goto broken;
    for (;;) {
        while (PQisBusy(l->conn)) {
            if (wait_socket(l->conn, POLLIN, deadline) <= 0 || !PQconsumeInput(l->conn))
                goto broken;
        }
        res = PQgetResult(l->conn);
        if (res == NULL)
            break;
        if (last == NULL || PQresultStatus(last) != PGRES_FATAL_ERROR) {
            PQclear(last);
            last = res;
        } else {
            PQclear(res);
        }
    }
    if (last == NULL || PQstatus(l->conn) != CONNECTION_OK)
        goto broken;
    return last;
broken:
    PQclear(last);
    link_broken(l, oe_monotonic_ms() >= deadline ? "no answer in time" : "connection failed");
    return NULL;
}

static PGresult *run_sql(pg_link *l, const char *sql)
{
    if (l->conn == NULL)
        return NULL;
    if (!PQsendQuery(l->conn, sql)) {
        link_broken(l, "cannot send");
        return NULL;
    }
    return await_result(l, oe_monotonic_ms() + (uint64_t)l->query_ms);
}

/* Runs a prepared statement; text parameters (formats[i] == 0) are
 * NUL-terminated, binary ones carry their length.  Results in binary. */
static PGresult *run_stmt(pg_link *l, const pg_statement *st, const char *const *values,
                          const int *lengths, const int *formats)
{
    if (l->conn == NULL)
        return NULL;
    if (!PQsendQueryPrepared(l->conn, st->name, st->nparams, values, lengths, formats, 1)) {
        link_broken(l, "cannot send");
        return NULL;
    }
    return await_result(l, oe_monotonic_ms() + (uint64_t)l->query_ms);
}

/* Records a statement's error (not a connection failure) in l->err. */
static void statement_error(pg_link *l, const PGresult *res, const char *what)
{
    char clean[ERR_MAX];

    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    scrub(res ? PQresultErrorMessage(res) : "", l->secret, clean, sizeof(clean));
    oe_message(l->err, sizeof(l->err), "%s: %s", what, clean);
    snprintf(l->sqlstate, sizeof(l->sqlstate), "%s", state ? state : "");
}

/* Deadlock (40P01) or serialization failure (40001): two instances' batches
 * took row locks in opposite orders and PostgreSQL aborted ours.  Nothing
 * of the batch was written; running it again is safe and will succeed. */
static int writer_retryable(void *p)
{
    pg_writer *w = p;

    return strcmp(w->link.sqlstate, "40P01") == 0 || strcmp(w->link.sqlstate, "40001") == 0;
}

/* 0 when the statement ran (a command, or a query when tuples is set). */
static int result_ok(pg_link *l, PGresult *res, int tuples, const char *what)
{
    ExecStatusType want = tuples ? PGRES_TUPLES_OK : PGRES_COMMAND_OK;

    if (res == NULL)
        return -1;
    if (PQresultStatus(res) != want) {
        statement_error(l, res, what);
        return -1;
    }
    return 0;
}

static int exec_command(pg_link *l, const char *sql)
{
    PGresult *res = run_sql(l, sql);
    int rc = result_ok(l, res, 0, sql);

    PQclear(res);
    return rc;
}

/* ---- connecting --------------------------------------------------------- */

static PGconn *connect_with_deadline(pg_link *l)
{
    /* Defaults first, so the URL can override them; client_encoding after
     * the URL, because the bytes we send and read are UTF-8. */
    static const char *const keywords[] = {"application_name",
                                           "keepalives",
                                           "keepalives_idle",
                                           "keepalives_interval",
                                           "keepalives_count",
                                           "tcp_user_timeout",
                                           "dbname",
                                           "client_encoding",
                                           NULL};
    const char *values[] = {"openexec", "1", "30", "10", "3", "10000", l->url, "UTF8", NULL};
    uint64_t deadline = oe_monotonic_ms() + CONNECT_MS;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    PGconn *conn = PQconnectStartParams(keywords, values, 1);
    char clean[ERR_MAX];
    int rc;

    if (conn == NULL) {
        oe_message(l->err, sizeof(l->err), "out of memory");
        return NULL;
    }
    if (PQstatus(conn) == CONNECTION_BAD)
        goto fail;
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED)
            goto fail;
        rc = wait_socket(conn, st == PGRES_POLLING_WRITING ? POLLOUT : POLLIN, deadline);
        if (rc == 0) {
            oe_message(l->err, sizeof(l->err), "cannot connect: no answer within %d ms",
                       CONNECT_MS);
            PQfinish(conn);
            return NULL;
        }
        if (rc < 0)
            goto fail;
        st = PQconnectPoll(conn);
    }
    return conn;
fail:
    scrub(PQerrorMessage(conn), l->secret, clean, sizeof(clean));
    oe_message(l->err, sizeof(l->err), "cannot connect: %s", clean[0] ? clean : "failed");
    PQfinish(conn);
    return NULL;
}

static int prepare_statements(pg_link *l)
{
    const pg_statement *const *st;
    PGresult *res;

    for (st = l->statements; *st != NULL; st++) {
        if (!PQsendPrepare(l->conn, (*st)->name, (*st)->sql, (*st)->nparams, (*st)->types)) {
            link_broken(l, "cannot send");
            return -1;
        }
        res = await_result(l, oe_monotonic_ms() + (uint64_t)l->query_ms);
        if (result_ok(l, res, 0, "prepare") != 0) {
            PQclear(res);
            return -1;
        }
        PQclear(res);
    }
    return 0;
}

/* Prepares the statements; the writer then switches to pipeline mode. */
static int link_ready(pg_link *l)
{
    if (prepare_statements(l) != 0)
        return -1;
    if (l->is_writer && PQenterPipelineMode(l->conn) != 1) {
        oe_message(l->err, sizeof(l->err), "cannot enter pipeline mode");
        return -1;
    }
    return 0;
}

/* The writer's durability setting: `off` would acknowledge commits that a
 * crash can lose, so the writer turns it on; anything stronger is kept. */
static int check_synchronous_commit(pg_link *l)
{
    PGresult *res = run_sql(l, "SHOW synchronous_commit");
    int off;

    if (result_ok(l, res, 1, "SHOW synchronous_commit") != 0 || PQntuples(res) != 1) {
        PQclear(res);
        return -1;
    }
    off = strcmp(PQgetvalue(res, 0, 0), "off") == 0;
    PQclear(res);
    if (off) {
        oe_log("warn", "store: synchronous_commit is off in the database; the writer's session "
                       "turns it on");
        return exec_command(l, "SET synchronous_commit = on");
    }
    return 0;
}

/* One attempt: connect, check the server, set up the session, prepare. */
static int link_connect(pg_link *l)
{
    const char *enc;

    if ((l->conn = connect_with_deadline(l)) == NULL)
        return -1;
    PQsetNoticeProcessor(l->conn, notice_to_log, l);
    if (PQserverVersion(l->conn) < 100000) {
        oe_message(l->err, sizeof(l->err), "PostgreSQL 10 or later is required (server is %d)",
                   PQserverVersion(l->conn));
        goto fail;
    }
    enc = PQparameterStatus(l->conn, "server_encoding");
    if (enc == NULL || (strcmp(enc, "UTF8") != 0 && strcmp(enc, "SQL_ASCII") != 0)) {
        oe_message(l->err, sizeof(l->err), "the database encoding is %s; UTF8 is required",
                   enc ? enc : "unknown");
        goto fail;
    }
    if (PQsetnonblocking(l->conn, 1) != 0) {
        oe_message(l->err, sizeof(l->err), "cannot make the connection non-blocking");
        goto fail;
    }
    if (exec_command(l, l->session_sql) != 0)
        goto fail;
    if (l->is_writer && check_synchronous_commit(l) != 0)
        goto fail;
    if (l->prepare && link_ready(l) != 0)
        goto fail;
    return 0;
fail:
    if (l->conn)
        PQfinish(l->conn);
    l->conn = NULL;
    return -1;
}

/* 0 when l->conn is usable: connected before, or connected now.  While the
 * backoff runs, fails at once without touching the network. */
static int link_ensure(pg_link *l)
{
    uint64_t now = oe_monotonic_ms();

    if (l->conn != NULL)
        return 0;
    if (now < l->next_try_ms)
        return -1;
    if (link_connect(l) != 0) {
        l->next_try_ms = oe_monotonic_ms() + (uint64_t)l->backoff_ms;
        l->backoff_ms *= 2;
        if (l->backoff_ms > (l->is_writer ? WRITER_BACKOFF_MAX_MS : READER_BACKOFF_MAX_MS))
            l->backoff_ms = l->is_writer ? WRITER_BACKOFF_MAX_MS : READER_BACKOFF_MAX_MS;
        if (!l->down)
            oe_log("error", "store: PostgreSQL %s connection to %s: %s", l->role, l->target,
                   l->err);
        l->down = 1;
        return -1;
    }
    l->backoff_ms = BACKOFF_MIN_MS;
    l->next_try_ms = 0;
    if (l->down)
        oe_log("info", "store: PostgreSQL %s connection to %s is back", l->role, l->target);
    l->down = 0;
    return 0;
}

/* ---- parameters and results in binary ------------------------------------ */

static void put_be32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

static void put_be64(char *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

static uint32_t get_be32(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t get_be64(const char *s)
{
    return (uint64_t)get_be32(s) << 32 | get_be32(s + 4);
}

/* A statement's parameters, all sent in binary: bytea and text as their
 * bytes, integers big-endian.  A NULL value is SQL NULL. */
typedef struct pg_params {
    int n;
    const char *values[MAX_PARAMS];
    int lengths[MAX_PARAMS];
    int formats[MAX_PARAMS];
    char ints[MAX_PARAMS][8];
} pg_params;

static void p_bytes(pg_params *p, const void *data, size_t len)
{
    p->values[p->n] = data;
    p->lengths[p->n] = (int)len;
    p->formats[p->n] = 1;
    p->n++;
}

/* A C string; NULL or "" is SQL NULL (as the SQLite store binds them). */
static void p_text_or_null(pg_params *p, const char *s)
{
    p_bytes(p, s != NULL && s[0] != '\0' ? s : NULL, s ? strlen(s) : 0);
}

static void p_text(pg_params *p, const char *s)
{
    p_bytes(p, s, strlen(s));
}

static void p_int4(pg_params *p, int32_t v)
{
    put_be32(p->ints[p->n], (uint32_t)v);
    p_bytes(p, p->ints[p->n], 4);
}

static void p_int8(pg_params *p, int64_t v)
{
    put_be64(p->ints[p->n], (uint64_t)v);
    p_bytes(p, p->ints[p->n], 8);
}

static PGresult *run_params(pg_link *l, const pg_statement *st, const pg_params *p)
{
    return run_stmt(l, st, p->values, p->lengths, p->formats);
}

/* Runs a query; its result (PGRES_TUPLES_OK) or NULL with l->err set. */
static PGresult *query(pg_link *l, const pg_statement *st, const pg_params *p)
{
    PGresult *res = run_params(l, st, p);

    if (result_ok(l, res, 1, st->name) != 0) {
        PQclear(res);
        return NULL;
    }
    return res;
}

/* A query outside any transaction (readers): connects if needed, and if the
 * connection we had was stale, connects again and retries once. */
static PGresult *query_outside(pg_link *l, const pg_statement *st, const pg_params *p)
{
    PGresult *res = NULL;
    int attempt, had;

    for (attempt = 0; attempt < 2; attempt++) {
        had = l->conn != NULL;
        if (link_ensure(l) != 0)
            return NULL;
        res = query(l, st, p);
        if (res != NULL || l->conn != NULL || !had)
            break;
    }
    if (res == NULL && l->conn != NULL)
        oe_log("error", "store: PostgreSQL %s: %s", l->role, l->err);
    return res;
}

/* A column of row 0 that must be exactly len bytes (binary format). */
static const char *col_fixed(const PGresult *res, int col, int len)
{
    if (PQgetisnull(res, 0, col) || PQgetlength(res, 0, col) != len)
        return NULL;
    return PQgetvalue(res, 0, col);
}

/* Copies a text column of row 0 into dst (cap bytes with the NUL); NULL
 * gives "".  -1 when it does not fit. */
static int col_text(const PGresult *res, int col, char *dst, size_t cap)
{
    size_t len = (size_t)PQgetlength(res, 0, col);

    if (PQgetisnull(res, 0, col))
        len = 0;
    if (len >= cap)
        return -1;
    memcpy(dst, PQgetvalue(res, 0, col), len);
    dst[len] = '\0';
    return 0;
}

/* Reads a ST_FIND_EXECUTION result.  STORE_OK, STORE_NOT_FOUND, or
 * STORE_ERROR for a row that is not what we wrote. */
static int read_execution(pg_link *l, const PGresult *res, store_execution *out)
{
    const char *state, *status, *size;

    if (PQntuples(res) == 0)
        return STORE_NOT_FOUND;
    state = col_fixed(res, 3, 4);
    status = col_fixed(res, 4, 4);
    size = col_fixed(res, 6, 8);
    if (PQntuples(res) != 1 || PQnfields(res) != 11 || state == NULL || status == NULL ||
        size == NULL || col_text(res, 0, out->exec_id, sizeof(out->exec_id)) != 0 ||
        col_text(res, 1, out->action_hash, sizeof(out->action_hash)) != 0 ||
        col_text(res, 8, out->result_sha256, sizeof(out->result_sha256)) != 0 ||
        col_text(res, 9, out->error, sizeof(out->error)) != 0 ||
        col_text(res, 10, out->action, sizeof(out->action)) != 0)
        goto bad;
    out->state = (exec_state)(int32_t)get_be32(state);
    out->status = (int)(int32_t)get_be32(status);
    out->tree_size = get_be64(size);
    if (col_fixed(res, 7, 32) != NULL)
        memcpy(out->tree_root, PQgetvalue(res, 0, 7), 32);
    if (!PQgetisnull(res, 0, 2)) {
        out->approval_id = strndup(PQgetvalue(res, 0, 2), (size_t)PQgetlength(res, 0, 2));
        if (out->approval_id == NULL)
            goto bad;
    }
    out->response_len = (size_t)PQgetlength(res, 0, 5);
    out->response = malloc(out->response_len + 1);
    if (out->response == NULL)
        goto bad;
    memcpy(out->response, PQgetvalue(res, 0, 5), out->response_len);
    out->response[out->response_len] = '\0';
    return STORE_OK;
bad:
    store_execution_free(out);
    oe_message(l->err, sizeof(l->err), "an executions row is not what OpenExec writes");
    return STORE_ERROR;
}

static int read_node(pg_link *l, const PGresult *res, uint8_t out[32])
{
    const char *hash;

    if (PQntuples(res) == 0)
        return STORE_NOT_FOUND;
    if ((hash = col_fixed(res, 0, 32)) == NULL) {
        oe_message(l->err, sizeof(l->err), "a tlog_nodes row is not what OpenExec writes");
        return STORE_ERROR;
    }
    memcpy(out, hash, 32);
    return STORE_OK;
}

/* ---- schema ------------------------------------------------------------- */

/* The single value of a one-row, one-column text query; NULL when the query
 * failed or found nothing (*failed tells which).  Simple protocol: text. */
static char *query_value(pg_link *l, const char *sql, int *failed)
{
    PGresult *res = run_sql(l, sql);
    char *v = NULL;

    *failed = result_ok(l, res, 1, "schema") != 0;
    if (!*failed && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        v = strdup(PQgetvalue(res, 0, 0));
        *failed = v == NULL;
    }
    PQclear(res);
    return v;
}

/* Creates or upgrades the schema in one transaction, under the migration
 * lock.  0, or -1 with the reason in l->err (the connection is closed if it
 * broke, kept if the database refused). */
static int migrate(pg_link *l)
{
    char *tables = NULL, *app = NULL, *ver = NULL;
    char sql[160];
    int failed, version = 0, v;

    if (exec_command(l, "BEGIN ISOLATION LEVEL READ COMMITTED") != 0)
        goto fail;
    free(query_value(l, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK ")::text", &failed));
    if (failed)
        goto fail;
    tables = query_value(l, SCHEMA_TABLES_SQL, &failed);
    if (failed || tables == NULL)
        goto fail;
    if (tables[0] == '1') {
        app = query_value(l, "SELECT value FROM meta WHERE key = 'application'", &failed);
        if (!failed)
            ver = query_value(l, "SELECT value FROM meta WHERE key = 'schema_version'", &failed);
        if (failed)
            goto fail;
        if (app == NULL || strcmp(app, "openexec") != 0 || ver == NULL) {
            oe_message(
                l->err, sizeof(l->err),
                "the database has a table 'meta' that is not OpenExec's; refusing to touch it");
            goto fail;
        }
        version = atoi(ver);
        if (version < 1) {
            oe_message(l->err, sizeof(l->err), "unreadable schema_version; refusing to touch it");
            goto fail;
        }
    } else if (strchr(tables, '1') != NULL) {
        oe_message(l->err, sizeof(l->err),
                   "the database has tables named like OpenExec's but no OpenExec schema; refusing "
                   "to touch it");
        goto fail;
    }
    if (version > SCHEMA_VERSION) {
        oe_message(l->err, sizeof(l->err),
                   "the database has schema version %d, newer than this build's %d; refusing to "
                   "touch it",
                   version, SCHEMA_VERSION);
        goto fail;
    }
    for (v = version; v < SCHEMA_VERSION; v++)
        if (exec_command(l, MIGRATIONS[v]) != 0)
            goto fail;
    snprintf(sql, sizeof(sql),
             "INSERT INTO meta(key, value) VALUES ('schema_version', '%d')"
             " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
             SCHEMA_VERSION);
    if (exec_command(l, sql) != 0 || exec_command(l, "COMMIT") != 0)
        goto fail;
    if (version < SCHEMA_VERSION)
        oe_log("info", "store: PostgreSQL schema at %s upgraded from version %d to %d", l->target,
               version, SCHEMA_VERSION);
    free(tables);
    free(app);
    free(ver);
    return 0;
fail:
    if (l->conn && PQtransactionStatus(l->conn) != PQTRANS_IDLE)
        PQclear(run_sql(l, "ROLLBACK"));
    free(tables);
    free(app);
    free(ver);
    return -1;
}

/* ---- the writer's pipeline ------------------------------------------------ */

/* The writer's connection is in pipeline mode: statements whose results are
 * not needed at once (receipts, tree nodes, completions, savepoints) are
 * only sent, and their results are read, and checked, at the next sync:
 * the next statement whose result is needed (a claim, a read, COMMIT).
 * So a batch costs about one round trip per claim plus a few, not one per
 * statement.  An error in a deferred statement aborts the rest of the
 * pipeline and is reported by that sync, which fails the batch. */

static int w_note(pg_link *l, const char *name, long expect)
{
    struct pg_sent *grown;

    if (l->conn == NULL) {
        oe_message(l->err, sizeof(l->err), "not connected");
        return -1;
    }
    if (l->nsent == l->capsent) {
        grown = realloc(l->sent, (l->capsent ? l->capsent * 2 : 64) * sizeof(*grown));
        if (grown == NULL) {
            oe_message(l->err, sizeof(l->err), "out of memory");
            return -1;
        }
        l->sent = grown;
        l->capsent = l->capsent ? l->capsent * 2 : 64;
    }
    l->sent[l->nsent].name = name;
    l->sent[l->nsent].expect = expect;
    l->nsent++;
    return 0;
}

/* Waits until a result can be read without blocking; 0, or -1 (broken). */
static int w_wait(pg_link *l, uint64_t deadline)
{
    while (PQisBusy(l->conn)) {
        if (wait_socket(l->conn, POLLIN, deadline) <= 0 || !PQconsumeInput(l->conn)) {
            link_broken(l,
                        oe_monotonic_ms() >= deadline ? "no answer in time" : "connection failed");
            return -1;
        }
    }
    return 0;
}

/* Syncs the pipeline and reads every result sent since the last sync.
 * Returns the result of the last statement (for the caller to PQclear), or
 * NULL with the first problem in l->err: a statement failed, a deferred one
 * changed other than the rows it had to, or the connection broke (then it
 * is closed). */
static PGresult *w_sync(pg_link *l)
{
    uint64_t deadline = oe_monotonic_ms() + (uint64_t)l->query_ms;
    PGresult *res, *last = NULL;
    size_t i, n = l->nsent;
    int failed = 0, rc;

    if (l->conn == NULL)
        return NULL;
    if (PQpipelineSync(l->conn) != 1) {
        link_broken(l, "cannot send");
        return NULL;
    }
    while ((rc = PQflush(l->conn)) == 1) {
        if (wait_socket(l->conn, POLLIN | POLLOUT, deadline) <= 0 || !PQconsumeInput(l->conn)) {
            link_broken(l, "connection failed");
            return NULL;
        }
    }
    if (rc < 0) {
        link_broken(l, "connection failed");
        return NULL;
    }
    for (i = 0; i < n; i++) {
        for (;;) {
            if (w_wait(l, deadline) != 0)
                goto broken;
            if ((res = PQgetResult(l->conn)) == NULL)
                break; /* the end of statement i */
            switch (PQresultStatus(res)) {
            case PGRES_COMMAND_OK:
            case PGRES_TUPLES_OK:
                if (i + 1 == n) {
                    PQclear(last);
                    last = res;
                    continue;
                }
                if (!failed && l->sent[i].expect >= 0 &&
                    strtol(PQcmdTuples(res), NULL, 10) != l->sent[i].expect) {
                    oe_message(l->err, sizeof(l->err), "%s: changed %s rows, not %ld",
                               l->sent[i].name, PQcmdTuples(res), l->sent[i].expect);
                    failed = 1;
                }
                break;
            case PGRES_PIPELINE_ABORTED:
                break;
            default:
                if (!failed)
                    statement_error(l, res, l->sent[i].name);
                failed = 1;
                break;
            }
            PQclear(res);
        }
    }
    if (w_wait(l, deadline) != 0)
        goto broken;
    res = PQgetResult(l->conn);
    rc = res != NULL && PQresultStatus(res) == PGRES_PIPELINE_SYNC;
    PQclear(res);
    l->nsent = 0;
    if (!rc || PQstatus(l->conn) != CONNECTION_OK) {
        link_broken(l, "connection failed");
        goto broken;
    }
    if (failed) {
        PQclear(last);
        return NULL;
    }
    if (last == NULL)
        oe_message(l->err, sizeof(l->err), "%s: no result", n ? l->sent[n - 1].name : "sync");
    return last;
broken:
    PQclear(last);
    return NULL;
}

/* Sends a prepared statement; its result is checked at the next sync. */
static int w_send(pg_link *l, const pg_statement *st, const pg_params *p, long expect)
{
    PGresult *res;

    if (l->nsent >= PIPELINE_MAX) { /* keep the buffers bounded */
        if ((res = w_sync(l)) == NULL)
            return -1;
        PQclear(res);
    }
    if (w_note(l, st->name, expect) != 0)
        return -1;
    if (!PQsendQueryPrepared(l->conn, st->name, p->n, p->values, p->lengths, p->formats, 1)) {
        link_broken(l, "cannot send");
        return -1;
    }
    return 0;
}

/* Sends a statement without parameters (transaction control). */
static int w_send_sql(pg_link *l, const char *sql)
{
    if (w_note(l, sql, -1) != 0)
        return -1;
    if (!PQsendQueryParams(l->conn, sql, 0, NULL, NULL, NULL, NULL, 1)) {
        link_broken(l, "cannot send");
        return -1;
    }
    return 0;
}

/* Runs a prepared statement now: its result (PQclear it), or NULL. */
static PGresult *w_run(pg_link *l, const pg_statement *st, const pg_params *p, int tuples)
{
    PGresult *res;

    if (w_send(l, st, p, -1) != 0 || (res = w_sync(l)) == NULL)
        return NULL;
    if (result_ok(l, res, tuples, st->name) != 0) {
        PQclear(res);
        return NULL;
    }
    return res;
}

/* Runs a statement without parameters now; 0 when it succeeded. */
static int w_run_sql(pg_link *l, const char *sql)
{
    PGresult *res;
    int rc;

    if (w_send_sql(l, sql) != 0 || (res = w_sync(l)) == NULL)
        return -1;
    rc = result_ok(l, res, 0, sql);
    PQclear(res);
    return rc;
}

/* ---- the writer ---------------------------------------------------------- */

static void close_writer(void *p)
{
    pg_writer *w = p;

    if (w == NULL)
        return;
    link_free(&w->link);
    free(w);
}

/* Connection failures that waiting will not cure: the server answered and
 * refused us.  (libpq gives no SQLSTATE for a failed connection, so this
 * reads English messages; a translated one only means waiting in vain.) */
static int refusal_is_final(const char *err)
{
    return strstr(err, "authentication failed") != NULL ||
           strstr(err, "no pg_hba.conf entry") != NULL ||
           strstr(err, "is not permitted to log in") != NULL;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void *open_writer(const oe_config *cfg, char *why, size_t why_len)
{
    pg_writer *w = calloc(1, sizeof(*w));
    pg_link *l;
    uint64_t start = oe_monotonic_ms(), now;
    int logged = 0;

    if (w == NULL) {
        oe_message(why, why_len, "out of memory");
        return NULL;
    }
    l = &w->link;
    if (link_init(l, cfg, 1) != 0) {
        oe_message(why, why_len, "OPENEXEC_DB_URL is not a valid PostgreSQL connection URL");
        goto fail;
    }
    /* Connect and migrate; while the database cannot be reached, retry for
     * START_WINDOW_MS.  A database that answers and refuses is final. */
    for (;;) {
        if (link_ensure(l) == 0) {
            if (migrate(l) == 0)
                break;
            if (l->conn != NULL)
                goto refused;
        } else if (refusal_is_final(l->err)) {
            goto refused;
        }
        now = oe_monotonic_ms();
        if (now - start >= START_WINDOW_MS) {
            oe_message(why, why_len, "PostgreSQL at %s: %s (gave up after %d s)", l->target, l->err,
                       START_WINDOW_MS / 1000);
            goto fail;
        }
        if (!logged)
            oe_log("warn", "store: waiting up to %d s for PostgreSQL at %s", START_WINDOW_MS / 1000,
                   l->target);
        logged = 1;
        if (l->next_try_ms > now)
            sleep_ms(l->next_try_ms - now);
    }
    l->prepare = 1;
    if (link_ready(l) != 0)
        goto refused;
    l->down = 0;
    return w;
refused:
    oe_message(why, why_len, "PostgreSQL at %s: %s", l->target, l->err);
fail:
    close_writer(w);
    return NULL;
}

/* Logs why a writer statement failed, unless the connection broke (that was
 * logged once already).  Returns -1 for the caller to return. */
static int writer_failed(pg_link *l)
{
    if (l->conn != NULL)
        oe_log("error", "store: PostgreSQL writer: %s", l->err);
    return -1;
}

/* BEGIN (and learn the transaction's id, in the same round trip); once
 * more on a fresh connection if the one we had was stale. */
static int writer_begin(void *p)
{
    pg_writer *w = p;
    pg_link *l = &w->link;
    pg_params q = {0};
    PGresult *res;
    const char *xid;
    int attempt, had;

    w->xid = 0;
    l->sqlstate[0] = '\0';
    for (attempt = 0; attempt < 2; attempt++) {
        had = l->conn != NULL;
        if (link_ensure(l) != 0)
            return -1;
        if (w_send_sql(l, "BEGIN ISOLATION LEVEL READ COMMITTED") == 0 &&
            (res = w_run(l, &ST_XID, &q, 1)) != NULL) {
            if (PQntuples(res) == 1 && (xid = col_fixed(res, 0, 8)) != NULL)
                w->xid = (int64_t)get_be64(xid);
            PQclear(res);
            return 0;
        }
        if (l->conn != NULL || !had)
            return writer_failed(l);
    }
    return -1;
}

/* The connection broke while COMMIT was on its way: the transaction may or
 * may not have committed.  Ask PostgreSQL (txid_status) on a new
 * connection, for a little while.  0: it committed; -1: it did not, or
 * nobody can tell now (store.c then re-reads the log before its next
 * batch, so a commit that did go through is not appended twice). */
static int resolve_lost_commit(pg_writer *w)
{
    pg_link *l = &w->link;
    uint64_t deadline = oe_monotonic_ms() + RESOLVE_MS, now;
    pg_params q = {0};
    PGresult *res;
    char status[32];

    if (w->xid == 0)
        return -1;
    p_int8(&q, w->xid);
    for (;;) {
        status[0] = '\0';
        if (link_ensure(l) == 0 && (res = w_run(l, &ST_XID_STATUS, &q, 1)) != NULL) {
            if (PQntuples(res) != 1 || col_text(res, 0, status, sizeof(status)) != 0)
                status[0] = '\0';
            PQclear(res);
        }
        if (strcmp(status, "committed") == 0 || strcmp(status, "aborted") == 0) {
            oe_log("warn",
                   "store: the PostgreSQL connection broke during COMMIT; the "
                   "transaction %s",
                   status[0] == 'c' ? "committed" : "did not commit");
            return status[0] == 'c' ? 0 : -1;
        }
        now = oe_monotonic_ms();
        if (now >= deadline)
            break;
        sleep_ms(l->next_try_ms > now && l->next_try_ms < deadline ? l->next_try_ms - now : 100);
    }
    oe_log("warn", "store: the PostgreSQL connection broke during COMMIT and the outcome is "
                   "unknown for now; those requests get 503, and the log is re-read before "
                   "the next batch");
    return -1;
}

static int writer_commit(void *p)
{
    pg_writer *w = p;
    pg_link *l = &w->link;
    PGresult *res = NULL;
    int rc = -1;

    if (w_send_sql(l, "COMMIT") == 0 && (res = w_sync(l)) != NULL &&
        result_ok(l, res, 0, "COMMIT") == 0) {
        /* COMMIT of a transaction that failed answers ROLLBACK. */
        rc = strcmp(PQcmdStatus(res), "COMMIT") == 0 ? 0 : -1;
        if (rc != 0)
            oe_message(l->err, sizeof(l->err), "COMMIT: the transaction had failed");
    } else if (l->conn == NULL) {
        PQclear(res);
        return resolve_lost_commit(w);
    }
    PQclear(res);
    return rc == 0 ? 0 : writer_failed(l);
}

static void writer_rollback(void *p)
{
    pg_link *l = &((pg_writer *)p)->link;
    PGresult *res;

    if (l->conn == NULL)
        return;
    if (l->nsent > 0) { /* settle what is in flight first */
        res = w_sync(l);
        PQclear(res);
    }
    if (l->conn != NULL && PQtransactionStatus(l->conn) != PQTRANS_IDLE)
        w_run_sql(l, "ROLLBACK");
}

/* Reads an execution inside the writer's transaction (no reconnecting:
 * the transaction lives and dies with its connection). */
static int find_in_transaction(pg_link *l, const char *nonce, size_t nonce_len,
                               store_execution *out)
{
    pg_params q = {0};
    PGresult *res;
    int rc;

    p_bytes(&q, nonce, nonce_len);
    if ((res = w_run(l, &ST_FIND_EXECUTION, &q, 1)) == NULL)
        return STORE_ERROR;
    rc = read_execution(l, res, out);
    PQclear(res);
    return rc;
}

static int writer_find_execution(void *p, const char *nonce, size_t nonce_len, store_execution *out)
{
    pg_link *l = &((pg_writer *)p)->link;
    int rc = find_in_transaction(l, nonce, nonce_len, out);

    if (rc == STORE_ERROR)
        writer_failed(l);
    return rc;
}

static int writer_claim(void *p, store_item *item, const char *exec_id, const char *action,
                        const char *claimed_by, int64_t log_id)
{
    pg_link *l = &((pg_writer *)p)->link;
    int with_approval = item->approval_msg_sha256 != NULL;
    int64_t now = oe_now_us();
    pg_params q = {0};
    PGresult *res;
    long rows;
    int found;

    (void)log_id; /* answers are recorded whole, by writer_complete */
    if (with_approval && w_send_sql(l, "SAVEPOINT oe_item") != 0)
        return writer_failed(l);
    p_bytes(&q, item->nonce, item->nonce_len);
    p_text(&q, exec_id);
    p_bytes(&q, action, item->receipt.action_len);
    p_text(&q, item->action_hash);
    /* NULL only without an approval: "" is an id like any other. */
    p_bytes(&q, item->approval_id, item->approval_id ? strlen(item->approval_id) : 0);
    p_int4(&q, item->kind == STORE_ITEM_CLAIM ? EXEC_STATE_RUNNING : EXEC_STATE_DONE);
    p_int4(&q, item->status);
    p_text_or_null(&q, item->receipt.result_sha256);
    p_text_or_null(&q, item->receipt.error);
    p_int8(&q, now);
    p_text(&q, claimed_by);
    if ((res = w_run(l, &ST_INSERT_EXECUTION, &q, 0)) == NULL)
        return writer_failed(l);
    rows = strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);

    if (rows == 0) {
        /* The nonce is taken: earlier in this batch, by an earlier commit,
         * or by another instance that committed while we waited for it. */
        found = find_in_transaction(l, item->nonce, item->nonce_len, &item->existing);
        if (found != STORE_OK) {
            if (found == STORE_NOT_FOUND)
                oe_message(l->err, sizeof(l->err), "claim: the conflicting nonce has no row");
            return writer_failed(l);
        }
        item->result = STORE_NONCE_TAKEN;
        if (with_approval && w_send_sql(l, "RELEASE SAVEPOINT oe_item") != 0)
            return writer_failed(l);
        return 0;
    }
    if (with_approval) {
        memset(&q, 0, sizeof(q));
        p_bytes(&q, item->approval_msg_sha256, 32);
        p_text(&q, item->approval_id);
        p_bytes(&q, item->nonce, item->nonce_len);
        p_int8(&q, now);
        if ((res = w_run(l, &ST_INSERT_APPROVAL, &q, 0)) == NULL)
            return writer_failed(l);
        rows = strtol(PQcmdTuples(res), NULL, 10);
        PQclear(res);
        if (rows == 0) {
            /* Used before: undo this item's execution row, keep the batch. */
            if (w_send_sql(l, "ROLLBACK TO SAVEPOINT oe_item") != 0 ||
                w_send_sql(l, "RELEASE SAVEPOINT oe_item") != 0)
                return writer_failed(l);
            item->result = STORE_APPROVAL_USED;
            return 0;
        }
        if (w_send_sql(l, "RELEASE SAVEPOINT oe_item") != 0)
            return writer_failed(l);
    }
    item->result = STORE_COMMITTED;
    return 0;
}

static int writer_approval_used(void *p, const store_item *item)
{
    pg_link *l = &((pg_writer *)p)->link;
    pg_params q = {0};
    const char *count;
    PGresult *res;
    int used;

    p_bytes(&q, item->approval_msg_sha256, 32);
    p_text(&q, item->approval_id);
    if ((res = w_run(l, &ST_APPROVAL_USED, &q, 1)) == NULL)
        return writer_failed(l);
    if (PQntuples(res) != 1 || (count = col_fixed(res, 0, 8)) == NULL) {
        PQclear(res);
        oe_message(l->err, sizeof(l->err), "approval_used: not one count");
        return writer_failed(l);
    }
    used = get_be64(count) > 0;
    PQclear(res);
    return used;
}

/* PostgreSQL keeps the whole prefix: rebuilding it would cost a replay a
 * round trip per proof node. */
static int writer_complete(void *p, const store_item *item, int64_t log_id)
{
    pg_link *l = &((pg_writer *)p)->link;
    pg_params q = {0};

    (void)log_id;

    p_bytes(&q, item->nonce, item->nonce_len);
    p_bytes(&q, item->prefix.data ? item->prefix.data : "", item->prefix.len);
    p_int8(&q, (int64_t)item->tree_size);
    p_bytes(&q, item->tree_root, 32);
    p_int4(&q, item->status);
    p_text_or_null(&q, item->receipt.result_sha256);
    p_text_or_null(&q, item->receipt.error);
    /* A built-in's row was inserted done by its claim, in this transaction. */
    p_int4(&q, (int)(item->kind == STORE_ITEM_EXECUTION ? EXEC_STATE_DONE : item->finishes_state));
    return w_send(l, &ST_COMPLETE, &q, 1) == 0 ? 0 : writer_failed(l);
}

/* At start, under our lease: our claims still running were cut off. */
static int writer_mark_unknown(void *p, const char *claimed_by, int64_t *count)
{
    pg_link *l = &((pg_writer *)p)->link;
    pg_params q = {0};
    PGresult *res;

    p_text(&q, claimed_by);
    if ((res = w_run(l, &ST_MARK_UNKNOWN, &q, 0)) == NULL)
        return writer_failed(l);
    *count = strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return 0;
}

/* Whether row i of a logs(origin, lease_holder, lease_expires_us) result
 * is a gone instance's.  Binary results: text is its bytes, and libpq adds
 * a NUL. */
static int row_is_gone(const store_lease *self, PGresult *res, int i)
{
    const char *holder = PQgetisnull(res, i, 1) ? NULL : PQgetvalue(res, i, 1);

    return PQgetlength(res, i, 2) == 8 &&
           store_lease_gone(self, holder, (int64_t)get_be64(PQgetvalue(res, i, 2)));
}

/* Marks one gone log's running claims unknown, under its row's lock, if it
 * is still gone then; adds them to *count. */
static int release_one(void *p, const store_lease *self, const char *origin, int64_t *count)
{
    pg_link *l = &((pg_writer *)p)->link;
    pg_params q = {0};
    PGresult *res, *retired;
    int64_t cut = 0;
    int rc = 0;

    p_text(&q, origin);
    if ((res = w_run(l, &ST_LOCK_OTHER_LEASE, &q, 1)) == NULL)
        return writer_failed(l);
    if (PQntuples(res) == 1 && row_is_gone(self, res, 0)) {
        if (writer_mark_unknown(p, origin, &cut) != 0)
            rc = -1;
        else if ((retired = w_run(l, &ST_RETIRE_LEASE, &q, 0)) == NULL)
            rc = writer_failed(l);
        else
            PQclear(retired);
        *count += cut;
    }
    PQclear(res);
    return rc;
}

static int writer_release_orphans(void *p, const store_lease *self, int64_t *count)
{
    pg_link *l = &((pg_writer *)p)->link;
    pg_params q = {0};
    PGresult *res;
    int i, rc = 0;

    *count = 0;
    p_text(&q, self->origin);
    if ((res = w_run(l, &ST_OTHER_LEASES, &q, 1)) == NULL)
        return writer_failed(l);
    for (i = 0; rc == 0 && i < PQntuples(res); i++)
        if (row_is_gone(self, res, i))
            rc = release_one(p, self, PQgetvalue(res, i, 0), count);
    PQclear(res);
    return rc;
}

static int writer_append_receipt(void *p, int64_t log_id, uint64_t seq, const char *exec_id,
                                 const char *body, size_t len)
{
    pg_link *l = &((pg_writer *)p)->link;
    pg_params q = {0};

    p_int8(&q, log_id);
    p_int8(&q, (int64_t)seq);
    p_text(&q, exec_id);
    p_bytes(&q, body, len);
    return w_send(l, &ST_INSERT_RECEIPT, &q, 1) == 0 ? 0 : writer_failed(l);
}

static int writer_put_node(void *p, int64_t log_id, unsigned level, uint64_t index,
                           const uint8_t hash[32])
{
    pg_link *l = &((pg_writer *)p)->link;
    pg_params q = {0};

    p_int8(&q, log_id);
    p_int4(&q, (int32_t)level);
    p_int8(&q, (int64_t)index);
    p_bytes(&q, hash, 32);
    return w_send(l, &ST_INSERT_NODE, &q, 1) == 0 ? 0 : writer_failed(l);
}

static int writer_get_node(void *p, int64_t log_id, unsigned level, uint64_t index, uint8_t out[32])
{
    pg_link *l = &((pg_writer *)p)->link;
    pg_params q = {0};
    PGresult *res;
    int rc;

    p_int8(&q, log_id);
    p_int4(&q, (int32_t)level);
    p_int8(&q, (int64_t)index);
    if ((res = w_run(l, &ST_GET_NODE, &q, 1)) == NULL)
        return writer_failed(l);
    rc = read_node(l, res, out);
    PQclear(res);
    return rc == STORE_OK ? 0 : -1;
}

/* The lease: create the log's row, or lock the existing one and decide.
 * Runs inside the writer's transaction; the row lock lasts until its end,
 * so two instances cannot both take an expired lease. */
static int writer_take_lease(void *p, const store_lease *lease, int64_t *log_id, uint64_t *size,
                             char *why, size_t why_len)
{
    pg_link *l = &((pg_writer *)p)->link;
    PGresult *res = NULL;
    pg_params q = {0};
    const char *id, *key, *expires, *count;
    char holder[300];
    int held;

    p_text(&q, lease->origin);
    p_bytes(&q, lease->public_key, 32);
    p_text(&q, lease->holder);
    p_int8(&q, lease->expires_us);
    if ((res = w_run(l, &ST_CREATE_LOG, &q, 1)) == NULL)
        goto failed;
    if (PQntuples(res) == 1 && (id = col_fixed(res, 0, 8)) != NULL) {
        *log_id = (int64_t)get_be64(id);
    } else {
        PQclear(res);
        memset(&q, 0, sizeof(q));
        p_text(&q, lease->origin);
        if ((res = w_run(l, &ST_LOCK_LOG, &q, 1)) == NULL)
            goto failed;
        if (PQntuples(res) != 1 || (id = col_fixed(res, 0, 8)) == NULL ||
            (expires = col_fixed(res, 3, 8)) == NULL ||
            col_text(res, 2, holder, sizeof(holder)) != 0) {
            oe_message(why, why_len, "log %s: unreadable lease row", lease->origin);
            goto out;
        }
        *log_id = (int64_t)get_be64(id);
        key = col_fixed(res, 1, 32);
        if (key == NULL || memcmp(key, lease->public_key, 32) != 0) {
            oe_message(why, why_len, "log %s is signed by another key", lease->origin);
            goto out;
        }
        held = !PQgetisnull(res, 0, 2) && strcmp(holder, lease->holder) != 0 &&
               (int64_t)get_be64(expires) > lease->now_us && !lease->holder_is_stale(holder);
        if (held) {
            oe_message(why, why_len, "another live instance holds log %s", lease->origin);
            goto out;
        }
        memset(&q, 0, sizeof(q));
        p_int8(&q, *log_id);
        p_text(&q, lease->holder);
        p_int8(&q, lease->expires_us);
        if (w_send(l, &ST_UPDATE_LEASE, &q, 1) != 0)
            goto failed;
    }
    PQclear(res);
    memset(&q, 0, sizeof(q));
    p_int8(&q, *log_id);
    if ((res = w_run(l, &ST_LOG_SIZE, &q, 1)) == NULL)
        goto failed;
    if (PQntuples(res) != 1 || (count = col_fixed(res, 0, 8)) == NULL) {
        oe_message(why, why_len, "log %s: cannot count its receipts", lease->origin);
        goto out;
    }
    *size = get_be64(count);
    PQclear(res);
    return 0;
failed:
    oe_message(why, why_len, "PostgreSQL: %s", l->err);
out:
    PQclear(res);
    return -1;
}

static int writer_release_lease(void *p, int64_t log_id, const char *holder)
{
    pg_link *l = &((pg_writer *)p)->link;
    pg_params q = {0};

    p_int8(&q, log_id);
    p_text(&q, holder);
    return w_send(l, &ST_RELEASE_LEASE, &q, -1) == 0 ? 0 : writer_failed(l);
}

static int writer_save_checkpoint(void *p, int64_t log_id, uint64_t size, const char *note,
                                  size_t len)
{
    pg_link *l = &((pg_writer *)p)->link;
    pg_params q = {0};

    p_int8(&q, log_id);
    p_bytes(&q, note, len);
    p_int8(&q, (int64_t)size);
    return w_send(l, &ST_SAVE_CHECKPOINT, &q, 1) == 0 ? 0 : writer_failed(l);
}

/* Reconnects if needed (within the backoff) and commits a tiny row; once
 * more on a fresh connection if the one we had was stale. */
static int writer_probe(void *p)
{
    pg_link *l = &((pg_writer *)p)->link;
    char stamp[32];
    pg_params q = {0};
    PGresult *res;
    int attempt, had;

    snprintf(stamp, sizeof(stamp), "%lld", (long long)oe_now_us());
    p_text(&q, stamp);
    for (attempt = 0; attempt < 2; attempt++) {
        had = l->conn != NULL;
        if (link_ensure(l) != 0)
            return -1;
        if ((res = w_run(l, &ST_PROBE, &q, 0)) != NULL) {
            PQclear(res);
            return 0;
        }
        if (l->conn != NULL || !had)
            break;
    }
    return -1;
}

/* ---- readers ------------------------------------------------------------- */

static void close_reader(void *p)
{
    pg_reader *r = p;

    if (r == NULL)
        return;
    link_free(&r->link);
    free(r);
}

static void *open_reader(const oe_config *cfg, char *why, size_t why_len)
{
    pg_reader *r = calloc(1, sizeof(*r));

    if (r == NULL) {
        oe_message(why, why_len, "out of memory");
        return NULL;
    }
    if (link_init(&r->link, cfg, 0) != 0) {
        oe_message(why, why_len, "OPENEXEC_DB_URL is not a valid PostgreSQL connection URL");
        close_reader(r);
        return NULL;
    }
    r->link.prepare = 1;
    if (link_connect(&r->link) != 0) {
        oe_message(why, why_len, "PostgreSQL at %s: reader: %s", r->link.target, r->link.err);
        close_reader(r);
        return NULL;
    }
    return r;
}

static int reader_find_execution(void *p, const char *nonce, size_t nonce_len, store_execution *out)
{
    pg_link *l = &((pg_reader *)p)->link;
    pg_params q = {0};
    PGresult *res;
    int rc;

    p_bytes(&q, nonce, nonce_len);
    if ((res = query_outside(l, &ST_FIND_EXECUTION, &q)) == NULL)
        return STORE_ERROR;
    rc = read_execution(l, res, out);
    PQclear(res);
    return rc;
}

static int reader_get_node(void *p, int64_t log_id, unsigned level, uint64_t index, uint8_t out[32])
{
    pg_link *l = &((pg_reader *)p)->link;
    pg_params q = {0};
    PGresult *res;
    int rc;

    p_int8(&q, log_id);
    p_int4(&q, (int32_t)level);
    p_int8(&q, (int64_t)index);
    if ((res = query_outside(l, &ST_GET_NODE, &q)) == NULL)
        return STORE_ERROR;
    rc = read_node(l, res, out);
    PQclear(res);
    return rc;
}

static int reader_find_log(void *p, const char *origin, store_log_info *out)
{
    pg_link *l = &((pg_reader *)p)->link;
    pg_params q = {0};
    const char *id, *size;
    PGresult *res;
    int rc = STORE_ERROR;

    p_text(&q, origin);
    if ((res = query_outside(l, &ST_FIND_LOG, &q)) == NULL)
        return STORE_ERROR;
    if (PQntuples(res) == 0) {
        rc = STORE_NOT_FOUND;
        goto out;
    }
    if ((id = col_fixed(res, 0, 8)) == NULL || (size = col_fixed(res, 3, 8)) == NULL ||
        col_fixed(res, 1, 32) == NULL)
        goto out;
    out->log_id = (int64_t)get_be64(id);
    snprintf(out->origin, sizeof(out->origin), "%s", origin);
    memcpy(out->public_key, PQgetvalue(res, 0, 1), 32);
    out->size = get_be64(size);
    if (!PQgetisnull(res, 0, 2)) {
        out->checkpoint_len = (size_t)PQgetlength(res, 0, 2);
        out->checkpoint = strndup(PQgetvalue(res, 0, 2), out->checkpoint_len);
        if (out->checkpoint == NULL)
            goto out;
    }
    rc = STORE_OK;
out:
    PQclear(res);
    return rc;
}

static int reader_find_receipt(void *p, const char *exec_id, int64_t *log_id, uint64_t *seq,
                               oe_buf *receipt)
{
    pg_link *l = &((pg_reader *)p)->link;
    pg_params q = {0};
    const char *id, *s;
    PGresult *res;
    int rc = STORE_ERROR;

    p_text(&q, exec_id);
    if ((res = query_outside(l, &ST_FIND_RECEIPT, &q)) == NULL)
        return STORE_ERROR;
    if (PQntuples(res) == 0) {
        rc = STORE_NOT_FOUND;
    } else if ((id = col_fixed(res, 0, 8)) != NULL && (s = col_fixed(res, 1, 8)) != NULL) {
        *log_id = (int64_t)get_be64(id);
        *seq = get_be64(s);
        oe_buf_append(receipt, PQgetvalue(res, 0, 2), (size_t)PQgetlength(res, 0, 2));
        rc = receipt->failed ? STORE_ERROR : STORE_OK;
    }
    PQclear(res);
    return rc;
}

static int reader_find_checkpoint(void *p, const char *origin, uint64_t size, oe_buf *note)
{
    pg_link *l = &((pg_reader *)p)->link;
    pg_params q = {0};
    PGresult *res;
    int rc;

    p_text(&q, origin);
    p_int8(&q, (int64_t)size);
    if ((res = query_outside(l, &ST_FIND_CHECKPOINT, &q)) == NULL)
        return STORE_ERROR;
    if (PQntuples(res) == 0) {
        rc = STORE_NOT_FOUND;
    } else {
        oe_buf_append(note, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
        rc = note->failed ? STORE_ERROR : STORE_OK;
    }
    PQclear(res);
    return rc;
}

static int reader_export(void *p, int64_t log_id, uint64_t from, uint64_t limit, oe_buf *out)
{
    pg_link *l = &((pg_reader *)p)->link;
    pg_params q = {0};
    PGresult *res;
    int i, n;

    p_int8(&q, log_id);
    p_int8(&q, (int64_t)from);
    p_int8(&q, (int64_t)limit);
    if ((res = query_outside(l, &ST_EXPORT, &q)) == NULL)
        return STORE_ERROR;
    n = PQntuples(res);
    for (i = 0; i < n; i++) {
        oe_buf_append(out, PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0));
        oe_buf_putc(out, '\n');
    }
    PQclear(res);
    return out->failed ? STORE_ERROR : STORE_OK;
}

static int reader_list_pending(void *p, void (*fn)(const store_pending *pe, void *ctx), void *ctx)
{
    pg_link *l = &((pg_reader *)p)->link;
    pg_params q = {0};
    char exec_id[37], action[129], claimed_by[300];
    store_pending pe;
    const char *created, *state;
    PGresult *res;
    int i, n;

    if ((res = query_outside(l, &ST_LIST_PENDING, &q)) == NULL)
        return -1;
    n = PQntuples(res);
    for (i = 0; i < n; i++) {
        created = PQgetlength(res, i, 4) == 8 ? PQgetvalue(res, i, 4) : NULL;
        snprintf(exec_id, sizeof(exec_id), "%.*s", PQgetlength(res, i, 1), PQgetvalue(res, i, 1));
        snprintf(action, sizeof(action), "%.*s", PQgetlength(res, i, 2), PQgetvalue(res, i, 2));
        snprintf(claimed_by, sizeof(claimed_by), "%.*s", PQgetlength(res, i, 3),
                 PQgetvalue(res, i, 3));
        pe.nonce = PQgetvalue(res, i, 0);
        pe.nonce_len = (size_t)PQgetlength(res, i, 0);
        pe.exec_id = exec_id;
        pe.action = action;
        pe.claimed_by = claimed_by;
        pe.created_us = created ? (int64_t)get_be64(created) : 0;
        state = PQgetlength(res, i, 5) == 4 ? PQgetvalue(res, i, 5) : NULL;
        pe.state = state ? (exec_state)(int32_t)get_be32(state) : EXEC_STATE_UNKNOWN;
        fn(&pe, ctx);
    }
    PQclear(res);
    return n;
}

const store_backend_ops store_pg_ops = {
    .open_writer = open_writer,
    .close_writer = close_writer,
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
    .close_reader = close_reader,
    .find_execution = reader_find_execution,
    .find_log = reader_find_log,
    .get_node = reader_get_node,
    .find_receipt = reader_find_receipt,
    .find_checkpoint = reader_find_checkpoint,
    .export_receipts = reader_export,
    .list_pending = reader_list_pending,
    .retryable = writer_retryable,
};

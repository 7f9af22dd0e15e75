/*
 * server.c - HTTP on h2o event loops: routing, limits, JSON errors.
 *
 * Threads
 *   One h2o event loop per worker thread (OPENEXEC_THREADS, default one per
 *   CPU), all accepting from one shared listening socket.  A loop never
 *   blocks on the store's writer: /execute hands its writes to the writer
 *   thread (store.h) and returns; when the commit is durable the writer
 *   posts the completion back to the owning loop through an h2o
 *   multithread queue, and the loop sends the answer.  The main thread only
 *   waits for SIGTERM/SIGINT.
 *
 * Request lifetime
 *   A request waiting for its commit may outlive its connection.  Each
 *   pending request carries a guard allocated in the request's memory pool;
 *   when h2o frees the request the guard clears the pending request's
 *   pointer, so a late completion is dropped instead of touching freed
 *   memory.  Guard and completion both run on the owning loop's thread.
 *
 * Limits
 *   Bodies are bounded at 1 MiB.  h2o refuses a larger body itself, before
 *   any handler runs, with a text/plain 413; a filter on the fallback path
 *   (the only path such early errors are bound to) rewrites that answer into
 *   SPEC 2's JSON body_too_large.  h2o refuses a chunked body when it
 *   *reaches* globalconf.max_request_entity_size but a Content-Length only
 *   *above* it, so the limit is set one byte higher and on_req refuses the
 *   one body of exactly 1 MiB + 1 bytes that gets through: exactly 1 MiB
 *   passes in both framings.
 *   Request line and headers are bounded at HEADERS_MAX (h2o's own bounds
 *   are looser), slow or idle clients by http1.req_timeout while sending and
 *   SEND_TIMEOUT_MS while (not) reading their answer, connections per loop
 *   by MAX_CONNECTIONS_PER_LOOP.
 *
 * Shutdown
 *   SIGTERM: every loop closes its listener, asks h2o to close idle
 *   keep-alive connections, and keeps running until no request of its own is
 *   waiting for the store; then the store flushes and the process exits 0.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <h2o.h>

#include "actions.h"
#include "answer.h"
#include "approval.h"
#include "buf.h"
#include "canon.h"
#include "execute.h"
#include "instance.h"
#include "keys.h"
#include "log.h"
#include "log_api.h"
#include "metrics.h"
#include "openapi.h"
#include "receipt.h"
#include "store.h"
#include "util.h"

#define MAX_BODY_BYTES (1024 * 1024)
#define BODY_TOO_LARGE_DETAIL "Request body exceeds 1048576 bytes"
#define REQUEST_TIMEOUT_MS 10000
#define DRAIN_FLUSH_MS 200
#define REQUEST_ID_MAX 128
#define ACCEPT_PAUSE_MS 100
#define SEND_TIMEOUT_MS 10000
#define MAX_CONNECTIONS_PER_LOOP 20000
#define SMALL_BODY_MAX 65536

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

typedef struct oe_server oe_server;
typedef struct conn_guard conn_guard;

typedef struct oe_worker {
    oe_server *srv;
    pthread_t thread;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t completions; /* commits done by the writer */
    h2o_multithread_receiver_t control;     /* shutdown requests */
    store_reader *reader;
    size_t pending;                    /* requests of this loop waiting for the store */
    atomic_size_t connections;         /* open client connections; /metrics reads all loops' */
    h2o_timeout_t accept_pause;        /* ACCEPT_PAUSE_MS */
    h2o_timeout_t send_timeout;        /* SEND_TIMEOUT_MS for a client to take its answer */
    h2o_timeout_entry_t accept_resume; /* linked while accepting is paused */
    conn_guard *dead_guards;           /* closed connections' guards, freed after each iteration */
    oe_buf access_log;                 /* this iteration's access log lines (oe_log_request) */
    int draining;
    int running; /* its loop is up (set on its own thread before it reports) */
} oe_worker;

struct oe_server {
    const oe_config *cfg;
    store *st;
    execute_env *env;
    actions_registry *actions;
    keys_private receipt_key; /* signs this instance's log checkpoints */
    char origin[INSTANCE_ORIGIN_MAX];
    oe_metrics metrics;
    h2o_globalconf_t globalconf;
    int listen_fd;
    int nworkers;
    oe_worker *workers;

    /* worker start-up handshake */
    pthread_mutex_t start_lock;
    pthread_cond_t start_cond;
    int started_ok, started_failed;
};

typedef struct oe_handler {
    h2o_handler_t super;
    oe_server *srv;
} oe_handler;

/* A request waiting for the writer.  Owned by the loop once the completion
 * message arrives; until then by the writer. */
typedef struct pending_request pending_request;

typedef struct request_guard {
    pending_request *pending;
} request_guard;

struct pending_request {
    h2o_multithread_message_t msg;
    oe_worker *worker;
    h2o_req_t *req; /* NULL once h2o freed the request */
    request_guard *guard;
    execute_job *job;
    unsigned endpoint;
    char request_id[REQUEST_ID_MAX + 1];
};

typedef struct route {
    const char *path;
    const char *method; /* "GET" (HEAD too) or "POST" */
    void (*handle)(oe_server *srv, h2o_req_t *req, const char *request_id, oe_answer *ans);
    int async; /* handle_execute: may defer its answer */
} route;

static unsigned endpoint_other(void);
static oe_worker *worker_of(h2o_req_t *req);

/* See "framing guard" below. */
#define FRAMING_MARKER "x-openexec-te-dup" /* as long as "transfer-encoding" */
#define FRAMING_MARKER_CL "x-openexec-dcl" /* as long as "content-length" */
#define HEADERS_MAX 16384                  /* request line + headers, our bound */
static void guard_watch_write(h2o_req_t *req);

/* ---- responses ---------------------------------------------------------- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 422:
        return "Unprocessable Entity";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

static void add_header(h2o_req_t *req, const h2o_token_t *token, const char *value)
{
    h2o_add_header(&req->pool, &req->res.headers, token, NULL, value, strlen(value));
}

static void add_header_str(h2o_req_t *req, const char *name, const char *value)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0, NULL, value,
                          strlen(value));
}

static uint64_t elapsed_us(const h2o_req_t *req)
{
    struct timeval now;
    int64_t us;

    gettimeofday(&now, NULL);
    us = (int64_t)(now.tv_sec - req->timestamps.request_begin_at.tv_sec) * 1000000 +
         (now.tv_usec - req->timestamps.request_begin_at.tv_usec);
    return us > 0 ? (uint64_t)us : 0;
}

/* Counts and logs an answer on its way out. */
static void account(h2o_req_t *req, const oe_answer *ans, const char *request_id, unsigned endpoint)
{
    oe_server *srv = worker_of(req)->srv;
    uint64_t us = elapsed_us(req);

    metrics_request(&srv->metrics, endpoint, ans->status, us);
    if (ans->outcome != NULL)
        metrics_execution(&srv->metrics, ans->outcome, ans->error_code);
    if (srv->cfg->access_log)
        oe_log_request(&worker_of(req)->access_log, req->method.base, req->method.len,
                       req->path_normalized.base, req->path_normalized.len, ans->status, request_id,
                       us, ans->outcome);
}

/* Renders an answer.  allow: the Allow header of a 405, else NULL. */
static void send_answer(h2o_req_t *req, const oe_answer *ans, const char *request_id,
                        const char *allow, unsigned endpoint)
{
    char *id = h2o_mem_alloc_pool(&req->pool, strlen(request_id) + 1);

    account(req, ans, request_id, endpoint);

    memcpy(id, request_id, strlen(request_id) + 1);
    req->res.status = ans->status;
    req->res.reason = reason_phrase(ans->status);
    req->res.content_length = ans->body_len;
    add_header(req, H2O_TOKEN_CONTENT_TYPE,
               ans->content_type ? ans->content_type : "application/json");
    add_header_str(req, "x-request-id", id);
    if (ans->replayed)
        add_header_str(req, "idempotent-replayed", "true");
    if (ans->status == 409 || ans->status == 503)
        add_header(req, H2O_TOKEN_RETRY_AFTER, "1");
    if (allow != NULL)
        add_header(req, H2O_TOKEN_ALLOW, allow);
    h2o_send_inline(req, ans->body ? ans->body : "", ans->body_len);
    guard_watch_write(req);
}

static void send_error(h2o_req_t *req, int status, const char *code, const char *detail,
                       const char *request_id, const char *allow, unsigned endpoint)
{
    oe_answer ans = {0};
    oe_error err;

    oe_error_set(&err, status, code, "%s", detail);
    answer_error(&ans, &err);
    send_answer(req, &ans, request_id, allow, endpoint);
    answer_free(&ans);
}

/* SPEC 2: a client's X-Request-Id of 1-128 characters from [A-Za-z0-9._:-]
 * is echoed; anything else is replaced by a fresh uuid4. */
static int request_id_acceptable(const char *s, size_t len)
{
    size_t i;

    if (len == 0 || len > REQUEST_ID_MAX)
        return 0;
    for (i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

static void take_request_id(h2o_req_t *req, char out[REQUEST_ID_MAX + 1])
{
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);

    if (i != -1) {
        h2o_iovec_t v = req->headers.entries[i].value;
        /* h2o strips the leading whitespace of a field value; the trailing
         * is not part of it either (RFC 9110 5.5). */
        while (v.len > 0 && (v.base[v.len - 1] == ' ' || v.base[v.len - 1] == '\t'))
            v.len--;
        if (request_id_acceptable(v.base, v.len)) {
            memcpy(out, v.base, v.len);
            out[v.len] = '\0';
            return;
        }
    }
    oe_uuid4(out);
}

/* ---- GET routes --------------------------------------------------------- */

static void answer_buf(oe_answer *ans, int status, oe_buf *b)
{
    if (b->failed) {
        oe_error err;
        oe_buf_free(b);
        oe_error_set(&err, 503, "busy", "Out of memory");
        answer_error(ans, &err);
        return;
    }
    answer_take(ans, status, b);
}

static void handle_root(oe_server *srv, h2o_req_t *req, const char *rid, oe_answer *ans)
{
    oe_buf b;

    (void)srv, (void)req, (void)rid;
    oe_buf_init(&b, SMALL_BODY_MAX);
    oe_buf_puts(&b,
                "{\"service\":\"OpenExec\",\"status\":\"running\",\"version\":\"" OPENEXEC_VERSION
                "\"}");
    answer_buf(ans, 200, &b);
}

static void append_string_array(oe_buf *b, const char *const *items, size_t n)
{
    size_t i;

    oe_buf_putc(b, '[');
    for (i = 0; i < n; i++) {
        if (i > 0)
            oe_buf_putc(b, ',');
        canon_append_string(b, items[i], strlen(items[i]));
    }
    oe_buf_putc(b, ']');
}

static void handle_health(oe_server *srv, h2o_req_t *req, const char *rid, oe_answer *ans)
{
    const oe_config *cfg = srv->cfg;
    int writable = store_writable(srv->st);
    const char *const *names;
    size_t count;
    oe_buf b;

    (void)req, (void)rid;
    oe_buf_init(&b, SMALL_BODY_MAX);
    oe_buf_printf(&b,
                  "{\"status\":\"%s\",\"exec_mode\":\"%s\",\"signature_verification\":\"%s\","
                  "\"restriction\":\"%s\",",
                  writable ? "healthy" : "degraded", config_mode_name(cfg->mode),
                  cfg->mode == OE_MODE_CLAWSHIELD ? "enabled" : "disabled",
                  cfg->allowed_actions ? "restricted" : "open");
    if (cfg->allowed_actions) {
        oe_buf_puts(&b, "\"allow_list\":");
        append_string_array(&b, (const char *const *)cfg->allowed_actions, cfg->allowed_count);
    } else {
        oe_buf_puts(&b, "\"warning\":\"No execution allow-list configured\"");
    }
    names = actions_names(srv->actions, &count);
    oe_buf_puts(&b, ",\"actions\":");
    append_string_array(&b, names, count);
    oe_buf_putc(&b, '}');
    answer_buf(ans, writable ? 200 : 503, &b);
}

static void handle_ready(oe_server *srv, h2o_req_t *req, const char *rid, oe_answer *ans)
{
    const char *reason = NULL;
    oe_buf b;

    (void)req, (void)rid;
    if (srv->cfg->key_problem != NULL)
        reason = srv->cfg->key_problem;
    else if (!store_writable(srv->st))
        reason = "store unavailable: the database cannot be written";
    oe_buf_init(&b, SMALL_BODY_MAX);
    if (reason == NULL) {
        oe_buf_puts(&b, "{\"ready\":true}");
    } else {
        oe_buf_puts(&b, "{\"ready\":false,\"reason\":");
        canon_append_string(&b, reason, strlen(reason));
        oe_buf_putc(&b, '}');
    }
    answer_buf(ans, reason ? 503 : 200, &b);
}

static void handle_version(oe_server *srv, h2o_req_t *req, const char *rid, oe_answer *ans)
{
    char stamp[32];
    oe_buf b;

    (void)srv, (void)req, (void)rid;
    approval_format_time(oe_now_us(), stamp);
    oe_buf_init(&b, SMALL_BODY_MAX);
    oe_buf_printf(&b, "{\"version\":\"%s\",\"timestamp\":\"%s\"}", OPENEXEC_VERSION, stamp);
    answer_buf(ans, 200, &b);
}

/* ---- the receipt log ----------------------------------------------------- */

static oe_worker *worker_of(h2o_req_t *req)
{
    return container_of(req->conn->ctx, oe_worker, ctx);
}

static log_api_ctx log_ctx(oe_server *srv, h2o_req_t *req)
{
    log_api_ctx c = {srv->st, worker_of(req)->reader, &srv->receipt_key};
    return c;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The decoded value of query parameter `name` (pool memory), or NULL.  A
 * bare `name` without "=" has the empty value, as in URLSearchParams: so
 * `?limit` is refused like `?limit=`, not taken for no limit at all. */
static const char *query_param(h2o_req_t *req, const char *name)
{
    size_t nlen = strlen(name), i, j;
    const char *q, *end;

    if (req->query_at == SIZE_MAX)
        return NULL;
    q = req->path.base + req->query_at + 1;
    end = req->path.base + req->path.len;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - q) >= nlen && memcmp(q, name, nlen) == 0 &&
            (q + nlen == stop || q[nlen] == '=')) {
            const char *v = q + nlen == stop ? stop : q + nlen + 1;
            size_t vlen = (size_t)(stop - v);
            char *out = h2o_mem_alloc_pool(&req->pool, vlen + 1);
            for (i = 0, j = 0; i < vlen; i++) {
                if (v[i] == '%' && i + 2 < vlen && hex_value(v[i + 1]) >= 0 &&
                    hex_value(v[i + 2]) >= 0) {
                    out[j++] = (char)(hex_value(v[i + 1]) * 16 + hex_value(v[i + 2]));
                    i += 2;
                } else {
                    out[j++] = v[i] == '+' ? ' ' : v[i];
                }
            }
            out[j] = '\0';
            return out;
        }
        q = stop + 1;
    }
    return NULL;
}

static void handle_receipts_verify(oe_server *srv, h2o_req_t *req, const char *rid, oe_answer *ans)
{
    log_api_ctx c = log_ctx(srv, req);

    (void)rid;
    receipt_verify_request(req->entity.base, req->entity.len, log_api_key_lookup, &c, ans);
}

static void handle_checkpoint(oe_server *srv, h2o_req_t *req, const char *rid, oe_answer *ans)
{
    log_api_ctx c = log_ctx(srv, req);

    (void)rid;
    log_api_checkpoint(&c, query_param(req, "log"), ans);
}

static void handle_export(oe_server *srv, h2o_req_t *req, const char *rid, oe_answer *ans)
{
    log_api_ctx c = log_ctx(srv, req);

    (void)rid;
    log_api_export(&c, query_param(req, "log"), query_param(req, "from"), query_param(req, "limit"),
                   ans);
}

static void handle_consistency(oe_server *srv, h2o_req_t *req, const char *rid, oe_answer *ans)
{
    log_api_ctx c = log_ctx(srv, req);

    (void)rid;
    log_api_consistency(&c, query_param(req, "log"), query_param(req, "old"),
                        query_param(req, "new"), ans);
}

static void handle_key(oe_server *srv, h2o_req_t *req, const char *rid, oe_answer *ans)
{
    log_api_ctx c = log_ctx(srv, req);

    (void)rid;
    log_api_key(&c, ans);
}

static void handle_metrics(oe_server *srv, h2o_req_t *req, const char *rid, oe_answer *ans)
{
    long long open = 0;
    int i;
    oe_buf b;

    (void)req, (void)rid;
    for (i = 0; i < srv->nworkers; i++)
        open += (long long)atomic_load_explicit(&srv->workers[i].connections, memory_order_relaxed);
    atomic_store_explicit(&srv->metrics.open_connections, open, memory_order_relaxed);
    oe_buf_init(&b, 1024 * 1024);
    metrics_render(&srv->metrics, store_writable(srv->st), &b);
    answer_buf(ans, 200, &b);
    ans->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

/* Appends JSON text without the whitespace between its tokens (SPEC 2:
 * answers are compact), keeping every string byte for byte and the keys
 * in their order.  The text is known to be valid JSON (the build checks). */
static void append_compact_json(oe_buf *b, const char *s, size_t len)
{
    size_t i, start = 0;
    int in_string = 0;

    for (i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            oe_buf_append(b, s + start, i - start);
            start = i + 1;
        }
    }
    oe_buf_append(b, s + start, len - start);
}

static void handle_openapi(oe_server *srv, h2o_req_t *req, const char *rid, oe_answer *ans)
{
    oe_buf b;

    (void)srv, (void)req, (void)rid;
    oe_buf_init(&b, oe_openapi_json_len + 1);
    append_compact_json(&b, oe_openapi_json, oe_openapi_json_len);
    answer_buf(ans, 200, &b);
}

#define RECEIPT_PREFIX "/receipts/"

static void handle_receipt_by_id(oe_server *srv, h2o_req_t *req, const char *rid, oe_answer *ans)
{
    log_api_ctx c = log_ctx(srv, req);
    size_t plen = sizeof(RECEIPT_PREFIX) - 1;
    size_t idlen = req->path_normalized.len - plen;
    char *id = h2o_mem_alloc_pool(&req->pool, idlen + 1);

    (void)rid;
    memcpy(id, req->path_normalized.base + plen, idlen);
    id[idlen] = '\0';
    log_api_receipt(&c, id, ans);
}

/* ---- POST /execute ------------------------------------------------------ */

static void on_request_disposed(void *arg)
{
    request_guard *guard = arg;

    if (guard->pending != NULL)
        guard->pending->req = NULL;
}

/* Writer thread: the commit is durable; wake the owning loop. */
static void on_execute_committed(void *cookie)
{
    pending_request *p = cookie;

    h2o_multithread_send_message(&p->worker->completions, &p->msg);
}

static void on_completions(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    oe_worker *w = container_of(receiver, oe_worker, completions);

    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *msg =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        pending_request *p = container_of(msg, pending_request, msg);
        oe_answer ans = {0};

        h2o_linklist_unlink(&msg->link);
        execute_finish(p->job, w->reader, &ans);
        if (p->req != NULL) {
            p->guard->pending = NULL;
            send_answer(p->req, &ans, p->request_id, NULL, p->endpoint);
        }
        answer_free(&ans);
        free(p);
        w->pending--;
    }
}

/* Returns 1 when the answer was deferred to the writer. */
static int start_execute(oe_worker *w, h2o_req_t *req, const char *rid, unsigned endpoint,
                         oe_answer *ans)
{
    pending_request *p = calloc(1, sizeof(*p));
    oe_error err;
    int rc;

    if (p == NULL) {
        oe_error_set(&err, 503, "busy", "Out of memory");
        answer_error(ans, &err);
        return 0;
    }
    p->worker = w;
    p->req = req;
    p->endpoint = endpoint;
    oe_strlcpy(p->request_id, rid, sizeof(p->request_id));
    /* Count before submitting: the completion may arrive on this loop
     * before execute_begin even returns. */
    w->pending++;
    rc = execute_begin(w->srv->env, w->reader, req->entity.base, req->entity.len,
                       on_execute_committed, p, &p->job, ans);
    if (rc != EXECUTE_PENDING) {
        w->pending--;
        free(p);
        return 0;
    }
    /* The completion is only delivered by this loop's next iteration, so
     * the guard is in place before anything can use it. */
    p->guard = h2o_mem_alloc_shared(&req->pool, sizeof(*p->guard), on_request_disposed);
    p->guard->pending = p;
    return 1;
}

/* ---- routing ------------------------------------------------------------ */

static const route routes[] = {
    {"/", "GET", handle_root, 0},
    {"/health", "GET", handle_health, 0},
    {"/ready", "GET", handle_ready, 0},
    {"/version", "GET", handle_version, 0},
    {"/execute", "POST", NULL, 1},
    {"/receipts/verify", "POST", handle_receipts_verify, 0},
    {"/receipts/key", "GET", handle_key, 0},
    {"/receipts", "GET", handle_export, 0},
    {"/checkpoint", "GET", handle_checkpoint, 0},
    {"/log/consistency", "GET", handle_consistency, 0},
    {"/metrics", "GET", handle_metrics, 0},
    {"/openapi.json", "GET", handle_openapi, 0},
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))
#define ENDPOINT_RECEIPT_BY_ID ((unsigned)NROUTES)

static unsigned endpoint_other(void)
{
    return (unsigned)NROUTES + 1;
}

static void register_endpoints(oe_metrics *m)
{
    size_t i;

    for (i = 0; i < NROUTES; i++)
        metrics_endpoint(m, routes[i].path);
    metrics_endpoint(m, "/receipts/{exec_id}");
    metrics_endpoint(m, "other");
}

/* /receipts/{exec_id}: any other path under /receipts/. */
static const route receipt_by_id_route = {RECEIPT_PREFIX, "GET", handle_receipt_by_id, 0};

/* What the client sent before its body, near enough: path and headers. */
static size_t header_bytes(const h2o_req_t *req)
{
    size_t n = req->path.len + req->authority.len + req->method.len, i;

    for (i = 0; i < req->headers.size; i++)
        n += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    return n;
}

static int method_is(const h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

/* A request target in absolute-form ("GET http://host/health"), which
 * RFC 9112 3.2.2 says a server must accept: this h2o takes it for a path
 * ("/http://host/health").  Routes on the path that follows the authority;
 * the authority itself names nothing here. */
static void accept_absolute_form(h2o_req_t *req)
{
    const char *p = req->path.base, *end = p + req->path.len, *rest;
    size_t skip;

    if (req->path.len >= 7 && strncasecmp(p, "http://", 7) == 0)
        skip = 7;
    else if (req->path.len >= 8 && strncasecmp(p, "https://", 8) == 0)
        skip = 8;
    else
        return;
    for (rest = p + skip; rest < end && *rest != '/' && *rest != '?'; rest++)
        ;
    if (rest == end || *rest == '?') { /* "http://host" or "http://host?q": path "/" */
        size_t n = (size_t)(end - rest);
        char *buf = h2o_mem_alloc_pool(&req->pool, n + 1);
        buf[0] = '/';
        memcpy(buf + 1, rest, n);
        req->path = h2o_iovec_init(buf, n + 1);
    } else {
        req->path = h2o_iovec_init(rest, (size_t)(end - rest));
    }
    req->path_normalized = h2o_url_normalize_path(&req->pool, req->path.base, req->path.len,
                                                  &req->query_at, &req->norm_indexes);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    oe_server *srv = ((oe_handler *)self)->srv;
    oe_worker *w = container_of(req->conn->ctx, oe_worker, ctx);
    char rid[REQUEST_ID_MAX + 1];
    const route *r = NULL;
    oe_answer ans = {0};
    unsigned endpoint;
    size_t i;

    take_request_id(req, rid);
    accept_absolute_form(req);

    /* Request smuggling shape (SPEC 7): refuse and close, whatever the path. */
    if (h2o_find_header_by_str(&req->headers, H2O_STRLIT(FRAMING_MARKER), -1) != -1 ||
        h2o_find_header_by_str(&req->headers, H2O_STRLIT(FRAMING_MARKER_CL), -1) != -1) {
        req->http1_is_persistent = 0;
        send_error(req, 400, "bad_request",
                   "Ambiguous framing: Content-Length with Transfer-Encoding, or two "
                   "different Content-Lengths",
                   rid, NULL, endpoint_other());
        return 0;
    }
    if (req->entity.base != NULL && req->entity.len > MAX_BODY_BYTES) {
        send_error(req, 413, "body_too_large", BODY_TOO_LARGE_DETAIL, rid, NULL, endpoint_other());
        return 0;
    }
    if (header_bytes(req) > HEADERS_MAX) {
        req->http1_is_persistent = 0;
        send_error(req, 431, "headers_too_large", "Request line and headers exceed 16384 bytes",
                   rid, NULL, endpoint_other());
        return 0;
    }

    for (i = 0; i < NROUTES; i++) {
        if (h2o_memis(req->path_normalized.base, req->path_normalized.len, routes[i].path,
                      strlen(routes[i].path))) {
            r = &routes[i];
            break;
        }
    }
    if (r == NULL && req->path_normalized.len > sizeof(RECEIPT_PREFIX) - 1 &&
        memcmp(req->path_normalized.base, RECEIPT_PREFIX, sizeof(RECEIPT_PREFIX) - 1) == 0 &&
        memchr(req->path_normalized.base + sizeof(RECEIPT_PREFIX) - 1, '/',
               req->path_normalized.len - (sizeof(RECEIPT_PREFIX) - 1)) == NULL)
        r = &receipt_by_id_route;
    if (r == NULL) {
        send_error(req, 404, "not_found", "Not Found", rid, NULL, endpoint_other());
        return 0;
    }
    endpoint = r == &receipt_by_id_route ? ENDPOINT_RECEIPT_BY_ID : (unsigned)(r - routes);
    if (strcmp(r->method, "GET") == 0 ? !(method_is(req, "GET") || method_is(req, "HEAD"))
                                      : !method_is(req, r->method)) {
        send_error(req, 405, "method_not_allowed", "Method Not Allowed", rid,
                   strcmp(r->method, "GET") == 0 ? "GET, HEAD" : r->method, endpoint);
        return 0;
    }
    if (r->async) {
        if (start_execute(w, req, rid, endpoint, &ans))
            return 0;
    } else {
        r->handle(srv, req, rid, &ans);
    }
    send_answer(req, &ans, rid, NULL, endpoint);
    answer_free(&ans);
    return 0;
}

/* ---- h2o's own 413 as JSON ---------------------------------------------- */

typedef struct replace_body_ostream {
    h2o_ostream_t super;
    h2o_iovec_t body;
} replace_body_ostream;

static void replace_body_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                              h2o_send_state_t state)
{
    replace_body_ostream *o = (replace_body_ostream *)self;

    (void)bufs, (void)bufcnt;
    if (h2o_send_state_is_in_progress(state)) {
        h2o_ostream_send_next(&o->super, req, NULL, 0, state);
        return;
    }
    h2o_ostream_send_next(&o->super, req, &o->body, method_is(req, "HEAD") ? 0 : 1, state);
}

static void on_setup_error_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    static const char body[] = "{\"detail\":\"" BODY_TOO_LARGE_DETAIL "\","
                               "\"error\":\"body_too_large\"}";
    replace_body_ostream *o;
    char *rid;
    size_t i;

    (void)self;
    if (req->res.status != 413)
        goto next;
    for (i = 0; i < req->res.headers.size; i++) {
        if (req->res.headers.entries[i].name == &H2O_TOKEN_CONTENT_TYPE->buf)
            req->res.headers.entries[i].value = h2o_iovec_init(H2O_STRLIT("application/json"));
    }
    rid = h2o_mem_alloc_pool(&req->pool, REQUEST_ID_MAX + 1);
    take_request_id(req, rid);
    add_header_str(req, "x-request-id", rid);
    req->res.reason = reason_phrase(413);
    req->res.content_length = sizeof(body) - 1;
    o = (replace_body_ostream *)h2o_add_ostream(req, sizeof(*o), slot);
    o->super.do_send = replace_body_send;
    o->body = h2o_iovec_init(body, sizeof(body) - 1);
    slot = &o->super.next;
next:
    h2o_setup_next_ostream(req, slot);
}

/* ---- event loops --------------------------------------------------------- */

/* ---- framing guard: Content-Length together with Transfer-Encoding -------
 *
 * h2o 2.2 frames such a request by Transfer-Encoding and keeps neither
 * header in req->headers, so the handler cannot see the conflict.  The
 * guard sits between the socket and h2o's HTTP/1 reader: before h2o parses,
 * it looks at every complete header block in the input, and when one holds
 * both headers it renames Transfer-Encoding in place (same length) to
 * FRAMING_MARKER.  h2o then frames by Content-Length and passes the marker
 * through as an ordinary header; on_req answers 400 and closes.  Valid JSON
 * bodies cannot contain a CRLF-separated header line, so rewriting inside a
 * body can only touch a body that would be refused anyway.
 *
 * The guard's state lives in the socket's on_close slot, which h2o's server
 * side leaves unused; it also counts the loop's open connections. */

struct conn_guard {
    oe_worker *worker;
    h2o_socket_t *sock;
    h2o_timeout_entry_t send_deadline; /* linked while an answer is being written */
    h2o_socket_cb h2o_read;            /* h2o's HTTP/1 read callback */
    h2o_socket_cb h2o_write;           /* h2o's callback for the write in flight */
    int closed;
    conn_guard *next_dead;
};

static int line_has_name(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);

    return len > n && line[n] == ':' && strncasecmp(line, name, n) == 0;
}

/* Two "Content-Length:" lines carry the same value (blanks ignored). */
static int same_header_value(const char *a, const char *b)
{
    a = strchr(a, ':') + 1;
    b = strchr(b, ':') + 1;
    for (;;) {
        while (*a == ' ' || *a == '\t')
            a++;
        while (*b == ' ' || *b == '\t')
            b++;
        if (*a == '\r' || *a == '\n' || *b == '\r' || *b == '\n')
            return (*a == '\r' || *a == '\n') && (*b == '\r' || *b == '\n');
        if (*a != *b)
            return 0;
        a++;
        b++;
    }
}

/* The end of the header block starting at p: just past its blank line
 * ("\n\n" or "\n\r\n", since HTTP/1 parsers accept bare LF line ends), or
 * NULL when the block is not complete yet. */
static char *header_block_end(char *p, char *end)
{
    for (; p < end; p++) {
        if (*p != '\n')
            continue;
        if (p + 1 < end && p[1] == '\n')
            return p + 2;
        if (p + 2 < end && p[1] == '\r' && p[2] == '\n')
            return p + 3;
    }
    return NULL;
}

static void neutralise_conflicting_framing(h2o_buffer_t *input)
{
    char *p = input->bytes, *end = input->bytes + input->size;

    while (p < end) {
        char *block_end = header_block_end(p, end), *line, *te = NULL, *cl = NULL;
        int conflict = 0;

        if (block_end == NULL)
            return;
        for (line = p; line < block_end;) {
            char *eol = memchr(line, '\n', (size_t)(block_end - line));
            size_t len = (size_t)(eol - line);
            if (len > 0 && line[len - 1] == '\r')
                len--;
            if (line_has_name(line, len, "content-length")) {
                /* A second Content-Length with another value is as
                 * ambiguous as Content-Length with Transfer-Encoding. */
                if (cl != NULL && !same_header_value(cl, line))
                    conflict = 1, te = line;
                cl = line;
            } else if (line_has_name(line, len, "transfer-encoding") && te == NULL) {
                te = line;
            }
            line = eol + 1;
        }
        if (te != NULL && (conflict || cl != NULL)) {
            if (conflict) /* rename the second Content-Length */
                memcpy(te, FRAMING_MARKER_CL, sizeof(FRAMING_MARKER_CL) - 1);
            else
                memcpy(te, FRAMING_MARKER, sizeof(FRAMING_MARKER) - 1);
        }
        p = block_end;
    }
}

static void guard_on_read(h2o_socket_t *sock, const char *err)
{
    conn_guard *g = sock->on_close.data;

    if (err == NULL && sock->input->size > 0)
        neutralise_conflicting_framing(sock->input);
    g->h2o_read(sock, err);
}

/* h2o re-arms its own read callback when it finishes sending an answer;
 * put the guard back in front of it. */
static void guard_rearm(h2o_socket_t *sock)
{
    conn_guard *g = sock->on_close.data;

    if (g != NULL && sock->_cb.read == g->h2o_read)
        sock->_cb.read = guard_on_read;
}

static void guard_on_write(h2o_socket_t *sock, const char *err)
{
    conn_guard *g = sock->on_close.data;

    if (h2o_timeout_is_linked(&g->send_deadline))
        h2o_timeout_unlink(&g->send_deadline);
    g->h2o_write(sock, err);
    /* h2o may have closed the socket in its callback; the guard outlives
     * it until the loop iteration ends (free_dead_guards), so ask it. */
    if (!g->closed)
        guard_rearm(sock);
}

/* Called right after an answer was handed to h2o. */
static void guard_watch_write(h2o_req_t *req)
{
    h2o_socket_t *sock;
    conn_guard *g;

    if (req->version >= 0x200 || req->conn->callbacks->get_socket == NULL)
        return;
    sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL || (g = sock->on_close.data) == NULL)
        return;
    if (sock->_cb.write != NULL && sock->_cb.write != guard_on_write) {
        g->h2o_write = sock->_cb.write;
        sock->_cb.write = guard_on_write;
        if (!h2o_timeout_is_linked(&g->send_deadline))
            h2o_timeout_link(g->worker->ctx.loop, &g->worker->send_timeout, &g->send_deadline);
    }
}

/* A client that does not take its answer within SEND_TIMEOUT_MS: shut the
 * socket down.  h2o then sees its pending write fail and closes the
 * connection through its own error path (closing it under h2o would not
 * be safe). */
static void on_send_deadline(h2o_timeout_entry_t *entry)
{
    conn_guard *g = container_of(entry, conn_guard, send_deadline);

    if (!g->closed)
        shutdown(h2o_socket_get_fd(g->sock), SHUT_RDWR);
}

static void guard_on_close(void *data)
{
    conn_guard *g = data;

    if (h2o_timeout_is_linked(&g->send_deadline))
        h2o_timeout_unlink(&g->send_deadline);
    g->closed = 1;
    atomic_fetch_sub_explicit(&g->worker->connections, 1, memory_order_relaxed);
    g->next_dead = g->worker->dead_guards;
    g->worker->dead_guards = g;
}

static void free_dead_guards(oe_worker *w)
{
    while (w->dead_guards != NULL) {
        conn_guard *g = w->dead_guards;
        w->dead_guards = g->next_dead;
        free(g);
    }
}

static void on_accept(h2o_socket_t *listener, const char *err);

static void resume_accepting(h2o_timeout_entry_t *entry)
{
    oe_worker *w = container_of(entry, oe_worker, accept_resume);

    if (w->listener != NULL && !w->draining)
        h2o_socket_read_start(w->listener, on_accept);
}

/* Out of descriptors (or connections): the listener stays readable, and
 * retrying at once would spin a core.  Stop accepting for a moment; the
 * kernel's backlog holds new clients meanwhile. */
static void pause_accepting(oe_worker *w)
{
    if (h2o_timeout_is_linked(&w->accept_resume))
        return;
    h2o_socket_read_stop(w->listener);
    h2o_timeout_link(w->ctx.loop, &w->accept_pause, &w->accept_resume);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    oe_worker *w = listener->data;
    h2o_socket_t *sock;
    conn_guard *g;

    if (err != NULL)
        return;
    if (atomic_load_explicit(&w->connections, memory_order_relaxed) >= MAX_CONNECTIONS_PER_LOOP) {
        pause_accepting(w);
        return;
    }
    if ((sock = h2o_evloop_socket_accept(listener)) == NULL) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
            pause_accepting(w);
        return;
    }
    if ((g = calloc(1, sizeof(*g))) == NULL) {
        h2o_socket_close(sock);
        return;
    }
    g->worker = w;
    g->sock = sock;
    g->send_deadline.cb = on_send_deadline;
    atomic_fetch_add_explicit(&w->connections, 1, memory_order_relaxed);
    sock->on_close.cb = guard_on_close;
    sock->on_close.data = g;
    h2o_accept(&w->accept_ctx, sock);
    g->h2o_read = sock->_cb.read;
    guard_rearm(sock);
}

static void close_listener(oe_worker *w)
{
    if (h2o_timeout_is_linked(&w->accept_resume))
        h2o_timeout_unlink(&w->accept_resume);
    if (w->listener != NULL) {
        h2o_socket_read_stop(w->listener);
        h2o_socket_close(w->listener);
        w->listener = NULL;
    }
}

static void on_control(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    oe_worker *w = container_of(receiver, oe_worker, control);

    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *msg =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&msg->link);
        free(msg);
    }
    w->draining = 1;
    close_listener(w);
    h2o_context_request_shutdown(&w->ctx);
}

static int worker_init(oe_server *srv, oe_worker *w, h2o_hostconf_t **hosts, char *why,
                       size_t why_len);
static void worker_dispose(oe_worker *w);

/* Tells server_run how this worker's start went. */
static void report_start(oe_server *srv, int ok)
{
    pthread_mutex_lock(&srv->start_lock);
    if (ok)
        srv->started_ok++;
    else
        srv->started_failed++;
    pthread_cond_signal(&srv->start_cond);
    pthread_mutex_unlock(&srv->start_lock);
}

/* Threads carry names, for top -H, perf and gdb. */
static void name_loop_thread(pthread_t thread, int index)
{
    char name[32];

    snprintf(name, sizeof(name), "oe-loop-%d", index);
    name[15] = '\0'; /* the kernel's limit */
    pthread_setname_np(thread, name);
}

/* Each worker sets up its h2o context and loop on its own thread: h2o 2.2
 * keeps its buffer allocators per thread, and a loop built on one thread
 * but run on another frees into the wrong one (seen as use-after-free under
 * load).  Everything the loop owns is also disposed here. */
static void *worker_main(void *arg)
{
    oe_worker *w = arg;
    uint64_t flush_until = 0;
    char why[512];

    if (worker_init(w->srv, w, w->srv->globalconf.hosts, why, sizeof(why)) != 0) {
        oe_log("error", "cannot start worker: %s", why);
        worker_dispose(w);
        report_start(w->srv, 0);
        return NULL;
    }
    w->running = 1;
    report_start(w->srv, 1);
    for (;;) {
        h2o_evloop_run(w->ctx.loop, w->draining ? 50 : INT32_MAX);
        oe_log_flush(&w->access_log); /* before the loop may sleep */
        free_dead_guards(w);
        if (!w->draining || w->pending > 0)
            continue;
        /* Nothing waits for the store any more; give the last answers a
         * moment to leave the socket buffers, then stop. */
        if (flush_until == 0)
            flush_until = oe_monotonic_ms() + DRAIN_FLUSH_MS;
        else if (oe_monotonic_ms() >= flush_until)
            break;
    }
    worker_dispose(w);
    return NULL;
}

static int worker_init(oe_server *srv, oe_worker *w, h2o_hostconf_t **hosts, char *why,
                       size_t why_len)
{
    int fd;

    w->srv = srv;
    oe_buf_init(&w->access_log, PIPE_BUF); /* oe_log_request flushes before that */
    h2o_context_init(&w->ctx, h2o_evloop_create(), &srv->globalconf);
    w->accept_ctx.ctx = &w->ctx;
    w->accept_ctx.hosts = hosts;
    w->queue = h2o_multithread_create_queue(w->ctx.loop);
    h2o_multithread_register_receiver(w->queue, &w->completions, on_completions);
    h2o_multithread_register_receiver(w->queue, &w->control, on_control);
    w->reader = store_reader_open(srv->st, why, why_len);
    if (w->reader == NULL)
        return -1;
    if ((fd = dup(srv->listen_fd)) == -1) {
        snprintf(why, why_len, "dup: %s", strerror(errno));
        return -1;
    }
    h2o_timeout_init(w->ctx.loop, &w->accept_pause, ACCEPT_PAUSE_MS);
    h2o_timeout_init(w->ctx.loop, &w->send_timeout, SEND_TIMEOUT_MS);
    w->accept_resume.cb = resume_accepting;
    w->listener = h2o_evloop_socket_create(w->ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    w->listener->data = w;
    h2o_socket_read_start(w->listener, on_accept);
    return 0;
}

static void worker_dispose(oe_worker *w)
{
    oe_log_flush(&w->access_log);
    oe_buf_free(&w->access_log);
    close_listener(w);
    if (w->reader) {
        store_reader_close(w->reader);
        w->reader = NULL;
    }
    if (w->queue) {
        h2o_multithread_unregister_receiver(w->queue, &w->completions);
        h2o_multithread_unregister_receiver(w->queue, &w->control);
    }
    /* h2o 2.2 cannot fully dispose a context whose loop still holds sockets
     * of closed connections; the process is about to exit, so leave them. */
}

static int open_listener(const oe_config *cfg, char *why, size_t why_len)
{
    struct addrinfo hints = {0}, *res = NULL;
    char port[8];
    int fd = -1, on = 1, rc;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%d", cfg->port);
    if ((rc = getaddrinfo(cfg->host, port, &hints, &res)) != 0) {
        snprintf(why, why_len, "cannot resolve host '%s': %s", cfg->host, gai_strerror(rc));
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        snprintf(why, why_len, "cannot listen on %s:%d: %s", cfg->host, cfg->port, strerror(errno));
        if (fd != -1)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void setup_h2o(oe_server *srv)
{
    h2o_hostconf_t *host;
    h2o_pathconf_t *path;
    oe_handler *handler;

    h2o_config_init(&srv->globalconf);
    srv->globalconf.max_request_entity_size = MAX_BODY_BYTES + 1; /* see "Limits" */
    srv->globalconf.http1.req_timeout = REQUEST_TIMEOUT_MS;
    srv->globalconf.http1.upgrade_to_http2 = 0;
    srv->globalconf.http2.idle_timeout = REQUEST_TIMEOUT_MS;
    srv->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("openexec"));
    host = h2o_config_register_host(&srv->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    path = h2o_config_register_path(host, "/", 0);
    handler = (oe_handler *)h2o_create_handler(path, sizeof(*handler));
    handler->super.on_req = on_req;
    handler->srv = srv;
    /* h2o binds its early errors (413 before any handler ran) to the
     * fallback path, so that is where the rewriting filter belongs. */
    h2o_create_filter(&host->fallback_path, sizeof(h2o_filter_t))->on_setup_ostream =
        on_setup_error_ostream;
}

static void wait_for_signal(void)
{
    sigset_t set;
    int sig;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigwait(&set, &sig);
    oe_log("info", "received %s: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void request_drain(oe_worker *w)
{
    h2o_multithread_message_t *msg = calloc(1, sizeof(*msg));

    if (msg != NULL)
        h2o_multithread_send_message(&w->control, msg);
}

int server_run(const oe_config *cfg)
{
    oe_server srv = {0};
    char why[512] = "";
    sigset_t set;
    int i, started = 0, loaded, rc = 1;

    srv.cfg = cfg;
    srv.listen_fd = -1;
    pthread_mutex_init(&srv.start_lock, NULL);
    pthread_cond_init(&srv.start_cond, NULL);
    metrics_init(&srv.metrics);
    register_endpoints(&srv.metrics);
    /* Block the stop signals in every thread; the main thread takes them
     * with sigwait.  Writes to closed sockets must not kill us. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if ((loaded = instance_load(cfg, &srv.receipt_key, srv.origin, why, sizeof(why))) != 0) {
        oe_log("error", "%s", why);
        return loaded == -2 ? 2 : 1; /* a bad key file is configuration */
    }
    {
        store_log_identity id = {srv.origin, &srv.receipt_key};
        if (store_open(cfg, &id, &srv.st, why, sizeof(why)) != 0) {
            oe_log("error", "cannot open the store: %s", why);
            keys_private_wipe(&srv.receipt_key);
            return 1;
        }
    }
    store_observe_commits(srv.st, &srv.metrics.commit);
    if (actions_registry_load(cfg, &srv.actions, why, sizeof(why)) != 0) {
        oe_log("error", "%s", why);
        goto out;
    }
    if (execute_env_create(cfg, srv.st, srv.actions, &srv.env, why, sizeof(why)) != 0) {
        oe_log("error", "%s", why);
        goto out;
    }
    if ((srv.listen_fd = open_listener(cfg, why, sizeof(why))) == -1) {
        oe_log("error", "%s", why);
        goto out;
    }
    setup_h2o(&srv);
    srv.nworkers = cfg->threads;
    srv.workers = calloc((size_t)srv.nworkers, sizeof(*srv.workers));
    if (srv.workers == NULL)
        goto out;
    for (started = 0; started < srv.nworkers; started++) {
        srv.workers[started].srv = &srv;
        if (pthread_create(&srv.workers[started].thread, NULL, worker_main,
                           &srv.workers[started]) != 0) {
            oe_log("error", "cannot start worker thread");
            break;
        }
        name_loop_thread(srv.workers[started].thread, started);
    }
    pthread_mutex_lock(&srv.start_lock);
    while (srv.started_ok + srv.started_failed < started)
        pthread_cond_wait(&srv.start_cond, &srv.start_lock);
    pthread_mutex_unlock(&srv.start_lock);
    if (started == srv.nworkers && srv.started_failed == 0) {
        oe_log("info", "listening on %s:%d (mode %s, %d event loop%s, log %s)", cfg->host,
               bound_port(srv.listen_fd), config_mode_name(cfg->mode), srv.nworkers,
               srv.nworkers == 1 ? "" : "s", srv.origin);
        wait_for_signal();
        execute_env_stop(srv.env);
        rc = 0;
    }
    for (i = 0; i < started; i++)
        if (srv.workers[i].running)
            request_drain(&srv.workers[i]);
    for (i = 0; i < started; i++)
        pthread_join(srv.workers[i].thread, NULL);

out:
    if (srv.listen_fd != -1)
        close(srv.listen_fd);
    if (srv.env)
        execute_env_destroy(srv.env);
    actions_registry_free(srv.actions);
    store_close(srv.st);
    keys_private_wipe(&srv.receipt_key);
    if (rc == 0)
        oe_log("info", "stopped cleanly");
    free(srv.workers);
    return rc;
}

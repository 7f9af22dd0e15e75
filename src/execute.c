/*
 * execute.c - the /execute pipeline (SPEC 3), one straight line:
 *
 *   parse -> nonce lookup -> allow-list -> registry -> approval -> run ->
 *   record -> answer
 *
 * Every step either passes the request on or ends it with the SPEC's status
 * and code.  Only "record" writes; everything before it is a pure function
 * of the request, the configuration and a read of the store, which is why
 * the lookup can run on the event loop and only the record step waits for
 * the writer thread.
 *
 * Exactly once for built-ins: built-ins are pure, so a request runs its
 * action first and claims the nonce and records the result in one
 * transaction.  Two concurrent requests with one nonce may both compute the
 * (identical, pure) result, but the database takes only the first row; the
 * second learns at commit time that the nonce is taken and is answered as a
 * replay of the first, or as nonce_reused when it asked for something else.
 *
 * Replays are answered from the stored bytes of the first answer (status
 * and body), so they are byte-identical to it, with Idempotent-Replayed.
 */
#include "execute.h"

#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "approval.h"
#include "canon.h"
#include "request.h"
#include "util.h"

#define RESPONSE_MAX (4 * 1024 * 1024)

struct execute_env {
    const oe_config *cfg;
    store *st;
    approval_policy policy;
};

struct execute_job {
    execute_env *env;
    oe_request req;
    char exec_id[37];
    approval_verified approval;
    oe_buf response;
    store_item item;
    void (*done)(void *cookie);
    void *cookie;
};

int execute_env_create(const oe_config *cfg, store *st, execute_env **out, char *why,
                       size_t why_len)
{
    execute_env *env = calloc(1, sizeof(*env));

    (void)why, (void)why_len;
    *out = NULL;
    if (env == NULL)
        return -1;
    env->cfg = cfg;
    env->st = st;
    env->policy.keys = cfg->clawshield_keys.count > 0 ? &cfg->clawshield_keys : NULL;
    env->policy.tenant_id = cfg->tenant_id;
    *out = env;
    return 0;
}

void execute_env_destroy(execute_env *env)
{
    free(env);
}

static void store_unavailable(oe_answer *ans)
{
    oe_error err;

    oe_error_set(&err, 503, "store_unavailable",
                 "Store unavailable: executions cannot be recorded now");
    answer_error(ans, &err);
}

/* The nonce is already taken by `ex` (SPEC 3.2).  approval_id: this
 * request's verified approval when the caller already ran the full checks,
 * else NULL and the replay checks run here. */
static void answer_existing(const execute_env *env, const oe_request *req,
                            const store_execution *ex, const char *approval_id, oe_answer *ans)
{
    approval_verified av = {0};
    oe_error err;

    if (strcmp(ex->action_hash, req->action_hash) != 0) {
        oe_error_set(&err, 422, "nonce_reused", "Nonce already used for a different request");
        goto deny;
    }
    if (env->cfg->mode == OE_MODE_CLAWSHIELD) {
        if (approval_id == NULL) {
            if (approval_check(req->artifact, req->action_hash, &env->policy, oe_now_us(),
                               APPROVAL_REPLAY, &av, &err) != 0)
                goto deny;
            approval_id = av.approval_id;
        }
        if (ex->approval_id == NULL || strcmp(ex->approval_id, approval_id) != 0) {
            oe_error_set(&err, 403, "approval_mismatch",
                         "Approval mismatch: this nonce was executed under another approval");
            goto deny;
        }
    }
    if (ex->state == EXEC_STATE_RUNNING) {
        oe_error_set(&err, 409, "request_in_progress",
                     "A request with this nonce is still in progress");
        goto deny;
    }
    if (ex->state == EXEC_STATE_UNKNOWN) {
        oe_error_set(&err, 409, "outcome_unknown",
                     "Outcome unknown: the server stopped while this nonce's action was running");
        goto deny;
    }
    ans->status = ex->status;
    ans->body = malloc(ex->response_len + 1);
    if (ans->body == NULL) {
        oe_error_set(&err, 503, "busy", "Out of memory");
        goto deny;
    }
    memcpy(ans->body, ex->response, ex->response_len);
    ans->body_len = ex->response_len;
    ans->replayed = 1;
    approval_verified_free(&av);
    return;

deny:
    approval_verified_free(&av);
    answer_error(ans, &err);
}

/* The Compat success body: {"id","action","result","approved","receipt"}. */
static int build_success(execute_job *job, const json_t *result)
{
    oe_buf result_json;
    char receipt[65];
    oe_buf *b = &job->response;

    oe_buf_init(&result_json, RESPONSE_MAX);
    if (canon_append(&result_json, result, CANON_SPACED) != 0 ||
        canon_legacy_receipt(job->exec_id, result_json.data, result_json.len, receipt) != 0) {
        oe_buf_free(&result_json);
        return -1;
    }
    oe_buf_free(&result_json);

    oe_buf_init(b, RESPONSE_MAX);
    oe_buf_printf(b, "{\"id\":\"%s\",\"action\":", job->exec_id);
    canon_append_string(b, job->req.action, job->req.action_len);
    oe_buf_puts(b, ",\"result\":");
    canon_append(b, result, CANON_COMPACT);
    oe_buf_printf(b, ",\"approved\":true,\"receipt\":\"%s\"}", receipt);
    return b->failed ? -1 : 0;
}

static void on_recorded(store_item *item)
{
    execute_job *job = item->cookie;

    job->done(job->cookie);
}

static void job_free(execute_job *job)
{
    request_free(&job->req);
    approval_verified_free(&job->approval);
    oe_buf_free(&job->response);
    free(job);
}

static void submit(execute_job *job, const action_def *def)
{
    store_item *item = &job->item;

    item->nonce = job->req.nonce;
    item->nonce_len = job->req.nonce_len;
    item->exec_id = job->exec_id;
    item->action = actions_name(def);
    item->action_hash = job->req.action_hash;
    item->approval_id = job->approval.approval_id;
    item->approval_msg_sha256 = job->approval.signature_ok ? job->approval.message_sha256 : NULL;
    item->status = 200;
    item->response = job->response.data;
    item->response_len = job->response.len;
    item->on_done = on_recorded;
    item->cookie = job;
    store_submit(job->env->st, item);
}

int execute_begin(execute_env *env, store_reader *rd, const char *body, size_t len,
                  void (*done)(void *cookie), void *cookie, execute_job **jobp, oe_answer *ans)
{
    const oe_config *cfg = env->cfg;
    execute_job *job = calloc(1, sizeof(*job));
    const action_def *def;
    store_execution ex;
    json_t *result = NULL;
    oe_error err;
    int rc;

    *jobp = NULL;
    if (job == NULL) {
        oe_error_set(&err, 503, "busy", "Out of memory");
        answer_error(ans, &err);
        return EXECUTE_ANSWERED;
    }
    job->env = env;
    job->done = done;
    job->cookie = cookie;

    /* parse */
    if (request_parse(body, len, &job->req, &err) != 0) {
        free(job);
        answer_error(ans, &err);
        return EXECUTE_ANSWERED;
    }
    oe_buf_init(&job->response, RESPONSE_MAX);

    /* nonce lookup */
    rc = store_find_execution(rd, job->req.nonce, job->req.nonce_len, &ex);
    if (rc == STORE_ERROR) {
        store_unavailable(ans);
        goto answered;
    }
    if (rc == STORE_OK) {
        answer_existing(env, &job->req, &ex, NULL, ans);
        store_execution_free(&ex);
        goto answered;
    }

    /* allow-list */
    if (!config_action_allowed(cfg, job->req.action, job->req.action_len)) {
        oe_error_set(&err, 403, "action_not_allowed",
                     "Action '%s' is not in the execution allow-list", job->req.action);
        goto deny;
    }

    /* registry */
    if ((def = actions_find(job->req.action, job->req.action_len)) == NULL) {
        oe_error_set(&err, 400, "unknown_action", "Unknown action: %s", job->req.action);
        goto deny;
    }

    /* approval */
    if (cfg->mode == OE_MODE_CLAWSHIELD &&
        approval_check(job->req.artifact, job->req.action_hash, &env->policy, oe_now_us(),
                       APPROVAL_FULL, &job->approval, &err) != 0)
        goto deny;

    /* run (fail closed: nothing runs that could not be recorded) */
    if (!store_writable(env->st)) {
        store_unavailable(ans);
        goto answered;
    }
    if (actions_run(def, job->req.payload, &result, &err) != 0)
        goto deny;
    oe_uuid4(job->exec_id);
    rc = build_success(job, result);
    json_decref(result);
    if (rc != 0) {
        oe_error_set(&err, 503, "busy", "Out of memory building the answer");
        goto deny;
    }

    /* record; the answer follows the commit (execute_finish) */
    *jobp = job;
    submit(job, def);
    return EXECUTE_PENDING;

deny:
    answer_error(ans, &err);
answered:
    job_free(job);
    return EXECUTE_ANSWERED;
}

void execute_finish(execute_job *job, oe_answer *ans)
{
    oe_error err;

    switch (job->item.result) {
    case STORE_COMMITTED:
        answer_take(ans, 200, &job->response);
        break;
    case STORE_NONCE_TAKEN:
        answer_existing(job->env, &job->req, &job->item.existing, job->approval.approval_id, ans);
        store_execution_free(&job->item.existing);
        break;
    case STORE_APPROVAL_USED:
        oe_error_set(&err, 403, "approval_already_used",
                     "Approval artifact already used: an approval authorizes one execution");
        answer_error(ans, &err);
        break;
    case STORE_FAILED:
    default:
        store_unavailable(ans);
        break;
    }
    job_free(job);
}

/*
 * execute.c - the /execute pipeline (SPEC 3), one straight line:
 *
 *   parse -> nonce lookup -> allow-list -> registry -> approval -> run ->
 *   record -> answer
 *
 * Every step either passes the request on or settles its outcome: replayed,
 * denied, rejected, or executed.  Only "record" writes, and every settled
 * attempt is recorded: the store appends its receipt to the log in the same
 * transaction as the nonce state it reports, and the answer (which carries
 * the signed receipt) is sent only after that commit.  Bodies that are not a
 * well-formed request, and 503s, are answered at once and get no receipt:
 * there is nothing to attribute them to, or nothing could be recorded.
 *
 * Exactly once for built-ins: built-ins are pure, so a request runs its
 * action first and claims the nonce and records the result in one
 * transaction.  Two concurrent requests with one nonce may both compute the
 * (identical, pure) result, but the database keeps only the first claim;
 * the store tells the second at commit time (on_conflict), and it becomes a
 * replay of the first, or nonce_reused when it asked for something else.
 *
 * Replays are answered from the stored bytes of the first answer, so they
 * are byte-identical to it, with Idempotent-Replayed; the replay itself is
 * still recorded as an attempt.
 */
#include "execute.h"

#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "approval.h"
#include "canon.h"
#include "log.h"
#include "request.h"
#include "runner.h"
#include "util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

/* A 1 MiB body can grow sixfold when escaped (\u007f for each DEL). */
#define RESPONSE_MAX (8 * 1024 * 1024)
#define HEAD_MAX (RESPONSE_MAX + 64 * 1024)
/* A refused commit of a finished action's outcome is tried again, for as
 * long as the store is down, but at most this many times once the store
 * says it takes writes again (then the refusal is this item's own). */
#define FINISH_ATTEMPTS_WHILE_WRITABLE 5

struct execute_env {
    const oe_config *cfg;
    store *st;
    const actions_registry *actions;
    runner *runner; /* exec actions; never on an event loop */
    approval_policy policy;
    atomic_int stopping; /* SIGTERM: outcomes are no longer waited for */
};

struct execute_job {
    execute_env *env;
    oe_request req;
    approval_verified approval;
    store_execution found; /* the nonce's execution, when the lookup found one */
    const action_def *def;
    int reserved;              /* holds a runner slot not yet handed to the runner */
    int finish_attempts;       /* commits of the outcome tried while the store took writes */
    int check_approval_unused; /* a built-in refused its arguments (store.h) */
    store_item item;
    void (*done)(void *cookie);
    void *cookie;
};

int execute_env_create(const oe_config *cfg, store *st, const actions_registry *actions,
                       execute_env **out, char *why, size_t why_len)
{
    execute_env *env = calloc(1, sizeof(*env));

    *out = NULL;
    if (env == NULL)
        return -1;
    env->cfg = cfg;
    env->st = st;
    env->actions = actions;
    env->policy.keys = cfg->clawshield_keys.count > 0 ? &cfg->clawshield_keys : NULL;
    env->policy.tenant_id = cfg->tenant_id;
    env->runner = runner_create(cfg->action_workers, cfg->action_queue);
    if (env->runner == NULL) {
        snprintf(why, why_len, "cannot start the action workers");
        free(env);
        return -1;
    }
    *out = env;
    return 0;
}

void execute_env_stop(execute_env *env)
{
    atomic_store(&env->stopping, 1);
}

void execute_env_destroy(execute_env *env)
{
    if (env == NULL)
        return;
    runner_destroy(env->runner);
    free(env);
}

static void answer_store_unavailable(oe_answer *ans)
{
    oe_error err;

    oe_error_set(&err, 503, "store_unavailable",
                 "Store unavailable: executions cannot be recorded now");
    answer_error(ans, &err);
}

/* ---- settling an attempt ------------------------------------------------- */

/* A denial, rejection or failure: the error body, with the attempt's id,
 * ends in its signed receipt.  403s are denials, 502s actions that ran and
 * failed, the other refusals rejections. */
static void settle_error(execute_job *job, const oe_error *err)
{
    store_item *item = &job->item;

    item->status = err->status;
    item->replay_of = NULL;
    item->receipt.outcome = err->status == 403   ? "denied"
                            : err->status == 502 ? "failed"
                                                 : "rejected";
    item->receipt.status = err->status;
    item->receipt.error = err->code;
    item->receipt.result_sha256[0] = '\0';
    oe_buf_reset(&item->head);
    oe_buf_putc(&item->head, '{');
    answer_append_error_members(&item->head, err);
    oe_buf_printf(&item->head, ",\"id\":\"%s\",\"signed_receipt\":", item->receipt.exec_id);
}

/* A replay: the stored answer of `ex`, recorded as a replayed attempt. */
static void settle_replay(execute_job *job, const store_execution *ex)
{
    store_item *item = &job->item;

    item->replay_of = ex;
    item->status = ex->status;
    memcpy(item->receipt.exec_id, ex->exec_id, sizeof(item->receipt.exec_id));
    item->receipt.outcome = "replayed";
    item->receipt.status = ex->status;
    memcpy(item->receipt.result_sha256, ex->result_sha256, sizeof(ex->result_sha256));
    item->receipt.error = ex->error[0] ? ex->error : NULL;
}

/* The nonce is already taken by `ex` (SPEC 3.2).  approval_id: this
 * request's verified approval when the full checks already ran (a conflict
 * found at commit time), else NULL and the replay checks run here. */
static void settle_existing(execute_job *job, const store_execution *ex, const char *approval_id)
{
    const execute_env *env = job->env;
    oe_error err;

    if (strcmp(ex->action_hash, job->req.action_hash) != 0) {
        oe_error_set(&err, 422, "nonce_reused", "Nonce already used for a different request");
        goto refuse;
    }
    if (env->cfg->mode == OE_MODE_CLAWSHIELD) {
        if (approval_id == NULL) {
            if (approval_check(job->req.artifact, job->req.action_hash, &env->policy, oe_now_us(),
                               APPROVAL_REPLAY, &job->approval, &err) != 0)
                goto refuse;
            approval_id = job->approval.approval_id;
        }
        /* approval_id is never NULL here: approval_check fails for an id it
         * leaves NULL (one holding U+0000). */
        if (ex->approval_id == NULL || strcmp(ex->approval_id, approval_id) != 0) {
            oe_error_set(&err, 403, "approval_mismatch",
                         "Approval mismatch: this nonce was executed under another approval");
            goto refuse;
        }
    }
    if (ex->state == EXEC_STATE_RUNNING) {
        oe_error_set(&err, 409, "request_in_progress",
                     "A request with this nonce is still in progress");
        goto refuse;
    }
    if (ex->state == EXEC_STATE_UNKNOWN) {
        oe_error_set(&err, 409, "outcome_unknown",
                     "Outcome unknown: the server stopped while this nonce's action was running");
        goto refuse;
    }
    settle_replay(job, ex);
    return;
refuse:
    settle_error(job, &err);
}

/* The Compat success body up to its signed receipt:
 * {"id","action","result","approved","receipt","signed_receipt": */
static int settle_executed(execute_job *job, const json_t *result)
{
    store_item *item = &job->item;
    oe_buf result_json;
    char receipt[65];
    int rc = -1;

    oe_buf_init(&result_json, RESPONSE_MAX);
    if (canon_append(&result_json, result, CANON_SPACED) != 0 ||
        canon_legacy_receipt(item->receipt.exec_id, result_json.data, result_json.len, receipt) !=
            0)
        goto out;
    canon_sha256_hex(result_json.data, result_json.len, item->receipt.result_sha256);
    item->status = 200;
    item->receipt.outcome = "executed";
    item->receipt.status = 200;
    item->receipt.error = NULL;
    oe_buf_printf(&item->head, "{\"id\":\"%s\",\"action\":", item->receipt.exec_id);
    canon_append_string(&item->head, job->req.action, job->req.action_len);
    oe_buf_puts(&item->head, ",\"result\":");
    canon_append(&item->head, result, CANON_COMPACT);
    oe_buf_printf(&item->head,
                  ",\"approved\":true,\"receipt\":\"%s\",\"signed_receipt\":", receipt);
    rc = item->head.failed ? -1 : 0;
out:
    oe_buf_free(&result_json);
    return rc;
}

/* Writer thread, inside the transaction: the claim lost a race. */
static void on_conflict(store_item *item)
{
    execute_job *job = item->cookie;
    oe_error err;

    item->kind = STORE_ITEM_ATTEMPT;
    if (item->result == STORE_APPROVAL_USED) {
        oe_error_set(&err, 403, "approval_already_used",
                     "Approval artifact already used: an approval authorizes one execution");
        settle_error(job, &err);
        return;
    }
    settle_existing(job, &item->existing, job->approval.approval_id);
}

static void run_exec_action(void *arg);
static void record_outcome(void *arg);

/* Writer thread: the database refused the commit of a finished action's
 * outcome.  The program has run, so its outcome must be recorded if at all
 * possible: again, on a worker, once the store takes writes (the client
 * waits; a retry of its nonce meanwhile gets 503 while the store is down,
 * then 409 request_in_progress until the outcome is in, as it still is).
 * Not after SIGTERM, and not over and over while the store takes other
 * writes.  Then the answer is 503 and the claim stays running
 * until the next start makes it outcome_unknown. */
static int record_outcome_again(execute_job *job)
{
    execute_env *env = job->env;

    if (job->item.kind != STORE_ITEM_FINISH || job->item.finishes_state != EXEC_STATE_RUNNING ||
        job->item.result != STORE_FAILED || atomic_load(&env->stopping) ||
        job->finish_attempts >= FINISH_ATTEMPTS_WHILE_WRITABLE || runner_reserve(env->runner) != 0)
        return 0;
    runner_submit(env->runner, record_outcome, job);
    return 1;
}

/* Writer thread, after the commit.  A committed claim goes on to run its
 * program; everything else is answered. */
static void on_recorded(store_item *item)
{
    execute_job *job = item->cookie;

    if (item->kind == STORE_ITEM_CLAIM && item->result == STORE_COMMITTED) {
        /* The claim's signed head answers nothing: the outcome's will. */
        free(item->note);
        item->note = NULL;
        job->reserved = 0;
        runner_submit(job->env->runner, run_exec_action, job);
        return;
    }
    if (record_outcome_again(job))
        return;
    if (job->reserved) {
        job->reserved = 0;
        runner_release(job->env->runner);
    }
    job->done(job->cookie);
}

/* A worker: submits a finished action's outcome once the store accepts
 * writes again (the writer probes it every second), or at once after
 * SIGTERM, when a refusal is answered 503 and not tried again. */
static void record_outcome(void *arg)
{
    execute_job *job = arg;
    execute_env *env = job->env;
    struct timespec pause = {0, 100 * 1000000L};

    if (job->finish_attempts > 0)
        nanosleep(&pause, NULL); /* a refusal is not retried in a tight loop */
    while (!store_writable(env->st) && !atomic_load(&env->stopping))
        nanosleep(&pause, NULL);
    if (store_writable(env->st))
        job->finish_attempts++;
    store_submit(env->st, &job->item);
}

/* A worker thread: the nonce is durably claimed as running; run the program
 * and record its outcome.  If the process dies before that commit, the
 * claim stays "running" and becomes outcome_unknown at the next start: the
 * program is never run a second time for this nonce. */
static void run_exec_action(void *arg)
{
    execute_job *job = arg;
    store_item *item = &job->item;
    json_t *result = NULL;
    oe_buf input;
    oe_error err;

    oe_buf_init(&input, RESPONSE_MAX);
    canon_append(&input, job->req.payload, CANON_COMPACT);
    oe_buf_reset(&item->head);
    receipt_stamp(&item->receipt);
    if (input.failed) {
        oe_error_set(&err, 502, "action_failed", "Action '%s' failed: payload too large",
                     actions_name(job->def));
        settle_error(job, &err);
    } else if (actions_exec(job->def, input.data, input.len, &result, &err) != 0) {
        settle_error(job, &err);
    } else if (settle_executed(job, result) != 0) {
        oe_error_set(&err, 502, "action_failed", "Action '%s' failed: its result is too large",
                     actions_name(job->def));
        oe_buf_reset(&item->head);
        settle_error(job, &err);
    }
    json_decref(result);
    oe_buf_free(&input);
    item->kind = STORE_ITEM_FINISH;
    item->finishes_state = EXEC_STATE_RUNNING;
    record_outcome(job);
}

static void job_free(execute_job *job)
{
    request_free(&job->req);
    approval_verified_free(&job->approval);
    store_execution_free(&job->found);
    store_execution_free(&job->item.existing);
    oe_buf_free(&job->item.head);
    oe_buf_free(&job->item.prefix);
    free(job->item.note);
    free(job);
}

static void init_receipt(execute_job *job)
{
    receipt_fields *rf = &job->item.receipt;

    oe_exec_id(rf->exec_id);
    receipt_stamp(rf);
    rf->action = job->req.action;
    rf->action_len = job->req.action_len;
    memcpy(rf->action_hash, job->req.action_hash, sizeof(rf->action_hash));
    canon_sha256_hex(job->req.nonce, job->req.nonce_len, rf->nonce_sha256);
}

/* ---- the pipeline -------------------------------------------------------- */

int execute_begin(execute_env *env, store_reader *rd, const char *body, size_t len,
                  void (*done)(void *cookie), void *cookie, execute_job **jobp, oe_answer *ans)
{
    const oe_config *cfg = env->cfg;
    execute_job *job = calloc(1, sizeof(*job));
    const action_def *def;
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
    oe_buf_init(&job->item.head, HEAD_MAX);
    oe_buf_init(&job->item.prefix, HEAD_MAX + 64 * 1024);

    /* parse: bodies that are not a well-formed request get no receipt */
    if (request_parse(body, len, &job->req, &err) != 0) {
        answer_error(ans, &err);
        goto answered;
    }
    init_receipt(job);
    job->item.kind = STORE_ITEM_ATTEMPT;

    /* nonce lookup */
    rc = store_find_execution(rd, job->req.nonce, job->req.nonce_len, &job->found);
    if (rc == STORE_ERROR) {
        answer_store_unavailable(ans);
        goto answered;
    }
    if (rc == STORE_OK) {
        settle_existing(job, &job->found, NULL);
        goto record;
    }

    /* allow-list */
    if (!config_action_allowed(cfg, job->req.action, job->req.action_len)) {
        oe_error_set_quoting(&err, 403, "action_not_allowed", "Action '", job->req.action,
                             job->req.action_len, "' is not in the execution allow-list");
        goto refuse;
    }

    /* registry */
    if ((def = actions_find(env->actions, job->req.action, job->req.action_len)) == NULL) {
        oe_error_set_quoting(&err, 400, "unknown_action", "Unknown action: ", job->req.action,
                             job->req.action_len, "");
        goto refuse;
    }

    /* approval */
    if (cfg->mode == OE_MODE_CLAWSHIELD &&
        approval_check(job->req.artifact, job->req.action_hash, &env->policy, oe_now_us(),
                       APPROVAL_FULL, &job->approval, &err) != 0)
        goto refuse;

    /* run (fail closed: nothing runs that could not be recorded) */
    if (!store_writable(env->st)) {
        answer_store_unavailable(ans);
        goto answered;
    }
    if (!actions_is_builtin(def)) {
        /* A program with side effects: claim the nonce durably first, run
         * it on a worker after that commit (on_recorded). */
        if (runner_reserve(env->runner) != 0) {
            oe_error_set(&err, 503, "busy", "All action workers are busy; retry later");
            answer_error(ans, &err);
            goto answered;
        }
        job->reserved = 1;
        job->def = def;
        job->item.kind = STORE_ITEM_CLAIM;
        job->item.nonce = job->req.nonce;
        job->item.nonce_len = job->req.nonce_len;
        job->item.action_hash = job->req.action_hash;
        goto record;
    }
    if (actions_run(def, job->req.payload, &result, &err) != 0) {
        /* Unless the approval was used up: the writer decides (store.h). */
        job->check_approval_unused = cfg->mode == OE_MODE_CLAWSHIELD;
        goto refuse;
    }
    rc = settle_executed(job, result);
    json_decref(result);
    if (rc != 0) {
        oe_error_set(&err, 503, "busy", "Out of memory building the answer");
        answer_error(ans, &err);
        goto answered;
    }
    job->item.kind = STORE_ITEM_EXECUTION;
    job->item.nonce = job->req.nonce;
    job->item.nonce_len = job->req.nonce_len;
    job->item.action_hash = job->req.action_hash;
    goto record;

refuse:
    settle_error(job, &err);

record:
    /* The receipt names the approval only once its signature verified. */
    if (job->approval.signature_ok) {
        job->item.receipt.approval_id = job->approval.approval_id;
        job->item.approval_id = job->approval.approval_id;
        if (job->item.kind == STORE_ITEM_EXECUTION || job->item.kind == STORE_ITEM_CLAIM ||
            job->check_approval_unused) {
            job->item.approval_msg_sha256 = job->approval.message_sha256;
            job->item.approval_expires_us = job->approval.expires_us;
        }
    }
    if (!store_writable(env->st) || job->item.head.failed) {
        if (job->reserved)
            runner_release(env->runner);
        answer_store_unavailable(ans);
        goto answered;
    }
    job->item.on_conflict = on_conflict;
    job->item.on_done = on_recorded;
    job->item.cookie = job;
    *jobp = job;
    store_submit(env->st, &job->item);
    return EXECUTE_PENDING;

answered:
    job_free(job);
    return EXECUTE_ANSWERED;
}

/* A replay of an execution recorded in another instance's log ends in
 * that log's own signed head, which only that instance could sign and
 * which it stored with the entries it covers. */
static int fetch_foreign_note(store_reader *rd, store_item *item)
{
    oe_buf note;
    int rc;

    oe_buf_init(&note, 4096);
    rc = store_find_checkpoint(rd, item->foreign_log, item->tree_size, &note);
    if (rc == STORE_OK)
        item->note = oe_buf_detach(&note, &item->note_len);
    oe_buf_free(&note);
    if (rc == STORE_OK && item->note != NULL)
        return 0;
    oe_log("warn", "execute: replay of an entry of log %s: its checkpoint of size %llu is %s",
           item->foreign_log, (unsigned long long)item->tree_size,
           rc == STORE_NOT_FOUND ? "not stored (yet)" : "unreadable");
    return -1;
}

void execute_finish(execute_job *job, store_reader *rd, oe_answer *ans)
{
    store_item *item = &job->item;
    oe_error err;

    if (item->result != STORE_FAILED && item->note == NULL && item->foreign_log[0] != '\0' &&
        fetch_foreign_note(rd, item) != 0) {
        oe_error_set(&err, 503, "busy",
                     "The signed checkpoint of the original answer is not available; retry later");
        answer_error(ans, &err);
    } else if (item->result == STORE_FAILED || item->note == NULL) {
        answer_store_unavailable(ans);
    } else {
        receipt_finish_answer(ans, item->status, item->prefix.data, item->prefix.len, item->note,
                              item->note_len);
        ans->replayed = item->replay_of != NULL;
        ans->outcome = item->receipt.outcome;
        ans->error_code = item->receipt.error;
    }
    job_free(job);
}

/* ---- an operator's finding (openexec resolve) ------------------------------ */

typedef struct resolve_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
} resolve_wait;

static void on_resolved(void *cookie)
{
    resolve_wait *w = cookie;

    pthread_mutex_lock(&w->lock);
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

int execute_resolve(execute_env *env, store_reader *rd, const char *nonce, size_t nonce_len,
                    int succeeded, const json_t *result, char *why, size_t why_len)
{
    resolve_wait w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    execute_job *job = calloc(1, sizeof(*job));
    store_item *item;
    oe_error err;
    int rc = -1;

    if (job == NULL)
        return -1;
    job->env = env;
    item = &job->item;
    oe_buf_init(&item->head, HEAD_MAX);
    oe_buf_init(&item->prefix, HEAD_MAX + 64 * 1024);
    if (store_find_execution(rd, nonce, nonce_len, &job->found) != STORE_OK) {
        snprintf(why, why_len, "no execution has that nonce");
        goto out;
    }
    if (job->found.state != EXEC_STATE_UNKNOWN) {
        snprintf(why, why_len, "that execution's outcome is not unknown (nothing to resolve)");
        goto out;
    }
    /* The attempt being resolved, as the original request named it. */
    job->req.action = job->found.action;
    job->req.action_len = strlen(job->found.action);
    job->req.nonce = nonce;
    job->req.nonce_len = nonce_len;
    memcpy(job->req.action_hash, job->found.action_hash, sizeof(job->req.action_hash));
    init_receipt(job);
    memcpy(item->receipt.exec_id, job->found.exec_id, sizeof(item->receipt.exec_id));
    item->receipt.approval_id = job->found.approval_id;
    item->approval_id = job->found.approval_id;
    if (succeeded) {
        if (settle_executed(job, result) != 0) {
            snprintf(why, why_len, "the result is too large");
            goto out;
        }
    } else {
        oe_error_set(&err, 502, "action_failed",
                     "Action '%s' failed: resolved as failed by an operator", job->found.action);
        settle_error(job, &err);
    }
    item->receipt.outcome = "resolved";
    item->kind = STORE_ITEM_FINISH;
    item->finishes_state = EXEC_STATE_UNKNOWN;
    item->nonce = nonce;
    item->nonce_len = nonce_len;
    item->action_hash = job->found.action_hash;
    item->on_done = on_recorded;
    item->cookie = job;
    job->done = on_resolved;
    job->cookie = &w;
    store_submit(env->st, item);
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    if (item->result != STORE_COMMITTED || item->note == NULL) {
        snprintf(why, why_len, "the store could not record the finding");
        goto out;
    }
    rc = 0;
out:
    job->req.action = NULL; /* borrowed from found */
    job_free(job);
    return rc;
}

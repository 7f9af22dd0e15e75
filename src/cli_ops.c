/*
 * cli_ops.c - `openexec pending` and `openexec resolve`: what an operator
 * does after a crash left executions with an unknown outcome (SPEC 6).
 *
 *   pending  lists them (reads the database; safe while the server runs).
 *   resolve  records the operator's finding as a "resolved" receipt in the
 *            instance's log, after which replays return that finding.  It
 *            writes to the log as the instance (same environment, same
 *            receipt key), so it takes the log's lease: run it while that
 *            instance is stopped.
 *
 * Exit status: 0 ok, 1 failure, 2 usage or configuration error.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "actions.h"
#include "buf.h"
#include "canon.h"
#include "config.h"
#include "execute.h"
#include "instance.h"
#include "store.h"
#include "util.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2

static const char PENDING_USAGE[] =
    "usage: openexec pending [--json]\n"
    "\n"
    "Lists executions whose outcome is unknown (state 'unknown': the server\n"
    "stopped while their action ran) or not known yet (state 'running': the\n"
    "action runs now, or its server died and has not started again; its next\n"
    "start, or resolve, makes it 'unknown').  Oldest first.  Uses the same\n"
    "environment as serve (OPENEXEC_DB_URL).\n"
    "  --json   one JSON object per line (nonce, exec_id, action, claimed_by,\n"
    "           claimed_at, state) instead of a table\n"
    "Exit status: 0 ok, 1 failure, 2 usage or configuration error.\n";

static const char RESOLVE_USAGE[] =
    "usage: openexec resolve NONCE --outcome succeeded|failed [--result JSON]\n"
    "\n"
    "Records an operator's finding for an execution whose outcome is unknown,\n"
    "as a \"resolved\" receipt in this instance's log; replays of NONCE return\n"
    "that finding from then on.  Run it with serve's environment while that\n"
    "instance is stopped (it signs as the instance and takes its log's lease).\n"
    "  --outcome succeeded|failed   what the action really did\n"
    "  --result JSON                the result object when it succeeded (default {})\n"
    "Exit status: 0 ok, 1 failure, 2 usage or configuration error.\n";

static int load_env(oe_config *cfg, const char *cmd)
{
    char why[512], warn[512];

    if (config_load(cfg, NULL, NULL, why, sizeof(why), warn, sizeof(warn)) != 0) {
        fprintf(stderr, "openexec %s: configuration error: %s\n", cmd, why);
        return EXIT_USAGE;
    }
    return 0;
}

typedef struct pending_out {
    int json;
    int header_done;
    oe_buf line;
} pending_out;

static void print_pending(const store_pending *p, void *ctx)
{
    pending_out *o = ctx;
    char when[40];
    time_t secs = (time_t)(p->created_us / 1000000);
    struct tm tm;
    const char *state = p->state == EXEC_STATE_RUNNING ? "running" : "unknown";

    gmtime_r(&secs, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!o->json && !o->header_done) {
        printf("NONCE\tEXEC_ID\tACTION\tCLAIMED_AT\tSTATE\n");
        o->header_done = 1;
    }
    oe_buf_reset(&o->line);
    if (o->json) {
        oe_buf_puts(&o->line, "{\"nonce\":");
        canon_append_string(&o->line, p->nonce, p->nonce_len);
        oe_buf_printf(&o->line, ",\"exec_id\":\"%s\",\"action\":", p->exec_id);
        canon_append_string(&o->line, p->action, strlen(p->action));
        oe_buf_puts(&o->line, ",\"claimed_by\":");
        canon_append_string(&o->line, p->claimed_by, strlen(p->claimed_by));
        oe_buf_printf(&o->line, ",\"claimed_at\":\"%s\",\"state\":\"%s\"}\n", when, state);
    } else {
        /* The nonce as a JSON string: unambiguous even with odd bytes. */
        canon_append_string(&o->line, p->nonce, p->nonce_len);
        oe_buf_printf(&o->line, "\t%s\t%s\t%s\t%s\n", p->exec_id, p->action, when, state);
    }
    fwrite(o->line.data, 1, o->line.len, stdout);
}

int cli_pending(int argc, char **argv)
{
    pending_out out = {0};
    oe_config cfg;
    char why[256];
    int i, n, rc;

    for (i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(PENDING_USAGE, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--json") != 0) {
            fprintf(stderr, "openexec pending: unknown option '%s'\n%s", argv[i], PENDING_USAGE);
            return EXIT_USAGE;
        }
        out.json = 1;
    }
    if ((rc = load_env(&cfg, "pending")) != 0)
        return rc;
    oe_buf_init(&out.line, 1024 * 1024);
    n = store_list_pending(&cfg, print_pending, &out, why, sizeof(why));
    oe_buf_free(&out.line);
    config_free(&cfg);
    if (n < 0) {
        fprintf(stderr,
                "openexec pending: %s (is OPENEXEC_DB_URL the server's, and has the "
                "server started once on it?)\n",
                why);
        return EXIT_FAIL;
    }
    return 0;
}

/* resolve signs as the server's instance in the server's store, so both
 * must exist already: run from another directory or with another
 * environment, serve's defaults would otherwise create a new receipt key
 * (a new log, signed by nobody the witnesses know) and, for SQLite, a new
 * empty database, and only then find no such nonce. */
static int require_the_servers_files(const oe_config *cfg, char *why, size_t why_len)
{
    const char *what, *missing;

    if (access(cfg->receipt_key_path, F_OK) != 0) {
        what = "receipt key";
        missing = cfg->receipt_key_path;
    } else if (cfg->db_kind == OE_DB_SQLITE && access(cfg->sqlite_path, F_OK) != 0) {
        what = "database";
        missing = cfg->sqlite_path;
    } else {
        return 0;
    }
    oe_message(why, why_len,
               "%s %s does not exist: run resolve with the server's environment "
               "(OPENEXEC_DB_URL, OPENEXEC_RECEIPT_KEY) and working directory",
               what, missing);
    return -1;
}

int cli_resolve(int argc, char **argv)
{
    const char *nonce = NULL, *outcome = NULL, *result_text = NULL;
    actions_registry *actions = NULL;
    execute_env *env = NULL;
    store_reader *rd = NULL;
    store *st = NULL;
    json_t *result = NULL;
    keys_private key;
    char origin[INSTANCE_ORIGIN_MAX], why[512];
    oe_config cfg;
    oe_error err;
    int i, r, rc = EXIT_FAIL;

    for (i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(RESOLVE_USAGE, stdout);
            return 0;
        }
        if ((r = cli_opt_value(argc, argv, &i, "--outcome", &outcome)) != 0 ||
            (r = cli_opt_value(argc, argv, &i, "--result", &result_text)) != 0) {
            if (r < 0)
                goto usage;
            continue;
        }
        if (argv[i][0] == '-' || nonce != NULL)
            goto usage;
        nonce = argv[i];
    }
    if (nonce == NULL || outcome == NULL ||
        (strcmp(outcome, "succeeded") != 0 && strcmp(outcome, "failed") != 0) ||
        (result_text != NULL && strcmp(outcome, "succeeded") != 0))
        goto usage;
    if (canon_parse(result_text ? result_text : "{}", result_text ? strlen(result_text) : 2,
                    &result, &err) != 0) {
        fprintf(stderr, "openexec resolve: --result: %s\n", err.detail);
        return EXIT_USAGE;
    }
    if ((rc = load_env(&cfg, "resolve")) != 0) {
        json_decref(result);
        return rc;
    }
    rc = EXIT_FAIL;
    if (require_the_servers_files(&cfg, why, sizeof(why)) != 0 ||
        instance_load(&cfg, &key, origin, why, sizeof(why)) != 0)
        goto fail;
    {
        store_log_identity id = {origin, &key};
        if (store_open(&cfg, &id, &st, why, sizeof(why)) != 0)
            goto fail_key;
    }
    if (actions_registry_load(&cfg, &actions, why, sizeof(why)) != 0 ||
        execute_env_create(&cfg, st, actions, &env, why, sizeof(why)) != 0 ||
        (rd = store_reader_open(st, why, sizeof(why))) == NULL ||
        execute_resolve(env, rd, nonce, strlen(nonce), strcmp(outcome, "succeeded") == 0, result,
                        why, sizeof(why)) != 0)
        goto done;
    printf("resolved %s as %s\n", nonce, outcome);
    rc = 0;
done:
    if (rd)
        store_reader_close(rd);
    execute_env_destroy(env);
    actions_registry_free(actions);
    store_close(st);
fail_key:
    keys_private_wipe(&key);
fail:
    if (rc != 0)
        fprintf(stderr, "openexec resolve: %s\n", why);
    config_free(&cfg);
    json_decref(result);
    return rc;

usage:
    fprintf(stderr, "openexec resolve: bad arguments\n%s", RESOLVE_USAGE);
    return EXIT_USAGE;
}

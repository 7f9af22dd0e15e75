/*
 * main.c - the command line: serve, check-config, keygen, mint, verify-log,
 * verify-receipt, pending, resolve.
 *
 * Exit codes (documented in README and --help):
 *   0  success
 *   1  runtime failure (cannot bind, cannot open the store, I/O error)
 *   2  usage or configuration error (nothing was started)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "actions.h"
#include "buf.h"
#include "canon.h"
#include "cli.h"
#include "config.h"
#include "instance.h"
#include "log.h"
#include "server.h"

static const char USAGE[] =
    "usage: openexec <command> [options]\n"
    "\n"
    "OpenExec executes allowed actions exactly once and records every attempt.\n"
    "\n"
    "commands:\n"
    "  serve [--host H] [--port P]   run the HTTP service (default 127.0.0.1:5000)\n"
    "  check-config [--json]         validate the environment and exit 0 or 2\n"
    "  keygen [--out PREFIX]         write an Ed25519 key pair (PREFIX.key, PREFIX.pub)\n"
    "  mint --key PRIV --tenant T --action A [--payload JSON] [--ttl S]\n"
    "                                print a ClawShield approval artifact\n"
    "  verify-log --key PUB --checkpoint CP FILE.jsonl\n"
    "                                check a receipt export against a checkpoint\n"
    "  verify-receipt --key PUB FILE.json\n"
    "                                check one signed receipt\n"
    "  pending [--json]              list executions whose outcome is unknown\n"
    "  resolve NONCE --outcome succeeded|failed [--result JSON]\n"
    "                                record an operator's finding\n"
    "\n"
    "options:\n"
    "  -h, --help                    this help (also: openexec <command> --help,\n"
    "                                openexec help <command>)\n"
    "  -V, --version                 print the version (also: openexec version)\n"
    "\n"
    "environment: OPENEXEC_MODE, CLAWSHIELD_PUBLIC_KEY, CLAWSHIELD_TENANT_ID,\n"
    "  OPENEXEC_ALLOWED_ACTIONS, OPENEXEC_DB_URL, OPENEXEC_HOST, OPENEXEC_PORT,\n"
    "  OPENEXEC_THREADS, OPENEXEC_ACTIONS_FILE, OPENEXEC_ACTION_WORKERS,\n"
    "  OPENEXEC_ACTION_QUEUE, OPENEXEC_RECEIPT_KEY, OPENEXEC_LOG_ORIGIN,\n"
    "  OPENEXEC_ACCESS_LOG (see man openexec, docs/configuration.md)\n"
    "\n"
    "exit status: 0 success, 1 runtime failure, 2 usage or configuration error\n";

static const char SERVE_USAGE[] =
    "usage: openexec serve [--host HOST] [--port PORT]\n"
    "\n"
    "Runs the HTTP service until SIGTERM or SIGINT, then drains and exits 0.\n"
    "  --host HOST   address to listen on (OPENEXEC_HOST, default 127.0.0.1)\n"
    "  --port PORT   port to listen on, 0 for any (OPENEXEC_PORT, default 5000)\n";

static const char CHECK_USAGE[] =
    "usage: openexec check-config [--json]\n"
    "\n"
    "Validates the environment as serve would and prints the effective settings\n"
    "(--json: one JSON object, for scripts).\n"
    "Exits 0 when serve would start ready, 2 otherwise.\n";

static int wants_help(int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

static int usage_error(const char *cmd, const char *fmt, const char *arg)
{
    fprintf(stderr, "openexec %s: ", cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(try 'openexec %s --help')\n", cmd);
    return 2;
}

/* Parses serve's flags; --opt VALUE and --opt=VALUE. */
static int parse_serve_flags(int argc, char **argv, const char **host, const char **port)
{
    int i;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        const char *value = NULL;

        if (strncmp(a, "--host", 6) == 0 && (a[6] == '\0' || a[6] == '='))
            slot = host;
        else if (strncmp(a, "--port", 6) == 0 && (a[6] == '\0' || a[6] == '='))
            slot = port;
        else
            return usage_error(argv[0], "unknown option '%s'", a);
        if (a[6] == '=')
            value = a + 7;
        else if (i + 1 < argc)
            value = argv[++i];
        else
            return usage_error(argv[0], "option '%s' needs a value", a);
        *slot = value;
    }
    return 0;
}

static int load_config(oe_config *cfg, const char *host, const char *port, const char *cmd)
{
    char why[512], warn[512];
    actions_registry *actions = NULL;

    if (config_load(cfg, host, port, why, sizeof(why), warn, sizeof(warn)) != 0) {
        fprintf(stderr, "openexec %s: configuration error: %s\n", cmd, why);
        return 2;
    }
    if (warn[0] != '\0')
        oe_log("warn", "%s", warn);
    /* The actions file is configuration too: a bad one is refused before
     * anything starts. */
    if (actions_registry_load(cfg, &actions, why, sizeof(why)) != 0) {
        fprintf(stderr, "openexec %s: configuration error: %s\n", cmd, why);
        config_free(cfg);
        return 2;
    }
    actions_registry_free(actions);
    return 0;
}

static int cmd_serve(int argc, char **argv)
{
    const char *host = NULL, *port = NULL;
    oe_config cfg;
    int rc;

    if (wants_help(argc, argv)) {
        fputs(SERVE_USAGE, stdout);
        return 0;
    }
    if ((rc = parse_serve_flags(argc, argv, &host, &port)) != 0)
        return rc;
    if ((rc = load_config(&cfg, host, port, "serve")) != 0)
        return rc;
    rc = server_run(&cfg);
    config_free(&cfg);
    return rc;
}

static int cmd_check_config(int argc, char **argv)
{
    oe_config cfg;
    const char *problem;
    char files_problem[512];
    int rc, json;

    if (wants_help(argc, argv)) {
        fputs(CHECK_USAGE, stdout);
        return 0;
    }
    if (argc > 2 || (argc == 2 && strcmp(argv[1], "--json") != 0))
        return usage_error(argv[0], "unexpected argument '%s'", argv[1]);
    json = argc == 2;
    if ((rc = load_config(&cfg, NULL, NULL, "check-config")) != 0)
        return rc;
    problem = cfg.key_problem;
    if (problem == NULL && instance_check_files(&cfg, files_problem, sizeof(files_problem)) != 0)
        problem = files_problem;
    if (json) {
        oe_buf b;
        oe_buf_init(&b, 64 * 1024);
        oe_buf_printf(&b, "{\"ok\":%s,\"mode\":\"%s\",\"host\":", problem ? "false" : "true",
                      config_mode_name(cfg.mode));
        canon_append_string(&b, cfg.host, strlen(cfg.host));
        oe_buf_printf(&b,
                      ",\"port\":%d,\"store\":\"%s\",\"restriction\":\"%s\","
                      "\"clawshield_keys\":%zu,\"problem\":",
                      cfg.port, cfg.db_kind == OE_DB_SQLITE ? "sqlite" : "postgresql",
                      cfg.allowed_actions ? "restricted" : "open", cfg.clawshield_keys.count);
        if (problem)
            canon_append_string(&b, problem, strlen(problem));
        else
            oe_buf_puts(&b, "null");
        oe_buf_puts(&b, "}\n");
        fwrite(b.data, 1, b.len, stdout);
        oe_buf_free(&b);
        rc = problem ? 2 : 0;
        config_free(&cfg);
        return rc;
    }
    printf("mode: %s\n", config_mode_name(cfg.mode));
    printf("listen: %s:%d\n", cfg.host, cfg.port);
    printf("store: %s\n", cfg.db_kind == OE_DB_SQLITE ? cfg.sqlite_path : "postgresql");
    printf("allow-list: %s\n", cfg.allowed_actions ? "restricted" : "open");
    if (cfg.mode == OE_MODE_CLAWSHIELD)
        printf("clawshield keys: %zu\n", cfg.clawshield_keys.count);
    if (problem != NULL) {
        fprintf(stderr, "openexec check-config: not ready: %s\n", problem);
        rc = 2;
    } else {
        printf("ok\n");
    }
    config_free(&cfg);
    return rc;
}

static int dispatch(const char *cmd, int argc, char **argv);

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;

    if (sodium_init() < 0) {
        fprintf(stderr, "openexec: libsodium failed to initialise\n");
        return 1;
    }
    if (cmd == NULL) {
        fputs(USAGE, stderr);
        return 2;
    }
    if (strcmp(cmd, "help") == 0 && argc > 2 && strcmp(argv[2], "--help") != 0 &&
        strcmp(argv[2], "-h") != 0) {
        /* openexec help CMD == openexec CMD --help */
        char *help_argv[] = {argv[2], "--help", NULL};
        return dispatch(argv[2], 2, help_argv);
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(USAGE, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0 || strcmp(cmd, "version") == 0) {
        if (argc > 2) {
            fprintf(stderr, "openexec: %s takes no arguments\n", cmd);
            return 2;
        }
        printf("openexec %s\n", OPENEXEC_VERSION);
        return 0;
    }
    return dispatch(cmd, argc - 1, argv + 1);
}

static int dispatch(const char *cmd, int argc, char **argv)
{
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc, argv);
    if (strcmp(cmd, "check-config") == 0)
        return cmd_check_config(argc, argv);
    if (strcmp(cmd, "keygen") == 0)
        return cli_keygen(argc, argv);
    if (strcmp(cmd, "mint") == 0)
        return cli_mint(argc, argv);
    if (strcmp(cmd, "verify-log") == 0)
        return cli_verify_log(argc, argv);
    if (strcmp(cmd, "verify-receipt") == 0)
        return cli_verify_receipt(argc, argv);
    if (strcmp(cmd, "pending") == 0)
        return cli_pending(argc, argv);
    if (strcmp(cmd, "resolve") == 0)
        return cli_resolve(argc, argv);
    fprintf(stderr, "openexec: unknown command '%s' (try 'openexec --help')\n", cmd);
    return 2;
}

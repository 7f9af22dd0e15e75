/*
 * config.c - environment and flags into one immutable oe_config (SPEC 1).
 *
 * Design: every variable is read exactly once here; the rest of the program
 * sees only the struct.  Validation is total: anything that would make the
 * server behave differently from what the operator wrote is refused at start
 * with a message that names the variable (never its value when the value may
 * hold a secret, as a database URL does).  An empty variable counts as unset,
 * the way container runtimes pass "unset" through.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "util.h"

#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT 5000
#define MAX_THREADS 64
#define MAX_PEM_FILE (64 * 1024)

/* getenv that treats "" as unset. */
static const char *env_value(const char *name)
{
    const char *v = getenv(name);
    return (v != NULL && v[0] != '\0') ? v : NULL;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int parse_int_range(const char *s, long lo, long hi, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || !isdigit((unsigned char)s[0]) || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int load_mode(oe_config *cfg, char *why, size_t why_len)
{
    const char *mode = env_value("OPENEXEC_MODE");

    if (mode == NULL || strcmp(mode, "demo") == 0) {
        cfg->mode = OE_MODE_DEMO;
        return 0;
    }
    if (strcmp(mode, "clawshield") == 0) {
        cfg->mode = OE_MODE_CLAWSHIELD;
        return 0;
    }
    oe_message(why, why_len, "OPENEXEC_MODE must be 'demo' or 'clawshield', got '%.64s'", mode);
    return -1;
}

static int load_listen(oe_config *cfg, const char *host_flag, const char *port_flag, char *why,
                       size_t why_len)
{
    const char *host = host_flag ? host_flag : env_value("OPENEXEC_HOST");
    const char *port = port_flag ? port_flag : env_value("OPENEXEC_PORT");
    const char *threads = env_value("OPENEXEC_THREADS");
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    if (host != NULL && host[0] == '\0') {
        oe_message(why, why_len, "--host must not be empty");
        return -1;
    }
    cfg->host = strdup(host ? host : DEFAULT_HOST);
    cfg->port = DEFAULT_PORT;
    if (port != NULL && parse_int_range(port, 0, 65535, &cfg->port) != 0) {
        oe_message(why, why_len, "%s must be a port number 0-65535, got '%.32s'",
                   port_flag ? "--port" : "OPENEXEC_PORT", port);
        return -1;
    }
    const char *access_log = env_value("OPENEXEC_ACCESS_LOG");

    if (access_log == NULL || strcmp(access_log, "on") == 0) {
        cfg->access_log = 1;
    } else if (strcmp(access_log, "off") == 0) {
        cfg->access_log = 0;
    } else {
        oe_message(why, why_len, "OPENEXEC_ACCESS_LOG must be 'on' or 'off', got '%.32s'",
                   access_log);
        return -1;
    }
    const char *workers = env_value("OPENEXEC_ACTION_WORKERS");
    const char *queue = env_value("OPENEXEC_ACTION_QUEUE");

    cfg->action_workers = 8;
    if (workers != NULL && parse_int_range(workers, 1, 256, &cfg->action_workers) != 0) {
        oe_message(why, why_len, "OPENEXEC_ACTION_WORKERS must be 1-256, got '%.32s'", workers);
        return -1;
    }
    cfg->action_queue = 8 * cfg->action_workers;
    if (queue != NULL && parse_int_range(queue, 1, 65536, &cfg->action_queue) != 0) {
        oe_message(why, why_len, "OPENEXEC_ACTION_QUEUE must be 1-65536, got '%.32s'", queue);
        return -1;
    }
    /* One event loop per CPU but one, which the store's writer thread (the
     * group commit) needs under load: on two CPUs one loop answered more
     * executions, with a lower p99, than two that took turns with the
     * writer (docs/performance.md). */
    cfg->threads = ncpu > 2 ? (int)(ncpu - 1 < MAX_THREADS ? ncpu - 1 : MAX_THREADS) : 1;
    if (threads != NULL && parse_int_range(threads, 1, MAX_THREADS, &cfg->threads) != 0) {
        oe_message(why, why_len, "OPENEXEC_THREADS must be 1-%d, got '%.32s'", MAX_THREADS,
                   threads);
        return -1;
    }
    return cfg->host ? 0 : -1;
}

static int load_db(oe_config *cfg, char *why, size_t why_len)
{
    const char *url = env_value("OPENEXEC_DB_URL");
    const char *path;

    cfg->db_url = strdup(url ? url : CONFIG_DEFAULT_DB_URL);
    if (cfg->db_url == NULL)
        return -1;
    if (strncmp(cfg->db_url, "sqlite:///", 10) == 0) {
        /* sqlite:///rel.db is relative, sqlite:////abs.db absolute: the part
         * after the third slash is the path as SQLAlchemy reads it. */
        path = cfg->db_url + 10;
        if (path[0] == '\0') {
            oe_message(why, why_len, "OPENEXEC_DB_URL: sqlite URL has no file path");
            return -1;
        }
        cfg->db_kind = OE_DB_SQLITE;
        cfg->sqlite_path = strdup(path);
        return cfg->sqlite_path ? 0 : -1;
    }
    if (strncmp(cfg->db_url, "postgresql://", 13) == 0 ||
        strncmp(cfg->db_url, "postgres://", 11) == 0) {
        cfg->db_kind = OE_DB_POSTGRES;
        return 0;
    }
    /* Do not echo the URL: it may carry a password. */
    oe_message(why, why_len,
               "OPENEXEC_DB_URL must start with sqlite:/// or postgresql:// (or postgres://)");
    return -1;
}

/* The variable holds PEM text (SPEC 1).  As a convenience an operator may
 * also give the path of a PEM file: a value with no PEM armour that names a
 * readable file is read from there. */
static char *read_small_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t n;

    if (f == NULL)
        return NULL;
    data = malloc(MAX_PEM_FILE + 1);
    if (data == NULL)
        goto out;
    n = fread(data, 1, MAX_PEM_FILE, f);
    data[n] = '\0';
    *len = n;
out:
    fclose(f);
    return data;
}

/* Reads CLAWSHIELD_PUBLIC_KEY (PEM text, or the path of a PEM file) into
 * cfg->clawshield_keys; on failure says why in problem. */
static int load_clawshield_keys(oe_config *cfg, char *problem, size_t problem_len)
{
    const char *pem = env_value("CLAWSHIELD_PUBLIC_KEY");
    char reason[256] = "";
    char *file_text = NULL;
    size_t len = 0;
    int rc = 0;

    cfg->clawshield_keys.count = 0;
    if (pem == NULL) {
        snprintf(problem, problem_len, "CLAWSHIELD_PUBLIC_KEY is not set");
        return -1;
    }
    if (strstr(pem, "-----BEGIN") == NULL && (file_text = read_small_file(pem, &len)) != NULL)
        pem = file_text;
    else
        len = strlen(pem);
    if (keys_parse_public_pem(pem, len, &cfg->clawshield_keys, reason, sizeof(reason)) != 0) {
        cfg->clawshield_keys.count = 0;
        snprintf(problem, problem_len, "CLAWSHIELD_PUBLIC_KEY is not a usable Ed25519 key: %s",
                 reason);
        rc = -1;
    }
    free(file_text);
    return rc;
}

/* In clawshield mode both problems are said at start, whichever comes
 * first: an operator fixing the key should not learn about the tenant only
 * on the next restart (SPEC 1 wants the tenant warning in any case). */
static void load_clawshield(oe_config *cfg, char *warn, size_t warn_len)
{
    char problem[400];
    int keys_ok = load_clawshield_keys(cfg, problem, sizeof(problem)) == 0;

    cfg->tenant_id = dup_or_null(env_value("CLAWSHIELD_TENANT_ID"));
    if (cfg->mode != OE_MODE_CLAWSHIELD)
        return;
    if (!keys_ok) {
        cfg->key_problem = strdup(problem);
        snprintf(warn, warn_len, "%s; every /execute will be denied and /ready answers 503",
                 problem);
    }
    if (cfg->tenant_id == NULL) {
        size_t used = strlen(warn);
        snprintf(warn + used, warn_len - used,
                 "%sCLAWSHIELD_TENANT_ID is not set: artifacts of any tenant are accepted",
                 used > 0 ? "; " : "");
    }
}

/* Comma list; blanks trimmed, empty items dropped; nothing left = unrestricted. */
static int load_allow_list(oe_config *cfg, char *why, size_t why_len)
{
    const char *list = env_value("OPENEXEC_ALLOWED_ACTIONS");
    const char *p, *start, *end;
    size_t n = 0;

    cfg->allowed_actions = NULL;
    cfg->allowed_count = 0;
    if (list == NULL)
        return 0;
    cfg->allowed_actions = calloc(CONFIG_MAX_ALLOWED + 1, sizeof(char *));
    if (cfg->allowed_actions == NULL)
        return -1;
    for (p = list;; p++) {
        start = p;
        while (*p != '\0' && *p != ',')
            p++;
        end = p;
        while (start < end && isspace((unsigned char)*start))
            start++;
        while (end > start && isspace((unsigned char)end[-1]))
            end--;
        if (end > start) {
            if (n == CONFIG_MAX_ALLOWED) {
                oe_message(why, why_len, "OPENEXEC_ALLOWED_ACTIONS lists more than %d actions",
                           CONFIG_MAX_ALLOWED);
                return -1;
            }
            cfg->allowed_actions[n] = strndup(start, (size_t)(end - start));
            if (cfg->allowed_actions[n] == NULL)
                return -1;
            n++;
        }
        if (*p == '\0')
            break;
    }
    if (n == 0) {
        free(cfg->allowed_actions);
        cfg->allowed_actions = NULL;
    }
    cfg->allowed_count = n;
    return 0;
}

/* The origin names the log in every checkpoint (C2SP tlog-checkpoint: its
 * first line, and the signed-note key name, which allows no spaces and no
 * '+') and in every receipt; nothing that JSON would have to escape, so a
 * stored answer names its log plainly (store.c reads it back). */
static int valid_origin(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 255)
        return 0;
    for (; *s != '\0'; s++)
        if (*s < 0x21 || *s > 0x7e || *s == '+' || *s == '"' || *s == '\\')
            return 0;
    return 1;
}

static int load_receipts(oe_config *cfg, char *why, size_t why_len)
{
    const char *key = env_value("OPENEXEC_RECEIPT_KEY");
    const char *origin = env_value("OPENEXEC_LOG_ORIGIN");
    size_t n;

    if (origin != NULL && !valid_origin(origin)) {
        oe_message(why, why_len,
                   "OPENEXEC_LOG_ORIGIN must be 1-255 printable ASCII characters without spaces, "
                   "'+', '\"' or '\\' (e.g. example.com/openexec/prod-1)");
        return -1;
    }
    cfg->actions_file = dup_or_null(env_value("OPENEXEC_ACTIONS_FILE"));
    cfg->log_origin = dup_or_null(origin);
    if (key != NULL) {
        cfg->receipt_key_path = strdup(key);
    } else if (cfg->db_kind == OE_DB_SQLITE) {
        n = strlen(cfg->sqlite_path) + sizeof(".key");
        cfg->receipt_key_path = malloc(n);
        if (cfg->receipt_key_path)
            snprintf(cfg->receipt_key_path, n, "%s.key", cfg->sqlite_path);
    } else {
        cfg->receipt_key_path = strdup("openexec-receipt.key");
    }
    return cfg->receipt_key_path ? 0 : -1;
}

int config_load(oe_config *cfg, const char *host_flag, const char *port_flag, char *why,
                size_t why_len, char *warn, size_t warn_len)
{
    memset(cfg, 0, sizeof(*cfg));
    why[0] = '\0';
    warn[0] = '\0';
    if (load_mode(cfg, why, why_len) != 0 ||
        load_listen(cfg, host_flag, port_flag, why, why_len) != 0 ||
        load_db(cfg, why, why_len) != 0 || load_allow_list(cfg, why, why_len) != 0 ||
        load_receipts(cfg, why, why_len) != 0)
        goto fail;
    load_clawshield(cfg, warn, warn_len);
    return 0;

fail:
    if (why[0] == '\0')
        oe_message(why, why_len, "out of memory reading the configuration");
    config_free(cfg);
    return -1;
}

void config_free(oe_config *cfg)
{
    size_t i;

    free(cfg->host);
    free(cfg->db_url);
    free(cfg->sqlite_path);
    free(cfg->key_problem);
    free(cfg->tenant_id);
    if (cfg->allowed_actions) {
        for (i = 0; cfg->allowed_actions[i] != NULL; i++)
            free(cfg->allowed_actions[i]);
        free(cfg->allowed_actions);
    }
    free(cfg->actions_file);
    free(cfg->log_origin);
    free(cfg->receipt_key_path);
    memset(cfg, 0, sizeof(*cfg));
}

const char *config_mode_name(oe_mode mode)
{
    return mode == OE_MODE_CLAWSHIELD ? "clawshield" : "demo";
}

int config_action_allowed(const oe_config *cfg, const char *name, size_t len)
{
    size_t i;

    if (cfg->allowed_actions == NULL)
        return 1;
    for (i = 0; i < cfg->allowed_count; i++)
        if (strlen(cfg->allowed_actions[i]) == len &&
            memcmp(cfg->allowed_actions[i], name, len) == 0)
            return 1;
    return 0;
}

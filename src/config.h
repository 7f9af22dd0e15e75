/*
 * config.h - the environment and flags, read once into one immutable struct.
 *
 * config_load validates everything at start (SPEC 1): a value that cannot be
 * honoured is a fatal error (exit 2) with a message naming the variable;
 * the one exception the SPEC makes is clawshield mode with a missing or
 * unusable public key, which starts but is not ready (key_problem says why).
 * After config_load returns, nothing writes to the struct again.
 */
#ifndef OE_CONFIG_H
#define OE_CONFIG_H

#include <stddef.h>

#include "keys.h"

typedef enum { OE_MODE_DEMO, OE_MODE_CLAWSHIELD } oe_mode;
typedef enum { OE_DB_SQLITE, OE_DB_POSTGRES } oe_db_kind;

#define CONFIG_MAX_ALLOWED 256
#define CONFIG_DEFAULT_DB_URL "sqlite:///openexec.db"

typedef struct oe_config {
    oe_mode mode;
    char *host;
    int port;
    int threads;        /* event loops; OPENEXEC_THREADS, default: online CPUs */
    int access_log;     /* one JSON line per request; OPENEXEC_ACCESS_LOG=off disables */
    int action_workers; /* threads running exec actions; OPENEXEC_ACTION_WORKERS */
    int action_queue;   /* exec actions admitted at once; OPENEXEC_ACTION_QUEUE */

    char *db_url; /* as given; may hold a password: never log it */
    oe_db_kind db_kind;
    char *sqlite_path; /* OE_DB_SQLITE only */

    keys_public_set clawshield_keys; /* count 0 when unset or unusable */
    char *key_problem;               /* clawshield mode: why not ready; else NULL */
    char *tenant_id;                 /* NULL: any tenant */

    char **allowed_actions; /* NULL-terminated; NULL when unrestricted */
    size_t allowed_count;

    char *actions_file;     /* NULL when unset */
    char *log_origin;       /* NULL: default from the receipt key */
    char *receipt_key_path; /* resolved default when unset */
} oe_config;

/* Reads the environment and the serve flags (host/port may be NULL: use the
 * environment or defaults).  0 on success; -1 with a message in why (the
 * caller prints it and exits 2).  On success, warnings that do not stop the
 * start (e.g. clawshield without a tenant) are in warn (may be empty). */
int config_load(oe_config *cfg, const char *host_flag, const char *port_flag, char *why,
                size_t why_len, char *warn, size_t warn_len);
void config_free(oe_config *cfg);

const char *config_mode_name(oe_mode mode);
/* 1 when name is in the allow-list or the list is unrestricted. */
int config_action_allowed(const oe_config *cfg, const char *name, size_t len);

#endif

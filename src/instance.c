/*
 * instance.c - the instance's receipt key and log origin (see instance.h).
 */
#include "instance.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int instance_load(const oe_config *cfg, keys_private *key, char origin[INSTANCE_ORIGIN_MAX],
                  char *why, size_t why_len)
{
    char reason[256];
    int existed = access(cfg->receipt_key_path, F_OK) == 0;

    if (keys_load_or_create_private(cfg->receipt_key_path, key, reason, sizeof(reason)) != 0) {
        snprintf(why, why_len, "receipt key %s: %s", cfg->receipt_key_path, reason);
        return existed && access(cfg->receipt_key_path, R_OK) == 0 ? -2 : -1;
    }
    if (cfg->log_origin)
        snprintf(origin, INSTANCE_ORIGIN_MAX, "%s", cfg->log_origin);
    else
        snprintf(origin, INSTANCE_ORIGIN_MAX, "openexec/%s", key->key_id);
    return 0;
}

/* Whether a file can be created at path: its directory exists and we may
 * write there.  0, or -1 with errno. */
static int can_create(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    int rc;

    if (slash == NULL)
        return access(".", W_OK | X_OK);
    if ((dir = strndup(path, slash == path ? 1 : (size_t)(slash - path))) == NULL)
        return -1;
    rc = access(dir, W_OK | X_OK);
    free(dir);
    return rc;
}

int instance_check_files(const oe_config *cfg, char *why, size_t why_len)
{
    const char *key_path = cfg->receipt_key_path;
    char reason[256];
    struct stat st;

    if (access(key_path, F_OK) == 0) {
        keys_private key;
        if (keys_load_private_file(key_path, &key, reason, sizeof(reason)) != 0) {
            snprintf(why, why_len, "receipt key %s: %s", key_path, reason);
            return -1;
        }
        keys_private_wipe(&key);
    } else if (errno != ENOENT || can_create(key_path) != 0) {
        snprintf(why, why_len, "receipt key %s: cannot be created: %s", key_path, strerror(errno));
        return -1;
    }
    if (cfg->db_kind != OE_DB_SQLITE)
        return 0;
    if (stat(cfg->sqlite_path, &st) == 0) {
        /* A directory (sqlite:////, or a URL ending in '/') exists but is
         * no database: serve would fail to open it, so say so here. */
        if (!S_ISDIR(st.st_mode))
            return 0;
        snprintf(why, why_len, "database %s: is a directory, not a database file",
                 cfg->sqlite_path);
        return -1;
    }
    if (errno != ENOENT || can_create(cfg->sqlite_path) != 0) {
        snprintf(why, why_len, "database %s: cannot be created: %s", cfg->sqlite_path,
                 strerror(errno));
        return -1;
    }
    return 0;
}

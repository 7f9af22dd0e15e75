/*
 * instance.c - the instance's receipt key and log origin (see instance.h).
 */
#include "instance.h"

#include <stdio.h>

int instance_load(const oe_config *cfg, keys_private *key, char origin[INSTANCE_ORIGIN_MAX],
                  char *why, size_t why_len)
{
    char reason[256];

    if (keys_load_or_create_private(cfg->receipt_key_path, key, reason, sizeof(reason)) != 0) {
        snprintf(why, why_len, "receipt key %s: %s", cfg->receipt_key_path, reason);
        return -1;
    }
    if (cfg->log_origin)
        snprintf(origin, INSTANCE_ORIGIN_MAX, "%s", cfg->log_origin);
    else
        snprintf(origin, INSTANCE_ORIGIN_MAX, "openexec/%s", key->key_id);
    return 0;
}

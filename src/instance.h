/*
 * instance.h - who this OpenExec instance is: the receipt key that signs its
 * log and the log's origin (SPEC 5.2).  Shared by `serve` and the operator
 * subcommands that write to the log (`resolve`), so both sign as the same
 * instance.
 */
#ifndef OE_INSTANCE_H
#define OE_INSTANCE_H

#include <stddef.h>

#include "config.h"
#include "keys.h"

#define INSTANCE_ORIGIN_MAX 300

/* Loads OPENEXEC_RECEIPT_KEY (or creates the default key file, mode 0600)
 * and derives the origin: OPENEXEC_LOG_ORIGIN or "openexec/" + key id.
 * 0 ok; -1 with why when the key file could not be read or created, -2
 * when it exists but holds no usable key (a configuration error).  Wipe
 * the key with keys_private_wipe when done. */
int instance_load(const oe_config *cfg, keys_private *key, char origin[INSTANCE_ORIGIN_MAX],
                  char *why, size_t why_len);

/* What check-config asks of the files `serve` would use, without writing
 * anything: the receipt key loads, or can be created where it is missing;
 * a SQLite database's directory exists and is writable.  0, or -1 with
 * why. */
int instance_check_files(const oe_config *cfg, char *why, size_t why_len);

#endif

/*
 * actions.h - the action registry: built-ins (SPEC 3.1) and operator exec
 * actions (SPEC 6).
 *
 * The registry is built once at start from OPENEXEC_ACTIONS_FILE and sealed:
 * nothing registers actions while serving, so lookups need no locking.
 */
#ifndef OE_ACTIONS_H
#define OE_ACTIONS_H

#include <jansson.h>
#include <stddef.h>

#include "config.h"
#include "error.h"

typedef struct actions_registry actions_registry;
typedef struct action_def action_def;

/* Loads built-ins and, when configured, the actions file.  0 ok; -1 with a
 * reason naming the file, the action and the field. */
int actions_registry_load(const oe_config *cfg, actions_registry **out, char *why, size_t why_len);
void actions_registry_free(actions_registry *reg);

/* NULL when no action of that name is registered. */
const action_def *actions_find(const actions_registry *reg, const char *name, size_t len);
/* The registered names, sorted. */
const char *const *actions_names(const actions_registry *reg, size_t *count);
const char *actions_name(const action_def *def);
/* 1 for built-ins (pure: may run on an event loop), 0 for exec actions. */
int actions_is_builtin(const action_def *def);

/* Runs a built-in on payload (an object).  0 with *result a new reference;
 * -1 with err set (422 invalid_arguments). */
int actions_run(const action_def *def, const json_t *payload, json_t **result, oe_error *err);

/* Runs an exec action to completion on the calling thread (a worker, never
 * an event loop): fixed argv, no shell, scrubbed environment, own process
 * group, payload on stdin, timeout and output limits.  0 with *result (new
 * reference) when it exited 0 printing a JSON object; -1 with err set to
 * 502 action_failed and a detail naming exit code, signal, timeout or bad
 * output.  stderr goes to the server log, never into answers. */
int actions_exec(const action_def *def, const char *input, size_t input_len, json_t **result,
                 oe_error *err);

#endif

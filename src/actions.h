/*
 * actions.h - the action registry: built-ins (SPEC 3.1).
 *
 * The registry is fixed at start and never changes while serving, so
 * lookups need no locking.
 */
#ifndef OE_ACTIONS_H
#define OE_ACTIONS_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"

typedef struct action_def action_def;

/* NULL when no action of that name is registered. */
const action_def *actions_find(const char *name, size_t len);
/* The registered names, sorted; static storage. */
const char *const *actions_names(size_t *count);
const char *actions_name(const action_def *def);

/* Runs an action on payload (an object).  0 with *result a new reference to
 * the result object; -1 with err set (422 invalid_arguments). */
int actions_run(const action_def *def, const json_t *payload, json_t **result, oe_error *err);

#endif

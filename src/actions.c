/*
 * actions.c - the built-in actions echo and add (SPEC 3.1).
 *
 * Built-ins are pure functions of the payload: no I/O, no clock, no
 * randomness.  That is what lets the execute pipeline record a built-in's
 * claim and result in one transaction (SPEC 3.2).
 *
 * add: a and b default to 0; numbers only (JSON true/false are not
 * numbers here, unlike Python's bool); int + int stays an exact 64-bit
 * integer and overflow is refused rather than wrapped or rounded; any float
 * makes the sum a float, refused if it is not finite.
 */
#include "actions.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

typedef int (*action_fn)(const json_t *payload, json_t **result, oe_error *err);

struct action_def {
    const char *name;
    action_fn run;
};

static int run_echo(const json_t *payload, json_t **result, oe_error *err)
{
    *result = json_pack("{s:O}", "echo", (json_t *)payload);
    if (*result == NULL) {
        oe_error_set(err, 503, "busy", "Out of memory");
        return -1;
    }
    return 0;
}

static int add_operand(const json_t *payload, const char *key, json_t **out, oe_error *err)
{
    json_t *v = json_object_get(payload, key);

    if (v == NULL) {
        *out = NULL; /* defaults to 0 */
        return 0;
    }
    if (!json_is_integer(v) && !json_is_real(v)) {
        oe_error_set(err, 422, "invalid_arguments", "Invalid arguments: '%s' must be a number",
                     key);
        return -1;
    }
    *out = v;
    return 0;
}

static int run_add(const json_t *payload, json_t **result, oe_error *err)
{
    json_t *a, *b;
    json_t *sum;

    if (add_operand(payload, "a", &a, err) != 0 || add_operand(payload, "b", &b, err) != 0)
        return -1;
    if ((a == NULL || json_is_integer(a)) && (b == NULL || json_is_integer(b))) {
        long long x = a ? json_integer_value(a) : 0, y = b ? json_integer_value(b) : 0, s;
        if (__builtin_add_overflow(x, y, &s)) {
            oe_error_set(err, 422, "invalid_arguments",
                         "Invalid arguments: integer sum does not fit in 64 bits");
            return -1;
        }
        sum = json_integer(s);
    } else {
        double x = a ? json_number_value(a) : 0.0, y = b ? json_number_value(b) : 0.0;
        double s = x + y;
        if (!isfinite(s)) {
            oe_error_set(err, 422, "invalid_arguments", "Invalid arguments: sum is not finite");
            return -1;
        }
        sum = json_real(s);
    }
    *result = json_pack("{s:o}", "sum", sum);
    if (*result == NULL) {
        oe_error_set(err, 503, "busy", "Out of memory");
        return -1;
    }
    return 0;
}

/* Sorted by name: /health lists them in this order. */
static const action_def builtins[] = {
    {"add", run_add},
    {"echo", run_echo},
};
static const char *const builtin_names[] = {"add", "echo"};

const action_def *actions_find(const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
        if (strlen(builtins[i].name) == len && memcmp(builtins[i].name, name, len) == 0)
            return &builtins[i];
    return NULL;
}

const char *const *actions_names(size_t *count)
{
    *count = sizeof(builtin_names) / sizeof(builtin_names[0]);
    return builtin_names;
}

const char *actions_name(const action_def *def)
{
    return def->name;
}

int actions_run(const action_def *def, const json_t *payload, json_t **result, oe_error *err)
{
    *result = NULL;
    return def->run(payload, result, err);
}

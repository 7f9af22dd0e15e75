/*
 * request.c - the /execute request: strict parse and schema (SPEC 3).
 *
 * request_parse is the only way a body becomes an oe_request, so everything
 * downstream may rely on these invariants of a parsed request:
 *   - root is an object that canon_parse accepted (strict JSON, depth <= 64);
 *   - action and nonce are strings of 1..REQUEST_ACTION_MAX and
 *     1..REQUEST_NONCE_MAX bytes.  Either may hold U+0000 (JSON can carry
 *     \u0000 in a value): they are only ever hashed, compared, stored and
 *     quoted as bytes with their lengths, never as C strings, so
 *     "echo\u0000" is an unknown action, not echo;
 *   - payload is an object: missing or null is replaced in root by a new
 *     empty object, so it is owned by root like every other field;
 *   - artifact is an object or NULL (missing or null);
 *   - action_hash is SPEC 3.3's hash over action and payload.
 *
 * Schema checks run in the field order of SPEC 3's request line:
 * action, payload, nonce, approval_artifact; the first failure is reported
 * (422 invalid_request).  Unknown top-level fields are ignored (Compat).
 */
#include "request.h"

#include <string.h>

#include "canon.h"

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

/* A required string field of min..max bytes.  0 or -1 with err set. */
static int get_string(json_t *root, const char *name, size_t max, const char **s, size_t *len,
                      oe_error *err)
{
    json_t *v = json_object_get(root, name);

    if (v == NULL) {
        oe_error_set(err, 422, "invalid_request", "Field '%s' is required", name);
        return -1;
    }
    if (!json_is_string(v)) {
        oe_error_set(err, 422, "invalid_request", "Field '%s' must be a string, not %s", name,
                     json_type_name(v));
        return -1;
    }
    *s = json_string_value(v);
    *len = json_string_length(v);
    if (*len == 0 || *len > max) {
        oe_error_set(err, 422, "invalid_request",
                     "Field '%s' must be 1 to %zu bytes of UTF-8, got %zu bytes", name, max, *len);
        return -1;
    }
    return 0;
}

/* An optional object field: *out is the object, or NULL when the field is
 * missing or null. */
static int get_object_or_null(json_t *root, const char *name, json_t **out, oe_error *err)
{
    json_t *v = json_object_get(root, name);

    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_object(v)) {
        oe_error_set(err, 422, "invalid_request", "Field '%s' must be an object or null, not %s",
                     name, json_type_name(v));
        return -1;
    }
    *out = v;
    return 0;
}

int request_parse(const char *body, size_t len, oe_request *out, oe_error *err)
{
    oe_request req;

    memset(&req, 0, sizeof(req));
    memset(out, 0, sizeof(*out));
    if (canon_parse(body, len, &req.root, err) != 0)
        goto fail;
    if (get_string(req.root, "action", REQUEST_ACTION_MAX, &req.action, &req.action_len, err) != 0)
        goto fail;
    if (get_object_or_null(req.root, "payload", &req.payload, err) != 0)
        goto fail;
    if (req.payload == NULL) {
        /* Store the default in root so the request owns exactly one tree. */
        req.payload = json_object();
        if (req.payload == NULL || json_object_set_new(req.root, "payload", req.payload) != 0) {
            oe_error_set(err, 503, "busy", "Out of memory while parsing the request");
            goto fail;
        }
    }
    if (get_string(req.root, "nonce", REQUEST_NONCE_MAX, &req.nonce, &req.nonce_len, err) != 0)
        goto fail;
    if (get_object_or_null(req.root, "approval_artifact", &req.artifact, err) != 0)
        goto fail;
    if (canon_action_hash(req.action, req.action_len, req.payload, req.action_hash) != 0) {
        oe_error_set(err, 503, "busy", "Out of memory while computing the action hash");
        goto fail;
    }
    *out = req;
    return 0;

fail:
    json_decref(req.root);
    return -1;
}

void request_free(oe_request *req)
{
    if (req == NULL)
        return;
    json_decref(req->root);
    memset(req, 0, sizeof(*req));
}

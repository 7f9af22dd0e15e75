/*
 * request.h - the /execute request: strict parse and schema (SPEC 3).
 *
 * request_parse turns a body into a well-formed request or an error whose
 * status and code follow SPEC 2's order: 413 is the HTTP layer's, then 400
 * (invalid_json, not_an_object), then 422 unsupported_json (found while
 * parsing), then 422 invalid_request (schema: missing or wrong-typed field,
 * length limits: action 1..128 bytes, nonce 1..256 bytes).
 */
#ifndef OE_REQUEST_H
#define OE_REQUEST_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"

#define REQUEST_ACTION_MAX 128
#define REQUEST_NONCE_MAX 256

typedef struct oe_request {
    json_t *root;       /* owned; everything below borrows from it */
    const char *action; /* UTF-8, may contain NUL: compare with action_len */
    size_t action_len;
    const char *nonce; /* UTF-8, may contain NUL (\u0000 is valid in a value) */
    size_t nonce_len;
    json_t *payload;  /* borrowed; an empty object when missing or null */
    json_t *artifact; /* borrowed; NULL when missing or null */
    char action_hash[65];
} oe_request;

/* 0 on success (caller must request_free), -1 with err set (nothing to free). */
int request_parse(const char *body, size_t len, oe_request *out, oe_error *err);
void request_free(oe_request *req);

#endif

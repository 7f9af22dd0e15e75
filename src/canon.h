/*
 * canon.h - Python-compatible canonical JSON and strict JSON parsing (SPEC 3.3).
 *
 * ClawShield approvers sign sha256(json.dumps({"action","payload"},
 * sort_keys=True, separators=(",", ":"))) and the legacy receipt hashes
 * json.dumps(result, sort_keys=True).  A single differing byte denies every
 * approval, so canon_append reproduces CPython's bytes exactly for every
 * value canon_parse accepts.
 */
#ifndef OE_CANON_H
#define OE_CANON_H

#include <jansson.h>
#include <stddef.h>

#include "buf.h"
#include "error.h"

#define CANON_MAX_DEPTH 64

typedef enum {
    CANON_COMPACT, /* separators=(",", ":")   - action_hash */
    CANON_SPACED   /* separators=(", ", ": ") - Python's default, result_json */
} canon_style;

/* Appends json.dumps(value, sort_keys=True, ensure_ascii=True, separators of
 * `style`) to out.  0 on success, -1 if out overflowed its maximum or the
 * value is not representable (NaN/Inf, nesting deeper than CANON_MAX_DEPTH). */
int canon_append(oe_buf *out, const json_t *value, canon_style style);

/* Appends one JSON string literal, quotes included, escaped as Python's
 * ensure_ascii does.  `s` is UTF-8 of `len` bytes (may contain NUL). */
int canon_append_string(oe_buf *out, const char *s, size_t len);

/* Strict parse of a request body.  On success *out is a new reference the
 * caller must json_decref.  On failure err holds (SPEC 2):
 *   400 invalid_json      - not JSON, invalid UTF-8, raw NUL byte, NaN, ...
 *   400 not_an_object     - valid JSON whose top level is not an object
 *   422 unsupported_json  - duplicate keys, integer outside int64, number
 *                           overflowing a double, depth > 64, lone
 *                           surrogate escape, \u0000 inside an object key
 * and *out is NULL. */
int canon_parse(const char *body, size_t len, json_t **out, oe_error *err);

/* action_hash = sha256_hex(canon_compact({"action": action, "payload": payload}))
 * payload NULL or JSON null means {}.  out_hex gets 64 hex chars + NUL. */
int canon_action_hash(const char *action, size_t action_len, const json_t *payload,
                      char out_hex[65]);

/* result_json = json.dumps(result, sort_keys=True) (CANON_SPACED), and the
 * legacy receipt sha256_hex(exec_id + ":" + result_json).  */
int canon_legacy_receipt(const char *exec_id, const char *result_json, size_t result_json_len,
                         char out_hex[65]);

/* Lower-case hex of SHA-256 over data. */
void canon_sha256_hex(const void *data, size_t len, char out_hex[65]);

#endif

/*
 * answer.h - an HTTP answer as the layers below HTTP describe it.
 *
 * execute.c and the route handlers produce an oe_answer; server.c renders it
 * (status line, Content-Type, Retry-After, Idempotent-Replayed, X-Request-Id).
 * Keeping the answer a plain value is what lets a replay be byte-identical:
 * the stored (status, body) pair is the answer.
 */
#ifndef OE_ANSWER_H
#define OE_ANSWER_H

#include <stddef.h>

#include "buf.h"
#include "error.h"

typedef struct oe_answer {
    int status;
    char *body; /* malloc'd, owned by the answer */
    size_t body_len;
    const char *content_type; /* static; NULL means application/json */
    unsigned replayed : 1;    /* Idempotent-Replayed: true (SPEC 3.2) */
    const char *outcome;      /* /execute attempts: the receipt's outcome (static) */
    const char *error_code;   /* /execute attempts: the answer's stable code or NULL */
} oe_answer;

/* The SPEC 2 error body {"detail":...,"error":...} (compact, in that order)
 * for err.  Falls back to a static body if memory runs out; never fails. */
void answer_error(oe_answer *ans, const oe_error *err);
/* Appends "detail" and "error" members (without braces) to an object being
 * built, so callers that add members (id, signed_receipt) share the format. */
int answer_append_error_members(oe_buf *out, const oe_error *err);
/* Takes the buffer's contents as the body. */
void answer_take(oe_answer *ans, int status, oe_buf *body);
void answer_free(oe_answer *ans);

#endif

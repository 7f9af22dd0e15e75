/*
 * fuzz_canon.c - libFuzzer target for canon_parse / canon_append / request_parse.
 *
 * Properties checked on every input (abort() on a violation):
 *   1. Round trip: an accepted body canonicalizes in both styles to pure
 *      ASCII; the compact form parses again, is json_equal to the original
 *      and canonicalizes to the very same bytes (and so does the spaced one).
 *   2. Classification agrees with jansson run without our restrictions:
 *      if plain jansson accepts the body, canon_parse never says
 *      invalid_json; if plain jansson's first error is a syntax error,
 *      canon_parse says invalid_json.
 *   3. The same check on `{"a":0,"a":0,"v":` + input + `}`.  Here jansson
 *      (strict) always stops at the duplicate first, so the 400-vs-422
 *      decision is made by canon.c's own syntax validator: this pins that
 *      validator to jansson's grammar for arbitrary input.
 *   4. request_parse never crashes or leaks on whatever canon_parse accepts.
 *
 * Build: CC=clang cmake -S . -B build-fuzz -DOE_FUZZ=ON && make -C build-fuzz fuzz_canon
 * Run:   build-fuzz/fuzz_canon -max_len=4096 fuzz/corpus/canon
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PREFIX "{\"a\":0,\"a\":0,\"v\":"

/* jansson errors that are SPEC 3.3 rejections rather than "not JSON" */
static int restriction_error(const json_error_t *e)
{
    switch (json_error_code(e)) {
    case json_error_duplicate_key:
    case json_error_numeric_overflow:
    case json_error_null_byte_in_key:
    case json_error_stack_overflow:
    case json_error_out_of_memory:
        return 1;
    default:
        return strncmp(e->text, "invalid Unicode '", 17) == 0;
    }
}

static int is_ascii(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if ((unsigned char)s[i] >= 0x80 || (unsigned char)s[i] < 0x20)
            return 0;
    }
    return 1;
}

static void check_round_trip(const json_t *v)
{
    oe_buf c, s, c2, c3;
    json_t *again = NULL, *again_spaced = NULL;
    oe_error err;

    oe_buf_init(&c, 1 << 24);
    oe_buf_init(&s, 1 << 24);
    oe_buf_init(&c2, 1 << 24);
    oe_buf_init(&c3, 1 << 24);
    if (canon_append(&c, v, CANON_COMPACT) != 0 || canon_append(&s, v, CANON_SPACED) != 0)
        abort(); /* everything canon_parse accepts has a canonical form */
    if (!is_ascii(c.data, c.len) || !is_ascii(s.data, s.len))
        abort();
    if (canon_parse(c.data, c.len, &again, &err) != 0 || !json_equal(v, again))
        abort();
    if (canon_parse(s.data, s.len, &again_spaced, &err) != 0 || !json_equal(v, again_spaced))
        abort();
    if (canon_append(&c2, again, CANON_COMPACT) != 0 || c2.len != c.len ||
        memcmp(c2.data, c.data, c.len) != 0)
        abort();
    if (canon_append(&c3, again_spaced, CANON_COMPACT) != 0 || c3.len != c.len ||
        memcmp(c3.data, c.data, c.len) != 0)
        abort();
    json_decref(again);
    json_decref(again_spaced);
    oe_buf_free(&c);
    oe_buf_free(&s);
    oe_buf_free(&c2);
    oe_buf_free(&c3);
}

/* Property 2 for one body; returns canon_parse's value (or NULL). */
static json_t *check_classification(const char *body, size_t len)
{
    json_error_t jerr;
    json_t *plain = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    json_t *v = NULL;
    oe_error err;
    int rc;

    oe_error_clear(&err);
    rc = canon_parse(body, len, &v, &err);
    if (rc == 0 && (v == NULL || !json_is_object(v)))
        abort();
    if (rc != 0 && (v != NULL || err.code == NULL))
        abort();
    if (memchr(body, '\0', len) != NULL) {
        /* SPEC 2: a raw NUL is 400 however jansson sees it (it takes a NUL
         * at the very end for the end of input, so "6\0" would pass) */
        if (rc == 0 || strcmp(err.code, "invalid_json") != 0)
            abort();
    } else if (plain != NULL) {
        if (rc != 0 && strcmp(err.code, "invalid_json") == 0)
            abort(); /* valid JSON called invalid */
    } else if (!restriction_error(&jerr)) {
        if (rc == 0 || strcmp(err.code, "invalid_json") != 0)
            abort(); /* a syntax error that was not reported as 400 */
    }
    json_decref(plain);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    json_t *v;
    char *wrapped;
    oe_request req;
    oe_error err;

    v = check_classification(body, size);
    if (v != NULL) {
        check_round_trip(v);
        json_decref(v);
        if (request_parse(body, size, &req, &err) == 0)
            request_free(&req);
    }

    wrapped = malloc(sizeof(PREFIX) + size + 1);
    if (wrapped == NULL)
        return 0;
    memcpy(wrapped, PREFIX, sizeof(PREFIX) - 1);
    memcpy(wrapped + sizeof(PREFIX) - 1, data, size);
    wrapped[sizeof(PREFIX) - 1 + size] = '}';
    v = check_classification(wrapped, sizeof(PREFIX) + size);
    if (v != NULL)
        abort(); /* the duplicate key alone makes it a 422 */
    free(wrapped);
    return 0;
}

/*
 * error.h - the one error type every module fills.
 *
 * An oe_error carries what an HTTP answer needs: the status, the SPEC's
 * stable machine code (a string literal, never freed) and a human message.
 * Modules below the HTTP layer still pick the status, because the SPEC ties
 * each code to exactly one status; the HTTP layer only renders it.
 */
#ifndef OE_ERROR_H
#define OE_ERROR_H

#include <stddef.h>

#define OE_ERROR_DETAIL_MAX 512

typedef struct oe_error {
    int status;       /* HTTP status, 0 when no error has been set */
    const char *code; /* stable code, e.g. "invalid_json"; static storage */
    char detail[OE_ERROR_DETAIL_MAX];
} oe_error;

/* Sets all three fields; the detail is formatted and truncated to fit. */
void oe_error_set(oe_error *err, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Resets to "no error". */
void oe_error_clear(oe_error *err);

/* Bounded formatting into a fixed buffer: returns the length it wanted, like
 * snprintf/strlcpy, so callers can detect truncation (ret >= size). */
size_t oe_strlcpy(char *dst, const char *src, size_t size);

#endif

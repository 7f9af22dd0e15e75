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
    /* detail_len bytes of UTF-8, NUL-terminated; a client's string quoted
     * in it may hold U+0000 (oe_error_set_quoting), so answers render
     * detail_len bytes, not up to the first NUL. */
    char detail[OE_ERROR_DETAIL_MAX];
    size_t detail_len;
} oe_error;

/* Sets all three fields; the detail is formatted and truncated to fit. */
void oe_error_set(oe_error *err, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same with the detail before + text + after, where text is a client's
 * string of text_len bytes (U+0000 included) quoted as it is, as the
 * SPEC's texts quote them ("Unknown action: X").  text is cut at a
 * character boundary when the whole would not fit. */
void oe_error_set_quoting(oe_error *err, int status, const char *code, const char *before,
                          const char *text, size_t text_len, const char *after);

/* Resets to "no error". */
void oe_error_clear(oe_error *err);

/* Bounded formatting into a fixed buffer: returns the length it wanted, like
 * snprintf/strlcpy, so callers can detect truncation (ret >= size). */
size_t oe_strlcpy(char *dst, const char *src, size_t size);

#endif

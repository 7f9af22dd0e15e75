/*
 * error.c - oe_error helpers (see error.h).
 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A truncated detail may end inside a UTF-8 sequence (a long tenant name,
 * say); cut back to the last whole character so it stays valid text. */
static void trim_partial_utf8(char *s)
{
    size_t len = strlen(s), start = len, need;
    unsigned char lead;

    while (start > 0 && ((unsigned char)s[start - 1] & 0xC0) == 0x80 && len - start < 3)
        start--;
    if (start == 0)
        return;
    lead = (unsigned char)s[start - 1];
    if (lead < 0x80)
        return; /* ends in ASCII: nothing partial */
    need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (len - (start - 1) < need)
        s[start - 1] = '\0';
}

void oe_error_set(oe_error *err, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (err == NULL)
        return;
    err->status = status;
    err->code = code;
    va_start(ap, fmt);
    n = vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof(err->detail))
        trim_partial_utf8(err->detail);
    if (n < 0)
        err->detail[0] = '\0';
    err->detail_len = strlen(err->detail);
}

/* The longest prefix of s[0..len) of at most max bytes that ends at a
 * character boundary. */
static size_t cut_at_character(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--; /* s[max] continues a sequence that began before it */
    return max;
}

void oe_error_set_quoting(oe_error *err, int status, const char *code, const char *before,
                          const char *text, size_t text_len, const char *after)
{
    size_t room = sizeof(err->detail) - 1, n, tail;

    if (err == NULL)
        return;
    err->status = status;
    err->code = code;
    n = cut_at_character(before, strlen(before), room);
    tail = cut_at_character(after, strlen(after), room - n);
    text_len = cut_at_character(text, text_len, room - n - tail);
    memcpy(err->detail, before, n);
    memcpy(err->detail + n, text, text_len);
    memcpy(err->detail + n + text_len, after, tail);
    err->detail_len = n + text_len + tail;
    err->detail[err->detail_len] = '\0';
}

void oe_error_clear(oe_error *err)
{
    err->status = 0;
    err->code = NULL;
    err->detail[0] = '\0';
    err->detail_len = 0;
}

size_t oe_strlcpy(char *dst, const char *src, size_t size)
{
    size_t len = strlen(src);

    if (size > 0) {
        size_t n = len < size - 1 ? len : size - 1;
        memcpy(dst, src, n);
        dst[n] = '\0';
    }
    return len;
}

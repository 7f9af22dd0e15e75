/*
 * util.c - ids, clocks and messages (see util.h).
 */
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include <sodium.h>

/* Plain nibble arithmetic, no snprintf: a request id and an exec id are
 * formatted on every request's path. */
static void format_uuid4(unsigned char b[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    size_t i, o = 0;

    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

void oe_uuid4(char out[37])
{
    unsigned char b[16];

    randombytes_buf(b, sizeof(b));
    format_uuid4(b, out);
}

void oe_exec_id(char out[37])
{
    uint64_t ms = (uint64_t)(oe_now_us() / 1000);
    unsigned char b[16];
    int i;

    randombytes_buf(b, sizeof(b));
    for (i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    format_uuid4(b, out);
}

/* The proleptic Gregorian date of a day count since 1970-01-01 (H.
 * Hinnant's civil_from_days; exact for every day of years 1..9999). */
static void civil_from_days(int64_t z, int64_t *y, int64_t *m, int64_t *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

/* Writes v as exactly `width` decimal digits, zero-padded. */
static char *put_digits(char *p, int64_t v, int width)
{
    int i;

    for (i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

void oe_format_utc(int64_t us, char out[OE_UTC_TEXT_LEN + 1])
{
    /* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z */
    const int64_t min_us = -62135596800LL * 1000000, max_us = 253402300799999999LL;
    int64_t secs, micros, days, rem, y, m, d;
    char *p = out;

    us = us < min_us ? min_us : us > max_us ? max_us : us;
    secs = us / 1000000;
    micros = us % 1000000;
    if (micros < 0) { /* floor division, for times before 1970 */
        micros += 1000000;
        secs -= 1;
    }
    days = secs / 86400;
    rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days -= 1;
    }
    civil_from_days(days, &y, &m, &d);
    p = put_digits(p, y, 4);
    *p++ = '-';
    p = put_digits(p, m, 2);
    *p++ = '-';
    p = put_digits(p, d, 2);
    *p++ = 'T';
    p = put_digits(p, rem / 3600, 2);
    *p++ = ':';
    p = put_digits(p, rem / 60 % 60, 2);
    *p++ = ':';
    p = put_digits(p, rem % 60, 2);
    *p++ = '.';
    p = put_digits(p, micros, 6);
    *p++ = 'Z';
    *p = '\0';
}

int64_t oe_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

uint64_t oe_monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t oe_monotonic_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void oe_message(char *out, size_t out_len, const char *fmt, ...)
{
    va_list ap;

    if (out == NULL || out_len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(out, out_len, fmt, ap);
    va_end(ap);
}

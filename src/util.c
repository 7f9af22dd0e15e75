/*
 * util.c - ids, clocks and messages (see util.h).
 */
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include <sodium.h>

static void format_uuid4(unsigned char b[16], char out[37])
{
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
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

/*
 * util.h - small helpers with no better home: ids and clocks.
 */
#ifndef OE_UTIL_H
#define OE_UTIL_H

#include <stdint.h>

/* A random (version 4) UUID in its 36-character text form, NUL-terminated. */
void oe_uuid4(char out[37]);
/* Wall-clock time in microseconds since the Unix epoch (UTC). */
int64_t oe_now_us(void);
/* Monotonic milliseconds, for timeouts, and microseconds, for latencies. */
uint64_t oe_monotonic_ms(void);
uint64_t oe_monotonic_us(void);

#endif

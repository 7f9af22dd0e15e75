/*
 * util.h - small helpers with no better home: ids, clocks, messages.
 */
#ifndef OE_UTIL_H
#define OE_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* A random (version 4) UUID in its 36-character text form, NUL-terminated. */
void oe_uuid4(char out[37]);
/* An execution id: a version-4 UUID whose first 48 bits are the time in
 * milliseconds (big-endian, as in UUIDv7) and whose other 74 bits are
 * random.  Ids made close in time sort close together, so the index that
 * finds receipts by exec_id grows at its end instead of taking a page write
 * at a random place for every attempt (docs/performance.md); clients that
 * parse it as a version-4 UUID still can. */
void oe_exec_id(char out[37]);
/* Wall-clock time in microseconds since the Unix epoch (UTC). */
int64_t oe_now_us(void);

/* us (microseconds since 1970, UTC) as "YYYY-MM-DDTHH:MM:SS.ffffffZ", the
 * time of receipts and log lines.  Plain digit arithmetic, no libc
 * formatting: it is on every request's path.  Clamped to years 1..9999. */
#define OE_UTC_TEXT_LEN 27
void oe_format_utc(int64_t us, char out[OE_UTC_TEXT_LEN + 1]);
/* Monotonic milliseconds, for timeouts, and microseconds, for latencies. */
uint64_t oe_monotonic_ms(void);
uint64_t oe_monotonic_us(void);

/* snprintf for messages (a reason into a caller's `why` buffer, a name to
 * print), where cutting a long one short is fine.  out may be NULL when
 * out_len is 0. */
void oe_message(char *out, size_t out_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

/*
 * log.h - the server's log: one line per event on stderr, JSON objects, so a
 * log shipper can parse them without guessing.  Never log payloads, keys or
 * database URLs.
 */
#ifndef OE_LOG_H
#define OE_LOG_H

/* level: "info", "warn", "error".  msg is printf-formatted and JSON-escaped. */
void oe_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

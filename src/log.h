/*
 * log.h - the server's log: one line per event on stderr, JSON objects, so a
 * log shipper can parse them without guessing.  Never log payloads, keys or
 * database URLs.
 */
#ifndef OE_LOG_H
#define OE_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* level: "info", "warn", "error".  msg is printf-formatted and JSON-escaped. */
void oe_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The access log line of one answered request, appended to `pending` (an
 * event loop's own buffer) and written by oe_log_flush: one write(2) per
 * loop iteration instead of one per request.  Every write holds whole
 * lines and at most PIPE_BUF bytes, so lines of several loops never
 * interleave, even on a pipe.  outcome may be NULL. */
void oe_log_request(oe_buf *pending, const char *method, size_t method_len, const char *path,
                    size_t path_len, int status, const char *request_id, uint64_t duration_us,
                    const char *outcome);
/* Writes and empties `pending`. */
void oe_log_flush(oe_buf *pending);

#endif

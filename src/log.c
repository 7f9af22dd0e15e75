/*
 * log.c - structured log lines (see log.h).
 *
 * Each write(2) holds whole lines, so lines from several threads never
 * interleave: a line of oe_log at once, access log lines gathered per event
 * loop iteration (a write per request was a twentieth of a loop's CPU
 * under load) in writes of at most PIPE_BUF bytes, which POSIX keeps whole
 * on a pipe too.
 */
#include "log.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "canon.h"
#include "util.h"

#define LOG_LINE_MAX 8192

static void write_line(oe_buf *line)
{
    if (!line->failed && write(STDERR_FILENO, line->data, line->len) < 0) {
        /* Nowhere left to report a failing log. */
    }
}

void oe_log_flush(oe_buf *pending)
{
    if (pending->len > 0)
        write_line(pending);
    oe_buf_reset(pending);
}

static void queue_line(oe_buf *pending, oe_buf *line)
{
    if (line->len > PIPE_BUF) {
        write_line(line); /* too long to share a write */
        return;
    }
    if (pending->len + line->len > PIPE_BUF)
        oe_log_flush(pending);
    if (oe_buf_append(pending, line->data, line->len) != 0) {
        pending->failed = 0; /* out of memory: what is queued stays queued */
        write_line(line);
    }
}

/* One line per request, on every request's path: plain appends, no printf
 * (its formatting was a tenth of an event loop's time under load). */
void oe_log_request(oe_buf *pending, const char *method, size_t method_len, const char *path,
                    size_t path_len, int status, const char *request_id, uint64_t duration_us,
                    const char *outcome)
{
    char ts[OE_UTC_TEXT_LEN + 1], frac[4];
    oe_buf line;

    oe_format_utc(oe_now_us(), ts);
    oe_buf_init(&line, LOG_LINE_MAX);
    oe_buf_puts(&line, "{\"time\":\"");
    oe_buf_puts(&line, ts);
    oe_buf_puts(&line, "\",\"level\":\"info\",\"msg\":\"request\",\"method\":");
    canon_append_string(&line, method, method_len);
    oe_buf_puts(&line, ",\"path\":");
    /* The path without its query string; bounded like everything else. */
    canon_append_string(&line, path, path_len > 512 ? 512 : path_len);
    oe_buf_puts(&line, ",\"status\":");
    oe_buf_put_u64(&line, (uint64_t)(status < 0 ? 0 : status));
    oe_buf_puts(&line, ",\"request_id\":");
    canon_append_string(&line, request_id, strlen(request_id));
    /* Milliseconds with three decimals, as %.3f of duration_us / 1000. */
    oe_buf_puts(&line, ",\"duration_ms\":");
    oe_buf_put_u64(&line, duration_us / 1000);
    frac[0] = '.';
    frac[1] = (char)('0' + duration_us / 100 % 10);
    frac[2] = (char)('0' + duration_us / 10 % 10);
    frac[3] = (char)('0' + duration_us % 10);
    oe_buf_append(&line, frac, sizeof(frac));
    if (outcome != NULL) {
        oe_buf_puts(&line, ",\"outcome\":\"");
        oe_buf_puts(&line, outcome);
        oe_buf_putc(&line, '"');
    }
    oe_buf_puts(&line, "}\n");
    if (!line.failed)
        queue_line(pending, &line);
    oe_buf_free(&line);
}

void oe_log(const char *level, const char *fmt, ...)
{
    char msg[4096];
    char ts[OE_UTC_TEXT_LEN + 1];
    oe_buf line;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    oe_format_utc(oe_now_us(), ts);

    oe_buf_init(&line, LOG_LINE_MAX);
    oe_buf_printf(&line, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":", ts, level);
    canon_append_string(&line, msg, strlen(msg));
    oe_buf_puts(&line, "}\n");
    write_line(&line);
    oe_buf_free(&line);
}

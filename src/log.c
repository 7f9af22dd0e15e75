/*
 * log.c - structured log lines (see log.h).
 *
 * Each line is written with a single write(2) so lines from several threads
 * never interleave.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "canon.h"

#define LOG_LINE_MAX 8192

static void stamp_now(char *ts, size_t cap)
{
    struct timespec now;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000);
}

static void write_line(oe_buf *line)
{
    if (!line->failed && write(STDERR_FILENO, line->data, line->len) < 0) {
        /* Nowhere left to report a failing log. */
    }
}

void oe_log_request(const char *method, size_t method_len, const char *path, size_t path_len,
                    int status, const char *request_id, uint64_t duration_us, const char *outcome)
{
    char ts[96];
    oe_buf line;

    stamp_now(ts, sizeof(ts));
    oe_buf_init(&line, LOG_LINE_MAX);
    oe_buf_printf(&line, "{\"time\":\"%s\",\"level\":\"info\",\"msg\":\"request\",\"method\":", ts);
    canon_append_string(&line, method, method_len);
    oe_buf_puts(&line, ",\"path\":");
    /* The path without its query string; bounded like everything else. */
    canon_append_string(&line, path, path_len > 512 ? 512 : path_len);
    oe_buf_printf(&line, ",\"status\":%d,\"request_id\":", status);
    canon_append_string(&line, request_id, strlen(request_id));
    oe_buf_printf(&line, ",\"duration_ms\":%.3f", (double)duration_us / 1000.0);
    if (outcome != NULL)
        oe_buf_printf(&line, ",\"outcome\":\"%s\"", outcome);
    oe_buf_puts(&line, "}\n");
    write_line(&line);
    oe_buf_free(&line);
}

void oe_log(const char *level, const char *fmt, ...)
{
    char msg[4096];
    char ts[96];
    oe_buf line;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    stamp_now(ts, sizeof(ts));

    oe_buf_init(&line, LOG_LINE_MAX);
    oe_buf_printf(&line, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":", ts, level);
    canon_append_string(&line, msg, strlen(msg));
    oe_buf_puts(&line, "}\n");
    write_line(&line);
    oe_buf_free(&line);
}

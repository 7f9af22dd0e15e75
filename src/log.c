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

void oe_log(const char *level, const char *fmt, ...)
{
    char msg[4096];
    char ts[96];
    struct timespec now;
    struct tm tm;
    oe_buf line;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000);

    oe_buf_init(&line, LOG_LINE_MAX);
    oe_buf_printf(&line, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":", ts, level);
    canon_append_string(&line, msg, strlen(msg));
    oe_buf_puts(&line, "}\n");
    if (!line.failed && write(STDERR_FILENO, line.data, line.len) < 0) {
        /* Nowhere left to report a failing log. */
    }
    oe_buf_free(&line);
}

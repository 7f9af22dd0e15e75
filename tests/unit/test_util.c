/*
 * test_util.c - oe_format_utc, the time of every receipt and log line,
 * against libc's gmtime_r: day boundaries, leap days, century years, the
 * clamps at years 1 and 9999, and a million pseudo-random instants.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "util.h"

static void by_gmtime(int64_t us, char out[64])
{
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;

    gmtime_r(&secs, &tm);
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(us % 1000000));
}

static void check_against_gmtime(int64_t us)
{
    char got[OE_UTC_TEXT_LEN + 1], want[64];

    oe_format_utc(us, got);
    by_gmtime(us, want);
    if (!CHECK_STR(got, want))
        fprintf(stderr, "  at %lld us\n", (long long)us);
}

static void test_known_instants(void)
{
    char t[OE_UTC_TEXT_LEN + 1];

    oe_format_utc(0, t);
    CHECK_STR(t, "1970-01-01T00:00:00.000000Z");
    oe_format_utc(951782400000001LL, t); /* 2000-02-29, a leap day of a 400-year */
    CHECK_STR(t, "2000-02-29T00:00:00.000001Z");
    oe_format_utc(4107542399999999LL, t); /* 2100-02-28, no leap day that century */
    CHECK_STR(t, "2100-02-28T23:59:59.999999Z");
    oe_format_utc(-1, t); /* floor division before 1970 */
    CHECK_STR(t, "1969-12-31T23:59:59.999999Z");
    CHECK_INT(strlen(t), OE_UTC_TEXT_LEN);
}

static void test_clamped_to_years_1_through_9999(void)
{
    char t[OE_UTC_TEXT_LEN + 1];

    oe_format_utc(INT64_MIN, t);
    CHECK_STR(t, "0001-01-01T00:00:00.000000Z");
    oe_format_utc(INT64_MAX, t);
    CHECK_STR(t, "9999-12-31T23:59:59.999999Z");
}

static void test_matches_gmtime(void)
{
    uint64_t x = 88172645463325252ULL; /* xorshift64 */
    int64_t day;
    int i;

    for (day = 0; day < 366 * 400; day += 7) /* every weekday of a 400-year cycle */
        check_against_gmtime(day * 86400000000LL + 86399999999LL);
    for (i = 0; i < 1000000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        check_against_gmtime((int64_t)(x % 253402300800000000ULL)); /* 1970..9999 */
    }
}

int main(void)
{
    RUN(test_known_instants);
    RUN(test_clamped_to_years_1_through_9999);
    RUN(test_matches_gmtime);
    return tu_finish();
}

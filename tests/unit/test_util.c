/*
 * test_util.c - oe_format_utc, the time of every receipt and log line,
 * against libc's gmtime_r: day boundaries, leap days, century years, the
 * clamps at years 1 and 9999, and a million pseudo-random instants; and
 * oe_buf_put_base64, the encoding of every inclusion proof, against
 * RFC 4648's vectors and libsodium's encoder; the text form of the ids;
 * oe_error_set_quoting, which quotes a client's string, U+0000 included.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "buf.h"
#include "error.h"
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

static void test_base64_rfc4648_vectors(void)
{
    static const char *const vectors[][2] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    size_t i;

    for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        oe_buf b;

        oe_buf_init(&b, 64);
        CHECK(oe_buf_put_base64(&b, vectors[i][0], strlen(vectors[i][0])) == 0);
        CHECK_STR(b.data ? b.data : "", vectors[i][1]);
        oe_buf_free(&b);
    }
}

/* Every length up to 200, every byte value in every position of a group. */
static void test_base64_matches_libsodium(void)
{
    unsigned char in[200];
    char want[sodium_base64_ENCODED_LEN(200, sodium_base64_VARIANT_ORIGINAL)];
    size_t len, i;

    for (i = 0; i < sizeof(in); i++)
        in[i] = (unsigned char)(i * 97 + 13);
    for (len = 0; len <= sizeof(in); len++) {
        oe_buf b;

        oe_buf_init(&b, 1024);
        oe_buf_puts(&b, "x");
        CHECK(oe_buf_put_base64(&b, in, len) == 0);
        sodium_bin2base64(want, sizeof(want), in, len, sodium_base64_VARIANT_ORIGINAL);
        if (!CHECK_STR(b.data + 1, want))
            fprintf(stderr, "  length %zu\n", len);
        oe_buf_free(&b);
    }
}

static void test_base64_respects_the_buffer_bound(void)
{
    unsigned char in[32] = {0};
    oe_buf b;

    oe_buf_init(&b, 43); /* 32 bytes need 44 characters */
    oe_buf_puts(&b, "kept");
    CHECK(oe_buf_put_base64(&b, in, sizeof(in)) == -1);
    CHECK(b.failed);
    CHECK_STR(b.data, "kept");
    oe_buf_free(&b);
}

/* 8-4-4-4-12 lowercase hex digits, version 4, RFC 4122 variant. */
static int is_uuid4_text(const char *s)
{
    size_t i;

    if (strlen(s) != 36)
        return 0;
    for (i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static void test_ids_are_uuid4_text(void)
{
    char a[37], b[37];
    int i;

    for (i = 0; i < 1000; i++) {
        oe_uuid4(a);
        oe_uuid4(b);
        if (!CHECK(is_uuid4_text(a)) || !CHECK(strcmp(a, b) != 0))
            fprintf(stderr, "  %s %s\n", a, b);
    }
}

/* The first 48 bits of an exec id are the time in milliseconds. */
static void test_exec_id_starts_with_the_time(void)
{
    char id[37], digits[13];
    uint64_t before = (uint64_t)(oe_now_us() / 1000), after, ms;

    oe_exec_id(id);
    after = (uint64_t)(oe_now_us() / 1000);
    CHECK(is_uuid4_text(id));
    memcpy(digits, id, 8);
    memcpy(digits + 8, id + 9, 4);
    digits[12] = '\0';
    ms = strtoull(digits, NULL, 16);
    CHECK(ms >= before && ms <= after);
}

static void test_quoting_keeps_nul_and_length(void)
{
    oe_error err;

    oe_error_set_quoting(&err, 400, "unknown_action", "Unknown action: ", "ec\0ho", 5, "!");
    CHECK_INT(err.status, 400);
    CHECK_STR(err.code, "unknown_action");
    CHECK_INT(err.detail_len, 22);
    CHECK_MEM(err.detail, "Unknown action: ec\0ho!", 23);
    oe_error_set(&err, 422, "x", "plain %d", 7);
    CHECK_INT(err.detail_len, 7);
    oe_error_clear(&err);
    CHECK_INT(err.detail_len, 0);
}

/* A text too long for the detail is cut at a character, never inside one,
 * and what follows it is kept. */
static void test_quoting_cuts_at_a_character(void)
{
    char text[2 * OE_ERROR_DETAIL_MAX];
    oe_error err;
    size_t i;

    for (i = 0; i + 2 <= sizeof(text); i += 2)
        memcpy(text + i, "\xc3\xa9", 2); /* U+00E9, two bytes */
    oe_error_set_quoting(&err, 403, "c", "abc", text, sizeof(text), "xyz");
    CHECK(err.detail_len <= OE_ERROR_DETAIL_MAX - 1);
    CHECK_INT(err.detail_len, OE_ERROR_DETAIL_MAX - 2); /* 3 + 252 * 2 + 3 */
    CHECK_MEM(err.detail, "abc", 3);
    CHECK_MEM(err.detail + err.detail_len - 3, "xyz", 4);
    CHECK_MEM(err.detail + err.detail_len - 5, "\xc3\xa9", 2);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    RUN(test_base64_rfc4648_vectors);
    RUN(test_base64_matches_libsodium);
    RUN(test_base64_respects_the_buffer_bound);
    RUN(test_ids_are_uuid4_text);
    RUN(test_quoting_keeps_nul_and_length);
    RUN(test_quoting_cuts_at_a_character);
    RUN(test_exec_id_starts_with_the_time);
    RUN(test_known_instants);
    RUN(test_clamped_to_years_1_through_9999);
    RUN(test_matches_gmtime);
    return tu_finish();
}

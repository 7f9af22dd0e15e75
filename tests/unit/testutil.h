/*
 * testutil.h - tiny assertion helpers shared by the unit tests.
 *
 * Each tests/unit/test_*.c is its own executable, so the counters below are
 * per test program.  A failed check prints file:line and the expression,
 * and the run continues, so one broken case does not hide the others;
 * tu_finish() turns the count into the exit status ctest looks at.
 *
 *   CHECK(cond)                 any condition
 *   CHECK_INT(a, b)             integers equal (printed on failure)
 *   CHECK_STR(a, b)             C strings equal (NULL-safe)
 *   CHECK_MEM(a, b, n)          n bytes equal
 *   RUN(fn)                     runs `static void fn(void)`, prints its name
 *   return tu_finish();         at the end of main
 */
#ifndef OE_TESTUTIL_H
#define OE_TESTUTIL_H

#include <stdio.h>
#include <string.h>

static int tu_checks __attribute__((unused));
static int tu_failures __attribute__((unused));

static inline int tu_check(int ok, const char *expr, const char *file, int line)
{
    tu_checks++;
    if (!ok) {
        tu_failures++;
        fprintf(stderr, "FAIL %s:%d: %s\n", file, line, expr);
    }
    return ok;
}

static inline int tu_check_int(long long a, long long b, const char *ea, const char *eb,
                               const char *file, int line)
{
    tu_checks++;
    if (a != b) {
        tu_failures++;
        fprintf(stderr, "FAIL %s:%d: %s == %s (%lld != %lld)\n", file, line, ea, eb, a, b);
        return 0;
    }
    return 1;
}

static inline int tu_check_str(const char *a, const char *b, const char *ea, const char *eb,
                               const char *file, int line)
{
    tu_checks++;
    if (a == NULL || b == NULL ? a != b : strcmp(a, b) != 0) {
        tu_failures++;
        fprintf(stderr, "FAIL %s:%d: %s == %s (\"%s\" != \"%s\")\n", file, line, ea, eb,
                a ? a : "(null)", b ? b : "(null)");
        return 0;
    }
    return 1;
}

#define CHECK(cond) tu_check(!!(cond), #cond, __FILE__, __LINE__)
#define CHECK_INT(a, b) tu_check_int((long long)(a), (long long)(b), #a, #b, __FILE__, __LINE__)
#define CHECK_STR(a, b) tu_check_str((a), (b), #a, #b, __FILE__, __LINE__)
#define CHECK_MEM(a, b, n) tu_check(memcmp((a), (b), (n)) == 0, #a " == " #b, __FILE__, __LINE__)

#define RUN(fn)                                                                                    \
    do {                                                                                           \
        int tu_before_ = tu_failures;                                                              \
        fn();                                                                                      \
        printf("%s %s\n", tu_failures == tu_before_ ? "ok  " : "FAIL", #fn);                       \
    } while (0)

static inline int tu_finish(void)
{
    printf("%d checks, %d failed\n", tu_checks, tu_failures);
    return tu_failures == 0 ? 0 : 1;
}

#endif

/*
 * canon.c - Python-compatible canonical JSON and strict parsing (SPEC 3.3).
 *
 * Two jobs live here because each is the other's precondition:
 *
 * 1. canon_parse decides which request bodies exist at all.  jansson 2.14
 *    does the parsing (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL |
 *    JSON_DECODE_ANY) and its first error is mapped to SPEC 2's codes:
 *      400 invalid_json      syntax, invalid UTF-8, raw NUL byte, NaN, ...
 *      400 not_an_object     valid JSON whose top level is not an object
 *      422 unsupported_json  duplicate keys, integers outside int64, numbers
 *                            overflowing a double, nesting deeper than
 *                            CANON_MAX_DEPTH, lone surrogate escapes,
 *                            \u0000 inside an object key
 *    SPEC 2 says 400 beats 422, but jansson stops at its first error, so a
 *    duplicate key early in a body would hide a syntax error later on.
 *    Whenever jansson stops on a 422-class error we therefore run our own
 *    syntax-only validator (json_syntax_check) over the whole body; it knows
 *    nothing of duplicates, number ranges, surrogates or depth, so it finds
 *    exactly the 400-class errors.  Only if it finds none (and the body is
 *    an object) does the 422 stand.  The fuzz target checks this validator
 *    against jansson itself.
 *
 * 2. canon_append writes the bytes CPython's
 *      json.dumps(v, sort_keys=True, ensure_ascii=True, separators=...)
 *    writes for every value canon_parse accepts.  Invariants:
 *      - object keys sorted by memcmp on their UTF-8 bytes (shorter prefix
 *        first), which is code point order, which is what Python sorts by;
 *      - strings escaped exactly as Python's ensure_ascii encoder does;
 *      - reals printed as Python's float repr: the shortest digit string
 *        that reads back as the same double, the closest one to the value
 *        when several are that short (shortest_digits below explains how:
 *        exact IEEE arithmetic for values that are short decimals, else
 *        glibc's correctly rounded printf/strtod);
 *      - containers nest at most CANON_MAX_DEPTH deep (recursion bound);
 *      - output goes through a stack chunk into a bounded oe_buf; on any
 *        failure the buffer is cut back to where this call started.
 *
 * The hashes (action_hash, legacy receipt) are SHA-256 via libsodium;
 * action_hash streams the canonical form into the hash without a buffer.
 */
#include "canon.h"

#include <float.h>
#include <math.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Strings                                                              */
/* ------------------------------------------------------------------ */

static const char hex_lower[] = "0123456789abcdef";

/* For each ASCII byte: 0 = copy as is, 'u' = \u00XX, else the letter of
 * Python's short escape.  Python escapes everything below 0x20 and 0x7f
 * (DEL) but leaves '/' alone. */
/* clang-format off */
static const char ascii_escape[128] = {
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f', 'r', 'u', 'u', /* 0x00 */
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', /* 0x10 */
    0,   0,   '"', 0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   /* 0x20 */
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   /* 0x30 */
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   /* 0x40 */
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   '\\', 0,  0,   0,   /* 0x50 */
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   /* 0x60 */
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   'u', /* 0x70 */
};
/* clang-format on */

/* Decodes one strict UTF-8 sequence (no overlong forms, no surrogates, at
 * most U+10FFFF) starting at s[0].  Returns its length, 0 if invalid. */
static size_t utf8_decode(const unsigned char *s, size_t avail, uint32_t *cp)
{
    uint32_t c = s[0], min;
    size_t n, i;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2, c &= 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3, c &= 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, c &= 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

static void put_u_escape(char *dst, uint32_t unit)
{
    dst[0] = '\\';
    dst[1] = 'u';
    dst[2] = hex_lower[(unit >> 12) & 0xf];
    dst[3] = hex_lower[(unit >> 8) & 0xf];
    dst[4] = hex_lower[(unit >> 4) & 0xf];
    dst[5] = hex_lower[unit & 0xf];
}

/* All output goes through a writer: a small stack chunk flushed into the
 * oe_buf (or, for hashes, straight into SHA-256) when full and at the end.
 * A canonical form is hundreds of tiny pieces, and one bounded append per
 * chunk instead of per piece is most of what keeps a 1 KB canon at a few
 * microseconds; hashing the stream needs no buffer at all. */
typedef struct {
    oe_buf *out; /* exactly one of out and sha is set */
    crypto_hash_sha256_state *sha;
    size_t n;
    char chunk[1024];
} writer;

static void w_init(writer *w, oe_buf *out, crypto_hash_sha256_state *sha)
{
    w->out = out;
    w->sha = sha;
    w->n = 0;
}

static int w_emit(writer *w, const void *p, size_t n)
{
    if (w->sha != NULL)
        return crypto_hash_sha256_update(w->sha, p, n);
    return oe_buf_append(w->out, p, n);
}

static int w_flush(writer *w)
{
    size_t n = w->n;

    w->n = 0;
    return n > 0 ? w_emit(w, w->chunk, n) : 0;
}

static int w_write(writer *w, const void *p, size_t n)
{
    if (n > sizeof(w->chunk) - w->n) {
        if (w_flush(w) != 0)
            return -1;
        if (n > sizeof(w->chunk))
            return w_emit(w, p, n);
    }
    memcpy(w->chunk + w->n, p, n);
    w->n += n;
    return 0;
}

static int w_putc(writer *w, char c)
{
    if (w->n == sizeof(w->chunk) && w_flush(w) != 0)
        return -1;
    w->chunk[w->n++] = c;
    return 0;
}

/* Cuts out back to `start` after a failed canon call (the oe_buf keeps its
 * failed mark if it overflowed). */
static void truncate_to(oe_buf *out, size_t start)
{
    if (out->data != NULL && out->len > start) {
        out->len = start;
        out->data[start] = '\0';
    }
}

static int write_string(writer *w, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run, n, used;
    char esc[12];
    uint32_t cp;

    if (w_putc(w, '"') != 0)
        return -1;
    while (i < len) {
        /* Copy the longest run of bytes that need no escaping in one go:
         * most keys and values are plain ASCII. */
        run = i;
        while (run < len && p[run] < 0x80 && ascii_escape[p[run]] == 0)
            run++;
        if (run > i && w_write(w, p + i, run - i) != 0)
            return -1;
        i = run;
        if (i >= len)
            break;
        if (p[i] < 0x80) {
            char e = ascii_escape[p[i]];
            if (e == 'u') {
                put_u_escape(esc, p[i]);
                n = 6;
            } else {
                esc[0] = '\\';
                esc[1] = e;
                n = 2;
            }
            i++;
        } else {
            used = utf8_decode(p + i, len - i, &cp);
            if (used == 0)
                return -1; /* not UTF-8: no Python str has these bytes */
            i += used;
            if (cp < 0x10000) {
                put_u_escape(esc, cp);
                n = 6;
            } else {
                cp -= 0x10000;
                put_u_escape(esc, 0xd800 | (cp >> 10));
                put_u_escape(esc + 6, 0xdc00 | (cp & 0x3ff));
                n = 12;
            }
        }
        if (w_write(w, esc, n) != 0)
            return -1;
    }
    return w_putc(w, '"');
}

int canon_append_string(oe_buf *out, const char *s, size_t len)
{
    writer w;
    size_t start = out->len;

    w_init(&w, out, NULL);
    if (write_string(&w, s, len) == 0 && w_flush(&w) == 0)
        return 0;
    truncate_to(out, start);
    return -1;
}

/* ------------------------------------------------------------------ */
/* Numbers                                                              */
/* ------------------------------------------------------------------ */

static int write_int(writer *w, json_int_t v)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);
    /* Negate in unsigned arithmetic so INT64_MIN needs no special case. */
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    return w_write(w, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* A decimal d1.d2d3...dn x 10^exp with 1 <= n <= 17 and d1 != 0. */
typedef struct {
    char d[20];
    int n;
    int exp;
} decimal;

/* The p-digit decimal nearest to x > 0, from glibc's correctly rounded
 * "%.*e" (ties to even, as every exact printf rounds). */
static void nearest_digits(double x, int p, decimal *dec)
{
    char buf[40];
    char *s = buf;
    int n = 0;

    snprintf(buf, sizeof(buf), "%.*e", p - 1, x);
    for (; *s != 'e'; s++) {
        if (*s != '.')
            dec->d[n++] = *s;
    }
    dec->n = n;
    dec->exp = (int)strtol(s + 1, NULL, 10);
}

static double decimal_value(const decimal *dec)
{
    char buf[40];

    memcpy(buf, dec->d, (size_t)dec->n);
    snprintf(buf + dec->n, sizeof(buf) - (size_t)dec->n, "e%d", dec->exp - (dec->n - 1));
    return strtod(buf, NULL);
}

/* The next p-digit decimal above (dir > 0) or below (dir < 0) dec.  Below a
 * power of ten the p-digit grid is ten times finer: 1.00e5 - 1 step is
 * 9.99e4, and 9.99e4 + 1 step is 1.00e5. */
static void step_digits(decimal *dec, int dir)
{
    int i;

    if (dir > 0) {
        for (i = dec->n - 1; i >= 0 && dec->d[i] == '9'; i--)
            dec->d[i] = '0';
        if (i >= 0) {
            dec->d[i]++;
        } else {
            dec->d[0] = '1';
            dec->exp++;
        }
    } else {
        for (i = dec->n - 1; i >= 0 && dec->d[i] == '0'; i--)
            dec->d[i] = '9';
        if (i > 0 || dec->d[0] != '1') {
            dec->d[i]--;
        } else {
            /* was 1000...0: becomes 999...9 one decade down */
            for (i = 0; i < dec->n; i++)
                dec->d[i] = '9';
            dec->exp--;
        }
    }
}

/* Rounds `from` to its first p digits (p < from->n), half up.  Returns -1
 * when the dropped digits are exactly 50...0: whether that half came from
 * rounding a value below or above it is unknown here. */
static int round_digits(const decimal *from, int p, decimal *dec)
{
    int i;

    if (from->d[p] == '5') {
        for (i = p + 1; i < from->n && from->d[i] == '0'; i++)
            ;
        if (i == from->n)
            return -1;
    }
    memcpy(dec->d, from->d, (size_t)p);
    dec->n = p;
    dec->exp = from->exp;
    if (from->d[p] >= '5')
        step_digits(dec, 1);
    return 0;
}

/* x's nearest p-digit decimal.  d17 is x's nearest 17-digit decimal; the
 * p-digit rounding of x equals that of d17 unless a p-digit midpoint (a
 * 17-digit decimal ending in 50...0) lies between x and d17, and since d17
 * is the 17-digit decimal closest to x, such a midpoint can only be d17
 * itself; then ask printf. */
static void nearest_from(double x, const decimal *d17, int p, decimal *dec)
{
    if (round_digits(d17, p, dec) != 0)
        nearest_digits(x, p, dec);
}

/* Does some p-digit decimal read back as x?  If so, dec gets the one
 * closest to x.  The set of decimals that read back as x is an interval
 * around x, so if any p-digit decimal is in it, the nearest p-digit decimal
 * on one side of x is; the nearest of all is tried first, then its
 * neighbour on the other side of x.  d17 may be NULL. */
static int fits_in_digits(double x, const decimal *d17, int p, decimal *dec)
{
    double v;

    if (d17 != NULL)
        nearest_from(x, d17, p, dec);
    else
        nearest_digits(x, p, dec);
    v = decimal_value(dec);
    if (v == x)
        return 1;
    step_digits(dec, v > x ? -1 : 1);
    return decimal_value(dec) == x;
}

static void strip_zeros(decimal *dec)
{
    while (dec->n > 1 && dec->d[dec->n - 1] == '0')
        dec->n--;
}

/* Sets dec to the digits of m (1 <= m < 2^53) times 10^shift. */
static void integer_digits(uint64_t m, int shift, decimal *dec)
{
    char tmp[20];
    int n = 0;

    while (m != 0) {
        tmp[n++] = (char)('0' + m % 10);
        m /= 10;
    }
    for (dec->n = 0; dec->n < n; dec->n++)
        dec->d[dec->n] = tmp[n - 1 - dec->n];
    dec->exp = n - 1 + shift;
    strip_zeros(dec);
}

#define TWO_POW_53 9007199254740992.0

/* The common case without libc: does x equal m / 10^k or m * 10^k with an
 * integer m < 2^53 and k <= 22?  Both factors are then exact doubles, so
 * one IEEE division or multiplication is correctly rounded exactly like
 * strtod("m e-k") (Clinger's fast path): the test below is exact.  A hit
 * with at most 15 significant digits is the shortest (see shortest_digits);
 * anything else is left to the general path. */
static int short_decimal(double x, decimal *dec)
{
#if FLT_EVAL_METHOD == 0
    static const double exact_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                           1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                           1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    double m;
    int k;

    if (x < TWO_POW_53) {
        for (k = 0; k <= 22; k++) {
            m = nearbyint(x * exact_pow10[k]);
            if (m >= TWO_POW_53)
                break;
            if (m >= 1.0 && m / exact_pow10[k] == x) {
                integer_digits((uint64_t)m, -k, dec);
                return dec->n <= 15;
            }
        }
        return 0;
    }
    for (k = 1; k <= 22; k++) {
        m = nearbyint(x / exact_pow10[k]);
        if (m < TWO_POW_53 && m * exact_pow10[k] == x) {
            integer_digits((uint64_t)m, k, dec);
            return dec->n <= 15;
        }
    }
#else
    (void)x;
    (void)dec;
#endif
    return 0;
}

/* Python's repr digits for finite x > 0 (David Gay's dtoa mode 0): the
 * shortest decimal that reads back as x, the closest to x among those.
 *
 * "Some p-digit decimal reads back as x" is monotone in p (a p-digit
 * decimal is also a (p+1)-digit one), so the shortest p can be searched.
 * For normal doubles most of the search is skipped: a decimal of at most
 * 15 significant digits survives the trip through a double (DBL_DIG), so at
 * most one decimal of <= 15 digits (without trailing zeros) reads back as
 * x, and if there is one it is x's 15-digit rounding.  So:
 *   1. short_decimal finds it with a few multiplications in the common
 *      case (values typed as short decimals);
 *   2. else one printf gives the 17-digit rounding, from which the 15- and
 *      16-digit candidates are derived and checked with strtod;
 *   3. else the 17 digits are the answer (17 always suffice).
 * Subnormals have less precision than DBL_DIG assumes, so they get a plain
 * binary search over p. */
static void shortest_digits(double x, decimal *dec)
{
    decimal d17 = {{0}, 0, 0}; /* zeroed for gcc -O3, which cannot see that it is set */
    int lo = 1, hi = 17, mid;

    if (x >= DBL_MIN) {
        if (short_decimal(x, dec))
            return;
        nearest_digits(x, 17, &d17);
        nearest_from(x, &d17, 15, dec);
        strip_zeros(dec);
        if (decimal_value(dec) == x)
            return;
        if (fits_in_digits(x, &d17, 16, dec))
            return;
        *dec = d17;
        return;
    }
    while (lo < hi) {
        mid = (lo + hi) / 2;
        if (fits_in_digits(x, NULL, mid, dec))
            hi = mid;
        else
            lo = mid + 1;
    }
    if (!fits_in_digits(x, NULL, lo, dec))
        nearest_digits(x, 17, dec); /* unreachable: 17 digits always fit */
    strip_zeros(dec);
}

/* float.__repr__: fixed notation when the decimal exponent is in [-4, 16)
 * (integral values get ".0"), else d.ddde+XX with at least two exponent
 * digits. */
static int write_real(writer *w, double x)
{
    char tmp[64];
    char *p = tmp;
    decimal dec;
    int i;

    if (!isfinite(x))
        return -1; /* Python would write NaN/Infinity, which is not JSON */
    if (signbit(x)) {
        *p++ = '-';
        x = -x;
    }
    if (x == 0.0) {
        memcpy(p, "0.0", 3);
        return w_write(w, tmp, (size_t)(p - tmp) + 3);
    }
    shortest_digits(x, &dec);
    if (dec.exp >= 16 || dec.exp < -4) {
        *p++ = dec.d[0];
        if (dec.n > 1) {
            *p++ = '.';
            memcpy(p, dec.d + 1, (size_t)dec.n - 1);
            p += dec.n - 1;
        }
        p += snprintf(p, sizeof(tmp) - (size_t)(p - tmp), "e%c%02d", dec.exp < 0 ? '-' : '+',
                      dec.exp < 0 ? -dec.exp : dec.exp);
    } else if (dec.exp >= 0) {
        for (i = 0; i <= dec.exp; i++)
            *p++ = i < dec.n ? dec.d[i] : '0';
        *p++ = '.';
        if (dec.n > dec.exp + 1) {
            memcpy(p, dec.d + dec.exp + 1, (size_t)(dec.n - dec.exp - 1));
            p += dec.n - dec.exp - 1;
        } else {
            *p++ = '0';
        }
    } else {
        *p++ = '0';
        *p++ = '.';
        for (i = -1; i > dec.exp; i--)
            *p++ = '0';
        memcpy(p, dec.d, (size_t)dec.n);
        p += dec.n;
    }
    return w_write(w, tmp, (size_t)(p - tmp));
}

/* ------------------------------------------------------------------ */
/* Values                                                               */
/* ------------------------------------------------------------------ */

typedef struct {
    const char *key;
    size_t len;
    json_t *value;
} member;

static int member_cmp(const member *a, const member *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->key, b->key, n);

    if (c != 0)
        return c;
    return (a->len > b->len) - (a->len < b->len);
}

static int member_qsort_cmp(const void *a, const void *b)
{
    return member_cmp(a, b);
}

static void sort_members(member *m, size_t n)
{
    size_t i, j;
    member t;

    if (n > 16) {
        qsort(m, n, sizeof(*m), member_qsort_cmp);
        return;
    }
    for (i = 1; i < n; i++) { /* insertion sort: objects are mostly small */
        t = m[i];
        for (j = i; j > 0 && member_cmp(&m[j - 1], &t) > 0; j--)
            m[j] = m[j - 1];
        m[j] = t;
    }
}

typedef struct {
    const char *item_sep; /* "," or ", " */
    size_t item_sep_len;
    const char *key_sep; /* ":" or ": " */
    size_t key_sep_len;
} separators;

static int write_value(writer *w, const json_t *v, const separators *sep, int depth);

static int write_object(writer *w, const json_t *obj, const separators *sep, int depth)
{
    member small[16];
    member *m = small;
    size_t n = json_object_size(obj), i = 0, k;
    const char *key;
    json_t *value;
    void *it;
    int rc = -1;

    if (n == 0)
        return w_write(w, "{}", 2);
    if (n > sizeof(small) / sizeof(small[0])) {
        m = malloc(n * sizeof(*m));
        if (m == NULL)
            goto done;
    }
    /* jansson's iteration API takes a non-const object but does not modify it */
    for (it = json_object_iter((json_t *)obj); it != NULL && i < n;
         it = json_object_iter_next((json_t *)obj, it)) {
        key = json_object_iter_key(it);
        value = json_object_iter_value(it);
        m[i].key = key;
        m[i].len = json_object_iter_key_len(it);
        m[i].value = value;
        i++;
    }
    sort_members(m, i);
    if (w_putc(w, '{') != 0)
        goto done;
    for (k = 0; k < i; k++) {
        if (k > 0 && w_write(w, sep->item_sep, sep->item_sep_len) != 0)
            goto done;
        if (write_string(w, m[k].key, m[k].len) != 0 ||
            w_write(w, sep->key_sep, sep->key_sep_len) != 0 ||
            write_value(w, m[k].value, sep, depth) != 0)
            goto done;
    }
    rc = w_putc(w, '}');

done:
    if (m != small)
        free(m);
    return rc;
}

static int write_array(writer *w, const json_t *arr, const separators *sep, int depth)
{
    size_t n = json_array_size(arr), i;

    if (w_putc(w, '[') != 0)
        return -1;
    for (i = 0; i < n; i++) {
        if (i > 0 && w_write(w, sep->item_sep, sep->item_sep_len) != 0)
            return -1;
        if (write_value(w, json_array_get(arr, i), sep, depth) != 0)
            return -1;
    }
    return w_putc(w, ']');
}

/* depth = number of containers around v; v itself counts if it is one. */
static int write_value(writer *w, const json_t *v, const separators *sep, int depth)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        if (depth >= CANON_MAX_DEPTH)
            return -1;
        return write_object(w, v, sep, depth + 1);
    case JSON_ARRAY:
        if (depth >= CANON_MAX_DEPTH)
            return -1;
        return write_array(w, v, sep, depth + 1);
    case JSON_STRING:
        return write_string(w, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return write_int(w, json_integer_value(v));
    case JSON_REAL:
        return write_real(w, json_real_value(v));
    case JSON_TRUE:
        return w_write(w, "true", 4);
    case JSON_FALSE:
        return w_write(w, "false", 5);
    case JSON_NULL:
        return w_write(w, "null", 4);
    }
    return -1;
}

int canon_append(oe_buf *out, const json_t *value, canon_style style)
{
    static const separators compact = {",", 1, ":", 1};
    static const separators spaced = {", ", 2, ": ", 2};
    size_t start = out->len;
    writer w;

    w_init(&w, out, NULL);
    if (value != NULL &&
        write_value(&w, value, style == CANON_COMPACT ? &compact : &spaced, 0) == 0 &&
        w_flush(&w) == 0)
        return 0;
    truncate_to(out, start);
    return -1;
}

/* ------------------------------------------------------------------ */
/* Syntax-only validation (the 400 check behind a 422, see top)         */
/* ------------------------------------------------------------------ */

typedef struct {
    const unsigned char *p;
    const unsigned char *end;
    const char *msg; /* first error, static text */
} scanner;

static void skip_ws(scanner *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* At '"'.  Any \uXXXX is accepted: surrogate pairing is jansson's 422. */
static int scan_string(scanner *s)
{
    uint32_t cp;
    size_t used;
    int i;

    s->p++;
    while (s->p < s->end) {
        unsigned char c = *s->p;
        if (c == '"') {
            s->p++;
            return 0;
        }
        if (c < 0x20) {
            s->msg = "control character in string";
            return -1;
        }
        if (c == '\\') {
            if (s->end - s->p < 2)
                break;
            c = s->p[1];
            if (c == 'u') {
                if (s->end - s->p < 6) {
                    s->msg = "invalid escape";
                    return -1;
                }
                for (i = 2; i < 6; i++) {
                    if (!is_hex(s->p[i])) {
                        s->msg = "invalid escape";
                        return -1;
                    }
                }
                s->p += 6;
            } else if (strchr("\"\\/bfnrt", c) != NULL && c != '\0') {
                s->p += 2;
            } else {
                s->msg = "invalid escape";
                return -1;
            }
            continue;
        }
        used = utf8_decode(s->p, (size_t)(s->end - s->p), &cp);
        if (used == 0) {
            s->msg = "invalid UTF-8 in string";
            return -1;
        }
        s->p += used;
    }
    s->msg = "unterminated string";
    return -1;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? ; what follows is checked
 * by the caller (a digit after a leading 0 is then an unexpected token). */
static int scan_number(scanner *s)
{
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p >= s->end || !is_digit(*s->p))
        goto bad;
    if (*s->p == '0') {
        s->p++;
    } else {
        while (s->p < s->end && is_digit(*s->p))
            s->p++;
    }
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (s->p >= s->end || !is_digit(*s->p))
            goto bad;
        while (s->p < s->end && is_digit(*s->p))
            s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (s->p >= s->end || !is_digit(*s->p))
            goto bad;
        while (s->p < s->end && is_digit(*s->p))
            s->p++;
    }
    return 0;

bad:
    s->msg = "invalid number";
    return -1;
}

static int scan_literal(scanner *s, const char *word)
{
    size_t n = strlen(word);

    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) {
        s->msg = "invalid token";
        return -1;
    }
    s->p += n;
    return 0;
}

/* 0 if body is one syntactically valid JSON value (RFC 8259, UTF-8) with
 * only whitespace around it; else -1 with *err_off and *msg set.  Iterative
 * with a heap stack of open containers, so any depth is fine. */
static int json_syntax_check(const char *body, size_t len, size_t *err_off, const char **msg)
{
    scanner s = {(const unsigned char *)body, (const unsigned char *)body + len, NULL};
    oe_buf stack; /* one byte per open container: '{' or '[' */
    int rc = -1, want_value = 1;
    unsigned char c;

    oe_buf_init(&stack, len + 1);
    for (;;) {
        skip_ws(&s);
        if (want_value) {
            if (s.p >= s.end) {
                s.msg = "unexpected end of input";
                goto done;
            }
            c = *s.p;
            if (c == '{' || c == '[') {
                if (oe_buf_putc(&stack, (char)c) != 0) {
                    s.msg = "out of memory";
                    goto done;
                }
                s.p++;
                skip_ws(&s);
                if (s.p < s.end && *s.p == (c == '{' ? '}' : ']')) {
                    s.p++;
                    stack.len--;
                    want_value = 0;
                    continue;
                }
                if (c == '[')
                    continue; /* still want a value */
                goto key;
            }
            if (c == '"') {
                if (scan_string(&s) != 0)
                    goto done;
            } else if (c == '-' || is_digit(c)) {
                if (scan_number(&s) != 0)
                    goto done;
            } else if (c == 't' || c == 'f' || c == 'n') {
                if (scan_literal(&s, c == 't' ? "true" : c == 'f' ? "false" : "null") != 0)
                    goto done;
            } else {
                s.msg = "invalid token";
                goto done;
            }
            want_value = 0;
            continue;
        }
        /* after a value */
        if (stack.len == 0) {
            if (s.p != s.end) {
                s.msg = "end of input expected";
                goto done;
            }
            rc = 0;
            goto done;
        }
        if (s.p >= s.end) {
            s.msg = "unexpected end of input";
            goto done;
        }
        c = *s.p++;
        if (c == ']' || c == '}') {
            if ((c == ']') != (stack.data[stack.len - 1] == '[')) {
                s.p--;
                s.msg = "mismatched closing bracket";
                goto done;
            }
            stack.len--;
            continue;
        }
        if (c != ',') {
            s.p--;
            s.msg = "',' or closing bracket expected";
            goto done;
        }
        want_value = 1;
        if (stack.data[stack.len - 1] == '[')
            continue;
        skip_ws(&s);
    key:
        /* inside an object, at a key */
        if (s.p >= s.end || *s.p != '"') {
            s.msg = "string key expected";
            goto done;
        }
        if (scan_string(&s) != 0)
            goto done;
        skip_ws(&s);
        if (s.p >= s.end || *s.p != ':') {
            s.msg = "':' expected";
            goto done;
        }
        s.p++;
        want_value = 1;
    }

done:
    oe_buf_free(&stack);
    *err_off = (size_t)(s.p - (const unsigned char *)body);
    *msg = s.msg;
    return rc;
}

/* ------------------------------------------------------------------ */
/* canon_parse                                                          */
/* ------------------------------------------------------------------ */

/* jansson's error texts quote the source near the error, which may be any
 * bytes (invalid UTF-8 included).  Error details end up in JSON answers and
 * logs, so keep printable ASCII and write everything else as \xNN. */
static void sanitize(char *dst, size_t size, const char *src)
{
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)src;

    for (; *p != '\0' && o + 5 < size; p++) {
        if (*p >= 0x20 && *p < 0x7f) {
            dst[o++] = (char)*p;
        } else {
            o += (size_t)snprintf(dst + o, size - o, "\\x%02x", *p);
        }
    }
    dst[o] = '\0';
}

static void line_col(const char *body, size_t off, int *line, int *col)
{
    size_t i;

    *line = 1;
    *col = 1;
    for (i = 0; i < off; i++) {
        if (body[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static const char *type_phrase(unsigned char first)
{
    switch (first) {
    case '[':
        return "an array";
    case '"':
        return "a string";
    case 't':
    case 'f':
        return "a boolean";
    case 'n':
        return "null";
    default:
        return "a number";
    }
}

static unsigned char first_byte(const char *body, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (body[i] != ' ' && body[i] != '\t' && body[i] != '\n' && body[i] != '\r')
            return (unsigned char)body[i];
    }
    return 0;
}

/* Is the container v (at depth `depth`, counting itself) or anything in it
 * deeper than CANON_MAX_DEPTH?  Recursion stops at the limit. */
static int too_deep(const json_t *v, int depth)
{
    size_t i;
    const char *key;
    json_t *child;

    if (!json_is_object(v) && !json_is_array(v))
        return 0;
    if (depth > CANON_MAX_DEPTH)
        return 1;
    if (json_is_array(v)) {
        for (i = 0; i < json_array_size(v); i++) {
            if (too_deep(json_array_get(v, i), depth + 1))
                return 1;
        }
        return 0;
    }
    json_object_foreach((json_t *)v, key, child)
    {
        if (too_deep(child, depth + 1))
            return 1;
    }
    return 0;
}

/* Is this jansson error one of SPEC 3.3's deliberate rejections rather than
 * "not JSON"?  jansson reports lone surrogates as invalid_syntax, so those
 * are told apart by their text. */
static int is_unsupported(const json_error_t *jerr)
{
    switch (json_error_code(jerr)) {
    case json_error_duplicate_key:
    case json_error_numeric_overflow:
    case json_error_null_byte_in_key:
    case json_error_stack_overflow:
        return 1;
    case json_error_invalid_syntax:
        return strncmp(jerr->text, "invalid Unicode '", 17) == 0;
    default:
        return 0;
    }
}

/* "Unsupported JSON: <what> [<token>] at line L column C".  jansson quotes
 * the offending token (if at most 20 bytes long) as " near '<token>'". */
static void set_unsupported(oe_error *err, const json_error_t *jerr)
{
    const char *near = strstr(jerr->text, " near '");
    char token[JSON_ERROR_TEXT_LENGTH], what[JSON_ERROR_TEXT_LENGTH * 4 + 8] = "";
    const char *reason;
    size_t n;

    switch (json_error_code(jerr)) {
    case json_error_duplicate_key:
        reason = "duplicate object key";
        break;
    case json_error_numeric_overflow:
        reason = jerr->text[0] == 't' ? "integer outside the 64-bit range"
                                      : "number outside the range of a double";
        break;
    case json_error_null_byte_in_key:
        reason = "\\u0000 inside the object key";
        break;
    case json_error_stack_overflow:
        /* jansson's own limit (2048) was hit; its position says nothing */
        oe_error_set(err, 422, "unsupported_json",
                     "Unsupported JSON: nesting deeper than %d levels", CANON_MAX_DEPTH);
        return;
    default:
        reason = "lone surrogate escape in";
        break;
    }
    if (near != NULL) {
        n = strlen(near + 7);
        if (n > 0 && near[7 + n - 1] == '\'')
            n--; /* jansson's closing quote */
        if (n >= sizeof(token))
            n = sizeof(token) - 1;
        memcpy(token, near + 7, n);
        token[n] = '\0';
        what[0] = ' ';
        sanitize(what + 1, sizeof(what) - 1, token);
    }
    oe_error_set(err, 422, "unsupported_json", "Unsupported JSON: %s%s at line %d column %d",
                 reason, what, jerr->line, jerr->column);
}

int canon_parse(const char *body, size_t len, json_t **out, oe_error *err)
{
    json_error_t jerr;
    json_t *root = NULL;
    const char *nul, *msg;
    char text[JSON_ERROR_TEXT_LENGTH * 4 + 8];
    size_t off;
    int line, col;

    *out = NULL;
    if (len == 0 || body == NULL) {
        oe_error_set(err, 400, "invalid_json", "Invalid JSON: empty body");
        goto fail;
    }
    /* jansson would stop at a NUL byte with a less direct message, and a
     * NUL may hide behind an earlier 422-class problem: check it first. */
    nul = memchr(body, '\0', len);
    if (nul != NULL) {
        oe_error_set(err, 400, "invalid_json", "Invalid JSON: raw NUL byte at offset %zu",
                     (size_t)(nul - body));
        goto fail;
    }
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
    if (root == NULL) {
        if (json_error_code(&jerr) == json_error_out_of_memory) {
            oe_error_set(err, 503, "busy", "Out of memory while parsing JSON");
            goto fail;
        }
        if (!is_unsupported(&jerr)) {
            sanitize(text, sizeof(text), jerr.text);
            oe_error_set(err, 400, "invalid_json", "Invalid JSON: %s at line %d column %d", text,
                         jerr.line, jerr.column);
            goto fail;
        }
        /* A 422 only stands if nothing later makes the body 400. */
        if (json_syntax_check(body, len, &off, &msg) != 0) {
            line_col(body, off, &line, &col);
            oe_error_set(err, 400, "invalid_json", "Invalid JSON: %s at line %d column %d", msg,
                         line, col);
            goto fail;
        }
        if (first_byte(body, len) != '{') {
            oe_error_set(err, 400, "not_an_object", "Request body must be a JSON object, not %s",
                         type_phrase(first_byte(body, len)));
            goto fail;
        }
        set_unsupported(err, &jerr);
        goto fail;
    }
    if (!json_is_object(root)) {
        oe_error_set(err, 400, "not_an_object", "Request body must be a JSON object, not %s",
                     type_phrase(first_byte(body, len)));
        goto fail;
    }
    if (too_deep(root, 1)) {
        oe_error_set(err, 422, "unsupported_json",
                     "Unsupported JSON: nesting deeper than %d levels", CANON_MAX_DEPTH);
        goto fail;
    }
    *out = root;
    return 0;

fail:
    json_decref(root);
    return -1;
}

/* ------------------------------------------------------------------ */
/* Hashes                                                               */
/* ------------------------------------------------------------------ */

static void to_hex(const unsigned char *bin, size_t n, char *out_hex)
{
    size_t i;

    for (i = 0; i < n; i++) {
        out_hex[2 * i] = hex_lower[bin[i] >> 4];
        out_hex[2 * i + 1] = hex_lower[bin[i] & 0xf];
    }
    out_hex[2 * n] = '\0';
}

void canon_sha256_hex(const void *data, size_t len, char out_hex[65])
{
    unsigned char h[crypto_hash_sha256_BYTES];

    crypto_hash_sha256(h, data, len);
    to_hex(h, sizeof(h), out_hex);
}

int canon_action_hash(const char *action, size_t action_len, const json_t *payload,
                      char out_hex[65])
{
    static const separators compact = {",", 1, ":", 1};
    crypto_hash_sha256_state st;
    unsigned char h[crypto_hash_sha256_BYTES];
    writer w;

    /* {"action":A,"payload":P} written by hand ("action" < "payload") and
     * streamed into SHA-256; the wrapper does not count against the
     * payload's depth budget. */
    crypto_hash_sha256_init(&st);
    w_init(&w, NULL, &st);
    if (w_write(&w, "{\"action\":", 10) != 0 || write_string(&w, action, action_len) != 0 ||
        w_write(&w, ",\"payload\":", 11) != 0)
        return -1;
    if (payload == NULL || json_is_null(payload)) {
        if (w_write(&w, "{}", 2) != 0)
            return -1;
    } else if (write_value(&w, payload, &compact, 0) != 0) {
        return -1;
    }
    if (w_putc(&w, '}') != 0 || w_flush(&w) != 0)
        return -1;
    crypto_hash_sha256_final(&st, h);
    to_hex(h, sizeof(h), out_hex);
    return 0;
}

int canon_legacy_receipt(const char *exec_id, const char *result_json, size_t result_json_len,
                         char out_hex[65])
{
    crypto_hash_sha256_state st;
    unsigned char h[crypto_hash_sha256_BYTES];

    if (exec_id == NULL || (result_json == NULL && result_json_len > 0))
        return -1;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)exec_id, strlen(exec_id));
    crypto_hash_sha256_update(&st, (const unsigned char *)":", 1);
    if (result_json_len > 0)
        crypto_hash_sha256_update(&st, (const unsigned char *)result_json, result_json_len);
    crypto_hash_sha256_final(&st, h);
    to_hex(h, sizeof(h), out_hex);
    return 0;
}

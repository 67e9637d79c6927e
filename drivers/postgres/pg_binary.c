/*
 * pg_binary.c - binary send forms of numbers, dates and times (see
 * pg_binary.h).  Each conversion follows the server's own text input step
 * by step where rounding can occur (fractional seconds, floats), and is exact
 * integer or digit arithmetic everywhere else.  Nothing is allocated except
 * through the caller's sbuf and, for a float longer than the stack buffer,
 * one temporary copy.
 */
#include "pg_binary.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

char *pg_binary_put16(char *p, uint16_t v)
{
    p[0] = (char)(v >> 8);
    p[1] = (char)v;
    return p + 2;
}

char *pg_binary_put32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
    return p + 4;
}

char *pg_binary_put64(char *p, uint64_t v)
{
    p = pg_binary_put32(p, (uint32_t)(v >> 32));
    return pg_binary_put32(p, (uint32_t)v);
}

/* ---- numeric ------------------------------------------------------------- */

#define NUMERIC_POS 0x0000
#define NUMERIC_NEG 0x4000
#define NUMERIC_NAN 0xC000
#define NUMERIC_PINF 0xD000
#define NUMERIC_NINF 0xF000

/* An exponent this large is out of every numeric limit (number.c refuses
 * from 2^30 on); reading stops growing it there, so nothing overflows. */
#define EXPONENT_CAP 4000000000LL

/* floor(a / 4) for any sign. */
static long long group_of(long long a)
{
    return a >= 0 ? a / 4 : -((-a + 3) / 4);
}

static void numeric_header(tgt_sbuf *out, size_t ndigits, long long weight, uint16_t sign,
                           long long dscale)
{
    if (tgt_sbuf_reserve(out, 8) != 0)
        return;
    char *p = out->data + out->len;
    p = pg_binary_put16(p, (uint16_t)ndigits);
    p = pg_binary_put16(p, (uint16_t)(int16_t)weight);
    p = pg_binary_put16(p, sign);
    pg_binary_put16(p, (uint16_t)dscale);
    out->len += 8;
    out->data[out->len] = '\0';
}

/* The JSON number's parts: its digits are int[0..n_int) then
 * frac[0..n_frac), the value digits x 10^(exponent - n_frac). */
typedef struct number_parts {
    int negative;
    const char *int_digits, *frac_digits;
    size_t n_int, n_frac;
    long long exponent;
} number_parts;

static void split_number(const char *p, const char *end, number_parts *np)
{
    memset(np, 0, sizeof *np);
    if (p < end && *p == '-') {
        np->negative = 1;
        p++;
    }
    np->int_digits = p;
    while (p < end && (unsigned)(*p - '0') < 10u)
        p++;
    np->n_int = (size_t)(p - np->int_digits);
    np->frac_digits = p;
    if (p < end && *p == '.') {
        np->frac_digits = ++p;
        while (p < end && (unsigned)(*p - '0') < 10u)
            p++;
        np->n_frac = (size_t)(p - np->frac_digits);
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int neg = p < end && *p == '-';
        if (p < end && (*p == '-' || *p == '+'))
            p++;
        for (; p < end && (unsigned)(*p - '0') < 10u; p++)
            if (np->exponent < EXPONENT_CAP)
                np->exponent = np->exponent * 10 + (*p - '0');
        np->exponent = neg ? -np->exponent : np->exponent;
    }
}

static int digit_at(const number_parts *np, size_t i)
{
    return (i < np->n_int ? np->int_digits[i] : np->frac_digits[i - np->n_int]) - '0';
}

/* Base-10000 digits out of decimal ones: each decimal digit is appended to
 * the group being filled, which is stored when its four places are. */
typedef struct groups {
    char *p;   /* where the next group is stored */
    int acc;   /* the group being filled */
    int place; /* decimal places left in it (3 .. 0) */
} groups;

static void add_digits(groups *g, const char *d, const char *end)
{
    for (; d < end; d++) {
        g->acc = g->acc * 10 + (*d - '0');
        if (g->place-- == 0) {
            g->p = pg_binary_put16(g->p, (uint16_t)g->acc);
            g->acc = 0;
            g->place = 3;
        }
    }
}

void pg_binary_numeric(tgt_sbuf *out, const char *text, size_t n)
{
    static const int POW10[5] = {1, 10, 100, 1000, 10000};
    if (n >= 3 && (text[0] == 'N' || text[0] == 'I' || text[1] == 'I')) {
        uint16_t sign = text[0] == 'N' ? NUMERIC_NAN : text[0] == 'I' ? NUMERIC_PINF : NUMERIC_NINF;
        numeric_header(out, 0, 0, sign, 0);
        return;
    }
    number_parts np;
    split_number(text, text + n, &np);
    /* numeric_in's display scale: the digits written after the point,
     * less the exponent, never below 0 */
    long long dscale = (long long)np.n_frac - np.exponent;
    dscale = dscale < 0 ? 0 : dscale;
    size_t n_all = np.n_int + np.n_frac, first = 0, last = n_all;
    while (first < n_all && digit_at(&np, first) == 0)
        first++;
    while (last > first && digit_at(&np, last - 1) == 0)
        last--;
    if (first == last) {
        /* zero: no digits and a positive sign, as make_result stores it */
        numeric_header(out, 0, 0, NUMERIC_POS, dscale);
        return;
    }
    /* the power of ten of digit i is (n_int - 1 - i) + exponent */
    long long top = (long long)np.n_int - 1 - (long long)first + np.exponent;
    long long bottom = (long long)np.n_int - (long long)last + np.exponent;
    long long weight = group_of(top);
    size_t ndigits = (size_t)(weight - group_of(bottom) + 1);
    numeric_header(out, ndigits, weight, np.negative ? NUMERIC_NEG : NUMERIC_POS, dscale);
    if (tgt_sbuf_reserve(out, 2 * ndigits) != 0)
        return;
    /* the first digit's place within its group */
    groups g = {out->data + out->len, 0, (int)(top - 4 * weight)};
    if (first < np.n_int)
        add_digits(&g, np.int_digits + first, np.int_digits + (last < np.n_int ? last : np.n_int));
    if (last > np.n_int) {
        size_t from = first > np.n_int ? first - np.n_int : 0;
        add_digits(&g, np.frac_digits + from, np.frac_digits + (last - np.n_int));
    }
    /* a last group short of its lower places */
    if (g.place != 3)
        g.p = pg_binary_put16(g.p, (uint16_t)(g.acc * POW10[g.place + 1]));
    out->len = (size_t)(g.p - out->data);
    out->data[out->len] = '\0';
}

/* ---- real and double precision -------------------------------------------- */

/* text[0..n) NUL-terminated in buf (cap bytes) or in a heap copy (*heap,
 * which the caller frees); NULL when that allocation fails. */
static const char *terminated(const char *text, size_t n, char *buf, size_t cap, char **heap)
{
    *heap = NULL;
    if (n < cap) {
        memcpy(buf, text, n);
        buf[n] = '\0';
        return buf;
    }
    *heap = malloc(n + 1);
    if (*heap == NULL)
        return NULL;
    memcpy(*heap, text, n);
    (*heap)[n] = '\0';
    return *heap;
}

int pg_binary_float8(const char *text, size_t n, double *out)
{
    char buf[128], *heap;
    const char *s = terminated(text, n, buf, sizeof buf, &heap);
    if (s == NULL)
        return -1;
    errno = 0;
    double v = strtod(s, NULL);
    int range = errno == ERANGE;
    free(heap);
    /* float8in refuses what rounds to zero or infinity (a denormal with
     * ERANGE is kept) */
    if (range && (v == 0.0 || isinf(v)))
        return -1;
    *out = v;
    return 0;
}

int pg_binary_float4(const char *text, size_t n, float *out)
{
    char buf[128], *heap;
    const char *s = terminated(text, n, buf, sizeof buf, &heap);
    if (s == NULL)
        return -1;
    errno = 0;
    float v = strtof(s, NULL);
    int range = errno == ERANGE;
    free(heap);
    if (range && (v == 0.0f || isinf(v)))
        return -1;
    *out = v;
    return 0;
}

/* ---- dates and times ------------------------------------------------------ */

#define USECS_PER_SEC INT64_C(1000000)
#define USECS_PER_DAY INT64_C(86400000000)
/* date2j(2000, 1, 1) */
#define POSTGRES_EPOCH_JDATE 2451545

/* PostgreSQL's date2j: the Julian day number of a Gregorian date. */
static int date2j(int y, int m, int d)
{
    if (m > 2) {
        m += 1;
        y += 4800;
    } else {
        m += 13;
        y += 4799;
    }
    int century = y / 100;
    int julian = y * 365 - 32167;
    julian += y / 4 - century + century / 4;
    julian += 7834 * m / 256 + d;
    return julian;
}

/* The fraction digits as microseconds.  Up to six digits this is exact
 * integer arithmetic (and equals what the server computes); beyond, the
 * server's rint(strtod(".digits") * 1e6) is repeated, whose halfway cases
 * depend on the double nearest the written fraction.  The server reads at
 * most ~128 characters of a date-time, so the copy is capped there. */
static int64_t fraction_usecs(const tgt_datetime *v)
{
    const char *d = v->text + v->fraction;
    size_t n = v->fraction_len;
    if (n <= 6) {
        int64_t us = 0;
        for (size_t i = 0; i < 6; i++)
            us = us * 10 + (i < n ? d[i] - '0' : 0);
        return us;
    }
    char buf[160];
    size_t k = n < sizeof buf - 2 ? n : sizeof buf - 2;
    buf[0] = '.';
    memcpy(buf + 1, d, k);
    buf[k + 1] = '\0';
    return (int64_t)rint(strtod(buf, NULL) * 1000000.0);
}

/* The written clock in microseconds; -1 past 24:00:00, which the server's
 * date/time input refuses ("date/time field value out of range": hour 24
 * and second 60 are accepted only while the total stays within the day). */
static int64_t clock_usecs(const tgt_datetime *v)
{
    int64_t secs = ((int64_t)v->hour * 60 + v->minute) * 60 + v->second;
    int64_t us = secs * USECS_PER_SEC + fraction_usecs(v);
    return us > USECS_PER_DAY ? -1 : us;
}

int32_t pg_binary_date(const tgt_datetime *v)
{
    return date2j(v->year, v->month, v->day) - POSTGRES_EPOCH_JDATE;
}

int pg_binary_time(const tgt_datetime *v, int64_t *out)
{
    *out = clock_usecs(v);
    return *out < 0 ? -1 : 0;
}

int pg_binary_timestamp(const tgt_datetime *v, int utc, int64_t *out)
{
    int64_t t = (int64_t)pg_binary_date(v) * USECS_PER_DAY;
    if (v->has_time) {
        int64_t clock = clock_usecs(v);
        if (clock < 0)
            return -1;
        t += clock;
    }
    if (utc)
        t -= (int64_t)v->utc_offset * USECS_PER_SEC;
    *out = t;
    return 0;
}

/*
 * odbc_mariadb_number.c - whether MariaDB's DECIMAL(p,s) holds a JSON
 * number exactly as written (odbc_mariadb.h).  MariaDB rounds digits past
 * the column's scale with only a note, even in strict mode, so the MariaDB
 * dialect refuses such a value itself (value_fits) rather than let it be
 * rounded.  Pure: no ODBC, no allocation; unit-tested on its own
 * (tests/unit/test_mariadb_number.c).
 */
#include "odbc_mariadb.h"

#include <string.h>

/* A JSON number's text in parts: the digits before and after the point
 * and the exponent; the value is <int_part>.<frac_part> x 10^exponent. */
typedef struct number_parts {
    const char *int_part; /* digits before the point */
    size_t n_int;
    const char *frac_part; /* digits after it */
    size_t n_frac;
    long long exponent; /* clamped to +-10^12: beyond, any digit is too far */
} number_parts;

static int parse_number(const char *v, size_t n, number_parts *p)
{
    size_t i = 0;
    memset(p, 0, sizeof(*p));
    if (i < n && (v[i] == '-' || v[i] == '+'))
        i++;
    p->int_part = v + i;
    while (i < n && v[i] >= '0' && v[i] <= '9')
        i++, p->n_int++;
    if (i < n && v[i] == '.') {
        i++;
        p->frac_part = v + i;
        while (i < n && v[i] >= '0' && v[i] <= '9')
            i++, p->n_frac++;
    }
    if (p->n_int + p->n_frac == 0)
        return -1;
    if (i < n && (v[i] == 'e' || v[i] == 'E')) {
        int neg = 0;
        i++;
        if (i < n && (v[i] == '-' || v[i] == '+'))
            neg = v[i++] == '-';
        if (i == n)
            return -1;
        for (; i < n && v[i] >= '0' && v[i] <= '9'; i++)
            if (p->exponent < 1000000000000LL)
                p->exponent = p->exponent * 10 + (v[i] - '0');
        if (neg)
            p->exponent = -p->exponent;
    }
    return i == n ? 0 : -1;
}

/* The k-th significand digit (integer digits, then fraction digits). */
static char digit_at(const number_parts *p, size_t k)
{
    return k < p->n_int ? p->int_part[k] : p->frac_part[k - p->n_int];
}

int odbc_mariadb_decimal_fits(const char *v, size_t n, int precision, int scale, const char **why)
{
    number_parts p;
    if (parse_number(v, n, &p) < 0) {
        *why = "MariaDB DECIMAL cannot hold NaN or Infinity";
        return 0;
    }
    size_t total = p.n_int + p.n_frac, first = 0, last = total;
    while (first < total && digit_at(&p, first) == '0')
        first++;
    if (first == total)
        return 1; /* zero */
    while (last > first && digit_at(&p, last - 1) == '0')
        last--;
    /* the point sits before significand digit `point` (may be outside) */
    long long point = (long long)p.n_int + p.exponent;
    long long int_digits = point > (long long)first ? point - (long long)first : 0;
    long long frac_digits = (long long)last > point ? (long long)last - point : 0;
    if (int_digits > precision - scale) {
        *why = "more digits before the point than the MariaDB DECIMAL column holds";
        return 0;
    }
    if (frac_digits > scale) {
        *why = "more digits after the point than the MariaDB DECIMAL column holds "
               "(MariaDB would round them)";
        return 0;
    }
    return 1;
}

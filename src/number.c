/*
 * number.c - the number checks of number.h.
 *
 * A JSON number is read as sign, integer digits, fraction digits and a
 * decimal exponent, all by position in the text; the value is
 * digits x 10^(exponent - fraction length).  For an integer column the
 * digits are shifted by that power of ten as text: appending zeros or
 * dropping trailing zeros, never rounding, so the loaded value is exactly
 * the one written.  Exponents are read saturated, far past any limit, so a
 * hostile `1e999999999999` costs no more than `1e2`.
 */
#include "number.h"

#include <string.h>

/* PostgreSQL's numeric holds at most 131,072 digits before the decimal
 * point and 16,383 after it, and refuses exponents from 2^30 - 1 on whatever
 * the digits (numeric.c set_var_from_str, make_result).  Limits of real and
 * double precision, as powers of ten of the leading digit, are approximate:
 * values just past them still reach the server, which refuses them. */
#define NUMERIC_MAX_LEAD 131071
#define NUMERIC_MAX_SCALE 16383
#define NUMERIC_MAX_EXPONENT 1073741822LL

/* Where an exponent stops being read: beyond every limit above, and small
 * enough that sums of it with text lengths cannot overflow. */
#define EXPONENT_CAP (4 * NUMERIC_MAX_EXPONENT)

/* The parts of a JSON number text. */
typedef struct parts {
    int negative;
    const char *int_digits; /* at least one */
    size_t n_int;
    const char *frac_digits; /* NULL when there is no fraction */
    size_t n_frac;
    long long exponent; /* saturated at +-EXPONENT_CAP */
} parts;

static int is_digit(char c)
{
    return (unsigned)(c - '0') < 10u;
}

static void split(const char *v, size_t n, parts *p)
{
    const char *end = v + n, *q = v;
    memset(p, 0, sizeof(*p));
    p->negative = q < end && *q == '-';
    q += p->negative;
    p->int_digits = q;
    while (q < end && is_digit(*q))
        q++;
    p->n_int = (size_t)(q - p->int_digits);
    if (q < end && *q == '.') {
        p->frac_digits = ++q;
        while (q < end && is_digit(*q))
            q++;
        p->n_frac = (size_t)(q - p->frac_digits);
    }
    if (q < end) { /* 'e' or 'E', then an optional sign */
        int neg = *++q == '-';
        q += *q == '-' || *q == '+';
        for (; q < end; q++)
            if (p->exponent < EXPONENT_CAP)
                p->exponent = p->exponent * 10 + (*q - '0');
        p->exponent = neg ? -p->exponent : p->exponent;
    }
}

/* The i-th digit of the integer digits followed by the fraction digits. */
static char digit_at(const parts *p, size_t i)
{
    return i < p->n_int ? p->int_digits[i] : p->frac_digits[i - p->n_int];
}

/* Compares an unsigned digit string with a limit of the same kind. */
static int digits_exceed(const char *d, size_t n, const char *limit)
{
    size_t ln = strlen(limit);
    if (n != ln)
        return n > ln;
    return memcmp(d, limit, n) > 0;
}

static size_t refuse(const char **why, const char *reason)
{
    *why = reason;
    return 0;
}

/* Fewest digits that can exceed a bigint, minus one: shorter digit strings
 * take the plain-integer fast path below. */
#define PLAIN_MAX_DIGITS 18

/* The number of digits when v[0..n) is already the answer's spelling: an
 * optional '-', then 1 to PLAIN_MAX_DIGITS digits, the first not '0' (so
 * "0" and "-0" are not plain).  0 otherwise. */
static size_t plain_integer_digits(const char *v, size_t n)
{
    size_t neg = n > 0 && v[0] == '-', nd = n - neg;
    if (nd == 0 || nd > PLAIN_MAX_DIGITS || v[neg] == '0')
        return 0;
    for (size_t i = neg; i < n; i++)
        if (!is_digit(v[i]))
            return 0;
    return nd;
}

static const char *integer_limit(tgt_type_kind kind, int negative)
{
    return kind == TGT_T_SMALLINT  ? (negative ? "32768" : "32767")
           : kind == TGT_T_INTEGER ? (negative ? "2147483648" : "2147483647")
                                   : (negative ? "9223372036854775808" : "9223372036854775807");
}

size_t tgt_number_integer_text(const char *v, size_t n, tgt_type_kind kind,
                               char out[TGT_NUMBER_INTEGER_MAX], const char **why)
{
    /* Nearly every value of an integer column is written as plain digits:
     * copy them instead of splitting and re-spelling (same result). */
    size_t nd = plain_integer_digits(v, n);
    if (nd > 0) {
        int negative = v[0] == '-';
        if (digits_exceed(v + negative, nd, integer_limit(kind, negative)))
            return refuse(why, "out of range");
        memcpy(out, v, n);
        out[n] = '\0';
        return n;
    }
    parts p;
    split(v, n, &p);
    size_t n_all = p.n_int + p.n_frac, first = 0;
    while (first < n_all && digit_at(&p, first) == '0')
        first++;
    if (first == n_all) {
        out[0] = '0';
        out[1] = '\0';
        return 1;
    }
    /* value = digits[first..n_all) x 10^shift, the leading digit non-zero */
    long long shift = p.exponent - (long long)p.n_frac;
    long long kept = (long long)(n_all - first) + (shift < 0 ? shift : 0);
    if (kept <= 0)
        return refuse(why, "not an integer");
    for (size_t i = first + (size_t)kept; i < n_all; i++)
        if (digit_at(&p, i) != '0')
            return refuse(why, "not an integer");
    long long n_digits = kept + (shift > 0 ? shift : 0);
    if (n_digits > TGT_NUMBER_INTEGER_MAX - 2)
        return refuse(why, "out of range");
    size_t len = 0;
    if (p.negative)
        out[len++] = '-';
    for (long long i = 0; i < n_digits; i++)
        out[len++] = i < kept ? digit_at(&p, first + (size_t)i) : '0';
    out[len] = '\0';
    if (digits_exceed(out + p.negative, (size_t)n_digits, integer_limit(kind, p.negative)))
        return refuse(why, "out of range");
    return len;
}

/* Longest text without an exponent that fits every kind whatever its
 * digits: at most 37 powers of ten above the first digit and 38 below, inside
 * real's range (the narrowest) and far inside numeric's. */
#define SHORT_FITS_MAX 38

/* 1 when v[0..n) has no exponent ('e' or 'E'). */
static int no_exponent(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((v[i] | 0x20) == 'e')
            return 0;
    return 1;
}

int tgt_number_fits(const char *v, size_t n, tgt_type_kind kind, const char **why)
{
    if (n <= SHORT_FITS_MAX && no_exponent(v, n))
        return 1;
    parts p;
    split(v, n, &p);
    long long first = -1; /* position of the first non-zero digit */
    for (size_t i = 0; i < p.n_int + p.n_frac && first < 0; i++)
        if (digit_at(&p, i) != '0')
            first = (long long)i;
    long long n_int = (long long)p.n_int, n_frac = (long long)p.n_frac;
    /* the power of ten of the first non-zero digit */
    long long lead = n_int - 1 - first + p.exponent;
    if (kind == TGT_T_NUMERIC) {
        if (p.exponent > NUMERIC_MAX_EXPONENT || p.exponent < -NUMERIC_MAX_EXPONENT)
            *why = "out of range: the exponent is too large for PostgreSQL";
        else if (n_frac - p.exponent > NUMERIC_MAX_SCALE)
            *why = "out of range: more than 16383 digits after the decimal point";
        else if (first >= 0 && lead > NUMERIC_MAX_LEAD)
            *why = "out of range: more than 131072 digits before the decimal point";
        else
            return 1;
        return 0;
    }
    int max = kind == TGT_T_REAL ? 38 : 308, min = kind == TGT_T_REAL ? -45 : -324;
    if (first >= 0 && (lead > max || lead < min)) {
        *why = "out of range";
        return 0;
    }
    return 1;
}

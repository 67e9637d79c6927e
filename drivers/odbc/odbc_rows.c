/*
 * odbc_rows.c - the ODBC driver's row writer (row.h): the core's checked
 * values in the driver's own bulk format (odbc_internal.h), which
 * odbc_bulk.c turns into bound parameter arrays.  Every value is stored in
 * the canonical text form that is bound for it (odbc_dialect.h), so the
 * bulk writer only copies bytes:
 *   booleans 1 / 0; integers, numbers and floats exactly as written (a
 *   dialect that cannot hold the digits refuses the row, nothing rounds);
 *   dates YYYY-MM-DD; times HH:MM:SS[.f] (already UTC); timestamps
 *   YYYY-MM-DD HH:MM:SS[.f] moved to UTC here (a written offset is applied
 *   to the clock, 24:00:00 and a leap second roll over), fraction digits as
 *   written; JSON as received; strings decoded from their JSON escapes.
 * U+0000 in a string becomes U+FFFD (counted in nul_count, which the core
 * reports), as on PostgreSQL: the warehouses behind ODBC drivers treat it
 * as the end of the text, so keeping it would silently cut the value.
 */
#include "odbc_internal.h"

#include <stdint.h>
#include <string.h>

/* Reserves and writes the value header for n bytes; returns where the bytes
 * go, or NULL when the buffer is broken. */
static char *value_start(tgt_row_writer *w, size_t n)
{
    if (tgt_sbuf_reserve(w->out, 1 + 4 + n) != 0)
        return NULL;
    char *p = w->out->data + w->out->len;
    uint32_t len = (uint32_t)n;
    p[0] = ODBC_TAG_VALUE;
    memcpy(p + 1, &len, 4);
    return p + 5;
}

/* Commits a value whose bytes were written at value_start (n of them). */
static void value_end(tgt_row_writer *w, char *start, size_t n)
{
    uint32_t len = (uint32_t)n;
    memcpy(start - 4, &len, 4);
    w->out->len = (size_t)(start - w->out->data) + n;
    w->out->data[w->out->len] = '\0';
    w->column++;
}

static void put_bytes(tgt_row_writer *w, const char *s, size_t n)
{
    char *p = value_start(w, n);
    if (p == NULL)
        return;
    memcpy(p, s, n);
    value_end(w, p, n);
}

static void put_null(tgt_row_writer *w)
{
    tgt_sbuf_append_char(w->out, ODBC_TAG_NULL);
    w->column++;
}

static void put_bool(tgt_row_writer *w, int value)
{
    put_bytes(w, value ? "1" : "0", 1);
}

static void put_number(tgt_row_writer *w, const char *text, size_t n)
{
    put_bytes(w, text, n);
}

/* Writes v (0 <= v < 10^width) as `width` digits; returns the end.  By hand:
 * three of these per timestamp, on every row. */
static char *digits(char *p, long long v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

/* "YYYY-MM-DD" + `sep` (0: none) into p; returns the end.  Years outside
 * 0..9999 cannot come from a checked value, nor after a shift by an offset
 * of at most a day, except 0000 (the year before 0001). */
static char *format_date(char *p, long long y, int m, int d, char sep)
{
    p = digits(p, y < 0 ? 0 : y, 4);
    *p++ = '-';
    p = digits(p, m, 2);
    *p++ = '-';
    p = digits(p, d, 2);
    if (sep != 0)
        *p++ = sep;
    return p;
}

static void put_date(tgt_row_writer *w, const tgt_datetime *v)
{
    char buf[16];
    put_bytes(w, buf, (size_t)(format_date(buf, v->year, v->month, v->day, 0) - buf));
}

/* "HH:MM:SS" + ".fraction" as written, after the date part (may be ""). */
static void put_clock(tgt_row_writer *w, const char *date, int h, int m, int s,
                      const tgt_datetime *v)
{
    char buf[48];
    size_t len = strlen(date);
    memcpy(buf, date, len);
    char *e = digits(buf + len, h, 2);
    *e++ = ':';
    e = digits(e, m, 2);
    *e++ = ':';
    e = digits(e, s, 2);
    len = (size_t)(e - buf);
    size_t total = len + (v->fraction_len > 0 ? 1 + v->fraction_len : 0);
    char *p = value_start(w, total);
    if (p == NULL)
        return;
    memcpy(p, buf, len);
    if (v->fraction_len > 0) {
        p[len] = '.';
        memcpy(p + len + 1, v->text + v->fraction, v->fraction_len);
    }
    value_end(w, p, total);
}

static void put_time(tgt_row_writer *w, const tgt_datetime *v)
{
    put_clock(w, "", v->hour, v->minute, v->second, v);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil), and back. */
static long long days_from_civil(long long y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(long long z, long long *y, int *m, int *d)
{
    z += 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static void put_timestamp(tgt_row_writer *w, const tgt_datetime *v)
{
    long long secs = days_from_civil(v->year, v->month, v->day) * 86400LL + v->hour * 3600LL +
                     v->minute * 60LL + v->second - v->utc_offset;
    long long days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    long long rest = secs - days * 86400;
    long long y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    char date[24];
    *format_date(date, y, m, d, ' ') = '\0';
    put_clock(w, date, (int)(rest / 3600), (int)(rest / 60 % 60), (int)(rest % 60), v);
}

/* JSON as received, except that the escape \u0000 becomes \ufffd (same
 * length), counted like a U+0000 in a string: PostgreSQL's jsonb refuses
 * it (22P05), and the core reports every U+0000 as replaced by U+FFFD. */
static void put_json(tgt_row_writer *w, const char *json, size_t n)
{
    char *start = value_start(w, n);
    if (start == NULL)
        return;
    memcpy(start, json, n);
    for (size_t i = 0; i + 1 < n; i++) {
        if (start[i] != '\\')
            continue;
        /* an escape's backslash and the character it escapes go together,
         * so the second backslash of "\\u0000" never starts one */
        if (i + 6 <= n && memcmp(start + i, "\\u0000", 6) == 0) {
            memcpy(start + i, "\\ufffd", 6);
            (*w->nul_count)++;
        }
        i++;
    }
    value_end(w, start, n);
}

static int hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The code unit of \uXXXX at p (4 hex digits available), or -1. */
static long hex4(const char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex((unsigned char)p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

static char *put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* Decodes one escape at *pp (just after the backslash); malformed escapes
 * (the tokenizer lets none through) become U+FFFD. */
static char *decode_escape(char *o, const char **pp, const char *end, size_t *nul_count)
{
    const char *p = *pp;
    char c = p < end ? *p++ : '\\';
    static const char plain[] = "\"\\/bfnrt";
    static const char value[] = "\"\\/\b\f\n\r\t";
    const char *at = c != '\0' ? strchr(plain, c) : NULL;
    if (at != NULL && c != 'u') {
        *o++ = value[at - plain];
        *pp = p;
        return o;
    }
    long cp = end - p >= 4 ? hex4(p) : -1;
    if (cp < 0) {
        *pp = p;
        return put_utf8(o, 0xFFFD);
    }
    p += 4;
    if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
        long lo = hex4(p + 2);
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
        }
    }
    *pp = p;
    if (cp >= 0xD800 && cp <= 0xDFFF)
        cp = 0xFFFD; /* a lone surrogate */
    if (cp == 0) {
        (*nul_count)++;
        cp = 0xFFFD;
    }
    return put_utf8(o, (uint32_t)cp);
}

static void put_json_string(tgt_row_writer *w, const char *raw, size_t n, int escaped)
{
    if (!escaped) {
        put_bytes(w, raw, n);
        return;
    }
    /* decoded text is never longer than its escaped form, except a lone
     * "\uXXXX" becoming 3 bytes of U+FFFD from 2 bytes "\x" at worst */
    char *start = value_start(w, n * 2);
    if (start == NULL)
        return;
    char *o = start;
    const char *p = raw, *end = raw + n;
    while (p < end) {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        const char *stop = bs != NULL ? bs : end;
        memcpy(o, p, (size_t)(stop - p));
        o += stop - p;
        p = stop;
        if (p < end) {
            p++;
            o = decode_escape(o, &p, end, w->nul_count);
        }
    }
    value_end(w, start, (size_t)(o - start));
}

static void put_text(tgt_row_writer *w, const char *s, size_t n)
{
    put_bytes(w, s, n);
}

static void end_row(tgt_row_writer *w)
{
    tgt_sbuf_append_char(w->out, ODBC_TAG_END);
}

static void end_staged_row(tgt_row_writer *w, unsigned long sequence, const unsigned char *carried)
{
    size_t n = carried != NULL ? w->table->n_columns : 0;
    if (tgt_sbuf_reserve(w->out, 1 + 8 + 4 + n) != 0)
        return;
    char *p = w->out->data + w->out->len;
    uint64_t seq = sequence;
    uint32_t len = (uint32_t)n;
    p[0] = ODBC_TAG_STAGED;
    memcpy(p + 1, &seq, 8);
    memcpy(p + 9, &len, 4);
    for (size_t i = 0; i < n; i++)
        p[13 + i] = carried[i] ? '1' : '0';
    w->out->len += 13 + n;
    w->out->data[w->out->len] = '\0';
}

const tgt_row_ops odbc_row_ops = {
    .put_null = put_null,
    .put_bool = put_bool,
    .put_integer = put_number,
    .put_numeric = put_number,
    .put_float = put_number,
    .put_date = put_date,
    .put_time = put_time,
    .put_timestamp = put_timestamp,
    .put_json = put_json,
    .put_json_string = put_json_string,
    .put_text = put_text,
    .end_row = end_row,
    .end_staged_row = end_staged_row,
};

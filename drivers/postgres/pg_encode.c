/*
 * pg_encode.c - COPY text-format encoding of rows (see pg_encode.h).  This is
 * the innermost loop of a load: it runs once per value of every row, so each
 * function reserves the worst case (every input byte doubled) once, then
 * writes straight into the buffer, copying runs of plain bytes with memcpy
 * and finding the ends of those runs eight bytes at a time.
 *
 * JSON strings are decoded here rather than through json.c so that decoding
 * and COPY escaping happen in one pass with no intermediate buffer.  Input is
 * expected to have passed the tokenizer, but nothing here reads outside
 * [raw, raw + n) or writes beyond the reservation whatever the bytes are:
 * malformed escapes decode to U+FFFD or to the escaped character.  Nothing
 * is allocated except through the caller's sbuf, which goes broken on
 * failure.
 */
#include "pg_encode.h"

#include <stdint.h>
#include <string.h>

/* The letter COPY puts after a backslash for bytes that need escaping; 0 for
 * bytes that go through as they are. */
static const unsigned char COPY_ESCAPE[256] = {
    ['\t'] = 't',
    ['\n'] = 'n',
    ['\r'] = 'r',
    ['\\'] = '\\',
};

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* Whether the 8 bytes at p may hold a byte to escape.  Tests "some byte is
 * below 0x0E" (covers TAB, LF, CR) or "some byte equals a backslash"; both
 * word tricks are exact about *whether* such a byte exists, so a word that
 * passes needs no further look.  Other control bytes below 0x0E flag the word
 * falsely, which only costs a byte-wise look at it. */
static int word_may_escape(const char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    uint64_t x = w ^ (ONES * '\\');
    return (((w - ONES * 0x0E) & ~w) | ((x - ONES) & ~x)) & HIGHS ? 1 : 0;
}

/* The first byte in [p, end) that COPY must escape, or end. */
static const char *scan_plain(const char *p, const char *end)
{
    for (;;) {
        while (end - p >= 8 && !word_may_escape(p))
            p += 8;
        const char *stop = end - p >= 8 ? p + 8 : end;
        for (; p < stop; p++)
            if (COPY_ESCAPE[(unsigned char)*p])
                return p;
        if (p == end)
            return end;
    }
}

/* Room for 2 * n bytes, the most any function here writes for n input bytes;
 * NULL when the buffer is (or goes) broken. */
static char *reserve_worst(tgt_sbuf *out, size_t n)
{
    if (n > (SIZE_MAX - 1) / 2) {
        out->broken = 1;
        return NULL;
    }
    if (tgt_sbuf_reserve(out, 2 * n) != 0)
        return NULL;
    return out->data + out->len;
}

static void finish(tgt_sbuf *out, char *w)
{
    out->len = (size_t)(w - out->data);
    *w = '\0';
}

static char *put_byte(char *w, unsigned char c)
{
    unsigned char e = COPY_ESCAPE[c];
    if (e) {
        *w++ = '\\';
        *w++ = (char)e;
    } else {
        *w++ = (char)c;
    }
    return w;
}

/* Copies [p, end) escaping for COPY: plain runs in one memcpy each. */
static char *put_text(char *w, const char *p, const char *end)
{
    while (p < end) {
        const char *q = scan_plain(p, end);
        memcpy(w, p, (size_t)(q - p));
        w += q - p;
        if (q == end)
            break;
        w = put_byte(w, (unsigned char)*q);
        p = q + 1;
    }
    return w;
}

/* A code point as UTF-8; ASCII goes through put_byte because \u005c, \u0009
 * and friends decode to bytes COPY must escape. */
static char *put_code_point(char *w, uint32_t cp)
{
    if (cp < 0x80)
        return put_byte(w, (unsigned char)cp);
    if (cp < 0x800) {
        *w++ = (char)(0xC0 | (cp >> 6));
    } else if (cp < 0x10000) {
        *w++ = (char)(0xE0 | (cp >> 12));
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    } else {
        *w++ = (char)(0xF0 | (cp >> 18));
        *w++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    }
    *w++ = (char)(0x80 | (cp & 0x3F));
    return w;
}

static int hex_digit(unsigned char c)
{
    if ((unsigned)(c - '0') < 10u)
        return c - '0';
    c |= 0x20; /* lower-cases letters */
    if ((unsigned)(c - 'a') < 6u)
        return c - 'a' + 10;
    return -1;
}

/* The value of the 4 hex digits at p (which must exist), or -1. */
static int32_t hex4(const char *p)
{
    int32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit((unsigned char)p[i]);
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

#define REPLACEMENT 0xFFFDu

/* pg_encode.h */
uint32_t tgt_pg_decode_u_escape(const char *p, const char *end, size_t *used)
{
    int32_t cp = end - p >= 6 ? hex4(p + 2) : -1;
    if (cp < 0) {
        *used = 2;
        return REPLACEMENT;
    }
    *used = 6;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return REPLACEMENT;
    if (cp < 0xD800 || cp > 0xDBFF)
        return (uint32_t)cp;
    int32_t low = end - p >= 12 && p[6] == '\\' && p[7] == 'u' ? hex4(p + 8) : -1;
    if (low < 0xDC00 || low > 0xDFFF)
        return REPLACEMENT;
    *used = 12;
    return 0x10000u + (((uint32_t)cp - 0xD800u) << 10) + ((uint32_t)low - 0xDC00u);
}

/* Decodes the JSON escape at *pp (a backslash) and writes it COPY-escaped.
 * Every case writes at most twice the bytes it consumes. */
static char *put_json_escape(char *w, const char **pp, const char *end, size_t *nul_count)
{
    const char *p = *pp;
    if (end - p < 2) {
        /* A trailing lone backslash: keep it as a character. */
        *pp = p + 1;
        return put_byte(w, '\\');
    }
    *pp = p + 2;
    switch (p[1]) {
    case 'b':
        *w++ = '\b';
        return w;
    case 'f':
        *w++ = '\f';
        return w;
    case 'n':
        return put_byte(w, '\n');
    case 'r':
        return put_byte(w, '\r');
    case 't':
        return put_byte(w, '\t');
    case 'u': {
        size_t used;
        uint32_t cp = tgt_pg_decode_u_escape(p, end, &used);
        *pp = p + used;
        if (cp == 0) {
            /* PostgreSQL text cannot hold U+0000. */
            if (nul_count != NULL)
                (*nul_count)++;
            cp = REPLACEMENT;
        }
        return put_code_point(w, cp);
    }
    default:
        /* \" \\ \/ and anything malformed: the character itself. */
        return put_byte(w, (unsigned char)p[1]);
    }
}

void tgt_pg_copy_text(tgt_sbuf *out, const char *s, size_t n)
{
    if (n == 0)
        return;
    char *w = reserve_worst(out, n);
    if (w == NULL)
        return;
    finish(out, put_text(w, s, s + n));
}

void tgt_pg_copy_json_string(tgt_sbuf *out, const char *raw, size_t n, int escaped,
                             size_t *nul_count)
{
    if (!escaped) {
        tgt_pg_copy_text(out, raw, n);
        return;
    }
    if (n == 0)
        return;
    char *w = reserve_worst(out, n);
    if (w == NULL)
        return;
    const char *p = raw;
    const char *end = raw + n;
    while (p < end) {
        /* Runs stop at every byte COPY escapes, which includes the backslash
         * that starts a JSON escape. */
        const char *q = scan_plain(p, end);
        memcpy(w, p, (size_t)(q - p));
        w += q - p;
        p = q;
        if (p == end)
            break;
        if (*p == '\\') {
            w = put_json_escape(w, &p, end, nul_count);
        } else {
            /* A raw TAB/LF/CR the tokenizer would have refused; escape it. */
            w = put_byte(w, (unsigned char)*p++);
        }
    }
    finish(out, w);
}

void tgt_pg_copy_json_raw(tgt_sbuf *out, const char *json, size_t n, size_t *nul_count)
{
    static const char NUL_ESCAPE[6] = {'\\', 'u', '0', '0', '0', '0'};
    if (n == 0)
        return;
    char *w = reserve_worst(out, n);
    if (w == NULL)
        return;
    const char *p = json;
    const char *end = json + n;
    while (p < end) {
        const char *q = scan_plain(p, end);
        memcpy(w, p, (size_t)(q - p));
        w += q - p;
        p = q;
        if (p == end)
            break;
        if (*p != '\\') {
            w = put_byte(w, (unsigned char)*p++); /* whitespace between tokens */
            continue;
        }
        if (end - p >= 6 && memcmp(p, NUL_ESCAPE, sizeof NUL_ESCAPE) == 0) {
            /* \u0000 -> \ufffd, its backslash doubled for COPY: 7 bytes for 6. */
            memcpy(w, "\\\\ufffd", 7);
            w += 7;
            p += 6;
            if (nul_count != NULL)
                (*nul_count)++;
            continue;
        }
        /* Any other escape: the backslash and the character it escapes are
         * taken together, so the second backslash of "\\" never starts an
         * escape of its own ("\\u0000" is a backslash and the text u0000). */
        *w++ = '\\';
        *w++ = '\\';
        p++;
        if (p < end)
            w = put_byte(w, (unsigned char)*p++);
    }
    finish(out, w);
}

void tgt_pg_copy_null(tgt_sbuf *out)
{
    tgt_sbuf_append(out, "\\N", 2);
}

/* ---- the row writer (row.h) -------------------------------------------- */

/* The TAB before every value but the first. */
static void next_value(tgt_row_writer *w)
{
    if (w->column++ > 0)
        tgt_sbuf_append_char(w->out, '\t');
}

static void put_null(tgt_row_writer *w)
{
    next_value(w);
    tgt_pg_copy_null(w->out);
}

static void put_bool(tgt_row_writer *w, int value)
{
    next_value(w);
    tgt_sbuf_append_char(w->out, value ? 't' : 'f');
}

/* Digits, signs, '.', exponents and the words NaN/Infinity: nothing COPY
 * escapes, and PostgreSQL's number input reads them as JSON writes them
 * (numeric reads Infinity since PostgreSQL 14). */
static void put_number(tgt_row_writer *w, const char *text, size_t n)
{
    next_value(w);
    tgt_sbuf_append(w->out, text, n);
}

/* Checked date/time text holds digits, '-', ':', '.', 'T', ' ', '+' and 'Z'
 * only: nothing COPY escapes. */
static void put_date(tgt_row_writer *w, const tgt_datetime *v)
{
    next_value(w);
    tgt_sbuf_append(w->out, v->text, v->len);
}

/* PostgreSQL's time input would drop a written offset silently, so a time
 * that had one goes out as its UTC parts. */
static void put_time(tgt_row_writer *w, const tgt_datetime *v)
{
    next_value(w);
    if (!v->has_offset) {
        tgt_sbuf_append(w->out, v->text, v->len);
        return;
    }
    tgt_sbuf_printf(w->out, "%02d:%02d:%02d", v->hour, v->minute, v->second);
    if (v->fraction_len > 0) {
        tgt_sbuf_append_char(w->out, '.');
        tgt_sbuf_append(w->out, v->text + v->fraction, v->fraction_len);
    }
}

/* A date-time without an offset is UTC by row.h's contract: "+00" says so
 * whatever the session's TimeZone (a date alone stays as written: midnight
 * in the session's zone, which the driver sets to UTC). */
static void put_timestamp(tgt_row_writer *w, const tgt_datetime *v)
{
    next_value(w);
    tgt_sbuf_append(w->out, v->text, v->len);
    if (v->has_time && !v->has_offset)
        tgt_sbuf_append(w->out, "+00", 3);
}

static void put_json(tgt_row_writer *w, const char *json, size_t n)
{
    next_value(w);
    tgt_pg_copy_json_raw(w->out, json, n, w->nul_count);
}

static void put_json_string(tgt_row_writer *w, const char *raw, size_t n, int escaped)
{
    next_value(w);
    tgt_pg_copy_json_string(w->out, raw, n, escaped, w->nul_count);
}

static void put_plain_text(tgt_row_writer *w, const char *s, size_t n)
{
    next_value(w);
    tgt_pg_copy_text(w->out, s, n);
}

static void end_row(tgt_row_writer *w)
{
    tgt_sbuf_append_char(w->out, '\n');
}

static void end_staged_row(tgt_row_writer *w, unsigned long sequence, const unsigned char *carried)
{
    tgt_sbuf_printf(w->out, "\t%lu\t", sequence);
    if (carried == NULL) {
        tgt_sbuf_append(w->out, "\\N\n", 3);
        return;
    }
    size_t n = w->table->n_columns;
    if (tgt_sbuf_reserve(w->out, n + 1) != 0)
        return;
    char *p = w->out->data + w->out->len;
    for (size_t i = 0; i < n; i++)
        p[i] = carried[i] ? '1' : '0';
    p[n] = '\n';
    finish(w->out, p + n + 1);
}

const tgt_row_ops tgt_pg_row_ops = {
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
    .put_text = put_plain_text,
    .end_row = end_row,
    .end_staged_row = end_staged_row,
};

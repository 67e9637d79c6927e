/*
 * pg_encode_binary.c - COPY BINARY tuples (see pg_encode_binary.h).  Like
 * the text encoder this runs once per value of every row: each put reserves
 * what it writes once and stores straight into the buffer.
 *
 * A row's format is decided at its first put (or at its end when the table
 * has no columns) and kept in the writer (row.h's encoder state); a text row
 * is handed to tgt_pg_row_ops put by put.  The field count leads the tuple
 * but is only known at the row's end (a staging row has two more fields), so
 * two bytes are held for it at row_start and filled in by end_row.
 *
 * Decoding JSON strings happens here too (without COPY's escaping), with
 * U+0000 replaced by U+FFFD and counted as in the text encoder.  Nothing is
 * allocated except through the caller's sbuf, which goes broken on failure.
 */
#include "pg_encode_binary.h"

#include <stdint.h>
#include <string.h>

#include "pg_binary.h"
#include "pg_encode.h"

enum { FORMAT_UNDECIDED = 0, FORMAT_TEXT, FORMAT_BINARY };

static int binary_kind(tgt_type_kind k)
{
    switch (k) {
    case TGT_T_BOOLEAN:
    case TGT_T_SMALLINT:
    case TGT_T_INTEGER:
    case TGT_T_BIGINT:
    case TGT_T_NUMERIC:
    case TGT_T_REAL:
    case TGT_T_DOUBLE:
    case TGT_T_DATE:
    case TGT_T_TIMESTAMP:
    case TGT_T_TIMESTAMPTZ:
    case TGT_T_TIME:
    case TGT_T_VARCHAR:
    case TGT_T_JSON:
    case TGT_T_JSONB:
    case TGT_T_TEXT:
        return 1;
    case TGT_T_OTHER:
        return 0;
    }
    return 0;
}

/* Whether column c's values, as the core puts them, have a binary form
 * here: a data column by its type; a column target-pg fills itself only with
 * the type target-pg gives it (its puts do not follow the live type). */
static int binary_column(const tgt_column *c)
{
    tgt_type_kind k = c->live_type.kind;
    switch (c->role) {
    case TGT_COL_DATA:
        return binary_kind(k);
    case TGT_COL_LOADED_AT:
    case TGT_COL_EXTRACTED_AT:
    case TGT_COL_RECEIVED_AT:
    case TGT_COL_BATCHED_AT:
    case TGT_COL_DELETED_AT:
        return k == TGT_T_TIMESTAMPTZ || k == TGT_T_TIMESTAMP;
    case TGT_COL_TABLE_VERSION:
    case TGT_COL_SEQUENCE:
        return k == TGT_T_SMALLINT || k == TGT_T_INTEGER || k == TGT_T_BIGINT;
    }
    return 0;
}

int tgt_pg_binary_table(const tgt_table *t)
{
    for (size_t i = 0; i < t->n_columns; i++)
        if (!binary_column(&t->columns[i]))
            return 0;
    return 1;
}

/* Decides the row's format on its first call; 1 when it is binary. */
static int binary(tgt_row_writer *w)
{
    if (w->format == FORMAT_UNDECIDED) {
        w->format = tgt_pg_binary_table(w->table) ? FORMAT_BINARY : FORMAT_TEXT;
        if (w->format == FORMAT_BINARY) {
            w->row_start = w->out->len;
            tgt_sbuf_append(w->out, "\0", 2); /* the field count, filled in at the end */
        }
    }
    return w->format == FORMAT_BINARY;
}

/* Room for a field of `size` bytes after its length, which is written; the
 * caller fills the returned bytes.  NULL when out went broken. */
static char *fixed_field(tgt_row_writer *w, uint32_t size)
{
    w->column++;
    tgt_sbuf *out = w->out;
    if (tgt_sbuf_reserve(out, 4 + (size_t)size) != 0)
        return NULL;
    char *p = out->data + out->len;
    out->len += 4 + (size_t)size;
    out->data[out->len] = '\0';
    return pg_binary_put32(p, size);
}

/* A field whose length is known after its bytes: var_begin holds the four
 * bytes of the length, var_end writes it. */
static size_t var_begin(tgt_row_writer *w)
{
    w->column++;
    size_t at = w->out->len;
    tgt_sbuf_append(w->out, "\0\0\0", 4);
    return at;
}

static void var_end(tgt_row_writer *w, size_t at)
{
    tgt_sbuf *out = w->out;
    if (!tgt_sbuf_ok(out))
        return;
    size_t len = out->len - at - 4;
    if (len > INT32_MAX) {
        /* more than a field can hold (and than PostgreSQL stores) */
        out->broken = 1;
        return;
    }
    pg_binary_put32(out->data + at, (uint32_t)len);
}

/* A field that makes the server refuse the row ("incorrect binary data
 * format", SQLSTATE 22P03, with the row and column in its context): for a
 * value the server's text input would refuse but whose binary form it
 * would take (a float that rounds to zero or infinity, a clock past
 * 24:00:00), so that it is refused as before.  A bigger length
 * than the type reads is such a field for every fixed-size type. */
static void refused_field(tgt_row_writer *w, uint32_t size)
{
    char *p = fixed_field(w, size + 1);
    if (p != NULL)
        memset(p, 0, (size_t)size + 1);
}

static void put_null(tgt_row_writer *w)
{
    if (!binary(w)) {
        tgt_pg_row_ops.put_null(w);
        return;
    }
    w->column++;
    tgt_sbuf_append(w->out, "\377\377\377\377", 4);
}

static void put_bool(tgt_row_writer *w, int value)
{
    if (!binary(w)) {
        tgt_pg_row_ops.put_bool(w, value);
        return;
    }
    char *p = fixed_field(w, 1);
    if (p != NULL)
        *p = value ? 1 : 0;
}

/* Checked digits (row.h) of a value that fits the column's kind, as the
 * two's complement bits the big-endian stores take (truncated to the
 * column's width, they are that width's two's complement too). */
static uint64_t parse_integer(const char *digits, size_t n)
{
    int negative = n > 0 && digits[0] == '-';
    uint64_t v = 0;
    for (size_t i = (size_t)negative; i < n; i++)
        v = v * 10 + (uint64_t)(digits[i] - '0');
    return negative ? 0 - v : v;
}

static void put_numeric_binary(tgt_row_writer *w, const char *text, size_t n)
{
    size_t at = var_begin(w);
    pg_binary_numeric(w->out, text, n);
    var_end(w, at);
}

static void put_float_binary(tgt_row_writer *w, const char *text, size_t n)
{
    if (w->table->columns[w->column].live_type.kind == TGT_T_REAL) {
        float f;
        if (pg_binary_float4(text, n, &f) != 0) {
            refused_field(w, 4);
            return;
        }
        uint32_t bits;
        memcpy(&bits, &f, sizeof bits);
        char *p = fixed_field(w, 4);
        if (p != NULL)
            pg_binary_put32(p, bits);
        return;
    }
    double d;
    if (pg_binary_float8(text, n, &d) != 0) {
        refused_field(w, 8);
        return;
    }
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    char *p = fixed_field(w, 8);
    if (p != NULL)
        pg_binary_put64(p, bits);
}

static void put_bytes(tgt_row_writer *w, const char *s, size_t n)
{
    size_t at = var_begin(w);
    tgt_sbuf_append(w->out, s, n);
    var_end(w, at);
}

/* An integer column by its live kind; the target's own version and sequence
 * columns (put as integers whatever they are) reach here only as integers
 * (tgt_pg_binary_table), data of other kinds never. */
static void put_integer(tgt_row_writer *w, const char *digits, size_t n)
{
    if (!binary(w)) {
        tgt_pg_row_ops.put_integer(w, digits, n);
        return;
    }
    tgt_type_kind kind = w->table->columns[w->column].live_type.kind;
    char *p;
    switch (kind) {
    case TGT_T_SMALLINT:
        if ((p = fixed_field(w, 2)) != NULL)
            pg_binary_put16(p, (uint16_t)parse_integer(digits, n));
        return;
    case TGT_T_INTEGER:
        if ((p = fixed_field(w, 4)) != NULL)
            pg_binary_put32(p, (uint32_t)parse_integer(digits, n));
        return;
    case TGT_T_BIGINT:
        if ((p = fixed_field(w, 8)) != NULL)
            pg_binary_put64(p, parse_integer(digits, n));
        return;
    case TGT_T_NUMERIC:
        put_numeric_binary(w, digits, n);
        return;
    case TGT_T_REAL:
    case TGT_T_DOUBLE:
        put_float_binary(w, digits, n);
        return;
    case TGT_T_BOOLEAN:
    case TGT_T_DATE:
    case TGT_T_TIMESTAMP:
    case TGT_T_TIMESTAMPTZ:
    case TGT_T_TIME:
    case TGT_T_VARCHAR:
    case TGT_T_JSON:
    case TGT_T_JSONB:
    case TGT_T_TEXT:
    case TGT_T_OTHER:
        break;
    }
    put_bytes(w, digits, n);
}

static void put_numeric(tgt_row_writer *w, const char *text, size_t n)
{
    if (!binary(w)) {
        tgt_pg_row_ops.put_numeric(w, text, n);
        return;
    }
    put_numeric_binary(w, text, n);
}

static void put_float(tgt_row_writer *w, const char *text, size_t n)
{
    if (!binary(w)) {
        tgt_pg_row_ops.put_float(w, text, n);
        return;
    }
    put_float_binary(w, text, n);
}

static void put_date(tgt_row_writer *w, const tgt_datetime *v)
{
    if (!binary(w)) {
        tgt_pg_row_ops.put_date(w, v);
        return;
    }
    char *p = fixed_field(w, 4);
    if (p != NULL)
        pg_binary_put32(p, (uint32_t)pg_binary_date(v));
}

static void put_time(tgt_row_writer *w, const tgt_datetime *v)
{
    if (!binary(w)) {
        tgt_pg_row_ops.put_time(w, v);
        return;
    }
    int64_t us;
    if (pg_binary_time(v, &us) != 0) {
        refused_field(w, 8);
        return;
    }
    char *p = fixed_field(w, 8);
    if (p != NULL)
        pg_binary_put64(p, (uint64_t)us);
}

/* timestamp keeps the written clock and ignores an offset, as its text
 * input does; timestamptz takes the offset off (none: UTC, row.h). */
static void put_timestamp(tgt_row_writer *w, const tgt_datetime *v)
{
    if (!binary(w)) {
        tgt_pg_row_ops.put_timestamp(w, v);
        return;
    }
    int utc = w->table->columns[w->column].live_type.kind != TGT_T_TIMESTAMP;
    int64_t us;
    if (pg_binary_timestamp(v, utc, &us) != 0) {
        refused_field(w, 8);
        return;
    }
    char *p = fixed_field(w, 8);
    if (p != NULL)
        pg_binary_put64(p, (uint64_t)us);
}

/* JSON text with each \u0000 escape inside its strings rewritten to
 * \ufffd, as the text encoder does (PostgreSQL's jsonb cannot hold it). */
static void append_json(tgt_sbuf *out, const char *json, size_t n, size_t *nul_count)
{
    static const char NUL_ESCAPE[6] = {'\\', 'u', '0', '0', '0', '0'};
    const char *p = json, *end = json + n;
    if (tgt_sbuf_reserve(out, n) != 0)
        return;
    char *o = out->data + out->len;
    while (p < end) {
        const char *q = memchr(p, '\\', (size_t)(end - p));
        if (q == NULL)
            q = end;
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        p = q;
        if (p == end)
            break;
        if (end - p >= 6 && memcmp(p, NUL_ESCAPE, sizeof NUL_ESCAPE) == 0) {
            memcpy(o, "\\ufffd", 6);
            o += 6;
            p += 6;
            if (nul_count != NULL)
                (*nul_count)++;
            continue;
        }
        /* any other escape is taken whole, so the second backslash of "\\"
         * never starts one of its own */
        *o++ = *p++;
        if (p < end)
            *o++ = *p++;
    }
    out->len = (size_t)(o - out->data);
    out->data[out->len] = '\0';
}

static void put_json(tgt_row_writer *w, const char *json, size_t n)
{
    if (!binary(w)) {
        tgt_pg_row_ops.put_json(w, json, n);
        return;
    }
    int jsonb = w->table->columns[w->column].live_type.kind == TGT_T_JSONB;
    size_t at = var_begin(w);
    if (jsonb)
        tgt_sbuf_append_char(w->out, 1); /* jsonb_send's version */
    append_json(w->out, json, n, w->nul_count);
    var_end(w, at);
}

static char *put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
        return o;
    }
    if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    }
    *o++ = (char)(0x80 | (cp & 0x3F));
    return o;
}

/* The JSON escape at *pp (a backslash) decoded; the text encoder's rules
 * (pg_encode.c put_json_escape) without COPY's escaping. */
static char *decode_escape(char *o, const char **pp, const char *end, size_t *nul_count)
{
    const char *p = *pp;
    if (end - p < 2) {
        *pp = p + 1;
        *o++ = '\\';
        return o;
    }
    *pp = p + 2;
    switch (p[1]) {
    case 'b':
        *o++ = '\b';
        return o;
    case 'f':
        *o++ = '\f';
        return o;
    case 'n':
        *o++ = '\n';
        return o;
    case 'r':
        *o++ = '\r';
        return o;
    case 't':
        *o++ = '\t';
        return o;
    case 'u': {
        size_t used;
        uint32_t cp = tgt_pg_decode_u_escape(p, end, &used);
        *pp = p + used;
        if (cp == 0) {
            if (nul_count != NULL)
                (*nul_count)++;
            cp = 0xFFFDu;
        }
        return put_utf8(o, cp);
    }
    default:
        *o++ = p[1];
        return o;
    }
}

static void put_json_string(tgt_row_writer *w, const char *raw, size_t n, int escaped)
{
    if (!binary(w)) {
        tgt_pg_row_ops.put_json_string(w, raw, n, escaped);
        return;
    }
    if (!escaped) {
        put_bytes(w, raw, n);
        return;
    }
    size_t at = var_begin(w);
    tgt_sbuf *out = w->out;
    /* a broken \u escape turns 2 bytes into U+FFFD's 3: 2n is enough */
    if (n > SIZE_MAX / 2 - 1 || tgt_sbuf_reserve(out, 2 * n) != 0) {
        out->broken = 1;
        return;
    }
    char *o = out->data + out->len;
    const char *p = raw, *end = raw + n;
    while (p < end) {
        const char *q = memchr(p, '\\', (size_t)(end - p));
        if (q == NULL)
            q = end;
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        p = q;
        if (p < end)
            o = decode_escape(o, &p, end, w->nul_count);
    }
    out->len = (size_t)(o - out->data);
    out->data[out->len] = '\0';
    var_end(w, at);
}

static void put_text(tgt_row_writer *w, const char *s, size_t n)
{
    if (!binary(w)) {
        tgt_pg_row_ops.put_text(w, s, n);
        return;
    }
    put_bytes(w, s, n);
}

/* Fills in the field count held at the row's start. */
static void finish_row(tgt_row_writer *w, size_t fields)
{
    if (tgt_sbuf_ok(w->out))
        pg_binary_put16(w->out->data + w->row_start, (uint16_t)fields);
}

static void end_row(tgt_row_writer *w)
{
    if (!binary(w)) {
        tgt_pg_row_ops.end_row(w);
        return;
    }
    finish_row(w, w->column);
}

static void end_staged_row(tgt_row_writer *w, unsigned long sequence, const unsigned char *carried)
{
    if (!binary(w)) {
        tgt_pg_row_ops.end_staged_row(w, sequence, carried);
        return;
    }
    size_t fields = w->column + 2, n = w->table->n_columns;
    char *p = fixed_field(w, 8);
    if (p != NULL)
        pg_binary_put64(p, (uint64_t)sequence);
    if (carried == NULL) {
        w->column++;
        tgt_sbuf_append(w->out, "\377\377\377\377", 4);
    } else {
        p = fixed_field(w, (uint32_t)n);
        for (size_t i = 0; p != NULL && i < n; i++)
            p[i] = carried[i] ? '1' : '0';
    }
    finish_row(w, fields);
}

const tgt_row_ops tgt_pg_binary_row_ops = {
    .put_null = put_null,
    .put_bool = put_bool,
    .put_integer = put_integer,
    .put_numeric = put_numeric,
    .put_float = put_float,
    .put_date = put_date,
    .put_time = put_time,
    .put_timestamp = put_timestamp,
    .put_json = put_json,
    .put_json_string = put_json_string,
    .put_text = put_text,
    .end_row = end_row,
    .end_staged_row = end_staged_row,
};

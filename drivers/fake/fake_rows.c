/*
 * fake_rows.c - the fake driver's row writer and the parser of its format
 * (fake_rows.h).  Written for plainness, not speed: the unit tests load tens
 * of rows.  JSON strings are decoded with the core's json.h, which the fake
 * (test code) may use.
 */
#include "fake/fake_rows.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* A cell header "v<len>:" and its bytes. */
static void cell(tgt_row_writer *w, const char *bytes, size_t n)
{
    tgt_sbuf_printf(w->out, "v%zu:", n);
    tgt_sbuf_append(w->out, bytes, n);
    w->column++;
}

static void put_null(tgt_row_writer *w)
{
    tgt_sbuf_append_char(w->out, 'n');
    w->column++;
}

static void put_bool(tgt_row_writer *w, int value)
{
    cell(w, value ? "true" : "false", value ? 4 : 5);
}

static void put_number(tgt_row_writer *w, const char *text, size_t n)
{
    cell(w, text, n);
}

/* Rebuilt from the parts, so a test sees what a driver using them gets. */
static void put_datetime(tgt_row_writer *w, const tgt_datetime *v)
{
    char buf[96];
    int n = 0;
    if (v->year != 0)
        n += snprintf(buf, sizeof buf, "%04d-%02d-%02d%s", v->year, v->month, v->day,
                      v->has_time ? "T" : "");
    if (v->has_time)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "%02d:%02d:%02d", v->hour, v->minute,
                      v->second);
    tgt_sbuf tmp;
    tgt_sbuf_init(&tmp);
    tgt_sbuf_append(&tmp, buf, (size_t)n);
    if (v->fraction_len > 0) {
        tgt_sbuf_append_char(&tmp, '.');
        tgt_sbuf_append(&tmp, v->text + v->fraction, v->fraction_len);
    }
    if (v->has_time && v->utc_offset == 0) {
        tgt_sbuf_append_char(&tmp, 'Z');
    } else if (v->has_time) {
        long off = v->utc_offset < 0 ? -v->utc_offset : v->utc_offset;
        tgt_sbuf_printf(&tmp, "%c%02ld:%02ld", v->utc_offset < 0 ? '-' : '+', off / 3600,
                        off / 60 % 60);
    }
    if (!tgt_sbuf_ok(&tmp))
        w->out->broken = 1;
    cell(w, tgt_sbuf_str(&tmp), tmp.len);
    tgt_sbuf_deinit(&tmp);
}

static void put_json(tgt_row_writer *w, const char *json, size_t n)
{
    cell(w, json, n);
}

static void put_json_string(tgt_row_writer *w, const char *raw, size_t n, int escaped)
{
    if (!escaped) {
        cell(w, raw, n);
        return;
    }
    tgt_sbuf tmp;
    tgt_sbuf_init(&tmp);
    tgt_json_decode_string(raw, n, &tmp, w->nul_count);
    if (!tgt_sbuf_ok(&tmp))
        w->out->broken = 1;
    cell(w, tgt_sbuf_str(&tmp), tmp.len);
    tgt_sbuf_deinit(&tmp);
}

static void end_row(tgt_row_writer *w)
{
    tgt_sbuf_append_char(w->out, '\n');
}

static void end_staged_row(tgt_row_writer *w, unsigned long sequence, const unsigned char *carried)
{
    char seq[24];
    int n = snprintf(seq, sizeof seq, "%lu", sequence);
    cell(w, seq, (size_t)n);
    if (carried == NULL) {
        put_null(w);
    } else {
        tgt_sbuf_printf(w->out, "v%zu:", w->table->n_columns);
        for (size_t i = 0; i < w->table->n_columns; i++)
            tgt_sbuf_append_char(w->out, carried[i] ? '1' : '0');
    }
    end_row(w);
}

const tgt_row_ops tgt_fake_row_ops = {
    .put_null = put_null,
    .put_bool = put_bool,
    .put_integer = put_number,
    .put_numeric = put_number,
    .put_float = put_number,
    .put_date = put_datetime,
    .put_time = put_datetime,
    .put_timestamp = put_datetime,
    .put_json = put_json,
    .put_json_string = put_json_string,
    .put_text = put_number,
    .end_row = end_row,
    .end_staged_row = end_staged_row,
};

/* The cell at p[*i..n): its bytes' span (NULL for 'n').  0 incomplete, 1
 * read, -1 not the format. */
static int next_cell(const char *p, size_t n, size_t *i, const char **bytes, size_t *len)
{
    if (p[*i] == 'n') {
        *bytes = NULL;
        (*i)++;
        return 1;
    }
    if (p[*i] != 'v')
        return -1;
    size_t j = *i + 1, v = 0;
    for (; j < n && p[j] >= '0' && p[j] <= '9'; j++)
        v = v * 10 + (size_t)(p[j] - '0');
    if (j == n)
        return 0;
    if (p[j] != ':' || j == *i + 1)
        return -1;
    if (n - (j + 1) < v)
        return 0;
    *bytes = p + j + 1;
    *len = v;
    *i = j + 1 + v;
    return 1;
}

long tgt_fake_row_scan(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (p[i] == '\n')
            return (long)i + 1;
        const char *bytes;
        size_t len;
        int rc = next_cell(p, n, &i, &bytes, &len);
        if (rc <= 0)
            return rc;
    }
    return 0;
}

long tgt_fake_row_cells(const char *p, size_t len, tgt_sbuf *buf, const char **cells, size_t max)
{
    size_t offsets[1024];
    size_t count = 0, i = 0;
    tgt_sbuf_reset(buf);
    while (i < len && p[i] != '\n') {
        const char *bytes;
        size_t n = 0;
        if (next_cell(p, len, &i, &bytes, &n) != 1)
            return (long)count; /* cannot happen after tgt_fake_row_scan */
        if (count < max && count < sizeof offsets / sizeof offsets[0]) {
            offsets[count] = bytes == NULL ? (size_t)-1 : buf->len;
            if (bytes != NULL) {
                tgt_sbuf_append(buf, bytes, n);
                tgt_sbuf_append_char(buf, '\0');
            }
        }
        count++;
    }
    if (!tgt_sbuf_ok(buf))
        return -1;
    /* pointers only now: appends may have moved buf->data */
    for (size_t c = 0; c < count && c < max && c < sizeof offsets / sizeof offsets[0]; c++)
        cells[c] = offsets[c] == (size_t)-1 ? NULL : buf->data + offsets[c];
    return (long)count;
}

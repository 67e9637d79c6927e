/*
 * row.h - the row writer: how the core hands a driver one row of typed
 * values, and how the driver turns them into the bytes of its bulk format.
 *
 * The core checks every value against its live column (kind, range, form)
 * and then calls one put per column, in tgt_table column order, followed by
 * one end call.  The driver's encoder appends its own format to w->out: the
 * core keeps those bytes in a per-stream chunk (and may spool them, drop a
 * row's bytes again, or ship them in any split) and later passes them,
 * unchanged and in order, to the same driver's write_data.  So the format is
 * the driver's business end to end: COPY text for PostgreSQL, a parameter
 * array or a bulk file for others, a tagged dump for the fake driver.
 *
 * The puts never fail on their own: they may only let w->out go broken
 * (out of memory), which the core checks after the row.  They are the
 * innermost loop of a load, so an encoder writes straight into w->out
 * (tgt_sbuf_reserve once, then memcpy) and keeps per-row state in w.
 *
 * Every pointer argument is borrowed for the call; the encoder copies what
 * it keeps.  Text is UTF-8 (the JSON input's); no value is ever NUL-
 * terminated.
 */
#ifndef TGT_ROW_H
#define TGT_ROW_H

#include <stddef.h>

#include "datetime.h"
#include "sbuf.h"
#include "table.h"

/* One row under construction; the core fills it before the first put and
 * the encoder advances `column`. */
typedef struct tgt_row_writer {
    tgt_sbuf *out;          /* where the encoder appends (the stream's chunk) */
    const tgt_table *table; /* the row's table: columns[column] is the next value's */
    size_t column;          /* index of the next value; the encoder adds 1 per put */
    size_t *nul_count;      /* U+0000 the encoder had to replace (if its warehouse
                             * cannot store it) are added here; never NULL */
    /* The encoder's own per-row state (e.g. which of its formats the row is
     * in, where the row began in out): zero when the core starts a row, and
     * never read or written by the core. */
    int format;
    size_t row_start;
} tgt_row_writer;

typedef struct tgt_row_ops {
    /* SQL NULL (an absent property of an append row is NULL too). */
    void (*put_null)(tgt_row_writer *w);
    /* A boolean column: value 0 or 1. */
    void (*put_bool)(tgt_row_writer *w, int value);
    /* An integer column: an optional '-' and decimal digits, no leading
     * zeros, already checked to fit the column's kind (smallint/integer/
     * bigint). */
    void (*put_integer)(tgt_row_writer *w, const char *digits, size_t n);
    /* A numeric column: the JSON number exactly as written (sign, digits,
     * '.', exponent: "-12.50", "1e400"), checked against the column's range
     * (number.h), or one of the words NaN, Infinity, -Infinity.  Never
     * rounded by the core: a driver that cannot hold the digits refuses
     * the row rather than round. */
    void (*put_numeric)(tgt_row_writer *w, const char *text, size_t n);
    /* A real or double precision column: as put_numeric (the JSON text as
     * written, or NaN / Infinity / -Infinity), checked to be within the
     * column's exponent range. */
    void (*put_float)(tgt_row_writer *w, const char *text, size_t n);
    /* A date column: v has no time (v->text is "YYYY-MM-DD"). */
    void (*put_date)(tgt_row_writer *w, const tgt_datetime *v);
    /* A time column (which holds UTC times): v's parts are already in UTC
     * (a written offset moved the clock round, 02:00+05:30 is 20:30:00, and
     * utc_offset is 0); v->text is as written, and when v->has_offset it
     * still ends in the offset the parts were converted from. */
    void (*put_time)(tgt_row_writer *w, const tgt_datetime *v);
    /* A timestamp or timestamptz column (and the target's own times: receive
     * time, batch time, extraction time, deletion mark): a checked ISO 8601
     * date-time with parts; without an offset it is UTC.  The core's own
     * times are written "YYYY-MM-DD HH:MM:SS.ffffff" in UTC. */
    void (*put_timestamp)(tgt_row_writer *w, const tgt_datetime *v);
    /* A json/jsonb column, or an array/object for a text column: valid JSON
     * text as received (strings still JSON-escaped, whitespace between
     * tokens kept), no NaN/Infinity tokens. */
    void (*put_json)(tgt_row_writer *w, const char *json, size_t n);
    /* A string for a text column: the raw JSON string token between its
     * quotes, still JSON-escaped; `escaped` is 0 when it holds no backslash
     * (then the bytes are the value).  Decoding belongs to the encoder so
     * that decode and escape can be one pass. */
    void (*put_json_string)(tgt_row_writer *w, const char *raw, size_t n, int escaped);
    /* A text column given decoded text (a number's or boolean's JSON text
     * for a text column): the bytes are the value. */
    void (*put_text)(tgt_row_writer *w, const char *s, size_t n);
    /* Ends an append row (TGT_WRITE_APPEND). */
    void (*end_row)(tgt_row_writer *w);
    /* Ends a staging row (TGT_WRITE_STAGING) with the target's two extra
     * values: `sequence` (1, 2, ... within the stream's batch: the newest
     * record per key wins at merge) and the presence mask: NULL when the
     * record carried every column, else one byte per table column, 1 for a
     * column the record carried (a value or null) and 0 for one it did not
     * (absent: merge keeps the stored value). */
    void (*end_staged_row)(tgt_row_writer *w, unsigned long sequence, const unsigned char *carried);
} tgt_row_ops;

#endif

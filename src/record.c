/*
 * record.c - RECORD -> one row through the driver's row writer (record.h,
 * row.h).
 *
 * Two steps per row: route (walk the record's members, look each key up in
 * the plan, remember the value token per column) and emit (put the columns
 * in table order, checking each value against its live column type).  The
 * bytes are the driver's: nothing here knows its format.  The
 * routing step is what makes property order in the record irrelevant and
 * unknown properties free to ignore.
 */
#include "record.h"

#include <stdio.h>
#include <string.h>

#include "bytes.h"
#include "datetime.h"
#include "number.h"
#include "utf8.h"

#define VALUE_PREVIEW 80

static const char *json_type_name(uint8_t type)
{
    static const char *const names[] = {"null",   "false", "true",  "number",
                                        "string", "array", "object"};
    return type <= TGT_JSON_OBJECT ? names[type] : "value";
}

/* A JSON value's full text span (strings include their quotes). */
static void value_span(const tgt_json_token *t, const char *text, const char **start, size_t *len)
{
    if (t->type == TGT_JSON_STRING) {
        *start = text + t->start - 1;
        *len = t->len + 2;
    } else {
        *start = text + t->start;
        *len = t->len;
    }
}

static int invalid_value(const tgt_stream *s, const tgt_column *c, const tgt_json_token *t,
                         const char *text, const tgt_record_context *ctx, const char *why,
                         tgt_error *err)
{
    const char *v;
    size_t n;
    value_span(t, text, &v, &n);
    /* never cut a UTF-8 character in two: the message must stay UTF-8 */
    int shown = (int)tgt_utf8_cut(v, n, VALUE_PREVIEW);
    char type_name[64];
    tgt_error_set(err, TGT_ERR_DATA,
                  "invalid record: property \"%s\" of stream \"%s\" holds %.*s%s, which is not "
                  "a valid %s (%s)",
                  c->source_path ? c->source_path : c->name, s->name, shown, v,
                  n > VALUE_PREVIEW ? "..." : "",
                  tgt_type_name(c->live_type, type_name, sizeof(type_name)), why);
    tgt_error_where(err, "%s line %lu, stream \"%s\", property \"%s\"", ctx->input_name,
                    ctx->line_no, s->name, c->source_path ? c->source_path : c->name);
    return -1;
}

/* "invalid record: <kind> "<property>" <problem> in a record of stream ..." */
static int record_error(const tgt_stream *s, const tgt_record_context *ctx, const char *kind,
                        const char *property, const char *problem, tgt_error *err)
{
    tgt_error_set(err, TGT_ERR_DATA, "invalid record: %s \"%s\" %s in a record of stream \"%s\"",
                  kind, property, problem, s->name);
    tgt_error_where(err, "%s line %lu, stream \"%s\", property \"%s\"", ctx->input_name,
                    ctx->line_no, s->name, property);
    return -1;
}

/* An undeclared root key "_sdc_deleted_at" fills the metadata column of
 * that role (a declared one is routed like any property). */
static void capture_deletion_mark(tgt_stream *s, const char *text, const tgt_json_token *key,
                                  size_t value, const tgt_record_context *ctx)
{
    static const char mark[] = TGT_SDC_DELETED_AT;
    const tgt_column *c = &s->model.table.columns[s->model.table.deleted_at_column];
    if (c->role != TGT_COL_DELETED_AT)
        return;
    const char *name = text + key->start;
    size_t len = key->len;
    if (key->flags & TGT_JSON_ESCAPED) {
        name = ctx->scratch->data;
        len = ctx->scratch->len;
    }
    if (len == sizeof(mark) - 1 && memcmp(name, mark, len) == 0)
        s->slot_tok[s->model.table.deleted_at_column] = (long)value;
}

/* A null object is null in each of its flattened columns: they are carried
 * (an upsert stores NULL), unlike those of an object the record omits.
 * Each leaf gets the null token itself, so emitting it writes NULL. */
static void null_children(tgt_stream *s, const tgt_plan *plan, size_t null_tok)
{
    for (size_t i = 0; i < plan->n_entries; i++) {
        const tgt_plan_entry *e = &plan->entries[i];
        if (e->column >= 0)
            s->slot_tok[e->column] = (long)null_tok;
        else
            null_children(s, e->child, null_tok);
    }
}

/* The plan entry named name[0..len): taps write a record's properties in
 * the order their SCHEMA declares them, which is the plan's order, so the
 * entry after the previous one (*next) is tried before the hash lookup. */
static const tgt_plan_entry *find_entry(const tgt_plan *plan, const char *name, size_t len,
                                        size_t *next)
{
    const tgt_plan_entry *e = NULL;
    if (*next < plan->n_entries) {
        const tgt_plan_entry *guess = &plan->entries[*next];
        if (guess->name_len == len && tgt_bytes_equal(guess->name, name, len))
            e = guess;
    }
    if (e == NULL)
        e = tgt_plan_find(plan, name, len);
    if (e != NULL)
        *next = (size_t)(e - plan->entries) + 1;
    return e;
}

/* Walks one object level, filling s->slot_tok for the leaves. */
static int route(tgt_stream *s, const tgt_plan *plan, const tgt_json_parser *p, const char *text,
                 size_t obj, int is_root, const tgt_record_context *ctx, tgt_error *err)
{
    const tgt_json_token *toks = p->tokens;
    size_t i = obj + 1, next = 0;
    for (uint32_t m = 0; m < toks[obj].size; m++) {
        const tgt_json_token *key = &toks[i];
        size_t value = i + 1;
        i = toks[value].end;
        const tgt_plan_entry *e;
        if (key->flags & TGT_JSON_ESCAPED) {
            tgt_sbuf_reset(ctx->scratch);
            tgt_json_decode_string(text + key->start, key->len, ctx->scratch, NULL);
            if (!tgt_sbuf_ok(ctx->scratch))
                return tgt_error_nomem(err);
            e = find_entry(plan, ctx->scratch->data, ctx->scratch->len, &next);
        } else {
            e = find_entry(plan, text + key->start, key->len, &next);
        }
        if (e == NULL) {
            /* undeclared properties are ignored (docs/contract.md "Loading"), except the
             * deletion mark of a CDC record when the table keeps one */
            if (is_root && s->model.table.deleted_at_column >= 0)
                capture_deletion_mark(s, text, key, value, ctx);
            continue;
        }
        if (is_root)
            s->seen[e - plan->entries] = 1;
        if (e->column >= 0) {
            s->slot_tok[e->column] = (long)value;
            continue;
        }
        uint8_t vt = toks[value].type;
        if (vt == TGT_JSON_NULL) {
            null_children(s, e->child, value);
            continue;
        }
        if (vt != TGT_JSON_OBJECT) {
            tgt_error_set(err, TGT_ERR_DATA,
                          "invalid record: property \"%s\" of stream \"%s\" is declared as an "
                          "object but holds a JSON %s",
                          e->child->path, s->name, json_type_name(vt));
            tgt_error_where(err, "%s line %lu, stream \"%s\", property \"%s\"", ctx->input_name,
                            ctx->line_no, s->name, e->child->path);
            return -1;
        }
        if (route(s, e->child, p, text, value, 0, ctx, err) != 0)
            return -1;
    }
    return 0;
}

static int check_required_and_keys(const tgt_stream *s, const tgt_json_parser *p,
                                   const tgt_record_context *ctx, tgt_error *err)
{
    const tgt_plan *root = s->model.root;
    for (size_t i = 0; s->n_required > 0 && i < root->n_entries; i++) {
        if (root->entries[i].required && !s->seen[i])
            return record_error(s, ctx, "required property", root->entries[i].name, "is missing",
                                err);
    }
    const tgt_table *t = &s->model.table;
    for (size_t k = 0; k < t->n_keys; k++) {
        const tgt_column *c = &t->columns[t->key_columns[k]];
        long tok = s->slot_tok[t->key_columns[k]];
        if (tok < 0)
            return record_error(s, ctx, "key property", c->source_path, "is missing", err);
        if (p->tokens[tok].type == TGT_JSON_NULL)
            return record_error(s, ctx, "key property", c->source_path, "is null", err);
    }
    return 0;
}

/* Puts an integral JSON number as plain digits after a range check for
 * the column (number.h: 1e2, 1.5e1 and 12.000 are integers too). */
static int emit_integer(tgt_row_writer *w, const tgt_record_context *ctx, const tgt_json_token *t,
                        const char *text, tgt_type_kind kind, const char **why)
{
    if (t->flags & TGT_JSON_NONFINITE) {
        *why = "not an integer";
        return -1;
    }
    char digits[TGT_NUMBER_INTEGER_MAX];
    size_t n = tgt_number_integer_text(text + t->start, t->len, kind, digits, why);
    if (n == 0)
        return -1;
    ctx->rows->put_integer(w, digits, n);
    return 0;
}

/* Nesting depth of the validated JSON text v[0..n), counted until it
 * passes `limit`. */
static size_t json_depth(const char *v, size_t n, size_t limit)
{
    size_t depth = 0, max = 0;
    for (size_t i = 0; i < n && max <= limit; i++) {
        if (v[i] == '"') {
            for (i++; i < n && v[i] != '"'; i++)
                i += v[i] == '\\';
        } else if (v[i] == '[' || v[i] == '{') {
            max = ++depth > max ? depth : max;
        } else if (v[i] == ']' || v[i] == '}') {
            depth--;
        }
    }
    return max;
}

/* Copies a string token that must hold a date/time value into scratch
 * (decoded) and returns it; NULL when decoding ran out of memory. */
static const char *string_value(const tgt_json_token *t, const char *text,
                                const tgt_record_context *ctx, size_t *n)
{
    if (!(t->flags & TGT_JSON_ESCAPED)) {
        *n = t->len;
        return text + t->start;
    }
    tgt_sbuf_reset(ctx->scratch);
    tgt_json_decode_string(text + t->start, t->len, ctx->scratch, NULL);
    *n = ctx->scratch->len;
    return tgt_sbuf_ok(ctx->scratch) ? ctx->scratch->data : NULL;
}

/* Checks a date/time string for its column kind and puts its parts.  On
 * failure nothing is put. */
static int emit_temporal(tgt_row_writer *w, const tgt_json_token *t, const char *text,
                         tgt_type_kind kind, const tgt_record_context *ctx, const char **why)
{
    if (t->type != TGT_JSON_STRING) {
        *why = "expected a string";
        return -1;
    }
    size_t n;
    const char *v = string_value(t, text, ctx, &n);
    if (v == NULL) {
        *why = "out of memory";
        return -1;
    }
    tgt_datetime dt;
    if (kind == TGT_T_DATE) {
        /* a full timestamp for a date column keeps its date part */
        if (!tgt_datetime_parse_date(v, n, &dt, why) &&
            (tgt_datetime_date_prefix(v, n) == 0 || !tgt_datetime_parse_date(v, 10, &dt, why)))
            return -1;
        ctx->rows->put_date(w, &dt);
    } else if (kind == TGT_T_TIME) {
        if (!tgt_datetime_parse_time(v, n, &dt, why))
            return -1;
        tgt_datetime_time_to_utc(&dt);
        ctx->rows->put_time(w, &dt);
    } else {
        if (!tgt_datetime_parse_timestamp(v, n, &dt, why))
            return -1;
        ctx->rows->put_timestamp(w, &dt);
    }
    return 0;
}

/* Any JSON value into a text column: strings decoded, everything else as
 * its JSON text (numbers keep their exact digits). */
static void emit_as_text(tgt_row_writer *w, const tgt_record_context *ctx, const tgt_json_token *t,
                         const char *text)
{
    switch ((tgt_json_type)t->type) {
    case TGT_JSON_STRING:
        ctx->rows->put_json_string(w, text + t->start, t->len, t->flags & TGT_JSON_ESCAPED);
        return;
    case TGT_JSON_NUMBER:
    case TGT_JSON_TRUE:
    case TGT_JSON_FALSE:
        ctx->rows->put_text(w, text + t->start, t->len);
        return;
    case TGT_JSON_ARRAY:
    case TGT_JSON_OBJECT:
    case TGT_JSON_NULL:
        ctx->rows->put_json(w, text + t->start, t->len);
        return;
    }
}

static int emit_value(tgt_stream *s, tgt_row_writer *w, const tgt_column *c,
                      const tgt_json_token *t, const char *text, const tgt_record_context *ctx,
                      tgt_error *err)
{
    const tgt_row_ops *rows = ctx->rows;
    const char *why = NULL;
    char too_deep[96];
    int rc = 0;
    if (t->type == TGT_JSON_NULL) {
        rows->put_null(w);
        return 0;
    }
    switch (c->live_type.kind) {
    case TGT_T_TEXT:
    case TGT_T_VARCHAR:
    case TGT_T_OTHER:
        emit_as_text(w, ctx, t, text);
        break;
    case TGT_T_JSON:
    case TGT_T_JSONB: {
        const char *v;
        size_t n;
        value_span(t, text, &v, &n);
        if (t->flags & TGT_JSON_NONFINITE) {
            why = "JSON cannot hold NaN or Infinity";
            rc = -1;
            break;
        }
        /* checked here because the warehouse's own failure (PostgreSQL's
         * stack depth) cannot name the input line; a value of depth d has
         * at least 2d bytes */
        size_t max = ctx->json_max_depth;
        if (n > 2 * max && json_depth(v, n, max) > max) {
            snprintf(too_deep, sizeof(too_deep),
                     "nested more than %zu levels deep, deeper than the warehouse reads", max);
            why = too_deep;
            rc = -1;
            break;
        }
        rows->put_json(w, v, n);
        break;
    }
    case TGT_T_SMALLINT:
    case TGT_T_INTEGER:
    case TGT_T_BIGINT:
        if (t->type != TGT_JSON_NUMBER) {
            why = "expected a JSON number";
            rc = -1;
        } else {
            rc = emit_integer(w, ctx, t, text, c->live_type.kind, &why);
        }
        break;
    case TGT_T_NUMERIC:
    case TGT_T_REAL:
    case TGT_T_DOUBLE:
        if (t->type != TGT_JSON_NUMBER) {
            why = "expected a JSON number";
            rc = -1;
        } else if ((t->flags & TGT_JSON_NONFINITE) ||
                   tgt_number_fits(text + t->start, t->len, c->live_type.kind, &why)) {
            /* NaN and (-)Infinity go to the driver as words (row.h) */
            if (c->live_type.kind == TGT_T_NUMERIC)
                rows->put_numeric(w, text + t->start, t->len);
            else
                rows->put_float(w, text + t->start, t->len);
        } else {
            rc = -1;
        }
        break;
    case TGT_T_BOOLEAN:
        if (t->type == TGT_JSON_TRUE || t->type == TGT_JSON_FALSE) {
            rows->put_bool(w, t->type == TGT_JSON_TRUE);
        } else {
            why = "expected true or false";
            rc = -1;
        }
        break;
    case TGT_T_DATE:
    case TGT_T_TIMESTAMP:
    case TGT_T_TIMESTAMPTZ:
    case TGT_T_TIME:
        rc = emit_temporal(w, t, text, c->live_type.kind, ctx, &why);
        break;
    }
    if (rc != 0)
        return invalid_value(s, c, t, text, ctx, why, err);
    return 0;
}

static int digits_at(const char *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (p[i] - '0');
    return v;
}

/* One of the target's own times, which the loader writes in one form
 * (record.h: "YYYY-MM-DD HH:MM:SS.ffffff", UTC): read by position, as it
 * runs for every row. */
static void own_time(tgt_row_writer *w, const tgt_record_context *ctx, const char *v, size_t n)
{
    tgt_datetime dt = {
        .text = v,
        .len = n,
        .year = digits_at(v, 4),
        .month = digits_at(v + 5, 2),
        .day = digits_at(v + 8, 2),
        .hour = digits_at(v + 11, 2),
        .minute = digits_at(v + 14, 2),
        .second = digits_at(v + 17, 2),
        .fraction = 20,
        .fraction_len = n > 20 ? n - 20 : 0,
        .has_time = 1,
    };
    ctx->rows->put_timestamp(w, &dt);
}

/* A timestamp from the envelope or a deletion mark: the value when it is a
 * valid timestamp, else the receive time (`fallback`) or NULL.  Returns 1
 * when a present value was replaced. */
static int emit_lenient_timestamp(tgt_row_writer *w, const tgt_json_parser *p, long tok,
                                  const char *text, const tgt_record_context *ctx, int fallback)
{
    const char *why = NULL;
    if (tok < 0 || p->tokens[tok].type == TGT_JSON_NULL) {
        ctx->rows->put_null(w);
        return 0;
    }
    if (emit_temporal(w, &p->tokens[tok], text, TGT_T_TIMESTAMPTZ, ctx, &why) == 0)
        return 0;
    if (fallback)
        own_time(w, ctx, ctx->loaded_at, ctx->loaded_at_len);
    else
        ctx->rows->put_null(w);
    return 1;
}

/* The value of a column target-pg fills itself (table.h roles).  Returns 1
 * when c is such a column (its value put), 0 for a data column. */
static int emit_role(tgt_stream *s, tgt_row_writer *w, const tgt_column *c, size_t i,
                     const tgt_json_parser *p, const char *text, const tgt_record_context *ctx,
                     tgt_error *err, int *rc)
{
    *rc = 0;
    switch (c->role) {
    case TGT_COL_DATA:
        return 0;
    case TGT_COL_LOADED_AT:
    case TGT_COL_RECEIVED_AT:
        own_time(w, ctx, ctx->loaded_at, ctx->loaded_at_len);
        return 1;
    case TGT_COL_BATCHED_AT:
        own_time(w, ctx, ctx->batched_at, ctx->batched_at_len);
        return 1;
    case TGT_COL_EXTRACTED_AT:
        /* a bad envelope time is not the record's fault: NULL, counted so
         * the loader can warn (loader.c) */
        if (emit_lenient_timestamp(w, p, ctx->extracted_tok, text, ctx, 0) &&
            s->bad_extracted_at++ == 0)
            s->bad_extracted_line = ctx->line_no;
        return 1;
    case TGT_COL_DELETED_AT: {
        /* any mark deletes; one that is not a timestamp (seen in the wild:
         * "2019-12-18T13:19:44+00:00+00:00") is dated by its receive time */
        s->bad_deletion_marks += (size_t)emit_lenient_timestamp(w, p, s->slot_tok[i], text, ctx, 1);
        return 1;
    }
    case TGT_COL_TABLE_VERSION: {
        const char *why = NULL;
        long tok = ctx->version_tok;
        if (tok < 0 || p->tokens[tok].type == TGT_JSON_NULL) {
            ctx->rows->put_null(w);
        } else if (p->tokens[tok].type != TGT_JSON_NUMBER ||
                   emit_integer(w, ctx, &p->tokens[tok], text, TGT_T_BIGINT, &why) != 0) {
            tgt_error_set(err, TGT_ERR_INPUT,
                          "RECORD of stream \"%s\" has a \"version\" that is not a 64-bit "
                          "integer",
                          s->name);
            tgt_error_where(err, "%s line %lu, stream \"%s\"", ctx->input_name, ctx->line_no,
                            s->name);
            *rc = -1;
        }
        return 1;
    }
    case TGT_COL_SEQUENCE: {
        char digits[24];
        int n = snprintf(digits, sizeof digits, "%llu", ctx->sequence);
        ctx->rows->put_integer(w, digits, (size_t)n);
        return 1;
    }
    }
    return 0;
}

/* Column i of a staged row is absent: a property the record does not carry
 * (neither a value nor null).  The target's own columns and the deletion
 * mark are always carried: a record without a mark is not deleted. */
static int is_absent(const tgt_stream *s, size_t i)
{
    const tgt_table *t = &s->model.table;
    return s->slot_tok[i] < 0 && t->columns[i].role == TGT_COL_DATA &&
           (long)i != t->deleted_at_column;
}

/* Ends a staged row with its sequence and presence mask (row.h): NULL when
 * the record carries every column, else a carried flag per column (built in
 * scratch, free again by now).  A partial row makes the stream's merge
 * combine its batch column by column. */
static int end_staged_row(tgt_stream *s, tgt_row_writer *w, const tgt_record_context *ctx,
                          tgt_error *err)
{
    size_t n = s->model.table.n_columns, i = 0;
    while (i < n && !is_absent(s, i))
        i++;
    if (i == n) {
        ctx->rows->end_staged_row(w, ++s->seq, NULL);
        return 0;
    }
    s->partial_rows = 1;
    tgt_sbuf_reset(ctx->scratch);
    if (tgt_sbuf_reserve(ctx->scratch, n) != 0)
        return tgt_error_nomem(err);
    unsigned char *carried = (unsigned char *)ctx->scratch->data;
    for (i = 0; i < n; i++)
        carried[i] = !is_absent(s, i);
    ctx->rows->end_staged_row(w, ++s->seq, carried);
    return 0;
}

static int emit_row(tgt_stream *s, const tgt_json_parser *p, const char *text,
                    const tgt_record_context *ctx, tgt_error *err)
{
    const tgt_table *t = &s->model.table;
    tgt_row_writer w = {.out = &s->chunk, .table = t, .column = 0, .nul_count = &s->nul_replaced};
    for (size_t i = 0; i < t->n_columns; i++) {
        const tgt_column *c = &t->columns[i];
        int rc;
        if (emit_role(s, &w, c, i, p, text, ctx, err, &rc)) {
            if (rc != 0)
                return -1;
            continue;
        }
        long tok = s->slot_tok[i];
        if (tok < 0) {
            ctx->rows->put_null(&w);
            continue;
        }
        if (emit_value(s, &w, c, &p->tokens[tok], text, ctx, err) != 0)
            return -1;
    }
    if (ctx->staging)
        return end_staged_row(s, &w, ctx, err);
    ctx->rows->end_row(&w);
    return 0;
}

int tgt_record_encode(tgt_stream *s, const tgt_json_parser *p, const char *text, size_t record,
                      const tgt_record_context *ctx, tgt_error *err)
{
    const tgt_table *t = &s->model.table;
    for (size_t i = 0; i < t->n_columns; i++)
        s->slot_tok[i] = -1;
    if (s->n_required > 0)
        memset(s->seen, 0, s->model.root->n_entries);
    if (route(s, s->model.root, p, text, record, 1, ctx, err) != 0 ||
        check_required_and_keys(s, p, ctx, err) != 0)
        return -1;
    size_t row_start = s->chunk.len;
    if (emit_row(s, p, text, ctx, err) != 0 || !tgt_sbuf_ok(&s->chunk)) {
        if (!tgt_sbuf_ok(&s->chunk))
            tgt_error_nomem(err);
        s->chunk.len = row_start; /* nothing of a bad row stays behind */
        if (s->chunk.data != NULL && !s->chunk.broken)
            s->chunk.data[row_start] = '\0';
        return -1;
    }
    s->rows_in_chunk++;
    s->rows_pending++;
    return 0;
}

/*
 * fuzz_copy.c - libFuzzer target: the postgres driver's COPY text encoding
 * (drivers/postgres/pg_encode.h) of arbitrary bytes, and tgt_record_encode
 * (record.h) of an arbitrary record through that driver's row writer against
 * fixed streams whose columns cover every column type and role.
 *
 * Why: COPY text has no framing but TAB and newline.  One unescaped TAB,
 * LF or CR, or a backslash that starts a sequence PostgreSQL reads
 * differently, shifts or corrupts every later value of the chunk, silently.
 * So for every input:
 *   - each encoder's output is well-formed COPY text (no raw TAB/LF/CR; a
 *     backslash only before \ t n r), at most twice the input, appended
 *     after what the buffer held;
 *   - tgt_pg_copy_text round-trips exactly;
 *   - tgt_pg_copy_json_string, when the input is a valid JSON string
 *     body, reads back as tgt_json_decode_string's decoding (same U+0000
 *     count); tgt_pg_copy_json_raw, when the input is a valid JSON text,
 *     reads back as the same JSON with each \u0000 escape made \ufffd;
 *   - when the input is a JSON object or a Singer RECORD line, the encoded
 *     row has exactly one field per column, ends in one newline, and every
 *     field holds what its column type reads (t/f, in-range integers in
 *     plain digits, JSON numbers or NaN/Infinity, valid dates and times
 *     without a UTC offset for time, strict JSON without \u0000, UTF-8 text
 *     without NUL), or the record is refused leaving the chunk as it was.
 */
#include <jansson.h>
#include <string.h>

#include "datetime.h"
#include "fuzz.h"
#include "json.h"
#include "message.h"
#include "postgres/pg_caps.h"
#include "postgres/pg_encode.h"
#include "record.h"
#include "stream.h"

#define LOADED_AT "2026-01-01 00:00:00.000000"
#define BATCHED_AT "2026-01-01 00:00:01.000000"

/* One column of every kind the schema maps to, plus (through live_type
 * overrides below) every kind a live table can give a column. */
static const char STREAM_SCHEMA[] =
    "{\"type\":\"object\",\"required\":[\"id\"],\"properties\":{"
    "\"id\":{\"type\":\"integer\"},"
    "\"flag\":{\"type\":[\"null\",\"boolean\"]},"
    "\"small\":{\"type\":\"integer\"},"
    "\"medium\":{\"type\":\"integer\"},"
    "\"huge\":{\"type\":\"integer\",\"maximum\":1e30},"
    "\"amount\":{\"type\":\"number\"},"
    "\"ratio\":{\"type\":\"number\"},"
    "\"score\":{\"type\":\"number\"},"
    "\"day\":{\"type\":\"string\",\"format\":\"date\"},"
    "\"stamp\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"stamptz\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"clock\":{\"type\":\"string\",\"format\":\"time\"},"
    "\"code\":{\"type\":\"string\"},"
    "\"note\":{\"type\":[\"null\",\"string\"]},"
    "\"shape\":{\"type\":\"string\"},"
    "\"mixed\":{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"string\"}]},"
    "\"anything\":{},"
    "\"doc\":{\"type\":\"object\"},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
    "\"addr\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},"
    "\"geo\":{\"type\":[\"null\",\"object\"],\"properties\":{\"lat\":{\"type\":\"number\"}}}}}"
    "}}";

static const struct {
    const char *column;
    tgt_type_kind kind;
    int length;
} LIVE_OVERRIDES[] = {
    {"small", TGT_T_SMALLINT, 0}, {"medium", TGT_T_INTEGER, 0},  {"ratio", TGT_T_REAL, 0},
    {"score", TGT_T_DOUBLE, 0},   {"stamp", TGT_T_TIMESTAMP, 0}, {"code", TGT_T_VARCHAR, 8},
    {"doc", TGT_T_JSON, 0},       {"shape", TGT_T_OTHER, 0},
};

typedef struct fuzz_stream {
    tgt_stream s;
    int staging;
} fuzz_stream;

static fuzz_stream streams[2];
static int streams_ready;

static void stream_setup(fuzz_stream *f, int keyed, int metadata)
{
    memset(f, 0, sizeof(*f));
    tgt_sbuf_init(&f->s.chunk);
    f->s.name = strdup("fuzz");
    f->s.name_len = 4;
    tgt_schema_model_init(&f->s.model);
    json_t *schema = json_loads(STREAM_SCHEMA, JSON_DECODE_INT_AS_REAL, NULL);
    json_t *keys = keyed ? json_pack("[s]", "id") : NULL;
    FUZZ_CHECK(schema != NULL && f->s.name != NULL);
    tgt_schema_options opt;
    memset(&opt, 0, sizeof(opt));
    opt.stream = "fuzz";
    opt.target_schema = "public";
    opt.table_name = "fuzz";
    opt.timestamp_column = "__loaded_at";
    opt.flattening_max_depth = 10;
    opt.metadata_columns = metadata;
    opt.versioned = metadata;
    opt.hard_delete = metadata;
    opt.caps = &tgt_pg_caps;
    tgt_schema_model model;
    tgt_error err;
    tgt_error_init(&err);
    FUZZ_CHECK(tgt_schema_build(schema, keys, &opt, &model, &err) == 0);
    for (size_t i = 0; i < sizeof(LIVE_OVERRIDES) / sizeof(LIVE_OVERRIDES[0]); i++) {
        long c = tgt_table_find_column(&model.table, LIVE_OVERRIDES[i].column);
        FUZZ_CHECK(c >= 0);
        model.table.columns[c].live_type.kind = LIVE_OVERRIDES[i].kind;
        model.table.columns[c].live_type.length = LIVE_OVERRIDES[i].length;
    }
    FUZZ_CHECK(tgt_stream_set_model(&f->s, &model, strdup("fp"), &err) == 0);
    f->staging = keyed;
    json_decref(schema);
    json_decref(keys);
}

/* The streams are built on the first input and kept until the process
 * exits (still reachable, so LeakSanitizer does not report them); each
 * input resets only their chunks. */
static void streams_init(void)
{
    if (streams_ready)
        return;
    stream_setup(&streams[0], 1, 1);
    stream_setup(&streams[1], 0, 0);
    streams_ready = 1;
}

/* Checks that s[0..n) is well-formed COPY text for one value (no raw TAB,
 * LF or CR; a backslash only before \ t n r) and appends what PostgreSQL
 * reads from it to dec. */
static void copy_decode(const char *s, size_t n, tgt_sbuf *dec)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        FUZZ_CHECK(c != '\t' && c != '\n' && c != '\r');
        if (c == '\\') {
            FUZZ_CHECK(i + 1 < n);
            char e = s[++i];
            FUZZ_CHECK(e == '\\' || e == 't' || e == 'n' || e == 'r');
            c = e == '\\' ? '\\' : e == 't' ? '\t' : e == 'n' ? '\n' : '\r';
        }
        tgt_sbuf_append_char(dec, (char)c);
    }
}

/* The buffer kept what it held before the encoder appended. */
#define PREFIX "x\ty\\\\"
#define PREFIX_LEN (sizeof(PREFIX) - 1)

static void start(tgt_sbuf *out)
{
    tgt_sbuf_reset(out);
    tgt_sbuf_append(out, PREFIX, PREFIX_LEN);
}

/* The appended part, checked against the 2x bound; decoded into dec. */
static void appended(const tgt_sbuf *out, size_t in_len, tgt_sbuf *dec)
{
    FUZZ_CHECK(tgt_sbuf_ok(out) && out->len >= PREFIX_LEN);
    FUZZ_CHECK(memcmp(out->data, PREFIX, PREFIX_LEN) == 0);
    FUZZ_CHECK(out->data[out->len] == '\0');
    size_t n = out->len - PREFIX_LEN;
    FUZZ_CHECK(n <= 2 * in_len);
    tgt_sbuf_reset(dec);
    copy_decode(out->data + PREFIX_LEN, n, dec);
    FUZZ_CHECK(tgt_sbuf_ok(dec));
}

/* The JSON text with each \u0000 escape (the 6 bytes, not a "\\" pair
 * followed by u0000) replaced by \ufffd: what the raw encoder must write
 * before COPY escaping. */
static void expected_raw(const char *s, size_t n, tgt_sbuf *want, size_t *nuls)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) {
            if (n - i >= 6 && memcmp(s + i, "\\u0000", 6) == 0) {
                tgt_sbuf_append(want, "\\ufffd", 6);
                (*nuls)++;
                i += 5;
            } else {
                tgt_sbuf_append(want, s + i, 2);
                i++;
            }
            continue;
        }
        tgt_sbuf_append_char(want, s[i]);
    }
}

static int same(const tgt_sbuf *a, const tgt_sbuf *b)
{
    return a->len == b->len && memcmp(tgt_sbuf_str(a), tgt_sbuf_str(b), a->len) == 0;
}

static void check_encoders(const char *in, size_t n, tgt_json_parser *p, tgt_sbuf *out,
                           tgt_sbuf *dec, tgt_sbuf *want)
{
    tgt_error err;

    start(out);
    tgt_pg_copy_text(out, in, n);
    appended(out, n, dec);
    FUZZ_CHECK(dec->len == n && memcmp(tgt_sbuf_str(dec), in, n) == 0);

    /* the input as a JSON string body, escapes and all */
    size_t nuls = 0;
    start(out);
    tgt_pg_copy_json_string(out, in, n, 1, &nuls);
    appended(out, n, dec);
    tgt_sbuf_reset(want);
    tgt_sbuf_append_char(want, '"');
    tgt_sbuf_append(want, in, n);
    tgt_sbuf_append_char(want, '"');
    FUZZ_CHECK(tgt_sbuf_ok(want));
    tgt_error_init(&err);
    if (tgt_json_parse(p, want->data, want->len, &err) == 0 && p->n_tokens == 1) {
        size_t want_nuls = 0;
        tgt_sbuf_reset(want);
        tgt_json_decode_string(in, n, want, &want_nuls);
        FUZZ_CHECK(tgt_sbuf_ok(want) && want_nuls == nuls);
        FUZZ_CHECK(same(dec, want));
        FUZZ_CHECK(fuzz_utf8_valid((const unsigned char *)tgt_sbuf_str(dec), dec->len));
        FUZZ_CHECK(memchr(tgt_sbuf_str(dec), '\0', dec->len) == NULL);
        if (!(p->tokens[0].flags & TGT_JSON_ESCAPED)) {
            /* the fast path for strings without escapes agrees */
            start(out);
            tgt_pg_copy_json_string(out, in, n, 0, NULL);
            appended(out, n, want);
            FUZZ_CHECK(same(want, dec));
        }
    }

    /* the input as a whole JSON text for a jsonb column */
    nuls = 0;
    start(out);
    tgt_pg_copy_json_raw(out, in, n, &nuls);
    appended(out, n, dec);
    size_t want_nuls = 0;
    tgt_sbuf_reset(want);
    expected_raw(in, n, want, &want_nuls);
    FUZZ_CHECK(tgt_sbuf_ok(want) && want_nuls == nuls);
    FUZZ_CHECK(same(dec, want));
    tgt_error_init(&err);
    if (tgt_json_parse(p, in, n, &err) == 0) {
        size_t n_tok = p->n_tokens;
        tgt_error_init(&err);
        FUZZ_CHECK(tgt_json_parse(p, tgt_sbuf_str(dec), dec->len, &err) == 0 &&
                   p->n_tokens == n_tok);
        for (size_t i = 0; i < n_tok; i++)
            FUZZ_CHECK(!(p->tokens[i].flags & TGT_JSON_HAS_NUL));
    }
}

/* Whether a decoded field is a value PostgreSQL reads for column c. */
static void check_field(const tgt_column *c, const char *v, size_t n, tgt_json_parser *p)
{
    tgt_error err;
    tgt_error_init(&err);
    switch (c->live_type.kind) {
    case TGT_T_BOOLEAN:
        FUZZ_CHECK(n == 1 && (v[0] == 't' || v[0] == 'f'));
        break;
    case TGT_T_SMALLINT:
    case TGT_T_INTEGER:
    case TGT_T_BIGINT: {
        size_t neg = n > 0 && v[0] == '-';
        size_t nd = n - neg;
        static const char *const max[] = {"32768", "2147483648", "9223372036854775808"};
        const char *limit = max[c->live_type.kind == TGT_T_SMALLINT  ? 0
                                : c->live_type.kind == TGT_T_INTEGER ? 1
                                                                     : 2];
        FUZZ_CHECK(nd >= 1);
        for (size_t i = neg; i < n; i++)
            FUZZ_CHECK(v[i] >= '0' && v[i] <= '9');
        FUZZ_CHECK(nd == 1 || v[neg] != '0');
        /* |value| <= limit, and < limit when positive */
        size_t ln = strlen(limit);
        int cmp = nd != ln ? (nd < ln ? -1 : 1) : memcmp(v + neg, limit, ln);
        FUZZ_CHECK(cmp < 0 || (cmp == 0 && neg));
        break;
    }
    case TGT_T_NUMERIC:
    case TGT_T_REAL:
    case TGT_T_DOUBLE:
        FUZZ_CHECK(tgt_json_parse(p, v, n, &err) == 0 && p->tokens[0].type == TGT_JSON_NUMBER);
        break;
    case TGT_T_DATE:
        FUZZ_CHECK(tgt_datetime_check_date(v, n, NULL));
        break;
    case TGT_T_TIMESTAMP:
    case TGT_T_TIMESTAMPTZ:
        FUZZ_CHECK(tgt_datetime_check_timestamp(v, n, NULL));
        break;
    case TGT_T_TIME: {
        /* converted to UTC: nothing after the clock and its fraction */
        char hms[TGT_DATETIME_HMS_LEN];
        size_t frac, frac_len;
        FUZZ_CHECK(tgt_datetime_check_time(v, n, NULL));
        FUZZ_CHECK(!tgt_datetime_time_utc(v, n, hms, &frac, &frac_len));
        break;
    }
    case TGT_T_JSON:
    case TGT_T_JSONB:
        /* strict JSON: no NaN or Infinity either */
        FUZZ_CHECK(tgt_json_parse(p, v, n, &err) == 0 &&
                   !(p->tokens[0].flags & TGT_JSON_NONFINITE));
        for (size_t i = 0; i < p->n_tokens; i++)
            FUZZ_CHECK(!(p->tokens[i].flags & TGT_JSON_HAS_NUL));
        break;
    case TGT_T_TEXT:
    case TGT_T_VARCHAR:
    case TGT_T_OTHER:
        FUZZ_CHECK(fuzz_utf8_valid((const unsigned char *)v, n) && memchr(v, '\0', n) == NULL);
        break;
    }
}

/* A staged row's presence mask (driver.h): \N, or one '1'/'0' per column
 * where '0' (absent) only marks a non-key data column whose field is \N. */
static void check_mask(const tgt_table *t, const char *v, size_t n, const unsigned char *was_null)
{
    if (n == 2 && v[0] == '\\' && v[1] == 'N')
        return;
    FUZZ_CHECK(n == t->n_columns);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(v[i] == '0' || v[i] == '1');
        if (v[i] == '0')
            FUZZ_CHECK(was_null[i] && !t->columns[i].is_key && t->columns[i].role == TGT_COL_DATA);
    }
}

/* The row at chunk[from..) is one COPY line: a field per column (plus the
 * staging sequence and presence mask), each a value its column reads, or \N
 * but never for a key. */
static void check_row(const fuzz_stream *f, size_t from, tgt_json_parser *p, tgt_sbuf *dec)
{
    const tgt_table *t = &f->s.model.table;
    const char *row = f->s.chunk.data + from;
    size_t len = f->s.chunk.len - from;
    FUZZ_CHECK(len >= 1 && row[len - 1] == '\n');
    size_t n_fields = t->n_columns + (f->staging ? 2 : 0);
    unsigned char was_null[256] = {0};
    FUZZ_CHECK(t->n_columns <= sizeof(was_null));
    size_t pos = 0;
    for (size_t i = 0; i < n_fields; i++) {
        const char *tab = memchr(row + pos, '\t', len - 1 - pos);
        FUZZ_CHECK((tab != NULL) == (i + 1 < n_fields));
        size_t end = tab != NULL ? (size_t)(tab - row) : len - 1;
        const char *v = row + pos;
        size_t n = end - pos;
        pos = end + 1;
        const tgt_column *c = i < t->n_columns ? &t->columns[i] : NULL;
        if (i == t->n_columns + 1) {
            check_mask(t, v, n, was_null);
            continue;
        }
        if (n == 2 && v[0] == '\\' && v[1] == 'N') {
            FUZZ_CHECK(c != NULL && !c->is_key);
            was_null[i] = 1;
            continue;
        }
        tgt_sbuf_reset(dec);
        copy_decode(v, n, dec);
        FUZZ_CHECK(tgt_sbuf_ok(dec));
        if (c == NULL) {
            /* the staging sequence */
            FUZZ_CHECK(dec->len > 0);
            for (size_t k = 0; k < dec->len; k++)
                FUZZ_CHECK(dec->data[k] >= '0' && dec->data[k] <= '9');
            continue;
        }
        check_field(c, tgt_sbuf_str(dec), dec->len, p);
    }
}

static void encode_record(const char *line, size_t size, tgt_json_parser *quick,
                          tgt_json_parser *check, tgt_sbuf *scratch, tgt_sbuf *dec)
{
    tgt_message m;
    tgt_error err;
    tgt_error_init(&err);
    long record = -1;
    tgt_sbuf_reset(scratch);
    if (tgt_message_parse(quick, line, size, &m, scratch, &err) == 0) {
        if (m.type == TGT_MSG_RECORD)
            record = m.record;
    } else if (quick->n_tokens > 0 && quick->tokens[0].type == TGT_JSON_OBJECT) {
        record = 0; /* not an envelope: the object itself is the record */
        m.version = m.time_extracted = -1;
    }
    if (record < 0)
        return;
    streams_init();
    for (size_t i = 0; i < 2; i++) {
        fuzz_stream *f = &streams[i];
        tgt_sbuf_reset(&f->s.chunk);
        tgt_sbuf_append(&f->s.chunk, "0\n", 2); /* an earlier row that must survive */
        unsigned long pending = f->s.rows_pending;
        tgt_record_context ctx;
        memset(&ctx, 0, sizeof(ctx));
        ctx.input_name = "stdin";
        ctx.line_no = 1;
        ctx.rows = &tgt_pg_row_ops;
        ctx.json_max_depth = tgt_pg_caps.json_max_depth;
        ctx.loaded_at = LOADED_AT;
        ctx.loaded_at_len = sizeof(LOADED_AT) - 1;
        ctx.staging = f->staging;
        ctx.scratch = scratch;
        ctx.batched_at = BATCHED_AT;
        ctx.batched_at_len = sizeof(BATCHED_AT) - 1;
        ctx.sequence = 1;
        ctx.extracted_tok = m.time_extracted;
        ctx.version_tok = m.version;
        tgt_error_init(&err);
        if (tgt_record_encode(&f->s, quick, line, (size_t)record, &ctx, &err) == 0) {
            FUZZ_CHECK(f->s.rows_pending == pending + 1);
            check_row(f, 2, check, dec);
        } else {
            FUZZ_CHECK((err.code == TGT_ERR_DATA || err.code == TGT_ERR_INPUT) &&
                       err.message[0] != '\0');
            FUZZ_CHECK(f->s.rows_pending == pending && f->s.chunk.len == 2 &&
                       strcmp(f->s.chunk.data, "0\n") == 0);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    tgt_json_parser quick, check;
    tgt_json_parser_init(&quick);
    tgt_json_parser_init(&check);
    quick.skip_array_items = 1; /* as target.c runs it */
    tgt_sbuf out, dec, want, scratch;
    tgt_sbuf_init(&out);
    tgt_sbuf_init(&dec);
    tgt_sbuf_init(&want);
    tgt_sbuf_init(&scratch);

    check_encoders(in, size, &check, &out, &dec, &want);
    encode_record(in, size, &quick, &check, &scratch, &dec);

    tgt_sbuf_deinit(&out);
    tgt_sbuf_deinit(&dec);
    tgt_sbuf_deinit(&want);
    tgt_sbuf_deinit(&scratch);
    tgt_json_parser_deinit(&quick);
    tgt_json_parser_deinit(&check);
    return 0;
}

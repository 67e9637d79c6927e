/*
 * fuzz_message.c - libFuzzer target: one input line through the JSON
 * tokenizer (json.h) and the Singer envelope parser (message.h), the way
 * target.c treats every line of a run, and a SCHEMA line on through jansson
 * and tgt_schema_build the way loader.c does.
 *
 * Why: these are the first functions to see the tap's bytes, they index
 * into the line by offsets they computed themselves, and the hot path never
 * re-checks what they accepted.  Beyond "no crash, no leak, no UB" it checks:
 *   - the token array is a well-formed tree over the text (offsets in range,
 *     subtree ends nested, sizes equal child counts, literals and brackets
 *     where they claim to be, INTEGRAL exactly for numbers without . e E,
 *     NONFINITE exactly for NaN, Infinity, -Infinity and the containers
 *     that hold one);
 *   - every string token decodes to valid UTF-8 no longer than its raw text,
 *     and tgt_json_string_equals agrees with the decoding;
 *   - tgt_json_object_get finds the last of duplicate keys;
 *   - the parse with skip_array_items (production) accepts exactly what the
 *     full parse accepts, with the same error;
 *   - anything jansson (a strict RFC 8259 reader) accepts is accepted
 *     (lines without a raw NUL byte, which jansson skips after a number);
 *   - a parsed message has the fields its type requires, of the right JSON
 *     type, and a non-empty stream name equal to the "stream" token.
 */
#include <jansson.h>
#include <string.h>

#include "fuzz.h"
#include "json.h"
#include "message.h"
#include "naming.h"
#include "postgres/pg_caps.h"
#include "schema.h"

/* Object members compared against tgt_json_object_get (quadratic). */
#define LOOKUP_CHECKS 8

static int literal_ok(const tgt_json_token *t, const char *text)
{
    const char *word = t->type == TGT_JSON_NULL   ? "null"
                       : t->type == TGT_JSON_TRUE ? "true"
                                                  : "false";
    return t->len == strlen(word) && memcmp(text + t->start, word, t->len) == 0;
}

static void check_string(const tgt_json_token *t, const char *text, size_t len, tgt_sbuf *scratch)
{
    FUZZ_CHECK(t->start >= 1 && t->start + t->len < len);
    FUZZ_CHECK(text[t->start - 1] == '"' && text[t->start + t->len] == '"');
    FUZZ_CHECK(((t->flags & TGT_JSON_ESCAPED) != 0) ==
               (memchr(text + t->start, '\\', t->len) != NULL));
    if (t->flags & TGT_JSON_HAS_NUL)
        FUZZ_CHECK(t->flags & TGT_JSON_ESCAPED);
    tgt_sbuf_reset(scratch);
    size_t nuls = 0;
    tgt_json_decode_string(text + t->start, t->len, scratch, &nuls);
    FUZZ_CHECK(tgt_sbuf_ok(scratch));
    const char *d = tgt_sbuf_str(scratch);
    FUZZ_CHECK(scratch->len <= t->len);
    FUZZ_CHECK(fuzz_utf8_valid((const unsigned char *)d, scratch->len));
    FUZZ_CHECK(memchr(d, '\0', scratch->len) == NULL); /* \u0000 became U+FFFD */
    FUZZ_CHECK((nuls > 0) == ((t->flags & TGT_JSON_HAS_NUL) != 0));
    FUZZ_CHECK(tgt_json_string_equals(text + t->start, t->len, t->flags, d, scratch->len));
    if (scratch->len > 0)
        FUZZ_CHECK(!tgt_json_string_equals(text + t->start, t->len, t->flags, d, scratch->len - 1));
}

static int is_word(const tgt_json_token *t, const char *text, const char *word)
{
    return t->len == strlen(word) && memcmp(text + t->start, word, t->len) == 0;
}

/* Whether a value's text holds NaN or Infinity outside its strings: the
 * only places an 'N' or 'I' can stand there. */
static int has_nonfinite(const tgt_json_token *t, const char *text)
{
    const char *v = text + t->start;
    for (size_t i = 0; i < t->len; i++) {
        if (v[i] == '"') {
            for (i++; v[i] != '"'; i++)
                i += v[i] == '\\';
        } else if (v[i] == 'N' || v[i] == 'I') {
            return 1;
        }
    }
    return 0;
}

/*
 * The token array of a successful parse: a tree in document order whose
 * subtree ends nest.  Iterative, because nesting is as deep as the input is
 * long.  With `skipped` set, array elements have no tokens.
 */
static void check_tokens(const tgt_json_parser *p, const char *text, size_t len, int skipped,
                         tgt_sbuf *scratch)
{
    const tgt_json_token *toks = p->tokens;
    size_t n = p->n_tokens;
    FUZZ_CHECK(n >= 1 && toks[0].end == n);
    for (size_t i = 0; i < n; i++) {
        const tgt_json_token *t = &toks[i];
        FUZZ_CHECK(t->end > i && t->end <= n);
        FUZZ_CHECK(t->start <= len && t->len <= len - t->start);
        switch ((tgt_json_type)t->type) {
        case TGT_JSON_NULL:
        case TGT_JSON_TRUE:
        case TGT_JSON_FALSE:
            FUZZ_CHECK(t->end == i + 1 && literal_ok(t, text));
            break;
        case TGT_JSON_NUMBER: {
            FUZZ_CHECK(t->end == i + 1 && t->len > 0);
            FUZZ_CHECK(((t->flags & TGT_JSON_NONFINITE) != 0) == has_nonfinite(t, text));
            if (t->flags & TGT_JSON_NONFINITE) {
                FUZZ_CHECK(!(t->flags & TGT_JSON_INTEGRAL));
                FUZZ_CHECK(is_word(t, text, "NaN") || is_word(t, text, "Infinity") ||
                           is_word(t, text, "-Infinity"));
                break;
            }
            int integral = 1;
            for (size_t k = 0; k < t->len; k++) {
                char c = text[t->start + k];
                FUZZ_CHECK((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' ||
                           c == 'E');
                if (c == '.' || c == 'e' || c == 'E')
                    integral = 0;
            }
            FUZZ_CHECK(integral == ((t->flags & TGT_JSON_INTEGRAL) != 0));
            break;
        }
        case TGT_JSON_STRING:
            FUZZ_CHECK(t->end == i + 1);
            check_string(t, text, len, scratch);
            break;
        case TGT_JSON_ARRAY:
        case TGT_JSON_OBJECT: {
            int obj = t->type == TGT_JSON_OBJECT;
            FUZZ_CHECK(((t->flags & TGT_JSON_NONFINITE) != 0) == has_nonfinite(t, text));
            FUZZ_CHECK(t->len >= 2 && text[t->start] == (obj ? '{' : '['));
            FUZZ_CHECK(text[t->start + t->len - 1] == (obj ? '}' : ']'));
            if (!obj && skipped) {
                FUZZ_CHECK(t->end == i + 1);
                break;
            }
            size_t count = 0, j = i + 1;
            while (j < t->end) {
                if (obj) {
                    FUZZ_CHECK(toks[j].type == TGT_JSON_STRING && j + 1 < t->end);
                    j++;
                }
                FUZZ_CHECK(toks[j].end > j && toks[j].end <= t->end);
                /* children lie inside the container's text */
                FUZZ_CHECK(toks[j].start > t->start && toks[j].start < t->start + t->len);
                j = toks[j].end;
                count++;
            }
            FUZZ_CHECK(j == t->end && count == t->size);
            break;
        }
        default:
            FUZZ_CHECK(!"unknown token type");
        }
    }
}

/* tgt_json_object_get on the first members of the root object: it returns
 * the value of the last member with an equal (decoded) key. */
static void check_lookup(const tgt_json_parser *p, const char *text, tgt_sbuf *scratch)
{
    const tgt_json_token *toks = p->tokens;
    if (toks[0].type != TGT_JSON_OBJECT)
        return;
    size_t k = 1;
    for (uint32_t m = 0; m < toks[0].size && m < LOOKUP_CHECKS; m++) {
        tgt_sbuf_reset(scratch);
        tgt_json_decode_string(text + toks[k].start, toks[k].len, scratch, NULL);
        FUZZ_CHECK(tgt_sbuf_ok(scratch));
        long v = tgt_json_object_get(p, text, 0, tgt_sbuf_str(scratch), scratch->len);
        FUZZ_CHECK(v >= (long)(k + 1) && (size_t)v < toks[0].end);
        FUZZ_CHECK(tgt_json_string_equals(text + toks[v - 1].start, toks[v - 1].len,
                                          toks[v - 1].flags, tgt_sbuf_str(scratch), scratch->len));
        k = toks[k + 1].end;
    }
}

static void check_message(const tgt_json_parser *p, const char *line, const tgt_message *m)
{
    const tgt_json_token *toks = p->tokens;
    FUZZ_CHECK(toks[0].type == TGT_JSON_OBJECT);
    if (m->type != TGT_MSG_STATE) {
        FUZZ_CHECK(m->stream != NULL && m->stream_len > 0);
        FUZZ_CHECK(fuzz_utf8_valid((const unsigned char *)m->stream, m->stream_len));
        long s = tgt_json_object_get(p, line, 0, "stream", 6);
        FUZZ_CHECK(s > 0 && toks[s].type == TGT_JSON_STRING);
        FUZZ_CHECK(tgt_json_string_equals(line + toks[s].start, toks[s].len, toks[s].flags,
                                          m->stream, m->stream_len));
    }
    switch (m->type) {
    case TGT_MSG_RECORD:
        FUZZ_CHECK(m->record > 0 && toks[m->record].type == TGT_JSON_OBJECT);
        break;
    case TGT_MSG_SCHEMA:
        FUZZ_CHECK(m->schema > 0 && toks[m->schema].type == TGT_JSON_OBJECT);
        break;
    case TGT_MSG_STATE:
        FUZZ_CHECK(m->value > 0 && (size_t)m->value < p->n_tokens);
        break;
    case TGT_MSG_ACTIVATE_VERSION:
        FUZZ_CHECK(m->version > 0 && toks[m->version].type == TGT_JSON_NUMBER);
        break;
    case TGT_MSG_BATCH:
        break;
    }
}

/* What loader.c does with a SCHEMA line: jansson, table name, model. */
static void build_schema(const char *line, size_t len, const tgt_message *m)
{
    json_t *root = json_loadb(line, len, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
    if (root == NULL)
        return;
    const char *source, *name;
    size_t source_len, name_len;
    tgt_naming_split_stream(m->stream, m->stream_len, &source, &source_len, &name, &name_len);
    char table[TGT_IDENT_MAX + 1];
    FUZZ_CHECK(tgt_naming_identifier(&name, &name_len, 1, tgt_pg_caps.ident_max, table) == 0);
    FUZZ_CHECK(table[0] != '\0' && strlen(table) <= tgt_pg_caps.ident_max);
    tgt_schema_options opt;
    memset(&opt, 0, sizeof(opt));
    opt.stream = "fuzz";
    opt.target_schema = "public";
    opt.table_name = table;
    opt.timestamp_column = "__loaded_at";
    opt.flattening_max_depth = 10;
    opt.caps = &tgt_pg_caps;
    tgt_schema_model model;
    tgt_error err;
    tgt_error_init(&err);
    if (tgt_schema_build(json_object_get(root, "schema"), json_object_get(root, "key_properties"),
                         &opt, &model, &err) == 0) {
        FUZZ_CHECK(model.table.n_columns >= 1 && model.root != NULL);
        tgt_schema_model_deinit(&model);
    } else {
        FUZZ_CHECK(err.code == TGT_ERR_DATA && err.message[0] != '\0');
    }
    json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *line = (const char *)data;
    tgt_json_parser full, quick;
    tgt_json_parser_init(&full);
    tgt_json_parser_init(&quick);
    quick.skip_array_items = 1; /* as target.c runs it */
    tgt_sbuf scratch, stream_name;
    tgt_sbuf_init(&scratch);
    tgt_sbuf_init(&stream_name);
    tgt_error err_full, err_msg;
    tgt_error_init(&err_full);
    tgt_error_init(&err_msg);

    int rc_full = tgt_json_parse(&full, line, size, &err_full);
    tgt_message m;
    int rc_msg = tgt_message_parse(&quick, line, size, &m, &stream_name, &err_msg);

    /* jansson (2.14) skips a raw NUL byte right after a number or a literal
     * ("[1\0]" loads), so it only judges lines without one */
    if (memchr(line, '\0', size) == NULL) {
        json_t *j = json_loadb(line, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (j != NULL)
            FUZZ_CHECK(rc_full == 0);
        json_decref(j);
    }

    if (rc_full == 0) {
        check_tokens(&full, line, size, 0, &scratch);
        check_lookup(&full, line, &scratch);
        /* the envelope parser's tokenizer run must have succeeded too */
        FUZZ_CHECK(quick.n_tokens > 0 && quick.n_tokens <= full.n_tokens);
        check_tokens(&quick, line, size, 1, &scratch);
    } else {
        FUZZ_CHECK(err_full.code == TGT_ERR_INPUT && full.n_tokens == 0);
        FUZZ_CHECK(rc_msg != 0 && strcmp(err_full.message, err_msg.message) == 0);
    }
    if (rc_msg == 0) {
        check_message(&quick, line, &m);
        if (m.type == TGT_MSG_SCHEMA)
            build_schema(line, size, &m);
    } else {
        FUZZ_CHECK(err_msg.code == TGT_ERR_INPUT && err_msg.message[0] != '\0');
    }

    tgt_sbuf_deinit(&scratch);
    tgt_sbuf_deinit(&stream_name);
    tgt_json_parser_deinit(&full);
    tgt_json_parser_deinit(&quick);
    return 0;
}

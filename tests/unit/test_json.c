/*
 * test_json.c - unit tests for the JSON tokenizer (src/json.c): token types,
 * flags, spans, container sizes and ends, key lookup, string decoding and
 * comparison, skip_array_items, every class of malformed input with its
 * column, deep nesting, a 64 MiB string, parser reuse and real Singer lines.
 *
 * Every input is copied into a heap block of exactly its length before it is
 * parsed, so an over-read past the end shows up under ASan and valgrind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"

/* One parser, one error and the exact-length copy of the current input. */
typedef struct fixture {
    tgt_json_parser p;
    tgt_error err;
    char *text;
    size_t len;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    tgt_json_parser_init(&f->p);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tgt_json_parser_deinit(&f->p);
    free(f->text);
    free(f);
    return 0;
}

static int parse_n(fixture *f, const char *text, size_t len)
{
    free(f->text);
    f->text = malloc(len ? len : 1);
    assert_non_null(f->text);
    if (len > 0)
        memcpy(f->text, text, len);
    f->len = len;
    tgt_error_init(&f->err);
    return tgt_json_parse(&f->p, f->text, len, &f->err);
}

static int parse(fixture *f, const char *text)
{
    return parse_n(f, text, strlen(text));
}

static void parse_ok(fixture *f, const char *text)
{
    if (parse(f, text) != 0)
        fail_msg("rejected %s: %s", text, f->err.message);
}

static const tgt_json_token *tok(const fixture *f, size_t i)
{
    assert_true(i < f->p.n_tokens);
    return &f->p.tokens[i];
}

static void check_token(const fixture *f, size_t i, tgt_json_type type, unsigned flags,
                        uint32_t size, size_t start, size_t len, size_t end)
{
    const tgt_json_token *t = tok(f, i);
    assert_int_equal(t->type, type);
    assert_int_equal(t->flags, flags);
    assert_int_equal(t->size, size);
    assert_int_equal(t->start, start);
    assert_int_equal(t->len, len);
    assert_int_equal(t->end, end);
}

/* The token's text (string tokens: the raw bytes between the quotes). */
static void check_text(const fixture *f, size_t i, const char *want)
{
    const tgt_json_token *t = tok(f, i);
    if (t->len != strlen(want) || memcmp(f->text + t->start, want, t->len) != 0)
        fail_msg("token %zu is \"%.*s\", want \"%s\"", i, (int)t->len, f->text + t->start, want);
}

static long get(const fixture *f, size_t obj, const char *key)
{
    return tgt_json_object_get(&f->p, f->text, obj, key, strlen(key));
}

/* ---- scalars, flags and spans ---------------------------------------- */

static void test_scalar_roots(void **state)
{
    fixture *f = *state;
    parse_ok(f, "null");
    assert_int_equal(f->p.n_tokens, 1);
    check_token(f, 0, TGT_JSON_NULL, 0, 0, 0, 4, 1);
    parse_ok(f, "true");
    check_token(f, 0, TGT_JSON_TRUE, 0, 0, 0, 4, 1);
    parse_ok(f, " false ");
    check_token(f, 0, TGT_JSON_FALSE, 0, 0, 1, 5, 1);
    parse_ok(f, "\t-12.5e+3\r\n");
    check_token(f, 0, TGT_JSON_NUMBER, 0, 0, 1, 8, 1);
    parse_ok(f, "\"abc\"");
    check_token(f, 0, TGT_JSON_STRING, 0, 0, 1, 3, 1);
    parse_ok(f, "\"\"");
    check_token(f, 0, TGT_JSON_STRING, 0, 0, 1, 0, 1);
}

static void test_number_flags(void **state)
{
    fixture *f = *state;
    static const char *integral[] = {"0",   "-0",          "7",
                                     "123", "-9876543210", "12345678901234567890123"};
    static const char *fractional[] = {"0.0",  "1.5",   "-0.25", "1e5",     "1E5",
                                       "1e+5", "1e-05", "0e0",   "-1.5E-3", "3.14159e100"};
    for (size_t i = 0; i < sizeof(integral) / sizeof(*integral); i++) {
        parse_ok(f, integral[i]);
        check_token(f, 0, TGT_JSON_NUMBER, TGT_JSON_INTEGRAL, 0, 0, strlen(integral[i]), 1);
    }
    for (size_t i = 0; i < sizeof(fractional) / sizeof(*fractional); i++) {
        parse_ok(f, fractional[i]);
        check_token(f, 0, TGT_JSON_NUMBER, 0, 0, 0, strlen(fractional[i]), 1);
    }
}

/* Python's json.dumps writes NaN, Infinity and -Infinity for non-finite
 * floats: numbers flagged NONFINITE, and every container holding one,
 * however deep (also inside arrays whose items get no tokens), is flagged
 * too, so a jsonb column can refuse the value without walking it. */
static void test_nonfinite_numbers(void **state)
{
    fixture *f = *state;
    static const char *words[] = {"NaN", "Infinity", "-Infinity"};
    for (size_t i = 0; i < sizeof(words) / sizeof(*words); i++) {
        parse_ok(f, words[i]);
        check_token(f, 0, TGT_JSON_NUMBER, TGT_JSON_NONFINITE, 0, 0, strlen(words[i]), 1);
    }
    parse_ok(f, "[1,NaN]");
    check_token(f, 0, TGT_JSON_ARRAY, TGT_JSON_NONFINITE, 2, 0, 7, 3);
    check_token(f, 1, TGT_JSON_NUMBER, TGT_JSON_INTEGRAL, 0, 1, 1, 2);
    check_token(f, 2, TGT_JSON_NUMBER, TGT_JSON_NONFINITE, 0, 3, 3, 3);

    const char *doc = "{\"a\":[[1,{\"x\":Infinity}]],\"b\":{\"c\":-Infinity},\"d\":[1e2],\"e\":{}}";
    for (int skip = 0; skip <= 1; skip++) {
        f->p.skip_array_items = skip;
        parse_ok(f, doc);
        assert_true(tok(f, 0)->flags & TGT_JSON_NONFINITE);
        long a = get(f, 0, "a"), b = get(f, 0, "b"), d = get(f, 0, "d"), e = get(f, 0, "e");
        assert_true(tok(f, (size_t)a)->flags & TGT_JSON_NONFINITE);
        assert_true(tok(f, (size_t)b)->flags & TGT_JSON_NONFINITE);
        assert_false(tok(f, (size_t)d)->flags & TGT_JSON_NONFINITE);
        assert_false(tok(f, (size_t)e)->flags & TGT_JSON_NONFINITE);
        check_text(f, (size_t)get(f, (size_t)b, "c"), "-Infinity");
    }
    f->p.skip_array_items = 0;
    parse_ok(f, "{\"a\":[1,2],\"b\":\"NaN\"}");
    assert_false(tok(f, 0)->flags & TGT_JSON_NONFINITE);
}

static void test_string_flags(void **state)
{
    fixture *f = *state;
    parse_ok(f, "\"plain ASCII ~\x7f\"");
    assert_int_equal(tok(f, 0)->flags, 0);
    parse_ok(f, "\"a\\nb\"");
    assert_int_equal(tok(f, 0)->flags, TGT_JSON_ESCAPED);
    check_text(f, 0, "a\\nb");
    parse_ok(f, "\"\\u00e9\"");
    assert_int_equal(tok(f, 0)->flags, TGT_JSON_ESCAPED);
    parse_ok(f, "\"x\\u0000y\"");
    assert_int_equal(tok(f, 0)->flags, TGT_JSON_ESCAPED | TGT_JSON_HAS_NUL);
    parse_ok(f, "\"caf\xc3\xa9\"");
    assert_int_equal(tok(f, 0)->flags, TGT_JSON_NON_ASCII);
    parse_ok(f, "\"\xe2\x82\xac \\t \\u0000 \xf0\x9f\x98\x80\"");
    assert_int_equal(tok(f, 0)->flags, TGT_JSON_ESCAPED | TGT_JSON_HAS_NUL | TGT_JSON_NON_ASCII);
    /* Every simple escape, upper-case hex, a surrogate pair. */
    parse_ok(f, "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00E9 \\uD83D\\uDE00\"");
    assert_int_equal(tok(f, 0)->flags, TGT_JSON_ESCAPED);
    /* Flags belong to one token only. */
    parse_ok(f, "[\"\\u0000\", \"\xc3\xa9\", \"a\", 1, 1.5]");
    assert_int_equal(tok(f, 1)->flags, TGT_JSON_ESCAPED | TGT_JSON_HAS_NUL);
    assert_int_equal(tok(f, 2)->flags, TGT_JSON_NON_ASCII);
    assert_int_equal(tok(f, 3)->flags, 0);
    assert_int_equal(tok(f, 4)->flags, TGT_JSON_INTEGRAL);
    assert_int_equal(tok(f, 5)->flags, 0);
}

/* A string body whose two special sequences (escape or UTF-8) sit at every
 * offset around the 8-byte word scan: the tokenizer resumes the word scan
 * after each one, so the token's length and flags and the column of a
 * control byte after them must not depend on where the words fall. */
static void test_string_stops_at_every_offset(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *bytes;
        unsigned flag;
    } specials[] = {{"\\n", TGT_JSON_ESCAPED},
                    {"\xc3\xa9", TGT_JSON_NON_ASCII},
                    {"\\u00e9", TGT_JSON_ESCAPED},
                    {"\xf0\x9f\x98\x80", TGT_JSON_NON_ASCII}};
    char text[128];
    for (size_t a = 0; a < 4; a++)
        for (size_t b = 0; b < 4; b++)
            for (size_t k = 0; k < 18; k++)
                for (size_t m = 0; m < 18; m += 3) {
                    size_t n = 0;
                    text[n++] = '"';
                    memset(text + n, 'x', k);
                    n += k;
                    memcpy(text + n, specials[a].bytes, strlen(specials[a].bytes));
                    n += strlen(specials[a].bytes);
                    memset(text + n, 'y', m);
                    n += m;
                    memcpy(text + n, specials[b].bytes, strlen(specials[b].bytes));
                    n += strlen(specials[b].bytes);
                    text[n++] = 'z';
                    text[n++] = '"';
                    if (parse_n(f, text, n) != 0)
                        fail_msg("rejected %.*s: %s", (int)n, text, f->err.message);
                    check_token(f, 0, TGT_JSON_STRING, specials[a].flag | specials[b].flag, 0, 1,
                                n - 2, 1);
                    /* a control byte in place of the 'z' is reported where it is */
                    text[n - 2] = '\x01';
                    assert_int_equal(parse_n(f, text, n), -1);
                    char want[64];
                    snprintf(want, sizeof(want), "invalid JSON at column %zu: unescaped", n - 1);
                    if (strncmp(f->err.message, want, strlen(want)) != 0)
                        fail_msg("%.*s: got \"%s\", want \"%s\"", (int)n, text, f->err.message,
                                 want);
                    /* and a missing closing quote at the opening one */
                    text[n - 2] = 'z';
                    assert_int_equal(parse_n(f, text, n - 1), -1);
                    assert_non_null(strstr(f->err.message, "column 1: unterminated string"));
                }
}

static void test_utf8_boundaries(void **state)
{
    fixture *f = *state;
    static const char *valid[] = {
        "\"\xc2\x80\"",                 /* U+0080 */
        "\"\xdf\xbf\"",                 /* U+07FF */
        "\"\xe0\xa0\x80\"",             /* U+0800 */
        "\"\xed\x9f\xbf\"",             /* U+D7FF, just below the surrogates */
        "\"\xee\x80\x80\"",             /* U+E000, just above them */
        "\"\xef\xbf\xbf\"",             /* U+FFFF */
        "\"\xf0\x90\x80\x80\"",         /* U+10000 */
        "\"\xf4\x8f\xbf\xbf\"",         /* U+10FFFF */
        "\"\xe6\x97\xa5\xe6\x9c\xac\"", /* two CJK characters */
    };
    for (size_t i = 0; i < sizeof(valid) / sizeof(*valid); i++) {
        parse_ok(f, valid[i]);
        assert_int_equal(tok(f, 0)->flags, TGT_JSON_NON_ASCII);
        assert_int_equal(tok(f, 0)->len, strlen(valid[i]) - 2);
    }
}

static void test_spans_and_ends(void **state)
{
    fixture *f = *state;
    /*               0         1         2         3         4
     *               0123456789012345678901234567890123456789012 */
    const char *s = "{\"a\": [1, \"xy\", {\"b\": null}], \"c\": true}";
    parse_ok(f, s);
    assert_int_equal(f->p.n_tokens, 10);
    check_token(f, 0, TGT_JSON_OBJECT, 0, 2, 0, strlen(s), 10);
    check_token(f, 1, TGT_JSON_STRING, 0, 0, 2, 1, 2);
    check_token(f, 2, TGT_JSON_ARRAY, 0, 3, 6, 22, 8);
    check_token(f, 3, TGT_JSON_NUMBER, TGT_JSON_INTEGRAL, 0, 7, 1, 4);
    check_token(f, 4, TGT_JSON_STRING, 0, 0, 11, 2, 5);
    check_token(f, 5, TGT_JSON_OBJECT, 0, 1, 16, 11, 8);
    check_token(f, 6, TGT_JSON_STRING, 0, 0, 18, 1, 7);
    check_token(f, 7, TGT_JSON_NULL, 0, 0, 22, 4, 8);
    check_token(f, 8, TGT_JSON_STRING, 0, 0, 31, 1, 9);
    check_token(f, 9, TGT_JSON_TRUE, 0, 0, 35, 4, 10);
    check_text(f, 2, "[1, \"xy\", {\"b\": null}]");
    check_text(f, 5, "{\"b\": null}");
}

static void test_empty_containers_and_whitespace(void **state)
{
    fixture *f = *state;
    parse_ok(f, "[]");
    check_token(f, 0, TGT_JSON_ARRAY, 0, 0, 0, 2, 1);
    parse_ok(f, "{}");
    check_token(f, 0, TGT_JSON_OBJECT, 0, 0, 0, 2, 1);
    parse_ok(f, " \t\r\n[ \t\r\n] \n");
    check_token(f, 0, TGT_JSON_ARRAY, 0, 0, 4, 6, 1);
    parse_ok(f, "{ }");
    check_token(f, 0, TGT_JSON_OBJECT, 0, 0, 0, 3, 1);
    parse_ok(f, "[[], {}, [[]]]");
    assert_int_equal(f->p.n_tokens, 5);
    check_token(f, 0, TGT_JSON_ARRAY, 0, 3, 0, 14, 5);
    check_token(f, 1, TGT_JSON_ARRAY, 0, 0, 1, 2, 2);
    check_token(f, 2, TGT_JSON_OBJECT, 0, 0, 5, 2, 3);
    check_token(f, 3, TGT_JSON_ARRAY, 0, 1, 9, 4, 5);
    check_token(f, 4, TGT_JSON_ARRAY, 0, 0, 10, 2, 5);
    parse_ok(f, "{\"a\":{},\"b\":[]}");
    check_token(f, 0, TGT_JSON_OBJECT, 0, 2, 0, 15, 5);
    check_token(f, 2, TGT_JSON_OBJECT, 0, 0, 5, 2, 3);
    check_token(f, 4, TGT_JSON_ARRAY, 0, 0, 12, 2, 5);
    parse_ok(f, "\n\r\t [ 1 ,\t2\r,\n3 ] \n\r\t");
    check_token(f, 0, TGT_JSON_ARRAY, 0, 3, 4, 13, 4);
}

static void test_not_nul_terminated(void **state)
{
    fixture *f = *state;
    /* Only text[0..len) counts; what follows must not be looked at. */
    assert_int_equal(parse_n(f, "[1,2]xyz", 5), 0);
    assert_int_equal(tok(f, 0)->size, 2);
    assert_int_equal(parse_n(f, "123456", 3), 0);
    check_text(f, 0, "123");
    assert_int_equal(parse_n(f, "truex", 4), 0);
    assert_int_equal(parse_n(f, "\"ab\"", 3), -1);
    assert_int_equal(parse_n(f, "nul", 3), -1);
}

/* ---- object_get --------------------------------------------------------- */

static void test_object_get(void **state)
{
    fixture *f = *state;
    parse_ok(f, "{\"id\": 1, \"nested\": {\"id\": 2, \"deep\": [1, {\"id\": 3}]}, \"ab\": \"x\", "
                "\"a\": null, \"last\": [[], {}]}");
    long id = get(f, 0, "id");
    assert_int_equal(id, 2);
    check_text(f, (size_t)id, "1");
    long nested = get(f, 0, "nested");
    assert_int_equal(tok(f, (size_t)nested)->type, TGT_JSON_OBJECT);
    long inner = get(f, (size_t)nested, "id");
    check_text(f, (size_t)inner, "2");
    long deep = get(f, (size_t)nested, "deep");
    assert_int_equal(tok(f, (size_t)deep)->type, TGT_JSON_ARRAY);
    /* Keys inside skipped-over values are not members of the outer object. */
    assert_int_equal(get(f, (size_t)nested, "ab"), -1);
    check_text(f, (size_t)get(f, 0, "ab"), "x");
    assert_int_equal(tok(f, (size_t)get(f, 0, "a"))->type, TGT_JSON_NULL);
    assert_int_equal(tok(f, (size_t)get(f, 0, "last"))->type, TGT_JSON_ARRAY);
    assert_int_equal(get(f, 0, "missing"), -1);
    assert_int_equal(get(f, 0, ""), -1);
    assert_int_equal(get(f, 0, "i"), -1);
    assert_int_equal(get(f, 0, "idx"), -1);
    /* Not an object, or out of range. */
    assert_int_equal(get(f, 1, "id"), -1);
    assert_int_equal(get(f, (size_t)deep, "id"), -1);
    assert_int_equal(get(f, f->p.n_tokens, "id"), -1);
    assert_int_equal(get(f, 100000, "id"), -1);
    parse_ok(f, "{}");
    assert_int_equal(get(f, 0, "a"), -1);
    parse_ok(f, "[1]");
    assert_int_equal(get(f, 0, "a"), -1);
}

static void test_object_get_escaped_and_duplicate_keys(void **state)
{
    fixture *f = *state;
    parse_ok(f, "{\"\\u0061\": 1, \"b\\\"q\": 2, \"\\u00e9t\\u00e9\": 3, \"\\ud83d\\ude00\": 4, "
                "\"nul\\u0000\": 5, \"a/b\": 6, \"a\\/b\": 7, \"\": 8}");
    check_text(f, (size_t)get(f, 0, "a"), "1");
    check_text(f, (size_t)get(f, 0, "b\"q"), "2");
    check_text(f, (size_t)get(f, 0, "\xc3\xa9t\xc3\xa9"), "3");
    check_text(f, (size_t)get(f, 0, "\xf0\x9f\x98\x80"), "4");
    /* \u0000 decodes to U+FFFD, so that is what the key equals. */
    check_text(f, (size_t)get(f, 0, "nul\xef\xbf\xbd"), "5");
    assert_int_equal(tgt_json_object_get(&f->p, f->text, 0, "nul\0", 4), -1);
    /* "a/b" and "a\/b" are the same key: the later one wins. */
    check_text(f, (size_t)get(f, 0, "a/b"), "7");
    check_text(f, (size_t)get(f, 0, ""), "8");
    assert_int_equal(get(f, 0, "\\u0061"), -1);
    assert_int_equal(get(f, 0, "b\\\"q"), -1);

    parse_ok(f, "{\"k\": 1, \"x\": {\"k\": 9}, \"k\": [2], \"k\": 3, \"z\": 0}");
    long k = get(f, 0, "k");
    check_text(f, (size_t)k, "3");
    parse_ok(f, "{\"k\": 1, \"\\u006b\": 2}");
    check_text(f, (size_t)get(f, 0, "k"), "2");
    parse_ok(f, "{\"\\u006b\": 1, \"k\": {\"a\": []}}");
    assert_int_equal(tok(f, (size_t)get(f, 0, "k"))->type, TGT_JSON_OBJECT);
}

/* ---- skip_array_items --------------------------------------------------- */

static void test_skip_array_items(void **state)
{
    fixture *f = *state;
    f->p.skip_array_items = 1;
    const char *s = "{\"a\": [1, [2, 3], {\"k\": [4]}, \"s\"], \"b\": {\"c\": []}, \"d\": 5}";
    parse_ok(f, s);
    assert_int_equal(f->p.n_tokens, 9);
    check_token(f, 0, TGT_JSON_OBJECT, 0, 3, 0, strlen(s), 9);
    check_token(f, 2, TGT_JSON_ARRAY, 0, 4, 6, 28, 3);
    check_text(f, 2, "[1, [2, 3], {\"k\": [4]}, \"s\"]");
    check_text(f, 3, "b");
    check_token(f, 4, TGT_JSON_OBJECT, 0, 1, 41, 9, 7);
    check_token(f, 6, TGT_JSON_ARRAY, 0, 0, 47, 2, 7);
    check_text(f, 8, "5");
    assert_int_equal(get(f, 0, "a"), 2);
    assert_int_equal(get(f, 0, "d"), 8);

    parse_ok(f, "[[[1]], 2, {}]");
    assert_int_equal(f->p.n_tokens, 1);
    check_token(f, 0, TGT_JSON_ARRAY, 0, 3, 0, 14, 1);
    parse_ok(f, "[]");
    check_token(f, 0, TGT_JSON_ARRAY, 0, 0, 0, 2, 1);
    parse_ok(f, "{\"x\": [], \"y\": [ ]}");
    check_token(f, 2, TGT_JSON_ARRAY, 0, 0, 6, 2, 3);
    check_token(f, 4, TGT_JSON_ARRAY, 0, 0, 15, 3, 5);

    /* Items are still validated, at every depth. */
    static const char *bad[] = {"[1, 01]",       "[[1,]]", "{\"a\": [{\"k\" 1}]}",
                                "[\"\\ud800\"]", "[[[]]",  "[\"\xc0\x80\"]",
                                "{\"a\": [1}",   "[{]}",   "[1, [2, {\"a\": tru}]]",
                                "[{\"a\":1,}]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        if (parse(f, bad[i]) != -1)
            fail_msg("accepted %s", bad[i]);
        assert_int_equal(f->err.code, TGT_ERR_INPUT);
        assert_int_equal(f->p.n_tokens, 0);
    }

    /* Turning it off again gives every item a token. */
    f->p.skip_array_items = 0;
    parse_ok(f, "[[[1]], 2, {}]");
    assert_int_equal(f->p.n_tokens, 6);
}

/* ---- decoding and comparison ------------------------------------------- */

static void check_decode(const char *raw, const char *want, size_t want_len, size_t want_nuls)
{
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    tgt_sbuf_append_str(&sb, "<");
    size_t nuls = 0;
    tgt_json_decode_string(raw, strlen(raw), &sb, &nuls);
    assert_true(tgt_sbuf_ok(&sb));
    assert_int_equal(sb.len, want_len + 1);
    assert_memory_equal(sb.data + 1, want, want_len);
    assert_int_equal(sb.data[sb.len], '\0');
    assert_int_equal(nuls, want_nuls);
    /* A NULL counter is allowed. */
    tgt_sbuf_reset(&sb);
    tgt_json_decode_string(raw, strlen(raw), &sb, NULL);
    assert_int_equal(sb.len, want_len);
    tgt_sbuf_deinit(&sb);
    /* Comparison agrees with decoding. */
    unsigned flags = strchr(raw, '\\') ? TGT_JSON_ESCAPED : 0;
    assert_true(tgt_json_string_equals(raw, strlen(raw), flags, want, want_len));
}

static void test_decode_string(void **state)
{
    (void)state;
    check_decode("", "", 0, 0);
    check_decode("plain", "plain", 5, 0);
    check_decode("caf\xc3\xa9", "caf\xc3\xa9", 5, 0);
    check_decode("\\\"\\\\\\/\\b\\f\\n\\r\\t", "\"\\/\b\f\n\r\t", 8, 0);
    check_decode("a\\u0041b", "aAb", 3, 0);
    check_decode("\\u00e9\\u00E9", "\xc3\xa9\xc3\xa9", 4, 0);
    check_decode("\\u07ff\\u0800", "\xdf\xbf\xe0\xa0\x80", 5, 0);
    check_decode("\\u20ac", "\xe2\x82\xac", 3, 0);
    check_decode("\\uffff", "\xef\xbf\xbf", 3, 0);
    check_decode("\\ud83c\\udde6", "\xf0\x9f\x87\xa6", 4, 0);
    check_decode("\\uD83C\\uDDE6\\ud83c\\uddea", "\xf0\x9f\x87\xa6\xf0\x9f\x87\xaa", 8, 0);
    check_decode("\\udbff\\udfff", "\xf4\x8f\xbf\xbf", 4, 0);
    check_decode("\\u0000", "\xef\xbf\xbd", 3, 1);
    check_decode("a\\u0000b\\u0000\\u0000",
                 "a\xef\xbf\xbd"
                 "b\xef\xbf\xbd\xef\xbf\xbd",
                 11, 3);
    check_decode("x\\ny \xe2\x82\xac \\ud83d\\ude00!", "x\ny \xe2\x82\xac \xf0\x9f\x98\x80!", 13,
                 0);
    check_decode("end\\\\", "end\\", 4, 0);
    check_decode("\\\\start", "\\start", 6, 0);
}

static void test_decode_from_parsed_tokens(void **state)
{
    fixture *f = *state;
    parse_ok(f, "[\"\\ud83c\\udde6\", \"nul:\\u0000\", \"tab\\there\", \"none\"]");
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    size_t nuls = 0;
    for (size_t i = 1; i < f->p.n_tokens; i++) {
        const tgt_json_token *t = tok(f, i);
        tgt_json_decode_string(f->text + t->start, t->len, &sb, &nuls);
        tgt_sbuf_append_char(&sb, '|');
    }
    assert_true(tgt_sbuf_ok(&sb));
    assert_string_equal(tgt_sbuf_str(&sb), "\xf0\x9f\x87\xa6|nul:\xef\xbf\xbd|tab\there|none|");
    assert_int_equal(nuls, 1);
    tgt_sbuf_deinit(&sb);
}

static void test_string_equals(void **state)
{
    (void)state;
    assert_true(tgt_json_string_equals("abc", 3, 0, "abc", 3));
    assert_false(tgt_json_string_equals("abc", 3, 0, "abd", 3));
    assert_false(tgt_json_string_equals("abc", 3, 0, "ab", 2));
    assert_false(tgt_json_string_equals("ab", 2, 0, "abc", 3));
    assert_true(tgt_json_string_equals("", 0, 0, "", 0));
    /* Without the ESCAPED flag the raw bytes are compared. */
    assert_true(tgt_json_string_equals("a\\nb", 4, 0, "a\\nb", 4));
    assert_false(tgt_json_string_equals("a\\nb", 4, 0, "a\nb", 3));
    assert_true(tgt_json_string_equals("a\\nb", 4, TGT_JSON_ESCAPED, "a\nb", 3));
    assert_false(tgt_json_string_equals("a\\nb", 4, TGT_JSON_ESCAPED, "a\nbc", 4));
    assert_false(tgt_json_string_equals("a\\nb", 4, TGT_JSON_ESCAPED, "a\n", 2));
    assert_false(tgt_json_string_equals("a\\nb", 4, TGT_JSON_ESCAPED, "a\\nb", 4));
    assert_false(tgt_json_string_equals("\\u00e9", 6, TGT_JSON_ESCAPED, "\xc3", 1));
    assert_false(tgt_json_string_equals("\\u00e9", 6, TGT_JSON_ESCAPED, "\xc3\xa8", 2));
    assert_true(tgt_json_string_equals("\\u00e9x", 7, TGT_JSON_ESCAPED, "\xc3\xa9x", 3));
    assert_true(
        tgt_json_string_equals("\\ud83c\\udde6", 12, TGT_JSON_ESCAPED, "\xf0\x9f\x87\xa6", 4));
    assert_true(tgt_json_string_equals("\\u0000", 6, TGT_JSON_ESCAPED | TGT_JSON_HAS_NUL,
                                       "\xef\xbf\xbd", 3));
    assert_false(
        tgt_json_string_equals("\\u0000", 6, TGT_JSON_ESCAPED | TGT_JSON_HAS_NUL, "\0", 1));
    assert_true(tgt_json_string_equals("\\\\\\\"", 4, TGT_JSON_ESCAPED, "\\\"", 2));
}

/* ---- rejections --------------------------------------------------------- */

typedef struct bad_case {
    const char *text;
    size_t len;
    size_t column;
    const char *what;
} bad_case;

/* sizeof keeps embedded NUL bytes in the input. */
#define BAD(text, column, what)                                                                    \
    {                                                                                              \
        text, sizeof(text) - 1, column, what                                                       \
    }

static void check_rejects(fixture *f, const bad_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const bad_case *c = &cases[i];
        if (parse_n(f, c->text, c->len) != -1)
            fail_msg("case %zu accepted: %.*s", i, (int)c->len, c->text);
        assert_int_equal(f->err.code, TGT_ERR_INPUT);
        assert_int_equal(f->p.n_tokens, 0);
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "invalid JSON at column %zu: ", c->column);
        if (strncmp(f->err.message, prefix, strlen(prefix)) != 0 ||
            strstr(f->err.message, c->what) == NULL)
            fail_msg("case %zu (%.*s): got \"%s\", want \"%s...%s\"", i, (int)c->len, c->text,
                     f->err.message, prefix, c->what);
    }
}

#define CHECK_REJECTS(f, cases) check_rejects(f, cases, sizeof(cases) / sizeof(*(cases)))

static void test_reject_empty_and_trailing(void **state)
{
    static const bad_case cases[] = {
        BAD("", 1, "empty input"),
        BAD("   ", 4, "empty input"),
        BAD("\n\t\r ", 5, "empty input"),
        BAD("1 2", 3, "trailing characters after the JSON value"),
        BAD("{} x", 4, "trailing characters"),
        BAD("[] []", 4, "trailing characters"),
        BAD("\"a\"\"b\"", 4, "trailing characters"),
        BAD("truex", 5, "trailing characters"),
        BAD("nulll", 5, "trailing characters"),
        BAD("123abc", 4, "trailing characters"),
        BAD("1.5.3", 4, "trailing characters"),
        BAD("2e3.4", 4, "trailing characters"),
        BAD("0x10", 2, "trailing characters"),
        BAD("[1]]", 4, "trailing characters"),
        BAD("1\0", 2, "trailing characters"),
        BAD("{}\n\n,", 5, "trailing characters"),
    };
    CHECK_REJECTS((fixture *)*state, cases);
}

static void test_reject_bytes_outside_strings(void **state)
{
    static const bad_case cases[] = {
        BAD("\f1", 1, "unexpected byte 0x0C"),
        BAD("[1,\v2]", 4, "unexpected byte 0x0B"),
        BAD("\xc2\xa0"
            "1",
            1, "unexpected byte 0xC2"),
        BAD("\xef\xbb\xbf{}", 1, "unexpected byte 0xEF"),
        BAD("[1,\xc3\xa9]", 4, "unexpected byte 0xC3"),
        BAD("\0", 1, "unexpected byte 0x00"),
        BAD("[\x7f]", 2, "unexpected byte 0x7F"),
        BAD("{'a': 1}", 2, "expected a string as object key"),
        BAD("['a']", 2, "unexpected character '''"),
        BAD("]", 1, "unexpected character ']'"),
        BAD("}", 1, "unexpected character '}'"),
        BAD(":", 1, "unexpected character ':'"),
        BAD(",", 1, "unexpected character ','"),
        BAD("/* c */ 1", 1, "unexpected character '/'"),
    };
    CHECK_REJECTS((fixture *)*state, cases);
}

static void test_reject_literals(void **state)
{
    static const bad_case cases[] = {
        BAD("tru", 1, "invalid literal (expected 'true')"),
        BAD("True", 1, "unexpected character 'T'"),
        BAD("nul", 1, "expected 'null'"),
        BAD("fals", 1, "expected 'false'"),
        BAD("falsE", 1, "expected 'false'"),
        BAD("[nulL]", 2, "expected 'null'"),
        /* Python's NaN and Infinity are read in exactly that spelling */
        BAD("nan", 1, "expected 'null'"),
        BAD("NAN", 1, "invalid literal (expected 'NaN')"),
        BAD("Na", 1, "invalid literal (expected 'NaN')"),
        BAD("Inf", 1, "invalid literal (expected 'Infinity')"),
        BAD("infinity", 1, "unexpected character 'i'"),
        BAD("-Inf", 1, "invalid literal (expected '-Infinity')"),
        BAD("+Infinity", 1, "unexpected character '+'"),
        BAD("[1, NaNa]", 8, "expected ',' or ']' after array element"),
        BAD("{\"a\": -NaN}", 8, "expected a digit after '-'"),
        BAD("{NaN: 1}", 2, "expected a string as object key"),
        BAD("[- Infinity]", 3, "expected a digit after '-'"),
        BAD("undefined", 1, "unexpected character 'u'"),
        BAD("t", 1, "expected 'true'"),
    };
    CHECK_REJECTS((fixture *)*state, cases);
}

static void test_reject_numbers(void **state)
{
    static const bad_case cases[] = {
        BAD("01", 1, "leading zeros"),
        BAD("-01", 2, "leading zeros"),
        BAD("00", 1, "leading zeros"),
        BAD("[1, 012]", 5, "leading zeros"),
        BAD("-00.5", 2, "leading zeros"),
        BAD("+1", 1, "unexpected character '+'"),
        BAD(".5", 1, "unexpected character '.'"),
        BAD("-.5", 2, "expected a digit after '-'"),
        BAD("1.", 3, "expected a digit after the decimal point"),
        BAD("1.e5", 3, "expected a digit after the decimal point"),
        BAD("[1.]", 4, "expected a digit after the decimal point"),
        BAD("1e", 3, "expected a digit in the exponent"),
        BAD("1e+", 4, "expected a digit in the exponent"),
        BAD("1E-x", 4, "expected a digit in the exponent"),
        BAD("1e+-2", 4, "expected a digit in the exponent"),
        BAD("-", 2, "expected a digit after '-'"),
        BAD("--1", 2, "expected a digit after '-'"),
        BAD("- 1", 2, "expected a digit after '-'"),
    };
    CHECK_REJECTS((fixture *)*state, cases);
}

static void test_reject_strings_and_escapes(void **state)
{
    static const bad_case cases[] = {
        BAD("\"abc", 1, "unterminated string"),
        BAD("[\"abc", 2, "unterminated string"),
        BAD("\"abc\\", 1, "unterminated string"),
        BAD("\"abc\\\"", 1, "unterminated string"),
        BAD("\"", 1, "unterminated string"),
        BAD("{\"a\": \"bcdefghijklmnopqrstuvwxyz", 7, "unterminated string"),
        BAD("\"a\tb\"", 3, "unescaped control character 0x09 in string"),
        BAD("\"a\nb\"", 3, "unescaped control character 0x0A"),
        BAD("\"\0\"", 2, "unescaped control character 0x00"),
        BAD("\"\x1f\"", 2, "unescaped control character 0x1F"),
        BAD("\"0123456789abcdefghij\rxyz\"", 22, "unescaped control character 0x0D"),
        BAD("\"a\\x\"", 3, "invalid escape '\\x'"),
        BAD("\"\\'\"", 2, "invalid escape '\\''"),
        BAD("\"\\U0041\"", 2, "invalid escape '\\U'"),
        BAD("\"\\a\"", 2, "invalid escape '\\a'"),
        BAD("\"\\\x01\"", 2, "invalid escape (byte 0x01 after '\\')"),
        BAD("\"\\\xc3\xa9\"", 2, "invalid escape (byte 0xC3"),
        BAD("\"\\u12\"", 2, "invalid \\u escape"),
        BAD("\"\\u12G4\"", 2, "invalid \\u escape"),
        BAD("\"\\u12", 2, "invalid \\u escape"),
        BAD("\"\\u\"", 2, "invalid \\u escape"),
        BAD("\"\\x{41}\"", 2, "invalid escape '\\x'"),
    };
    CHECK_REJECTS((fixture *)*state, cases);
}

static void test_reject_surrogate_escapes(void **state)
{
    static const bad_case cases[] = {
        BAD("\"\\udc00\"", 2, "lone UTF-16 surrogate escape \\udc00"),
        BAD("\"\\uDC00\"", 2, "lone UTF-16 surrogate escape \\uDC00"),
        BAD("\"\\udfff\"", 2, "lone UTF-16 surrogate escape \\udfff"),
        BAD("\"\\ud800\"", 2, "lone UTF-16 surrogate escape \\ud800"),
        BAD("\"\\ud83c\"", 2, "lone UTF-16 surrogate escape \\ud83c"),
        BAD("\"\\ud83cx\"", 2, "lone UTF-16 surrogate escape \\ud83c"),
        BAD("\"\\ud83c\\u0041\"", 2, "lone UTF-16 surrogate escape \\ud83c"),
        BAD("\"\\udde6\\ud83c\"", 2, "lone UTF-16 surrogate escape \\udde6"),
        BAD("\"\\ud83c\\ud83c\"", 2, "lone UTF-16 surrogate escape \\ud83c"),
        BAD("\"\\ud83c\\n\"", 2, "lone UTF-16 surrogate escape \\ud83c"),
        BAD("\"ab\\ud83c", 4, "lone UTF-16 surrogate escape \\ud83c"),
        BAD("\"ab\\ud83c\\", 4, "lone UTF-16 surrogate escape \\ud83c"),
        BAD("\"\\ud83c\\u12\"", 8, "invalid \\u escape"),
        BAD("\"\\ud83c\\udde6\\udde6\"", 14, "lone UTF-16 surrogate escape \\udde6"),
        BAD("[\"ok\", \"\\uDBFF\\uE000\"]", 9, "lone UTF-16 surrogate escape \\uDBFF"),
    };
    CHECK_REJECTS((fixture *)*state, cases);
}

static void test_reject_invalid_utf8(void **state)
{
    static const bad_case cases[] = {
        BAD("\"\x80\"", 2, "invalid UTF-8 in string"),
        BAD("\"\xbf\"", 2, "invalid UTF-8 in string"),
        BAD("\"\xc0\x80\"", 2, "invalid UTF-8"),     /* overlong NUL */
        BAD("\"\xc1\xbf\"", 2, "invalid UTF-8"),     /* overlong U+007F */
        BAD("\"\xe0\x9f\xbf\"", 2, "invalid UTF-8"), /* overlong U+07FF */
        BAD("\"\xe0\x80\x80\"", 2, "invalid UTF-8"),
        BAD("\"\xed\xa0\x80\"", 2, "invalid UTF-8"),     /* U+D800 */
        BAD("\"\xed\xbf\xbf\"", 2, "invalid UTF-8"),     /* U+DFFF */
        BAD("\"\xf0\x8f\xbf\xbf\"", 2, "invalid UTF-8"), /* overlong U+FFFF */
        BAD("\"\xf4\x90\x80\x80\"", 2, "invalid UTF-8"), /* U+110000 */
        BAD("\"\xf5\x80\x80\x80\"", 2, "invalid UTF-8"),
        BAD("\"\xf8\x88\x80\x80\x80\"", 2, "invalid UTF-8"),
        BAD("\"\xfe\"", 2, "invalid UTF-8"),
        BAD("\"\xff\"", 2, "invalid UTF-8"),
        BAD("\"a\xe2\x82\"", 3, "invalid UTF-8"), /* truncated before the quote */
        BAD("\"a\xe2\x82", 3, "invalid UTF-8"),   /* truncated at the end */
        BAD("\"\xc3\"", 2, "invalid UTF-8"),
        BAD("\"\xc3", 2, "invalid UTF-8"),
        BAD("\"\xf0\x9f\x87\"", 2, "invalid UTF-8"),
        BAD("\"\xc3\xa9\xa9\"", 4, "invalid UTF-8"),
        BAD("\"\xe2\x28\xa1\"", 2, "invalid UTF-8"),
        BAD("\"\xf0\x9f\x98\x80\xf0\x9f\x98\x28\"", 6, "invalid UTF-8"),
        BAD("\"abcdefghijklmnop\x80qrstuvwxyz\"", 18, "invalid UTF-8"),
        BAD("{\"k\xff\": 1}", 4, "invalid UTF-8"),
    };
    CHECK_REJECTS((fixture *)*state, cases);
}

static void test_reject_structure(void **state)
{
    static const bad_case cases[] = {
        BAD("[", 2, "unexpected end of input, expected a value"),
        BAD("[1", 3, "expected ',' or ']' after array element"),
        BAD("[1,", 4, "unexpected end of input"),
        BAD("[1,]", 4, "unexpected character ']'"),
        BAD("[,1]", 2, "unexpected character ','"),
        BAD("[1 2]", 4, "expected ',' or ']' after array element"),
        BAD("[1}", 3, "expected ',' or ']'"),
        BAD("[1,2,,3]", 6, "unexpected character ','"),
        BAD("{", 2, "expected a string as object key"),
        BAD("{\"a\"", 5, "expected ':' after object key"),
        BAD("{\"a\" 1}", 6, "expected ':' after object key"),
        BAD("{\"a\"=1}", 5, "expected ':' after object key"),
        BAD("{\"a\":}", 6, "unexpected character '}'"),
        BAD("{\"a\":", 6, "unexpected end of input"),
        BAD("{\"a\":1,}", 8, "expected a string as object key"),
        BAD("{\"a\":1", 7, "expected ',' or '}' after object member"),
        BAD("{\"a\":1]", 7, "expected ',' or '}' after object member"),
        BAD("{\"a\":1 \"b\":2}", 8, "expected ',' or '}'"),
        BAD("{1:2}", 2, "expected a string as object key"),
        BAD("{\"a\"::1}", 6, "unexpected character ':'"),
        BAD("{,}", 2, "expected a string as object key"),
        BAD("{\"a\"}", 5, "expected ':' after object key"),
        BAD("{\"a\":1,,\"b\":2}", 8, "expected a string as object key"),
        BAD("[{]}", 3, "expected a string as object key"),
        BAD("{\"a\": [1, 2}", 12, "expected ',' or ']'"),
        BAD("[[[]]", 6, "expected ',' or ']'"),
        BAD("{\"a\": {\"b\": 1}", 15, "expected ',' or '}'"),
    };
    CHECK_REJECTS((fixture *)*state, cases);
}

static void test_error_after_success_and_first_error_wins(void **state)
{
    fixture *f = *state;
    parse_ok(f, "[1, 2, 3]");
    assert_int_equal(f->p.n_tokens, 4);
    assert_int_equal(parse(f, "[1, 2, 3"), -1);
    assert_int_equal(f->p.n_tokens, 0);
    parse_ok(f, "[1, 2, 3]");
    assert_int_equal(f->p.n_tokens, 4);
    /* An error already held is not overwritten. */
    tgt_error err;
    tgt_error_init(&err);
    tgt_error_set(&err, TGT_ERR_IO, "earlier");
    assert_int_equal(tgt_json_parse(&f->p, "x", 1, &err), -1);
    assert_int_equal(err.code, TGT_ERR_IO);
    assert_string_equal(err.message, "earlier");
}

/* ---- depth and size ---------------------------------------------------- */

#define DEEP 100000

static void test_deep_arrays(void **state)
{
    fixture *f = *state;
    char *s = malloc(2 * DEEP);
    assert_non_null(s);
    memset(s, '[', DEEP);
    memset(s + DEEP, ']', DEEP);
    assert_int_equal(parse_n(f, s, 2 * DEEP), 0);
    assert_int_equal(f->p.n_tokens, DEEP);
    for (size_t i = 0; i < DEEP; i++) {
        const tgt_json_token *t = &f->p.tokens[i];
        assert_int_equal(t->type, TGT_JSON_ARRAY);
        assert_int_equal(t->start, i);
        assert_int_equal(t->len, 2 * (DEEP - i));
        assert_int_equal(t->size, i + 1 < DEEP ? 1 : 0);
        assert_int_equal(t->end, DEEP);
    }

    /* Skipping items leaves one token, however deep. */
    f->p.skip_array_items = 1;
    assert_int_equal(parse_n(f, s, 2 * DEEP), 0);
    assert_int_equal(f->p.n_tokens, 1);
    check_token(f, 0, TGT_JSON_ARRAY, 0, 1, 0, 2 * DEEP, 1);
    f->p.skip_array_items = 0;

    /* One bracket short: the error is at the end of input. */
    assert_int_equal(parse_n(f, s, 2 * DEEP - 1), -1);
    char want[64];
    snprintf(want, sizeof(want), "invalid JSON at column %d: expected ','", 2 * DEEP);
    assert_true(strncmp(f->err.message, want, strlen(want)) == 0);
    assert_int_equal(parse_n(f, s, DEEP), -1);
    free(s);
}

static void test_deep_objects(void **state)
{
    fixture *f = *state;
    /* {"a":{"a":...{"a":null}...}} */
    size_t len = DEEP * 6 + 4;
    char *s = malloc(len);
    assert_non_null(s);
    for (size_t i = 0; i < DEEP; i++)
        memcpy(s + 5 * i, "{\"a\":", 5);
    memcpy(s + 5 * DEEP, "null", 4);
    memset(s + 5 * DEEP + 4, '}', DEEP);
    assert_int_equal(parse_n(f, s, len), 0);
    assert_int_equal(f->p.n_tokens, 2 * DEEP + 1);
    size_t obj = 0;
    for (size_t i = 0; i < DEEP; i++) {
        check_token(f, obj, TGT_JSON_OBJECT, 0, 1, 5 * i, len - 6 * i, 2 * DEEP + 1);
        long v = get(f, obj, "a");
        assert_int_equal(v, (long)obj + 2);
        obj = (size_t)v;
    }
    assert_int_equal(tok(f, obj)->type, TGT_JSON_NULL);

    free(s);

    /* [{"a":[{"a":...1...}]}] alternating, with and without skipping. */
    len = 8 * (size_t)DEEP + 1;
    s = malloc(len);
    assert_non_null(s);
    for (size_t i = 0; i < DEEP; i++) {
        memcpy(s + 6 * i, "[{\"a\":", 6);
        memcpy(s + 6 * DEEP + 1 + 2 * i, "}]", 2);
    }
    s[6 * DEEP] = '1';
    assert_int_equal(parse_n(f, s, len), 0);
    assert_int_equal(f->p.n_tokens, 3 * DEEP + 1);
    check_token(f, 3, TGT_JSON_ARRAY, 0, 1, 6, len - 8, 3 * DEEP + 1);
    check_token(f, 3 * DEEP, TGT_JSON_NUMBER, TGT_JSON_INTEGRAL, 0, 6 * DEEP, 1, 3 * DEEP + 1);
    f->p.skip_array_items = 1;
    assert_int_equal(parse_n(f, s, len), 0);
    assert_int_equal(f->p.n_tokens, 1);
    check_token(f, 0, TGT_JSON_ARRAY, 0, 1, 0, len, 1);
    /* A wrong closing bracket deep inside is still found. */
    f->text[len - 3] = '}';
    assert_int_equal(tgt_json_parse(&f->p, f->text, len, &f->err), -1);
    f->p.skip_array_items = 0;
    free(s);
}

static void test_huge_string(void **state)
{
    fixture *f = *state;
    size_t body = (size_t)64 << 20;
    size_t len = body + 2;
    char *s = malloc(len);
    assert_non_null(s);
    s[0] = '"';
    memset(s + 1, 'x', body);
    /* An escape and a two-byte character near the end, past the fast path. */
    memcpy(s + body - 8, "\\n\xc3\xa9", 4);
    s[len - 1] = '"';
    assert_int_equal(parse_n(f, s, len), 0);
    free(s);
    check_token(f, 0, TGT_JSON_STRING, TGT_JSON_ESCAPED | TGT_JSON_NON_ASCII, 0, 1, body, 1);
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    const tgt_json_token *t = tok(f, 0);
    tgt_json_decode_string(f->text + t->start, t->len, &sb, NULL);
    assert_true(tgt_sbuf_ok(&sb));
    assert_int_equal(sb.len, body - 1);
    assert_memory_equal(sb.data + body - 9, "\n\xc3\xa9xxxx", 7);
    assert_int_equal(sb.data[0], 'x');
    tgt_sbuf_deinit(&sb);
}

/* ---- reuse and real lines ---------------------------------------------- */

static void test_reuse_many_lines(void **state)
{
    fixture *f = *state;
    char line[512];
    const tgt_json_token *tokens_before = NULL;
    size_t cap_before = 0, stack_before = 0;
    for (int i = 0; i < 20000; i++) {
        int n =
            snprintf(line, sizeof(line),
                     "{\"type\": \"RECORD\", \"stream\": \"s%d\", \"record\": {\"id\": %d, "
                     "\"name\": \"user \\u00e9 %d\", \"score\": %d.5, \"ok\": %s, \"tags\": "
                     "[%s]}}",
                     i % 7, i, i, i % 100, i % 2 ? "true" : "false", i % 3 ? "\"a\", \"b\"" : "");
        assert_true(n > 0 && (size_t)n < sizeof(line));
        if (i % 1000 == 999) {
            /* A broken line now and then must not disturb the next ones. */
            assert_int_equal(parse_n(f, line, (size_t)n - 1), -1);
            continue;
        }
        assert_int_equal(parse_n(f, line, (size_t)n), 0);
        size_t want = 17 + (i % 3 ? 2 : 0);
        assert_int_equal(f->p.n_tokens, want);
        long rec = get(f, 0, "record");
        long id = get(f, (size_t)rec, "id");
        char num[16];
        snprintf(num, sizeof(num), "%d", i);
        check_text(f, (size_t)id, num);
        if (i == 100) {
            tokens_before = f->p.tokens;
            cap_before = f->p.cap_tokens;
            stack_before = f->p.cap_stack;
        } else if (i > 100) {
            /* Once big enough, the arrays are reused as they are. */
            assert_ptr_equal(f->p.tokens, tokens_before);
            assert_int_equal(f->p.cap_tokens, cap_before);
            assert_int_equal(f->p.cap_stack, stack_before);
        }
    }
}

static void test_many_tokens_grow(void **state)
{
    fixture *f = *state;
    size_t n = 100000;
    char *s = malloc(2 * n + 1);
    assert_non_null(s);
    s[0] = '[';
    for (size_t i = 0; i < n; i++) {
        s[1 + 2 * i] = (char)('0' + i % 10);
        s[2 + 2 * i] = ',';
    }
    s[2 * n] = ']';
    assert_int_equal(parse_n(f, s, 2 * n + 1), 0);
    assert_int_equal(f->p.n_tokens, n + 1);
    check_token(f, 0, TGT_JSON_ARRAY, 0, (uint32_t)n, 0, 2 * n + 1, n + 1);
    check_token(f, n, TGT_JSON_NUMBER, TGT_JSON_INTEGRAL, 0, 2 * n - 1, 1, n + 1);
    free(s);
}

static void test_singer_lines(void **state)
{
    fixture *f = *state;
    f->p.skip_array_items = 1;

    parse_ok(f, "{\"type\": \"SCHEMA\", \"stream\": \"public-users\", \"schema\": {\"type\": "
                "\"object\", \"properties\": {\"id\": {\"type\": [\"integer\"]}, \"name\": "
                "{\"type\": [\"null\", \"string\"], \"maxLength\": 255}, \"updated_at\": "
                "{\"type\": [\"null\", \"string\"], \"format\": \"date-time\"}}}, "
                "\"key_properties\": [\"id\"], \"bookmark_properties\": [\"updated_at\"]}");
    long type = get(f, 0, "type");
    const tgt_json_token *t = tok(f, (size_t)type);
    assert_true(tgt_json_string_equals(f->text + t->start, t->len, t->flags, "SCHEMA", 6));
    long schema = get(f, 0, "schema");
    long props = get(f, (size_t)schema, "properties");
    assert_int_equal(tok(f, (size_t)props)->size, 3);
    long name = get(f, (size_t)props, "name");
    check_text(f, (size_t)get(f, (size_t)name, "type"), "[\"null\", \"string\"]");
    check_text(f, (size_t)get(f, (size_t)name, "maxLength"), "255");
    long keys = get(f, 0, "key_properties");
    check_token(f, (size_t)keys, TGT_JSON_ARRAY, 0, 1, tok(f, (size_t)keys)->start, 6,
                (size_t)keys + 1);

    parse_ok(f, "{\"type\": \"RECORD\", \"stream\": \"public-users\", \"record\": {\"id\": 42, "
                "\"name\": \"Zo\\u00eb \\\"Z\\\" O'Brien \xf0\x9f\x8e\x89\", \"balance\": "
                "-1234.5e-2, \"active\": true, \"deleted_at\": null, \"tags\": [\"a\", "
                "{\"b\": [1]}, 3], \"meta\": {\"x\": {}}}, \"version\": 1710498225123, "
                "\"time_extracted\": \"2024-03-15T10:23:45.123456Z\"}");
    long rec = get(f, 0, "record");
    assert_int_equal(tok(f, (size_t)rec)->size, 7);
    long id = get(f, (size_t)rec, "id");
    check_token(f, (size_t)id, TGT_JSON_NUMBER, TGT_JSON_INTEGRAL, 0, tok(f, (size_t)id)->start, 2,
                (size_t)id + 1);
    long nm = get(f, (size_t)rec, "name");
    t = tok(f, (size_t)nm);
    assert_int_equal(t->flags, TGT_JSON_ESCAPED | TGT_JSON_NON_ASCII);
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    tgt_json_decode_string(f->text + t->start, t->len, &sb, NULL);
    assert_string_equal(tgt_sbuf_str(&sb), "Zo\xc3\xab \"Z\" O'Brien \xf0\x9f\x8e\x89");
    tgt_sbuf_deinit(&sb);
    check_text(f, (size_t)get(f, (size_t)rec, "balance"), "-1234.5e-2");
    assert_int_equal(tok(f, (size_t)get(f, (size_t)rec, "balance"))->flags, 0);
    long tags = get(f, (size_t)rec, "tags");
    check_text(f, (size_t)tags, "[\"a\", {\"b\": [1]}, 3]");
    assert_int_equal(tok(f, (size_t)tags)->size, 3);
    assert_int_equal(tok(f, (size_t)get(f, (size_t)rec, "deleted_at"))->type, TGT_JSON_NULL);
    check_text(f, (size_t)get(f, 0, "version"), "1710498225123");

    parse_ok(f, "{\"type\": \"STATE\", \"value\": {\"bookmarks\": {\"public-users\": "
                "{\"replication_key\": \"updated_at\", \"replication_key_value\": "
                "\"2024-03-15T10:23:45Z\"}}}}");
    long value = get(f, 0, "value");
    check_text(f, (size_t)value,
               "{\"bookmarks\": {\"public-users\": {\"replication_key\": "
               "\"updated_at\", \"replication_key_value\": "
               "\"2024-03-15T10:23:45Z\"}}}");

    parse_ok(f, "{\"type\":\"ACTIVATE_VERSION\",\"stream\":\"public-users\",\"version\":1}\r\n");
    assert_int_equal(tok(f, 0)->size, 3);
    check_text(f, (size_t)get(f, 0, "stream"), "public-users");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scalar_roots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_number_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nonfinite_numbers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_string_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_string_stops_at_every_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_utf8_boundaries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spans_and_ends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_containers_and_whitespace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_nul_terminated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_object_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_object_get_escaped_and_duplicate_keys, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_skip_array_items, setup, teardown),
        cmocka_unit_test(test_decode_string),
        cmocka_unit_test_setup_teardown(test_decode_from_parsed_tokens, setup, teardown),
        cmocka_unit_test(test_string_equals),
        cmocka_unit_test_setup_teardown(test_reject_empty_and_trailing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject_bytes_outside_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject_literals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject_numbers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject_strings_and_escapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject_surrogate_escapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject_invalid_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject_structure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_after_success_and_first_error_wins, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deep_arrays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deep_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_string, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reuse_many_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_tokens_grow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_singer_lines, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

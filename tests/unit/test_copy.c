/*
 * test_copy.c - unit tests for copy.c: COPY text escaping of raw bytes, JSON
 * string decoding (escapes, surrogate pairs, \u0000 -> U+FFFD) combined with
 * COPY escaping, raw JSON text for jsonb, and the NULL marker.  Byte output
 * only; the round trip through a real server is tested elsewhere.  A slow
 * byte-at-a-time reference implementation checks the fast paths on random
 * inputs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "postgres/pg_encode.h"

/* ---- helpers ----------------------------------------------------------- */

static void expect_bytes(const tgt_sbuf *sb, const char *want, size_t want_len)
{
    assert_true(tgt_sbuf_ok(sb));
    if (sb->len != want_len || (want_len > 0 && memcmp(sb->data, want, want_len) != 0))
        fail_msg("got %zu bytes \"%.*s\", want %zu bytes \"%.*s\"", sb->len, (int)sb->len,
                 sb->len ? sb->data : "", want_len, (int)want_len, want);
    if (sb->data != NULL)
        assert_int_equal(sb->data[sb->len], '\0');
}

#define EXPECT(sb, lit) expect_bytes((sb), (lit), sizeof(lit) - 1)

/* Encodes a C-string literal with each function, freshly each time. */
static void text_is(const char *in, size_t n, const char *want, size_t want_len)
{
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    tgt_pg_copy_text(&sb, in, n);
    expect_bytes(&sb, want, want_len);
    tgt_sbuf_deinit(&sb);
}

static size_t json_string_is(const char *raw, const char *want, size_t want_len)
{
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    size_t nuls = 0;
    tgt_pg_copy_json_string(&sb, raw, strlen(raw), strchr(raw, '\\') != NULL, &nuls);
    expect_bytes(&sb, want, want_len);
    tgt_sbuf_deinit(&sb);
    return nuls;
}

static size_t json_raw_is(const char *json, const char *want, size_t want_len)
{
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    size_t nuls = 0;
    tgt_pg_copy_json_raw(&sb, json, strlen(json), &nuls);
    expect_bytes(&sb, want, want_len);
    tgt_sbuf_deinit(&sb);
    return nuls;
}

/* U+FFFD, what \u0000 and broken escapes become. */
#define FFFD "\xef\xbf\xbd"

#define TEXT_IS(in, lit) text_is((in), sizeof(in) - 1, (lit), sizeof(lit) - 1)
#define JSTR_IS(raw, lit) json_string_is((raw), (lit), sizeof(lit) - 1)
#define JRAW_IS(json, lit) json_raw_is((json), (lit), sizeof(lit) - 1)

/* ---- tgt_pg_copy_text ---------------------------------------------- */

static void test_text_escapes(void **state)
{
    (void)state;
    TEXT_IS("plain", "plain");
    TEXT_IS("a\tb", "a\\tb");
    TEXT_IS("a\nb", "a\\nb");
    TEXT_IS("a\rb", "a\\rb");
    TEXT_IS("a\\b", "a\\\\b");
    TEXT_IS("\\", "\\\\");
    TEXT_IS("\t\n\r\\", "\\t\\n\\r\\\\");
    /* The two characters backslash N must not read back as NULL. */
    TEXT_IS("\\N", "\\\\N");
    /* A lone "\." line would end COPY data; the doubled backslash prevents it. */
    TEXT_IS("\\.", "\\\\.");
    /* Other control bytes and non-ASCII go through unchanged. */
    TEXT_IS("\x01\x08\x0b\x0c\x1f\x7f", "\x01\x08\x0b\x0c\x1f\x7f");
    TEXT_IS("caf\xc3\xa9 \xf0\x9f\x98\x80", "caf\xc3\xa9 \xf0\x9f\x98\x80");
    /* Specials at every position relative to an 8-byte word. */
    TEXT_IS("0123456789abcdef\t", "0123456789abcdef\\t");
    TEXT_IS("0123456\\89abcdef", "0123456\\\\89abcdef");
    TEXT_IS("01234567\n9abcdef0", "01234567\\n9abcdef0");
    TEXT_IS("\x01\x02\x03\x04\x05\x06\x07\x0eghijklmn", "\x01\x02\x03\x04\x05\x06\x07\x0eghijklmn");
}

static void test_empty_is_not_null(void **state)
{
    (void)state;
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    tgt_pg_copy_text(&sb, "", 0);
    tgt_sbuf_append(&sb, "\t", 1);
    tgt_pg_copy_null(&sb);
    tgt_sbuf_append(&sb, "\t", 1);
    tgt_pg_copy_json_string(&sb, "", 0, 0, NULL);
    tgt_sbuf_append(&sb, "\t", 1);
    tgt_pg_copy_json_string(&sb, "", 0, 1, NULL);
    tgt_sbuf_append(&sb, "\n", 1);
    EXPECT(&sb, "\t\\N\t\t\n");
    tgt_sbuf_deinit(&sb);
}

static void test_appends_after_existing(void **state)
{
    (void)state;
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    tgt_sbuf_append_str(&sb, "x\t");
    tgt_pg_copy_text(&sb, "a\tb", 3);
    tgt_sbuf_append_str(&sb, "\t");
    tgt_pg_copy_json_string(&sb, "c\\nd", 4, 1, NULL);
    tgt_sbuf_append_str(&sb, "\t");
    tgt_pg_copy_json_raw(&sb, "{\"k\": \"\\t\"}", 11, NULL);
    EXPECT(&sb, "x\ta\\tb\tc\\nd\t{\"k\": \"\\\\t\"}");
    tgt_sbuf_deinit(&sb);
}

static void test_null(void **state)
{
    (void)state;
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    tgt_pg_copy_null(&sb);
    EXPECT(&sb, "\\N");
    tgt_sbuf_deinit(&sb);
}

static void test_broken_buffer_stays_broken(void **state)
{
    (void)state;
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    sb.broken = 1;
    tgt_pg_copy_text(&sb, "abc", 3);
    tgt_pg_copy_json_string(&sb, "a\\n", 3, 1, NULL);
    tgt_pg_copy_json_raw(&sb, "[1]", 3, NULL);
    tgt_pg_copy_null(&sb);
    assert_false(tgt_sbuf_ok(&sb));
    assert_int_equal(sb.len, 0);
    tgt_sbuf_deinit(&sb);
}

/* ---- tgt_pg_copy_json_string --------------------------------------- */

static void test_json_string_escapes(void **state)
{
    (void)state;
    assert_int_equal(JSTR_IS("plain", "plain"), 0);
    JSTR_IS("q\\\"q", "q\"q");
    JSTR_IS("s\\/s", "s/s");
    JSTR_IS("b\\\\b", "b\\\\b");
    JSTR_IS("\\b\\f", "\x08\x0c");
    JSTR_IS("\\n", "\\n");
    JSTR_IS("\\r", "\\r");
    JSTR_IS("\\t", "\\t");
    JSTR_IS("a\\tb\\nc\\rd\\\\e", "a\\tb\\nc\\rd\\\\e");
    /* The JSON text \\N is the two characters backslash N. */
    JSTR_IS("\\\\N", "\\\\N");
    JSTR_IS("\\u0041\\u00e9\\u20AC", "A\xc3\xa9\xe2\x82\xac");
    /* \u escapes of COPY specials are escaped after decoding. */
    JSTR_IS("\\u005c\\u0009\\u000A\\u000d", "\\\\\\t\\n\\r");
    JSTR_IS("\\u0001\\u001f", "\x01\x1f");
    JSTR_IS("\\u07ff\\u0800\\uffff", "\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf");
}

static void test_json_string_raw_bytes_unescaped_flag(void **state)
{
    (void)state;
    /* escaped == 0: the bytes only need COPY escaping, even a backslash-free
     * string with (tokenizer-refused, but possible) tabs. */
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    tgt_pg_copy_json_string(&sb, "a\tb\xf0\x9f\x98\x80", 7, 0, NULL);
    EXPECT(&sb, "a\\tb\xf0\x9f\x98\x80");
    tgt_sbuf_deinit(&sb);
}

static void test_json_string_emoji(void **state)
{
    (void)state;
    /* U+1F600 raw and as a surrogate pair give the same 4 bytes. */
    JSTR_IS("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80");
    JSTR_IS("\\ud83d\\ude00", "\xf0\x9f\x98\x80");
    JSTR_IS("\\uD83D\\uDE00!", "\xf0\x9f\x98\x80!");
    JSTR_IS("x\\ud800\\udc00y\\udbff\\udfffz", "x\xf0\x90\x80\x80y\xf4\x8f\xbf\xbfz");
}

static void test_json_string_nul(void **state)
{
    (void)state;
    assert_int_equal(JSTR_IS("\\u0000", "\xef\xbf\xbd"), 1);
    assert_int_equal(JSTR_IS("a\\u0000b\\u0000", "a" FFFD "b" FFFD), 2);
    /* An escaped backslash followed by the text u0000 is not a NUL. */
    assert_int_equal(JSTR_IS("\\\\u0000", "\\\\u0000"), 0);
    assert_int_equal(JSTR_IS("\\\\\\u0000", "\\\\\xef\xbf\xbd"), 1);
    /* nul_count may be NULL. */
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    tgt_pg_copy_json_string(&sb, "\\u0000", 6, 1, NULL);
    EXPECT(&sb, "\xef\xbf\xbd");
    tgt_sbuf_deinit(&sb);
}

/* Input the tokenizer refuses must still be handled without reading past n. */
static void test_json_string_malformed(void **state)
{
    (void)state;
    JSTR_IS("a\\", "a\\\\");
    JSTR_IS("\\u12", FFFD "12");
    JSTR_IS("\\uzzzz", FFFD "zzzz");
    JSTR_IS("\\ud83d", "\xef\xbf\xbd");
    JSTR_IS("\\ud83dx", "\xef\xbf\xbdx");
    JSTR_IS("\\ud83d\\u0041", FFFD "A");
    JSTR_IS("\\ude00", "\xef\xbf\xbd");
    JSTR_IS("\\x", "x");
    JSTR_IS("\\\t", "\\t");
    /* Truncation at every length of a surrogate pair, in exact-size blocks. */
    const char *pair = "\\ud83d\\ude00";
    for (size_t len = 1; len <= 12; len++) {
        char *s = malloc(len);
        assert_non_null(s);
        memcpy(s, pair, len);
        tgt_sbuf sb;
        tgt_sbuf_init(&sb);
        tgt_pg_copy_json_string(&sb, s, len, 1, NULL);
        tgt_pg_copy_json_raw(&sb, s, len, NULL);
        assert_true(tgt_sbuf_ok(&sb));
        tgt_sbuf_deinit(&sb);
        free(s);
    }
}

/* ---- tgt_pg_copy_json_raw ------------------------------------------ */

static void test_json_raw(void **state)
{
    (void)state;
    JRAW_IS("{\"a\":1}", "{\"a\":1}");
    JRAW_IS("[1, 2.50, true, null]", "[1, 2.50, true, null]");
    /* Whitespace between tokens is escaped like any TAB/LF/CR. */
    JRAW_IS("{\n\t\"a\" :\r\n [ 1 ]\n}", "{\\n\\t\"a\" :\\r\\n [ 1 ]\\n}");
    /* Escapes inside strings stay JSON escapes, with the backslash doubled. */
    JRAW_IS("[\"a\\tb\\n\\\"\\\\\"]", "[\"a\\\\tb\\\\n\\\\\"\\\\\\\\\"]");
    JRAW_IS("{\"s\":\"\\\\N\"}", "{\"s\":\"\\\\\\\\N\"}");
    JRAW_IS("[\"\\ud83d\\ude00\",\"\xf0\x9f\x98\x80\"]",
            "[\"\\\\ud83d\\\\ude00\",\"\xf0\x9f\x98\x80\"]");
}

static void test_json_raw_nul(void **state)
{
    (void)state;
    assert_int_equal(JRAW_IS("[\"\\u0000\"]", "[\"\\\\ufffd\"]"), 1);
    assert_int_equal(
        JRAW_IS("{\"k\\u0000\":\"a\\u0000b\\u0000\"}", "{\"k\\\\ufffd\":\"a\\\\ufffdb\\\\ufffd\"}"),
        3);
    /* "\\u0000" in JSON is a backslash then the text u0000: no NUL. */
    assert_int_equal(JRAW_IS("[\"\\\\u0000\"]", "[\"\\\\\\\\u0000\"]"), 0);
    /* "\\\u0000" is a backslash and then a NUL escape. */
    assert_int_equal(JRAW_IS("[\"\\\\\\u0000\"]", "[\"\\\\\\\\\\\\ufffd\"]"), 1);
    /* Other \u escapes are kept as written. */
    assert_int_equal(JRAW_IS("[\"\\u0001\\u00000\"]", "[\"\\\\u0001\\\\ufffd0\"]"), 1);
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    tgt_pg_copy_json_raw(&sb, "\"\\u0000\"", 8, NULL);
    EXPECT(&sb, "\"\\\\ufffd\"");
    tgt_sbuf_deinit(&sb);
}

/* ---- large and random inputs ------------------------------------------- */

static void test_ten_megabytes(void **state)
{
    (void)state;
    size_t n = 10u * 1024 * 1024;
    char *s = malloc(n);
    assert_non_null(s);
    size_t specials = 0;
    for (size_t i = 0; i < n; i++) {
        s[i] = (char)('a' + i % 26);
        if (i % 1000 == 999) {
            s[i] = "\t\n\r\\"[(i / 1000) % 4];
            specials++;
        }
    }
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    tgt_pg_copy_text(&sb, s, n);
    assert_true(tgt_sbuf_ok(&sb));
    assert_int_equal(sb.len, n + specials);
    assert_memory_equal(sb.data, s, 999);
    assert_memory_equal(sb.data + 999, "\\t", 2);
    assert_int_equal(sb.data[sb.len], '\0');

    /* The same as an escaped JSON string (\\ and \t escapes) and as raw JSON. */
    tgt_sbuf_reset(&sb);
    tgt_pg_copy_json_string(&sb, s, n, 1, NULL);
    assert_true(tgt_sbuf_ok(&sb));
    tgt_sbuf_reset(&sb);
    tgt_pg_copy_json_raw(&sb, s, n, NULL);
    assert_true(tgt_sbuf_ok(&sb));
    tgt_sbuf_deinit(&sb);
    free(s);
}

/* The obvious byte-at-a-time version of tgt_pg_copy_text. */
static void ref_text(tgt_sbuf *out, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '\t':
            tgt_sbuf_append(out, "\\t", 2);
            break;
        case '\n':
            tgt_sbuf_append(out, "\\n", 2);
            break;
        case '\r':
            tgt_sbuf_append(out, "\\r", 2);
            break;
        case '\\':
            tgt_sbuf_append(out, "\\\\", 2);
            break;
        default:
            tgt_sbuf_append(out, &s[i], 1);
        }
    }
}

static unsigned rnd(uint64_t *seed)
{
    *seed = *seed * 6364136223846793005u + 1442695040888963407u;
    return (unsigned)(*seed >> 33);
}

static void test_text_matches_reference(void **state)
{
    (void)state;
    uint64_t seed = 42;
    static const unsigned char pool[] = {'a',  'b',  '\t', '\n', '\r', '\\', 0x01, 0x0d,
                                         0x0e, 0x5b, 0x5c, 0x5d, 0x80, 0xff, 'N',  0x00};
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = rnd(&seed) % 70;
        unsigned char *s = malloc(n ? n : 1);
        assert_non_null(s);
        /* Mostly plain bytes, so long runs as well as dense specials occur. */
        int density = (int)(rnd(&seed) % 4);
        for (size_t i = 0; i < n; i++)
            s[i] = rnd(&seed) % 8 < (unsigned)density ? pool[rnd(&seed) % sizeof pool]
                                                      : (unsigned char)(rnd(&seed) % 256);
        tgt_sbuf got, want;
        tgt_sbuf_init(&got);
        tgt_sbuf_init(&want);
        tgt_pg_copy_text(&got, (const char *)s, n);
        ref_text(&want, s, n);
        expect_bytes(&got, want.data ? want.data : "", want.len);
        /* No backslash flag: the JSON string path is the text path. */
        tgt_sbuf_reset(&got);
        tgt_pg_copy_json_string(&got, (const char *)s, n, 0, NULL);
        expect_bytes(&got, want.data ? want.data : "", want.len);
        tgt_sbuf_deinit(&got);
        tgt_sbuf_deinit(&want);
        free(s);
    }
}

/* Random JSON string bodies built from pieces whose decoding is known: the
 * fast path must equal the concatenation of the pieces' expected output. */
static void test_json_string_matches_pieces(void **state)
{
    (void)state;
    static const struct {
        const char *raw, *copy;
        size_t nuls;
    } pieces[] = {
        {"abc", "abc", 0},
        {"0123456789", "0123456789", 0},
        {"\\\"", "\"", 0},
        {"\\\\", "\\\\", 0},
        {"\\/", "/", 0},
        {"\\b", "\b", 0},
        {"\\f", "\f", 0},
        {"\\n", "\\n", 0},
        {"\\r", "\\r", 0},
        {"\\t", "\\t", 0},
        {"\\u0000", "\xef\xbf\xbd", 1},
        {"\\u005C", "\\\\", 0},
        {"\\u00e9", "\xc3\xa9", 0},
        {"\\ud83d\\ude00", "\xf0\x9f\x98\x80", 0},
        {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80", 0},
        {"u0000", "u0000", 0},
        {"N", "N", 0},
    };
    size_t n_pieces = sizeof pieces / sizeof pieces[0];
    uint64_t seed = 7;
    for (int iter = 0; iter < 20000; iter++) {
        tgt_sbuf raw, want, got;
        tgt_sbuf_init(&raw);
        tgt_sbuf_init(&want);
        tgt_sbuf_init(&got);
        size_t want_nuls = 0, nuls = 0;
        size_t count = rnd(&seed) % 12;
        for (size_t k = 0; k < count; k++) {
            size_t p = rnd(&seed) % n_pieces;
            tgt_sbuf_append_str(&raw, pieces[p].raw);
            tgt_sbuf_append_str(&want, pieces[p].copy);
            want_nuls += pieces[p].nuls;
        }
        /* An exact-size copy, so ASan sees any read past n. */
        char *s = malloc(raw.len ? raw.len : 1);
        assert_non_null(s);
        if (raw.len)
            memcpy(s, raw.data, raw.len);
        tgt_pg_copy_json_string(&got, s, raw.len, 1, &nuls);
        expect_bytes(&got, want.data ? want.data : "", want.len);
        assert_int_equal(nuls, want_nuls);
        free(s);
        tgt_sbuf_deinit(&raw);
        tgt_sbuf_deinit(&want);
        tgt_sbuf_deinit(&got);
    }
}

/* Arbitrary bytes through every function: nothing past n is read (exact-size
 * blocks under ASan), the output stays within 2n and keeps its NUL. */
static void test_arbitrary_bytes(void **state)
{
    (void)state;
    uint64_t seed = 99;
    static const char pool[] = "\\u0000dD8Ee\t\n\r\"x";
    for (int iter = 0; iter < 50000; iter++) {
        size_t n = rnd(&seed) % 40;
        char *s = malloc(n ? n : 1);
        assert_non_null(s);
        for (size_t i = 0; i < n; i++)
            s[i] = rnd(&seed) % 4 ? pool[rnd(&seed) % (sizeof pool - 1)] : (char)(rnd(&seed) % 256);
        tgt_sbuf sb;
        tgt_sbuf_init(&sb);
        tgt_pg_copy_json_string(&sb, s, n, 1, NULL);
        assert_true(sb.len <= 2 * n);
        size_t before = sb.len;
        tgt_pg_copy_json_raw(&sb, s, n, NULL);
        assert_true(sb.len - before <= 2 * n);
        assert_true(tgt_sbuf_ok(&sb));
        if (sb.data != NULL)
            assert_int_equal(sb.data[sb.len], '\0');
        tgt_sbuf_deinit(&sb);
        free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_escapes),
        cmocka_unit_test(test_empty_is_not_null),
        cmocka_unit_test(test_appends_after_existing),
        cmocka_unit_test(test_null),
        cmocka_unit_test(test_broken_buffer_stays_broken),
        cmocka_unit_test(test_json_string_escapes),
        cmocka_unit_test(test_json_string_raw_bytes_unescaped_flag),
        cmocka_unit_test(test_json_string_emoji),
        cmocka_unit_test(test_json_string_nul),
        cmocka_unit_test(test_json_string_malformed),
        cmocka_unit_test(test_json_raw),
        cmocka_unit_test(test_json_raw_nul),
        cmocka_unit_test(test_ten_megabytes),
        cmocka_unit_test(test_text_matches_reference),
        cmocka_unit_test(test_json_string_matches_pieces),
        cmocka_unit_test(test_arbitrary_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

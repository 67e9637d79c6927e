/* Unit tests for naming.c: identifier normalisation, the length rule (at
 * PostgreSQL's 63 bytes, and at other drivers' limits), clash suffixes and
 * stream-name splitting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "naming.h"

#define PG 63 /* PostgreSQL's identifier limit (drivers/postgres/pg_caps.c) */

static void ident1(const char *name, char out[TGT_IDENT_MAX + 1])
{
    size_t len = strlen(name);
    assert_int_equal(tgt_naming_identifier(&name, &len, 1, PG, out), 0);
}

static void test_normalise_ascii(void **state)
{
    (void)state;
    char out[TGT_IDENT_MAX + 1];
    ident1("clientName", out);
    assert_string_equal(out, "clientname");
    ident1("minus-column", out);
    assert_string_equal(out, "minus_column");
    ident1("test:SpecialChars!in?attributes", out);
    assert_string_equal(out, "test_specialchars_in_attributes");
    ident1("1st", out);
    assert_string_equal(out, "_1st");
    ident1("", out);
    assert_string_equal(out, "_");
    ident1("a\"b;c d", out);
    assert_string_equal(out, "a_b_c_d");
    ident1("_leading", out);
    assert_string_equal(out, "_leading");
}

static void test_non_ascii_kept(void **state)
{
    (void)state;
    char out[TGT_IDENT_MAX + 1];
    ident1("Zo\xc3\xab", out); /* Zoë */
    assert_string_equal(out, "zo\xc3\xab");
    ident1("\xe2\x80\x8b"
           "END",
           out); /* zero-width space kept */
    assert_string_equal(out, "\xe2\x80\x8b"
                             "end");
}

static void test_nested_path(void **state)
{
    (void)state;
    const char *parts[] = {"address", "Geo", "lat"};
    size_t lens[] = {7, 3, 3};
    char out[TGT_IDENT_MAX + 1];
    assert_int_equal(tgt_naming_identifier(parts, lens, 3, PG, out), 0);
    assert_string_equal(out, "address__geo__lat");
}

static void test_long_names_get_hash(void **state)
{
    (void)state;
    char a[81], b[81];
    memset(a, 'x', 80);
    a[80] = '\0';
    memcpy(b, a, 81);
    b[79] = 'y'; /* same 63-byte prefix, different names */
    char out_a[TGT_IDENT_MAX + 1], out_b[TGT_IDENT_MAX + 1];
    ident1(a, out_a);
    ident1(b, out_b);
    assert_int_equal(strlen(out_a), 63);
    assert_int_equal(strlen(out_b), 63);
    assert_memory_equal(out_a, a, 54);
    assert_int_equal(out_a[54], '_');
    assert_string_not_equal(out_a, out_b);
    /* exactly 63 bytes is left alone */
    a[63] = '\0';
    ident1(a, out_a);
    assert_string_equal(out_a, a);
}

static void test_cut_at_character_boundary(void **state)
{
    (void)state;
    /* 53 ASCII bytes then 2-byte characters: byte 54 would split one */
    char name[128];
    memset(name, 'a', 53);
    size_t n = 53;
    for (int i = 0; i < 10; i++) {
        name[n++] = '\xc3';
        name[n++] = '\xa9';
    }
    name[n] = '\0';
    char out[TGT_IDENT_MAX + 1];
    ident1(name, out);
    assert_int_equal(out[53], '_');
    assert_int_equal(strlen(out), 53 + 9);
}

static void test_suffix_form(void **state)
{
    (void)state;
    char out[TGT_IDENT_MAX + 1];
    tgt_naming_with_suffix("clientname", 0xdeadbeefu, PG, out);
    assert_string_equal(out, "clientname_deadbeef");
}

static void test_hash_is_fnv1a(void **state)
{
    (void)state;
    assert_int_equal(tgt_naming_hash("", 0), 2166136261u);
    assert_int_equal(tgt_naming_hash("a", 1), 0xe40c292cu);
}

static void split(const char *stream, const char *want_schema, const char *want_table)
{
    const char *s, *t;
    size_t sl, tl;
    tgt_naming_split_stream(stream, strlen(stream), &s, &sl, &t, &tl);
    if (want_schema == NULL) {
        assert_null(s);
    } else {
        assert_non_null(s);
        assert_int_equal(sl, strlen(want_schema));
        assert_memory_equal(s, want_schema, sl);
    }
    assert_int_equal(tl, strlen(want_table));
    assert_memory_equal(t, want_table, tl);
}

static void test_split_stream(void **state)
{
    (void)state;
    split("tap_mysql_test-test_table_one", "tap_mysql_test", "test_table_one");
    split("db-public-orders", "public", "orders");
    split("orders", NULL, "orders");
    split("a-b-c-d", NULL, "a-b-c-d");
    split("-orders", NULL, "-orders");
    split("orders-", NULL, "orders-");
    split("a--b", NULL, "a--b");
    split("my_db-table with space and UPPERCase", "my_db", "table with space and UPPERCase");
}

static void test_shadow_names(void **state)
{
    (void)state;
    char a[TGT_IDENT_MAX + 1], b[TGT_IDENT_MAX + 1];
    /* 32-bit FNV-1a of these two collides; their shadows must not */
    tgt_naming_shadow("t439599", PG, a);
    tgt_naming_shadow("t622382", PG, b);
    assert_string_equal(a, "_tgt_overwrite_t439599");
    assert_string_equal(b, "_tgt_overwrite_t622382");
    /* 48 bytes still fit in full */
    const char *fits = "abcdefghijabcdefghijabcdefghijabcdefghijabcdefgh";
    tgt_naming_shadow(fits, PG, a);
    assert_int_equal(strlen(a), PG);
    assert_string_equal(a + 15, fits);
    /* longer: 31 bytes of it, '-', 16 hex digits; differs from any short form */
    const char *long1 = "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghi";
    const char *long2 = "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghj";
    tgt_naming_shadow(long1, PG, a);
    tgt_naming_shadow(long2, PG, b);
    assert_int_equal(strlen(a), PG);
    assert_memory_equal(a, "_tgt_overwrite_abcdefghijabcdefghijabcdefghija-", 47);
    assert_string_not_equal(a, b);
    /* a cut never splits a character: 30 ASCII bytes then 2-byte characters */
    char mixed[80];
    snprintf(mixed, sizeof(mixed), "%s%s", "abcdefghijabcdefghijabcdefghij",
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
    tgt_naming_shadow(mixed, PG, a);
    assert_int_equal(strlen(a), PG - 1);
    assert_int_equal(a[15 + 30], '-');
}

/* The limit is the driver's: a driver's number is clamped to what the
 * buffers and the shadow form need, and the cut follows it. */
static void test_other_limits(void **state)
{
    (void)state;
    assert_int_equal(tgt_naming_limit(63), 63);
    assert_int_equal(tgt_naming_limit(0), TGT_IDENT_MAX);
    assert_int_equal(tgt_naming_limit(100000), TGT_IDENT_MAX);
    assert_int_equal(tgt_naming_limit(8), TGT_IDENT_MIN);
    const char *name = "abcdefghijabcdefghijabcdefghijabcdefghij"; /* 40 bytes */
    size_t len = strlen(name);
    char out[TGT_IDENT_MAX + 1], want[TGT_IDENT_MAX + 1];
    assert_int_equal(tgt_naming_identifier(&name, &len, 1, 40, out), 0);
    assert_string_equal(out, name);
    assert_int_equal(tgt_naming_identifier(&name, &len, 1, 39, out), 0);
    snprintf(want, sizeof(want), "%.30s_%08x", name, (unsigned)tgt_naming_hash(name, len));
    assert_string_equal(out, want);
    tgt_naming_with_suffix(name, 0xdeadbeefu, 32, out);
    assert_string_equal(out, "abcdefghijabcdefghijabc_deadbeef");
    tgt_naming_shadow("t1", 32, out);
    assert_string_equal(out, "_tgt_overwrite_t1");
    tgt_naming_shadow("abcdefghijabcdefghij", 32, out);
    assert_int_equal(strlen(out), 32);
    assert_memory_equal(out, "_tgt_overwrite_-", 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_other_limits),
        cmocka_unit_test(test_normalise_ascii),
        cmocka_unit_test(test_non_ascii_kept),
        cmocka_unit_test(test_nested_path),
        cmocka_unit_test(test_long_names_get_hash),
        cmocka_unit_test(test_cut_at_character_boundary),
        cmocka_unit_test(test_suffix_form),
        cmocka_unit_test(test_hash_is_fnv1a),
        cmocka_unit_test(test_split_stream),
        cmocka_unit_test(test_shadow_names),
    };
    return cmocka_run_group_tests_name("naming", tests, NULL, NULL);
}

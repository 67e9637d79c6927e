/*
 * test_pg_binary.c - unit tests for pg_binary.c and pg_encode_binary.c:
 * numeric's send form (weight, sign, display scale, base-10000 digits) for
 * scales, exponents and the special words; dates, times and timestamps as
 * days and microseconds since 2000-01-01 (offsets, second 60, hour 24,
 * fractions past six digits rounded as the server rounds them, clocks past
 * 24:00:00 refused); floats that the server's input would refuse; and the
 * row writer's tuple layout and its choice between binary and text.  The
 * values as a server stores them are checked by
 * tests/integration/test_binary_copy.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "postgres/pg_binary.h"
#include "postgres/pg_encode_binary.h"

/* numeric_send of text as "ndigits weight sign dscale: d1 d2 ..." */
static void numeric_is(const char *text, const char *want)
{
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    pg_binary_numeric(&sb, text, strlen(text));
    assert_true(tgt_sbuf_ok(&sb));
    assert_true(sb.len >= 8);
    const unsigned char *p = (const unsigned char *)sb.data;
    int ndigits = p[0] << 8 | p[1];
    int weight = (int16_t)(p[2] << 8 | p[3]);
    char got[256];
    int n = snprintf(got, sizeof got, "%d %d %04x %d:", ndigits, weight, p[4] << 8 | p[5],
                     p[6] << 8 | p[7]);
    assert_int_equal(sb.len, 8 + 2 * (size_t)ndigits);
    for (int i = 0; i < ndigits && n < 200; i++)
        n += snprintf(got + n, sizeof got - (size_t)n, " %d", p[8 + 2 * i] << 8 | p[9 + 2 * i]);
    if (strcmp(got, want) != 0)
        fail_msg("%s: got \"%s\", want \"%s\"", text, got, want);
    tgt_sbuf_deinit(&sb);
}

static void test_numeric(void **state)
{
    (void)state;
    numeric_is("0", "0 0 0000 0:");
    numeric_is("-0.00", "0 0 0000 2:");
    numeric_is("0e5", "0 0 0000 0:");
    numeric_is("0.0e-3", "0 0 0000 4:");
    numeric_is("1.50", "2 0 0000 2: 1 5000");
    numeric_is("-12.50", "2 0 4000 2: 12 5000");
    numeric_is("1.5E-7", "1 -2 0000 8: 15");
    numeric_is("1e400", "1 100 0000 0: 1");
    numeric_is("1E+2", "1 0 0000 0: 100");
    numeric_is("12345.6789", "3 1 0000 4: 1 2345 6789");
    numeric_is("10000", "1 1 0000 0: 1");
    numeric_is("99999999", "2 1 0000 0: 9999 9999");
    numeric_is("0.0001", "1 -1 0000 4: 1");
    numeric_is("0.00010", "1 -1 0000 5: 1");
    numeric_is("1234.5678e2", "3 1 0000 2: 12 3456 7800");
    numeric_is("1234.5678e-2", "3 0 0000 6: 12 3456 7800");
    numeric_is("-9.999e-3", "2 -1 4000 6: 99 9900");
    numeric_is("NaN", "0 0 c000 0:");
    numeric_is("Infinity", "0 0 d000 0:");
    numeric_is("-Infinity", "0 0 f000 0:");
}

static void test_numeric_long(void **state)
{
    (void)state;
    /* 9 x 131072: 32768 groups of 9999 */
    size_t n = 131072;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, '9', n);
    big[n] = '\0';
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    pg_binary_numeric(&sb, big, n);
    assert_true(tgt_sbuf_ok(&sb));
    const unsigned char *p = (const unsigned char *)sb.data;
    assert_int_equal(p[0] << 8 | p[1], 32768);
    assert_int_equal((int16_t)(p[2] << 8 | p[3]), 32767);
    assert_int_equal(sb.len, 8 + 2 * 32768);
    assert_int_equal(p[sb.len - 2] << 8 | p[sb.len - 1], 9999);
    tgt_sbuf_deinit(&sb);
    free(big);
}

static tgt_datetime stamp(const char *text)
{
    tgt_datetime v;
    const char *why = NULL;
    if (!tgt_datetime_parse_timestamp(text, strlen(text), &v, &why))
        fail_msg("%s: %s", text, why);
    return v;
}

static int64_t usecs(const char *text, int utc)
{
    tgt_datetime v = stamp(text);
    int64_t us = 0;
    if (pg_binary_timestamp(&v, utc, &us) != 0)
        fail_msg("%s refused", text);
    return us;
}

#define DAY INT64_C(86400000000)
#define SEC INT64_C(1000000)

static void test_timestamp(void **state)
{
    (void)state;
    assert_true(usecs("2000-01-01T00:00:00Z", 1) == 0);
    assert_true(usecs("2000-01-01", 1) == 0);
    assert_true(usecs("2000-01-02 00:00:01", 1) == DAY + SEC);
    assert_true(usecs("1999-12-31T23:59:59.999999Z", 1) == -1);
    assert_true(usecs("2000-01-01T05:30:00+05:30", 1) == 0);
    assert_true(usecs("2000-01-01T05:30:00+05:30", 0) == 5 * 3600 * SEC + 30 * 60 * SEC);
    assert_true(usecs("1999-12-31T16:00:00-08:00", 1) == 0);
    assert_true(usecs("2000-01-01T00:00:00.5Z", 1) == SEC / 2);
    assert_true(usecs("1999-12-31T23:59:60Z", 1) == 0);
    assert_true(usecs("1999-12-31T24:00:00Z", 1) == 0);
    assert_true(usecs("2000-01-01T00:00:00.0000004Z", 1) == 0);
    assert_true(usecs("2000-01-01T00:00:00.0000016Z", 1) == 2);
    assert_true(usecs("2000-01-01T00:00:00.9999999Z", 1) == SEC);
    assert_true(usecs("2000-03-01T00:00:00Z", 1) == 60 * DAY); /* 2000 is a leap year */
    assert_true(usecs("1970-01-01T00:00:00Z", 1) == -INT64_C(946684800) * SEC);
    assert_true(usecs("0001-01-01T00:00:00Z", 1) == -INT64_C(63082281600) * SEC);
    assert_true(usecs("9999-12-31T23:59:59.999999Z", 1) == INT64_C(252455615999999999));
    assert_true(usecs("1900-01-01T05:21:10+05:21:10", 1) == -INT64_C(3155673600) * SEC);
    /* past 24:00:00 once rounded: the server's input refuses it */
    tgt_datetime v = stamp("2020-01-01T23:59:60.5Z");
    int64_t us;
    assert_int_equal(pg_binary_timestamp(&v, 1, &us), -1);
}

static void test_date_time(void **state)
{
    (void)state;
    tgt_datetime v;
    assert_true(tgt_datetime_parse_date("2000-01-01", 10, &v, NULL));
    assert_int_equal(pg_binary_date(&v), 0);
    assert_true(tgt_datetime_parse_date("1999-12-31", 10, &v, NULL));
    assert_int_equal(pg_binary_date(&v), -1);
    assert_true(tgt_datetime_parse_date("2024-02-29", 10, &v, NULL));
    assert_int_equal(pg_binary_date(&v), 8825);
    int64_t us;
    assert_true(tgt_datetime_parse_time("24:00:00", 8, &v, NULL));
    assert_int_equal(pg_binary_time(&v, &us), 0);
    assert_true(us == DAY);
    assert_true(tgt_datetime_parse_time("02:00:00.25+05:30", 17, &v, NULL));
    tgt_datetime_time_to_utc(&v);
    assert_int_equal(pg_binary_time(&v, &us), 0);
    assert_true(us == (20 * 3600 + 30 * 60) * SEC + SEC / 4);
    assert_true(tgt_datetime_parse_time("23:59:59.9999999", 16, &v, NULL));
    assert_int_equal(pg_binary_time(&v, &us), 0);
    assert_true(us == DAY);
    assert_true(tgt_datetime_parse_time("23:59:60.5", 10, &v, NULL));
    assert_int_equal(pg_binary_time(&v, &us), -1);
}

static void test_float(void **state)
{
    (void)state;
    double d;
    float f;
    assert_int_equal(pg_binary_float8("1.5", 3, &d), 0);
    assert_true(d == 1.5);
    assert_int_equal(pg_binary_float8("-Infinity", 9, &d), 0);
    assert_true(d < 0 && d * 0.5 == d);
    assert_int_equal(pg_binary_float8("4.9e-324", 8, &d), 0); /* a denormal is kept */
    assert_true(d > 0);
    assert_int_equal(pg_binary_float8("1e-324", 6, &d), -1);  /* rounds to 0 */
    assert_int_equal(pg_binary_float8("1.8e308", 7, &d), -1); /* overflows */
    assert_int_equal(pg_binary_float4("3.4e38", 6, &f), 0);
    assert_int_equal(pg_binary_float4("3.5e38", 6, &f), -1);
    assert_int_equal(pg_binary_float4("0.1", 3, &f), 0);
    assert_true(f == 0.1f);
}

static void add_column(tgt_table *t, const char *name, tgt_type_kind kind, tgt_column_role role)
{
    t->columns = realloc(t->columns, (t->n_columns + 1) * sizeof *t->columns);
    assert_non_null(t->columns);
    tgt_column *c = &t->columns[t->n_columns++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->type = c->live_type = tgt_type_make(kind);
    c->role = role;
    c->exists = 1;
}

static void test_row_layout(void **state)
{
    (void)state;
    tgt_table t;
    tgt_table_init(&t);
    add_column(&t, "i", TGT_T_INTEGER, TGT_COL_DATA);
    add_column(&t, "s", TGT_T_TEXT, TGT_COL_DATA);
    add_column(&t, "j", TGT_T_JSONB, TGT_COL_DATA);
    add_column(&t, "n", TGT_T_TEXT, TGT_COL_DATA);
    assert_int_equal(tgt_pg_binary_table(&t), 1);
    const tgt_row_ops *ops = &tgt_pg_binary_row_ops;
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    size_t nuls = 0;
    tgt_row_writer w = {.out = &sb, .table = &t, .nul_count = &nuls};
    ops->put_integer(&w, "-2", 2);
    ops->put_json_string(&w, "a\\tb\\u0000", 10, 1);
    ops->put_json(&w, "[1]", 3);
    ops->put_null(&w);
    ops->end_staged_row(&w, 7, (const unsigned char[]){1, 1, 0, 1});
    static const char want[] = "\0\6"                      /* 6 fields */
                               "\0\0\0\4\377\377\377\376"  /* integer -2 */
                               "\0\0\0\6a\tb\357\277\275"  /* text, U+FFFD */
                               "\0\0\0\4\1[1]"             /* jsonb v1 */
                               "\377\377\377\377"          /* NULL */
                               "\0\0\0\10\0\0\0\0\0\0\0\7" /* sequence */
                               "\0\0\0\0041101";           /* presence */
    assert_true(tgt_sbuf_ok(&sb));
    assert_int_equal(sb.len, sizeof want - 1);
    assert_memory_equal(sb.data, want, sizeof want - 1);
    assert_int_equal(nuls, 1);

    /* a column of a type it has no binary form for: the table goes as text */
    add_column(&t, "u", TGT_T_OTHER, TGT_COL_DATA);
    assert_int_equal(tgt_pg_binary_table(&t), 0);
    tgt_sbuf_reset(&sb);
    tgt_row_writer w2 = {.out = &sb, .table = &t, .nul_count = &nuls};
    ops->put_integer(&w2, "-2", 2);
    ops->put_text(&w2, "x\ty", 3);
    ops->put_json(&w2, "[1]", 3);
    ops->put_null(&w2);
    ops->put_text(&w2, "u", 1);
    ops->end_row(&w2);
    assert_string_equal(sb.data, "-2\tx\\ty\t[1]\t\\N\tu\n");
    /* the target's own time column must have the type target-pg gives it */
    t.n_columns = 2;
    add_column(&t, "loaded", TGT_T_TEXT, TGT_COL_LOADED_AT);
    assert_int_equal(tgt_pg_binary_table(&t), 0);
    t.columns[2].live_type = tgt_type_make(TGT_T_TIMESTAMPTZ);
    assert_int_equal(tgt_pg_binary_table(&t), 1);
    tgt_sbuf_deinit(&sb);
    tgt_table_deinit(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numeric),   cmocka_unit_test(test_numeric_long),
        cmocka_unit_test(test_timestamp), cmocka_unit_test(test_date_time),
        cmocka_unit_test(test_float),     cmocka_unit_test(test_row_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

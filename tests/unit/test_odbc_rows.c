/*
 * test_odbc_rows.c - unit tests for the ODBC driver's row writer
 * (drivers/odbc/odbc_rows.c): the value framing of its bulk format, the
 * canonical text of each kind (timestamps moved to UTC across days, years,
 * leap days, 24:00 and a leap second; fraction digits kept), JSON string
 * decoding (escapes, surrogate pairs, U+0000 -> U+FFFD counted) and the
 * staged-row trailer.  Bytes only; loading them is tested against SQLite
 * in tests/integration/test_odbc_sqlite.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "datetime.h"
#include "odbc/odbc_internal.h"

typedef struct writer {
    tgt_sbuf out;
    tgt_table table;
    size_t nuls;
    tgt_row_writer w;
} writer;

static void writer_init(writer *x, size_t n_columns)
{
    tgt_sbuf_init(&x->out);
    tgt_table_init(&x->table);
    x->table.n_columns = n_columns;
    x->nuls = 0;
    x->w.out = &x->out;
    x->w.table = &x->table;
    x->w.column = 0;
    x->w.nul_count = &x->nuls;
}

static void writer_deinit(writer *x)
{
    x->table.n_columns = 0;
    tgt_table_deinit(&x->table);
    tgt_sbuf_deinit(&x->out);
}

/* The one value in x->out: its bytes, after checking the framing. */
static void value_is(writer *x, const char *want)
{
    assert_true(tgt_sbuf_ok(&x->out));
    assert_true(x->out.len >= 5);
    assert_int_equal(x->out.data[0], ODBC_TAG_VALUE);
    uint32_t n;
    memcpy(&n, x->out.data + 1, 4);
    assert_int_equal(x->out.len, 5 + (size_t)n);
    if (n != strlen(want) || memcmp(x->out.data + 5, want, n) != 0)
        fail_msg("got \"%.*s\", want \"%s\"", (int)n, x->out.data + 5, want);
    assert_int_equal(x->w.column, 1);
}

static void timestamp_is(const char *in, const char *want)
{
    tgt_datetime v;
    const char *why = NULL;
    if (!tgt_datetime_parse_timestamp(in, strlen(in), &v, &why))
        fail_msg("%s: %s", in, why);
    writer x;
    writer_init(&x, 1);
    odbc_row_ops.put_timestamp(&x.w, &v);
    value_is(&x, want);
    writer_deinit(&x);
}

static void test_timestamps_in_utc(void **state)
{
    (void)state;
    timestamp_is("2020-01-01T10:00:00+05:00", "2020-01-01 05:00:00");
    timestamp_is("2020-01-01T02:00:00+05:30", "2019-12-31 20:30:00");
    timestamp_is("2020-02-28T23:30:00-01:00", "2020-02-29 00:30:00");
    timestamp_is("2021-02-28T23:30:00-01:00", "2021-03-01 00:30:00");
    timestamp_is("2020-12-31T24:00:00Z", "2021-01-01 00:00:00");
    timestamp_is("2016-12-31T23:59:60Z", "2017-01-01 00:00:00");
    timestamp_is("1969-12-31T23:00:00-02:00", "1970-01-01 01:00:00");
    timestamp_is("2020-01-01T00:00:00.123456789Z", "2020-01-01 00:00:00.123456789");
    timestamp_is("2020-01-01 12:34:56.5", "2020-01-01 12:34:56.5");
    timestamp_is("2020-03-01", "2020-03-01 00:00:00");
    timestamp_is("2020-06-01T12:00:00+05:21:10", "2020-06-01 06:38:50");
}

static void test_dates_times_and_numbers(void **state)
{
    (void)state;
    tgt_datetime v;
    writer x;
    writer_init(&x, 1);
    assert_true(tgt_datetime_parse_date("2021-03-04", 10, &v, NULL));
    odbc_row_ops.put_date(&x.w, &v);
    value_is(&x, "2021-03-04");
    writer_deinit(&x);

    writer_init(&x, 1);
    assert_true(tgt_datetime_parse_time("02:00:00.25+05:30", 17, &v, NULL));
    tgt_datetime_time_to_utc(&v);
    odbc_row_ops.put_time(&x.w, &v);
    value_is(&x, "20:30:00.25");
    writer_deinit(&x);

    writer_init(&x, 1);
    odbc_row_ops.put_numeric(&x.w, "-12.50", 6);
    value_is(&x, "-12.50");
    writer_deinit(&x);

    writer_init(&x, 1);
    odbc_row_ops.put_bool(&x.w, 1);
    value_is(&x, "1");
    writer_deinit(&x);
}

static void json_string_is(const char *raw, const char *want, size_t want_nuls)
{
    writer x;
    writer_init(&x, 1);
    odbc_row_ops.put_json_string(&x.w, raw, strlen(raw), strchr(raw, '\\') != NULL);
    value_is(&x, want);
    assert_int_equal(x.nuls, want_nuls);
    writer_deinit(&x);
}

static void test_json_strings_decoded(void **state)
{
    (void)state;
    json_string_is("plain", "plain", 0);
    json_string_is("a\\\"b\\\\c\\/d", "a\"b\\c/d", 0);
    json_string_is("tab\\there\\nnl", "tab\there\nnl", 0);
    json_string_is("caf\\u00e9", "caf\xc3\xa9", 0);
    json_string_is("\\ud83d\\ude00!", "\xf0\x9f\x98\x80!", 0);
    json_string_is("a\\u0000b\\u0000",
                   "a\xef\xbf\xbd"
                   "b\xef\xbf\xbd",
                   2);
    json_string_is("lone \\ud800 surrogate", "lone \xef\xbf\xbd surrogate", 0);
}

static void test_null_and_staged_trailer(void **state)
{
    (void)state;
    writer x;
    writer_init(&x, 3);
    odbc_row_ops.put_null(&x.w);
    assert_int_equal(x.w.column, 1);
    const unsigned char carried[3] = {1, 0, 1};
    odbc_row_ops.end_staged_row(&x.w, 42, carried);
    assert_true(tgt_sbuf_ok(&x.out));
    assert_int_equal(x.out.len, 1 + 1 + 8 + 4 + 3);
    assert_int_equal(x.out.data[0], ODBC_TAG_NULL);
    assert_int_equal(x.out.data[1], ODBC_TAG_STAGED);
    uint64_t seq;
    uint32_t n;
    memcpy(&seq, x.out.data + 2, 8);
    memcpy(&n, x.out.data + 10, 4);
    assert_int_equal(seq, 42);
    assert_int_equal(n, 3);
    assert_memory_equal(x.out.data + 14, "101", 3);

    tgt_sbuf_reset(&x.out);
    odbc_row_ops.end_staged_row(&x.w, 7, NULL);
    assert_int_equal(x.out.len, 1 + 8 + 4);
    memcpy(&n, x.out.data + 9, 4);
    assert_int_equal(n, 0);
    writer_deinit(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timestamps_in_utc),
        cmocka_unit_test(test_dates_times_and_numbers),
        cmocka_unit_test(test_json_strings_decoded),
        cmocka_unit_test(test_null_and_staged_trailer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

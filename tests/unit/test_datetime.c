/*
 * test_datetime.c - unit tests for datetime.c: the accepted ISO 8601 forms,
 * the range checks (Gregorian leap years, leap seconds, 24:00:00) and the
 * reasons given for each rejection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "datetime.h"

static int ts(const char *s)
{
    return tgt_datetime_check_timestamp(s, strlen(s), NULL);
}

static const char *ts_why(const char *s)
{
    const char *why = "(untouched)";
    assert_int_equal(tgt_datetime_check_timestamp(s, strlen(s), &why), 0);
    return why;
}

static const char *date_why(const char *s)
{
    const char *why = "(untouched)";
    assert_int_equal(tgt_datetime_check_date(s, strlen(s), &why), 0);
    return why;
}

static const char *time_why(const char *s)
{
    const char *why = "(untouched)";
    assert_int_equal(tgt_datetime_check_time(s, strlen(s), &why), 0);
    return why;
}

static void test_timestamp_valid_forms(void **state)
{
    (void)state;
    static const char *const valid[] = {
        "2019-12-18T13:19:44Z",
        "2019-12-18T13:19:44z",
        "2019-12-18t13:19:44Z",
        "2019-12-18 13:19:44",
        "2019-12-18T13:19:44",
        "2019-12-18T13:19",
        "2019-12-18T13:19Z",
        "2019-12-18T13:19:44+00:00",
        "2019-12-18T13:19:44-05:30",
        "2019-12-18T13:19:44+0530",
        "2019-12-18T13:19:44-08",
        "2019-12-18T13:19:44+15:59",
        /* offsets with seconds: Python's historical local mean times */
        "1900-01-01T05:21:10+05:21:10",
        "1890-01-01T00:00:00-00:01:15",
        "2019-12-18T13:19:44.5+15:59:59",
        "2019-12-18T13:19:44.1Z",
        "2019-12-18T13:19:44.12Z",
        "2019-12-18T13:19:44.123Z",
        "2019-12-18T13:19:44.1234+01:00",
        "2019-12-18T13:19:44.12345",
        "2019-12-18T13:19:44.123456Z",
        "2019-12-18T13:19:44.1234567Z",
        "2019-12-18T13:19:44.12345678Z",
        "2019-12-18T13:19:44.123456789Z",
        "2019-12-18T13:19:44.123456789012345678Z",
        "2019-12-18",
        "2020-02-29T00:00:00Z",
        "2000-02-29T12:00:00Z",
        "2016-12-31T23:59:60Z",
        "2019-12-18T24:00:00Z",
        "2019-12-18T24:00",
        "2019-12-18T24:00:00.000Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
    };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        const char *why = NULL;
        int ok = tgt_datetime_check_timestamp(valid[i], strlen(valid[i]), &why);
        if (!ok)
            fail_msg("%s rejected: %s", valid[i], why);
    }
}

static void test_timestamp_invalid_forms(void **state)
{
    (void)state;
    static const char *const invalid[] = {
        "0000-01-01T00:00:00Z",
        "2019-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2019-13-01T00:00:00Z",
        "2019-00-01T00:00:00Z",
        "2019-01-32T00:00:00Z",
        "2019-01-00T00:00:00Z",
        "2019-04-31T00:00:00Z",
        "2019-12-18T24:00:01Z",
        "2019-12-18T24:01:00Z",
        "2019-12-18T24:00:00.000001Z",
        "2019-12-18T25:00:00Z",
        "2019-12-18T13:60:00Z",
        "2019-12-18T13:19:61Z",
        "2019-12-18T13:19:44+25:00",
        "2019-12-18T13:19:44+16",
        "2019-12-18T13:19:44+01:60",
        "2019-12-18T13:19:44+00:00+00:00",
        "2019-12-18T13:19:44Zjunk",
        "2019-12-18T13:19:44junk",
        "2019-12-18T13:19:44 ",
        "2019-12-18 ",
        "2019-12-18T",
        "2019-12-18X13:19:44",
        "2019-12-18T13:19:44.",
        "2019-12-18T13:19:44.Z",
        "2019-12-18T13:19:4",
        "2019-12-18T13:1",
        "2019-12-18T13",
        "2019-12-18T13:19:44+1",
        "2019-12-18T13:19:44+01:3",
        "2019-12-18T13:19:44+013",
        "2019-12-18T13:19:44+",
        "1900-01-01T05:21:10+05:21:1",
        "1900-01-01T05:21:10+052110", /* PostgreSQL refuses it */
        "1900-01-01T05:21:10+05:21:60",
        "1900-01-01T05:21:10+05:2110",
        "1900-01-01T05:21:10+0521:10",
        "1900-01-01T05:21:10+05:21:10:00",
        "1900-01-01T05:21:10+05:21:10Z",
        "1900-01-01T05:21:10+05:21:",
        "1900-01-01T05:21:10+16:00:00",
        "",
        "2020-1-1",
        "2020-01-1",
        "20200101",
        "12020-01-01",
        "-2020-01-01",
        "NaN",
        "now",
        " 2019-12-18T13:19:44Z",
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        if (ts(invalid[i]))
            fail_msg("%s accepted", invalid[i]);
}

static void test_timestamp_reasons(void **state)
{
    (void)state;
    assert_string_equal(ts_why("0000-01-01T00:00:00Z"), "year 0 out of range");
    assert_string_equal(ts_why("2019-13-01T00:00:00Z"), "month 13 out of range");
    assert_string_equal(ts_why("2019-00-01"), "month 00 out of range");
    assert_string_equal(ts_why("2019-02-30T00:00:00Z"), "day 30 out of range for February");
    assert_string_equal(ts_why("2019-02-29"), "day 29 out of range for February (not a leap year)");
    assert_string_equal(ts_why("1900-02-29"), "day 29 out of range for February (not a leap year)");
    assert_string_equal(ts_why("2019-06-31"), "day 31 out of range for June");
    assert_string_equal(ts_why("2019-01-32"), "day 32 out of range");
    assert_string_equal(ts_why("2019-01-00"), "day 00 out of range");
    assert_string_equal(ts_why("2019-12-18T25:00:00Z"), "hour 25 out of range");
    assert_string_equal(ts_why("2019-12-18T24:00:01Z"), "hour 24 allowed only as 24:00:00");
    assert_string_equal(ts_why("2019-12-18T13:60:00Z"), "minute 60 out of range");
    assert_string_equal(ts_why("2019-12-18T13:19:61Z"), "second 61 out of range");
    assert_string_equal(ts_why("2019-12-18T13:19:44+25:00"), "bad UTC offset");
    assert_string_equal(ts_why("2019-12-18T13:19:44+1"), "bad UTC offset");
    assert_string_equal(ts_why("2019-12-18T13:19:44+00:00+00:00"),
                        "unexpected text after the UTC offset");
    assert_string_equal(ts_why("2019-12-18T13:19:44Z "), "unexpected text after the UTC offset");
    assert_string_equal(ts_why("2019-12-18T13:19:44junk"), "not an ISO 8601 date-time");
    assert_string_equal(ts_why(""), "not an ISO 8601 date-time");
    assert_string_equal(ts_why("NaN"), "not an ISO 8601 date-time");
    assert_string_equal(ts_why("2020-1-1"), "not an ISO 8601 date-time");
}

static void test_why_may_be_null(void **state)
{
    (void)state;
    assert_int_equal(tgt_datetime_check_timestamp("2019-13-01", 10, NULL), 0);
    assert_int_equal(tgt_datetime_check_date("x", 1, NULL), 0);
    assert_int_equal(tgt_datetime_check_time("25:00", 5, NULL), 0);
}

/* Lengths are honoured: bytes past n are never looked at. */
static void test_length_not_nul(void **state)
{
    (void)state;
    const char *s = "2019-12-18T13:19:44Zjunk";
    assert_int_equal(tgt_datetime_check_timestamp(s, 20, NULL), 1);
    assert_int_equal(tgt_datetime_check_timestamp(s, 10, NULL), 1);
    assert_int_equal(tgt_datetime_check_timestamp(s, 11, NULL), 0);
    assert_int_equal(tgt_datetime_check_timestamp(s, 0, NULL), 0);
    assert_int_equal(tgt_datetime_check_date(s, 10, NULL), 1);
    assert_int_equal(tgt_datetime_check_time(s + 11, 8, NULL), 1);
}

static void test_leap_years(void **state)
{
    (void)state;
    assert_int_equal(ts("2020-02-29"), 1);
    assert_int_equal(ts("2000-02-29"), 1);
    assert_int_equal(ts("2400-02-29"), 1);
    assert_int_equal(ts("0004-02-29"), 1);
    assert_int_equal(ts("2019-02-29"), 0);
    assert_int_equal(ts("1900-02-29"), 0);
    assert_int_equal(ts("2100-02-29"), 0);
    assert_int_equal(ts("2020-02-30"), 0);
    static const char *const last_days[] = {"2019-01-31", "2019-02-28", "2019-03-31", "2019-04-30",
                                            "2019-05-31", "2019-06-30", "2019-07-31", "2019-08-31",
                                            "2019-09-30", "2019-10-31", "2019-11-30", "2019-12-31"};
    for (size_t m = 0; m < 12; m++) {
        char day_after[11];
        memcpy(day_after, last_days[m], sizeof day_after);
        assert_int_equal(ts(day_after), 1);
        day_after[9]++; /* the last digit of the day is never 9 here */
        if (ts(day_after))
            fail_msg("%s accepted", day_after);
    }
}

static void test_date(void **state)
{
    (void)state;
    assert_int_equal(tgt_datetime_check_date("2020-02-29", 10, NULL), 1);
    assert_int_equal(tgt_datetime_check_date("9999-12-31", 10, NULL), 1);
    assert_string_equal(date_why("2019-02-29"),
                        "day 29 out of range for February (not a leap year)");
    assert_string_equal(date_why("0000-01-01"), "year 0 out of range");
    assert_string_equal(date_why("2019-13-01"), "month 13 out of range");
    assert_string_equal(date_why("2020-01-31T10:00:00Z"), "not an ISO 8601 date (YYYY-MM-DD)");
    assert_string_equal(date_why("2020-1-1"), "not an ISO 8601 date (YYYY-MM-DD)");
    assert_string_equal(date_why(""), "not an ISO 8601 date (YYYY-MM-DD)");
}

static void test_time(void **state)
{
    (void)state;
    static const char *const valid[] = {
        "00:00",    "23:59", "13:19:44",  "13:19:44.5",     "13:19:44.123456789", "23:59:60",
        "24:00:00", "24:00", "13:19:44Z", "13:19:44+05:30", "13:19-0800"};
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        if (!tgt_datetime_check_time(valid[i], strlen(valid[i]), NULL))
            fail_msg("%s rejected", valid[i]);
    assert_string_equal(time_why("24:00:01"), "hour 24 allowed only as 24:00:00");
    assert_string_equal(time_why("24:00:00.5"), "hour 24 allowed only as 24:00:00");
    assert_string_equal(time_why("25:00"), "hour 25 out of range");
    assert_string_equal(time_why("12:60"), "minute 60 out of range");
    assert_string_equal(time_why("12:00:99"), "second 99 out of range");
    assert_string_equal(time_why("12:00:00+16:00"), "bad UTC offset");
    assert_string_equal(time_why("1:00"), "not an ISO 8601 time");
    assert_string_equal(time_why("12"), "not an ISO 8601 time");
    assert_string_equal(time_why("12:00:00."), "not an ISO 8601 time");
    assert_string_equal(time_why("2019-12-18T13:19:44Z"), "not an ISO 8601 time");
    assert_string_equal(time_why(""), "not an ISO 8601 time");
}

static void test_offset_reasons(void **state)
{
    (void)state;
    assert_string_equal(ts_why("1900-01-01T05:21:10+05:21:1"), "bad UTC offset");
    assert_string_equal(ts_why("1900-01-01T05:21:10+05:21:60"), "bad UTC offset");
    assert_string_equal(ts_why("1900-01-01T05:21:10+05:2110"), "bad UTC offset");
    assert_string_equal(ts_why("1900-01-01T05:21:10+052110"),
                        "unexpected text after the UTC offset");
    assert_string_equal(ts_why("1900-01-01T05:21:10+05:21:10Z"),
                        "unexpected text after the UTC offset");
    assert_string_equal(ts_why("1900-01-01T05:21:10+05:21:10:00"),
                        "unexpected text after the UTC offset");
    assert_string_equal(ts_why("1900-01-01T05:21:10+05x"), "unexpected text after the UTC offset");
}

/* tgt_datetime_time_utc: "HH:MM:SS" in UTC plus the fraction's place. */
static void check_utc(const char *in, int converted, const char *hms, const char *fraction)
{
    char got[TGT_DATETIME_HMS_LEN + 1] = {0};
    size_t frac = 99, frac_len = 99;
    assert_int_equal(tgt_datetime_time_utc(in, strlen(in), got, &frac, &frac_len), converted);
    if (!converted)
        return;
    if (strcmp(got, hms) != 0)
        fail_msg("%s: got %s, want %s", in, got, hms);
    if (frac_len != strlen(fraction) || memcmp(in + frac, fraction, frac_len) != 0)
        fail_msg("%s: fraction %.*s, want %s", in, (int)frac_len, in + frac, fraction);
}

static void test_time_utc(void **state)
{
    (void)state;
    check_utc("10:00:00", 0, "", "");
    check_utc("10:00", 0, "", "");
    check_utc("garbage", 0, "", "");
    check_utc("10:00:00+05:30", 1, "04:30:00", "");
    check_utc("10:00+0530", 1, "04:30:00", "");
    check_utc("01:00:00.123+05:30", 1, "19:30:00", ".123");
    check_utc("23:00:00-02", 1, "01:00:00", "");
    check_utc("05:21:10+05:21:10", 1, "00:00:00", "");
    check_utc("00:00:00-00:01:15", 1, "00:01:15", "");
    check_utc("13:19:44.5Z", 1, "13:19:44", ".5");
    check_utc("24:00:00+00:00", 1, "24:00:00", "");
    check_utc("24:00:00+05:00", 1, "19:00:00", "");
    check_utc("23:59:60Z", 1, "23:59:60", "");
    check_utc("23:59:60+01:00", 1, "23:00:00", "");
}

/* The parts a driver's row writer gets (row.h): as written, offset kept. */
static void test_parts(void **state)
{
    (void)state;
    tgt_datetime v;
    const char *s = "2020-02-29T23:05:07.123-05:30";
    assert_int_equal(tgt_datetime_parse_timestamp(s, strlen(s), &v, NULL), 1);
    assert_ptr_equal(v.text, s);
    assert_int_equal(v.len, strlen(s));
    assert_int_equal(v.year, 2020);
    assert_int_equal(v.month, 2);
    assert_int_equal(v.day, 29);
    assert_int_equal(v.hour, 23);
    assert_int_equal(v.minute, 5);
    assert_int_equal(v.second, 7);
    assert_int_equal(v.fraction_len, 3);
    assert_memory_equal(s + v.fraction, "123", 3);
    assert_int_equal(v.utc_offset, -(5 * 3600 + 30 * 60));
    assert_int_equal(v.has_time, 1);
    assert_int_equal(v.has_offset, 1);

    assert_int_equal(tgt_datetime_parse_timestamp("2020-01-31", 10, &v, NULL), 1);
    assert_int_equal(v.has_time, 0);
    assert_int_equal(v.has_offset, 0);
    assert_int_equal(v.day, 31);
    assert_int_equal(tgt_datetime_parse_timestamp("2020-01-31 10:00Z", 17, &v, NULL), 1);
    assert_int_equal(v.has_offset, 1);
    assert_int_equal(v.utc_offset, 0);
    assert_int_equal(v.fraction_len, 0);

    const char *why = NULL;
    assert_int_equal(tgt_datetime_parse_date("2021-02-29", 10, &v, &why), 0);
    assert_non_null(why);

    /* a time moves round the clock to UTC; the text stays as written */
    assert_int_equal(tgt_datetime_parse_time("02:00:00.5+05:30", 16, &v, NULL), 1);
    tgt_datetime_time_to_utc(&v);
    assert_int_equal(v.hour, 20);
    assert_int_equal(v.minute, 30);
    assert_int_equal(v.second, 0);
    assert_int_equal(v.utc_offset, 0);
    assert_int_equal(v.has_offset, 1);
    assert_memory_equal(v.text + v.fraction, "5", 1);
    assert_int_equal(tgt_datetime_parse_time("24:00:00Z", 9, &v, NULL), 1);
    tgt_datetime_time_to_utc(&v);
    assert_int_equal(v.hour, 24);
}

static void test_date_prefix(void **state)
{
    (void)state;
    const char *s = "2020-01-31T10:00:00Z";
    assert_int_equal(tgt_datetime_date_prefix(s, strlen(s)), 10);
    assert_int_equal(tgt_datetime_date_prefix("2020-01-31", 10), 10);
    assert_int_equal(tgt_datetime_date_prefix("2020-01-31 10:00:00.5+01", 24), 10);
    assert_int_equal(tgt_datetime_date_prefix("2020-02-30T10:00:00Z", 20), 0);
    assert_int_equal(tgt_datetime_date_prefix("2020-01-31T25:00:00Z", 20), 0);
    assert_int_equal(tgt_datetime_date_prefix("2020-01-31T", 11), 0);
    assert_int_equal(tgt_datetime_date_prefix("", 0), 0);
}

/* Every one-byte change to a valid timestamp, cut at every length: no crash
 * and no read past n (each candidate sits in an exact-size malloc block, so
 * ASan catches an overread). */
static void test_no_overread(void **state)
{
    (void)state;
    const char *base = "2019-12-18T13:19:44.123+05:30:10";
    size_t n = strlen(base);
    static const char alphabet[] = "0129:-+.TZ ";
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < sizeof alphabet - 1; k++) {
            for (size_t len = 0; len <= n; len++) {
                char *s = malloc(len ? len : 1);
                assert_non_null(s);
                memcpy(s, base, len);
                if (i < len)
                    s[i] = alphabet[k];
                (void)tgt_datetime_check_timestamp(s, len, NULL);
                (void)tgt_datetime_check_date(s, len, NULL);
                (void)tgt_datetime_date_prefix(s, len);
                if (len > 11) {
                    char hms[TGT_DATETIME_HMS_LEN];
                    size_t frac, frac_len;
                    (void)tgt_datetime_check_time(s + 11, len - 11, NULL);
                    (void)tgt_datetime_time_utc(s + 11, len - 11, hms, &frac, &frac_len);
                }
                free(s);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timestamp_valid_forms),
        cmocka_unit_test(test_timestamp_invalid_forms),
        cmocka_unit_test(test_timestamp_reasons),
        cmocka_unit_test(test_why_may_be_null),
        cmocka_unit_test(test_length_not_nul),
        cmocka_unit_test(test_leap_years),
        cmocka_unit_test(test_date),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_offset_reasons),
        cmocka_unit_test(test_time_utc),
        cmocka_unit_test(test_parts),
        cmocka_unit_test(test_date_prefix),
        cmocka_unit_test(test_no_overread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

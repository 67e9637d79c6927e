/*
 * test_number.c - unit tests for number.c: JSON number texts spelled as
 * plain integer digits for integer columns (exponents and fractions that
 * cancel out, zeros, the range of each kind, hostile exponents), and the
 * numeric / real / double range check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "number.h"

/* The digits of `in` for `kind`, or the reason it was refused. */
static const char *integer(const char *in, tgt_type_kind kind, char out[TGT_NUMBER_INTEGER_MAX])
{
    const char *why = NULL;
    /* an exact-size copy, so an over-read shows under ASan */
    size_t n = strlen(in);
    char *v = malloc(n ? n : 1);
    assert_non_null(v);
    memcpy(v, in, n);
    size_t len = tgt_number_integer_text(v, n, kind, out, &why);
    free(v);
    if (len == 0) {
        assert_non_null(why);
        return why;
    }
    assert_int_equal(strlen(out), len);
    return out;
}

static void expect(const char *in, tgt_type_kind kind, const char *want)
{
    char out[TGT_NUMBER_INTEGER_MAX];
    const char *got = integer(in, kind, out);
    if (strcmp(got, want) != 0)
        fail_msg("%s: got \"%s\", want \"%s\"", in, got, want);
}

static void test_plain_integers(void **state)
{
    (void)state;
    expect("0", TGT_T_BIGINT, "0");
    expect("-0", TGT_T_BIGINT, "0");
    expect("42", TGT_T_BIGINT, "42");
    expect("-7", TGT_T_SMALLINT, "-7");
    expect("9223372036854775807", TGT_T_BIGINT, "9223372036854775807");
    expect("-9223372036854775808", TGT_T_BIGINT, "-9223372036854775808");
    expect("9223372036854775808", TGT_T_BIGINT, "out of range");
    expect("-9223372036854775809", TGT_T_BIGINT, "out of range");
    expect("123456789012345678901234567890", TGT_T_BIGINT, "out of range");
    expect("32767", TGT_T_SMALLINT, "32767");
    expect("-32768", TGT_T_SMALLINT, "-32768");
    expect("32768", TGT_T_SMALLINT, "out of range");
    expect("2147483647", TGT_T_INTEGER, "2147483647");
    expect("-2147483649", TGT_T_INTEGER, "out of range");
}

/* Around the copy-as-is fast path (up to 18 digits, no leading zero): the
 * answer and the range checks must not change at its edges. */
static void test_plain_fast_path_edges(void **state)
{
    (void)state;
    expect("123456789012345678", TGT_T_BIGINT, "123456789012345678");
    expect("-999999999999999999", TGT_T_BIGINT, "-999999999999999999");
    expect("1234567890123456789", TGT_T_BIGINT, "1234567890123456789");
    expect("99999999999999999999", TGT_T_BIGINT, "out of range");
    expect("-2147483648", TGT_T_INTEGER, "-2147483648");
    expect("2147483648", TGT_T_INTEGER, "out of range");
    expect("-32769", TGT_T_SMALLINT, "out of range");
    expect("100000", TGT_T_SMALLINT, "out of range");
    expect("-5", TGT_T_BIGINT, "-5");
}

/* Python's json.dumps writes integral floats from 1e16 up as 1e+16. */
static void test_exponents_and_fractions(void **state)
{
    (void)state;
    expect("1e2", TGT_T_BIGINT, "100");
    expect("1E+2", TGT_T_BIGINT, "100");
    expect("1e+16", TGT_T_BIGINT, "10000000000000000");
    expect("1.5e1", TGT_T_BIGINT, "15");
    expect("-1.5E1", TGT_T_BIGINT, "-15");
    expect("12.000", TGT_T_BIGINT, "12");
    expect("1.0e2", TGT_T_BIGINT, "100");
    expect("100e-2", TGT_T_BIGINT, "1");
    expect("1200e-2", TGT_T_BIGINT, "12");
    expect("0.5e1", TGT_T_BIGINT, "5");
    expect("0.0", TGT_T_BIGINT, "0");
    expect("-0.0e5", TGT_T_BIGINT, "0");
    expect("0e-999999999999", TGT_T_BIGINT, "0");
    expect("9.223372036854775807e18", TGT_T_BIGINT, "9223372036854775807");
    expect("-9.223372036854775808E+18", TGT_T_BIGINT, "-9223372036854775808");
    expect("1.2345678901234567e+16", TGT_T_BIGINT, "12345678901234567");
    expect("3.2767e4", TGT_T_SMALLINT, "32767");
    expect("3.2768e4", TGT_T_SMALLINT, "out of range");
    expect("1e19", TGT_T_BIGINT, "out of range");
    expect("9.223372036854775808e18", TGT_T_BIGINT, "out of range");
    expect("1e999999999999999999999", TGT_T_BIGINT, "out of range");
}

static void test_not_integers(void **state)
{
    (void)state;
    expect("1.5", TGT_T_BIGINT, "not an integer");
    expect("1.5e0", TGT_T_BIGINT, "not an integer");
    expect("1e-2", TGT_T_BIGINT, "not an integer");
    expect("1.05e1", TGT_T_BIGINT, "not an integer");
    expect("10e-2", TGT_T_BIGINT, "not an integer");
    expect("1e-999999999999999999999", TGT_T_BIGINT, "not an integer");
    expect("0.000000000000000000000000001", TGT_T_BIGINT, "not an integer");
}

static int fits(const char *in, tgt_type_kind kind, const char **why)
{
    *why = NULL;
    return tgt_number_fits(in, strlen(in), kind, why);
}

static void test_fits(void **state)
{
    (void)state;
    const char *why;
    assert_true(fits("1e+16", TGT_T_NUMERIC, &why));
    assert_true(fits("-12.50", TGT_T_NUMERIC, &why));
    assert_true(fits("1e308", TGT_T_DOUBLE, &why));
    assert_false(fits("1e309", TGT_T_DOUBLE, &why));
    assert_string_equal(why, "out of range");
    assert_true(fits("1e38", TGT_T_REAL, &why));
    assert_false(fits("1e39", TGT_T_REAL, &why));
    assert_true(fits("0e99999", TGT_T_DOUBLE, &why));
    assert_false(fits("1e1073741823", TGT_T_NUMERIC, &why));
    assert_string_equal(why, "out of range: the exponent is too large for PostgreSQL");
    assert_false(fits("1e-16384", TGT_T_NUMERIC, &why));
    assert_string_equal(why, "out of range: more than 16383 digits after the decimal point");
    assert_false(fits("1e131072", TGT_T_NUMERIC, &why));
    assert_string_equal(why, "out of range: more than 131072 digits before the decimal point");
    assert_true(fits("1e131071", TGT_T_NUMERIC, &why));
    /* the longest texts the no-exponent shortcut accepts (38 bytes) sit
     * inside real's range either way; one byte longer is judged in full */
    assert_true(fits("99999999999999999999999999999999999999", TGT_T_REAL, &why));
    assert_true(fits("0.000000000000000000000000000000000001", TGT_T_REAL, &why));
    assert_true(fits("-0.00000000000000000000000000000000001", TGT_T_REAL, &why));
    assert_false(fits("9999999999999999999999999999999999999999", TGT_T_REAL, &why));
    assert_true(fits("0.0000000000000000000000000000000000000000001", TGT_T_REAL, &why));
    assert_false(fits("0.00000000000000000000000000000000000000000000001", TGT_T_REAL, &why));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_integers), cmocka_unit_test(test_exponents_and_fractions),
        cmocka_unit_test(test_not_integers),   cmocka_unit_test(test_plain_fast_path_edges),
        cmocka_unit_test(test_fits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

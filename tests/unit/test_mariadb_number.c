/*
 * test_mariadb_number.c - unit tests for odbc_mariadb_number.c: which JSON
 * number texts MariaDB's DECIMAL(p,s) holds exactly as written (digits
 * before and after the point, exponents moving the point either way,
 * leading and trailing zeros, zero itself, hostile exponents), and that
 * NaN / Infinity are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "odbc/odbc_mariadb.h"

/* 1 when v fits DECIMAL(p,s); the text is an exact-size copy, so an
 * over-read shows under ASan. */
static int fits(const char *in, int p, int s)
{
    size_t n = strlen(in);
    char *v = malloc(n ? n : 1);
    assert_non_null(v);
    memcpy(v, in, n);
    const char *why = NULL;
    int ok = odbc_mariadb_decimal_fits(v, n, p, s, &why);
    free(v);
    if (!ok)
        assert_non_null(why);
    return ok;
}

static void widest_decimal(void **state)
{
    (void)state;
    /* 35 digits before the point and 30 after: the most DECIMAL(65,30) holds */
    assert_true(fits("12345678901234567890123456789012345.123456789012345678901234567890", 65, 30));
    assert_false(fits("123456789012345678901234567890123456", 65, 30));
    assert_false(fits("0.1234567890123456789012345678901", 65, 30));
    assert_true(fits("-0.000000000000000000000000000001", 65, 30));
    assert_false(fits("-0.0000000000000000000000000000001", 65, 30));
}

static void zeros_do_not_count(void **state)
{
    (void)state;
    assert_true(fits("0", 65, 30));
    assert_true(fits("-0.0", 65, 30));
    assert_true(fits("0e999999999999999999", 65, 30));
    assert_true(fits("000000000000000000000000000000000000001", 65, 30));
    assert_true(fits("1.5000000000000000000000000000000000000000", 65, 30));
    assert_true(fits("12.50", 4, 2));
    assert_false(fits("123.5", 4, 2));
}

static void exponents_move_the_point(void **state)
{
    (void)state;
    assert_true(fits("1e34", 65, 30));
    assert_false(fits("1e35", 65, 30));
    assert_true(fits("1E+34", 65, 30));
    assert_true(fits("1e-30", 65, 30));
    assert_false(fits("1e-31", 65, 30));
    assert_true(fits("1.5e3", 4, 0));
    assert_false(fits("1.55e1", 4, 0));
    assert_true(fits("123456e-3", 6, 3));
    assert_false(fits("1234567e-3", 6, 3));
    /* hostile exponents are refused, never overflow */
    assert_false(fits("1e400", 65, 30));
    assert_false(fits("1e-400", 65, 30));
    assert_false(fits("1e99999999999999999999999", 65, 30));
    assert_false(fits("1e-99999999999999999999999", 65, 30));
}

static void words_are_refused(void **state)
{
    (void)state;
    assert_false(fits("NaN", 65, 30));
    assert_false(fits("Infinity", 65, 30));
    assert_false(fits("-Infinity", 65, 30));
    assert_false(fits("", 65, 30));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(widest_decimal),
        cmocka_unit_test(zeros_do_not_count),
        cmocka_unit_test(exponents_move_the_point),
        cmocka_unit_test(words_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

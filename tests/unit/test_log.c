/*
 * test_log.c - unit tests for tgt_log_escape() (log.c): every control
 * character a name from the input may hold is written as an escape, so a
 * log or error line stays one line and cannot carry terminal sequences;
 * ordinary UTF-8 text is untouched; a cut never splits an escape.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"

static void check(const char *in, const char *want)
{
    char buf[256];
    size_t n = tgt_log_escape(buf, sizeof(buf), in);
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
}

static void test_c0_and_del(void **state)
{
    (void)state;
    check("plain \"name\" 1", "plain \"name\" 1");
    check("a\nMETRIC: {}", "a\\nMETRIC: {}");
    check("\r\t", "\\r\\t");
    check("\x1b[31mred", "\\x1b[31mred");
    check("\x01\x1f\x7f", "\\x01\\x1f\\x7f");
}

static void test_c1_and_utf8(void **state)
{
    (void)state;
    /* U+009B (CSI) and U+0085 (NEL) are controls; U+00A0, é, € and emoji are text */
    check("\xc2\x9b"
          "2J",
          "\\u009b2J");
    check("x\xc2\x85y", "x\\u0085y");
    check("\xc2\xa0\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
          "\xc2\xa0\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    /* a lone 0xc2 at the end is copied, not read past */
    check("a\xc2", "a\xc2");
}

static void test_cut(void **state)
{
    (void)state;
    char buf[6];
    /* "ab\x1b..." needs 6 bytes for "ab\x1b": with cap 6 only "ab" fits */
    assert_int_equal(tgt_log_escape(buf, sizeof(buf),
                                    "ab\x1b"
                                    "cd"),
                     2);
    assert_string_equal(buf, "ab");
    assert_int_equal(tgt_log_escape(buf, sizeof(buf), "abcdefgh"), 5);
    assert_string_equal(buf, "abcde");
    assert_int_equal(tgt_log_escape(buf, 1, "abc"), 0);
    assert_string_equal(buf, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_c0_and_del),
        cmocka_unit_test(test_c1_and_utf8),
        cmocka_unit_test(test_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

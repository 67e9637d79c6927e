/*
 * test_utf8.c - character boundaries and well-formed sequences (utf8.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "utf8.h"

static size_t seq(const char *s, size_t n)
{
    return tgt_utf8_sequence_len((const unsigned char *)s, n);
}

static void test_cut_never_splits_a_character(void **state)
{
    (void)state;
    const char *s = "ab\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"; /* a b é € 😀 */
    size_t len = strlen(s);
    assert_int_equal(tgt_utf8_cut(s, len, 100), len);
    assert_int_equal(tgt_utf8_cut(s, len, 2), 2);
    assert_int_equal(tgt_utf8_cut(s, len, 3), 2); /* inside é */
    assert_int_equal(tgt_utf8_cut(s, len, 4), 4);
    assert_int_equal(tgt_utf8_cut(s, len, 5), 4); /* inside € */
    assert_int_equal(tgt_utf8_cut(s, len, 6), 4);
    assert_int_equal(tgt_utf8_cut(s, len, 7), 7);
    assert_int_equal(tgt_utf8_cut(s, len, 10), 7); /* inside the emoji */
    assert_int_equal(tgt_utf8_cut(s, len, 0), 0);
}

static void test_well_formed_sequences(void **state)
{
    (void)state;
    assert_int_equal(seq("a", 1), 1);
    assert_int_equal(seq("\xC3\xA9", 2), 2);
    assert_int_equal(seq("\xE2\x82\xAC", 3), 3);
    assert_int_equal(seq("\xF0\x9F\x98\x80", 4), 4);
    assert_int_equal(seq("\xF4\x8F\xBF\xBF", 4), 4); /* U+10FFFF */
}

static void test_ill_formed_sequences(void **state)
{
    (void)state;
    assert_int_equal(seq("\x80", 1), 0);             /* a lone continuation byte */
    assert_int_equal(seq("\xC0\xAF", 2), 0);         /* overlong '/' */
    assert_int_equal(seq("\xC1\xBF", 2), 0);         /* overlong */
    assert_int_equal(seq("\xE0\x80\xAF", 3), 0);     /* overlong */
    assert_int_equal(seq("\xED\xA0\x80", 3), 0);     /* a UTF-16 surrogate */
    assert_int_equal(seq("\xF4\x90\x80\x80", 4), 0); /* past U+10FFFF */
    assert_int_equal(seq("\xF5\x80\x80\x80", 4), 0);
    assert_int_equal(seq("\xE2\x82", 2), 0);     /* cut by the end */
    assert_int_equal(seq("\xE2\x82\x41", 3), 0); /* a bad continuation */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cut_never_splits_a_character),
        cmocka_unit_test(test_well_formed_sequences),
        cmocka_unit_test(test_ill_formed_sequences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_bytes.c - tgt_bytes_equal() (bytes.h) against memcmp for every length
 * up to 40 and a difference at every position, on exact-size heap copies so
 * that a read past either range shows under ASan.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "bytes.h"

static unsigned char *copy_of(const unsigned char *src, size_t n)
{
    unsigned char *p = malloc(n ? n : 1);
    assert_non_null(p);
    memcpy(p, src, n);
    return p;
}

static void test_equal_and_each_difference(void **state)
{
    (void)state;
    unsigned char base[40];
    for (size_t i = 0; i < sizeof(base); i++)
        base[i] = (unsigned char)('a' + i % 26);
    for (size_t n = 0; n <= sizeof(base); n++) {
        unsigned char *a = copy_of(base, n), *b = copy_of(base, n);
        assert_int_equal(tgt_bytes_equal(a, b, n), 1);
        for (size_t at = 0; at < n; at++) {
            b[at] ^= 0x80; /* a high bit only: signedness must not matter */
            assert_int_equal(tgt_bytes_equal(a, b, n), 0);
            assert_int_equal(tgt_bytes_equal(b, a, n), 0);
            b[at] ^= 0x80;
        }
        free(a);
        free(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equal_and_each_difference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

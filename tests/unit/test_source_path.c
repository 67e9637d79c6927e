/* Unit tests for source_path.c: the recorded form of a property path (a JSON
 * array of its parts) and reading it back next to the first release's dotted
 * form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "source_path.h"

static void written(const char *const *parts, size_t n, const char *want)
{
    size_t lens[8];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(parts[i]);
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    tgt_source_path_write(parts, lens, n, &sb);
    assert_true(tgt_sbuf_ok(&sb));
    assert_string_equal(tgt_sbuf_str(&sb), want);
    tgt_sbuf_deinit(&sb);
}

static void test_write(void **state)
{
    (void)state;
    const char *nested[] = {"a", "b"};
    const char *dotted[] = {"a.b"};
    const char *odd[] = {"q\"u\\o", "t\tab\x01", "Zo\xc3\xab"};
    written(nested, 2, "[\"a\",\"b\"]");
    written(dotted, 1, "[\"a.b\"]");
    written(odd, 3, "[\"q\\\"u\\\\o\",\"t\\tab\\u0001\",\"Zo\xc3\xab\"]");
}

static void read_as(const char *recorded, int want_form, const char *want)
{
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    assert_int_equal(tgt_source_path_read(recorded, &sb), want_form);
    if (want != NULL)
        assert_string_equal(tgt_sbuf_str(&sb), want);
    tgt_sbuf_deinit(&sb);
}

static void test_read(void **state)
{
    (void)state;
    read_as("[\"a\",\"b\"]", 1, "[\"a\",\"b\"]");
    /* another spelling of the same array reads as the canonical text */
    read_as("[ \"a\" , \"\\u0062\" ]", 1, "[\"a\",\"b\"]");
    /* the first release's dotted form, and things that are not paths */
    read_as("a.b", 0, NULL);
    read_as("amount", 0, NULL);
    read_as("[a.b", 0, NULL);
    read_as("[]", 0, NULL);
    read_as("[1]", 0, NULL);
    read_as("[\"a\\u0000\"]", 0, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write),
        cmocka_unit_test(test_read),
    };
    return cmocka_run_group_tests_name("source_path", tests, NULL, NULL);
}

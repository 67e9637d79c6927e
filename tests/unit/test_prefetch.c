/*
 * test_prefetch.c - unit tests for prefetch.c: blocks arrive whole and in
 * order through a ring smaller than the stream, the producer's error comes
 * after every block before it (and again on later calls), the end is
 * reported as such, and stopping works while the producer waits on a full
 * ring or before anything was taken.  The fill functions write a counter
 * pattern, so a block read while being overwritten would show.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "prefetch.h"

/* Produces `blocks` blocks (block i: bytes (i + k) % 251, length 1 + i %
 * cap), then ends or fails as `fail` says. */
typedef struct source {
    size_t blocks, made;
    int fail;
} source;

static int fill(void *ctx, char *buf, size_t cap, size_t *len, tgt_error *err)
{
    source *src = ctx;
    if (src->made == src->blocks) {
        if (src->fail)
            return tgt_error_set(err, TGT_ERR_INPUT, "bad input after %zu blocks", src->made);
        return 0;
    }
    size_t i = src->made++;
    *len = 1 + i % cap;
    for (size_t k = 0; k < *len; k++)
        buf[k] = (char)((i + k) % 251);
    return 1;
}

/* Takes every block and checks it; the result of the last call. */
static int drain(tgt_prefetch *pf, size_t cap, size_t *taken, tgt_error *err)
{
    const char *data;
    size_t len;
    int rc;
    *taken = 0;
    while ((rc = tgt_prefetch_next(pf, &data, &len, err)) == 1) {
        size_t i = (*taken)++;
        assert_int_equal(len, 1 + i % cap);
        for (size_t k = 0; k < len; k++)
            if (data[k] != (char)((i + k) % 251))
                fail_msg("block %zu byte %zu differs", i, k);
    }
    return rc;
}

static void test_blocks_in_order(void **state)
{
    (void)state;
    source src = {.blocks = 5000, .made = 0, .fail = 0};
    tgt_error err;
    tgt_error_init(&err);
    tgt_prefetch *pf = tgt_prefetch_start(fill, &src, 3, 700, &err);
    assert_non_null(pf);
    size_t taken;
    assert_int_equal(drain(pf, 700, &taken, &err), 0);
    assert_int_equal(taken, 5000);
    assert_false(tgt_error_is_set(&err));
    const char *data;
    size_t len;
    assert_int_equal(tgt_prefetch_next(pf, &data, &len, &err), 0); /* still the end */
    tgt_prefetch_stop(pf);
}

static void test_error_after_blocks(void **state)
{
    (void)state;
    source src = {.blocks = 777, .made = 0, .fail = 1};
    tgt_error err;
    tgt_error_init(&err);
    tgt_prefetch *pf = tgt_prefetch_start(fill, &src, 2, 64, &err);
    assert_non_null(pf);
    size_t taken;
    assert_int_equal(drain(pf, 64, &taken, &err), -1);
    assert_int_equal(taken, 777);
    assert_int_equal(err.code, TGT_ERR_INPUT);
    assert_string_equal(err.message, "bad input after 777 blocks");
    tgt_error_init(&err);
    const char *data;
    size_t len;
    assert_int_equal(tgt_prefetch_next(pf, &data, &len, &err), -1);
    assert_string_equal(err.message, "bad input after 777 blocks");
    tgt_prefetch_stop(pf);
}

/* Stopped with the ring full and a block held, and with nothing taken. */
static void test_stop_early(void **state)
{
    (void)state;
    source src = {.blocks = 1000000, .made = 0, .fail = 0};
    tgt_error err;
    tgt_error_init(&err);
    tgt_prefetch *pf = tgt_prefetch_start(fill, &src, 4, 128, &err);
    assert_non_null(pf);
    const char *data;
    size_t len;
    assert_int_equal(tgt_prefetch_next(pf, &data, &len, &err), 1);
    tgt_prefetch_stop(pf);
    assert_true(src.made < src.blocks);

    src.made = 0;
    pf = tgt_prefetch_start(fill, &src, 2, 128, &err);
    assert_non_null(pf);
    tgt_prefetch_stop(pf);
    tgt_prefetch_stop(NULL);
}

static void test_bad_ring(void **state)
{
    (void)state;
    source src = {.blocks = 1, .made = 0, .fail = 0};
    tgt_error err;
    tgt_error_init(&err);
    assert_null(tgt_prefetch_start(fill, &src, 1, 128, &err));
    assert_int_equal(err.code, TGT_ERR_INTERNAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks_in_order),
        cmocka_unit_test(test_error_after_blocks),
        cmocka_unit_test(test_stop_early),
        cmocka_unit_test(test_bad_ring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

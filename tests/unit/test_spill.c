/*
 * test_spill.c - unit tests for spill.c, the per-stream queues of encoded
 * rows in one temporary file: FIFO order per queue with several queues
 * interleaved, the byte counts (per queue and in total) through push, pop
 * and drop, a chunk longer than a slot coming back as several pops (rows on
 * the last), the free list keeping the file as small as the most ever
 * queued at once, and the failures: a write refused by the file size limit
 * (RLIMIT_FSIZE, SIGXFSZ ignored: pwrite fails with EFBIG) leaves the queue
 * as it was, and a file cut short fails the pop.
 *
 * Every chunk's bytes are a pattern derived from a tag, so a pop that
 * returns another chunk's bytes, or a slot's bytes out of order, is caught.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "spill.h"

/* ---- helpers ---------------------------------------------------------- */

/* len bytes of the pattern of `tag` (a chunk's identity). */
static char *chunk_new(unsigned tag, size_t len)
{
    char *p = malloc(len > 0 ? len : 1);
    assert_non_null(p);
    uint32_t x = 2166136261u ^ tag;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (char)(x >> 16);
    }
    return p;
}

static void push_tagged(tgt_spill *sp, tgt_spill_queue *q, unsigned tag, size_t len,
                        unsigned long rows)
{
    char *data = chunk_new(tag, len);
    tgt_error err;
    tgt_error_init(&err);
    if (tgt_spill_push(sp, q, data, len, rows, &err) != 0)
        fail_msg("push: %s", err.message);
    free(data);
}

/* Pops q's chunks until `len` bytes came back and checks them against the
 * pattern of `tag`: the bytes concatenate to the chunk, every slot but the
 * last carries no rows, the last `rows`.  Returns the pops it took. */
static unsigned pop_expect(tgt_spill *sp, tgt_spill_queue *q, unsigned tag, size_t len,
                           unsigned long rows)
{
    char *want = chunk_new(tag, len);
    size_t got = 0;
    unsigned pops = 0;
    unsigned long rows_seen = 0;
    while (got < len) {
        const char *data;
        size_t n;
        unsigned long r;
        tgt_error err;
        tgt_error_init(&err);
        assert_int_equal(tgt_spill_pop(sp, q, &data, &n, &r, &err), 1);
        pops++;
        assert_true(n > 0 && n <= TGT_SPILL_SLOT && got + n <= len);
        assert_memory_equal(data, want + got, n);
        got += n;
        if (got < len)
            assert_int_equal(r, 0); /* the rows sit on the last slot only */
        rows_seen += r;
    }
    assert_int_equal(rows_seen, rows);
    free(want);
    return pops;
}

static void assert_empty(tgt_spill *sp, tgt_spill_queue *q)
{
    const char *data = NULL;
    size_t n = 7;
    unsigned long r = 7;
    tgt_error err;
    tgt_error_init(&err);
    assert_true(tgt_spill_queue_empty(q));
    assert_int_equal(q->bytes, 0);
    assert_int_equal(tgt_spill_pop(sp, q, &data, &n, &r, &err), 0);
    assert_int_equal(err.code, TGT_OK);
}

/* ---- tests ------------------------------------------------------------ */

/* Three queues pushed and popped interleaved: each gives back its own
 * chunks, oldest first, whatever the others do in between. */
static void test_fifo_interleaved(void **state)
{
    (void)state;
    tgt_spill sp;
    tgt_spill_init(&sp);
    tgt_spill_queue q[3];
    for (int i = 0; i < 3; i++)
        tgt_spill_queue_init(&q[i]);
    /* tag = 100 * queue + n: queue's nth chunk; sizes vary, rows = n + 1 */
    unsigned pushed[3] = {0}, popped[3] = {0};
    for (unsigned step = 0; step < 60; step++) {
        unsigned k = (step * 7u) % 3u;
        unsigned n = pushed[k]++;
        push_tagged(&sp, &q[k], 100 * k + n, 1000 + 997 * n, n + 1);
        if (step % 3 == 2) { /* pop one from another queue now and then */
            unsigned j = (k + 1) % 3;
            if (popped[j] < pushed[j]) {
                unsigned m = popped[j]++;
                assert_int_equal(pop_expect(&sp, &q[j], 100 * j + m, 1000 + 997 * m, m + 1), 1);
            }
        }
    }
    for (unsigned j = 0; j < 3; j++) {
        while (popped[j] < pushed[j]) {
            unsigned m = popped[j]++;
            assert_int_equal(pop_expect(&sp, &q[j], 100 * j + m, 1000 + 997 * m, m + 1), 1);
        }
        assert_empty(&sp, &q[j]);
    }
    assert_int_equal(sp.bytes, 0);
    tgt_spill_deinit(&sp);
}

/* The bytes waiting, per queue and in all, follow every push, pop and drop. */
static void test_bytes_accounting(void **state)
{
    (void)state;
    tgt_spill sp;
    tgt_spill_init(&sp);
    tgt_spill_queue a, b;
    tgt_spill_queue_init(&a);
    tgt_spill_queue_init(&b);
    assert_int_equal(sp.bytes, 0);
    push_tagged(&sp, &a, 1, 5000, 3);
    push_tagged(&sp, &b, 2, 70000, 9);
    push_tagged(&sp, &a, 3, 300000, 40); /* three slots */
    assert_int_equal(a.bytes, 305000);
    assert_int_equal(b.bytes, 70000);
    assert_int_equal(sp.bytes, 375000);
    pop_expect(&sp, &a, 1, 5000, 3);
    assert_int_equal(a.bytes, 300000);
    assert_int_equal(sp.bytes, 370000);
    /* one slot of the long chunk: the counts drop by that slot alone */
    const char *data;
    size_t n;
    unsigned long r;
    tgt_error err;
    tgt_error_init(&err);
    assert_int_equal(tgt_spill_pop(&sp, &a, &data, &n, &r, &err), 1);
    assert_int_equal(n, TGT_SPILL_SLOT);
    assert_int_equal(a.bytes, 300000 - TGT_SPILL_SLOT);
    assert_int_equal(sp.bytes, 370000 - TGT_SPILL_SLOT);
    tgt_spill_drop(&sp, &a);
    assert_empty(&sp, &a);
    assert_int_equal(sp.bytes, 70000);
    assert_int_equal(b.bytes, 70000);
    pop_expect(&sp, &b, 2, 70000, 9);
    assert_empty(&sp, &b);
    assert_int_equal(sp.bytes, 0);
    tgt_spill_deinit(&sp);
}

/* A chunk longer than a slot comes back as several pops, in order, whose
 * bytes make the chunk and whose rows (on the last) make its rows; also at
 * the edges: exactly one slot, exactly two, one byte more. */
static void test_long_chunk(void **state)
{
    (void)state;
    tgt_spill sp;
    tgt_spill_init(&sp);
    tgt_spill_queue q, other;
    tgt_spill_queue_init(&q);
    tgt_spill_queue_init(&other);
    const size_t lens[] = {300 * 1024, TGT_SPILL_SLOT, 2 * TGT_SPILL_SLOT, TGT_SPILL_SLOT + 1, 3};
    const unsigned pops[] = {3, 1, 2, 2, 1};
    for (unsigned i = 0; i < 5; i++) {
        push_tagged(&sp, &q, 10 + i, lens[i], 20 + i);
        push_tagged(&sp, &other, 50 + i, 1000, 1); /* slots of q are not adjacent */
    }
    for (unsigned i = 0; i < 5; i++)
        assert_int_equal(pop_expect(&sp, &q, 10 + i, lens[i], 20 + i), pops[i]);
    assert_empty(&sp, &q);
    for (unsigned i = 0; i < 5; i++)
        pop_expect(&sp, &other, 50 + i, 1000, 1);
    assert_empty(&sp, &other);
    tgt_spill_deinit(&sp);
}

/* Slots are reused: after many rounds of pushing and popping, the file has
 * no more slots than were ever queued at once. */
static void test_slots_reused(void **state)
{
    (void)state;
    tgt_spill sp;
    tgt_spill_init(&sp);
    tgt_spill_queue a, b;
    tgt_spill_queue_init(&a);
    tgt_spill_queue_init(&b);
    unsigned tag = 0;
    for (unsigned round = 0; round < 50; round++) {
        /* at most 2 + 1 + 3 = 6 slots queued at once */
        push_tagged(&sp, &a, tag, 60000, 1);
        push_tagged(&sp, &b, tag + 1, 100000, 2);
        push_tagged(&sp, &a, tag + 2, 200000, 3);
        pop_expect(&sp, &a, tag, 60000, 1);
        push_tagged(&sp, &b, tag + 3, 300000, 4);
        pop_expect(&sp, &b, tag + 1, 100000, 2);
        pop_expect(&sp, &a, tag + 2, 200000, 3);
        pop_expect(&sp, &b, tag + 3, 300000, 4);
        tag += 4;
        assert_true(sp.n_slots <= 6);
    }
    assert_int_equal(sp.n_slots, 6); /* reached in the first round */
    assert_int_equal(sp.bytes, 0);
    tgt_spill_deinit(&sp);
}

/* A dropped queue's slots are free: the next pushes reuse them rather than
 * grow the file, and the other queues keep their rows. */
static void test_drop_frees_slots(void **state)
{
    (void)state;
    tgt_spill sp;
    tgt_spill_init(&sp);
    tgt_spill_queue a, b, c;
    tgt_spill_queue_init(&a);
    tgt_spill_queue_init(&b);
    tgt_spill_queue_init(&c);
    push_tagged(&sp, &a, 1, 300000, 5); /* 3 slots */
    push_tagged(&sp, &b, 2, 1000, 1);
    push_tagged(&sp, &a, 3, 1000, 1);
    assert_int_equal(sp.n_slots, 5);
    tgt_spill_drop(&sp, &a);
    assert_empty(&sp, &a);
    push_tagged(&sp, &c, 4, 4 * TGT_SPILL_SLOT, 8);
    assert_int_equal(sp.n_slots, 5);
    tgt_spill_drop(&sp, &a); /* dropping an empty queue changes nothing */
    assert_int_equal(sp.bytes, 1000 + 4 * TGT_SPILL_SLOT);
    /* a dropped queue is usable again */
    push_tagged(&sp, &a, 5, 2000, 2);
    assert_int_equal(sp.n_slots, 6);
    pop_expect(&sp, &b, 2, 1000, 1);
    pop_expect(&sp, &c, 4, 4 * TGT_SPILL_SLOT, 8);
    pop_expect(&sp, &a, 5, 2000, 2);
    assert_empty(&sp, &a);
    assert_empty(&sp, &b);
    assert_empty(&sp, &c);
    tgt_spill_deinit(&sp);
}

/* Pop on an empty queue returns 0: before the file exists, and after. */
static void test_pop_empty(void **state)
{
    (void)state;
    tgt_spill sp;
    tgt_spill_init(&sp);
    tgt_spill_queue q;
    tgt_spill_queue_init(&q);
    assert_empty(&sp, &q);
    assert_int_equal(sp.fd, -1); /* a pop creates no file */
    push_tagged(&sp, &q, 1, 10, 1);
    pop_expect(&sp, &q, 1, 10, 1);
    assert_empty(&sp, &q);
    tgt_spill_deinit(&sp);
}

/* A write the file refuses (the file size limit: EFBIG with SIGXFSZ
 * ignored) fails the push with TGT_ERR_IO and leaves the queue as it was,
 * also when the chunk's first slots were written; its slots are free again
 * and the queue works on once the file can grow. */
static void test_push_write_fails(void **state)
{
    (void)state;
    tgt_spill sp;
    tgt_spill_init(&sp);
    tgt_spill_queue q, other;
    tgt_spill_queue_init(&q);
    tgt_spill_queue_init(&other);
    push_tagged(&sp, &q, 1, 1000, 1);      /* slot 0 */
    push_tagged(&sp, &other, 2, 50000, 2); /* slot 1 */
    push_tagged(&sp, &other, 3, 50000, 2); /* slot 2 */
    pop_expect(&sp, &other, 2, 50000, 2);  /* slot 1 free */
    int32_t slots_before = sp.n_slots;

    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_true(old_handler != SIG_ERR);
    /* slot 1 (reused) can be written, slot 3 (new, past the limit) cannot */
    struct rlimit low = old;
    low.rlim_cur = 3 * (rlim_t)TGT_SPILL_SLOT + 100;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &low), 0);
    char *data = chunk_new(9, 3 * TGT_SPILL_SLOT);
    tgt_error err;
    tgt_error_init(&err);
    int rc = tgt_spill_push(&sp, &q, data, 3 * TGT_SPILL_SLOT, 30, &err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_true(signal(SIGXFSZ, old_handler) != SIG_ERR);
    free(data);

    assert_int_equal(rc, -1);
    assert_int_equal(err.code, TGT_ERR_IO);
    assert_non_null(strstr(err.message, "write"));
    assert_int_equal(q.bytes, 1000);
    assert_int_equal(other.bytes, 50000);
    assert_int_equal(sp.bytes, 51000);
    /* the slots it took are free: the same push now fits in one new slot more */
    push_tagged(&sp, &q, 4, 3 * TGT_SPILL_SLOT, 30);
    assert_int_equal(sp.n_slots, slots_before + 2);
    pop_expect(&sp, &q, 1, 1000, 1);
    assert_int_equal(pop_expect(&sp, &q, 4, 3 * TGT_SPILL_SLOT, 30), 3);
    assert_empty(&sp, &q);
    pop_expect(&sp, &other, 3, 50000, 2);
    assert_empty(&sp, &other);
    tgt_spill_deinit(&sp);
}

/* A file cut short under the queue (a slot cannot be read back) fails the
 * pop with TGT_ERR_IO; the slot counts as taken all the same. */
static void test_pop_read_fails(void **state)
{
    (void)state;
    tgt_spill sp;
    tgt_spill_init(&sp);
    tgt_spill_queue q;
    tgt_spill_queue_init(&q);
    push_tagged(&sp, &q, 1, 5000, 4);
    push_tagged(&sp, &q, 2, 6000, 5);
    assert_int_equal(ftruncate(sp.fd, 0), 0);
    const char *data;
    size_t n;
    unsigned long r;
    tgt_error err;
    tgt_error_init(&err);
    assert_int_equal(tgt_spill_pop(&sp, &q, &data, &n, &r, &err), -1);
    assert_int_equal(err.code, TGT_ERR_IO);
    assert_int_equal(q.bytes, 6000);
    assert_int_equal(sp.bytes, 6000);
    tgt_spill_deinit(&sp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_interleaved), cmocka_unit_test(test_bytes_accounting),
        cmocka_unit_test(test_long_chunk),       cmocka_unit_test(test_slots_reused),
        cmocka_unit_test(test_drop_frees_slots), cmocka_unit_test(test_pop_empty),
        cmocka_unit_test(test_push_write_fails), cmocka_unit_test(test_pop_read_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

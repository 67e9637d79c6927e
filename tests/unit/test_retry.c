/*
 * test_retry.c - unit tests for retry.c: the backoff arithmetic, and
 * tgt_connect_with_retry against a fake driver whose connect fails a given
 * number of times, transiently or not.  The signal tests install the real
 * handlers (signals.c) and send SIGTERM to this process; they run last
 * because the first signal received cannot be forgotten.  Warnings go to
 * stderr.
 */
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "driver.h"
#include "error.h"
#include "reader.h"
#include "retry.h"
#include "signals.h"

/* ---- a fake driver ------------------------------------------------------ */

typedef struct fake_driver {
    tgt_driver base;
    int failures;  /* connect fails this many times, then succeeds */
    int transient; /* how the failures are classified */
    int calls;
} fake_driver;

static int fake_connect(tgt_driver *base, const tgt_config *cfg, tgt_error *err)
{
    (void)cfg;
    fake_driver *d = (fake_driver *)base;
    d->calls++;
    if (d->calls > d->failures)
        return 0;
    tgt_error_set(err, TGT_ERR_LOAD, "cannot connect to PostgreSQL: refused (call %d)", d->calls);
    tgt_error_where(err, "connecting to host h");
    err->transient = d->transient;
    return -1;
}

static const tgt_driver_ops fake_ops = {.name = "fake", .connect = fake_connect};

static fake_driver fake(int failures, int transient)
{
    fake_driver d;
    memset(&d, 0, sizeof(d));
    d.base.ops = &fake_ops;
    d.failures = failures;
    d.transient = transient;
    return d;
}

static tgt_config settings(long retries, long delay_ms)
{
    tgt_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.connect_retries = retries;
    cfg.connect_retry_delay_ms = delay_ms;
    return cfg;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- backoff arithmetic -------------------------------------------------- */

static void test_delay_doubles_up_to_cap(void **state)
{
    (void)state;
    assert_int_equal(tgt_retry_delay_ms(1000, 1), 1000);
    assert_int_equal(tgt_retry_delay_ms(1000, 2), 2000);
    assert_int_equal(tgt_retry_delay_ms(1000, 3), 4000);
    assert_int_equal(tgt_retry_delay_ms(1000, 6), 32000);
    assert_int_equal(tgt_retry_delay_ms(1000, 7), 60000); /* 64 s, capped */
    assert_int_equal(tgt_retry_delay_ms(1000, 1000), 60000);
    assert_int_equal(tgt_retry_delay_ms(100, 3), 400);
    assert_int_equal(tgt_retry_delay_ms(1, 17), 60000); /* 65536 ms, capped */
    assert_int_equal(tgt_retry_delay_ms(1, 16), 32768);
    assert_int_equal(tgt_retry_delay_ms(60000, 5), 60000);
    assert_int_equal(tgt_retry_delay_ms(59999, 2), 60000);
}

static void test_delay_edges(void **state)
{
    (void)state;
    assert_int_equal(tgt_retry_delay_ms(0, 1), 0);
    assert_int_equal(tgt_retry_delay_ms(0, 5), 0);
    assert_int_equal(tgt_retry_delay_ms(-5, 2), 0);
    assert_int_equal(tgt_retry_delay_ms(1000, 0), 0);
    assert_int_equal(tgt_retry_delay_ms(1000, -1), 0);
    /* a first delay above the cap is kept, never doubled */
    assert_int_equal(tgt_retry_delay_ms(3600000, 1), 3600000);
    assert_int_equal(tgt_retry_delay_ms(3600000, 9), 3600000);
    /* no overflow whatever the inputs */
    assert_int_equal(tgt_retry_delay_ms(LONG_MAX, LONG_MAX), LONG_MAX);
    assert_int_equal(tgt_retry_delay_ms(LONG_MAX / 2 + 1, 3), LONG_MAX / 2 + 1);
    assert_int_equal(tgt_retry_delay_ms(7, LONG_MAX), 60000);
}

/* ---- tgt_connect_with_retry ------------------------------------------------ */

static void test_first_attempt_succeeds(void **state)
{
    (void)state;
    fake_driver d = fake(0, 1);
    tgt_config cfg = settings(5, 1000);
    tgt_error err;
    tgt_error_init(&err);
    assert_int_equal(tgt_connect_with_retry(&d.base, &cfg, &err), 0);
    assert_int_equal(d.calls, 1);
    assert_false(tgt_error_is_set(&err));
}

static void test_transient_until_success(void **state)
{
    (void)state;
    fake_driver d = fake(2, 1);
    tgt_config cfg = settings(5, 20);
    tgt_error err;
    tgt_error_init(&err);
    long long t0 = now_ms();
    assert_int_equal(tgt_connect_with_retry(&d.base, &cfg, &err), 0);
    long long took = now_ms() - t0;
    assert_int_equal(d.calls, 3);
    assert_false(tgt_error_is_set(&err));
    assert_true(took >= 60 && took < 1000); /* 20 + 40 ms */
}

static void test_transient_exhausted(void **state)
{
    (void)state;
    fake_driver d = fake(100, 1);
    tgt_config cfg = settings(2, 50);
    tgt_error err;
    tgt_error_init(&err);
    long long t0 = now_ms();
    assert_int_equal(tgt_connect_with_retry(&d.base, &cfg, &err), -1);
    long long took = now_ms() - t0;
    assert_int_equal(d.calls, 3);
    assert_true(took >= 150 && took < 1000); /* 50 + 100 ms */
    assert_int_equal(err.code, TGT_ERR_LOAD);
    assert_non_null(strstr(err.message, "refused (call 3) (3 attempts over 0."));
    assert_non_null(strstr(err.hint, "connect_retries (now 2)"));
    assert_string_equal(err.where, "connecting to host h");
    assert_int_equal(err.transient, 1);
}

static void test_no_retries(void **state)
{
    (void)state;
    fake_driver d = fake(100, 1);
    tgt_config cfg = settings(0, 1000);
    tgt_error err;
    tgt_error_init(&err);
    long long t0 = now_ms();
    assert_int_equal(tgt_connect_with_retry(&d.base, &cfg, &err), -1);
    assert_true(now_ms() - t0 < 500);
    assert_int_equal(d.calls, 1);
    assert_non_null(strstr(err.message, "(1 attempt over 0.0 s)"));
}

static void test_permanent_fails_at_once(void **state)
{
    (void)state;
    fake_driver d = fake(100, 0);
    tgt_config cfg = settings(5, 1000);
    tgt_error err;
    tgt_error_init(&err);
    long long t0 = now_ms();
    assert_int_equal(tgt_connect_with_retry(&d.base, &cfg, &err), -1);
    assert_true(now_ms() - t0 < 500);
    assert_int_equal(d.calls, 1);
    assert_string_equal(err.message, "cannot connect to PostgreSQL: refused (call 1)");
    assert_non_null(strstr(err.detail, "Not retried"));
}

static void test_first_error_wins(void **state)
{
    (void)state;
    fake_driver d = fake(100, 0);
    tgt_config cfg = settings(0, 0);
    tgt_error err;
    tgt_error_init(&err);
    tgt_error_set(&err, TGT_ERR_DATA, "earlier");
    assert_int_equal(tgt_connect_with_retry(&d.base, &cfg, &err), -1);
    assert_string_equal(err.message, "earlier");
}

/* ---- signals (last: the first signal is remembered for good) ---------------- */

static void *send_sigterm_later(void *arg)
{
    (void)arg;
    usleep(150 * 1000);
    kill(getpid(), SIGTERM);
    return NULL;
}

static void test_signal_stops_the_wait(void **state)
{
    (void)state;
    assert_int_equal(tgt_signals_install(), 0);
    fake_driver d = fake(100, 1);
    tgt_config cfg = settings(5, 10000);
    tgt_error err;
    tgt_error_init(&err);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, send_sigterm_later, NULL), 0);
    long long t0 = now_ms();
    assert_int_equal(tgt_connect_with_retry(&d.base, &cfg, &err), -1);
    long long took = now_ms() - t0;
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(took >= 100 && took < 1000);
    assert_int_equal(d.calls, 1);
    assert_int_equal(err.code, TGT_ERR_INTERRUPTED);
    assert_int_equal(tgt_signals_received(), SIGTERM);
    assert_int_equal(tgt_error_exit_status(err.code) + tgt_signals_received(), 143);
    assert_non_null(strstr(err.message, "SIGTERM received: stopped trying to connect after 1 "
                                        "attempt over 0."));
    assert_non_null(strstr(err.message, "refused (call 1)"));
    assert_true(tgt_reader_stop_requested);

    /* after the signal: one attempt, no waiting; success still counts */
    fake_driver d2 = fake(100, 1);
    tgt_error_init(&err);
    t0 = now_ms();
    assert_int_equal(tgt_connect_with_retry(&d2.base, &cfg, &err), -1);
    assert_true(now_ms() - t0 < 500);
    assert_int_equal(d2.calls, 1);
    assert_int_equal(err.code, TGT_ERR_INTERRUPTED);
    fake_driver d3 = fake(0, 1);
    tgt_error_init(&err);
    assert_int_equal(tgt_connect_with_retry(&d3.base, &cfg, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delay_doubles_up_to_cap),
        cmocka_unit_test(test_delay_edges),
        cmocka_unit_test(test_first_attempt_succeeds),
        cmocka_unit_test(test_transient_until_success),
        cmocka_unit_test(test_transient_exhausted),
        cmocka_unit_test(test_no_retries),
        cmocka_unit_test(test_permanent_fails_at_once),
        cmocka_unit_test(test_first_error_wins),
        cmocka_unit_test(test_signal_stops_the_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

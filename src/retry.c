/*
 * retry.c - connect, and on a transient failure wait and try again (see
 * retry.h for the contract).
 *
 * Each attempt gets its own tgt_error so a failed attempt never pins the
 * caller's "first error wins" slot; only the outcome is copied out.  Waits
 * are slept in slices of at most 100 ms so a SIGINT/SIGTERM is noticed
 * promptly even if it lands between the check and the sleep (a signal
 * during nanosleep wakes it at once).  Times come from CLOCK_MONOTONIC.
 */
#include "retry.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "redact.h"
#include "signals.h"

#define SLEEP_SLICE_MS 100L

long tgt_retry_delay_ms(long first_ms, long retry)
{
    if (first_ms <= 0 || retry < 1)
        return 0;
    long cap = first_ms > TGT_RETRY_DELAY_MAX_MS ? first_ms : TGT_RETRY_DELAY_MAX_MS;
    long delay = first_ms;
    for (long i = 1; i < retry && delay < cap; i++)
        delay = delay > cap / 2 ? cap : delay * 2;
    return delay;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps ms milliseconds.  -1 as soon as a stop signal is seen, else 0. */
static int sleep_unless_stopped(long ms)
{
    long long deadline = now_ms() + ms;
    for (;;) {
        if (tgt_signals_received())
            return -1;
        long long left = deadline - now_ms();
        if (left <= 0)
            return 0;
        long slice = left < SLEEP_SLICE_MS ? (long)left : SLEEP_SLICE_MS;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = slice * 1000000L};
        nanosleep(&ts, NULL); /* EINTR: go round, which checks the flag */
    }
}

/* Copies the outcome into the caller's error unless that already holds one. */
static int give(tgt_error *err, const tgt_error *outcome)
{
    if (!tgt_error_is_set(err))
        *err = *outcome;
    return -1;
}

/* Logs "cannot connect to PostgreSQL (attempt 2 of 6): <reason>; retrying
 * in 2.0 s" (or "in 250 ms") from "cannot connect to PostgreSQL: <reason>". */
static void log_retry(const char *message, long attempt, long attempts, long delay_ms)
{
    char wait[32];
    if (delay_ms < 1000)
        snprintf(wait, sizeof(wait), "%ld ms", delay_ms);
    else
        snprintf(wait, sizeof(wait), "%.1f s", (double)delay_ms / 1000.0);
    const char *colon = strstr(message, ": ");
    if (colon != NULL)
        tgt_log(TGT_LOG_WARN, "%.*s (attempt %ld of %ld): %s; retrying in %s",
                (int)(colon - message), message, attempt, attempts, colon + 2, wait);
    else
        tgt_log(TGT_LOG_WARN, "%s (attempt %ld of %ld); retrying in %s", message, attempt, attempts,
                wait);
}

int tgt_connect_with_retry(tgt_driver *d, const tgt_config *cfg, tgt_error *err)
{
    long retries = cfg->connect_retries > 0 ? cfg->connect_retries : 0;
    long attempts = retries + 1;
    long long start = now_ms();
    tgt_error last;
    for (long attempt = 1;; attempt++) {
        tgt_error_init(&last);
        if (d->ops->connect(d, cfg, &last) == 0) {
            if (attempt > 1)
                tgt_log(TGT_LOG_INFO, "connected at attempt %ld of %ld, after %.1f s", attempt,
                        attempts, (double)(now_ms() - start) / 1000.0);
            return 0;
        }
        if (!tgt_error_is_set(&last))
            tgt_error_set(&last, TGT_ERR_INTERNAL, "%s connect failed without a message (a bug)",
                          d->ops->name);
        if (!last.transient) {
            if (retries > 0)
                tgt_error_detail(&last, "Not retried: a wrong password, a missing database or "
                                        "role, or an invalid connection setting does not go "
                                        "away by waiting.");
            return give(err, &last);
        }
        int sig = tgt_signals_received();
        if (sig == 0 && attempt < attempts) {
            char shown[TGT_ERROR_MESSAGE_MAX];
            memcpy(shown, last.message, sizeof(shown));
            tgt_redact(shown, sizeof(shown), cfg); /* libpq may quote the conninfo back */
            long delay = tgt_retry_delay_ms(cfg->connect_retry_delay_ms, attempt);
            log_retry(shown, attempt, attempts, delay);
            if (sleep_unless_stopped(delay) == 0)
                continue;
            sig = tgt_signals_received();
        }
        double took = (double)(now_ms() - start) / 1000.0;
        const char *plural = attempt == 1 ? "" : "s";
        if (sig != 0) {
            tgt_error stopped;
            tgt_error_init(&stopped);
            tgt_error_set(&stopped, TGT_ERR_INTERRUPTED,
                          "%s received: stopped trying to connect after %ld attempt%s over "
                          "%.1f s; the last one failed: %s",
                          tgt_signals_name(sig), attempt, plural, took, last.message);
            memcpy(stopped.where, last.where, sizeof(stopped.where));
            return give(err, &stopped);
        }
        size_t used = strlen(last.message);
        snprintf(last.message + used, sizeof(last.message) - used, " (%ld attempt%s over %.1f s)",
                 attempt, plural, took);
        tgt_error_hint(&last,
                       "Check that the server runs and accepts connections there; "
                       "connect_retries (now %ld) and connect_retry_delay_ms (now %ld) set how "
                       "long target-pg keeps trying.",
                       cfg->connect_retries, cfg->connect_retry_delay_ms);
        return give(err, &last);
    }
}

int tgt_retry_sleep_ms(long ms)
{
    return sleep_unless_stopped(ms);
}

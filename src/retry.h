/*
 * retry.h - connecting to the warehouse with bounded retries and
 * exponential backoff.
 *
 * A database that is down, restarting or still starting (a container that
 * comes up together with the pipeline) is waited for: after a failed attempt
 * the next one comes connect_retry_delay_ms later, the wait doubling each
 * time up to TGT_RETRY_DELAY_MAX_MS, for at most connect_retries further
 * attempts.  A failure that waiting cannot fix (the driver leaves
 * err->transient at 0: authentication, a missing database or role, a bad
 * connection string, TLS set-up) fails at once.  SIGINT/SIGTERM (signals.h)
 * cut the waiting short.
 *
 * Used for the first connection and for reconnecting after a lost one.
 * Each failed attempt is logged as a warning naming the attempt and the
 * reason, with the connection string and password masked; nothing else is
 * printed.
 */
#ifndef TGT_RETRY_H
#define TGT_RETRY_H

#include "config.h"
#include "driver.h"
#include "error.h"

/* No wait between attempts is longer than this. */
#define TGT_RETRY_DELAY_MAX_MS 60000L

/* The wait before retry number `retry` (1 = the wait after the first failed
 * attempt): first_ms doubled retry - 1 times, at most TGT_RETRY_DELAY_MAX_MS
 * (and first_ms itself when that is already larger); 0 when first_ms <= 0 or
 * retry < 1.  Never overflows. */
long tgt_retry_delay_ms(long first_ms, long retry);

/* Connects d with d->ops->connect(d, cfg, ...), retrying as described above
 * (cfg->connect_retries, cfg->connect_retry_delay_ms are read).
 *
 * On failure returns -1 with err set (unless err already held an error:
 * the first error wins) to:
 * - the failed attempt's error, when it was not transient, plus a DETAIL
 *   saying why it was not retried when retries were allowed;
 * - the last attempt's error with "(N attempts over T s)" appended to its
 *   message and a HINT naming the two settings, when the retries ran out;
 * - TGT_ERR_INTERRUPTED naming the signal and the last reason, when a
 *   SIGINT/SIGTERM arrived; then no further attempt is made (one that is in
 *   progress finishes first: libpq cannot be interrupted).  A signal that
 *   arrived before the call still allows the first attempt, so a stopping
 *   run can commit what it has.
 * Returns 0 once connected. */
int tgt_connect_with_retry(tgt_driver *d, const tgt_config *cfg, tgt_error *err);

/* Sleeps ms milliseconds, cut short by SIGINT/SIGTERM: -1 when a stop
 * signal was seen (before or during the wait), else 0.  For the loader's
 * other waits (a deadlock retry, a lost COMMIT's outcome). */
int tgt_retry_sleep_ms(long ms);

#endif

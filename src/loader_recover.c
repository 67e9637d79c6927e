/*
 * loader_recover.c - when a batch cannot be committed as it was sent.
 *
 * These failures are recovered instead of ending the run:
 * - the connection broke (backend terminated, server restarted): reconnect
 *   with retries (retry.c) and send the batch again from the spool.  When
 *   it broke during a COMMIT (err->commit_unknown), the server may have
 *   committed before the reply was lost: its answer (the driver's
 *   commit_status, asked again while the old session is still finishing,
 *   for at most a minute) decides.  Committed: the batch is accounted as
 *   committed (METRICs, dead letters, STATE), nothing is sent again;
 *   otherwise it is sent again.  Sending it again regardless would load an
 *   unkeyed stream's rows twice;
 * - the transaction lost a deadlock or serialization failure to another
 *   session (err->conflict): roll back, wait a short random time and send
 *   it again, at most CONFLICT_ATTEMPTS times in all;
 * - the database refused one row of a bulk write and COPY quoted it: the
 *   row is traced back to its input record through the spool; with
 *   invalid_records skip or dead_letter the batch is sent again without it,
 *   with fail the error names the input line, stream and the refusal;
 * - the database refused a stream's data without naming the row for sure:
 *   a keyed stream's merge (a foreign key, a unique index, a trigger), a
 *   foreign key checked when a COPY ends, a row too big for its page
 *   (reported at the last row of the group PostgreSQL was writing): the
 *   stream's records are bisected.  Each probe sends the batch with only
 *   the first k records of that stream, merges up to it and rolls back; the
 *   record whose addition turns a working prefix into a refused one is the
 *   culprit, found in log2(n) probes (a row COPY mentioned is probed
 *   first), and then handled like a quoted COPY row.
 * - a keyed stream loading straight into its new or empty table
 *   (TGT_WRITE_DIRECT) met a key already there or twice in the batch
 *   (err->key_clash): the stream stages and merges from then on, and the
 *   batch is sent again;
 * Either way the replayed batch is committed at once, so STATE stays honest:
 * every STATE received so far followed records that are all in the batch.
 *
 * Records the encoder already refuses (a value that does not fit its
 * column, a missing key) never reach the database; batch.c handles them
 * with the same policy.
 *
 * This is a handler above batch.c: it calls down into it (forget, encode,
 * ship and merge, commit point) and keeps its bookkeeping in the batch
 * (tgt_batch: the spool, the excluded lines, what failed), which each commit
 * point clears.  Nothing here writes the transaction flag.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loader_recover.h"
#include "log.h"
#include "retry.h"

/* Recoveries in a row without a commit before the run gives up. */
#define RECOVERIES_MAX 100
/* Runs of a transaction that keeps losing deadlocks before the run fails,
 * and the mean wait before the first retry (doubled for each further one,
 * randomised by +-50% so two deadlocked runs do not meet again in step). */
#define CONFLICT_ATTEMPTS 5
#define CONFLICT_WAIT_MS 100L
/* Asking whether a COMMIT whose reply was lost went through: the first wait
 * while the old session still runs the transaction, the longest, and the
 * most in all before giving up. */
#define COMMIT_POLL_FIRST_MS 20L
#define COMMIT_POLL_MAX_MS 1000L
#define COMMIT_POLL_TOTAL_MS 60000L
/* What a user can do when a COMMIT's outcome stays unknown. */
#define UNKNOWN_COMMIT_HINT                                                                        \
    "Nothing was sent again.  Keyed tables come out right either way when the tap runs again "     \
    "from the last STATE written; an unkeyed table may then get that batch twice if it did "       \
    "commit."

static int is_excluded(const tgt_batch *b, unsigned long line_no)
{
    size_t lo = 0, hi = b->n_excluded;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (b->excluded[mid] == line_no)
            return 1;
        if (b->excluded[mid] < line_no)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static int exclude(tgt_batch *b, unsigned long line_no, tgt_error *err)
{
    unsigned long *grown = realloc(b->excluded, (b->n_excluded + 1) * sizeof(*grown));
    if (grown == NULL)
        return tgt_error_nomem(err);
    b->excluded = grown;
    size_t at = b->n_excluded++;
    while (at > 0 && grown[at - 1] > line_no) {
        grown[at] = grown[at - 1];
        at--;
    }
    grown[at] = line_no;
    return 0;
}

static tgt_stream *stream_by_id(tgt_batch *b, uint32_t id)
{
    for (tgt_stream *s = b->streams.first; s != NULL; s = s->next_in_order) {
        if (s->id == id)
            return s;
    }
    return NULL;
}

/* Parses spooled entry e of stream s with the replay parser: a RECORD
 * line, or the bare record of a BATCH file line (singer_batch.h). */
static int parse_spooled(tgt_batch *b, const tgt_stream *s, const tgt_spool_entry *e,
                         tgt_message *msg, tgt_error *err)
{
    if (tgt_singer_batch_is_record(e->line_no))
        return tgt_singer_batch_parse_line(&b->replay_parser, e->line, e->len, s->name, s->name_len,
                                           msg, err);
    return tgt_message_parse(&b->replay_parser, e->line, e->len, msg, &b->scratch, err);
}

/* Encodes the spooled records again (all but the excluded, and of stream
 * `only_first_of` only its first `limit`) into a fresh batch; no commit. */
static int resend(tgt_batch *b, const tgt_stream *only_first_of, unsigned long limit,
                  tgt_error *err)
{
    tgt_batch_forget(b);
    if (tgt_spool_rewind(&b->spool, err) != 0)
        return -1;
    tgt_spool_entry e;
    int got;
    unsigned long limited_seen = 0;
    while ((got = tgt_spool_next(&b->spool, &e, err)) == 1) {
        if (is_excluded(b, e.line_no))
            continue;
        tgt_stream *s = stream_by_id(b, e.stream_id);
        if (s == NULL)
            return tgt_error_set(err, TGT_ERR_INTERNAL, "spooled record of unknown stream %u",
                                 (unsigned)e.stream_id);
        if (e.line_no <= s->committed_through)
            continue; /* committed early, before the connection broke */
        if (s == only_first_of && ++limited_seen > limit)
            continue;
        tgt_message msg;
        if (parse_spooled(b, s, &e, &msg, err) != 0 ||
            tgt_batch_encode(b, s, &b->replay_parser, e.line, e.len, e.line_no, &msg, 1, err) != 0)
            return -1;
    }
    if (got < 0)
        return -1;
    return tgt_spool_end_reading(&b->spool, err);
}

/* Sends every spooled record again (but the excluded) and commits. */
static int replay(tgt_batch *b, tgt_error *err)
{
    tgt_log(TGT_LOG_INFO, "sending the %lu uncommitted records again",
            b->spool.count - (unsigned long)b->n_excluded);
    if (resend(b, NULL, 0, err) != 0)
        return -1;
    return tgt_batch_commit_point(b, err);
}

/* The spooled record behind row `row` (1-based) of stream s's pending rows:
 * 1 with *e filled (its line valid until the spool is read again), 0 when
 * there is no such row; *seen is then how many rows s has (row 0 matches
 * nothing: it only counts).
 * The caller ends the reading (tgt_spool_end_reading). */
static int find_row(tgt_batch *b, const tgt_stream *s, unsigned long row, tgt_spool_entry *e,
                    unsigned long *seen, tgt_error *err)
{
    if (tgt_spool_rewind(&b->spool, err) != 0)
        return -1;
    int got;
    *seen = 0;
    while ((got = tgt_spool_next(&b->spool, e, err)) == 1) {
        if (e->stream_id != s->id || is_excluded(b, e->line_no) ||
            e->line_no <= s->committed_through)
            continue;
        if (++*seen == row)
            return 1;
    }
    return got < 0 ? -1 : 0;
}

/* SQLSTATEs of a value or constraint the database refused: classes 22
 * (data exception) and 23 (integrity constraint), and 54000, which a value
 * too big for an index or a page raises ("index row requires 9016 bytes"). */
static int refused_value(const tgt_error *e)
{
    return strncmp(e->sqlstate, "22", 2) == 0 || strncmp(e->sqlstate, "23", 2) == 0 ||
           strcmp(e->sqlstate, "54000") == 0;
}

/* The database refused (db) stream s's record `row` (1-based among its
 * pending records): fail naming its input line, or drop it and send the
 * batch again without it. */
static int settle_refused(tgt_batch *b, tgt_stream *s, unsigned long row, const tgt_error *db,
                          tgt_error *err)
{
    tgt_spool_entry e;
    unsigned long seen;
    int found = find_row(b, s, row, &e, &seen, err);
    if (found <= 0 || tgt_spool_end_reading(&b->spool, err) != 0) {
        if (found == 0)
            *err = *db; /* not traceable: report the database's error as it was */
        return -1;
    }
    unsigned long line_no = e.line_no;
    const char *where;
    unsigned long where_line; /* a BATCH record: its file and line */
    tgt_singer_batch_locate(&b->singer, b->input_name, line_no, &where, &where_line);
    char reason[TGT_ERROR_MESSAGE_MAX + TGT_ERROR_DETAIL_MAX + 2];
    snprintf(reason, sizeof(reason), "%s%s%s", db->message, db->detail[0] ? " " : "", db->detail);
    if (b->cfg->invalid_records_mode == TGT_INVALID_FAIL) {
        tgt_error_set(err, TGT_ERR_DATA,
                      "invalid record: the database refused the record of "
                      "stream \"%s\" on %s line %lu: %s",
                      s->name, where == b->input_name ? "input" : where, where_line, db->message);
        tgt_error_sqlstate(err, db->sqlstate);
        if (db->detail[0] != '\0')
            tgt_error_detail(err, "%s", db->detail);
        tgt_error_hint(err, "Nothing of the batch was committed.  invalid_records skip or "
                            "dead_letter would load the batch without this record.");
        /* a COPY line that was only a hint would contradict the input line */
        if (db->bulk_row > 0 && !db->bulk_row_exact)
            tgt_error_where(err, "%s line %lu, stream \"%s\"", where, where_line, s->name);
        else
            tgt_error_where(err, "%s line %lu, stream \"%s\" (%s)", where, where_line, s->name,
                            db->where);
        return -1;
    }
    tgt_message msg;
    if (parse_spooled(b, s, &e, &msg, err) != 0 ||
        tgt_batch_drop_record(b, s, &b->replay_parser, e.line, &msg, line_no, reason, err) != 0 ||
        exclude(b, line_no, err) != 0)
        return -1;
    return replay(b, err);
}

/* The stream whose bulk write or merge the database refused for its data
 * (err says why), or NULL when err is no such refusal.  A refusal already
 * traced to its record (settle_refused) is TGT_ERR_DATA: final. */
static tgt_stream *refused_stream(const tgt_batch *b, const tgt_error *err)
{
    if (err->code != TGT_ERR_LOAD || !refused_value(err))
        return NULL;
    return b->failed_stream != NULL ? b->failed_stream : b->merge_failed;
}

/* Sends the batch with only stream s's first k records, merges up to s and
 * rolls back: 1 when s is refused as before (*why then holds the refusal),
 * 0 when it goes through, -1 (err set) when something else fails. */
static int probe(tgt_batch *b, tgt_stream *s, unsigned long k, tgt_error *why, tgt_error *err)
{
    tgt_log(TGT_LOG_DEBUG, "stream \"%s\": probing with its first %lu records", s->name, k);
    b->probing = 1;
    int rc = resend(b, s, k, err);
    if (rc == 0)
        rc = tgt_batch_ship_and_merge(b, s, err);
    b->probing = 0;
    int refused = rc != 0 && refused_stream(b, err) == s;
    tgt_batch_forget(b);
    if (refused) {
        *why = *err;
        tgt_error_init(err);
        return 1;
    }
    return rc;
}

/* The database refused stream s (err says why) without naming the record
 * for sure: bisect s's records for the one whose addition makes a working
 * prefix fail.  Prefix 0 goes through (nothing of s is sent) and the whole
 * batch was refused, so the search keeps lo = a prefix that works, hi = a
 * prefix that is refused.  `hint` (0: none) is the row the database
 * mentioned: it and the row before it are probed first, which settles a
 * right hint in two probes.  When no probe confirms the whole batch's
 * refusal (it came from sending the streams in another order), the batch
 * is sent again without dropping anything. */
static int recover_by_bisecting(tgt_batch *b, tgt_stream *s, unsigned long hint, tgt_error *err)
{
    tgt_error why = *err;
    tgt_error_init(err);
    unsigned long lo = 0, hi = 0;
    tgt_spool_entry e;
    if (find_row(b, s, 0, &e, &hi, err) != 0 || tgt_spool_end_reading(&b->spool, err) != 0)
        return -1;
    tgt_log(TGT_LOG_INFO,
            "stream \"%s\": %s; looking for the refused record among its %lu uncommitted records",
            s->name, why.message, hi);
    unsigned long guesses[2] = {hint, hint > 0 ? hint - 1 : 0};
    size_t next_guess = 0;
    int confirmed = 0;
    while (hi - lo > 1 || (hi > 0 && !confirmed)) {
        unsigned long mid = hi - lo > 1 ? lo + (hi - lo) / 2 : hi;
        while (next_guess < 2) {
            unsigned long g = guesses[next_guess++];
            if (g > lo && g < hi) {
                mid = g;
                break;
            }
        }
        int refused = probe(b, s, mid, &why, err);
        if (refused < 0)
            return -1;
        if (refused) {
            hi = mid;
            confirmed = 1;
        } else if (mid == hi) {
            tgt_log(TGT_LOG_INFO, "stream \"%s\": the batch goes through when sent again", s->name);
            return replay(b, err);
        } else {
            lo = mid;
        }
    }
    if (hi == 0) {
        *err = why;
        return -1;
    }
    return settle_refused(b, s, hi, &why, err);
}

/* The database refused a bulk write or a merge of stream s.  A COPY that
 * quoted the refused row names it exactly: its place among the stream's
 * pending rows is the rows shipped before that bulk write plus COPY's line
 * number.  Anything else (a row too big, reported where the group it was
 * written in ended; a foreign key checked when the COPY ends; a merge) is
 * bisected. */
static int recover_refused(tgt_batch *b, tgt_error *err)
{
    tgt_stream *s = refused_stream(b, err);
    unsigned long row = err->bulk_row > 0 ? b->failed_first_row + err->bulk_row : 0;
    if (b->failed_stream == s && err->bulk_row_exact && row > 0) {
        tgt_error db = *err;
        tgt_error_init(err);
        return settle_refused(b, s, row, &db, err);
    }
    return recover_by_bisecting(b, s, b->failed_stream == s ? row : 0, err);
}

/* After reconnecting from a COMMIT whose reply was lost: 1 when the server
 * committed that transaction, 0 when it did not, -1 (err set) when it cannot
 * say or still runs it after COMMIT_POLL_TOTAL_MS (the old session may be
 * finishing it: the server learns of the broken connection only when it next
 * talks to it). */
static int lost_commit_went_through(tgt_batch *b, const tgt_error *lost, tgt_error *err)
{
    long waited = 0, wait = COMMIT_POLL_FIRST_MS;
    for (;;) {
        tgt_txn_status st;
        if (b->driver->ops->commit_status(b->driver, &st, err) != 0) {
            /* lost again while asking: the next round must still ask, not
             * send the batch again */
            if (err->connection_lost) {
                err->commit_unknown = 1;
                return -1;
            }
            break;
        }
        if (st == TGT_TXN_COMMITTED || st == TGT_TXN_ABORTED)
            return st == TGT_TXN_COMMITTED;
        if (waited >= COMMIT_POLL_TOTAL_MS) {
            tgt_error_set(err, TGT_ERR_LOAD,
                          "%s while committing, and %.0f s later the server still runs that "
                          "transaction: whether it will commit is unknown",
                          lost->message, (double)waited / 1000.0);
            break;
        }
        if (tgt_retry_sleep_ms(wait) != 0) {
            tgt_error_set(err, TGT_ERR_INTERRUPTED,
                          "%s while committing; stopped by a signal while waiting to learn "
                          "whether that transaction committed",
                          lost->message);
            break;
        }
        waited += wait;
        wait = wait * 2 > COMMIT_POLL_MAX_MS ? COMMIT_POLL_MAX_MS : wait * 2;
    }
    tgt_error_hint(err, "%s", UNKNOWN_COMMIT_HINT);
    return -1;
}

/* The transaction whose COMMIT reply was lost did commit: account it, then
 * finish the commit point, or send again what an early commit left
 * uncommitted. */
static int settle_lost_commit(tgt_batch *b, tgt_error *err)
{
    tgt_log(TGT_LOG_INFO, "the server had committed that transaction: nothing of it is sent "
                          "again");
    tgt_batch_txn_committed(b);
    if (b->pending_rows == 0)
        return tgt_batch_commit_point(b, err);
    return replay(b, err);
}

static int recover_connection(tgt_batch *b, tgt_error *err)
{
    tgt_error lost = *err;
    tgt_error_init(err);
    if (lost.commit_unknown) {
        tgt_log(TGT_LOG_WARN,
                "%s while committing; reconnecting to ask the server whether that transaction "
                "committed",
                lost.message);
    } else {
        tgt_log(TGT_LOG_WARN, "%s; reconnecting to send the %lu uncommitted records again",
                lost.message, b->spool.count);
        tgt_batch_forget(b);
    }
    if (tgt_connect_with_retry(b->driver, b->cfg, err) != 0) {
        char why[TGT_ERROR_MESSAGE_MAX];
        snprintf(why, sizeof(why), "%s", err->message);
        tgt_error reconnect = *err;
        tgt_error_init(err);
        tgt_error_set(err,
                      reconnect.code == TGT_ERR_INTERRUPTED ? TGT_ERR_INTERRUPTED : TGT_ERR_LOAD,
                      "%s, and reconnecting failed: %s", lost.message, why);
        if (lost.commit_unknown)
            tgt_error_hint(err, "%s", UNKNOWN_COMMIT_HINT);
        else
            tgt_error_hint(err, "Nothing after the last STATE written was committed; run again "
                                "from it.");
        return -1;
    }
    if (lost.commit_unknown) {
        int committed = lost_commit_went_through(b, &lost, err);
        if (committed < 0)
            return -1;
        if (committed)
            return settle_lost_commit(b, err);
        tgt_log(TGT_LOG_INFO, "the server rolled that transaction back: sending it again");
        tgt_batch_forget(b);
    }
    return replay(b, err);
}

/* The wait before conflict retry number `attempt` (1, 2, ...): the mean
 * doubles each time, the jitter keeps two colliding runs out of step. */
static long conflict_wait_ms(unsigned attempt)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    unsigned seed = (unsigned)now.tv_nsec ^ ((unsigned)getpid() * 2654435761u);
    long mean = CONFLICT_WAIT_MS << (attempt - 1);
    return mean / 2 + (long)((unsigned long)rand_r(&seed) % (unsigned long)mean);
}

/* A deadlock or serialization failure rolled the transaction back: run it
 * again after a short wait, or give up after CONFLICT_ATTEMPTS runs. */
static int recover_conflict(tgt_batch *b, tgt_error *err)
{
    if (++b->conflicts >= CONFLICT_ATTEMPTS) {
        err->conflict = 0; /* given up: no longer recoverable */
        size_t used = strlen(err->message);
        snprintf(err->message + used, sizeof(err->message) - used,
                 " (the transaction was run %d times)", CONFLICT_ATTEMPTS);
        return -1;
    }
    tgt_error conflict = *err;
    tgt_error_init(err);
    /* the detail names the other process, over several lines: one log line */
    for (char *c = conflict.detail; *c != '\0'; c++) {
        if (*c == '\n' || *c == '\r' || *c == '\t')
            *c = ' ';
    }
    long wait = conflict_wait_ms(b->conflicts);
    tgt_log(TGT_LOG_WARN,
            "%s%s%s%s; rolled back, sending the %lu uncommitted records again in %ld ms "
            "(attempt %u of %d)",
            conflict.message, conflict.detail[0] ? " (" : "", conflict.detail,
            conflict.detail[0] ? ")" : "", b->spool.count, wait, b->conflicts + 1,
            CONFLICT_ATTEMPTS);
    tgt_batch_forget(b);
    (void)tgt_retry_sleep_ms(wait); /* a stop signal only cuts the wait short */
    return replay(b, err);
}

/* The stream whose direct load met a key clash, or NULL when err is none. */
static tgt_stream *clashed_stream(const tgt_batch *b, const tgt_error *err)
{
    tgt_stream *s = b->failed_stream;
    return err->key_clash && s != NULL && s->direct ? s : NULL;
}

/* A key of a stream's direct load is in its table already (another
 * loader's, an earlier batch's) or twice in the batch: nothing of the
 * transaction stays, the stream stages and merges from now on, so the
 * newest record per key wins, and the batch is sent again. */
static int recover_key_clash(tgt_batch *b, tgt_error *err)
{
    tgt_stream *s = clashed_stream(b, err);
    tgt_log(TGT_LOG_INFO,
            "stream \"%s\": %s; sending the batch again through staging and merge, which "
            "keeps the newest record per key",
            s->name, err->message);
    s->direct = 0;
    tgt_error_init(err);
    tgt_batch_forget(b);
    return replay(b, err);
}

static int recoverable(const tgt_batch *b, const tgt_error *err)
{
    return err->connection_lost || err->conflict || clashed_stream(b, err) != NULL ||
           refused_stream(b, err) != NULL;
}

int tgt_loader_recover(tgt_batch *b, tgt_error *err)
{
    /* the replay itself may lose the connection again or meet the next
     * refused row: each round recovers from what stopped the previous one */
    while (b->connected && recoverable(b, err) && ++b->recoveries <= RECOVERIES_MAX) {
        int rc = err->connection_lost             ? recover_connection(b, err)
                 : err->conflict                  ? recover_conflict(b, err)
                 : clashed_stream(b, err) != NULL ? recover_key_clash(b, err)
                                                  : recover_refused(b, err);
        if (rc == 0)
            return 0;
    }
    return -1;
}

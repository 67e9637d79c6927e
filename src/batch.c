/*
 * batch.c - the batch lifecycle (see batch.h): encode, ship, merge, commit,
 * STATE.  The order of operations at a commit point is the product's
 * promise, so it lives in one function, tgt_batch_commit_point().  The
 * transaction flag in_txn is written here and nowhere else.  Nothing here
 * dispatches messages or recovers from failures: loader.c and the handlers
 * call down into this file, never the other way round.
 */
#include "batch.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "record.h"
#include "retry.h"

/* Warnings for dropped records per stream before they are only counted. */
#define INVALID_WARNINGS_MAX 20

/* Batch ages are checked on every record; the coarse clock is read from
 * the vDSO without a syscall and its few milliseconds of resolution do not
 * matter for ages counted in seconds. */
#define BATCH_CLOCK CLOCK_MONOTONIC_COARSE

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(BATCH_CLOCK, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* The timestamp_column setting as a column name under the driver's
 * identifier limit. */
static int name_timestamp_column(tgt_batch *b, tgt_error *err)
{
    const char *ts = b->cfg->timestamp_column;
    size_t ts_len = strlen(ts);
    if (tgt_naming_identifier(&ts, &ts_len, 1, tgt_naming_limit(b->driver->ops->caps->ident_max),
                              b->timestamp_column) != 0)
        return tgt_error_nomem(err);
    return 0;
}

int tgt_batch_init(tgt_batch *b, const tgt_config *cfg, tgt_driver *driver, const char *input_name,
                   FILE *state_out, tgt_error *err)
{
    memset(b, 0, sizeof(*b));
    b->cfg = cfg;
    b->driver = driver;
    b->state_out = state_out;
    b->input_name = input_name;
    tgt_stream_registry_init(&b->streams);
    tgt_state_init(&b->state);
    tgt_sbuf_init(&b->scratch);
    tgt_spool_init(&b->spool);
    tgt_spill_init(&b->spill);
    tgt_json_parser_init(&b->replay_parser);
    tgt_singer_batch_init(&b->singer);
    b->overwrite = cfg->load_method_mode == TGT_LOAD_OVERWRITE;
    /* before anything is opened: a bad rule is a configuration error */
    if (tgt_transform_new(cfg->transformations, cfg->pseudonymization_key, &b->transform, err) != 0)
        return -1;
    if (cfg->invalid_records_mode == TGT_INVALID_DEAD_LETTER) {
        if (tgt_dead_letter_open(&b->dead_letter, cfg->dead_letter_path, err) != 0)
            return -1;
        b->dead_letter_open = 1;
    }
    return name_timestamp_column(b, err);
}

void tgt_batch_deinit(tgt_batch *b)
{
    tgt_stream_registry_deinit(&b->streams);
    tgt_state_deinit(&b->state);
    tgt_sbuf_deinit(&b->scratch);
    tgt_spool_deinit(&b->spool);
    tgt_spill_deinit(&b->spill);
    tgt_json_parser_deinit(&b->replay_parser);
    tgt_singer_batch_deinit(&b->singer);
    tgt_transform_free(b->transform);
    free(b->excluded);
    free(b->merge_tables);
    free(b->txn_streams);
    if (b->dead_letter_open)
        tgt_dead_letter_close(&b->dead_letter);
}

int tgt_batch_connect(tgt_batch *b, tgt_error *err)
{
    if (b->connected)
        return 0;
    int provisional = b->driver->ops->caps->provisional;
    if (tgt_connect_with_retry(b->driver, b->cfg, err) != 0)
        return -1;
    b->connected = 1;
    /* the warehouse's own identifier limit is known only now (driver.h) */
    return provisional ? name_timestamp_column(b, err) : 0;
}

/* A commit point committed everything: what recovery kept of the batch
 * (the spool, the exclusions, what failed, the BATCH files) is no longer
 * needed, and the dead letters of records left out of it are made durable
 * before the STATE that follows. */
static int batch_committed(tgt_batch *b, tgt_error *err)
{
    b->n_excluded = 0;
    b->recoveries = 0;
    for (tgt_stream *s = b->streams.first; s != NULL; s = s->next_in_order)
        s->committed_through = 0;
    b->failed_stream = NULL;
    b->merge_failed = NULL;
    tgt_singer_batch_committed(&b->singer);
    if (b->dead_letter_open && tgt_dead_letter_flush(&b->dead_letter, err) != 0)
        return -1;
    return tgt_spool_reset(&b->spool, err);
}

/* The record object's JSON text inside a RECORD line (for dead letters). */
static void record_span(const tgt_json_parser *p, const char *line, const tgt_message *msg,
                        const char **start, size_t *len)
{
    const tgt_json_token *t = &p->tokens[msg->record];
    *start = line + t->start;
    *len = t->len;
}

int tgt_batch_drop_record(tgt_batch *b, tgt_stream *s, const tgt_json_parser *p, const char *line,
                          const tgt_message *msg, unsigned long line_no, const char *reason,
                          tgt_error *err)
{
    const char *where;
    unsigned long where_line; /* a BATCH record: its file and line */
    tgt_singer_batch_locate(&b->singer, b->input_name, line_no, &where, &where_line);
    if (b->dead_letter_open) {
        const char *rec;
        size_t rec_len;
        record_span(p, line, msg, &rec, &rec_len);
        if (tgt_dead_letter_write(&b->dead_letter, where, where_line, s->name, s->name_len, reason,
                                  rec, rec_len, err) != 0)
            return -1;
    }
    s->invalid_pending++;
    if (++s->invalid_total <= INVALID_WARNINGS_MAX)
        tgt_log(TGT_LOG_WARN, "%s line %lu: %s record dropped (invalid_records %s): %s", where,
                where_line, s->name, b->cfg->invalid_records, reason);
    else if (s->invalid_total == INVALID_WARNINGS_MAX + 1)
        tgt_log(TGT_LOG_WARN,
                "stream \"%s\": more invalid records are dropped without a "
                "warning each; METRIC invalid_record_count counts them",
                s->name);
    return 0;
}

/* A record the encoder refused (err holds why; p and msg are its parsed
 * line): invalid_records fail returns -1 with err; skip and dead_letter
 * drop it, clear err and return 0. */
static int invalid_record(tgt_batch *b, tgt_stream *s, const tgt_json_parser *p, const char *line,
                          const tgt_message *msg, unsigned long line_no, tgt_error *err)
{
    if (b->cfg->invalid_records_mode == TGT_INVALID_FAIL)
        return -1;
    char reason[TGT_ERROR_MESSAGE_MAX];
    snprintf(reason, sizeof(reason), "%s", err->message);
    tgt_error_init(err);
    return tgt_batch_drop_record(b, s, p, line, msg, line_no, reason, err);
}

/* Everything sent since the last commit is rolled back and forgotten. */
void tgt_batch_forget(tgt_batch *b)
{
    b->driver->ops->rollback(b->driver);
    b->in_txn = 0;
    b->txn_tables = 0;
    b->copy_stream = NULL;
    b->copy_closed = 0;
    b->merge_failed = NULL;
    b->failed_stream = NULL;
    b->buffered = 0;
    b->pending_rows = 0;
    for (tgt_stream *s = b->streams.first; s != NULL; s = s->next_in_order) {
        s->in_txn = 0;
        tgt_sbuf_reset(&s->chunk);
        tgt_spill_drop(&b->spill, &s->spill);
        s->rows_in_chunk = 0;
        s->rows_pending = 0;
        s->rows_shipped = 0;
        s->seq = 0;
        s->partial_rows = 0;
    }
}

/* A UTC time with microseconds, "YYYY-MM-DD HH:MM:SS.uuuuuu" (record.h; the
 * driver's row writer says "UTC" its own way).
 * The part up to the seconds is re-formatted only when the second changes. */
static size_t format_time(const struct timespec *at, time_t *cached_second, char buf[40])
{
    if (at->tv_sec != *cached_second || buf[0] == '\0') {
        struct tm tm;
        gmtime_r(&at->tv_sec, &tm);
        strftime(buf, 40, "%Y-%m-%d %H:%M:%S", &tm);
        *cached_second = at->tv_sec;
    }
    long micros = at->tv_nsec / 1000;
    char *p = buf + 19;
    *p++ = '.';
    for (int i = 5; i >= 0; i--, micros /= 10)
        p[i] = (char)('0' + micros % 10);
    p[6] = '\0';
    return 19 + 1 + 6;
}

/* The receive time of the record being handled, and its _sdc_sequence:
 * microseconds since the epoch, kept strictly increasing within the run so
 * the order of records survives a clock that stands still. */
static void update_loaded_at(tgt_batch *b, const struct timespec *now)
{
    b->loaded_at_len = format_time(now, &b->loaded_at_second, b->loaded_at);
    unsigned long long micros =
        (unsigned long long)now->tv_sec * 1000000ull + (unsigned long long)now->tv_nsec / 1000ull;
    b->sequence = micros > b->sequence ? micros : b->sequence + 1;
}

/* A batch begins: remember when, for max_batch_age_seconds and _sdc_batched_at. */
static void begin_batch(tgt_batch *b, const struct timespec *now)
{
    clock_gettime(BATCH_CLOCK, &b->batch_start);
    time_t second = 0;
    b->batched_at[0] = '\0';
    b->batched_at_len = format_time(now, &second, b->batched_at);
}

int tgt_batch_end_bulk_write(tgt_batch *b, tgt_error *err)
{
    if (b->copy_stream == NULL)
        return 0;
    unsigned long rows = 0;
    tgt_stream *s = b->copy_stream;
    b->copy_stream = NULL;
    b->copy_closed = 0;
    if (b->driver->ops->write_end(b->driver, &rows, err) != 0) {
        b->failed_stream = s;
        b->failed_first_row = b->copy_first_row;
        return -1;
    }
    tgt_log(TGT_LOG_DEBUG, "stream \"%s\": a bulk write of %lu rows (%zu bytes wait to be sent)",
            s->name, rows, b->spill.bytes);
    if (rows != b->copy_rows)
        return tgt_error_set(err, TGT_ERR_INTERNAL,
                             "stream \"%s\": PostgreSQL took %lu rows of %lu sent", s->name, rows,
                             b->copy_rows);
    return 0;
}

static void release_chunk(tgt_batch *b, tgt_stream *s)
{
    b->buffered -= s->chunk.len;
    /* a huge row grew this chunk; give the memory back rather than keep it
     * per stream for the rest of the run.  With many streams no chunk keeps
     * its memory between shipments either: 5,000 streams would otherwise
     * hold 128 kB each for the whole run, while all streams' chunks
     * together are meant to stay within TGT_BUFFERED_MAX. */
    if (s->chunk.cap > 4 * TGT_CHUNK_BYTES ||
        b->streams.n_streams * 2 * TGT_CHUNK_BYTES > TGT_BUFFERED_MAX)
        tgt_sbuf_deinit(&s->chunk);
    else
        tgt_sbuf_reset(&s->chunk);
    s->rows_in_chunk = 0;
}

static int ship(tgt_batch *b, tgt_stream *s, tgt_error *err);
static int ship_all(tgt_batch *b, tgt_error *err);
static int merge_keyed(tgt_batch *b, const tgt_stream *last, tgt_error *err);

/* The open transaction holds as many tables as one may: ship the rest of
 * its streams' rows, merge and commit it before the commit point, so a run
 * with thousands of streams never exhausts the server's lock table.  Those
 * streams' records are committed for good (committed_through); STATE waits
 * for the commit point, when every record before it is committed. */
static int commit_early(tgt_batch *b, tgt_error *err)
{
    size_t tables = b->txn_tables;
    for (size_t i = 0; i < b->txn_tables; i++) {
        if (ship(b, b->txn_streams[i], err) != 0)
            return -1;
    }
    if (tgt_batch_end_bulk_write(b, err) != 0 || merge_keyed(b, NULL, err) != 0 ||
        tgt_batch_commit(b, err) != 0)
        return -1;
    tgt_log(TGT_LOG_DEBUG,
            "committed the rows of %zu streams early: one transaction writes to no more tables",
            tables);
    return 0;
}

/* Stream s's rows are about to go into the open transaction (begun here if
 * none is open); a transaction that already holds the most tables the driver
 * allows is committed first (but not while recovery bisects: its probes are
 * rolled back). */
static int join_txn(tgt_batch *b, tgt_stream *s, tgt_error *err)
{
    tgt_driver *d = b->driver;
    if (b->in_txn && !b->probing && b->txn_tables >= d->ops->tables_per_transaction(d) &&
        commit_early(b, err) != 0)
        return -1;
    if (b->txn_tables == b->txn_cap) {
        size_t cap = b->txn_cap ? 2 * b->txn_cap : 16;
        tgt_stream **grown = realloc(b->txn_streams, cap * sizeof(*grown));
        if (grown == NULL)
            return tgt_error_nomem(err);
        b->txn_streams = grown;
        b->txn_cap = cap;
    }
    if (!b->in_txn) {
        if (d->ops->begin(d, err) != 0)
            return -1;
        b->in_txn = 1;
    }
    s->in_txn = 1;
    b->txn_streams[b->txn_tables++] = s;
    return 0;
}

/* Makes the open bulk write stream s's, opening the transaction and ending
 * another stream's bulk write as needed. */
static int open_bulk_write(tgt_batch *b, tgt_stream *s, tgt_error *err)
{
    tgt_driver *d = b->driver;
    if (!s->in_txn && join_txn(b, s, err) != 0)
        return -1;
    /* a write closed early takes no more rows, not even its own stream's */
    if (b->copy_stream == s && !b->copy_closed)
        return 0;
    if (tgt_batch_end_bulk_write(b, err) != 0)
        return -1;
    tgt_write_mode mode = tgt_stream_stages(s)        ? TGT_WRITE_STAGING
                          : s->model.table.n_keys > 0 ? TGT_WRITE_DIRECT
                                                      : TGT_WRITE_APPEND;
    if (d->ops->write_begin(d, &s->model.table, mode, err) != 0)
        return -1;
    b->copy_stream = s;
    b->copy_rows = 0;
    b->copy_first_row = s->rows_shipped;
    return 0;
}

/* Sends `rows` rows of s (data, len) into its open bulk write. */
static int send_rows(tgt_batch *b, tgt_stream *s, const char *data, size_t len, unsigned long rows,
                     tgt_error *err)
{
    if (b->driver->ops->write_data(b->driver, data, len, err) != 0) {
        b->failed_stream = s;
        b->failed_first_row = b->copy_first_row;
        tgt_error_where(err, "loading stream \"%s\"", s->name);
        return -1;
    }
    b->copy_rows += rows;
    s->rows_shipped += rows;
    return 0;
}

/* Sends the oldest slot of s's spilled rows into its open bulk write. */
static int send_spilled(tgt_batch *b, tgt_stream *s, tgt_error *err)
{
    const char *data;
    size_t len;
    unsigned long rows;
    if (tgt_spill_pop(&b->spill, &s->spill, &data, &len, &rows, err) < 0)
        return -1;
    return send_rows(b, s, data, len, rows, err);
}

/* Sends a stream's encoded rows to the driver, its spilled ones first,
 * opening the transaction and the stream's bulk write as needed. */
static int ship(tgt_batch *b, tgt_stream *s, tgt_error *err)
{
    if (s->chunk.len == 0 && tgt_spill_queue_empty(&s->spill))
        return 0;
    if (open_bulk_write(b, s, err) != 0)
        return -1;
    while (!tgt_spill_queue_empty(&s->spill)) {
        if (send_spilled(b, s, err) != 0)
            return -1;
    }
    if (s->chunk.len == 0)
        return 0;
    if (send_rows(b, s, s->chunk.data, s->chunk.len, s->rows_in_chunk, err) != 0)
        return -1;
    release_chunk(b, s);
    return 0;
}

/* Sends the end of the open bulk write now (write_close) and leaves its
 * outcome for tgt_batch_end_bulk_write; a failure is pinned on its stream as
 * that function would. */
static int close_bulk_write(tgt_batch *b, tgt_error *err)
{
    tgt_stream *s = b->copy_stream;
    if (b->driver->ops->write_close(b->driver, err) != 0) {
        b->copy_stream = NULL;
        b->failed_stream = s;
        b->failed_first_row = b->copy_first_row;
        tgt_error_where(err, "loading stream \"%s\"", s->name);
        return -1;
    }
    b->copy_closed = 1;
    return 0;
}

/* Ships stream s's chunk while records keep coming.  When the chunk shipped
 * before was another stream's, the next one likely is too: the bulk write is
 * then closed at once, so the server finishes it while records are encoded,
 * rather than while target-pg waits at the next switch.  One stream's
 * chunks in a row keep one bulk write open, as ever. */
static int ship_encoded(tgt_batch *b, tgt_stream *s, tgt_error *err)
{
    uint32_t before = b->last_shipped;
    if (ship(b, s, err) != 0)
        return -1;
    b->last_shipped = s->id + 1;
    if (before == 0 || before == b->last_shipped || b->driver->ops->write_close == NULL ||
        b->copy_stream != s || b->copy_closed)
        return 0;
    return close_bulk_write(b, err);
}

/* The total at which staggered shipping (TGT_STAGGER_CHUNK_MAX) ships the
 * largest chunk, or 0 when it does not apply: one stream (its chunks ship
 * as they fill, into one open bulk write), or so many streams that a chunk
 * each would pass TGT_BUFFERED_MAX (everything ships at that size then, as
 * the scan for the largest chunk would cost more than it saves). */
static size_t stagger_budget(const tgt_batch *b)
{
    size_t n = b->streams.n_streams;
    if (n < 2 || n > TGT_BUFFERED_MAX / TGT_CHUNK_BYTES)
        return 0;
    return n * TGT_CHUNK_BYTES;
}

static tgt_stream *largest_chunk(const tgt_batch *b)
{
    tgt_stream *largest = b->streams.first;
    for (tgt_stream *s = b->streams.first; s != NULL; s = s->next_in_order) {
        if (s->chunk.len > largest->chunk.len)
            largest = s;
    }
    return largest;
}

/* Whether full chunks go to the spill file (TGT_SPILL_MAX). */
static int spills(const tgt_batch *b)
{
    const tgt_driver_ops *ops = b->driver->ops;
    return ops->write_room != NULL && ops->write_close != NULL && ops->write_ready != NULL &&
           stagger_budget(b) != 0;
}

/* The stream with the most rows spilled, or NULL when none waits. */
static tgt_stream *largest_spill(const tgt_batch *b)
{
    tgt_stream *largest = NULL;
    for (tgt_stream *s = b->streams.first; s != NULL; s = s->next_in_order) {
        if (s->spill.bytes > 0 && (largest == NULL || s->spill.bytes > largest->spill.bytes))
            largest = s;
    }
    return largest;
}

/* Feeds the server spilled rows without waiting for it (TGT_SPILL_MAX):
 * the open bulk write gets its stream's slots while the driver has room,
 * is closed when they are gone, and once the server has finished it the
 * stream with the most rows waiting gets the next.  Returns when the driver
 * would wait or nothing waits. */
static int pump(tgt_batch *b, tgt_error *err)
{
    tgt_driver *d = b->driver;
    for (;;) {
        tgt_stream *s = b->copy_stream;
        if (s != NULL && !b->copy_closed) {
            if (!tgt_spill_queue_empty(&s->spill)) {
                if (!d->ops->write_room(d))
                    return 0;
                if (send_spilled(b, s, err) != 0)
                    return -1;
                continue;
            }
            if (close_bulk_write(b, err) != 0)
                return -1;
        }
        if (b->copy_stream != NULL) {
            if (!d->ops->write_ready(d))
                return 0;
            if (tgt_batch_end_bulk_write(b, err) != 0)
                return -1;
        }
        tgt_stream *next = largest_spill(b);
        if (next == NULL)
            return 0;
        if (open_bulk_write(b, next, err) != 0)
            return -1;
    }
}

/* The spilling regime's step after stream s's chunk grew: a full chunk
 * joins its stream's queue, and the pump runs. */
static int spill_full(tgt_batch *b, tgt_stream *s, tgt_error *err)
{
    int spilled = s->chunk.len >= TGT_CHUNK_BYTES;
    if (spilled) {
        if (tgt_spill_push(&b->spill, &s->spill, s->chunk.data, s->chunk.len, s->rows_in_chunk,
                           err) != 0)
            return -1;
        release_chunk(b, s);
    }
    if (!spilled && b->since_pump < TGT_PUMP_POLL_BYTES)
        return 0;
    b->since_pump = 0;
    if (pump(b, err) != 0)
        return -1;
    while (b->spill.bytes > TGT_SPILL_MAX) {
        if (ship(b, largest_spill(b), err) != 0)
            return -1;
    }
    return b->buffered >= TGT_BUFFERED_MAX ? ship_all(b, err) : 0;
}

/* Ships what the chunk sizes call for after stream s's chunk grew. */
static int ship_full(tgt_batch *b, tgt_stream *s, tgt_error *err)
{
    if (spills(b))
        return spill_full(b, s, err);
    size_t budget = stagger_budget(b);
    if (budget == 0) {
        if (s->chunk.len >= TGT_CHUNK_BYTES && ship_encoded(b, s, err) != 0)
            return -1;
        return b->buffered >= TGT_BUFFERED_MAX ? ship_all(b, err) : 0;
    }
    int full = s->chunk.len >= TGT_STAGGER_CHUNK_MAX;
    if (!full && b->buffered < budget)
        return 0;
    return ship_encoded(b, full ? s : largest_chunk(b), err);
}

static int ship_all(tgt_batch *b, tgt_error *err)
{
    /* the open bulk write first: it saves one switch */
    if (b->copy_stream != NULL && ship(b, b->copy_stream, err) != 0)
        return -1;
    for (tgt_stream *s = b->streams.first; s != NULL; s = s->next_in_order) {
        if (ship(b, s, err) != 0)
            return -1;
    }
    return 0;
}

static void emit_metric(const char *type, const char *metric, json_t *value, const char *stream)
{
    const char *status = strcmp(metric, "invalid_record_count") == 0 ? "skipped" : "succeeded";
    json_t *m = json_pack("{s:s, s:s, s:o, s:{s:s, s:s}}", "type", type, "metric", metric, "value",
                          value, "tags", "stream", stream, "status", status);
    /* 6 significant digits: timers print 0.004, not 0.0040000000000000001 */
    char *text = m ? json_dumps(m, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    if (text != NULL)
        tgt_log_metric(text);
    free(text);
    json_decref(m);
}

static void report_invalid(tgt_stream *s)
{
    if (s->invalid_pending == 0)
        return;
    emit_metric("counter", "invalid_record_count", json_integer((json_int_t)s->invalid_pending),
                s->name);
    s->invalid_pending = 0;
}

void tgt_batch_txn_committed(tgt_batch *b)
{
    double seconds = seconds_since(&b->batch_start);
    for (size_t i = 0; i < b->txn_tables; i++) {
        tgt_stream *s = b->txn_streams[i];
        s->in_txn = 0;
        report_invalid(s);
        if (s->rows_pending > 0) {
            emit_metric("counter", "record_count", json_integer((json_int_t)s->rows_pending),
                        s->name);
            emit_metric("timer", "batch_processing_time", json_real(seconds), s->name);
        }
        s->rows_committed += s->rows_pending;
        b->pending_rows -= s->rows_pending < b->pending_rows ? s->rows_pending : b->pending_rows;
        s->rows_pending = 0;
        s->rows_shipped = 0;
        s->committed_through = s->last_line;
    }
    b->txn_tables = 0;
    b->in_txn = 0;
    b->conflicts = 0;
}

int tgt_batch_commit(tgt_batch *b, tgt_error *err)
{
    if (b->driver->ops->commit(b->driver, err) != 0)
        return -1;
    tgt_batch_txn_committed(b);
    return 0;
}

int tgt_batch_begin_alone(tgt_batch *b, tgt_error *err)
{
    if (b->driver->ops->begin(b->driver, err) != 0)
        return -1;
    b->in_txn = 1;
    return 0;
}

int tgt_batch_commit_alone(tgt_batch *b, tgt_error *err)
{
    if (b->driver->ops->commit(b->driver, err) != 0)
        return -1;
    b->in_txn = 0;
    return 0;
}

static int by_registration(const void *a, const void *b)
{
    uint32_t x = (*(tgt_stream *const *)a)->id, y = (*(tgt_stream *const *)b)->id;
    return x < y ? -1 : x > y;
}

/* Whether merge_keyed merges stream s (of the open transaction) when it
 * stops after `last` (NULL: none). */
static int merges(const tgt_stream *s, const tgt_stream *last)
{
    return s->rows_pending > 0 && tgt_stream_stages(s) && (last == NULL || s->id <= last->id);
}

/* The driver's lock_for_merge over the tables merge_keyed is about to merge. */
static int lock_for_merge(tgt_batch *b, const tgt_stream *last, tgt_error *err)
{
    size_t n = 0;
    for (size_t i = 0; i < b->txn_tables; i++) {
        tgt_stream *s = b->txn_streams[i];
        if (merges(s, last)) {
            if (n == b->merge_tables_cap) {
                size_t cap = n ? 2 * n : 16;
                const tgt_table **grown = realloc(b->merge_tables, cap * sizeof(*grown));
                if (grown == NULL)
                    return tgt_error_nomem(err);
                b->merge_tables = grown;
                b->merge_tables_cap = cap;
            }
            b->merge_tables[n++] = &s->model.table;
        }
    }
    return b->driver->ops->lock_for_merge(b->driver, b->merge_tables, n, err);
}

/* Merges the keyed streams' staged rows, in stream order (a parent table's
 * stream usually comes before its children's), up to and including `last`
 * (NULL: all), after locking their tables in the driver's stable order.  A
 * refusal is pinned on its stream (merge_failed) so recovery can trace the
 * record. */
static int merge_keyed(tgt_batch *b, const tgt_stream *last, tgt_error *err)
{
    qsort(b->txn_streams, b->txn_tables, sizeof(*b->txn_streams), by_registration);
    if (lock_for_merge(b, last, err) != 0)
        return -1;
    for (size_t i = 0; i < b->txn_tables; i++) {
        tgt_stream *s = b->txn_streams[i];
        if (merges(s, last)) {
            unsigned long changed = 0;
            if (b->driver->ops->merge(b->driver, &s->model.table, s->partial_rows, &changed, err) !=
                0) {
                b->merge_failed = s;
                tgt_error_where(err, "merging stream \"%s\"", s->name);
                return -1;
            }
            tgt_log(TGT_LOG_DEBUG, "stream \"%s\": %lu rows merged, %lu inserted or changed",
                    s->name, s->rows_pending, changed);
            s->seq = 0;
            s->partial_rows = 0;
        }
    }
    return 0;
}

int tgt_batch_ship_and_merge(tgt_batch *b, const tgt_stream *last, tgt_error *err)
{
    if (ship_all(b, err) != 0 || tgt_batch_end_bulk_write(b, err) != 0)
        return -1;
    return merge_keyed(b, last, err);
}

int tgt_batch_emit_state(tgt_batch *b, tgt_error *err)
{
    /* with overwrite nothing is committed for good until the swap */
    if (b->overwrite)
        return 0;
    return tgt_state_emit(&b->state, b->state_out, err);
}

/* Ship, merge, commit, then (and only then) write the latest STATE. */
int tgt_batch_commit_point(tgt_batch *b, tgt_error *err)
{
    if (b->pending_rows > 0) {
        struct timespec started;
        clock_gettime(BATCH_CLOCK, &started);
        if (tgt_batch_ship_and_merge(b, NULL, err) != 0 || tgt_batch_commit(b, err) != 0)
            return -1;
        tgt_log(TGT_LOG_DEBUG, "commit took %.3f s", seconds_since(&started));
    }
    /* everything is committed: also the counts of streams that had no rows */
    for (tgt_stream *s = b->streams.first; s != NULL; s = s->next_in_order)
        report_invalid(s);
    b->pending_rows = 0;
    if (batch_committed(b, err) != 0)
        return -1;
    return tgt_batch_emit_state(b, err);
}

int tgt_batch_check_age(tgt_batch *b, tgt_error *err)
{
    if (b->pending_rows == 0 ||
        seconds_since(&b->batch_start) < (double)b->cfg->max_batch_age_seconds)
        return 0;
    return tgt_batch_commit_point(b, err);
}

static void warn_nul_once(tgt_stream *s)
{
    if (s->nul_replaced == 0 || s->nul_warned)
        return;
    s->nul_warned = 1;
    tgt_log(TGT_LOG_WARN,
            "stream \"%s\": text holds U+0000, which no warehouse gets (PostgreSQL cannot "
            "store it, and every warehouse is loaded alike); it is replaced by U+FFFD (the count "
            "is reported at the end)",
            s->name);
}

static void warn_extracted_at_once(tgt_batch *b, tgt_stream *s)
{
    if (s->bad_extracted_at == 0 || s->extracted_warned)
        return;
    s->extracted_warned = 1;
    tgt_log(TGT_LOG_WARN,
            "stream \"%s\": the time_extracted of the RECORD at %s line %lu is not an ISO 8601 "
            "date-time; _sdc_extracted_at is NULL for such records (the count is reported at "
            "the end)",
            s->name, b->input_name, s->bad_extracted_line);
}

/* Encodes one RECORD into its stream's chunk and ships full chunks; a
 * record that does not fit its table goes to the invalid_records policy. */
int tgt_batch_encode(tgt_batch *b, tgt_stream *s, const tgt_json_parser *p, const char *line,
                     size_t len, unsigned long line_no, const tgt_message *msg, int replaying,
                     tgt_error *err)
{
    /* one clock reading: a batch begins when its first record arrives */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (b->pending_rows == 0)
        begin_batch(b, &now);
    update_loaded_at(b, &now);
    const char *where_name;
    unsigned long where_line; /* a BATCH record: its file and line */
    tgt_singer_batch_locate(&b->singer, b->input_name, line_no, &where_name, &where_line);
    tgt_record_context ctx = {
        .input_name = where_name,
        .line_no = where_line,
        .rows = b->driver->ops->rows,
        .json_max_depth = b->driver->ops->caps->json_max_depth,
        .loaded_at = b->loaded_at,
        .loaded_at_len = b->loaded_at_len,
        .staging = tgt_stream_stages(s),
        .scratch = &b->scratch,
        .batched_at = b->batched_at,
        .batched_at_len = b->batched_at_len,
        .sequence = b->sequence,
        .extracted_tok = msg->time_extracted,
        .version_tok = msg->version,
    };
    size_t before = s->chunk.len;
    if (tgt_record_encode(s, p, line, (size_t)msg->record, &ctx, err) != 0) {
        if (err->code != TGT_ERR_DATA)
            return -1;
        return invalid_record(b, s, p, line, msg, line_no, err);
    }
    if (!replaying) {
        if (tgt_spool_append(&b->spool, line_no, s->id, line, len, err) != 0)
            return -1;
        b->last_spooled_line = line_no;
    }
    s->last_line = line_no;
    warn_nul_once(s);
    warn_extracted_at_once(b, s);
    b->buffered += s->chunk.len - before;
    b->since_pump += s->chunk.len - before;
    b->pending_rows++;
    return ship_full(b, s, err);
}

void tgt_batch_abort(tgt_batch *b)
{
    if (b->connected)
        b->driver->ops->rollback(b->driver);
    b->in_txn = 0;
    b->txn_tables = 0;
    b->copy_stream = NULL;
    b->copy_closed = 0;
}

/*
 * loader.c - messages -> committed rows -> STATE (see loader.h for the
 * guarantees).  The order of operations at a commit point is the product's
 * promise, so it lives in one function, tgt_loader_commit_point().  SCHEMA
 * messages are handled in loader_schema.c, ACTIVATE_VERSION in
 * loader_activate.c.
 */
#include "loader.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "loader_internal.h"
#include "log.h"
#include "naming.h"
#include "record.h"
#include "retry.h"
#include "schema.h"
#include "signals.h"

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

/* The receive-time column cannot be one of the metadata columns: each has
 * its own meaning to the loader (a deletion mark, a version, an order), and
 * two columns of one name cannot both be filled. */
static int check_timestamp_column(const char *name, tgt_error *err)
{
    static const char *const metadata[] = {"_sdc_extracted_at", "_sdc_received_at",
                                           "_sdc_batched_at",   TGT_SDC_DELETED_AT,
                                           TGT_SDC_TABLE_VERSION, "_sdc_sequence"};
    for (size_t i = 0; i < sizeof(metadata) / sizeof(metadata[0]); i++) {
        if (strcmp(name, metadata[i]) != 0)
            continue;
        tgt_error_set(err, TGT_ERR_USAGE,
                      "setting \"timestamp_column\" names \"%s\", a metadata column target-pg "
                      "fills itself",
                      name);
        tgt_error_hint(err, "Choose another name for the receive-time column (the default is "
                            "__loaded_at).");
        return -1;
    }
    return 0;
}

int tgt_loader_init(tgt_loader *l, const tgt_config *cfg, tgt_driver *driver,
                    const char *input_name, FILE *state_out, tgt_error *err)
{
    memset(l, 0, sizeof(*l));
    l->cfg = cfg;
    l->driver = driver;
    l->state_out = state_out;
    l->input_name = input_name;
    tgt_stream_registry_init(&l->streams);
    tgt_state_init(&l->state);
    tgt_sbuf_init(&l->scratch);
    tgt_spool_init(&l->spool);
    tgt_json_parser_init(&l->replay_parser);
    tgt_singer_batch_init(&l->batch);
    l->overwrite = cfg->load_method_mode == TGT_LOAD_OVERWRITE;
    if (cfg->invalid_records_mode == TGT_INVALID_DEAD_LETTER) {
        if (tgt_dead_letter_open(&l->dead_letter, cfg->dead_letter_path, err) != 0)
            return -1;
        l->dead_letter_open = 1;
    }
    const char *ts = cfg->timestamp_column;
    size_t ts_len = strlen(ts);
    if (tgt_naming_identifier(&ts, &ts_len, 1, l->timestamp_column) != 0)
        return tgt_error_nomem(err);
    return check_timestamp_column(l->timestamp_column, err);
}

void tgt_loader_deinit(tgt_loader *l)
{
    tgt_stream_registry_deinit(&l->streams);
    tgt_state_deinit(&l->state);
    tgt_sbuf_deinit(&l->scratch);
    tgt_spool_deinit(&l->spool);
    tgt_json_parser_deinit(&l->replay_parser);
    tgt_singer_batch_deinit(&l->batch);
    free(l->excluded);
    free(l->merge_tables);
    free(l->txn_streams);
    if (l->dead_letter_open)
        tgt_dead_letter_close(&l->dead_letter);
}

int tgt_loader_connect(tgt_loader *l, tgt_error *err)
{
    if (l->connected)
        return 0;
    if (tgt_connect_with_retry(l->driver, l->cfg, err) != 0)
        return -1;
    l->connected = 1;
    return 0;
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
static void update_loaded_at(tgt_loader *l, const struct timespec *now)
{
    l->loaded_at_len = format_time(now, &l->loaded_at_second, l->loaded_at);
    unsigned long long micros = (unsigned long long)now->tv_sec * 1000000ull +
                                (unsigned long long)now->tv_nsec / 1000ull;
    l->sequence = micros > l->sequence ? micros : l->sequence + 1;
}

/* A batch begins: remember when, for max_batch_age_seconds and _sdc_batched_at. */
static void begin_batch(tgt_loader *l, const struct timespec *now)
{
    clock_gettime(BATCH_CLOCK, &l->batch_start);
    time_t second = 0;
    l->batched_at[0] = '\0';
    l->batched_at_len = format_time(now, &second, l->batched_at);
}

int tgt_loader_end_bulk_write(tgt_loader *l, tgt_error *err)
{
    if (l->copy_stream == NULL)
        return 0;
    unsigned long rows = 0;
    tgt_stream *s = l->copy_stream;
    l->copy_stream = NULL;
    if (l->driver->ops->write_end(l->driver, &rows, err) != 0) {
        l->failed_stream = s;
        l->failed_first_row = l->copy_first_row;
        return -1;
    }
    if (rows != l->copy_rows)
        return tgt_error_set(err, TGT_ERR_INTERNAL,
                             "stream \"%s\": PostgreSQL took %lu rows of %lu sent", s->name, rows,
                             l->copy_rows);
    return 0;
}

static void release_chunk(tgt_loader *l, tgt_stream *s)
{
    l->buffered -= s->chunk.len;
    /* a huge row grew this chunk; give the memory back rather than keep it
     * per stream for the rest of the run.  With many streams no chunk keeps
     * its memory between shipments either: 5,000 streams would otherwise
     * hold 128 kB each for the whole run, while all streams' chunks
     * together are meant to stay within TGT_BUFFERED_MAX. */
    if (s->chunk.cap > 4 * TGT_CHUNK_BYTES ||
        l->streams.n_streams * 2 * TGT_CHUNK_BYTES > TGT_BUFFERED_MAX)
        tgt_sbuf_deinit(&s->chunk);
    else
        tgt_sbuf_reset(&s->chunk);
    s->rows_in_chunk = 0;
}

static int ship(tgt_loader *l, tgt_stream *s, tgt_error *err);
static int merge_keyed(tgt_loader *l, const tgt_stream *last, tgt_error *err);

/* The open transaction holds as many tables as one may: ship the rest of
 * its streams' rows, merge and commit it before the commit point, so a run
 * with thousands of streams never exhausts the server's lock table.  Those
 * streams' records are committed for good (committed_through); STATE waits
 * for the commit point, when every record before it is committed. */
static int commit_early(tgt_loader *l, tgt_error *err)
{
    size_t tables = l->txn_tables;
    for (size_t i = 0; i < l->txn_tables; i++) {
        if (ship(l, l->txn_streams[i], err) != 0)
            return -1;
    }
    if (tgt_loader_end_bulk_write(l, err) != 0 || merge_keyed(l, NULL, err) != 0 ||
        tgt_loader_commit(l, err) != 0)
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
static int join_txn(tgt_loader *l, tgt_stream *s, tgt_error *err)
{
    tgt_driver *d = l->driver;
    if (l->in_txn && !l->probing && l->txn_tables >= d->ops->tables_per_transaction(d) &&
        commit_early(l, err) != 0)
        return -1;
    if (l->txn_tables == l->txn_cap) {
        size_t cap = l->txn_cap ? 2 * l->txn_cap : 16;
        tgt_stream **grown = realloc(l->txn_streams, cap * sizeof(*grown));
        if (grown == NULL)
            return tgt_error_nomem(err);
        l->txn_streams = grown;
        l->txn_cap = cap;
    }
    if (!l->in_txn) {
        if (d->ops->begin(d, err) != 0)
            return -1;
        l->in_txn = 1;
    }
    s->in_txn = 1;
    l->txn_streams[l->txn_tables++] = s;
    return 0;
}

/* Sends a stream's encoded rows to the driver, opening the transaction and
 * the stream's bulk write as needed. */
static int ship(tgt_loader *l, tgt_stream *s, tgt_error *err)
{
    if (s->chunk.len == 0)
        return 0;
    tgt_driver *d = l->driver;
    if (!s->in_txn && join_txn(l, s, err) != 0)
        return -1;
    if (l->copy_stream != s) {
        if (tgt_loader_end_bulk_write(l, err) != 0)
            return -1;
        tgt_write_mode mode = s->model.table.n_keys > 0 ? TGT_WRITE_STAGING : TGT_WRITE_APPEND;
        if (d->ops->write_begin(d, &s->model.table, mode, err) != 0)
            return -1;
        l->copy_stream = s;
        l->copy_rows = 0;
        l->copy_first_row = s->rows_shipped;
    }
    if (d->ops->write_data(d, s->chunk.data, s->chunk.len, err) != 0) {
        l->failed_stream = s;
        l->failed_first_row = l->copy_first_row;
        tgt_error_where(err, "loading stream \"%s\"", s->name);
        return -1;
    }
    l->copy_rows += s->rows_in_chunk;
    s->rows_shipped += s->rows_in_chunk;
    release_chunk(l, s);
    return 0;
}

static int ship_all(tgt_loader *l, tgt_error *err)
{
    /* the open bulk write first: it saves one switch */
    if (l->copy_stream != NULL && ship(l, l->copy_stream, err) != 0)
        return -1;
    for (tgt_stream *s = l->streams.first; s != NULL; s = s->next_in_order) {
        if (ship(l, s, err) != 0)
            return -1;
    }
    return 0;
}

static void emit_metric(const char *type, const char *metric, json_t *value, const char *stream)
{
    const char *status = strcmp(metric, "invalid_record_count") == 0 ? "skipped" : "succeeded";
    json_t *m = json_pack("{s:s, s:s, s:o, s:{s:s, s:s}}", "type", type, "metric", metric,
                          "value", value, "tags", "stream", stream, "status", status);
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

void tgt_loader_txn_committed(tgt_loader *l)
{
    double seconds = seconds_since(&l->batch_start);
    for (size_t i = 0; i < l->txn_tables; i++) {
        tgt_stream *s = l->txn_streams[i];
        s->in_txn = 0;
        report_invalid(s);
        if (s->rows_pending > 0) {
            emit_metric("counter", "record_count", json_integer((json_int_t)s->rows_pending),
                        s->name);
            emit_metric("timer", "batch_processing_time", json_real(seconds), s->name);
        }
        s->rows_committed += s->rows_pending;
        l->pending_rows -= s->rows_pending < l->pending_rows ? s->rows_pending : l->pending_rows;
        s->rows_pending = 0;
        s->rows_shipped = 0;
        s->committed_through = s->last_line;
    }
    l->txn_tables = 0;
    l->in_txn = 0;
    l->conflicts = 0;
}

int tgt_loader_commit(tgt_loader *l, tgt_error *err)
{
    if (l->driver->ops->commit(l->driver, err) != 0)
        return -1;
    tgt_loader_txn_committed(l);
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
    return s->rows_pending > 0 && s->model.table.n_keys > 0 && (last == NULL || s->id <= last->id);
}

/* The driver's lock_for_merge over the tables merge_keyed is about to merge. */
static int lock_for_merge(tgt_loader *l, const tgt_stream *last, tgt_error *err)
{
    size_t n = 0;
    for (size_t i = 0; i < l->txn_tables; i++) {
        tgt_stream *s = l->txn_streams[i];
        if (merges(s, last)) {
            if (n == l->merge_tables_cap) {
                size_t cap = n ? 2 * n : 16;
                const tgt_table **grown = realloc(l->merge_tables, cap * sizeof(*grown));
                if (grown == NULL)
                    return tgt_error_nomem(err);
                l->merge_tables = grown;
                l->merge_tables_cap = cap;
            }
            l->merge_tables[n++] = &s->model.table;
        }
    }
    return l->driver->ops->lock_for_merge(l->driver, l->merge_tables, n, err);
}

/* Merges the keyed streams' staged rows, in stream order (a parent table's
 * stream usually comes before its children's), up to and including `last`
 * (NULL: all), after locking their tables in the driver's stable order.  A
 * refusal is pinned on its stream (merge_failed) so recovery can trace the
 * record. */
static int merge_keyed(tgt_loader *l, const tgt_stream *last, tgt_error *err)
{
    qsort(l->txn_streams, l->txn_tables, sizeof(*l->txn_streams), by_registration);
    if (lock_for_merge(l, last, err) != 0)
        return -1;
    for (size_t i = 0; i < l->txn_tables; i++) {
        tgt_stream *s = l->txn_streams[i];
        if (merges(s, last)) {
            unsigned long changed = 0;
            if (l->driver->ops->merge(l->driver, &s->model.table, s->partial_rows, &changed,
                                      err) != 0) {
                l->merge_failed = s;
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

int tgt_loader_ship_and_merge(tgt_loader *l, const tgt_stream *last, tgt_error *err)
{
    if (ship_all(l, err) != 0 || tgt_loader_end_bulk_write(l, err) != 0)
        return -1;
    return merge_keyed(l, last, err);
}

int tgt_loader_emit_state(tgt_loader *l, tgt_error *err)
{
    /* with overwrite nothing is committed for good until the swap */
    if (l->overwrite)
        return 0;
    return tgt_state_emit(&l->state, l->state_out, err);
}

/* Ship, merge, commit, then (and only then) write the latest STATE. */
int tgt_loader_commit_point(tgt_loader *l, tgt_error *err)
{
    if (l->pending_rows > 0) {
        struct timespec started;
        clock_gettime(BATCH_CLOCK, &started);
        if (tgt_loader_ship_and_merge(l, NULL, err) != 0 || tgt_loader_commit(l, err) != 0)
            return -1;
        tgt_log(TGT_LOG_DEBUG, "commit took %.3f s", seconds_since(&started));
    }
    /* everything is committed: also the counts of streams that had no rows */
    for (tgt_stream *s = l->streams.first; s != NULL; s = s->next_in_order)
        report_invalid(s);
    l->pending_rows = 0;
    if (tgt_loader_batch_committed(l, err) != 0)
        return -1;
    return tgt_loader_emit_state(l, err);
}

static int check_age(tgt_loader *l, tgt_error *err)
{
    if (l->pending_rows == 0 ||
        seconds_since(&l->batch_start) < (double)l->cfg->max_batch_age_seconds)
        return 0;
    return tgt_loader_commit_point(l, err);
}

static void warn_nul_once(tgt_stream *s)
{
    if (s->nul_replaced == 0 || s->nul_warned)
        return;
    s->nul_warned = 1;
    tgt_log(TGT_LOG_WARN,
            "stream \"%s\": text holds U+0000, which PostgreSQL cannot store; it is replaced "
            "by U+FFFD (the count is reported at the end)",
            s->name);
}

static void warn_extracted_at_once(tgt_loader *l, tgt_stream *s)
{
    if (s->bad_extracted_at == 0 || s->extracted_warned)
        return;
    s->extracted_warned = 1;
    tgt_log(TGT_LOG_WARN,
            "stream \"%s\": the time_extracted of the RECORD at %s line %lu is not an ISO 8601 "
            "date-time; _sdc_extracted_at is NULL for such records (the count is reported at "
            "the end)",
            s->name, l->input_name, s->bad_extracted_line);
}

/* Encodes one RECORD into its stream's chunk and ships full chunks; a
 * record that does not fit its table goes to tgt_loader_invalid_record. */
int tgt_loader_encode(tgt_loader *l, tgt_stream *s, const tgt_json_parser *p, const char *line,
                      size_t len, unsigned long line_no, const tgt_message *msg, int replaying,
                      tgt_error *err)
{
    /* one clock reading: a batch begins when its first record arrives */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (l->pending_rows == 0)
        begin_batch(l, &now);
    update_loaded_at(l, &now);
    const char *where_name;
    unsigned long where_line; /* a BATCH record: its file and line */
    tgt_singer_batch_locate(&l->batch, l->input_name, line_no, &where_name, &where_line);
    tgt_record_context ctx = {
        .input_name = where_name,
        .line_no = where_line,
        .rows = l->driver->ops->rows,
        .loaded_at = l->loaded_at,
        .loaded_at_len = l->loaded_at_len,
        .staging = s->model.table.n_keys > 0,
        .scratch = &l->scratch,
        .batched_at = l->batched_at,
        .batched_at_len = l->batched_at_len,
        .sequence = l->sequence,
        .extracted_tok = msg->time_extracted,
        .version_tok = msg->version,
    };
    size_t before = s->chunk.len;
    if (tgt_record_encode(s, p, line, (size_t)msg->record, &ctx, err) != 0) {
        if (err->code != TGT_ERR_DATA)
            return -1;
        return tgt_loader_invalid_record(l, s, p, line, msg, line_no, err);
    }
    if (!replaying) {
        if (tgt_spool_append(&l->spool, line_no, s->id, line, len, err) != 0)
            return -1;
        l->last_spooled_line = line_no;
    }
    s->last_line = line_no;
    warn_nul_once(s);
    warn_extracted_at_once(l, s);
    l->buffered += s->chunk.len - before;
    l->pending_rows++;
    if (s->chunk.len >= TGT_CHUNK_BYTES && ship(l, s, err) != 0)
        return -1;
    if (l->buffered >= TGT_BUFFERED_MAX && ship_all(l, err) != 0)
        return -1;
    return 0;
}

static int on_record(tgt_loader *l, const tgt_json_parser *p, const char *line, size_t len,
                     unsigned long line_no, const tgt_message *msg, tgt_error *err)
{
    tgt_stream *s = tgt_stream_find(&l->streams, msg->stream, msg->stream_len);
    if (s == NULL || !tgt_stream_has_model(s))
        return tgt_error_set(err, TGT_ERR_INPUT,
                             "RECORD for stream \"%.*s\" arrives before any SCHEMA for it",
                             (int)msg->stream_len, msg->stream);
    if (msg->version >= 0 && !s->versioned && tgt_loader_use_versions(l, s, err) != 0)
        return -1;
    if (tgt_loader_encode(l, s, p, line, len, line_no, msg, 0, err) != 0)
        return -1;
    if (s->rows_pending >= (unsigned long)l->cfg->batch_size_rows)
        return tgt_loader_commit_point(l, err);
    /* every record: a tap that trickles records must still see its
     * batches committed on age (the clock read costs nanoseconds) */
    return check_age(l, err);
}

/* A BATCH record (singer_batch.h): the RECORD path, and whether a failure
 * came after the record was spooled (a replay then sends it). */
static int on_batch_record(void *ctx, const tgt_json_parser *p, const char *line, size_t len,
                           unsigned long line_no, const tgt_message *msg, tgt_error *err)
{
    tgt_loader *l = ctx;
    if (on_record(l, p, line, len, line_no, msg, err) == 0)
        return 0;
    return l->last_spooled_line == line_no ? TGT_SINGER_BATCH_TAKEN : -1;
}

static int on_state(tgt_loader *l, const tgt_json_parser *p, const char *line,
                    const tgt_message *msg, tgt_error *err)
{
    const tgt_json_token *v = &p->tokens[msg->value];
    const char *start = line + v->start - (v->type == TGT_JSON_STRING);
    size_t len = v->len + (v->type == TGT_JSON_STRING ? 2 : 0);
    if (tgt_state_receive(&l->state, start, len, err) != 0)
        return -1;
    /* nothing uncommitted precedes it: it can go out now */
    if (l->pending_rows == 0)
        return tgt_loader_emit_state(l, err);
    return check_age(l, err);
}

static int dispatch(tgt_loader *l, const tgt_json_parser *p, const char *line, size_t len,
                    unsigned long line_no, const tgt_message *msg, tgt_error *err)
{
    switch (msg->type) {
    case TGT_MSG_RECORD:
        return on_record(l, p, line, len, line_no, msg, err);
    case TGT_MSG_SCHEMA:
        return tgt_loader_on_schema(l, line, len, msg, err);
    case TGT_MSG_STATE:
        return on_state(l, p, line, msg, err);
    case TGT_MSG_ACTIVATE_VERSION:
        return tgt_loader_activate_version(l, p, line, line_no, msg, err);
    case TGT_MSG_BATCH:
        return tgt_singer_batch_load(&l->batch, line, len, line_no, msg, on_batch_record, l,
                                     err);
    }
    return 0;
}

int tgt_loader_handle(tgt_loader *l, const tgt_json_parser *p, const char *line, size_t len,
                      unsigned long line_no, const tgt_message *msg, tgt_error *err)
{
    for (;;) {
        if (dispatch(l, p, line, len, line_no, msg, err) == 0)
            return 0;
        /* a lost connection or a refused row: the batch is sent again */
        if (tgt_loader_recover(l, err) != 0)
            return -1;
        /* a RECORD spooled before the failure went out with the replay;
         * anything else is handled again on the recovered connection */
        if (msg->type == TGT_MSG_RECORD && l->last_spooled_line == line_no)
            return 0;
    }
}

int tgt_loader_idle(tgt_loader *l, tgt_error *err)
{
    while (check_age(l, err) != 0) {
        if (tgt_loader_recover(l, err) != 0)
            return -1;
    }
    return 0;
}

/* overwrite: every shadow table replaces its live table in one transaction
 * (the caller writes the latest STATE after it). */
static int swap_shadows(tgt_loader *l, tgt_error *err)
{
    tgt_driver *d = l->driver;
    if (d->ops->begin(d, err) != 0)
        return -1;
    l->in_txn = 1;
    for (tgt_stream *s = l->streams.first; s != NULL; s = s->next_in_order) {
        if (!s->shadow_cleared)
            continue;
        if (d->ops->replace_table(d, s->model.table.schema, s->live_name, s->model.table.name,
                                  err) != 0) {
            tgt_error_where(err, "replacing the table of stream \"%s\" (load_method overwrite)",
                            s->name);
            return -1;
        }
    }
    if (d->ops->commit(d, err) != 0)
        return -1;
    l->in_txn = 0;
    return 0;
}

/* overwrite stopped by a signal: the input may have been cut anywhere, so
 * the shadows hold part of it and must never replace a live table.  The
 * open transaction is rolled back, the shadows are dropped and no STATE is
 * written; the run fails with TGT_ERR_INTERRUPTED (exit 128 + signal). */
static int abandon_shadows(tgt_loader *l, int sig, tgt_error *err)
{
    tgt_loader_abort(l);
    for (tgt_stream *s = l->streams.first; s != NULL && l->connected; s = s->next_in_order) {
        if (!s->shadow_cleared)
            continue;
        tgt_error drop_err;
        tgt_error_init(&drop_err);
        /* not fatal: the next run drops a stale shadow before loading */
        if (l->driver->ops->drop_table(l->driver, s->model.table.schema, s->model.table.name,
                                       &drop_err) != 0)
            tgt_log(TGT_LOG_WARN, "stream \"%s\": the shadow table \"%s\".\"%s\" stays until "
                    "the next run: %s", s->name, s->model.table.schema, s->model.table.name,
                    drop_err.message);
    }
    tgt_error_set(err, TGT_ERR_INTERRUPTED,
                  "stopped by %s, so the run is incomplete: load_method overwrite replaces no "
                  "table",
                  tgt_signals_name(sig));
    tgt_error_detail(err, "The live tables are unchanged, this run's shadow tables were dropped "
                          "and no STATE was written; a complete run replaces the tables.");
    return -1;
}

int tgt_loader_finish(tgt_loader *l, tgt_error *err)
{
    if (l->overwrite && tgt_signals_received() != 0)
        return abandon_shadows(l, tgt_signals_received(), err);
    while (tgt_loader_commit_point(l, err) != 0) {
        if (tgt_loader_recover(l, err) != 0)
            return -1;
    }
    if (l->overwrite) {
        /* a signal during that commit may still mean a cut input */
        if (tgt_signals_received() != 0)
            return abandon_shadows(l, tgt_signals_received(), err);
        if (l->shadows_pending && swap_shadows(l, err) != 0)
            return -1;
        l->overwrite = 0; /* what is committed now is final: STATE may go out */
        if (tgt_loader_emit_state(l, err) != 0)
            return -1;
    }
    for (tgt_stream *s = l->streams.first; s != NULL; s = s->next_in_order) {
        if (s->nul_replaced > 0)
            tgt_log(TGT_LOG_INFO, "stream \"%s\": %zu U+0000 characters replaced by U+FFFD",
                    s->name, s->nul_replaced);
        if (s->bad_extracted_at > 0)
            tgt_log(TGT_LOG_WARN,
                    "stream \"%s\": %zu time_extracted values were not timestamps; their "
                    "_sdc_extracted_at is NULL",
                    s->name, s->bad_extracted_at);
        if (s->bad_deletion_marks > 0)
            tgt_log(TGT_LOG_WARN,
                    "stream \"%s\": %zu %s values were not timestamps; those rows are marked "
                    "with their receive time",
                    s->name, s->bad_deletion_marks, TGT_SDC_DELETED_AT);
        if (!tgt_stream_has_model(s))
            continue; /* named only by an ACTIVATE_VERSION */
        tgt_log(TGT_LOG_INFO, "stream \"%s\": %lu records loaded into \"%s\".\"%s\"", s->name,
                s->rows_committed, s->model.table.schema,
                s->shadow_cleared ? s->live_name : s->model.table.name);
    }
    return 0;
}

void tgt_loader_abort(tgt_loader *l)
{
    if (l->connected)
        l->driver->ops->rollback(l->driver);
    l->in_txn = 0;
    l->txn_tables = 0;
    l->copy_stream = NULL;
}

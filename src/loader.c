/*
 * loader.c - the top of the loading layers (docs/architecture.md): each
 * message goes to its handler, a message that failed is handled again once
 * loader_recover.c recovered the batch, and the end of input commits
 * everything (with load_method overwrite, swapping the shadow tables in
 * before the STATE).  The batch lifecycle, commit points and STATE are
 * batch.c's; SCHEMA is loader_schema.c's, ACTIVATE_VERSION
 * loader_activate.c's, BATCH files singer_batch.c's.  Nothing below calls
 * into this file.
 */
#include "loader.h"

#include <string.h>

#include "loader_activate.h"
#include "loader_recover.h"
#include "loader_schema.h"
#include "log.h"
#include "signals.h"

/* The receive-time column cannot be one of the metadata columns: each has
 * its own meaning to the loader (a deletion mark, a version, an order), and
 * two columns of one name cannot both be filled. */
static int check_timestamp_column(const char *name, tgt_error *err)
{
    static const char *const metadata[] = {"_sdc_extracted_at",   "_sdc_received_at",
                                           "_sdc_batched_at",     TGT_SDC_DELETED_AT,
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
    if (tgt_batch_init(&l->b, cfg, driver, input_name, state_out, err) != 0)
        return -1;
    return check_timestamp_column(l->b.timestamp_column, err);
}

void tgt_loader_deinit(tgt_loader *l)
{
    tgt_batch_deinit(&l->b);
}

/* The stream of a RECORD, which must have had its SCHEMA; NULL with err
 * otherwise. */
static tgt_stream *record_stream(tgt_batch *b, const tgt_message *msg, tgt_error *err)
{
    tgt_stream *s = tgt_stream_find(&b->streams, msg->stream, msg->stream_len);
    if (s != NULL && tgt_stream_has_model(s))
        return s;
    tgt_error_set(err, TGT_ERR_INPUT, "RECORD for stream \"%.*s\" arrives before any SCHEMA for it",
                  (int)msg->stream_len, msg->stream);
    return NULL;
}

/* A RECORD of stream s goes into the batch, which commits when the stream
 * is full or the batch old. */
static int on_record(tgt_batch *b, tgt_stream *s, const tgt_json_parser *p, const char *line,
                     size_t len, unsigned long line_no, const tgt_message *msg, tgt_error *err)
{
    /* the rules rewrite the line before the batch (and so the spool, a dead
     * letter or an error message) sees it */
    tgt_transformed r;
    if (tgt_transform_record(b->transform, s->rules, p, line, len, msg, &r, err) < 0 ||
        tgt_batch_encode(b, s, r.p, r.line, r.len, line_no, r.msg, 0, err) != 0)
        return -1;
    if (s->rows_pending >= (unsigned long)b->cfg->batch_size_rows)
        return tgt_batch_commit_point(b, err);
    /* every record: a tap that trickles records must still see its
     * batches committed on age (the clock read costs nanoseconds) */
    return tgt_batch_check_age(b, err);
}

/* A RECORD line.  Its stream's first record that carries a "version" is a
 * schema change in the record path, decided here and nowhere else: the
 * stream's model is rebuilt with _sdc_table_version and _sdc_deleted_at
 * (loader_schema.c), which may alter the table and so commit the pending
 * batch first.  BATCH records never carry a version. */
static int on_record_line(tgt_batch *b, const tgt_json_parser *p, const char *line, size_t len,
                          unsigned long line_no, const tgt_message *msg, tgt_error *err)
{
    tgt_stream *s = record_stream(b, msg, err);
    if (s == NULL)
        return -1;
    if (msg->version >= 0 && !s->versioned && tgt_loader_use_versions(b, s, err) != 0)
        return -1;
    return on_record(b, s, p, line, len, line_no, msg, err);
}

/* A BATCH record (singer_batch.h): the RECORD path, and whether a failure
 * came after the record was spooled (a replay then sends it). */
static int on_batch_record(void *ctx, const tgt_json_parser *p, const char *line, size_t len,
                           unsigned long line_no, const tgt_message *msg, tgt_error *err)
{
    tgt_batch *b = ctx;
    tgt_stream *s = record_stream(b, msg, err);
    if (s != NULL && on_record(b, s, p, line, len, line_no, msg, err) == 0)
        return 0;
    return b->last_spooled_line == line_no ? TGT_SINGER_BATCH_TAKEN : -1;
}

static int on_state(tgt_batch *b, const tgt_json_parser *p, const char *line,
                    const tgt_message *msg, tgt_error *err)
{
    const tgt_json_token *v = &p->tokens[msg->value];
    const char *start = line + v->start - (v->type == TGT_JSON_STRING);
    size_t len = v->len + (v->type == TGT_JSON_STRING ? 2 : 0);
    if (tgt_state_receive(&b->state, start, len, err) != 0)
        return -1;
    /* nothing uncommitted precedes it: it can go out now */
    if (b->pending_rows == 0)
        return tgt_batch_emit_state(b, err);
    return tgt_batch_check_age(b, err);
}

static int dispatch(tgt_batch *b, const tgt_json_parser *p, const char *line, size_t len,
                    unsigned long line_no, const tgt_message *msg, tgt_error *err)
{
    switch (msg->type) {
    case TGT_MSG_RECORD:
        return on_record_line(b, p, line, len, line_no, msg, err);
    case TGT_MSG_SCHEMA:
        return tgt_loader_on_schema(b, line, len, msg, err);
    case TGT_MSG_STATE:
        return on_state(b, p, line, msg, err);
    case TGT_MSG_ACTIVATE_VERSION:
        return tgt_loader_activate_version(b, p, line, line_no, msg, err);
    case TGT_MSG_BATCH:
        return tgt_singer_batch_load(&b->singer, line, len, line_no, msg, on_batch_record, b, err);
    }
    return 0;
}

int tgt_loader_handle(tgt_loader *l, const tgt_json_parser *p, const char *line, size_t len,
                      unsigned long line_no, const tgt_message *msg, tgt_error *err)
{
    tgt_batch *b = &l->b;
    for (;;) {
        if (dispatch(b, p, line, len, line_no, msg, err) == 0)
            return 0;
        /* a lost connection or a refused row: the batch is sent again */
        if (tgt_loader_recover(b, err) != 0)
            return -1;
        /* a RECORD spooled before the failure went out with the replay;
         * anything else is handled again on the recovered connection */
        if (msg->type == TGT_MSG_RECORD && b->last_spooled_line == line_no)
            return 0;
    }
}

int tgt_loader_idle(tgt_loader *l, tgt_error *err)
{
    while (tgt_batch_check_age(&l->b, err) != 0) {
        if (tgt_loader_recover(&l->b, err) != 0)
            return -1;
    }
    return 0;
}

/* overwrite: every shadow table replaces its live table in one transaction
 * (the caller writes the latest STATE after it). */
static int swap_shadows(tgt_batch *b, tgt_error *err)
{
    tgt_driver *d = b->driver;
    if (tgt_batch_begin_alone(b, err) != 0)
        return -1;
    for (tgt_stream *s = b->streams.first; s != NULL; s = s->next_in_order) {
        if (!s->shadow_cleared)
            continue;
        if (d->ops->replace_table(d, s->model.table.schema, s->live_name, s->model.table.name,
                                  err) != 0) {
            tgt_error_where(err, "replacing the table of stream \"%s\" (load_method overwrite)",
                            s->name);
            return -1;
        }
    }
    return tgt_batch_commit_alone(b, err);
}

/* overwrite stopped by a signal: the input may have been cut anywhere, so
 * the shadows hold part of it and must never replace a live table.  The
 * open transaction is rolled back, the shadows are dropped and no STATE is
 * written; the run fails with TGT_ERR_INTERRUPTED (exit 128 + signal). */
static int abandon_shadows(tgt_batch *b, int sig, tgt_error *err)
{
    tgt_batch_abort(b);
    for (tgt_stream *s = b->streams.first; s != NULL && b->connected; s = s->next_in_order) {
        if (!s->shadow_cleared)
            continue;
        tgt_error drop_err;
        tgt_error_init(&drop_err);
        /* not fatal: the next run drops a stale shadow before loading */
        if (b->driver->ops->drop_table(b->driver, s->model.table.schema, s->model.table.name,
                                       &drop_err) != 0)
            tgt_log(TGT_LOG_WARN,
                    "stream \"%s\": the shadow table \"%s\".\"%s\" stays until "
                    "the next run: %s",
                    s->name, s->model.table.schema, s->model.table.name, drop_err.message);
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
    tgt_batch *b = &l->b;
    if (b->overwrite && tgt_signals_received() != 0)
        return abandon_shadows(b, tgt_signals_received(), err);
    while (tgt_batch_commit_point(b, err) != 0) {
        if (tgt_loader_recover(b, err) != 0)
            return -1;
    }
    if (b->overwrite) {
        /* a signal during that commit may still mean a cut input */
        if (tgt_signals_received() != 0)
            return abandon_shadows(b, tgt_signals_received(), err);
        if (b->shadows_pending && swap_shadows(b, err) != 0)
            return -1;
        b->overwrite = 0; /* what is committed now is final: STATE may go out */
        if (tgt_batch_emit_state(b, err) != 0)
            return -1;
    }
    tgt_transform_report(b->transform);
    for (tgt_stream *s = b->streams.first; s != NULL; s = s->next_in_order) {
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
    tgt_batch_abort(&l->b);
}

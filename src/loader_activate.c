/*
 * loader_activate.c - ACTIVATE_VERSION (full-table replication).
 *
 * A tap that re-reads a whole table tags its RECORDs with a version and,
 * once the new version is complete, activates it: rows that the new version
 * did not write (an older or NULL _sdc_table_version) are gone at the
 * source.  Everything pending is committed first, so the stream's records
 * of version v are in the table, then, in one transaction, the older rows
 * get _sdc_deleted_at (soft) or are deleted (hard_delete).
 *
 * An ACTIVATE_VERSION before its stream's first SCHEMA (seen in the wild)
 * acts on the table an earlier run made, if it has the version column, and
 * marks the stream versioned for the SCHEMA to come.
 *
 * A handler above batch.c and loader_schema.c: it commits the pending batch
 * through batch.c and runs its own transaction there (tgt_batch_begin_alone).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader_activate.h"

#include "loader_schema.h"
#include "log.h"

/* The version as decimal text; it must be an integer that fits in bigint. */
static int version_text(const tgt_json_parser *p, const char *line, const tgt_message *msg,
                        unsigned long line_no, const char *input_name, char out[24], tgt_error *err)
{
    const tgt_json_token *t = &p->tokens[msg->version];
    int ok = t->type == TGT_JSON_NUMBER && (t->flags & TGT_JSON_INTEGRAL) && t->len < 24;
    if (ok) {
        memcpy(out, line + t->start, t->len);
        out[t->len] = '\0';
        errno = 0;
        char *end = NULL;
        (void)strtoll(out, &end, 10);
        ok = errno == 0 && end != NULL && *end == '\0';
    }
    if (ok)
        return 0;
    tgt_error_set(err, TGT_ERR_INPUT,
                  "ACTIVATE_VERSION for stream \"%.*s\" has a version that is not a 64-bit "
                  "integer: %.*s",
                  (int)msg->stream_len, msg->stream, t->len > 40 ? 40 : (int)t->len,
                  line + t->start);
    tgt_error_where(err, "%s line %lu, stream \"%.*s\"", input_name, line_no, (int)msg->stream_len,
                    msg->stream);
    return -1;
}

/* Retires the older rows of schema.table in one transaction. */
static int retire(tgt_batch *b, const tgt_stream *s, const char *schema, const char *table,
                  const char *version_column, const char *deleted_column, const char *version,
                  tgt_error *err)
{
    tgt_driver *d = b->driver;
    int hard = b->cfg->hard_delete != 0;
    unsigned long affected = 0;
    if (tgt_batch_begin_alone(b, err) != 0)
        return -1;
    if (d->ops->activate_version(d, schema, table, version_column, deleted_column, version, hard,
                                 &affected, err) != 0 ||
        tgt_batch_commit_alone(b, err) != 0) {
        tgt_error_where(err, "activating version %s of stream \"%s\"", version, s->name);
        return -1;
    }
    tgt_log(TGT_LOG_INFO, "stream \"%s\": version %s activated; %lu rows of older versions %s",
            s->name, version, affected, hard ? "deleted" : "marked in " TGT_SDC_DELETED_AT);
    return 0;
}

/* No SCHEMA for the stream yet in this run: look at the live table. */
static int activate_unseen(tgt_batch *b, tgt_stream *s, const char *version, tgt_error *err)
{
    tgt_schema_options opt;
    const char *table = s->table_name;
    if (tgt_loader_table_identity(b, s, &opt, err) != 0 || tgt_batch_connect(b, err) != 0 ||
        tgt_batch_end_bulk_write(b, err) != 0)
        return -1;
    tgt_live_table live;
    if (b->driver->ops->describe_table(b->driver, opt.target_schema, table, &live, err) != 0)
        return -1;
    int usable = live.exists && tgt_live_table_find(&live, TGT_SDC_TABLE_VERSION) != NULL &&
                 (b->cfg->hard_delete || tgt_live_table_find(&live, TGT_SDC_DELETED_AT) != NULL);
    tgt_live_table_deinit(&live);
    if (!usable) {
        tgt_log(TGT_LOG_INFO,
                "stream \"%s\": ACTIVATE_VERSION %s before its SCHEMA, and \"%s\".\"%s\" has no "
                "older versions to retire",
                s->name, version, opt.target_schema, table);
        return 0;
    }
    if (tgt_batch_commit_point(b, err) != 0)
        return -1;
    return retire(b, s, opt.target_schema, table, TGT_SDC_TABLE_VERSION, TGT_SDC_DELETED_AT,
                  version, err);
}

int tgt_loader_activate_version(tgt_batch *b, const tgt_json_parser *p, const char *line,
                                unsigned long line_no, const tgt_message *msg, tgt_error *err)
{
    char version[24];
    if (version_text(p, line, msg, line_no, b->input_name, version, err) != 0)
        return -1;
    tgt_stream *s = tgt_stream_get_or_add(&b->streams, msg->stream, msg->stream_len, err);
    if (s == NULL)
        return -1;
    if (!tgt_stream_has_model(s)) {
        s->versioned = 1;
        return activate_unseen(b, s, version, err);
    }
    if (tgt_loader_use_versions(b, s, err) != 0 || tgt_batch_commit_point(b, err) != 0)
        return -1;
    const tgt_table *t = &s->model.table;
    return retire(b, s, t->schema, t->name, t->columns[t->version_column].name,
                  t->columns[t->deleted_at_column].name, version, err);
}

/*
 * loader_schema.c - SCHEMA messages: the stream's table model is built from
 * the message and the settings, diffed against the live table (evolve.c),
 * and installed once the database matches it.
 *
 * The settings that shape a model: load_method (append-only ignores
 * key_properties, upsert requires them, overwrite loads into a shadow table),
 * add_metadata_columns and hard_delete (the _sdc_* columns), and whether
 * the stream uses table versions.  A stream becomes versioned when a RECORD
 * carries "version" or an ACTIVATE_VERSION names it; its model is then
 * rebuilt from the SCHEMA it keeps, which adds _sdc_table_version and
 * _sdc_deleted_at to the table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evolve.h"
#include "loader_internal.h"
#include "log.h"
#include "naming.h"
#include "schema.h"

/* Compact, key-sorted JSON of the schema and keys: equal text = same SCHEMA. */
static char *schema_fingerprint(const json_t *schema, const json_t *keys)
{
    char *a = json_dumps(schema, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    char *b = keys ? json_dumps(keys, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    tgt_sbuf fp;
    tgt_sbuf_init(&fp);
    if (a != NULL) {
        tgt_sbuf_append_str(&fp, a);
        tgt_sbuf_append_char(&fp, '\n');
        tgt_sbuf_append_str(&fp, b ? b : "[]");
    }
    free(a);
    free(b);
    return a != NULL ? tgt_sbuf_take(&fp) : (tgt_sbuf_deinit(&fp), NULL);
}

/* The shadow table of load_method overwrite: a fixed name per live table,
 * so a run that failed leaves at most one behind, which the next run drops. */
static void shadow_name(const char *schema, const char *live, char out[TGT_IDENT_MAX + 1])
{
    uint32_t h = tgt_naming_hash(schema, strlen(schema)) ^ tgt_naming_hash(live, strlen(live));
    snprintf(out, TGT_IDENT_MAX + 1, "_tgt_overwrite_%08x", (unsigned)h);
}

int tgt_loader_table_identity(tgt_loader *l, const tgt_stream *s, tgt_schema_options *opt,
                              char table[TGT_IDENT_MAX + 1], char live[TGT_IDENT_MAX + 1],
                              tgt_error *err)
{
    const char *source, *name;
    size_t source_len, name_len;
    tgt_naming_split_stream(s->name, s->name_len, &source, &source_len, &name, &name_len);
    if (tgt_naming_identifier(&name, &name_len, 1, live) != 0)
        return tgt_error_nomem(err);
    memset(opt, 0, sizeof(*opt));
    opt->stream = s->name;
    opt->target_schema = tgt_config_target_schema(l->cfg, source, source_len);
    opt->timestamp_column = l->timestamp_column;
    opt->flattening_max_depth = l->cfg->flattening_max_depth;
    opt->metadata_columns = l->cfg->add_metadata_columns != 0;
    opt->versioned = s->versioned;
    opt->hard_delete = l->cfg->hard_delete != 0;
    if (strcmp(l->cfg->load_method, "overwrite") == 0)
        shadow_name(opt->target_schema, live, table);
    else
        memcpy(table, live, TGT_IDENT_MAX + 1);
    opt->table_name = table;
    return 0;
}

static int has_keys(const json_t *keys)
{
    return json_is_array(keys) && json_array_size(keys) > 0;
}

/* The model for the SCHEMA message `root` under the current settings. */
static int build_model(tgt_loader *l, tgt_stream *s, const json_t *root, tgt_schema_model *model,
                       tgt_error *err)
{
    const json_t *schema = json_object_get(root, "schema");
    const json_t *keys = json_object_get(root, "key_properties");
    const char *method = l->cfg->load_method;
    if (strcmp(method, "append-only") == 0) {
        keys = NULL; /* every record becomes a row: no key, no upsert */
    } else if (strcmp(method, "upsert") == 0 && !has_keys(keys)) {
        tgt_error_set(err, TGT_ERR_DATA,
                      "stream \"%s\": load_method is upsert but its SCHEMA has no "
                      "key_properties",
                      s->name);
        tgt_error_hint(err, "Give the stream key_properties, or use load_method auto (streams "
                            "without keys are appended).");
        return -1;
    }
    tgt_schema_options opt;
    char table[TGT_IDENT_MAX + 1];
    if (tgt_loader_table_identity(l, s, &opt, table, s->live_name, err) != 0)
        return -1;
    return tgt_schema_build(schema, keys, &opt, model, err);
}

/* overwrite: the first SCHEMA of a stream in this run drops the shadow a
 * failed run may have left, so the shadow holds this run's rows only. */
static int clear_shadow(tgt_loader *l, tgt_stream *s, const tgt_table *t, tgt_error *err)
{
    if (!l->overwrite || s->shadow_cleared)
        return 0;
    if (l->driver->ops->drop_table(l->driver, t->schema, t->name, err) != 0)
        return -1;
    s->shadow_cleared = 1;
    l->shadows_pending = 1;
    tgt_log(TGT_LOG_INFO,
            "stream \"%s\": loading into \"%s\".\"%s\", which replaces \"%s\".\"%s\" when the "
            "run succeeds (load_method overwrite)",
            s->name, t->schema, t->name, t->schema, s->live_name);
    return 0;
}

/* Diffs the new model against the live table, commits what is pending if
 * the change needs it, runs the DDL and installs the model. */
static int evolve_and_install(tgt_loader *l, tgt_stream *s, tgt_schema_model *model,
                              char *fingerprint, tgt_error *err)
{
    tgt_evolve_plan plan;
    tgt_evolve_plan_init(&plan);
    int rc = -1;
    model->table.shape_version = s->model.table.shape_version + 1;
    /* the catalog is read on the same connection: a COPY still open
     * (rows of this batch already shipped) must end first */
    if (tgt_loader_connect(l, err) != 0 || tgt_loader_end_bulk_write(l, err) != 0 ||
        clear_shadow(l, s, &model->table, err) != 0 ||
        tgt_evolve_diff(l->driver, &model->table, s->name, strcmp(l->cfg->type_change, "keep") == 0,
                        &plan, err) != 0)
        goto out;
    /* rows encoded under the old shape must reach the database first, and
     * DDL runs in its own transaction */
    if ((s->rows_pending > 0 || (l->in_txn && !tgt_evolve_plan_is_empty(&plan))) &&
        tgt_loader_commit_point(l, err) != 0)
        goto out;
    if (tgt_evolve_apply(l->driver, &model->table, &plan, s->name, err) != 0)
        goto out;
    if (model->flatten_depth < l->cfg->flattening_max_depth)
        tgt_log(TGT_LOG_DEBUG, "stream \"%s\": objects flattened to depth %d (column budget %d)",
                s->name, model->flatten_depth, TGT_FLATTEN_COLUMN_BUDGET);
    rc = tgt_stream_set_model(s, model, fingerprint, err);
    fingerprint = NULL;
out:
    free(fingerprint);
    tgt_evolve_plan_deinit(&plan);
    return rc;
}

int tgt_loader_on_schema(tgt_loader *l, const char *line, size_t len, const tgt_message *msg,
                         tgt_error *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(line, len, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &jerr);
    if (root == NULL)
        return tgt_error_set(err, TGT_ERR_INPUT, "cannot read SCHEMA for stream \"%.*s\": %s",
                             (int)msg->stream_len, msg->stream, jerr.text);
    int rc = -1;
    tgt_schema_model model;
    tgt_schema_model_init(&model);
    char *fingerprint = schema_fingerprint(json_object_get(root, "schema"),
                                           json_object_get(root, "key_properties"));
    tgt_stream *s = tgt_stream_get_or_add(&l->streams, msg->stream, msg->stream_len, err);
    if (fingerprint == NULL || s == NULL) {
        tgt_error_nomem(err);
        goto out;
    }
    if (tgt_stream_has_model(s) && strcmp(fingerprint, s->schema_fingerprint) == 0) {
        rc = 0; /* the same SCHEMA again: nothing to do */
        goto out;
    }
    if (build_model(l, s, root, &model, err) != 0)
        goto out;
    rc = evolve_and_install(l, s, &model, fingerprint, err);
    fingerprint = NULL;
    if (rc == 0) {
        json_decref(s->schema_doc);
        s->schema_doc = json_incref(root);
    }
out:
    free(fingerprint);
    tgt_schema_model_deinit(&model);
    json_decref(root);
    return rc;
}

int tgt_loader_use_versions(tgt_loader *l, tgt_stream *s, tgt_error *err)
{
    s->versioned = 1;
    const tgt_table *t = &s->model.table;
    if (!tgt_stream_has_model(s) || (t->version_column >= 0 && t->deleted_at_column >= 0))
        return 0;
    tgt_log(TGT_LOG_INFO, "stream \"%s\" uses table versions: keeping %s and %s", s->name,
            TGT_SDC_TABLE_VERSION, TGT_SDC_DELETED_AT);
    tgt_schema_model model;
    tgt_schema_model_init(&model);
    char *fingerprint = strdup(s->schema_fingerprint);
    int rc = -1;
    if (fingerprint == NULL)
        tgt_error_nomem(err);
    else if (build_model(l, s, s->schema_doc, &model, err) == 0)
        rc = evolve_and_install(l, s, &model, fingerprint, err);
    else
        free(fingerprint);
    tgt_schema_model_deinit(&model);
    return rc;
}

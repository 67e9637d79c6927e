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
 * _sdc_deleted_at to the table.  Where a stream loads (schema and table,
 * normalised) is fixed once per run, and no two streams may share a table.
 *
 * A handler above batch.c: it connects, ends a bulk write and commits the
 * pending batch through it; it reads the transaction flag, never writes it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader_schema.h"

#include "evolve.h"
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

/* Hash of "schema 0x1F table", to compare identities quickly. */
static uint32_t identity_hash(const char *schema, const char *table)
{
    const char *parts[2] = {schema, table};
    size_t lens[2] = {strlen(schema), strlen(table)};
    return tgt_naming_path_hash(parts, lens, 2);
}

/* Does stream a load into (or replace) a table that b loads into or
 * replaces?  Both have their identity. */
static int same_table(const tgt_stream *a, const tgt_stream *b)
{
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 2; j++) {
            const char *ta = i == 0 ? a->live_name : a->table_name;
            const char *tb = j == 0 ? b->live_name : b->table_name;
            if (a->identity_hash[i] == b->identity_hash[j] &&
                strcmp(a->schema_name, b->schema_name) == 0 && strcmp(ta, tb) == 0)
                return 1;
        }
    }
    return 0;
}

/* Two streams in one table would take turns overwriting each other's rows
 * (and the older record could win): refused before `s` loads anything. */
static int refuse_shared_table(const tgt_stream *s, const tgt_stream *other, tgt_error *err)
{
    const char *source, *name, *other_source;
    size_t source_len, name_len, other_source_len;
    tgt_naming_split_stream(s->name, s->name_len, &source, &source_len, &name, &name_len);
    tgt_naming_split_stream(other->name, other->name_len, &other_source, &other_source_len, &name,
                            &name_len);
    if (source == NULL) {
        source = other_source;
        source_len = other_source_len;
    }
    tgt_error_set(err, TGT_ERR_DATA, "streams \"%s\" and \"%s\" both load into table \"%s\".\"%s\"",
                  other->name, s->name, s->schema_name, s->live_name);
    tgt_error_detail(err,
                     "Rows of two streams in one table would replace each other; nothing "
                     "of stream \"%s\" was loaded.",
                     s->name);
    if (source != NULL)
        tgt_error_hint(err,
                       "Give their source schemas different target schemas with the "
                       "setting schema_mapping, e.g. \"schema_mapping\": {\"%.*s\": "
                       "\"%.*s\"}.",
                       (int)source_len, source, (int)source_len, source);
    else
        tgt_error_hint(err, "Stream names that differ only in case or punctuation name one table; "
                            "load them in separate runs with different default_target_schema, "
                            "or rename one in the tap.");
    return -1;
}

/* Fixes where stream s loads: the target schema (schema_mapping, else
 * default_target_schema) and the table name, both normalised like every
 * identifier; with load_method overwrite the shadow table too. */
static int resolve_identity(tgt_batch *b, tgt_stream *s, tgt_error *err)
{
    const char *source, *name;
    size_t source_len, name_len;
    tgt_naming_split_stream(s->name, s->name_len, &source, &source_len, &name, &name_len);
    const char *schema = tgt_config_target_schema(b->cfg, source, source_len);
    size_t schema_len = strlen(schema);
    size_t max = tgt_naming_limit(b->driver->ops->caps->ident_max);
    if (tgt_naming_identifier(&name, &name_len, 1, max, s->live_name) != 0 ||
        tgt_naming_identifier(&schema, &schema_len, 1, max, s->schema_name) != 0)
        return tgt_error_nomem(err);
    if (b->overwrite)
        tgt_naming_shadow(s->live_name, max, s->table_name);
    else
        memcpy(s->table_name, s->live_name, sizeof(s->table_name));
    s->identity_hash[0] = identity_hash(s->schema_name, s->live_name);
    s->identity_hash[1] = identity_hash(s->schema_name, s->table_name);
    for (const tgt_stream *o = b->streams.first; o != NULL; o = o->next_in_order) {
        if (o != s && o->has_identity && same_table(s, o))
            return refuse_shared_table(s, o, err);
    }
    s->has_identity = 1;
    return 0;
}

int tgt_loader_table_identity(tgt_batch *b, tgt_stream *s, tgt_schema_options *opt, tgt_error *err)
{
    /* a driver that learns its identifier limit on connecting names nothing
     * before it (driver.h, provisional) */
    if (b->driver->ops->caps->provisional && tgt_batch_connect(b, err) != 0)
        return -1;
    if (!s->has_identity && resolve_identity(b, s, err) != 0)
        return -1;
    memset(opt, 0, sizeof(*opt));
    opt->stream = s->name;
    opt->target_schema = s->schema_name;
    opt->table_name = s->table_name;
    opt->timestamp_column = b->timestamp_column;
    opt->flattening_max_depth = b->cfg->flattening_max_depth;
    opt->metadata_columns = b->cfg->add_metadata_columns != 0;
    opt->versioned = s->versioned;
    opt->hard_delete = b->cfg->hard_delete != 0;
    opt->caps = b->driver->ops->caps;
    return 0;
}

/* The model for the SCHEMA message `root` under the current settings. */
static int build_model(tgt_batch *b, tgt_stream *s, const json_t *root, tgt_schema_model *model,
                       tgt_error *err)
{
    const json_t *schema = json_object_get(root, "schema");
    const json_t *keys = json_object_get(root, "key_properties");
    if (b->cfg->load_method_mode == TGT_LOAD_APPEND_ONLY)
        keys = NULL; /* every record becomes a row: no key, no upsert */
    /* upsert without key_properties takes the table's primary key, or is
     * refused when there is none (tgt_evolve_diff) */
    tgt_schema_options opt;
    if (tgt_loader_table_identity(b, s, &opt, err) != 0)
        return -1;
    return tgt_schema_build(schema, keys, &opt, model, err);
}

/* overwrite: the first SCHEMA of a stream in this run drops the shadow a
 * failed run may have left, so the shadow holds this run's rows only. */
static int clear_shadow(tgt_batch *b, tgt_stream *s, const tgt_table *t, tgt_error *err)
{
    if (!b->overwrite || s->shadow_cleared)
        return 0;
    if (b->driver->ops->drop_table(b->driver, t->schema, t->name, err) != 0)
        return -1;
    s->shadow_cleared = 1;
    b->shadows_pending = 1;
    tgt_log(TGT_LOG_INFO,
            "stream \"%s\": loading into \"%s\".\"%s\", which replaces \"%s\".\"%s\" when the "
            "run succeeds (load_method overwrite)",
            s->name, t->schema, t->name, t->schema, s->live_name);
    return 0;
}

/* What a stream without key_properties does on a keyed table, per
 * load_method (overwrite loads into a fresh shadow, which has no key). */
static tgt_keyless_policy keyless_policy(tgt_load_method_mode load_method)
{
    switch (load_method) {
    case TGT_LOAD_UPSERT:
        return TGT_KEYLESS_ADOPT;
    case TGT_LOAD_AUTO:
        return TGT_KEYLESS_REFUSE;
    case TGT_LOAD_APPEND_ONLY:
    case TGT_LOAD_OVERWRITE:
        break;
    }
    return TGT_KEYLESS_APPEND;
}

/* Whether keyed rows of t may go straight into it while it has no rows:
 * not with hard_delete, whose deletion marks only a merge carries out. */
static int loads_direct(const tgt_table *t)
{
    return t->n_keys > 0 && !(t->hard_delete && t->deleted_at_column >= 0);
}

/* Diffs the new model against the live table, commits what is pending if
 * the change needs it, runs the DDL and installs the model. */
static int evolve_and_install(tgt_batch *b, tgt_stream *s, tgt_schema_model *model,
                              char *fingerprint, tgt_error *err)
{
    tgt_evolve_plan plan;
    tgt_evolve_plan_init(&plan);
    int rc = -1;
    model->table.shape_version = s->model.table.shape_version + 1;
    /* the catalog is read on the same connection: a COPY still open
     * (rows of this batch already shipped) must end first */
    if (tgt_batch_connect(b, err) != 0 || tgt_batch_end_bulk_write(b, err) != 0 ||
        clear_shadow(b, s, &model->table, err) != 0 ||
        tgt_evolve_diff(b->driver, &model->table, s->name,
                        b->cfg->type_change_mode == TGT_TYPE_CHANGE_KEEP,
                        keyless_policy(b->cfg->load_method_mode), &plan, err) != 0)
        goto out;
    /* rows encoded under the old shape must reach the database first, and
     * DDL runs in its own transaction */
    if ((s->rows_pending > 0 || (b->in_txn && !tgt_evolve_plan_is_empty(&plan))) &&
        tgt_batch_commit_point(b, err) != 0)
        goto out;
    if (tgt_evolve_apply(b->driver, &model->table, &plan, s->name, err) != 0)
        goto out;
    /* none of s's rows is pending now (committed above), so its write mode
     * may change: a keyed first load into a new or empty table skips
     * staging and merge; a key that clashes sends the batch again staged */
    s->direct = plan.no_rows && loads_direct(&model->table);
    if (model->flatten_depth < b->cfg->flattening_max_depth)
        tgt_log(TGT_LOG_DEBUG, "stream \"%s\": objects flattened to depth %d (column budget %zu)",
                s->name, model->flatten_depth, b->driver->ops->caps->column_budget);
    rc = tgt_stream_set_model(s, model, fingerprint, err);
    fingerprint = NULL;
out:
    free(fingerprint);
    tgt_evolve_plan_deinit(&plan);
    return rc;
}

int tgt_loader_on_schema(tgt_batch *b, const char *line, size_t len, const tgt_message *msg,
                         tgt_error *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(line, len, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &jerr);
    if (root == NULL)
        return tgt_error_set(err, TGT_ERR_INPUT, "cannot read SCHEMA for stream \"%.*s\": %s",
                             (int)msg->stream_len, msg->stream, jerr.text);
    /* the SCHEMA the rules imply (a DROP never becomes a column, a hashed
     * property is text) is the one the stream keeps and compares */
    tgt_transform_stream *rules =
        tgt_transform_find_stream(b->transform, msg->stream, msg->stream_len);
    if (tgt_transform_schema(rules, root, err) != 0) {
        json_decref(root);
        return -1;
    }
    int rc = -1;
    tgt_schema_model model;
    tgt_schema_model_init(&model);
    char *fingerprint = schema_fingerprint(json_object_get(root, "schema"),
                                           json_object_get(root, "key_properties"));
    tgt_stream *s = tgt_stream_get_or_add(&b->streams, msg->stream, msg->stream_len, err);
    if (fingerprint == NULL || s == NULL) {
        tgt_error_nomem(err);
        goto out;
    }
    s->rules = rules;
    if (tgt_stream_has_model(s) && strcmp(fingerprint, s->schema_fingerprint) == 0) {
        rc = 0; /* the same SCHEMA again: nothing to do */
        goto out;
    }
    if (build_model(b, s, root, &model, err) != 0)
        goto out;
    rc = evolve_and_install(b, s, &model, fingerprint, err);
    fingerprint = NULL;
    if (rc == 0) {
        free(s->schema_text);
        /* jansson keeps the properties' order, which is the columns' order */
        s->schema_text = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY);
        if (s->schema_text == NULL)
            rc = tgt_error_nomem(err);
    }
out:
    free(fingerprint);
    tgt_schema_model_deinit(&model);
    json_decref(root);
    return rc;
}

int tgt_loader_use_versions(tgt_batch *b, tgt_stream *s, tgt_error *err)
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
    json_t *root = json_loads(s->schema_text, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
    int rc = -1;
    if (fingerprint == NULL || root == NULL) {
        free(fingerprint);
        tgt_error_nomem(err);
    } else if (build_model(b, s, root, &model, err) == 0) {
        rc = evolve_and_install(b, s, &model, fingerprint, err);
    } else {
        free(fingerprint);
    }
    json_decref(root);
    tgt_schema_model_deinit(&model);
    return rc;
}

/*
 * schema.c - JSON Schema -> table model + flatten plan (see schema.h).
 *
 * Two passes over the properties: first count the columns each flattening
 * depth would give, to pick the deepest depth within the column budget; then
 * build columns and plans at that depth.  Recursion follows the schema's
 * object nesting only down to the chosen depth, and jansson caps document
 * depth on parse, so it is bounded.
 */
#include "schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "naming.h"
#include "sbuf.h"
#include "source_path.h"

/* JSON Schema type bits. */
enum {
    JS_NULL = 1,
    JS_BOOLEAN = 2,
    JS_INTEGER = 4,
    JS_NUMBER = 8,
    JS_STRING = 16,
    JS_OBJECT = 32,
    JS_ARRAY = 64,
    JS_ANY = 127
};

typedef struct build_ctx {
    const tgt_schema_options *opt;
    tgt_schema_model *model;
    size_t cap_columns;
    int depth_limit;
    size_t ident_max; /* tgt_naming_limit of the driver's */
    tgt_error *err;
} build_ctx;

uint32_t tgt_plan_hash(const char *key, size_t len)
{
    return tgt_naming_hash(key, len);
}

static unsigned type_bit(const char *name)
{
    static const struct {
        const char *name;
        unsigned bit;
    } bits[] = {{"null", JS_NULL},     {"boolean", JS_BOOLEAN}, {"integer", JS_INTEGER},
                {"number", JS_NUMBER}, {"string", JS_STRING},   {"object", JS_OBJECT},
                {"array", JS_ARRAY}};
    for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
        if (strcmp(name, bits[i].name) == 0)
            return bits[i].bit;
    }
    return 0;
}

/* The declared type bits of one schema node ("type" only; unions are
 * handled by the caller).  No "type" at all means anything. */
static unsigned declared_types(const json_t *node)
{
    const json_t *type = json_object_get(node, "type");
    if (json_is_string(type)) {
        unsigned b = type_bit(json_string_value(type));
        return b ? b : JS_ANY;
    }
    if (json_is_array(type)) {
        unsigned bits = 0;
        size_t i;
        const json_t *v;
        json_array_foreach(type, i, v)
        {
            if (json_is_string(v))
                bits |= type_bit(json_string_value(v));
        }
        return bits ? bits : JS_ANY;
    }
    return JS_ANY;
}

/* A "type" keyword must be a JSON Schema type name or an array of them;
 * anything else is a tap bug that would otherwise load as jsonb unnoticed.
 * Checked for every property, nested ones and union members included;
 * `path` is the property path for the message. */
static int check_type_keyword(const json_t *node, const char *stream, const char *path,
                              tgt_error *err)
{
    const json_t *type = json_object_get(node, "type");
    const char *bad = NULL;
    if (type == NULL)
        return 0;
    if (json_is_string(type)) {
        if (type_bit(json_string_value(type)) == 0)
            bad = json_string_value(type);
    } else if (json_is_array(type)) {
        size_t i;
        const json_t *v;
        json_array_foreach(type, i, v)
        {
            if (!json_is_string(v))
                bad = "(a type that is not a string)";
            else if (type_bit(json_string_value(v)) == 0)
                bad = json_string_value(v);
            if (bad != NULL)
                break;
        }
    } else {
        bad = "(a type that is not a string or an array of strings)";
    }
    if (bad == NULL)
        return 0;
    tgt_error_set(err, TGT_ERR_DATA,
                  "stream \"%s\": property \"%s\" has type \"%s\", which is not a JSON Schema "
                  "type",
                  stream, path, bad);
    tgt_error_hint(err, "JSON Schema types are null, boolean, integer, number, string, object "
                        "and array.");
    return -1;
}

static int check_types(const json_t *node, const char *stream, tgt_sbuf *path, tgt_error *err)
{
    if (!json_is_object(node))
        return 0;
    if (path->len > 0 && check_type_keyword(node, stream, tgt_sbuf_str(path), err) != 0)
        return -1;
    static const char *const unions[] = {"anyOf", "oneOf"};
    for (size_t u = 0; u < 2; u++) {
        size_t i;
        const json_t *member;
        json_array_foreach(json_object_get(node, unions[u]), i, member)
        {
            if (check_types(member, stream, path, err) != 0)
                return -1;
        }
    }
    const char *key;
    const json_t *child;
    json_object_foreach((json_t *)json_object_get(node, "properties"), key, child)
    {
        size_t mark = path->len;
        if (mark > 0)
            tgt_sbuf_append_char(path, '.');
        tgt_sbuf_append_str(path, key);
        int rc = check_types(child, stream, path, err);
        path->len = mark;
        if (path->data != NULL)
            path->data[mark] = '\0';
        if (rc != 0)
            return -1;
    }
    return 0;
}

static const json_t *union_of(const json_t *node)
{
    const json_t *u = json_object_get(node, "anyOf");
    if (!json_is_array(u))
        u = json_object_get(node, "oneOf");
    return json_is_array(u) && json_array_size(u) > 0 ? u : NULL;
}

/* A node is flattened when it is an object (optionally nullable) with a
 * non-empty "properties" object and nothing else in its type. */
static int is_flattenable(const json_t *node)
{
    if (union_of(node) != NULL)
        return 0;
    const json_t *props = json_object_get(node, "properties");
    if (!json_is_object(props) || json_object_size(props) == 0)
        return 0;
    unsigned bits = declared_types(node);
    if (json_object_get(node, "type") == NULL)
        bits = JS_OBJECT;
    return (bits & ~(unsigned)JS_NULL) == JS_OBJECT;
}

static int integer_bounds_fit_bigint(const json_t *node)
{
    /* jansson reads numbers as doubles here (JSON_DECODE_INT_AS_REAL), so
     * compare against 2^63 as a double. */
    const char *bounds[] = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"};
    for (size_t i = 0; i < 4; i++) {
        const json_t *b = json_object_get(node, bounds[i]);
        if (json_is_number(b)) {
            double v = json_number_value(b);
            if (v > 9223372036854775807.0 || v < -9223372036854775808.0)
                return 0;
        }
    }
    return 1;
}

static tgt_coltype string_type(const json_t *node)
{
    const char *format = json_string_value(json_object_get(node, "format"));
    if (format != NULL) {
        if (strcmp(format, "date-time") == 0)
            return tgt_type_make(TGT_T_TIMESTAMPTZ);
        if (strcmp(format, "date") == 0)
            return tgt_type_make(TGT_T_DATE);
        if (strcmp(format, "time") == 0)
            return tgt_type_make(TGT_T_TIME);
    }
    return tgt_type_make(TGT_T_TEXT);
}

/* Column type of a leaf node (a node not flattened). */
static tgt_coltype leaf_type(const json_t *node)
{
    const json_t *alternatives = union_of(node);
    if (alternatives != NULL) {
        int have = 0, ok = 1;
        tgt_coltype joined = tgt_type_make(TGT_T_TEXT);
        size_t i;
        const json_t *alt;
        json_array_foreach(alternatives, i, alt)
        {
            if (!json_is_object(alt))
                continue;
            unsigned bits = declared_types(alt);
            if (bits == JS_NULL)
                continue;
            tgt_coltype t = leaf_type(alt);
            if (t.kind == TGT_T_JSONB)
                return t;
            joined = have ? tgt_type_join(joined, t, &ok) : t;
            have = 1;
        }
        return have ? joined : tgt_type_make(TGT_T_JSONB);
    }
    unsigned bits = declared_types(node) & ~(unsigned)JS_NULL;
    if (bits == 0)
        return tgt_type_make(TGT_T_TEXT); /* only null: any scalar may come later */
    if (bits & (JS_OBJECT | JS_ARRAY))
        return tgt_type_make(TGT_T_JSONB);
    int have = 0, ok = 1;
    tgt_coltype joined = tgt_type_make(TGT_T_TEXT);
    struct {
        unsigned bit;
        tgt_coltype type;
    } scalars[] = {
        {JS_BOOLEAN, tgt_type_make(TGT_T_BOOLEAN)},
        {JS_INTEGER, tgt_type_make(integer_bounds_fit_bigint(node) ? TGT_T_BIGINT : TGT_T_NUMERIC)},
        {JS_NUMBER, tgt_type_make(TGT_T_NUMERIC)},
        {JS_STRING, string_type(node)},
    };
    for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
        if (!(bits & scalars[i].bit))
            continue;
        joined = have ? tgt_type_join(joined, scalars[i].type, &ok) : scalars[i].type;
        have = 1;
    }
    return joined;
}

/* Number of columns the properties give when objects are flattened to
 * `depth` more levels; stops counting past `limit`. */
static size_t count_columns(const json_t *props, int depth, size_t limit)
{
    size_t n = 0;
    const char *key;
    const json_t *node;
    json_object_foreach((json_t *)props, key, node)
    {
        (void)key;
        if (depth > 0 && is_flattenable(node))
            n += count_columns(json_object_get(node, "properties"), depth - 1, limit - n);
        else
            n++;
        if (n > limit)
            return n;
    }
    return n;
}

static int choose_depth(const json_t *props, long max_depth, size_t budget, size_t extra_columns)
{
    int chosen = 0;
    for (long d = 0; d <= max_depth && d < 64; d++) {
        size_t n = count_columns(props, (int)d, budget + 1) + extra_columns;
        if (n > budget)
            break;
        chosen = (int)d;
    }
    return chosen;
}

static tgt_plan *plan_new(const char *path)
{
    tgt_plan *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->path = strdup(path);
    if (p->path == NULL) {
        free(p);
        return NULL;
    }
    return p;
}

static void plan_free(tgt_plan *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n_entries; i++) {
        free(p->entries[i].name);
        plan_free(p->entries[i].child);
    }
    free(p->entries);
    free(p->slots);
    free(p->path);
    free(p);
}

static int plan_index(tgt_plan *p)
{
    size_t n_slots = 8;
    while (n_slots < p->n_entries * 2)
        n_slots *= 2;
    p->slots = calloc(n_slots, sizeof(*p->slots));
    if (p->slots == NULL)
        return -1;
    p->n_slots = n_slots;
    for (size_t i = 0; i < p->n_entries; i++) {
        size_t s = tgt_plan_hash(p->entries[i].name, p->entries[i].name_len) & (n_slots - 1);
        while (p->slots[s] != 0)
            s = (s + 1) & (n_slots - 1);
        p->slots[s] = (uint32_t)(i + 1);
    }
    return 0;
}

const tgt_plan_entry *tgt_plan_find(const tgt_plan *plan, const char *key, size_t len)
{
    size_t mask = plan->n_slots - 1;
    size_t s = tgt_plan_hash(key, len) & mask;
    while (plan->slots[s] != 0) {
        const tgt_plan_entry *e = &plan->entries[plan->slots[s] - 1];
        if (e->name_len == len && memcmp(e->name, key, len) == 0)
            return e;
        s = (s + 1) & mask;
    }
    return NULL;
}

/* Appends a column and returns its index, or -1 (err set). */
static long add_column(build_ctx *ctx, const char *const *parts, const size_t *lens, size_t n_parts,
                       tgt_coltype type)
{
    tgt_table *t = &ctx->model->table;
    if (t->n_columns >= ctx->opt->caps->max_columns) {
        tgt_error_set(ctx->err, TGT_ERR_DATA,
                      "stream \"%s\" needs more than %zu columns, the warehouse's limit per table",
                      ctx->opt->stream, ctx->opt->caps->max_columns);
        tgt_error_hint(ctx->err,
                       "Select fewer properties in the tap, or lower flattening_max_depth.");
        return -1;
    }
    if (t->n_columns == ctx->cap_columns) {
        size_t cap = ctx->cap_columns ? ctx->cap_columns * 2 : 16;
        tgt_column *grown = realloc(t->columns, cap * sizeof(*grown));
        if (grown == NULL)
            return tgt_error_nomem(ctx->err);
        t->columns = grown;
        ctx->cap_columns = cap;
    }
    tgt_column *c = &t->columns[t->n_columns];
    memset(c, 0, sizeof(*c));
    if (tgt_naming_identifier(parts, lens, n_parts, ctx->ident_max, c->name) != 0)
        return tgt_error_nomem(ctx->err);
    uint32_t h = tgt_naming_path_hash(parts, lens, n_parts);
    c->path_hash = h;
    /* a later source name that normalises like an earlier one gets the
     * hash suffix (docs/contract.md "Names") */
    if (tgt_table_find_column(t, c->name) >= 0) {
        char suffixed[TGT_IDENT_MAX + 1];
        tgt_naming_with_suffix(c->name, h, ctx->ident_max, suffixed);
        if (tgt_table_find_column(t, suffixed) >= 0)
            return tgt_error_set(ctx->err, TGT_ERR_DATA,
                                 "stream \"%s\": two properties map to column \"%s\"",
                                 ctx->opt->stream, suffixed);
        memcpy(c->name, suffixed, sizeof(suffixed));
    }
    tgt_sbuf path;
    tgt_sbuf_init(&path);
    for (size_t i = 0; i < n_parts; i++) {
        if (i > 0)
            tgt_sbuf_append_char(&path, '.');
        tgt_sbuf_append(&path, parts[i], lens[i]);
    }
    c->source_path = tgt_sbuf_take(&path);
    tgt_source_path_write(parts, lens, n_parts, &path);
    c->source_json = tgt_sbuf_take(&path);
    if (c->source_path == NULL || c->source_json == NULL)
        return tgt_error_nomem(ctx->err);
    c->type = type;
    c->live_type = type;
    c->role = TGT_COL_DATA;
    return (long)t->n_columns++;
}

static int is_required(const json_t *parent, const char *name)
{
    const json_t *req = json_object_get(parent, "required");
    size_t i;
    const json_t *v;
    json_array_foreach(req, i, v)
    {
        /* by length: a "required" entry holding U+0000 names no property
         * (jansson refuses NUL in object keys), not the part before it */
        if (json_is_string(v) && json_string_length(v) == strlen(name) &&
            strcmp(json_string_value(v), name) == 0)
            return 1;
    }
    return 0;
}

/* Builds the plan for one object level; parts/lens hold the path so far. */
static tgt_plan *build_plan(build_ctx *ctx, const json_t *object_node, const char **parts,
                            size_t *lens, size_t depth)
{
    tgt_sbuf path;
    tgt_sbuf_init(&path);
    for (size_t i = 0; i < depth; i++) {
        if (i > 0)
            tgt_sbuf_append_char(&path, '.');
        tgt_sbuf_append(&path, parts[i], lens[i]);
    }
    tgt_plan *plan = tgt_sbuf_ok(&path) ? plan_new(tgt_sbuf_str(&path)) : NULL;
    tgt_sbuf_deinit(&path);
    if (plan == NULL) {
        tgt_error_nomem(ctx->err);
        return NULL;
    }
    const json_t *props = json_object_get(object_node, "properties");
    plan->entries = calloc(json_object_size(props) + 1, sizeof(*plan->entries));
    if (plan->entries == NULL)
        goto nomem;
    const char *key;
    json_t *node;
    json_object_foreach((json_t *)props, key, node)
    {
        tgt_plan_entry *e = &plan->entries[plan->n_entries++];
        e->name_len = strlen(key);
        e->name = strdup(key);
        e->column = -1;
        e->required = is_required(object_node, key);
        if (e->name == NULL)
            goto nomem;
        parts[depth] = key;
        lens[depth] = e->name_len;
        if ((int)depth < ctx->depth_limit && is_flattenable(node)) {
            e->child = build_plan(ctx, node, parts, lens, depth + 1);
            if (e->child == NULL)
                goto fail;
        } else {
            e->column = add_column(ctx, parts, lens, depth + 1, leaf_type(node));
            if (e->column < 0)
                goto fail;
        }
    }
    if (plan_index(plan) != 0)
        goto nomem;
    return plan;
nomem:
    tgt_error_nomem(ctx->err);
fail:
    plan_free(plan);
    return NULL;
}

/* Is `name` a column target-pg fills itself in this model: the receive-time
 * column, the metadata columns in use, and _sdc_table_version always (a
 * stream may start using versions in the middle of a run, after its table
 * was made).  Not _sdc_deleted_at: a declared one is how CDC deletions
 * arrive, and it serves as the deletion mark. */
static int is_target_column(const build_ctx *ctx, const char *name)
{
    static const char *const metadata[] = {"_sdc_extracted_at", "_sdc_received_at",
                                           "_sdc_batched_at", "_sdc_sequence"};
    if (strcmp(name, ctx->opt->timestamp_column) == 0 || strcmp(name, TGT_SDC_TABLE_VERSION) == 0)
        return 1;
    for (size_t i = 0; i < sizeof(metadata) / sizeof(*metadata); i++) {
        if (ctx->opt->metadata_columns && strcmp(name, metadata[i]) == 0)
            return 1;
    }
    return 0;
}

/* A property whose column name is one target-pg fills itself gets the hash
 * suffix instead (the clash rule), so its values stay data and never drive
 * the target's own columns (an ACTIVATE_VERSION, say). */
static int yield_target_columns(build_ctx *ctx)
{
    tgt_table *t = &ctx->model->table;
    for (size_t i = 0; i < t->n_columns; i++) {
        tgt_column *c = &t->columns[i];
        if (!is_target_column(ctx, c->name))
            continue;
        char suffixed[TGT_IDENT_MAX + 1];
        tgt_naming_with_suffix(c->name, c->path_hash, ctx->ident_max, suffixed);
        if (tgt_table_find_column(t, suffixed) >= 0)
            return tgt_error_set(ctx->err, TGT_ERR_DATA,
                                 "stream \"%s\": two properties map to column \"%s\"",
                                 ctx->opt->stream, suffixed);
        tgt_log(TGT_LOG_WARN,
                "stream \"%s\": property \"%s\" is loaded into column \"%s\": \"%s\" is a column "
                "target-pg fills itself",
                ctx->opt->stream, c->source_path, suffixed, c->name);
        memcpy(c->name, suffixed, sizeof(suffixed));
    }
    return 0;
}

/* Appends a column that target-pg fills itself (not from a property), unless
 * the stream declares a property of that name (only _sdc_deleted_at can be:
 * yield_target_columns renamed the others): then the declared column
 * serves and -2 is returned with *index set to it.  -1 on error. */
static long add_role_column(build_ctx *ctx, const char *name, tgt_type_kind kind,
                            tgt_column_role role, long *index)
{
    tgt_table *t = &ctx->model->table;
    long have = tgt_table_find_column(t, name);
    if (have >= 0) {
        *index = have;
        return -2;
    }
    size_t len = strlen(name);
    long col = add_column(ctx, &name, &len, 1, tgt_type_make(kind));
    if (col < 0)
        return -1;
    tgt_column *c = &t->columns[col];
    free(c->source_path);
    free(c->source_json);
    c->source_path = NULL;
    c->source_json = NULL;
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->role = role;
    *index = col;
    return col;
}

static int add_loaded_at(build_ctx *ctx)
{
    long col;
    long rc = add_role_column(ctx, ctx->opt->timestamp_column, TGT_T_TIMESTAMPTZ, TGT_COL_LOADED_AT,
                              &col);
    if (rc == -2) /* yield_target_columns renamed the property of that name */
        return tgt_error_set(ctx->err, TGT_ERR_DATA,
                             "stream \"%s\": a property's column is named \"%s\", the "
                             "timestamp_column",
                             ctx->opt->stream, ctx->opt->timestamp_column);
    ctx->model->loaded_at_column = col;
    return rc < 0 ? -1 : 0;
}

/* The _sdc_* columns the options ask for (schema.h). */
static int add_metadata(build_ctx *ctx)
{
    const tgt_schema_options *o = ctx->opt;
    static const struct {
        const char *name;
        tgt_type_kind kind;
        tgt_column_role role;
        int always; /* 1: with metadata_columns only; 0: also for versions/deletions */
    } meta[] = {
        {"_sdc_extracted_at", TGT_T_TIMESTAMPTZ, TGT_COL_EXTRACTED_AT, 1},
        {"_sdc_received_at", TGT_T_TIMESTAMPTZ, TGT_COL_RECEIVED_AT, 1},
        {"_sdc_batched_at", TGT_T_TIMESTAMPTZ, TGT_COL_BATCHED_AT, 1},
        {TGT_SDC_DELETED_AT, TGT_T_TIMESTAMPTZ, TGT_COL_DELETED_AT, 0},
        {TGT_SDC_TABLE_VERSION, TGT_T_BIGINT, TGT_COL_TABLE_VERSION, 0},
        {"_sdc_sequence", TGT_T_BIGINT, TGT_COL_SEQUENCE, 1},
    };
    tgt_table *t = &ctx->model->table;
    for (size_t i = 0; i < sizeof(meta) / sizeof(meta[0]); i++) {
        int wanted = o->metadata_columns;
        if (meta[i].role == TGT_COL_DELETED_AT)
            wanted |= o->versioned || o->hard_delete;
        if (meta[i].role == TGT_COL_TABLE_VERSION)
            wanted |= o->versioned;
        if (!wanted)
            continue;
        long col;
        if (add_role_column(ctx, meta[i].name, meta[i].kind, meta[i].role, &col) == -1)
            return -1;
        if (meta[i].role == TGT_COL_DELETED_AT)
            t->deleted_at_column = col;
        else if (meta[i].role == TGT_COL_TABLE_VERSION)
            t->version_column = col;
    }
    t->hard_delete = o->hard_delete;
    return 0;
}

static int add_keys(build_ctx *ctx, const json_t *key_properties)
{
    tgt_schema_model *m = ctx->model;
    size_t n = json_array_size(key_properties);
    if (n == 0)
        return 0;
    m->table.key_columns = calloc(n, sizeof(size_t));
    if (m->table.key_columns == NULL)
        return tgt_error_nomem(ctx->err);
    for (size_t i = 0; i < n; i++) {
        const json_t *key_node = json_array_get(key_properties, i);
        const char *key = json_string_value(key_node);
        if (key == NULL)
            return tgt_error_set(ctx->err, TGT_ERR_DATA,
                                 "stream \"%s\": key_properties must be an array of strings",
                                 ctx->opt->stream);
        if (json_string_length(key_node) != strlen(key))
            return tgt_error_set(ctx->err, TGT_ERR_DATA,
                                 "stream \"%s\": key property \"%s\\u0000...\" holds U+0000, "
                                 "which no property name can",
                                 ctx->opt->stream, key);
        const tgt_plan_entry *e = tgt_plan_find(m->root, key, strlen(key));
        if (e == NULL)
            return tgt_error_set(ctx->err, TGT_ERR_DATA,
                                 "stream \"%s\": key property \"%s\" is not declared in the "
                                 "schema's properties",
                                 ctx->opt->stream, key);
        if (e->column < 0)
            return tgt_error_set(ctx->err, TGT_ERR_DATA,
                                 "stream \"%s\": key property \"%s\" is an object; keys must "
                                 "be scalar properties",
                                 ctx->opt->stream, key);
        for (size_t j = 0; j < m->table.n_keys; j++) {
            if (m->table.key_columns[j] == (size_t)e->column)
                return tgt_error_set(ctx->err, TGT_ERR_DATA,
                                     "stream \"%s\": key property \"%s\" is listed twice",
                                     ctx->opt->stream, key);
        }
        m->table.columns[e->column].is_key = 1;
        m->table.key_columns[m->table.n_keys++] = (size_t)e->column;
    }
    return 0;
}

void tgt_schema_model_init(tgt_schema_model *m)
{
    memset(m, 0, sizeof(*m));
    tgt_table_init(&m->table);
    m->loaded_at_column = -1;
}

void tgt_schema_model_deinit(tgt_schema_model *m)
{
    tgt_table_deinit(&m->table);
    plan_free(m->root);
    tgt_schema_model_init(m);
}

int tgt_schema_build(const json_t *schema, const json_t *key_properties,
                     const tgt_schema_options *opt, tgt_schema_model *out, tgt_error *err)
{
    tgt_schema_model_init(out);
    const json_t *props = json_object_get(schema, "properties");
    if (!json_is_object(schema) || !json_is_object(props))
        return tgt_error_set(err, TGT_ERR_DATA,
                             "stream \"%s\": the SCHEMA has no \"properties\" object", opt->stream);
    if (key_properties != NULL && !json_is_null(key_properties) && !json_is_array(key_properties))
        return tgt_error_set(err, TGT_ERR_DATA,
                             "stream \"%s\": key_properties must be an array of strings",
                             opt->stream);
    tgt_sbuf path;
    tgt_sbuf_init(&path);
    int bad_types = check_types(schema, opt->stream, &path, err);
    tgt_sbuf_deinit(&path);
    if (bad_types != 0)
        return -1;
    build_ctx ctx = {opt, out, 0, 0, tgt_naming_limit(opt->caps->ident_max), err};
    ctx.depth_limit = choose_depth(props, opt->flattening_max_depth, opt->caps->column_budget, 7);
    out->flatten_depth = ctx.depth_limit;
    out->table.schema = strdup(opt->target_schema);
    out->table.name = strdup(opt->table_name);
    if (out->table.schema == NULL || out->table.name == NULL) {
        tgt_schema_model_deinit(out);
        return tgt_error_nomem(err);
    }
    const char *parts[64];
    size_t lens[64];
    out->root = build_plan(&ctx, schema, parts, lens, 0);
    if (out->root == NULL || yield_target_columns(&ctx) != 0 || add_loaded_at(&ctx) != 0 ||
        add_metadata(&ctx) != 0 || add_keys(&ctx, key_properties) != 0) {
        tgt_schema_model_deinit(out);
        return -1;
    }
    return 0;
}

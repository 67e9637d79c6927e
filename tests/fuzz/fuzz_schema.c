/*
 * fuzz_schema.c - libFuzzer target: an arbitrary JSON Schema through
 * tgt_schema_build (schema.h: table model + flatten plan), and arbitrary
 * bytes through the naming functions (naming.h).
 *
 * Why: a SCHEMA message is the one input that decides DDL.  Whatever the
 * tap sends, the model must name every column with a distinct identifier
 * PostgreSQL accepts, route every declared leaf to exactly one column, keep
 * keys consistent and stay within the column limits, or fail with a data
 * error; naming must keep its 63-byte rule on any bytes.
 *
 * Input layout:
 *   byte 0   flattening_max_depth: 0-15, or from 0xF0 up 63, 64, 1000, LONG_MAX
 *   byte 1   bits 0-2: key_properties variant (see keys_for); bits 3-4:
 *            timestamp_column; bit 5: add_metadata_columns; bit 6: versioned;
 *            bit 7: hard_delete
 *   rest     JSON, decoded with jansson as loader.c does: a SCHEMA message
 *            (an object with "schema", whose "key_properties" variant 1
 *            uses) or the schema itself
 * The naming checks take the whole input, split on '.' into path parts.
 */
#include <jansson.h>
#include <limits.h>
#include <string.h>

#include "fuzz.h"
#include "naming.h"
#include "postgres/pg_caps.h"
#include "postgres/pg_types.h"
#include "sbuf.h"
#include "schema.h"

#define MAX_PARTS 64

static int ident_byte_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c >= 0x80;
}

static int is_hex_suffix(const char *s, uint32_t hash)
{
    char want[16];
    snprintf(want, sizeof(want), "_%08x", hash);
    return strcmp(s, want) == 0;
}

/* A normalised identifier: 1-max bytes of [a-z0-9_] or non-ASCII, not
 * starting with a digit. */
static void check_ident_shape(const char *id, size_t max)
{
    size_t n = strlen(id);
    FUZZ_CHECK(n >= 1 && n <= max);
    FUZZ_CHECK(!(id[0] >= '0' && id[0] <= '9'));
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(ident_byte_ok((unsigned char)id[i]));
}

/* tgt_naming_identifier on parts against the rule spelled out in naming.h,
 * at the identifier limit `max` (a tgt_naming_limit). */
static void check_identifier(const char *const *parts, const size_t *lens, size_t n_parts,
                             size_t max)
{
    const size_t cut = max - TGT_IDENT_SUFFIX;
    char out[TGT_IDENT_MAX + 1];
    FUZZ_CHECK(tgt_naming_identifier(parts, lens, n_parts, max, out) == 0);
    check_ident_shape(out, max);
    int valid = 1;
    tgt_sbuf joined, raw;
    tgt_sbuf_init(&joined);
    tgt_sbuf_init(&raw);
    for (size_t i = 0; i < n_parts; i++) {
        valid &= fuzz_utf8_valid((const unsigned char *)parts[i], lens[i]);
        if (i > 0) {
            tgt_sbuf_append(&joined, "__", 2);
            tgt_sbuf_append_char(&raw, TGT_PATH_SEPARATOR);
        }
        tgt_naming_normalize_part(parts[i], lens[i], &joined);
        tgt_sbuf_append(&raw, parts[i], lens[i]);
    }
    FUZZ_CHECK(tgt_sbuf_ok(&joined) && tgt_sbuf_ok(&raw));
    uint32_t h = tgt_naming_path_hash(parts, lens, n_parts);
    FUZZ_CHECK(h == tgt_naming_hash(raw.data, raw.len));
    size_t n = strlen(out);
    if (joined.len <= max) {
        FUZZ_CHECK(n == joined.len && memcmp(out, joined.data, n) == 0);
    } else {
        /* cut to <= max - 9 bytes at a character boundary, then _ + 8 hex digits */
        FUZZ_CHECK(n >= 9 && n <= cut + 9);
        FUZZ_CHECK(memcmp(out, joined.data, n - 9) == 0);
        FUZZ_CHECK(is_hex_suffix(out + n - 9, h));
        if (valid)
            FUZZ_CHECK(n - 9 + 3 >= cut);
    }
    if (valid)
        FUZZ_CHECK(fuzz_utf8_valid((const unsigned char *)out, n));

    char suffixed[TGT_IDENT_MAX + 1];
    tgt_naming_with_suffix(out, 0xdeadbeefu, max, suffixed);
    size_t sn = strlen(suffixed);
    FUZZ_CHECK(sn >= 9 && sn <= cut + 9 && is_hex_suffix(suffixed + sn - 9, 0xdeadbeefu));
    FUZZ_CHECK(memcmp(suffixed, out, sn - 9) == 0);
    if (valid)
        FUZZ_CHECK(fuzz_utf8_valid((const unsigned char *)suffixed, sn));
    tgt_sbuf_deinit(&joined);
    tgt_sbuf_deinit(&raw);
}

static void check_split(const char *s, size_t len)
{
    const char *source, *table;
    size_t source_len, table_len;
    tgt_naming_split_stream(s, len, &source, &source_len, &table, &table_len);
    FUZZ_CHECK(table >= s && table_len <= len && (size_t)(table - s) <= len - table_len);
    if (source == NULL) {
        FUZZ_CHECK(table == s && table_len == len && source_len == 0);
        return;
    }
    /* "source-table" or "db-source-table", every part non-empty */
    FUZZ_CHECK(source >= s && source_len > 0 && table_len > 0);
    FUZZ_CHECK(source + source_len + 1 == table && table + table_len == s + len);
    FUZZ_CHECK(memchr(source, '-', source_len) == NULL && memchr(table, '-', table_len) == NULL);
    FUZZ_CHECK(source == s || (source - 1 > s && source[-1] == '-' &&
                               memchr(s, '-', (size_t)(source - 1 - s)) == NULL));
}

static void check_naming(const uint8_t *data, size_t size)
{
    const char *parts[MAX_PARTS];
    size_t lens[MAX_PARTS], n_parts = 0, start = 0;
    const char *s = (const char *)data;
    for (size_t i = 0; i <= size && n_parts < MAX_PARTS; i++) {
        if (i == size || s[i] == '.') {
            parts[n_parts] = s + start;
            lens[n_parts++] = i - start;
            start = i + 1;
        }
    }
    /* PostgreSQL's limit, the shortest a driver may state, the longest */
    check_identifier(parts, lens, n_parts, tgt_pg_caps.ident_max);
    check_identifier(parts, lens, 1, tgt_pg_caps.ident_max);
    check_identifier(parts, lens, n_parts, TGT_IDENT_MIN);
    check_identifier(parts, lens, n_parts, TGT_IDENT_MAX);
    check_split(s, size);
}

static long depth_for(uint8_t b)
{
    static const long big[] = {63, 64, 1000, LONG_MAX};
    return b < 0xF0 ? b % 16 : big[b % 4];
}

/* key_properties for variant v (0-7); *owned holds a new reference the
 * caller drops. */
static const json_t *keys_for(unsigned v, const json_t *schema, const json_t *doc_keys,
                              json_t **owned)
{
    const json_t *props = json_object_get(schema, "properties");
    const char *key;
    json_t *node;
    *owned = NULL;
    switch (v) {
    case 0:
        return NULL;
    case 1:
        return doc_keys;
    case 2:
        return *owned = json_null();
    case 5:
        return *owned = json_string("id"); /* not an array */
    case 6:
        return *owned = json_pack("[i]", 1); /* not strings */
    default:
        break;
    }
    /* 3: the first property, 4: the first two, 7: all of them */
    size_t want = v == 3 ? 1 : v == 4 ? 2 : (size_t)-1;
    *owned = json_array();
    json_object_foreach((json_t *)props, key, node)
    {
        (void)node;
        if (json_array_size(*owned) >= want)
            break;
        json_array_append_new(*owned, json_string(key));
    }
    return *owned;
}

/* The source path of property `name` on a plan level: the level's path,
 * '.', the name; at the root just the name (a nested level may have an
 * empty path of its own: a property named ""). */
static void entry_path(const tgt_plan *plan, int depth, const tgt_plan_entry *e, tgt_sbuf *out)
{
    tgt_sbuf_reset(out);
    if (depth > 0) {
        tgt_sbuf_append_str(out, plan->path);
        tgt_sbuf_append_char(out, '.');
    }
    tgt_sbuf_append(out, e->name, e->name_len);
    FUZZ_CHECK(tgt_sbuf_ok(out));
}

/* Walks the plan: every entry findable, a leaf xor a child, children carry
 * their source path, leaves fill distinct DATA columns whose source path is
 * the entry's. */
static void check_plan(const tgt_plan *plan, const tgt_table *t, unsigned char *used, int depth,
                       int max_depth)
{
    FUZZ_CHECK(depth <= max_depth);
    FUZZ_CHECK(plan->path != NULL && plan->n_slots >= 8 &&
               (plan->n_slots & (plan->n_slots - 1)) == 0 && plan->n_slots > plan->n_entries);
    if (depth == 0)
        FUZZ_CHECK(plan->path[0] == '\0');
    tgt_sbuf path;
    tgt_sbuf_init(&path);
    for (size_t i = 0; i < plan->n_entries; i++) {
        const tgt_plan_entry *e = &plan->entries[i];
        FUZZ_CHECK(e->name != NULL && strlen(e->name) == e->name_len);
        FUZZ_CHECK(tgt_plan_find(plan, e->name, e->name_len) == e);
        FUZZ_CHECK((e->column >= 0) != (e->child != NULL));
        entry_path(plan, depth, e, &path);
        if (e->child != NULL) {
            FUZZ_CHECK(strcmp(e->child->path, tgt_sbuf_str(&path)) == 0);
            check_plan(e->child, t, used, depth + 1, max_depth);
            continue;
        }
        FUZZ_CHECK((size_t)e->column < t->n_columns);
        const tgt_column *c = &t->columns[e->column];
        FUZZ_CHECK(c->role == TGT_COL_DATA && !used[e->column]);
        used[e->column] = 1;
        FUZZ_CHECK(c->source_path != NULL && strcmp(c->source_path, tgt_sbuf_str(&path)) == 0);
    }
    tgt_sbuf_deinit(&path);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const tgt_column *)a)->name, ((const tgt_column *)b)->name);
}

static void check_model(const tgt_schema_model *m, const tgt_schema_options *opt,
                        const json_t *keys)
{
    const tgt_table *t = &m->table;
    FUZZ_CHECK(t->n_columns >= 1 && t->n_columns <= opt->caps->max_columns);
    FUZZ_CHECK(strcmp(t->schema, opt->target_schema) == 0 && strcmp(t->name, opt->table_name) == 0);
    FUZZ_CHECK(m->flatten_depth >= 0 && m->flatten_depth < 64 &&
               m->flatten_depth <= opt->flattening_max_depth);
    if (m->flatten_depth > 0)
        FUZZ_CHECK(t->n_columns <= opt->caps->column_budget);

    unsigned char *used = calloc(t->n_columns, 1);
    tgt_column *sorted = malloc(t->n_columns * sizeof(*sorted));
    FUZZ_CHECK(used != NULL && sorted != NULL);
    check_plan(m->root, t, used, 0, m->flatten_depth);
    size_t n_key_flags = 0;
    for (size_t i = 0; i < t->n_columns; i++) {
        const tgt_column *c = &t->columns[i];
        check_ident_shape(c->name, opt->caps->ident_max);
        FUZZ_CHECK(tgt_type_equal(c->type, c->live_type));
        char sql[64];
        FUZZ_CHECK(tgt_type_name(c->type, sql, sizeof(sql))[0] != '\0');
        /* what PostgreSQL is told to create reads back as the same type */
        FUZZ_CHECK(
            tgt_type_equal(pg_type_from_sql(pg_type_sql(c->type, sql, sizeof(sql))), c->type));
        FUZZ_CHECK(c->type.kind != TGT_T_OTHER);
        if (c->role == TGT_COL_DATA)
            FUZZ_CHECK(used[i] && c->source_path != NULL);
        else
            FUZZ_CHECK(c->source_path == NULL && !c->is_key);
        n_key_flags += c->is_key != 0;
    }
    /* distinct names: PostgreSQL would refuse the CREATE TABLE */
    memcpy(sorted, t->columns, t->n_columns * sizeof(*sorted));
    qsort(sorted, t->n_columns, sizeof(*sorted), by_name);
    for (size_t i = 1; i < t->n_columns; i++)
        FUZZ_CHECK(strcmp(sorted[i - 1].name, sorted[i].name) != 0);

    if (m->loaded_at_column >= 0) {
        FUZZ_CHECK((size_t)m->loaded_at_column < t->n_columns);
        const tgt_column *c = &t->columns[m->loaded_at_column];
        FUZZ_CHECK(c->role == TGT_COL_LOADED_AT && strcmp(c->name, opt->timestamp_column) == 0);
    } else {
        long declared = tgt_table_find_column(t, opt->timestamp_column);
        FUZZ_CHECK(declared >= 0 && t->columns[declared].role == TGT_COL_DATA);
    }

    size_t want_keys = json_is_array(keys) ? json_array_size(keys) : 0;
    FUZZ_CHECK(t->n_keys == want_keys && n_key_flags == want_keys);
    for (size_t k = 0; k < t->n_keys; k++) {
        size_t col = t->key_columns[k];
        FUZZ_CHECK(col < t->n_columns && t->columns[col].is_key &&
                   t->columns[col].role == TGT_COL_DATA);
        /* a key is a root property of that name */
        const char *name = json_string_value(json_array_get(keys, k));
        FUZZ_CHECK(name != NULL && strcmp(t->columns[col].source_path, name) == 0);
    }
    free(used);
    free(sorted);
}

static void check_schema(const uint8_t *data, size_t size)
{
    json_t *doc = json_loadb((const char *)data + 2, size - 2,
                             JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
    if (doc == NULL)
        return;
    static const char *const timestamp_columns[] = {"__loaded_at", "id", "_sdc_batched_at", "a"};
    const json_t *schema = doc, *doc_keys = NULL;
    if (json_object_get(doc, "schema") != NULL) {
        schema = json_object_get(doc, "schema");
        doc_keys = json_object_get(doc, "key_properties");
    }
    json_t *owned;
    const json_t *keys = keys_for(data[1] & 7u, schema, doc_keys, &owned);
    tgt_schema_options opt;
    memset(&opt, 0, sizeof(opt));
    opt.stream = "fuzz";
    opt.target_schema = "public";
    opt.table_name = "fuzz";
    opt.timestamp_column = timestamp_columns[(data[1] >> 3) & 3u];
    opt.flattening_max_depth = depth_for(data[0]);
    opt.metadata_columns = (data[1] >> 5) & 1;
    opt.versioned = (data[1] >> 6) & 1;
    opt.hard_delete = (data[1] >> 7) & 1;
    opt.caps = &tgt_pg_caps;

    tgt_schema_model model;
    tgt_error err;
    tgt_error_init(&err);
    if (tgt_schema_build(schema, keys, &opt, &model, &err) == 0) {
        check_model(&model, &opt, keys);
        tgt_schema_model_deinit(&model);
    } else {
        FUZZ_CHECK(err.code == TGT_ERR_DATA && err.message[0] != '\0');
        FUZZ_CHECK(model.root == NULL && model.table.n_columns == 0);
    }
    json_decref(owned);
    json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_naming(data, size);
    if (size >= 2)
        check_schema(data, size);
    return 0;
}

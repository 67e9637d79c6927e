/*
 * evolve.c - schema evolution decisions (see evolve.h).  The live table is
 * always read from the catalog, never remembered from an earlier SCHEMA:
 * another run, a person or another loader may have changed it since.
 */
#include "evolve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "source_path.h"

void tgt_evolve_plan_init(tgt_evolve_plan *plan)
{
    memset(plan, 0, sizeof(*plan));
}

void tgt_evolve_plan_deinit(tgt_evolve_plan *plan)
{
    free(plan->add);
    free(plan->alter);
    tgt_evolve_plan_init(plan);
}

int tgt_evolve_plan_is_empty(const tgt_evolve_plan *plan)
{
    return !plan->create_table && plan->n_add == 0 && plan->n_alter == 0 && !plan->move_key;
}

static int narrowing_error(const tgt_table *t, const tgt_column *c, const tgt_live_column *live,
                           const char *stream, tgt_error *err)
{
    char wanted[64];
    tgt_error_set(err, TGT_ERR_DATA,
                  "stream \"%s\": column \"%s\" of \"%s\".\"%s\" is %s in the database but the "
                  "SCHEMA asks for %s, a narrower type",
                  stream, c->name, t->schema, t->name, live->sql_type,
                  tgt_type_name(c->type, wanted, sizeof(wanted)));
    tgt_error_detail(err, "Columns are only ever widened (e.g. bigint -> numeric -> text); "
                          "narrowing could lose or reject values already stored.");
    tgt_error_hint(err, "Fix the tap's schema, or alter or rename the column yourself.");
    return -1;
}

static int key_names_match(const tgt_table *t, const tgt_live_table *live)
{
    if (t->n_keys != live->n_keys)
        return 0;
    for (size_t i = 0; i < t->n_keys; i++) {
        int found = 0;
        for (size_t j = 0; j < live->n_keys; j++)
            found |= strcmp(t->columns[t->key_columns[i]].name, live->key[j]) == 0;
        if (!found)
            return 0;
    }
    return 1;
}

static void key_list(const tgt_table *t, const tgt_live_table *live, int from_live, char *buf,
                     size_t cap)
{
    size_t n = from_live ? live->n_keys : t->n_keys;
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < cap; i++) {
        const char *name = from_live ? live->key[i] : t->columns[t->key_columns[i]].name;
        int w = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    if (n == 0)
        snprintf(buf, cap, "none");
}

/* load_method upsert, no key_properties and no primary key to take. */
static int upsert_without_key(const tgt_table *t, const char *stream, tgt_error *err)
{
    tgt_error_set(err, TGT_ERR_DATA,
                  "stream \"%s\": load_method is upsert but its SCHEMA has no key_properties "
                  "and \"%s\".\"%s\" has no primary key",
                  stream, t->schema, t->name);
    tgt_error_hint(err, "Give the stream key_properties, or use load_method auto (streams "
                        "without keys are appended).");
    return -1;
}

/* A stream without key_properties on a table that has a primary key, with
 * load_method upsert: the table's key serves as the stream's (the user
 * chose it; see refuse_keyless for why auto does not). */
static int adopt_live_key(tgt_table *t, const tgt_live_table *live, const char *stream,
                          tgt_error *err)
{
    char key[512];
    key_list(t, live, 1, key, sizeof(key));
    size_t *cols = calloc(live->n_keys, sizeof(*cols));
    if (cols == NULL)
        return tgt_error_nomem(err);
    for (size_t k = 0; k < live->n_keys; k++) {
        long col = tgt_table_find_column(t, live->key[k]);
        if (col < 0 || t->columns[col].role != TGT_COL_DATA) {
            free(cols);
            tgt_error_set(err, TGT_ERR_DATA,
                          "stream \"%s\" has no key_properties, and \"%s\".\"%s\" has the "
                          "primary key (%s), whose column \"%s\" is not a property of the "
                          "stream",
                          stream, t->schema, t->name, key, live->key[k]);
            tgt_error_detail(err, "Without a key every record would be appended, and the table "
                                  "refuses a key it already holds.");
            tgt_error_hint(err, "Give the stream its key_properties again; or use load_method "
                                "overwrite to replace the table with one made from this SCHEMA; "
                                "or drop the primary key yourself to append every record.");
            return -1;
        }
        cols[k] = (size_t)col;
    }
    for (size_t k = 0; k < live->n_keys; k++)
        t->columns[cols[k]].is_key = 1;
    free(t->key_columns);
    t->key_columns = cols;
    t->n_keys = live->n_keys;
    tgt_log(TGT_LOG_INFO,
            "stream \"%s\" has no key_properties: upserting on the primary key "
            "(%s) of \"%s\".\"%s\"",
            stream, key, t->schema, t->name);
    return 0;
}

/* A stream without key_properties on a table that has a primary key, with
 * load_method auto.  Appending would be refused at the first key the table
 * already holds (and skipping that refusal would drop the update), while
 * upserting on the old key would silently merge records the tap no longer
 * says are one row: the user decides, so the error lists the choices. */
static int refuse_keyless(const tgt_table *t, const tgt_live_table *live, const char *stream,
                          tgt_error *err)
{
    char key[512];
    key_list(t, live, 1, key, sizeof(key));
    tgt_error_set(err, TGT_ERR_DATA,
                  "stream \"%s\" has no key_properties, but its table \"%s\".\"%s\" has the "
                  "primary key (%s)",
                  stream, t->schema, t->name, key);
    tgt_error_detail(err,
                     "An append-only stream cannot load into a keyed table: the key refuses "
                     "every record whose key is already there, and target-pg does not guess "
                     "whether the records still identify rows by (%s).",
                     key);
    tgt_error_hint(err, "Give the stream its key_properties again; or set load_method upsert to "
                        "upsert on the table's primary key; or load_method overwrite to replace "
                        "the table with one made from this SCHEMA; or drop the primary key "
                        "yourself to append every record.");
    return -1;
}

/* New key_properties for a live table: the key moves (tgt_evolve_apply).
 * A stream without keys never drops the live primary key: `keyless` says
 * what it does instead. */
static int check_keys(tgt_table *t, const tgt_live_table *live, const char *stream,
                      tgt_keyless_policy keyless, tgt_evolve_plan *plan, tgt_error *err)
{
    if (t->n_keys == 0 && live->n_keys > 0) {
        if (keyless == TGT_KEYLESS_ADOPT)
            return adopt_live_key(t, live, stream, err);
        if (keyless == TGT_KEYLESS_REFUSE)
            return refuse_keyless(t, live, stream, err);
        return 0;
    }
    if (t->n_keys == 0 && keyless == TGT_KEYLESS_ADOPT)
        return upsert_without_key(t, stream, err);
    if (t->n_keys > 0 && !key_names_match(t, live)) {
        plan->move_key = 1;
        key_list(t, live, 1, plan->old_key, sizeof(plan->old_key));
    }
    return 0;
}

static int push(size_t **list, size_t *n, size_t value)
{
    size_t *grown = realloc(*list, (*n + 1) * sizeof(**list));
    if (grown == NULL)
        return -1;
    grown[(*n)++] = value;
    *list = grown;
    return 0;
}

/* Decides what happens to one column that exists in the live table. */
static int diff_column(tgt_table *t, size_t i, const tgt_live_column *live, const char *stream,
                       int keep_narrower, tgt_evolve_plan *plan, tgt_error *err)
{
    tgt_column *c = &t->columns[i];
    c->exists = 1;
    int ok = 1;
    tgt_coltype joined;
    switch (tgt_type_compare(c->type, live->type)) {
    case TGT_ORDER_EQUAL:
        c->live_type = live->type;
        return 0;
    case TGT_ORDER_LOWER:
        if (!keep_narrower)
            return narrowing_error(t, c, live, stream, err);
        char wanted[64];
        tgt_log(TGT_LOG_INFO,
                "stream \"%s\": keeping column \"%s\" as %s (the SCHEMA asks for "
                "%s; type_change is keep)",
                stream, c->name, live->sql_type, tgt_type_name(c->type, wanted, sizeof(wanted)));
        c->type = live->type;
        c->live_type = live->type;
        return 0;
    case TGT_ORDER_HIGHER:
        break;
    case TGT_ORDER_INCOMPARABLE:
        joined = tgt_type_join(c->type, live->type, &ok);
        if (!ok) {
            /* a type outside the lattice: load into it as it is and let the
             * database parse the text form */
            tgt_log(TGT_LOG_WARN,
                    "column \"%s\".\"%s\".\"%s\" has type %s, which target-pg "
                    "does not manage; values are sent as text",
                    t->schema, t->name, c->name, live->sql_type);
            c->live_type = live->type;
            return 0;
        }
        c->type = joined;
        break;
    }
    c->live_type = c->type;
    if (push(&plan->alter, &plan->n_alter, i) != 0)
        return tgt_error_nomem(err);
    return 0;
}

/* Which live column holds which property: built from the column comments
 * (source_path.h). */
typedef struct remap_ctx {
    tgt_table *t;
    const tgt_live_table *live;
    long *owner;           /* per live column: the column of t that takes it, or -1 */
    char **json;           /* per live column: its recorded path in the JSON form, or NULL */
    unsigned char *mapped; /* per column of t: it took a live column */
    size_t ident_max;      /* tgt_naming_limit of the driver's */
} remap_ctx;

/* Names a property's column cannot take: those of the columns target-pg
 * fills itself, and _sdc_table_version always (a stream can start using
 * versions in the middle of a run; schema.c gives such a property a
 * suffixed name). */
static int is_reserved(const tgt_table *t, const char *name)
{
    if (strcmp(name, TGT_SDC_TABLE_VERSION) == 0)
        return 1;
    for (size_t j = 0; j < t->n_columns; j++) {
        if (t->columns[j].role != TGT_COL_DATA && strcmp(t->columns[j].name, name) == 0)
            return 1;
    }
    return 0;
}

/* Could the first release have named column `live` for property c?  It gave
 * a property its normalised name or that name with c's hash suffix, as the
 * SCHEMA build does now, so either may be c's name today. */
static int plausible_name(const tgt_column *c, const char *live, size_t ident_max)
{
    char suffixed[TGT_IDENT_MAX + 1];
    if (strcmp(live, c->name) == 0)
        return 1;
    tgt_naming_with_suffix(c->name, c->path_hash, ident_max, suffixed);
    if (strcmp(live, suffixed) == 0)
        return 1;
    tgt_naming_with_suffix(live, c->path_hash, ident_max, suffixed);
    return strcmp(suffixed, c->name) == 0;
}

/* Does live column i hold property c (column index j of t)?  A JSON-form
 * comment says exactly which path; a dotted one ("a.b", first release)
 * names several paths when it holds a '.' (a property "a.b" and a nested
 * a -> b), so then the column's name must fit c as well. */
static int holds(const remap_ctx *x, size_t i, const tgt_column *c, int dotted_pass)
{
    const tgt_live_column *lc = &x->live->columns[i];
    if (x->owner[i] >= 0 || lc->source_path == NULL || is_reserved(x->t, lc->name))
        return 0;
    if (!dotted_pass)
        return x->json[i] != NULL && strcmp(x->json[i], c->source_json) == 0;
    if (x->json[i] != NULL || strcmp(lc->source_path, c->source_path) != 0)
        return 0;
    return strchr(lc->source_path, '.') == NULL || plausible_name(c, lc->name, x->ident_max);
}

/* Gives each property the live column that holds it: first by the exact
 * JSON form, then by the first release's dotted form. */
static void map_columns(remap_ctx *x)
{
    for (int dotted = 0; dotted < 2; dotted++) {
        for (size_t j = 0; j < x->t->n_columns; j++) {
            tgt_column *c = &x->t->columns[j];
            if (c->source_path == NULL || x->mapped[j])
                continue;
            for (size_t i = 0; i < x->live->n_columns; i++) {
                if (holds(x, i, c, dotted)) {
                    memcpy(c->name, x->live->columns[i].name, sizeof(c->name));
                    x->owner[i] = (long)j;
                    x->mapped[j] = 1;
                    break;
                }
            }
        }
    }
}

/* Is `name` held by a live column of another property, or by another
 * column of t? */
static int name_taken(const remap_ctx *x, size_t self, const char *name)
{
    for (size_t i = 0; i < x->live->n_columns; i++) {
        const tgt_live_column *lc = &x->live->columns[i];
        if (strcmp(lc->name, name) != 0)
            continue;
        if (x->owner[i] >= 0 ? x->owner[i] != (long)self : lc->source_path != NULL)
            return 1;
    }
    for (size_t j = 0; j < x->t->n_columns; j++) {
        if (j != self && strcmp(x->t->columns[j].name, name) == 0)
            return 1;
    }
    return 0;
}

/* Reads each live column's comment in the JSON form, when it is one. */
static int read_recorded(remap_ctx *x, tgt_error *err)
{
    tgt_sbuf text;
    tgt_sbuf_init(&text);
    for (size_t i = 0; i < x->live->n_columns; i++) {
        x->owner[i] = -1;
        const char *recorded = x->live->columns[i].source_path;
        int form = recorded != NULL ? tgt_source_path_read(recorded, &text) : 0;
        if (form == 1 && (x->json[i] = strdup(tgt_sbuf_str(&text))) == NULL)
            form = -1;
        if (form < 0) {
            tgt_sbuf_deinit(&text);
            return tgt_error_nomem(err);
        }
    }
    tgt_sbuf_deinit(&text);
    return 0;
}

/*
 * Keeps each property in the column the live table already gave it.  The
 * clash suffix goes to whichever of two alike names comes later in a SCHEMA,
 * so a SCHEMA listing them in another order would otherwise swap their
 * columns; the column comments record each column's property path, which
 * is what is matched here.  A new property whose name is held by another
 * property's live column gets the hash suffix.
 */
static int remap_by_source(tgt_table *t, const tgt_live_table *live, const char *stream,
                           size_t ident_max, tgt_error *err)
{
    remap_ctx x = {t,
                   live,
                   calloc(live->n_columns + 1, sizeof(long)),
                   calloc(live->n_columns + 1, sizeof(char *)),
                   calloc(t->n_columns + 1, 1),
                   ident_max};
    int rc = x.owner != NULL && x.json != NULL && x.mapped != NULL ? read_recorded(&x, err)
                                                                   : tgt_error_nomem(err);
    if (rc == 0)
        map_columns(&x);
    for (size_t i = 0; rc == 0 && i < t->n_columns; i++) {
        tgt_column *c = &t->columns[i];
        if (x.mapped[i] || c->source_path == NULL || !name_taken(&x, i, c->name))
            continue;
        char suffixed[TGT_IDENT_MAX + 1];
        tgt_naming_with_suffix(c->name, c->path_hash, ident_max, suffixed);
        if (strcmp(suffixed, c->name) == 0 || name_taken(&x, i, suffixed))
            rc = tgt_error_set(err, TGT_ERR_DATA,
                               "stream \"%s\": property \"%s\" and another property both map to "
                               "column \"%s\" of \"%s\".\"%s\"",
                               stream, c->source_path, c->name, t->schema, t->name);
        else
            memcpy(c->name, suffixed, sizeof(suffixed));
    }
    for (size_t i = 0; x.json != NULL && i < live->n_columns; i++)
        free(x.json[i]);
    free(x.json);
    free(x.owner);
    free(x.mapped);
    return rc;
}

int tgt_evolve_diff(tgt_driver *d, tgt_table *t, const char *stream, int keep_narrower,
                    tgt_keyless_policy keyless, tgt_evolve_plan *plan, tgt_error *err)
{
    tgt_live_table live;
    tgt_live_table_init(&live);
    if (d->ops->describe_table(d, t->schema, t->name, &live, err) != 0)
        return -1;
    int rc = 0;
    if (!live.exists && t->n_keys == 0 && keyless == TGT_KEYLESS_ADOPT) {
        rc = upsert_without_key(t, stream, err);
        goto done;
    }
    plan->no_rows = !live.exists || live.empty;
    if (!live.exists) {
        plan->create_table = 1;
        for (size_t i = 0; i < t->n_columns; i++)
            t->columns[i].live_type = t->columns[i].type;
        goto done;
    }
    rc = remap_by_source(t, &live, stream, tgt_naming_limit(d->ops->caps->ident_max), err);
    if (rc == 0)
        rc = check_keys(t, &live, stream, keyless, plan, err);
    for (size_t i = 0; rc == 0 && i < t->n_columns; i++) {
        const tgt_live_column *lc = tgt_live_table_find(&live, t->columns[i].name);
        if (lc != NULL) {
            rc = diff_column(t, i, lc, stream, keep_narrower, plan, err);
        } else {
            t->columns[i].live_type = t->columns[i].type;
            if (push(&plan->add, &plan->n_add, i) != 0)
                rc = tgt_error_nomem(err);
        }
    }
done:
    tgt_live_table_deinit(&live);
    return rc;
}

/* Moves the primary key; a refusal (duplicates or NULLs in the new key)
 * becomes an error naming the stream and both keys. */
static int move_key(tgt_driver *d, const tgt_table *t, const tgt_evolve_plan *plan,
                    const char *stream, tgt_error *err)
{
    tgt_error local;
    tgt_error_init(&local);
    if (d->ops->set_primary_key(d, t, &local) == 0)
        return 0;
    char wanted[512];
    key_list(t, NULL, 0, wanted, sizeof(wanted));
    tgt_error_set(err, local.code,
                  "stream \"%s\": cannot move the primary key of \"%s\".\"%s\" from (%s) to "
                  "(%s): %s",
                  stream, t->schema, t->name, plan->old_key, wanted, local.message);
    tgt_error_sqlstate(err, local.sqlstate);
    if (local.detail[0] != '\0')
        tgt_error_detail(err, "%s", local.detail);
    tgt_error_hint(err, "The rows already in the table must be unique and not NULL on the new "
                        "key; deduplicate them or change key_properties back.  The old key is "
                        "still in place.");
    return -1;
}

int tgt_evolve_apply(tgt_driver *d, tgt_table *t, const tgt_evolve_plan *plan, const char *stream,
                     tgt_error *err)
{
    if (plan->create_table) {
        if (d->ops->ensure_schema(d, t->schema, err) != 0 || d->ops->create_table(d, t, err) != 0)
            return -1;
        for (size_t i = 0; i < t->n_columns; i++)
            t->columns[i].exists = 1;
    }
    for (size_t i = 0; i < plan->n_add; i++) {
        if (d->ops->add_column(d, t, plan->add[i], err) != 0)
            return -1;
        t->columns[plan->add[i]].exists = 1;
    }
    /* every widening at once: one table rewrite, not one per column */
    if (plan->n_alter > 0 && d->ops->alter_column_types(d, t, plan->alter, plan->n_alter, err) != 0)
        return -1;
    return plan->move_key ? move_key(d, t, plan, stream, err) : 0;
}

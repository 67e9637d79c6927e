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
                  tgt_type_sql(c->type, wanted, sizeof(wanted)));
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

/* New key_properties for a live table: the key moves (tgt_evolve_apply).
 * A stream without keys leaves the live primary key alone. */
static void check_keys(const tgt_table *t, const tgt_live_table *live, tgt_evolve_plan *plan)
{
    if (t->n_keys > 0 && !key_names_match(t, live)) {
        plan->move_key = 1;
        key_list(t, live, 1, plan->old_key, sizeof(plan->old_key));
    }
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
        tgt_log(TGT_LOG_INFO, "stream \"%s\": keeping column \"%s\" as %s (the SCHEMA asks for "
                "%s; type_change is keep)", stream, c->name, live->sql_type,
                tgt_type_sql(c->type, wanted, sizeof(wanted)));
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
            tgt_log(TGT_LOG_WARN, "column \"%s\".\"%s\".\"%s\" has type %s, which target-pg "
                    "does not manage; values are sent as text", t->schema, t->name, c->name,
                    live->sql_type);
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

static const tgt_live_column *live_by_source(const tgt_live_table *live, const char *path)
{
    for (size_t i = 0; i < live->n_columns; i++) {
        if (live->columns[i].source_path != NULL && strcmp(live->columns[i].source_path, path) == 0)
            return &live->columns[i];
    }
    return NULL;
}

/* Is `name` held by a live column of another property, or by another
 * column of t? */
static int name_taken(const tgt_table *t, size_t self, const tgt_live_table *live,
                      const char *name)
{
    const tgt_live_column *lc = tgt_live_table_find(live, name);
    if (lc != NULL && lc->source_path != NULL &&
        strcmp(lc->source_path, t->columns[self].source_path) != 0)
        return 1;
    for (size_t j = 0; j < t->n_columns; j++) {
        if (j != self && strcmp(t->columns[j].name, name) == 0)
            return 1;
    }
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
                           tgt_error *err)
{
    unsigned char *mapped = calloc(t->n_columns + 1, 1);
    if (mapped == NULL)
        return tgt_error_nomem(err);
    for (size_t i = 0; i < t->n_columns; i++) {
        tgt_column *c = &t->columns[i];
        const tgt_live_column *lc = c->source_path ? live_by_source(live, c->source_path) : NULL;
        if (lc != NULL) {
            memcpy(c->name, lc->name, sizeof(c->name));
            mapped[i] = 1;
        }
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < t->n_columns; i++) {
        tgt_column *c = &t->columns[i];
        if (mapped[i] || c->source_path == NULL || !name_taken(t, i, live, c->name))
            continue;
        char suffixed[TGT_IDENT_MAX + 1];
        tgt_naming_with_suffix(c->name, c->path_hash, suffixed);
        if (strcmp(suffixed, c->name) == 0 || name_taken(t, i, live, suffixed))
            rc = tgt_error_set(err, TGT_ERR_DATA,
                               "stream \"%s\": property \"%s\" and another property both map to "
                               "column \"%s\" of \"%s\".\"%s\"",
                               stream, c->source_path, c->name, t->schema, t->name);
        else
            memcpy(c->name, suffixed, sizeof(suffixed));
    }
    free(mapped);
    return rc;
}

int tgt_evolve_diff(tgt_driver *d, tgt_table *t, const char *stream, int keep_narrower,
                    tgt_evolve_plan *plan, tgt_error *err)
{
    tgt_live_table live;
    tgt_live_table_init(&live);
    if (d->ops->describe_table(d, t->schema, t->name, &live, err) != 0)
        return -1;
    int rc = 0;
    if (!live.exists) {
        plan->create_table = 1;
        for (size_t i = 0; i < t->n_columns; i++)
            t->columns[i].live_type = t->columns[i].type;
        goto done;
    }
    rc = remap_by_source(t, &live, stream, err);
    if (rc == 0)
        check_keys(t, &live, plan);
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
    for (size_t i = 0; i < plan->n_alter; i++) {
        if (d->ops->alter_column_type(d, t, plan->alter[i], err) != 0)
            return -1;
    }
    return plan->move_key ? move_key(d, t, plan, stream, err) : 0;
}

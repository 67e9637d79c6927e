/*
 * pg_merge_partial.c - the merge of a keyed batch whose records omit
 * properties (a CDC delete that carries only the key and _sdc_deleted_at,
 * a tap that sends only the changed columns).  An absent column keeps the
 * stored value; within the batch, per key and column, the newest record
 * that carried the column wins.  Each staged row says which columns it
 * carries in its presence mask (driver.h).  One statement:
 *
 *   WITH n AS (                  -- the batch combined: one row per key
 *     SELECT <keys>, (array_agg(x.c) FILTER (WHERE x.seq = x."target-pg newest 2"))[1] AS c,
 *            max(x."target-pg newest 2") AS "target-pg newest 2", ...
 *     FROM (SELECT s.*, max(s.seq) FILTER (WHERE <s carries column 2>)
 *                       OVER k AS "target-pg newest 2", ...
 *           FROM pg_temp.<stage> AS s WINDOW k AS (PARTITION BY <keys>)) AS x
 *     GROUP BY <keys>),
 *   u AS (UPDATE <t> AS t SET c = CASE WHEN n."target-pg newest 2" IS NOT NULL THEN n.c ELSE t.c
 * END FROM n WHERE <keys match> AND <a carried compared column differs> RETURNING 1), i AS (INSERT
 * INTO <t> AS t (<cols>) SELECT <cols> FROM n ON CONFLICT (<keys>) DO NOTHING RETURNING 1) SELECT
 * (SELECT count(*) FROM u) + (SELECT count(*) FROM i)
 *
 * "target-pg newest <i>" is, per key, the sequence of the newest staged row
 * that carries column i (1-based position in the table model), NULL when
 * none does.  Why this shape:
 * - INSERT ... ON CONFLICT DO UPDATE cannot keep the stored value of an
 *   absent column: EXCLUDED holds only the table's columns, not the mask.
 *   So keys that exist are UPDATEd (which sees the current row, also one
 *   another session changed meanwhile) and the others INSERTed; a key that
 *   another session inserts meanwhile is left to it, as if it came later.
 * - All windows share one PARTITION BY, so the stage is sorted once, and
 *   each aggregate then keeps exactly one row: no sort per key and column.
 * - array_agg over an array-typed column builds a 2-D array, so a column
 *   of a type outside the lattice (arrays among them) is picked as a whole
 *   stage row, whose field is then taken.
 * - The deletion mark is always carried (record.c), so with hard_delete n
 *   holds the newest record's mark: marked keys are deleted (a fourth CTE),
 *   not upserted.  A deletion inside the batch also ends what came before
 *   it: the stage is read through one more window, "target-pg deleted" (the
 *   key's newest deletion), only later records carry columns, and the
 *   stored row no longer supplies absent ones (they become NULL).
 * A batch of complete records keeps the cheaper DISTINCT ON form (pg_merge.c).
 */
#include "pg_internal.h"

#include <stdio.h>

/* Columns of n beside the table's own; no normalised name has a space. */
#define NEWEST_PREFIX "target-pg newest "
#define WHOLE_ROW "target-pg row"
#define DELETED "target-pg deleted" /* hard_delete: the key's newest deletion */

/* A column the merge combines: it exists and is not a key. */
static int is_combined(const tgt_table *t, size_t i)
{
    return t->columns[i].exists && !pg_merge_is_key(t, i);
}

static int picked_as_row(const tgt_column *c)
{
    return c->live_type.kind == TGT_T_OTHER;
}

/* prefix + "target-pg newest <i+1>", quoted. */
static void append_newest(pg_driver *d, tgt_sbuf *sb, const char *prefix, size_t i)
{
    char name[sizeof(NEWEST_PREFIX) + 24];
    snprintf(name, sizeof(name), NEWEST_PREFIX "%zu", i + 1);
    tgt_sbuf_append_str(sb, prefix);
    pg_sql_ident(d, sb, name);
}

static void append_column(pg_driver *d, tgt_sbuf *sb, const char *prefix, const char *name)
{
    tgt_sbuf_append_str(sb, prefix);
    pg_sql_ident(d, sb, name);
}

/* <prefix>k1, <prefix>k2, ... */
static void append_keys(pg_driver *d, tgt_sbuf *sb, const tgt_table *t, const char *prefix)
{
    for (size_t k = 0; k < t->n_keys; k++) {
        if (k > 0)
            tgt_sbuf_append_str(sb, ", ");
        append_column(d, sb, prefix, t->columns[t->key_columns[k]].name);
    }
}

/* <prefix>k1 = n.k1 AND ... over the key columns. */
static void append_key_match(pg_driver *d, tgt_sbuf *sb, const tgt_table *t, const char *prefix)
{
    for (size_t k = 0; k < t->n_keys; k++) {
        const char *key = t->columns[t->key_columns[k]].name;
        if (k > 0)
            tgt_sbuf_append_str(sb, " AND ");
        append_column(d, sb, prefix, key);
        append_column(d, sb, " = n.", key);
    }
}

/* The stage as s: its rows, the whole row when a column is picked as one
 * and, with hard_delete, per key the sequence of the newest deletion. */
static void append_stage(pg_driver *d, tgt_sbuf *sb, const tgt_table *t, const pg_table_cache *tc,
                         int whole_row)
{
    tgt_sbuf_append_str(sb, "(SELECT st.*");
    if (whole_row)
        append_column(d, sb, ", st AS ", WHOLE_ROW);
    if (pg_merge_deletes_marked(t)) {
        append_column(d, sb, ", max(st.", PG_SEQ_COLUMN);
        append_column(d, sb, ") FILTER (WHERE st.", t->columns[t->deleted_at_column].name);
        append_column(d, sb, " IS NOT NULL) OVER k AS ", DELETED);
    }
    tgt_sbuf_append_str(sb, " FROM pg_temp.");
    pg_sql_ident(d, sb, tc->stage);
    tgt_sbuf_append_str(sb, " AS st");
    if (pg_merge_deletes_marked(t)) {
        tgt_sbuf_append_str(sb, " WINDOW k AS (PARTITION BY ");
        append_keys(d, sb, t, "st.");
        tgt_sbuf_append_char(sb, ')');
    }
    tgt_sbuf_append_str(sb, ") AS s");
}

/* The stage with, per combined column, the newest carrier of its key.
 * After a deletion in the batch (hard_delete) only later records carry
 * columns: the row they make starts empty.  The deletion's own mark counts,
 * so a key whose newest record is a deletion keeps the mark and goes. */
static void append_carriers(pg_driver *d, tgt_sbuf *sb, const tgt_table *t,
                            const pg_table_cache *tc, int whole_row)
{
    tgt_sbuf_append_str(sb, "(SELECT s.*");
    for (size_t i = 0; i < t->n_columns; i++) {
        if (!is_combined(t, i))
            continue;
        append_column(d, sb, ", max(s.", PG_SEQ_COLUMN);
        append_column(d, sb, ") FILTER (WHERE substr(s.", PG_PRESENT_COLUMN);
        tgt_sbuf_printf(sb, ", %zu, 1) IS DISTINCT FROM '0'", i + 1);
        if (pg_merge_deletes_marked(t)) {
            append_column(d, sb, " AND (s.", DELETED);
            append_column(d, sb, " IS NULL OR s.", PG_SEQ_COLUMN);
            tgt_sbuf_append_str(sb, (long)i == t->deleted_at_column ? " >= s." : " > s.");
            pg_sql_ident(d, sb, DELETED);
            tgt_sbuf_append_char(sb, ')');
        }
        tgt_sbuf_append_str(sb, ") OVER k AS ");
        append_newest(d, sb, "", i);
    }
    tgt_sbuf_append_str(sb, " FROM ");
    append_stage(d, sb, t, tc, whole_row);
    tgt_sbuf_append_str(sb, " WINDOW k AS (PARTITION BY ");
    append_keys(d, sb, t, "s.");
    tgt_sbuf_append_str(sb, ")) AS x");
}

/* Column i's value in its newest carrier, the one row of the key that
 * passes the filter. */
static void append_pick(pg_driver *d, tgt_sbuf *sb, const tgt_column *c, size_t i)
{
    if (picked_as_row(c))
        append_column(d, sb, "((array_agg(x.", WHOLE_ROW);
    else
        append_column(d, sb, "(array_agg(x.", c->name);
    append_column(d, sb, ") FILTER (WHERE x.", PG_SEQ_COLUMN);
    append_newest(d, sb, " = x.", i);
    tgt_sbuf_append_str(sb, "))[1]");
    if (picked_as_row(c))
        append_column(d, sb, ").", c->name);
}

/* n: one row per key, each combined column from its newest carrier. */
static void append_combined(pg_driver *d, tgt_sbuf *sb, const tgt_table *t,
                            const pg_table_cache *tc)
{
    int whole_row = 0;
    for (size_t i = 0; i < t->n_columns; i++)
        whole_row |= is_combined(t, i) && picked_as_row(&t->columns[i]);
    tgt_sbuf_append_str(sb, "n AS (SELECT ");
    append_keys(d, sb, t, "x.");
    for (size_t i = 0; i < t->n_columns; i++) {
        const tgt_column *c = &t->columns[i];
        if (!is_combined(t, i))
            continue;
        tgt_sbuf_append_str(sb, ", ");
        append_pick(d, sb, c, i);
        append_column(d, sb, " AS ", c->name);
        append_newest(d, sb, ", max(x.", i);
        tgt_sbuf_append_str(sb, ") AS ");
        append_newest(d, sb, "", i);
    }
    if (pg_merge_deletes_marked(t)) {
        append_column(d, sb, ", max(x.", DELETED);
        append_column(d, sb, ") AS ", DELETED);
    }
    tgt_sbuf_append_str(sb, " FROM ");
    append_carriers(d, sb, t, tc, whole_row);
    tgt_sbuf_append_str(sb, " GROUP BY ");
    append_keys(d, sb, t, "x.");
    tgt_sbuf_append_char(sb, ')');
}

/* " AND n.<mark> IS [NOT] NULL" with hard_delete, else nothing. */
static void append_mark_test(pg_driver *d, tgt_sbuf *sb, const tgt_table *t, const char *test)
{
    if (!pg_merge_deletes_marked(t))
        return;
    append_column(d, sb, " AND n.", t->columns[t->deleted_at_column].name);
    tgt_sbuf_append_str(sb, test);
}

/* Some compared column that a record of the key carried differs. */
static void append_changed(pg_driver *d, tgt_sbuf *sb, const tgt_table *t)
{
    int any = pg_merge_deletes_marked(t);
    tgt_sbuf_append_char(sb, '(');
    if (any) {
        /* deleted and made again in the batch: rewritten whole */
        append_column(d, sb, "n.", DELETED);
        tgt_sbuf_append_str(sb, " IS NOT NULL");
    }
    /* cheapest tests first: OR stops at the first true one */
    for (int cost = 0; cost <= 3; cost++) {
        for (size_t i = 0; i < t->n_columns; i++) {
            const tgt_column *c = &t->columns[i];
            if (!is_combined(t, i) || !TGT_COLUMN_IS_COMPARED(c) ||
                pg_merge_compare_cost(c) != cost)
                continue;
            tgt_sbuf_append_str(sb, any ? " OR (" : "(");
            any = 1;
            append_newest(d, sb, "n.", i);
            tgt_sbuf_append_str(sb, " IS NOT NULL AND ");
            pg_merge_append_differs(d, sb, c, "t.", "n.");
            tgt_sbuf_append_char(sb, ')');
        }
    }
    /* nothing compared (only the receive time beside the key): as DO NOTHING */
    tgt_sbuf_append_str(sb, any ? ")" : "false)");
}

/* u: the keys that exist, absent columns kept. */
static void append_update(pg_driver *d, tgt_sbuf *sb, const tgt_table *t)
{
    tgt_sbuf_append_str(sb, "u AS (UPDATE ");
    pg_sql_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_str(sb, " AS t SET ");
    int first = 1;
    for (size_t i = 0; i < t->n_columns; i++) {
        const char *name = t->columns[i].name;
        if (!is_combined(t, i))
            continue;
        if (!first)
            tgt_sbuf_append_str(sb, ", ");
        first = 0;
        pg_sql_ident(d, sb, name);
        append_newest(d, sb, " = CASE WHEN n.", i);
        append_column(d, sb, " IS NOT NULL THEN n.", name);
        /* absent: the stored value, unless the batch deleted the row */
        if (pg_merge_deletes_marked(t)) {
            append_column(d, sb, " WHEN n.", DELETED);
            append_column(d, sb, " IS NULL THEN t.", name);
        } else {
            append_column(d, sb, " ELSE t.", name);
        }
        tgt_sbuf_append_str(sb, " END");
    }
    tgt_sbuf_append_str(sb, " FROM n WHERE ");
    append_key_match(d, sb, t, "t.");
    append_mark_test(d, sb, t, " IS NULL");
    tgt_sbuf_append_str(sb, " AND ");
    append_changed(d, sb, t);
    tgt_sbuf_append_str(sb, " RETURNING 1)");
}

/* i: the keys that do not exist yet (absent columns NULL). */
static void append_insert(pg_driver *d, tgt_sbuf *sb, const tgt_table *t)
{
    tgt_sbuf_append_str(sb, "i AS (INSERT INTO ");
    pg_sql_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_str(sb, " AS t (");
    pg_sql_columns(d, sb, t, "");
    tgt_sbuf_append_str(sb, ") SELECT ");
    pg_sql_columns(d, sb, t, "n.");
    tgt_sbuf_append_str(sb, " FROM n WHERE true");
    append_mark_test(d, sb, t, " IS NULL");
    tgt_sbuf_append_str(sb, " ON CONFLICT (");
    pg_sql_key_columns(d, sb, t);
    tgt_sbuf_append_str(sb, ") DO NOTHING RETURNING 1)");
}

void pg_merge_build_partial(pg_driver *d, tgt_sbuf *sb, const tgt_table *t,
                            const pg_table_cache *tc)
{
    tgt_sbuf_append_str(sb, "WITH ");
    append_combined(d, sb, t, tc);
    tgt_sbuf_append_str(sb, ", ");
    append_update(d, sb, t);
    tgt_sbuf_append_str(sb, ", ");
    append_insert(d, sb, t);
    if (pg_merge_deletes_marked(t)) {
        /* hard_delete: a key whose newest record is a deletion goes */
        tgt_sbuf_append_str(sb, ", d AS (DELETE FROM ");
        pg_sql_qualified(d, sb, t->schema, t->name);
        tgt_sbuf_append_str(sb, " AS t USING n WHERE ");
        append_key_match(d, sb, t, "t.");
        append_mark_test(d, sb, t, " IS NOT NULL");
        tgt_sbuf_append_char(sb, ')');
    }
    tgt_sbuf_append_str(sb, " SELECT (SELECT count(*) FROM u) + (SELECT count(*) FROM i)");
}

/*
 * odbc_postgres_merge.c - the PostgreSQL dialect's staging tables, merge,
 * merge locks and ACTIVATE_VERSION (the rest of the dialect is
 * odbc_postgres.c).
 *
 *   - staging tables are temporary, ON COMMIT DROP, made from the live
 *     table's own column types (CREATE TABLE AS ... WITH NO DATA) plus the
 *     sequence and the presence mask, so every staged value is already of
 *     its column's type;
 *   - a batch of complete rows: DISTINCT ON (keys) newest first, then
 *     INSERT ... ON CONFLICT DO UPDATE WHERE the compared data differs (the
 *     libpq driver's pg_merge.c); a stage holding partial rows is combined
 *     per key and column (array_agg of the carried values, newest first)
 *     and applied by UPDATE + INSERT;
 *   - counts come from result rows (WITH ... RETURNING, count(*)): psqlODBC
 *     reports the row count of a multi-statement string's last statement.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "odbc_internal.h"
#include "odbc_postgres.h"

#define STAGE_PREFIX "tgt_stage_"

/* ---- staging ------------------------------------------------------------------- */

/* "tgt_stage_" + 8 hex digits of FNV-1a over schema 0x1F name: unique per
 * table among the session's temporary tables, and never a long name. */
static void stage_ident(const tgt_table *t, char out[32])
{
    unsigned long h = 2166136261UL;
    for (const char *p = t->schema; *p != '\0'; p++)
        h = ((h ^ (unsigned char)*p) * 16777619UL) & 0xffffffffUL;
    h = ((h ^ 0x1FUL) * 16777619UL) & 0xffffffffUL;
    for (const char *p = t->name; *p != '\0'; p++)
        h = ((h ^ (unsigned char)*p) * 16777619UL) & 0xffffffffUL;
    snprintf(out, 32, STAGE_PREFIX "%08lx", h);
}

void odbc_pg_stage_name(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t)
{
    char name[32];
    stage_ident(t, name);
    tgt_sbuf_append_str(sb, "pg_temp.");
    odbc_sql_ident(d, sb, name);
}

/* The stage takes the live table's own column types (CREATE TABLE AS ...
 * WITH NO DATA copies them, without constraints) plus the sequence and the
 * presence mask; it goes with the transaction (ON COMMIT DROP). */
int odbc_pg_prepare_stage(odbc_driver *d, const tgt_table *t, tgt_error *err)
{
    odbc_stage *s = odbc_stage_get(d, t, err);
    if (s == NULL)
        return -1;
    size_t ncols = odbc_existing_columns(t);
    if (s->ready && s->shape == t->shape_version && s->n_columns == ncols)
        return 0;
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "DROP TABLE IF EXISTS ");
    odbc_pg_stage_name(d, sb, t);
    tgt_sbuf_append_str(sb, "; CREATE TEMPORARY TABLE ");
    odbc_pg_stage_name(d, sb, t);
    tgt_sbuf_append_str(sb, " ON COMMIT DROP AS SELECT ");
    odbc_sql_columns(d, sb, t, "");
    tgt_sbuf_append_str(sb, " FROM ");
    odbc_pg_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_str(sb, " WITH NO DATA; ALTER TABLE ");
    odbc_pg_stage_name(d, sb, t);
    tgt_sbuf_append_str(sb, " ADD COLUMN ");
    odbc_sql_ident(d, sb, ODBC_SEQ_COLUMN);
    tgt_sbuf_append_str(sb, " bigint, ADD COLUMN ");
    odbc_sql_ident(d, sb, ODBC_PRESENT_COLUMN);
    tgt_sbuf_append_str(sb, " text");
    if (odbc_sql_check(sb, err) < 0 ||
        odbc_exec(d, tgt_sbuf_str(sb), NULL, err,
                  "while creating the staging table of \"%s\".\"%s\"", t->schema, t->name) != 0)
        return -1;
    s->ready = 1;
    s->shape = t->shape_version;
    s->n_columns = ncols;
    return 0;
}

/* The stages are ON COMMIT DROP, and a rollback takes them too. */
void odbc_pg_end_transaction(odbc_driver *d, int committed)
{
    (void)committed;
    odbc_stage_forget_all(d);
}

/* ---- merge ----------------------------------------------------------------------- */

static int has_kind(const tgt_column *c, tgt_type_kind kind)
{
    return c->type.kind == kind || c->live_type.kind == kind;
}

/* A compared column as pg_merge.c compares it: json/jsonb and types outside
 * the lattice as text, numeric with its scale (1.0 and 1.00 are equal
 * numbers but different written digits). */
static void append_compared(odbc_driver *d, tgt_sbuf *sb, const tgt_column *c, const char *prefix)
{
    tgt_sbuf_append_str(sb, prefix);
    odbc_sql_ident(d, sb, c->name);
    if (has_kind(c, TGT_T_JSON) || has_kind(c, TGT_T_JSONB) || has_kind(c, TGT_T_OTHER)) {
        tgt_sbuf_append_str(sb, "::text");
        return;
    }
    if (c->live_type.kind == TGT_T_NUMERIC) {
        tgt_sbuf_append_str(sb, ", scale(");
        tgt_sbuf_append_str(sb, prefix);
        odbc_sql_ident(d, sb, c->name);
        tgt_sbuf_append_char(sb, ')');
    }
}

/* Data columns the merge compares (pg_merge.c: without one there is
 * nothing to update, DO NOTHING). */
static size_t n_compared(const tgt_table *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n_columns; i++)
        n += odbc_is_compared(t, i);
    return n;
}

/* ROW(<compared data columns>) with prefix; returns how many. */
static size_t append_data_row(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, const char *prefix)
{
    size_t n = 0;
    tgt_sbuf_append_str(sb, "ROW(");
    for (size_t i = 0; i < t->n_columns; i++) {
        if (!odbc_is_compared(t, i))
            continue;
        if (n++ > 0)
            tgt_sbuf_append_str(sb, ", ");
        append_compared(d, sb, &t->columns[i], prefix);
    }
    tgt_sbuf_append_char(sb, ')');
    return n;
}

/* "(SELECT DISTINCT ON (<keys>) <cols> FROM <stage> ORDER BY <keys>, seq
 * DESC) AS n": the newest staged row per key. */
static void append_newest(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t)
{
    tgt_sbuf_append_str(sb, "(SELECT DISTINCT ON (");
    odbc_sql_key_columns(d, sb, t, "");
    tgt_sbuf_append_str(sb, ") ");
    odbc_sql_columns(d, sb, t, "");
    tgt_sbuf_append_str(sb, " FROM ");
    odbc_pg_stage_name(d, sb, t);
    tgt_sbuf_append_str(sb, " ORDER BY ");
    odbc_sql_key_columns(d, sb, t, "");
    tgt_sbuf_append_str(sb, ", ");
    odbc_sql_ident(d, sb, ODBC_SEQ_COLUMN);
    tgt_sbuf_append_str(sb, " DESC) AS n");
}

/* The merge of complete rows, counted:
 *   WITH i AS (INSERT ... SELECT <cols> FROM <newest> [WHERE n.<mark> IS NULL]
 *              ON CONFLICT (<keys>) DO UPDATE SET ... WHERE <data differs> RETURNING 1)
 *   [, x AS (DELETE FROM t USING <newest> WHERE n.<mark> IS NOT NULL AND <keys>)]
 *   SELECT count(*) FROM i */
static void build_merge(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t)
{
    tgt_sbuf_append_str(sb, "WITH i AS (INSERT INTO ");
    odbc_pg_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_str(sb, " AS t (");
    odbc_sql_columns(d, sb, t, "");
    tgt_sbuf_append_str(sb, ") SELECT ");
    odbc_sql_columns(d, sb, t, "");
    tgt_sbuf_append_str(sb, " FROM ");
    append_newest(d, sb, t);
    if (odbc_deletes_marked(t)) {
        tgt_sbuf_append_str(sb, " WHERE n.");
        odbc_sql_ident(d, sb, t->columns[t->deleted_at_column].name);
        tgt_sbuf_append_str(sb, " IS NULL");
    }
    tgt_sbuf_append_str(sb, " ON CONFLICT (");
    odbc_sql_key_columns(d, sb, t, "");
    tgt_sbuf_append_str(sb, ") DO ");
    if (n_compared(t) == 0) {
        tgt_sbuf_append_str(sb, "NOTHING");
    } else {
        tgt_sbuf_append_str(sb, "UPDATE SET ");
        size_t n = 0;
        for (size_t i = 0; i < t->n_columns; i++) {
            if (!odbc_is_data(t, i))
                continue;
            tgt_sbuf_append_str(sb, n++ > 0 ? ", " : "");
            odbc_sql_ident(d, sb, t->columns[i].name);
            tgt_sbuf_append_str(sb, " = EXCLUDED.");
            odbc_sql_ident(d, sb, t->columns[i].name);
        }
        tgt_sbuf_append_str(sb, " WHERE ");
        append_data_row(d, sb, t, "t.");
        tgt_sbuf_append_str(sb, " IS DISTINCT FROM ");
        append_data_row(d, sb, t, "EXCLUDED.");
    }
    tgt_sbuf_append_str(sb, " RETURNING 1)");
    if (odbc_deletes_marked(t)) {
        tgt_sbuf_append_str(sb, ", x AS (DELETE FROM ");
        odbc_pg_qualified(d, sb, t->schema, t->name);
        tgt_sbuf_append_str(sb, " AS t USING ");
        append_newest(d, sb, t);
        tgt_sbuf_append_str(sb, " WHERE n.");
        odbc_sql_ident(d, sb, t->columns[t->deleted_at_column].name);
        tgt_sbuf_append_str(sb, " IS NOT NULL AND ");
        odbc_sql_key_match(d, sb, t, "t.", "n.");
        tgt_sbuf_append_str(sb, " RETURNING 1)");
    }
    tgt_sbuf_append_str(sb, " SELECT count(*) FROM i");
}

#define DELETED "\"target-pg deleted\"" /* hard_delete: the key's newest deletion */

/* "<stage row> carries column i": the mask is NULL (every column carried)
 * or has '1' at column i's position (1-based over the table's columns);
 * with hard_delete only the key's newest deletion and later rows count. */
static void append_carried(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, size_t i)
{
    tgt_sbuf_append_char(sb, '(');
    odbc_sql_carries(d, sb, "s.", i);
    if (odbc_deletes_marked(t)) {
        tgt_sbuf_append_str(sb, " AND (s." DELETED " IS NULL OR s.");
        odbc_sql_ident(d, sb, ODBC_SEQ_COLUMN);
        tgt_sbuf_append_str(sb, " >= s." DELETED ")");
    }
    tgt_sbuf_append_char(sb, ')');
}

/* "(SELECT s.*, <the key's newest deletion> FROM <stage> s) AS s": the
 * window is only needed with hard_delete. */
static void append_stage_rows(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t)
{
    if (!odbc_deletes_marked(t)) {
        odbc_pg_stage_name(d, sb, t);
        tgt_sbuf_append_str(sb, " AS s");
        return;
    }
    tgt_sbuf_append_str(sb, "(SELECT s.*, max(s.");
    odbc_sql_ident(d, sb, ODBC_SEQ_COLUMN);
    tgt_sbuf_append_str(sb, ") FILTER (WHERE s.");
    odbc_sql_ident(d, sb, t->columns[t->deleted_at_column].name);
    tgt_sbuf_append_str(sb, " IS NOT NULL) OVER (PARTITION BY ");
    odbc_sql_key_columns(d, sb, t, "s.");
    tgt_sbuf_append_str(sb, ") AS " DELETED " FROM ");
    odbc_pg_stage_name(d, sb, t);
    tgt_sbuf_append_str(sb, " AS s) AS s");
}

/* n: the batch combined, one row per key: per column the newest carried
 * value and whether any row carried it; with hard_delete the key's newest
 * deletion. */
static void append_combined(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t)
{
    tgt_sbuf_append_str(sb, "n AS (SELECT ");
    odbc_sql_key_columns(d, sb, t, "s.");
    for (size_t i = 0; i < t->n_columns; i++) {
        if (!odbc_is_data(t, i))
            continue;
        tgt_sbuf_append_str(sb, ", (array_agg(s.");
        odbc_sql_ident(d, sb, t->columns[i].name);
        tgt_sbuf_append_str(sb, " ORDER BY s.");
        odbc_sql_ident(d, sb, ODBC_SEQ_COLUMN);
        tgt_sbuf_append_str(sb, " DESC) FILTER (WHERE ");
        append_carried(d, sb, t, i);
        tgt_sbuf_append_str(sb, "))[1] AS ");
        odbc_sql_ident(d, sb, t->columns[i].name);
        tgt_sbuf_append_str(sb, ", bool_or");
        append_carried(d, sb, t, i);
        tgt_sbuf_printf(sb, " AS \"target-pg has %zu\"", i + 1);
    }
    if (odbc_deletes_marked(t))
        tgt_sbuf_append_str(sb, ", max(s." DELETED ") AS " DELETED);
    tgt_sbuf_append_str(sb, " FROM ");
    append_stage_rows(d, sb, t);
    tgt_sbuf_append_str(sb, " GROUP BY ");
    odbc_sql_key_columns(d, sb, t, "s.");
    tgt_sbuf_append_char(sb, ')');
}

/* u: keys that exist are updated, a column no record carried keeps the
 * stored value (unless a deletion in the batch ended the stored row: then
 * NULL), and only rows whose carried data changed are touched. */
static void append_update(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t)
{
    tgt_sbuf_append_str(sb, "u AS (UPDATE ");
    odbc_pg_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_str(sb, " AS t SET ");
    size_t n = 0;
    for (size_t i = 0; i < t->n_columns; i++) {
        if (!odbc_is_data(t, i))
            continue;
        tgt_sbuf_append_str(sb, n++ > 0 ? ", " : "");
        odbc_sql_ident(d, sb, t->columns[i].name);
        tgt_sbuf_printf(sb, " = CASE WHEN n.\"target-pg has %zu\" THEN n.", i + 1);
        odbc_sql_ident(d, sb, t->columns[i].name);
        if (odbc_deletes_marked(t))
            tgt_sbuf_append_str(sb, " WHEN n." DELETED " IS NOT NULL THEN NULL");
        tgt_sbuf_append_str(sb, " ELSE t.");
        odbc_sql_ident(d, sb, t->columns[i].name);
        tgt_sbuf_append_str(sb, " END");
    }
    tgt_sbuf_append_str(sb, " FROM n WHERE ");
    odbc_sql_key_match(d, sb, t, "t.", "n.");
    tgt_sbuf_append_str(sb,
                        odbc_deletes_marked(t) ? " AND (n." DELETED " IS NOT NULL" : " AND (false");
    for (size_t i = 0; i < t->n_columns; i++) {
        if (!odbc_is_compared(t, i))
            continue;
        tgt_sbuf_printf(sb, " OR (n.\"target-pg has %zu\" AND ROW(", i + 1);
        append_compared(d, sb, &t->columns[i], "t.");
        tgt_sbuf_append_str(sb, ") IS DISTINCT FROM ROW(");
        append_compared(d, sb, &t->columns[i], "n.");
        tgt_sbuf_append_str(sb, "))");
    }
    tgt_sbuf_append_char(sb, ')');
    odbc_sql_not_deleted(d, sb, t, "n.");
    tgt_sbuf_append_str(sb, " RETURNING 1)");
}

/* The merge of a stage with partial rows, counted:
 *   WITH n AS (<the batch combined per key>), u AS (<update existing keys>),
 *   i AS (INSERT INTO t (<cols>) SELECT <cols> FROM n WHERE NOT EXISTS (<key in t>)
 *         ON CONFLICT DO NOTHING RETURNING 1)
 *   [, x AS (DELETE FROM t USING n WHERE n.<mark> IS NOT NULL AND <keys>)]
 *   SELECT (SELECT count(*) FROM u) + (SELECT count(*) FROM i)
 * INSERT ... ON CONFLICT DO UPDATE cannot keep the stored value of an
 * absent column (EXCLUDED has no mask), hence UPDATE + INSERT; a key another
 * session inserts meanwhile is left to it, as if it came later.  With
 * hard_delete the mark (always carried) of the key's newest record decides:
 * marked keys are deleted, not upserted, and a deletion inside the batch
 * ends what came before it (only later rows carry columns, the stored row
 * no longer supplies absent ones).  The libpq driver's pg_merge_partial.c
 * does the same with windows over the mask. */
static void build_merge_partial(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t)
{
    tgt_sbuf_append_str(sb, "WITH ");
    append_combined(d, sb, t);
    tgt_sbuf_append_str(sb, ", ");
    append_update(d, sb, t);
    tgt_sbuf_append_str(sb, ", i AS (INSERT INTO ");
    odbc_pg_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_str(sb, " AS t (");
    odbc_sql_columns(d, sb, t, "");
    tgt_sbuf_append_str(sb, ") SELECT ");
    odbc_sql_columns(d, sb, t, "n.");
    tgt_sbuf_append_str(sb, " FROM n WHERE NOT EXISTS (SELECT 1 FROM ");
    odbc_pg_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_str(sb, " AS t WHERE ");
    odbc_sql_key_match(d, sb, t, "t.", "n.");
    tgt_sbuf_append_char(sb, ')');
    odbc_sql_not_deleted(d, sb, t, "n.");
    tgt_sbuf_append_str(sb, " ON CONFLICT DO NOTHING RETURNING 1)");
    if (odbc_deletes_marked(t)) {
        tgt_sbuf_append_str(sb, ", x AS (DELETE FROM ");
        odbc_pg_qualified(d, sb, t->schema, t->name);
        tgt_sbuf_append_str(sb, " AS t USING n WHERE n.");
        odbc_sql_ident(d, sb, t->columns[t->deleted_at_column].name);
        tgt_sbuf_append_str(sb, " IS NOT NULL AND ");
        odbc_sql_key_match(d, sb, t, "t.", "n.");
        tgt_sbuf_append_str(sb, " RETURNING 1)");
    }
    tgt_sbuf_append_str(sb, " SELECT (SELECT count(*) FROM u) + (SELECT count(*) FROM i)");
}

int odbc_pg_merge(odbc_driver *d, const tgt_table *t, int partial, unsigned long *changed,
                  tgt_error *err)
{
    *changed = 0;
    odbc_stage *s = odbc_stage_find(d, t->schema, t->name);
    /* no stage of this shape: nothing was staged since the last commit */
    if (s == NULL || !s->ready || s->shape != t->shape_version || odbc_existing_columns(t) == 0)
        return 0;
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    if (t->n_keys == 0) {
        /* not a keyed table: the staged rows are appended */
        tgt_sbuf_append_str(sb, "WITH i AS (");
        odbc_sql_insert_select(d, sb, t, "");
        odbc_pg_stage_name(d, sb, t);
        tgt_sbuf_append_str(sb, " RETURNING 1) SELECT count(*) FROM i");
    } else if (partial) {
        build_merge_partial(d, sb, t);
    } else {
        build_merge(d, sb, t);
    }
    /* the stage is emptied for a later merge in the same transaction */
    tgt_sbuf_append_str(sb, "; TRUNCATE ");
    odbc_pg_stage_name(d, sb, t);
    if (odbc_sql_check(sb, err) < 0)
        return -1;
    char where[TGT_ERROR_WHERE_MAX];
    snprintf(where, sizeof(where), "while merging staged rows into \"%s\".\"%s\"", t->schema,
             t->name);
    return odbc_pg_query_count(d, tgt_sbuf_str(sb), NULL, 0, changed, err, where);
}

static int by_qualified_name(const void *a, const void *b)
{
    const tgt_table *x = *(const tgt_table *const *)a;
    const tgt_table *y = *(const tgt_table *const *)b;
    int c = strcmp(x->schema, y->schema);
    return c != 0 ? c : strcmp(x->name, y->name);
}

/* As pg_merge.c: SHARE UPDATE EXCLUSIVE conflicts with itself but not with
 * writers, taken in name order whatever the stream order. */
int odbc_pg_lock_for_merge(odbc_driver *d, const tgt_table **tables, size_t n, tgt_error *err)
{
    if (n == 0)
        return 0;
    qsort(tables, n, sizeof(*tables), by_qualified_name);
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "LOCK TABLE ");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            tgt_sbuf_append_str(sb, ", ");
        odbc_pg_qualified(d, sb, tables[i]->schema, tables[i]->name);
    }
    tgt_sbuf_append_str(sb, " IN SHARE UPDATE EXCLUSIVE MODE");
    if (odbc_sql_check(sb, err) < 0)
        return -1;
    return odbc_exec(d, tgt_sbuf_str(sb), NULL, err, "while locking %zu table(s) for the merge", n);
}

/* pg_version.c, counted through RETURNING: rows of older versions (or
 * none) are marked deleted, or deleted when hard. */
int odbc_pg_activate_version(odbc_driver *d, const char *schema, const char *table,
                             const char *version_column, const char *deleted_column,
                             const char *version, int hard, unsigned long *affected, tgt_error *err)
{
    *affected = 0;
    const odbc_version_sql v = {.schema = schema,
                                .table = table,
                                .version_column = version_column,
                                .deleted_column = deleted_column,
                                .hard = hard,
                                .now_sql = "pg_catalog.now()",
                                .integer_type = "bigint"};
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "WITH x AS (");
    odbc_sql_activate_version(d, sb, &v);
    tgt_sbuf_append_str(sb, " RETURNING 1) SELECT count(*) FROM x");
    if (odbc_sql_check(sb, err) < 0)
        return -1;
    const char *params[1] = {version};
    char where[TGT_ERROR_WHERE_MAX];
    snprintf(where, sizeof(where), "while activating version %s of \"%s\".\"%s\"", version, schema,
             table);
    return odbc_pg_query_count(d, tgt_sbuf_str(sb), params, 1, affected, err, where);
}

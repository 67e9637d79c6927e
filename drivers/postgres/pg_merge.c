/*
 * pg_merge.c - moving a keyed table's staged rows into the table.
 *
 *   INSERT INTO "s"."t" AS t (<cols>)
 *   SELECT DISTINCT ON (<keys>) <cols> FROM pg_temp."<stage>"
 *   ORDER BY <keys>, "target-pg sequence" DESC
 *   ON CONFLICT (<keys>) DO UPDATE SET <non-key col> = EXCLUDED.<col>, ...
 *   WHERE ROW(t.<data cols>) IS DISTINCT FROM ROW(EXCLUDED.<data cols>)
 *
 * DISTINCT ON keeps only the newest staged row per key (the highest batch
 * sequence), which also keeps ON CONFLICT from touching a row twice.  That
 * sort of the whole stage is most of what the merge costs beyond a plain
 * INSERT ... ON CONFLICT, and most batches repeat no key, so the merge first
 * tries the stage as it is (merge_unsorted: the same statement reading
 * pg_temp."<stage>" AS n directly) inside a savepoint.  A key staged twice
 * then fails it with "ON CONFLICT DO UPDATE command cannot affect row a
 * second time" (21000) as soon as one of its rows was written; the savepoint
 * is rolled back and the sorted form runs, and every later batch of that
 * table in this run is sorted straight away (key_repeats).  When no error
 * comes, at most one staged row per key was written, the last of its key in
 * the scan, and the others were equal to the stored row.  That is the
 * newest one because the stage is scanned in the order it was filled: it is
 * created in the transaction that fills it, so COPY appends every row to a
 * new page (it skips the free space map for such a table) and a temporary
 * table is never scanned from a middle block (no synchronized scans).  With
 * hard_delete, a key whose newest record carries a deletion mark
 * (_sdc_deleted_at) is left out of the INSERT and deleted by a second
 * statement in the same string.  The
 * WHERE leaves rows whose data did not change alone, so they are not counted;
 * the receive-time column is updated with a change but not compared (it
 * always differs).  json and unknown types have no equality operator and are
 * compared as text; numeric and jsonb compare their written digits too
 * (pg_merge_append_differs).  Without a non-key data column there is nothing
 * to update: DO NOTHING.  A stage holding partial rows (records that omit
 * properties) takes the other form of pg_merge_partial.c.  The statements are
 * cached per table shape (pg_cache.c).
 *
 * Called inside the core's transaction at the commit point; the stage goes
 * with that COMMIT (ON COMMIT DROP, pg_copy.c).
 *
 * lock_for_merge first takes SHARE UPDATE EXCLUSIVE on every table about to
 * be merged, in (schema, name) order.  That mode conflicts with itself but
 * not with INSERT/UPDATE/DELETE: two target-pg runs merging into the same
 * tables take turns (the second waits for the first's COMMIT) instead of
 * locking rows in opposite orders and deadlocking, while other writers are
 * not held up.  The merges themselves keep the stream order, so a child
 * table's rows still come after its parent's in one transaction.
 */
#include "pg_internal.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"

/* The savepoint of merge_unsorted. */
#define UNSORTED_SAVEPOINT "tgt_merge_unsorted"

int pg_merge_is_key(const tgt_table *t, size_t col)
{
    for (size_t k = 0; k < t->n_keys; k++) {
        if (t->key_columns[k] == col)
            return 1;
    }
    return 0;
}

static int has_kind(const tgt_column *c, tgt_type_kind kind)
{
    return c->type.kind == kind || c->live_type.kind == kind;
}

/* One side of a comparison: open, the prefixed column, close (e.g.
 * "scale(" ... ")" or "" ... "::text"). */
static void append_side(pg_driver *d, tgt_sbuf *sb, const tgt_column *c, const char *prefix,
                        const char *open, const char *close)
{
    tgt_sbuf_append_str(sb, open);
    tgt_sbuf_append_str(sb, prefix);
    pg_sql_ident(d, sb, c->name);
    tgt_sbuf_append_str(sb, close);
}

/* "<open>L.c<close> IS DISTINCT FROM <open>R.c<close>" */
static void append_distinct(pg_driver *d, tgt_sbuf *sb, const tgt_column *c, const char *left,
                            const char *right, const char *open, const char *close)
{
    append_side(d, sb, c, left, open, close);
    tgt_sbuf_append_str(sb, " IS DISTINCT FROM ");
    append_side(d, sb, c, right, open, close);
}

int pg_merge_compare_cost(const tgt_column *c)
{
    if (has_kind(c, TGT_T_JSON) || has_kind(c, TGT_T_OTHER))
        return 3;
    if (has_kind(c, TGT_T_JSONB))
        return 2;
    if (c->live_type.kind == TGT_T_NUMERIC || c->live_type.kind == TGT_T_TEXT ||
        c->live_type.kind == TGT_T_VARCHAR)
        return 1;
    return 0;
}

void pg_merge_append_differs(pg_driver *d, tgt_sbuf *sb, const tgt_column *c, const char *left,
                             const char *right)
{
    /* numeric and jsonb equality is numeric: 1.0 = 1.00 and {"a":1.0} =
     * {"a":1.00}, yet both keep the digits as written.  A numeric's text is
     * its value with scale() digits after the point, so value and scale
     * together see every written digit without formatting it.  jsonb has no
     * such shortcut: its text decides, but only where its (cheaper) equality
     * says equal, since unequal values never print alike.  json and unknown
     * types may have no equality at all: text only. */
    if (has_kind(c, TGT_T_JSON) || has_kind(c, TGT_T_OTHER)) {
        append_distinct(d, sb, c, left, right, "", "::text");
        return;
    }
    if (has_kind(c, TGT_T_JSONB) || c->live_type.kind == TGT_T_NUMERIC) {
        tgt_sbuf_append_char(sb, '(');
        append_distinct(d, sb, c, left, right, "", "");
        tgt_sbuf_append_str(sb, " OR ");
        if (has_kind(c, TGT_T_JSONB))
            append_distinct(d, sb, c, left, right, "", "::text");
        else
            append_distinct(d, sb, c, left, right, "scale(", ")");
        tgt_sbuf_append_char(sb, ')');
        return;
    }
    append_distinct(d, sb, c, left, right, "", "");
}

/* Appends "(<c1 differs> OR <c2 differs> ...)" over the compared data
 * columns, cheapest tests first: OR stops at the first true one, so a
 * changed row usually costs one comparison, not a formatted jsonb. */
static void append_data_changed(pg_driver *d, tgt_sbuf *sb, const tgt_table *t)
{
    int first = 1;
    tgt_sbuf_append_char(sb, '(');
    for (int cost = 0; cost <= 3; cost++) {
        for (size_t i = 0; i < t->n_columns; i++) {
            const tgt_column *c = &t->columns[i];
            if (!c->exists || pg_merge_is_key(t, i) || !TGT_COLUMN_IS_COMPARED(c) ||
                pg_merge_compare_cost(c) != cost)
                continue;
            if (!first)
                tgt_sbuf_append_str(sb, " OR ");
            first = 0;
            pg_merge_append_differs(d, sb, c, "t.", "EXCLUDED.");
        }
    }
    tgt_sbuf_append_char(sb, ')');
}

int pg_merge_deletes_marked(const tgt_table *t)
{
    return t->hard_delete && t->deleted_at_column >= 0 && t->columns[t->deleted_at_column].exists;
}

/* "(SELECT DISTINCT ON (<keys>) <cols> FROM pg_temp.<stage> ORDER BY <keys>,
 * seq DESC) AS n": the newest staged row per key. */
static void append_newest(pg_driver *d, tgt_sbuf *sb, const tgt_table *t, const pg_table_cache *tc)
{
    tgt_sbuf_append_str(sb, "(SELECT DISTINCT ON (");
    pg_sql_key_columns(d, sb, t);
    tgt_sbuf_append_str(sb, ") ");
    pg_sql_columns(d, sb, t, "");
    tgt_sbuf_append_str(sb, " FROM pg_temp.");
    pg_sql_ident(d, sb, tc->stage);
    tgt_sbuf_append_str(sb, " ORDER BY ");
    pg_sql_key_columns(d, sb, t);
    tgt_sbuf_append_str(sb, ", ");
    pg_sql_ident(d, sb, PG_SEQ_COLUMN);
    tgt_sbuf_append_str(sb, " DESC) AS n");
}

/* DELETE FROM <t> AS t USING <newest> WHERE n.<mark> IS NOT NULL AND t.<k> = n.<k> ... */
static void build_delete(pg_driver *d, tgt_sbuf *sb, const tgt_table *t, const pg_table_cache *tc)
{
    tgt_sbuf_append_str(sb, "DELETE FROM ");
    pg_sql_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_str(sb, " AS t USING ");
    append_newest(d, sb, t, tc);
    tgt_sbuf_append_str(sb, " WHERE n.");
    pg_sql_ident(d, sb, t->columns[t->deleted_at_column].name);
    tgt_sbuf_append_str(sb, " IS NOT NULL");
    for (size_t k = 0; k < t->n_keys; k++) {
        const char *key = t->columns[t->key_columns[k]].name;
        tgt_sbuf_append_str(sb, " AND t.");
        pg_sql_ident(d, sb, key);
        tgt_sbuf_append_str(sb, " = n.");
        pg_sql_ident(d, sb, key);
    }
}

/* The merge statement: with `sorted`, the newest staged row per key;
 * without, every staged row (see merge_unsorted). */
static void build_merge(pg_driver *d, tgt_sbuf *sb, const tgt_table *t, const pg_table_cache *tc,
                        int sorted)
{
    tgt_sbuf_append_str(sb, "INSERT INTO ");
    pg_sql_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_str(sb, " AS t (");
    pg_sql_columns(d, sb, t, "");
    if (t->n_keys == 0) {
        /* not a keyed table: the staged rows are simply appended */
        tgt_sbuf_append_str(sb, ") SELECT ");
        pg_sql_columns(d, sb, t, "");
        tgt_sbuf_append_str(sb, " FROM pg_temp.");
        pg_sql_ident(d, sb, tc->stage);
        return;
    }
    tgt_sbuf_append_str(sb, ") SELECT ");
    pg_sql_columns(d, sb, t, "");
    tgt_sbuf_append_str(sb, " FROM ");
    if (sorted) {
        append_newest(d, sb, t, tc);
    } else {
        tgt_sbuf_append_str(sb, "pg_temp.");
        pg_sql_ident(d, sb, tc->stage);
        tgt_sbuf_append_str(sb, " AS n");
    }
    if (pg_merge_deletes_marked(t)) {
        /* a key whose newest record is a deletion is deleted, not upserted */
        tgt_sbuf_append_str(sb, " WHERE n.");
        pg_sql_ident(d, sb, t->columns[t->deleted_at_column].name);
        tgt_sbuf_append_str(sb, " IS NULL");
    }
    tgt_sbuf_append_str(sb, " ON CONFLICT (");
    pg_sql_key_columns(d, sb, t);
    tgt_sbuf_append_str(sb, ") DO ");

    size_t n_data = 0;
    for (size_t i = 0; i < t->n_columns; i++) {
        const tgt_column *c = &t->columns[i];
        if (c->exists && !pg_merge_is_key(t, i) && TGT_COLUMN_IS_COMPARED(c))
            n_data++;
    }
    if (n_data == 0) {
        tgt_sbuf_append_str(sb, "NOTHING");
        return;
    }
    tgt_sbuf_append_str(sb, "UPDATE SET ");
    int first = 1;
    for (size_t i = 0; i < t->n_columns; i++) {
        const tgt_column *c = &t->columns[i];
        if (!c->exists || pg_merge_is_key(t, i))
            continue;
        if (!first)
            tgt_sbuf_append_str(sb, ", ");
        first = 0;
        pg_sql_ident(d, sb, c->name);
        tgt_sbuf_append_str(sb, " = EXCLUDED.");
        pg_sql_ident(d, sb, c->name);
    }
    tgt_sbuf_append_str(sb, " WHERE ");
    append_data_changed(d, sb, t);
}

/* The cached merge statement for t in form m (PG_MERGE_*), rebuilt when
 * the shape changed. */
static const char *merge_sql(pg_driver *d, const tgt_table *t, pg_table_cache *tc, int m,
                             tgt_error *err)
{
    size_t ncols = pg_existing_columns(t);
    if (tc->merge_sql[m] != NULL && tc->merge_shape[m] == t->shape_version &&
        tc->merge_ncols[m] == ncols)
        return tc->merge_sql[m];
    for (size_t k = 0; k < t->n_keys; k++) {
        if (t->key_columns[k] >= t->n_columns || !t->columns[t->key_columns[k]].exists) {
            tgt_error_set(err, TGT_ERR_INTERNAL, "merge into \"%s\".\"%s\": bad key column",
                          t->schema, t->name);
            return NULL;
        }
    }
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    if (m == PG_MERGE_PARTIAL) {
        pg_merge_build_partial(d, &sb, t, tc);
    } else if (m == PG_MERGE_UNSORTED) {
        /* the savepoint merge_unsorted rolls back to when a key repeats */
        tgt_sbuf_append_str(&sb, "SAVEPOINT " UNSORTED_SAVEPOINT "; ");
        build_merge(d, &sb, t, tc, 0);
    } else {
        build_merge(d, &sb, t, tc, 1);
        if (t->n_keys > 0 && pg_merge_deletes_marked(t)) {
            /* one string, two statements: run as one by the open transaction */
            tgt_sbuf_append_str(&sb, "; ");
            build_delete(d, &sb, t, tc);
        }
    }
    char *sql = pg_sql_take(d, &sb, err);
    if (sql == NULL)
        return NULL;
    free(tc->merge_sql[m]);
    tc->merge_sql[m] = sql;
    tc->merge_shape[m] = t->shape_version;
    tc->merge_ncols[m] = ncols;
    return sql;
}

/* Whether t's merge may try the stage unsorted: a complete-row upsert
 * whose batches have not repeated a key so far.  (With hard_delete the
 * deletion statement needs the newest row per key anyway.) */
static int may_skip_sort(const tgt_table *t, const pg_table_cache *tc, int partial)
{
    return !partial && t->n_keys > 0 && !pg_merge_deletes_marked(t) && !tc->key_repeats;
}

/* The merge without the sort (see the top of the file).  0 merged (changed
 * set), 1 a key repeats (nothing changed, the transaction usable: run the
 * sorted form), -1 error. */
static int merge_unsorted(pg_driver *d, const tgt_table *t, pg_table_cache *tc,
                          unsigned long *changed, tgt_error *err)
{
    const char *sql = merge_sql(d, t, tc, PG_MERGE_UNSORTED, err);
    if (sql == NULL)
        return -1;
    tgt_error failed;
    tgt_error_init(&failed);
    PGresult *res = pg_exec(d, sql, PGRES_COMMAND_OK, &failed,
                            "while merging staged rows into \"%s\".\"%s\"", t->schema, t->name);
    if (res != NULL) {
        *changed = strtoul(PQcmdTuples(res), NULL, 10);
        PQclear(res);
        return pg_command(d, "RELEASE SAVEPOINT " UNSORTED_SAVEPOINT, err,
                          "while merging staged rows into \"%s\".\"%s\"", t->schema, t->name);
    }
    if (failed.connection_lost || strcmp(failed.sqlstate, "21000") != 0)
        return pg_error_forward(err, &failed);
    tgt_log(TGT_LOG_DEBUG, "a key repeats in the batch of \"%s\".\"%s\": merging its newest rows",
            t->schema, t->name);
    tc->key_repeats = 1;
    if (pg_command(d,
                   "ROLLBACK TO SAVEPOINT " UNSORTED_SAVEPOINT
                   "; RELEASE SAVEPOINT " UNSORTED_SAVEPOINT,
                   err, "while merging staged rows into \"%s\".\"%s\"", t->schema, t->name) < 0)
        return -1;
    return 1;
}

int pg_merge(tgt_driver *base, const tgt_table *t, int partial, unsigned long *changed,
             tgt_error *err)
{
    pg_driver *d = (pg_driver *)base;
    *changed = 0;
    if (d->copying != NULL)
        return tgt_error_set(err, TGT_ERR_INTERNAL, "PostgreSQL: merge while a COPY is open");
    pg_table_cache *tc = pg_cache_find(d, t->schema, t->name);
    /* no stage for this shape: nothing was staged since the last commit */
    if (tc == NULL || !tc->stage_ready || tc->stage_shape != t->shape_version)
        return 0;
    if (pg_existing_columns(t) == 0)
        return 0;
    partial = partial && t->n_keys > 0;
    if (may_skip_sort(t, tc, partial)) {
        int r = merge_unsorted(d, t, tc, changed, err);
        if (r <= 0)
            return r;
    }
    const char *sql = merge_sql(d, t, tc, partial ? PG_MERGE_PARTIAL : PG_MERGE_SORTED, err);
    if (sql == NULL)
        return -1;
    /* the partial form counts its changes in a result row */
    PGresult *res = pg_exec(d, sql, partial ? PGRES_TUPLES_OK : PGRES_COMMAND_OK, err,
                            "while merging staged rows into \"%s\".\"%s\"", t->schema, t->name);
    if (res == NULL)
        return -1;
    if (!partial)
        *changed = strtoul(PQcmdTuples(res), NULL, 10);
    else if (PQntuples(res) == 1)
        *changed = strtoul(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return 0;
}

static int by_qualified_name(const void *a, const void *b)
{
    const tgt_table *x = *(const tgt_table *const *)a;
    const tgt_table *y = *(const tgt_table *const *)b;
    int c = strcmp(x->schema, y->schema);
    return c != 0 ? c : strcmp(x->name, y->name);
}

int pg_lock_for_merge(tgt_driver *base, const tgt_table **tables, size_t n, tgt_error *err)
{
    pg_driver *d = (pg_driver *)base;
    if (n == 0)
        return 0;
    /* the same order in every run, whatever order the streams came in */
    qsort(tables, n, sizeof(*tables), by_qualified_name);
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "LOCK TABLE ");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            tgt_sbuf_append_str(sb, ", ");
        pg_sql_qualified(d, sb, tables[i]->schema, tables[i]->name);
    }
    tgt_sbuf_append_str(sb, " IN SHARE UPDATE EXCLUSIVE MODE");
    if (pg_sql_check(d, sb, err) < 0)
        return -1;
    /* the server's error names the table without its schema: name them all
     * (as many as fit) */
    char names[TGT_ERROR_WHERE_MAX - 64];
    size_t used = 0, named = 0;
    for (; named < n; named++) {
        int w = snprintf(names + used, sizeof(names) - used, "%s\"%s\".\"%s\"",
                         named > 0 ? ", " : "", tables[named]->schema, tables[named]->name);
        if (w < 0 || (size_t)w >= sizeof(names) - used - 24)
            break;
        used += (size_t)w;
    }
    names[used] = '\0';
    if (named < n)
        snprintf(names + used, sizeof(names) - used, " and %zu more", n - named);
    return pg_command(d, tgt_sbuf_str(sb), err, "while locking %s for the merge", names);
}

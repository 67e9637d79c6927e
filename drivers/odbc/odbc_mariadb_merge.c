/*
 * odbc_mariadb_merge.c - the MariaDB dialect's writes beyond the bulk
 * INSERT: staging tables, the merge of keyed batches, ACTIVATE_VERSION, the
 * locks that serialise merges, and the overwrite swap.
 *
 * Staging: one TEMPORARY table per target table and session, "target-pg
 * stage <n>" in the target's database (n: its place in the driver's stage
 * cache; a normalised name never holds a space).  Temporary tables are
 * neither committed by DDL nor commit anything themselves, so a stage can
 * be made inside the core's transaction; it is kept across transactions
 * and emptied by each merge (DELETE, which rolls back with the rest).
 *
 * The merge of complete records is one statement:
 *
 *   INSERT INTO <t> (<cols>) SELECT <cols> FROM (SELECT x.*, ROW_NUMBER()
 *     OVER (PARTITION BY <keys> ORDER BY <seq> DESC) AS <rank> FROM <stage> x) n
 *   WHERE n.<rank> = 1
 *   ON DUPLICATE KEY UPDATE <receive times> = IF(<data> <=> VALUES(<data>) AND ...,
 *                                                <receive times>, VALUES(<receive times>)),
 *                           <data> = VALUES(<data>), ...
 *
 * The newest staged row per key wins.  MariaDB evaluates the assignments
 * left to right, each seeing the ones before, so the columns that are not
 * compared (receive times, sequences) come first and keep their stored
 * value when no compared column changes; a row whose values all stay is not
 * written (and not counted).  *changed is MariaDB's count: 1 per inserted
 * row, 2 per updated one.  With hard_delete, keys whose newest record has a
 * deletion mark are deleted first (DELETE ... WHERE (<keys>) IN (...)) and
 * left out of the INSERT.
 *
 * A batch with partial records (absent columns keep their stored value)
 * is first combined into one row per key in a second temporary table: per
 * column the value of the newest row that carried it ("target-pg newest
 * <i>" is that row's sequence, NULL when none did); a deletion inside the
 * batch (hard_delete) ends what came before it, as on PostgreSQL.  Then
 * the marked keys are deleted, the existing keys UPDATEd where a carried
 * compared column changes, and the new keys INSERTed.
 *
 * Locks: lock_for_merge takes one MariaDB user lock (GET_LOCK) per table,
 * in (schema, name) order, so two loaders merging the same tables take
 * turns instead of deadlocking on rows; they are released when the
 * transaction ends (RELEASE_ALL_LOCKS).
 *
 * Overwrite: RENAME TABLE swaps the shadow in atomically (live -> swap
 * name, shadow -> live, swap name -> shadow), then the old rows are
 * dropped.  The RENAME commits the open transaction first (MariaDB's DDL
 * does), so the shadow's rows are durable before it is swapped in; a crash
 * between the two leaves a shadow that drop_table clears on the next run.
 */
#include "odbc_mariadb.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"

#define STAGE_PREFIX "target-pg stage "
#define COMBINED "target-pg combined"
#define RANK "target-pg rank"
#define NEWEST_PREFIX "target-pg newest "
#define DELETED "target-pg deleted"
#define SWAP_PREFIX "target-pg swap "
#define LOCK_PREFIX "target-pg merge "
#define LOCK_WAIT_SECONDS "31536000" /* as long as PostgreSQL's LOCK would wait */

/* ---- staging ------------------------------------------------------------------ */

void odbc_mariadb_stage_name(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t)
{
    const odbc_stage *s = odbc_stage_find(d, t->schema, t->name);
    char name[64];
    snprintf(name, sizeof name, STAGE_PREFIX "%zu", s != NULL ? (size_t)(s - d->stages) : 0);
    odbc_sql_qualified(d, sb, t->schema, name);
}

/* DROP TEMPORARY TABLE IF EXISTS <name> (never a real table: TEMPORARY). */
static int drop_temporary(odbc_driver *d, const tgt_table *t, const char *name, tgt_error *err)
{
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "DROP TEMPORARY TABLE IF EXISTS ");
    if (name != NULL)
        odbc_sql_qualified(d, sb, t->schema, name);
    else
        odbc_mariadb_stage_name(d, sb, t);
    if (odbc_sql_check(sb, err) < 0)
        return -1;
    return odbc_exec(d, tgt_sbuf_str(sb), NULL, err,
                     "while dropping a staging table of \"%s\".\"%s\"", t->schema, t->name);
}

int odbc_mariadb_prepare_stage(odbc_driver *d, const tgt_table *t, tgt_error *err)
{
    odbc_stage *s = odbc_stage_get(d, t, err);
    if (s == NULL)
        return -1;
    size_t n = odbc_existing_columns(t);
    if (s->ready && s->shape == t->shape_version && s->n_columns == n)
        return 0;
    if (drop_temporary(d, t, NULL, err) < 0)
        return -1;
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "CREATE TEMPORARY TABLE ");
    odbc_mariadb_stage_name(d, sb, t);
    tgt_sbuf_append_str(sb, " (");
    for (size_t i = 0; i < t->n_columns; i++) {
        if (!t->columns[i].exists)
            continue;
        char type[MDB_TYPE_MAX];
        odbc_sql_ident(d, sb, t->columns[i].name);
        tgt_sbuf_printf(sb, " %s, ",
                        odbc_mariadb_column_type(t, i, t->columns[i].live_type, type, sizeof type));
    }
    odbc_sql_ident(d, sb, ODBC_SEQ_COLUMN);
    tgt_sbuf_append_str(sb, " BIGINT NOT NULL, ");
    odbc_sql_ident(d, sb, ODBC_PRESENT_COLUMN);
    tgt_sbuf_append_str(sb, " TEXT) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin");
    if (odbc_sql_check(sb, err) < 0 ||
        odbc_exec(d, tgt_sbuf_str(sb), NULL, err, "while staging rows for \"%s\".\"%s\"", t->schema,
                  t->name) < 0)
        return -1;
    s->ready = 1;
    s->shape = t->shape_version;
    s->n_columns = n;
    return 0;
}

/* ---- merge helpers -------------------------------------------------------------- */

/* "(SELECT x.*, ROW_NUMBER() OVER (PARTITION BY <keys> ORDER BY seq DESC) AS rank
 *  FROM <stage> x) n": the stage ranked, newest first per key. */
static void append_ranked(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t)
{
    tgt_sbuf_append_str(sb, "(SELECT x.*, ROW_NUMBER() OVER (PARTITION BY ");
    odbc_sql_key_columns(d, sb, t, "x.");
    tgt_sbuf_append_str(sb, " ORDER BY x.");
    odbc_sql_ident(d, sb, ODBC_SEQ_COLUMN);
    tgt_sbuf_append_str(sb, " DESC) AS ");
    odbc_sql_ident(d, sb, RANK);
    tgt_sbuf_append_str(sb, " FROM ");
    odbc_mariadb_stage_name(d, sb, t);
    tgt_sbuf_append_str(sb, " x) n");
}

static int run(odbc_driver *d, const tgt_table *t, unsigned long *rows, tgt_error *err)
{
    if (odbc_sql_check(&d->sql, err) < 0)
        return -1;
    return odbc_exec(d, tgt_sbuf_str(&d->sql), rows, err, "while merging into \"%s\".\"%s\"",
                     t->schema, t->name);
}

/* DELETE FROM <t> WHERE (<keys>) IN (SELECT <keys> FROM <newest rows> n
 * WHERE n.<mark> IS NOT NULL).  (A multi-table DELETE t FROM ... would need a
 * default database to resolve its alias.) */
static int delete_marked(odbc_driver *d, const tgt_table *t, int combined, tgt_error *err)
{
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    odbc_sql_delete_keys_in(d, sb, t, "n.");
    if (combined) {
        odbc_sql_qualified(d, sb, t->schema, COMBINED);
        tgt_sbuf_append_str(sb, " n");
    } else {
        append_ranked(d, sb, t);
    }
    tgt_sbuf_append_str(sb, combined ? " WHERE " : " WHERE n.`" RANK "` = 1 AND ");
    tgt_sbuf_append_str(sb, "n.");
    odbc_sql_ident(d, sb, t->columns[t->deleted_at_column].name);
    tgt_sbuf_append_str(sb, " IS NOT NULL)");
    return run(d, t, NULL, err);
}

static int empty_stage(odbc_driver *d, const tgt_table *t, tgt_error *err)
{
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "DELETE FROM ");
    odbc_mariadb_stage_name(d, sb, t);
    if (run(d, t, NULL, err) < 0)
        return -1;
    odbc_stage *s = odbc_stage_find(d, t->schema, t->name);
    if (s != NULL)
        s->filled = 0;
    return 0;
}

/* ---- the merge of complete records ----------------------------------------------- */

/* `schema`.`table`.`column`: in ON DUPLICATE KEY UPDATE a bare name could
 * also be the SELECT's column of that name. */
static void append_target_column(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, size_t i)
{
    odbc_sql_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_char(sb, '.');
    odbc_sql_ident(d, sb, t->columns[i].name);
}

/* "c1 <=> VALUES(c1) AND ...": every compared column keeps its value. */
static void append_unchanged(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t)
{
    int first = 1;
    for (size_t i = 0; i < t->n_columns; i++) {
        if (!odbc_is_compared(t, i))
            continue;
        tgt_sbuf_append_str(sb, first ? "" : " AND ");
        first = 0;
        append_target_column(d, sb, t, i);
        tgt_sbuf_append_str(sb, " <=> VALUES(");
        odbc_sql_ident(d, sb, t->columns[i].name);
        tgt_sbuf_append_char(sb, ')');
    }
}

static void append_updates(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t)
{
    size_t n_compared = 0;
    for (size_t i = 0; i < t->n_columns; i++)
        n_compared += odbc_is_compared(t, i) ? 1 : 0;
    tgt_sbuf_append_str(sb, " ON DUPLICATE KEY UPDATE ");
    if (n_compared == 0) {
        /* nothing to update: the existing row stays as it is */
        append_target_column(d, sb, t, t->key_columns[0]);
        tgt_sbuf_append_str(sb, " = ");
        append_target_column(d, sb, t, t->key_columns[0]);
        return;
    }
    int first = 1;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < t->n_columns; i++) {
            const tgt_column *c = &t->columns[i];
            if (!odbc_is_data(t, i) || odbc_is_compared(t, i) != (pass == 1))
                continue;
            tgt_sbuf_append_str(sb, first ? "" : ", ");
            first = 0;
            append_target_column(d, sb, t, i);
            if (pass == 0) {
                /* not compared: carried along with a change only */
                tgt_sbuf_append_str(sb, " = IF(");
                append_unchanged(d, sb, t);
                tgt_sbuf_append_str(sb, ", ");
                append_target_column(d, sb, t, i);
                tgt_sbuf_append_str(sb, ", VALUES(");
                odbc_sql_ident(d, sb, c->name);
                tgt_sbuf_append_str(sb, "))");
            } else {
                tgt_sbuf_append_str(sb, " = VALUES(");
                odbc_sql_ident(d, sb, c->name);
                tgt_sbuf_append_char(sb, ')');
            }
        }
    }
}

static int merge_complete(odbc_driver *d, const tgt_table *t, unsigned long *changed,
                          tgt_error *err)
{
    if (odbc_deletes_marked(t) && delete_marked(d, t, 0, err) < 0)
        return -1;
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    odbc_sql_insert_select(d, sb, t, "n.");
    append_ranked(d, sb, t);
    tgt_sbuf_append_str(sb, " WHERE n.`" RANK "` = 1");
    odbc_sql_not_deleted(d, sb, t, "n.");
    append_updates(d, sb, t);
    return run(d, t, changed, err);
}

/* ---- the merge of partial records ------------------------------------------------ */

static void append_newest_name(odbc_driver *d, tgt_sbuf *sb, const char *prefix, size_t i)
{
    char name[64];
    snprintf(name, sizeof name, NEWEST_PREFIX "%zu", i);
    tgt_sbuf_append_str(sb, prefix);
    odbc_sql_ident(d, sb, name);
}

/* The inner select: every staged row with, per combined column i, the
 * sequence of the key's newest row that carries it after the key's newest
 * deletion (hard_delete), and that deletion's sequence. */
static void append_windows(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, int hard)
{
    const char *seq = "s.`" ODBC_SEQ_COLUMN "`";
    tgt_sbuf_append_str(sb, "(SELECT s.*");
    for (size_t i = 0; i < t->n_columns; i++) {
        if (!odbc_is_data(t, i))
            continue;
        tgt_sbuf_append_str(sb, ", MAX(IF(");
        odbc_sql_carries(d, sb, "s.", i);
        if (hard) {
            /* after the newest deletion only later records carry columns
             * (the deletion mark itself: from the deletion on) */
            tgt_sbuf_printf(sb, " AND (d.`" DELETED "` IS NULL OR %s %s d.`" DELETED "`)", seq,
                            (long)i == t->deleted_at_column ? ">=" : ">");
        }
        tgt_sbuf_printf(sb, ", %s, NULL)) OVER (PARTITION BY ", seq);
        odbc_sql_key_columns(d, sb, t, "s.");
        tgt_sbuf_append_str(sb, ") AS ");
        append_newest_name(d, sb, "", i);
    }
    if (hard)
        tgt_sbuf_append_str(sb, ", d.`" DELETED "`");
    tgt_sbuf_append_str(sb, " FROM ");
    odbc_mariadb_stage_name(d, sb, t);
    tgt_sbuf_append_str(sb, " s");
    if (hard) {
        /* per key the sequence of its newest deletion in the batch */
        tgt_sbuf_append_str(sb, " JOIN (SELECT ");
        odbc_sql_key_columns(d, sb, t, "");
        tgt_sbuf_append_str(sb, ", MAX(IF(");
        odbc_sql_ident(d, sb, t->columns[t->deleted_at_column].name);
        tgt_sbuf_append_str(sb,
                            " IS NOT NULL, `" ODBC_SEQ_COLUMN "`, NULL)) AS `" DELETED "` FROM ");
        odbc_mariadb_stage_name(d, sb, t);
        tgt_sbuf_append_str(sb, " GROUP BY ");
        odbc_sql_key_columns(d, sb, t, "");
        tgt_sbuf_append_str(sb, ") d ON ");
        odbc_sql_key_match(d, sb, t, "s.", "d.");
    }
    tgt_sbuf_append_str(sb, ") x");
}

/* CREATE TEMPORARY TABLE <combined> AS SELECT <keys>, per column the value
 * of its newest carrying row and that row's sequence, [the deletion] FROM
 * <windows> GROUP BY <keys> */
static int combine(odbc_driver *d, const tgt_table *t, int hard, tgt_error *err)
{
    if (drop_temporary(d, t, COMBINED, err) < 0)
        return -1;
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "CREATE TEMPORARY TABLE ");
    odbc_sql_qualified(d, sb, t->schema, COMBINED);
    tgt_sbuf_append_str(sb, " AS SELECT ");
    odbc_sql_key_columns(d, sb, t, "x.");
    for (size_t i = 0; i < t->n_columns; i++) {
        if (!odbc_is_data(t, i))
            continue;
        tgt_sbuf_append_str(sb, ", MAX(IF(x.`" ODBC_SEQ_COLUMN "` = ");
        append_newest_name(d, sb, "x.", i);
        tgt_sbuf_append_str(sb, ", x.");
        odbc_sql_ident(d, sb, t->columns[i].name);
        tgt_sbuf_append_str(sb, ", NULL)) AS ");
        odbc_sql_ident(d, sb, t->columns[i].name);
        tgt_sbuf_append_str(sb, ", MAX(");
        append_newest_name(d, sb, "x.", i);
        tgt_sbuf_append_str(sb, ") AS ");
        append_newest_name(d, sb, "", i);
    }
    if (hard)
        tgt_sbuf_append_str(sb, ", MAX(x.`" DELETED "`) AS `" DELETED "`");
    tgt_sbuf_append_str(sb, " FROM ");
    append_windows(d, sb, t, hard);
    tgt_sbuf_append_str(sb, " GROUP BY ");
    odbc_sql_key_columns(d, sb, t, "x.");
    return run(d, t, NULL, err);
}

/* The value column i gets: the newest carried one; else, after a deletion
 * in the batch, NULL; else the stored one. */
static void append_new_value(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, size_t i, int hard)
{
    tgt_sbuf_append_str(sb, "IF(");
    append_newest_name(d, sb, "n.", i);
    tgt_sbuf_append_str(sb, " IS NOT NULL, n.");
    odbc_sql_ident(d, sb, t->columns[i].name);
    tgt_sbuf_append_str(sb, hard ? ", IF(n.`" DELETED "` IS NOT NULL, NULL, t." : ", t.");
    odbc_sql_ident(d, sb, t->columns[i].name);
    tgt_sbuf_append_str(sb, hard ? "))" : ")");
}

/* UPDATE <t> t JOIN <combined> n ON <keys> SET c = <new value>, ...
 * WHERE NOT (t.c <=> <new value>) OR ... (compared columns) */
static int update_existing(odbc_driver *d, const tgt_table *t, int hard, unsigned long *rows,
                           tgt_error *err)
{
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "UPDATE ");
    odbc_sql_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_str(sb, " t JOIN ");
    odbc_sql_qualified(d, sb, t->schema, COMBINED);
    tgt_sbuf_append_str(sb, " n ON ");
    odbc_sql_key_match(d, sb, t, "t.", "n.");
    int first = 1;
    for (size_t i = 0; i < t->n_columns; i++) {
        if (!odbc_is_data(t, i))
            continue;
        tgt_sbuf_append_str(sb, first ? " SET t." : ", t.");
        first = 0;
        odbc_sql_ident(d, sb, t->columns[i].name);
        tgt_sbuf_append_str(sb, " = ");
        append_new_value(d, sb, t, i, hard);
    }
    if (first) {
        *rows = 0;
        return 0; /* only key columns: nothing to update */
    }
    first = 1;
    for (size_t i = 0; i < t->n_columns; i++) {
        if (!odbc_is_compared(t, i))
            continue;
        tgt_sbuf_append_str(sb, first ? " WHERE (NOT (t." : " OR NOT (t.");
        first = 0;
        odbc_sql_ident(d, sb, t->columns[i].name);
        tgt_sbuf_append_str(sb, " <=> ");
        append_new_value(d, sb, t, i, hard);
        tgt_sbuf_append_char(sb, ')');
    }
    if (first) {
        *rows = 0;
        return 0; /* nothing compared: stored rows stay */
    }
    tgt_sbuf_append_char(sb, ')');
    odbc_sql_not_deleted(d, sb, t, "n."); /* hard == odbc_deletes_marked(t) */
    return run(d, t, rows, err);
}

/* INSERT INTO <t> (<cols>) SELECT n.<cols> FROM <combined> n LEFT JOIN <t> t
 * ON <keys> WHERE t.<key 1> IS NULL */
static int insert_new(odbc_driver *d, const tgt_table *t, unsigned long *rows, tgt_error *err)
{
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    odbc_sql_insert_select(d, sb, t, "n.");
    odbc_sql_qualified(d, sb, t->schema, COMBINED);
    tgt_sbuf_append_str(sb, " n LEFT JOIN ");
    odbc_sql_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_str(sb, " t ON ");
    odbc_sql_key_match(d, sb, t, "t.", "n.");
    tgt_sbuf_append_str(sb, " WHERE t.");
    odbc_sql_ident(d, sb, t->columns[t->key_columns[0]].name);
    tgt_sbuf_append_str(sb, " IS NULL");
    odbc_sql_not_deleted(d, sb, t, "n.");
    return run(d, t, rows, err);
}

static int merge_partial(odbc_driver *d, const tgt_table *t, unsigned long *changed, tgt_error *err)
{
    int hard = odbc_deletes_marked(t);
    unsigned long updated = 0, inserted = 0;
    if (combine(d, t, hard, err) < 0 || (hard && delete_marked(d, t, 1, err) < 0) ||
        update_existing(d, t, hard, &updated, err) < 0 || insert_new(d, t, &inserted, err) < 0 ||
        drop_temporary(d, t, COMBINED, err) < 0)
        return -1;
    *changed = updated + inserted;
    return 0;
}

int odbc_mariadb_merge(odbc_driver *d, const tgt_table *t, int partial, unsigned long *changed,
                       tgt_error *err)
{
    *changed = 0;
    int rc;
    if (t->n_keys == 0) {
        /* not a keyed table: the staged rows are simply appended */
        tgt_sbuf *sb = &d->sql;
        tgt_sbuf_reset(sb);
        odbc_sql_insert_select(d, sb, t, "");
        odbc_mariadb_stage_name(d, sb, t);
        rc = run(d, t, changed, err);
    } else {
        rc = partial ? merge_partial(d, t, changed, err) : merge_complete(d, t, changed, err);
    }
    return rc < 0 ? -1 : empty_stage(d, t, err);
}

/* ---- transactions and locks ------------------------------------------------------ */

void odbc_mariadb_end_transaction(odbc_driver *d, int committed)
{
    if (!committed)
        odbc_stage_forget_all(d); /* a stage made in the rolled-back transaction may hold rows */
    if (!d->connected)
        return;
    tgt_error ignored;
    tgt_error_init(&ignored);
    /* user locks belong to the session, not the transaction: let them go */
    odbc_exec(d, "DO RELEASE_ALL_LOCKS()", NULL, &ignored, "while releasing merge locks");
}

static int by_name(const void *a, const void *b)
{
    const tgt_table *x = *(const tgt_table *const *)a, *y = *(const tgt_table *const *)b;
    int c = strcmp(x->schema, y->schema);
    return c != 0 ? c : strcmp(x->name, y->name);
}

/* FNV-1a over schema, 0x1F, name: a lock name fits MariaDB's 64 characters. */
static uint64_t name_hash(const char *schema, const char *name)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = schema; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ 0x1F) * 1099511628211ULL;
    for (const char *p = name; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

int odbc_mariadb_lock_for_merge(odbc_driver *d, const tgt_table **tables, size_t n, tgt_error *err)
{
    if (n > 1) /* tables is NULL when there is nothing to lock */
        qsort(tables, n, sizeof(*tables), by_name);
    for (size_t i = 0; i < n; i++) {
        char lock[64];
        snprintf(lock, sizeof lock, LOCK_PREFIX "%016llx",
                 (unsigned long long)name_hash(tables[i]->schema, tables[i]->name));
        const char *params[1] = {lock};
        odbc_result r;
        int rc = odbc_query(d, "SELECT GET_LOCK(?, " LOCK_WAIT_SECONDS ")", params, 1, &r, err,
                            "while locking \"%s\".\"%s\" for a merge", tables[i]->schema,
                            tables[i]->name);
        const char *got = rc == 0 ? odbc_result_get(&r, 0, 0) : NULL;
        if (rc == 0 && (got == NULL || strcmp(got, "1") != 0))
            rc = tgt_error_set(err, TGT_ERR_LOAD, "%s: could not lock \"%s\".\"%s\" for a merge",
                               d->dbms_name, tables[i]->schema, tables[i]->name);
        odbc_result_free(&r);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* ---- ACTIVATE_VERSION ------------------------------------------------------------ */

int odbc_mariadb_activate_version(odbc_driver *d, const char *schema, const char *table,
                                  const char *version_column, const char *deleted_column,
                                  const char *version, int hard, unsigned long *affected,
                                  tgt_error *err)
{
    /* the version compared as an exact decimal, never through a double */
    const odbc_version_sql v = {.schema = schema,
                                .table = table,
                                .version_column = version_column,
                                .deleted_column = deleted_column,
                                .hard = hard,
                                .now_sql = "UTC_TIMESTAMP(6)",
                                .integer_type = "DECIMAL(65,0)"};
    char where[TGT_ERROR_WHERE_MAX];
    snprintf(where, sizeof(where), "while activating version %s of \"%s\".\"%s\"", version, schema,
             table);
    return odbc_sql_exec_activate_version(d, &v, version, where, affected, err);
}

/* ---- overwrite ----------------------------------------------------------------- */

int odbc_mariadb_drop_table(odbc_driver *d, const char *schema, const char *table, tgt_error *err)
{
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "DROP TABLE IF EXISTS ");
    odbc_sql_qualified(d, sb, schema, table);
    if (odbc_sql_check(sb, err) < 0)
        return -1;
    return odbc_exec(d, tgt_sbuf_str(sb), NULL, err, "while dropping \"%s\".\"%s\"", schema, table);
}

static int table_exists(odbc_driver *d, const char *schema, const char *table, tgt_error *err)
{
    const char *params[2] = {schema, table};
    odbc_result r;
    int rc = odbc_query(d,
                        "SELECT COUNT(*) FROM information_schema.TABLES "
                        "WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                        params, 2, &r, err, "while looking for \"%s\".\"%s\"", schema, table);
    const char *n = rc == 0 ? odbc_result_get(&r, 0, 0) : NULL;
    int exists = n != NULL && strcmp(n, "0") != 0;
    odbc_result_free(&r);
    return rc < 0 ? -1 : exists;
}

int odbc_mariadb_replace_table(odbc_driver *d, const char *schema, const char *live,
                               const char *shadow, tgt_error *err)
{
    int exists = table_exists(d, schema, live, err);
    if (exists < 0)
        return -1;
    char swap[64];
    snprintf(swap, sizeof swap, SWAP_PREFIX "%016llx", (unsigned long long)name_hash(schema, live));
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "RENAME TABLE ");
    if (exists) {
        odbc_sql_qualified(d, sb, schema, live);
        tgt_sbuf_append_str(sb, " TO ");
        odbc_sql_qualified(d, sb, schema, swap);
        tgt_sbuf_append_str(sb, ", ");
    }
    odbc_sql_qualified(d, sb, schema, shadow);
    tgt_sbuf_append_str(sb, " TO ");
    odbc_sql_qualified(d, sb, schema, live);
    if (exists) {
        tgt_sbuf_append_str(sb, ", ");
        odbc_sql_qualified(d, sb, schema, swap);
        tgt_sbuf_append_str(sb, " TO ");
        odbc_sql_qualified(d, sb, schema, shadow);
    }
    if (odbc_sql_check(sb, err) < 0 ||
        odbc_exec(d, tgt_sbuf_str(sb), NULL, err, "while swapping \"%s\".\"%s\" in", schema, live) <
            0)
        return -1;
    return exists ? odbc_mariadb_drop_table(d, schema, shadow, err) : 0;
}

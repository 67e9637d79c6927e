/*
 * pg_ddl.c - reading and changing table definitions: describe_table,
 * ensure_schema, create_table, add_column, alter_column_types.
 *
 * Catalog lookups take the names as parameters; DDL quotes every identifier
 * and quotes column comments as literals (COMMENT ON takes no parameters).
 * Each DDL call is atomic on its own: a multi-statement string runs as one
 * implicit transaction, alter_column_types uses an explicit one.  All are safe
 * against another loader doing the same thing at the same time: "already
 * exists" from a concurrent creator counted as success, a table or column
 * it made (maybe from another SCHEMA) brought up to the wanted shape, and a
 * re-check of the live type under the table lock before altering it.  The
 * core calls them outside its data transaction (driver.h).
 */
#include "pg_internal.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "pg_types.h"

#define TYPE_SQL_MAX 64

/* One query: the relation's attributes in attnum order, each with its
 * position in the primary key (NULL when not a key column).  No row: no such
 * table; a single row of NULLs: a table without columns. */
static const char describe_sql[] =
    "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, "
    "pg_catalog.array_position(i.indkey::pg_catalog.int2[], a.attnum), "
    "pg_catalog.col_description(c.oid, a.attnum) "
    "FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_catalog.pg_attribute a "
    "ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
    "LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary "
    "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p') "
    "ORDER BY a.attnum";

typedef struct key_pos {
    long pos;
    size_t col;
} key_pos;

/* The property path target-pg recorded in the column comment, if any. */
static int set_source_path(tgt_live_column *c, const PGresult *res, int r)
{
    static const char prefix[] = "source: ";
    if (PQgetisnull(res, r, 4))
        return 0;
    const char *comment = PQgetvalue(res, r, 4);
    if (strncmp(comment, prefix, sizeof(prefix) - 1) != 0)
        return 0;
    c->source_path = strdup(comment + sizeof(prefix) - 1);
    return c->source_path == NULL ? -1 : 0;
}

/* Sets out->empty when schema.table holds no row.  Only outside a
 * transaction, where a failure to look (no SELECT privilege: an append-only
 * loader) aborts nothing of the core's: it leaves empty 0, which costs a
 * keyed load its shortcut, not its correctness.  A lost connection is an
 * error. */
static int look_for_rows(pg_driver *d, const char *schema, const char *table, tgt_live_table *out,
                         tgt_error *err)
{
    if (PQtransactionStatus(d->conn) != PQTRANS_IDLE)
        return 0;
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "SELECT 1 FROM ");
    pg_sql_qualified(d, sb, schema, table);
    tgt_sbuf_append_str(sb, " LIMIT 1");
    if (pg_sql_check(d, sb, err) < 0)
        return -1;
    tgt_error local;
    tgt_error_init(&local);
    PGresult *res = pg_exec(d, tgt_sbuf_str(sb), PGRES_TUPLES_OK, &local,
                            "while looking for rows in \"%s\".\"%s\"", schema, table);
    if (res == NULL) {
        if (local.connection_lost)
            return pg_error_forward(err, &local);
        tgt_log(TGT_LOG_DEBUG, "%s (%s): taken as not empty", local.message, local.where);
        return 0;
    }
    out->empty = PQntuples(res) == 0;
    PQclear(res);
    return 0;
}

/* out is initialised here (it must not hold memory); on error it is left
 * empty. */
int pg_describe_table(tgt_driver *base, const char *schema, const char *table, tgt_live_table *out,
                      tgt_error *err)
{
    pg_driver *d = (pg_driver *)base;
    tgt_live_table_init(out);
    const char *params[2] = {schema, table};
    PGresult *res = pg_exec_params(d, describe_sql, 2, params, PGRES_TUPLES_OK, err,
                                   "while reading the definition of \"%s\".\"%s\"", schema, table);
    if (res == NULL)
        return -1;
    int rows = PQntuples(res);
    if (rows == 0) {
        PQclear(res);
        return 0;
    }
    out->exists = 1;
    if (PQgetisnull(res, 0, 0)) { /* a table with no columns */
        PQclear(res);
        return 0;
    }

    key_pos *keys = calloc((size_t)rows, sizeof(*keys));
    out->columns = calloc((size_t)rows, sizeof(*out->columns));
    if (keys == NULL || out->columns == NULL)
        goto nomem;
    size_t n_keys = 0;
    for (int r = 0; r < rows; r++) {
        tgt_live_column *c = &out->columns[out->n_columns++];
        snprintf(c->name, sizeof(c->name), "%s", PQgetvalue(res, r, 0));
        snprintf(c->sql_type, sizeof(c->sql_type), "%s", PQgetvalue(res, r, 1));
        c->type = pg_type_from_sql(PQgetvalue(res, r, 1));
        c->not_null = strcmp(PQgetvalue(res, r, 2), "t") == 0;
        if (set_source_path(c, res, r) != 0)
            goto nomem;
        if (!PQgetisnull(res, r, 3)) {
            /* insertion by key position: keys are few */
            long pos = strtol(PQgetvalue(res, r, 3), NULL, 10);
            size_t at = n_keys++;
            while (at > 0 && keys[at - 1].pos > pos) {
                keys[at] = keys[at - 1];
                at--;
            }
            keys[at].pos = pos;
            keys[at].col = (size_t)r;
        }
    }
    if (n_keys > 0) {
        out->key = calloc(n_keys, sizeof(*out->key));
        if (out->key == NULL)
            goto nomem;
        for (size_t k = 0; k < n_keys; k++)
            memcpy(out->key[k], out->columns[keys[k].col].name, sizeof(out->key[k]));
        out->n_keys = n_keys;
    }
    free(keys);
    PQclear(res);
    /* only a keyed load uses it, and only a table with a key gets one */
    if (n_keys > 0 && look_for_rows(d, schema, table, out, err) != 0) {
        tgt_live_table_deinit(out);
        return -1;
    }
    return 0;

nomem:
    free(keys);
    PQclear(res);
    tgt_live_table_deinit(out);
    return tgt_error_nomem(err);
}

/* The SQLSTATEs a CREATE gets when another session created the same object
 * after our existence check: unique_violation on a catalog
 * index, duplicate_table / duplicate_schema, or duplicate_object for the
 * table's row type.  (Only a re-check tells this from a real clash.) */
static int lost_creation_race(const tgt_error *e)
{
    static const char *const states[] = {"23505", "42P07", "42P06", "42710"};
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
        if (strcmp(e->sqlstate, states[i]) == 0)
            return 1;
    }
    return 0;
}

/* 1 when schema.name is a table now, 0 when not, -1 on error. */
static int table_exists(pg_driver *d, const char *schema, const char *name, tgt_error *err)
{
    const char *params[2] = {schema, name};
    PGresult *res = pg_exec_params(d,
                                   "SELECT 1 FROM pg_catalog.pg_class c "
                                   "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                                   "WHERE n.nspname = $1 AND c.relname = $2 "
                                   "AND c.relkind IN ('r', 'p')",
                                   2, params, PGRES_TUPLES_OK, err,
                                   "while looking for table \"%s\".\"%s\"", schema, name);
    if (res == NULL)
        return -1;
    int exists = PQntuples(res) > 0;
    PQclear(res);
    return exists;
}

static int schema_exists(pg_driver *d, const char *schema, tgt_error *err)
{
    const char *params[1] = {schema};
    PGresult *res =
        pg_exec_params(d, "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1", 1, params,
                       PGRES_TUPLES_OK, err, "while looking for schema \"%s\"", schema);
    if (res == NULL)
        return -1;
    int exists = PQntuples(res) > 0;
    PQclear(res);
    return exists;
}

int pg_ensure_schema(tgt_driver *base, const char *schema, tgt_error *err)
{
    pg_driver *d = (pg_driver *)base;
    /* CREATE SCHEMA IF NOT EXISTS checks the CREATE privilege on the database
     * before it looks for the schema, so a loader that may only use an
     * existing schema has to look first. */
    int exists = schema_exists(d, schema, err);
    if (exists != 0)
        return exists < 0 ? -1 : 0;

    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "CREATE SCHEMA IF NOT EXISTS ");
    pg_sql_ident(d, sb, schema);
    if (pg_sql_check(d, sb, err) < 0)
        return -1;
    tgt_log(TGT_LOG_INFO, "creating schema \"%s\"", schema);
    tgt_error local;
    tgt_error_init(&local);
    if (pg_command(d, tgt_sbuf_str(sb), &local, "while creating schema \"%s\"", schema) == 0)
        return 0;
    /* a concurrent creator committed between our check and our insert */
    tgt_error recheck;
    tgt_error_init(&recheck);
    if (lost_creation_race(&local) && schema_exists(d, schema, &recheck) == 1) {
        tgt_log(TGT_LOG_INFO, "schema \"%s\" was created concurrently", schema);
        return 0;
    }
    return pg_error_forward(err, &local);
}

/* Appends "; COMMENT ON COLUMN <table>.<col> IS 'source: <path>'" when the
 * column has a source path (its recorded form, source_json). */
static void append_comment(pg_driver *d, tgt_sbuf *sb, const tgt_table *t, const tgt_column *c,
                           tgt_sbuf *scratch)
{
    if (c->source_json == NULL)
        return;
    tgt_sbuf_reset(scratch);
    tgt_sbuf_append_str(scratch, "source: ");
    tgt_sbuf_append_str(scratch, c->source_json);
    if (!tgt_sbuf_ok(scratch)) {
        sb->broken = 1;
        return;
    }
    tgt_sbuf_append_str(sb, "; COMMENT ON COLUMN ");
    pg_sql_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_char(sb, '.');
    pg_sql_ident(d, sb, c->name);
    tgt_sbuf_append_str(sb, " IS ");
    pg_sql_literal(d, sb, scratch->data, scratch->len);
}

/* After losing a creation race: the winner's table may come from another
 * SCHEMA, so add the columns it lacks and widen the narrower ones
 * (alter_column_types re-checks under the lock and keeps wider ones). */
static int conform_table(tgt_driver *base, const tgt_table *t, tgt_error *err)
{
    tgt_live_table live;
    if (pg_describe_table(base, t->schema, t->name, &live, err) != 0)
        return -1;
    size_t *narrower = calloc(t->n_columns + 1, sizeof(*narrower));
    size_t n_narrower = 0;
    int rc = narrower == NULL ? tgt_error_nomem(err) : 0;
    for (size_t i = 0; rc == 0 && i < t->n_columns; i++) {
        const tgt_live_column *lc = tgt_live_table_find(&live, t->columns[i].name);
        if (lc == NULL)
            rc = pg_add_column(base, t, i, err);
        else if (!tgt_type_equal(lc->type, t->columns[i].type))
            narrower[n_narrower++] = i;
    }
    if (rc == 0)
        rc = pg_alter_column_types(base, t, narrower, n_narrower, err);
    free(narrower);
    tgt_live_table_deinit(&live);
    return rc;
}

int pg_create_table(tgt_driver *base, const tgt_table *t, tgt_error *err)
{
    pg_driver *d = (pg_driver *)base;
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf scratch, keys;
    tgt_sbuf_init(&scratch);
    tgt_sbuf_init(&keys);
    char type[TYPE_SQL_MAX];

    tgt_sbuf_reset(sb);
    /* no IF NOT EXISTS: a table made since describe_table must be noticed */
    tgt_sbuf_append_str(sb, "CREATE TABLE ");
    pg_sql_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_str(sb, " (");
    for (size_t i = 0; i < t->n_columns; i++) {
        const tgt_column *c = &t->columns[i];
        if (i > 0)
            tgt_sbuf_append_str(sb, ", ");
        pg_sql_ident(d, sb, c->name);
        tgt_sbuf_append_char(sb, ' ');
        tgt_sbuf_append_str(sb, pg_type_sql(c->type, type, sizeof(type)));
        if (c->is_key)
            tgt_sbuf_append_str(sb, " NOT NULL");
    }
    if (t->n_keys > 0) {
        tgt_sbuf_append_str(sb, t->n_columns > 0 ? ", PRIMARY KEY (" : "PRIMARY KEY (");
        pg_sql_key_columns(d, sb, t);
        tgt_sbuf_append_char(sb, ')');
    }
    tgt_sbuf_append_char(sb, ')');
    for (size_t i = 0; i < t->n_columns; i++)
        append_comment(d, sb, t, &t->columns[i], &scratch);
    for (size_t k = 0; k < t->n_keys; k++) {
        if (k > 0)
            tgt_sbuf_append_str(&keys, ", ");
        tgt_sbuf_append_str(&keys, t->columns[t->key_columns[k]].name);
    }
    tgt_sbuf_deinit(&scratch);
    if (pg_sql_check(d, sb, err) < 0 || pg_sql_check(d, &keys, err) < 0) {
        tgt_sbuf_deinit(&keys);
        return -1;
    }
    if (t->n_keys > 0)
        tgt_log(TGT_LOG_INFO, "creating table \"%s\".\"%s\" with %zu columns, primary key (%s)",
                t->schema, t->name, t->n_columns, tgt_sbuf_str(&keys));
    else
        tgt_log(TGT_LOG_INFO, "creating table \"%s\".\"%s\" with %zu columns, no primary key",
                t->schema, t->name, t->n_columns);
    tgt_sbuf_deinit(&keys);

    tgt_error local;
    tgt_error_init(&local);
    if (pg_command(d, tgt_sbuf_str(sb), &local, "while creating table \"%s\".\"%s\"", t->schema,
                   t->name) == 0)
        return 0;
    /* A creator that committed first gives duplicate_table; one still
     * uncommitted makes ours fail on a catalog unique index or find the row
     * type taken once it commits.  If the table is there now, someone else
     * made it: fine.  (A stand-alone type of the same name is a real clash
     * and stays an error.) */
    tgt_error recheck;
    tgt_error_init(&recheck);
    if (lost_creation_race(&local) && table_exists(d, t->schema, t->name, &recheck) == 1) {
        tgt_log(TGT_LOG_INFO, "table \"%s\".\"%s\" was created concurrently", t->schema, t->name);
        return conform_table(base, t, err);
    }
    return pg_error_forward(err, &local);
}

int pg_add_column(tgt_driver *base, const tgt_table *t, size_t col, tgt_error *err)
{
    pg_driver *d = (pg_driver *)base;
    if (col >= t->n_columns)
        return tgt_error_set(err, TGT_ERR_INTERNAL, "add_column: column %zu out of range", col);
    const tgt_column *c = &t->columns[col];
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf scratch;
    tgt_sbuf_init(&scratch);
    char type[TYPE_SQL_MAX];
    pg_type_sql(c->type, type, sizeof(type));

    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "ALTER TABLE ");
    pg_sql_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_str(sb, " ADD COLUMN ");
    pg_sql_ident(d, sb, c->name);
    tgt_sbuf_append_char(sb, ' ');
    tgt_sbuf_append_str(sb, type);
    append_comment(d, sb, t, c, &scratch);
    tgt_sbuf_deinit(&scratch);
    if (pg_sql_check(d, sb, err) < 0)
        return -1;
    tgt_log(TGT_LOG_INFO, "adding column \"%s\" %s to \"%s\".\"%s\"", c->name, type, t->schema,
            t->name);
    tgt_error local;
    tgt_error_init(&local);
    if (pg_command(d, tgt_sbuf_str(sb), &local, "while adding column \"%s\" to \"%s\".\"%s\"",
                   c->name, t->schema, t->name) == 0)
        return 0;
    /* duplicate_column: another loader added it since describe_table, maybe
     * with a narrower type */
    if (strcmp(local.sqlstate, "42701") != 0)
        return pg_error_forward(err, &local);
    tgt_log(TGT_LOG_INFO, "column \"%s\" of \"%s\".\"%s\" was added concurrently", c->name,
            t->schema, t->name);
    return pg_alter_column_types(base, t, &col, 1, err);
}

static const char column_type_sql[] = "SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) "
                                      "FROM pg_catalog.pg_attribute a "
                                      "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
                                      "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                                      "WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3 "
                                      "AND a.attnum > 0 AND NOT a.attisdropped";

/* The live spelling of column `name` into live (at most live_len bytes;
 * "(missing)" when the column is gone); 0, or -1 with err. */
static int live_column_type(pg_driver *d, const tgt_table *t, const char *name, char *live,
                            size_t live_len, tgt_error *err)
{
    const char *params[3] = {t->schema, t->name, name};
    PGresult *res =
        pg_exec_params(d, column_type_sql, 3, params, PGRES_TUPLES_OK, err,
                       "while reading the type of \"%s\".\"%s\".\"%s\"", t->schema, t->name, name);
    if (res == NULL)
        return -1;
    snprintf(live, live_len, "%s", PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "(missing)");
    PQclear(res);
    return 0;
}

/* 1 when column c, live as `live`, still needs altering; logs why not. */
static int needs_alter(const tgt_table *t, const tgt_column *c, const char *live)
{
    if (strcmp(live, "(missing)") == 0)
        return 1; /* the ALTER reports the missing column */
    tgt_type_order order = tgt_type_compare(pg_type_from_sql(live), c->type);
    if (order == TGT_ORDER_EQUAL)
        tgt_log(TGT_LOG_INFO, "\"%s\".\"%s\".\"%s\" is already %s", t->schema, t->name, c->name,
                live);
    else if (order == TGT_ORDER_HIGHER)
        tgt_log(TGT_LOG_INFO, "keeping \"%s\".\"%s\".\"%s\" as %s (wider than the SCHEMA's)",
                t->schema, t->name, c->name, live);
    return order != TGT_ORDER_EQUAL && order != TGT_ORDER_HIGHER;
}

/* Appends ", ALTER COLUMN c TYPE x USING c::x" (without the comma for the
 * first) and logs the change. */
static void append_alter(pg_driver *d, tgt_sbuf *sb, const tgt_table *t, const tgt_column *c,
                         const char *live, int first)
{
    char type[TYPE_SQL_MAX];
    pg_type_sql(c->type, type, sizeof(type));
    tgt_sbuf_append_str(sb, first ? " ALTER COLUMN " : ", ALTER COLUMN ");
    pg_sql_ident(d, sb, c->name);
    tgt_sbuf_printf(sb, " TYPE %s USING ", type);
    pg_sql_ident(d, sb, c->name);
    tgt_sbuf_printf(sb, "::%s", type);
    tgt_log(TGT_LOG_INFO, "altering \"%s\".\"%s\".\"%s\" from %s to %s", t->schema, t->name,
            c->name, live, type);
}

/* Locks the table, re-reads each column's live type, and builds into d->sql
 * one ALTER TABLE for those still narrower; *n_alter receives how many. */
static int plan_alter(pg_driver *d, const tgt_table *t, const size_t *cols, size_t n,
                      size_t *n_alter, tgt_error *err)
{
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "BEGIN; LOCK TABLE ");
    pg_sql_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_str(sb, " IN ACCESS EXCLUSIVE MODE");
    if (pg_sql_check(d, sb, err) < 0 ||
        pg_command(d, tgt_sbuf_str(sb), err, "while locking \"%s\".\"%s\" to alter its columns",
                   t->schema, t->name) < 0)
        return -1;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "ALTER TABLE ");
    pg_sql_qualified(d, sb, t->schema, t->name);
    *n_alter = 0;
    for (size_t i = 0; i < n; i++) {
        const tgt_column *c = &t->columns[cols[i]];
        char live[128];
        if (live_column_type(d, t, c->name, live, sizeof(live), err) != 0)
            return -1;
        if (needs_alter(t, c, live))
            append_alter(d, sb, t, c, live, (*n_alter)++ == 0);
    }
    return 0;
}

int pg_alter_column_types(tgt_driver *base, const tgt_table *t, const size_t *cols, size_t n,
                          tgt_error *err)
{
    pg_driver *d = (pg_driver *)base;
    for (size_t i = 0; i < n; i++) {
        if (cols[i] >= t->n_columns)
            return tgt_error_set(err, TGT_ERR_INTERNAL,
                                 "alter_column_types: column %zu out of range", cols[i]);
    }
    if (n == 0)
        return 0;
    /* lock first, then re-read the live types: a concurrent loader may have
     * widened a column already (or further) while we waited */
    size_t n_alter = 0;
    if (plan_alter(d, t, cols, n, &n_alter, err) != 0) {
        pg_abort_quietly(d);
        return -1;
    }
    if (n_alter == 0)
        return pg_command(d, "COMMIT", err, "while committing");
    /* one statement: PostgreSQL rewrites the table once for all columns */
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_append_str(sb, "; COMMIT");
    if (pg_sql_check(d, sb, err) < 0 ||
        pg_command(d, tgt_sbuf_str(sb), err, "while altering %zu column(s) of \"%s\".\"%s\"",
                   n_alter, t->schema, t->name) < 0) {
        pg_abort_quietly(d);
        return -1;
    }
    return 0;
}

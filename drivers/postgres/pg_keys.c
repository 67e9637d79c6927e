/*
 * pg_keys.c - moving a table's primary key to new key_properties.
 *
 * In one transaction: lock the table, read the primary key it has now (a
 * concurrent loader may have moved it already), and if it differs drop that
 * constraint, make the new key columns NOT NULL and add the new primary key.
 * PostgreSQL checks the data while it builds the new key's index, so
 * duplicates or NULLs in the new key columns make the whole move fail and
 * leave the old key in place; the caller turns that into an error naming
 * both keys.
 */
#include "pg_internal.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"

/* The primary key's constraint name and columns ("a, b"), under the lock. */
static const char current_key_sql[] =
    "SELECT con.conname, pg_catalog.string_agg(a.attname, ', ' ORDER BY k.ord) "
    "FROM pg_catalog.pg_constraint con "
    "JOIN pg_catalog.pg_class c ON c.oid = con.conrelid "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "CROSS JOIN LATERAL pg_catalog.unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord) "
    "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
    "WHERE n.nspname = $1 AND c.relname = $2 AND con.contype = 'p' "
    "GROUP BY con.conname";

static void key_text(const tgt_table *t, tgt_sbuf *out)
{
    for (size_t k = 0; k < t->n_keys; k++) {
        if (k > 0)
            tgt_sbuf_append_str(out, ", ");
        tgt_sbuf_append_str(out, t->columns[t->key_columns[k]].name);
    }
}

static void build_move(pg_driver *d, tgt_sbuf *sb, const tgt_table *t, const char *old_constraint)
{
    tgt_sbuf_append_str(sb, "ALTER TABLE ");
    pg_sql_qualified(d, sb, t->schema, t->name);
    if (old_constraint != NULL) {
        tgt_sbuf_append_str(sb, " DROP CONSTRAINT ");
        pg_sql_ident(d, sb, old_constraint);
        tgt_sbuf_append_char(sb, ',');
    }
    for (size_t k = 0; k < t->n_keys; k++) {
        tgt_sbuf_append_str(sb, " ALTER COLUMN ");
        pg_sql_ident(d, sb, t->columns[t->key_columns[k]].name);
        tgt_sbuf_append_str(sb, " SET NOT NULL,");
    }
    tgt_sbuf_append_str(sb, " ADD PRIMARY KEY (");
    pg_sql_key_columns(d, sb, t);
    tgt_sbuf_append_char(sb, ')');
}

int pg_primary_key(pg_driver *d, const char *schema, const char *table,
                   char constraint[TGT_IDENT_MAX + 1], char *columns, size_t columns_cap,
                   tgt_error *err)
{
    const char *params[2] = {schema, table};
    PGresult *res = pg_exec_params(d, current_key_sql, 2, params, PGRES_TUPLES_OK, err,
                                   "while reading the primary key of \"%s\".\"%s\"", schema, table);
    if (res == NULL)
        return -1;
    int found = PQntuples(res) > 0;
    constraint[0] = '\0';
    snprintf(columns, columns_cap, "none");
    if (found) {
        snprintf(constraint, TGT_IDENT_MAX + 1, "%s", PQgetvalue(res, 0, 0));
        snprintf(columns, columns_cap, "%s", PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    return found;
}

/* Runs under the open transaction; 1 when moved, 0 when already right. */
static int move_locked(pg_driver *d, const tgt_table *t, const char *wanted, char *had,
                       size_t had_cap, tgt_error *err)
{
    char constraint[TGT_IDENT_MAX + 1];
    if (pg_primary_key(d, t->schema, t->name, constraint, had, had_cap, err) < 0)
        return -1;
    if (strcmp(had, wanted) == 0)
        return 0;
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    build_move(d, &sb, t, constraint[0] != '\0' ? constraint : NULL);
    char *sql = pg_sql_take(d, &sb, err);
    if (sql == NULL)
        return -1;
    int rc = pg_command(d, sql, err,
                        "while moving the primary key of \"%s\".\"%s\" from (%s) to "
                        "(%s)",
                        t->schema, t->name, had, wanted);
    free(sql);
    return rc < 0 ? -1 : 1;
}

int pg_set_primary_key(tgt_driver *base, const tgt_table *t, tgt_error *err)
{
    pg_driver *d = (pg_driver *)base;
    tgt_sbuf wanted, sb;
    tgt_sbuf_init(&wanted);
    tgt_sbuf_init(&sb);
    key_text(t, &wanted);
    tgt_sbuf_append_str(&sb, "BEGIN; LOCK TABLE ");
    pg_sql_qualified(d, &sb, t->schema, t->name);
    tgt_sbuf_append_str(&sb, " IN ACCESS EXCLUSIVE MODE");
    char had[1024];
    int rc = -1;
    if (pg_sql_check(d, &wanted, err) < 0 || pg_sql_check(d, &sb, err) < 0 ||
        pg_command(d, tgt_sbuf_str(&sb), err,
                   "while locking \"%s\".\"%s\" to move its primary "
                   "key",
                   t->schema, t->name) < 0)
        goto out;
    rc = move_locked(d, t, tgt_sbuf_str(&wanted), had, sizeof(had), err);
    if (rc >= 0 && pg_command(d, "COMMIT", err, "while committing the primary key move") == 0) {
        if (rc == 1)
            tgt_log(TGT_LOG_INFO, "moved the primary key of \"%s\".\"%s\" from (%s) to (%s)",
                    t->schema, t->name, had, tgt_sbuf_str(&wanted));
        rc = 0;
    } else {
        rc = -1;
    }
out:
    if (rc != 0)
        pg_abort_quietly(d);
    tgt_sbuf_deinit(&wanted);
    tgt_sbuf_deinit(&sb);
    return rc;
}

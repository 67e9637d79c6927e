/*
 * pg_version.c - ACTIVATE_VERSION: retiring the rows of older table versions.
 *
 *   soft: UPDATE t SET <deleted> = now()
 *         WHERE (<version> < $1 OR <version> IS NULL) AND <deleted> IS NULL
 *   hard: DELETE FROM t WHERE <version> < $1 OR <version> IS NULL
 *
 * The version travels as a parameter, never in the SQL text.  Rows already
 * marked keep the time they were first marked.  Runs inside the core's
 * transaction, so the change is all or nothing.
 */
#include "pg_internal.h"

#include <stdlib.h>

#include "error.h"

static void append_older(pg_driver *d, tgt_sbuf *sb, const char *version_column)
{
    tgt_sbuf_append_str(sb, "(");
    pg_sql_ident(d, sb, version_column);
    tgt_sbuf_append_str(sb, " < $1::bigint OR ");
    pg_sql_ident(d, sb, version_column);
    tgt_sbuf_append_str(sb, " IS NULL)");
}

int pg_activate_version(tgt_driver *base, const char *schema, const char *table,
                        const char *version_column, const char *deleted_column, const char *version,
                        int hard, unsigned long *affected, tgt_error *err)
{
    pg_driver *d = (pg_driver *)base;
    *affected = 0;
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    if (hard) {
        tgt_sbuf_append_str(&sb, "DELETE FROM ");
        pg_sql_qualified(d, &sb, schema, table);
        tgt_sbuf_append_str(&sb, " WHERE ");
        append_older(d, &sb, version_column);
    } else {
        tgt_sbuf_append_str(&sb, "UPDATE ");
        pg_sql_qualified(d, &sb, schema, table);
        tgt_sbuf_append_str(&sb, " SET ");
        pg_sql_ident(d, &sb, deleted_column);
        tgt_sbuf_append_str(&sb, " = pg_catalog.now() WHERE ");
        append_older(d, &sb, version_column);
        tgt_sbuf_append_str(&sb, " AND ");
        pg_sql_ident(d, &sb, deleted_column);
        tgt_sbuf_append_str(&sb, " IS NULL");
    }
    char *sql = pg_sql_take(d, &sb, err);
    if (sql == NULL)
        return -1;
    const char *params[1] = {version};
    PGresult *res =
        pg_exec_params(d, sql, 1, params, PGRES_COMMAND_OK, err,
                       "while activating version %s of \"%s\".\"%s\"", version, schema, table);
    free(sql);
    if (res == NULL)
        return -1;
    *affected = strtoul(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return 0;
}

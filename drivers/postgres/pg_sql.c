/*
 * pg_sql.c - quoting for SQL text built in a tgt_sbuf.
 *
 * Identifiers go through PQescapeIdentifier and literals through
 * PQescapeLiteral (both know the connection's encoding); each escaped string
 * is appended and freed at once.  A quoting failure marks the builder broken
 * like an allocation failure would, so a statement is still checked once,
 * with pg_sql_check, before it runs.  Nothing here executes SQL.
 */
#include "pg_internal.h"

#include <stdio.h>
#include <string.h>

#include "error.h"

/* Marks sb broken and remembers why, unless it was plain memory. */
static void quote_failed(pg_driver *d, tgt_sbuf *sb)
{
    sb->broken = 1;
    if (d->quote_error[0] != '\0' || d->conn == NULL)
        return;
    const char *msg = PQerrorMessage(d->conn);
    if (msg != NULL && strstr(msg, "out of memory") == NULL)
        pg_one_line(msg, d->quote_error, sizeof(d->quote_error));
}

void pg_sql_ident(pg_driver *d, tgt_sbuf *sb, const char *ident)
{
    if (!tgt_sbuf_ok(sb))
        return;
    if (d->conn == NULL) {
        sb->broken = 1;
        return;
    }
    char *q = PQescapeIdentifier(d->conn, ident, strlen(ident));
    if (q == NULL) {
        quote_failed(d, sb);
        return;
    }
    tgt_sbuf_append_str(sb, q);
    PQfreemem(q);
}

void pg_sql_qualified(pg_driver *d, tgt_sbuf *sb, const char *schema, const char *name)
{
    pg_sql_ident(d, sb, schema);
    tgt_sbuf_append_char(sb, '.');
    pg_sql_ident(d, sb, name);
}

void pg_sql_literal(pg_driver *d, tgt_sbuf *sb, const char *value, size_t len)
{
    if (!tgt_sbuf_ok(sb))
        return;
    if (d->conn == NULL) {
        sb->broken = 1;
        return;
    }
    char *q = PQescapeLiteral(d->conn, value, len);
    if (q == NULL) {
        quote_failed(d, sb);
        return;
    }
    tgt_sbuf_append_str(sb, q);
    PQfreemem(q);
}

void pg_sql_columns(pg_driver *d, tgt_sbuf *sb, const tgt_table *t, const char *prefix)
{
    int first = 1;
    for (size_t i = 0; i < t->n_columns; i++) {
        if (!t->columns[i].exists)
            continue;
        if (!first)
            tgt_sbuf_append_str(sb, ", ");
        first = 0;
        tgt_sbuf_append_str(sb, prefix);
        pg_sql_ident(d, sb, t->columns[i].name);
    }
}

void pg_sql_key_columns(pg_driver *d, tgt_sbuf *sb, const tgt_table *t)
{
    for (size_t k = 0; k < t->n_keys; k++) {
        if (k > 0)
            tgt_sbuf_append_str(sb, ", ");
        pg_sql_ident(d, sb, t->columns[t->key_columns[k]].name);
    }
}

size_t pg_existing_columns(const tgt_table *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n_columns; i++)
        n += t->columns[i].exists ? 1 : 0;
    return n;
}

char *pg_sql_take(pg_driver *d, tgt_sbuf *sb, tgt_error *err)
{
    if (pg_sql_check(d, sb, err) < 0) {
        tgt_sbuf_deinit(sb);
        return NULL;
    }
    char *sql = tgt_sbuf_take(sb);
    if (sql == NULL)
        tgt_error_nomem(err);
    return sql;
}

int pg_sql_check(pg_driver *d, const tgt_sbuf *sb, tgt_error *err)
{
    if (tgt_sbuf_ok(sb))
        return 0;
    if (d->conn == NULL)
        return tgt_error_set(err, TGT_ERR_INTERNAL, "PostgreSQL: not connected");
    if (d->quote_error[0] != '\0') {
        tgt_error_set(err, TGT_ERR_DATA, "cannot quote a name for PostgreSQL: %s", d->quote_error);
        d->quote_error[0] = '\0';
        return -1;
    }
    return tgt_error_nomem(err);
}

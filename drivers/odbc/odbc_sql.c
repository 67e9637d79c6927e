/*
 * odbc_sql.c - building SQL for any dialect: identifiers quoted with the
 * dialect's quote character (doubled inside, so no name can end the quote),
 * column lists, key matches, the statement shapes every dialect shares
 * (INSERT ... SELECT, CREATE TABLE, ACTIVATE_VERSION: parameterised by what
 * the dialects spell differently), and the cache of staging tables made in the open
 * transaction.  Everything appends to a tgt_sbuf that goes broken on
 * allocation failure; odbc_sql_check reports that once before execution.
 */
#include "odbc_internal.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

void odbc_sql_ident(odbc_driver *d, tgt_sbuf *sb, const char *ident)
{
    char q = d->dialect->quote;
    tgt_sbuf_append_char(sb, q);
    for (const char *p = ident; *p != '\0'; p++) {
        const char *run = p;
        while (*p != '\0' && *p != q)
            p++;
        tgt_sbuf_append(sb, run, (size_t)(p - run));
        if (*p == '\0')
            break;
        tgt_sbuf_append_char(sb, q);
        tgt_sbuf_append_char(sb, q);
    }
    tgt_sbuf_append_char(sb, q);
}

void odbc_sql_qualified(odbc_driver *d, tgt_sbuf *sb, const char *schema, const char *name)
{
    d->dialect->qualified(d, sb, schema, name);
}

void odbc_sql_columns(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, const char *prefix)
{
    int first = 1;
    for (size_t i = 0; i < t->n_columns; i++) {
        if (!t->columns[i].exists)
            continue;
        if (!first)
            tgt_sbuf_append_str(sb, ", ");
        first = 0;
        tgt_sbuf_append_str(sb, prefix);
        odbc_sql_ident(d, sb, t->columns[i].name);
    }
}

void odbc_sql_key_columns(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, const char *prefix)
{
    for (size_t k = 0; k < t->n_keys; k++) {
        if (k > 0)
            tgt_sbuf_append_str(sb, ", ");
        tgt_sbuf_append_str(sb, prefix);
        odbc_sql_ident(d, sb, t->columns[t->key_columns[k]].name);
    }
}

void odbc_sql_key_match(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, const char *a,
                        const char *b)
{
    for (size_t k = 0; k < t->n_keys; k++) {
        const char *key = t->columns[t->key_columns[k]].name;
        tgt_sbuf_append_str(sb, k > 0 ? " AND " : "");
        tgt_sbuf_append_str(sb, a);
        odbc_sql_ident(d, sb, key);
        tgt_sbuf_append_str(sb, " = ");
        tgt_sbuf_append_str(sb, b);
        odbc_sql_ident(d, sb, key);
    }
}

void odbc_sql_insert_select(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, const char *prefix)
{
    tgt_sbuf_append_str(sb, "INSERT INTO ");
    odbc_sql_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_str(sb, " (");
    odbc_sql_columns(d, sb, t, "");
    tgt_sbuf_append_str(sb, ") SELECT ");
    odbc_sql_columns(d, sb, t, prefix);
    tgt_sbuf_append_str(sb, " FROM ");
}

void odbc_sql_delete_keys_in(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, const char *prefix)
{
    tgt_sbuf_append_str(sb, "DELETE FROM ");
    odbc_sql_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_str(sb, " WHERE (");
    odbc_sql_key_columns(d, sb, t, "");
    tgt_sbuf_append_str(sb, ") IN (SELECT ");
    odbc_sql_key_columns(d, sb, t, prefix);
    tgt_sbuf_append_str(sb, " FROM ");
}

void odbc_sql_carries(odbc_driver *d, tgt_sbuf *sb, const char *prefix, size_t i)
{
    tgt_sbuf_append_char(sb, '(');
    tgt_sbuf_append_str(sb, prefix);
    odbc_sql_ident(d, sb, ODBC_PRESENT_COLUMN);
    tgt_sbuf_append_str(sb, " IS NULL OR substr(");
    tgt_sbuf_append_str(sb, prefix);
    odbc_sql_ident(d, sb, ODBC_PRESENT_COLUMN);
    tgt_sbuf_printf(sb, ", %zu, 1) = '1')", i + 1);
}

void odbc_sql_column_def(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, size_t col,
                         tgt_coltype type)
{
    char spelled[ODBC_TYPE_SQL_MAX];
    const tgt_column *c = &t->columns[col];
    odbc_sql_ident(d, sb, c->name);
    tgt_sbuf_append_char(sb, ' ');
    tgt_sbuf_append_str(sb, d->dialect->type_sql(type, spelled, sizeof spelled));
    if (c->is_key)
        tgt_sbuf_append_str(sb, " NOT NULL");
}

void odbc_sql_create_table(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t,
                           odbc_column_def_fn column_def)
{
    /* no IF NOT EXISTS: a table made since describe_table must be noticed */
    tgt_sbuf_append_str(sb, "CREATE TABLE ");
    odbc_sql_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_str(sb, " (");
    for (size_t i = 0; i < t->n_columns; i++) {
        if (i > 0)
            tgt_sbuf_append_str(sb, ", ");
        column_def(d, sb, t, i, t->columns[i].type);
    }
    if (t->n_keys > 0) {
        tgt_sbuf_append_str(sb, t->n_columns > 0 ? ", PRIMARY KEY (" : "PRIMARY KEY (");
        odbc_sql_key_columns(d, sb, t, "");
        tgt_sbuf_append_char(sb, ')');
    }
    tgt_sbuf_append_char(sb, ')');
}

void odbc_sql_activate_version(odbc_driver *d, tgt_sbuf *sb, const odbc_version_sql *v)
{
    if (v->hard) {
        tgt_sbuf_append_str(sb, "DELETE FROM ");
        odbc_sql_qualified(d, sb, v->schema, v->table);
    } else {
        tgt_sbuf_append_str(sb, "UPDATE ");
        odbc_sql_qualified(d, sb, v->schema, v->table);
        tgt_sbuf_append_str(sb, " SET ");
        odbc_sql_ident(d, sb, v->deleted_column);
        tgt_sbuf_append_str(sb, " = ");
        tgt_sbuf_append_str(sb, v->now_sql);
    }
    /* the version compared as an exact integer, never through a double */
    tgt_sbuf_append_str(sb, " WHERE (");
    odbc_sql_ident(d, sb, v->version_column);
    tgt_sbuf_append_str(sb, " < CAST(? AS ");
    tgt_sbuf_append_str(sb, v->integer_type);
    tgt_sbuf_append_str(sb, ") OR ");
    odbc_sql_ident(d, sb, v->version_column);
    tgt_sbuf_append_str(sb, " IS NULL)");
    if (!v->hard) {
        tgt_sbuf_append_str(sb, " AND ");
        odbc_sql_ident(d, sb, v->deleted_column);
        tgt_sbuf_append_str(sb, " IS NULL");
    }
}

int odbc_sql_exec_activate_version(odbc_driver *d, const odbc_version_sql *v, const char *version,
                                   const char *where, unsigned long *affected, tgt_error *err)
{
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    odbc_sql_activate_version(d, sb, v);
    if (odbc_sql_check(sb, err) < 0)
        return -1;
    const char *params[1] = {version};
    return odbc_exec_params(d, tgt_sbuf_str(sb), params, 1, affected, err, "%s", where);
}

void odbc_sql_not_deleted(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, const char *prefix)
{
    if (!odbc_deletes_marked(t))
        return;
    tgt_sbuf_append_str(sb, " AND ");
    tgt_sbuf_append_str(sb, prefix);
    odbc_sql_ident(d, sb, t->columns[t->deleted_at_column].name);
    tgt_sbuf_append_str(sb, " IS NULL");
}

int odbc_deletes_marked(const tgt_table *t)
{
    return t->hard_delete && t->deleted_at_column >= 0 && t->columns[t->deleted_at_column].exists;
}

int odbc_is_data(const tgt_table *t, size_t i)
{
    return t->columns[i].exists && !odbc_is_key(t, i);
}

int odbc_is_compared(const tgt_table *t, size_t i)
{
    return odbc_is_data(t, i) && TGT_COLUMN_IS_COMPARED(&t->columns[i]);
}

size_t odbc_existing_columns(const tgt_table *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n_columns; i++)
        n += t->columns[i].exists ? 1 : 0;
    return n;
}

int odbc_is_key(const tgt_table *t, size_t col)
{
    for (size_t k = 0; k < t->n_keys; k++)
        if (t->key_columns[k] == col)
            return 1;
    return 0;
}

int odbc_sql_check(const tgt_sbuf *sb, tgt_error *err)
{
    return tgt_sbuf_ok(sb) ? 0 : tgt_error_nomem(err);
}

/* schema 0x1F name: no identifier holds the unit separator (naming.h) */
static char *stage_key(const char *schema, const char *name)
{
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    tgt_sbuf_append_str(&sb, schema);
    tgt_sbuf_append_char(&sb, 0x1F);
    tgt_sbuf_append_str(&sb, name);
    return tgt_sbuf_take(&sb);
}

odbc_stage *odbc_stage_find(odbc_driver *d, const char *schema, const char *name)
{
    char *key = stage_key(schema, name);
    if (key == NULL)
        return NULL;
    odbc_stage *found = NULL;
    for (size_t i = 0; found == NULL && i < d->n_stages; i++)
        if (strcmp(d->stages[i].key, key) == 0)
            found = &d->stages[i];
    free(key);
    return found;
}

odbc_stage *odbc_stage_get(odbc_driver *d, const tgt_table *t, tgt_error *err)
{
    odbc_stage *s = odbc_stage_find(d, t->schema, t->name);
    if (s != NULL)
        return s;
    if (d->n_stages == d->cap_stages) {
        size_t cap = d->cap_stages == 0 ? 8 : d->cap_stages * 2;
        odbc_stage *grown = realloc(d->stages, cap * sizeof(*grown));
        if (grown == NULL)
            return tgt_error_nomem(err), NULL;
        d->stages = grown;
        d->cap_stages = cap;
    }
    char *key = stage_key(t->schema, t->name);
    if (key == NULL)
        return tgt_error_nomem(err), NULL;
    s = &d->stages[d->n_stages++];
    memset(s, 0, sizeof(*s));
    s->key = key;
    return s;
}

void odbc_stage_forget_all(odbc_driver *d)
{
    for (size_t i = 0; i < d->n_stages; i++)
        d->stages[i].ready = d->stages[i].filled = 0;
}

void odbc_stage_free_all(odbc_driver *d)
{
    for (size_t i = 0; i < d->n_stages; i++)
        free(d->stages[i].key);
    free(d->stages);
    d->stages = NULL;
    d->n_stages = d->cap_stages = 0;
}

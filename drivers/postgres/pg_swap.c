/*
 * pg_swap.c - load_method overwrite: the shadow table a run loads into, and
 * the swap that makes it the live table.
 *
 * The swap runs inside the core's transaction: drop the live table, rename
 * the shadow to the live name, and give its primary key constraint (and
 * index) the name PostgreSQL would have chosen for the live table, so the
 * next run's shadow can take the shadow's name again.  Readers see the old
 * table or the new one, never neither.  Objects that depend on the live
 * table (views) make the DROP fail: the error says so and nothing changes.
 */
#include "pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "pg_caps.h"
#include "utf8.h"

int pg_drop_table(tgt_driver *base, const char *schema, const char *table, tgt_error *err)
{
    pg_driver *d = (pg_driver *)base;
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    tgt_sbuf_append_str(&sb, "DROP TABLE IF EXISTS ");
    pg_sql_qualified(d, &sb, schema, table);
    char *sql = pg_sql_take(d, &sb, err);
    if (sql == NULL)
        return -1;
    int rc = pg_command(d, sql, err, "while dropping \"%s\".\"%s\"", schema, table);
    free(sql);
    return rc;
}

/* ALTER TABLE schema.table RENAME [CONSTRAINT constraint] TO to. */
static int alter_rename(pg_driver *d, const char *schema, const char *table, const char *constraint,
                        const char *to, tgt_error *err)
{
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    tgt_sbuf_append_str(&sb, "ALTER TABLE ");
    pg_sql_qualified(d, &sb, schema, table);
    if (constraint != NULL) {
        tgt_sbuf_append_str(&sb, " RENAME CONSTRAINT ");
        pg_sql_ident(d, &sb, constraint);
        tgt_sbuf_append_str(&sb, " TO ");
    } else {
        tgt_sbuf_append_str(&sb, " RENAME TO ");
    }
    pg_sql_ident(d, &sb, to);
    char *sql = pg_sql_take(d, &sb, err);
    if (sql == NULL)
        return -1;
    int rc =
        constraint != NULL
            ? pg_command(d, sql, err, "while renaming the primary key of \"%s\".\"%s\"", schema,
                         table)
            : pg_command(d, sql, err, "while renaming \"%s\".\"%s\" to \"%s\"", schema, table, to);
    free(sql);
    return rc;
}

/* Renames the shadow's primary key constraint to <live>_pkey. */
static int rename_key(pg_driver *d, const char *schema, const char *live, tgt_error *err)
{
    char constraint[TGT_IDENT_MAX + 1], columns[1024], wanted[TGT_IDENT_MAX + 1];
    int found = pg_primary_key(d, schema, live, constraint, columns, sizeof(columns), err);
    if (found <= 0)
        return found;
    /* PostgreSQL's own choice: the table name cut (at a character
     * boundary) so that "_pkey" fits in 63 bytes */
    size_t keep = tgt_utf8_cut(live, strlen(live), tgt_pg_caps.ident_max - 5);
    snprintf(wanted, sizeof(wanted), "%.*s_pkey", (int)keep, live);
    return alter_rename(d, schema, live, constraint, wanted, err);
}

int pg_replace_table(tgt_driver *base, const char *schema, const char *live, const char *shadow,
                     tgt_error *err)
{
    pg_driver *d = (pg_driver *)base;
    if (pg_drop_table(base, schema, live, err) != 0)
        return -1;
    if (alter_rename(d, schema, shadow, NULL, live, err) != 0 ||
        rename_key(d, schema, live, err) != 0)
        return -1;
    tgt_log(TGT_LOG_INFO, "overwrite: \"%s\".\"%s\" replaced by the rows of this run", schema,
            live);
    return 0;
}

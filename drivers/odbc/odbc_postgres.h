/*
 * odbc_postgres.h - private to the PostgreSQL dialect of the ODBC driver:
 * what its two files share.  odbc_postgres.c holds the dialect table, the
 * catalog reads and the DDL; odbc_postgres_merge.c the staging tables, the
 * merge, the merge locks and ACTIVATE_VERSION.  Each function follows the
 * contract of the odbc_dialect operation of the same name (odbc_dialect.h).
 */
#ifndef TGT_ODBC_POSTGRES_H
#define TGT_ODBC_POSTGRES_H

#include "odbc_internal.h"

/* "schema"."name" */
void odbc_pg_qualified(odbc_driver *d, tgt_sbuf *sb, const char *schema, const char *name);

/* Runs a query (with n text parameters) whose first row's first cell is a
 * count; *out (may be NULL) receives it, 0 when there is none.  0 or -1
 * with err filled, where = `where`. */
int odbc_pg_query_count(odbc_driver *d, const char *sql, const char *const *params, size_t n,
                        unsigned long *out, tgt_error *err, const char *where);

void odbc_pg_stage_name(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t);
int odbc_pg_prepare_stage(odbc_driver *d, const tgt_table *t, tgt_error *err);
void odbc_pg_end_transaction(odbc_driver *d, int committed);
int odbc_pg_merge(odbc_driver *d, const tgt_table *t, int partial, unsigned long *changed,
                  tgt_error *err);
int odbc_pg_lock_for_merge(odbc_driver *d, const tgt_table **tables, size_t n, tgt_error *err);
int odbc_pg_activate_version(odbc_driver *d, const char *schema, const char *table,
                             const char *version_column, const char *deleted_column,
                             const char *version, int hard, unsigned long *affected,
                             tgt_error *err);

#endif

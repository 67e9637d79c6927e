/*
 * odbc_mariadb.h - private to the MariaDB dialect (odbc_mariadb.c: types,
 * session, catalog and DDL; odbc_mariadb_merge.c: staging, merge, ACTIVATE_
 * VERSION, locks and the overwrite swap).  Nothing else includes it.
 */
#ifndef TGT_ODBC_MARIADB_H
#define TGT_ODBC_MARIADB_H

#include <stddef.h>

#include "odbc_internal.h"

/* DECIMAL's limits: 65 digits, 30 of them after the point.  The lattice's
 * unconstrained numeric is DECIMAL(65,30). */
#define MDB_DECIMAL_PRECISION 65
#define MDB_DECIMAL_SCALE 30

/* Room for any column type spelling this dialect writes or reads. */
#define MDB_TYPE_MAX 64

/*
 * 1 when MariaDB stores the JSON number v[0..n) in DECIMAL(precision,
 * scale) exactly as written: at most precision - scale digits before the
 * point and no non-zero digit past `scale` digits after it (MariaDB rounds
 * those away with only a note, even in strict mode).  Exponents are
 * applied ("1.5e3" needs 4 digits before the point).  0 with *why set
 * (a static string) otherwise, also for NaN / Infinity.  Pure.
 */
int odbc_mariadb_decimal_fits(const char *v, size_t n, int precision, int scale, const char **why);

/* How column col of t is declared with lattice type `type`: the type's
 * spelling, except that a string key column is a VARCHAR short enough for
 * InnoDB's 3072-byte key (a key cannot be a LONGTEXT).  Into buf. */
const char *odbc_mariadb_column_type(const tgt_table *t, size_t col, tgt_coltype type, char *buf,
                                     size_t cap);

/* "`name` <type> [NOT NULL] [COMMENT 'source: <path>']": column col of t
 * with lattice type `type` as CREATE TABLE and ALTER TABLE ... MODIFY spell
 * it (MODIFY replaces the whole definition, comment and NOT NULL included). */
void odbc_mariadb_column_def(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, size_t col,
                             tgt_coltype type);

/* odbc_mariadb_merge.c: the dialect operations of the same names. */
void odbc_mariadb_stage_name(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t);
int odbc_mariadb_prepare_stage(odbc_driver *d, const tgt_table *t, tgt_error *err);
int odbc_mariadb_merge(odbc_driver *d, const tgt_table *t, int partial, unsigned long *changed,
                       tgt_error *err);
void odbc_mariadb_end_transaction(odbc_driver *d, int committed);
int odbc_mariadb_lock_for_merge(odbc_driver *d, const tgt_table **tables, size_t n, tgt_error *err);
int odbc_mariadb_activate_version(odbc_driver *d, const char *schema, const char *table,
                                  const char *version_column, const char *deleted_column,
                                  const char *version, int hard, unsigned long *affected,
                                  tgt_error *err);
int odbc_mariadb_drop_table(odbc_driver *d, const char *schema, const char *table, tgt_error *err);
int odbc_mariadb_replace_table(odbc_driver *d, const char *schema, const char *live,
                               const char *shadow, tgt_error *err);

#endif

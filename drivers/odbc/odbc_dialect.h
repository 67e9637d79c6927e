/*
 * odbc_dialect.h - everything that differs between the warehouses the ODBC
 * driver talks to.  The core of drivers/odbc (connection, statements,
 * diagnostics, the row writer, bulk inserts, transactions) is dialect-free;
 * what a warehouse spells or does its own way is one odbc_dialect, defined
 * in one file per warehouse (odbc_sqlite.c, odbc_mariadb.c, odbc_postgres.c)
 * and listed in odbc_dialects.c.
 *
 * A dialect is a static table.  Its operations receive the connected
 * odbc_driver and build their SQL with the core's helpers (odbc_internal.h:
 * odbc_sql_ident / odbc_sql_qualified quote through the dialect,
 * odbc_exec / odbc_query run statements and fill the tgt_error), so a
 * dialect never touches an ODBC handle unless it wants to.  Every pointer
 * marked "optional" may be NULL; the core then does the generic thing
 * named beside it.  Operations follow the contracts of the driver.h op of
 * the same name.
 *
 * Values are bound as text (SQL_C_CHAR, the row writer's canonical forms:
 * integers and numbers as written, booleans 1/0, dates YYYY-MM-DD, times
 * HH:MM:SS[.f] and timestamps YYYY-MM-DD HH:MM:SS[.f] in UTC, JSON text,
 * UTF-8 text); bind_type says which SQL type each lattice type is sent as.
 */
#ifndef TGT_ODBC_DIALECT_H
#define TGT_ODBC_DIALECT_H

#include <stddef.h>

#include "driver.h"

typedef struct odbc_driver odbc_driver;

typedef struct odbc_dialect {
    /* The `dialect` setting's name for it: "sqlite", "mariadb", "postgres". */
    const char *name;
    /* The warehouse's limits (driver.h): ident_max, transactional_ddl,
     * column_comments ...  Static, never NULL. */
    const tgt_driver_caps *caps;
    /* 1 when SQLGetInfo(SQL_DBMS_NAME) names this warehouse ("SQLite",
     * "MariaDB", "MySQL", "PostgreSQL"). */
    int (*matches)(const char *dbms_name);

    /* Identifiers are quoted with this character, doubled inside. */
    char quote;
    /* Appends the quoted name of table `name` of target schema `schema`
     * (the dialect's idea of a schema: a database, a schema, a prefix). */
    void (*qualified)(odbc_driver *d, tgt_sbuf *sb, const char *schema, const char *name);

    /* Statements run after each connect (session settings), NULL-terminated;
     * NULL for none. */
    const char *const *session_sql;
    /* Optional: statements that open, commit and roll back a transaction
     * with autocommit left on (e.g. SQLite's BEGIN IMMEDIATE); NULL: the
     * ODBC way (autocommit off, SQLEndTran). */
    const char *begin_sql;
    const char *commit_sql;
    const char *rollback_sql;

    /* The SQL spelling of a lattice type (into buf, returned) and the
     * lattice type of a spelling read back from the catalog (TGT_T_OTHER
     * when unknown).  type_from_sql(type_sql(t)) must give t back. */
    const char *(*type_sql)(tgt_coltype t, char *buf, size_t cap);
    tgt_coltype (*type_from_sql)(const char *spelling);
    /* The ODBC SQL type (SQL_VARCHAR, SQL_INTEGER ...) values of type t are
     * bound as; they travel as text either way. */
    int (*bind_type)(tgt_coltype t);
    /* Optional: 1 when the warehouse holds the number v[0..n) (a numeric,
     * real or double column's text, as the row writer keeps it) exactly as
     * written in a column of type t; else 0 with *why (static text).  For
     * a warehouse that would round instead of refusing (MariaDB's DECIMAL
     * drops extra fraction digits with a note): the bulk write then refuses
     * the row itself, as an invalid record.  NULL: every value is sent. */
    int (*value_fits)(tgt_coltype t, const char *v, size_t n, const char **why);

    /* Refines the classification of a failed statement: the core already
     * set connection_lost for SQLSTATE class 08 and conflict for 40001/
     * 40P01; a dialect adds what its driver reports otherwise (SQLite's
     * "database is locked").  Optional. */
    void (*classify)(odbc_driver *d, const char *sqlstate, long native, const char *message,
                     tgt_error *err);

    /* Optional: appends the quoted name of the table of commit markers
     * (odbc_commit.c), which makes commit_status work; NULL: no markers,
     * commit_status reports that it cannot tell. */
    void (*marker_table)(odbc_driver *d, tgt_sbuf *sb);
    /* Optional, instead of markers: the server's own transaction ids.
     * txn_begin, inside the transaction begin() opened, keeps its id in
     * d->txn_marker (kept across a reconnect); txn_status answers
     * commit_status from it (PostgreSQL: txid_current, txid_status). */
    int (*txn_begin)(odbc_driver *d, tgt_error *err);
    int (*txn_status)(odbc_driver *d, tgt_txn_status *out, tgt_error *err);

    /* Rows one INSERT of the bulk path carries (VALUES (...), (...), ...),
     * executed one statement at a time; 0 or 1 sends parameter arrays
     * (SQL_ATTR_PARAMSET_SIZE) instead.  For ODBC drivers that take an
     * array row by row and pay a whole SQLExecute for each (libsqliteodbc
     * prepares the statement again every time): fewer, larger statements
     * cost less.  Capped so that a statement has at most 30,000 parameters
     * (SQLite's limit is 32,766). */
    size_t rows_per_statement;
    /* Optional: text put before the bulk path's INSERT (NULL: none).  For
     * ODBC drivers that keep a statement compiled only when its text looks
     * like a query: libsqliteodbc compiles any other statement again at
     * every SQLExecute and every row of a parameter array, but keeps one
     * that starts with WITH, so SQLite's prefix is a no-op WITH clause. */
    const char *insert_prefix;
    /* Optional: a query whose one cell is the largest command, in bytes, the
     * server takes (MariaDB @@max_allowed_packet); read after each connect.
     * A bigger one makes the server drop the connection, so the bulk path
     * sends smaller rounds and refuses a row that cannot fit on its own.
     * NULL: no limit. */
    const char *packet_limit_sql;

    /* The table operations (driver.h).  All required. */
    int (*describe_table)(odbc_driver *d, const char *schema, const char *table,
                          tgt_live_table *out, tgt_error *err);
    int (*ensure_schema)(odbc_driver *d, const char *schema, tgt_error *err);
    int (*create_table)(odbc_driver *d, const tgt_table *t, tgt_error *err);
    int (*add_column)(odbc_driver *d, const tgt_table *t, size_t col, tgt_error *err);
    /* Widens every column in cols[0..n) to its t->columns[i].type in one
     * change (SQLite rebuilds the table once however many). */
    int (*alter_column_types)(odbc_driver *d, const tgt_table *t, const size_t *cols, size_t n,
                              tgt_error *err);

    /* Staging: appends the quoted name of t's staging table (where a
     * TGT_WRITE_STAGING write goes), and makes sure it exists, empty, with
     * t's existing columns plus ODBC_SEQ_COLUMN (integer) and
     * ODBC_PRESENT_COLUMN (text: the presence mask, NULL when the record
     * carried every column).  Called inside the core's transaction. */
    void (*stage_name)(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t);
    int (*prepare_stage)(odbc_driver *d, const tgt_table *t, tgt_error *err);
    /* merge (driver.h): the staged rows of t into t, then the stage emptied. */
    int (*merge)(odbc_driver *d, const tgt_table *t, int partial, unsigned long *changed,
                 tgt_error *err);
    /* After a transaction ends (committed 1: COMMIT succeeded; 0: rolled
     * back or failed): what the driver still believes about its staging
     * tables (odbc_stage_forget_all when they may be gone).  Optional. */
    void (*end_transaction)(odbc_driver *d, int committed);

    int (*lock_for_merge)(odbc_driver *d, const tgt_table **tables, size_t n, tgt_error *err);
    int (*activate_version)(odbc_driver *d, const char *schema, const char *table,
                            const char *version_column, const char *deleted_column,
                            const char *version, int hard, unsigned long *affected, tgt_error *err);
    int (*set_primary_key)(odbc_driver *d, const tgt_table *t, tgt_error *err);
    int (*drop_table)(odbc_driver *d, const char *schema, const char *table, tgt_error *err);
    int (*replace_table)(odbc_driver *d, const char *schema, const char *live, const char *shadow,
                         tgt_error *err);
    /* Tables one transaction may write to (driver.h). */
    size_t tables_per_transaction;
} odbc_dialect;

/* The trailing columns of a staging table; no normalised name has a space. */
#define ODBC_SEQ_COLUMN "target-pg sequence"
#define ODBC_PRESENT_COLUMN "target-pg present"

/* The dialects this binary knows (odbc_dialects.c). */
extern const odbc_dialect odbc_sqlite_dialect;
extern const odbc_dialect odbc_mariadb_dialect;
extern const odbc_dialect odbc_postgres_dialect;

/* The dialect called `name` (the setting), or NULL. */
const odbc_dialect *odbc_dialect_by_name(const char *name);
/* The dialect whose matches() accepts dbms_name, or NULL. */
const odbc_dialect *odbc_dialect_detect(const char *dbms_name);
/* Appends "sqlite, mariadb, ...": the known names, for messages. */
void odbc_dialect_names(tgt_sbuf *out);

#endif

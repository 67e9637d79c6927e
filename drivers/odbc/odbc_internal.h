/*
 * odbc_internal.h - private to drivers/odbc/: the driver struct and the
 * helpers its files and its dialects share.
 *
 * Files:
 *   odbc_driver.c   the ops table, tgt_odbc_driver_new, connect/free,
 *                   transactions, commit_status; the ops that only hand on
 *                   to the dialect
 *   odbc_commit.c   commit markers: commit_status after a lost COMMIT reply
 *   odbc_exec.c     running statements and queries; ODBC diagnostics ->
 *                   tgt_error (SQLSTATE classified)
 *   odbc_sql.c      quoting through the dialect, column lists, the statement
 *                   shapes the dialects share, the stage cache
 *   odbc_rows.c     the row writer: the driver's own bulk format
 *   odbc_bulk.c     write_begin / write_data / write_end: that format into
 *                   bound parameter arrays
 *   odbc_dialects.c the list of dialects, by name and by SQL_DBMS_NAME
 *   odbc_sqlite.c   the SQLite dialect (libsqliteodbc)
 *
 * Ownership: the odbc_driver owns its ODBC handles (ENV, DBC, the bulk
 * STMT), the stage cache and every buffer; odbc_driver's free releases them
 * all.  Every other STMT is freed by the function that allocated it.
 */
#ifndef TGT_ODBC_INTERNAL_H
#define TGT_ODBC_INTERNAL_H

#include <sql.h>
#include <sqlext.h>
#include <stddef.h>

#include "driver.h"
#include "odbc_dialect.h"

/* ---- the bulk format (odbc_rows.c writes it, odbc_bulk.c reads it) ------
 * Per value one tag byte: ODBC_TAG_NULL, or ODBC_TAG_VALUE followed by a
 * 4-byte length (host order) and the bytes.  A row ends with ODBC_TAG_END,
 * or with ODBC_TAG_STAGED, an 8-byte sequence, a 4-byte mask length (0: the
 * record carried every column) and the mask as '0'/'1' characters, one per
 * table column. */
#define ODBC_TAG_NULL 'N'
#define ODBC_TAG_VALUE 'V'
#define ODBC_TAG_END 'E'
#define ODBC_TAG_STAGED 'S'

extern const tgt_row_ops odbc_row_ops;

/* One staging table the dialect made in the open transaction. */
typedef struct odbc_stage {
    char *key;           /* owned: schema 0x1F name */
    unsigned long shape; /* the tgt_table shape_version it was made for */
    size_t n_columns;    /* existing columns it was made with */
    int ready;           /* exists (and is empty or holds this transaction's rows) */
    int filled;          /* rows were staged since the last merge */
} odbc_stage;

/* The open bulk write (odbc_bulk.c). */
typedef struct odbc_bulk {
    int open;
    const tgt_table *table; /* borrowed for the write */
    tgt_write_mode mode;
    /* the table's shape_version the statements were prepared for */
    unsigned long insert_shape;
    size_t group;         /* rows per statement (dialect rows_per_statement), 1: arrays */
    SQLHSTMT stmt1;       /* with group > 1: the one-row INSERT for a round's last rows */
    char *insert1_sql;    /* owned: what stmt1 was prepared from */
    SQLHSTMT stmt;        /* prepared INSERT, NULL when none */
    char *insert_sql;     /* owned: what stmt was prepared from */
    size_t n_params;      /* values per row (columns, + 2 when staging) */
    size_t n_data;        /* the table's existing columns */
    size_t n_alloc;       /* parameters the per-parameter arrays below were made for */
    size_t *param_column; /* owned: table column index per data param */
    tgt_sbuf pending;     /* the bytes of the rows not yet sent, from a whole row on */
    size_t *offsets;      /* owned: per buffered row and param, start of the value (or -1) */
    size_t *lengths;      /* owned: per buffered row and param, its length */
    size_t parse_pos;     /* where the next row starts in pending */
    size_t round_start;   /* where the round's first buffered row starts in pending */
    size_t n_rows;        /* complete rows buffered */
    size_t cap_rows;
    size_t *max_len;   /* owned: per param, the longest buffered value */
    char **column_buf; /* owned: per param, the bound array */
    size_t *column_cap;
    SQLLEN **indicators;  /* owned: per param, the length/indicator array */
    SQLUSMALLINT *status; /* owned: per row of a flush, its outcome */
    unsigned long sent;   /* rows executed so far in this write */
    size_t round_packet;  /* the round's command size as the server counts it (estimate) */
} odbc_bulk;

struct odbc_driver {
    tgt_driver base;    /* first: an odbc_driver * is a tgt_driver * */
    tgt_driver_ops ops; /* base.ops points here: caps become the dialect's at connect */
    const odbc_dialect *dialect;
    SQLHENV env;
    SQLHDBC dbc;
    int connected;
    int in_txn;
    char dbms_name[64];
    char dbms_version[64];
    tgt_sbuf sql; /* scratch builder, reset for each statement */
    odbc_bulk bulk;
    odbc_stage *stages; /* owned */
    size_t n_stages;
    size_t cap_stages;
    /* The marker of the transaction begin() opened (commit_status), "" when
     * none; kept across a reconnect. */
    char txn_marker[64];
    int marker_ready; /* the marker table exists and was pruned on this connection */
    unsigned long txn_counter;
    /* The answer of the dialect's packet_limit_sql on this connection, 0:
     * no limit (odbc_bulk.c). */
    size_t max_packet;
};

/* ---- odbc_exec.c ---------------------------------------------------------- */

/* Fills err (TGT_ERR_LOAD) from the diagnostics of handle: "<DBMS>: <first
 * message>" with SQLSTATE, the further records as detail, where = `where`;
 * classifies (connection_lost for class 08, conflict for 40001/40P01, then
 * the dialect's classify).  Returns -1. */
int odbc_fail(odbc_driver *d, SQLSMALLINT handle_type, SQLHANDLE handle, tgt_error *err,
              const char *where);

/* Runs one statement (no parameters, no result set kept).  *rows (may be
 * NULL) receives SQLRowCount.  0, or -1 with err filled, where = `what`. */
int odbc_exec(odbc_driver *d, const char *sql, unsigned long *rows, tgt_error *err,
              const char *what, ...) __attribute__((format(printf, 5, 6)));

/* A query's rows as text: cells[r * n_cols + c], NULL for SQL NULL. */
typedef struct odbc_result {
    size_t n_rows;
    size_t n_cols;
    char **cells; /* owned, each owned */
} odbc_result;

void odbc_result_free(odbc_result *r);
/* The cell, or NULL (also out of range). */
const char *odbc_result_get(const odbc_result *r, size_t row, size_t col);

/* Runs a query with text parameters (values never go into SQL text) and
 * fetches every row.  out is initialised here; the caller frees it with
 * odbc_result_free (also after an error).  0 or -1. */
int odbc_query(odbc_driver *d, const char *sql, const char *const *params, size_t n_params,
               odbc_result *out, tgt_error *err, const char *what, ...)
    __attribute__((format(printf, 7, 8)));

/* odbc_exec with text parameters; *rows (may be NULL) gets SQLRowCount. */
int odbc_exec_params(odbc_driver *d, const char *sql, const char *const *params, size_t n_params,
                     unsigned long *rows, tgt_error *err, const char *what, ...)
    __attribute__((format(printf, 7, 8)));

/* Copies src into err unless err already holds an error; returns -1. */
int odbc_error_forward(tgt_error *err, const tgt_error *src);

/* 1 when an ODBC return code is a success (with or without info). */
#define ODBC_OK(rc) ((rc) == SQL_SUCCESS || (rc) == SQL_SUCCESS_WITH_INFO)

/* ---- odbc_driver.c -------------------------------------------------------- */

/* After losing a creation race (create_table found t made meanwhile by
 * another loader): brings the live table to t's shape through the dialect,
 * adding what it lacks and widening in one alter_column_types what is
 * narrower.  0, or -1 with err. */
int odbc_conform_table(odbc_driver *d, const tgt_table *t, tgt_error *err);

/* ---- odbc_sql.c ----------------------------------------------------------- */

/* A quoted identifier (the dialect's quote character, doubled inside). */
void odbc_sql_ident(odbc_driver *d, tgt_sbuf *sb, const char *ident);
/* The dialect's qualified table name. */
void odbc_sql_qualified(odbc_driver *d, tgt_sbuf *sb, const char *schema, const char *name);
/* t's existing columns in order, comma-separated, each after `prefix`. */
void odbc_sql_columns(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, const char *prefix);
/* t's key columns in key order, each after `prefix`. */
void odbc_sql_key_columns(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, const char *prefix);
/* "<a>k1 = <b>k1 AND <a>k2 = <b>k2 ...": t's keys matched between two
 * row sources (a, b: prefixes such as "t.", "n."). */
void odbc_sql_key_match(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, const char *a,
                        const char *b);
/* "INSERT INTO <t> (<cols>) SELECT <prefix><cols> FROM ": the caller
 * appends the row source and what follows. */
void odbc_sql_insert_select(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, const char *prefix);
/* "DELETE FROM <t> WHERE (<keys>) IN (SELECT <prefix><keys> FROM ": the
 * caller appends the row source, its condition and the closing ')'. */
void odbc_sql_delete_keys_in(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, const char *prefix);
/* "(<prefix>present IS NULL OR substr(<prefix>present, i + 1, 1) = '1')":
 * the staged row carries column i (ODBC_PRESENT_COLUMN, the presence mask,
 * is NULL when the record carried every column). */
void odbc_sql_carries(odbc_driver *d, tgt_sbuf *sb, const char *prefix, size_t i);

/* Appends the definition of column col of t, of type `type`, for CREATE
 * TABLE / ADD COLUMN. */
typedef void (*odbc_column_def_fn)(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, size_t col,
                                   tgt_coltype type);
/* Room for a dialect's type spelling (type_sql's buffer). */
#define ODBC_TYPE_SQL_MAX 64
/* The plain odbc_column_def_fn: "<name> <dialect's type_sql>", NOT NULL
 * for a key column. */
void odbc_sql_column_def(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, size_t col,
                         tgt_coltype type);
/* "CREATE TABLE <t> (<column_def of every column>, PRIMARY KEY (<keys>))"
 * (no IF NOT EXISTS: a table made meanwhile must fail the statement);
 * the caller appends table options. */
void odbc_sql_create_table(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t,
                           odbc_column_def_fn column_def);

/* What an ACTIVATE_VERSION statement needs (driver.h activate_version),
 * plus the dialect's spellings of the current time and of an exact integer
 * type the version parameter is cast to.  All borrowed. */
typedef struct odbc_version_sql {
    const char *schema, *table, *version_column, *deleted_column;
    int hard;
    const char *now_sql;      /* "pg_catalog.now()", "UTC_TIMESTAMP(6)" ... */
    const char *integer_type; /* "bigint", "DECIMAL(65,0)", "INTEGER" */
} odbc_version_sql;
/* "DELETE FROM <t>" (hard) or "UPDATE <t> SET <deleted> = <now>", then
 * "WHERE (<version> < CAST(? AS <integer type>) OR <version> IS NULL)"
 * [" AND <deleted> IS NULL"]: the one parameter is the version. */
void odbc_sql_activate_version(odbc_driver *d, tgt_sbuf *sb, const odbc_version_sql *v);
/* Builds v's statement in d->sql and runs it with the version as its one
 * parameter; *affected gets the rows marked or deleted.  `where` names the
 * table for an error, in the dialect's way ("while activating ..."). */
int odbc_sql_exec_activate_version(odbc_driver *d, const odbc_version_sql *v, const char *version,
                                   const char *where, unsigned long *affected, tgt_error *err);

/* 1 when t's hard deletions are staged as marks: hard_delete with the
 * deleted-at column existing. */
int odbc_deletes_marked(const tgt_table *t);
/* " AND <prefix><deleted-at> IS NULL" when odbc_deletes_marked(t), else
 * nothing: the key's newest record is not a deletion. */
void odbc_sql_not_deleted(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, const char *prefix);
/* 1 when column i of t exists and is not a key column. */
int odbc_is_data(const tgt_table *t, size_t i);
/* 1 when column i is one the merge compares: it exists, is not a key and
 * its change is a change of the row (driver.h TGT_COLUMN_IS_COMPARED). */
int odbc_is_compared(const tgt_table *t, size_t i);
/* Number of t's existing columns. */
size_t odbc_existing_columns(const tgt_table *t);
/* Whether column col of t is a key column. */
int odbc_is_key(const tgt_table *t, size_t col);
/* 0 when sb is whole, else -1 with err (out of memory). */
int odbc_sql_check(const tgt_sbuf *sb, tgt_error *err);

/* The stage cache entry of t (created on first use; NULL on no memory). */
odbc_stage *odbc_stage_get(odbc_driver *d, const tgt_table *t, tgt_error *err);
/* The entry, or NULL. */
odbc_stage *odbc_stage_find(odbc_driver *d, const char *schema, const char *name);
/* Marks every stage not ready (a transaction ended: temp tables may be gone). */
void odbc_stage_forget_all(odbc_driver *d);
void odbc_stage_free_all(odbc_driver *d);

/* ---- odbc_commit.c -------------------------------------------------------- */

/* Creates the dialect's marker table once per connection (outside any
 * transaction) and prunes old markers; a no-op without marker_table. */
int odbc_marker_setup(odbc_driver *d, tgt_error *err);
/* Inside the transaction begin() opened: writes its marker (and drops this
 * session's previous one). */
int odbc_marker_write(odbc_driver *d, tgt_error *err);
/* The ops' commit_status (driver.h). */
int odbc_commit_status(tgt_driver *base, tgt_txn_status *out, tgt_error *err);

/* ---- odbc_bulk.c ---------------------------------------------------------- */

int odbc_write_begin(tgt_driver *base, const tgt_table *t, tgt_write_mode mode, tgt_error *err);
int odbc_write_data(tgt_driver *base, const char *data, size_t len, tgt_error *err);
int odbc_write_end(tgt_driver *base, unsigned long *rows, tgt_error *err);
/* After a connect: d->max_packet from the dialect's packet_limit_sql (0
 * without one, or when the answer is not a number).  0 or -1. */
int odbc_bulk_read_limit(odbc_driver *d, tgt_error *err);
/* Drops an open write (rollback) and frees the bulk state's buffers. */
void odbc_bulk_abort(odbc_driver *d);
void odbc_bulk_free(odbc_driver *d);

#endif

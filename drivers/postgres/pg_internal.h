/*
 * pg_internal.h - private to drivers/postgres/: the driver struct and the
 * helpers its files share.  Nothing outside this directory includes it
 * (except the driver's own integration check, which peeks at the connection).
 *
 * Files:
 *   pg_driver.c  the ops table, tgt_postgres_driver_new, connect/free and
 *                transactions (with commit_status after a lost COMMIT reply)
 *   pg_exec.c    running a statement and turning a failure into a tgt_error
 *   pg_sql.c     quoting identifiers and literals into a tgt_sbuf
 *   pg_cache.c   what the driver remembers per table (staging table, cached
 *                COPY and merge statements)
 *   pg_ddl.c     describe_table, ensure_schema, create_table, add_column,
 *                alter_column_types
 *   pg_copy.c    write_begin / write_data / write_end and staging tables
 *   pg_encode.c, pg_encode_binary.c, pg_binary.c  the row writer: COPY
 *                text and binary rows, the binary forms of values
 *   pg_merge.c   merge, lock_for_merge
 *   pg_merge_partial.c  the merge of a batch whose records omit properties
 *   pg_version.c activate_version (ACTIVATE_VERSION)
 *   pg_keys.c    set_primary_key (moving a key)
 *   pg_swap.c    drop_table, replace_table (load_method overwrite)
 *
 * Ownership: the pg_driver owns its connection, its table cache and every
 * string in it; pg_driver_free (the ops' free) releases all of them.  Every
 * PGresult is cleared by the function that received it, on every path.
 */
#ifndef TGT_PG_INTERNAL_H
#define TGT_PG_INTERNAL_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "driver.h"

/* The trailing sequence column of a staging table and its presence mask
 * (driver.h), text.  No normalised name has a space. */
#define PG_SEQ_COLUMN "target-pg sequence"
#define PG_PRESENT_COLUMN "target-pg present"
/* "tgt_stage_" + 8 hex digits + NUL, with room to spare. */
#define PG_STAGE_NAME_MAX 32

/* The forms of the merge statement (pg_merge.c): newest row per key picked
 * by a sort, each staged row as it is (a batch that repeats no key), or the
 * partial rows' form (pg_merge_partial.c). */
enum { PG_MERGE_SORTED, PG_MERGE_UNSORTED, PG_MERGE_PARTIAL, PG_MERGE_FORMS };

/* What the driver remembers about one target table, keyed by (schema, name).
 * Each cached statement is valid for the shape_version (and column count) it
 * was built for; a mismatch rebuilds it. */
typedef struct pg_table_cache {
    char *schema;                  /* owned */
    char *name;                    /* owned */
    uint32_t hash;                 /* FNV-1a of schema 0x1F name: fast lookup and the stage name */
    char stage[PG_STAGE_NAME_MAX]; /* temporary staging table, unquoted, in pg_temp */
    int stage_ready;               /* stage exists with the shape stage_shape */
    unsigned long stage_shape;
    char *copy_sql[2]; /* owned: COPY ... FROM STDIN per tgt_write_mode, or NULL */
    unsigned long copy_shape[2];
    size_t copy_ncols[2];
    /* owned: the merge statement per PG_MERGE_* form, or NULL */
    char *merge_sql[PG_MERGE_FORMS];
    unsigned long merge_shape[PG_MERGE_FORMS];
    size_t merge_ncols[PG_MERGE_FORMS];
    /* A batch of this table repeated a key this run: its merges take the
     * sorted form straight away (pg_merge.c). */
    int key_repeats;
    int copy_binary[2]; /* copy_sql[m] takes binary tuples (tgt_pg_binary_table) */
} pg_table_cache;

typedef struct pg_driver {
    tgt_driver base;         /* first: a pg_driver * is a tgt_driver * */
    PGconn *conn;            /* NULL until connected */
    pg_table_cache *copying; /* the table of the open COPY, NULL when none is open */
    /* the open COPY's mode, and whether it takes binary tuples */
    tgt_write_mode copy_mode;
    int copy_binary;
    /* the open COPY's end was sent (pg_write_close): write_end only collects
     * its outcome; meaningful only while copying is set */
    int copy_closed;
    pg_table_cache **tables; /* owned; pointers so entries stay put when it grows */
    size_t n_tables;
    size_t cap_tables;
    tgt_sbuf sql; /* scratch builder, reset for each statement */
    /* Why the last quoting failed when it was not memory (e.g. an invalid
     * multibyte character); reported and cleared by pg_sql_check. */
    char quote_error[256];
    /* The server's id of the transaction begin() opened last (txid_current(),
     * decimal), kept across a reconnect so commit_status can ask about it;
     * "" when none. */
    char xid[32];
    /* tables_per_transaction(), from the server's lock settings at connect. */
    size_t tables_per_txn;
} pg_driver;

/* ---- pg_exec.c ---------------------------------------------------------- */

/* Fills err (TGT_ERR_LOAD) from a failed result: "PostgreSQL: <primary>",
 * SQLSTATE, detail, hint; where is `where` (may be NULL) or, when
 * prefer_context is set and the server sent one, the CONTEXT field.  res may
 * be NULL (then libpq's connection message is used).  A connection that is
 * gone is reported as "connection to PostgreSQL lost: ...".  Does not clear
 * res.  Returns -1. */
int pg_fail(pg_driver *d, const PGresult *res, int prefer_context, tgt_error *err,
            const char *where);

/* Runs sql (possibly several statements: they form one implicit transaction
 * unless a transaction is open).  On success returns the (last) result, which
 * the caller PQclears.  When the result status is not `expect`, fills err via
 * pg_fail with where = the formatted `what` ("while adding column ..."),
 * clears the result and returns NULL. */
PGresult *pg_exec(pg_driver *d, const char *sql, ExecStatusType expect, tgt_error *err,
                  const char *what, ...) __attribute__((format(printf, 5, 6)));

/* Same with text parameters $1..$n (values are never spliced into SQL). */
PGresult *pg_exec_params(pg_driver *d, const char *sql, int n_params, const char *const *values,
                         ExecStatusType expect, tgt_error *err, const char *what, ...)
    __attribute__((format(printf, 7, 8)));

/* pg_exec expecting PGRES_COMMAND_OK, result cleared.  0 or -1. */
int pg_command(pg_driver *d, const char *sql, tgt_error *err, const char *what, ...)
    __attribute__((format(printf, 4, 5)));

/* Copies src into err unless err already holds an error (first error wins).
 * Returns -1.  For callers that inspect a failure in a local tgt_error before
 * deciding whether it is one. */
int pg_error_forward(tgt_error *err, const tgt_error *src);

/* Best-effort ROLLBACK of an open transaction block (no error reporting); for
 * cleaning up after a failure inside the driver's own transactions. */
void pg_abort_quietly(pg_driver *d);

/* Copies a libpq or server message into buf as one line: newlines become
 * spaces, trailing whitespace is dropped.  Returns buf. */
const char *pg_one_line(const char *msg, char *buf, size_t cap);

/* ---- pg_sql.c ----------------------------------------------------------- */

/* Append a quoted identifier ("a""b"), a schema-qualified name, or a quoted
 * literal.  On failure the builder goes broken (see pg_sql_check). */
void pg_sql_ident(pg_driver *d, tgt_sbuf *sb, const char *ident);
void pg_sql_qualified(pg_driver *d, tgt_sbuf *sb, const char *schema, const char *name);
void pg_sql_literal(pg_driver *d, tgt_sbuf *sb, const char *value, size_t len);

/* Appends t's existing columns (exists != 0), in order, comma-separated,
 * each preceded by `prefix` (e.g. "EXCLUDED."; may be ""). */
void pg_sql_columns(pg_driver *d, tgt_sbuf *sb, const tgt_table *t, const char *prefix);
/* Appends t's key columns in key order, comma-separated. */
void pg_sql_key_columns(pg_driver *d, tgt_sbuf *sb, const tgt_table *t);

/* Number of t's columns with exists != 0. */
size_t pg_existing_columns(const tgt_table *t);

/* 0 when every append to sb succeeded; otherwise fills err (out of memory,
 * or why quoting failed) and returns -1. */
int pg_sql_check(pg_driver *d, const tgt_sbuf *sb, tgt_error *err);
/* pg_sql_check, then hands the built statement to the caller (who frees it);
 * NULL with err set on failure, sb freed either way. */
char *pg_sql_take(pg_driver *d, tgt_sbuf *sb, tgt_error *err);

/* ---- pg_cache.c --------------------------------------------------------- */

/* The entry for (schema, name), created on first use.  NULL (err set) when
 * out of memory.  Borrowed: it lives until pg_cache_free. */
pg_table_cache *pg_cache_get(pg_driver *d, const char *schema, const char *name, tgt_error *err);
/* The entry, or NULL when the table was never seen. */
pg_table_cache *pg_cache_find(pg_driver *d, const char *schema, const char *name);
/* Forgets every staging table (after a rollback or a failed commit, temp
 * tables created in that transaction are gone). */
void pg_cache_forget_stages(pg_driver *d);
void pg_cache_free(pg_driver *d);

/* ---- the ops, defined in pg_ddl.c, pg_copy.c, pg_merge.c ------------------ */

int pg_describe_table(tgt_driver *base, const char *schema, const char *table, tgt_live_table *out,
                      tgt_error *err);
int pg_ensure_schema(tgt_driver *base, const char *schema, tgt_error *err);
int pg_create_table(tgt_driver *base, const tgt_table *t, tgt_error *err);
int pg_add_column(tgt_driver *base, const tgt_table *t, size_t col, tgt_error *err);
int pg_alter_column_types(tgt_driver *base, const tgt_table *t, const size_t *cols, size_t n,
                          tgt_error *err);

int pg_write_begin(tgt_driver *base, const tgt_table *t, tgt_write_mode mode, tgt_error *err);
int pg_write_data(tgt_driver *base, const char *data, size_t len, tgt_error *err);
int pg_write_end(tgt_driver *base, unsigned long *rows, tgt_error *err);
int pg_write_close(tgt_driver *base, tgt_error *err);
int pg_write_ready(tgt_driver *base);
int pg_write_room(tgt_driver *base);
/* Ends an open COPY with a failure and drains its results (rollback). */
void pg_copy_abort(pg_driver *d);

int pg_merge(tgt_driver *base, const tgt_table *t, int partial, unsigned long *changed,
             tgt_error *err);
/* Whether column col of t is a key column. */
int pg_merge_is_key(const tgt_table *t, size_t col);
/* hard_delete with a deletion mark column that exists. */
int pg_merge_deletes_marked(const tgt_table *t);
/* Appends a condition true when column c differs between the rows `left`
 * and `right` (prefixes such as "t." and "EXCLUDED."), NULL-safe and down
 * to the written digits: numeric with its scale (1.0 and 1.00 differ),
 * jsonb, json and unknown types as text. */
void pg_merge_append_differs(pg_driver *d, tgt_sbuf *sb, const tgt_column *c, const char *left,
                             const char *right);
/* How costly pg_merge_append_differs's test of c is, 0 (a fixed-width
 * comparison) to 3 (formatting both sides as text): a changed row is
 * decided by its first differing column, so cheap tests go first. */
int pg_merge_compare_cost(const tgt_column *c);

/* pg_merge_partial.c: the merge statement for a stage holding partial rows
 * (pg_merge's `partial`), built into sb. */
void pg_merge_build_partial(pg_driver *d, tgt_sbuf *sb, const tgt_table *t,
                            const pg_table_cache *tc);
int pg_lock_for_merge(tgt_driver *base, const tgt_table **tables, size_t n, tgt_error *err);

/* pg_version.c, pg_keys.c, pg_swap.c */
int pg_activate_version(tgt_driver *base, const char *schema, const char *table,
                        const char *version_column, const char *deleted_column, const char *version,
                        int hard, unsigned long *affected, tgt_error *err);
int pg_set_primary_key(tgt_driver *base, const tgt_table *t, tgt_error *err);
/* The primary key of schema.table: 1 with its constraint name and columns
 * ("a, b") filled, 0 when it has none ("none"), -1 on error. */
int pg_primary_key(pg_driver *d, const char *schema, const char *table,
                   char constraint[TGT_IDENT_MAX + 1], char *columns, size_t columns_cap,
                   tgt_error *err);
int pg_drop_table(tgt_driver *base, const char *schema, const char *table, tgt_error *err);
int pg_replace_table(tgt_driver *base, const char *schema, const char *live, const char *shadow,
                     tgt_error *err);

#endif

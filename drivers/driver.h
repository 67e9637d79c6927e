/*
 * driver.h - the one interface between the core and a warehouse.
 *
 * The core never includes libpq or sql.h; it talks to a tgt_driver through
 * this table of operations.  A driver sees this header, the row writer
 * (row.h, with datetime.h's checked date-times), the table model (table.h),
 * the settings (config.h), the string builder and the error type, nothing
 * else.  All identifiers are quoted by the driver; values never appear in
 * SQL text (they travel in the bulk stream or as parameters).
 *
 * Construction: main.c asks the registry (registry.h) for the driver the
 * `driver` setting names; connect() reads that driver's own connection
 * settings from the config (each driver's public header lists them, e.g.
 * postgres/postgres.h).
 *
 * Transactions: the core calls begin() before the first write of a commit
 * point, then any number of write_begin/write_data/write_end sequences (one
 * bulk stream open at a time; write_close, where the driver has it, may come
 * between the last write_data and write_end), merge() for keyed tables at
 * the commit point, then commit().  DDL (ensure_schema, create_table, add_column,
 * alter_column_types) is issued outside that transaction: the core commits
 * pending rows before it changes a table, and each DDL call is atomic on its
 * own.  On any error the core calls rollback() (which must be safe to call
 * with no transaction open or a broken connection) and stops.
 *
 * Errors: every fallible op returns 0, or -1 with err filled (message,
 * detail, hint, SQLSTATE where the warehouse has one; never a password).
 * The driver classifies, the core never reads SQLSTATE classes or the
 * warehouse's message text; the flags of error.h it sets (key_clash: see
 * TGT_WRITE_DIRECT):
 *   transient        (connect only) the same call may succeed later: the
 *                    core retries with backoff (retry.c);
 *   connection_lost  the connection broke: the core reconnects (connect
 *                    again on the same tgt_driver) and replays every
 *                    uncommitted row from its spool;
 *   commit_unknown   with connection_lost, from commit(): the COMMIT may
 *                    have taken effect; the core asks commit_status()
 *                    after reconnecting and never guesses;
 *   conflict         a deadlock or serialization failure: the transaction
 *                    was rolled back and may simply be run again;
 *   bulk_row         a row of the open bulk write was refused: its 1-based
 *                    position in that write (rows as the row writer
 *                    wrote them);
 *   bulk_row_exact   with bulk_row: 1 when that is the refused row itself,
 *                    0 when it is only how far the write had got (the core
 *                    then searches for the row by bisection).
 * A refusal with no bulk_row (e.g. at write_end or merge) makes the core
 * bisect the batch to find the record.
 *
 * Rows: the driver's `rows` (row.h) turns the core's checked, typed values
 * into its own bulk format; the core only buffers those bytes and hands them
 * back to write_data of the same driver.  A staging write (TGT_WRITE_
 * STAGING) carries per row the batch sequence number (the newest record per
 * key wins at merge) and the presence mask (which columns the record
 * carried; an absent one keeps its stored value).
 *
 * Tables: describe_table returns the live columns with their lattice type
 * (parsed from the warehouse's own spelling, kept in sql_type for
 * messages), NOT NULL, the primary key, and for each column the source path
 * target-pg recorded when it created the column (source_path.h; PostgreSQL
 * keeps it as the column comment), from which the core maps properties to
 * existing columns across runs.
 */
#ifndef TGT_DRIVER_H
#define TGT_DRIVER_H

#include <stddef.h>

#include "config.h"
#include "error.h"
#include "row.h"
#include "sbuf.h"
#include "table.h"

typedef enum tgt_write_mode {
    TGT_WRITE_APPEND = 0, /* rows go straight into the table */
    TGT_WRITE_STAGING,    /* rows go into the table's staging area + sequence column */
    /* Rows of a keyed table go straight into it, written like APPEND's (no
     * sequence, no presence mask): the first load of a new or empty table,
     * with no staging and no merge.  The core uses it only while it expects
     * none of the keys in the table; the warehouse's primary key checks it.
     * A key the table holds already (a concurrent loader's, or an earlier
     * batch's) or one the write holds twice fails the write with
     * err->key_clash (error.h) and nothing of it lands; the core then sends
     * the batch again in STAGING mode, so the newest record per key wins as
     * always.  A new key's absent columns are NULL, as a merge would leave
     * them. */
    TGT_WRITE_DIRECT
} tgt_write_mode;

/* What the server says about a transaction whose COMMIT reply was lost. */
typedef enum tgt_txn_status {
    TGT_TXN_COMMITTED = 0,
    TGT_TXN_ABORTED,    /* rolled back, or never reached the server's COMMIT */
    TGT_TXN_IN_PROGRESS /* the old session is still finishing it: ask again */
} tgt_txn_status;

/*
 * What the warehouse can hold, stated by the driver so that the core asks
 * instead of assuming PostgreSQL's numbers.  Static (the same for every
 * server the driver talks to); every field is set.
 */
typedef struct tgt_driver_caps {
    /* Bytes an identifier (schema, table, column) may hold.  A longer name
     * gets the cut-and-hash rule of naming.h at this length.  A warehouse
     * that counts characters states the same number in bytes (64 bytes
     * always fit in 64 characters); one with no limit of its own states 0.
     * The core clamps it to [TGT_IDENT_MIN, TGT_IDENT_MAX] (naming.h), the
     * sizes of its fixed buffers. */
    size_t ident_max;
    /* Columns a table may have: more fails the SCHEMA. */
    size_t max_columns;
    /* Columns flattening may create before deeper objects stay JSON: what
     * a row may hold in practice (row size), at most max_columns. */
    size_t column_budget;
    /* Nesting levels of a JSON value the warehouse reads; a deeper value is
     * an invalid record. */
    size_t json_max_depth;
    /* 1 when DDL runs inside a transaction and rolls back with it (the core
     * may then replace a table inside the transaction that commits its
     * rows); 0 when DDL commits an open transaction (MariaDB). */
    int transactional_ddl;
    /* 1 when columns take comments, where describe_table keeps each
     * column's source path; 0 when the driver keeps them elsewhere or not at
     * all (then the core maps properties to columns by name alone). */
    int column_comments;
    /* 1 when these are only the limits until connect() learns which
     * warehouse it reached (one driver for many, like ODBC's): the core then
     * connects before it names a table or column, so that every name of a
     * run is cut to the same limit. */
    int provisional;
} tgt_driver_caps;

typedef struct tgt_driver tgt_driver;

typedef struct tgt_driver_ops {
    const char *name;

    /* The row writer (row.h): how the core's checked values become the
     * bytes write_data takes.  Static; never NULL. */
    const tgt_row_ops *rows;

    /* The warehouse's limits (above).  Static; never NULL. */
    const tgt_driver_caps *caps;

    /* Connects using cfg (the driver's own settings in it).  Also called
     * again after connection_lost, on the same driver.  Errors name host/
     * port/db but never a password; err->transient when retrying may help. */
    int (*connect)(tgt_driver *d, const tgt_config *cfg, tgt_error *err);
    /* Closes the connection and frees the driver (NULL is a no-op). */
    void (*free)(tgt_driver *d);

    /* Reads the live table: columns with lattice types (and the warehouse's
     * spelling in sql_type), NOT NULL, the recorded source path of each
     * column (NULL when none was recorded), primary key, and for a table with
     * a primary key whether it holds no rows (out->empty; 0 when unknown).
     * A missing table is not an error: out->exists = 0. */
    int (*describe_table)(tgt_driver *d, const char *schema, const char *table, tgt_live_table *out,
                          tgt_error *err);

    /* DDL, each atomic.  create_table creates every column of t (with
     * the primary key over t->key_columns) and marks nothing; add_column adds
     * t->columns[col].  All must be safe against a concurrent loader doing
     * the same (IF NOT EXISTS, re-check). */
    int (*ensure_schema)(tgt_driver *d, const char *schema, tgt_error *err);
    int (*create_table)(tgt_driver *d, const tgt_table *t, tgt_error *err);
    int (*add_column)(tgt_driver *d, const tgt_table *t, size_t col, tgt_error *err);
    /* Changes each column t->columns[cols[i]] (i < n; cols is borrowed,
     * indexes distinct and < t->n_columns) to its .type, keeping every value,
     * all in ONE atomic change: either every column has its new type or none
     * has, and the warehouse rewrites the table (at most) once, not once per
     * column - the core passes every widening of one SCHEMA for a table in one
     * call.  Under the table's lock the driver re-reads each live type first
     * and leaves alone a column already of that type or wider (a concurrent
     * loader got there first); none left to change is success.  n == 0 is a
     * no-op.  On error nothing changed and err names the table. */
    int (*alter_column_types)(tgt_driver *d, const tgt_table *t, const size_t *cols, size_t n,
                              tgt_error *err);

    /* begin() also learns what identifies the transaction on the server, so
     * that commit_status() can ask about it from another connection. */
    int (*begin)(tgt_driver *d, tgt_error *err);
    /* When the connection breaks while the COMMIT is under way, err gets
     * connection_lost and commit_unknown: the server may have committed. */
    int (*commit)(tgt_driver *d, tgt_error *err);
    void (*rollback)(tgt_driver *d);

    /* After a commit() that failed with commit_unknown and a reconnect: what
     * became of that transaction.  One question per call (the caller waits
     * and asks again while it is TGT_TXN_IN_PROGRESS); -1 with err when the
     * server cannot say (e.g. a different server after a failover). */
    int (*commit_status)(tgt_driver *d, tgt_txn_status *out, tgt_error *err);

    /* How many tables one transaction may write to (rows, staging, merge)
     * without exhausting the warehouse's lock table; valid once connected.
     * The core commits early rather than touch more. */
    size_t (*tables_per_transaction)(tgt_driver *d);

    /* Called before the merges of a transaction with every table about to be
     * merged (the array is the caller's scratch and may be reordered): takes,
     * in an order that does not depend on the caller's, the locks that make
     * concurrent loaders merging the same tables wait for each other instead
     * of deadlocking.  Held until the transaction ends. */
    int (*lock_for_merge)(tgt_driver *d, const tgt_table **tables, size_t n, tgt_error *err);

    /* Opens the bulk stream into t (all of t's columns that exist, in order,
     * plus the sequence and presence mask for staging). */
    int (*write_begin)(tgt_driver *d, const tgt_table *t, tgt_write_mode mode, tgt_error *err);
    /* Sends bytes the driver's row writer produced (row.h): whole rows, or
     * any split of them, in order. */
    int (*write_data)(tgt_driver *d, const char *data, size_t len, tgt_error *err);
    /* Ends the bulk stream; reports how many rows the warehouse took.  After
     * write_close it only collects the outcome the warehouse sent since. */
    int (*write_end)(tgt_driver *d, unsigned long *rows, tgt_error *err);
    /* Optional (NULL: the core calls write_end alone).  Sends the end of the
     * bulk stream without waiting for the warehouse to finish it, so that it
     * works through the rows while the core encodes on; the stream takes no
     * more data.  The core calls write_end before any other op, which reports
     * the outcome (rows taken, a refused row, a lost connection) exactly as
     * it would have without write_close.  On error (-1, err as write_end's)
     * the bulk stream is over and the core does not call write_end. */
    int (*write_close)(tgt_driver *d, tgt_error *err);
    /* Optional (NULL: the core never waits to ship for it).  After
     * write_close: 1 when the warehouse has finished the closed stream, so
     * that write_end would return at once, 0 while it still works through it.
     * Cheap enough to ask every few tens of kB encoded; never blocks.  It
     * reports no error: a failure (a refused row, a lost connection) counts
     * as finished, and write_end reports it as ever. */
    int (*write_ready)(tgt_driver *d);
    /* Optional (NULL: several streams' rows ship as their chunks fill, the
     * core waiting for the warehouse as it must).  During a bulk stream
     * that is not closed: 1 when write_data of up to TGT_SPILL_SLOT bytes
     * would not wait for the warehouse to take earlier rows, 0 while it
     * would.  Cheap enough to ask every few kB encoded; never blocks; a
     * broken connection answers 1 (write_data then reports it).  With it the
     * core keeps one bulk stream fed from its streams' spilled rows while it
     * encodes (batch.h), and needs write_close and write_ready too. */
    int (*write_room)(tgt_driver *d);

    /* Moves t's staged rows into t: newest sequence per key wins, rows whose
     * non-key data did not change are left alone (a change of written digits
     * in a numeric or jsonb value is a change).  With `partial` some staged
     * row has absent columns: per key and column the newest row that carried
     * the column wins, and a column no row of the key carried keeps its stored
     * value (NULL for a new key).  *changed receives the number of rows
     * inserted or updated. */
    int (*merge)(tgt_driver *d, const tgt_table *t, int partial, unsigned long *changed,
                 tgt_error *err);

    /* ACTIVATE_VERSION, inside the core's transaction: rows whose
     * version_column is below `version` (decimal text) or NULL get
     * deleted_column set to now() (rows already marked keep their mark), or
     * are deleted when hard.  *affected receives the number of rows. */
    int (*activate_version)(tgt_driver *d, const char *schema, const char *table,
                            const char *version_column, const char *deleted_column,
                            const char *version, int hard, unsigned long *affected, tgt_error *err);

    /* Makes t's key columns the table's primary key (dropping the one it has),
     * atomically and on its own; a no-op when the key is already that.  Fails,
     * changing nothing, when the data has duplicates or NULLs in the new key. */
    int (*set_primary_key)(tgt_driver *d, const tgt_table *t, tgt_error *err);

    /* load_method overwrite: drop_table (IF EXISTS) clears a shadow left by
     * a failed run, on its own; replace_table, inside the core's
     * transaction, drops `live` and renames `shadow` to it. */
    int (*drop_table)(tgt_driver *d, const char *schema, const char *table, tgt_error *err);
    int (*replace_table)(tgt_driver *d, const char *schema, const char *live, const char *shadow,
                         tgt_error *err);
} tgt_driver_ops;

/* Every driver struct starts with this. */
struct tgt_driver {
    const tgt_driver_ops *ops;
};

#endif

/*
 * fake_driver.h - an in-memory warehouse behind drivers/driver.h, for unit
 * tests of the core (evolution decisions, commit points and STATE, the
 * replay spool, recovery) without a database server.
 *
 * It keeps tables (columns with lattice types, source paths, primary key)
 * and their rows as strings, with real transactions: begin() snapshots the
 * rows, rollback() restores the snapshot, commit() forgets it; DDL outside a
 * transaction applies at once, as on PostgreSQL.  Bulk writes are parsed
 * from the fake's own row format (fake_rows.h), which its row writer
 * gave the core; merge() applies the newest staged row
 * per key.  Every call is counted and logged (tgt_fake_calls), and any call
 * can be made to fail on demand (tgt_fake_fail_at) the way a real driver
 * reports failures: a lost connection (every later call fails until
 * connect(); a COMMIT cut off this way is commit_unknown, and
 * commit_status() then tells whether it took effect), a refused row (with
 * its bulk row number), a deadlock, or a plain error.
 *
 * Linked into the unit tests only; the target-pg binary never contains it.
 */
#ifndef TGT_FAKE_DRIVER_H
#define TGT_FAKE_DRIVER_H

#include <stddef.h>

#include "driver.h"

/* How an injected failure looks to the core. */
typedef enum tgt_fake_failure {
    TGT_FAKE_LOST = 0,   /* the connection broke before the call took effect */
    TGT_FAKE_LOST_AFTER, /* commit: it took effect, then the connection broke (a lost reply);
                          * other calls: as TGT_FAKE_LOST */
    TGT_FAKE_REFUSED,    /* write_data: the database refused a row (bulk_row set); other
                          * calls: as TGT_FAKE_ERROR */
    TGT_FAKE_ERROR,      /* any call: a plain database error */
    TGT_FAKE_CONFLICT    /* any call: a deadlock with another session (err->conflict); the
                          * transaction is rolled back */
} tgt_fake_failure;

/* Its limits (caps): far below PostgreSQL's, so that tests see the core ask. */
#define TGT_FAKE_IDENT_MAX 32
#define TGT_FAKE_COLUMN_BUDGET 20
#define TGT_FAKE_JSON_MAX_DEPTH 10

/* A new, empty fake warehouse (not connected).  NULL on allocation failure.
 * Free it with d->ops->free(d). */
tgt_driver *tgt_fake_driver_new(tgt_error *err);

/* Makes the nth call (1-based, counted from now) of operation `op` (the
 * tgt_driver_ops field name, e.g. "commit") fail as `how`.  For
 * TGT_FAKE_REFUSED, `row` is the 1-based row of the bulk write reported as
 * refused.  One pending failure per operation; a later call replaces it. */
void tgt_fake_fail_at(tgt_driver *d, const char *op, unsigned n, tgt_fake_failure how,
                      unsigned long row);

/* From now on every row whose `column` holds `value` (as the fake keeps it:
 * fake_rows.h) is
 * refused the way a foreign key refuses: at the end of an append's bulk
 * write, or at merge for staged rows, naming no row (SQLSTATE 23503).
 * Returns -1 on allocation failure. */
int tgt_fake_refuse_value(tgt_driver *d, const char *column, const char *value);

/* From now on every row whose `column` holds `value` (as the fake keeps
 * it) is refused as it is written, the way a CHECK constraint refuses:
 * write_data fails naming the row's number in the bulk write exactly
 * (SQLSTATE 23514).  Returns -1 on allocation failure. */
int tgt_fake_check_value(tgt_driver *d, const char *column, const char *value);

/* What tables_per_transaction() answers (default 1000). */
void tgt_fake_set_tables_per_transaction(tgt_driver *d, size_t n);

/* After each write_close, write_ready answers "not done" this many times
 * before it answers "done" (default 0: done at once). */
void tgt_fake_set_busy(tgt_driver *d, unsigned answers);

/* Gives the fake write_room (driver.h), which it lacks until then, so that
 * with several streams the core spills full chunks and feeds one bulk write
 * from them (batch.h TGT_SPILL_MAX) rather than staggering them: after each
 * write_begin, write_room answers "no room" `full` times, then "room" for
 * the rest of that bulk write.  Call it before the first row is encoded. */
void tgt_fake_set_room(tgt_driver *d, unsigned full);

/* How many times operation `op` was called so far. */
unsigned tgt_fake_calls(const tgt_driver *d, const char *op);

/* The calls made so far, one operation name per line ("connect\nbegin\n..."). */
const char *tgt_fake_call_log(const tgt_driver *d);

/* Committed rows of schema.table (0 when the table does not exist). */
size_t tgt_fake_row_count(const tgt_driver *d, const char *schema, const char *table);

/* The committed value of `column` in the `row`th row (0-based, in insertion
 * order) of schema.table: NULL for SQL NULL or when there is no such cell.
 * *found (may be NULL) is set to 1 when the cell exists. */
const char *tgt_fake_value(const tgt_driver *d, const char *schema, const char *table, size_t row,
                           const char *column, int *found);

/* The live type of a column (TGT_T_OTHER kind when there is no such column). */
tgt_coltype tgt_fake_column_type(const tgt_driver *d, const char *schema, const char *table,
                                 const char *column);

#endif

/*
 * evolve.h - a stream's wanted table against the live one (docs/contract.md "Type
 * lattice"): what DDL brings the live table up to the wanted shape, and
 * which changes are refused.
 *
 * tgt_evolve_diff reads the live table through the driver and decides;
 * nothing is changed yet, so a refused change leaves the database and the
 * pending batch alone.  tgt_evolve_apply then runs the DDL.  Rules: a
 * missing table is created; a missing column is added; a column whose live
 * type is lower in the lattice (or incomparable) is altered to the join of
 * both, keeping every value; a live type higher than the wanted one is a
 * narrowing: refused with an error naming stream, column, live and requested
 * type, unless the caller keeps the wider live column (type_change = keep).
 * Columns are never dropped.  New key_properties move the primary key when
 * the rows allow it (else an error naming both keys); a stream without keys
 * never drops a live primary key: by tgt_keyless_policy it is refused (an
 * error naming the stream, the key and the choices), takes that key as its
 * own (its records upsert; an error when a key column is not among its
 * properties), or appends.  After diff, every
 * column's live_type is the type it will have once the plan is applied.
 */
#ifndef TGT_EVOLVE_H
#define TGT_EVOLVE_H

#include <stddef.h>

#include "driver.h"
#include "error.h"
#include "table.h"

typedef struct tgt_evolve_plan {
    int create_table;
    size_t *add; /* owned: column indexes to add */
    size_t n_add;
    size_t *alter; /* owned: column indexes whose type changes */
    size_t n_alter;
    int move_key;      /* the live primary key differs from the stream's keys */
    char old_key[512]; /* the live key, "a, b" or "none", for messages */
    /* no rows: the table is to be created, or the driver found it empty
     * (tgt_live_table.empty); not a change, only what keyed loads may skip */
    int no_rows;
} tgt_evolve_plan;

void tgt_evolve_plan_init(tgt_evolve_plan *plan);
void tgt_evolve_plan_deinit(tgt_evolve_plan *plan);
int tgt_evolve_plan_is_empty(const tgt_evolve_plan *plan);

/* What a stream without key_properties does with a table that has a
 * primary key (the load_method decides). */
typedef enum tgt_keyless_policy {
    TGT_KEYLESS_REFUSE = 0, /* auto: an error naming the stream, the key and the choices */
    TGT_KEYLESS_ADOPT,      /* upsert: the table's key serves as the stream's */
    TGT_KEYLESS_APPEND      /* append-only: rows are appended; the key refuses duplicates */
} tgt_keyless_policy;

/* keep_narrower: a narrowing request keeps the wider live column (setting
 * type_change = keep) instead of failing.  keyless: what a t without keys
 * does on a live table with a primary key; with TGT_KEYLESS_ADOPT a keyless
 * t on a table without one is an error (upsert needs a key). */
int tgt_evolve_diff(tgt_driver *d, tgt_table *t, const char *stream, int keep_narrower,
                    tgt_keyless_policy keyless, tgt_evolve_plan *plan, tgt_error *err);

int tgt_evolve_apply(tgt_driver *d, tgt_table *t, const tgt_evolve_plan *plan, const char *stream,
                     tgt_error *err);

#endif

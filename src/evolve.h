/*
 * evolve.h - a stream's wanted table against the live one (DESIGN.md "Type
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
 * leaves a live primary key in place (and, with adopt_key, takes it as its
 * key: its records upsert; an error naming the stream, the key and the
 * choices when a key column is not among its properties).  After diff, every
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
    size_t *add;   /* owned: column indexes to add */
    size_t n_add;
    size_t *alter; /* owned: column indexes whose type changes */
    size_t n_alter;
    int move_key;       /* the live primary key differs from the stream's keys */
    char old_key[512];  /* the live key, "a, b" or "none", for messages */
} tgt_evolve_plan;

void tgt_evolve_plan_init(tgt_evolve_plan *plan);
void tgt_evolve_plan_deinit(tgt_evolve_plan *plan);
int tgt_evolve_plan_is_empty(const tgt_evolve_plan *plan);

/* keep_narrower: a narrowing request keeps the wider live column (setting
 * type_change = keep) instead of failing.  adopt_key: a keyless t upserts on
 * the live primary key (load_method auto). */
int tgt_evolve_diff(tgt_driver *d, tgt_table *t, const char *stream, int keep_narrower,
                    int adopt_key, tgt_evolve_plan *plan, tgt_error *err);

int tgt_evolve_apply(tgt_driver *d, tgt_table *t, const tgt_evolve_plan *plan, const char *stream,
                     tgt_error *err);

#endif

/*
 * pg_types.h - the PostgreSQL dialect of the type lattice (types.h): how
 * each lattice type is spelled in DDL, and how the catalog's format_type()
 * spelling is read back into a lattice type.  No libpq: the unit tests link
 * it alone.
 */
#ifndef TGT_PG_TYPES_H
#define TGT_PG_TYPES_H

#include <stddef.h>

#include "types.h"

/* The SQL spelling PostgreSQL's format_type() gives ("bigint", "timestamp
 * with time zone", "character varying(12)", "numeric(10,2)"); TGT_T_OTHER
 * is spelled "text".  Writes into buf (at least 48 bytes); returns buf. */
const char *pg_type_sql(tgt_coltype t, char *buf, size_t cap);

/* Parses format_type() output into a lattice type; an unknown spelling, an
 * array, or a constrained form target-pg never creates (timestamp(3))
 * gives TGT_T_OTHER. */
tgt_coltype pg_type_from_sql(const char *formatted);

#endif

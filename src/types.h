/*
 * types.h - the column type lattice (docs/contract.md "Type lattice"), as pure
 * functions with no dependencies.
 *
 *   boolean ---------------------------------------+
 *   smallint < integer < bigint < numeric ---------+
 *   real < double < numeric                        +-< text
 *   numeric(p,s) < numeric                         |
 *   date < timestamp < timestamptz ----------------+
 *   time ------------------------------------------+
 *   varchar(n) < varchar(m>n) ---------------------+
 *   jsonb, json -----------------------------------+
 *
 * A tgt_coltype is a kind plus, for varchar, a length.  Types that are not
 * in the lattice (a live column of type `point`, say) are TGT_T_OTHER: they
 * compare equal only to themselves and are never altered.
 */
#ifndef TGT_TYPES_H
#define TGT_TYPES_H

#include <stddef.h>

typedef enum tgt_type_kind {
    TGT_T_BOOLEAN = 0,
    TGT_T_SMALLINT,
    TGT_T_INTEGER,
    TGT_T_BIGINT,
    TGT_T_NUMERIC,
    TGT_T_REAL,
    TGT_T_DOUBLE,
    TGT_T_DATE,
    TGT_T_TIMESTAMP,
    TGT_T_TIMESTAMPTZ,
    TGT_T_TIME,
    TGT_T_VARCHAR,
    TGT_T_JSON,
    TGT_T_JSONB,
    TGT_T_TEXT,
    TGT_T_OTHER
} tgt_type_kind;

typedef struct tgt_coltype {
    tgt_type_kind kind;
    int length; /* varchar(n): n; numeric(p,s): p and s encoded; -1 when unconstrained */
} tgt_coltype;

/* Ordering of a against b in the lattice. */
typedef enum tgt_type_order {
    TGT_ORDER_EQUAL,
    TGT_ORDER_LOWER,       /* a < b: b can hold every a value */
    TGT_ORDER_HIGHER,      /* a > b */
    TGT_ORDER_INCOMPARABLE /* neither; their join is text (or OTHER never joins) */
} tgt_type_order;

tgt_coltype tgt_type_make(tgt_type_kind kind);

int tgt_type_equal(tgt_coltype a, tgt_coltype b);

tgt_type_order tgt_type_compare(tgt_coltype a, tgt_coltype b);

/* Least upper bound of a and b.  Sets *ok to 0 (and returns a) when no
 * upper bound exists (a TGT_T_OTHER type with anything different). */
tgt_coltype tgt_type_join(tgt_coltype a, tgt_coltype b, int *ok);

/* numeric(precision, scale), a constrained numeric (the warehouse's
 * bounds are the dialect's to check). */
tgt_coltype tgt_type_numeric(int precision, int scale);

/* 1 with *precision and *scale when t is a constrained numeric(p,s); 0 for
 * any other type (unconstrained numeric included). */
int tgt_type_numeric_ps(tgt_coltype t, int *precision, int *scale);

/* The lattice name of t, the same whatever the warehouse, for messages:
 * boolean, smallint, integer, bigint, numeric, numeric(p,s), real, double,
 * date, timestamp, timestamptz, time, varchar, varchar(n), json, jsonb,
 * text, other.  A driver spells types its own way (its dialect, e.g.
 * drivers/postgres/pg_types.h).  Writes into buf (at least 32 bytes);
 * returns buf. */
const char *tgt_type_name(tgt_coltype t, char *buf, size_t cap);

#endif

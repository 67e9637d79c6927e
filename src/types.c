/*
 * types.c - the type lattice of types.h.  Pure functions: no allocation, no
 * I/O.  Each kind sits on one chain with a rank; two kinds on the same chain
 * compare by rank, anything else meets at text.  numeric sits on both the
 * integer chain and the floating chain, which is why real joined with
 * integer gives numeric rather than text.
 */
#include "types.h"

#include <stdio.h>
#include <string.h>

enum chain {
    CHAIN_BOOL,
    CHAIN_INT,
    CHAIN_FLOAT,
    CHAIN_TIME_OF_DAY,
    CHAIN_DATE,
    CHAIN_VARCHAR,
    CHAIN_JSON,
    CHAIN_TOP,
    CHAIN_OTHER
};

/* Which chain a kind is on and its rank there.  numeric is rank 4 on the
 * integer chain and is handled specially for the floating chain. */
static enum chain chain_of(tgt_type_kind kind, int *rank)
{
    switch (kind) {
    case TGT_T_BOOLEAN:
        *rank = 0;
        return CHAIN_BOOL;
    case TGT_T_SMALLINT:
        *rank = 1;
        return CHAIN_INT;
    case TGT_T_INTEGER:
        *rank = 2;
        return CHAIN_INT;
    case TGT_T_BIGINT:
        *rank = 3;
        return CHAIN_INT;
    case TGT_T_NUMERIC:
        *rank = 4;
        return CHAIN_INT;
    case TGT_T_REAL:
        *rank = 1;
        return CHAIN_FLOAT;
    case TGT_T_DOUBLE:
        *rank = 2;
        return CHAIN_FLOAT;
    case TGT_T_DATE:
        *rank = 1;
        return CHAIN_DATE;
    case TGT_T_TIMESTAMP:
        *rank = 2;
        return CHAIN_DATE;
    case TGT_T_TIMESTAMPTZ:
        *rank = 3;
        return CHAIN_DATE;
    case TGT_T_TIME:
        *rank = 0;
        return CHAIN_TIME_OF_DAY;
    case TGT_T_VARCHAR:
        *rank = 0;
        return CHAIN_VARCHAR;
    case TGT_T_JSON:
        *rank = 0;
        return CHAIN_JSON;
    case TGT_T_JSONB:
        *rank = 1;
        return CHAIN_JSON;
    case TGT_T_TEXT:
        *rank = 0;
        return CHAIN_TOP;
    case TGT_T_OTHER:
        break;
    }
    *rank = 0;
    return CHAIN_OTHER;
}

tgt_coltype tgt_type_make(tgt_type_kind kind)
{
    tgt_coltype t = {kind, -1};
    return t;
}

/* numeric(p,s) keeps p and s in `length` (-1: unconstrained numeric); room
 * for |s| < 2048, beyond PostgreSQL's 1 <= p <= 1000, -1000 <= s <= 1000. */
static int numeric_mod(int p, int s)
{
    return p * 4096 + s + 2048;
}

static int is_numeric_ps(tgt_coltype t)
{
    return t.kind == TGT_T_NUMERIC && t.length >= 0;
}

int tgt_type_equal(tgt_coltype a, tgt_coltype b)
{
    if (a.kind != b.kind)
        return 0;
    return (a.kind != TGT_T_VARCHAR && a.kind != TGT_T_NUMERIC) || a.length == b.length;
}

/* varchar length order: -1 (unbounded) is the largest. */
static int varchar_cmp(int a, int b)
{
    if (a == b)
        return 0;
    if (a < 0)
        return 1;
    if (b < 0)
        return -1;
    return a < b ? -1 : 1;
}

static tgt_type_order order_of(int cmp)
{
    return cmp == 0 ? TGT_ORDER_EQUAL : cmp < 0 ? TGT_ORDER_LOWER : TGT_ORDER_HIGHER;
}

tgt_type_order tgt_type_compare(tgt_coltype a, tgt_coltype b)
{
    if (tgt_type_equal(a, b))
        return TGT_ORDER_EQUAL;
    if (a.kind == TGT_T_OTHER || b.kind == TGT_T_OTHER)
        return TGT_ORDER_INCOMPARABLE;
    if (b.kind == TGT_T_TEXT)
        return TGT_ORDER_LOWER;
    if (a.kind == TGT_T_TEXT)
        return TGT_ORDER_HIGHER;
    /* numeric(p,s) is below numeric (and text) only: it holds neither every
     * bigint or double nor every numeric(q,t) */
    if (is_numeric_ps(a) || is_numeric_ps(b)) {
        if (b.kind == TGT_T_NUMERIC && b.length < 0)
            return TGT_ORDER_LOWER;
        if (a.kind == TGT_T_NUMERIC && a.length < 0)
            return TGT_ORDER_HIGHER;
        return TGT_ORDER_INCOMPARABLE;
    }
    int ra, rb;
    enum chain ca = chain_of(a.kind, &ra), cb = chain_of(b.kind, &rb);
    /* numeric tops the floating chain too */
    if (ca == CHAIN_FLOAT && b.kind == TGT_T_NUMERIC)
        return TGT_ORDER_LOWER;
    if (cb == CHAIN_FLOAT && a.kind == TGT_T_NUMERIC)
        return TGT_ORDER_HIGHER;
    if (ca != cb)
        return TGT_ORDER_INCOMPARABLE;
    if (ca == CHAIN_VARCHAR)
        return order_of(varchar_cmp(a.length, b.length));
    return order_of(ra < rb ? -1 : ra > rb ? 1 : 0);
}

tgt_coltype tgt_type_join(tgt_coltype a, tgt_coltype b, int *ok)
{
    *ok = 1;
    switch (tgt_type_compare(a, b)) {
    case TGT_ORDER_EQUAL:
    case TGT_ORDER_HIGHER:
        return a;
    case TGT_ORDER_LOWER:
        return b;
    case TGT_ORDER_INCOMPARABLE:
        break;
    }
    if (a.kind == TGT_T_OTHER || b.kind == TGT_T_OTHER) {
        *ok = 0;
        return a;
    }
    int ra, rb;
    enum chain ca = chain_of(a.kind, &ra), cb = chain_of(b.kind, &rb);
    /* numbers meet at numeric: an integer with a float, or numeric(p,s)
     * with any other number */
    if ((ca == CHAIN_INT || ca == CHAIN_FLOAT) && (cb == CHAIN_INT || cb == CHAIN_FLOAT))
        return tgt_type_make(TGT_T_NUMERIC);
    return tgt_type_make(TGT_T_TEXT);
}

int tgt_type_numeric_ps(tgt_coltype t, int *precision, int *scale)
{
    if (!is_numeric_ps(t))
        return 0;
    *precision = t.length / 4096;
    *scale = t.length % 4096 - 2048;
    return 1;
}

tgt_coltype tgt_type_numeric(int precision, int scale)
{
    tgt_coltype t = {TGT_T_NUMERIC, numeric_mod(precision, scale)};
    return t;
}

const char *tgt_type_name(tgt_coltype t, char *buf, size_t cap)
{
    static const char *const names[] = {
        [TGT_T_BOOLEAN] = "boolean",     [TGT_T_SMALLINT] = "smallint",
        [TGT_T_INTEGER] = "integer",     [TGT_T_BIGINT] = "bigint",
        [TGT_T_NUMERIC] = "numeric",     [TGT_T_REAL] = "real",
        [TGT_T_DOUBLE] = "double",       [TGT_T_DATE] = "date",
        [TGT_T_TIMESTAMP] = "timestamp", [TGT_T_TIMESTAMPTZ] = "timestamptz",
        [TGT_T_TIME] = "time",           [TGT_T_VARCHAR] = "varchar",
        [TGT_T_JSON] = "json",           [TGT_T_JSONB] = "jsonb",
        [TGT_T_TEXT] = "text",           [TGT_T_OTHER] = "other",
    };
    int p, sc;
    if (t.kind == TGT_T_VARCHAR && t.length >= 0)
        snprintf(buf, cap, "varchar(%d)", t.length);
    else if (tgt_type_numeric_ps(t, &p, &sc))
        snprintf(buf, cap, "numeric(%d,%d)", p, sc);
    else
        snprintf(buf, cap, "%s", names[t.kind]);
    return buf;
}

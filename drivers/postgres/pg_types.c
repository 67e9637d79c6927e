/*
 * pg_types.c - PostgreSQL's type spellings (see pg_types.h).  Spelling and
 * parsing read from one table so that what create_table writes is what
 * describe_table reads back.
 */
#include "pg_types.h"

#include <stdio.h>
#include <string.h>

/* format_type() spelling of each unconstrained lattice kind */
static const struct {
    const char *sql;
    tgt_type_kind kind;
} spellings[] = {
    {"boolean", TGT_T_BOOLEAN},
    {"smallint", TGT_T_SMALLINT},
    {"integer", TGT_T_INTEGER},
    {"bigint", TGT_T_BIGINT},
    {"numeric", TGT_T_NUMERIC},
    {"real", TGT_T_REAL},
    {"double precision", TGT_T_DOUBLE},
    {"date", TGT_T_DATE},
    {"timestamp without time zone", TGT_T_TIMESTAMP},
    {"timestamp with time zone", TGT_T_TIMESTAMPTZ},
    {"time without time zone", TGT_T_TIME},
    {"character varying", TGT_T_VARCHAR},
    {"json", TGT_T_JSON},
    {"jsonb", TGT_T_JSONB},
    {"text", TGT_T_TEXT},
};

#define N_SPELLINGS (sizeof(spellings) / sizeof(spellings[0]))

const char *pg_type_sql(tgt_coltype t, char *buf, size_t cap)
{
    int p, s;
    if (t.kind == TGT_T_VARCHAR && t.length >= 0) {
        snprintf(buf, cap, "character varying(%d)", t.length);
        return buf;
    }
    if (tgt_type_numeric_ps(t, &p, &s)) {
        snprintf(buf, cap, "numeric(%d,%d)", p, s);
        return buf;
    }
    /* a column outside the lattice is only ever loaded as text */
    const char *sql = "text";
    for (size_t i = 0; i < N_SPELLINGS; i++) {
        if (spellings[i].kind == t.kind)
            sql = spellings[i].sql;
    }
    snprintf(buf, cap, "%s", sql);
    return buf;
}

tgt_coltype pg_type_from_sql(const char *formatted)
{
    for (size_t i = 0; i < N_SPELLINGS; i++) {
        if (strcmp(formatted, spellings[i].sql) == 0)
            return tgt_type_make(spellings[i].kind);
    }
    /* %n: the whole text must match, "character varying(5)[]" is an array */
    int n = 0, s = 0, end = 0;
    if (sscanf(formatted, "character varying(%d)%n", &n, &end) == 1 && formatted[end] == '\0' &&
        n > 0) {
        tgt_coltype t = {TGT_T_VARCHAR, n};
        return t;
    }
    /* numeric(p,s) < numeric: loading into it as it is would round or
     * overflow, altering it to numeric keeps every value.  PostgreSQL
     * allows 1 <= p <= 1000 and -1000 <= s <= 1000. */
    if (sscanf(formatted, "numeric(%d,%d)%n", &n, &s, &end) == 2 && formatted[end] == '\0' &&
        n >= 1 && n <= 1000 && s >= -1000 && s <= 1000)
        return tgt_type_numeric(n, s);
    /* timestamp(3), time(0) ... : constrained forms we never create.  They
     * are not safe to treat as the unconstrained kind, so they stay outside
     * the lattice. */
    return tgt_type_make(TGT_T_OTHER);
}

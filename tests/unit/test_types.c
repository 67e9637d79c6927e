/* Unit tests for types.c (the lattice order, joins, lattice names) and for
 * PostgreSQL's spellings of it (drivers/postgres/pg_types.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "postgres/pg_types.h"
#include "types.h"

static tgt_coltype T(tgt_type_kind k)
{
    return tgt_type_make(k);
}

static tgt_coltype varchar(int n)
{
    tgt_coltype t = {TGT_T_VARCHAR, n};
    return t;
}

static void test_chains(void **state)
{
    (void)state;
    assert_int_equal(tgt_type_compare(T(TGT_T_SMALLINT), T(TGT_T_BIGINT)), TGT_ORDER_LOWER);
    assert_int_equal(tgt_type_compare(T(TGT_T_NUMERIC), T(TGT_T_BIGINT)), TGT_ORDER_HIGHER);
    assert_int_equal(tgt_type_compare(T(TGT_T_REAL), T(TGT_T_NUMERIC)), TGT_ORDER_LOWER);
    assert_int_equal(tgt_type_compare(T(TGT_T_DATE), T(TGT_T_TIMESTAMPTZ)), TGT_ORDER_LOWER);
    assert_int_equal(tgt_type_compare(T(TGT_T_JSONB), T(TGT_T_TEXT)), TGT_ORDER_LOWER);
    assert_int_equal(tgt_type_compare(T(TGT_T_JSON), T(TGT_T_JSONB)), TGT_ORDER_LOWER);
    assert_int_equal(tgt_type_compare(varchar(5), varchar(10)), TGT_ORDER_LOWER);
    assert_int_equal(tgt_type_compare(varchar(5), T(TGT_T_TEXT)), TGT_ORDER_LOWER);
    assert_int_equal(tgt_type_compare(T(TGT_T_BOOLEAN), T(TGT_T_BIGINT)), TGT_ORDER_INCOMPARABLE);
    assert_int_equal(tgt_type_compare(T(TGT_T_TIME), T(TGT_T_TIMESTAMP)), TGT_ORDER_INCOMPARABLE);
    assert_int_equal(tgt_type_compare(T(TGT_T_BIGINT), T(TGT_T_BIGINT)), TGT_ORDER_EQUAL);
}

/* numeric(p,s) < numeric < text, and nothing else: it cannot hold every
 * bigint, double or other numeric(q,t) */
static void test_constrained_numeric(void **state)
{
    (void)state;
    int ok;
    tgt_coltype n102 = tgt_type_numeric(10, 2);
    tgt_coltype n124 = tgt_type_numeric(12, 4);
    assert_int_equal(n102.kind, TGT_T_NUMERIC);
    assert_true(tgt_type_equal(n102, pg_type_from_sql("numeric(10,2)")));
    assert_false(tgt_type_equal(n102, T(TGT_T_NUMERIC)));
    assert_int_equal(tgt_type_compare(n102, T(TGT_T_NUMERIC)), TGT_ORDER_LOWER);
    assert_int_equal(tgt_type_compare(T(TGT_T_NUMERIC), n102), TGT_ORDER_HIGHER);
    assert_int_equal(tgt_type_compare(n102, T(TGT_T_TEXT)), TGT_ORDER_LOWER);
    assert_int_equal(tgt_type_compare(T(TGT_T_BIGINT), n102), TGT_ORDER_INCOMPARABLE);
    assert_int_equal(tgt_type_compare(T(TGT_T_REAL), n102), TGT_ORDER_INCOMPARABLE);
    assert_int_equal(tgt_type_compare(n102, n124), TGT_ORDER_INCOMPARABLE);
    tgt_coltype j = tgt_type_join(T(TGT_T_BIGINT), n102, &ok);
    assert_true(ok);
    assert_true(tgt_type_equal(j, T(TGT_T_NUMERIC)));
    assert_true(tgt_type_equal(tgt_type_join(n124, n102, &ok), T(TGT_T_NUMERIC)));
    assert_true(tgt_type_equal(tgt_type_join(T(TGT_T_DOUBLE), n102, &ok), T(TGT_T_NUMERIC)));
    assert_int_equal(tgt_type_join(T(TGT_T_BOOLEAN), n102, &ok).kind, TGT_T_TEXT);
}

static void test_joins(void **state)
{
    (void)state;
    int ok;
    assert_int_equal(tgt_type_join(T(TGT_T_INTEGER), T(TGT_T_REAL), &ok).kind, TGT_T_NUMERIC);
    assert_true(ok);
    assert_int_equal(tgt_type_join(T(TGT_T_BOOLEAN), T(TGT_T_BIGINT), &ok).kind, TGT_T_TEXT);
    assert_int_equal(tgt_type_join(T(TGT_T_DATE), T(TGT_T_TIMESTAMP), &ok).kind, TGT_T_TIMESTAMP);
    assert_int_equal(tgt_type_join(varchar(5), varchar(12), &ok).length, 12);
    assert_int_equal(tgt_type_join(T(TGT_T_OTHER), T(TGT_T_TEXT), &ok).kind, TGT_T_OTHER);
    assert_false(ok);
}

/* Messages name types the same whatever the warehouse. */
static void test_lattice_names(void **state)
{
    (void)state;
    static const char *const want[] = {
        "boolean",   "smallint",    "integer", "bigint",  "numeric", "real",  "double", "date",
        "timestamp", "timestamptz", "time",    "varchar", "json",    "jsonb", "text",   "other"};
    char buf[64];
    for (int k = TGT_T_BOOLEAN; k <= TGT_T_OTHER; k++)
        assert_string_equal(tgt_type_name(T((tgt_type_kind)k), buf, sizeof(buf)), want[k]);
    assert_string_equal(tgt_type_name(varchar(5), buf, sizeof(buf)), "varchar(5)");
    assert_string_equal(tgt_type_name(tgt_type_numeric(5, -2), buf, sizeof(buf)), "numeric(5,-2)");
}

static void test_sql_round_trip(void **state)
{
    (void)state;
    for (int k = TGT_T_BOOLEAN; k <= TGT_T_TEXT; k++) {
        char buf[64];
        tgt_coltype t = T((tgt_type_kind)k);
        tgt_coltype back = pg_type_from_sql(pg_type_sql(t, buf, sizeof(buf)));
        assert_true(tgt_type_equal(t, back));
    }
    char buf[64];
    assert_string_equal(pg_type_sql(varchar(5), buf, sizeof(buf)), "character varying(5)");
    assert_int_equal(pg_type_from_sql("character varying(5)").length, 5);
    assert_string_equal(pg_type_sql(pg_type_from_sql("numeric(10,2)"), buf, sizeof(buf)),
                        "numeric(10,2)");
    assert_string_equal(pg_type_sql(pg_type_from_sql("numeric(5,-2)"), buf, sizeof(buf)),
                        "numeric(5,-2)");
    assert_int_equal(pg_type_from_sql("numeric(10,2)[]").kind, TGT_T_OTHER);
    assert_int_equal(pg_type_from_sql("character varying(5)[]").kind, TGT_T_OTHER);
    assert_int_equal(pg_type_from_sql("timestamp(3) without time zone").kind, TGT_T_OTHER);
    assert_int_equal(pg_type_from_sql("point").kind, TGT_T_OTHER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chains),         cmocka_unit_test(test_constrained_numeric),
        cmocka_unit_test(test_joins),          cmocka_unit_test(test_lattice_names),
        cmocka_unit_test(test_sql_round_trip),
    };
    return cmocka_run_group_tests_name("types", tests, NULL, NULL);
}

/* Unit tests for schema.c: type mapping, flattening, the column budget,
 * name clashes and key validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "postgres/pg_caps.h"
#include "schema.h"

static int build(const char *schema_json, const char *keys_json, long depth, tgt_schema_model *m,
                 tgt_error *err)
{
    json_t *schema = json_loads(schema_json, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
    json_t *keys = keys_json ? json_loads(keys_json, JSON_ALLOW_NUL, NULL) : NULL;
    assert_non_null(schema);
    tgt_schema_options opt = {.stream = "s",
                              .target_schema = "public",
                              .table_name = "t",
                              .timestamp_column = "__loaded_at",
                              .flattening_max_depth = depth,
                              .caps = &tgt_pg_caps};
    tgt_error_init(err);
    int rc = tgt_schema_build(schema, keys, &opt, m, err);
    json_decref(schema);
    json_decref(keys);
    return rc;
}

static const tgt_column *col(const tgt_schema_model *m, const char *name)
{
    long i = tgt_table_find_column(&m->table, name);
    assert_true(i >= 0);
    return &m->table.columns[i];
}

static void test_type_mapping(void **state)
{
    (void)state;
    tgt_schema_model m;
    tgt_error err;
    assert_int_equal(
        build("{\"type\":\"object\",\"properties\":{"
              "\"i\":{\"type\":[\"null\",\"integer\"]},"
              "\"big\":{\"type\":\"integer\",\"maximum\":1e30},"
              "\"n\":{\"type\":\"number\"},\"b\":{\"type\":\"boolean\"},"
              "\"s\":{\"type\":\"string\"},\"ts\":{\"type\":\"string\",\"format\":\"date-time\"},"
              "\"d\":{\"type\":\"string\",\"format\":\"date\"},"
              "\"t\":{\"type\":\"string\",\"format\":\"time\"},"
              "\"arr\":{\"type\":\"array\"},\"any\":{},"
              "\"obj\":{\"type\":\"object\"},"
              "\"is\":{\"type\":[\"integer\",\"string\"]},"
              "\"in\":{\"type\":[\"integer\",\"number\"]},"
              "\"u\":{\"anyOf\":[{\"type\":\"string\",\"format\":\"date-time\"},{\"type\":\"null\"}"
              "]},"
              "\"u2\":{\"anyOf\":[{\"type\":\"array\"},{\"type\":\"string\"}]}"
              "}}",
              NULL, 10, &m, &err),
        0);
    assert_int_equal(col(&m, "i")->type.kind, TGT_T_BIGINT);
    assert_int_equal(col(&m, "big")->type.kind, TGT_T_NUMERIC);
    assert_int_equal(col(&m, "n")->type.kind, TGT_T_NUMERIC);
    assert_int_equal(col(&m, "b")->type.kind, TGT_T_BOOLEAN);
    assert_int_equal(col(&m, "s")->type.kind, TGT_T_TEXT);
    assert_int_equal(col(&m, "ts")->type.kind, TGT_T_TIMESTAMPTZ);
    assert_int_equal(col(&m, "d")->type.kind, TGT_T_DATE);
    assert_int_equal(col(&m, "t")->type.kind, TGT_T_TIME);
    assert_int_equal(col(&m, "arr")->type.kind, TGT_T_JSONB);
    assert_int_equal(col(&m, "any")->type.kind, TGT_T_JSONB);
    assert_int_equal(col(&m, "obj")->type.kind, TGT_T_JSONB);
    assert_int_equal(col(&m, "is")->type.kind, TGT_T_TEXT);
    assert_int_equal(col(&m, "in")->type.kind, TGT_T_NUMERIC);
    assert_int_equal(col(&m, "u")->type.kind, TGT_T_TIMESTAMPTZ);
    assert_int_equal(col(&m, "u2")->type.kind, TGT_T_JSONB);
    assert_int_equal(col(&m, "__loaded_at")->role, TGT_COL_LOADED_AT);
    assert_int_equal(m.loaded_at_column, (long)m.table.n_columns - 1);
    tgt_schema_model_deinit(&m);
}

static void test_flattening_and_depth(void **state)
{
    (void)state;
    const char *schema = "{\"properties\":{\"a\":{\"type\":\"object\",\"properties\":{"
                         "\"b\":{\"type\":\"object\",\"properties\":{\"c\":{\"type\":\"string\"}}},"
                         "\"x\":{\"type\":\"integer\"}}}}}";
    tgt_schema_model m;
    tgt_error err;
    assert_int_equal(build(schema, NULL, 10, &m, &err), 0);
    assert_int_equal(col(&m, "a__b__c")->type.kind, TGT_T_TEXT);
    assert_string_equal(col(&m, "a__b__c")->source_path, "a.b.c");
    assert_string_equal(col(&m, "a__b__c")->source_json, "[\"a\",\"b\",\"c\"]");
    assert_int_equal(col(&m, "a__x")->type.kind, TGT_T_BIGINT);
    const tgt_plan_entry *a = tgt_plan_find(m.root, "a", 1);
    assert_non_null(a);
    assert_non_null(a->child);
    tgt_schema_model_deinit(&m);

    assert_int_equal(build(schema, NULL, 1, &m, &err), 0);
    assert_int_equal(col(&m, "a__b")->type.kind, TGT_T_JSONB);
    tgt_schema_model_deinit(&m);

    assert_int_equal(build(schema, NULL, 0, &m, &err), 0);
    assert_int_equal(col(&m, "a")->type.kind, TGT_T_JSONB);
    tgt_schema_model_deinit(&m);
}

/* 20 objects of 30 leaves: depth 1 would give 600 columns, over budget. */
static void test_column_budget(void **state)
{
    (void)state;
    char buf[65536];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "{\"properties\":{");
    for (int o = 0; o < 20; o++) {
        n += (size_t)snprintf(buf + n, sizeof(buf) - n,
                              "%s\"o%d\":{\"type\":\"object\",\"properties\":{", o ? "," : "", o);
        for (int l = 0; l < 30; l++)
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s\"f%d\":{\"type\":\"string\"}",
                                  l ? "," : "", l);
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "}}");
    }
    snprintf(buf + n, sizeof(buf) - n, "}}");
    tgt_schema_model m;
    tgt_error err;
    assert_int_equal(build(buf, NULL, 10, &m, &err), 0);
    assert_int_equal(m.flatten_depth, 0);
    assert_int_equal(m.table.n_columns, 21);
    tgt_schema_model_deinit(&m);
}

static void test_clash_gets_suffix(void **state)
{
    (void)state;
    tgt_schema_model m;
    tgt_error err;
    assert_int_equal(build("{\"properties\":{\"Name\":{\"type\":\"string\"},"
                           "\"name\":{\"type\":\"string\"},\"na-me\":{\"type\":\"string\"}}}",
                           NULL, 10, &m, &err),
                     0);
    assert_string_equal(m.table.columns[0].name, "name");
    assert_string_not_equal(m.table.columns[1].name, "name");
    assert_int_equal(strncmp(m.table.columns[1].name, "name_", 5), 0);
    assert_int_equal(strlen(m.table.columns[1].name), 13);
    tgt_schema_model_deinit(&m);
}

static void test_keys(void **state)
{
    (void)state;
    tgt_schema_model m;
    tgt_error err;
    const char *schema = "{\"properties\":{\"id\":{\"type\":\"integer\"},"
                         "\"o\":{\"type\":\"object\",\"properties\":{\"x\":{}}}}}";
    assert_int_equal(build(schema, "[\"id\"]", 10, &m, &err), 0);
    assert_int_equal(m.table.n_keys, 1);
    assert_true(m.table.columns[m.table.key_columns[0]].is_key);
    tgt_schema_model_deinit(&m);

    assert_int_equal(build(schema, "[\"nope\"]", 10, &m, &err), -1);
    assert_non_null(strstr(err.message, "\"nope\""));
    assert_int_equal(build(schema, "[\"o\"]", 10, &m, &err), -1);
    assert_non_null(strstr(err.message, "object"));
    assert_int_equal(build(schema, "[\"id\",\"id\"]", 10, &m, &err), -1);
    /* a key holding U+0000 is not the property named by the part before it */
    assert_int_equal(build(schema, "[\"id\\u0000x\"]", 10, &m, &err), -1);
    assert_non_null(strstr(err.message, "U+0000"));
}

static void test_required_matches_whole_names(void **state)
{
    (void)state;
    tgt_schema_model m;
    tgt_error err;
    const char *schema = "{\"properties\":{\"id\":{\"type\":\"integer\"},"
                         "\"n\":{\"type\":\"integer\"}},\"required\":[\"id\\u0000x\",\"n\"]}";
    assert_int_equal(build(schema, NULL, 10, &m, &err), 0);
    assert_false(tgt_plan_find(m.root, "id", 2)->required);
    assert_true(tgt_plan_find(m.root, "n", 1)->required);
    tgt_schema_model_deinit(&m);
}

static void test_no_properties_is_an_error(void **state)
{
    (void)state;
    tgt_schema_model m;
    tgt_error err;
    assert_int_equal(build("{\"type\":\"object\"}", NULL, 10, &m, &err), -1);
    assert_int_equal(err.code, TGT_ERR_DATA);
    assert_non_null(strstr(err.message, "stream \"s\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_mapping),
        cmocka_unit_test(test_flattening_and_depth),
        cmocka_unit_test(test_column_budget),
        cmocka_unit_test(test_clash_gets_suffix),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_no_properties_is_an_error),
        cmocka_unit_test(test_required_matches_whole_names),
    };
    return cmocka_run_group_tests_name("schema", tests, NULL, NULL);
}

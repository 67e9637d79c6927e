/* Unit tests for record.c: a RECORD routed through the flatten plan into
 * one COPY text row, and the errors for values a column cannot take. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <string.h>

#include "postgres/pg_caps.h"
#include "postgres/pg_encode.h"
#include "record.h"

typedef struct fixture {
    tgt_stream stream;
    tgt_json_parser parser;
    tgt_sbuf scratch;
} fixture;

static void setup_stream(fixture *f, const char *schema_json, const char *keys_json)
{
    memset(f, 0, sizeof(*f));
    tgt_json_parser_init(&f->parser);
    f->parser.skip_array_items = 1;
    tgt_sbuf_init(&f->scratch);
    tgt_sbuf_init(&f->stream.chunk);
    f->stream.name = strdup("orders");
    f->stream.name_len = 6;
    tgt_schema_model_init(&f->stream.model);
    json_t *schema = json_loads(schema_json, JSON_DECODE_INT_AS_REAL, NULL);
    json_t *keys = keys_json ? json_loads(keys_json, 0, NULL) : NULL;
    assert_non_null(schema);
    tgt_schema_options opt = {.stream = "orders",
                              .target_schema = "public",
                              .table_name = "orders",
                              .timestamp_column = "__loaded_at",
                              .flattening_max_depth = 10,
                              .caps = &tgt_pg_caps};
    tgt_schema_model model;
    tgt_error err;
    tgt_error_init(&err);
    assert_int_equal(tgt_schema_build(schema, keys, &opt, &model, &err), 0);
    assert_int_equal(tgt_stream_set_model(&f->stream, &model, strdup("fp"), &err), 0);
    json_decref(schema);
    json_decref(keys);
}

static void teardown_stream(fixture *f)
{
    tgt_schema_model_deinit(&f->stream.model);
    tgt_sbuf_deinit(&f->stream.chunk);
    free(f->stream.schema_fingerprint);
    free(f->stream.slot_tok);
    free(f->stream.seen);
    free(f->stream.name);
    tgt_json_parser_deinit(&f->parser);
    tgt_sbuf_deinit(&f->scratch);
}

/* Encodes `record_json` (a record object); returns the rc and leaves the
 * error in err. */
static int encode(fixture *f, const char *record_json, tgt_error *err)
{
    tgt_error_init(err);
    size_t len = strlen(record_json);
    assert_int_equal(tgt_json_parse(&f->parser, record_json, len, err), 0);
    tgt_record_context ctx = {.input_name = "stdin",
                              .line_no = 7,
                              .rows = &tgt_pg_row_ops,
                              .json_max_depth = tgt_pg_caps.json_max_depth,
                              .loaded_at = "2026-01-01 00:00:00.000000",
                              .loaded_at_len = 26,
                              .staging = f->stream.model.table.n_keys > 0,
                              .scratch = &f->scratch,
                              .extracted_tok = -1,
                              .version_tok = -1};
    return tgt_record_encode(&f->stream, &f->parser, record_json, 0, &ctx, err);
}

static const char *SCHEMA =
    "{\"properties\":{\"id\":{\"type\":\"integer\"},\"amount\":{\"type\":\"number\"},"
    "\"note\":{\"type\":[\"null\",\"string\"]},\"paid\":{\"type\":\"boolean\"},"
    "\"at\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"addr\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},"
    "\"geo\":{\"type\":\"object\",\"properties\":{\"lat\":{\"type\":\"number\"}}}}},"
    "\"tags\":{\"type\":\"array\"}},\"required\":[\"id\"]}";

static void test_row_in_column_order(void **state)
{
    (void)state;
    fixture f;
    setup_stream(&f, SCHEMA, "[\"id\"]");
    tgt_error err;
    /* property order in the record does not matter; unknown keys are ignored */
    assert_int_equal(
        encode(&f,
               "{\"tags\":[\"a\",\"b\\tc\"],\"zzz\":1,\"addr\":{\"geo\":{\"lat\":1.50},"
               "\"city\":\"Z\\u00fcrich\"},\"id\":42,"
               "\"amount\":123456789012345678901234567890.123456789,"
               "\"note\":\"tab\\there\\\\N\",\"paid\":true,\"at\":\"2020-01-02T03:04:05+05:30\"}",
               &err),
        0);
    const char *want = "42\t123456789012345678901234567890.123456789\ttab\\there\\\\N\tt\t"
                       "2020-01-02T03:04:05+05:30\tZ\xc3\xbcrich\t1.50\t[\"a\",\"b\\\\tc\"]\t"
                       "2026-01-01 00:00:00.000000+00\t1\t\\N\n";
    assert_string_equal(tgt_sbuf_str(&f.stream.chunk), want);
    assert_int_equal(f.stream.rows_pending, 1);
    assert_int_equal(f.stream.partial_rows, 0);
    teardown_stream(&f);
}

static void test_missing_and_null_values(void **state)
{
    (void)state;
    fixture f;
    setup_stream(&f, SCHEMA, NULL);
    tgt_error err;
    assert_int_equal(encode(&f, "{\"id\":1,\"note\":\"\",\"addr\":null}", &err), 0);
    assert_string_equal(tgt_sbuf_str(&f.stream.chunk),
                        "1\t\\N\t\t\\N\t\\N\t\\N\t\\N\t\\N\t2026-01-01 00:00:00.000000+00\n");
    teardown_stream(&f);
}

/* A staged row ends with its sequence and presence mask: \N when every
 * column is carried, else '1'/'0' per column (id, amount, note, paid, at,
 * addr__city, addr__geo__lat, tags, __loaded_at).  An explicit null is
 * carried, an omitted property is not; a null object carries all its
 * columns (as nulls), an omitted one none. */
static void test_presence_mask(void **state)
{
    (void)state;
    fixture f;
    setup_stream(&f, SCHEMA, "[\"id\"]");
    tgt_error err;
    struct {
        const char *record;
        const char *row;
    } cases[] = {
        {"{\"id\":1,\"note\":null}",
         "1\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t2026-01-01 00:00:00.000000+00\t1\t101000001\n"},
        {"{\"id\":2,\"amount\":1.0,\"note\":\"n\",\"paid\":false,\"at\":null,\"addr\":null,"
         "\"tags\":[]}",
         "2\t1.0\tn\tf\t\\N\t\\N\t\\N\t[]\t2026-01-01 00:00:00.000000+00\t2\t\\N\n"},
        {"{\"id\":3,\"addr\":{\"geo\":null}}",
         "3\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t2026-01-01 00:00:00.000000+00\t3\t100000101\n"},
        {"{\"id\":4,\"addr\":{\"city\":\"c\",\"geo\":{}}}",
         "4\t\\N\t\\N\t\\N\t\\N\tc\t\\N\t\\N\t2026-01-01 00:00:00.000000+00\t4\t100001001\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tgt_sbuf_reset(&f.stream.chunk);
        f.stream.partial_rows = 0;
        assert_int_equal(encode(&f, cases[i].record, &err), 0);
        assert_string_equal(tgt_sbuf_str(&f.stream.chunk), cases[i].row);
        /* only a row that lacks a column makes the merge combine */
        assert_int_equal(f.stream.partial_rows, strstr(cases[i].row, "\\N\n") == NULL);
    }
    teardown_stream(&f);
}

static void test_bad_values_leave_nothing(void **state)
{
    (void)state;
    fixture f;
    setup_stream(&f, SCHEMA, "[\"id\"]");
    tgt_error err;
    assert_int_equal(encode(&f, "{\"id\":1}", &err), 0);
    size_t good_len = f.stream.chunk.len;
    struct {
        const char *record;
        const char *expect;
    } cases[] = {
        {"{\"id\":\"x\"}", "property \"id\""},
        {"{\"id\":1.5}", "not an integer"},
        {"{\"id\":9223372036854775808}", "out of range"},
        {"{\"id\":2,\"paid\":\"yes\"}", "true or false"},
        {"{\"id\":2,\"amount\":\"12\"}", "JSON number"},
        {"{\"id\":2,\"at\":\"2019-02-30T00:00:00Z\"}", "property \"at\""},
        {"{\"id\":2,\"addr\":[1]}", "declared as an object"},
        {"{\"amount\":1}", "required property \"id\" is missing"},
        {"{\"id\":null}", "key property \"id\" is null"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(encode(&f, cases[i].record, &err), -1);
        assert_int_equal(err.code, TGT_ERR_DATA);
        if (strstr(err.message, cases[i].expect) == NULL)
            fail_msg("case %zu: \"%s\" not in \"%s\"", i, cases[i].expect, err.message);
        assert_non_null(strstr(err.where, "stdin line 7"));
        assert_int_equal(f.stream.chunk.len, good_len);
    }
    assert_int_equal(f.stream.rows_pending, 1);
    teardown_stream(&f);
}

static void test_integral_forms(void **state)
{
    (void)state;
    fixture f;
    setup_stream(&f, "{\"properties\":{\"id\":{\"type\":\"integer\"}}}", NULL);
    tgt_error err;
    assert_int_equal(encode(&f, "{\"id\":-9223372036854775808}", &err), 0);
    assert_int_equal(encode(&f, "{\"id\":12.000}", &err), 0);
    /* Python writes integral floats from 1e16 up with an exponent */
    assert_int_equal(encode(&f, "{\"id\":1e+16}", &err), 0);
    assert_int_equal(encode(&f, "{\"id\":-1.5E1}", &err), 0);
    assert_int_equal(encode(&f, "{\"id\":1.5e0}", &err), -1);
    assert_non_null(strstr(err.message, "not an integer"));
    assert_int_equal(encode(&f, "{\"id\":1e19}", &err), -1);
    assert_non_null(strstr(err.message, "out of range"));
    assert_int_equal(encode(&f, "{\"id\":NaN}", &err), -1);
    assert_non_null(strstr(err.message, "holds NaN, which is not a valid bigint"));
    assert_string_equal(tgt_sbuf_str(&f.stream.chunk),
                        "-9223372036854775808\t2026-01-01 00:00:00.000000+00\n"
                        "12\t2026-01-01 00:00:00.000000+00\n"
                        "10000000000000000\t2026-01-01 00:00:00.000000+00\n"
                        "-15\t2026-01-01 00:00:00.000000+00\n");
    teardown_stream(&f);
}

/* NaN and Infinity (Python's json.dumps default): as written into number
 * and text columns, refused for jsonb, also deep inside a value. */
static void test_nonfinite_numbers(void **state)
{
    (void)state;
    fixture f;
    setup_stream(&f,
                 "{\"properties\":{\"n\":{\"type\":\"number\"},\"t\":{\"type\":\"string\"},"
                 "\"j\":{}}}",
                 NULL);
    tgt_error err;
    assert_int_equal(encode(&f, "{\"n\":NaN,\"t\":-Infinity,\"j\":[1,\"NaN\"]}", &err), 0);
    assert_int_equal(encode(&f, "{\"n\":Infinity}", &err), 0);
    assert_string_equal(tgt_sbuf_str(&f.stream.chunk),
                        "NaN\t-Infinity\t[1,\"NaN\"]\t2026-01-01 00:00:00.000000+00\n"
                        "Infinity\t\\N\t\\N\t2026-01-01 00:00:00.000000+00\n");
    size_t good_len = f.stream.chunk.len;
    static const char *const refused[] = {"{\"j\":NaN}", "{\"j\":[1,[Infinity]]}",
                                          "{\"j\":{\"a\":{\"b\":-Infinity}}}"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(*refused); i++) {
        assert_int_equal(encode(&f, refused[i], &err), -1);
        assert_int_equal(err.code, TGT_ERR_DATA);
        assert_non_null(strstr(err.message, "JSON cannot hold NaN or Infinity"));
        assert_int_equal(f.stream.chunk.len, good_len);
    }
    teardown_stream(&f);
}

/* A time column holds UTC: an offset is applied, never dropped. */
static void test_time_offsets_to_utc(void **state)
{
    (void)state;
    fixture f;
    setup_stream(&f, "{\"properties\":{\"t\":{\"type\":\"string\",\"format\":\"time\"}}}", NULL);
    tgt_error err;
    static const char *const in[] = {"10:00:00",       "10:00:00+05:30", "02:00-05:21:10",
                                     "02:00:00.25+05", "24:00:00Z",      "23:30:00.5-01:00"};
    static const char *const out[] = {"10:00:00",    "04:30:00", "07:21:10",
                                      "21:00:00.25", "24:00:00", "00:30:00.5"};
    for (size_t i = 0; i < sizeof(in) / sizeof(*in); i++) {
        char rec[64], want[96];
        snprintf(rec, sizeof(rec), "{\"t\":\"%s\"}", in[i]);
        snprintf(want, sizeof(want), "%s\t2026-01-01 00:00:00.000000+00\n", out[i]);
        tgt_sbuf_reset(&f.stream.chunk);
        assert_int_equal(encode(&f, rec, &err), 0);
        assert_string_equal(tgt_sbuf_str(&f.stream.chunk), want);
    }
    teardown_stream(&f);
}

static void test_nul_replaced_and_counted(void **state)
{
    (void)state;
    fixture f;
    setup_stream(&f, "{\"properties\":{\"s\":{\"type\":\"string\"},\"j\":{}}}", NULL);
    tgt_error err;
    assert_int_equal(encode(&f, "{\"s\":\"a\\u0000b\",\"j\":{\"k\":\"\\u0000\"}}", &err), 0);
    assert_string_equal(tgt_sbuf_str(&f.stream.chunk),
                        "a\xef\xbf\xbd"
                        "b\t{\"k\":\"\\\\ufffd\"}\t2026-01-01 00:00:00.000000+00\n");
    assert_int_equal(f.stream.nul_replaced, 2);
    teardown_stream(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_row_in_column_order), cmocka_unit_test(test_missing_and_null_values),
        cmocka_unit_test(test_presence_mask),       cmocka_unit_test(test_bad_values_leave_nothing),
        cmocka_unit_test(test_integral_forms),      cmocka_unit_test(test_nonfinite_numbers),
        cmocka_unit_test(test_time_offsets_to_utc), cmocka_unit_test(test_nul_replaced_and_counted),
    };
    return cmocka_run_group_tests_name("record", tests, NULL, NULL);
}

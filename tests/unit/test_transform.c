/*
 * test_transform.c - the transformation types on single values (the masks,
 * the hashes, null and other types), the rules read from the setting
 * (errors name the rule), and RECORD lines rewritten by rules: the new
 * line, its tokens (which must equal a fresh parse of it), conditions,
 * nested paths, removed members and duplicate members.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "message.h"
#include "transform.h"
#include "transform_value.h"

/* ---- single values ------------------------------------------------------ */

static const char *apply_kind(const char *type, tgt_json_type in_type, const char *text,
                              tgt_transform_result *res)
{
    static tgt_sbuf out; /* the test's own scratch */
    tgt_transform_kind kind;
    int n;
    assert_int_equal(tgt_transform_kind_parse(type, &kind, &n), 0);
    tgt_hmac_sha256_key key;
    tgt_hmac_sha256_key_init(&key, "key", 3);
    tgt_transform_input in = {in_type, text, strlen(text)};
    tgt_sbuf_deinit(&out);
    tgt_sbuf_init(&out);
    tgt_sbuf_append(&out, "", 0);
    *res = tgt_transform_value(kind, n, &key, &in, &out);
    assert_true(tgt_sbuf_ok(&out));
    return tgt_sbuf_str(&out);
}

static void expect(const char *type, tgt_json_type in_type, const char *text,
                   tgt_transform_result want_res, const char *want)
{
    tgt_transform_result res;
    const char *got = apply_kind(type, in_type, text, &res);
    assert_int_equal(res, want_res);
    assert_string_equal(got, want);
}

#define SHA_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void test_types_on_strings(void **state)
{
    (void)state;
    expect("SET-NULL", TGT_JSON_STRING, "x", TGT_TV_NULL, "");
    expect("HASH", TGT_JSON_STRING, "abc", TGT_TV_STRING, SHA_ABC);
    /* value[:2] + sha256(bytes[2:]) */
    expect("HASH-SKIP-FIRST-2", TGT_JSON_STRING, "xxabc", TGT_TV_STRING, "xx" SHA_ABC);
    /* characters kept, bytes skipped (the same for ASCII): é is 2 bytes */
    expect("HASH-SKIP-FIRST-1", TGT_JSON_STRING,
           "\xC3\xA9"
           "abc",
           TGT_TV_STRING,
           "\xC3\xA9"
           "69485211a0d4dc41c5596b3b7ea7ae66bf37c5d31227f8df555ae1bd71bb91e6");
    expect("MASK-DATE", TGT_JSON_STRING, "1980-05-17", TGT_TV_STRING, "1980-01-01");
    expect("MASK-DATE", TGT_JSON_STRING, "2021-12-31T23:59:59.5+02:00", TGT_TV_STRING,
           "2021-01-01T23:59:59.5+02:00");
    expect("MASK-DATE", TGT_JSON_STRING, "31/12/2021", TGT_TV_FAILED, "");
    expect("MASK-DATE", TGT_JSON_STRING, "2021-02-30", TGT_TV_FAILED, "");
    expect("MASK-NUMBER", TGT_JSON_STRING, "12", TGT_TV_NUMBER, "0");
    expect("MASK-HIDDEN", TGT_JSON_STRING, "secret", TGT_TV_STRING, "hidden");
    expect("MASK-STRING-SKIP-ENDS-2", TGT_JSON_STRING, "1234567", TGT_TV_STRING, "12***67");
    expect("MASK-STRING-SKIP-ENDS-2", TGT_JSON_STRING, "1234", TGT_TV_STRING, "****");
    expect("MASK-STRING-SKIP-ENDS-1", TGT_JSON_STRING,
           "\xC3\xA9"
           "bc\xE2\x82\xAC",
           TGT_TV_STRING, "\xC3\xA9**\xE2\x82\xAC");
    /* transform-field would append the whole value for n = 0 */
    expect("MASK-STRING-SKIP-ENDS-0", TGT_JSON_STRING, "abc", TGT_TV_STRING, "***");
    expect("MASK-STRING-SKIP-ENDS-3", TGT_JSON_STRING, "", TGT_TV_STRING, "");
    /* RFC 4231 test case 2's key and data */
    tgt_transform_result res;
    const char *a = apply_kind("HMAC", TGT_JSON_STRING, "alice", &res);
    char first[65];
    snprintf(first, sizeof(first), "%s", a);
    assert_int_equal(strlen(first), 64);
    assert_string_not_equal(first, SHA_ABC);
    char email[200];
    snprintf(email, sizeof(email), "%s@example.com", first);
    expect("HMAC-EMAIL", TGT_JSON_STRING, "alice@example.com", TGT_TV_STRING, email);
    /* the last '@' splits */
    const char *b = apply_kind("HMAC-EMAIL", TGT_JSON_STRING, "\"a@b\"@x.org", &res);
    assert_int_equal(strlen(b), 64 + 6);
    assert_string_equal(b + 64, "@x.org");
}

static void test_types_on_null_and_other_types(void **state)
{
    (void)state;
    expect("HASH", TGT_JSON_NULL, "null", TGT_TV_NULL, "");
    expect("HMAC", TGT_JSON_NULL, "null", TGT_TV_NULL, "");
    expect("MASK-DATE", TGT_JSON_NULL, "null", TGT_TV_NULL, "");
    expect("MASK-STRING-SKIP-ENDS-1", TGT_JSON_NULL, "null", TGT_TV_NULL, "");
    /* as in transform-field: these two replace any value, null too */
    expect("MASK-NUMBER", TGT_JSON_NULL, "null", TGT_TV_NUMBER, "0");
    expect("MASK-HIDDEN", TGT_JSON_NULL, "null", TGT_TV_STRING, "hidden");
    /* a number hashes as its JSON text (transform-field would keep it clear) */
    expect("HASH", TGT_JSON_NUMBER, "abc", TGT_TV_STRING, SHA_ABC);
    expect("MASK-STRING-SKIP-ENDS-1", TGT_JSON_NUMBER, "12345", TGT_TV_STRING, "1***5");
    expect("MASK-DATE", TGT_JSON_NUMBER, "19800517", TGT_TV_FAILED, "");
}

static void test_kind_names(void **state)
{
    (void)state;
    tgt_transform_kind k;
    int n;
    assert_int_equal(tgt_transform_kind_parse("HASH-SKIP-FIRST-12", &k, &n), -1);
    assert_int_equal(tgt_transform_kind_parse("HASH-SKIP-FIRST-", &k, &n), -1);
    assert_int_equal(tgt_transform_kind_parse("hash", &k, &n), -1);
    assert_int_equal(tgt_transform_kind_parse("MASK-STRING-SKIP-ENDS-9", &k, &n), 0);
    assert_int_equal(k, TGT_TR_MASK_STRING_SKIP_ENDS);
    assert_int_equal(n, 9);
    assert_int_equal(tgt_transform_kind_parse("DROP", &k, &n), 0);
    assert_int_equal(k, TGT_TR_DROP);
}

/* ---- rules -------------------------------------------------------------- */

static void expect_rules_error(const char *rules, const char *key, const char *fragment)
{
    tgt_transform *t = NULL;
    tgt_error err;
    tgt_error_init(&err);
    assert_int_equal(tgt_transform_new(rules, key, &t, &err), -1);
    assert_null(t);
    assert_int_equal(err.code, TGT_ERR_USAGE);
    if (strstr(err.message, fragment) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.message, fragment);
}

static void test_rule_errors(void **state)
{
    (void)state;
    expect_rules_error("{}", NULL, "must be a list");
    expect_rules_error("[{\"tap_stream_name\":\"s\",\"field_id\":\"f\",\"type\":\"HASHH\"}]", NULL,
                       "rule 1: unknown type \"HASHH\"");
    expect_rules_error("[{\"tap_stream_name\":\"s\",\"field_id\":\"f\",\"type\":\"HASH\"},"
                       "{\"tap_stream_name\":\"s\",\"field_id\":\"g\",\"type\":\"HMAC\"}]",
                       NULL, "rule 2: type HMAC needs the secret setting");
    expect_rules_error("[{\"tap_stream_name\":\"s\",\"type\":\"HASH\"}]", NULL,
                       "\"field_id\" must be a non-empty string");
    expect_rules_error("[{\"tap_stream_name\":\"s\",\"field_id\":\"f\",\"type\":\"HASH\","
                       "\"when\":[{\"column\":\"c\"}]}]",
                       NULL, "needs \"equals\" or a \"regex_match\"");
    expect_rules_error("[{\"tap_stream_name\":\"s\",\"field_id\":\"f\",\"type\":\"HASH\","
                       "\"when\":[{\"column\":\"c\",\"regex_match\":\"(\"}]}]",
                       NULL, "not a POSIX extended regular expression");
    expect_rules_error("[{\"tap_stream_name\":\"s\",\"field_id\":\"f\",\"type\":\"DROP\","
                       "\"when\":[{\"column\":\"c\",\"equals\":1}]}]",
                       NULL, "DROP takes no \"when\"");
    expect_rules_error("[{\"tap_stream_name\":\"s\",\"field_id\":\"f\",\"type\":\"HASH\","
                       "\"field_paths\":[\"a//b\"]}]",
                       NULL, "empty part");
    /* the key is never quoted in a message */
    expect_rules_error("[{\"tap_stream_name\":\"s\",\"field_id\":\"f\",\"type\":\"X\"}]", "sekrit",
                       "unknown type");
}

/* ---- records ------------------------------------------------------------ */

typedef struct fixture {
    tgt_transform *t;
    tgt_json_parser p;
    tgt_sbuf scratch;
    char out[2048];
} fixture;

static void setup_rules(fixture *f, const char *rules)
{
    tgt_error err;
    tgt_error_init(&err);
    memset(f, 0, sizeof(*f));
    if (tgt_transform_new(rules, "key", &f->t, &err) != 0)
        fail_msg("%s", err.message);
    tgt_json_parser_init(&f->p);
    f->p.skip_array_items = 1;
    tgt_sbuf_init(&f->scratch);
}

static void teardown_rules(fixture *f)
{
    tgt_transform_free(f->t);
    tgt_json_parser_deinit(&f->p);
    tgt_sbuf_deinit(&f->scratch);
}

/* Rewrites line (stream "s") and returns the new line (or the old one);
 * checks the tokens against a fresh parse of the new line. */
static const char *rewrite(fixture *f, const char *line)
{
    tgt_error err;
    tgt_error_init(&err);
    tgt_message msg;
    assert_int_equal(tgt_message_parse(&f->p, line, strlen(line), &msg, &f->scratch, &err), 0);
    tgt_transform_stream *ts = tgt_transform_find_stream(f->t, "s", 1);
    tgt_transformed r;
    int rc = tgt_transform_record(f->t, ts, &f->p, line, strlen(line), &msg, &r, &err);
    assert_true(rc >= 0);
    snprintf(f->out, sizeof(f->out), "%.*s", (int)r.len, r.line);
    tgt_json_parser fresh;
    tgt_json_parser_init(&fresh);
    fresh.skip_array_items = 1;
    tgt_sbuf s2;
    tgt_sbuf_init(&s2);
    tgt_message m2;
    assert_int_equal(tgt_message_parse(&fresh, r.line, r.len, &m2, &s2, &err), 0);
    assert_int_equal(fresh.n_tokens, r.p->n_tokens);
    for (size_t i = 0; i < fresh.n_tokens; i++) {
        const tgt_json_token *a = &fresh.tokens[i], *b = &r.p->tokens[i];
        if (a->type != b->type || a->flags != b->flags || a->size != b->size ||
            a->start != b->start || a->len != b->len || a->end != b->end)
            fail_msg("token %zu of %s differs: type %d/%d flags %d/%d size %u/%u start %zu/%zu "
                     "len %zu/%zu end %zu/%zu",
                     i, f->out, a->type, b->type, a->flags, b->flags, a->size, b->size, a->start,
                     b->start, a->len, b->len, a->end, b->end);
    }
    assert_int_equal(m2.record, r.msg->record);
    assert_int_equal(m2.version, r.msg->version);
    assert_int_equal(m2.time_extracted, r.msg->time_extracted);
    tgt_json_parser_deinit(&fresh);
    tgt_sbuf_deinit(&s2);
    return f->out;
}

#define REC(body) "{\"type\":\"RECORD\",\"stream\":\"s\",\"record\":" body "}"

static void test_record_rewrite(void **state)
{
    (void)state;
    fixture f;
    setup_rules(&f, "[{\"tap_stream_name\":\"s\",\"field_id\":\"a\",\"type\":\"MASK-HIDDEN\"},"
                    "{\"tap_stream_name\":\"s\",\"field_id\":\"gone\",\"type\":\"DROP\"},"
                    "{\"tap_stream_name\":\"other\",\"field_id\":\"a\",\"type\":\"DROP\"}]");
    assert_string_equal(
        rewrite(&f, REC("{\"a\": \"x\\\"y\", \"b\": [1, {\"c\": 2}], \"gone\": 1}")),
        REC("{\"a\":\"hidden\",\"b\":[1, {\"c\": 2}]}"));
    /* the dropped member first, last, alone; the envelope's other members kept */
    assert_string_equal(
        rewrite(&f, "{\"type\":\"RECORD\",\"stream\":\"s\",\"record\":{\"gone\":1,\"z\":NaN},"
                    "\"version\":3,\"time_extracted\":\"2020-01-01\"}"),
        "{\"type\":\"RECORD\",\"stream\":\"s\",\"record\":{\"z\":NaN},\"version\":3,"
        "\"time_extracted\":\"2020-01-01\"}");
    assert_string_equal(rewrite(&f, REC("{\"gone\":{\"deep\":1}}")), REC("{}"));
    /* no rule applies: the line as it was */
    assert_string_equal(rewrite(&f, REC("{\"b\" : 1}")), REC("{\"b\" : 1}"));
    /* an earlier duplicate of an edited member goes (readers take the last);
     * an untouched duplicate stays */
    assert_string_equal(rewrite(&f, REC("{\"a\":\"clear\",\"b\":1,\"\\u0061\":\"x\",\"b\":2}")),
                        REC("{\"b\":1,\"\\u0061\":\"hidden\",\"b\":2}"));
    /* a second "record" member of the envelope cannot carry the clear value on */
    assert_string_equal(
        rewrite(&f, "{\"type\":\"RECORD\",\"record\":{\"a\":\"clear\"},\"stream\":\"s\","
                    "\"record\":{\"a\":\"clear\"}}"),
        "{\"type\":\"RECORD\",\"stream\":\"s\",\"record\":{\"a\":\"hidden\"}}");
    teardown_rules(&f);
}

static void test_record_conditions_and_order(void **state)
{
    (void)state;
    fixture f;
    setup_rules(&f, "[{\"tap_stream_name\":\"s\",\"field_id\":\"n\",\"type\":\"MASK-HIDDEN\","
                    "\"when\":[{\"column\":\"c\",\"equals\":\"DE\"},"
                    "{\"column\":\"m\",\"field_path\":\"k/v\",\"regex_match\":\"^\\\\d+$\"}]},"
                    "{\"tap_stream_name\":\"s\",\"field_id\":\"c\",\"type\":\"SET-NULL\","
                    "\"when\":[{\"column\":\"n\",\"equals\":\"hidden\"}]},"
                    "{\"tap_stream_name\":\"s\",\"field_id\":\"x\",\"type\":\"MASK-NUMBER\","
                    "\"when\":[{\"column\":\"absent\",\"regex_match\":\"^$\"},"
                    "{\"column\":\"y\",\"equals\":1}]}]");
    /* both conditions hold; the second rule then sees the first rule's value */
    assert_string_equal(rewrite(&f, REC("{\"n\":\"N\",\"c\":\"DE\",\"m\":{\"k\":{\"v\":\"42\"}}}")),
                        REC("{\"n\":\"hidden\",\"c\":null,\"m\":{\"k\":{\"v\":\"42\"}}}"));
    /* regex on a non-string, a missing path, another value: not met */
    assert_string_equal(rewrite(&f, REC("{\"n\":\"N\",\"c\":\"DE\",\"m\":{\"k\":{\"v\":42}}}")),
                        REC("{\"n\":\"N\",\"c\":\"DE\",\"m\":{\"k\":{\"v\":42}}}"));
    assert_string_equal(rewrite(&f, REC("{\"n\":\"N\",\"c\":\"DE\",\"m\":{\"k\":1}}")),
                        REC("{\"n\":\"N\",\"c\":\"DE\",\"m\":{\"k\":1}}"));
    assert_string_equal(rewrite(&f, REC("{\"n\":\"N\",\"c\":\"FR\",\"m\":{\"k\":{\"v\":\"1\"}}}")),
                        REC("{\"n\":\"N\",\"c\":\"FR\",\"m\":{\"k\":{\"v\":\"1\"}}}"));
    /* a missing column reads as "" (record.get(column, "")); 1 equals 1.0 */
    assert_string_equal(rewrite(&f, REC("{\"x\":5,\"y\":1.0}")), REC("{\"x\":0,\"y\":1.0}"));
    assert_string_equal(rewrite(&f, REC("{\"x\":5,\"y\":2}")), REC("{\"x\":5,\"y\":2}"));
    teardown_rules(&f);
}

static void test_record_field_paths(void **state)
{
    (void)state;
    fixture f;
    setup_rules(&f, "[{\"tap_stream_name\":\"s\",\"field_id\":\"o\",\"type\":\"MASK-HIDDEN\","
                    "\"field_paths\":[\"a/b\",\"c\",\"missing/x\"]},"
                    "{\"tap_stream_name\":\"s\",\"field_id\":\"o\",\"type\":\"DROP\","
                    "\"field_paths\":[\"d\"]}]");
    assert_string_equal(
        rewrite(&f,
                REC("{\"o\":{\"a\":{\"b\":\"\\u00e9\",\"k\":1},\"c\":[1],\"d\":\"x\"},\"p\":1}")),
        REC("{\"o\":{\"a\":{\"b\":\"hidden\",\"k\":1},\"c\":\"hidden\"},\"p\":1}"));
    /* not an object: the whole value, as transform-field does (so the DROP
     * of o/d drops all of o) */
    assert_string_equal(rewrite(&f, REC("{\"o\":\"flat\",\"p\":1}")), REC("{\"p\":1}"));
    teardown_rules(&f);
}

/* A duplicate that follows an object holding edits of its own is still
 * dropped: each object keeps its own list of edited members. */
static void test_record_nested_and_duplicates(void **state)
{
    (void)state;
    fixture f;
    setup_rules(&f, "[{\"tap_stream_name\":\"s\",\"field_id\":\"a\",\"type\":\"MASK-HIDDEN\"},"
                    "{\"tap_stream_name\":\"s\",\"field_id\":\"o\",\"type\":\"MASK-HIDDEN\","
                    "\"field_paths\":[\"p\",\"r\"]},"
                    "{\"tap_stream_name\":\"s\",\"field_id\":\"gone\",\"type\":\"DROP\"}]");
    assert_string_equal(
        rewrite(&f, REC("{\"o\":{\"p\":\"c1\",\"q\":1,\"r\":\"c2\"},\"a\":\"clear\","
                        "\"a\":\"v\",\"gone\":0}")),
        REC("{\"o\":{\"p\":\"hidden\",\"q\":1,\"r\":\"hidden\"},\"a\":\"hidden\"}"));
    teardown_rules(&f);
}

static void test_record_escapes(void **state)
{
    (void)state;
    fixture f;
    setup_rules(&f, "[{\"tap_stream_name\":\"s\",\"field_id\":\"a\",\"type\":"
                    "\"MASK-STRING-SKIP-ENDS-2\"},"
                    "{\"tap_stream_name\":\"s\",\"field_id\":\"e\",\"type\":\"HMAC-EMAIL\"}]");
    /* kept characters are escaped again where JSON needs it */
    assert_string_equal(rewrite(&f, REC("{\"a\":\"\\\"\\n-x-\\t\\\\\"}")),
                        REC("{\"a\":\"\\\"\\u000a***\\u0009\\\\\"}"));
    const char *out = rewrite(&f, REC("{\"e\":\"a@d\\u00e9.example\"}"));
    assert_non_null(strstr(out, "@d\xC3\xA9.example\"}}"));
    teardown_rules(&f);
}

static void test_schema(void **state)
{
    (void)state;
    fixture f;
    setup_rules(&f, "[{\"tap_stream_name\":\"s\",\"field_id\":\"id\",\"type\":\"HMAC\"},"
                    "{\"tap_stream_name\":\"s\",\"field_id\":\"ssn\",\"type\":\"DROP\"},"
                    "{\"tap_stream_name\":\"s\",\"field_id\":\"ok\",\"type\":\"MASK-NUMBER\"},"
                    "{\"tap_stream_name\":\"s\",\"field_id\":\"amount\",\"type\":\"MASK-NUMBER\"},"
                    "{\"tap_stream_name\":\"s\",\"field_id\":\"born\",\"type\":\"MASK-DATE\"},"
                    "{\"tap_stream_name\":\"s\",\"field_id\":\"o\",\"type\":\"HASH\","
                    "\"field_paths\":[\"a/b\"]}]");
    json_error_t jerr;
    json_t *root =
        json_loads("{\"key_properties\":[\"id\"],\"schema\":{\"required\":[\"ssn\",\"id\"],"
                   "\"properties\":{\"id\":{\"type\":\"integer\"},\"ssn\":{\"type\":\"string\"},"
                   "\"ok\":{\"type\":\"boolean\"},\"amount\":{\"type\":\"number\"},"
                   "\"born\":{\"type\":\"string\",\"format\":\"date\"},"
                   "\"o\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"object\","
                   "\"properties\":{\"b\":{\"type\":\"integer\"}}}}}}}}",
                   0, &jerr);
    assert_non_null(root);
    tgt_error err;
    tgt_error_init(&err);
    assert_int_equal(tgt_transform_schema(tgt_transform_find_stream(f.t, "s", 1), root, &err), 0);
    char *text = json_dumps(json_object_get(root, "schema"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(
        text, "{\"properties\":{\"amount\":{\"type\":\"number\"},\"born\":{\"format\":\"date\","
              "\"type\":\"string\"},\"id\":{\"type\":[\"string\",\"null\"]},\"o\":{\"properties\":"
              "{\"a\":{\"properties\":{\"b\":{\"type\":[\"string\",\"null\"]}},\"type\":"
              "\"object\"}},\"type\":\"object\"},\"ok\":{\"type\":[\"integer\",\"null\"]}},"
              "\"required\":[\"id\"]}");
    free(text);
    json_decref(root);
    /* a DROP of a key property is refused */
    root = json_loads("{\"key_properties\":[\"ssn\"],\"schema\":{\"properties\":{\"ssn\":{}}}}", 0,
                      &jerr);
    assert_int_equal(tgt_transform_schema(tgt_transform_find_stream(f.t, "s", 1), root, &err), -1);
    assert_int_equal(err.code, TGT_ERR_USAGE);
    assert_non_null(strstr(err.message, "key property"));
    json_decref(root);
    teardown_rules(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types_on_strings),
        cmocka_unit_test(test_types_on_null_and_other_types),
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_rule_errors),
        cmocka_unit_test(test_record_rewrite),
        cmocka_unit_test(test_record_conditions_and_order),
        cmocka_unit_test(test_record_field_paths),
        cmocka_unit_test(test_record_nested_and_duplicates),
        cmocka_unit_test(test_record_escapes),
        cmocka_unit_test(test_schema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

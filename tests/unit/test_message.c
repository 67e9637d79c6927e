/*
 * test_message.c - Singer envelopes (message.h): members found whatever
 * their order, spelling with escapes or duplication; missing or mistyped
 * members named in the error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "message.h"

typedef struct fixture {
    tgt_json_parser p;
    tgt_sbuf scratch;
    tgt_error err;
    tgt_message m;
} fixture;

static int parse(fixture *f, const char *line)
{
    tgt_json_parser_init(&f->p);
    tgt_sbuf_init(&f->scratch);
    tgt_error_init(&f->err);
    f->p.skip_array_items = 1;
    return tgt_message_parse(&f->p, line, strlen(line), &f->m, &f->scratch, &f->err);
}

static void done(fixture *f)
{
    tgt_json_parser_deinit(&f->p);
    tgt_sbuf_deinit(&f->scratch);
}

/* The text of the token at index i. */
static void expect_token(const fixture *f, const char *line, long i, const char *want)
{
    assert_true(i > 0);
    const tgt_json_token *t = &f->p.tokens[i];
    if (t->len != strlen(want) || memcmp(line + t->start, want, t->len) != 0)
        fail_msg("token %ld is %.*s, want %s", i, (int)t->len, line + t->start, want);
}

static void test_record_members_any_order(void **state)
{
    (void)state;
    fixture f;
    const char *line = "{\"time_extracted\":\"2024-01-01T00:00:00Z\",\"record\":{\"a\":1},"
                       "\"version\":7,\"stream\":\"s\",\"type\":\"RECORD\"}";
    assert_int_equal(parse(&f, line), 0);
    assert_int_equal(f.m.type, TGT_MSG_RECORD);
    assert_int_equal(f.m.stream_len, 1);
    assert_memory_equal(f.m.stream, "s", 1);
    expect_token(&f, line, f.m.record, "{\"a\":1}");
    expect_token(&f, line, f.m.version, "7");
    expect_token(&f, line, f.m.time_extracted, "2024-01-01T00:00:00Z");
    done(&f);
}

/* Escaped key spellings are the same names; a later duplicate wins. */
static void test_escaped_and_duplicate_members(void **state)
{
    (void)state;
    fixture f;
    const char *line = "{\"\\u0074ype\":\"RECORD\",\"str\\u0065am\":\"s\",\"record\":{\"a\":1},"
                       "\"streams\":\"no\",\"record\":{\"b\":2}}";
    assert_int_equal(parse(&f, line), 0);
    assert_int_equal(f.m.type, TGT_MSG_RECORD);
    assert_memory_equal(f.m.stream, "s", 1);
    expect_token(&f, line, f.m.record, "{\"b\":2}");
    assert_int_equal(f.m.version, -1);
    assert_int_equal(f.m.time_extracted, -1);
    done(&f);
}

static void expect_error(const char *line, const char *want)
{
    fixture f;
    assert_int_equal(parse(&f, line), -1);
    if (strcmp(f.err.message, want) != 0)
        fail_msg("%s: got \"%s\", want \"%s\"", line, f.err.message, want);
    done(&f);
}

static void test_missing_and_mistyped_members(void **state)
{
    (void)state;
    expect_error("{\"types\":\"RECORD\"}", "message has no \"type\"");
    expect_error("{\"type\":\"RECORD\",\"stream\":\"s\"}", "RECORD message has no \"record\"");
    expect_error("{\"type\":\"RECORD\",\"stream\":\"s\",\"record\":[]}",
                 "RECORD message's \"record\" must be an object");
    expect_error("{\"type\":\"SCHEMA\",\"stream\":\"s\",\"record\":{}}",
                 "SCHEMA message has no \"schema\"");
    expect_error("{\"type\":\"STATE\"}", "STATE message has no \"value\"");
    expect_error("{\"type\":\"ACTIVATE_VERSION\",\"stream\":\"s\",\"version\":\"1\"}",
                 "ACTIVATE_VERSION message's \"version\" must be a number");
    expect_error("{\"type\":\"BATCH\",\"stream\":\"\"}", "BATCH message has an empty \"stream\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_members_any_order),
        cmocka_unit_test(test_escaped_and_duplicate_members),
        cmocka_unit_test(test_missing_and_mistyped_members),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

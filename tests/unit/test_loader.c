/*
 * test_loader.c - the loader's commit points, STATE promise, schema
 * evolution decisions, replay spool and recovery, against the in-memory
 * fake driver (drivers/fake/), which can fail any call on demand.  These are
 * the fault paths that otherwise need a real server (and a proxy or a
 * killed backend) to reach; tests/integration/ checks the same promises on
 * PostgreSQL.
 *
 * Each test feeds Singer lines through tgt_message_parse and
 * tgt_loader_handle, as target.c does, with STATE written to a memory
 * stream.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fake/fake_driver.h"
#include "loader.h"
#include "log.h"
#include "message.h"
#include "naming.h"

typedef struct fixture {
    tgt_config cfg;
    tgt_driver *driver;
    tgt_loader loader;
    tgt_json_parser parser;
    tgt_sbuf scratch;
    char *state_text;
    size_t state_len;
    FILE *state_out;
    unsigned long line_no;
    tgt_error err;
} fixture;

/* Settings each test may change before start(), which finishes them. */
static void setup_config(fixture *fx)
{
    tgt_config_init(&fx->cfg);
    fx->cfg.connect_retry_delay_ms = 0;
}

static void set_string(char **field, const char *value)
{
    free(*field);
    *field = strdup(value);
    assert_non_null(*field);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    tgt_log_set_level(TGT_LOG_ERROR);
    setup_config(fx);
    tgt_error_init(&fx->err);
    fx->driver = tgt_fake_driver_new(&fx->err);
    assert_non_null(fx->driver);
    tgt_json_parser_init(&fx->parser);
    fx->parser.skip_array_items = 1;
    tgt_sbuf_init(&fx->scratch);
    fx->state_out = open_memstream(&fx->state_text, &fx->state_len);
    assert_non_null(fx->state_out);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    tgt_loader_deinit(&fx->loader);
    fx->driver->ops->free(fx->driver);
    tgt_json_parser_deinit(&fx->parser);
    tgt_sbuf_deinit(&fx->scratch);
    fclose(fx->state_out);
    free(fx->state_text);
    tgt_config_deinit(&fx->cfg);
    free(fx);
    return 0;
}

static void start(fixture *fx)
{
    assert_int_equal(tgt_config_finish(&fx->cfg, &fx->err), 0);
    assert_int_equal(
        tgt_loader_init(&fx->loader, &fx->cfg, fx->driver, "stdin", fx->state_out, &fx->err), 0);
}

/* Handles one line; returns what tgt_loader_handle returned. */
static int feed(fixture *fx, const char *line)
{
    tgt_message msg;
    fx->line_no++;
    if (tgt_message_parse(&fx->parser, line, strlen(line), &msg, &fx->scratch, &fx->err) != 0)
        return -1;
    return tgt_loader_handle(&fx->loader, &fx->parser, line, strlen(line), fx->line_no, &msg,
                             &fx->err);
}

static void feed_ok(fixture *fx, const char *line)
{
    if (feed(fx, line) != 0)
        fail_msg("line %lu: %s", fx->line_no, fx->err.message);
}

static const char *states(fixture *fx)
{
    fflush(fx->state_out);
    return fx->state_text == NULL ? "" : fx->state_text;
}

static void feed_records(fixture *fx, const char *stream, int from, int to)
{
    char line[256];
    for (int i = from; i <= to; i++) {
        snprintf(line, sizeof(line),
                 "{\"type\":\"RECORD\",\"stream\":\"%s\",\"record\":{\"id\":%d,\"v\":\"r%d\"}}",
                 stream, i, i);
        feed_ok(fx, line);
    }
}

#define KEYED_SCHEMA                                                                               \
    "{\"type\":\"SCHEMA\",\"stream\":\"k\",\"key_properties\":[\"id\"],\"schema\":{"               \
    "\"properties\":{\"id\":{\"type\":\"integer\"},\"v\":{\"type\":\"string\"}}}}"
#define APPEND_SCHEMA                                                                              \
    "{\"type\":\"SCHEMA\",\"stream\":\"a\",\"key_properties\":[],\"schema\":{"                     \
    "\"properties\":{\"id\":{\"type\":\"integer\"},\"v\":{\"type\":\"string\"}}}}"

/* A first run that leaves row `key` in keyed stream k's table, then a new
 * loader on the same database: the run under test finds the table not
 * empty, so its keyed rows go through staging and merge. */
static void preload_keyed(fixture *fx, int key)
{
    feed_ok(fx, KEYED_SCHEMA);
    feed_records(fx, "k", key, key);
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
    tgt_loader_deinit(&fx->loader);
    assert_int_equal(
        tgt_loader_init(&fx->loader, &fx->cfg, fx->driver, "stdin", fx->state_out, &fx->err), 0);
}

/* STATE goes out only once every record before it is committed. */
static void test_state_waits_for_commit(void **state)
{
    fixture *fx = *state;
    fx->cfg.batch_size_rows = 2;
    start(fx);
    feed_ok(fx, KEYED_SCHEMA);
    feed_records(fx, "k", 1, 1);
    feed_ok(fx, "{\"type\":\"STATE\",\"value\":{\"at\":1}}");
    assert_string_equal(states(fx), "");
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "k"), 0);
    feed_records(fx, "k", 2, 2); /* batch_size_rows reached: commit point */
    assert_string_equal(states(fx), "{\"at\":1}\n");
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "k"), 2);
    feed_records(fx, "k", 3, 3);
    feed_ok(fx, "{\"type\":\"STATE\",\"value\":{\"at\":3}}");
    assert_string_equal(states(fx), "{\"at\":1}\n");
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
    assert_string_equal(states(fx), "{\"at\":1}\n{\"at\":3}\n");
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "k"), 3);
}

/* A STATE with nothing pending before it goes out at once. */
static void test_state_with_nothing_pending(void **state)
{
    fixture *fx = *state;
    start(fx);
    feed_ok(fx, "{\"type\":\"STATE\",\"value\":{\"at\":0}}");
    assert_string_equal(states(fx), "{\"at\":0}\n");
    assert_int_equal(tgt_fake_calls(fx->driver, "commit"), 0);
}

/* Newest record per key wins inside one batch. */
static void test_newest_record_wins(void **state)
{
    fixture *fx = *state;
    start(fx);
    feed_ok(fx, KEYED_SCHEMA);
    feed_ok(fx, "{\"type\":\"RECORD\",\"stream\":\"k\",\"record\":{\"id\":1,\"v\":\"old\"}}");
    feed_ok(fx, "{\"type\":\"RECORD\",\"stream\":\"k\",\"record\":{\"id\":1,\"v\":\"new\"}}");
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "k"), 1);
    assert_string_equal(tgt_fake_value(fx->driver, "public", "k", 0, "v", NULL), "new");
}

/* Absent is not null: a record that omits a property keeps the stored
 * value (also from an earlier record of the same batch); an explicit null
 * stores NULL. */
static void test_absent_keeps_stored_value(void **state)
{
    fixture *fx = *state;
    fx->cfg.batch_size_rows = 2;
    start(fx);
    feed_ok(fx, KEYED_SCHEMA);
    feed_ok(fx, "{\"type\":\"RECORD\",\"stream\":\"k\",\"record\":{\"id\":1,\"v\":\"a\"}}");
    feed_ok(fx, "{\"type\":\"RECORD\",\"stream\":\"k\",\"record\":{\"id\":2,\"v\":\"b\"}}");
    feed_ok(fx, "{\"type\":\"RECORD\",\"stream\":\"k\",\"record\":{\"id\":1}}");
    feed_ok(fx, "{\"type\":\"RECORD\",\"stream\":\"k\",\"record\":{\"id\":2,\"v\":null}}");
    feed_ok(fx, "{\"type\":\"RECORD\",\"stream\":\"k\",\"record\":{\"id\":3,\"v\":\"c\"}}");
    feed_ok(fx, "{\"type\":\"RECORD\",\"stream\":\"k\",\"record\":{\"id\":3}}");
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "k"), 3);
    for (size_t r = 0; r < 3; r++) {
        const char *id = tgt_fake_value(fx->driver, "public", "k", r, "id", NULL);
        const char *v = tgt_fake_value(fx->driver, "public", "k", r, "v", NULL);
        if (strcmp(id, "1") == 0)
            assert_string_equal(v, "a");
        else if (strcmp(id, "2") == 0)
            assert_null(v);
        else
            assert_string_equal(v, "c");
    }
}

/* The connection breaks before COMMIT reaches the server: reconnect and
 * replay the batch from the spool, every row once. */
static void test_lost_commit_is_replayed(void **state)
{
    fixture *fx = *state;
    start(fx);
    feed_ok(fx, APPEND_SCHEMA);
    feed_records(fx, "a", 1, 5);
    feed_ok(fx, "{\"type\":\"STATE\",\"value\":5}");
    tgt_fake_fail_at(fx->driver, "commit", 1, TGT_FAKE_LOST, 0);
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "a"), 5);
    assert_int_equal(tgt_fake_calls(fx->driver, "connect"), 2);
    assert_string_equal(states(fx), "5\n");
}

/* The spool is reused after a commit, overwritten rather than emptied: a
 * replay of a shorter later batch sends that batch and nothing of the
 * longer one before it. */
static void test_replay_after_longer_batch(void **state)
{
    fixture *fx = *state;
    fx->cfg.batch_size_rows = 8;
    start(fx);
    feed_ok(fx, APPEND_SCHEMA);
    feed_records(fx, "a", 1, 8); /* committed at the 8th */
    assert_int_equal(tgt_fake_calls(fx->driver, "commit"), 1);
    feed_records(fx, "a", 9, 11);
    tgt_fake_fail_at(fx->driver, "commit", 1, TGT_FAKE_LOST, 0);
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "a"), 11);
    assert_int_equal(tgt_fake_calls(fx->driver, "connect"), 2);
}

/* The connection breaks after the server committed but before its reply
 * arrived: the server is asked, and nothing is sent again (an unkeyed
 * stream would get its rows twice). */
static void test_lost_commit_reply_is_not_replayed(void **state)
{
    fixture *fx = *state;
    start(fx);
    feed_ok(fx, APPEND_SCHEMA);
    feed_records(fx, "a", 1, 5);
    feed_ok(fx, "{\"type\":\"STATE\",\"value\":5}");
    tgt_fake_fail_at(fx->driver, "commit", 1, TGT_FAKE_LOST_AFTER, 0);
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "a"), 5);
    assert_int_equal(tgt_fake_calls(fx->driver, "commit_status"), 1);
    assert_int_equal(tgt_fake_calls(fx->driver, "commit"), 1);
    assert_string_equal(states(fx), "5\n");
}

/* A deadlock with another session: rolled back and run again. */
static void test_conflict_is_retried(void **state)
{
    fixture *fx = *state;
    start(fx);
    preload_keyed(fx, 100);
    feed_ok(fx, KEYED_SCHEMA);
    feed_records(fx, "k", 1, 4);
    feed_ok(fx, "{\"type\":\"STATE\",\"value\":4}");
    tgt_fake_fail_at(fx->driver, "merge", 1, TGT_FAKE_CONFLICT, 0);
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "k"), 5);
    assert_int_equal(tgt_fake_calls(fx->driver, "merge"), 2);
    assert_string_equal(states(fx), "4\n");
}

/* More streams than one transaction may touch: the open transaction is
 * committed early, but STATE waits for the commit point, and nothing
 * committed early is sent again when a later part must be replayed. */
static void test_tables_per_transaction(void **state)
{
    fixture *fx = *state;
    start(fx);
    tgt_fake_set_tables_per_transaction(fx->driver, 2);
    char line[512];
    for (int i = 0; i < 5; i++) {
        snprintf(line, sizeof(line),
                 "{\"type\":\"SCHEMA\",\"stream\":\"s%d\",\"key_properties\":[],\"schema\":{"
                 "\"properties\":{\"id\":{\"type\":\"integer\"},\"v\":{\"type\":\"string\"}}}}",
                 i);
        feed_ok(fx, line);
    }
    for (int i = 0; i < 5; i++) {
        snprintf(line, sizeof(line), "s%d", i);
        feed_records(fx, line, 1, 2);
    }
    feed_ok(fx, "{\"type\":\"STATE\",\"value\":\"all\"}");
    assert_string_equal(states(fx), "");
    /* the second of the (at least three) transactions of the commit point
     * is cut off before its COMMIT reaches the server */
    tgt_fake_fail_at(fx->driver, "commit", 2, TGT_FAKE_LOST, 0);
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
    assert_true(tgt_fake_calls(fx->driver, "commit") >= 4);
    for (int i = 0; i < 5; i++) {
        snprintf(line, sizeof(line), "s%d", i);
        assert_int_equal(tgt_fake_row_count(fx->driver, "public", line), 2);
    }
    assert_string_equal(states(fx), "\"all\"\n");
}

/* The connection breaks in the middle of a bulk write. */
static void test_lost_write_is_replayed(void **state)
{
    fixture *fx = *state;
    start(fx);
    feed_ok(fx, APPEND_SCHEMA);
    feed_ok(fx, KEYED_SCHEMA);
    feed_records(fx, "a", 1, 3);
    feed_records(fx, "k", 1, 3);
    tgt_fake_fail_at(fx->driver, "write_data", 2, TGT_FAKE_LOST, 0);
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "a"), 3);
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "k"), 3);
}

/* An error that reconnecting cannot fix: no STATE, the batch rolled back. */
static void test_failed_commit_writes_no_state(void **state)
{
    fixture *fx = *state;
    start(fx);
    feed_ok(fx, APPEND_SCHEMA);
    feed_records(fx, "a", 1, 2);
    feed_ok(fx, "{\"type\":\"STATE\",\"value\":2}");
    tgt_fake_fail_at(fx->driver, "commit", 1, TGT_FAKE_ERROR, 0);
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), -1);
    assert_int_equal(fx->err.code, TGT_ERR_LOAD);
    tgt_loader_abort(&fx->loader);
    assert_string_equal(states(fx), "");
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "a"), 0);
}

/* A keyed first load into a new table goes straight into it: no merge. */
static void test_keyed_first_load_direct(void **state)
{
    fixture *fx = *state;
    start(fx);
    feed_ok(fx, KEYED_SCHEMA);
    feed_records(fx, "k", 1, 4);
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "k"), 4);
    assert_int_equal(tgt_fake_calls(fx->driver, "merge"), 0);
}

/* The value of column v in the committed row of k whose id is `id`. */
static const char *keyed_value(fixture *fx, const char *id)
{
    size_t n = tgt_fake_row_count(fx->driver, "public", "k");
    for (size_t r = 0; r < n; r++) {
        const char *got = tgt_fake_value(fx->driver, "public", "k", r, "id", NULL);
        if (got != NULL && strcmp(got, id) == 0)
            return tgt_fake_value(fx->driver, "public", "k", r, "v", NULL);
    }
    return "(no row)";
}

/* A key twice in the batch of a direct load: the batch is sent again through
 * staging and the newest record wins; the stream merges from then on. */
static void test_direct_duplicate_key_falls_back(void **state)
{
    fixture *fx = *state;
    start(fx);
    feed_ok(fx, KEYED_SCHEMA);
    feed_records(fx, "k", 1, 3);
    feed_ok(fx, "{\"type\":\"RECORD\",\"stream\":\"k\",\"record\":{\"id\":2,\"v\":\"newer\"}}");
    feed_ok(fx, "{\"type\":\"STATE\",\"value\":4}");
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "k"), 3);
    assert_string_equal(keyed_value(fx, "2"), "newer");
    assert_string_equal(keyed_value(fx, "3"), "r3");
    assert_int_equal(tgt_fake_calls(fx->driver, "merge"), 1);
    assert_string_equal(states(fx), "4\n");
}

/* A later batch of the same run that sends a key of an earlier one again:
 * that batch alone is sent again through staging; nothing is lost. */
static void test_direct_later_batch_clash(void **state)
{
    fixture *fx = *state;
    fx->cfg.batch_size_rows = 3;
    start(fx);
    feed_ok(fx, KEYED_SCHEMA);
    feed_records(fx, "k", 1, 3); /* batch 1: direct, committed */
    feed_ok(fx, "{\"type\":\"STATE\",\"value\":3}");
    feed_records(fx, "k", 4, 5);
    feed_ok(fx, "{\"type\":\"RECORD\",\"stream\":\"k\",\"record\":{\"id\":1,\"v\":\"again\"}}");
    feed_ok(fx, "{\"type\":\"STATE\",\"value\":6}");
    feed_records(fx, "k", 7, 7);
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "k"), 6);
    assert_string_equal(keyed_value(fx, "1"), "again");
    assert_string_equal(keyed_value(fx, "5"), "r5");
    assert_string_equal(keyed_value(fx, "7"), "r7");
    assert_int_equal(tgt_fake_calls(fx->driver, "merge"), 2);
    assert_string_equal(states(fx), "3\n6\n");
}

/* A SCHEMA that finds the keyed table holding rows merges from the start. */
static void test_nonempty_table_merges(void **state)
{
    fixture *fx = *state;
    start(fx);
    preload_keyed(fx, 100);
    feed_ok(fx, KEYED_SCHEMA);
    feed_records(fx, "k", 1, 2);
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "k"), 3);
    assert_int_equal(tgt_fake_calls(fx->driver, "merge"), 1);
}

/* A row the database refuses, under invalid_records fail: the error names
 * its input line and nothing is committed. */
static void test_refused_row_fails_naming_line(void **state)
{
    fixture *fx = *state;
    start(fx);
    feed_ok(fx, APPEND_SCHEMA);  /* line 1 */
    feed_records(fx, "a", 1, 4); /* lines 2-5 */
    tgt_fake_fail_at(fx->driver, "write_data", 1, TGT_FAKE_REFUSED, 3);
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), -1);
    assert_non_null(strstr(fx->err.where, "line 4"));
    tgt_loader_abort(&fx->loader);
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "a"), 0);
}

/* The same refusal under invalid_records skip: only that record is dropped. */
static void test_refused_row_skipped(void **state)
{
    fixture *fx = *state;
    set_string(&fx->cfg.invalid_records, "skip");
    start(fx);
    feed_ok(fx, APPEND_SCHEMA);
    feed_records(fx, "a", 1, 4);
    feed_ok(fx, "{\"type\":\"STATE\",\"value\":4}");
    tgt_fake_fail_at(fx->driver, "write_data", 1, TGT_FAKE_REFUSED, 3);
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "a"), 3);
    for (size_t r = 0; r < 3; r++)
        assert_string_not_equal(tgt_fake_value(fx->driver, "public", "a", r, "id", NULL), "3");
    assert_string_equal(states(fx), "4\n");
}

/* A refusal that names no row (a foreign key at the end of a COPY, or at a
 * keyed stream's merge) is searched for: only the guilty records are
 * dropped under skip, whatever stream they are in. */
static void test_unnamed_refusal_is_bisected(void **state)
{
    fixture *fx = *state;
    set_string(&fx->cfg.invalid_records, "skip");
    start(fx);
    preload_keyed(fx, 100); /* k merges: its refusal comes at the merge */
    feed_ok(fx, APPEND_SCHEMA);
    feed_ok(fx, KEYED_SCHEMA);
    assert_int_equal(tgt_fake_refuse_value(fx->driver, "v", "r7"), 0);
    feed_records(fx, "a", 1, 20);
    feed_records(fx, "k", 1, 20);
    feed_ok(fx, "{\"type\":\"STATE\",\"value\":20}");
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "a"), 19);
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "k"), 20);
    for (size_t r = 0; r < 20; r++) {
        if (r < 19)
            assert_string_not_equal(tgt_fake_value(fx->driver, "public", "a", r, "v", NULL), "r7");
        assert_string_not_equal(tgt_fake_value(fx->driver, "public", "k", r, "v", NULL), "r7");
    }
    assert_string_equal(states(fx), "20\n");
}

/* The same under fail: the error names the guilty record's input line. */
static void test_unnamed_refusal_fails_naming_line(void **state)
{
    fixture *fx = *state;
    start(fx);
    feed_ok(fx, APPEND_SCHEMA); /* line 1 */
    assert_int_equal(tgt_fake_refuse_value(fx->driver, "v", "r7"), 0);
    feed_records(fx, "a", 1, 20); /* lines 2-21 */
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), -1);
    assert_non_null(strstr(fx->err.where, "line 8"));
    tgt_loader_abort(&fx->loader);
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "a"), 0);
}

/* Evolution: a wider type alters the live column once; the same SCHEMA
 * again issues no DDL; a narrower one fails without committing. */
static void test_schema_widening_and_narrowing(void **state)
{
    fixture *fx = *state;
    start(fx);
    feed_ok(fx, APPEND_SCHEMA);
    feed_records(fx, "a", 1, 1);
    const char *wider =
        "{\"type\":\"SCHEMA\",\"stream\":\"a\",\"key_properties\":[],\"schema\":{"
        "\"properties\":{\"id\":{\"type\":\"number\"},\"v\":{\"type\":\"string\"}}}}";
    feed_ok(fx, wider);
    assert_int_equal(tgt_fake_calls(fx->driver, "alter_column_types"), 1);
    assert_int_equal(tgt_fake_column_type(fx->driver, "public", "a", "id").kind, TGT_T_NUMERIC);
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "a"), 1); /* committed first */
    feed_ok(fx, wider);
    assert_int_equal(tgt_fake_calls(fx->driver, "alter_column_types"), 1);
    feed_ok(fx, "{\"type\":\"RECORD\",\"stream\":\"a\",\"record\":{\"id\":2.5,\"v\":\"x\"}}");
    assert_int_equal(feed(fx, APPEND_SCHEMA), -1);
    assert_int_equal(fx->err.code, TGT_ERR_DATA);
    assert_non_null(strstr(fx->err.message, "\"id\""));
    tgt_loader_abort(&fx->loader);
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "a"), 1);
    assert_int_equal(tgt_fake_column_type(fx->driver, "public", "a", "id").kind, TGT_T_NUMERIC);
}

/* Every widening of one SCHEMA reaches the driver in one call (one table
 * rewrite), however many columns change. */
static void test_schema_widening_many_columns_once(void **state)
{
    fixture *fx = *state;
    start(fx);
    feed_ok(fx, "{\"type\":\"SCHEMA\",\"stream\":\"a\",\"key_properties\":[],\"schema\":{"
                "\"properties\":{\"id\":{\"type\":\"integer\"},\"v\":{\"type\":\"string\"},"
                "\"w\":{\"type\":\"integer\"},\"x\":{\"type\":\"boolean\"}}}}");
    feed_records(fx, "a", 1, 1);
    feed_ok(fx, "{\"type\":\"SCHEMA\",\"stream\":\"a\",\"key_properties\":[],\"schema\":{"
                "\"properties\":{\"id\":{\"type\":\"number\"},\"v\":{\"type\":\"string\"},"
                "\"w\":{\"type\":\"number\"},\"x\":{\"type\":\"string\"}}}}");
    assert_int_equal(tgt_fake_calls(fx->driver, "alter_column_types"), 1);
    assert_int_equal(tgt_fake_column_type(fx->driver, "public", "a", "id").kind, TGT_T_NUMERIC);
    assert_int_equal(tgt_fake_column_type(fx->driver, "public", "a", "w").kind, TGT_T_NUMERIC);
    assert_int_equal(tgt_fake_column_type(fx->driver, "public", "a", "x").kind, TGT_T_TEXT);
    assert_int_equal(tgt_fake_column_type(fx->driver, "public", "a", "v").kind, TGT_T_TEXT);
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
}

/* type_change keep: the narrower SCHEMA loads into the wider column. */
static void test_schema_narrowing_kept(void **state)
{
    fixture *fx = *state;
    set_string(&fx->cfg.type_change, "keep");
    start(fx);
    feed_ok(fx, "{\"type\":\"SCHEMA\",\"stream\":\"a\",\"key_properties\":[],\"schema\":{"
                "\"properties\":{\"id\":{\"type\":\"number\"},\"v\":{\"type\":\"string\"}}}}");
    feed_records(fx, "a", 1, 1);
    feed_ok(fx, APPEND_SCHEMA);
    feed_records(fx, "a", 2, 2);
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
    assert_int_equal(tgt_fake_calls(fx->driver, "alter_column_types"), 0);
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "a"), 2);
    assert_int_equal(tgt_fake_column_type(fx->driver, "public", "a", "id").kind, TGT_T_NUMERIC);
}

/* ACTIVATE_VERSION commits what is pending, then marks older versions. */
static void test_activate_version(void **state)
{
    fixture *fx = *state;
    start(fx);
    feed_ok(fx, KEYED_SCHEMA);
    feed_ok(
        fx,
        "{\"type\":\"RECORD\",\"stream\":\"k\",\"version\":1,\"record\":{\"id\":1,\"v\":\"a\"}}");
    feed_ok(
        fx,
        "{\"type\":\"RECORD\",\"stream\":\"k\",\"version\":1,\"record\":{\"id\":2,\"v\":\"b\"}}");
    feed_ok(fx, "{\"type\":\"ACTIVATE_VERSION\",\"stream\":\"k\",\"version\":1}");
    feed_ok(
        fx,
        "{\"type\":\"RECORD\",\"stream\":\"k\",\"version\":2,\"record\":{\"id\":1,\"v\":\"a\"}}");
    feed_ok(fx, "{\"type\":\"ACTIVATE_VERSION\",\"stream\":\"k\",\"version\":2}");
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "k"), 2);
    for (size_t r = 0; r < 2; r++) {
        const char *id = tgt_fake_value(fx->driver, "public", "k", r, "id", NULL);
        int found = 0;
        const char *mark = tgt_fake_value(fx->driver, "public", "k", r, "_sdc_deleted_at", &found);
        assert_true(found);
        if (strcmp(id, "2") == 0)
            assert_non_null(mark); /* only in version 1 */
        else
            assert_null(mark);
    }
}

/* The first connection is retried, and a run that never connects fails. */
static void test_connect_retries(void **state)
{
    fixture *fx = *state;
    fx->cfg.connect_retries = 2;
    start(fx);
    tgt_fake_fail_at(fx->driver, "connect", 1, TGT_FAKE_LOST, 0);
    feed_ok(fx, APPEND_SCHEMA);
    assert_int_equal(tgt_fake_calls(fx->driver, "connect"), 2);
}

/* The fake's identifier limit with the hash rule: the first
 * TGT_FAKE_IDENT_MAX - 9 bytes, '_' and the FNV-1a hash of the raw name. */
static void fake_ident(const char *raw, char *out, size_t cap)
{
    snprintf(out, cap, "%.*s_%08x", TGT_FAKE_IDENT_MAX - 9, raw,
             (unsigned)tgt_naming_hash(raw, strlen(raw)));
}

/* The core asks the driver for its limits (driver.h tgt_driver_caps) instead
 * of assuming PostgreSQL's: with the fake's, a stream and a property longer
 * than 32 bytes (63 would leave them whole) are cut to 32 with the hash rule,
 * an object of 25 properties stays one JSON column (the budget of 20
 * columns; 400 would flatten it), and a JSON value 11 levels deep is an
 * invalid record (10 levels; 5000 would load it). */
static void test_driver_limits_obeyed(void **state)
{
    fixture *fx = *state;
    fx->cfg.flattening_max_depth = 1;
    start(fx);
    const char *stream = "a_stream_whose_name_is_longer_than_the_fake_allows";
    const char *prop = "a_property_name_longer_than_thirty_two_bytes";
    char props[2048] = "";
    for (int i = 0; i < 25; i++)
        snprintf(props + strlen(props), sizeof(props) - strlen(props),
                 "%s\"p%d\":{\"type\":\"integer\"}", i ? "," : "", i);
    char line[4096];
    snprintf(line, sizeof(line),
             "{\"type\":\"SCHEMA\",\"stream\":\"%s\",\"key_properties\":[],\"schema\":{"
             "\"properties\":{\"%s\":{\"type\":\"string\"},\"o\":{\"type\":\"object\","
             "\"properties\":{%s}}}}}",
             stream, prop, props);
    feed_ok(fx, line);
    snprintf(line, sizeof(line),
             "{\"type\":\"RECORD\",\"stream\":\"%s\",\"record\":{\"%s\":\"x\",\"o\":{\"p1\":1}}}",
             stream, prop);
    feed_ok(fx, line);
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);

    char table[64], column[64];
    fake_ident(stream, table, sizeof(table));
    fake_ident(prop, column, sizeof(column));
    assert_int_equal(strlen(table), TGT_FAKE_IDENT_MAX);
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", table), 1);
    int found = 0;
    const char *v = tgt_fake_value(fx->driver, "public", table, 0, column, &found);
    assert_true(found);
    assert_string_equal(v, "x");
    assert_int_equal(tgt_fake_column_type(fx->driver, "public", table, "o").kind, TGT_T_JSONB);

    char deep[256] = "";
    for (int i = 0; i < TGT_FAKE_JSON_MAX_DEPTH + 1; i++)
        strcat(deep, "{\"a\":");
    strcat(deep, "1");
    for (int i = 0; i < TGT_FAKE_JSON_MAX_DEPTH + 1; i++)
        strcat(deep, "}");
    snprintf(line, sizeof(line), "{\"type\":\"RECORD\",\"stream\":\"%s\",\"record\":{\"o\":%s}}",
             stream, deep);
    assert_int_equal(feed(fx, line), -1);
    assert_int_equal(fx->err.code, TGT_ERR_DATA);
    assert_non_null(strstr(fx->err.message, "nested more than 10 levels deep"));
    tgt_loader_abort(&fx->loader);
}

/* --- interleaved streams: chunks shipped one at a time, closed early ------- */

#define IL_ROWS 300  /* per stream: several chunks of ~1 kB rows each */
#define IL_WIDTH 900 /* bytes of v per row */

static const char *const il_names[] = {"x", "y"};

/* Feeds the SCHEMAs (id integer, v string) of the n streams `names`, the
 * first n_keyed of them keyed on id (a first load: direct), the rest
 * unkeyed (append). */
static void feed_schemas(fixture *fx, const char *const *names, int n, int n_keyed)
{
    char line[512];
    for (int k = 0; k < n; k++) {
        snprintf(line, sizeof(line),
                 "{\"type\":\"SCHEMA\",\"stream\":\"%s\",\"key_properties\":[%s],\"schema\":{"
                 "\"properties\":{\"id\":{\"type\":\"integer\"},\"v\":{\"type\":\"string\"}}}}",
                 names[k], k < n_keyed ? "\"id\"" : "");
        feed_ok(fx, line);
    }
}

/* Feeds the SCHEMA of keyed streams "x" and "y" (a first load: direct). */
static void il_schemas(fixture *fx)
{
    feed_schemas(fx, il_names, 2, 2);
}

/* v of row id of stream `stream`: IL_WIDTH bytes, "<stream><id>" padded
 * with dots. */
static void il_value(char v[IL_WIDTH + 1], const char *stream, int id)
{
    int n = snprintf(v, IL_WIDTH + 1, "%s%d", stream, id);
    memset(v + n, '.', IL_WIDTH - (size_t)n);
    v[IL_WIDTH] = '\0';
}

/* The RECORD of row id of stream `stream`, with il_value's v. */
static void il_record(char *line, size_t cap, const char *stream, int id)
{
    char v[IL_WIDTH + 1];
    il_value(v, stream, id);
    snprintf(line, cap,
             "{\"type\":\"RECORD\",\"stream\":\"%s\",\"record\":{\"id\":%d,\"v\":\"%s\"}}", stream,
             id, v);
}

/* Rows `from`..`to` of the n streams `names` round-robin (after n SCHEMA
 * lines, row i of names[k] is input line n*i + k + 1), il_record's rows;
 * returns the first feed's failure. */
static int feed_round_robin(fixture *fx, const char *const *names, int n, int from, int to)
{
    char line[IL_WIDTH + 256];
    for (int i = from; i <= to; i++) {
        for (int k = 0; k < n; k++) {
            il_record(line, sizeof(line), names[k], i);
            if (feed(fx, line) != 0)
                return -1;
        }
    }
    return 0;
}

/* Rows 1..IL_ROWS of x and y, alternating (x at the odd input lines after
 * the two SCHEMAs: row i of x is line 2i+1, of y line 2i+2), then a STATE. */
static int il_feed(fixture *fx)
{
    if (feed_round_robin(fx, il_names, 2, 1, IL_ROWS) != 0)
        return -1;
    return feed(fx, "{\"type\":\"STATE\",\"value\":\"il\"}");
}

/* Every row of stream `table` but `missing` (0: none) is there, once. */
static void il_check_rows(fixture *fx, const char *table, int missing)
{
    size_t n = tgt_fake_row_count(fx->driver, "public", table);
    assert_int_equal(n, IL_ROWS - (missing ? 1 : 0));
    char seen[IL_ROWS + 1] = {0};
    for (size_t r = 0; r < n; r++) {
        const char *id = tgt_fake_value(fx->driver, "public", table, r, "id", NULL);
        assert_non_null(id);
        int i = atoi(id);
        assert_true(i >= 1 && i <= IL_ROWS && i != missing && !seen[i]);
        seen[i] = 1;
        char want[IL_WIDTH + 1];
        int len = snprintf(want, sizeof(want), "%s%d", table, i);
        assert_memory_equal(tgt_fake_value(fx->driver, "public", table, r, "v", NULL), want,
                            (size_t)len);
    }
}

/* Two streams round-robin: their chunks ship while records come in (not all
 * at the end), each bulk write of one stream followed by the other's is
 * closed early (write_close) and collected later, and every row lands. */
static void test_interleaved_closed_early(void **state)
{
    fixture *fx = *state;
    start(fx);
    il_schemas(fx);
    assert_int_equal(il_feed(fx), 0);
    /* shipped during the run, most of them closed early */
    unsigned begun = tgt_fake_calls(fx->driver, "write_begin");
    unsigned closed = tgt_fake_calls(fx->driver, "write_close");
    assert_true(begun >= 4);
    assert_true(closed >= begun / 2);
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
    /* a closed write never takes more rows: one write_end per write_begin */
    assert_int_equal(tgt_fake_calls(fx->driver, "write_end"),
                     tgt_fake_calls(fx->driver, "write_begin"));
    il_check_rows(fx, "x", 0);
    il_check_rows(fx, "y", 0);
    assert_string_equal(states(fx), "\"il\"\n");
}

/* A row refused when a closed-early write of stream y ends (a foreign key,
 * naming no row) is pinned on y's rows, not on the stream being encoded when
 * the outcome is collected: under skip only that record is dropped. */
static void test_deferred_end_refusal_skipped(void **state)
{
    fixture *fx = *state;
    set_string(&fx->cfg.invalid_records, "skip");
    start(fx);
    il_schemas(fx);
    char v[IL_WIDTH + 1];
    il_value(v, "y", 150);
    assert_int_equal(tgt_fake_refuse_value(fx->driver, "v", v), 0);
    assert_int_equal(il_feed(fx), 0);
    assert_true(tgt_fake_calls(fx->driver, "write_close") > 0);
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
    il_check_rows(fx, "x", 0);
    il_check_rows(fx, "y", 150);
    assert_string_equal(states(fx), "\"il\"\n");
}

/* The same refusal under invalid_records fail: the error names y's record
 * (input line 2 + 2 * 150) and no STATE goes out. */
static void test_deferred_end_refusal_fails(void **state)
{
    fixture *fx = *state;
    start(fx);
    il_schemas(fx);
    char v[IL_WIDTH + 1];
    il_value(v, "y", 150);
    assert_int_equal(tgt_fake_refuse_value(fx->driver, "v", v), 0);
    int rc = il_feed(fx);
    if (rc == 0)
        rc = tgt_loader_finish(&fx->loader, &fx->err);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(fx->err.where, "line 302"));
    assert_non_null(strstr(fx->err.where, "stream \"y\""));
    tgt_loader_abort(&fx->loader);
    assert_string_equal(states(fx), "");
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "x"), 0);
    assert_int_equal(tgt_fake_row_count(fx->driver, "public", "y"), 0);
}

/* The connection breaks while a closed-early write's outcome is collected
 * (the second write_end: the first write is not closed early) or while its
 * end is sent: the batch is replayed, every row lands once, STATE after. */
static void deferred_end_lost(void **state, const char *op, unsigned n)
{
    fixture *fx = *state;
    start(fx);
    il_schemas(fx);
    tgt_fake_fail_at(fx->driver, op, n, TGT_FAKE_LOST, 0);
    assert_int_equal(il_feed(fx), 0);
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
    assert_true(tgt_fake_calls(fx->driver, "connect") >= 2);
    il_check_rows(fx, "x", 0);
    il_check_rows(fx, "y", 0);
    assert_string_equal(states(fx), "\"il\"\n");
}

static void test_deferred_end_lost(void **state)
{
    deferred_end_lost(state, "write_end", 2);
}

static void test_write_close_lost(void **state)
{
    deferred_end_lost(state, "write_close", 2);
}

/* --- interleaved streams spilled: one bulk write fed from the spill file --- */

#define SP_STREAMS 3
#define SP_ROWS 600 /* per stream: ~9 chunks of TGT_CHUNK_BYTES of ~1 kB rows */

static const char *const sp_names[SP_STREAMS] = {"x", "y", "z"};

/* Gives the fake write_room (the core then spills with 2 to 64 streams):
 * after each write_begin it says `full` times that a write would wait, and
 * after each write_close `busy` times that the server is not done. */
static void sp_start(fixture *fx, unsigned full, unsigned busy)
{
    start(fx);
    tgt_fake_set_room(fx->driver, full);
    tgt_fake_set_busy(fx->driver, busy);
}

/* Feeds the SCHEMAs (input lines 1-3) of keyed x and y (a first load:
 * direct) and unkeyed z (append). */
static void sp_schemas(fixture *fx)
{
    feed_schemas(fx, sp_names, SP_STREAMS, 2);
}

/* Rows `from`..`to` of every stream round-robin (row i of sp_names[k] is
 * input line 3i + k + 1). */
static int sp_feed_rows(fixture *fx, int from, int to)
{
    return feed_round_robin(fx, sp_names, SP_STREAMS, from, to);
}

/* Every row, then a STATE. */
static int sp_feed(fixture *fx)
{
    if (sp_feed_rows(fx, 1, SP_ROWS) != 0)
        return -1;
    return feed(fx, "{\"type\":\"STATE\",\"value\":\"sp\"}");
}

/* Stream `table` holds rows 1..SP_ROWS but `missing` (0: none), each once,
 * in input order, each with its own v. */
static void sp_check_rows(fixture *fx, const char *table, int missing)
{
    size_t n = tgt_fake_row_count(fx->driver, "public", table);
    assert_int_equal(n, SP_ROWS - (missing ? 1 : 0));
    int want = 0;
    for (size_t r = 0; r < n; r++) {
        if (++want == missing)
            want++;
        const char *id = tgt_fake_value(fx->driver, "public", table, r, "id", NULL);
        assert_non_null(id);
        if (atoi(id) != want)
            fail_msg("%s row %zu: id %s, %d expected", table, r, id, want);
        char v[IL_WIDTH + 1];
        int len = snprintf(v, sizeof(v), "%s%d.", table, want);
        assert_memory_equal(tgt_fake_value(fx->driver, "public", table, r, "v", NULL), v,
                            (size_t)len);
    }
}

static void sp_check_all(fixture *fx, int missing_line)
{
    for (int k = 0; k < SP_STREAMS; k++) {
        int missing = missing_line != 0 && (missing_line - 1) % 3 == k ? (missing_line - 1) / 3 : 0;
        sp_check_rows(fx, sp_names[k], missing);
    }
}

/* The input line named in err.where ("stdin line N, ..."); 0 when none. */
static int where_line(const tgt_error *err)
{
    const char *at = strstr(err->where, "line ");
    return at == NULL ? 0 : atoi(at + 5);
}

/* With room for every write, full chunks of three interleaved streams go
 * through the spill file during the run, and every row lands once, in its
 * stream's order. */
static void test_spill_rows_in_order(void **state)
{
    fixture *fx = *state;
    sp_start(fx, 0, 0);
    sp_schemas(fx);
    assert_int_equal(sp_feed(fx), 0);
    assert_true(tgt_fake_calls(fx->driver, "write_room") > 0);
    assert_true(tgt_fake_calls(fx->driver, "write_begin") >= 2 * SP_STREAMS);
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
    assert_int_equal(tgt_fake_calls(fx->driver, "write_end"),
                     tgt_fake_calls(fx->driver, "write_begin"));
    sp_check_all(fx, 0);
    assert_string_equal(states(fx), "\"sp\"\n");
}

/* While the driver has no room and the server is busy, chunks wait in the
 * spill file and each bulk write then carries several of them (a spilled
 * chunk is one write_data): fewer bulk writes than chunks, every row once
 * and in order all the same. */
static void test_spill_scarce_room_batches_chunks(void **state)
{
    fixture *fx = *state;
    sp_start(fx, 40, 10);
    sp_schemas(fx);
    assert_int_equal(sp_feed(fx), 0);
    unsigned begun = tgt_fake_calls(fx->driver, "write_begin");
    unsigned chunks = tgt_fake_calls(fx->driver, "write_data");
    assert_true(begun >= 2);
    assert_true(chunks >= 2 * begun);
    assert_true(fx->loader.b.spill.bytes > 0); /* some still wait */
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
    assert_int_equal(fx->loader.b.spill.bytes, 0);
    sp_check_all(fx, 0);
    assert_string_equal(states(fx), "\"sp\"\n");
}

/* Makes the fake refuse row `id` of stream y: at the end of its bulk write
 * naming no row (a foreign key), or, `exact`, as it is written, naming it
 * (a CHECK constraint). */
static void sp_refuse_y(fixture *fx, int id, int exact)
{
    char v[IL_WIDTH + 1];
    il_value(v, "y", id);
    if (exact)
        assert_int_equal(tgt_fake_check_value(fx->driver, "v", v), 0);
    else
        assert_int_equal(tgt_fake_refuse_value(fx->driver, "v", v), 0);
}

/* Row `id` of y is refused while x and z have rows spilled (bulk writes
 * carry several chunks, the server answers busy): under fail the error
 * names its input line and stream y, nothing is committed and no STATE
 * goes out. */
static void sp_refusal_fails(fixture *fx, int id, int exact)
{
    sp_start(fx, 40, 3);
    sp_schemas(fx);
    sp_refuse_y(fx, id, exact);
    int rc = sp_feed(fx);
    if (rc == 0)
        rc = tgt_loader_finish(&fx->loader, &fx->err);
    assert_int_equal(rc, -1);
    assert_true(tgt_fake_calls(fx->driver, "write_room") > 0);
    assert_int_equal(where_line(&fx->err), 3 * id + 1 + 1);
    assert_non_null(strstr(fx->err.where, "stream \"y\""));
    tgt_loader_abort(&fx->loader);
    assert_string_equal(states(fx), "");
    for (int k = 0; k < SP_STREAMS; k++)
        assert_int_equal(tgt_fake_row_count(fx->driver, "public", sp_names[k]), 0);
}

/* The same under skip: only that record is dropped; after the recovery
 * every other row is there once, in order. */
static void sp_refusal_skipped(fixture *fx, int id, int exact)
{
    set_string(&fx->cfg.invalid_records, "skip");
    sp_start(fx, 40, 3);
    sp_schemas(fx);
    sp_refuse_y(fx, id, exact);
    assert_int_equal(sp_feed(fx), 0);
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
    sp_check_all(fx, 3 * id + 1 + 1);
    assert_string_equal(states(fx), "\"sp\"\n");
}

/* Refused at the deferred end of y's bulk write (found by bisecting). */
static void test_spill_deferred_refusal_fails(void **state)
{
    sp_refusal_fails(*state, 150, 0);
}

static void test_spill_deferred_refusal_skipped(void **state)
{
    sp_refusal_skipped(*state, 150, 0);
}

/* Refused by number inside a later bulk write of y fed from the spill
 * file: its place is the rows y shipped before that write plus the number. */
static void test_spill_refused_row_fails(void **state)
{
    sp_refusal_fails(*state, 400, 1);
}

static void test_spill_refused_row_skipped(void **state)
{
    sp_refusal_skipped(*state, 400, 1);
}

/* The connection breaks in a bulk write fed from the spill file while other
 * streams' rows wait there: the batch is rolled back and replayed, and
 * nothing spilled before the rollback is sent again (the append stream z
 * would get those rows twice). */
static void test_spill_lost_write_replayed(void **state)
{
    fixture *fx = *state;
    sp_start(fx, 40, 3);
    sp_schemas(fx);
    tgt_fake_fail_at(fx->driver, "write_data", 4, TGT_FAKE_LOST, 0);
    assert_int_equal(sp_feed(fx), 0);
    assert_int_equal(tgt_loader_finish(&fx->loader, &fx->err), 0);
    assert_true(tgt_fake_calls(fx->driver, "connect") >= 2);
    sp_check_all(fx, 0);
    assert_string_equal(states(fx), "\"sp\"\n");
}

/* A rollback forgets every spilled row: no queue keeps any, nor the file's
 * count of bytes waiting. */
static void test_spill_forget_drops_queues(void **state)
{
    fixture *fx = *state;
    sp_start(fx, 40, 3);
    sp_schemas(fx);
    assert_int_equal(sp_feed_rows(fx, 1, SP_ROWS / 2), 0);
    tgt_batch *b = &fx->loader.b;
    size_t queued = 0;
    for (tgt_stream *s = b->streams.first; s != NULL; s = s->next_in_order)
        queued += s->spill.bytes;
    assert_true(queued > 0);
    assert_int_equal(queued, b->spill.bytes);
    tgt_batch_forget(b);
    assert_int_equal(b->spill.bytes, 0);
    for (tgt_stream *s = b->streams.first; s != NULL; s = s->next_in_order) {
        assert_true(tgt_spill_queue_empty(&s->spill));
        assert_int_equal(s->spill.bytes, 0);
    }
    tgt_loader_abort(&fx->loader);
    for (int k = 0; k < SP_STREAMS; k++)
        assert_int_equal(tgt_fake_row_count(fx->driver, "public", sp_names[k]), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_state_waits_for_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_with_nothing_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newest_record_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_absent_keeps_stored_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_commit_is_replayed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_after_longer_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_commit_reply_is_not_replayed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyed_first_load_direct, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct_duplicate_key_falls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct_later_batch_clash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nonempty_table_merges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tables_per_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_write_is_replayed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_commit_writes_no_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_row_fails_naming_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_row_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unnamed_refusal_is_bisected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unnamed_refusal_fails_naming_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_widening_and_narrowing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_widening_many_columns_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_narrowing_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_activate_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_driver_limits_obeyed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interleaved_closed_early, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_end_refusal_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_end_refusal_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_end_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_close_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spill_rows_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spill_scarce_room_batches_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spill_deferred_refusal_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spill_deferred_refusal_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spill_refused_row_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spill_refused_row_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spill_lost_write_replayed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spill_forget_drops_queues, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

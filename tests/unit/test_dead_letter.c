/*
 * test_dead_letter.c - unit tests for dead_letter.c: entries written over
 * two open/close cycles (so two runs' frames) are read back with zstd and
 * every field is checked; records keep their exact JSON text (number digits,
 * whitespace newlines turned into spaces), invalid JSON (also Python's NaN)
 * becomes a string,
 * invalid UTF-8 becomes U+FFFD; the file is created with mode 0600; an
 * unwritable path and a full disk (/dev/full) are TGT_ERR_IO naming the path.
 * Files live in a fresh temp directory removed at the end of each test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <zstd.h>

#include "dead_letter.h"
#include "error.h"

typedef struct scratch {
    char dir[64];
    char path[128];
} scratch;

static void scratch_make(scratch *s)
{
    strcpy(s->dir, "/tmp/test_dead_letter_XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    snprintf(s->path, sizeof(s->path), "%s/dead.jsonl.zst", s->dir);
}

static void scratch_remove(scratch *s)
{
    unlink(s->path);
    assert_int_equal(rmdir(s->dir), 0);
}

/* The whole file, decompressed (all frames); *n_frames counts the frames. */
static char *read_back(const char *path, size_t *len, size_t *n_frames)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t cap = 1 << 16, n = 0;
    char *comp = malloc(cap);
    assert_non_null(comp);
    size_t got;
    while ((got = fread(comp + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            comp = realloc(comp, cap);
            assert_non_null(comp);
        }
    }
    fclose(f);
    *n_frames = 0;
    for (size_t pos = 0; pos < n;) {
        size_t fs = ZSTD_findFrameCompressedSize(comp + pos, n - pos);
        assert_false(ZSTD_isError(fs));
        pos += fs;
        ++*n_frames;
    }
    ZSTD_DCtx *d = ZSTD_createDCtx();
    assert_non_null(d);
    size_t out_cap = 1 << 16, out_len = 0;
    char *out = malloc(out_cap + 1);
    assert_non_null(out);
    ZSTD_inBuffer in = {comp, n, 0};
    size_t ret = 0;
    while (in.pos < in.size) {
        if (out_cap - out_len < ZSTD_DStreamOutSize()) {
            out_cap *= 2;
            out = realloc(out, out_cap + 1);
            assert_non_null(out);
        }
        ZSTD_outBuffer ob = {out + out_len, out_cap - out_len, 0};
        ret = ZSTD_decompressStream(d, &ob, &in);
        assert_false(ZSTD_isError(ret));
        out_len += ob.pos;
    }
    assert_int_equal(ret, 0); /* the last frame is complete */
    ZSTD_freeDCtx(d);
    free(comp);
    out[out_len] = '\0';
    *len = out_len;
    return out;
}

/* Splits text into lines (modifies it); returns the count. */
static size_t split_lines(char *text, char **lines, size_t max)
{
    size_t n = 0;
    for (char *p = text; *p != '\0';) {
        char *nl = strchr(p, '\n');
        assert_non_null(nl); /* every entry ends with a newline */
        *nl = '\0';
        assert_true(n < max);
        lines[n++] = p;
        p = nl + 1;
    }
    return n;
}

static void assert_utc_time(const char *at)
{
    /* 2024-05-01T10:00:00.123456Z */
    assert_int_equal(strlen(at), 27);
    for (size_t i = 0; i < 27; i++) {
        char c = at[i];
        switch (i) {
        case 4:
        case 7:
            assert_int_equal(c, '-');
            break;
        case 10:
            assert_int_equal(c, 'T');
            break;
        case 13:
        case 16:
            assert_int_equal(c, ':');
            break;
        case 19:
            assert_int_equal(c, '.');
            break;
        case 26:
            assert_int_equal(c, 'Z');
            break;
        default:
            assert_true(c >= '0' && c <= '9');
        }
    }
    assert_true(strncmp(at, "2020", 4) > 0);
}

/* Checks one entry's line, input, stream, reason and "at" with jansson, and
 * that the line ends with `record_text` + "}" exactly. */
static void check_entry(const char *line, unsigned long line_no, const char *input,
                        const char *stream, size_t stream_len, const char *reason,
                        const char *record_text)
{
    size_t n = strlen(line), rn = strlen(record_text);
    char *suffix = malloc(rn + 12);
    assert_non_null(suffix);
    snprintf(suffix, rn + 12, "\"record\":%s}", record_text);
    assert_true(n > strlen(suffix));
    assert_string_equal(line + n - strlen(suffix), suffix);
    free(suffix);
    /* the other fields: parse the entry with the record replaced by null
     * (jansson would refuse or round some exact numbers) */
    char *copy = malloc(n + 8);
    assert_non_null(copy);
    size_t keep = n - rn - 1;
    memcpy(copy, line, keep);
    strcpy(copy + keep, "null}");
    json_error_t jerr;
    json_t *obj = json_loads(copy, JSON_ALLOW_NUL, &jerr);
    if (obj == NULL)
        fail_msg("entry is not JSON (%s): %s", jerr.text, line);
    free(copy);
    assert_int_equal(json_object_size(obj), 6);
    assert_int_equal(json_integer_value(json_object_get(obj, "line")), (json_int_t)line_no);
    assert_string_equal(json_string_value(json_object_get(obj, "input")), input);
    const json_t *s = json_object_get(obj, "stream");
    assert_int_equal(json_string_length(s), stream_len);
    assert_memory_equal(json_string_value(s), stream, stream_len);
    assert_string_equal(json_string_value(json_object_get(obj, "reason")), reason);
    assert_utc_time(json_string_value(json_object_get(obj, "at")));
    assert_true(json_is_null(json_object_get(obj, "record")));
    json_decref(obj);
}

static void write_ok(tgt_dead_letter *dl, const char *input, unsigned long line_no,
                     const char *stream, size_t stream_len, const char *reason, const char *record)
{
    tgt_error err;
    tgt_error_init(&err);
    int rc = tgt_dead_letter_write(dl, input, line_no, stream, stream_len, reason, record,
                                   record ? strlen(record) : 0, &err);
    if (rc != 0)
        fail_msg("tgt_dead_letter_write: %s", err.message);
}

/* ---- tests -------------------------------------------------------------- */

static void test_two_runs_read_back(void **state)
{
    (void)state;
    scratch s;
    scratch_make(&s);
    tgt_dead_letter dl;
    tgt_error err;
    tgt_error_init(&err);

    /* run 1: three entries, a flush (commit point), a fourth, close */
    assert_int_equal(tgt_dead_letter_open(&dl, s.path, &err), 0);
    write_ok(&dl, "stdin", 7, "orders", 6, "bad amount",
             "{\"id\":1,\"amount\":12.50,\"big\":1e400,\"n\":123456789012345678901234567890}");
    write_ok(&dl, "stdin", 9, "orders", 6, "value \"x\"\nsecond line\ttab",
             "{\"id\": 2, \"t\": \"\\u00e9\\ud83d\\ude00\\n\"}");
    write_ok(&dl, "stdin", 12, "sales-\xC3\xA9t\xC3\xA9", 11, "r\xC3\xA9sum\xC3\xA9", "[1,2,3]");
    assert_int_equal(tgt_dead_letter_count(&dl), 3);
    assert_int_equal(tgt_dead_letter_flush(&dl, &err), 0);
    assert_int_equal(tgt_dead_letter_flush(&dl, &err), 0); /* nothing new: no empty frame */
    write_ok(&dl, "stdin", 4000000000UL, "s", 1, "last of run 1", "{}");
    assert_int_equal(tgt_dead_letter_count(&dl), 4);
    tgt_dead_letter_close(&dl);
    assert_int_equal(tgt_dead_letter_count(&dl), 4);
    tgt_dead_letter_close(&dl); /* twice: a no-op */

    struct stat st;
    assert_int_equal(stat(s.path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* run 2 appends */
    assert_int_equal(tgt_dead_letter_open(&dl, s.path, &err), 0);
    assert_int_equal(tgt_dead_letter_count(&dl), 0);
    write_ok(&dl, "/data/in.singer.zst", 1, "orders", 6, "run 2", "{\"id\":3}");
    write_ok(&dl, "/data/in.singer.zst", 2, "a\0b", 3, "NUL in the stream name", "{\"id\":4}");
    assert_int_equal(tgt_dead_letter_count(&dl), 2);
    tgt_dead_letter_close(&dl);

    size_t len, n_frames;
    char *text = read_back(s.path, &len, &n_frames);
    assert_int_equal(n_frames, 3); /* run 1: flush + close; run 2: close */
    char *lines[16];
    assert_int_equal(split_lines(text, lines, 16), 6);
    check_entry(lines[0], 7, "stdin", "orders", 6, "bad amount",
                "{\"id\":1,\"amount\":12.50,\"big\":1e400,\"n\":123456789012345678901234567890}");
    check_entry(lines[1], 9, "stdin", "orders", 6, "value \"x\"\nsecond line\ttab",
                "{\"id\": 2, \"t\": \"\\u00e9\\ud83d\\ude00\\n\"}");
    check_entry(lines[2], 12, "stdin", "sales-\xC3\xA9t\xC3\xA9", 11, "r\xC3\xA9sum\xC3\xA9",
                "[1,2,3]");
    check_entry(lines[3], 4000000000UL, "stdin", "s", 1, "last of run 1", "{}");
    check_entry(lines[4], 1, "/data/in.singer.zst", "orders", 6, "run 2", "{\"id\":3}");
    check_entry(lines[5], 2, "/data/in.singer.zst", "a\0b", 3, "NUL in the stream name",
                "{\"id\":4}");
    /* UTF-8 text is written as is, not \u-escaped */
    assert_non_null(strstr(lines[2], "\"stream\":\"sales-\xC3\xA9t\xC3\xA9\""));
    free(text);
    scratch_remove(&s);
}

static void test_record_forms(void **state)
{
    (void)state;
    scratch s;
    scratch_make(&s);
    tgt_dead_letter dl;
    tgt_error err;
    tgt_error_init(&err);
    assert_int_equal(tgt_dead_letter_open(&dl, s.path, &err), 0);
    /* valid JSON with CR/LF as whitespace: kept, the breaks become spaces */
    write_ok(&dl, "stdin", 1, "s", 1, "r", "{\n\"a\":\r\n1 }");
    /* not JSON: a string */
    write_ok(&dl, "stdin", 2, "s", 1, "r", "{\"a\": 1,");
    /* not JSON and not UTF-8: a string with U+FFFD */
    write_ok(&dl, "stdin", 3, "s", 1, "r", "ab\xFF\xC3");
    /* no record at all: null */
    write_ok(&dl, "stdin", 4, "s", 1, "r", NULL);
    /* invalid UTF-8 in input name, stream and reason: U+FFFD */
    write_ok(&dl, "in\xFE", 5, "s\x80", 2, "r\xED\xA0\x80", "1");
    /* a lone surrogate escape is not valid JSON (RFC 8259 strict): a string */
    write_ok(&dl, "stdin", 6, "s", 1, "r", "\"\\ud800\"");
    /* Python's NaN, read by the tokenizer, is no JSON: a string, so the
     * dead letter stays readable by strict JSON readers */
    write_ok(&dl, "stdin", 7, "s", 1, "r", "{\"a\":[NaN]}");
    tgt_dead_letter_close(&dl);

    size_t len, n_frames;
    char *text = read_back(s.path, &len, &n_frames);
    assert_int_equal(n_frames, 1);
    char *lines[8];
    assert_int_equal(split_lines(text, lines, 8), 7);
    check_entry(lines[0], 1, "stdin", "s", 1, "r", "{ \"a\":  1 }");
    check_entry(lines[1], 2, "stdin", "s", 1, "r", "\"{\\\"a\\\": 1,\"");
    check_entry(lines[2], 3, "stdin", "s", 1, "r", "\"ab\xEF\xBF\xBD\xEF\xBF\xBD\"");
    check_entry(lines[3], 4, "stdin", "s", 1, "r", "null");
    check_entry(lines[4], 5, "in\xEF\xBF\xBD", "s\xEF\xBF\xBD", 4,
                "r\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", "1");
    check_entry(lines[5], 6, "stdin", "s", 1, "r", "\"\\\"\\\\ud800\\\"\"");
    check_entry(lines[6], 7, "stdin", "s", 1, "r", "\"{\\\"a\\\":[NaN]}\"");
    free(text);
    scratch_remove(&s);
}

static void test_big_record(void **state)
{
    (void)state;
    scratch s;
    scratch_make(&s);
    /* 3 MB: many compression blocks inside one frame */
    size_t n = 3u << 20;
    char *record = malloc(n + 16);
    assert_non_null(record);
    memcpy(record, "{\"v\":\"", 6);
    for (size_t i = 6; i < n; i++)
        record[i] = (char)('a' + (i * 7919 % 26));
    strcpy(record + n, "\"}");
    tgt_dead_letter dl;
    tgt_error err;
    tgt_error_init(&err);
    assert_int_equal(tgt_dead_letter_open(&dl, s.path, &err), 0);
    write_ok(&dl, "stdin", 1, "big", 3, "too big", record);
    assert_int_equal(tgt_dead_letter_flush(&dl, &err), 0);
    tgt_dead_letter_close(&dl);
    size_t len, n_frames;
    char *text = read_back(s.path, &len, &n_frames);
    char *lines[2];
    assert_int_equal(split_lines(text, lines, 2), 1);
    check_entry(lines[0], 1, "stdin", "big", 3, "too big", record);
    free(text);
    free(record);
    scratch_remove(&s);
}

static void test_unwritable_path(void **state)
{
    (void)state;
    scratch s;
    scratch_make(&s);
    char path[192];
    snprintf(path, sizeof(path), "%s/no-such-dir/dead.zst", s.dir);
    tgt_dead_letter dl;
    tgt_error err;
    tgt_error_init(&err);
    assert_int_equal(tgt_dead_letter_open(&dl, path, &err), -1);
    assert_int_equal(err.code, TGT_ERR_IO);
    assert_non_null(strstr(err.message, path));
    assert_non_null(strstr(err.message, "No such file or directory"));
    tgt_dead_letter_close(&dl); /* a no-op after a failed open */
    assert_int_equal(tgt_dead_letter_count(&dl), 0);

    /* a directory */
    tgt_error_init(&err);
    assert_int_equal(tgt_dead_letter_open(&dl, s.dir, &err), -1);
    assert_int_equal(err.code, TGT_ERR_IO);
    assert_non_null(strstr(err.message, s.dir));
    tgt_dead_letter_close(&dl);

    /* a file without write permission (root may write anyway: skip then) */
    FILE *f = fopen(s.path, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(chmod(s.path, 0400), 0);
    if (geteuid() != 0) {
        tgt_error_init(&err);
        assert_int_equal(tgt_dead_letter_open(&dl, s.path, &err), -1);
        assert_int_equal(err.code, TGT_ERR_IO);
        assert_non_null(strstr(err.message, s.path));
        assert_non_null(strstr(err.message, "Permission denied"));
    }
    scratch_remove(&s);
}

static void test_disk_full(void **state)
{
    (void)state;
    if (access("/dev/full", W_OK) != 0)
        skip();
    tgt_dead_letter dl;
    tgt_error err;
    tgt_error_init(&err);
    assert_int_equal(tgt_dead_letter_open(&dl, "/dev/full", &err), 0);
    /* the write may only fill buffers; the flush must reach the device */
    int rc = tgt_dead_letter_write(&dl, "stdin", 1, "s", 1, "r", "{}", 2, &err);
    if (rc == 0)
        rc = tgt_dead_letter_flush(&dl, &err);
    assert_int_equal(rc, -1);
    assert_int_equal(err.code, TGT_ERR_IO);
    assert_non_null(strstr(err.message, "/dev/full"));
    assert_non_null(strstr(err.message, "No space left on device"));
    /* and every later call fails too */
    tgt_error_init(&err);
    assert_int_equal(tgt_dead_letter_write(&dl, "stdin", 2, "s", 1, "r", "{}", 2, &err), -1);
    assert_int_equal(err.code, TGT_ERR_IO);
    assert_non_null(strstr(err.message, "/dev/full"));
    tgt_error_init(&err);
    assert_int_equal(tgt_dead_letter_flush(&dl, &err), -1);
    assert_int_equal(err.code, TGT_ERR_IO);
    tgt_dead_letter_close(&dl);
}

static void test_dev_null(void **state)
{
    (void)state;
    /* a device that cannot be fsynced still counts as flushed */
    tgt_dead_letter dl;
    tgt_error err;
    tgt_error_init(&err);
    assert_int_equal(tgt_dead_letter_open(&dl, "/dev/null", &err), 0);
    write_ok(&dl, "stdin", 1, "s", 1, "r", "{}");
    assert_int_equal(tgt_dead_letter_flush(&dl, &err), 0);
    tgt_dead_letter_close(&dl);
    assert_int_equal(tgt_dead_letter_count(&dl), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_runs_read_back), cmocka_unit_test(test_record_forms),
        cmocka_unit_test(test_big_record),         cmocka_unit_test(test_unwritable_path),
        cmocka_unit_test(test_disk_full),          cmocka_unit_test(test_dev_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

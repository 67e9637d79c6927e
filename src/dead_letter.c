/*
 * dead_letter.c - the dead-letter writer (see dead_letter.h).
 *
 * Each line is built with jansson except the "record" value: jansson reads
 * numbers as doubles or 64-bit integers and would write a record back
 * changed (12.50 becomes 12.5, 1e400 is refused), while the dead letter must
 * keep the record as the tap sent it.  So the record's own text is checked
 * with the target's strict tokenizer (json.h) and takes the place of the
 * null that jansson wrote as the object's last member.  Valid JSON holds a
 * raw CR or LF only as whitespace between tokens; those become spaces so
 * each entry stays on one line.  Text that is not valid JSON goes in as a
 * JSON string, and so does a record holding NaN or Infinity: the tokenizer
 * reads them, but the dead letter stays strict JSON.
 *
 * Compression is one streaming ZSTD_CCtx: lines go in with ZSTD_e_continue,
 * a flush ends the frame with ZSTD_e_end, and the compressed bytes go to a
 * stdio stream on an O_APPEND descriptor.
 */
#include "dead_letter.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "json.h"
#include "sbuf.h"
#include "utf8.h"

#define COMPRESSION_LEVEL 3
/* What jansson writes for the placeholder that the record text replaces. */
#define RECORD_PLACEHOLDER "\"record\":null}"

static int io_error(tgt_dead_letter *dl, const char *what, int errnum, tgt_error *err)
{
    dl->broken = 1;
    return tgt_error_set(err, TGT_ERR_IO, "cannot %s dead-letter file %s: %s", what, dl->path,
                         strerror(errnum));
}

static int broken_error(const tgt_dead_letter *dl, tgt_error *err)
{
    return tgt_error_set(err, TGT_ERR_IO,
                         "cannot write dead-letter file %s: an earlier write to it failed",
                         dl->path);
}

int tgt_dead_letter_open(tgt_dead_letter *dl, const char *path, tgt_error *err)
{
    memset(dl, 0, sizeof(*dl));
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return tgt_error_set(err, TGT_ERR_IO, "cannot open dead-letter file %s: %s", path,
                             strerror(errno));
    dl->file = fdopen(fd, "ab");
    if (dl->file == NULL)
        close(fd);
    dl->path = strdup(path);
    dl->cctx = ZSTD_createCCtx();
    dl->out_cap = ZSTD_CStreamOutSize();
    dl->out = malloc(dl->out_cap);
    if (dl->file == NULL || dl->path == NULL || dl->cctx == NULL || dl->out == NULL ||
        ZSTD_isError(
            ZSTD_CCtx_setParameter(dl->cctx, ZSTD_c_compressionLevel, COMPRESSION_LEVEL)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(dl->cctx, ZSTD_c_checksumFlag, 1))) {
        tgt_dead_letter_close(dl);
        dl->count = 0;
        return tgt_error_nomem(err);
    }
    return 0;
}

/* Feeds src[0..n) into the frame (ZSTD_e_continue) or ends the frame
 * (ZSTD_e_end), writing every compressed byte produced to the file. */
static int compress(tgt_dead_letter *dl, const void *src, size_t n, ZSTD_EndDirective mode,
                    tgt_error *err)
{
    ZSTD_inBuffer in = {src, n, 0};
    for (;;) {
        ZSTD_outBuffer out = {dl->out, dl->out_cap, 0};
        size_t left = ZSTD_compressStream2(dl->cctx, &out, &in, mode);
        if (ZSTD_isError(left)) {
            dl->broken = 1;
            return tgt_error_set(err, TGT_ERR_INTERNAL, "cannot compress dead-letter file %s: %s",
                                 dl->path, ZSTD_getErrorName(left));
        }
        if (out.pos > 0 && fwrite(dl->out, 1, out.pos, dl->file) != out.pos)
            return io_error(dl, "write", errno, err);
        if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
            return 0;
    }
}

/* A jansson string of s[0..n); bytes that are not UTF-8 become U+FFFD.
 * NULL when out of memory. */
static json_t *string_value(const char *s, size_t n)
{
    json_t *v = json_stringn(s, n);
    if (v != NULL)
        return v;
    tgt_sbuf b;
    tgt_sbuf_init(&b);
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = tgt_utf8_sequence_len(u + i, n - i);
        if (k == 0) {
            tgt_sbuf_append(&b, "\xEF\xBF\xBD", 3);
            i++;
        } else {
            tgt_sbuf_append(&b, s + i, k);
            i += k;
        }
    }
    v = tgt_sbuf_ok(&b) ? json_stringn(b.data != NULL ? b.data : "", b.len) : NULL;
    tgt_sbuf_deinit(&b);
    return v;
}

/* The current UTC time as 2024-05-01T10:00:00.123456Z. */
static void utc_now(char *buf, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, cap - n, ".%06ldZ", ts.tv_nsec / 1000);
}

/* 1 when text[0..n) is one valid JSON value, 0 when not (also when it holds
 * Python's NaN or Infinity, which strict JSON readers refuse), -1 out of
 * memory. */
static int is_json(const char *text, size_t n)
{
    tgt_json_parser p;
    tgt_json_parser_init(&p);
    p.skip_array_items = 1; /* only validity matters: fewer tokens */
    tgt_error perr;
    tgt_error_init(&perr);
    int rc = tgt_json_parse(&p, text, n, &perr) == 0 && !(p.tokens[0].flags & TGT_JSON_NONFINITE);
    tgt_json_parser_deinit(&p);
    return perr.code == TGT_ERR_NOMEM ? -1 : rc;
}

/* Builds one entry, newline included, into line. */
static int build_line(tgt_sbuf *line, const char *input_name, unsigned long line_no,
                      const char *stream, size_t stream_len, const char *reason,
                      const char *record_json, size_t record_len, tgt_error *err)
{
    int raw = record_json != NULL ? is_json(record_json, record_len) : 0;
    if (raw < 0)
        return tgt_error_nomem(err);
    char at[48];
    utc_now(at, sizeof(at));
    json_t *obj = json_object();
    json_t *record =
        raw || record_json == NULL ? json_null() : string_value(record_json, record_len);
    /* set_new steals its value, also on failure */
    int bad = obj == NULL;
    bad |= json_object_set_new(obj, "line", json_integer((json_int_t)line_no));
    bad |= json_object_set_new(obj, "input", string_value(input_name, strlen(input_name)));
    bad |= json_object_set_new(obj, "stream", string_value(stream, stream_len));
    bad |= json_object_set_new(obj, "reason", string_value(reason, strlen(reason)));
    bad |= json_object_set_new(obj, "at", json_string(at));
    bad |= json_object_set_new(obj, "record", record); /* last: see the file comment */
    char *text = bad ? NULL : json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (text == NULL)
        return tgt_error_nomem(err);
    size_t n = strlen(text), tail = sizeof(RECORD_PLACEHOLDER) - 1;
    if (!raw) {
        tgt_sbuf_append(line, text, n);
    } else if (n < tail || strcmp(text + n - tail, RECORD_PLACEHOLDER) != 0) {
        free(text);
        return tgt_error_set(err, TGT_ERR_INTERNAL,
                             "dead-letter entry does not end with the record (a bug)");
    } else {
        tgt_sbuf_append(line, text, n - 5); /* up to "record": */
        size_t start = line->len;
        tgt_sbuf_append(line, record_json, record_len);
        for (size_t i = start; tgt_sbuf_ok(line) && i < line->len; i++)
            if (line->data[i] == '\n' || line->data[i] == '\r')
                line->data[i] = ' ';
        tgt_sbuf_append_char(line, '}');
    }
    free(text);
    tgt_sbuf_append_char(line, '\n');
    return tgt_sbuf_ok(line) ? 0 : tgt_error_nomem(err);
}

int tgt_dead_letter_write(tgt_dead_letter *dl, const char *input_name, unsigned long line_no,
                          const char *stream, size_t stream_len, const char *reason,
                          const char *record_json, size_t record_len, tgt_error *err)
{
    if (dl->broken)
        return broken_error(dl, err);
    tgt_sbuf line;
    tgt_sbuf_init(&line);
    int rc =
        build_line(&line, input_name ? input_name : "", line_no, stream ? stream : "",
                   stream ? stream_len : 0, reason ? reason : "", record_json, record_len, err);
    if (rc == 0)
        rc = compress(dl, line.data, line.len, ZSTD_e_continue, err);
    tgt_sbuf_deinit(&line);
    if (rc != 0)
        return -1;
    dl->frame_open = 1;
    dl->count++;
    return 0;
}

int tgt_dead_letter_flush(tgt_dead_letter *dl, tgt_error *err)
{
    if (dl->broken)
        return broken_error(dl, err);
    if (dl->file == NULL || !dl->frame_open)
        return 0; /* nothing written since the last flush */
    if (compress(dl, NULL, 0, ZSTD_e_end, err) != 0)
        return -1;
    dl->frame_open = 0;
    if (fflush(dl->file) != 0)
        return io_error(dl, "write", errno, err);
    /* EINVAL: a pipe or a device such as /dev/null, which cannot be synced */
    if (fsync(fileno(dl->file)) != 0 && errno != EINVAL)
        return io_error(dl, "sync", errno, err);
    return 0;
}

void tgt_dead_letter_close(tgt_dead_letter *dl)
{
    if (dl->file != NULL) {
        tgt_error ignored;
        tgt_error_init(&ignored);
        tgt_dead_letter_flush(dl, &ignored);
        fclose(dl->file);
    }
    ZSTD_freeCCtx(dl->cctx);
    free(dl->out);
    free(dl->path);
    unsigned long count = dl->count;
    memset(dl, 0, sizeof(*dl));
    dl->count = count;
}

unsigned long tgt_dead_letter_count(const tgt_dead_letter *dl)
{
    return dl->count;
}

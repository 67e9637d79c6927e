/*
 * singer_batch.c - BATCH messages into RECORD messages (see singer_batch.h).
 *
 * The BATCH message itself is rare and small, so it is read with jansson;
 * the records are the hot path: each file line is tokenized once, in place,
 * as the record of a RECORD message (tgt_singer_batch_parse_line), with no
 * envelope to build or to parse.  The files are read with the input's
 * reader (reader.h), which decompresses gzip and zstd by their magic bytes
 * (on a second thread).
 *
 * Owns: the list of files whose record numbers may still be in use (with
 * their URIs) and a JSON parser.  Does not own the record function's
 * context.
 */
#include "singer_batch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "reader.h"

struct tgt_singer_batch_file {
    unsigned long msg_line; /* input line of the BATCH message naming it */
    size_t index;           /* its place in that manifest */
    unsigned long base;     /* its line k is record number base + k */
    unsigned long end;      /* last record number; ULONG_MAX while being read */
    char *uri;
};

void tgt_singer_batch_init(tgt_singer_batch *b)
{
    memset(b, 0, sizeof(*b));
    b->next_base = TGT_SINGER_BATCH_LINE_BASE;
    tgt_json_parser_init(&b->parser);
    b->parser.skip_array_items = 1; /* as for input lines (target.c) */
}

static void forget_files(tgt_singer_batch *b, unsigned long keep_msg_line)
{
    size_t kept = 0;
    for (size_t i = 0; i < b->n_files; i++) {
        if (keep_msg_line != 0 && b->files[i].msg_line == keep_msg_line)
            b->files[kept++] = b->files[i];
        else
            free(b->files[i].uri);
    }
    b->n_files = kept;
}

void tgt_singer_batch_deinit(tgt_singer_batch *b)
{
    forget_files(b, 0);
    free(b->files);
    tgt_json_parser_deinit(&b->parser);
    memset(b, 0, sizeof(*b));
}

void tgt_singer_batch_committed(tgt_singer_batch *b)
{
    /* the BATCH being loaded keeps its files: a resume reuses their numbers */
    forget_files(b, b->msg_line);
}

void tgt_singer_batch_locate(const tgt_singer_batch *b, const char *input_name,
                             unsigned long line_no, const char **name, unsigned long *file_line)
{
    *name = input_name;
    *file_line = line_no;
    if (line_no <= TGT_SINGER_BATCH_LINE_BASE)
        return;
    for (size_t i = b->n_files; i-- > 0;) {
        const tgt_singer_batch_file *f = &b->files[i];
        if (line_no > f->base && line_no <= f->end) {
            *name = f->uri;
            *file_line = line_no - f->base;
            return;
        }
    }
    *name = "a BATCH file";
    *file_line = line_no - TGT_SINGER_BATCH_LINE_BASE;
}

/* ---- the message ----------------------------------------------------------- */

static int bad_message(tgt_error *err, const char *stream, const char *what)
{
    tgt_error_set(err, TGT_ERR_INPUT, "BATCH message of stream \"%s\": %s", stream, what);
    tgt_error_hint(err, "target-pg reads Singer SDK BATCH messages: \"encoding\": {\"format\": "
                        "\"jsonl\", \"compression\": \"gzip\", \"zstd\" or \"none\"} and a "
                        "\"manifest\" of file:// URIs.");
    return -1;
}

/* Checks the encoding and returns the manifest (borrowed from root). */
static const json_t *read_message(const json_t *root, const char *stream, tgt_error *err)
{
    const json_t *enc = json_object_get(root, "encoding");
    if (!json_is_object(enc)) {
        bad_message(err, stream, "\"encoding\" is not an object");
        return NULL;
    }
    const char *format = json_string_value(json_object_get(enc, "format"));
    if (format == NULL || strcmp(format, "jsonl") != 0) {
        tgt_error_set(err, TGT_ERR_INPUT,
                      "BATCH message of stream \"%s\": encoding format \"%.40s\" is not "
                      "supported; target-pg reads jsonl",
                      stream, format != NULL ? format : "(none)");
        tgt_error_hint(err, "Set the tap's batch_config encoding format to jsonl.");
        return NULL;
    }
    const json_t *comp = json_object_get(enc, "compression");
    const char *c = json_string_value(comp);
    if (!(comp == NULL || json_is_null(comp) ||
          (c != NULL &&
           (strcmp(c, "gzip") == 0 || strcmp(c, "zstd") == 0 || strcmp(c, "none") == 0)))) {
        tgt_error_set(err, TGT_ERR_INPUT,
                      "BATCH message of stream \"%s\": compression \"%.40s\" is not supported; "
                      "target-pg reads gzip, zstd and none",
                      stream, c != NULL ? c : "(not a string)");
        return NULL;
    }
    const json_t *manifest = json_object_get(root, "manifest");
    if (!json_is_array(manifest)) {
        bad_message(err, stream, "\"manifest\" is not an array");
        return NULL;
    }
    for (size_t i = 0; i < json_array_size(manifest); i++) {
        if (!json_is_string(json_array_get(manifest, i))) {
            bad_message(err, stream, "a \"manifest\" entry is not a string");
            return NULL;
        }
    }
    return manifest;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The local path of a file:// URI (file:///p or file://localhost/p, %XX
 * decoded) into *path (caller frees); -1 with err naming the URI when it is
 * no such URI. */
static int uri_path(const char *uri, char **path, tgt_error *err)
{
    const char *p = NULL;
    if (strncmp(uri, "file:///", 8) == 0)
        p = uri + 7;
    else if (strncmp(uri, "file://localhost/", 17) == 0)
        p = uri + 16;
    if (p == NULL) {
        tgt_error_set(err, TGT_ERR_INPUT,
                      "BATCH manifest entry \"%.200s\" is not a local file:// URI", uri);
        tgt_error_hint(err, "target-pg reads batch files from the local file system "
                            "(file:///path); store the tap's batches there.");
        return -1;
    }
    char *out = malloc(strlen(p) + 1);
    if (out == NULL)
        return tgt_error_nomem(err);
    size_t n = 0;
    for (; *p != '\0'; p++) {
        int hi, lo;
        if (*p == '%' && (hi = hex_value(p[1])) >= 0 && (lo = hex_value(p[2])) >= 0 &&
            (hi | lo) != 0) {
            out[n++] = (char)(hi * 16 + lo);
            p += 2;
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
    *path = out;
    return 0;
}

/* ---- the files ------------------------------------------------------------- */

/* The file entry of manifest entry `index` of the BATCH at msg_line: the
 * one a failed attempt made (same numbers), else a new one. */
static tgt_singer_batch_file *file_entry(tgt_singer_batch *b, unsigned long msg_line, size_t index,
                                         const char *uri, tgt_error *err)
{
    for (size_t i = 0; i < b->n_files; i++) {
        if (b->files[i].msg_line == msg_line && b->files[i].index == index)
            return &b->files[i];
    }
    if (b->n_files == b->cap_files) {
        size_t cap = b->cap_files ? 2 * b->cap_files : 8;
        tgt_singer_batch_file *grown = realloc(b->files, cap * sizeof(*grown));
        if (grown == NULL) {
            tgt_error_nomem(err);
            return NULL;
        }
        b->files = grown;
        b->cap_files = cap;
    }
    tgt_singer_batch_file *f = &b->files[b->n_files];
    f->uri = strdup(uri);
    if (f->uri == NULL) {
        tgt_error_nomem(err);
        return NULL;
    }
    f->msg_line = msg_line;
    f->index = index;
    f->base = b->next_base;
    f->end = ULONG_MAX;
    b->n_files++;
    return f;
}

static int open_file(const char *uri, const char *stream, int *fd, tgt_error *err)
{
    char *path = NULL;
    if (uri_path(uri, &path, err) != 0)
        return -1;
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    int e = errno;
    struct stat st;
    if (*fd >= 0 && fstat(*fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(*fd);
        *fd = -1;
        e = EISDIR;
    }
    free(path);
    if (*fd >= 0)
        return 0;
    tgt_error_set(err, TGT_ERR_INPUT, "cannot open BATCH file %.200s of stream \"%s\": %s", uri,
                  stream, strerror(e));
    tgt_error_hint(err, "The tap must leave its batch files in place until the target has "
                        "read them (and run on the same machine).");
    return -1;
}

int tgt_singer_batch_parse_line(tgt_json_parser *p, const char *line, size_t len,
                                const char *stream, size_t stream_len, tgt_message *msg,
                                tgt_error *err)
{
    if (tgt_json_parse(p, line, len, err) != 0)
        return -1;
    if (p->tokens[0].type != TGT_JSON_OBJECT)
        return tgt_error_set(err, TGT_ERR_INPUT,
                             "a BATCH file line must be a JSON object (one record)");
    memset(msg, 0, sizeof(*msg));
    msg->type = TGT_MSG_RECORD;
    msg->stream = stream;
    msg->stream_len = stream_len;
    msg->record = 0;
    msg->schema = msg->value = msg->version = msg->time_extracted = -1;
    return 0;
}

/* One file line (record number num) to the record function. */
static int hand_on(tgt_singer_batch *b, const char *line, size_t len, unsigned long num,
                   const tgt_message *batch_msg, tgt_singer_batch_record_fn fn, void *ctx,
                   tgt_error *err)
{
    tgt_message msg;
    int rc = tgt_singer_batch_parse_line(&b->parser, line, len, batch_msg->stream,
                                         batch_msg->stream_len, &msg, err);
    if (rc == 0)
        rc = fn(ctx, &b->parser, line, len, num, &msg, err);
    if (rc == 0 || rc == TGT_SINGER_BATCH_TAKEN)
        b->taken = num;
    return rc == 0 ? 0 : -1;
}

/* Reads file f (manifest entry of uri) and hands on every record not taken
 * yet.  The file's end number is known once it was read through. */
static int load_file(tgt_singer_batch *b, tgt_singer_batch_file *f, const char *stream,
                     const tgt_message *msg, tgt_singer_batch_record_fn fn, void *ctx,
                     tgt_error *err)
{
    int fd;
    if (open_file(f->uri, stream, &fd, err) != 0)
        return -1;
    tgt_reader *r = tgt_reader_new_file(fd, f->uri, err);
    int rc = r != NULL ? 0 : -1;
    unsigned long last = 0;
    while (rc == 0) {
        const char *line;
        size_t len;
        unsigned long line_no;
        tgt_read_status st = tgt_reader_next(r, &line, &len, &line_no, err);
        if (st == TGT_READ_EOF)
            break;
        if (st != TGT_READ_LINE) {
            /* a damaged file: say how far it was read */
            if (last > 0)
                tgt_error_where(err, "%.200s, after line %lu, stream \"%s\"", f->uri, last, stream);
            else
                tgt_error_where(err, "%.200s, stream \"%s\"", f->uri, stream);
            rc = -1;
            break;
        }
        last = line_no;
        if (f->base + line_no <= b->taken)
            continue; /* sent before a recovery, and committed with it */
        rc = hand_on(b, line, len, f->base + line_no, msg, fn, ctx, err);
        if (rc != 0)
            tgt_error_where(err, "%.200s line %lu, stream \"%s\"", f->uri, line_no, stream);
    }
    tgt_reader_free(r);
    close(fd);
    if (rc == 0) {
        f->end = f->base + last;
        if (f->end > b->next_base)
            b->next_base = f->end;
    }
    return rc;
}

int tgt_singer_batch_load(tgt_singer_batch *b, const char *line, size_t len, unsigned long line_no,
                          const tgt_message *msg, tgt_singer_batch_record_fn fn, void *ctx,
                          tgt_error *err)
{
    char stream[256];
    snprintf(stream, sizeof(stream), "%.*s", (int)msg->stream_len, msg->stream);
    if (b->msg_line != line_no) {
        b->msg_line = line_no; /* a new message, not a resume */
        b->taken = 0;
    }
    json_error_t jerr;
    json_t *root = json_loadb(line, len, 0, &jerr);
    if (root == NULL)
        return bad_message(err, stream, "not valid JSON");
    const json_t *manifest = read_message(root, stream, err);
    int rc = manifest != NULL ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < json_array_size(manifest); i++) {
        const char *uri = json_string_value(json_array_get(manifest, i));
        tgt_singer_batch_file *f = file_entry(b, line_no, i, uri, err);
        if (f == NULL) {
            rc = -1;
        } else if (f->end == ULONG_MAX || f->end > b->taken) {
            tgt_log(TGT_LOG_DEBUG, "stream \"%s\": reading BATCH file %s", stream, f->uri);
            rc = load_file(b, f, stream, msg, fn, ctx, err);
        }
    }
    json_decref(root);
    if (rc == 0)
        b->msg_line = 0; /* done: the same line number never resumes it */
    return rc;
}

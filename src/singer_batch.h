/*
 * singer_batch.h - Singer SDK BATCH messages: files of records named by a
 * manifest, read line by line and handed on as RECORD messages.
 *
 * A BATCH message ({"type": "BATCH", "stream": ..., "encoding": {"format":
 * "jsonl", "compression": "gzip" | "zstd" | "none"}, "manifest": ["file:///
 * ..."]}) names local files of one JSON record per line.  Each line is
 * parsed as the record of a RECORD message of that stream (no envelope is
 * built: the message's record is the line's root token) and goes to the
 * caller's record function, so a batch record is validated, merged,
 * spooled for a replay and counted exactly like a RECORD line: the loader
 * needs no second path.  The spool holds the line as it is; a replay parses
 * it again with tgt_singer_batch_parse_line, which its record number
 * (tgt_singer_batch_is_record) tells.  Compression is recognised from the file's
 * bytes (reader.h), so a file is read right whatever it was declared as.
 *
 * Record numbers: a record must be told apart from every other uncommitted
 * one (the spool and the list of refused records key on it) and named in
 * messages by its file and line.  Each batch file gets a range of numbers
 * above TGT_SINGER_BATCH_LINE_BASE, far past any input line;
 * tgt_singer_batch_locate turns one back into the file's URI and line.
 *
 * Resuming: when the record function fails (a lost connection), the caller
 * recovers (sends the uncommitted batch again and commits it) and hands the
 * same BATCH message in again.  Loading then goes on after the last record
 * that was taken, so no record is loaded twice and none is lost.
 *
 * Nothing here prints except debug logs; nothing talks to the database.
 */
#ifndef TGT_SINGER_BATCH_H
#define TGT_SINGER_BATCH_H

#include <limits.h>
#include <stddef.h>

#include "error.h"
#include "json.h"
#include "message.h"
#include "sbuf.h"

/* Record numbers above this are batch records; input lines stay below. */
#define TGT_SINGER_BATCH_LINE_BASE (ULONG_MAX / 2)

/* What a record function returns besides 0: it failed (err set) after the
 * record became part of the uncommitted batch, so a recovery that sends the
 * batch again sends this record too.  Plain -1: failed before that. */
#define TGT_SINGER_BATCH_TAKEN (-2)

/* Handles one BATCH record as a RECORD message (line[0..len) is the record
 * itself, parsed into p and msg) numbered line_no: 0, -1 or
 * TGT_SINGER_BATCH_TAKEN. */
typedef int (*tgt_singer_batch_record_fn)(void *ctx, const tgt_json_parser *p, const char *line,
                                          size_t len, unsigned long line_no, const tgt_message *msg,
                                          tgt_error *err);

typedef struct tgt_singer_batch_file tgt_singer_batch_file;

typedef struct tgt_singer_batch {
    tgt_singer_batch_file *files; /* owned: files whose records may be uncommitted */
    size_t n_files, cap_files;
    unsigned long next_base; /* number before the next file's first record */
    unsigned long msg_line;  /* input line of the BATCH being loaded (0: none) */
    unsigned long taken;     /* its records up to this number are taken */
    tgt_json_parser parser;  /* for the file lines */
} tgt_singer_batch;

/* 1 when record number line_no is a BATCH record's (its spooled line is
 * the bare record: tgt_singer_batch_parse_line). */
static inline int tgt_singer_batch_is_record(unsigned long line_no)
{
    return line_no > TGT_SINGER_BATCH_LINE_BASE;
}

/* Parses a BATCH file line (one JSON object) with p into msg: a RECORD of
 * the stream stream[0..stream_len) (borrowed) whose record is the whole
 * line.  TGT_ERR_INPUT when the line is no JSON or no object. */
int tgt_singer_batch_parse_line(tgt_json_parser *p, const char *line, size_t len,
                                const char *stream, size_t stream_len, tgt_message *msg,
                                tgt_error *err);

void tgt_singer_batch_init(tgt_singer_batch *b);
void tgt_singer_batch_deinit(tgt_singer_batch *b);

/* Loads the BATCH message `msg` (input line line_no, text line[0..len)):
 * every line of every manifest file, in order, through fn(ctx, ...).
 * Errors: TGT_ERR_INPUT
 * for a malformed message, an unsupported format, a URI that is not
 * file://, a file that cannot be opened or read (naming the URI) or a line
 * that is not a JSON object (naming URI and line); whatever fn returns. */
int tgt_singer_batch_load(tgt_singer_batch *b, const char *line, size_t len, unsigned long line_no,
                          const tgt_message *msg, tgt_singer_batch_record_fn fn, void *ctx,
                          tgt_error *err);

/* Everything uncommitted was committed: forgets the files of the BATCH
 * messages done (their record numbers are no longer in use). */
void tgt_singer_batch_committed(tgt_singer_batch *b);

/* The file and line record number line_no stands for: for a batch record
 * its file's URI and its line there, else input_name and line_no as they
 * are.  *name is borrowed (valid until the files are forgotten). */
void tgt_singer_batch_locate(const tgt_singer_batch *b, const char *input_name,
                             unsigned long line_no, const char **name, unsigned long *file_line);

#endif

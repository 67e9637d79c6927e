/*
 * dead_letter.h - the file that invalid_records: dead_letter appends to.
 *
 * A record that does not fit its table is dropped from the load but must not
 * be lost: it is appended, with the input line, the stream and the reason, to
 * a zstd-compressed JSON-lines file.  Each line is one object:
 *
 *   {"line": 12, "input": "stdin", "stream": "orders",
 *    "reason": "invalid record: ...", "at": "2024-05-01T10:00:00.123456Z",
 *    "record": {"id": 7, "amount": "abc"}}
 *
 * "record" is the original record JSON embedded as JSON, byte for byte
 * (numbers keep their digits), or a JSON string holding the text when it is
 * not valid JSON.  "at" is when the line was written (UTC).
 *
 * Durability follows the STATE promise: the loader calls
 * tgt_dead_letter_flush() at every commit point before it writes STATE, which
 * ends the current zstd frame and fsyncs the file.  Every open appends new
 * frames after whatever the file held; concatenated frames are one valid zstd
 * stream (`zstd -dc FILE` reads them all), and a crash can only leave a
 * truncated frame behind the last flush, never before it.
 *
 * This module only writes.  It does not decide what is invalid, never prints
 * and never exits.  The tgt_dead_letter is embedded by the caller and owns
 * its path copy, file and compression context; tgt_dead_letter_close frees
 * them.  Not thread-safe.
 */
#ifndef TGT_DEAD_LETTER_H
#define TGT_DEAD_LETTER_H

#include <stddef.h>
#include <stdio.h>

#include "error.h"

typedef struct tgt_dead_letter {
    char *path;               /* owned copy, for messages */
    FILE *file;               /* owned: opened for append */
    struct ZSTD_CCtx_s *cctx; /* owned (zstd.h's ZSTD_CCtx) */
    char *out;                /* owned: compressed bytes on their way to the file */
    size_t out_cap;
    int frame_open;      /* lines were compressed since the last frame end */
    int broken;          /* a write failed: the file may end in a torn frame */
    unsigned long count; /* lines written since open */
} tgt_dead_letter;

/*
 * Opens (creating it with mode 0600 if needed) `path` for appending.  path is
 * copied.  Errors: TGT_ERR_IO naming the path (cannot open), TGT_ERR_NOMEM.
 * On error *dl holds nothing, and tgt_dead_letter_close(dl) is a no-op.
 */
int tgt_dead_letter_open(tgt_dead_letter *dl, const char *path, tgt_error *err);

/*
 * Appends one line for the record at input line `line_no` of `input_name`
 * ("stdin" or a path) of stream[0..stream_len), dropped because of `reason`.
 * record_json[0..record_len) is the record object's JSON text (NULL: the
 * "record" is null).  All arguments are borrowed.  Text that is not valid
 * UTF-8 is written with U+FFFD in place of the bad bytes.  The line is
 * compressed into the open frame; it reaches the disk at the next flush.
 * Errors: TGT_ERR_IO naming the path (a write failed, e.g. the disk is
 * full), TGT_ERR_NOMEM; the count then does not include the record.  After
 * a failed write or flush every later write and flush fails too (the frame
 * on disk may be torn).
 */
int tgt_dead_letter_write(tgt_dead_letter *dl, const char *input_name, unsigned long line_no,
                          const char *stream, size_t stream_len, const char *reason,
                          const char *record_json, size_t record_len, tgt_error *err);

/*
 * Ends the current zstd frame (if any line went into it), then fflush and
 * fsync.  Call at each commit point before STATE is written.  A file that
 * cannot be synced (a pipe, /dev/null: EINVAL) counts as flushed.  Errors:
 * TGT_ERR_IO naming the path.
 */
int tgt_dead_letter_flush(tgt_dead_letter *dl, tgt_error *err);

/* Flushes (best effort: errors are ignored), closes and frees.  A no-op on a
 * zeroed dl, on one whose open failed, and when called twice. */
void tgt_dead_letter_close(tgt_dead_letter *dl);

/* Lines written since tgt_dead_letter_open (this run, not the whole file);
 * still readable after tgt_dead_letter_close. */
unsigned long tgt_dead_letter_count(const tgt_dead_letter *dl);

#endif

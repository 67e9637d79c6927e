/*
 * reader.h - bytes in, numbered lines out.
 *
 * Reads a file descriptor (stdin, --input FILE or a BATCH file), recognises
 * zstd-compressed input by its magic bytes (28 B5 2F FD) and gzip input by
 * its (1F 8B) at the very start and decompresses it as a stream (also
 * several concatenated frames or members).  Splits on '\n'; a '\r'
 * before the '\n' is kept (JSON treats it as whitespace); a UTF-8 byte-order
 * mark (EF BB BF) at the very start of the (decompressed) input is skipped;
 * a last line without a newline counts; blank lines (only spaces, tabs, CR) are skipped but still
 * counted, so line numbers match what `sed -n Np` shows.  Lines may be as
 * long as memory allows: the line buffer grows to fit and is kept for reuse.
 *
 * When `idle_ms` > 0 and no byte arrives for that long, tgt_reader_next
 * returns TGT_READ_IDLE so the caller can commit on age while a tap is
 * quiet; it can then simply call again.
 *
 * A compressed regular file is decompressed ahead on a second thread
 * (prefetch.h), which tgt_reader_free stops: the fd must stay open until
 * then.
 *
 * Ownership: the reader owns its buffers; a returned line is valid until the
 * next call.  The fd is not closed by the reader.
 */
#ifndef TGT_READER_H
#define TGT_READER_H

#include <signal.h>
#include <stddef.h>

#include "error.h"

typedef enum tgt_read_status {
    TGT_READ_LINE = 1, /* *line, *len, *line_no are set */
    TGT_READ_EOF = 0,
    TGT_READ_IDLE = 2,  /* no input for idle_ms */
    TGT_READ_ERROR = -1 /* err is set (TGT_ERR_IO, TGT_ERR_INPUT for corrupt zstd, NOMEM) */
} tgt_read_status;

typedef struct tgt_reader tgt_reader;

/* Creates a reader over fd; `name` ("stdin" or the file path) is copied and
 * used in messages.  NULL on allocation failure (err set). */
tgt_reader *tgt_reader_new(int fd, const char *name, int idle_ms, tgt_error *err);
void tgt_reader_free(tgt_reader *r);

/* A reader over a regular file that is always read to its end: no idle
 * polls, and tgt_reader_stop_requested is not honoured (see below). */
tgt_reader *tgt_reader_new_file(int fd, const char *name, tgt_error *err);

/* Next non-blank line.  The line is not NUL-terminated in general; *len
 * excludes the '\n'. */
tgt_read_status tgt_reader_next(tgt_reader *r, const char **line, size_t *len,
                                unsigned long *line_no, tgt_error *err);

/* The name given at creation ("stdin", a path), for error messages. */
const char *tgt_reader_name(const tgt_reader *r);

/* 1 when the input was recognised as zstd (valid after the first call). */
int tgt_reader_is_zstd(const tgt_reader *r);

/* Set by a signal handler (signals.c) to end the input early: the reader
 * polls in short slices while waiting and checks this flag.  Once it is set,
 * the reader still takes the bytes that had arrived by then (for a pipe,
 * socket or terminal: what FIONREAD reports at that moment; for a regular
 * file: nothing beyond the block in hand), returns the complete lines among
 * them, drops a partial last line (its writer was cut off) and then reports
 * TGT_READ_EOF, as at a clean end of input. */
extern volatile sig_atomic_t tgt_reader_stop_requested;

#endif

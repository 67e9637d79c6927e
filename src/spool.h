/*
 * spool.h - the RECORD lines of the batch not yet committed, kept so the
 * batch can be sent again.
 *
 * Why: a lost connection rolls back everything since the last commit, and
 * a value the database refuses fails a whole COPY.  Either way the rows must
 * be encoded and sent again (without the refused one), but stdin cannot be
 * read twice.  So every RECORD line that was encoded is appended here with
 * its input line number and stream, and the spool is emptied at each
 * commit: its end moves back to the start and the next batch overwrites
 * the file's pages (freeing them with ftruncate and allocating them again
 * cost more system time than writing them), so the file keeps the size
 * of the largest batch until the run ends.  It lives in an unlinked file
 * under $TMPDIR (tempfile.h: /tmp when $TMPDIR is unusable), in the page
 * cache, not in memory, so its size is bounded by the disk, not by RAM:
 * memory stays bounded by the chunk buffers whatever batch_size_rows is.
 */
#ifndef TGT_SPOOL_H
#define TGT_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "sbuf.h"

typedef struct tgt_spool {
    FILE *file;             /* NULL until the first append */
    char *buffer;           /* owned: file's stdio buffer (freed after the file is closed) */
    unsigned long count;    /* lines since the last reset */
    unsigned long bytes;    /* their size: the file's contents (it may be longer) */
    unsigned long read_pos; /* bytes read back since the rewind */
    tgt_sbuf line;          /* the line tgt_spool_next returned last */
} tgt_spool;

/* One spooled line as tgt_spool_next hands it back (line borrowed until the
 * next call). */
typedef struct tgt_spool_entry {
    unsigned long line_no;
    uint32_t stream_id;
    const char *line;
    size_t len;
} tgt_spool_entry;

void tgt_spool_init(tgt_spool *sp);
void tgt_spool_deinit(tgt_spool *sp);

int tgt_spool_append(tgt_spool *sp, unsigned long line_no, uint32_t stream_id, const char *line,
                     size_t len, tgt_error *err);

/* Empties the spool (after a commit). */
int tgt_spool_reset(tgt_spool *sp, tgt_error *err);

/* Reading back, oldest first: rewind, then next until it returns 0. Appends
 * after a rewind are not allowed until the reading is done. */
int tgt_spool_rewind(tgt_spool *sp, tgt_error *err);
/* 1 with *e filled, 0 at the end, -1 on error. */
int tgt_spool_next(tgt_spool *sp, tgt_spool_entry *e, tgt_error *err);
/* Ends reading: further appends go after the last entry. */
int tgt_spool_end_reading(tgt_spool *sp, tgt_error *err);

#endif

/*
 * spill.h - encoded rows parked in a temporary file until their stream's
 * bulk write takes them, queued per stream, oldest first.
 *
 * Why: with several streams interleaved, every bulk write ships one
 * stream's rows, and each COPY costs PostgreSQL 15 a fixed amount besides
 * its rows (make bench, 50 streams: ~0.25 ms per COPY of a few hundred
 * rows, 1.1-1.2 ms for one of 1,000 rows or more; most of it pinning and
 * releasing one tuple descriptor per buffered slot, up to 1,000, in a
 * resource owner whose hash degrades when every entry is the same
 * descriptor).  Chunks of
 * 64-192 kB per stream meant ~2,300 COPYs for 1,000,000 rows and half a
 * second of the server's time; fewer, larger COPYs need more rows waiting
 * per stream than the memory budget (16 MiB for every stream together)
 * holds.  So a stream's full chunks wait here, in the page cache rather
 * than in the process, until its turn comes.
 *
 * The file is cut into fixed slots reused through a free list, so it grows
 * only to the most rows ever waiting at once, not to the batch.  It lives
 * unlinked under $TMPDIR (tempfile.h) and is created on the first push.
 */
#ifndef TGT_SPILL_H
#define TGT_SPILL_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Bytes per slot: a chunk longer than this (a huge row) takes several. */
#define TGT_SPILL_SLOT (128u * 1024u)

/* One stream's waiting rows: slots in the order they were pushed. */
typedef struct tgt_spill_queue {
    int32_t head; /* oldest slot, -1 when empty */
    int32_t tail; /* newest slot, -1 when empty */
    size_t bytes; /* bytes waiting in it */
} tgt_spill_queue;

typedef struct tgt_spill_slot {
    uint32_t len;  /* bytes used of the slot */
    uint32_t rows; /* rows that end in it (a row may begin in the slot before) */
    int32_t next;  /* the next slot of its queue, or of the free list; -1: none */
} tgt_spill_slot;

typedef struct tgt_spill {
    int fd;                /* -1 until the first push */
    tgt_spill_slot *slots; /* the file's slots, by index */
    int32_t n_slots;       /* slots the file has */
    int32_t cap;           /* slots allocated */
    int32_t free_head;     /* a free slot, -1: none (the file grows) */
    size_t bytes;          /* bytes waiting in every queue together */
    char *buf;             /* the slot tgt_spill_pop read last */
} tgt_spill;

void tgt_spill_init(tgt_spill *sp);
void tgt_spill_deinit(tgt_spill *sp);
void tgt_spill_queue_init(tgt_spill_queue *q);

static inline int tgt_spill_queue_empty(const tgt_spill_queue *q)
{
    return q->head < 0;
}

/* Appends len bytes holding `rows` whole rows to q; 0, or -1 with err (the
 * file could not be created or written; q is then unchanged). */
int tgt_spill_push(tgt_spill *sp, tgt_spill_queue *q, const char *data, size_t len,
                   unsigned long rows, tgt_error *err);

/* Takes q's oldest slot: *data and *len its bytes (valid until the next pop),
 * *rows the rows that end in it.  Returns 1, 0 when q is empty, or -1 with
 * err (the slot is then freed all the same). */
int tgt_spill_pop(tgt_spill *sp, tgt_spill_queue *q, const char **data, size_t *len,
                  unsigned long *rows, tgt_error *err);

/* Forgets everything waiting in q (the rows were rolled back). */
void tgt_spill_drop(tgt_spill *sp, tgt_spill_queue *q);

#endif

/*
 * prefetch.h - a producer function run on a second thread, ahead of its
 * consumer, through a small ring of byte blocks.
 *
 * Why: decompressing a BATCH file (zlib's inflate, zstd) costs as much CPU
 * as a third of parsing and encoding its records.  On a machine with a
 * spare core the producer (read + decompress) and the consumer (lines,
 * JSON, COPY) then run at the same time instead of taking turns.
 *
 * The ring holds n_blocks blocks of block_cap bytes, allocated at start:
 * memory is bounded, and the producer waits when the consumer is behind.
 * The fill function runs on the prefetch thread only, and ctx belongs to
 * that thread from tgt_prefetch_start until tgt_prefetch_stop returns; the
 * consumer must not touch it meanwhile.  The thread blocks every signal,
 * so SIGINT/SIGTERM reach the main thread as before.
 *
 * Errors: the fill function's error (err as it set it) is handed to the
 * consumer after every block produced before it, and again on every later
 * call.  Nothing here prints or exits.
 */
#ifndef TGT_PREFETCH_H
#define TGT_PREFETCH_H

#include <stddef.h>

#include "error.h"

/* Fills buf[0..cap): 1 with *len (>= 1) bytes written, 0 at the end, -1
 * with err set.  Called again after 1 only. */
typedef int (*tgt_prefetch_fill_fn)(void *ctx, char *buf, size_t cap, size_t *len, tgt_error *err);

typedef struct tgt_prefetch tgt_prefetch;

/* Starts the thread calling fill(ctx, ...) into n_blocks (>= 2) blocks of
 * block_cap bytes.  NULL with err set when memory or the thread cannot be
 * had (the caller may then simply call fill itself). */
tgt_prefetch *tgt_prefetch_start(tgt_prefetch_fill_fn fill, void *ctx, size_t n_blocks,
                                 size_t block_cap, tgt_error *err);

/* The next block, in the order produced: 1 with *data and *len set (valid
 * until the next call, which hands the block back to the producer), 0 at
 * the end, -1 with the fill function's error in err.  Waits for the
 * producer. */
int tgt_prefetch_next(tgt_prefetch *pf, const char **data, size_t *len, tgt_error *err);

/* Tells the producer to stop (it finishes the fill call under way), waits
 * for the thread to end and frees everything.  NULL is a no-op. */
void tgt_prefetch_stop(tgt_prefetch *pf);

#endif

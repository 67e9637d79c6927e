/*
 * batch.h - the batch lifecycle: the one owner of the run's loading state.
 *
 * A batch is every row received since the last commit.  This layer owns it
 * from the RECORD to the STATE that may follow it:
 * - encoding: a RECORD becomes a row in its stream's COPY chunk (record.c)
 *   and a line in the spool (spool.c), so a recovery can send it again; a
 *   record the encoder refuses is handled by invalid_records (fail, skip,
 *   dead_letter);
 * - shipping: chunks go to the driver as they fill (with several streams
 *   one at a time, largest first: TGT_STAGGER_CHUNK_MAX), so memory is
 *   bounded by the chunk sizes, never by batch_size_rows.  Keyed streams go
 *   to staging and are merged at the commit point (but a first load into a
 *   new or empty table goes straight in, tgt_stream.direct); unkeyed streams
 *   are appended straight into the table;
 * - the transaction: opened by the first row shipped, committed at the
 *   commit point, or early when it would write to more tables than the
 *   driver allows (the server's lock table); in_txn is written only in
 *   batch.c;
 * - the commit point: ship every chunk, merge, commit, account the rows as
 *   committed (METRICs), forget the spool, flush dead letters, and only then
 *   write the latest STATE received (with load_method overwrite STATE waits
 *   for the swap).
 *
 * It does not dispatch messages, build models or recover from failures: the
 * handlers above it (loader_schema.c, loader_activate.c, loader_recover.c)
 * and the dispatch on top (loader.c) call down into it; it calls none of
 * them.  Recovery's own bookkeeping (the excluded records, what failed)
 * lives here too, because a commit ends it: batch.c clears it at each commit
 * point and loader_recover.c reads and sets it.
 */
#ifndef TGT_BATCH_H
#define TGT_BATCH_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "config.h"
#include "dead_letter.h"
#include "driver.h"
#include "error.h"
#include "json.h"
#include "message.h"
#include "naming.h"
#include "singer_batch.h"
#include "spool.h"
#include "state.h"
#include "stream.h"
#include "transform.h"

/* A stream's encoded rows are shipped when its chunk reaches this size.
 * Kept below the local socket's send buffer (~208 kB): a larger chunk
 * blocks in PQputCopyData until the server drained it, and target-pg and
 * the backend then take turns instead of working at once (make bench:
 * 256 kB gave 1.16-1.34x COPY's time for an append, 64 kB 1.03x). */
#define TGT_CHUNK_BYTES (64u * 1024u)
/* All chunks together never hold more than this before everything ships. */
#define TGT_BUFFERED_MAX (4u * 1024u * 1024u)
/* With 2 to TGT_BUFFERED_MAX / TGT_CHUNK_BYTES streams, chunks ship one at a
 * time, the largest, whenever all of them together hold a chunk per stream
 * (a chunk then grows to at most twice TGT_CHUNK_BYTES, still below the
 * socket's buffer).  Round-robin input would otherwise fill every chunk at
 * once and switch the COPY between all streams in one wave, with the server
 * idle while the next wave is encoded and target-pg idle while the server
 * works through this one; staggered, one chunk ships per chunk's worth of
 * input and its COPY is closed early (write_close) so the server finishes it
 * while the next records are encoded. */
#define TGT_STAGGER_CHUNK_MAX (2u * TGT_CHUNK_BYTES)
/* Where the driver can say whether a write would wait (write_room), the
 * staggering above gives way to spilling: with 2 to TGT_BUFFERED_MAX /
 * TGT_CHUNK_BYTES streams, a stream's chunk that reaches TGT_CHUNK_BYTES
 * goes to the spill file (spill.h) and one bulk write at a time is fed from
 * there, a slot whenever the driver has room, so that neither target-pg nor
 * the server waits for the other.  When a stream's queue is empty its bulk
 * write is closed (write_close), and once the server has finished it
 * (write_ready) the stream with the most rows waiting gets the next one.
 * The queues thus grow while the server is the slower side and each COPY
 * carries more: make bench's 50 streams (1,000,000 rows) went from ~2,300
 * COPYs of 64-192 kB to ~300 that grow from 64 kB to 2 MB, and the server's
 * CPU from 3.3 to 2.8 s (spill.h says why).  The pump runs after every
 * spilled chunk and every TGT_PUMP_POLL_BYTES encoded, often enough that the
 * socket never runs dry between two runs.  Past TGT_SPILL_MAX waiting, the
 * largest queue ships at once, waiting as needed. */
#define TGT_SPILL_MAX (256u * 1024u * 1024u)
#define TGT_PUMP_POLL_BYTES (4u * 1024u)

typedef struct tgt_batch {
    const tgt_config *cfg; /* borrowed */
    tgt_driver *driver;    /* borrowed; connected on first need */
    int connected;
    FILE *state_out;        /* borrowed: where STATE lines go */
    const char *input_name; /* borrowed: "stdin" or the file */
    char timestamp_column[TGT_IDENT_MAX + 1];

    tgt_stream_registry streams;
    tgt_state state;
    tgt_sbuf scratch;

    int in_txn; /* a transaction is open (written only in batch.c) */
    /* Streams with rows in the open transaction.  The driver's
     * tables_per_transaction bounds it: a stream that would be one too many
     * first gets the transaction committed early (its streams' records are
     * then committed, but STATE still waits for the commit point). */
    tgt_stream **txn_streams; /* owned: those streams, txn_tables of them */
    size_t txn_tables;
    size_t txn_cap;
    const tgt_table **merge_tables; /* owned scratch for the driver's lock_for_merge */
    size_t merge_tables_cap;
    unsigned conflicts;          /* deadlocks retried since the last commit */
    int probing;                 /* loader_recover.c bisects: never commit early */
    tgt_stream *copy_stream;     /* stream whose bulk write is open, or NULL */
    int copy_closed;             /* its end was sent (write_close); write_end collects it */
    uint32_t last_shipped;       /* id + 1 of the stream of the latest chunk shipped; 0: none */
    unsigned long copy_rows;     /* rows sent in that bulk write */
    size_t buffered;             /* bytes in all chunks */
    size_t since_pump;           /* bytes encoded since the pump last ran */
    tgt_spill spill;             /* full chunks waiting for their stream's turn */
    unsigned long pending_rows;  /* rows of all streams since the last commit */
    struct timespec batch_start; /* when the first pending row arrived */

    time_t loaded_at_second; /* cache for the receive-time text */
    char loaded_at[40];
    size_t loaded_at_len;
    unsigned long long sequence; /* _sdc_sequence of the last record */
    char batched_at[40];         /* _sdc_batched_at of the pending batch */
    size_t batched_at_len;

    /* Recovery (loader_recover.c): the uncommitted batch's RECORD lines,
     * the lines left out of it, and what a failed bulk write was doing.
     * Each commit point clears what concerned the batch it committed. */
    tgt_spool spool;
    unsigned long *excluded; /* owned: input lines of refused records, ascending */
    size_t n_excluded;
    unsigned long last_spooled_line; /* the RECORD most recently spooled */
    unsigned long copy_first_row;    /* rows of copy_stream sent before the open bulk write */
    tgt_stream *failed_stream;       /* stream of the bulk write that failed, or NULL */
    unsigned long failed_first_row;
    tgt_stream *merge_failed; /* keyed stream whose merge was refused, or NULL */
    unsigned recoveries;      /* since the last commit */
    tgt_json_parser replay_parser;
    tgt_dead_letter dead_letter; /* invalid_records dead_letter; else unused */
    int dead_letter_open;

    tgt_singer_batch singer; /* BATCH messages (singer_batch.c) */
    /* owned: the transformations setting (transform.h), or NULL: no rules */
    tgt_transform *transform;

    int overwrite;       /* load_method overwrite: shadow tables, STATE after the swap */
    int shadows_pending; /* overwrite: some stream loads into a shadow table */
} tgt_batch;

/* Sets b up for a run: cfg, driver, input_name and state_out are borrowed
 * and must outlive b.  Opens the dead-letter file (invalid_records
 * dead_letter) and normalises the timestamp_column setting.  On error
 * returns -1 with err set; tgt_batch_deinit is still called. */
int tgt_batch_init(tgt_batch *b, const tgt_config *cfg, tgt_driver *driver, const char *input_name,
                   FILE *state_out, tgt_error *err);
/* Frees everything b owns (closing the dead-letter file); commits nothing. */
void tgt_batch_deinit(tgt_batch *b);

/* Connects on first need (with retries). */
int tgt_batch_connect(tgt_batch *b, tgt_error *err);

/* Encodes one RECORD (line[0..len), parsed into p and msg, input line
 * line_no) of stream s into its chunk, spools it unless `replaying`, and
 * ships full chunks.  A record the encoder refuses (TGT_ERR_DATA) goes to
 * the invalid_records policy: fail returns -1 with err; skip and
 * dead_letter drop it, clear err and return 0. */
int tgt_batch_encode(tgt_batch *b, tgt_stream *s, const tgt_json_parser *p, const char *line,
                     size_t len, unsigned long line_no, const tgt_message *msg, int replaying,
                     tgt_error *err);

/* Drops one record of stream s under invalid_records skip/dead_letter:
 * writes the dead letter (the record from p and msg, `reason` the error
 * text), warns, counts it for the METRIC.  -1 with err when the dead letter
 * cannot be written. */
int tgt_batch_drop_record(tgt_batch *b, tgt_stream *s, const tgt_json_parser *p, const char *line,
                          const tgt_message *msg, unsigned long line_no, const char *reason,
                          tgt_error *err);

/* Ends the open bulk write (COPY), if any, or collects the outcome of one
 * closed early; its rows stay in the open transaction.  Needed before any
 * other statement on the connection.  A failure is pinned on the write's
 * stream and first row (failed_stream, failed_first_row). */
int tgt_batch_end_bulk_write(tgt_batch *b, tgt_error *err);

/* Ships every pending row and merges the keyed streams up to and including
 * `last` (NULL: all), inside the open transaction; no commit. */
int tgt_batch_ship_and_merge(tgt_batch *b, const tgt_stream *last, tgt_error *err);

/* Commits the open transaction (all of it is shipped and merged) and
 * accounts its streams' rows as committed (tgt_batch_txn_committed).  No
 * STATE: that is the commit point's. */
int tgt_batch_commit(tgt_batch *b, tgt_error *err);

/* The open transaction committed (also: the server says a COMMIT whose reply
 * was lost went through): its streams' pending rows count as committed
 * (METRICs written) and are never sent again. */
void tgt_batch_txn_committed(tgt_batch *b);

/* Ships, merges and commits everything pending, forgets what recovery kept
 * of the batch (spool, exclusions, BATCH files), flushes dead letters, then
 * writes the latest STATE (unless load_method overwrite holds it until the
 * swap). */
int tgt_batch_commit_point(tgt_batch *b, tgt_error *err);

/* A commit point if the pending batch is older than max_batch_age_seconds;
 * else nothing. */
int tgt_batch_check_age(tgt_batch *b, tgt_error *err);

/* Writes the latest STATE received, unless overwrite holds it back. */
int tgt_batch_emit_state(tgt_batch *b, tgt_error *err);

/* A transaction of its own for statements outside the batch (activating a
 * version, the overwrite swap), opened after a commit point: nothing of the
 * batch is in it.  tgt_batch_commit_alone commits it without the batch's
 * bookkeeping.  On error the transaction stays open for tgt_batch_abort. */
int tgt_batch_begin_alone(tgt_batch *b, tgt_error *err);
int tgt_batch_commit_alone(tgt_batch *b, tgt_error *err);

/* Rolls the open transaction back and forgets everything sent since the
 * last commit (chunks, rows pending, what failed), so the batch can be
 * encoded again from the spool.  The spool and the exclusions stay. */
void tgt_batch_forget(tgt_batch *b);

/* After an error: rolls back whatever is uncommitted. */
void tgt_batch_abort(tgt_batch *b);

#endif

/*
 * loader.h - turns Singer messages into committed rows and honest STATE.
 *
 * The loader owns the streams, the commit points and the STATE promise:
 * - RECORDs are encoded into per-stream COPY chunks (record.c) and shipped
 *   to the driver as chunks fill, so memory is bounded by the chunk sizes,
 *   never by batch_size_rows.  Keyed streams go to staging and are merged at
 *   the commit point; unkeyed streams are appended straight into the table.
 * - A commit point (a stream reached batch_size_rows, the batch is older than
 *   max_batch_age_seconds, a SCHEMA changes a table, or the input ended)
 *   ships every chunk, merges, commits one transaction for all streams, and
 *   only then writes the latest STATE received.  A transaction never writes
 *   to more tables than the driver allows (the server's lock table): past
 *   that the batch is committed in several transactions, STATE after the
 *   last one.
 * - A SCHEMA is diffed against the live table before anything is committed,
 *   so a refused change leaves the pending batch uncommitted.
 * On any error the caller calls tgt_loader_abort (rollback) and no STATE is
 * written past the last commit.
 */
#ifndef TGT_LOADER_H
#define TGT_LOADER_H

#include <stdio.h>
#include <time.h>

#include "config.h"
#include "dead_letter.h"
#include "driver.h"
#include "error.h"
#include "json.h"
#include "message.h"
#include "singer_batch.h"
#include "spool.h"
#include "state.h"
#include "stream.h"

/* A stream's encoded rows are shipped when its chunk reaches this size.
 * Kept below the local socket's send buffer (~208 kB): a larger chunk
 * blocks in PQputCopyData until the server drained it, and target-pg and
 * the backend then take turns instead of working at once (make bench:
 * 256 kB gave 1.16-1.34x COPY's time for an append, 64 kB 1.03x). */
#define TGT_CHUNK_BYTES (64u * 1024u)
/* All chunks together never hold more than this before everything ships. */
#define TGT_BUFFERED_MAX (4u * 1024u * 1024u)

typedef struct tgt_loader {
    const tgt_config *cfg;     /* borrowed */
    tgt_driver *driver;        /* borrowed; connected on first need */
    int connected;
    FILE *state_out;           /* borrowed: where STATE lines go */
    const char *input_name;    /* borrowed: "stdin" or the file */
    char timestamp_column[TGT_IDENT_MAX + 1];

    tgt_stream_registry streams;
    tgt_state state;
    tgt_sbuf scratch;

    int in_txn;
    /* Streams with rows in the open transaction.  The driver's
     * tables_per_transaction bounds it: a stream that would be one too many
     * first gets the transaction committed early (its streams' records are
     * then committed, but STATE still waits for the commit point). */
    tgt_stream **txn_streams;    /* owned: those streams, txn_tables of them */
    size_t txn_tables;
    size_t txn_cap;
    const tgt_table **merge_tables; /* owned scratch for the driver's lock_for_merge */
    size_t merge_tables_cap;
    unsigned conflicts;          /* deadlocks retried since the last commit */
    int probing;                 /* loader_recover.c bisects: never commit early */
    tgt_stream *copy_stream;     /* stream whose bulk write is open, or NULL */
    unsigned long copy_rows;     /* rows sent in that bulk write */
    size_t buffered;             /* bytes in all chunks */
    unsigned long pending_rows;  /* rows of all streams since the last commit */
    struct timespec batch_start; /* when the first pending row arrived */

    time_t loaded_at_second;     /* cache for the receive-time text */
    char loaded_at[40];
    size_t loaded_at_len;
    unsigned long long sequence; /* _sdc_sequence of the last record */
    char batched_at[40];         /* _sdc_batched_at of the pending batch */
    size_t batched_at_len;

    /* Recovery (loader_recover.c): the uncommitted batch's RECORD lines,
     * the lines left out of it, and what a failed bulk write was doing. */
    tgt_spool spool;
    unsigned long *excluded;     /* owned: input lines of refused records, ascending */
    size_t n_excluded;
    unsigned long last_spooled_line; /* the RECORD most recently spooled */
    unsigned long copy_first_row;    /* rows of copy_stream sent before the open bulk write */
    tgt_stream *failed_stream;       /* stream of the bulk write that failed, or NULL */
    unsigned long failed_first_row;
    tgt_stream *merge_failed;        /* keyed stream whose merge was refused, or NULL */
    unsigned recoveries;             /* since the last commit */
    tgt_json_parser replay_parser;
    tgt_dead_letter dead_letter;     /* invalid_records dead_letter; else unused */
    int dead_letter_open;

    tgt_singer_batch batch;          /* BATCH messages (singer_batch.c) */

    int overwrite;               /* load_method overwrite: shadow tables, STATE after the swap */
    int shadows_pending;         /* overwrite: some stream loads into a shadow table */
} tgt_loader;

int tgt_loader_init(tgt_loader *l, const tgt_config *cfg, tgt_driver *driver,
                    const char *input_name, FILE *state_out, tgt_error *err);
void tgt_loader_deinit(tgt_loader *l);

/* Handles one parsed message from line `line_no`. */
int tgt_loader_handle(tgt_loader *l, const tgt_json_parser *p, const char *line, size_t len,
                      unsigned long line_no, const tgt_message *msg, tgt_error *err);

/* Called while the input is quiet: commits if the batch is old enough. */
int tgt_loader_idle(tgt_loader *l, tgt_error *err);

/* End of input: commits everything and writes the latest STATE once. */
int tgt_loader_finish(tgt_loader *l, tgt_error *err);

/* After an error: rolls back whatever is uncommitted. */
void tgt_loader_abort(tgt_loader *l);

#endif

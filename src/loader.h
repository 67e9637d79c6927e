/*
 * loader.h - turns Singer messages into committed rows and honest STATE.
 *
 * The loader is the top of the loading layers (docs/architecture.md):
 * - loader.c dispatches each message to its handler, retries a message
 *   after recovering from a lost connection or a refused row, commits on
 *   idle and at the end of input (with load_method overwrite, swaps the
 *   shadow tables in first);
 * - the handlers (loader_schema.c, loader_activate.c, loader_recover.c)
 *   call down into the batch; the records of BATCH files (singer_batch.c)
 *   take the RECORD path;
 * - batch.c owns the batch lifecycle and the STATE promise: a commit point
 *   (a stream reached batch_size_rows, the batch is older than
 *   max_batch_age_seconds, a SCHEMA changes a table, or the input ended)
 *   ships every chunk, merges, commits and only then writes the latest
 *   STATE received.
 * A SCHEMA is diffed against the live table before anything is committed,
 * so a refused change leaves the pending batch uncommitted.  On any error
 * the caller calls tgt_loader_abort (rollback) and no STATE is written past
 * the last commit.
 */
#ifndef TGT_LOADER_H
#define TGT_LOADER_H

#include <stdio.h>

#include "batch.h"
#include "config.h"
#include "driver.h"
#include "error.h"
#include "json.h"
#include "message.h"

/* The run's loader: all of its state is the batch's (batch.h). */
typedef struct tgt_loader {
    tgt_batch b;
} tgt_loader;

/* Sets l up for a run (tgt_batch_init) and checks the timestamp_column
 * setting.  cfg, driver, input_name and state_out are borrowed.  On error
 * -1 with err set; tgt_loader_deinit is still called. */
int tgt_loader_init(tgt_loader *l, const tgt_config *cfg, tgt_driver *driver,
                    const char *input_name, FILE *state_out, tgt_error *err);
/* Frees what l owns; commits nothing. */
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

/*
 * target.h - the run: read lines, parse messages, hand them to the loader,
 * finish or abort.  Everything between main's setup and its exit status.
 */
#ifndef TGT_TARGET_H
#define TGT_TARGET_H

#include <stdio.h>

#include "config.h"
#include "driver.h"
#include "error.h"
#include "reader.h"

/* Loads everything `reader` delivers.  STATE lines go to state_out.  On
 * error, rolls back what is uncommitted and returns -1 with err set. */
int tgt_target_run(const tgt_config *cfg, tgt_reader *reader, tgt_driver *driver, FILE *state_out,
                   tgt_error *err);

#endif

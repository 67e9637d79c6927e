/*
 * loader_recover.h - recovering a batch that could not be committed as it
 * was sent (a lost connection, a lost deadlock, a row the database
 * refused).  Sends the batch again from the spool through batch.c; calls
 * nothing above it.
 */
#ifndef TGT_LOADER_RECOVER_H
#define TGT_LOADER_RECOVER_H

#include "batch.h"
#include "error.h"

/* After a failure (err set): when the connection was lost, reconnect and
 * send the uncommitted batch again; when the database refused a row (COPY
 * quotes it; anything else is bisected to it), find its input record and,
 * unless invalid_records is fail, send the batch again without it.
 * Everything is committed on success (0, err cleared); -1 leaves err
 * (improved) for the caller. */
int tgt_loader_recover(tgt_batch *b, tgt_error *err);

#endif

/*
 * loader_activate.h - ACTIVATE_VERSION messages (full-table replication):
 * commit the pending batch, then retire the rows of older versions in a
 * transaction of their own.  Calls down into loader_schema.c (the stream's
 * versioned model) and batch.c.
 */
#ifndef TGT_LOADER_ACTIVATE_H
#define TGT_LOADER_ACTIVATE_H

#include "batch.h"
#include "error.h"
#include "json.h"
#include "message.h"

/* An ACTIVATE_VERSION message from input line line_no (text `line`, parsed
 * into p and msg).  -1 with err for a version that is not a 64-bit integer
 * or a failed statement. */
int tgt_loader_activate_version(tgt_batch *b, const tgt_json_parser *p, const char *line,
                                unsigned long line_no, const tgt_message *msg, tgt_error *err);

#endif

/*
 * loader_schema.h - SCHEMA messages and the stream models they make: the
 * handler builds a stream's model, diffs it against the live table and
 * installs it once the database matches, committing the pending batch first
 * when the change needs it (batch.h).  It calls down into batch.c only.
 */
#ifndef TGT_LOADER_SCHEMA_H
#define TGT_LOADER_SCHEMA_H

#include <stddef.h>

#include "batch.h"
#include "error.h"
#include "message.h"
#include "schema.h"
#include "stream.h"

/* A SCHEMA message (line[0..len), parsed into msg).  A refused change
 * leaves the pending batch uncommitted and returns -1 with err. */
int tgt_loader_on_schema(tgt_batch *b, const char *line, size_t len, const tgt_message *msg,
                         tgt_error *err);

/* The stream's records carry versions (or an ACTIVATE_VERSION came): rebuild
 * its model with _sdc_table_version and _sdc_deleted_at and bring the table
 * up to it, which may commit the pending batch first.  Marks s versioned
 * even when it has no model yet. */
int tgt_loader_use_versions(tgt_batch *b, tgt_stream *s, tgt_error *err);

/* The model options of stream s, with the schema and table it loads into
 * (s->schema_name, s->table_name: the shadow table with load_method
 * overwrite, s->live_name the table it replaces).  Fixed on the first call;
 * a stream whose table another stream of the run already loads into is
 * refused (TGT_ERR_DATA naming both and the setting that separates them).
 * opt borrows s and b. */
int tgt_loader_table_identity(tgt_batch *b, tgt_stream *s, tgt_schema_options *opt, tgt_error *err);

#endif

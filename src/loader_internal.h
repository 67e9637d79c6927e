/*
 * loader_internal.h - what the loader's files (loader.c, loader_schema.c,
 * loader_activate.c) share.  Nothing outside the loader includes it.
 */
#ifndef TGT_LOADER_INTERNAL_H
#define TGT_LOADER_INTERNAL_H

#include "loader.h"

/* Connects on first need (with retries). */
int tgt_loader_connect(tgt_loader *l, tgt_error *err);

/* Ships, merges and commits everything pending, then writes the latest
 * STATE (unless load_method overwrite holds it until the swap). */
int tgt_loader_commit_point(tgt_loader *l, tgt_error *err);

/* Ships every pending row and merges the keyed streams up to and including
 * `last` (NULL: all), inside the open transaction; no commit. */
int tgt_loader_ship_and_merge(tgt_loader *l, const tgt_stream *last, tgt_error *err);

/* Commits the open transaction (all of it is shipped and merged) and
 * accounts its streams' rows as committed (tgt_loader_txn_committed).  No
 * STATE: that is the commit point's. */
int tgt_loader_commit(tgt_loader *l, tgt_error *err);

/* The open transaction committed (also: the server says a COMMIT whose reply
 * was lost went through): its streams' pending rows count as committed
 * (METRICs written) and are never sent again. */
void tgt_loader_txn_committed(tgt_loader *l);

/* Ends the open bulk write (COPY), if any; its rows stay in the open
 * transaction.  Needed before any other statement on the connection. */
int tgt_loader_end_bulk_write(tgt_loader *l, tgt_error *err);

/* Writes the latest STATE received, unless overwrite holds it back. */
int tgt_loader_emit_state(tgt_loader *l, tgt_error *err);

/* Encodes one RECORD (and spools it unless replaying). */
int tgt_loader_encode(tgt_loader *l, tgt_stream *s, const tgt_json_parser *p, const char *line,
                      size_t len, unsigned long line_no, const tgt_message *msg, int replaying,
                      tgt_error *err);

/* loader_recover.c: after a commit, forget the spool and the exclusions,
 * flush dead letters (before the STATE that follows). */
int tgt_loader_batch_committed(tgt_loader *l, tgt_error *err);

/* loader_recover.c: a record the encoder refused (err holds why; p and msg
 * are its parsed line):
 * invalid_records fail returns -1 with err; skip and dead_letter drop it,
 * clear err and return 0. */
int tgt_loader_invalid_record(tgt_loader *l, tgt_stream *s, const tgt_json_parser *p,
                              const char *line, const tgt_message *msg, unsigned long line_no,
                              tgt_error *err);

/* loader_recover.c: after a failure (err set): when the connection was lost,
 * reconnect and send the uncommitted batch again; when the database refused
 * a row (COPY quotes it; anything else is bisected to it), find its input
 * record and, unless invalid_records is fail, send the batch again without
 * it.  Everything is committed on success (0, err cleared); -1 leaves err
 * (improved) for the caller. */
int tgt_loader_recover(tgt_loader *l, tgt_error *err);

/* loader_schema.c: a SCHEMA message. */
int tgt_loader_on_schema(tgt_loader *l, const char *line, size_t len, const tgt_message *msg,
                         tgt_error *err);

/* loader_schema.c: the stream's records carry versions (or an
 * ACTIVATE_VERSION came): rebuild its model with _sdc_table_version and
 * _sdc_deleted_at and bring the table up to it. */
int tgt_loader_use_versions(tgt_loader *l, tgt_stream *s, tgt_error *err);

/* loader_schema.c: the model options of stream s, with the schema and table
 * it loads into (s->schema_name, s->table_name: the shadow table with
 * load_method overwrite, s->live_name the table it replaces).  Fixed on the
 * first call; a stream whose table another stream of the run already loads
 * into is refused (TGT_ERR_DATA naming both and the setting that separates
 * them).  opt borrows s and l. */
int tgt_loader_table_identity(tgt_loader *l, tgt_stream *s, tgt_schema_options *opt,
                              tgt_error *err);

/* loader_activate.c: an ACTIVATE_VERSION message. */
int tgt_loader_activate_version(tgt_loader *l, const tgt_json_parser *p, const char *line,
                                unsigned long line_no, const tgt_message *msg, tgt_error *err);

#endif

/*
 * stream.h - one Singer stream's state inside a run: its table model and
 * flatten plan, the COPY rows encoded but not yet shipped, and its counters.
 * The registry maps stream names to streams (hash table, names copied).
 *
 * A stream is created by its first SCHEMA message and lives until the end
 * of the run; a later SCHEMA replaces its model (after the loader has
 * shipped the rows encoded under the old one).
 */
#ifndef TGT_STREAM_H
#define TGT_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "sbuf.h"
#include "schema.h"
#include "spill.h"

typedef struct tgt_stream {
    char *name; /* owned, as sent */
    size_t name_len;
    uint32_t id; /* registration order from 0: names the stream in the spool */
    tgt_schema_model model;
    char *schema_fingerprint; /* owned: compact JSON of schema + keys, to spot repeats */
    /* owned: the SCHEMA message the model came from, as compact JSON, for
     * rebuilds (tgt_loader_use_versions).  Text, not the parsed document: a
     * jansson tree costs ~10x its text, which with thousands of streams was
     * most of the run's memory. */
    char *schema_text;
    int versioned;      /* RECORD versions or ACTIVATE_VERSION seen: keep version columns */
    int shadow_cleared; /* load_method overwrite: a leftover shadow was dropped this run */
    char live_name[TGT_IDENT_MAX + 1]; /* overwrite: the table the shadow replaces at the end */
    /* Where the stream loads, fixed at its first SCHEMA (or ACTIVATE_VERSION)
     * and checked against every other stream of the run
     * (tgt_loader_table_identity): */
    int has_identity;
    char schema_name[TGT_IDENT_MAX + 1]; /* target schema, normalised */
    char table_name[TGT_IDENT_MAX + 1];  /* live_name, or the shadow with overwrite */
    uint32_t identity_hash[2];           /* of schema + live_name, of schema + table_name */
    size_t bad_deletion_marks;           /* _sdc_deleted_at values that were not timestamps */
    /* Its rules of the transformations setting (transform.h), borrowed from
     * the batch's tgt_transform, or NULL: set by each SCHEMA. */
    struct tgt_transform_stream *rules;

    long *slot_tok;      /* owned: per column, the record's value token or -1 */
    unsigned char *seen; /* owned: per root plan entry, set while encoding a row */
    size_t n_required;   /* root entries marked required */

    tgt_sbuf chunk; /* COPY rows encoded, not yet shipped */
    unsigned long rows_in_chunk;
    tgt_spill_queue spill; /* full chunks waiting in the batch's spill file, sent before chunk */
    unsigned long rows_pending;    /* rows not yet committed (shipped or not) */
    unsigned long rows_committed;  /* over the whole run */
    unsigned long seq;             /* staging sequence: newest record per key wins */
    int partial_rows;              /* a staged row of the open batch lacks a property: the
                                    * merge combines the batch's records column by column */
    unsigned long rows_shipped;    /* of rows_pending, those sent in earlier bulk writes */
    unsigned long invalid_pending; /* invalid records dropped since the last commit */
    unsigned long invalid_total;   /* over the whole run */
    size_t nul_replaced;           /* U+0000 replaced by U+FFFD in this stream */
    int nul_warned;
    size_t bad_extracted_at;          /* time_extracted values that were not timestamps */
    unsigned long bad_extracted_line; /* input line of the first of them */
    int extracted_warned;
    /* keyed rows go straight into the table (TGT_WRITE_DIRECT), no staging:
     * set when its SCHEMA found the table new or empty, cleared when a key
     * clashed; changed only while none of its rows is pending */
    int direct;
    int in_txn;              /* some of its rows are in the open transaction */
    unsigned long last_line; /* input line of its record last put into the batch */
    /* Its records of this batch up to this input line are committed already
     * (the open transaction reached the driver's table limit and was
     * committed before the commit point): never sent again.  0: none. */
    unsigned long committed_through;

    struct tgt_stream *next_in_bucket;
    struct tgt_stream *next_in_order; /* registration order, for stable output */
} tgt_stream;

typedef struct tgt_stream_registry {
    tgt_stream **buckets; /* owned */
    size_t n_buckets;
    tgt_stream *first; /* registration order */
    tgt_stream *last;
    size_t n_streams;
    tgt_stream *recent; /* last looked-up stream: records come in runs */
} tgt_stream_registry;

void tgt_stream_registry_init(tgt_stream_registry *reg);
void tgt_stream_registry_deinit(tgt_stream_registry *reg);

/* The stream named name[0..len), or NULL. */
tgt_stream *tgt_stream_find(tgt_stream_registry *reg, const char *name, size_t len);

/* Finds or creates the stream (without a model yet). NULL + err on OOM. */
tgt_stream *tgt_stream_get_or_add(tgt_stream_registry *reg, const char *name, size_t len,
                                  tgt_error *err);

/* Installs a freshly built model (taken: *model is reset), resizing the
 * per-row scratch arrays.  The stream's chunk must be empty. */
int tgt_stream_set_model(tgt_stream *s, tgt_schema_model *model, char *fingerprint, tgt_error *err);

int tgt_stream_has_model(const tgt_stream *s);

/* 1 when s's rows go through staging and a merge: it has keys and does not
 * load them straight into its table (s->direct). */
int tgt_stream_stages(const tgt_stream *s);

#endif

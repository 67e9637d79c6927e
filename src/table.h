/*
 * table.h - the table model shared by the core and the drivers: what a
 * stream's table should look like (columns with their lattice types, key),
 * and what the live table in the warehouse looks like.
 *
 * The core builds tgt_table from a SCHEMA message (schema.c) and reconciles
 * it with a tgt_live_table read by the driver (evolve.c).  Drivers only read
 * tgt_table; they fill tgt_live_table.
 *
 * Ownership: a tgt_table owns its strings and arrays (tgt_table_deinit); a
 * tgt_live_table likewise (tgt_live_table_deinit).
 */
#ifndef TGT_TABLE_H
#define TGT_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "naming.h"
#include "types.h"

/* How a column's values are produced. */
typedef enum tgt_column_role {
    TGT_COL_DATA = 0,  /* from a record property */
    TGT_COL_LOADED_AT, /* the receive-time column (timestamp_column) */
    /* The Singer SDK metadata columns (add_metadata_columns; the version and
     * deletion columns also whenever a stream uses ACTIVATE_VERSION or
     * hard_delete is on): */
    TGT_COL_EXTRACTED_AT,  /* _sdc_extracted_at: the RECORD's time_extracted */
    TGT_COL_RECEIVED_AT,   /* _sdc_received_at: when target-pg read the record */
    TGT_COL_BATCHED_AT,    /* _sdc_batched_at: when the record's batch began */
    TGT_COL_DELETED_AT,    /* _sdc_deleted_at: the record's own _sdc_deleted_at */
    TGT_COL_TABLE_VERSION, /* _sdc_table_version: the RECORD's version */
    TGT_COL_SEQUENCE,      /* _sdc_sequence: increasing per record, across runs */
} tgt_column_role;

#define TGT_SDC_DELETED_AT "_sdc_deleted_at"
#define TGT_SDC_TABLE_VERSION "_sdc_table_version"

/* Columns whose change makes an upsert rewrite a row: the data, and the
 * version and deletion mark (a soft-deleted row that comes back unchanged
 * must lose its mark).  Receive times and sequences always differ and are
 * carried along with a change, not compared. */
#define TGT_COLUMN_IS_COMPARED(c)                                                                  \
    ((c)->role == TGT_COL_DATA || (c)->role == TGT_COL_DELETED_AT ||                               \
     (c)->role == TGT_COL_TABLE_VERSION)

typedef struct tgt_column {
    char name[TGT_IDENT_MAX + 1]; /* normalised identifier, unquoted */
    char *source_path;            /* owned: "a.b" (property path as sent, for messages), NULL
                                     for role columns */
    char *source_json;            /* owned: the path as recorded with the column,
                                     ["a","b"] (source_path.h); NULL for role columns */
    uint32_t path_hash;           /* FNV-1a of the path parts joined by 0x1F (naming.h) */
    tgt_coltype type;             /* the type the data needs (from the SCHEMA) */
    tgt_coltype live_type;        /* the type the live column has (== type when we created it) */
    tgt_column_role role;
    int is_key; /* part of the primary key (NOT NULL) */
    int exists; /* 1 once the column exists in the live table */
} tgt_column;

typedef struct tgt_table {
    char *schema;        /* owned: target schema name, unquoted */
    char *name;          /* owned: table identifier, unquoted */
    tgt_column *columns; /* owned; order = COPY column order */
    size_t n_columns;
    size_t *key_columns; /* owned: indexes into columns, in key_properties order */
    size_t n_keys;
    unsigned long shape_version; /* bumped whenever columns or types change */
    long deleted_at_column;      /* _sdc_deleted_at (declared or metadata), or -1 */
    long version_column;         /* _sdc_table_version, or -1 */
    int hard_delete;             /* merge deletes keys whose newest record has a deletion mark */
} tgt_table;

void tgt_table_init(tgt_table *t);
void tgt_table_deinit(tgt_table *t);

/* Index of the column called `name`, or -1. */
long tgt_table_find_column(const tgt_table *t, const char *name);

typedef struct tgt_live_column {
    char name[TGT_IDENT_MAX + 1];
    char sql_type[128]; /* the warehouse's own spelling (PostgreSQL: format_type()), for messages */
    tgt_coltype type;   /* the driver's reading of sql_type (TGT_T_OTHER when unknown) */
    int not_null;
    char *source_path; /* owned: the property path target-pg recorded for it (as written:
                          source_path.h), or NULL */
} tgt_live_column;

typedef struct tgt_live_table {
    int exists;
    /* 1 when the driver found no rows in a table with a primary key (keyed
     * first loads then skip staging); 0 when it has rows or nobody looked */
    int empty;
    tgt_live_column *columns; /* owned */
    size_t n_columns;
    char (*key)[TGT_IDENT_MAX + 1]; /* owned: primary key column names in key order */
    size_t n_keys;
} tgt_live_table;

void tgt_live_table_init(tgt_live_table *lt);
void tgt_live_table_deinit(tgt_live_table *lt);
const tgt_live_column *tgt_live_table_find(const tgt_live_table *lt, const char *name);

#endif

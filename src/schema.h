/*
 * schema.h - a SCHEMA message's JSON Schema turned into a table model and a
 * flatten plan.
 *
 * The table model (table.h) lists the columns in COPY order: one per leaf
 * property (nested objects with properties are flattened into a__b columns
 * up to the depth limit and a column budget), then the receive-time column,
 * then the _sdc_* metadata columns the options ask for.  These belong to the
 * target: a property whose column name is one of them (or
 * _sdc_table_version, always) gets the name with the hash suffix and a
 * warning; only a declared _sdc_deleted_at serves as the deletion mark
 * (CDC deletions).  The plan mirrors the object
 * structure of a record so the record encoder (record.c) can route each
 * property of an incoming record to its column with one hash lookup per key,
 * without building a tree.
 *
 * Type mapping (docs/contract.md "Types"): integer -> bigint (numeric when bounds
 * pass 64 bits), number -> numeric, string -> text / timestamptz / date /
 * time by format, boolean -> boolean; object without properties, array, an
 * empty schema, or any union that admits an object or array -> jsonb; other
 * unions -> the lattice join.  `null` in a type only makes a column nullable.
 *
 * Ownership: tgt_schema_model owns everything it points to
 * (tgt_schema_model_deinit).  The jansson values passed in are borrowed.
 */
#ifndef TGT_SCHEMA_H
#define TGT_SCHEMA_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "driver.h"
#include "error.h"
#include "table.h"

typedef struct tgt_plan tgt_plan;

/* One property of one object level. */
typedef struct tgt_plan_entry {
    char *name; /* owned: the property name as sent (UTF-8) */
    size_t name_len;
    long column;     /* >= 0: the column this leaf fills; -1 for a flattened object */
    tgt_plan *child; /* owned: the object's own plan when flattened, else NULL */
    int required;    /* listed in the parent's "required" */
} tgt_plan_entry;

struct tgt_plan {
    tgt_plan_entry *entries; /* owned */
    size_t n_entries;
    uint32_t *slots; /* owned: open-addressing hash, entry index + 1, 0 = empty */
    size_t n_slots;  /* power of two */
    char *path;      /* owned: "a.b" for messages, "" at the root */
};

typedef struct tgt_schema_model {
    tgt_table table;
    tgt_plan *root;        /* owned */
    long loaded_at_column; /* index of the receive-time column, or -1 */
    int flatten_depth;     /* depth actually used (may be below the setting) */
} tgt_schema_model;

typedef struct tgt_schema_options {
    const char *stream;           /* for messages */
    const char *target_schema;    /* copied into table.schema */
    const char *table_name;       /* normalised identifier, copied */
    const char *timestamp_column; /* normalised name of the receive-time column */
    long flattening_max_depth;
    int metadata_columns; /* all six _sdc_* columns (add_metadata_columns) */
    int versioned;        /* _sdc_table_version and _sdc_deleted_at: the stream uses versions */
    int hard_delete;      /* _sdc_deleted_at, and merges delete marked keys */
    /* The warehouse's limits (borrowed, never NULL): identifier length for
     * the naming rule, columns per table, flattening's column budget. */
    const tgt_driver_caps *caps;
} tgt_schema_options;

/*
 * Builds the model from `schema` (the message's "schema" object) and
 * `key_properties` (an array of strings, or NULL for none).  Errors
 * (TGT_ERR_DATA) name the stream: no object "properties", a key property that
 * is not declared or is an object, more columns than caps->max_columns,
 * malformed types.
 */
int tgt_schema_build(const json_t *schema, const json_t *key_properties,
                     const tgt_schema_options *opt, tgt_schema_model *out, tgt_error *err);

void tgt_schema_model_init(tgt_schema_model *m);
void tgt_schema_model_deinit(tgt_schema_model *m);

/* The entry of `plan` for property key[0..len) (decoded form), or NULL. */
const tgt_plan_entry *tgt_plan_find(const tgt_plan *plan, const char *key, size_t len);

/* Hash used by the plan's table (FNV-1a). */
uint32_t tgt_plan_hash(const char *key, size_t len);

#endif

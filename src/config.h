/*
 * config.h - settings: where they come from (JSON files given with --config,
 * or TARGET_PG_<SETTING> environment variables with --config ENV), their
 * types, defaults, aliases and descriptions.
 *
 * One table in config.c describes every setting; it drives parsing,
 * validation, `--about` (JSON Schema and markdown) and the README table, so a
 * setting cannot exist in one place and not the others.  Later sources
 * override earlier ones key by key.  Unknown keys give a warning; a value of
 * the wrong type is a TGT_ERR_USAGE error naming the setting.
 *
 * A tgt_config owns all its strings; tgt_config_deinit frees them.
 */
#ifndef TGT_CONFIG_H
#define TGT_CONFIG_H

#include <stddef.h>

#include "error.h"
#include "sbuf.h"

/* A source-schema -> target-schema pair from schema_mapping. */
typedef struct tgt_schema_map_entry {
    char *source;
    char *target;
} tgt_schema_map_entry;

/* The settings with a fixed set of values, parsed once by tgt_config_finish
 * (the strings stay, as spelled in the choices, for messages and --about). */
typedef enum tgt_type_change_mode {
    TGT_TYPE_CHANGE_FAIL = 0, /* a narrowing SCHEMA stops the stream */
    TGT_TYPE_CHANGE_KEEP      /* the wider live column stays and takes the values */
} tgt_type_change_mode;

typedef enum tgt_load_method_mode {
    TGT_LOAD_AUTO = 0,    /* upsert with key_properties, append without */
    TGT_LOAD_APPEND_ONLY, /* every record a row, no primary key made */
    TGT_LOAD_UPSERT,      /* upsert always (a keyless stream on the table's key) */
    TGT_LOAD_OVERWRITE    /* shadow tables swapped in at the end of a successful run */
} tgt_load_method_mode;

typedef enum tgt_invalid_records_mode {
    TGT_INVALID_FAIL = 0,   /* stop naming the record */
    TGT_INVALID_SKIP,       /* drop it, warn and count */
    TGT_INVALID_DEAD_LETTER /* drop it into dead_letter_path */
} tgt_invalid_records_mode;

typedef struct tgt_config {
    char *driver; /* the driver's registry name (drivers/registry.h); never NULL after
                   * tgt_config_finish */

    /* Connection settings of the postgres driver; NULL means "not set: let
     * libpq use its defaults and PG*". */
    char *host;
    char *port;
    char *user;
    char *password;
    char *dbname;
    char *sslmode;
    char *sslrootcert;
    char *sslcert;
    char *sslkey;
    char *conninfo; /* a full libpq string or URI; wins over the fields above */

    /* Connection settings of the odbc driver (drivers/odbc/odbc.h); user and
     * password above serve it too.  NULL means "not set". */
    char *odbc_connection_string; /* secret: a full ODBC connection string */
    char *odbc_dsn;               /* a data source name from odbc.ini */
    char *dialect;                /* sqlite | mariadb | postgres; NULL: detected */

    char *default_target_schema; /* never NULL after tgt_config_finish */
    tgt_schema_map_entry *schema_mapping;
    size_t n_schema_mapping;

    long batch_size_rows;        /* >= 1 */
    long max_batch_age_seconds;  /* >= 1 */
    char *timestamp_column;      /* never NULL after tgt_config_finish */
    long flattening_max_depth;   /* >= 0 */
    char *type_change;           /* "fail" | "keep": narrowing SCHEMA changes */
    long add_metadata_columns;   /* 0/1: the _sdc_* columns in every table */
    long hard_delete;            /* 0/1: delete instead of setting _sdc_deleted_at */
    char *load_method;           /* "auto" | "append-only" | "upsert" | "overwrite" */
    char *invalid_records;       /* "fail" | "skip" | "dead_letter" */
    char *dead_letter_path;      /* required with invalid_records = dead_letter */
    long connect_retries;        /* >= 0: further attempts after a failed or lost connection */
    long connect_retry_delay_ms; /* first retry's wait; doubled each time, capped at 60 s */
    char *log_level;             /* "debug" | "info" | "warning" | "error" */
    char *log_format;            /* "text" | "json" (structured logging) */

    /* type_change, load_method and invalid_records parsed (tgt_config_finish) */
    tgt_type_change_mode type_change_mode;
    tgt_load_method_mode load_method_mode;
    tgt_invalid_records_mode invalid_records_mode;
} tgt_config;

/* Sets every field to its built-in default (strings NULL until finish). */
void tgt_config_init(tgt_config *cfg);
void tgt_config_deinit(tgt_config *cfg);

/* Merges the JSON object in file `path` into cfg (later wins). */
int tgt_config_load_file(tgt_config *cfg, const char *path, tgt_error *err);

/* Merges TARGET_PG_<SETTING> environment variables (and alias names). */
int tgt_config_load_env(tgt_config *cfg, tgt_error *err);

/* Fills defaults that depend on the environment (default_target_schema from
 * $MELTANO_EXTRACT__LOAD_SCHEMA, else "public"), checks ranges and choices
 * (also of fields a caller set directly) and fills the *_mode fields. */
int tgt_config_finish(tgt_config *cfg, tgt_error *err);

/* Target schema for a source schema (NULL: none) per schema_mapping, else
 * default_target_schema.  Borrowed. */
const char *tgt_config_target_schema(const tgt_config *cfg, const char *source, size_t source_len);

/* Writes the plugin description (name, description, version, capabilities,
 * settings as JSON Schema) as JSON, or as markdown when markdown != 0. */
int tgt_config_write_about(tgt_sbuf *out, int markdown);

#endif

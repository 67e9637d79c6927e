/*
 * config.c - settings from JSON files and TARGET_PG_* environment variables.
 *
 * Everything about a setting lives in one row of `settings[]` below: its
 * name, aliases, type, default, minimum, description and where it is stored
 * in tgt_config.  Parsing files, parsing the environment, filling defaults,
 * freeing, and `--about` (JSON Schema and markdown) all walk that table, so
 * a setting cannot be accepted without being documented or the reverse.
 *
 * Values reach the table's setters in two shapes: jansson values from a file
 * (set_from_json) and plain C strings from the environment (set_from_text).
 * Both end in the same store_* functions, so a value is validated the same
 * way wherever it came from.  Null in a file and an empty environment variable
 * both mean "not set": the earlier value (or the default) is kept, because
 * Meltano passes null for settings the user left unset.
 *
 * Secrets (password, conninfo, odbc_connection_string) are never echoed: error messages about them
 * name only the JSON type that was found, and parse errors from jansson are
 * cut before the "near '<text>'" part, which may quote a fragment of one.
 *
 * Nothing here prints except the tgt_log warnings for unknown settings, a
 * setting given under two names, and a password in a file others can read.
 * Nothing exits.  On error the config may already hold some of the failing
 * source's values; it is still safe (and required) to tgt_config_deinit it.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <jansson.h>

#include "log.h"
#include "version.h"

#define ENV_PREFIX "TARGET_PG_"

#define ABOUT_DESCRIPTION                                                                          \
    "Singer target that loads streams into PostgreSQL with COPY, upserts rows that have key "      \
    "properties, widens column types as schemas change, and emits STATE only after the records "   \
    "before it are committed."

typedef enum setting_type {
    SET_STRING,  /* any string */
    SET_SECRET,  /* a string that is never echoed and is writeOnly in --about */
    SET_INTEGER, /* a JSON integer; from the environment, a strict base-10 string */
    SET_BOOLEAN, /* JSON true/false; from the environment true/false/1/0/yes/no; stored as 0/1 */
    SET_PORT,    /* a TCP port given as a JSON integer or a string of digits; stored as text */
    SET_ENUM,    /* one of `choices`, matched case-insensitively, stored as spelled there */
    SET_MAP      /* schema_mapping: an object of source schema -> target schema */
} setting_type;

/* Flags. */
#define SET_NONEMPTY 1u /* an empty string is rejected */
#define SET_LIBPQ 2u    /* unset means libpq's default (documented as such) */

#define MAX_ALIASES 2

typedef struct setting {
    const char *name;
    const char *aliases[MAX_ALIASES + 1]; /* NULL-terminated */
    setting_type type;
    unsigned flags;
    const char *default_str;    /* string/enum default filled by tgt_config_finish */
    const char *default_env;    /* variable that, when non-empty, overrides default_str */
    long default_int;           /* SET_INTEGER default set by tgt_config_init */
    long min;                   /* SET_INTEGER, SET_PORT */
    long max;                   /* SET_INTEGER, SET_PORT */
    const char *const *choices; /* SET_ENUM, NULL-terminated */
    size_t offset;              /* of the char * or long field; unused for SET_MAP */
    const char *description;    /* one sentence, for a data engineer */
} setting;

static const char *const sslmode_choices[] = {"disable",   "allow",       "prefer", "require",
                                              "verify-ca", "verify-full", NULL};
static const char *const log_level_choices[] = {"debug", "info", "warning", "error", NULL};
static const char *const type_change_choices[] = {"fail", "keep", NULL};
static const char *const load_method_choices[] = {"auto", "append-only", "upsert", "overwrite",
                                                  NULL};
static const char *const invalid_records_choices[] = {"fail", "skip", "dead_letter", NULL};
static const char *const dialect_choices[] = {"sqlite", "mariadb", "postgres", NULL};
static const char *const log_format_choices[] = {"text", "json", NULL};

/* What target-pg can do, in the Singer SDK's capability names (Meltano
 * reads them from --about; the plugin definition copies them). */
static const char *const capabilities[] = {
    "about",         "activate-version",   "batch",
    "hard-delete",   "soft-delete",        "schema-flattening",
    "target-schema", "structured-logging", NULL};

#define FIELD(f) offsetof(tgt_config, f)

static const setting settings[] = {
    {.name = "driver",
     .type = SET_STRING,
     .flags = SET_NONEMPTY,
     .default_str = "postgres",
     .offset = FIELD(driver),
     .description = "The warehouse driver that loads the data: postgres (libpq; reads host, "
                    "port, user, password, dbname, the ssl settings and conninfo) or odbc "
                    "(unixODBC; reads odbc_connection_string or odbc_dsn with user and "
                    "password, and dialect)."},
    {.name = "host",
     .flags = SET_LIBPQ,
     .type = SET_STRING,
     .offset = FIELD(host),
     .description = "PostgreSQL server host name, IP address or Unix-socket directory; unset "
                    "means libpq's default (PGHOST, then the local socket)."},
    {.name = "port",
     .flags = SET_LIBPQ,
     .type = SET_PORT,
     .min = 1,
     .max = 65535,
     .offset = FIELD(port),
     .description = "PostgreSQL server port, as a number or a string of digits; unset means "
                    "libpq's default (PGPORT, then 5432)."},
    {.name = "user",
     .flags = SET_LIBPQ,
     .type = SET_STRING,
     .offset = FIELD(user),
     .description = "Database role to connect as; unset means libpq's default (PGUSER, then the "
                    "operating-system user)."},
    {.name = "password",
     .flags = SET_LIBPQ,
     .type = SET_SECRET,
     .offset = FIELD(password),
     .description = "Password of the database role; unset means libpq's default (PGPASSWORD, "
                    "then ~/.pgpass)."},
    {.name = "dbname",
     .flags = SET_LIBPQ,
     .aliases = {"database"},
     .type = SET_STRING,
     .offset = FIELD(dbname),
     .description = "Database to load into; unset means libpq's default (PGDATABASE, then the "
                    "role name)."},
    {.name = "sslmode",
     .flags = SET_LIBPQ,
     .type = SET_ENUM,
     .choices = sslmode_choices,
     .offset = FIELD(sslmode),
     .description = "How strictly the connection must use TLS, passed to libpq; unset means "
                    "libpq's default (PGSSLMODE, then prefer)."},
    {.name = "sslrootcert",
     .flags = SET_LIBPQ,
     .type = SET_STRING,
     .offset = FIELD(sslrootcert),
     .description = "Path to the file of trusted certificate authorities that verify the "
                    "server's certificate (used by sslmode verify-ca and verify-full)."},
    {.name = "sslcert",
     .flags = SET_LIBPQ,
     .type = SET_STRING,
     .offset = FIELD(sslcert),
     .description = "Path to the client certificate file, for certificate authentication."},
    {.name = "sslkey",
     .flags = SET_LIBPQ,
     .type = SET_STRING,
     .offset = FIELD(sslkey),
     .description = "Path to the private key file of the client certificate."},
    {.name = "conninfo",
     .type = SET_SECRET,
     .offset = FIELD(conninfo),
     .description = "A complete libpq connection string or postgresql:// URI, which wins over "
                    "host, port, user, password, dbname and the ssl settings."},
    {.name = "odbc_connection_string",
     .type = SET_SECRET,
     .offset = FIELD(odbc_connection_string),
     .description = "With driver odbc: a complete ODBC connection string (e.g. "
                    "DRIVER=SQLite3;Database=/data/warehouse.db), which wins over odbc_dsn."},
    {.name = "odbc_dsn",
     .type = SET_STRING,
     .offset = FIELD(odbc_dsn),
     .description = "With driver odbc: a data source name from odbc.ini, connected to with "
                    "user and password."},
    {.name = "dialect",
     .type = SET_ENUM,
     .choices = dialect_choices,
     .offset = FIELD(dialect),
     .description = "With driver odbc: the warehouse's SQL dialect; unset means detected from "
                    "the data source's DBMS name."},
    {.name = "default_target_schema",
     .aliases = {"schema"},
     .type = SET_STRING,
     .flags = SET_NONEMPTY,
     .default_str = "public",
     .default_env = "MELTANO_EXTRACT__LOAD_SCHEMA",
     .offset = FIELD(default_target_schema),
     .description = "Schema that receives the tables of all streams not named in "
                    "schema_mapping; defaults to $MELTANO_EXTRACT__LOAD_SCHEMA when that is "
                    "set, else public."},
    {.name = "schema_mapping",
     .type = SET_MAP,
     .description = "Maps the source schema of a `source-table` stream name to a target "
                    "schema, as {\"sales\": \"raw_sales\"} or in the pipelinewise form "
                    "{\"sales\": {\"target_schema\": \"raw_sales\"}}."},
    {.name = "batch_size_rows",
     .type = SET_INTEGER,
     .default_int = 100000,
     .min = 1,
     .max = LONG_MAX,
     .offset = FIELD(batch_size_rows),
     .description = "Rows a stream may hold before everything pending is committed and the "
                    "latest STATE is emitted."},
    {.name = "max_batch_age_seconds",
     .type = SET_INTEGER,
     .default_int = 300,
     .min = 1,
     .max = LONG_MAX,
     .offset = FIELD(max_batch_age_seconds),
     .description = "Longest time in seconds that received rows wait before they are "
                    "committed, so STATE keeps advancing on slow streams."},
    {.name = "timestamp_column",
     .type = SET_STRING,
     .flags = SET_NONEMPTY,
     .default_str = "__loaded_at",
     .offset = FIELD(timestamp_column),
     .description = "Name of the timestamptz column, added to every table, that records when "
                    "the target received each row."},
    {.name = "flattening_max_depth",
     .aliases = {"data_flattening_max_level"},
     .type = SET_INTEGER,
     .default_int = 10,
     .min = 0,
     .max = LONG_MAX,
     .offset = FIELD(flattening_max_depth),
     .description = "Levels of nested objects turned into parent__child columns; deeper objects "
                    "are stored as jsonb, and 0 keeps every object as jsonb."},
    {.name = "type_change",
     .type = SET_ENUM,
     .choices = type_change_choices,
     .default_str = "fail",
     .offset = FIELD(type_change),
     .description = "What a SCHEMA asking for a narrower type than a live column gets: fail "
                    "stops the stream with an error naming stream, column and both types; keep "
                    "leaves the wider live column and loads the values into it."},
    {.name = "add_metadata_columns",
     .aliases = {"add_record_metadata"},
     .type = SET_BOOLEAN,
     .offset = FIELD(add_metadata_columns),
     .description = "Adds and fills the Singer SDK metadata columns _sdc_extracted_at, "
                    "_sdc_received_at, _sdc_batched_at, _sdc_deleted_at, _sdc_table_version and "
                    "_sdc_sequence in every table."},
    {.name = "hard_delete",
     .type = SET_BOOLEAN,
     .offset = FIELD(hard_delete),
     .description = "ACTIVATE_VERSION deletes the rows of older versions instead of setting "
                    "their _sdc_deleted_at, and a keyed record carrying _sdc_deleted_at deletes "
                    "its row."},
    {.name = "load_method",
     .type = SET_ENUM,
     .choices = load_method_choices,
     .default_str = "auto",
     .offset = FIELD(load_method),
     .description = "auto upserts streams with key_properties and appends the others; "
                    "append-only appends every record and creates tables without a primary key; "
                    "upsert is auto, but a stream without key_properties upserts on its table's "
                    "primary key (and is refused when the table has none); overwrite loads each "
                    "stream into a shadow table and swaps it in for the live table when the run "
                    "succeeds (STATE is written only after the swap)."},
    {.name = "invalid_records",
     .type = SET_ENUM,
     .choices = invalid_records_choices,
     .default_str = "fail",
     .offset = FIELD(invalid_records),
     .description = "What a record that does not fit its table gets: fail stops the run naming "
                    "line, stream, property and value; skip drops it with a warning and a "
                    "METRIC count; dead_letter drops it and appends it to dead_letter_path."},
    {.name = "dead_letter_path",
     .type = SET_STRING,
     .flags = SET_NONEMPTY,
     .offset = FIELD(dead_letter_path),
     .description = "File that invalid_records dead_letter appends to: zstd-compressed JSON "
                    "lines holding the input line number, stream, reason and the original "
                    "record; required with dead_letter."},
    {.name = "connect_retries",
     .type = SET_INTEGER,
     .default_int = 5,
     .min = 0,
     .max = 1000,
     .offset = FIELD(connect_retries),
     .description = "How many more times an unreachable or lost PostgreSQL connection is tried "
                    "before the run fails (uncommitted rows are replayed after a reconnect)."},
    {.name = "connect_retry_delay_ms",
     .type = SET_INTEGER,
     .default_int = 1000,
     .min = 0,
     .max = 3600000,
     .offset = FIELD(connect_retry_delay_ms),
     .description = "Wait in milliseconds before the first connection retry; each further "
                    "retry waits twice as long, at most 60 seconds."},
    {.name = "log_level",
     .type = SET_ENUM,
     .choices = log_level_choices,
     .default_str = "info",
     .offset = FIELD(log_level),
     .description = "Least severe kind of message written to stderr."},
    {.name = "log_format",
     .type = SET_ENUM,
     .choices = log_format_choices,
     .default_str = "text",
     .offset = FIELD(log_format),
     .description = "How stderr lines are written: text (target-pg: <level>: <message>, METRIC: "
                    "{...}) or json, one JSON object per line with level, message and fields in "
                    "the Singer SDK's structured-logging form, for orchestrators."},
};

#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

static char **string_field(tgt_config *cfg, const setting *s)
{
    return (char **)(void *)((char *)cfg + s->offset);
}

static long *long_field(tgt_config *cfg, const setting *s)
{
    return (long *)(void *)((char *)cfg + s->offset);
}

static int is_string_type(setting_type type)
{
    switch (type) {
    case SET_STRING:
    case SET_SECRET:
    case SET_PORT:
    case SET_ENUM:
        return 1;
    case SET_INTEGER:
    case SET_BOOLEAN:
    case SET_MAP:
        return 0;
    }
    return 0;
}

static const setting *find_setting(const char *key)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        if (strcmp(settings[i].name, key) == 0)
            return &settings[i];
        for (const char *const *a = settings[i].aliases; *a != NULL; a++) {
            if (strcmp(*a, key) == 0)
                return &settings[i];
        }
    }
    return NULL;
}

/* ---- Error text --------------------------------------------------------- */

/* "a string", "an integer", ...: what a JSON value is, never what it holds. */
static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return json_string_length(v) == 0 ? "an empty string" : "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number with a fraction";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "an unknown JSON value";
}

/* What a setting accepts, in the words of "<label> must be <this>, got ...". */
static void describe_expected(const setting *s, char *buf, size_t cap)
{
    switch (s->type) {
    case SET_STRING:
        snprintf(buf, cap, "%s", (s->flags & SET_NONEMPTY) ? "a non-empty string" : "a string");
        return;
    case SET_SECRET:
        snprintf(buf, cap, "a string");
        return;
    case SET_INTEGER:
        if (s->max == LONG_MAX)
            snprintf(buf, cap, "an integer >= %ld", s->min);
        else
            snprintf(buf, cap, "an integer from %ld to %ld", s->min, s->max);
        return;
    case SET_BOOLEAN:
        snprintf(buf, cap, "true or false");
        return;
    case SET_PORT:
        snprintf(buf, cap, "a port number from %ld to %ld (an integer or a string of digits)",
                 s->min, s->max);
        return;
    case SET_ENUM: {
        size_t used = (size_t)snprintf(buf, cap, "one of");
        for (const char *const *c = s->choices; *c != NULL && used < cap; c++)
            used +=
                (size_t)snprintf(buf + used, cap - used, "%s %s", c == s->choices ? "" : ",", *c);
        return;
    }
    case SET_MAP:
        snprintf(buf, cap, "an object mapping source schema names to target schema names");
        return;
    }
    snprintf(buf, cap, "a valid value");
}

/* Quotes a (non-secret) value for an error message: at most 40 bytes, control
 * characters replaced so a message stays on one line. */
static void quote_value(char *buf, size_t cap, const char *text)
{
    size_t n = 0, limit = 40;
    if (cap < limit + 8)
        limit = cap > 8 ? cap - 8 : 0;
    buf[n++] = '"';
    size_t i = 0;
    for (; text[i] != '\0' && i < limit; i++)
        buf[n++] = iscntrl((unsigned char)text[i]) ? '?' : text[i];
    if (text[i] != '\0') {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n++] = '"';
    buf[n] = '\0';
}

/* "<label> must be <expected>, got <got>".  `got` must never hold a secret. */
static int bad_value(const setting *s, const char *label, const char *got, tgt_error *err)
{
    char expected[256];
    describe_expected(s, expected, sizeof(expected));
    return tgt_error_set(err, TGT_ERR_USAGE, "%s must be %s, got %s", label, expected, got);
}

/* A JSON number with a fraction or an exponent where an integer belongs:
 * 1e3 is integral but not an integer to JSON parsers, so say how to write it. */
static int bad_real(const setting *s, const char *label, const json_t *v, tgt_error *err)
{
    char got[96];
    double d = json_real_value(v);
    if (d == floor(d) && fabs(d) < 1e15)
        snprintf(got, sizeof(got), "%.0f written with an exponent or a decimal point (write %.0f)",
                 d, d);
    else
        snprintf(got, sizeof(got), "%g (a number with a fraction)", d);
    return bad_value(s, label, got, err);
}

static int bad_text(const setting *s, const char *label, const char *text, tgt_error *err)
{
    char got[64];
    if (s->type == SET_SECRET)
        return bad_value(s, label, "an unusable value", err);
    quote_value(got, sizeof(got), text);
    return bad_value(s, label, got, err);
}

/* ---- Storing validated values ------------------------------------------- */

static int replace_string(char **field, const char *value, tgt_error *err)
{
    char *copy = strdup(value);
    if (copy == NULL)
        return tgt_error_nomem(err);
    free(*field);
    *field = copy;
    return 0;
}

static int store_integer(tgt_config *cfg, const setting *s, long long value, const char *label,
                         tgt_error *err)
{
    if (value < s->min || value > s->max) {
        char got[32];
        snprintf(got, sizeof(got), "%lld", value);
        return bad_value(s, label, got, err);
    }
    if (s->type == SET_PORT) {
        char text[24];
        snprintf(text, sizeof(text), "%lld", value);
        return replace_string(string_field(cfg, s), text, err);
    }
    *long_field(cfg, s) = (long)value;
    return 0;
}

/* Whole string, base 10, optional leading '-'; no blanks, no '+', no junk. */
static int parse_integer(const char *text, long long *out)
{
    const char *digits = text[0] == '-' ? text + 1 : text;
    if (!isdigit((unsigned char)digits[0]))
        return -1;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (errno == ERANGE || end == NULL || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int store_port_text(tgt_config *cfg, const setting *s, const char *text, const char *label,
                           tgt_error *err)
{
    long long v;
    if (text[0] == '-' || parse_integer(text, &v) != 0)
        return bad_text(s, label, text, err);
    return store_integer(cfg, s, v, label, err);
}

static int store_string(tgt_config *cfg, const setting *s, const char *text, const char *label,
                        tgt_error *err)
{
    if ((s->flags & SET_NONEMPTY) && text[0] == '\0')
        return bad_value(s, label, "an empty string", err);
    if (s->type == SET_ENUM) {
        for (const char *const *c = s->choices; *c != NULL; c++) {
            if (strcasecmp(*c, text) == 0)
                return replace_string(string_field(cfg, s), *c, err);
        }
        return bad_text(s, label, text, err);
    }
    return replace_string(string_field(cfg, s), text, err);
}

/* true/false, 1/0, yes/no, on/off in any case: what people write in .env files. */
static int store_boolean_text(tgt_config *cfg, const setting *s, const char *text,
                              const char *label, tgt_error *err)
{
    static const char *const truths[] = {"true", "1", "yes", "on"};
    static const char *const lies[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < sizeof(truths) / sizeof(truths[0]); i++) {
        if (strcasecmp(text, truths[i]) == 0 || strcasecmp(text, lies[i]) == 0) {
            *long_field(cfg, s) = strcasecmp(text, truths[i]) == 0;
            return 0;
        }
    }
    return bad_text(s, label, text, err);
}

static void free_schema_mapping(tgt_schema_map_entry *entries, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(entries[i].source);
        free(entries[i].target);
    }
    free(entries);
}

/* A schema_mapping value: "target" or {"target_schema": "target", ...}. */
static const char *mapping_target(const json_t *v)
{
    if (json_is_object(v))
        v = json_object_get(v, "target_schema");
    return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

/* Replaces the whole mapping: a later source gives the complete mapping. */
static int store_map(tgt_config *cfg, const setting *s, const json_t *obj, const char *label,
                     tgt_error *err)
{
    if (!json_is_object(obj))
        return bad_value(s, label, json_kind(obj), err);
    size_t n = json_object_size(obj);
    tgt_schema_map_entry *entries = NULL;
    if (n > 0) {
        entries = calloc(n, sizeof(*entries));
        if (entries == NULL)
            return tgt_error_nomem(err);
    }
    size_t used = 0;
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)obj, key, value)
    {
        const char *target = mapping_target(value);
        if (target == NULL) {
            char source[64];
            quote_value(source, sizeof(source), key);
            tgt_error_set(err, TGT_ERR_USAGE,
                          "%s must map each source schema to a non-empty target schema name, "
                          "either \"sales\": \"raw_sales\" or \"sales\": {\"target_schema\": "
                          "\"raw_sales\"}; got %s for %s",
                          label,
                          json_is_object(value) ? "an object without a usable target_schema"
                                                : json_kind(value),
                          source);
            free_schema_mapping(entries, used);
            return -1;
        }
        entries[used].source = strdup(key);
        entries[used].target = strdup(target);
        used++;
        if (entries[used - 1].source == NULL || entries[used - 1].target == NULL) {
            free_schema_mapping(entries, used);
            return tgt_error_nomem(err);
        }
    }
    free_schema_mapping(cfg->schema_mapping, cfg->n_schema_mapping);
    cfg->schema_mapping = entries;
    cfg->n_schema_mapping = used;
    return 0;
}

/* ---- Setters: one per source shape -------------------------------------- */

/* A non-null value from a config file. */
static int set_from_json(tgt_config *cfg, const setting *s, const json_t *v, const char *label,
                         tgt_error *err)
{
    switch (s->type) {
    case SET_STRING:
    case SET_SECRET:
    case SET_ENUM:
        if (!json_is_string(v))
            return bad_value(s, label, json_kind(v), err);
        return store_string(cfg, s, json_string_value(v), label, err);
    case SET_PORT:
        if (json_is_integer(v))
            return store_integer(cfg, s, json_integer_value(v), label, err);
        if (json_is_string(v))
            return store_port_text(cfg, s, json_string_value(v), label, err);
        if (json_is_real(v))
            return bad_real(s, label, v, err);
        return bad_value(s, label, json_kind(v), err);
    case SET_INTEGER:
        if (json_is_real(v))
            return bad_real(s, label, v, err);
        if (!json_is_integer(v))
            return bad_value(s, label, json_kind(v), err);
        return store_integer(cfg, s, json_integer_value(v), label, err);
    case SET_BOOLEAN:
        if (!json_is_boolean(v))
            return bad_value(s, label, json_kind(v), err);
        *long_field(cfg, s) = json_is_true(v);
        return 0;
    case SET_MAP:
        return store_map(cfg, s, v, label, err);
    }
    return tgt_error_set(err, TGT_ERR_INTERNAL, "setting \"%s\" has no setter", s->name);
}

/* A non-empty value from an environment variable.  Strings are not passed
 * through jansson: an environment value need not be valid UTF-8. */
static int set_from_text(tgt_config *cfg, const setting *s, const char *text, const char *label,
                         tgt_error *err)
{
    switch (s->type) {
    case SET_STRING:
    case SET_SECRET:
    case SET_ENUM:
        return store_string(cfg, s, text, label, err);
    case SET_PORT:
        return store_port_text(cfg, s, text, label, err);
    case SET_INTEGER: {
        long long v;
        if (parse_integer(text, &v) != 0)
            return bad_text(s, label, text, err);
        return store_integer(cfg, s, v, label, err);
    }
    case SET_BOOLEAN:
        return store_boolean_text(cfg, s, text, label, err);
    case SET_MAP: {
        json_error_t jerr;
        json_t *obj = json_loads(text, 0, &jerr);
        if (obj == NULL)
            return tgt_error_set(err, TGT_ERR_USAGE,
                                 "%s must hold a JSON object such as {\"sales\": \"raw_sales\"}: "
                                 "column %d: %s",
                                 label, jerr.column, jerr.text);
        int rc = store_map(cfg, s, obj, label, err);
        json_decref(obj);
        return rc;
    }
    }
    return tgt_error_set(err, TGT_ERR_INTERNAL, "setting \"%s\" has no setter", s->name);
}

/* ---- Lifecycle ---------------------------------------------------------- */

void tgt_config_init(tgt_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < N_SETTINGS; i++) {
        if (settings[i].type == SET_INTEGER || settings[i].type == SET_BOOLEAN)
            *long_field(cfg, &settings[i]) = settings[i].default_int;
    }
}

void tgt_config_deinit(tgt_config *cfg)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        if (is_string_type(settings[i].type))
            free(*string_field(cfg, &settings[i]));
    }
    free_schema_mapping(cfg->schema_mapping, cfg->n_schema_mapping);
    memset(cfg, 0, sizeof(*cfg));
}

/* ---- Files -------------------------------------------------------------- */

/* True for "password = ..." (any spacing, or ?password= in a URI) and for a
 * URI with user:password@.  A false positive only costs a warning. */
static int conninfo_has_password(const char *conninfo)
{
    if (strstr(conninfo, "password") != NULL)
        return 1;
    const char *p = NULL;
    if (strncmp(conninfo, "postgresql://", 13) == 0)
        p = conninfo + 13;
    else if (strncmp(conninfo, "postgres://", 11) == 0)
        p = conninfo + 11;
    if (p == NULL)
        return 0;
    size_t authority = strcspn(p, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < authority; i++) {
        if (p[i] == '@')
            at = p + i;
    }
    return at != NULL && memchr(p, ':', (size_t)(at - p)) != NULL;
}

static int file_has_password(const json_t *root)
{
    const json_t *pw = json_object_get(root, "password");
    if (json_is_string(pw) && json_string_length(pw) > 0)
        return 1;
    const json_t *ci = json_object_get(root, "conninfo");
    if (json_is_string(ci) && conninfo_has_password(json_string_value(ci)))
        return 1;
    /* an ODBC connection string names it PWD= (any case) */
    const json_t *oc = json_object_get(root, "odbc_connection_string");
    if (!json_is_string(oc))
        return 0;
    for (const char *p = json_string_value(oc); *p != '\0'; p++)
        if (strncasecmp(p, "pwd", 3) == 0)
            return 1;
    return 0;
}

/* A file Meltano writes for one run (<project>/.meltano/run/<plugin>/...,
 * mode 0644, removed afterwards): its mode is Meltano's choice, not the
 * user's, so a warning about it could not be acted on.  Known by its place,
 * not by MELTANO_* variables, so a file of one's own used inside `meltano
 * invoke` or a Meltano shell still gets the warning. */
static int written_for_one_run(const char *path)
{
    static const char dir[] = ".meltano/run/";
    const char *at = strstr(path, dir);
    while (at != NULL && at != path && at[-1] != '/')
        at = strstr(at + 1, dir);
    return at != NULL;
}

/* jansson's message may end in " near '<input>'", which can quote part of a
 * secret; the line and column already say where the problem is. */
static void strip_near(char *text)
{
    char *near = strstr(text, " near '");
    if (near != NULL)
        *near = '\0';
}

/* The value of setting s in obj: under its name, else under an alias.  Null
 * counts as absent.  *key_out is the key the value was found under. */
static const json_t *lookup_json(const json_t *obj, const setting *s, const char *path,
                                 const char **key_out)
{
    const json_t *v = json_object_get(obj, s->name);
    const json_t *found = json_is_null(v) ? NULL : v;
    *key_out = s->name;
    for (const char *const *a = s->aliases; *a != NULL; a++) {
        const json_t *av = json_object_get(obj, *a);
        if (av == NULL || json_is_null(av))
            continue;
        if (found != NULL) {
            tgt_log(TGT_LOG_WARN, "config file %s sets both \"%s\" and \"%s\"; using \"%s\"", path,
                    *key_out, *a, *key_out);
            continue;
        }
        found = av;
        *key_out = *a;
    }
    return found;
}

int tgt_config_load_file(tgt_config *cfg, const char *path, tgt_error *err)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return tgt_error_set(err, TGT_ERR_USAGE, "cannot open config file %s: %s", path,
                             strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0) {
        int e = errno;
        fclose(fp);
        return tgt_error_set(err, TGT_ERR_USAGE, "cannot read config file %s: %s", path,
                             strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        fclose(fp);
        return tgt_error_set(err, TGT_ERR_USAGE, "config file %s is a directory", path);
    }
    json_error_t jerr;
    json_t *root = json_loadf(fp, 0, &jerr);
    fclose(fp);
    if (root == NULL) {
        strip_near(jerr.text);
        return tgt_error_set(err, TGT_ERR_USAGE,
                             "config file %s is not valid JSON: line %d, column %d: %s", path,
                             jerr.line, jerr.column, jerr.text);
    }
    if (!json_is_object(root)) {
        tgt_error_set(err, TGT_ERR_USAGE, "config file %s must hold a JSON object, got %s", path,
                      json_kind(root));
        json_decref(root);
        return -1;
    }

    const char *key;
    json_t *value;
    json_object_foreach(root, key, value)
    {
        if (find_setting(key) == NULL)
            tgt_log(TGT_LOG_WARN, "config file %s: unknown setting \"%s\" ignored", path, key);
    }

    int rc = 0;
    for (size_t i = 0; i < N_SETTINGS && rc == 0; i++) {
        const setting *s = &settings[i];
        const char *used_key;
        const json_t *v = lookup_json(root, s, path, &used_key);
        if (v == NULL)
            continue;
        char label[96];
        snprintf(label, sizeof(label), "setting \"%s\"", used_key);
        rc = set_from_json(cfg, s, v, label, err);
        if (rc != 0)
            tgt_error_where(err, "config file %s", path);
    }

    if (rc == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) != 0 && file_has_password(root) &&
        !written_for_one_run(path))
        tgt_log(TGT_LOG_WARN,
                "config file %s holds a password but can be read by group or others (mode %03o); "
                "restrict it with: chmod 600 %s",
                path, (unsigned)(st.st_mode & 0777), path);
    json_decref(root);
    return rc;
}

/* ---- Environment -------------------------------------------------------- */

/* TARGET_PG_<NAME upper-cased>; names are short ASCII identifiers. */
static void env_name(char *buf, size_t cap, const char *name)
{
    size_t n = (size_t)snprintf(buf, cap, "%s", ENV_PREFIX);
    for (; *name != '\0' && n + 1 < cap; name++)
        buf[n++] = (char)toupper((unsigned char)*name);
    buf[n] = '\0';
}

/* Non-empty value of a variable, else NULL (empty means "not set"). */
static const char *env_value(const char *var)
{
    const char *v = getenv(var);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

int tgt_config_load_env(tgt_config *cfg, tgt_error *err)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting *s = &settings[i];
        char var[96], used_var[96];
        env_name(var, sizeof(var), s->name);
        const char *found = env_value(var);
        if (found != NULL)
            memcpy(used_var, var, sizeof(var));
        for (const char *const *a = s->aliases; *a != NULL; a++) {
            char alias_var[96];
            env_name(alias_var, sizeof(alias_var), *a);
            const char *v = env_value(alias_var);
            if (v == NULL)
                continue;
            if (found != NULL) {
                tgt_log(TGT_LOG_WARN, "both %s and %s are set; using %s", used_var, alias_var,
                        used_var);
                continue;
            }
            found = v;
            memcpy(used_var, alias_var, sizeof(alias_var));
        }
        if (found == NULL)
            continue;
        char label[128];
        snprintf(label, sizeof(label), "environment variable %s", used_var);
        if (set_from_text(cfg, s, found, label, err) != 0)
            return -1;
    }
    return 0;
}

/* ---- Defaults and lookups ----------------------------------------------- */

/* Index of `value` in a NULL-terminated choices list, or -1. */
static int choice_index(const char *const *choices, const char *value)
{
    for (int i = 0; value != NULL && choices[i] != NULL; i++)
        if (strcmp(choices[i], value) == 0)
            return i;
    return -1;
}

/* The enum fields, from strings already checked against their choices
 * (whose order is the enums' order). */
static int parse_modes(tgt_config *cfg, tgt_error *err)
{
    int type_change = choice_index(type_change_choices, cfg->type_change);
    int load_method = choice_index(load_method_choices, cfg->load_method);
    int invalid = choice_index(invalid_records_choices, cfg->invalid_records);
    if (type_change < 0 || load_method < 0 || invalid < 0)
        return tgt_error_set(err, TGT_ERR_INTERNAL, "settings were not checked before use");
    cfg->type_change_mode = (tgt_type_change_mode)type_change;
    cfg->load_method_mode = (tgt_load_method_mode)load_method;
    cfg->invalid_records_mode = (tgt_invalid_records_mode)invalid;
    return 0;
}

/* A SET_ENUM string a caller set directly must still be one of the choices. */
static int check_choice(const setting *s, tgt_config *cfg, tgt_error *err)
{
    const char *v = *string_field(cfg, s);
    if (v == NULL || choice_index(s->choices, v) >= 0)
        return 0;
    char label[96];
    snprintf(label, sizeof(label), "setting \"%s\"", s->name);
    return bad_value(s, label, v, err);
}

int tgt_config_finish(tgt_config *cfg, tgt_error *err)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting *s = &settings[i];
        if (s->type == SET_INTEGER) {
            /* Values from files and the environment are checked on the way in;
             * this catches a field a caller set directly. */
            long v = *long_field(cfg, s);
            if (v < s->min || v > s->max) {
                char got[32];
                snprintf(got, sizeof(got), "%ld", v);
                char label[96];
                snprintf(label, sizeof(label), "setting \"%s\"", s->name);
                return bad_value(s, label, got, err);
            }
            continue;
        }
        if (!is_string_type(s->type) || *string_field(cfg, s) != NULL)
            continue;
        const char *def = s->default_env != NULL ? env_value(s->default_env) : NULL;
        if (def == NULL)
            def = s->default_str;
        if (def != NULL && replace_string(string_field(cfg, s), def, err) != 0)
            return -1;
    }
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (settings[i].type == SET_ENUM && check_choice(&settings[i], cfg, err) != 0)
            return -1;
    if (parse_modes(cfg, err) != 0)
        return -1;
    if (cfg->invalid_records_mode == TGT_INVALID_DEAD_LETTER && cfg->dead_letter_path == NULL)
        return tgt_error_set(err, TGT_ERR_USAGE,
                             "setting \"invalid_records\" is dead_letter but "
                             "\"dead_letter_path\" is not set");
    return 0;
}

const char *tgt_config_target_schema(const tgt_config *cfg, const char *source, size_t source_len)
{
    if (source != NULL) {
        for (size_t i = 0; i < cfg->n_schema_mapping; i++) {
            const tgt_schema_map_entry *e = &cfg->schema_mapping[i];
            if (strlen(e->source) == source_len && memcmp(e->source, source, source_len) == 0)
                return e->target;
        }
    }
    return cfg->default_target_schema;
}

/* ---- --about ------------------------------------------------------------ */

/* The description plus a sentence naming the aliases, if any. */
static void full_description(tgt_sbuf *sb, const setting *s)
{
    tgt_sbuf_append_str(sb, s->description);
    for (const char *const *a = s->aliases; *a != NULL; a++)
        tgt_sbuf_printf(sb, "%s`%s`", a == s->aliases ? " Also accepted as " : ", ", *a);
    if (s->aliases[0] != NULL)
        tgt_sbuf_append_char(sb, '.');
}

static const char *json_type_name(setting_type type)
{
    switch (type) {
    case SET_STRING:
    case SET_SECRET:
    case SET_ENUM:
        return "string";
    case SET_INTEGER:
    case SET_PORT:
        return "integer";
    case SET_BOOLEAN:
        return "boolean";
    case SET_MAP:
        return "object";
    }
    return "string";
}

/* json_object_set_new / json_array_append_new return -1 on a NULL value or a
 * failed insert (and release the value), so OR-ing their results checks
 * every allocation once. */
static json_t *about_property(const setting *s)
{
    json_t *p = json_object();
    if (p == NULL)
        return NULL;
    int bad = 0;
    bad |= json_object_set_new(p, "type", json_string(json_type_name(s->type)));
    tgt_sbuf desc;
    tgt_sbuf_init(&desc);
    full_description(&desc, s);
    bad |= !tgt_sbuf_ok(&desc);
    bad |= json_object_set_new(p, "description", json_string(tgt_sbuf_str(&desc)));
    tgt_sbuf_deinit(&desc);
    switch (s->type) {
    case SET_INTEGER:
        bad |= json_object_set_new(p, "default", json_integer(s->default_int));
        bad |= json_object_set_new(p, "minimum", json_integer(s->min));
        break;
    case SET_BOOLEAN:
        bad |= json_object_set_new(p, "default", json_boolean(s->default_int));
        break;
    case SET_PORT:
        bad |= json_object_set_new(p, "minimum", json_integer(s->min));
        bad |= json_object_set_new(p, "maximum", json_integer(s->max));
        break;
    case SET_ENUM: {
        json_t *choices = json_array();
        for (const char *const *c = s->choices; choices != NULL && *c != NULL; c++)
            bad |= json_array_append_new(choices, json_string(*c));
        bad |= json_object_set_new(p, "enum", choices);
        break;
    }
    case SET_MAP: {
        json_t *values = json_object();
        if (values != NULL)
            bad |= json_object_set_new(values, "type", json_string("string"));
        bad |= json_object_set_new(p, "additionalProperties", values);
        break;
    }
    case SET_SECRET:
        /* the SDK's two spellings: Meltano reads "secret", JSON Schema tools "writeOnly" */
        bad |= json_object_set_new(p, "secret", json_true());
        bad |= json_object_set_new(p, "writeOnly", json_true());
        break;
    case SET_STRING:
        break;
    }
    /* a default taken from the environment is not stated: Meltano's definition
     * tooling would copy it into the plugin, and a configured value always wins
     * over $MELTANO_EXTRACT__LOAD_SCHEMA */
    if (s->default_str != NULL && s->default_env == NULL)
        bad |= json_object_set_new(p, "default", json_string(s->default_str));
    if (bad) {
        json_decref(p);
        return NULL;
    }
    return p;
}

static int write_about_json(tgt_sbuf *out)
{
    json_t *root = json_object();
    json_t *caps = json_array();
    json_t *schema = json_object();
    json_t *props = json_object();
    int bad = root == NULL;
    bad |= json_object_set_new(root, "name", json_string(TGT_NAME));
    bad |= json_object_set_new(root, "description", json_string(ABOUT_DESCRIPTION));
    bad |= json_object_set_new(root, "version", json_string(TGT_VERSION));
    for (const char *const *c = capabilities; *c != NULL; c++)
        bad |= json_array_append_new(caps, json_string(*c));
    bad |= json_object_set_new(root, "capabilities", caps);
    for (size_t i = 0; i < N_SETTINGS; i++)
        bad |= json_object_set_new(props, settings[i].name, about_property(&settings[i]));
    bad |= json_object_set_new(schema, "type", json_string("object"));
    bad |= json_object_set_new(schema, "properties", props);
    bad |= json_object_set_new(schema, "required", json_array());
    bad |= json_object_set_new(root, "settings", schema);
    char *text = bad ? NULL : json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (text == NULL)
        return -1;
    tgt_sbuf_append_str(out, text);
    tgt_sbuf_append_char(out, '\n');
    free(text);
    return tgt_sbuf_ok(out) ? 0 : -1;
}

/* Table cells: a '|' would end the cell, a newline the row. */
static void append_cell(tgt_sbuf *out, const char *text)
{
    for (; *text != '\0'; text++) {
        if (*text == '|')
            tgt_sbuf_append_str(out, "\\|");
        else if (*text == '\n')
            tgt_sbuf_append_char(out, ' ');
        else
            tgt_sbuf_append_char(out, *text);
    }
}

static void markdown_type(tgt_sbuf *out, const setting *s)
{
    switch (s->type) {
    case SET_STRING:
        tgt_sbuf_append_str(out, "string");
        return;
    case SET_SECRET:
        tgt_sbuf_append_str(out, "string (secret)");
        return;
    case SET_INTEGER:
        tgt_sbuf_printf(out, "integer >= %ld", s->min);
        return;
    case SET_BOOLEAN:
        tgt_sbuf_append_str(out, "boolean");
        return;
    case SET_PORT:
        tgt_sbuf_printf(out, "integer %ld-%ld", s->min, s->max);
        return;
    case SET_ENUM:
        tgt_sbuf_append_str(out, "one of ");
        for (const char *const *c = s->choices; *c != NULL; c++)
            tgt_sbuf_printf(out, "%s`%s`", c == s->choices ? "" : ", ", *c);
        return;
    case SET_MAP:
        tgt_sbuf_append_str(out, "object");
        return;
    }
}

static void markdown_default(tgt_sbuf *out, const setting *s)
{
    if (s->type == SET_INTEGER) {
        tgt_sbuf_printf(out, "`%ld`", s->default_int);
        return;
    }
    if (s->type == SET_BOOLEAN) {
        tgt_sbuf_append_str(out, s->default_int ? "`true`" : "`false`");
        return;
    }
    if (s->default_env != NULL)
        tgt_sbuf_printf(out, "`$%s`, else ", s->default_env);
    if (s->default_str != NULL)
        tgt_sbuf_printf(out, "`%s`", s->default_str);
    else if (s->flags & SET_LIBPQ)
        tgt_sbuf_append_str(out, "libpq");
}

static int write_about_markdown(tgt_sbuf *out)
{
    tgt_sbuf_printf(out, "# %s\n\n%s\n\nVersion: %s\n\n", TGT_NAME, ABOUT_DESCRIPTION, TGT_VERSION);
    tgt_sbuf_append_str(out, "## Capabilities\n\n");
    for (const char *const *c = capabilities; *c != NULL; c++)
        tgt_sbuf_printf(out, "- `%s`\n", *c);
    tgt_sbuf_append_char(out, '\n');
    tgt_sbuf_append_str(out, "## Settings\n\n"
                             "Give settings in JSON files (`--config FILE`, later files override "
                             "earlier keys) or as `" ENV_PREFIX "<SETTING>` environment variables "
                             "(`--config ENV`).\n\n"
                             "| Setting | Type | Default | Description |\n"
                             "|---|---|---|---|\n");
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting *s = &settings[i];
        tgt_sbuf_printf(out, "| `%s` | ", s->name);
        markdown_type(out, s);
        tgt_sbuf_append_str(out, " | ");
        markdown_default(out, s);
        tgt_sbuf_append_str(out, " | ");
        tgt_sbuf desc;
        tgt_sbuf_init(&desc);
        full_description(&desc, s);
        if (!tgt_sbuf_ok(&desc)) {
            tgt_sbuf_deinit(&desc);
            return -1;
        }
        append_cell(out, tgt_sbuf_str(&desc));
        tgt_sbuf_deinit(&desc);
        tgt_sbuf_append_str(out, " |\n");
    }
    return tgt_sbuf_ok(out) ? 0 : -1;
}

int tgt_config_write_about(tgt_sbuf *out, int markdown)
{
    return markdown ? write_about_markdown(out) : write_about_json(out);
}

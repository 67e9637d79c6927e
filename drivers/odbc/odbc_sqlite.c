/*
 * odbc_sqlite.c - the SQLite dialect (libsqliteodbc): the embedded
 * warehouse a user can load into with no server at all.
 *
 * Schemas: SQLite's schemas are attached database files, so a target schema
 * is a table-name prefix instead: stream "orders" of schema "public" is the
 * table "public.orders" (one quoted identifier; normalised names never hold
 * a dot).  One file then holds everything, a transaction over several
 * schemas commits atomically in any journal mode, and there is no limit of
 * ten attachments nor an ATTACH that cannot run inside a transaction.
 *
 * Types (README "SQLite"): SQLite stores by a column's affinity, derived
 * from the declared type's spelling, so the spellings are chosen for the
 * affinity that keeps values exact: numeric is "NUMERIC TEXT" (TEXT
 * affinity: the digits as written, 1.50 stays 1.50, 1e400 stays), json
 * "JSON TEXT" and jsonb "JSONB TEXT" (a bare JSON spelling would have
 * NUMERIC affinity and turn the document 1.50 into 1.5).  Dates, times and
 * timestamps are ISO text in UTC (YYYY-MM-DD HH:MM:SS[.f]), which sorts in
 * time order.  Each spelling reads back as the lattice type it came from.
 *
 * Changing a column's type: SQLite has no ALTER COLUMN TYPE, so the table
 * is rebuilt under one write lock: a new table with the same columns in the
 * same order (the widened ones with their new types), the same NOT NULLs
 * and primary key, every row copied, the old table dropped and the new one
 * renamed.  Any number of columns are widened by one rebuild; moving the
 * primary key is the same rebuild with another key.
 *
 * Locking: SQLite has one writer at a time.  begin() is BEGIN IMMEDIATE,
 * which takes the write lock before anything is read, so two loaders never
 * both read and then both wait to write (a deadlock SQLite can only end
 * with SQLITE_BUSY); a loader waits for the other's COMMIT (busy_timeout)
 * instead.  lock_for_merge therefore has nothing left to take.
 *
 * Staging: a TEMP table per target table, kept across transactions (TEMP
 * tables survive COMMIT), emptied by each merge; a rollback forgets them,
 * since one created inside the rolled-back transaction is gone.
 */
#include "odbc_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "log.h"

#define SQLITE_TYPE_MAX 64
#define RANK_COLUMN "target-pg rank"
#define REBUILD_PREFIX "target-pg rebuild "

static const tgt_driver_caps sqlite_caps = {
    /* no limit of its own (names are stored as given) */
    .ident_max = 0,
    /* SQLITE_MAX_COLUMN, the default build's limit */
    .max_columns = 2000,
    /* rows have no page-size limit: columns are cheap */
    .column_budget = 1000,
    /* the JSON functions (json_valid) refuse nesting past 1000 levels */
    .json_max_depth = 1000,
    .transactional_ddl = 1,
    /* no column comments: properties map to columns by name */
    .column_comments = 0,
};

static int sqlite_matches(const char *dbms_name)
{
    return strncasecmp(dbms_name, "SQLite", 6) == 0;
}

/* ---- names ----------------------------------------------------------------- */

/* The table's name in the file: "<schema>.<name>" (unquoted). */
static void table_name(tgt_sbuf *sb, const char *schema, const char *name)
{
    tgt_sbuf_append_str(sb, schema);
    tgt_sbuf_append_char(sb, '.');
    tgt_sbuf_append_str(sb, name);
}

static void sqlite_qualified(odbc_driver *d, tgt_sbuf *sb, const char *schema, const char *name)
{
    tgt_sbuf plain;
    tgt_sbuf_init(&plain);
    table_name(&plain, schema, name);
    if (!tgt_sbuf_ok(&plain))
        sb->broken = 1;
    else
        odbc_sql_ident(d, sb, tgt_sbuf_str(&plain));
    tgt_sbuf_deinit(&plain);
}

/* A name prefixed by `prefix` (a rebuild's or a stage's), quoted. */
static void prefixed(odbc_driver *d, tgt_sbuf *sb, const char *prefix, const char *schema,
                     const char *name)
{
    tgt_sbuf plain;
    tgt_sbuf_init(&plain);
    tgt_sbuf_append_str(&plain, prefix);
    table_name(&plain, schema, name);
    if (!tgt_sbuf_ok(&plain))
        sb->broken = 1;
    else
        odbc_sql_ident(d, sb, tgt_sbuf_str(&plain));
    tgt_sbuf_deinit(&plain);
}

/* ---- types ----------------------------------------------------------------- */

static const struct {
    const char *sql;
    tgt_type_kind kind;
} spellings[] = {
    {"BOOLEAN", TGT_T_BOOLEAN},
    {"SMALLINT", TGT_T_SMALLINT},
    {"INTEGER", TGT_T_INTEGER},
    {"BIGINT", TGT_T_BIGINT},
    {"NUMERIC TEXT", TGT_T_NUMERIC},
    {"REAL", TGT_T_REAL},
    {"DOUBLE", TGT_T_DOUBLE},
    {"DATE", TGT_T_DATE},
    {"TIMESTAMP", TGT_T_TIMESTAMP},
    {"TIMESTAMPTZ", TGT_T_TIMESTAMPTZ},
    {"TIME", TGT_T_TIME},
    {"VARCHAR", TGT_T_VARCHAR},
    {"JSON TEXT", TGT_T_JSON},
    {"JSONB TEXT", TGT_T_JSONB},
    {"TEXT", TGT_T_TEXT},
};

#define N_SPELLINGS (sizeof spellings / sizeof spellings[0])

static const char *sqlite_type_sql(tgt_coltype t, char *buf, size_t cap)
{
    int p, s;
    if (t.kind == TGT_T_VARCHAR && t.length >= 0) {
        snprintf(buf, cap, "VARCHAR(%d)", t.length);
        return buf;
    }
    if (tgt_type_numeric_ps(t, &p, &s)) {
        snprintf(buf, cap, "NUMERIC TEXT(%d,%d)", p, s);
        return buf;
    }
    const char *sql = "TEXT"; /* a column outside the lattice is loaded as text */
    for (size_t i = 0; i < N_SPELLINGS; i++)
        if (spellings[i].kind == t.kind)
            sql = spellings[i].sql;
    snprintf(buf, cap, "%s", sql);
    return buf;
}

static tgt_coltype sqlite_type_from_sql(const char *spelling)
{
    for (size_t i = 0; i < N_SPELLINGS; i++)
        if (strcasecmp(spelling, spellings[i].sql) == 0)
            return tgt_type_make(spellings[i].kind);
    int n = 0, s = 0, end = 0;
    if (sscanf(spelling, "VARCHAR(%d)%n", &n, &end) == 1 && spelling[end] == '\0' && n > 0) {
        tgt_coltype t = {TGT_T_VARCHAR, n};
        return t;
    }
    if (sscanf(spelling, "NUMERIC TEXT(%d,%d)%n", &n, &s, &end) == 2 && spelling[end] == '\0' &&
        n >= 1 && n <= 1000 && s >= -1000 && s <= 1000)
        return tgt_type_numeric(n, s);
    return tgt_type_make(TGT_T_OTHER);
}

static int sqlite_bind_type(tgt_coltype t)
{
    (void)t; /* text in; the column's affinity stores it */
    return SQL_VARCHAR;
}

/* The SQLSTATE of an SQLite result code (its primary code, the low byte),
 * or NULL; libsqliteodbc reports every failure as HY000 with the code in
 * the message ("... (19)") and as the native error. */
static const char *sqlstate_of(long native, const char *message)
{
    long primary = native & 0xFF;
    if (primary == 19 || strstr(message, "constraint failed") != NULL)
        return "23000"; /* SQLITE_CONSTRAINT: NOT NULL, UNIQUE, CHECK, key */
    if (primary == 20 || strstr(message, "datatype mismatch") != NULL)
        return "22000"; /* SQLITE_MISMATCH */
    if (primary == 18 || strstr(message, "too big") != NULL)
        return "54000"; /* SQLITE_TOOBIG */
    return NULL;
}

static void sqlite_classify(odbc_driver *d, const char *sqlstate, long native, const char *message,
                            tgt_error *err)
{
    (void)d;
    /* SQLITE_BUSY / SQLITE_LOCKED: another writer held the file past
     * busy_timeout; the transaction was rolled back and may be run again */
    long primary = native & 0xFF;
    if (primary == 5 || primary == 6 || strstr(message, "database is locked") != NULL)
        err->conflict = 1;
    /* a refused value gets the standard class the core reads (22, 23, 54) */
    const char *standard = sqlstate_of(native, message);
    if (standard != NULL && strcmp(sqlstate, "HY000") == 0)
        snprintf(err->sqlstate, sizeof err->sqlstate, "%s", standard);
}

/* ---- describe --------------------------------------------------------------- */

typedef struct key_pos {
    long pos;
    size_t col;
} key_pos;

static int sqlite_describe_table(odbc_driver *d, const char *schema, const char *table,
                                 tgt_live_table *out, tgt_error *err)
{
    tgt_live_table_init(out);
    tgt_sbuf name;
    tgt_sbuf_init(&name);
    table_name(&name, schema, table);
    if (odbc_sql_check(&name, err) < 0)
        return -1;
    const char *params[1] = {tgt_sbuf_str(&name)};
    odbc_result r;
    int rc = odbc_query(d, "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?)", params,
                        1, &r, err, "while reading the definition of \"%s\".\"%s\"", schema, table);
    tgt_sbuf_deinit(&name);
    if (rc < 0 || r.n_rows == 0) {
        odbc_result_free(&r);
        return rc;
    }
    out->exists = 1;
    key_pos *keys = calloc(r.n_rows, sizeof(*keys));
    out->columns = calloc(r.n_rows, sizeof(*out->columns));
    if (keys == NULL || out->columns == NULL) {
        free(keys);
        odbc_result_free(&r);
        tgt_live_table_deinit(out);
        return tgt_error_nomem(err);
    }
    size_t n_keys = 0;
    for (size_t i = 0; i < r.n_rows; i++) {
        tgt_live_column *c = &out->columns[out->n_columns++];
        const char *type = odbc_result_get(&r, i, 1);
        snprintf(c->name, sizeof c->name, "%s", odbc_result_get(&r, i, 0));
        snprintf(c->sql_type, sizeof c->sql_type, "%s", type != NULL ? type : "");
        c->type = sqlite_type_from_sql(c->sql_type);
        const char *nn = odbc_result_get(&r, i, 2), *pk = odbc_result_get(&r, i, 3);
        c->not_null = nn != NULL && strcmp(nn, "0") != 0;
        long pos = pk != NULL ? strtol(pk, NULL, 10) : 0;
        if (pos > 0) {
            size_t at = n_keys++;
            while (at > 0 && keys[at - 1].pos > pos) {
                keys[at] = keys[at - 1];
                at--;
            }
            keys[at].pos = pos;
            keys[at].col = i;
        }
    }
    odbc_result_free(&r);
    if (n_keys > 0) {
        out->key = calloc(n_keys, sizeof(*out->key));
        if (out->key == NULL) {
            free(keys);
            tgt_live_table_deinit(out);
            return tgt_error_nomem(err);
        }
        for (size_t k = 0; k < n_keys; k++)
            memcpy(out->key[k], out->columns[keys[k].col].name, sizeof(out->key[k]));
        out->n_keys = n_keys;
    }
    free(keys);
    return 0;
}

/* ---- DDL --------------------------------------------------------------------- */

static int sqlite_ensure_schema(odbc_driver *d, const char *schema, tgt_error *err)
{
    (void)d;
    (void)schema;
    (void)err;
    return 0; /* a prefix needs nothing made */
}

static int sqlite_create_table(odbc_driver *d, const tgt_table *t, tgt_error *err)
{
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    odbc_sql_create_table(d, sb, t, odbc_sql_column_def);
    if (odbc_sql_check(sb, err) < 0)
        return -1;
    tgt_log(TGT_LOG_INFO, "creating table \"%s.%s\" with %zu columns", t->schema, t->name,
            t->n_columns);
    tgt_error local;
    tgt_error_init(&local);
    if (odbc_exec(d, tgt_sbuf_str(sb), NULL, &local, "while creating table \"%s.%s\"", t->schema,
                  t->name) == 0)
        return 0;
    /* another loader made it since describe_table: bring it to our shape */
    if (strstr(local.message, "already exists") != NULL) {
        tgt_log(TGT_LOG_INFO, "table \"%s.%s\" was created concurrently", t->schema, t->name);
        return odbc_conform_table(d, t, err);
    }
    return odbc_error_forward(err, &local);
}

static int sqlite_alter_column_types(odbc_driver *d, const tgt_table *t, const size_t *cols,
                                     size_t n, tgt_error *err);

static int sqlite_add_column(odbc_driver *d, const tgt_table *t, size_t col, tgt_error *err)
{
    const tgt_column *c = &t->columns[col];
    tgt_sbuf *sb = &d->sql;
    char type[SQLITE_TYPE_MAX];
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "ALTER TABLE ");
    odbc_sql_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_str(sb, " ADD COLUMN ");
    odbc_sql_ident(d, sb, c->name);
    tgt_sbuf_append_char(sb, ' ');
    tgt_sbuf_append_str(sb, sqlite_type_sql(c->type, type, sizeof type));
    if (odbc_sql_check(sb, err) < 0)
        return -1;
    tgt_log(TGT_LOG_INFO, "adding column \"%s\" %s to \"%s.%s\"", c->name, type, t->schema,
            t->name);
    tgt_error local;
    tgt_error_init(&local);
    if (odbc_exec(d, tgt_sbuf_str(sb), NULL, &local, "while adding column \"%s\" to \"%s.%s\"",
                  c->name, t->schema, t->name) == 0)
        return 0;
    if (strstr(local.message, "duplicate column") == NULL)
        return odbc_error_forward(err, &local);
    tgt_log(TGT_LOG_INFO, "column \"%s\" of \"%s.%s\" was added concurrently", c->name, t->schema,
            t->name);
    return sqlite_alter_column_types(d, t, &col, 1, err);
}

/* ---- the rebuild ------------------------------------------------------------- */

/* What one rebuilt column becomes. */
typedef struct rebuilt_column {
    char type[SQLITE_TYPE_MAX + 64]; /* its declared type (the live one unless widened) */
    int widened_from_date;           /* a date made a timestamp: add the midnight */
} rebuilt_column;

/* CREATE TABLE <tmp> (...), INSERT INTO <tmp> SELECT ..., DROP, RENAME:
 * live's columns in order with the types in `cols`, key `key` (names). */
static int rebuild(odbc_driver *d, const char *schema, const char *table,
                   const tgt_live_table *live, const rebuilt_column *cols,
                   char (*key)[TGT_IDENT_MAX + 1], size_t n_keys, tgt_error *err)
{
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "CREATE TABLE ");
    prefixed(d, sb, REBUILD_PREFIX, schema, table);
    tgt_sbuf_append_str(sb, " (");
    for (size_t i = 0; i < live->n_columns; i++) {
        const tgt_live_column *c = &live->columns[i];
        int is_key = 0;
        for (size_t k = 0; k < n_keys; k++)
            is_key |= strcmp(key[k], c->name) == 0;
        if (i > 0)
            tgt_sbuf_append_str(sb, ", ");
        odbc_sql_ident(d, sb, c->name);
        if (cols[i].type[0] != '\0')
            tgt_sbuf_printf(sb, " %s", cols[i].type);
        if (c->not_null || is_key)
            tgt_sbuf_append_str(sb, " NOT NULL");
    }
    if (n_keys > 0) {
        tgt_sbuf_append_str(sb, ", PRIMARY KEY (");
        for (size_t k = 0; k < n_keys; k++) {
            if (k > 0)
                tgt_sbuf_append_str(sb, ", ");
            odbc_sql_ident(d, sb, key[k]);
        }
        tgt_sbuf_append_char(sb, ')');
    }
    tgt_sbuf_append_char(sb, ')');
    if (odbc_sql_check(sb, err) < 0 ||
        odbc_exec(d, tgt_sbuf_str(sb), NULL, err, "while rebuilding \"%s.%s\"", schema, table) < 0)
        return -1;

    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "INSERT INTO ");
    prefixed(d, sb, REBUILD_PREFIX, schema, table);
    tgt_sbuf_append_str(sb, " SELECT ");
    for (size_t i = 0; i < live->n_columns; i++) {
        if (i > 0)
            tgt_sbuf_append_str(sb, ", ");
        if (cols[i].widened_from_date) {
            /* the canonical timestamp form of a date: its midnight */
            tgt_sbuf_append_str(sb, "CASE WHEN length(");
            odbc_sql_ident(d, sb, live->columns[i].name);
            tgt_sbuf_append_str(sb, ") = 10 THEN ");
            odbc_sql_ident(d, sb, live->columns[i].name);
            tgt_sbuf_append_str(sb, " || ' 00:00:00' ELSE ");
            odbc_sql_ident(d, sb, live->columns[i].name);
            tgt_sbuf_append_str(sb, " END");
        } else {
            odbc_sql_ident(d, sb, live->columns[i].name);
        }
    }
    tgt_sbuf_append_str(sb, " FROM ");
    odbc_sql_qualified(d, sb, schema, table);
    if (odbc_sql_check(sb, err) < 0 ||
        odbc_exec(d, tgt_sbuf_str(sb), NULL, err, "while copying the rows of \"%s.%s\"", schema,
                  table) < 0)
        return -1;

    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "DROP TABLE ");
    odbc_sql_qualified(d, sb, schema, table);
    if (odbc_sql_check(sb, err) < 0 ||
        odbc_exec(d, tgt_sbuf_str(sb), NULL, err, "while replacing \"%s.%s\"", schema, table) < 0)
        return -1;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "ALTER TABLE ");
    prefixed(d, sb, REBUILD_PREFIX, schema, table);
    tgt_sbuf_append_str(sb, " RENAME TO ");
    odbc_sql_qualified(d, sb, schema, table);
    if (odbc_sql_check(sb, err) < 0 ||
        odbc_exec(d, tgt_sbuf_str(sb), NULL, err, "while replacing \"%s.%s\"", schema, table) < 0)
        return -1;
    return 0;
}

/* Runs fn inside BEGIN IMMEDIATE ... COMMIT (rolled back on failure). */
static int locked(odbc_driver *d, int (*fn)(odbc_driver *, const void *, tgt_error *),
                  const void *arg, tgt_error *err)
{
    if (odbc_exec(d, "BEGIN IMMEDIATE", NULL, err, "while locking for a table change") < 0)
        return -1;
    if (fn(d, arg, err) < 0 ||
        odbc_exec(d, "COMMIT", NULL, err, "while committing a table change") < 0) {
        tgt_error ignored;
        tgt_error_init(&ignored);
        odbc_exec(d, "ROLLBACK", NULL, &ignored, "while rolling back a table change");
        return -1;
    }
    return 0;
}

typedef struct widen_args {
    const tgt_table *t;
    const size_t *cols;
    size_t n;
} widen_args;

static int widen_locked(odbc_driver *d, const void *arg, tgt_error *err)
{
    const widen_args *a = arg;
    const tgt_table *t = a->t;
    tgt_live_table live;
    if (sqlite_describe_table(d, t->schema, t->name, &live, err) < 0)
        return -1;
    rebuilt_column *cols = live.n_columns > 0 ? calloc(live.n_columns, sizeof(*cols)) : NULL;
    if (live.n_columns > 0 && cols == NULL) {
        tgt_live_table_deinit(&live);
        return tgt_error_nomem(err);
    }
    size_t changed = 0;
    for (size_t i = 0; i < live.n_columns; i++)
        snprintf(cols[i].type, sizeof cols[i].type, "%s", live.columns[i].sql_type);
    /* re-read under the lock: another loader may have widened already */
    for (size_t j = 0; j < a->n; j++) {
        const tgt_column *c = &t->columns[a->cols[j]];
        for (size_t i = 0; i < live.n_columns; i++) {
            if (strcmp(live.columns[i].name, c->name) != 0)
                continue;
            tgt_type_order order = tgt_type_compare(live.columns[i].type, c->type);
            if (order == TGT_ORDER_EQUAL || order == TGT_ORDER_HIGHER)
                break;
            sqlite_type_sql(c->type, cols[i].type, sizeof cols[i].type);
            cols[i].widened_from_date =
                live.columns[i].type.kind == TGT_T_DATE &&
                (c->type.kind == TGT_T_TIMESTAMP || c->type.kind == TGT_T_TIMESTAMPTZ);
            tgt_log(TGT_LOG_INFO, "altering \"%s.%s\".\"%s\" from %s to %s", t->schema, t->name,
                    c->name, live.columns[i].sql_type, cols[i].type);
            changed++;
        }
    }
    int rc = 0;
    if (changed > 0)
        rc = rebuild(d, t->schema, t->name, &live, cols, live.key, live.n_keys, err);
    free(cols);
    tgt_live_table_deinit(&live);
    return rc;
}

static int sqlite_alter_column_types(odbc_driver *d, const tgt_table *t, const size_t *cols,
                                     size_t n, tgt_error *err)
{
    widen_args a = {t, cols, n};
    return locked(d, widen_locked, &a, err);
}

/* ---- staging ----------------------------------------------------------------- */

#define STAGE_PREFIX "target-pg stage "
#define COMBINED "target-pg combined"

static void sqlite_stage_name(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t)
{
    tgt_sbuf_append_str(sb, "temp.");
    prefixed(d, sb, STAGE_PREFIX, t->schema, t->name);
}

static int sqlite_prepare_stage(odbc_driver *d, const tgt_table *t, tgt_error *err)
{
    odbc_stage *s = odbc_stage_get(d, t, err);
    if (s == NULL)
        return -1;
    size_t ncols = odbc_existing_columns(t);
    if (s->ready && s->shape == t->shape_version && s->n_columns == ncols)
        return 0;
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "DROP TABLE IF EXISTS ");
    sqlite_stage_name(d, sb, t);
    if (odbc_sql_check(sb, err) < 0 ||
        odbc_exec(d, tgt_sbuf_str(sb), NULL, err, "while dropping the staging table of \"%s.%s\"",
                  t->schema, t->name) < 0)
        return -1;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "CREATE TEMP TABLE ");
    prefixed(d, sb, STAGE_PREFIX, t->schema, t->name);
    tgt_sbuf_append_str(sb, " (");
    char type[SQLITE_TYPE_MAX];
    for (size_t i = 0; i < t->n_columns; i++) {
        const tgt_column *c = &t->columns[i];
        if (!c->exists)
            continue;
        odbc_sql_ident(d, sb, c->name);
        /* the live column's affinity, so staged values compare as stored ones */
        if (c->live_type.kind != TGT_T_OTHER)
            tgt_sbuf_printf(sb, " %s", sqlite_type_sql(c->live_type, type, sizeof type));
        tgt_sbuf_append_str(sb, ", ");
    }
    odbc_sql_ident(d, sb, ODBC_SEQ_COLUMN);
    tgt_sbuf_append_str(sb, " INTEGER, ");
    odbc_sql_ident(d, sb, ODBC_PRESENT_COLUMN);
    tgt_sbuf_append_str(sb, " TEXT)");
    s->ready = 0;
    if (odbc_sql_check(sb, err) < 0 ||
        odbc_exec(d, tgt_sbuf_str(sb), NULL, err, "while creating the staging table of \"%s.%s\"",
                  t->schema, t->name) < 0)
        return -1;
    s->ready = 1;
    s->shape = t->shape_version;
    s->n_columns = ncols;
    return 0;
}

static void sqlite_end_transaction(odbc_driver *d, int committed)
{
    /* TEMP tables outlive a COMMIT; one made in a rolled-back transaction
     * is gone */
    if (!committed)
        odbc_stage_forget_all(d);
}

/* ---- merge --------------------------------------------------------------------- */

/* (SELECT <cols> FROM (SELECT *, row_number() OVER (PARTITION BY <keys>
 * ORDER BY seq DESC) AS rank FROM stage) WHERE rank = 1): the newest staged
 * row per key. */
static void append_newest(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t)
{
    tgt_sbuf_append_str(sb, "(SELECT ");
    odbc_sql_columns(d, sb, t, "");
    tgt_sbuf_append_str(sb, " FROM (SELECT *, row_number() OVER (PARTITION BY ");
    odbc_sql_key_columns(d, sb, t, "");
    tgt_sbuf_append_str(sb, " ORDER BY ");
    odbc_sql_ident(d, sb, ODBC_SEQ_COLUMN);
    tgt_sbuf_append_str(sb, " DESC) AS ");
    odbc_sql_ident(d, sb, RANK_COLUMN);
    tgt_sbuf_append_str(sb, " FROM ");
    sqlite_stage_name(d, sb, t);
    tgt_sbuf_append_str(sb, ") WHERE ");
    odbc_sql_ident(d, sb, RANK_COLUMN);
    tgt_sbuf_append_str(sb, " = 1)");
}

/* <table>.<c>, the stored value. */
static void stored(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, const char *c)
{
    odbc_sql_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_char(sb, '.');
    odbc_sql_ident(d, sb, c);
}

static int has_compared_data(const tgt_table *t)
{
    for (size_t i = 0; i < t->n_columns; i++)
        if (odbc_is_compared(t, i))
            return 1;
    return 0;
}

/* INSERT ... SELECT newest ... ON CONFLICT (<keys>) DO UPDATE SET ... WHERE
 * a compared column changed. */
static void build_upsert(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t)
{
    odbc_sql_insert_select(d, sb, t, "");
    append_newest(d, sb, t);
    /* WHERE: SQLite needs it before ON CONFLICT to parse the upsert */
    tgt_sbuf_append_str(sb, " WHERE true");
    odbc_sql_not_deleted(d, sb, t, "");
    tgt_sbuf_append_str(sb, " ON CONFLICT (");
    odbc_sql_key_columns(d, sb, t, "");
    if (!has_compared_data(t)) {
        tgt_sbuf_append_str(sb, ") DO NOTHING");
        return;
    }
    tgt_sbuf_append_str(sb, ") DO UPDATE SET ");
    int first = 1;
    for (size_t i = 0; i < t->n_columns; i++) {
        const tgt_column *c = &t->columns[i];
        if (!odbc_is_data(t, i))
            continue;
        tgt_sbuf_append_str(sb, first ? "" : ", ");
        first = 0;
        odbc_sql_ident(d, sb, c->name);
        tgt_sbuf_append_str(sb, " = excluded.");
        odbc_sql_ident(d, sb, c->name);
    }
    tgt_sbuf_append_str(sb, " WHERE NOT (");
    first = 1;
    for (size_t i = 0; i < t->n_columns; i++) {
        const tgt_column *c = &t->columns[i];
        if (!odbc_is_compared(t, i))
            continue;
        tgt_sbuf_append_str(sb, first ? "" : " AND ");
        first = 0;
        stored(d, sb, t, c->name);
        tgt_sbuf_append_str(sb, " IS excluded.");
        odbc_sql_ident(d, sb, c->name);
    }
    tgt_sbuf_append_char(sb, ')');
}

/* DELETE FROM <t> WHERE (<keys>) IN (SELECT <keys> FROM <source> WHERE
 * <mark> IS NOT NULL) */
static void build_delete(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, int from_combined)
{
    odbc_sql_delete_keys_in(d, sb, t, "");
    if (from_combined) {
        tgt_sbuf_append_str(sb, "temp.");
        odbc_sql_ident(d, sb, COMBINED);
    } else {
        append_newest(d, sb, t);
    }
    tgt_sbuf_append_str(sb, " WHERE ");
    odbc_sql_ident(d, sb, t->columns[t->deleted_at_column].name);
    tgt_sbuf_append_str(sb, " IS NOT NULL)");
}

static int run_built(odbc_driver *d, const tgt_table *t, unsigned long *rows, tgt_error *err)
{
    tgt_sbuf *sb = &d->sql;
    if (odbc_sql_check(sb, err) < 0)
        return -1;
    return odbc_exec(d, tgt_sbuf_str(sb), rows, err, "while merging staged rows into \"%s.%s\"",
                     t->schema, t->name);
}

/* "target-pg newest <i>" of column i (1-based table position). */
static void newest_name(odbc_driver *d, tgt_sbuf *sb, const char *prefix, size_t i)
{
    char name[48];
    snprintf(name, sizeof name, "target-pg newest %zu", i + 1);
    tgt_sbuf_append_str(sb, prefix);
    odbc_sql_ident(d, sb, name);
}

/* CREATE TEMP TABLE combined AS: per key, each column from the newest
 * staged row that carried it (NULL when none did), "target-pg newest i"
 * (that row's sequence), and with hard_delete "target-pg deleted" (the
 * newest deletion's sequence: earlier rows no longer count). */
static void build_combined(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t)
{
    int marked = odbc_deletes_marked(t);
    tgt_sbuf_append_str(sb, "CREATE TEMP TABLE ");
    odbc_sql_ident(d, sb, COMBINED);
    tgt_sbuf_append_str(sb, " AS SELECT ");
    odbc_sql_key_columns(d, sb, t, "");
    for (size_t i = 0; i < t->n_columns; i++) {
        if (!odbc_is_data(t, i))
            continue;
        tgt_sbuf_append_str(sb, ", max(CASE WHEN ");
        odbc_sql_ident(d, sb, ODBC_SEQ_COLUMN);
        newest_name(d, sb, " = ", i);
        tgt_sbuf_append_str(sb, " THEN ");
        odbc_sql_ident(d, sb, t->columns[i].name);
        tgt_sbuf_append_str(sb, " END) AS ");
        odbc_sql_ident(d, sb, t->columns[i].name);
        newest_name(d, sb, ", max(", i);
        newest_name(d, sb, ") AS ", i);
    }
    tgt_sbuf_append_str(sb, marked ? ", max(\"target-pg deleted\") AS \"target-pg deleted\"" : "");
    tgt_sbuf_append_str(sb, " FROM (SELECT *");
    for (size_t i = 0; i < t->n_columns; i++) {
        if (!odbc_is_data(t, i))
            continue;
        tgt_sbuf_append_str(sb, ", max(CASE WHEN ");
        odbc_sql_carries(d, sb, "", i);
        if (marked) {
            tgt_sbuf_append_str(sb, " AND (\"target-pg deleted\" IS NULL OR ");
            odbc_sql_ident(d, sb, ODBC_SEQ_COLUMN);
            tgt_sbuf_append_str(sb, " >= \"target-pg deleted\")");
        }
        tgt_sbuf_append_str(sb, " THEN ");
        odbc_sql_ident(d, sb, ODBC_SEQ_COLUMN);
        newest_name(d, sb, " END) OVER k AS ", i);
    }
    tgt_sbuf_append_str(sb, " FROM ");
    if (marked) {
        tgt_sbuf_append_str(sb, "(SELECT *, max(CASE WHEN ");
        odbc_sql_ident(d, sb, t->columns[t->deleted_at_column].name);
        tgt_sbuf_append_str(sb, " IS NOT NULL THEN ");
        odbc_sql_ident(d, sb, ODBC_SEQ_COLUMN);
        tgt_sbuf_append_str(sb, " END) OVER (PARTITION BY ");
        odbc_sql_key_columns(d, sb, t, "");
        tgt_sbuf_append_str(sb, ") AS \"target-pg deleted\" FROM ");
        sqlite_stage_name(d, sb, t);
        tgt_sbuf_append_char(sb, ')');
    } else {
        sqlite_stage_name(d, sb, t);
    }
    tgt_sbuf_append_str(sb, " WINDOW k AS (PARTITION BY ");
    odbc_sql_key_columns(d, sb, t, "");
    tgt_sbuf_append_str(sb, ")) GROUP BY ");
    odbc_sql_key_columns(d, sb, t, "");
}

/* The value column i takes: the combined one when a row carried it, NULL
 * after a deletion in the batch, else the stored one. */
static void append_new_value(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, size_t i)
{
    tgt_sbuf_append_str(sb, "(CASE WHEN ");
    newest_name(d, sb, "n.", i);
    tgt_sbuf_append_str(sb, " IS NOT NULL THEN n.");
    odbc_sql_ident(d, sb, t->columns[i].name);
    if (odbc_deletes_marked(t))
        tgt_sbuf_append_str(sb, " WHEN n.\"target-pg deleted\" IS NOT NULL THEN NULL");
    tgt_sbuf_append_str(sb, " ELSE ");
    stored(d, sb, t, t->columns[i].name);
    tgt_sbuf_append_str(sb, " END)");
}

static void build_partial_update(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t)
{
    tgt_sbuf_append_str(sb, "UPDATE ");
    odbc_sql_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_str(sb, " SET ");
    int first = 1;
    for (size_t i = 0; i < t->n_columns; i++) {
        if (!odbc_is_data(t, i))
            continue;
        tgt_sbuf_append_str(sb, first ? "" : ", ");
        first = 0;
        odbc_sql_ident(d, sb, t->columns[i].name);
        tgt_sbuf_append_str(sb, " = ");
        append_new_value(d, sb, t, i);
    }
    tgt_sbuf_append_str(sb, " FROM temp.");
    odbc_sql_ident(d, sb, COMBINED);
    tgt_sbuf_append_str(sb, " AS n WHERE ");
    for (size_t k = 0; k < t->n_keys; k++) {
        const char *key = t->columns[t->key_columns[k]].name;
        stored(d, sb, t, key);
        tgt_sbuf_append_str(sb, " = n.");
        odbc_sql_ident(d, sb, key);
        tgt_sbuf_append_str(sb, " AND ");
    }
    if (odbc_deletes_marked(t)) {
        tgt_sbuf_append_str(sb, "n.");
        odbc_sql_ident(d, sb, t->columns[t->deleted_at_column].name);
        tgt_sbuf_append_str(sb, " IS NULL AND ");
    }
    tgt_sbuf_append_str(sb, "NOT (true");
    for (size_t i = 0; i < t->n_columns; i++) {
        const tgt_column *c = &t->columns[i];
        if (!odbc_is_compared(t, i))
            continue;
        tgt_sbuf_append_str(sb, " AND ");
        stored(d, sb, t, c->name);
        tgt_sbuf_append_str(sb, " IS ");
        append_new_value(d, sb, t, i);
    }
    tgt_sbuf_append_char(sb, ')');
}

static void build_partial_insert(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t)
{
    odbc_sql_insert_select(d, sb, t, "");
    tgt_sbuf_append_str(sb, "temp.");
    odbc_sql_ident(d, sb, COMBINED);
    tgt_sbuf_append_str(sb, " WHERE true");
    odbc_sql_not_deleted(d, sb, t, "");
    tgt_sbuf_append_str(sb, " ON CONFLICT (");
    odbc_sql_key_columns(d, sb, t, "");
    tgt_sbuf_append_str(sb, ") DO NOTHING");
}

static int merge_partial(odbc_driver *d, const tgt_table *t, unsigned long *changed, tgt_error *err)
{
    tgt_sbuf *sb = &d->sql;
    unsigned long updated = 0, inserted = 0, deleted = 0;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "DROP TABLE IF EXISTS temp.");
    odbc_sql_ident(d, sb, COMBINED);
    if (run_built(d, t, NULL, err) < 0)
        return -1;
    tgt_sbuf_reset(sb);
    build_combined(d, sb, t);
    if (run_built(d, t, NULL, err) < 0)
        return -1;
    tgt_sbuf_reset(sb);
    build_partial_update(d, sb, t);
    if (run_built(d, t, &updated, err) < 0)
        return -1;
    tgt_sbuf_reset(sb);
    build_partial_insert(d, sb, t);
    if (run_built(d, t, &inserted, err) < 0)
        return -1;
    if (odbc_deletes_marked(t)) {
        tgt_sbuf_reset(sb);
        build_delete(d, sb, t, 1);
        if (run_built(d, t, &deleted, err) < 0)
            return -1;
    }
    *changed = updated + inserted + deleted;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "DROP TABLE temp.");
    odbc_sql_ident(d, sb, COMBINED);
    return run_built(d, t, NULL, err);
}

static int merge_full(odbc_driver *d, const tgt_table *t, unsigned long *changed, tgt_error *err)
{
    tgt_sbuf *sb = &d->sql;
    unsigned long deleted = 0;
    tgt_sbuf_reset(sb);
    if (t->n_keys == 0) {
        /* not a keyed table: the staged rows are appended in batch order */
        odbc_sql_insert_select(d, sb, t, "");
        sqlite_stage_name(d, sb, t);
        tgt_sbuf_append_str(sb, " ORDER BY ");
        odbc_sql_ident(d, sb, ODBC_SEQ_COLUMN);
        return run_built(d, t, changed, err);
    }
    build_upsert(d, sb, t);
    if (run_built(d, t, changed, err) < 0)
        return -1;
    if (!odbc_deletes_marked(t))
        return 0;
    tgt_sbuf_reset(sb);
    build_delete(d, sb, t, 0);
    if (run_built(d, t, &deleted, err) < 0)
        return -1;
    *changed += deleted;
    return 0;
}

static int sqlite_merge(odbc_driver *d, const tgt_table *t, int partial, unsigned long *changed,
                        tgt_error *err)
{
    odbc_stage *s = odbc_stage_find(d, t->schema, t->name);
    /* nothing staged for this shape since the last merge */
    if (s == NULL || !s->ready || !s->filled || s->shape != t->shape_version)
        return 0;
    if (odbc_existing_columns(t) == 0)
        return 0;
    for (size_t k = 0; k < t->n_keys; k++)
        if (t->key_columns[k] >= t->n_columns || !t->columns[t->key_columns[k]].exists)
            return tgt_error_set(err, TGT_ERR_INTERNAL, "merge into \"%s.%s\": bad key column",
                                 t->schema, t->name);
    int rc = partial && t->n_keys > 0 ? merge_partial(d, t, changed, err)
                                      : merge_full(d, t, changed, err);
    if (rc < 0)
        return -1;
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "DELETE FROM ");
    sqlite_stage_name(d, sb, t);
    if (run_built(d, t, NULL, err) < 0)
        return -1;
    s->filled = 0;
    return 0;
}

static int sqlite_lock_for_merge(odbc_driver *d, const tgt_table **tables, size_t n, tgt_error *err)
{
    (void)d;
    (void)tables;
    (void)n;
    (void)err;
    return 0; /* BEGIN IMMEDIATE (begin_sql) already holds the one write lock */
}

/* ---- versions, keys, overwrite --------------------------------------------------- */

static int sqlite_activate_version(odbc_driver *d, const char *schema, const char *table,
                                   const char *version_column, const char *deleted_column,
                                   const char *version, int hard, unsigned long *affected,
                                   tgt_error *err)
{
    /* now: the canonical UTC form of the row writer */
    const odbc_version_sql v = {.schema = schema,
                                .table = table,
                                .version_column = version_column,
                                .deleted_column = deleted_column,
                                .hard = hard,
                                .now_sql = "strftime('%Y-%m-%d %H:%M:%f', 'now')",
                                .integer_type = "INTEGER"};
    char where[TGT_ERROR_WHERE_MAX];
    snprintf(where, sizeof(where), "while activating version %s of \"%s.%s\"", version, schema,
             table);
    return odbc_sql_exec_activate_version(d, &v, version, where, affected, err);
}

static int same_key(const tgt_live_table *live, const tgt_table *t)
{
    if (live->n_keys != t->n_keys)
        return 0;
    for (size_t k = 0; k < t->n_keys; k++)
        if (strcmp(live->key[k], t->columns[t->key_columns[k]].name) != 0)
            return 0;
    return 1;
}

static int rekey_locked(odbc_driver *d, const void *arg, tgt_error *err)
{
    const tgt_table *t = arg;
    tgt_live_table live;
    if (sqlite_describe_table(d, t->schema, t->name, &live, err) < 0)
        return -1;
    if (!live.exists || same_key(&live, t)) {
        tgt_live_table_deinit(&live);
        return 0;
    }
    rebuilt_column *cols = calloc(live.n_columns, sizeof(*cols));
    char(*key)[TGT_IDENT_MAX + 1] = calloc(t->n_keys + 1, sizeof(*key));
    int rc = 0;
    if (cols == NULL || key == NULL)
        rc = tgt_error_nomem(err);
    for (size_t i = 0; rc == 0 && i < live.n_columns; i++)
        snprintf(cols[i].type, sizeof cols[i].type, "%s", live.columns[i].sql_type);
    for (size_t k = 0; rc == 0 && k < t->n_keys; k++)
        memcpy(key[k], t->columns[t->key_columns[k]].name, sizeof(key[k]));
    if (rc == 0) {
        tgt_log(TGT_LOG_INFO, "moving the primary key of \"%s.%s\"", t->schema, t->name);
        rc = rebuild(d, t->schema, t->name, &live, cols, key, t->n_keys, err);
    }
    free(cols);
    free(key);
    tgt_live_table_deinit(&live);
    return rc;
}

static int sqlite_set_primary_key(odbc_driver *d, const tgt_table *t, tgt_error *err)
{
    return locked(d, rekey_locked, t, err);
}

static int sqlite_drop_table(odbc_driver *d, const char *schema, const char *table, tgt_error *err)
{
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "DROP TABLE IF EXISTS ");
    odbc_sql_qualified(d, sb, schema, table);
    if (odbc_sql_check(sb, err) < 0)
        return -1;
    return odbc_exec(d, tgt_sbuf_str(sb), NULL, err, "while dropping \"%s.%s\"", schema, table);
}

static int sqlite_replace_table(odbc_driver *d, const char *schema, const char *live,
                                const char *shadow, tgt_error *err)
{
    if (sqlite_drop_table(d, schema, live, err) < 0)
        return -1;
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "ALTER TABLE ");
    odbc_sql_qualified(d, sb, schema, shadow);
    tgt_sbuf_append_str(sb, " RENAME TO ");
    odbc_sql_qualified(d, sb, schema, live);
    if (odbc_sql_check(sb, err) < 0)
        return -1;
    return odbc_exec(d, tgt_sbuf_str(sb), NULL, err, "while renaming \"%s.%s\" to \"%s.%s\"",
                     schema, shadow, schema, live);
}

/* "target-pg.commits": the prefix form of a schema nobody loads into
 * (stream schemas are normalised names, which have no '-') */
static void sqlite_marker_table(odbc_driver *d, tgt_sbuf *sb)
{
    odbc_sql_ident(d, sb, "target-pg.commits");
}

/* busy_timeout: a second loader waits this long for the first's COMMIT */
static const char *const sqlite_session[] = {"PRAGMA busy_timeout = 60000", NULL};

const odbc_dialect odbc_sqlite_dialect = {
    .name = "sqlite",
    .caps = &sqlite_caps,
    .matches = sqlite_matches,
    .quote = '"',
    .qualified = sqlite_qualified,
    .session_sql = sqlite_session,
    .begin_sql = "BEGIN IMMEDIATE",
    .commit_sql = "COMMIT",
    .rollback_sql = "ROLLBACK",
    .type_sql = sqlite_type_sql,
    .type_from_sql = sqlite_type_from_sql,
    .bind_type = sqlite_bind_type,
    .classify = sqlite_classify,
    .marker_table = sqlite_marker_table,
    .describe_table = sqlite_describe_table,
    .ensure_schema = sqlite_ensure_schema,
    .create_table = sqlite_create_table,
    .add_column = sqlite_add_column,
    .alter_column_types = sqlite_alter_column_types,
    .stage_name = sqlite_stage_name,
    .prepare_stage = sqlite_prepare_stage,
    .merge = sqlite_merge,
    .end_transaction = sqlite_end_transaction,
    .lock_for_merge = sqlite_lock_for_merge,
    .activate_version = sqlite_activate_version,
    .set_primary_key = sqlite_set_primary_key,
    .drop_table = sqlite_drop_table,
    .replace_table = sqlite_replace_table,
    /* libsqliteodbc 0.9998 compiles a statement again at every SQLExecute
     * and every row of a parameter array (sqlite3_prepare: 43% of the CPU
     * of a load) unless the text starts with SELECT, PRAGMA, WITH or
     * EXPLAIN: then SQLPrepare compiles it once and each row only binds,
     * steps and resets it, as the sqlite3 shell's .import does.  So the
     * INSERT starts with a WITH clause nothing reads, and goes as parameter
     * arrays (one call per 1,000 rows): 200,000 orders rows took 0.82 s of
     * CPU where 100-row VALUES statements took 1.61 s
     * (scripts/bench_sqlite.sh). */
    .rows_per_statement = 0,
    .insert_prefix = "WITH \"target-pg rows\" AS (SELECT 1) ",
    /* one file, no lock table to exhaust */
    .tables_per_transaction = 10000,
};

/*
 * pg_driver_check.c - exercises every operation of the PostgreSQL driver
 * (drivers/postgres/) against a real server.
 *
 * The server comes from the PG* environment variables; TEST_DB names a fresh
 * database the check may fill as it likes.  Besides the driver under test the
 * check keeps its own libpq connection ("raw") to look at what the driver did
 * and to play the concurrent loader; it also peeks at the driver's connection
 * (pg_internal.h) to check session settings and to kill its backend.
 *
 * Prints one "FAIL <file>:<line>: <what>" line per failed check and a
 * summary; exits 0 when every check passed, 1 otherwise, 2 when it cannot
 * start.  Built and run by tests/integration/test_pg_driver.sh.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "datetime.h"
#include "driver.h"
#include "error.h"
#include "log.h"
#include "postgres/pg_encode_binary.h"
#include "postgres/pg_internal.h"
#include "postgres/postgres.h"
#include "sbuf.h"
#include "table.h"

#define SCHEMA "pgcheck"

static int n_checks;
static int n_failed;
static PGconn *raw;
static const char *test_db;

static void failf(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void failf(const char *file, int line, const char *fmt, ...)
{
    n_failed++;
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        n_checks++;                                                                                \
        if (!(cond))                                                                               \
            failf(__FILE__, __LINE__, __VA_ARGS__);                                                \
    } while (0)

/* An operation that must succeed; prints the driver's error otherwise. */
#define MUST(call, err)                                                                            \
    do {                                                                                           \
        n_checks++;                                                                                \
        if ((call) != 0)                                                                           \
            failf(__FILE__, __LINE__, "%s failed: %s [%s] where: %s detail: %s", #call,            \
                  (err)->message, (err)->sqlstate, (err)->where, (err)->detail);                   \
        tgt_error_init(err);                                                                       \
    } while (0)

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL) {
        fprintf(stderr, "pg_driver_check: out of memory\n");
        exit(2);
    }
    return p;
}

static char *xstrdup(const char *s)
{
    char *p = xmalloc(strlen(s) + 1);
    memcpy(p, s, strlen(s) + 1);
    return p;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- the raw connection ------------------------------------------------ */

static PGconn *raw_connect(void)
{
    const char *keys[] = {"dbname", "application_name", NULL};
    const char *vals[] = {test_db, "pg_driver_check", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 0);
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pg_driver_check: cannot connect: %s", c ? PQerrorMessage(c) : "oom\n");
        PQfinish(c);
        exit(2);
    }
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    return c;
}

static int conn_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "# raw SQL failed: %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return ok ? 0 : -1;
}

static int raw_exec(const char *sql)
{
    return conn_exec(raw, sql);
}

/* First value of the first row, malloc'd; NULL for no row, SQL NULL or error. */
static char *conn_value(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    char *v = NULL;
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fprintf(stderr, "# raw SQL failed: %s: %s", sql, PQresultErrorMessage(r));
    else if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
        v = xstrdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static char *raw_value(const char *sql)
{
    return conn_value(raw, sql);
}

/* Checks that `sql` yields exactly `want` (NULL: SQL NULL or no row). */
#define CHECK_VALUE(sql, want)                                                                     \
    do {                                                                                           \
        char *got_ = raw_value(sql);                                                               \
        const char *want_ = (want);                                                                \
        CHECK((got_ == NULL && want_ == NULL) ||                                                   \
                  (got_ != NULL && want_ != NULL && strcmp(got_, want_) == 0),                     \
              "%s: got [%s], want [%s]", sql, got_ ? got_ : "(null)", want_ ? want_ : "(null)");   \
        free(got_);                                                                                \
    } while (0)

static PGconn *conn_of(tgt_driver *d)
{
    return ((pg_driver *)d)->conn;
}

/* ---- building tables and COPY rows --------------------------------------- */

static void table_new(tgt_table *t, const char *schema, const char *name)
{
    tgt_table_init(t);
    t->schema = xstrdup(schema);
    t->name = xstrdup(name);
    t->shape_version = 1;
}

static size_t add_col(tgt_table *t, const char *name, const char *path, tgt_type_kind kind,
                      tgt_column_role role, int key)
{
    tgt_column *cols = realloc(t->columns, (t->n_columns + 1) * sizeof(*cols));
    if (cols == NULL)
        exit(2);
    t->columns = cols;
    tgt_column *c = &t->columns[t->n_columns];
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->source_path = path != NULL ? xstrdup(path) : NULL;
    c->source_json = path != NULL ? xstrdup(path) : NULL; /* written as the comment as it is */
    c->type = c->live_type = tgt_type_make(kind);
    c->role = role;
    c->is_key = key;
    if (key) {
        size_t *keys = realloc(t->key_columns, (t->n_keys + 1) * sizeof(*keys));
        if (keys == NULL)
            exit(2);
        t->key_columns = keys;
        t->key_columns[t->n_keys++] = t->n_columns;
    }
    return t->n_columns++;
}

static void mark_exists(tgt_table *t)
{
    for (size_t i = 0; i < t->n_columns; i++)
        t->columns[i].exists = 1;
}

/* Appends one COPY text value (NULL -> \N). */
static void put_value(tgt_sbuf *sb, const char *v)
{
    if (v == NULL) {
        tgt_sbuf_append_str(sb, "\\N");
        return;
    }
    for (const char *p = v; *p != '\0'; p++) {
        switch (*p) {
        case '\\':
            tgt_sbuf_append_str(sb, "\\\\");
            break;
        case '\t':
            tgt_sbuf_append_str(sb, "\\t");
            break;
        case '\n':
            tgt_sbuf_append_str(sb, "\\n");
            break;
        case '\r':
            tgt_sbuf_append_str(sb, "\\r");
            break;
        default:
            tgt_sbuf_append_char(sb, *p);
        }
    }
}

static void put_row(tgt_sbuf *sb, size_t n, const char *const *vals)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            tgt_sbuf_append_char(sb, '\t');
        put_value(sb, vals[i]);
    }
    tgt_sbuf_append_char(sb, '\n');
}

/* One field of a COPY text line, unescaped into f; 0 for \N (NULL). */
static int text_field(const char *p, const char *end, tgt_sbuf *f)
{
    tgt_sbuf_reset(f);
    if (end - p == 2 && p[0] == '\\' && p[1] == 'N')
        return 0;
    for (; p < end; p++) {
        char c = *p;
        if (c == '\\' && p + 1 < end) {
            c = *++p;
            c = c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c;
        }
        tgt_sbuf_append_char(f, c);
    }
    tgt_sbuf_append(f, "", 0); /* data is never NULL */
    return 1;
}

/* One field of a row put through the driver's row writer by its column's
 * kind; text that does not read as that kind goes as text (which the
 * server then refuses, as it would have refused the text form). */
static void put_field(const tgt_row_ops *ops, tgt_row_writer *w, const tgt_sbuf *f)
{
    tgt_datetime dt;
    const char *v = f->data;
    size_t n = f->len;
    switch (w->table->columns[w->column].live_type.kind) {
    case TGT_T_BOOLEAN:
        ops->put_bool(w, v[0] == 't');
        return;
    case TGT_T_SMALLINT:
    case TGT_T_INTEGER:
    case TGT_T_BIGINT:
        if (n > 0 && strspn(v, "-0123456789") == n) {
            ops->put_integer(w, v, n);
            return;
        }
        break;
    case TGT_T_NUMERIC:
    case TGT_T_REAL:
    case TGT_T_DOUBLE:
        if (n > 0 && (strspn(v, "-+.0123456789eE") == n || strcmp(v, "NaN") == 0 ||
                      strcmp(v, "Infinity") == 0 || strcmp(v, "-Infinity") == 0)) {
            if (w->table->columns[w->column].live_type.kind == TGT_T_NUMERIC)
                ops->put_numeric(w, v, n);
            else
                ops->put_float(w, v, n);
            return;
        }
        break;
    case TGT_T_DATE:
        if (tgt_datetime_parse_date(v, n, &dt, NULL)) {
            ops->put_date(w, &dt);
            return;
        }
        break;
    case TGT_T_TIME:
        if (tgt_datetime_parse_time(v, n, &dt, NULL)) {
            tgt_datetime_time_to_utc(&dt);
            ops->put_time(w, &dt);
            return;
        }
        break;
    case TGT_T_TIMESTAMP:
    case TGT_T_TIMESTAMPTZ:
        if (tgt_datetime_parse_timestamp(v, n, &dt, NULL)) {
            ops->put_timestamp(w, &dt);
            return;
        }
        break;
    case TGT_T_JSON:
    case TGT_T_JSONB:
        ops->put_json(w, v, n);
        return;
    case TGT_T_VARCHAR:
    case TGT_T_TEXT:
    case TGT_T_OTHER:
        break;
    }
    ops->put_text(w, v, n);
}

/* The driver's bulk bytes (row.h) for rows the checks state as COPY text
 * lines (TAB-separated, \N for NULL; a staging row ends with the sequence
 * and the presence mask): each value put through the driver's row writer,
 * so that the checks hold whatever format the driver ships. */
static void encode_rows(tgt_driver *d, const tgt_table *t, tgt_write_mode mode,
                        const tgt_sbuf *text, tgt_sbuf *out)
{
    const tgt_row_ops *ops = d->ops->rows;
    size_t nuls = 0;
    tgt_sbuf f;
    tgt_sbuf_init(&f);
    const char *p = text->data, *end = text->data + text->len;
    unsigned char carried[64];
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        eol = eol != NULL ? eol : end;
        tgt_row_writer w = {.out = out, .table = t, .column = 0, .nul_count = &nuls};
        unsigned long seq = 0;
        int partial = 0;
        for (size_t i = 0; p <= eol; i++) {
            const char *q = memchr(p, '\t', (size_t)(eol - p));
            q = q != NULL ? q : eol;
            int present = text_field(p, q, &f);
            if (i < t->n_columns) {
                if (present)
                    put_field(ops, &w, &f);
                else
                    ops->put_null(&w);
            } else if (i == t->n_columns) {
                seq = strtoul(f.data, NULL, 10);
            } else if (present) {
                partial = 1;
                for (size_t k = 0; k < f.len && k < sizeof carried; k++)
                    carried[k] = f.data[k] == '1';
            }
            p = q + 1;
        }
        if (mode == TGT_WRITE_STAGING)
            ops->end_staged_row(&w, seq, partial ? carried : NULL);
        else
            ops->end_row(&w);
    }
    tgt_sbuf_deinit(&f);
}

/* write_begin + the row writer's bytes in pieces of `piece` bytes +
 * write_end; returns 0/-1. */
static int load_bytes(tgt_driver *d, const tgt_table *t, tgt_write_mode mode, const tgt_sbuf *bytes,
                      size_t piece, unsigned long *n_rows, tgt_error *err)
{
    if (d->ops->write_begin(d, t, mode, err) < 0)
        return -1;
    for (size_t off = 0; off < bytes->len; off += piece) {
        size_t n = bytes->len - off < piece ? bytes->len - off : piece;
        if (d->ops->write_data(d, bytes->data + off, n, err) < 0)
            return -1;
    }
    return d->ops->write_end(d, n_rows, err);
}

/* load_bytes of rows given as COPY text lines (encode_rows). */
static int load(tgt_driver *d, const tgt_table *t, tgt_write_mode mode, const tgt_sbuf *rows,
                size_t piece, unsigned long *n_rows, tgt_error *err)
{
    tgt_sbuf bytes;
    tgt_sbuf_init(&bytes);
    encode_rows(d, t, mode, rows, &bytes);
    int rc = tgt_sbuf_ok(&bytes) ? load_bytes(d, t, mode, &bytes, piece, n_rows, err)
                                 : tgt_error_nomem(err);
    tgt_sbuf_deinit(&bytes);
    return rc;
}

static tgt_driver *connect_driver(const char *conninfo)
{
    tgt_error err;
    tgt_error_init(&err);
    tgt_driver *d = tgt_postgres_driver_new(&err);
    if (d == NULL)
        exit(2);
    tgt_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    char db[256], ci[512];
    snprintf(db, sizeof(db), "%s", test_db);
    snprintf(ci, sizeof(ci), "%s", conninfo != NULL ? conninfo : "");
    if (conninfo != NULL)
        cfg.conninfo = ci;
    else
        cfg.dbname = db;
    if (d->ops->connect(d, &cfg, &err) != 0) {
        fprintf(stderr, "pg_driver_check: driver cannot connect: %s\n", err.message);
        d->ops->free(d);
        exit(2);
    }
    return d;
}

/* ---- the checks ------------------------------------------------------- */

static void check_connect_failure(void)
{
    tgt_error err;
    tgt_error_init(&err);
    tgt_driver *d = tgt_postgres_driver_new(&err);
    tgt_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    char db[] = "no_such_database_pgcheck";
    char pw[] = "sekret-pw-123";
    cfg.dbname = db;
    cfg.password = pw;
    int rc = d->ops->connect(d, &cfg, &err);
    CHECK(rc == -1, "connect to a missing database succeeded");
    CHECK(err.code == TGT_ERR_LOAD, "connect failure code %d", (int)err.code);
    CHECK(starts_with(err.message, "cannot connect to PostgreSQL: "), "message: %s", err.message);
    CHECK(strstr(err.message, "no_such_database_pgcheck") != NULL, "message lacks db: %s",
          err.message);
    CHECK(strstr(err.message, pw) == NULL && strstr(err.detail, pw) == NULL &&
              strstr(err.where, pw) == NULL,
          "password in the error");
    CHECK(strchr(err.message, '\n') == NULL, "multi-line message: %s", err.message);
    /* the ops that follow a failed connect must not crash */
    d->ops->rollback(d);
    d->ops->free(d);
    d = NULL;
}

static void check_session(tgt_driver *d, tgt_driver *d2)
{
    char *v = conn_value(conn_of(d), "SHOW TimeZone");
    CHECK(v != NULL && strcmp(v, "UTC") == 0, "TimeZone %s", v ? v : "?");
    free(v);
    v = conn_value(conn_of(d), "SHOW DateStyle");
    CHECK(v != NULL && strcmp(v, "ISO, YMD") == 0, "DateStyle %s", v ? v : "?");
    free(v);
    v = conn_value(conn_of(d), "SHOW extra_float_digits");
    CHECK(v != NULL && strcmp(v, "3") == 0, "extra_float_digits %s", v ? v : "?");
    free(v);
    v = conn_value(conn_of(d), "SHOW client_min_messages");
    CHECK(v != NULL && strcmp(v, "warning") == 0, "client_min_messages %s", v ? v : "?");
    free(v);
    v = conn_value(conn_of(d), "SHOW client_encoding");
    CHECK(v != NULL && strcmp(v, "UTF8") == 0, "client_encoding %s", v ? v : "?");
    free(v);
    /* d2 connected through conninfo */
    v = conn_value(conn_of(d2), "SELECT current_setting('application_name') || ' ' || "
                                "current_database() || ' ' || current_setting('TimeZone')");
    char want[300];
    snprintf(want, sizeof(want), "target-pg %s UTC", test_db);
    CHECK(v != NULL && strcmp(v, want) == 0, "conninfo session: %s", v ? v : "?");
    free(v);
}

static void build_items(tgt_table *t)
{
    table_new(t, SCHEMA, "items");
    add_col(t, "id", "id", TGT_T_BIGINT, TGT_COL_DATA, 1);
    add_col(t, "name", "name", TGT_T_TEXT, TGT_COL_DATA, 0);
    add_col(t, "amount", "amount", TGT_T_BIGINT, TGT_COL_DATA, 0);
    add_col(t, "payload", "pay'load\\x", TGT_T_JSONB, TGT_COL_DATA, 0);
    add_col(t, "doc", "doc", TGT_T_JSON, TGT_COL_DATA, 0);
    add_col(t, "__loaded_at", NULL, TGT_T_TIMESTAMPTZ, TGT_COL_LOADED_AT, 0);
}

static void check_ddl(tgt_driver *d, tgt_table *items)
{
    tgt_error err;
    tgt_error_init(&err);
    MUST(d->ops->ensure_schema(d, SCHEMA, &err), &err);
    MUST(d->ops->ensure_schema(d, SCHEMA, &err), &err);
    CHECK_VALUE("SELECT nspname FROM pg_namespace WHERE nspname = '" SCHEMA "'", SCHEMA);

    MUST(d->ops->create_table(d, items, &err), &err);
    MUST(d->ops->create_table(d, items, &err), &err); /* IF NOT EXISTS */
    mark_exists(items);
    CHECK_VALUE("SELECT col_description('pgcheck.items'::regclass, 2)", "source: name");
    CHECK_VALUE("SELECT col_description('pgcheck.items'::regclass, 4)", "source: pay'load\\x");
    CHECK_VALUE("SELECT col_description('pgcheck.items'::regclass, 6)", NULL);
    CHECK_VALUE(
        "SELECT string_agg(a.attname, ',' ORDER BY array_position(i.indkey::int2[], a.attnum)) "
        "FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY (i.indkey) "
        "WHERE i.indrelid = 'pgcheck.items'::regclass AND i.indisprimary",
        "id");

    tgt_live_table lt;
    MUST(d->ops->describe_table(d, SCHEMA, "items", &lt, &err), &err);
    CHECK(lt.exists == 1, "items not found");
    CHECK(lt.n_columns == 6, "items has %zu columns", lt.n_columns);
    static const struct {
        const char *name;
        const char *sql;
        tgt_type_kind kind;
        int not_null;
    } want[] = {
        {"id", "bigint", TGT_T_BIGINT, 1},
        {"name", "text", TGT_T_TEXT, 0},
        {"amount", "bigint", TGT_T_BIGINT, 0},
        {"payload", "jsonb", TGT_T_JSONB, 0},
        {"doc", "json", TGT_T_JSON, 0},
        {"__loaded_at", "timestamp with time zone", TGT_T_TIMESTAMPTZ, 0},
    };
    for (size_t i = 0; i < lt.n_columns && i < 6; i++) {
        CHECK(strcmp(lt.columns[i].name, want[i].name) == 0, "column %zu is %s", i,
              lt.columns[i].name);
        CHECK(strcmp(lt.columns[i].sql_type, want[i].sql) == 0, "column %s type %s",
              lt.columns[i].name, lt.columns[i].sql_type);
        CHECK(lt.columns[i].type.kind == want[i].kind, "column %s kind %d", lt.columns[i].name,
              (int)lt.columns[i].type.kind);
        CHECK(lt.columns[i].not_null == want[i].not_null, "column %s not_null %d",
              lt.columns[i].name, lt.columns[i].not_null);
    }
    CHECK(lt.n_keys == 1 && strcmp(lt.key[0], "id") == 0, "items key");
    tgt_live_table_deinit(&lt);

    /* missing table: no error, exists = 0 */
    MUST(d->ops->describe_table(d, SCHEMA, "no_such_table", &lt, &err), &err);
    CHECK(lt.exists == 0 && lt.n_columns == 0, "missing table reported as existing");
    tgt_live_table_deinit(&lt);

    /* key order is the key's, not the columns' */
    tgt_table pairs;
    table_new(&pairs, SCHEMA, "pairs");
    add_col(&pairs, "a", "a", TGT_T_TEXT, TGT_COL_DATA, 0);
    add_col(&pairs, "b", "b", TGT_T_INTEGER, TGT_COL_DATA, 0);
    add_col(&pairs, "c", "c", TGT_T_VARCHAR, TGT_COL_DATA, 0);
    pairs.columns[2].type.length = 12;
    pairs.columns[0].is_key = pairs.columns[1].is_key = 1;
    pairs.key_columns = xmalloc(2 * sizeof(size_t));
    pairs.key_columns[0] = 1;
    pairs.key_columns[1] = 0;
    pairs.n_keys = 2;
    MUST(d->ops->create_table(d, &pairs, &err), &err);
    MUST(d->ops->describe_table(d, SCHEMA, "pairs", &lt, &err), &err);
    CHECK(lt.n_keys == 2 && strcmp(lt.key[0], "b") == 0 && strcmp(lt.key[1], "a") == 0,
          "pairs key order");
    CHECK(lt.n_columns == 3 && lt.columns[0].not_null && lt.columns[1].not_null &&
              !lt.columns[2].not_null,
          "pairs NOT NULL");
    CHECK(lt.n_columns == 3 && lt.columns[2].type.kind == TGT_T_VARCHAR &&
              lt.columns[2].type.length == 12 &&
              strcmp(lt.columns[2].sql_type, "character varying(12)") == 0,
          "pairs varchar(12)");
    tgt_live_table_deinit(&lt);
    tgt_table_deinit(&pairs);

    /* a table without columns exists; a view is not a table */
    raw_exec("CREATE TABLE pgcheck.empty ()");
    raw_exec("CREATE VIEW pgcheck.a_view AS SELECT 1 AS x");
    MUST(d->ops->describe_table(d, SCHEMA, "empty", &lt, &err), &err);
    CHECK(lt.exists == 1 && lt.n_columns == 0 && lt.n_keys == 0, "empty table");
    tgt_live_table_deinit(&lt);
    MUST(d->ops->describe_table(d, SCHEMA, "a_view", &lt, &err), &err);
    CHECK(lt.exists == 0, "a view described as a table");
    tgt_live_table_deinit(&lt);

    /* a DDL error names what the driver was doing */
    tgt_table ghost;
    table_new(&ghost, SCHEMA, "ghost");
    add_col(&ghost, "x", "x", TGT_T_TEXT, TGT_COL_DATA, 0);
    CHECK(d->ops->add_column(d, &ghost, 0, &err) == -1, "add_column to a missing table");
    CHECK(err.code == TGT_ERR_LOAD && strcmp(err.sqlstate, "42P01") == 0 &&
              starts_with(err.message, "PostgreSQL: ") &&
              strcmp(err.where, "while adding column \"x\" to \"pgcheck\".\"ghost\"") == 0,
          "add_column error: %s [%s] where %s", err.message, err.sqlstate, err.where);
    tgt_error_init(&err);
    tgt_table_deinit(&ghost);
}

/* The driver's row writer (row.h) against the server: every put reads back
 * as the value the core meant, including what only the encoder knows (t/f,
 * \N, "+00" for a time without an offset, a time moved to UTC, U+0000). */
static void check_row_writer(tgt_driver *d)
{
    tgt_error err;
    tgt_error_init(&err);
    tgt_table t;
    table_new(&t, SCHEMA, "typed");
    static const struct {
        const char *name;
        tgt_type_kind kind;
    } cols[] = {{"b", TGT_T_BOOLEAN},      {"i", TGT_T_BIGINT}, {"n", TGT_T_NUMERIC},
                {"f", TGT_T_DOUBLE},       {"d", TGT_T_DATE},   {"tm", TGT_T_TIME},
                {"ts", TGT_T_TIMESTAMPTZ}, {"j", TGT_T_JSONB},  {"s", TGT_T_TEXT},
                {"x", TGT_T_TEXT},         {"z", TGT_T_TEXT}};
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
        add_col(&t, cols[i].name, cols[i].name, cols[i].kind, TGT_COL_DATA, 0);
    MUST(d->ops->create_table(d, &t, &err), &err);
    mark_exists(&t);

    const tgt_row_ops *rows = d->ops->rows;
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    size_t nuls = 0;
    tgt_row_writer w = {.out = &sb, .table = &t, .column = 0, .nul_count = &nuls};
    tgt_datetime date, tm, ts;
    CHECK(tgt_datetime_parse_date("2024-02-29", 10, &date, NULL), "date");
    CHECK(tgt_datetime_parse_time("02:00:00.25+05:30", 17, &tm, NULL), "time");
    tgt_datetime_time_to_utc(&tm);
    CHECK(tgt_datetime_parse_timestamp("2024-01-01 10:00:00.5", 21, &ts, NULL), "timestamp");
    rows->put_bool(&w, 0);
    rows->put_integer(&w, "-42", 3);
    rows->put_numeric(&w, "NaN", 3);
    rows->put_float(&w, "-Infinity", 9);
    rows->put_date(&w, &date);
    rows->put_time(&w, &tm);
    rows->put_timestamp(&w, &ts);
    rows->put_json(&w, "{\"k\": \"a\\u0000\\t\"}", 18);
    rows->put_json_string(&w, "tab\\t\\\\N \\u00e9\\u0000", 21, 1);
    rows->put_text(&w, "line\nbreak\\", 11);
    rows->put_null(&w);
    rows->end_row(&w);
    CHECK(w.column == t.n_columns, "row writer counted %zu columns", w.column);
    CHECK(nuls == 2, "U+0000 replaced %zu times", nuls);
    CHECK(tgt_sbuf_ok(&sb), "row buffer broken");
    unsigned long n = 0;
    MUST(d->ops->begin(d, &err), &err);
    MUST(load_bytes(d, &t, TGT_WRITE_APPEND, &sb, 7, &n, &err), &err);
    MUST(d->ops->commit(d, &err), &err);
    CHECK(n == 1, "row writer: %lu rows", n);
    CHECK_VALUE("SELECT concat_ws('|', b, i, n, f, d, tm, ts AT TIME ZONE 'UTC', j::text, s, x, "
                "coalesce(z, 'NULL')) "
                "FROM " SCHEMA ".typed",
                "f|-42|NaN|-Infinity|2024-02-29|20:30:00.25|2024-01-01 10:00:00.5|"
                "{\"k\": \"a\xef\xbf\xbd\\t\"}|tab\t\\N \xc3\xa9\xef\xbf\xbd|line\nbreak\\|NULL");
    tgt_sbuf_deinit(&sb);
    tgt_table_deinit(&t);
}

static void check_append(tgt_driver *d)
{
    tgt_error err;
    tgt_error_init(&err);
    tgt_table notes;
    table_new(&notes, SCHEMA, "notes");
    add_col(&notes, "n", "n", TGT_T_BIGINT, TGT_COL_DATA, 0);
    add_col(&notes, "body", "body", TGT_T_TEXT, TGT_COL_DATA, 0);
    MUST(d->ops->create_table(d, &notes, &err), &err);
    mark_exists(&notes);

    static const char *const bodies[] = {
        "tab\there",
        "line\nbreak",
        "back\\slash",
        "\\N",
        "",
        NULL,
        "emoji \xF0\x9F\x98\x80",
        "cr\rlf\r\n",
        "\\t not a tab",
        "quote ' and \" and ;",
    };
    size_t n_bodies = sizeof(bodies) / sizeof(bodies[0]);
    tgt_sbuf rows;
    tgt_sbuf_init(&rows);
    for (size_t i = 0; i < n_bodies; i++) {
        char n[16];
        snprintf(n, sizeof(n), "%zu", i + 1);
        const char *vals[2] = {n, bodies[i]};
        put_row(&rows, 2, vals);
    }
    unsigned long got = 0;
    MUST(d->ops->begin(d, &err), &err);
    MUST(load(d, &notes, TGT_WRITE_APPEND, &rows, 7, &got, &err), &err);
    CHECK(got == n_bodies, "COPY reported %lu rows", got);
    MUST(d->ops->commit(d, &err), &err);

    PGresult *r = PQexec(raw, "SELECT body FROM pgcheck.notes ORDER BY n");
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == (int)n_bodies, "notes row count");
    for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++) {
        const char *want = bodies[i];
        if (want == NULL)
            CHECK(PQgetisnull(r, i, 0), "row %d should be NULL", i + 1);
        else
            CHECK(!PQgetisnull(r, i, 0) && strcmp(PQgetvalue(r, i, 0), want) == 0,
                  "row %d: got [%s]", i + 1, PQgetvalue(r, i, 0));
    }
    PQclear(r);

    /* rollback in the middle of a COPY (half a row sent) */
    tgt_sbuf_reset(&rows);
    tgt_sbuf_append_str(&rows, "100\tpartial");
    MUST(d->ops->begin(d, &err), &err);
    MUST(d->ops->write_begin(d, &notes, TGT_WRITE_APPEND, &err), &err);
    MUST(d->ops->write_data(d, rows.data, rows.len, &err), &err);
    d->ops->rollback(d);
    d->ops->rollback(d); /* again, with no transaction */
    CHECK(PQtransactionStatus(conn_of(d)) == PQTRANS_IDLE, "transaction still open");
    tgt_sbuf_reset(&rows);
    tgt_sbuf_append_str(&rows, "101\tafter rollback\n");
    MUST(d->ops->begin(d, &err), &err);
    MUST(load(d, &notes, TGT_WRITE_APPEND, &rows, 1000, &got, &err), &err);
    MUST(d->ops->commit(d, &err), &err);
    CHECK_VALUE("SELECT count(*) FROM pgcheck.notes WHERE n = 100", "0");
    CHECK_VALUE("SELECT body FROM pgcheck.notes WHERE n = 101", "after rollback");

    /* a failed statement leaves the transaction aborted: COMMIT must say so */
    tgt_table ghost;
    table_new(&ghost, SCHEMA, "ghost");
    add_col(&ghost, "x", "x", TGT_T_TEXT, TGT_COL_DATA, 0);
    mark_exists(&ghost);
    MUST(d->ops->begin(d, &err), &err);
    CHECK(d->ops->write_begin(d, &ghost, TGT_WRITE_APPEND, &err) == -1 &&
              strcmp(err.sqlstate, "42P01") == 0,
          "COPY into a missing table: %s", err.message);
    tgt_error_init(&err);
    CHECK(d->ops->commit(d, &err) == -1 && err.code == TGT_ERR_LOAD,
          "commit of an aborted transaction succeeded");
    tgt_error_init(&err);
    d->ops->rollback(d);
    tgt_table_deinit(&ghost);

    tgt_sbuf_deinit(&rows);
    tgt_table_deinit(&notes);
}

/* alter_column_types for one column. */
static int alter_one(tgt_driver *d, const tgt_table *t, size_t col, tgt_error *err)
{
    return d->ops->alter_column_types(d, t, &col, 1, err);
}

static void check_alter_add(tgt_driver *d, tgt_table *items)
{
    tgt_error err;
    tgt_error_init(&err);
    tgt_sbuf rows;
    tgt_sbuf_init(&rows);
    const char *row[] = {"1",          "x",           "9007199254740993",
                         "{\"a\": 1}", "{\"b\":  2}", "2024-01-02 03:04:05+00"};
    put_row(&rows, 6, row);
    unsigned long got = 0;
    MUST(d->ops->begin(d, &err), &err);
    MUST(load(d, items, TGT_WRITE_APPEND, &rows, 5, &got, &err), &err);
    MUST(d->ops->commit(d, &err), &err);
    CHECK(got == 1, "rows %lu", got);

    /* bigint -> numeric keeps the value exactly */
    items->columns[2].type = tgt_type_make(TGT_T_NUMERIC);
    items->shape_version++;
    MUST(alter_one(d, items, 2, &err), &err);
    items->columns[2].live_type = items->columns[2].type;
    CHECK_VALUE("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = 'pgcheck.items'::regclass AND attname = 'amount'",
                "numeric");
    CHECK_VALUE("SELECT amount::text FROM pgcheck.items WHERE id = 1", "9007199254740993");
    CHECK(PQtransactionStatus(conn_of(d)) == PQTRANS_IDLE, "alter left a transaction open");
    /* already numeric: nothing to do, no error */
    MUST(alter_one(d, items, 2, &err), &err);
    /* wider live type than wanted (text live, bigint asked): kept, no error */
    items->columns[1].type = tgt_type_make(TGT_T_BIGINT);
    MUST(alter_one(d, items, 1, &err), &err);
    items->columns[1].type = tgt_type_make(TGT_T_TEXT);
    CHECK_VALUE("SELECT name FROM pgcheck.items WHERE id = 1", "x");

    tgt_live_table lt;
    MUST(d->ops->describe_table(d, SCHEMA, "items", &lt, &err), &err);
    const tgt_live_column *c = tgt_live_table_find(&lt, "amount");
    CHECK(c != NULL && c->type.kind == TGT_T_NUMERIC, "amount not numeric after alter");
    tgt_live_table_deinit(&lt);

    /* add a column, twice (IF NOT EXISTS) */
    size_t extra = add_col(items, "extra", "ex.tra", TGT_T_NUMERIC, TGT_COL_DATA, 0);
    items->shape_version++;
    MUST(d->ops->add_column(d, items, extra, &err), &err);
    MUST(d->ops->add_column(d, items, extra, &err), &err);
    items->columns[extra].exists = 1;
    MUST(d->ops->describe_table(d, SCHEMA, "items", &lt, &err), &err);
    c = tgt_live_table_find(&lt, "extra");
    CHECK(lt.n_columns == 7 && c != NULL && c->type.kind == TGT_T_NUMERIC && !c->not_null,
          "extra column");
    tgt_live_table_deinit(&lt);
    CHECK_VALUE("SELECT col_description('pgcheck.items'::regclass, 7)", "source: ex.tra");
    CHECK_VALUE("SELECT count(*) FROM pgcheck.items WHERE extra IS NULL", "1");

    raw_exec("TRUNCATE pgcheck.items");
    tgt_sbuf_deinit(&rows);
}

/* Several columns in one alter_column_types: every narrower one changes, in
 * one table rewrite, values kept; a column already wider is left alone. */
static void check_alter_many(tgt_driver *d)
{
    tgt_error err;
    tgt_error_init(&err);
    tgt_table t;
    table_new(&t, SCHEMA, "widen");
    add_col(&t, "id", "id", TGT_T_BIGINT, TGT_COL_DATA, 1);
    add_col(&t, "a", "a", TGT_T_BIGINT, TGT_COL_DATA, 0);
    add_col(&t, "b", "b", TGT_T_BIGINT, TGT_COL_DATA, 0);
    add_col(&t, "c", "c", TGT_T_DATE, TGT_COL_DATA, 0);
    add_col(&t, "d", "d", TGT_T_TEXT, TGT_COL_DATA, 0);
    MUST(d->ops->create_table(d, &t, &err), &err);
    mark_exists(&t);
    raw_exec("INSERT INTO pgcheck.widen VALUES (1, 9007199254740993, -5, '2024-02-29', '7')");
    char *before = raw_value("SELECT pg_relation_filenode('pgcheck.widen')::text");
    t.columns[1].type = tgt_type_make(TGT_T_NUMERIC);
    t.columns[2].type = tgt_type_make(TGT_T_TEXT);
    t.columns[3].type = tgt_type_make(TGT_T_TIMESTAMPTZ);
    t.columns[4].type = tgt_type_make(TGT_T_BIGINT); /* narrower than the live text: kept */
    t.shape_version++;
    const size_t cols[] = {1, 2, 3, 4};
    MUST(d->ops->alter_column_types(d, &t, cols, 4, &err), &err);
    CHECK(PQtransactionStatus(conn_of(d)) == PQTRANS_IDLE, "alter left a transaction open");
    CHECK_VALUE("SELECT string_agg(format_type(atttypid, atttypmod), ',' ORDER BY attnum) "
                "FROM pg_attribute WHERE attrelid = 'pgcheck.widen'::regclass AND attnum > 1",
                "numeric,text,timestamp with time zone,text");
    CHECK_VALUE("SELECT a::text || ' ' || b || ' ' || (c AT TIME ZONE 'UTC')::date || ' ' || d "
                "FROM pgcheck.widen",
                "9007199254740993 -5 2024-02-29 7");
    char *after = raw_value("SELECT pg_relation_filenode('pgcheck.widen')::text");
    CHECK(before != NULL && after != NULL && strcmp(before, after) != 0, "table not rewritten");
    free(before);
    free(after);
    /* all of them again: nothing left to change, no error, no rewrite */
    before = raw_value("SELECT pg_relation_filenode('pgcheck.widen')::text");
    MUST(d->ops->alter_column_types(d, &t, cols, 4, &err), &err);
    MUST(d->ops->alter_column_types(d, &t, cols, 0, &err), &err);
    after = raw_value("SELECT pg_relation_filenode('pgcheck.widen')::text");
    CHECK(before != NULL && after != NULL && strcmp(before, after) == 0,
          "a no-op alter rewrote the table");
    free(before);
    free(after);
    /* a missing column fails the whole change: the other column keeps its type */
    raw_exec("ALTER TABLE pgcheck.widen DROP COLUMN d");
    t.columns[4].type = tgt_type_make(TGT_T_TEXT);
    t.columns[1].type = tgt_type_make(TGT_T_TEXT);
    CHECK(d->ops->alter_column_types(d, &t, (const size_t[]){1, 4}, 2, &err) == -1,
          "altering a missing column succeeded");
    tgt_error_init(&err);
    CHECK(PQtransactionStatus(conn_of(d)) == PQTRANS_IDLE, "failed alter left a transaction open");
    CHECK_VALUE("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = 'pgcheck.widen'::regclass AND attname = 'a'",
                "numeric");
    raw_exec("DROP TABLE pgcheck.widen");
    tgt_table_deinit(&t);
}

/* One staged row of items: its first seven columns, NULL in any later ones,
 * then the sequence number and the presence mask (NULL: every column). */
static void stage_item(tgt_sbuf *rows, const tgt_table *items, const char *id, const char *name,
                       const char *amount, const char *loaded_at, const char *seq)
{
    const char *vals[16] = {id,        name,  amount, "{\"k\": [1, 2]}", "{\"j\":  \"x\"}",
                            loaded_at, "1.50"};
    size_t n = items->n_columns;
    for (size_t i = 7; i < n && i < 14; i++)
        vals[i] = NULL;
    vals[n] = seq;
    vals[n + 1] = NULL;
    put_row(rows, n + 2, vals);
}

/* "t" when t's staging table exists in this session, "f" when not. */
static char *stage_exists(tgt_driver *d, const tgt_table *t)
{
    pg_table_cache *tc = pg_cache_find((pg_driver *)d, t->schema, t->name);
    if (tc == NULL)
        return NULL;
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT to_regclass('pg_temp.%s') IS NOT NULL", tc->stage);
    return conn_value(conn_of(d), sql);
}

static void check_merge(tgt_driver *d, tgt_table *items)
{
    tgt_error err;
    tgt_error_init(&err);
    tgt_sbuf rows;
    tgt_sbuf_init(&rows);
    unsigned long got = 0, changed = 0;
    const char *t1 = "2024-01-01 00:00:00+00", *t2 = "2024-06-01 00:00:00+00";

    /* nothing staged yet: merge is a no-op */
    MUST(d->ops->begin(d, &err), &err);
    MUST(d->ops->merge(d, items, 0, &changed, &err), &err);
    CHECK(changed == 0, "merge with nothing staged changed %lu", changed);
    MUST(d->ops->commit(d, &err), &err);

    /* batch 1: three versions of id 1 in one batch, newest sequence wins */
    stage_item(&rows, items, "1", "a", "10", t1, "1");
    stage_item(&rows, items, "1", "c", "30", t1, "3");
    stage_item(&rows, items, "1", "b", "20", t1, "2");
    stage_item(&rows, items, "2", "x", "40", t1, "4");
    stage_item(&rows, items, "3", "y", "50", t1, "5");
    MUST(d->ops->begin(d, &err), &err);
    MUST(load(d, items, TGT_WRITE_STAGING, &rows, 13, &got, &err), &err);
    CHECK(got == 5, "staged %lu rows", got);
    MUST(d->ops->merge(d, items, 0, &changed, &err), &err);
    CHECK(changed == 3, "batch 1 changed %lu", changed);
    MUST(d->ops->commit(d, &err), &err);
    CHECK_VALUE("SELECT name || ' ' || amount FROM pgcheck.items WHERE id = 1", "c 30");
    CHECK_VALUE("SELECT count(*) FROM pgcheck.items", "3");
    /* the stage lives only in its transaction (ON COMMIT DROP): thousands of
     * streams must not leave thousands of temporary tables behind */
    char *left = stage_exists(d, items);
    CHECK(left != NULL && strcmp(left, "f") == 0, "stage not dropped at commit: %s",
          left ? left : "?");
    free(left);
    /* same shape next time: the COPY text is not rebuilt */
    pg_table_cache *tc = pg_cache_find((pg_driver *)d, SCHEMA, "items");
    const char *copy_text = tc != NULL ? tc->copy_sql[TGT_WRITE_STAGING] : NULL;

    /* batch 2: id 2 unchanged (only the receive time differs), id 3 changed,
     * id 4 new: two rows changed, id 2 keeps its old receive time */
    tgt_sbuf_reset(&rows);
    stage_item(&rows, items, "2", "x", "40", t2, "1");
    stage_item(&rows, items, "3", "z", "50", t2, "2");
    stage_item(&rows, items, "4", "w", "60", t2, "3");
    MUST(d->ops->begin(d, &err), &err);
    MUST(load(d, items, TGT_WRITE_STAGING, &rows, 4096, &got, &err), &err);
    MUST(d->ops->merge(d, items, 0, &changed, &err), &err);
    CHECK(changed == 2, "batch 2 changed %lu (want 2: unchanged row counted?)", changed);
    MUST(d->ops->commit(d, &err), &err);
    CHECK_VALUE("SELECT __loaded_at::text FROM pgcheck.items WHERE id = 2",
                "2024-01-01 00:00:00+00");
    CHECK_VALUE("SELECT name || ' ' || __loaded_at::text FROM pgcheck.items WHERE id = 3",
                "z 2024-06-01 00:00:00+00");
    CHECK_VALUE("SELECT count(*) FROM pgcheck.items", "4");
    CHECK(copy_text != NULL && tc->copy_sql[TGT_WRITE_STAGING] == copy_text,
          "COPY statement rebuilt for the same shape");
    left = stage_exists(d, items);
    CHECK(left != NULL && strcmp(left, "f") == 0, "stage not dropped at the second commit: %s",
          left ? left : "?");
    free(left);

    /* the shape changes: the stage must follow */
    size_t note = add_col(items, "note", "note", TGT_T_TEXT, TGT_COL_DATA, 0);
    items->shape_version++;
    MUST(d->ops->add_column(d, items, note, &err), &err);
    items->columns[note].exists = 1;
    tgt_sbuf_reset(&rows);
    const char *vals[] = {
        "4", "w", "60", "{\"k\": [1, 2]}", "{\"j\":  \"x\"}", t2, "1.50", "a note\twith tab",
        "1", NULL};
    put_row(&rows, 10, vals);
    MUST(d->ops->begin(d, &err), &err);
    MUST(load(d, items, TGT_WRITE_STAGING, &rows, 4096, &got, &err), &err);
    MUST(d->ops->merge(d, items, 0, &changed, &err), &err);
    CHECK(changed == 1, "batch 3 changed %lu", changed);
    MUST(d->ops->commit(d, &err), &err);
    CHECK_VALUE("SELECT note FROM pgcheck.items WHERE id = 4", "a note\twith tab");

    /* partial rows (presence masks over id name amount j j __loaded_at extra
     * note): per key and column the newest row that carried it wins; a
     * column no row carried keeps its stored value (NULL for a new key);
     * 60 -> 60.0 is a change of digits.  The same batch again changes
     * nothing. */
    const char *p1[] = {"4", "w2", NULL, NULL, NULL, t2, NULL, NULL, "1", "11000100"};
    const char *p2[] = {"4", NULL, "60.0", NULL, NULL, t2, NULL, NULL, "2", "10100100"};
    const char *p3[] = {"9", "nine", NULL, NULL, NULL, t2, NULL, NULL, "3", "11000100"};
    for (int pass = 0; pass < 2; pass++) {
        tgt_sbuf_reset(&rows);
        put_row(&rows, 10, p1);
        put_row(&rows, 10, p2);
        put_row(&rows, 10, p3);
        MUST(d->ops->begin(d, &err), &err);
        MUST(load(d, items, TGT_WRITE_STAGING, &rows, 4096, &got, &err), &err);
        MUST(d->ops->merge(d, items, 1, &changed, &err), &err);
        MUST(d->ops->commit(d, &err), &err);
        CHECK(changed == (pass == 0 ? 2u : 0u), "partial batch %d changed %lu", pass, changed);
    }
    CHECK_VALUE("SELECT name || ' ' || amount || ' ' || note FROM pgcheck.items WHERE id = 4",
                "w2 60.0 a note\twith tab");
    CHECK_VALUE("SELECT name || ' ' || coalesce(amount::text, 'null') FROM pgcheck.items "
                "WHERE id = 9",
                "nine null");

    /* a key-only table (plus receive time): DO NOTHING */
    tgt_table keyonly;
    table_new(&keyonly, SCHEMA, "keyonly");
    add_col(&keyonly, "id", "id", TGT_T_TEXT, TGT_COL_DATA, 1);
    add_col(&keyonly, "__loaded_at", NULL, TGT_T_TIMESTAMPTZ, TGT_COL_LOADED_AT, 0);
    MUST(d->ops->create_table(d, &keyonly, &err), &err);
    mark_exists(&keyonly);
    tgt_sbuf_reset(&rows);
    tgt_sbuf_append_str(&rows, "a\t2024-01-01 00:00:00+00\t1\t\\N\n"
                               "a\t2024-01-02 00:00:00+00\t2\t\\N\n"
                               "b\t2024-01-01 00:00:00+00\t3\t\\N\n");
    MUST(d->ops->begin(d, &err), &err);
    MUST(load(d, &keyonly, TGT_WRITE_STAGING, &rows, 4096, &got, &err), &err);
    MUST(d->ops->merge(d, &keyonly, 0, &changed, &err), &err);
    CHECK(changed == 2, "keyonly changed %lu", changed);
    MUST(d->ops->commit(d, &err), &err);
    tgt_sbuf_reset(&rows);
    tgt_sbuf_append_str(&rows, "a\t2024-02-01 00:00:00+00\t1\t\\N\n"
                               "c\t2024-02-01 00:00:00+00\t2\t\\N\n");
    MUST(d->ops->begin(d, &err), &err);
    MUST(load(d, &keyonly, TGT_WRITE_STAGING, &rows, 4096, &got, &err), &err);
    MUST(d->ops->merge(d, &keyonly, 0, &changed, &err), &err);
    CHECK(changed == 1, "keyonly second batch changed %lu", changed);
    MUST(d->ops->commit(d, &err), &err);
    CHECK_VALUE("SELECT string_agg(id, ',' ORDER BY id) FROM pgcheck.keyonly", "a,b,c");
    tgt_table_deinit(&keyonly);

    /* a stage created inside a rolled-back transaction is gone: re-created */
    tgt_table fresh;
    table_new(&fresh, SCHEMA, "fresh");
    add_col(&fresh, "id", "id", TGT_T_BIGINT, TGT_COL_DATA, 1);
    add_col(&fresh, "v", "v", TGT_T_TEXT, TGT_COL_DATA, 0);
    MUST(d->ops->create_table(d, &fresh, &err), &err);
    mark_exists(&fresh);
    tgt_sbuf_reset(&rows);
    tgt_sbuf_append_str(&rows, "1\tone\t1\t\\N\n");
    MUST(d->ops->begin(d, &err), &err);
    MUST(load(d, &fresh, TGT_WRITE_STAGING, &rows, 4096, &got, &err), &err);
    d->ops->rollback(d);
    MUST(d->ops->begin(d, &err), &err);
    MUST(load(d, &fresh, TGT_WRITE_STAGING, &rows, 4096, &got, &err), &err);
    MUST(d->ops->merge(d, &fresh, 0, &changed, &err), &err);
    MUST(d->ops->commit(d, &err), &err);
    CHECK(changed == 1, "fresh changed %lu", changed);
    CHECK_VALUE("SELECT v FROM pgcheck.fresh WHERE id = 1", "one");
    /* rollback during an open staging COPY */
    MUST(d->ops->begin(d, &err), &err);
    MUST(d->ops->write_begin(d, &fresh, TGT_WRITE_STAGING, &err), &err);
    MUST(d->ops->write_data(d, "2\ttwo\t", 6, &err), &err);
    d->ops->rollback(d);
    tgt_sbuf_reset(&rows);
    tgt_sbuf_append_str(&rows, "3\tthree\t1\t\\N\n");
    MUST(d->ops->begin(d, &err), &err);
    MUST(load(d, &fresh, TGT_WRITE_STAGING, &rows, 4096, &got, &err), &err);
    MUST(d->ops->merge(d, &fresh, 0, &changed, &err), &err);
    MUST(d->ops->commit(d, &err), &err);
    CHECK_VALUE("SELECT string_agg(v, ',' ORDER BY id) FROM pgcheck.fresh", "one,three");
    tgt_table_deinit(&fresh);

    tgt_sbuf_deinit(&rows);
}

static void check_copy_error(tgt_driver *d, tgt_table *items)
{
    tgt_error err;
    tgt_error_init(&err);
    tgt_sbuf rows;
    tgt_sbuf_init(&rows);
    const char *good[] = {"50", "ok", "1", NULL, NULL, NULL, NULL, NULL};
    const char *bad[] = {"51", "bad", "notanumber", NULL, NULL, NULL, NULL, NULL};
    put_row(&rows, 8, good);
    put_row(&rows, 8, bad);
    put_row(&rows, 8, good);
    unsigned long got = 12345;
    MUST(d->ops->begin(d, &err), &err);
    int rc = load(d, items, TGT_WRITE_APPEND, &rows, 4096, &got, &err);
    CHECK(rc == -1, "a bad value was loaded");
    CHECK(err.code == TGT_ERR_LOAD, "code %d", (int)err.code);
    /* text that is no number: COPY text's parser refuses it, and so does
     * the binary input (the bytes do not make a numeric) */
    int binary = tgt_pg_binary_table(items);
    CHECK(strcmp(err.sqlstate, binary ? "22P03" : "22P02") == 0, "sqlstate %s", err.sqlstate);
    CHECK(starts_with(err.message, binary ? "PostgreSQL: invalid sign in external \"numeric\""
                                          : "PostgreSQL: invalid input syntax for type numeric"),
          "message %s", err.message);
    CHECK(strstr(err.where, "COPY items, line 2, column amount") != NULL, "where %s", err.where);
    CHECK(got == 12345, "rows reported on failure");
    d->ops->rollback(d);
    CHECK_VALUE("SELECT count(*) FROM pgcheck.items WHERE id IN (50, 51)", "0");
    CHECK(PQtransactionStatus(conn_of(d)) == PQTRANS_IDLE, "transaction left open");

    /* the same through a staging table, then the driver is usable again */
    tgt_error_init(&err);
    MUST(d->ops->begin(d, &err), &err);
    tgt_sbuf_reset(&rows);
    tgt_sbuf_append_str(&rows, "52\tok\tnope\t\\N\t\\N\t\\N\t\\N\t\\N\t1\t\\N\n");
    rc = load(d, items, TGT_WRITE_STAGING, &rows, 4096, &got, &err);
    CHECK(rc == -1 && strstr(err.where, "line 1, column amount") != NULL, "staging error where %s",
          err.where);
    d->ops->rollback(d);
    tgt_error_init(&err);
    tgt_sbuf_reset(&rows);
    stage_item(&rows, items, "53", "fine", "7", "2024-01-01 00:00:00+00", "1");
    MUST(d->ops->begin(d, &err), &err);
    MUST(load(d, items, TGT_WRITE_STAGING, &rows, 4096, &got, &err), &err);
    unsigned long changed = 0;
    MUST(d->ops->merge(d, items, 0, &changed, &err), &err);
    MUST(d->ops->commit(d, &err), &err);
    CHECK(changed == 1, "after error changed %lu", changed);

    /* misuse is reported, not crashed on */
    CHECK(d->ops->write_data(d, "x", 1, &err) == -1 && err.code == TGT_ERR_INTERNAL,
          "write_data without write_begin");
    tgt_error_init(&err);
    CHECK(d->ops->write_end(d, &got, &err) == -1 && err.code == TGT_ERR_INTERNAL,
          "write_end without write_begin");
    tgt_error_init(&err);
    tgt_sbuf_deinit(&rows);
}

/* Odd schema/table/column names are quoted everywhere. */
static void check_quoting(tgt_driver *d)
{
    tgt_error err;
    tgt_error_init(&err);
    const char *schema = "Odd \"Sch\" ema";
    tgt_table t;
    table_new(&t, schema, "ta\"ble\\x;");
    add_col(&t, "co\"l", "co\"l", TGT_T_BIGINT, TGT_COL_DATA, 1);
    add_col(&t, "Other Col", "Other Col", TGT_T_BIGINT, TGT_COL_DATA, 0);
    add_col(&t, "j", "j", TGT_T_JSON, TGT_COL_DATA, 0);
    MUST(d->ops->ensure_schema(d, schema, &err), &err);
    MUST(d->ops->create_table(d, &t, &err), &err);
    mark_exists(&t);
    tgt_live_table lt;
    MUST(d->ops->describe_table(d, schema, t.name, &lt, &err), &err);
    CHECK(lt.exists && lt.n_columns == 3 && lt.n_keys == 1 && strcmp(lt.key[0], "co\"l") == 0,
          "odd table described");
    tgt_live_table_deinit(&lt);
    tgt_sbuf rows;
    tgt_sbuf_init(&rows);
    tgt_sbuf_append_str(&rows, "1\t10\t{\"a\":1}\t1\t\\N\n1\t11\t{\"a\":2}\t2\t\\N\n");
    unsigned long got = 0, changed = 0;
    MUST(d->ops->begin(d, &err), &err);
    MUST(load(d, &t, TGT_WRITE_STAGING, &rows, 4096, &got, &err), &err);
    MUST(d->ops->merge(d, &t, 0, &changed, &err), &err);
    MUST(d->ops->commit(d, &err), &err);
    CHECK(changed == 1, "odd merge changed %lu", changed);
    t.columns[1].type = tgt_type_make(TGT_T_NUMERIC);
    t.shape_version++;
    MUST(alter_one(d, &t, 1, &err), &err);
    t.columns[1].live_type = t.columns[1].type;
    size_t c = add_col(&t, "new\"c", NULL, TGT_T_TEXT, TGT_COL_DATA, 0);
    t.shape_version++;
    MUST(d->ops->add_column(d, &t, c, &err), &err);
    t.columns[c].exists = 1;
    tgt_sbuf_reset(&rows);
    tgt_sbuf_append_str(&rows, "1\t12.5\t{\"a\":2}\tnew\t1\t\\N\n");
    MUST(d->ops->begin(d, &err), &err);
    MUST(load(d, &t, TGT_WRITE_STAGING, &rows, 4096, &got, &err), &err);
    MUST(d->ops->merge(d, &t, 0, &changed, &err), &err);
    MUST(d->ops->commit(d, &err), &err);
    CHECK_VALUE("SELECT \"Other Col\"::text || ' ' || \"new\"\"c\" "
                "FROM \"Odd \"\"Sch\"\" ema\".\"ta\"\"ble\\x;\"",
                "12.5 new");
    tgt_sbuf_deinit(&rows);
    tgt_table_deinit(&t);
}

typedef struct race_arg {
    tgt_driver *d;
    const tgt_table *t;
    const char *schema; /* ensure_schema when set, else create_table */
    pthread_barrier_t *start;
    int rc;
    tgt_error err;
} race_arg;

static void *race_run(void *p)
{
    race_arg *a = p;
    tgt_error_init(&a->err);
    if (a->start != NULL)
        pthread_barrier_wait(a->start);
    if (a->schema != NULL)
        a->rc = a->d->ops->ensure_schema(a->d, a->schema, &a->err);
    else
        a->rc = a->d->ops->create_table(a->d, a->t, &a->err);
    return NULL;
}

/* Waits until some backend of the test database waits for a lock. */
static int wait_for_lock_waiter(void)
{
    for (int i = 0; i < 200; i++) {
        char *n = raw_value("SELECT count(*) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND wait_event_type = 'Lock'");
        int waiting = n != NULL && strcmp(n, "0") != 0;
        free(n);
        if (waiting)
            return 1;
        sleep_ms(50);
    }
    return 0;
}

static void check_concurrency(tgt_driver *d, tgt_driver *d2)
{
    /* the other loader's CREATE TABLE is uncommitted while ours runs */
    tgt_table race;
    table_new(&race, SCHEMA, "race");
    add_col(&race, "id", "id", TGT_T_BIGINT, TGT_COL_DATA, 1);
    add_col(&race, "v", "v", TGT_T_TEXT, TGT_COL_DATA, 0);
    raw_exec("BEGIN");
    raw_exec("CREATE TABLE pgcheck.race (id bigint PRIMARY KEY, v text)");
    race_arg a = {.d = d2, .t = &race};
    pthread_t th;
    pthread_create(&th, NULL, race_run, &a);
    int waited = wait_for_lock_waiter();
    raw_exec("COMMIT");
    pthread_join(th, NULL);
    CHECK(waited, "create_table did not wait for the concurrent creator");
    CHECK(a.rc == 0, "create_table lost the race: %s [%s]", a.err.message, a.err.sqlstate);
    CHECK(PQtransactionStatus(conn_of(d2)) == PQTRANS_IDLE, "race left a transaction open");

    /* same for the schema */
    raw_exec("BEGIN");
    raw_exec("CREATE SCHEMA race_schema");
    race_arg s = {.d = d2, .schema = "race_schema"};
    pthread_create(&th, NULL, race_run, &s);
    waited = wait_for_lock_waiter();
    raw_exec("COMMIT");
    pthread_join(th, NULL);
    CHECK(waited, "ensure_schema did not wait for the concurrent creator");
    CHECK(s.rc == 0, "ensure_schema lost the race: %s [%s]", s.err.message, s.err.sqlstate);

    /* two drivers at once, several times */
    for (int round = 0; round < 20; round++) {
        char name[32];
        snprintf(name, sizeof(name), "race_%d", round);
        tgt_table r;
        table_new(&r, SCHEMA, name);
        add_col(&r, "id", "id", TGT_T_BIGINT, TGT_COL_DATA, 1);
        add_col(&r, "v", "v", TGT_T_TEXT, TGT_COL_DATA, 0);
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, 2);
        race_arg x = {.d = d, .t = &r, .start = &bar}, y = {.d = d2, .t = &r, .start = &bar};
        pthread_t tx, ty;
        pthread_create(&tx, NULL, race_run, &x);
        pthread_create(&ty, NULL, race_run, &y);
        pthread_join(tx, NULL);
        pthread_join(ty, NULL);
        pthread_barrier_destroy(&bar);
        CHECK(x.rc == 0 && y.rc == 0, "round %d: %s [%s] / %s [%s]", round, x.err.message,
              x.err.sqlstate, y.err.message, y.err.sqlstate);
        tgt_table_deinit(&r);
    }
    tgt_live_table lt;
    tgt_error err;
    tgt_error_init(&err);
    /* "already exists" without a table behind it is a real clash, not a race */
    raw_exec("CREATE TYPE pgcheck.clash AS ENUM ('a')");
    tgt_table clash;
    table_new(&clash, SCHEMA, "clash");
    add_col(&clash, "id", "id", TGT_T_BIGINT, TGT_COL_DATA, 1);
    CHECK(d->ops->create_table(d, &clash, &err) == -1 && strcmp(err.sqlstate, "42710") == 0,
          "create_table over a type of the same name: %s [%s]", err.message, err.sqlstate);
    tgt_error_init(&err);
    tgt_table_deinit(&clash);
    MUST(d2->ops->describe_table(d2, SCHEMA, "race", &lt, &err), &err);
    CHECK(lt.exists && lt.n_keys == 1, "race table");
    tgt_live_table_deinit(&lt);
    tgt_table_deinit(&race);
}

/* begin learns the transaction's id; commit_status (asked from another
 * connection, as after a reconnect) tells committed, rolled back and still
 * running apart; lock_for_merge takes SHARE UPDATE EXCLUSIVE on each table;
 * tables_per_transaction follows the server's lock settings. */
static void check_transactions(tgt_driver *d, tgt_driver *d2, tgt_table *items)
{
    tgt_error err;
    tgt_error_init(&err);
    pg_driver *p = (pg_driver *)d, *p2 = (pg_driver *)d2;
    tgt_txn_status st = TGT_TXN_IN_PROGRESS;

    MUST(d->ops->begin(d, &err), &err);
    CHECK(p->xid[0] != '\0', "begin did not learn the transaction id");
    memcpy(p2->xid, p->xid, sizeof(p2->xid));
    MUST(d2->ops->commit_status(d2, &st, &err), &err);
    CHECK(st == TGT_TXN_IN_PROGRESS, "open transaction: status %d", (int)st);

    tgt_table other;
    table_new(&other, SCHEMA, "aaa_other");
    add_col(&other, "id", "id", TGT_T_BIGINT, TGT_COL_DATA, 1);
    MUST(d2->ops->create_table(d2, &other, &err), &err);
    const tgt_table *lock[2] = {items, &other};
    MUST(d->ops->lock_for_merge(d, lock, 2, &err), &err);
    CHECK(lock[0] == &other && lock[1] == items, "lock_for_merge did not sort by name");
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(r, ' ' ORDER BY r) FROM (SELECT relation::regclass::text AS r "
             "FROM pg_locks WHERE pid = %d AND mode = 'ShareUpdateExclusiveLock') l",
             PQbackendPID(conn_of(d)));
    char *v = raw_value(sql);
    CHECK(v != NULL && strcmp(v, "pgcheck.aaa_other pgcheck.items") == 0, "merge locks: %s",
          v ? v : "?");
    free(v);

    MUST(d->ops->commit(d, &err), &err);
    memcpy(p2->xid, p->xid, sizeof(p2->xid));
    MUST(d2->ops->commit_status(d2, &st, &err), &err);
    CHECK(st == TGT_TXN_COMMITTED, "committed transaction: status %d", (int)st);

    MUST(d->ops->begin(d, &err), &err);
    d->ops->rollback(d);
    memcpy(p2->xid, p->xid, sizeof(p2->xid));
    MUST(d2->ops->commit_status(d2, &st, &err), &err);
    CHECK(st == TGT_TXN_ABORTED, "rolled back transaction: status %d", (int)st);

    v = raw_value("SELECT current_setting('max_locks_per_transaction')::int * "
                  "(current_setting('max_connections')::int + "
                  "current_setting('max_prepared_transactions')::int) / 64");
    size_t want = v != NULL ? strtoul(v, NULL, 10) : 0;
    free(v);
    CHECK(d->ops->tables_per_transaction(d) == want, "tables_per_transaction %zu, want %zu",
          d->ops->tables_per_transaction(d), want);
    tgt_table_deinit(&other);
}

static void kill_backend(tgt_driver *d)
{
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d, 5000)", PQbackendPID(conn_of(d)));
    char *v = raw_value(sql);
    CHECK(v != NULL && strcmp(v, "t") == 0, "could not terminate the driver's backend");
    free(v);
}

static void check_lost_connection(tgt_table *items)
{
    tgt_error err;
    tgt_error_init(&err);
    tgt_driver *d = connect_driver(NULL);
    kill_backend(d);
    CHECK(d->ops->begin(d, &err) == -1, "begin on a dead connection succeeded");
    CHECK(err.code == TGT_ERR_LOAD && starts_with(err.message, "connection to PostgreSQL lost: "),
          "lost connection message: %s", err.message);
    d->ops->rollback(d);
    d->ops->rollback(d);
    d->ops->free(d);

    /* lost in the middle of a COPY */
    tgt_error_init(&err);
    d = connect_driver(NULL);
    MUST(d->ops->begin(d, &err), &err);
    MUST(d->ops->write_begin(d, items, TGT_WRITE_STAGING, &err), &err);
    kill_backend(d);
    sleep_ms(100);
    tgt_sbuf rows;
    tgt_sbuf_init(&rows);
    stage_item(&rows, items, "60", "n", "1", "2024-01-01 00:00:00+00", "1");
    int rc = 0;
    for (int i = 0; i < 1000 && rc == 0; i++)
        rc = d->ops->write_data(d, rows.data, rows.len, &err);
    if (rc == 0)
        rc = d->ops->write_end(d, NULL, &err);
    CHECK(rc == -1, "COPY on a dead connection succeeded");
    CHECK(starts_with(err.message, "connection to PostgreSQL lost: "), "lost during COPY: %s",
          err.message);
    d->ops->rollback(d);
    d->ops->free(d);
    tgt_sbuf_deinit(&rows);
}

int main(void)
{
    test_db = getenv("TEST_DB");
    if (test_db == NULL || *test_db == '\0') {
        fprintf(stderr, "pg_driver_check: set TEST_DB (and PGHOST/PGPORT/PGUSER)\n");
        return 2;
    }
    if (getenv("PG_DRIVER_CHECK_QUIET") != NULL &&
        strcmp(getenv("PG_DRIVER_CHECK_QUIET"), "1") == 0)
        tgt_log_set_level(TGT_LOG_WARN);
    raw = raw_connect();
    raw_exec("DROP SCHEMA IF EXISTS pgcheck CASCADE");
    raw_exec("DROP SCHEMA IF EXISTS race_schema CASCADE");
    raw_exec("DROP SCHEMA IF EXISTS \"Odd \"\"Sch\"\" ema\" CASCADE");

    check_connect_failure();
    char conninfo[300];
    snprintf(conninfo, sizeof(conninfo), "dbname='%s'", test_db);
    tgt_driver *d = connect_driver(NULL);
    tgt_driver *d2 = connect_driver(conninfo);
    check_session(d, d2);

    tgt_table items;
    build_items(&items);
    check_ddl(d, &items);
    check_append(d);
    check_row_writer(d);
    check_alter_add(d, &items);
    check_alter_many(d);
    check_merge(d, &items);
    check_copy_error(d, &items);
    check_quoting(d);
    check_concurrency(d, d2);
    check_transactions(d, d2, &items);
    check_lost_connection(&items);

    tgt_table_deinit(&items);
    const tgt_driver_ops *ops = d->ops;
    ops->free(d);
    d2->ops->free(d2);
    ops->free(NULL);
    PQfinish(raw);

    fprintf(stderr, "pg_driver_check: %d checks, %d failed\n", n_checks, n_failed);
    return n_failed == 0 ? 0 : 1;
}

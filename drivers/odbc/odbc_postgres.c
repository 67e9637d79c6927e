/*
 * odbc_postgres.c - the PostgreSQL dialect of the ODBC driver, written
 * against psqlODBC (Debian odbc-postgresql; docs/warehouses.md says what was
 * checked): the dialect table, the catalog reads and the DDL.  Staging,
 * merge and ACTIVATE_VERSION are odbc_postgres_merge.c.  It proves the ODBC
 * path against the same server, and so the same checks, as
 * drivers/postgres, which stays the fast way to load PostgreSQL (COPY).
 *
 * Shared with drivers/postgres, which this dialect never calls into
 * otherwise: the limits (pg_caps.c) and the type spellings both ways
 * (pg_types.c), so a table one driver created reads back the same through
 * the other.  The SQL is the libpq driver's, with `?` parameters:
 *   - the session runs in UTC with ISO dates and standard strings
 *     (session_sql): the row writer sends timestamps as UTC wall-clock text;
 *   - DDL runs in autocommit, each string one implicit transaction; the
 *     alterations that re-read the catalog under a lock open an explicit
 *     BEGIN ... COMMIT; column source paths are column comments (literals:
 *     COMMENT ON takes no parameters).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "odbc_internal.h"
#include "odbc_postgres.h"
#include "postgres/pg_caps.h"
#include "postgres/pg_types.h"
#include "utf8.h"

#define TYPE_SQL_MAX 64

/* ---- small helpers --------------------------------------------------------- */

/* A string literal: standard_conforming_strings is on (session_sql), so
 * only the quote is doubled. */
static void append_literal(tgt_sbuf *sb, const char *s)
{
    tgt_sbuf_append_char(sb, '\'');
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '\'')
            tgt_sbuf_append_char(sb, '\'');
        tgt_sbuf_append_char(sb, *p);
    }
    tgt_sbuf_append_char(sb, '\'');
}

/* Runs a query that returns one count; *out receives it.  0 or -1. */
int odbc_pg_query_count(odbc_driver *d, const char *sql, const char *const *params, size_t n,
                        unsigned long *out, tgt_error *err, const char *where)
{
    odbc_result r;
    int rc = odbc_query(d, sql, params, n, &r, err, "%s", where);
    const char *v = rc == 0 ? odbc_result_get(&r, 0, 0) : NULL;
    if (out != NULL)
        *out = v != NULL ? strtoul(v, NULL, 10) : 0;
    odbc_result_free(&r);
    return rc;
}

/* Best-effort ROLLBACK of the explicit transaction a DDL helper opened. */
static void abort_quietly(odbc_driver *d)
{
    tgt_error ignored;
    tgt_error_init(&ignored);
    odbc_exec(d, "ROLLBACK", NULL, &ignored, "while rolling back");
}

/* The SQLSTATEs a CREATE gets when another session created the same object
 * after our existence check (see pg_ddl.c). */
static int lost_creation_race(const tgt_error *e)
{
    static const char *const states[] = {"23505", "42P07", "42P06", "42710"};
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
        if (strcmp(e->sqlstate, states[i]) == 0)
            return 1;
    }
    return 0;
}

/* ---- the dialect's plain parts ---------------------------------------------- */

static int pg_matches(const char *dbms_name)
{
    return strcmp(dbms_name, "PostgreSQL") == 0;
}

void odbc_pg_qualified(odbc_driver *d, tgt_sbuf *sb, const char *schema, const char *name)
{
    odbc_sql_ident(d, sb, schema);
    tgt_sbuf_append_char(sb, '.');
    odbc_sql_ident(d, sb, name);
}

/* Every value travels as text the server parses for the column it goes
 * into; psqlODBC sends an SQL_VARCHAR parameter untyped (or inlines it as a
 * literal), so jsonb, boolean and numeric columns take it without a cast. */
static int pg_bind_type(tgt_coltype t)
{
    (void)t;
    return SQL_VARCHAR;
}

/* Cuts s at the first occurrence of tag (" DETAIL: ") and returns the text
 * after it, spaces trimmed, or NULL when there is none. */
static char *split_at(char *s, const char *tag)
{
    char *at = strstr(s, tag);
    if (at == NULL)
        return NULL;
    *at = '\0';
    at += strlen(tag);
    while (*at == ' ')
        at++;
    return at;
}

/* psqlODBC's message is the server's report on one line plus its own
 * trailer: "ERROR: <primary> DETAIL: <detail> HINT: <hint>; Error while
 * executing the query".  Rewritten to the libpq driver's form, "PostgreSQL:
 * <primary>" with the detail and the hint in their own fields, so messages
 * read the same whichever driver loads PostgreSQL. */
static void tidy_message(odbc_driver *d, const char *message, tgt_error *err)
{
    static const char *const trailers[] = {"; Error while executing the query",
                                           "; The connection has been lost"};
    static const char *const severities[] = {"ERROR:", "FATAL:", "PANIC:"};
    char text[TGT_ERROR_MESSAGE_MAX];
    snprintf(text, sizeof(text), "%s", message);
    for (size_t i = 0; i < sizeof(trailers) / sizeof(trailers[0]); i++) {
        size_t n = strlen(text), m = strlen(trailers[i]);
        if (n >= m && strcmp(text + n - m, trailers[i]) == 0)
            text[n - m] = '\0';
    }
    char *primary = text;
    for (size_t i = 0; i < sizeof(severities) / sizeof(severities[0]); i++) {
        size_t m = strlen(severities[i]);
        if (strncmp(primary, severities[i], m) == 0) {
            primary += m;
            break;
        }
    }
    while (*primary == ' ')
        primary++;
    char *hint = split_at(primary, " HINT: ");
    char *detail = split_at(primary, " DETAIL: ");
    /* bounded so that both always fit (psqlODBC's text was cut to fit
     * TGT_ERROR_MESSAGE_MAX already) */
    snprintf(err->message, sizeof(err->message), "%.63s: %.900s", d->dbms_name, primary);
    if (detail != NULL) {
        char more[TGT_ERROR_DETAIL_MAX];
        snprintf(more, sizeof(more), "%s", err->detail);
        /* bounded so that both always fit */
        snprintf(err->detail, sizeof(err->detail), "%.1000s%s%.1000s", detail,
                 more[0] != '\0' ? "; " : "", more);
    }
    if (hint != NULL && err->hint[0] == '\0')
        snprintf(err->hint, sizeof(err->hint), "%s", hint);
}

/* psqlODBC reports a connection the server closed as the server's FATAL
 * (57P01 admin shutdown, 57P02 crash, 57P03 cannot connect now) rather than
 * class 08; the connection is gone either way, as SQL_ATTR_CONNECTION_DEAD
 * says (and a later SQLEndTran(SQL_COMMIT) would report success without
 * sending anything). */
static void pg_classify(odbc_driver *d, const char *sqlstate, long native, const char *message,
                        tgt_error *err)
{
    (void)native;
    tidy_message(d, message, err);
    SQLUINTEGER dead = SQL_CD_FALSE;
    if (strncmp(sqlstate, "57P0", 4) == 0 ||
        (ODBC_OK(SQLGetConnectAttr(d->dbc, SQL_ATTR_CONNECTION_DEAD, &dead, 0, NULL)) &&
         dead == SQL_CD_TRUE)) {
        err->connection_lost = 1;
        d->connected = 0;
    }
}

/* ---- transaction ids (commit_status) ------------------------------------------ */

/* Inside the transaction begin() opened (psqlODBC sends its BEGIN before
 * this statement): the server's id of it, for txn_status after a lost
 * COMMIT reply. */
static int pg_txn_begin(odbc_driver *d, tgt_error *err)
{
    odbc_result r;
    int rc =
        odbc_query(d, "SELECT txid_current()", NULL, 0, &r, err, "while starting a transaction");
    const char *id = rc == 0 ? odbc_result_get(&r, 0, 0) : NULL;
    snprintf(d->txn_marker, sizeof(d->txn_marker), "%s", id != NULL ? id : "");
    odbc_result_free(&r);
    return rc;
}

/* What became of that transaction, as the libpq driver asks it. */
static int pg_txn_status(odbc_driver *d, tgt_txn_status *out, tgt_error *err)
{
    if (d->txn_marker[0] == '\0')
        return tgt_error_set(err, TGT_ERR_INTERNAL, "PostgreSQL: no transaction to ask about");
    const char *params[1] = {d->txn_marker};
    odbc_result r;
    int rc = odbc_query(d, "SELECT txid_status(CAST(? AS bigint))", params, 1, &r, err,
                        "while asking whether transaction %s committed", d->txn_marker);
    const char *st = rc == 0 ? odbc_result_get(&r, 0, 0) : NULL;
    if (rc == 0 && st != NULL && strcmp(st, "committed") == 0)
        *out = TGT_TXN_COMMITTED;
    else if (rc == 0 && st != NULL && strcmp(st, "aborted") == 0)
        *out = TGT_TXN_ABORTED;
    else if (rc == 0 && st != NULL && strcmp(st, "in progress") == 0)
        *out = TGT_TXN_IN_PROGRESS;
    else if (rc == 0)
        rc = tgt_error_set(err, TGT_ERR_LOAD,
                           "PostgreSQL no longer knows whether transaction %s committed",
                           d->txn_marker);
    odbc_result_free(&r);
    return rc;
}

/* ---- describe_table ---------------------------------------------------------- */

/* pg_ddl.c's catalog query: attributes in order, the position in the
 * primary key, the column comment.  No row: no table; one row of NULLs: a
 * table without columns. */
static const char describe_sql[] =
    "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull::int, "
    "pg_catalog.array_position(i.indkey::pg_catalog.int2[], a.attnum), "
    "pg_catalog.col_description(c.oid, a.attnum) "
    "FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_catalog.pg_attribute a "
    "ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
    "LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary "
    "WHERE n.nspname = ? AND c.relname = ? AND c.relkind IN ('r', 'p') "
    "ORDER BY a.attnum";

static int set_source_path(tgt_live_column *c, const char *comment)
{
    static const char prefix[] = "source: ";
    if (comment == NULL || strncmp(comment, prefix, sizeof(prefix) - 1) != 0)
        return 0;
    c->source_path = strdup(comment + sizeof(prefix) - 1);
    return c->source_path == NULL ? -1 : 0;
}

/* Fills out->key from the key positions: pos[r] is column r's place in the
 * primary key's index (int2vector subscripts start at 0), -1 when it is not
 * a key column. */
static int set_keys(tgt_live_table *out, const long *pos)
{
    size_t n_keys = 0;
    for (size_t r = 0; r < out->n_columns; r++)
        n_keys += pos[r] >= 0;
    if (n_keys == 0)
        return 0;
    out->key = calloc(n_keys, sizeof(*out->key));
    if (out->key == NULL)
        return -1;
    /* keys are few: pick them in position order */
    long last = -1;
    for (size_t k = 0; k < n_keys; k++) {
        size_t best = out->n_columns;
        for (size_t r = 0; r < out->n_columns; r++) {
            if (pos[r] > last && (best == out->n_columns || pos[r] < pos[best]))
                best = r;
        }
        if (best == out->n_columns)
            break;
        memcpy(out->key[k], out->columns[best].name, sizeof(out->key[0]));
        last = pos[best];
        out->n_keys++;
    }
    return 0;
}

static int pg_describe_table(odbc_driver *d, const char *schema, const char *table,
                             tgt_live_table *out, tgt_error *err)
{
    tgt_live_table_init(out);
    const char *params[2] = {schema, table};
    odbc_result r;
    if (odbc_query(d, describe_sql, params, 2, &r, err,
                   "while reading the definition of \"%s\".\"%s\"", schema, table) != 0) {
        odbc_result_free(&r);
        return -1;
    }
    if (r.n_rows == 0 || odbc_result_get(&r, 0, 0) == NULL) {
        out->exists = r.n_rows > 0;
        odbc_result_free(&r);
        return 0;
    }
    out->exists = 1;
    long *pos = calloc(r.n_rows, sizeof(*pos));
    out->columns = calloc(r.n_rows, sizeof(*out->columns));
    if (pos == NULL || out->columns == NULL)
        goto nomem;
    for (size_t i = 0; i < r.n_rows; i++) {
        tgt_live_column *c = &out->columns[out->n_columns++];
        const char *type = odbc_result_get(&r, i, 1);
        const char *key = odbc_result_get(&r, i, 3);
        const char *notnull = odbc_result_get(&r, i, 2);
        snprintf(c->name, sizeof(c->name), "%s", odbc_result_get(&r, i, 0));
        snprintf(c->sql_type, sizeof(c->sql_type), "%s", type != NULL ? type : "");
        c->type = pg_type_from_sql(c->sql_type);
        c->not_null = notnull != NULL && strcmp(notnull, "1") == 0;
        pos[i] = key != NULL ? strtol(key, NULL, 10) : -1;
        if (set_source_path(c, odbc_result_get(&r, i, 4)) != 0)
            goto nomem;
    }
    if (set_keys(out, pos) != 0)
        goto nomem;
    free(pos);
    odbc_result_free(&r);
    return 0;

nomem:
    free(pos);
    odbc_result_free(&r);
    tgt_live_table_deinit(out);
    return tgt_error_nomem(err);
}

/* ---- schema and table DDL ---------------------------------------------------- */

/* 1 when the query (one or two name parameters) finds a row, 0 when not, -1. */
static int exists(odbc_driver *d, const char *sql, const char *a, const char *b, tgt_error *err,
                  const char *where)
{
    const char *params[2] = {a, b};
    odbc_result r;
    int rc = odbc_query(d, sql, params, b != NULL ? 2 : 1, &r, err, "%s", where);
    int found = rc == 0 ? r.n_rows > 0 : -1;
    odbc_result_free(&r);
    return found;
}

static const char schema_sql[] = "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = ?";
static const char table_sql[] = "SELECT 1 FROM pg_catalog.pg_class c "
                                "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                                "WHERE n.nspname = ? AND c.relname = ? "
                                "AND c.relkind IN ('r', 'p')";

static int pg_ensure_schema(odbc_driver *d, const char *schema, tgt_error *err)
{
    /* CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when the
     * schema exists, so a loader that may only use it looks first */
    int found = exists(d, schema_sql, schema, NULL, err, "while looking for the schema");
    if (found != 0)
        return found < 0 ? -1 : 0;
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "CREATE SCHEMA IF NOT EXISTS ");
    odbc_sql_ident(d, sb, schema);
    if (odbc_sql_check(sb, err) < 0)
        return -1;
    tgt_log(TGT_LOG_INFO, "creating schema \"%s\"", schema);
    tgt_error local, recheck;
    tgt_error_init(&local);
    tgt_error_init(&recheck);
    if (odbc_exec(d, tgt_sbuf_str(sb), NULL, &local, "while creating schema \"%s\"", schema) == 0)
        return 0;
    if (lost_creation_race(&local) &&
        exists(d, schema_sql, schema, NULL, &recheck, "while looking for the schema") == 1)
        return 0;
    return odbc_error_forward(err, &local);
}

/* "; COMMENT ON COLUMN <t>.<c> IS 'source: <path>'" for a column with a
 * recorded source path. */
static void append_comment(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, const tgt_column *c)
{
    if (c->source_json == NULL)
        return;
    tgt_sbuf text;
    tgt_sbuf_init(&text);
    tgt_sbuf_append_str(&text, "source: ");
    tgt_sbuf_append_str(&text, c->source_json);
    if (!tgt_sbuf_ok(&text))
        sb->broken = 1;
    tgt_sbuf_append_str(sb, "; COMMENT ON COLUMN ");
    odbc_pg_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_char(sb, '.');
    odbc_sql_ident(d, sb, c->name);
    tgt_sbuf_append_str(sb, " IS ");
    append_literal(sb, tgt_sbuf_str(&text));
    tgt_sbuf_deinit(&text);
}

static int pg_alter_column_types(odbc_driver *d, const tgt_table *t, const size_t *cols, size_t n,
                                 tgt_error *err);

/* After losing a creation race: bring the winner's table up to t. */
static int conform_table(odbc_driver *d, const tgt_table *t, tgt_error *err);

static int pg_create_table(odbc_driver *d, const tgt_table *t, tgt_error *err)
{
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    odbc_sql_create_table(d, sb, t, odbc_sql_column_def);
    for (size_t i = 0; i < t->n_columns; i++)
        append_comment(d, sb, t, &t->columns[i]);
    if (odbc_sql_check(sb, err) < 0)
        return -1;
    tgt_log(TGT_LOG_INFO, "creating table \"%s\".\"%s\" with %zu columns", t->schema, t->name,
            t->n_columns);
    tgt_error local, recheck;
    tgt_error_init(&local);
    tgt_error_init(&recheck);
    if (odbc_exec(d, tgt_sbuf_str(sb), NULL, &local, "while creating table \"%s\".\"%s\"",
                  t->schema, t->name) == 0)
        return 0;
    if (lost_creation_race(&local) &&
        exists(d, table_sql, t->schema, t->name, &recheck, "while looking for the table") == 1) {
        tgt_log(TGT_LOG_INFO, "table \"%s\".\"%s\" was created concurrently", t->schema, t->name);
        return conform_table(d, t, err);
    }
    return odbc_error_forward(err, &local);
}

static int pg_add_column(odbc_driver *d, const tgt_table *t, size_t col, tgt_error *err)
{
    if (col >= t->n_columns)
        return tgt_error_set(err, TGT_ERR_INTERNAL, "add_column: column %zu out of range", col);
    const tgt_column *c = &t->columns[col];
    tgt_sbuf *sb = &d->sql;
    char type[TYPE_SQL_MAX];
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "ALTER TABLE ");
    odbc_pg_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_str(sb, " ADD COLUMN ");
    odbc_sql_ident(d, sb, c->name);
    tgt_sbuf_append_char(sb, ' ');
    tgt_sbuf_append_str(sb, pg_type_sql(c->type, type, sizeof(type)));
    append_comment(d, sb, t, c);
    if (odbc_sql_check(sb, err) < 0)
        return -1;
    tgt_log(TGT_LOG_INFO, "adding column \"%s\" %s to \"%s\".\"%s\"", c->name, type, t->schema,
            t->name);
    tgt_error local;
    tgt_error_init(&local);
    if (odbc_exec(d, tgt_sbuf_str(sb), NULL, &local, "while adding column \"%s\" to \"%s\".\"%s\"",
                  c->name, t->schema, t->name) == 0)
        return 0;
    /* duplicate_column: another loader added it since describe_table */
    if (strcmp(local.sqlstate, "42701") != 0)
        return odbc_error_forward(err, &local);
    return pg_alter_column_types(d, t, &col, 1, err);
}

static int conform_table(odbc_driver *d, const tgt_table *t, tgt_error *err)
{
    tgt_live_table live;
    if (pg_describe_table(d, t->schema, t->name, &live, err) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < t->n_columns; i++) {
        const tgt_live_column *lc = tgt_live_table_find(&live, t->columns[i].name);
        if (lc == NULL)
            rc = pg_add_column(d, t, i, err);
        else if (!tgt_type_equal(lc->type, t->columns[i].type))
            rc = pg_alter_column_types(d, t, &i, 1, err);
    }
    tgt_live_table_deinit(&live);
    return rc;
}

static const char column_type_sql[] = "SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) "
                                      "FROM pg_catalog.pg_attribute a "
                                      "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
                                      "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                                      "WHERE n.nspname = ? AND c.relname = ? AND a.attname = ? "
                                      "AND a.attnum > 0 AND NOT a.attisdropped";

/* Appends ", ALTER COLUMN c TYPE x USING c::x" when the live type (read
 * under the lock) is narrower than the wanted one; *n_changes counts them. */
static int append_widening(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, const tgt_column *c,
                           size_t *n_changes, tgt_error *err)
{
    char type[TYPE_SQL_MAX];
    pg_type_sql(c->type, type, sizeof(type));
    const char *params[3] = {t->schema, t->name, c->name};
    odbc_result r;
    if (odbc_query(d, column_type_sql, params, 3, &r, err,
                   "while reading the type of \"%s\".\"%s\".\"%s\"", t->schema, t->name,
                   c->name) != 0) {
        odbc_result_free(&r);
        return -1;
    }
    const char *live = odbc_result_get(&r, 0, 0);
    if (live != NULL) {
        tgt_type_order order = tgt_type_compare(pg_type_from_sql(live), c->type);
        if (order == TGT_ORDER_EQUAL || order == TGT_ORDER_HIGHER) {
            tgt_log(TGT_LOG_INFO, "keeping \"%s\".\"%s\".\"%s\" as %s", t->schema, t->name, c->name,
                    live);
            odbc_result_free(&r);
            return 0;
        }
    }
    tgt_log(TGT_LOG_INFO, "altering \"%s\".\"%s\".\"%s\" from %s to %s", t->schema, t->name,
            c->name, live != NULL ? live : "(missing)", type);
    odbc_result_free(&r);
    tgt_sbuf_append_str(sb, *n_changes > 0 ? ", ALTER COLUMN " : " ALTER COLUMN ");
    odbc_sql_ident(d, sb, c->name);
    tgt_sbuf_printf(sb, " TYPE %s USING ", type);
    odbc_sql_ident(d, sb, c->name);
    tgt_sbuf_printf(sb, "::%s", type);
    (*n_changes)++;
    return 0;
}

/* In one explicit transaction: lock the table, re-read each live type (a
 * concurrent loader may have widened it already), widen what is still
 * narrower in one ALTER TABLE (one rewrite however many columns). */
static int pg_alter_column_types(odbc_driver *d, const tgt_table *t, const size_t *cols, size_t n,
                                 tgt_error *err)
{
    tgt_sbuf lock, alter;
    tgt_sbuf_init(&lock);
    tgt_sbuf_init(&alter);
    tgt_sbuf_append_str(&lock, "BEGIN; LOCK TABLE ");
    odbc_pg_qualified(d, &lock, t->schema, t->name);
    tgt_sbuf_append_str(&lock, " IN ACCESS EXCLUSIVE MODE");
    tgt_sbuf_append_str(&alter, "ALTER TABLE ");
    odbc_pg_qualified(d, &alter, t->schema, t->name);
    size_t n_changes = 0;
    int rc = odbc_sql_check(&lock, err);
    if (rc == 0)
        rc = odbc_exec(d, tgt_sbuf_str(&lock), NULL, err, "while locking \"%s\".\"%s\"", t->schema,
                       t->name);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (cols[i] >= t->n_columns)
            rc = tgt_error_set(err, TGT_ERR_INTERNAL, "alter_column_types: column out of range");
        else
            rc = append_widening(d, &alter, t, &t->columns[cols[i]], &n_changes, err);
    }
    if (rc == 0 && n_changes > 0) {
        tgt_sbuf_append_str(&alter, "; COMMIT");
        rc = odbc_sql_check(&alter, err);
        if (rc == 0)
            rc = odbc_exec(d, tgt_sbuf_str(&alter), NULL, err,
                           "while widening columns of \"%s\".\"%s\"", t->schema, t->name);
    } else if (rc == 0) {
        rc = odbc_exec(d, "COMMIT", NULL, err, "while committing");
    }
    if (rc != 0)
        abort_quietly(d);
    tgt_sbuf_deinit(&lock);
    tgt_sbuf_deinit(&alter);
    return rc;
}

/* ---- keys, overwrite --------------------------------------------------------- */

/* The primary key's constraint name and its columns ("a, b"), as
 * pg_keys.c reads them. */
static const char current_key_sql[] =
    "SELECT con.conname, pg_catalog.string_agg(a.attname, ', ' ORDER BY k.ord) "
    "FROM pg_catalog.pg_constraint con "
    "JOIN pg_catalog.pg_class c ON c.oid = con.conrelid "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "CROSS JOIN LATERAL pg_catalog.unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord) "
    "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
    "WHERE n.nspname = ? AND c.relname = ? AND con.contype = 'p' "
    "GROUP BY con.conname";

/* 1 with the constraint and columns, 0 when the table has no key, -1. */
static int primary_key(odbc_driver *d, const char *schema, const char *table,
                       char constraint[TGT_IDENT_MAX + 1], char *columns, size_t cap,
                       tgt_error *err)
{
    const char *params[2] = {schema, table};
    odbc_result r;
    int rc = odbc_query(d, current_key_sql, params, 2, &r, err,
                        "while reading the primary key of \"%s\".\"%s\"", schema, table);
    constraint[0] = '\0';
    snprintf(columns, cap, "none");
    if (rc == 0 && r.n_rows > 0) {
        snprintf(constraint, TGT_IDENT_MAX + 1, "%s", odbc_result_get(&r, 0, 0));
        snprintf(columns, cap, "%s", odbc_result_get(&r, 0, 1));
        rc = 1;
    }
    odbc_result_free(&r);
    return rc;
}

/* pg_keys.c: under an exclusive lock, drop the key the table has (when it
 * is not the wanted one), make the new key columns NOT NULL, add the key.
 * Duplicates or NULLs fail the whole move, leaving the old key. */
static int pg_set_primary_key(odbc_driver *d, const tgt_table *t, tgt_error *err)
{
    tgt_sbuf wanted, sb;
    tgt_sbuf_init(&wanted);
    tgt_sbuf_init(&sb);
    for (size_t k = 0; k < t->n_keys; k++) {
        tgt_sbuf_append_str(&wanted, k > 0 ? ", " : "");
        tgt_sbuf_append_str(&wanted, t->columns[t->key_columns[k]].name);
    }
    tgt_sbuf_append_str(&sb, "BEGIN; LOCK TABLE ");
    odbc_pg_qualified(d, &sb, t->schema, t->name);
    tgt_sbuf_append_str(&sb, " IN ACCESS EXCLUSIVE MODE");
    char constraint[TGT_IDENT_MAX + 1], had[1024];
    int rc = odbc_sql_check(&wanted, err) < 0 || odbc_sql_check(&sb, err) < 0 ? -1 : 0;
    if (rc == 0)
        rc = odbc_exec(d, tgt_sbuf_str(&sb), NULL, err, "while locking \"%s\".\"%s\"", t->schema,
                       t->name);
    if (rc == 0)
        rc = primary_key(d, t->schema, t->name, constraint, had, sizeof(had), err) < 0 ? -1 : 0;
    if (rc == 0 && strcmp(had, tgt_sbuf_str(&wanted)) != 0) {
        tgt_sbuf_reset(&sb);
        tgt_sbuf_append_str(&sb, "ALTER TABLE ");
        odbc_pg_qualified(d, &sb, t->schema, t->name);
        if (constraint[0] != '\0') {
            tgt_sbuf_append_str(&sb, " DROP CONSTRAINT ");
            odbc_sql_ident(d, &sb, constraint);
            tgt_sbuf_append_char(&sb, ',');
        }
        for (size_t k = 0; k < t->n_keys; k++) {
            tgt_sbuf_append_str(&sb, " ALTER COLUMN ");
            odbc_sql_ident(d, &sb, t->columns[t->key_columns[k]].name);
            tgt_sbuf_append_str(&sb, " SET NOT NULL,");
        }
        tgt_sbuf_append_str(&sb, " ADD PRIMARY KEY (");
        odbc_sql_key_columns(d, &sb, t, "");
        tgt_sbuf_append_char(&sb, ')');
        rc = odbc_sql_check(&sb, err);
        if (rc == 0)
            rc = odbc_exec(d, tgt_sbuf_str(&sb), NULL, err,
                           "while moving the primary key of \"%s\".\"%s\" from (%s) to (%s)",
                           t->schema, t->name, had, tgt_sbuf_str(&wanted));
        if (rc == 0)
            tgt_log(TGT_LOG_INFO, "moved the primary key of \"%s\".\"%s\" from (%s) to (%s)",
                    t->schema, t->name, had, tgt_sbuf_str(&wanted));
    }
    if (rc == 0)
        rc = odbc_exec(d, "COMMIT", NULL, err, "while committing the primary key move");
    if (rc != 0)
        abort_quietly(d);
    tgt_sbuf_deinit(&wanted);
    tgt_sbuf_deinit(&sb);
    return rc;
}

static int pg_drop_table(odbc_driver *d, const char *schema, const char *table, tgt_error *err)
{
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "DROP TABLE IF EXISTS ");
    odbc_pg_qualified(d, sb, schema, table);
    if (odbc_sql_check(sb, err) < 0)
        return -1;
    return odbc_exec(d, tgt_sbuf_str(sb), NULL, err, "while dropping \"%s\".\"%s\"", schema, table);
}

/* Renames the shadow's primary key constraint to <live>_pkey (PostgreSQL's
 * own choice of name, the table name cut to fit). */
static int rename_key(odbc_driver *d, const char *schema, const char *live, const char *constraint,
                      tgt_error *err)
{
    tgt_sbuf *sb = &d->sql;
    char wanted[TGT_IDENT_MAX + 1];
    size_t keep = tgt_utf8_cut(live, strlen(live), tgt_pg_caps.ident_max - 5);
    snprintf(wanted, sizeof(wanted), "%.*s_pkey", (int)keep, live);
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "ALTER TABLE ");
    odbc_pg_qualified(d, sb, schema, live);
    tgt_sbuf_append_str(sb, " RENAME CONSTRAINT ");
    odbc_sql_ident(d, sb, constraint);
    tgt_sbuf_append_str(sb, " TO ");
    odbc_sql_ident(d, sb, wanted);
    if (odbc_sql_check(sb, err) < 0)
        return -1;
    if (odbc_exec(d, tgt_sbuf_str(sb), NULL, err, "while renaming the primary key of \"%s\".\"%s\"",
                  schema, live) != 0)
        return -1;
    return 0;
}

/* Inside the core's transaction: drop live, rename shadow to it and its key
 * constraint to <live>_pkey (PostgreSQL's own name, cut to fit). */
static int pg_replace_table(odbc_driver *d, const char *schema, const char *live,
                            const char *shadow, tgt_error *err)
{
    if (pg_drop_table(d, schema, live, err) != 0)
        return -1;
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "ALTER TABLE ");
    odbc_pg_qualified(d, sb, schema, shadow);
    tgt_sbuf_append_str(sb, " RENAME TO ");
    odbc_sql_ident(d, sb, live);
    if (odbc_sql_check(sb, err) < 0 ||
        odbc_exec(d, tgt_sbuf_str(sb), NULL, err, "while renaming \"%s\".\"%s\" to \"%s\"", schema,
                  shadow, live) != 0)
        return -1;
    char constraint[TGT_IDENT_MAX + 1], columns[1024];
    int found = primary_key(d, schema, live, constraint, columns, sizeof(columns), err);
    if (found < 0)
        return -1;
    if (found > 0 && rename_key(d, schema, live, constraint, err) != 0)
        return -1;
    tgt_log(TGT_LOG_INFO, "overwrite: \"%s\".\"%s\" replaced by the rows of this run", schema,
            live);
    return 0;
}

/* UTC: the row writer sends timestamps as UTC wall-clock text, and
 * timestamptz values read back in UTC; literals (column comments) keep
 * their backslashes; the session is named as the libpq driver names it. */
static const char *const session_sql[] = {
    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 3; "
    "SET standard_conforming_strings = on; SET client_min_messages = warning; "
    "SET application_name = 'target-pg'",
    NULL};

const odbc_dialect odbc_postgres_dialect = {
    .name = "postgres",
    .caps = &tgt_pg_caps,
    .matches = pg_matches,
    .quote = '"',
    .qualified = odbc_pg_qualified,
    /* UTC: the row writer sends timestamps as UTC wall-clock text, and
     * timestamptz values read back in UTC */
    .session_sql = session_sql,
    .type_sql = pg_type_sql,
    .type_from_sql = pg_type_from_sql,
    .bind_type = pg_bind_type,
    .classify = pg_classify,
    .txn_begin = pg_txn_begin,
    .txn_status = pg_txn_status,
    .describe_table = pg_describe_table,
    .ensure_schema = pg_ensure_schema,
    .create_table = pg_create_table,
    .add_column = pg_add_column,
    .alter_column_types = pg_alter_column_types,
    .stage_name = odbc_pg_stage_name,
    .prepare_stage = odbc_pg_prepare_stage,
    .merge = odbc_pg_merge,
    .end_transaction = odbc_pg_end_transaction,
    .lock_for_merge = odbc_pg_lock_for_merge,
    .activate_version = odbc_pg_activate_version,
    .set_primary_key = pg_set_primary_key,
    .drop_table = pg_drop_table,
    .replace_table = pg_replace_table,
    /* what the libpq driver computes for a server with the default lock
     * settings (max_locks_per_transaction 64, 100 sessions): the dialect
     * interface has a fixed number where that driver reads the server's */
    .tables_per_transaction = 100,
    /* 100-row INSERT ... VALUES statements, prepared once on the server:
     * psqlODBC sends a parameter array as one INSERT per row for the
     * server to parse (docs/warehouses.md); 100,000 orders rows took 2.1-4.2
     * s so against 7.8-9.6 s as arrays (same run, load ~6) */
    .rows_per_statement = 100,
};

/*
 * odbc_driver.c - the ODBC driver's operations table, its constructor,
 * connecting (and picking the dialect), transactions, and the table
 * operations, which check their arguments and hand on to the dialect.
 *
 * Connecting: odbc_connection_string through SQLDriverConnect (no prompt),
 * or odbc_dsn with user and password through SQLConnect.  Neither the
 * string nor the password ever reaches a message: the "where" of a failed
 * connect names the DSN or only says a connection string was used.
 * The DBMS name and version come from SQLGetInfo; the dialect is the
 * `dialect` setting or the one whose name matches.
 *
 * Transactions: a dialect with begin_sql (SQLite's BEGIN IMMEDIATE) runs
 * its own statements with autocommit left on; otherwise autocommit is
 * switched off at begin() and back on after SQLEndTran, so that the DDL the
 * core issues between transactions commits on its own (driver.h).  Each
 * transaction writes a commit marker (odbc_commit.c).
 */
#include "odbc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "odbc_internal.h"

static void disconnect(odbc_driver *d)
{
    odbc_bulk_free(d);
    if (d->dbc != SQL_NULL_HDBC) {
        if (d->connected)
            SQLDisconnect(d->dbc);
        SQLFreeHandle(SQL_HANDLE_DBC, d->dbc);
    }
    if (d->env != SQL_NULL_HENV)
        SQLFreeHandle(SQL_HANDLE_ENV, d->env);
    d->dbc = SQL_NULL_HDBC;
    d->env = SQL_NULL_HENV;
    d->connected = 0;
    d->in_txn = 0;
    d->marker_ready = 0;
    odbc_stage_forget_all(d);
}

static void odbc_free(tgt_driver *base)
{
    odbc_driver *d = (odbc_driver *)base;
    if (d == NULL)
        return;
    disconnect(d);
    odbc_stage_free_all(d);
    tgt_sbuf_deinit(&d->sql);
    free(d);
}

/* Whether a failed connect may succeed later: the server unreachable,
 * refusing for now, or timing out; not a wrong password, an unknown DSN or
 * driver, or a bad string. */
static int connect_state_is_transient(const char *state)
{
    static const char *const transient[] = {"08001", "08004", "08S01", "HYT00", "HYT01"};
    for (size_t i = 0; i < sizeof transient / sizeof transient[0]; i++)
        if (strcmp(state, transient[i]) == 0)
            return 1;
    return 0;
}

static int connect_failed(odbc_driver *d, const tgt_config *cfg, int fresh, tgt_error *err)
{
    char where[256];
    if (cfg->odbc_connection_string != NULL)
        snprintf(where, sizeof where, "connecting with odbc_connection_string");
    else
        snprintf(where, sizeof where, "connecting to ODBC data source \"%s\" as user %s",
                 cfg->odbc_dsn, cfg->user != NULL ? cfg->user : "(default)");
    snprintf(d->dbms_name, sizeof d->dbms_name, "cannot connect through ODBC");
    odbc_fail(d, SQL_HANDLE_DBC, d->dbc, err, where);
    d->dbms_name[0] = '\0';
    if (fresh) {
        err->connection_lost = 0;
        err->transient = connect_state_is_transient(err->sqlstate);
    }
    disconnect(d);
    return -1;
}

static int pick_dialect(odbc_driver *d, const tgt_config *cfg, tgt_error *err)
{
    if (cfg->dialect != NULL)
        d->dialect = odbc_dialect_by_name(cfg->dialect);
    else
        d->dialect = odbc_dialect_detect(d->dbms_name);
    if (d->dialect != NULL)
        return 0;
    tgt_sbuf names;
    tgt_sbuf_init(&names);
    odbc_dialect_names(&names);
    if (cfg->dialect != NULL)
        tgt_error_set(err, TGT_ERR_USAGE, "ODBC: dialect %s is not built into this target-pg",
                      cfg->dialect);
    else
        tgt_error_set(err, TGT_ERR_USAGE, "ODBC: no dialect for DBMS \"%s\"", d->dbms_name);
    tgt_error_hint(err,
                   "Dialects built in: %s. Set dialect to one of them when the data "
                   "source speaks its SQL.",
                   tgt_sbuf_ok(&names) ? tgt_sbuf_str(&names) : "sqlite");
    tgt_sbuf_deinit(&names);
    return -1;
}

static void read_info(odbc_driver *d)
{
    SQLSMALLINT len = 0;
    if (!ODBC_OK(SQLGetInfo(d->dbc, SQL_DBMS_NAME, d->dbms_name, sizeof d->dbms_name, &len)))
        snprintf(d->dbms_name, sizeof d->dbms_name, "ODBC");
    if (!ODBC_OK(SQLGetInfo(d->dbc, SQL_DBMS_VER, d->dbms_version, sizeof d->dbms_version, &len)))
        d->dbms_version[0] = '\0';
}

static int odbc_connect(tgt_driver *base, const tgt_config *cfg, tgt_error *err)
{
    odbc_driver *d = (odbc_driver *)base;
    disconnect(d);
    if (cfg->odbc_connection_string == NULL && cfg->odbc_dsn == NULL)
        return tgt_error_set(err, TGT_ERR_USAGE,
                             "driver odbc needs odbc_connection_string or odbc_dsn");
    int fresh = !tgt_error_is_set(err);
    if (!ODBC_OK(SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &d->env)) ||
        !ODBC_OK(SQLSetEnvAttr(d->env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER)SQL_OV_ODBC3, 0)) ||
        !ODBC_OK(SQLAllocHandle(SQL_HANDLE_DBC, d->env, &d->dbc))) {
        disconnect(d);
        return tgt_error_set(err, TGT_ERR_INTERNAL, "ODBC: cannot set up the driver manager");
    }
    SQLRETURN rc;
    if (cfg->odbc_connection_string != NULL) {
        SQLCHAR out[1024];
        SQLSMALLINT out_len = 0;
        rc = SQLDriverConnect(d->dbc, NULL, (SQLCHAR *)cfg->odbc_connection_string, SQL_NTS, out,
                              sizeof out, &out_len, SQL_DRIVER_NOPROMPT);
    } else {
        rc = SQLConnect(d->dbc, (SQLCHAR *)cfg->odbc_dsn, SQL_NTS,
                        (SQLCHAR *)(cfg->user != NULL ? cfg->user : ""), SQL_NTS,
                        (SQLCHAR *)(cfg->password != NULL ? cfg->password : ""), SQL_NTS);
    }
    if (!ODBC_OK(rc))
        return connect_failed(d, cfg, fresh, err);
    d->connected = 1;
    read_info(d);
    if (pick_dialect(d, cfg, err) < 0) {
        disconnect(d);
        return -1;
    }
    for (const char *const *s = d->dialect->session_sql; s != NULL && *s != NULL; s++) {
        if (odbc_exec(d, *s, NULL, err, "while setting up the session") < 0) {
            if (fresh && err->connection_lost)
                err->transient = 1;
            disconnect(d);
            return -1;
        }
    }
    if (odbc_bulk_read_limit(d, err) < 0) {
        if (fresh && err->connection_lost)
            err->transient = 1;
        disconnect(d);
        return -1;
    }
    d->ops.caps = d->dialect->caps;
    tgt_log(TGT_LOG_INFO, "connected to %s %s through ODBC (dialect %s)", d->dbms_name,
            d->dbms_version, d->dialect->name);
    return 0;
}

static int set_autocommit(odbc_driver *d, int on, tgt_error *err)
{
    SQLPOINTER v = (SQLPOINTER)(on ? SQL_AUTOCOMMIT_ON : SQL_AUTOCOMMIT_OFF);
    if (!ODBC_OK(SQLSetConnectAttr(d->dbc, SQL_ATTR_AUTOCOMMIT, v, 0)))
        return odbc_fail(d, SQL_HANDLE_DBC, d->dbc, err,
                         on ? "while ending a transaction" : "while starting a transaction");
    return 0;
}

static int odbc_begin(tgt_driver *base, tgt_error *err)
{
    odbc_driver *d = (odbc_driver *)base;
    if (d->in_txn)
        return tgt_error_set(err, TGT_ERR_INTERNAL, "ODBC: a transaction is already open");
    if (odbc_marker_setup(d, err) < 0)
        return -1;
    int rc = d->dialect->begin_sql != NULL
                 ? odbc_exec(d, d->dialect->begin_sql, NULL, err, "while starting a transaction")
                 : set_autocommit(d, 0, err);
    if (rc < 0)
        return -1;
    d->in_txn = 1;
    return odbc_marker_write(d, err);
}

static int odbc_commit(tgt_driver *base, tgt_error *err)
{
    odbc_driver *d = (odbc_driver *)base;
    if (d->bulk.open)
        return tgt_error_set(err, TGT_ERR_INTERNAL, "ODBC: commit while a write is open");
    int fresh = !tgt_error_is_set(err);
    int rc;
    if (d->dialect->commit_sql != NULL) {
        rc = odbc_exec(d, d->dialect->commit_sql, NULL, err, "while committing");
    } else {
        rc = ODBC_OK(SQLEndTran(SQL_HANDLE_DBC, d->dbc, SQL_COMMIT))
                 ? 0
                 : odbc_fail(d, SQL_HANDLE_DBC, d->dbc, err, "while committing");
        if (rc == 0)
            rc = set_autocommit(d, 1, err);
    }
    if (rc < 0 && fresh && err->connection_lost)
        err->commit_unknown = 1;
    if (rc == 0)
        d->in_txn = 0;
    if (d->dialect->end_transaction != NULL)
        d->dialect->end_transaction(d, rc == 0);
    return rc;
}

static void odbc_rollback(tgt_driver *base)
{
    odbc_driver *d = (odbc_driver *)base;
    odbc_bulk_abort(d);
    if (d->dialect != NULL && d->dialect->end_transaction != NULL)
        d->dialect->end_transaction(d, 0);
    if (!d->connected || !d->in_txn)
        return;
    d->in_txn = 0;
    tgt_error local;
    tgt_error_init(&local);
    if (d->dialect->rollback_sql != NULL) {
        odbc_exec(d, d->dialect->rollback_sql, NULL, &local, "while rolling back");
    } else {
        if (!ODBC_OK(SQLEndTran(SQL_HANDLE_DBC, d->dbc, SQL_ROLLBACK)))
            odbc_fail(d, SQL_HANDLE_DBC, d->dbc, &local, "while rolling back");
        set_autocommit(d, 1, &local);
    }
    if (tgt_error_is_set(&local))
        tgt_log(TGT_LOG_WARN, "%s: rollback failed: %s", d->dbms_name, local.message);
}

static size_t odbc_tables_per_transaction(tgt_driver *base)
{
    const odbc_driver *d = (const odbc_driver *)base;
    return d->dialect != NULL && d->dialect->tables_per_transaction > 0
               ? d->dialect->tables_per_transaction
               : 1;
}

/* ---- table operations: checked, then the dialect's ------------------------- */

static int odbc_describe_table(tgt_driver *base, const char *schema, const char *table,
                               tgt_live_table *out, tgt_error *err)
{
    odbc_driver *d = (odbc_driver *)base;
    return d->dialect->describe_table(d, schema, table, out, err);
}

static int odbc_ensure_schema(tgt_driver *base, const char *schema, tgt_error *err)
{
    odbc_driver *d = (odbc_driver *)base;
    return d->dialect->ensure_schema(d, schema, err);
}

static int odbc_create_table(tgt_driver *base, const tgt_table *t, tgt_error *err)
{
    odbc_driver *d = (odbc_driver *)base;
    return d->dialect->create_table(d, t, err);
}

static int odbc_add_column(tgt_driver *base, const tgt_table *t, size_t col, tgt_error *err)
{
    odbc_driver *d = (odbc_driver *)base;
    if (col >= t->n_columns)
        return tgt_error_set(err, TGT_ERR_INTERNAL, "add_column: column %zu out of range", col);
    return d->dialect->add_column(d, t, col, err);
}

int odbc_conform_table(odbc_driver *d, const tgt_table *t, tgt_error *err)
{
    tgt_live_table live;
    if (d->dialect->describe_table(d, t->schema, t->name, &live, err) != 0)
        return -1;
    int rc = 0;
    size_t *widen = calloc(t->n_columns + 1, sizeof(*widen));
    size_t n_widen = 0;
    if (widen == NULL)
        rc = tgt_error_nomem(err);
    for (size_t i = 0; rc == 0 && i < t->n_columns; i++) {
        const tgt_live_column *lc = tgt_live_table_find(&live, t->columns[i].name);
        if (lc == NULL)
            rc = d->dialect->add_column(d, t, i, err);
        else if (!tgt_type_equal(lc->type, t->columns[i].type))
            widen[n_widen++] = i;
    }
    /* all in one change: SQLite rebuilds the table once however many */
    if (rc == 0 && n_widen > 0)
        rc = d->dialect->alter_column_types(d, t, widen, n_widen, err);
    free(widen);
    tgt_live_table_deinit(&live);
    return rc;
}

static int odbc_alter_column_types(tgt_driver *base, const tgt_table *t, const size_t *cols,
                                   size_t n, tgt_error *err)
{
    odbc_driver *d = (odbc_driver *)base;
    for (size_t i = 0; i < n; i++)
        if (cols[i] >= t->n_columns)
            return tgt_error_set(err, TGT_ERR_INTERNAL,
                                 "alter_column_types: column %zu out of range", cols[i]);
    if (n == 0)
        return 0;
    return d->dialect->alter_column_types(d, t, cols, n, err);
}

static int odbc_lock_for_merge(tgt_driver *base, const tgt_table **tables, size_t n, tgt_error *err)
{
    odbc_driver *d = (odbc_driver *)base;
    return d->dialect->lock_for_merge(d, tables, n, err);
}

static int odbc_merge(tgt_driver *base, const tgt_table *t, int partial, unsigned long *changed,
                      tgt_error *err)
{
    odbc_driver *d = (odbc_driver *)base;
    *changed = 0;
    if (d->bulk.open)
        return tgt_error_set(err, TGT_ERR_INTERNAL, "ODBC: merge while a write is open");
    return d->dialect->merge(d, t, partial, changed, err);
}

static int odbc_activate_version(tgt_driver *base, const char *schema, const char *table,
                                 const char *version_column, const char *deleted_column,
                                 const char *version, int hard, unsigned long *affected,
                                 tgt_error *err)
{
    odbc_driver *d = (odbc_driver *)base;
    *affected = 0;
    return d->dialect->activate_version(d, schema, table, version_column, deleted_column, version,
                                        hard, affected, err);
}

static int odbc_set_primary_key(tgt_driver *base, const tgt_table *t, tgt_error *err)
{
    odbc_driver *d = (odbc_driver *)base;
    return d->dialect->set_primary_key(d, t, err);
}

static int odbc_drop_table(tgt_driver *base, const char *schema, const char *table, tgt_error *err)
{
    odbc_driver *d = (odbc_driver *)base;
    return d->dialect->drop_table(d, schema, table, err);
}

static int odbc_replace_table(tgt_driver *base, const char *schema, const char *live,
                              const char *shadow, tgt_error *err)
{
    odbc_driver *d = (odbc_driver *)base;
    return d->dialect->replace_table(d, schema, live, shadow, err);
}

/* Until connect() has picked a dialect: the strictest limits of the known
 * dialects (PostgreSQL's 63-byte names, no transactional DDL, no
 * comments).  Each driver carries its own copy of the ops table whose caps
 * then become the dialect's.  `provisional` makes the core connect before it
 * names anything, so no name is ever cut to these limits. */
static const tgt_driver_caps unconnected_caps = {
    .ident_max = 63,
    .max_columns = 1000,
    .column_budget = 400,
    .json_max_depth = 512,
    .transactional_ddl = 0,
    .column_comments = 0,
    .provisional = 1,
};

static const tgt_driver_ops odbc_ops = {
    .name = "odbc",
    .rows = &odbc_row_ops,
    .caps = &unconnected_caps,
    .connect = odbc_connect,
    .free = odbc_free,
    .describe_table = odbc_describe_table,
    .ensure_schema = odbc_ensure_schema,
    .create_table = odbc_create_table,
    .add_column = odbc_add_column,
    .alter_column_types = odbc_alter_column_types,
    .begin = odbc_begin,
    .commit = odbc_commit,
    .rollback = odbc_rollback,
    .commit_status = odbc_commit_status,
    .tables_per_transaction = odbc_tables_per_transaction,
    .lock_for_merge = odbc_lock_for_merge,
    .write_begin = odbc_write_begin,
    .write_data = odbc_write_data,
    .write_end = odbc_write_end,
    .merge = odbc_merge,
    .activate_version = odbc_activate_version,
    .set_primary_key = odbc_set_primary_key,
    .drop_table = odbc_drop_table,
    .replace_table = odbc_replace_table,
};

tgt_driver *tgt_odbc_driver_new(tgt_error *err)
{
    odbc_driver *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        tgt_error_nomem(err);
        return NULL;
    }
    d->ops = odbc_ops;
    d->base.ops = &d->ops;
    tgt_sbuf_init(&d->sql);
    tgt_sbuf_init(&d->bulk.pending);
    return &d->base;
}

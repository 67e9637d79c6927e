/*
 * pg_driver.c - the PostgreSQL driver's operations table, its constructor,
 * connecting and disconnecting, and transactions.
 *
 * The session is set up so values travel unambiguously: client_encoding
 * UTF8, TimeZone UTC, ISO dates, floats with all their digits, and only
 * warnings and errors reported back (routed through the logger, never printed
 * by libpq).  The other operations live in pg_ddl.c, pg_copy.c and
 * pg_merge.c; see pg_internal.h for the map.
 */
#include "pg_internal.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"

/* libpq's default notice processor prints to stderr; send notices to the log. */
static void notice_to_log(void *arg, const char *message)
{
    (void)arg;
    char line[1024];
    tgt_log(TGT_LOG_WARN, "PostgreSQL: %s", pg_one_line(message, line, sizeof(line)));
}

static void pg_free(tgt_driver *base)
{
    pg_driver *d = (pg_driver *)base;
    if (d == NULL)
        return;
    if (d->conn != NULL)
        PQfinish(d->conn);
    pg_cache_free(d);
    tgt_sbuf_deinit(&d->sql);
    free(d);
}

/* Whether a failed connection may succeed if simply tried again (the server
 * is down, starting, shutting down, full, or its name does not resolve yet:
 * a container coming up) rather than after a changed setting (a password, a
 * missing database or role, a bad connection string, TLS set-up).  libpq
 * gives no SQLSTATE for a failed connection, so this goes by what it does
 * give: whether it needed a password it did not have, then the message.
 * libpq's own messages are always English here (target-pg never calls
 * setlocale); the server's follow its lc_messages, which is why a password
 * sent and refused counts as permanent even when no marker matches. */
static int connect_failure_is_transient(PGconn *conn, const char *msg)
{
    static const char *const busy[] = {
        "the database system is starting up",
        "the database system is shutting down",
        "the database system is in recovery mode",
        "the database system is not yet accepting connections",
        "the database system is not accepting connections",
        "too many clients already",
        "too many connections for",
        "remaining connection slots are reserved",
    };
    static const char *const permanent[] = {
        "authentication failed",  /* password, ident, peer, cert, ... */
        "no pg_hba.conf entry",   /* refused by the server's rules */
        "no password supplied",   /* fe_sendauth */
        "does not exist",         /* database, role, root certificate file */
        "permission denied",      /* CONNECT privilege, socket permissions */
        "invalid ",               /* conninfo values and syntax, bad URI */
        "missing \"=\"",          /* conninfo syntax */
        "unterminated quoted string",
        " in URI",
        "required",               /* SSL, GSSAPI encryption, channel binding */
        "does not support SSL",
        "certificate",            /* TLS set-up and verification */
        "private key",
        "sslmode",
    };
    for (size_t i = 0; i < sizeof(busy) / sizeof(busy[0]); i++)
        if (strstr(msg, busy[i]) != NULL)
            return 1;
    if (PQconnectionNeedsPassword(conn))
        return 0;
    for (size_t i = 0; i < sizeof(permanent) / sizeof(permanent[0]); i++)
        if (strstr(msg, permanent[i]) != NULL)
            return 0;
    return !PQconnectionUsedPassword(conn);
}

static int pg_connect(tgt_driver *base, const tgt_config *cfg, tgt_error *err)
{
    pg_driver *d = (pg_driver *)base;
    const char *keys[16];
    const char *vals[16];
    size_t n = 0;
    int expand = 0;

    if (cfg->conninfo != NULL) {
        keys[n] = "dbname";
        vals[n++] = cfg->conninfo;
        expand = 1;
    } else {
        const struct {
            const char *key;
            const char *val;
        } fields[] = {
            {"host", cfg->host},
            {"port", cfg->port},
            {"user", cfg->user},
            {"password", cfg->password},
            {"dbname", cfg->dbname},
            {"sslmode", cfg->sslmode},
            {"sslrootcert", cfg->sslrootcert},
            {"sslcert", cfg->sslcert},
            {"sslkey", cfg->sslkey},
        };
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
            if (fields[i].val != NULL) {
                keys[n] = fields[i].key;
                vals[n++] = fields[i].val;
            }
        }
    }
    /* after the conninfo: later entries override what it says */
    keys[n] = "application_name";
    vals[n++] = "target-pg";
    keys[n] = "client_encoding";
    vals[n++] = "UTF8";
    keys[n] = NULL;
    vals[n] = NULL;

    if (d->conn != NULL) {
        PQfinish(d->conn);
        d->conn = NULL;
    }
    pg_cache_free(d);
    d->copying = NULL;

    int fresh = !tgt_error_is_set(err); /* the first error wins: classify only our own */
    PGconn *conn = PQconnectdbParams(keys, vals, expand);
    if (conn == NULL)
        return tgt_error_nomem(err);
    if (PQstatus(conn) != CONNECTION_OK) {
        char line[TGT_ERROR_MESSAGE_MAX];
        pg_one_line(PQerrorMessage(conn), line, sizeof(line));
        if (fresh)
            err->transient = connect_failure_is_transient(conn, line);
        tgt_error_set(err, TGT_ERR_LOAD, "cannot connect to PostgreSQL: %s", line);
        const char *host = PQhost(conn), *port = PQport(conn), *db = PQdb(conn);
        const char *user = PQuser(conn);
        if (host == NULL || *host == '\0') /* libpq could not read the settings */
            tgt_error_where(err, "reading the connection settings (%s)",
                            cfg->conninfo != NULL ? "conninfo" : "host, port, user, dbname, ssl*");
        else
            tgt_error_where(err, "connecting to host %s port %s database %s as user %s", host,
                            port ? port : "(default)", db ? db : "(default)",
                            user ? user : "(default)");
        PQfinish(conn);
        return -1;
    }
    PQsetNoticeProcessor(conn, notice_to_log, NULL);
    d->conn = conn;

    if (pg_command(d,
                   "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; "
                   "SET extra_float_digits = 3; SET client_min_messages = warning",
                   err, "while setting up the session") < 0) {
        if (fresh && PQstatus(d->conn) == CONNECTION_BAD)
            err->transient = 1; /* the server went away right after accepting us */
        PQfinish(d->conn);
        d->conn = NULL;
        return -1;
    }
    const char *version = PQparameterStatus(conn, "server_version");
    tgt_log(TGT_LOG_INFO, "connected to PostgreSQL %s at %s:%s database %s as %s",
            version ? version : "(unknown version)", PQhost(conn), PQport(conn), PQdb(conn),
            PQuser(conn));
    return 0;
}

static int pg_begin(tgt_driver *base, tgt_error *err)
{
    pg_driver *d = (pg_driver *)base;
    return pg_command(d, "BEGIN", err, "while starting a transaction");
}

static int pg_commit(tgt_driver *base, tgt_error *err)
{
    pg_driver *d = (pg_driver *)base;
    if (d->copying != NULL)
        return tgt_error_set(err, TGT_ERR_INTERNAL, "PostgreSQL: commit while a COPY is open");
    PGresult *res = pg_exec(d, "COMMIT", PGRES_COMMAND_OK, err, "while committing");
    if (res == NULL) {
        /* the transaction is gone, and with it any staging table it created */
        pg_cache_forget_stages(d);
        return -1;
    }
    /* COMMIT of a failed transaction "succeeds" with the tag ROLLBACK */
    int rolled_back = strcmp(PQcmdStatus(res), "ROLLBACK") == 0;
    PQclear(res);
    if (rolled_back) {
        pg_cache_forget_stages(d);
        tgt_error_set(err, TGT_ERR_LOAD, "PostgreSQL: the transaction was rolled back");
        tgt_error_where(err, "while committing");
        return -1;
    }
    return 0;
}

static void pg_rollback(tgt_driver *base)
{
    pg_driver *d = (pg_driver *)base;
    /* temp tables created inside the rolled-back transaction vanish with it */
    pg_cache_forget_stages(d);
    if (d->conn == NULL)
        return;
    if (PQstatus(d->conn) != CONNECTION_OK) {
        d->copying = NULL;
        return;
    }
    if (d->copying != NULL || PQtransactionStatus(d->conn) == PQTRANS_ACTIVE)
        pg_copy_abort(d);
    PGTransactionStatusType ts = PQtransactionStatus(d->conn);
    if (ts != PQTRANS_INTRANS && ts != PQTRANS_INERROR)
        return;
    PGresult *res = PQexec(d->conn, "ROLLBACK");
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        char line[512];
        const char *msg = res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(d->conn);
        tgt_log(TGT_LOG_WARN, "PostgreSQL: rollback failed: %s",
                pg_one_line(msg, line, sizeof(line)));
    }
    PQclear(res);
}

static const tgt_driver_ops pg_ops = {
    .name = "postgres",
    .connect = pg_connect,
    .free = pg_free,
    .describe_table = pg_describe_table,
    .ensure_schema = pg_ensure_schema,
    .create_table = pg_create_table,
    .add_column = pg_add_column,
    .alter_column_type = pg_alter_column_type,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .write_begin = pg_write_begin,
    .write_data = pg_write_data,
    .write_end = pg_write_end,
    .merge = pg_merge,
    .activate_version = pg_activate_version,
    .set_primary_key = pg_set_primary_key,
    .drop_table = pg_drop_table,
    .replace_table = pg_replace_table,
};

tgt_driver *tgt_postgres_driver_new(tgt_error *err)
{
    pg_driver *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        tgt_error_nomem(err);
        return NULL;
    }
    d->base.ops = &pg_ops;
    tgt_sbuf_init(&d->sql);
    return &d->base;
}

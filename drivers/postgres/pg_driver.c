/*
 * pg_driver.c - the PostgreSQL driver's operations table, its constructor,
 * connecting and disconnecting, and transactions.
 *
 * The session is set up so values travel unambiguously: client_encoding
 * UTF8, TimeZone UTC, ISO dates, floats with all their digits, and only
 * warnings and errors reported back (routed through the logger, never printed
 * by libpq).  The other operations live in pg_ddl.c, pg_copy.c and
 * pg_merge.c; see pg_internal.h for the map.
 *
 * Every transaction learns its server id at BEGIN, so that a COMMIT whose
 * reply the network lost can be looked up (txid_status) after reconnecting
 * instead of guessed.  How many tables one transaction may write to comes
 * from the server's lock settings, read once per connection.
 */
#include "pg_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "error.h"
#include "log.h"
#include "pg_caps.h"
#include "pg_encode_binary.h"
#include "postgres.h"

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
        "authentication failed", /* password, ident, peer, cert, ... */
        "no pg_hba.conf entry",  /* refused by the server's rules */
        "no password supplied",  /* fe_sendauth */
        "does not exist",        /* database, role, root certificate file */
        "permission denied",     /* CONNECT privilege, socket permissions */
        "invalid ",              /* conninfo values and syntax, bad URI */
        "missing \"=\"",         /* conninfo syntax */
        "unterminated quoted string",
        " in URI",
        "required", /* SSL, GSSAPI encryption, channel binding */
        "does not support SSL",
        "certificate", /* TLS set-up and verification */
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

/* Locks a table may cost one transaction: the table, its primary key and
 * TOAST table (with its index), the staging table with its TOAST table and
 * index (measured with pg_locks: 6 for a keyed stream; 8 leaves room for a
 * second index). */
#define PG_LOCKS_PER_TABLE 8
/* The share of the server's lock table one transaction may use. */
#define PG_LOCK_TABLE_SHARE 8

/* How many tables one transaction may write to.  The lock table has
 * max_locks_per_transaction x (max_connections + max_prepared_transactions)
 * slots shared by every session (a transaction past them fails with "out of
 * shared memory"); target-pg takes at most an eighth of it, and at least
 * max_locks_per_transaction, the share the server promises every
 * transaction.  Default settings: 64 x 100 / 8 = 800 locks, 100 tables. */
static int read_lock_budget(pg_driver *d, tgt_error *err)
{
    PGresult *res = pg_exec(d,
                            "SELECT current_setting('max_locks_per_transaction')::bigint, "
                            "current_setting('max_connections')::bigint + "
                            "current_setting('max_prepared_transactions')::bigint",
                            PGRES_TUPLES_OK, err, "while reading the server's lock settings");
    if (res == NULL)
        return -1;
    long long per_txn = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    long long sessions = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 1), NULL, 10) : 0;
    PQclear(res);
    long long locks = per_txn * sessions / PG_LOCK_TABLE_SHARE;
    if (locks < per_txn)
        locks = per_txn;
    long long tables = locks / PG_LOCKS_PER_TABLE;
    d->tables_per_txn = tables < 1 ? 1 : (size_t)tables;
    tgt_log(TGT_LOG_DEBUG,
            "max_locks_per_transaction %lld, %lld sessions: one transaction writes at most %zu "
            "tables",
            per_txn, sessions, d->tables_per_txn);
    return 0;
}

/* A local socket's send buffer is as large as the system allows (about
 * 416 kB with Linux's default limits, against 208 kB): more rows queued for
 * the backend means more slack while target-pg encodes between writes.  TCP
 * sizes its buffer itself and is left alone (setting it would stop that). */
static void widen_send_buffer(PGconn *conn)
{
    int fd = PQsocket(conn);
    struct sockaddr_storage addr;
    socklen_t len = sizeof(addr);
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&addr, &len) != 0 || addr.ss_family != AF_UNIX)
        return;
    int size = 4 * 1024 * 1024; /* the kernel caps it at its wmem_max */
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
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
    widen_send_buffer(conn);

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
    if (read_lock_budget(d, err) < 0) {
        if (fresh && PQstatus(d->conn) == CONNECTION_BAD)
            err->transient = 1;
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
    d->xid[0] = '\0';
    /* the transaction id comes in the same round trip: if the COMMIT reply
     * is lost, commit_status asks the server about it by this id */
    PGresult *res = pg_exec(d, "BEGIN; SELECT txid_current()", PGRES_TUPLES_OK, err,
                            "while starting a transaction");
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 1)
        snprintf(d->xid, sizeof(d->xid), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

static int pg_commit(tgt_driver *base, tgt_error *err)
{
    pg_driver *d = (pg_driver *)base;
    if (d->copying != NULL)
        return tgt_error_set(err, TGT_ERR_INTERNAL, "PostgreSQL: commit while a COPY is open");
    int fresh = !tgt_error_is_set(err);
    PGresult *res = pg_exec(d, "COMMIT", PGRES_COMMAND_OK, err, "while committing");
    /* committed or not, the transaction is over, and with it every staging
     * table it created (ON COMMIT DROP) */
    pg_cache_forget_stages(d);
    if (res == NULL) {
        /* the COMMIT may have reached the server and taken effect: only the
         * server can say (commit_status) */
        if (fresh && err->connection_lost && d->xid[0] != '\0')
            err->commit_unknown = 1;
        return -1;
    }
    /* COMMIT of a failed transaction "succeeds" with the tag ROLLBACK */
    int rolled_back = strcmp(PQcmdStatus(res), "ROLLBACK") == 0;
    PQclear(res);
    if (rolled_back) {
        tgt_error_set(err, TGT_ERR_LOAD, "PostgreSQL: the transaction was rolled back");
        tgt_error_where(err, "while committing");
        return -1;
    }
    return 0;
}

static int pg_commit_status(tgt_driver *base, tgt_txn_status *out, tgt_error *err)
{
    pg_driver *d = (pg_driver *)base;
    if (d->xid[0] == '\0')
        return tgt_error_set(err, TGT_ERR_INTERNAL, "PostgreSQL: no transaction to ask about");
    const char *values[1] = {d->xid};
    PGresult *res = pg_exec_params(d, "SELECT txid_status($1::bigint)", 1, values, PGRES_TUPLES_OK,
                                   err, "while asking whether transaction %s committed", d->xid);
    if (res == NULL)
        return -1;
    const char *st = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) ? PQgetvalue(res, 0, 0) : "";
    int rc = 0;
    if (strcmp(st, "committed") == 0)
        *out = TGT_TXN_COMMITTED;
    else if (strcmp(st, "aborted") == 0)
        *out = TGT_TXN_ABORTED;
    else if (strcmp(st, "in progress") == 0)
        *out = TGT_TXN_IN_PROGRESS;
    else
        rc = tgt_error_set(err, TGT_ERR_LOAD,
                           "PostgreSQL no longer knows whether transaction %s committed", d->xid);
    PQclear(res);
    return rc;
}

static size_t pg_tables_per_transaction(tgt_driver *base)
{
    const pg_driver *d = (const pg_driver *)base;
    return d->tables_per_txn > 0 ? d->tables_per_txn : 1;
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
    .rows = &tgt_pg_binary_row_ops,
    .caps = &tgt_pg_caps,
    .connect = pg_connect,
    .free = pg_free,
    .describe_table = pg_describe_table,
    .ensure_schema = pg_ensure_schema,
    .create_table = pg_create_table,
    .add_column = pg_add_column,
    .alter_column_types = pg_alter_column_types,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .commit_status = pg_commit_status,
    .tables_per_transaction = pg_tables_per_transaction,
    .lock_for_merge = pg_lock_for_merge,
    .write_begin = pg_write_begin,
    .write_data = pg_write_data,
    .write_end = pg_write_end,
    .write_close = pg_write_close,
    .write_ready = pg_write_ready,
    .write_room = pg_write_room,
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

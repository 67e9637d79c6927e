/*
 * pg_exec.c - running a statement and turning its failure into a tgt_error.
 *
 * Every server error becomes TGT_ERR_LOAD with "PostgreSQL: <primary
 * message>", the SQLSTATE, DETAIL and HINT (where the server sends no hint
 * for a missing privilege, a statement or lock timeout or temp_file_limit,
 * one saying what to do), and a "where" naming what the driver was doing
 * (or, for COPY, the server's CONTEXT line).  A connection that has gone
 * away is reported as "connection to PostgreSQL lost: ...".  The failure is
 * classified for the core (driver.h): a lost connection, a deadlock or
 * serialization failure (conflict), the row a COPY refused.
 * These helpers clear every result they do not hand back; a result they do
 * hand back belongs to the caller.
 */
#include "pg_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

const char *pg_one_line(const char *msg, char *buf, size_t cap)
{
    size_t n = 0;
    if (cap == 0)
        return buf;
    for (const char *p = msg; p != NULL && *p != '\0' && n + 1 < cap; p++) {
        char c = *p;
        if (c == '\n' || c == '\r' || c == '\t') {
            /* libpq indents continuation lines with a tab: one space is enough */
            if (n > 0 && buf[n - 1] != ' ')
                buf[n++] = ' ';
            continue;
        }
        buf[n++] = c;
    }
    while (n > 0 && buf[n - 1] == ' ')
        n--;
    buf[n] = '\0';
    return buf;
}

static int connection_lost(const pg_driver *d)
{
    return d->conn != NULL && PQstatus(d->conn) == CONNECTION_BAD;
}

/* What to do about failures whose server message says only what happened.
 * Only fills the hint when the server sent none (tgt_error_hint fills once). */
static void add_hint(pg_driver *d, tgt_error *err, const char *primary)
{
    const char *role = d->conn != NULL ? PQuser(d->conn) : NULL;
    if (strcmp(err->sqlstate, "42501") == 0)
        tgt_error_hint(err,
                       "target-pg connects as role \"%s\", which lacks that privilege. A new "
                       "schema needs CREATE on the database, a new table CREATE on the schema, "
                       "loading INSERT on the table (keyed streams also SELECT and UPDATE). "
                       "Grant it or connect as a role that has it.",
                       role != NULL ? role : "(unknown)");
    else if (strcmp(err->sqlstate, "57014") == 0 && strstr(primary, "statement timeout") != NULL)
        tgt_error_hint(err, "The statement ran longer than statement_timeout (set for the role "
                            "or database, in postgresql.conf, or through PGOPTIONS); another "
                            "session may hold a lock on the table (see pg_locks and "
                            "pg_stat_activity). Raise statement_timeout for this role.");
    else if (strcmp(err->sqlstate, "55P03") == 0)
        tgt_error_hint(err, "Another session holds a lock on the table for longer than "
                            "lock_timeout allows (see pg_locks and pg_stat_activity).");
    else if (strcmp(err->sqlstate, "40P01") == 0) {
        /* the server's own hint only points at its log; name the other
         * session from the DETAIL ("...; blocked by process 123.") */
        const char *by = strstr(err->detail, "blocked by process ");
        long pid = by != NULL ? strtol(by + strlen("blocked by process "), NULL, 10) : 0;
        if (pid > 0)
            snprintf(err->hint, sizeof(err->hint),
                     "Another session (PostgreSQL process %ld, see pg_stat_activity) writes the "
                     "same rows in another order; the server log has both statements.",
                     pid);
    } else if (strcmp(err->sqlstate, "53400") == 0 && strstr(primary, "temp_file_limit") != NULL)
        tgt_error_hint(err, "The statement spilled more than temp_file_limit to temporary files "
                            "(merging a keyed batch that repeats a key sorts the batch): lower "
                            "batch_size_rows, or raise temp_file_limit or work_mem for this "
                            "role.");
}

/* The row a COPY failed on, from its CONTEXT (0 when the context is not a
 * COPY's).  The loader uses it to find the input record the database
 * refused.  PostgreSQL quotes the row (`COPY t, line 3: "..."`) or a value of
 * it (`COPY t, line 3, column c: ...`) while it reads and checks that row:
 * then the row is exactly the refused one (*exact = 1).  A bare
 * `COPY t, line 3` comes from writing a group of buffered rows, where the
 * line is the last one read when the group was written unless an index
 * insert names its own row; it is only a hint (*exact = 0). */
static unsigned long copy_row(const char *context, int *exact)
{
    *exact = 0;
    if (strncmp(context, "COPY ", 5) != 0)
        return 0;
    const char *at = strstr(context, ", line ");
    if (at == NULL)
        return 0;
    char *end;
    unsigned long row = strtoul(at + 7, &end, 10);
    *exact = *end == ':' || *end == ',';
    return row;
}

int pg_fail(pg_driver *d, const PGresult *res, int prefer_context, tgt_error *err,
            const char *where)
{
    /* first error wins: do not decorate an earlier error with this one's parts */
    if (tgt_error_is_set(err))
        return -1;
    const char *primary = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (primary == NULL || *primary == '\0') {
        /* not a server error: libpq's own message, from the result or the connection */
        primary = res != NULL ? PQresultErrorMessage(res) : NULL;
        if ((primary == NULL || *primary == '\0') && d->conn != NULL)
            primary = PQerrorMessage(d->conn);
        if (primary == NULL || *primary == '\0')
            primary = "unknown error";
    }
    char line[TGT_ERROR_MESSAGE_MAX];
    pg_one_line(primary, line, sizeof(line));
    /* the server ends the session (terminated backend, shutdown, restart)
     * with a message that can arrive before libpq notices the socket is
     * gone: that too is a lost connection, and says so */
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    int ended = state != NULL && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0);
    if (connection_lost(d) || ended) {
        tgt_error_set(err, TGT_ERR_LOAD, "connection to PostgreSQL lost: %s", line);
        err->connection_lost = 1;
    } else
        tgt_error_set(err, TGT_ERR_LOAD, "PostgreSQL: %s", line);

    const char *context = NULL;
    if (res != NULL) {
        tgt_error_sqlstate(err, state);
        /* deadlock_detected, serialization_failure: the transaction lost a
         * race with another session and may succeed when run again */
        if (strcmp(err->sqlstate, "40P01") == 0 || strcmp(err->sqlstate, "40001") == 0)
            err->conflict = 1;
        const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
        if (detail != NULL)
            tgt_error_detail(err, "%s", detail);
        const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
        if (hint != NULL)
            tgt_error_hint(err, "%s", hint);
        add_hint(d, err, line);
        context = PQresultErrorField(res, PG_DIAG_CONTEXT);
    }
    char ctx[TGT_ERROR_WHERE_MAX];
    if (context != NULL) {
        pg_one_line(context, ctx, sizeof(ctx));
        err->bulk_row = copy_row(ctx, &err->bulk_row_exact);
    }
    if (prefer_context && context != NULL)
        tgt_error_where(err, "%s", ctx);
    else if (where != NULL && context != NULL)
        tgt_error_where(err, "%s (%s)", where, ctx);
    else if (where != NULL)
        tgt_error_where(err, "%s", where);
    else if (context != NULL)
        tgt_error_where(err, "%s", ctx);
    return -1;
}

/* Ends a COPY that a statement unexpectedly started, so the connection is
 * usable again. */
static void end_stray_copy(pg_driver *d)
{
    PQputCopyEnd(d->conn, "unexpected COPY");
    PGresult *r;
    while ((r = PQgetResult(d->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        PQclear(r);
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH)
            break; /* the end could not be sent: the connection is beyond repair */
    }
}

static PGresult *vexec(pg_driver *d, const char *sql, int n_params, const char *const *values,
                       ExecStatusType expect, tgt_error *err, const char *what, va_list ap)
    __attribute__((format(printf, 7, 0)));

static PGresult *vexec(pg_driver *d, const char *sql, int n_params, const char *const *values,
                       ExecStatusType expect, tgt_error *err, const char *what, va_list ap)
{
    if (d->conn == NULL) {
        tgt_error_set(err, TGT_ERR_INTERNAL, "PostgreSQL: not connected");
        return NULL;
    }
    PGresult *res = n_params > 0 ? PQexecParams(d->conn, sql, n_params, NULL, values, NULL, NULL, 0)
                                 : PQexec(d->conn, sql);
    ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (res != NULL && st == expect)
        return res;

    char where[TGT_ERROR_WHERE_MAX];
    vsnprintf(where, sizeof(where), what, ap);
    if (res == NULL || st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR ||
        st == PGRES_BAD_RESPONSE) {
        pg_fail(d, res, 0, err, where);
    } else {
        if (!tgt_error_is_set(err)) {
            tgt_error_set(err, TGT_ERR_INTERNAL, "PostgreSQL: unexpected result %s (expected %s)",
                          PQresStatus(st), PQresStatus(expect));
            tgt_error_where(err, "%s", where);
        }
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
            PQclear(res);
            end_stray_copy(d);
            return NULL;
        }
    }
    PQclear(res);
    return NULL;
}

PGresult *pg_exec(pg_driver *d, const char *sql, ExecStatusType expect, tgt_error *err,
                  const char *what, ...)
{
    va_list ap;
    va_start(ap, what);
    PGresult *res = vexec(d, sql, 0, NULL, expect, err, what, ap);
    va_end(ap);
    return res;
}

PGresult *pg_exec_params(pg_driver *d, const char *sql, int n_params, const char *const *values,
                         ExecStatusType expect, tgt_error *err, const char *what, ...)
{
    va_list ap;
    va_start(ap, what);
    PGresult *res = vexec(d, sql, n_params, values, expect, err, what, ap);
    va_end(ap);
    return res;
}

int pg_command(pg_driver *d, const char *sql, tgt_error *err, const char *what, ...)
{
    va_list ap;
    va_start(ap, what);
    PGresult *res = vexec(d, sql, 0, NULL, PGRES_COMMAND_OK, err, what, ap);
    va_end(ap);
    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

int pg_error_forward(tgt_error *err, const tgt_error *src)
{
    if (!tgt_error_is_set(err))
        *err = *src;
    return -1;
}

void pg_abort_quietly(pg_driver *d)
{
    if (d->conn == NULL || PQstatus(d->conn) != CONNECTION_OK)
        return;
    PGTransactionStatusType ts = PQtransactionStatus(d->conn);
    if (ts != PQTRANS_INTRANS && ts != PQTRANS_INERROR)
        return;
    PQclear(PQexec(d->conn, "ROLLBACK"));
}

/*
 * pg_exec.c - running a statement and turning its failure into a tgt_error.
 *
 * Every server error becomes TGT_ERR_LOAD with "PostgreSQL: <primary
 * message>", the SQLSTATE, DETAIL and HINT, and a "where" naming what the
 * driver was doing (or, for COPY, the server's CONTEXT line).  A connection
 * that has gone away is reported as "connection to PostgreSQL lost: ...".
 * These helpers clear every result they do not hand back; a result they do
 * hand back belongs to the caller.
 */
#include "pg_internal.h"

#include <stdarg.h>
#include <stdio.h>
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
    if (connection_lost(d))
        tgt_error_set(err, TGT_ERR_LOAD, "connection to PostgreSQL lost: %s", line);
    else
        tgt_error_set(err, TGT_ERR_LOAD, "PostgreSQL: %s", line);

    const char *context = NULL;
    if (res != NULL) {
        tgt_error_sqlstate(err, PQresultErrorField(res, PG_DIAG_SQLSTATE));
        const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
        if (detail != NULL)
            tgt_error_detail(err, "%s", detail);
        const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
        if (hint != NULL)
            tgt_error_hint(err, "%s", hint);
        context = PQresultErrorField(res, PG_DIAG_CONTEXT);
    }
    char ctx[TGT_ERROR_WHERE_MAX];
    if (context != NULL)
        pg_one_line(context, ctx, sizeof(ctx));
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

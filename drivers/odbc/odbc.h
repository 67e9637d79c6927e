/*
 * odbc.h - the public face of the ODBC driver (unixODBC): its constructor,
 * which the registry (drivers/registry.c) calls for the `driver` setting
 * "odbc".  Everything else is private (odbc_internal.h, odbc_dialect.h).
 *
 * Settings it reads at connect(): odbc_connection_string (a full ODBC
 * connection string, secret), else odbc_dsn with user and password; and
 * dialect (sqlite, mariadb, postgres), else the dialect is detected from
 * SQLGetInfo(SQL_DBMS_NAME).  No message ever shows the connection string
 * or the password.
 */
#ifndef TGT_ODBC_H
#define TGT_ODBC_H

#include "driver.h"

/* A new, unconnected ODBC driver.  NULL on allocation failure. */
tgt_driver *tgt_odbc_driver_new(tgt_error *err);

#endif

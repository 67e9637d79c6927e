/*
 * postgres.h - the public face of the PostgreSQL driver (libpq): its
 * constructor, which the registry (drivers/registry.c) calls for the
 * `driver` setting "postgres".  Everything else of the driver is private
 * (pg_internal.h).
 *
 * Settings it reads at connect(): host, port, user, password, dbname,
 * sslmode, sslrootcert, sslcert, sslkey and conninfo (which wins over the
 * others); unset ones fall back to libpq's defaults and PG* variables.
 */
#ifndef TGT_POSTGRES_H
#define TGT_POSTGRES_H

#include "driver.h"

/* A new, unconnected PostgreSQL driver.  NULL on allocation failure. */
tgt_driver *tgt_postgres_driver_new(tgt_error *err);

#endif

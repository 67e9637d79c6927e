/*
 * pg_caps.h - what PostgreSQL can hold (driver.h tgt_driver_caps), the
 * numbers the core asks the postgres driver for.  No libpq: the unit tests
 * and fuzz targets that build table models as PostgreSQL would link it alone.
 */
#ifndef TGT_PG_CAPS_H
#define TGT_PG_CAPS_H

#include "driver.h"

extern const tgt_driver_caps tgt_pg_caps;

#endif

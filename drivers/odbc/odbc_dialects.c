/*
 * odbc_dialects.c - the dialects the ODBC driver knows, found by the
 * `dialect` setting or by the DBMS name the data source reports.  A new
 * dialect adds its odbc_<name>.c and one entry here.
 */
#include "odbc_dialect.h"

#include <string.h>
#include <strings.h>

static const odbc_dialect *const dialects[] = {
    &odbc_sqlite_dialect,
    &odbc_mariadb_dialect,
    &odbc_postgres_dialect,
};

#define N_DIALECTS (sizeof dialects / sizeof dialects[0])

const odbc_dialect *odbc_dialect_by_name(const char *name)
{
    for (size_t i = 0; i < N_DIALECTS; i++)
        if (strcasecmp(dialects[i]->name, name) == 0)
            return dialects[i];
    return NULL;
}

const odbc_dialect *odbc_dialect_detect(const char *dbms_name)
{
    for (size_t i = 0; i < N_DIALECTS; i++)
        if (dialects[i]->matches(dbms_name))
            return dialects[i];
    return NULL;
}

void odbc_dialect_names(tgt_sbuf *out)
{
    for (size_t i = 0; i < N_DIALECTS; i++)
        tgt_sbuf_printf(out, "%s%s", i > 0 ? ", " : "", dialects[i]->name);
}

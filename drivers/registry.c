/*
 * registry.c - the table of shipped drivers (registry.h).  Compiled into
 * the binary only, like the drivers themselves: the unit tests build their
 * fake driver directly.
 */
#include "registry.h"

#include <ctype.h>
#include <string.h>

#include "odbc/odbc.h"
#include "postgres/postgres.h"
#include "sbuf.h"

typedef struct driver_entry {
    const char *name;
    tgt_driver *(*make)(tgt_error *err);
} driver_entry;

static const driver_entry drivers[] = {
    {"postgres", tgt_postgres_driver_new},
    {"odbc", tgt_odbc_driver_new},
};

#define N_DRIVERS (sizeof drivers / sizeof drivers[0])

tgt_driver *tgt_driver_new(const char *name, tgt_error *err)
{
    for (size_t i = 0; i < N_DRIVERS; i++)
        if (strcmp(drivers[i].name, name) == 0)
            return drivers[i].make(err);
    /* like config.c's messages: the value shown, control characters masked
     * so a setting cannot forge log lines */
    char shown[65];
    size_t n = 0;
    for (; name[n] != '\0' && n < sizeof shown - 1; n++)
        shown[n] = iscntrl((unsigned char)name[n]) ? '?' : name[n];
    shown[n] = '\0';
    tgt_sbuf known;
    tgt_sbuf_init(&known);
    for (size_t i = 0; i < N_DRIVERS; i++)
        tgt_sbuf_printf(&known, "%s%s", i > 0 ? ", " : "", drivers[i].name);
    tgt_error_set(err, TGT_ERR_USAGE, "setting driver must be one of %s, got \"%s%s\"",
                  tgt_sbuf_ok(&known) ? tgt_sbuf_str(&known) : "postgres", shown,
                  name[n] != '\0' ? "..." : "");
    tgt_sbuf_deinit(&known);
    return NULL;
}

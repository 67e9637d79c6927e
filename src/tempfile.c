/*
 * tempfile.c - unlinked scratch files in $TMPDIR, else /tmp (see
 * tempfile.h).  Logs a warning when it falls back; never prints otherwise.
 */
#include "tempfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define FALLBACK_DIR "/tmp"

/* mkstemp in dir; -1 with errno set (ENAMETOOLONG for a path that does not fit). */
static int create_in(const char *dir, const char *what)
{
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/target-pg-%s-XXXXXX", dir, what);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    unlink(path); /* gone with the process, whatever happens */
    return fd;
}

int tgt_tempfile_open(const char *what, tgt_error *err)
{
    const char *dir = getenv("TMPDIR");
    if (dir != NULL && *dir != '\0' && strcmp(dir, FALLBACK_DIR) != 0) {
        int fd = create_in(dir, what);
        if (fd >= 0)
            return fd;
        tgt_log(TGT_LOG_WARN, "cannot create the %s file in TMPDIR %s (%s); using %s instead", what,
                dir, strerror(errno), FALLBACK_DIR);
    }
    int fd = create_in(FALLBACK_DIR, what);
    if (fd < 0) {
        tgt_error_set(err, TGT_ERR_IO, "cannot create the %s file in %s: %s", what, FALLBACK_DIR,
                      strerror(errno));
        tgt_error_hint(err, "Set TMPDIR to a writable directory with room for one batch of "
                            "input lines.");
    }
    return fd;
}

/*
 * tempfile.h - anonymous scratch files (the replay spool) in $TMPDIR.
 *
 * A file is created with mkstemp and unlinked at once, so it vanishes with
 * the process whatever happens.  $TMPDIR that is set but missing or unusable
 * (not a directory, not writable, a path too long) is not fatal: the file
 * goes to /tmp instead, with a warning naming both, because a scratch file
 * in the wrong place is better than a run that fails over it.  Only when
 * /tmp fails too is it an error.
 */
#ifndef TGT_TEMPFILE_H
#define TGT_TEMPFILE_H

#include "error.h"

/* Creates and unlinks a file named <dir>/target-pg-<what>-XXXXXX, opened
 * read-write; returns its descriptor (the caller closes it),
 * or -1 with a TGT_ERR_IO error naming `what` when neither $TMPDIR nor /tmp
 * can hold it. */
int tgt_tempfile_open(const char *what, tgt_error *err);

#endif

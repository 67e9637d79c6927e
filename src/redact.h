/*
 * redact.h - taking the password and the connection string out of text
 * before it is shown (README: "Passwords and conninfo are never written to
 * logs").
 *
 * The driver never puts a password into a message itself, but libpq quotes
 * parts of a malformed connection string back verbatim: the whole URI
 * ("... in URI: "postgresql://u:pw@[::1"") or its bad percent-encoded token,
 * which may be the password ("invalid percent-encoded token: "pw%zz"").
 * Everything that shows a connection failure (the final error in main.c, a
 * retry warning) passes it through here first.
 */
#ifndef TGT_REDACT_H
#define TGT_REDACT_H

#include <stddef.h>

#include "config.h"
#include "error.h"

/* Replaces with "***", in text (a NUL-terminated string in a buffer of cap
 * bytes; the result is cut to fit), every occurrence of: the conninfo
 * setting as a whole; the password of a URI's user:password@; each value
 * after "password=" in the conninfo (key=value or a URI query parameter);
 * the password setting; the pseudonymization_key setting.  cfg may be NULL
 * (nothing to mask).  When a working buffer cannot be had the whole text is
 * replaced by a notice: a secret is never shown for want of memory. */
void tgt_redact(char *text, size_t cap, const tgt_config *cfg);

/* tgt_redact on err's message, detail, hint and where. */
void tgt_redact_error(tgt_error *err, const tgt_config *cfg);

#endif

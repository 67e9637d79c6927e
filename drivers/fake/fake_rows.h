/*
 * fake_rows.h - private to drivers/fake/: the fake driver's row format, a
 * second implementation of the row writer (drivers/row.h) so that nothing in
 * the core can lean on PostgreSQL's COPY text unnoticed.
 *
 * Format: a row is a sequence of cells ended by '\n'; a cell is 'n' (NULL)
 * or 'v' <decimal length> ':' <bytes> (the bytes may hold anything,
 * newlines included).  A staging row carries two more cells, the sequence
 * and the presence mask ('1'/'0' per column, or 'n' when every column was
 * carried), as the COPY rows of the postgres driver do.  Values are kept the
 * fake's own way: booleans "true"/"false", strings decoded, date-times
 * rebuilt from their parts as "YYYY-MM-DDTHH:MM:SS[.f]" plus "Z" or the
 * written offset.
 */
#ifndef TGT_FAKE_ROWS_H
#define TGT_FAKE_ROWS_H

#include <stddef.h>

#include "row.h"
#include "sbuf.h"

extern const tgt_row_ops tgt_fake_row_ops;

/* The length of the complete row at the front of p[0..n) (its '\n'
 * included), 0 when the row is not complete yet, -1 when the bytes are not
 * the format. */
long tgt_fake_row_scan(const char *p, size_t n);

/* Splits the complete row p[0..len) (tgt_fake_row_scan) into at most `max`
 * cells: cells[i] points into buf (NUL-terminated copies; buf is reset and
 * owned by the caller) or is NULL for a NULL cell.  Returns the number of
 * cells in the row (which may exceed max: only max are filled), or -1 when
 * buf ran out of memory. */
long tgt_fake_row_cells(const char *p, size_t len, tgt_sbuf *buf, const char **cells, size_t max);

#endif

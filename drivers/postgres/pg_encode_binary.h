/*
 * pg_encode_binary.h - the PostgreSQL driver's row writer (drivers/row.h):
 * rows as COPY BINARY tuples when the table allows it, else COPY text
 * through pg_encode.h.
 *
 * A binary tuple is an int16 field count, then per field an int32 length
 * (-1 for NULL) and the type's send form (pg_binary.h for numbers and
 * times; text, varchar and json are their UTF-8 bytes, jsonb a version byte
 * 1 and the JSON text).  The server's binary input skips the text parsing
 * that made it the bottleneck of a load, and the values land exactly as the
 * text form of the same values would.  The COPY's header and trailer are not
 * part of any row (the core splits, drops and re-ships rows): pg_copy.c
 * sends them.
 *
 * Which format a row takes is decided by tgt_pg_binary_table(), a function
 * of the table's column types alone, so the rows and the COPY statement
 * pg_copy.c builds for the same table shape always agree.
 */
#ifndef TGT_PG_ENCODE_BINARY_H
#define TGT_PG_ENCODE_BINARY_H

#include "row.h"
#include "table.h"

/* The driver's row writer: binary tuples for a table tgt_pg_binary_table()
 * accepts (a staging row ends with the sequence as bigint and the presence
 * mask as text, '1'/'0' per column, or NULL), tgt_pg_row_ops's COPY text
 * lines for any other. */
extern const tgt_row_ops tgt_pg_binary_row_ops;

/* 1 when every column of t has a type whose binary form the writer sends
 * (the lattice types; a column of another type, e.g. a user's uuid or enum,
 * keeps the whole table on COPY text, which the server parses), and each
 * column target-pg fills itself has the type it creates for it
 * (timestamptz or timestamp for times, an integer for version and
 * sequence).  0 otherwise. */
int tgt_pg_binary_table(const tgt_table *t);

/* The 19 bytes that open a binary COPY's data (signature, flags, header
 * extension length) and the 2 that close it (field count -1). */
#define TGT_PG_BINARY_HEADER "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0"
#define TGT_PG_BINARY_HEADER_LEN 19
#define TGT_PG_BINARY_TRAILER "\377\377"
#define TGT_PG_BINARY_TRAILER_LEN 2

#endif

/*
 * source_path.h - how the property path a column holds is recorded with the
 * column (PostgreSQL: the comment "source: <recorded>") and read back, so
 * that each property keeps its column across runs.
 *
 * The recorded form is a JSON array of the path's parts as sent,
 * ["address","geo","lat"] or ["a.b"]: no two paths share one.  (The first
 * release recorded the parts joined by '.', "a.b", which a property named
 * "a.b" and a nested a -> b share; such comments are still read, see
 * tgt_source_path_read.)  Writing is deterministic and what Python's
 * json.dumps(path, ensure_ascii=False, separators=(",", ":")) gives: '"' and
 * '\' escaped with a backslash, \b \f \n \r \t, other bytes below 0x20 as
 * \u00xx, everything else (UTF-8 included) kept.
 */
#ifndef TGT_SOURCE_PATH_H
#define TGT_SOURCE_PATH_H

#include <stddef.h>

#include "sbuf.h"

/* Appends the recorded form of the path of n_parts parts to out. */
void tgt_source_path_write(const char *const *parts, const size_t *lens, size_t n_parts,
                           tgt_sbuf *out);

/*
 * Reads a recorded path back.  Returns 1 when `recorded` is the JSON-array
 * form (out then holds it as tgt_source_path_write writes it, so equal paths
 * give equal text), 0 when it is the dotted form of the first release (out
 * untouched: compare it with the parts joined by '.'), -1 when out of memory.
 */
int tgt_source_path_read(const char *recorded, tgt_sbuf *out);

#endif

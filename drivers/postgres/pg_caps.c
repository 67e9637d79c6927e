/*
 * pg_caps.c - PostgreSQL's limits (see pg_caps.h), each with where it comes
 * from.
 */
#include "pg_caps.h"

const tgt_driver_caps tgt_pg_caps = {
    /* NAMEDATALEN - 1: the server silently truncates longer names, so two
     * long names could meet; the core cuts them with a hash instead */
    .ident_max = 63,
    .max_columns = 1600,
    /* far below the 1,600-column limit because a wide row must also fit
     * the 8 kB heap tuple (meltanolabs/tap_aapl.singer: 649 filled columns
     * already overflow it, 141 load) */
    .column_budget = 400,
    /* the server parses JSON recursively and its default max_stack_depth
     * (2MB) gives out past about 12,000 levels, with an error that cannot
     * name the input line */
    .json_max_depth = 5000,
    .transactional_ddl = 1,
    /* COMMENT ON COLUMN keeps each column's source path */
    .column_comments = 1,
};

/*
 * state.h - STATE bookkeeping: the latest STATE value received, and whether
 * it still has to be written.  The loader calls tgt_state_emit only after a
 * commit that covers every record received before that STATE, which is the
 * whole guarantee: stdout never runs ahead of the database.
 */
#ifndef TGT_STATE_H
#define TGT_STATE_H

#include <stdio.h>

#include "error.h"
#include "sbuf.h"

typedef struct tgt_state {
    tgt_sbuf latest; /* JSON text of the latest STATE value */
    int pending;     /* received but not yet written */
    unsigned long n_received;
    unsigned long n_written;
} tgt_state;

void tgt_state_init(tgt_state *st);
void tgt_state_deinit(tgt_state *st);

/* Remembers value[0..len) (copied) as the latest STATE. */
int tgt_state_receive(tgt_state *st, const char *value, size_t len, tgt_error *err);

/* Writes the latest STATE as one line to out and flushes, if one is pending.
 * A failed write or flush is TGT_ERR_IO. */
int tgt_state_emit(tgt_state *st, FILE *out, tgt_error *err);

#endif

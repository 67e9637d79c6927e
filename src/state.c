/*
 * state.c - see state.h.  Only the latest value is kept: an orchestrator
 * resumes from the last STATE line it read, so intermediate states that
 * were superseded before a commit carry no information.
 */
#include "state.h"

#include <errno.h>
#include <string.h>

void tgt_state_init(tgt_state *st)
{
    memset(st, 0, sizeof(*st));
    tgt_sbuf_init(&st->latest);
}

void tgt_state_deinit(tgt_state *st)
{
    tgt_sbuf_deinit(&st->latest);
}

int tgt_state_receive(tgt_state *st, const char *value, size_t len, tgt_error *err)
{
    tgt_sbuf_reset(&st->latest);
    tgt_sbuf_append(&st->latest, value, len);
    if (!tgt_sbuf_ok(&st->latest))
        return tgt_error_nomem(err);
    st->pending = 1;
    st->n_received++;
    return 0;
}

int tgt_state_emit(tgt_state *st, FILE *out, tgt_error *err)
{
    if (!st->pending)
        return 0;
    if (fwrite(st->latest.data, 1, st->latest.len, out) != st->latest.len ||
        fputc('\n', out) == EOF || fflush(out) != 0)
        return tgt_error_set(err, TGT_ERR_IO, "cannot write STATE to stdout: %s", strerror(errno));
    st->pending = 0;
    st->n_written++;
    return 0;
}

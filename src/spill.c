/*
 * spill.c - the per-stream queues of waiting rows in one temporary file
 * (see spill.h).  Slot i sits at byte i * TGT_SPILL_SLOT; a freed slot is
 * reused before the file grows.
 */
#include "spill.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tempfile.h"

void tgt_spill_init(tgt_spill *sp)
{
    memset(sp, 0, sizeof(*sp));
    sp->fd = -1;
    sp->free_head = -1;
}

void tgt_spill_deinit(tgt_spill *sp)
{
    if (sp->fd >= 0)
        close(sp->fd);
    free(sp->slots);
    free(sp->buf);
    tgt_spill_init(sp);
}

void tgt_spill_queue_init(tgt_spill_queue *q)
{
    q->head = -1;
    q->tail = -1;
    q->bytes = 0;
}

static int io_failed(const char *what, tgt_error *err)
{
    tgt_error_set(err, TGT_ERR_IO, "cannot %s the file of rows waiting to be sent: %s", what,
                  strerror(errno));
    tgt_error_hint(err, "With several streams interleaved, encoded rows wait for their stream's "
                        "turn in an unlinked file in $TMPDIR (else /tmp); it needs room for up "
                        "to 256 MiB.");
    return -1;
}

/* Opens the file and the read buffer on first use. */
static int ensure_open(tgt_spill *sp, tgt_error *err)
{
    if (sp->fd >= 0)
        return 0;
    if (sp->buf == NULL && (sp->buf = malloc(TGT_SPILL_SLOT)) == NULL)
        return tgt_error_nomem(err);
    sp->fd = tgt_tempfile_open("spill", err);
    return sp->fd < 0 ? -1 : 0;
}

/* A free slot's index: the free list's first, else a new one at the end. */
static int32_t take_slot(tgt_spill *sp, tgt_error *err)
{
    if (sp->free_head >= 0) {
        int32_t i = sp->free_head;
        sp->free_head = sp->slots[i].next;
        return i;
    }
    if (sp->n_slots == sp->cap) {
        if (sp->cap > INT32_MAX / 2) {
            tgt_error_set(err, TGT_ERR_IO, "too many rows wait to be sent");
            return -1;
        }
        int32_t cap = sp->cap ? 2 * sp->cap : 64;
        tgt_spill_slot *grown = realloc(sp->slots, (size_t)cap * sizeof(*grown));
        if (grown == NULL) {
            tgt_error_nomem(err);
            return -1;
        }
        sp->slots = grown;
        sp->cap = cap;
    }
    return sp->n_slots++;
}

static void free_slot(tgt_spill *sp, int32_t i)
{
    sp->slots[i].next = sp->free_head;
    sp->free_head = i;
}

static off_t slot_offset(int32_t i)
{
    return (off_t)i * (off_t)TGT_SPILL_SLOT;
}

static int write_all(int fd, const char *data, size_t len, off_t at, tgt_error *err)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, data, len, at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = ENOSPC;
            return io_failed("write", err);
        }
        data += n;
        len -= (size_t)n;
        at += n;
    }
    return 0;
}

static int read_all(int fd, char *data, size_t len, off_t at, tgt_error *err)
{
    while (len > 0) {
        ssize_t n = pread(fd, data, len, at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO; /* shorter than written: someone truncated it */
            return io_failed("read", err);
        }
        data += n;
        len -= (size_t)n;
        at += n;
    }
    return 0;
}

/* Links the run of slots head..tail (already linked to each other) at the
 * end of q; the bytes are the caller's to count. */
static void link_at_tail(tgt_spill *sp, tgt_spill_queue *q, int32_t head, int32_t tail)
{
    if (q->tail >= 0)
        sp->slots[q->tail].next = head;
    else
        q->head = head;
    q->tail = tail;
}

/* Links slot i (written, len and rows set) at the end of q. */
static void enqueue(tgt_spill *sp, tgt_spill_queue *q, int32_t i)
{
    sp->slots[i].next = -1;
    link_at_tail(sp, q, i, i);
    q->bytes += sp->slots[i].len;
    sp->bytes += sp->slots[i].len;
}

int tgt_spill_push(tgt_spill *sp, tgt_spill_queue *q, const char *data, size_t len,
                   unsigned long rows, tgt_error *err)
{
    if (ensure_open(sp, err) != 0)
        return -1;
    /* written in full before any slot joins q: a failure leaves q as it was */
    tgt_spill_queue part;
    tgt_spill_queue_init(&part);
    while (len > 0) {
        int32_t i = take_slot(sp, err);
        size_t n = len < TGT_SPILL_SLOT ? len : TGT_SPILL_SLOT;
        if (i < 0 || write_all(sp->fd, data, n, slot_offset(i), err) != 0) {
            if (i >= 0)
                free_slot(sp, i);
            tgt_spill_drop(sp, &part); /* also takes its bytes off sp->bytes */
            return -1;
        }
        sp->slots[i].len = (uint32_t)n;
        sp->slots[i].rows = n == len ? (uint32_t)rows : 0;
        enqueue(sp, &part, i);
        data += n;
        len -= n;
    }
    if (part.head < 0)
        return 0;
    link_at_tail(sp, q, part.head, part.tail);
    q->bytes += part.bytes; /* sp->bytes counted them as part's */
    return 0;
}

int tgt_spill_pop(tgt_spill *sp, tgt_spill_queue *q, const char **data, size_t *len,
                  unsigned long *rows, tgt_error *err)
{
    int32_t i = q->head;
    if (i < 0)
        return 0;
    tgt_spill_slot *slot = &sp->slots[i];
    q->head = slot->next;
    if (q->head < 0)
        q->tail = -1;
    q->bytes -= slot->len;
    sp->bytes -= slot->len;
    int rc = read_all(sp->fd, sp->buf, slot->len, slot_offset(i), err);
    *data = sp->buf;
    *len = slot->len;
    *rows = slot->rows;
    free_slot(sp, i);
    return rc != 0 ? -1 : 1;
}

void tgt_spill_drop(tgt_spill *sp, tgt_spill_queue *q)
{
    while (q->head >= 0) {
        int32_t i = q->head;
        q->head = sp->slots[i].next;
        sp->bytes -= sp->slots[i].len;
        free_slot(sp, i);
    }
    q->tail = -1;
    q->bytes = 0;
}

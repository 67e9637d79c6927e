/*
 * spool.c - the uncommitted batch's RECORD lines (see spool.h).
 *
 * Entry layout: line number (8 bytes), stream id (4), length (4), the
 * line's bytes.  Host byte order: the file never outlives the process.
 */
#include "spool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tempfile.h"

/* A large stdio buffer: records arrive one by one, the disk sees big writes.
 * It is allocated here: glibc's setvbuf ignores the size when given no
 * buffer and keeps its 4 kB one, which cost a write(2) per 4 kB of input
 * (137,000 system calls for make bench's 1,000,000 rows). */
#define SPOOL_BUFFER (256u * 1024u)

typedef struct entry_header {
    uint64_t line_no;
    uint32_t stream_id;
    uint32_t len;
} entry_header;

void tgt_spool_init(tgt_spool *sp)
{
    memset(sp, 0, sizeof(*sp));
    tgt_sbuf_init(&sp->line);
}

void tgt_spool_deinit(tgt_spool *sp)
{
    if (sp->file != NULL)
        fclose(sp->file);
    free(sp->buffer); /* after fclose: the stream used it until then */
    tgt_sbuf_deinit(&sp->line);
    memset(sp, 0, sizeof(*sp));
}

static int io_error(tgt_error *err, const char *what)
{
    tgt_error_set(err, TGT_ERR_IO, "cannot %s the spool of uncommitted records: %s", what,
                  strerror(errno));
    tgt_error_hint(err, "The spool is an unlinked file in $TMPDIR (else /tmp); it needs room "
                        "for one batch of input lines.");
    return -1;
}

static int open_file(tgt_spool *sp, tgt_error *err)
{
    if (sp->buffer == NULL && (sp->buffer = malloc(SPOOL_BUFFER)) == NULL)
        return tgt_error_nomem(err);
    int fd = tgt_tempfile_open("spool", err);
    if (fd < 0)
        return -1;
    sp->file = fdopen(fd, "w+b");
    if (sp->file == NULL) {
        close(fd);
        return io_error(err, "open");
    }
    if (setvbuf(sp->file, sp->buffer, _IOFBF, SPOOL_BUFFER) != 0) {
        free(sp->buffer); /* the stream keeps its own buffer */
        sp->buffer = NULL;
    }
    return 0;
}

int tgt_spool_append(tgt_spool *sp, unsigned long line_no, uint32_t stream_id, const char *line,
                     size_t len, tgt_error *err)
{
    if (sp->file == NULL && open_file(sp, err) != 0)
        return -1;
    if (len > UINT32_MAX)
        return tgt_error_set(err, TGT_ERR_INPUT, "input line %lu is longer than 4 GiB", line_no);
    entry_header h = {line_no, stream_id, (uint32_t)len};
    if (fwrite(&h, sizeof(h), 1, sp->file) != 1 || fwrite(line, 1, len, sp->file) != len)
        return io_error(err, "write");
    sp->count++;
    sp->bytes += sizeof(h) + len;
    return 0;
}

int tgt_spool_reset(tgt_spool *sp, tgt_error *err)
{
    sp->count = 0;
    sp->bytes = 0;
    if (sp->file == NULL)
        return 0;
    /* the next batch overwrites this one's pages instead of freeing them
     * (ftruncate) and allocating them again: reading stops at sp->bytes */
    if (fflush(sp->file) != 0)
        return io_error(err, "empty");
    rewind(sp->file);
    return 0;
}

int tgt_spool_rewind(tgt_spool *sp, tgt_error *err)
{
    if (sp->file == NULL)
        return 0;
    if (fflush(sp->file) != 0)
        return io_error(err, "write");
    rewind(sp->file);
    sp->read_pos = 0;
    return 0;
}

int tgt_spool_next(tgt_spool *sp, tgt_spool_entry *e, tgt_error *err)
{
    if (sp->file == NULL || sp->read_pos >= sp->bytes)
        return 0;
    entry_header h;
    if (fread(&h, 1, sizeof(h), sp->file) != sizeof(h))
        return io_error(err, "read");
    tgt_sbuf_reset(&sp->line);
    if (tgt_sbuf_reserve(&sp->line, (size_t)h.len + 1) != 0)
        return tgt_error_nomem(err);
    if (fread(sp->line.data, 1, h.len, sp->file) != h.len)
        return io_error(err, "read");
    sp->read_pos += sizeof(h) + h.len;
    sp->line.len = h.len;
    sp->line.data[h.len] = '\0';
    e->line_no = (unsigned long)h.line_no;
    e->stream_id = h.stream_id;
    e->line = sp->line.data;
    e->len = h.len;
    return 1;
}

int tgt_spool_end_reading(tgt_spool *sp, tgt_error *err)
{
    if (sp->file == NULL)
        return 0;
    if (fseek(sp->file, (long)sp->bytes, SEEK_SET) != 0)
        return io_error(err, "seek in");
    return 0;
}

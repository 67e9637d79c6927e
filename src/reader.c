/*
 * reader.c - bytes to numbered lines, with transparent zstd and gzip.
 *
 * Input is read with read(2) in 256 KiB blocks.  Plain input is scanned in
 * the raw block itself; zstd input (magic 28 B5 2F FD at offset 0) feeds the
 * raw block to a streaming ZSTD_DCtx, gzip input (1F 8B) to a zlib stream
 * (one member after the other, as gzip(1) reads concatenated files), and
 * the decompressed output buffer is scanned instead.  Either way "the current block" is the byte
 * range blk[blk_pos, blk_len) and lines are found in it with memchr.  A line that lies wholly
 * inside the block is returned as a pointer into it, without a copy: that is the hot path for
 * millions of short lines.  Only a line that spans blocks is assembled in the line buffer, an sbuf
 * that grows geometrically and is kept (with its capacity) for reuse.
 *
 * Waiting: unless the fd is a regular file, every read(2) is preceded by
 * poll(2) in slices of at most 200 ms, so the reader notices
 * tgt_reader_stop_requested and, with idle_ms > 0, returns TGT_READ_IDLE
 * while keeping any partial line, the magic sniff and the zstd state, so the
 * next call resumes seamlessly.
 *
 * A reader made with tgt_reader_new_file reads its file to the end whatever
 * the stop flag says: a BATCH file named by a message read before the
 * signal is part of that message, and half of it would be a silent loss.
 *
 * A compressed regular file (a BATCH file, --input FILE, stdin redirected
 * from a file) is read and decompressed on a prefetch thread (prefetch.h)
 * into a ring of four 256 KiB blocks while this thread scans lines; blocks
 * and their errors arrive in order, so lines and error messages are the
 * same as without it.
 *
 * Stopping: when the flag is first seen, FIONREAD tells how many bytes the
 * pipe (socket, terminal) already holds; exactly those are still read, never
 * blocking, so every line written before the signal is delivered even if
 * the writer keeps going.  Then the input counts as ended and a partial last
 * line is dropped, because its writer was cut off in the middle of it.
 *
 * It does not parse JSON, close the fd or print anything.  The reader owns
 * all of its buffers and the decompression context; a returned line points
 * into one of them and stays valid until the next call.  After an error
 * every later call repeats it; after EOF every later call returns EOF.
 */
#include "reader.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "prefetch.h"
#include "sbuf.h"

#define READ_BLOCK ((size_t)256 * 1024)
/* Decompressed blocks between the prefetch thread and the line scanner:
 * four, so neither side waits for the other in the steady state; 256 KiB,
 * because zlib copies the last 32 KiB of every inflate call's output into
 * its window (64 KiB blocks cost 5% more CPU in all). */
#define PREFETCH_BLOCKS 4
#define PREFETCH_BLOCK READ_BLOCK
#define STOP_SLICE_MS 200
#define MAGIC_LEN 4

volatile sig_atomic_t tgt_reader_stop_requested = 0;

static const unsigned char zstd_magic[MAGIC_LEN] = {0x28, 0xB5, 0x2F, 0xFD};
static const unsigned char gzip_magic[2] = {0x1F, 0x8B};

/* Outcome of getting more bytes, one level below tgt_read_status. */
typedef enum io_status { IO_OK, IO_EOF, IO_IDLE, IO_STOP, IO_ERROR } io_status;

struct tgt_reader {
    int fd;
    int idle_ms;
    int poll_first; /* not a regular file: poll before each read */
    int whole;      /* tgt_reader_new_file: the stop flag is not honoured */
    char *name;

    char *raw; /* bytes as read from fd */
    size_t raw_cap, raw_pos, raw_len;
    int raw_eof;

    int sniffed; /* the first MAGIC_LEN bytes (or EOF) have been seen */
    int is_zstd;
    ZSTD_DCtx *dctx;
    int is_gzip;
    z_stream zs;     /* valid when is_gzip */
    int gzip_member; /* inside a gzip member (its end not yet reached) */
    char *out;       /* decompressed bytes */
    size_t out_cap;
    size_t zstd_hint; /* last ZSTD_decompressStream result; 0 at a frame end */
    int zstd_flush;   /* the output buffer filled up: the context may hold more */
    /* a regular compressed file read whole: the decompression above runs on
     * this thread (prefetch.h), which alone touches fd, raw and the
     * decompression state until tgt_reader_free stops it */
    tgt_prefetch *prefetch;
    int stop_between_blocks; /* with prefetch: this thread honours the stop flag */

    const char *blk; /* the block being scanned: raw (plain) or out (zstd) */
    size_t blk_pos, blk_len;

    tgt_sbuf line;     /* a line spanning blocks, assembled */
    int line_returned; /* line was handed out; empty it on the next call */
    unsigned long line_no;

    int first_line_seen; /* the input's first line went past the BOM check */

    int stopping;      /* the stop request was noticed */
    size_t drain_left; /* bytes that had arrived by then and are still to be read */

    int done; /* EOF was returned */
    int failed;
    tgt_error_code fail_code;
    char fail_message[TGT_ERROR_MESSAGE_MAX];
};

tgt_reader *tgt_reader_new(int fd, const char *name, int idle_ms, tgt_error *err)
{
    tgt_reader *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        tgt_error_nomem(err);
        return NULL;
    }
    r->fd = fd;
    r->idle_ms = idle_ms > 0 ? idle_ms : 0;
    struct stat st;
    r->poll_first = !(fstat(fd, &st) == 0 && S_ISREG(st.st_mode));
    r->name = strdup(name != NULL ? name : "input");
    r->raw_cap = READ_BLOCK > ZSTD_DStreamInSize() ? READ_BLOCK : ZSTD_DStreamInSize();
    r->raw = malloc(r->raw_cap);
    tgt_sbuf_init(&r->line);
    if (r->name == NULL || r->raw == NULL) {
        tgt_reader_free(r);
        tgt_error_nomem(err);
        return NULL;
    }
    return r;
}

tgt_reader *tgt_reader_new_file(int fd, const char *name, tgt_error *err)
{
    tgt_reader *r = tgt_reader_new(fd, name, 0, err);
    if (r != NULL)
        r->whole = 1;
    return r;
}

void tgt_reader_free(tgt_reader *r)
{
    if (r == NULL)
        return;
    tgt_prefetch_stop(r->prefetch);
    ZSTD_freeDCtx(r->dctx);
    if (r->is_gzip)
        inflateEnd(&r->zs);
    free(r->out);
    free(r->raw);
    free(r->name);
    tgt_sbuf_deinit(&r->line);
    free(r);
}

const char *tgt_reader_name(const tgt_reader *r)
{
    return r->name;
}

int tgt_reader_is_zstd(const tgt_reader *r)
{
    return r->is_zstd;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static io_status io_error(tgt_reader *r, int errnum, tgt_error *err)
{
    tgt_error_set(err, TGT_ERR_IO, "cannot read %s: %s", r->name, strerror(errnum));
    return IO_ERROR;
}

/* Once a stop is requested: IO_OK while bytes that had arrived before it
 * can still be read without waiting, else IO_STOP.  IO_ERROR (not stopping)
 * when no stop is requested. */
static io_status stop_status(tgt_reader *r)
{
    if (r->whole)
        return IO_ERROR;
    if (!r->stopping) {
        if (!tgt_reader_stop_requested)
            return IO_ERROR;
        r->stopping = 1;
        int n = 0;
        if (r->poll_first && ioctl(r->fd, FIONREAD, &n) == 0 && n > 0)
            r->drain_left = (size_t)n;
    }
    if (r->drain_left > 0) {
        /* never block: someone else might share the fd and have taken them */
        struct pollfd pfd = {.fd = r->fd, .events = POLLIN, .revents = 0};
        if (poll(&pfd, 1, 0) > 0)
            return IO_OK;
        r->drain_left = 0;
    }
    return IO_STOP;
}

/* Waits until fd is readable (or hung up: read reports that), in slices short
 * enough to notice a stop request, and at most idle_ms when that is set. */
static io_status wait_readable(tgt_reader *r, tgt_error *err)
{
    io_status stop = stop_status(r);
    if (stop != IO_ERROR)
        return stop;
    if (!r->poll_first)
        return IO_OK;
    long long deadline = r->idle_ms > 0 ? now_ms() + r->idle_ms : -1;
    for (;;) {
        int slice = STOP_SLICE_MS;
        if (deadline >= 0) {
            long long left = deadline - now_ms();
            if (left <= 0)
                return IO_IDLE;
            if (left < slice)
                slice = (int)left;
        }
        struct pollfd pfd = {.fd = r->fd, .events = POLLIN, .revents = 0};
        int n = poll(&pfd, 1, slice);
        if (n > 0)
            return IO_OK;
        if (n < 0 && errno != EINTR && errno != EAGAIN)
            return io_error(r, errno, err);
        stop = stop_status(r);
        if (stop != IO_ERROR)
            return stop;
    }
}

/* One read(2) of up to cap bytes into dst; IO_OK means *got > 0. */
static io_status read_raw(tgt_reader *r, char *dst, size_t cap, size_t *got, tgt_error *err)
{
    for (;;) {
        io_status st = wait_readable(r, err);
        if (st != IO_OK)
            return st;
        if (r->stopping && cap > r->drain_left)
            cap = r->drain_left;
        ssize_t n = read(r->fd, dst, cap);
        if (n > 0) {
            *got = (size_t)n;
            if (r->stopping)
                r->drain_left -= (size_t)n;
            return IO_OK;
        }
        if (n == 0) {
            r->raw_eof = 1;
            return IO_EOF;
        }
        /* EINTR: go round, which checks the stop flag; EAGAIN: an O_NONBLOCK
         * fd, poll again. */
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            return io_error(r, errno, err);
    }
}

static io_status start_zstd(tgt_reader *r, tgt_error *err)
{
    size_t out_cap = ZSTD_DStreamOutSize();
    r->out_cap = READ_BLOCK > out_cap ? READ_BLOCK : out_cap;
    r->out = malloc(r->out_cap);
    r->dctx = ZSTD_createDCtx();
    if (r->out == NULL || r->dctx == NULL) {
        tgt_error_nomem(err);
        return IO_ERROR;
    }
    r->is_zstd = 1;
    r->raw_pos = 0; /* the magic belongs to the first frame */
    return IO_OK;
}

static io_status start_gzip(tgt_reader *r, tgt_error *err)
{
    r->out_cap = READ_BLOCK;
    r->out = malloc(r->out_cap);
    if (r->out == NULL) {
        tgt_error_nomem(err);
        return IO_ERROR;
    }
    memset(&r->zs, 0, sizeof(r->zs));
    /* 16 + MAX_WBITS: gzip header and trailer, never raw deflate or zlib */
    if (inflateInit2(&r->zs, 16 + MAX_WBITS) != Z_OK) {
        tgt_error_nomem(err);
        return IO_ERROR;
    }
    r->is_gzip = 1;
    r->gzip_member = 1;
    r->raw_pos = 0;
    return IO_OK;
}

/* Reads until MAGIC_LEN bytes or EOF are there, then picks plain, zstd or gzip.
 * Idle and stop leave the bytes read so far in raw for the next attempt. */
static io_status sniff(tgt_reader *r, tgt_error *err)
{
    while (r->raw_len < MAGIC_LEN && !r->raw_eof) {
        size_t got = 0;
        io_status st = read_raw(r, r->raw + r->raw_len, r->raw_cap - r->raw_len, &got, err);
        if (st == IO_EOF)
            break;
        if (st != IO_OK)
            return st;
        r->raw_len += got;
    }
    r->sniffed = 1;
    if (r->raw_len >= MAGIC_LEN && memcmp(r->raw, zstd_magic, MAGIC_LEN) == 0)
        return start_zstd(r, err);
    if (r->raw_len >= MAGIC_LEN && memcmp(r->raw, gzip_magic, sizeof(gzip_magic)) == 0)
        return start_gzip(r, err);
    r->blk = r->raw;
    r->blk_pos = 0;
    r->blk_len = r->raw_len;
    r->raw_pos = r->raw_len;
    return IO_OK;
}

static io_status next_plain_block(tgt_reader *r, tgt_error *err)
{
    if (r->raw_eof)
        return IO_EOF;
    size_t got = 0;
    io_status st = read_raw(r, r->raw, r->raw_cap, &got, err);
    if (st != IO_OK)
        return st;
    r->blk = r->raw;
    r->blk_pos = 0;
    r->blk_len = got;
    return IO_OK;
}

/* Refills the compressed input of a zstd or gzip reader: IO_OK with new
 * bytes at r->raw[0..r->raw_len), IO_EOF at the end of the source (the
 * caller's loop then sees r->raw_eof and decides), else an error. */
static io_status refill_raw(tgt_reader *r, tgt_error *err)
{
    size_t got = 0;
    io_status st = read_raw(r, r->raw, r->raw_cap, &got, err);
    if (st == IO_OK) {
        r->raw_pos = 0;
        r->raw_len = got;
    }
    return st;
}

/* Decompresses into dst[0..cap) until some output appears (*produced).
 * ZSTD_decompressStream moves on to the next frame by itself, so
 * concatenated frames need no special case. */
static io_status decode_zstd(tgt_reader *r, char *dst, size_t cap, size_t *produced, tgt_error *err)
{
    for (;;) {
        if (r->raw_pos == r->raw_len && !r->zstd_flush) {
            if (r->raw_eof) {
                if (r->zstd_hint == 0)
                    return IO_EOF;
                tgt_error_set(err, TGT_ERR_INPUT,
                              "zstd input from %s ends in the middle of a frame", r->name);
                return IO_ERROR;
            }
            io_status st = refill_raw(r, err);
            if (st == IO_EOF)
                continue;
            if (st != IO_OK)
                return st;
        }
        ZSTD_inBuffer in = {r->raw, r->raw_len, r->raw_pos};
        ZSTD_outBuffer out = {dst, cap, 0};
        size_t ret = ZSTD_decompressStream(r->dctx, &out, &in);
        r->raw_pos = in.pos;
        if (ZSTD_isError(ret)) {
            tgt_error_set(err, TGT_ERR_INPUT, "corrupt zstd input from %s: %s", r->name,
                          ZSTD_getErrorName(ret));
            return IO_ERROR;
        }
        r->zstd_hint = ret;
        /* A full output buffer may leave decoded bytes inside the context:
         * call again before asking fd for more. */
        r->zstd_flush = out.pos == out.size;
        if (out.pos > 0) {
            *produced = out.pos;
            return IO_OK;
        }
    }
}

static io_status gzip_error(tgt_reader *r, const char *what, tgt_error *err)
{
    tgt_error_set(err, TGT_ERR_INPUT, "%s gzip input from %s%s%s", what, r->name,
                  r->zs.msg != NULL ? ": " : "", r->zs.msg != NULL ? r->zs.msg : "");
    return IO_ERROR;
}

/* Inflates into dst[0..cap) until some output appears (*produced).  At the
 * end of a member, more input is the next member (inflateReset); at EOF
 * inside a member the file was cut short. */
static io_status decode_gzip(tgt_reader *r, char *dst, size_t cap, size_t *produced, tgt_error *err)
{
    for (;;) {
        if (r->raw_pos == r->raw_len) {
            if (r->raw_eof) {
                if (!r->gzip_member)
                    return IO_EOF;
                return gzip_error(r, "cut-off", err);
            }
            io_status st = refill_raw(r, err);
            if (st == IO_EOF)
                continue;
            if (st != IO_OK)
                return st;
        }
        if (!r->gzip_member) {
            if (inflateReset(&r->zs) != Z_OK)
                return gzip_error(r, "corrupt", err);
            r->gzip_member = 1;
        }
        r->zs.next_in = (Bytef *)(r->raw + r->raw_pos);
        r->zs.avail_in = (uInt)(r->raw_len - r->raw_pos);
        r->zs.next_out = (Bytef *)dst;
        r->zs.avail_out = (uInt)cap;
        int ret = inflate(&r->zs, Z_NO_FLUSH);
        r->raw_pos = r->raw_len - r->zs.avail_in;
        if (ret == Z_STREAM_END)
            r->gzip_member = 0;
        else if (ret != Z_OK && ret != Z_BUF_ERROR)
            return gzip_error(r, "corrupt", err);
        if (r->zs.avail_out < cap) {
            *produced = cap - r->zs.avail_out;
            return IO_OK;
        }
    }
}

static io_status decode(tgt_reader *r, char *dst, size_t cap, size_t *produced, tgt_error *err)
{
    if (r->is_gzip)
        return decode_gzip(r, dst, cap, produced, err);
    return decode_zstd(r, dst, cap, produced, err);
}

/* The prefetch thread's fill function (prefetch.h): one decode call per
 * block, so the lines before a corrupt spot arrive before its error, as
 * without the thread. */
static int prefetch_fill(void *ctx, char *buf, size_t cap, size_t *len, tgt_error *err)
{
    io_status st = decode(ctx, buf, cap, len, err);
    if (st == IO_OK)
        return 1;
    return st == IO_EOF ? 0 : -1;
}

/* A compressed regular file decompresses on a second thread.  Only a
 * regular file: a pipe could block that thread in read(2) beyond a stop,
 * and waiting for a pipe (idle, stop) stays with the caller's thread.  The
 * thread reads the file whole; a stop request is honoured here, between
 * blocks, which for a regular file is what it means anyway.  When the
 * thread cannot be had, this thread decompresses, as before. */
static void start_prefetch(tgt_reader *r)
{
    if (r->poll_first || !(r->is_gzip || r->is_zstd))
        return;
    int whole = r->whole;
    r->whole = 1; /* the thread's reads never look at the stop flag */
    tgt_error ignored;
    tgt_error_init(&ignored);
    r->prefetch = tgt_prefetch_start(prefetch_fill, r, PREFETCH_BLOCKS, PREFETCH_BLOCK, &ignored);
    if (r->prefetch == NULL)
        r->whole = whole;
    r->stop_between_blocks = !whole;
}

static io_status next_prefetched_block(tgt_reader *r, tgt_error *err)
{
    if (r->stop_between_blocks && tgt_reader_stop_requested)
        return IO_STOP;
    size_t len = 0;
    int rc = tgt_prefetch_next(r->prefetch, &r->blk, &len, err);
    if (rc <= 0)
        return rc == 0 ? IO_EOF : IO_ERROR;
    r->blk_pos = 0;
    r->blk_len = len;
    return IO_OK;
}

static io_status next_block(tgt_reader *r, tgt_error *err)
{
    if (r->prefetch != NULL)
        return next_prefetched_block(r, err);
    if (!r->is_gzip && !r->is_zstd)
        return next_plain_block(r, err);
    size_t produced = 0;
    io_status st = decode(r, r->out, r->out_cap, &produced, err);
    if (st == IO_OK) {
        r->blk = r->out;
        r->blk_pos = 0;
        r->blk_len = produced;
    }
    return st;
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

/* Scans the current block for the end of a line.  1: a line (blank or not)
 * is in *text and *n; 0: the block ran out (its tail went to the line buffer);
 * -1: out of memory. */
static int scan_block(tgt_reader *r, const char **text, size_t *n, tgt_error *err)
{
    const char *start = r->blk + r->blk_pos;
    size_t avail = r->blk_len - r->blk_pos;
    const char *nl = memchr(start, '\n', avail);
    size_t used = nl != NULL ? (size_t)(nl - start) : avail;
    if (nl == NULL || r->line.len > 0) {
        tgt_sbuf_append(&r->line, start, used);
        if (!tgt_sbuf_ok(&r->line))
            return tgt_error_nomem(err);
    }
    if (nl == NULL) {
        r->blk_pos = r->blk_len;
        return 0;
    }
    r->blk_pos += used + 1;
    r->line_no++;
    if (r->line.len > 0) {
        *text = r->line.data;
        *n = r->line.len;
        r->line_returned = 1;
    } else {
        *text = start;
        *n = used;
    }
    return 1;
}

static tgt_read_status fail(tgt_reader *r, tgt_error *err)
{
    if (!r->failed) {
        r->failed = 1;
        r->fail_code = tgt_error_is_set(err) ? err->code : TGT_ERR_INTERNAL;
        memcpy(r->fail_message, err->message, sizeof(r->fail_message));
    } else {
        tgt_error_set(err, r->fail_code, "%s", r->fail_message);
    }
    return TGT_READ_ERROR;
}

/* Empties the line buffer once its content is no longer referenced. */
static void release_line(tgt_reader *r)
{
    if (r->line_returned) {
        tgt_sbuf_reset(&r->line);
        r->line_returned = 0;
    }
}

/* The input ended: a last line without '\n' still counts. */
static int take_last_line(tgt_reader *r, const char **text, size_t *n)
{
    if (r->line.len == 0)
        return 0;
    r->line_no++;
    *text = r->line.data;
    *n = r->line.len;
    r->line_returned = 1;
    return 1;
}

/* Maps a non-OK io_status to what tgt_reader_next returns.  *have_line is
 * set when EOF releases a last line without a newline. */
static tgt_read_status map_io_status(tgt_reader *r, io_status st, const char **text, size_t *n,
                                     int *have_line, tgt_error *err)
{
    *have_line = 0;
    switch (st) {
    case IO_IDLE:
        return TGT_READ_IDLE;
    case IO_EOF:
        *have_line = take_last_line(r, text, n);
        if (!*have_line)
            r->done = 1;
        return TGT_READ_EOF;
    case IO_STOP:
        tgt_sbuf_reset(&r->line);
        r->done = 1;
        return TGT_READ_EOF;
    case IO_OK:
    case IO_ERROR:
        break;
    }
    return fail(r, err);
}

/* Drops a UTF-8 byte-order mark from the start of the input's first line
 * (after decompression): Windows tools write one, and it is no part of the
 * JSON.  Anywhere else the bytes stay and the JSON parser refuses them. */
static void skip_bom(tgt_reader *r, const char **text, size_t *n)
{
    static const char bom[3] = {'\xEF', '\xBB', '\xBF'};
    if (r->first_line_seen)
        return;
    r->first_line_seen = 1;
    if (*n >= sizeof(bom) && memcmp(*text, bom, sizeof(bom)) == 0) {
        *text += sizeof(bom);
        *n -= sizeof(bom);
    }
}

tgt_read_status tgt_reader_next(tgt_reader *r, const char **line, size_t *len,
                                unsigned long *line_no, tgt_error *err)
{
    if (r->failed)
        return fail(r, err);
    if (r->done)
        return TGT_READ_EOF;
    release_line(r);
    io_status st = IO_OK;
    if (!r->sniffed) {
        st = sniff(r, err);
        if (st == IO_OK)
            start_prefetch(r);
    }
    for (;;) {
        const char *text = NULL;
        size_t n = 0;
        int found = 0;
        if (st != IO_OK) {
            tgt_read_status rs = map_io_status(r, st, &text, &n, &found, err);
            if (!found)
                return rs;
        } else if (r->blk_pos < r->blk_len) {
            found = scan_block(r, &text, &n, err);
            if (found < 0)
                return fail(r, err);
        }
        if (found)
            skip_bom(r, &text, &n);
        if (found && !is_blank(text, n)) {
            *line = text;
            *len = n;
            *line_no = r->line_no;
            return TGT_READ_LINE;
        }
        release_line(r);
        st = found || r->blk_pos < r->blk_len ? IO_OK : next_block(r, err);
    }
}

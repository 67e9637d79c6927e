/*
 * test_reader.c - unit tests for reader.c: plain and zstd input from temp
 * files and pipes (a forked child feeds pipes in uneven chunks so lines cross
 * read boundaries), line numbering, blank lines, very long lines, corrupt and
 * truncated zstd, idle timeouts and the stop flag, and compressed files read
 * whole (tgt_reader_new_file), which decompress on a prefetch thread:
 * every line in order, errors after the lines before them, freeing the
 * reader mid-file.  Everything is generated
 * in the test; temp files are unlinked at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>
#include <zstd.h>

#include "error.h"
#include "reader.h"

/* ---- helpers ---------------------------------------------------------- */

static void write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        assert_true(w > 0);
        p += w;
        n -= (size_t)w;
    }
}

/* An unlinked temp file holding data, positioned at its start. */
static int temp_fd(const void *data, size_t n)
{
    char path[] = "/tmp/test_reader_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    write_all(fd, data, n);
    assert_true(lseek(fd, 0, SEEK_SET) == 0);
    return fd;
}

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* The read end of a pipe fed by a child that writes data in uneven chunks
 * (1 byte to 100 KiB) with the occasional pause, then closes. */
static int pipe_feed(const void *data, size_t n, pid_t *child)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        rng_state = 0x9e3779b97f4a7c15ull;
        const char *p = data;
        while (n > 0) {
            size_t chunk = rnd() % 4 == 0 ? 1 + rnd() % 16 : 1 + rnd() % (100 * 1024);
            if (chunk > n)
                chunk = n;
            ssize_t w = write(fds[1], p, chunk);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                _exit(1);
            p += w;
            n -= (size_t)w;
            if (rnd() % 64 == 0)
                usleep(1000);
        }
        _exit(0);
    }
    close(fds[1]);
    *child = pid;
    return fds[0];
}

static void reap(pid_t pid)
{
    int status = 0;
    assert_true(waitpid(pid, &status, 0) == pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static unsigned char *zstd_pack(const void *data, size_t n, int checksum, size_t *out_n)
{
    size_t cap = ZSTD_compressBound(n);
    unsigned char *out = malloc(cap);
    assert_non_null(out);
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    assert_non_null(cctx);
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, checksum)));
    size_t z = ZSTD_compress2(cctx, out, cap, data, n);
    assert_false(ZSTD_isError(z));
    ZSTD_freeCCtx(cctx);
    *out_n = z;
    return out;
}

static long long elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)(now.tv_sec - since->tv_sec) * 1000 +
           (now.tv_nsec - since->tv_nsec) / 1000000;
}

static tgt_reader *open_reader(int fd, int idle_ms)
{
    tgt_error err;
    tgt_error_init(&err);
    tgt_reader *r = tgt_reader_new(fd, "t.in", idle_ms, &err);
    assert_non_null(r);
    assert_false(tgt_error_is_set(&err));
    return r;
}

static void expect_line(tgt_reader *r, const char *text, unsigned long want_no)
{
    tgt_error err;
    tgt_error_init(&err);
    const char *line = NULL;
    size_t len = 0;
    unsigned long no = 0;
    assert_int_equal(tgt_reader_next(r, &line, &len, &no, &err), TGT_READ_LINE);
    assert_int_equal(len, strlen(text));
    assert_memory_equal(line, text, len);
    assert_int_equal(no, want_no);
}

static void expect_status(tgt_reader *r, tgt_read_status want)
{
    tgt_error err;
    tgt_error_init(&err);
    const char *line = NULL;
    size_t len = 0;
    unsigned long no = 0;
    assert_int_equal(tgt_reader_next(r, &line, &len, &no, &err), want);
    assert_int_equal(tgt_error_is_set(&err), want == TGT_READ_ERROR);
}

/* Reads until something other than a line and checks it is the error. */
static void expect_error_after_lines(tgt_reader *r, tgt_error_code code, const char *message)
{
    tgt_error err;
    tgt_error_init(&err);
    const char *line;
    size_t len;
    unsigned long no;
    tgt_read_status st;
    while ((st = tgt_reader_next(r, &line, &len, &no, &err)) == TGT_READ_LINE)
        ;
    assert_int_equal(st, TGT_READ_ERROR);
    assert_int_equal(err.code, code);
    assert_string_equal(err.message, message);
    /* Sticky: a later call reports the same error again. */
    tgt_error_init(&err);
    assert_int_equal(tgt_reader_next(r, &line, &len, &no, &err), TGT_READ_ERROR);
    assert_int_equal(err.code, code);
    assert_string_equal(err.message, message);
}

/* Generated input with the non-blank lines it must produce. */
typedef struct expected {
    char *data;
    size_t len;
    size_t n_lines;
    size_t *off, *llen;
    unsigned long *no;
} expected;

/* Lines of 1..max_len bytes (some with CR, some blank), roughly total bytes. */
static void gen_input(expected *e, size_t total, size_t max_len, size_t long_every)
{
    size_t cap = total + max_len + 16, n_cap = total / 2 + 16;
    e->data = malloc(cap);
    e->off = malloc(n_cap * sizeof(size_t));
    e->llen = malloc(n_cap * sizeof(size_t));
    e->no = malloc(n_cap * sizeof(unsigned long));
    assert_true(e->data && e->off && e->llen && e->no);
    e->len = 0;
    e->n_lines = 0;
    unsigned long line_no = 0;
    while (e->len < total) {
        line_no++;
        if (rnd() % 16 == 0) { /* blank: nothing, or spaces, tabs, CR */
            size_t n = rnd() % 4;
            for (size_t i = 0; i < n; i++)
                e->data[e->len++] = " \t\r"[rnd() % 3];
            e->data[e->len++] = '\n';
            continue;
        }
        size_t n = 1 + rnd() % max_len;
        if (long_every && rnd() % long_every == 0)
            n = max_len * 8 + rnd() % max_len;
        if (e->len + n + 2 > cap)
            n = cap - e->len - 2;
        e->off[e->n_lines] = e->len;
        e->no[e->n_lines] = line_no;
        for (size_t i = 0; i < n; i++)
            e->data[e->len + i] = (char)('a' + (e->len + i) % 26);
        if (n > 1 && rnd() % 8 == 0)
            e->data[e->len + n - 1] = '\r';
        e->llen[e->n_lines++] = n;
        e->len += n;
        e->data[e->len++] = '\n';
        if (e->n_lines == n_cap)
            break;
    }
}

static void free_expected(expected *e)
{
    free(e->data);
    free(e->off);
    free(e->llen);
    free(e->no);
}

/* Reads everything from r and compares with e (counting failures rather than
 * asserting per line, which would be slow for many lines). */
static void check_all(tgt_reader *r, const expected *e)
{
    tgt_error err;
    tgt_error_init(&err);
    const char *line;
    size_t len;
    unsigned long no;
    size_t i = 0, bad = 0;
    tgt_read_status st;
    while ((st = tgt_reader_next(r, &line, &len, &no, &err)) == TGT_READ_LINE) {
        if (i >= e->n_lines || len != e->llen[i] || no != e->no[i] ||
            memcmp(line, e->data + e->off[i], len) != 0) {
            if (bad++ == 0)
                print_error("line %zu differs (got no %lu len %zu)\n", i, no, len);
        }
        i++;
    }
    assert_int_equal(st, TGT_READ_EOF);
    assert_false(tgt_error_is_set(&err));
    assert_int_equal(bad, 0);
    assert_int_equal(i, e->n_lines);
}

/* ---- plain input ------------------------------------------------------ */

static void test_plain_lines(void **state)
{
    (void)state;
    static const char in[] = "{\"a\":1}\nbb\nccc\n";
    int fd = temp_fd(in, sizeof(in) - 1);
    tgt_reader *r = open_reader(fd, 0);
    expect_line(r, "{\"a\":1}", 1);
    expect_line(r, "bb", 2);
    expect_line(r, "ccc", 3);
    expect_status(r, TGT_READ_EOF);
    expect_status(r, TGT_READ_EOF);
    assert_int_equal(tgt_reader_is_zstd(r), 0);
    assert_string_equal(tgt_reader_name(r), "t.in");
    tgt_reader_free(r);
    close(fd);
}

static void test_crlf_kept(void **state)
{
    (void)state;
    static const char in[] = "{}\r\n\r\n x\r\n";
    int fd = temp_fd(in, sizeof(in) - 1);
    tgt_reader *r = open_reader(fd, 0);
    expect_line(r, "{}\r", 1);
    expect_line(r, " x\r", 3);
    expect_status(r, TGT_READ_EOF);
    tgt_reader_free(r);
    close(fd);
}

static void test_blank_lines_counted(void **state)
{
    (void)state;
    static const char in[] = "\n  \t\r\nx\n\r\n\n\t y \n   ";
    int fd = temp_fd(in, sizeof(in) - 1);
    tgt_reader *r = open_reader(fd, 0);
    expect_line(r, "x", 3);
    expect_line(r, "\t y ", 6);
    expect_status(r, TGT_READ_EOF); /* the blank last line without '\n' */
    tgt_reader_free(r);
    close(fd);
}

static void test_missing_final_newline(void **state)
{
    (void)state;
    static const char in[] = "a\n\nlast";
    int fd = temp_fd(in, sizeof(in) - 1);
    tgt_reader *r = open_reader(fd, 0);
    expect_line(r, "a", 1);
    expect_line(r, "last", 3);
    expect_status(r, TGT_READ_EOF);
    expect_status(r, TGT_READ_EOF);
    tgt_reader_free(r);
    close(fd);
}

/* A UTF-8 byte-order mark starts the input: it is skipped, in plain and
 * zstd input, from a file or a pipe fed in uneven chunks, also when the
 * first line is blank; anywhere else the bytes stay. */
static void check_bom(const char *in, size_t n, int zstd, int piped, const char *first,
                      unsigned long first_no, const char *second)
{
    size_t zn = n;
    unsigned char *z = zstd ? zstd_pack(in, n, 1, &zn) : NULL;
    pid_t child = 0;
    int fd = piped ? pipe_feed(zstd ? (const void *)z : in, zn, &child)
                   : temp_fd(zstd ? (const void *)z : in, zn);
    tgt_reader *r = open_reader(fd, 0);
    expect_line(r, first, first_no);
    expect_line(r, second, first_no + 1);
    expect_status(r, TGT_READ_EOF);
    tgt_reader_free(r);
    close(fd);
    if (piped)
        reap(child);
    free(z);
}

static void test_bom_skipped(void **state)
{
    (void)state;
    static const char bom_first[] = "\xEF\xBB\xBF{\"a\":1}\n\xEF\xBB\xBF{}\n";
    static const char bom_blank[] = "\xEF\xBB\xBF \r\n{}\nx\n";
    for (int zstd = 0; zstd <= 1; zstd++) {
        for (int piped = 0; piped <= 1; piped++) {
            check_bom(bom_first, sizeof(bom_first) - 1, zstd, piped, "{\"a\":1}", 1,
                      "\xEF\xBB\xBF{}");
            check_bom(bom_blank, sizeof(bom_blank) - 1, zstd, piped, "{}", 2, "x");
        }
    }
    /* only a whole mark at the very start counts */
    static const char not_first[] = "\n\xEF\xBB\xBF{}\nx\n";
    check_bom(not_first, sizeof(not_first) - 1, 0, 0, "\xEF\xBB\xBF{}", 2, "x");
    static const char partial[] = "\xEF\xBB{}\nx\n";
    check_bom(partial, sizeof(partial) - 1, 0, 0, "\xEF\xBB{}", 1, "x");
}

static void test_empty_and_short_inputs(void **state)
{
    (void)state;
    int fd = temp_fd("", 0);
    tgt_reader *r = open_reader(fd, 0);
    expect_status(r, TGT_READ_EOF);
    assert_int_equal(tgt_reader_is_zstd(r), 0);
    tgt_reader_free(r);
    close(fd);

    fd = temp_fd("ab", 2);
    r = open_reader(fd, 0);
    expect_line(r, "ab", 1);
    expect_status(r, TGT_READ_EOF);
    tgt_reader_free(r);
    close(fd);

    /* Three bytes of the zstd magic are not zstd: too short, plain. */
    fd = temp_fd("\x28\xb5\x2f", 3);
    r = open_reader(fd, 0);
    expect_line(r, "\x28\xb5\x2f", 1);
    assert_int_equal(tgt_reader_is_zstd(r), 0);
    tgt_reader_free(r);
    close(fd);
}

static void test_embedded_nul_kept(void **state)
{
    (void)state;
    static const char in[] = "a\0b\n";
    int fd = temp_fd(in, sizeof(in) - 1);
    tgt_reader *r = open_reader(fd, 0);
    tgt_error err;
    tgt_error_init(&err);
    const char *line;
    size_t len;
    unsigned long no;
    assert_int_equal(tgt_reader_next(r, &line, &len, &no, &err), TGT_READ_LINE);
    assert_int_equal(len, 3);
    assert_memory_equal(line, "a\0b", 3);
    tgt_reader_free(r);
    close(fd);
}

static void check_huge_line(int zstd)
{
    const size_t big = (size_t)64 * 1024 * 1024;
    char *in = malloc(big + 16);
    assert_non_null(in);
    for (size_t i = 0; i < big; i++)
        in[i] = (char)('A' + i % 23);
    memcpy(in + big, "\nsmall\n", 7);
    size_t n = big + 7;
    unsigned char *packed = NULL;
    int fd;
    if (zstd) {
        packed = zstd_pack(in, n, 0, &n);
        fd = temp_fd(packed, n);
    } else {
        fd = temp_fd(in, n);
    }
    tgt_reader *r = open_reader(fd, 0);
    tgt_error err;
    tgt_error_init(&err);
    const char *line;
    size_t len;
    unsigned long no;
    assert_int_equal(tgt_reader_next(r, &line, &len, &no, &err), TGT_READ_LINE);
    assert_int_equal(len, big);
    assert_int_equal(no, 1);
    assert_true(memcmp(line, in, big) == 0);
    expect_line(r, "small", 2);
    expect_status(r, TGT_READ_EOF);
    assert_int_equal(tgt_reader_is_zstd(r), zstd);
    tgt_reader_free(r);
    close(fd);
    free(packed);
    free(in);
}

static void test_huge_line(void **state)
{
    (void)state;
    check_huge_line(0);
}

static void test_huge_line_zstd(void **state)
{
    (void)state;
    check_huge_line(1);
}

static void test_many_lines_file(void **state)
{
    (void)state;
    rng_state = 12345;
    expected e;
    gen_input(&e, (size_t)6 * 1024 * 1024, 1200, 0);
    int fd = temp_fd(e.data, e.len);
    tgt_reader *r = open_reader(fd, 0);
    check_all(r, &e);
    tgt_reader_free(r);
    close(fd);
    free_expected(&e);
}

static void test_many_lines_pipe(void **state)
{
    (void)state;
    rng_state = 777;
    expected e;
    gen_input(&e, (size_t)6 * 1024 * 1024, 900, 0);
    pid_t child;
    int fd = pipe_feed(e.data, e.len, &child);
    tgt_reader *r = open_reader(fd, 0);
    check_all(r, &e);
    tgt_reader_free(r);
    close(fd);
    reap(child);
    free_expected(&e);
}

/* Lines of 0.5-1 MiB, each spanning several read blocks. */
static void test_long_lines_span_blocks(void **state)
{
    (void)state;
    rng_state = 4242;
    expected e;
    gen_input(&e, (size_t)24 * 1024 * 1024, 64 * 1024, 4);
    int fd = temp_fd(e.data, e.len);
    tgt_reader *r = open_reader(fd, 0);
    check_all(r, &e);
    tgt_reader_free(r);
    close(fd);

    pid_t child;
    fd = pipe_feed(e.data, e.len, &child);
    r = open_reader(fd, 0);
    check_all(r, &e);
    tgt_reader_free(r);
    close(fd);
    reap(child);
    free_expected(&e);
}

static void test_read_error(void **state)
{
    (void)state;
    int fd = open("/tmp", O_RDONLY);
    assert_true(fd >= 0);
    tgt_reader *r = open_reader(fd, 0);
    expect_error_after_lines(r, TGT_ERR_IO, "cannot read t.in: Is a directory");
    tgt_reader_free(r);
    close(fd);
}

static void test_free_null(void **state)
{
    (void)state;
    tgt_reader_free(NULL);
}

/* ---- zstd ------------------------------------------------------------- */

static void test_zstd_simple(void **state)
{
    (void)state;
    static const char in[] = "{\"type\":\"RECORD\"}\n\n  \nsecond\r\nlast";
    size_t n;
    unsigned char *z = zstd_pack(in, sizeof(in) - 1, 1, &n);
    int fd = temp_fd(z, n);
    tgt_reader *r = open_reader(fd, 0);
    expect_line(r, "{\"type\":\"RECORD\"}", 1);
    assert_int_equal(tgt_reader_is_zstd(r), 1);
    expect_line(r, "second\r", 4);
    expect_line(r, "last", 5);
    expect_status(r, TGT_READ_EOF);
    expect_status(r, TGT_READ_EOF);
    tgt_reader_free(r);
    close(fd);
    free(z);
}

/* Two frames back to back; a line is split across the frame boundary. */
static void test_zstd_concatenated_frames(void **state)
{
    (void)state;
    static const char a[] = "a\n\nb";
    static const char b[] = "c\n\n d\n";
    size_t na, nb;
    unsigned char *za = zstd_pack(a, sizeof(a) - 1, 0, &na);
    unsigned char *zb = zstd_pack(b, sizeof(b) - 1, 1, &nb);
    unsigned char *both = malloc(na + nb);
    assert_non_null(both);
    memcpy(both, za, na);
    memcpy(both + na, zb, nb);
    int fd = temp_fd(both, na + nb);
    tgt_reader *r = open_reader(fd, 0);
    expect_line(r, "a", 1);
    expect_line(r, "bc", 3);
    expect_line(r, " d", 5);
    expect_status(r, TGT_READ_EOF);
    tgt_reader_free(r);
    close(fd);
    free(za);
    free(zb);
    free(both);
}

static void test_zstd_big_multiblock(void **state)
{
    (void)state;
    rng_state = 99;
    expected e;
    gen_input(&e, (size_t)12 * 1024 * 1024, 2000, 50);
    size_t n;
    unsigned char *z = zstd_pack(e.data, e.len, 1, &n);
    int fd = temp_fd(z, n);
    tgt_reader *r = open_reader(fd, 0);
    check_all(r, &e);
    assert_int_equal(tgt_reader_is_zstd(r), 1);
    tgt_reader_free(r);
    close(fd);

    pid_t child;
    fd = pipe_feed(z, n, &child);
    r = open_reader(fd, 0);
    check_all(r, &e);
    tgt_reader_free(r);
    close(fd);
    reap(child);
    free(z);
    free_expected(&e);
}

/* Highly compressible input: one read yields many output buffers, so the
 * reader must drain the context before reading again. */
static void test_zstd_high_ratio(void **state)
{
    (void)state;
    const size_t n_lines = 200000;
    static const char one[] = "{\"type\":\"RECORD\",\"stream\":\"s\",\"record\":{\"id\":1}}\n";
    size_t ll = sizeof(one) - 1;
    char *in = malloc(n_lines * ll);
    assert_non_null(in);
    for (size_t i = 0; i < n_lines; i++)
        memcpy(in + i * ll, one, ll);
    size_t n;
    unsigned char *z = zstd_pack(in, n_lines * ll, 0, &n);
    assert_true(n < 64 * 1024);
    int fd = temp_fd(z, n);
    tgt_reader *r = open_reader(fd, 0);
    tgt_error err;
    tgt_error_init(&err);
    const char *line;
    size_t len, count = 0, bad = 0;
    unsigned long no;
    while (tgt_reader_next(r, &line, &len, &no, &err) == TGT_READ_LINE) {
        count++;
        if (len != ll - 1 || memcmp(line, one, len) != 0 || no != count)
            bad++;
    }
    assert_false(tgt_error_is_set(&err));
    assert_int_equal(count, n_lines);
    assert_int_equal(bad, 0);
    tgt_reader_free(r);
    close(fd);
    free(z);
    free(in);
}

static void test_zstd_corrupt_header(void **state)
{
    (void)state;
    unsigned char in[24];
    memcpy(in, "\x28\xb5\x2f\xfd", 4);
    memset(in + 4, 0xff, sizeof(in) - 4);
    int fd = temp_fd(in, sizeof(in));
    tgt_reader *r = open_reader(fd, 0);
    tgt_error err;
    tgt_error_init(&err);
    const char *line;
    size_t len;
    unsigned long no;
    assert_int_equal(tgt_reader_next(r, &line, &len, &no, &err), TGT_READ_ERROR);
    assert_int_equal(err.code, TGT_ERR_INPUT);
    assert_true(strncmp(err.message, "corrupt zstd input from t.in: ", 30) == 0);
    assert_true(strlen(err.message) > 30);
    tgt_reader_free(r);
    close(fd);
}

/* Flipped bytes inside a checksummed frame. */
static void test_zstd_corrupt_body(void **state)
{
    (void)state;
    rng_state = 5;
    expected e;
    gen_input(&e, 400 * 1024, 300, 0);
    size_t n;
    unsigned char *z = zstd_pack(e.data, e.len, 1, &n);
    for (size_t i = n / 2; i < n / 2 + 8; i++)
        z[i] ^= 0x5a;
    int fd = temp_fd(z, n);
    tgt_reader *r = open_reader(fd, 0);
    tgt_error err;
    tgt_error_init(&err);
    const char *line;
    size_t len;
    unsigned long no;
    tgt_read_status st;
    while ((st = tgt_reader_next(r, &line, &len, &no, &err)) == TGT_READ_LINE)
        ;
    assert_int_equal(st, TGT_READ_ERROR);
    assert_int_equal(err.code, TGT_ERR_INPUT);
    assert_true(strncmp(err.message, "corrupt zstd input from t.in: ", 30) == 0);
    tgt_reader_free(r);
    close(fd);
    free(z);
    free_expected(&e);
}

static void test_zstd_trailing_garbage(void **state)
{
    (void)state;
    static const char in[] = "ok\n";
    size_t n;
    unsigned char *z = zstd_pack(in, sizeof(in) - 1, 0, &n);
    unsigned char *buf = malloc(n + 8);
    assert_non_null(buf);
    memcpy(buf, z, n);
    memcpy(buf + n, "garbage!", 8);
    int fd = temp_fd(buf, n + 8);
    tgt_reader *r = open_reader(fd, 0);
    expect_line(r, "ok", 1);
    expect_error_after_lines(r, TGT_ERR_INPUT,
                             "corrupt zstd input from t.in: Unknown frame descriptor");
    tgt_reader_free(r);
    close(fd);
    free(z);
    free(buf);
}

static void test_zstd_truncated(void **state)
{
    (void)state;
    rng_state = 6;
    expected e;
    gen_input(&e, 1024 * 1024, 500, 0);
    size_t n;
    unsigned char *z = zstd_pack(e.data, e.len, 0, &n);
    int fd = temp_fd(z, n - 5);
    tgt_reader *r = open_reader(fd, 0);
    expect_error_after_lines(r, TGT_ERR_INPUT,
                             "zstd input from t.in ends in the middle of a frame");
    tgt_reader_free(r);
    close(fd);

    /* Only the magic. */
    fd = temp_fd("\x28\xb5\x2f\xfd", 4);
    r = open_reader(fd, 0);
    expect_error_after_lines(r, TGT_ERR_INPUT,
                             "zstd input from t.in ends in the middle of a frame");
    assert_int_equal(tgt_reader_is_zstd(r), 1);
    tgt_reader_free(r);
    close(fd);
    free(z);
    free_expected(&e);
}

/* ---- compressed files read whole (the prefetch thread) ---------------- */

static unsigned char *gzip_pack(const void *data, size_t n, size_t *out_n)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, (uLong)n);
    unsigned char *out = malloc(cap);
    assert_non_null(out);
    zs.next_in = (Bytef *)data;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *out_n = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

static tgt_reader *open_file_reader(int fd)
{
    tgt_error err;
    tgt_error_init(&err);
    tgt_reader *r = tgt_reader_new_file(fd, "t.in", &err);
    assert_non_null(r);
    return r;
}

/* Many blocks' worth of lines through the ring, in order, with their numbers. */
static void test_file_zstd_and_gzip(void **state)
{
    (void)state;
    rng_state = 21;
    expected e;
    gen_input(&e, 6 * 1024 * 1024, 700, 50);
    size_t n;
    unsigned char *z = zstd_pack(e.data, e.len, 1, &n);
    int fd = temp_fd(z, n);
    tgt_reader *r = open_file_reader(fd);
    check_all(r, &e);
    assert_int_equal(tgt_reader_is_zstd(r), 1);
    tgt_reader_free(r);
    close(fd);
    free(z);

    /* two gzip members, split inside a line */
    size_t half = e.len / 2, n1, n2;
    unsigned char *g1 = gzip_pack(e.data, half, &n1);
    unsigned char *g2 = gzip_pack(e.data + half, e.len - half, &n2);
    unsigned char *g = malloc(n1 + n2);
    assert_non_null(g);
    memcpy(g, g1, n1);
    memcpy(g + n1, g2, n2);
    fd = temp_fd(g, n1 + n2);
    r = open_file_reader(fd);
    check_all(r, &e);
    tgt_reader_free(r);
    close(fd);
    free(g);
    free(g1);
    free(g2);
    free_expected(&e);
}

/* Reads lines until an error; their count. */
static size_t lines_before_error(tgt_reader *r, tgt_error *err)
{
    const char *line;
    size_t len, count = 0;
    unsigned long no;
    tgt_read_status st;
    while ((st = tgt_reader_next(r, &line, &len, &no, err)) == TGT_READ_LINE)
        count++;
    assert_int_equal(st, TGT_READ_ERROR);
    return count;
}

/* A cut-off gzip file and a corrupt zstd one: the lines decompressed before
 * the damage first, then the error, as without the thread. */
static void test_file_damaged(void **state)
{
    (void)state;
    rng_state = 22;
    expected e;
    gen_input(&e, 4 * 1024 * 1024, 300, 0);
    size_t n;
    unsigned char *g = gzip_pack(e.data, e.len, &n);
    int fd = temp_fd(g, n / 2);
    tgt_reader *r = open_file_reader(fd);
    tgt_error err;
    tgt_error_init(&err);
    size_t got = lines_before_error(r, &err);
    assert_int_equal(err.code, TGT_ERR_INPUT);
    assert_string_equal(err.message, "cut-off gzip input from t.in");
    assert_true(got > e.n_lines / 4 && got < e.n_lines);
    tgt_reader_free(r);
    close(fd);
    free(g);

    unsigned char *z = zstd_pack(e.data, e.len, 1, &n);
    for (size_t i = n / 2; i < n / 2 + 16; i++)
        z[i] ^= 0x5a;
    fd = temp_fd(z, n);
    r = open_file_reader(fd);
    tgt_error_init(&err);
    got = lines_before_error(r, &err);
    assert_int_equal(err.code, TGT_ERR_INPUT);
    assert_true(strncmp(err.message, "corrupt zstd input from t.in: ", 30) == 0);
    assert_true(got > 0 && got < e.n_lines);
    tgt_reader_free(r);
    close(fd);
    free(z);
    free_expected(&e);
}

/* Freed after one line while the thread waits on a full ring: it ends. */
static void test_file_freed_mid_way(void **state)
{
    (void)state;
    rng_state = 23;
    expected e;
    gen_input(&e, 8 * 1024 * 1024, 200, 0);
    size_t n;
    unsigned char *g = gzip_pack(e.data, e.len, &n);
    int fd = temp_fd(g, n);
    tgt_reader *r = open_file_reader(fd);
    tgt_error err;
    tgt_error_init(&err);
    const char *line;
    size_t len;
    unsigned long no;
    assert_int_equal(tgt_reader_next(r, &line, &len, &no, &err), TGT_READ_LINE);
    assert_int_equal(len, e.llen[0]);
    assert_memory_equal(line, e.data + e.off[0], len);
    assert_int_equal(no, e.no[0]);
    tgt_reader_free(r);
    close(fd);
    free(g);
    free_expected(&e);
}

/* ---- idle and stop ---------------------------------------------------- */

static void expect_idle(tgt_reader *r)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect_status(r, TGT_READ_IDLE);
    long long ms = elapsed_ms(&t0);
    assert_true(ms >= 45);
    assert_true(ms < 2000);
}

static void test_idle_then_data(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    tgt_reader *r = open_reader(fds[0], 50);
    expect_idle(r);
    expect_idle(r);
    write_all(fds[1], "x", 1); /* fewer bytes than the magic: sniff resumes */
    expect_idle(r);
    write_all(fds[1], "yz\nab", 5);
    expect_line(r, "xyz", 1);
    expect_idle(r); /* "ab" is a partial line, kept */
    write_all(fds[1], "c\n\n", 3);
    expect_line(r, "abc", 2);
    expect_idle(r);
    write_all(fds[1], "end", 3);
    close(fds[1]);
    expect_line(r, "end", 4);
    expect_status(r, TGT_READ_EOF);
    tgt_reader_free(r);
    close(fds[0]);
}

/* Reads lines until TGT_READ_IDLE, appending "<no>:<text>;" to out. */
static void lines_until_idle(tgt_reader *r, char *out, size_t cap)
{
    tgt_error err;
    tgt_error_init(&err);
    const char *line;
    size_t len;
    unsigned long no;
    tgt_read_status st;
    while ((st = tgt_reader_next(r, &line, &len, &no, &err)) == TGT_READ_LINE) {
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%lu:%.*s;", no, (int)len, line);
    }
    assert_int_equal(st, TGT_READ_IDLE);
}

static void test_idle_mid_zstd_frame(void **state)
{
    (void)state;
    static const char in[] = "one\ntwo\n\nthree\n";
    size_t n;
    unsigned char *z = zstd_pack(in, sizeof(in) - 1, 1, &n);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    tgt_reader *r = open_reader(fds[0], 50);
    char got[128] = "";
    write_all(fds[1], z, 2);
    expect_idle(r);
    /* zstd may hand out part of a raw block early; only the total matters. */
    write_all(fds[1], z + 2, n / 2);
    lines_until_idle(r, got, sizeof(got));
    write_all(fds[1], z + 2 + n / 2, n - 2 - n / 2);
    lines_until_idle(r, got, sizeof(got));
    assert_string_equal(got, "1:one;2:two;4:three;");
    close(fds[1]);
    expect_status(r, TGT_READ_EOF);
    assert_int_equal(tgt_reader_is_zstd(r), 1);
    tgt_reader_free(r);
    close(fds[0]);
    free(z);
}

static int reset_stop(void **state)
{
    (void)state;
    tgt_reader_stop_requested = 0;
    return 0;
}

static void *request_stop_later(void *arg)
{
    (void)arg;
    usleep(100 * 1000);
    tgt_reader_stop_requested = 1;
    return NULL;
}

/* The flag is set from another thread, without a signal to interrupt poll:
 * the reader must notice it through its wake-up slices. */
static void test_stop_wakes_blocked_reader(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    write_all(fds[1], "{\"a\":1}\npartial", 15);
    tgt_reader *r = open_reader(fds[0], 0);
    expect_line(r, "{\"a\":1}", 1);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, request_stop_later, NULL), 0);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect_status(r, TGT_READ_EOF); /* the cut-off partial line is dropped */
    long long ms = elapsed_ms(&t0);
    assert_true(ms >= 90 && ms < 1000);
    assert_int_equal(pthread_join(th, NULL), 0);
    expect_status(r, TGT_READ_EOF);
    tgt_reader_free(r);
    close(fds[0]);
    close(fds[1]);
}

static void on_alarm(int sig)
{
    (void)sig;
    tgt_reader_stop_requested = 1;
}

/* A signal handler sets the flag; with idle_ms set, stop still wins. */
static void test_stop_from_signal(void **state)
{
    (void)state;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    tgt_reader *r = open_reader(fds[0], 10000);
    alarm(1);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect_status(r, TGT_READ_EOF);
    assert_true(elapsed_ms(&t0) < 3000);
    alarm(0);
    sigaction(SIGALRM, &old, NULL);
    tgt_reader_free(r);
    close(fds[0]);
    close(fds[1]);
}

static void test_stop_before_first_read(void **state)
{
    (void)state;
    int fd = temp_fd("a\n", 2);
    tgt_reader *r = open_reader(fd, 0);
    tgt_reader_stop_requested = 1;
    expect_status(r, TGT_READ_EOF);
    tgt_reader_free(r);
    close(fd);
}

/* What had arrived when the stop was noticed is still read (every complete
 * line of it); what arrives later is not, and the cut-off tail is dropped. */
static void test_stop_reads_what_arrived(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    write_all(fds[1], "{\"a\":1}\n\n{\"b\":2}\n{\"c\":", 22);
    tgt_reader *r = open_reader(fds[0], 1000);
    tgt_reader_stop_requested = 1;
    expect_line(r, "{\"a\":1}", 1);
    write_all(fds[1], "3}\n{\"d\":4}\n", 11); /* after the stop: not read */
    expect_line(r, "{\"b\":2}", 3);
    expect_status(r, TGT_READ_EOF);
    expect_status(r, TGT_READ_EOF);
    tgt_reader_free(r);
    close(fds[0]);
    close(fds[1]);
}

/* The same for zstd input cut in the middle of a frame: no "truncated" error. */
static void test_stop_mid_zstd_frame(void **state)
{
    (void)state;
    static const char in[] = "one\ntwo\nthree\n";
    size_t n;
    unsigned char *z = zstd_pack(in, sizeof(in) - 1, 1, &n);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    write_all(fds[1], z, n - 3);
    tgt_reader *r = open_reader(fds[0], 0);
    tgt_reader_stop_requested = 1;
    tgt_error err;
    tgt_error_init(&err);
    const char *line;
    size_t len;
    unsigned long no;
    tgt_read_status st;
    while ((st = tgt_reader_next(r, &line, &len, &no, &err)) == TGT_READ_LINE)
        ;
    assert_int_equal(st, TGT_READ_EOF);
    assert_false(tgt_error_is_set(&err));
    tgt_reader_free(r);
    close(fds[0]);
    close(fds[1]);
    free(z);
}

/* A compressed regular file read as input (--input, stdin from a file):
 * a stop ends it after the block in hand, well before the file's end,
 * with no partial line; read whole (a BATCH file), the stop changes
 * nothing. */
static void test_stop_compressed_file(void **state)
{
    (void)state;
    rng_state = 24;
    expected e;
    gen_input(&e, 8 * 1024 * 1024, 200, 0);
    size_t n;
    unsigned char *g = gzip_pack(e.data, e.len, &n);
    int fd = temp_fd(g, n);
    tgt_reader *r = open_reader(fd, 0);
    tgt_error err;
    tgt_error_init(&err);
    const char *line;
    size_t len, count = 0, bad = 0;
    unsigned long no;
    tgt_read_status st;
    while ((st = tgt_reader_next(r, &line, &len, &no, &err)) == TGT_READ_LINE) {
        if (count >= e.n_lines || len != e.llen[count] ||
            memcmp(line, e.data + e.off[count], len) != 0)
            bad++;
        if (++count == 10)
            tgt_reader_stop_requested = 1;
    }
    assert_int_equal(st, TGT_READ_EOF);
    assert_int_equal(bad, 0);
    assert_true(count >= 10 && count < e.n_lines / 4);
    tgt_reader_free(r);
    close(fd);

    fd = temp_fd(g, n);
    r = open_file_reader(fd);
    check_all(r, &e); /* the flag is still set */
    tgt_reader_free(r);
    close(fd);
    free(g);
    free_expected(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_lines),
        cmocka_unit_test(test_crlf_kept),
        cmocka_unit_test(test_blank_lines_counted),
        cmocka_unit_test(test_missing_final_newline),
        cmocka_unit_test(test_bom_skipped),
        cmocka_unit_test(test_empty_and_short_inputs),
        cmocka_unit_test(test_embedded_nul_kept),
        cmocka_unit_test(test_huge_line),
        cmocka_unit_test(test_huge_line_zstd),
        cmocka_unit_test(test_many_lines_file),
        cmocka_unit_test(test_many_lines_pipe),
        cmocka_unit_test(test_long_lines_span_blocks),
        cmocka_unit_test(test_read_error),
        cmocka_unit_test(test_free_null),
        cmocka_unit_test(test_zstd_simple),
        cmocka_unit_test(test_zstd_concatenated_frames),
        cmocka_unit_test(test_zstd_big_multiblock),
        cmocka_unit_test(test_zstd_high_ratio),
        cmocka_unit_test(test_zstd_corrupt_header),
        cmocka_unit_test(test_zstd_corrupt_body),
        cmocka_unit_test(test_zstd_trailing_garbage),
        cmocka_unit_test(test_zstd_truncated),
        cmocka_unit_test(test_file_zstd_and_gzip),
        cmocka_unit_test(test_file_damaged),
        cmocka_unit_test(test_file_freed_mid_way),
        cmocka_unit_test(test_idle_then_data),
        cmocka_unit_test(test_idle_mid_zstd_frame),
        cmocka_unit_test_teardown(test_stop_wakes_blocked_reader, reset_stop),
        cmocka_unit_test_teardown(test_stop_from_signal, reset_stop),
        cmocka_unit_test_teardown(test_stop_before_first_read, reset_stop),
        cmocka_unit_test_teardown(test_stop_reads_what_arrived, reset_stop),
        cmocka_unit_test_teardown(test_stop_mid_zstd_frame, reset_stop),
        cmocka_unit_test_teardown(test_stop_compressed_file, reset_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * replay_main.c - a plain main() for the fuzz targets, so that any compiler
 * (gcc for `make test`, with or without sanitizers) can replay a corpus
 * without libFuzzer.
 *
 *   replay_<target> PATH...
 *
 * Every PATH is a file or a directory; each regular file of a directory
 * (not recursing, in name order so a failure is reproducible) and each file
 * named directly is read into a buffer of exactly its size, so that an
 * over-read is visible to AddressSanitizer, and passed once to
 * LLVMFuzzerTestOneInput.  A broken invariant aborts inside the target; a
 * path that cannot be read exits 2.  On success prints "N inputs" to stderr
 * and exits 0.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Reads the whole file; NULL (with a message) on failure.  Never returns
 * NULL for an empty file: a 1-byte allocation stands in for it. */
static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            size_t grown_cap = cap ? cap * 2 : 4096;
            uint8_t *grown = realloc(buf, grown_cap);
            if (grown == NULL) {
                fprintf(stderr, "replay: out of memory reading %s\n", path);
                goto fail;
            }
            buf = grown;
            cap = grown_cap;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        goto fail;
    }
    fclose(f);
    /* exactly n bytes, so reading past the input is an ASan error */
    uint8_t *exact = malloc(n ? n : 1);
    if (exact == NULL) {
        free(buf);
        fprintf(stderr, "replay: out of memory reading %s\n", path);
        return NULL;
    }
    memcpy(exact, buf, n);
    free(buf);
    *len = n;
    return exact;
fail:
    free(buf);
    fclose(f);
    return NULL;
}

static int run_file(const char *path)
{
    size_t len;
    uint8_t *data = read_file(path, &len);
    if (data == NULL)
        return -1;
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The regular files directly inside dir, sorted; NULL (message printed)
 * on failure.  The caller frees each path and the array. */
static char **list_dir(const char *dir, size_t *n_out)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "replay: cannot open directory %s: %s\n", dir, strerror(errno));
        return NULL;
    }
    char **paths = malloc(sizeof(*paths));
    size_t n = 0, cap = 1;
    struct dirent *e;
    while (paths != NULL && (e = readdir(d)) != NULL) {
        size_t need = strlen(dir) + strlen(e->d_name) + 2;
        char *path = malloc(need);
        struct stat st;
        if (path == NULL)
            goto nomem;
        snprintf(path, need, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(path);
            continue;
        }
        if (n == cap) {
            char **grown = realloc(paths, 2 * cap * sizeof(*paths));
            if (grown == NULL) {
                free(path);
                goto nomem;
            }
            paths = grown;
            cap *= 2;
        }
        paths[n++] = path;
    }
    closedir(d);
    if (paths == NULL) {
        fprintf(stderr, "replay: out of memory listing %s\n", dir);
        return NULL;
    }
    qsort(paths, n, sizeof(*paths), by_name);
    *n_out = n;
    return paths;
nomem:
    closedir(d);
    while (n > 0)
        free(paths[--n]);
    free(paths);
    fprintf(stderr, "replay: out of memory listing %s\n", dir);
    return NULL;
}

/* Runs every regular file directly inside dir; returns the count or -1. */
static long run_dir(const char *dir)
{
    size_t n;
    char **paths = list_dir(dir, &n);
    if (paths == NULL)
        return -1;
    long rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (rc >= 0)
            rc = run_file(paths[i]) == 0 ? rc + 1 : -1;
        free(paths[i]);
    }
    free(paths);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE_OR_DIRECTORY...\n", argv[0]);
        return 2;
    }
    long total = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 2;
        }
        long n = S_ISDIR(st.st_mode) ? run_dir(argv[i]) : run_file(argv[i]) == 0 ? 1 : -1;
        if (n < 0)
            return 2;
        total += n;
    }
    fprintf(stderr, "%ld inputs\n", total);
    return 0;
}

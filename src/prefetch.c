/*
 * prefetch.c - a producer thread ahead of its consumer (see prefetch.h).
 *
 * The ring: `next` is the block the consumer takes next, `count` blocks
 * from there on are filled and waiting, and the block before `next` is the
 * one the consumer holds (`holding`).  The producer fills the block after
 * the waiting ones, outside the lock: no one else touches a block that is
 * neither waiting nor held.  It may start one only while count + holding <
 * n_blocks, so it never writes into the block the consumer reads.
 *
 * Owns the blocks, the thread, its mutex and conditions.  Does not own the
 * fill function's context.
 */
#include "prefetch.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

struct tgt_prefetch {
    tgt_prefetch_fill_fn fill;
    void *ctx;
    char **blocks;
    size_t *lens;
    size_t n_blocks, block_cap;

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t filled; /* a block was filled or the producer ended */
    pthread_cond_t freed;  /* the consumer handed a block back, or stop */
    int started;           /* thread, mu and the conditions exist */

    /* under mu */
    size_t next, count;
    int holding;
    int ended;    /* the producer returned: end_rc and end_err hold why */
    int stopping; /* tgt_prefetch_stop was called */
    int end_rc;
    tgt_error end_err;
};

/* Waits for a free block; its index, or n_blocks when told to stop. */
static size_t wait_free_block(tgt_prefetch *pf)
{
    pthread_mutex_lock(&pf->mu);
    while (!pf->stopping && pf->count + (size_t)pf->holding >= pf->n_blocks)
        pthread_cond_wait(&pf->freed, &pf->mu);
    size_t slot = pf->stopping ? pf->n_blocks : (pf->next + pf->count) % pf->n_blocks;
    pthread_mutex_unlock(&pf->mu);
    return slot;
}

static void *produce(void *arg)
{
    tgt_prefetch *pf = arg;
    for (;;) {
        size_t slot = wait_free_block(pf);
        if (slot == pf->n_blocks)
            return NULL;
        size_t len = 0;
        tgt_error e;
        tgt_error_init(&e);
        int rc = pf->fill(pf->ctx, pf->blocks[slot], pf->block_cap, &len, &e);
        if (rc == 1 && (len == 0 || len > pf->block_cap))
            rc = tgt_error_set(&e, TGT_ERR_INTERNAL, "prefetch: fill returned %zu bytes", len);
        pthread_mutex_lock(&pf->mu);
        if (rc == 1) {
            pf->lens[slot] = len;
            pf->count++;
        } else {
            pf->ended = 1;
            pf->end_rc = rc < 0 ? -1 : 0;
            pf->end_err = e;
        }
        pthread_cond_signal(&pf->filled);
        pthread_mutex_unlock(&pf->mu);
        if (rc != 1)
            return NULL;
    }
}

static void free_blocks(tgt_prefetch *pf)
{
    for (size_t i = 0; pf->blocks != NULL && i < pf->n_blocks; i++)
        free(pf->blocks[i]);
    free(pf->blocks);
    free(pf->lens);
    free(pf);
}

static tgt_prefetch *alloc_blocks(size_t n_blocks, size_t block_cap)
{
    tgt_prefetch *pf = calloc(1, sizeof(*pf));
    if (pf == NULL)
        return NULL;
    pf->n_blocks = n_blocks;
    pf->block_cap = block_cap;
    pf->blocks = calloc(n_blocks, sizeof(*pf->blocks));
    pf->lens = calloc(n_blocks, sizeof(*pf->lens));
    int ok = pf->blocks != NULL && pf->lens != NULL;
    for (size_t i = 0; ok && i < n_blocks; i++)
        ok = (pf->blocks[i] = malloc(block_cap)) != NULL;
    if (!ok) {
        free_blocks(pf);
        return NULL;
    }
    return pf;
}

/* Starts the thread with every signal blocked: it inherits the mask, and
 * the signals go to the thread that reads the input and knows what to do. */
static int start_thread(tgt_prefetch *pf)
{
    sigset_t all, old;
    sigfillset(&all);
    if (pthread_sigmask(SIG_SETMASK, &all, &old) != 0)
        return -1;
    int rc = pthread_create(&pf->thread, NULL, produce, pf);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc == 0 ? 0 : -1;
}

tgt_prefetch *tgt_prefetch_start(tgt_prefetch_fill_fn fill, void *ctx, size_t n_blocks,
                                 size_t block_cap, tgt_error *err)
{
    if (n_blocks < 2 || block_cap == 0) {
        tgt_error_set(err, TGT_ERR_INTERNAL, "prefetch: %zu blocks of %zu bytes", n_blocks,
                      block_cap);
        return NULL;
    }
    tgt_prefetch *pf = alloc_blocks(n_blocks, block_cap);
    if (pf == NULL) {
        tgt_error_nomem(err);
        return NULL;
    }
    pf->fill = fill;
    pf->ctx = ctx;
    if (pthread_mutex_init(&pf->mu, NULL) != 0) {
        free_blocks(pf);
        tgt_error_nomem(err);
        return NULL;
    }
    int ok = pthread_cond_init(&pf->filled, NULL) == 0;
    if (ok && pthread_cond_init(&pf->freed, NULL) != 0) {
        pthread_cond_destroy(&pf->filled);
        ok = 0;
    }
    if (ok && start_thread(pf) != 0) {
        pthread_cond_destroy(&pf->filled);
        pthread_cond_destroy(&pf->freed);
        ok = 0;
    }
    if (!ok) {
        pthread_mutex_destroy(&pf->mu);
        free_blocks(pf);
        tgt_error_set(err, TGT_ERR_INTERNAL, "cannot start a decompression thread");
        return NULL;
    }
    pf->started = 1;
    return pf;
}

int tgt_prefetch_next(tgt_prefetch *pf, const char **data, size_t *len, tgt_error *err)
{
    pthread_mutex_lock(&pf->mu);
    if (pf->holding) {
        pf->holding = 0;
        pthread_cond_signal(&pf->freed);
    }
    while (pf->count == 0 && !pf->ended)
        pthread_cond_wait(&pf->filled, &pf->mu);
    int rc;
    if (pf->count > 0) {
        *data = pf->blocks[pf->next];
        *len = pf->lens[pf->next];
        pf->next = (pf->next + 1) % pf->n_blocks;
        pf->count--;
        pf->holding = 1;
        rc = 1;
    } else {
        rc = pf->end_rc;
        if (rc < 0)
            *err = pf->end_err;
    }
    pthread_mutex_unlock(&pf->mu);
    return rc;
}

void tgt_prefetch_stop(tgt_prefetch *pf)
{
    if (pf == NULL)
        return;
    if (pf->started) {
        pthread_mutex_lock(&pf->mu);
        pf->stopping = 1;
        pthread_cond_signal(&pf->freed);
        pthread_mutex_unlock(&pf->mu);
        pthread_join(pf->thread, NULL);
        pthread_cond_destroy(&pf->filled);
        pthread_cond_destroy(&pf->freed);
        pthread_mutex_destroy(&pf->mu);
    }
    free_blocks(pf);
}

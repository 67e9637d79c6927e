/*
 * signals.c - the SIGINT/SIGTERM handler and SIGPIPE (see signals.h).
 *
 * The handler does only async-signal-safe things: it stores into two
 * volatile sig_atomic_t flags and calls sigaction(2) with a struct prepared
 * at install time.  SA_RESTART is set on purpose: every wait that must wake
 * up on a stop (poll in the reader, nanosleep in the retry) is never
 * restarted by the kernel and returns EINTR anyway, while a write of STATE to
 * a full stdout pipe or of a dead letter to a file is restarted instead of
 * failing half-way with EINTR.
 */
#include "signals.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "reader.h"

static const int stop_signals[] = {SIGINT, SIGTERM};
#define N_STOP_SIGNALS (sizeof(stop_signals) / sizeof(stop_signals[0]))

static volatile sig_atomic_t first_signal = 0;
static struct sigaction default_action; /* SIG_DFL, filled by install */
static int handled[N_STOP_SIGNALS];     /* 1 where our handler was installed */

static void on_stop_signal(int sig)
{
    if (first_signal == 0)
        first_signal = sig;
    tgt_reader_stop_requested = 1;
    /* the next one ends the process: see signals.h */
    for (size_t i = 0; i < N_STOP_SIGNALS; i++)
        if (handled[i])
            sigaction(stop_signals[i], &default_action, NULL);
}

int tgt_signals_install(void)
{
    memset(&default_action, 0, sizeof(default_action));
    default_action.sa_handler = SIG_DFL;
    sigemptyset(&default_action.sa_mask);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    /* neither handler runs inside the other: the first signal wins cleanly */
    for (size_t i = 0; i < N_STOP_SIGNALS; i++)
        sigaddset(&sa.sa_mask, stop_signals[i]);
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < N_STOP_SIGNALS; i++) {
        struct sigaction old;
        if (sigaction(stop_signals[i], NULL, &old) != 0)
            return -1;
        /* a shell starts background jobs with SIGINT ignored: keep it so */
        if (old.sa_handler == SIG_IGN)
            continue;
        if (sigaction(stop_signals[i], &sa, NULL) != 0)
            return -1;
        handled[i] = 1;
    }

    struct sigaction ign;
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    return sigaction(SIGPIPE, &ign, NULL);
}

int tgt_signals_received(void)
{
    return first_signal;
}

const char *tgt_signals_name(int sig)
{
    switch (sig) {
    case SIGINT:
        return "SIGINT";
    case SIGTERM:
        return "SIGTERM";
    default:
        return "a signal";
    }
}

/*
 * signals.h - SIGINT and SIGTERM mean "stop reading, commit what arrived,
 * write its STATE, exit 128 + signal"; SIGPIPE is ignored.
 *
 * The handler only records the first signal and sets
 * tgt_reader_stop_requested: the reader then ends the input after the bytes
 * already received, the loader commits as at a normal end, and main.c picks
 * the exit status from tgt_signals_received().  Waiting code (the reader's
 * poll, the connection retry's sleep) checks the flag at least every 200 ms
 * and is woken at once when the signal interrupts its system call.  With
 * load_method overwrite the loader commits nothing for good: a stopped run
 * swaps no shadow in and fails with TGT_ERR_INTERRUPTED (loader.c).
 *
 * The first signal also restores the default action of both signals, so a
 * second SIGINT or SIGTERM (an impatient operator, a supervisor's follow-up)
 * ends the process at once: an open transaction is rolled back by the server
 * and no STATE is written beyond the last commit.
 *
 * SIGPIPE is ignored so that writing STATE to a closed stdout fails with
 * EPIPE and is reported as an error (exit 1) instead of silently killing the
 * process.  libpq does not need SIGPIPE either (it sends with MSG_NOSIGNAL).
 *
 * Nothing here prints or exits.
 */
#ifndef TGT_SIGNALS_H
#define TGT_SIGNALS_H

/* Installs the handlers (main.c, once, before any work).  A signal that is
 * ignored on entry (SIGINT of a shell's background job, nohup) stays
 * ignored.  Returns -1 with errno set when sigaction fails. */
int tgt_signals_install(void);

/* The first SIGINT or SIGTERM received since install, or 0. */
int tgt_signals_received(void);

/* "SIGINT", "SIGTERM", or "a signal" for others; a static string. */
const char *tgt_signals_name(int sig);

#endif

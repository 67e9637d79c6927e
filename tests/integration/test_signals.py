#!/usr/bin/env python3
"""SIGTERM / SIGINT: stop reading, commit what has arrived, write its STATE,
exit 128 + signal (143 / 130) (src/signals.h).

A keyed and an unkeyed stream are fed through a pipe, line by line with
flushes and short sleeps, and the signal is sent while target-pg runs:

  (a) SIGTERM after some STATEs, the last line cut off in the middle: exit
      143, the last stdout line is the last STATE sent, the tables hold
      exactly the rows sent (each one; the cut-off line is not an error and
      not loaded);
  (b) SIGINT sent with a burst of lines still unread in the pipe (target-pg
      held with SIGSTOP meanwhile): exit 130, every line written before the
      signal is loaded;
  (c) signal while idle with nothing pending (everything committed on age
      before): exit 143, the STATE written once, nothing lost;
  (d) signal before any input: exit 130, no STATE, no error;
  (e) a second SIGTERM while the first one's commit waits for a lock: the
      process ends at once, nothing of the batch committed, no STATE.
  (f) load_method overwrite, SIGTERM after 10 of the rows that should replace
      a live table of 1,000: no swap (the live table keeps its 1,000 rows),
      the shadow table dropped, no STATE, exit 143 with an error saying so;
  (g) the same with SIGINT after two batches were committed into the shadow
      (batch_size_rows 5): exit 130, live table untouched, shadow dropped;
      a complete overwrite run afterwards replaces the table and writes STATE.

Run by tests/run_all.sh (PG* env, TARGET_PG, TARGET_PG_WRAPPER, TEST_DB,
TEST_TMPDIR).  Exit 0 = pass; each problem is printed on its own line.
"""

import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

SCHEMA = "sig"
problems = []
DB, TMP = harness.integration_env()
SLOW = 8.0 if os.environ.get("TARGET_PG_WRAPPER", "").strip() else 1.0


def schema_msg(stream, keys):
    return {"type": "SCHEMA", "stream": stream, "key_properties": keys,
            "schema": {"type": "object",
                       "properties": {"id": {"type": "integer"},
                                      "v": {"type": ["null", "string"]}}}}


def rec(stream, i, v):
    return {"type": "RECORD", "stream": stream, "record": {"id": i, "v": v}}


def state(value):
    return {"type": "STATE", "value": value}


class Live(harness.LiveTarget):
    """target-pg reading a pipe we write to; stdout and stderr collected by
    threads.  Killed if it still runs when the block ends."""

    def write(self, text):
        try:
            self.p.stdin.write(text.encode("utf-8"))
            self.p.stdin.flush()
            return True
        except BrokenPipeError:
            problems.append("target-pg closed its stdin early (exit %s): %s"
                            % (self.p.poll(), self.stderr()[-1500:]))
            return False

    def send(self, msgs):
        return self.write("".join(harness.jline(m) + "\n" for m in msgs))

    def wait(self, timeout):
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self.join()
        return rc


def config(name, **extra):
    return harness.write_config(os.path.join(TMP, name + ".json"), DB, SCHEMA, **extra)


def table_rows(table):
    """[(id, v)] of sig.<table> sorted; [] when the table does not exist."""
    if not harness.table_exists(SCHEMA, table, DB):
        return []
    rows = harness.query_json("SELECT id, v FROM %s" % harness.qualified(SCHEMA, table), DB)
    return sorted((r["id"], r["v"]) for r in rows)


def reset(*tables):
    for t in tables:
        harness.psql("DROP TABLE IF EXISTS %s" % harness.qualified(SCHEMA, t), DB)


def check_stopped(label, live, rc, want_rc, want_last_state, keyed, want_keyed, plain,
                  want_plain):
    if rc is None:
        problems.append("%s: still running %.0f s after the signal" % (label, 30 * SLOW))
        return
    if rc != want_rc:
        problems.append("%s: exit %s, expected %d: %s" % (label, rc, want_rc, live.stderr()[-1500:]))
    if "error" in live.stderr().lower():
        problems.append("%s: an error on stderr: %s" % (label, live.stderr()[-1500:]))
    out = [line for line in live.out if line.strip()]
    if want_last_state is None:
        if out:
            problems.append("%s: stdout %r, expected nothing" % (label, out))
    elif not out or json.loads(out[-1]) != want_last_state:
        problems.append("%s: last stdout line %r, expected %r"
                        % (label, out[-1] if out else None, want_last_state))
    elif len(out) != len(set(out)):
        problems.append("%s: a STATE written twice: %r" % (label, out))
    if keyed is not None:
        got = table_rows(keyed)
        if got != want_keyed:
            problems.append("%s: %s holds %d rows %r..., expected %d %r..."
                            % (label, keyed, len(got), got[:5], len(want_keyed), want_keyed[:5]))
    if plain is not None:
        got = table_rows(plain)
        if got != want_plain:
            problems.append("%s: %s holds %d rows %r..., expected %d %r..."
                            % (label, plain, len(got), got[:5], len(want_plain), want_plain[:5]))


def wait_tables(label, *tables):
    """Waits until target-pg created the tables: it is up, its handlers are
    installed (a wrapper like valgrind makes start-up slow)."""
    deadline = time.monotonic() + 15 * SLOW
    while time.monotonic() < deadline:
        if all(harness.table_exists(SCHEMA, t, DB) for t in tables):
            return True
        time.sleep(0.05)
    problems.append("%s: tables %r not created in time" % (label, tables))
    return False


def feed_slowly(live, keyed, plain, n, state_every, pause):
    """Sends n records per stream (keyed ids repeat: later values win) with a
    STATE every state_every; returns (expected keyed, expected plain, last
    STATE value)."""
    want_keyed, want_plain, last = {}, [], None
    for i in range(n):
        k = i % 7 if i % 3 == 0 else 100 + i  # some keys updated again
        if not live.send([rec(keyed, k, "k%d" % i), rec(plain, i, "p%d" % i)]):
            break
        want_keyed[k] = "k%d" % i
        want_plain.append((i, "p%d" % i))
        if i % state_every == state_every - 1:
            last = {"bookmark": i, "note": "after record %d" % i}
            if not live.send([state(last)]):
                break
        time.sleep(pause)
    return sorted(want_keyed.items()), sorted(want_plain), last


# --- (a) SIGTERM mid-stream, last line cut off ----------------------------------------
reset("a_keyed", "a_plain")
with Live(config("a")) as live:
    live.send([schema_msg("a_keyed", ["id"]), schema_msg("a_plain", [])])
    wait_tables("(a) SIGTERM", "a_keyed", "a_plain")
    want_k, want_p, last = feed_slowly(live, "a_keyed", "a_plain", 40, 6, 0.02)
    live.write('{"type": "RECORD", "stream": "a_plain", "record": {"id": 9999, "v": "cut')
    time.sleep(0.3)
    live.p.send_signal(signal.SIGTERM)
    rc = live.wait(30 * SLOW)
    check_stopped("(a) SIGTERM", live, rc, 143, last, "a_keyed", want_k, "a_plain", want_p)
    if rc == 143 and "stopped by SIGTERM" not in live.stderr():
        problems.append("(a) SIGTERM: no \"stopped by SIGTERM\" on stderr: %s"
                        % live.stderr()[-800:])

# --- (b) SIGINT right after a burst: lines still in the pipe are loaded --------------------
reset("b_keyed", "b_plain")
with Live(config("b")) as live:
    live.send([schema_msg("b_keyed", ["id"]), schema_msg("b_plain", [])])
    wait_tables("(b) SIGINT", "b_keyed", "b_plain")
    want_k, want_p, last = feed_slowly(live, "b_keyed", "b_plain", 10, 4, 0.02)
    burst, state_b = [], {"bookmark": "burst"}
    for i in range(1000, 1400):
        burst += [rec("b_keyed", i, "k%d" % i), rec("b_plain", i, "p%d" % i)]
    # target-pg is stopped while the burst (~30 kB, fits the pipe) and the
    # signal arrive, so the handler runs before it read any of it
    live.p.send_signal(signal.SIGSTOP)
    time.sleep(0.2)
    live.send(burst + [state(state_b)])
    live.p.send_signal(signal.SIGINT)
    time.sleep(0.2)
    live.p.send_signal(signal.SIGCONT)
    want_k = sorted(dict(want_k + [(i, "k%d" % i) for i in range(1000, 1400)]).items())
    want_p = sorted(want_p + [(i, "p%d" % i) for i in range(1000, 1400)])
    rc = live.wait(30 * SLOW)
    check_stopped("(b) SIGINT", live, rc, 130, state_b, "b_keyed", want_k, "b_plain", want_p)

# --- (c) idle with nothing pending -------------------------------------------------
reset("c_keyed", "c_plain")
with Live(config("c", max_batch_age_seconds=1)) as live:
    live.send([schema_msg("c_keyed", ["id"]), schema_msg("c_plain", [])])
    wait_tables("(c) idle", "c_keyed", "c_plain")
    want_k, want_p, last = feed_slowly(live, "c_keyed", "c_plain", 12, 4, 0.01)
    deadline = time.monotonic() + 15 * SLOW
    while time.monotonic() < deadline and not live.out:  # the age commit wrote the STATE
        time.sleep(0.1)
    if not live.out:
        problems.append("(c) idle: no STATE after the batch aged: %s" % live.stderr()[-800:])
    time.sleep(0.5)
    live.p.send_signal(signal.SIGTERM)
    rc = live.wait(30 * SLOW)
    check_stopped("(c) idle", live, rc, 143, last, "c_keyed", want_k, "c_plain", want_p)

# --- (d) before any input ------------------------------------------------------------
with Live(config("d")) as live:
    time.sleep(0.5 * SLOW)
    live.p.send_signal(signal.SIGINT)
    rc = live.wait(30 * SLOW)
    check_stopped("(d) no input", live, rc, 130, None, None, None, None, None)

# --- (e) a second signal while the first one's commit waits: ends at once --------------
reset("e_keyed")
with Live(config("e")) as live:
    live.send([schema_msg("e_keyed", ["id"])])
    live.send([rec("e_keyed", i, "v%d" % i) for i in range(20)] + [state({"e": 1})])
    wait_tables("(e) second signal", "e_keyed")
    env = dict(os.environ, PGDATABASE=DB)
    locker = subprocess.Popen(
        [harness.pg_prog("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
         "BEGIN; LOCK TABLE %s IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(%d); COMMIT"
         % (harness.qualified(SCHEMA, "e_keyed"), int(4 * SLOW))],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)
    live.p.send_signal(signal.SIGTERM)
    # wait until the finish is under way (blocked on the lock)
    deadline = time.monotonic() + 10 * SLOW
    while time.monotonic() < deadline and not any("reading stopped" in e for e in live.err):
        time.sleep(0.05)
    time.sleep(0.3)
    if live.p.poll() is not None:
        problems.append("(e) second signal: target-pg ended before the lock was released "
                        "(exit %s): %s" % (live.p.returncode, live.stderr()[-800:]))
    t0 = time.monotonic()
    live.p.send_signal(signal.SIGTERM)
    rc = live.wait(30 * SLOW)
    took = time.monotonic() - t0
    locker.wait(60)
    if rc != -signal.SIGTERM:
        problems.append("(e) second signal: exit %s, expected death by SIGTERM: %s"
                        % (rc, live.stderr()[-800:]))
    if took > 2.0 * SLOW:
        problems.append("(e) second signal: took %.1f s to end" % took)
    if [line for line in live.out if line.strip()]:
        problems.append("(e) second signal: STATE written: %r" % live.out)
    time.sleep(0.5)
    n = harness.count_rows(SCHEMA, "e_keyed", DB)
    if n != 0:
        problems.append("(e) second signal: %d rows committed, expected 0" % n)

# --- (f), (g) load_method overwrite: a stopped run swaps nothing ----------------------

def shadow_tables():
    """Tables of the test schema whose name starts with "_": overwrite's shadows
    (the live tables of this file all start with a letter)."""
    return harness.psql("SELECT tablename FROM pg_tables WHERE schemaname = %s "
                        "AND tablename LIKE '\\_%%'" % harness.sql_literal(SCHEMA), DB).split()


def wait_for(label, what, cond):
    deadline = time.monotonic() + 15 * SLOW
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    problems.append("%s: %s did not happen in time" % (label, what))
    return False


def check_overwrite_stopped(label, live, rc, want_rc, want_live):
    if rc is None:
        problems.append("%s: still running %.0f s after the signal" % (label, 30 * SLOW))
        return
    if rc != want_rc:
        problems.append("%s: exit %s, expected %d: %s" % (label, rc, want_rc, live.stderr()[-1500:]))
    said = [e for e in harness.lines_mentioning(live.stderr(), "error")
            if "overwrite" in e and ("SIGTERM" in e or "SIGINT" in e)]
    if not said:
        problems.append("%s: no error line saying the signal stopped the overwrite: %s"
                        % (label, live.stderr()[-800:]))
    out = [line for line in live.out if line.strip()]
    if out:
        problems.append("%s: STATE written although nothing was swapped in: %r" % (label, out))
    got = table_rows("f_live")
    if got != want_live:
        problems.append("%s: the live table holds %d rows %r..., expected its %d old rows %r..."
                        % (label, len(got), got[:3], len(want_live), want_live[:3]))
    if shadow_tables():
        problems.append("%s: shadow tables left: %r" % (label, shadow_tables()))


reset("f_live")
old_rows = [(i, "old%d" % i) for i in range(1000)]
first = os.path.join(TMP, "f_first.singer")
harness.write_messages(first, [schema_msg("f_live", ["id"])]
                       + [rec("f_live", i, v) for i, v in old_rows] + [state({"f": 0})])
r = harness.run_input(config("f_ow", load_method="overwrite"), first)
if harness.check_exit_0(problems, "(f) first overwrite run", r) and table_rows("f_live") != old_rows:
    problems.append("(f) first overwrite run: f_live holds %d rows" % len(table_rows("f_live")))

with Live(config("f_ow", load_method="overwrite")) as live:
    live.send([schema_msg("f_live", ["id"])])
    if wait_for("(f) overwrite SIGTERM", "the shadow table", lambda: shadow_tables() != []):
        live.send([rec("f_live", i, "new%d" % i) for i in range(10)] + [state({"f": 1})])
        time.sleep(0.3 * SLOW)
        live.p.send_signal(signal.SIGTERM)
        rc = live.wait(30 * SLOW)
        check_overwrite_stopped("(f) overwrite SIGTERM", live, rc, 143, old_rows)


def shadow_rows():
    names = shadow_tables()
    if len(names) != 1:
        return 0
    return harness.count_rows(SCHEMA, names[0], DB)


with Live(config("g_ow", load_method="overwrite", batch_size_rows=5)) as live:
    live.send([schema_msg("f_live", ["id"])])
    if wait_for("(g) overwrite SIGINT", "the shadow table", lambda: shadow_tables() != []):
        for i in range(12):
            live.send([rec("f_live", i, "new%d" % i), state({"g": i})])
        if wait_for("(g) overwrite SIGINT", "10 rows committed into the shadow",
                    lambda: shadow_rows() >= 10):
            live.p.send_signal(signal.SIGINT)
            rc = live.wait(30 * SLOW)
            check_overwrite_stopped("(g) overwrite SIGINT", live, rc, 130, old_rows)

second = os.path.join(TMP, "g_second.singer")
harness.write_messages(second, [schema_msg("f_live", ["id"])]
                       + [rec("f_live", i, "new%d" % i) for i in range(10)] + [state({"g": "done"})])
r = harness.run_input(config("g_ow", load_method="overwrite", batch_size_rows=5), second)
if harness.check_exit_0(problems, "(g) complete overwrite run after the stopped ones", r):
    harness.check_states(problems, "(g) complete overwrite run", r.stdout, [{"g": "done"}])
    want = [(i, "new%d" % i) for i in range(10)]
    if table_rows("f_live") != want:
        problems.append("(g) complete overwrite run: f_live holds %r, expected %r"
                        % (table_rows("f_live")[:12], want))
    if shadow_tables():
        problems.append("(g) complete overwrite run: shadow tables left: %r" % shadow_tables())

sys.exit(harness.report(problems))

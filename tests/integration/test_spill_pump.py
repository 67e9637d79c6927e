#!/usr/bin/env python3
"""Interleaved streams whose rows wait in the spill file while one COPY at a
time is fed from it (issue #14 item 4; src/spill.h, src/batch.c pump()).

target-pg connects through a proxy (ThrottledProxy below, built on
test_lost_commit's CommitCutter) that forwards the client's bytes at RATE
bytes a second, so the server side is always the slower one and the
per-stream queues of the spill file grow while a COPY is fed.  The proxy
counts the COPY statements and the CopyData bytes of each.

Input: N_STREAMS keyed streams, N_ROWS records each, round-robin, a ~1 kB
text per record (with a tab, a backslash and a non-ASCII letter, which COPY
text escapes) and one record of HUGE bytes (a chunk longer than a spill
slot), a STATE every STATE_EVERY records, ONE batch (batch_size_rows is
larger than any stream's rows).  Every check of the loaded data compares
each table's content (md5 of its rows in key order) with the input's.

  (a) the plain load: exit 0, every table exact, the last STATE (only) on
      stdout, and at most a quarter as many COPY statements as the rows
      fill 64 kB chunks (case_copies says why): 17 COPYs for 157 chunks
      here, where shipping one COPY per 128-192 kB chunk (before spilling)
      took 70.  Under a slow wrapper (TARGET_PG_WRAPPER: valgrind) the count
      is not checked, as target-pg may then be the slower side;
  (b) a CHECK constraint refuses one row of a spilled stream: under
      invalid_records fail exit 1, the error names the stream, the input
      line and the constraint, nothing is committed and no STATE written;
      under skip exit 0 and exactly that row missing;
  (c) the proxy cuts the connection in the middle of the first COPY that
      carries more than CUT_BYTES of rows (several chunks): target-pg
      reconnects and sends the batch again: exit 0, every row once, STATEs
      in order ending with the last;
  (d) SIGTERM while target-pg reads a pipe and pumps (rows waiting in the
      spill file, COPYs under way): exit 143, every record written before
      the signal loaded once (README "Signals"), the last STATE sent
      written, and the private TMPDIR empty afterwards (the spill file,
      seen open in it during the run, is unlinked at creation);
  (e) a second SIGTERM while the first one's commit is pumping: the
      process ends at once, nothing of the open batch committed, no STATE,
      the TMPDIR empty.

Run by tests/run_all.sh (PG* env with the cluster's TCP port in PGPORT,
TARGET_PG, TARGET_PG_WRAPPER, TEST_DB, TEST_TMPDIR).  Exit 0 = pass; each
problem is printed on its own line.
"""

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402
from test_lost_commit import CommitCutter  # noqa: E402

problems = []
DB, TMP = harness.integration_env()
WRAPPED = bool(os.environ.get("TARGET_PG_WRAPPER", "").strip())
SLOW = 8.0 if WRAPPED else 1.0
TIMEOUT = 120 * SLOW

N_STREAMS, N_ROWS, STATE_EVERY = 16, 600, 500
WIDTH, HUGE = 1000, 300 * 1024
HUGE_AT = (3, 100)  # (stream number, id) of the record with the HUGE text
BAD_AT = (11, 450)  # (stream number, id) of the record the CHECK refuses
RATE = 4 * 1024 * 1024
CHUNK = 64 * 1024
CUT_BYTES = 3 * CHUNK + CHUNK // 2


def stream(i):
    return "sp_%02d" % i


PROPS = {"id": {"type": "integer"}, "qty": {"type": "integer"}, "note": {"type": "string"}}


class ThrottledProxy(CommitCutter):
    """CommitCutter that forwards the client's messages at `rate` bytes a
    second (a message waits until the ones before it would have gone at that
    rate; idle time gives no credit), records the CopyData bytes of each COPY
    statement in copy_bytes, and, with cut_bytes, cuts the connection at the
    CopyData message that takes a COPY past cut_bytes (not forwarding it)."""

    def __init__(self, server_port, rate, cut_bytes=0):
        self.rate, self.cut_bytes = rate, cut_bytes
        self.copy_bytes = []
        self.due = 0.0
        super().__init__(server_port, "before", 1 if cut_bytes else 0)

    def _is_commit(self, kind, body):
        if kind == b"Q" and body.lstrip()[:5].upper() == b"COPY ":
            self.copy_bytes.append(0)
        elif kind == b"d" and self.copy_bytes:
            before = self.copy_bytes[-1]
            self.copy_bytes[-1] += len(body)
            return self.cut_bytes > 0 and before < self.cut_bytes <= self.copy_bytes[-1]
        return False

    def _next_message(self, client, buf, state):
        got = super()._next_message(client, buf, state)
        if got is not None:
            now = time.monotonic()
            self.due = max(self.due, now) + len(got[0]) / self.rate
            time.sleep(self.due - now)
        return got


def note(i, row):
    if (i, row) == HUGE_AT:
        return ("%s/%d huge " % (stream(i), row)).ljust(HUGE, "h")
    return ("%s/%d \\ \t \u00e9 " % (stream(i), row)).ljust(WIDTH, "x")


def make_messages(bad=False):
    """The input's messages, the index of the bad record among them (None
    without), and the STATE values in the order sent."""
    msgs = [{"type": "SCHEMA", "stream": stream(i), "schema": {"properties": PROPS},
             "key_properties": ["id"]} for i in range(N_STREAMS)]
    bad_index, states, n = None, [], 0
    for row in range(1, N_ROWS + 1):
        for i in range(N_STREAMS):
            qty = -1 if bad and (i, row) == BAD_AT else row
            if qty < 0:
                bad_index = len(msgs)
            msgs.append({"type": "RECORD", "stream": stream(i),
                         "record": {"id": row, "qty": qty, "note": note(i, row)}})
            n += 1
            if n % STATE_EVERY == 0:
                states.append({"n": n})
                msgs.append({"type": "STATE", "value": states[-1]})
    return msgs, bad_index, states


def expected_digests(msgs):
    """{stream number: (rows, md5 of "id:qty:note" lines in id order)} of the
    RECORD messages of msgs (the newest per key: none repeats here)."""
    rows = {i: {} for i in range(N_STREAMS)}
    for m in msgs:
        if m["type"] == "RECORD":
            r = m["record"]
            rows[int(m["stream"][3:])][r["id"]] = "%d:%d:%s" % (r["id"], r["qty"], r["note"])
    return {i: (len(v), hashlib.md5("\n".join(v[k] for k in sorted(v)).encode("utf-8"))
                .hexdigest() if v else None) for i, v in rows.items()}


def check_tables(label, schema, msgs):
    """Every table holds exactly the records of msgs."""
    want = expected_digests(msgs)
    parts = ["SELECT %d, count(*), md5(string_agg(id || ':' || qty || ':' || note, E'\\n' "
             "ORDER BY id)) FROM %s.%s" % (i, schema, stream(i)) for i in range(N_STREAMS)]
    out = harness.psql(" UNION ALL ".join(parts), DB)
    for line in out.strip().splitlines():
        i, n, digest = line.split("|")
        got = (int(n), digest or None)
        if got != want[int(i)]:
            problems.append("%s: %s holds %d rows (md5 %s), expected %d (md5 %s)"
                            % (label, stream(int(i)), got[0], got[1], want[int(i)][0],
                               want[int(i)][1]))


def config(name, schema, port, **extra):
    return harness.write_config(os.path.join(TMP, "sp_%s.json" % name), DB, schema=schema,
                                host="127.0.0.1", port=port, batch_size_rows=N_ROWS + 1,
                                **extra)


def case_copies():
    label = "plain load"
    msgs, _, states = make_messages()
    path = os.path.join(TMP, "sp_good.singer")
    harness.write_messages(path, msgs)
    proxy = ThrottledProxy(int(os.environ["PGPORT"]), RATE)
    try:
        r = harness.run_input(config("good", "sp_good", proxy.port), path, timeout=TIMEOUT)
    finally:
        proxy.close()
    if not harness.check_exit_0(problems, label, r):
        return
    harness.check_states(problems, label, r.stdout, states[-1:])
    check_tables(label, "sp_good", msgs)
    # The rows fill `chunks` 64 kB chunks.  Shipping them as they fill takes
    # a COPY per one to three chunks, at least chunks / 3 (before spilling:
    # 128-192 kB per COPY, 70 COPYs for 157 chunks).  Spilled, a stream's
    # rows pile up while the throttled server takes another's, and each
    # COPY carries its stream's whole queue: after the first (one chunk)
    # about one COPY per stream (17).  chunks / 4 (39) leaves room for a few
    # more COPYs while target-pg still encodes on a loaded machine.
    chunks = sum(proxy.copy_bytes) // CHUNK
    bound = chunks // 4
    print("# %s: %d COPY statements for %d chunks of 64 kB%s" % (
        label, len(proxy.copy_bytes), chunks,
        ", not checked under TARGET_PG_WRAPPER" if WRAPPED else " (at most %d)" % bound))
    if WRAPPED:
        return
    if not proxy.copy_bytes or len(proxy.copy_bytes) > bound:
        problems.append("%s: %d COPY statements for %d chunks of 64 kB, expected at most %d "
                        "(a quarter): the rows did not wait for their stream's COPY (KiB per "
                        "COPY: %s)" % (label, len(proxy.copy_bytes), chunks, bound,
                                       " ".join(str(b // 1024) for b in proxy.copy_bytes)))


def seed_tables(schema):
    """Creates the empty tables (a run with the SCHEMAs only, no proxy)."""
    path = os.path.join(TMP, "sp_seed.singer")
    harness.write_messages(path, make_messages()[0][:N_STREAMS])
    cfg = harness.write_config(os.path.join(TMP, "sp_seed.json"), DB, schema=schema)
    return harness.check_exit_0(problems, "%s: creating the tables" % schema,
                                harness.run_input(cfg, path, timeout=TIMEOUT))


def case_refused(policy):
    label = "refused row, %s" % policy
    schema = "sp_refused_" + policy
    if not seed_tables(schema):
        return
    harness.psql("ALTER TABLE %s.%s ADD CONSTRAINT qty_not_negative CHECK (qty >= 0)"
                 % (schema, stream(BAD_AT[0])), DB)
    msgs, bad_index, states = make_messages(bad=True)
    bad_line = bad_index + 1
    path = os.path.join(TMP, "sp_bad.singer")
    harness.write_messages(path, msgs)
    proxy = ThrottledProxy(int(os.environ["PGPORT"]), RATE)
    try:
        r = harness.run_input(config(policy, schema, proxy.port, invalid_records=policy), path,
                              timeout=TIMEOUT)
    finally:
        proxy.close()
    if policy == "fail":
        if not harness.check_exit_1(problems, label, r):
            return
        err = " ".join(harness.lines_mentioning(r.stderr, "error"))
        want = r'line %d.*stream "%s"|stream "%s".*line %d' % (
            bad_line, stream(BAD_AT[0]), stream(BAD_AT[0]), bad_line)
        if not re.search(want, err) or "qty_not_negative" not in r.stderr:
            problems.append("%s: the error does not name input line %d, stream %s and the "
                            "constraint: %s" % (label, bad_line, stream(BAD_AT[0]),
                                                r.stderr.strip()[-1200:]))
        harness.check_states(problems, label, r.stdout, [])  # one batch: nothing committed
        check_tables(label, schema, [])
        return
    if not harness.check_exit_0(problems, label, r):
        return
    check_states_in_order(label, r.stdout, states)
    if "line %d: %s record dropped" % (bad_line, stream(BAD_AT[0])) not in r.stderr:
        problems.append("%s: no warning naming input line %d: %s"
                        % (label, bad_line, r.stderr.strip()[-800:]))
    check_tables(label, schema, msgs[:bad_index] + msgs[bad_index + 1:])


def check_states_in_order(label, stdout, sent):
    """After a recovery target-pg may commit at other points than a plain
    run: each STATE written must be one sent, in order, the last the last."""
    got = harness.parse_states(problems, label, stdout)
    if got is None:
        return
    order = [sent.index(st) if st in sent else -1 for st in got]
    if not got or -1 in order or order != sorted(set(order)) or got[-1] != sent[-1]:
        problems.append("%s: stdout STATEs %r: not STATEs of the input in order ending with %r"
                        % (label, got, sent[-1]))


def case_cut():
    label = "connection cut in a COPY of several chunks"
    msgs, _, states = make_messages()
    path = os.path.join(TMP, "sp_good.singer")
    harness.write_messages(path, msgs)
    proxy = ThrottledProxy(int(os.environ["PGPORT"]), RATE, cut_bytes=CUT_BYTES)
    try:
        cfg = config("cut", "sp_cut", proxy.port, connect_retries=3, connect_retry_delay_ms=100)
        r = harness.run_input(cfg, path, timeout=TIMEOUT)
    finally:
        proxy.close()
    if proxy.cuts != 1:
        problems.append("%s: the proxy cut %d connections, expected 1 (no COPY carried %d "
                        "bytes?)" % (label, proxy.cuts, CUT_BYTES))
    if not harness.check_exit_0(problems, label, r):
        return
    check_states_in_order(label, r.stdout, states)
    check_tables(label, "sp_cut", msgs)


class Feeder(harness.LiveTarget):
    """target-pg (TMPDIR=tmpdir) reading a pipe that a thread writes lines
    to at rate bytes a second; stop() ends the writing between two lines and
    sends a signal in the same step, so `written` lines were sent before it.
    stdout and stderr are collected by threads."""

    def __init__(self, cfg, lines, rate, tmpdir):
        self.lines, self.rate, self.written, self.stopped = lines, rate, 0, False
        self.lock = threading.Lock()
        super().__init__(cfg, env=dict(os.environ, TMPDIR=tmpdir))
        writer = threading.Thread(target=self._write, daemon=True)
        self.threads.append(writer)
        writer.start()

    def _write(self):
        started, sent = time.monotonic(), 0
        for line in self.lines:
            data = line.encode("utf-8")
            with self.lock:
                if self.stopped:
                    return
                try:
                    self.p.stdin.write(data)
                    self.p.stdin.flush()
                except (BrokenPipeError, ValueError):
                    return
                self.written += 1
            sent += len(data)
            ahead = started + sent / self.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)

    def stop(self, sig):
        with self.lock:
            self.stopped = True
            self.p.send_signal(sig)

    def finish(self, timeout):
        """The exit status (None after a kill at the timeout)."""
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = None
        with self.lock:
            self.stopped = True
            self.close_stdin()
        self.join()
        return rc


def spill_file_open(pid, tmpdir):
    """Whether process pid has the spill file (src/tempfile.c names it) of
    tmpdir open."""
    prefix = os.path.join(tmpdir, "target-pg-spill-")
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith(prefix):
                return True
        except OSError:
            pass
    return False


def case_signal(second):
    """SIGTERM while rows wait in the spill file and COPYs are under way;
    with `second` another SIGTERM while the first one's commit pumps."""
    label = "second SIGTERM while committing" if second else "SIGTERM while pumping"
    schema = "sp_sig2" if second else "sp_sig"
    tmpdir = os.path.join(TMP, schema + ".tmp")
    os.makedirs(tmpdir, exist_ok=True)
    msgs, _, _ = make_messages()
    lines = [harness.jline(m) + "\n" for m in msgs]
    # the second signal needs the first one's commit to take a while, also
    # when a wrapper makes target-pg slow to fill the spill file
    proxy = ThrottledProxy(int(os.environ["PGPORT"]),
                           int(RATE / 4 / SLOW) if second else RATE)
    try:
        feeder = Feeder(config(schema, schema, proxy.port), lines, 3 * RATE, tmpdir)
        seen = False
        deadline = time.monotonic() + 20 * SLOW
        while (time.monotonic() < deadline and feeder.p.poll() is None
               and feeder.written < len(lines)):
            seen = seen or spill_file_open(feeder.p.pid, tmpdir)
            if seen and len(proxy.copy_bytes) >= 2:
                break
            time.sleep(0.01)
        feeder.stop(signal.SIGTERM)
        if second:
            deadline = time.monotonic() + 10 * SLOW
            while time.monotonic() < deadline and not any("reading stopped" in e
                                                          for e in feeder.err):
                time.sleep(0.02)
            time.sleep(0.1)
            if feeder.p.poll() is not None:
                problems.append("%s: target-pg ended before the second signal (exit %s): the "
                                "test is broken" % (label, feeder.p.returncode))
            feeder.p.send_signal(signal.SIGTERM)
        rc = feeder.finish(TIMEOUT)
    finally:
        proxy.close()
    sent = msgs[:feeder.written]
    if not seen or feeder.written == len(lines):
        problems.append("%s: the signal did not come while target-pg read and pumped (spill "
                        "file seen open in TMPDIR: %s; %d of %d lines written; %d COPYs)"
                        % (label, "yes" if seen else "no", feeder.written, len(lines),
                           len(proxy.copy_bytes)))
    left = os.listdir(tmpdir)
    if left:
        problems.append("%s: files left in TMPDIR: %s" % (label, left))
    out = [line for line in feeder.out if line.strip()]
    if second:
        if rc != -signal.SIGTERM:
            problems.append("%s: exit %s, expected death by SIGTERM: %s"
                            % (label, rc, feeder.stderr()[-800:]))
        if out:
            problems.append("%s: STATE written: %r" % (label, out))
        check_tables(label, schema, [])
        return
    if rc != 143:
        problems.append("%s: exit %s, expected 143: %s" % (label, rc, feeder.stderr()[-1500:]))
    states = [m["value"] for m in sent if m["type"] == "STATE"]
    harness.check_states(problems, label, "\n".join(out), states[-1:])
    check_tables(label, schema, sent)


def main():
    case_copies()
    case_refused("fail")
    case_refused("skip")
    case_cut()
    case_signal(False)
    case_signal(True)
    return harness.report(problems)


if __name__ == "__main__":
    sys.exit(main())

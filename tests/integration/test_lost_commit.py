#!/usr/bin/env python3
"""A lost COMMIT reply never duplicates rows (issue #10 item 2; README
"Failure behaviour", lost connections).

target-pg connects through a small TCP proxy (CommitCutter below) to the
throwaway cluster's TCP port.  The proxy reads the frontend protocol of each
connection and cuts the connection at the second COMMIT of the run (the
first batch is committed normally, so STATE has already moved once):

  (a) "after": the COMMIT is forwarded to the server, then both sides are
      closed before the server's reply is relayed.  The server committed the
      batch; target-pg only sees the connection break.  It must reconnect,
      learn that the transaction committed and not send the batch again:
      exit 0, every row of the unkeyed stream exactly once, the keyed table
      exact, STATEs in order ending with the last, the METRIC
      record_count of each stream adding up to its records (the cut batch
      counted once), the one invalid record of the cut batch dead-lettered
      exactly once.  Before the fix the batch was sent again: the unkeyed
      table got its rows twice.
  (b) "before": the connection is cut without forwarding the COMMIT: the
      server rolls the transaction back, so the batch must be sent again:
      same expectations (no loss).
  (c) both again with a batch of 2.5 x tables_per_transaction unkeyed
      streams, which target-pg commits in three transactions (the server's
      lock table bounds one): the second is cut.  Streams an earlier
      transaction committed are not sent again, the others are: every table
      holds exactly its one row, the STATE is written once at the end.

Run by tests/run_all.sh (PG* env with the cluster's TCP port in PGPORT,
TARGET_PG, TARGET_PG_WRAPPER, TEST_DB, TEST_TMPDIR).  Exit 0 = pass; each
problem is printed on its own line.  test_odbc_mariadb.py imports the proxy
(MySQL protocol: MysqlCommitCutter) and the input of (a, b); importing runs
no case.
"""

import json
import os
import socket
import struct
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

problems = []
DB, TMP = harness.integration_env()

SSL_REQUEST, GSSENC_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102
N_EVENTS, N_ITEMS, BATCH = 300, 40, 100


class CommitCutter:
    """TCP proxy from 127.0.0.1:<port> to the server at 127.0.0.1:<server_port>.

    Each client connection gets a thread that parses what the client sends
    (startup packets, then typed messages) and a thread that relays the
    server's bytes back.  When the client sends the cut_at-th COMMIT of all
    connections (a simple Query or a Parse whose SQL is COMMIT), mode
    "after" forwards it to the server and "before" does not; either way the
    client's socket is closed at once and nothing the server sends after
    that point reaches the client.  The server side is half-closed and
    drained, so the server still reads everything forwarded (a reset could
    make it drop the COMMIT unread).  Later connections are relayed
    untouched.  Subclasses read another protocol's messages
    (_next_message)."""

    def __init__(self, server_port, mode, cut_at):
        self.server_port, self.mode, self.cut_at = server_port, mode, cut_at
        self.commits = 0
        self.cuts = 0
        self.lock = threading.Lock()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.listener.close()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.server_port))
            for sock in (client, server):  # relay each message at once (no Nagle delay)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = {"cut": False, "lock": threading.Lock()}
            threading.Thread(target=self._client_to_server, args=(client, server, conn),
                             daemon=True).start()
            threading.Thread(target=self._server_to_client, args=(client, server, conn),
                             daemon=True).start()

    @staticmethod
    def _recv_exact(sock, n, buf):
        while len(buf) < n:
            data = sock.recv(65536)
            if not data:
                return None
            buf += data
        return buf

    @staticmethod
    def _is_commit(kind, body):
        if kind == b"Q":
            sql = body.split(b"\0", 1)[0]
        elif kind == b"P":  # Parse: statement name, NUL, query, NUL, ...
            parts = body.split(b"\0", 2)
            sql = parts[1] if len(parts) > 1 else b""
        else:
            return False
        return sql.strip().rstrip(b";").strip().upper() in (b"COMMIT", b"END",
                                                             b"COMMIT TRANSACTION")

    def _next_message(self, client, buf, state):
        """The client's next message: (its bytes, the bytes read after it,
        whether it is a COMMIT, whether it is the connection's last), or
        None at the end.  state: a dict kept per connection."""
        if state.setdefault("startup", True):
            # untyped: int32 length (itself included), int32 code, ...
            buf = self._recv_exact(client, 8, buf)
            if buf is None:
                return None
            length, code = struct.unpack("!ii", buf[:8])
            buf = self._recv_exact(client, length, buf)
            if buf is None:
                return None
            # SSL/GSS requests are answered with one byte ('N' here) and
            # followed by another untyped packet
            state["startup"] = code in (SSL_REQUEST, GSSENC_REQUEST)
            return buf[:length], buf[length:], False, code == CANCEL_REQUEST
        buf = self._recv_exact(client, 5, buf)
        if buf is None:
            return None
        kind = buf[:1]
        length = struct.unpack("!i", buf[1:5])[0]
        buf = self._recv_exact(client, 1 + length, buf)
        if buf is None:
            return None
        msg = buf[:1 + length]
        return msg, buf[1 + length:], self._is_commit(kind, msg[5:]), False

    def _client_to_server(self, client, server, conn):
        buf = b""
        state = {}
        try:
            while True:
                got = self._next_message(client, buf, state)
                if got is None:
                    break
                msg, buf, is_commit, last = got
                if is_commit:
                    with self.lock:
                        self.commits += 1
                        cut = self.commits == self.cut_at
                    if cut:
                        with conn["lock"]:
                            conn["cut"] = True  # from here on nothing reaches the client
                        if self.mode == "after":
                            server.sendall(msg)
                        self.cuts += 1
                        break
                server.sendall(msg)
                if last:
                    break
        except OSError:
            pass
        for how, sock in ((socket.SHUT_RDWR, client), (socket.SHUT_WR, server)):
            try:
                sock.shutdown(how)
            except OSError:
                pass
        client.close()

    def _server_to_client(self, client, server, conn):
        try:
            while True:
                data = server.recv(65536)
                if not data:
                    break
                with conn["lock"]:
                    if conn["cut"]:
                        continue  # drained, never relayed
                    client.sendall(data)
        except OSError:
            pass
        server.close()
        try:
            client.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def make_input(path):
    """An unkeyed stream of N_EVENTS records and a keyed one of N_ITEMS
    distinct keys, interleaved; a STATE after every 50 events; one events
    record (seq 150, in the second batch) has a value its column cannot
    take."""
    msgs = [
        {"type": "SCHEMA", "stream": "events", "key_properties": [],
         "schema": {"type": "object", "properties": {"seq": {"type": "integer"},
                                                     "n": {"type": "integer"}}}},
        {"type": "SCHEMA", "stream": "items", "key_properties": ["id"],
         "schema": {"type": "object", "properties": {"id": {"type": "integer"},
                                                     "v": {"type": "string"}}}},
    ]
    states = []
    for i in range(N_EVENTS):
        n = "not a number" if i == 150 else i * 7
        msgs.append({"type": "RECORD", "stream": "events", "record": {"seq": i, "n": n}})
        if i % (N_EVENTS // N_ITEMS) == 0 and i // (N_EVENTS // N_ITEMS) < N_ITEMS:
            k = i // (N_EVENTS // N_ITEMS)
            msgs.append({"type": "RECORD", "stream": "items", "record": {"id": k, "v": "v%d" % i}})
        if (i + 1) % 50 == 0:
            states.append({"events": i + 1})
            msgs.append({"type": "STATE", "value": states[-1]})
    harness.write_messages(path, msgs)
    return states


def metric_counts(stderr):
    counts = {}
    for line in stderr.splitlines():
        if not line.startswith("METRIC: "):
            continue
        m = json.loads(line[len("METRIC: "):])
        if m.get("metric") == "record_count":
            s = m["tags"]["stream"]
            counts[s] = counts.get(s, 0) + m["value"]
    return counts


def dead_letters(path):
    if not os.path.exists(path):
        return []
    out = subprocess.run(["zstd", "-dc", path], capture_output=True, check=True).stdout
    return [json.loads(line) for line in out.decode("utf-8").splitlines() if line.strip()]


def run_case(mode):
    label = "COMMIT cut %s it reached the server" % ("after" if mode == "after" else "before")
    schema = "lc_" + mode
    proxy = CommitCutter(int(os.environ["PGPORT"]), mode, cut_at=2)
    try:
        path = os.path.join(TMP, mode + ".singer")
        states = make_input(path)
        dl = os.path.join(TMP, mode + ".dead.zst")
        cfg = harness.write_config(os.path.join(TMP, mode + ".json"), DB, schema=schema,
                                   host="127.0.0.1", port=proxy.port, batch_size_rows=BATCH,
                                   connect_retries=3, connect_retry_delay_ms=100,
                                   invalid_records="dead_letter", dead_letter_path=dl)
        r = harness.run_input(cfg, path, timeout=120)
    finally:
        proxy.close()
    if proxy.cuts != 1:
        problems.append("%s: the proxy cut %d connections (expected 1): the test is broken"
                        % (label, proxy.cuts))
        return
    if not harness.check_exit_0(problems, label, r):
        return
    events = harness.column_values(schema, "events", "seq", DB, order_by="seq")
    want = [i for i in range(N_EVENTS) if i != 150]
    if [int(x) for x in events] != want:
        dup = len(events) - len(set(events))
        problems.append("%s: events holds %d rows (%d duplicated), expected each of %d "
                        "records exactly once" % (label, len(events), dup, len(want)))
    n_items = harness.count_rows(schema, "items", DB)
    if n_items != N_ITEMS:
        problems.append("%s: items holds %d rows, expected %d" % (label, n_items, N_ITEMS))
    # STATEs received while a batch is open go out together, as the latest
    got = harness.parse_states(problems, label, r.stdout)
    if got is not None and (not got or got[-1] != states[-1] or
                            any(x not in states for x in got) or
                            [states.index(x) for x in got] != sorted(set(states.index(x)
                                                                         for x in got))):
        problems.append("%s: stdout STATEs %r: not the STATEs sent, in order, ending with %r"
                        % (label, got, states[-1]))
    counts = metric_counts(r.stderr)
    if counts != {"events": len(want), "items": N_ITEMS}:
        problems.append("%s: METRIC record_count adds up to %r, expected %r"
                        % (label, counts, {"events": len(want), "items": N_ITEMS}))
    letters = dead_letters(dl)
    if [x.get("record", {}).get("seq") for x in letters] != [150]:
        problems.append("%s: dead letters %r, expected the record of seq 150 once"
                        % (label, [x.get("record") for x in letters]))
    said = r.stderr.lower()
    if mode == "after" and "committed that transaction" not in said:
        problems.append("%s: no log line says the server had committed the transaction: %s"
                        % (label, r.stderr.strip()[-800:]))
    if mode == "before" and "rolled that transaction back" not in said:
        problems.append("%s: no log line says the transaction was rolled back: %s"
                        % (label, r.stderr.strip()[-800:]))


def tables_per_transaction():
    """What the driver allows one transaction (drivers/postgres/pg_driver.c)."""
    locks = int(harness.scalar("SHOW max_locks_per_transaction", DB))
    sessions = int(harness.scalar("SELECT current_setting('max_connections')::int + "
                                  "current_setting('max_prepared_transactions')::int", DB))
    return max(1, max(locks, locks * sessions // 8) // 8)


def run_split_case(mode):
    """More unkeyed streams than one transaction may write to: the batch is
    committed in three transactions, the second one cut.  Streams committed
    by the first (and, with "after", the second) are never sent again, the
    others are: every table holds its one row."""
    label = "batch split over 3 transactions, 2nd COMMIT cut %s it reached the server" % mode
    schema = "lcs_" + mode
    n = tables_per_transaction() * 5 // 2
    msgs = [{"type": "SCHEMA", "stream": "u%03d" % i, "key_properties": [],
             "schema": {"type": "object", "properties": {"i": {"type": "integer"}}}}
            for i in range(n)]
    msgs += [{"type": "RECORD", "stream": "u%03d" % i, "record": {"i": i}} for i in range(n)]
    msgs.append({"type": "STATE", "value": {"n": n}})
    path = os.path.join(TMP, "split_%s.singer" % mode)
    harness.write_messages(path, msgs)
    proxy = CommitCutter(int(os.environ["PGPORT"]), mode, cut_at=2)
    try:
        cfg = harness.write_config(os.path.join(TMP, "split_%s.json" % mode), DB, schema=schema,
                                   host="127.0.0.1", port=proxy.port, connect_retries=3,
                                   connect_retry_delay_ms=100)
        r = harness.run_input(cfg, path, timeout=120)
    finally:
        proxy.close()
    if proxy.cuts != 1:
        problems.append("%s: the proxy cut %d connections, expected 1 (one transaction per "
                        "commit point?)" % (label, proxy.cuts))
    if not harness.check_exit_0(problems, label, r):
        return
    harness.check_states(problems, label, r.stdout, [{"n": n}])
    counts = harness.query_json(
        "SELECT c.relname AS t, (xpath('/row/n/text()', query_to_xml(format("
        "'SELECT count(*) AS n FROM %%I.%%I', '%s', c.relname), false, true, '')))[1]::text "
        "AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace "
        "WHERE s.nspname = '%s' AND c.relkind = 'r'" % (schema, schema), DB)
    wrong = sorted(c["t"] for c in counts if c["n"] != "1")
    if len(counts) != n or wrong:
        problems.append("%s: %d tables, these do not hold exactly 1 row: %s"
                        % (label, len(counts), wrong[:10]))
    if harness.count_rows(schema, "u%03d" % (n - 1), DB) != 1:
        problems.append("%s: the last stream's row is missing" % label)


class MysqlCommitCutter(CommitCutter):
    """CommitCutter for the MySQL/MariaDB client protocol: packets of a
    3-byte little-endian length and a sequence byte; a COMMIT is a
    COM_QUERY (or COM_STMT_PREPARE) whose text is COMMIT.  The handshake
    packets never are one."""

    def _next_message(self, client, buf, state):
        buf = self._recv_exact(client, 4, buf)
        if buf is None:
            return None
        length = int.from_bytes(buf[:3], "little")
        buf = self._recv_exact(client, 4 + length, buf)
        if buf is None:
            return None
        msg = buf[:4 + length]
        sql = msg[5:].strip().rstrip(b";").strip().upper()
        return msg, buf[4 + length:], msg[4:5] in (b"\x03", b"\x16") and sql == b"COMMIT", False


if __name__ == "__main__":
    run_case("after")
    run_case("before")
    run_split_case("after")
    run_split_case("before")
    sys.exit(harness.report(problems))

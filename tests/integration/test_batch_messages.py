#!/usr/bin/env python3
"""Singer SDK BATCH messages (issue #15; README "BATCH messages"): the records
of jsonl files named by a manifest load through the RECORD path.

  (a) files gzip, zstd and none (and a gzip file of two members, as
      concatenated gzip files are): every record loaded, newest wins for a
      key across files and against RECORD lines before and after, STATE
      after the BATCH written once its rows are committed; batch_size_rows
      smaller than a file (commits inside the file) changes nothing.
  (b) a missing file: exit 1, the error names the URI; the STATE after the
      BATCH is not written and none of the BATCH's rows is committed.
      A URI that is not file:// and an encoding format other than jsonl are
      refused naming them.
  (c) an invalid record in a batch file: invalid_records fail names the
      file URI and its line; skip loads the rest with a warning naming file
      and line; dead_letter writes the record with the file URI and line.
  (d) the connection lost mid-BATCH: the backend is terminated while RECORD
      rows are pending, then a BATCH arrives; target-pg reconnects, replays
      the uncommitted RECORD and BATCH rows, and goes on with the rest of
      the file: every row exactly once (unkeyed stream), STATE after.
  (e) damaged files, read (decompressed on a second thread) after the
      file's first records were handed on: a gzip file cut in half, a zstd
      file with bytes flipped mid-file, and a file removed after the tap
      wrote the message naming it: exit 1, an error naming the URI and, for
      the damaged ones, the last line read before the damage; nothing of the
      batch committed, no STATE after it.
  (f) a line that is one JSON object followed by more envelope fields
      ({...},"stream":"other") is refused naming the URI and line, never
      loaded into the other stream.
  (g) SIGTERM while a big gzip BATCH file is being read: the file is read
      to its end and committed, the STATE after it written, exit 143, and
      the process ends (the decompression thread with it).
  (h) a BATCH record PostgreSQL refuses (a CHECK constraint), appended and
      keyed, under invalid_records dead_letter: the batch is sent again
      from the spool (which holds BATCH lines as they are) without it; the
      dead letter names the file's URI and line, every other row loads.
"""
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

problems = []
DB, TMP = harness.integration_env()


def schema(stream, keys):
    return {"type": "SCHEMA", "stream": stream, "key_properties": keys,
            "schema": {"type": "object", "properties": {
                "id": {"type": "integer"}, "v": {"type": ["null", "string"]}}}}


def batch(stream, uris, compression="gzip", fmt="jsonl"):
    return {"type": "BATCH", "stream": stream,
            "encoding": {"format": fmt, "compression": compression}, "manifest": uris}


def write_jsonl(path, records, compression):
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    if compression == "gzip":
        data = gzip.compress(data)
    elif compression == "zstd":
        data = subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True,
                              check=True).stdout
    with open(path, "wb") as f:
        f.write(data)
    return "file://" + path


def rows(table):
    return harness.query_json("SELECT id, v FROM public.%s ORDER BY id, v" % table, DB) or []


def test_formats():
    label = "(a) gzip/zstd/none"
    recs = [{"id": i, "v": "a%d" % i} for i in range(1, 301)]
    u1 = write_jsonl(os.path.join(TMP, "a1.jsonl.gz"), recs[:100], "gzip")
    # two gzip members in one file, as `cat a.gz b.gz` makes
    two = os.path.join(TMP, "a2.jsonl.gz")
    with open(two, "wb") as f:
        f.write(gzip.compress("".join(json.dumps(r) + "\n" for r in recs[100:150]).encode()))
        f.write(gzip.compress("".join(json.dumps(r) + "\n" for r in recs[150:200]).encode()))
    u2 = "file://" + two
    u3 = write_jsonl(os.path.join(TMP, "a3.jsonl.zst"), recs[200:250] + [{"id": 5, "v": "new"}],
                     "zstd")
    u4 = write_jsonl(os.path.join(TMP, "a 4.jsonl"), recs[250:], "none")
    u4 = u4.replace(" ", "%20")  # the SDK writes URIs percent-encoded
    msgs = [schema("ba", ["id"]),
            {"type": "RECORD", "stream": "ba", "record": {"id": 7, "v": "old"}},
            {"type": "STATE", "value": {"pos": 1}},
            batch("ba", [u1, u2]), batch("ba", [u3], "zstd"), batch("ba", [u4], "none"),
            {"type": "STATE", "value": {"pos": 2}},
            {"type": "RECORD", "stream": "ba", "record": {"id": 9, "v": "after"}},
            {"type": "STATE", "value": {"pos": 3}}]
    inp = os.path.join(TMP, "a.singer")
    harness.write_messages(inp, msgs)
    cfg = harness.write_config(os.path.join(TMP, "a.json"), DB, batch_size_rows=70)
    r = harness.run_input(cfg, inp)
    if not harness.check_exit_0(problems, label, r):
        return
    want = {r_["id"]: r_["v"] for r_ in recs}
    want[5] = "new"
    want[9] = "after"
    got = {row["id"]: row["v"] for row in rows("ba")}
    if got != want:
        diff = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
        problems.append("%s: table differs at ids %s (got %s, want %s)" % (
            label, diff[:10], [got.get(k) for k in diff[:5]], [want.get(k) for k in diff[:5]]))
    # pos 2 arrives with rows pending and pos 3 replaces it before the commit
    harness.check_states(problems, label, r.stdout, [{"pos": 1}, {"pos": 3}])


def test_missing_and_refused():
    label = "(b) missing file"
    ok = write_jsonl(os.path.join(TMP, "b1.jsonl"), [{"id": 1, "v": "x"}], "none")
    missing = "file://" + os.path.join(TMP, "no-such-file.jsonl.gz")
    inp = os.path.join(TMP, "b.singer")
    harness.write_messages(inp, [schema("bb", []), {"type": "STATE", "value": {"pos": 1}},
                                 batch("bb", [ok, missing]),
                                 {"type": "STATE", "value": {"pos": 2}}])
    cfg = harness.write_config(os.path.join(TMP, "b.json"), DB)
    r = harness.run_input(cfg, inp)
    if harness.check_exit_1(problems, label, r):
        errs = harness.lines_mentioning(r.stderr, "error")
        if not any(missing in e and "No such file" in e for e in errs):
            problems.append("%s: no error line naming %s: %s" % (label, missing, errs))
        harness.check_states(problems, label, r.stdout, [{"pos": 1}])
        if harness.count_rows("public", "bb", DB) != 0:
            problems.append("%s: rows of the failed BATCH were committed" % label)
    for label, msg, word in (
            ("(b) s3 URI", batch("bb", ["s3://bucket/x.jsonl.gz"]), "s3://bucket/x.jsonl.gz"),
            ("(b) parquet", batch("bb", [ok], fmt="parquet"), "parquet"),
            ("(b) brotli", batch("bb", [ok], compression="brotli"), "brotli")):
        harness.write_messages(inp, [schema("bb", []), msg])
        r = harness.run_input(cfg, inp)
        if harness.check_exit_1(problems, label, r):
            if not any(word in e for e in harness.lines_mentioning(r.stderr, "error")):
                problems.append("%s: the error does not name %s: %s" % (label, word,
                                                                        r.stderr[-500:]))


def dead_letters(path):
    out = subprocess.run(["zstd", "-dc", path], capture_output=True, check=True).stdout
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


def test_invalid_records():
    recs = [{"id": 1, "v": "a"}, {"id": "not a number", "v": "b"}, {"id": 3, "v": "c"}]
    uri = write_jsonl(os.path.join(TMP, "c1.jsonl.gz"), recs, "gzip")
    inp = os.path.join(TMP, "c.singer")
    for mode in ("fail", "skip", "dead_letter"):
        label = "(c) invalid_records %s" % mode
        stream = "bc_" + mode
        harness.write_messages(inp, [schema(stream, ["id"]), batch(stream, [uri]),
                                     {"type": "STATE", "value": {"pos": 1}}])
        extra = {"invalid_records": mode}
        dl = os.path.join(TMP, "c.dead.zst")
        if mode == "dead_letter":
            extra["dead_letter_path"] = dl
        cfg = harness.write_config(os.path.join(TMP, "c.json"), DB, **extra)
        r = harness.run_input(cfg, inp)
        where = "%s line 2" % uri
        if mode == "fail":
            if harness.check_exit_1(problems, label, r):
                if not any(where in e for e in harness.lines_mentioning(r.stderr, "error")):
                    problems.append("%s: no error naming %r: %s" % (label, where,
                                                                   r.stderr[-800:]))
                harness.check_states(problems, label, r.stdout, [])
            continue
        if not harness.check_exit_0(problems, label, r):
            continue
        if not any(where in w for w in harness.lines_mentioning(r.stderr, "warning")):
            problems.append("%s: no warning naming %r: %s" % (label, where, r.stderr[-800:]))
        got = [row["id"] for row in rows(stream)]
        if got != [1, 3]:
            problems.append("%s: ids %s, expected [1, 3]" % (label, got))
        harness.check_states(problems, label, r.stdout, [{"pos": 1}])
        if mode == "dead_letter":
            letters = dead_letters(dl)
            if len(letters) != 1 or letters[0].get("input") != uri or \
                    letters[0].get("line") != 2:
                problems.append("%s: dead letters %r, expected one for %s line 2"
                                % (label, letters, uri))


def test_connection_lost_mid_batch():
    label = "(d) connection lost mid-BATCH"
    n_before, n_file = 500, 3000
    uri = write_jsonl(os.path.join(TMP, "d1.jsonl.gz"),
                      [{"id": 10000 + i, "v": "f%d" % i} for i in range(n_file)], "gzip")
    cfg = harness.write_config(os.path.join(TMP, "d.json"), DB, batch_size_rows=1000,
                               connect_retry_delay_ms=100)
    p = subprocess.Popen(harness.target_cmd() + ["--config", cfg], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        head = [schema("bd", [])] + [{"type": "RECORD", "stream": "bd",
                                      "record": {"id": i, "v": "r%d" % i}}
                                     for i in range(n_before)]
        p.stdin.write("".join(harness.jline(m) + "\n" for m in head).encode())
        p.stdin.flush()
        # wait for the table (the SCHEMA was handled), then let the records
        # be read: they sit uncommitted in target-pg's buffers and spool
        deadline = time.monotonic() + 30
        while not harness.table_exists("public", "bd", DB) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        killed = harness.psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'target-pg' AND datname = current_database()",
            DB).split().count("t")
        if killed != 1:
            problems.append("%s: terminated %s target-pg backends, expected 1" % (label, killed))
        tail = [batch("bd", [uri]), {"type": "STATE", "value": {"pos": 1}}]
        out, err = p.communicate("".join(harness.jline(m) + "\n" for m in tail).encode(),
                                 timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        problems.append("%s: timed out" % label)
        return
    err = err.decode("utf-8", "replace")
    if p.returncode != 0:
        problems.append("%s: exit %s: %s" % (label, p.returncode, err[-1500:]))
        return
    # "...; reconnecting to send the N uncommitted records again": more than
    # the RECORD lines, so BATCH rows were among those replayed
    replayed = [int(m.group(1)) for m in
                re.finditer(r"reconnecting to send the (\d+) uncommitted records", err)]
    if not replayed or replayed[0] <= n_before:
        problems.append("%s: no replay of BATCH rows was logged (%s): %s"
                        % (label, replayed, err[-800:]))
    got = harness.query_json("SELECT id, count(*) AS n FROM public.bd GROUP BY id", DB) or []
    counts = {row["id"]: row["n"] for row in got}
    want = set(range(n_before)) | set(range(10000, 10000 + n_file))
    dup = sorted(k for k, n in counts.items() if n != 1)
    lost = sorted(want - set(counts))
    extra = sorted(set(counts) - want)
    if dup or lost or extra:
        problems.append("%s: duplicated %s, lost %s, unexpected %s" % (
            label, dup[:10], lost[:10], extra[:10]))
    harness.check_states(problems, label, out.decode(), [{"pos": 1}])


def big_records(n, tag):
    return [{"id": i, "v": "%s-%d-%s" % (tag, i, "x" * (i % 97))} for i in range(1, n + 1)]


def test_damaged_files():
    n = 30000  # several MB decompressed: many blocks through the thread
    recs = big_records(n, "e")
    data = "".join(json.dumps(r) + "\n" for r in recs).encode()
    cut = os.path.join(TMP, "e-cut.jsonl.gz")
    packed = gzip.compress(data)
    with open(cut, "wb") as f:
        f.write(packed[:len(packed) // 2])
    # two zstd frames, the second's magic bytes flipped: a decoder error
    # mid-file (flipped bytes inside a frame may decode to garbage first)
    flipped = os.path.join(TMP, "e-flipped.jsonl.zst")
    half = data.index(b"\n", len(data) // 2) + 1
    frames = [bytearray(subprocess.run(["zstd", "-q", "-c"], input=part, capture_output=True,
                                       check=True).stdout) for part in (data[:half], data[half:])]
    for i in range(4):
        frames[1][i] ^= 0x5A
    with open(flipped, "wb") as f:
        f.write(bytes(frames[0] + frames[1]))
    removed = write_jsonl(os.path.join(TMP, "e-removed.jsonl.gz"), recs[:10], "gzip")
    os.unlink(removed[len("file://"):])
    ok = write_jsonl(os.path.join(TMP, "e-ok.jsonl.gz"), recs[:100], "gzip")
    cfg = harness.write_config(os.path.join(TMP, "e.json"), DB)
    inp = os.path.join(TMP, "e.singer")
    for label, uris, comp, want in (
            ("(e) cut-off gzip", ["file://" + cut], "gzip", r"cut-off gzip input"),
            ("(e) corrupt zstd", ["file://" + flipped], "zstd", r"corrupt zstd input"),
            ("(e) removed file", [ok, removed], "gzip", r"No such file")):
        stream = "be_" + label.split()[1].replace("-", "_")
        harness.write_messages(inp, [schema(stream, []), {"type": "STATE", "value": {"pos": 1}},
                                     batch(stream, uris, comp),
                                     {"type": "STATE", "value": {"pos": 2}}])
        r = harness.run_input(cfg, inp)
        if not harness.check_exit_1(problems, label, r):
            continue
        errs = [e for e in harness.lines_mentioning(r.stderr, "error") if re.search(want, e)]
        uri = uris[-1]
        if not errs or uri not in errs[0]:
            problems.append("%s: no error naming %s (%s): %s" % (label, uri, want,
                                                                r.stderr[-800:]))
        elif label != "(e) removed file":
            m = re.search(re.escape(uri) + r", after line (\d+), stream", errs[0])
            if not m or not 0 < int(m.group(1)) < n:
                problems.append("%s: the error does not say after which line of %s the file "
                                "was damaged: %s" % (label, uri, errs[0]))
        harness.check_states(problems, label, r.stdout, [{"pos": 1}])
        if harness.count_rows("public", stream, DB) != 0:
            problems.append("%s: rows of the failed BATCH were committed" % label)


def test_line_with_envelope_fields():
    label = "(f) envelope fields after the record"
    path = os.path.join(TMP, "f1.jsonl")
    with open(path, "w") as f:
        f.write('{"id": 1, "v": "a"}\n{"id": 2, "v": "b"},"stream":"bf_other"\n')
    inp = os.path.join(TMP, "f.singer")
    harness.write_messages(inp, [schema("bf", []), schema("bf_other", []),
                                 batch("bf", ["file://" + path], "none")])
    r = harness.run_input(harness.write_config(os.path.join(TMP, "f.json"), DB), inp)
    if harness.check_exit_1(problems, label, r):
        where = "file://%s line 2" % path
        if not any(where in e for e in harness.lines_mentioning(r.stderr, "error")):
            problems.append("%s: no error naming %s: %s" % (label, where, r.stderr[-800:]))
    for table in ("bf", "bf_other"):
        if harness.table_exists("public", table, DB) and \
                harness.count_rows("public", table, DB) != 0:
            problems.append("%s: public.%s holds rows" % (label, table))


def test_signal_mid_file():
    label = "(g) SIGTERM mid-file"
    n = 150000
    uri = write_jsonl(os.path.join(TMP, "g1.jsonl.gz"), big_records(n, "g"), "gzip")
    cfg = harness.write_config(os.path.join(TMP, "g.json"), DB)
    p = subprocess.Popen(harness.target_cmd() + ["--config", cfg], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        p.stdin.write((harness.jline(schema("bg", [])) + "\n").encode())
        p.stdin.flush()
        deadline = time.monotonic() + 30
        while not harness.table_exists("public", "bg", DB) and time.monotonic() < deadline:
            time.sleep(0.02)
        tail = [batch("bg", [uri]), {"type": "STATE", "value": {"pos": 1}}]
        p.stdin.write("".join(harness.jline(m) + "\n" for m in tail).encode())
        p.stdin.flush()
        time.sleep(0.2)  # reading the file takes about a second
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        problems.append("%s: did not end after SIGTERM" % label)
        return
    err = err.decode("utf-8", "replace")
    if p.returncode != 143:
        problems.append("%s: exit %s, expected 143: %s" % (label, p.returncode, err[-1500:]))
        return
    got = harness.count_rows("public", "bg", DB)
    if got != n:
        problems.append("%s: %d rows loaded, expected the whole file (%d)" % (label, got, n))
    harness.check_states(problems, label, out.decode(), [{"pos": 1}])


def test_refused_by_server():
    recs = [{"id": i, "v": "h%d" % i} for i in range(1, 41)]
    uri = write_jsonl(os.path.join(TMP, "h1.jsonl.gz"), recs, "gzip")
    inp = os.path.join(TMP, "h.singer")
    for keys in ([], ["id"]):
        stream = "bh_keyed" if keys else "bh_append"
        label = "(h) refused by the server, %s" % stream
        cfg = harness.write_config(os.path.join(TMP, "h.json"), DB)
        harness.write_messages(inp, [schema(stream, keys)])
        r = harness.run_input(cfg, inp)
        if not harness.check_exit_0(problems, label + " (create)", r):
            continue
        harness.psql("ALTER TABLE public.%s ADD CONSTRAINT no_27 CHECK (id <> 27)" % stream, DB)
        dl = os.path.join(TMP, "h-%s.dead.zst" % stream)
        cfg = harness.write_config(os.path.join(TMP, "h.json"), DB,
                                   invalid_records="dead_letter", dead_letter_path=dl)
        harness.write_messages(inp, [schema(stream, keys), batch(stream, [uri]),
                                     {"type": "STATE", "value": {"pos": 1}}])
        r = harness.run_input(cfg, inp)
        if not harness.check_exit_0(problems, label, r):
            continue
        got = [row["id"] for row in rows(stream)]
        if got != [i for i in range(1, 41) if i != 27]:
            problems.append("%s: ids %s, expected 1..40 without 27" % (label, got))
        letters = dead_letters(dl)
        if len(letters) != 1 or letters[0].get("input") != uri or \
                letters[0].get("line") != 27:
            problems.append("%s: dead letters %r, expected one for %s line 27"
                            % (label, letters, uri))
        harness.check_states(problems, label, r.stdout, [{"pos": 1}])


test_formats()
test_missing_and_refused()
test_invalid_records()
test_connection_lost_mid_batch()
test_damaged_files()
test_line_with_envelope_fields()
test_signal_mid_file()
test_refused_by_server()
sys.exit(harness.report(problems))

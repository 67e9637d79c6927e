#!/usr/bin/env python3
"""invalid_records: fail, skip and dead_letter (issue #5; README "Failure
behaviour").

Two kinds of invalid record, each under each policy:

* records target-pg itself refuses while encoding (text in an integer
  column, month 13 in a date column, a null key): with skip and dead_letter
  the rest of the batch loads, every dropped record gets a warning naming its
  input line (20 at most per stream, then one line saying the rest are only
  counted), METRIC invalid_record_count adds up to the number dropped, and
  the STATE after them is written;
* records PostgreSQL refuses, which target-pg cannot know in advance:
  - an append-only stream whose table has a CHECK constraint: COPY names the
    row, which is traced back to its input line;
  - keyed streams, whose rows are merged from a staging table, where nothing
    names the row: a CHECK constraint, a unique index on a non-key column
    (two records of one batch share an email) and a foreign key to a parent
    table, and a key too big for the primary key's index.  The merge is
    bisected to the one record;
  - refusals COPY does not pin on the row, also bisected: a row too big for
    a page among 150 wide records sent in several chunks (PostgreSQL names
    the last row of the group it was writing), append-only and keyed, and a
    foreign key on an append-only table (checked when the COPY ends).
  With fail the error names the input line and stream, nothing of the batch
  is committed and stdout holds no STATE after it; with skip/dead_letter
  exactly the refused records are missing and every other row is there.

The dead-letter file is read back with `zstd -dc`: one JSON object per
dropped record with its input line, stream, reason and the original record;
a second run appends (two frames, both read).  An unwritable
dead_letter_path stops the run before anything is read.

Run by tests/run_all.sh (PG* env, TARGET_PG, TARGET_PG_WRAPPER, TEST_DB,
TEST_TMPDIR).  Exit 0 = pass; each problem is printed on its own line.
"""

import json
import os
import random
import re
import string
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

SCHEMA = "invalid_records"
SLOW = 8.0 if os.environ.get("TARGET_PG_WRAPPER", "").strip() else 1.0
TIMEOUT = 120 * SLOW
problems = []
DB = TMP = None  # set by main()


def problem(msg):
    problems.append(msg)


def sql(text):
    return harness.psql(text, DB)


def config(name, **extra):
    return harness.write_config(os.path.join(TMP, name + ".json"), DB, SCHEMA, **extra)


def write_input(name, msgs):
    """Writes msgs to <TMP>/<name>.singer; returns (path, {id: input line})
    for the RECORD messages (ids taken from record["id"])."""
    path = os.path.join(TMP, name + ".singer")
    harness.write_messages(path, msgs)
    lines = {}
    for n, m in enumerate(msgs, 1):
        if m["type"] == "RECORD":
            lines.setdefault(m["record"].get("id"), []).append(n)
    return path, lines


def metric_total(stderr, metric, stream):
    total = 0
    for line in stderr.splitlines():
        if not line.startswith("METRIC: "):
            continue
        m = json.loads(line[len("METRIC: "):])
        if m.get("metric") == metric and m.get("tags", {}).get("stream") == stream:
            total += m["value"]
    return total


def ids(table):
    return [int(v) for v in harness.column_values(SCHEMA, table, "id", DB, order_by="id")]


def dead_letters(path):
    if not os.path.exists(path):
        return []
    out = subprocess.run(["zstd", "-dc", path], capture_output=True, check=True).stdout
    return [json.loads(line) for line in out.decode("utf-8").splitlines()]


def schema(stream, props, keys):
    return {"type": "SCHEMA", "stream": stream, "key_properties": keys,
            "schema": {"type": "object", "properties": props}}


def record(stream, rec):
    return {"type": "RECORD", "stream": stream, "record": rec}


def state(value):
    return {"type": "STATE", "value": value}


# --- records target-pg refuses itself -------------------------------------------------

ORDER_PROPS = {"id": {"type": ["null", "integer"]}, "amount": {"type": ["null", "integer"]},
               "day": {"type": ["null", "string"], "format": "date"}}


def orders_input(name, bad):
    """30 orders; the ids in `bad` carry a value that cannot be stored
    (cycling through text in an integer column, month 13, a null key)."""
    msgs = [schema("orders", ORDER_PROPS, ["id"])]
    kinds = [("amount", "abc"), ("day", "2024-13-01"), ("id", None)]
    for i in range(1, 31):
        rec = {"id": i, "amount": i * 10, "day": "2024-05-%02d" % (i % 28 + 1)}
        if i in bad:
            field, value = kinds[sorted(bad).index(i) % len(kinds)]
            rec[field] = value
        msgs.append(record("orders", rec))
    msgs.append(state({"orders": 30}))
    path = os.path.join(TMP, name + ".singer")
    harness.write_messages(path, msgs)
    # line of each record: SCHEMA is line 1, record i is line i + 1
    return path, {i: i + 1 for i in range(1, 31)}


def test_encoder_refusals_skip():
    label = "skip, encoder refusals"
    bad = {4, 7, 9}
    path, line_of = orders_input("skip", bad)
    r = harness.run_input(config("skip", invalid_records="skip"), path, timeout=TIMEOUT)
    if not harness.check_exit_0(problems, label, r):
        return
    harness.check_states(problems, label, r.stdout, [{"orders": 30}])
    want = [i for i in range(1, 31) if i not in bad]
    got = ids("orders")
    if got != want:
        problem("%s: ids %r, expected %r" % (label, got, want))
    for i in sorted(bad):
        if not re.search(r"line %d: orders record dropped \(invalid_records skip\)" % line_of[i],
                         r.stderr):
            problem("%s: no warning naming input line %d: %s" % (label, line_of[i],
                                                                  r.stderr[-1500:]))
    n = metric_total(r.stderr, "invalid_record_count", "orders")
    if n != len(bad):
        problem("%s: METRIC invalid_record_count adds up to %d, expected %d" % (label, n,
                                                                                 len(bad)))
    if metric_total(r.stderr, "record_count", "orders") != len(want):
        problem("%s: METRIC record_count is not %d" % (label, len(want)))


def test_encoder_refusals_dead_letter():
    label = "dead_letter, encoder refusals"
    sql("DROP TABLE IF EXISTS %s.orders" % SCHEMA)
    bad = {2, 15, 30}
    path, line_of = orders_input("dl", bad)
    dl = os.path.join(TMP, "orders.dead.zst")
    cfg = config("dl", invalid_records="dead_letter", dead_letter_path=dl)
    originals = {m["record"]["id"] if m["record"]["id"] is not None else n: m["record"]
                 for n, m in harness.read_messages(path) if m["type"] == "RECORD"}
    for run in (1, 2):
        r = harness.run_input(cfg, path, timeout=TIMEOUT)
        if not harness.check_exit_0(problems, "%s run %d" % (label, run), r):
            return
        harness.check_states(problems, "%s run %d" % (label, run), r.stdout, [{"orders": 30}])
    got = ids("orders")
    want = [i for i in range(1, 31) if i not in bad]
    if got != want:
        problem("%s: ids %r, expected %r" % (label, got, want))
    letters = dead_letters(dl)
    want_lines = [line_of[i] for i in sorted(bad)] * 2  # the second run appended
    if [d.get("line") for d in letters] != want_lines:
        problem("%s: dead letters for lines %r, expected %r" % (label,
                                                                [d.get("line") for d in letters],
                                                                want_lines))
        return
    for d in letters:
        i = d["line"] - 1  # record i is on line i + 1
        original = dict(originals.get(i) or originals.get(d["line"]) or {})
        if d.get("stream") != "orders" or d.get("input") != path or not d.get("reason"):
            problem("%s: dead letter %r lacks stream/input/reason" % (label, d))
        if d.get("record") != original and not (original == {} and d.get("record")):
            problem("%s: dead letter of line %d holds %r, the input %r" % (label, d["line"],
                                                                          d.get("record"),
                                                                          original))
        if not d.get("at", "").endswith("Z"):
            problem("%s: dead letter without a UTC time: %r" % (label, d))
    reasons = " | ".join(d["reason"] for d in letters)
    for word in ("amount", "day", "id"):
        if word not in reasons:
            problem("%s: no reason names property %s: %s" % (label, word, reasons[:800]))


def test_warning_cap():
    label = "skip, 25 refusals"
    sql("DROP TABLE IF EXISTS %s.orders" % SCHEMA)
    bad = set(range(3, 28))
    path, _ = orders_input("cap", bad)
    r = harness.run_input(config("cap", invalid_records="skip"), path, timeout=TIMEOUT)
    if not harness.check_exit_0(problems, label, r):
        return
    dropped = [ln for ln in r.stderr.splitlines() if "record dropped" in ln]
    if len(dropped) != 20:
        problem("%s: %d 'record dropped' warnings, expected 20" % (label, len(dropped)))
    if "more invalid records are dropped without a warning each" not in r.stderr:
        problem("%s: no notice that further drops are only counted" % label)
    if metric_total(r.stderr, "invalid_record_count", "orders") != 25:
        problem("%s: METRIC invalid_record_count is not 25" % label)
    if ids("orders") != [1, 2, 28, 29, 30]:
        problem("%s: ids %r" % (label, ids("orders")))


def test_unwritable_dead_letter_path():
    label = "unwritable dead_letter_path"
    path, _ = orders_input("unwritable", set())
    missing = os.path.join(TMP, "no-such-dir", "dead.zst")
    r = harness.run_input(config("unwritable", invalid_records="dead_letter",
                                 dead_letter_path=missing), path, timeout=TIMEOUT)
    if r.timed_out or r.returncode in (0, None) or r.returncode > 3:
        problem("%s: exit %s, expected an error exit" % (label, r.returncode))
    if missing not in r.stderr:
        problem("%s: the error does not name the path: %s" % (label, r.stderr[-800:]))
    if r.stdout.strip():
        problem("%s: STATE written: %r" % (label, r.stdout))


# --- records PostgreSQL refuses ------------------------------------------------------

EVENT_PROPS = {"id": {"type": "integer"}, "qty": {"type": "integer"}}


def events_input(name, qtys):
    msgs = [schema("events", EVENT_PROPS, [])]
    msgs += [record("events", {"id": i, "qty": q}) for i, q in enumerate(qtys, 1)]
    msgs.append(state({"events": len(qtys)}))
    return write_input(name, msgs)


def prepare_events():
    sql("DROP TABLE IF EXISTS %s.events" % SCHEMA)
    path, _ = events_input("events_seed", [])
    r = harness.run_input(config("events_seed"), path, timeout=TIMEOUT)
    if not harness.check_exit_0(problems, "events: creating the table", r):
        return False
    sql("ALTER TABLE %s.events ADD CONSTRAINT qty_not_negative CHECK (qty >= 0)" % SCHEMA)
    return True


def test_copy_refusal():
    """An append-only stream: COPY names the row."""
    if not prepare_events():
        return
    qtys = [5, 3, -1, 8, 2, -7, 4]
    path, line_of = events_input("events", qtys)
    label = "COPY refusal, fail"
    r = harness.run_input(config("events_fail"), path, timeout=TIMEOUT)
    if harness.check_exit_1(problems, label, r):
        want = r'line %d.*stream "events"|stream "events".*line %d' % (line_of[3][0],
                                                                     line_of[3][0])
        err = " ".join(harness.lines_mentioning(r.stderr, "error"))
        if not re.search(want, err) or "qty_not_negative" not in r.stderr:
            problem("%s: the error does not name input line %d, the stream and the "
                    "constraint: %s" % (label, line_of[3][0], r.stderr[-1200:]))
        harness.check_states(problems, label, r.stdout, [])
        if harness.count_rows(SCHEMA, "events", DB) != 0:
            problem("%s: rows of the refused batch were committed" % label)

    label = "COPY refusal, skip"
    r = harness.run_input(config("events_skip", invalid_records="skip"), path, timeout=TIMEOUT)
    if harness.check_exit_0(problems, label, r):
        harness.check_states(problems, label, r.stdout, [{"events": len(qtys)}])
        got = ids("events")
        if got != [1, 2, 4, 5, 7]:
            problem("%s: ids %r, expected [1, 2, 4, 5, 7]" % (label, got))
        for i in (3, 6):
            if "line %d: events record dropped" % line_of[i][0] not in r.stderr:
                problem("%s: no warning for input line %d" % (label, line_of[i][0]))


ACCOUNT_PROPS = {"id": {"type": "integer"}, "email": {"type": ["null", "string"]},
                 "balance": {"type": ["null", "integer"]},
                 "parent_id": {"type": ["null", "integer"]}}


def accounts_input(name, rows, extra_state=None):
    """rows: (id, email, balance, parent_id) tuples, all in one batch."""
    msgs = [schema("accounts", ACCOUNT_PROPS, ["id"])]
    for i, email, balance, parent in rows:
        msgs.append(record("accounts", {"id": i, "email": email, "balance": balance,
                                        "parent_id": parent}))
    msgs.append(state(extra_state or {"accounts": len(rows)}))
    return write_input(name, msgs)


def prepare_accounts(constraint_sql, seed_rows=()):
    sql("DROP TABLE IF EXISTS %s.accounts; DROP TABLE IF EXISTS %s.parents"
        % (SCHEMA, SCHEMA))
    sql("CREATE TABLE %s.parents (id bigint PRIMARY KEY); "
        "INSERT INTO %s.parents SELECT generate_series(1, 50)" % (SCHEMA, SCHEMA))
    path, _ = accounts_input("accounts_seed", list(seed_rows))
    r = harness.run_input(config("accounts_seed"), path, timeout=TIMEOUT)
    if not harness.check_exit_0(problems, "accounts: creating the table", r):
        return False
    sql(constraint_sql % {"s": SCHEMA})
    return True


def good_accounts(n):
    return [(i, "a%d@example.com" % i, i, i % 50 + 1) for i in range(1, n + 1)]


def check_keyed_fail(label, path, line, constraint, seed_ids):
    r = harness.run_input(config("accounts_fail"), path, timeout=TIMEOUT)
    if not harness.check_exit_1(problems, label, r):
        return
    err = " ".join(harness.lines_mentioning(r.stderr, "error"))
    if ("input line %d" % line) not in err or 'stream "accounts"' not in err:
        problem("%s: the error does not name input line %d and the stream: %s"
                % (label, line, r.stderr[-1500:]))
    if constraint not in r.stderr:
        problem("%s: the error does not carry PostgreSQL's reason (%s): %s"
                % (label, constraint, r.stderr[-800:]))
    harness.check_states(problems, label, r.stdout, [])
    if ids("accounts") != list(seed_ids):
        problem("%s: the refused batch was partly committed: %r" % (label, ids("accounts")))


def check_keyed_drops(label, path, dropped_lines, want_ids, n_records):
    dl = os.path.join(TMP, "accounts.%s.zst" % re.sub(r"\W+", "_", label))
    r = harness.run_input(config("accounts_dl", invalid_records="dead_letter",
                                 dead_letter_path=dl), path, timeout=TIMEOUT)
    if not harness.check_exit_0(problems, label, r):
        return
    harness.check_states(problems, label, r.stdout, [{"accounts": n_records}])
    got = ids("accounts")
    if got != want_ids:
        missing = sorted(set(want_ids) - set(got))
        extra = sorted(set(got) - set(want_ids))
        problem("%s: table differs: missing ids %r, unexpected ids %r" % (label, missing, extra))
    lines = sorted(d["line"] for d in dead_letters(dl))
    if lines != sorted(dropped_lines):
        problem("%s: dead letters for lines %r, expected %r" % (label, lines,
                                                                sorted(dropped_lines)))


def test_merge_check_constraint():
    """A CHECK on a keyed stream's table trips in the merge: bisected."""
    label = "merge refusal (CHECK)"
    if not prepare_accounts("ALTER TABLE %(s)s.accounts ADD CONSTRAINT balance_not_negative "
                            "CHECK (balance >= 0)"):
        return
    rows = good_accounts(200)
    rows[136] = (137, "a137@example.com", -5, 1)
    path, line_of = accounts_input("check", rows)
    check_keyed_fail(label + ", fail", path, line_of[137][0], "balance_not_negative", [])
    check_keyed_drops(label + ", dead_letter", path, line_of[137],
                      [i for i in range(1, 201) if i != 137], 200)


def test_merge_unique_index():
    """A unique index on a non-key column.  Records are judged as if applied
    in input order: id 40 takes id 10's email; id 90 first takes the email
    of the committed row 1000 (refused there, even though its next version
    would have been fine); the newest id 110 takes it too (refused, so id 110
    keeps its earlier version of the batch)."""
    label = "merge refusal (unique index)"
    if not prepare_accounts("CREATE UNIQUE INDEX accounts_email ON %(s)s.accounts (email)",
                            seed_rows=[(1000, "taken@example.com", 0, 1)]):
        return
    rows = good_accounts(120)
    rows[39] = (40, "a10@example.com", 40, 1)
    rows[89] = (90, "taken@example.com", 90, 1)
    rows.append((90, "a90@example.com", 90, 1))
    rows.append((110, "taken@example.com", 1, 1))
    path, line_of = accounts_input("unique", rows)
    check_keyed_fail(label + ", fail", path, line_of[40][0], "accounts_email", [1000])
    want = sorted(set(range(1, 121)) - {40} | {1000})
    check_keyed_drops(label + ", dead_letter", path,
                      [line_of[40][0], line_of[90][0], line_of[110][1]], want, len(rows))
    for i, email in ((110, "a110@example.com"), (90, "a90@example.com"),
                     (1000, "taken@example.com")):
        got = harness.scalar("SELECT email FROM %s.accounts WHERE id = %d" % (SCHEMA, i), DB)
        if got != email:
            problem("%s: id %d holds %r, expected %r" % (label, i, got, email))


def test_merge_foreign_key():
    """A foreign key to a table target-pg does not load: three orphans in
    300 records, found one after another."""
    label = "merge refusal (foreign key)"
    if not prepare_accounts("ALTER TABLE %(s)s.accounts ADD CONSTRAINT accounts_parent "
                            "FOREIGN KEY (parent_id) REFERENCES %(s)s.parents (id)"):
        return
    rows = good_accounts(300)
    orphans = [17, 150, 299]
    for i in orphans:
        rows[i - 1] = (i, "a%d@example.com" % i, i, 999)
    path, line_of = accounts_input("fk", rows)
    check_keyed_fail(label + ", fail", path, line_of[17][0], "accounts_parent", [])
    check_keyed_drops(label + ", dead_letter", path, [line_of[i][0] for i in orphans],
                      [i for i in range(1, 301) if i not in orphans], 300)


def test_merge_foreign_key_between_streams():
    """Parent and child streams in one batch, the child's table referencing
    the parent's: the probes send the parents' records whole (they merge
    first), so only the orphan child is refused."""
    label = "merge refusal (foreign key between streams)"
    sql("DROP TABLE IF EXISTS %s.kids; DROP TABLE IF EXISTS %s.folks" % (SCHEMA, SCHEMA))
    folk_props = {"id": {"type": "integer"}, "name": {"type": "string"}}
    kid_props = {"id": {"type": "integer"}, "folk_id": {"type": "integer"}}
    seed = [schema("folks", folk_props, ["id"]), schema("kids", kid_props, ["id"])]
    path, _ = write_input("family_seed", seed)
    r = harness.run_input(config("family_seed"), path, timeout=TIMEOUT)
    if not harness.check_exit_0(problems, label + ": creating the tables", r):
        return
    sql("ALTER TABLE %(s)s.kids ADD CONSTRAINT kids_folk FOREIGN KEY (folk_id) "
        "REFERENCES %(s)s.folks (id)" % {"s": SCHEMA})
    msgs = list(seed)
    for i in range(1, 41):  # interleaved: a parent, then its child
        msgs.append(record("folks", {"id": i, "name": "f%d" % i}))
        msgs.append(record("kids", {"id": i, "folk_id": 77 if i == 23 else i}))
    msgs.append(state({"family": 40}))
    path, _ = write_input("family", msgs)
    orphan_line = 2 + 2 * 23  # two SCHEMAs, then folks i and kids i on 2i+1 and 2i+2
    dl = os.path.join(TMP, "family.dead.zst")
    r = harness.run_input(config("family_dl", invalid_records="dead_letter",
                                 dead_letter_path=dl), path, timeout=TIMEOUT)
    if not harness.check_exit_0(problems, label, r):
        return
    harness.check_states(problems, label, r.stdout, [{"family": 40}])
    if ids("folks") != list(range(1, 41)):
        problem("%s: folks ids %r" % (label, ids("folks")))
    if ids("kids") != [i for i in range(1, 41) if i != 23]:
        problem("%s: kids ids %r" % (label, ids("kids")))
    lines = [d["line"] for d in dead_letters(dl)]
    if lines != [orphan_line]:
        problem("%s: dead letters for lines %r, expected [%d]" % (label, lines, orphan_line))


def test_oversized_key():
    """A key too big for the primary key's index (PostgreSQL: "index row
    requires 9016 bytes", SQLSTATE 54000) is refused in the merge."""
    label = "oversized key"
    sql("DROP TABLE IF EXISTS %s.wide" % SCHEMA)
    rnd = random.Random(6)
    big = "".join(rnd.choice(string.ascii_letters) for _ in range(9000))  # does not compress
    msgs = [schema("wide", {"k": {"type": "string"}, "v": {"type": "string"}}, ["k"])]
    msgs += [record("wide", {"id": i, "k": big if i == 6 else "k%d" % i, "v": "v%d" % i})
             for i in range(1, 11)]
    msgs.append(state({"wide": 10}))
    path, line_of = write_input("wide", msgs)
    r = harness.run_input(config("wide_fail"), path, timeout=TIMEOUT)
    if harness.check_exit_1(problems, label + ", fail", r):
        if "input line %d" % line_of[6][0] not in r.stderr or "54000" not in r.stderr:
            problem("%s, fail: the error does not name input line %d and SQLSTATE 54000: %s"
                    % (label, line_of[6][0], r.stderr[-1000:]))
        harness.check_states(problems, label + ", fail", r.stdout, [])
    r = harness.run_input(config("wide_skip", invalid_records="skip"), path, timeout=TIMEOUT)
    if harness.check_exit_0(problems, label + ", skip", r):
        harness.check_states(problems, label + ", skip", r.stdout, [{"wide": 10}])
        got = harness.column_values(SCHEMA, "wide", "k", DB, order_by="k")
        want = sorted("k%d" % i for i in range(1, 11) if i != 6)
        if got != want:
            problem("%s, skip: keys %r, expected %r" % (label, [k[:20] for k in got], want))


def check_policies(label, table, cfg_name, path, guilty, words):
    """Runs the input at path under fail, skip and dead_letter, emptying
    table before each run.  guilty: {id: input line} of the records the
    database refuses, all other ids 1..n loaded; words: what the fail error
    must say besides the first guilty line and the stream (PostgreSQL's
    message, constraint, DETAIL)."""
    msgs = list(harness.read_messages(path))
    every = [m["record"]["id"] for _, m in msgs if m["type"] == "RECORD"]
    want = [i for i in every if i not in guilty]
    last_state = [m["value"] for _, m in msgs if m["type"] == "STATE"]
    first = guilty[min(guilty, key=lambda i: guilty[i])]
    sql("TRUNCATE %s.%s" % (SCHEMA, table))
    r = harness.run_input(config(cfg_name + "_fail"), path, timeout=TIMEOUT)
    if harness.check_exit_1(problems, label + ", fail", r):
        err = " ".join(harness.lines_mentioning(r.stderr, "error"))
        if "input line %d" % first not in err or 'stream "%s"' % table not in err:
            problem("%s, fail: the error does not name input line %d and stream %s: %s"
                    % (label, first, table, r.stderr[-1500:]))
        for word in words:
            if word not in r.stderr:
                problem("%s, fail: the error does not say %r: %s" % (label, word,
                                                                   r.stderr[-1500:]))
        harness.check_states(problems, label + ", fail", r.stdout, [])
        if harness.count_rows(SCHEMA, table, DB) != 0:
            problem("%s, fail: rows of the refused batch were committed" % label)
    for policy in ("skip", "dead_letter"):
        sql("TRUNCATE %s.%s" % (SCHEMA, table))
        dl = os.path.join(TMP, "%s.%s.zst" % (cfg_name, policy))
        extra = {"dead_letter_path": dl} if policy == "dead_letter" else {}
        r = harness.run_input(config("%s_%s" % (cfg_name, policy), invalid_records=policy,
                                     **extra), path, timeout=TIMEOUT)
        lab = "%s, %s" % (label, policy)
        if not harness.check_exit_0(problems, lab, r):
            continue
        harness.check_states(problems, lab, r.stdout, last_state[-1:])
        got = ids(table)
        if got != want:
            problem("%s: table differs: missing ids %r, unexpected ids %r"
                    % (lab, sorted(set(want) - set(got)), sorted(set(got) - set(want))))
        for line in guilty.values():
            if "line %d: %s record dropped" % (line, table) not in r.stderr:
                problem("%s: no warning for input line %d" % (lab, line))
        if policy == "dead_letter":
            lines = sorted(d["line"] for d in dead_letters(dl))
            if lines != sorted(guilty.values()):
                problem("%s: dead letters for lines %r, expected exactly %r"
                        % (lab, lines, sorted(guilty.values())))


WIDE_COLUMNS = 500


def test_row_too_big():
    """One record of 150 has 500 values of 40 random letters: even with
    every value moved out of line (an 18-byte TOAST pointer each) the row
    needs over 9,000 bytes of an 8,160-byte page, and PostgreSQL refuses it
    ("row is too big", SQLSTATE 54000).  The rows travel in several 64 kB
    COPY chunks and PostgreSQL inserts them in groups: the refusal arrives
    when the group is written and names the COPY line reached by then, not
    the row.  The record is bisected and exactly it is refused, for an
    append-only stream and for a keyed one (whose rows go to a staging
    table first)."""
    props = {"id": {"type": "integer"}}
    props.update({"p%03d" % c: {"type": "string"} for c in range(WIDE_COLUMNS)})
    for stream, keys in (("bulky", []), ("bulky_keyed", ["id"])):
        label = "row too big (%s)" % stream
        sql("DROP TABLE IF EXISTS %s.%s" % (SCHEMA, stream))
        rnd = random.Random(77)
        msgs = [schema(stream, props, keys)]
        for i in range(1, 151):
            rec = {"id": i}
            for c in range(WIDE_COLUMNS):
                rec["p%03d" % c] = ("".join(rnd.choice(string.ascii_letters) for _ in range(40))
                                    if i == 77 else "v%d" % i)
            msgs.append(record(stream, rec))
        msgs.append(state({stream: 150}))
        path, line_of = write_input(stream, msgs)
        r = harness.run_input(config(stream + "_seed"),
                              write_input(stream + "_seed", msgs[:1])[0], timeout=TIMEOUT)
        if not harness.check_exit_0(problems, label + ": creating the table", r):
            continue
        check_policies(label, stream, stream, path, {77: line_of[77][0]},
                       ["row is too big", "54000"])

def test_foreign_key_append_only():
    """An append-only stream whose table (made by target-pg) got a foreign
    key from someone else: PostgreSQL checks it when the COPY ends, naming
    no row.  Three orphans in 300 records are bisected one after another."""
    label = "foreign key, append-only"
    sql("DROP TABLE IF EXISTS %s.visits; DROP TABLE IF EXISTS %s.places" % (SCHEMA, SCHEMA))
    sql("CREATE TABLE %s.places (id bigint PRIMARY KEY); "
        "INSERT INTO %s.places SELECT generate_series(1, 50)" % (SCHEMA, SCHEMA))
    props = {"id": {"type": "integer"}, "place_id": {"type": "integer"},
             "note": {"type": "string"}}
    seed = [schema("visits", props, [])]
    r = harness.run_input(config("visits_seed"), write_input("visits_seed", seed)[0],
                          timeout=TIMEOUT)
    if not harness.check_exit_0(problems, label + ": creating the table", r):
        return
    sql("ALTER TABLE %(s)s.visits ADD CONSTRAINT visits_place FOREIGN KEY (place_id) "
        "REFERENCES %(s)s.places (id)" % {"s": SCHEMA})
    orphans = (17, 150, 299)
    msgs = list(seed)
    msgs += [record("visits", {"id": i, "place_id": 999 if i in orphans else i % 50 + 1,
                               "note": "n" * 400}) for i in range(1, 301)]
    msgs.append(state({"visits": 300}))
    path, line_of = write_input("visits", msgs)
    check_policies(label, "visits", "visits", path, {i: line_of[i][0] for i in orphans},
                   ["visits_place", "Key (place_id)=(999) is not present"])


def main():
    global DB, TMP
    DB, TMP = harness.integration_env()
    sql("CREATE SCHEMA IF NOT EXISTS %s" % SCHEMA)
    for t in (test_encoder_refusals_skip, test_encoder_refusals_dead_letter, test_warning_cap,
              test_unwritable_dead_letter_path, test_copy_refusal, test_merge_check_constraint,
              test_merge_unique_index, test_merge_foreign_key,
              test_merge_foreign_key_between_streams, test_oversized_key,
              test_row_too_big, test_foreign_key_append_only):
        try:
            t()
        except Exception as e:  # one broken case must not hide the others
            problem("%s: %s: %s" % (t.__name__, type(e).__name__, e))
    return harness.report(problems)


if __name__ == "__main__":
    sys.exit(main())

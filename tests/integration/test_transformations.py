#!/usr/bin/env python3
"""transformations and pseudonymization_key (issue #13; README
"Pseudonymising personal data").

  (a) every type on a keyed stream whose key is pseudonymised with HMAC:
      the columns hold the expected pseudonyms (computed here with hashlib
      and hmac), a DROP property has no column, hashed properties are text
      whatever the SCHEMA said, null stays null (MASK-NUMBER and MASK-HIDDEN
      replace it, as transform-field does), a number hashes as its JSON
      text, a MASK-DATE of a non-date is NULL with a warning; a nested
      field_paths entry reaches a flattened column; `when` with equals and
      with field_path + regex_match; a second run upserting the same keys
      leaves one row per key, updated;
  (b) a record that does not fit its table is dead-lettered: the dead
      letter and the warning hold the pseudonyms, never the clear values;
  (c) BATCH files go through the same rules;
  (d) the connection is lost with rows pending: the replay from the spool
      loads the pseudonyms exactly once (no clear value, no hash of a hash);
  (e) the leak test: a pg_dump of the database, everything the runs left in
      their TMPDIR, the dead-letter file, and every stdout and stderr (at
      log_level debug) hold none of the clear values;
  (f) configuration errors exit 2 before anything is loaded: an unknown
      type, HMAC without a key, a malformed `when`, a DROP of a key; the
      key is never printed; --config ENV takes both settings;
  (g) a rule naming a stream or a property that never appears: a warning at
      the end of the run naming it.

Run by tests/run_all.sh (PG* env, TARGET_PG, TARGET_PG_WRAPPER, TEST_DB,
TEST_TMPDIR).  Exit 0 = pass; each problem is printed on its own line.
"""

import gzip
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

SCHEMA = "transformations"
KEY = "pseudo-K3y-f0r-tests"
problems = []
DB, TMP = harness.integration_env()
SPOOL_DIR = os.path.join(TMP, "run-tmp")  # TMPDIR of every run
os.makedirs(SPOOL_DIR, exist_ok=True)
OUTPUTS = []  # stdout and stderr of every run, for the leak test
DEAD = os.path.join(TMP, "dead.jsonl.zst")


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def mac(text):
    return hmac.new(KEY.encode(), text.encode(), hashlib.sha256).hexdigest()


def sql(text):
    return harness.psql(text, DB)


def rule(field, type_, stream="people", **extra):
    r = {"tap_stream_name": stream, "field_id": field, "type": type_}
    r.update(extra)
    return r


RULES = [
    rule("id", "HMAC"),
    rule("email", "HMAC-EMAIL"),
    rule("name", "HASH"),
    rule("phone", "HASH-SKIP-FIRST-3"),
    rule("born", "MASK-DATE"),
    rule("seen", "MASK-DATE"),
    rule("salary", "MASK-NUMBER"),
    rule("secret", "MASK-HIDDEN"),
    rule("card", "MASK-STRING-SKIP-ENDS-4"),
    rule("ssn", "DROP"),
    rule("note", "SET-NULL"),
    rule("address", "HASH", field_paths=["city", "geo/street"]),
    rule("nickname", "HASH", when=[{"column": "country", "equals": "DE"}]),
    rule("tier", "MASK-HIDDEN",
         when=[{"column": "meta", "field_path": "flags/pii", "regex_match": "^y"}]),
]

PROPS = {
    "id": {"type": "integer"},
    "email": {"type": ["null", "string"]},
    "name": {"type": ["null", "string"]},
    "phone": {"type": ["null", "string"]},
    "born": {"type": ["null", "string"], "format": "date"},
    "seen": {"type": ["null", "string"], "format": "date-time"},
    "salary": {"type": ["null", "number"]},
    "secret": {"type": ["null", "string"]},
    "card": {"type": ["null", "string"]},
    "ssn": {"type": ["null", "string"]},
    "note": {"type": ["null", "string"]},
    "address": {"type": ["null", "object"], "properties": {
        "city": {"type": ["null", "string"]},
        "zip": {"type": ["null", "string"]},
        "geo": {"type": ["null", "object"], "properties": {"street": {"type": "string"}}}}},
    "nickname": {"type": ["null", "string"]},
    "country": {"type": ["null", "string"]},
    "tier": {"type": ["null", "string"]},
    "meta": {"type": ["null", "object"]},
    "age": {"type": ["null", "integer"]},
}

# Clear values that must never be stored anywhere (the leak test).
CLEAR = ["alice.wonder", "Alice Wonderland", "555-0199-321", "0199-321", "Pwd-Hunter2",
         "4111222233334444", "123-45-6789", "Private note 1", "Springfield",
         "742 Evergreen Terrace", "Ally", "Bobby Tables", "bob.tables", "Bob's secret",
         "987-65-4321", "Gotham", "Carol Danvers", "carol.d", "Dora Explorer", "dora.x",
         "Eve Replay", "eve.r", "Frank Batch", "frank.b", "Gina Dead", "gina.d"]


def person(i, **over):
    base = {
        1: {"id": 1, "email": "alice.wonder@example.com", "name": "Alice Wonderland",
            "phone": "555-0199-321", "born": "1980-05-17", "seen": "2024-06-30T10:11:12+02:00",
            "salary": 123456.78, "secret": "Pwd-Hunter2", "card": "4111222233334444",
            "ssn": "123-45-6789", "note": "Private note 1",
            "address": {"city": "Springfield", "zip": "49007",
                        "geo": {"street": "742 Evergreen Terrace"}},
            "nickname": "Ally", "country": "DE", "tier": "gold",
            "meta": {"flags": {"pii": "yes"}}, "age": 44},
        2: {"id": 2, "email": None, "name": 42, "phone": "12", "born": "someday",
            "seen": None, "salary": None, "secret": None, "card": "abc",
            "ssn": "987-65-4321", "note": None,
            "address": {"city": "Gotham", "zip": None, "geo": None},
            "nickname": "Bobby", "country": "FR", "tier": "silver",
            "meta": {"flags": {"pii": 1}}, "age": 30},
    }[i]
    base = dict(base)
    base.update(over)
    return base


def schema_msg(stream="people", props=None, keys=("id",)):
    return {"type": "SCHEMA", "stream": stream, "key_properties": list(keys),
            "schema": {"type": "object", "properties": props or PROPS}}


def record(rec, stream="people"):
    return {"type": "RECORD", "stream": stream, "record": rec}


def config(name, **extra):
    settings = {"transformations": RULES, "pseudonymization_key": KEY, "log_level": "debug"}
    settings.update(extra)
    path = harness.write_config(os.path.join(TMP, name + ".json"), DB, SCHEMA, **settings)
    os.chmod(path, 0o600)
    return path


def run(label, cfg, msgs, env=None):
    path = os.path.join(TMP, label.split()[0].strip("()") + ".singer")
    harness.write_messages(path, msgs)
    r = harness.run_target(["--config", cfg, "--input", path],
                           env=dict(env or os.environ, TMPDIR=SPOOL_DIR))
    OUTPUTS.append((label, r.stdout, r.stderr))
    return r


def rows(table, cols):
    return harness.query_json("SELECT %s FROM %s.%s ORDER BY 1" % (cols, SCHEMA, table), DB) or []


def expect_equal(label, what, got, want):
    if got != want:
        problems.append("%s: %s is %r, expected %r" % (label, what, got, want))


def test_types_and_upsert():
    label = "(a) every type"
    cfg = config("a")
    r = run(label, cfg, [schema_msg(), record(person(1)), record(person(2)),
                         {"type": "STATE", "value": {"run": 1}}])
    if not harness.check_exit_0(problems, label, r):
        return
    types = harness.columns(SCHEMA, "people", DB)
    if "ssn" in types:
        problems.append("%s: the DROP property ssn became a column: %s" % (label, list(types)))
    for col in ("id", "email", "name", "phone", "secret", "card", "address__city",
                "address__geo__street", "nickname", "tier"):
        expect_equal(label, "type of column %s" % col, types.get(col), "text")
    expect_equal(label, "type of column born", types.get("born"), "date")
    expect_equal(label, "type of column salary", types.get("salary"), "numeric")
    key = harness.scalar("SELECT constraint_name FROM information_schema.table_constraints "
                         "WHERE table_schema = '%s' AND table_name = 'people' AND "
                         "constraint_type = 'PRIMARY KEY'" % SCHEMA, DB)
    if not key:
        problems.append("%s: the table has no primary key" % label)
    got = {row["id"]: row for row in rows(
        "people", "id, email, name, phone, born::text, seen, salary::text, secret, card, note, "
        "address__city, address__zip, address__geo__street, nickname, country, tier")}
    want = {
        mac("1"): {"id": mac("1"), "email": mac("alice.wonder") + "@example.com",
                   "name": sha("Alice Wonderland"), "phone": "555" + sha("-0199-321"),
                   "born": "1980-01-01", "seen": "2024-01-01T10:11:12+02:00", "salary": "0",
                   "secret": "hidden", "card": "4111********4444", "note": None,
                   "address__city": sha("Springfield"), "address__zip": "49007",
                   "address__geo__street": sha("742 Evergreen Terrace"),
                   "nickname": sha("Ally"), "country": "DE", "tier": "hidden"},
        mac("2"): {"id": mac("2"), "email": None, "name": sha("42"), "phone": "12" + sha(""),
                   "born": None, "seen": None, "salary": "0", "secret": "hidden",
                   "card": "***", "note": None, "address__city": sha("Gotham"),
                   "address__zip": None, "address__geo__street": None,
                   "nickname": "Bobby", "country": "FR", "tier": "silver"},
    }
    for k, w in want.items():
        g = dict(got.get(k) or {})
        if g.get("seen"):  # timestamptz comes back in UTC
            g["seen"] = "2024-01-01T10:11:12+02:00" if g["seen"].startswith(
                "2024-01-01T08:11:12") else g["seen"]
        for col, v in w.items():
            expect_equal(label, "row %s column %s" % (k[:8], col), g.get(col), v)
    if not [w for w in harness.lines_mentioning(r.stderr, "warning")
            if "rule 5" in w and "born" in w and "NULL" in w]:
        problems.append("%s: no warning about the MASK-DATE value that was no date: %s"
                        % (label, r.stderr[-800:]))
    # the same keys again: one row per key, updated
    label = "(a) upsert of pseudonymised keys"
    r = run(label, cfg, [schema_msg(), record(person(1, name="Carol Danvers",
                                                     email="carol.d@example.com")),
                         record(person(2, email="dora.x@example.org", name="Dora Explorer"))])
    if not harness.check_exit_0(problems, label, r):
        return
    expect_equal(label, "row count", harness.count_rows(SCHEMA, "people", DB), 2)
    got = {row["id"]: row for row in rows("people", "id, email, name")}
    expect_equal(label, "row of key 1", got.get(mac("1")),
                 {"id": mac("1"), "email": mac("carol.d") + "@example.com",
                  "name": sha("Carol Danvers")})
    expect_equal(label, "row of key 2", got.get(mac("2")),
                 {"id": mac("2"), "email": mac("dora.x") + "@example.org",
                  "name": sha("Dora Explorer")})


def read_dead_letters():
    if not os.path.exists(DEAD):
        return ""
    return subprocess.run(["zstd", "-dcq", DEAD], capture_output=True, check=False).stdout.decode()


def test_dead_letter():
    label = "(b) dead letter"
    cfg = config("b", invalid_records="dead_letter", dead_letter_path=DEAD)
    bad = person(1, id=3, email="gina.d@example.net", name="Gina Dead", age="not a number")
    r = run(label, cfg, [schema_msg(), record(bad)])
    if not harness.check_exit_0(problems, label, r):
        return
    text = read_dead_letters()
    lines = [json.loads(x) for x in text.splitlines() if x.strip()]
    if len(lines) != 1:
        problems.append("%s: %d dead letters, expected 1: %s" % (label, len(lines), text[:500]))
        return
    rec = lines[0].get("record") or {}
    expect_equal(label, "dead letter's email", rec.get("email"), mac("gina.d") + "@example.net")
    expect_equal(label, "dead letter's name", rec.get("name"), sha("Gina Dead"))
    expect_equal(label, "dead letter's id", rec.get("id"), mac("3"))
    if "ssn" in rec:
        problems.append("%s: the dead letter holds the dropped property ssn" % label)
    expect_equal(label, "dead letter's age (not personal, kept)", rec.get("age"), "not a number")
    if not [w for w in harness.lines_mentioning(r.stderr, "warning") if "not a number" in w]:
        problems.append("%s: no warning naming the invalid value: %s" % (label, r.stderr[-600:]))


def test_batch_files():
    label = "(c) BATCH files"
    f = os.path.join(TMP, "people-batch.jsonl.gz")
    with open(f, "wb") as out:
        out.write(gzip.compress((json.dumps(person(1, id=4, email="frank.b@example.com",
                                                   name="Frank Batch")) + "\n").encode()))
    cfg = config("c")
    r = run(label, cfg, [schema_msg(), {"type": "BATCH", "stream": "people",
                                        "encoding": {"format": "jsonl", "compression": "gzip"},
                                        "manifest": ["file://" + f]}])
    if not harness.check_exit_0(problems, label, r):
        return
    got = rows("people", "id, email, name")
    want = {"id": mac("4"), "email": mac("frank.b") + "@example.com", "name": sha("Frank Batch")}
    if want not in got:
        problems.append("%s: no row %s in %s" % (label, want, got))
    os.unlink(f)


def test_replay_after_lost_connection():
    label = "(d) replay from the spool"
    rules = [dict(r, tap_stream_name="replayed") for r in RULES]
    cfg = config("d", batch_size_rows=100000, max_batch_age_seconds=3600, transformations=rules)
    path = os.path.join(TMP, "d.singer")
    harness.write_messages(path, [schema_msg("replayed")] + [
        record(person(1, id=100 + i, email="eve.r%d@example.com" % i, name="Eve Replay"),
               "replayed") for i in range(50)])
    p = subprocess.Popen(harness.target_cmd() + ["--config", cfg], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=dict(os.environ, TMPDIR=SPOOL_DIR), start_new_session=True)
    with open(path, "rb") as f:
        p.stdin.write(f.read())
    p.stdin.flush()
    # the rows are sent (the COPY waits for more), uncommitted; then the
    # backend goes
    deadline = time.time() + 30
    killed = 0
    while time.time() < deadline and not killed:
        time.sleep(0.5)
        if not harness.table_exists(SCHEMA, "replayed", DB):
            continue
        time.sleep(1.0)
        killed = int(harness.scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
            "application_name = 'target-pg' AND datname = current_database()", DB) or 0)
    p.stdin.write((json.dumps(record(person(1, id=150, email="eve.r50@example.com",
                                            name="Eve Replay"), "replayed")) + "\n").encode())
    out, err = p.communicate(timeout=120)
    OUTPUTS.append((label, out.decode(errors="replace"), err.decode(errors="replace")))
    if p.returncode != 0:
        problems.append("%s: exit %s: %s" % (label, p.returncode, err.decode()[-800:]))
        return
    if not killed:
        problems.append("%s: no target-pg session to terminate" % label)
    elif "replay" not in err.decode(errors="replace").lower():
        problems.append("%s: no replay logged: %s" % (label, err.decode()[-600:]))
    got = rows("replayed", "id, email, name")
    want = [{"id": mac(str(100 + i)), "email": mac("eve.r%d" % i) + "@example.com",
             "name": sha("Eve Replay")} for i in range(51)]
    want.sort(key=lambda x: x["id"])
    if got != want:
        problems.append("%s: %d rows, %d as expected (first: %s)" % (
            label, len(got), sum(1 for g in got if g in want), got[:1]))


def test_leaks():
    label = "(e) leak test"
    dump = subprocess.run([harness.pg_prog("pg_dump"), "-d", DB], capture_output=True,
                          check=False)
    if dump.returncode != 0:
        problems.append("%s: pg_dump failed: %s" % (label, dump.stderr.decode()[-300:]))
    places = [("pg_dump", dump.stdout.decode(errors="replace")),
              ("dead letter", read_dead_letters())]
    for root, _dirs, files in os.walk(SPOOL_DIR):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                places.append(("TMPDIR file " + name, f.read().decode(errors="replace")))
    for run_label, out, err in OUTPUTS:
        places.append(("stdout of " + run_label, out))
        places.append(("stderr of " + run_label, err))
    if len(OUTPUTS) < 5 or "people" not in places[0][1]:
        problems.append("%s: too little to search (%d runs; dump holds people: %s)" % (
            label, len(OUTPUTS), "people" in places[0][1]))
    for where, text in places:
        for clear in CLEAR + [KEY]:
            if clear in text:
                i = text.index(clear)
                problems.append("%s: %s holds the clear value %r: ...%s..." % (
                    label, where, clear, text[max(0, i - 80):i + 80]))


def expect_exit_2(label, cfg, fragment, env=None):
    r = run(label, cfg, [schema_msg("never"), record({"id": 1}, "never")], env=env)
    if r.returncode != 2:
        problems.append("%s: exit %s, expected 2: %s" % (label, r.returncode, r.stderr[-500:]))
    if fragment not in r.stderr:
        problems.append("%s: stderr lacks %r: %s" % (label, fragment, r.stderr[-500:]))
    if KEY in r.stderr or KEY in r.stdout:
        problems.append("%s: the key is printed" % label)
    if harness.table_exists(SCHEMA, "never", DB):
        problems.append("%s: a table was created" % label)


def test_config_errors():
    expect_exit_2("(f) unknown type", config("f1", transformations=[rule("x", "HASH-ALL")]),
                  'unknown type "HASH-ALL"')
    expect_exit_2("(f) HMAC without key",
                  config("f2", pseudonymization_key=None, transformations=[rule("x", "HMAC")]),
                  'needs the secret setting "pseudonymization_key"')
    expect_exit_2("(f) malformed when",
                  config("f3", transformations=[rule("x", "HASH", when=[{"column": "c"}])]),
                  'needs "equals" or a "regex_match"')
    expect_exit_2("(f) not a list", config("f4", transformations={"x": 1}),
                  "must be a list of rules")
    expect_exit_2("(f) DROP of a key",
                  config("f5", transformations=[rule("id", "DROP", stream="never")]),
                  "a key property")
    # --config ENV: both settings from variables, the same pseudonyms as a file
    label = "(f) --config ENV"
    env = dict(os.environ, TARGET_PG_DBNAME=DB, TARGET_PG_DEFAULT_TARGET_SCHEMA=SCHEMA,
               TARGET_PG_PSEUDONYMIZATION_KEY=KEY,
               TARGET_PG_TRANSFORMATIONS=json.dumps([rule("email", "HMAC-EMAIL", "envs")]))
    for var in ("HOST", "PORT", "USER"):
        if os.environ.get("PG" + var):
            env["TARGET_PG_" + var] = os.environ["PG" + var]
    path = os.path.join(TMP, "f-env.singer")
    harness.write_messages(path, [schema_msg("envs", {"email": {"type": "string"}}, []),
                                  record({"email": "carol.d@example.com"}, "envs")])
    r = harness.run_target(["--config", "ENV", "--input", path],
                           env=dict(env, TMPDIR=SPOOL_DIR))
    OUTPUTS.append((label, r.stdout, r.stderr))
    if harness.check_exit_0(problems, label, r):
        expect_equal(label, "email", [x["email"] for x in rows("envs", "email")],
                     [mac("carol.d") + "@example.com"])
    env["TARGET_PG_TRANSFORMATIONS"] = json.dumps([rule("email", "HMAC", "envs")])
    del env["TARGET_PG_PSEUDONYMIZATION_KEY"]
    r = harness.run_target(["--config", "ENV", "--input", path], env=env)
    if r.returncode != 2 or "pseudonymization_key" not in r.stderr:
        problems.append("%s: HMAC without TARGET_PG_PSEUDONYMIZATION_KEY: exit %s: %s"
                        % (label, r.returncode, r.stderr[-400:]))
    about = json.loads(harness.run_target(["--about", "--format", "json"]).stdout)
    key = about["settings"]["properties"].get("pseudonymization_key", {})
    if not (key.get("writeOnly") and key.get("secret")):
        problems.append("(f) --about: pseudonymization_key is not writeOnly and secret: %s" % key)


def test_unknown_names():
    label = "(g) unknown stream and property"
    rules = RULES + [rule("x", "HASH", stream="no_such_stream"),
                     rule("no_such_property", "HASH")]
    cfg = config("g", transformations=rules)
    r = run(label, cfg, [schema_msg(), record(person(1))])
    if not harness.check_exit_0(problems, label, r):
        return
    warnings = harness.lines_mentioning(r.stderr, "warning")
    for name in ('stream "no_such_stream"', 'property "no_such_property"'):
        if not [w for w in warnings if name in w and "rule 1" in w]:
            problems.append("%s: no warning naming %s: %s" % (label, name, warnings))


def main():
    sql("DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s" % (SCHEMA, SCHEMA))
    for t in (test_types_and_upsert, test_dead_letter, test_batch_files,
              test_replay_after_lost_connection, test_config_errors, test_unknown_names,
              test_leaks):
        try:
            t()
        except Exception as e:  # one broken case must not hide the others
            problems.append("%s: %s: %s" % (t.__name__, type(e).__name__, e))
    return harness.report(problems)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Upsert semantics: absent is not null, exact digits (issue #10 items 9, 10).
Each case loads into its own target schema; run 1 loads complete rows, the
later runs the records under test.

  (a) CDC soft delete: a record with only the key and _sdc_deleted_at
      (declared, pipelinewise-tap-postgres style; and undeclared, with
      add_metadata_columns) marks the row and keeps every other column;
  (b) an explicit null stores NULL, the omitted columns keep their values;
  (c) several partial records for one key in one batch combine in input
      order: per column the newest record that carried it (a later null
      wins over an earlier value), a full record then a partial one;
  (d) a new key whose records omit properties: NULL in those columns, two
      partial records of a new key combine;
  (e) flattened objects: an omitted object keeps all its columns, a null
      object stores NULL in all of them, an object that omits a child keeps
      that child's column;
  (f) digits: numeric 1.0 -> 1.00 and jsonb {"a": 1.0} -> {"a": 1.000} are
      changes (stored as written, __loaded_at moves); an identical record,
      complete or partial, leaves the row untouched (same xmin and
      __loaded_at);
  (g) hard_delete: a key-only deletion record deletes the row (also after
      a partial update in the same batch); deleted then
      made again by a partial record in one batch: the omitted columns are
      NULL (the stored row is gone); a partial update keeps the rest;
  (h) versions: a partial RECORD with a version sets _sdc_table_version and
      keeps the omitted columns; ACTIVATE_VERSION then retires nothing;
  (i) an unkeyed stream is unchanged: an omitted property is NULL.

Run by tests/run_all.sh (PG* env, TARGET_PG, TEST_DB, TEST_TMPDIR).  Exit 0 =
pass; each problem is printed on its own line.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

problems = []
MARK = "2024-01-01T00:00:00Z"
MARK_DB = "2024-01-01 00:00:00+00"

PROPS = {
    "id": {"type": "integer"},
    "name": {"type": ["null", "string"]},
    "amount": {"type": ["null", "number"]},
    "note": {"type": ["null", "string"]},
    "doc": {"type": ["null", "object"]},
    "addr": {"type": ["null", "object"],
             "properties": {"city": {"type": ["null", "string"]},
                            "zip": {"type": ["null", "string"]}}},
}
COLS = ["name", "amount", "note", "doc", "addr__city", "addr__zip"]
FULL = {"name": "n", "amount": 1.5, "note": "x", "doc": {"k": 1},
        "addr": {"city": "C", "zip": "Z"}}
FULL_DB = {"name": "n", "amount": "1.5", "note": "x", "doc": '{"k": 1}',
           "addr__city": "C", "addr__zip": "Z"}


def schema(stream, props=None, keys=("id",)):
    return {"type": "SCHEMA", "stream": stream, "key_properties": list(keys),
            "schema": {"type": "object", "properties": props or PROPS}}


def rec(stream, record, **extra):
    m = {"type": "RECORD", "stream": stream, "record": record}
    m.update(extra)
    return m


def full(i, **changes):
    r = dict(FULL, id=i)
    r.update(changes)
    return r


def run(cfg, tmp, label, msgs):
    path = os.path.join(tmp, "upsert-%s.singer" % label.replace(" ", "-"))
    harness.write_messages(path, msgs)
    return harness.check_exit_0(problems, label, harness.run_input(cfg, path))


def rows(db, schema_name, table="t", cols=COLS, extra=()):
    """{id: {column: text or None}} of the table."""
    sel = ", ".join(["id"] + ["%s::text AS %s" % (c, harness.quote_ident(c))
                              for c in list(cols) + list(extra)])
    got = harness.query_json("SELECT %s FROM %s" % (sel, harness.qualified(schema_name, table)),
                             db)
    return {r["id"]: r for r in got}


def expect(label, got, key, want):
    """want: {column: text or None}; a missing key is a problem."""
    row = got.get(key)
    if row is None:
        problems.append("%s: no row for id %s" % (label, key))
        return
    for col, value in want.items():
        if row.get(col) != value:
            problems.append("%s: id %s column %s is %r, expected %r"
                            % (label, key, col, row.get(col), value))


def config(tmp, db, name, **extra):
    return harness.write_config(os.path.join(tmp, "upsert-%s.json" % name), db, name, **extra)


def case_cdc_soft_delete(db, tmp):
    props = dict(PROPS, _sdc_deleted_at={"type": ["null", "string"], "format": "date-time"})
    cfg = config(tmp, db, "cdc_soft")
    if not run(cfg, tmp, "(a) run 1", [schema("t", props),
                                       rec("t", full(1, _sdc_deleted_at=None)),
                                       rec("t", full(2, _sdc_deleted_at=None))]):
        return
    if not run(cfg, tmp, "(a) run 2", [schema("t", props),
                                       rec("t", {"id": 1, "_sdc_deleted_at": MARK})]):
        return
    got = rows(db, "cdc_soft", extra=["_sdc_deleted_at"])
    expect("(a) declared mark", got, 1, dict(FULL_DB, _sdc_deleted_at=MARK_DB))
    expect("(a) other key", got, 2, dict(FULL_DB, _sdc_deleted_at=None))

    cfg = config(tmp, db, "cdc_meta", add_metadata_columns=True)
    if not run(cfg, tmp, "(a) metadata run 1", [schema("t"), rec("t", full(1))]):
        return
    if not run(cfg, tmp, "(a) metadata run 2",
               [schema("t"), rec("t", {"id": 1, "_sdc_deleted_at": MARK})]):
        return
    got = rows(db, "cdc_meta", extra=["_sdc_deleted_at"])
    expect("(a) undeclared mark", got, 1, dict(FULL_DB, _sdc_deleted_at=MARK_DB))


def case_null_and_combine(db, tmp):
    cfg = config(tmp, db, "combine")
    if not run(cfg, tmp, "(b-e) run 1", [schema("t")] + [rec("t", full(i)) for i in (1, 2, 6, 7, 8)]):
        return
    msgs = [schema("t"),
            # (b)
            rec("t", {"id": 1, "name": None}),
            # (c) three partial records, then a later null over an earlier value
            rec("t", {"id": 2, "name": "N"}),
            rec("t", {"id": 2, "amount": 3.50}),
            rec("t", {"id": 2, "note": "y"}),
            rec("t", {"id": 2, "note": None}),
            # (c) a full record of a new key, then a partial one
            rec("t", full(3, name="first", note="kept")),
            rec("t", {"id": 3, "name": "later"}),
            # (d) new keys
            rec("t", {"id": 4, "name": "d"}),
            rec("t", {"id": 5, "name": "e"}),
            rec("t", {"id": 5, "amount": 5}),
            # (e) objects: omitted, null, a child omitted
            rec("t", {"id": 6, "name": "no addr"}),
            rec("t", {"id": 7, "addr": None}),
            rec("t", {"id": 8, "addr": {"city": "C2"}})]
    if not run(cfg, tmp, "(b-e) run 2", msgs):
        return
    got = rows(db, "combine")
    expect("(b) explicit null", got, 1, dict(FULL_DB, name=None))
    expect("(c) partial records combined", got, 2, dict(FULL_DB, name="N", amount="3.5", note=None))
    expect("(c) full then partial", got, 3, dict(FULL_DB, name="later", note="kept"))
    expect("(d) new key, property omitted", got, 4,
           {"name": "d", "amount": None, "note": None, "doc": None, "addr__city": None,
            "addr__zip": None})
    expect("(d) new key, two partial records", got, 5, {"name": "e", "amount": "5", "note": None})
    expect("(e) object omitted", got, 6, dict(FULL_DB, name="no addr"))
    expect("(e) null object", got, 7, dict(FULL_DB, addr__city=None, addr__zip=None))
    expect("(e) child omitted", got, 8, dict(FULL_DB, addr__city="C2"))


def touched(db, schema_name):
    """{id: (xmin, __loaded_at)}: a rewritten row changes both."""
    got = harness.query_json("SELECT id, xmin::text AS x, __loaded_at::text AS l FROM %s"
                             % harness.qualified(schema_name, "t"), db)
    return {r["id"]: (r["x"], r["l"]) for r in got}


def case_digits(db, tmp):
    cfg = config(tmp, db, "digits")
    first = [rec("t", full(1, amount=1.0, doc={"a": 1.0})),
             rec("t", full(2, amount=1.0, doc={"a": 1.0}))]
    # json.dumps writes 1.0; the later digits are written into the line itself
    if not run(cfg, tmp, "(f) run 1", [schema("t")] + first):
        return
    before = touched(db, "digits")
    # identical records: complete for id 1, partial (name omitted) for id 2
    same = [schema("t"), rec("t", full(1, amount=1.0, doc={"a": 1.0})),
            rec("t", {"id": 2, "amount": 1.0, "doc": {"a": 1.0}})]
    if not run(cfg, tmp, "(f) identical", same):
        return
    after = touched(db, "digits")
    for i in (1, 2):
        if before.get(i) != after.get(i):
            problems.append("(f) identical record %s rewrote the row: %r -> %r"
                            % ("complete" if i == 1 else "partial", before.get(i), after.get(i)))
    path = os.path.join(tmp, "upsert-digits.singer")
    harness.write_lines(path, [
        harness.jline(schema("t")),
        '{"type": "RECORD", "stream": "t", "record": {"id": 1, "name": "n", "amount": 1.00, '
        '"note": "x", "doc": {"a": 1.000}, "addr": {"city": "C", "zip": "Z"}}}',
        '{"type": "RECORD", "stream": "t", "record": {"id": 2, "amount": 1.00, '
        '"doc": {"a": 1.000}}}'])
    if not harness.check_exit_0(problems, "(f) digits", harness.run_input(cfg, path)):
        return
    got = rows(db, "digits")
    changed = touched(db, "digits")
    for i, how in ((1, "complete"), (2, "partial")):
        expect("(f) digits, %s record" % how, got, i, {"amount": "1.00", "doc": '{"a": 1.000}'})
        if changed.get(i, (None, None))[1] == after.get(i, (None, None))[1]:
            problems.append("(f) digits, %s record: __loaded_at did not move" % how)


def case_hard_delete(db, tmp):
    cfg = config(tmp, db, "hard", hard_delete=True)
    if not run(cfg, tmp, "(g) run 1", [schema("t")] + [rec("t", full(i)) for i in (1, 2, 3, 4)]):
        return
    msgs = [schema("t"),
            rec("t", {"id": 1, "_sdc_deleted_at": MARK}),
            rec("t", {"id": 2, "_sdc_deleted_at": MARK}),
            rec("t", {"id": 2, "name": "back"}),
            rec("t", {"id": 3, "name": "upd"}),
            rec("t", {"id": 4, "name": "upd"}),
            rec("t", {"id": 4, "_sdc_deleted_at": MARK})]
    if not run(cfg, tmp, "(g) run 2", msgs):
        return
    got = rows(db, "hard")
    for i in (1, 4):
        if i in got:
            problems.append("(g) key-only deletion record did not delete id %d" % i)
    expect("(g) deleted then made again", got, 2,
           {"name": "back", "amount": None, "note": None, "addr__city": None})
    expect("(g) partial update", got, 3, dict(FULL_DB, name="upd"))


def case_versions(db, tmp):
    cfg = config(tmp, db, "versions")
    if not run(cfg, tmp, "(h) run 1", [schema("t"), rec("t", full(1), version=1),
                                       rec("t", full(2), version=1),
                                       {"type": "ACTIVATE_VERSION", "stream": "t", "version": 1}]):
        return
    msgs = [schema("t"), rec("t", {"id": 1, "name": "v2"}, version=2),
            rec("t", {"id": 2, "note": "w"}, version=2),
            {"type": "ACTIVATE_VERSION", "stream": "t", "version": 2}]
    if not run(cfg, tmp, "(h) run 2", msgs):
        return
    got = rows(db, "versions", extra=["_sdc_table_version", "_sdc_deleted_at"])
    expect("(h) versioned partial", got, 1,
           dict(FULL_DB, name="v2", _sdc_table_version="2", _sdc_deleted_at=None))
    expect("(h) versioned partial", got, 2,
           dict(FULL_DB, note="w", _sdc_table_version="2", _sdc_deleted_at=None))


def case_append(db, tmp):
    cfg = config(tmp, db, "append")
    if not run(cfg, tmp, "(i) append", [schema("t", keys=()), rec("t", full(1)),
                                        rec("t", {"id": 1, "name": "only"})]):
        return
    got = harness.query_json("SELECT name, amount::text AS amount FROM append.t ORDER BY name",
                             db)
    if got != [{"name": "n", "amount": "1.5"}, {"name": "only", "amount": None}]:
        problems.append("(i) unkeyed rows %r" % got)


def main():
    db, tmp = harness.integration_env()
    case_cdc_soft_delete(db, tmp)
    case_null_and_combine(db, tmp)
    case_digits(db, tmp)
    case_hard_delete(db, tmp)
    case_versions(db, tmp)
    case_append(db, tmp)
    return harness.report(problems)


if __name__ == "__main__":
    sys.exit(main())

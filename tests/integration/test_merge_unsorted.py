#!/usr/bin/env python3
"""The merge of a keyed batch that repeats no key does not sort the staged
rows (drivers/postgres/pg_merge.c), and one that does still keeps the newest
record per key.

  (a) an upsert batch of changed rows with no key twice loads with the
      server allowed no temporary file at all (work_mem 64kB,
      temp_file_limit 0 through PGOPTIONS): no sort of the stage.  Every
      changed row lands exactly (numeric digits, jsonb, text), the unchanged
      rows keep their xmin, a new key is inserted;
  (b) a batch that repeats keys (the unsorted try fails, the sorted form
      runs in the same transaction): a key changed and then sent again as
      stored stays as stored and is not rewritten (same xmin), a key sent
      as stored and then changed takes the change, a new key sent twice
      takes the newest, a key sent once takes its change;
  (c) after such a batch, later batches of the run (batch_size_rows 3)
      keep the newest record per key, with and without repeats.

Run by tests/run_all.sh (PG* env, TARGET_PG, TEST_DB, TEST_TMPDIR).  Exit 0 =
pass; each problem is printed on its own line.
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

problems = []
N = 3000
PROPS = {
    "id": {"type": "integer"},
    "name": {"type": ["null", "string"]},
    "amount": {"type": ["null", "number"]},
    "doc": {"type": ["null", "object"]},
    "note": {"type": ["null", "string"]},
}
COLS = ("name", "amount", "doc", "note")
SCHEMA = {"type": "SCHEMA", "stream": "t", "key_properties": ["id"],
          "schema": {"type": "object", "properties": PROPS}}
# no temporary file at all: a sort of the staged rows cannot spill, so it fails
NO_SORT = {"PGOPTIONS": "-c work_mem=64kB -c temp_file_limit=0"}


def row(i, gen):
    """Record i of generation gen: every data column differs between gens."""
    return {"id": i, "name": "name %d/%d" % (i, gen),
            "amount": "%d.%02d0" % (i * 3 + gen, gen),
            "doc": {"gen": gen, "v": "1.%d0" % i},
            "note": ("note %d of gen %d, tab\there " % (i, gen)) * 6}


def want(r):
    """The row as the table's text should hold it."""
    return {"name": r["name"], "amount": r["amount"],
            "doc": '{"v": "%s", "gen": %d}' % (r["doc"]["v"], r["doc"]["gen"]),
            "note": r["note"]}


def line(r):
    """The RECORD line, amount as a JSON number with its digits as written."""
    rest = {k: v for k, v in r.items() if k != "amount"}
    record = json.dumps(rest)[:-1] + ', "amount": %s}' % r["amount"]
    return '{"type": "RECORD", "stream": "t", "record": %s}' % record


def run(tmp, cfg, label, records, env=None):
    path = os.path.join(tmp, "merge-%s.singer" % label.replace(" ", "-"))
    harness.write_lines(path, [json.dumps(SCHEMA)] + [line(r) for r in records])
    r = harness.run_target(["--config", cfg, "--input", path],
                           env=dict(os.environ, **env) if env else None)
    return harness.check_exit_0(problems, label, r)


def stored(db, schema):
    sel = ", ".join("%s::text AS %s" % (c, c) for c in COLS)
    got = harness.query_json("SELECT id, xmin::text AS xmin, %s FROM %s.t" % (sel, schema), db)
    return {r["id"]: r for r in got}


def check(label, got, i, r):
    have = got.get(i)
    if have is None:
        problems.append("%s: no row for id %d" % (label, i))
        return
    for col, value in want(r).items():
        if have[col] != value:
            problems.append("%s: id %d column %s is %r, expected %r"
                            % (label, i, col, have[col], value))


def check_xmin(label, before, after, ids, same):
    for i in ids:
        b, a = before.get(i), after.get(i)
        if b is None or a is None:
            continue
        if (b["xmin"] == a["xmin"]) != same:
            problems.append("%s: id %d was %s" % (label, i, "rewritten (xmin moved)" if same
                                                  else "not rewritten (same xmin)"))


def case_no_sort(db, tmp):
    cfg = harness.write_config(os.path.join(tmp, "merge-a.json"), db, "a")
    if not run(tmp, cfg, "a first load", [row(i, 0) for i in range(1, N + 1)]):
        return
    before = stored(db, "a")
    # every third row unchanged, the rest changed, one new key
    batch = [row(i, 0 if i % 3 == 0 else 1) for i in range(1, N + 1)] + [row(N + 1, 1)]
    if not run(tmp, cfg, "a upsert", batch, NO_SORT):
        problems.append("a: the upsert of a batch without a repeated key needed a temporary "
                        "file (a sort of the staged rows?)")
        return
    after = stored(db, "a")
    if len(after) != N + 1:
        problems.append("a: %d rows, expected %d" % (len(after), N + 1))
    for r in batch:
        check("a", after, r["id"], r)
    check_xmin("a unchanged", before, after, range(3, N + 1, 3), True)
    check_xmin("a changed", before, after, range(1, N + 1, 3), False)


def case_repeats(db, tmp):
    cfg = harness.write_config(os.path.join(tmp, "merge-b.json"), db, "b")
    if not run(tmp, cfg, "b first load", [row(i, 0) for i in range(1, 11)]):
        return
    before = stored(db, "b")
    batch = [row(1, 1), row(2, 0), row(11, 1), row(3, 2), row(1, 0), row(2, 3), row(11, 4)]
    if not run(tmp, cfg, "b repeats", batch):
        return
    after = stored(db, "b")
    check("b changed then as stored", after, 1, row(1, 0))
    check_xmin("b changed then as stored", before, after, [1], True)
    check("b as stored then changed", after, 2, row(2, 3))
    check("b new key twice", after, 11, row(11, 4))
    check("b once", after, 3, row(3, 2))
    check("b untouched", after, 4, row(4, 0))
    check_xmin("b untouched", before, after, range(4, 11), True)

    cfg3 = harness.write_config(os.path.join(tmp, "merge-c.json"), db, "b", batch_size_rows=3)
    batches = [row(5, 1), row(5, 2), row(6, 1),   # repeats: sorted from here on
               row(7, 1), row(8, 1), row(9, 1),   # none
               row(7, 2), row(10, 0), row(7, 0)]  # changed then back
    if not run(tmp, cfg3, "c later batches", batches):
        return
    after = stored(db, "b")
    for i, r in ((5, row(5, 2)), (6, row(6, 1)), (7, row(7, 0)), (8, row(8, 1)),
                 (9, row(9, 1)), (10, row(10, 0))):
        check("c", after, i, r)


def main():
    db, tmp = harness.integration_env()
    case_no_sort(db, tmp)
    case_repeats(db, tmp)
    return harness.report(problems)


if __name__ == "__main__":
    sys.exit(main())

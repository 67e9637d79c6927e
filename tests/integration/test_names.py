#!/usr/bin/env python3
"""Hostile stream and property names (docs/contract.md "Names").

  * property names with ", ', ;, "; DROP TABLE victim; --", reserved words
    (select, order, user, table), spaces, upper case, a leading digit,
    non-ASCII: each lands in its own, correctly normalised column, holding
    its own value;
  * two 80-byte property names sharing a 63-byte prefix: two distinct
    columns of <= 63 bytes, each the 54-byte prefix + '_' + 8 hex digits;
  * `Name` then `name`: the second gets the hash suffix;
  * nested `a` -> `b` gives `a__b`;
  * hostile stream names (quotes, reserved words, SQL injection, spaces,
    upper case, a leading digit, non-ASCII) give the normalised table names;
  * stream `src-orders` lands as table `orders`, in the default schema
    without a mapping and in schema `mapped` with schema_mapping
    {"src": "mapped"};
  * tables named "victim" (and x) made beforehand still exist with their rows;
  * COMMENT ON COLUMN holds the source path as a JSON array of its parts
    ("source: [\"a\",\"b\"]", col_description).

Run by tests/run_all.sh (PG* env, TARGET_PG, TARGET_PG_WRAPPER, TEST_DB,
TEST_TMPDIR).  Exit 0 = pass; each problem is printed on its own line.
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

SCHEMA = "names_default"
problems = []


def problem(msg):
    problems.append(msg)


def suffixed(parts):
    """The clash form: identifier cut to <= 54 bytes + '_' + 8 hex digits of
    the FNV-1a hash of the source path (src/naming.h)."""
    ident = "__".join(harness.normalize_part(p) for p in parts)
    h = harness.fnv1a32(harness.PATH_SEPARATOR.join(p.encode("utf-8") for p in parts))
    return "%s_%08x" % (harness.cut_utf8(ident, harness.IDENT_CUT), h)


# two 80-byte names with the same first 63 bytes
LONG_PREFIX = "a_rather_long_property_name_that_goes_on_and_on_and_on_xx"  # padded below
LONG_PREFIX = (LONG_PREFIX + "_" * 63)[:63]
LONG1 = LONG_PREFIX + "_first_variant_aa"
LONG2 = LONG_PREFIX + "_second_variant_b"
assert len(LONG1.encode()) == 80 and len(LONG2.encode()) == 80

# (source property name, expected column) -- a plain top-level property each
HOSTILE_PROPS = [
    ('col"quote', 'col_quote'),
    ("it's", "it_s"),
    ("semi;colon", "semi_colon"),
    ("; DROP TABLE victim; --", "__drop_table_victim____"),
    ('"; DROP TABLE x; --', "___drop_table_x____"),
    ("select", "select"),
    ("order", "order"),
    ("user", "user"),
    ("table", "table"),
    ("with space", "with_space"),
    ("UPPER", "upper"),
    ("MixedCase", "mixedcase"),
    ("9lives", "_9lives"),
    ("Ελληνικά", "Ελληνικά"),
    ("日本語の列", "日本語の列"),
    ("ümlaut-Ä", "ümlaut_Ä"),
    (LONG1, None),  # computed below
    (LONG2, None),
    ("a" + "漢" * 25, None),  # 76 bytes: cut at a character boundary (52 bytes)
    ("Ω" * 40, None),  # 80 bytes of 2-byte characters
    ("Name", "name"),
    ("name", None),  # clashes with Name -> hash suffix
    ("_tgt_seq", "_tgt_seq"),  # once the staging table's own sequence column
    ("target-pg sequence", "target_pg_sequence"),  # its name now: never a column's
]

# hostile stream names -> expected table (one property "v" each)
HOSTILE_STREAMS = [
    ('tbl "quoted"', 'tbl__quoted_'),
    ("it's", "it_s"),
    ("select", "select"),
    ("user", "user"),
    ("order", "order"),
    ("; DROP TABLE victim; --", "__drop_table_victim____"),
    ("Upper Case Stream", "upper_case_stream"),
    ("9lives", "_9lives"),
    ("ελληνικά", "ελληνικά"),
    ("a.b", "a_b"),
    ("Stream_" + "x" * 70, harness.identifier(["Stream_" + "x" * 70])),  # 77 bytes
]


def run(cfg, path, label):
    """Loads path; False (after a problem) when target-pg did not exit 0."""
    return harness.check_exit_0(problems, label, harness.run_input(cfg, path), tail=2000)


def column_comment(schema, table, column, db):
    rows = harness.query_json(
        "SELECT col_description(c.oid, a.attnum) AS d FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid "
        "WHERE n.nspname = %s AND c.relname = %s AND a.attname = %s"
        % (harness.sql_literal(schema), harness.sql_literal(table),
           harness.sql_literal(column)), db)
    return rows[0]["d"] if rows else None


def check_comment(schema, table, column, path, db, label):
    """The comment names the source path: every part, in order."""
    d = column_comment(schema, table, column, db)
    if d is None:
        problem("%s: column %s.%s has no comment (expected the source path %r)"
                % (label, table, column, path))
        return
    want = "source: " + json.dumps(list(path), ensure_ascii=False, separators=(",", ":"))
    if d != want:
        problem("%s: comment on %s.%s is %r, expected %r (the source path %r)"
                % (label, table, column, d, want, path))


def main():
    db, tmp = harness.integration_env()

    # bystanders an injected statement would hit
    for sch in ("public", SCHEMA):
        harness.psql("CREATE SCHEMA IF NOT EXISTS %s" % harness.quote_ident(sch), db)
        harness.psql("CREATE TABLE %s.victim (id int); " % harness.quote_ident(sch), db)
        harness.psql("INSERT INTO %s.victim VALUES (1), (2)" % harness.quote_ident(sch), db)
        harness.psql("CREATE TABLE %s.x (id int)" % harness.quote_ident(sch), db)
        harness.psql("INSERT INTO %s.x VALUES (7)" % harness.quote_ident(sch), db)

    # expected columns
    expected = []  # (source path list, expected column, value)
    for name, col in HOSTILE_PROPS:
        if col is None:
            col = suffixed([name]) if name == "name" else harness.identifier([name])
        expected.append(([name], col, "value of " + name))
    expected.append((["a", "b"], "a__b", "value of a.b"))

    props = {name: {"type": ["null", "string"]} for name, _ in HOSTILE_PROPS}
    props["id"] = {"type": "integer"}
    props["a"] = {"type": ["null", "object"], "properties": {"b": {"type": ["null", "string"]}}}
    record = {name: "value of " + name for name, _ in HOSTILE_PROPS}
    record["id"] = 1
    record["a"] = {"b": "value of a.b"}

    msgs = [{"type": "SCHEMA", "stream": "props", "key_properties": ["id"],
             "schema": {"type": "object", "properties": props}},
            {"type": "RECORD", "stream": "props", "record": record}]
    for i, (stream, _) in enumerate(HOSTILE_STREAMS, 1):
        msgs.append({"type": "SCHEMA", "stream": stream, "key_properties": [],
                     "schema": {"type": "object", "properties": {"v": {"type": "string"}}}})
        msgs.append({"type": "RECORD", "stream": stream, "record": {"v": "stream %s" % stream}})
    msgs.append({"type": "SCHEMA", "stream": "src-orders", "key_properties": ["id"],
                 "schema": {"type": "object",
                            "properties": {"id": {"type": "integer"},
                                           "v": {"type": "string"}}}})
    msgs.append({"type": "RECORD", "stream": "src-orders", "record": {"id": 1, "v": "unmapped"}})
    msgs.append({"type": "STATE", "value": {"done": True}})
    in1 = os.path.join(tmp, "names-1.singer")
    harness.write_messages(in1, msgs)
    cfg1 = harness.write_config(os.path.join(tmp, "names-config-1.json"), db, SCHEMA)
    ok1 = run(cfg1, in1, "run 1")

    # run 2: the same src-orders stream with schema_mapping {"src": "mapped"},
    # plus a stream of a source schema without a mapping
    msgs2 = [m for m in msgs if m.get("stream") == "src-orders"]
    msgs2[1] = {"type": "RECORD", "stream": "src-orders", "record": {"id": 2, "v": "mapped"}}
    msgs2 += [{"type": "SCHEMA", "stream": "other-items", "key_properties": [],
               "schema": {"type": "object", "properties": {"v": {"type": "string"}}}},
              {"type": "RECORD", "stream": "other-items", "record": {"v": "other"}}]
    in2 = os.path.join(tmp, "names-2.singer")
    harness.write_messages(in2, msgs2)
    cfg2 = harness.write_config(os.path.join(tmp, "names-config-2.json"), db, SCHEMA,
                                schema_mapping={"src": "mapped"})
    ok2 = run(cfg2, in2, "run 2")

    # nothing dropped
    for sch in ("public", SCHEMA):
        for tbl, n in (("victim", 2), ("x", 1)):
            if not harness.table_exists(sch, tbl, db):
                problem("table %s.%s was dropped" % (sch, tbl))
            elif harness.count_rows(sch, tbl, db) != n:
                problem("table %s.%s lost rows" % (sch, tbl))

    check_clash(db, tmp, cfg1)
    if ok1:
        check_props(db, expected)
        check_streams(db)
        if not harness.table_exists(SCHEMA, "orders", db):
            problem("stream src-orders without schema_mapping: no table %s.orders (tables: %s)"
                    % (SCHEMA, tables_in(SCHEMA, db)))
        else:
            got = harness.column_values(SCHEMA, "orders", "v", db, order_by="id")
            if got != ["unmapped"]:
                problem("%s.orders holds %r, expected ['unmapped']" % (SCHEMA, got))
        for bad in ("src-orders", "src_orders"):
            if harness.table_exists(SCHEMA, bad, db):
                problem("stream src-orders made a table %s.%s; expected %s.orders"
                        % (SCHEMA, bad, SCHEMA))
    if ok2:
        if not harness.table_exists("mapped", "orders", db):
            problem("schema_mapping {\"src\": \"mapped\"}: no table mapped.orders "
                    "(schemas: %s)" % ", ".join(r["nspname"] for r in harness.query_json(
                        "SELECT nspname FROM pg_namespace ORDER BY 1", db)))
        else:
            got = harness.column_values("mapped", "orders", "v", db, order_by="id")
            if got != ["mapped"]:
                problem("mapped.orders holds %r, expected ['mapped']" % (got,))
        if harness.table_exists(SCHEMA, "orders", db):
            got = harness.column_values(SCHEMA, "orders", "v", db, order_by="id")
            if "mapped" in got:
                problem("with schema_mapping the src-orders row went to %s.orders" % SCHEMA)
        if not harness.table_exists(SCHEMA, "items", db):
            problem("stream other-items (no mapping for 'other'): no table %s.items (tables: %s)"
                    % (SCHEMA, tables_in(SCHEMA, db)))
    return harness.report(problems)


def check_clash(db, tmp, cfg):
    """Clashing names in one table and a long nested path; then a second run
    whose SCHEMA lists the same properties in another order: every value must
    land in the same column as in the first run (no swap, no new column)."""
    S = "clash"
    long_parent, long_child = "p" * 40, "c" * 40
    props1 = [("id", {"type": "integer"}),
              ("a", {"type": ["null", "object"],
                     "properties": {"b": {"type": ["null", "string"]}}}),
              ("a__b", {"type": ["null", "string"]}),
              ("Name", {"type": ["null", "string"]}),
              ("name", {"type": ["null", "string"]}),
              (long_parent, {"type": ["null", "object"],
                             "properties": {long_child: {"type": ["null", "string"]}}})]
    values = {("a", "b"): "nested a.b", ("a__b",): "top a__b", ("Name",): "v Name",
              ("name",): "v name", (long_parent, long_child): "v long nested"}

    def record(rid):
        return {"id": rid, "a": {"b": values[("a", "b")]}, "a__b": values[("a__b",)],
                "Name": values[("Name",)], "name": values[("name",)],
                long_parent: {long_child: values[(long_parent, long_child)]}}

    for run_no, props in ((1, props1), (2, list(reversed(props1)))):
        msgs = [{"type": "SCHEMA", "stream": S, "key_properties": ["id"],
                 "schema": {"type": "object", "properties": dict(props)}},
                {"type": "RECORD", "stream": S, "record": record(run_no)}]
        path = os.path.join(tmp, "clash-%d.singer" % run_no)
        harness.write_messages(path, msgs)
        if not run(cfg, path, "clash run %d" % run_no):
            return
        if run_no == 1:
            cols1 = harness.columns(SCHEMA, S, db)
    cols2 = harness.columns(SCHEMA, S, db)
    if cols2 != cols1:
        problem("clash: run 2 (same properties, other order) changed the columns from %s to %s"
                % (sorted(cols1), sorted(cols2)))
    long_col = harness.identifier([long_parent, long_child])
    want_cols = {"id", "__loaded_at", "a__b", "name", suffixed(["name"]), long_col}
    a_alt = [suffixed(["a__b"]), suffixed(["a", "b"])]
    if a_alt[0] in cols1:
        want_cols.add(a_alt[0])
        col_of = {("a", "b"): "a__b", ("a__b",): a_alt[0]}
    elif a_alt[1] in cols1:
        want_cols.add(a_alt[1])
        col_of = {("a", "b"): a_alt[1], ("a__b",): "a__b"}
    else:
        problem("clash: nested a.b and top-level a__b did not give a__b and a__b_<hash> "
                "(columns: %s)" % ", ".join(sorted(cols1)))
        return
    col_of[("Name",)] = "name"
    col_of[("name",)] = suffixed(["name"])
    col_of[(long_parent, long_child)] = long_col
    if set(cols1) != want_cols:
        problem("clash: columns %s, expected %s" % (sorted(cols1), sorted(want_cols)))
        return
    for path, col in col_of.items():
        check_comment(SCHEMA, S, col, list(path), db, "clash %r" % ".".join(path))
        got = harness.column_values(SCHEMA, S, col, db, order_by="id")
        if got != [values[path], values[path]]:
            problem("clash: column %s holds %r for runs 1 and 2, expected %r for source %r "
                    "(run 2 listed the properties in another order)"
                    % (col, got, [values[path]] * 2, ".".join(path)))


def tables_in(schema, db):
    return ", ".join(r["table_name"] for r in harness.query_json(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1"
        % harness.sql_literal(schema), db))


def check_props(db, expected):
    table = "props"
    if not harness.table_exists(SCHEMA, table, db):
        problem("no table %s.props (tables: %s)" % (SCHEMA, tables_in(SCHEMA, db)))
        return
    cols = harness.columns(SCHEMA, table, db)
    want_cols = [col for _, col, _ in expected]
    if len(set(want_cols)) != len(want_cols):
        problem("test bug: expected columns are not distinct")
    for path, col, _ in expected:
        if col not in cols:
            problem("property %r: no column %r (columns: %s)"
                    % (".".join(path), col, ", ".join(sorted(cols))))
    for c in cols:
        if len(c.encode("utf-8")) > 63:
            problem("column %r is %d bytes (> 63)" % (c, len(c.encode("utf-8"))))
    extra = set(cols) - set(want_cols) - {"id", "__loaded_at"}
    if extra:
        problem("unexpected columns in %s.props: %s" % (SCHEMA, ", ".join(sorted(extra))))

    # the two long names: distinct, <= 63 bytes, 54-byte prefix + '_' + 8 hex
    c1 = harness.identifier([LONG1])
    c2 = harness.identifier([LONG2])
    if c1 == c2 or len(c1.encode()) > 63 or not c1.startswith(LONG_PREFIX[:54] + "_"):
        problem("test bug: long identifiers %r %r" % (c1, c2))
    long_cols = [c for c in cols if c.startswith(LONG_PREFIX[:54])]
    if len(long_cols) != 2:
        problem("the two 80-byte properties sharing a 63-byte prefix gave columns %r, "
                "expected two distinct: %r and %r" % (long_cols, c1, c2))
    for c in long_cols:
        tail = c[54:]
        if len(c.encode()) != 63 or tail[0] != "_" or any(ch not in "0123456789abcdef"
                                                         for ch in tail[1:]):
            problem("long column %r is not the 54-byte prefix + '_' + 8 hex digits" % c)

    # each column holds its own property's value
    present = [(p, c, v) for p, c, v in expected if c in cols]
    if present:
        sel = ", ".join("%s AS %s" % (harness.quote_ident(c), harness.quote_ident("c%d" % i))
                        for i, (_, c, _) in enumerate(present))
        rows = harness.query_json("SELECT %s FROM %s" % (sel, harness.qualified(SCHEMA, table)),
                                  db)
        if len(rows) != 1:
            problem("%s.props has %d rows, expected 1" % (SCHEMA, len(rows)))
        else:
            for i, (path, col, val) in enumerate(present):
                got = rows[0]["c%d" % i]
                if got != val:
                    problem("column %r holds %r, expected %r (property %r)"
                            % (col, got, val, ".".join(path)))
            for path, col, _ in present:
                check_comment(SCHEMA, table, col, path, db, "property %r" % ".".join(path))


def check_streams(db):
    want_tables = {t for _, t in HOSTILE_STREAMS}
    if len(want_tables) != len(HOSTILE_STREAMS):
        problem("test bug: expected table names not distinct")
    for stream, tbl in HOSTILE_STREAMS:
        if harness.table_name(stream) != tbl:
            problem("test bug: harness.table_name(%r) = %r, expected %r"
                    % (stream, harness.table_name(stream), tbl))
        if not harness.table_exists(SCHEMA, tbl, db):
            problem("stream %r: no table %s.%r (tables: %s)" % (stream, SCHEMA, tbl,
                                                              tables_in(SCHEMA, db)))
            continue
        got = harness.column_values(SCHEMA, tbl, "v", db)
        if got != ["stream %s" % stream]:
            problem("stream %r: table %r holds %r" % (stream, tbl, got))


if __name__ == "__main__":
    sys.exit(main())

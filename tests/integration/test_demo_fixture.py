#!/usr/bin/env python3
"""Loads fixtures/demo.singer (the `make demo` input) into schema "demo" of
$TEST_DB and checks the result against the fixture itself: row counts after
upserts and appends, the final STATE, flattened column names and types, the
primary keys, and values read back exactly (non-ASCII text, quotes, tabs and
emoji, decimals digit for digit, timestamps with offsets as instants).

Run by tests/run_all.sh with the PG* environment of tests/pg.sh, TARGET_PG,
TARGET_PG_WRAPPER, TEST_DB and TEST_TMPDIR.  Exit 0 = pass; each problem is
printed on its own line.
"""

import os
import sys
from datetime import datetime

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

FIXTURE = os.path.join(harness.REPO_ROOT, "fixtures", "demo.singer")
SCHEMA = "demo"
problems = []


def problem(msg):
    problems.append(msg)


def expected_from_fixture():
    """Final record per key (keyed streams) or every record (append-only)."""
    keys, final, appended = {}, {}, {}
    for _, m in harness.read_messages(FIXTURE):
        if m["type"] == "SCHEMA":
            keys[m["stream"]] = m.get("key_properties") or []
        elif m["type"] == "RECORD":
            s, r = m["stream"], m["record"]
            if keys[s]:
                final.setdefault(s, {})[tuple(r[k] for k in keys[s])] = r
            else:
                appended.setdefault(s, []).append(r)
    return keys, final, appended


def ts(s):
    """An instant from an ISO 8601 text (fixture or PostgreSQL json output)."""
    return datetime.fromisoformat(s.replace("Z", "+00:00")) if s is not None else None


def same_number(a, b):
    return (a is None and b is None) or (a is not None and b is not None and str(a) == str(b))


def main():
    tmp = os.environ.get("TEST_TMPDIR") or "/tmp"
    db = os.environ["TEST_DB"]
    cfg = os.path.join(tmp, "demo-config.json")
    harness.write_config(cfg, db, SCHEMA)
    run = harness.run_target(["--config", cfg, "--input", FIXTURE], timeout=300)
    if run.timed_out or run.returncode != 0:
        print("target-pg exit %s%s\n%s" % (run.returncode, " (timed out)" if run.timed_out else "",
                                           run.stderr[-4000:]))
        return 1

    # STATE: only JSON on stdout, the last one equal to the fixture's last STATE
    try:
        states = harness.stdout_states(run.stdout)
        _, want_state = harness.last_state(FIXTURE)
        if not states or states[-1] != want_state:
            problem("last STATE on stdout is %r, expected the fixture's last STATE"
                    % (states[-1] if states else None))
        n_state_msgs = sum(1 for _, m in harness.read_messages(FIXTURE) if m["type"] == "STATE")
        if len(states) > n_state_msgs:
            problem("%d STATE lines on stdout for %d STATE messages" % (len(states), n_state_msgs))
    except ValueError as e:
        problem(str(e))

    keys, final, appended = expected_from_fixture()
    tables = {r["table_name"] for r in harness.query_json(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'demo'", db)}
    if tables != {"customers", "orders", "page_views"}:
        problem("tables in schema demo: %s" % sorted(tables))
        return report()

    # row counts
    for stream in ("customers", "orders", "page_views"):
        want = len(final[stream]) if keys[stream] else len(appended[stream])
        got = harness.count_rows(SCHEMA, stream, db)
        if got != want:
            problem("%s: %d rows, expected %d" % (stream, got, want))

    # columns and types (docs/contract.md "Types"), flattening, __loaded_at
    want_types = {
        "customers": {"id": "bigint", "email": "text", "first_name": "text",
                      "created_at": "timestamp with time zone", "is_active": "boolean",
                      "loyalty_points": "bigint", "address__street": "text",
                      "address__postal_code": "text", "address__geo__lat": "numeric",
                      "address__geo__lon": "numeric", "tags": "jsonb", "notes": "text",
                      "__loaded_at": "timestamp with time zone"},
        "orders": {"order_id": "text", "line_no": "bigint", "order_date": "date",
                   "status": "text", "unit_price": "numeric", "settlement_amount": "numeric",
                   "discount": "numeric", "updated_at": "timestamp with time zone",
                   "__loaded_at": "timestamp with time zone"},
        "page_views": {"viewed_at": "timestamp with time zone", "customer_id": "bigint",
                       "referrer": "text", "duration_ms": "bigint",
                       "__loaded_at": "timestamp with time zone"},
    }
    for table, want in want_types.items():
        cols = harness.columns(SCHEMA, table, db)
        for col, typ in want.items():
            if col not in cols:
                problem("%s: no column %s (columns: %s)" % (table, col, ", ".join(cols)))
            elif cols[col] != typ:
                problem("%s.%s is %s, expected %s" % (table, col, cols[col], typ))
        if "address" in cols or "address__geo" in cols:
            problem("%s: nested objects were not flattened (%s)" % (table, ", ".join(cols)))

    # primary keys
    for table in ("customers", "orders", "page_views"):
        pk = [r["attname"] for r in harness.query_json(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indisprimary AND i.indrelid = %s::regclass "
            "ORDER BY array_position(i.indkey::int2[], a.attnum)"
            % harness.sql_literal(harness.qualified(SCHEMA, table)), db)]
        if pk != keys[table]:
            problem("%s: primary key %s, expected %s" % (table, pk, keys[table]))

    # customers: the newest record per id, byte for byte
    rows = {r["id"]: r for r in harness.query_json('SELECT * FROM "demo"."customers"', db)}
    for (cid,), rec in sorted(final["customers"].items()):
        row = rows.get(cid)
        if row is None:
            problem("customers: id %d missing" % cid)
            continue
        for col in ("email", "first_name", "last_name", "notes", "is_active", "loyalty_points",
                    "tags"):
            if row.get(col) != rec.get(col):
                problem("customers id %d: %s = %r, expected %r" % (cid, col, row.get(col),
                                                                  rec.get(col)))
        addr = rec.get("address") or {}
        geo = addr.get("geo") or {}
        for col, want in (("address__street", addr.get("street")),
                          ("address__city", addr.get("city")),
                          ("address__postal_code", addr.get("postal_code"))):
            if row.get(col) != want:
                problem("customers id %d: %s = %r, expected %r" % (cid, col, row.get(col), want))
        for col, want in (("address__geo__lat", geo.get("lat")), ("address__geo__lon", geo.get("lon"))):
            if not same_number(row.get(col), want):
                problem("customers id %d: %s = %s, expected %s" % (cid, col, row.get(col), want))
        for col in ("created_at", "updated_at"):
            if ts(row.get(col)) != ts(rec[col]):
                problem("customers id %d: %s = %s, expected the instant %s"
                        % (cid, col, row.get(col), rec[col]))
        if row.get("__loaded_at") is None:
            problem("customers id %d: __loaded_at is NULL" % cid)

    # orders: decimals digit for digit, the upserted status, discount after the SCHEMA change
    rows = {(r["order_id"], r["line_no"]): r
            for r in harness.query_json('SELECT * FROM "demo"."orders"', db)}
    for key, rec in sorted(final["orders"].items()):
        row = rows.get(key)
        if row is None:
            problem("orders: key %s missing" % (key,))
            continue
        for col in ("status", "sku", "currency", "quantity", "customer_id", "order_date"):
            if row.get(col) != rec.get(col):
                problem("orders %s: %s = %r, expected %r" % (key, col, row.get(col), rec.get(col)))
        for col in ("unit_price", "line_total", "settlement_amount", "discount"):
            if not same_number(row.get(col), rec.get(col)):
                problem("orders %s: %s = %s, expected %s" % (key, col, row.get(col), rec.get(col)))
        if ts(row.get("updated_at")) != ts(rec["updated_at"]):
            problem("orders %s: updated_at = %s, expected %s" % (key, row.get("updated_at"),
                                                                 rec["updated_at"]))
    big = harness.scalar("SELECT settlement_amount::text FROM \"demo\".\"orders\" "
                         "WHERE settlement_amount > 1e20", db)
    if big != "123456789012345678901234567890.123456789":
        problem("orders: the big settlement_amount reads back as %r" % big)

    # page_views: append-only, every event (the retried duplicate too)
    want_views = sorted((v["session_id"], v["url"], v["duration_ms"]) for v in appended["page_views"])
    got_views = sorted((r["session_id"], r["url"], r["duration_ms"]) for r in harness.query_json(
        'SELECT session_id, url, duration_ms FROM "demo"."page_views"', db))
    if got_views != want_views:
        problem("page_views: the loaded events differ from the fixture's %d events"
                % len(want_views))

    return report()


def report():
    for p in problems[:50]:
        print(p)
    if len(problems) > 50:
        print("... and %d more problems" % (len(problems) - 50))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# scripts/demo.sh - `make demo`: load fixtures/demo.singer into a throwaway
# PostgreSQL and show what target-pg made of it.
#
# Builds target-pg if needed, starts a private PostgreSQL 15 (tests/pg.sh),
# runs `./target-pg --config <generated config> < fixtures/demo.singer` into
# schema "demo", then shows the STATE lines target-pg wrote, the tables with
# their columns and types, row counts and a few rows of each table.  The
# server and its files are removed at the end.  Exits with target-pg's status
# when it fails.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

# WAREHOUSE (make demo WAREHOUSE=...) picks another warehouse's demo
case "${WAREHOUSE:-postgres}" in
postgres) ;;
sqlite) exec scripts/demo_sqlite.sh ;;
*) echo "demo: unknown WAREHOUSE ${WAREHOUSE} (postgres, sqlite)" >&2; exit 2 ;;
esac
FIXTURE=fixtures/demo.singer

section() { printf '\n== %s ==\n' "$*"; }

# TARGET_PG=/path/to/binary runs another build (e.g. build/asan/target-pg) without make.
if [ -z "${TARGET_PG:-}" ]; then
    make -s
    TARGET_PG=./target-pg
fi
[ -x "$TARGET_PG" ] || { echo "demo: $TARGET_PG was not built" >&2; exit 1; }

PGDIR=$(mktemp -d /tmp/target-pg-demo.XXXXXX)
trap 'tests/pg.sh stop "$PGDIR" >/dev/null 2>&1 || true' EXIT
tests/pg.sh start "$PGDIR" >/dev/null
# shellcheck source=/dev/null
. "$PGDIR/env"
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -d postgres)
pg_bin=$(pg_config --bindir 2>/dev/null || true)
[ -x "$pg_bin/psql" ] && PSQL[0]=$pg_bin/psql

CONFIG=$PGDIR/demo-config.json
cat >"$CONFIG" <<EOF
{
  "host": "$PGHOST",
  "port": $PGPORT,
  "user": "postgres",
  "dbname": "postgres",
  "default_target_schema": "demo"
}
EOF

section "input"
echo "$FIXTURE: $(grep -c '' "$FIXTURE") lines"
python3 - "$FIXTURE" <<'PY'
import collections, json, sys
n = collections.Counter()
for line in open(sys.argv[1], encoding="utf-8"):
    m = json.loads(line)
    n[(m["type"], m.get("stream", ""))] += 1
for (t, s), c in sorted(n.items()):
    print("  %-7s %-11s %4d" % (t, s, c))
PY

section "./target-pg --config $(basename "$CONFIG") < $FIXTURE"
echo "config: $(tr -d '\n' <"$CONFIG" | tr -s ' ')"
STATE_OUT=$PGDIR/state.out
LOG=$PGDIR/target-pg.log
start=$(date +%s%N)
set +e
"$TARGET_PG" --config "$CONFIG" <"$FIXTURE" >"$STATE_OUT" 2>"$LOG"
rc=$?
set -e
end=$(date +%s%N)
ms=$(((end - start) / 1000000))
printf 'exit status %d after %d.%03d s; %d lines on stderr (%d METRIC lines)\n' "$rc" \
    $((ms / 1000)) $((ms % 1000)) "$(grep -c '' "$LOG" || true)" \
    "$(grep -c 'METRIC:' "$LOG" || true)"
if [ "$rc" != 0 ]; then
    echo "target-pg failed; its stderr (last 30 lines):"
    tail -n 30 "$LOG" | sed -e 's/^/  /'
    exit "$rc"
fi
if grep -v 'METRIC:' "$LOG" | grep -q .; then
    echo "log lines other than METRIC (first 10):"
    grep -v 'METRIC:' "$LOG" | head -n 10 | sed -e 's/^/  /'
fi

section "STATE lines emitted on stdout ($(grep -c '' "$STATE_OUT" || true))"
sed -e 's/^/  /' "$STATE_OUT"

section "tables in schema demo"
"${PSQL[@]}" -c "
SELECT c.table_name AS \"table\", c.column_name AS \"column\", c.data_type AS \"type\",
       CASE WHEN k.column_name IS NOT NULL THEN 'PK' ELSE '' END AS key,
       c.is_nullable AS nullable
FROM information_schema.columns c
LEFT JOIN information_schema.key_column_usage k
  ON k.table_schema = c.table_schema AND k.table_name = c.table_name
 AND k.column_name = c.column_name
 AND k.constraint_name IN (SELECT constraint_name FROM information_schema.table_constraints
                           WHERE constraint_type = 'PRIMARY KEY' AND table_schema = 'demo')
WHERE c.table_schema = 'demo'
ORDER BY c.table_name, c.ordinal_position;"

mapfile -t tables < <("${PSQL[@]}" -A -t -c "SELECT table_name FROM information_schema.tables
    WHERE table_schema = 'demo' ORDER BY table_name")

section "row counts"
echo "  (records in the input: customers and orders are upserted on their keys, page_views appended)"
union=""
for t in "${tables[@]}"; do
    [ -z "$union" ] || union="$union UNION ALL "
    union="${union}SELECT '$t' AS \"table\", count(*) AS rows FROM demo.\"$t\""
done
[ -z "$union" ] || "${PSQL[@]}" -c "$union ORDER BY 1;"

for t in "${tables[@]}"; do
    section "demo.$t: first 5 rows"
    order=$("${PSQL[@]}" -A -t -c "SELECT string_agg(quote_ident(a.attname), ', '
        ORDER BY array_position(i.indkey::int2[], a.attnum))
        FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
        WHERE i.indisprimary AND i.indrelid = 'demo.\"$t\"'::regclass")
    [ -n "$order" ] || order=1
    # wide tables read better one column per line
    "${PSQL[@]}" -P expanded=auto -P columns=140 -P null='(null)' \
        -c "SELECT * FROM demo.\"$t\" ORDER BY $order LIMIT 5;"
done

table_list=" ${tables[*]} "
if [[ "$table_list" == *" orders "* && "$table_list" == *" customers "* ]]; then
    section "highlights"
    echo "numbers are loaded digit for digit (numeric, never through a double):"
    "${PSQL[@]}" -c "SELECT order_id, line_no, unit_price, settlement_amount FROM demo.orders
        ORDER BY settlement_amount DESC NULLS LAST LIMIT 3;"
    printf '%s\n' 'text arrives byte for byte (tabs shown as \t, newlines as \n):'
    "${PSQL[@]}" -c "SELECT id, first_name, last_name,
        replace(replace(notes, E'\\t', '\\t'), E'\\n', '\\n') AS notes
        FROM demo.customers WHERE notes ~ E'[\\t\\n\"]' ORDER BY id LIMIT 5;"
fi

section "done"
echo "The throwaway PostgreSQL in $PGDIR is stopped and removed now."

#!/usr/bin/env bash
# scripts/demo_sqlite.sh - `make demo WAREHOUSE=sqlite`: load
# fixtures/demo.singer into a SQLite file through the ODBC driver, with no
# server at all, and show what target-pg made of it.
#
# The file is $DEMO_DB (default /tmp/target-pg-demo.sqlite, replaced on each
# run) and stays for the user to query with `sqlite3`.  The ODBC driver is
# named by its library's absolute path in the connection string, so nothing
# needs registering in odbcinst.ini.  Needs libsqliteodbc and sqlite3 (make
# deps installs both).  Exits with target-pg's status when it fails.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
FIXTURE=fixtures/demo.singer
DB=${DEMO_DB:-/tmp/target-pg-demo.sqlite}

section() { printf '\n== %s ==\n' "$*"; }

if [ -z "${TARGET_PG:-}" ]; then
    make -s
    TARGET_PG=./target-pg
fi
[ -x "$TARGET_PG" ] || { echo "demo: $TARGET_PG was not built" >&2; exit 1; }

lib=
for d in /usr/lib/x86_64-linux-gnu/odbc /usr/lib/aarch64-linux-gnu/odbc /usr/lib/odbc /usr/local/lib; do
    [ -e "$d/libsqlite3odbc.so" ] && { lib=$d/libsqlite3odbc.so; break; }
done
[ -n "$lib" ] || { echo "demo: libsqlite3odbc.so not found (apt-get install libsqliteodbc)" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "demo: sqlite3 not found (apt-get install sqlite3)" >&2; exit 1; }

work=$(mktemp -d /tmp/target-pg-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
rm -f "$DB" "$DB-journal"
CONFIG=$work/demo-config.json
cat >"$CONFIG" <<JSON
{
  "driver": "odbc",
  "odbc_connection_string": "DRIVER=$lib;Database=$DB",
  "default_target_schema": "demo"
}
JSON

section "./target-pg --config $(basename "$CONFIG") < $FIXTURE"
echo "config: $(tr -d '\n' <"$CONFIG" | tr -s ' ')"
start=$(date +%s%N)
set +e
"$TARGET_PG" --config "$CONFIG" <"$FIXTURE" >"$work/state.out" 2>"$work/target-pg.log"
rc=$?
set -e
ms=$((($(date +%s%N) - start) / 1000000))
printf 'exit status %d after %d.%03d s\n' "$rc" $((ms / 1000)) $((ms % 1000))
if [ "$rc" != 0 ]; then
    echo "target-pg failed; its stderr (last 30 lines):"
    tail -n 30 "$work/target-pg.log" | sed -e 's/^/  /'
    exit "$rc"
fi

section "STATE lines emitted on stdout ($(grep -c '' "$work/state.out" || true))"
sed -e 's/^/  /' "$work/state.out"

section "tables in $DB (schema demo is the prefix \"demo.\")"
mapfile -t tables < <(sqlite3 "$DB" "SELECT name FROM sqlite_master WHERE type = 'table'
    AND name LIKE 'demo.%' ORDER BY name")
for t in "${tables[@]}"; do
    printf '  %-20s %6s rows: %s\n' "$t" "$(sqlite3 "$DB" "SELECT count(*) FROM \"$t\"")" \
        "$(sqlite3 "$DB" "SELECT group_concat(name || ' ' || type, ', ')
            FROM pragma_table_info('$t')")"
done

section "a query: the three largest settlements (numbers kept digit for digit as text)"
query='SELECT order_id, line_no, unit_price, settlement_amount FROM "demo.orders"
 ORDER BY CAST(settlement_amount AS REAL) DESC LIMIT 3;'
echo "sqlite3 -header -column $DB '$query'"
sqlite3 -header -column "$DB" "$query"

section "done"
echo "The SQLite file $DB stays; open it with: sqlite3 $DB"

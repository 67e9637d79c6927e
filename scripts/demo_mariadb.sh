#!/usr/bin/env bash
# scripts/demo_mariadb.sh - `make demo WAREHOUSE=mariadb`: load
# fixtures/demo.singer into a throwaway MariaDB (tests/mariadb.sh) through
# the ODBC driver and MariaDB Connector/ODBC, and show what target-pg made
# of it.
#
# The server, its private odbcinst.ini and its files are removed at the end.
# Needs mariadb-server, mariadb-client and odbc-mariadb (make deps).  Exits
# with target-pg's status when it fails.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
FIXTURE=fixtures/demo.singer

section() { printf '\n== %s ==\n' "$*"; }

if [ -z "${TARGET_PG:-}" ]; then
    make -s
    TARGET_PG=./target-pg
fi
[ -x "$TARGET_PG" ] || { echo "demo: $TARGET_PG was not built" >&2; exit 1; }

DIR=$(mktemp -d /tmp/target-pg-demo-mdb.XXXXXX)
trap 'tests/mariadb.sh stop "$DIR" >/dev/null 2>&1 || true' EXIT
tests/mariadb.sh start "$DIR" >/dev/null
# shellcheck source=/dev/null
. "$DIR/env"
MDB=(mariadb --no-defaults --default-character-set=utf8mb4 -S "$MARIADB_SOCKET" -u root)

CONFIG=$DIR/demo-config.json
cat >"$CONFIG" <<JSON
{
  "driver": "odbc",
  "odbc_connection_string": "$TGT_MARIADB_ODBC",
  "default_target_schema": "demo"
}
JSON

section "./target-pg --config $(basename "$CONFIG") < $FIXTURE"
echo "config: $(tr -d '\n' <"$CONFIG" | tr -s ' ')"
start=$(date +%s%N)
set +e
"$TARGET_PG" --config "$CONFIG" <"$FIXTURE" >"$DIR/state.out" 2>"$DIR/target-pg.log"
rc=$?
set -e
ms=$((($(date +%s%N) - start) / 1000000))
printf 'exit status %d after %d.%03d s\n' "$rc" $((ms / 1000)) $((ms % 1000))
if [ "$rc" != 0 ]; then
    echo "target-pg failed; its stderr (last 30 lines):"
    tail -n 30 "$DIR/target-pg.log" | sed -e 's/^/  /'
    exit "$rc"
fi

section "STATE lines emitted on stdout ($(grep -c '' "$DIR/state.out" || true))"
sed -e 's/^/  /' "$DIR/state.out"

section "tables in database demo"
mapfile -t tables < <("${MDB[@]}" -N -B -e "SELECT TABLE_NAME FROM information_schema.TABLES
    WHERE TABLE_SCHEMA = 'demo' ORDER BY TABLE_NAME")
for t in "${tables[@]}"; do
    printf '  %-20s %6s rows: %s\n' "$t" "$("${MDB[@]}" -N -B -e "SELECT COUNT(*) FROM demo.\`$t\`")" \
        "$("${MDB[@]}" -N -B -e "SELECT GROUP_CONCAT(CONCAT(COLUMN_NAME, ' ', COLUMN_TYPE)
            ORDER BY ORDINAL_POSITION SEPARATOR ', ') FROM information_schema.COLUMNS
            WHERE TABLE_SCHEMA = 'demo' AND TABLE_NAME = '$t'")"
done

section "a query: the three largest settlements (DECIMAL(65,30), digit for digit)"
query='SELECT order_id, line_no, unit_price, settlement_amount FROM demo.orders
 ORDER BY settlement_amount DESC LIMIT 3'
echo "mariadb -t -e '$query'"
"${MDB[@]}" -t -e "$query"

section "done"
echo "The server and its files in $DIR are removed now."

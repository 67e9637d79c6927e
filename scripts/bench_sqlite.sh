#!/usr/bin/env bash
# scripts/bench_sqlite.sh - the SQLite part of `make bench`: target-pg
# loading the unkeyed orders stream into SQLite through the ODBC driver
# (drivers/odbc, bound parameter arrays), against the sqlite3 shell's
# `.import` of the same rows, in one run on the same machine.
#
#   append        target-pg, unkeyed orders stream (gen_stream) -> a new
#                 SQLite file (one transaction per batch_size_rows batch)
#   sqlite3       the rows target-pg loaded, exported as CSV (untimed), then
#                 `.import --csv` into the same table definition in a fresh
#                 file, one transaction (the shell's fastest form)
# Both files use SQLite's defaults (rollback journal, synchronous FULL); each
# timed run starts after a sync.  Ratio: the shell's time / target-pg's time
# (1.0: as fast as .import; the issue's goal is >= 0.7), in wall time and in
# CPU time (user + system, /usr/bin/time), which a shared machine distorts
# less.  Best of
# BENCH_REPS (default 2 up to 200,000 rows, else 1).
#
# Environment: BENCH_ROWS (default 1000000), BENCH_SEED, BENCH_DIR, TARGET_PG,
# GEN_STREAM.  stdout: a Markdown report; exit 1 when a load fails or the row
# counts differ.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ROWS=${BENCH_ROWS:-1000000}
SEED=${BENCH_SEED:-1}
if [ "$ROWS" -le 200000 ]; then REPS=${BENCH_REPS:-2}; else REPS=${BENCH_REPS:-1}; fi
die() { echo "bench_sqlite: $*" >&2; exit 1; }

if [ -z "${TARGET_PG:-}" ] || [ -z "${GEN_STREAM:-}" ]; then
    make -s target-pg build/release/gen_stream >&2
    TARGET_PG=${TARGET_PG:-$ROOT/target-pg}
    GEN_STREAM=${GEN_STREAM:-$ROOT/build/release/gen_stream}
fi
lib=
for d in /usr/lib/x86_64-linux-gnu/odbc /usr/lib/aarch64-linux-gnu/odbc /usr/lib/odbc /usr/local/lib; do
    [ -e "$d/libsqlite3odbc.so" ] && { lib=$d/libsqlite3odbc.so; break; }
done
if [ -z "$lib" ] || ! command -v sqlite3 >/dev/null; then
    echo "## SQLite: skipped (libsqliteodbc or sqlite3 not installed)"
    exit 0
fi

work=$(mktemp -d "${BENCH_DIR:-/tmp}/target-pg-bench-sqlite.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$GEN_STREAM" --seed "$SEED" --rows "$ROWS" --variant orders --unkeyed --output "$work/orders.singer" \
    || die "gen_stream failed"

best() { # NAME-OF-VAR NS: keeps the smaller
    local cur=${!1:-}
    if [ -z "$cur" ] || [ "$2" -lt "$cur" ]; then printf -v "$1" '%s' "$2"; fi
}
# timed COMMAND...: runs it under /usr/bin/time; sets wall_ns and cpu_ns
# (user + system), which a loaded machine distorts far less than wall time
timed() {
    "$TIME" -f '%e %U %S' -o "$work/time.out" "$@" || return 1
    read -r wall user sys <"$work/time.out"
    wall_ns=$(awk -v w="$wall" 'BEGIN { printf "%d", w * 1e9 }')
    cpu_ns=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%d", (u + s) * 1e9 }')
}
TIME=$(command -v /usr/bin/time || true)
[ -n "$TIME" ] || die "/usr/bin/time not found (apt-get install time)"

tpg_ns= imp_ns= tpg_cpu= imp_cpu=
for ((rep = 1; rep <= REPS; rep++)); do
    db=$work/tpg.sqlite
    rm -f "$db"
    printf '{"driver": "odbc", "odbc_connection_string": "DRIVER=%s;Database=%s", "default_target_schema": "bench"}\n' \
        "$lib" "$db" >"$work/cfg.json"
    sync
    timed "$TARGET_PG" --config "$work/cfg.json" --input "$work/orders.singer" \
        >/dev/null 2>"$work/tpg.log" || { tail -5 "$work/tpg.log" >&2; die "target-pg failed"; }
    best tpg_ns "$wall_ns"
    best tpg_cpu "$cpu_ns"
    n=$(sqlite3 "$db" 'SELECT count(*) FROM "bench.orders"')
    [ "$n" = "$ROWS" ] || die "target-pg loaded $n rows, expected $ROWS"

    # the same rows and table definition for the shell (untimed)
    ddl=$(sqlite3 "$db" "SELECT sql FROM sqlite_master WHERE name = 'bench.orders'")
    sqlite3 -csv "$db" 'SELECT * FROM "bench.orders"' >"$work/orders.csv"
    imp=$work/import.sqlite
    rm -f "$imp"
    sqlite3 "$imp" "$ddl"
    sync
    timed sqlite3 "$imp" ".import --csv $work/orders.csv bench.orders" \
        || die "sqlite3 .import failed"
    best imp_ns "$wall_ns"
    best imp_cpu "$cpu_ns"
    n=$(sqlite3 "$imp" 'SELECT count(*) FROM "bench.orders"')
    [ "$n" = "$ROWS" ] || die ".import loaded $n rows, expected $ROWS"
done

ms() { printf '%d.%03d' $(($1 / 1000000000)) $(($1 / 1000000 % 1000)); }
echo
echo "## SQLite (drivers/odbc, $ROWS rows of the orders stream, best of $REPS)"
echo
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
echo "| case | seconds | rows/s | vs .import | CPU seconds | vs .import (CPU) |"
echo "|---|---|---|---|---|---|"
printf '| target-pg append | %s | %d | %s | %s | %s |\n' "$(ms "$tpg_ns")" \
    $((ROWS * 1000000000 / tpg_ns)) "$(ratio "$imp_ns" "$tpg_ns")" "$(ms "$tpg_cpu")" \
    "$(ratio "$imp_cpu" "$tpg_cpu")"
printf '| sqlite3 .import (same rows, CSV) | %s | %d | 1.00x | %s | 1.00x |\n' "$(ms "$imp_ns")" \
    $((ROWS * 1000000000 / imp_ns)) "$(ms "$imp_cpu")"
echo
echo "- uptime: $(uptime | sed -e 's/^ *//')"

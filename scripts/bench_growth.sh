#!/usr/bin/env bash
# scripts/bench_growth.sh - `make bench-growth`: does target-pg's cost per row
# stay flat as a load grows?  A benchmark, not a test: it fails only when a
# load fails or leaves the wrong number of rows.
#
# For each size in BENCH_GROWTH_ROWS (default 100000 500000 1000000 2000000
# 5000000) it generates the orders stream (bench/gen_stream.c) unkeyed and
# keyed, compresses each with zstd (untimed), and times target-pg reading the
# .zst file: an append into a new table and a keyed first load into a new
# table, default settings (batch_size_rows 100,000), one private PostgreSQL
# (tests/pg.sh, autovacuum off as in scripts/bench.sh).  Reported per case:
# seconds, microseconds per row, target-pg's own CPU per row and its peak RSS.
#
# Environment: BENCH_GROWTH_ROWS, BENCH_SEED (default 1), BENCH_DIR (default
# /tmp), TARGET_PG and GEN_STREAM (built with make when unset).  stdout
# carries the report (Markdown); progress goes to stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SIZES=${BENCH_GROWTH_ROWS:-100000 500000 1000000 2000000 5000000}
SEED=${BENCH_SEED:-1}
for n in $SIZES; do
    [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] || {
        echo "bench-growth: BENCH_GROWTH_ROWS must hold positive integers" >&2
        exit 2
    }
done
log() { echo "bench-growth: $*" >&2; }
die() {
    echo "bench-growth: FAILED: $*" >&2
    exit 1
}
command -v zstd >/dev/null || die "zstd not found (apt-get install zstd)"
[ -x /usr/bin/time ] || die "GNU time (/usr/bin/time) not found (apt-get install time)"
if [ -z "${TARGET_PG:-}" ] || [ -z "${GEN_STREAM:-}" ]; then
    make -s target-pg build/release/gen_stream >&2
    TARGET_PG=${TARGET_PG:-$ROOT/target-pg}
    GEN_STREAM=${GEN_STREAM:-$ROOT/build/release/gen_stream}
fi

WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/target-pg-growth.XXXXXX")
chmod 711 "$WORK" # as root, pg.sh runs the server as postgres, which must reach it
cleanup() {
    tests/pg.sh stop "$WORK/pg" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
tests/pg.sh start "$WORK/pg" >/dev/null
# shellcheck source=/dev/null
. "$WORK/pg/env"
sql() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -d postgres -A -t -c "$1"; }
sql "ALTER SYSTEM SET autovacuum = off" >/dev/null
sql "ALTER SYSTEM SET wal_init_zero = off" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
cat >"$WORK/config.json" <<EOF
{"host": "$PGHOST", "port": $PGPORT, "user": "postgres", "dbname": "postgres",
 "default_target_schema": "growth"}
EOF

echo "| rows | case | seconds | µs per row | target-pg CPU µs per row | peak RSS |"
echo "|---:|---|---:|---:|---:|---:|"
for n in $SIZES; do
    for kind in unkeyed keyed; do
        in=$WORK/orders-$kind-$n.singer.zst
        log "generating $n $kind rows"
        "$GEN_STREAM" --seed "$SEED" --rows "$n" --variant orders "--$kind" --stream "o_$kind" |
            zstd -q -1 -o "$in" || die "generating $in failed"
        sql "DROP SCHEMA IF EXISTS growth CASCADE" >/dev/null
        sql "CHECKPOINT" >/dev/null
        sync
        t0=$(date +%s%N)
        /usr/bin/time -f '%M %U %S' -o "$WORK/time.out" "$TARGET_PG" --config "$WORK/config.json" \
            --input "$in" >/dev/null 2>"$WORK/stderr" || {
            tail -n 15 "$WORK/stderr" >&2
            die "$n $kind rows: the load failed"
        }
        t1=$(date +%s%N)
        got=$(sql "SELECT count(*) FROM growth.o_$kind")
        [ "$got" = "$n" ] || die "$n $kind rows: the table holds $got"
        rm -f "$in"
        read -r rss user sys <"$WORK/time.out"
        awk -v n="$n" -v ns=$((t1 - t0)) -v rss="$rss" -v u="$user" -v s="$sys" -v k="$kind" 'BEGIN {
            printf "| %d | %s | %.2f | %.2f | %.2f | %.1f MiB |\n", n,
                k == "keyed" ? "keyed first load" : "append", ns / 1e9, ns / 1e3 / n,
                (u + s) * 1e6 / n, rss / 1024 }'
        log "$n $kind rows: $(awk -v ns=$((t1 - t0)) 'BEGIN{printf "%.2f s", ns / 1e9}')"
    done
done
echo
echo "- $($TARGET_PG --version); input: the orders stream as a zstd file (--input); load average before / after: $LOAD_BEFORE / $(cut -d' ' -f1-3 /proc/loadavg)"

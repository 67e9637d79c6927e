#!/usr/bin/env bash
# scripts/bench_mariadb.sh - the MariaDB part of `make bench`: how fast
# target-pg loads into MariaDB through the ODBC driver compared with
# MariaDB's own bulk loader, LOAD DATA LOCAL INFILE from the `mariadb`
# client, on the same rows, in one run on one private server
# (tests/mariadb.sh: no binary log, no doublewrite, the redo log flushed once
# a second; the same settings for every case).
#
#   append        the unkeyed orders stream (bench/gen_stream.c) -> append
#   LOAD append   the rows of (append), exported with SELECT ... INTO OUTFILE,
#                 loaded with `mariadb -e "LOAD DATA LOCAL INFILE ..."` into a
#                 table made LIKE target-pg's
#   first load    the keyed stream into a new table (staging + merge)
#   upsert        the same keys again with changed values (gen --update)
#   LOAD upsert   the rows after (upsert) exported, then in one client
#                 session LOAD DATA LOCAL INFILE into a TEMPORARY table and
#                 INSERT ... SELECT ... ON DUPLICATE KEY UPDATE <every column>
#                 into a copy of the table after (first load)
#
# Every upsert run starts from the same restored copy of the table after the
# first load.  Skipped (exit 0, a note on stderr) when mariadbd or MariaDB
# Connector/ODBC is not installed.  Environment as scripts/bench.sh:
# BENCH_ROWS (default 1000000), BENCH_REPS (default 2 up to 200,000 rows,
# else 1), BENCH_SEED, BENCH_DIR, TARGET_PG, GEN_STREAM.  stdout carries the
# report (Markdown); progress goes to stderr.  Exit status 1 when a load
# failed or left the wrong rows.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

ROWS=${BENCH_ROWS:-1000000}
SEED=${BENCH_SEED:-1}
if ! [[ "$ROWS" =~ ^[0-9]+$ ]] || [ "$ROWS" -lt 1 ]; then
    echo "bench: BENCH_ROWS must be a positive integer" >&2
    exit 2
fi
if [ "$ROWS" -le 200000 ]; then REPS=${BENCH_REPS:-2}; else REPS=${BENCH_REPS:-1}; fi

log() { echo "bench-mariadb: $*" >&2; }
die() {
    echo "bench-mariadb: FAILED: $*" >&2
    exit 1
}

if [ ! -x /usr/sbin/mariadbd ] || ! command -v mariadb >/dev/null ||
    ! python3 -c 'import sys; sys.path.insert(0, "tests"); import warehouse
sys.exit(0 if warehouse.odbc_library("libmaodbc.so") else 1)'; then
    log "skipped: mariadb-server, mariadb-client or odbc-mariadb is not installed (make deps)"
    exit 0
fi
if [ -z "${TARGET_PG:-}" ] || [ -z "${GEN_STREAM:-}" ]; then
    make -s target-pg build/release/gen_stream >&2
    TARGET_PG=${TARGET_PG:-$ROOT/target-pg}
    GEN_STREAM=${GEN_STREAM:-$ROOT/build/release/gen_stream}
fi

WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/target-pg-bench-mdb.XXXXXX")
MDBDIR=$(mktemp -d /tmp/tgt-bench-mdb.XXXXXX) # short: it holds the server's socket
cleanup() {
    tests/mariadb.sh stop "$MDBDIR" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "starting a private MariaDB in $MDBDIR"
tests/mariadb.sh start "$MDBDIR" >/dev/null
# shellcheck source=/dev/null
. "$MDBDIR/env"
MDB=(mariadb --no-defaults --default-character-set=utf8mb4 -S "$MARIADB_SOCKET" -u root)
sql() { "${MDB[@]}" -N -B -e "$1"; }
sql "CREATE DATABASE bench CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin"
# the server (user mysql) writes the exported rows here
EXPORT=$MDBDIR/export.tsv

CONFIG=$WORK/config.json
cat >"$CONFIG" <<EOF
{"driver": "odbc", "odbc_connection_string": "$TGT_MARIADB_ODBC", "default_target_schema": "bench"}
EOF

R_LABEL=() R_NS=() R_RSS=()
HAVE_TIME=0
/usr/bin/time -f %M -o /dev/null true 2>/dev/null && HAVE_TIME=1

# bench_case LABEL PREP CHECK STDIN CMD...: best of REPS runs
bench_case() {
    local label=$1 prep=$2 check=$3 in=$4 rep best="" rss="" t0 t1
    shift 4
    for ((rep = 1; rep <= REPS; rep++)); do
        $prep
        sync
        t0=$(date +%s%N)
        if [ "$HAVE_TIME" = 1 ]; then
            /usr/bin/time -f %M -o "$WORK/rss" "$@" <"$in" >"$WORK/stdout" 2>"$WORK/stderr" ||
                { tail -n 15 "$WORK/stderr" >&2; die "$label: the load failed"; }
            rss=$(tail -n 1 "$WORK/rss")
        else
            "$@" <"$in" >"$WORK/stdout" 2>"$WORK/stderr" ||
                { tail -n 15 "$WORK/stderr" >&2; die "$label: the load failed"; }
        fi
        t1=$(date +%s%N)
        $check
        log "$(printf '%-28s run %d: %8.3f s' "$label" "$rep" "$(awk -v n=$((t1 - t0)) 'BEGIN{print n/1e9}')")"
        if [ -z "$best" ] || [ $((t1 - t0)) -lt "$best" ]; then best=$((t1 - t0)); fi
    done
    R_LABEL+=("$label") R_NS+=("$best") R_RSS+=("$rss")
}

expect_count() { # TABLE ROWS
    local n
    n=$(sql "SELECT COUNT(*) FROM $1") || die "cannot count the rows of $1"
    [ "$n" = "$2" ] || die "$1 holds $n rows, expected $2"
}

log "generating $ROWS orders rows (unkeyed, keyed, update)"
F_UNKEYED=$WORK/unkeyed.singer F_KEYED=$WORK/keyed.singer F_UPDATE=$WORK/update.singer
"$GEN_STREAM" --seed "$SEED" --rows "$ROWS" --variant orders --unkeyed --stream orders_append \
    --output "$F_UNKEYED"
"$GEN_STREAM" --seed "$SEED" --rows "$ROWS" --variant orders --keyed --stream orders \
    --output "$F_KEYED"
"$GEN_STREAM" --seed "$SEED" --rows "$ROWS" --variant orders --keyed --update --stream orders \
    --output "$F_UPDATE"

# ---- append and LOAD DATA ------------------------------------------------------
prep_append() { sql "DROP TABLE IF EXISTS bench.orders_append"; }
check_append() { expect_count bench.orders_append "$ROWS"; }
log "warm-up load (untimed)"
prep_append
"$TARGET_PG" --config "$CONFIG" <"$F_UNKEYED" >/dev/null 2>"$WORK/stderr" ||
    { tail -n 15 "$WORK/stderr" >&2; die "warm-up: the load failed"; }
bench_case "target-pg append" prep_append check_append "$F_UNKEYED" \
    "$TARGET_PG" --config "$CONFIG"

rm -f "$EXPORT"
sql "SELECT * INTO OUTFILE '$EXPORT' CHARACTER SET utf8mb4 FROM bench.orders_append"
sql "CREATE TABLE bench.orders_append_ref LIKE bench.orders_append"
prep_ref_append() { sql "TRUNCATE bench.orders_append_ref"; }
check_ref_append() { expect_count bench.orders_append_ref "$ROWS"; }
bench_case "LOAD DATA LOCAL INFILE append" prep_ref_append check_ref_append /dev/null \
    "${MDB[@]}" --local-infile=1 -e "LOAD DATA LOCAL INFILE '$EXPORT' INTO TABLE
        bench.orders_append_ref CHARACTER SET utf8mb4"
sql "DROP TABLE bench.orders_append, bench.orders_append_ref"

# ---- first load, upsert and the upsert reference ------------------------------------
prep_keyed() { sql "DROP TABLE IF EXISTS bench.orders"; }
check_keyed() { expect_count bench.orders "$ROWS"; }
bench_case "target-pg first load (keyed)" prep_keyed check_keyed "$F_KEYED" \
    "$TARGET_PG" --config "$CONFIG"
sql "CREATE TABLE bench.orders_base LIKE bench.orders"
sql "INSERT INTO bench.orders_base SELECT * FROM bench.orders"
restore() { sql "DROP TABLE IF EXISTS $1; CREATE TABLE $1 LIKE bench.orders_base;
                 INSERT INTO $1 SELECT * FROM bench.orders_base; ANALYZE TABLE $1" >/dev/null; }
prep_upsert() { restore bench.orders; }
check_upsert() {
    expect_count bench.orders "$ROWS"
    local changed
    changed=$(sql "SELECT COUNT(*) FROM bench.orders o JOIN bench.orders_base b USING (order_id)
                   WHERE NOT (o.amount <=> b.amount)")
    [ "$changed" = "$ROWS" ] || die "upsert changed $changed rows, expected $ROWS"
}
bench_case "target-pg upsert (keyed)" prep_upsert check_upsert "$F_UPDATE" \
    "$TARGET_PG" --config "$CONFIG"

rm -f "$EXPORT"
sql "SELECT * INTO OUTFILE '$EXPORT' CHARACTER SET utf8mb4 FROM bench.orders"
SET_LIST=$(sql "SELECT GROUP_CONCAT(CONCAT('\`', COLUMN_NAME, '\` = VALUES(\`', COLUMN_NAME, '\`)')
                ORDER BY ORDINAL_POSITION SEPARATOR ', ') FROM information_schema.COLUMNS
                WHERE TABLE_SCHEMA = 'bench' AND TABLE_NAME = 'orders' AND COLUMN_NAME <> 'order_id'")
UPSERT_SQL="CREATE TEMPORARY TABLE bench.stage LIKE bench.orders;
ALTER TABLE bench.stage DROP PRIMARY KEY;
LOAD DATA LOCAL INFILE '$EXPORT' INTO TABLE bench.stage CHARACTER SET utf8mb4;
INSERT INTO bench.orders_ref SELECT * FROM bench.stage ON DUPLICATE KEY UPDATE $SET_LIST;"
prep_ref_upsert() { restore bench.orders_ref; }
check_ref_upsert() {
    expect_count bench.orders_ref "$ROWS"
    local differ
    differ=$(sql "SELECT COUNT(*) FROM bench.orders o JOIN bench.orders_ref r USING (order_id)
                  WHERE NOT (o.amount <=> r.amount AND o.notes <=> r.notes)")
    [ "$differ" = 0 ] || die "the reference upsert left $differ rows unlike target-pg's"
}
bench_case "LOAD DATA upsert" prep_ref_upsert check_ref_upsert /dev/null \
    "${MDB[@]}" --local-infile=1 -e "$UPSERT_SQL"

# ---- report ---------------------------------------------------------------------
index_of() {
    local i
    for i in "${!R_LABEL[@]}"; do [ "${R_LABEL[$i]}" = "$1" ] && { echo "$i"; return; }; done
}
ratio() { # TARGET REFERENCE: target-pg's time / the reference's
    local a b
    a=$(index_of "$1") b=$(index_of "$2")
    awk -v x="${R_NS[$a]}" -v y="${R_NS[$b]}" 'BEGIN{printf "%.2f", x / y}'
}
echo
echo "### target-pg on MariaDB: $ROWS rows"
echo
echo "- server: $(sql "SELECT VERSION()") (tests/mariadb.sh), MariaDB Connector/ODBC $(dpkg-query -W -f '${Version}' odbc-mariadb 2>/dev/null || echo '?')"
echo "- $($TARGET_PG --version); best of $REPS run(s) per case; load average before / after: $LOAD_BEFORE / $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '| %-32s | %9s | %8s | %10s | %9s |\n' case rows seconds rows/s "peak RSS"
printf '|%s|%s|%s|%s|%s|\n' "----------------------------------" "----------:" "---------:" \
    "-----------:" "----------:"
for i in "${!R_LABEL[@]}"; do
    rss=n/a
    [ -z "${R_RSS[$i]}" ] || rss=$(awk -v k="${R_RSS[$i]}" 'BEGIN{printf "%.1f MiB", k / 1024}')
    printf '| %-32s | %9s | %8s | %10s | %9s |\n' "${R_LABEL[$i]}" "$ROWS" \
        "$(awk -v n="${R_NS[$i]}" 'BEGIN{printf "%.3f", n / 1e9}')" \
        "$(awk -v r="$ROWS" -v n="${R_NS[$i]}" 'BEGIN{printf "%.0f", r / (n / 1e9)}')" "$rss"
done
echo
a=$(ratio "target-pg append" "LOAD DATA LOCAL INFILE append")
u=$(ratio "target-pg upsert (keyed)" "LOAD DATA upsert")
echo "- append: target-pg / LOAD DATA LOCAL INFILE time = $a (speed $(awk -v r="$a" 'BEGIN{printf "%.2f", 1 / r}')x)"
echo "- upsert: target-pg / LOAD DATA + INSERT ... ON DUPLICATE KEY UPDATE time = $u (speed $(awk -v r="$u" 'BEGIN{printf "%.2f", 1 / r}')x)"
echo "- peak RSS: of the client process (target-pg, or the mariadb client)"

#!/usr/bin/env bash
# tests/pg.sh - a throwaway PostgreSQL 15 cluster for tests and the demo.
#
#   tests/pg.sh start [DIR]   initdb DIR/data, start it, write DIR/env and print it
#   tests/pg.sh stop DIR      stop it (immediate) and remove DIR
#
# The cluster listens on a private unix socket directory DIR/sock and on a
# free TCP port of 127.0.0.1, trusts every local connection and trades
# durability for speed (fsync, synchronous_commit, full_page_writes off).  The
# server log is DIR/log.  DIR/env is shell-sourceable:
#
#   export PGHOST=DIR/sock PGPORT=NNNNN PGUSER=postgres PGDATABASE=postgres TGT_PG_DIR=DIR
#
# Without DIR, `start` makes one under /tmp; its path is TGT_PG_DIR in the
# printed env.  stdout carries only the env; progress and errors go to
# stderr.  initdb and pg_ctl refuse to run as root, so as root they run as the
# `postgres` user (runuser) and DIR is handed to that user.  A failed start
# leaves no server process behind.  TGT_PG_PORT asks for a port (first try).
set -euo pipefail

MARKER=.target-pg-throwaway # written first by start; stop refuses to rm -rf a DIR without it

die() {
    echo "pg.sh: error: $*" >&2
    exit 1
}

usage() {
    echo "usage: tests/pg.sh start [DIR] | tests/pg.sh stop DIR" >&2
    exit 2
}

bindir() {
    local d=""
    if command -v pg_config >/dev/null 2>&1; then
        d=$(pg_config --bindir 2>/dev/null || true)
    fi
    if [ -z "$d" ] || [ ! -x "$d/pg_ctl" ]; then
        d=/usr/lib/postgresql/15/bin
    fi
    [ -x "$d/pg_ctl" ] || die "no pg_ctl in $d (install postgresql-15: make deps)"
    echo "$d"
}

# Runs a server program as the cluster owner: `postgres` when we are root.
# cd into the cluster directory so the owner never needs access to our cwd.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        (cd "$DIR" && runuser -u postgres -- "$@")
    else
        (cd "$DIR" && "$@")
    fi
}

port_is_free() {
    python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}

pick_port() {
    local start=$((20000 + RANDOM % 20000)) i p
    for ((i = 0; i < 500; i++)); do
        p=$((20000 + (start - 20000 + i) % 20000))
        if port_is_free "$p"; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# Stops whatever server runs from DIR/data, however far start got.
kill_server() {
    local data=$DIR/data pid
    [ -d "$data" ] || return 0
    if [ -f "$data/postmaster.pid" ]; then
        as_owner "$BIN/pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1 </dev/null || true
    fi
    # pg_ctl may have failed (e.g. a half-written pid file): kill the postmaster directly.
    if [ -f "$data/postmaster.pid" ]; then
        pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)
        case "$pid" in
        '' | *[!0-9]*) ;;
        *)
            # only if it really is a postgres serving this data directory
            if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$data"; then
                kill -QUIT "$pid" 2>/dev/null || true
                for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
                kill -KILL "$pid" 2>/dev/null || true
            fi
            ;;
        esac
    fi
}

cmd_start() {
    local created=0
    if [ -z "${DIR:-}" ]; then
        DIR=$(mktemp -d /tmp/target-pg-pg.XXXXXX)
        created=1
    fi
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd -P)
    case "$DIR" in
    *[\'\"\ \\]*) die "DIR must not contain quotes, backslashes or spaces: $DIR" ;;
    esac
    [ ! -e "$DIR/data" ] || die "$DIR/data already exists"
    # a unix socket path is limited to 107 bytes
    [ ${#DIR} -le 80 ] || die "DIR path too long for a unix socket: $DIR"
    BIN=$(bindir)
    : >"$DIR/$MARKER"
    mkdir -p "$DIR/sock"

    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || die "running as root but there is no postgres user"
        chown -R postgres: "$DIR"
        runuser -u postgres -- test -w "$DIR" ||
            die "user postgres cannot write $DIR (a parent directory is not searchable?)"
    fi

    fail_start() {
        echo "pg.sh: error: $1" >&2
        if [ -f "$DIR/log" ]; then
            echo "--- last lines of $DIR/log:" >&2
            tail -n 20 "$DIR/log" >&2 || true
        fi
        kill_server
        if [ "$created" = 1 ]; then rm -rf "$DIR"; fi
        exit 1
    }
    trap 'fail_start "interrupted"' INT TERM

    local initlog=$DIR/initdb.log
    if ! as_owner "$BIN/initdb" -D "$DIR/data" -U postgres -A trust -E UTF8 --no-locale \
        --no-sync >"$initlog" 2>&1 </dev/null; then
        cat "$initlog" >&2
        fail_start "initdb failed"
    fi

    local attempt port
    for attempt in 1 2 3 4 5; do
        if [ "$attempt" = 1 ] && [ -n "${TGT_PG_PORT:-}" ]; then
            port=$TGT_PG_PORT # asked for; if it is taken, later attempts pick a free one
        else
            port=$(pick_port) || fail_start "no free TCP port found on 127.0.0.1"
        fi
        {
            echo "# added by tests/pg.sh (throwaway cluster)"
            echo "listen_addresses = '127.0.0.1'"
            echo "port = $port"
            echo "unix_socket_directories = '$DIR/sock'"
            echo "max_connections = 50"
            echo "fsync = off"
            echo "synchronous_commit = off"
            echo "full_page_writes = off"
            echo "logging_collector = off"
            echo "log_line_prefix = '%m [%p] %q%u@%d '"
        } >"$DIR/pg.conf"
        # the last include wins, so a retry with another port just overrides
        echo "include '$DIR/pg.conf'" >>"$DIR/data/postgresql.conf"
        [ "$(id -u)" != 0 ] || chown postgres: "$DIR/pg.conf"
        if as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w -t 60 start \
            >"$DIR/pg_ctl.log" 2>&1 </dev/null; then
            break
        fi
        kill_server
        # another process may have taken the port between the bind test and the start
        if [ "$attempt" = 5 ] || ! grep -q 'could not \(bind\|create listen\)' "$DIR/log" 2>/dev/null; then
            cat "$DIR/pg_ctl.log" >&2
            fail_start "pg_ctl start failed"
        fi
        : >"$DIR/log"
        echo "pg.sh: port $port was taken, retrying" >&2
    done
    trap - INT TERM

    cat >"$DIR/env" <<EOF
export PGHOST=$DIR/sock PGPORT=$port PGUSER=postgres PGDATABASE=postgres TGT_PG_DIR=$DIR
EOF
    cat "$DIR/env"
}

cmd_stop() {
    [ -n "${DIR:-}" ] || usage
    [ -e "$DIR" ] || return 0
    DIR=$(cd "$DIR" && pwd -P)
    if [ ! -f "$DIR/$MARKER" ]; then
        die "$DIR was not made by tests/pg.sh start ($MARKER missing); not touching it"
    fi
    BIN=$(bindir)
    kill_server
    rm -rf "$DIR"
}

[ $# -ge 1 ] || usage
action=$1
DIR=${2:-}
[ $# -le 2 ] || usage
case "$action" in
start) cmd_start ;;
stop) cmd_stop ;;
*) usage ;;
esac

#!/usr/bin/env bash
# tests/mariadb.sh - a throwaway MariaDB server for tests, the demo and the
# benchmark (the MariaDB counterpart of tests/pg.sh).
#
#   tests/mariadb.sh start [DIR]   mariadb-install-db DIR/data, start mariadbd,
#                                  write DIR/env and print it
#   tests/mariadb.sh stop DIR      stop it and remove DIR
#
# The server listens only on the unix socket DIR/sock (--skip-networking;
# with TGT_MARIADB_TCP=1 also on 127.0.0.1 and a free port, as root with no
# password, for tests that put a proxy between target-pg and the server),
# reads no option file (--no-defaults: nothing of /etc/mysql applies), keeps
# its data, pid file and log (DIR/log) under DIR and trades durability for
# speed (no doublewrite, no binary log, the redo log flushed once a second).
# Its character set is utf8mb4 with the binary NO PAD collation, so that
# keys compare byte for byte as they do in PostgreSQL ('a' <> 'A' <> 'a ').  root@localhost has no
# password (mariadb-install-db --auth-root-authentication-method=normal).
#
# The MariaDB Connector/ODBC driver is registered in a private DIR/odbcinst.ini
# under the name MariaDB (never in /etc); DIR/env points ODBCSYSINI there.
# DIR/env is shell-sourceable:
#
#   export MARIADB_SOCKET=DIR/sock MARIADB_USER=root TGT_MARIADB_DIR=DIR
#   export ODBCSYSINI=DIR ODBCINI=DIR/odbc.ini
#   export TGT_MARIADB_ODBC='DRIVER=MariaDB;SOCKET=DIR/sock;UID=root'
#
# TGT_MARIADB_ODBC is an ODBC connection string without a database (add
# DATABASE=name;).  The `mariadb` client connects with
# `mariadb --no-defaults -S "$MARIADB_SOCKET" -u root`.
#
# With TCP, DIR/env also exports MARIADB_PORT.  TGT_MARIADB_SERVER_OPTS adds
# server options (split at spaces), e.g. --max-allowed-packet=1M.
#
# Without DIR, `start` makes one under /tmp.  stdout carries only the env;
# progress and errors go to stderr.  mariadbd refuses to run as root, so as
# root it runs as the `mysql` user and DIR is handed to that user.  A failed
# start leaves no server process behind.
set -euo pipefail

MARKER=.target-pg-throwaway # written first by start; stop refuses to rm -rf a DIR without it

die() {
    echo "mariadb.sh: error: $*" >&2
    exit 1
}

usage() {
    echo "usage: tests/mariadb.sh start [DIR] | tests/mariadb.sh stop DIR" >&2
    exit 2
}

# The server binary: Debian's mariadb-server puts it in /usr/sbin.
server_bin() {
    local b
    for b in /usr/sbin/mariadbd /usr/sbin/mysqld "$(command -v mariadbd 2>/dev/null || true)"; do
        if [ -n "$b" ] && [ -x "$b" ]; then
            echo "$b"
            return 0
        fi
    done
    die "no mariadbd (install mariadb-server: make deps)"
}

# MariaDB Connector/ODBC (Debian odbc-mariadb).
odbc_driver() {
    local f
    for f in /usr/lib/x86_64-linux-gnu/odbc/libmaodbc.so /usr/lib/"$(uname -m)"-linux-gnu/odbc/libmaodbc.so \
        /usr/lib/odbc/libmaodbc.so /usr/lib64/libmaodbc.so; do
        if [ -f "$f" ]; then
            echo "$f"
            return 0
        fi
    done
    return 1
}

# mariadbd refuses root: as root the server and the installer run as mysql.
user_opt() {
    if [ "$(id -u)" = 0 ]; then echo "--user=mysql"; fi
}

# Stops the server serving DIR/data, however far start got.
kill_server() {
    local pid
    [ -f "$DIR/pid" ] || return 0
    pid=$(head -n 1 "$DIR/pid" 2>/dev/null || true)
    case "$pid" in
    '' | *[!0-9]*) return 0 ;;
    esac
    # only if it really is a mariadbd serving this data directory
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--datadir=$DIR/data" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
}

cmd_start() {
    local created=0
    if [ -z "${DIR:-}" ]; then
        DIR=$(mktemp -d /tmp/target-pg-mariadb.XXXXXX)
        created=1
    fi
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd -P)
    case "$DIR" in
    *[\'\"\ \\\;]*) die "DIR must not contain quotes, backslashes, semicolons or spaces: $DIR" ;;
    esac
    [ ! -e "$DIR/data" ] || die "$DIR/data already exists"
    [ ${#DIR} -le 80 ] || die "DIR path too long for a unix socket: $DIR"
    local bin driver
    bin=$(server_bin)
    driver=$(odbc_driver) || die "no MariaDB Connector/ODBC libmaodbc.so (install odbc-mariadb: make deps)"
    : >"$DIR/$MARKER"
    mkdir -p "$DIR/data"
    if [ "$(id -u)" = 0 ]; then
        id mysql >/dev/null 2>&1 || die "running as root but there is no mysql user"
        chown -R mysql: "$DIR"
        chmod 755 "$DIR"
        runuser -u mysql -- test -w "$DIR" ||
            die "user mysql cannot write $DIR (a parent directory is not searchable?)"
    fi

    fail_start() {
        echo "mariadb.sh: error: $1" >&2
        if [ -f "$DIR/log" ]; then
            echo "--- last lines of $DIR/log:" >&2
            tail -n 20 "$DIR/log" >&2 || true
        fi
        kill_server
        if [ "$created" = 1 ]; then rm -rf "$DIR"; fi
        exit 1
    }
    trap 'fail_start "interrupted"' INT TERM

    local net="--skip-networking" port=""
    if [ "${TGT_MARIADB_TCP:-0}" = 1 ]; then
        # a port free now (the kernel's pick); the server takes it a moment later
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') ||
            fail_start "no free TCP port"
        net="--bind-address=127.0.0.1 --port=$port"
    fi

    # shellcheck disable=SC2046 # user_opt is empty or one word
    if ! (cd "$DIR" && mariadb-install-db --no-defaults $(user_opt) --datadir="$DIR/data" \
        --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
        >"$DIR/install.log" 2>&1 </dev/null); then
        cat "$DIR/install.log" >&2
        fail_start "mariadb-install-db failed"
    fi

    # shellcheck disable=SC2046,SC2086 # word splitting of the option lists is meant
    (cd "$DIR" && exec setsid "$bin" --no-defaults $(user_opt) --datadir="$DIR/data" \
        --socket="$DIR/sock" --pid-file="$DIR/pid" --log-error="$DIR/log" $net \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_nopad_bin \
        --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 --skip-log-bin \
        --innodb-buffer-pool-size=256M --innodb-log-file-size=256M \
        --local-infile=1 --max-connections=100 ${TGT_MARIADB_SERVER_OPTS:-} \
        </dev/null >/dev/null 2>&1 &)
    local ok=0
    for _ in $(seq 300); do
        if [ -S "$DIR/sock" ] && mariadb-admin --no-defaults -S "$DIR/sock" -u root ping \
            >/dev/null 2>&1; then
            ok=1
            break
        fi
        sleep 0.1
    done
    [ "$ok" = 1 ] || fail_start "mariadbd did not answer on $DIR/sock within 30 s"
    if [ -n "$port" ] && ! mariadb --no-defaults -S "$DIR/sock" -u root -e \
        "CREATE USER IF NOT EXISTS root@'127.0.0.1'; GRANT ALL ON *.* TO root@'127.0.0.1' WITH GRANT OPTION" \
        >/dev/null 2>&1 </dev/null; then
        fail_start "cannot let root in over TCP"
    fi
    trap - INT TERM

    # The driver by absolute path: unixODBC reads this file instead of /etc/odbcinst.ini.
    printf '[MariaDB]\nDescription=MariaDB Connector/ODBC (target-pg tests)\nDriver=%s\n' \
        "$driver" >"$DIR/odbcinst.ini"
    : >"$DIR/odbc.ini"
    cat >"$DIR/env" <<EOF
export MARIADB_SOCKET=$DIR/sock MARIADB_USER=root TGT_MARIADB_DIR=$DIR
export ODBCSYSINI=$DIR ODBCINI=$DIR/odbc.ini
export TGT_MARIADB_ODBC='DRIVER=MariaDB;SOCKET=$DIR/sock;UID=root'
EOF
    if [ -n "$port" ]; then echo "export MARIADB_PORT=$port" >>"$DIR/env"; fi
    cat "$DIR/env"
}

cmd_stop() {
    [ -n "${DIR:-}" ] || usage
    [ -e "$DIR" ] || return 0
    DIR=$(cd "$DIR" && pwd -P)
    if [ ! -f "$DIR/$MARKER" ]; then
        die "$DIR was not made by tests/mariadb.sh start ($MARKER missing); not touching it"
    fi
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

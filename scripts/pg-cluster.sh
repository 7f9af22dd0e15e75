#!/bin/sh
# pg-cluster.sh - a throwaway PostgreSQL cluster for OpenExec's tests.
#
#   pg-cluster.sh start   create a fresh cluster, start it, print its URL
#   pg-cluster.sh url     print the URL of the running cluster
#   pg-cluster.sh down    stop the server but keep its data (outage tests)
#   pg-cluster.sh crash   kill the server as a crash would (immediate mode:
#                         no checkpoint; recovery from the WAL at the next up)
#   pg-cluster.sh up      start a stopped cluster again, on the same port
#   pg-cluster.sh stop    stop the server and delete the cluster
#
# The cluster lives in $OE_PG_DIR (default /tmp/openexec-pg-cluster): data
# directory, unix socket directory, server log and the URL file.  `start`
# always begins from nothing: a cluster left behind by an earlier run (running
# or not) in the same directory is stopped and removed first.  The server
# listens on 127.0.0.1 only, on the first free port from $OE_PG_PORT (default
# 25432, below Linux's ephemeral ports, so that no client socket takes the
# port while the cluster is down) upwards, with fsync on.  It has a database `openexec` owned by a
# role `openexec` (LOGIN CREATEDB, so tests can make a database per server)
# whose random password is in the URL:
#
#   postgresql://openexec:PASSWORD@127.0.0.1:PORT/openexec
#
# Over TCP the role authenticates with SCRAM; the superuser `postgres` is
# reachable only through the socket in the cluster directory.  Run as root,
# the server runs as the `postgres` user (PostgreSQL refuses to run as root);
# run as anyone else, it runs as that user.  Debian's PostgreSQL 15 by
# default; set OE_PG_BIN to use another installation's bin directory.
set -eu

DIR=${OE_PG_DIR:-${TMPDIR:-/tmp}/openexec-pg-cluster}
FIRST_PORT=${OE_PG_PORT:-25432}
BIN=${OE_PG_BIN:-/usr/lib/postgresql/15/bin}
PROG=$(basename "$0")

die() {
    echo "$PROG: $*" >&2
    exit 1
}

if [ "$(id -u)" -eq 0 ]; then
    OWNER=postgres
    as_owner() { runuser -u postgres -- "$@"; }
else
    OWNER=$(id -un)
    as_owner() { "$@"; }
fi

running() {
    [ -f "$DIR/data/postmaster.pid" ] &&
        as_owner "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1
}

stop_server() {
    # fast: roll back open transactions, disconnect clients, checkpoint.
    if running; then
        as_owner "$BIN/pg_ctl" -D "$DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
            as_owner "$BIN/pg_ctl" -D "$DIR/data" -m immediate -w -t 30 stop >/dev/null 2>&1 ||
            true
    fi
}

start_server() { # port
    as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$1 -c unix_socket_directories=$DIR/sock -c fsync=on -c synchronous_commit=on -c max_connections=300" \
        start >/dev/null 2>&1
}

superuser_sql() { # port sql
    as_owner "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR/sock" -p "$1" -U postgres \
        -d postgres -c "$2" >/dev/null
}

cmd_stop() {
    stop_server
    rm -rf "$DIR"
}

cmd_start() {
    [ -x "$BIN/initdb" ] || die "no PostgreSQL in $BIN (install Debian's postgresql, or set OE_PG_BIN)"
    cmd_stop
    mkdir -p "$DIR/sock"
    chmod 0700 "$DIR"
    chown -R "$OWNER" "$DIR"
    password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    if ! as_owner "$BIN/initdb" -D "$DIR/data" -U postgres -E UTF8 --no-locale \
        --auth-local=trust --auth-host=scram-sha-256 >"$DIR/initdb.log" 2>&1; then
        cat "$DIR/initdb.log" >&2
        die "initdb failed in $DIR/data"
    fi
    # The first port from FIRST_PORT that the server can bind.
    port=$FIRST_PORT
    while ! start_server "$port"; do
        if ! grep -qi "in use\|could not bind\|could not create listen" "$DIR/server.log" 2>/dev/null; then
            cat "$DIR/server.log" >&2 2>/dev/null || true
            die "PostgreSQL did not start (log above)"
        fi
        port=$((port + 1))
        [ "$port" -lt $((FIRST_PORT + 200)) ] || die "no free port from $FIRST_PORT"
        : >"$DIR/server.log"
    done
    superuser_sql "$port" "CREATE ROLE openexec LOGIN CREATEDB PASSWORD '$password'"
    superuser_sql "$port" "CREATE DATABASE openexec OWNER openexec"
    echo "$port" >"$DIR/port"
    (umask 077 && echo "postgresql://openexec:$password@127.0.0.1:$port/openexec" >"$DIR/url")
    cat "$DIR/url"
}

cmd_url() {
    [ -f "$DIR/url" ] || die "no cluster in $DIR (run '$PROG start')"
    running || die "the cluster in $DIR is not running"
    cat "$DIR/url"
}

cmd_down() {
    [ -f "$DIR/port" ] || die "no cluster in $DIR"
    stop_server
    ! running || die "the cluster in $DIR did not stop"
}

cmd_crash() {
    [ -f "$DIR/port" ] || die "no cluster in $DIR"
    if running; then
        as_owner "$BIN/pg_ctl" -D "$DIR/data" -m immediate -w -t 30 stop >/dev/null 2>&1 ||
            die "the cluster in $DIR did not stop"
    fi
}

cmd_up() {
    [ -f "$DIR/port" ] || die "no cluster in $DIR"
    running && return 0
    # The port may be briefly taken (another program's socket): try for 10 s.
    tries=0
    until start_server "$(cat "$DIR/port")"; do
        tries=$((tries + 1))
        if [ "$tries" -ge 10 ]; then
            tail -n 20 "$DIR/server.log" >&2 || true
            die "PostgreSQL did not start again"
        fi
        sleep 1
    done
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
url) cmd_url ;;
down) cmd_down ;;
crash) cmd_crash ;;
up) cmd_up ;;
*)
    echo "usage: $PROG start|url|down|crash|up|stop   (cluster in \$OE_PG_DIR, default $DIR)" >&2
    exit 2
    ;;
esac

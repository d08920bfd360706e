#!/usr/bin/env bash
# start-presence-server.sh WORKDIR [UDP_PORT [TCP_PORT]]
#
# Starts presence-server.cfg (Kamailio 5.6 presence server) on 127.0.0.1,
# SIP over UDP on UDP_PORT and over TCP on TCP_PORT.  A port that is 0 or
# not given is picked free by the OS.  Everything goes under WORKDIR:
#   WORKDIR/presence.db     SQLite database (Debian's presence schema)
#   WORKDIR/kamailio.pid    pid of the kamailio main process
#   WORKDIR/kamailio.log    kamailio's log
#   WORKDIR/run/            kamailio's runtime dir (-Y)
#   WORKDIR/sipdump/        SIP messages, with SIPDUMP=1
# Waits (at most 20 s) until an OPTIONS over UDP gets 200, then prints
# "PID UDP_PORT TCP_PORT" on stdout.  Kamailio runs in a session of its own,
# so its pid is also its process group id (see stop-presence-server.sh).
#
# Environment:
#   KAM_RESET_DB=1  start from an empty database (default: keep WORKDIR's)
#   SIPDUMP=1       write every SIP message to WORKDIR/sipdump/
#   MSGLOG=1        log one line per request received
#
# The pytest fixture (tests/interop/conftest.py, presence_server) starts the
# same config the same way, without this script.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
PACKAGES="kamailio kamailio-presence-modules kamailio-sqlite-modules sqlite3"
SQL_DIR=/usr/share/kamailio/db_sqlite

die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: $0 WORKDIR [UDP_PORT [TCP_PORT]]"
KAMAILIO=$(command -v kamailio || true)
[ -n "$KAMAILIO" ] || [ ! -x /usr/sbin/kamailio ] || KAMAILIO=/usr/sbin/kamailio
[ -n "$KAMAILIO" ] || die "kamailio not found (apt-get install -y $PACKAGES)"
command -v sqlite3 >/dev/null || die "sqlite3 not found (apt-get install -y $PACKAGES)"
command -v python3 >/dev/null || die "python3 not found"
for sql in standard-create.sql presence-create.sql; do
	[ -r "$SQL_DIR/$sql" ] || die "$SQL_DIR/$sql missing (apt-get install -y kamailio-sqlite-modules)"
done

mkdir -p "$1"
WD=$(cd "$1" && pwd -P)
PIDFILE=$WD/kamailio.pid
if [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
	die "a kamailio (pid $(cat "$PIDFILE")) already runs for $WD: stop it first"
fi

# free_port udp|tcp -> a port on 127.0.0.1 the OS reports free
free_port() {
	python3 - "$1" <<'EOF'
import socket, sys
kind = socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM
with socket.socket(socket.AF_INET, kind) as sock:
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1])
EOF
}
UDP_PORT=${2:-0}
TCP_PORT=${3:-0}
[ "$UDP_PORT" != 0 ] || UDP_PORT=$(free_port udp)
[ "$TCP_PORT" != 0 ] || TCP_PORT=$(free_port tcp)

DB=$WD/presence.db
if [ "${KAM_RESET_DB:-0}" = 1 ]; then
	rm -f "$DB" "$DB-wal" "$DB-shm" "$DB-journal"
fi
if [ ! -s "$DB" ]; then
	sqlite3 "$DB" <"$SQL_DIR/standard-create.sql"
	sqlite3 "$DB" <"$SQL_DIR/presence-create.sql"
	# WAL: sqlite3 can read while kamailio writes
	sqlite3 "$DB" 'PRAGMA journal_mode=WAL;' >/dev/null
fi

mkdir -p "$WD/run" "$WD/sipdump"
args=(-f "$HERE/presence-server.cfg" -Y "$WD/run" -m 64 -M 8
	-A "UDP_PORT=$UDP_PORT" -A "TCP_PORT=$TCP_PORT"
	-A "DBURL=\"sqlite://$DB\"" -A "SIPDUMP_DIR=\"$WD/sipdump\"")
[ "${SIPDUMP:-0}" = 1 ] && args+=(-A WITH_SIPDUMP)
[ "${MSGLOG:-0}" = 1 ] && args+=(-A WITH_MSGLOG)

"$KAMAILIO" -c "${args[@]}" >"$WD/config-check.log" 2>&1 ||
	{ cat "$WD/config-check.log" >&2; die "config check failed (are $PACKAGES installed?)"; }

[ -s "$WD/kamailio.log" ] && mv -f "$WD/kamailio.log" "$WD/kamailio.log.prev"
# setsid: kamailio leads a new session and process group; -DD keeps the main
# process in the foreground, so $! is kamailio's own pid
setsid "$KAMAILIO" -DD -E "${args[@]}" -P "$PIDFILE" >"$WD/kamailio.log" 2>&1 </dev/null &
PID=$!

# readiness: an OPTIONS over UDP answered 200, polled for at most 20 s
if ! python3 - "$UDP_PORT" "$PID" <<'EOF'; then
import os, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("kamailio exited during start-up")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.2)
        local = sock.getsockname()[1]
        tag = f"{os.getpid()}-{time.monotonic_ns()}"
        request = (
            f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK-ready-{tag};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@127.0.0.1>;tag={tag}\r\n"
            f"To: <sip:127.0.0.1:{port}>\r\n"
            f"Call-ID: ready-{tag}@127.0.0.1\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        try:
            sock.sendto(request.encode(), ("127.0.0.1", port))
            if sock.recv(65535).startswith(b"SIP/2.0 200"):
                sys.exit(0)
        except OSError:
            pass
sys.exit(f"no 200 to OPTIONS on udp port {port} within 20 s")
EOF
	tail -n 30 "$WD/kamailio.log" >&2
	if kill -0 "$PID" 2>/dev/null; then
		"$HERE/stop-presence-server.sh" "$WD" >&2 || true
	fi
	die "presence server did not start (log: $WD/kamailio.log)"
fi
echo "$PID $UDP_PORT $TCP_PORT"

#!/usr/bin/env bash
# stop-presence-server.sh WORKDIR
#
# Stops the presence server that start-presence-server.sh started for
# WORKDIR: SIGTERM to the pid in WORKDIR/kamailio.pid (kamailio then stops
# its children), at most 10 s to exit, then SIGKILL to its process group
# (which start-presence-server.sh created with setsid, so it holds only that
# kamailio).  Nothing is ever killed by name.  Nothing running: no error.
set -euo pipefail

die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 WORKDIR"
PIDFILE=$1/kamailio.pid
if [ ! -s "$PIDFILE" ]; then
	echo "nothing to stop in $1" >&2
	exit 0
fi
PID=$(tr -dc '0-9' <"$PIDFILE")
if [ -z "$PID" ] || ! kill -0 "$PID" 2>/dev/null; then
	echo "pid ${PID:-?} from $PIDFILE is not running" >&2
	rm -f "$PIDFILE"
	exit 0
fi
case "$(readlink "/proc/$PID/exe" 2>/dev/null || true)" in
	*kamailio*) ;;
	*) die "pid $PID from $PIDFILE is not a kamailio; not touching it" ;;
esac
[ "$(ps -o pgid= -p "$PID" | tr -d ' ')" = "$PID" ] ||
	die "kamailio $PID does not lead its own process group; stop it by hand"

group_alive() { kill -0 -- "-$PID" 2>/dev/null; }

kill -TERM "$PID" 2>/dev/null || true
for _ in $(seq 1 100); do
	group_alive || break
	sleep 0.1
done
if group_alive; then
	echo "kamailio group $PID still alive after 10 s: SIGKILL" >&2
	kill -KILL -- "-$PID" 2>/dev/null || true
fi
rm -f "$PIDFILE"
echo "stopped kamailio $PID" >&2

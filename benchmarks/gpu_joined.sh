#!/usr/bin/env bash
# The joined-loop benchmark on a GPU machine that has torch but not our weights (docs/speed.md, "Many
# raters at once"). Run from the repository root with the exported files in .gpu and the
# transformers wheel we pin in .whl:
#   python -m benchmarks.random_weights export .gpu
#   pip download --no-deps -d .whl transformers==5.23.0
set -euo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -m benchmarks.random_weights build .gpu /tmp/rw
export W2S_PRESETS=/tmp/rw/presets.toml
for many in 8 32; do
  for dtype in float32 bfloat16; do
    python3 -m benchmarks.bench_joined --preset offline-random --engines fast --device cuda \
      --dtype "$dtype" --many "$many" --max-rows 512 --json | tee "$OUT/joined_${dtype}_${many}.json"
  done
done

#!/usr/bin/env bash
# DINO ViT image embedding: embr against PyTorch (Debian's python3-torch, /usr/bin/python3) on the
# same network (bench/torch_dino.py: scripts/make_dino_ref.py's reference forward), random weights
# and input, THREADS threads, batch BATCH, ViT-S/16 at 224 px by default (ARCHS lists others).
# The two programs alternate, ROUNDS times; each prints one JSON line; the last lines give the
# medians and the ratio.
#
#   bench/run_dino.sh [BUILD_DIR]     ROUNDS=3 STEPS=3 BATCH=32 THREADS=2 ARCHS="vit-s-16"
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
BENCH=$BUILD/bench/bench_dino
[ -x "$BENCH" ] || { echo "build first: make build (bench/bench_dino)" >&2; exit 1; }
$PY -c 'import torch' 2>/dev/null || { echo "needs python3-torch (apt-get install python3-torch)" >&2; exit 1; }
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-3}
BATCH=${BATCH:-32}
THREADS=${THREADS:-2}
ARCHS=${ARCHS:-vit-s-16}
echo "# $(date -u +%F) $(nproc) cores; torch $($PY -c 'import torch; print(torch.__version__)');" \
  "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-unset}"
for r in $(seq 1 "$ROUNDS"); do
  for a in $ARCHS; do
    "$BENCH" "$a" "$BATCH" "$STEPS" "$THREADS"
    $PY "$HERE/torch_dino.py" "$a" "$BATCH" "$STEPS" "$THREADS"
  done
done | tee "${RAW:-/dev/stderr}" | $PY -c '
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin if l.startswith("{")]
for arch in dict.fromkeys(r["arch"] for r in rows):
    med = {p: statistics.median(r["per_s"] for r in rows if r["arch"] == arch and r["prog"] == p) for p in ("embr", "torch")}
    mem = {p: max(r["peak_mib"] for r in rows if r["arch"] == arch and r["prog"] == p) for p in ("embr", "torch")}
    print("%s: embr %.2f images/s, PyTorch %.2f images/s, ratio %.2fx; peak MiB embr %.0f, PyTorch %.0f"
          % (arch, med["embr"], med["torch"], med["embr"] / med["torch"], mem["embr"], mem["torch"]))
'

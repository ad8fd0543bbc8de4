#!/usr/bin/env bash
# Neural-network throughput: embr against PyTorch (Debian's python3-torch, run by Debian's own
# /usr/bin/python3, OpenBLAS as the system BLAS), the same networks (MobileFaceNet and ResNet-18
# at 112 x 112, embedding 128), random input, 2 threads:
#   training images/s: forward + backward + SGD step, ArcFace head over 1,000 classes, batch 64;
#   inference images/s: eval mode, batch 32; peak resident memory of the process.
# The two programs alternate, ROUNDS times (default 3); each prints one JSON line per run.
#
#   bench/run_nn.sh [BUILD_DIR]        ROUNDS=3 STEPS=4 ARCHS="mobilefacenet resnet18"
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
BENCH=$BUILD/bench/bench_nn
[ -x "$BENCH" ] || { echo "build first: make build (bench/bench_nn)" >&2; exit 1; }
$PY -c 'import torch' 2>/dev/null || { echo "needs python3-torch (apt-get install python3-torch)" >&2; exit 1; }
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-4}
ARCHS=${ARCHS:-mobilefacenet resnet18}
echo "# $(date -u +%F) $(nproc) cores; torch $($PY -c 'import torch; print(torch.__version__)'); BLAS: $(readlink -f /etc/alternatives/libblas.so.3-x86_64-linux-gnu 2>/dev/null || echo '?')"
for r in $(seq 1 "$ROUNDS"); do
  for a in $ARCHS; do
    echo "embr  $("$BENCH" "$a" 112 64 32 "$STEPS" 2)"
    echo "torch $($PY "$HERE/torch_nn.py" "$a" 112 64 32 "$STEPS" 2)"
  done
done | tee "${RAW:-/dev/stderr}" | $PY "$HERE/nn_report.py"

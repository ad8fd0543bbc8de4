#!/usr/bin/env bash
# Neural-network throughput: embr against PyTorch (Debian's python3-torch, run by Debian's own
# /usr/bin/python3) and, for inference, ONNX Runtime (npm onnxruntime-node, when ORT_NODE_DIR names
# the folder holding node_modules/onnxruntime-node; see bench/onnx_clip.mjs), the same networks
# (MobileFaceNet and ResNet-18 at 112 x 112, embedding 128; definitions in scripts/make_nn_ref.py),
# random input, 2 threads:
#   training images/s: forward + backward + SGD step, ArcFace head over 1,000 classes, batch 64;
#   inference images/s: eval mode, batch 32; peak resident memory of the process.
# The programs alternate, ROUNDS times (default 3); each prints one JSON line per run; the report
# gives medians, the ratios embr / PyTorch and embr / ONNX Runtime, and GFLOP/s against the 2-core
# sgemm rate (bench/nn_flops.py). The ONNX models are exported to $ORT_DIR (default $TMPDIR or
# /tmp) by bench/onnx_nn_export.py on first use (python3-onnx).
# The OpenBLAS environment is printed: run it once as the machine has it and once with
# `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` to see both.
#
#   bench/run_nn.sh [BUILD_DIR]        ROUNDS=3 STEPS=4 ARCHS="mobilefacenet resnet18" ORT_NODE_DIR=/tmp/ortnode
#                                      TRAIN_BATCH=0: inference only
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
TB=${TRAIN_BATCH:-64}
ORT_DIR=${ORT_DIR:-${TMPDIR:-/tmp}}
if [ -n "${ORT_NODE_DIR-}" ]; then
  for a in $ARCHS; do
    [ -f "$ORT_DIR/embr_nn_$a.onnx" ] || $PY "$HERE/onnx_nn_export.py" "$ORT_DIR/embr_nn_$a.onnx" "$a" 112
  done
fi
{
  echo "# $(date -u +%F) $(nproc) cores; torch $($PY -c 'import torch; print(torch.__version__)');" \
    "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-unset}"
  $PY "$HERE/nn_flops.py" 112 2 $ARCHS
  for r in $(seq 1 "$ROUNDS"); do
    for a in $ARCHS; do
      echo "embr $("$BENCH" "$a" 112 "$TB" 32 "$STEPS" 2)"
      echo "torch $($PY "$HERE/torch_nn.py" "$a" 112 "$TB" 32 "$STEPS" 2)"
      if [ -n "${ORT_NODE_DIR-}" ]; then
        echo "onnxruntime $(ORT_NODE_DIR=$ORT_NODE_DIR node "$HERE/onnx_nn.mjs" "$ORT_DIR/embr_nn_$a.onnx" "$a" 112 32 "$STEPS" 2)"
      fi
    done
  done
} | tee "${RAW:-/dev/stderr}" | $PY "$HERE/nn_report.py"

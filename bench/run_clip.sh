#!/usr/bin/env bash
# CLIP throughput: embr against PyTorch 1.13 (Debian's python3-torch, /usr/bin/python3) on the same
# towers (bench/torch_clip.py builds them from scripts/make_clip_ref.py's reference model), random
# weights and input, 2 threads, batch 32:
#   image: ViT-B/32 image embeddings per second at 224 x 224 (clip-vit-b-32);
#   text:  text embeddings per second of ViT-B/32 CLIP's text tower (context 77);
#   train: image-text pairs per second of one training step of clip-tiny (ViT width 192, depth 6,
#          patch 8 at 64 px; text width 256, depth 4): both towers, CLIP loss, backward, AdamW.
# and, for the image tower, ONNX Runtime (npm onnxruntime-node 1.30.0) when ORT_NODE_DIR names the
# folder holding node_modules/onnxruntime-node (set up as bench/onnx_clip.mjs says): the ViT-B/32
# image tower is exported to ORT_MODEL (default $TMPDIR/clip-vit-b-32.onnx) by bench/onnx_export.py
# first (python3-onnx).
# The programs alternate, ROUNDS times (default 3); each prints one JSON line; the report gives
# medians and ratios and the peak resident memory of each process.
#
#   bench/run_clip.sh [BUILD_DIR]     ROUNDS=3 STEPS=3 BATCH=32 THREADS=2 MODES="image text train"
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
BENCH=$BUILD/bench/bench_clip
[ -x "$BENCH" ] || { echo "build first: make build (bench/bench_clip)" >&2; exit 1; }
$PY -c 'import torch' 2>/dev/null || { echo "needs python3-torch (apt-get install python3-torch)" >&2; exit 1; }
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-3}
BATCH=${BATCH:-32}
THREADS=${THREADS:-2}
MODES=${MODES:-image text train}
arch_of() { [ "$1" = train ] && echo clip-tiny || echo clip-vit-b-32; }
ORT_MODEL=${ORT_MODEL:-${TMPDIR:-/tmp}/clip-vit-b-32.onnx}
if [ -n "${ORT_NODE_DIR-}" ] && [ ! -f "$ORT_MODEL" ]; then
  $PY "$HERE/onnx_export.py" "$ORT_MODEL" clip-vit-b-32 >&2
fi
echo "# $(date -u +%F) $(nproc) cores; torch $($PY -c 'import torch; print(torch.__version__)');" \
  "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-unset}"
for r in $(seq 1 "$ROUNDS"); do
  for m in $MODES; do
    a=$(arch_of "$m")
    echo "embr $("$BENCH" "$a" "$m" "$BATCH" "$STEPS" "$THREADS")"
    echo "torch $($PY "$HERE/torch_clip.py" "$a" "$m" "$BATCH" "$STEPS" "$THREADS")"
    if [ "$m" = image ] && [ -n "${ORT_NODE_DIR-}" ]; then
      echo "onnxruntime $(ORT_NODE_DIR=$ORT_NODE_DIR node "$HERE/onnx_clip.mjs" "$ORT_MODEL" "$a" "$BATCH" "$STEPS" "$THREADS")"
    fi
  done
done | tee "${RAW:-/dev/stderr}" | $PY "$HERE/clip_report.py"

#!/usr/bin/env bash
# DINO on MNIST, the issue's k-NN protocol end to end: of each digit of ../shared/data/mnist (t10k,
# 10,000 images) images 0..799 are the k-NN memory and the rest (2,000) the queries; k-NN top-1 /
# top-5 (k 20, T 0.07) of (a) vit-tiny untrained (--epochs 0), (b) vit-tiny trained by DINO without
# labels, (c) raw pixels. Prints each figure with its wall time and the load average before it.
# The training settings are the ones measured in docs/dino.md ("Measured: k-NN on MNIST"); override
# them by the variables below. About 15 min of training plus 3 x 2-5 min of k-NN on 2 cores.
# Usage: bench/run_dino_knn.sh [BUILD_DIR] [MNIST_DIR] [WORK_DIR]
#   e.g. EPOCHS=1 TRAIN_PER_CLASS=0:10 bench/run_dino_knn.sh build   (a quick check, a few minutes)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-$HERE/../build}
MNIST=${2:-$HERE/../../shared/data/mnist}
WORK=${3:-}
EMBR=$BUILD/embr
[ -x "$EMBR" ] || { echo "build first: $EMBR not found" >&2; exit 1; }
[ -e "$MNIST/t10k-images-idx3-ubyte.gz" ] || [ -e "$MNIST/t10k-images-idx3-ubyte" ] ||
  { echo "no MNIST t10k idx files in $MNIST" >&2; exit 1; }
if [ -z "$WORK" ]; then WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT; fi
mkdir -p "$WORK"
TRAIN_PER_CLASS=${TRAIN_PER_CLASS:-0:800}
EPOCHS=${EPOCHS:-1}
BATCH=${BATCH:-32}
LOCAL_CROPS=${LOCAL_CROPS:-4}
LR=${LR:-2e-3}            # per 256 images: the step uses LR * BATCH / 256
. "$HERE/dino_common.sh"  # the other settings (THREADS, DINO_OUT, ..., SEED), dino_args, timed
DATA=(--data "mnist:$MNIST")
EVAL=(--train-per-class 0:800 --test-per-class 800: --threads "$THREADS" --json -q)

knn() { # label features...: prints "label top-1 X top-5 Y"
  local l=$1 j
  shift
  j=$(timed "k-NN $l" "$EMBR" eval knn "$@" "${DATA[@]}" "${EVAL[@]}")
  echo "$j" >"$WORK/knn_$l.json"
  echo "$l: top-1 $(echo "$j" | sed 's/.*"top1": *\([0-9.]*\).*/\1/'), top-5 $(echo "$j" | sed 's/.*"top5": *\([0-9.]*\).*/\1/')"
}

header
dino_args "${DATA[@]}" --per-class "$TRAIN_PER_CLASS" -q
"$EMBR" train "${COMMON[@]}" --epochs 0 -o "$WORK/untrained.safetensors"
echo "training: ${COMMON[*]} --epochs $EPOCHS"
timed "DINO training" "$EMBR" train "${COMMON[@]}" --epochs "$EPOCHS" -o "$WORK/dino.safetensors"
knn untrained --model "$WORK/untrained.safetensors"
knn dino --model "$WORK/dino.safetensors"
knn raw --raw

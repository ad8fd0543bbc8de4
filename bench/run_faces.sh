#!/usr/bin/env bash
# Embedding quality, ArcFace against a softmax classifier of the same network, epochs and seed:
#   ORL faces (../shared/data/orl_faces, 40 people x 10): train on people 1-30, verify and identify
#   on the 10 never seen (all 4,950 pairs, 10 folds; gallery of 1 photo per person, 90 probes).
#   MNIST test set (../shared/data/mnist, 10,000 digits): train on digits' first 700 images per
#   class, evaluate on the other ~3,000 (all pairs; gallery 1 per class).
# Prints each model's training time and the eval lines; SEEDS="1 2 3" repeats with other seeds.
#
#   bench/run_faces.sh [BUILD_DIR]       SHARED=../shared/data EPOCHS=30 SEEDS=1
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
SHARED=${SHARED:-$HERE/../../shared/data}
EMBR=$BUILD/embr
EPOCHS=${EPOCHS:-30}
SEEDS=${SEEDS:-1}
R=$(mktemp -d)
trap 'rm -rf "$R"' EXIT
[ -x "$EMBR" ] || { echo "build first: make build" >&2; exit 1; }

evaluate() { # model data classes per-class gallery
  "$EMBR" eval verify --model "$1" --data "$2" ${3:+--classes $3} ${4:+--per-class $4} --json -q
  "$EMBR" eval identify --model "$1" --data "$2" ${3:+--classes $3} ${4:+--per-class $4} --gallery-per-class "$5" --json -q
}

if [ -d "$SHARED/orl_faces/s1" ]; then
  for seed in $SEEDS; do
    for obj in arcface softmax; do
      t0=$(date +%s.%N)
      "$EMBR" train --data "$SHARED/orl_faces" --classes 0:30 --objective $obj --arch mobilefacenet --input 64 \
        --epochs "$EPOCHS" --batch 32 --lr 0.1 --seed "$seed" -o "$R/orl.safetensors" -q
      echo "orl $obj seed $seed train_s $(echo "$(date +%s.%N) - $t0" | bc)"
      evaluate "$R/orl.safetensors" "$SHARED/orl_faces" 30:40 "" 1 | sed "s/^/orl $obj seed $seed /"
    done
  done
else
  echo "no ORL faces at $SHARED/orl_faces: skipped" >&2
fi

if [ -f "$SHARED/mnist/t10k-images-idx3-ubyte.gz" ]; then
  for seed in $SEEDS; do
    for obj in arcface softmax; do
      t0=$(date +%s.%N)
      "$EMBR" train --data "mnist:$SHARED/mnist" --per-class 0:700 --objective $obj --arch resnet18 --width 16 \
        --input 28 --channels 1 --embedding-dim 64 --epochs 5 --batch 64 --lr 0.1 --no-flip --pad 2 --seed "$seed" \
        -o "$R/mnist.safetensors" -q
      echo "mnist $obj seed $seed train_s $(echo "$(date +%s.%N) - $t0" | bc)"
      evaluate "$R/mnist.safetensors" "mnist:$SHARED/mnist" "" 700: 1 | sed "s/^/mnist $obj seed $seed /"
    done
  done
else
  echo "no MNIST at $SHARED/mnist: skipped" >&2
fi

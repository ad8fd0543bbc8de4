#!/usr/bin/env bash
# DINO on the emoji categories, issue 13's protocol end to end: the 1,535 images of split "train"
# of ../shared/data/emoji train vit-tiny without labels and are the k-NN memory (label = category),
# the 376 "test" images are the queries; k-NN top-1 / top-5 (k 20, T 0.07, cosine) of (a) the same
# network untrained (--epochs 0, same seed, same features), (b) trained by DINO, (c) raw pixels.
# Prints each figure with its wall time and the load average before it, then the gain in points.
# The defaults are the best run of docs/dino.md ("Emoji categories"); override them by the
# variables below. Needs /usr/bin/python3 (standard library only) for scripts/emoji_pairs.py.
# Usage: bench/run_dino_emoji.sh [BUILD_DIR] [EMOJI_DIR] [WORK_DIR]
#   e.g. EPOCHS=1 bench/run_dino_emoji.sh build   (a quick check)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-$HERE/../build}
EMOJI=$(cd "${2:-$HERE/../../shared/data/emoji}" && pwd)
WORK=${3:-}
EMBR=$BUILD/embr
[ -x "$EMBR" ] || { echo "build first: $EMBR not found" >&2; exit 1; }
[ -f "$EMOJI/emoji.jsonl" ] || { echo "no emoji.jsonl in $EMOJI" >&2; exit 1; }
if [ -z "$WORK" ]; then WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT; fi
mkdir -p "$WORK"
INPUT=${INPUT:-28}           # global crop side = the network's input (a multiple of the patch, 4)
LOCAL_SIZE=${LOCAL_SIZE:-0}  # 0: INPUT * 96 / 224
EPOCHS=${EPOCHS:-3}
BATCH=${BATCH:-16}
LOCAL_CROPS=${LOCAL_CROPS:-4}
LR=${LR:-8e-3}               # per 256 images: the step uses LR * BATCH / 256
JITTER=${JITTER:-0.8}        # colour augmentation (DINO's values by default)
GRAYSCALE=${GRAYSCALE:-0.2}
BLUR=${BLUR:-1:0.1:0.5}
SOLARIZE=${SOLARIZE:-0.2}
POOL=${POOL:-cls}            # features of both networks: cls or cls+avg
RAW_SIZE=${RAW_SIZE:-28}
. "$HERE/dino_common.sh"     # the other settings (THREADS, DINO_OUT, ..., SEED), dino_args, timed

field() { echo "$1" | sed "s/.*\"$2\": *\([0-9.]*\).*/\1/"; }

# Lists: the categories of both splits, and the same images as absolute paths for train and embed.
/usr/bin/python3 "$HERE/../scripts/emoji_pairs.py" --data "$EMOJI" --out "$WORK" >/dev/null
for s in train test; do
  cut -f1 "$WORK/${s}_categories.tsv" | sed "s|^|$EMOJI/|" >"$WORK/$s.images"
  cut -f2 "$WORK/${s}_categories.tsv" >"$WORK/$s.labels"
done

knn_model() { # label model: embeds both splits with --pool POOL, prints the k-NN figures
  local l=$1 m=$2 j
  for s in train test; do
    "$EMBR" embed --model "$m" --images "$WORK/$s.images" --pool "$POOL" --threads "$THREADS" -o "$WORK/${l}_$s.npy" -q
  done
  j=$("$EMBR" eval knn --train-emb "$WORK/${l}_train.npy" --train-labels "$WORK/train.labels" \
    --test-emb "$WORK/${l}_test.npy" --test-labels "$WORK/test.labels" --json -q)
  echo "$j" >"$WORK/knn_$l.json"
  echo "$l ($POOL): top-1 $(field "$j" top1), top-5 $(field "$j" top5)"
}

header
dino_args --data "$WORK/train.images" --input "$INPUT" --local-size "$LOCAL_SIZE" --jitter "$JITTER" \
  --grayscale "$GRAYSCALE" --blur "$BLUR" --solarize "$SOLARIZE" -q
"$EMBR" train "${COMMON[@]}" --epochs 0 -o "$WORK/untrained.safetensors"
echo "training: ${COMMON[*]} --epochs $EPOCHS"
timed "DINO training" "$EMBR" train "${COMMON[@]}" --epochs "$EPOCHS" -o "$WORK/dino.safetensors"
timed "k-NN untrained" knn_model untrained "$WORK/untrained.safetensors"
timed "k-NN dino" knn_model dino "$WORK/dino.safetensors"
j=$("$EMBR" eval knn --raw --raw-size "$RAW_SIZE" --data "$EMOJI" --train-list "$WORK/train_categories.tsv" \
  --test-list "$WORK/test_categories.tsv" --threads "$THREADS" --json -q)
echo "raw pixels ($RAW_SIZE px): top-1 $(field "$j" top1), top-5 $(field "$j" top5)"
u=$(field "$(cat "$WORK/knn_untrained.json")" top1)
d=$(field "$(cat "$WORK/knn_dino.json")" top1)
echo "DINO - untrained: $(awk -v a="$d" -v b="$u" 'BEGIN { printf "%+.1f", 100 * (a - b) }') points top-1 (target: +10)"

#!/usr/bin/env bash
# DINO's unsupervised localisation (issue 13) end to end: composites of emoji of split "train"
# (scripts/loc_composites.py, seed TRAIN_SEED; backgrounds from a pool of BACKGROUNDS) train vit-tiny by DINO with no masks and no labels
# (only the composite images); 200 composites of the held-out split "test" (seed 1) are the test
# set. For each, `embr dino attention --whole --masks-out` writes the 60 %-mass mask of the heads'
# mean attention map, and `loc_composites.py score` gives its IoU with the emoji's alpha mask beside
# the issue's baseline, a centred box of the same area: mean IoUs and the share of composites where
# the attention wins. The same for the untrained network (--epochs 0), and per head (HEADS=1).
# Prints each figure, the wall times and the load average before each step.
# Usage: bench/run_dino_loc.sh [BUILD_DIR] [EMOJI_DIR] [WORK_DIR]
#   the defaults are run B of docs/dino.md ("Measured: unsupervised localisation"), the best
#   trained one (it still loses to the box); run C: LOCAL_CROPS=4 LR=8e-3 THREADS=1; run E:
#   N_TRAIN=1500 BACKGROUNDS=20 LOCAL_CROPS=4 LR=8e-3. EPOCHS=0 checks the pipeline in ~1 min.
#   Under load (average 11) run E took 17 min in all; on a quiet machine expect a few minutes.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-$HERE/../build}
EMOJI=${2:-$HERE/../../shared/data/emoji}
WORK=${3:-}
EMBR=$BUILD/embr
PY=${PY:-/usr/bin/python3}
LOC=$HERE/../scripts/loc_composites.py
[ -x "$EMBR" ] || { echo "build first: $EMBR not found" >&2; exit 1; }
[ -e "$EMOJI/emoji.jsonl" ] || { echo "no emoji data (emoji.jsonl) in $EMOJI" >&2; exit 1; }
if [ -z "$WORK" ]; then WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT; fi
mkdir -p "$WORK"
N_TRAIN=${N_TRAIN:-3000}       # training composites (emoji of split "train")
TRAIN_SEED=${TRAIN_SEED:-2}    # not the test set's seed 1
BACKGROUNDS=${BACKGROUNDS:-0}  # training composites: backgrounds from a shared pool of this many (0: one each)
SIZE=${SIZE:-96}               # composite side (train and test)
INPUT=${INPUT:-32}             # network input: global crops and attention at INPUT px (patch 4)
LOCAL_SIZE=${LOCAL_SIZE:-12}
LOCAL_CROPS=${LOCAL_CROPS:-2}
EPOCHS=${EPOCHS:-1}
BATCH=${BATCH:-16}
LR=${LR:-4e-3}                 # per 256 images: the step uses LR * BATCH / 256
. "$HERE/dino_common.sh"       # the other settings (THREADS, DINO_OUT, ..., SEED), dino_args, timed
HEADS=${HEADS:-1}              # 1: also score each head's own mask
NHEADS=3                       # vit-tiny's heads

score() { # label masks-dir: "label: IoU X, centred box of its area Y, wins W of 200"
  local j
  j=$("$PY" "$LOC" score --truth "$WORK/test" --pred "$2" --json)
  echo "$j" >"$WORK/score_$(basename "$2").json"
  echo "$j" | "$PY" -c 'import json, sys; r = json.load(sys.stdin)
print("%s: attention mask IoU %.4f, centred box of the same area %.4f, attention wins on %d of %d (%.0f %%);"
      " kept: object %.3f, background %.3f" % (sys.argv[1], r["pred"], r["box_pred_area"], r["wins"], r["composites"],
      100.0 * r["wins"] / r["composites"], r["object_kept"], r["background_kept"]))' "$1"
}
# One thread for the attention maps: 200 small images, and with two threads on a loaded machine
# each batch waits at OpenMP barriers for a descheduled partner (10x slower measured).
masks() { # label model: the mean map's masks, and with HEADS=1 each head's, scored
  local l=$1 m=$2 h
  timed "attention $l" "$EMBR" dino attention --model "$m" --image "$WORK/test/images" -o "$WORK/pics_$l" \
    --masks-out "$WORK/masks_$l" --whole --size "$INPUT" --threads 1 -q >/dev/null
  score "$l (mean map)" "$WORK/masks_$l"
  [ "$HEADS" = 1 ] || return 0
  for h in $(seq 1 "$NHEADS"); do
    "$EMBR" dino attention --model "$m" --image "$WORK/test/images" -o "$WORK/pics_${l}_h$h" \
      --masks-out "$WORK/masks_${l}_h$h" --mask-head "$h" --whole --size "$INPUT" --threads 1 -q >/dev/null
    score "$l (head $h)" "$WORK/masks_${l}_h$h"
  done
}

header
echo "settings: N_TRAIN=$N_TRAIN TRAIN_SEED=$TRAIN_SEED BACKGROUNDS=$BACKGROUNDS SIZE=$SIZE INPUT=$INPUT LOCAL_SIZE=$LOCAL_SIZE LOCAL_CROPS=$LOCAL_CROPS" \
  "EPOCHS=$EPOCHS BATCH=$BATCH DINO_OUT=$DINO_OUT DINO_HIDDEN=$DINO_HIDDEN LR=$LR WARMUP=$WARMUP" \
  "TEACHER_TEMP=$TEACHER_TEMP MOMENTUM=$MOMENTUM DROP_PATH=$DROP_PATH GLOBAL_SCALE=$GLOBAL_SCALE LOCAL_SCALE=$LOCAL_SCALE SEED=$SEED"
[ -d "$WORK/train" ] || timed "make $N_TRAIN training composites" \
  "$PY" "$LOC" make --emoji "$EMOJI" --split train --n "$N_TRAIN" --size "$SIZE" --seed "$TRAIN_SEED" \
  --backgrounds "$BACKGROUNDS" --out "$WORK/train" >/dev/null
[ -d "$WORK/test" ] || timed "make 200 test composites" \
  "$PY" "$LOC" make --emoji "$EMOJI" --split test --n 200 --size "$SIZE" --seed 1 --out "$WORK/test" >/dev/null
"$PY" "$LOC" score --truth "$WORK/test" --pred "$WORK/test/masks" --json |
  "$PY" -c 'import json, sys; print("prior only: centred box of the truth'"'"'s area, mean IoU %.4f" % json.load(sys.stdin)["box_truth_area"])'

# Training sees the composite images only: a flat folder, no masks, no labels.
dino_args --data "$WORK/train/images" --input "$INPUT" --local-size "$LOCAL_SIZE"
"$EMBR" train "${COMMON[@]}" --epochs 0 -o "$WORK/untrained.safetensors" -q
masks untrained "$WORK/untrained.safetensors"
if [ "$EPOCHS" != 0 ]; then
  timed "DINO training ($EPOCHS epoch(s) over $N_TRAIN composites)" \
    "$EMBR" train "${COMMON[@]}" --epochs "$EPOCHS" -o "$WORK/dino.safetensors" -q
  masks dino "$WORK/dino.safetensors"
fi

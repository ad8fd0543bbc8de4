#!/usr/bin/env bash
# Command-line behaviour of `embr train --objective dino` on a small generated flat folder (no
# labels) with vit-tiny at 8 px (local crops of 4 px: one patch) and a small head: it trains, the
# saved teacher embeds, the same seed on one thread gives the same bytes, --epochs 0 writes the
# untrained network, a checkpoint resumes and one of another head does not, and bad input fails
# with one line, exit 1 or 2, and no output left.
# Usage: test_cli_dino.sh path/to/embr
set -u
EMBR=${1:?usage: test_cli_dino.sh path/to/embr}
. "$(dirname "$0")/cli_lib.sh"

D=$T/flat
mkdir -p "$D" "$T/empty" "$T/bad"
for v in 0 1 2 3 4 5 6 7; do pgm $((v % 4)) $v >"$D/$v.pgm"; done
cp "$D"/*.pgm "$T/bad/"
echo "not an image" >"$T/bad/x.pgm"
no_output() { [ -e "$1" ] && fail "a failed command left its output $1"; rm -f "$1"; }
# The shared flags; each call adds --dino-out, --batch and --local-size (a flag may be given once).
BASE=(--objective dino --input 8 --local-crops 2 --dino-hidden 32 --dino-bottleneck 8 --warmup 1 --threads 1 --seed 3)
SMALL=("${BASE[@]}" --dino-out 16 --batch 4 --local-size 4)

# ---- training, the saved teacher, determinism -----------------------------------------------------
expect 0 "wrote the teacher" -- "$EMBR" train "${SMALL[@]}" --data "$D" --epochs 2 -o "$T/a.safetensors" \
  --checkpoint "$T/ck.safetensors"
expect 0 "" -- "$EMBR" embed --model "$T/a.safetensors" --images "$D" -o "$T/a.npy" -q
"$EMBR" info "$T/a.npy" | grep -q "8 rows x 192 dims" || fail "embed with the DINO model: $("$EMBR" info "$T/a.npy" 2>&1)"
expect 0 "" -- "$EMBR" train "${SMALL[@]}" --data "$D" --epochs 2 -o "$T/b.safetensors" -q
cmp -s "$T/a.safetensors" "$T/b.safetensors" || fail "the same seed on one thread gave different models"
expect 0 "0 epochs" -- "$EMBR" train "${SMALL[@]}" --data "$D" --epochs 0 -o "$T/u.safetensors"
cmp -s "$T/a.safetensors" "$T/u.safetensors" && fail "training left the network as initialised"
expect 0 "" -- "$EMBR" embed --model "$T/u.safetensors" --images "$D" -o "$T/u.npy" -q
# --global-scale / --local-scale reach the crops: another area range, another model (same seed).
expect 0 "" -- "$EMBR" train "${SMALL[@]}" --data "$D" --epochs 2 --global-scale 0.6:1 --local-scale 0.2:0.5 -o "$T/s.safetensors" -q
cmp -s "$T/a.safetensors" "$T/s.safetensors" && fail "--global-scale / --local-scale changed nothing"
# The photometric flags: DINO's values given explicitly are the defaults (same bytes); each one set
# otherwise reaches the crops (another model, same seed).
expect 0 "" -- "$EMBR" train "${SMALL[@]}" --data "$D" --epochs 2 --jitter 0.8 --grayscale 0.2 --blur 1:0.1:0.5 \
  --solarize 0.2 -o "$T/c.safetensors" -q
cmp -s "$T/a.safetensors" "$T/c.safetensors" || fail "DINO's colour augmentation given as flags differs from the defaults"
for f in "--jitter 0" "--grayscale 1" "--blur 0:0:0" "--blur 1:0.1:0" "--solarize 1"; do
  # shellcheck disable=SC2086 # the flag and its value are two words
  expect 0 "" -- "$EMBR" train "${SMALL[@]}" --data "$D" --epochs 2 $f -o "$T/c.safetensors" -q
  cmp -s "$T/a.safetensors" "$T/c.safetensors" && fail "$f changed nothing"
done
# --input sets the evaluation transform's short side at DINO's ratio (36 px: 41; it was vit-tiny's 32,
# smaller than the crop, so the model could not embed).
expect 0 "" -- "$EMBR" train --objective dino --input 36 --dino-out 16 --dino-hidden 32 --dino-bottleneck 8 --data "$D" \
  --epochs 0 -o "$T/i.safetensors" -q
expect 0 "" -- "$EMBR" embed --model "$T/i.safetensors" --images "$D" -o "$T/i.npy" -q
# The local crops' default side is 32 * 96 / 224 = 13.7 rounded to whole patches of 4: 12 (it was 14,
# which does not tile, and training refused it): the same bytes as --local-size 12 given.
L32=(--objective dino --input 32 --local-crops 1 --dino-out 16 --dino-hidden 32 --dino-bottleneck 8 --batch 4
  --threads 1 --seed 3 --data "$D" --epochs 1)
expect 0 "" -- "$EMBR" train "${L32[@]}" -o "$T/l0.safetensors" -q
expect 0 "" -- "$EMBR" train "${L32[@]}" --local-size 12 -o "$T/l12.safetensors" -q
cmp -s "$T/l0.safetensors" "$T/l12.safetensors" || fail "the default local side at 32 px is not 12"
# ---- resume ------------------------------------------------------------------------------------------
expect 0 "wrote" -- "$EMBR" train "${SMALL[@]}" --data "$D" --epochs 3 --resume "$T/ck.safetensors" -o "$T/r.safetensors"
expect 1 "weight_g' has shape 16x1, the model expects 32x1" -- "$EMBR" train "${BASE[@]}" --dino-out 32 --batch 4 \
  --local-size 4 --data "$D" --epochs 3 --resume "$T/ck.safetensors" -o "$T/x.safetensors" -q
no_output "$T/x.safetensors"
expect 1 "not a training checkpoint" -- "$EMBR" train "${SMALL[@]}" --data "$D" --epochs 3 --resume "$T/a.safetensors" \
  -o "$T/x.safetensors" -q
no_output "$T/x.safetensors"

# ---- bad input (-q: without it the run's header line comes first, as for every objective) ------------
expect 1 "empty: no images" -- "$EMBR" train "${SMALL[@]}" --data "$T/empty" --epochs 1 -o "$T/x.safetensors" -q
no_output "$T/x.safetensors"
expect 1 "x.pgm: not a PNG, JPEG, PGM or PPM image" -- "$EMBR" train "${SMALL[@]}" --data "$T/bad" --epochs 1 -o "$T/x.safetensors" -q
no_output "$T/x.safetensors"
expect 1 "fewer than one batch of 16" -- "$EMBR" train "${BASE[@]}" --dino-out 16 --batch 16 --local-size 4 --data "$D" \
  --epochs 1 -o "$T/x.safetensors" -q
no_output "$T/x.safetensors"
expect 1 "multiple of 4, got 3x6x6" -- "$EMBR" train "${BASE[@]}" --dino-out 16 --batch 4 --local-size 6 --data "$D" \
  --epochs 1 -o "$T/x.safetensors" -q
no_output "$T/x.safetensors"
expect 2 "--local-crops is for --objective dino" -- "$EMBR" train --data "$D" --local-crops 3 -o "$T/x.safetensors"
no_output "$T/x.safetensors"
expect 2 "--pairs is for --objective clip" -- "$EMBR" train "${SMALL[@]}" --data "$D" --pairs "$T/p.tsv" -o "$T/x.safetensors"
no_output "$T/x.safetensors"
expect 2 "not in range|out of range|must be" -- "$EMBR" train "${SMALL[@]}" --data "$D" --teacher-temp 0 -o "$T/x.safetensors"
no_output "$T/x.safetensors"
expect 2 "--global-scale '0.5:2': expected A:B with 0 < A <= B <= 1" -- "$EMBR" train "${SMALL[@]}" --data "$D" \
  --global-scale 0.5:2 -o "$T/x.safetensors"
no_output "$T/x.safetensors"
expect 2 "--local-scale 'big': expected A:B" -- "$EMBR" train "${SMALL[@]}" --data "$D" --local-scale big -o "$T/x.safetensors"
no_output "$T/x.safetensors"
expect 2 "--local-scale '0.4:0.2': expected A:B with 0 < A <= B <= 1" -- "$EMBR" train "${SMALL[@]}" --data "$D" \
  --local-scale 0.4:0.2 -o "$T/x.safetensors"
no_output "$T/x.safetensors"
for f in "--jitter 1.5" "--grayscale -0.1" "--solarize 2"; do
  # shellcheck disable=SC2086
  expect 2 "${f%% *}" -- "$EMBR" train "${SMALL[@]}" --data "$D" $f -o "$T/x.safetensors"
  no_output "$T/x.safetensors"
done
for b in 1:0.1 1:0.1:0.5:1 1:2:0 a:b:c 1:0.1:; do
  expect 2 "--blur '$b': expected A:B:C, three probabilities in \\[0, 1\\]" -- "$EMBR" train "${SMALL[@]}" --data "$D" \
    --blur "$b" -o "$T/x.safetensors"
  no_output "$T/x.safetensors"
done
expect 2 "--jitter is for --objective dino" -- "$EMBR" train --data "$D" --jitter 0 -o "$T/x.safetensors"
no_output "$T/x.safetensors"
expect 2 "--global-scale is for --objective dino" -- "$EMBR" train --data "$D" --global-scale 0.5:1 -o "$T/x.safetensors"
no_output "$T/x.safetensors"
finish

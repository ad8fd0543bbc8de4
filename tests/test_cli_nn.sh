#!/usr/bin/env bash
# Command-line behaviour of `embr train`, `embr embed` and `embr eval` on a small generated
# image folder (grey PGM patterns, 4 classes): training end to end, embeddings and their names
# (also from a list file, standard input and a flat folder),
# verification and identification figures in range and better than chance, embeddings usable
# by `embr search`; bad inputs (a truncated image, one class, a model with a missing or
# mis-shaped tensor, a non-model file, bad flags) exit 1 or 2 with one line and leave no output.
# Usage: test_cli_nn.sh path/to/embr
set -u
EMBR=${1:?usage: test_cli_nn.sh path/to/embr}
. "$(dirname "$0")/cli_lib.sh"

D=$T/data
for c in 0 1 2 3; do
  mkdir -p "$D/c$c"
  for v in 0 1 2 3 4 5 6 7 8 9; do pgm $c $v >"$D/c$c/$v.pgm"; done
done

# ---- help ----------------------------------------------------------------------------------------
for sub in "train" "embed" "eval verify" "eval identify"; do
  # shellcheck disable=SC2086
  "$EMBR" $sub --help >"$T/help" 2>&1 || fail "$sub --help exits non-zero"
  grep -q -- "--model\|--data\|--images" "$T/help" || fail "$sub --help lists no inputs"
done
grep -q -- "--objective" <("$EMBR" train --help) || fail "train --help lacks --objective"
"$EMBR" eval --help >/dev/null || fail "eval --help exits non-zero"

# ---- end to end ------------------------------------------------------------------------------------
TRAIN=(train --arch resnet18 --width 4 --input 16 --channels 1 --embedding-dim 16 --batch 8
  --scale 16 --margin 0.2 --lr 0.05 --pad 1 --no-flip --threads 2 --seed 3)
expect 0 "wrote" -- "$EMBR" "${TRAIN[@]}" --data "$D" --epochs 12 -o "$T/m.safetensors"
[ -s "$T/m.safetensors" ] || fail "train wrote no model"
# The same seed and thread count give the same bytes.
expect 0 "wrote" -- "$EMBR" "${TRAIN[@]}" --data "$D" --epochs 12 -o "$T/m_again.safetensors"
cmp -s "$T/m.safetensors" "$T/m_again.safetensors" || fail "two trainings with one seed differ"
expect 0 "" -- "$EMBR" embed --model "$T/m.safetensors" --images "$D" -o "$T/e.npy" --ids "$T/ids.txt" --labels "$T/lab.txt" -q
[ "$(wc -l <"$T/ids.txt")" = 40 ] || fail "embed --ids: $(wc -l <"$T/ids.txt") lines, expected 40"
[ "$(head -n 1 "$T/ids.txt")" = "c0/0.pgm" ] || fail "embed --ids: first name $(head -n 1 "$T/ids.txt")"
[ "$(sort -u "$T/lab.txt" | tr '\n' ' ')" = "c0 c1 c2 c3 " ] || fail "embed --labels: $(sort -u "$T/lab.txt" | tr '\n' ' ')"
"$EMBR" info "$T/e.npy" | grep -q "40 rows x 16 dims" || fail "embed output is not 40 x 16: $("$EMBR" info "$T/e.npy")"
# A list file (paths relative to its folder, rows in its order, repeats kept) and a flat folder:
# the same vectors as the class folders give those images, names as written, one class.
mkdir -p "$T/lists" "$T/flat"
printf '../data/c1/3.pgm\r\n../data/c0/0.pgm\n%s/c1/3.pgm\n' "$D" >"$T/lists/l.txt"
expect 0 "" -- "$EMBR" embed --model "$T/m.safetensors" --images "$T/lists/l.txt" -o "$T/el.csv" --ids "$T/lids.txt" --labels "$T/llab.txt" -q
[ "$(cat "$T/lids.txt")" = "$(printf '../data/c1/3.pgm\n../data/c0/0.pgm\n%s/c1/3.pgm' "$D")" ] || fail "embed list --ids: $(cat "$T/lids.txt")"
[ "$(sort -u "$T/llab.txt")" = "$T/lists/l.txt" ] || fail "embed list --labels: $(sort -u "$T/llab.txt")"
"$EMBR" embed --model "$T/m.safetensors" --images "$D" -o "$T/e.csv" -q || fail "embed to csv failed"
# Row $2 of CSV $1 and row $4 of CSV $3 agree to 1e-5 (a batch's make-up moves the last float bits).
same_row() {
  awk -F, -v a="$2" -v b="$4" 'NR == FNR { if (FNR == a) split($0, x, ","); next }
    FNR == b { n = split($0, y, ","); for (i = 1; i <= n; i++) { d = x[i] - y[i]; if (d > 1e-5 || d < -1e-5) exit 1 }; ok = n > 0 }
    END { exit !ok }' "$1" "$3"
}
same_row "$T/el.csv" 1 "$T/e.csv" 14 || fail "list row 1 (c1/3.pgm) differs from the folder's row 14"
same_row "$T/el.csv" 2 "$T/e.csv" 1 || fail "list row 2 (c0/0.pgm) differs from the folder's row 1"
same_row "$T/el.csv" 3 "$T/el.csv" 1 || fail "a repeated list entry embeds differently"
same_row "$T/el.csv" 2 "$T/e.csv" 2 && fail "same_row cannot tell c0/0.pgm from c0/1.pgm"
(cd "$D/c0" && printf '1.pgm\n0.pgm\n' | "$EMBR" embed --model "$T/m.safetensors" --images - -o "$T/es.csv" --ids "$T/sids.txt" -q) ||
  fail "embed --images - (stdin) failed"
[ "$(tr '\n' ' ' <"$T/sids.txt")" = "1.pgm 0.pgm " ] || fail "embed stdin list --ids: $(cat "$T/sids.txt")"
cp "$D/c2/"*.pgm "$T/flat/"
expect 0 "" -- "$EMBR" embed --model "$T/m.safetensors" --images "$T/flat" -o "$T/ef.npy" --ids "$T/fids.txt" -q
[ "$(tr '\n' ' ' <"$T/fids.txt")" = "0.pgm 1.pgm 2.pgm 3.pgm 4.pgm 5.pgm 6.pgm 7.pgm 8.pgm 9.pgm " ] || fail "embed flat --ids: $(cat "$T/fids.txt")"
"$EMBR" info "$T/ef.npy" | grep -q "10 rows x 16 dims" || fail "embed flat folder is not 10 x 16: $("$EMBR" info "$T/ef.npy")"
# Bad lists: one line naming the list and the line; no output left.
printf '../data/c0/0.pgm\n../data/c0/missing.pgm\n' >"$T/lists/bad.txt"
expect 1 "bad.txt: line 2: .*missing.pgm" -- "$EMBR" embed --model "$T/m.safetensors" --images "$T/lists/bad.txt" -o "$T/x.npy"
printf '../data/c0/0.pgm\nl.txt\n' >"$T/lists/bad.txt"
expect 1 "bad.txt: line 2: .*not a PNG, JPEG, PGM or PPM image" -- "$EMBR" embed --model "$T/m.safetensors" --images "$T/lists/bad.txt" -o "$T/x.npy"
: >"$T/lists/empty.txt"
expect 1 "empty.txt: no image paths" -- "$EMBR" embed --model "$T/m.safetensors" --images "$T/lists/empty.txt" -o "$T/x.npy"
mkdir -p "$T/noimg"
expect 1 "noimg: no images" -- "$EMBR" embed --model "$T/m.safetensors" --images "$T/noimg" -o "$T/x.npy"
[ -e "$T/x.npy" ] && fail "a failed embed from a list left its output"
# Verification: accuracy well above chance (the pairs are 27 % positive: always "different" scores 0.73).
"$EMBR" eval verify --model "$T/m.safetensors" --data "$D" --json -q >"$T/v.json" || fail "eval verify failed"
acc=$(sed -n 's/.*"accuracy":\([0-9.]*\).*/\1/p' "$T/v.json")
awk -v a="$acc" 'BEGIN { exit !(a >= 0.9 && a <= 1) }' || fail "verification accuracy $acc (want >= 0.9): $(cat "$T/v.json")"
grep -q '"pairs":780' "$T/v.json" || fail "all pairs of 40 images are 780: $(cat "$T/v.json")"
"$EMBR" eval identify --model "$T/m.safetensors" --data "$D" --gallery-per-class 2 -k 1,3 --json -q >"$T/i.json" ||
  fail "eval identify failed"
r1=$(sed -n 's/.*"rank1":\([0-9.]*\).*/\1/p' "$T/i.json")
awk -v a="$r1" 'BEGIN { exit !(a >= 0.8) }' || fail "rank-1 $r1 (want >= 0.8): $(cat "$T/i.json")"
grep -q '"probes":32' "$T/i.json" || fail "4 classes x 8 probes: $(cat "$T/i.json")"
# Selections: classes 2..3, images 5.. of each.
"$EMBR" eval verify --model "$T/m.safetensors" --data "$D" --classes 2:4 --per-class 5: --folds 5 --json -q >"$T/s.json" ||
  fail "eval verify with a selection failed"
grep -q '"images":10,"pairs":45' "$T/s.json" || fail "selection 2:4 x 5: gives 10 images: $(cat "$T/s.json")"
# The embeddings feed exact search: each image's nearest neighbour (itself excluded) is of its class.
expect 0 "" -- "$EMBR" search --base "$T/e.npy" --query "$T/e.npy" -k 2 --metric cosine --out-ids "$T/nn.ivecs" --quiet
# A checkpoint resumes.
expect 0 "wrote" -- "$EMBR" "${TRAIN[@]}" --data "$D" --epochs 2 -o "$T/c.safetensors" --checkpoint "$T/ck.safetensors"
expect 0 "wrote" -- "$EMBR" "${TRAIN[@]}" --data "$D" --epochs 3 -o "$T/c2.safetensors" --resume "$T/ck.safetensors"

# ---- bad input ---------------------------------------------------------------------------------------
mkdir -p "$T/bad/a" "$T/bad/b" "$T/one/a"
cp "$D"/c0/*.pgm "$T/bad/a/"
cp "$D"/c1/*.pgm "$T/bad/b/"
head -c 100 "$D/c1/3.pgm" >"$T/bad/b/3.pgm"
expect 1 "b/3.pgm" -- "$EMBR" "${TRAIN[@]}" --data "$T/bad" --epochs 1 -o "$T/x.safetensors" -q
[ -e "$T/x.safetensors" ] && fail "a failed training left its output"
cp "$D"/c0/*.pgm "$T/one/a/"
expect 1 "2 classes" -- "$EMBR" "${TRAIN[@]}" --data "$T/one" --epochs 1 -o "$T/x.safetensors" -q
expect 1 "" -- "$EMBR" "${TRAIN[@]}" --data "$T/nowhere" --epochs 1 -o "$T/x.safetensors" -q
expect 1 "not an embr model|safetensors" -- "$EMBR" embed --model "$D/c0/0.pgm" --images "$D" -o "$T/x.npy"
# A model with a tensor renamed (missing) and one with a shape changed in its header.
sed 's/"layer1.0.conv1.weight"/"layer1.0.conv1.weighX"/' "$T/m.safetensors" >"$T/missing.safetensors"
expect 1 "layer1.0.conv1.weight.*missing" -- "$EMBR" embed --model "$T/missing.safetensors" --images "$D" -o "$T/x.npy"
sed 's/"embr.embedding_dim":"16"/"embr.embedding_dim":"17"/' "$T/m.safetensors" >"$T/dim.safetensors"
expect 1 "shape" -- "$EMBR" embed --model "$T/dim.safetensors" --images "$D" -o "$T/x.npy"
head -c 2000 "$T/m.safetensors" >"$T/trunc.safetensors"
expect 1 "" -- "$EMBR" eval verify --model "$T/trunc.safetensors" --data "$D"
[ -e "$T/x.npy" ] && fail "a failed embed left its output"
# Model metadata is parsed strictly: a width of 4096 in a width-4 file is a shape error, not a 4096-wide network.
sed 's/"embr.width":"4"/"embr.width":"4096"/' "$T/m.safetensors" >"$T/wide.safetensors"
expect 1 "wide.safetensors.*shape" -- "$EMBR" embed --model "$T/wide.safetensors" --images "$D" -o "$T/x.npy"
# Plain PyTorch weights: the same tensors without embr's metadata (blanked to JSON spaces) load with --arch.
perl -0pe 's/"__metadata__":\{[^}]*\},?/" " x length($&)/e' "$T/m.safetensors" >"$T/plain.safetensors"
expect 1 "no embr.arch.*--arch" -- "$EMBR" embed --model "$T/plain.safetensors" --images "$D" -o "$T/x.npy"
expect 0 "" -- "$EMBR" embed --model "$T/plain.safetensors" --arch resnet18 --input-size 16 --images "$D" -o "$T/ep.npy" -q
cmp -s "$T/e.npy" "$T/ep.npy" || fail "plain weights loaded with --arch embed differently"
expect 2 "arch" -- "$EMBR" embed --model "$T/plain.safetensors" --arch vgg --images "$D" -o "$T/x.npy"
# Training that diverges stops with the step, exit 1, and writes no model.
expect 1 "diverged at step" -- "$EMBR" train --arch resnet18 --width 4 --input 16 --channels 1 --embedding-dim 16 \
  --batch 8 --objective softmax --lr 100 --clip 0 --warmup 0 --data "$D" --epochs 3 -o "$T/div.safetensors" -q
[ -e "$T/div.safetensors" ] && fail "a diverged training wrote a model"
# Flags.
expect 2 "unknown architecture 'nope'" -- "$EMBR" train --data "$T/nowhere" -o "$T/x.safetensors" --arch nope
expect 2 "optimizer" -- "$EMBR" train --data "$D" -o "$T/x.safetensors" --optimizer nope
expect 2 "objective" -- "$EMBR" train --data "$D" -o "$T/x.safetensors" --objective nope
expect 2 "" -- "$EMBR" train --data "$D" -o "$T/x.safetensors" --batch 1
expect 2 "" -- "$EMBR" eval verify --model "$T/m.safetensors" --data "$D" --classes 3:1
expect 2 "" -- "$EMBR" eval identify --model "$T/m.safetensors" --data "$D" -k 0
expect 2 "subcommand" -- "$EMBR" eval nope
finish

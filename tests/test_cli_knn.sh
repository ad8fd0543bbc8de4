#!/usr/bin/env bash
# `embr eval knn`: the hand-computed case of test_evaluate through embedding files with text labels;
# raw pixels of a class folder agree with the same pixels given as embeddings, and list files with
# the per-class selections; a model's figures equal those of its embeddings written by `embed`; argument and file errors exit 2 / 1 with one line and print nothing.
# Usage: test_cli_knn.sh path/to/embr
set -u
EMBR=${1:?usage: test_cli_knn.sh path/to/embr}
. "$(dirname "$0")/cli_lib.sh"

# ---- the hand-computed case (tests/test_evaluate.c, test_knn_hand_computed) -----------------------
printf '1,0\n0.6,0.8\n0.6,-0.8\n-1,0\n' >"$T/tr.csv"
printf 'five\nnine\nnine\ntwo\n' >"$T/tr.txt"
printf '2,0\n0,-3\n' >"$T/te.csv"
printf 'five\ntwo\n' >"$T/te.txt"
E=(--train-emb "$T/tr.csv" --train-labels "$T/tr.txt" --test-emb "$T/te.csv" --test-labels "$T/te.txt")
expect 0 "" -- "$EMBR" eval knn "${E[@]}" -k 3 --json
grep -q '"k":3,"temperature":0.07,"top1":0.500000,"top5":1.000000' "$T/out" || fail "T 0.07: $(cat "$T/out")"
expect 0 "" -- "$EMBR" eval knn "${E[@]}" -k 3 --temperature 1
grep -q 'top-1 0.0000, top-5 1.0000' "$T/out" || fail "T 1: $(cat "$T/out")"

# ---- raw pixels == the same pixels as embeddings == list files ----------------------------------
mkdir -p "$T/data"
for c in 0 1 2 3; do
  mkdir -p "$T/data/c$c"
  for v in 0 1 2 3 4 5 6 7; do pgm $c $v >"$T/data/c$c/$v.pgm"; done
done
# the pixel rows of a PGM (P2, 20 x 20) as one CSV line
pixels() { awk 'NR > 3 { for (i = 1; i <= NF; i++) v[n++] = $i } END { s = v[0]; for (i = 1; i < n; i++) s = s "," v[i]; print s }' "$1"; }
: >"$T/mem.csv"; : >"$T/mem.txt"; : >"$T/qry.csv"; : >"$T/qry.txt"; : >"$T/mem.tsv"; : >"$T/qry.tsv"
for c in 0 1 2 3; do
  for v in 0 1 2 3 4 5 6 7; do
    if [ $v -lt 5 ]; then side=mem; else side=qry; fi
    pixels "$T/data/c$c/$v.pgm" >>"$T/$side.csv"
    echo "c$c" >>"$T/$side.txt"
    printf 'c%s/%s.pgm\tc%s\n' $c $v $c >>"$T/$side.tsv"
  done
done
expect 0 "" -- "$EMBR" eval knn --raw --raw-size 20 --data "$T/data" --train-per-class 0:5 --test-per-class 5: -k 4 --json -q
cp "$T/out" "$T/raw.json"
grep -q '"features":"raw pixels","train":20,"test":12,"classes":4,"k":4' "$T/raw.json" || fail "raw: $(cat "$T/raw.json")"
expect 0 "" -- "$EMBR" eval knn --train-emb "$T/mem.csv" --train-labels "$T/mem.txt" --test-emb "$T/qry.csv" --test-labels "$T/qry.txt" -k 4 --json
[ "$(sed 's/"features":"[a-z ]*",//' "$T/out")" = "$(sed 's/"features":"[a-z ]*",//' "$T/raw.json")" ] ||
  fail "embeddings of the same pixels: $(cat "$T/out") vs $(cat "$T/raw.json")"
expect 0 "" -- "$EMBR" eval knn --raw --raw-size 20 --data "$T/data" --train-list "$T/mem.tsv" --test-list "$T/qry.tsv" -k 4 --json -q
[ "$(cat "$T/out")" = "$(cat "$T/raw.json")" ] || fail "list files: $(cat "$T/out") vs $(cat "$T/raw.json")"
# these stripes are easy: raw pixels find most classes (a check that the figures are not noise)
grep -qE '"top1":(0\.[5-9]|1\.0)' "$T/raw.json" || fail "raw top-1 suspiciously low: $(cat "$T/raw.json")"

# ---- a model: the same figures as its embeddings written by `embed` ------------------------------
expect 0 "wrote" -- "$EMBR" train --arch resnet18 --width 4 --input 16 --channels 1 --embedding-dim 16 --batch 8 \
  --epochs 1 --threads 2 --seed 3 --data "$T/data" -o "$T/m.safetensors"
expect 0 "" -- "$EMBR" eval knn --model "$T/m.safetensors" --data "$T/data" --train-per-class 0:5 --test-per-class 5: -k 4 --json -q
cp "$T/out" "$T/model.json"
grep -q '"features":"model","train":20,"test":12' "$T/model.json" || fail "model: $(cat "$T/model.json")"
cut -f1 "$T/mem.tsv" | sed "s|^|$T/data/|" >"$T/mem.list"
cut -f1 "$T/qry.tsv" | sed "s|^|$T/data/|" >"$T/qry.list"
expect 0 "" -- "$EMBR" embed --model "$T/m.safetensors" --images "$T/mem.list" -o "$T/mem_m.npy" -q
expect 0 "" -- "$EMBR" embed --model "$T/m.safetensors" --images "$T/qry.list" -o "$T/qry_m.npy" -q
expect 0 "" -- "$EMBR" eval knn --train-emb "$T/mem_m.npy" --train-labels "$T/mem.txt" --test-emb "$T/qry_m.npy" --test-labels "$T/qry.txt" -k 4 --json
[ "$(sed 's/"features":"[a-z ]*",//' "$T/out")" = "$(sed 's/"features":"[a-z ]*",//' "$T/model.json")" ] ||
  fail "model vs its embeddings: $(cat "$T/model.json") vs $(cat "$T/out")"

# ---- errors -------------------------------------------------------------------------------------
expect 2 "one feature source" -- "$EMBR" eval knn --data "$T/data" --train-per-class 0:5 --test-per-class 5:
expect 2 "one feature source" -- "$EMBR" eval knn --raw --model x.embr --data "$T/data" --train-per-class 0:5 --test-per-class 5:
expect 2 "per-class" -- "$EMBR" eval knn --raw --data "$T/data" --train-per-class 0:5
expect 2 "share 8 images" -- "$EMBR" eval knn --raw --data "$T/data" --train-per-class 0:5 --test-per-class 3:
expect 2 "needs --train-labels" -- "$EMBR" eval knn --train-emb "$T/tr.csv" --test-emb "$T/te.csv"
expect 2 "go together" -- "$EMBR" eval knn --raw --data "$T/data" --train-list "$T/mem.tsv"
expect 2 "temperature" -- "$EMBR" eval knn "${E[@]}" --temperature 0
expect 1 "te.txt: 2 labels for 4 rows" -- "$EMBR" eval knn --train-emb "$T/tr.csv" --train-labels "$T/te.txt" --test-emb "$T/te.csv" --test-labels "$T/te.txt"
printf '1,0,0\n' >"$T/te3.csv"; printf 'five\n' >"$T/te3.txt"
expect 1 "dimension 3 does not match" -- "$EMBR" eval knn "${E[@]:0:4}" --test-emb "$T/te3.csv" --test-labels "$T/te3.txt"
printf 'five\n\n' >"$T/empty.txt"
expect 1 "empty.txt:2: empty label" -- "$EMBR" eval knn "${E[@]:0:4}" --test-emb "$T/te.csv" --test-labels "$T/empty.txt"
{ cat "$T/mem.tsv"; head -1 "$T/mem.tsv"; } >"$T/dup.tsv"
expect 1 "dup.tsv:21: c0/0.pgm is listed a second time" -- "$EMBR" eval knn --raw --data "$T/data" --train-list "$T/dup.tsv" --test-list "$T/qry.tsv"
printf 'c0/nope.pgm\tc0\n' >"$T/missing.tsv"
expect 1 "nope.pgm" -- "$EMBR" eval knn --raw --data "$T/data" --train-list "$T/missing.tsv" --test-list "$T/qry.tsv"
expect 1 "missing" -- "$EMBR" eval knn --raw --data "$T/missing" --train-per-class 0:5 --test-per-class 5:
printf 'P5\n20 20\n255\nxx' >"$T/data/c1/9.pgm"
expect 1 "9.pgm" -- "$EMBR" eval knn --raw --data "$T/data" --train-per-class 0:5 --test-per-class 5: -q
[ -s "$T/out" ] && fail "an error printed results: $(cat "$T/out")"
finish

#!/usr/bin/env bash
# The README demo, end to end: build an English corpus from Debian packages and train word
# vectors on it, show nearest words and analogies; then generate clustered vectors, search them
# exactly with each metric, score one metric against another, convert between formats.
# Outputs go to demo-out/ (DEMO_OUT overrides).
#   scripts/demo.sh [path/to/embr]
set -euo pipefail
EMBR=${1:-build/embr}
OUT=${DEMO_OUT:-demo-out}
mkdir -p "$OUT"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { echo "\$ embr ${*}"; "$EMBR" "$@"; }

HERE=$(cd "$(dirname "$0")" && pwd)
SHARED=${SHARED_DATA:-$HERE/../../shared/data}

step "Word vectors: a ~9.5M-word English corpus from Debian packages (dictionaries, WordNet, ...)"
"$HERE/build-corpus.sh" "$OUT/corpus.txt" "$OUT/corpus-debs"
run w2v train -i "$OUT/corpus.txt" -o "$OUT/vectors.bin" --dim 100 --window 5 --negative 5 --sample 1e-4 --epochs 5

step "Nearest words (cosine similarity)"
for w in computer music ship; do
  echo "-- $w"
  "$EMBR" w2v similar "$OUT/vectors.bin" "$w" -k 6
done

step "Analogies: a is to b as c is to ?"
run w2v analogy "$OUT/vectors.bin" man king woman
run w2v analogy "$OUT/vectors.bin" good better bad -k 3
run w2v analogy "$OUT/vectors.bin" son daughter father -k 3
if [ -f "$SHARED/w2v/questions-words.txt" ]; then
  step "The Google analogy benchmark (restricted to the 30,000 most frequent words)"
  run w2v eval "$OUT/vectors.bin" "$SHARED/w2v/questions-words.txt" | tail -2
fi

step "Vectors: 200,000 x 96 from a mixture of 200 anisotropic Gaussian clusters, plus 2,000 queries"
run synth -n 200000 --dim 96 --clusters 200 --seed 7 -o "$OUT/base.fvecs" --queries 2000 --query-out "$OUT/queries.fvecs"
run info "$OUT/base.fvecs"

step "Exact search, all 2,000 queries, 10 nearest by squared Euclidean distance"
run search --base "$OUT/base.fvecs" --query "$OUT/queries.fvecs" -k 10 --metric l2 --out-ids "$OUT/l2.ivecs" --out-dist "$OUT/l2.fvecs"

step "The first three queries' 5 nearest under each metric (id:distance; ip/cosine: larger is closer)"
run convert "$OUT/queries.fvecs" "$OUT/queries.csv"
head -n 3 "$OUT/queries.csv" >"$OUT/three.csv"
for m in l2 cosine ip l1; do
  echo "-- $m"
  "$EMBR" search --base "$OUT/base.fvecs" --query "$OUT/three.csv" -k 5 --metric $m --quiet
done

step "How often does cosine / Manhattan agree with Euclidean on the 10 nearest?"
for m in cosine l1; do
  "$EMBR" search --base "$OUT/base.fvecs" --query "$OUT/queries.fvecs" -k 10 --metric $m --quiet --out-ids "$OUT/$m.ivecs"
  printf '%-7s vs l2: ' "$m"
  "$EMBR" recall --truth "$OUT/l2.ivecs" --ids "$OUT/$m.ivecs" -k 10
done

step "Formats: the same vectors as NumPy .npy; JSON output for programs"
run convert "$OUT/base.fvecs" "$OUT/base.npy"
run info "$OUT/base.npy" --json
"$EMBR" search --base "$OUT/base.npy" --query "$OUT/three.csv" -k 3 --json --quiet | head -c 400
echo
echo
echo "demo finished: outputs in $OUT/"

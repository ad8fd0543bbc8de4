#!/usr/bin/env bash
# Command-line behaviour of `embr tsne`: help with defaults; a map of three generated blobs end to
# end (TSV with labels, .npy, PNG plot, 3-D); `tsne eval` (KL, preservation, accuracy); `tsne
# transform`; `--precomputed dense` and `sparse`; exit codes and one-line messages for bad input
# (1) and bad flags (2); no output left by a failed run; identical files for --threads 1 and a
# fixed seed.
# Usage: test_cli_tsne.sh path/to/embr
set -u
EMBR=${1:?usage: test_cli_tsne.sh path/to/embr}
. "$(dirname "$0")/cli_lib.sh"

# ---- help --------------------------------------------------------------------------------------------
# Each flag with its shown default (or "(required)"); every option line shows one of the two.
check_help() { # "sub command words" then "flag|default" pairs
  local sub=$1
  shift
  # shellcheck disable=SC2086
  "$EMBR" tsne $sub --help >"$T/help" 2>&1 || fail "tsne $sub --help: exit $?"
  for fd in "$@"; do
    local flag=${fd%%|*} def=${fd#*|}
    local line
    line=$(grep -E -- "^ +([-a-z]+, )?${flag}[ ,]" "$T/help" | head -1)
    if [ -z "$line" ]; then
      fail "tsne $sub --help does not list $flag"
    elif ! grep -qF -- "$def" <<<"$line"; then
      fail "tsne $sub --help: $flag shows no '$def': $line"
    fi
  done
  grep -E '^ +-' "$T/help" | grep -vE -- '--help' | grep -vE '\[default: |\(required\)' | while read -r l; do
    echo "FAIL: tsne $sub --help: an option without default: $l" >&2
    echo x >>"$T/help_fail"
  done
}
common=("--dims|[default: 2]" "--perplexity|[default: 30]" "--iters|[default: 1000]" "--exaggeration|[default: 12]"
  "--exaggeration-iters|[default: 250]" "--learning-rate|[default: auto]" "--method|[default: auto]"
  "--theta|[default: 0.5]" "--init|[default: pca]" "--pca|[default: -1]" "--metric|[default: l2]"
  "--seed|[default: 1]" "--threads|[default: 0]" "--format|[default: by extension]" "--quiet|[default: off]")
check_help "" "--input|(required)" "--output|(required)" "--labels|[default: none]" "--plot|[default: none]" \
  "--title|[default: the input file name]" "--precomputed|[default: none]" "${common[@]}"
grep -q "transform" "$T/help" && grep -q "eval" "$T/help" || fail "tsne --help does not mention transform and eval"
check_help transform "--ref|(required)" "--ref-map|(required)" "--input|(required)" "--output|(required)" "${common[@]}"
check_help eval "--input|(required)" "--map|(required)" "--labels|[default: none]" "-k|[default: 10]" \
  "--json|[default: off]" "${common[@]}"
[ -e "$T/help_fail" ] && fails=$((fails + $(wc -l <"$T/help_fail")))
"$EMBR" --help | grep -q "tsne" || fail "embr --help does not list tsne"

# ---- data: three blobs in 10-D, 150 points (awk's srand(3): reproducible) --------------------------------
gen_blobs() { # n seed_points x_out labels_out (centres always from seed 3)
  awk -v n="$1" -v ps="$2" -v X="$3" -v L="$4" 'BEGIN {
    srand(3)
    for (c = 0; c < 3; c++) for (j = 0; j < 10; j++) C[c, j] = (rand() - 0.5) * 30
    srand(ps)
    for (i = 0; i < n; i++) {
      c = i % 3; line = ""
      for (j = 0; j < 10; j++) {
        u1 = rand(); u2 = rand()
        z = sqrt(-2 * log(1 - u1)) * cos(6.283185307179586 * u2)
        line = line (j ? "," : "") sprintf("%.5f", C[c, j] + z)
      }
      print line > X
      print "blob" c > L
    }
  }'
}
gen_blobs 150 11 "$T/x.csv" "$T/labels.txt"
[ "$(wc -l <"$T/x.csv")" = 150 ] || fail "generated $(wc -l <"$T/x.csv") rows"

# ---- end to end: TSV with labels, plot ------------------------------------------------------------------
expect 0 "" -- "$EMBR" tsne -i "$T/x.csv" -o "$T/map.tsv" --labels "$T/labels.txt" --plot "$T/map.png" --threads 1 --quiet
[ "$(wc -l <"$T/map.tsv")" = 150 ] || fail "map.tsv has $(wc -l <"$T/map.tsv") lines, expected 150"
awk -F'\t' 'NF != 3 || $1 !~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/ || $2 !~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/ { bad++ }
  END { exit bad > 0 }' "$T/map.tsv" || fail "map.tsv lines are not 'x<TAB>y<TAB>label': $(head -2 "$T/map.tsv")"
cut -f3 "$T/map.tsv" | cmp -s - "$T/labels.txt" || fail "map.tsv: the last column is not the labels, in order"
[ "$(head -c 8 "$T/map.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "map.png is not a PNG"
[ -s "$T/out" ] && fail "--quiet run printed to stdout: $(head -c 200 "$T/out")"
[ -s "$T/err" ] && fail "--quiet run printed to stderr: $(head -c 200 "$T/err")"
# without --quiet: a summary with the KL on stderr
expect 0 "KL [0-9]" -- "$EMBR" tsne -i "$T/x.csv" -o "$T/map2.tsv" --iters 60 --threads 1
# 3-D, Barnes-Hut
expect 0 "" -- "$EMBR" tsne -i "$T/x.csv" -o "$T/map3.tsv" --labels "$T/labels.txt" --dims 3 --method bh --iters 300 --threads 1 --quiet
awk -F'\t' 'NF != 4 { bad++ } END { exit bad > 0 || NR != 150 }' "$T/map3.tsv" || fail "3-D map.tsv: $(head -2 "$T/map3.tsv")"

# ---- .npy output -------------------------------------------------------------------------------------------
expect 0 "" -- "$EMBR" tsne -i "$T/x.csv" -o "$T/map.npy" --threads 1 --quiet # the same run as map.tsv
[ "$(head -c 6 "$T/map.npy" | od -An -c | tr -d ' \n')" = "223NUMPY" ] || fail "map.npy has no NumPy magic"
"$EMBR" info "$T/map.npy" >"$T/info" 2>&1 || fail "embr info map.npy: exit $?"
grep -q "150 rows x 2 dims" "$T/info" || fail "map.npy: $(cat "$T/info")"
# the .npy holds the same coordinates as the TSV of the same run (same seed, one thread)
expect 0 "" -- "$EMBR" convert "$T/map.npy" "$T/map_npy.tsv"
paste "$T/map_npy.tsv" <(cut -f1,2 "$T/map.tsv") | awk -F'\t' '{ for (c = 1; c <= 2; c++) { d = $c - $(c + 2); if (d < 0) d = -d; if (d > 1e-4 * (1 + ($c < 0 ? -$c : $c))) bad++ } }
  END { exit bad > 0 }' || fail ".npy and .tsv of the same run differ: $(paste "$T/map_npy.tsv" "$T/map.tsv" | head -2)"

# ---- eval --------------------------------------------------------------------------------------------------
expect 0 "" -- "$EMBR" tsne eval -i "$T/x.csv" --map "$T/map.npy" --labels "$T/labels.txt" --threads 1
grep -qE "KL [0-9]+\.[0-9]+" "$T/out" || fail "eval prints no KL: $(cat "$T/out")"
grep -qE "preservation [0-9]+\.[0-9]+" "$T/out" || fail "eval prints no preservation: $(cat "$T/out")"
acc=$(sed -nE 's/.*label accuracy ([0-9.]+).*/\1/p' "$T/out")
awk -v a="${acc:-0}" 'BEGIN { exit !(a >= 0.9) }' || fail "eval: label accuracy '${acc}' < 0.9: $(cat "$T/out")"
pres=$(sed -nE 's/.*preservation ([0-9.]+).*/\1/p' "$T/out")
awk -v a="${pres:-0}" 'BEGIN { exit !(a > 0.3 && a <= 1) }' || fail "eval: preservation '${pres}': $(cat "$T/out")"
expect 0 "" -- "$EMBR" tsne eval -i "$T/x.csv" --map "$T/map.npy" --labels "$T/labels.txt" --json -k 5
grep -qE '^\{"points":150,"kl":[0-9.]+,"knn_preservation":[0-9.]+,"knn_accuracy":(1\.0+|0\.9[0-9]*),"k":5\}$' "$T/out" ||
  fail "eval --json: $(cat "$T/out")"
# without labels: accuracy n/a
expect 0 "" -- "$EMBR" tsne eval -i "$T/x.csv" --map "$T/map.npy"
grep -q "accuracy n/a" "$T/out" || fail "eval without labels: $(cat "$T/out")"
# a numeric TSV map (no label column) is read too
expect 0 "" -- "$EMBR" tsne eval -i "$T/x.csv" --map "$T/map_npy.tsv" --labels "$T/labels.txt"
# the map of other points
head -n 100 "$T/x.csv" >"$T/x100.csv"
expect 1 "map.npy" -- "$EMBR" tsne eval -i "$T/x100.csv" --map "$T/map.npy"

# ---- transform -------------------------------------------------------------------------------------------------
head -n 120 "$T/x.csv" >"$T/ref.csv"
head -n 120 "$T/labels.txt" >"$T/ref_labels.txt"
gen_blobs 60 12 "$T/new.csv" "$T/new_labels.txt" # new points from the same blobs
expect 0 "" -- "$EMBR" tsne -i "$T/ref.csv" -o "$T/ref_map.tsv" --iters 500 --threads 1 --quiet
expect 0 "" -- "$EMBR" tsne transform --ref "$T/ref.csv" --ref-map "$T/ref_map.tsv" -i "$T/new.csv" -o "$T/new_map.tsv" --quiet
[ "$(wc -l <"$T/new_map.tsv")" = 60 ] || fail "transform wrote $(wc -l <"$T/new_map.tsv") lines, expected 60"
# each new point's nearest reference point in the map is of its blob (>= 90%)
good=$(awk -F'\t' 'FILENAME == ARGV[1] { rx[FNR] = $1; ry[FNR] = $2; nr = FNR; next }
  FILENAME == ARGV[2] { rl[FNR] = $0; next }
  FILENAME == ARGV[3] { nl[FNR] = $0; next }
  { best = -1; for (j = 1; j <= nr; j++) { d = ($1 - rx[j]) ^ 2 + ($2 - ry[j]) ^ 2; if (best < 0 || d < bd) { bd = d; best = j } }
    ok += rl[best] == nl[FNR] }
  END { print ok + 0 }' "$T/ref_map.tsv" "$T/ref_labels.txt" "$T/new_labels.txt" "$T/new_map.tsv")
[ "$good" -ge 54 ] || fail "transform: only $good of 60 new points land next to their blob"
# .npy reference map and output
expect 0 "" -- "$EMBR" tsne -i "$T/ref.csv" -o "$T/ref_map.npy" --iters 500 --threads 1 --quiet
expect 0 "" -- "$EMBR" tsne transform --ref "$T/ref.csv" --ref-map "$T/ref_map.npy" -i "$T/new.csv" -o "$T/new_map.npy" --quiet
"$EMBR" info "$T/new_map.npy" 2>&1 | grep -q "60 rows x 2 dims" || fail "transform .npy output: $("$EMBR" info "$T/new_map.npy" 2>&1)"
# mismatches: reference map rows, new points' dimension
expect 1 "rows" -- "$EMBR" tsne transform --ref "$T/x.csv" --ref-map "$T/ref_map.tsv" -i "$T/new.csv" -o "$T/bad_new.tsv"
cut -d, -f1-9 "$T/new.csv" >"$T/new9.csv"
expect 1 "dimension" -- "$EMBR" tsne transform --ref "$T/ref.csv" --ref-map "$T/ref_map.tsv" -i "$T/new9.csv" -o "$T/bad_new.tsv"
[ -e "$T/bad_new.tsv" ] && fail "a failed transform left its output"

# ---- precomputed distances -------------------------------------------------------------------------------------
# dense: the n x n Euclidean distance matrix of x.csv
awk -F, '{ for (j = 1; j <= NF; j++) X[NR, j] = $j; d = NF }
  END { for (i = 1; i <= NR; i++) { line = ""
          for (k = 1; k <= NR; k++) { s = 0; for (j = 1; j <= d; j++) s += (X[i, j] - X[k, j]) ^ 2
            line = line (k > 1 ? "," : "") sprintf("%.5f", sqrt(s)) }
          print line } }' "$T/x.csv" >"$T/dist.csv"
expect 0 "" -- "$EMBR" tsne -i "$T/dist.csv" --precomputed dense -o "$T/pre.tsv" --labels "$T/labels.txt" --iters 500 --threads 1 --quiet
[ "$(wc -l <"$T/pre.tsv")" = 150 ] || fail "precomputed map has $(wc -l <"$T/pre.tsv") lines"
cut -f3 "$T/pre.tsv" | cmp -s - "$T/labels.txt" || fail "precomputed map.tsv: labels not in the last column"
cut -f1,2 "$T/pre.tsv" >"$T/pre_xy.tsv"
expect 0 "" -- "$EMBR" tsne eval -i "$T/x.csv" --map "$T/pre_xy.tsv" --labels "$T/labels.txt"
acc=$(sed -nE 's/.*label accuracy ([0-9.]+).*/\1/p' "$T/out")
awk -v a="${acc:-0}" 'BEGIN { exit !(a >= 0.9) }' || fail "precomputed dense map: accuracy '${acc}' < 0.9"
# sparse: "i j distance" rows (each point's 40 nearest, from the dense matrix)
awk -F, '{ n = 0; for (k = 1; k <= NF; k++) if (k != NR) { n++; D[n] = $k; I[n] = k - 1 }
    for (t = 1; t <= 40; t++) { b = 0; for (k = 1; k <= n; k++) if (!U[k] && (b == 0 || D[k] < D[b])) b = k
      U[b] = 1; printf "%d,%d,%s\n", NR - 1, I[b], D[b] }
    delete U }' "$T/dist.csv" >"$T/sparse.csv"
expect 0 "" -- "$EMBR" tsne -i "$T/sparse.csv" --precomputed sparse --perplexity 10 -o "$T/sp.npy" --iters 500 --threads 1 --quiet
expect 0 "" -- "$EMBR" tsne eval -i "$T/x.csv" --map "$T/sp.npy" --labels "$T/labels.txt"
acc=$(sed -nE 's/.*label accuracy ([0-9.]+).*/\1/p' "$T/out")
awk -v a="${acc:-0}" 'BEGIN { exit !(a >= 0.9) }' || fail "precomputed sparse map: accuracy '${acc}' < 0.9"
# the same rows separated by spaces (as docs/tsne.md shows them) or tabs: the same map
tr ',' ' ' <"$T/sparse.csv" >"$T/sparse.txt"
tr ',' '\t' <"$T/sparse.csv" >"$T/sparse.tsv"
for f in sparse.txt sparse.tsv; do
  expect 0 "" -- "$EMBR" tsne -i "$T/$f" --precomputed sparse --perplexity 10 -o "$T/sp_$f.npy" --iters 500 --threads 1 --quiet
  cmp -s "$T/sp.npy" "$T/sp_$f.npy" || fail "--precomputed sparse $f gave another map than the CSV rows"
done
{ head -n 2 "$T/sparse.txt"; echo "3 x 0.5"; } >"$T/sparse_bad.txt"
expect 1 "sparse_bad\.txt: line 3, column 2" -- "$EMBR" tsne -i "$T/sparse_bad.txt" --precomputed sparse -o "$T/bad.tsv"
printf '0 1 1\n0 90000 1\n' >"$T/sparse_far.txt"
expect 1 "sparse input" -- "$EMBR" tsne -i "$T/sparse_far.txt" --precomputed sparse -o "$T/bad.tsv"
# not square / negative distance
expect 1 "square" -- "$EMBR" tsne -i "$T/x.csv" --precomputed dense -o "$T/bad.tsv"
sed '7s/^[^,]*,/-1,/' "$T/dist.csv" >"$T/negdist.csv"
expect 1 "negative" -- "$EMBR" tsne -i "$T/negdist.csv" --precomputed dense -o "$T/bad.tsv"
expect 2 "precomputed" -- "$EMBR" tsne -i "$T/dist.csv" --precomputed triangle -o "$T/bad.tsv"

# ---- the map TSV with word labels reads back through convert and info -----------------------------------------
sed 's/^blob/word-/' "$T/labels.txt" >"$T/words.txt"
expect 0 "" -- "$EMBR" tsne -i "$T/x.csv" -o "$T/wmap.tsv" --labels "$T/words.txt" --iters 100 --threads 1 --quiet
expect 0 "" -- "$EMBR" info "$T/wmap.tsv"
grep -q "150 rows x 2 dims" "$T/out" || fail "info of a map with word labels: $(cat "$T/out")"
expect 0 "" -- "$EMBR" convert "$T/wmap.tsv" "$T/wmap.csv"
ok=$(awk -F'[\t,]' 'NR == FNR { x[FNR] = $1; y[FNR] = $2; next }
  { d = ($1 - x[FNR]) ^ 2 + ($2 - y[FNR]) ^ 2; if (d < 1e-10) ok++ } END { print ok + 0 }' "$T/wmap.tsv" "$T/wmap.csv")
[ "$ok" = 150 ] || fail "convert of a map with word labels: $ok of 150 rows match"

# ---- errors: exit 1 (bad input) and 2 (bad flags), nothing written ---------------------------------------------
head -n 149 "$T/labels.txt" >"$T/labels149.txt"
expect 1 "labels149\.txt.*149.*150" -- "$EMBR" tsne -i "$T/x.csv" -o "$T/bad.tsv" --labels "$T/labels149.txt"
cat "$T/labels.txt" "$T/labels.txt" >"$T/labels300.txt"
expect 1 "labels300\.txt.*300.*150" -- "$EMBR" tsne -i "$T/x.csv" -o "$T/bad.tsv" --labels "$T/labels300.txt"
expect 1 "nolabels\.txt" -- "$EMBR" tsne -i "$T/x.csv" -o "$T/bad.tsv" --labels "$T/nolabels.txt"
head -n 40 "$T/x.csv" >"$T/x40.csv"
expect 1 "perplexity" -- "$EMBR" tsne -i "$T/x40.csv" -o "$T/bad.tsv"
expect 0 "" -- "$EMBR" tsne -i "$T/x40.csv" -o "$T/small.tsv" --perplexity 10 --iters 100 --threads 1 --quiet # 40 >= 3 x 10 + 1
sed '6s/^[^,]*,/nan,/' "$T/x.csv" >"$T/xnan.csv"
expect 1 "xnan\.csv.*(nan|NaN)" -- "$EMBR" tsne -i "$T/xnan.csv" -o "$T/bad.tsv"
expect 1 "nope\.csv" -- "$EMBR" tsne -i "$T/nope.csv" -o "$T/bad.tsv"
expect 2 "fft" -- "$EMBR" tsne -i "$T/x.csv" -o "$T/bad.tsv" --method fft --dims 3
expect 2 "dims" -- "$EMBR" tsne -i "$T/x.csv" -o "$T/bad.tsv" --dims 4
expect 2 "method" -- "$EMBR" tsne -i "$T/x.csv" -o "$T/bad.tsv" --method umap
expect 2 "init" -- "$EMBR" tsne -i "$T/x.csv" -o "$T/bad.tsv" --init spectral
expect 2 "metric" -- "$EMBR" tsne -i "$T/x.csv" -o "$T/bad.tsv" --metric l3
expect 2 "perplexity" -- "$EMBR" tsne -i "$T/x.csv" -o "$T/bad.tsv" --perplexity 0
expect 2 "required" -- "$EMBR" tsne -i "$T/x.csv"
expect 2 "unknown option" -- "$EMBR" tsne -i "$T/x.csv" -o "$T/bad.tsv" --frob
expect 2 "fft" -- "$EMBR" tsne transform --ref "$T/ref.csv" --ref-map "$T/ref_map.tsv" -i "$T/new.csv" -o "$T/bad.tsv" --method fft --dims 3
expect 2 "dims" -- "$EMBR" tsne eval -i "$T/x.csv" --map "$T/map.npy" --dims 4
[ -e "$T/bad.tsv" ] && fail "a failed run left its output file"
for f in "$T"/*partial* "$T"/*.tmp*; do [ -e "$f" ] && fail "temporary file left behind: $f"; done
# an unknown plot format: refused up front (exit 2), and no map is left behind
"$EMBR" tsne -i "$T/x.csv" -o "$T/plotfail.tsv" --plot "$T/plotfail.xyz" --iters 50 --threads 1 --quiet >"$T/out" 2>"$T/err"
code=$?
[ "$code" = 1 ] || [ "$code" = 2 ] || fail "--plot x.xyz: exit $code, expected 1 or 2"
grep -q "plotfail.xyz" "$T/err" || fail "--plot x.xyz: the message does not name the file: $(cat "$T/err")"
[ -e "$T/plotfail.tsv" ] && fail "'embr tsne -o map.tsv --plot map.xyz' exits $code but leaves map.tsv behind"
# labels for eval: wrong count
expect 1 "labels149\.txt.*149.*150" -- "$EMBR" tsne eval -i "$T/x.csv" --map "$T/map.npy" --labels "$T/labels149.txt"
# an existing output survives a failed run unchanged (including the plot)
cp "$T/map.tsv" "$T/keep.tsv"
cp "$T/map.png" "$T/keep.png"
expect 1 "" -- "$EMBR" tsne -i "$T/x.csv" -o "$T/keep.tsv" --plot "$T/keep.png" --labels "$T/labels149.txt"
cmp -s "$T/map.tsv" "$T/keep.tsv" || fail "a failed run changed an existing output"
cmp -s "$T/map.png" "$T/keep.png" || fail "a failed run changed an existing plot"

# ---- determinism --------------------------------------------------------------------------------------------------
# (the FFT's minimum grid of 50 x 50 boxes makes its iterations the slowest here: fewer of them)
for m in exact:120 bh:120 fft:40; do
  it=${m#*:} m=${m%:*}
  expect 0 "" -- "$EMBR" tsne -i "$T/x.csv" -o "$T/d1.tsv" --method "$m" --iters "$it" --threads 1 --seed 3 --init random --quiet
  expect 0 "" -- "$EMBR" tsne -i "$T/x.csv" -o "$T/d2.tsv" --method "$m" --iters "$it" --threads 1 --seed 3 --init random --quiet
  cmp -s "$T/d1.tsv" "$T/d2.tsv" || fail "--method $m --threads 1 --seed 3 twice: outputs differ"
  [ "$m" = fft ] && continue
  expect 0 "" -- "$EMBR" tsne -i "$T/x.csv" -o "$T/d3.tsv" --method "$m" --iters "$it" --threads 1 --seed 4 --init random --quiet
  cmp -s "$T/d1.tsv" "$T/d3.tsv" && fail "--method $m: seeds 3 and 4 (random start) give the same map"
done
expect 0 "" -- "$EMBR" tsne -i "$T/x.csv" -o "$T/d1.npy" --iters 300 --threads 1 --seed 3 --quiet
expect 0 "" -- "$EMBR" tsne -i "$T/x.csv" -o "$T/d2.npy" --iters 300 --threads 1 --seed 3 --quiet
cmp -s "$T/d1.npy" "$T/d2.npy" || fail "--threads 1 --seed 3 twice: .npy outputs differ"

if [ "$fails" -ne 0 ]; then
  echo "$fails t-SNE CLI check(s) failed" >&2
  exit 1
fi
echo "all t-SNE CLI checks passed"

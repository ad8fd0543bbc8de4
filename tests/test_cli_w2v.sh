#!/usr/bin/env bash
# Command-line behaviour of `embr w2v`: help with defaults, word2vec.c flag spellings, outputs
# checked against counts made here with sort/uniq, hand-computed queries, exit codes and one-line
# messages naming the file for bad input, exit 2 for bad flags, no output left by a failed run,
# and byte-identical outputs for --threads 1 with a fixed seed.
# Usage: test_cli_w2v.sh path/to/embr
set -u
EMBR=${1:?usage: test_cli_w2v.sh path/to/embr}
. "$(dirname "$0")/cli_lib.sh"

# ---- help ------------------------------------------------------------------------------------------
expect 0 "" -- "$EMBR" w2v --help
for s in train similar analogy eval similarity; do
  grep -qE "^ +$s " "$T/out" || fail "w2v --help does not list $s"
done
# (the top-level `embr` prints one line and a hint for these; `embr w2v` prints its whole list)
"$EMBR" w2v frobnicate >"$T/out" 2>"$T/err"
code=$?
[ "$code" = 2 ] || fail "w2v frobnicate: exit $code, expected 2"
grep -q "unknown subcommand 'frobnicate'" "$T/err" || fail "w2v frobnicate: $(head -2 "$T/err")"
[ "$(wc -l <"$T/err")" -le 2 ] || fail "embr w2v frobnicate: a $(wc -l <"$T/err")-line message, not one line + hint like 'embr frobnicate'"
"$EMBR" w2v >"$T/out" 2>"$T/err"
code=$?
[ "$code" = 2 ] || fail "w2v without a subcommand: exit $code, expected 2"
[ "$(wc -l <"$T/err")" -le 2 ] || fail "embr w2v (no subcommand): a $(wc -l <"$T/err")-line usage on stderr, not one line + hint like 'embr'"
"$EMBR" --help | grep -q "w2v" || fail "embr --help does not list w2v"

# Each flag with its shown default (or "(required)").
check_help() { # subcommand, then "flag|default" pairs (default "" = just listed)
  local sub=$1
  shift
  "$EMBR" w2v "$sub" --help >"$T/help" 2>&1 || fail "w2v $sub --help: exit $?"
  for fd in "$@"; do
    local flag=${fd%%|*} def=${fd#*|}
    local line
    line=$(grep -E -- "(^|[ ,|])$flag([ ,|]|$)" "$T/help" | head -1)
    if [ -z "$line" ]; then
      fail "w2v $sub --help does not list $flag"
    elif [ -n "$def" ] && ! grep -qF -- "$def" <<<"$line"; then
      fail "w2v $sub --help: $flag shows no '$def': $line"
    fi
  done
}
check_help train "--input|(required)" "-train|" "--output|(required)" "-output|" "--dim|[default: 100]" "-size|" \
  "--window|[default: 5]" "--negative|[default: 5]" "--hs|[default: off]" "--cbow|[default: off]" \
  "--sample|[default: 1e-3]" "--min-count|[default: 5]" "--max-vocab|[default: 0]" "--alpha|[default: 0.025" \
  "--epochs|[default: 5]" "-iter|" "--threads|[default: 0]" "--seed|[default: 1]" "--binary|" "--text|" \
  "--save-vocab|" "--read-vocab|" "--classic|" "--quiet|"
check_help similar "-k|[default: 10]" "--format|[default: by extension]" "--json|[default: off]"
check_help analogy "-k|[default: 5]" "--method|[default: 3cosadd]" "--format|" "--json|"
check_help eval "--restrict|[default: 30000]" "--method|[default: 3cosadd]" "--case-sensitive|[default: off]" \
  "--threads|[default: 0]" "--format|" "--json|"
check_help similarity "--case-sensitive|[default: off]" "--format|" "--json|"

# ---- a corpus, and what it must give -------------------------------------------------------------------
# Two topics of 20 words; lines of 6..14 words of one topic (awk's srand(3): reproducible).
awk 'BEGIN { srand(3); for (s = 0; s < 1500; s++) { t = rand() < 0.5 ? "a" : "b"; n = 6 + int(rand() * 9);
  line = ""; for (i = 0; i < n; i++) line = line (i ? " " : "") t int(rand() * 20); print line } }' >"$T/c.txt"
# vocabulary by count (descending), ties by bytes, as "word count"
tr -s ' ' '\n' <"$T/c.txt" | grep -v '^$' | sort | uniq -c | awk '{ print $2, $1 }' | sort -k2,2nr -k1,1 >"$T/vocab.want"
V=$(wc -l <"$T/vocab.want")
[ "$V" -eq 40 ] || fail "the generated corpus has $V distinct words, expected 40"

# word2vec.c spellings: a text file with header "V 10", V lines of a word and 10 numbers
expect 0 "" -- "$EMBR" w2v train -train "$T/c.txt" -output "$T/v.bin" -size 10 -window 2 -negative 3 -hs 0 -cbow 1 \
  -iter 1 -threads 1 -min-count 1 -binary 0
[ "$(head -1 "$T/v.bin")" = "$V 10" ] || fail "text output header: '$(head -1 "$T/v.bin")', expected '$V 10'"
[ "$(wc -l <"$T/v.bin")" -eq $((V + 1)) ] || fail "text output has $(wc -l <"$T/v.bin") lines, expected $((V + 1))"
awk 'NR > 1 && NF != 11 { bad = 1 } END { exit bad }' "$T/v.bin" || fail "text output: a line without 10 values"
tail -n +2 "$T/v.bin" | cut -d' ' -f1 >"$T/words.got"
cut -d' ' -f1 "$T/vocab.want" >"$T/words.want"
cmp -s "$T/words.got" "$T/words.want" || fail "output words are not the vocabulary in count order: $(diff "$T/words.got" "$T/words.want" | head -5)"
grep -q "CBOW" "$T/err" || fail "-cbow 1 did not train CBOW: $(cat "$T/err")"
# the other spellings and the binary format
expect 0 "" -- "$EMBR" w2v train -train "$T/c.txt" -output "$T/b.bin" -size 10 -window 2 -negative 0 -hs 1 -cbow 0 \
  -iter 1 -threads 1 -min-count 1 -binary 1 -sample 0 -alpha 0.05 -save-vocab "$T/saved.vocab" --quiet
[ "$(head -1 "$T/b.bin")" = "$V 10" ] || fail "binary output header: '$(head -1 "$T/b.bin")'"
# binary size: header + per word (word, space, 40 bytes, newline)
want_size=$(awk -v h="$V 10" 'BEGIN { s = length(h) + 1 } { s += length($1) + 1 + 40 + 1 } END { print s }' "$T/vocab.want")
size=$(wc -c <"$T/b.bin")
[ "$size" -eq "$want_size" ] || fail "binary output is $size bytes, expected $want_size"
cmp -s "$T/saved.vocab" "$T/vocab.want" || fail "-save-vocab differs from the counts: $(diff "$T/saved.vocab" "$T/vocab.want" | head -5)"
# binary -> text through convert: same words in the same order
expect 0 "" -- "$EMBR" convert "$T/b.bin" "$T/b.txt"
tail -n +2 "$T/b.txt" | cut -d' ' -f1 | cmp -s - "$T/words.want" || fail "convert of the binary output changed the words"
expect 0 "" -- "$EMBR" info "$T/b.bin"
grep -q "$V rows x 10 dims" "$T/out" || fail "info: $(cat "$T/out")"
# -min-count drops words: a word seen once is not in the output
printf 'zz_rare\n' >>"$T/c2.txt"
cat "$T/c.txt" >>"$T/c2.txt"
expect 0 "" -- "$EMBR" w2v train -i "$T/c2.txt" -o "$T/mc.txt" --dim 4 --epochs 1 --threads 1 --min-count 2 --quiet
grep -q '^zz_rare ' "$T/mc.txt" && fail "--min-count 2 kept a word seen once"
[ "$(head -1 "$T/mc.txt")" = "$V 4" ] || fail "--min-count 2: header '$(head -1 "$T/mc.txt")'"
expect 0 "" -- "$EMBR" w2v train -i "$T/c.txt" -o "$T/mv.txt" --dim 4 --epochs 1 --threads 1 --min-count 1 --max-vocab 7 --quiet
[ "$(head -1 "$T/mv.txt")" = "7 4" ] || fail "--max-vocab 7: header '$(head -1 "$T/mv.txt")'"
tail -n +2 "$T/mv.txt" | cut -d' ' -f1 | cmp -s - <(head -7 "$T/words.want") || fail "--max-vocab 7 did not keep the 7 most frequent"

# ---- determinism ----------------------------------------------------------------------------------------
for mode in "" "--cbow" "--hs --negative 0" "--classic"; do
  # shellcheck disable=SC2086
  "$EMBR" w2v train -i "$T/c.txt" -o "$T/d1.bin" --dim 12 --epochs 2 --min-count 1 --threads 1 --seed 7 --quiet $mode 2>"$T/err" || fail "train $mode: $(cat "$T/err")"
  # shellcheck disable=SC2086
  "$EMBR" w2v train -i "$T/c.txt" -o "$T/d2.bin" --dim 12 --epochs 2 --min-count 1 --threads 1 --seed 7 --quiet $mode 2>"$T/err" || fail "train $mode: $(cat "$T/err")"
  # shellcheck disable=SC2086
  "$EMBR" w2v train -i "$T/c.txt" -o "$T/d3.bin" --dim 12 --epochs 2 --min-count 1 --threads 1 --seed 8 --quiet $mode 2>"$T/err" || fail "train $mode: $(cat "$T/err")"
  cmp -s "$T/d1.bin" "$T/d2.bin" || fail "--threads 1 --seed 7 $mode twice gave different files"
  cmp -s "$T/d1.bin" "$T/d3.bin" && fail "--seed 7 and --seed 8 $mode gave the same file"
  # a vocabulary read back (the one -save-vocab wrote) gives the same training
  # shellcheck disable=SC2086
  "$EMBR" w2v train -i "$T/c.txt" -o "$T/d4.bin" --dim 12 --epochs 2 --min-count 1 --threads 1 --seed 7 --quiet $mode \
    -read-vocab "$T/saved.vocab" 2>"$T/err" || fail "train -read-vocab $mode: $(cat "$T/err")"
  cmp -s "$T/d1.bin" "$T/d4.bin" || fail "-read-vocab of the saved vocabulary changed the result ($mode)"
done

# ---- queries on hand-made vectors ------------------------------------------------------------------------
printf '5 3\nman 1 0 0\nwoman 0 1 0\nking 0 0 1\nqueen -1 1 1\nprince 0 0 2\n' >"$T/h.txt"
expect 0 "" -- "$EMBR" w2v similar "$T/h.txt" king -k 3
# cos(king, .): prince 1, queen 1/sqrt(3), then man and woman 0 (lower row first)
printf 'prince 1.0000\nqueen 0.5774\nman 0.0000\n' >"$T/sim.want"
awk '{ print $1, $2 }' "$T/out" | cmp -s - "$T/sim.want" || fail "similar king: $(cat "$T/out")"
expect 0 "" -- "$EMBR" w2v similar "$T/h.txt" king -k 10 --json
grep -q '"word":"king"' "$T/out" && grep -q '{"word":"man","score":0},{"word":"woman","score":0}\]' "$T/out" ||
  fail "similar --json (k beyond the vocabulary): $(cat "$T/out")"
expect 0 "" -- "$EMBR" w2v analogy "$T/h.txt" man king woman -k 2
[ "$(sed -n 2p "$T/out" | awk '{ print $1 }')" = queen ] || fail "analogy man king woman: $(cat "$T/out")"
# 3CosMul by hand: queen (1+1/sqrt3)^2/4 / ((1-1/sqrt3)/2 + 0.001) = 2.92951, prince 0.5/0.501 = 0.99800
expect 0 "" -- "$EMBR" w2v analogy "$T/h.txt" man king woman -k 2 --method 3cosmul --json
grep -qE '"answers":\[\{"word":"queen","score":2\.9295[0-9]*\},\{"word":"prince","score":0\.99800[0-9]*\}\]' "$T/out" ||
  fail "analogy 3cosmul: $(cat "$T/out")"
printf ': a\nman king woman queen\nman king woman prince\nman king woman unicorn\n: b\nMAN KING WOMAN QUEEN\n' >"$T/q.txt"
expect 0 "" -- "$EMBR" w2v eval "$T/h.txt" "$T/q.txt" --json
grep -q '"correct":2,"seen":3,"questions":4' "$T/out" || fail "eval (case folded): $(cat "$T/out")"
expect 0 "" -- "$EMBR" w2v eval "$T/h.txt" "$T/q.txt" --json --case-sensitive
grep -q '"correct":1,"seen":2,"questions":4' "$T/out" || fail "eval --case-sensitive: $(cat "$T/out")"
# human 1 2 3 4 vs cosines 0 (man-woman), 1 (king-prince), 1/sqrt3 (queen-woman), 0.5774 (KING-queen):
# ranks 1 2 3 4 vs 1 4 2.5 2.5 -> rho = 1.5 / sqrt(5 * 4.5) = 0.3162 (Pearson of the ranks)
printf 'w1 w2 score\n# comment\nman woman 1\nking prince 2\nqueen woman 3\nKING queen 4\nman unicorn 5\n' >"$T/p.txt"
expect 0 "" -- "$EMBR" w2v similarity "$T/h.txt" "$T/p.txt" --json
grep -q '{"spearman":0.3162,"pairs":4,"oov":1}' "$T/out" || fail "similarity: $(cat "$T/out")"

# ---- bad input: exit 1, one line naming the file, no output --------------------------------------------
: >"$T/empty.txt"
expect 1 "empty.txt" -- "$EMBR" w2v train -i "$T/empty.txt" -o "$T/x.bin" --quiet
head -c 4096 "$EMBR" >"$T/prog.dat"
expect 1 "prog.dat" -- "$EMBR" w2v train -i "$T/prog.dat" -o "$T/x.bin" --quiet
printf 'x y z x y z\nz y x\n' >"$T/three.txt"
expect 1 "three.txt" -- "$EMBR" w2v train -i "$T/three.txt" -o "$T/x.bin" --min-count 1 --window 5 --quiet
expect 1 "missing.txt" -- "$EMBR" w2v train -i "$T/missing.txt" -o "$T/x.bin" --quiet
expect 1 "c.txt" -- "$EMBR" w2v train -i "$T/c.txt" -o "$T/x.bin" --min-count 100000 --quiet
expect 1 "missing.vocab" -- "$EMBR" w2v train -i "$T/c.txt" -o "$T/x.bin" -read-vocab "$T/missing.vocab" --quiet
printf 'a1 5\nb2\n' >"$T/bad.vocab"
expect 1 "bad.vocab.*line 2" -- "$EMBR" w2v train -i "$T/c.txt" -o "$T/x.bin" -read-vocab "$T/bad.vocab" --quiet
[ -e "$T/x.bin" ] && fail "a failed training left an output file"
# an output in a missing directory: exit 1 naming it (ideally before training, not after)
"$EMBR" w2v train -i "$T/c.txt" -o "$T/no-dir/v.bin" --dim 4 --epochs 1 --min-count 1 --threads 1 >"$T/out" 2>"$T/err"
code=$?
[ "$code" = 1 ] || fail "output in a missing directory: exit $code"
tail -1 "$T/err" | grep -q "no-dir/v.bin" || fail "output in a missing directory: $(tail -1 "$T/err")"
tail -1 "$T/err" | grep -q "partial" && fail "output in a missing directory: the message names the temporary file: $(tail -1 "$T/err")"
grep -q "^trained" "$T/err" && fail "output in a missing directory: refused only after training"
ls "$T" | grep -q partial && fail "temporary files left behind: $(ls "$T")"
# an existing output survives a failed run unchanged
cp "$T/d1.bin" "$T/keep.bin"
expect 1 "" -- "$EMBR" w2v train -i "$T/empty.txt" -o "$T/keep.bin" --quiet
cmp -s "$T/d1.bin" "$T/keep.bin" || fail "a failed training changed an existing output"

expect 1 "unicorn" -- "$EMBR" w2v similar "$T/h.txt" unicorn
grep -q "h.txt" "$T/err" || fail "w2v similar: the unknown-word message does not name the vectors file: $(cat "$T/err")"
expect 1 "griffin" -- "$EMBR" w2v analogy "$T/h.txt" man king griffin
grep -q "h.txt" "$T/err" || fail "w2v analogy: the unknown-word message does not name the vectors file: $(cat "$T/err")"
expect 1 "dragon" -- "$EMBR" w2v analogy "$T/h.txt" dragon king woman
head -c 300 "$T/b.bin" >"$T/trunc.bin"
expect 1 "trunc.bin" -- "$EMBR" w2v similar "$T/trunc.bin" a1
expect 1 "trunc.bin" -- "$EMBR" w2v analogy "$T/trunc.bin" a1 a2 a3
expect 1 "trunc.bin" -- "$EMBR" w2v eval "$T/trunc.bin" "$T/q.txt"
expect 1 "nope.bin" -- "$EMBR" w2v similar "$T/nope.bin" a1
expect 1 "nope.txt" -- "$EMBR" w2v eval "$T/h.txt" "$T/nope.txt"
expect 1 "nope.txt" -- "$EMBR" w2v similarity "$T/h.txt" "$T/nope.txt"
printf ': a\nman king woman\n' >"$T/badq.txt"
expect 1 "badq.txt" -- "$EMBR" w2v eval "$T/h.txt" "$T/badq.txt"
printf 'man woman 1\n' >"$T/onepair.txt"
expect 1 "onepair.txt" -- "$EMBR" w2v similarity "$T/h.txt" "$T/onepair.txt"
printf '1,2\n3,4\n' >"$T/nolabels.csv"
expect 1 "nolabels.csv" -- "$EMBR" w2v similar "$T/nolabels.csv" a

# ---- bad flags: exit 2 -----------------------------------------------------------------------------------
expect 2 "-k" -- "$EMBR" w2v similar "$T/h.txt" king -k 0
expect 2 "-k" -- "$EMBR" w2v analogy "$T/h.txt" man king woman -k 0
expect 2 "--dim" -- "$EMBR" w2v train -i "$T/c.txt" -o "$T/x.bin" --dim 0
expect 2 "dim" -- "$EMBR" w2v train -i "$T/c.txt" -o "$T/x.bin" -size 0
expect 2 "-hs" -- "$EMBR" w2v train -i "$T/c.txt" -o "$T/x.bin" -hs 2
expect 2 "-cbow" -- "$EMBR" w2v train -i "$T/c.txt" -o "$T/x.bin" -cbow yes
expect 2 "-binary" -- "$EMBR" w2v train -i "$T/c.txt" -o "$T/x.bin" -binary 2
expect 2 "--window" -- "$EMBR" w2v train -i "$T/c.txt" -o "$T/x.bin" --window 0
expect 2 "--negative" -- "$EMBR" w2v train -i "$T/c.txt" -o "$T/x.bin" --negative 65
expect 2 "--negative 0" -- "$EMBR" w2v train -i "$T/c.txt" -o "$T/x.bin" --negative 0
expect 2 "--sample" -- "$EMBR" w2v train -i "$T/c.txt" -o "$T/x.bin" --sample 1
expect 2 "--epochs" -- "$EMBR" w2v train -i "$T/c.txt" -o "$T/x.bin" -iter 0
expect 2 "--min-count" -- "$EMBR" w2v train -i "$T/c.txt" -o "$T/x.bin" --min-count 0
expect 2 "exclude" -- "$EMBR" w2v train -i "$T/c.txt" -o "$T/x.bin" --text --binary
expect 2 "required" -- "$EMBR" w2v train -i "$T/c.txt"
expect 2 "required" -- "$EMBR" w2v train -o "$T/x.bin"
expect 2 "unknown option" -- "$EMBR" w2v train -i "$T/c.txt" -o "$T/x.bin" --frob
expect 2 "method" -- "$EMBR" w2v analogy "$T/h.txt" man king woman --method 4cosadd
expect 2 "method" -- "$EMBR" w2v eval "$T/h.txt" "$T/q.txt" --method x
expect 2 "missing arguments" -- "$EMBR" w2v similar "$T/h.txt"
expect 2 "missing arguments" -- "$EMBR" w2v analogy "$T/h.txt" man king
expect 2 "unexpected argument" -- "$EMBR" w2v similar "$T/h.txt" king queen
expect 2 "--restrict" -- "$EMBR" w2v eval "$T/h.txt" "$T/q.txt" --restrict -1
[ -e "$T/x.bin" ] && fail "a run with bad flags left an output file"

# ---- w2v map: the picture and the coordinates together, never over each other or the input ----------
expect 0 "" -- "$EMBR" w2v map "$T/b.txt" -o "$T/words.svg" --coords "$T/words.tsv" --top 10 --perplexity 2 --quiet
[ -s "$T/words.svg" ] && [ "$(wc -l <"$T/words.tsv")" = 10 ] || fail "w2v map outputs: $(ls "$T")"
expect 2 "name the same file" -- "$EMBR" w2v map "$T/b.txt" -o "$T/w2.svg" --coords "$T/w2.svg" --top 10 --perplexity 2
expect 2 "is the input VECTORS" -- "$EMBR" w2v map "$T/b.txt" -o "$T/w3.svg" --coords "$T/b.txt" --top 10 --perplexity 2
[ -e "$T/w2.svg" ] || [ -e "$T/w3.svg" ] && fail "a refused w2v map wrote a file"

if [ "$fails" -ne 0 ]; then
  echo "$fails w2v CLI check(s) failed" >&2
  exit 1
fi
echo "all w2v CLI checks passed"

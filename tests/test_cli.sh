#!/usr/bin/env bash
# Command-line behaviour of `embr`: results on a hand-computed case, format round trips through
# `convert`, exit codes and one-line messages for malformed input, and no partial outputs.
# Usage: test_cli.sh path/to/embr
set -u
EMBR=${1:?usage: test_cli.sh path/to/embr}
. "$(dirname "$0")/cli_lib.sh"

# ---- help -----------------------------------------------------------------------------------
expect 0 "" -- "$EMBR" --help
grep -q "search" "$T/out" || fail "--help does not list search"
for c in search convert recall info; do
  expect 0 "" -- "$EMBR" "$c" --help
  grep -q "default" "$T/out" || fail "$c --help shows no defaults"
done
"$EMBR" search --help >"$T/help"
for flag in --base --query -k --metric --threads --format --out-ids --out-dist --json --quiet; do
  grep -qe "$flag" "$T/help" || fail "search --help does not list $flag"
done
expect 2 "unknown command" -- "$EMBR" frobnicate
expect 2 "" -- "$EMBR"

# ---- a hand-computed search --------------------------------------------------------------------
# base rows (ids 0..3) and one query (0,0): L2 = 1, 4, 25, 1 -> nearest 0 (1), 3 (1, tie: higher id)
printf '1,0\n0,2\n3,4\n-1,0\n' >"$T/base.csv"
printf 'x,y\n0,0\n1,1\n' >"$T/q.csv" # with a header line
expect 0 "" -- "$EMBR" search --base "$T/base.csv" --query "$T/q.csv" -k 3 --quiet
first=$(head -1 "$T/out")
[ "$first" = "$(printf '0\t0:1\t3:1\t1:4')" ] || fail "l2 result line: '$first'"
# query (1,1): L2 to rows = 1, 2, 13, 5 -> 0,1,3
second=$(sed -n 2p "$T/out")
[ "$second" = "$(printf '1\t0:1\t1:2\t3:5')" ] || fail "l2 second line: '$second'"
# L1 of (1,1): 1, 2, 5, 3 ; IP of (1,1): 1, 2, 7, -1 (descending) ; cosine of (1,1) with (3,4) = 7/(sqrt2*5)
expect 0 "" -- "$EMBR" search --base "$T/base.csv" --query "$T/q.csv" -k 2 --metric l1 --quiet
[ "$(sed -n 2p "$T/out")" = "$(printf '1\t0:1\t1:2')" ] || fail "l1 line: $(sed -n 2p "$T/out")"
expect 0 "" -- "$EMBR" search --base "$T/base.csv" --query "$T/q.csv" -k 2 --metric ip --quiet
[ "$(sed -n 2p "$T/out")" = "$(printf '1\t2:7\t1:2')" ] || fail "ip line: $(sed -n 2p "$T/out")"
expect 0 "" -- "$EMBR" search --base "$T/base.csv" --query "$T/q.csv" -k 1 --metric cosine --json --quiet
grep -q '"ids":\[2\],"distances":\[0.98994' "$T/out" || fail "cosine json: $(cat "$T/out")"
# k larger than the base: padded, JSON lists only the real ones
expect 0 "" -- "$EMBR" search --base "$T/base.csv" --query "$T/q.csv" -k 10 --json --quiet
grep -q '"ids":\[0,3,1,2\]' "$T/out" || fail "k > n json: $(cat "$T/out")"

# ---- convert round trips -----------------------------------------------------------------------
expect 0 "" -- "$EMBR" convert "$T/base.csv" "$T/base.fvecs"
expect 0 "" -- "$EMBR" convert "$T/base.fvecs" "$T/base.npy"
expect 0 "" -- "$EMBR" convert "$T/base.npy" "$T/base.tsv"
expect 0 "" -- "$EMBR" convert "$T/base.tsv" "$T/back.csv"
cmp -s <(tr -d ' ' <"$T/back.csv") "$T/base.csv" || fail "csv -> fvecs -> npy -> tsv -> csv changed the data: $(cat "$T/back.csv")"
expect 0 "" -- "$EMBR" info "$T/base.npy"
grep -q "4 rows x 2 dims" "$T/out" || fail "info: $(cat "$T/out")"
expect 2 "output format" -- "$EMBR" convert "$T/base.csv" "$T/base.unknownext"

# ---- groups of sub-commands (one registry: same help and messages for every group) -------------------
for g in index collection w2v eval; do
  expect 0 "" -- "$EMBR" "$g" --help
  grep -q "^subcommands:" "$T/out" || fail "embr $g --help lists no subcommands: $(head -3 "$T/out")"
  expect 2 "^embr $g: unknown subcommand 'frob'" -- "$EMBR" "$g" frob
  grep -q "^Try 'embr $g --help'" "$T/err" || fail "embr $g frob: no hint: $(cat "$T/err")"
  expect 2 "^embr $g: missing subcommand \(" -- "$EMBR" "$g"
  [ -s "$T/out" ] && fail "embr $g without a subcommand printed on stdout"
done
expect 0 "" -- "$EMBR" help index
grep -q "^  build " "$T/out" || fail "embr help index: $(cat "$T/out")"
# tsne runs itself and has sub-commands: its help ends with their list
expect 0 "" -- "$EMBR" tsne --help
grep -qE "^  transform +" "$T/out" && grep -qE "^  eval +" "$T/out" || fail "tsne --help does not list transform and eval"

# ---- index: build, describe, search; bad enum-like values are usage errors (exit 2) ----------------
expect 0 "" -- "$EMBR" index build --spec flat --metric l2 -i "$T/base.csv" -o "$T/flat.idx" -q
[ -s "$T/err" ] && fail "index build -q printed: $(cat "$T/err")"
expect 0 "" -- "$EMBR" index info "$T/flat.idx" --json
grep -q '"dim":2,"size":4' "$T/out" || fail "index info: $(cat "$T/out")"
expect 0 "" -- "$EMBR" index search "$T/flat.idx" --query "$T/q.csv" -k 3 -q
[ "$(head -1 "$T/out")" = "$(printf '0\t0:1\t3:1\t1:4')" ] || fail "index search flat: $(head -1 "$T/out")"
expect 2 "unknown index kind 'nope'" -- "$EMBR" index build --spec nope -i "$T/base.csv" -o "$T/x.idx"
expect 2 "no parameter" -- "$EMBR" index build --spec hnsw:Q=3 -i "$T/base.csv" -o "$T/x.idx"
expect 2 "m=3" -- "$EMBR" index build -s ivfpq:m=3 -i "$T/base.csv" -o "$T/x.idx"
expect 2 "unknown metric" -- "$EMBR" index build --metric l3 -i "$T/base.csv" -o "$T/x.idx"
expect 2 "unknown metric" -- "$EMBR" tsne --metric l3 -i "$T/base.csv" -o "$T/x.tsv"
[ -e "$T/x.idx" ] && fail "a refused index build left a file"
expect 1 "nope.csv" -- "$EMBR" index build --spec flat -i "$T/nope.csv" -o "$T/x.idx"

# ---- short flags: one meaning each (the table in cli/args.h) -----------------------------------------
# -q is --quiet everywhere (no longer --query), -t --threads (no longer recall's --truth), -b --batch.
expect 2 "unexpected argument" -- "$EMBR" search --base "$T/base.csv" -q "$T/q.csv"
expect 2 "unknown option '-t'" -- "$EMBR" recall -t "$T/ids.ivecs" --ids "$T/ids.ivecs"
expect 0 "" -- "$EMBR" search --base "$T/base.csv" --query "$T/q.csv" -k 1 -t 1 -q
[ -s "$T/err" ] && fail "search -q printed on stderr: $(cat "$T/err")"
[ "$(head -1 "$T/out")" = "$(printf '0\t0:1')" ] || fail "search -t 1 -q: $(head -1 "$T/out")"
expect 0 "" -- "$EMBR" synth -n 10 --dim 3 --output "$T/syn.csv"
[ "$(wc -l <"$T/syn.csv")" = 10 ] || fail "synth --output (alias of --out) wrote $(wc -l <"$T/syn.csv") rows"

# ---- outputs, recall ---------------------------------------------------------------------------
expect 0 "" -- "$EMBR" search --base "$T/base.fvecs" --query "$T/q.csv" -k 2 --out-ids "$T/ids.ivecs" --out-dist "$T/d.fvecs" --quiet
[ -s "$T/ids.ivecs" ] && [ -s "$T/d.fvecs" ] || fail "outputs not written"
expect 0 "" -- "$EMBR" recall --truth "$T/ids.ivecs" --ids "$T/ids.ivecs" -k 2
grep -q "recall@2 = 1.0000" "$T/out" || fail "self recall: $(cat "$T/out")"
ls "$T" | grep -q partial && fail "temporary files left behind: $(ls "$T")"

# ---- synth: seeded, clusters named per row ----------------------------------------------------------
expect 0 "" -- "$EMBR" synth -n 50 --dim 4 --clusters 3 --seed 5 -o "$T/s1.csv" --labels-out "$T/s1.labels"
expect 0 "" -- "$EMBR" synth -n 50 --dim 4 --clusters 3 --seed 5 -o "$T/s2.csv" --threads 1
cmp -s "$T/s1.csv" "$T/s2.csv" || fail "synth: same seed, different threads gave different rows"
[ "$(wc -l <"$T/s1.labels")" = 50 ] || fail "synth --labels-out: $(wc -l <"$T/s1.labels") lines for 50 rows"
grep -qv '^cluster [0-2]$' "$T/s1.labels" && fail "synth --labels-out: unexpected line $(grep -v '^cluster [0-2]$' "$T/s1.labels" | head -1)"

# ---- malformed input: message names the file, exit 1, no output file ------------------------------
expect 1 "nope.fvecs" -- "$EMBR" search --base "$T/nope.fvecs" --query "$T/q.csv" --out-ids "$T/x.ivecs"
expect 1 "directory" -- "$EMBR" search --base "$T" --query "$T/q.csv" --format fvecs
: >"$T/empty.fvecs"
expect 1 "empty.fvecs" -- "$EMBR" search --base "$T/empty.fvecs" --query "$T/q.csv"
head -c 13 "$T/base.fvecs" >"$T/trunc.fvecs"
expect 1 "trunc.fvecs" -- "$EMBR" search --base "$T/trunc.fvecs" --query "$T/q.csv" --out-ids "$T/x.ivecs"
printf 'NOTNUMPY' >"$T/bad.npy"
expect 1 "bad.npy" -- "$EMBR" search --base "$T/bad.npy" --query "$T/q.csv"
printf '1,2,3\n' >"$T/q3.csv"
expect 1 "dimension" -- "$EMBR" search --base "$T/base.csv" --query "$T/q3.csv" --out-ids "$T/x.ivecs"
printf '1,nan\n' >"$T/nan.csv"
expect 1 "nan.csv" -- "$EMBR" search --base "$T/base.csv" --query "$T/nan.csv"
printf '1,inf\n' >"$T/inf.csv"
expect 1 "inf.csv" -- "$EMBR" search --base "$T/base.csv" --query "$T/inf.csv"
[ -e "$T/x.ivecs" ] && fail "an output file was created by a failed search"
# an existing output survives a failed run unchanged
cp "$T/ids.ivecs" "$T/keep.ivecs"
expect 1 "" -- "$EMBR" search --base "$T/base.csv" --query "$T/q3.csv" --out-ids "$T/keep.ivecs"
cmp -s "$T/ids.ivecs" "$T/keep.ivecs" || fail "a failed search changed an existing output"

# ---- outputs that clash: with each other or with an input, exit 2 before any work --------------------
expect 2 "--out-ids and --out-dist name the same file" -- "$EMBR" search --base "$T/base.csv" --query "$T/q.csv" --out-ids "$T/same.out" --out-dist "$T/same.out"
mkdir -p "$T/sub"
expect 2 "name the same file" -- "$EMBR" search --base "$T/base.csv" --query "$T/q.csv" --out-ids "$T/sub/../same.out" --out-dist "$T/same.out"
[ -e "$T/same.out" ] && fail "a refused run left $T/same.out"
cp "$T/base.fvecs" "$T/orig.fvecs"
expect 2 "output --out-ids .* is the input --base" -- "$EMBR" search --base "$T/base.fvecs" --query "$T/q.csv" --out-ids "$T/base.fvecs"
expect 2 "is the input --input" -- "$EMBR" index build -i "$T/base.fvecs" -o "$T/base.fvecs" --spec flat --quiet
ln -s base.fvecs "$T/link.fvecs"
expect 2 "is the input IN" -- "$EMBR" convert "$T/base.fvecs" "$T/link.fvecs"
printf 'a b c a b\n' >"$T/corpus.txt"
expect 2 "is the input --input" -- "$EMBR" w2v train -i "$T/corpus.txt" -o "$T/corpus.txt" --min-count 1 --quiet
cmp -s "$T/base.fvecs" "$T/orig.fvecs" || fail "an input was overwritten by an output"
ls "$T" | grep -q partial && fail "temporary files left behind: $(ls "$T")"
# a writer's refusal names the output asked for, not its temporary name
expect 1 "out\.txt: .*labels" -- "$EMBR" convert "$T/base.csv" "$T/out.txt"
grep -q partial "$T/err" && fail "message names the temporary file: $(cat "$T/err")"

# ---- other tools' files and hostile bytes --------------------------------------------------------
cp "$T/base.npy" "$T/disguised.fvecs" # the magic beats the extension
expect 0 "" -- "$EMBR" info "$T/disguised.fvecs"
grep -q "npy, 4 rows x 2 dims" "$T/out" || fail "npy named .fvecs: $(cat "$T/out")"
printf 'PK\003\004\024\000\000\000' >"$T/arrays.npz"
expect 1 "arrays.npz: .*NumPy .npz.*np.save" -- "$EMBR" info "$T/arrays.npz"
# np.save(p, np.zeros((0, 3), np.float32)): header padded so the data starts at byte 128
dict="{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }"
{ printf '\223NUMPY\001\000\166\000%s' "$dict"; printf '%*s\n' $((117 - ${#dict})) ''; } >"$T/zero.npy"
expect 0 "" -- "$EMBR" info "$T/zero.npy"
grep -q "0 rows x 3 dims" "$T/out" || fail "0-row npy info: $(cat "$T/out")"
expect 0 "" -- "$EMBR" convert "$T/zero.npy" "$T/zero2.npy"
cmp -s "$T/zero.npy" "$T/zero2.npy" || fail "0-row npy did not round-trip"
expect 1 "only .npy can hold an empty matrix" -- "$EMBR" convert "$T/zero.npy" "$T/zero.fvecs"
expect 1 "zero.npy: no rows" -- "$EMBR" search --base "$T/zero.npy" --query "$T/q3.csv"
printf 'a,b\r1,2\r3,4\r' >"$T/cr.csv" # classic Mac line ends
expect 0 "" -- "$EMBR" info "$T/cr.csv"
grep -q "2 rows x 2 dims" "$T/out" || fail "CR-only csv: $(cat "$T/out")"
printf ',a,b\n0,1,2\n1,3,4\n' >"$T/pandas.csv" # DataFrame.to_csv(): the index column is dropped
expect 0 "" -- "$EMBR" info "$T/pandas.csv"
grep -q "2 rows x 2 dims" "$T/out" || fail "pandas index column: $(cat "$T/out")"
grep -q "note: .*pandas.csv: the first column is a row index" "$T/err" || fail "no note on the dropped index column: $(cat "$T/err")"
expect 0 "" -- "$EMBR" info "$T/cr.csv"
grep -q note "$T/err" && fail "a note for a file without an index column: $(cat "$T/err")"
printf '1,2\n3,\033[2J\377\n' >"$T/esc.csv"
expect 1 'esc.csv: line 2, column 2' -- "$EMBR" info "$T/esc.csv"
grep -q $'\033' "$T/err" && fail "a control byte reached the terminal: $(od -c "$T/err" | head -3)"
grep -qF '\x1b' "$T/err" || grep -qF '?' "$T/err" || fail "control byte not escaped: $(cat "$T/err")"

# ---- bad flags: exit 2 ----------------------------------------------------------------------------
expect 2 "-k" -- "$EMBR" search --base "$T/base.csv" --query "$T/q.csv" -k 0
expect 2 "-k" -- "$EMBR" search --base "$T/base.csv" --query "$T/q.csv" -k -3
expect 2 "integer" -- "$EMBR" search --base "$T/base.csv" --query "$T/q.csv" -k ten
expect 2 "metric" -- "$EMBR" search --base "$T/base.csv" --query "$T/q.csv" --metric l3
expect 2 "unknown option" -- "$EMBR" search --base "$T/base.csv" --query "$T/q.csv" --frob
expect 2 "required" -- "$EMBR" search --base "$T/base.csv"
expect 2 "format" -- "$EMBR" search --base "$T/base.csv" --query "$T/q.csv" --format xyz
expect 2 "needs a value" -- "$EMBR" search --base "$T/base.csv" --query
expect 1 "columns" -- "$EMBR" recall --truth "$T/ids.ivecs" --ids "$T/ids.ivecs" -k 5

finish

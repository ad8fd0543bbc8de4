#!/usr/bin/env bash
# Command-line behaviour of `embr`: results on a hand-computed case, format round trips through
# `convert`, exit codes and one-line messages for malformed input, and no partial outputs.
# Usage: test_cli.sh path/to/embr
set -u
EMBR=${1:?usage: test_cli.sh path/to/embr}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
pass() { :; }
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

# expect CODE PATTERN -- command...: exit code must be CODE and stderr must match PATTERN
expect() {
  local code=$1 pat=$2
  shift 3
  "$@" >"$T/out" 2>"$T/err"
  local got=$?
  if [ "$got" != "$code" ]; then
    fail "$* : exit $got, expected $code; stderr: $(head -c 300 "$T/err")"
  elif [ -n "$pat" ] && ! grep -qE -- "$pat" "$T/err"; then
    fail "$* : stderr does not match /$pat/: $(head -c 300 "$T/err")"
  elif [ "$code" != 0 ] && [ "$(wc -l <"$T/err")" -gt 2 ]; then
    fail "$* : error message longer than one line (+hint): $(cat "$T/err")"
  fi
}

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

# ---- outputs, recall ---------------------------------------------------------------------------
expect 0 "" -- "$EMBR" search -b "$T/base.fvecs" -q "$T/q.csv" -k 2 --out-ids "$T/ids.ivecs" --out-dist "$T/d.fvecs" --quiet
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
expect 1 "nope.fvecs" -- "$EMBR" search -b "$T/nope.fvecs" -q "$T/q.csv" --out-ids "$T/x.ivecs"
expect 1 "directory" -- "$EMBR" search -b "$T" -q "$T/q.csv" --format fvecs
: >"$T/empty.fvecs"
expect 1 "empty.fvecs" -- "$EMBR" search -b "$T/empty.fvecs" -q "$T/q.csv"
head -c 13 "$T/base.fvecs" >"$T/trunc.fvecs"
expect 1 "trunc.fvecs" -- "$EMBR" search -b "$T/trunc.fvecs" -q "$T/q.csv" --out-ids "$T/x.ivecs"
printf 'NOTNUMPY' >"$T/bad.npy"
expect 1 "bad.npy" -- "$EMBR" search -b "$T/bad.npy" -q "$T/q.csv"
printf '1,2,3\n' >"$T/q3.csv"
expect 1 "dimension" -- "$EMBR" search -b "$T/base.csv" -q "$T/q3.csv" --out-ids "$T/x.ivecs"
printf '1,nan\n' >"$T/nan.csv"
expect 1 "nan.csv" -- "$EMBR" search -b "$T/base.csv" -q "$T/nan.csv"
printf '1,inf\n' >"$T/inf.csv"
expect 1 "inf.csv" -- "$EMBR" search -b "$T/base.csv" -q "$T/inf.csv"
[ -e "$T/x.ivecs" ] && fail "an output file was created by a failed search"
# an existing output survives a failed run unchanged
cp "$T/ids.ivecs" "$T/keep.ivecs"
expect 1 "" -- "$EMBR" search -b "$T/base.csv" -q "$T/q3.csv" --out-ids "$T/keep.ivecs"
cmp -s "$T/ids.ivecs" "$T/keep.ivecs" || fail "a failed search changed an existing output"

# ---- bad flags: exit 2 ----------------------------------------------------------------------------
expect 2 "-k" -- "$EMBR" search -b "$T/base.csv" -q "$T/q.csv" -k 0
expect 2 "-k" -- "$EMBR" search -b "$T/base.csv" -q "$T/q.csv" -k -3
expect 2 "integer" -- "$EMBR" search -b "$T/base.csv" -q "$T/q.csv" -k ten
expect 2 "metric" -- "$EMBR" search -b "$T/base.csv" -q "$T/q.csv" --metric l3
expect 2 "unknown option" -- "$EMBR" search -b "$T/base.csv" -q "$T/q.csv" --frob
expect 2 "required" -- "$EMBR" search -b "$T/base.csv"
expect 2 "format" -- "$EMBR" search -b "$T/base.csv" -q "$T/q.csv" --format xyz
expect 2 "needs a value" -- "$EMBR" search -b "$T/base.csv" -q
expect 1 "columns" -- "$EMBR" recall --truth "$T/ids.ivecs" --ids "$T/ids.ivecs" -k 5

if [ "$fails" -ne 0 ]; then
  echo "$fails CLI check(s) failed" >&2
  exit 1
fi
echo "all CLI checks passed"

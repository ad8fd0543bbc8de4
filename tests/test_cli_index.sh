#!/usr/bin/env bash
# Command-line behaviour of `embr index` and `embr recall`: result ids above 2^31-1 are refused for
# .ivecs (naming the file, row and id; nothing written) but printed as text and JSON; with --truth a
# single setting still writes --out-ids/--out-dist and reports no made-up "ef 0"; --json for one
# setting prints JSON; recall@k counts a repeated id once; id files with a NUL byte, a wrong count
# or a non-integer line are refused with one line naming the file and the line.
# Usage: test_cli_index.sh path/to/embr
set -u
EMBR=${1:?usage: test_cli_index.sh path/to/embr}
. "$(dirname "$0")/cli_lib.sh"

printf '0,0\n1,0\n0,1\n5,5\n6,5\n5,6\n' >"$T/base.csv"
printf '0.1,0.2\n5.2,5.1\n' >"$T/q.csv"

# ---- ids above 2^31-1 ----------------------------------------------------------------------------
printf '3000000000\n1\n2\n3\n4\n5\n' >"$T/big.txt"
expect 0 "" -- "$EMBR" index build --spec flat -i "$T/base.csv" -o "$T/big.idx" --ids "$T/big.txt" --quiet
expect 1 "big.ivecs.*: row 0: id 3000000000 does not fit" -- "$EMBR" index search "$T/big.idx" --query "$T/q.csv" -k 3 --out-ids "$T/big.ivecs" --quiet
[ -e "$T/big.ivecs" ] && fail "a refused --out-ids left big.ivecs"
expect 0 "" -- "$EMBR" index search "$T/big.idx" --query "$T/q.csv" -k 1 --quiet
grep -q "^0	3000000000:" "$T/out" || fail "text results lost the 64-bit id: $(cat "$T/out")"
expect 0 "" -- "$EMBR" index search "$T/big.idx" --query "$T/q.csv" -k 2 --json --quiet
grep -q '^{"metric":"l2","k":2,"results":\[{"query":0,"ids":\[3000000000,2\],"distances":\[' "$T/out" ||
  fail "index search --json (one setting) printed no JSON results: $(head -c 300 "$T/out")"

# ---- --truth with --out-ids, one setting ---------------------------------------------------------
expect 0 "" -- "$EMBR" search --base "$T/base.csv" --query "$T/q.csv" -k 3 --out-ids "$T/truth.ivecs" --quiet
expect 0 "" -- "$EMBR" index build --spec flat -i "$T/base.csv" -o "$T/flat.idx" --quiet
expect 0 "" -- "$EMBR" index search "$T/flat.idx" --query "$T/q.csv" -k 3 --truth "$T/truth.ivecs" --out-ids "$T/r.ivecs" --out-dist "$T/r.fvecs" --quiet
cmp -s "$T/r.ivecs" "$T/truth.ivecs" || fail "--truth with --out-ids did not write the exact ids"
[ -s "$T/r.fvecs" ] || fail "--truth with --out-dist wrote nothing"
grep -q "ef 0" "$T/out" && fail "a search without --ef reported 'ef 0': $(cat "$T/out")"
grep -q "^recall@3 1.0000 " "$T/out" || fail "recall line: $(cat "$T/out")"
expect 0 "" -- "$EMBR" index search "$T/flat.idx" --query "$T/q.csv" -k 3 --truth "$T/truth.ivecs" --json --quiet
grep -qE '^\{"recall":1\.000000,"qps":[0-9.]+\}$' "$T/out" || fail "--truth --json (one setting): $(cat "$T/out")"
expect 0 "" -- "$EMBR" index build --spec hnsw:M=4 -i "$T/base.csv" -o "$T/h.idx" --quiet
expect 0 "" -- "$EMBR" index search "$T/h.idx" --query "$T/q.csv" -k 3 --ef 8,16 --truth "$T/truth.ivecs" --json --quiet
grep -qE '^\[\{"ef":8,"recall":1\.000000,"qps":[0-9.]+\},\{"ef":16,"recall":1\.000000,"qps":[0-9.]+\}\]$' "$T/out" ||
  fail "sweep JSON: $(cat "$T/out")"
expect 0 "" -- "$EMBR" index search "$T/h.idx" --query "$T/q.csv" -k 3 --ef 16 --truth "$T/truth.ivecs" --quiet
grep -q "^ef 16 " "$T/out" || fail "--ef 16 not reported: $(cat "$T/out")"
expect 2 "--ef takes positive integers" -- "$EMBR" index search "$T/h.idx" --query "$T/q.csv" --ef 8,,16
expect 2 "--nprobe takes positive integers" -- "$EMBR" index search "$T/h.idx" --query "$T/q.csv" --nprobe 0

# ---- recall@k: a repeated id counts once --------------------------------------------------------------
printf '0,1,2\n3,4,5\n' >"$T/t.csv"
printf '0,0,1\n5,4,3\n' >"$T/r.csv"
expect 0 "" -- "$EMBR" convert "$T/t.csv" "$T/t.ivecs"
expect 0 "" -- "$EMBR" convert "$T/r.csv" "$T/rr.ivecs"
expect 0 "" -- "$EMBR" recall --truth "$T/t.ivecs" --ids "$T/rr.ivecs" -k 3 --json
grep -q '"recall":0.833333,"recall_at_1":0.500000' "$T/out" || fail "recall with a repeated id: $(cat "$T/out")"

# ---- id files -----------------------------------------------------------------------------------------
printf '0\n1\n2\0\n3\n4\n5\n' >"$T/nul.txt"
expect 1 "nul.txt: line 3: NUL byte" -- "$EMBR" index build --spec flat -i "$T/base.csv" -o "$T/x.idx" --ids "$T/nul.txt"
printf '0\n1\n' >"$T/two.txt"
expect 1 "two.txt: 2 ids for 6 vectors" -- "$EMBR" index build --spec flat -i "$T/base.csv" -o "$T/x.idx" --ids "$T/two.txt"
printf '0\n1\n2\nthree\n4\n5\n' >"$T/word.txt"
expect 1 "word.txt: line 4: 'three' is not an id" -- "$EMBR" index build --spec flat -i "$T/base.csv" -o "$T/x.idx" --ids "$T/word.txt"
[ -e "$T/x.idx" ] && fail "a refused build left x.idx"
ls "$T" | grep -q partial && fail "temporary files left behind: $(ls "$T")"

finish

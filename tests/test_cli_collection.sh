#!/usr/bin/env bash
# `embr collection`: help and defaults, create/add/get/search/delete/info/compact end to end,
# vectors from stdin, generated ids, metadata filters, exit codes and one-line messages.
# Usage: test_cli_collection.sh path/to/embr
set -u
EMBR=${1:?usage: test_cli_collection.sh path/to/embr}
. "$(dirname "$0")/cli_lib.sh"

C="$T/coll"
# ---- help ---------------------------------------------------------------------------------------
expect 0 "" -- "$EMBR" collection --help
for s in create add delete get search info compact; do
  grep -q "$s" "$T/out" || fail "collection --help does not list $s"
done
expect 0 "" -- "$EMBR" collection add --help
grep -q "default" "$T/out" || fail "collection add --help shows no defaults"
expect 0 "" -- "$EMBR" collection search --help
for flag in --query --query-id -k --filter --ef --nprobe --with-metadata --json; do
  grep -qe "$flag" "$T/out" || fail "collection search --help does not list $flag"
done
expect 2 "unknown subcommand" -- "$EMBR" collection frobnicate
expect 2 "missing required option --dim" -- "$EMBR" collection create "$C"

# ---- create, add (stdin, generated ids), get ------------------------------------------------------
expect 2 "unknown index kind 'nope'" -- "$EMBR" collection create "$C" --dim 2 --index nope
expect 2 "no parameter" -- "$EMBR" collection create "$C" -d 2 -s hnsw:Q=3
expect 2 "unknown metric" -- "$EMBR" collection create "$C" --dim 2 --metric l3
[ -e "$C" ] && fail "a refused collection create left $C"
expect 0 "" -- "$EMBR" collection create "$C" --dim 2 --index flat
expect 1 "already holds a collection" -- "$EMBR" collection create "$C" --dim 2
printf '1,0\n0,2\n3,4\n' | "$EMBR" collection add "$C" -i - --format csv --quiet || fail "add from stdin"
printf '{"genre":"jazz","year":1999}\n\n{"genre":"rock","year":2005,"q":"it'"'"'s"}\n' >"$T/meta.jsonl"
printf 'a\nb\nc\n' >"$T/ids.txt"
printf -- '-1,0\n5,5\n0,0\n' >"$T/more.csv"
expect 0 "" -- "$EMBR" collection add "$C" -i "$T/more.csv" --ids "$T/ids.txt" --metadata "$T/meta.jsonl" --quiet
expect 0 "" -- "$EMBR" collection get "$C" row-1
grep -q "^vector: 0 2$" "$T/out" || fail "get row-1: $(cat "$T/out")"
expect 0 "" -- "$EMBR" collection get "$C" c --json
grep -qF '"metadata":{"genre":"rock","year":2005,"q":"it'"'"'s"}' "$T/out" || fail "get c --json: $(cat "$T/out")"
expect 1 "no item with id 'zz'" -- "$EMBR" collection get "$C" zz
# next generated ids continue after the largest internal id
printf '9,9\n' | "$EMBR" collection add "$C" -i - --format csv --quiet || fail "second stdin add"
expect 0 "" -- "$EMBR" collection get "$C" row-6

# ---- refused batches change nothing -----------------------------------------------------------------
printf 'x\ny\n' >"$T/two.txt"
expect 1 "2 ids for 3 vectors" -- "$EMBR" collection add "$C" -i "$T/more.csv" --ids "$T/two.txt"
printf 'p\nq\na\n' >"$T/dup.txt"
expect 1 "already in the collection" -- "$EMBR" collection add "$C" -i "$T/more.csv" --ids "$T/dup.txt"
printf '{"a":1}\n[1]\n{}\n' >"$T/bad.jsonl"
printf 'p\nq\nr\n' >"$T/pqr.txt"
expect 1 "must be a JSON object" -- "$EMBR" collection add "$C" -i "$T/more.csv" --ids "$T/pqr.txt" --metadata "$T/bad.jsonl"
printf '1,2,3\n' >"$T/d3.csv"
expect 1 "dimension 3" -- "$EMBR" collection add "$C" -i "$T/d3.csv"
expect 0 "" -- "$EMBR" collection info "$C" --json
grep -q '"count":7' "$T/out" || fail "count after refused adds: $(cat "$T/out")"

# ---- search -----------------------------------------------------------------------------------------
printf '0,0\n' >"$T/q.csv"
expect 0 "" -- "$EMBR" collection search "$C" --query "$T/q.csv" -k 3 --quiet
[ "$(head -1 "$T/out")" = "$(printf '0\t1\tc\t0')" ] || fail "search first hit: $(head -1 "$T/out")"
expect 0 "" -- "$EMBR" collection search "$C" --query "$T/q.csv" -k 5 --filter 'genre = "jazz" or year > 2000' --with-metadata --quiet
[ "$(wc -l <"$T/out")" = 2 ] || fail "filtered search: $(cat "$T/out")"
expect 0 "" -- "$EMBR" collection search "$C" --query-id a -k 1 --json --quiet
grep -q '"ids":\["a"\],"distances":\[0\]' "$T/out" || fail "search --query-id --json: $(cat "$T/out")"
expect 2 "column 7: expected a value" -- "$EMBR" collection search "$C" --query "$T/q.csv" --filter 'year >'
expect 2 "exactly one of" -- "$EMBR" collection search "$C" -k 1

# ---- delete, compact, errors on non-collections ------------------------------------------------------
expect 0 "" -- "$EMBR" collection delete "$C" a row-0 nothere
grep -q "deleted 2 of 3" "$T/out" || fail "delete: $(cat "$T/out")"
expect 0 "" -- "$EMBR" collection compact "$C"
expect 0 "" -- "$EMBR" collection info "$C"
grep -q "items: *5" "$T/out" || fail "info after delete: $(cat "$T/out")"
grep -q "deletes logged: *0" "$T/out" || fail "compact kept the delete log: $(cat "$T/out")"
expect 1 "not an embr collection" -- "$EMBR" collection info "$T"
expect 1 "No such file" -- "$EMBR" collection info "$T/nope"

# ---- bytes of the input reach the terminal escaped -------------------------------------------------
printf 'ok1\nbad\033[2J\377\nok3\n' >"$T/esc.txt"
expect 1 'control character' -- "$EMBR" collection add "$C" -i "$T/more.csv" --ids "$T/esc.txt" --quiet
grep -q $'\033' "$T/err" && fail "an escape sequence reached the terminal: $(od -c "$T/err" | head -3)"
grep -qF "'bad\x1b[2J\xff'" "$T/err" || fail "id not shown escaped: $(cat "$T/err")"

# ---- the index checkpoint cannot be saved: the change is committed, so exit 0 with a warning -------
K="$T/ck"
expect 0 "" -- "$EMBR" collection create "$K" --dim 2 --index flat
rm -f "$K/index.embr" && mkdir "$K/index.embr" # a write that fails like a full disk
printf '1,2\n3,4\n' >"$T/v2.csv"
printf 'k1\nk2\n' >"$T/k.txt"
expect 0 "warning: .*index checkpoint was not saved.*data is committed" -- "$EMBR" collection add "$K" -i "$T/v2.csv" --ids "$T/k.txt" --quiet
[ "$(wc -l <"$T/err")" = 1 ] || fail "checkpoint warning is not one line: $(cat "$T/err")"
expect 1 "already in the collection" -- "$EMBR" collection add "$K" -i "$T/v2.csv" --ids "$T/k.txt" --quiet
expect 0 "warning: .*checkpoint" -- "$EMBR" collection delete "$K" k1
expect 0 "warning: .*compact stopped" -- "$EMBR" collection compact "$K"
rmdir "$K/index.embr"
expect 0 "" -- "$EMBR" collection info "$K" --json
grep -q '"count":1' "$T/out" || fail "count after adds with no checkpoint: $(cat "$T/out")"

# ---- a later batch failing: one line naming the input and what was committed ----------------------
printf '1,2\n3,4\n5,6\n' >"$T/v3.csv"
printf 'n1\nn2\nk2\n' >"$T/k3.txt"
expect 1 "v3.csv .*rows 2..2 failed.*'k2' is already in the collection.*2 rows before it.*committed" -- \
  "$EMBR" collection add "$K" -i "$T/v3.csv" --ids "$T/k3.txt" --batch 2 --quiet
[ "$(wc -l <"$T/err")" = 1 ] || fail "failed batch message is not one line: $(cat "$T/err")"

finish

#!/usr/bin/env bash
# scripts/loc_composites.py (localisation composites for DINO): its selftest (hand-checked IoU and
# box cases; make on generated stand-in emoji: determinism, masks where the emoji was pasted,
# score of the truth against itself), and its errors (one line, exit 1, no folder left behind).
# Skipped (77) when /usr/bin/python3 lacks NumPy or Pillow.
# Usage: test_loc_composites.sh SOURCE_DIR
set -u
SRC=${1:?usage: test_loc_composites.sh SOURCE_DIR}
PY=/usr/bin/python3
"$PY" -c 'import numpy, PIL' 2>/dev/null || { echo "skipped: $PY without numpy/PIL"; exit 77; }
. "$(dirname "$0")/cli_lib.sh"
S="$SRC/scripts/loc_composites.py"
expect 0 "" -- "$PY" "$S" selftest
grep -q "selftest: all checks passed" "$T/out" || fail "selftest: $(cat "$T/out")"
expect 1 "nope: no emoji.jsonl" -- "$PY" "$S" make --emoji "$T/nope" --out "$T/o1"
[ -e "$T/o1" ] && fail "a failed make left $T/o1"
mkdir -p "$T/em/img" "$T/exists"
printf '{"file": "img/a.png", "split": "train"}\n' >"$T/em/emoji.jsonl"
expect 1 "no records with split 'test'" -- "$PY" "$S" make --emoji "$T/em" --out "$T/o2"
printf '{"file": "img/a.png", "split": "test"}\n' >"$T/em/emoji.jsonl"
expect 1 "exists" -- "$PY" "$S" make --emoji "$T/em" --out "$T/exists"
expect 1 "a.png: cannot read" -- "$PY" "$S" make --emoji "$T/em" --out "$T/o3"
[ -n "$(ls "$T" | grep '^o3')" ] && fail "a failed make left $(ls "$T" | grep '^o3')"
expect 1 "composites.tsv: not found" -- "$PY" "$S" score --truth "$T/nope"
finish

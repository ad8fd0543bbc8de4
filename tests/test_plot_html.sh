#!/usr/bin/env bash
# The interactive HTML plot in a real browser: `embr plot` writes a page for two clusters with
# distinct labels, headless Chromium renders it, and test_plot's checker finds each label's colour
# in its half of the canvas (so the embedded data parsed, the script ran and drew the points).
# Also the `embr plot` command: flags, TSV maps with a label column, and error exit codes.
# Skipped (exit 77) when Chromium is not installed; everything before the browser still runs.
# Usage: test_plot_html.sh path/to/embr path/to/test_plot
set -u
EMBR=${1:?usage: test_plot_html.sh path/to/embr path/to/test_plot}
CHECK=${2:?usage: test_plot_html.sh path/to/embr path/to/test_plot}
. "$(dirname "$0")/cli_lib.sh"

# Two clusters as a t-SNE style TSV map: x, y, label. "left" at x ~ -10, "right" at x ~ +10; the
# labels sort as left < right, so left gets the first palette colour.
awk 'BEGIN { srand(3); for (i = 0; i < 600; i++) { r = i % 2;
       printf "%.4f\t%.4f\t%s\n", (r ? 10 : -10) + rand() * 4 - 2, rand() * 8 - 4, r ? "right" : "left" } }' \
  >"$T/map.tsv"
cut -f1,2 "$T/map.tsv" | tr '\t' ',' >"$T/xy.csv"
cut -f3 "$T/map.tsv" >"$T/labels.txt"

# ---- the command ----------------------------------------------------------------------------------
expect 0 "" -- "$EMBR" plot --help
for flag in --input --output --labels --texts --title --width --height --point-size --format; do
  grep -qe "$flag" "$T/out" || fail "plot --help does not list $flag"
done
grep -q "default: 1600" "$T/out" || fail "plot --help shows no defaults"
expect 0 "" -- "$EMBR" plot -i "$T/map.tsv" -o "$T/map.html" --title "Two <clusters>" -q
grep -q '"labels":\["left","right"\]' "$T/map.html" || fail "TSV label column not used"
expect 0 "" -- "$EMBR" plot -i "$T/xy.csv" --labels "$T/labels.txt" -o "$T/csv.png" -q
expect 0 "" -- "$EMBR" plot -i "$T/xy.csv" -o "$T/out.img" --format svg -q
head -c 5 "$T/out.img" | grep -q '<?xml' || fail "--format svg did not write SVG"
# A header line naming the last column "label" makes a numeric last column the labels.
{ printf 'x\ty\tlabel\n'; awk -F'\t' '{ print $1 "\t" $2 "\t" ($3 == "left" ? 0 : 1) }' "$T/map.tsv"; } >"$T/num.tsv"
expect 0 "" -- "$EMBR" plot -i "$T/num.tsv" -o "$T/num.html" -q
grep -q '"labels":\["0","1"\]' "$T/num.html" || fail "header 'label' column not used"

# Without a header, integer classes after decimal coordinates are labels too (t-SNE of digits).
awk -F'\t' '{ print $1 "\t" $2 "\t" ($3 == "left" ? 3 : 10) }' "$T/map.tsv" >"$T/digits.tsv"
expect 0 "" -- "$EMBR" plot -i "$T/digits.tsv" -o "$T/digits.html" -q
grep -q '"labels":\["3","10"\]' "$T/digits.html" || fail "integer label column not used"
# A column of all-different labels is a word map: the words become texts.
awk -F'\t' '{ print $1 "\t" $2 "\tw" NR }' "$T/map.tsv" >"$T/words.tsv"
expect 0 "" -- "$EMBR" plot -i "$T/words.tsv" -o "$T/words.html" -q
grep -q '"labels":\[\].*"texts":\["w1","w2",' "$T/words.html" || fail "word map words not used as texts"
# --in-format tsv reads as `embr convert` does: a column of words is still the labels, but an
# integer column is a coordinate (no guessing of classes).
expect 0 "" -- "$EMBR" plot -i "$T/map.tsv" --in-format tsv -o "$T/strict.html" -q
grep -q '"labels":\["left","right"\]' "$T/strict.html" || fail "--in-format tsv lost the word label column"
expect 0 "" -- "$EMBR" plot -i "$T/digits.tsv" --in-format tsv -o "$T/strict2.html" -q
grep -q '"labels":\[\]' "$T/strict2.html" || fail "--in-format tsv took an integer column for labels"

head -n 10 "$T/labels.txt" >"$T/short.txt"
expect 1 "short.txt: 10 labels for 600 points" -- "$EMBR" plot -i "$T/xy.csv" --labels "$T/short.txt" -o "$T/x.png"
expect 1 "nope.csv" -- "$EMBR" plot -i "$T/nope.csv" -o "$T/x.png"
printf '1\n2\n3\n' >"$T/one.csv"
expect 1 "one.csv: 1 column" -- "$EMBR" plot -i "$T/one.csv" -o "$T/x.png"
printf '1\t2\tA\n3\tx\tB\n' >"$T/bad.tsv"
expect 1 "bad.tsv: line 2, column 2" -- "$EMBR" plot -i "$T/bad.tsv" -o "$T/x.png"
printf '1\t2\tA\n3\t4\n' >"$T/ragged.tsv"
expect 1 "ragged.tsv: line 2 has 2 fields" -- "$EMBR" plot -i "$T/ragged.tsv" -o "$T/x.png"
printf '1,2\nnan,3\n' >"$T/nan.csv"
expect 1 "nan.csv" -- "$EMBR" plot -i "$T/nan.csv" -o "$T/x.png"
expect 1 "missing" -- "$EMBR" plot -i "$T/xy.csv" -o "$T/missing/x.png"
expect 2 "extension" -- "$EMBR" plot -i "$T/xy.csv" -o "$T/x.gif"
expect 2 "gif" -- "$EMBR" plot -i "$T/xy.csv" -o "$T/x.png" --format gif
expect 2 "" -- "$EMBR" plot -i "$T/xy.csv" -o "$T/x.png" --width 5
expect 2 "" -- "$EMBR" plot -o "$T/x.png"
[ -e "$T/x.png" ] && fail "a failed run left x.png"
ls "$T" | grep -q 'tmp\.' && fail "a failed run left a temporary file: $(ls "$T")"

# ---- the page in a browser ----------------------------------------------------------------------------
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
  [ "$fails" -eq 0 ] || exit 1
  echo "skipped: chromium is not installed (apt-get install chromium)" >&2
  exit 77
fi
PROFILE=$(mktemp -d)
trap 'rm -rf "$T" "$PROFILE"' EXIT
# --virtual-time-budget lets the page's script run to completion before the screenshot.
timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$PROFILE" --hide-scrollbars --force-device-scale-factor=1 \
  --window-size=1600,1200 --virtual-time-budget=5000 --screenshot="$T/shot.png" \
  "file://$T/map.html" >"$T/chromium.log" 2>&1
if [ ! -s "$T/shot.png" ]; then
  fail "chromium wrote no screenshot: $(tail -c 400 "$T/chromium.log")"
else
  # The canvas spans the window's width minus the 240-pixel legend (plus its 1-pixel border).
  "$CHECK" --check-screenshot "$T/shot.png" 0 1359 || fail "screenshot check"
fi

finish

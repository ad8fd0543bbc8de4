#!/usr/bin/env bash
# Command-line behaviour of the CLIP commands: `embr embed --texts` (and --images with a CLIP
# model), `embr clip classify`, `embr eval retrieval` (with a model, and from precomputed
# embeddings) and `embr collection search --text/--texts`, on a small generated image folder and
# tests/ref/clip_openai.safetensors (a tiny CLIP in OpenAI's names, no tokenizer).
# The text tower needs a tokenizer: CLIP's merges file from ../shared/data/clip (SHARED_DATA), for
# which the tiny model's token table is padded to CLIP's 49,408 tokens (a converted checkpoint
# and --bpe, as a user would run it). Without the merges file those success paths are skipped
# (said once); every bad-input check runs regardless: exit 1 or 2, one line, no output left.
# Usage: test_cli_clip.sh path/to/embr
set -u
EMBR=${1:?usage: test_cli_clip.sh path/to/embr}
. "$(dirname "$0")/cli_lib.sh"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLIP=$ROOT/tests/ref/clip_openai.safetensors
SHARED=${SHARED_DATA:-$ROOT/../shared/data}
MERGES=$SHARED/clip/bpe_simple_vocab_16e6.txt.gz
[ -f "$MERGES" ] || MERGES=$ROOT/../../shared/data/clip/bpe_simple_vocab_16e6.txt.gz # a git worktree beside main

D=$T/data
for c in 0 1; do
  name=$([ $c = 0 ] && echo cat || echo dog)
  mkdir -p "$D/$name"
  for v in 0 1 2 3; do pgm $c $v >"$D/$name/$v.pgm"; done
done
# The no-output check after every failing command that names -o/--out.
no_output() { [ -e "$1" ] && fail "a failed command left its output $1"; rm -f "$1"; }

# ---- help and the registry --------------------------------------------------------------------------
for sub in "clip classify" "eval retrieval" "embed" "collection search"; do
  # shellcheck disable=SC2086
  "$EMBR" $sub --help >"$T/help" 2>&1 || fail "$sub --help exits non-zero"
done
grep -q -- "--texts" <("$EMBR" embed --help) || fail "embed --help lacks --texts"
grep -q -- "--text " <("$EMBR" collection search --help) || fail "collection search --help lacks --text"
grep -q "classify" <("$EMBR" clip --help) || fail "clip --help lists no classify"
grep -q "^  clip" <("$EMBR" --help) || fail "embr --help lists no clip"
expect 2 "missing subcommand" -- "$EMBR" clip
expect 2 "unknown subcommand" -- "$EMBR" clip nope

# ---- models --------------------------------------------------------------------------------------------
# A model without a text tower: a tiny ResNet.
expect 0 "" -- "$EMBR" train --arch resnet18 --width 4 --input 16 --channels 1 --embedding-dim 8 --batch 4 \
  --epochs 1 --threads 2 --data "$D" -o "$T/resnet.safetensors" -q
# The image tower of a CLIP model through the existing image paths: 8 images, 24 dimensions.
expect 0 "" -- "$EMBR" embed --model "$CLIP" --images "$D" -o "$T/img.npy" --ids "$T/img_ids.txt" -q
"$EMBR" info "$T/img.npy" | grep -q "8 rows x 24 dims" || fail "embed --images with CLIP: $("$EMBR" info "$T/img.npy" 2>&1)"
"$EMBR" info "$T/img.npy" | grep -q "norms: min 1, mean 1, max 1" || fail "CLIP image rows are not unit length"
printf 'cat/0.pgm\ndog/3.pgm\n' >"$D/list.txt"
expect 0 "" -- "$EMBR" embed --model "$CLIP" --images "$D/list.txt" -o "$T/img2.npy" -q

# ---- embed --texts: bad input ------------------------------------------------------------------------------
printf 'a cat\na dog\n' >"$T/texts.txt"
: >"$T/empty.txt"
printf 'a cat\n  \na dog\n' >"$T/blank.txt"
expect 1 "empty.txt: no texts" -- "$EMBR" embed --model "$CLIP" --texts "$T/empty.txt" -o "$T/x.npy"
no_output "$T/x.npy"
expect 1 "blank.txt: line 2: empty text" -- "$EMBR" embed --model "$CLIP" --texts "$T/blank.txt" -o "$T/x.npy"
no_output "$T/x.npy"
expect 1 "resnet.safetensors: a resnet18 model has no text tower" -- "$EMBR" embed --model "$T/resnet.safetensors" --texts "$T/texts.txt" -o "$T/x.npy"
no_output "$T/x.npy"
expect 1 "clip_openai.safetensors: .*no tokenizer.*--bpe" -- "$EMBR" embed --model "$CLIP" --texts "$T/texts.txt" -o "$T/x.npy"
no_output "$T/x.npy"
expect 1 "nowhere.safetensors" -- "$EMBR" embed --model "$T/nowhere.safetensors" --texts "$T/texts.txt" -o "$T/x.npy"
expect 1 "notes.txt" -- "$EMBR" embed --model "$CLIP" --texts "$T/notes.txt" -o "$T/x.npy"
expect 1 "nomerges" -- "$EMBR" embed --model "$CLIP" --texts "$T/texts.txt" --bpe "$T/nomerges.txt" -o "$T/x.npy"
no_output "$T/x.npy"
expect 2 "exactly one of --images and --texts" -- "$EMBR" embed --model "$CLIP" --texts "$T/texts.txt" --images "$D" -o "$T/x.npy"
expect 2 "exactly one of --images and --texts" -- "$EMBR" embed --model "$CLIP" -o "$T/x.npy"
expect 2 "--ids goes with --images" -- "$EMBR" embed --model "$CLIP" --texts "$T/texts.txt" --ids "$T/i.txt" -o "$T/x.npy"
expect 2 "output --out .* is the input --texts" -- "$EMBR" embed --model "$CLIP" --texts "$T/texts.csv" -o "$T/texts.csv"

# ---- clip classify: bad input ------------------------------------------------------------------------------
CL=(clip classify --model "$CLIP" --images "$D")
expect 2 "exactly one of --labels and --labels-file" -- "$EMBR" "${CL[@]}"
expect 2 "exactly one of --labels and --labels-file" -- "$EMBR" "${CL[@]}" --labels cat,dog --labels-file "$T/texts.txt"
expect 2 "label 2 is empty" -- "$EMBR" "${CL[@]}" --labels "cat,,dog"
expect 2 "'cat' is given twice" -- "$EMBR" "${CL[@]}" --labels "cat, dog,cat"
expect 2 "at least 2 labels" -- "$EMBR" "${CL[@]}" --labels cat
expect 2 "--template must hold \{\} exactly once" -- "$EMBR" "${CL[@]}" --labels cat,dog --template "a photo"
expect 2 "--template must hold \{\} exactly once" -- "$EMBR" "${CL[@]}" --labels cat,dog --template "a {} and a {}"
expect 2 "-k" -- "$EMBR" "${CL[@]}" --labels cat,dog -k 0
printf 'cat\n\ndog\n' >"$T/labels_blank.txt"
expect 1 "labels_blank.txt: line 2: empty label" -- "$EMBR" "${CL[@]}" --labels-file "$T/labels_blank.txt"
printf 'cat\ndog\ncat\n' >"$T/labels_dup.txt"
expect 1 "labels_dup.txt: line 3: label 'cat' repeats line 1" -- "$EMBR" "${CL[@]}" --labels-file "$T/labels_dup.txt"
expect 1 "empty.txt: no labels" -- "$EMBR" "${CL[@]}" --labels-file "$T/empty.txt"
expect 1 "nowhere.safetensors" -- "$EMBR" clip classify --model "$T/nowhere.safetensors" --images "$D" --labels cat,dog
expect 1 "a resnet18 model has no text tower" -- "$EMBR" clip classify --model "$T/resnet.safetensors" --images "$D" --labels cat,dog
expect 1 "no tokenizer.*--bpe" -- "$EMBR" "${CL[@]}" --labels cat,dog

# ---- eval retrieval: bad input ------------------------------------------------------------------------------
printf 'cat/0.pgm\ta striped cat\ncat/1.pgm\ta cat\ndog/2.pgm\ta dog\ndog/2.pgm\tanother dog\ndog/3.pgm\ta grey dog\n' >"$T/pairs.tsv"
printf 'cat/0.pgm\ta cat\ncat/9.pgm\ta missing cat\n' >"$T/pairs_missing.tsv"
expect 1 "pairs_missing.tsv: line 2.*cat/9.pgm" -- "$EMBR" eval retrieval --model "$CLIP" --data "$D" --pairs "$T/pairs_missing.tsv"
expect 1 "nowhere.tsv" -- "$EMBR" eval retrieval --model "$CLIP" --data "$D" --pairs "$T/nowhere.tsv"
expect 1 "a resnet18 model has no text tower" -- "$EMBR" eval retrieval --model "$T/resnet.safetensors" --data "$D" --pairs "$T/pairs.tsv"
expect 1 "no tokenizer" -- "$EMBR" eval retrieval --model "$CLIP" --data "$D" --pairs "$T/pairs.tsv"
expect 2 "either --model" -- "$EMBR" eval retrieval --pairs "$T/pairs.tsv"
expect 2 "either --model" -- "$EMBR" eval retrieval --model "$CLIP" --images-emb "$T/img.npy" --texts-emb "$T/img.npy" --pairs "$T/pairs.tsv"
expect 2 "--model needs --data" -- "$EMBR" eval retrieval --model "$CLIP" --pairs "$T/pairs.tsv"
expect 2 "--images-emb needs --texts-emb" -- "$EMBR" eval retrieval --images-emb "$T/img.npy" --pairs "$T/pairs.tsv"
expect 2 "missing required option --pairs" -- "$EMBR" eval retrieval --images-emb "$T/img.npy" --texts-emb "$T/img.npy"
expect 2 "-k" -- "$EMBR" eval retrieval --images-emb "$T/img.npy" --texts-emb "$T/img.npy" --pairs "$T/pairs.tsv" -k 1,0

# ---- eval retrieval from precomputed embeddings ---------------------------------------------------------------
# Images: rows of img.npy (cat/0, cat/1, dog/2, dog/3 = rows 1, 2, 7, 8 of the folder's 8);
# captions: each its image's row, so every caption finds its image first.
"$EMBR" convert "$T/img.npy" "$T/img.csv" >/dev/null 2>&1 ||
  fail "convert to csv failed"
sed -n '1p;2p;7p;8p' "$T/img.csv" >"$T/pi.csv"
sed -n '1p;2p;7p;7p;8p' "$T/img.csv" >"$T/pt.csv"
expect 0 "" -- "$EMBR" eval retrieval --images-emb "$T/pi.csv" --texts-emb "$T/pt.csv" --pairs "$T/pairs.tsv" --json -k 1,2
grep -q '"images":4,"texts":5' "$T/out" || fail "eval retrieval counts: $(cat "$T/out")"
grep -q '"text_to_image":{"recall":{"1":1.000000,"2":1.000000},"median_rank":1,"mean_rank":1}' "$T/out" ||
  fail "eval retrieval of matching rows is not perfect: $(cat "$T/out")"
expect 0 "" -- "$EMBR" eval retrieval --images-emb "$T/pi.csv" --texts-emb "$T/pt.csv" --pairs "$T/pairs.tsv"
grep -q "^retrieval: 4 images, 5 captions" "$T/out" || fail "eval retrieval text output: $(cat "$T/out")"
grep -q "text->image: R@1 1.0000, R@5 1.0000, R@10 1.0000, median rank 1" "$T/out" || fail "eval retrieval text output: $(cat "$T/out")"
expect 1 "pt.csv: 5 rows for the 4 distinct images" -- "$EMBR" eval retrieval --images-emb "$T/pt.csv" --texts-emb "$T/pt.csv" --pairs "$T/pairs.tsv"
expect 1 "pi.csv: 4 rows for the 5 captions" -- "$EMBR" eval retrieval --images-emb "$T/pi.csv" --texts-emb "$T/pi.csv" --pairs "$T/pairs.tsv"
# Without a data folder, image paths are not checked (embeddings computed elsewhere).
head -n 2 "$T/pi.csv" >"$T/p2.csv"
expect 0 "" -- "$EMBR" eval retrieval --images-emb "$T/p2.csv" --texts-emb "$T/p2.csv" --pairs "$T/pairs_missing.tsv" -k 1

# ---- collection search --text: bad input -----------------------------------------------------------------------
expect 0 "" -- "$EMBR" collection create "$T/coll" --dim 24 --metric cosine --index flat
expect 0 "" -- "$EMBR" collection add "$T/coll" -i "$T/img.npy" --ids "$T/img_ids.txt" -q
expect 0 "" -- "$EMBR" collection create "$T/coll8" --dim 8 --metric cosine --index flat
expect 2 "--text needs --model" -- "$EMBR" collection search "$T/coll" --text "a cat"
expect 2 "exactly one of --query, --query-id, --text and --texts" -- "$EMBR" collection search "$T/coll" --text "a cat" --query-id cat/0.pgm --model "$CLIP"
expect 2 "--model goes with --text" -- "$EMBR" collection search "$T/coll" --query-id cat/0.pgm --model "$CLIP"
expect 1 "no tokenizer" -- "$EMBR" collection search "$T/coll" --text "a cat" --model "$CLIP"
expect 1 "a resnet18 model has no text tower" -- "$EMBR" collection search "$T/coll8" --text "a cat" --model "$T/resnet.safetensors"
expect 1 "clip_openai.safetensors: the model's embeddings have 24 dimensions, the collection's vectors 8" -- \
  "$EMBR" collection search "$T/coll8" --text "a cat" --model "$CLIP"
expect 1 "empty.txt: no texts" -- "$EMBR" collection search "$T/coll" --texts "$T/empty.txt" --model "$CLIP"
# Image -> image search over the collection still works as before.
expect 0 "" -- "$EMBR" collection search "$T/coll" --query-id cat/0.pgm -k 1 -q
grep -q "^0	1	cat/0.pgm	" "$T/out" || fail "collection search --query-id: $(cat "$T/out")"

# ---- train --objective clip: a tiny run without any data file (byte-level tokenizer), then its errors --
printf 'cat/0.pgm\ta cat\ncat/1.pgm\ta striped cat\ncat/2.pgm\ta cat\ncat/3.pgm\ta cat\ndog/0.pgm\ta dog\ndog/1.pgm\ta dog\ndog/2.pgm\ta dog\ndog/3.pgm\ta dog\n' >"$T/train_pairs.tsv"
expect 0 "" -- "$EMBR" train --objective clip --data "$D" --pairs "$T/train_pairs.tsv" --epochs 1 --batch 4 -t 2 \
  -o "$T/trained.safetensors" -q
printf 'a cat\na dog\n' >"$T/two.txt"
expect 0 "" -- "$EMBR" embed --model "$T/trained.safetensors" --texts "$T/two.txt" -o "$T/two.csv" -q
[ "$(wc -l <"$T/two.csv")" = 2 ] || fail "embed --texts with a trained model (its own tokenizer): $(cat "$T/two.csv")"
expect 0 "" -- "$EMBR" train --objective clip --data "$D" --pairs "$T/train_pairs.tsv" --epochs 0 -o "$T/untrained.safetensors" -q
[ -f "$T/untrained.safetensors" ] || fail "train --epochs 0 wrote no untrained model"
printf 'cat/0.pgm\ta cat\ncat/7.pgm\ta lost cat\n' >"$T/train_missing.tsv"
expect 1 "train_missing.tsv: line 2.*cat/7.pgm" -- "$EMBR" train --objective clip --data "$D" --pairs "$T/train_missing.tsv" \
  -o "$T/t1.safetensors" -q
no_output "$T/t1.safetensors"
mkdir -p "$T/bad"; cp "$D"/cat/*.pgm "$T/bad/"; printf 'P2\n20 20\n255\n1 2 3\n' >"$T/bad/9.pgm"
printf '0.pgm\ta\n1.pgm\tb\n2.pgm\tc\n9.pgm\td\n' >"$T/bad_pairs.tsv"
expect 1 "9.pgm" -- "$EMBR" train --objective clip --data "$T/bad" --pairs "$T/bad_pairs.tsv" --batch 2 -o "$T/t2.safetensors" -q
no_output "$T/t2.safetensors"
expect 2 "--objective clip needs --pairs" -- "$EMBR" train --objective clip --data "$D" -o "$T/t3.safetensors"
expect 2 "--pairs is for --objective clip" -- "$EMBR" train --data "$D" --pairs "$T/train_pairs.tsv" -o "$T/t3.safetensors"
expect 2 "--epochs must be at least 1" -- "$EMBR" train --data "$D" --epochs 0 -o "$T/t3.safetensors"
expect 2 "not a CLIP configuration" -- "$EMBR" train --objective clip --arch resnet18 --data "$D" --pairs "$T/train_pairs.tsv" -o "$T/t3.safetensors"
no_output "$T/t3.safetensors"


# ---- with a tokenizer: the text paths end to end ----------------------------------------------------------------
if [ ! -f "$MERGES" ]; then
  echo "skipped: the text success paths (no CLIP merges file at $SHARED/clip; set SHARED_DATA)"
  finish
fi
# The tiny model's token table padded to the merges file's 49,408 tokens (rows repeated): a
# converted checkpoint whose tokenizer comes from --bpe.
perl -MJSON::PP -e '
  my ($in, $out, $vocab) = @ARGV;
  open my $f, "<:raw", $in or die "$in: $!"; local $/; my $b = <$f>; close $f;
  my $hl = unpack("Q<", substr($b, 0, 8)); my $h = decode_json(substr($b, 8, $hl)); my $data = substr($b, 8 + $hl);
  my (%new, $blob); $blob = "";
  for my $n (sort { $h->{$a}{data_offsets}[0] <=> $h->{$b}{data_offsets}[0] } grep { $_ ne "__metadata__" } keys %$h) {
    next if $n =~ /^(input|out|grad|r)\./;
    my $t = $h->{$n}; my ($s, $e) = @{$t->{data_offsets}}; my $bytes = substr($data, $s, $e - $s);
    if ($n eq "token_embedding.weight") {
      my ($rows, $cols) = @{$t->{shape}}; my $rb = $cols * 4; my $x = "";
      $x .= substr($bytes, ($_ % $rows) * $rb, $rb) for $rows .. $vocab - 1;
      $bytes .= $x; $t->{shape} = [$vocab, $cols];
    }
    $new{$n} = {dtype => $t->{dtype}, shape => $t->{shape}, data_offsets => [length $blob, length($blob) + length $bytes]};
    $blob .= $bytes;
  }
  my $j = JSON::PP->new->canonical->encode(\%new); $j .= " " x ((8 - length($j) % 8) % 8);
  open my $o, ">:raw", $out or die "$out: $!"; print $o pack("Q<", length $j), $j, $blob; close $o;
' "$CLIP" "$T/clip.safetensors" 49408 || fail "could not write the padded CLIP model"
M=$T/clip.safetensors

# embed --texts: one unit row per line, in line order; a text over the 12-token context is cut, with a note.
printf 'a photo of a cat\na photo of a dog\nthe quick brown fox jumps over the lazy dog again and again\n' >"$T/t3.txt"
expect 0 "note: 1 of 3 texts were longer than the model's context \(12 tokens\) and were truncated" -- \
  "$EMBR" embed --model "$M" --bpe "$MERGES" --texts "$T/t3.txt" -o "$T/t3.npy" -q
"$EMBR" info "$T/t3.npy" | grep -q "3 rows x 24 dims" || fail "embed --texts: $("$EMBR" info "$T/t3.npy" 2>&1)"
"$EMBR" info "$T/t3.npy" | grep -q "norms: min 1, mean 1, max 1" || fail "embed --texts rows are not unit length"
expect 0 "" -- "$EMBR" embed --model "$M" --bpe "$MERGES" --texts "$T/t3.txt" -o "$T/t3raw.csv" --raw -q
[ "$(wc -l <"$T/t3raw.csv")" = 3 ] || fail "embed --texts --raw to csv: $(wc -l <"$T/t3raw.csv") rows"
printf 'a photo of a dog\n' >"$T/t1.txt"
expect 0 "" -- "$EMBR" embed --model "$M" --bpe "$MERGES" --texts "$T/t1.txt" -o "$T/t1.csv" -q
expect 0 "" -- "$EMBR" embed --model "$M" --bpe "$MERGES" --texts "$T/t3.txt" -o "$T/t3.csv" -q
# The batch's length is its longest text's (the causal tower stops at the last end-of-text), so a
# row may differ in the last bits with its batch-mates, as image rows do: equal within 1e-5.
paste -d, "$T/t1.csv" <(sed -n 2p "$T/t3.csv") | awk -F, '{ n = NF / 2; for (i = 1; i <= n; i++) {
  d = $i - $(i + n); if (d > 1e-5 || d < -1e-5) bad = 1 } } END { exit bad }' ||
  fail "a text's row depends on the other lines: $(cat "$T/t1.csv") vs $(sed -n 2p "$T/t3.csv")"
# Standard input.
printf 'a photo of a dog\n' | "$EMBR" embed --model "$M" --bpe "$MERGES" --texts - -o "$T/ts.csv" -q || fail "embed --texts - failed"
cmp -s "$T/ts.csv" "$T/t1.csv" || fail "embed --texts - differs from the file"

# clip classify: every image gets k labels, scores in [-1, 1]; the class folders give the accuracy.
expect 0 "" -- "$EMBR" clip classify --model "$M" --bpe "$MERGES" --images "$D" --labels "cat, dog" -k 2 -q
[ "$(grep -c $'^\(cat\|dog\)/[0-9].pgm\t\(cat\|dog\):[-0-9.]*\t\(cat\|dog\):[-0-9.]*$' "$T/out")" = 8 ] ||
  fail "clip classify lines: $(cat "$T/out")"
grep -q "^accuracy: top-1 [01]\.[0-9]*, top-2 1.0000 (8 images, class folders as the truth)" "$T/out" ||
  fail "clip classify accuracy: $(tail -1 "$T/out")"
expect 0 "" -- "$EMBR" clip classify --model "$M" --bpe "$MERGES" --images "$D" --labels cat,dog,bird \
  --template "a photo of a {}." --template "a drawing of a {}" -k 5 --json -q
grep -q '^{"labels":\["cat","dog","bird"\],"templates":\["a photo of a {}.","a drawing of a {}"\],"k":3,"results":\[{"image":"cat/0.pgm","labels":\[' "$T/out" ||
  fail "clip classify --json: $(head -c 300 "$T/out")"
grep -q '"accuracy":{"images":8,"top1":[0-9.]*,"top3":1.000000}}$' "$T/out" || fail "clip classify --json accuracy: $(tail -c 200 "$T/out")"
# A label file; a list of images (no class folders: no accuracy); folders not all among the labels: a note.
printf 'cat\ndog\n' >"$T/labels.txt"
expect 0 "" -- "$EMBR" clip classify --model "$M" --bpe "$MERGES" --images "$D/list.txt" --labels-file "$T/labels.txt" -k 1 -q
[ "$(wc -l <"$T/out")" = 2 ] || fail "clip classify of a list: $(cat "$T/out")"
expect 0 "note: no accuracy: class folder 'dog' is not among the labels" -- \
  "$EMBR" clip classify --model "$M" --bpe "$MERGES" --images "$D" --labels cat,bird -q
grep -q "^accuracy" "$T/out" && fail "clip classify printed an accuracy with folders not among the labels"

# eval retrieval with the model.
expect 0 "" -- "$EMBR" eval retrieval --model "$M" --bpe "$MERGES" --data "$D" --pairs "$T/pairs.tsv" --json -q
grep -qE '^\{"images":4,"texts":5,"text_to_image":\{"recall":\{"1":[0-9.]+,"5":1.000000,"10":1.000000\},"median_rank":[0-9.]+,"mean_rank":[0-9.]+\},"image_to_text":' "$T/out" ||
  fail "eval retrieval with a model: $(cat "$T/out")"

# collection search --text / --texts over the image embeddings.
expect 0 "" -- "$EMBR" collection search "$T/coll" --text "a photo of a cat" --model "$M" --bpe "$MERGES" -k 3 -q
[ "$(grep -c $'^0\t[123]\t\(cat\|dog\)/[0-9].pgm\t' "$T/out")" = 3 ] || fail "collection search --text: $(cat "$T/out")"
expect 0 "" -- "$EMBR" collection search "$T/coll" --texts "$T/t3.txt" --model "$M" --bpe "$MERGES" -k 2 --json -q
grep -q '"query":2,"ids":\["' "$T/out" || fail "collection search --texts --json: $(cat "$T/out")"
finish

#!/usr/bin/env bash
# CLIP trained from scratch on the emoji train split (1,535 images with names, short names, tags),
# scored on the 376 held-out emoji, captions = their `name` only (../shared/data/emoji):
#   text -> image and image -> text Recall@1/5/10 and median rank (embr eval retrieval), and
#   zero-shot category accuracy ("a {category} emoji", category in lower case with '&' as 'and',
#   over the held-out images' categories) against the majority class; for each seed the untrained
#   network (--epochs 0) is scored too. CATEGORY=1 adds a caption naming the category to every
#   train image (scripts/emoji_pairs.py --category): the category words are then seen in training,
#   as CLIP's label words are in its web captions; without it they never occur in a caption.
# Chance for text -> image Recall@10 is 10 / 376 = 2.7 %.
#
#   bench/run_clip_emoji.sh [BUILD_DIR]     SEEDS="1 2" EPOCHS="10" THREADS=2 ARCH=clip-tiny CATEGORY=0
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
EMBR=$BUILD/embr
SHARED=${SHARED_DATA:-$HERE/../../shared/data}
[ -x "$EMBR" ] || { echo "build first: make build" >&2; exit 1; }
[ -f "$SHARED/emoji/emoji.jsonl" ] || { echo "skipped: no $SHARED/emoji (the emoji data set, ../shared/data)" >&2; exit 0; }
SEEDS=${SEEDS:-1 2}
EPOCHS=${EPOCHS:-10}
THREADS=${THREADS:-2}
ARCH=${ARCH:-clip-tiny}
OUT=${OUT:-$(mktemp -d)}
python3 "$HERE/../scripts/emoji_pairs.py" --data "$SHARED/emoji" --out "$OUT" $([ "${CATEGORY:-0}" = 1 ] && echo --category) >/dev/null
cut -f1 "$OUT/test_categories.tsv" | sed "s|^|$SHARED/emoji/|" >"$OUT/test.list"
LABELS=$(cut -f2 "$OUT/test_categories.tsv" | tr 'A-Z' 'a-z' | sed 's/&/and/g' | sort -u | tr '\n' ',' | sed 's/,$//')
echo "# $(date -u +%F) $(nproc) cores; $ARCH; epochs $EPOCHS; seeds $SEEDS; category captions ${CATEGORY:-0};" \
  "held-out images $(wc -l <"$OUT/test.list")"
score() { # MODEL LABEL: one JSON line of retrieval and zero-shot figures
  local ret zs
  ret=$("$EMBR" eval retrieval --model "$1" --data "$SHARED/emoji" --pairs "$OUT/test.tsv" --json -t "$THREADS")
  zs=$("$EMBR" clip classify --model "$1" --images "$OUT/test.list" --labels "$LABELS" --template "a {} emoji" \
       -k 1 --json -q -t "$THREADS")
  python3 - "$2" "$OUT/test_categories.tsv" "$ret" "$zs" <<'PY'
import json, sys, collections
label, cats, ret, zs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
truth = [l.rstrip("\n").split("\t")[1].lower().replace("&", "and") for l in open(cats, encoding="utf-8")]
pred = [r["labels"][0] for r in zs["results"]]
acc = sum(p == t for p, t in zip(pred, truth)) / len(truth)
major = collections.Counter(truth).most_common(1)[0][1] / len(truth)
t2i, i2t = ret["text_to_image"], ret["image_to_text"]
print(json.dumps({"run": label, "t2i_r1": t2i["recall"]["1"], "t2i_r5": t2i["recall"]["5"], "t2i_r10": t2i["recall"]["10"],
                  "t2i_median": t2i["median_rank"], "i2t_r1": i2t["recall"]["1"], "i2t_r5": i2t["recall"]["5"],
                  "i2t_r10": i2t["recall"]["10"], "i2t_median": i2t["median_rank"], "zeroshot": acc, "majority": major}))
PY
}
for s in $SEEDS; do
  "$EMBR" train --objective clip --arch "$ARCH" --data "$SHARED/emoji" --pairs "$OUT/train.tsv" \
    --bpe "$SHARED/clip/bpe_simple_vocab_16e6.txt.gz" --epochs 0 --seed "$s" -o "$OUT/untrained$s.safetensors" -q
  score "$OUT/untrained$s.safetensors" "untrained seed $s"
  for e in $EPOCHS; do
    start=$(date +%s)
    "$EMBR" train --objective clip --arch "$ARCH" --data "$SHARED/emoji" --pairs "$OUT/train.tsv" \
      --bpe "$SHARED/clip/bpe_simple_vocab_16e6.txt.gz" --epochs "$e" --seed "$s" -t "$THREADS" -o "$OUT/clip$s-$e.safetensors" -q
    score "$OUT/clip$s-$e.safetensors" "seed $s, $e epochs ($(( $(date +%s) - start )) s)"
  done
done

#!/usr/bin/env bash
# word2vec benchmark: embr (batched updates, and --classic) against gensim's Word2Vec (Debian
# python3-gensim) on the same ~10M-word Debian corpus (scripts/build-corpus.sh) with the same
# settings: skip-gram, negative 5, window 5, sample 1e-4, min-count 5, 2 threads; dim 100 and
# 300; 1 and 5 epochs. Reports whole-process wall time, training words/s (in-vocabulary corpus
# words x epochs / training seconds, counted the same way for both), peak memory (max RSS), and
# analogy accuracy on questions-words.txt restricted to the 30,000 most frequent words, computed
# by `embr w2v eval` for every model. One run at a time. Prints a Markdown table.
#
#   bench/run_w2v.sh [BUILD_DIR] [QUESTIONS]   (QUESTIONS default: ../shared/data/w2v/questions-words.txt)
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
QUESTIONS=${2:-$HERE/../../shared/data/w2v/questions-words.txt}
DATA=${DATA:-$HERE/data}
PY=/usr/bin/python3
EMBR=$BUILD/embr
CONFIGS=${CONFIGS:-"100:1 100:5 300:1 300:5"}
[ -x "$EMBR" ] || { echo "build first: make build" >&2; exit 1; }
[ -f "$QUESTIONS" ] || { echo "no analogy questions at $QUESTIONS (skipping the benchmark)" >&2; exit 1; }
$PY -c 'import gensim' || { echo "needs python3-gensim" >&2; exit 1; }
mkdir -p "$DATA"
CORPUS=$DATA/corpus.txt
[ -s "$CORPUS" ] || "$HERE/../scripts/build-corpus.sh" "$CORPUS"
R=$(mktemp -d)
trap 'rm -rf "$R"' EXIT
COMMON="--window 5 --negative 5 --sample 1e-4 --min-count 5"

peak() { awk '/Maximum resident set size/ {printf "%.0f", $NF/1024}' "$1"; }
acc() { "$EMBR" w2v eval "$1" "$QUESTIONS" --restrict 30000 --json | $PY -c 'import json,sys; d=json.load(sys.stdin); print("%.2f %.2f %.2f" % (100*d["total"], 100*d["semantic"], 100*d["syntactic"]))'; }

printf '| model | dim | epochs | wall s | train words/s | peak MiB | analogy total %% | semantic %% | syntactic %% |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for cfg in $CONFIGS; do
  dim=${cfg%%:*}
  ep=${cfg##*:}
  for tool in embr embr-classic gensim; do
    out=$R/$tool-$dim-$ep.bin
    [ "$tool" = embr-classic ] && [ "$ep" = 5 ] && [ "${CLASSIC5:-0}" = 0 ] && continue
    t0=$(date +%s.%N)
    case $tool in
      embr) /usr/bin/time -v "$EMBR" w2v train -i "$CORPUS" -o "$out" --dim $dim --epochs $ep --threads 2 $COMMON 2>"$R/time" >"$R/log" ;;
      embr-classic) /usr/bin/time -v "$EMBR" w2v train -i "$CORPUS" -o "$out" --dim $dim --epochs $ep --threads 2 $COMMON --classic 2>"$R/time" >"$R/log" ;;
      gensim) /usr/bin/time -v $PY "$HERE/gensim_w2v.py" "$CORPUS" "$out" --dim $dim --epochs $ep --threads 2 >"$R/log" 2>"$R/time" ;;
    esac
    t1=$(date +%s.%N)
    wall=$(echo "$t1 - $t0" | bc)
    if [ $tool = gensim ]; then
      wps=$($PY -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["words_per_s"])' "$R/log")
    else
      # embr's closing line on stderr: "trained ...: N words in S s, W words/s"
      wps=$(grep -o '[0-9]* words/s' "$R/time" | tail -1 | cut -d' ' -f1)
    fi
    read -r tot sem syn < <(acc "$out")
    printf '| %s | %s | %s | %.1f | %s | %s | %s | %s | %s |\n' "$tool" "$dim" "$ep" "$wall" "$wps" "$(peak "$R/time")" "$tot" "$sem" "$syn"
  done
done

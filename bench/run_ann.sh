#!/usr/bin/env bash
# Approximate search benchmark (issue: approximate search and collections). Datasets from
# `embr synth` (seeded): (a) 1,000,000 x 128 clustered vectors, L2; (b) 400,000 x 100 normalised
# clustered vectors, cosine; 10,000 queries each, exact ground truth by `embr search`. Recall@10
# against queries/s sweeps for embr HNSW and IVF-PQ, hnswlib (Debian python3-hnswlib) and faiss
# HNSW / IVF-PQ (python3-faiss) at the same M / ef_construction / nlist / m, with 1 and 2 search
# threads; build time and peak memory of each build. One program at a time. Prints Markdown tables
# and, when python3-matplotlib is installed, writes the curves to docs/ann_curves.png.
#
#   bench/run_ann.sh [BUILD_DIR]        NB_A, NB_B, NQ override the sizes (for a quick run);
#                                       DATASETS="A B" and PARTS="hnsw ivfpq" pick what to run
# IVF-PQ uses m=16 sub-quantizers on A (128 dims) and m=20 on B (100 dims: m must divide the
# dimension, for faiss as for embr).
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${DATA:-$HERE/data}
PY=/usr/bin/python3
EMBR=$BUILD/embr
NB_A=${NB_A:-1000000}
NB_B=${NB_B:-400000}
NQ=${NQ:-10000}
EF="10,16,24,32,48,64,96,128,256"
NPROBE="1,2,4,8,16,32,64,128"
[ -x "$EMBR" ] || { echo "build first: make build" >&2; exit 1; }
$PY -c 'import faiss, hnswlib' || { echo "needs python3-faiss and python3-hnswlib" >&2; exit 1; }
mkdir -p "$DATA"
R=${RESULTS:-$(mktemp -d)}
mkdir -p "$R"
: >"$R/results.jsonl"

dataset() { # name nb dim metric extra-synth-flags
  local name=$1 nb=$2 dim=$3 metric=$4
  shift 4
  if [ ! -s "$DATA/$name.base.fvecs" ]; then
    "$EMBR" synth -n "$nb" --dim "$dim" --clusters 1000 --seed 7 "$@" -o "$DATA/$name.base.fvecs" --queries "$NQ" --query-out "$DATA/$name.query.fvecs"
    "$EMBR" search --base "$DATA/$name.base.fvecs" --query "$DATA/$name.query.fvecs" -k 100 --metric "$metric" --out-ids "$DATA/$name.truth.ivecs" --quiet
  fi
}
peak() { awk '/Maximum resident set size/ {printf "%.0f", $NF/1024}' "$1"; }
wall() { awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; printf "%.1f", s}' "$1"; }

embr_run() { # name metric kind spec knob sweep
  local name=$1 metric=$2 kind=$3 spec=$4 knob=$5 sweep=$6 idx=$R/$1.$3.idx
  /usr/bin/time -v "$EMBR" index build --spec "$spec" --metric "$metric" -i "$DATA/$name.base.fvecs" -o "$idx" --threads 2 --quiet 2>"$R/time"
  echo "{\"data\":\"$name\",\"tool\":\"embr\",\"kind\":\"$kind\",\"build_s\":$(wall "$R/time"),\"peak_mb\":$(peak "$R/time")}" >>"$R/results.jsonl"
  for th in 1 2; do
    "$EMBR" index search "$idx" --query "$DATA/$name.query.fvecs" -k 10 --$knob "$sweep" --truth "$DATA/$name.truth.ivecs" --threads $th --repeat 3 --json |
      $PY -c 'import json,sys; [print(json.dumps(dict(r, data=sys.argv[1], tool="embr", kind=sys.argv[2], threads=int(sys.argv[3]), param=sys.argv[4], value=r[sys.argv[4]]))) for r in json.load(sys.stdin)]' "$name" "$kind" $th "$knob" >>"$R/results.jsonl"
  done
}
peer_run() { # name metric tool sweep extra
  local name=$1 metric=$2 tool=$3 sweep=$4
  shift 4
  /usr/bin/time -v $PY "$HERE/ann_peers.py" "$tool" "$DATA/$name.base.fvecs" "$DATA/$name.query.fvecs" "$DATA/$name.truth.ivecs" \
    --metric "$metric" --sweep "$sweep" "$@" 2>"$R/time" | $PY -c 'import json,sys; [print(json.dumps(dict(json.loads(l), data=sys.argv[1]))) for l in sys.stdin]' "$name" >"$R/peer"
  $PY - "$R/peer" "$(peak "$R/time")" >>"$R/results.jsonl" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for r in rows:
    if "build_s" in r: r["peak_mb"] = int(sys.argv[2])
    print(json.dumps(r))
PYEOF
}

DATASETS=${DATASETS:-A B}
PARTS=${PARTS:-hnsw ivfpq}
case " $DATASETS " in *" A "*) dataset A "$NB_A" 128 l2 ;; esac
case " $DATASETS " in *" B "*) dataset B "$NB_B" 100 cosine --normalize ;; esac
for d in "A l2 16" "B cosine 20"; do
  set -- $d
  case " $DATASETS " in *" $1 "*) ;; *) continue ;; esac
  echo "== dataset $1 ($2)" >&2
  if [[ " $PARTS " == *" hnsw "* ]]; then
    embr_run "$1" "$2" hnsw "hnsw:M=16,efc=200" ef "$EF"
    peer_run "$1" "$2" hnswlib "$EF" --M 16 --efc 200
    peer_run "$1" "$2" faiss-hnsw "$EF" --M 16 --efc 200
  fi
  if [[ " $PARTS " == *" ivfpq "* ]]; then
    embr_run "$1" "$2" ivfpq "ivfpq:nlist=1024,m=$3" nprobe "$NPROBE"
    embr_run "$1" "$2" ivfpq-refine "ivfpq:nlist=1024,m=$3,refine=10" nprobe "$NPROBE"
    peer_run "$1" "$2" faiss-ivfpq "$NPROBE" --nlist 1024 --m "$3"
  fi
done
$PY "$HERE/ann_report.py" "$R/results.jsonl" "$HERE/../docs/ann_curves.png"
echo "raw results: $R/results.jsonl" >&2

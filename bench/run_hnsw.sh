#!/usr/bin/env bash
# HNSW against hnswlib built for this CPU (issue 15 §2). hnswlib is Debian's libhnswlib-dev (its own
# header-only C++ source); bench/hnsw_side_by_side.cpp, compiled here by g++ -O3 -march=native, drives
# it and embr's library (libembr.so of BUILD_DIR, as built) in one process: both build at M=16,
# ef_construction=200 on 2 threads from the same .fvecs files, then sweep ef and report recall@10 and
# queries/s in two modes (batch: one call for all queries; single: one query per call, from 1 or 2
# threads), build time and resident memory added per vector. The two alternate: which builds first
# changes every round, which searches first every pass (the best of PASSES passes counts).
# bench/hnsw_report.py interpolates queries/s at recall 0.95 and 0.99 on each round's curve and
# prints the medians over rounds and their ratio. On a shared machine only these ratios mean much.
#
#   bench/run_hnsw.sh [BUILD_DIR]
#   N=100000 bench/run_hnsw.sh build    reduced size: both data sets at N vectors (estimated 10-15 min
#                                       on a quiet machine; 60 min with other work on it)
# Environment: N (default: the full sizes of bench/run_ann.sh, 1,000,000 x 128 L2 and 400,000 x 100
# cosine), NQ (queries, default 10000; 5000 with N), ROUNDS (3), PASSES (best of, per round: 3),
# EF (the sweep), DATASETS ("A B"), RESULTS (folder for the raw JSON lines).
# Data: `embr synth` seed 7 with the cluster sizes of run_ann.sh (A: 1,000 points per cluster, B: 400),
# exact ground truth by `embr search`; kept in bench/data (DATA).
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${DATA:-$HERE/data}
PY=/usr/bin/python3
EMBR=$BUILD/embr
ROUNDS=${ROUNDS:-3}
PASSES=${PASSES:-3}
EF=${EF:-10,12,14,16,20,24,32,40,48,64,96,128}
DATASETS=${DATASETS:-A B}
[ -x "$EMBR" ] && [ -f "$BUILD/libembr.so" ] || { echo "build first: make build" >&2; exit 1; }
[ -f /usr/include/hnswlib/hnswlib.h ] || { echo "needs Debian's libhnswlib-dev (apt-get install libhnswlib-dev)" >&2; exit 1; }
SBS=$BUILD/bench/hnsw_side_by_side
BUILD_ABS=$(cd "$BUILD" && pwd)
g++ -O3 -march=native -fopenmp -I"$HERE/../include" -o "$SBS" "$HERE/hnsw_side_by_side.cpp" \
  -L"$BUILD_ABS" -Wl,-rpath,"$BUILD_ABS" -lembr
mkdir -p "$DATA"
R=${RESULTS:-$(mktemp -d)}
mkdir -p "$R"
: >"$R/hnsw.jsonl"

if [ -n "${N:-}" ]; then NB_A=$N NB_B=$N NQ=${NQ:-5000} SUF=_$N; else NB_A=1000000 NB_B=400000 NQ=${NQ:-10000} SUF=; fi
dataset() { # name nb dim metric points-per-cluster extra-synth-flags
  local name=$1 nb=$2 dim=$3 metric=$4 per=$5
  shift 5
  if [ ! -s "$DATA/$name.truth.ivecs" ]; then
    "$EMBR" synth -n "$nb" --dim "$dim" --clusters $((nb / per)) --seed 7 "$@" -o "$DATA/$name.base.fvecs" --queries "$NQ" --query-out "$DATA/$name.query.fvecs" >/dev/null
    "$EMBR" search --base "$DATA/$name.base.fvecs" --query "$DATA/$name.query.fvecs" -k 100 --metric "$metric" --out-ids "$DATA/$name.truth.ivecs" --quiet
  fi
}
run() { # name metric round
  "$SBS" "$DATA/$1.base.fvecs" "$DATA/$1.query.fvecs" "$DATA/$1.truth.ivecs" "$2" 16 200 "$EF" 1,2 "$PASSES" "$3" |
    $PY -c 'import json,sys; [print(json.dumps(dict(json.loads(l), data=sys.argv[1]))) for l in sys.stdin]' "$1" >>"$R/hnsw.jsonl"
}
for d in "A l2 $NB_A 128 1000" "B cosine $NB_B 100 400"; do
  set -- $d
  case " $DATASETS " in *" $1 "*) ;; *) continue ;; esac
  name=$1$SUF
  if [ "$1" = B ]; then dataset "$name" "$3" "$4" "$2" "$5" --normalize; else dataset "$name" "$3" "$4" "$2" "$5"; fi
  for r in $(seq 1 "$ROUNDS"); do
    echo "== $name round $r" >&2
    run "$name" "$2" "$r"
  done
done
$PY "$HERE/hnsw_report.py" "$R/hnsw.jsonl"
echo "raw results: $R/hnsw.jsonl" >&2

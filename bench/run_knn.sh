#!/usr/bin/env bash
# Exact k-NN benchmark (issue: foundation): 1,000,000 x 128 float32 base, 10,000 queries, k=10,
# 2 threads. embr against faiss IndexFlatL2/IndexFlatIP (Debian python3-faiss) on the same files,
# and L1 against a NumPy broadcast reference; then the single-query latency against the time to
# stream the base once. Runs one thing at a time. Prints a Markdown table for docs/benchmarks.md.
#
#   bench/run_knn.sh [BUILD_DIR] [NB] [NQ]      (defaults: build 1000000 10000)
#
# Needs: python3-faiss and python3-numpy (apt-get install python3-faiss), a built tree.
set -euo pipefail
BUILD=${1:-build}
NB=${2:-1000000}
NQ=${3:-10000}
NQ_L1_NUMPY=${NQ_L1_NUMPY:-100}
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${DATA:-$HERE/data}
PY=/usr/bin/python3 # Debian's interpreter: where python3-faiss is installed
mkdir -p "$DATA"
EMBR=$BUILD/embr
BENCH=$BUILD/bench/bench_knn
[ -x "$EMBR" ] && [ -x "$BENCH" ] || { echo "build first: make build" >&2; exit 1; }
$PY -c 'import faiss, numpy' || { echo "needs python3-faiss and python3-numpy" >&2; exit 1; }

B=$DATA/knn_base_${NB}.fvecs
Q=$DATA/knn_query_${NQ}.fvecs
if [ ! -s "$B" ] || [ ! -s "$Q" ]; then
  echo "generating $NB x 128 base and $NQ queries (embr synth, seed 1)" >&2
  "$EMBR" synth -n "$NB" --dim 128 --clusters 1000 --seed 1 -o "$B" --queries "$NQ" --query-out "$Q"
fi

R=$(mktemp -d)
trap 'rm -rf "$R"' EXIT
run() { echo "+ $*" >&2; "$@" | tee -a "$R/results.jsonl"; }

for m in l2 ip; do
  run "$BENCH" "$B" "$Q" --metric $m -k 10 --threads 2 --out-ids "$R/embr_$m.ivecs"
  run $PY "$HERE/faiss_knn.py" "$B" "$Q" --metric $m -k 10 --threads 2 --out-ids "$R/faiss_$m.ivecs"
  "$EMBR" recall --truth "$R/faiss_$m.ivecs" --ids "$R/embr_$m.ivecs" -k 10 | sed "s/^/$m agreement with faiss: /" >&2
done
run "$BENCH" "$B" "$Q" --metric cosine -k 10 --threads 2
run "$BENCH" "$B" "$Q" --metric l1 -k 10 --threads 2
run "$BENCH" "$B" "$Q" --metric l1 -k 10 --threads 2 --queries "$NQ_L1_NUMPY" --out-ids "$R/embr_l1.ivecs"
run $PY "$HERE/numpy_l1.py" "$B" "$Q" -k 10 --queries "$NQ_L1_NUMPY" --out-ids "$R/numpy_l1.ivecs"
"$EMBR" recall --truth "$R/numpy_l1.ivecs" --ids "$R/embr_l1.ivecs" -k 10 | sed "s/^/l1 agreement with numpy: /" >&2
for m in l2 ip cosine l1; do
  run "$BENCH" "$B" "$Q" --metric $m -k 10 --single --queries 20 --repeat 3
done

$PY - "$R/results.jsonl" "$NB" "$NQ" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
nb, nq = sys.argv[2], sys.argv[3]
def get(tool, metric, mode="batch", nq=None):
    for r in rows:
        if r["tool"].startswith(tool) and r["metric"] == metric and r["mode"] == mode and (nq is None or r["nq"] == nq):
            return r
full = int(nq)
print(f"\n| metric | embr q/s | peer | peer q/s | ratio | embr GFLOP/s | bare sgemm GFLOP/s | share of sgemm bound |")
print("|---|---|---|---|---|---|---|---|")
for m in ["l2", "ip", "cosine"]:
    e, f = get("embr", m, nq=full), get("faiss", m)
    peer = f"| {f['tool']} | {f['qps']} | **{e['qps']/f['qps']:.1f}x** " if f else "| - | - | - "
    print(f"| {m} | {e['qps']} {peer}| {e['gflops']} | {e['sgemm_gflops']} | {100*e['gflops']/e['sgemm_gflops']:.0f}% |")
e = get("embr", "l1", nq=full)
print(f"| l1 | {e['qps']} | - | - | - | - | - | - |")
nl = [r for r in rows if r["tool"].startswith("numpy")][0]
el = get("embr", "l1", nq=nl["nq"])
print(f"| l1 ({nl['nq']} queries) | {el['qps']} | {nl['tool']} (broadcast, 1 thread) | {nl['qps']} | **{el['qps']/nl['qps']:.0f}x** | - | - | - |")
print(f"\n| single query (1 thread) | ms | stream base once, ms | ratio |")
print("|---|---|---|---|")
for m in ["l2", "ip", "cosine", "l1"]:
    s = get("embr", m, mode="single")
    print(f"| {m} | {s['query_ms']} | {s['stream_ms']} | {s['ratio_to_stream']:.2f}x |")
PYEOF

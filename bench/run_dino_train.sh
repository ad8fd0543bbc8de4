#!/usr/bin/env bash
# One DINO training step, embr against PyTorch (Debian's python3-torch, /usr/bin/python3), side by
# side: bench/bench_dino_train.c (embr__dino_step) and bench/torch_dino_train.py (the same step in
# PyTorch: teacher forward on the global crops, student forward on every crop, DINO loss, backward,
# per-parameter clipping, AdamW, teacher EMA), same network, head, crops, batch and THREADS threads.
# The two programs alternate, ROUNDS times; each prints one JSON line (median step time over STEPS
# steps after a warm-up); the last lines give the medians over rounds and the ratio.
#
#   bench/run_dino_train.sh [BUILD_DIR]   ROUNDS=3 STEPS=3 THREADS=2
#     CONFIGS="vit-tiny:32:4 vit-tiny:32:8 vit-tiny:32:4:256:512:256"
#       each ARCH:BATCH:LOCAL_CROPS[:K:HIDDEN:BOTTLENECK[:GLOBAL:LOCAL]] (head default 4096:2048:256)
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
BENCH=$BUILD/bench/bench_dino_train
[ -x "$BENCH" ] || { echo "build first: make build (bench/bench_dino_train)" >&2; exit 1; }
$PY -c 'import torch' 2>/dev/null || { echo "needs python3-torch (apt-get install python3-torch)" >&2; exit 1; }
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-3}
THREADS=${THREADS:-2}
CONFIGS=${CONFIGS:-"vit-tiny:32:4 vit-tiny:32:8 vit-tiny:32:4:256:512:256"}
echo "# $(date -u +%F) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); torch $($PY -c 'import torch; print(torch.__version__)')"
for r in $(seq 1 "$ROUNDS"); do
  for c in $CONFIGS; do
    IFS=: read -r -a a <<< "$c"
    args=("${a[0]}" "${a[1]}" "${a[2]}" "$STEPS" "$THREADS" "${a[@]:3}")
    "$BENCH" "${args[@]}"
    $PY "$HERE/torch_dino_train.py" "${args[@]}"
  done
done | tee "${RAW:-/dev/stderr}" | $PY -c '
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin if l.startswith("{")]
key = lambda r: (r["arch"], r["batch"], r["global"], r["local"], r["n_local"], r["K"])
for k in dict.fromkeys(key(r) for r in rows):
    sel = {p: [r for r in rows if key(r) == k and r["prog"] == p] for p in ("embr", "torch")}
    med = {p: statistics.median(r["step_s"] for r in sel[p]) for p in sel}
    per = [t["step_s"] / e["step_s"] for e, t in zip(sel["embr"], sel["torch"])]
    print("%s batch %d, 2 x %d + %d x %d px, K %d: embr %.3f s/step (%.1f img/s), PyTorch %.3f s/step (%.1f img/s), "
          "ratio %.2fx (rounds %s); peak MiB embr %.0f, PyTorch %.0f"
          % (k[0], k[1], k[2], k[4], k[3], k[5], med["embr"], k[1] / med["embr"], med["torch"], k[1] / med["torch"],
             med["torch"] / med["embr"], ", ".join("%.2f" % x for x in per),
             max(r["peak_mib"] for r in sel["embr"]), max(r["peak_mib"] for r in sel["torch"])))
'

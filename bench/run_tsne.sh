#!/usr/bin/env bash
# t-SNE benchmark: MNIST test set (../shared/data/mnist, 10,000 images, pixels/255, PCA to 50
# dims once so both tools get identical input), perplexity 30, 1,000 iterations, 2 threads:
# embr (auto method: FFT from 2,000 points up; and Barnes-Hut at 10,000 for comparison) against
# scikit-learn's TSNE (Barnes-Hut). Wall time and peak memory
# of the whole process; the exact KL divergence of each final map (computed the same way for all,
# by `embr tsne eval`, P from the same input at perplexity 30), 10-NN preservation and
# leave-one-out 10-NN label accuracy. Then a scaling run at N = 2,500 / 5,000 / 10,000 / 50,000
# (50,000 = MNIST stacked five times with small jitter). One program at a time.
#
# The last lines give the ratios the issue asks about: scikit-learn's wall time over embr's at
# 10,000 points (auto and Barnes-Hut; median of ROUNDS [3] rounds that alternate between the
# tools) with the KL difference, and embr's time at 50,000 points (median of ROUNDS runs).
# EMBR_TSNE_PROFILE=1 in the environment adds embr's per-phase timing to its stderr (not shown here).
#
#   bench/run_tsne.sh [BUILD_DIR] [MNIST_DIR]      SKIP_SKLEARN_50K=1 skips sklearn's 50k run
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
MNIST=${2:-$HERE/../../shared/data/mnist}
DATA=${DATA:-$HERE/data}
PY=/usr/bin/python3
EMBR=$BUILD/embr
[ -x "$EMBR" ] || { echo "build first: make build" >&2; exit 1; }
[ -f "$MNIST/t10k-images-idx3-ubyte.gz" ] || { echo "no MNIST at $MNIST: skipping" >&2; exit 1; }
$PY -c 'import sklearn' || { echo "needs python3-sklearn" >&2; exit 1; }
mkdir -p "$DATA"
[ -s "$DATA/mnist10k_pca50.npy" ] || $PY "$HERE/mnist_prep.py" "$MNIST" "$DATA"
R=$(mktemp -d)
trap 'rm -rf "$R"' EXIT

# subsets and the jittered 50k stack
$PY - "$DATA" <<'PYEOF'
import sys, numpy as np
d = sys.argv[1]
x = np.load(f"{d}/mnist10k_pca50.npy"); lab = open(f"{d}/mnist10k_labels.txt").read().split()
for n in (2500, 5000):
    np.save(f"{d}/mnist_{n}.npy", x[:n]); open(f"{d}/mnist_{n}_labels.txt", "w").write("\n".join(lab[:n]) + "\n")
rng = np.random.default_rng(0)
big = np.concatenate([x + rng.normal(0, 0.05, x.shape).astype(np.float32) for _ in range(5)])
np.save(f"{d}/mnist_50000.npy", big); open(f"{d}/mnist_50000_labels.txt", "w").write("\n".join(lab * 5) + "\n")
PYEOF
cp "$DATA/mnist10k_pca50.npy" "$DATA/mnist_10000.npy"
cp "$DATA/mnist10k_labels.txt" "$DATA/mnist_10000_labels.txt"

peak() { awk '/Maximum resident set size/ {printf "%.0f", $NF/1024}' "$1"; }
wall() { awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; printf "%.1f", s}' "$1"; }
score() { "$EMBR" tsne eval -i "$DATA/mnist_$1.npy" --map "$2" --labels "$DATA/mnist_$1_labels.txt" --pca 0 --json; }

printf '| N | tool | wall s | peak MiB | exact KL | 10-NN preservation | 10-NN label accuracy |\n|---|---|---|---|---|---|---|\n'
ROUNDS=${ROUNDS:-3}
for n in 10000 2500 5000 50000; do
  rounds=1
  [ "$n" = 10000 ] || [ "$n" = 50000 ] && rounds=$ROUNDS
  for round in $(seq "$rounds"); do
  for tool in embr embr-bh sklearn; do
    [ "$tool" = sklearn ] && [ "$n" = 50000 ] && { [ "${SKIP_SKLEARN_50K:-0}" = 1 ] || [ "$round" -gt 1 ]; } && continue
    [ "$tool" = embr-bh ] && [ "$n" != 10000 ] && continue
    out=$R/$tool-$n.npy
    case $tool in
      embr) /usr/bin/time -v "$EMBR" tsne -i "$DATA/mnist_$n.npy" -o "$out" --pca 0 --threads 2 --quiet \
              ${PLOT:+--plot "$PLOT-$n.png" --labels "$DATA/mnist_${n}_labels.txt" --title "MNIST test set ($n), embr t-SNE"} 2>"$R/time" ;;
      embr-bh) /usr/bin/time -v "$EMBR" tsne -i "$DATA/mnist_$n.npy" -o "$out" --pca 0 --threads 2 --method bh --quiet 2>"$R/time" ;;
      sklearn) /usr/bin/time -v $PY "$HERE/sklearn_tsne.py" "$DATA/mnist_$n.npy" "$out" >/dev/null 2>"$R/time" ;;
    esac
    s=$(score $n "$out")
    kl=$(echo "$s" | $PY -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["kl"])')
    pr=$(echo "$s" | $PY -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["knn_preservation"])')
    ac=$(echo "$s" | $PY -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["knn_accuracy"])')
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$n" "$tool" "$(wall "$R/time")" "$(peak "$R/time")" "$kl" "$pr" "$ac"
    echo "$n $tool $(wall "$R/time") $kl $ac" >>"$R/rows"
  done
  done
done
$PY - "$R/rows" <<'PYEOF'
import sys
import statistics
runs = {}
for line in open(sys.argv[1]):
    n, tool, wall, kl, acc = line.split()
    runs.setdefault((int(n), tool), []).append((float(wall), float(kl), float(acc)))
# the median round's wall time (rounds alternate between the tools), KL and accuracy of round 1
rows = {key: (statistics.median(r[0] for r in v), v[0][1], v[0][2]) for key, v in runs.items()}
sk = rows.get((10000, "sklearn"))
for tool in ("embr", "embr-bh"):
    e = rows.get((10000, tool))
    if sk and e:
        print(f"10000 points, {tool}: {sk[0] / e[0]:.2f}x scikit-learn's speed ({e[0]:.1f} s vs {sk[0]:.1f} s), "
              f"exact KL {100 * (e[1] / sk[1] - 1):+.2f} % vs scikit-learn (bound +2 %), "
              f"10-NN accuracy {e[2] - sk[2]:+.4f} (bound 0.005)")
for tool in ("embr",):
    e = rows.get((50000, tool))
    if e:
        s50 = rows.get((50000, "sklearn"))
        extra = f", exact KL {100 * (e[1] / s50[1] - 1):+.2f} % vs scikit-learn" if s50 else ""
        print(f"50000 points, {tool}: {e[0]:.1f} s (target <= 25 s){extra}")
PYEOF

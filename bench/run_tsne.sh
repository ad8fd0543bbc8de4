#!/usr/bin/env bash
# t-SNE benchmark: MNIST test set (../shared/data/mnist, 10,000 images, pixels/255, PCA to 50
# dims once so both tools get identical input), perplexity 30, 1,000 iterations, 2 threads:
# embr (auto method, and FFT) against scikit-learn's TSNE (Barnes-Hut). Wall time and peak memory
# of the whole process; the exact KL divergence of each final map (computed the same way for all,
# by `embr tsne eval`, P from the same input at perplexity 30), 10-NN preservation and
# leave-one-out 10-NN label accuracy. Then a scaling run at N = 2,500 / 5,000 / 10,000 / 50,000
# (50,000 = MNIST stacked five times with small jitter). One program at a time.
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
for n in 10000 2500 5000 50000; do
  for tool in embr embr-fft sklearn; do
    [ "$tool" = sklearn ] && [ "$n" = 50000 ] && [ "${SKIP_SKLEARN_50K:-0}" = 1 ] && continue
    [ "$tool" = embr-fft ] && [ "$n" != 10000 ] && [ "$n" != 50000 ] && continue
    out=$R/$tool-$n.npy
    case $tool in
      embr) /usr/bin/time -v "$EMBR" tsne -i "$DATA/mnist_$n.npy" -o "$out" --pca 0 --threads 2 --quiet \
              ${PLOT:+--plot "$PLOT-$n.png" --labels "$DATA/mnist_${n}_labels.txt" --title "MNIST test set ($n), embr t-SNE"} 2>"$R/time" ;;
      embr-fft) /usr/bin/time -v "$EMBR" tsne -i "$DATA/mnist_$n.npy" -o "$out" --pca 0 --threads 2 --method fft --quiet 2>"$R/time" ;;
      sklearn) /usr/bin/time -v $PY "$HERE/sklearn_tsne.py" "$DATA/mnist_$n.npy" "$out" >/dev/null 2>"$R/time" ;;
    esac
    s=$(score $n "$out")
    kl=$(echo "$s" | $PY -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["kl"])')
    pr=$(echo "$s" | $PY -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["knn_preservation"])')
    ac=$(echo "$s" | $PY -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["knn_accuracy"])')
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$n" "$tool" "$(wall "$R/time")" "$(peak "$R/time")" "$kl" "$pr" "$ac"
  done
done

#!/usr/bin/env bash
# DINO's multi-crop augmentation, embr (bench_multicrop, C) against torchvision / Pillow
# (torch_multicrop.py), one thread each, on a generated 500x375 RGB picture (ImageNet-like size)
# and on a 28x28 grey one (vit-tiny sizes). Rounds alternate the two so a busy machine slows both
# alike; prints each round and the median ratio torchvision / embr.
# Usage: bench/run_multicrop.sh [BUILD_DIR] [ROUNDS]   (needs /usr/bin/python3 with torchvision)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-$HERE/../build}
ROUNDS=${2:-5}
BIN=$BUILD/bench/bench_multicrop
[ -x "$BIN" ] || { echo "build first: $BIN not found" >&2; exit 1; }
/usr/bin/python3 -c 'import torchvision' 2>/dev/null || { echo "skipped: /usr/bin/python3 has no torchvision" >&2; exit 0; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
/usr/bin/python3 - "$T" <<'PY'
import sys
import numpy as np
from PIL import Image
rng = np.random.RandomState(0)
y, x = np.mgrid[0:375, 0:500].astype(float)
rgb = np.stack([120 + 80 * np.sin(x / 37 + k) * np.cos(y / 23 - k) for k in range(3)], -1) + rng.normal(0, 12, (375, 500, 3))
Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB").save(sys.argv[1] + "/photo.png")
Image.fromarray(np.clip(rgb[:28, :28, 0], 0, 255).astype(np.uint8), "L").save(sys.argv[1] + "/digit.png")
PY
run() { # image gs ls nl n
  local c p
  for r in $(seq "$ROUNDS"); do
    c=$("$BIN" "$T/$1" "$2" "$3" "$4" "$5" | sed 's/.*"ms_per_image":\([0-9.]*\).*/\1/')
    p=$(OMP_NUM_THREADS=1 /usr/bin/python3 "$HERE/torch_multicrop.py" "$T/$1" "$2" "$3" "$4" "$5" | sed 's/.*"ms_per_image": \([0-9.]*\).*/\1/')
    echo "$1 2x$2+$4x$3 round $r: embr $c ms, torchvision $p ms, ratio $(awk -v a="$p" -v b="$c" 'BEGIN { printf "%.2f", a / b }')"
  done | tee "$T/log"
  echo "$1 median ratio: $(awk '{ print $NF }' "$T/log" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')"
}
run photo.png 224 96 8 20
run digit.png 28 12 6 500

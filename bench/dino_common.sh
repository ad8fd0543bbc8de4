# Sourced by bench/run_dino_{knn,emoji,loc}.sh: the DINO training settings they share, read from
# the environment (a script sets its own defaults for BATCH, EPOCHS, LOCAL_CROPS and LR before
# sourcing this), the `embr train` arguments made from them, and the timing helpers.
THREADS=${THREADS:-2}
DINO_OUT=${DINO_OUT:-256}
DINO_HIDDEN=${DINO_HIDDEN:-512}
WARMUP=${WARMUP:-0}
TEACHER_TEMP=${TEACHER_TEMP:-0.04}
MOMENTUM=${MOMENTUM:-0.99}
DROP_PATH=${DROP_PATH:-0}
GLOBAL_SCALE=${GLOBAL_SCALE:-0.4:1}   # crop area ranges (DINO's); milder ones (0.5:1 / 0.2:0.5) did not
LOCAL_SCALE=${LOCAL_SCALE:-0.05:0.4}  # help in a small run (docs/dino.md, "Measured: k-NN on MNIST")
SEED=${SEED:-1}

# dino_args DATA-AND-EXTRA-ARGS...: sets the array COMMON to the training arguments (without
# --epochs and -o): vit-tiny, the settings above and the script's, the teacher temperature
# constant and the last layer never frozen (short runs: docs/dino.md).
dino_args() {
  COMMON=(--objective dino "$@" --arch vit-tiny --batch "$BATCH" --local-crops "$LOCAL_CROPS"
    --dino-out "$DINO_OUT" --dino-hidden "$DINO_HIDDEN" --lr "$LR" --warmup "$WARMUP" --teacher-temp "$TEACHER_TEMP"
    --teacher-temp-warmup 0 --momentum-teacher "$MOMENTUM" --freeze-last-layer 0 --drop-path "$DROP_PATH"
    --global-scale "$GLOBAL_SCALE" --local-scale "$LOCAL_SCALE" --threads "$THREADS" --seed "$SEED")
}

load() { cut -d' ' -f1-3 /proc/loadavg; }
timed() { # label command...: runs it, prints "label: wall s (load before)" on stderr
  local l=$1 t0 t1 before
  shift
  before=$(load)
  t0=$(date +%s.%N)
  "$@"
  t1=$(date +%s.%N)
  echo "$l: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }') s wall (load average before: $before)" >&2
}
header() { echo "date $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, commit $(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo '?')"; }

#!/usr/bin/env bash
# Runs every built fuzz target for a few seconds on its seed corpus (CI smoke run; builds
# nothing). Usage: fuzz/smoke.sh BUILD_DIR SECONDS
# Targets are looked for as BUILD_DIR/fuzz/fuzz_* (CMake) or BUILD_DIR/fuzz_*. New inputs go to a
# scratch directory, so the committed corpus is never modified. Exits non-zero when a target
# crashes, leaks, or allocates more than the malloc limit; the reproducer is kept and printed.
# FUZZ_TIMEOUT (default 10) is the seconds one input may take: raise it when the run shares a
# loaded machine at low priority, where a starved process can pass 10 s of wall time on any input.
set -u
if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
build=$1
secs=$2
here=$(cd "$(dirname "$0")" && pwd)
shopt -s nullglob
targets=("$build"/fuzz/fuzz_* "$build"/fuzz_*)
found=0
failed=0
scratch=$(mktemp -d "${TMPDIR:-/tmp}/embr-fuzz-smoke.XXXXXX")
for exe in "${targets[@]}"; do
  [ -x "$exe" ] && [ -f "$exe" ] || continue
  name=$(basename "$exe")
  corpus="$here/corpus/${name#fuzz_}"
  found=$((found + 1))
  mkdir -p "$scratch/$name/new" "$scratch/$name/artifacts"
  seeds=()
  [ -d "$corpus" ] && seeds=("$corpus")
  echo "== $name: ${secs}s"
  # A 20-byte input must never make a parser allocate much: -malloc_limit_mb catches that.
  if ! "$exe" -max_total_time="$secs" -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=1024 -malloc_limit_mb=256 \
      -print_final_stats=1 -artifact_prefix="$scratch/$name/artifacts/" \
      "$scratch/$name/new" "${seeds[@]}" >"$scratch/$name/log" 2>&1; then
    failed=$((failed + 1))
    tail -n 40 "$scratch/$name/log"
    echo "!! $name failed; reproducer(s):" "$scratch/$name/artifacts/"*
  else
    grep -E '^stat::(number_of_executed_units|new_units_added)' "$scratch/$name/log" | tr '\n' ' '
    echo
  fi
done
if [ "$found" -eq 0 ]; then
  echo "no fuzz targets under $build (configure with -DEMBR_FUZZ=ON, see fuzz/README.md)" >&2
  exit 2
fi
if [ "$failed" -ne 0 ]; then
  echo "$failed of $found fuzz targets failed (logs in $scratch)" >&2
  exit 1
fi
rm -rf "$scratch"
echo "all $found fuzz targets ran ${secs}s without a failure"

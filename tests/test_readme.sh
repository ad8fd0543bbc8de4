#!/usr/bin/env bash
# The documentation runs as written: every ```sh block of README.md's "Quick start" section, then
# the block of docs/tsne.md that shows `tsne transform`, run in order in one empty folder with the
# built `embr` first on PATH. Each block runs under `bash -e`, so the first failing command stops
# the test with the file, the line and the command. A block whose first lines say `# needs: X` is
# skipped with a message unless X is at hand: `source` (the set-up the test itself does: embr on
# PATH, EMBR_SRC = the source folder, an empty folder), `network` (only with EMBR_README_NETWORK=1:
# downloads take minutes), `shared-data` (a SHARED_DATA folder, default ../shared/data beside the
# source folder, as scripts/demo.sh).
# Usage: test_readme.sh SOURCE_DIR path/to/embr
set -u
if [ $# -ne 2 ]; then
  echo "usage: $0 SOURCE_DIR EMBR_BINARY" >&2
  exit 2
fi
src=$(cd "$1" && pwd)
bindir=$(cd "$(dirname "$2")" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir "$T/work" "$T/blocks"

# Writes each ```sh block of FILE (between the lines matching FROM and UNTIL; UNTIL may be empty)
# to $T/blocks/<PREFIX><NNN>.sh, and "FILE:LINE" of its first line to the same name with .where.
extract() {
  awk -v file="$1" -v from="$2" -v until="$3" -v out="$T/blocks/$4" '
    !inside && $0 ~ from { inside = 1; next }
    inside && until != "" && $0 ~ until { exit }
    !inside { next }
    /^```sh[ \t]*$/ { n++; name = sprintf("%s%03d", out, n); print file ":" NR + 1 >(name ".where"); close(name ".where")
                      printf "" >(name ".sh"); body = 1; next }
    body && /^```[ \t]*$/ { body = 0; close(name ".sh"); next }
    body { print >>(name ".sh") }' "$src/$1"
}
extract README.md '^## Quick start' '^## ' a
extract docs/tsne.md '^# ' '' b
# Of docs/tsne.md only the block with `tsne transform` (the rest is reference, not a walk-through).
for f in "$T"/blocks/b*.sh; do grep -q 'tsne transform' "$f" || rm -f "$f" "${f%.sh}.where"; done

shopt -s nullglob
readme_blocks=("$T"/blocks/a*.sh)
tsne_blocks=("$T"/blocks/b*.sh)
# Guard against an extractor that finds nothing (the test would pass vacuously).
if [ ${#readme_blocks[@]} -lt 10 ] || [ ${#tsne_blocks[@]} -ne 1 ]; then
  echo "FAIL: found ${#readme_blocks[@]} quick-start blocks in README.md (expected 10 or more) and" \
    "${#tsne_blocks[@]} tsne transform blocks in docs/tsne.md (expected 1)" >&2
  exit 1
fi

export PATH="$bindir:$PATH" EMBR_SRC="$src" LC_ALL=C
export SHARED_DATA=${SHARED_DATA:-$src/../../shared/data}
# Spinning OpenMP threads would crawl on a loaded machine; results do not depend on this.
export OMP_WAIT_POLICY=PASSIVE
if [ "$(command -v embr)" != "$bindir/embr" ]; then
  echo "FAIL: embr on PATH is $(command -v embr), not $bindir/embr" >&2
  exit 1
fi

ran=0
skipped=0
for block in "${readme_blocks[@]}" "${tsne_blocks[@]}"; do
  where=$(cat "${block%.sh}.where")
  need=$(sed -n '1,3s/^# needs: *\([a-z-]*\).*/\1/p' "$block" | head -n 1)
  case "$need" in
    "") ;;
    source)
      echo "-- $where: skipped (needs: source; the test runs in an empty folder with embr on PATH itself)"
      skipped=$((skipped + 1)); continue ;;
    network)
      if [ "${EMBR_README_NETWORK:-0}" != 1 ]; then
        echo "-- $where: skipped (needs: network; EMBR_README_NETWORK=1 runs it)"
        skipped=$((skipped + 1)); continue
      fi ;;
    shared-data)
      if [ ! -d "$SHARED_DATA" ]; then
        echo "-- $where: skipped (needs: shared-data; no $SHARED_DATA)"
        skipped=$((skipped + 1)); continue
      fi ;;
    *)
      echo "FAIL: $where: unknown '# needs: $need' (source, network or shared-data)" >&2
      exit 1 ;;
  esac
  # Line 1 of the script is the trap, so a block's line k is line k + 1 of the script.
  { echo "trap 'echo \"\$((LINENO - 1)) \$BASH_COMMAND\" >\"$T/failed\"' ERR"; cat "$block"; } >"$T/run.sh"
  rm -f "$T/failed"
  start=$SECONDS
  (cd "$T/work" && timeout 300 bash -e "$T/run.sh") >"$T/log" 2>&1
  code=$?
  echo "-- $where ($((SECONDS - start)) s)"
  if [ "$code" -ne 0 ]; then
    file=${where%:*}
    first=${where##*:}
    line=$first
    cmd="(unknown: exit $code, timed out or killed?)"
    if [ -s "$T/failed" ]; then
      read -r k cmd <"$T/failed"
      line=$((first + k - 1))
    fi
    echo "FAIL: $file:$line (block starting at line $first): exit $code: $cmd" >&2
    echo "--- the block:" >&2
    cat "$block" >&2
    echo "--- its output (last 20 lines):" >&2
    tail -n 20 "$T/log" >&2
    exit 1
  fi
  ran=$((ran + 1))
done
echo "all $ran blocks ran ($skipped skipped)"

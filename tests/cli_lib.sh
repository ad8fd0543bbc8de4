# Shared pieces of the command-line test scripts (sourced): a temporary folder, failure counting,
# and `expect CODE PATTERN -- command...` (exit code must be CODE and stderr match PATTERN; an
# error message must be one line, plus the "Try ... --help" hint for usage errors).
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export LC_ALL=C
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

expect() {
  local code=$1 pat=$2
  shift 3
  "$@" >"$T/out" 2>"$T/err"
  local got=$?
  if [ "$got" != "$code" ]; then
    fail "$* : exit $got, expected $code; stderr: $(head -c 300 "$T/err")"
  elif [ -n "$pat" ] && ! grep -qE -- "$pat" "$T/err"; then
    fail "$* : stderr does not match /$pat/: $(head -c 300 "$T/err")"
  elif [ "$code" != 0 ] && [ "$(wc -l <"$T/err")" -gt 2 ]; then
    fail "$* : error message longer than one line (+hint): $(cat "$T/err")"
  elif [ "$code" = 1 ] && [ "$(wc -l <"$T/err")" -ne 1 ]; then
    fail "$* : expected a one-line message: $(cat "$T/err")"
  fi
}

# Ends the script: a summary line and the exit code.
finish() {
  if [ "$fails" -gt 0 ]; then
    echo "$fails check(s) failed" >&2
    exit 1
  fi
  echo "all checks passed"
  exit 0
}

# A PGM (P2) of class $1, variant $2: stripes whose direction and period depend on the class.
pgm() {
  awk -v c="$1" -v v="$2" 'BEGIN {
    srand(c * 100 + v); n = 20; print "P2"; print n, n; print 255
    for (y = 0; y < n; y++) { line = ""
      for (x = 0; x < n; x++) {
        t = (c % 2 ? x : y) + (c >= 2 ? (c % 2 ? y : x) : 0) + v % 3
        p = int(128 + 90 * sin(t * (1 + c) * 0.6) + 30 * (rand() - 0.5)); if (p < 0) p = 0; if (p > 255) p = 255
        line = line p " " }
      print line } }'
}

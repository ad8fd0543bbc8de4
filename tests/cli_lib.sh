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

#!/usr/bin/env bash
# Every command's --help against the rest of the tool: walks `embr --help` and each command's and
# sub-command's help (from the registry's "subcommands:" lists), then checks that
#  - a short flag means one thing across the whole tool: every help line showing -X also shows
#    the same long name (the table in cli/args.h);
#  - every long flag a help prints is documented somewhere in README.md or docs/*.md.
# Usage: test_cli_docs.sh path/to/embr
set -u
EMBR=${1:?usage: test_cli_docs.sh path/to/embr}
. "$(dirname "$0")/cli_lib.sh"
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# ---- walk the commands ----------------------------------------------------------------------------
# Prints the names listed under "subcommands:" (or, for the top level, under "Commands:").
children() {
  awk '/^(subcommands:|embr: embeddings and retrieval\. Commands:)$/ { on = 1; next }
       on && /^  [a-z0-9]/ { print $1; next }
       on { on = 0 }' "$1"
}
cmds=()
walk() { # command words...
  local f="$T/help.$((${#cmds[@]}))"
  if ! "$EMBR" "$@" --help >"$f" 2>"$T/err"; then
    fail "embr $* --help: exit $?: $(head -c 200 "$T/err")"
    return
  fi
  [ -s "$f" ] || fail "embr $* --help printed nothing on stdout"
  cmds+=("$*")
  cp "$f" "$T/help.$*"
  local c
  for c in $(children "$f"); do walk "$@" "$c"; done
}
"$EMBR" --help >"$T/top" || fail "embr --help: exit $?"
for c in $(children "$T/top"); do walk "$c"; done
[ "${#cmds[@]}" -ge 29 ] || fail "walked only ${#cmds[@]} commands: ${cmds[*]}"
for want in search "index build" "collection search" "tsne transform" "w2v map" "eval identify"; do
  [ -f "$T/help.$want" ] || fail "the walk missed 'embr $want'"
done

# ---- the flags of every help line -------------------------------------------------------------------
# One line per option: COMMAND<TAB>flag flag ... (the spellings before the metavar or help text).
for c in "${cmds[@]}"; do
  awk -v cmd="$c" '/^  -/ {
      out = ""
      for (i = 1; i <= NF; i++) {
        f = $i; sub(/,$/, "", f)
        if (f !~ /^-/) break
        n = split(f, part, "|")
        for (j = 1; j <= n; j++) out = out " " part[j]
      }
      print cmd "\t" substr(out, 2)
    }' "$T/help.$c"
done >"$T/flags"
[ "$(wc -l <"$T/flags")" -gt 150 ] || fail "found only $(wc -l <"$T/flags") option lines"

# ---- one meaning per short flag ---------------------------------------------------------------------
# For each short flag: the long names on each line it appears on; some long name must be on all.
awk -F'\t' '{
    n = split($2, f, " "); shorts = ""; longs = ""
    for (i = 1; i <= n; i++) {
      if (f[i] ~ /^-[A-Za-z]$/) shorts = shorts " " f[i]
      else if (f[i] ~ /^--/) longs = longs " " f[i]
    }
    if (longs == "") next
    ns = split(shorts, sh, " ")
    for (i = 1; i <= ns; i++) {
      lines[sh[i]]++
      nl = split(longs, l, " ")
      for (j = 1; j <= nl; j++) has[sh[i], l[j]]++
      where[sh[i]] = where[sh[i]] sprintf("\n    embr %s: %s", $1, $2)
    }
  }
  END {
    for (k in has) { split(k, p, SUBSEP); if (has[k] == lines[p[1]]) ok[p[1]] = 1 }
    for (x in lines) if (!(x in ok)) printf "short flag %s has more than one meaning:%s\n", x, where[x]
  }' "$T/flags" >"$T/clash"
[ -s "$T/clash" ] && fail "$(cat "$T/clash")"

# The table in cli/args.h names each short flag once, and the helps agree with it.
awk '/short flags: one meaning/ { on = 1 } on && /^ \*   -/ { for (i = 2; i <= NF; i += 2) print $i, $(i + 1) } /\*\/$/ { on = 0 }' \
  "$ROOT/cli/args.h" >"$T/table"
[ "$(wc -l <"$T/table")" -ge 15 ] || fail "cli/args.h: short-flag table not found ($(wc -l <"$T/table") entries)"
[ -z "$(cut -d' ' -f1 "$T/table" | sort | uniq -d)" ] || fail "cli/args.h: a short flag listed twice"
# (a line without any long name, like eval identify's "-k", has nothing to disagree with)
while read -r s l; do
  [ "$s" = -h ] && continue
  grep -P "\t(.* )?$s( .*)?$" "$T/flags" | grep -e ' --' -e $'\t--' | grep -vP "\t(.* )?$l( |$)" >"$T/bad"
  [ -s "$T/bad" ] && fail "help lines with $s but not $l (the table in cli/args.h): $(head -3 "$T/bad")"
done <"$T/table"
for s in $(tr ' ' '\n' <"$T/flags" | cut -f2 | grep -E '^-[A-Za-z]$' | sort -u); do
  grep -q "^$s " "$T/table" || fail "short flag $s is not in the table in cli/args.h"
done

# ---- every long flag documented -----------------------------------------------------------------------
docs=("$ROOT"/README.md "$ROOT"/docs/*.md)
cut -f2 "$T/flags" | tr ' ' '\n' | grep -E '^--[a-z]' | grep -vx -- --help | sort -u >"$T/longs"
[ "$(wc -l <"$T/longs")" -gt 80 ] || fail "found only $(wc -l <"$T/longs") long flags"
while read -r flag; do
  if ! grep -qE -- "$flag([^a-z0-9-]|\$)" "${docs[@]}"; then
    fail "$flag (embr $(grep -P "\t(.* )?$flag( |$)" "$T/flags" | cut -f1 | paste -sd, | sed 's/,/, embr /g')) is in no doc (README.md, docs/*.md)"
  fi
done <"$T/longs"

finish

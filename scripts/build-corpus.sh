#!/usr/bin/env bash
# Builds an English training corpus of about 9.5 million words from Debian packages, for word2vec:
# the GNU Collaborative International Dictionary of English (dict-gcide), WordNet glosses, the Free
# On-line Dictionary of Computing, the Jargon File, the Devil's Dictionary, V.E.R.A., fortune
# cookies and the Perl documentation. (The King James Bible, in bible-kjv, was tried and left out:
# its many kings and queens by name crowd the royal words' neighbourhoods, and "man : king ::
# woman : ?" answered Esther or Mordecai as often as queen.)
#
# Text is lower-cased and reduced to the letters a-z with single spaces, like text8; each
# paragraph (dictionary entry, gloss, fortune) becomes one line, so training windows do not run
# from one entry into the next.
#
#   scripts/build-corpus.sh OUT.txt [CACHE_DIR]
#
# Needs apt-get (package download, no root needed for it) and dpkg-deb. Downloads ~35 MB once
# into CACHE_DIR (default: the directory of OUT.txt, subdirectory corpus-debs).
set -euo pipefail
OUT=${1:?usage: build-corpus.sh OUT.txt [CACHE_DIR]}
CACHE=${2:-$(dirname "$OUT")/corpus-debs}
PKGS="dict-gcide wordnet-base dict-foldoc dict-jargon dict-devil dict-vera fortunes perl-doc"
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
X="$CACHE/extracted"

if [ ! -f "$CACHE/.downloaded" ]; then
  echo "downloading $PKGS" >&2
  (cd "$CACHE" && apt-get download $PKGS >/dev/null)
  touch "$CACHE/.downloaded"
fi
if [ ! -f "$X/.extracted" ]; then
  rm -rf "$X"
  mkdir -p "$X"
  for d in "$CACHE"/*.deb; do dpkg-deb -x "$d" "$X"; done
  touch "$X/.extracted"
fi

# One paragraph per line: lines are joined until a blank line; markup tags are dropped; then
# everything but letters becomes a single space.
paragraphs() {
  awk 'BEGIN { p = "" }
       /^[ \t\r]*$/ { if (p != "") print p; p = ""; next }
       { p = p " " $0 }
       END { if (p != "") print p }'
}
normalise() {
  sed -e 's/<[^>]*>/ /g' | tr 'A-Z' 'a-z' | tr -c 'a-z\n' ' ' | tr -s ' ' | sed -e 's/^ //; s/ $//' | grep -v '^$' || true
}

TMP="$OUT.partial"
{
  zcat "$X/usr/share/dictd/gcide.dict.dz" | paragraphs
  for f in foldoc jargon devil vera; do zcat "$X/usr/share/dictd/$f.dict.dz" | paragraphs; done
  # WordNet data files: the gloss follows '|' on each synset line.
  cat "$X"/usr/share/wordnet/data.{noun,verb,adj,adv} | grep -v '^  ' | sed 's/^[^|]*|//'
  for f in "$X"/usr/share/games/fortunes/*; do
    case "$f" in *.dat | *.u8) continue ;; esac
    [ -f "$f" ] && sed 's/^%$//' "$f" | paragraphs
  done
  find "$X/usr/share/perl" -name '*.pod' -print0 | sort -z | xargs -0 cat | grep -v '^[=]' | paragraphs
} | normalise >"$TMP"
mv "$TMP" "$OUT"
echo "$OUT: $(wc -w <"$OUT") words, $(wc -l <"$OUT") lines" >&2

#!/usr/bin/env bash
# word2vec files across embr and gensim: vectors trained by `embr w2v train` (binary and text) load
# in gensim with the same words, order and values as embr's own text output and `embr convert`;
# vectors written by gensim (binary and text) load in `embr info` / `embr convert` with gensim's
# values, and `embr w2v similar` / `analogy` give gensim's nearest words.
# Skipped (exit 77) when /usr/bin/python3 cannot import gensim.
# Usage: test_w2v_gensim.sh path/to/embr
set -u
EMBR=${1:?usage: test_w2v_gensim.sh path/to/embr}
PY=/usr/bin/python3
if ! "$PY" -c 'import gensim, numpy' >/dev/null 2>&1; then
  echo "skipped: $PY cannot import gensim" >&2
  exit 77
fi
. "$(dirname "$0")/cli_lib.sh"
run() { # a command that must succeed
  "$@" >"$T/out" 2>"$T/err" || fail "$*: exit $?: $(head -c 300 "$T/err")"
}

# A corpus of three topics (20 words each, lines of 6..14 words of one topic), ~45k words.
"$PY" - "$T/c.txt" <<'EOF'
import random, sys
r = random.Random(5)
with open(sys.argv[1], "w") as f:
    for _ in range(4500):
        t = r.choice("xyz")
        f.write(" ".join("%s%d" % (t, r.randrange(20)) for _ in range(r.randint(6, 14))) + "\n")
EOF

# ---- embr writes, gensim reads -------------------------------------------------------------------------
run "$EMBR" w2v train -i "$T/c.txt" -o "$T/e.bin" --dim 16 --epochs 2 --min-count 1 --threads 1 --seed 3 --quiet
run "$EMBR" w2v train -i "$T/c.txt" -o "$T/e.txt" --dim 16 --epochs 2 --min-count 1 --threads 1 --seed 3 --quiet
run "$EMBR" convert "$T/e.bin" "$T/e-conv.txt"
"$PY" - "$T" <<'EOF' || fail "gensim reading embr's files (see above)"
import sys
import numpy as np
from gensim.models import KeyedVectors
T = sys.argv[1]
bad = []
kb = KeyedVectors.load_word2vec_format(T + "/e.bin", binary=True)
kt = KeyedVectors.load_word2vec_format(T + "/e.txt", binary=False)
kc = KeyedVectors.load_word2vec_format(T + "/e-conv.txt", binary=False)

# embr's text file parsed here without gensim: header, then "word v1 .. v16"
with open(T + "/e.txt") as f:
    n, dim = map(int, f.readline().split())
    rows = [line.split() for line in f]
words = [r[0] for r in rows]
vecs = np.array([[float(x) for x in r[1:]] for r in rows], dtype=np.float32)
if (n, dim) != (len(rows), 16) or vecs.shape != (n, 16):
    bad.append("text header %d %d, %d rows" % (n, dim, len(rows)))
# the vocabulary in count order, ties by bytes
counts = {}
for line in open(T + "/c.txt"):
    for w in line.split():
        counts[w] = counts.get(w, 0) + 1
want_order = sorted(counts, key=lambda w: (-counts[w], w.encode()))
if words != want_order:
    bad.append("embr's word order is not count-descending/bytes: %s" % words[:8])
for name, kv in (("binary", kb), ("text", kt), ("converted", kc)):
    if list(kv.index_to_key) != words:
        bad.append("%s: gensim's word order differs from embr's text file" % name)
        continue
    if kv.vector_size != 16:
        bad.append("%s: vector size %d" % (name, kv.vector_size))
    # %.9g text and float32 binary are the same float32 values, bit for bit
    if not np.array_equal(kv.vectors, vecs):
        bad.append("%s: vectors differ from the text file (max diff %g)" % (name, np.abs(kv.vectors - vecs).max()))
# the topics separate (a sanity check that the file holds trained vectors, in gensim's hands)
sims = kb.most_similar("x0", topn=10)
if not all(w.startswith("x") for w, _ in sims[:5]):
    bad.append("gensim: nearest words of x0 in embr's vectors are not its topic: %s" % sims[:5])
for b in bad:
    print("  " + b, file=sys.stderr)

# ---- gensim writes (read by embr below) ----
from gensim.models import Word2Vec
sentences = [line.split() for line in open(T + "/c.txt")]
m = Word2Vec(sentences, vector_size=24, window=4, min_count=1, workers=1, seed=1, epochs=3, sg=1, negative=5)
m.wv.save_word2vec_format(T + "/g.bin", binary=True)
m.wv.save_word2vec_format(T + "/g.txt", binary=False)
with open(T + "/g.words", "w") as f:
    f.write("\n".join(m.wv.index_to_key) + "\n")
sys.exit(1 if bad else 0)
EOF
[ -s "$T/g.bin" ] && [ -s "$T/g.txt" ] || fail "gensim did not write its vectors"

# ---- gensim writes, embr reads -------------------------------------------------------------------------
V=$(wc -l <"$T/g.words")
run "$EMBR" info "$T/g.bin"
grep -q "$V rows x 24 dims" "$T/out" || fail "embr info g.bin: $(cat "$T/out")"
run "$EMBR" info "$T/g.txt"
grep -q "$V rows x 24 dims" "$T/out" || fail "embr info g.txt: $(cat "$T/out")"
run "$EMBR" convert "$T/g.bin" "$T/g-from-bin.txt"
run "$EMBR" convert "$T/g.txt" "$T/g-from-txt.bin"
run "$EMBR" convert "$T/g-from-txt.bin" "$T/g-from-txt.txt"
cmp -s "$T/g-from-bin.txt" "$T/g-from-txt.txt" || fail "gensim's binary and text files read differently"
for w in x0 y7 z13; do
  run "$EMBR" w2v similar "$T/g.bin" "$w" -k 5 --json
  cp "$T/out" "$T/sim-$w.json"
  run "$EMBR" w2v similar "$T/g.txt" "$w" -k 5 --json
  cmp -s "$T/out" "$T/sim-$w.json" || fail "similar $w: binary and text files differ: $(cat "$T/out")"
done
run "$EMBR" w2v analogy "$T/g.bin" x1 x2 y3 -k 5 --json
cp "$T/out" "$T/analogy.json"

"$PY" - "$T" <<'EOF' || fail "embr's reading of gensim's files (see above)"
import sys, json
import numpy as np
from gensim.models import KeyedVectors
T = sys.argv[1]
bad = []
kv = KeyedVectors.load_word2vec_format(T + "/g.bin", binary=True)
kt = KeyedVectors.load_word2vec_format(T + "/g.txt", binary=False)
# embr's conversion of gensim's binary file: gensim's words, order and values
with open(T + "/g-from-bin.txt") as f:
    n, dim = map(int, f.readline().split())
    rows = [line.split() for line in f]
words = [r[0] for r in rows]
vecs = np.array([[float(x) for x in r[1:]] for r in rows], dtype=np.float32)
if words != list(kv.index_to_key):
    bad.append("embr's word order differs from gensim's")
elif not np.array_equal(vecs, kv.vectors):
    bad.append("embr read other values from g.bin (max diff %g)" % np.abs(vecs - kv.vectors).max())
if words == list(kt.index_to_key) and not np.allclose(vecs, kt.vectors, rtol=1e-6, atol=1e-7):
    bad.append("g.txt and g.bin differ in gensim itself beyond rounding")

def compare(label, got, want, score_of):
    """got: embr's [(word, score)], want: gensim's [(word, score)]. Same words in the same order,
    except neighbours whose gensim scores differ by < 1e-5 may swap; scores within 1e-4."""
    if len(got) != len(want):
        bad.append("%s: %d answers, gensim %d" % (label, len(got), len(want)))
        return
    for i, ((gw, gs), (ww, ws)) in enumerate(zip(got, want)):
        if gw != ww and abs(score_of(gw) - ws) > 1e-5:
            bad.append("%s: rank %d is %s, gensim says %s (%s vs %s)" % (label, i, gw, ww, got, want))
            return
        if abs(gs - ws) > 1e-4:
            bad.append("%s: rank %d score %.6f, gensim %.6f" % (label, i, gs, ws))
            return

for w in ("x0", "y7", "z13"):
    got = [(d["word"], d["score"]) for d in json.load(open("%s/sim-%s.json" % (T, w)))["similar"]]
    want = kv.most_similar(w, topn=5)
    compare("similar " + w, got, want, lambda x: float(kv.similarity(w, x)))
# analogy x1 : x2 :: y3 : ?   gensim ranks by the cosine with the mean of unit vectors (the same
# ranking as 3CosAdd); compare the words only (embr's 3CosAdd scores are not cosines).
got = [d["word"] for d in json.load(open(T + "/analogy.json"))["answers"]]
want = kv.most_similar(positive=["x2", "y3"], negative=["x1"], topn=5)
tgt = kv.get_vector("x2", norm=True) - kv.get_vector("x1", norm=True) + kv.get_vector("y3", norm=True)
tgt = tgt / np.linalg.norm(tgt)
cos = lambda x: float(np.dot(kv.get_vector(x, norm=True), tgt))
compare("analogy", [(g, cos(g)) for g in got], [(w_, cos(w_)) for w_, _ in want], cos)
for b in bad:
    print("  " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF

finish

#!/usr/bin/python3
"""Peer for bench/run_w2v.sh: gensim's Word2Vec (Debian python3-gensim) on the same corpus and
settings. Prints one JSON line: vocabulary and training times, words/s counted like embr's
(in-vocabulary corpus words x epochs / training seconds), and writes the vectors in word2vec
binary format for the shared evaluation."""
import argparse
import json
import logging
import time

from gensim.models import Word2Vec
from gensim.models.word2vec import LineSentence
import gensim

ap = argparse.ArgumentParser()
ap.add_argument("corpus")
ap.add_argument("out")
ap.add_argument("--dim", type=int, default=100)
ap.add_argument("--window", type=int, default=5)
ap.add_argument("--negative", type=int, default=5)
ap.add_argument("--sample", type=float, default=1e-4)
ap.add_argument("--min-count", type=int, default=5)
ap.add_argument("--epochs", type=int, default=5)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--cbow", action="store_true")
a = ap.parse_args()
logging.basicConfig(level=logging.WARNING)

t0 = time.perf_counter()
m = Word2Vec(vector_size=a.dim, window=a.window, negative=a.negative, sample=a.sample,
             min_count=a.min_count, workers=a.threads, sg=0 if a.cbow else 1, seed=1)
m.build_vocab(LineSentence(a.corpus))
t1 = time.perf_counter()
m.train(LineSentence(a.corpus), total_examples=m.corpus_count, epochs=a.epochs)
t2 = time.perf_counter()
m.wv.save_word2vec_format(a.out, binary=True)
words = m.corpus_total_words  # raw words; in-vocabulary ones are counted below
invocab = int(sum(m.wv.get_vecattr(w, "count") for w in m.wv.index_to_key))
print(json.dumps({"tool": "gensim " + gensim.__version__, "dim": a.dim, "epochs": a.epochs,
                  "vocab": len(m.wv), "corpus_words": invocab, "vocab_s": round(t1 - t0, 2),
                  "train_s": round(t2 - t1, 2),
                  "words_per_s": round(invocab * a.epochs / (t2 - t1))}))

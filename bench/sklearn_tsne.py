#!/usr/bin/python3
"""Peer for bench/run_tsne.sh: scikit-learn's TSNE (Debian python3-sklearn), Barnes-Hut, on the
same input as embr: perplexity 30, 1000 iterations, PCA initialisation, learning rate 'auto',
2 threads. Times fit_transform only and writes the map as .npy."""
import json
import sys
import time

import numpy as np
import sklearn
from sklearn.manifold import TSNE

x = np.load(sys.argv[1])
t0 = time.perf_counter()
y = TSNE(n_components=2, perplexity=30, n_iter=1000, init="pca", learning_rate="auto",
         method="barnes_hut", angle=0.5, n_jobs=2, random_state=0).fit_transform(x)
t = time.perf_counter() - t0
np.save(sys.argv[2], y.astype(np.float32))
print(json.dumps({"tool": "scikit-learn " + sklearn.__version__, "n": int(x.shape[0]), "seconds": round(t, 2)}))

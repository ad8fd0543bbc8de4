#!/usr/bin/python3
"""Prepares the MNIST test set for the t-SNE benchmark: pixels / 255 as float32 (10000 x 784),
the same data reduced to 50 dims by PCA (scikit-learn, so both tools get identical input), and
one label per line.

    bench/mnist_prep.py MNIST_DIR OUT_DIR     (MNIST_DIR holds t10k-images-idx3-ubyte.gz ...)
"""
import gzip
import os
import sys

import numpy as np
from sklearn.decomposition import PCA

src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
with gzip.open(os.path.join(src, "t10k-images-idx3-ubyte.gz")) as f:
    raw = f.read()
magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">i4")
assert magic == 2051, "not an idx3 image file"
x = np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, rows * cols).astype(np.float32) / 255.0
with gzip.open(os.path.join(src, "t10k-labels-idx1-ubyte.gz")) as f:
    raw = f.read()
assert np.frombuffer(raw[:4], dtype=">i4")[0] == 2049, "not an idx1 label file"
labels = np.frombuffer(raw[8:], dtype=np.uint8)
np.save(os.path.join(out, "mnist10k.npy"), x)
np.save(os.path.join(out, "mnist10k_pca50.npy"), PCA(50, random_state=0).fit_transform(x).astype(np.float32))
with open(os.path.join(out, "mnist10k_labels.txt"), "w") as f:
    f.write("\n".join(str(int(v)) for v in labels) + "\n")
print(f"{n} images -> {out}", file=sys.stderr)

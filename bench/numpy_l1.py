#!/usr/bin/python3
"""Peer for bench/run_knn.sh: L1 (Manhattan) k-NN by NumPy broadcasting, in blocks so the
temporary |q - b| array stays in memory. Times the search only; prints one JSON line."""
import argparse
import json
import sys
import time

import numpy as np

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from vecs_io import read_fvecs, write_ivecs  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("base")
ap.add_argument("query")
ap.add_argument("-k", type=int, default=10)
ap.add_argument("--queries", type=int, default=100)
ap.add_argument("--out-ids")
a = ap.parse_args()

xb = read_fvecs(a.base)
xq = read_fvecs(a.query)[: a.queries]
QB, BB = 8, 8192
t0 = time.perf_counter()
ids = np.empty((xq.shape[0], a.k), dtype=np.int64)
for q0 in range(0, xq.shape[0], QB):
    q = xq[q0:q0 + QB]
    d = np.empty((q.shape[0], xb.shape[0]), dtype=np.float32)
    for b0 in range(0, xb.shape[0], BB):
        d[:, b0:b0 + BB] = np.abs(q[:, None, :] - xb[None, b0:b0 + BB, :]).sum(-1)
    part = np.argpartition(d, a.k - 1, axis=1)[:, : a.k]
    order = np.take_along_axis(d, part, 1).argsort(axis=1, kind="stable")
    ids[q0:q0 + QB] = np.take_along_axis(part, order, 1)
t = time.perf_counter() - t0
if a.out_ids:
    write_ivecs(a.out_ids, ids)
print(json.dumps({"tool": "numpy " + np.__version__, "mode": "batch", "metric": "l1", "threads": 1,
                  "nb": xb.shape[0], "nq": xq.shape[0], "dim": xb.shape[1], "k": a.k,
                  "seconds": round(t, 3), "qps": round(xq.shape[0] / t, 2)}))

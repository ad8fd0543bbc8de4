#!/usr/bin/python3
"""Peer for bench/run_knn.sh: exact search with faiss IndexFlatL2 / IndexFlatIP (Debian's
python3-faiss), timing the search call only. Prints one JSON line like bench_knn."""
import argparse
import json
import sys
import time

import faiss
import numpy as np

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from vecs_io import read_fvecs, write_ivecs  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("base")
ap.add_argument("query")
ap.add_argument("--metric", default="l2", choices=["l2", "ip"])
ap.add_argument("-k", type=int, default=10)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--queries", type=int, default=-1)
ap.add_argument("--out-ids")
a = ap.parse_args()

faiss.omp_set_num_threads(a.threads)
xb = read_fvecs(a.base)
xq = read_fvecs(a.query)
if a.queries >= 0:
    xq = xq[: a.queries]
index = faiss.IndexFlatL2(xb.shape[1]) if a.metric == "l2" else faiss.IndexFlatIP(xb.shape[1])
index.add(xb)
t0 = time.perf_counter()
D, I = index.search(xq, a.k)
t = time.perf_counter() - t0
if a.out_ids:
    write_ivecs(a.out_ids, I)
print(json.dumps({"tool": "faiss " + faiss.__version__, "mode": "batch", "metric": a.metric,
                  "threads": a.threads, "nb": xb.shape[0], "nq": xq.shape[0], "dim": xb.shape[1],
                  "k": a.k, "seconds": round(t, 3), "qps": round(xq.shape[0] / t, 1),
                  "gflops": round(2.0 * xb.shape[0] * xq.shape[0] * xb.shape[1] / t / 1e9, 1)}))

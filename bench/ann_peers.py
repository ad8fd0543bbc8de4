#!/usr/bin/python3
"""Peers for bench/run_ann.sh: hnswlib (Debian python3-hnswlib) and faiss (python3-faiss) HNSW and
IVF-PQ on the same files and parameters as embr. Prints one JSON line per (build) and per search
setting: {"tool", "kind", "threads", "param", "value", "recall", "qps"}; search times are the best
of --repeat runs over all queries, recall@10 against the given ground truth."""
import argparse
import json
import sys
import time

import numpy as np

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from vecs_io import read_fvecs, read_ivecs  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("tool", choices=["hnswlib", "faiss-hnsw", "faiss-ivfpq"])
ap.add_argument("base")
ap.add_argument("query")
ap.add_argument("truth")
ap.add_argument("--metric", default="l2", choices=["l2", "cosine"])
ap.add_argument("--M", type=int, default=16)
ap.add_argument("--efc", type=int, default=200)
ap.add_argument("--nlist", type=int, default=1024)
ap.add_argument("--m", type=int, default=16)
ap.add_argument("--sweep", default="16,32,64")
ap.add_argument("--threads", default="1,2")
ap.add_argument("--build-threads", type=int, default=2)
ap.add_argument("--repeat", type=int, default=3)
ap.add_argument("-k", type=int, default=10)
ap.add_argument("--index-cache", help="hnswlib: load the graph from this file if it exists, else build and save it "
                "(for repeated search-only runs)")
a = ap.parse_args()

xb, xq, gt = read_fvecs(a.base), read_fvecs(a.query), read_ivecs(a.truth)[:, : a.k]
if a.metric == "cosine":  # unit vectors: inner product ranks as cosine
    xb /= np.linalg.norm(xb, axis=1, keepdims=True) + 1e-30
    xq /= np.linalg.norm(xq, axis=1, keepdims=True) + 1e-30
sweep = [int(v) for v in a.sweep.split(",")]
threads = [int(v) for v in a.threads.split(",")]


def recall(ids):
    return float(np.mean([len(set(ids[i]) & set(gt[i])) / a.k for i in range(len(gt))]))


def emit(**kw):
    print(json.dumps(kw), flush=True)


def timed(fn):
    best = 1e30
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


if a.tool == "hnswlib":
    import hnswlib
    import os
    ix = hnswlib.Index(space="l2" if a.metric == "l2" else "ip", dim=xb.shape[1])
    if a.index_cache and os.path.exists(a.index_cache):
        ix.load_index(a.index_cache, max_elements=xb.shape[0])
    else:
        ix.init_index(max_elements=xb.shape[0], M=a.M, ef_construction=a.efc, random_seed=100)
        ix.set_num_threads(a.build_threads)
        t0 = time.perf_counter()
        ix.add_items(xb, np.arange(xb.shape[0]))
        emit(tool="hnswlib", kind="hnsw", build_s=round(time.perf_counter() - t0, 2), threads=a.build_threads)
        if a.index_cache:
            ix.save_index(a.index_cache)
    for th in threads:
        ix.set_num_threads(th)
        for ef in sweep:
            ix.set_ef(max(ef, a.k))
            t, (ids, _) = timed(lambda: ix.knn_query(xq, k=a.k))
            emit(tool="hnswlib", kind="hnsw", threads=th, param="ef", value=ef, recall=round(recall(ids), 5), qps=round(len(xq) / t, 1))
else:
    import faiss
    faiss.omp_set_num_threads(a.build_threads)
    mt = faiss.METRIC_L2 if a.metric == "l2" else faiss.METRIC_INNER_PRODUCT
    d = xb.shape[1]
    if a.tool == "faiss-hnsw":
        ix = faiss.IndexHNSWFlat(d, a.M, mt)
        ix.hnsw.efConstruction = a.efc
        t0 = time.perf_counter()
        ix.add(xb)
    else:
        q = faiss.IndexFlat(d, mt)
        ix = faiss.IndexIVFPQ(q, d, a.nlist, a.m, 8, mt)
        t0 = time.perf_counter()
        ix.train(xb[np.random.default_rng(0).permutation(len(xb))[: 256 * a.nlist]])
        ix.add(xb)
    emit(tool="faiss " + faiss.__version__, kind=a.tool, build_s=round(time.perf_counter() - t0, 2), threads=a.build_threads)
    for th in threads:
        faiss.omp_set_num_threads(th)
        for v in sweep:
            if a.tool == "faiss-hnsw":
                ix.hnsw.efSearch = max(v, a.k)
            else:
                ix.nprobe = v
            t, (_, ids) = timed(lambda: ix.search(xq, a.k))
            emit(tool="faiss " + faiss.__version__, kind=a.tool, threads=th, param="ef" if a.tool == "faiss-hnsw" else "nprobe",
                 value=v, recall=round(recall(ids), 5), qps=round(len(xq) / t, 1))

#!/usr/bin/env python3
"""Per-call overhead of a 1-query search from Python: embr's binding against the C call, and
hnswlib's and faiss's Python bindings on the same data (issue 14's target: embr's Python call
<= 5 us above the C call).

For each index size it builds an HNSW index (M=16, efConstruction=200) in embr, hnswlib and faiss
on the same random vectors, then times `search(one query, k)` one call per query with one thread,
REPEATS rounds over the queries, reporting the median round's ns per call. embr's C baseline is
bench_search1 (built with the project: build/bench/bench_search1) on the index embr saved; the
Python figure minus the C figure is the binding's overhead. A flat (exact) index over a few
hundred vectors is timed too: there the search itself is tiny, so the figure is mostly overhead.
Prints one JSON line per measurement and a table.

Usage: bench/python_overhead.py [--sizes 1000,10000] [--dim 64] [--k 10] [--ef 64]
                                [--repeats 21] [--queries 2000] [--c-bench build/bench/bench_search1]
Run with the Python that has embr installed (make python: build/venv/bin/python). Timings need a
quiet machine: nothing else running.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def per_call_ns(fn, queries, repeats):
    """Median over rounds of the mean ns per call of fn(q) for q in queries."""
    for q in queries[:50]:  # warm-up
        fn(q)
    rounds = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for q in queries:
            fn(q)
        rounds.append((time.perf_counter_ns() - t0) / len(queries))
    return float(np.median(rounds))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--ef", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--flat-size", type=int, default=256)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--c-bench", default=os.path.join(here, "..", "build", "bench", "bench_search1"))
    a = ap.parse_args()

    import embr
    embr.set_num_threads(1)
    try:
        import hnswlib
    except ImportError:
        hnswlib = None
    try:
        import faiss
        faiss.omp_set_num_threads(1)
    except ImportError:
        faiss = None

    rng = np.random.default_rng(1)
    results = []

    def report(**r):
        results.append(r)
        print(json.dumps(r), flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(s) for s in a.sizes.split(",")]:
            xb = rng.standard_normal((n, a.dim)).astype(np.float32)
            xq = rng.standard_normal((a.queries, a.dim)).astype(np.float32)
            rows = [xq[i:i + 1] for i in range(len(xq))]  # (1, dim) views: no copies in the timed loop

            ix = embr.Index(a.dim, "hnsw:M=16,efc=200", "l2")
            ix.add(xb)
            report(impl="embr-python", index="hnsw", n=n, dim=a.dim, k=a.k, ef=a.ef,
                   ns_per_call=per_call_ns(lambda q: ix.search(q, a.k, ef=a.ef), rows, a.repeats))
            idx_path, q_path = os.path.join(tmp, "i.embr"), os.path.join(tmp, "q.npy")
            ix.save(idx_path)
            np.save(q_path, xq)
            if os.path.exists(a.c_bench):
                out = subprocess.run([a.c_bench, idx_path, q_path, str(a.k), str(a.ef), str(a.repeats)],
                                     check=True, capture_output=True, text=True).stdout
                c = json.loads(out)
                report(impl="embr-c", index="hnsw", n=n, dim=a.dim, k=a.k, ef=a.ef, ns_per_call=c["ns_per_call"])
            else:
                print(f"(no {a.c_bench}: build it with `make` for the C baseline)", file=sys.stderr)

            if hnswlib is not None:
                h = hnswlib.Index(space="l2", dim=a.dim)
                h.init_index(max_elements=n, M=16, ef_construction=200, random_seed=1)
                h.set_num_threads(1)
                h.add_items(xb)
                h.set_ef(a.ef)
                report(impl="hnswlib", index="hnsw", n=n, dim=a.dim, k=a.k, ef=a.ef,
                       ns_per_call=per_call_ns(lambda q: h.knn_query(q, k=a.k, num_threads=1), rows, a.repeats))
            if faiss is not None:
                f = faiss.IndexHNSWFlat(a.dim, 16)
                f.hnsw.efConstruction = 200
                f.add(xb)
                f.hnsw.efSearch = a.ef
                report(impl="faiss", index="hnsw", n=n, dim=a.dim, k=a.k, ef=a.ef,
                       ns_per_call=per_call_ns(lambda q: f.search(q, a.k), rows, a.repeats))

        # A tiny exact index: the call is nearly all overhead.
        n = a.flat_size
        xb = rng.standard_normal((n, a.dim)).astype(np.float32)
        xq = rng.standard_normal((a.queries, a.dim)).astype(np.float32)
        rows = [xq[i:i + 1] for i in range(len(xq))]
        fl = embr.Index(a.dim, "flat", "l2")
        fl.add(xb)
        report(impl="embr-python", index="flat", n=n, dim=a.dim, k=a.k,
               ns_per_call=per_call_ns(lambda q: fl.search(q, a.k), rows, a.repeats))
        fl.save(os.path.join(tmp, "f.embr"))
        np.save(os.path.join(tmp, "q.npy"), xq)
        if os.path.exists(a.c_bench):
            out = subprocess.run([a.c_bench, os.path.join(tmp, "f.embr"), os.path.join(tmp, "q.npy"), str(a.k), "0",
                                  str(a.repeats)], check=True, capture_output=True, text=True).stdout
            report(impl="embr-c", index="flat", n=n, dim=a.dim, k=a.k, ns_per_call=json.loads(out)["ns_per_call"])
        if faiss is not None:
            ff = faiss.IndexFlatL2(a.dim)
            ff.add(xb)
            report(impl="faiss", index="flat", n=n, dim=a.dim, k=a.k,
                   ns_per_call=per_call_ns(lambda q: ff.search(q, a.k), rows, a.repeats))

    print("\n| index | n | embr C (us) | embr Python (us) | overhead (us) | hnswlib (us) | faiss (us) |")
    print("|---|---|---|---|---|---|---|")
    keys = sorted({(r["index"], r["n"]) for r in results})
    for kind, n in keys:
        get = {r["impl"]: r["ns_per_call"] / 1000 for r in results if r["index"] == kind and r["n"] == n}
        c, py = get.get("embr-c"), get.get("embr-python")
        fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        over = None if c is None or py is None else py - c
        print(f"| {kind} | {n} | {fmt(c)} | {fmt(py)} | {fmt(over)} | {fmt(get.get('hnswlib'))} | {fmt(get.get('faiss'))} |")


if __name__ == "__main__":
    main()

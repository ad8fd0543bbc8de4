#!/usr/bin/env python3
"""Issue 14's targets for the Python package, measured in alternating rounds (medians):

  overhead  per-call time of a 1-query Index.search on small indexes: embr from Python, the same
            search from C (bench_search1: the C call alone), hnswlib's and faiss's Python bindings
            on the same vectors (HNSW M=16, efConstruction=200, ef as given; and a tiny flat index,
            where the call is nearly all overhead). Target: embr's Python call <= 5 us above C.
  batch     batch search throughput (queries/s) of one Index.search(xq) call from Python against
            the CLI's `embr index search` on the same index file and queries (its own timer, search
            only). Target: Python within 5 % of the CLI.
  threads   several Python threads searching one index (1-query calls and 100-query calls with
            threads=1 each): queries/s with 1 and 2 Python threads. Target: scales with the cores
            (the GIL is released during the search).

Every measurement of a part runs once per round, the order rotating from round to round, so that
a load that comes and goes on the machine hits all of them alike; each figure is the median over
rounds, and the overhead is the median of the per-round differences (Python minus C). One JSON
line per figure, then a table per part.

Usage (with the Python that has embr: make python, then build/venv/bin/python):
  bench/python_overhead.py [--parts overhead,batch,threads] [--rounds 15] [--sizes 1000,10000]
      [--dim 64] [--k 10] [--ef 64] [--queries 2000] [--batch-n 100000] [--batch-queries 10000]
      [--batch-threads 1,2] [--quick]
--quick: a few small rounds to check that everything runs (figures not meant to be read).
Needs build/bench/bench_search1 and build/embr (make), hnswlib and faiss (Debian's python3-hnswlib,
python3-faiss; skipped when missing). Timings need a quiet machine.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(HERE, "..", "build")


def emit(rows, **r):
    rows.append(r)
    print(json.dumps(r), flush=True)


def timed_pass(fn, queries):
    """ns per call of fn(q) over the queries, one call each."""
    t0 = time.perf_counter_ns()
    for q in queries:
        fn(q)
    return (time.perf_counter_ns() - t0) / len(queries)


def rounds_alternating(impls, rounds):
    """impls: name -> (callable returning one measurement). Runs each once per round, the order
    rotating; returns name -> list of measurements (one per round)."""
    names = list(impls)
    out = {n: [] for n in names}
    for r in range(rounds):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            out[n].append(impls[n]())
    return out


# ---- per-call overhead -------------------------------------------------------------------------

def part_overhead(a, embr, hnswlib, faiss, tmp, rows):
    rng = np.random.default_rng(1)
    cases = [("hnsw", int(s)) for s in a.sizes.split(",")] + [("flat", a.flat_size)]
    for kind, n in cases:
        xb = rng.standard_normal((n, a.dim)).astype(np.float32)
        xq = rng.standard_normal((a.queries, a.dim)).astype(np.float32)
        one = [xq[i:i + 1] for i in range(len(xq))]  # (1, dim) views: no copies in the timed loop
        embr.set_num_threads(0)
        spec = "hnsw:M=16,efc=200" if kind == "hnsw" else "flat"
        ix = embr.Index(a.dim, spec, "l2")
        ix.add(xb)
        embr.set_num_threads(1)
        ef = a.ef if kind == "hnsw" else 0
        idx_path, q_path = os.path.join(tmp, f"{kind}{n}.embr"), os.path.join(tmp, "q1.npy")
        ix.save(idx_path)
        np.save(q_path, xq)
        impls = {}
        if kind == "hnsw":
            impls["embr-python"] = lambda: timed_pass(lambda q: ix.search(q, a.k, ef=ef), one)
        else:
            impls["embr-python"] = lambda: timed_pass(lambda q: ix.search(q, a.k), one)
        if os.path.exists(a.c_bench):
            def c_round(path=idx_path):
                out = subprocess.run([a.c_bench, path, q_path, str(a.k), str(ef), "1"], check=True,
                                     capture_output=True, text=True).stdout
                return json.loads(out)["ns_per_call"]
            impls["embr-c"] = c_round
        else:
            print(f"(no {a.c_bench}: `make` builds it; no C baseline)", file=sys.stderr)
        if hnswlib is not None and kind == "hnsw":
            h = hnswlib.Index(space="l2", dim=a.dim)
            h.init_index(max_elements=n, M=16, ef_construction=200, random_seed=1)
            h.add_items(xb)
            h.set_num_threads(1)
            h.set_ef(a.ef)
            impls["hnswlib"] = lambda: timed_pass(lambda q: h.knn_query(q, k=a.k, num_threads=1), one)
        if faiss is not None:
            if kind == "hnsw":
                f = faiss.IndexHNSWFlat(a.dim, 16)
                f.hnsw.efConstruction = 200
                f.add(xb)
                f.hnsw.efSearch = a.ef
            else:
                f = faiss.IndexFlatL2(a.dim)
                f.add(xb)
            impls["faiss"] = lambda: timed_pass(lambda q: f.search(q, a.k), one)
        for fn in impls.values():  # warm-up
            fn()
        got = rounds_alternating(impls, a.rounds)
        for name, v in got.items():
            emit(rows, part="overhead", impl=name, index=kind, n=n, dim=a.dim, k=a.k, ef=ef or None,
                 rounds=a.rounds, us_per_call=round(float(np.median(v)) / 1000, 3),
                 us_min=round(min(v) / 1000, 3), us_max=round(max(v) / 1000, 3))
        if "embr-c" in got:
            diff = np.array(got["embr-python"]) - np.array(got["embr-c"])
            emit(rows, part="overhead", impl="embr-python minus embr-c", index=kind, n=n,
                 us_per_call=round(float(np.median(diff)) / 1000, 3))
    embr.set_num_threads(0)


# ---- batch throughput against the CLI ----------------------------------------------------------

def part_batch(a, embr, tmp, rows):
    rng = np.random.default_rng(2)
    xb = rng.standard_normal((a.batch_n, a.dim)).astype(np.float32)
    xq = rng.standard_normal((a.batch_queries, a.dim)).astype(np.float32)
    ix = embr.Index(a.dim, "hnsw:M=16,efc=200", "l2")
    ix.add(xb)
    idx_path, q_path = os.path.join(tmp, "batch.embr"), os.path.join(tmp, "qb.npy")
    ix.save(idx_path)
    np.save(q_path, xq)
    for t in [int(s) for s in a.batch_threads.split(",")]:
        def py_round(t=t):
            # as the CLI's figure is taken: the index loaded from the file in each round (its memory
            # placement, which moves the figure by several per cent, drawn anew as the CLI's is), the
            # same search once untimed to warm the caches, then timed
            jx = embr.Index.load(idx_path)
            jx.search(xq, a.k, ef=a.ef, threads=t)
            t0 = time.perf_counter()
            jx.search(xq, a.k, ef=a.ef, threads=t)
            return len(xq) / (time.perf_counter() - t0)

        def cli_round(t=t):
            # a sweep of the same ef twice: the JSON gives each setting's queries/s (search only);
            # the second, warm, is kept
            out = subprocess.run([a.cli, "index", "search", idx_path, "--query", q_path, "-k", str(a.k),
                                  "--ef", f"{a.ef},{a.ef}", "-t", str(t), "--repeat", "1", "--json", "-q"],
                                 check=True, capture_output=True, text=True).stdout
            return float(json.loads(out)[-1]["qps"])
        impls = {"embr-python": py_round}
        if os.path.exists(a.cli):
            impls["embr-cli"] = cli_round
        else:
            print(f"(no {a.cli}: `make` builds it; no CLI figure)", file=sys.stderr)
        py_round()
        got = rounds_alternating(impls, a.rounds)
        for name, v in got.items():
            emit(rows, part="batch", impl=name, n=a.batch_n, nq=len(xq), dim=a.dim, k=a.k, ef=a.ef, threads=t,
                 rounds=a.rounds, qps=round(float(np.median(v)), 1))
        if "embr-cli" in got:
            ratio = np.array(got["embr-python"]) / np.array(got["embr-cli"])
            emit(rows, part="batch", impl="python / cli", threads=t, ratio=round(float(np.median(ratio)), 4))


# ---- Python threads on one index ---------------------------------------------------------------

def part_threads(a, embr, rows):
    rng = np.random.default_rng(3)
    xb = rng.standard_normal((a.sizes_threads, a.dim)).astype(np.float32)
    xq = rng.standard_normal((a.queries, a.dim)).astype(np.float32)
    ix = embr.Index(a.dim, "hnsw:M=16,efc=200", "l2")
    ix.add(xb)

    def run(nthreads, per_call):
        chunks = np.array_split(np.arange(len(xq)), nthreads)
        barrier = threading.Barrier(nthreads + 1)

        def worker(ids):
            qs = [xq[i:i + 1] for i in ids] if per_call == 1 else \
                [xq[ids[j:j + per_call]] for j in range(0, len(ids), per_call)]
            barrier.wait()
            for q in qs:
                ix.search(q, a.k, ef=a.ef, threads=1)
        ts = [threading.Thread(target=worker, args=(c,)) for c in chunks]
        for t in ts:
            t.start()
        barrier.wait()
        t0 = time.perf_counter()
        for t in ts:
            t.join()
        return len(xq) / (time.perf_counter() - t0)

    counts = [int(s) for s in a.py_threads.split(",")]
    for per_call in (1, 100):
        impls = {f"{c} thread(s)": (lambda c=c: run(c, per_call)) for c in counts}
        for fn in impls.values():
            fn()
        got = rounds_alternating(impls, a.rounds)
        base = np.array(got[f"{counts[0]} thread(s)"])
        for c in counts:
            v = np.array(got[f"{c} thread(s)"])
            emit(rows, part="threads", python_threads=c, queries_per_call=per_call, n=a.sizes_threads,
                 dim=a.dim, k=a.k, ef=a.ef, rounds=a.rounds, qps=round(float(np.median(v)), 1),
                 scaling=round(float(np.median(v / base)), 3))


def tables(rows):
    over = [r for r in rows if r["part"] == "overhead"]
    if over:
        print("\n| index | n | embr C (us) | embr Python (us) | Python - C (us) | hnswlib (us) | faiss (us) |")
        print("|---|---|---|---|---|---|---|")
        for kind, n in sorted({(r["index"], r["n"]) for r in over}, key=lambda x: (x[0] != "hnsw", x[1])):
            g = {r["impl"]: r["us_per_call"] for r in over if r["index"] == kind and r["n"] == n}
            f = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
            print(f"| {kind} | {n} | {f(g.get('embr-c'))} | {f(g.get('embr-python'))} | "
                  f"{f(g.get('embr-python minus embr-c'))} | {f(g.get('hnswlib'))} | {f(g.get('faiss'))} |")
    batch = [r for r in rows if r["part"] == "batch"]
    if batch:
        print("\n| threads | embr Python (q/s) | embr CLI (q/s) | Python / CLI |")
        print("|---|---|---|---|")
        for t in sorted({r["threads"] for r in batch}):
            g = {r["impl"]: r for r in batch if r["threads"] == t}
            py, cl, ra = g.get("embr-python"), g.get("embr-cli"), g.get("python / cli")
            print(f"| {t} | {py['qps'] if py else '-'} | {cl['qps'] if cl else '-'} | {ra['ratio'] if ra else '-'} |")
    th = [r for r in rows if r["part"] == "threads"]
    if th:
        print("\n| queries per call | Python threads | q/s | scaling |")
        print("|---|---|---|---|")
        for r in th:
            print(f"| {r['queries_per_call']} | {r['python_threads']} | {r['qps']} | {r['scaling']} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="overhead,batch,threads")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--sizes", default="1000,10000", help="HNSW index sizes for the overhead part")
    ap.add_argument("--flat-size", type=int, default=256)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--ef", type=int, default=64)
    ap.add_argument("--queries", type=int, default=2000, help="queries per round (overhead, threads)")
    ap.add_argument("--batch-n", type=int, default=100000)
    ap.add_argument("--batch-queries", type=int, default=10000)
    ap.add_argument("--batch-threads", default="1,2")
    ap.add_argument("--sizes-threads", type=int, default=10000, help="index size for the threads part")
    ap.add_argument("--py-threads", default="1,2")
    ap.add_argument("--c-bench", default=os.path.join(BUILD, "bench", "bench_search1"))
    ap.add_argument("--cli", default=os.path.join(BUILD, "embr"))
    ap.add_argument("--quick", action="store_true", help="tiny sizes, 3 rounds: checks that it runs")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.sizes, a.queries, a.batch_n, a.batch_queries, a.sizes_threads = 3, "1000", 300, 5000, 2000, 2000

    import embr
    try:
        import hnswlib
    except ImportError:
        hnswlib = None
        print("(hnswlib not installed: skipped)", file=sys.stderr)
    try:
        import faiss
        faiss.omp_set_num_threads(1)
    except ImportError:
        faiss = None
        print("(faiss not installed: skipped)", file=sys.stderr)

    rows = []
    parts = a.parts.split(",")
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        if "overhead" in parts:
            part_overhead(a, embr, hnswlib, faiss, tmp, rows)
        if "batch" in parts:
            part_batch(a, embr, tmp, rows)
        if "threads" in parts:
            part_threads(a, embr, rows)
    tables(rows)
    print(f"\n({time.time() - t0:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()

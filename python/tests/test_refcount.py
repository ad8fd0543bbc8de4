"""No leak over 10,000 calls (RSS), including calls that fail."""
import gc

import numpy as np
import pytest

import embr


def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    pytest.skip("no /proc/self/status")


def test_no_leak_over_10000_calls(rng, tmp_path):
    xb = rng.standard_normal((500, 16)).astype(np.float32)
    xq64 = rng.standard_normal((4, 16))
    ix = embr.Index(16, "hnsw")
    ix.add(xb)
    flat = embr.Index(16, "flat")
    flat.add(xb)
    mask = np.ones(500, bool)

    def stop(done, total, rate, detail):
        raise KeyError("stop")  # raised from the final report of each call

    def batch(n):
        for _ in range(n):
            ix.search(xq64, 5)  # converted input
            flat.search(xb[:2], 3, filter=mask)
            embr.knn(xb, xb[:1], 4)
            try:
                embr.knn(xb, xb[:1], 4, progress=stop)
            except KeyError:
                pass
            for bad in (lambda: ix.search(xb[:, :3], 5), lambda: ix.search(xb[:1], 0),
                        lambda: embr.Index(16, "nope")):
                try:
                    bad()
                except ValueError:
                    pass
    batch(1000)  # warm up allocator pools
    gc.collect()
    before = rss_kb()
    batch(10000)
    gc.collect()
    grown = rss_kb() - before
    # 10,000 x (two (4, 5) results + a converted (4, 16) float32 copy + ...) would be > 4 MB if kept
    assert grown < 2048, f"RSS grew by {grown} kB over 10,000 calls"


def test_refcounts_of_inputs_are_restored(rng):
    import sys
    xb = rng.standard_normal((50, 8)).astype(np.float32)
    ix = embr.Index(8, "flat")
    ix.add(xb)
    seen = []

    def progress(*a):
        seen.append(a[0])
    before, before_cb = sys.getrefcount(xb), sys.getrefcount(progress)
    for _ in range(100):
        ix.search(xb, 2)
        embr.knn(xb, xb, 2, progress=progress)
        try:
            ix.search(xb, -1)
        except ValueError:
            pass
    assert sys.getrefcount(xb) == before and sys.getrefcount(progress) == before_cb and len(seen) >= 100

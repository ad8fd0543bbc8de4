#!/usr/bin/python3
"""Summarises bench/run_ann.sh results: queries/s at recall@10 = 0.95 (linear interpolation along
each sweep), build time and peak memory, ratios to the peers; plots the curves if matplotlib is
available."""
import collections
import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1])]
curves = collections.defaultdict(list)
builds = {}
for r in rows:
    key = (r["data"], r["tool"].split()[0], r["kind"])
    if "build_s" in r:
        builds[key] = r
    else:
        curves[key + (r["threads"],)].append((r["recall"], r["qps"], r["value"]))


def qps_at(points, target):
    pts = sorted(points)
    for (r0, q0, _), (r1, q1, _) in zip(pts, pts[1:]):
        if r0 <= target <= r1:
            return q0 + (q1 - q0) * (target - r0) / (r1 - r0) if r1 > r0 else max(q0, q1)
    return None


for target in (0.95, 0.9, 0.5):
    print(f"\n| data | tool | kind | threads | q/s at recall@10 = {target} |")
    print("|---|---|---|---|---|")
    for key in sorted(curves):
        q = qps_at(curves[key], target)
        print(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {'%.0f' % q if q else 'not reached'} |")
print("\n| data | tool | kind | build s (2 threads) | peak MiB |")
print("|---|---|---|---|---|")
for key in sorted(builds):
    b = builds[key]
    print(f"| {key[0]} | {key[1]} | {key[2]} | {b['build_s']} | {b.get('peak_mb', '')} |")
print("\nratios at recall 0.95 (embr / peer):")
for data in sorted({k[0] for k in curves}):
    for th in (1, 2):
        e = qps_at(curves.get((data, "embr", "hnsw", th), []), 0.95)
        for peer, kind in (("hnswlib", "hnsw"), ("hnswlib-native", "hnsw"), ("faiss", "faiss-hnsw")):
            p = qps_at(curves.get((data, peer, kind, th), []), 0.95)
            if e and p:
                print(f"  {data} threads {th}: embr hnsw / {peer} {kind} = {e / p:.2f}x")
        for kind, target in (("ivfpq", 0.5), ("ivfpq-refine", 0.9)):
            e = qps_at(curves.get((data, "embr", kind, th), []), target)
            p = qps_at(curves.get((data, "faiss", "faiss-ivfpq", th), []), target)
            if e and p:
                print(f"  {data} threads {th}: embr {kind} / faiss ivfpq at recall {target} = {e / p:.2f}x")
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    sys.exit(0)
datas = sorted({k[0] for k in curves})
fig, axes = plt.subplots(1, len(datas), figsize=(7 * len(datas), 5))
for ax, data in zip(axes if len(datas) > 1 else [axes], datas):
    keys = sorted(k for k in curves if k[0] == data)
    colours = plt.get_cmap("tab20")
    for i, key in enumerate(keys):
        pts = sorted(curves[key])
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o" if key[1] == "embr" else "x", ms=3,
                linestyle="-" if key[1] == "embr" else "--", color=colours(i % 20), label=f"{key[1]} {key[2]} ({key[3]} thr)")
    ax.set_yscale("log")
    ax.set_xlabel("recall@10")
    ax.set_ylabel("queries/s")
    ax.set_title({"A": "1M x 128 clustered, L2", "B": "400k x 100 normalised, cosine"}.get(data, data))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)

#!/usr/bin/python3
"""Report of bench/run_hnsw.sh: from the JSON lines of hnsw_embr and hnswlib_peer (tagged with data set
and round), queries/s at recall@10 0.95 and 0.99 interpolated on each round's ef sweep (log queries/s
linear in recall between the two settings around the target), medians over rounds, and embr/hnswlib as the ratio of
the medians and as the median of the rounds' own ratios (the steadier one when the machine's speed
swings between rounds).
A target the sweep's lowest ef already exceeds takes that setting's queries/s (marked >=); one it
never reaches is '-'. Build time and memory per vector: medians over rounds."""
import json
import math
import statistics
import sys
from collections import defaultdict

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
curves = defaultdict(list)  # (data, tool, mode, threads, round) -> [(ef, recall, qps)]
builds = defaultdict(list)  # (data, tool) -> rows
for r in rows:
    if "build_s" in r:
        builds[(r["data"], r["tool"])].append(r)
    else:
        curves[(r["data"], r["tool"], r["mode"], r["threads"], r["round"])].append((r["ef"], r["recall"], r["qps"]))


def at(curve, target):
    """(qps, floor) at the target recall; floor = the lowest setting already exceeds it."""
    c = sorted(curve)
    if c[0][1] >= target:
        return c[0][2], True
    for (e1, r1, q1), (e2, r2, q2) in zip(c, c[1:]):
        if r1 < target <= r2:
            f = (target - r1) / (r2 - r1)
            return math.exp(math.log(q1) + f * (math.log(q2) - math.log(q1))), False
    return None, False


def med(v):
    return statistics.median(v) if v else None


datas = sorted({k[0] for k in curves})
print("| data | mode | threads | target | embr q/s | hnswlib q/s | ratio of medians | median of round ratios | each round |")
print("|---|---|---|---|---|---|---|---|---|")
for d in datas:
    for mode in ("batch", "single"):
        for th in sorted({k[3] for k in curves if k[0] == d}):
            for target in (0.95, 0.99):
                per = {}
                for tool in ("embr", "hnswlib"):
                    per[tool] = {k[4]: at(v, target) for k, v in curves.items() if k[:4] == (d, tool, mode, th)}
                qe = med([q for q, _ in per["embr"].values() if q])
                qh = med([q for q, _ in per["hnswlib"].values() if q])
                floor = any(f for q, f in list(per["embr"].values()) + list(per["hnswlib"].values()))
                each = [per["embr"][r][0] / per["hnswlib"][r][0] for r in sorted(per["embr"])
                        if r in per["hnswlib"] and per["embr"][r][0] and per["hnswlib"][r][0]]
                fmt = lambda q: "-" if q is None else ("%s%.0f" % (">=" if floor else "", q))
                ratio = "-" if not (qe and qh) else "%.2fx" % (qe / qh)
                mr = "-" if not each else "**%.2fx**" % med(each)
                print(f"| {d} | {mode} | {th} | {target} | {fmt(qe)} | {fmt(qh)} | {ratio} | {mr} | {', '.join('%.2f' % x for x in each)} |")
print()
print("| data | tool | build s (2 threads) | resident bytes added per vector | embr_index_memory per vector |")
print("|---|---|---|---|---|")
for (d, tool), b in sorted(builds.items()):
    m = med([x["memory_per_vec"] for x in b if "memory_per_vec" in x])
    print(f"| {d} | {tool} | {med([x['build_s'] for x in b]):.2f} | {med([x['bytes_per_vec'] for x in b]):.0f} | "
          f"{'-' if m is None else '%.0f' % m} |")

#!/usr/bin/python3
"""Summarises bench/run_nn.sh's JSON lines ("embr {...}" / "torch {...}") into a Markdown table:
medians over rounds, embr / torch ratios, the largest peak memory of each."""
import json
import statistics
import sys


def main():
    runs = {}
    for line in sys.stdin:
        who, _, js = line.strip().partition(" ")
        js = js.strip()
        if not js.startswith("{"):
            continue
        d = json.loads(js)
        runs.setdefault((d["arch"], who), []).append(d)
    print("| network | embr train img/s | torch train img/s | ratio | embr infer img/s | torch infer img/s | ratio"
          " | embr peak MiB | torch peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for arch in sorted({a for a, _ in runs}):
        e, t = runs.get((arch, "embr"), []), runs.get((arch, "torch"), [])
        if not e or not t:
            continue
        med = lambda rs, k: statistics.median(r[k] for r in rs)  # noqa: E731
        et, tt, ei, ti = med(e, "train_img_s"), med(t, "train_img_s"), med(e, "infer_img_s"), med(t, "infer_img_s")
        pe, pt = max(r["peak_mib"] for r in e), max(r["peak_mib"] for r in t)
        print(f"| {arch} | {et:.1f} | {tt:.1f} | {et / tt:.2f}x | {ei:.1f} | {ti:.1f} | {ei / ti:.2f}x | {pe:.0f} | {pt:.0f} |")


if __name__ == "__main__":
    main()

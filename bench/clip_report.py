#!/usr/bin/python3
"""Summarises bench/run_clip.sh's JSON lines ("embr {...}", "torch {...}", "onnxruntime {...}") into a
Markdown table: per mode, the median items/s of each program over the rounds, embr's ratio to each
peer, the largest peak memory of each."""
import json
import statistics
import sys

UNIT = {"image": "images/s", "text": "texts/s", "train": "pairs/s"}


def main():
    runs = {}
    for line in sys.stdin:
        who, _, js = line.strip().partition(" ")
        if not js.strip().startswith("{"):
            continue
        d = json.loads(js)
        runs.setdefault((d["mode"], d["arch"]), {}).setdefault(who, []).append(d)
    print("| what | embr | PyTorch | ratio | ONNX Runtime | ratio | embr peak MiB | PyTorch peak MiB | rounds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (mode, arch), progs in sorted(runs.items()):
        med = {w: statistics.median(r["per_s"] for r in rs) for w, rs in progs.items()}
        peak = {w: max(r["peak_mib"] for r in rs) for w, rs in progs.items()}
        e = med.get("embr")
        if e is None:
            continue
        cell = lambda w: (f"{med[w]:.2f}", f"{e / med[w]:.2f}x") if w in med else ("-", "-")  # noqa: E731
        (t, tr), (o, orr) = cell("torch"), cell("onnxruntime")
        print(f"| {arch} {mode} ({UNIT[mode]}) | {e:.2f} | {t} | {tr} | {o} | {orr} | {peak['embr']:.0f} |"
              f" {peak.get('torch', 0):.0f} | {len(progs['embr'])} |")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Summarises bench/run_nn.sh's lines ("embr {...}", "torch {...}", "onnxruntime {...}", and
bench/nn_flops.py's "flops {...}" / "sgemm {...}") into Markdown tables: medians over the rounds,
embr / peer ratios, and each program's GFLOP/s against the 2-core sgemm rate measured in the
same run (training counted as 3 x the forward FLOPs)."""
import json
import statistics
import sys


def main():
    runs, flops, sgemm = {}, {}, None
    for line in sys.stdin:
        who, _, js = line.strip().partition(" ")
        js = js.strip()
        if not js.startswith("{"):
            continue
        d = json.loads(js)
        if who == "flops":
            flops[d["arch"]] = d["fwd_gflop"]
        elif who == "sgemm":
            sgemm = d["gflops"]
        else:
            runs.setdefault((d["arch"], who), []).append(d)
    med = lambda rs, k: statistics.median(r[k] for r in rs) if rs and k in rs[0] else None  # noqa: E731
    ratio = lambda a, b: f"**{a / b:.2f}x**" if a and b else "-"  # noqa: E731
    num = lambda v: f"{v:.1f}" if v else "-"  # noqa: E731
    archs = sorted({a for a, _ in runs})
    print("| network | embr train img/s | PyTorch | ratio | embr infer img/s | PyTorch | ratio | ONNX Runtime | ratio"
          " | embr peak MiB | PyTorch peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for arch in archs:
        e, t, o = runs.get((arch, "embr"), []), runs.get((arch, "torch"), []), runs.get((arch, "onnxruntime"), [])
        et, tt, ei, ti, oi = (med(e, "train_img_s"), med(t, "train_img_s"), med(e, "infer_img_s"),
                              med(t, "infer_img_s"), med(o, "infer_img_s"))
        pe = max((r["peak_mib"] for r in e), default=0)
        pt = max((r["peak_mib"] for r in t), default=0)
        print(f"| {arch} | {num(et)} | {num(tt)} | {ratio(et, tt)} | {num(ei)} | {num(ti)} | {ratio(ei, ti)} | {num(oi)}"
              f" | {ratio(ei, oi)} | {pe:.0f} | {pt:.0f} |")
    if not flops:
        return
    print()
    print(f"GFLOP/s (forward FLOPs per image x images/s; training 3 x forward); 2-core sgemm (OpenBLAS, this "
          f"environment): {sgemm} GFLOP/s")
    print()
    print("| network | GFLOP/image fwd | embr train | PyTorch train | embr infer | PyTorch infer | ONNX Runtime infer |")
    print("|---|---|---|---|---|---|---|")
    for arch in archs:
        f = flops.get(arch)
        if not f:
            continue
        cells = []
        for who, key, mult in (("embr", "train_img_s", 3), ("torch", "train_img_s", 3), ("embr", "infer_img_s", 1),
                               ("torch", "infer_img_s", 1), ("onnxruntime", "infer_img_s", 1)):
            v = med(runs.get((arch, who), []), key)
            g = v * f * mult if v else None
            cells.append(f"{g:.1f} ({100 * g / sgemm:.0f} %)" if g and sgemm else "-")
        print(f"| {arch} | {f:.3f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""PyTorch side of bench/run_nn.sh: the same networks as bench_nn (definitions shared with
scripts/make_nn_ref.py), the same random input and settings, printed as one JSON line:
training images/s (forward + backward + SGD step with an ArcFace head over 1000 classes),
inference images/s (eval mode, no grad), peak resident memory.

usage: torch_nn.py ARCH SIDE TRAIN_BATCH INFER_BATCH STEPS THREADS   (TRAIN_BATCH 0: inference only)
Run with Debian's /usr/bin/python3 (python3-torch) and OpenBLAS as the system BLAS."""
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import torch  # noqa: E402
from make_nn_ref import MobileFaceNet, ResNet, arcface_loss  # noqa: E402


def main():
    arch, side, tb, ib, steps, threads = sys.argv[1], *map(int, sys.argv[2:])
    torch.set_num_threads(threads)
    torch.manual_seed(3)
    if arch == "mobilefacenet":
        model = MobileFaceNet(64, 3, side, 128)
    else:
        model = ResNet([2, 2, 2, 2] if arch == "resnet18" else [3, 4, 6, 3], 64, 3, side, 128)
    x = torch.randn(max(tb, ib), 3, side, side)
    labels = torch.randint(0, 1000, (tb,))
    head = torch.nn.Parameter(torch.randn(1000, 128) * 0.05)
    model.eval()
    with torch.no_grad():
        for s in range(steps + 1):
            if s == 1:
                t0 = time.perf_counter()
            model(x[:ib])
    infer = ib * steps / (time.perf_counter() - t0)
    if tb == 0:  # inference only
        print(json.dumps({"arch": arch, "side": side, "threads": threads, "infer_img_s": round(infer, 2),
                          "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
        return
    model.train()
    opt = torch.optim.SGD(list(model.parameters()) + [head], lr=0.01, momentum=0.9, weight_decay=5e-4)
    for s in range(steps + 1):
        if s == 1:
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = arcface_loss(model(x[:tb]), head, labels)
        loss.backward()
        opt.step()
    train = tb * steps / (time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"arch": arch, "side": side, "threads": threads, "train_img_s": round(train, 2),
                      "infer_img_s": round(infer, 2), "peak_mib": round(peak), "torch": torch.__version__,
                      "mkldnn": torch.backends.mkldnn.is_available()}))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Reference figures for bench/nn_report.py's GFLOP/s columns, printed as JSON lines:
  flops {"arch": A, "side": S, "fwd_gflop": ...}   per image, forward (2 x multiply-adds of every
        convolution and linear layer, counted from the PyTorch definitions by forward hooks);
        a training step is counted as 3 x forward (forward, input and weight gradients);
  sgemm {"threads": T, "gflops": ...}            the machine's sgemm rate through OpenBLAS (NumPy,
        Debian's, in this environment: OPENBLAS_* variables apply), best of 5 n = 2048 products.

  nn_flops.py SIDE THREADS ARCH...
"""
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from make_nn_ref import MobileFaceNet, ResNet  # noqa: E402


def fwd_flops(model, side):
    total = [0]

    def hook(mod, inp, out):
        if isinstance(mod, torch.nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
            total[0] += 2 * out.numel() * k
        elif isinstance(mod, torch.nn.Linear):
            total[0] += 2 * out.numel() * mod.in_features

    for m in model.modules():
        m.register_forward_hook(hook)
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, side, side))
    return total[0]


def main():
    if len(sys.argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    side, threads = int(sys.argv[1]), int(sys.argv[2])
    for arch in sys.argv[3:]:
        model = MobileFaceNet(64, 3, side, 128) if arch == "mobilefacenet" else ResNet([2, 2, 2, 2], 64, 3, side, 128)
        print("flops " + json.dumps({"arch": arch, "side": side, "fwd_gflop": fwd_flops(model, side) / 1e9}))
    os.environ["OPENBLAS_NUM_THREADS"] = str(threads)  # read at load: NumPy is already loaded,
    try:                                            # so set the count through threadpoolctl if present
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads)
    except ImportError:
        torch.set_num_threads(threads)
    n = 2048
    a = np.random.rand(n, n).astype(np.float32)
    b = np.random.rand(n, n).astype(np.float32)
    best = 0.0
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t0) / 1e9)
    print("sgemm " + json.dumps({"threads": threads, "gflops": round(best, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""The PyTorch side of bench/run_dino.sh: the same ViT as embr (the reference forward of
scripts/make_dino_ref.py, written as DINO's vision_transformer.py computes it: fused qkv, softmax
attention, exact GELU, LayerNorm eps 1e-6), random weights, inference under torch.no_grad().

  torch_dino.py ARCH BATCH STEPS THREADS [SIZE]
Prints one JSON line: images per second (the class token), peak resident memory. First step: warm-up.
"""
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from make_dino_ref import random_vit, vit_forward  # noqa: E402

CONFIGS = {  # size, positions' size, width, depth, heads, patch, LayerScale
    "vit-tiny": (28, 28, 192, 6, 3, 4, False),
    "vit-s-16": (224, 224, 384, 12, 6, 16, False),
    "vit-b-16": (224, 224, 768, 12, 12, 16, False),
    "dinov2-vit-s-14": (224, 518, 384, 12, 6, 14, True),
}


def main():
    arch, batch, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    size, pos, width, depth, heads, patch, ls = CONFIGS[arch]
    if len(sys.argv) > 5:
        size = int(sys.argv[5])
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(1)
    w = random_vit(gen, width, depth, patch, pos // patch, ls)
    x = torch.randn(batch, 3, size, size, generator=gen)
    with torch.no_grad():
        for s in range(steps + 1):
            if s == 1:
                t0 = time.perf_counter()
            tok, _ = vit_forward(w, x, depth, heads, patch, pos // patch, ls)
            cls = tok[:, 0].contiguous()
    rate = batch * steps / (time.perf_counter() - t0)
    assert cls.shape == (batch, width)
    print(json.dumps({"prog": "torch", "arch": arch, "size": size, "batch": batch, "threads": threads,
                      "per_s": round(rate, 2), "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


if __name__ == "__main__":
    sys.exit(main())

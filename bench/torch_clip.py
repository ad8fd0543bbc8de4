#!/usr/bin/python3
"""The PyTorch side of bench/run_clip.sh: the same CLIP towers as embr (the reference model of
scripts/make_clip_ref.py: OpenAI's layout, nn.MultiheadAttention, QuickGELU), random weights.

  torch_clip.py ARCH MODE BATCH STEPS THREADS
ARCH: clip-vit-b-32 | clip-vit-b-16 | clip-tiny; MODE: image | text | train. Prints one JSON line:
items per second (images, texts, or image-text pairs for a training step: forward of both towers,
CLIP's symmetric InfoNCE loss, backward, AdamW), peak resident memory. First step: warm-up.
"""
import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from make_clip_ref import CLIP  # noqa: E402

CONFIGS = {  # vision (size, patch, width, layers, heads), text (width, layers, heads, context, vocab), joint
    "clip-vit-b-32": ((224, 32, 768, 12, 12), (512, 12, 8, 77, 49408), 512),
    "clip-vit-b-16": ((224, 16, 768, 12, 12), (512, 12, 8, 77, 49408), 512),
    "clip-tiny": ((64, 8, 192, 6, 3), (256, 4, 4, 32, 49408), 256),
}


def main():
    arch, mode, batch, steps, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    vision, text, embed = CONFIGS[arch]
    model = CLIP(vision, text, embed)
    size, ctx, vocab = vision[0], text[3], text[4]
    gen = torch.Generator().manual_seed(1)
    images = torch.randn(batch, 3, size, size, generator=gen)
    ids = torch.randint(1, vocab - 2, (batch, ctx), generator=gen)
    ids[:, 0] = vocab - 2
    ids[torch.arange(batch), torch.randint(2, ctx, (batch,), generator=gen)] = vocab - 1
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4) if mode == "train" else None
    labels = torch.arange(batch)

    def step():
        if mode == "image":
            with torch.no_grad():
                model.visual(images)
        elif mode == "text":
            with torch.no_grad():
                model.encode_text(ids)
        else:
            opt.zero_grad()
            a = F.normalize(model.visual(images), dim=-1)
            b = F.normalize(model.encode_text(ids), dim=-1)
            logits = model.logit_scale.exp() * a @ b.t()
            loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2
            loss.backward()
            opt.step()

    model.eval() if mode != "train" else model.train()
    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    rate = batch * steps / (time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"prog": "torch", "arch": arch, "mode": mode, "batch": batch, "threads": threads,
                      "per_s": round(rate, 2), "peak_mib": round(peak, 1)}))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""The PyTorch side of bench/run_dino_train.sh: one DINO training step as facebookresearch/dino's
main_dino.py runs it (written here from its description), on the same network and crops as
bench/bench_dino_train.c:

  - student = ViT (DINO's vision_transformer.py computation: pre-LN blocks, fused qkv, softmax
    attention, exact GELU, LayerNorm eps 1e-6, drop-path 0.1 per sample) + DINO head (Linear, GELU,
    Linear, GELU, Linear to the bottleneck, L2 normalisation, weight-normalised last layer with the
    gain frozen); teacher the same shape, no drop-path, no grad;
  - crops: 2 global at GLOBAL px and LOCAL_CROPS local at LOCAL px, random normal (fixed seed); one
    backbone batch per resolution (MultiCropWrapper), the head on the concatenated class tokens;
  - DINOLoss (teacher softmax((t - center) / 0.04), student log_softmax(s / 0.1), every pair
    (teacher view i, student view v != i)), center EMA 0.9;
  - backward, clip_gradients (each parameter to norm <= 3), AdamW (two groups: no decay for biases
    and 1-D tensors), teacher EMA 0.996 (the reference's per-parameter loop).

  torch_dino_train.py ARCH BATCH LOCAL_CROPS STEPS THREADS [K HIDDEN BOTTLENECK [GLOBAL LOCAL]]
Prints one JSON line: median step time, images per second, peak resident memory. First step: warm-up.
"""
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from make_dino_ref import positions, random_vit  # noqa: E402
from make_dino_step_ref import dino_loss  # noqa: E402  (the golden test's loss, every teacher/student view pair)

CONFIGS = {  # size, width, depth, heads, patch
    "vit-tiny": (28, 192, 6, 3, 4),
    "vit-s-16": (224, 384, 12, 6, 16),
    "vit-b-16": (224, 768, 12, 12, 16),
}


def drop_path(x, p, training):
    if p == 0 or not training:
        return x
    keep = 1 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask / keep


def vit_forward(w, x, depth, heads, patch, M, dpr):
    """DINO's VisionTransformer: tokens after the final norm, class token returned."""
    B = x.shape[0]
    t = F.conv2d(x, w["patch_embed.proj.weight"], w["patch_embed.proj.bias"], stride=patch)
    g = t.shape[-1]
    t = t.flatten(2).transpose(1, 2)
    D = t.shape[-1]
    t = torch.cat([w["cls_token"].expand(B, -1, -1), t], dim=1) + positions(w["pos_embed"], M, g)
    for i in range(depth):
        b = "blocks.%d." % i
        h = F.layer_norm(t, (D,), w[b + "norm1.weight"], w[b + "norm1.bias"], eps=1e-6)
        T = h.shape[1]
        qkv = F.linear(h, w[b + "attn.qkv.weight"], w[b + "attn.qkv.bias"]).reshape(B, T, 3, heads, D // heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        attn = torch.softmax(q @ k.transpose(-2, -1) * (D // heads) ** -0.5, dim=-1)
        h = F.linear((attn @ v).transpose(1, 2).reshape(B, T, D), w[b + "attn.proj.weight"], w[b + "attn.proj.bias"])
        t = t + drop_path(h, dpr[i], dpr[i] > 0)
        h = F.layer_norm(t, (D,), w[b + "norm2.weight"], w[b + "norm2.bias"], eps=1e-6)
        h = F.linear(F.gelu(F.linear(h, w[b + "mlp.fc1.weight"], w[b + "mlp.fc1.bias"])), w[b + "mlp.fc2.weight"],
                     w[b + "mlp.fc2.bias"])
        t = t + drop_path(h, dpr[i], dpr[i] > 0)
    return F.layer_norm(t, (D,), w["norm.weight"], w["norm.bias"], eps=1e-6)[:, 0]


def head_forward(w, x):
    h = F.gelu(F.linear(x, w["head.mlp.0.weight"], w["head.mlp.0.bias"]))
    h = F.gelu(F.linear(h, w["head.mlp.2.weight"], w["head.mlp.2.bias"]))
    h = F.normalize(F.linear(h, w["head.mlp.4.weight"], w["head.mlp.4.bias"]), dim=-1, p=2)
    v = w["head.last_layer.weight_v"]
    return h @ (w["head.last_layer.weight_g"] * v / v.norm(dim=1, keepdim=True)).t()


def random_head(gen, D, hidden, bott, K):
    w, dims = {}, (D, hidden, hidden, bott)
    for i in range(3):
        w["head.mlp.%d.weight" % (2 * i)] = torch.randn(dims[i + 1], dims[i], generator=gen) * 0.02
        w["head.mlp.%d.bias" % (2 * i)] = torch.zeros(dims[i + 1])
    w["head.last_layer.weight_g"] = torch.ones(K, 1)
    w["head.last_layer.weight_v"] = (torch.rand(K, bott, generator=gen) * 2 - 1) / math.sqrt(bott)
    return w


def main():
    a = sys.argv
    if len(a) not in (6, 9, 11):
        print(__doc__, file=sys.stderr)
        return 2
    if a[1] not in CONFIGS:
        print("torch_dino_train.py: unknown ARCH %s (one of %s)" % (a[1], ", ".join(CONFIGS)), file=sys.stderr)
        return 2
    arch, B, n_local, steps, threads = a[1], int(a[2]), int(a[3]), int(a[4]), int(a[5])
    K, hidden, bott = (int(a[6]), int(a[7]), int(a[8])) if len(a) > 6 else (4096, 2048, 256)
    size, D, depth, heads, patch = CONFIGS[arch]
    G, L = (int(a[9]), int(a[10])) if len(a) > 9 else (size, (size * 96 + 112) // 224)
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(1)
    M = size // patch
    w = random_vit(gen, D, depth, patch, M, False)
    w.update(random_head(gen, D, hidden, bott, K))
    student = {k: v.clone().requires_grad_(not k.endswith("weight_g")) for k, v in w.items()}
    teacher = {k: v.clone() for k, v in w.items()}
    glob = torch.randn(2 * B, 3, G, G, generator=gen)
    loc = torch.randn(n_local * B, 3, L, L, generator=gen)
    center = torch.zeros(1, K)
    trained = {k: v for k, v in student.items() if v.requires_grad}
    decay = [v for k, v in trained.items() if not (k.endswith(".bias") or v.dim() == 1)]
    plain = [v for k, v in trained.items() if k.endswith(".bias") or v.dim() == 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.04}, {"params": plain, "weight_decay": 0.0}],
                            lr=5e-4 * B / 256)
    dpr = [x.item() for x in torch.linspace(0, 0.1, depth)]  # DINO's stochastic depth decay rule
    nodrop = [0.0] * depth
    t_temp, s_temp, n_views = 0.04, 0.1, 2 + n_local
    times = []
    for s in range(steps + 1):
        t0 = time.perf_counter()
        with torch.no_grad():
            t_out = head_forward(teacher, vit_forward(teacher, glob, depth, heads, patch, M, nodrop))
        feats = [vit_forward(student, glob, depth, heads, patch, M, dpr)]
        if n_local:
            feats.append(vit_forward(student, loc, depth, heads, patch, M, dpr))
        s_out = head_forward(student, torch.cat(feats))
        loss = dino_loss(s_out, t_out, center, n_views, t_temp, s_temp)
        with torch.no_grad():
            center = center * 0.9 + t_out.mean(dim=0, keepdim=True) * 0.1
        opt.zero_grad()
        loss.backward()
        for v in trained.values():
            norm = v.grad.data.norm(2)
            clip_coef = 3.0 / (norm + 1e-6)
            if clip_coef < 1:
                v.grad.data.mul_(clip_coef)
        opt.step()
        with torch.no_grad():
            for k in student:
                teacher[k].mul_(0.996).add_((1 - 0.996) * student[k].detach())
        if s > 0:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(json.dumps({"prog": "torch", "arch": arch, "batch": B, "global": G, "local": L, "n_local": n_local, "K": K,
                      "threads": threads, "step_s": round(med, 4), "per_s": round(B / med, 2),
                      "loss": round(loss.item(), 4),
                      "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Writes the PyTorch references of DINO's Vision Transformer for tests/test_dino_vit.c.

A ViT written out here in plain PyTorch the way facebookresearch's dino/vision_transformer.py and
dinov2 compute it (pre-LN blocks: x + drop_path(ls1(attn(norm1(x)))), x + drop_path(ls2(mlp(norm2(x)))),
fused qkv with bias, exact GELU, LayerNorm eps 1e-6, final norm; positions resampled with
F.interpolate(scale_factor=(g + 0.1) / M, mode="bicubic", align_corners=False) when the grid g differs
from the stored M), with small random weights, run on random images:

  tests/ref/dino_fb.safetensors   width 48, 2 blocks, 3 heads, patch 4, positions for 16 px (M = 4), no
      LayerScale; weights in facebookresearch names under the prefix "teacher.backbone." (as a full
      training checkpoint holds them) plus a DINO head tensor the backbone must ignore. Inputs at 16 px
      (native), 24 px (g = 6, positions enlarged) and 8 px (g = 2, shrunk); per size: the class token
      after norm (out.cls.S), the mean patch token (out.avg.S), the last block's class-token attention
      per head (out.attn.S, (B, H, T)), and at 16 and 24 px, for the loss sum(cls * r.S) + sum(avg * q.S),
      the gradient of every parameter (gradS:<name>) and of the images (gradS:images).
  tests/ref/dino_hf.safetensors   a DINOv2-style ViT (LayerScale), width 48, 2 blocks, 3 heads, patch 2,
      positions for 10 px (M = 5), in Hugging Face Dinov2Model names (q/k/v separate, layer_scale*.lambda1,
      embeddings.mask_token present), weights stored as BF16 (the reference runs on the rounded values);
      outputs at 10 px and 14 px (g = 7), gradients at 14 px.
  tests/ref/dino_cli.safetensors, tests/ref/dino_images/*.ppm, tests/ref/dino_cli_{cls,clsavg}.csv
      for tests/test_cli_dino_vit.sh: see cli_case.
  fuzz/corpus/model/vit_{fb,hf}_tiny.safetensors: seeds of the model-file fuzzer (fuzz_seeds).

Needs Debian's python3-torch. Run from the repository root:  /usr/bin/python3 scripts/make_dino_ref.py
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F


def write_safetensors(path, tensors, meta, bf16=(), f16=()):
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        if name in f16:
            data, dt = t.to(torch.float16).numpy().tobytes(), "F16"
        elif name in bf16:
            data, dt = t.to(torch.bfloat16).view(torch.int16).numpy().tobytes(), "BF16"
        else:
            data, dt = t.to(torch.float32).numpy().tobytes(), "F32"
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)) + js + b"".join(blobs))


def random_vit(gen, width, depth, patch, M, layer_scale):
    """facebookresearch names -> tensors, random (weights ~ 1/sqrt(fan_in), norms near 1)."""
    w = {}
    def rnd(*shape, s=1.0):
        return s * torch.randn(*shape, generator=gen)
    w["cls_token"] = rnd(1, 1, width, s=0.5)
    w["pos_embed"] = rnd(1, M * M + 1, width, s=0.5)
    w["patch_embed.proj.weight"] = rnd(width, 3, patch, patch, s=1 / math.sqrt(3 * patch * patch))
    w["patch_embed.proj.bias"] = rnd(width, s=0.1)
    for i in range(depth):
        b = "blocks.%d." % i
        for n in ("norm1", "norm2"):
            w[b + n + ".weight"] = 1 + rnd(width, s=0.1)
            w[b + n + ".bias"] = rnd(width, s=0.1)
        for n, i_, o in (("attn.qkv", width, 3 * width), ("attn.proj", width, width), ("mlp.fc1", width, 4 * width),
                         ("mlp.fc2", 4 * width, width)):
            w[b + n + ".weight"] = rnd(o, i_, s=1 / math.sqrt(i_))
            w[b + n + ".bias"] = rnd(o, s=0.1)
        if layer_scale:
            w[b + "ls1.gamma"] = 0.5 + rnd(width, s=0.2)
            w[b + "ls2.gamma"] = 0.5 + rnd(width, s=0.2)
    w["norm.weight"] = 1 + rnd(width, s=0.1)
    w["norm.bias"] = rnd(width, s=0.1)
    return w


def positions(pos, M, g):
    """The references' interpolate_pos_encoding for a square g x g grid."""
    if g == M:
        return pos
    D = pos.shape[-1]
    grid = pos[:, 1:].reshape(1, M, M, D).permute(0, 3, 1, 2)
    s = (g + 0.1) / M
    grid = F.interpolate(grid, scale_factor=(s, s), mode="bicubic", align_corners=False)
    assert grid.shape[-1] == g and grid.shape[-2] == g
    return torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, g * g, D)], dim=1)


def vit_forward(w, x, depth, heads, patch, M, layer_scale):
    """-> tokens after norm (B, T, D), the last block's attention (B, H, T, T)."""
    B = x.shape[0]
    t = F.conv2d(x, w["patch_embed.proj.weight"], w["patch_embed.proj.bias"], stride=patch)
    g = t.shape[-1]
    t = t.flatten(2).transpose(1, 2)
    D = t.shape[-1]
    t = torch.cat([w["cls_token"].expand(B, 1, D), t], dim=1) + positions(w["pos_embed"], M, g)
    attn = None
    for i in range(depth):
        b = "blocks.%d." % i
        h = F.layer_norm(t, (D,), w[b + "norm1.weight"], w[b + "norm1.bias"], eps=1e-6)
        T = h.shape[1]
        qkv = F.linear(h, w[b + "attn.qkv.weight"], w[b + "attn.qkv.bias"]).reshape(B, T, 3, heads, D // heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        attn = torch.softmax(q @ k.transpose(-2, -1) * (D // heads) ** -0.5, dim=-1)
        h = F.linear((attn @ v).transpose(1, 2).reshape(B, T, D), w[b + "attn.proj.weight"], w[b + "attn.proj.bias"])
        if layer_scale:
            h = h * w[b + "ls1.gamma"]
        t = t + h
        h = F.layer_norm(t, (D,), w[b + "norm2.weight"], w[b + "norm2.bias"], eps=1e-6)
        h = F.linear(F.gelu(F.linear(h, w[b + "mlp.fc1.weight"], w[b + "mlp.fc1.bias"])), w[b + "mlp.fc2.weight"],
                     w[b + "mlp.fc2.bias"])
        if layer_scale:
            h = h * w[b + "ls2.gamma"]
        t = t + h
    return F.layer_norm(t, (D,), w["norm.weight"], w["norm.bias"], eps=1e-6), attn


def run(out, gen, w, sizes, depth, heads, patch, M, ls, B, grads):
    for S in sizes:
        x = torch.randn(B, 3, S, S, generator=gen)
        leaves = {k: v.detach().clone().requires_grad_(True) for k, v in w.items()}
        xl = x.clone().requires_grad_(True)
        tok, attn = vit_forward(leaves, xl, depth, heads, patch, M, ls)
        cls, avg = tok[:, 0], tok[:, 1:].mean(dim=1)
        r, q = torch.randn(cls.shape, generator=gen), torch.randn(avg.shape, generator=gen)
        ((cls * r).sum() + (avg * q).sum()).backward()
        out["input.%d" % S] = x
        out.update({"out.cls.%d" % S: cls, "out.avg.%d" % S: avg, "out.attn.%d" % S: attn[:, :, 0, :],
                    "r.%d" % S: r, "q.%d" % S: q})
        if S in grads:
            out["grad%d:images" % S] = xl.grad
            for k, v in leaves.items():
                out["grad%d:%s" % (S, k)] = v.grad


HF_BLOCK = {"norm1.": "norm1.", "norm2.": "norm2.", "attn.proj.": "attention.output.dense.", "mlp.fc1.": "mlp.fc1.",
            "mlp.fc2.": "mlp.fc2.", "ls1.gamma": "layer_scale1.lambda1", "ls2.gamma": "layer_scale2.lambda1"}
HF_FIXED = {"cls_token": "embeddings.cls_token", "pos_embed": "embeddings.position_embeddings",
            "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
            "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias", "norm.weight": "layernorm.weight",
            "norm.bias": "layernorm.bias"}


def hf_names(w, width):
    o = {}
    for k, v in w.items():
        if k in HF_FIXED:
            o[HF_FIXED[k]] = v
            continue
        _, i, rest = k.split(".", 2)
        pre = "encoder.layer.%s." % i
        if rest.startswith("attn.qkv."):
            kind = rest.split(".")[-1]
            for j, n in enumerate(("query", "key", "value")):
                o[pre + "attention.attention.%s.%s" % (n, kind)] = v[j * width:(j + 1) * width]
            continue
        for a, b in HF_BLOCK.items():
            if rest.startswith(a):
                o[pre + b + rest[len(a):]] = v
                break
        else:
            raise KeyError(k)
    o["embeddings.mask_token"] = torch.zeros(1, width)
    return o


def write_ppm(path, img):
    """img: (H, W, 3) uint8 tensor -> binary PPM."""
    H, W, _ = img.shape
    with open(path, "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (W, H) + img.numpy().tobytes())


def cli_case(gen):
    """The command-line test: a ViT whose heads the file's shapes tell (width 64: one head), images whose
    DINO preprocessing (short side resized to 18 = round(16 * 256 / 224), centre crop 16) is only the crop,
    and the expected embeddings written as CSV (class token; class + mean patch token; not normalised)."""
    width, depth, heads, patch, M = 64, 2, 1, 4, 4
    w = random_vit(gen, width, depth, patch, M, False)
    w = {k: v.to(torch.float16).to(torch.float32) for k, v in w.items()}
    write_safetensors("tests/ref/dino_cli.safetensors", w, {}, f16=set(w))
    os.makedirs("tests/ref/dino_images", exist_ok=True)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    rows_cls, rows_both = [], []
    for name, (H, W) in (("a.ppm", (18, 18)), ("b.ppm", (18, 18)), ("c.ppm", (24, 18))):
        img = torch.randint(0, 256, (H, W, 3), generator=gen, dtype=torch.uint8)
        write_ppm("tests/ref/dino_images/" + name, img)
        top, left = int(round((H - 16) / 2.0)), int(round((W - 16) / 2.0))
        x = img[top:top + 16, left:left + 16].permute(2, 0, 1).to(torch.float32) / 255.0
        x = ((x - mean) / std).unsqueeze(0)
        with torch.no_grad():
            tok, _ = vit_forward(w, x, depth, heads, patch, M, False)
        rows_cls.append(tok[0, 0])
        rows_both.append(torch.cat([tok[0, 0], tok[0, 1:].mean(dim=0)]))
    for path, rows in (("tests/ref/dino_cli_cls.csv", rows_cls), ("tests/ref/dino_cli_clsavg.csv", rows_both)):
        with open(path, "w") as f:
            for r in rows:
                f.write(",".join("%.8g" % v for v in r.tolist()) + "\n")
    print("tests/ref/dino_cli.safetensors: %d bytes" % os.path.getsize("tests/ref/dino_cli.safetensors"))


def fuzz_seeds(gen):
    """Seeds for fuzz/fuzz_model.c: a tiny ViT (width 16, 1 block, patch 4, 8 px) in facebookresearch names
    under a "module." prefix (F32) and in Hugging Face names with LayerScale (F16)."""
    w = random_vit(gen, 16, 1, 4, 2, False)
    write_safetensors("fuzz/corpus/model/vit_fb_tiny.safetensors", {"module." + k: v for k, v in w.items()}, {})
    w = random_vit(gen, 16, 1, 4, 2, True)
    hf = hf_names(w, 16)
    write_safetensors("fuzz/corpus/model/vit_hf_tiny.safetensors", hf, {}, f16=set(hf))


def main():
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(20261203)
    # facebookresearch naming, prefixed as in a full checkpoint
    width, depth, heads, patch, M = 48, 2, 3, 4, 4
    w = random_vit(gen, width, depth, patch, M, False)
    out = {"teacher.backbone." + k: v for k, v in w.items()}
    out["teacher.head.mlp.0.weight"] = torch.randn(8, width, generator=gen)  # not the backbone's
    run(out, gen, w, (16, 24, 8), depth, heads, patch, M, False, 2, (16, 24))
    path = "tests/ref/dino_fb.safetensors"
    write_safetensors(path, out, {"heads": str(heads)})
    print("%s: %d tensors, %d bytes" % (path, len(out), os.path.getsize(path)))
    # Hugging Face naming, DINOv2 LayerScale, BF16 weights
    width, depth, heads, patch, M = 48, 2, 3, 2, 5
    w = random_vit(gen, width, depth, patch, M, True)
    w = {k: v.to(torch.bfloat16).to(torch.float32) for k, v in w.items()}  # what the file holds
    hf = hf_names(w, width)
    out = dict(hf)
    run(out, gen, w, (10, 14), depth, heads, patch, M, True, 2, (14,))
    path = "tests/ref/dino_hf.safetensors"
    write_safetensors(path, out, {"heads": str(heads)}, bf16=set(hf))
    print("%s: %d tensors, %d bytes" % (path, len(out), os.path.getsize(path)))
    cli_case(gen)
    fuzz_seeds(gen)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Writes the PyTorch reference the C transformer-op tests compare with (tests/ref/nn_transformer.safetensors).

Small random cases, each a forward pass, the loss sum(y * r) with a fixed random r, and backward;
the file holds every input, output and gradient, names prefixed by the case:

  ln.*          torch.nn.LayerNorm(8) on (2, 5, 8)
  act.*         nn.GELU() and QuickGELU (x * sigmoid(1.702 x)) on (2, 5, 8)
  dense.*       nn.Linear(8, 6) on (2, 5, 8); denseT.*: x @ W, W (8, 6), no bias (OpenAI's proj)
  attn*.*       multi-head self-attention on a fused qkv (B, T, 3D), written out as
                softmax(Q K^T / sqrt(hd) [+ causal -inf]) V per head: attn (T 7, 3 heads),
                attnc (the same, causal), attn5c (T 5, 2 heads, causal)
  embed.*       token embedding (11 x 8) + the first 5 of 6 learned positions
  vit.*         ViT input: a stride-4 patch convolution (no bias) of (2, 3, 8, 8), class token,
                patches row-major, positional embedding
  tblock.* / vblock.*  OpenAI CLIP's ResidualAttentionBlock (pre-LN: x + attn(ln_1(x)),
                x + mlp(ln_2(x)), mlp = c_fc, QuickGELU, c_proj) with nn.MultiheadAttention,
                then ln_final, pooling and a projection x @ proj: tblock as the text tower
                (causal mask, each row pooled at its EOT index), vblock as the image tower (no
                mask, class token). Parameters under their OpenAI names, gradients "grad.<name>".

Integer inputs (ids, pooling indices) are stored as F32. Needs Debian's python3-torch. Run from
the repository root:  /usr/bin/python3 scripts/make_transformer_ref.py
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_nn_ref import write_safetensors  # noqa: E402


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


def leaf(t):
    return t.detach().clone().requires_grad_(True)


def backward(y, gen):
    """sum(y * r) for a fixed random r; returns r."""
    r = torch.randn(y.shape, generator=gen)
    (y * r).sum().backward()
    return r


def case_layernorm(out, gen):
    ln = nn.LayerNorm(8)
    with torch.no_grad():
        ln.weight.copy_(1 + 0.3 * torch.randn(8, generator=gen))
        ln.bias.copy_(0.3 * torch.randn(8, generator=gen))
    x = leaf(3 * torch.randn(2, 5, 8, generator=gen) + 1)
    y = ln(x)
    r = backward(y, gen)
    out.update({"ln.x": x, "ln.weight": ln.weight, "ln.bias": ln.bias, "ln.r": r, "ln.y": y, "ln.dx": x.grad,
                "ln.dweight": ln.weight.grad, "ln.dbias": ln.bias.grad})


def case_activations(out, gen):
    x = 2.5 * torch.randn(2, 5, 8, generator=gen)
    r = torch.randn(2, 5, 8, generator=gen)
    out.update({"act.x": x, "act.r": r})
    for name, f in (("gelu", nn.GELU()), ("qgelu", quick_gelu)):
        xl = leaf(x)
        y = f(xl)
        (y * r).sum().backward()
        out.update({"act.%s.y" % name: y, "act.%s.dx" % name: xl.grad})


def case_dense(out, gen):
    lin = nn.Linear(8, 6)
    x = leaf(torch.randn(2, 5, 8, generator=gen))
    y = lin(x)
    r = backward(y, gen)
    out.update({"dense.x": x, "dense.weight": lin.weight, "dense.bias": lin.bias, "dense.r": r, "dense.y": y,
                "dense.dx": x.grad, "dense.dweight": lin.weight.grad, "dense.dbias": lin.bias.grad})
    w = leaf(torch.randn(8, 6, generator=gen) / math.sqrt(8))
    x = leaf(torch.randn(2, 5, 8, generator=gen))
    y = x @ w
    r = backward(y, gen)
    out.update({"denseT.x": x, "denseT.weight": w, "denseT.r": r, "denseT.y": y, "denseT.dx": x.grad,
                "denseT.dweight": w.grad})


def attention(qkv, heads, causal):
    """Multi-head self-attention on fused rows [q | k | v], written out."""
    B, T, D3 = qkv.shape
    D = D3 // 3
    hd = D // heads
    q, k, v = (t.reshape(B, T, heads, hd).transpose(1, 2) for t in qkv.split(D, dim=-1))
    s = q @ k.transpose(-1, -2) / math.sqrt(hd)
    if causal:
        s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    o = torch.softmax(s, dim=-1) @ v
    return o.transpose(1, 2).reshape(B, T, D)


def case_attention(out, gen):
    for name, T, heads, D, causal in (("attn", 7, 3, 12, 0), ("attnc", 7, 3, 12, 1), ("attn5c", 5, 2, 8, 1)):
        qkv = leaf(torch.randn(2, T, 3 * D, generator=gen))
        y = attention(qkv, heads, causal)
        r = backward(y, gen)
        out.update({name + ".qkv": qkv, name + ".r": r, name + ".y": y, name + ".dqkv": qkv.grad})
        out[name + ".config"] = torch.tensor([heads, causal], dtype=torch.float32)


def case_embed(out, gen):
    table = leaf(torch.randn(11, 8, generator=gen))
    pos = leaf(0.5 * torch.randn(6, 8, generator=gen))
    ids = torch.randint(0, 11, (2, 5), generator=gen)
    ids[0, 0] = ids[1, 3] = 4  # a repeated id: its gradient rows add up
    y = table[ids] + pos[:5]
    r = backward(y, gen)
    out.update({"embed.ids": ids.to(torch.float32), "embed.table": table, "embed.pos": pos, "embed.r": r,
                "embed.y": y, "embed.dtable": table.grad, "embed.dpos": pos.grad})


def case_vit(out, gen):
    conv = nn.Conv2d(3, 8, 4, 4, bias=False)
    cls = leaf(torch.randn(8, generator=gen))
    pos = leaf(0.5 * torch.randn(5, 8, generator=gen))
    img = leaf(torch.randn(2, 3, 8, 8, generator=gen))
    p = conv(img)  # (2, 8, 2, 2)
    p = p.flatten(2).transpose(1, 2)  # (2, 4, 8): patches row-major
    y = torch.cat([cls.expand(2, 1, 8), p], dim=1) + pos
    r = backward(y, gen)
    out.update({"vit.image": img, "vit.conv.weight": conv.weight, "vit.cls": cls, "vit.pos": pos, "vit.r": r,
                "vit.y": y, "vit.dimage": img.grad, "vit.dconv.weight": conv.weight.grad, "vit.dcls": cls.grad,
                "vit.dpos": pos.grad})


class ResidualAttentionBlock(nn.Module):
    """OpenAI CLIP's block (clip/model.py), on (T, B, D) as there."""

    def __init__(self, d, heads, mask):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads)
        self.ln_1 = nn.LayerNorm(d)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(d, 4 * d))
        self.mlp.add_module("c_proj", nn.Linear(4 * d, d))
        self.ln_2 = nn.LayerNorm(d)
        self.mask = mask

    def forward(self, x):
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=self.mask)[0]
        return x + self.mlp.c_proj(quick_gelu(self.mlp.c_fc(self.ln_2(x))))


class Tower(nn.Module):
    def __init__(self, d, heads, T, out_dim, causal):
        super().__init__()
        mask = torch.full((T, T), float("-inf")).triu(1) if causal else None
        self.block = ResidualAttentionBlock(d, heads, mask)
        self.ln_final = nn.LayerNorm(d)
        self.proj = nn.Parameter(torch.empty(d, out_dim))

    def forward(self, x, idx):  # x (B, T, D)
        y = self.block(x.permute(1, 0, 2)).permute(1, 0, 2)
        y = self.ln_final(y)
        return y[torch.arange(y.shape[0]), idx] @ self.proj


def case_block(out, gen, name, causal, idx):
    B, T, d, heads, out_dim = 2, 7, 16, 4, 10
    m = Tower(d, heads, T, out_dim, causal)
    with torch.no_grad():
        for pname, t in m.named_parameters():
            if pname.endswith("bias"):
                t.copy_(0.1 * torch.randn(t.shape, generator=gen))
            elif t.dim() == 1:  # LayerNorm scales
                t.copy_(1 + 0.1 * torch.randn(t.shape, generator=gen))
            else:
                fan = t.shape[0] if pname == "proj" else t.shape[1]
                t.copy_(torch.randn(t.shape, generator=gen) / math.sqrt(fan))
    x = leaf(torch.randn(B, T, d, generator=gen))
    idx = torch.tensor(idx)
    y = m(x, idx)
    r = backward(y, gen)
    out.update({name + ".x": x, name + ".idx": idx.to(torch.float32), name + ".r": r, name + ".y": y,
                name + ".dx": x.grad})
    out[name + ".config"] = torch.tensor([heads, causal], dtype=torch.float32)
    for pname, t in m.named_parameters():
        out[name + "." + pname] = t
        out["grad." + name + "." + pname] = t.grad


def main():
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(20240601)
    out = {}
    case_layernorm(out, gen)
    case_activations(out, gen)
    case_dense(out, gen)
    case_attention(out, gen)
    case_embed(out, gen)
    case_vit(out, gen)
    case_block(out, gen, "tblock", 1, [6, 3])  # the text tower: each row pooled at its EOT
    case_block(out, gen, "vblock", 0, [0, 0])  # the image tower: the class token
    out = {k: v.detach() for k, v in out.items()}
    path = "tests/ref/nn_transformer.safetensors"
    write_safetensors(path, out, {"torch": torch.__version__})
    print("%s: %d tensors, %d bytes" % (path, len(out), os.path.getsize(path)))


if __name__ == "__main__":
    sys.exit(main())

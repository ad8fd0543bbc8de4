#!/usr/bin/python3
"""Writes the PyTorch reference files the C neural-engine tests compare with (tests/ref/nn_*.safetensors).

Builds, in PyTorch, the same small ResNet-18 and MobileFaceNet the C code builds (same parameter
names), with random weights, batch-norm statistics and PReLU slopes; runs a training-mode forward
pass on a fixed input, the ArcFace head and cross-entropy, backward; and an eval-mode forward
pass. Everything is written as one safetensors file per network: the weights under their names,
"input", "emb_train", "emb_eval", "labels", "loss", "grad.<name>" for every trained parameter,
and "after.<name>" for the running statistics after the training pass.

Needs Debian's python3-torch. Run from the repository root:  /usr/bin/python3 scripts/make_nn_ref.py
"""
import json
import math
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


class ResNet(nn.Module):
    def __init__(self, depth, width, cin, side, dim):
        super().__init__()
        self.big = side >= 64
        self.conv1 = nn.Conv2d(cin, width, 7 if self.big else 3, 2 if self.big else 1, 3 if self.big else 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        c = width
        for s in range(4):
            blocks = []
            for i in range(depth[s]):
                blocks.append(BasicBlock(c, width << s, 2 if s > 0 and i == 0 else 1))
                c = width << s
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*blocks))
        self.fc = nn.Linear(c, dim)
        self.features = nn.BatchNorm1d(dim)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        if self.big:
            y = F.max_pool2d(y, 3, 2, 1)
        for s in range(4):
            y = getattr(self, "layer%d" % (s + 1))(y)
        y = torch.flatten(F.adaptive_avg_pool2d(y, 1), 1)
        return self.features(self.fc(y))


class ConvBlock(nn.Module):
    def __init__(self, cin, cout, k, s, p, groups, act):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, p, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.prelu = nn.PReLU(cout) if act else None

    def forward(self, x):
        y = self.bn(self.conv(x))
        return self.prelu(y) if self.prelu is not None else y


class DepthWise(nn.Module):
    def __init__(self, cin, cout, mid, stride, residual):
        super().__init__()
        self.conv = ConvBlock(cin, mid, 1, 1, 0, 1, True)
        self.conv_dw = ConvBlock(mid, mid, 3, stride, 1, mid, True)
        self.project = ConvBlock(mid, cout, 1, 1, 0, 1, False)
        self.residual = residual

    def forward(self, x):
        y = self.project(self.conv_dw(self.conv(x)))
        return x + y if self.residual else y


class Residual(nn.Module):
    def __init__(self, c, mid, n):
        super().__init__()
        self.model = nn.Sequential(*[DepthWise(c, c, mid, 1, True) for _ in range(n)])

    def forward(self, x):
        return self.model(x)


class MobileFaceNet(nn.Module):
    def __init__(self, width, cin, side, dim):
        super().__init__()
        w = width
        self.conv1 = ConvBlock(cin, w, 3, 2, 1, 1, True)
        self.conv2_dw = ConvBlock(w, w, 3, 1, 1, w, True)
        self.conv_23 = DepthWise(w, w, 2 * w, 2, False)
        self.conv_3 = Residual(w, 2 * w, 4)
        self.conv_34 = DepthWise(w, 2 * w, 4 * w, 2, False)
        self.conv_4 = Residual(2 * w, 4 * w, 6)
        self.conv_45 = DepthWise(2 * w, 2 * w, 8 * w, 2, False)
        self.conv_5 = Residual(2 * w, 4 * w, 2)
        self.conv_6_sep = ConvBlock(2 * w, 8 * w, 1, 1, 0, 1, True)
        k = side
        for _ in range(4):
            k = (k - 1) // 2 + 1
        self.conv_6_dw = ConvBlock(8 * w, 8 * w, k, 1, 0, 8 * w, False)
        self.linear = nn.Linear(8 * w, dim, bias=False)
        self.bn = nn.BatchNorm1d(dim)

    def forward(self, x):
        y = self.conv2_dw(self.conv1(x))
        for name in ("conv_23", "conv_3", "conv_34", "conv_4", "conv_45", "conv_5", "conv_6_sep", "conv_6_dw"):
            y = getattr(self, name)(y)
        return self.bn(self.linear(torch.flatten(y, 1)))


def arcface_loss(emb, weight, labels, m=0.5, s=64.0):
    """ArcFace logits (the C head's formula, with its fallback past pi) and mean cross-entropy."""
    cos = F.linear(F.normalize(emb), F.normalize(weight))
    c = cos.gather(1, labels[:, None]).clamp(-1 + 1e-7, 1 - 1e-7)
    theta = torch.acos(c)
    target = torch.where(theta + m <= math.pi, torch.cos(theta + m), c - m * math.sin(m))
    logits = cos.scatter(1, labels[:, None], target) * s
    return F.cross_entropy(logits, labels)


def randomise(model, gen):
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=gen))
            elif name.endswith("running_mean") or name.endswith("bias"):
                t.copy_(0.1 * torch.randn(t.shape, generator=gen))
            elif name.endswith("prelu.weight"):
                t.copy_(0.25 + 0.1 * torch.randn(t.shape, generator=gen))
            elif t.dim() == 1:  # batch-norm scales
                t.copy_(1 + 0.1 * torch.randn(t.shape, generator=gen))
            else:  # He-scaled weights keep the activations O(1) through the depth
                fan = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=gen) * math.sqrt(2.0 / fan))


def write_safetensors(path, tensors, meta, f16=()):
    """Tensors as F32, or F16 for the names in f16."""
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, t in tensors.items():
        half = name in f16
        data = t.detach().contiguous().to(torch.float16 if half else torch.float32).numpy().tobytes()
        header[name] = {"dtype": "F16" if half else "F32", "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)) + js + b"".join(blobs))


def make(path, model, arch, width, side, cin, dim, classes, batch, seed):
    gen = torch.Generator().manual_seed(seed)
    randomise(model, gen)
    x = torch.randn(batch, cin, side, side, generator=gen)
    labels = torch.arange(batch) % classes
    head = torch.randn(classes, dim, generator=gen)
    head.requires_grad_(True)
    before = {k: v.clone() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    model.train()
    emb = model(x)
    loss = arcface_loss(emb, head, labels)
    loss.backward()
    model.eval()
    with torch.no_grad():
        model.load_state_dict(before, strict=False)  # eval with the statistics from before the pass
        emb_eval = model(x)
    out = dict(before)
    out["head.weight"] = head.detach()
    out["input"] = x
    out["labels"] = labels.to(torch.float32)
    out["emb_train"] = emb.detach()
    out["emb_eval"] = emb_eval
    out["loss"] = loss.detach().reshape(1)
    for name, p in model.named_parameters():
        out["grad." + name] = p.grad
    out["grad.head.weight"] = head.grad
    model.train()
    with torch.no_grad():
        model.load_state_dict(before, strict=False)
        model(x)
    for name, t in model.state_dict().items():
        if "running_" in name:
            out["after." + name] = t.clone()
    meta = {"embr.arch": arch, "embr.width": str(width), "embr.embedding_dim": str(dim),
            "embr.input": "%dx%dx%d" % (cin, side, side), "embr.classes": str(classes),
            "torch": torch.__version__}
    write_safetensors(path, out, meta)
    print("%s: %d tensors, loss %.6f" % (path, len(out), loss.item()))


def main():
    torch.set_num_threads(2)
    torch.backends.cudnn.deterministic = True
    make("tests/ref/nn_resnet18.safetensors", ResNet([2, 2, 2, 2], 2, 3, 64, 8), "resnet18", 2, 64, 3, 8, 3, 3, 1)
    make("tests/ref/nn_mobilefacenet.safetensors", MobileFaceNet(8, 3, 48, 8), "mobilefacenet", 8, 48, 3, 8, 3, 4, 2)


if __name__ == "__main__":
    sys.exit(main())

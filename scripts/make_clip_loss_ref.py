#!/usr/bin/python3
"""Writes tests/ref/nn_clip_loss.safetensors: CLIP's symmetric InfoNCE computed by PyTorch, for the
C loss (embr__nn_clip_loss) to match.

Three cases on the same random (B=6, E=5) image and text rows, each stored under its prefix:
  "plain."   logit_scale ln(1/0.07), no groups (the CLIP paper's loss);
  "group."   the same with groups [0, 1, 1, 2, 3, 3]: off-diagonal entries of rows showing the same
             picture are masked out of both softmaxes (set to -inf);
  "clamped." logit_scale 5.0, clamped into [0, ln 100] in the forward (scale 100, gradient 0).
Per case: img, txt, logit_scale (1), group (B floats, -1 = none), loss (1), grad_img, grad_txt,
grad_scale (1), i2t, t2i (in-batch argmax hits, 1 each).

Needs Debian's python3-torch. Run from the repository root:  /usr/bin/python3 scripts/make_clip_loss_ref.py
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_nn_ref import write_safetensors  # noqa: E402


def clip_loss(img, txt, s, group):
    u, v = F.normalize(img, dim=1), F.normalize(txt, dim=1)
    logits = torch.clamp(s, 0, math.log(100)).exp() * u @ v.t()
    B = img.shape[0]
    if group is not None:
        g = torch.tensor(group)
        same = (g[:, None] == g[None, :]) & ~torch.eye(B, dtype=torch.bool)
        logits = logits.masked_fill(same, float("-inf"))
    target = torch.arange(B)
    loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
    i2t = (logits.argmax(dim=1) == target).sum()
    t2i = (logits.argmax(dim=0) == target).sum()
    return loss, i2t, t2i


def case(out, prefix, img0, txt0, s0, group):
    img = img0.clone().double().requires_grad_(True)
    txt = txt0.clone().double().requires_grad_(True)
    s = torch.tensor([s0], dtype=torch.float64, requires_grad=True)
    loss, i2t, t2i = clip_loss(img, txt, s[0], group)
    loss.backward()
    B = img0.shape[0]
    out[prefix + "img"] = img0
    out[prefix + "txt"] = txt0
    out[prefix + "logit_scale"] = torch.tensor([s0])
    out[prefix + "group"] = torch.tensor(group if group is not None else [-1] * B, dtype=torch.float32)
    out[prefix + "loss"] = loss.detach().reshape(1)
    out[prefix + "grad_img"] = img.grad
    out[prefix + "grad_txt"] = txt.grad
    out[prefix + "grad_scale"] = s.grad
    out[prefix + "i2t"] = i2t.reshape(1).float()
    out[prefix + "t2i"] = t2i.reshape(1).float()
    print("%s loss %.7f, scale gradient %.6f, hits %d/%d" % (prefix, loss.item(), s.grad.item(), i2t, t2i))


def main():
    gen = torch.Generator().manual_seed(5)
    B, E = 6, 5
    img = torch.randn(B, E, generator=gen)
    txt = img + torch.randn(B, E, generator=gen) * 0.7  # related rows: most pairs found, not all
    img[2] *= 3.0  # norms other than 1 reach the normalisation's gradient
    out = {}
    case(out, "plain.", img, txt, math.log(1 / 0.07), None)
    case(out, "group.", img, txt, math.log(1 / 0.07), [0, 1, 1, 2, 3, 3])
    case(out, "clamped.", img, txt, 5.0, None)
    write_safetensors("tests/ref/nn_clip_loss.safetensors", out, {"torch": torch.__version__})


if __name__ == "__main__":
    main()

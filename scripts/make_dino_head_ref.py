#!/usr/bin/python3
"""Writes tests/ref/dino_head_step.safetensors: DINO's method without a backbone, computed by
PyTorch as facebookresearch/dino's paper and training script describe it (written here from that
description, no code taken), for tests/test_dino.c to match:

  head.    the projection head (3-layer MLP with GELU, L2 normalisation, weight-normalised last
           layer with its gain frozen at 1) on random rows: output, and every gradient for a random
           upstream gradient (x, mlp weights and biases, last_layer.weight_v).
  loss.    DINOLoss on random student (2 global + 3 local views) and teacher outputs with a center:
           loss, the student's gradient, the center after its EMA (0.9); "loss0." the same with no
           local views.
  sched.   cosine_scheduler values (lr with warm-up from 0, weight decay 0.04 -> 0.4, momentum
           0.996 -> 1) and the teacher temperature per epoch (0.04 -> 0.07 over warm-up epochs).
  clip.    per-parameter gradient clipping (clip_gradients) of three gradients, two above the bound.
  step_E.  one whole training step (gradients before and after clipping: grad., gradc.) with an identity backbone (the crops are feature rows): teacher
           forward on the global views, student forward on all, loss, center update, backward,
           per-parameter clipping, the last layer's gradient dropped in epoch 0 (freeze_last_layer
           = 1), AdamW with the decayed / not decayed groups (biases and 1-D tensors not decayed,
           the frozen gain not trained), teacher EMA. E = 0 (last layer frozen) and 1.

Needs Debian's python3-torch. Run from the repository root:  /usr/bin/python3 scripts/make_dino_head_ref.py
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_nn_ref import write_safetensors  # noqa: E402

torch.set_default_dtype(torch.float64)  # the reference in double; stored as float32


class Head(nn.Module):
    """in -> hidden -> hidden -> bottleneck (GELU between), normalise, weight-normalised K outputs."""

    def __init__(self, d_in, hidden, bottleneck, k):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, bottleneck))
        # weight_norm by hand (W = g v / ||v|| per output row): the names DINO's checkpoints carry
        self.last_layer = nn.Module()
        self.last_layer.weight_g = nn.Parameter(torch.ones(k, 1), requires_grad=False)
        self.last_layer.weight_v = nn.Parameter(torch.empty(k, bottleneck))

    def forward(self, x):
        z = F.normalize(self.mlp(x), dim=-1, p=2)
        v = self.last_layer.weight_v
        w = self.last_layer.weight_g * v / v.norm(dim=1, keepdim=True)
        return z @ w.t()


def randomise(head, gen):
    for name, p in head.named_parameters():
        if name.endswith("weight_g"):
            continue
        fan = p.shape[-1] if p.dim() > 1 else 4
        p.data = torch.randn(p.shape, generator=gen) / math.sqrt(fan)


def dino_loss(s_out, t_out, center, n_views, t_temp, s_temp):
    q = F.softmax((t_out - center) / t_temp, dim=-1).chunk(2)
    lp = F.log_softmax(s_out / s_temp, dim=-1).chunk(n_views)
    total, pairs = 0, 0
    for i, qi in enumerate(q):
        for v, lv in enumerate(lp):
            if v == i:
                continue
            total = total + (-(qi * lv).sum(dim=-1)).mean()
            pairs += 1
    return total / pairs


def center_update(center, t_out, m=0.9):
    return center * m + t_out.mean(dim=0, keepdim=True) * (1 - m)


def cosine_scheduler(base, final, epochs, per_epoch, warmup_epochs=0, start=0.0):
    warm = np.linspace(start, base, warmup_epochs * per_epoch) if warmup_epochs > 0 else np.array([])
    it = np.arange(epochs * per_epoch - len(warm))
    rest = final + 0.5 * (base - final) * (1 + np.cos(np.pi * it / len(it)))
    return np.concatenate((warm, rest))


def teacher_temps(warm, final, warm_epochs, epochs):
    return np.concatenate((np.linspace(warm, final, warm_epochs), np.ones(epochs - warm_epochs) * final))


def clip_each(params, bound):
    for p in params:
        if p.grad is None:
            continue
        coef = bound / (p.grad.norm(2) + 1e-6)
        if coef < 1:
            p.grad.mul_(coef)


def put_params(out, prefix, head):
    for name, p in head.named_parameters():
        out[prefix + "head." + name] = p.detach().clone()


def case_head(out, gen):
    head = Head(12, 16, 8, 10)
    randomise(head, gen)
    x = torch.randn(5, 12, generator=gen, requires_grad=True)
    y = head(x)
    dy = torch.randn(y.shape, generator=gen)
    (y * dy).sum().backward()
    put_params(out, "head.", head)
    out["head.x"], out["head.y"], out["head.dy"], out["head.grad_x"] = x.detach(), y.detach(), dy, x.grad
    for name, p in head.named_parameters():
        if p.grad is not None:
            out["head.grad." + name] = p.grad
    print("head: |y| %.4f, |dx| %.4f" % (y.norm(), x.grad.norm()))


def case_loss(out, prefix, gen, n_local):
    B, K, V = 3, 10, 2 + n_local
    s = (torch.randn(V * B, K, generator=gen) * 2).requires_grad_(True)
    t = torch.randn(2 * B, K, generator=gen) * 0.3
    c = torch.randn(1, K, generator=gen) * 0.1
    loss = dino_loss(s, t, c, V, 0.04, 0.1)
    loss.backward()
    out[prefix + "student"], out[prefix + "teacher"], out[prefix + "center"] = s.detach(), t, c
    out[prefix + "loss"], out[prefix + "grad"] = loss.detach().reshape(1), s.grad
    out[prefix + "center_after"] = center_update(c, t)
    print("%s loss %.6f" % (prefix, loss.item()))


def case_sched(out):
    lr = cosine_scheduler(5e-4 * 24 / 256, 1e-6, 7, 5, warmup_epochs=2)
    wd = cosine_scheduler(0.04, 0.4, 7, 5)
    mom = cosine_scheduler(0.996, 1.0, 7, 5)
    tt = teacher_temps(0.04, 0.07, 3, 7)
    for k, v in (("lr", lr), ("wd", wd), ("momentum", mom), ("teacher_temp", tt)):
        out["sched." + k] = torch.tensor(v)
    print("sched: lr[0..2] %s, wd[-1] %.6f" % (lr[:3], wd[-1]))


def case_clip(out, gen):
    ps = [nn.Parameter(torch.zeros(n)) for n in (7, 5, 9)]
    for i, (p, s) in enumerate(zip(ps, (2.0, 0.2, 5.0))):
        p.grad = torch.randn(p.shape, generator=gen) * s
        out["clip.in%d" % i] = p.grad.clone()
    clip_each(ps, 3.0)
    for i, p in enumerate(ps):
        out["clip.out%d" % i] = p.grad.clone()
    print("clip: norms after %s" % [round(p.grad.norm().item(), 4) for p in ps])


def case_step(out, prefix, gen, epoch):
    B, n_local, d_in, K = 4, 2, 6, 12
    student = Head(d_in, 16, 8, K)
    randomise(student, gen)
    teacher = Head(d_in, 16, 8, K)
    teacher.load_state_dict(student.state_dict())
    for name, p in teacher.named_parameters():  # a teacher some steps away from the student
        if not name.endswith("weight_g"):
            p.data += torch.randn(p.shape, generator=gen) * 0.05
    glob = torch.randn(2 * B, d_in, generator=gen)
    loc = torch.randn(n_local * B, d_in, generator=gen)
    center = torch.randn(1, K, generator=gen) * 0.1
    lr, wd, mom, t_temp, clip = 3e-3, 0.07, 0.9963, 0.05, 0.4
    put_params(out, prefix + "student.", student)
    put_params(out, prefix + "teacher.", teacher)
    out[prefix + "global"], out[prefix + "local"], out[prefix + "center"] = glob, loc, center
    out[prefix + "hyper"] = torch.tensor([lr, wd, mom, t_temp, clip, epoch, B, n_local])

    decay = [p for n, p in student.named_parameters() if p.requires_grad and not (n.endswith(".bias") or p.dim() == 1)]
    plain = [p for n, p in student.named_parameters() if p.requires_grad and (n.endswith(".bias") or p.dim() == 1)]
    opt = torch.optim.AdamW([{"params": decay}, {"params": plain, "weight_decay": 0.0}], lr=lr)
    opt.param_groups[0]["weight_decay"] = wd  # the schedule's value for this iteration (group 0 only)

    with torch.no_grad():
        t_out = teacher(glob)
    s_out = student(torch.cat((glob, loc)))
    loss = dino_loss(s_out, t_out, center, 2 + n_local, t_temp, 0.1)
    center_new = center_update(center, t_out)
    opt.zero_grad()
    loss.backward()
    for name, p in student.named_parameters():
        if p.grad is not None:
            out[prefix + "grad.head." + name] = p.grad.clone()
    clip_each(student.parameters(), clip)
    for name, p in student.named_parameters():
        if p.grad is not None:
            out[prefix + "gradc.head." + name] = p.grad.clone()
    if epoch < 1:  # freeze_last_layer = 1: the last layer's gradient dropped in the first epoch
        for name, p in student.named_parameters():
            if "last_layer" in name:
                p.grad = None
    opt.step()
    with torch.no_grad():
        for ps, pt in zip(student.parameters(), teacher.parameters()):
            pt.data.mul_(mom).add_((1 - mom) * ps.detach().data)
    out[prefix + "loss"] = loss.detach().reshape(1)
    out[prefix + "center_after"] = center_new
    put_params(out, prefix + "student_after.", student)
    put_params(out, prefix + "teacher_after.", teacher)
    print("%s loss %.6f" % (prefix, loss.item()))


def main():
    gen = torch.Generator().manual_seed(13)
    out = {}
    case_head(out, gen)
    case_loss(out, "loss.", gen, 3)
    case_loss(out, "loss0.", gen, 0)
    case_sched(out)
    case_clip(out, gen)
    case_step(out, "step0.", gen, 0)
    case_step(out, "step1.", gen, 1)
    write_safetensors("tests/ref/dino_head_step.safetensors", out, {"torch": torch.__version__})


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Writes tests/ref/dino_step.safetensors: one whole DINO training step on a small random ViT, computed
by PyTorch, for tests/test_dino.c (test_golden_step) to match within 1e-4 absolute / 1e-3 relative.

The step, as facebookresearch/dino's main_dino.py describes it (written here from that description):
  - student = ViT backbone (the class token after the final norm) + DINO head; teacher the same shape,
    here a copy of the student moved a little (as after some steps) so that the two differ;
  - the teacher embeds the 2 global crops (16 px, the positions' native grid), the student the global
    crops and the local crops (8 px: positions resampled bicubic by dvit's reference, imported from
    scripts/make_dino_ref.py), one backbone batch per resolution;
  - DINOLoss: teacher softmax((t - center) / t_temp), student log_softmax(s / 0.1), cross-entropy over
    every (teacher view i, student view v != i) pair, averaged; the center's EMA (0.9) after the loss;
  - backward; clip_gradients (each parameter's gradient to norm <= clip); in epoch 0 the last layer's
    gradient is dropped (freeze_last_layer = 1); AdamW with two groups (get_params_groups: no decay for
    names ending ".bias" and for 1-D tensors; the frozen gain is not trained), the decayed group at the
    schedule's weight decay; the teacher's EMA at the schedule's momentum.
Two one-step cases, prefix "e0." (epoch 0: last layer frozen) and "e1." (epoch 1), and "m.": four
steps in a row from the start (see multi_case: m.global.S, m.local.S, m.hyper.S, m.loss.S per step S,
then m.student_after.*, m.teacher_after.*, m.center_after, m.quiet.* marking the elements whose
gradient is 0 up to rounding at every step). Per case: student.* and
teacher.* (backbone and head weights before), global, local (crops, view-major), center, hyper (lr, wd,
momentum, teacher temp, clip, epoch, B, n_local), loss, grad_norm.* (each student gradient's norm
before clipping, 1 value), gradc.* (the gradients after clipping), student_after.*, teacher_after.*, center_after. Metadata: the sizes.

Needs Debian's python3-torch. Run from the repository root:  /usr/bin/python3 scripts/make_dino_step_ref.py
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_dino_ref import random_vit, vit_forward, write_safetensors  # noqa: E402  (dvit's reference ViT)

WIDTH, DEPTH, HEADS, PATCH, GLOBAL, LOCAL = 16, 2, 2, 4, 16, 8
HIDDEN, BOTTLENECK, K = 32, 16, 20
B, N_LOCAL = 3, 2
M = GLOBAL // PATCH


def random_head(gen):
    w = {}
    dims = (WIDTH, HIDDEN, HIDDEN, BOTTLENECK)
    for i in range(3):
        w["head.mlp.%d.weight" % (2 * i)] = torch.randn(dims[i + 1], dims[i], generator=gen) / math.sqrt(dims[i])
        w["head.mlp.%d.bias" % (2 * i)] = torch.randn(dims[i + 1], generator=gen) * 0.1
    w["head.last_layer.weight_g"] = torch.ones(K, 1)
    w["head.last_layer.weight_v"] = torch.randn(K, BOTTLENECK, generator=gen) / math.sqrt(BOTTLENECK)
    return w


def head_forward(w, x):
    h = F.gelu(F.linear(x, w["head.mlp.0.weight"], w["head.mlp.0.bias"]))
    h = F.gelu(F.linear(h, w["head.mlp.2.weight"], w["head.mlp.2.bias"]))
    h = F.normalize(F.linear(h, w["head.mlp.4.weight"], w["head.mlp.4.bias"]), dim=-1, p=2)
    v = w["head.last_layer.weight_v"]
    return h @ (w["head.last_layer.weight_g"] * v / v.norm(dim=1, keepdim=True)).t()


def net_forward(w, crops):
    tok, _ = vit_forward(w, crops, DEPTH, HEADS, PATCH, M, False)
    return head_forward(w, tok[:, 0])


def dino_loss(s_out, t_out, center, n_views, t_temp, s_temp=0.1):
    q = F.softmax((t_out - center) / t_temp, dim=-1).chunk(2)
    lp = F.log_softmax(s_out / s_temp, dim=-1).chunk(n_views)
    total, pairs = 0, 0
    for i, qi in enumerate(q):
        for v, lv in enumerate(lp):
            if v != i:
                total = total + (-(qi * lv).sum(dim=-1)).mean()
                pairs += 1
    return total / pairs


def case(out, prefix, gen, epoch):
    w = random_vit(gen, WIDTH, DEPTH, PATCH, M, False)
    w.update(random_head(gen))
    student = {k: v.clone().requires_grad_(not k.endswith("weight_g")) for k, v in w.items()}
    teacher = {k: (v + (0 if k.endswith("weight_g") else 0.02 * torch.randn(v.shape, generator=gen))) for k, v in w.items()}
    glob = torch.randn(2 * B, 3, GLOBAL, GLOBAL, generator=gen)
    loc = torch.randn(N_LOCAL * B, 3, LOCAL, LOCAL, generator=gen)
    center = torch.randn(1, K, generator=gen) * 0.1
    lr, wd, mom, t_temp, clip = 2e-3, 0.05, 0.9971, 0.045, 0.5
    for k, v in student.items():
        out[prefix + "student." + k] = v.detach().clone()
    for k, v in teacher.items():
        out[prefix + "teacher." + k] = v.clone()
    out[prefix + "global"], out[prefix + "local"], out[prefix + "center"] = glob, loc, center
    out[prefix + "hyper"] = torch.tensor([lr, wd, mom, t_temp, clip, epoch, B, N_LOCAL])

    trained = {k: v for k, v in student.items() if v.requires_grad}
    decay = [v for k, v in trained.items() if not (k.endswith(".bias") or v.dim() == 1)]
    plain = [v for k, v in trained.items() if k.endswith(".bias") or v.dim() == 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": plain, "weight_decay": 0.0}], lr=lr)

    with torch.no_grad():
        t_out = net_forward(teacher, glob)
    s_out = torch.cat((net_forward(student, glob), net_forward(student, loc)))
    loss = dino_loss(s_out, t_out, center, 2 + N_LOCAL, t_temp)
    center_new = center * 0.9 + t_out.mean(dim=0, keepdim=True) * 0.1
    opt.zero_grad()
    loss.backward()
    for k, v in trained.items():
        norm = v.grad.norm(2)
        out[prefix + "grad_norm." + k] = norm.reshape(1)
        if clip / (norm + 1e-6) < 1:
            v.grad.mul_(clip / (norm + 1e-6))
        out[prefix + "gradc." + k] = v.grad.clone()
    if epoch < 1:
        for k, v in trained.items():
            if "last_layer" in k:
                v.grad = None
    opt.step()
    with torch.no_grad():
        for k in teacher:
            teacher[k] = teacher[k] * mom + (1 - mom) * student[k].detach()
    out[prefix + "loss"] = loss.detach().reshape(1)
    out[prefix + "center_after"] = center_new
    for k, v in student.items():
        out[prefix + "student_after." + k] = v.detach().clone()
    for k, v in teacher.items():
        out[prefix + "teacher_after." + k] = v.clone()
    print("%s loss %.6f" % (prefix, loss.item()))


def multi_case(out, gen, steps=4):
    """Several steps in a row from a fresh start, as training runs them: the teacher starts as the
    student's copy, the center at 0, one AdamW whose state carries over; the last layer frozen in the
    first two steps (epoch 0) and trained after (so its own step count starts later); new crops and
    new schedule values at every step. What one step cannot show: the moments and bias corrections
    of later steps, the center and teacher EMAs compounding, the frozen layer's late start."""
    p = "m."
    w = random_vit(gen, WIDTH, DEPTH, PATCH, M, False)
    w.update(random_head(gen))
    student = {k: v.clone().requires_grad_(not k.endswith("weight_g")) for k, v in w.items()}
    teacher = {k: v.clone() for k, v in w.items()}
    for k, v in student.items():
        out[p + "student." + k] = v.detach().clone()
    trained = {k: v for k, v in student.items() if v.requires_grad}
    decay = [v for k, v in trained.items() if not (k.endswith(".bias") or v.dim() == 1)]
    plain = [v for k, v in trained.items() if k.endswith(".bias") or v.dim() == 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.0}, {"params": plain, "weight_decay": 0.0}], lr=0.0)
    center = torch.zeros(1, K)
    clip = 0.5
    quiet = {k: torch.ones_like(v, dtype=torch.bool) for k, v in trained.items()}  # |grad| < 1e-6 at every step
    for s in range(steps):
        lr, wd, mom, t_temp = 2e-3 * (1 - 0.2 * s), 0.04 + 0.05 * s, 0.9 + 0.02 * s, 0.04 + 0.005 * s
        frozen = s < 2
        glob = torch.randn(2 * B, 3, GLOBAL, GLOBAL, generator=gen)
        loc = torch.randn(N_LOCAL * B, 3, LOCAL, LOCAL, generator=gen)
        out[p + "global.%d" % s], out[p + "local.%d" % s] = glob, loc
        out[p + "hyper.%d" % s] = torch.tensor([lr, wd, mom, t_temp, clip, 0 if frozen else 1, B, N_LOCAL])
        for g in opt.param_groups:
            g["lr"] = lr
        opt.param_groups[0]["weight_decay"] = wd
        with torch.no_grad():
            t_out = net_forward(teacher, glob)
        s_out = torch.cat((net_forward(student, glob), net_forward(student, loc)))
        loss = dino_loss(s_out, t_out, center, 2 + N_LOCAL, t_temp)
        center = center * 0.9 + t_out.mean(dim=0, keepdim=True) * 0.1
        opt.zero_grad()
        loss.backward()
        for k, v in trained.items():
            norm = v.grad.norm(2)
            if clip / (norm + 1e-6) < 1:
                v.grad.mul_(clip / (norm + 1e-6))
            if not (frozen and "last_layer" in k):
                quiet[k] &= v.grad.abs() < 1e-6
        if frozen:
            for k, v in trained.items():
                if "last_layer" in k:
                    v.grad = None
        opt.step()
        with torch.no_grad():
            for k in teacher:
                teacher[k] = teacher[k] * mom + (1 - mom) * student[k].detach()
        out[p + "loss.%d" % s] = loss.detach().reshape(1)
        print("%s step %d loss %.6f" % (p, s, loss.item()))
    out[p + "steps"] = torch.tensor([float(steps)])
    out[p + "center_after"] = center
    for k, v in student.items():
        out[p + "student_after." + k] = v.detach().clone()
        if k in quiet and quiet[k].any():
            out[p + "quiet." + k] = quiet[k].to(torch.float64)
    for k, v in teacher.items():
        out[p + "teacher_after." + k] = v.clone()


def main():
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(1313)
    out = {}
    case(out, "e0.", gen, 0)
    case(out, "e1.", gen, 1)
    multi_case(out, gen)
    meta = {"width": str(WIDTH), "depth": str(DEPTH), "heads": str(HEADS), "patch": str(PATCH), "global": str(GLOBAL),
            "local": str(LOCAL), "hidden": str(HIDDEN), "bottleneck": str(BOTTLENECK), "out": str(K), "torch": torch.__version__}
    path = "tests/ref/dino_step.safetensors"
    write_safetensors(path, out, meta)
    print("%s: %d tensors, %d bytes" % (path, len(out), os.path.getsize(path)))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""A small DINO trainer in plain PyTorch for vit-tiny on MNIST: the diagnosis companion of
`embr train --objective dino` (issue 13). It trains the same network (ViT: width 192, 6 blocks, 3
heads, patch 4, 28 px; DINO head: hidden, bottleneck 256, K, weight-normalised last layer with its
gain fixed at 1) with the same method and hyper-parameter names as embr (teacher = EMA copy, center
EMA 0.9, student temperature 0.1, per-parameter clipping, AdamW without decay on biases and 1-D
tensors, per-step cosine schedules of lr / weight decay / momentum, teacher temperature warm-up per
epoch, last layer frozen in the first epochs), on the images 0..N-1 of each digit of MNIST t10k, and
prints the teacher's entropy as it goes and, at the end, the k-NN top-1 of the issue's protocol
(memory: images 0..799 of each digit, queries: the rest; k 20, T 0.07, cosine, exp(sim / T) votes)
for the untrained and the trained teacher backbone. The augmentation is torchvision's DINO pipeline
scaled to 28 px (embr's multicrop reproduces it), or a lighter one (--aug light: no blur, no
solarisation) to see what the 224-px blur does to 28-px digits.

It is written from the DINO paper's description, not from its code; it is a diagnosis tool, not a
test reference. Run from the repository root, e.g.
  /usr/bin/python3 scripts/dino_torch_mnist.py --per-class 0:200 --epochs 2 --lr 1.6e-2 --batch 16
"""
import argparse
import gzip
import math
import os
import random
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image, ImageFilter, ImageOps
import torchvision.transforms as T

MEAN, STD = 0.1307, 0.3081


def read_idx(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    nd = magic & 0xFF
    dims = struct.unpack(">" + "I" * nd, data[4:4 + 4 * nd])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def load_mnist(d):
    def pick(stem):
        for ext in ("", ".gz"):
            if os.path.exists(os.path.join(d, stem + ext)):
                return os.path.join(d, stem + ext)
        sys.exit("no %s in %s" % (stem, d))
    return read_idx(pick("t10k-images-idx3-ubyte")), read_idx(pick("t10k-labels-idx1-ubyte"))


def per_class(labels, a, b):
    out, seen = [], {}
    for i, l in enumerate(labels):
        k = seen.get(int(l), 0)
        if a <= k < b:
            out.append(i)
        seen[int(l)] = k + 1
    return out


# ---- the network -----------------------------------------------------------------------------------

class Block(nn.Module):
    def __init__(self, d, heads, drop_path):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d, eps=1e-6), nn.LayerNorm(d, eps=1e-6)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.heads, self.dp = heads, drop_path

    def drop(self, x):
        if not self.training or self.dp == 0:
            return x
        keep = (torch.rand(x.shape[0], 1, 1) >= self.dp).to(x.dtype)
        return x * keep / (1 - self.dp)

    def forward(self, x):
        B, N, D = x.shape
        h = self.heads
        qkv = self.qkv(self.norm1(x)).reshape(B, N, 3, h, D // h).permute(2, 0, 3, 1, 4)
        a = ((qkv[0] @ qkv[1].transpose(-2, -1)) * (D // h) ** -0.5).softmax(-1)
        x = x + self.drop(self.proj((a @ qkv[2]).transpose(1, 2).reshape(B, N, D)))
        return x + self.drop(self.fc2(F.gelu(self.fc1(self.norm2(x)))))


class ViT(nn.Module):
    def __init__(self, d=192, depth=6, heads=3, patch=4, size=28, drop_path=0.0):
        super().__init__()
        self.patch, self.M = patch, size // patch
        self.proj = nn.Conv2d(1, d, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.zeros(1, 1 + self.M * self.M, d))
        self.blocks = nn.ModuleList([Block(d, heads, drop_path * i / max(depth - 1, 1)) for i in range(depth)])
        self.norm = nn.LayerNorm(d, eps=1e-6)
        nn.init.trunc_normal_(self.cls, std=0.02)
        nn.init.trunc_normal_(self.pos, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def positions(self, g):
        if g == self.M:
            return self.pos
        d = self.pos.shape[-1]
        grid = self.pos[:, 1:].reshape(1, self.M, self.M, d).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, scale_factor=((g + 0.1) / self.M, (g + 0.1) / self.M), mode="bicubic",
                             align_corners=False)
        return torch.cat((self.pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, g * g, d)), dim=1)

    def forward(self, x):
        t = self.proj(x).flatten(2).transpose(1, 2)
        t = torch.cat((self.cls.expand(t.shape[0], -1, -1), t), dim=1) + self.positions(x.shape[-1] // self.patch)
        for b in self.blocks:
            t = b(t)
        return self.norm(t)[:, 0]


class Head(nn.Module):
    def __init__(self, d, hidden, bottleneck, K):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, bottleneck))
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        self.v = nn.Parameter(torch.empty(K, bottleneck).uniform_(-bottleneck ** -0.5, bottleneck ** -0.5))

    def forward(self, x):
        return F.normalize(self.mlp(x), dim=-1) @ F.normalize(self.v, dim=1).t()


class Net(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.backbone = ViT(drop_path=a.drop_path)
        self.head = Head(192, a.hidden, 256, a.out)

    def forward(self, crops):  # crops: list of batches, grouped by resolution as MultiCropWrapper
        return torch.cat([self.head(self.backbone(c)) for c in crops])


# ---- augmentation ----------------------------------------------------------------------------------

class Blur:
    def __init__(self, p):
        self.p = p

    def __call__(self, im):
        return im.filter(ImageFilter.GaussianBlur(random.uniform(0.1, 2.0))) if random.random() < self.p else im


class Solarize:
    def __init__(self, p):
        self.p = p

    def __call__(self, im):
        return ImageOps.solarize(im) if random.random() < self.p else im


def views(a):
    norm = T.Compose([T.ToTensor(), T.Normalize((MEAN,), (STD,))])
    jit = [T.RandomHorizontalFlip()] if a.flip else []
    jit += [T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8)]
    light = a.aug == "light"
    g1 = T.Compose([T.RandomResizedCrop(28, scale=(a.global_min, 1.0), interpolation=T.InterpolationMode.BICUBIC)] + jit +
                   ([] if light else [Blur(1.0)]) + [norm])
    g2 = T.Compose([T.RandomResizedCrop(28, scale=(a.global_min, 1.0), interpolation=T.InterpolationMode.BICUBIC)] + jit +
                   ([] if light else [Blur(0.1), Solarize(0.2)]) + [norm])
    lc = T.Compose([T.RandomResizedCrop(12, scale=(a.local_min, a.global_min), interpolation=T.InterpolationMode.BICUBIC)] +
                   jit + ([] if light else [Blur(0.5)]) + [norm])
    return g1, g2, lc


# ---- schedules, k-NN -------------------------------------------------------------------------------

def cosine(base, final, it, total, warmup=0):
    if it < warmup:
        return base * it / warmup
    t = (it - warmup) / max(total - warmup, 1)
    return final + 0.5 * (base - final) * (1 + math.cos(math.pi * min(t, 1.0)))


def eval_inputs(imgs):
    """embr embed's preprocessing at 28 px: Resize(32) bicubic, CenterCrop(28), normalised."""
    tf = T.Compose([T.Resize(32, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(28), T.ToTensor(),
                    T.Normalize((MEAN,), (STD,))])
    return torch.stack([tf(Image.fromarray(im)) for im in imgs])


def embed(backbone, x):
    was = backbone.training
    backbone.eval()
    with torch.no_grad():
        out = torch.cat([F.normalize(backbone(x[s:s + 1000]), dim=1) for s in range(0, len(x), 1000)])
    backbone.train(was)
    return out


def knn(backbone, x, labels, mem, qry, k=20, temp=0.07):
    idx_all = mem + qry
    feat = embed(backbone, x[idx_all])
    fm, fq = feat[:len(mem)], feat[len(mem):]
    lm, lq = torch.as_tensor(labels[mem]).long(), torch.as_tensor(labels[qry]).long()
    sim, idx = (fq @ fm.t()).topk(k, dim=1)
    votes = torch.zeros(len(qry), 10).scatter_add_(1, lm[idx], (sim / temp).exp())
    return (votes.argmax(1) == lq).float().mean().item()


# ---- training ----------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mnist", default="../shared/data/mnist")
    ap.add_argument("--per-class", default="0:800")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--local-crops", type=int, default=4)
    ap.add_argument("--out", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--lr", type=float, default=2e-3, help="per 256 images")
    ap.add_argument("--min-lr", type=float, default=1e-6)
    ap.add_argument("--warmup", type=float, default=0, help="epochs")
    ap.add_argument("--wd", type=float, default=0.04)
    ap.add_argument("--wd-end", type=float, default=0.4)
    ap.add_argument("--teacher-temp", type=float, default=0.04)
    ap.add_argument("--warmup-teacher-temp", type=float, default=0.04)
    ap.add_argument("--teacher-temp-warmup", type=int, default=0)
    ap.add_argument("--momentum", type=float, default=0.99)
    ap.add_argument("--freeze-last-layer", type=int, default=0)
    ap.add_argument("--drop-path", type=float, default=0.0)
    ap.add_argument("--clip", type=float, default=3.0)
    ap.add_argument("--aug", choices=("dino", "light"), default="dino")
    ap.add_argument("--flip", type=int, default=1)
    ap.add_argument("--global-min", type=float, default=0.4)
    ap.add_argument("--local-min", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--no-knn", action="store_true", help="no k-NN at all (the entropy trajectory only)")
    ap.add_argument("--quick-knn", action="store_true",
                    help="the k-NN before and after on memory 0:200 / queries 800:900 of each digit only (faster)")
    ap.add_argument("--knn-every", type=int, default=0, help="steps between k-NN checks (0: only at the end)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    imgs, labels = load_mnist(a.mnist)
    lo, hi = a.per_class.split(":")
    train = per_class(labels, int(lo), int(hi))
    mem, qry = per_class(labels, 0, 800), per_class(labels, 800, 10 ** 9)
    qmem, qqry = per_class(labels, 0, 200), per_class(labels, 800, 900)  # the quick checks during training
    if a.quick_knn:
        mem, qry = qmem, qqry
    x_eval = None if a.no_knn else eval_inputs(imgs)

    student, teacher = Net(a), Net(a)
    teacher.load_state_dict(student.state_dict())
    for p in teacher.parameters():
        p.requires_grad = False
    base = None if a.no_knn else knn(teacher.backbone, x_eval, labels, mem, qry)
    if base is not None:
        print("untrained k-NN top-1 %.4f, quick %.4f" % (base, knn(teacher.backbone, x_eval, labels, qmem, qqry)), flush=True)

    named = list(student.named_parameters())
    decay = [p for n, p in named if not (n.endswith(".bias") or p.dim() == 1)]
    plain = [p for n, p in named if n.endswith(".bias") or p.dim() == 1]
    opt = torch.optim.AdamW([{"params": decay}, {"params": plain, "weight_decay": 0.0}], lr=0)
    g1, g2, lc = views(a)
    center = torch.zeros(1, a.out)
    per = len(train) // a.batch
    total, warm = per * a.epochs, int(a.warmup * per)
    lr0 = a.lr * a.batch / 256
    step, t0 = 0, time.time()
    for ep in range(a.epochs):
        t_temp = a.teacher_temp if ep >= a.teacher_temp_warmup else (
            a.warmup_teacher_temp + (a.teacher_temp - a.warmup_teacher_temp) * ep / max(a.teacher_temp_warmup - 1, 1))
        order = torch.randperm(len(train)).tolist()
        student.train()
        teacher.eval()
        for s in range(per):
            ids = [train[j] for j in order[s * a.batch:(s + 1) * a.batch]]
            pil = [Image.fromarray(imgs[i]) for i in ids]
            glob = torch.cat([torch.stack([g1(p) for p in pil]), torch.stack([g2(p) for p in pil])])
            loc = torch.cat([torch.stack([lc(p) for p in pil]) for _ in range(a.local_crops)]) if a.local_crops else None
            lr = cosine(lr0, a.min_lr, step, total, warm)
            wd = cosine(a.wd, a.wd_end, step, total)
            mom = cosine(a.momentum, 1.0, step, total)
            opt.param_groups[0]["lr"] = opt.param_groups[1]["lr"] = lr
            opt.param_groups[0]["weight_decay"] = wd
            with torch.no_grad():
                t_out = teacher([glob])
            s_out = student([glob] + ([loc] if loc is not None else []))
            q = F.softmax((t_out - center) / t_temp, dim=-1).chunk(2)
            lp = F.log_softmax(s_out / 0.1, dim=-1).chunk(2 + a.local_crops)
            loss, pairs = 0, 0
            for i, qi in enumerate(q):
                for v, lv in enumerate(lp):
                    if v != i:
                        loss = loss + (-(qi * lv).sum(-1)).mean()
                        pairs += 1
            loss = loss / pairs
            qa = torch.cat(q)
            ent = -(qa * qa.clamp_min(1e-30).log()).sum(-1).mean().item()
            opt.zero_grad()
            loss.backward()
            for p in student.parameters():
                n = p.grad.norm()
                c = a.clip / (n + 1e-6)
                if c < 1:
                    p.grad.mul_(c)
            if ep < a.freeze_last_layer:
                student.head.v.grad = None
            opt.step()
            with torch.no_grad():
                center = center * 0.9 + t_out.mean(0, keepdim=True) * 0.1
                for pt, ps in zip(teacher.parameters(), student.parameters()):
                    pt.mul_(mom).add_(ps.detach(), alpha=1 - mom)
            step += 1
            if step % a.log_every == 0 or step == total:
                print("epoch %d step %d/%d loss %.4f H(teacher) %.3f / ln K %.3f lr %.2e  %.0f s" %
                      (ep + 1, step, total, loss.item(), ent, math.log(a.out), lr, time.time() - t0), flush=True)
            if a.knn_every and step % a.knn_every == 0 and step < total:
                print("  quick k-NN top-1 (memory 0:200, queries 800:900) at step %d: %.4f" % (step, knn(teacher.backbone, x_eval, labels, qmem, qqry)),
                      flush=True)
    if a.no_knn:
        print("training %.0f s" % (time.time() - t0))
        return
    acc = knn(teacher.backbone, x_eval, labels, mem, qry)
    print("trained k-NN top-1 %.4f (untrained %.4f, %+.1f points), training %.0f s" %
          (acc, base, 100 * (acc - base), time.time() - t0))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Unsupervised localisation composites for DINO (issue 13): emoji pasted on textured backgrounds.

  make   writes N composites: each an emoji of one split (emoji.jsonl records of --split, default
         "test", the held-out one; "train" for the composites a model trains on)
         scaled to a random fraction of the side and pasted with its alpha at a random position on a
         generated, seeded background (smooth colour noise, stripes at a random angle, or checkers, in
         random colours). Per composite: images/NNNN.png (RGB), masks/NNNN.png (the ground truth:
         255 where the pasted alpha is >= 128, else 0), and a line of composites.tsv (name, emoji
         file, left, top, width, height, background). images.txt lists the images (an embr list
         file). Composite i depends only on (--seed, i): a larger N keeps the first ones. The whole
         folder is written under a temporary name and renamed, so it is complete or absent.
  score  the IoU of predicted masks (PRED/NNNN.png, e.g. `embr dino attention`'s 60 %-mass masks;
         any size, resized nearest-neighbour to the truth's, >= 128 is inside) with the truth, beside
         the baseline the issue names: a centred box of the same area as the predicted mask. Also
         the centred box of the truth's area. Mean IoUs, and the share of composites where the
         prediction beats its box.
  selftest  hand-checked IoU and box cases and a make on generated stand-in emoji (no data needed).

IoU(a, b) = |a and b| / |a or b| over pixels (1 when both are empty). The centred box of area A in an
H x W image: a square of side round(sqrt(A)) centred (top = (H - s) // 2), clipped to the image,
and when clipped, the other side lengthened to keep the area.

Usage:
  /usr/bin/python3 scripts/loc_composites.py make [--emoji ../shared/data/emoji] [--out loc] [--n 200] [--size 96] [--seed 1]
  /usr/bin/python3 scripts/loc_composites.py score --truth loc [--pred masks/] [--json]
  /usr/bin/python3 scripts/loc_composites.py selftest
Without the emoji data (the default ../shared/data/emoji beside the repository) `make` says
"skipped: ..." and exits 0; an --emoji folder given and missing is an error (exit 1).
Needs Debian's python3-numpy and python3-pil.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_EMOJI = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "emoji"))
BACKGROUNDS = ("noise", "stripes", "checkers")


def fail(msg):
    sys.stderr.write("loc_composites.py: %s\n" % msg)
    sys.exit(1)


# ---- geometry ----------------------------------------------------------------------------------------

def iou(a, b):
    """IoU of two boolean masks of one shape; 1.0 when both are empty."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum()) / float(union)


def centred_box(h, w, area):
    """Boolean h x w mask: the centred box of (about) `area` pixels, square unless clipped."""
    area = max(0, min(int(area), h * w))
    m = np.zeros((h, w), bool)
    if area == 0:
        return m
    s = int(round(np.sqrt(area)))
    bh, bw = min(s, h), min(s, w)
    if bh < s:  # clipped: keep the area with the other side
        bw = min(w, int(round(area / bh)))
    elif bw < s:
        bh = min(h, int(round(area / bw)))
    top, left = (h - bh) // 2, (w - bw) // 2
    m[top:top + bh, left:left + bw] = True
    return m


# ---- backgrounds -------------------------------------------------------------------------------------

def colour(rng):
    return rng.integers(0, 256, 3).astype(np.float64)


def background(rng, size):
    kind = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    if kind == "noise":  # a coarse random colour grid, bicubic-upscaled: smooth blotches
        cells = int(rng.integers(3, 9))
        grid = rng.integers(0, 256, (cells, cells, 3)).astype(np.uint8)
        img = np.asarray(Image.fromarray(grid, "RGB").resize((size, size), Image.BICUBIC), np.float64)
    else:
        c0, c1 = colour(rng), colour(rng)
        if kind == "stripes":
            angle, period = rng.uniform(0, np.pi), rng.uniform(5, 20)
            t = (x * np.cos(angle) + y * np.sin(angle)) / period
            on = (np.floor(t) % 2 == 1)
        else:
            cell = int(rng.integers(4, 17))
            oy, ox = rng.integers(0, cell, 2)
            on = ((np.floor((y + oy) / cell) + np.floor((x + ox) / cell)) % 2 == 1)
        img = np.where(on[..., None], c1, c0)
    img = img + rng.normal(0, 6, img.shape)  # a little grain: no perfectly flat regions
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), kind


# ---- make ----------------------------------------------------------------------------------------------

def read_emoji(folder, split):
    path = os.path.join(folder, "emoji.jsonl")
    files = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as e:
                fail("%s: line %d: not JSON (%s)" % (path, lineno, e))
            if not isinstance(rec, dict) or not isinstance(rec.get("file"), str):
                fail("%s: line %d: expected an object with a file" % (path, lineno))
            if rec.get("split") == split:
                p = rec["file"]
                if p.startswith("/") or ".." in p.split("/"):
                    fail("%s: line %d: file %r must be a plain relative path" % (path, lineno, p))
                files.append(p)
    if not files:
        fail("%s: no records with split %r" % (path, split))
    return files


def load_rgba(folder, rel):
    path = os.path.join(folder, rel)
    try:
        with Image.open(path) as im:
            return im.convert("RGBA")
    except (OSError, ValueError) as e:
        fail("%s: cannot read (%s)" % (path, e))


def composite(rng, folder, files, size, scale, pool=None):
    """One composite: (RGB uint8, bool mask, record); its background drawn from `pool` when given."""
    bg, kind = background(rng, size) if pool is None else pool[rng.integers(len(pool))]
    rel = files[rng.integers(len(files))]
    em = load_rgba(folder, rel)
    side = max(4, int(round(size * rng.uniform(scale[0], scale[1]))))
    w = max(1, int(round(side * em.width / max(em.width, em.height))))
    h = max(1, int(round(side * em.height / max(em.width, em.height))))
    em = em.resize((w, h), Image.BICUBIC)
    left, top = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
    out = Image.fromarray(bg, "RGB")
    out.paste(em.convert("RGB"), (left, top), em.getchannel("A"))
    mask = np.zeros((size, size), bool)
    mask[top:top + h, left:left + w] = np.asarray(em.getchannel("A")) >= 128
    return np.asarray(out), mask, (rel, left, top, w, h, kind)


def make(args):
    folder = args.emoji or DEFAULT_EMOJI
    if not os.path.isfile(os.path.join(folder, "emoji.jsonl")):
        if args.emoji is None:
            sys.stderr.write("skipped: no %s (the emoji data set, ../shared/data)\n" % folder)
            return 0
        fail("%s: no emoji.jsonl (give the emoji folder holding img/ and emoji.jsonl)" % folder)
    if args.n < 1 or args.size < 16 or not (0 < args.scale[0] <= args.scale[1] <= 1):
        fail("need --n >= 1, --size >= 16 and 0 < scale lo <= hi <= 1")
    out = os.path.abspath(args.out)
    if os.path.exists(out):
        fail("%s exists: give a new folder (the composites are written whole)" % out)
    files = read_emoji(folder, args.split)
    backgrounds = getattr(args, "backgrounds", 0)
    if backgrounds < 0:
        fail("need --backgrounds >= 0")
    # A pool of backgrounds shared by the composites (its own seed stream, [seed, 0, j]).
    pool = [background(np.random.default_rng([args.seed, 0, j]), args.size) for j in range(backgrounds)] or None
    tmp = tempfile.mkdtemp(prefix=os.path.basename(out) + ".tmp.", dir=os.path.dirname(out) or ".")
    try:
        os.mkdir(os.path.join(tmp, "images"))
        os.mkdir(os.path.join(tmp, "masks"))
        rows, names = [], []
        for i in range(args.n):
            rng = np.random.default_rng([args.seed, i])
            img, mask, rec = composite(rng, folder, files, args.size, args.scale, pool)
            name = "%04d.png" % i
            Image.fromarray(img, "RGB").save(os.path.join(tmp, "images", name))
            Image.fromarray((mask * 255).astype(np.uint8), "L").save(os.path.join(tmp, "masks", name))
            rows.append("\t".join([name, rec[0]] + [str(v) for v in rec[1:]]))
            names.append("images/" + name)
        with open(os.path.join(tmp, "composites.tsv"), "w") as f:
            f.write("name\temoji\tleft\ttop\twidth\theight\tbackground\n" + "\n".join(rows) + "\n")
        with open(os.path.join(tmp, "images.txt"), "w") as f:
            f.write("\n".join(names) + "\n")
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    what = "held-out emoji, " if args.split == "test" else ""
    print("%s: %d composites of %dx%d (%ssplit %s, seed %d)" % (out, args.n, args.size, args.size, what, args.split, args.seed))
    return 0


# ---- score ---------------------------------------------------------------------------------------------

def read_mask(path, shape=None):
    try:
        with Image.open(path) as im:
            im = im.convert("L")
            if shape is not None and im.size != (shape[1], shape[0]):
                im = im.resize((shape[1], shape[0]), Image.NEAREST)
            return np.asarray(im) >= 128
    except (OSError, ValueError) as e:
        fail("%s: cannot read a mask (%s)" % (path, e))


def score_result(truth_dir, pred_dir):
    """{composites, box_truth_area, and with pred_dir: pred, box_pred_area, wins, object_kept,
    background_kept}: the last two the mean share of the object's and of the background's pixels
    inside the predicted mask (a mask that ignores the object keeps both alike)."""
    tsv = os.path.join(truth_dir, "composites.tsv")
    if not os.path.isfile(tsv):
        fail("%s: not found (--truth is a folder written by `make`)" % tsv)
    with open(tsv) as f:
        names = [line.split("\t")[0] for line in f.read().splitlines()[1:] if line]
    res = {"composites": len(names), "box_truth_area": 0.0}
    pred_iou, box_iou, wins, obj, bg = [], [], 0, [], []
    for name in names:
        truth = read_mask(os.path.join(truth_dir, "masks", name))
        h, w = truth.shape
        res["box_truth_area"] += iou(truth, centred_box(h, w, truth.sum()))
        if pred_dir:
            p = os.path.join(pred_dir, name)
            if not os.path.isfile(p):
                fail("%s: missing (one predicted mask per composite, same names)" % p)
            pred = read_mask(p, truth.shape)
            a, b = iou(truth, pred), iou(truth, centred_box(h, w, pred.sum()))
            pred_iou.append(a)
            box_iou.append(b)
            wins += a > b
            obj.append(pred[truth].mean() if truth.any() else 0.0)
            bg.append(pred[~truth].mean() if (~truth).any() else 0.0)
    res["box_truth_area"] /= max(1, len(names))
    if pred_dir:
        res.update(pred=float(np.mean(pred_iou)), box_pred_area=float(np.mean(box_iou)), wins=int(wins),
                   object_kept=float(np.mean(obj)), background_kept=float(np.mean(bg)))
    return res


def score(args):
    res = score_result(args.truth, args.pred)
    names = range(res["composites"])
    wins = res.get("wins", 0)
    if args.json:
        print(json.dumps(res))
    else:
        print("%d composites: centred box of the truth's area: mean IoU %.4f" % (res["composites"], res["box_truth_area"]))
        if args.pred:
            print("predicted masks: mean IoU %.4f; centred box of the same area: %.4f; prediction better on %d of %d"
                  % (res["pred"], res["box_pred_area"], wins, len(names)))
            print("share kept by the predicted masks: object pixels %.3f, background pixels %.3f"
                  % (res["object_kept"], res["background_kept"]))
    return 0


# ---- selftest ------------------------------------------------------------------------------------------

def selftest(_args):
    z = np.zeros((4, 4), bool)
    a = z.copy(); a[:, :2] = True                       # left half, 8 px
    b = z.copy(); b[:, 1:3] = True                      # middle, 8 px, 4 shared
    assert iou(a, a) == 1.0 and iou(a, ~a) == 0.0 and iou(z, z) == 1.0
    assert abs(iou(a, b) - 4 / 12) < 1e-12               # 4 shared of 12 covered
    box = centred_box(10, 10, 16)                        # 4 x 4 at (3, 3)
    assert box.sum() == 16 and box[3:7, 3:7].all()
    box = centred_box(4, 10, 36)                         # side 6 clipped to 4 rows -> 4 x 9 at left (10 - 9) // 2 = 0
    assert box.shape == (4, 10) and box.sum() == 36 and box[:, 0].all() and not box[:, 9].any()
    assert centred_box(5, 5, 0).sum() == 0 and centred_box(5, 5, 99).sum() == 25
    # make on generated stand-in emoji: a red disc and a blue square with transparent surroundings
    with tempfile.TemporaryDirectory() as d:
        em = os.path.join(d, "emoji")
        os.makedirs(os.path.join(em, "img"))
        yy, xx = np.mgrid[0:32, 0:32]
        disc = np.zeros((32, 32, 4), np.uint8); disc[..., 0] = 220
        disc[..., 3] = np.where((yy - 15.5) ** 2 + (xx - 15.5) ** 2 < 14 ** 2, 255, 0)
        sq = np.zeros((32, 32, 4), np.uint8); sq[..., 2] = 200; sq[6:26, 6:26, 3] = 255
        Image.fromarray(disc, "RGBA").save(os.path.join(em, "img", "disc.png"))
        Image.fromarray(sq, "RGBA").save(os.path.join(em, "img", "sq.png"))
        with open(os.path.join(em, "emoji.jsonl"), "w") as f:
            f.write(json.dumps({"file": "img/disc.png", "split": "test"}) + "\n")
            f.write(json.dumps({"file": "img/sq.png", "split": "test"}) + "\n")
            f.write(json.dumps({"file": "img/none.png", "split": "train"}) + "\n")
        ns = argparse.Namespace(emoji=em, n=12, size=48, seed=3, scale=(0.3, 0.7), split="test")
        for out in ("a", "b"):
            ns.out = os.path.join(d, out)
            make(ns)
        ns.n, ns.out = 5, os.path.join(d, "c")
        make(ns)
        for i in range(12):
            n = "%04d.png" % i
            ia, ib = (np.asarray(Image.open(os.path.join(d, o, "images", n))) for o in "ab")
            assert (ia == ib).all(), "same seed, same composite"
            if i < 5:
                assert (ia == np.asarray(Image.open(os.path.join(d, "c", "images", n)))).all(), "composite i depends on (seed, i)"
        rows = [l.split("\t") for l in open(os.path.join(d, "a", "composites.tsv")).read().splitlines()[1:]]
        for r in rows:
            m = read_mask(os.path.join(d, "a", "masks", r[0]))
            left, top, w, h = (int(v) for v in r[2:6])
            assert m.sum() > 0 and not m[:top].any() and not m[top + h:].any() and not m[:, :left].any() and not m[:, left + w:].any()
            img = np.asarray(Image.open(os.path.join(d, "a", "images", r[0]))).astype(int)
            want = 0 if r[1].endswith("disc.png") else 2  # the pasted emoji's colour channel dominates inside
            core = m.copy()  # the mask shrunk by a pixel: edge pixels are blended with the background
            core[1:] &= m[:-1]; core[:-1] &= m[1:]; core[:, 1:] &= m[:, :-1]; core[:, :-1] &= m[:, 1:]
            assert (img[core][:, want] > 150).mean() > 0.9, r
            if r[1].endswith("sq.png"):  # a square's mask fills its bounding box (bar soft corners)
                ys, xs = np.nonzero(m)
                assert m[ys.min():ys.max() + 1, xs.min():xs.max() + 1].mean() > 0.9
        assert len({r[6] for r in rows}) >= 2 and len({r[1] for r in rows}) == 2
        # score: the truth as the prediction is perfect and beats its box
        res = score_result(os.path.join(d, "a"), os.path.join(d, "a", "masks"))
        assert res["composites"] == 12 and res["pred"] == 1.0 and res["wins"] == 12 and res["box_pred_area"] < 0.9
        assert res["object_kept"] == 1.0 and res["background_kept"] == 0.0
        assert abs(res["box_pred_area"] - res["box_truth_area"]) < 1e-12  # the same area: the same box
        # --backgrounds 2: every composite's background, outside its emoji's box, is one of two
        ns.n, ns.out, ns.backgrounds = 10, os.path.join(d, "p"), 2
        make(ns)
        rows = [l.split("\t") for l in open(os.path.join(d, "p", "composites.tsv")).read().splitlines()[1:]]
        seen = []
        for r in rows:
            img = np.asarray(Image.open(os.path.join(d, "p", "images", r[0]))).astype(int)
            left, top, w, h = (int(v) for v in r[2:6])
            out = np.ones(img.shape[:2], bool); out[top:top + h, left:left + w] = False
            for k, (o, ref) in enumerate(seen):
                both = out & o
                if (img[both] == ref[both]).all():
                    break
            else:
                seen.append((out, img))
        assert len(seen) <= 2, "more than 2 backgrounds"
    print("selftest: all checks passed")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make", help="write composites")
    m.add_argument("--emoji", default=None, help="the emoji folder (img/, emoji.jsonl); default %s" % DEFAULT_EMOJI)
    m.add_argument("--out", default="loc_composites", help="a new folder to write (default %(default)s)")
    m.add_argument("--n", type=int, default=200)
    m.add_argument("--size", type=int, default=96, help="composite side in pixels (default %(default)s)")
    m.add_argument("--seed", type=int, default=1)
    m.add_argument("--backgrounds", type=int, default=0,
                   help="draw backgrounds from a pool of this many, shared by the composites (0: one each; default)")
    m.add_argument("--split", default="test", help="emoji.jsonl split to draw from (default %(default)s: held out)")
    m.add_argument("--scale", type=lambda s: tuple(float(v) for v in s.split(":")), default=(0.3, 0.7),
                   help="emoji side as a fraction of the composite side, LO:HI (default 0.3:0.7)")
    s = sub.add_parser("score", help="IoU of predicted masks against the truth and the centred-box baseline")
    s.add_argument("--truth", required=True, help="a folder written by make")
    s.add_argument("--pred", default=None, help="a folder of predicted masks named as the composites")
    s.add_argument("--json", action="store_true")
    sub.add_parser("selftest", help="hand-checked cases (no data needed)")
    args = ap.parse_args()
    return {"make": make, "score": score, "selftest": selftest}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())

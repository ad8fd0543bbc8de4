#!/usr/bin/python3
"""The peer of bench_multicrop: DINO's multi-crop augmentation with torchvision / Pillow, per image.

The pipeline is DataAugmentationDINO's as the paper's code describes it, assembled here from
torchvision transforms: per view RandomResizedCrop (global scale (0.4, 1), local (0.05, 0.4),
bicubic), RandomHorizontalFlip, RandomApply(ColorJitter(0.4, 0.4, 0.2, 0.1), p=0.8),
RandomGrayscale(0.2), a PIL GaussianBlur with radius uniform in (0.1, 2) (p 1.0 / 0.1 / 0.5),
solarisation on the second global view (p 0.2), ToTensor + Normalize (ImageNet). One torch thread.
Usage: torch_multicrop.py IMAGE GLOBAL_SIZE LOCAL_SIZE N_LOCAL IMAGES   -> one JSON line
"""
import json
import random
import sys
import time

import torch
from PIL import Image, ImageFilter, ImageOps
from torchvision import transforms as T


class Blur:
    def __init__(self, p):
        self.p = p

    def __call__(self, img):
        if random.random() > self.p:
            return img
        return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(0.1, 2.0)))


class Solarize:
    def __init__(self, p):
        self.p = p

    def __call__(self, img):
        return ImageOps.solarize(img) if random.random() < self.p else img


def views(gs, ls):
    colour = T.Compose([T.RandomHorizontalFlip(p=0.5),
                        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
                        T.RandomGrayscale(p=0.2)])
    norm = T.Compose([T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    bic = T.InterpolationMode.BICUBIC
    g1 = T.Compose([T.RandomResizedCrop(gs, scale=(0.4, 1.0), interpolation=bic), colour, Blur(1.0), norm])
    g2 = T.Compose([T.RandomResizedCrop(gs, scale=(0.4, 1.0), interpolation=bic), colour, Blur(0.1), Solarize(0.2), norm])
    loc = T.Compose([T.RandomResizedCrop(ls, scale=(0.05, 0.4), interpolation=bic), colour, Blur(0.5), norm])
    return g1, g2, loc


def main():
    if len(sys.argv) != 6:
        sys.exit("usage: torch_multicrop.py IMAGE GLOBAL_SIZE LOCAL_SIZE N_LOCAL IMAGES")
    path, gs, ls, nl, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(1)
    torch.manual_seed(1)
    random.seed(1)
    img = Image.open(path).convert("RGB")
    img.load()
    g1, g2, loc = views(gs, ls)
    t0 = time.perf_counter()
    for _ in range(n):
        crops = [g1(img), g2(img)] + [loc(img) for _ in range(nl)]
    ms = (time.perf_counter() - t0) * 1e3 / n
    assert len(crops) == 2 + nl
    print(json.dumps({"impl": "torchvision", "image": "%dx%d" % img.size, "views": "2x%d+%dx%d" % (gs, nl, ls),
                      "ms_per_image": round(ms, 3)}))


if __name__ == "__main__":
    main()

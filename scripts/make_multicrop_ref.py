#!/usr/bin/python3
"""Writes the multi-crop augmentation reference the C tests compare with (tests/ref/multicrop/).

Each case is one operation of DINO's DataAugmentationDINO with its parameters fixed, applied with
Debian's torchvision / Pillow functional forms to a small input image:

    crop_resize  torchvision.transforms.functional.resized_crop(img, top, left, h, w, [s, s], BICUBIC)
    hflip        F.hflip
    brightness   F.adjust_brightness (ImageEnhance.Brightness)
    contrast     F.adjust_contrast   (ImageEnhance.Contrast)
    saturation   F.adjust_saturation (ImageEnhance.Color)
    hue          F.adjust_hue        (8-bit HSV, hue shifted by uint8(hue * 255))
    grayscale    F.rgb_to_grayscale(img, num_output_channels=3) (identity on grey)
    blur         img.filter(ImageFilter.GaussianBlur(radius))   (DINO's utils.GaussianBlur)
    solarize     ImageOps.solarize(img, threshold)              (DINO's utils.Solarization)
    normalize    F.normalize(F.to_tensor(img), mean, std) of the top-left m x m square (the C side
                 takes it as a view with a crop of that size and no resize) -> float32 .npy (1, C*m*m)
    view         a whole view with every random choice fixed: resized_crop, flip, the four jitter
                 operations in a given order, grayscale, blur, solarize, normalize -> .npy

Factors are float32 values (the C side parses the same digits); outputs are PNG (8-bit results)
or .npy. cases.txt lists one case a line: op input output args..., read by tests/test_multicrop.c.

Usage: scripts/make_multicrop_ref.py [tests/ref/multicrop]   (Debian: python3-torchvision, python3-pil)
"""
import os
import sys

import numpy as np
import torchvision.transforms.functional as F
from PIL import Image, ImageFilter, ImageOps
from torchvision.transforms import InterpolationMode

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def f32(x):
    return float(np.float32(x))


def fmt(x):
    return "%.9g" % x if isinstance(x, float) else str(x)


def picture(w, h, seed):
    """Smooth gradients, a hard-edged block and noise (0..255): every level range gets used."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = 20 + 200 * x / max(w - 1, 1) + 60 * np.sin(y * 0.5 + seed)
    base[h // 4: h // 2, w // 3: 2 * w // 3] = 250 if seed % 2 else 5
    return np.clip(base + rng.randint(-25, 26, size=(h, w)), 0, 255).astype(np.uint8)


def inputs():
    rgb = np.stack([picture(37, 29, 1 + k) for k in range(3)], axis=-1)
    # a saturated patch and a grey patch: hue and saturation edge cases (s == 0, v == max)
    rgb[2:6, 2:8] = (255, 0, 30)
    rgb[20:24, 25:31] = (90, 90, 90)
    return {
        "rgb_37x29.png": Image.fromarray(rgb, "RGB"),
        "grey_23x31.png": Image.fromarray(picture(23, 31, 9), "L"),
        "rgb_64x48.png": Image.fromarray(np.stack([picture(64, 48, 11 + k) for k in range(3)], axis=-1), "RGB"),
        # uniformly random colours: every hue sector, saturation and value for the HSV round trip
        "colours_64x64.png": Image.fromarray(np.random.RandomState(5).randint(0, 256, (64, 64, 3)).astype(np.uint8), "RGB"),
    }


def jitter(img, op, f):
    return {"brightness": F.adjust_brightness, "contrast": F.adjust_contrast,
            "saturation": F.adjust_saturation, "hue": F.adjust_hue}[op](img, f)


def grayscale(img):
    return F.rgb_to_grayscale(img, num_output_channels=1 if img.mode == "L" else 3)


def to_npy(img):
    t = F.normalize(F.to_tensor(img), MEAN[:len(img.getbands())], STD[:len(img.getbands())])
    return t.numpy().astype(np.float32).reshape(1, -1)


def view(img, args):
    """args: top left h w size flip order(4 digits) b c s hue gray blur solarize."""
    top, left, h, w, size, flip, order, b, c, s, hue, gray, blur, sol = args
    img = F.resized_crop(img, top, left, h, w, [size, size], InterpolationMode.BICUBIC)
    if flip:
        img = F.hflip(img)
    if order != "-":
        for k in order:
            img = jitter(img, ["brightness", "contrast", "saturation", "hue"][int(k)], [b, c, s, hue][int(k)])
    if gray:
        img = grayscale(img)
    if blur > 0:
        img = img.filter(ImageFilter.GaussianBlur(radius=blur))
    if sol:
        img = ImageOps.solarize(img, 128)
    return img


def cases():
    out = []
    for src in ("rgb_37x29.png", "grey_23x31.png"):
        tag = src.split("_")[0]
        for (t, l, h, w, s) in [(0, 0, 29 if tag == "rgb" else 31, 37 if tag == "rgb" else 23, 16),
                                (3, 5, 20, 17, 12), (1, 2, 7, 9, 24), (4, 4, 15, 15, 15), (2, 1, 11, 13, 28)]:
            out.append(("crop_resize", src, [t, l, h, w, s]))
        out.append(("hflip", src, []))
        for f in (0.6, 0.83, 1.17, 1.4):
            out.append(("brightness", src, [f32(f)]))
            out.append(("contrast", src, [f32(f)]))
        for f in (0.8, 0.95, 1.2):
            out.append(("saturation", src, [f32(f)]))
        for f in (-0.1, -0.037, 0.0, 0.003, 0.061, 0.1, 0.5, -0.5):
            out.append(("hue", src, [f32(f)]))
        out.append(("grayscale", src, []))
        for r in (0.1, 0.35, 0.77, 1.0, 1.5, 2.0, 4.5):
            out.append(("blur", src, [f32(r)]))
        for th in (128, 0, 200):
            out.append(("solarize", src, [th]))
        out.append(("normalize", src, [min(Image.open(os.path.join(OUT, src)).size)]))
    for f in (-0.5, -0.29, -0.1, 0.0, 0.02, 0.1, 0.33):
        out.append(("hue", "colours_64x64.png", [f32(f)]))
    for f in (0.8, 1.2):
        out.append(("saturation", "colours_64x64.png", [f32(f)]))
    out.append(("grayscale", "colours_64x64.png", []))
    out.append(("blur", "colours_64x64.png", [f32(1.3)]))
    big = "rgb_64x48.png"
    out.append(("view", big, [5, 9, 30, 40, 28, 1, "2031", f32(1.3), f32(0.7), f32(1.1), f32(-0.06), 0, f32(1.2), 1]))
    out.append(("view", big, [0, 0, 48, 64, 12, 0, "3120", f32(0.65), f32(1.35), f32(0.85), f32(0.09), 1, f32(0.4), 0]))
    out.append(("view", big, [10, 3, 17, 21, 24, 1, "-", f32(1), f32(1), f32(1), f32(0), 0, f32(0), 1]))
    out.append(("view", "grey_23x31.png", [2, 3, 20, 15, 12, 1, "0123", f32(1.2), f32(0.75), f32(1.1), f32(0.05), 1, f32(0.9), 1]))
    return out


def run(op, img, args):
    if op == "crop_resize":
        t, l, h, w, s = args
        return F.resized_crop(img, t, l, h, w, [s, s], InterpolationMode.BICUBIC)
    if op == "hflip":
        return F.hflip(img)
    if op in ("brightness", "contrast", "saturation", "hue"):
        return jitter(img, op, args[0])
    if op == "grayscale":
        return grayscale(img)
    if op == "blur":
        return img.filter(ImageFilter.GaussianBlur(radius=args[0]))
    if op == "solarize":
        return ImageOps.solarize(img, args[0])
    if op == "view":
        return view(img, args)
    return img.crop((0, 0, args[0], args[0]))  # normalize: the top-left square


OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "ref", "multicrop")


def main():
    out = OUT
    os.makedirs(out, exist_ok=True)
    for name, im in inputs().items():
        im.save(os.path.join(out, name), optimize=True)
    lines = ["# op input output args... (scripts/make_multicrop_ref.py)"]
    for i, (op, src, args) in enumerate(cases()):
        with Image.open(os.path.join(out, src)) as im:
            im.load()
            res = run(op, im, args)
        if op in ("normalize", "view"):
            dst = f"{i:03d}_{op}.npy"
            np.save(os.path.join(out, dst), to_npy(res))
        else:
            dst = f"{i:03d}_{op}.png"
            res.save(os.path.join(out, dst), optimize=True)
        lines.append(" ".join([op, src, dst] + [fmt(a) for a in args]))
    with open(os.path.join(out, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{len(lines) - 1} cases in {out}")


if __name__ == "__main__":
    main()

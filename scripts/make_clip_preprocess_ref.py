#!/usr/bin/python3
"""Writes the CLIP preprocessing reference the C image tests compare with (tests/ref/clip/).

Each case is a small input image (odd sizes; RGB, grey, RGBA, grey + alpha, palette + tRNS) and the
float32 CHW tensor that CLIP's preprocessing gives for it, computed with Pillow and NumPy the way
torchvision does it on a PIL image:

    alpha composited on white (Image.paste with the alpha as mask; "ignore": convert("RGB"))
    Resize(short_side, interpolation=BICUBIC)   short side -> s, long -> int(s * long / short)
    CenterCrop((height, width))                 top = int(round((h - height) / 2.0)), same for left
    convert("RGB"), ToTensor (/ 255), Normalize(CLIP mean, CLIP std)

torchvision itself is not needed: its Resize on a PIL image is PIL's resize, and the size and crop
arithmetic is reproduced below from torchvision.transforms.functional. Each tensor is saved as a
(1, C*H*W) .npy. The case table is repeated in tests/test_image.c (test_clip_reference).

Usage: scripts/make_clip_preprocess_ref.py [tests/ref/clip]   (Debian: python3-pil, python3-numpy)
"""
import os
import sys

import numpy as np
from PIL import Image

MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def picture(w, h, seed):
    """Smooth gradients, a hard-edged block (bicubic overshoot) and a little noise: 0..255 floats."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = 40 + 150 * x / max(w - 1, 1) + 50 * np.sin(y * 0.7 + seed)
    base[h // 4: h // 2, w // 3: 2 * w // 3] = 250 if seed % 2 else 5
    return np.clip(base + rng.randint(-20, 21, size=(h, w)), 0, 255)


def rgb(w, h, seed):
    return np.stack([picture(w, h, seed + k) for k in range(3)], axis=-1).astype(np.uint8)


def disc_alpha(w, h):
    """An emoji-like mask: an opaque disc with a soft edge, transparent corners."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = np.hypot((x + 0.5 - w / 2) / (w / 2), (y + 0.5 - h / 2) / (h / 2))
    return np.clip((1.0 - r) * 6 * 255, 0, 255).astype(np.uint8)


def make_inputs():
    """name -> PIL image, as saved to PNG."""
    ims = {}
    ims["rgb_53x37.png"] = Image.fromarray(rgb(53, 37, 1), "RGB")
    ims["rgb_13x19.png"] = Image.fromarray(rgb(13, 19, 2), "RGB")
    ims["grey_41x29.png"] = Image.fromarray(picture(41, 29, 3).astype(np.uint8), "L")
    # Transparent pixels hold colour (not white, not black): compositing must change them.
    px = rgb(27, 35, 4)
    ims["rgba_27x35.png"] = Image.fromarray(np.dstack([px, disc_alpha(27, 35)]), "RGBA")
    ga = np.dstack([picture(31, 22, 5).astype(np.uint8), disc_alpha(31, 22)])
    ims["la_31x22.png"] = Image.fromarray(ga, "LA")
    pal = Image.fromarray(rgb(29, 41, 6), "RGB").quantize(colors=16, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    pal.info["transparency"] = bytes([0, 60, 128, 200] + [255] * 12)
    ims["pal_29x41.png"] = pal
    ims["rgb_45x61.png"] = Image.fromarray(rgb(45, 61, 7), "RGB")
    return ims


# (input, output .npy, height, width, short_side (0: max(height, width)), alpha: "white" or "ignore")
CASES = [
    ("rgb_53x37.png", "rgb_53x37.npy", 24, 24, 0, "white"),
    ("rgb_13x19.png", "rgb_13x19.npy", 24, 24, 0, "white"),
    ("grey_41x29.png", "grey_41x29.npy", 24, 24, 0, "white"),
    ("rgba_27x35.png", "rgba_27x35.npy", 24, 24, 0, "white"),
    ("rgba_27x35.png", "rgba_27x35_ignore.npy", 24, 24, 0, "ignore"),
    ("la_31x22.png", "la_31x22.npy", 24, 24, 0, "white"),
    ("pal_29x41.png", "pal_29x41.npy", 24, 24, 0, "white"),
    ("rgb_45x61.png", "rgb_45x61_20x28.npy", 20, 28, 30, "white"),
]


def flatten_alpha(im, alpha):
    """Pillow on an opened PNG: composite on white (paste with the alpha as mask) or drop alpha."""
    has_alpha = im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info)
    if alpha == "ignore" or not has_alpha:
        return im.convert("L" if im.mode in ("L", "LA") else "RGB")
    base = "L" if im.mode in ("L", "LA") else "RGB"
    mask = im.convert("LA" if base == "L" else "RGBA").getchannel("A")
    out = Image.new(base, im.size, 255 if base == "L" else (255, 255, 255))
    out.paste(im.convert(base), (0, 0), mask)
    return out


def short_side_size(w, h, s):
    """torchvision.transforms.functional._compute_resized_output_size for an int size."""
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = s, int(s * long / short)
    return (new_short, new_long) if w <= h else (new_long, new_short)


def clip_tensor(im, height, width, short_side, alpha):
    im = flatten_alpha(im, alpha)
    s = short_side or max(height, width)
    nw, nh = short_side_size(im.width, im.height, s)
    if (nw, nh) != im.size:
        im = im.resize((nw, nh), Image.BICUBIC)
    top = int(round((nh - height) / 2.0))
    left = int(round((nw - width) / 2.0))
    im = im.crop((left, top, left + width, top + height)).convert("RGB")
    x = np.asarray(im, dtype=np.float32) / np.float32(255.0)
    x = (x - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "ref", "clip")
    os.makedirs(out, exist_ok=True)
    for name, im in make_inputs().items():
        kw = {"transparency": im.info["transparency"]} if "transparency" in im.info else {}
        im.save(os.path.join(out, name), optimize=True, **kw)
    for src, dst, h, w, s, alpha in CASES:
        with Image.open(os.path.join(out, src)) as im:  # read back: the reference sees the file's pixels
            im.load()
            t = clip_tensor(im, h, w, s, alpha)
        np.save(os.path.join(out, dst), t.reshape(1, -1))
        print(f"{dst}: {src} {im.mode} {im.size} -> {t.shape}")


if __name__ == "__main__":
    main()

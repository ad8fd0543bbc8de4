#!/usr/bin/env bash
# Command-line behaviour of `embr embed` with DINO's ViT: a converted state dict (facebookresearch
# names, F16; tests/ref/dino_cli.safetensors) embeds a flat folder of images to the class tokens
# (and, with --pool cls+avg, class + mean patch tokens) that PyTorch computed for the same images
# with DINO's evaluation preprocessing (scripts/make_dino_ref.py: the images are made so that the
# preprocessing is a centre crop, exact in both); the same through an embr model file; bad inputs:
# exit 1 or 2, one line, no output left.
# Usage: test_cli_dino_vit.sh path/to/embr
set -u
EMBR=${1:?usage: test_cli_dino_vit.sh path/to/embr}
. "$(dirname "$0")/cli_lib.sh"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VIT=$ROOT/tests/ref/dino_cli.safetensors
IMG=$ROOT/tests/ref/dino_images
no_output() { [ -e "$1" ] && fail "a failed command left its output $1"; rm -f "$1"; }

# max |a - b| over two CSV files of equal shape, or "shape" when they differ
csv_diff() {
  awk -F, 'NR == FNR { n1 = FNR; w1[FNR] = NF; for (i = 1; i <= NF; i++) a[FNR, i] = $i; next }
           { n2 = FNR; if (NF != w1[FNR]) bad = 1; for (i = 1; i <= NF; i++) { d = a[FNR, i] - $i; if (d < 0) d = -d; if (d > m) m = d } }
           END { if (bad || n1 != n2) print "shape"; else printf "%.3g\n", m }' "$1" "$2"
}
close() { # file expected: within 1e-4
  local d
  d=$(csv_diff "$1" "$2")
  [ "$d" != shape ] && awk -v d="$d" 'BEGIN { exit !(d <= 1e-4) }' || fail "$1 differs from $2 (max abs $d)"
}

# ---- the converted checkpoint, found by its names ------------------------------------------------------
expect 0 "" -- "$EMBR" embed --model "$VIT" --images "$IMG" -o "$T/cls.csv" --raw --ids "$T/ids.txt" -q
close "$T/cls.csv" "$ROOT/tests/ref/dino_cli_cls.csv"
printf 'a.ppm\nb.ppm\nc.ppm\n' | cmp -s - "$T/ids.txt" || fail "ids: $(cat "$T/ids.txt")"
expect 0 "" -- "$EMBR" embed --model "$VIT" --images "$IMG" -o "$T/both.csv" --raw --pool cls+avg -q
close "$T/both.csv" "$ROOT/tests/ref/dino_cli_clsavg.csv"
expect 0 "" -- "$EMBR" embed --model "$VIT" --arch vit --images "$IMG" -o "$T/cls2.csv" --raw -q
close "$T/cls2.csv" "$ROOT/tests/ref/dino_cli_cls.csv"
# without --raw: unit rows
expect 0 "" -- "$EMBR" embed --model "$VIT" --images "$IMG" -o "$T/unit.npy" -q
"$EMBR" info "$T/unit.npy" | grep -q "norms: min 1, mean 1, max 1" || fail "rows are not unit length: $("$EMBR" info "$T/unit.npy" 2>&1)"

# ---- bad inputs ----------------------------------------------------------------------------------------
mkdir -p "$T/empty" "$T/broken"
printf 'not an image' >"$T/broken/x.png"
expect 1 "empty" -- "$EMBR" embed --model "$VIT" --images "$T/empty" -o "$T/x.csv"
no_output "$T/x.csv"
expect 1 "x.png" -- "$EMBR" embed --model "$VIT" --images "$T/broken" -o "$T/x.csv"
no_output "$T/x.csv"
# a checkpoint of another network read as a ViT: the file and the first tensor it lacks
expect 1 "clip_openai.safetensors: tensor 'patch_embed.proj.weight' is missing" -- \
  "$EMBR" embed --model "$ROOT/tests/ref/clip_openai.safetensors" --arch vit --images "$IMG" -o "$T/x.csv"
no_output "$T/x.csv"
expect 1 "nn_resnet18.safetensors: tensor 'patch_embed.proj.weight' is missing" -- \
  "$EMBR" embed --model "$ROOT/tests/ref/nn_resnet18.safetensors" --arch vit --images "$IMG" -o "$T/x.csv"
no_output "$T/x.csv"
expect 1 "clip_openai.safetensors: --pool: a clip model has no class and patch tokens" -- \
  "$EMBR" embed --model "$ROOT/tests/ref/clip_openai.safetensors" --pool cls+avg --images "$IMG" -o "$T/x.csv"
no_output "$T/x.csv"
expect 2 "--pool must be cls or cls\+avg" -- "$EMBR" embed --model "$VIT" --pool mean --images "$IMG" -o "$T/x.csv"
no_output "$T/x.csv"

# ---- dino attention ------------------------------------------------------------------------------------
png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{ printf "%dx%d\n", $1 * 16777216 + $2 * 65536 + $3 * 256 + $4, $5 * 16777216 + $6 * 65536 + $7 * 256 + $8 }'; }
# one image: view, one head (width 64 -> 1 head), mask: 3 panels of 32 px and 2 gaps of 4
expect 0 "" -- "$EMBR" dino attention --model "$VIT" --image "$IMG/c.ppm" -o "$T/c.png" --size 32 -q
[ "$(png_size "$T/c.png")" = 104x32 ] || fail "dino attention picture is $(png_size "$T/c.png"), want 104x32"
grep -qE "c.ppm	.*c.png	[0-9]+ of 64 patches" "$T/out" || fail "dino attention stdout: $(cat "$T/out")"
# a folder: one picture per image, named after it
expect 0 "" -- "$EMBR" dino attention --model "$VIT" --image "$IMG" -o "$T/maps" -q
for f in a b c; do [ "$(png_size "$T/maps/$f.png")" = 56x16 ] || fail "maps/$f.png: $(png_size "$T/maps/$f.png")"; done
# --masks-out: the mean map's mask alone, checked against the library's own mask as the picture's
# last panel draws it (attention_map.c: a pixel outside the mask is the view's value x 0.25, rounded in float32;
# inside, the view's value): both as binary PNM so the shell can read them.
pnm_bytes() { # file header-lines: the pixel bytes, one per line, after the header's lines
  local skip
  skip=$(head -n "$2" "$1" | wc -c)
  od -An -tu1 -v -j "$skip" "$1" | tr -s ' ' '\n' | sed '/^$/d'
}
expect 0 "" -- "$EMBR" dino attention --model "$VIT" --image "$IMG/c.ppm" -o "$T/cm.ppm" --masks-out "$T/cm.pgm" --size 32
head -n 2 "$T/cm.pgm" | tr '\n' ' ' | grep -q "^P5 32 32 " || fail "mask header: $(head -n 2 "$T/cm.pgm" | tr '\n' ' ')"
kept=$(sed -n 's/.*	\([0-9]*\) of 64 patches/\1/p' "$T/out")
pnm_bytes "$T/cm.pgm" 3 >"$T/mask.txt"
pnm_bytes "$T/cm.ppm" 3 >"$T/pic.txt"
awk -v kept="$kept" 'NR == FNR { m[NR - 1] = $1; n++; next }
  { pic[FNR - 1] = $1 }
  END {
    if (n != 32 * 32) { print "mask has " n " pixels"; exit 1 }
    on = 0; dark = 0
    for (y = 0; y < 32; y++) for (x = 0; x < 32; x++) {
      v = m[y * 32 + x]
      if (v != 0 && v != 255) { print "mask value " v; exit 1 }
      if (v != m[int(y / 4) * 4 * 32 + int(x / 4) * 4]) { print "mask not constant on patch at " x "," y; exit 1 }
      on += v == 255
      for (k = 0; k < 3; k++) {
        a = pic[(y * 104 + x) * 3 + k]; b = pic[(y * 104 + 72 + x) * 3 + k]
        d = v == 255 ? b - a : b - a * 0.25  # outside: within rounding of float32 (x / 255 * 0.25 * 255)
        if (d < -0.5 || d > 0.5) { print "pixel " x "," y " channel " k ": mask " v ", picture " b " from " a; exit 1 }
        if (v == 0 && a >= 4) dark++
      }
    }
    if (on != kept * 16) { print on " mask pixels, stdout says " kept " patches"; exit 1 }
    if (on == 0 || on == 1024 || dark == 0) { print "degenerate mask: cannot tell it from its complement"; exit 1 }
  }' "$T/mask.txt" "$T/pic.txt" >"$T/why" || fail "--masks-out disagrees with the picture: $(cat "$T/why")"
# a folder: one PNG mask per image beside the pictures; --whole: the whole image, no crop
expect 0 "" -- "$EMBR" dino attention --model "$VIT" --image "$IMG" -o "$T/maps2" --masks-out "$T/masks2" --whole -q
for f in a b c; do [ "$(png_size "$T/masks2/$f.png")" = 16x16 ] || fail "masks2/$f.png: $(png_size "$T/masks2/$f.png")"; done
# --mask-head: a head's own mask; this model has one head, whose map is the mean map
expect 0 "" -- "$EMBR" dino attention --model "$VIT" --image "$IMG/c.ppm" -o "$T/ch.ppm" --masks-out "$T/ch.pgm" --size 32 --mask-head 1 -q
cmp -s "$T/cm.pgm" "$T/ch.pgm" || fail "--mask-head 1 of a one-head model differs from the mean map's mask"
expect 2 "--mask-head 2: the model has 1 head$" -- "$EMBR" dino attention --model "$VIT" --image "$IMG/c.ppm" -o "$T/x.png" --mask-head 2
no_output "$T/x.png"
expect 2 "--masks-out must name a .png" -- "$EMBR" dino attention --model "$VIT" --image "$IMG/a.ppm" -o "$T/x.png" --masks-out "$T/m.jpg"
no_output "$T/x.png"
expect 2 "same folder" -- "$EMBR" dino attention --model "$VIT" --image "$IMG" -o "$T/same" --masks-out "$T/same"
[ -e "$T/same" ] && fail "a refused command created its folder"
# bad inputs: nothing written
expect 1 "x.png" -- "$EMBR" dino attention --model "$VIT" --image "$T/broken" -o "$T/bmaps"
[ -e "$T/bmaps" ] && fail "dino attention left an output folder for a folder with a broken image"
expect 1 "empty" -- "$EMBR" dino attention --model "$VIT" --image "$T/empty" -o "$T/emaps"
expect 1 "not a ViT" -- "$EMBR" dino attention --model "$ROOT/tests/ref/clip_openai.safetensors" --image "$IMG/a.ppm" -o "$T/x.png"
no_output "$T/x.png"
expect 2 "multiple of the patch 4" -- "$EMBR" dino attention --model "$VIT" --image "$IMG/a.ppm" -o "$T/x.png" --size 30
no_output "$T/x.png"
expect 2 "-o must name a .png" -- "$EMBR" dino attention --model "$VIT" --image "$IMG/a.ppm" -o "$T/x.jpg"
expect 2 "--mass" -- "$EMBR" dino attention --model "$VIT" --image "$IMG/a.ppm" -o "$T/x.png" --mass 1.5
no_output "$T/x.png"

finish

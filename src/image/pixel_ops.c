/* The pixel operations of the multi-crop augmentation, on 8-bit HWC images in place. Each is the
 * functional form of the torchvision transform DINO uses on PIL images, with Pillow's arithmetic
 * (float blend factors truncated to 8 bits, integer luma, 8-bit HSV, fixed-point box blurs), so
 * that the same parameters give the same bytes: tests/test_multicrop.c compares them with
 * scripts/make_multicrop_ref.py's Pillow output. Working on bytes, as Pillow does, keeps one
 * 8-bit buffer per view and no float copies until the final normalisation. */
#include "image/multicrop_internal.h"

#include <math.h>
#include <string.h>

void embr__op_hflip(uint8_t *px, int w, int h, int c) {
  for (int y = 0; y < h; y++) {
    uint8_t *row = px + (size_t)y * w * c;
    for (int a = 0, b = w - 1; a < b; a++, b--)
      for (int k = 0; k < c; k++) {
        uint8_t t = row[a * c + k];
        row[a * c + k] = row[b * c + k];
        row[b * c + k] = t;
      }
  }
}

/* Image.blend(degenerate, image, f) for one sample: a + f (b - a) in float, truncated; clipped
 * when f is outside [0, 1] (Pillow's two branches agree on the result). */
static inline uint8_t blend(int a, int b, float f) {
  float t = (float)a + f * (float)(b - a);
  if (t <= 0.0f) return 0;
  if (t >= 255.0f) return 255;
  return (uint8_t)t;
}

static void apply_lut(uint8_t *px, size_t n, const uint8_t lut[256]) {
  for (size_t i = 0; i < n; i++) px[i] = lut[px[i]];
}

void embr__op_brightness(uint8_t *px, size_t npix, int c, float f) {
  uint8_t lut[256];
  for (int v = 0; v < 256; v++) lut[v] = blend(0, v, f); /* blend with black */
  apply_lut(px, npix * (size_t)c, lut);
}

/* The blend target is the mean of the image's luma, rounded half up (ImageStat's mean + 0.5). */
void embr__op_contrast(uint8_t *px, size_t npix, int c, float f) {
  uint64_t sum = 0;
  if (c == 3)
    for (size_t i = 0; i < npix; i++) sum += embr__luma8(px + 3 * i);
  else
    for (size_t i = 0; i < npix; i++) sum += px[i];
  int mean = (int)((double)sum / (double)npix + 0.5);
  uint8_t lut[256];
  for (int v = 0; v < 256; v++) lut[v] = blend(mean, v, f);
  apply_lut(px, npix * (size_t)c, lut);
}

/* Blend with the pixel's own luma (convert("L").convert("RGB")). */
void embr__op_saturation(uint8_t *px, size_t npix, int c, float f) {
  if (c != 3) return;
  for (size_t i = 0; i < npix; i++) {
    uint8_t *p = px + 3 * i;
    int l = embr__luma8(p);
    for (int k = 0; k < 3; k++) p[k] = blend(l, p[k], f);
  }
}

static inline int clip8(int v) { return v < 0 ? 0 : v > 255 ? 255 : v; }

/* Pillow's RGB -> HSV, all three stored in 8 bits: hue and saturation are fractions scaled by 255
 * and truncated, value is max(r, g, b). The float / double steps are Pillow's, so the bytes agree;
 * libm's fmod, floor and round are replaced by exact equivalents for the non-negative values met
 * here (they were most of the time of this operation). */
static void rgb_to_hsv8(const uint8_t *p, uint8_t *hsv) {
  int r = p[0], g = p[1], b = p[2];
  int mx = r > g ? (r > b ? r : b) : (g > b ? g : b);
  int mn = r < g ? (r < b ? r : b) : (g < b ? g : b);
  hsv[2] = (uint8_t)mx;
  if (mx == mn) {
    hsv[0] = hsv[1] = 0;
    return;
  }
  float span = (float)(mx - mn), s = span / (float)mx, h;
  if (r == mx) h = (float)(mx - b) / span - (float)(mx - g) / span;
  else if (g == mx) h = (float)(2.0 + (float)(mx - r) / span - (float)(mx - b) / span);
  else h = (float)(4.0 + (float)(mx - g) / span - (float)(mx - r) / span);
  double x = h / 6.0 + 1.0; /* in (5/6, 2): fmod(x, 1) is x or x - 1, both exact */
  h = (float)(x >= 1.0 ? x - 1.0 : x);
  hsv[0] = (uint8_t)clip8((int)(h * 255.0));
  hsv[1] = (uint8_t)clip8((int)(s * 255.0));
}

/* round() of x >= 0: halves away from zero (x - trunc(x) is exact). */
static inline int round_pos(double x) {
  int i = (int)x;
  return x - i >= 0.5 ? i + 1 : i;
}

/* Pillow's HSV -> RGB: sector i and fraction f of h * 6 / 255, the three levels rounded. */
static void hsv8_to_rgb(const uint8_t *hsv, uint8_t *p) {
  int h = hsv[0], s = hsv[1], v = hsv[2];
  if (s == 0) {
    p[0] = p[1] = p[2] = (uint8_t)v;
    return;
  }
  double h6 = (float)h * 6.0 / 255.0;
  int i = (int)h6; /* floor: h6 >= 0 */
  float f = (float)(h6 - (float)i), fs = (float)((float)s / 255.0);
  uint8_t lo = (uint8_t)clip8(round_pos((float)v * (1.0 - fs)));
  uint8_t fall = (uint8_t)clip8(round_pos((float)v * (1.0 - fs * f)));
  uint8_t rise = (uint8_t)clip8(round_pos((float)v * (1.0 - fs * (1.0 - f))));
  uint8_t hi = (uint8_t)v;
  switch (i % 6) {
    case 0: p[0] = hi, p[1] = rise, p[2] = lo; break;
    case 1: p[0] = fall, p[1] = hi, p[2] = lo; break;
    case 2: p[0] = lo, p[1] = hi, p[2] = rise; break;
    case 3: p[0] = lo, p[1] = fall, p[2] = hi; break;
    case 4: p[0] = rise, p[1] = lo, p[2] = hi; break;
    default: p[0] = hi, p[1] = lo, p[2] = fall; break;
  }
}

void embr__op_hue(uint8_t *px, size_t npix, int c, float hue) {
  if (c != 3) return;
  /* np.uint8(hue * 255): truncated toward zero, then wrapped modulo 256. */
  int shift = (int)((double)hue * 255.0);
  uint8_t d = (uint8_t)(((shift % 256) + 256) % 256);
  for (size_t i = 0; i < npix; i++) {
    uint8_t hsv[3];
    rgb_to_hsv8(px + 3 * i, hsv);
    hsv[0] = (uint8_t)(hsv[0] + d);
    hsv8_to_rgb(hsv, px + 3 * i);
  }
}

void embr__op_grayscale(uint8_t *px, size_t npix, int c) {
  if (c != 3) return;
  for (size_t i = 0; i < npix; i++) {
    uint8_t *p = px + 3 * i;
    p[0] = p[1] = p[2] = embr__luma8(p);
  }
}

void embr__op_solarize(uint8_t *px, size_t npix, int c, int threshold) {
  uint8_t lut[256];
  for (int v = 0; v < 256; v++) lut[v] = (uint8_t)(v >= threshold ? 255 - v : v);
  apply_lut(px, npix * (size_t)c, lut);
}

/* ---- Gaussian blur ---------------------------------------------------------------------------------
 * Pillow approximates a Gaussian of standard deviation `radius` by three passes of an "extended" box
 * (Gwosdek et al., "Theoretical foundations of Gaussian convolution by extended box filtering",
 * 2011): a box of integer half-width l plus a fraction a of the next pixel on each side, chosen so
 * that the three passes have variance radius^2. Each pass works in 24-bit fixed point (weights
 * ww inside the box, fw for the two partial pixels), rounds to 8 bits, and repeats the edge pixel
 * past the border; the three horizontal passes come before the three vertical ones. */

static float box_radius(float radius, int passes) {
  float sigma2 = radius * radius / (float)passes;
  float len = (float)sqrt(12.0 * sigma2 + 1.0);     /* ideal box length */
  float l = (float)floor((len - 1.0) / 2.0);        /* its integer half-width */
  float a = (2 * l + 1) * (l * (l + 1) - 3 * sigma2); /* the fraction that makes the variance exact */
  a /= 6 * (sigma2 - (l + 1) * (l + 1));
  return l + a;
}

/* One pass over n samples: in -> out (distinct buffers). */
static void box_pass(const int32_t *in, int32_t *out, int n, int r, uint32_t ww, uint32_t fw) {
  int last = n - 1;
#define AT(i) ((uint32_t)in[(i) < 0 ? 0 : (i) > last ? last : (i)])
  uint32_t acc = 0;
  for (int k = -r; k <= r; k++) acc += AT(k);
  for (int x = 0; x < n; x++) {
    uint32_t bulk = acc * ww + (AT(x - r - 1) + AT(x + r + 1)) * fw;
    out[x] = (int32_t)((bulk + (1u << 23)) >> 24);
    acc += AT(x + r + 1) - AT(x - r);
  }
#undef AT
}

/* Three passes over one line of n samples at `stride` bytes apart. */
static void blur_line(uint8_t *p, size_t stride, int n, int r, uint32_t ww, uint32_t fw, int32_t *a, int32_t *b) {
  for (int i = 0; i < n; i++) a[i] = p[(size_t)i * stride];
  box_pass(a, b, n, r, ww, fw);
  box_pass(b, a, n, r, ww, fw);
  box_pass(a, b, n, r, ww, fw);
  for (int i = 0; i < n; i++) p[(size_t)i * stride] = (uint8_t)b[i];
}

void embr__op_blur(uint8_t *px, int w, int h, int c, float radius, int32_t *line) {
  if (!(radius > 0.0f)) return;
  float fr = box_radius(radius, 3);
  int r = (int)fr;
  uint32_t ww = (uint32_t)((float)(1 << 24) / (fr * 2 + 1));
  uint32_t fw = ((1u << 24) - (uint32_t)(r * 2 + 1) * ww) / 2;
  int mx = w > h ? w : h;
  int32_t *a = line, *b = line + mx;
  for (int y = 0; y < h; y++)
    for (int k = 0; k < c; k++) blur_line(px + (size_t)y * w * c + k, (size_t)c, w, r, ww, fw, a, b);
  for (int x = 0; x < w; x++)
    for (int k = 0; k < c; k++) blur_line(px + (size_t)x * c + k, (size_t)w * c, h, r, ww, fw, a, b);
}

/* Resizing, conversion to a normalised float tensor, and training augmentation.
 *
 * Resizing follows Pillow's resampling (what torchvision uses on PIL images): pixel centres at
 * i + 0.5 (align_corners = false), a triangle (bilinear) or Keys cubic kernel with a = -0.5
 * (bicubic), widened by the scale factor when shrinking so every input pixel contributes
 * (antialiasing), weights renormalised where the kernel leaves the image. When enlarging this is
 * exactly the classic bilinear / bicubic interpolation with edge clamping. The image is filtered
 * horizontally, rounded and clipped to 8 bits as Pillow's intermediate image is (bicubic overshoot
 * at hard edges is clipped there: keeping it in floats put us up to 6 levels away from Pillow),
 * then vertically, and rounded again. */
#include "image/image_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

embr_image_spec embr_image_spec_default(void) {
  embr_image_spec s;
  memset(&s, 0, sizeof s);
  s.channels = 3;
  s.height = s.width = 112;
  for (int c = 0; c < 3; c++) s.mean[c] = s.std[c] = 0.5f;
  s.resize = EMBR_RESIZE_BILINEAR;
  return s;
}

embr_image_spec embr_image_spec_clip(int size) {
  static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
  static const float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
  embr_image_spec s = embr_image_spec_default();
  s.height = s.width = size;
  memcpy(s.mean, mean, sizeof mean);
  memcpy(s.std, std, sizeof std);
  s.resize = EMBR_RESIZE_BICUBIC;
  s.crop = EMBR_CROP_CENTER;
  s.short_side = 0;
  s.alpha = EMBR_ALPHA_WHITE;
  return s;
}

int embr__image_spec_check(const embr_image_spec *spec) {
  if (!spec) return embr_error(EMBR_EINVAL, "image spec: NULL");
  if (spec->channels != 1 && spec->channels != 3)
    return embr_error(EMBR_EINVAL, "image spec: channels %d, expected 1 or 3", spec->channels);
  if (spec->width < 1 || spec->height < 1 || spec->width > EMBR_IMAGE_MAX_SIDE || spec->height > EMBR_IMAGE_MAX_SIDE)
    return embr_error(EMBR_EINVAL, "image spec: size %dx%d out of range (1..%d a side)", spec->width,
                      spec->height, EMBR_IMAGE_MAX_SIDE);
  if (spec->resize != EMBR_RESIZE_BILINEAR && spec->resize != EMBR_RESIZE_BICUBIC)
    return embr_error(EMBR_EINVAL, "image spec: unknown resize mode %d", (int)spec->resize);
  if (spec->crop != EMBR_CROP_NONE && spec->crop != EMBR_CROP_CENTER)
    return embr_error(EMBR_EINVAL, "image spec: unknown crop mode %d", (int)spec->crop);
  if (spec->alpha != EMBR_ALPHA_IGNORE && spec->alpha != EMBR_ALPHA_WHITE)
    return embr_error(EMBR_EINVAL, "image spec: unknown alpha mode %d", (int)spec->alpha);
  if (spec->crop == EMBR_CROP_CENTER && spec->short_side != 0 &&
      (spec->short_side < spec->height || spec->short_side < spec->width || spec->short_side > EMBR_IMAGE_MAX_SIDE))
    return embr_error(EMBR_EINVAL, "image spec: short side %d must be 0 or in %d..%d (at least the crop's %dx%d)",
                      spec->short_side, spec->height > spec->width ? spec->height : spec->width, EMBR_IMAGE_MAX_SIDE,
                      spec->width, spec->height);
  for (int c = 0; c < spec->channels; c++)
    if (!isfinite(spec->mean[c]) || !isfinite(spec->std[c]) || spec->std[c] == 0.0f)
      return embr_error(EMBR_EINVAL, "image spec: channel %d needs a finite mean and a finite non-zero std", c);
  return 0;
}

static int check_input(const embr_image *im, const char *what) {
  if (!im || !im->px) return embr_error(EMBR_EINVAL, "%s: no image", what);
  if (im->width < 1 || im->height < 1 || im->width > EMBR_IMAGE_MAX_SIDE || im->height > EMBR_IMAGE_MAX_SIDE)
    return embr_error(EMBR_EINVAL, "%s: image size %dx%d out of range", what, im->width, im->height);
  if (im->channels != 1 && im->channels != 3)
    return embr_error(EMBR_EINVAL, "%s: %d channels, expected 1 or 3", what, im->channels);
  return 0;
}

/* ---- resampling ------------------------------------------------------------------------------- */

static double filter_triangle(double x) {
  x = fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

static double filter_cubic(double x) {
  const double a = -0.5;
  x = fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

/* For each output index: the first input index and `max` weights (zero past the used ones). */
typedef struct taps {
  int *start;
  float *w;
  int max;
} taps;

static void taps_free(taps *t) {
  free(t->start);
  free(t->w);
}

static void taps_fill(taps *t, int in, int out, embr_resize mode) {
  double scale = (double)in / out, widen = scale > 1.0 ? scale : 1.0;
  double support = (mode == EMBR_RESIZE_BICUBIC ? 2.0 : 1.0) * widen;
  double (*f)(double) = mode == EMBR_RESIZE_BICUBIC ? filter_cubic : filter_triangle;
  for (int i = 0; i < out; i++) {
    double center = (i + 0.5) * scale, sum = 0.0;
    int lo = (int)floor(center - support + 0.5), hi = (int)floor(center + support + 0.5);
    if (lo < 0) lo = 0;
    if (hi > in) hi = in;
    if (hi - lo > t->max) hi = lo + t->max; /* cannot happen: max covers the support */
    float *w = t->w + (size_t)i * t->max;
    for (int k = 0; k < t->max; k++) w[k] = 0.0f;
    for (int x = lo; x < hi; x++) sum += f((x + 0.5 - center) / widen);
    for (int x = lo; x < hi; x++) w[x - lo] = (float)(sum > 0.0 ? f((x + 0.5 - center) / widen) / sum : 0.0);
    t->start[i] = lo;
  }
}

static int taps_make(taps *t, int in, int out, embr_resize mode) {
  double widen = in > out ? (double)in / out : 1.0;
  t->max = (int)ceil(2.0 * (mode == EMBR_RESIZE_BICUBIC ? 2.0 : 1.0) * widen) + 2;
  if (t->max > in + 1) t->max = in + 1;
  t->start = malloc((size_t)out * sizeof *t->start);
  t->w = malloc((size_t)out * (size_t)t->max * sizeof *t->w);
  if (!t->start || !t->w) {
    taps_free(t);
    return embr_error(EMBR_ENOMEM, "resize: out of memory");
  }
  taps_fill(t, in, out, mode);
  return 0;
}

static uint8_t to_byte(float v) {
  if (!(v > 0.0f)) return 0;
  if (v >= 255.0f) return 255;
  return (uint8_t)(v + 0.5f);
}

/* Horizontal pass: in (h x in_w x c bytes) -> tmp (h x out_w x c floats holding 8-bit values). */
static void pass_h(const embr_image *in, const taps *t, int out_w, float *tmp) {
  int c = in->channels;
  for (int y = 0; y < in->height; y++) {
    const uint8_t *row = in->px + (size_t)y * in->width * c;
    float *dst = tmp + (size_t)y * out_w * c;
    for (int x = 0; x < out_w; x++) {
      const float *w = t->w + (size_t)x * t->max;
      const uint8_t *s = row + (size_t)t->start[x] * c;
      int n = t->max;
      if (t->start[x] + n > in->width) n = in->width - t->start[x];
      for (int ch = 0; ch < c; ch++) {
        float acc = 0.0f;
        for (int k = 0; k < n; k++) acc += w[k] * s[k * c + ch];
        dst[x * c + ch] = (float)to_byte(acc); /* Pillow's 8-bit intermediate */
      }
    }
  }
}

/* Vertical pass: tmp (in_h rows of `stride` floats) -> out bytes, one accumulator row at a time. */
static void pass_v(const float *tmp, int in_h, const taps *t, embr_image *out, float *acc) {
  size_t stride = (size_t)out->width * out->channels;
  for (int y = 0; y < out->height; y++) {
    const float *w = t->w + (size_t)y * t->max;
    int n = t->max;
    if (t->start[y] + n > in_h) n = in_h - t->start[y];
    memset(acc, 0, stride * sizeof *acc);
    for (int k = 0; k < n; k++) {
      if (w[k] == 0.0f) continue;
      const float *src = tmp + (size_t)(t->start[y] + k) * stride;
      for (size_t i = 0; i < stride; i++) acc[i] += w[k] * src[i];
    }
    uint8_t *dst = out->px + (size_t)y * stride;
    for (size_t i = 0; i < stride; i++) dst[i] = to_byte(acc[i]);
  }
}

static int resample(const embr_image *in, embr_resize mode, embr_image *out) {
  taps th = {0}, tv = {0};
  size_t tmp_n;
  int rc = embr_size_mul((size_t)in->height * (size_t)out->width, (size_t)in->channels, &tmp_n);
  if (!rc) rc = taps_make(&th, in->width, out->width, mode);
  if (!rc) rc = taps_make(&tv, in->height, out->height, mode);
  float *tmp = rc ? NULL : malloc(tmp_n * sizeof *tmp);
  float *acc = rc ? NULL : malloc((size_t)out->width * out->channels * sizeof *acc);
  if (!rc && (!tmp || !acc)) rc = embr_error(EMBR_ENOMEM, "resize: out of memory");
  if (!rc) {
    pass_h(in, &th, out->width, tmp);
    pass_v(tmp, in->height, &tv, out, acc);
  }
  free(tmp);
  free(acc);
  taps_free(&th);
  taps_free(&tv);
  return rc;
}

embr_status embr_image_resize(const embr_image *in, int w, int h, embr_resize mode, embr_image *out) {
  if (!out) return embr_error(EMBR_EINVAL, "resize: no output image");
  memset(out, 0, sizeof *out);
  int rc = check_input(in, "resize");
  if (rc) return rc;
  if (mode != EMBR_RESIZE_BILINEAR && mode != EMBR_RESIZE_BICUBIC)
    return embr_error(EMBR_EINVAL, "resize: unknown mode %d", (int)mode);
  rc = embr__image_alloc(out, w, h, in->channels, "resize");
  if (rc) return rc;
  if (w == in->width && h == in->height) {
    memcpy(out->px, in->px, (size_t)w * h * in->channels);
    return 0;
  }
  rc = resample(in, mode, out);
  if (rc) embr_image_free(out);
  return rc;
}

/* ---- tensors ------------------------------------------------------------------------------------- */

/* Writes the spec's height x width window of src at (top, left) as CHW floats: channel
 * conversion, then (v/255-mean)/std. */
static void to_chw(const embr_image *src, int top, int left, const embr_image_spec *spec, float *dst) {
  size_t plane = (size_t)spec->width * spec->height;
  int ci = src->channels, co = spec->channels, w = spec->width;
  for (int ch = 0; ch < co; ch++) {
    float a = 1.0f / (255.0f * spec->std[ch]), b = -spec->mean[ch] / spec->std[ch];
    for (int y = 0; y < spec->height; y++) {
      float *d = dst + (size_t)ch * plane + (size_t)y * w;
      const uint8_t *p = src->px + ((size_t)(top + y) * src->width + (size_t)left) * ci;
      if (ci == co) {
        for (int i = 0; i < w; i++) d[i] = p[(size_t)i * ci + ch] * a + b;
      } else if (ci == 1) { /* grey replicated */
        for (int i = 0; i < w; i++) d[i] = p[i] * a + b;
      } else { /* RGB to luma, ITU-R BT.601 weights as in PIL's convert("L") */
        for (int i = 0; i < w; i++)
          d[i] = (0.299f * p[3 * i] + 0.587f * p[3 * i + 1] + 0.114f * p[3 * i + 2]) * a + b;
      }
    }
  }
}

/* A copy of im composited on white (embr__composite_white8, Pillow's rounding). */
static int composite_white(const embr_image *im, embr_image *out) {
  int rc = embr__image_alloc(out, im->width, im->height, im->channels, "to_tensor");
  if (rc) return rc;
  size_t n = (size_t)im->width * im->height;
  int c = im->channels;
  for (size_t i = 0; i < n; i++) {
    for (int k = 0; k < c; k++) out->px[i * c + k] = embr__composite_white8(im->px[i * c + k], im->alpha[i]);
  }
  return 0;
}

/* Python's round() of d / 2 for an integer d >= 0: halves go to the even neighbour. */
static int round_half_even_div2(int d) {
  int q = d / 2;
  return d % 2 == 0 ? q : q + (q % 2); /* q + 0.5: q when q is even, q + 1 when odd */
}

/* torchvision's _compute_resized_output_size for Resize(s) with an int s: the short side to s,
 * the long one to int(s * long / short) (Python's true division, then truncation). */
static void short_side_size(int w, int h, int s, int *nw, int *nh) {
  int shrt = w <= h ? w : h, lng = w <= h ? h : w;
  int nl = (int)((double)((int64_t)s * lng) / (double)shrt);
  if (w <= h) *nw = s, *nh = nl;
  else *nw = nl, *nh = s;
}

embr_status embr_image_to_tensor(const embr_image *im, const embr_image_spec *spec, float *dst) {
  int rc = check_input(im, "to_tensor");
  if (!rc) rc = embr__image_spec_check(spec);
  if (rc) return rc;
  if (!dst) return embr_error(EMBR_EINVAL, "to_tensor: no output buffer");
  embr_image flat = {0}, tmp = {0};
  const embr_image *src = im;
  if (spec->alpha == EMBR_ALPHA_WHITE && im->alpha) {
    if ((rc = composite_white(im, &flat))) return rc;
    src = &flat;
  }
  int rw = spec->width, rh = spec->height, top = 0, left = 0;
  if (spec->crop == EMBR_CROP_CENTER) {
    int s = spec->short_side ? spec->short_side : (spec->height > spec->width ? spec->height : spec->width);
    short_side_size(src->width, src->height, s, &rw, &rh);
    if (rw > EMBR_IMAGE_MAX_SIDE || rh > EMBR_IMAGE_MAX_SIDE) {
      embr_image_free(&flat);
      return embr_error(EMBR_EINVAL, "to_tensor: a %dx%d image with its short side resized to %d would be %dx%d (over %d a side)",
                        im->width, im->height, s, rw, rh, EMBR_IMAGE_MAX_SIDE);
    }
    /* rw, rh >= s >= the crop's sides: int(s * long / short) >= s as long >= short. */
    top = round_half_even_div2(rh - spec->height);
    left = round_half_even_div2(rw - spec->width);
  }
  if (src->width != rw || src->height != rh) {
    rc = embr_image_resize(src, rw, rh, spec->resize, &tmp);
    if (!rc) src = &tmp;
  }
  if (!rc) to_chw(src, top, left, spec, dst);
  embr_image_free(&tmp);
  embr_image_free(&flat);
  return rc;
}

/* ---- augmentation ---------------------------------------------------------------------------------- */

/* Shifts every plane in place: out(y, x) = in(y + dy, x + dx), zero outside. Rows are visited in
 * the direction that reads each source row before it is overwritten. */
static void shift_planes(float *chw, int channels, int height, int width, int dy, int dx) {
  int adx = dx < 0 ? -dx : dx, keep = width - adx;
  for (int c = 0; c < channels; c++) {
    float *plane = chw + (size_t)c * height * width;
    for (int i = 0; i < height; i++) {
      int y = dy > 0 ? i : height - 1 - i, sy = y + dy;
      float *row = plane + (size_t)y * width;
      if (sy < 0 || sy >= height || keep <= 0) {
        memset(row, 0, (size_t)width * sizeof *row);
        continue;
      }
      const float *src = plane + (size_t)sy * width;
      memmove(row + (dx < 0 ? adx : 0), src + (dx > 0 ? dx : 0), (size_t)keep * sizeof *row);
      if (dx > 0) memset(row + keep, 0, (size_t)adx * sizeof *row);
      if (dx < 0) memset(row, 0, (size_t)adx * sizeof *row);
    }
  }
}

static void mirror_planes(float *chw, int channels, int height, int width) {
  for (size_t r = 0; r < (size_t)channels * height; r++) {
    float *row = chw + r * width;
    for (int a = 0, b = width - 1; a < b; a++, b--) {
      float t = row[a];
      row[a] = row[b];
      row[b] = t;
    }
  }
}

void embr_image_augment(float *chw, int channels, int height, int width, int pad, int flip, embr_rng *rng) {
  if (!chw || !rng || channels < 1 || height < 1 || width < 1) return;
  if (pad > 0) {
    /* A crop at offset (oy, ox) of the zero-padded image is a shift by (oy - pad, ox - pad). */
    int64_t dy = (int64_t)embr_rng_below(rng, 2 * (uint64_t)pad + 1) - pad;
    int64_t dx = (int64_t)embr_rng_below(rng, 2 * (uint64_t)pad + 1) - pad;
    /* A shift by a whole side or more leaves only zeros: clamp so the arithmetic stays in int. */
    if (dy < -height) dy = -height;
    if (dy > height) dy = height;
    if (dx < -width) dx = -width;
    if (dx > width) dx = width;
    if (dy || dx) shift_planes(chw, channels, height, width, (int)dy, (int)dx);
  }
  if (flip && (embr_rng_next(rng) >> 63)) mirror_planes(chw, channels, height, width);
}

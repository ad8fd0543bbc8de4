/* DINO's multi-crop augmentation (DataAugmentationDINO of facebookresearch/dino): for each view a
 * plan of every random choice is drawn first (embr__multicrop_plan, in a fixed order from the
 * caller's embr_rng), then carried out on one 8-bit buffer (crop + resize, flip, colour jitter in
 * the drawn order, grayscale, blur, solarise: pixel_ops.c), and only the finished view becomes
 * floats, through a per-channel 256-entry table that computes (v / 255 - mean) / std as
 * torchvision's ToTensor + Normalize do in float32. The source is prepared once per image (alpha
 * composited, RGB made grey for 1-channel output), not once per view. */
#include "image/image_internal.h"
#include "image/multicrop_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

embr_multicrop_params embr_multicrop_params_dino(int global_size, int local_size, int n_local) {
  embr_multicrop_params p;
  memset(&p, 0, sizeof p);
  p.n_global = 2;
  p.n_local = n_local;
  p.global_size = global_size;
  p.local_size = local_size;
  p.global_scale[0] = 0.4f, p.global_scale[1] = 1.0f;
  p.local_scale[0] = 0.05f, p.local_scale[1] = 0.4f;
  p.channels = 3;
  const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
  memcpy(p.mean, mean, sizeof mean);
  memcpy(p.std, std, sizeof std);
  p.ratio[0] = 3.0f / 4.0f, p.ratio[1] = 4.0f / 3.0f;
  p.resize = EMBR_RESIZE_BICUBIC;
  p.alpha = EMBR_ALPHA_WHITE;
  p.flip_p = 0.5f;
  p.jitter_p = 0.8f;
  p.brightness = 0.4f, p.contrast = 0.4f, p.saturation = 0.2f, p.hue = 0.1f;
  p.grayscale_p = 0.2f;
  p.blur_p[0] = 1.0f, p.blur_p[1] = 0.1f, p.blur_p[2] = 0.5f;
  p.blur_sigma[0] = 0.1f, p.blur_sigma[1] = 2.0f;
  p.solarize_p[0] = 0.0f, p.solarize_p[1] = 0.2f, p.solarize_p[2] = 0.0f;
  p.solarize_threshold = 128;
  return p;
}

static int bad(const char *field) { return embr_error(EMBR_EINVAL, "multicrop params: bad %s", field); }

static int prob_ok(float p) { return p >= 0.0f && p <= 1.0f; }

embr_status embr_multicrop_params_check(const embr_multicrop_params *p) {
  if (!p) return embr_error(EMBR_EINVAL, "multicrop params: NULL");
  if (p->n_global < 1 || p->n_local < 0 || p->n_global > 64 || p->n_local > 1024)
    return embr_error(EMBR_EINVAL, "multicrop params: %d global and %d local crops (expected 1..64 and 0..1024)",
                      p->n_global, p->n_local);
  if (p->global_size < 1 || p->global_size > EMBR_IMAGE_MAX_SIDE) return bad("global_size");
  if (p->n_local > 0 && (p->local_size < 1 || p->local_size > EMBR_IMAGE_MAX_SIDE)) return bad("local_size");
  const float *sc[2] = {p->global_scale, p->local_scale};
  for (int k = 0; k < 2; k++)
    if (!(sc[k][0] > 0.0f && sc[k][0] <= sc[k][1] && sc[k][1] <= 1.0f))
      return bad(k ? "local_scale (0 < lo <= hi <= 1)" : "global_scale (0 < lo <= hi <= 1)");
  if (!(p->ratio[0] > 0.0f && p->ratio[0] <= p->ratio[1] && isfinite(p->ratio[1]))) return bad("ratio");
  if (p->channels != 1 && p->channels != 3) return bad("channels (1 or 3)");
  for (int c = 0; c < p->channels; c++)
    if (!isfinite(p->mean[c]) || !isfinite(p->std[c]) || p->std[c] == 0.0f) return bad("mean/std");
  if (p->resize != EMBR_RESIZE_BILINEAR && p->resize != EMBR_RESIZE_BICUBIC) return bad("resize");
  if (p->alpha != EMBR_ALPHA_IGNORE && p->alpha != EMBR_ALPHA_WHITE) return bad("alpha");
  if (!prob_ok(p->flip_p) || !prob_ok(p->jitter_p) || !prob_ok(p->grayscale_p)) return bad("probability");
  for (int k = 0; k < 3; k++)
    if (!prob_ok(p->blur_p[k]) || !prob_ok(p->solarize_p[k])) return bad("blur_p/solarize_p");
  if (!(p->brightness >= 0.0f && p->contrast >= 0.0f && p->saturation >= 0.0f) || !isfinite(p->brightness) ||
      !isfinite(p->contrast) || !isfinite(p->saturation))
    return bad("jitter strength");
  if (!(p->hue >= 0.0f && p->hue <= 0.5f)) return bad("hue (0..0.5)");
  if (!(p->blur_sigma[0] > 0.0f && p->blur_sigma[0] <= p->blur_sigma[1] && p->blur_sigma[1] <= 1000.0f))
    return bad("blur_sigma");
  if (p->solarize_threshold < 0 || p->solarize_threshold > 256) return bad("solarize_threshold (0..256)");
  return 0;
}

/* ---- sampling ------------------------------------------------------------------------------------- */

static double uniform(embr_rng *rng, double lo, double hi) { return lo + (hi - lo) * embr_rng_double(rng); }

int embr__rrc_sample(int w, int h, const float scale[2], const float ratio[2], embr_rng *rng, int *top, int *left,
                     int *ch, int *cw) {
  double area = (double)w * h, lr0 = log((double)ratio[0]), lr1 = log((double)ratio[1]);
  for (int t = 1; t <= 10; t++) {
    double target = area * uniform(rng, scale[0], scale[1]);
    double aspect = exp(uniform(rng, lr0, lr1));
    double sw = rint(sqrt(target * aspect)), sh = rint(sqrt(target / aspect)); /* Python's round() */
    if (sw > 0 && sw <= w && sh > 0 && sh <= h) {
      *ch = (int)sh, *cw = (int)sw;
      *top = (int)embr_rng_below(rng, (uint64_t)(h - *ch + 1));
      *left = (int)embr_rng_below(rng, (uint64_t)(w - *cw + 1));
      return t;
    }
  }
  /* The central crop, its aspect clamped into the ratio range. */
  double in_ratio = (double)w / h;
  *cw = w, *ch = h;
  if (in_ratio < ratio[0]) *ch = (int)rint(w / (double)ratio[0]);
  else if (in_ratio > ratio[1]) *cw = (int)rint(h * (double)ratio[1]);
  *top = (h - *ch) / 2;
  *left = (w - *cw) / 2;
  return 0;
}

static int draw(embr_rng *rng, float p) { return p >= 1.0f || (p > 0.0f && embr_rng_double(rng) < p); }

/* ColorJitter.get_params: a random order of the four, then each factor from its range. */
static void plan_jitter(const embr_multicrop_params *p, embr_rng *rng, embr__view_plan *v) {
  for (int k = 0; k < 4; k++) v->order[k] = k;
  for (int k = 3; k > 0; k--) {
    int j = (int)embr_rng_below(rng, (uint64_t)k + 1), t = v->order[k];
    v->order[k] = v->order[j];
    v->order[j] = t;
  }
  const float s[3] = {p->brightness, p->contrast, p->saturation};
  float *f[3] = {&v->brightness, &v->contrast, &v->saturation};
  for (int k = 0; k < 3; k++)
    if (s[k] > 0.0f) *f[k] = (float)uniform(rng, s[k] < 1.0f ? 1.0f - s[k] : 0.0f, 1.0f + s[k]);
  if (p->hue > 0.0f) v->hue = (float)uniform(rng, -p->hue, p->hue);
}

void embr__multicrop_plan(const embr_multicrop_params *p, int kind, int w, int h, embr_rng *rng, embr__view_plan *v) {
  memset(v, 0, sizeof *v);
  v->brightness = v->contrast = v->saturation = 1.0f;
  const float *scale = kind == 2 ? p->local_scale : p->global_scale;
  v->tries = embr__rrc_sample(w, h, scale, p->ratio, rng, &v->top, &v->left, &v->h, &v->w);
  v->flip = draw(rng, p->flip_p);
  v->jitter = draw(rng, p->jitter_p);
  if (v->jitter) plan_jitter(p, rng, v);
  v->gray = draw(rng, p->grayscale_p);
  if (draw(rng, p->blur_p[kind])) v->blur = (float)uniform(rng, p->blur_sigma[0], p->blur_sigma[1]);
  v->solarize = draw(rng, p->solarize_p[kind]);
}

/* ---- carrying a plan out -------------------------------------------------------------------------- */

int embr__crop_resize(const embr_image *src, int top, int left, int h, int w, int size, embr_resize mode,
                      embr_image *out) {
  embr_image box = {0};
  int c = src->channels, rc = embr__image_alloc(&box, w, h, c, "multicrop");
  if (rc) return rc;
  for (int y = 0; y < h; y++)
    memcpy(box.px + (size_t)y * w * c, src->px + ((size_t)(top + y) * src->width + (size_t)left) * c, (size_t)w * c);
  rc = embr_image_resize(&box, size, size, mode, out);
  embr_image_free(&box);
  return rc;
}

static void apply_colour(const embr__view_plan *v, embr_image *im, int32_t *line) {
  size_t n = (size_t)im->width * im->height;
  int c = im->channels;
  if (v->flip) embr__op_hflip(im->px, im->width, im->height, c);
  for (int k = 0; v->jitter && k < 4; k++) {
    switch (v->order[k]) {
      case 0: embr__op_brightness(im->px, n, c, v->brightness); break;
      case 1: embr__op_contrast(im->px, n, c, v->contrast); break;
      case 2: embr__op_saturation(im->px, n, c, v->saturation); break;
      default: embr__op_hue(im->px, n, c, v->hue); break;
    }
  }
  if (v->gray) embr__op_grayscale(im->px, n, c);
  if (v->blur > 0.0f) embr__op_blur(im->px, im->width, im->height, c, v->blur, line);
}

/* (v / 255 - mean) / std per output channel, in float32 as torchvision computes it. */
static void make_luts(const embr_multicrop_params *p, float lut[3][256]) {
  for (int c = 0; c < p->channels; c++)
    for (int v = 0; v < 256; v++) {
      float x = (float)v / 255.0f;
      x = x - p->mean[c];
      lut[c][v] = x / p->std[c];
    }
}

static void to_floats(const embr_image *im, int out_c, float lut[3][256], float *dst) {
  size_t plane = (size_t)im->width * im->height;
  int c = im->channels;
  for (int k = 0; k < out_c; k++) {
    const uint8_t *s = im->px + (c == 1 ? 0 : k);
    float *d = dst + (size_t)k * plane;
    for (size_t i = 0; i < plane; i++) d[i] = lut[k][s[i * c]];
  }
}

/* The image every view is cut from: alpha composited when asked, grey when the output is. */
static int prepare_source(const embr_image *im, const embr_multicrop_params *p, embr_image *out) {
  int rc = embr__image_alloc(out, im->width, im->height, p->channels == 1 ? 1 : im->channels, "multicrop");
  if (rc) return rc;
  size_t n = (size_t)im->width * im->height;
  int c = im->channels;
  for (size_t i = 0; i < n; i++) {
    uint8_t px[3];
    for (int k = 0; k < c; k++) {
      px[k] = im->px[i * c + k];
      if (p->alpha == EMBR_ALPHA_WHITE && im->alpha) px[k] = embr__composite_white8(px[k], im->alpha[i]);
    }
    if (out->channels == 1) out->px[i] = c == 3 ? embr__luma8(px) : px[0];
    else memcpy(out->px + i * c, px, (size_t)c);
  }
  return 0;
}

int embr__multicrop_render(const embr_image *src, const embr_multicrop_params *p, const embr__view_plan *v,
                          int size, float *dst) {
  embr_image im = {0};
  int rc = embr__crop_resize(src, v->top, v->left, v->h, v->w, size, p->resize, &im);
  if (rc) return rc;
  int32_t *line = embr_alloc((size_t)2 * size * sizeof *line);
  if (!line) {
    embr_image_free(&im);
    return embr_error(EMBR_ENOMEM, "multicrop: out of memory");
  }
  apply_colour(v, &im, line);
  if (v->solarize) embr__op_solarize(im.px, (size_t)size * size, im.channels, p->solarize_threshold);
  float lut[3][256];
  make_luts(p, lut);
  to_floats(&im, p->channels, lut, dst);
  embr_free(line);
  embr_image_free(&im);
  return 0;
}

embr_status embr_multicrop(const embr_image *im, const embr_multicrop_params *p, embr_rng *rng, float *global,
                           float *local) {
  int rc = embr_multicrop_params_check(p);
  if (rc) return rc;
  if (!im || !im->px || im->width < 1 || im->height < 1 || im->width > EMBR_IMAGE_MAX_SIDE ||
      im->height > EMBR_IMAGE_MAX_SIDE || (im->channels != 1 && im->channels != 3))
    return embr_error(EMBR_EINVAL, "multicrop: bad image");
  if (!rng || !global || (p->n_local > 0 && !local)) return embr_error(EMBR_EINVAL, "multicrop: NULL argument");
  embr_image src = {0};
  if ((rc = prepare_source(im, p, &src))) return rc;
  size_t gsz = (size_t)p->channels * p->global_size * p->global_size;
  size_t lsz = (size_t)p->channels * p->local_size * p->local_size;
  for (int i = 0; !rc && i < p->n_global + p->n_local; i++) {
    int kind = i == 0 ? 0 : i < p->n_global ? 1 : 2;
    embr__view_plan v;
    embr__multicrop_plan(p, kind, src.width, src.height, rng, &v);
    float *dst = kind < 2 ? global + (size_t)i * gsz : local + (size_t)(i - p->n_global) * lsz;
    rc = embr__multicrop_render(&src, p, &v, kind < 2 ? p->global_size : p->local_size, dst);
  }
  embr_image_free(&src);
  return rc;
}

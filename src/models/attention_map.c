/* DINO's attention maps (Caron et al. 2021, section 4.2.1 and its visualize_attention.py): the
 * class token's attention to the patches in the ViT's last block, per head; the mask of the
 * patches holding a given share (60 %) of it; and a picture of both over the image. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/dino_vit.h"

embr_status embr_model_attention_size(const embr_model *m, int side, int *heads, int *grid) {
  if (!m || m->ops != &embr__dino_vit_ops) return embr_error(EMBR_EINVAL, "attention maps: the model is not a ViT");
  int patch = m->p.vision.patch;
  if (side == 0) side = m->p.input.height;
  if (side < patch || side % patch || side > 8192)
    return embr_error(EMBR_EINVAL, "attention maps: image side %d is not a positive multiple of the patch %d", side, patch);
  if (heads) *heads = m->p.vision.heads;
  if (grid) *grid = side / patch;
  return 0;
}

typedef struct idx_val {
  float v;
  int i;
} idx_val;

static int by_value(const void *a, const void *b) {
  const idx_val *x = a, *y = b;
  return x->v < y->v ? -1 : x->v > y->v ? 1 : x->i - y->i;
}

embr_status embr_attention_mask(const float *a, int n, float mass, uint8_t *keep) {
  if (!a || !keep || n < 1 || !(mass > 0 && mass <= 1)) return embr_error(EMBR_EINVAL, "attention mask: bad arguments (mass in (0, 1])");
  double total = 0;
  for (int i = 0; i < n; i++) {
    if (!(a[i] >= 0) || !isfinite(a[i])) return embr_error(EMBR_EINVAL, "attention mask: value %d is negative or not finite", i);
    total += a[i];
  }
  if (!(total > 0)) return embr_error(EMBR_EINVAL, "attention mask: all %d values are 0", n);
  idx_val *s = malloc(sizeof(idx_val) * (size_t)n);
  if (!s) return embr_error(EMBR_ENOMEM, "out of memory");
  for (int i = 0; i < n; i++) s[i] = (idx_val){a[i], i};
  qsort(s, (size_t)n, sizeof *s, by_value);
  double cum = 0;
  for (int k = 0; k < n; k++) {
    cum += s[k].v / total;
    keep[s[k].i] = cum > 1.0 - mass;
  }
  free(s);
  return 0;
}

/* One batch: forward with the class row of the last attention kept; maps and masks out. */
static int attention_batch(embr_model *m, const float *x, int nb, int side, float mass, float *maps, uint8_t *masks) {
  nn_ctx *ctx = &m->infer;
  int H = m->p.vision.heads, g = side / m->p.vision.patch, G = g * g;
  embr__nn_ctx_reset(ctx);
  ctx->keep_cls_attn = 1, ctx->cls_attn = NULL;
  nn_t *in = embr__nn_wrap(ctx, (float *)x, nb, 3, side, side);
  nn_t *t = embr__dino_vit_tokens(ctx, m->net, in);
  ctx->keep_cls_attn = 0;
  if (!t || !ctx->cls_attn || ctx->cls_attn_tokens != G + 1)
    return ctx->rc ? ctx->rc : embr_error(EMBR_ENOMEM, "out of memory");
  float *mean = malloc(sizeof(float) * (size_t)G);
  if (!mean) return embr_error(EMBR_ENOMEM, "out of memory");
  int rc = 0;
  for (int b = 0; b < nb && !rc; b++) {
    memset(mean, 0, sizeof(float) * (size_t)G);
    for (int h = 0; h < H && !rc; h++) {
      const float *row = ctx->cls_attn + ((int64_t)b * H + h) * (G + 1) + 1; /* keys 1..G: the patches */
      if (maps) memcpy(maps + ((int64_t)b * H + h) * G, row, sizeof(float) * (size_t)G);
      for (int i = 0; i < G; i++) mean[i] += row[i] / (float)H;
      if (masks) rc = embr_attention_mask(row, G, mass, masks + ((int64_t)b * (H + 1) + h) * G);
    }
    if (masks && !rc) rc = embr_attention_mask(mean, G, mass, masks + ((int64_t)b * (H + 1) + H) * G);
  }
  free(mean);
  return rc;
}

embr_status embr_model_attention(embr_model *m, const float *x, int64_t n, int side, float mass, float *maps,
                                 uint8_t *masks) {
  int H, g;
  int rc = embr_model_attention_size(m, side, &H, &g);
  if (rc) return rc;
  if (side == 0) side = m->p.input.height;
  if (n < 0 || (n && !x) || !(mass > 0 && mass <= 1))
    return embr_error(EMBR_EINVAL, "attention maps: bad image count, images or mass (in (0, 1])");
  m->infer.nt = embr_threads_resolve(m->n_threads);
  int64_t per = (int64_t)3 * side * side, G = (int64_t)g * g;
  enum { BATCH = 8 };
  for (int64_t i = 0; i < n && !rc; i += BATCH) {
    int nb = (int)(n - i < BATCH ? n - i : BATCH);
    rc = attention_batch(m, x + i * per, nb, side, mass, maps ? maps + i * H * G : NULL,
                         masks ? masks + i * (H + 1) * G : NULL);
  }
  embr__nn_ctx_reset(&m->infer);
  return rc;
}

/* A black-red-yellow-white ramp at t in [0, 1]. */
static void heat(float t, float *rgb) {
  t = t < 0 ? 0 : t > 1 ? 1 : t;
  rgb[0] = fminf(1.0f, 3 * t), rgb[1] = fminf(1.0f, fmaxf(0.0f, 3 * t - 1)), rgb[2] = fmaxf(0.0f, 3 * t - 2);
}

embr_status embr_attention_picture(const embr_image *view, const float *maps, const uint8_t *masks, int heads, int grid,
                                   embr_image *out) {
  memset(out, 0, sizeof *out);
  if (!view || !view->px || view->width != view->height || (view->channels != 1 && view->channels != 3) || !maps ||
      heads < 1 || heads > 1024 || grid < 1 || grid > view->width)
    return embr_error(EMBR_EINVAL, "attention picture: bad view, maps or sizes");
  int S = view->width, gap = 4, panels = 1 + heads + (masks ? 1 : 0);
  int64_t W = (int64_t)panels * S + (int64_t)(panels - 1) * gap;
  if (W > EMBR_IMAGE_MAX_SIDE) return embr_error(EMBR_EINVAL, "attention picture: %lld px wide is too wide", (long long)W);
  out->px = embr_alloc((size_t)W * (size_t)S * 3);
  if (!out->px) return embr_error(EMBR_ENOMEM, "out of memory");
  out->width = (int)W, out->height = S, out->channels = 3;
  memset(out->px, 255, (size_t)W * (size_t)S * 3);
  int64_t G = (int64_t)grid * grid;
  for (int p = 0; p < panels; p++) {
    const float *map = p >= 1 && p <= heads ? maps + (p - 1) * G : NULL;
    const uint8_t *mask = p == heads + 1 ? masks + (int64_t)heads * G : NULL;
    float mx = 0;
    for (int64_t i = 0; map && i < G; i++) mx = fmaxf(mx, map[i]);
    for (int y = 0; y < S; y++)
      for (int x = 0; x < S; x++) {
        const uint8_t *src = view->px + ((int64_t)y * S + x) * view->channels;
        float c[3];
        for (int k = 0; k < 3; k++) c[k] = src[view->channels == 3 ? k : 0] / 255.0f;
        int64_t cell = (int64_t)(y * grid / S) * grid + x * grid / S; /* the patch under the pixel */
        if (map) {
          float h[3];
          heat(mx > 0 ? map[cell] / mx : 0, h);
          for (int k = 0; k < 3; k++) c[k] = 0.35f * c[k] + 0.65f * h[k];
        } else if (mask && !mask[cell]) {
          for (int k = 0; k < 3; k++) c[k] *= 0.25f;
        }
        uint8_t *dst = out->px + ((int64_t)y * W + (int64_t)p * (S + gap) + x) * 3;
        for (int k = 0; k < 3; k++) dst[k] = (uint8_t)lrintf(c[k] * 255.0f);
      }
  }
  return 0;
}

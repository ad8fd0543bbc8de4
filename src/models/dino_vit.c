/* The Vision Transformer of DINO (Caron et al. 2021) and DINOv2 (Oquab et al. 2023) as embr's
 * "vit" network: timm's layout with facebookresearch's parameter names (patch_embed.proj,
 * cls_token, pos_embed, blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}, norm;
 * DINOv2's blocks.N.ls1.gamma / ls2.gamma), so their released backbones load by name. The
 * embedding is the class token after the final norm (the DINO head's input), or with
 * EMBR_POOL_CLS_AVG that token followed by the mean patch token (DINO's linear evaluation). Any
 * square input that is a multiple of the patch runs: the positions are resampled bicubic as the
 * references do (embr__nn_pos_resample), so one network embeds global and local crops. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/dino_vit.h"

typedef struct vit_preset {
  const char *name;
  int size, pos_size, width, layers, heads, patch, layer_scale;
} vit_preset;

static const vit_preset presets[] = {
    {"vit-tiny", 28, 28, 192, 6, 3, 4, 0},
    {"vit-s-16", 224, 224, 384, 12, 6, 16, 0},
    {"vit-b-16", 224, 224, 768, 12, 12, 16, 0},
    {"dinov2-vit-s-14", 224, 518, 384, 12, 6, 14, 1},
};

int embr__dino_vit_arch(const char *arch) {
  if (!arch) return 0;
  if (!strcmp(arch, "vit")) return 1;
  for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
    if (!strcmp(arch, presets[i].name)) return 1;
  return 0;
}

/* DINO's eval_linear / eval_knn transform: Resize(256, bicubic) of the short side,
 * CenterCrop(224), ImageNet's mean and std; other sizes keep the ratio 256 / 224. Alpha is
 * composited on white (the reference's convert("RGB") keeps the colour under it instead). */
embr_image_spec embr__dino_vit_spec(int size) {
  embr_image_spec s = embr_image_spec_default();
  static const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
  s.channels = 3, s.height = s.width = size;
  for (int c = 0; c < 3; c++) s.mean[c] = mean[c], s.std[c] = sd[c];
  s.resize = EMBR_RESIZE_BICUBIC;
  s.crop = EMBR_CROP_CENTER;
  s.short_side = (int)lround(size * 256.0 / 224.0);
  s.alpha = EMBR_ALPHA_WHITE;
  return s;
}

int embr__dino_vit_fill(embr_model_params *p) {
  for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
    const vit_preset *c = &presets[i];
    if (strcmp(p->arch, c->name)) continue;
    p->vision = (embr_transformer_params){c->width, c->layers, c->heads, c->patch, 0, 0};
    p->embedding_dim = c->width;
    p->input = embr__dino_vit_spec(c->size);
    p->pos_size = c->pos_size, p->layer_scale = c->layer_scale;
    return 1;
  }
  return 0;
}

int embr__dino_vit_check(const embr_model_params *p) {
  const embr_transformer_params *t = &p->vision;
  if (t->width < 1 || t->width > 8192 || t->layers < 1 || t->layers > 256 || t->heads < 1 || t->width % t->heads ||
      t->patch < 1 || t->patch > 1024)
    return embr_error(EMBR_EINVAL, "ViT: width %d, %d layers, %d heads, patch %d out of range (width a multiple of heads)",
                      t->width, t->layers, t->heads, t->patch);
  if (p->input.channels != 3 || p->input.height != p->input.width || p->input.height % t->patch || p->input.height > 8192)
    return embr_error(EMBR_EINVAL, "the ViT's input must be 3 x S x S with S a multiple of the patch %d (got %dx%dx%d)",
                      t->patch, p->input.channels, p->input.height, p->input.width);
  int pos = p->pos_size ? p->pos_size : p->input.height;
  if (pos < t->patch || pos % t->patch || pos / t->patch > 1024)
    return embr_error(EMBR_EINVAL, "ViT positions for %d px: not a multiple of the patch %d (up to 1024 a side)", pos, t->patch);
  if (!(p->drop_path >= 0 && p->drop_path < 1)) return embr_error(EMBR_EINVAL, "drop-path rate %g is not in [0, 1)", (double)p->drop_path);
  if (p->embedding_dim != t->width && p->embedding_dim != 2 * t->width)
    return embr_error(EMBR_EINVAL, "the ViT's embedding is its width %d (or twice it, class + mean patch token), not %d",
                      t->width, p->embedding_dim);
  return 0;
}

static int build(nn_params *P, const embr_model_params *p, void **out) {
  dino_vit *d = embr_calloc(1, sizeof(dino_vit));
  if (!d) return embr_error(EMBR_ENOMEM, "out of memory");
  *out = d;
  const embr_transformer_params *t = &p->vision;
  vit_cfg c = {p->input.height, t->patch, t->width, t->layers, t->heads, 0, TF_GELU, 1,
               p->pos_size ? p->pos_size : p->input.height, p->layer_scale ? 1 : 0, p->drop_path};
  d->pool = p->embedding_dim == 2 * t->width ? EMBR_POOL_CLS_AVG : EMBR_POOL_CLS;
  return embr__vit_make(P, &d->v, NULL, &c);
}

nn_t *embr__dino_vit_tokens(nn_ctx *ctx, const dino_vit *d, nn_t *x) { return embr__vit_tokens_forward(ctx, &d->v, x); }

static nn_t *forward(nn_ctx *ctx, const void *dn, nn_t *x) {
  const dino_vit *d = dn;
  nn_t *t = embr__vit_tokens_forward(ctx, &d->v, x);
  return d->pool == EMBR_POOL_CLS_AVG ? embr__nn_cls_avg(ctx, t) : embr__nn_take_token(ctx, t, NULL);
}

static void destroy(void *dn) {
  dino_vit *d = dn;
  if (!d) return;
  embr__vit_free(&d->v);
  embr_free(d);
}

const net_ops embr__dino_vit_ops = {"vit", build, forward, destroy};

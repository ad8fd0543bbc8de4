/* The ViT image tower (Dosovitskiy et al. 2021, in the pre-LN form OpenAI's CLIP uses): patches
 * by a stride-P convolution, a class token and learned positions, ln_pre, the transformer, then
 * ln_post on the class token and the projection into the joint space. Names as OpenAI's state
 * dict (visual.conv1.weight, visual.class_embedding, visual.positional_embedding, ...). */
#include <math.h>
#include <stdio.h>

#include "models/vit.h"

/* DINO's VisionTransformer (timm's layout), parameters without a prefix as its state dict. */
static int make_timm(nn_params *P, vit *v, const vit_cfg *c) {
  if (c->pos_size < c->patch || c->pos_size % c->patch)
    return embr_error(EMBR_EINVAL, "positional grid %d px is not a multiple of the patch size %d", c->pos_size, c->patch);
  int M = c->pos_size / c->patch, w = c->width, rc = 0;
  rc |= embr__nn_conv_make(P, &v->patch, "patch_embed.proj", 3, w, c->patch, c->patch, 0, 1, 1);
  int64_t s1[3] = {1, 1, w}, s2[3] = {1, (int64_t)M * M + 1, w};
  if ((v->cls = embr__nn_param_add(P, "cls_token", 3, s1, NN_NODECAY, NN_INIT_NORMAL, 0.02f)) < 0) rc = EMBR_ENOMEM;
  if ((v->pos = embr__nn_param_add(P, "pos_embed", 3, s2, NN_NODECAY, NN_INIT_NORMAL, 0.02f)) < 0) rc = EMBR_ENOMEM;
  if (rc) return rc < 0 ? rc : EMBR_ENOMEM;
  if ((rc = embr__tf_make_timm(P, &v->tf, "blocks", w, c->layers, c->heads, c->layer_scale, c->drop_path))) return rc;
  if ((rc = embr__nn_ln_make(P, &v->ln_post, "norm", w))) return rc;
  v->ln_post.eps = 1e-6f;
  v->proj.w = -1;
  return 0;
}

int embr__vit_make(nn_params *P, vit *v, const char *prefix, const vit_cfg *c) {
  char n[128];
  if (c->timm) {
    if (c->patch < 1 || c->size % c->patch)
      return embr_error(EMBR_EINVAL, "image size %d is not a multiple of the patch size %d", c->size, c->patch);
    v->cfg = *c;
    return make_timm(P, v, c);
  }
  if (c->patch < 1 || c->size % c->patch)
    return embr_error(EMBR_EINVAL, "image size %d is not a multiple of the patch size %d", c->size, c->patch);
  v->cfg = *c;
  int g = c->size / c->patch, w = c->width, rc = 0;
  float scale = 1.0f / sqrtf((float)w);
  snprintf(n, sizeof n, "%s.conv1", prefix);
  rc |= embr__nn_conv_make(P, &v->patch, n, 3, w, c->patch, c->patch, 0, 1, 0);
  int64_t s1[1] = {w}, s2[2] = {(int64_t)g * g + 1, w};
  snprintf(n, sizeof n, "%s.class_embedding", prefix);
  if ((v->cls = embr__nn_param_add(P, n, 1, s1, NN_NODECAY, NN_INIT_NORMAL, scale)) < 0) rc = EMBR_ENOMEM;
  snprintf(n, sizeof n, "%s.positional_embedding", prefix);
  if ((v->pos = embr__nn_param_add(P, n, 2, s2, NN_NODECAY, NN_INIT_NORMAL, scale)) < 0) rc = EMBR_ENOMEM;
  snprintf(n, sizeof n, "%s.ln_pre", prefix), rc |= embr__nn_ln_make(P, &v->ln_pre, n, w);
  if (rc) return rc < 0 ? rc : EMBR_ENOMEM;
  snprintf(n, sizeof n, "%s.transformer", prefix);
  if ((rc = embr__tf_make(P, &v->tf, n, w, c->layers, c->heads, 0, c->act))) return rc;
  snprintf(n, sizeof n, "%s.ln_post", prefix), rc |= embr__nn_ln_make(P, &v->ln_post, n, w);
  v->proj.w = -1;
  if (c->out > 0) {
    snprintf(n, sizeof n, "%s.proj", prefix);
    rc |= embr__nn_dense_make(P, &v->proj, n, NULL, w, c->out, 1, scale);
  }
  return rc ? (rc < 0 ? rc : EMBR_ENOMEM) : 0;
}

void embr__vit_free(vit *v) {
  if (v) embr__tf_free(&v->tf);
}

nn_t *embr__vit_forward(nn_ctx *ctx, const vit *v, nn_t *x) {
  if (x && (x->c != 3 || x->h != v->cfg.size || x->w != v->cfg.size)) {
    ctx->rc = embr_error(EMBR_EINVAL, "the ViT expects 3x%dx%d images, got %dx%dx%d", v->cfg.size, v->cfg.size, x->c,
                         x->h, x->w);
    return NULL;
  }
  nn_t *t = embr__nn_vit_tokens(ctx, embr__nn_conv2d(ctx, x, &v->patch), v->cls, v->pos);
  t = embr__tf_forward(ctx, &v->tf, embr__nn_layernorm(ctx, t, &v->ln_pre));
  /* ln_post is per token: normalising every token and taking the class token equals OpenAI's
   * ln_post(x[:, 0, :]), and DINO reads the other tokens normalised too. */
  nn_t *y = embr__nn_take_token(ctx, embr__nn_layernorm(ctx, t, &v->ln_post), NULL);
  return v->cfg.out > 0 ? embr__nn_dense_f(ctx, y, &v->proj) : y;
}

nn_t *embr__vit_tokens_forward(nn_ctx *ctx, const vit *v, nn_t *x) {
  if (!x) return NULL;
  const vit_cfg *c = &v->cfg;
  if (x->c != 3 || x->h != x->w || x->h < c->patch || x->h % c->patch) {
    ctx->rc = embr_error(EMBR_EINVAL, "the ViT expects square 3-channel images whose side is a multiple of %d, got %dx%dx%d",
                         c->patch, x->c, x->h, x->w);
    return NULL;
  }
  nn_t *pos = embr__nn_pos_resample(ctx, v->pos, c->pos_size / c->patch, x->h / c->patch, c->width);
  nn_t *t = embr__nn_vit_tokens_pos(ctx, embr__nn_conv2d(ctx, x, &v->patch), v->cls, pos);
  return embr__nn_layernorm(ctx, embr__tf_forward(ctx, &v->tf, t), &v->ln_post);
}

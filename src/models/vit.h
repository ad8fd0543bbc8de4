/* The Vision Transformer image tower (internal), as OpenAI's CLIP VisionTransformer: a stride-P
 * patch convolution without bias, a class token, learned positional embeddings, ln_pre, a pre-LN
 * transformer, ln_post on the class token, and an optional projection without bias; or (cfg.timm)
 * as DINO's / timm's VisionTransformer (see vit_cfg). */
#ifndef EMBR_MODELS_VIT_H
#define EMBR_MODELS_VIT_H

#include "models/transformer.h"

typedef struct vit_cfg {
  int size, patch, width, layers, heads, out; /* out: projection size, 0 = none */
  tf_act act;
  /* timm: the DINO / timm layout instead of OpenAI's: patch_embed.proj (with bias), cls_token
   * (1, 1, D), pos_embed (1, 1 + M*M, D) for pos_size / patch = M positions a side, blocks.N.*
   * (embr__tf_make_timm, optional LayerScale and drop-path), a final `norm` (eps 1e-6), no ln_pre,
   * no projection; any square input that is a multiple of the patch, the positions resampled. */
  int timm, pos_size, layer_scale;
  float drop_path;
} vit_cfg;

typedef struct vit {
  vit_cfg cfg;
  nn_conv patch;
  int64_t cls, pos;
  nn_ln ln_pre, ln_post;
  tf_stack tf;
  nn_dense proj;
} vit;

/* Registers the tower's parameters under prefix ("visual" gives visual.conv1.weight, ...). The
 * input is 3 x size x size; size must be a multiple of patch. */
int embr__vit_make(nn_params *P, vit *v, const char *prefix, const vit_cfg *c);
void embr__vit_free(vit *v);
/* images (B, 3, size, size) -> (B, out or width, 1, 1). */
nn_t *embr__vit_forward(nn_ctx *ctx, const vit *v, nn_t *x);
/* timm layout: images (B, 3, S, S), S any multiple of the patch -> every token after the final
 * norm, (B, 1 + (S/patch)^2, 1, width): the class token first, then the patches row-major. */
nn_t *embr__vit_tokens_forward(nn_ctx *ctx, const vit *v, nn_t *x);

#endif

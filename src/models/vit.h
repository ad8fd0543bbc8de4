/* The Vision Transformer image tower (internal), as OpenAI's CLIP VisionTransformer: a stride-P
 * patch convolution without bias, a class token, learned positional embeddings, ln_pre, a pre-LN
 * transformer, ln_post on the class token, and an optional projection without bias. */
#ifndef EMBR_MODELS_VIT_H
#define EMBR_MODELS_VIT_H

#include "models/transformer.h"

typedef struct vit_cfg {
  int size, patch, width, layers, heads, out; /* out: projection size, 0 = none */
  tf_act act;
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

#endif

/* The pre-LN transformer (internal): residual blocks as OpenAI's CLIP writes them
 * (ln_1, attn.in_proj_weight/bias, attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj), shared by the ViT
 * image tower and the CLIP text tower. Each block owns its residual wiring. */
#ifndef EMBR_MODELS_TRANSFORMER_H
#define EMBR_MODELS_TRANSFORMER_H

#include "nn/nn.h"

typedef enum tf_act { TF_GELU = 1, TF_QUICK_GELU = 2 } tf_act;

typedef struct tf_block {
  nn_ln ln1, ln2;
  nn_dense qkv, out, fc, proj;
} tf_block;

typedef struct tf_stack {
  tf_block *b;
  int layers, width, heads, causal;
  tf_act act;
} tf_stack;

/* Registers `layers` blocks named prefix.resblocks.N.* (prefix "visual.transformer" or
 * "transformer"), MLP width 4 x width, initialised as OpenAI's CLIP does (normal, std scaled by
 * width and depth). width must be a multiple of heads. */
int embr__tf_make(nn_params *P, tf_stack *s, const char *prefix, int width, int layers, int heads, int causal,
                  tf_act act);
void embr__tf_free(tf_stack *s);
/* x (B, T, 1, width) through every block. */
nn_t *embr__tf_forward(nn_ctx *ctx, const tf_stack *s, nn_t *x);

#endif

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
  int64_t ls1, ls2; /* LayerScale of the attention and MLP branches, or -1 */
  float drop_path;  /* stochastic depth of both branches in training (0: none) */
} tf_block;

typedef struct tf_stack {
  tf_block *b;
  int layers, width, heads, causal;
  tf_act act;
} tf_stack;

/* The same block in timm's / facebookresearch DINO's names (prefix.N.norm1, attn.qkv, attn.proj,
 * norm2, mlp.fc1, mlp.fc2; DINOv2's ls1.gamma / ls2.gamma when layer_scale), LayerNorm eps 1e-6,
 * exact GELU, initialised as their code does (linear weights normal std 0.02 — theirs truncated
 * at +-2 std — biases 0, LayerScale 1e-5). Block i's drop-path rate is drop_path * i / (layers -
 * 1), the linear rule of both references (torch.linspace(0, drop_path, depth)). */
int embr__tf_make_timm(nn_params *P, tf_stack *s, const char *prefix, int width, int layers, int heads,
                       int layer_scale, float drop_path);

/* Registers `layers` blocks named prefix.resblocks.N.* (prefix "visual.transformer" or
 * "transformer"), MLP width 4 x width, initialised as OpenAI's CLIP does (normal, std scaled by
 * width and depth). width must be a multiple of heads. */
int embr__tf_make(nn_params *P, tf_stack *s, const char *prefix, int width, int layers, int heads, int causal,
                  tf_act act);
void embr__tf_free(tf_stack *s);
/* x (B, T, 1, width) through every block. */
nn_t *embr__tf_forward(nn_ctx *ctx, const tf_stack *s, nn_t *x);

#endif

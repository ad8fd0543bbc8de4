/* DINO's projection head (internal), as facebookresearch/dino's DINOHead with its defaults
 * (nlayers 3, use_bn False, norm_last_layer True): Linear(in, hidden) GELU Linear(hidden, hidden)
 * GELU Linear(hidden, bottleneck), L2 normalisation, then the weight-normalised last layer of
 * `out` (K) outputs with its gain frozen at 1. Parameter names are the reference's
 * (prefix.mlp.0/2/4.weight|bias, prefix.last_layer.weight_g|weight_v): with prefix "head" a DINO
 * checkpoint's head tensors load by name. The MLP's weights start normal(0.02) (DINO's
 * trunc_normal at +-2 truncates nothing that matters), biases 0; the last layer PyTorch's default. */
#ifndef EMBR_MODELS_DINO_H
#define EMBR_MODELS_DINO_H

#include "nn/nn.h"

typedef struct dino_head {
  int in, hidden, bottleneck, out;
  nn_dense mlp[3];
  nn_wnlin last;
} dino_head;

int embr__dino_head_make(nn_params *P, dino_head *h, const char *prefix, int in, int hidden, int bottleneck, int out);
/* x (n, in, 1, 1) -> (n, out, 1, 1). */
nn_t *embr__dino_head_forward(nn_ctx *ctx, const dino_head *h, nn_t *x);
/* 1 when the parameter belongs to the last layer (its gradient is dropped while it is frozen). */
int embr__dino_is_last_layer(const char *name);

#endif

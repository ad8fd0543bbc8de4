/* Winograd F(2x2, 3x3) forward convolution (internal; see winograd.c). */
#ifndef EMBR_NN_WINOGRAD_H
#define EMBR_NN_WINOGRAD_H

#include "nn/nn.h"

/* Whether a convolution of this shape takes the Winograd path: 3x3, stride 1, padding 1, no
 * groups, at least 16 channels in and out (below that the transforms cost more than they save). */
int embr__winograd_applies(int k, int stride, int pad, int groups, int in, int out);
/* y = conv(x) (y allocated with the output shape). OpenBLAS must be single-threaded. */
int embr__winograd_conv(nn_ctx *ctx, const nn_conv *L, const nn_t *x, nn_t *y);

/* x->g += the input gradient of that convolution given y->g (a 3x3 convolution of y->g with
 * the kernel turned and the channels swapped). OpenBLAS must be single-threaded. */
int embr__winograd_backward_data(nn_ctx *ctx, const nn_conv *L, const nn_t *y, nn_t *x);

#endif

/* oneDNN convolutions for inference (internal; src/nn/dnnl.c). Built when CMake finds oneDNN
 * (Debian libdnnl-dev, EMBR_HAVE_DNNL); without it every entry reports "not available" and the
 * engine runs its own kernels, which stay the tested reference. */
#ifndef EMBR_NN_DNNL_H
#define EMBR_NN_DNNL_H

#include "nn/nn.h"

/* 1 when oneDNN is built in and not switched off by EMBR_DNNL=0 (read per call: the tests and
 * the benchmark compare both paths in one process). */
int embr__dnnl_enabled(void);

/* y = conv(x) with the batch norm bn (eval statistics; NULL: none) folded into the weights and
 * bias, then, on oneDNN's side, + res (NULL: none), then ReLU when relu is set, then PReLU when
 * prelu is not NULL (prelu_ch slopes: 1 shared or one per output channel); *prelu_apart set
 * when oneDNN has no fast kernel with PReLU in the chain and the caller must apply it. x may be NCHW or
 * NHWC or NN_BLK16 (x->nhwc); y is written in the layout the layer runs in (y->nhwc set): NHWC,
 * or oneDNN's blocked nChw16c for the layers its Winograd or blocked direct kernels run faster
 * (EMBR_DNNL_LAYOUT=nhwc keeps every layer NHWC, to compare); res must be NHWC or NN_BLK16 (it is
 * converted into y when its layout differs); res->d == y->d (the output written over the
 * residual) is allowed and saves a pass. Returns 0, EMBR_EUNSUPPORTED
 * (this layer has no optimised oneDNN kernel here: the caller uses the reference path), or an
 * error (ENOMEM). The folded, reordered weights and the primitive are cached per layer in P,
 * rebuilt when the parameter table's version, the input shape or the thread count change. */
int embr__dnnl_conv_fwd(nn_ctx *ctx, const nn_conv *L, const nn_bn *bn, const nn_t *x, nn_t *y, const nn_t *res,
                        int relu, const float *prelu, int prelu_ch, int *prelu_apart);

/* Copies src (n, c, h, w values) from layout `from` to layout `to` (NN_NCHW, NN_NHWC, NN_BLK16;
 * NN_BLK16 needs c a multiple of 16). */
void embr__nn_relayout_to(const float *src, int from, float *dst, int to, int n, int c, int h, int w, int nt);

void embr__dnnl_cache_free(nn_params *P);
/* Room in P's cache for nslot inference contexts running at once (nn_ctx.slot 0 .. nslot-1),
 * each with primitives of its own; called before they start (it is not thread-safe: a context
 * whose slot has no room grows the cache itself). 0 or EMBR_ENOMEM. */
int embr__dnnl_reserve(nn_params *P, int nslot);
/* Layers of P that hold a oneDNN primitive (tests: the fast path did run). */
int embr__dnnl_cached_layers(const nn_params *P);

#endif

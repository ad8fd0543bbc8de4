/* Convolution + batch norm + residual add + activation as one inference op (oneDNN: one pass,
 * every step a post-op of the convolution), with the
 * chain of reference ops as its definition and fallback; NHWC <-> NCHW for the ops that read
 * NCHW. */
#include <stdint.h>
#include <string.h>

#include "nn/dnnl.h"
#include "nn/nn.h"

nn_t *embr__nn_plain(nn_ctx *ctx, nn_t *x) {
  if (!x || !x->nhwc) return x;
  if (x->h * x->w == 1) { /* one pixel: both layouts are the same bytes */
    x->nhwc = 0;
    return x;
  }
  int rec = ctx->record;
  ctx->record = 0; /* nhwc tensors exist only in inference */
  nn_t *y = embr__nn_tensor(ctx, x->n, x->c, x->h, x->w);
  ctx->record = rec;
  if (!y) return NULL;
  embr__nn_relayout_to(x->d, x->nhwc, y->d, NN_NCHW, x->n, x->c, x->h, x->w, ctx->nt);
  return embr__nn_done(ctx, x, y);
}

/* PReLU in place over NHWC values: the channel is the fastest index. Branch-free: the sign of an
 * activation is a coin toss, and a branch on it mispredicts half the time, which made this pass
 * cost more than the convolution before it. The product is computed for every value and the
 * result picked by a bit mask (v > 0 ? v : a v exactly, NaN stays NaN), which the compiler
 * vectorises where a select on floats becomes a conditional store. */
static inline float pick(float v, float t) {
  uint32_t bv, bt, m = -(uint32_t)(v > 0);
  memcpy(&bv, &v, 4), memcpy(&bt, &t, 4);
  bv = (bv & m) | (bt & ~m);
  memcpy(&v, &bv, 4);
  return v;
}

static void prelu_nhwc(nn_ctx *ctx, nn_t *y, const nn_prelu *pr) {
  const float *restrict a = nn_pd(ctx, pr->a);
  const int c = y->c;
  const int64_t rows = (int64_t)y->n * y->h * y->w;
  float *restrict d = y->d;
  if (pr->ch == 1) {
    const float s = a[0];
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
    for (int64_t i = 0; i < rows * c; i++) d[i] = pick(d[i], s * d[i]);
    return;
  }
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int64_t p = 0; p < rows; p++) {
    float *restrict row = d + p * c;
    for (int k = 0; k < c; k++) row[k] = pick(row[k], a[k] * row[k]);
  }
}

static nn_t *reference(nn_ctx *ctx, nn_t *x, const nn_conv *L, const nn_bn *bn, nn_t *res, int act,
                       const nn_prelu *pr) {
  nn_t *y = embr__nn_conv2d(ctx, x, L);
  if (bn) y = embr__nn_batchnorm(ctx, y, bn);
  if (res) y = embr__nn_add(ctx, y, res);
  if (act == NN_ACT_RELU) return embr__nn_relu_(ctx, y);
  return act == NN_ACT_PRELU ? embr__nn_prelu_f(ctx, y, pr) : y;
}

nn_t *embr__nn_conv_bn_act(nn_ctx *ctx, nn_t *x, const nn_conv *L, const nn_bn *bn, nn_t *res, int act,
                           const nn_prelu *pr) {
  if (!x || ctx->rc) return NULL;
  if (ctx->record || ctx->training || !embr__dnnl_enabled() || x->c != L->in || (res && !res->nhwc))
    return reference(ctx, x, L, bn, res, act, pr);
  int oh = (x->h + 2 * L->pad - L->k) / L->stride + 1, ow = (x->w + 2 * L->pad - L->k) / L->stride + 1;
  if (oh < 1 || ow < 1 || (res && (res->n != x->n || res->c != L->out || res->h != oh || res->w != ow)) ||
      (act == NN_ACT_PRELU && pr->ch != 1 && pr->ch != L->out))
    return reference(ctx, x, L, bn, res, act, pr); /* it reports the error */
  /* A residual nobody else reads (not pinned, its buffer ours) takes the output in place. */
  int inplace = res && res->own && !res->pinned && res->d != x->d;
  nn_t *y = inplace ? embr__nn_wrap(ctx, res->d, x->n, L->out, oh, ow) : embr__nn_tensor(ctx, x->n, L->out, oh, ow);
  if (!y) return NULL;
  int pr_apart = 0;
  int rc = embr__dnnl_conv_fwd(ctx, L, bn, x, y, res, act == NN_ACT_RELU,
                               act == NN_ACT_PRELU ? nn_pd(ctx, pr->a) : NULL, act == NN_ACT_PRELU ? pr->ch : 0,
                               &pr_apart);
  if (rc == EMBR_EUNSUPPORTED) { /* no fast oneDNN kernel for this layer */
    if (!inplace) embr__nn_done(ctx, y, x); /* drops y's buffer (x stays) */
    return reference(ctx, x, L, bn, res, act, pr);
  }
  if (rc) {
    ctx->rc = rc;
    return NULL;
  }
  if (act == NN_ACT_PRELU && pr_apart) prelu_nhwc(ctx, y, pr);
  if (inplace) { /* y owns the buffer now */
    y->own = res->own;
    res->own = NULL, res->d = NULL;
  } else if (res) {
    embr__nn_done(ctx, res, y);
  }
  return embr__nn_done(ctx, x, y);
}

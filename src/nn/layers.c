/* Layers other than convolution: batch norm, activations (ReLU, PReLU, GELU, QuickGELU),
 * pooling, residual add, flatten, linear, dropout, L2 normalisation. Each has a forward op that
 * records a node and a backward function that accumulates into its inputs' and parameters'
 * gradients. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/threads.h"
#include "nn/nn.h"
#include "nn/vmath.h"

/* A node for ops with one input and one output, plus what backward needs. */
typedef struct unary {
  nn_t *x, *y;
  const void *L;
  float *aux;   /* per-op saved values */
  int32_t *idx; /* max pooling: the argmax of each output */
  int k, s, p;
  float f;
} unary;

static unary *record_unary(nn_ctx *ctx, nn_backward_fn fn, nn_t *x, nn_t *y, const void *L) {
  if (!ctx->record) return NULL;
  unary *u = embr__nn_alloc(ctx, sizeof(unary));
  if (!u) return NULL;
  memset(u, 0, sizeof(*u));
  u->x = x, u->y = y, u->L = L;
  embr__nn_record(ctx, fn, u, y, x, NULL);
  return u;
}

/* Reductions with eight independent partial sums (in double): a single running sum is a chain
 * of dependent adds the compiler may not reorder (no -ffast-math), one add per 4 cycles; eight
 * lanes vectorise. */
static double sum8(const float *x, int64_t n) {
  double a[8] = {0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) a[k] += x[i + k];
  double s = 0;
  for (; i < n; i++) s += x[i];
  for (int k = 0; k < 8; k++) s += a[k];
  return s;
}

/* sum (x - m)^2 */
static double sqdev8(const float *x, int64_t n, double m) {
  double a[8] = {0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) a[k] += (x[i + k] - m) * (x[i + k] - m);
  double s = 0;
  for (; i < n; i++) s += (x[i] - m) * (x[i] - m);
  for (int k = 0; k < 8; k++) s += a[k];
  return s;
}

/* sum g * (x - m) */
static double dotdev8(const float *g, const float *x, int64_t n, float m) {
  double a[8] = {0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) a[k] += (double)g[i + k] * (x[i + k] - m);
  double s = 0;
  for (; i < n; i++) s += (double)g[i] * (x[i] - m);
  for (int k = 0; k < 8; k++) s += a[k];
  return s;
}

/* sum over x <= 0 of g * x (the PReLU slope's gradient) */
static double dotneg8(const float *g, const float *x, int64_t n) {
  float a[8] = {0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) a[k] += g[i + k] * fminf(x[i + k], 0.0f);
  double s = 0;
  for (; i < n; i++) s += g[i] * fminf(x[i], 0.0f);
  for (int k = 0; k < 8; k++) s += a[k];
  return s;
}

/* ---- batch norm --------------------------------------------------------------------------------
 * aux: mean[c], invstd[c] of the statistics used (batch ones in training, running ones else). */

static void bn_backward(nn_ctx *ctx, void *node) {
  unary *u = node;
  const nn_bn *L = u->L;
  const nn_t *x = u->x, *y = u->y;
  int64_t hw = (int64_t)x->h * x->w, M = x->n * hw;
  const float *gamma = nn_pd(ctx, L->gamma);
  float *dg = nn_pg(ctx, L->gamma), *dbeta = nn_pg(ctx, L->beta);
  int train = (int)u->f;
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int c = 0; c < x->c; c++) {
    float mean = u->aux[c], inv = u->aux[x->c + c];
    double sdy = 0, sdyx = 0;
    for (int n = 0; n < x->n; n++) {
      const float *xs = x->d + ((int64_t)n * x->c + c) * hw, *dy = y->g + ((int64_t)n * x->c + c) * hw;
      sdy += sum8(dy, hw);
      sdyx += dotdev8(dy, xs, hw, mean) * inv;
    }
    dg[c] += (float)sdyx;
    dbeta[c] += (float)sdy;
    if (!x->g) continue;
    float k = gamma[c] * inv, a = train ? (float)(sdy / M) : 0.0f, b = train ? (float)(sdyx / M) : 0.0f;
    for (int n = 0; n < x->n; n++) {
      const float *xs = x->d + ((int64_t)n * x->c + c) * hw, *dy = y->g + ((int64_t)n * x->c + c) * hw;
      float *dx = x->g + ((int64_t)n * x->c + c) * hw;
      for (int64_t i = 0; i < hw; i++) dx[i] += k * (dy[i] - a - (xs[i] - mean) * inv * b);
    }
  }
}

static void bn_stats(nn_ctx *ctx, const nn_t *x, const nn_bn *L, float *aux) {
  int64_t hw = (int64_t)x->h * x->w, M = x->n * hw;
  float *rm = nn_pd(ctx, L->mean), *rv = nn_pd(ctx, L->var);
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int c = 0; c < x->c; c++) {
    if (!ctx->training) {
      aux[c] = rm[c];
      aux[x->c + c] = 1.0f / sqrtf(rv[c] + L->eps);
      continue;
    }
    double s = 0, ss = 0;
    for (int n = 0; n < x->n; n++) s += sum8(x->d + ((int64_t)n * x->c + c) * hw, hw);
    double mean = s / M;
    for (int n = 0; n < x->n; n++) ss += sqdev8(x->d + ((int64_t)n * x->c + c) * hw, hw, mean);
    double var = ss / M;
    aux[c] = (float)mean;
    aux[x->c + c] = (float)(1.0 / sqrt(var + L->eps));
    /* Running statistics as PyTorch keeps them: the unbiased variance. */
    rm[c] = (1 - L->momentum) * rm[c] + L->momentum * (float)mean;
    rv[c] = (1 - L->momentum) * rv[c] + L->momentum * (float)(M > 1 ? ss / (M - 1) : var);
  }
}

nn_t *embr__nn_batchnorm(nn_ctx *ctx, nn_t *x, const nn_bn *L) {
  if (!x) return NULL;
  x = embr__nn_plain(ctx, x);
  if (!x) return NULL;
  if (x->c != L->ch) {
    ctx->rc = embr_error(EMBR_EINVAL, "batch norm expects %d channels, got %d", L->ch, x->c);
    return NULL;
  }
  if (ctx->training && (int64_t)x->n * x->h * x->w < 2) {
    ctx->rc = embr_error(EMBR_EINVAL, "batch norm in training needs more than one value per channel (batch of 1?)");
    return NULL;
  }
  nn_t *y = embr__nn_tensor(ctx, x->n, x->c, x->h, x->w);
  float *aux = embr__nn_floats(ctx, 2 * (int64_t)x->c, 0);
  if (!y || !aux) return NULL;
  bn_stats(ctx, x, L, aux);
  int64_t hw = (int64_t)x->h * x->w;
  const float *gamma = nn_pd(ctx, L->gamma), *beta = nn_pd(ctx, L->beta);
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int64_t nc = 0; nc < (int64_t)x->n * x->c; nc++) {
    int c = (int)(nc % x->c);
    float k = gamma[c] * aux[x->c + c], b = beta[c] - aux[c] * k;
    const float *xs = x->d + nc * hw;
    float *ys = y->d + nc * hw;
    for (int64_t i = 0; i < hw; i++) ys[i] = xs[i] * k + b;
  }
  unary *u = record_unary(ctx, bn_backward, x, y, L);
  if (u) u->aux = aux, u->f = (float)ctx->training;
  return embr__nn_done(ctx, x, y);
}

int embr__nn_bn_make(nn_params *P, nn_bn *L, const char *prefix, int ch) {
  char name[160];
  int64_t shape[1] = {ch};
  *L = (nn_bn){ch, -1, -1, -1, -1, 1e-5f, 0.1f};
  static const char *suffix[4] = {"weight", "bias", "running_mean", "running_var"};
  static const nn_kind kind[4] = {NN_NODECAY, NN_NODECAY, NN_BUFFER, NN_BUFFER};
  static const nn_init init[4] = {NN_INIT_ONE, NN_INIT_ZERO, NN_INIT_ZERO, NN_INIT_ONE};
  int64_t *slot[4] = {&L->gamma, &L->beta, &L->mean, &L->var};
  for (int i = 0; i < 4; i++) {
    snprintf(name, sizeof(name), "%s.%s", prefix, suffix[i]);
    if ((*slot[i] = embr__nn_param_add(P, name, 1, shape, kind[i], init[i], 0)) < 0) return EMBR_ENOMEM;
  }
  return 0;
}

/* ---- activations ---------------------------------------------------------------------------- */

static void relu_backward(nn_ctx *ctx, void *node) {
  unary *u = node;
  if (!u->x->g) return;
  int64_t n = nn_numel(u->x);
  float *gx = u->x->g;
  const float *y = u->y->d, *gy = u->y->g;
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int64_t i = 0; i < n; i++) gx[i] += gy[i] * (float)(y[i] > 0.0f);
}

static nn_t *relu_impl(nn_ctx *ctx, nn_t *x, int inplace) {
  if (!x) return NULL;
  x = embr__nn_plain(ctx, x);
  if (!x) return NULL;
  nn_t *y;
  if (inplace) { /* the output takes over x's values: no new activation kept for backward */
    if (!(y = embr__nn_alloc(ctx, sizeof(nn_t)))) return NULL;
    *y = (nn_t){x->d, NULL, x->n, x->c, x->h, x->w, x->need_g, x->own, 0, 0};
    x->own = NULL;
  } else if (!(y = embr__nn_tensor(ctx, x->n, x->c, x->h, x->w))) {
    return NULL;
  }
  int64_t n = nn_numel(x);
  const float *xd = x->d;
  float *yd = y->d;
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  /* A compare and select, not fmaxf: without -ffast-math the compiler calls libm's fmaxf per
   * value (its signed-zero rules), where this becomes one vector max (0 for NaN, as fmaxf). */
  for (int64_t i = 0; i < n; i++) yd[i] = xd[i] > 0.0f ? xd[i] : 0.0f;
  record_unary(ctx, relu_backward, x, y, NULL);
  return inplace ? y : embr__nn_done(ctx, x, y);
}

nn_t *embr__nn_relu(nn_ctx *ctx, nn_t *x) { return relu_impl(ctx, x, 0); }
nn_t *embr__nn_relu_(nn_ctx *ctx, nn_t *x) { return relu_impl(ctx, x, 1); }

static void prelu_backward(nn_ctx *ctx, void *node) {
  unary *u = node;
  const nn_prelu *L = u->L;
  const nn_t *x = u->x;
  int64_t hw = (int64_t)x->h * x->w;
  const float *a = nn_pd(ctx, L->a);
  float *da = nn_pg(ctx, L->a);
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int c = 0; c < x->c; c++) {
    double s = 0;
    float ac = a[L->ch == 1 ? 0 : c];
    for (int n = 0; n < x->n; n++) {
      int64_t o = ((int64_t)n * x->c + c) * hw;
      const float *xs = x->d + o, *gy = u->y->g + o;
      s += dotneg8(gy, xs, hw);
      if (x->g) {
        float *gx = x->g + o;
        for (int64_t i = 0; i < hw; i++) { /* branch-free so that it vectorises */
          float pos = (float)(xs[i] > 0.0f);
          gx[i] += gy[i] * (pos + (1.0f - pos) * ac);
        }
      }
    }
#pragma omp atomic
    da[L->ch == 1 ? 0 : c] += (float)s;
  }
}

nn_t *embr__nn_prelu_f(nn_ctx *ctx, nn_t *x, const nn_prelu *L) {
  if (!x) return NULL;
  x = embr__nn_plain(ctx, x);
  if (!x) return NULL;
  if (L->ch != 1 && L->ch != x->c) {
    ctx->rc = embr_error(EMBR_EINVAL, "PReLU expects %d channels, got %d", L->ch, x->c);
    return NULL;
  }
  nn_t *y = embr__nn_tensor(ctx, x->n, x->c, x->h, x->w);
  if (!y) return NULL;
  int64_t hw = (int64_t)x->h * x->w;
  const float *a = nn_pd(ctx, L->a);
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int64_t nc = 0; nc < (int64_t)x->n * x->c; nc++) {
    float s = a[L->ch == 1 ? 0 : nc % x->c];
    const float *xs = x->d + nc * hw;
    float *ys = y->d + nc * hw;
    for (int64_t i = 0; i < hw; i++) ys[i] = fmaxf(xs[i], 0.0f) + s * fminf(xs[i], 0.0f); /* branch-free */
  }
  record_unary(ctx, prelu_backward, x, y, L);
  return embr__nn_done(ctx, x, y);
}

int embr__nn_prelu_make(nn_params *P, nn_prelu *L, const char *prefix, int ch) {
  char name[160];
  int64_t shape[1] = {ch};
  snprintf(name, sizeof(name), "%s.weight", prefix);
  L->ch = ch;
  return (L->a = embr__nn_param_add(P, name, 1, shape, NN_NODECAY, NN_INIT_CONST, 0.25f)) < 0 ? EMBR_ENOMEM : 0;
}

/* GELU, the exact form: x * Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2. erf is the vectorisable
 * float one of nn/vmath.h (within 2.5e-7 of libm's; libm's erf is a scalar call in double and
 * made GELU a visible part of a ViT's step). Backward recomputes Phi from x: d/dx = Phi(x) +
 * x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi). The kernels are compiled twice, for the
 * baseline (SSE2: 4 lanes) and for AVX2 (8 lanes, chosen at run time by embr_cpu_active); AVX2
 * without FMA, so no product is fused and both give the same bits. */
#define GELU_KERNELS(SUFFIX, ATTR)                                                                          \
  ATTR static void gelu_fwd##SUFFIX(const float *x, float *y, int64_t n) {                                 \
    for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + embr__nn_erff(x[i] * 0.70710678f));       \
  }                                                                                                          \
  ATTR static void gelu_bwd##SUFFIX(const float *x, const float *gy, float *gx, int64_t n) {               \
    for (int64_t i = 0; i < n; i++) {                                                                        \
      float v = x[i];                                                                                        \
      float cdf = 0.5f + 0.5f * embr__nn_erff(v * 0.70710678f), pdf = embr__nn_expf(-0.5f * v * v) * 0.39894228f; \
      gx[i] += gy[i] * (cdf + v * pdf);                                                                      \
    }                                                                                                        \
  }
GELU_KERNELS(_base, )
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
GELU_KERNELS(_avx2, __attribute__((target("avx2"))))
#define GELU_AVX2 1
#else
#define GELU_AVX2 0
#endif

/* Element range [*i0, *i1) of thread t of nt over n, in whole 64-byte lines. */
static void span_of(int64_t n, int t, int nt, int64_t *i0, int64_t *i1) {
  int64_t per = ((n + nt - 1) / nt + 15) & ~(int64_t)15;
  *i0 = per * t < n ? per * t : n;
  *i1 = per * (t + 1) < n ? per * (t + 1) : n;
}

static void gelu_backward(nn_ctx *ctx, void *node) {
  unary *u = node;
  if (!u->x->g) return;
  int64_t n = nn_numel(u->x);
  const float *xd = u->x->d, *gy = u->y->g;
  float *gx = u->x->g;
  int avx2 = GELU_AVX2 && embr_cpu_active() == EMBR_CPU_AVX2, nt = n >= 4096 ? ctx->nt : 1;
#pragma omp parallel num_threads(nt)
  {
    int64_t i0, i1;
    span_of(n, omp_get_thread_num(), omp_get_num_threads(), &i0, &i1);
#if GELU_AVX2
    if (avx2) gelu_bwd_avx2(xd + i0, gy + i0, gx + i0, i1 - i0);
    else
#endif
      gelu_bwd_base(xd + i0, gy + i0, gx + i0, i1 - i0);
  }
  (void)avx2;
}

nn_t *embr__nn_gelu(nn_ctx *ctx, nn_t *x) {
  if (!x) return NULL;
  nn_t *y = embr__nn_tensor(ctx, x->n, x->c, x->h, x->w);
  if (!y) return NULL;
  int64_t n = nn_numel(x);
  const float *xd = x->d;
  float *yd = y->d;
  int avx2 = GELU_AVX2 && embr_cpu_active() == EMBR_CPU_AVX2, nt = n >= 4096 ? ctx->nt : 1;
#pragma omp parallel num_threads(nt)
  {
    int64_t i0, i1;
    span_of(n, omp_get_thread_num(), omp_get_num_threads(), &i0, &i1);
#if GELU_AVX2
    if (avx2) gelu_fwd_avx2(xd + i0, yd + i0, i1 - i0);
    else
#endif
      gelu_fwd_base(xd + i0, yd + i0, i1 - i0);
  }
  (void)avx2;
  record_unary(ctx, gelu_backward, x, y, NULL);
  return embr__nn_done(ctx, x, y);
}

/* QuickGELU, OpenAI CLIP's activation: x * sigmoid(1.702 x), with the vectorisable exponential
 * (nn/vmath.h): the loops vectorise and run in parallel. Backward recomputes the sigmoid from x
 * rather than keeping it: d/dx = s + 1.702 x s (1 - s). */
static void quick_gelu_backward(nn_ctx *ctx, void *node) {
  unary *u = node;
  if (!u->x->g) return;
  int64_t n = nn_numel(u->x);
  const float *xd = u->x->d, *gy = u->y->g;
  float *gx = u->x->g;
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    float v = xd[i], s = 1.0f / (1.0f + embr__nn_expf(-1.702f * v));
    gx[i] += gy[i] * (s + 1.702f * v * s * (1.0f - s));
  }
}

nn_t *embr__nn_quick_gelu(nn_ctx *ctx, nn_t *x) {
  if (!x) return NULL;
  nn_t *y = embr__nn_tensor(ctx, x->n, x->c, x->h, x->w);
  if (!y) return NULL;
  int64_t n = nn_numel(x);
  const float *xd = x->d;
  float *yd = y->d;
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int64_t i = 0; i < n; i++) yd[i] = xd[i] / (1.0f + embr__nn_expf(-1.702f * xd[i]));
  record_unary(ctx, quick_gelu_backward, x, y, NULL);
  return embr__nn_done(ctx, x, y);
}

/* ---- pooling -------------------------------------------------------------------------------- */

static int pool_size(int in, int k, int s, int p) { return (in + 2 * p - k) / s + 1; }

static void maxpool_backward(nn_ctx *ctx, void *node) {
  unary *u = node;
  if (!u->x->g) return;
  int64_t n = nn_numel(u->y), ohw = (int64_t)u->y->h * u->y->w, hw = (int64_t)u->x->h * u->x->w;
  for (int64_t i = 0; i < n; i++) u->x->g[i / ohw * hw + u->idx[i]] += u->y->g[i];
}

/* Inference on NHWC input (oneDNN's layout between convolutions): the same maximum, channels the
 * fastest index, so the pass stays in that layout (no round trip through NCHW) and vectorises
 * over channels. A window always holds at least one pixel (p < k). */
static nn_t *maxpool_nhwc(nn_ctx *ctx, nn_t *x, int k, int s, int p, int oh, int ow) {
  nn_t *y = embr__nn_tensor(ctx, x->n, x->c, oh, ow);
  if (!y) return NULL;
  y->nhwc = 1;
  const int c = x->c, h = x->h, w = x->w;
  const float *xd = x->d;
  float *yd = y->d;
#pragma omp parallel for num_threads(ctx->nt) schedule(static) collapse(2)
  for (int b = 0; b < x->n; b++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++) {
        float *out = yd + (((int64_t)b * oh + oy) * ow + ox) * c;
        int first = 1;
        for (int i = 0; i < k; i++)
          for (int j = 0; j < k; j++) {
            int yy = oy * s - p + i, xx = ox * s - p + j;
            if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
            const float *in = xd + (((int64_t)b * h + yy) * w + xx) * c;
            if (first)
              for (int q = 0; q < c; q++) out[q] = in[q];
            else
              for (int q = 0; q < c; q++) out[q] = in[q] > out[q] ? in[q] : out[q];
            first = 0;
          }
      }
  return embr__nn_done(ctx, x, y);
}

nn_t *embr__nn_maxpool(nn_ctx *ctx, nn_t *x, int k, int s, int p) {
  if (!x) return NULL;
  if (x->nhwc == NN_NHWC && !ctx->record && p < k && pool_size(x->h, k, s, p) >= 1 && pool_size(x->w, k, s, p) >= 1)
    return maxpool_nhwc(ctx, x, k, s, p, pool_size(x->h, k, s, p), pool_size(x->w, k, s, p));
  x = embr__nn_plain(ctx, x);
  if (!x) return NULL;
  int oh = pool_size(x->h, k, s, p), ow = pool_size(x->w, k, s, p);
  if (oh < 1 || ow < 1) {
    ctx->rc = embr_error(EMBR_EINVAL, "input %dx%d too small for %dx%d pooling", x->h, x->w, k, k);
    return NULL;
  }
  nn_t *y = embr__nn_tensor(ctx, x->n, x->c, oh, ow);
  int32_t *idx = embr__nn_alloc(ctx, sizeof(int32_t) * (size_t)nn_numel(y));
  if (!y || !idx) return NULL;
  int64_t hw = (int64_t)x->h * x->w, ohw = (int64_t)oh * ow;
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int64_t nc = 0; nc < (int64_t)x->n * x->c; nc++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++) {
        float best = -INFINITY;
        int32_t at = -1;
        for (int i = 0; i < k; i++)
          for (int j = 0; j < k; j++) {
            int yy = oy * s - p + i, xx = ox * s - p + j;
            if (yy < 0 || yy >= x->h || xx < 0 || xx >= x->w) continue;
            float v = x->d[nc * hw + (int64_t)yy * x->w + xx];
            if (at < 0 || v > best) best = v, at = yy * x->w + xx;
          }
        y->d[nc * ohw + (int64_t)oy * ow + ox] = best;
        idx[nc * ohw + (int64_t)oy * ow + ox] = at;
      }
  unary *u = record_unary(ctx, maxpool_backward, x, y, NULL);
  if (u) u->idx = idx;
  return embr__nn_done(ctx, x, y);
}

static void avgpool_backward(nn_ctx *ctx, void *node) {
  unary *u = node;
  const nn_t *x = u->x, *y = u->y;
  if (!x->g) return;
  int k = u->k, s = u->s, p = u->p;
  int64_t hw = (int64_t)x->h * x->w, ohw = (int64_t)y->h * y->w;
  float inv = 1.0f / (float)(k * k);
  for (int64_t nc = 0; nc < (int64_t)x->n * x->c; nc++)
    for (int oy = 0; oy < y->h; oy++)
      for (int ox = 0; ox < y->w; ox++) {
        float gy = y->g[nc * ohw + (int64_t)oy * y->w + ox] * inv;
        for (int i = 0; i < k; i++)
          for (int j = 0; j < k; j++) {
            int yy = oy * s - p + i, xx = ox * s - p + j;
            if (yy >= 0 && yy < x->h && xx >= 0 && xx < x->w) x->g[nc * hw + (int64_t)yy * x->w + xx] += gy;
          }
      }
}

nn_t *embr__nn_avgpool(nn_ctx *ctx, nn_t *x, int k, int s, int p) {
  if (!x) return NULL;
  x = embr__nn_plain(ctx, x);
  if (!x) return NULL;
  int oh = pool_size(x->h, k, s, p), ow = pool_size(x->w, k, s, p);
  if (oh < 1 || ow < 1) {
    ctx->rc = embr_error(EMBR_EINVAL, "input %dx%d too small for %dx%d pooling", x->h, x->w, k, k);
    return NULL;
  }
  nn_t *y = embr__nn_tensor(ctx, x->n, x->c, oh, ow);
  if (!y) return NULL;
  int64_t hw = (int64_t)x->h * x->w, ohw = (int64_t)oh * ow;
  float inv = 1.0f / (float)(k * k);
  for (int64_t nc = 0; nc < (int64_t)x->n * x->c; nc++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++) {
        float acc = 0;
        for (int i = 0; i < k; i++)
          for (int j = 0; j < k; j++) {
            int yy = oy * s - p + i, xx = ox * s - p + j;
            if (yy >= 0 && yy < x->h && xx >= 0 && xx < x->w) acc += x->d[nc * hw + (int64_t)yy * x->w + xx];
          }
        y->d[nc * ohw + (int64_t)oy * ow + ox] = acc * inv;
      }
  unary *u = record_unary(ctx, avgpool_backward, x, y, NULL);
  if (u) u->k = k, u->s = s, u->p = p;
  return embr__nn_done(ctx, x, y);
}

static void gap_backward(nn_ctx *ctx, void *node) {
  unary *u = node;
  if (!u->x->g) return;
  int64_t hw = (int64_t)u->x->h * u->x->w;
  for (int64_t nc = 0; nc < (int64_t)u->x->n * u->x->c; nc++) {
    float gy = u->y->g[nc] / (float)hw;
    for (int64_t i = 0; i < hw; i++) u->x->g[nc * hw + i] += gy;
  }
}

nn_t *embr__nn_global_avgpool(nn_ctx *ctx, nn_t *x) {
  if (!x) return NULL;
  x = embr__nn_plain(ctx, x);
  if (!x) return NULL;
  nn_t *y = embr__nn_tensor(ctx, x->n, x->c, 1, 1);
  if (!y) return NULL;
  int64_t hw = (int64_t)x->h * x->w;
  for (int64_t nc = 0; nc < (int64_t)x->n * x->c; nc++) {
    double s = 0;
    for (int64_t i = 0; i < hw; i++) s += x->d[nc * hw + i];
    y->d[nc] = (float)(s / hw);
  }
  record_unary(ctx, gap_backward, x, y, NULL);
  return embr__nn_done(ctx, x, y);
}

/* ---- residual add, flatten ------------------------------------------------------------------- */

typedef struct add_node {
  nn_t *a, *b, *y;
} add_node;

static void add_backward(nn_ctx *ctx, void *node) {
  add_node *an = node;
  int64_t n = nn_numel(an->y);
  const float *gy = an->y->g;
  float *ga = an->a->g, *gb = an->b->g;
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    if (ga) ga[i] += gy[i];
    if (gb) gb[i] += gy[i];
  }
}

nn_t *embr__nn_add(nn_ctx *ctx, nn_t *a, nn_t *b) {
  if (!a || !b) return NULL;
  if (a->nhwc != b->nhwc) a = embr__nn_plain(ctx, a), b = embr__nn_plain(ctx, b);
  if (!a || !b) return NULL;
  if (nn_numel(a) != nn_numel(b) || a->c != b->c) {
    ctx->rc = embr_error(EMBR_EINVAL, "residual add of different shapes");
    return NULL;
  }
  nn_t *y = embr__nn_tensor(ctx, a->n, a->c, a->h, a->w);
  if (!y) return NULL;
  y->nhwc = a->nhwc; /* elementwise: any layout, the same for both */
  int64_t n = nn_numel(y);
  const float *ad = a->d, *bd = b->d;
  float *yd = y->d;
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int64_t i = 0; i < n; i++) yd[i] = ad[i] + bd[i];
  if (ctx->record) {
    add_node *an = embr__nn_alloc(ctx, sizeof(add_node));
    if (!an) return NULL;
    *an = (add_node){a, b, y};
    embr__nn_record(ctx, add_backward, an, y, a, b);
  }
  embr__nn_done(ctx, a, y);
  return embr__nn_done(ctx, b, y);
}

static void flatten_backward(nn_ctx *ctx, void *node) {
  unary *u = node;
  if (!u->x->g) return;
  int64_t n = nn_numel(u->x);
  for (int64_t i = 0; i < n; i++) u->x->g[i] += u->y->g[i];
}

nn_t *embr__nn_flatten(nn_ctx *ctx, nn_t *x) {
  if (!x) return NULL;
  x = embr__nn_plain(ctx, x);
  if (!x) return NULL;
  nn_t *y = embr__nn_alloc(ctx, sizeof(nn_t));
  if (!y) return NULL;
  /* The values are shared, not copied; in inference the view takes over the buffer. */
  *y = (nn_t){x->d, NULL, x->n, x->c * x->h * x->w, 1, 1, x->need_g, x->pinned ? NULL : x->own, 0, 0};
  if (!x->pinned) x->own = NULL;
  record_unary(ctx, flatten_backward, x, y, NULL);
  return y;
}

/* ---- linear ------------------------------------------------------------------------------------ */

static void linear_backward(nn_ctx *ctx, void *node) {
  unary *u = node;
  const nn_linear *L = u->L;
  int n = u->x->n;
  embr__blas_enter(ctx->nt); /* lone products: on OpenBLAS's threads */
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L->out, L->in, n, 1.0f, u->y->g, L->out, u->x->d, L->in, 1.0f,
              nn_pg(ctx, L->w), L->in);
  if (L->b >= 0) {
    float *db = nn_pg(ctx, L->b);
    for (int i = 0; i < n; i++)
      for (int o = 0; o < L->out; o++) db[o] += u->y->g[(int64_t)i * L->out + o];
  }
  if (u->x->g)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, L->in, L->out, 1.0f, u->y->g, L->out, nn_pd(ctx, L->w),
                L->in, 1.0f, u->x->g, L->in);
  embr__blas_leave();
}

nn_t *embr__nn_linear_f(nn_ctx *ctx, nn_t *x, const nn_linear *L) {
  if (!x) return NULL;
  x = embr__nn_plain(ctx, x);
  if (!x) return NULL;
  if (x->c * x->h * x->w != L->in) {
    ctx->rc = embr_error(EMBR_EINVAL, "linear layer expects %d inputs, got %d", L->in, x->c * x->h * x->w);
    return NULL;
  }
  nn_t *y = embr__nn_tensor(ctx, x->n, L->out, 1, 1);
  if (!y) return NULL;
  if (L->b >= 0)
    for (int i = 0; i < x->n; i++) memcpy(y->d + (int64_t)i * L->out, nn_pd(ctx, L->b), sizeof(float) * (size_t)L->out);
  embr__blas_enter(ctx->nt);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, x->n, L->out, L->in, 1.0f, x->d, L->in, nn_pd(ctx, L->w), L->in,
              L->b >= 0 ? 1.0f : 0.0f, y->d, L->out);
  embr__blas_leave();
  record_unary(ctx, linear_backward, x, y, L);
  return embr__nn_done(ctx, x, y);
}

int embr__nn_linear_make(nn_params *P, nn_linear *L, const char *prefix, int in, int out, int bias) {
  char name[160];
  *L = (nn_linear){in, out, -1, -1};
  int64_t shape[2] = {out, in};
  snprintf(name, sizeof(name), "%s.weight", prefix);
  /* PyTorch's default: uniform in +-1/sqrt(fan_in). */
  if ((L->w = embr__nn_param_add(P, name, 2, shape, NN_WEIGHT, NN_INIT_UNIFORM, 1.0f / sqrtf((float)in))) < 0) return EMBR_ENOMEM;
  if (bias) {
    snprintf(name, sizeof(name), "%s.bias", prefix);
    if ((L->b = embr__nn_param_add(P, name, 1, shape, NN_NODECAY, NN_INIT_UNIFORM, 1.0f / sqrtf((float)in))) < 0)
      return EMBR_ENOMEM;
  }
  return 0;
}

/* ---- dropout, L2 normalisation --------------------------------------------------------------- */

static void dropout_backward(nn_ctx *ctx, void *node) {
  unary *u = node;
  if (!u->x->g) return;
  int64_t n = nn_numel(u->x);
  for (int64_t i = 0; i < n; i++) u->x->g[i] += u->y->g[i] * u->aux[i];
}

nn_t *embr__nn_dropout(nn_ctx *ctx, nn_t *x, float p) {
  if (!x || !ctx->training || p <= 0) return x;
  nn_t *y = embr__nn_tensor(ctx, x->n, x->c, x->h, x->w);
  float *mask = embr__nn_floats(ctx, nn_numel(x), 0);
  if (!y || !mask) return NULL;
  int64_t n = nn_numel(x);
  for (int64_t i = 0; i < n; i++) {
    mask[i] = embr_rng_float(&ctx->rng) < p ? 0.0f : 1.0f / (1.0f - p);
    y->d[i] = x->d[i] * mask[i];
  }
  unary *u = record_unary(ctx, dropout_backward, x, y, NULL);
  if (u) u->aux = mask;
  return embr__nn_done(ctx, x, y);
}

static void l2norm_backward(nn_ctx *ctx, void *node) {
  unary *u = node;
  if (!u->x->g) return;
  int64_t d = u->x->c * (int64_t)u->x->h * u->x->w;
  for (int i = 0; i < u->x->n; i++) {
    const float *y = u->y->d + i * d, *gy = u->y->g + i * d;
    float *gx = u->x->g + i * d;
    double dot = 0;
    for (int64_t j = 0; j < d; j++) dot += y[j] * gy[j];
    float inv = u->aux[i];
    for (int64_t j = 0; j < d; j++) gx[j] += (float)((gy[j] - y[j] * dot) * inv);
  }
}

nn_t *embr__nn_l2norm(nn_ctx *ctx, nn_t *x) {
  if (!x) return NULL;
  x = embr__nn_plain(ctx, x);
  if (!x) return NULL;
  nn_t *y = embr__nn_tensor(ctx, x->n, x->c, x->h, x->w);
  float *inv = embr__nn_floats(ctx, x->n, 0);
  if (!y || !inv) return NULL;
  int64_t d = x->c * (int64_t)x->h * x->w;
  for (int i = 0; i < x->n; i++) {
    double s = 0;
    for (int64_t j = 0; j < d; j++) s += (double)x->d[i * d + j] * x->d[i * d + j];
    double nrm = sqrt(s) > 1e-12 ? sqrt(s) : 1e-12; /* F.normalize's floor */
    inv[i] = (float)(1.0 / nrm);
    for (int64_t j = 0; j < d; j++) y->d[i * d + j] = (float)(x->d[i * d + j] / nrm);
  }
  unary *u = record_unary(ctx, l2norm_backward, x, y, NULL);
  if (u) u->aux = inv;
  return embr__nn_done(ctx, x, y);
}

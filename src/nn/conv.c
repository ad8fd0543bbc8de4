/* 2-D convolution, forward and backward. General convolutions gather each image's input patches
 * into a column matrix (im2col; not needed for 1x1 stride-1 convolutions) and multiply by the
 * weights with a single-threaded GEMM per chunk of images (embr__nn_sgemm1: oneDNN's sgemm when
 * built in, else OpenBLAS), chunks spread over the threads; depthwise convolutions (groups = channels) have
 * too little work per channel for GEMM and run as direct loops. Backward rebuilds the columns
 * instead of keeping them. */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "nn/nn.h"
#include "nn/sgemm.h"
#include "nn/winograd.h"

typedef struct geom {
  int n, c, h, w, oc, oh, ow, k, s, p, groups;
} geom;

typedef struct conv_node {
  nn_t *x, *y;
  const nn_conv *L;
  geom g;
} conv_node;

static geom geom_of(const nn_t *x, const nn_conv *L) {
  geom g = {x->n, x->c, x->h, x->w, L->out, 0, 0, L->k, L->stride, L->pad, L->groups};
  g.oh = (x->h + 2 * L->pad - L->k) / L->stride + 1;
  g.ow = (x->w + 2 * L->pad - L->k) / L->stride + 1;
  return g;
}

/* A 1x1, stride-1, unpadded convolution reads its input as the column matrix itself. */
static int is_pointwise(const geom *g) { return g->k == 1 && g->s == 1 && g->p == 0; }
/* EMBR_WINOGRAD=0 turns the Winograd path off (tests compare the two paths). */
static int winograd_enabled(void) {
  const char *e = getenv("EMBR_WINOGRAD");
  return !e || strcmp(e, "0");
}

static int is_depthwise(const geom *g) { return g->groups > 1 && g->groups == g->c && g->oc == g->c; }

/* The valid output range [lo, hi) of one kernel tap j along an axis: positions o whose input
 * o*s - p + j lies inside [0, in). */
static void tap_range(int j, int s, int p, int in, int out, int *lo, int *hi) {
  int a = p - j, l = a > 0 ? (a + s - 1) / s : 0, h = (in - 1 + p - j) / s + 1;
  if (in - 1 + p - j < 0) h = 0;
  *lo = l;
  *hi = h < out ? h : out;
}

/* col[(c*k + i)*k + j][oy*ow + ox] = x[c][oy*s - p + i][ox*s - p + j] (0 outside), one image;
 * rows `ld` floats apart (images of a chunk sit side by side). */
static void im2col(const float *x, const geom *g, float *col, int64_t ld) {
  int64_t P = ld, hw = (int64_t)g->h * g->w;
  for (int c = 0; c < g->c; c++)
    for (int i = 0; i < g->k; i++)
      for (int j = 0; j < g->k; j++) {
        float *dst = col + (((int64_t)c * g->k + i) * g->k + j) * P;
        const float *src = x + c * hw;
        int y0, y1, x0, x1;
        tap_range(i, g->s, g->p, g->h, g->oh, &y0, &y1);
        tap_range(j, g->s, g->p, g->w, g->ow, &x0, &x1);
        for (int oy = 0; oy < g->oh; oy++) {
          float *row = dst + (int64_t)oy * g->ow;
          if (oy < y0 || oy >= y1 || x0 >= x1) {
            memset(row, 0, sizeof(float) * (size_t)g->ow);
            continue;
          }
          const float *srow = src + (int64_t)(oy * g->s - g->p + i) * g->w - g->p + j;
          for (int ox = 0; ox < x0; ox++) row[ox] = 0;
          if (g->s == 1)
            memcpy(row + x0, srow + x0, sizeof(float) * (size_t)(x1 - x0));
          else
            for (int ox = x0; ox < x1; ox++) row[ox] = srow[ox * g->s];
          for (int ox = x1; ox < g->ow; ox++) row[ox] = 0;
        }
      }
}

/* The adjoint of im2col: dx[c][...] += the column entries that were read from it. */
static void col2im(const float *col, const geom *g, float *dx, int64_t ld) {
  int64_t P = ld, hw = (int64_t)g->h * g->w;
  for (int c = 0; c < g->c; c++)
    for (int i = 0; i < g->k; i++)
      for (int j = 0; j < g->k; j++) {
        const float *src = col + (((int64_t)c * g->k + i) * g->k + j) * P;
        int y0, y1, x0, x1;
        tap_range(i, g->s, g->p, g->h, g->oh, &y0, &y1);
        tap_range(j, g->s, g->p, g->w, g->ow, &x0, &x1);
        for (int oy = y0; oy < y1; oy++) {
          float *drow = dx + c * hw + (int64_t)(oy * g->s - g->p + i) * g->w - g->p + j;
          const float *row = src + (int64_t)oy * g->ow;
          for (int ox = x0; ox < x1; ox++) drow[ox * g->s] += row[ox];
        }
      }
}

/* Images per GEMM: one when an image's output plane is large; for small planes (deep layers)
 * several images side by side, or the GEMM is too skinny to run at speed. */
static int chunk_of(const geom *g, int nt) {
  int64_t P = (int64_t)g->oh * g->ow;
  int nb = P >= 512 ? 1 : (int)((512 + P - 1) / P);
  int fair = (g->n + nt - 1) / nt; /* at least one chunk per thread */
  if (nb > fair) nb = fair;
  return nb < 1 ? 1 : nb;
}

/* Per-thread scratch: columns of one chunk (and, in backward, their gradient and the chunk's
 * output gradient; a pointwise single-image chunk reads its input directly). */
static int64_t col_floats(const geom *g, int nt) {
  int nb = chunk_of(g, nt);
  return nb == 1 && is_pointwise(g) ? 0 : (int64_t)g->c * g->k * g->k * g->oh * g->ow * nb;
}
static int64_t out_floats(const geom *g, int nt) {
  int nb = chunk_of(g, nt);
  return nb > 1 ? (int64_t)g->oc * g->oh * g->ow * nb : 0;
}

/* Columns of images [img0, img0 + nb) side by side (row length nb * P). */
static const float *gather_cols(const float *x, const geom *g, int img0, int nb, float *col) {
  int64_t P = (int64_t)g->oh * g->ow, hw = (int64_t)g->h * g->w;
  if (nb == 1 && is_pointwise(g)) return x + (int64_t)img0 * g->c * hw;
  for (int b = 0; b < nb; b++) im2col(x + (int64_t)(img0 + b) * g->c * hw, g, col + b * P, nb * P);
  return col;
}

/* Chunks of images are spread over the threads, each running single-threaded GEMMs: the GEMMs
 * are too small to split well, and a chunk's columns stay in cache. */
static void gemm_forward(const nn_ctx *ctx, const nn_conv *L, const geom *g, const float *x, float *y, float *scratch) {
  int nt = ctx->nt;
  int64_t P = (int64_t)g->oh * g->ow, cf = col_floats(g, nt), of = out_floats(g, nt);
  int cg = g->c / g->groups, og = g->oc / g->groups, K = cg * g->k * g->k, nb = chunk_of(g, nt);
  int nchunks = (g->n + nb - 1) / nb;
  const float *W = nn_pd(ctx, L->w), *bias = L->b >= 0 ? nn_pd(ctx, L->b) : NULL;
#pragma omp parallel num_threads(nt)
  {
    float *col = scratch + (cf + of) * omp_get_thread_num(), *yb = col + cf;
#pragma omp for schedule(dynamic, 1)
    for (int ch = 0; ch < nchunks; ch++) {
      int img0 = ch * nb, cnt = g->n - img0 < nb ? g->n - img0 : nb;
      int64_t ld = cnt * P;
      const float *B = gather_cols(x, g, img0, cnt, col);
      float *out = nb == 1 ? y + (int64_t)img0 * g->oc * P : yb;
      for (int gr = 0; gr < g->groups; gr++)
        embr__nn_sgemm1(CblasNoTrans, CblasNoTrans, og, (int)ld, K, 1.0f, W + (int64_t)gr * og * K, K,
                    B + (int64_t)gr * K * ld, (int)ld, 0.0f, out + (int64_t)gr * og * ld, (int)ld);
      for (int b = 0; b < cnt; b++)
        for (int o = 0; o < g->oc; o++) {
          float *dst = y + ((int64_t)(img0 + b) * g->oc + o) * P, bv = bias ? bias[o] : 0.0f;
          const float *src = out + o * ld + b * P;
          if (nb == 1)
            for (int64_t i = 0; bias && i < P; i++) dst[i] += bv;
          else
            for (int64_t i = 0; i < P; i++) dst[i] = src[i] + bv;
        }
    }
  }
}

static void gemm_backward(nn_ctx *ctx, const nn_conv *L, const geom *g, const nn_t *x, const nn_t *y, float *scratch,
                          float *dws, int nthreads, int want_dx) {
  int64_t P = (int64_t)g->oh * g->ow, hw = (int64_t)g->h * g->w, cf = col_floats(g, nthreads),
          of = out_floats(g, nthreads);
  int cg = g->c / g->groups, og = g->oc / g->groups, K = cg * g->k * g->k, nb = chunk_of(g, nthreads);
  int nchunks = (g->n + nb - 1) / nb;
  int64_t wn = (int64_t)g->oc * K;
  const float *W = nn_pd(ctx, L->w);
  float *dW = nn_pg(ctx, L->w), *db = L->b >= 0 ? nn_pg(ctx, L->b) : NULL;
#pragma omp parallel num_threads(nthreads)
  {
    int t = omp_get_thread_num();
    float *col = scratch + (2 * cf + of) * t, *dcol = col + cf, *dyb = dcol + cf, *dw = t ? dws + wn * (t - 1) : dW;
    if (t) memset(dw, 0, sizeof(float) * (size_t)wn);
#pragma omp for schedule(static) /* fixed chunks per thread: the weight-gradient sums come out the same every run */
    for (int ch = 0; ch < nchunks; ch++) {
      int img0 = ch * nb, cnt = g->n - img0 < nb ? g->n - img0 : nb;
      int64_t ld = cnt * P;
      const float *B = gather_cols(x->d, g, img0, cnt, col), *dy = y->g + (int64_t)img0 * g->oc * P;
      if (nb > 1) { /* the chunk's output gradient side by side, as the columns */
        for (int b = 0; b < cnt; b++)
          for (int o = 0; o < g->oc; o++)
            memcpy(dyb + o * ld + b * P, y->g + ((int64_t)(img0 + b) * g->oc + o) * P, sizeof(float) * (size_t)P);
        dy = dyb;
      }
      for (int gr = 0; gr < g->groups; gr++)
        embr__nn_sgemm1(CblasNoTrans, CblasTrans, og, K, (int)ld, 1.0f, dy + (int64_t)gr * og * ld, (int)ld,
                    B + (int64_t)gr * K * ld, (int)ld, 1.0f, dw + (int64_t)gr * og * K, K);
      if (!want_dx) continue;
      /* A pointwise single image: the input gradient is the GEMM's output directly (accumulated). */
      int direct = B != col;
      float *D = direct ? x->g + (int64_t)img0 * g->c * hw : dcol;
      for (int gr = 0; gr < g->groups; gr++)
        embr__nn_sgemm1(CblasTrans, CblasNoTrans, K, (int)ld, og, 1.0f, W + (int64_t)gr * og * K, K,
                    dy + (int64_t)gr * og * ld, (int)ld, direct ? 1.0f : 0.0f, D + (int64_t)gr * K * ld, (int)ld);
      for (int b = 0; !direct && b < cnt; b++) col2im(dcol + b * P, g, x->g + (int64_t)(img0 + b) * g->c * hw, ld);
    }
  }
  for (int t = 1; t < nthreads; t++)
    for (int64_t i = 0; i < wn; i++) dW[i] += dws[wn * (t - 1) + i];
  if (db)
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int o = 0; o < g->oc; o++) {
      double s = 0;
      for (int img = 0; img < g->n; img++) {
        const float *dyo = y->g + ((int64_t)img * g->oc + o) * P;
        for (int64_t i = 0; i < P; i++) s += dyo[i];
      }
      db[o] += (float)s;
    }
}

/* Depthwise convolution, tap by tap: for each kernel tap the valid output range is computed once,
 * so the inner loop is a bounds-free multiply-add over a row (contiguous at stride 1). */
static void dw_forward_plane(const float *src, const float *wk, float bias, const geom *g, float *dst) {
  int64_t P = (int64_t)g->oh * g->ow;
  for (int64_t i = 0; i < P; i++) dst[i] = bias;
  for (int i = 0; i < g->k; i++) {
    int y0, y1;
    tap_range(i, g->s, g->p, g->h, g->oh, &y0, &y1);
    for (int j = 0; j < g->k; j++) {
      int x0, x1;
      tap_range(j, g->s, g->p, g->w, g->ow, &x0, &x1);
      float w = wk[i * g->k + j];
      for (int oy = y0; oy < y1; oy++) {
        const float *srow = src + (int64_t)(oy * g->s - g->p + i) * g->w - g->p + j;
        float *drow = dst + (int64_t)oy * g->ow;
        if (g->s == 1)
          for (int ox = x0; ox < x1; ox++) drow[ox] += w * srow[ox];
        else
          for (int ox = x0; ox < x1; ox++) drow[ox] += w * srow[ox * g->s];
      }
    }
  }
}

static void depthwise_forward(const nn_ctx *ctx, const nn_conv *L, const geom *g, const float *x, float *y) {
  const float *W = nn_pd(ctx, L->w), *bias = L->b >= 0 ? nn_pd(ctx, L->b) : NULL;
  int64_t hw = (int64_t)g->h * g->w, P = (int64_t)g->oh * g->ow;
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int64_t nc = 0; nc < (int64_t)g->n * g->c; nc++) {
    int c = (int)(nc % g->c);
    dw_forward_plane(x + nc * hw, W + (int64_t)c * g->k * g->k, bias ? bias[c] : 0.0f, g, y + nc * P);
  }
}

/* One plane's backward: weight-gradient taps into dw, input gradient into dx (may be NULL). */
static void dw_backward_plane(const float *src, const float *dy, const float *wk, const geom *g, double *dw, float *dx) {
  for (int i = 0; i < g->k; i++) {
    int y0, y1;
    tap_range(i, g->s, g->p, g->h, g->oh, &y0, &y1);
    for (int j = 0; j < g->k; j++) {
      int x0, x1;
      tap_range(j, g->s, g->p, g->w, g->ow, &x0, &x1);
      float w = wk[i * g->k + j], acc = 0;
      for (int oy = y0; oy < y1; oy++) {
        int64_t off = (int64_t)(oy * g->s - g->p + i) * g->w - g->p + j;
        const float *srow = src + off, *grow = dy + (int64_t)oy * g->ow;
        if (g->s == 1) {
          for (int ox = x0; ox < x1; ox++) acc += grow[ox] * srow[ox];
          if (dx)
            for (int ox = x0; ox < x1; ox++) dx[off + ox] += w * grow[ox];
        } else {
          for (int ox = x0; ox < x1; ox++) acc += grow[ox] * srow[ox * g->s];
          if (dx)
            for (int ox = x0; ox < x1; ox++) dx[off + ox * g->s] += w * grow[ox];
        }
      }
      dw[i * g->k + j] += acc;
    }
  }
}

static void depthwise_backward(nn_ctx *ctx, const nn_conv *L, const geom *g, const nn_t *x, const nn_t *y) {
  const float *W = nn_pd(ctx, L->w);
  float *dW = nn_pg(ctx, L->w), *db = L->b >= 0 ? nn_pg(ctx, L->b) : NULL;
  int64_t hw = (int64_t)g->h * g->w, P = (int64_t)g->oh * g->ow;
  int kk = g->k * g->k;
  double *acc = (double *)embr__nn_alloc(ctx, sizeof(double) * (size_t)kk * (size_t)g->c);
  if (!acc) return;
  memset(acc, 0, sizeof(double) * (size_t)kk * (size_t)g->c);
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int c = 0; c < g->c; c++) {
    double dbias = 0;
    for (int n = 0; n < g->n; n++) {
      int64_t nc = (int64_t)n * g->c + c;
      dw_backward_plane(x->d + nc * hw, y->g + nc * P, W + (int64_t)c * kk, g, acc + (int64_t)c * kk,
                        x->g ? x->g + nc * hw : NULL);
      for (int64_t i = 0; i < P; i++) dbias += y->g[nc * P + i];
    }
    for (int i = 0; i < kk; i++) dW[(int64_t)c * kk + i] += (float)acc[(int64_t)c * kk + i];
    if (db) db[c] += (float)dbias;
  }
}

static void conv_backward(nn_ctx *ctx, void *node) {
  conv_node *cn = node;
  if (is_depthwise(&cn->g)) {
    depthwise_backward(ctx, cn->L, &cn->g, cn->x, cn->y);
    return;
  }
  int nt = ctx->nt;
  int64_t wn = (int64_t)cn->g.oc * (cn->g.c / cn->g.groups) * cn->g.k * cn->g.k;
  /* Pooled: a malloc of this size per call maps and zeroes fresh pages every time. */
  float *scratch = embr__nn_scratch(ctx, (2 * col_floats(&cn->g, nt) + out_floats(&cn->g, nt)) * nt + 1),
        *dws = embr__nn_scratch(ctx, wn * (nt - 1) + 1);
  /* The input gradient of a Winograd-shaped convolution is itself such a convolution. */
  int wino = cn->x->g && winograd_enabled() &&
             embr__winograd_applies(cn->L->k, cn->L->stride, cn->L->pad, cn->L->groups, cn->L->in, cn->L->out);
  if (scratch && dws) {
    embr__blas_enter(1); /* each thread runs single-threaded GEMMs */
    gemm_backward(ctx, cn->L, &cn->g, cn->x, cn->y, scratch, dws, nt, cn->x->g && !wino);
    if (wino) embr__winograd_backward_data(ctx, cn->L, cn->y, cn->x);
    embr__blas_leave();
  }
  embr__nn_scratch_put(ctx, scratch);
  embr__nn_scratch_put(ctx, dws);
}

nn_t *embr__nn_conv2d(nn_ctx *ctx, nn_t *x, const nn_conv *L) {
  if (!x) return NULL;
  if (!(x = embr__nn_plain(ctx, x))) return NULL;
  if (x->c != L->in) {
    ctx->rc = embr_error(EMBR_EINVAL, "convolution expects %d input channels, got %d", L->in, x->c);
    return NULL;
  }
  geom g = geom_of(x, L);
  if (g.oh < 1 || g.ow < 1) {
    ctx->rc = embr_error(EMBR_EINVAL, "input %dx%d too small for a %dx%d convolution", x->h, x->w, L->k, L->k);
    return NULL;
  }
  nn_t *y = embr__nn_tensor(ctx, g.n, g.oc, g.oh, g.ow);
  if (!y) return NULL;
  if (is_depthwise(&g)) {
    depthwise_forward(ctx, L, &g, x->d, y->d);
  } else if (winograd_enabled() && embr__winograd_applies(L->k, L->stride, L->pad, L->groups, L->in, L->out)) {
    embr__blas_enter(1);
    int rc = embr__winograd_conv(ctx, L, x, y);
    embr__blas_leave();
    if (rc) return NULL;
  } else {
    float *scratch = embr__nn_scratch(ctx, (col_floats(&g, ctx->nt) + out_floats(&g, ctx->nt)) * ctx->nt + 1);
    if (!scratch) return NULL;
    embr__blas_enter(1);
    gemm_forward(ctx, L, &g, x->d, y->d, scratch);
    embr__blas_leave();
    embr__nn_scratch_put(ctx, scratch);
  }
  if (ctx->record) {
    conv_node *cn = embr__nn_alloc(ctx, sizeof(conv_node));
    if (!cn) return NULL;
    *cn = (conv_node){x, y, L, g};
    embr__nn_record(ctx, conv_backward, cn, y, x, NULL);
  }
  return embr__nn_done(ctx, x, y);
}

int embr__nn_conv_make(nn_params *P, nn_conv *L, const char *prefix, int in, int out, int k, int stride, int pad,
                 int groups, int bias) {
  char name[160];
  if (groups < 1 || in % groups || out % groups) return embr_error(EMBR_EINVAL, "%s: channels not divisible by groups", prefix);
  *L = (nn_conv){in, out, k, stride, pad, groups, -1, -1, -1};
  int64_t shape[4] = {out, in / groups, k, k};
  snprintf(name, sizeof(name), "%s.weight", prefix);
  /* He initialisation with fan-out (torchvision's ResNet choice). */
  if ((L->w = embr__nn_param_add(P, name, 4, shape, NN_WEIGHT, NN_INIT_KAIMING, (float)(out / groups * k * k))) < 0)
    return EMBR_ENOMEM;
  L->widx = P->n - 1;
  if (bias) {
    int64_t bs[1] = {out};
    snprintf(name, sizeof(name), "%s.bias", prefix);
    if ((L->b = embr__nn_param_add(P, name, 1, bs, NN_NODECAY, NN_INIT_ZERO, 0)) < 0) return EMBR_ENOMEM;
  }
  return 0;
}

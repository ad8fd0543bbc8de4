/* 2-D convolution, forward and backward. General convolutions gather the input patches of a
 * chunk of images into one column matrix (im2col) so that each group is one large GEMM (OpenBLAS)
 * rather than one small GEMM per image; depthwise convolutions (groups = channels) have too little
 * work per channel for GEMM and run as direct loops. Backward rebuilds the columns instead of
 * keeping them: memory stays at one chunk. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"

/* Column buffers of at most this many floats (32 MiB) per chunk of images. */
#define COL_FLOATS ((int64_t)8 << 20)

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

/* col[(c*k + i)*k + j][img*P + oy*ow + ox] = x[img0 + img][c][oy*s - p + i][ox*s - p + j] (0 outside). */
static void im2col(const float *x, const geom *g, int img0, int nb, float *col) {
  int64_t P = (int64_t)g->oh * g->ow, ld = nb * P, hw = (int64_t)g->h * g->w;
#pragma omp parallel for schedule(static)
  for (int r = 0; r < g->c * g->k * g->k; r++) {
    int c = r / (g->k * g->k), i = r / g->k % g->k, j = r % g->k;
    for (int b = 0; b < nb; b++) {
      const float *src = x + ((int64_t)(img0 + b) * g->c + c) * hw;
      float *dst = col + r * ld + b * P;
      for (int oy = 0; oy < g->oh; oy++) {
        int y = oy * g->s - g->p + i;
        float *row = dst + (int64_t)oy * g->ow;
        if (y < 0 || y >= g->h) {
          memset(row, 0, sizeof(float) * (size_t)g->ow);
          continue;
        }
        const float *srow = src + (int64_t)y * g->w;
        for (int ox = 0; ox < g->ow; ox++) {
          int xx = ox * g->s - g->p + j;
          row[ox] = xx >= 0 && xx < g->w ? srow[xx] : 0.0f;
        }
      }
    }
  }
}

/* The adjoint of im2col: dx[img][c][...] += the column entries that were read from it. */
static void col2im(const float *col, const geom *g, int img0, int nb, float *dx) {
  int64_t P = (int64_t)g->oh * g->ow, ld = nb * P, hw = (int64_t)g->h * g->w;
#pragma omp parallel for schedule(static)
  for (int c = 0; c < g->c; c++)
    for (int i = 0; i < g->k; i++)
      for (int j = 0; j < g->k; j++) {
        int64_t r = ((int64_t)c * g->k + i) * g->k + j;
        for (int b = 0; b < nb; b++) {
          float *dst = dx + ((int64_t)(img0 + b) * g->c + c) * hw;
          const float *src = col + r * ld + b * P;
          for (int oy = 0; oy < g->oh; oy++) {
            int y = oy * g->s - g->p + i;
            if (y < 0 || y >= g->h) continue;
            for (int ox = 0; ox < g->ow; ox++) {
              int xx = ox * g->s - g->p + j;
              if (xx >= 0 && xx < g->w) dst[(int64_t)y * g->w + xx] += src[(int64_t)oy * g->ow + ox];
            }
          }
        }
      }
}

static int chunk_images(const geom *g) {
  int64_t per = (int64_t)g->c * g->k * g->k * g->oh * g->ow;
  int64_t nb = COL_FLOATS / (per > 0 ? per : 1);
  return nb < 1 ? 1 : nb > g->n ? g->n : (int)nb;
}

static void gemm_forward(const nn_ctx *ctx, const nn_conv *L, const geom *g, const float *x, float *y, float *col,
                         float *yb) {
  int64_t P = (int64_t)g->oh * g->ow, hw_out = P;
  int cg = g->c / g->groups, og = g->oc / g->groups, K = cg * g->k * g->k;
  const float *W = nn_pd(ctx, L->w), *bias = L->b >= 0 ? nn_pd(ctx, L->b) : NULL;
  int step = chunk_images(g);
  for (int img0 = 0; img0 < g->n; img0 += step) {
    int nb = g->n - img0 < step ? g->n - img0 : step;
    int64_t ld = nb * P;
    im2col(x, g, img0, nb, col);
    for (int gr = 0; gr < g->groups; gr++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, og, (int)ld, K, 1.0f, W + (int64_t)gr * og * K, K,
                  col + (int64_t)gr * K * ld, (int)ld, 0.0f, yb + (int64_t)gr * og * ld, (int)ld);
#pragma omp parallel for schedule(static)
    for (int o = 0; o < g->oc; o++)
      for (int b = 0; b < nb; b++) {
        float *dst = y + ((int64_t)(img0 + b) * g->oc + o) * hw_out;
        const float *src = yb + o * ld + b * P;
        float bv = bias ? bias[o] : 0.0f;
        for (int64_t i = 0; i < P; i++) dst[i] = src[i] + bv;
      }
  }
}

static void depthwise_forward(const nn_ctx *ctx, const nn_conv *L, const geom *g, const float *x, float *y) {
  const float *W = nn_pd(ctx, L->w), *bias = L->b >= 0 ? nn_pd(ctx, L->b) : NULL;
  int64_t hw = (int64_t)g->h * g->w, P = (int64_t)g->oh * g->ow;
#pragma omp parallel for schedule(static)
  for (int64_t nc = 0; nc < (int64_t)g->n * g->c; nc++) {
    int c = (int)(nc % g->c);
    const float *src = x + nc * hw, *wk = W + (int64_t)c * g->k * g->k;
    float *dst = y + nc * P;
    for (int oy = 0; oy < g->oh; oy++)
      for (int ox = 0; ox < g->ow; ox++) {
        float acc = bias ? bias[c] : 0.0f;
        for (int i = 0; i < g->k; i++) {
          int yy = oy * g->s - g->p + i;
          if (yy < 0 || yy >= g->h) continue;
          for (int j = 0; j < g->k; j++) {
            int xx = ox * g->s - g->p + j;
            if (xx >= 0 && xx < g->w) acc += wk[i * g->k + j] * src[(int64_t)yy * g->w + xx];
          }
        }
        dst[(int64_t)oy * g->ow + ox] = acc;
      }
  }
}

static void depthwise_backward(nn_ctx *ctx, const nn_conv *L, const geom *g, const nn_t *x, const nn_t *y) {
  const float *W = nn_pd(ctx, L->w);
  float *dW = nn_pg(ctx, L->w), *db = L->b >= 0 ? nn_pg(ctx, L->b) : NULL;
  int64_t hw = (int64_t)g->h * g->w, P = (int64_t)g->oh * g->ow;
  int kk = g->k * g->k;
#pragma omp parallel for schedule(static)
  for (int c = 0; c < g->c; c++) {
    float dw[64 * 64];
    float *acc = kk <= 64 * 64 ? dw : dW + (int64_t)c * kk; /* larger kernels accumulate in place */
    if (acc == dw) memset(dw, 0, sizeof(float) * (size_t)kk);
    double dbias = 0;
    const float *wk = W + (int64_t)c * kk;
    for (int n = 0; n < g->n; n++) {
      int64_t nc = (int64_t)n * g->c + c;
      const float *src = x->d + nc * hw, *dy = y->g + nc * P;
      float *dx = x->g ? x->g + nc * hw : NULL;
      for (int oy = 0; oy < g->oh; oy++)
        for (int ox = 0; ox < g->ow; ox++) {
          float gy = dy[(int64_t)oy * g->ow + ox];
          dbias += gy;
          for (int i = 0; i < g->k; i++) {
            int yy = oy * g->s - g->p + i;
            if (yy < 0 || yy >= g->h) continue;
            for (int j = 0; j < g->k; j++) {
              int xx = ox * g->s - g->p + j;
              if (xx < 0 || xx >= g->w) continue;
              acc[i * g->k + j] += gy * src[(int64_t)yy * g->w + xx];
              if (dx) dx[(int64_t)yy * g->w + xx] += gy * wk[i * g->k + j];
            }
          }
        }
    }
    if (acc == dw)
      for (int i = 0; i < kk; i++) dW[(int64_t)c * kk + i] += dw[i];
    if (db) db[c] += (float)dbias;
  }
}

static void gemm_backward(nn_ctx *ctx, const nn_conv *L, const geom *g, const nn_t *x, const nn_t *y, float *col,
                          float *yb) {
  int64_t P = (int64_t)g->oh * g->ow;
  int cg = g->c / g->groups, og = g->oc / g->groups, K = cg * g->k * g->k;
  const float *W = nn_pd(ctx, L->w);
  float *dW = nn_pg(ctx, L->w), *db = L->b >= 0 ? nn_pg(ctx, L->b) : NULL;
  int step = chunk_images(g);
  for (int img0 = 0; img0 < g->n; img0 += step) {
    int nb = g->n - img0 < step ? g->n - img0 : step;
    int64_t ld = nb * P;
#pragma omp parallel for schedule(static)
    for (int o = 0; o < g->oc; o++) {
      double s = 0;
      for (int b = 0; b < nb; b++) {
        const float *src = y->g + ((int64_t)(img0 + b) * g->oc + o) * P;
        memcpy(yb + o * ld + b * P, src, sizeof(float) * (size_t)P);
        for (int64_t i = 0; i < P; i++) s += src[i];
      }
      if (db) db[o] += (float)s;
    }
    im2col(x->d, g, img0, nb, col);
    for (int gr = 0; gr < g->groups; gr++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, og, K, (int)ld, 1.0f, yb + (int64_t)gr * og * ld, (int)ld,
                  col + (int64_t)gr * K * ld, (int)ld, 1.0f, dW + (int64_t)gr * og * K, K);
    if (!x->g) continue;
    for (int gr = 0; gr < g->groups; gr++) /* the columns are not needed any more: dcol overwrites them */
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, (int)ld, og, 1.0f, W + (int64_t)gr * og * K, K,
                  yb + (int64_t)gr * og * ld, (int)ld, 0.0f, col + (int64_t)gr * K * ld, (int)ld);
    col2im(col, g, img0, nb, x->g);
  }
}

static int is_depthwise(const geom *g) { return g->groups > 1 && g->groups == g->c && g->oc == g->c; }

static void conv_backward(nn_ctx *ctx, void *node) {
  conv_node *cn = node;
  if (is_depthwise(&cn->g)) {
    depthwise_backward(ctx, cn->L, &cn->g, cn->x, cn->y);
    return;
  }
  int nb = chunk_images(&cn->g);
  int64_t P = (int64_t)cn->g.oh * cn->g.ow;
  float *col = malloc(sizeof(float) * (size_t)((int64_t)cn->g.c * cn->g.k * cn->g.k * nb * P));
  float *yb = malloc(sizeof(float) * (size_t)((int64_t)cn->g.oc * nb * P));
  if (!col || !yb) {
    ctx->rc = embr_error(EMBR_ENOMEM, "out of memory in convolution backward");
  } else {
    gemm_backward(ctx, cn->L, &cn->g, cn->x, cn->y, col, yb);
  }
  free(col);
  free(yb);
}

nn_t *nn_conv2d(nn_ctx *ctx, nn_t *x, const nn_conv *L) {
  if (!x) return NULL;
  if (x->c != L->in) {
    ctx->rc = embr_error(EMBR_EINVAL, "convolution expects %d input channels, got %d", L->in, x->c);
    return NULL;
  }
  geom g = geom_of(x, L);
  if (g.oh < 1 || g.ow < 1) {
    ctx->rc = embr_error(EMBR_EINVAL, "input %dx%d too small for a %dx%d convolution", x->h, x->w, L->k, L->k);
    return NULL;
  }
  nn_t *y = nn_tensor(ctx, g.n, g.oc, g.oh, g.ow);
  if (!y) return NULL;
  if (is_depthwise(&g)) {
    depthwise_forward(ctx, L, &g, x->d, y->d);
  } else {
    int nb = chunk_images(&g);
    int64_t P = (int64_t)g.oh * g.ow;
    /* Scratch from the arena too: freed at the step's end with everything else. */
    float *col = nn_floats(ctx, (int64_t)g.c * g.k * g.k * nb * P, 0), *yb = nn_floats(ctx, (int64_t)g.oc * nb * P, 0);
    if (!col || !yb) return NULL;
    gemm_forward(ctx, L, &g, x->d, y->d, col, yb);
  }
  if (ctx->record) {
    conv_node *cn = nn_alloc(ctx, sizeof(conv_node));
    if (!cn) return NULL;
    *cn = (conv_node){x, y, L, g};
    nn_record(ctx, conv_backward, cn);
  }
  return y;
}

int nn_conv_make(nn_params *P, nn_conv *L, const char *prefix, int in, int out, int k, int stride, int pad,
                 int groups, int bias) {
  char name[160];
  if (groups < 1 || in % groups || out % groups) return embr_error(EMBR_EINVAL, "%s: channels not divisible by groups", prefix);
  *L = (nn_conv){in, out, k, stride, pad, groups, -1, -1};
  int64_t shape[4] = {out, in / groups, k, k};
  snprintf(name, sizeof(name), "%s.weight", prefix);
  /* He initialisation with fan-out (torchvision's ResNet choice). */
  if ((L->w = nn_param_add(P, name, 4, shape, NN_WEIGHT, NN_INIT_KAIMING, (float)(out / groups * k * k))) < 0)
    return EMBR_ENOMEM;
  if (bias) {
    int64_t bs[1] = {out};
    snprintf(name, sizeof(name), "%s.bias", prefix);
    if ((L->b = nn_param_add(P, name, 1, bs, NN_NODECAY, NN_INIT_ZERO, 0)) < 0) return EMBR_ENOMEM;
  }
  return 0;
}

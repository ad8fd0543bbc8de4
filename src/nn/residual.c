/* Ops on a transformer block's residual branch before it is added back, forward and backward
 * side by side: LayerScale (DINOv2, Touvron et al. 2021: the branch scaled per channel by a
 * learned vector) and stochastic depth (drop-path, Huang et al. 2016: in training, the whole
 * branch of a sample dropped with probability p, kept ones scaled by 1/(1-p) so that the
 * expected output is unchanged; the identity at inference). */
#include <string.h>

#include "nn/nn.h"

typedef struct rs_node {
  nn_t *x, *y;
  int64_t gamma; /* LayerScale: the parameter's offset */
  float *mask;   /* drop-path: per sample, 0 or 1/(1-p) */
} rs_node;

static rs_node *record(nn_ctx *ctx, nn_backward_fn fn, nn_t *x, nn_t *y) {
  if (!ctx->record) return NULL;
  rs_node *u = embr__nn_alloc(ctx, sizeof(rs_node));
  if (!u) return NULL;
  memset(u, 0, sizeof(*u));
  u->x = x, u->y = y;
  embr__nn_record(ctx, fn, u, y, x, NULL);
  return u;
}

/* y = x * gamma per column: dgamma_j += sum_r dy_rj x_rj, dx_rj += dy_rj gamma_j. The column sums
 * are split by columns (no shared accumulators: the same sums for any thread count). */
static void scale_backward(nn_ctx *ctx, void *node) {
  rs_node *u = node;
  int D = u->x->w;
  int64_t rows = nn_numel(u->x) / D;
  const float *x = u->x->d, *gy = u->y->g, *gamma = nn_pd(ctx, u->gamma);
  float *dgamma = nn_pg(ctx, u->gamma);
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int j = 0; j < D; j++) {
    double s = 0;
    for (int64_t r = 0; r < rows; r++) s += (double)gy[r * D + j] * x[r * D + j];
    dgamma[j] += (float)s;
  }
  if (!u->x->g) return;
  float *gx = u->x->g;
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int64_t r = 0; r < rows; r++)
    for (int j = 0; j < D; j++) gx[r * D + j] += gy[r * D + j] * gamma[j];
}

nn_t *embr__nn_scale_cols(nn_ctx *ctx, nn_t *x, int64_t gamma) {
  if (!x) return NULL;
  int D = x->w;
  int64_t rows = nn_numel(x) / D;
  nn_t *y = embr__nn_tensor(ctx, x->n, x->c, x->h, x->w);
  if (!y) return NULL;
  const float *g = nn_pd(ctx, gamma), *xd = x->d;
  float *yd = y->d;
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int64_t r = 0; r < rows; r++)
    for (int j = 0; j < D; j++) yd[r * D + j] = xd[r * D + j] * g[j];
  rs_node *u = record(ctx, scale_backward, x, y);
  if (ctx->record && !u) return NULL;
  if (u) u->gamma = gamma;
  return embr__nn_done(ctx, x, y);
}

static void drop_path_backward(nn_ctx *ctx, void *node) {
  rs_node *u = node;
  if (!u->x->g) return;
  int64_t per = nn_numel(u->x) / u->x->n;
  for (int b = 0; b < u->x->n; b++)
    for (int64_t i = 0; i < per; i++) u->x->g[b * per + i] += u->y->g[b * per + i] * u->mask[b];
}

nn_t *embr__nn_drop_path(nn_ctx *ctx, nn_t *x, float p) {
  if (!x || !ctx->training || !(p > 0)) return x;
  if (p >= 1) {
    ctx->rc = embr_error(EMBR_EINVAL, "drop-path rate %g is not below 1", (double)p);
    return NULL;
  }
  nn_t *y = embr__nn_tensor(ctx, x->n, x->c, x->h, x->w);
  float *mask = embr__nn_floats(ctx, x->n, 0);
  if (!y || !mask) return NULL;
  int64_t per = nn_numel(x) / x->n;
  /* One draw per sample, in sample order: the masks depend on the context's seed only. */
  for (int b = 0; b < x->n; b++) mask[b] = embr_rng_float(&ctx->rng) < p ? 0.0f : 1.0f / (1.0f - p);
  for (int b = 0; b < x->n; b++)
    for (int64_t i = 0; i < per; i++) y->d[b * per + i] = x->d[b * per + i] * mask[b];
  rs_node *u = record(ctx, drop_path_backward, x, y);
  if (ctx->record && !u) return NULL;
  if (u) u->mask = mask;
  return embr__nn_done(ctx, x, y);
}

/* LayerNorm over the last dimension (torch.nn.LayerNorm(dim), eps 1e-5), forward and backward:
 * the transformer's normalisation (pre-LN blocks, CLIP's ln_pre/ln_post/ln_final). Each row of
 * w floats is normalised by its own mean and biased variance, then scaled and shifted per column.
 *
 * Rows are independent, so both passes run rows in parallel; the per-row sums are taken in
 * double with eight independent partial sums (they vectorise; one running sum would be a chain
 * of dependent adds). Training keeps each row's mean and 1/std (2 floats a row) for backward.
 * The parameter gradients are column sums over all rows: backward splits the columns (not the
 * rows) over the threads, so no thread shares an accumulator and the sums come out the same for
 * any thread count. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nn/nn.h"

typedef struct ln_node {
  nn_t *x, *y;
  const nn_ln *L;
  float *stat; /* mean[rows], rstd[rows] */
} ln_node;

/* sum x and sum (x - m)^2 in double, eight lanes each */
static double row_sum(const float *x, int n) {
  double a[8] = {0}, s = 0;
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) a[k] += x[i + k];
  for (; i < n; i++) s += x[i];
  for (int k = 0; k < 8; k++) s += a[k];
  return s;
}

static double row_sqdev(const float *x, int n, double m) {
  double a[8] = {0}, s = 0;
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) a[k] += (x[i + k] - m) * (x[i + k] - m);
  for (; i < n; i++) s += (x[i] - m) * (x[i] - m);
  for (int k = 0; k < 8; k++) s += a[k];
  return s;
}

/* Columns per backward task: the parameter-gradient accumulators of one task live on its stack. */
enum { LN_COLS = 64 };

static void ln_backward(nn_ctx *ctx, void *node) {
  ln_node *u = node;
  const nn_ln *L = u->L;
  const nn_t *x = u->x, *y = u->y;
  int D = L->dim;
  int64_t rows = nn_numel(x) / D;
  const float *gamma = nn_pd(ctx, L->gamma), *mean = u->stat, *rstd = u->stat + rows;
  float *dgamma = nn_pg(ctx, L->gamma), *dbeta = nn_pg(ctx, L->beta);
  const float *xd = x->d, *gy = y->g;
  /* Parameters: dgamma_j += sum_r dy_rj xhat_rj, dbeta_j += sum_r dy_rj, by column blocks. */
  int nblk = (D + LN_COLS - 1) / LN_COLS;
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int blk = 0; blk < nblk; blk++) {
    int j0 = blk * LN_COLS, nj = D - j0 < LN_COLS ? D - j0 : LN_COLS;
    double ag[LN_COLS] = {0}, ab[LN_COLS] = {0};
    for (int64_t r = 0; r < rows; r++) {
      const float *xr = xd + r * D + j0, *gr = gy + r * D + j0;
      float m = mean[r], s = rstd[r];
      for (int j = 0; j < nj; j++) {
        ag[j] += (double)gr[j] * ((xr[j] - m) * s);
        ab[j] += gr[j];
      }
    }
    for (int j = 0; j < nj; j++) dgamma[j0 + j] += (float)ag[j], dbeta[j0 + j] += (float)ab[j];
  }
  if (!x->g) return;
  /* Input: dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy * gamma. */
  float *gx = x->g;
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = xd + r * D, *gr = gy + r * D;
    float *dr = gx + r * D, m = mean[r], s = rstd[r];
    double a[8] = {0}, b[8] = {0}, sg = 0, sgx = 0;
    int j = 0;
    for (; j + 8 <= D; j += 8)
      for (int k = 0; k < 8; k++) {
        float g = gr[j + k] * gamma[j + k];
        a[k] += g;
        b[k] += (double)g * ((xr[j + k] - m) * s);
      }
    for (; j < D; j++) {
      float g = gr[j] * gamma[j];
      sg += g;
      sgx += (double)g * ((xr[j] - m) * s);
    }
    for (int k = 0; k < 8; k++) sg += a[k], sgx += b[k];
    float mg = (float)(sg / D), mgx = (float)(sgx / D);
    for (j = 0; j < D; j++) {
      float xh = (xr[j] - m) * s;
      dr[j] += s * (gr[j] * gamma[j] - mg - xh * mgx);
    }
  }
}

nn_t *embr__nn_layernorm(nn_ctx *ctx, nn_t *x, const nn_ln *L) {
  if (!x) return NULL;
  if (x->w != L->dim) {
    ctx->rc = embr_error(EMBR_EINVAL, "layer norm expects rows of %d, got %d", L->dim, x->w);
    return NULL;
  }
  int D = L->dim;
  int64_t rows = nn_numel(x) / D;
  nn_t *y = embr__nn_tensor(ctx, x->n, x->c, x->h, x->w);
  float *stat = ctx->record ? embr__nn_floats(ctx, 2 * rows, 0) : NULL;
  if (!y || (ctx->record && !stat)) return NULL;
  const float *gamma = nn_pd(ctx, L->gamma), *beta = nn_pd(ctx, L->beta), *xd = x->d;
  float *yd = y->d, eps = L->eps;
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = xd + r * D;
    float *yr = yd + r * D;
    double mean = row_sum(xr, D) / D, var = row_sqdev(xr, D, mean) / D;
    float m = (float)mean, s = (float)(1.0 / sqrt(var + eps));
    for (int j = 0; j < D; j++) yr[j] = (xr[j] - m) * s * gamma[j] + beta[j];
    if (stat) stat[r] = m, stat[rows + r] = s;
  }
  if (ctx->record) {
    ln_node *u = embr__nn_alloc(ctx, sizeof(ln_node));
    if (!u) return NULL;
    *u = (ln_node){x, y, L, stat};
    embr__nn_record(ctx, ln_backward, u, y, x, NULL);
  }
  return embr__nn_done(ctx, x, y);
}

/* Why embr__nn_param_add failed: the name (too long for the table) or memory. */
static int add_failed(const char *name) {
  return strlen(name) >= sizeof(((nn_param *)0)->name) ? EMBR_EINVAL : EMBR_ENOMEM;
}

int embr__nn_ln_make(nn_params *P, nn_ln *L, const char *prefix, int dim) {
  char name[160];
  int64_t shape[1] = {dim};
  *L = (nn_ln){dim, -1, -1, 1e-5f};
  snprintf(name, sizeof(name), "%s.weight", prefix);
  if ((L->gamma = embr__nn_param_add(P, name, 1, shape, NN_NODECAY, NN_INIT_ONE, 0)) < 0) return add_failed(name);
  snprintf(name, sizeof(name), "%s.bias", prefix);
  if ((L->beta = embr__nn_param_add(P, name, 1, shape, NN_NODECAY, NN_INIT_ZERO, 0)) < 0) return add_failed(name);
  return 0;
}

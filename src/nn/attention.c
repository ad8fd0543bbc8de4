/* Multi-head scaled dot-product self-attention after the fused q/k/v projection, forward and
 * backward (the core of every transformer block: ViT, CLIP's text tower, BERT).
 *
 * The input is the fused projection's output as it comes, each token's row [q | k | v] of 3D
 * floats. Head h of batch b reads Q_h, K_h and V_h as strided views of those rows (leading
 * dimension 3D, column offset h*hd, D + h*hd, 2D + h*hd) and writes O_h straight into its hd
 * columns of the output rows (leading dimension D): the split into heads and the transposes
 * PyTorch does with reshape/permute copies are only pointer arithmetic here. Per (b, h):
 *
 *   S = Q_h K_h^T / sqrt(hd)           one GEMM, T x T
 *   P = softmax(S) by rows             in place; causal: keys j > i get probability 0
 *   O_h = P V_h                        one GEMM into the output rows
 *
 * and backward, with dO_h read from the output gradient the same way:
 *
 *   dP = dO_h V_h^T,  dV_h += P^T dO_h,  dS = P .* (dP - rowsum(dP .* P)) / sqrt(hd),
 *   dQ_h += dS K_h,  dK_h += dS^T Q_h      all into the strided gradient of the qkv rows.
 *
 * The (b, h) pairs are independent and write disjoint parts of the outputs, so they are spread
 * over the threads, each running single-threaded GEMMs (the products are small: T x T x hd). A
 * training pass keeps P (B, H, T, T) for backward; inference uses one T x T scratch per thread. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/threads.h"
#include "nn/nn.h"
#include "nn/vmath.h"

typedef struct attn_node {
  nn_t *qkv, *y;
  float *P; /* softmax probabilities, (B, H, T, T) */
  int heads, causal;
} attn_node;

/* Row-wise softmax of S (T x T) in place; causal: row i over keys 0..i, the rest set to 0. */
static void softmax_rows(float *S, int T, int causal) {
  for (int i = 0; i < T; i++) {
    float *row = S + (int64_t)i * T;
    int n = causal ? i + 1 : T;
    float mx = row[0];
    for (int j = 1; j < n; j++) mx = row[j] > mx ? row[j] : mx;
    for (int j = 0; j < n; j++) row[j] = embr__nn_expf(row[j] - mx);
    double a[8] = {0}, s = 0;
    int j = 0;
    for (; j + 8 <= n; j += 8)
      for (int k = 0; k < 8; k++) a[k] += row[j + k];
    for (; j < n; j++) s += row[j];
    for (int k = 0; k < 8; k++) s += a[k];
    float inv = (float)(1.0 / s); /* s >= 1: the maximum contributes exp(0) */
    for (j = 0; j < n; j++) row[j] *= inv;
    for (j = n; j < T; j++) row[j] = 0.0f;
  }
}

static void attn_backward(nn_ctx *ctx, void *node) {
  attn_node *u = node;
  const nn_t *qkv = u->qkv, *y = u->y;
  int B = qkv->n, T = qkv->c, D = y->w, H = u->heads, hd = D / H, causal = u->causal, nt = ctx->nt;
  int64_t tt = (int64_t)T * T;
  float scale = 1.0f / sqrtf((float)hd);
  float *dqkv = qkv->g;
  if (!dqkv) return; /* no parameters: nothing else wants a gradient */
  float *scratch = embr__nn_scratch(ctx, tt * nt);
  if (!scratch) return;
  const float *X = qkv->d, *G = y->g, *Pall = u->P;
  embr__blas_enter(1); /* each thread runs single-threaded GEMMs */
#pragma omp parallel num_threads(nt)
  {
    float *dP = scratch + tt * omp_get_thread_num();
#pragma omp for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
      int b = bh / H, h = bh % H;
      int64_t in0 = (int64_t)b * T * 3 * D + (int64_t)h * hd, out0 = (int64_t)b * T * D + (int64_t)h * hd;
      const float *Q = X + in0, *K = Q + D, *V = Q + 2 * D, *dO = G + out0, *P = Pall + (int64_t)bh * tt;
      float *dQ = dqkv + in0, *dK = dQ + D, *dV = dQ + 2 * D;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 1.0f, dO, D, V, 3 * D, 0.0f, dP, T);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, P, T, dO, D, 1.0f, dV, 3 * D);
      for (int i = 0; i < T; i++) {
        const float *pr = P + (int64_t)i * T;
        float *gr = dP + (int64_t)i * T;
        int n = causal ? i + 1 : T;
        double a[8] = {0}, s = 0;
        int j = 0;
        for (; j + 8 <= n; j += 8)
          for (int k = 0; k < 8; k++) a[k] += (double)gr[j + k] * pr[j + k];
        for (; j < n; j++) s += (double)gr[j] * pr[j];
        for (int k = 0; k < 8; k++) s += a[k];
        float dot = (float)s;
        for (j = 0; j < n; j++) gr[j] = scale * pr[j] * (gr[j] - dot);
        for (j = n; j < T; j++) gr[j] = 0.0f;
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, dP, T, K, 3 * D, 1.0f, dQ, 3 * D);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, dP, T, Q, 3 * D, 1.0f, dK, 3 * D);
    }
  }
  embr__blas_leave();
  embr__nn_scratch_put(ctx, scratch);
}

nn_t *embr__nn_attention(nn_ctx *ctx, nn_t *qkv, int heads, int causal) {
  if (!qkv) return NULL;
  int D = qkv->w / 3;
  if (qkv->h != 1 || qkv->c < 1 || qkv->w % 3 || heads < 1 || D % heads) {
    ctx->rc = embr_error(EMBR_EINVAL,
                         "attention expects (batch, tokens, 1, 3 x width) with width a multiple of %d heads, got "
                         "(%d, %d, %d, %d)",
                         heads, qkv->n, qkv->c, qkv->h, qkv->w);
    return NULL;
  }
  int B = qkv->n, T = qkv->c, H = heads, hd = D / H, nt = ctx->nt;
  int64_t tt = (int64_t)T * T;
  nn_t *y = embr__nn_tensor(ctx, B, T, 1, D);
  if (!y) return NULL;
  /* Training keeps every head's probabilities for backward; inference one matrix per thread. */
  float *Pall = ctx->record ? embr__nn_floats(ctx, tt * B * H, 0) : embr__nn_scratch(ctx, tt * nt);
  if (!Pall) return NULL;
  float scale = 1.0f / sqrtf((float)hd);
  const float *X = qkv->d;
  float *Y = y->d;
  int keep = ctx->record;
  float *cls = ctx->keep_cls_attn ? embr__nn_floats(ctx, (int64_t)B * H * T, 0) : NULL;
  if (ctx->keep_cls_attn && !cls) return NULL;
  embr__blas_enter(1);
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num();
#pragma omp for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
      int b = bh / H, h = bh % H;
      const float *Q = X + (int64_t)b * T * 3 * D + (int64_t)h * hd, *K = Q + D, *V = Q + 2 * D;
      float *S = Pall + (keep ? (int64_t)bh : t) * tt;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, scale, Q, 3 * D, K, 3 * D, 0.0f, S, T);
      softmax_rows(S, T, causal);
      if (cls) memcpy(cls + (int64_t)bh * T, S, sizeof(float) * (size_t)T);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, S, T, V, 3 * D, 0.0f,
                  Y + (int64_t)b * T * D + (int64_t)h * hd, D);
    }
  }
  embr__blas_leave();
  if (cls) ctx->cls_attn = cls, ctx->cls_attn_heads = H, ctx->cls_attn_tokens = T;
  if (!keep) {
    embr__nn_scratch_put(ctx, Pall);
  } else {
    attn_node *u = embr__nn_alloc(ctx, sizeof(attn_node));
    if (!u) return NULL;
    *u = (attn_node){qkv, y, Pall, heads, causal};
    embr__nn_record(ctx, attn_backward, u, y, qkv, NULL);
  }
  return embr__nn_done(ctx, qkv, y);
}

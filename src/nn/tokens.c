/* The token-level ops of a transformer other than attention and normalisation, forward and
 * backward side by side: the dense (linear) map of each token's row, token embeddings with
 * learned positions, the ViT input tokens (class token + patches + positions) and pooling by
 * token index (class token or each text's EOT).
 *
 * Dense is one GEMM over all rows of the batch (B*T rows), its rows split over the OpenMP threads,
 * each running a single-threaded GEMM (gemm_rows: OpenBLAS's own thread pool and OpenMP's threads
 * spun against each other on the same cores; embr__nn_gemm_rows, also used by DINO's head). The other ops only move rows;
 * they check what their signatures cannot express (ids in range, parameter sizes against the
 * parameter table) and fail with EMBR_EINVAL in ctx->rc rather than read out of bounds. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/threads.h"
#include "nn/gemm.h"

/* Why embr__nn_param_add failed: the name (too long for the table) or memory. */
static int add_failed(const char *name) {
  return name && strlen(name) >= sizeof(((nn_param *)0)->name) ? EMBR_EINVAL : EMBR_ENOMEM;
}

/* The parameter stored at offset off, or NULL (a caller's own buffer layout). */
static const nn_param *param_at(const nn_params *P, int64_t off) {
  for (int i = 0; i < P->n; i++)
    if (P->p[i].off == off) return &P->p[i];
  return NULL;
}

/* An error unless the parameter at off (when it is one of the table's) holds at least n floats. */
static int check_param(nn_ctx *ctx, int64_t off, int64_t n, const char *what) {
  const nn_param *q = param_at(ctx->P, off);
  if (off < 0 || (q && q->numel < n)) {
    ctx->rc = embr_error(EMBR_EINVAL, "%s: parameter %s has %lld values, %lld needed", what, q ? q->name : "(none)",
                         (long long)(q ? q->numel : 0), (long long)n);
    return -1;
  }
  return 0;
}

/* Sums the rows of g (rows x cols, stride ld) into acc (cols), columns split over the threads:
 * no shared accumulators, and the same sums for any thread count. */
static void add_column_sums(const nn_ctx *ctx, const float *g, int64_t rows, int cols, int64_t ld, float *acc) {
  enum { COLS = 64 };
  int nblk = (cols + COLS - 1) / COLS;
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int blk = 0; blk < nblk; blk++) {
    int j0 = blk * COLS, nj = cols - j0 < COLS ? cols - j0 : COLS;
    double a[COLS] = {0};
    for (int64_t r = 0; r < rows; r++)
      for (int j = 0; j < nj; j++) a[j] += g[r * ld + j0 + j];
    for (int j = 0; j < nj; j++) acc[j0 + j] += (float)a[j];
  }
}

/* ---- dense ------------------------------------------------------------------------------------ */

/* C (m x n) = op(A) op(B) + beta C with the m rows of C split over the context's threads, each
 * running a single-threaded GEMM. OpenBLAS's own thread pool is not used: its threads and the
 * OpenMP threads of the ops around the GEMM would each spin-wait for work on the same two cores.
 * With too few rows to share (DINO's head on a batch's 64 global crops: 64 x 2048 x 2048) and
 * enough columns, the columns are split instead, so such products do not run on one thread. */
void embr__nn_gemm_rows(const nn_ctx *ctx, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, const float *A,
                      int lda, const float *B, int ldb, float beta, float *C, int ldc) {
  int nt = ctx->nt < 1 ? 1 : ctx->nt, parts = m >= 64 * nt ? nt : 1;
  int cols = parts == 1 && nt > 1 && n >= 256 * nt && (int64_t)m * k >= 16384; /* split n, not m */
  if (cols) parts = nt;
  embr__blas_enter(1);
#pragma omp parallel for num_threads(parts) schedule(static)
  for (int p = 0; p < parts; p++) {
    if (cols) { /* columns c0..c1 of op(B) and of C; block boundaries on 16 columns */
      int c0 = (int)((int64_t)n * p / parts) & ~15, c1 = p + 1 == parts ? n : (int)((int64_t)n * (p + 1) / parts) & ~15;
      const float *b = tb == CblasNoTrans ? B + c0 : B + (int64_t)c0 * ldb;
      if (c1 > c0) cblas_sgemm(CblasRowMajor, ta, tb, m, c1 - c0, k, 1.0f, A, lda, b, ldb, beta, C + c0, ldc);
      continue;
    }
    int r0 = (int)((int64_t)m * p / parts), r1 = (int)((int64_t)m * (p + 1) / parts);
    const float *a = ta == CblasNoTrans ? A + (int64_t)r0 * lda : A + r0;
    if (r1 > r0) cblas_sgemm(CblasRowMajor, ta, tb, r1 - r0, n, k, 1.0f, a, lda, B, ldb, beta, C + (int64_t)r0 * ldc, ldc);
  }
  embr__blas_leave();
}

typedef struct dense_node {
  nn_t *x, *y;
  const nn_dense *L;
} dense_node;

/* Y (M, out) = X (M, in) W^T (W (out, in)), or X W (W (in, out), t set). Backward:
 * dW += dY^T X (or X^T dY), db += column sums of dY, dX += dY W (or dY W^T). */
static void dense_backward(nn_ctx *ctx, void *node) {
  dense_node *u = node;
  const nn_dense *L = u->L;
  int64_t M = nn_numel(u->x) / L->in;
  const float *X = u->x->d, *dY = u->y->g, *W = nn_pd(ctx, L->w);
  float *dW = nn_pg(ctx, L->w);
  if (L->t)
    embr__nn_gemm_rows(ctx, CblasTrans, CblasNoTrans, L->in, L->out, (int)M, X, L->in, dY, L->out, 1.0f, dW, L->out);
  else
    embr__nn_gemm_rows(ctx, CblasTrans, CblasNoTrans, L->out, L->in, (int)M, dY, L->out, X, L->in, 1.0f, dW, L->in);
  if (u->x->g)
    embr__nn_gemm_rows(ctx, CblasNoTrans, L->t ? CblasTrans : CblasNoTrans, (int)M, L->in, L->out, dY, L->out, W,
              L->t ? L->out : L->in, 1.0f, u->x->g, L->in);
  if (L->b >= 0) add_column_sums(ctx, dY, M, L->out, L->out, nn_pg(ctx, L->b));
}

nn_t *embr__nn_dense_f(nn_ctx *ctx, nn_t *x, const nn_dense *L) {
  if (!x) return NULL;
  /* A pooled embedding (n, in, 1, 1) is n rows of in: the projection after take_token. */
  int pooled = x->w == 1 && x->h == 1 && x->c == L->in && L->in != 1;
  if (x->w != L->in && !pooled) {
    ctx->rc = embr_error(EMBR_EINVAL, "dense layer expects rows of %d, got %d", L->in, x->w);
    return NULL;
  }
  int64_t M = nn_numel(x) / L->in;
  if (M > INT32_MAX) {
    ctx->rc = embr_error(EMBR_EINVAL, "dense layer: %lld rows are too many for one product", (long long)M);
    return NULL;
  }
  nn_t *y = pooled ? embr__nn_tensor(ctx, x->n, L->out, 1, 1) : embr__nn_tensor(ctx, x->n, x->c, x->h, L->out);
  if (!y) return NULL;
  const float *W = nn_pd(ctx, L->w);
  float *Y = y->d;
  if (L->b >= 0) {
    const float *b = nn_pd(ctx, L->b);
    int out = L->out;
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
    for (int64_t r = 0; r < M; r++) memcpy(Y + r * out, b, sizeof(float) * (size_t)out);
  }
  embr__nn_gemm_rows(ctx, CblasNoTrans, L->t ? CblasNoTrans : CblasTrans, (int)M, L->out, L->in, x->d, L->in, W,
            L->t ? L->out : L->in, L->b >= 0 ? 1.0f : 0.0f, Y, L->out);
  if (ctx->record) {
    dense_node *u = embr__nn_alloc(ctx, sizeof(dense_node));
    if (!u) return NULL;
    *u = (dense_node){x, y, L};
    embr__nn_record(ctx, dense_backward, u, y, x, NULL);
  }
  return embr__nn_done(ctx, x, y);
}

int embr__nn_dense_make(nn_params *P, nn_dense *L, const char *wname, const char *bname, int in, int out, int t,
                        float std) {
  *L = (nn_dense){in, out, t ? 1 : 0, -1, -1};
  int64_t shape[2] = {t ? in : out, t ? out : in};
  float bound = 1.0f / sqrtf((float)in); /* PyTorch's default: uniform in +-1/sqrt(fan_in) */
  nn_init wi = std > 0 ? NN_INIT_NORMAL : NN_INIT_UNIFORM;
  if ((L->w = embr__nn_param_add(P, wname, 2, shape, NN_WEIGHT, wi, std > 0 ? std : bound)) < 0)
    return add_failed(wname);
  if (bname) {
    int64_t bs[1] = {out};
    /* With a normal init (transformer recipes) biases start at zero, as nn.MultiheadAttention's. */
    nn_init bi = std > 0 ? NN_INIT_ZERO : NN_INIT_UNIFORM;
    if ((L->b = embr__nn_param_add(P, bname, 1, bs, NN_NODECAY, bi, bound)) < 0) return add_failed(bname);
  }
  return 0;
}

/* ---- token embeddings ------------------------------------------------------------------------- */

typedef struct embed_node {
  nn_t *y;
  int32_t *ids; /* a copy: the caller's array need not outlive the forward call */
  int64_t table, pos;
} embed_node;

static void embed_backward(nn_ctx *ctx, void *node) {
  embed_node *u = node;
  int B = u->y->n, T = u->y->c, D = u->y->w;
  const float *G = u->y->g;
  float *dtab = nn_pg(ctx, u->table);
  /* Rows of the table may repeat: one thread, in order (deterministic sums). */
  for (int64_t r = 0; r < (int64_t)B * T; r++) {
    float *dst = dtab + (int64_t)u->ids[r] * D;
    const float *src = G + r * D;
    for (int j = 0; j < D; j++) dst[j] += src[j];
  }
  if (u->pos < 0) return;
  float *dpos = nn_pg(ctx, u->pos);
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int t = 0; t < T; t++)
    for (int b = 0; b < B; b++) {
      const float *src = G + ((int64_t)b * T + t) * D;
      for (int j = 0; j < D; j++) dpos[(int64_t)t * D + j] += src[j];
    }
}

nn_t *embr__nn_embed_tokens(nn_ctx *ctx, const int32_t *ids, int B, int T, int64_t table, int vocab, int64_t pos,
                            int D) {
  if (ctx->rc) return NULL;
  if (B < 1 || T < 1 || D < 1 || vocab < 1) {
    ctx->rc = embr_error(EMBR_EINVAL, "token embedding: bad sizes (batch %d, tokens %d, width %d, vocabulary %d)", B, T,
                         D, vocab);
    return NULL;
  }
  for (int64_t r = 0; r < (int64_t)B * T; r++)
    if (ids[r] < 0 || ids[r] >= vocab) {
      ctx->rc = embr_error(EMBR_EINVAL, "token id %d at position %lld is outside the vocabulary [0, %d)", (int)ids[r],
                           (long long)r, vocab);
      return NULL;
    }
  if (check_param(ctx, table, (int64_t)vocab * D, "token embedding") ||
      (pos >= 0 && check_param(ctx, pos, (int64_t)T * D, "positional embedding (too few positions?)")))
    return NULL;
  nn_t *y = embr__nn_tensor(ctx, B, T, 1, D);
  if (!y) return NULL;
  const float *tab = nn_pd(ctx, table), *P = pos >= 0 ? nn_pd(ctx, pos) : NULL;
  float *Y = y->d;
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int64_t r = 0; r < (int64_t)B * T; r++) {
    const float *e = tab + (int64_t)ids[r] * D;
    float *dst = Y + r * D;
    if (P) {
      const float *p = P + (r % T) * D;
      for (int j = 0; j < D; j++) dst[j] = e[j] + p[j];
    } else {
      memcpy(dst, e, sizeof(float) * (size_t)D);
    }
  }
  if (ctx->record) {
    embed_node *u = embr__nn_alloc(ctx, sizeof(embed_node));
    int32_t *copy = embr__nn_alloc(ctx, sizeof(int32_t) * (size_t)B * T);
    if (!u || !copy) return NULL;
    memcpy(copy, ids, sizeof(int32_t) * (size_t)B * T);
    *u = (embed_node){y, copy, table, pos};
    embr__nn_record(ctx, embed_backward, u, y, NULL, NULL);
  }
  return y;
}

/* ---- ViT input tokens ------------------------------------------------------------------------- */

typedef struct vit_node {
  nn_t *x, *y;
  int64_t cls, pos; /* pos: a parameter's offset, or -1 when the positions are the tensor pt */
  nn_t *pt;
} vit_node;

/* Token t >= 1 of image b is patch t-1: column t-1 of the image's (D, gh*gw) plane, so forward
 * and backward are transposes, done in tiles that stay in cache. */
enum { VIT_TILE = 32 };

static void vit_backward(nn_ctx *ctx, void *node) {
  vit_node *u = node;
  const nn_t *x = u->x, *y = u->y;
  int B = x->n, D = x->c, T = y->c;
  int64_t Np = (int64_t)x->h * x->w;
  const float *G = y->g;
  float *dcls = nn_pg(ctx, u->cls), *dpos = u->pt ? u->pt->g : nn_pg(ctx, u->pos);
  add_column_sums(ctx, G, B, D, (int64_t)T * D, dcls); /* token 0 of every image */
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int t = 0; t < T; t++)
    if (dpos)
    for (int b = 0; b < B; b++) {
      const float *src = G + ((int64_t)b * T + t) * D;
      for (int j = 0; j < D; j++) dpos[(int64_t)t * D + j] += src[j];
    }
  if (!x->g) return;
  float *gx = x->g;
  int64_t ntp = (Np + VIT_TILE - 1) / VIT_TILE;
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int64_t bt = 0; bt < B * ntp; bt++) {
    int b = (int)(bt / ntp);
    int64_t p0 = bt % ntp * VIT_TILE, p1 = p0 + VIT_TILE < Np ? p0 + VIT_TILE : Np;
    const float *g = G + ((int64_t)b * T + 1) * D;
    float *dx = gx + (int64_t)b * D * Np;
    for (int d0 = 0; d0 < D; d0 += VIT_TILE)
      for (int d = d0; d < D && d < d0 + VIT_TILE; d++)
        for (int64_t p = p0; p < p1; p++) dx[d * Np + p] += g[p * D + d];
  }
}

static nn_t *vit_tokens(nn_ctx *ctx, nn_t *x, int64_t cls, int64_t pos, nn_t *pt) {
  if (!x || (!pt && pos < 0)) return NULL;
  int B = x->n, D = x->c;
  int64_t Np = (int64_t)x->h * x->w;
  if (Np + 1 > INT32_MAX / 2) {
    ctx->rc = embr_error(EMBR_EINVAL, "ViT tokens: %lld patches are too many", (long long)Np);
    return NULL;
  }
  int T = (int)Np + 1;
  if (check_param(ctx, cls, D, "class token") || (!pt && check_param(ctx, pos, (int64_t)T * D, "ViT positional embedding")))
    return NULL;
  if (pt && nn_numel(pt) != (int64_t)T * D) {
    ctx->rc = embr_error(EMBR_EINVAL, "ViT tokens: %lld positional values for %d tokens of %d", (long long)nn_numel(pt), T, D);
    return NULL;
  }
  nn_t *y = embr__nn_tensor(ctx, B, T, 1, D);
  if (!y) return NULL;
  const float *C = nn_pd(ctx, cls), *P = pt ? pt->d : nn_pd(ctx, pos), *X = x->d;
  float *Y = y->d;
  int64_t ntp = (Np + VIT_TILE - 1) / VIT_TILE;
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int64_t bt = 0; bt < B * ntp; bt++) {
    int b = (int)(bt / ntp);
    int64_t p0 = bt % ntp * VIT_TILE, p1 = p0 + VIT_TILE < Np ? p0 + VIT_TILE : Np;
    float *yb = Y + (int64_t)b * T * D;
    const float *xb = X + (int64_t)b * D * Np;
    if (p0 == 0)
      for (int j = 0; j < D; j++) yb[j] = C[j] + P[j];
    for (int64_t p = p0; p < p1; p++) memcpy(yb + (p + 1) * D, P + (p + 1) * D, sizeof(float) * (size_t)D);
    for (int d0 = 0; d0 < D; d0 += VIT_TILE)
      for (int64_t p = p0; p < p1; p++)
        for (int d = d0; d < D && d < d0 + VIT_TILE; d++) yb[(p + 1) * D + d] += xb[d * Np + p];
  }
  if (ctx->record) {
    vit_node *u = embr__nn_alloc(ctx, sizeof(vit_node));
    if (!u) return NULL;
    *u = (vit_node){x, y, cls, pos, pt};
    embr__nn_record(ctx, vit_backward, u, y, x, pt);
  }
  if (pt) embr__nn_done(ctx, pt, y);
  return embr__nn_done(ctx, x, y);
}

nn_t *embr__nn_vit_tokens(nn_ctx *ctx, nn_t *x, int64_t cls, int64_t pos) { return vit_tokens(ctx, x, cls, pos, NULL); }

nn_t *embr__nn_vit_tokens_pos(nn_ctx *ctx, nn_t *x, int64_t cls, nn_t *pos) {
  if (!pos) return NULL;
  return vit_tokens(ctx, x, cls, -1, pos);
}

/* ---- positional embeddings resampled (bicubic) ----------------------------------------------- */

/* Row i of W (g x M, zeroed by the caller) holds the weights with which output i reads the M
 * inputs: PyTorch's upsample_bicubic2d on CPU with align_corners=False and the scale factor
 * given, in float as it computes: source x = (i + 0.5) / scale - 0.5, its floor clamped to
 * M - 1 and the fraction t to [0, 1], Keys' cubic with A = -0.75 over the 4 inputs around it,
 * indices clamped at the borders (their weights add up). */
static void bicubic_weights(int M, int g, double scale, float *W) {
  const float A = -0.75f, ratio = (float)(1.0 / scale);
  for (int i = 0; i < g; i++) {
    float src = ratio * ((float)i + 0.5f) - 0.5f;
    int64_t i0 = (int64_t)floorf(src);
    if (i0 > M - 1) i0 = M - 1;
    float t = src - (float)i0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    float x1 = t + 1.0f, x2 = 1.0f - t, x3 = 2.0f - t;
    float c[4] = {((A * x1 - 5 * A) * x1 + 8 * A) * x1 - 4 * A, ((A + 2) * t - (A + 3)) * t * t + 1,
                  ((A + 2) * x2 - (A + 3)) * x2 * x2 + 1, ((A * x3 - 5 * A) * x3 + 8 * A) * x3 - 4 * A};
    for (int k = 0; k < 4; k++) {
      int64_t j = i0 - 1 + k;
      j = j < 0 ? 0 : j > M - 1 ? M - 1 : j;
      W[(int64_t)i * M + j] += c[k];
    }
  }
}

typedef struct pos_node {
  nn_t *y;
  int64_t pos;
  int M, g, D;
  float *W; /* g x M */
} pos_node;

/* tmp (g, M, D) = W (g x M) applied along the first grid axis of src (M, M, D); out (g, g, D) =
 * W along the second axis of tmp. Backward is the same with W^T, from (g, g) back to (M, M). */
static void apply_rows(const float *W, int rows_out, int rows_in, int64_t inner, const float *src, float *dst,
                       int transpose) {
  for (int i = 0; i < rows_out; i++)
    for (int a = 0; a < rows_in; a++) {
      float w = transpose ? W[(int64_t)a * rows_out + i] : W[(int64_t)i * rows_in + a];
      if (w == 0) continue;
      const float *s = src + (int64_t)a * inner;
      float *d = dst + (int64_t)i * inner;
      for (int64_t k = 0; k < inner; k++) d[k] += w * s[k];
    }
}

/* Along the second axis: for each of n outer rows, (cols_in, D) -> (cols_out, D). */
static void apply_cols(const float *W, int n, int cols_out, int cols_in, int D, const float *src, float *dst,
                       int transpose) {
  for (int r = 0; r < n; r++)
    apply_rows(W, cols_out, cols_in, D, src + (int64_t)r * cols_in * D, dst + (int64_t)r * cols_out * D, transpose);
}

static void pos_backward(nn_ctx *ctx, void *node) {
  pos_node *u = node;
  int M = u->M, g = u->g, D = u->D;
  const float *G = u->y->g;
  float *dpos = nn_pg(ctx, u->pos);
  for (int j = 0; j < D; j++) dpos[j] += G[j];
  float *tmp = embr__nn_scratch(ctx, (int64_t)g * M * D), *acc = embr__nn_scratch(ctx, (int64_t)M * M * D);
  if (!tmp || !acc) return;
  memset(tmp, 0, sizeof(float) * (size_t)g * M * D);
  memset(acc, 0, sizeof(float) * (size_t)M * M * D);
  apply_cols(u->W, g, M, g, D, G + D, tmp, 1);          /* (g, g) -> (g, M) */
  apply_rows(u->W, M, g, (int64_t)M * D, tmp, acc, 1);  /* (g, M) -> (M, M) */
  for (int64_t k = 0; k < (int64_t)M * M * D; k++) dpos[D + k] += acc[k];
  embr__nn_scratch_put(ctx, acc);
  embr__nn_scratch_put(ctx, tmp);
}

nn_t *embr__nn_pos_resample(nn_ctx *ctx, int64_t pos, int M, int g, int D) {
  if (ctx->rc) return NULL;
  if (M < 1 || g < 1 || D < 1 || M > 4096 || g > 4096) {
    ctx->rc = embr_error(EMBR_EINVAL, "positional embedding: bad grid %d -> %d or width %d", M, g, D);
    return NULL;
  }
  if (check_param(ctx, pos, ((int64_t)M * M + 1) * D, "positional embedding")) return NULL;
  nn_t *y = embr__nn_tensor(ctx, 1, 1 + g * g, 1, D);
  float *W = embr__nn_floats(ctx, (int64_t)g * M, 1);
  if (!y || !W) return NULL;
  const float *P = nn_pd(ctx, pos);
  if (g == M) { /* the references use the table as it is then (their scale (M + 0.1) / M would not) */
    memcpy(y->d, P, sizeof(float) * (size_t)(1 + M * M) * (size_t)D);
    for (int i = 0; i < M; i++) W[(int64_t)i * M + i] = 1;
  } else {
    bicubic_weights(M, g, (g + 0.1) / M, W);
    float *tmp = embr__nn_scratch(ctx, (int64_t)g * M * D);
    if (!tmp) return NULL;
    memset(tmp, 0, sizeof(float) * (size_t)g * M * D);
    memset(y->d, 0, sizeof(float) * (size_t)nn_numel(y));
    memcpy(y->d, P, sizeof(float) * (size_t)D);
    apply_rows(W, g, M, (int64_t)M * D, P + D, tmp, 0);   /* (M, M) -> (g, M) */
    apply_cols(W, g, g, M, D, tmp, y->d + D, 0);          /* (g, M) -> (g, g) */
    embr__nn_scratch_put(ctx, tmp);
  }
  if (ctx->record) {
    pos_node *u = embr__nn_alloc(ctx, sizeof(pos_node));
    if (!u) return NULL;
    *u = (pos_node){y, pos, M, g, D, W};
    embr__nn_record(ctx, pos_backward, u, y, NULL, NULL);
  }
  return y;
}

/* ---- pooling by token index ------------------------------------------------------------------- */

typedef struct take_node {
  nn_t *x, *y;
  int32_t *idx; /* a copy, or NULL: token 0 */
} take_node;

static void take_backward(nn_ctx *ctx, void *node) {
  take_node *u = node;
  if (!u->x->g) return;
  int T = u->x->c, D = u->x->w;
  for (int b = 0; b < u->x->n; b++) {
    float *dst = u->x->g + ((int64_t)b * T + (u->idx ? u->idx[b] : 0)) * D;
    const float *src = u->y->g + (int64_t)b * D;
    for (int j = 0; j < D; j++) dst[j] += src[j];
  }
}

nn_t *embr__nn_take_token(nn_ctx *ctx, nn_t *x, const int32_t *idx) {
  if (!x) return NULL;
  int B = x->n, T = x->c, D = x->w;
  if (x->h != 1) {
    ctx->rc = embr_error(EMBR_EINVAL, "token pooling expects (batch, tokens, 1, width), got h = %d", x->h);
    return NULL;
  }
  for (int b = 0; idx && b < B; b++)
    if (idx[b] < 0 || idx[b] >= T) {
      ctx->rc = embr_error(EMBR_EINVAL, "token index %d of row %d is outside [0, %d)", (int)idx[b], b, T);
      return NULL;
    }
  nn_t *y = embr__nn_tensor(ctx, B, D, 1, 1);
  if (!y) return NULL;
  for (int b = 0; b < B; b++)
    memcpy(y->d + (int64_t)b * D, x->d + ((int64_t)b * T + (idx ? idx[b] : 0)) * D, sizeof(float) * (size_t)D);
  if (ctx->record) {
    take_node *u = embr__nn_alloc(ctx, sizeof(take_node));
    int32_t *copy = idx ? embr__nn_alloc(ctx, sizeof(int32_t) * (size_t)B) : NULL;
    if (!u || (idx && !copy)) return NULL;
    if (idx) memcpy(copy, idx, sizeof(int32_t) * (size_t)B);
    *u = (take_node){x, y, copy};
    embr__nn_record(ctx, take_backward, u, y, x, NULL);
  }
  return embr__nn_done(ctx, x, y);
}

/* ---- class token + mean patch token ------------------------------------------------------------ */

static void cls_avg_backward(nn_ctx *ctx, void *node) {
  take_node *u = node;
  if (!u->x->g) return;
  int B = u->x->n, T = u->x->c, D = u->x->w;
  float inv = 1.0f / (float)(T - 1);
  for (int b = 0; b < B; b++) {
    const float *g = u->y->g + (int64_t)b * 2 * D;
    float *dx = u->x->g + (int64_t)b * T * D;
    for (int j = 0; j < D; j++) dx[j] += g[j];
    for (int t = 1; t < T; t++)
      for (int j = 0; j < D; j++) dx[(int64_t)t * D + j] += g[D + j] * inv;
  }
}

nn_t *embr__nn_cls_avg(nn_ctx *ctx, nn_t *x) {
  if (!x) return NULL;
  int B = x->n, T = x->c, D = x->w;
  if (x->h != 1 || T < 2) {
    ctx->rc = embr_error(EMBR_EINVAL, "class + mean pooling expects (batch, tokens >= 2, 1, width), got (%d, %d, %d, %d)",
                         x->n, x->c, x->h, x->w);
    return NULL;
  }
  nn_t *y = embr__nn_tensor(ctx, B, 2 * D, 1, 1);
  if (!y) return NULL;
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int b = 0; b < B; b++) {
    const float *xb = x->d + (int64_t)b * T * D;
    float *yb = y->d + (int64_t)b * 2 * D;
    memcpy(yb, xb, sizeof(float) * (size_t)D);
    for (int j = 0; j < D; j++) { /* in double, token order: the same sum for any thread count */
      double s = 0;
      for (int t = 1; t < T; t++) s += xb[(int64_t)t * D + j];
      yb[D + j] = (float)(s / (T - 1));
    }
  }
  if (ctx->record) {
    take_node *u = embr__nn_alloc(ctx, sizeof(take_node));
    if (!u) return NULL;
    *u = (take_node){x, y, NULL};
    embr__nn_record(ctx, cls_avg_backward, u, y, x, NULL);
  }
  return embr__nn_done(ctx, x, y);
}

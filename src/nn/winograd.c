/* 3x3 stride-1 convolutions by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray 2016):
 * each 2x2 output tile comes from a 4x4 input tile with 16 multiplications per channel pair
 * instead of 36, the channel sums done as 16 GEMMs (one per position of the transformed tile):
 *   M[xi] (out x tiles) = U[xi] (out x in) * V[xi] (in x tiles),
 * U = G g G^T (weights), V = B^T d B (input tiles), output tile = A^T m A. 2.25x fewer
 * multiplications than im2col + GEMM; the transforms are additions only. The forward pass and the
 * input gradient (a stride-1 3x3 convolution with the flipped, transposed kernel) run here; the
 * weight gradient takes the im2col path. */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"
#include "nn/sgemm.h"
#include "nn/winograd.h"

/* u = G g G^T of one 3x3 kernel g (row-major); rows of G: (1,0,0) (.5,.5,.5) (.5,-.5,.5) (0,0,1). */
static void kernel_transform(const float g[9], float u[16]) {
  float t[4][3];
  for (int j = 0; j < 3; j++) {
    t[0][j] = g[j];
    t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
    t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
    t[3][j] = g[6 + j];
  }
  for (int i = 0; i < 4; i++) {
    u[i * 4 + 0] = t[i][0];
    u[i * 4 + 1] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
    u[i * 4 + 2] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
    u[i * 4 + 3] = t[i][2];
  }
}

/* U[xi][o][c] for every output and input channel; with `flipped`, the weights of the convolution
 * that maps an output gradient back to the input gradient: each kernel turned by 180 degrees and
 * the channels swapped, U[xi][c][o]. */
static void transform_weights(const float *w, int O, int C, int flipped, float *U, int nt) {
  int64_t OC = (int64_t)O * C;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t k = 0; k < OC; k++) {
    /* k indexes U's (row, column) pair: (o, c), or (c, o) when flipped. */
    int64_t src = flipped ? (k % O) * C + k / O : k;
    float g[9], u[16];
    for (int i = 0; i < 9; i++) g[i] = w[src * 9 + (flipped ? 8 - i : i)];
    kernel_transform(g, u);
    for (int xi = 0; xi < 16; xi++) U[xi * OC + k] = u[xi];
  }
}

/* V[xi][c][t] for the tiles of images [img0, img0 + nb): B^T d B of each 4x4 input patch
 * (zero outside the image: the padding of 1). Four input rows are copied into zero-padded rows
 * first, so the loop over a row of tiles has no bounds checks and vectorises; `pad` holds
 * 4 * (2 * tw + 2) floats. */
static void transform_input(const float *x, int C, int H, int W, int th, int tw, int img0, int nb, float *V, int64_t T,
                            float *pad) {
  int64_t hw = (int64_t)H * W, stride = (int64_t)C * T;
  int pw = 2 * tw + 2;
  for (int b = 0; b < nb; b++)
    for (int c = 0; c < C; c++) {
      const float *src = x + ((int64_t)(img0 + b) * C + c) * hw;
      for (int ty = 0; ty < th; ty++) {
        float *r[4];
        for (int i = 0; i < 4; i++) {
          r[i] = pad + i * pw;
          int yy = 2 * ty - 1 + i;
          memset(r[i], 0, sizeof(float) * (size_t)pw);
          if (yy >= 0 && yy < H) memcpy(r[i] + 1, src + (int64_t)yy * W, sizeof(float) * (size_t)(W < pw - 1 ? W : pw - 1));
        }
        float *out = V + (int64_t)c * T + ((int64_t)b * th + ty) * tw;
        for (int tx = 0; tx < tw; tx++) {
          int x0 = 2 * tx;
          float t[4][4]; /* B^T d: rows (1,0,-1,0) (0,1,1,0) (0,-1,1,0) (0,1,0,-1) */
          for (int j = 0; j < 4; j++) {
            float d0 = r[0][x0 + j], d1 = r[1][x0 + j], d2 = r[2][x0 + j], d3 = r[3][x0 + j];
            t[0][j] = d0 - d2;
            t[1][j] = d1 + d2;
            t[2][j] = d2 - d1;
            t[3][j] = d1 - d3;
          }
          for (int i = 0; i < 4; i++) {
            out[(i * 4 + 0) * stride + tx] = t[i][0] - t[i][2];
            out[(i * 4 + 1) * stride + tx] = t[i][1] + t[i][2];
            out[(i * 4 + 2) * stride + tx] = t[i][2] - t[i][1];
            out[(i * 4 + 3) * stride + tx] = t[i][1] - t[i][3];
          }
        }
      }
    }
}

/* y tiles from M[xi][o][t]: A^T m A, rows of A^T (1,1,1,0) (0,1,-1,-1); plus the bias. A row of
 * tiles is written into two padded rows first (an odd width's last tile has one column). */
static void transform_output(const float *M, int O, int OH, int OW, int th, int tw, int img0, int nb, int64_t T,
                             const float *bias, float *y, float *pad, int accumulate) {
  int64_t P = (int64_t)OH * OW, stride = (int64_t)O * T;
  for (int b = 0; b < nb; b++)
    for (int o = 0; o < O; o++) {
      float *dst = y + ((int64_t)(img0 + b) * O + o) * P, bv = bias ? bias[o] : 0.0f;
      for (int ty = 0; ty < th; ty++) {
        const float *m = M + (int64_t)o * T + ((int64_t)b * th + ty) * tw;
        float *r0 = pad, *r1 = pad + 2 * tw;
        for (int tx = 0; tx < tw; tx++) {
          float t0[4], t1[4];
          for (int j = 0; j < 4; j++) {
            float m0 = m[(0 * 4 + j) * stride + tx], m1 = m[(1 * 4 + j) * stride + tx], m2 = m[(2 * 4 + j) * stride + tx],
                  m3 = m[(3 * 4 + j) * stride + tx];
            t0[j] = m0 + m1 + m2;
            t1[j] = m1 - m2 - m3;
          }
          r0[2 * tx] = t0[0] + t0[1] + t0[2] + bv;
          r0[2 * tx + 1] = t0[1] - t0[2] - t0[3] + bv;
          r1[2 * tx] = t1[0] + t1[1] + t1[2] + bv;
          r1[2 * tx + 1] = t1[1] - t1[2] - t1[3] + bv;
        }
        float *d0 = dst + (int64_t)(2 * ty) * OW, *d1 = d0 + OW;
        if (accumulate) {
          for (int i = 0; i < OW; i++) d0[i] += r0[i];
          for (int i = 0; 2 * ty + 1 < OH && i < OW; i++) d1[i] += r1[i];
        } else {
          memcpy(d0, r0, sizeof(float) * (size_t)OW);
          if (2 * ty + 1 < OH) memcpy(d1, r1, sizeof(float) * (size_t)OW);
        }
      }
    }
}

/* The transformed weights, kept beside the parameter table: recomputed when the weights changed
 * (P->version) or, in training, every step (tests and training write weights between passes). */
static float *cached_weights(nn_ctx *ctx, const nn_conv *L) {
  nn_params *P = ctx->P;
  if (!P->derived) {
    P->derived = calloc((size_t)P->n, sizeof(float *));
    P->derived_version = calloc((size_t)P->n, sizeof(uint64_t));
    if (!P->derived || !P->derived_version) {
      free(P->derived), free(P->derived_version);
      P->derived = NULL, P->derived_version = NULL;
      ctx->rc = embr_error(EMBR_ENOMEM, "out of memory");
      return NULL;
    }
  }
  int i = L->widx;
  if (!P->derived[i] && !(P->derived[i] = malloc(sizeof(float) * 16 * (size_t)L->out * (size_t)L->in))) {
    ctx->rc = embr_error(EMBR_ENOMEM, "out of memory");
    return NULL;
  }
  if (ctx->training || P->derived_version[i] != P->version + 1) {
    transform_weights(nn_pd(ctx, L->w), L->out, L->in, 0, P->derived[i], ctx->nt);
    P->derived_version[i] = P->version + 1; /* + 1: version 0 never matches a fresh table */
  }
  return P->derived[i];
}

int embr__winograd_applies(int k, int stride, int pad, int groups, int in, int out) {
  return k == 3 && stride == 1 && pad == 1 && groups == 1 && in >= 16 && out >= 16;
}

/* Tiles per GEMM: enough columns to run the GEMMs at speed, at least one chunk per thread. */
static int images_per_chunk(int n, int64_t tiles, int nt) {
  int nb = tiles >= 256 ? 1 : (int)((256 + tiles - 1) / tiles), fair = (n + nt - 1) / nt;
  if (nb > fair) nb = fair;
  return nb < 1 ? 1 : nb;
}

/* y (n x O x H x W) = or += the convolution of x (n x C x H x W) with transformed weights U. */
static int run(nn_ctx *ctx, const float *x, int n, int C, int H, int W, int O, const float *U, const float *bias, float *y,
               int accumulate) {
  int th = (H + 1) / 2, tw = (W + 1) / 2;
  int nt = ctx->nt, nb = images_per_chunk(n, (int64_t)th * tw, nt);
  int64_t Tmax = (int64_t)nb * th * tw, per = 16 * ((int64_t)C + O) * Tmax + 4 * (2 * (int64_t)tw + 2);
  float *work = embr__nn_scratch(ctx, per * nt);
  if (!work) return ctx->rc;
  int nchunks = (n + nb - 1) / nb;
#pragma omp parallel num_threads(nt)
  {
    float *V = work + per * omp_get_thread_num(), *M = V + 16 * (int64_t)C * Tmax, *pad = M + 16 * (int64_t)O * Tmax;
#pragma omp for schedule(dynamic, 1)
    for (int ch = 0; ch < nchunks; ch++) {
      int img0 = ch * nb, cnt = n - img0 < nb ? n - img0 : nb;
      int64_t T = (int64_t)cnt * th * tw;
      transform_input(x, C, H, W, th, tw, img0, cnt, V, T, pad);
      for (int xi = 0; xi < 16; xi++)
        embr__nn_sgemm1(CblasNoTrans, CblasNoTrans, O, (int)T, C, 1.0f, U + (int64_t)xi * O * C, C,
                    V + (int64_t)xi * C * T, (int)T, 0.0f, M + (int64_t)xi * O * T, (int)T);
      transform_output(M, O, H, W, th, tw, img0, cnt, T, bias, y, pad, accumulate);
    }
  }
  embr__nn_scratch_put(ctx, work);
  return 0;
}

int embr__winograd_conv(nn_ctx *ctx, const nn_conv *L, const nn_t *x, nn_t *y) {
  float *U = cached_weights(ctx, L);
  if (!U) return ctx->rc;
  return run(ctx, x->d, x->n, x->c, x->h, x->w, L->out, U, L->b >= 0 ? nn_pd(ctx, L->b) : NULL, y->d, 0);
}

int embr__winograd_backward_data(nn_ctx *ctx, const nn_conv *L, const nn_t *y, nn_t *x) {
  float *U = embr__nn_scratch(ctx, 16 * (int64_t)L->out * L->in);
  if (!U) return ctx->rc;
  transform_weights(nn_pd(ctx, L->w), L->out, L->in, 1, U, ctx->nt);
  int rc = run(ctx, y->g, y->n, L->out, y->h, y->w, L->in, U, NULL, x->g, 1);
  embr__nn_scratch_put(ctx, U);
  return rc;
}

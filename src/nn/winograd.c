/* 3x3 stride-1 convolutions by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray 2016):
 * each 2x2 output tile comes from a 4x4 input tile with 16 multiplications per channel pair
 * instead of 36, the channel sums done as 16 GEMMs (one per position of the transformed tile):
 *   M[xi] (out x tiles) = U[xi] (out x in) * V[xi] (in x tiles),
 * U = G g G^T (weights), V = B^T d B (input tiles), output tile = A^T m A. 2.25x fewer
 * multiplications than im2col + GEMM; the transforms are additions only. Forward only: backward
 * takes the im2col path (the same convolution, so the gradients are unchanged). */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "nn/nn.h"
#include "nn/winograd.h"

/* U[xi][o][c] for every output and input channel: G g G^T of the 3x3 kernel. */
static void transform_weights(const float *w, int O, int C, float *U) {
  int64_t OC = (int64_t)O * C;
#pragma omp parallel for schedule(static)
  for (int64_t oc = 0; oc < OC; oc++) {
    const float *g = w + oc * 9;
    float t[4][3]; /* G g: rows of G are (1,0,0) (.5,.5,.5) (.5,-.5,.5) (0,0,1) */
    for (int j = 0; j < 3; j++) {
      t[0][j] = g[j];
      t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
      t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
      t[3][j] = g[6 + j];
    }
    for (int i = 0; i < 4; i++) { /* (G g) G^T */
      float u[4] = {t[i][0], 0.5f * (t[i][0] + t[i][1] + t[i][2]), 0.5f * (t[i][0] - t[i][1] + t[i][2]), t[i][2]};
      for (int j = 0; j < 4; j++) U[(int64_t)(i * 4 + j) * OC + oc] = u[j];
    }
  }
}

/* V[xi][c][t] for the tiles of images [img0, img0 + nb): B^T d B of each 4x4 input patch
 * (zero outside the image: the padding of 1). */
static void transform_input(const float *x, int C, int H, int W, int th, int tw, int img0, int nb, float *V, int64_t T) {
  int64_t hw = (int64_t)H * W;
  for (int b = 0; b < nb; b++)
    for (int c = 0; c < C; c++) {
      const float *src = x + ((int64_t)(img0 + b) * C + c) * hw;
      for (int ty = 0; ty < th; ty++)
        for (int tx = 0; tx < tw; tx++) {
          float d[4][4];
          int y0 = 2 * ty - 1, x0 = 2 * tx - 1;
          for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
              int yy = y0 + i, xx = x0 + j;
              d[i][j] = yy >= 0 && yy < H && xx >= 0 && xx < W ? src[(int64_t)yy * W + xx] : 0.0f;
            }
          float t[4][4]; /* B^T d: rows (1,0,-1,0) (0,1,1,0) (0,-1,1,0) (0,1,0,-1) */
          for (int j = 0; j < 4; j++) {
            t[0][j] = d[0][j] - d[2][j];
            t[1][j] = d[1][j] + d[2][j];
            t[2][j] = d[2][j] - d[1][j];
            t[3][j] = d[1][j] - d[3][j];
          }
          int64_t col = ((int64_t)b * th + ty) * tw + tx, base = (int64_t)c * T + col, stride = (int64_t)C * T;
          for (int i = 0; i < 4; i++) {
            float v[4] = {t[i][0] - t[i][2], t[i][1] + t[i][2], t[i][2] - t[i][1], t[i][1] - t[i][3]};
            for (int j = 0; j < 4; j++) V[(i * 4 + j) * stride + base] = v[j];
          }
        }
    }
}

/* y tiles from M[xi][o][t]: A^T m A, rows of A^T (1,1,1,0) (0,1,-1,-1); plus the bias. */
static void transform_output(const float *M, int O, int OH, int OW, int th, int tw, int img0, int nb, int64_t T,
                             const float *bias, float *y) {
  int64_t P = (int64_t)OH * OW, stride = (int64_t)O * T;
  for (int b = 0; b < nb; b++)
    for (int o = 0; o < O; o++) {
      float *dst = y + ((int64_t)(img0 + b) * O + o) * P, bv = bias ? bias[o] : 0.0f;
      for (int ty = 0; ty < th; ty++)
        for (int tx = 0; tx < tw; tx++) {
          int64_t base = (int64_t)o * T + ((int64_t)b * th + ty) * tw + tx;
          float m[4][4], t[2][4];
          for (int xi = 0; xi < 16; xi++) m[xi / 4][xi % 4] = M[xi * stride + base];
          for (int j = 0; j < 4; j++) {
            t[0][j] = m[0][j] + m[1][j] + m[2][j];
            t[1][j] = m[1][j] - m[2][j] - m[3][j];
          }
          for (int i = 0; i < 2; i++) {
            int oy = 2 * ty + i;
            if (oy >= OH) break;
            float r0 = t[i][0] + t[i][1] + t[i][2], r1 = t[i][1] - t[i][2] - t[i][3];
            dst[(int64_t)oy * OW + 2 * tx] = r0 + bv;
            if (2 * tx + 1 < OW) dst[(int64_t)oy * OW + 2 * tx + 1] = r1 + bv;
          }
        }
    }
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

int embr__winograd_conv(nn_ctx *ctx, const nn_conv *L, const nn_t *x, nn_t *y) {
  int C = x->c, O = L->out, H = x->h, W = x->w, th = (y->h + 1) / 2, tw = (y->w + 1) / 2;
  int nt = omp_get_max_threads(), nb = images_per_chunk(x->n, (int64_t)th * tw, nt);
  int64_t Tmax = (int64_t)nb * th * tw, per = 16 * ((int64_t)C + O) * Tmax;
  float *U = nn_scratch(ctx, 16 * (int64_t)O * C), *work = nn_scratch(ctx, per * nt);
  const float *bias = L->b >= 0 ? nn_pd(ctx, L->b) : NULL;
  if (!U || !work) {
    nn_scratch_put(ctx, U);
    nn_scratch_put(ctx, work);
    return ctx->rc;
  }
  transform_weights(nn_pd(ctx, L->w), O, C, U);
  int nchunks = (x->n + nb - 1) / nb;
#pragma omp parallel
  {
    float *V = work + per * omp_get_thread_num(), *M = V + 16 * (int64_t)C * Tmax;
#pragma omp for schedule(dynamic, 1)
    for (int ch = 0; ch < nchunks; ch++) {
      int img0 = ch * nb, cnt = x->n - img0 < nb ? x->n - img0 : nb;
      int64_t T = (int64_t)cnt * th * tw;
      transform_input(x->d, C, H, W, th, tw, img0, cnt, V, T);
      for (int xi = 0; xi < 16; xi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, O, (int)T, C, 1.0f, U + (int64_t)xi * O * C, C,
                    V + (int64_t)xi * C * T, (int)T, 0.0f, M + (int64_t)xi * O * T, (int)T);
      transform_output(M, O, y->h, y->w, th, tw, img0, cnt, T, bias, y->d);
    }
  }
  nn_scratch_put(ctx, U);
  nn_scratch_put(ctx, work);
  return 0;
}

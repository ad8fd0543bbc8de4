/* AVX2 + FMA attraction for 2-D maps (compiled alone with -mavx2 -mfma, entered from
 * tsne_grad.c after embr_cpu_active() says the CPU has them).
 *
 * Why: the scalar loop is bound by one double division per neighbour (~90-130 per point and
 * iteration); four neighbours at a time share one vdivpd. Still double precision throughout:
 * only the order of the sum changes (four partial sums, then a fixed horizontal sum, then the
 * tail), so the result differs from the scalar loop's by rounding only, and is the same for
 * every thread count. */
#include "viz/tsne_internal.h"

#include <immintrin.h>

void embr__tsne_attract_2d_avx2(const embr_affinities *P, const double *y, double *att, int64_t i0, int64_t i1) {
  const __m256d one = _mm256_set1_pd(1.0);
  for (int64_t i = i0; i < i1; i++) {
    const __m256d yx = _mm256_set1_pd(y[2 * i]), yy = _mm256_set1_pd(y[2 * i + 1]);
    __m256d fx = _mm256_setzero_pd(), fy = _mm256_setzero_pd();
    int64_t s = P->row[i], e = P->row[i + 1];
    for (; s + 4 <= e; s += 4) {
      const int32_t *c = P->col + s;
      /* (x, y) of four neighbours, two per 128-bit load, regrouped into x0..x3 and y0..y3 */
      __m256d lo = _mm256_insertf128_pd(_mm256_castpd128_pd256(_mm_loadu_pd(y + 2 * (int64_t)c[0])),
                                        _mm_loadu_pd(y + 2 * (int64_t)c[2]), 1);
      __m256d hi = _mm256_insertf128_pd(_mm256_castpd128_pd256(_mm_loadu_pd(y + 2 * (int64_t)c[1])),
                                        _mm_loadu_pd(y + 2 * (int64_t)c[3]), 1);
      __m256d dx = _mm256_sub_pd(yx, _mm256_unpacklo_pd(lo, hi));
      __m256d dy = _mm256_sub_pd(yy, _mm256_unpackhi_pd(lo, hi));
      __m256d q = _mm256_fmadd_pd(dx, dx, _mm256_fmadd_pd(dy, dy, one));
      __m256d pw = _mm256_div_pd(_mm256_cvtps_pd(_mm_loadu_ps(P->val + s)), q);
      fx = _mm256_fmadd_pd(pw, dx, fx);
      fy = _mm256_fmadd_pd(pw, dy, fy);
    }
    /* (fx0 + fx1, fy0 + fy1, fx2 + fx3, fy2 + fy3), then the two halves */
    __m256d h = _mm256_hadd_pd(fx, fy);
    __m128d sum = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    double sx = _mm_cvtsd_f64(sum), sy = _mm_cvtsd_f64(_mm_unpackhi_pd(sum, sum));
    for (; s < e; s++) {
      int64_t j = P->col[s];
      double dxs = y[2 * i] - y[2 * j], dys = y[2 * i + 1] - y[2 * j + 1];
      double pw = P->val[s] / (1.0 + dxs * dxs + dys * dys);
      sx += pw * dxs;
      sy += pw * dys;
    }
    att[2 * i] = sx;
    att[2 * i + 1] = sy;
  }
}

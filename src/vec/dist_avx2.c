/* AVX2 + FMA distance kernels. Compiled with -mavx2 -mfma and entered only through the dispatch
 * table after CPU detection.
 *
 * Every pair (query, row) is reduced by the same sequence whatever the entry point: two 8-lane
 * accumulators over alternating 8-float chunks, the sub-8 tail through a masked load into the
 * second, then a fixed horizontal sum. So identical rows always get identical distances, and the
 * one-query, many-query and single-pair paths agree bit for bit. */
#include "vec/kernels.h"

#include <immintrin.h>

static const int32_t mask_table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

static inline __m256i tail_mask(int64_t rem) { /* rem in 1..7 */
  return _mm256_loadu_si256((const __m256i *)(mask_table + 8 - rem));
}

static inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/* The three reductions share one loop skeleton; OP(acc, a, b) folds one 8-float chunk. */
#define OP_DOT(acc, a, b) _mm256_fmadd_ps((a), (b), (acc))
#define OP_L2(acc, a, b) \
  (d_ = _mm256_sub_ps((a), (b)), _mm256_fmadd_ps(d_, d_, (acc)))
#define OP_L1(acc, a, b) \
  _mm256_add_ps((acc), _mm256_andnot_ps(signbit_, _mm256_sub_ps((a), (b))))

#define DEFINE_REDUCE(NAME, OP)                                                          \
  static inline float NAME(const float *a, const float *b, int64_t dim) {                \
    const __m256 signbit_ = _mm256_set1_ps(-0.0f);                                      \
    __m256 d_;                                                                           \
    (void)signbit_;                                                                      \
    (void)d_;                                                                            \
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();                       \
    int64_t i = 0;                                                                       \
    for (; i + 16 <= dim; i += 16) {                                                     \
      acc0 = OP(acc0, _mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));                   \
      acc1 = OP(acc1, _mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));           \
    }                                                                                    \
    if (i + 8 <= dim) {                                                                  \
      acc0 = OP(acc0, _mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));                   \
      i += 8;                                                                            \
    }                                                                                    \
    if (i < dim) {                                                                       \
      __m256i m = tail_mask(dim - i);                                                    \
      acc1 = OP(acc1, _mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m));       \
    }                                                                                    \
    return hsum(_mm256_add_ps(acc0, acc1));                                              \
  }

DEFINE_REDUCE(dot_a, OP_DOT)
DEFINE_REDUCE(l2sq_a, OP_L2)
DEFINE_REDUCE(l1_a, OP_L1)

/* One query against many rows. The loop over rows is left to the out-of-order core: rows are
 * independent, so several are in flight at once; the job is memory-bound for any real dim. */
#define DEFINE_MANY(NAME, ONE)                                                            \
  static void NAME(const float *q, const float *base, int64_t n, int64_t ld, int64_t dim, \
                   float *out) {                                                          \
    for (int64_t i = 0; i < n; i++) {                                                     \
      const float *row = base + i * ld;                                                   \
      _mm_prefetch((const char *)(row + 8 * ld), _MM_HINT_T0);                             \
      out[i] = ONE(q, row, dim);                                                          \
    }                                                                                     \
  }

DEFINE_MANY(dot_many_a, dot_a)
DEFINE_MANY(l2sq_many_a, l2sq_a)
DEFINE_MANY(l1_many_a, l1_a)

/* Dot product and the row's squared norm in one pass (same chunking as the reductions above). */
static void cos_many_a(const float *q, const float *base, int64_t n, int64_t ld, int64_t dim,
                       float *out) {
  for (int64_t r = 0; r < n; r++) {
    const float *b = base + r * ld;
    __m256 d0 = _mm256_setzero_ps(), d1 = d0, n0 = d0, n1 = d0;
    int64_t i = 0;
    for (; i + 16 <= dim; i += 16) {
      __m256 b0 = _mm256_loadu_ps(b + i), b1 = _mm256_loadu_ps(b + i + 8);
      d0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), b0, d0);
      d1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), b1, d1);
      n0 = _mm256_fmadd_ps(b0, b0, n0);
      n1 = _mm256_fmadd_ps(b1, b1, n1);
    }
    if (i + 8 <= dim) {
      __m256 b0 = _mm256_loadu_ps(b + i);
      d0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), b0, d0);
      n0 = _mm256_fmadd_ps(b0, b0, n0);
      i += 8;
    }
    if (i < dim) {
      __m256i m = tail_mask(dim - i);
      __m256 b1 = _mm256_maskload_ps(b + i, m);
      d1 = _mm256_fmadd_ps(_mm256_maskload_ps(q + i, m), b1, d1);
      n1 = _mm256_fmadd_ps(b1, b1, n1);
    }
    float dot = hsum(_mm256_add_ps(d0, d1)), nn = hsum(_mm256_add_ps(n0, n1));
    out[r] = nn > 0 ? dot / _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(nn))) : 0.0f;
  }
}

/* L1 of four queries against one row at a time: each row chunk is loaded once for four queries.
 * Per pair the reduction order is exactly that of l1_a. */
static void l1_rows4(const float *q0, const float *q1, const float *q2, const float *q3,
                     const float *base, int64_t nb, int64_t ldb, int64_t dim, float *o0,
                     float *o1, float *o2, float *o3) {
  const __m256 sb = _mm256_set1_ps(-0.0f);
#define ABSDIFF(x, y) _mm256_andnot_ps(sb, _mm256_sub_ps((x), (y)))
  for (int64_t j = 0; j < nb; j++) {
    const float *b = base + j * ldb;
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00;
    __m256 a20 = a00, a21 = a00, a30 = a00, a31 = a00;
    int64_t i = 0;
    for (; i + 16 <= dim; i += 16) {
      __m256 b0 = _mm256_loadu_ps(b + i), b1 = _mm256_loadu_ps(b + i + 8);
      a00 = _mm256_add_ps(a00, ABSDIFF(_mm256_loadu_ps(q0 + i), b0));
      a01 = _mm256_add_ps(a01, ABSDIFF(_mm256_loadu_ps(q0 + i + 8), b1));
      a10 = _mm256_add_ps(a10, ABSDIFF(_mm256_loadu_ps(q1 + i), b0));
      a11 = _mm256_add_ps(a11, ABSDIFF(_mm256_loadu_ps(q1 + i + 8), b1));
      a20 = _mm256_add_ps(a20, ABSDIFF(_mm256_loadu_ps(q2 + i), b0));
      a21 = _mm256_add_ps(a21, ABSDIFF(_mm256_loadu_ps(q2 + i + 8), b1));
      a30 = _mm256_add_ps(a30, ABSDIFF(_mm256_loadu_ps(q3 + i), b0));
      a31 = _mm256_add_ps(a31, ABSDIFF(_mm256_loadu_ps(q3 + i + 8), b1));
    }
    if (i + 8 <= dim) {
      __m256 b0 = _mm256_loadu_ps(b + i);
      a00 = _mm256_add_ps(a00, ABSDIFF(_mm256_loadu_ps(q0 + i), b0));
      a10 = _mm256_add_ps(a10, ABSDIFF(_mm256_loadu_ps(q1 + i), b0));
      a20 = _mm256_add_ps(a20, ABSDIFF(_mm256_loadu_ps(q2 + i), b0));
      a30 = _mm256_add_ps(a30, ABSDIFF(_mm256_loadu_ps(q3 + i), b0));
      i += 8;
    }
    if (i < dim) {
      __m256i m = tail_mask(dim - i);
      __m256 b1 = _mm256_maskload_ps(b + i, m);
      a01 = _mm256_add_ps(a01, ABSDIFF(_mm256_maskload_ps(q0 + i, m), b1));
      a11 = _mm256_add_ps(a11, ABSDIFF(_mm256_maskload_ps(q1 + i, m), b1));
      a21 = _mm256_add_ps(a21, ABSDIFF(_mm256_maskload_ps(q2 + i, m), b1));
      a31 = _mm256_add_ps(a31, ABSDIFF(_mm256_maskload_ps(q3 + i, m), b1));
    }
    o0[j] = hsum(_mm256_add_ps(a00, a01));
    o1[j] = hsum(_mm256_add_ps(a10, a11));
    o2[j] = hsum(_mm256_add_ps(a20, a21));
    o3[j] = hsum(_mm256_add_ps(a30, a31));
  }
#undef ABSDIFF
}

static void l1_block_a(const float *q, int64_t nq, int64_t ldq, const float *base, int64_t nb,
                       int64_t ldb, int64_t dim, float *out, int64_t ldo) {
  int64_t i = 0;
  for (; i + 4 <= nq; i += 4)
    l1_rows4(q + i * ldq, q + (i + 1) * ldq, q + (i + 2) * ldq, q + (i + 3) * ldq, base, nb, ldb,
             dim, out + i * ldo, out + (i + 1) * ldo, out + (i + 2) * ldo, out + (i + 3) * ldo);
  for (; i < nq; i++) l1_many_a(q + i * ldq, base, nb, ldb, dim, out + i * ldo);
}

/* Selection fused into the pass over a score tile: eight scores are formed and compared with the
 * threshold at once; only lanes that beat it (rare once the top-k has settled) leave the fast
 * path. The arithmetic is (c + add) * mul, as in the scalar kernel, so both select alike. */
static void scan_topk_a(const float *c, int64_t n, const float *add, const float *mul,
                        embr_topk *t, int64_t id0) {
  int64_t j = 0;
  __m256 th = _mm256_set1_ps(t->thresh);
  for (; j + 8 <= n; j += 8) {
    __m256 v = _mm256_loadu_ps(c + j);
    if (add) v = _mm256_add_ps(v, _mm256_loadu_ps(add + j));
    if (mul) v = _mm256_mul_ps(v, _mm256_loadu_ps(mul + j));
    unsigned m = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(v, th, _CMP_LT_OQ));
    if (m) {
      float lanes[8];
      _mm256_storeu_ps(lanes, v);
      while (m) {
        int l = __builtin_ctz(m);
        m &= m - 1;
        if (lanes[l] < t->thresh) embr__topk_insert(t, lanes[l], id0 + j + l);
      }
      th = _mm256_set1_ps(t->thresh);
    }
  }
  for (; j < n; j++) {
    float s = c[j];
    if (add) s += add[j];
    if (mul) s *= mul[j];
    if (s < t->thresh) embr__topk_insert(t, s, id0 + j);
  }
}

const embr__kernels embr__kernels_avx2 = {
    "avx2",      dot_a,      l2sq_a,     l1_a,       dot_many_a,
    l2sq_many_a, l1_many_a,  cos_many_a, l1_block_a, scan_topk_a,
};

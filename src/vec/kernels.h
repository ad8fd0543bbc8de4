/* Internal: the table of distance kernels chosen at run time (scalar or AVX2+FMA). One file per
 * instruction set implements it: dist_scalar.c, dist_avx2.c. */
#ifndef EMBR_VEC_KERNELS_H
#define EMBR_VEC_KERNELS_H

#include "embr/vec.h"

typedef struct embr__kernels {
  const char *name;
  float (*dot)(const float *a, const float *b, int64_t dim);
  float (*l2sq)(const float *a, const float *b, int64_t dim);
  float (*l1)(const float *a, const float *b, int64_t dim);
  /* One query against n rows: out[i] = f(q, base + i*ld). */
  void (*dot_many)(const float *q, const float *base, int64_t n, int64_t ld, int64_t dim, float *out);
  void (*l2sq_many)(const float *q, const float *base, int64_t n, int64_t ld, int64_t dim, float *out);
  void (*l1_many)(const float *q, const float *base, int64_t n, int64_t ld, int64_t dim, float *out);
  /* out[i] = q.b_i / |b_i| (0 for a zero row), in one pass over the rows: the ranking score of
   * cosine similarity for one query when no row norms are cached. */
  void (*cos_many)(const float *q, const float *base, int64_t n, int64_t ld, int64_t dim, float *out);
  /* L1 of nq queries against nb rows, out[i*ldo + j]. Register-blocked over queries and rows. */
  void (*l1_block)(const float *q, int64_t nq, int64_t ldq, const float *base, int64_t nb,
                   int64_t ldb, int64_t dim, float *out, int64_t ldo);
  /* Fused selection over one row of a score tile: score_j = (c[j] + add[j]) * mul[j] (add, mul
   * may be NULL = 0 / 1) pushed into t with id id0 + j. Ids must be ascending across calls on the
   * same t, which lets the filter be a plain "< threshold". */
  void (*scan_topk)(const float *c, int64_t n, const float *add, const float *mul, embr_topk *t,
                    int64_t id0);
} embr__kernels;

extern const embr__kernels embr__kernels_scalar;
extern const embr__kernels embr__kernels_avx2;

/* The active table (per embr_cpu_active()). */
const embr__kernels *embr__kernels_get(void);

/* Slow path of the top-k: inserts one candidate already known to pass the threshold. */
void embr__topk_insert(embr_topk *t, float score, int64_t id);

#endif

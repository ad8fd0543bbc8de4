/* Run-time choice of the kernel table and the public single-vector entry points. */
#include "vec/kernels.h"

#include <math.h>
#include <string.h>

const embr__kernels *embr__kernels_get(void) {
  /* embr_cpu_active() is cheap after the first call (the hardware probe is a cached cpuid), and
   * reading it each time lets tests switch paths with embr_cpu_force(). */
  return embr_cpu_active() == EMBR_CPU_AVX2 ? &embr__kernels_avx2 : &embr__kernels_scalar;
}

const char *embr_metric_name(embr_metric m) {
  switch (m) {
    case EMBR_METRIC_L2: return "l2";
    case EMBR_METRIC_IP: return "ip";
    case EMBR_METRIC_COSINE: return "cosine";
    case EMBR_METRIC_L1: return "l1";
  }
  return "unknown";
}

embr_status embr_metric_parse(const char *name, embr_metric *out) {
  static const struct {
    const char *name;
    embr_metric m;
  } names[] = {
      {"l2", EMBR_METRIC_L2},         {"euclidean", EMBR_METRIC_L2},
      {"sqeuclidean", EMBR_METRIC_L2}, {"ip", EMBR_METRIC_IP},
      {"dot", EMBR_METRIC_IP},        {"inner_product", EMBR_METRIC_IP},
      {"cosine", EMBR_METRIC_COSINE}, {"cos", EMBR_METRIC_COSINE},
      {"l1", EMBR_METRIC_L1},         {"manhattan", EMBR_METRIC_L1},
      {"cityblock", EMBR_METRIC_L1},
  };
  for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++) {
    if (strcmp(name, names[i].name) == 0) {
      *out = names[i].m;
      return 0;
    }
  }
  return embr_error(EMBR_EINVAL, "unknown metric '%s' (expected l2, ip, cosine or l1)",
                    name ? name : "");
}

int embr_metric_descending(embr_metric m) {
  return m == EMBR_METRIC_IP || m == EMBR_METRIC_COSINE;
}

float embr_metric_worst(embr_metric m) {
  return embr_metric_descending(m) ? -INFINITY : INFINITY;
}

float embr_dot(const float *a, const float *b, int64_t dim) {
  return embr__kernels_get()->dot(a, b, dim);
}

float embr_norm_sq(const float *a, int64_t dim) { return embr__kernels_get()->dot(a, a, dim); }

/* Cosine from the dot product and both norms; a zero vector has similarity 0 with everything. */
static float cosine_from(float dot, float na2, float nb2) {
  if (na2 <= 0 || nb2 <= 0) return 0.0f;
  return dot / (sqrtf(na2) * sqrtf(nb2));
}

float embr_distance(embr_metric m, const float *a, const float *b, int64_t dim) {
  const embr__kernels *k = embr__kernels_get();
  switch (m) {
    case EMBR_METRIC_L2: return k->l2sq(a, b, dim);
    case EMBR_METRIC_IP: return k->dot(a, b, dim);
    case EMBR_METRIC_COSINE: return cosine_from(k->dot(a, b, dim), k->dot(a, a, dim), k->dot(b, b, dim));
    case EMBR_METRIC_L1: return k->l1(a, b, dim);
  }
  return NAN;
}

void embr_norms_sq(const float *x, int64_t n, int64_t ld, int64_t dim, float *out) {
  const embr__kernels *k = embr__kernels_get();
  for (int64_t i = 0; i < n; i++) out[i] = k->dot(x + i * ld, x + i * ld, dim);
}

void embr_distances(embr_metric m, const float *q, const float *base, int64_t n, int64_t ld,
                    int64_t dim, float *out) {
  const embr__kernels *k = embr__kernels_get();
  switch (m) {
    case EMBR_METRIC_L2: k->l2sq_many(q, base, n, ld, dim, out); return;
    case EMBR_METRIC_IP: k->dot_many(q, base, n, ld, dim, out); return;
    case EMBR_METRIC_L1: k->l1_many(q, base, n, ld, dim, out); return;
    case EMBR_METRIC_COSINE: {
      float qn = k->dot(q, q, dim);
      k->dot_many(q, base, n, ld, dim, out);
      for (int64_t i = 0; i < n; i++) {
        const float *b = base + i * ld;
        out[i] = cosine_from(out[i], qn, k->dot(b, b, dim));
      }
      return;
    }
  }
}

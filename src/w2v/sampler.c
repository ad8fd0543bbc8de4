/* Vose's alias table for the negative-sampling distribution count^power. */
#include "w2v/w2v_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void embr__w2v_sampler_free(w2v_sampler *s) {
  free(s->prob);
  free(s->alias);
  memset(s, 0, sizeof *s);
}

int embr__w2v_sampler_build(w2v_sampler *s, const embr_vocab *v, double power) {
  memset(s, 0, sizeof *s);
  int64_t n = embr_vocab_size(v);
  if (n < 1 || n > INT32_MAX) return embr_error(EMBR_EINVAL, "sampler: vocabulary size %lld", (long long)n);
  double *p = malloc(sizeof(double) * (size_t)n);
  int64_t *small = malloc(sizeof(int64_t) * (size_t)n), *large = malloc(sizeof(int64_t) * (size_t)n);
  s->prob = malloc(sizeof(float) * (size_t)n);
  s->alias = malloc(sizeof(int32_t) * (size_t)n);
  if (!p || !small || !large || !s->prob || !s->alias) {
    free(p);
    free(small);
    free(large);
    embr__w2v_sampler_free(s);
    return embr_error(EMBR_ENOMEM, "out of memory building the sampler");
  }
  double total = 0;
  for (int64_t i = 0; i < n; i++) total += (p[i] = pow((double)embr_vocab_count(v, i), power));
  int64_t ns = 0, nl = 0;
  for (int64_t i = 0; i < n; i++) {
    p[i] = p[i] * (double)n / total; /* mean 1 */
    if (p[i] < 1.0)
      small[ns++] = i;
    else
      large[nl++] = i;
  }
  while (ns > 0 && nl > 0) {
    int64_t sm = small[--ns], lg = large[nl - 1];
    s->prob[sm] = (float)p[sm];
    s->alias[sm] = (int32_t)lg;
    p[lg] -= 1.0 - p[sm];
    if (p[lg] < 1.0) {
      nl--;
      small[ns++] = lg;
    }
  }
  /* Leftovers are 1 up to rounding. */
  while (nl > 0) {
    int64_t i = large[--nl];
    s->prob[i] = 1.0f;
    s->alias[i] = (int32_t)i;
  }
  while (ns > 0) {
    int64_t i = small[--ns];
    s->prob[i] = 1.0f;
    s->alias[i] = (int32_t)i;
  }
  s->n = n;
  free(p);
  free(small);
  free(large);
  return 0;
}

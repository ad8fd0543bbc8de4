/* The owned matrix type: allocation, labels, lookup, finiteness check. */
#include "embr/matrix.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

embr_status embr_matrix_alloc(embr_matrix *m, int64_t n, int64_t dim) {
  memset(m, 0, sizeof *m);
  if (n < 0 || dim < 1)
    return embr_error(EMBR_EINVAL, "matrix of %lld x %lld is not allowed", (long long)n,
                      (long long)dim);
  size_t bytes;
  if (embr_size_mul((size_t)n, (size_t)dim, &bytes) || embr_size_mul(bytes, sizeof(float), &bytes))
    return EMBR_ENOMEM;
  m->data = embr_alloc(bytes);
  if (!m->data) return EMBR_ENOMEM;
  memset(m->data, 0, bytes);
  m->n = n;
  m->dim = dim;
  m->ld = dim;
  return 0;
}

embr_status embr_matrix_alloc_labels(embr_matrix *m) {
  if (m->labels) return 0;
  m->labels = embr_calloc((size_t)(m->n ? m->n : 1), sizeof(char *));
  return m->labels ? 0 : EMBR_ENOMEM;
}

void embr_matrix_free(embr_matrix *m) {
  if (!m) return;
  if (m->labels) {
    for (int64_t i = 0; i < m->n; i++) embr_free(m->labels[i]);
    embr_free(m->labels);
  }
  embr_free(m->data);
  memset(m, 0, sizeof *m);
}

int64_t embr_matrix_find_label(const embr_matrix *m, const char *label) {
  if (!m->labels || !label) return -1;
  for (int64_t i = 0; i < m->n; i++)
    if (m->labels[i] && strcmp(m->labels[i], label) == 0) return i;
  return -1;
}

int embr_matrix_find_nonfinite(const embr_matrix *m, int64_t *row, int64_t *col) {
  for (int64_t i = 0; i < m->n; i++) {
    const float *r = m->data + i * m->ld;
    for (int64_t j = 0; j < m->dim; j++) {
      if (!isfinite(r[j])) {
        *row = i;
        *col = j;
        return 0;
      }
    }
  }
  return -1;
}

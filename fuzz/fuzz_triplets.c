/* libFuzzer target: sparse "i j distance" files (t-SNE's --precomputed sparse), as text with
 * spaces or tabs and as CSV, then the affinities built from what parsed. The reader must give
 * n x 3 rows of finite values with exact integer indices; the affinities either succeed (P sums
 * to 1) or refuse with a message, without a large allocation from a small input. */
#include "embr/matrix.h"
#include "embr/tsne.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *names[] = {"fuzz.txt", "fuzz.csv"};
  for (int k = 0; k < 2; k++) {
    embr_matrix m = EMBR_MATRIX_INIT;
    int rc = embr_triplets_read_mem(data, size, names[k], EMBR_FORMAT_AUTO, &m);
    if (rc != 0) {
      const char *msg = embr_last_error();
      if (strncmp(msg, names[k], strlen(names[k])) != 0 || strchr(msg, '\n')) abort();
      if (m.data || m.n) abort();
      continue;
    }
    if (m.n < 1 || m.dim != 3 || !m.data) abort();
    for (int64_t r = 0; k == 0 && r < m.n; r++)
      for (int c = 0; c < 2; c++) {
        float v = m.data[r * m.ld + c];
        if (v < 0 || v != floorf(v) || v > 16777215.0f) abort();
      }
    embr_tsne_params p = embr_tsne_params_default();
    p.perplexity = 1;
    p.n_threads = 1;
    embr_affinities P;
    if (embr_tsne_affinities_sparse(m.data, m.n, m.ld, &p, &P) == 0) {
      double sum = 0;
      for (int64_t i = 0; i < P.row[P.n]; i++) sum += P.val[i];
      if (P.row[P.n] > 0 && fabs(sum - 1) > 1e-3) abort();
      embr_affinities_free(&P);
    } else if (strchr(embr_last_error(), '\n')) {
      abort();
    }
    embr_matrix_free(&m);
  }
  return 0;
}

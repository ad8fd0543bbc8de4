/* libFuzzer target: the TSV map reader (`embr tsne` output: coordinates, optional header and label
 * column, guessed from the first rows). A success must be a finite matrix whose labels, when
 * present, are one string per row; a failure a one-line message naming the input, output empty. */
#include "embr/matrix.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *names[] = {"fuzz.tsv", "fuzz.npy"};
  for (int k = 0; k < 2; k++) {
    embr_matrix m = EMBR_MATRIX_INIT;
    int rc = embr_map_read_mem(data, size, names[k], EMBR_FORMAT_AUTO, &m);
    if (rc == 0) {
      int64_t r, c;
      if (m.n < 1 || m.dim < 1 || m.ld < m.dim || !m.data) abort();
      if (embr_matrix_find_nonfinite(&m, &r, &c) == 0) abort();
      for (int64_t i = 0; m.labels && i < m.n; i++)
        if (!m.labels[i] || strchr(m.labels[i], '\n')) abort();
    } else {
      const char *msg = embr_last_error();
      if (strncmp(msg, names[k], strlen(names[k])) != 0 || strchr(msg, '\n')) abort();
      if (m.data || m.labels || m.n) abort();
    }
    embr_matrix_free(&m);
  }
  return 0;
}

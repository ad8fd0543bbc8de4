/* Shared by the format fuzz targets: parse one input with a format and check what a successful
 * parse promises (a finite matrix, non-empty except a (0, d) .npy; labels where the format has words; a one-line error
 * naming the input otherwise). A broken promise aborts, which libFuzzer reports as a crash. */
#ifndef EMBR_FUZZ_COMMON_H
#define EMBR_FUZZ_COMMON_H

#include "embr/matrix.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void fuzz_one(const uint8_t *data, size_t size, const char *name, embr_format fmt,
                     int has_labels) {
  embr_matrix m = EMBR_MATRIX_INIT;
  int rc = embr_matrix_read_mem(data, size, name, fmt, &m);
  if (rc == 0) {
    int64_t r, c;
    /* .npy alone can describe an empty matrix: shape (0, d), no data. */
    int empty_ok = (fmt == EMBR_FORMAT_NPY || fmt == EMBR_FORMAT_AUTO) && m.n == 0 && m.dim >= 1 && !m.data;
    if (!empty_ok && (m.n < 1 || m.dim < 1 || m.ld < m.dim || !m.data)) abort();
    if (embr_matrix_find_nonfinite(&m, &r, &c) == 0) abort();
    if (has_labels) {
      if (!m.labels) abort();
      for (int64_t i = 0; i < m.n; i++)
        if (!m.labels[i] || !m.labels[i][0]) abort();
    }
  } else {
    const char *msg = embr_last_error();
    if (strncmp(msg, name, strlen(name)) != 0) abort();
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
      if (*p < 0x20 || *p == 0x7f) abort(); /* input bytes reach the terminal escaped */
    if (m.data || m.labels || m.n) abort(); /* failures leave the output empty */
  }
  embr_matrix_free(&m);
}

#endif

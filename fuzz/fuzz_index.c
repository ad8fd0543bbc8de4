/* libFuzzer target: the index loader (container header, checksums, then each kind's payload
 * parser: flat, HNSW, IVF-Flat, IVF-PQ). Every input is loaded twice: as it is, and with the
 * container's payload length and both CRC-32s rewritten to match, so mutations reach the kinds'
 * parsers instead of stopping at the checksum. An index that loads must answer a search with
 * well-formed results; a refusal must be EMBR_EFORMAT or EMBR_EUNSUPPORTED with a one-line message
 * naming the input. A broken promise aborts, which libFuzzer reports as a crash. */
#include "embr/index.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char NAME[] = "fuzz.idx";

static void check_results(const embr_index *ix) {
  enum { K = 5 };
  int64_t dim = embr_index_dim(ix);
  float *q = malloc(sizeof(float) * (size_t)dim), dist[K];
  int64_t ids[K];
  if (!q) abort();
  for (int64_t i = 0; i < dim; i++) q[i] = 0.5f - 0.125f * (float)(i % 7);
  if (embr_index_search(ix, q, 1, dim, K, dist, ids, NULL) != 0) abort();
  /* Padding (-1, worst) only at the end; a real id may score +-inf (huge finite values overflow,
   * as they would in any float search), never NaN. */
  float worst = embr_metric_worst(embr_index_metric(ix));
  for (int i = 0; i < K; i++) {
    if (ids[i] < -1 || (ids[i] == -1 && dist[i] != worst) || (ids[i] >= 0 && isnan(dist[i]))) abort();
    if (i > 0 && ids[i - 1] == -1 && ids[i] != -1) abort();
  }
  free(q);
}

static void load_one(const uint8_t *data, size_t size, int flags) {
  embr_index *ix = NULL;
  int rc = embr_index_load_mem(&ix, data, size, NAME, flags);
  if (rc == 0) {
    if (!ix) abort();
    check_results(ix);
    embr_index_free(ix);
    return;
  }
  if (ix) abort();
  if (rc != EMBR_EFORMAT && rc != EMBR_EUNSUPPORTED) abort();
  const char *msg = embr_last_error();
  if (strncmp(msg, NAME, strlen(NAME)) != 0 || strchr(msg, '\n')) abort();
}

/* Payload length at 40, header CRC at 56 (over bytes 0..55), payload CRC in the trailer. */
static void fix_container(uint8_t *b, size_t len) {
  uint64_t plen = len - 80;
  for (int i = 0; i < 8; i++) b[40 + i] = (uint8_t)(plen >> (8 * i));
  uint32_t h = (uint32_t)crc32(0L, b, 56), p = (uint32_t)crc32(0L, b + 64, (uInt)plen);
  for (int i = 0; i < 4; i++) {
    b[56 + i] = (uint8_t)(h >> (8 * i));
    b[len - 16 + i] = (uint8_t)(p >> (8 * i));
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  load_one(data, size, 0);
  if (size < 80 || size > (1u << 30)) return 0;
  uint8_t *copy = malloc(size);
  if (!copy) return 0;
  memcpy(copy, data, size);
  fix_container(copy, size);
  load_one(copy, size, size % 2 ? EMBR_LOAD_MMAP : 0); /* mapped: the copy outlives the index */
  free(copy);
  return 0;
}

/* 64-byte aligned allocation (the one allocator of every object the library creates) and
 * overflow-checked size arithmetic. */
#include "embr/core.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { EMBR_ALIGN = 64 };

void *embr_alloc(size_t bytes) {
  void *p = NULL;
  /* Round up so that SIMD tails may read a whole vector past the end of small buffers safely. */
  size_t rounded = (bytes + EMBR_ALIGN - 1) & ~(size_t)(EMBR_ALIGN - 1);
  if (rounded < bytes) {
    embr_error(EMBR_ENOMEM, "allocation of %zu bytes overflows", bytes);
    return NULL;
  }
  if (rounded == 0) rounded = EMBR_ALIGN;
  if (posix_memalign(&p, EMBR_ALIGN, rounded) != 0) {
    embr_error(EMBR_ENOMEM, "out of memory allocating %zu bytes", bytes);
    return NULL;
  }
  return p;
}

void *embr_calloc(size_t count, size_t size) {
  size_t bytes = 0;
  if (embr_size_mul(count, size, &bytes) != 0) return NULL;
  void *p = embr_alloc(bytes);
  if (p) memset(p, 0, bytes);
  return p;
}

void *embr_realloc(void *p, size_t old_bytes, size_t new_bytes) {
  /* posix_memalign memory has no aligned realloc: allocate, copy, free (growth is geometric at
   * every caller, so the copies amortise as realloc's would). */
  void *q = embr_alloc(new_bytes);
  if (!q) return NULL;
  if (p) memcpy(q, p, old_bytes < new_bytes ? old_bytes : new_bytes);
  embr_free(p);
  return q;
}

char *embr_strdup(const char *s) { return embr_strndup(s, strlen(s)); }

char *embr_strndup(const char *s, size_t n) {
  size_t len = strnlen(s, n);
  char *p = embr_alloc(len + 1);
  if (!p) return NULL;
  memcpy(p, s, len);
  p[len] = 0;
  return p;
}

void embr_free(void *p) { free(p); }

embr_status embr_size_mul(size_t a, size_t b, size_t *out) {
  if (b != 0 && a > SIZE_MAX / b)
    return embr_error(EMBR_ENOMEM, "size %zu x %zu overflows", a, b);
  *out = a * b;
  return 0;
}

embr_status embr_size_muladd(size_t a, size_t b, size_t c, size_t *out) {
  size_t ab = 0;
  int rc = embr_size_mul(a, b, &ab);
  if (rc) return rc;
  if (ab > SIZE_MAX - c) return embr_error(EMBR_ENOMEM, "size %zu x %zu + %zu overflows", a, b, c);
  *out = ab + c;
  return 0;
}

/* The flat index: vectors in one row-major block, searched exactly by embr_knn (sgemm-fused
 * top-k). Removal moves the last row into the hole, so the block stays dense. A filter gathers
 * the admitted rows once per search call, then searches them as a smaller flat block. */
#include "index/index_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct flat {
  float *x;        /* n x dim */
  int64_t *ids;    /* n */
  float *norms;    /* n: |x|^2 for L2 (speeds up embr_knn), NULL otherwise */
  int64_t n, cap;
  embr__idmap map; /* id -> row */
  int mapped;      /* x, ids, norms point into a mapped file */
} flat;

static int flat_create(embr_index *ix, index_spec *spec) {
  (void)spec;
  flat *f = embr_calloc(1, sizeof *f);
  if (!f) return embr_error(EMBR_ENOMEM, "out of memory");
  ix->impl = f;
  snprintf(ix->spec, sizeof ix->spec, "flat");
  return embr__idmap_init(&f->map, 0);
}

static void flat_destroy(embr_index *ix) {
  flat *f = ix->impl;
  if (!f->mapped) {
    embr_free(f->x);
    embr_free(f->ids);
    embr_free(f->norms);
  }
  embr__idmap_free(&f->map);
  embr_free(f);
  ix->impl = NULL;
}

static int flat_is_trained(const embr_index *ix) { (void)ix; return 1; }
static int64_t flat_size(const embr_index *ix) { return ((const flat *)ix->impl)->n; }
static int flat_contains(const embr_index *ix, int64_t id) { return embr__idmap_get(&((const flat *)ix->impl)->map, id) >= 0; }
static int64_t flat_memory(const embr_index *ix) {
  const flat *f = ix->impl;
  return f->cap * (ix->dim * 4 + 8 + (f->norms ? 4 : 0)) + f->map.cap * 16;
}

static int grow(embr_index *ix, flat *f, int64_t need) {
  if (need <= f->cap) return 0;
  /* Doubling from the first need (not from a fixed floor: a row can be megabytes wide). */
  int64_t cap = f->cap ? f->cap : 16;
  while (cap < need) cap *= 2;
  float *x = embr_alloc(sizeof(float) * (size_t)cap * (size_t)ix->dim);
  int64_t *ids = embr_alloc(sizeof(int64_t) * (size_t)cap);
  float *norms = ix->metric == EMBR_METRIC_L2 ? embr_alloc(sizeof(float) * (size_t)cap) : NULL;
  if (!x || !ids || (ix->metric == EMBR_METRIC_L2 && !norms)) {
    embr_free(x);
    embr_free(ids);
    embr_free(norms);
    return embr_error(EMBR_ENOMEM, "flat index: out of memory for %lld vectors", (long long)cap);
  }
  if (f->n) {
    memcpy(x, f->x, sizeof(float) * (size_t)f->n * (size_t)ix->dim);
    memcpy(ids, f->ids, sizeof(int64_t) * (size_t)f->n);
    if (norms) memcpy(norms, f->norms, sizeof(float) * (size_t)f->n);
  }
  embr_free(f->x);
  embr_free(f->ids);
  embr_free(f->norms);
  f->x = x;
  f->ids = ids;
  f->norms = norms;
  f->cap = cap;
  return 0;
}

static int flat_add(embr_index *ix, const float *x, int64_t n, int64_t ld, const int64_t *ids,
                    const embr_progress *pr) {
  (void)pr;
  flat *f = ix->impl;
  int rc = grow(ix, f, f->n + n);
  for (int64_t i = 0; i < n && !rc; i++) {
    float *dst = f->x + (f->n + i) * ix->dim;
    memcpy(dst, x + i * ld, sizeof(float) * (size_t)ix->dim);
    f->ids[f->n + i] = ids[i];
    if (f->norms) f->norms[f->n + i] = embr_norm_sq(dst, ix->dim);
    rc = embr__idmap_put(&f->map, ids[i], f->n + i);
  }
  if (!rc) f->n += n;
  return rc;
}

static int flat_remove(embr_index *ix, const int64_t *ids, int64_t n, int64_t *removed) {
  flat *f = ix->impl;
  for (int64_t i = 0; i < n; i++) {
    int64_t row = embr__idmap_get(&f->map, ids[i]);
    if (row < 0) continue;
    embr__idmap_del(&f->map, ids[i]);
    int64_t last = f->n - 1;
    if (row != last) {
      memcpy(f->x + row * ix->dim, f->x + last * ix->dim, sizeof(float) * (size_t)ix->dim);
      f->ids[row] = f->ids[last];
      if (f->norms) f->norms[row] = f->norms[last];
      embr__idmap_put(&f->map, f->ids[row], row);
    }
    f->n--;
    (*removed)++;
  }
  return 0;
}

static int flat_search(const embr_index *ix, const float *q, int64_t nq, int64_t ldq, int k, float *dist,
                       int64_t *ids, const embr_search_params *p) {
  const flat *f = ix->impl;
  embr_knn_params kp = embr_knn_params_default();
  kp.n_threads = p->n_threads;
  embr_metric m = embr__index_inner_metric(ix);
  const float *base = f->x, *norms = f->norms;
  const int64_t *rowid = f->ids;
  int64_t nb = f->n;
  float *sub = NULL, *subn = NULL;
  int64_t *subid = NULL;
  if (embr__has_filter(p)) {
    int64_t cnt = 0;
    for (int64_t r = 0; r < f->n; r++) cnt += embr__admit(p, f->ids[r]);
    sub = embr_alloc(sizeof(float) * (size_t)(cnt ? cnt : 1) * (size_t)ix->dim);
    subid = embr_alloc(sizeof(int64_t) * (size_t)(cnt ? cnt : 1));
    subn = f->norms ? embr_alloc(sizeof(float) * (size_t)(cnt ? cnt : 1)) : NULL;
    if (!sub || !subid || (f->norms && !subn)) {
      embr_free(sub);
      embr_free(subid);
      embr_free(subn);
      return embr_error(EMBR_ENOMEM, "out of memory");
    }
    int64_t w = 0;
    for (int64_t r = 0; r < f->n; r++) {
      if (!embr__admit(p, f->ids[r])) continue;
      memcpy(sub + w * ix->dim, f->x + r * ix->dim, sizeof(float) * (size_t)ix->dim);
      subid[w] = f->ids[r];
      if (subn) subn[w] = f->norms[r];
      w++;
    }
    base = sub;
    norms = subn;
    rowid = subid;
    nb = cnt;
  }
  kp.base_norms_sq = norms;
  int rc = embr_knn(m, base, nb, ix->dim, q, nq, ldq, ix->dim, k, dist, ids, &kp);
  if (!rc)
    for (int64_t i = 0; i < nq * k; i++)
      if (ids[i] >= 0) ids[i] = rowid[ids[i]];
  embr_free(sub);
  embr_free(subid);
  embr_free(subn);
  return rc;
}

static int flat_save(const embr_index *ix, embr__wfile *w) {
  const flat *f = ix->impl;
  int64_t hdr[8] = {f->n, f->norms != NULL, 0, 0, 0, 0, 0, 0};
  int rc = embr__write_section(w, hdr, sizeof hdr);
  if (!rc) rc = embr__write_section(w, f->x, sizeof(float) * (size_t)f->n * (size_t)ix->dim);
  if (!rc) rc = embr__write_section(w, f->ids, sizeof(int64_t) * (size_t)f->n);
  if (!rc && f->norms) rc = embr__write_section(w, f->norms, sizeof(float) * (size_t)f->n);
  return rc;
}

static int flat_load(embr_index *ix, const unsigned char *buf, size_t len, const char *name, int mapped) {
  flat *f = embr_calloc(1, sizeof *f);
  if (!f) return embr_error(EMBR_ENOMEM, "out of memory");
  ix->impl = f;
  snprintf(ix->spec, sizeof ix->spec, "flat");
  size_t off = 0;
  const unsigned char *h = embr__read_section(buf, len, &off, 64, name, "flat header");
  if (!h) return EMBR_EFORMAT;
  int64_t n, has_norms;
  memcpy(&n, h, 8);
  memcpy(&has_norms, h + 8, 8);
  if (n < 0 || (uint64_t)n > len / ((uint64_t)ix->dim * 4 + 8) || has_norms != (ix->metric == EMBR_METRIC_L2))
    return embr_error(EMBR_EFORMAT, "%s: flat index header is inconsistent (n %lld)", name, (long long)n);
  size_t vb = sizeof(float) * (size_t)n * (size_t)ix->dim;
  const unsigned char *xs = embr__read_section(buf, len, &off, vb, name, "vectors");
  const unsigned char *is = xs ? embr__read_section(buf, len, &off, sizeof(int64_t) * (size_t)n, name, "ids") : NULL;
  const unsigned char *ns = is && has_norms ? embr__read_section(buf, len, &off, sizeof(float) * (size_t)n, name, "norms") : NULL;
  if (!xs || !is || (has_norms && !ns)) return EMBR_EFORMAT;
  if (off != len) return embr_error(EMBR_EFORMAT, "%s: %zu unexpected bytes after the flat index", name, len - off);
  int rc = embr__idmap_init(&f->map, n);
  if (rc) return rc;
  if (n && (rc = embr__check_finite((const float *)xs, n, ix->dim, ix->dim, name, "vector"))) return rc;
  if (mapped) {
    f->x = (float *)xs;
    f->ids = (int64_t *)is;
    f->norms = (float *)ns;
    f->mapped = 1;
    f->n = f->cap = n;
  } else {
    if ((rc = grow(ix, f, n ? n : 1))) return rc;
    memcpy(f->x, xs, vb);
    memcpy(f->ids, is, sizeof(int64_t) * (size_t)n);
    if (ns) memcpy(f->norms, ns, sizeof(float) * (size_t)n);
    f->n = n;
  }
  for (int64_t i = 0; i < n && !rc; i++) {
    if (f->ids[i] < 0 || embr__idmap_get(&f->map, f->ids[i]) >= 0)
      rc = embr_error(EMBR_EFORMAT, "%s: id %lld at row %lld is negative or repeated", name, (long long)f->ids[i], (long long)i);
    else
      rc = embr__idmap_put(&f->map, f->ids[i], i);
  }
  return rc;
}

const embr_index_ops embr__flat_ops = {
    "flat",        flat_create, flat_is_trained, NULL,        flat_add,    flat_remove, flat_contains,
    flat_search,   flat_save,   flat_load,       flat_destroy, flat_size,  flat_memory,
};

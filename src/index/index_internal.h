/* Internal: the index vtable every kind implements, spec parsing, the file container, id maps and
 * filters shared by the kinds. */
#ifndef EMBR_INDEX_INTERNAL_H
#define EMBR_INDEX_INTERNAL_H

#include "embr/index.h"

#include "core/fileio.h"

#include <stdint.h>

/* ---- spec: "kind:key=value,key=value" ---------------------------------------------------------- */
typedef struct index_kv {
  char key[32];
  char value[64];
  int used;
} index_kv;

typedef struct index_spec {
  char kind[16];
  index_kv kv[16];
  int nkv;
} index_spec;

int embr__spec_parse(const char *text, index_spec *out);
/* Reads an integer parameter (default when absent) and checks its range; marks it used. */
int embr__spec_int(index_spec *s, const char *key, int64_t def, int64_t lo, int64_t hi, int64_t *out);
/* EMBR_EINVAL naming the first key no kind asked for. */
int embr__spec_check_unused(const index_spec *s);

/* ---- the vtable -------------------------------------------------------------------------------- */
typedef struct embr_index_ops {
  const char *kind;
  int (*create)(embr_index *ix, index_spec *spec);
  int (*is_trained)(const embr_index *ix);
  int (*train)(embr_index *ix, const float *x, int64_t n, int64_t ld, const embr_progress *pr);
  /* x already validated (finite), cosine rows already normalised, ids unique and new. */
  int (*add)(embr_index *ix, const float *x, int64_t n, int64_t ld, const int64_t *ids,
             const embr_progress *pr);
  int (*remove)(embr_index *ix, const int64_t *ids, int64_t n, int64_t *removed);
  int (*contains)(const embr_index *ix, int64_t id);
  /* nq queries (cosine queries already normalised), results as embr_index_search. */
  int (*search)(const embr_index *ix, const float *q, int64_t nq, int64_t ldq, int k,
                float *dist, int64_t *ids, const embr_search_params *p);
  int (*save)(const embr_index *ix, embr__wfile *w);
  /* buf/len: the payload after the container header; `mapped`: buf outlives the index */
  int (*load)(embr_index *ix, const unsigned char *buf, size_t len, const char *name, int mapped);
  void (*destroy)(embr_index *ix);
  int64_t (*size)(const embr_index *ix);
  int64_t (*memory)(const embr_index *ix);
} embr_index_ops;

struct embr_index {
  const embr_index_ops *ops;
  int64_t dim;
  embr_metric metric;
  int readonly;          /* loaded with EMBR_LOAD_MMAP */
  int n_threads;         /* for train and add; 0 = all cores */
  int64_t next_id;       /* for adds without ids */
  char spec[256];        /* canonical, set by the kind */
  void *impl;
  embr__filemap map;     /* the mapped file, when readonly */
};

extern const embr_index_ops embr__flat_ops;
extern const embr_index_ops embr__hnsw_ops;
extern const embr_index_ops embr__ivf_ops;

/* The search metric as scored internally: cosine indexes hold unit vectors and use IP. */
static inline embr_metric embr__index_inner_metric(const embr_index *ix) {
  return ix->metric == EMBR_METRIC_COSINE ? EMBR_METRIC_IP : ix->metric;
}

/* ---- filters -------------------------------------------------------------------------------- */
static inline int embr__admit(const embr_search_params *p, int64_t id) {
  if (p->bitset && (id < 0 || id >= p->bitset_bits || !((p->bitset[id >> 3] >> (id & 7)) & 1)))
    return 0;
  if (p->filter && !p->filter(p->filter_ctx, id)) return 0;
  return 1;
}
static inline int embr__has_filter(const embr_search_params *p) { return p->bitset || p->filter; }

/* ---- id -> slot map (open addressing on int64) ------------------------------------------------- */
typedef struct embr__idmap {
  int64_t *keys;  /* INT64_MIN = empty, INT64_MIN + 1 = removed */
  int64_t *vals;
  int64_t cap, count, used;
} embr__idmap;

int embr__idmap_init(embr__idmap *m, int64_t expected);
void embr__idmap_free(embr__idmap *m);
int embr__idmap_put(embr__idmap *m, int64_t key, int64_t val);
int64_t embr__idmap_get(const embr__idmap *m, int64_t key); /* -1 if absent */
int embr__idmap_del(embr__idmap *m, int64_t key);           /* 1 if it was there */

/* EMBR_EFORMAT naming `name` and `what` when a loaded vector holds NaN or Inf (a search would then
 * produce NaN distances, which have no order). Rows start every `stride` floats. */
int embr__check_finite(const float *x, int64_t n, int64_t stride, int64_t dim, const char *name, const char *what);

/* ---- file sections --------------------------------------------------------------------------- */
/* Writes `len` bytes then zero padding up to a multiple of 64 (sections stay aligned for mmap). */
int embr__write_section(embr__wfile *w, const void *p, size_t len);
/* Reads a section of `len` bytes at *off from a payload of total `size`, advancing *off past its
 * padding; NULL (and an EMBR_EFORMAT message naming `name` and `what`) when it overruns. */
const unsigned char *embr__read_section(const unsigned char *buf, size_t size, size_t *off,
                                        size_t len, const char *name, const char *what);

#endif

/* Collection search: the filter runs in SQLite (JSON1 over the metadata) and becomes a bitset of
 * admitted internal ids; the index searches with it; the hits' internal ids are mapped back to
 * external ids (and metadata) — all inside one read transaction, so the filter, the mapping and
 * the rows agree even while a writer commits. */
#include "collection/collection_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

embr_collection_search_params embr_collection_search_params_default(void) {
  embr_collection_search_params p;
  memset(&p, 0, sizeof p);
  return p;
}

void embr_collection_hits_free(embr_collection_hits *h) {
  if (!h) return;
  int64_t n = h->nq * h->k;
  for (int64_t i = 0; i < n; i++) {
    if (h->ext_ids) embr_free(h->ext_ids[i]);
    if (h->metadata) embr_free(h->metadata[i]);
  }
  embr_free(h->ext_ids);
  embr_free(h->metadata);
  embr_free(h->dist);
  embr_free(h->ids);
  memset(h, 0, sizeof *h);
}

embr_status embr_collection_filter_check(const char *filter) {
  embr__filter f;
  int rc = embr__filter_compile(filter, &f);
  embr__filter_free(&f);
  return rc;
}

/* ---- the filter as a bitset -------------------------------------------------------------------- */

typedef struct admitted {
  uint8_t *bits;
  int64_t nbits;
  int64_t count;
} admitted;

static int collect_ids(embr_collection *c, sqlite3_stmt *st, int64_t **ids, int64_t *n, int64_t *max_id) {
  int64_t cap = 0;
  int s;
  *n = 0;
  *max_id = -1;
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n == cap) {
      int64_t was = cap;
      cap = cap ? cap * 2 : 1024;
      int64_t *ni = embr_realloc(*ids, sizeof(int64_t) * (size_t)was, sizeof(int64_t) * (size_t)cap);
      if (!ni) return embr_error(EMBR_ENOMEM, "out of memory");
      *ids = ni;
    }
    int64_t id = sqlite3_column_int64(st, 0);
    (*ids)[(*n)++] = id;
    if (id > *max_id) *max_id = id;
  }
  return s == SQLITE_DONE ? 0 : embr__db_fail(c, s, "evaluating the filter");
}

static int filter_bitset(embr_collection *c, const embr__filter *f, admitted *a) {
  static const char prefix[] = "SELECT id FROM items WHERE ";
  size_t len = sizeof prefix + strlen(f->sql);
  char *sql = embr_alloc(len);
  if (!sql) return embr_error(EMBR_ENOMEM, "out of memory");
  /* The fragment is the compiler's own text (every user value is a parameter). */
  snprintf(sql, len, "%s%s", prefix, f->sql);
  sqlite3_stmt *st = NULL;
  int rc = embr__db_prepare(c, sql, &st);
  embr_free(sql);
  if (!rc) rc = embr__db_bind_filter(c, st, f);
  int64_t *ids = NULL, n = 0, max_id = -1;
  if (!rc) rc = collect_ids(c, st, &ids, &n, &max_id);
  sqlite3_finalize(st);
  if (!rc) {
    a->nbits = max_id + 1;
    a->count = n;
    a->bits = embr_calloc((size_t)(a->nbits / 8 + 1), 1);
    if (!a->bits) rc = embr_error(EMBR_ENOMEM, "out of memory");
  }
  for (int64_t i = 0; !rc && i < n; i++) a->bits[ids[i] >> 3] |= (uint8_t)(1u << (ids[i] & 7));
  embr_free(ids);
  return rc;
}

/* ---- mapping hits back ------------------------------------------------------------------------- */

static char *dup_column(sqlite3_stmt *st, int col) {
  if (sqlite3_column_type(st, col) == SQLITE_NULL) return NULL;
  const unsigned char *t = sqlite3_column_text(st, col);
  int n = sqlite3_column_bytes(st, col);
  char *p = t ? embr_alloc((size_t)n + 1) : NULL;
  if (p) {
    memcpy(p, t, (size_t)n);
    p[n] = '\0';
  }
  return p;
}

/* Looks up one internal id; *found = 0 when the row is gone (deleted by another process after
 * this handle's index last caught up). */
static int lookup(embr_collection *c, int64_t id, int with_meta, char **ext, char **meta, int *found) {
  sqlite3_stmt *st = c->st_by_id;
  int rc = st ? SQLITE_OK : sqlite3_prepare_v3(c->db, "SELECT ext_id, metadata FROM items WHERE id = ?1", -1,
                                                SQLITE_PREPARE_PERSISTENT, &c->st_by_id, NULL);
  if (rc != SQLITE_OK) return embr__db_fail(c, rc, "preparing a query");
  st = c->st_by_id;
  sqlite3_bind_int64(st, 1, id);
  int s = sqlite3_step(st);
  *found = s == SQLITE_ROW;
  rc = s == SQLITE_ROW || s == SQLITE_DONE ? 0 : embr__db_fail(c, s, "reading a hit");
  if (!rc && *found) {
    *ext = dup_column(st, 0);
    if (with_meta) *meta = dup_column(st, 1);
    if (!*ext || (with_meta && !*meta && sqlite3_column_type(st, 1) != SQLITE_NULL))
      rc = embr_error(EMBR_ENOMEM, "out of memory");
  }
  sqlite3_reset(st);
  return rc;
}

/* Replaces internal ids by external ones in place, closing the gaps rows gone missing leave. */
static int map_hits(embr_collection *c, embr_collection_hits *h) {
  float worst = embr_metric_worst(c->metric);
  for (int64_t qi = 0; qi < h->nq; qi++) {
    int64_t base = qi * h->k, w = base;
    for (int64_t j = base; j < base + h->k; j++) {
      if (h->ids[j] < 0) break;
      char *ext = NULL, *meta = NULL;
      int found, rc = lookup(c, h->ids[j], h->metadata != NULL, &ext, &meta, &found);
      if (rc) {
        embr_free(ext);
        embr_free(meta);
        return rc;
      }
      if (!found) continue;
      h->dist[w] = h->dist[j];
      h->ids[w] = h->ids[j];
      h->ext_ids[w] = ext;
      if (h->metadata) h->metadata[w] = meta;
      w++;
    }
    for (; w < base + h->k; w++) {
      h->dist[w] = worst;
      h->ids[w] = -1;
    }
  }
  return 0;
}

/* ---- search ------------------------------------------------------------------------------------ */

static int alloc_hits(embr_collection_hits *h, int64_t nq, int k, int with_meta) {
  size_t n;
  if (embr_size_mul((size_t)nq, (size_t)k, &n)) return EMBR_ENOMEM;
  h->nq = nq;
  h->k = k;
  h->dist = embr_alloc(sizeof(float) * (n ? n : 1));
  h->ids = embr_alloc(sizeof(int64_t) * (n ? n : 1));
  h->ext_ids = embr_calloc(n ? n : 1, sizeof(char *));
  h->metadata = with_meta ? embr_calloc(n ? n : 1, sizeof(char *)) : NULL;
  if (!h->dist || !h->ids || !h->ext_ids || (with_meta && !h->metadata))
    return embr_error(EMBR_ENOMEM, "out of memory for %lld x %d results", (long long)nq, k);
  for (size_t i = 0; i < n; i++) h->ids[i] = -1;
  return 0;
}

/* Runs the index search (or, while an IVF index waits for training, an exact one over every
 * row) inside the caller's read transaction. */
static int run_search(embr_collection *c, const float *q, int64_t nq, int64_t ldq, const embr__filter *f,
                      const embr_collection_search_params *p, embr_collection_hits *h) {
  int rc = c->need_rebuild || !c->ix ? embr__sync(c) : 0;
  admitted a = {NULL, 0, 0};
  if (!rc && f->sql) rc = filter_bitset(c, f, &a);
  if (rc || (f->sql && a.count == 0)) {
    embr_free(a.bits);
    return rc;
  }
  embr_index *tmp = NULL;
  if (!embr_index_is_trained(c->ix)) rc = embr__build_flat(c, &tmp);
  embr_search_params sp = embr_search_params_default();
  sp.ef = p->ef;
  sp.nprobe = p->nprobe;
  sp.n_threads = p->n_threads;
  if (f->sql) {
    sp.bitset = a.bits;
    sp.bitset_bits = a.nbits;
  }
  if (!rc) rc = embr_index_search(tmp ? tmp : c->ix, q, nq, ldq, h->k, h->dist, h->ids, &sp);
  embr_index_free(tmp);
  embr_free(a.bits);
  return rc ? rc : map_hits(c, h);
}

embr_status embr_collection_search(embr_collection *c, const float *q, int64_t nq, int64_t dim, int64_t ldq, int k,
                                   const char *filter, const embr_collection_search_params *params,
                                   embr_collection_hits *out) {
  memset(out, 0, sizeof *out);
  embr_collection_search_params def = embr_collection_search_params_default();
  const embr_collection_search_params *p = params ? params : &def;
  if (dim != c->dim) return embr_error(EMBR_EDIM, "queries have dimension %lld, the collection %lld", (long long)dim, (long long)c->dim);
  if (nq < 0 || (nq > 0 && !q) || ldq < dim) return embr_error(EMBR_EINVAL, "search: bad queries (nq %lld, ld %lld)", (long long)nq, (long long)ldq);
  if (k < 1) return embr_error(EMBR_EINVAL, "k must be at least 1 (got %d)", k);
  embr__filter f = {0};
  int rc = filter ? embr__filter_compile(filter, &f) : 0;
  if (!rc) rc = alloc_hits(out, nq, k, p->with_metadata);
  float worst = embr_metric_worst(c->metric);
  for (int64_t i = 0; !rc && i < nq * k; i++) out->dist[i] = worst;
  if (!rc && nq > 0) {
    rc = embr__db_begin(c, 0);
    if (!rc) {
      rc = run_search(c, q, nq, ldq, &f, p, out);
      if (rc) embr__db_rollback(c);
      else rc = embr__db_commit(c);
    }
  }
  embr__filter_free(&f);
  if (rc) embr_collection_hits_free(out);
  return rc;
}

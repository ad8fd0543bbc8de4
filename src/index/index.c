/* The index front end: the factory, argument checks shared by every kind, cosine normalisation,
 * id bookkeeping and the file container (header, CRC-32, trailer). See include/embr/index.h. */
#include "index/index_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ---- spec parsing ------------------------------------------------------------------------------ */

int embr__spec_parse(const char *text, index_spec *out) {
  memset(out, 0, sizeof *out);
  if (!text || !*text) return embr_error(EMBR_EINVAL, "empty index spec");
  const char *colon = strchr(text, ':');
  size_t klen = colon ? (size_t)(colon - text) : strlen(text);
  if (klen == 0 || klen >= sizeof out->kind) return embr_error(EMBR_EINVAL, "index spec '%s': bad kind", text);
  for (size_t i = 0; i < klen; i++) out->kind[i] = (char)tolower((unsigned char)text[i]);
  const char *p = colon ? colon + 1 : NULL;
  while (p && *p) {
    const char *comma = strchr(p, ','), *end = comma ? comma : p + strlen(p);
    const char *eq = memchr(p, '=', (size_t)(end - p));
    if (!eq || eq == p || end - eq - 1 <= 0)
      return embr_error(EMBR_EINVAL, "index spec '%s': expected key=value, got '%.*s'", text, (int)(end - p), p);
    if (out->nkv == (int)(sizeof out->kv / sizeof out->kv[0]))
      return embr_error(EMBR_EINVAL, "index spec '%s': too many parameters", text);
    index_kv *kv = &out->kv[out->nkv++];
    size_t kl = (size_t)(eq - p), vl = (size_t)(end - eq - 1);
    if (kl >= sizeof kv->key || vl >= sizeof kv->value)
      return embr_error(EMBR_EINVAL, "index spec '%s': parameter too long", text);
    for (size_t i = 0; i < kl; i++) kv->key[i] = (char)tolower((unsigned char)p[i]);
    memcpy(kv->value, eq + 1, vl);
    for (int i = 0; i < out->nkv - 1; i++)
      if (!strcmp(out->kv[i].key, kv->key)) return embr_error(EMBR_EINVAL, "index spec '%s': '%s' given twice", text, kv->key);
    p = comma ? comma + 1 : NULL;
  }
  return 0;
}

int embr__spec_int(index_spec *s, const char *key, int64_t def, int64_t lo, int64_t hi, int64_t *out) {
  *out = def;
  for (int i = 0; i < s->nkv; i++) {
    if (strcmp(s->kv[i].key, key)) continue;
    s->kv[i].used = 1;
    char *end;
    errno = 0;
    long long v = strtoll(s->kv[i].value, &end, 10);
    if (*end || errno) return embr_error(EMBR_EINVAL, "index parameter %s=%s is not an integer", key, s->kv[i].value);
    if (v < lo || v > hi)
      return embr_error(EMBR_EINVAL, "index parameter %s=%lld is out of range [%lld, %lld]", key, v, (long long)lo, (long long)hi);
    *out = v;
  }
  return 0;
}

int embr__spec_check_unused(const index_spec *s) {
  for (int i = 0; i < s->nkv; i++)
    if (!s->kv[i].used) return embr_error(EMBR_EINVAL, "index kind '%s' has no parameter '%s'", s->kind, s->kv[i].key);
  return 0;
}

static const embr_index_ops *ops_for(const char *kind) {
  if (!strcmp(kind, "flat")) return &embr__flat_ops;
  if (!strcmp(kind, "hnsw")) return &embr__hnsw_ops;
  if (!strcmp(kind, "ivfflat") || !strcmp(kind, "ivfpq")) return &embr__ivf_ops;
  return NULL;
}

/* ---- lifecycle -------------------------------------------------------------------------------- */

embr_status embr_index_create(embr_index **out, const char *spec, int64_t dim, embr_metric metric) {
  *out = NULL;
  if (dim < 1 || dim > (1 << 20)) return embr_error(EMBR_EINVAL, "index dimension must be in 1..%d (got %lld)", 1 << 20, (long long)dim);
  if ((unsigned)metric > EMBR_METRIC_L1) return embr_error(EMBR_EINVAL, "unknown metric %d", (int)metric);
  index_spec s;
  int rc = embr__spec_parse(spec, &s);
  if (rc) return rc;
  const embr_index_ops *ops = ops_for(s.kind);
  if (!ops) return embr_error(EMBR_EINVAL, "unknown index kind '%s' (flat, hnsw, ivfflat, ivfpq)", s.kind);
  embr_index *ix = embr_calloc(1, sizeof *ix);
  if (!ix) return embr_error(EMBR_ENOMEM, "out of memory");
  ix->ops = ops;
  ix->dim = dim;
  ix->metric = metric;
  if ((rc = ops->create(ix, &s)) || (rc = embr__spec_check_unused(&s))) {
    embr_index_free(ix);
    return rc;
  }
  *out = ix;
  return 0;
}

void embr_index_free(embr_index *ix) {
  if (!ix) return;
  if (ix->ops && ix->impl) ix->ops->destroy(ix);
  embr__filemap_close(&ix->map);
  embr_free(ix);
}

int embr_index_is_trained(const embr_index *ix) { return ix->ops->is_trained(ix); }
void embr_index_set_threads(embr_index *ix, int n_threads) { ix->n_threads = n_threads > 0 ? n_threads : 0; }
int64_t embr_index_size(const embr_index *ix) { return ix->ops->size(ix); }
int64_t embr_index_dim(const embr_index *ix) { return ix->dim; }
embr_metric embr_index_metric(const embr_index *ix) { return ix->metric; }
const char *embr_index_spec(const embr_index *ix) { return ix->spec; }
int64_t embr_index_memory(const embr_index *ix) { return ix->ops->memory(ix); }

embr_search_params embr_search_params_default(void) {
  embr_search_params p;
  memset(&p, 0, sizeof p);
  p.refine = -1;
  return p;
}

/* Finite values; for cosine, a normalised copy (zero rows stay zero). *prep is x itself or the
 * copy (free with embr_free when != x). */
static int prepare_rows(const embr_index *ix, const float *x, int64_t n, int64_t ld, const float **prep,
                        int64_t *pld, const char *what) {
  *prep = x;
  *pld = ld;
  if (n < 0 || (n > 0 && !x) || ld < ix->dim) return embr_error(EMBR_EINVAL, "%s: bad matrix (n %lld, ld %lld, dim %lld)", what, (long long)n, (long long)ld, (long long)ix->dim);
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < ix->dim; j++)
      if (!isfinite(x[i * ld + j]))
        return embr_error(EMBR_EVALUE, "%s: row %lld, column %lld is %s", what, (long long)i, (long long)j,
                          isnan(x[i * ld + j]) ? "NaN" : "infinite");
  if (ix->metric != EMBR_METRIC_COSINE || n == 0) return 0;
  float *c = embr_alloc(sizeof(float) * (size_t)n * (size_t)ix->dim);
  if (!c) return embr_error(EMBR_ENOMEM, "out of memory");
  for (int64_t i = 0; i < n; i++) {
    const float *r = x + i * ld;
    float nn = embr_norm_sq(r, ix->dim), inv = nn > 0 ? 1.0f / sqrtf(nn) : 0.0f;
    for (int64_t j = 0; j < ix->dim; j++) c[i * ix->dim + j] = r[j] * inv;
  }
  *prep = c;
  *pld = ix->dim;
  return 0;
}

embr_status embr_index_train(embr_index *ix, const float *x, int64_t n, int64_t ld, const embr_progress *pr) {
  if (ix->readonly) return embr_error(EMBR_EUNSUPPORTED, "index is read-only (memory-mapped)");
  const float *px;
  int64_t pld;
  int rc = prepare_rows(ix, x, n, ld, &px, &pld, "train");
  if (rc) return rc;
  rc = ix->ops->train ? ix->ops->train(ix, px, n, pld, pr) : 0;
  if (px != x) embr_free((void *)px);
  return rc;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* New ids must be unique within the batch and absent from the index. */
static int check_ids(const embr_index *ix, const int64_t *ids, int64_t n) {
  int64_t *s = embr_alloc(sizeof(int64_t) * (size_t)(n ? n : 1));
  if (!s) return embr_error(EMBR_ENOMEM, "out of memory");
  memcpy(s, ids, sizeof(int64_t) * (size_t)n);
  qsort(s, (size_t)n, sizeof(int64_t), cmp_i64);
  int rc = 0;
  for (int64_t i = 0; i < n && !rc; i++) {
    if (s[i] < 0 || s[i] > INT64_MAX / 2)
      rc = embr_error(EMBR_EINVAL, "id %lld is out of range (0 .. 2^62)", (long long)s[i]);
    else if (i > 0 && s[i] == s[i - 1]) rc = embr_error(EMBR_EINVAL, "id %lld appears twice in the batch", (long long)s[i]);
    else if (ix->ops->contains(ix, s[i])) rc = embr_error(EMBR_EINVAL, "id %lld is already in the index", (long long)s[i]);
  }
  embr_free(s);
  return rc;
}

embr_status embr_index_add(embr_index *ix, const float *x, int64_t n, int64_t ld, const int64_t *ids,
                           const embr_progress *pr) {
  if (ix->readonly) return embr_error(EMBR_EUNSUPPORTED, "index is read-only (memory-mapped)");
  if (n == 0) return 0;
  int64_t *own = NULL;
  int rc = 0;
  if (!ids) {
    if (ix->next_id > INT64_MAX / 2 - n) return embr_error(EMBR_EINVAL, "automatic ids exhausted; pass ids");
    own = embr_alloc(sizeof(int64_t) * (size_t)n);
    if (!own) return embr_error(EMBR_ENOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) own[i] = ix->next_id + i;
    ids = own;
    if ((rc = check_ids(ix, ids, n))) {
      embr_free(own);
      return rc;
    }
  } else if ((rc = check_ids(ix, ids, n))) {
    return rc;
  }
  const float *px;
  int64_t pld;
  if (!(rc = prepare_rows(ix, x, n, ld, &px, &pld, "add"))) {
    rc = ix->ops->add(ix, px, n, pld, ids, pr);
    if (px != x) embr_free((void *)px);
  }
  if (!rc)
    for (int64_t i = 0; i < n; i++)
      if (ids[i] >= ix->next_id) ix->next_id = ids[i] + 1;
  embr_free(own);
  return rc;
}

embr_status embr_index_remove(embr_index *ix, const int64_t *ids, int64_t n, int64_t *removed) {
  if (ix->readonly) return embr_error(EMBR_EUNSUPPORTED, "index is read-only (memory-mapped)");
  int64_t r = 0;
  int rc = n > 0 ? ix->ops->remove(ix, ids, n, &r) : 0;
  if (removed) *removed = r;
  return rc;
}

embr_status embr_index_search(const embr_index *ix, const float *q, int64_t nq, int64_t ldq, int k, float *dist,
                              int64_t *ids, const embr_search_params *params) {
  embr_search_params def = embr_search_params_default();
  const embr_search_params *p = params ? params : &def;
  if (k < 1) return embr_error(EMBR_EINVAL, "k must be at least 1 (got %d)", k);
  if (nq > 0 && (!dist || !ids)) return embr_error(EMBR_EINVAL, "NULL output");
  if (p->bitset && p->bitset_bits < 0) return embr_error(EMBR_EINVAL, "negative bitset size");
  const float *pq;
  int64_t pld;
  int rc = prepare_rows(ix, q, nq, ldq, &pq, &pld, "query");
  if (rc || nq == 0) return rc;
  rc = ix->ops->search(ix, pq, nq, pld, k, dist, ids, p);
  if (pq != q) embr_free((void *)pq);
  return rc;
}

/* ---- id map ---------------------------------------------------------------------------------- */

#define SLOT_EMPTY INT64_MIN
#define SLOT_GONE (INT64_MIN + 1)

static uint64_t mix64(int64_t k) {
  uint64_t z = (uint64_t)k * 0x9E3779B97F4A7C15ull;
  return z ^ (z >> 29);
}

int embr__idmap_init(embr__idmap *m, int64_t expected) {
  memset(m, 0, sizeof *m);
  int64_t cap = 64;
  while (cap < expected * 2) cap *= 2;
  m->keys = embr_alloc(sizeof(int64_t) * (size_t)cap);
  m->vals = embr_alloc(sizeof(int64_t) * (size_t)cap);
  if (!m->keys || !m->vals) {
    embr__idmap_free(m);
    return embr_error(EMBR_ENOMEM, "out of memory");
  }
  for (int64_t i = 0; i < cap; i++) m->keys[i] = SLOT_EMPTY;
  m->cap = cap;
  return 0;
}

void embr__idmap_free(embr__idmap *m) {
  embr_free(m->keys);
  embr_free(m->vals);
  memset(m, 0, sizeof *m);
}

static int64_t find_slot(const embr__idmap *m, int64_t key, int for_insert) {
  uint64_t mask = (uint64_t)m->cap - 1, h = mix64(key) & mask;
  int64_t tomb = -1;
  for (;;) {
    int64_t k = m->keys[h];
    if (k == key) return (int64_t)h;
    if (k == SLOT_EMPTY) return for_insert && tomb >= 0 ? tomb : (for_insert ? (int64_t)h : -1);
    if (k == SLOT_GONE && tomb < 0) tomb = (int64_t)h;
    h = (h + 1) & mask;
  }
}

static int idmap_grow(embr__idmap *m) {
  embr__idmap n;
  int rc = embr__idmap_init(&n, m->count + 64); /* init sizes for twice its argument */
  if (rc) return rc;
  for (int64_t i = 0; i < m->cap; i++)
    if (m->keys[i] != SLOT_EMPTY && m->keys[i] != SLOT_GONE) {
      int64_t s = find_slot(&n, m->keys[i], 1);
      n.keys[s] = m->keys[i];
      n.vals[s] = m->vals[i];
      n.count++;
      n.used++;
    }
  embr__idmap_free(m);
  *m = n;
  return 0;
}

int embr__idmap_put(embr__idmap *m, int64_t key, int64_t val) {
  if ((m->used + 1) * 10 > m->cap * 7) {
    int rc = idmap_grow(m);
    if (rc) return rc;
  }
  int64_t s = find_slot(m, key, 1);
  if (m->keys[s] != key) {
    if (m->keys[s] == SLOT_EMPTY) m->used++;
    m->count++;
    m->keys[s] = key;
  }
  m->vals[s] = val;
  return 0;
}

int64_t embr__idmap_get(const embr__idmap *m, int64_t key) {
  if (!m->cap) return -1;
  int64_t s = find_slot(m, key, 0);
  return s >= 0 ? m->vals[s] : -1;
}

int embr__idmap_del(embr__idmap *m, int64_t key) {
  if (!m->cap) return 0;
  int64_t s = find_slot(m, key, 0);
  if (s < 0) return 0;
  m->keys[s] = SLOT_GONE;
  m->count--;
  return 1;
}

int embr__check_finite(const float *x, int64_t n, int64_t stride, int64_t dim, const char *name, const char *what) {
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < dim; j++)
      if (!isfinite(x[i * stride + j]))
        return embr_error(EMBR_EFORMAT, "%s: %s row %lld holds a NaN or infinite value", name, what, (long long)i);
  return 0;
}

/* ---- sections and the container ---------------------------------------------------------------- */

int embr__write_section(embr__wfile *w, const void *p, size_t len) {
  static const unsigned char zeros[64] = {0};
  int rc = embr__wfile_write(w, p, len);
  if (!rc && len % 64) rc = embr__wfile_write(w, zeros, 64 - len % 64);
  return rc;
}

const unsigned char *embr__read_section(const unsigned char *buf, size_t size, size_t *off, size_t len,
                                        const char *name, const char *what) {
  size_t padded = len + (len % 64 ? 64 - len % 64 : 0);
  if (padded < len || *off > size || size - *off < padded) {
    embr_error(EMBR_EFORMAT, "%s: truncated: the %s section needs %zu bytes at offset %zu, file has %zu",
               name, what, len, *off + 64, size + 64 + 16);
    return NULL;
  }
  const unsigned char *p = buf + *off;
  *off += padded;
  return p;
}

enum { HEADER = 64, TRAILER = 16, VERSION_MAJOR = 1, VERSION_MINOR = 0 };
static const char MAGIC[8] = {'E', 'M', 'B', 'R', 'I', 'D', 'X', '1'};
static const char END_MAGIC[8] = {'E', 'M', 'B', 'R', 'E', 'N', 'D', '1'};

static void put_u16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static void put_u32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static void put_u64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static uint32_t get_u32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t get_u64(const unsigned char *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

/* The kind streams its payload after a placeholder header; the payload's CRC is then computed by
 * reading the temporary file back, the trailer appended and the real header written over the
 * placeholder, all before the atomic rename. */
embr_status embr_index_save(const embr_index *ix, const char *path) {
  embr__wfile w;
  int rc = embr__wfile_open(&w, path);
  if (rc) return rc;
  unsigned char h[HEADER];
  memset(h, 0, sizeof h);
  rc = embr__wfile_write(&w, h, sizeof h);
  long start = ftell(w.f);
  if (!rc) rc = ix->ops->save(ix, &w);
  if (!rc && fflush(w.f) != 0) rc = embr_error(EMBR_EIO, "%s: write failed", path);
  long end = rc ? 0 : ftell(w.f);
  if (!rc && (start < 0 || end < start)) rc = embr_error(EMBR_EIO, "%s: cannot tell the file position", path);
  /* CRC of the payload: read it back from the temporary file. */
  uLong crc = crc32(0L, Z_NULL, 0);
  if (!rc) {
    FILE *r = fopen(w.tmp, "rb");
    unsigned char buf[1 << 16];
    size_t got;
    if (!r || fseek(r, start, SEEK_SET) != 0) rc = embr_error(EMBR_EIO, "%s: cannot reread the payload", path);
    while (!rc && (got = fread(buf, 1, sizeof buf, r)) > 0) crc = crc32(crc, buf, (uInt)got);
    if (r) fclose(r);
  }
  if (!rc) {
    memcpy(h, MAGIC, 8);
    put_u16(h + 8, VERSION_MAJOR);
    put_u16(h + 10, VERSION_MINOR);
    put_u32(h + 12, (uint32_t)ix->metric);
    put_u64(h + 16, (uint64_t)ix->dim);
    size_t klen = strcspn(ix->spec, ":");
    memcpy(h + 24, ix->spec, klen < 15 ? klen : 15);
    put_u64(h + 40, (uint64_t)(end - start));
    put_u64(h + 48, (uint64_t)ix->next_id);
    put_u32(h + 56, (uint32_t)crc32(0L, h, 56));
    unsigned char t[TRAILER];
    put_u32(t, (uint32_t)crc);
    put_u32(t + 4, 0);
    memcpy(t + 8, END_MAGIC, 8);
    rc = embr__wfile_write(&w, t, sizeof t);
    if (!rc && (fseek(w.f, 0, SEEK_SET) != 0 || fwrite(h, 1, sizeof h, w.f) != sizeof h))
      rc = embr_error(EMBR_EIO, "%s: cannot write the header", path);
  }
  if (rc) {
    embr__wfile_abort(&w);
    return rc;
  }
  return embr__wfile_commit(&w);
}

embr_status embr_index_load_mem(embr_index **out, const void *vbuf, size_t len, const char *name, int flags) {
  *out = NULL;
  const unsigned char *buf = vbuf;
  if (len < HEADER + TRAILER) return embr_error(EMBR_EFORMAT, "%s: truncated: %zu bytes, not an embr index", name, len);
  if (memcmp(buf, MAGIC, 8)) return embr_error(EMBR_EFORMAT, "%s: not an embr index (bad magic)", name);
  if (get_u32(buf + 56) != (uint32_t)crc32(0L, buf, 56)) return embr_error(EMBR_EFORMAT, "%s: header checksum mismatch", name);
  unsigned major = (unsigned)buf[8] | (unsigned)buf[9] << 8;
  if (major != VERSION_MAJOR) return embr_error(EMBR_EUNSUPPORTED, "%s: index format version %u, this embr reads %d", name, major, VERSION_MAJOR);
  uint32_t metric = get_u32(buf + 12);
  uint64_t dim = get_u64(buf + 16), plen = get_u64(buf + 40);
  int64_t next_id = (int64_t)get_u64(buf + 48);
  if (metric > EMBR_METRIC_L1 || dim < 1 || dim > (1u << 20)) return embr_error(EMBR_EFORMAT, "%s: bad metric or dimension in the header", name);
  if (get_u32(buf + 60) != 0 || get_u32(buf + len - TRAILER + 4) != 0)
    return embr_error(EMBR_EFORMAT, "%s: reserved header or trailer bytes are not zero", name);
  if (next_id < 0 || next_id > INT64_MAX / 2) return embr_error(EMBR_EFORMAT, "%s: bad next id in the header", name);
  if (plen != len - HEADER - TRAILER)
    return embr_error(EMBR_EFORMAT, "%s: truncated or padded: header says %llu payload bytes, file has %zu", name,
                      (unsigned long long)plen, len - HEADER - TRAILER);
  const unsigned char *t = buf + len - TRAILER;
  if (memcmp(t + 8, END_MAGIC, 8)) return embr_error(EMBR_EFORMAT, "%s: truncated (no end marker)", name);
  uLong crc = crc32(0L, Z_NULL, 0);
  for (uint64_t o = 0; o < plen; o += 1u << 30) {
    uint64_t chunk = plen - o < (1u << 30) ? plen - o : (1u << 30);
    crc = crc32(crc, buf + HEADER + o, (uInt)chunk);
  }
  if (get_u32(t) != (uint32_t)crc) return embr_error(EMBR_EFORMAT, "%s: payload checksum mismatch (damaged file)", name);
  char kind[16];
  memcpy(kind, buf + 24, 15);
  kind[15] = '\0';
  const embr_index_ops *ops = ops_for(kind);
  if (!ops) {
    for (char *c = kind; *c; c++)
      if (!isalnum((unsigned char)*c)) *c = '?'; /* keep the message one printable line */
    return embr_error(EMBR_EFORMAT, "%s: unknown index kind '%s'", name, kind);
  }
  embr_index *ix = embr_calloc(1, sizeof *ix);
  if (!ix) return embr_error(EMBR_ENOMEM, "out of memory");
  ix->ops = ops;
  ix->dim = (int64_t)dim;
  ix->metric = (embr_metric)metric;
  ix->next_id = next_id;
  ix->readonly = (flags & EMBR_LOAD_MMAP) != 0;
  int rc = ops->load(ix, buf + HEADER, (size_t)plen, name, ix->readonly);
  if (rc) {
    embr_index_free(ix);
    return rc;
  }
  *out = ix;
  return 0;
}

embr_status embr_index_load(embr_index **out, const char *path, int flags) {
  *out = NULL;
  embr__filemap fm;
  /* In-place search maps the file (see EMBR_LOAD_MMAP for the risk); everything else reads a copy. */
  int rc = flags & EMBR_LOAD_MMAP ? embr__filemap_map(&fm, path) : embr__filemap_open(&fm, path, EMBR__READ_ANY);
  if (rc) return rc;
  if (!fm.data) {
    embr__filemap_close(&fm);
    return embr_error(EMBR_EFORMAT, "%s: empty file", path);
  }
  rc = embr_index_load_mem(out, fm.data, fm.len, path, flags & EMBR_LOAD_MMAP ? EMBR_LOAD_MMAP : 0);
  if (!rc && (flags & EMBR_LOAD_MMAP)) {
    (*out)->map = fm; /* the index searches in place; the mapping lives as long as it does */
    return 0;
  }
  embr__filemap_close(&fm);
  return rc;
}

/* HNSW (Malkov & Yashunin 2018): a hierarchy of proximity graphs searched greedily from the top.
 *
 * Memory: level 0 is one block of fixed-size records, one per slot: [link count][M0 links][vector]
 * (unpadded; files of the first layout padded both parts to 64 bytes and still load); a search
 * touches one record per visited node. Upper levels (about one node in M) have their own link
 * lists. Labels (the caller's ids), levels and deletion flags are side arrays; an id map exists
 * only once some id differs from its slot.
 *
 * Construction runs in parallel over the new nodes with one lock per node, as hnswlib does;
 * neighbours are chosen by the paper's heuristic (keep a candidate only if it is closer to the
 * new node than to every neighbour already kept), except that at level 0 a node's last in-link is
 * never pruned away, and a large add ends with a walk that links any island back in: every item
 * stays reachable. Removal marks a node deleted: it keeps routing searches but never appears in
 * results, and a later add reuses its slot (keeping its level, so the links that point at it stay
 * valid) after repairing the neighbourhood it leaves. A filter that admits few ids switches the search to an
 * exact scan of the admitted ones, which keeps recall where a graph walk would starve. */
#include "index/index_internal.h"

#include "vec/kernels.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LEVEL 31
/* Below this share of admitted items (or this many), a filtered search scans them exactly. */
#define FILTER_SCAN_SHARE 0.05
#define FILTER_SCAN_COUNT 20000
/* Search states kept for reuse (a one-query call must not allocate and clear a visited array the
 * size of the index): at most this many, one per thread searching at once. */
#define POOL_MAX 64

typedef struct hnsw {
  int M, M0, efc, ef;
  double mult;                /* 1 / ln M: level distribution */
  int64_t n, cap;             /* slots used / allocated */
  int64_t live;               /* slots holding a live item */
  size_t rec, vec_off;        /* bytes per level-0 record; offset of the vector in it */
  unsigned char *level0;      /* cap records */
  int32_t **upper;            /* per slot: NULL or level x (1 + M) int32 */
  uint8_t *level;             /* per slot */
  uint8_t *deleted;           /* per slot */
  int32_t *indeg;             /* per slot: level-0 in-links (not kept when mapped) */
  int64_t *label;             /* per slot */
  int32_t entry;              /* -1 when empty */
  int maxlevel;
  embr__idmap map;            /* label -> slot, live items; unused while `ident` */
  int ident;                  /* every live slot's label is the slot itself: no map needed */
  int layout;                 /* record layout: 1 padded to 64 bytes (first files), 2 compact */
  int32_t *free_slots;        /* deleted slots available for reuse */
  int64_t nfree, capfree;
  atomic_flag *locks;         /* per slot, during construction */
  pthread_mutex_t entry_lock;
  uint64_t seed, draws;       /* level draws so far: levels do not depend on threads */
  int mapped;                 /* level0, labels... point into a mapped file */
  float (*dist)(const float *, const float *, int64_t);
  int ip;                     /* inner product: internal distance = -dot */
  int keep_last;              /* pruning keeps last in-links (not for raw inner product, below) */
  pthread_mutex_t pool_lock;  /* guards `pool`: search states kept between calls */
  struct walk *pool[POOL_MAX];
  int npool;
} hnsw;

/* ---- record access ------------------------------------------------------------------------- */
static inline int32_t *links0(const hnsw *h, int64_t s) { return (int32_t *)(h->level0 + (size_t)s * h->rec); }
static inline const float *vec(const hnsw *h, int64_t s) { return (const float *)(h->level0 + (size_t)s * h->rec + h->vec_off); }
static inline int32_t *links_at(const hnsw *h, int64_t s, int l) {
  return l == 0 ? links0(h, s) : h->upper[s] + (size_t)(l - 1) * (size_t)(h->M + 1);
}
static inline float dist_to(const hnsw *h, const float *q, int64_t s, int64_t dim) {
  float d = h->dist(q, vec(h, s), dim);
  return h->ip ? -d : d;
}
/* Requests every cache line of slot s's vector. */
static inline void prefetch_vec(const hnsw *h, int64_t s, int64_t dim) {
  const char *p = (const char *)vec(h, s), *end = p + 4 * dim;
  for (p = (const char *)((uintptr_t)p & ~(uintptr_t)63); p < end; p += 64) _mm_prefetch(p, _MM_HINT_T0);
}
static inline void lock(hnsw *h, int64_t s) {
  while (atomic_flag_test_and_set_explicit(&h->locks[s], memory_order_acquire)) _mm_pause();
}
static inline void unlock(hnsw *h, int64_t s) { atomic_flag_clear_explicit(&h->locks[s], memory_order_release); }

/* ---- heaps of (distance, slot) ---------------------------------------------------------------- */
typedef struct dn {
  float d;
  int32_t s;
} dn;

typedef struct heap {
  dn *a;
  int n, cap;
  int max; /* 1: worst (largest) on top, 0: best on top */
} heap;

static inline int above(const heap *h, dn x, dn y) { return h->max ? x.d > y.d : x.d < y.d; }

static int heap_push(heap *h, dn x) {
  if (h->n == h->cap) {
    int nc = h->cap * 2;
    dn *a = embr_realloc(h->a, sizeof(dn) * (size_t)h->cap, sizeof(dn) * (size_t)nc);
    if (!a) return -1;
    h->a = a;
    h->cap = nc;
  }
  int i = h->n++;
  while (i > 0) {
    int p = (i - 1) / 2;
    if (!above(h, x, h->a[p])) break;
    h->a[i] = h->a[p];
    i = p;
  }
  h->a[i] = x;
  return 0;
}

static dn heap_pop(heap *h) {
  dn top = h->a[0], x = h->a[--h->n];
  int i = 0;
  for (;;) {
    int c = 2 * i + 1;
    if (c >= h->n) break;
    if (c + 1 < h->n && above(h, h->a[c + 1], h->a[c])) c++;
    if (!above(h, h->a[c], x)) break;
    h->a[i] = h->a[c];
    i = c;
  }
  if (h->n) h->a[i] = x;
  return top;
}

/* ---- per-thread search state ------------------------------------------------------------------ */
typedef struct walk {
  uint16_t *tag;   /* visited marks, one generation per search */
  uint16_t cur;
  int64_t cap;
  heap cand, res;
  dn *sorted;      /* results in ascending order */
  int32_t *links;  /* a copy of one link list (construction reads under a lock) */
  int ncap;
} walk;

static void walk_free(walk *w) {
  embr_free(w->tag);
  embr_free(w->cand.a);
  embr_free(w->res.a);
  embr_free(w->sorted);
  embr_free(w->links);
  memset(w, 0, sizeof *w);
}

static int walk_init(walk *w, int64_t cap, int ef, int m0) {
  memset(w, 0, sizeof *w);
  w->tag = embr_calloc((size_t)(cap ? cap : 1), sizeof(uint16_t));
  w->cand = (heap){embr_alloc(sizeof(dn) * 256), 0, 256, 0};
  w->res = (heap){embr_alloc(sizeof(dn) * 256), 0, 256, 1};
  w->ncap = (ef > m0 ? ef : m0) + 2;
  w->sorted = embr_alloc(sizeof(dn) * (size_t)w->ncap);
  w->links = embr_alloc(sizeof(int32_t) * (size_t)(m0 + 1));
  w->cap = cap;
  if (!w->tag || !w->cand.a || !w->res.a || !w->sorted || !w->links) {
    walk_free(w);
    return embr_error(EMBR_ENOMEM, "HNSW: out of memory for search state");
  }
  return 0;
}

static void walk_begin(walk *w) {
  if (++w->cur == 0) { /* the 16-bit generation wrapped: clear once every 65535 searches */
    memset(w->tag, 0, sizeof(uint16_t) * (size_t)w->cap);
    w->cur = 1;
  }
  w->cand.n = w->res.n = 0;
}

/* A search state from the pool, or a new one (NULL: out of memory, with the error set). A pooled
 * state whose visited array predates an add that grew the index is replaced. */
static walk *pool_get(hnsw *h, int ef) {
  walk *w = NULL;
  pthread_mutex_lock(&h->pool_lock);
  if (h->npool) w = h->pool[--h->npool];
  pthread_mutex_unlock(&h->pool_lock);
  int need = (ef > h->M0 ? ef : h->M0) + 2;
  if (w && w->cap < h->n) {
    walk_free(w);
    embr_free(w);
    w = NULL;
  }
  if (w && w->ncap < need) {
    dn *ns = embr_realloc(w->sorted, sizeof(dn) * (size_t)w->ncap, sizeof(dn) * (size_t)need);
    if (!ns) {
      walk_free(w);
      embr_free(w);
      embr_error(EMBR_ENOMEM, "HNSW: out of memory for search state");
      return NULL;
    }
    w->sorted = ns;
    w->ncap = need;
  }
  if (w) return w;
  w = embr_alloc(sizeof *w);
  if (!w) {
    embr_error(EMBR_ENOMEM, "HNSW: out of memory for search state");
    return NULL;
  }
  if (walk_init(w, h->n, ef, h->M0)) {
    embr_free(w);
    return NULL;
  }
  return w;
}

static void pool_put(hnsw *h, walk *w) {
  pthread_mutex_lock(&h->pool_lock);
  if (h->npool < POOL_MAX) {
    h->pool[h->npool++] = w;
    w = NULL;
  }
  pthread_mutex_unlock(&h->pool_lock);
  if (w) {
    walk_free(w);
    embr_free(w);
  }
}

static void pool_clear(hnsw *h) {
  for (int i = 0; i < h->npool; i++) {
    walk_free(h->pool[i]);
    embr_free(h->pool[i]);
  }
  h->npool = 0;
}

/* Copies node s's links at a level (under its lock during construction). */
static int read_links(hnsw *h, int64_t s, int level, int locked, int32_t *out) {
  if (locked) lock(h, s);
  const int32_t *l = links_at(h, s, level);
  int cnt = l[0];
  memcpy(out, l + 1, sizeof(int32_t) * (size_t)cnt);
  if (locked) unlock(h, s);
  return cnt;
}

/* Greedy descent at one level: move to a better neighbour while there is one. */
static int32_t greedy(hnsw *h, walk *w, const float *q, int64_t dim, int32_t cur, float *dcur, int level,
                      int locked) {
  for (;;) {
    int cnt = read_links(h, cur, level, locked, w->links), moved = 0;
    for (int i = 0; i < cnt; i++) {
      float d = dist_to(h, q, w->links[i], dim);
      if (d < *dcur) {
        *dcur = d;
        cur = w->links[i];
        moved = 1;
      }
    }
    if (!moved) return cur;
  }
}

/* Best-first search of one level from `entry`, keeping the ef best in w->res. Results admit only
 * live nodes passing the filter when p is given (every node during construction, p = NULL); the
 * others still route. Returns -1 on allocation failure. */
static int search_level(hnsw *h, walk *w, const float *q, int64_t dim, int32_t entry, int ef, int level,
                        int locked, const embr_search_params *p) {
  walk_begin(w);
  float d0 = dist_to(h, q, entry, dim);
  w->tag[entry] = w->cur;
  int ok = 0;
  ok |= heap_push(&w->cand, (dn){d0, entry});
  if (!p || (!h->deleted[entry] && embr__admit(p, h->label[entry]))) ok |= heap_push(&w->res, (dn){d0, entry});
  float bound = w->res.n ? w->res.a[0].d : INFINITY;
  while (w->cand.n && !ok) {
    dn c = heap_pop(&w->cand);
    if (c.d > bound && w->res.n >= ef) break;
    int cnt = read_links(h, c.s, level, locked, w->links), m = 0;
    for (int i = 0; i < cnt; i++) { /* the unvisited ones, all their vectors requested (as search_level0) */
      int32_t nb = w->links[i];
      if (w->tag[nb] == w->cur) continue;
      w->tag[nb] = w->cur;
      w->links[m++] = nb;
      prefetch_vec(h, nb, dim);
    }
    for (int i = 0; i < m; i++) {
      int32_t nb = w->links[i];
      float d = dist_to(h, q, nb, dim);
      if (w->res.n < ef || d < bound) {
        ok |= heap_push(&w->cand, (dn){d, nb});
        if (!p || (!h->deleted[nb] && embr__admit(p, h->label[nb]))) {
          ok |= heap_push(&w->res, (dn){d, nb});
          if (w->res.n > ef) heap_pop(&w->res);
        }
        if (w->res.n) bound = w->res.a[0].d;
      }
    }
  }
  return ok ? -1 : 0;
}

/* The search-time walk of level 0 (no locks, links read in place): the hot loop of a query.
 * Candidates' records are prefetched when they are pushed, so by the time one is popped its
 * links are in cache, and each neighbour's vector is prefetched one step ahead. */
static int search_level0(const hnsw *h, walk *w, const float *q, int64_t dim, int32_t entry, int ef,
                         const embr_search_params *p, int filtered) {
  walk_begin(w);
  float d0 = dist_to(h, q, entry, dim);
  w->tag[entry] = w->cur;
  int bad = heap_push(&w->cand, (dn){d0, entry});
  if (!h->deleted[entry] && (!filtered || embr__admit(p, h->label[entry]))) bad |= heap_push(&w->res, (dn){d0, entry});
  float bound = w->res.n ? w->res.a[0].d : INFINITY;
  uint16_t cur = w->cur;
  int32_t *fresh = w->links;
  while (w->cand.n && !bad) {
    dn c = heap_pop(&w->cand);
    if (c.d > bound && w->res.n >= ef) break;
    /* First the unvisited neighbours, then every cache line of all their vectors is requested,
     * then their distances. Most of a walk's time is waiting for vectors: one prefetched line per
     * vector, one neighbour ahead (hnswlib's way, and embr's before) left the other six lines of a
     * 400-byte vector to stall; requesting them all at once was 1.1-1.5x faster than one or two
     * neighbours ahead (interleaved runs, 100k x 100, ef 32). */
    const int32_t *l = links0(h, c.s);
    int cnt = l[0], m = 0;
    for (int i = 1; i <= cnt; i++) {
      int32_t nb = l[i];
      if (w->tag[nb] == cur) continue;
      w->tag[nb] = cur;
      fresh[m++] = nb;
    }
    for (int i = 0; i < m; i++) prefetch_vec(h, fresh[i], dim);
    for (int i = 0; i < m; i++) {
      int32_t nb = fresh[i];
      float d = dist_to(h, q, nb, dim);
      if (w->res.n < ef || d < bound) {
        bad |= heap_push(&w->cand, (dn){d, nb});
        _mm_prefetch((const char *)links0(h, w->cand.a[0].s), _MM_HINT_T0);
        if (!h->deleted[nb] && (!filtered || embr__admit(p, h->label[nb]))) {
          bad |= heap_push(&w->res, (dn){d, nb});
          if (w->res.n > ef) heap_pop(&w->res);
        }
        if (w->res.n) bound = w->res.a[0].d;
      }
    }
  }
  return bad ? -1 : 0;
}

/* Drains w->res into w->sorted, ascending; returns the count. */
static int drain_sorted(walk *w) {
  int n = w->res.n;
  for (int i = n - 1; i >= 0; i--) w->sorted[i] = heap_pop(&w->res);
  return n;
}

/* The paper's heuristic: walk candidates from the closest; keep one if it is closer to the base
 * than to every neighbour kept so far. sorted: ascending distances to the base; result in place. */
static int select_neighbors(const hnsw *h, int64_t dim, dn *sorted, int n, int max) {
  int kept = 0;
  for (int i = 0; i < n && kept < max; i++) {
    int good = 1;
    for (int j = 0; j < kept && good; j++)
      if (dist_to(h, vec(h, sorted[i].s), sorted[j].s, dim) < sorted[i].d) good = 0;
    if (good) sorted[kept++] = sorted[i];
  }
  return kept;
}

/* ---- level-0 in-degrees ------------------------------------------------------------------------
 * The heuristic happily drops a far node from a full list; when that was the node's last in-link
 * it becomes unreachable (seen in a small collection: an item its own vector could not find even
 * with ef above the item count). Pruning at level 0 therefore keeps a node's last in-link. The
 * counts are atomics: lists change under their owner's lock, the targets are anyone's. */
static inline int32_t indeg_of(const hnsw *h, int32_t s) { return __atomic_load_n(&h->indeg[s], __ATOMIC_RELAXED); }
static inline void indeg_add(hnsw *h, int32_t s, int32_t d) { __atomic_fetch_add(&h->indeg[s], d, __ATOMIC_RELAXED); }

/* Candidates for one link list and whether each must stay (its only in-link is at stake). */
typedef struct pbuf {
  dn *c;
  uint8_t *must;
  size_t cap;
} pbuf;

static int pbuf_init(pbuf *b, size_t cap) {
  b->c = embr_alloc(sizeof(dn) * (cap ? cap : 1));
  b->must = embr_alloc(cap ? cap : 1);
  b->cap = cap;
  return b->c && b->must ? 0 : embr_error(EMBR_ENOMEM, "HNSW: out of memory");
}
static void pbuf_free(pbuf *b) {
  embr_free(b->c);
  embr_free(b->must);
}

static void swap_cand(pbuf *b, int i, int j) {
  dn t = b->c[i];
  uint8_t m = b->must[i];
  b->c[i] = b->c[j], b->must[i] = b->must[j];
  b->c[j] = t, b->must[j] = m;
}

static int by_distance(const void *a, const void *b) {
  float x = ((const dn *)a)->d, y = ((const dn *)b)->d;
  return (x > y) - (x < y);
}

/* Chooses at most max of b->c[0..m) (ascending distance) into b->c[0..k): the heuristic's choice,
 * then candidates marked `must` that it dropped take free places or replace the farthest kept
 * ones that are not marked. Returns k. */
static int prune(const hnsw *h, int64_t dim, pbuf *b, int m, int max) {
  int kept = 0;
  for (int i = 0; i < m && kept < max; i++) {
    int good = 1;
    for (int j = 0; j < kept && good; j++)
      if (dist_to(h, vec(h, b->c[i].s), b->c[j].s, dim) < b->c[i].d) good = 0;
    if (good) swap_cand(b, kept++, i); /* moves an already-dropped one behind: order of the rest kept */
  }
  int moved = 0, r = kept - 1;
  for (int i = kept; i < m; i++) {
    if (!b->must[i]) continue;
    if (kept < max) {
      swap_cand(b, kept++, i);
    } else {
      while (r >= 0 && b->must[r]) r--;
      if (r < 0) break;
      swap_cand(b, r--, i);
    }
    moved = 1;
  }
  if (moved) qsort(b->c, (size_t)kept, sizeof(dn), by_distance);
  return kept;
}

/* Writes nb's list at a level (caller holds nb's lock), keeping the in-degrees. */
static void set_links(hnsw *h, int32_t nb, int level, const dn *keep, int k) {
  int32_t *l = links_at(h, nb, level);
  if (level == 0) {
    for (int i = 1; i <= l[0]; i++) indeg_add(h, l[i], -1);
    for (int i = 0; i < k; i++) indeg_add(h, keep[i].s, 1);
  }
  for (int i = 0; i < k; i++) l[i + 1] = keep[i].s;
  l[0] = k;
}

/* Whether c must stay a candidate for nb's list: at level 0, when nb holds its only in-link
 * (linked) or it has none at all. */
static int must_keep(const hnsw *h, int level, int32_t c, int linked) {
  return h->keep_last && level == 0 && indeg_of(h, c) <= (linked ? 1 : 0);
}

/* Adds `s` to the links of `nb` at a level; when full, re-selects among the old links plus s
 * (force: s must stay). Returns whether nb links to s afterwards. */
static int link_back(hnsw *h, int64_t dim, int32_t nb, int32_t s, int level, pbuf *b, int force) {
  int max = level == 0 ? h->M0 : h->M;
  lock(h, nb);
  int32_t *l = links_at(h, nb, level);
  int cnt = l[0];
  for (int i = 1; i <= cnt; i++)
    if (l[i] == s) {
      unlock(h, nb);
      return 1;
    }
  if (cnt < max) {
    l[cnt + 1] = s;
    l[0] = cnt + 1;
    if (level == 0) indeg_add(h, s, 1);
  } else {
    const float *v = vec(h, nb);
    int m = 0;
    for (int i = 1; i <= cnt; i++) b->c[m++] = (dn){dist_to(h, v, l[i], dim), l[i]};
    b->c[m++] = (dn){dist_to(h, v, s, dim), s};
    qsort(b->c, (size_t)m, sizeof(dn), by_distance);
    for (int i = 0; i < m; i++)
      b->must[i] = (uint8_t)(b->c[i].s == s ? force || must_keep(h, level, s, 0) : must_keep(h, level, b->c[i].s, 1));
    int k = prune(h, dim, b, m, max);
    set_links(h, nb, level, b->c, k);
  }
  int linked = 0;
  for (int i = 1; i <= l[0] && !linked; i++) linked = l[i] == s;
  unlock(h, nb);
  return linked;
}

/* Re-selects nb's links at a level among `hood` (minus nb itself). */
static void relink(hnsw *h, int64_t dim, int32_t nb, const int32_t *hood, int nh, int level, pbuf *b) {
  const float *v = vec(h, nb);
  lock(h, nb);
  const int32_t *l = links_at(h, nb, level);
  int m = 0;
  for (int i = 0; i < nh; i++)
    if (hood[i] != nb) b->c[m++] = (dn){dist_to(h, v, hood[i], dim), hood[i]};
  qsort(b->c, (size_t)m, sizeof(dn), by_distance);
  for (int i = 0; i < m; i++) {
    int linked = 0;
    for (int j = 1; j <= l[0] && !linked; j++) linked = l[j] == b->c[i].s;
    b->must[i] = (uint8_t)must_keep(h, level, b->c[i].s, linked);
  }
  int k = prune(h, dim, b, m, level == 0 ? h->M0 : h->M);
  set_links(h, nb, level, b->c, k);
  unlock(h, nb);
}

/* A reused slot moves to its new vector, leaving a hole where it routed before: a part of the
 * graph reachable only through it would be cut off (seen: live items no search could find after
 * many delete/add rounds). So its old links are dropped and each old neighbour re-selects its
 * links among the hole's neighbours and theirs — the repair hnswlib does when it updates a point;
 * an old neighbour left with no in-link is taken in by another (must_keep). */
static int repair_hole(hnsw *h, walk *w, int64_t dim, int32_t s) {
  size_t cap = (size_t)h->M0 * (size_t)(h->M0 + 1);
  int32_t *old = embr_alloc(sizeof(int32_t) * (size_t)h->M0), *hood = embr_alloc(sizeof(int32_t) * cap);
  pbuf b;
  int rc = pbuf_init(&b, cap);
  if (!rc && (!old || !hood)) rc = embr_error(EMBR_ENOMEM, "HNSW: out of memory");
  for (int l = 0; l <= h->level[s] && !rc; l++) {
    lock(h, s);
    int no = links_at(h, s, l)[0], nh = 0;
    memcpy(old, links_at(h, s, l) + 1, sizeof(int32_t) * (size_t)no);
    set_links(h, s, l, NULL, 0);
    unlock(h, s);
    walk_begin(w);
    w->tag[s] = w->cur;
    for (int i = 0; i < no; i++)
      if (w->tag[old[i]] != w->cur) w->tag[hood[nh++] = old[i]] = w->cur;
    for (int i = 0; i < no; i++) {
      int cnt = read_links(h, old[i], l, 1, w->links);
      for (int j = 0; j < cnt; j++)
        if (w->tag[w->links[j]] != w->cur) w->tag[hood[nh++] = w->links[j]] = w->cur;
    }
    for (int i = 0; i < no; i++) relink(h, dim, old[i], hood, nh, l, &b);
  }
  embr_free(old);
  embr_free(hood);
  pbuf_free(&b);
  return rc;
}

/* Sets a new node's list at a level to its chosen neighbours. Other threads may have linked to
 * it already (it becomes reachable on an upper level before its level-0 list is written, and
 * their insertions link back to it): those links are merged in, not overwritten — overwriting
 * them left nodes whose only in-link was lost (most bulk builds on 2 threads had a few). */
static void set_own_links(hnsw *h, int64_t dim, int32_t s, int level, const dn *chosen, int k, pbuf *b) {
  lock(h, s);
  const int32_t *l = links_at(h, s, level);
  int cnt = l[0], m = 0;
  if (cnt == 0) {
    set_links(h, s, level, chosen, k);
    unlock(h, s);
    return;
  }
  const float *v = vec(h, s);
  for (int i = 1; i <= cnt; i++) b->c[m++] = (dn){dist_to(h, v, l[i], dim), l[i]};
  for (int i = 0; i < k; i++) {
    int dup = 0;
    for (int j = 1; j <= cnt && !dup; j++) dup = l[j] == chosen[i].s;
    if (!dup) b->c[m++] = chosen[i];
  }
  qsort(b->c, (size_t)m, sizeof(dn), by_distance);
  for (int i = 0; i < m; i++) {
    int linked = 0;
    for (int j = 1; j <= cnt && !linked; j++) linked = l[j] == b->c[i].s;
    b->must[i] = (uint8_t)must_keep(h, level, b->c[i].s, linked);
  }
  int kept = prune(h, dim, b, m, level == 0 ? h->M0 : h->M);
  set_links(h, s, level, b->c, kept);
  unlock(h, s);
}

/* Inserts slot s (vector, label and level already set; links empty unless reused) into the
 * graph. A reused slot's old neighbourhood is repaired here, just before it is linked again, not
 * for the whole batch at once: until then its old links still route other insertions. */
static int insert(hnsw *h, walk *w, int64_t dim, int32_t s, int reused, pbuf *b) {
  int level = h->level[s];
  if (reused) {
    int rc = repair_hole(h, w, dim, s);
    if (rc) return rc;
  }
  pthread_mutex_lock(&h->entry_lock);
  int32_t ep = h->entry;
  int top = h->maxlevel;
  if (ep < 0) {
    h->entry = s;
    h->maxlevel = level;
    pthread_mutex_unlock(&h->entry_lock);
    return 0;
  }
  pthread_mutex_unlock(&h->entry_lock);
  const float *q = vec(h, s);
  float d = dist_to(h, q, ep, dim);
  for (int l = top; l > level; l--) ep = greedy(h, w, q, dim, ep, &d, l, 1);
  for (int l = level < top ? level : top; l >= 0; l--) {
    if (search_level(h, w, q, dim, ep, h->efc, l, 1, NULL)) return embr_error(EMBR_ENOMEM, "HNSW: out of memory");
    int n = drain_sorted(w), m = 0;
    for (int i = 0; i < n; i++)
      if (w->sorted[i].s != s) w->sorted[m++] = w->sorted[i];
    if (m == 0) continue;
    ep = w->sorted[0].s;
    int k = select_neighbors(h, dim, w->sorted, m, l == 0 ? h->M0 : h->M);
    set_own_links(h, dim, s, l, w->sorted, k, b);
    for (int i = 0; i < k; i++) link_back(h, dim, w->sorted[i].s, s, l, b, 0);
  }
  if (level > top) {
    pthread_mutex_lock(&h->entry_lock);
    if (level > h->maxlevel) {
      h->maxlevel = level;
      h->entry = s;
    }
    pthread_mutex_unlock(&h->entry_lock);
  }
  return 0;
}

/* ---- storage ------------------------------------------------------------------------------- */

static int reserve(embr_index *ix, hnsw *h, int64_t need) {
  if (need <= h->cap) return 0;
  if (need > INT32_MAX) return embr_error(EMBR_EUNSUPPORTED, "HNSW: more than 2^31 items");
  /* Doubling for a stream of small adds; exactly `need` for a bulk add (no floor: a record can be
   * megabytes wide, and a 400k build must not reserve 524k records). */
  int64_t cap = h->cap ? 2 * h->cap : 16;
  if (cap < need) cap = need;
  unsigned char *l0 = embr_calloc((size_t)cap, h->rec); /* unused link slots are saved: zeroed */
  int32_t **up = embr_calloc((size_t)cap, sizeof(int32_t *));
  uint8_t *lev = embr_calloc((size_t)cap, 1), *del = embr_calloc((size_t)cap, 1);
  int64_t *lab = embr_alloc(sizeof(int64_t) * (size_t)cap);
  int32_t *deg = embr_calloc((size_t)cap, sizeof(int32_t));
  atomic_flag *lk = embr_alloc(sizeof(atomic_flag) * (size_t)cap);
  if (!l0 || !up || !lev || !del || !lab || !deg || !lk) {
    embr_free(l0);
    embr_free(up);
    embr_free(lev);
    embr_free(del);
    embr_free(lab);
    embr_free(deg);
    embr_free(lk);
    return embr_error(EMBR_ENOMEM, "HNSW: out of memory for %lld items", (long long)cap);
  }
  if (h->n) {
    memcpy(l0, h->level0, h->rec * (size_t)h->n);
    memcpy(up, h->upper, sizeof(int32_t *) * (size_t)h->n);
    memcpy(lev, h->level, (size_t)h->n);
    memcpy(del, h->deleted, (size_t)h->n);
    memcpy(lab, h->label, sizeof(int64_t) * (size_t)h->n);
    memcpy(deg, h->indeg, sizeof(int32_t) * (size_t)h->n);
  }
  for (int64_t i = 0; i < cap; i++) atomic_flag_clear(&lk[i]);
  embr_free(h->level0);
  embr_free(h->upper);
  embr_free(h->level);
  embr_free(h->deleted);
  embr_free(h->label);
  embr_free(h->indeg);
  embr_free(h->locks);
  h->level0 = l0;
  h->upper = up;
  h->level = lev;
  h->deleted = del;
  h->label = lab;
  h->indeg = deg;
  h->locks = lk;
  h->cap = cap;
  (void)ix;
  return 0;
}

static int draw_level(hnsw *h) {
  embr_rng r;
  embr_rng_split(&r, h->seed, h->draws++);
  double u = embr_rng_double(&r);
  int l = (int)(-log(u > 1e-300 ? u : 1e-300) * h->mult);
  return l > MAX_LEVEL ? MAX_LEVEL : l;
}

static void setup_metric(embr_index *ix, hnsw *h) {
  const embr__kernels *k = embr__kernels_get();
  embr_metric m = embr__index_inner_metric(ix);
  h->ip = m == EMBR_METRIC_IP;
  /* Under a raw inner product a short vector is nobody's neighbour, not even its own: kept links
   * to such nodes would only crowd out useful ones (recall@10 fell to 0.93 in the index test). */
  h->keep_last = ix->metric != EMBR_METRIC_IP;
  h->dist = m == EMBR_METRIC_L2 ? k->l2sq : m == EMBR_METRIC_IP ? k->dot : k->l1;
}

/* Layout 2 (compact): [count][M0 links][vector], 4-byte aligned, as tight as hnswlib's records (the
 * vector straddles cache lines either way; searches prefetch all of its lines). Layout 1, files
 * written before: the links and the record each padded to 64 bytes (100 floats took 640 bytes
 * instead of 532). Both are searched by the same code through rec and vec_off. */
static void set_geometry(embr_index *ix, hnsw *h, int layout) {
  size_t links = 4 * (size_t)(h->M0 + 1);
  h->layout = layout;
  h->vec_off = layout == 1 ? (links + 63) & ~(size_t)63 : links;
  h->rec = layout == 1 ? (h->vec_off + 4 * (size_t)ix->dim + 63) & ~(size_t)63 : h->vec_off + 4 * (size_t)ix->dim;
  h->mult = 1.0 / log((double)h->M);
  snprintf(ix->spec, sizeof ix->spec, "hnsw:M=%d,efc=%d,ef=%d", h->M, h->efc, h->ef);
}

static int hnsw_create(embr_index *ix, index_spec *spec) {
  hnsw *h = embr_calloc(1, sizeof *h);
  if (!h) return embr_error(EMBR_ENOMEM, "out of memory");
  ix->impl = h;
  pthread_mutex_init(&h->entry_lock, NULL);
  pthread_mutex_init(&h->pool_lock, NULL);
  h->entry = -1;
  int64_t M, efc, ef, seed;
  int rc;
  if ((rc = embr__spec_int(spec, "m", 16, 2, 512, &M)) || (rc = embr__spec_int(spec, "efc", 200, 1, 100000, &efc)) ||
      (rc = embr__spec_int(spec, "ef", 64, 1, 100000, &ef)) || (rc = embr__spec_int(spec, "seed", 100, 0, INT64_MAX, &seed)))
    return rc;
  h->M = (int)M;
  h->M0 = 2 * (int)M;
  h->efc = (int)efc;
  h->ef = (int)ef;
  h->seed = (uint64_t)seed;
  set_geometry(ix, h, 2);
  setup_metric(ix, h);
  h->ident = 1;
  return 0;
}

static void hnsw_destroy(embr_index *ix) {
  hnsw *h = ix->impl;
  if (!h->mapped) {
    embr_free(h->level0);
    embr_free(h->level);
    embr_free(h->label);
  }
  if (h->upper) {
    if (!h->mapped)
      for (int64_t i = 0; i < h->n; i++) embr_free(h->upper[i]);
    embr_free(h->upper);
  }
  embr_free(h->deleted);
  embr_free(h->indeg);
  embr_free(h->locks);
  embr_free(h->free_slots);
  embr__idmap_free(&h->map);
  pool_clear(h);
  pthread_mutex_destroy(&h->entry_lock);
  pthread_mutex_destroy(&h->pool_lock);
  embr_free(h);
  ix->impl = NULL;
}

static int hnsw_is_trained(const embr_index *ix) { (void)ix; return 1; }
static int64_t hnsw_size(const embr_index *ix) { return ((const hnsw *)ix->impl)->live; }
/* ---- id -> slot --------------------------------------------------------------------------------
 * While every live slot holds the id equal to its number (ids left to the index: 0, 1, 2, ...)
 * the slot is the id and no map is kept (the map costs 32-64 bytes per item); the first other id
 * builds it. */
static int64_t slot_of(const hnsw *h, int64_t id) {
  if (h->ident) return id >= 0 && id < h->n && !h->deleted[id] ? id : -1;
  return embr__idmap_get(&h->map, id);
}

static int map_put(hnsw *h, int64_t id, int64_t s) {
  if (h->ident && id == s) return 0;
  if (h->ident) {
    int rc = embr__idmap_init(&h->map, h->live + 64);
    for (int64_t t = 0; t < h->n && !rc; t++)
      if (!h->deleted[t]) rc = embr__idmap_put(&h->map, h->label[t], t);
    if (rc) {
      embr__idmap_free(&h->map);
      return rc;
    }
    h->ident = 0;
  }
  return embr__idmap_put(&h->map, id, s);
}

static int hnsw_contains(const embr_index *ix, int64_t id) { return slot_of(ix->impl, id) >= 0; }

static int64_t hnsw_memory(const embr_index *ix) {
  const hnsw *h = ix->impl;
  int64_t up = 0;
  for (int64_t i = 0; i < h->n; i++) up += h->level[i] * (int64_t)(h->M + 1) * 4;
  /* record, label, level, deleted flag, upper-list pointer, in-degree, lock */
  return h->cap * (int64_t)(h->rec + 8 + 1 + 1 + sizeof(void *) + 4 + sizeof(atomic_flag)) + up + h->map.cap * 16;
}

/* ---- reachability ------------------------------------------------------------------------------
 * Pruning keeps a node's last in-link, but nodes inserted side by side on two threads can still
 * end up linking only each other: a small island no search enters. And reachable from the entry
 * is not enough: a query's descent of the upper levels can start level 0 anywhere, and a walk
 * from there must reach everything too. So after an add that is large next to the index, level 0
 * is made strongly connected through the entry: every node the entry cannot reach is linked from
 * its nearest reachable node, and every node that cannot reach the entry gets a link to its
 * nearest node that can. A forced link can displace another, so this repeats until a round
 * changes nothing. Each round reads every list a few times, so it runs only when the add is at
 * least 1/128 of the index. */

/* Marks everything reachable from `from` at level 0; `queue` holds h->n slots. */
static void mark_reachable(const hnsw *h, int32_t from, uint8_t *seen, int32_t *queue) {
  int64_t head = 0, tail = 0;
  if (seen[from]) return;
  seen[from] = 1;
  queue[tail++] = from;
  while (head < tail) {
    const int32_t *l = links0(h, queue[head++]);
    for (int i = 1; i <= l[0]; i++)
      if (!seen[l[i]]) seen[queue[tail++] = l[i]] = 1;
  }
}

/* Level 0's links reversed (compressed rows): in[off[t] .. off[t+1]) are the nodes linking to t. */
typedef struct rgraph {
  int64_t *off;
  int32_t *in;
} rgraph;

static int rgraph_build(const hnsw *h, rgraph *g) {
  g->off = embr_calloc((size_t)h->n + 1, sizeof(int64_t));
  g->in = NULL;
  if (!g->off) return embr_error(EMBR_ENOMEM, "HNSW: out of memory");
  for (int64_t s = 0; s < h->n; s++) {
    const int32_t *l = links0(h, s);
    for (int i = 1; i <= l[0]; i++) g->off[l[i] + 1]++;
  }
  for (int64_t s = 0; s < h->n; s++) g->off[s + 1] += g->off[s];
  g->in = embr_alloc(sizeof(int32_t) * (size_t)(g->off[h->n] ? g->off[h->n] : 1));
  int64_t *fill = embr_alloc(sizeof(int64_t) * (size_t)(h->n ? h->n : 1));
  if (!g->in || !fill) {
    embr_free(fill);
    return embr_error(EMBR_ENOMEM, "HNSW: out of memory");
  }
  memcpy(fill, g->off, sizeof(int64_t) * (size_t)h->n);
  for (int64_t s = 0; s < h->n; s++) {
    const int32_t *l = links0(h, s);
    for (int i = 1; i <= l[0]; i++) g->in[fill[l[i]]++] = (int32_t)s;
  }
  embr_free(fill);
  return 0;
}

static void rgraph_free(rgraph *g) {
  embr_free(g->off);
  embr_free(g->in);
}

/* Marks everything that reaches `to` at level 0 (a walk of the reversed links). */
static void mark_reaching(const rgraph *g, int32_t to, uint8_t *seen, int32_t *queue) {
  int64_t head = 0, tail = 0;
  if (seen[to]) return;
  seen[to] = 1;
  queue[tail++] = to;
  while (head < tail) {
    int32_t t = queue[head++];
    for (int64_t i = g->off[t]; i < g->off[t + 1]; i++)
      if (!seen[g->in[i]]) seen[queue[tail++] = g->in[i]] = 1;
  }
}

/* The nodes nearest u that a search from the entry finds, nearest first, in w->sorted. */
static int near_from_entry(hnsw *h, walk *w, int64_t dim, int32_t u) {
  const float *q = vec(h, u);
  int32_t ep = h->entry;
  float d = dist_to(h, q, ep, dim);
  for (int l = h->maxlevel; l > 0; l--) ep = greedy(h, w, q, dim, ep, &d, l, 0);
  if (search_level(h, w, q, dim, ep, h->efc, 0, 0, NULL)) return embr_error(EMBR_ENOMEM, "HNSW: out of memory");
  return drain_sorted(w);
}

/* Links the unreachable node u from its nearest reachable node (`seen`). Returns 1 if linked. */
static int attach_from(hnsw *h, walk *w, int64_t dim, int32_t u, const uint8_t *seen, pbuf *b) {
  int n = near_from_entry(h, w, dim, u);
  for (int i = 0; i < n; i++)
    if (w->sorted[i].s != u && seen[w->sorted[i].s] && link_back(h, dim, w->sorted[i].s, u, 0, b, 1)) return 1;
  return n < 0 ? n : 0; /* every candidate's list is full of last in-links: leave it (never seen) */
}

/* Links u to its nearest node that reaches the entry (`reaching`). Returns 1 if linked. */
static int attach_to(hnsw *h, walk *w, int64_t dim, int32_t u, const uint8_t *reaching, pbuf *b) {
  int n = near_from_entry(h, w, dim, u);
  for (int i = 0; i < n; i++)
    if (w->sorted[i].s != u && reaching[w->sorted[i].s] && link_back(h, dim, u, w->sorted[i].s, 0, b, 1)) return 1;
  if (n >= 0 && reaching[h->entry] && h->entry != u && link_back(h, dim, u, h->entry, 0, b, 1)) return 1;
  return n < 0 ? n : 0;
}

/* One round: returns the number of links added (< 0: error). */
static int64_t connect_round(hnsw *h, walk *w, int64_t dim, uint8_t *seen, int32_t *queue, pbuf *b) {
  int64_t added = 0;
  memset(seen, 0, (size_t)h->n);
  mark_reachable(h, h->entry, seen, queue);
  for (int64_t s = 0; s < h->n; s++) {
    if (seen[s] || h->deleted[s]) continue;
    int r = attach_from(h, w, dim, (int32_t)s, seen, b);
    if (r < 0) return r;
    added += r;
    mark_reachable(h, (int32_t)s, seen, queue); /* its island is reachable now */
  }
  rgraph g;
  int rc = rgraph_build(h, &g);
  if (!rc) {
    memset(seen, 0, (size_t)h->n);
    mark_reaching(&g, h->entry, seen, queue);
    for (int64_t s = 0; s < h->n && !rc; s++) {
      if (seen[s] || h->deleted[s]) continue;
      int r = attach_to(h, w, dim, (int32_t)s, seen, b);
      if (r < 0) rc = r;
      added += r > 0;
      mark_reaching(&g, (int32_t)s, seen, queue); /* what reaches s reaches the entry now */
    }
  }
  rgraph_free(&g);
  return rc ? rc : added;
}

static int ensure_reachable(hnsw *h, int64_t dim) {
  if (h->entry < 0) return 0;
  uint8_t *seen = embr_alloc((size_t)h->n);
  int32_t *queue = embr_alloc(sizeof(int32_t) * (size_t)h->n);
  walk w;
  pbuf b;
  int rc = walk_init(&w, h->cap, h->efc, h->M0), rb = pbuf_init(&b, (size_t)h->M0 + 2);
  if (!rc) rc = rb;
  if (!rc && (!seen || !queue)) rc = embr_error(EMBR_ENOMEM, "HNSW: out of memory");
  for (int round = 0; round < 8 && !rc; round++) {
    int64_t added = connect_round(h, &w, dim, seen, queue, &b);
    if (added < 0) rc = (int)added;
    if (added <= 0) break;
  }
  embr_free(seen);
  embr_free(queue);
  walk_free(&w);
  pbuf_free(&b);
  return rc;
}

/* Gives slot s a level and its (empty) link lists. A reused slot keeps its level: links from other
 * nodes may point at it on every level it had. */
static int prepare_slot(hnsw *h, int64_t s, int reused) {
  if (!reused) {
    h->level[s] = (uint8_t)draw_level(h);
    h->upper[s] = NULL;
    if (h->level[s] > 0) {
      /* zeroed: unused link slots are saved too, and identical builds must give identical files */
      h->upper[s] = embr_calloc((size_t)h->level[s] * (size_t)(h->M + 1), sizeof(int32_t));
      if (!h->upper[s]) return embr_error(EMBR_ENOMEM, "HNSW: out of memory");
    }
  }
  if (!reused) { /* a reused slot keeps its links until insert() redoes them */
    links0(h, s)[0] = 0;
    for (int l = 1; l <= h->level[s]; l++) links_at(h, s, l)[0] = 0;
  }
  h->deleted[s] = 0;
  return 0;
}

static int hnsw_add(embr_index *ix, const float *x, int64_t n, int64_t ld, const int64_t *ids, const embr_progress *pr) {
  hnsw *h = ix->impl;
  int64_t fresh = n > h->nfree - 1 ? n - (h->nfree > 0 ? h->nfree - 1 : 0) : 0;
  int rc = reserve(ix, h, h->n + fresh);
  if (rc) return rc;
  int32_t *slots = embr_alloc(sizeof(int32_t) * (size_t)n);
  uint8_t *reused = embr_alloc((size_t)(n ? n : 1));
  if (!slots || !reused) rc = embr_error(EMBR_ENOMEM, "out of memory");
  for (int64_t i = 0; i < n && !rc; i++) {
    /* The entry point is never reused: a node cannot be inserted by a search that starts at
     * itself. It stays deleted (still routing) until another node takes the top level. */
    reused[i] = h->nfree > 0 && !(h->nfree == 1 && h->free_slots[0] == h->entry);
    if (reused[i] && h->free_slots[h->nfree - 1] == h->entry) { /* move it out of the way */
      int32_t t = h->free_slots[0];
      h->free_slots[0] = h->entry;
      h->free_slots[h->nfree - 1] = t;
    }
    int64_t s = reused[i] ? h->free_slots[--h->nfree] : h->n++;
    slots[i] = (int32_t)s;
    if ((rc = prepare_slot(h, s, reused[i]))) break;
    memcpy((float *)vec(h, s), x + i * ld, sizeof(float) * (size_t)ix->dim);
    h->label[s] = ids[i];
    rc = map_put(h, ids[i], s);
  }
  if (rc) goto out;
  int64_t start = 0;
  if (h->entry < 0 && n > 0) start = 1; /* the first node alone: it becomes the entry point */
  if (start) {
    walk w;
    if ((rc = walk_init(&w, h->cap, h->efc, h->M0))) goto out;
    rc = insert(h, &w, ix->dim, slots[0], reused[0], NULL);
    walk_free(&w);
  }
  embr_progress_state ps;
  embr_progress_begin(&ps, pr, (uint64_t)n);
  _Atomic int failed = rc;
  _Atomic int64_t done = start;
#pragma omp parallel num_threads(embr_threads_resolve(ix->n_threads))
  {
    walk w;
    pbuf buf;
    int mine = walk_init(&w, h->cap, h->efc, h->M0), nobuf = pbuf_init(&buf, 2 * (size_t)h->M0 + 2);
    if (mine || nobuf) atomic_store(&failed, mine ? mine : nobuf);
#pragma omp for schedule(dynamic, 64)
    for (int64_t i = start; i < n; i++) {
      if (atomic_load(&failed)) continue;
      int r = insert(h, &w, ix->dim, slots[i], reused[i], &buf);
      if (r) atomic_store(&failed, r);
      int64_t d = atomic_fetch_add(&done, 1) + 1;
      if (omp_get_thread_num() == 0 && embr_progress_update(&ps, (uint64_t)d, NULL, 0)) atomic_store(&failed, EMBR_ECANCELED);
    }
    if (!mine) walk_free(&w);
    pbuf_free(&buf);
  }
  rc = atomic_load(&failed);
  if (rc == EMBR_ECANCELED) rc = embr_error(EMBR_ECANCELED, "HNSW build canceled (the index holds a partial graph)");
  h->live += n;
  if (!rc && n * 128 >= h->live) rc = ensure_reachable(h, ix->dim);
  if (!rc) embr_progress_update(&ps, (uint64_t)n, NULL, 1);
out:
  embr_free(slots);
  embr_free(reused);
  return rc;
}

static int hnsw_remove(embr_index *ix, const int64_t *ids, int64_t n, int64_t *removed) {
  hnsw *h = ix->impl;
  for (int64_t i = 0; i < n; i++) {
    int64_t s = slot_of(h, ids[i]);
    if (s < 0) continue;
    if (h->nfree == h->capfree) {
      int64_t nc = h->capfree ? h->capfree * 2 : 64;
      int32_t *f = embr_realloc(h->free_slots, sizeof(int32_t) * (size_t)h->capfree, sizeof(int32_t) * (size_t)nc);
      if (!f) return embr_error(EMBR_ENOMEM, "out of memory");
      h->free_slots = f;
      h->capfree = nc;
    }
    if (!h->ident) embr__idmap_del(&h->map, ids[i]);
    h->deleted[s] = 1;
    h->free_slots[h->nfree++] = (int32_t)s;
    h->live--;
    (*removed)++;
  }
  return 0;
}

/* ---- search ------------------------------------------------------------------------------------ */

/* Share of live items a filter admits: exact for a bitset-only filter (counting over slots is
 * cheap next to a search batch), sampled for a callback. */
static double admitted_share(const hnsw *h, const embr_search_params *p) {
  if (h->live == 0) return 0;
  int64_t step = h->n > 4096 ? h->n / 4096 : 1, seen = 0, ok = 0;
  for (int64_t s = 0; s < h->n; s += step) {
    if (h->deleted[s]) continue;
    seen++;
    ok += embr__admit(p, h->label[s]);
  }
  return seen ? (double)ok / (double)seen : 0;
}

static void write_results(const embr_index *ix, const hnsw *h, const dn *r, int cnt, int k, float *dist, int64_t *ids) {
  float worst = embr_metric_worst(ix->metric);
  for (int i = 0; i < k; i++) {
    if (i < cnt) {
      dist[i] = h->ip ? -r[i].d : r[i].d;
      ids[i] = h->label[r[i].s];
    } else {
      dist[i] = worst;
      ids[i] = -1;
    }
  }
}

/* Exact scan of the admitted live items (few of them). */
static void scan_admitted(const embr_index *ix, const hnsw *h, const float *q, int k, const embr_search_params *p,
                          embr_topk *t, float *dist, int64_t *ids) {
  embr_topk_reset(t);
  for (int64_t s = 0; s < h->n; s++) {
    if (h->deleted[s] || !embr__admit(p, h->label[s])) continue;
    embr_topk_push(t, dist_to(h, q, s, ix->dim), s);
  }
  int64_t *slot = ids;
  embr_topk_result(t, dist, slot, INFINITY);
  for (int i = 0; i < k; i++) {
    if (slot[i] >= 0) {
      int64_t s = slot[i];
      ids[i] = h->label[s];
      dist[i] = h->ip ? -dist[i] : dist[i];
    } else {
      dist[i] = embr_metric_worst(ix->metric);
    }
  }
}

/* Queries [from, to) on the calling thread, with a pooled search state. */
static int search_range(const embr_index *ix, hnsw *h, const float *q, int64_t from, int64_t to, int64_t ldq, int k,
                        float *dist, int64_t *ids, const embr_search_params *p, int ef, int scan) {
  walk *w = NULL;
  embr_topk t;
  if (scan ? embr_topk_init(&t, k) : !(w = pool_get(h, ef))) return EMBR_ENOMEM;
  int rc = 0, filtered = embr__has_filter(p);
  for (int64_t i = from; i < to && !rc; i++) {
    const float *qi = q + i * ldq;
    float *di = dist + i * k;
    int64_t *ii = ids + i * k;
    if (h->entry < 0 || h->live == 0) {
      write_results(ix, h, NULL, 0, k, di, ii);
    } else if (scan) {
      scan_admitted(ix, h, qi, k, p, &t, di, ii);
    } else {
      int32_t cur = h->entry;
      float d = dist_to(h, qi, cur, ix->dim);
      for (int l = h->maxlevel; l > 0; l--) cur = greedy(h, w, qi, ix->dim, cur, &d, l, 0);
      if (search_level0(h, w, qi, ix->dim, cur, ef, p, filtered)) {
        rc = EMBR_ENOMEM;
        break;
      }
      int cnt = drain_sorted(w);
      write_results(ix, h, w->sorted, cnt < k ? cnt : k, k, di, ii);
    }
  }
  if (scan) embr_topk_free(&t);
  else pool_put(h, w);
  return rc;
}

static int hnsw_search(const embr_index *ix, const float *q, int64_t nq, int64_t ldq, int k, float *dist, int64_t *ids,
                       const embr_search_params *p) {
  hnsw *h = ix->impl;
  int ef = p->ef > 0 ? p->ef : h->ef;
  if (ef < k) ef = k;
  int scan = 0;
  if (embr__has_filter(p)) {
    double share = admitted_share(h, p);
    scan = share < FILTER_SCAN_SHARE || share * (double)h->live < FILTER_SCAN_COUNT;
    /* Filtered-out nodes still route but fill no result slot: widen the walk accordingly. */
    if (!scan) ef = (int)fmin((double)ef / fmax(share, 0.05), (double)ef * 20);
  }
  int nt = embr_threads_resolve(p->n_threads);
  if (nt > nq) nt = (int)nq;
  _Atomic int failed = 0;
  if (nt <= 1) /* one query, or one thread: no parallel region (a one-query call stays cheap) */
    failed = search_range(ix, h, q, 0, nq, ldq, k, dist, ids, p, ef, scan);
  else
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int64_t b = 0; b < nq; b += 16) {
    if (atomic_load(&failed)) continue;
    int rc = search_range(ix, h, q, b, b + 16 < nq ? b + 16 : nq, ldq, k, dist, ids, p, ef, scan);
    if (rc) atomic_store(&failed, rc);
  }
  int rc = atomic_load(&failed);
  return rc ? embr_error(rc, "HNSW search: out of memory") : 0;
}

/* ---- save / load ----------------------------------------------------------------------------- */

/* layout: 0 in the first files (layout 1, padded records), 2 for compact records. */
typedef struct hnsw_header {
  int64_t M, efc, ef, n, live, maxlevel, entry, seed, draws, rec, vec_off, upper_ints;
  int64_t layout, pad[3];
} hnsw_header;

static int hnsw_save(const embr_index *ix, embr__wfile *w) {
  const hnsw *h = ix->impl;
  int64_t up = 0;
  for (int64_t i = 0; i < h->n; i++) up += h->level[i] * (int64_t)(h->M + 1);
  hnsw_header hd = {h->M, h->efc, h->ef, h->n, h->live, h->maxlevel, h->entry, (int64_t)h->seed,
                    (int64_t)h->draws, (int64_t)h->rec, (int64_t)h->vec_off, up, h->layout == 1 ? 0 : h->layout, {0, 0, 0}};
  int rc = embr__write_section(w, &hd, sizeof hd);
  if (!rc) rc = embr__write_section(w, h->level0, h->rec * (size_t)h->n);
  if (!rc) rc = embr__write_section(w, h->label, sizeof(int64_t) * (size_t)h->n);
  if (!rc) rc = embr__write_section(w, h->level, (size_t)h->n);
  if (!rc) rc = embr__write_section(w, h->deleted, (size_t)h->n);
  for (int64_t i = 0; i < h->n && !rc; i++)
    if (h->level[i]) rc = embr__wfile_write(w, h->upper[i], sizeof(int32_t) * (size_t)h->level[i] * (size_t)(h->M + 1));
  if (!rc && (up * 4) % 64) {
    static const unsigned char zeros[64] = {0};
    rc = embr__wfile_write(w, zeros, 64 - (size_t)(up * 4) % 64);
  }
  return rc;
}

/* Every link must name an existing slot and every count fit its list: a hostile file must not
 * send a search out of bounds. */
static int validate_links(const hnsw *h, const char *name) {
  for (int64_t s = 0; s < h->n; s++) {
    if (h->level[s] > h->maxlevel) return embr_error(EMBR_EFORMAT, "%s: slot %lld has level %d above the top %d", name, (long long)s, h->level[s], h->maxlevel);
    for (int l = 0; l <= h->level[s]; l++) {
      const int32_t *li = links_at(h, s, l);
      int max = l == 0 ? h->M0 : h->M;
      if (li[0] < 0 || li[0] > max) return embr_error(EMBR_EFORMAT, "%s: slot %lld has %d links at level %d (max %d)", name, (long long)s, li[0], l, max);
      for (int i = 1; i <= li[0]; i++)
        if (li[i] < 0 || li[i] >= h->n || h->level[li[i]] < l)
          return embr_error(EMBR_EFORMAT, "%s: slot %lld links to a missing node %d at level %d", name, (long long)s, li[i], l);
    }
  }
  return 0;
}

/* In-degrees are not stored: counted from the level-0 lists of a loaded (copied) index. */
static int count_indegrees(hnsw *h) {
  if (h->mapped) return 0;
  for (int64_t s = 0; s < h->n; s++) {
    const int32_t *l = links0(h, s);
    for (int i = 1; i <= l[0]; i++) h->indeg[l[i]]++;
  }
  return 0;
}

static int hnsw_load(embr_index *ix, const unsigned char *buf, size_t len, const char *name, int mapped) {
  hnsw *h = embr_calloc(1, sizeof *h);
  if (!h) return embr_error(EMBR_ENOMEM, "out of memory");
  ix->impl = h;
  pthread_mutex_init(&h->entry_lock, NULL);
  pthread_mutex_init(&h->pool_lock, NULL);
  size_t off = 0;
  const unsigned char *hp = embr__read_section(buf, len, &off, sizeof(hnsw_header), name, "HNSW header");
  if (!hp) return EMBR_EFORMAT;
  hnsw_header hd;
  memcpy(&hd, hp, sizeof hd);
  if (hd.M < 2 || hd.M > 512 || hd.efc < 1 || hd.efc > 100000 || hd.ef < 1 || hd.ef > 100000 || hd.n < 0 ||
      hd.n > INT32_MAX || hd.live < 0 || hd.live > hd.n || hd.maxlevel < 0 || hd.maxlevel > MAX_LEVEL ||
      hd.entry < -1 || hd.entry >= hd.n || (hd.n > 0) != (hd.entry >= 0) || hd.upper_ints < 0)
    return embr_error(EMBR_EFORMAT, "%s: HNSW header is inconsistent", name);
  h->M = (int)hd.M;
  h->M0 = 2 * h->M;
  h->efc = (int)hd.efc;
  h->ef = (int)hd.ef;
  h->seed = (uint64_t)hd.seed;
  h->draws = (uint64_t)hd.draws;
  if (hd.layout != 0 && hd.layout != 2)
    return embr_error(EMBR_EFORMAT, "%s: unknown HNSW record layout %lld (a newer embr wrote it?)", name, (long long)hd.layout);
  set_geometry(ix, h, hd.layout ? (int)hd.layout : 1);
  setup_metric(ix, h);
  if ((int64_t)h->rec != hd.rec || (int64_t)h->vec_off != hd.vec_off)
    return embr_error(EMBR_EFORMAT, "%s: HNSW record layout does not match the dimension", name);
  h->maxlevel = (int)hd.maxlevel;
  h->entry = (int32_t)hd.entry;
  size_t n = (size_t)hd.n;
  if (n > len / h->rec) return embr_error(EMBR_EFORMAT, "%s: truncated: %zu HNSW records do not fit", name, n);
  const unsigned char *l0 = embr__read_section(buf, len, &off, h->rec * n, name, "HNSW level 0");
  const unsigned char *lab = l0 ? embr__read_section(buf, len, &off, 8 * n, name, "labels") : NULL;
  const unsigned char *lev = lab ? embr__read_section(buf, len, &off, n, name, "levels") : NULL;
  const unsigned char *del = lev ? embr__read_section(buf, len, &off, n, name, "deleted flags") : NULL;
  if (!del) return EMBR_EFORMAT;
  if ((uint64_t)hd.upper_ints > (len - off) / 4) return embr_error(EMBR_EFORMAT, "%s: truncated upper levels", name);
  const unsigned char *upp = embr__read_section(buf, len, &off, 4 * (size_t)hd.upper_ints, name, "upper levels");
  if (!upp) return EMBR_EFORMAT;
  if (off != len) return embr_error(EMBR_EFORMAT, "%s: %zu unexpected bytes after the HNSW index", name, len - off);
  int rc = 0;
  if (mapped) {
    h->level0 = (unsigned char *)l0;
    h->label = (int64_t *)lab;
    h->level = (uint8_t *)lev;
    h->mapped = 1;
    h->n = h->cap = (int64_t)n;
    h->deleted = embr_alloc(n ? n : 1);
    h->upper = embr_calloc(n ? n : 1, sizeof(int32_t *));
    if (!h->deleted || !h->upper) return embr_error(EMBR_ENOMEM, "out of memory");
    memcpy(h->deleted, del, n);
  } else {
    if ((rc = reserve(ix, h, (int64_t)(n ? n : 1)))) return rc;
    memcpy(h->level0, l0, h->rec * n);
    memcpy(h->label, lab, 8 * n);
    memcpy(h->level, lev, n);
    memcpy(h->deleted, del, n);
    h->n = (int64_t)n;
  }
  /* Upper link lists: views into the file when mapped, copies otherwise. */
  int64_t used = 0;
  for (size_t s = 0; s < n && !rc; s++) {
    if (h->level[s] > MAX_LEVEL) return embr_error(EMBR_EFORMAT, "%s: slot %zu has level %d", name, s, h->level[s]);
    int64_t ints = h->level[s] * (int64_t)(h->M + 1);
    if (used + ints > hd.upper_ints) return embr_error(EMBR_EFORMAT, "%s: upper levels shorter than the levels say", name);
    if (ints) {
      if (mapped) {
        h->upper[s] = (int32_t *)(upp + 4 * used);
      } else {
        h->upper[s] = embr_alloc(sizeof(int32_t) * (size_t)ints);
        if (!h->upper[s]) return embr_error(EMBR_ENOMEM, "out of memory");
        memcpy(h->upper[s], upp + 4 * used, sizeof(int32_t) * (size_t)ints);
      }
    }
    used += ints;
  }
  if (used != hd.upper_ints) return embr_error(EMBR_EFORMAT, "%s: upper levels longer than the levels say", name);
  if (h->n > 0 && h->level[h->entry] != h->maxlevel) return embr_error(EMBR_EFORMAT, "%s: the entry point is not on the top level", name);
  if ((rc = validate_links(h, name)) || (rc = count_indegrees(h)) || (rc = embr__check_finite(vec(h, 0), h->n, (int64_t)(h->rec / 4), ix->dim, name, "vector")))
    return rc;
  h->ident = 1;
  for (int64_t s = 0; s < h->n && h->ident; s++) h->ident = h->deleted[s] || h->label[s] == s;
  if (!h->ident && (rc = embr__idmap_init(&h->map, h->n))) return rc;
  int64_t live = 0;
  for (int64_t s = 0; s < h->n && !rc; s++) {
    if (h->deleted[s]) {
      if (h->nfree == h->capfree) {
        int64_t nc = h->capfree ? h->capfree * 2 : 64;
        int32_t *f = embr_realloc(h->free_slots, sizeof(int32_t) * (size_t)h->capfree, sizeof(int32_t) * (size_t)nc);
        if (!f) return embr_error(EMBR_ENOMEM, "out of memory");
        h->free_slots = f;
        h->capfree = nc;
      }
      h->free_slots[h->nfree++] = (int32_t)s;
      continue;
    }
    live++;
    if (h->ident) continue; /* ids 0..n-1 in their own slots: none negative, none repeated */
    if (h->label[s] < 0 || embr__idmap_get(&h->map, h->label[s]) >= 0)
      return embr_error(EMBR_EFORMAT, "%s: id %lld is negative or repeated", name, (long long)h->label[s]);
    rc = embr__idmap_put(&h->map, h->label[s], s);
  }
  if (!rc && live != hd.live) return embr_error(EMBR_EFORMAT, "%s: %lld live items, header says %lld", name, (long long)live, (long long)hd.live);
  h->live = live;
  return rc;
}

const embr_index_ops embr__hnsw_ops = {
    "hnsw",      hnsw_create, hnsw_is_trained, NULL,         hnsw_add,  hnsw_remove, hnsw_contains,
    hnsw_search, hnsw_save,   hnsw_load,       hnsw_destroy, hnsw_size, hnsw_memory,
};

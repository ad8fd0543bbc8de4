/* Barnes-Hut repulsion (van der Maaten 2014) in 2-D or 3-D: a 2^d-ary space-partitioning tree
 * holding each cell's point count and centre of mass; a cell whose width / distance is below
 * theta acts as one point of that mass. Built afresh every iteration (O(N log N)). */
#include "viz/tsne_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_DEPTH = 48, LEAF_MAX = 1 };

typedef struct cell {
  double com[3];   /* centre of mass (a running sum until finalised) */
  double center[3];
  double half;     /* half the side */
  int64_t count;
  int32_t child;   /* index of the first of 2^d children, -1 for a leaf */
  int32_t point;   /* a leaf's point (the first one when identical points are stacked), or -1 */
  double first[3]; /* that point's position: stacked points are those exactly equal to it */
} cell;

typedef struct bh_tree {
  cell *cells;
  int32_t n, cap;
  int d;
} bh_tree;

static int32_t new_cells(bh_tree *t, int count) {
  if (t->n + count > t->cap) {
    int32_t nc = t->cap ? t->cap * 2 : 1024;
    while (nc < t->n + count) nc *= 2;
    cell *c = realloc(t->cells, sizeof(cell) * (size_t)nc);
    if (!c) return -1;
    t->cells = c;
    t->cap = nc;
  }
  int32_t first = t->n;
  t->n += count;
  return first;
}

static int child_index(const cell *c, const double *p, int d) {
  int idx = 0;
  for (int k = 0; k < d; k++)
    if (p[k] > c->center[k]) idx |= 1 << k;
  return idx;
}

static int split(bh_tree *t, int32_t ci) {
  int nch = 1 << t->d;
  int32_t first = new_cells(t, nch);
  if (first < 0) return -1;
  cell *c = &t->cells[ci];
  c->child = first;
  for (int q = 0; q < nch; q++) {
    cell *ch = &t->cells[first + q];
    memset(ch, 0, sizeof *ch);
    ch->half = c->half * 0.5;
    for (int k = 0; k < t->d; k++) ch->center[k] = c->center[k] + ((q >> k) & 1 ? ch->half : -ch->half);
    ch->child = -1;
    ch->point = -1;
  }
  return 0;
}

/* Inserts point i; identical points stop splitting at MAX_DEPTH and share a leaf. */
static int insert(bh_tree *t, const double *y, int32_t i) {
  const double *p = y + (int64_t)i * t->d;
  int32_t ci = 0;
  for (int depth = 0;; depth++) {
    cell *c = &t->cells[ci];
    for (int k = 0; k < t->d; k++) c->com[k] += p[k];
    c->count++;
    if (c->child < 0) {
      if (c->count == 1) {
        c->point = i;
        for (int k = 0; k < t->d; k++) c->first[k] = p[k];
        return 0;
      }
      if (depth >= MAX_DEPTH) return 0; /* identical points stack here, under the first */
      /* Push the resident point down, then continue with the new one. */
      int32_t old = c->point;
      c->point = -1;
      if (split(t, ci) < 0) return -1;
      c = &t->cells[ci];
      if (old >= 0) {
        const double *po = y + (int64_t)old * t->d;
        cell *ch = &t->cells[c->child + child_index(c, po, t->d)];
        for (int k = 0; k < t->d; k++) {
          ch->com[k] += po[k];
          ch->first[k] = po[k];
        }
        ch->count = 1;
        ch->point = old;
      }
    }
    ci = c->child + child_index(c, p, t->d);
  }
}

static int build(bh_tree *t, const double *y, int64_t n, int d) {
  t->d = d;
  t->n = 0;
  double lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
  for (int64_t i = 0; i < n; i++)
    for (int k = 0; k < d; k++) {
      lo[k] = fmin(lo[k], y[i * d + k]);
      hi[k] = fmax(hi[k], y[i * d + k]);
    }
  int32_t root = new_cells(t, 1);
  if (root < 0) return -1;
  cell *r = &t->cells[root];
  memset(r, 0, sizeof *r);
  r->child = -1;
  r->point = -1;
  double half = 0;
  for (int k = 0; k < d; k++) {
    r->center[k] = 0.5 * (lo[k] + hi[k]);
    half = fmax(half, 0.5 * (hi[k] - lo[k]));
  }
  r->half = half * (1 + 1e-9) + 1e-12;
  for (int64_t i = 0; i < n; i++)
    if (insert(t, y, (int32_t)i) < 0) return -1;
  for (int32_t c = 0; c < t->n; c++)
    if (t->cells[c].count)
      for (int k = 0; k < d; k++) t->cells[c].com[k] /= (double)t->cells[c].count;
  return 0;
}

/* Accumulates the repulsion on position p and its share of Z with an explicit stack. `self` is
 * p's index when p is one of the tree's points (it then does not repel itself), else -1. */
static double traverse(const bh_tree *t, const double *p, int64_t self, double theta2, double *f) {
  int d = t->d;
  const int64_t i = self;
  int32_t stack[MAX_DEPTH * 8 + 16];
  int sp = 0;
  double z = 0;
  stack[sp++] = 0;
  while (sp > 0) {
    const cell *c = &t->cells[stack[--sp]];
    if (c->count == 0) continue;
    double diff[3], d2 = 0;
    for (int k = 0; k < d; k++) {
      diff[k] = p[k] - c->com[k];
      d2 += diff[k] * diff[k];
    }
    int leaf = c->child < 0;
    double width = 2 * c->half;
    if (leaf || width * width < theta2 * d2) {
      /* A leaf holding i itself contributes its other (stacked, identical) points only:
       * they sit at distance 0 and exert no force, but count in Z. Membership is tested against
       * the leaf's first point exactly (the centre of mass of equal points may differ in the
       * last bit). */
      double cnt = (double)c->count;
      int same = leaf && i >= 0 && c->point >= 0;
      for (int k = 0; same && k < d; k++) same = c->first[k] == p[k];
      if (same) cnt -= 1;
      if (cnt <= 0) continue;
      double w = 1.0 / (1.0 + d2);
      z += cnt * w;
      double m = cnt * w * w;
      for (int k = 0; k < d; k++) f[k] += m * diff[k];
      continue;
    }
    for (int q = 0; q < (1 << d); q++) stack[sp++] = c->child + q;
  }
  return z;
}

int embr__tsne_bh_build(tsne_bh **out, const double *y, int64_t n, int d) {
  bh_tree *t = calloc(1, sizeof *t);
  if (!t || build(t, y, n, d) < 0) {
    if (t) free(t->cells);
    free(t);
    *out = NULL;
    return embr_error(EMBR_ENOMEM, "t-SNE Barnes-Hut: out of memory");
  }
  *out = (tsne_bh *)t;
  return 0;
}

void embr__tsne_bh_free(tsne_bh *t) {
  if (!t) return;
  free(((bh_tree *)t)->cells);
  free(t);
}

double embr__tsne_bh_point(const tsne_bh *t, const double *pos, int64_t self, double theta,
                           double *f) {
  return traverse((const bh_tree *)t, pos, self, theta * theta, f);
}

double embr__tsne_rep_bh(const double *y, int64_t n, int d, double theta, double *rep,
                         int n_threads) {
  tsne_bh *t;
  if (embr__tsne_bh_build(&t, y, n, d)) return NAN;
  double z = 0;
#pragma omp parallel for num_threads(embr_threads_resolve(n_threads)) schedule(dynamic, 256) reduction(+ : z)
  for (int64_t i = 0; i < n; i++) {
    double f[3] = {0, 0, 0};
    z += embr__tsne_bh_point(t, y + i * d, i, theta, f);
    for (int k = 0; k < d; k++) rep[i * d + k] = f[k];
  }
  embr__tsne_bh_free(t);
  return z;
}

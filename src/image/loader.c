/* Batch loader: one background thread decodes, converts and augments the next batch while the
 * caller uses the current one.
 *
 * The work is a stream of units: for each epoch its batches, then one end-of-epoch unit. The
 * worker fills unit k into slot k % 2; the caller takes units in the same order, and a slot is
 * refilled only after the caller moved past it, so returned pointers stay valid until the next
 * call. Everything random depends only on (seed, epoch, item): the epoch's order from stream
 * 2*epoch of the seed, each item's augmentation from its own stream of a per-epoch seed, so the
 * batches do not depend on timing, on caching, or on where the consumer is. */
#include "image/image_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_LEN 512

typedef struct slot {
  int ready;       /* filled and not yet released by the consumer */
  int status;      /* error of this unit (0 ok) */
  int count;       /* items; 0 marks the end of an epoch */
  float *x;          /* ordinary batches; NULL with multicrop */
  float *g, *l;      /* multicrop: global and local views, view-major */
  int32_t *labels;
  int64_t *items;
  char msg[MSG_LEN];
} slot;

struct embr_loader {
  const embr_dataset *ds;
  embr_loader_params p;
  int64_t n;          /* items per epoch (before drop_last) */
  int64_t *base;      /* the item indices in their given order */
  int64_t *order;     /* worker: positions into base for the current epoch */
  int64_t nb;         /* batches per epoch */
  size_t chw;         /* floats per item (ordinary batches) */
  embr_multicrop_params mc; /* a copy of *p.multicrop when set */
  int multicrop;
  size_t gsz, lsz;    /* multicrop: floats per global / local view */
  float *item_g, *item_l; /* worker: one item's views, crop after crop */
  float **cache;      /* per position in base, when p.cache */
  /* Worker's place in the stream. */
  uint64_t w_epoch;
  int64_t w_batch;
  uint64_t aug_seed;
  /* Shared state, under mu. */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  slot slots[2];
  uint64_t produced, consumed;
  int held;           /* slot the consumer holds, -1 none */
  int stop;
  pthread_t thread;
  int started;
};

embr_loader_params embr_loader_params_default(void) {
  embr_loader_params p;
  memset(&p, 0, sizeof p);
  p.spec = embr_image_spec_default();
  p.batch = 64;
  p.shuffle = 1;
  return p;
}

int64_t embr_loader_batches_per_epoch(const embr_loader *ld) { return ld ? ld->nb : 0; }

/* ---- the worker's side ------------------------------------------------------------------------- */

static void start_epoch(embr_loader *ld) {
  for (int64_t i = 0; i < ld->n; i++) ld->order[i] = i;
  embr_rng r;
  if (ld->p.shuffle) {
    embr_rng_split(&r, ld->p.seed, 2 * ld->w_epoch);
    for (int64_t i = ld->n - 1; i > 0; i--) {
      int64_t j = (int64_t)embr_rng_below(&r, (uint64_t)i + 1), t = ld->order[i];
      ld->order[i] = ld->order[j];
      ld->order[j] = t;
    }
  }
  embr_rng_split(&r, ld->p.seed, 2 * ld->w_epoch + 1);
  ld->aug_seed = embr_rng_next(&r);
}

/* The item's tensor before augmentation into dst, from the cache when it is there. */
static int load_item(embr_loader *ld, int64_t pos, float *dst, slot *s) {
  if (ld->cache && ld->cache[pos]) {
    memcpy(dst, ld->cache[pos], ld->chw * sizeof *dst);
    return 0;
  }
  embr_image im;
  int rc = embr_dataset_image(ld->ds, ld->base[pos], &im);
  if (!rc) rc = embr_image_to_tensor(&im, &ld->p.spec, dst);
  embr_image_free(&im);
  if (rc) {
    snprintf(s->msg, sizeof s->msg, "%s", embr_last_error());
    return rc;
  }
  if (ld->cache) {
    /* A failed cache allocation only costs a reload next epoch. */
    ld->cache[pos] = embr_alloc(ld->chw * sizeof *dst);
    if (ld->cache[pos]) memcpy(ld->cache[pos], dst, ld->chw * sizeof *dst);
  }
  return 0;
}

/* One item's crops, scattered into the batch's view-major buffers at position j of count. */
static int load_multicrop(embr_loader *ld, int64_t item, int j, int count, slot *s) {
  embr_image im;
  int rc = embr_dataset_image(ld->ds, item, &im);
  if (!rc) {
    embr_rng r;
    embr_rng_split(&r, ld->aug_seed, (uint64_t)item);
    rc = embr_multicrop(&im, &ld->mc, &r, ld->item_g, ld->item_l);
  }
  embr_image_free(&im);
  if (rc) {
    snprintf(s->msg, sizeof s->msg, "%s", embr_last_error());
    return rc;
  }
  for (int v = 0; v < ld->mc.n_global; v++)
    memcpy(s->g + ((size_t)v * count + j) * ld->gsz, ld->item_g + (size_t)v * ld->gsz, ld->gsz * sizeof *s->g);
  for (int v = 0; v < ld->mc.n_local; v++)
    memcpy(s->l + ((size_t)v * count + j) * ld->lsz, ld->item_l + (size_t)v * ld->lsz, ld->lsz * sizeof *s->l);
  return 0;
}

static void fill_batch(embr_loader *ld, slot *s) {
  int64_t first = ld->w_batch * ld->p.batch, left = ld->n - first;
  int count = left < ld->p.batch ? (int)left : ld->p.batch;
  s->status = 0;
  s->count = count;
  s->msg[0] = '\0';
  for (int j = 0; j < count; j++) {
    int64_t pos = ld->order[first + j], item = ld->base[pos];
    float *dst = s->x ? s->x + (size_t)j * ld->chw : NULL;
    s->items[j] = item;
    s->labels[j] = embr_dataset_label(ld->ds, item);
    int rc = ld->multicrop ? load_multicrop(ld, item, j, count, s) : load_item(ld, pos, dst, s);
    if (rc) {
      s->status = rc;
      s->count = 0;
      return;
    }
    if (!ld->multicrop && (ld->p.pad > 0 || ld->p.flip)) {
      embr_rng r;
      embr_rng_split(&r, ld->aug_seed, (uint64_t)item);
      embr_image_augment(dst, ld->p.spec.channels, ld->p.spec.height, ld->p.spec.width, ld->p.pad, ld->p.flip, &r);
    }
  }
}

/* Fills the next unit of the stream and advances the worker's place. */
static void fill_unit(embr_loader *ld, slot *s) {
  if (ld->w_batch == 0) start_epoch(ld);
  if (ld->w_batch == ld->nb) { /* end-of-epoch unit */
    s->status = 0;
    s->count = 0;
    ld->w_batch = 0;
    ld->w_epoch++;
    return;
  }
  fill_batch(ld, s);
  ld->w_batch++;
}

static void *worker(void *arg) {
  embr_loader *ld = arg;
  pthread_mutex_lock(&ld->mu);
  for (;;) {
    slot *s = &ld->slots[ld->produced % 2];
    while (!ld->stop && s->ready) pthread_cond_wait(&ld->cv, &ld->mu);
    if (ld->stop) break;
    pthread_mutex_unlock(&ld->mu);
    fill_unit(ld, s);
    pthread_mutex_lock(&ld->mu);
    s->ready = 1;
    ld->produced++;
    pthread_cond_broadcast(&ld->cv);
  }
  pthread_mutex_unlock(&ld->mu);
  return NULL;
}

/* ---- the caller's side --------------------------------------------------------------------------- */

/* Releases the slot the caller held and waits for the next one. */
static slot *take_slot(embr_loader *ld) {
  pthread_mutex_lock(&ld->mu);
  if (ld->held >= 0) { /* the previous batch is no longer needed: let the worker refill it */
    ld->slots[ld->held].ready = 0;
    ld->held = -1;
    pthread_cond_broadcast(&ld->cv);
  }
  int k = (int)(ld->consumed % 2);
  while (!ld->slots[k].ready) pthread_cond_wait(&ld->cv, &ld->mu);
  ld->consumed++;
  ld->held = k;
  pthread_mutex_unlock(&ld->mu);
  return &ld->slots[k];
}

embr_status embr_loader_next(embr_loader *ld, const float **x, const int32_t **labels, const int64_t **items, int *count) {
  if (x) *x = NULL;
  if (labels) *labels = NULL;
  if (items) *items = NULL;
  if (count) *count = 0;
  if (!ld) return embr_error(EMBR_EINVAL, "loader: NULL");
  if (ld->multicrop) return embr_error(EMBR_EINVAL, "loader: made for multi-crop batches: use embr_loader_next_multicrop");
  slot *s = take_slot(ld);
  if (s->status) return embr_error(s->status, "%s", s->msg);
  if (x) *x = s->x;
  if (labels) *labels = s->labels;
  if (items) *items = s->items;
  if (count) *count = s->count;
  return 0;
}

embr_status embr_loader_next_multicrop(embr_loader *ld, const float **global, const float **local,
                                       const int32_t **labels, const int64_t **items, int *count) {
  if (global) *global = NULL;
  if (local) *local = NULL;
  if (labels) *labels = NULL;
  if (items) *items = NULL;
  if (count) *count = 0;
  if (!ld) return embr_error(EMBR_EINVAL, "loader: NULL");
  if (!ld->multicrop) return embr_error(EMBR_EINVAL, "loader: made without multicrop params: use embr_loader_next");
  slot *s = take_slot(ld);
  if (s->status) return embr_error(s->status, "%s", s->msg);
  if (global) *global = s->g;
  if (local) *local = s->l;
  if (labels) *labels = s->labels;
  if (items) *items = s->items;
  if (count) *count = s->count;
  return 0;
}

/* ---- creation ---------------------------------------------------------------------------------------- */

static int check_params(const embr_dataset *ds, const embr_loader_params *p) {
  if (!ds || !p) return embr_error(EMBR_EINVAL, "loader: NULL dataset or params");
  int rc = p->multicrop ? embr_multicrop_params_check(p->multicrop) : embr__image_spec_check(&p->spec);
  if (rc) return rc;
  if (p->batch < 1) return embr_error(EMBR_EINVAL, "loader: batch %d, expected >= 1", p->batch);
  if (p->pad < 0) return embr_error(EMBR_EINVAL, "loader: pad %d, expected >= 0", p->pad);
  int64_t size = embr_dataset_size(ds);
  if (p->subset && p->n_subset < 1) return embr_error(EMBR_EINVAL, "loader: empty subset");
  for (int64_t i = 0; p->subset && i < p->n_subset; i++)
    if (p->subset[i] < 0 || p->subset[i] >= size)
      return embr_error(EMBR_EINVAL, "loader: subset[%lld] = %lld out of range (dataset size %lld)", (long long)i,
                        (long long)p->subset[i], (long long)size);
  int64_t n = p->subset ? p->n_subset : size;
  if (n < 1) return embr_error(EMBR_EINVAL, "loader: the dataset is empty");
  if (p->drop_last && n < p->batch)
    return embr_error(EMBR_EINVAL, "loader: drop_last with %lld items and batch %d leaves no batch", (long long)n,
                      p->batch);
  return 0;
}

/* Per slot: batch * n_views * view floats for one kind of view (0 when n_views is 0). */
static int view_floats(const embr_loader *ld, int n_views, size_t per_view, size_t *out) {
  size_t t;
  *out = 0;
  if (embr_size_mul((size_t)n_views, per_view, &t) || embr_size_mul(t, (size_t)ld->p.batch, out))
    return embr_error(EMBR_ENOMEM, "loader: batch too large");
  return 0;
}

static int alloc_multicrop(embr_loader *ld) {
  size_t ng, nl;
  if (view_floats(ld, ld->mc.n_global, ld->gsz, &ng) || view_floats(ld, ld->mc.n_local, ld->lsz, &nl))
    return EMBR_ENOMEM;
  ld->item_g = embr_alloc((size_t)ld->mc.n_global * ld->gsz * sizeof(float));
  ld->item_l = ld->mc.n_local ? embr_alloc((size_t)ld->mc.n_local * ld->lsz * sizeof(float)) : NULL;
  if (!ld->item_g || (ld->mc.n_local && !ld->item_l)) return embr_error(EMBR_ENOMEM, "loader: out of memory");
  for (int k = 0; k < 2; k++) {
    slot *s = &ld->slots[k];
    s->g = embr_calloc(ng, sizeof *s->g);
    s->l = nl ? embr_calloc(nl, sizeof *s->l) : NULL;
    s->labels = embr_alloc((size_t)ld->p.batch * sizeof *s->labels);
    s->items = embr_alloc((size_t)ld->p.batch * sizeof *s->items);
    if (!s->g || (nl && !s->l) || !s->labels || !s->items)
      return embr_error(EMBR_ENOMEM, "loader: out of memory for batches");
  }
  return 0;
}

static int alloc_slots(embr_loader *ld) {
  if (ld->multicrop) return alloc_multicrop(ld);
  size_t nx;
  if (embr_size_mul((size_t)ld->p.batch, ld->chw, &nx)) return EMBR_ENOMEM;
  for (int k = 0; k < 2; k++) {
    slot *s = &ld->slots[k];
    s->x = embr_calloc(nx, sizeof *s->x);
    s->labels = embr_alloc((size_t)ld->p.batch * sizeof *s->labels);
    s->items = embr_alloc((size_t)ld->p.batch * sizeof *s->items);
    if (!s->x || !s->labels || !s->items) return embr_error(EMBR_ENOMEM, "loader: out of memory for batches");
  }
  return 0;
}

static int setup(embr_loader *ld, const embr_dataset *ds, const embr_loader_params *p) {
  ld->ds = ds;
  ld->p = *p;
  ld->p.subset = NULL; /* the caller's array need not outlive create: we copy it into base */
  if (p->multicrop) {
    ld->mc = *p->multicrop; /* copied: the caller's params need not outlive create either */
    ld->multicrop = 1;
    ld->p.multicrop = NULL;
    ld->p.cache = 0; /* crops differ every epoch: nothing worth keeping after augmentation */
    ld->gsz = (size_t)ld->mc.channels * ld->mc.global_size * ld->mc.global_size;
    ld->lsz = ld->mc.n_local ? (size_t)ld->mc.channels * ld->mc.local_size * ld->mc.local_size : 0;
  }
  ld->n = p->subset ? p->n_subset : embr_dataset_size(ds);
  ld->nb = p->drop_last ? ld->n / p->batch : (ld->n + p->batch - 1) / p->batch;
  ld->chw = p->multicrop ? 0 : (size_t)p->spec.channels * (size_t)p->spec.height * (size_t)p->spec.width;
  ld->base = embr_alloc((size_t)ld->n * sizeof *ld->base);
  ld->order = embr_alloc((size_t)ld->n * sizeof *ld->order);
  ld->cache = ld->p.cache ? embr_calloc((size_t)ld->n, sizeof *ld->cache) : NULL;
  if (!ld->base || !ld->order || (ld->p.cache && !ld->cache)) return embr_error(EMBR_ENOMEM, "loader: out of memory");
  for (int64_t i = 0; i < ld->n; i++) ld->base[i] = p->subset ? p->subset[i] : i;
  return alloc_slots(ld);
}

embr_status embr_loader_create(const embr_dataset *ds, const embr_loader_params *p, embr_loader **out) {
  if (!out) return embr_error(EMBR_EINVAL, "loader: no output pointer");
  *out = NULL;
  int rc = check_params(ds, p);
  if (rc) return rc;
  embr_loader *ld = embr_calloc(1, sizeof *ld);
  if (!ld) return embr_error(EMBR_ENOMEM, "loader: out of memory");
  ld->held = -1;
  pthread_mutex_init(&ld->mu, NULL);
  pthread_cond_init(&ld->cv, NULL);
  rc = setup(ld, ds, p);
  if (!rc) {
    if (pthread_create(&ld->thread, NULL, worker, ld) != 0) rc = embr_error(EMBR_EIO, "loader: cannot start a thread");
    else ld->started = 1;
  }
  if (rc) {
    embr_loader_free(ld);
    return rc;
  }
  *out = ld;
  return 0;
}

void embr_loader_free(embr_loader *ld) {
  if (!ld) return;
  if (ld->started) {
    pthread_mutex_lock(&ld->mu);
    ld->stop = 1;
    pthread_cond_broadcast(&ld->cv);
    pthread_mutex_unlock(&ld->mu);
    pthread_join(ld->thread, NULL);
  }
  for (int k = 0; k < 2; k++) {
    embr_free(ld->slots[k].x);
    embr_free(ld->slots[k].g);
    embr_free(ld->slots[k].l);
    embr_free(ld->slots[k].labels);
    embr_free(ld->slots[k].items);
  }
  for (int64_t i = 0; ld->cache && i < ld->n; i++) embr_free(ld->cache[i]);
  embr_free(ld->cache);
  embr_free(ld->item_g);
  embr_free(ld->item_l);
  embr_free(ld->base);
  embr_free(ld->order);
  pthread_mutex_destroy(&ld->mu);
  pthread_cond_destroy(&ld->cv);
  embr_free(ld);
}

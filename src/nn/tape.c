/* The per-step arena (tensors and backward records: freed all at once by a reset) and the tape
 * of recorded ops that backward replays in reverse. */
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"

struct nn_block {
  nn_block *next;
  size_t cap, used;
  _Alignas(64) unsigned char data[];
};

void embr__nn_ctx_init(nn_ctx *ctx, nn_params *P, int training, int record, uint64_t seed) {
  memset(ctx, 0, sizeof(*ctx));
  ctx->P = P;
  ctx->training = training;
  ctx->record = record;
  ctx->block_size = (size_t)8 << 20; /* larger tensors get blocks of their own size */
  ctx->nt = embr_threads_resolve(0);
  embr_rng_seed(&ctx->rng, seed);
  if (record && P) ctx->rc = embr__nn_params_grad_alloc(P);
}

/* Keeps every block: a step allocates the same sizes in the same order as the last one, so it
 * walks the same blocks again and touches no fresh pages (fresh pages cost a fault and a clear
 * each, more than the step's arithmetic for large activations). */
void embr__nn_ctx_reset(nn_ctx *ctx) {
  for (nn_block *b = ctx->blocks; b; b = b->next) b->used = 0;
  ctx->cur = ctx->blocks;
  ctx->ntape = 0;
  /* Recording without a gradient buffer (its allocation failed) stays an error. */
  ctx->rc = ctx->record && ctx->P && !ctx->P->grad ? EMBR_ENOMEM : 0;
  for (int i = 0; i < ctx->npool; i++) ctx->pool[i].used = 0;
}

void embr__nn_ctx_free(nn_ctx *ctx) {
  for (nn_block *b = ctx->blocks, *nx; b; b = nx) {
    nx = b->next;
    free(b);
  }
  free(ctx->tape);
  for (int i = 0; i < ctx->npool; i++) free(ctx->pool[i].p);
  free(ctx->pool);
  memset(ctx, 0, sizeof(*ctx));
}

void *embr__nn_alloc(nn_ctx *ctx, size_t bytes) {
  if (ctx->rc) return NULL;
  bytes = (bytes + 63) & ~(size_t)63;
  nn_block *b = ctx->cur;
  while (b && b->cap - b->used < bytes) b = b->next; /* blocks passed over stay as they are */
  if (!b) {
    size_t cap = bytes > ctx->block_size ? bytes : ctx->block_size;
    b = aligned_alloc(64, (sizeof(nn_block) + cap + 63) & ~(size_t)63);
    if (!b) {
      ctx->rc = embr_error(EMBR_ENOMEM, "out of memory for activations (%zu bytes)", bytes);
      return NULL;
    }
    b->cap = cap, b->used = 0, b->next = NULL;
    if (ctx->last) ctx->last->next = b;
    else ctx->blocks = b;
    ctx->last = b;
  }
  ctx->cur = b;
  void *p = b->data + b->used;
  b->used += bytes;
  return p;
}

float *embr__nn_floats(nn_ctx *ctx, int64_t n, int zero) {
  float *p = embr__nn_alloc(ctx, sizeof(float) * (size_t)(n ? n : 1));
  if (p && zero) memset(p, 0, sizeof(float) * (size_t)n);
  return p;
}

/* Best fit among the free buffers, else a new one (kept for the next steps). */
static float *pool_get(nn_ctx *ctx, size_t n, int zero) {
  int best = -1;
  for (int i = 0; i < ctx->npool; i++)
    if (!ctx->pool[i].used && ctx->pool[i].cap >= n && (best < 0 || ctx->pool[i].cap < ctx->pool[best].cap)) best = i;
  if (best < 0) {
    if (ctx->npool == ctx->cappool) {
      int cap = ctx->cappool ? 2 * ctx->cappool : 64;
      void *p = realloc(ctx->pool, sizeof(*ctx->pool) * (size_t)cap);
      if (!p) return NULL;
      ctx->pool = p;
      ctx->cappool = cap;
    }
    float *p = aligned_alloc(64, (sizeof(float) * n + 63) & ~(size_t)63);
    if (!p) return NULL;
    best = ctx->npool++;
    ctx->pool[best].p = p;
    ctx->pool[best].cap = n;
  }
  ctx->pool[best].used = 1;
  if (zero) memset(ctx->pool[best].p, 0, sizeof(float) * n);
  return ctx->pool[best].p;
}

static void pool_put(nn_ctx *ctx, float *p) {
  for (int i = 0; i < ctx->npool; i++)
    if (ctx->pool[i].p == p) ctx->pool[i].used = 0;
}

nn_t *embr__nn_tensor(nn_ctx *ctx, int n, int c, int h, int w) {
  nn_t *t = embr__nn_alloc(ctx, sizeof(nn_t));
  if (!t) return NULL;
  *t = (nn_t){NULL, NULL, n, c, h, w, ctx->record, NULL, 0, 0};
  if (ctx->record) {
    t->d = embr__nn_floats(ctx, nn_numel(t), 0); /* kept for backward: the arena */
  } else if (!(t->d = t->own = pool_get(ctx, (size_t)nn_numel(t), 0))) {
    ctx->rc = embr_error(EMBR_ENOMEM, "out of memory for activations");
  }
  return ctx->rc ? NULL : t;
}

nn_t *embr__nn_wrap(nn_ctx *ctx, float *data, int n, int c, int h, int w) {
  nn_t *t = embr__nn_alloc(ctx, sizeof(nn_t));
  if (!t) return NULL;
  *t = (nn_t){data, NULL, n, c, h, w, 0, NULL, 0, 0}; /* an input: no gradient wanted, ops skip its dx */
  return t;
}

void embr__nn_record(nn_ctx *ctx, nn_backward_fn fn, void *node, nn_t *y, nn_t *in0, nn_t *in1) {
  if (!ctx->record || ctx->rc) return;
  if (ctx->ntape == ctx->captape) {
    int cap = ctx->captape ? 2 * ctx->captape : 256;
    void *t = realloc(ctx->tape, sizeof(*ctx->tape) * (size_t)cap);
    if (!t) {
      ctx->rc = embr_error(EMBR_ENOMEM, "out of memory");
      return;
    }
    ctx->tape = t;
    ctx->captape = cap;
  }
  ctx->tape[ctx->ntape].fn = fn;
  ctx->tape[ctx->ntape].node = node;
  ctx->tape[ctx->ntape].y = y;
  ctx->tape[ctx->ntape].in[0] = in0;
  ctx->tape[ctx->ntape++].in[1] = in1;
}

float *embr__nn_scratch(nn_ctx *ctx, int64_t n) {
  float *p = ctx->rc ? NULL : pool_get(ctx, (size_t)(n > 0 ? n : 1), 0);
  if (!p && !ctx->rc) ctx->rc = embr_error(EMBR_ENOMEM, "out of memory for scratch space");
  return p;
}

void embr__nn_scratch_put(nn_ctx *ctx, float *p) {
  if (p) pool_put(ctx, p);
}

float *embr__nn_grad(nn_ctx *ctx, nn_t *t) {
  if (!t || !t->need_g) return NULL;
  if (!t->g && !(t->g = pool_get(ctx, (size_t)nn_numel(t), 1)))
    ctx->rc = embr_error(EMBR_ENOMEM, "out of memory for gradients");
  return t->g;
}

nn_t *embr__nn_done(nn_ctx *ctx, nn_t *x, nn_t *y) {
  if (y && x && x != y && x->own && !x->pinned) {
    pool_put(ctx, x->own);
    x->own = NULL;
    x->d = NULL;
  }
  return y;
}

void embr__nn_pin(nn_t *t) {
  if (t) t->pinned++;
}

void embr__nn_unpin(nn_ctx *ctx, nn_t *t) {
  if (!t || t->pinned <= 0) return;
  if (--t->pinned == 0 && t->own) {
    pool_put(ctx, t->own);
    t->own = NULL;
    t->d = NULL;
  }
}

void embr__nn_unpin_keep(nn_t *t) {
  if (t && t->pinned > 0) t->pinned--;
}

void embr__nn_backward(nn_ctx *ctx) {
  for (int i = ctx->ntape - 1; i >= 0 && !ctx->rc; i--) {
    if (!ctx->tape[i].y->g) continue; /* nothing reached this op's output */
    for (int k = 0; k < 2; k++) embr__nn_grad(ctx, ctx->tape[i].in[k]);
    if (ctx->rc) break;
    ctx->tape[i].fn(ctx, ctx->tape[i].node);
    pool_put(ctx, ctx->tape[i].y->g);
    ctx->tape[i].y->g = NULL;
  }
}

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

void nn_ctx_init(nn_ctx *ctx, nn_params *P, int training, int record, uint64_t seed) {
  memset(ctx, 0, sizeof(*ctx));
  ctx->P = P;
  ctx->training = training;
  ctx->record = record;
  ctx->block_size = (size_t)64 << 20;
  embr_rng_seed(&ctx->rng, seed);
}

/* Keeps the largest block (its size fits one step's needs after the first) and frees the rest. */
void nn_ctx_reset(nn_ctx *ctx) {
  nn_block *keep = NULL;
  size_t total = 0;
  for (nn_block *b = ctx->blocks, *nx; b; b = nx) {
    nx = b->next;
    total += b->used;
    if (!keep || b->cap > keep->cap) {
      if (keep) free(keep);
      keep = b;
    } else {
      free(b);
    }
  }
  if (keep && keep->cap < total) { /* last step needed more: one block that holds it all */
    free(keep);
    keep = NULL;
    if (total + (total >> 3) > ctx->block_size) ctx->block_size = total + (total >> 3);
  }
  if (keep) keep->used = 0, keep->next = NULL;
  ctx->blocks = keep;
  ctx->ntape = 0;
  ctx->rc = 0;
}

void nn_ctx_free(nn_ctx *ctx) {
  for (nn_block *b = ctx->blocks, *nx; b; b = nx) {
    nx = b->next;
    free(b);
  }
  free(ctx->tape);
  memset(ctx, 0, sizeof(*ctx));
}

void *nn_alloc(nn_ctx *ctx, size_t bytes) {
  if (ctx->rc) return NULL;
  bytes = (bytes + 63) & ~(size_t)63;
  nn_block *b = ctx->blocks;
  if (!b || b->cap - b->used < bytes) {
    size_t cap = bytes > ctx->block_size ? bytes : ctx->block_size;
    nn_block *nb = aligned_alloc(64, (sizeof(nn_block) + cap + 63) & ~(size_t)63);
    if (!nb) {
      ctx->rc = embr_error(EMBR_ENOMEM, "out of memory for activations (%zu bytes)", bytes);
      return NULL;
    }
    nb->cap = cap, nb->used = 0, nb->next = b;
    ctx->blocks = b = nb;
  }
  void *p = b->data + b->used;
  b->used += bytes;
  return p;
}

float *nn_floats(nn_ctx *ctx, int64_t n, int zero) {
  float *p = nn_alloc(ctx, sizeof(float) * (size_t)(n ? n : 1));
  if (p && zero) memset(p, 0, sizeof(float) * (size_t)n);
  return p;
}

nn_t *nn_tensor(nn_ctx *ctx, int n, int c, int h, int w) {
  nn_t *t = nn_alloc(ctx, sizeof(nn_t));
  if (!t) return NULL;
  *t = (nn_t){NULL, NULL, n, c, h, w};
  t->d = nn_floats(ctx, nn_numel(t), 0);
  if (ctx->record) t->g = nn_floats(ctx, nn_numel(t), 1);
  return ctx->rc ? NULL : t;
}

nn_t *nn_wrap(nn_ctx *ctx, float *data, int n, int c, int h, int w) {
  nn_t *t = nn_alloc(ctx, sizeof(nn_t));
  if (!t) return NULL;
  *t = (nn_t){data, NULL, n, c, h, w}; /* an input: no gradient wanted, ops skip its dx */
  return t;
}

void nn_record(nn_ctx *ctx, nn_backward_fn fn, void *node) {
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
  ctx->tape[ctx->ntape++].node = node;
}

void nn_backward(nn_ctx *ctx) {
  for (int i = ctx->ntape - 1; i >= 0; i--) ctx->tape[i].fn(ctx, ctx->tape[i].node);
}

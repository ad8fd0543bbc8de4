/* The parameter table: every parameter of a model in one flat buffer (and one for gradients),
 * found by name, so that optimizers, clipping and checkpoints are single loops over floats. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/dnnl.h"
#include "nn/nn.h"

int64_t embr__nn_param_add(nn_params *P, const char *name, int ndim, const int64_t *shape, nn_kind kind, nn_init init,
                     float init_arg) {
  if (strlen(name) >= sizeof(P->p[0].name) || ndim < 1 || ndim > 4) {
    embr_error(EMBR_EINVAL, "parameter name too long or bad rank: %s", name);
    return -1;
  }
  if (P->n == P->cap) {
    int cap = P->cap ? 2 * P->cap : 64;
    nn_param *p = embr_realloc(P->p, sizeof(nn_param) * (size_t)P->cap, sizeof(nn_param) * (size_t)cap);
    if (!p) {
      embr_error(EMBR_ENOMEM, "out of memory");
      return -1;
    }
    P->p = p, P->cap = cap;
  }
  nn_param *q = &P->p[P->n++];
  memset(q, 0, sizeof(*q));
  strcpy(q->name, name);
  q->ndim = ndim;
  q->numel = 1;
  for (int i = 0; i < ndim; i++) q->numel *= q->shape[i] = shape[i];
  /* 16-float alignment: every tensor starts on a 64-byte boundary of the block. */
  q->off = P->total;
  P->total += (q->numel + 15) / 16 * 16;
  q->kind = kind, q->init = init, q->init_arg = init_arg;
  return q->off;
}

int embr__nn_params_init(nn_params *P, uint64_t seed) {
  size_t bytes = sizeof(float) * (size_t)(P->total ? P->total : 1);
  P->data = embr_alloc(bytes);
  if (!P->data) return embr_error(EMBR_ENOMEM, "out of memory for %lld parameters", (long long)P->total);
  memset(P->data, 0, bytes);
  embr_rng r;
  embr_rng_seed(&r, seed);
  P->version++;
  for (int i = 0; i < P->n; i++) {
    nn_param *q = &P->p[i];
    float *d = P->data + q->off;
    for (int64_t j = 0; j < q->numel; j++) {
      switch (q->init) {
        case NN_INIT_ZERO: d[j] = 0; break;
        case NN_INIT_ONE: d[j] = 1; break;
        case NN_INIT_CONST: d[j] = q->init_arg; break;
        case NN_INIT_KAIMING: d[j] = (float)(embr_rng_normal(&r) * sqrt(2.0 / q->init_arg)); break;
        case NN_INIT_UNIFORM: d[j] = (float)((2 * embr_rng_double(&r) - 1) * q->init_arg); break;
        case NN_INIT_NORMAL: d[j] = (float)(embr_rng_normal(&r) * q->init_arg); break;
      }
    }
  }
  return 0;
}

void embr__nn_params_free(nn_params *P) {
  embr__dnnl_cache_free(P);
  for (int i = 0; P->derived && i < P->n; i++) embr_free(P->derived[i]);
  embr_free(P->derived);
  embr_free(P->derived_version);
  embr_free(P->p);
  embr_free(P->data);
  embr_free(P->grad);
  memset(P, 0, sizeof(*P));
}

int embr__nn_param_find(const nn_params *P, const char *name) {
  for (int i = 0; i < P->n; i++)
    if (!strcmp(P->p[i].name, name)) return i;
  return -1;
}

/* Gradients take as much memory as the weights: a model that only embeds never allocates them. */
int embr__nn_params_grad_alloc(nn_params *P) {
  if (P->grad) return 0;
  size_t bytes = sizeof(float) * (size_t)(P->total ? P->total : 1);
  if (!(P->grad = embr_alloc(bytes))) return embr_error(EMBR_ENOMEM, "out of memory for %lld gradients", (long long)P->total);
  memset(P->grad, 0, bytes);
  return 0;
}

void embr__nn_params_zero_grad(nn_params *P) {
  if (P->grad) memset(P->grad, 0, sizeof(float) * (size_t)P->total);
}

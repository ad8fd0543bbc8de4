/* Optimizers (SGD with momentum, AdamW), gradient clipping (global, or per parameter as DINO) and
 * the learning-rate schedules (warm-up + cosine, DINO's cosine_scheduler): single loops over the
 * flat parameter buffer. */
#include <math.h>
#include <string.h>

#include "nn/nn.h"

int embr__nn_optim_init(nn_optim *o, const nn_params *P, nn_optim_kind kind) {
  memset(o, 0, sizeof(*o));
  o->kind = kind;
  o->nt = embr_threads_resolve(0);
  o->momentum = 0.9f, o->beta1 = 0.9f, o->beta2 = 0.999f, o->eps = 1e-8f;
  o->weight_decay = kind == NN_SGD ? 5e-4f : 0.05f;
  size_t bytes = sizeof(float) * (size_t)(P->total ? P->total : 1);
  o->m = embr_alloc(bytes);
  o->v = kind == NN_ADAMW ? embr_alloc(bytes) : NULL;
  if (!o->m || (kind == NN_ADAMW && !o->v)) {
    embr__nn_optim_free(o);
    return embr_error(EMBR_ENOMEM, "out of memory for optimizer state");
  }
  memset(o->m, 0, bytes);
  if (o->v) memset(o->v, 0, bytes);
  o->n = P->n;
  o->pstep = embr_alloc(sizeof(int64_t) * (size_t)(P->n ? P->n : 1));
  o->skip = embr_alloc((size_t)(P->n ? P->n : 1));
  if (!o->pstep || !o->skip) {
    embr__nn_optim_free(o);
    return embr_error(EMBR_ENOMEM, "out of memory for optimizer state");
  }
  memset(o->pstep, 0, sizeof(int64_t) * (size_t)(P->n ? P->n : 1));
  memset(o->skip, 0, (size_t)(P->n ? P->n : 1));
  return 0;
}

void embr__nn_optim_free(nn_optim *o) {
  embr_free(o->m);
  embr_free(o->v);
  embr_free(o->pstep);
  embr_free(o->skip);
  o->m = o->v = NULL;
  o->pstep = NULL;
  o->skip = NULL;
}

static void sgd_update(nn_optim *o, const nn_param *q, float *p, const float *g, float *buf, float lr, int64_t step) {
  float wd = q->kind == NN_WEIGHT ? o->weight_decay : 0.0f;
  for (int64_t i = 0; i < q->numel; i++) {
    float d = g[i] + wd * p[i];
    buf[i] = step == 1 ? d : o->momentum * buf[i] + d; /* PyTorch starts the buffer at the first gradient */
    p[i] -= lr * buf[i];
  }
}

static void adamw_update(nn_optim *o, const nn_param *q, float *p, const float *g, float *m, float *v, float lr,
                         int64_t step) {
  float wd = q->kind == NN_WEIGHT ? o->weight_decay : 0.0f;
  double c1 = 1 - pow(o->beta1, (double)step), c2 = 1 - pow(o->beta2, (double)step);
  for (int64_t i = 0; i < q->numel; i++) {
    p[i] *= 1 - lr * wd;
    m[i] = o->beta1 * m[i] + (1 - o->beta1) * g[i];
    v[i] = o->beta2 * v[i] + (1 - o->beta2) * g[i] * g[i];
    p[i] -= (float)(lr * (m[i] / c1) / (sqrt(v[i] / c2) + o->eps));
  }
}

void embr__nn_optim_step(nn_optim *o, nn_params *P, float lr) {
  if (!P->grad) return; /* nothing was ever recorded */
  o->step++;
  P->version++;
#pragma omp parallel for num_threads(o->nt) schedule(dynamic, 1)
  for (int k = 0; k < P->n; k++) {
    const nn_param *q = &P->p[k];
    if (q->kind == NN_BUFFER || (k < o->n && o->skip[k])) continue;
    int64_t step = k < o->n ? ++o->pstep[k] : o->step;
    float *p = P->data + q->off, *g = P->grad + q->off;
    if (o->kind == NN_SGD)
      sgd_update(o, q, p, g, o->m + q->off, lr, step);
    else
      adamw_update(o, q, p, g, o->m + q->off, o->v + q->off, lr, step);
  }
}

double embr__nn_clip_grad(nn_params *P, double max_norm) {
  double ss = 0;
  if (!P->grad) return 0;
  for (int k = 0; k < P->n; k++) {
    if (P->p[k].kind == NN_BUFFER) continue;
    const float *g = P->grad + P->p[k].off;
    for (int64_t i = 0; i < P->p[k].numel; i++) ss += (double)g[i] * g[i];
  }
  double norm = sqrt(ss);
  if (max_norm > 0 && norm > max_norm) {
    float f = (float)(max_norm / (norm + 1e-6));
    for (int64_t i = 0; i < P->total; i++) P->grad[i] *= f;
  }
  return norm;
}

double embr__nn_lr_at(double base, int64_t step, int64_t warmup, int64_t total) {
  if (warmup > 0 && step < warmup) return base * (double)(step + 1) / (double)warmup;
  if (total <= warmup) return base;
  double t = (double)(step - warmup) / (double)(total - warmup);
  if (t > 1) t = 1;
  return base * 0.5 * (1 + cos(M_PI * t));
}

double embr__nn_clip_grad_each(nn_params *P, double max_norm) {
  double total = 0;
  if (!P->grad) return 0;
  for (int k = 0; k < P->n; k++) {
    if (P->p[k].kind == NN_BUFFER) continue;
    float *g = P->grad + P->p[k].off;
    double ss = 0;
    for (int64_t i = 0; i < P->p[k].numel; i++) ss += (double)g[i] * g[i];
    total += ss;
    double coef = max_norm / (sqrt(ss) + 1e-6);
    if (max_norm > 0 && coef < 1)
      for (int64_t i = 0; i < P->p[k].numel; i++) g[i] *= (float)coef;
  }
  return sqrt(total);
}

double embr__nn_cosine_at(double base, double final, int64_t it, int64_t total, int64_t warmup, double start) {
  /* A warm-up longer than the run is cut short where the run ends (the reference refuses it). */
  if (it < warmup) return warmup == 1 ? start : start + (base - start) * (double)it / (double)(warmup - 1);
  if (total <= warmup) return final;
  double t = (double)(it - warmup) / (double)(total - warmup);
  if (t > 1) t = 1;
  return final + 0.5 * (base - final) * (1 + cos(M_PI * t));
}

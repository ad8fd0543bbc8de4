/* Losses on (n, d) rows: softmax cross-entropy, and the combined angular-margin head that gives
 * ArcFace (m2), CosFace (m3) and SphereFace (m1) logits. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "core/threads.h"
#include "nn/nn.h"

double embr__nn_softmax_xent(nn_t *logits, const int32_t *labels, int64_t *correct) {
  int n = logits->n, k = logits->c * logits->h * logits->w;
  double loss = 0;
  int64_t hits = 0;
  for (int i = 0; i < n; i++) {
    const float *z = logits->d + (int64_t)i * k;
    int arg = 0;
    for (int j = 1; j < k; j++)
      if (z[j] > z[arg]) arg = j;
    hits += arg == labels[i];
    double sum = 0;
    for (int j = 0; j < k; j++) sum += exp((double)z[j] - z[arg]); /* shifted by the max: no overflow */
    loss += log(sum) - ((double)z[labels[i]] - z[arg]);
    if (logits->g) {
      float *g = logits->g + (int64_t)i * k;
      for (int j = 0; j < k; j++) g[j] += (float)((exp((double)z[j] - z[arg]) / sum - (j == labels[i])) / n);
    }
  }
  if (correct) *correct = hits;
  return loss / n;
}

int embr__nn_margin_make(nn_params *P, nn_margin *L, const char *prefix, int classes, int dim, float m1, float m2, float m3,
                   float s) {
  char name[160];
  int64_t shape[2] = {classes, dim};
  snprintf(name, sizeof(name), "%s.weight", prefix);
  *L = (nn_margin){classes, dim, -1, m1, m2, m3, s};
  /* Xavier-uniform as the reference implementations initialise the class centres; the head
   * normalises rows, so only directions matter. */
  L->w = embr__nn_param_add(P, name, 2, shape, NN_WEIGHT, NN_INIT_UNIFORM, sqrtf(6.0f / (float)(classes + dim)));
  return L->w < 0 ? EMBR_ENOMEM : 0;
}

typedef struct margin_node {
  nn_t *emb, *y;
  const nn_margin *L;
  float *e, *w;   /* normalised rows: (n, dim), (classes, dim) */
  float *einv, *winv;
  float *dtdc;    /* derivative of the true-class target by its cosine, per row */
  const int32_t *labels;
} margin_node;

static void normalise_rows(const float *x, int n, int d, float *out, float *inv) {
  for (int i = 0; i < n; i++) {
    double s = 0;
    for (int j = 0; j < d; j++) s += (double)x[(int64_t)i * d + j] * x[(int64_t)i * d + j];
    double nrm = sqrt(s) > 1e-12 ? sqrt(s) : 1e-12;
    inv[i] = (float)(1.0 / nrm);
    for (int j = 0; j < d; j++) out[(int64_t)i * d + j] = (float)(x[(int64_t)i * d + j] / nrm);
  }
}

/* The gradient of a normalised row back to the raw row: (g - u (u.g)) / |x|, accumulated. */
static void unnormalise_grad(const float *u, const float *g, const float *inv, int n, int d, float *out) {
  for (int i = 0; i < n; i++) {
    double dot = 0;
    for (int j = 0; j < d; j++) dot += (double)u[(int64_t)i * d + j] * g[(int64_t)i * d + j];
    for (int j = 0; j < d; j++)
      out[(int64_t)i * d + j] += (float)((g[(int64_t)i * d + j] - u[(int64_t)i * d + j] * dot) * inv[i]);
  }
}

static void margin_backward(nn_ctx *ctx, void *node) {
  margin_node *m = node;
  const nn_margin *L = m->L;
  int n = m->emb->n, C = L->classes, d = L->dim;
  float *dcos = embr__nn_floats(ctx, (int64_t)n * C, 0), *de = embr__nn_floats(ctx, (int64_t)n * d, 0),
        *dw = embr__nn_floats(ctx, (int64_t)C * d, 0);
  if (!dcos || !de || !dw) return;
  for (int64_t i = 0; i < (int64_t)n * C; i++) dcos[i] = m->y->g[i] * L->s;
  for (int i = 0; i < n; i++) dcos[(int64_t)i * C + m->labels[i]] *= m->dtdc[i];
  embr__blas_enter(ctx->nt);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, C, 1.0f, dcos, C, m->w, d, 0.0f, de, d);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, d, n, 1.0f, dcos, C, m->e, d, 0.0f, dw, d);
  embr__blas_leave();
  if (m->emb->g) unnormalise_grad(m->e, de, m->einv, n, d, m->emb->g);
  unnormalise_grad(m->w, dw, m->winv, C, d, nn_pg(ctx, L->w));
}

/* The true-class target t(c) and dt/dc for cosine c. */
static void margin_target(const nn_margin *L, float c, float *t, float *dtdc) {
  double cc = c > 1 - 1e-7f ? 1 - 1e-7 : c < -1 + 1e-7f ? -1 + 1e-7 : c;
  double theta = acos(cc), a = L->m1 * theta + L->m2;
  if (a <= M_PI) {
    *t = (float)(cos(a) - L->m3);
    *dtdc = (float)(L->m1 * sin(a) / sin(theta));
  } else { /* past pi, cos(a) would rise again: a linear continuation keeps the penalty growing */
    *t = (float)(cc - L->m3 - L->m2 * sin(L->m2));
    *dtdc = 1.0f;
  }
}

nn_t *embr__nn_margin_logits(nn_ctx *ctx, nn_t *emb, const nn_margin *L, const int32_t *labels) {
  if (!emb) return NULL;
  int n = emb->n, C = L->classes, d = L->dim;
  if (emb->c * emb->h * emb->w != d) {
    ctx->rc = embr_error(EMBR_EINVAL, "margin head expects %d-dimensional embeddings, got %d", d, emb->c * emb->h * emb->w);
    return NULL;
  }
  for (int i = 0; i < n; i++)
    if (labels[i] < 0 || labels[i] >= C) {
      ctx->rc = embr_error(EMBR_EINVAL, "label %d outside the head's %d classes", labels[i], C);
      return NULL;
    }
  margin_node *m = embr__nn_alloc(ctx, sizeof(margin_node));
  nn_t *y = embr__nn_tensor(ctx, n, C, 1, 1);
  float *e = embr__nn_floats(ctx, (int64_t)n * d, 0), *w = embr__nn_floats(ctx, (int64_t)C * d, 0);
  float *einv = embr__nn_floats(ctx, n, 0), *winv = embr__nn_floats(ctx, C, 0), *dtdc = embr__nn_floats(ctx, n, 0);
  if (!m || !y || !e || !w || !einv || !winv || !dtdc) return NULL;
  normalise_rows(emb->d, n, d, e, einv);
  normalise_rows(nn_pd(ctx, L->w), C, d, w, winv);
  embr__blas_enter(ctx->nt);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, C, d, 1.0f, e, d, w, d, 0.0f, y->d, C);
  embr__blas_leave();
  for (int i = 0; i < n; i++) {
    float *row = y->d + (int64_t)i * C, t;
    margin_target(L, row[labels[i]], &t, &dtdc[i]);
    row[labels[i]] = t;
    for (int j = 0; j < C; j++) row[j] *= L->s;
  }
  *m = (margin_node){emb, y, L, e, w, einv, winv, dtdc, labels};
  embr__nn_record(ctx, margin_backward, m, y, emb, NULL);
  return y;
}

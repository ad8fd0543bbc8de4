/* Losses on (n, d) rows: softmax cross-entropy, the combined angular-margin head that gives
 * ArcFace (m2), CosFace (m3) and SphereFace (m1) logits, and CLIP's symmetric InfoNCE. */
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

/* ---- CLIP: symmetric InfoNCE over a batch of (image, text) rows ---------------------------------
 * Forward and backward in one call, as embr__nn_softmax_xent: the loss is the end of the graph, so
 * its gradient is known at once and goes straight into the inputs' gradient buffers (the towers'
 * backward then runs from there). Logits come from one sgemm of the normalised rows; the two
 * softmaxes and their gradient are taken in double over the B x B logits. */

#define CLIP_LOG_MAX_SCALE 4.605170185988091 /* ln 100 */

typedef struct clip_work {
  int B, E;
  float *u, *v, *uinv, *vinv; /* normalised rows and their inverse norms */
  float *z, *g;               /* logits and dL/dlogits, B x B */
  const int32_t *group;
  double t;                   /* exp of the clamped logit scale */
} clip_work;

/* Entry (i, j) is left out of both softmaxes: another row showing the same image. */
static int clip_masked(const clip_work *w, int i, int j) {
  return w->group && i != j && w->group[i] == w->group[j];
}

/* Cross-entropy of one softmax along row i (stride 1) or column i (stride B) of the logits,
 * target the diagonal entry; adds (p - onehot) * gscale into the gradient when it is kept.
 * *hit: the diagonal is the first largest kept entry (torch.argmax's tie rule). */
static double clip_xent(clip_work *w, int i, int64_t step, int64_t across, double gscale, int *hit) {
  const float *z = w->z + (int64_t)i * across;
  int arg = -1; /* the first largest kept entry, as torch.argmax */
  for (int j = 0; j < w->B; j++)
    if (!clip_masked(w, i, j) && (arg < 0 || z[j * step] > z[(int64_t)arg * step])) arg = j;
  *hit = arg == i;
  double top = z[(int64_t)arg * step], sum = 0;
  for (int j = 0; j < w->B; j++)
    if (!clip_masked(w, i, j)) sum += exp((double)z[j * step] - top);
  if (w->g) {
    float *g = w->g + (int64_t)i * across;
    for (int j = 0; j < w->B; j++)
      if (!clip_masked(w, i, j)) g[j * step] += (float)((exp((double)z[j * step] - top) / sum - (j == i)) * gscale);
  }
  return log(sum) - ((double)z[(int64_t)i * step] - top);
}

/* Both directions: rows of z are images against texts, columns texts against images. */
static double clip_both(clip_work *w, int64_t *i2t, int64_t *t2i) {
  double loss = 0, gscale = 0.5 / w->B;
  int64_t hi = 0, ht = 0;
  for (int i = 0; i < w->B; i++) {
    int hit = 0;
    loss += clip_xent(w, i, 1, w->B, gscale, &hit);
    hi += hit;
    hit = 0;
    loss += clip_xent(w, i, w->B, 1, gscale, &hit);
    ht += hit;
  }
  if (i2t) *i2t = hi;
  if (t2i) *t2i = ht;
  return loss * 0.5 / w->B;
}

/* dL/du = t G V, dL/dv = t G^T U, then back through the normalisation into the raw rows. */
static void clip_backward(nn_ctx *ctx, clip_work *w, nn_t *img, nn_t *txt) {
  int B = w->B, E = w->E;
  float *gi = embr__nn_grad(ctx, img), *gt = embr__nn_grad(ctx, txt);
  float *du = embr__nn_scratch(ctx, (int64_t)B * E), *dv = embr__nn_scratch(ctx, (int64_t)B * E);
  if (du && dv) {
    embr__blas_enter(ctx->nt);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, E, B, (float)w->t, w->g, B, w->v, E, 0.0f, du, E);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, B, E, B, (float)w->t, w->g, B, w->u, E, 0.0f, dv, E);
    embr__blas_leave();
    if (gi) unnormalise_grad(w->u, du, w->uinv, B, E, gi);
    if (gt) unnormalise_grad(w->v, dv, w->vinv, B, E, gt);
  }
  embr__nn_scratch_put(ctx, du);
  embr__nn_scratch_put(ctx, dv);
}

static int clip_check(nn_ctx *ctx, const nn_t *img, const nn_t *txt, int64_t logit_scale) {
  int E = img->c * img->h * img->w;
  if (img->n < 1 || img->n != txt->n || E != txt->c * txt->h * txt->w)
    return embr_error(EMBR_EINVAL, "CLIP loss: image rows (%d, %d) and text rows (%d, %d) must have one shape", img->n, E,
                      txt->n, txt->c * txt->h * txt->w);
  if (logit_scale < 0 || logit_scale >= ctx->P->total)
    return embr_error(EMBR_EINVAL, "CLIP loss: logit_scale offset %lld outside the %lld parameters", (long long)logit_scale,
                      (long long)ctx->P->total);
  if (!isfinite(nn_pd(ctx, logit_scale)[0]))
    return embr_error(EMBR_EVALUE, "CLIP loss: logit_scale is not finite");
  return 0;
}

static void clip_free(nn_ctx *ctx, clip_work *w) {
  float *bufs[] = {w->u, w->v, w->uinv, w->vinv, w->z, w->g};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) embr__nn_scratch_put(ctx, bufs[i]);
}

/* Normalised rows, logits z = t U V^T, and a zeroed gradient when one is wanted. */
static int clip_forward(nn_ctx *ctx, clip_work *w, const nn_t *img, const nn_t *txt, int grads) {
  int B = w->B, E = w->E;
  w->u = embr__nn_scratch(ctx, (int64_t)B * E);
  w->v = embr__nn_scratch(ctx, (int64_t)B * E);
  w->uinv = embr__nn_scratch(ctx, B);
  w->vinv = embr__nn_scratch(ctx, B);
  w->z = embr__nn_scratch(ctx, (int64_t)B * B);
  w->g = grads ? embr__nn_scratch(ctx, (int64_t)B * B) : NULL;
  if (!w->u || !w->v || !w->uinv || !w->vinv || !w->z || (grads && !w->g)) return ctx->rc;
  if (w->g) memset(w->g, 0, sizeof(float) * (size_t)B * (size_t)B);
  normalise_rows(img->d, B, E, w->u, w->uinv);
  normalise_rows(txt->d, B, E, w->v, w->vinv);
  embr__blas_enter(ctx->nt);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, B, E, (float)w->t, w->u, E, w->v, E, 0.0f, w->z, B);
  embr__blas_leave();
  return 0;
}

double embr__nn_clip_loss(nn_ctx *ctx, nn_t *img, nn_t *txt, int64_t logit_scale, const int32_t *group,
                          int64_t *i2t_correct, int64_t *t2i_correct) {
  if (!img || !txt || ctx->rc) return NAN;
  int rc = clip_check(ctx, img, txt, logit_scale);
  if (rc) {
    ctx->rc = rc;
    return NAN;
  }
  /* In float, as torch.clamp on a float32 tensor: the stored ln 100 is at the bound, not past it. */
  float s = nn_pd(ctx, logit_scale)[0], top = (float)CLIP_LOG_MAX_SCALE;
  int live = s >= 0 && s <= top; /* torch.clamp passes the gradient at the bounds */
  s = s < 0 ? 0 : s > top ? top : s;
  int grads = img->need_g || txt->need_g || (ctx->record && ctx->P->grad);
  clip_work w = {img->n, img->c * img->h * img->w, NULL, NULL, NULL, NULL, NULL, NULL, group, exp(s)};
  double loss = NAN;
  if (!clip_forward(ctx, &w, img, txt, grads)) {
    loss = clip_both(&w, i2t_correct, t2i_correct);
    if (grads) {
      double ds = 0; /* dL/ds = t sum G_ij c_ij = sum G_ij z_ij */
      for (int64_t i = 0; i < (int64_t)w.B * w.B; i++) ds += (double)w.g[i] * w.z[i];
      if (ctx->record && ctx->P->grad && live) nn_pg(ctx, logit_scale)[0] += (float)ds;
      clip_backward(ctx, &w, img, txt);
    }
  }
  clip_free(ctx, &w);
  return ctx->rc ? NAN : loss;
}

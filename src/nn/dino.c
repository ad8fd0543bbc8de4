/* DINO's method pieces that are not a backbone (facebookresearch/dino's main_dino.py): the head's
 * weight-normalised last layer (forward and backward side by side), the loss between the teacher's
 * centred, sharpened softmax and the student's log-softmax over every pair of views, the center's
 * EMA and the teacher's EMA. The loss is computed in double: K reaches 65536 and the teacher's
 * temperature 0.04 makes its logits large (the probabilities are stored in float). */
#include <math.h>
#include <string.h>

#include "core/threads.h"
#include "nn/gemm.h"

/* ---- weight-normalised linear layer ----------------------------------------------------------- */

int embr__nn_wnlin_make(nn_params *P, nn_wnlin *L, const char *prefix, int in, int out) {
  char name[128];
  *L = (nn_wnlin){in, out, -1, -1};
  int64_t gs[2] = {out, 1}, vs[2] = {out, in};
  snprintf(name, sizeof name, "%s.weight_g", prefix);
  /* DINO fills the gain with 1 and freezes it (norm_last_layer): a buffer, never trained. */
  if ((L->g = embr__nn_param_add(P, name, 2, gs, NN_BUFFER, NN_INIT_ONE, 0)) < 0) return embr_error(EMBR_ENOMEM, "out of memory");
  snprintf(name, sizeof name, "%s.weight_v", prefix);
  if ((L->v = embr__nn_param_add(P, name, 2, vs, NN_WEIGHT, NN_INIT_UNIFORM, 1.0f / sqrtf((float)in))) < 0)
    return embr_error(EMBR_ENOMEM, "out of memory");
  return 0;
}

typedef struct wn_node {
  nn_t *x, *y;
  const nn_wnlin *L;
  float *W;    /* the effective weight (out, in) of this step */
  double *inv; /* 1 / ||v_k|| */
} wn_node;

/* dW = dY^T X; dX += dY W; dv_k = g_k inv_k (dW_k - (dW_k . u_k) u_k), u_k = v_k inv_k. */
static void wn_backward(nn_ctx *ctx, void *node) {
  wn_node *u = node;
  const nn_wnlin *L = u->L;
  int M = u->x->n, in = L->in, out = L->out;
  float *dW = embr__nn_scratch(ctx, (int64_t)out * in);
  if (!dW) return;
  embr__nn_gemm_rows(ctx, CblasTrans, CblasNoTrans, out, in, M, u->y->g, out, u->x->d, in, 0.0f, dW, in);
  if (u->x->g) embr__nn_gemm_rows(ctx, CblasNoTrans, CblasNoTrans, M, in, out, u->y->g, out, u->W, in, 1.0f, u->x->g, in);
  const float *v = nn_pd(ctx, L->v), *g = nn_pd(ctx, L->g);
  float *dv = nn_pg(ctx, L->v);
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int k = 0; k < out; k++) {
    const float *vk = v + (int64_t)k * in, *dk = dW + (int64_t)k * in;
    double dot = 0, inv = u->inv[k];
    for (int j = 0; j < in; j++) dot += (double)dk[j] * vk[j] * inv;
    for (int j = 0; j < in; j++) dv[(int64_t)k * in + j] += (float)(g[k] * inv * (dk[j] - dot * vk[j] * inv));
  }
  embr__nn_scratch_put(ctx, dW);
}

nn_t *embr__nn_wnlin_f(nn_ctx *ctx, nn_t *x, const nn_wnlin *L) {
  if (!x) return NULL;
  if ((int64_t)x->c * x->h * x->w != L->in) {
    ctx->rc = embr_error(EMBR_EINVAL, "weight-normalised layer expects rows of %d, got %lld", L->in,
                         (long long)x->c * x->h * x->w);
    return NULL;
  }
  int in = L->in, out = L->out;
  nn_t *y = embr__nn_tensor(ctx, x->n, out, 1, 1);
  float *W = embr__nn_floats(ctx, (int64_t)out * in, 0);
  double *inv = embr__nn_alloc(ctx, sizeof(double) * (size_t)out);
  if (!y || !W || !inv) return NULL;
  const float *v = nn_pd(ctx, L->v), *g = nn_pd(ctx, L->g);
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int k = 0; k < out; k++) {
    const float *vk = v + (int64_t)k * in;
    double ss = 0;
    for (int j = 0; j < in; j++) ss += (double)vk[j] * vk[j];
    inv[k] = ss > 0 ? 1 / sqrt(ss) : 0; /* PyTorch has no floor: a zero row would be NaN there, zero here */
    for (int j = 0; j < in; j++) W[(int64_t)k * in + j] = (float)(g[k] * vk[j] * inv[k]);
  }
  embr__nn_gemm_rows(ctx, CblasNoTrans, CblasTrans, x->n, out, in, x->d, in, W, in, 0.0f, y->d, out);
  if (ctx->record) {
    wn_node *u = embr__nn_alloc(ctx, sizeof(wn_node));
    if (!u) return NULL;
    *u = (wn_node){x, y, L, W, inv};
    embr__nn_record(ctx, wn_backward, u, y, x, NULL);
  }
  return embr__nn_done(ctx, x, y);
}

/* ---- loss, center, EMA ------------------------------------------------------------------------ */

/* Row r of the student views: global views first, then local ones. */
static const float *student_row(const nn_t *sg, const nn_t *sl, int64_t rows_g, int64_t r, int K) {
  return r < rows_g ? sg->d + r * K : sl->d + (r - rows_g) * K;
}

double embr__nn_dino_loss(nn_ctx *ctx, nn_t *sg, int n_global, nn_t *sl, int n_local, int B, const float *teacher,
                          const float *center, float t_temp, float s_temp, double *teacher_entropy) {
  if (!sg || (n_local > 0 && !sl)) {
    if (!ctx->rc) ctx->rc = embr_error(EMBR_ENOMEM, "out of memory");
    return NAN;
  }
  int K = sg->c * sg->h * sg->w, V = n_global + n_local;
  if (n_global < 1 || B < 1 || sg->n != n_global * B || (n_local > 0 && (sl->n != n_local * B || sl->c * sl->h * sl->w != K)) ||
      V < 2 || !(t_temp > 0) || !(s_temp > 0)) {
    ctx->rc = embr_error(EMBR_EINVAL, "DINO loss: %d global and %d local views of %d images do not match the outputs",
                         n_global, n_local, B);
    return NAN;
  }
  int64_t rows_g = (int64_t)n_global * B, rows = (int64_t)V * B;
  /* q: the teacher's probabilities (n_global*B x K); lp: the student's log-probabilities (V*B x K),
   * computed in double, stored in float (with K = 65536 and 10 crops they are the size of the
   * student's output: double would take twice that again). */
  float *q = embr__nn_alloc(ctx, sizeof(float) * (size_t)(rows_g * K));
  float *lp = embr__nn_alloc(ctx, sizeof(float) * (size_t)(rows * K));
  if (!q || !lp) return NAN;
  double ent = 0;
#pragma omp parallel for num_threads(ctx->nt) schedule(static) reduction(+ : ent)
  for (int64_t r = 0; r < rows_g; r++) {
    const float *t = teacher + r * K;
    float *qr = q + r * K;
    double mx = -INFINITY, z = 0, e = 0;
    for (int k = 0; k < K; k++) mx = fmax(mx, ((double)t[k] - center[k]) / t_temp);
    for (int k = 0; k < K; k++) z += exp(((double)t[k] - center[k]) / t_temp - mx);
    double lz = mx + log(z);
    for (int k = 0; k < K; k++) {
      double lq = ((double)t[k] - center[k]) / t_temp - lz, pq = exp(lq);
      qr[k] = (float)pq;
      e -= pq * lq;
    }
    ent += e;
  }
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *s = student_row(sg, sl, rows_g, r, K);
    float *l = lp + r * K;
    double mx = -INFINITY, z = 0;
    for (int k = 0; k < K; k++) mx = fmax(mx, s[k] / (double)s_temp);
    for (int k = 0; k < K; k++) z += exp(s[k] / (double)s_temp - mx);
    double lz = mx + log(z);
    for (int k = 0; k < K; k++) l[k] = (float)(s[k] / (double)s_temp - lz);
  }
  /* Pairs: teacher view i (global), student view v != i. */
  int pairs = n_global * (V - 1);
  double loss = 0;
  for (int i = 0; i < n_global; i++)
    for (int v = 0; v < V; v++) {
      if (v == i) continue;
      double part = 0;
#pragma omp parallel for num_threads(ctx->nt) schedule(static) reduction(+ : part)
      for (int b = 0; b < B; b++) {
        const float *qr = q + ((int64_t)i * B + b) * K, *l = lp + ((int64_t)v * B + b) * K;
        double c = 0;
        for (int k = 0; k < K; k++) c -= (double)qr[k] * l[k];
        part += c;
      }
      loss += part / B;
    }
  loss /= pairs;
  /* d loss / d s_v = (sum over teacher views i != v of (sum_k q_i) p_v - q_i) / (pairs B s_temp). */
  float *gg = embr__nn_grad(ctx, sg), *gl = n_local > 0 ? embr__nn_grad(ctx, sl) : NULL;
  if (ctx->rc) return NAN;
  double scale = 1.0 / ((double)pairs * B * s_temp);
#pragma omp parallel for num_threads(ctx->nt) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    int v = (int)(r / B), b = (int)(r % B);
    float *g = r < rows_g ? gg + r * K : gl + (r - rows_g) * K;
    const float *l = lp + r * K;
    for (int k = 0; k < K; k++) {
      double acc = 0, p = exp((double)l[k]);
      for (int i = 0; i < n_global; i++) {
        if (i == v) continue;
        acc += p - q[((int64_t)i * B + b) * K + k]; /* q_i sums to 1 */
      }
      g[k] += (float)(acc * scale);
    }
  }
  if (teacher_entropy) *teacher_entropy = ent / (double)rows_g;
  return loss;
}

void embr__nn_dino_center_update(float *center, const float *teacher, int64_t rows, int K, float m) {
  for (int k = 0; k < K; k++) {
    double s = 0;
    for (int64_t r = 0; r < rows; r++) s += teacher[r * K + k];
    center[k] = (float)(center[k] * (double)m + s / (double)rows * (1 - (double)m));
  }
}

void embr__nn_ema(float *teacher, const float *student, int64_t n, double m, int nt) {
  float a = (float)m, b = (float)(1 - m);
#pragma omp parallel for num_threads(nt < 1 ? 1 : nt) schedule(static)
  for (int64_t i = 0; i < n; i++) teacher[i] = teacher[i] * a + student[i] * b;
}

/* oneDNN convolutions for inference: batch norm folded into the weights and bias, the residual
 * add and ReLU as oneDNN post-ops, activations NHWC (oneDNN's brgemm kernels take NHWC as is;
 * on NCHW it falls back to an im2col GEMM that runs 1x1 convolutions 20x slower).
 *
 * Threads. Debian's oneDNN is built on OpenMP: its parallel regions take omp_get_max_threads()
 * of the calling thread, and no per-call count exists (dnnl_threadpool_interop is for threadpool
 * builds only). Running it inside `#pragma omp parallel num_threads(1)` would confine a count set
 * there to that region, but nested teams are not pooled by libgomp: measured 0.4-0.8 ms per
 * oneDNN region against 17-33 us. So the call saves the calling thread's count, sets ctx->nt
 * and restores it before returning: nthreads-var is an ICV of the calling task (other threads
 * never see it) and it is back as found when the call returns (tests/test_nn.c checks this). */
#include "nn/dnnl.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#ifdef EMBR_HAVE_DNNL
#include <math.h>
#include <pthread.h>

#include <dnnl.h>
#endif

int embr__dnnl_enabled(void) {
#ifdef EMBR_HAVE_DNNL
  const char *e = getenv("EMBR_DNNL");
  return !e || strcmp(e, "0");
#else
  return 0;
#endif
}

void embr__nn_relayout(const float *src, float *dst, int n, int c, int h, int w, int to_nhwc, int nt) {
  int64_t hw = (int64_t)h * w;
#pragma omp parallel for num_threads(nt) schedule(static) collapse(2)
  for (int i = 0; i < n; i++)
    for (int64_t p = 0; p < hw; p++) {
      const int64_t base = (int64_t)i * c * hw;
      if (to_nhwc)
        for (int k = 0; k < c; k++) dst[base + p * c + k] = src[base + k * hw + p];
      else
        for (int k = 0; k < c; k++) dst[base + k * hw + p] = src[base + p * c + k];
    }
}

#ifndef EMBR_HAVE_DNNL

int embr__dnnl_conv_fwd(nn_ctx *ctx, const nn_conv *L, const nn_bn *bn, const nn_t *x, nn_t *y, const nn_t *res,
                        int relu) {
  (void)ctx, (void)L, (void)bn, (void)x, (void)y, (void)res, (void)relu;
  return EMBR_EUNSUPPORTED;
}
void embr__dnnl_cache_free(nn_params *P) { (void)P; }
int embr__dnnl_cached_layers(const nn_params *P) {
  (void)P;
  return 0;
}

#else

/* One convolution's compiled state, for one input shape, thread count and post-op set. */
typedef struct layer {
  uint64_t version; /* P->version + 1 when built (0: empty) */
  int n, h, w, nt, relu, sum, bn;
  int unsupported; /* oneDNN offers only its reference kernel for this layer */
  dnnl_primitive_t prim;
  dnnl_memory_desc_t src_md, dst_md;
  dnnl_memory_t wmem, bmem; /* folded weights in the primitive's layout, folded bias */
} layer;

typedef struct cache {
  int n; /* entries: one per parameter of P (indexed by the weight's index) */
  layer *l;
} cache;

static dnnl_engine_t engine;
static int engine_ok;
static void engine_init(void) { engine_ok = dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success; }

static void layer_clear(layer *l) {
  if (l->prim) dnnl_primitive_destroy(l->prim);
  if (l->wmem) dnnl_memory_destroy(l->wmem);
  if (l->bmem) dnnl_memory_destroy(l->bmem);
  memset(l, 0, sizeof(*l));
}

void embr__dnnl_cache_free(nn_params *P) {
  cache *c = P->dnnl;
  if (!c) return;
  for (int i = 0; i < c->n; i++) layer_clear(&c->l[i]);
  free(c->l);
  free(c);
  P->dnnl = NULL;
}

int embr__dnnl_cached_layers(const nn_params *P) {
  const cache *c = P->dnnl;
  int k = 0;
  for (int i = 0; c && i < c->n; i++) k += c->l[i].prim != NULL;
  return k;
}

static layer *layer_of(nn_params *P, int widx) {
  cache *c = P->dnnl;
  if (!c) {
    if (!(c = calloc(1, sizeof(cache))) || !(c->l = calloc((size_t)P->n, sizeof(layer)))) {
      free(c);
      return NULL;
    }
    c->n = P->n;
    P->dnnl = c;
  }
  return widx >= 0 && widx < c->n ? &c->l[widx] : NULL;
}

/* The weights with the batch norm folded in (double sums: the fold must not add error beyond
 * float rounding): w'[o] = w[o] g_o / sqrt(v_o + eps), b'_o = beta_o + (b_o - m_o) g_o / sqrt(v_o + eps). */
static void fold(const nn_ctx *ctx, const nn_conv *L, const nn_bn *bn, float *w, float *b) {
  int64_t per = (int64_t)(L->in / L->groups) * L->k * L->k;
  const float *W = nn_pd(ctx, L->w), *B = L->b >= 0 ? nn_pd(ctx, L->b) : NULL;
  for (int o = 0; o < L->out; o++) {
    double s = 1, shift = 0;
    if (bn) {
      s = nn_pd(ctx, bn->gamma)[o] / sqrt((double)nn_pd(ctx, bn->var)[o] + bn->eps);
      shift = nn_pd(ctx, bn->beta)[o] - nn_pd(ctx, bn->mean)[o] * s;
    }
    for (int64_t i = 0; i < per; i++) w[o * per + i] = (float)(W[o * per + i] * s);
    b[o] = (float)((B ? B[o] : 0.0) * s + shift);
  }
}

static int build(nn_ctx *ctx, layer *l, const nn_conv *L, const nn_bn *bn, int n, int h, int w, int relu, int sum) {
  int oh = (h + 2 * L->pad - L->k) / L->stride + 1, ow = (w + 2 * L->pad - L->k) / L->stride + 1, rc = 0;
  dnnl_memory_desc_t src, dst, wany, wplain, bias;
  dnnl_dims_t sd = {n, L->in, h, w}, dd = {n, L->out, oh, ow}, bd = {L->out};
  dnnl_dims_t strides = {L->stride, L->stride}, pads = {L->pad, L->pad};
  int g = L->groups, cg = L->in / g, og = L->out / g;
  dnnl_memory_desc_init_by_tag(&src, 4, sd, dnnl_f32, dnnl_nhwc);
  dnnl_memory_desc_init_by_tag(&dst, 4, dd, dnnl_f32, dnnl_nhwc);
  dnnl_memory_desc_init_by_tag(&bias, 1, bd, dnnl_f32, dnnl_a);
  if (g > 1) {
    dnnl_dims_t wd = {g, og, cg, L->k, L->k};
    dnnl_memory_desc_init_by_tag(&wany, 5, wd, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&wplain, 5, wd, dnnl_f32, dnnl_goihw);
  } else {
    dnnl_dims_t wd = {L->out, L->in, L->k, L->k};
    dnnl_memory_desc_init_by_tag(&wany, 4, wd, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&wplain, 4, wd, dnnl_f32, dnnl_oihw);
  }
  dnnl_convolution_desc_t cd;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t po = NULL;
  dnnl_primitive_desc_t pd = NULL, rpd = NULL;
  dnnl_primitive_t reorder = NULL;
  dnnl_memory_t wuser = NULL;
  float *wf = malloc(sizeof(float) * (size_t)L->out * cg * L->k * L->k);
  layer_clear(l);
  if (!wf || dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &src, &wany,
                                                &bias, &dst, strides, pads, pads) ||
      dnnl_primitive_attr_create(&attr) || dnnl_post_ops_create(&po) ||
      (sum && dnnl_post_ops_append_sum(po, 1.0f)) ||
      (relu && dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f)) ||
      dnnl_primitive_attr_set_post_ops(attr, po)) {
    rc = EMBR_ENOMEM;
    goto out;
  }
  const char *impl = "ref";
  if (dnnl_primitive_desc_create(&pd, &cd, attr, engine, NULL) ||
      dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) || !strncmp(impl, "ref", 3)) {
    l->unsupported = 1; /* oneDNN's reference kernel is far slower than ours */
    goto keyed;
  }
  const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
  l->src_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
  l->dst_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
  if (dnnl_primitive_create(&l->prim, pd) || dnnl_memory_create(&l->wmem, wmd, engine, DNNL_MEMORY_ALLOCATE) ||
      dnnl_memory_create(&l->bmem, &bias, engine, DNNL_MEMORY_ALLOCATE) ||
      dnnl_memory_create(&wuser, &wplain, engine, wf)) {
    rc = EMBR_ENOMEM;
    goto out;
  }
  void *bh = NULL;
  dnnl_memory_get_data_handle(l->bmem, &bh);
  fold(ctx, L, bn, wf, bh);
  dnnl_stream_t st = NULL;
  dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, wuser}, {DNNL_ARG_TO, l->wmem}};
  if (dnnl_reorder_primitive_desc_create(&rpd, &wplain, engine, wmd, engine, NULL) ||
      dnnl_primitive_create(&reorder, rpd) || dnnl_stream_create(&st, engine, dnnl_stream_default_flags) ||
      dnnl_primitive_execute(reorder, st, 2, ra) || dnnl_stream_wait(st))
    rc = EMBR_ENOMEM;
  if (st) dnnl_stream_destroy(st);
  if (rc) goto out;
keyed:
  l->version = ctx->P->version + 1;
  l->n = n, l->h = h, l->w = w, l->nt = ctx->nt, l->relu = relu, l->sum = sum, l->bn = bn != NULL;
out:
  if (rc) layer_clear(l);
  if (reorder) dnnl_primitive_destroy(reorder);
  if (rpd) dnnl_primitive_desc_destroy(rpd);
  if (wuser) dnnl_memory_destroy(wuser);
  if (pd) dnnl_primitive_desc_destroy(pd);
  if (po) dnnl_post_ops_destroy(po);
  if (attr) dnnl_primitive_attr_destroy(attr);
  free(wf);
  return rc ? embr_error(rc, "oneDNN: could not set up a %dx%d convolution", L->k, L->k) : 0;
}

static int run(nn_ctx *ctx, const nn_conv *L, const nn_bn *bn, const nn_t *x, nn_t *y, const nn_t *res, int relu) {
  layer *l = layer_of(ctx->P, L->widx);
  if (!l) return embr_error(EMBR_ENOMEM, "out of memory");
  int sum = res != NULL, rc;
  if (l->version != ctx->P->version + 1 || l->n != x->n || l->h != x->h || l->w != x->w || l->nt != ctx->nt ||
      l->relu != relu || l->sum != sum || l->bn != (bn != NULL))
    if ((rc = build(ctx, l, L, bn, x->n, x->h, x->w, relu, sum))) return rc;
  if (l->unsupported) return EMBR_EUNSUPPORTED;
  const float *src = x->d;
  float *tmp = NULL;
  if (!x->nhwc) { /* the network's input: NCHW */
    if (!(tmp = embr__nn_scratch(ctx, nn_numel(x)))) return ctx->rc;
    embr__nn_relayout(x->d, tmp, x->n, x->c, x->h, x->w, 1, ctx->nt);
    src = tmp;
  }
  if (res) memcpy(y->d, res->d, sizeof(float) * (size_t)nn_numel(y)); /* the sum post-op adds into dst */
  dnnl_memory_t ms = NULL, md = NULL;
  dnnl_stream_t st = NULL;
  rc = 0;
  if (dnnl_memory_create(&ms, &l->src_md, engine, (void *)src) || dnnl_memory_create(&md, &l->dst_md, engine, y->d) ||
      dnnl_stream_create(&st, engine, dnnl_stream_default_flags)) {
    rc = embr_error(EMBR_ENOMEM, "oneDNN: out of memory");
  } else {
    dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, l->wmem}, {DNNL_ARG_BIAS, l->bmem}, {DNNL_ARG_DST, md}};
    if (dnnl_primitive_execute(l->prim, st, 4, a) || dnnl_stream_wait(st))
      rc = embr_error(EMBR_EUNSUPPORTED, "oneDNN: a convolution failed");
  }
  if (st) dnnl_stream_destroy(st);
  if (ms) dnnl_memory_destroy(ms);
  if (md) dnnl_memory_destroy(md);
  embr__nn_scratch_put(ctx, tmp);
  y->nhwc = 1;
  return rc;
}

int embr__dnnl_conv_fwd(nn_ctx *ctx, const nn_conv *L, const nn_bn *bn, const nn_t *x, nn_t *y, const nn_t *res,
                        int relu) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, engine_init);
  if (!engine_ok || (res && !res->nhwc)) return EMBR_EUNSUPPORTED;
  /* oneDNN's threads: ctx->nt for this call, the caller's count restored (see the top). */
  int saved = omp_get_max_threads();
  if (saved != ctx->nt) omp_set_num_threads(ctx->nt);
  int rc = run(ctx, L, bn, x, y, res, relu);
  if (saved != ctx->nt) omp_set_num_threads(saved);
  return rc;
}

#endif

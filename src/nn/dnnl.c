/* oneDNN convolutions for inference: batch norm folded into the weights and bias, the residual
 * add (a binary post-op reading the shortcut where it lies: no copy) and ReLU or PReLU as oneDNN
 * post-ops, so that each convolution is one pass over memory; activations NHWC (oneDNN's brgemm kernels take NHWC as is;
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
                        int relu, const float *prelu, int prelu_ch, int *prelu_apart) {
  (void)ctx, (void)L, (void)bn, (void)x, (void)y, (void)res, (void)relu, (void)prelu, (void)prelu_ch;
  *prelu_apart = 0;
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
  int prelu;       /* 0: none, else the PReLU's channel count (1: one shared slope) */
  int copy_res;    /* the residual is a sum post-op onto dst holding it: written there in place by
                      the caller (sum 2), or copied (no fast kernel for the binary add) */
  int prelu_apart; /* no fast kernel with the PReLU post-op: the caller applies it */
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

/* The post-op chain: the residual (binary add of a tensor shaped as dst, or, copy_res, a sum onto
 * dst holding a copy of it), then ReLU or PReLU (slopes per channel: mask bit 1; shared: 0). */
static int post_ops(dnnl_primitive_attr_t attr, const dnnl_memory_desc_t *dst, int sum, int copy_res, int relu,
                    int prelu) {
  dnnl_post_ops_t po = NULL;
  int bad = dnnl_post_ops_create(&po) != dnnl_success;
  if (!bad && sum)
    bad = copy_res ? dnnl_post_ops_append_sum(po, 1.0f) : dnnl_post_ops_append_binary(po, dnnl_binary_add, dst);
  if (!bad && relu) bad = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f) != dnnl_success;
  if (!bad && prelu) bad = dnnl_post_ops_append_prelu(po, prelu > 1 ? 2 : 0) != dnnl_success;
  if (!bad) bad = dnnl_primitive_attr_set_post_ops(attr, po) != dnnl_success;
  if (po) dnnl_post_ops_destroy(po);
  return bad;
}

/* A primitive descriptor with an optimised kernel for this post-op chain, or NULL (only the
 * reference kernel). */
static dnnl_primitive_desc_t make_pd(const dnnl_convolution_desc_t *cd, const dnnl_memory_desc_t *dst, int sum,
                                     int copy_res, int relu, int prelu, int *bad) {
  dnnl_primitive_attr_t attr = NULL;
  dnnl_primitive_desc_t pd = NULL;
  const char *impl = "ref";
  if (dnnl_primitive_attr_create(&attr) || post_ops(attr, dst, sum, copy_res, relu, prelu)) {
    *bad = 1;
  } else if (dnnl_primitive_desc_create(&pd, cd, attr, engine, NULL) ||
             dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) || !strncmp(impl, "ref", 3)) {
    if (pd) dnnl_primitive_desc_destroy(pd);
    pd = NULL;
  }
  if (attr) dnnl_primitive_attr_destroy(attr);
  return pd;
}

static int build(nn_ctx *ctx, layer *l, const nn_conv *L, const nn_bn *bn, int n, int h, int w, int relu, int sum,
                 int prelu) {
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
  dnnl_primitive_desc_t pd = NULL, rpd = NULL;
  dnnl_primitive_t reorder = NULL;
  dnnl_memory_t wuser = NULL;
  float *wf = malloc(sizeof(float) * (size_t)L->out * cg * L->k * L->k);
  int bad = 0, copy_res = 0;
  layer_clear(l);
  if (!wf || dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &src, &wany,
                                                &bias, &dst, strides, pads, pads)) {
    rc = EMBR_ENOMEM;
    goto out;
  }
  /* The most fused chain with a fast kernel: the residual read in place, then copied; PReLU in
   * the chain, then apart. */
  int apart = 0;
  for (int k = 0; k < 4 && !pd && !bad; k++) {
    copy_res = (k & 1) || sum == 2, apart = k >> 1; /* sum 2: dst holds the residual already */
    if ((copy_res && !sum) || (apart && !prelu)) continue;
    pd = make_pd(&cd, &dst, sum, copy_res, relu, apart ? 0 : prelu, &bad);
  }
  if (bad) {
    rc = EMBR_ENOMEM;
    goto out;
  }
  if (!pd) {
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
  l->prelu = prelu, l->copy_res = copy_res, l->prelu_apart = apart;
out:
  if (rc) layer_clear(l);
  if (reorder) dnnl_primitive_destroy(reorder);
  if (rpd) dnnl_primitive_desc_destroy(rpd);
  if (wuser) dnnl_memory_destroy(wuser);
  if (pd) dnnl_primitive_desc_destroy(pd);
  free(wf);
  return rc ? embr_error(rc, "oneDNN: could not set up a %dx%d convolution", L->k, L->k) : 0;
}

static int run(nn_ctx *ctx, const nn_conv *L, const nn_bn *bn, const nn_t *x, nn_t *y, const nn_t *res, int relu,
               const float *slopes, int prelu, int *prelu_apart) {
  layer *l = layer_of(ctx->P, L->widx);
  if (!l) return embr_error(EMBR_ENOMEM, "out of memory");
  int sum = !res ? 0 : res->d == y->d ? 2 : 1, rc;
  if (l->version != ctx->P->version + 1 || l->n != x->n || l->h != x->h || l->w != x->w || l->nt != ctx->nt ||
      l->relu != relu || l->sum != sum || l->bn != (bn != NULL) || l->prelu != prelu)
    if ((rc = build(ctx, l, L, bn, x->n, x->h, x->w, relu, sum, prelu))) return rc;
  if (l->unsupported) return EMBR_EUNSUPPORTED;
  *prelu_apart = l->prelu_apart;
  if (l->prelu_apart) prelu = 0;
  const float *src = x->d;
  float *tmp = NULL;
  if (!x->nhwc) { /* the network's input: NCHW */
    if (!(tmp = embr__nn_scratch(ctx, nn_numel(x)))) return ctx->rc;
    embr__nn_relayout(x->d, tmp, x->n, x->c, x->h, x->w, 1, ctx->nt);
    src = tmp;
  }
  if (res && l->copy_res && res->d != y->d) /* the sum post-op adds into dst */
    memcpy(y->d, res->d, sizeof(float) * (size_t)nn_numel(y));
  dnnl_memory_t ms = NULL, md = NULL, mr = NULL, mp = NULL;
  dnnl_memory_desc_t pmd;
  dnnl_dims_t pdims = {prelu};
  dnnl_memory_desc_init_by_tag(&pmd, 1, pdims, dnnl_f32, dnnl_a);
  dnnl_stream_t st = NULL;
  rc = 0;
  if (dnnl_memory_create(&ms, &l->src_md, engine, (void *)src) || dnnl_memory_create(&md, &l->dst_md, engine, y->d) ||
      (res && !l->copy_res && dnnl_memory_create(&mr, &l->dst_md, engine, res->d)) ||
      (prelu && dnnl_memory_create(&mp, &pmd, engine, (void *)slopes)) ||
      dnnl_stream_create(&st, engine, dnnl_stream_default_flags)) {
    rc = embr_error(EMBR_ENOMEM, "oneDNN: out of memory");
  } else {
    dnnl_exec_arg_t a[6] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, l->wmem}, {DNNL_ARG_BIAS, l->bmem}, {DNNL_ARG_DST, md}};
    int na = 4, idx = 0; /* post-op index: the residual comes first */
    if (res && !l->copy_res) a[na++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, mr};
    if (res) idx++;
    if (relu) idx++;
    if (prelu) a[na++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(idx) | DNNL_ARG_WEIGHTS, mp};
    if (dnnl_primitive_execute(l->prim, st, na, a) || dnnl_stream_wait(st))
      rc = embr_error(EMBR_EUNSUPPORTED, "oneDNN: a convolution failed");
  }
  if (st) dnnl_stream_destroy(st);
  if (ms) dnnl_memory_destroy(ms);
  if (md) dnnl_memory_destroy(md);
  if (mr) dnnl_memory_destroy(mr);
  if (mp) dnnl_memory_destroy(mp);
  embr__nn_scratch_put(ctx, tmp);
  y->nhwc = 1;
  return rc;
}

int embr__dnnl_conv_fwd(nn_ctx *ctx, const nn_conv *L, const nn_bn *bn, const nn_t *x, nn_t *y, const nn_t *res,
                        int relu, const float *prelu, int prelu_ch, int *prelu_apart) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, engine_init);
  if (!engine_ok || (res && !res->nhwc)) return EMBR_EUNSUPPORTED;
  /* oneDNN's threads: ctx->nt for this call, the caller's count restored (see the top). */
  int saved = omp_get_max_threads();
  if (saved != ctx->nt) omp_set_num_threads(ctx->nt);
  *prelu_apart = 0;
  int rc = run(ctx, L, bn, x, y, res, relu, prelu, prelu ? prelu_ch : 0, prelu_apart);
  if (saved != ctx->nt) omp_set_num_threads(saved);
  return rc;
}

#endif

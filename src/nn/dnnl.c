/* oneDNN convolutions for inference: batch norm folded into the weights and bias, the residual
 * add (a binary post-op reading the shortcut where it lies: no copy) and ReLU or PReLU as oneDNN
 * post-ops, so that each convolution is one pass over memory; activations NHWC (oneDNN's brgemm kernels take NHWC as is;
 * on NCHW it falls back to an im2col GEMM that runs 1x1 convolutions 20x slower), or blocked
 * nChw16c for the layers where Winograd or the blocked direct kernel is faster (choose()).
 * Contexts running at once over one parameter table (embr_model_embed's batch split) keep their
 * primitives in separate cache slots.
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

/* Element (image i, channel 16 cb + j, pixel p) of layout f lies at i c hw + cb so + p ps + j js. */
static void strides_of(int f, int64_t c, int64_t hw, int64_t *so, int64_t *ps, int64_t *js) {
  *so = f == NN_NHWC ? 16 : 16 * hw;
  *ps = f == NN_NCHW ? 1 : f == NN_NHWC ? c : 16;
  *js = f == NN_NCHW ? hw : 1;
}

void embr__nn_relayout_to(const float *src, int from, float *dst, int to, int n, int c, int h, int w, int nt) {
  const int64_t hw = (int64_t)h * w, nb = (c + 15) / 16;
  int64_t fo, fp, fj, to_o, tp, tj;
  strides_of(from, c, hw, &fo, &fp, &fj);
  strides_of(to, c, hw, &to_o, &tp, &tj);
#pragma omp parallel for num_threads(nt) schedule(static) collapse(2)
  for (int i = 0; i < n; i++)
    for (int64_t p = 0; p < hw; p++) {
      const float *s = src + (int64_t)i * c * hw + p * fp;
      float *d = dst + (int64_t)i * c * hw + p * tp;
      for (int64_t cb = 0; cb < nb; cb++) {
        const int m = c - 16 * cb < 16 ? (int)(c - 16 * cb) : 16; /* a partial block: NCHW/NHWC only */
        for (int j = 0; j < m; j++) d[cb * to_o + j * tj] = s[cb * fo + j * fj];
      }
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
int embr__dnnl_reserve(nn_params *P, int nslot) {
  (void)P, (void)nslot;
  return 0;
}
int embr__dnnl_cached_layers(const nn_params *P) {
  (void)P;
  return 0;
}

#else

/* One convolution's compiled state, for one input shape, thread count and post-op set. */
typedef struct layer {
  uint64_t version; /* P->version + 1 when built (0: empty) */
  int n, h, w, nt, relu, sum, bn;
  int xl;          /* the input's layout (NN_NCHW, NN_NHWC, NN_BLK16) */
  int fmt;         /* the layout the layer runs in (src and dst): NN_NHWC or NN_BLK16 */
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
  int n;     /* entries per slot: one per parameter of P (indexed by the weight's index) */
  int nslot; /* slots: one per inference context running at once over P (nn_ctx.slot) */
  layer *l;  /* slot s, weight w: l[s * n + w] */
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
  for (int i = 0; i < c->n * c->nslot; i++) layer_clear(&c->l[i]);
  free(c->l);
  free(c);
  P->dnnl = NULL;
}

int embr__dnnl_cached_layers(const nn_params *P) {
  const cache *c = P->dnnl;
  int k = 0;
  for (int i = 0; c && i < c->n * c->nslot; i++) k += c->l[i].prim != NULL;
  return k;
}

int embr__dnnl_reserve(nn_params *P, int nslot) {
  cache *c = P->dnnl;
  if (c && c->nslot >= nslot) return 0;
  layer *l = calloc((size_t)P->n * (size_t)nslot, sizeof(layer));
  if (!l || (!c && !(c = calloc(1, sizeof(cache))))) {
    free(l);
    return embr_error(EMBR_ENOMEM, "out of memory");
  }
  if (c->l) memcpy(l, c->l, sizeof(layer) * (size_t)c->n * (size_t)c->nslot); /* the entries move, unchanged */
  free(c->l);
  c->l = l, c->n = P->n, c->nslot = nslot;
  P->dnnl = c;
  return 0;
}

static layer *layer_of(nn_params *P, int widx, int slot) {
  cache *c = P->dnnl;
  if ((!c || c->nslot <= slot) && embr__dnnl_reserve(P, slot + 1)) return NULL;
  c = P->dnnl;
  return widx >= 0 && widx < c->n ? &c->l[(int64_t)slot * c->n + widx] : NULL;
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

/* The layout and algorithm of a layer, from per-layer timings of oneDNN 2.6 on AVX-512
 * (docs/benchmarks.md). One thread per op (a batch split across threads), batch 16, thread CPU
 * time: Winograd F(4x4, 3x3) (jit_wino_4x3, nChw16c only) runs the stride-1 3x3 layers at 1.4-1.8x
 * brgemm's rate on NHWC on maps from 28x28 down to 7x7; on 4x4 maps the blocked direct kernel
 * (jit:avx512_core) is 1.6x brgemm and level with Winograd. Two threads per op, batch 32: Winograd
 * wins only on maps of 28x28 (too few tiles per thread below), brgemm elsewhere but on 4x4 maps.
 * A strided layer keeps a blocked input blocked (within 12 % of brgemm, and a reorder saved). PReLU
 * layers stay NHWC (its pass reads NHWC). */
static int choose(const nn_conv *L, int xl, int oh, int ow, int prelu, int nt, int *wino) {
  *wino = 0;
  const char *e = getenv("EMBR_DNNL_LAYOUT");
  if ((e && !strcmp(e, "nhwc")) || L->groups != 1 || L->in % 16 || L->out % 16 || prelu) return NN_NHWC;
  if (L->k == 3 && L->stride == 1 && L->in == L->out && L->in >= 64 && oh * ow >= (nt == 1 ? 25 : 400)) {
    *wino = 1;
    return NN_BLK16;
  }
  if (L->k == 3 && oh * ow <= 16) return NN_BLK16;
  return L->stride > 1 && xl == NN_BLK16 ? NN_BLK16 : NN_NHWC;
}

static int build(nn_ctx *ctx, layer *l, const nn_conv *L, const nn_bn *bn, int n, int h, int w, int relu, int sum,
                 int prelu, int xl, int fmt, int wino) {
  int oh = (h + 2 * L->pad - L->k) / L->stride + 1, ow = (w + 2 * L->pad - L->k) / L->stride + 1, rc = 0;
  dnnl_memory_desc_t src, dst, wany, wplain, bias;
  dnnl_dims_t sd = {n, L->in, h, w}, dd = {n, L->out, oh, ow}, bd = {L->out};
  dnnl_dims_t strides = {L->stride, L->stride}, pads = {L->pad, L->pad};
  int g = L->groups, cg = L->in / g, og = L->out / g;
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
  if (!wf) {
    rc = EMBR_ENOMEM;
    goto out;
  }
  /* The chosen layout and algorithm, else the direct kernel in that layout, else direct on NHWC;
   * in each, the most fused chain with a fast kernel: the residual read in place, then copied;
   * PReLU in the chain, then apart. */
  const int cfmt[3] = {fmt, fmt, NN_NHWC}, calg[3] = {wino, 0, 0};
  int apart = 0;
  for (int c = 0; c < 3 && !pd && !bad; c++) {
    if (c && cfmt[c] == cfmt[c - 1] && calg[c] == calg[c - 1]) continue;
    dnnl_format_tag_t tag = cfmt[c] == NN_BLK16 ? dnnl_nChw16c : dnnl_nhwc;
    dnnl_memory_desc_init_by_tag(&src, 4, sd, dnnl_f32, tag);
    dnnl_memory_desc_init_by_tag(&dst, 4, dd, dnnl_f32, tag);
    if (dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                           calg[c] ? dnnl_convolution_winograd : dnnl_convolution_direct, &src, &wany,
                                           &bias, &dst, strides, pads, pads))
      continue;
    for (int k = 0; k < 4 && !pd && !bad; k++) {
      copy_res = (k & 1) || sum == 2, apart = k >> 1; /* sum 2: dst holds the residual already */
      if ((copy_res && !sum) || (apart && !prelu)) continue;
      pd = make_pd(&cd, &dst, sum, copy_res, relu, apart ? 0 : prelu, &bad);
    }
    l->fmt = cfmt[c];
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
  l->prelu = prelu, l->copy_res = copy_res, l->prelu_apart = apart, l->xl = xl;
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
  layer *l = layer_of(ctx->P, L->widx, ctx->slot);
  if (!l) return embr_error(EMBR_ENOMEM, "out of memory");
  int wino, fmt = choose(L, x->nhwc, y->h, y->w, prelu, ctx->nt, &wino);
  /* sum 2: dst holds the residual when the convolution runs (written over it, or converted into
   * it from another layout) */
  int sum = !res ? 0 : res->d == y->d || res->nhwc != fmt ? 2 : 1, rc;
  if (l->version != ctx->P->version + 1 || l->n != x->n || l->h != x->h || l->w != x->w || l->nt != ctx->nt ||
      l->relu != relu || l->sum != sum || l->bn != (bn != NULL) || l->prelu != prelu || l->xl != x->nhwc)
    if ((rc = build(ctx, l, L, bn, x->n, x->h, x->w, relu, sum, prelu, x->nhwc, fmt, wino))) return rc;
  /* (a residual read in place by a binary post-op must be in the layer's layout: not so only if
   * the chosen layout had no kernel, then the reference path runs) */
  if (l->unsupported || (res && res->nhwc != l->fmt && !l->copy_res)) return EMBR_EUNSUPPORTED;
  *prelu_apart = l->prelu_apart;
  if (l->prelu_apart) prelu = 0;
  const float *src = x->d;
  float *tmp = NULL;
  if (x->nhwc != l->fmt) { /* the network's input (NCHW), or a layer boundary between layouts */
    if (!(tmp = embr__nn_scratch(ctx, nn_numel(x)))) return ctx->rc;
    embr__nn_relayout_to(x->d, x->nhwc, tmp, l->fmt, x->n, x->c, x->h, x->w, ctx->nt);
    src = tmp;
  }
  if (res && res->nhwc != l->fmt) { /* the sum post-op adds into dst: the residual converted there */
    float *r = res->d == y->d ? embr__nn_scratch(ctx, nn_numel(y)) : y->d;
    if (!r) {
      embr__nn_scratch_put(ctx, tmp);
      return ctx->rc;
    }
    embr__nn_relayout_to(res->d, res->nhwc, r, l->fmt, y->n, y->c, y->h, y->w, ctx->nt);
    if (r != y->d) memcpy(y->d, r, sizeof(float) * (size_t)nn_numel(y)), embr__nn_scratch_put(ctx, r);
  } else if (res && l->copy_res && res->d != y->d) { /* the sum post-op adds into dst */
    memcpy(y->d, res->d, sizeof(float) * (size_t)nn_numel(y));
  }
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
  y->nhwc = l->fmt;
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

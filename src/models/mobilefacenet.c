/* MobileFaceNet (Chen et al. 2018): depthwise-separable inverted bottlenecks with PReLU, a global
 * depthwise convolution (GDC) in place of global pooling, then a linear layer to the embedding
 * and batch norm. Widths scale with `width` (64 = the paper's network). Parameter names follow the
 * common PyTorch implementation (conv1.conv, conv_23.conv_dw.bn, conv_3.model.0.project.conv...). */
#include <stdio.h>
#include <stdlib.h>

#include "models/models.h"

/* Conv + BN (+ PReLU): the implementation's Conv_block and, without PReLU, Linear_block. */
typedef struct cbp {
  nn_conv conv;
  nn_bn bn;
  nn_prelu pr;
  int act;
} cbp;

typedef struct dwblock {
  cbp expand, dw, project;
  int residual;
} dwblock;

typedef struct mfn {
  cbp conv1, conv2_dw;
  dwblock blocks[16];
  int nb;
  cbp sep, gdc;
  nn_linear linear;
  nn_bn bn;
} mfn;

/* prefix + suffix into n (160 bytes); names are far shorter, a truncation is a bug. */
static const char *join(char *n, const char *prefix, const char *suffix) {
  if (snprintf(n, 160, "%s%s", prefix, suffix) >= 160) n[0] = 0;
  return n;
}

static int make_cbp(nn_params *P, cbp *c, const char *prefix, int in, int out, int k, int s, int pad, int groups, int act) {
  char n[160];
  int rc;
  if ((rc = embr__nn_conv_make(P, &c->conv, join(n, prefix, ".conv"), in, out, k, s, pad, groups, 0))) return rc;
  if ((rc = embr__nn_bn_make(P, &c->bn, join(n, prefix, ".bn"), out))) return rc;
  c->act = act;
  if (!act) return 0;
  return embr__nn_prelu_make(P, &c->pr, join(n, prefix, ".prelu"), out);
}

/* Depth_Wise: 1x1 expand to `mid` (PReLU), 3x3 depthwise with the stride (PReLU), 1x1 project. */
static int make_dw(nn_params *P, dwblock *b, const char *prefix, int in, int out, int mid, int stride, int residual) {
  char n[160];
  int rc;
  if ((rc = make_cbp(P, &b->expand, join(n, prefix, ".conv"), in, mid, 1, 1, 0, 1, 1))) return rc;
  if ((rc = make_cbp(P, &b->dw, join(n, prefix, ".conv_dw"), mid, mid, 3, stride, 1, mid, 1))) return rc;
  b->residual = residual;
  return make_cbp(P, &b->project, join(n, prefix, ".project"), mid, out, 1, 1, 0, 1, 0);
}

static int side_after(int s) { /* four stride-2 3x3 convolutions with padding 1 */
  for (int i = 0; i < 4; i++) s = (s - 1) / 2 + 1;
  return s;
}

static int build(nn_params *P, const embr_model_params *p, void **out) {
  if (p->input.height != p->input.width)
    return embr_error(EMBR_EINVAL, "mobilefacenet needs a square input (got %dx%d)", p->input.width, p->input.height);
  if (p->width % 8) return embr_error(EMBR_EINVAL, "mobilefacenet width must be a multiple of 8 (got %d)", p->width);
  mfn *m = embr_calloc(1, sizeof(mfn));
  if (!m) return embr_error(EMBR_ENOMEM, "out of memory");
  *out = m;
  int w = p->width, c64 = w, c128 = 2 * w, c256 = 4 * w, c512 = 8 * w, rc = 0;
  /* The network's stages: (name, repeats, in, out, expand, stride); repeats > 0 are residual. */
  static const struct {
    const char *name;
    int reps, in, out, mid, stride;
  } st[6] = {{"conv_23", 0, 1, 1, 2, 2}, {"conv_3", 4, 1, 1, 2, 1}, {"conv_34", 0, 1, 2, 4, 2},
             {"conv_4", 6, 2, 2, 4, 1},  {"conv_45", 0, 2, 2, 8, 2}, {"conv_5", 2, 2, 2, 4, 1}};
  rc = make_cbp(P, &m->conv1, "conv1", p->input.channels, c64, 3, 2, 1, 1, 1);
  if (!rc) rc = make_cbp(P, &m->conv2_dw, "conv2_dw", c64, c64, 3, 1, 1, c64, 1);
  for (int s = 0; s < 6 && !rc; s++) {
    int reps = st[s].reps ? st[s].reps : 1;
    for (int i = 0; i < reps && !rc; i++) {
      char n[64];
      if (st[s].reps) snprintf(n, sizeof(n), "%s.model.%d", st[s].name, i);
      else snprintf(n, sizeof(n), "%s", st[s].name);
      rc = make_dw(P, &m->blocks[m->nb++], n, st[s].in * c64, st[s].out * c64, st[s].mid * c64, st[s].stride,
                   st[s].reps > 0);
    }
  }
  int k = side_after(p->input.height);
  if (!rc) rc = make_cbp(P, &m->sep, "conv_6_sep", c128, c512, 1, 1, 0, 1, 1);
  if (!rc) rc = make_cbp(P, &m->gdc, "conv_6_dw", c512, c512, k, 1, 0, c512, 0);
  if (!rc) rc = embr__nn_linear_make(P, &m->linear, "linear", c512, p->embedding_dim, 0);
  if (!rc) rc = embr__nn_bn_make(P, &m->bn, "bn", p->embedding_dim);
  (void)c256;
  return rc;
}

/* res: the block's input added after the batch norm (project of a residual block), or NULL. */
static nn_t *cbp_forward(nn_ctx *ctx, const cbp *c, nn_t *x, nn_t *res) {
  return embr__nn_conv_bn_act(ctx, x, &c->conv, &c->bn, res, c->act ? NN_ACT_PRELU : NN_ACT_NONE, &c->pr);
}

static nn_t *forward(nn_ctx *ctx, const void *netp, nn_t *x) {
  const mfn *m = netp;
  nn_t *y = cbp_forward(ctx, &m->conv2_dw, cbp_forward(ctx, &m->conv1, x, NULL), NULL);
  for (int i = 0; i < m->nb; i++) {
    const dwblock *b = &m->blocks[i];
    if (b->residual) embr__nn_pin(y); /* read again by the residual add */
    nn_t *in = y, *z = cbp_forward(ctx, &b->dw, cbp_forward(ctx, &b->expand, y, NULL), NULL);
    if (b->residual) embr__nn_unpin_keep(in); /* the add below is its last reader and consumes it */
    y = cbp_forward(ctx, &b->project, z, b->residual ? in : NULL);
  }
  y = embr__nn_flatten(ctx, cbp_forward(ctx, &m->gdc, cbp_forward(ctx, &m->sep, y, NULL), NULL));
  return embr__nn_batchnorm(ctx, embr__nn_linear_f(ctx, y, &m->linear), &m->bn);
}

static void destroy(void *netp) { embr_free(netp); }

const net_ops embr__mobilefacenet_ops = {"mobilefacenet", build, forward, destroy};

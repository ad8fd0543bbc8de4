/* ResNet with BasicBlocks (He et al. 2016), 18 and 34 layers, parameter names as torchvision's
 * (conv1, bn1, layerN.i.conv1 ..., downsample.0/1) so that its weights load by name. Inputs of
 * 64 pixels and more take the ImageNet stem (7x7 stride 2 and max pooling); smaller ones (MNIST)
 * a 3x3 stride-1 stem. The embedding head: global average pooling, fc to the embedding size, and
 * a batch norm ("features") as ArcFace's networks end. */
#include <stdio.h>
#include <stdlib.h>

#include "models/models.h"

typedef struct block {
  nn_conv c1, c2, down;
  nn_bn b1, b2, bd;
  int has_down;
} block;

typedef struct resnet {
  int big_stem;
  nn_conv stem;
  nn_bn stem_bn;
  block *blocks;
  int nblocks;
  nn_linear fc;
  nn_bn feat;
} resnet;

static int make_block(nn_params *P, block *b, const char *prefix, int in, int out, int stride) {
  char n[160];
  int rc = 0;
  snprintf(n, sizeof(n), "%s.conv1", prefix), rc |= embr__nn_conv_make(P, &b->c1, n, in, out, 3, stride, 1, 1, 0);
  snprintf(n, sizeof(n), "%s.bn1", prefix), rc |= embr__nn_bn_make(P, &b->b1, n, out);
  snprintf(n, sizeof(n), "%s.conv2", prefix), rc |= embr__nn_conv_make(P, &b->c2, n, out, out, 3, 1, 1, 1, 0);
  snprintf(n, sizeof(n), "%s.bn2", prefix), rc |= embr__nn_bn_make(P, &b->b2, n, out);
  b->has_down = stride != 1 || in != out;
  if (b->has_down) {
    snprintf(n, sizeof(n), "%s.downsample.0", prefix), rc |= embr__nn_conv_make(P, &b->down, n, in, out, 1, stride, 0, 1, 0);
    snprintf(n, sizeof(n), "%s.downsample.1", prefix), rc |= embr__nn_bn_make(P, &b->bd, n, out);
  }
  return rc ? embr_error(EMBR_ENOMEM, "out of memory building ResNet") : 0;
}

static int build(nn_params *P, const embr_model_params *p, void **out, const int *depth) {
  resnet *r = embr_calloc(1, sizeof(resnet));
  if (!r) return embr_error(EMBR_ENOMEM, "out of memory");
  *out = r;
  int w = p->width, rc = 0;
  r->big_stem = p->input.height >= 64 && p->input.width >= 64;
  rc |= embr__nn_conv_make(P, &r->stem, "conv1", p->input.channels, w, r->big_stem ? 7 : 3, r->big_stem ? 2 : 1,
                     r->big_stem ? 3 : 1, 1, 0);
  rc |= embr__nn_bn_make(P, &r->stem_bn, "bn1", w);
  for (int s = 0; s < 4; s++) r->nblocks += depth[s];
  r->blocks = embr_calloc((size_t)r->nblocks, sizeof(block));
  if (!r->blocks) return embr_error(EMBR_ENOMEM, "out of memory");
  int in = w, k = 0;
  for (int s = 0; s < 4 && !rc; s++)
    for (int i = 0; i < depth[s] && !rc; i++, k++) {
      char prefix[64];
      snprintf(prefix, sizeof(prefix), "layer%d.%d", s + 1, i);
      int out_ch = w << s;
      rc = make_block(P, &r->blocks[k], prefix, in, out_ch, s > 0 && i == 0 ? 2 : 1);
      in = out_ch;
    }
  rc |= embr__nn_linear_make(P, &r->fc, "fc", in, p->embedding_dim, 1);
  rc |= embr__nn_bn_make(P, &r->feat, "features", p->embedding_dim);
  return rc ? (rc < 0 ? rc : EMBR_ENOMEM) : 0;
}

static int build18(nn_params *P, const embr_model_params *p, void **out) {
  static const int d[4] = {2, 2, 2, 2};
  return build(P, p, out, d);
}
static int build34(nn_params *P, const embr_model_params *p, void **out) {
  static const int d[4] = {3, 4, 6, 3};
  return build(P, p, out, d);
}

static nn_t *block_forward(nn_ctx *ctx, const block *b, nn_t *x) {
  embr__nn_pin(x); /* read twice: by the first convolution and by the shortcut */
  nn_t *y = embr__nn_conv_bn_act(ctx, x, &b->c1, &b->b1, NULL, NN_ACT_RELU, NULL);
  nn_t *sc = b->has_down ? embr__nn_conv_bn_act(ctx, x, &b->down, &b->bd, NULL, NN_ACT_NONE, NULL) : x;
  /* x's last reader: the add consumes the shortcut (and may write its output over it). */
  if (b->has_down) embr__nn_unpin(ctx, x);
  else embr__nn_unpin_keep(x);
  return embr__nn_conv_bn_act(ctx, y, &b->c2, &b->b2, sc, NN_ACT_RELU, NULL);
}

static nn_t *forward(nn_ctx *ctx, const void *netp, nn_t *x) {
  const resnet *r = netp;
  nn_t *y = embr__nn_conv_bn_act(ctx, x, &r->stem, &r->stem_bn, NULL, NN_ACT_RELU, NULL);
  if (r->big_stem) y = embr__nn_maxpool(ctx, y, 3, 2, 1);
  for (int k = 0; k < r->nblocks; k++) y = block_forward(ctx, &r->blocks[k], y);
  y = embr__nn_flatten(ctx, embr__nn_global_avgpool(ctx, y));
  return embr__nn_batchnorm(ctx, embr__nn_linear_f(ctx, y, &r->fc), &r->feat);
}

static void destroy(void *netp) {
  resnet *r = netp;
  if (r) embr_free(r->blocks);
  embr_free(r);
}

const net_ops embr__resnet18_ops = {"resnet18", build18, forward, destroy};
const net_ops embr__resnet34_ops = {"resnet34", build34, forward, destroy};

/* The pre-LN transformer shared by the ViT and the CLIP text tower: x + attn(ln_1(x)), then
 * x + mlp(ln_2(x)) per block, with OpenAI CLIP's parameter names so that its checkpoints load by
 * name (Hugging Face's names are mapped onto these by the CLIP loader), or timm's /
 * facebookresearch DINO's names for DINO's ViT, whose blocks may also scale each branch
 * (DINOv2's LayerScale) and drop it per sample in training (stochastic depth). */
#include <math.h>
#include <stdio.h>

#include "models/transformer.h"

static int make_block(nn_params *P, tf_block *b, const char *prefix, int w, float attn_std, float proj_std,
                      float fc_std) {
  char n[160], m[160];
  int rc = 0;
  b->ls1 = b->ls2 = -1, b->drop_path = 0;
  snprintf(n, sizeof n, "%s.ln_1", prefix), rc |= embr__nn_ln_make(P, &b->ln1, n, w);
  snprintf(n, sizeof n, "%s.attn.in_proj_weight", prefix), snprintf(m, sizeof m, "%s.attn.in_proj_bias", prefix);
  rc |= embr__nn_dense_make(P, &b->qkv, n, m, w, 3 * w, 0, attn_std);
  snprintf(n, sizeof n, "%s.attn.out_proj.weight", prefix), snprintf(m, sizeof m, "%s.attn.out_proj.bias", prefix);
  rc |= embr__nn_dense_make(P, &b->out, n, m, w, w, 0, proj_std);
  snprintf(n, sizeof n, "%s.ln_2", prefix), rc |= embr__nn_ln_make(P, &b->ln2, n, w);
  snprintf(n, sizeof n, "%s.mlp.c_fc.weight", prefix), snprintf(m, sizeof m, "%s.mlp.c_fc.bias", prefix);
  rc |= embr__nn_dense_make(P, &b->fc, n, m, w, 4 * w, 0, fc_std);
  snprintf(n, sizeof n, "%s.mlp.c_proj.weight", prefix), snprintf(m, sizeof m, "%s.mlp.c_proj.bias", prefix);
  rc |= embr__nn_dense_make(P, &b->proj, n, m, 4 * w, w, 0, proj_std);
  return rc ? embr_error(EMBR_ENOMEM, "out of memory building a transformer") : 0;
}

int embr__tf_make(nn_params *P, tf_stack *s, const char *prefix, int width, int layers, int heads, int causal,
                  tf_act act) {
  if (heads < 1 || width % heads)
    return embr_error(EMBR_EINVAL, "transformer width %d is not a multiple of %d heads", width, heads);
  s->b = embr_calloc((size_t)layers, sizeof(tf_block));
  if (!s->b) return embr_error(EMBR_ENOMEM, "out of memory");
  s->layers = layers, s->width = width, s->heads = heads, s->causal = causal, s->act = act;
  /* OpenAI's initialize_parameters: attention width^-0.5, projections width^-0.5 (2 layers)^-0.5,
   * the MLP's first layer (2 width)^-0.5. */
  float attn = 1.0f / sqrtf((float)width), proj = attn / sqrtf(2.0f * (float)layers);
  float fc = 1.0f / sqrtf(2.0f * (float)width);
  for (int i = 0; i < layers; i++) {
    char n[128];
    snprintf(n, sizeof n, "%s.resblocks.%d", prefix, i);
    int rc = make_block(P, &s->b[i], n, width, attn, proj, fc);
    if (rc) return rc;
  }
  return 0;
}

static int make_block_timm(nn_params *P, tf_block *b, const char *prefix, int w, int layer_scale) {
  static const char *dense[4][2] = {{"attn.qkv", "3"}, {"attn.proj", "1"}, {"mlp.fc1", "4"}, {"mlp.fc2", "1"}};
  nn_dense *d[4] = {&b->qkv, &b->out, &b->fc, &b->proj};
  char n[160], m[160];
  int rc = 0;
  b->ls1 = b->ls2 = -1, b->drop_path = 0;
  snprintf(n, sizeof n, "%s.norm1", prefix), rc |= embr__nn_ln_make(P, &b->ln1, n, w);
  snprintf(n, sizeof n, "%s.norm2", prefix), rc |= embr__nn_ln_make(P, &b->ln2, n, w);
  b->ln1.eps = b->ln2.eps = 1e-6f;
  for (int i = 0; i < 4; i++) {
    int in = i == 3 ? 4 * w : w, out = w * (dense[i][1][0] - '0');
    snprintf(n, sizeof n, "%s.%s.weight", prefix, dense[i][0]), snprintf(m, sizeof m, "%s.%s.bias", prefix, dense[i][0]);
    rc |= embr__nn_dense_make(P, d[i], n, m, in, out, 0, 0.02f);
  }
  if (layer_scale) {
    int64_t s1[1] = {w};
    snprintf(n, sizeof n, "%s.ls1.gamma", prefix);
    if ((b->ls1 = embr__nn_param_add(P, n, 1, s1, NN_NODECAY, NN_INIT_CONST, 1e-5f)) < 0) rc = 1;
    snprintf(n, sizeof n, "%s.ls2.gamma", prefix);
    if ((b->ls2 = embr__nn_param_add(P, n, 1, s1, NN_NODECAY, NN_INIT_CONST, 1e-5f)) < 0) rc = 1;
  }
  return rc ? embr_error(EMBR_ENOMEM, "out of memory building a transformer") : 0;
}

int embr__tf_make_timm(nn_params *P, tf_stack *s, const char *prefix, int width, int layers, int heads,
                       int layer_scale, float drop_path) {
  if (heads < 1 || width % heads)
    return embr_error(EMBR_EINVAL, "transformer width %d is not a multiple of %d heads", width, heads);
  if (!(drop_path >= 0 && drop_path < 1)) return embr_error(EMBR_EINVAL, "drop-path rate %g is not in [0, 1)", (double)drop_path);
  s->b = embr_calloc((size_t)layers, sizeof(tf_block));
  if (!s->b) return embr_error(EMBR_ENOMEM, "out of memory");
  s->layers = layers, s->width = width, s->heads = heads, s->causal = 0, s->act = TF_GELU;
  for (int i = 0; i < layers; i++) {
    char n[128];
    snprintf(n, sizeof n, "%s.%d", prefix, i);
    int rc = make_block_timm(P, &s->b[i], n, width, layer_scale);
    if (rc) return rc;
    /* torch.linspace(0, rate, depth)[i], in float as there */
    s->b[i].drop_path = layers > 1 ? drop_path * (float)i / (float)(layers - 1) : 0;
  }
  return 0;
}

void embr__tf_free(tf_stack *s) {
  if (s) embr_free(s->b);
}

static nn_t *block_forward(nn_ctx *ctx, const tf_stack *s, const tf_block *b, nn_t *x) {
  embr__nn_pin(x); /* read by ln_1 and by the residual add */
  nn_t *h = embr__nn_dense_f(ctx, embr__nn_layernorm(ctx, x, &b->ln1), &b->qkv);
  h = embr__nn_dense_f(ctx, embr__nn_attention(ctx, h, s->heads, s->causal), &b->out);
  if (b->ls1 >= 0) h = embr__nn_scale_cols(ctx, h, b->ls1);
  h = embr__nn_drop_path(ctx, h, b->drop_path);
  nn_t *y = embr__nn_add(ctx, x, h);
  embr__nn_unpin(ctx, x);
  embr__nn_pin(y);
  h = embr__nn_dense_f(ctx, embr__nn_layernorm(ctx, y, &b->ln2), &b->fc);
  h = s->act == TF_QUICK_GELU ? embr__nn_quick_gelu(ctx, h) : embr__nn_gelu(ctx, h);
  h = embr__nn_dense_f(ctx, h, &b->proj);
  if (b->ls2 >= 0) h = embr__nn_scale_cols(ctx, h, b->ls2);
  nn_t *z = embr__nn_add(ctx, y, embr__nn_drop_path(ctx, h, b->drop_path));
  embr__nn_unpin(ctx, y);
  return z;
}

nn_t *embr__tf_forward(nn_ctx *ctx, const tf_stack *s, nn_t *x) {
  for (int i = 0; i < s->layers && x; i++) x = block_forward(ctx, s, &s->b[i], x);
  return x;
}

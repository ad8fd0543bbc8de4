/* CLIP (Radford et al. 2021): a ViT image tower and a causal text transformer projected into one
 * joint space, with a learnable temperature. Parameter names as OpenAI's state dict (visual.*,
 * token_embedding.weight, positional_embedding, transformer.resblocks.N.*, ln_final,
 * text_projection, logit_scale), so its checkpoints load by name; clip_load.c maps Hugging Face's
 * names onto these. The text tower pools the EOT token: the position of each row's largest id, as
 * OpenAI's encode_text does (EOT is the last id of the vocabulary). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/clip.h"

typedef struct clip_preset {
  const char *name;
  int size, embed;
  embr_transformer_params vision, text;
} clip_preset;

static const clip_preset presets[] = {
    {"clip-tiny", 64, 256, {192, 6, 3, 8, 0, 0}, {256, 4, 4, 0, 32, 49408}},
    {"clip-vit-b-32", 224, 512, {768, 12, 12, 32, 0, 0}, {512, 12, 8, 0, 77, 49408}},
    {"clip-vit-b-16", 224, 512, {768, 12, 12, 16, 0, 0}, {512, 12, 8, 0, 77, 49408}},
};

int embr__clip_arch(const char *arch) {
  if (!arch) return 0;
  if (!strcmp(arch, "clip")) return 1;
  for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
    if (!strcmp(arch, presets[i].name)) return 1;
  return 0;
}

int embr__clip_fill(embr_model_params *p) {
  for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
    const clip_preset *c = &presets[i];
    if (strcmp(p->arch, c->name)) continue;
    p->embedding_dim = c->embed;
    p->input = embr_image_spec_clip(c->size);
    p->vision = c->vision, p->text = c->text;
    return 1;
  }
  return 0;
}

static int check_tower(const char *which, const embr_transformer_params *t, int text) {
  if (t->width < 1 || t->width > 8192 || t->layers < 1 || t->layers > 256 || t->heads < 1 || t->width % t->heads)
    return embr_error(EMBR_EINVAL, "%s tower: width %d, %d layers, %d heads out of range (width a multiple of heads)",
                      which, t->width, t->layers, t->heads);
  if (text && (t->context < 2 || t->context > 4096 || t->vocab < 3 || t->vocab > 1 << 20))
    return embr_error(EMBR_EINVAL, "text tower: context %d or vocabulary %d out of range", t->context, t->vocab);
  if (!text && (t->patch < 1 || t->patch > 1024))
    return embr_error(EMBR_EINVAL, "image tower: patch %d out of range", t->patch);
  return 0;
}

int embr__clip_check(const embr_model_params *p) {
  if (p->embedding_dim < 1 || p->embedding_dim > 65536)
    return embr_error(EMBR_EINVAL, "joint embedding dimension %d out of range", p->embedding_dim);
  int rc = check_tower("image", &p->vision, 0);
  if (!rc) rc = check_tower("text", &p->text, 1);
  if (rc) return rc;
  if (p->input.channels != 3 || p->input.height != p->input.width || p->input.height % p->vision.patch)
    return embr_error(EMBR_EINVAL, "CLIP's image input must be 3 x S x S with S a multiple of the patch %d (got %dx%dx%d)",
                      p->vision.patch, p->input.channels, p->input.height, p->input.width);
  if (p->activation < EMBR_ACT_DEFAULT || p->activation > EMBR_ACT_QUICK_GELU)
    return embr_error(EMBR_EINVAL, "unknown activation %d", (int)p->activation);
  return 0;
}

static int build(nn_params *P, const embr_model_params *p, void **out) {
  clip_net *c = embr_calloc(1, sizeof(clip_net));
  if (!c) return embr_error(EMBR_ENOMEM, "out of memory");
  *out = c;
  tf_act act = p->activation == EMBR_ACT_GELU ? TF_GELU : TF_QUICK_GELU;
  const embr_transformer_params *v = &p->vision, *t = &p->text;
  vit_cfg vc = {p->input.height, v->patch, v->width, v->layers, v->heads, p->embedding_dim, act, 0, 0, 0, 0};
  int rc = embr__vit_make(P, &c->visual, "visual", &vc);
  if (rc) return rc;
  c->context = t->context, c->vocab = t->vocab, c->width = t->width;
  int64_t se[2] = {t->vocab, t->width}, sp[2] = {t->context, t->width}, s1[1] = {1};
  if ((c->tok = embr__nn_param_add(P, "token_embedding.weight", 2, se, NN_WEIGHT, NN_INIT_NORMAL, 0.02f)) < 0 ||
      (c->pos = embr__nn_param_add(P, "positional_embedding", 2, sp, NN_NODECAY, NN_INIT_NORMAL, 0.01f)) < 0)
    return EMBR_ENOMEM;
  if ((rc = embr__tf_make(P, &c->tf, "transformer", t->width, t->layers, t->heads, 1, act))) return rc;
  rc |= embr__nn_ln_make(P, &c->ln_final, "ln_final", t->width);
  rc |= embr__nn_dense_make(P, &c->proj, "text_projection", NULL, t->width, p->embedding_dim, 1,
                            1.0f / sqrtf((float)t->width));
  if (rc) return rc < 0 ? rc : EMBR_ENOMEM;
  /* ln(1/0.07), as OpenAI initialises it; stored as the log, clamped at ln 100 when used. */
  if ((c->logit_scale = embr__nn_param_add(P, "logit_scale", 1, s1, NN_NODECAY, NN_INIT_CONST, logf(1 / 0.07f))) < 0)
    return EMBR_ENOMEM;
  return 0;
}

static nn_t *forward_image(nn_ctx *ctx, const void *cn, nn_t *x) {
  return embr__vit_forward(ctx, &((const clip_net *)cn)->visual, x);
}

/* The causal mask means no token sees a later one, so positions after the last EOT of the batch
 * cannot change any pooled output: the tower runs only the first max(eot) + 1 positions (a
 * caption of 10 tokens costs 11 positions, not 77), with results identical to the full length. */
nn_t *embr__clip_forward_text(nn_ctx *ctx, const clip_net *c, const int32_t *ids, int B) {
  int32_t *eot = embr__nn_alloc(ctx, sizeof(int32_t) * (size_t)(B ? B : 1));
  if (!eot) return NULL;
  int T = 1;
  for (int b = 0; b < B; b++) { /* the first position of the row's largest id */
    const int32_t *r = ids + (int64_t)b * c->context;
    eot[b] = 0;
    for (int i = 1; i < c->context; i++)
      if (r[i] > r[eot[b]]) eot[b] = i;
    if (eot[b] + 1 > T) T = eot[b] + 1;
  }
  const int32_t *run = ids;
  if (T < c->context) { /* rows of T ids */
    int32_t *cut = embr__nn_alloc(ctx, sizeof(int32_t) * (size_t)B * (size_t)T);
    if (!cut) return NULL;
    for (int b = 0; b < B; b++) memcpy(cut + (int64_t)b * T, ids + (int64_t)b * c->context, sizeof(int32_t) * (size_t)T);
    run = cut;
  }
  nn_t *x = embr__nn_embed_tokens(ctx, run, B, T, c->tok, c->vocab, c->pos, c->width);
  x = embr__nn_layernorm(ctx, embr__tf_forward(ctx, &c->tf, x), &c->ln_final);
  return embr__nn_dense_f(ctx, embr__nn_take_token(ctx, x, eot), &c->proj);
}

static void destroy(void *cn) {
  clip_net *c = cn;
  if (!c) return;
  embr__vit_free(&c->visual);
  embr__tf_free(&c->tf);
  embr_free(c);
}

const net_ops embr__clip_ops = {"clip", build, forward_image, destroy};

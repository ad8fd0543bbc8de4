/* Loading CLIP checkpoints users already have, saved as safetensors without embr's metadata:
 * OpenAI's state-dict names (visual.transformer.resblocks.N.attn.in_proj_weight, visual.proj,
 * text_projection, ...) load by name; Hugging Face CLIPModel names
 * (vision_model.encoder.layers.N.self_attn.q_proj.weight, visual_projection.weight, ...) are
 * mapped onto them: q/k/v projections concatenated into the fused in_proj, the two projections
 * transposed (nn.Linear's (out, in) against OpenAI's x @ W). The configuration is read off the
 * shapes; heads (not in a state dict) are width / 64 as OpenAI's build_model computes them. */
#include <stdio.h>
#include <string.h>

#include "models/clip.h"

enum { OPENAI = 1, HF = 2 };

int embr__clip_is_foreign(const nn_st *st) {
  if (embr__nn_st_find(st, "visual.conv1.weight") && embr__nn_st_find(st, "text_projection")) return OPENAI;
  if (embr__nn_st_find(st, "vision_model.embeddings.patch_embedding.weight") &&
      embr__nn_st_find(st, "text_model.embeddings.token_embedding.weight"))
    return HF;
  return 0;
}

/* The source tensors of parameter `name` in a Hugging Face file: up to 3 (q, k, v) concatenated
 * along the first dimension, or one, transposed when *tr. */
static int hf_source(const char *name, char src[3][160], int *tr) {
  static const char *fixed[][2] = {
      {"visual.class_embedding", "vision_model.embeddings.class_embedding"},
      {"visual.positional_embedding", "vision_model.embeddings.position_embedding.weight"},
      {"visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight"},
      {"visual.ln_pre.weight", "vision_model.pre_layrnorm.weight"},
      {"visual.ln_pre.bias", "vision_model.pre_layrnorm.bias"},
      {"visual.ln_post.weight", "vision_model.post_layernorm.weight"},
      {"visual.ln_post.bias", "vision_model.post_layernorm.bias"},
      {"visual.proj", "visual_projection.weight"},
      {"token_embedding.weight", "text_model.embeddings.token_embedding.weight"},
      {"positional_embedding", "text_model.embeddings.position_embedding.weight"},
      {"ln_final.weight", "text_model.final_layer_norm.weight"},
      {"ln_final.bias", "text_model.final_layer_norm.bias"},
      {"text_projection", "text_projection.weight"},
      {"logit_scale", "logit_scale"}};
  static const char *block[][2] = {{"ln_1.", "layer_norm1."}, {"ln_2.", "layer_norm2."},
                                   {"attn.out_proj.", "self_attn.out_proj."}, {"mlp.c_fc.", "mlp.fc1."},
                                   {"mlp.c_proj.", "mlp.fc2."}};
  *tr = !strcmp(name, "visual.proj") || !strcmp(name, "text_projection");
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
    if (!strcmp(name, fixed[i][0])) return snprintf(src[0], 160, "%s", fixed[i][1]), 1;
  const char *tower = !strncmp(name, "visual.", 7) ? "vision_model" : "text_model";
  const char *rest = strstr(name, "resblocks.");
  if (!rest) return 0;
  int layer, k;
  if (sscanf(rest, "resblocks.%d.%n", &layer, &k) != 1) return 0;
  rest += k;
  for (size_t i = 0; i < sizeof block / sizeof block[0]; i++) {
    size_t l = strlen(block[i][0]);
    if (!strncmp(rest, block[i][0], l))
      return snprintf(src[0], 160, "%s.encoder.layers.%d.%s%s", tower, layer, block[i][1], rest + l), 1;
  }
  const char *kind = !strcmp(rest, "attn.in_proj_weight") ? "weight" : !strcmp(rest, "attn.in_proj_bias") ? "bias" : NULL;
  if (!kind) return 0;
  static const char qkv[3] = {'q', 'k', 'v'};
  for (int i = 0; i < 3; i++)
    snprintf(src[i], 160, "%s.encoder.layers.%d.self_attn.%c_proj.%s", tower, layer, qkv[i], kind);
  return 3;
}

/* Checks the sources of parameter q (their presence, dtype and shapes) and, when dst is set,
 * reads them into dst. */
static int param_sources(const nn_st *st, const char *path, int naming, const nn_param *q, float *dst, float *tmp) {
  char src[3][160];
  int tr = 0, n = 1;
  if (naming == HF) n = hf_source(q->name, src, &tr);
  else snprintf(src[0], 160, "%s", q->name);
  if (n < 1) return embr_error(EMBR_EFORMAT, "%s: no source tensor for '%s'", path, q->name);
  int64_t rows = q->shape[0] / n;
  for (int i = 0; i < n; i++) {
    const nn_st_tensor *t = embr__nn_st_find(st, src[i]);
    if (!t) return embr_error(EMBR_EFORMAT, "%s: tensor '%s' is missing", path, src[i]);
    if (t->dtype >= NN_ST_FLOAT_DTYPES)
      return embr_error(EMBR_EFORMAT, "%s: tensor '%s' has dtype %s (F32, F16 or BF16 expected)", path, src[i],
                        embr__nn_st_dtype_name(t->dtype));
    int ok = t->ndim == q->ndim || (q->ndim == 1 && q->shape[0] == 1 && t->ndim == 0); /* logit_scale: [] */
    if (t->ndim == q->ndim && q->ndim == 2 && tr) ok = t->shape[0] == q->shape[1] && t->shape[1] == q->shape[0];
    else if (t->ndim == q->ndim)
      for (int d = 0; d < q->ndim && ok; d++) ok = t->shape[d] == (d == 0 ? rows : q->shape[d]);
    if (!ok || t->numel * n != q->numel)
      return embr_error(EMBR_EFORMAT, "%s: tensor '%s' has the wrong shape for '%s' of this configuration", path,
                        src[i], q->name);
    if (!dst) continue;
    if (tr) {
      embr__nn_st_read_f32(t, tmp);
      int64_t r = t->shape[0], c = t->shape[1];
      for (int64_t a = 0; a < r; a++)
        for (int64_t b = 0; b < c; b++) dst[b * r + a] = tmp[a * c + b];
    } else {
      embr__nn_st_read_f32(t, dst + i * t->numel);
    }
  }
  return 0;
}

static const nn_st_tensor *need(const nn_st *st, const char *path, const char *name, int ndim, int *rc) {
  const nn_st_tensor *t = *rc ? NULL : embr__nn_st_find(st, name);
  if (!*rc && (!t || t->ndim != ndim)) {
    *rc = embr_error(EMBR_EFORMAT, "%s: tensor '%s' is %s", path, name, t ? "not of the expected rank" : "missing");
    return NULL;
  }
  for (int d = 0; t && d < ndim; d++)
    if (t->shape[d] < 1 || t->shape[d] > (1 << 24)) {
      *rc = embr_error(EMBR_EFORMAT, "%s: tensor '%s' has an implausible size", path, name);
      return NULL;
    }
  return t;
}

/* Layers: the number of consecutive blocks prefix.N.suffix that exist. */
static int count_layers(const nn_st *st, const char *prefix, const char *suffix) {
  char n[160];
  int l = 0;
  for (;; l++) {
    snprintf(n, sizeof n, "%s.%d.%s", prefix, l, suffix);
    if (!embr__nn_st_find(st, n) || l >= 256) return l;
  }
}

static int infer_config(const nn_st *st, const char *path, int naming, embr_model_params *p) {
  int rc = 0, hf = naming == HF;
  const nn_st_tensor *conv = need(st, path, hf ? "vision_model.embeddings.patch_embedding.weight" : "visual.conv1.weight", 4, &rc);
  const nn_st_tensor *vpos = need(st, path, hf ? "vision_model.embeddings.position_embedding.weight" : "visual.positional_embedding", 2, &rc);
  const nn_st_tensor *vproj = need(st, path, hf ? "visual_projection.weight" : "visual.proj", 2, &rc);
  const nn_st_tensor *tok = need(st, path, hf ? "text_model.embeddings.token_embedding.weight" : "token_embedding.weight", 2, &rc);
  const nn_st_tensor *tpos = need(st, path, hf ? "text_model.embeddings.position_embedding.weight" : "positional_embedding", 2, &rc);
  if (rc) return rc;
  int64_t grid2 = vpos->shape[0] - 1, g = 0;
  while ((g + 1) * (g + 1) <= grid2) g++;
  if (g < 1 || g * g != grid2 || conv->shape[2] != conv->shape[3])
    return embr_error(EMBR_EFORMAT, "%s: the image positional embedding (%lld rows) is not 1 + a square grid", path,
                      (long long)vpos->shape[0]);
  p->vision.width = (int)conv->shape[0], p->vision.patch = (int)conv->shape[2];
  p->input = embr_image_spec_clip((int)(g * conv->shape[2]));
  p->embedding_dim = (int)(hf ? vproj->shape[0] : vproj->shape[1]);
  p->text.vocab = (int)tok->shape[0], p->text.width = (int)tok->shape[1], p->text.context = (int)tpos->shape[0];
  const char *ln = hf ? "layer_norm1.weight" : "ln_1.weight";
  p->vision.layers = count_layers(st, hf ? "vision_model.encoder.layers" : "visual.transformer.resblocks", ln);
  p->text.layers = count_layers(st, hf ? "text_model.encoder.layers" : "transformer.resblocks", ln);
  /* OpenAI's build_model: heads = width / 64 (at least 1) unless the caller knows better. */
  if (!p->vision.heads) p->vision.heads = p->vision.width >= 64 ? p->vision.width / 64 : 1;
  if (!p->text.heads) p->text.heads = p->text.width >= 64 ? p->text.width / 64 : 1;
  return 0;
}

int embr__clip_load_foreign(const nn_st *st, const char *path, const embr_model_params *hint, embr_model **out) {
  *out = NULL;
  int naming = embr__clip_is_foreign(st);
  if (!naming) {
    if (embr__nn_st_find(st, "visual.layer1.0.conv1.weight"))
      return embr_error(EMBR_EUNSUPPORTED, "%s: a ResNet CLIP image tower (RN50...): only ViT towers are supported", path);
    return embr_error(EMBR_EFORMAT, "%s: not a CLIP state dict (neither OpenAI's nor Hugging Face's names)", path);
  }
  embr_model_params p = embr_model_params_default();
  p.arch = "clip";
  if (hint) p.vision.heads = hint->vision.heads, p.text.heads = hint->text.heads, p.activation = hint->activation;
  int rc = infer_config(st, path, naming, &p);
  if (!rc) rc = embr__model_build(&p, 0, 0, out);
  if (rc) return rc == EMBR_EINVAL ? embr_error(EMBR_EFORMAT, "%s: %s", path, embr_last_error()) : rc;
  nn_params *P = &(*out)->P;
  int64_t big = 1;
  for (int i = 0; i < P->n; i++) { /* every source checked before anything is allocated */
    if ((rc = param_sources(st, path, naming, &P->p[i], NULL, NULL))) break;
    if (P->p[i].numel > big) big = P->p[i].numel;
  }
  float *tmp = rc ? NULL : embr_alloc(sizeof(float) * (size_t)big);
  if (!rc && !tmp) rc = embr_error(EMBR_ENOMEM, "out of memory");
  if (!rc) rc = embr__nn_params_init(P, 0);
  for (int i = 0; i < P->n && !rc; i++) {
    float *d = P->data + P->p[i].off;
    rc = param_sources(st, path, naming, &P->p[i], d, tmp);
    for (int64_t j = 0; j < P->p[i].numel && !rc; j++)
      if (!(d[j] - d[j] == 0)) rc = embr_error(EMBR_EVALUE, "%s: tensor for '%s' holds a non-finite value", path, P->p[i].name);
  }
  P->version++;
  embr_free(tmp);
  if (rc) {
    embr_model_free(*out);
    *out = NULL;
  }
  return rc;
}

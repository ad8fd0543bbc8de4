/* Loading ViT backbones users already have, saved as safetensors without embr's metadata:
 * facebookresearch DINO / DINOv2 state dicts (embr's own names: cls_token, pos_embed,
 * patch_embed.proj.*, blocks.N.*, norm.*), possibly under one prefix ("module.", "backbone.",
 * "teacher.backbone.", ... as a full training checkpoint stores them), and Hugging Face
 * Dinov2Model names, mapped onto them: the separate query/key/value projections concatenated
 * into the fused qkv, layer_scale1/2.lambda1 as ls1/ls2.gamma. Tensors the backbone lacks
 * (DINO's head, DINOv2's mask_token) are ignored. The configuration is read off the shapes;
 * heads (not in a state dict) are width / 64 as both repositories' ViT-S and ViT-B have. */
#include <stdio.h>
#include <string.h>

#include "models/dino_vit.h"

enum { FB = 1, HF = 2 };

static const char fb_key[] = "patch_embed.proj.weight", hf_key[] = "embeddings.patch_embeddings.projection.weight";

/* The naming and the prefix (the text before the patch projection's name, at a '.' boundary).
 * Several different prefixes (a checkpoint with teacher and student) are EMBR_EFORMAT: the
 * caller must pick one. Returns 0 when neither naming is found. */
static int find_naming(const nn_st *st, const char *path, char *prefix, size_t cap, int *rc) {
  int naming = 0, found = 0;
  *rc = 0;
  for (int i = 0; i < st->n; i++) {
    const char *n = st->t[i].name;
    size_t ln = strlen(n);
    for (int k = 0; k < 2; k++) {
      const char *key = k ? hf_key : fb_key;
      size_t lk = strlen(key);
      if (ln < lk || strcmp(n + ln - lk, key) || (ln > lk && n[ln - lk - 1] != '.') || ln - lk >= cap) continue;
      if (found && (naming != k + 1 || strncmp(prefix, n, ln - lk) || prefix[ln - lk])) {
        if (rc) *rc = embr_error(EMBR_EFORMAT, "%s: two ViT backbones in one file ('%s%s' and '%s'): save one of them", path,
                                 prefix, naming == HF ? hf_key : fb_key, n);
        return 0;
      }
      memcpy(prefix, n, ln - lk);
      prefix[ln - lk] = 0;
      naming = k + 1, found = 1;
    }
  }
  return naming;
}

int embr__dino_vit_is_foreign(const nn_st *st) {
  char prefix[128];
  int rc;
  int naming = find_naming(st, "", prefix, sizeof prefix, &rc);
  if (rc) return 1; /* two backbones: the loader says so */
  if (!naming) return 0;
  char n[192]; /* and its positions: a patch projection alone could be another network's */
  snprintf(n, sizeof n, "%s%s", prefix, naming == FB ? "pos_embed" : "embeddings.position_embeddings");
  return embr__nn_st_find(st, n) != NULL;
}

/* The source tensors of embr parameter `name` in the file: up to 3 (query, key, value)
 * concatenated along the first dimension, or one. */
static int source(int naming, const char *prefix, const char *name, char src[3][192]) {
  if (naming == FB) return snprintf(src[0], 192, "%s%s", prefix, name), 1;
  static const char *fixed[][2] = {{"cls_token", "embeddings.cls_token"},
                                   {"pos_embed", "embeddings.position_embeddings"},
                                   {"patch_embed.proj.weight", "embeddings.patch_embeddings.projection.weight"},
                                   {"patch_embed.proj.bias", "embeddings.patch_embeddings.projection.bias"},
                                   {"norm.weight", "layernorm.weight"},
                                   {"norm.bias", "layernorm.bias"}};
  static const char *block[][2] = {{"norm1.", "norm1."}, {"norm2.", "norm2."}, {"attn.proj.", "attention.output.dense."},
                                   {"mlp.fc1.", "mlp.fc1."}, {"mlp.fc2.", "mlp.fc2."},
                                   {"ls1.gamma", "layer_scale1.lambda1"}, {"ls2.gamma", "layer_scale2.lambda1"}};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
    if (!strcmp(name, fixed[i][0])) return snprintf(src[0], 192, "%s%s", prefix, fixed[i][1]), 1;
  int layer, k = 0;
  if (sscanf(name, "blocks.%d.%n", &layer, &k) != 1 || !k) return 0;
  const char *rest = name + k;
  for (size_t i = 0; i < sizeof block / sizeof block[0]; i++) {
    size_t l = strlen(block[i][0]);
    if (!strncmp(rest, block[i][0], l))
      return snprintf(src[0], 192, "%sencoder.layer.%d.%s%s", prefix, layer, block[i][1], rest + l), 1;
  }
  const char *kind = !strcmp(rest, "attn.qkv.weight") ? "weight" : !strcmp(rest, "attn.qkv.bias") ? "bias" : NULL;
  if (!kind) return 0;
  static const char *qkv[3] = {"query", "key", "value"};
  for (int i = 0; i < 3; i++)
    snprintf(src[i], 192, "%sencoder.layer.%d.attention.attention.%s.%s", prefix, layer, qkv[i], kind);
  return 3;
}

/* Checks the sources of parameter q (presence, dtype, shape) and, when dst is set, reads them. */
static int param_sources(const nn_st *st, const char *path, int naming, const char *prefix, const nn_param *q, float *dst) {
  char src[3][192];
  int n = source(naming, prefix, q->name, src);
  if (n < 1) return embr_error(EMBR_EFORMAT, "%s: no source tensor for '%s'", path, q->name);
  for (int i = 0; i < n; i++) {
    const nn_st_tensor *t = embr__nn_st_find(st, src[i]);
    if (!t) return embr_error(EMBR_EFORMAT, "%s: tensor '%s' is missing (not a ViT of this configuration)", path, src[i]);
    if (t->dtype >= NN_ST_FLOAT_DTYPES)
      return embr_error(EMBR_EFORMAT, "%s: tensor '%s' has dtype %s (F32, F16 or BF16 expected)", path, src[i],
                        embr__nn_st_dtype_name(t->dtype));
    int ok = t->ndim == q->ndim && t->numel * n == q->numel;
    for (int d = 0; d < q->ndim && ok; d++) ok = t->shape[d] == (d == 0 ? q->shape[0] / n : q->shape[d]);
    if (!ok) return embr_error(EMBR_EFORMAT, "%s: tensor '%s' has the wrong shape for '%s' of this configuration", path, src[i], q->name);
    if (dst) embr__nn_st_read_f32(t, dst + i * t->numel);
  }
  return 0;
}

static const nn_st_tensor *need(const nn_st *st, const char *path, const char *prefix, const char *name, int ndim, int *rc) {
  char n[192];
  snprintf(n, sizeof n, "%s%s", prefix, name);
  const nn_st_tensor *t = *rc ? NULL : embr__nn_st_find(st, n);
  if (!*rc && (!t || t->ndim != ndim)) {
    *rc = embr_error(EMBR_EFORMAT, "%s: tensor '%s' is %s", path, n,
                     t ? "not of the expected rank (not a DINO ViT)" : "missing (not a DINO ViT state dict in facebookresearch "
                                                                       "or Hugging Face names)");
    return NULL;
  }
  for (int d = 0; t && d < ndim; d++)
    if (t->shape[d] < 1 || t->shape[d] > (1 << 24)) {
      *rc = embr_error(EMBR_EFORMAT, "%s: tensor '%s' has an implausible size", path, n);
      return NULL;
    }
  return t;
}

static int count_layers(const nn_st *st, const char *prefix, const char *blocks) {
  char n[192];
  int l = 0;
  for (; l < 256; l++) {
    snprintf(n, sizeof n, "%s%s.%d.norm1.weight", prefix, blocks, l);
    if (!embr__nn_st_find(st, n)) break;
  }
  return l;
}

static int infer_config(const nn_st *st, const char *path, int naming, const char *prefix, embr_model_params *p) {
  int rc = 0, hf = naming == HF;
  const nn_st_tensor *conv = need(st, path, prefix, hf ? hf_key : fb_key, 4, &rc);
  const nn_st_tensor *pos = need(st, path, prefix, hf ? "embeddings.position_embeddings" : "pos_embed", 3, &rc);
  if (rc) return rc;
  int64_t grid2 = pos->shape[1] - 1, g = 0;
  while ((g + 1) * (g + 1) <= grid2) g++;
  if (g < 1 || g * g != grid2 || conv->shape[2] != conv->shape[3] || conv->shape[1] != 3 || conv->shape[2] > 1024)
    return embr_error(EMBR_EFORMAT, "%s: the positional embedding (%lld rows) is not 1 + a square grid, or the patch "
                      "projection is not 3 x P x P", path, (long long)pos->shape[1]);
  int w = (int)conv->shape[0], patch = (int)conv->shape[2];
  p->vision.width = w, p->vision.patch = patch;
  p->vision.layers = count_layers(st, prefix, hf ? "encoder.layer" : "blocks");
  if (!p->vision.heads) p->vision.heads = w >= 64 ? w / 64 : 1;
  p->pos_size = (int)(g * patch);
  int size = p->pos_size < 224 ? p->pos_size : 224 / patch * patch;
  if (size < patch) size = p->pos_size;
  p->input = embr__dino_vit_spec(size);
  p->embedding_dim = w;
  char n[192];
  snprintf(n, sizeof n, "%s%s", prefix, hf ? "encoder.layer.0.layer_scale1.lambda1" : "blocks.0.ls1.gamma");
  p->layer_scale = embr__nn_st_find(st, n) != NULL;
  if (!p->vision.layers)
    return embr_error(EMBR_EFORMAT, "%s: no transformer blocks ('%s%s.0.norm1.weight' is missing)", path, prefix,
                      hf ? "encoder.layer" : "blocks");
  return 0;
}

int embr__dino_vit_load_foreign(const nn_st *st, const char *path, const embr_model_params *hint, embr_model **out) {
  *out = NULL;
  char prefix[128] = "";
  int rc = 0, naming = find_naming(st, path, prefix, sizeof prefix, &rc);
  if (rc) return rc;
  if (!naming) naming = FB; /* names the first tensor missing */
  embr_model_params p = embr_model_params_default();
  p.arch = "vit";
  if (hint) p.vision.heads = hint->vision.heads, p.drop_path = hint->drop_path;
  rc = infer_config(st, path, naming, prefix, &p);
  if (!rc) rc = embr__model_build(&p, 0, 0, out);
  if (rc) return rc == EMBR_EINVAL ? embr_error(EMBR_EFORMAT, "%s: %s", path, embr_last_error()) : rc;
  nn_params *P = &(*out)->P;
  for (int i = 0; i < P->n && !rc; i++) rc = param_sources(st, path, naming, prefix, &P->p[i], NULL); /* before allocating */
  if (!rc) rc = embr__nn_params_init(P, 0);
  for (int i = 0; i < P->n && !rc; i++) {
    float *d = P->data + P->p[i].off;
    rc = param_sources(st, path, naming, prefix, &P->p[i], d);
    for (int64_t j = 0; j < P->p[i].numel && !rc; j++)
      if (!(d[j] - d[j] == 0)) rc = embr_error(EMBR_EVALUE, "%s: tensor for '%s' holds a non-finite value", path, P->p[i].name);
  }
  P->version++;
  if (rc) {
    embr_model_free(*out);
    *out = NULL;
  }
  return rc;
}

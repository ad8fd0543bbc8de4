/* DINO's Vision Transformer as an embr network (internal): see dino_vit.c. */
#ifndef EMBR_MODELS_DINO_VIT_H
#define EMBR_MODELS_DINO_VIT_H

#include "models/models.h"
#include "models/vit.h"

typedef struct dino_vit {
  vit v;
  int pool; /* embr_pool: what forward returns */
} dino_vit;

extern const net_ops embr__dino_vit_ops;
int embr__dino_vit_arch(const char *arch);            /* "vit" or a named configuration */
int embr__dino_vit_fill(embr_model_params *p);        /* a named configuration's sizes into p; 0 if not one */
int embr__dino_vit_check(const embr_model_params *p); /* EMBR_EINVAL naming the first size out of range */
embr_image_spec embr__dino_vit_spec(int size);        /* DINO's evaluation preprocessing at `size` */
/* Every token after the final norm, (B, 1 + patches, 1, width), in training or inference. */
nn_t *embr__dino_vit_tokens(nn_ctx *ctx, const dino_vit *d, nn_t *x);
/* Reads a ViT state dict without embr metadata (facebookresearch DINO / DINOv2 names, with a
 * prefix such as "module." or "teacher.backbone." when there is only one, or Hugging Face's
 * Dinov2Model names) into *out; heads are hint->vision.heads when set, else width / 64. A file
 * that is neither is EMBR_EFORMAT naming the file and the first tensor missing. */
int embr__dino_vit_load_foreign(const nn_st *st, const char *path, const embr_model_params *hint, embr_model **out);
int embr__dino_vit_is_foreign(const nn_st *st); /* 1 when st holds a ViT state dict in either naming */

#endif

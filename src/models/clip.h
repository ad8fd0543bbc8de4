/* CLIP's two towers (internal): see clip.c. */
#ifndef EMBR_MODELS_CLIP_H
#define EMBR_MODELS_CLIP_H

#include "models/models.h"
#include "models/vit.h"

typedef struct clip_net {
  vit visual;
  int context, vocab, width;
  int64_t tok, pos, logit_scale;
  tf_stack tf;
  nn_ln ln_final;
  nn_dense proj;
} clip_net;

extern const net_ops embr__clip_ops;
int embr__clip_arch(const char *arch);          /* "clip" or a named configuration */
int embr__clip_fill(embr_model_params *p);      /* a named configuration's sizes into p; 0 if not one */
int embr__clip_check(const embr_model_params *p); /* sizes in range, EMBR_EINVAL naming the first that is not */
/* ids (B x context; each row [sot] tokens [eot] 0...) -> (B, dim, 1, 1) text embeddings. */
nn_t *embr__clip_forward_text(nn_ctx *ctx, const clip_net *c, const int32_t *ids, int B);
/* Reads a CLIP state dict without embr metadata (OpenAI's or Hugging Face's names) into *out;
 * the configuration is inferred from the shapes, `hint` gives what shapes cannot tell (heads:
 * 0 = width / 64 as OpenAI's build_model; the activation). */
int embr__clip_load_foreign(const nn_st *st, const char *path, const embr_model_params *hint, embr_model **out);
/* 1 when st looks like a CLIP state dict (either naming). */
int embr__clip_is_foreign(const nn_st *st);

#endif

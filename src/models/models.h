/* Network architectures (internal): each registers its parameters into an nn_params table and
 * runs a forward pass through the nn ops. */
#ifndef EMBR_MODELS_MODELS_H
#define EMBR_MODELS_MODELS_H

#include "embr/model.h"
#include "nn/nn.h"

typedef struct net net;
typedef struct net_ops {
  const char *name;
  /* Registers the parameters; *out holds the layer descriptors. */
  int (*build)(nn_params *P, const embr_model_params *p, void **out);
  nn_t *(*forward)(nn_ctx *ctx, const void *net, nn_t *x);
  void (*destroy)(void *net);
} net_ops;

extern const net_ops embr__resnet18_ops, embr__resnet34_ops, embr__mobilefacenet_ops;
const net_ops *embr__net_find(const char *arch);

/* The training head over the embedding: a margin head (ArcFace family) or a linear classifier. */
typedef struct nn_head {
  int kind; /* 0: none, 1: linear (softmax), 2: margin */
  int classes;
  nn_linear lin;
  nn_margin mar;
} nn_head;

struct embr_model {
  char arch[32];
  embr_model_params p;
  const net_ops *ops;
  void *net;
  nn_params P;
  nn_head hd;
  nn_ctx infer; /* inference arena (no tape) */
  nn_ctx *split; /* embr_model_embed's per-thread contexts when a batch is split (src/models/model.c) */
  int nsplit;
  char **class_names;
  int nclass_names;
  int n_threads;
  /* CLIP: the tokenizer, and the merges file's bytes it was read from (saved with the model) */
  struct embr_bpe *bpe;
  unsigned char *bpe_bytes;
  size_t bpe_len;
};

/* Takes bytes (a CLIP merges file, owned by m afterwards, freed on error too) as m's tokenizer,
 * its first n_merges merges (0: CLIP's 48,894); bytes NULL: the byte-level tokenizer without
 * merges. `name` is used in messages. */
int embr__model_take_bpe(embr_model *m, unsigned char *bytes, size_t len, const char *name, int n_merges);

/* Builds a model with a head (kind 0: none), parameters registered but not initialised. */
int embr__model_build(const embr_model_params *p, int head_kind, int classes, embr_model **out);
nn_t *embr__model_forward(embr_model *m, nn_ctx *ctx, nn_t *x);

/* Reads a training checkpoint `st` (from `path`) into m's weights and the optimizer's moments,
 * and its position: *epoch in 0..max_epochs, *step in 0..max_step (both 0 or both not). Every
 * number is parsed strictly, every tensor matched and checked for NaN/Inf; an error names the
 * file and the key or tensor. On error m and opt may hold part of the checkpoint. */
int embr__checkpoint_read(embr_model *m, nn_optim *opt, const nn_st *st, const char *path, int max_epochs,
                          int64_t max_step, int *epoch, int64_t *step);

#endif

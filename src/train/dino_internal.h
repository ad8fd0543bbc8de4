/* DINO's training step (internal), separated from the loop so that a test can run it on any
 * backbone (tests/test_dino.c: an identity backbone against scripts/make_dino_head_ref.py, and the ViT
 * against scripts/make_dino_step_ref.py). */
#ifndef EMBR_TRAIN_DINO_INTERNAL_H
#define EMBR_TRAIN_DINO_INTERNAL_H

#include "models/dino.h"
#include "nn/nn.h"

/* The backbone's forward: images (n, C, S, S) -> (n, D, 1, 1). NULL in dino_side: identity. */
typedef nn_t *(*dino_backbone_fn)(void *model, nn_ctx *ctx, nn_t *x);

/* Student or teacher: one parameter table holding the backbone's parameters and the head's. */
typedef struct dino_side {
  nn_params *P;
  dino_backbone_fn backbone;
  void *net;
  dino_head head;
} dino_side;

/* What changes per step: the schedules' values at this iteration and epoch. */
typedef struct dino_point {
  double lr, wd, momentum, t_temp;
  int freeze_last; /* the last layer's gradient dropped (epoch < freeze_last_layer) */
} dino_point;

typedef struct dino_core {
  dino_side s, t;                  /* same layout: the EMA is one loop over the flat buffers */
  int n_global, n_local, channels, global_size, local_size;
  float s_temp, center_m, clip;
  int K;
  float *center, *tout;            /* K; n_global * batch * K */
  int batch;                       /* tout's capacity in images */
  nn_ctx tctx;                     /* the teacher's forward (no tape) */
  double entropy;                  /* the last step's mean teacher entropy */
} dino_core;

/* Allocates center (zeros) and the teacher buffers, inits tctx (nt threads). */
int embr__dino_core_init(dino_core *d, int batch, int nt);
void embr__dino_core_free(dino_core *d);
/* One step on B images (global: n_global*B crops view-major, local: n_local*B): teacher forward,
 * student forward (ctx records on d->s.P), loss, center update, backward, per-parameter clipping,
 * the last layer's gradient dropped when pt->freeze_last, AdamW (opt) at pt->lr with decay pt->wd,
 * teacher EMA at pt->momentum. Returns the loss; on error sets *rc (a non-finite loss or gradient
 * is EMBR_EVALUE before any weight changes). */
double embr__dino_step(dino_core *d, nn_ctx *ctx, nn_optim *opt, const float *global, const float *local, int B,
                       const dino_point *pt, int *rc);

/* DINO's get_params_groups on a table: no weight decay for names ending ".bias" and for 1-D
 * tensors (norms, LayerScale), decay for every other trained tensor (the ViT's cls_token and
 * pos_embed too, as the reference). Buffers stay buffers. */
void embr__dino_param_groups(nn_params *P);

/* The teacher temperature of epoch e (from 0): np.linspace(warm, final, warm_epochs)[e] during
 * the warm-up, then final (DINO's teacher_temp_schedule). */
double embr__dino_teacher_temp(double warm, double final, int warm_epochs, int e);

#endif

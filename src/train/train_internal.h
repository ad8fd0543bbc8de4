/* The training loop's pieces shared by the objectives (internal): a run (model, optimizer, step
 * context, schedule position), the epoch loop over an image loader calling the objective's step,
 * checkpoints and resume, divergence. train.c holds the classification objectives, clip_train.c
 * CLIP's contrastive one. */
#ifndef EMBR_TRAIN_INTERNAL_H
#define EMBR_TRAIN_INTERNAL_H

#include "models/models.h"

typedef struct run run;
/* One step on a loader batch (x: count images; labels: their dataset classes; items: their
 * dataset indices). Returns the loss; on error sets *rc. *correct counts hits for the accuracy. */
typedef double (*train_step_fn)(run *r, const float *x, const int32_t *labels, const int64_t *items, int count,
                                int64_t *correct, int *rc);

struct run {
  embr_model *m;
  const embr_train_params *p;
  nn_ctx ctx;
  nn_optim opt;
  int64_t step, total, warmup;
  int epoch0, epoch; /* epoch: the one running (0-based), for messages */
  train_step_fn step_fn;
  const int32_t *map; /* classification: dataset class -> head class */
  int32_t *lab;       /* classification: a batch of head classes */
  void *obj;          /* the objective's own state (CLIP: captions; DINO: teacher, center) */
  /* The objective's tensors saved in checkpoints after the model's and the optimizer's (DINO: the
   * teacher and the center), and read back on resume (after the weights and the position). */
  const nn_st_out *extra;
  int nextra;
  int (*resume_extra)(run *r, const nn_st *st, const char *path);
  /* DINO: batches from embr_loader_next_multicrop; step_fn gets the global crops as x and finds
   * the local ones here. The progress line shows the teacher's entropy in place of an accuracy. */
  int multicrop;
  const float *local;
  double aux; /* the last step's figure for the progress line (DINO: teacher entropy) */
};

/* Runs p->epochs over ds's loader (creates the step context, optimizer, schedule; resumes from
 * p->resume; checkpoints to p->checkpoint after each epoch). */
int embr__train_run(run *r, const embr_dataset *ds, const embr_loader_params *lp, embr_train_stats *st);
/* After the loss gradients are set: divergence check, backward, clipping, the optimizer step. */
double embr__train_finish_step(run *r, double loss, int *rc);
int embr__train_diverged(const run *r, const char *what, double v);
int embr__train_checkpoint(run *r, const char *path, int epoch);
int embr__train_resume(run *r, const char *path);
int embr__train_epochs(run *r, embr_loader *ld, embr_train_stats *st);

#endif

/* The training loop for classification-style embedding objectives (softmax baseline and the
 * ArcFace family): batches from the image loader, forward with a tape, the head's loss, backward,
 * clipping, the optimizer step on a warm-up + cosine schedule, progress, checkpoints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/train_internal.h"

embr_train_params embr_train_params_default(embr_objective obj) {
  embr_train_params p;
  memset(&p, 0, sizeof(p));
  p.objective = obj;
  p.m1 = 1, p.scale = 64;
  if (obj == EMBR_OBJ_ARCFACE || obj == EMBR_OBJ_COMBINED) p.m2 = 0.5f;
  if (obj == EMBR_OBJ_COSFACE) p.m3 = 0.35f;
  if (obj == EMBR_OBJ_SPHEREFACE) p.m1 = 1.35f;
  p.epochs = 20, p.batch = 64;
  p.lr = 0.1f, p.weight_decay = 5e-4f;
  p.warmup_epochs = 1, p.clip = 5;
  p.pad = 4, p.flip = 1;
  p.seed = 1;
  if (obj == EMBR_OBJ_CLIP) {
    p.epochs = 30, p.adamw = 1, p.lr = 5e-4f, p.weight_decay = 0.2f, p.clip = 1, p.flip = 0;
  }
  if (obj == EMBR_OBJ_DINO) { /* facebookresearch/dino's main_dino.py, the ViT-S/16 recipe */
    p.epochs = 100, p.adamw = 1, p.lr = 5e-4f, p.weight_decay = 0.04f, p.warmup_epochs = 10, p.clip = 3;
    p.pad = 0, p.flip = 0; /* the multi-crop pipeline has its own flips */
    p.dino_out = 4096, p.dino_hidden = 2048, p.dino_bottleneck = 256;
    p.local_crops = 8;
    p.global_scale[0] = 0.4f, p.global_scale[1] = 1, p.local_scale[0] = 0.05f, p.local_scale[1] = 0.4f;
    p.jitter_p = 0.8f, p.grayscale_p = 0.2f, p.solarize_p = 0.2f;
    p.blur_p[0] = 1.0f, p.blur_p[1] = 0.1f, p.blur_p[2] = 0.5f;
    p.student_temp = 0.1f, p.teacher_temp = 0.07f, p.warmup_teacher_temp = 0.04f, p.warmup_teacher_temp_epochs = 30;
    p.momentum_teacher = 0.996f, p.center_momentum = 0.9f, p.weight_decay_end = 0.4f, p.min_lr = 1e-6f;
    p.freeze_last_layer = 1, p.drop_path = 0.1f;
  }
  return p;
}

/* The head's initial weights come from their own stream of the seed (the loader splits the seed
 * into its own streams; the step context and the network's weights use it as given). */
enum { STREAM_HEAD = 1 };

/* Rebuilds m's parameter table with a fresh head of `classes` outputs; the network's weights
 * move over by name. */
static int set_head(embr_model *m, int kind, int classes, uint64_t seed) {
  if (m->hd.kind == kind && m->hd.classes == classes) return 0;
  embr_model *t;
  int rc = embr__model_build(&m->p, kind, classes, &t);
  if (!rc) rc = embr__nn_params_init(&t->P, embr_seed_split(seed, STREAM_HEAD));
  for (int i = 0; i < t->P.n && !rc; i++) {
    int j = embr__nn_param_find(&m->P, t->P.p[i].name);
    if (j >= 0 && m->P.p[j].numel == t->P.p[i].numel)
      memcpy(t->P.data + t->P.p[i].off, m->P.data + m->P.p[j].off, sizeof(float) * (size_t)t->P.p[i].numel);
  }
  if (rc) {
    embr_model_free(t);
    return rc;
  }
  /* Swap the insides: the caller's handle stays valid. */
  embr_model tmp = *m;
  *m = *t;
  *t = tmp;
  m->infer.P = &m->P;
  t->infer.P = &t->P;
  m->class_names = t->class_names, m->nclass_names = t->nclass_names;
  t->class_names = NULL, t->nclass_names = 0;
  embr_model_free(t);
  return 0;
}

/* Labels of the subset renumbered 0..k-1 in order of first class index; names kept for the model. */
static int compact_labels(embr_model *m, const embr_dataset *ds, const int64_t *subset, int64_t n, int32_t **map, int *k) {
  int nc = embr_dataset_classes(ds);
  *map = malloc(sizeof(int32_t) * (size_t)(nc ? nc : 1));
  if (!*map) return embr_error(EMBR_ENOMEM, "out of memory");
  char *used = calloc((size_t)nc + 1, 1);
  if (!used) return embr_error(EMBR_ENOMEM, "out of memory");
  for (int64_t i = 0; i < n; i++) used[embr_dataset_label(ds, subset ? subset[i] : i)] = 1;
  *k = 0;
  for (int c = 0; c < nc; c++) (*map)[c] = used[c] ? (*k)++ : -1;
  free(used);
  if (*k < 2) return embr_error(EMBR_EINVAL, "training needs at least 2 classes (the data has %d)", *k);
  for (int i = 0; i < m->nclass_names; i++) embr_free(m->class_names[i]);
  embr_free(m->class_names); /* the model's (src/models/model.c frees them with embr_free) */
  m->nclass_names = 0;
  m->class_names = embr_calloc((size_t)*k, sizeof(char *));
  if (!m->class_names) return embr_error(EMBR_ENOMEM, "out of memory");
  for (int c = 0; c < nc; c++)
    if ((*map)[c] >= 0 && !(m->class_names[m->nclass_names++] = embr_strdup(embr_dataset_class_name(ds, c))))
      return embr_error(EMBR_ENOMEM, "out of memory");
  return 0;
}

/* A loss or gradient that is NaN or Inf means training diverged: stop before the optimizer
 * spreads it into every weight, so the model keeps its last finite state and no checkpoint or
 * model is written from the diverged one. */
int embr__train_diverged(const run *r, const char *what, double v) {
  return embr_error(EMBR_EVALUE, "training diverged at step %lld (epoch %d): the %s is %g; lower the learning rate "
                    "or clip the gradient", (long long)r->step + 1, r->epoch + 1, what, v);
}

/* One step of a classification objective on a batch: labels through the run's class map. */
static double train_step(run *r, const float *x, const int32_t *labels0, const int64_t *items, int n, int64_t *correct,
                         int *rc) {
  embr_model *m = r->m;
  int32_t *labels = r->lab;
  (void)items;
  for (int i = 0; i < n; i++) labels[i] = r->map[labels0[i]];
  const embr_image_spec *s = &m->p.input;
  embr__nn_ctx_reset(&r->ctx);
  embr__nn_params_zero_grad(&m->P);
  nn_t *in = embr__nn_wrap(&r->ctx, (float *)x, n, s->channels, s->height, s->width);
  nn_t *emb = embr__model_forward(m, &r->ctx, in);
  nn_t *logits = m->hd.kind == 1 ? embr__nn_linear_f(&r->ctx, emb, &m->hd.lin) : embr__nn_margin_logits(&r->ctx, emb, &m->hd.mar, labels);
  if (!logits) {
    *rc = r->ctx.rc ? r->ctx.rc : embr_error(EMBR_ENOMEM, "out of memory");
    return 0;
  }
  embr__nn_grad(&r->ctx, logits);
  double loss = embr__nn_softmax_xent(logits, labels, correct);
  return embr__train_finish_step(r, loss, rc);
}

/* Backward from the loss gradients already set, clipping, the optimizer step on the schedule. */
double embr__train_finish_step(run *r, double loss, int *rc) {
  if (!isfinite(loss)) {
    *rc = embr__train_diverged(r, "loss", loss);
    return 0;
  }
  embr__nn_backward(&r->ctx);
  if (r->ctx.rc) {
    *rc = r->ctx.rc;
    return 0;
  }
  double norm = embr__nn_clip_grad(&r->m->P, r->p->clip);
  if (!isfinite(norm)) {
    *rc = embr__train_diverged(r, "gradient norm", norm);
    return 0;
  }
  embr__nn_optim_step(&r->opt, &r->m->P, (float)embr__nn_lr_at(r->p->lr, r->step, r->warmup, r->total));
  r->step++;
  return loss;
}

/* Checkpoint: the model's tensors, then the optimizer state as optim.m.NAME / optim.v.NAME. */
int embr__train_checkpoint(run *r, const char *path, int epoch) {
  embr_model *m = r->m;
  int n = m->P.n, per = r->opt.v ? 3 : 2, rc = 0;
  nn_st_out *t = calloc((size_t)n * (size_t)per + (size_t)r->nextra + 1, sizeof(nn_st_out));
  char **names = calloc((size_t)n * 2 + 1, sizeof(char *));
  if (!t || !names) rc = embr_error(EMBR_ENOMEM, "out of memory");
  int k = 0;
  for (int i = 0; i < n && !rc; i++) {
    const nn_param *q = &m->P.p[i];
    nn_st_out base = embr__nn_st_out_of(&m->P, i, m->P.data);
    t[k++] = base;
    for (int j = 0; j < per - 1; j++) {
      char *nm = malloc(strlen(q->name) + 16);
      if (!nm) {
        rc = embr_error(EMBR_ENOMEM, "out of memory");
        break;
      }
      sprintf(nm, "optim.%c.%s", j ? 'v' : 'm', q->name);
      names[2 * i + j] = nm;
      t[k] = base;
      t[k].name = nm;
      t[k++].data = (j ? r->opt.v : r->opt.m) + q->off;
    }
  }
  for (int i = 0; i < r->nextra && !rc; i++) t[k++] = r->extra[i]; /* the objective's own state */
  char step[32], ep[32], obj[16];
  snprintf(step, sizeof(step), "%lld", (long long)r->opt.step);
  snprintf(ep, sizeof(ep), "%d", epoch);
  snprintf(obj, sizeof(obj), "%d", (int)r->p->objective);
  char *key[3] = {"embr.optim_step", "embr.epoch", "embr.objective"}, *val[3] = {step, ep, obj};
  if (!rc) rc = embr__nn_st_write(path, t, k, key, val, 3);
  for (int i = 0; names && i < 2 * n; i++) free(names[i]);
  free(names);
  free(t);
  return rc;
}

/* The position is checked against the run before use: a negative or absurd epoch would train for
 * hours or not at all, a huge step would overflow the optimizer's step count. */
int embr__checkpoint_read(embr_model *m, nn_optim *opt, const nn_st *st, const char *path, int max_epochs,
                          int64_t max_step, int *epoch, int64_t *step) {
  int64_t e = 0, s = 0;
  int rc = 0;
  if (!embr__nn_st_meta(st, "embr.optim_step") || !embr__nn_st_meta(st, "embr.epoch"))
    rc = embr_error(EMBR_EFORMAT, "%s: not a training checkpoint (no embr.optim_step or embr.epoch)", path);
  if (!rc) rc = embr__nn_st_meta_int(st, "embr.epoch", path, 0, max_epochs, &e);
  if (!rc) rc = embr__nn_st_meta_int(st, "embr.optim_step", path, 0, max_step, &s);
  if (!rc && (e == 0) != (s == 0))
    rc = embr_error(EMBR_EFORMAT, "%s: metadata embr.epoch (%lld) and embr.optim_step (%lld) disagree", path,
                    (long long)e, (long long)s);
  if (!rc) rc = embr__nn_params_load(&m->P, st, NULL, path);
  if (!rc) rc = embr__nn_params_load_into(&m->P, st, "optim.m.", path, opt->m);
  if (!rc && opt->v) rc = embr__nn_params_load_into(&m->P, st, "optim.v.", path, opt->v);
  if (!rc) *epoch = (int)e, *step = s;
  return rc;
}

/* Restores weights, optimizer moments and the position in the schedule from a checkpoint file. */
int embr__train_resume(run *r, const char *path) {
  nn_st st;
  int rc = embr__nn_st_open(&st, path), epoch = 0;
  int64_t step = 0;
  if (rc) return rc;
  rc = embr__checkpoint_read(r->m, &r->opt, &st, path, r->p->epochs, r->total, &epoch, &step);
  if (!rc) {
    r->opt.step = r->step = step, r->epoch0 = epoch;
    for (int i = 0; i < r->opt.n; i++) r->opt.pstep[i] = step; /* every parameter updated at every step */
    if (r->resume_extra) rc = r->resume_extra(r, &st, path);
  }
  embr__nn_st_close(&st);
  return rc;
}

static int check_train_params(const embr_train_params *p) {
  if (p->epochs < 1 || p->batch < 2) return embr_error(EMBR_EINVAL, "epochs must be >= 1 and batch >= 2");
  if (!(p->lr > 0) || p->weight_decay < 0) return embr_error(EMBR_EINVAL, "learning rate must be > 0, decay >= 0");
  if (p->objective != EMBR_OBJ_SOFTMAX && (!(p->scale > 0) || !(p->m1 >= 1) || p->m2 < 0 || p->m3 < 0))
    return embr_error(EMBR_EINVAL, "margins must be m1 >= 1, m2 >= 0, m3 >= 0 and scale > 0");
  return 0;
}

int embr__train_epochs(run *r, embr_loader *ld, embr_train_stats *st) {
  const embr_train_params *p = r->p;
  int rc = 0;
  embr_progress_state ps;
  embr_progress_begin(&ps, p->progress, (uint64_t)(r->total - r->step));
  double t0 = embr_now();
  int64_t images = 0, steps0 = r->step;
  st->epochs_done = r->epoch0; /* a resumed run starts with the checkpoint's epochs done */
  /* The loader counts epochs from 0: a resumed run reads past the epochs done, so that epoch e
   * gets epoch e's order and augmentation and the run ends as an uninterrupted one would. */
  for (int e = 0; e < r->epoch0 && !rc; e++)
    for (int count = 1; count > 0 && !rc;) {
      const float *x, *l;
      rc = r->multicrop ? embr_loader_next_multicrop(ld, &x, &l, NULL, NULL, &count) : embr_loader_next(ld, &x, NULL, NULL, &count);
    }
  for (int ep = r->epoch0; ep < p->epochs && !rc; ep++) {
    r->epoch = ep;
    double lsum = 0, auxsum = 0;
    int64_t hits = 0, seen = 0;
    for (;;) {
      const float *x;
      const int32_t *labels;
      const int64_t *items;
      int count;
      rc = r->multicrop ? embr_loader_next_multicrop(ld, &x, &r->local, &labels, &items, &count)
                        : embr_loader_next(ld, &x, &labels, &items, &count);
      if (rc || count == 0) break;
      int64_t correct = 0;
      double loss = r->step_fn(r, x, labels, items, count, &correct, &rc);
      if (rc) break;
      lsum += loss * count, hits += correct, seen += count, images += count;
      if (r->multicrop) auxsum += r->aux * count;
      char detail[128];
      double secs = embr_now() - t0;
      if (r->multicrop) /* DINO: no accuracy; the teacher's entropy shows collapse (0 or ln K) */
        snprintf(detail, sizeof(detail), "epoch %d/%d loss %.4f H(teacher) %.3f %.0f img/s", ep + 1, p->epochs,
                 lsum / seen, auxsum / seen, secs > 0 ? images / secs : 0.0);
      else
        snprintf(detail, sizeof(detail), "epoch %d/%d loss %.4f acc %.3f %.0f img/s", ep + 1, p->epochs, lsum / seen,
                 (double)hits / seen, secs > 0 ? images / secs : 0.0);
      if (embr_progress_update(&ps, (uint64_t)(r->step - steps0), detail, 0)) {
        rc = embr_error(EMBR_ECANCELED, "training canceled");
        break;
      }
    }
    if (rc) break;
    st->epochs_done = ep + 1;
    st->last_loss = seen ? lsum / seen : 0;
    st->last_accuracy = seen ? (r->multicrop ? auxsum : (double)hits) / seen : 0;
    if (p->checkpoint) rc = embr__train_checkpoint(r, p->checkpoint, ep + 1);
  }
  st->seconds = embr_now() - t0;
  st->images_per_s = st->seconds > 0 ? images / st->seconds : 0;
  if (!rc) embr_progress_update(&ps, (uint64_t)(r->step - steps0), NULL, 1);
  return rc;
}

embr_status embr_model_train(embr_model *m, const embr_dataset *ds, const int64_t *subset, int64_t n_subset,
                             const embr_train_params *p, embr_train_stats *stats) {
  embr_train_stats st = {0};
  int rc = check_train_params(p), k = 0;
  int32_t *map = NULL;
  int64_t n = subset ? n_subset : embr_dataset_size(ds);
  if (!rc && n < p->batch)
    rc = embr_error(EMBR_EINVAL, "%lld training images is fewer than one batch of %d", (long long)n, p->batch);
  if (!rc) rc = compact_labels(m, ds, subset, n, &map, &k);
  int kind = p->objective == EMBR_OBJ_SOFTMAX ? 1 : 2;
  if (!rc) rc = set_head(m, kind, k, p->seed);
  if (rc) {
    free(map);
    return rc;
  }
  if (kind == 2) m->hd.mar.m1 = p->m1, m->hd.mar.m2 = p->m2, m->hd.mar.m3 = p->m3, m->hd.mar.s = p->scale;
  embr_loader_params lp = embr_loader_params_default();
  lp.spec = m->p.input, lp.batch = p->batch, lp.shuffle = 1, lp.drop_last = 1, lp.cache = 1;
  lp.pad = p->pad, lp.flip = p->flip, lp.seed = p->seed, lp.subset = subset, lp.n_subset = n_subset;
  run r = {.m = m, .p = p, .step_fn = train_step, .map = map};
  if (!(r.lab = malloc(sizeof(int32_t) * (size_t)p->batch))) rc = embr_error(EMBR_ENOMEM, "out of memory");
  if (!rc) rc = embr__train_run(&r, ds, &lp, &st);
  free(r.lab);
  free(map);
  if (stats) *stats = st;
  return rc;
}

int embr__train_run(run *r, const embr_dataset *ds, const embr_loader_params *lp, embr_train_stats *st) {
  const embr_train_params *p = r->p;
  embr_loader *ld = NULL;
  embr__nn_ctx_init(&r->ctx, &r->m->P, 1, 1, p->seed);
  r->ctx.nt = embr_threads_resolve(p->n_threads);
  int rc = embr_loader_create(ds, lp, &ld);
  if (!rc) rc = embr__nn_optim_init(&r->opt, &r->m->P, p->adamw ? NN_ADAMW : NN_SGD);
  if (!rc) {
    r->opt.weight_decay = p->weight_decay;
    r->opt.nt = r->ctx.nt;
    if (p->objective == EMBR_OBJ_CLIP) r->opt.beta2 = 0.98f, r->opt.eps = 1e-6f; /* OpenAI's CLIP */
    int64_t per = embr_loader_batches_per_epoch(ld);
    r->total = per * p->epochs;
    r->warmup = (int64_t)(p->warmup_epochs * (float)per);
    if (p->resume) rc = embr__train_resume(r, p->resume);
  }
  if (!rc) rc = embr__train_epochs(r, ld, st);
  embr_loader_free(ld);
  embr__nn_optim_free(&r->opt);
  embr__nn_ctx_free(&r->ctx);
  return rc;
}

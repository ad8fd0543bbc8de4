/* DINO's self-distillation training (facebookresearch/dino, main_dino.py): a student (the
 * backbone plus DINO's head) and a teacher of the same shape, made as the student's copy and then
 * moved by EMA; multi-crop batches from the loader (2 global crops for both, local crops for the
 * student only); the loss between the teacher's centred, sharpened softmax and the student's;
 * per-parameter gradient clipping, the head's last layer frozen in the first epoch(s), AdamW with
 * the reference's schedules (learning rate: linear warm-up then cosine; weight decay: cosine
 * 0.04 -> 0.4; teacher momentum: cosine 0.996 -> 1; teacher temperature: linear warm-up per
 * epoch). The step (embr__dino_step) is separate from the loop so that tests run it on a given
 * backbone against PyTorch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/dino_vit.h"
#include "train/dino_internal.h"
#include "train/train_internal.h"

/* ---- the step --------------------------------------------------------------------------------- */

int embr__dino_core_init(dino_core *d, int batch, int nt) {
  if (d->s.P->total != d->t.P->total || d->s.P->n != d->t.P->n)
    return embr_error(EMBR_EINVAL, "DINO: the teacher's parameters are not laid out as the student's");
  d->K = d->s.head.out;
  d->batch = batch;
  d->center = calloc((size_t)d->K, sizeof(float));
  d->tout = malloc(sizeof(float) * (size_t)d->n_global * (size_t)batch * (size_t)d->K);
  if (!d->center || !d->tout) return embr_error(EMBR_ENOMEM, "out of memory");
  embr__nn_ctx_init(&d->tctx, d->t.P, 0, 0, 0); /* the teacher: no tape, no drop-path */
  d->tctx.nt = nt;
  return 0;
}

void embr__dino_core_free(dino_core *d) {
  free(d->center);
  free(d->tout);
  d->center = d->tout = NULL;
  if (d->tctx.P) embr__nn_ctx_free(&d->tctx);
}

/* The backbone (identity when none: the rows are features already), then the head. */
static nn_t *side_forward(const dino_side *s, nn_ctx *ctx, const float *x, int n, int c, int side) {
  nn_t *in = embr__nn_wrap(ctx, (float *)x, n, c, side, side);
  nn_t *f = s->backbone ? s->backbone(s->net, ctx, in) : in;
  return embr__dino_head_forward(ctx, &s->head, f);
}

static double fail(int *rc, nn_ctx *ctx) {
  *rc = ctx->rc ? ctx->rc : embr_error(EMBR_ENOMEM, "out of memory");
  return 0;
}

double embr__dino_step(dino_core *d, nn_ctx *ctx, nn_optim *opt, const float *global, const float *local, int B,
                       const dino_point *pt, int *rc) {
  if (B < 1 || B > d->batch || (d->n_local > 0 && !local)) {
    *rc = embr_error(EMBR_EINVAL, "DINO step: %d images (capacity %d)%s", B, d->batch,
                     d->n_local > 0 && !local ? " without local crops" : "");
    return 0;
  }
  int C = d->channels, K = d->K, nG = d->n_global * B;
  /* The teacher sees the global crops only; its outputs are kept for the loss and the center. */
  embr__nn_ctx_reset(&d->tctx);
  nn_t *to = side_forward(&d->t, &d->tctx, global, nG, C, d->global_size);
  if (!to) return fail(rc, &d->tctx);
  memcpy(d->tout, to->d, sizeof(float) * (size_t)nG * (size_t)K);
  /* The student sees every crop, the global ones and the local ones as two batches (one per
   * resolution, as DINO's MultiCropWrapper). */
  embr__nn_ctx_reset(ctx);
  embr__nn_params_zero_grad(d->s.P);
  nn_t *sg = side_forward(&d->s, ctx, global, nG, C, d->global_size);
  nn_t *sl = d->n_local > 0 ? side_forward(&d->s, ctx, local, d->n_local * B, C, d->local_size) : NULL;
  if (!sg || (d->n_local > 0 && !sl)) return fail(rc, ctx);
  double loss = embr__nn_dino_loss(ctx, sg, d->n_global, sl, d->n_local, B, d->tout, d->center, (float)pt->t_temp,
                                   d->s_temp, &d->entropy);
  if (ctx->rc) return fail(rc, ctx);
  if (!isfinite(loss)) {
    *rc = embr_error(EMBR_EVALUE, "DINO training diverged: the loss is %g", loss);
    return 0;
  }
  embr__nn_backward(ctx);
  if (ctx->rc) return fail(rc, ctx);
  double norm = embr__nn_clip_grad_each(d->s.P, d->clip);
  if (!isfinite(norm)) {
    *rc = embr_error(EMBR_EVALUE, "DINO training diverged: the gradient norm is %g", norm);
    return 0;
  }
  embr__nn_dino_center_update(d->center, d->tout, nG, K, d->center_m);
  /* freeze_last_layer: the reference sets the last layer's gradient to None, so AdamW leaves it
   * alone entirely (no decay, no moment update, no step count). */
  for (int k = 0; k < opt->n; k++) opt->skip[k] = pt->freeze_last && embr__dino_is_last_layer(d->s.P->p[k].name);
  opt->weight_decay = (float)pt->wd;
  embr__nn_optim_step(opt, d->s.P, (float)pt->lr);
  embr__nn_ema(d->t.P->data, d->s.P->data, d->s.P->total, pt->momentum, ctx->nt);
  d->t.P->version++;
  return loss;
}

void embr__dino_param_groups(nn_params *P) {
  for (int i = 0; i < P->n; i++) {
    nn_param *q = &P->p[i];
    if (q->kind == NN_BUFFER) continue;
    size_t len = strlen(q->name);
    int plain = q->ndim == 1 || (len >= 5 && !strcmp(q->name + len - 5, ".bias"));
    q->kind = plain ? NN_NODECAY : NN_WEIGHT;
  }
}

/* ---- the training run ------------------------------------------------------------------------- */

typedef struct dino_obj {
  dino_core core;
  embr_model *teacher;
  nn_st_out *extra; /* the checkpoint's teacher.* tensors and dino.center */
  char **names;
  int nnames;
} dino_obj;

enum { STREAM_HEAD = 1 }; /* as train.c: the head's initial weights from their own stream of the seed */

static nn_t *model_backbone(void *model, nn_ctx *ctx, nn_t *x) { return embr__model_forward(model, ctx, x); }

double embr__dino_teacher_temp(double warm, double final, int warm_epochs, int e) {
  if (e >= warm_epochs) return final;
  if (warm_epochs == 1) return warm;
  return warm + (final - warm) * (double)e / (warm_epochs - 1);
}

static double dino_run_step(run *r, const float *x, const int32_t *labels, const int64_t *items, int n, int64_t *correct,
                            int *rc) {
  (void)labels, (void)items, (void)correct;
  dino_obj *o = r->obj;
  const embr_train_params *p = r->p;
  dino_point pt;
  double base = (double)p->lr * p->batch / 256.0; /* the reference's linear scaling rule */
  pt.lr = embr__nn_cosine_at(base, p->min_lr, r->step, r->total, r->warmup, 0);
  pt.wd = embr__nn_cosine_at(p->weight_decay, p->weight_decay_end, r->step, r->total, 0, 0);
  pt.momentum = embr__nn_cosine_at(p->momentum_teacher, 1, r->step, r->total, 0, 0);
  pt.t_temp = embr__dino_teacher_temp(p->warmup_teacher_temp, p->teacher_temp, p->warmup_teacher_temp_epochs, r->epoch);
  pt.freeze_last = r->epoch < p->freeze_last_layer;
  /* The student's drop-path draws: a function of the step, so a resumed run draws what an
   * uninterrupted one would. */
  embr_rng_seed(&r->ctx.rng, embr_seed_split(p->seed, 2000 + (uint64_t)r->step));
  double loss = embr__dino_step(&o->core, &r->ctx, &r->opt, x, r->local, n, &pt, rc);
  if (*rc) return 0;
  r->aux = o->core.entropy;
  r->step++;
  return loss;
}

/* Resume: the teacher and the center, and the last layer's own AdamW step count (it was frozen
 * for the first freeze_last_layer epochs: PyTorch counts only the steps that updated it). */
static int dino_resume(run *r, const nn_st *st, const char *path) {
  dino_obj *o = r->obj;
  int rc = embr__nn_params_load(&o->teacher->P, st, "teacher.", path);
  const nn_st_tensor *c = embr__nn_st_find(st, "dino.center");
  if (!rc && (!c || c->dtype >= NN_ST_FLOAT_DTYPES || c->numel != o->core.K))
    rc = embr_error(EMBR_EFORMAT, "%s: dino.center is missing or not %d floats", path, o->core.K);
  if (!rc) embr__nn_st_read_f32(c, o->core.center);
  for (int k = 0; !rc && k < o->core.K; k++)
    if (!isfinite(o->core.center[k])) rc = embr_error(EMBR_EVALUE, "%s: dino.center holds a NaN or Inf", path);
  int64_t per = r->p->epochs > 0 ? r->total / r->p->epochs : 0, frozen = per * r->p->freeze_last_layer;
  for (int k = 0; !rc && k < r->opt.n; k++)
    if (embr__dino_is_last_layer(r->m->P.p[k].name)) r->opt.pstep[k] = r->step > frozen ? r->step - frozen : 0;
  return rc;
}

/* A backbone + head model with m's architecture: weights drawn from the seed, then m's copied in
 * by name (the head keeps its drawn ones). */
static int make_side(const embr_model *m, const embr_train_params *p, float drop_path, embr_model **out, dino_side *s) {
  embr_model_params mp = m->p;
  if (embr__dino_vit_arch(m->arch)) {
    mp.drop_path = drop_path;
    mp.embedding_dim = mp.vision.width; /* the head reads the class token, whatever m's pooling */
  }
  int rc = embr__model_build(&mp, 0, 0, out);
  if (!rc)
    rc = embr__dino_head_make(&(*out)->P, &s->head, "head", (*out)->p.embedding_dim, p->dino_hidden, p->dino_bottleneck,
                              p->dino_out);
  if (!rc) rc = embr__nn_params_init(&(*out)->P, embr_seed_split(p->seed, STREAM_HEAD));
  for (int i = 0; i < m->P.n && !rc; i++) {
    int j = embr__nn_param_find(&(*out)->P, m->P.p[i].name);
    if (j >= 0) memcpy((*out)->P.data + (*out)->P.p[j].off, m->P.data + m->P.p[i].off, sizeof(float) * (size_t)m->P.p[i].numel);
  }
  if (!rc) embr__dino_param_groups(&(*out)->P);
  s->P = &(*out)->P, s->backbone = model_backbone, s->net = *out;
  return rc;
}

static int make_extra(dino_obj *o) {
  const nn_params *T = &o->teacher->P;
  o->extra = calloc((size_t)T->n + 1, sizeof(nn_st_out));
  o->names = calloc((size_t)T->n, sizeof(char *));
  if (!o->extra || !o->names) return embr_error(EMBR_ENOMEM, "out of memory");
  for (int i = 0; i < T->n; i++) {
    o->extra[i] = embr__nn_st_out_of(T, i, T->data);
    if (!(o->names[i] = malloc(strlen(T->p[i].name) + 16))) return embr_error(EMBR_ENOMEM, "out of memory");
    sprintf(o->names[i], "teacher.%s", T->p[i].name);
    o->extra[i].name = o->names[i];
    o->nnames = i + 1;
  }
  o->extra[T->n] = (nn_st_out){.name = "dino.center", .ndim = 1, .shape = {o->core.K}, .data = o->core.center};
  return 0;
}

/* DINO's local crops are 96 px for a 224 px input; for other inputs the same ratio, rounded to the
 * nearest whole number of patches (at least one) so that the crop tiles into patches: 28 px with
 * patch 4 gives 12, 32 px 12 (13.7 would not tile), 224 px with patch 14 gives 98 as DINOv2. */
static int default_local_side(int global, int patch) {
  if (patch < 1) return (global * 96 + 112) / 224;
  int n = (global * 96 + 112 * patch) / (224 * patch);
  return (n < 1 ? 1 : n) * patch;
}

static int check_dino_params(const embr_train_params *p) {
  if (p->epochs < 1 || p->batch < 2) return embr_error(EMBR_EINVAL, "epochs must be >= 1 and batch >= 2");
  if (!(p->lr > 0) || p->weight_decay < 0 || p->weight_decay_end < 0 || p->min_lr < 0)
    return embr_error(EMBR_EINVAL, "learning rate must be > 0, min_lr and weight decays >= 0");
  if (p->dino_out < 1 || p->dino_out > (1 << 20) || p->dino_hidden < 1 || p->dino_hidden > 65536 || p->dino_bottleneck < 1 ||
      p->dino_bottleneck > 65536)
    return embr_error(EMBR_EINVAL, "DINO head sizes out of range (out 1..1048576, hidden and bottleneck 1..65536)");
  if (p->local_crops < 0 || p->local_crops > 64) return embr_error(EMBR_EINVAL, "local crops must be 0..64");
  if (!(p->student_temp > 0) || !(p->teacher_temp > 0) || !(p->warmup_teacher_temp > 0) || p->warmup_teacher_temp_epochs < 0)
    return embr_error(EMBR_EINVAL, "DINO temperatures must be > 0 (warm-up epochs >= 0)");
  if (!(p->momentum_teacher >= 0 && p->momentum_teacher <= 1) || !(p->center_momentum >= 0 && p->center_momentum <= 1))
    return embr_error(EMBR_EINVAL, "teacher and center momentum must be in [0, 1]");
  if (p->freeze_last_layer < 0) return embr_error(EMBR_EINVAL, "freeze_last_layer must be >= 0");
  return 0;
}

static void dino_obj_free(dino_obj *o) {
  embr__dino_core_free(&o->core);
  for (int i = 0; i < o->nnames; i++) free(o->names[i]);
  free(o->names);
  free(o->extra);
  embr_model_free(o->teacher);
}

embr_status embr_model_train_dino(embr_model *m, const embr_dataset *ds, const int64_t *subset, int64_t n_subset,
                                  const embr_train_params *p, embr_train_stats *stats) {
  embr_train_stats st = {0};
  int rc = check_dino_params(p);
  int64_t n = subset ? n_subset : embr_dataset_size(ds);
  if (!rc && n < p->batch)
    rc = embr_error(EMBR_EINVAL, "%lld training images is fewer than one batch of %d", (long long)n, p->batch);
  if (!rc && embr_model_has_text(m)) rc = embr_error(EMBR_EINVAL, "DINO trains an image backbone, not a CLIP model");
  if (rc) return rc;
  const embr_image_spec *in = &m->p.input;
  int G = in->height, L = p->local_size > 0 ? p->local_size : default_local_side(G, m->p.vision.patch);
  if (in->width != G) return embr_error(EMBR_EINVAL, "DINO needs a square input (the model's is %dx%d)", in->width, G);
  embr_multicrop_params mc = embr_multicrop_params_dino(G, L, p->local_crops);
  mc.channels = in->channels;
  memcpy(mc.mean, in->mean, sizeof mc.mean);
  memcpy(mc.std, in->std, sizeof mc.std);
  memcpy(mc.global_scale, p->global_scale, sizeof mc.global_scale);
  memcpy(mc.local_scale, p->local_scale, sizeof mc.local_scale);
  mc.jitter_p = p->jitter_p, mc.grayscale_p = p->grayscale_p;
  memcpy(mc.blur_p, p->blur_p, sizeof mc.blur_p);
  mc.solarize_p[1] = p->solarize_p; /* DINO solarises the second global crop only */
  if ((rc = embr_multicrop_params_check(&mc))) return rc;

  dino_obj o;
  memset(&o, 0, sizeof o);
  embr_model *student = NULL;
  rc = make_side(m, p, p->drop_path, &student, &o.core.s);
  if (!rc) rc = make_side(m, p, 0, &o.teacher, &o.core.t);
  if (!rc) { /* the teacher starts as the student's copy */
    memcpy(o.teacher->P.data, student->P.data, sizeof(float) * (size_t)student->P.total);
    o.core.n_global = mc.n_global, o.core.n_local = mc.n_local, o.core.channels = mc.channels;
    o.core.global_size = G, o.core.local_size = L;
    o.core.s_temp = p->student_temp, o.core.center_m = p->center_momentum, o.core.clip = p->clip;
    rc = embr__dino_core_init(&o.core, p->batch, embr_threads_resolve(p->n_threads));
  }
  if (!rc) rc = make_extra(&o);
  if (!rc) {
    embr_loader_params lp = embr_loader_params_default();
    lp.spec = *in, lp.batch = p->batch, lp.shuffle = 1, lp.drop_last = 1, lp.cache = 1, lp.seed = p->seed;
    lp.subset = subset, lp.n_subset = n_subset, lp.multicrop = &mc;
    run r = {.m = student, .p = p, .step_fn = dino_run_step, .obj = &o, .multicrop = 1};
    r.extra = o.extra, r.nextra = o.teacher->P.n + 1, r.resume_extra = dino_resume;
    rc = embr__train_run(&r, ds, &lp, &st);
  }
  /* The result is the teacher's backbone (the DINO paper evaluates the teacher). */
  for (int i = 0; i < m->P.n && !rc; i++) {
    int j = embr__nn_param_find(&o.teacher->P, m->P.p[i].name);
    if (j >= 0) memcpy(m->P.data + m->P.p[i].off, o.teacher->P.data + o.teacher->P.p[j].off, sizeof(float) * (size_t)m->P.p[i].numel);
  }
  if (!rc) m->P.version++;
  dino_obj_free(&o);
  embr_model_free(student);
  if (stats) *stats = st;
  return rc;
}

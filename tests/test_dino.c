/* DINO's method against PyTorch (tests/ref/dino_head_step.safetensors, written by
 * scripts/make_dino_head_ref.py): the head (outputs and every gradient), the loss with centering and
 * sharpening and its gradient, the center's EMA, the schedules, per-parameter clipping, and whole
 * training steps on an identity backbone (loss, clipped gradients, AdamW with the frozen last
 * layer, the teacher's EMA, the center); plus the layer's invariants and input checks. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embr/core.h"
#include "embr/model.h"
#include "harness.h"
#include "models/dino.h"
#include "models/models.h"
#include "nn/nn.h"
#include "train/dino_internal.h"

static nn_st ref;
static char ref_path[512];
static int ref_ok;
static const char *ref_file = "dino_head_step.safetensors";

static void ref_open(void) {
  if (ref_ok) return;
  snprintf(ref_path, sizeof ref_path, "%s/tests/ref/%s", EMBR_SOURCE_DIR, ref_file);
  CHECK_MSG(embr__nn_st_open(&ref, ref_path) == 0, "%s", embr_last_error());
  ref_ok = 1;
}

/* Switches the reference file (the next read opens it). */
static void ref_use(const char *file) {
  if (ref_ok && strcmp(file, ref_file)) embr__nn_st_close(&ref), ref_ok = 0;
  ref_file = file;
}

static const nn_st_tensor *need(const char *name) {
  ref_open();
  const nn_st_tensor *t = embr__nn_st_find(&ref, name);
  CHECK_MSG(t != NULL, "reference lacks %s", name);
  if (!t) exit(1);
  return t;
}

static float *read_ref(const char *name, int64_t *n) {
  const nn_st_tensor *t = need(name);
  float *d = malloc(sizeof(float) * (size_t)t->numel);
  embr__nn_st_read_f32(t, d);
  if (n) *n = t->numel;
  return d;
}

/* Every element within 1e-4 absolute or 1e-3 relative of the reference. */
static void check_close(const char *what, const float *a, const char *refname, int64_t n) {
  int64_t m;
  float *r = read_ref(refname, &m);
  CHECK_MSG(m == n, "%s: %lld values, reference %s has %lld", what, (long long)n, refname, (long long)m);
  double worst = 0;
  int64_t bad = 0;
  for (int64_t i = 0; i < n && i < m; i++) {
    double d = fabs((double)a[i] - r[i]);
    if (!(d <= 1e-4 || d <= 1e-3 * fabs(r[i]))) bad++;
    worst = fmax(worst, d);
  }
  CHECK_MSG(bad == 0, "%s: %lld of %lld values differ from PyTorch (max abs %.3g)", what, (long long)bad, (long long)n, worst);
  free(r);
}

static void load_into(nn_params *P, const char *prefix) {
  ref_open();
  CHECK_MSG(embr__nn_params_load(P, &ref, prefix, ref_path) == 0, "%s", embr_last_error());
}

/* A tensor that wants a gradient, holding the reference's values. */
static nn_t *input(nn_ctx *ctx, const char *name, int rows, int cols) {
  int64_t n;
  float *d = read_ref(name, &n);
  CHECK(n == (int64_t)rows * cols);
  nn_t *t = embr__nn_tensor(ctx, rows, cols, 1, 1);
  memcpy(t->d, d, sizeof(float) * (size_t)n);
  free(d);
  return t;
}

static void test_head(void) {
  nn_params P = {0};
  dino_head h;
  CHECK(embr__dino_head_make(&P, &h, "head", 12, 16, 8, 10) == 0);
  CHECK(embr__nn_params_init(&P, 1) == 0);
  CHECK(embr__nn_param_find(&P, "head.mlp.4.bias") >= 0 && embr__nn_param_find(&P, "head.last_layer.weight_g") >= 0);
  CHECK(P.p[embr__nn_param_find(&P, "head.last_layer.weight_g")].kind == NN_BUFFER);
  load_into(&P, "head.");
  nn_ctx ctx;
  embr__nn_ctx_init(&ctx, &P, 1, 1, 0);
  nn_t *x = input(&ctx, "head.x", 5, 12);
  nn_t *y = embr__dino_head_forward(&ctx, &h, x);
  CHECK(y && y->n == 5 && y->c == 10);
  check_close("head output", y->d, "head.y", 50);
  float *dy = read_ref("head.dy", NULL);
  memcpy(embr__nn_grad(&ctx, y), dy, sizeof(float) * 50);
  free(dy);
  embr__nn_backward(&ctx);
  CHECK(ctx.rc == 0);
  check_close("head: gradient of x", x->g, "head.grad_x", 60);
  for (int i = 0; i < P.n; i++) {
    char name[160];
    snprintf(name, sizeof name, "head.grad.%s", P.p[i].name + 5);
    if (P.p[i].kind == NN_BUFFER) continue; /* the frozen gain has no gradient */
    check_close(P.p[i].name, P.grad + P.p[i].off, name, P.p[i].numel);
  }
  embr__nn_ctx_free(&ctx);
  embr__nn_params_free(&P);
}

static void loss_case(const char *prefix, int n_local) {
  int B = 3, K = 10, V = 2 + n_local;
  nn_params P = {0};
  nn_ctx ctx;
  embr__nn_ctx_init(&ctx, &P, 1, 1, 0);
  char name[64];
  snprintf(name, sizeof name, "%sstudent", prefix);
  nn_t *s = input(&ctx, name, V * B, K);
  /* The global and local views as the step passes them: two tensors. */
  nn_t *sg = embr__nn_tensor(&ctx, 2 * B, K, 1, 1), *sl = n_local ? embr__nn_tensor(&ctx, n_local * B, K, 1, 1) : NULL;
  memcpy(sg->d, s->d, sizeof(float) * (size_t)(2 * B * K));
  if (sl) memcpy(sl->d, s->d + 2 * B * K, sizeof(float) * (size_t)(n_local * B * K));
  snprintf(name, sizeof name, "%steacher", prefix);
  float *t = read_ref(name, NULL);
  snprintf(name, sizeof name, "%scenter", prefix);
  float *c = read_ref(name, NULL);
  double H = 0;
  double loss = embr__nn_dino_loss(&ctx, sg, 2, sl, n_local, B, t, c, 0.04f, 0.1f, &H);
  CHECK(ctx.rc == 0);
  float lf = (float)loss;
  snprintf(name, sizeof name, "%sloss", prefix);
  check_close(name, &lf, name, 1);
  CHECK(H > 0 && H < log(K));
  float *g = malloc(sizeof(float) * (size_t)(V * B * K));
  memcpy(g, sg->g, sizeof(float) * (size_t)(2 * B * K));
  if (sl) memcpy(g + 2 * B * K, sl->g, sizeof(float) * (size_t)(n_local * B * K));
  snprintf(name, sizeof name, "%sgrad", prefix);
  check_close(name, g, name, V * B * K);
  embr__nn_dino_center_update(c, t, 2 * B, K, 0.9f);
  snprintf(name, sizeof name, "%scenter_after", prefix);
  check_close(name, c, name, K);
  free(g), free(t), free(c);
  embr__nn_ctx_free(&ctx);
  embr__nn_params_free(&P);
}

static void test_loss(void) {
  loss_case("loss.", 3);
  loss_case("loss0.", 0);
}

/* Views that do not fit the outputs are an error, not a read out of bounds. */
static void test_loss_checks(void) {
  nn_params P = {0};
  nn_ctx ctx;
  embr__nn_ctx_init(&ctx, &P, 1, 1, 0);
  nn_t *sg = embr__nn_tensor(&ctx, 4, 5, 1, 1);
  float t[20] = {0}, c[5] = {0};
  double l = embr__nn_dino_loss(&ctx, sg, 2, NULL, 0, 3, t, c, 0.04f, 0.1f, NULL);
  CHECK(isnan(l) && ctx.rc == EMBR_EINVAL);
  embr__nn_ctx_reset(&ctx);
  sg = embr__nn_tensor(&ctx, 4, 5, 1, 1);
  l = embr__nn_dino_loss(&ctx, sg, 2, NULL, 0, 2, t, c, 0.0f, 0.1f, NULL);
  CHECK(isnan(l) && ctx.rc == EMBR_EINVAL);
  embr__nn_ctx_free(&ctx);
  embr__nn_params_free(&P);
}

static void test_schedules(void) {
  int64_t n;
  float *lr = read_ref("sched.lr", &n), *wd = read_ref("sched.wd", NULL), *mo = read_ref("sched.momentum", NULL);
  CHECK(n == 35);
  for (int64_t i = 0; i < n; i++) {
    CHECK_NEAR(embr__nn_cosine_at(5e-4 * 24 / 256, 1e-6, i, 35, 10, 0), lr[i], 1e-9);
    CHECK_NEAR(embr__nn_cosine_at(0.04, 0.4, i, 35, 0, 0), wd[i], 1e-7);
    CHECK_NEAR(embr__nn_cosine_at(0.996, 1, i, 35, 0, 0), mo[i], 1e-7);
  }
  float *tt = read_ref("sched.teacher_temp", &n);
  CHECK(n == 7);
  for (int e = 0; e < n; e++) CHECK_NEAR(embr__dino_teacher_temp(0.04, 0.07, 3, e), tt[e], 1e-7);
  free(lr), free(wd), free(mo), free(tt);
}

static void test_clip_each(void) {
  nn_params P = {0};
  int sizes[3] = {7, 5, 9};
  for (int i = 0; i < 3; i++) {
    char name[16];
    snprintf(name, sizeof name, "p%d", i);
    int64_t shape[1] = {sizes[i]};
    CHECK(embr__nn_param_add(&P, name, 1, shape, NN_WEIGHT, NN_INIT_ZERO, 0) >= 0);
  }
  CHECK(embr__nn_params_init(&P, 1) == 0 && embr__nn_params_grad_alloc(&P) == 0);
  double ss = 0;
  for (int i = 0; i < 3; i++) {
    char name[16];
    snprintf(name, sizeof name, "clip.in%d", i);
    float *g = read_ref(name, NULL);
    memcpy(P.grad + P.p[i].off, g, sizeof(float) * (size_t)sizes[i]);
    for (int j = 0; j < sizes[i]; j++) ss += (double)g[j] * g[j];
    free(g);
  }
  double norm = embr__nn_clip_grad_each(&P, 3.0);
  CHECK_NEAR(norm, sqrt(ss), 1e-5 * sqrt(ss));
  for (int i = 0; i < 3; i++) {
    char name[16];
    snprintf(name, sizeof name, "clip.out%d", i);
    check_close(name, P.grad + P.p[i].off, name, sizes[i]);
  }
  embr__nn_params_free(&P);
}

static void step_case(const char *prefix) {
  char name[256];
  snprintf(name, sizeof name, "%shyper", prefix);
  float *hy = read_ref(name, NULL);
  int epoch = (int)hy[5], B = (int)hy[6], n_local = (int)hy[7], d_in = 6, K = 12;
  nn_params S = {0}, T = {0};
  dino_core d;
  memset(&d, 0, sizeof d);
  CHECK(embr__dino_head_make(&S, &d.s.head, "head", d_in, 16, 8, K) == 0);
  CHECK(embr__dino_head_make(&T, &d.t.head, "head", d_in, 16, 8, K) == 0);
  CHECK(embr__nn_params_init(&S, 1) == 0 && embr__nn_params_init(&T, 2) == 0);
  snprintf(name, sizeof name, "%sstudent.", prefix);
  load_into(&S, name);
  snprintf(name, sizeof name, "%steacher.", prefix);
  load_into(&T, name);
  d.s.P = &S, d.t.P = &T;
  d.n_global = 2, d.n_local = n_local, d.channels = d_in, d.global_size = d.local_size = 1;
  d.s_temp = 0.1f, d.center_m = 0.9f, d.clip = hy[4];
  CHECK(embr__dino_core_init(&d, B, 2) == 0);
  snprintf(name, sizeof name, "%scenter", prefix);
  float *c = read_ref(name, NULL);
  memcpy(d.center, c, sizeof(float) * (size_t)K);
  free(c);
  snprintf(name, sizeof name, "%sglobal", prefix);
  float *g = read_ref(name, NULL);
  snprintf(name, sizeof name, "%slocal", prefix);
  float *l = read_ref(name, NULL);
  nn_ctx ctx;
  embr__nn_ctx_init(&ctx, &S, 1, 1, 0);
  ctx.nt = 2;
  nn_optim opt;
  CHECK(embr__nn_optim_init(&opt, &S, NN_ADAMW) == 0);
  dino_point pt = {hy[0], hy[1], hy[2], hy[3], epoch < 1};
  int rc = 0;
  float loss = (float)embr__dino_step(&d, &ctx, &opt, g, l, B, &pt, &rc);
  CHECK_MSG(rc == 0, "%s", embr_last_error());
  snprintf(name, sizeof name, "%sloss", prefix);
  check_close(name, &loss, name, 1);
  snprintf(name, sizeof name, "%scenter_after", prefix);
  check_close(name, d.center, name, K);
  for (int i = 0; i < S.n; i++) {
    const nn_param *q = &S.p[i];
    if (q->kind != NN_BUFFER) {
      snprintf(name, sizeof name, "%sgradc.%s", prefix, q->name);
      check_close(name, S.grad + q->off, name, q->numel);
    }
    snprintf(name, sizeof name, "%sstudent_after.%s", prefix, q->name);
    check_close(name, S.data + q->off, name, q->numel);
    snprintf(name, sizeof name, "%steacher_after.%s", prefix, q->name);
    check_close(name, T.data + q->off, name, q->numel);
  }
  /* In epoch 0 the last layer does not move (its gradient dropped); the reference says so too. */
  int v = embr__nn_param_find(&S, "head.last_layer.weight_v");
  CHECK(opt.pstep[v] == (epoch < 1 ? 0 : 1));
  free(g), free(l), free(hy);
  embr__nn_optim_free(&opt);
  embr__nn_ctx_free(&ctx);
  embr__dino_core_free(&d);
  embr__nn_params_free(&S);
  embr__nn_params_free(&T);
}

static void test_step_frozen(void) { step_case("step0."); }
static void test_step(void) { step_case("step1."); }

/* ---- the whole step on a ViT (tests/ref/dino_step.safetensors, scripts/make_dino_step_ref.py) -- */

static nn_t *vit_backbone(void *model, nn_ctx *ctx, nn_t *x) { return embr__model_forward(model, ctx, x); }

static int meta_int(const char *key) {
  ref_open();
  const char *v = embr__nn_st_meta(&ref, key);
  CHECK_MSG(v != NULL, "reference lacks metadata %s", key);
  return v ? atoi(v) : 0;
}

/* A ViT + DINO head with the reference's sizes, parameters kinds as DINO's get_params_groups. */
static embr_model *vit_side(dino_side *s) {
  embr_model_params mp = embr_model_params_default();
  mp.arch = "vit";
  int w = meta_int("width");
  mp.vision = (embr_transformer_params){w, meta_int("depth"), meta_int("heads"), meta_int("patch"), 0, 0};
  mp.embedding_dim = w;
  mp.input.channels = 3, mp.input.height = mp.input.width = meta_int("global");
  embr_model *m = NULL;
  CHECK_MSG(embr__model_build(&mp, 0, 0, &m) == 0, "%s", embr_last_error());
  CHECK(embr__dino_head_make(&m->P, &s->head, "head", w, meta_int("hidden"), meta_int("bottleneck"), meta_int("out")) == 0);
  CHECK(embr__nn_params_init(&m->P, 3) == 0);
  embr__dino_param_groups(&m->P);
  s->P = &m->P, s->backbone = vit_backbone, s->net = m;
  return m;
}

/* The student's weights after the step. Where the reference's gradient is 0 up to rounding (the
 * attention's key bias: a constant added to every logit of a query's softmax), AdamW's first step
 * lr * g / (|g| + eps) turns rounding noise into a step of any sign up to lr (float32 noise here is
 * far above float64's in the reference): those elements are only held to |change| <= lr. */
static void check_after(const char *name, const nn_params *P, const nn_param *q, const char *prefix, double lr) {
  char gname[256];
  snprintf(gname, sizeof gname, "%sgradc.%s", prefix, q->name);
  int64_t n;
  float *a = read_ref(name, &n), *g = q->kind == NN_BUFFER ? NULL : read_ref(gname, NULL);
  snprintf(gname, sizeof gname, "%sstudent.%s", prefix, q->name);
  float *before = read_ref(gname, NULL);
  int64_t bad = 0, noise = 0;
  for (int64_t j = 0; j < n && j < q->numel; j++) {
    double c = P->data[q->off + j], d = fabs(c - a[j]);
    if (g && fabs(g[j]) < 1e-6) {
      noise++;
      if (!(fabs(c - before[j]) <= lr * 1.01 + 1e-7)) bad++;
    } else if (!(d <= 1e-4 || d <= 1e-3 * fabs(a[j]))) {
      bad++;
    }
  }
  if (noise) fprintf(stderr, "  %s: %lld of %lld with a zero gradient\n", name, (long long)noise, (long long)n);
  CHECK_MSG(bad == 0 && n == q->numel, "%s: %lld of %lld values differ from PyTorch (%lld with a zero gradient)", name,
            (long long)bad, (long long)n, (long long)noise);
  free(a), free(g), free(before);
}

/* raw: no clipping, the gradients compared with the reference's unclipped ones (its clipped ones
 * scaled back by its norms); else the whole step. */
static void golden_case(const char *prefix, int raw) {
  ref_use("dino_step.safetensors");
  char name[256];
  snprintf(name, sizeof name, "%shyper", prefix);
  float *hy = read_ref(name, NULL);
  int epoch = (int)hy[5], B = (int)hy[6], n_local = (int)hy[7];
  dino_core d;
  memset(&d, 0, sizeof d);
  embr_model *S = vit_side(&d.s), *T = vit_side(&d.t);
  snprintf(name, sizeof name, "%sstudent.", prefix);
  load_into(&S->P, name);
  snprintf(name, sizeof name, "%steacher.", prefix);
  load_into(&T->P, name);
  d.n_global = 2, d.n_local = n_local, d.channels = 3;
  d.global_size = meta_int("global"), d.local_size = meta_int("local");
  d.s_temp = 0.1f, d.center_m = 0.9f, d.clip = raw ? 0 : hy[4];
  CHECK(embr__dino_core_init(&d, B, 2) == 0);
  snprintf(name, sizeof name, "%scenter", prefix);
  float *c = read_ref(name, NULL);
  memcpy(d.center, c, sizeof(float) * (size_t)d.K);
  free(c);
  snprintf(name, sizeof name, "%sglobal", prefix);
  float *g = read_ref(name, NULL);
  snprintf(name, sizeof name, "%slocal", prefix);
  float *l = read_ref(name, NULL);
  nn_ctx ctx;
  embr__nn_ctx_init(&ctx, &S->P, 1, 1, 0);
  ctx.nt = 2;
  nn_optim opt;
  CHECK(embr__nn_optim_init(&opt, &S->P, NN_ADAMW) == 0);
  dino_point pt = {hy[0], hy[1], hy[2], hy[3], epoch < 1};
  int rc = 0;
  float loss = (float)embr__dino_step(&d, &ctx, &opt, g, l, B, &pt, &rc);
  CHECK_MSG(rc == 0, "%s", embr_last_error());
  snprintf(name, sizeof name, "%sloss", prefix);
  check_close(name, &loss, name, 1);
  for (int i = 0; i < S->P.n; i++) {
    const nn_param *q = &S->P.p[i];
    if (q->kind != NN_BUFFER) {
      snprintf(name, sizeof name, "%sgradc.%s", prefix, q->name);
      if (raw) {
        float *r = read_ref(name, NULL), nrm;
        snprintf(name, sizeof name, "%sgrad_norm.%s", prefix, q->name);
        float *n = read_ref(name, NULL);
        nrm = n[0];
        double f = (nrm + 1e-6) / hy[4] > 1 ? (nrm + 1e-6) / hy[4] : 1; /* undo the reference's clipping */
        for (int64_t j = 0; j < q->numel; j++) r[j] = (float)(r[j] * f);
        double worst = 0, scale = 0;
        for (int64_t j = 0; j < q->numel; j++) {
          worst = fmax(worst, fabs(S->P.grad[q->off + j] - r[j]));
          scale = fmax(scale, fabs(r[j]));
        }
        CHECK_MSG(worst <= 1e-4 + 1e-3 * scale, "%s: raw gradient differs by %.3g (largest %.3g)", q->name, worst, scale);
        free(r), free(n);
        continue;
      }
      check_close(name, S->P.grad + q->off, name, q->numel);
    }
    if (raw) continue;
    snprintf(name, sizeof name, "%sstudent_after.%s", prefix, q->name);
    check_after(name, &S->P, q, prefix, hy[0]);
    snprintf(name, sizeof name, "%steacher_after.%s", prefix, q->name);
    check_close(name, T->P.data + q->off, name, q->numel);
  }
  if (!raw) {
    snprintf(name, sizeof name, "%scenter_after", prefix);
    check_close(name, d.center, name, d.K);
  }
  free(g), free(l), free(hy);
  embr__nn_optim_free(&opt);
  embr__nn_ctx_free(&ctx);
  embr__dino_core_free(&d);
  embr_model_free(S);
  embr_model_free(T);
}

static void test_golden_step(void) {
  golden_case("e0.", 0);
  golden_case("e1.", 0);
}
static void test_golden_step_gradients(void) {
  golden_case("e0.", 1);
  golden_case("e1.", 1);
}

/* Four steps in a row from the start (scripts/make_dino_step_ref.py, multi_case): the state one
 * step cannot show carries over — AdamW's moments and per-parameter step counts (the last layer
 * frozen for two steps, then starting its own count), the center's and the teacher's EMAs — with new
 * crops and schedule values at every step. Elements whose reference gradient is 0 up to rounding at
 * every step (m.quiet.*) are held to the bound AdamW gives rounding noise: |change| <= the sum of
 * the steps' learning rates. */
static void test_golden_multistep(void) {
  ref_use("dino_step.safetensors");
  float *nsteps = read_ref("m.steps", NULL), *hy0 = read_ref("m.hyper.0", NULL);
  int steps = (int)nsteps[0], B = (int)hy0[6], n_local = (int)hy0[7];
  free(nsteps), free(hy0);
  dino_core d;
  memset(&d, 0, sizeof d);
  embr_model *S = vit_side(&d.s), *T = vit_side(&d.t);
  load_into(&S->P, "m.student.");
  load_into(&T->P, "m.student."); /* the teacher starts as the student's copy */
  d.n_global = 2, d.n_local = n_local, d.channels = 3;
  d.global_size = meta_int("global"), d.local_size = meta_int("local");
  d.s_temp = 0.1f, d.center_m = 0.9f;
  CHECK(embr__dino_core_init(&d, B, 2) == 0); /* the center starts at 0 */
  nn_ctx ctx;
  embr__nn_ctx_init(&ctx, &S->P, 1, 1, 0);
  ctx.nt = 2;
  nn_optim opt;
  CHECK(embr__nn_optim_init(&opt, &S->P, NN_ADAMW) == 0);
  double lr_sum = 0;
  char name[256];
  for (int s = 0; s < steps; s++) {
    snprintf(name, sizeof name, "m.hyper.%d", s);
    float *hy = read_ref(name, NULL);
    snprintf(name, sizeof name, "m.global.%d", s);
    float *g = read_ref(name, NULL);
    snprintf(name, sizeof name, "m.local.%d", s);
    float *l = read_ref(name, NULL);
    d.clip = hy[4];
    dino_point pt = {hy[0], hy[1], hy[2], hy[3], hy[5] < 1};
    lr_sum += hy[0];
    int rc = 0;
    float loss = (float)embr__dino_step(&d, &ctx, &opt, g, l, B, &pt, &rc);
    CHECK_MSG(rc == 0, "%s", embr_last_error());
    snprintf(name, sizeof name, "m.loss.%d", s);
    check_close(name, &loss, name, 1);
    free(hy), free(g), free(l);
  }
  for (int i = 0; i < S->P.n; i++) {
    const nn_param *q = &S->P.p[i];
    snprintf(name, sizeof name, "m.student_after.%s", q->name);
    int64_t n;
    float *a = read_ref(name, &n), *quiet = NULL;
    snprintf(name, sizeof name, "m.quiet.%s", q->name);
    if (embr__nn_st_find(&ref, name)) quiet = read_ref(name, NULL);
    snprintf(name, sizeof name, "m.student.%s", q->name);
    float *before = read_ref(name, NULL);
    int64_t bad = 0;
    for (int64_t j = 0; j < n && j < q->numel; j++) {
      double c = S->P.data[q->off + j], dd = fabs(c - a[j]);
      if (quiet && quiet[j] > 0.5) {
        if (!(fabs(c - before[j]) <= lr_sum * 1.01 + 1e-7)) bad++;
      } else if (!(dd <= 1e-4 || dd <= 1e-3 * fabs(a[j]))) {
        bad++;
      }
    }
    CHECK_MSG(bad == 0 && n == q->numel, "m.student_after.%s: %lld of %lld values differ from PyTorch", q->name,
              (long long)bad, (long long)n);
    free(a);
    /* The teacher: the same, its noise elements (the student's, averaged in) held to the same bound. */
    snprintf(name, sizeof name, "m.teacher_after.%s", q->name);
    a = read_ref(name, &n);
    bad = 0;
    for (int64_t j = 0; j < n && j < q->numel; j++) {
      double dd = fabs((double)T->P.data[q->off + j] - a[j]);
      if (!(dd <= 1e-4 || dd <= 1e-3 * fabs(a[j]) || (quiet && quiet[j] > 0.5 && dd <= lr_sum * 1.01))) bad++;
    }
    CHECK_MSG(bad == 0 && n == q->numel, "m.teacher_after.%s: %lld of %lld values differ from PyTorch", q->name,
              (long long)bad, (long long)n);
    free(a), free(quiet), free(before);
  }
  check_close("m.center_after", d.center, "m.center_after", d.K);
  embr__nn_optim_free(&opt);
  embr__nn_ctx_free(&ctx);
  embr__dino_core_free(&d);
  embr_model_free(S);
  embr_model_free(T);
}

/* ---- the training run: resume ------------------------------------------------------------------ */

static int cancel_at(void *user, uint64_t done, uint64_t total, double rate, const char *detail) {
  (void)total, (void)rate, (void)detail;
  return done >= *(const uint64_t *)user;
}

static embr_model *tiny_vit(void) {
  embr_model_params mp = embr_model_params_arch("vit-tiny");
  mp.input.height = mp.input.width = 8; /* 2 x 2 patches; the positions (for 28 px) resampled */
  embr_model *m = NULL;
  CHECK_MSG(embr_model_create(&mp, 5, &m) == 0, "%s", embr_last_error());
  return m;
}

/* A run stopped in its second epoch and resumed from the checkpoint of its first ends with the
 * same weights, to the bit (one thread), as the run that was never stopped: weights, AdamW state,
 * the frozen last layer's own step count, teacher, center, loader position and drop-path draws all
 * come back. The stopped run leaves the model unchanged. */
static void test_resume_exact(void) {
  const char *dir = th_fresh_dir("flat");
  for (int i = 0; i < 8; i++) {
    unsigned char pgm[32 + 144];
    int h = snprintf((char *)pgm, 32, "P5\n12 12\n255\n");
    for (int j = 0; j < 144; j++) pgm[h + j] = (unsigned char)(((j % 12) * (i + 1) * 9 + (j / 12) * (i % 3 + 1) * 17 + i * 31) & 255);
    char name[16];
    snprintf(name, sizeof name, "%d.pgm", i);
    th_write_file(th_join(dir, name), pgm, (size_t)h + 144);
  }
  embr_dataset *ds = NULL;
  CHECK_MSG(embr_dataset_open(dir, &ds) == 0, "%s", embr_last_error());
  embr_train_params p = embr_train_params_default(EMBR_OBJ_DINO);
  p.epochs = 3, p.batch = 4, p.local_crops = 2, p.local_size = 4, p.dino_out = 16, p.dino_hidden = 32;
  p.dino_bottleneck = 8, p.warmup_epochs = 1, p.warmup_teacher_temp_epochs = 2, p.n_threads = 1, p.seed = 9;
  embr_model *a = tiny_vit(), *b = tiny_vit(), *c = tiny_vit(), *fresh = tiny_vit();
  embr_train_stats st;
  CHECK_MSG(embr_model_train_dino(a, ds, NULL, 0, &p, &st) == 0, "%s", embr_last_error());
  CHECK(st.epochs_done == 3 && st.last_accuracy > 0 && st.last_accuracy <= log(16) + 1e-9);
  uint64_t at = 3; /* 2 steps an epoch: stop after the first step of the second epoch */
  embr_progress pr = {cancel_at, &at, 1e-12};
  embr_train_params pb = p;
  pb.checkpoint = th_path("ck.safetensors"), pb.progress = &pr;
  CHECK(embr_model_train_dino(b, ds, NULL, 0, &pb, NULL) == EMBR_ECANCELED);
  CHECK(memcmp(b->P.data, fresh->P.data, sizeof(float) * (size_t)b->P.total) == 0);
  embr_train_params pc = p;
  pc.resume = pb.checkpoint;
  CHECK_MSG(embr_model_train_dino(c, ds, NULL, 0, &pc, NULL) == 0, "%s", embr_last_error());
  CHECK(memcmp(a->P.data, c->P.data, sizeof(float) * (size_t)a->P.total) == 0);
  CHECK(memcmp(a->P.data, fresh->P.data, sizeof(float) * (size_t)a->P.total) != 0);
  /* Bad settings: EMBR_EINVAL before anything runs, the model untouched. */
  embr_train_params bad[10];
  for (int i = 0; i < 10; i++) bad[i] = p;
  bad[0].dino_out = 0, bad[1].student_temp = 0, bad[2].local_crops = 65, bad[3].momentum_teacher = 1.5f;
  bad[4].batch = 16, bad[5].local_size = 6; /* more than the 8 images; not a multiple of the patch */
  bad[6].jitter_p = 1.5f, bad[7].grayscale_p = -0.1f, bad[8].blur_p[2] = 2, bad[9].solarize_p = NAN; /* not probabilities */
  for (int i = 0; i < 10; i++) {
    int rc = embr_model_train_dino(b, ds, NULL, 0, &bad[i], NULL);
    CHECK_MSG(rc == EMBR_EINVAL, "setting %d: %d (%s)", i, rc, embr_last_error());
  }
  CHECK(memcmp(b->P.data, fresh->P.data, sizeof(float) * (size_t)b->P.total) == 0);
  embr_model_free(a), embr_model_free(b), embr_model_free(c), embr_model_free(fresh);
  embr_dataset_free(ds);
}

/* The weight-normalised layer by finite differences in v (the direction's gradient), and its
 * invariance to the scale of v (only the direction counts). */
static void test_wnlin_gradcheck(void) {
  nn_params P = {0};
  nn_wnlin L;
  CHECK(embr__nn_wnlin_make(&P, &L, "w", 4, 3) == 0);
  CHECK(embr__nn_params_init(&P, 7) == 0);
  float x[8] = {0.3f, -1.2f, 0.5f, 2.0f, -0.7f, 0.1f, 1.1f, -0.4f}, wgt[6] = {1, -2, 0.5f, 0.3f, 1.5f, -1};
  nn_ctx ctx;
  embr__nn_ctx_init(&ctx, &P, 1, 1, 0);
  nn_t *xi = embr__nn_wrap(&ctx, x, 2, 4, 1, 1), *y = embr__nn_wnlin_f(&ctx, xi, &L);
  double f0 = 0;
  for (int i = 0; i < 6; i++) f0 += wgt[i] * y->d[i];
  memcpy(embr__nn_grad(&ctx, y), wgt, sizeof wgt);
  embr__nn_backward(&ctx);
  float *v = P.data + L.v, *dv = P.grad + L.v;
  for (int j = 0; j < 12; j++) {
    float keep = v[j];
    double f[2];
    for (int s = 0; s < 2; s++) {
      v[j] = keep + (s ? 1e-3f : -1e-3f);
      nn_ctx c2;
      embr__nn_ctx_init(&c2, &P, 0, 0, 0);
      nn_t *y2 = embr__nn_wnlin_f(&c2, embr__nn_wrap(&c2, x, 2, 4, 1, 1), &L);
      f[s] = 0;
      for (int i = 0; i < 6; i++) f[s] += wgt[i] * y2->d[i];
      embr__nn_ctx_free(&c2);
    }
    v[j] = keep;
    CHECK_NEAR(dv[j], (f[1] - f[0]) / 2e-3, 2e-3);
  }
  for (int j = 0; j < 12; j++) v[j] *= 3.5f; /* same direction, same output */
  nn_ctx c3;
  embr__nn_ctx_init(&c3, &P, 0, 0, 0);
  nn_t *y3 = embr__nn_wnlin_f(&c3, embr__nn_wrap(&c3, x, 2, 4, 1, 1), &L);
  double f3 = 0;
  for (int i = 0; i < 6; i++) f3 += wgt[i] * y3->d[i];
  CHECK_NEAR(f3, f0, 1e-5);
  embr__nn_ctx_free(&c3);
  embr__nn_ctx_free(&ctx);
  embr__nn_params_free(&P);
}

/* The EMA: m = 1 keeps the teacher, m = 0 copies the student, between is the mix. */
static void test_ema(void) {
  float t[5] = {1, 2, 3, 4, 5}, s[5] = {5, 4, 3, 2, 1};
  embr__nn_ema(t, s, 5, 1.0, 2);
  CHECK(t[0] == 1 && t[4] == 5);
  embr__nn_ema(t, s, 5, 0.75, 2);
  CHECK_NEAR(t[0], 2.0, 1e-6);
  CHECK_NEAR(t[4], 4.0, 1e-6);
  embr__nn_ema(t, s, 5, 0.0, 2);
  CHECK(t[0] == 5 && t[4] == 1);
}

int main(int argc, char **argv) {
  int rc = RUN_TESTS(argc, argv, test_head, test_loss, test_loss_checks, test_schedules, test_clip_each, test_step_frozen,
                     test_step, test_wnlin_gradcheck, test_ema, test_golden_step, test_golden_step_gradients, test_golden_multistep,
                     test_resume_exact);
  if (ref_ok) embr__nn_st_close(&ref);
  return rc;
}

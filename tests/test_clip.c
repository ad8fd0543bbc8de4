/* CLIP: both towers against a PyTorch reference (tests/ref/clip_*.safetensors, written by
 * scripts/make_clip_ref.py) in OpenAI's and Hugging Face's names — embeddings and every
 * parameter's gradient — plus configuration inference, save/load, and damaged checkpoints. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embr/core.h"
#include "embr/model.h"
#include "harness.h"
#include "models/clip.h"
#include "nn/nn.h"

static double max_abs_diff(const float *a, const nn_st_tensor *ref) {
  float *r = malloc(sizeof(float) * (size_t)ref->numel);
  embr__nn_st_read_f32(ref, r);
  double d = 0;
  for (int64_t i = 0; i < ref->numel; i++) d = fmax(d, fabs((double)a[i] - r[i]));
  free(r);
  return d;
}

static const nn_st_tensor *need(const nn_st *st, const char *name) {
  const nn_st_tensor *t = embr__nn_st_find(st, name);
  CHECK_MSG(t != NULL, "reference lacks %s", name);
  return t;
}

typedef struct ref {
  nn_st st;
  char path[512];
  float *images;
  int32_t *ids;
  int n;
} ref;

static int ref_open(ref *r, const char *file) {
  snprintf(r->path, sizeof r->path, "%s/tests/ref/%s", EMBR_SOURCE_DIR, file);
  if (embr__nn_st_open(&r->st, r->path)) return -1;
  return 0;
}

/* Inputs come from the OpenAI file (the HF file holds weights and outputs only). */
static void inputs_load(ref *r, const nn_st *st) {
  const nn_st_tensor *ti = need(st, "input.images"), *tt = need(st, "input.ids");
  r->n = (int)ti->shape[0];
  r->images = malloc(sizeof(float) * (size_t)ti->numel);
  float *f = malloc(sizeof(float) * (size_t)tt->numel);
  r->ids = malloc(sizeof(int32_t) * (size_t)tt->numel);
  embr__nn_st_read_f32(ti, r->images);
  embr__nn_st_read_f32(tt, f);
  for (int64_t i = 0; i < tt->numel; i++) r->ids[i] = (int32_t)f[i];
  free(f);
}

static embr_model *load_foreign(const nn_st *st, const char *path) {
  embr_model_params hint = embr_model_params_default();
  hint.vision.heads = hint.text.heads = atoi(embr__nn_st_meta(st, "heads"));
  embr_model *m = NULL;
  int rc = embr__clip_load_foreign(st, path, &hint, &m);
  CHECK_MSG(rc == 0, "%s", embr_last_error());
  return m;
}

static void check_embeddings(embr_model *m, const ref *in, const nn_st *out, const char *file) {
  int dim = embr_model_dim(m);
  float *e = malloc(sizeof(float) * (size_t)in->n * (size_t)dim);
  CHECK(embr_model_embed(m, in->images, in->n, 2, e) == 0);
  double d = max_abs_diff(e, need(out, "out.image"));
  CHECK_MSG(d <= 1e-4, "%s: image embeddings differ from PyTorch by %.2e", file, d);
  CHECK(embr_model_embed_tokens(m, in->ids, in->n, 2, e) == 0);
  double t = max_abs_diff(e, need(out, "out.text"));
  CHECK_MSG(t <= 1e-4, "%s: text embeddings differ from PyTorch by %.2e", file, t);
  fprintf(stderr, "  %s: image %.1e, text %.1e (max abs)\n", file, d, t);
  free(e);
}

static void test_golden_openai(void) {
  ref r;
  if (ref_open(&r, "clip_openai.safetensors")) SKIP("tests/ref/clip_openai.safetensors unreadable");
  inputs_load(&r, &r.st);
  embr_model *m = load_foreign(&r.st, r.path);
  REQUIRE(m);
  CHECK_EQ_INT(embr_model_context(m), 12);
  check_embeddings(m, &r, &r.st, "clip_openai");
  /* Training pass: loss = sum(image * r.image) + sum(text * r.text); every gradient. */
  clip_net *c = m->net;
  nn_ctx ctx;
  embr__nn_ctx_init(&ctx, &m->P, 1, 1, 1);
  embr__nn_params_zero_grad(&m->P);
  nn_t *img = embr__model_forward(m, &ctx, embr__nn_wrap(&ctx, r.images, r.n, 3, 32, 32));
  nn_t *txt = embr__clip_forward_text(&ctx, c, r.ids, r.n);
  REQUIRE(img && txt);
  embr__nn_st_read_f32(need(&r.st, "r.image"), embr__nn_grad(&ctx, img));
  embr__nn_st_read_f32(need(&r.st, "r.text"), embr__nn_grad(&ctx, txt));
  embr__nn_backward(&ctx);
  REQUIRE(ctx.rc == 0);
  double worst = 0;
  const char *wname = "";
  int n = 0;
  for (int i = 0; i < m->P.n; i++) {
    char name[160];
    snprintf(name, sizeof name, "grad.%s", m->P.p[i].name);
    const nn_st_tensor *t = embr__nn_st_find(&r.st, name);
    if (!strcmp(m->P.p[i].name, "logit_scale")) continue; /* not on this loss's path */
    CHECK_MSG(t != NULL, "reference lacks %s", name);
    if (!t) continue;
    float *g = malloc(sizeof(float) * (size_t)t->numel);
    embr__nn_st_read_f32(t, g);
    double num = 0, den = 0;
    for (int64_t j = 0; j < t->numel; j++) {
      num = fmax(num, fabs((double)m->P.grad[m->P.p[i].off + j] - g[j]));
      den = fmax(den, fabs((double)g[j]));
    }
    free(g);
    double e = num / fmax(den, 1e-6);
    if (e > worst) worst = e, wname = m->P.p[i].name;
    n++;
  }
  CHECK_MSG(worst <= 1e-3, "gradient of %s differs from PyTorch by %.2e (relative)", wname, worst);
  fprintf(stderr, "  %d gradients, worst relative error %.1e (%s)\n", n, worst, wname);
  embr__nn_ctx_free(&ctx);
  embr_model_free(m);
  embr__nn_st_close(&r.st);
  free(r.images), free(r.ids);
}

static void test_golden_hf(void) {
  ref in, r;
  if (ref_open(&in, "clip_openai.safetensors") || ref_open(&r, "clip_hf.safetensors")) SKIP("tests/ref/clip_*.safetensors unreadable");
  inputs_load(&in, &in.st);
  embr_model *m = load_foreign(&r.st, r.path);
  REQUIRE(m);
  check_embeddings(m, &in, &r.st, "clip_hf (F16)");
  /* The configuration read off the shapes. */
  embr_model_params p = m->p;
  CHECK_EQ_INT(p.vision.width, 32);
  CHECK_EQ_INT(p.vision.layers, 2);
  CHECK_EQ_INT(p.vision.patch, 8);
  CHECK_EQ_INT(p.input.height, 32);
  CHECK_EQ_INT(p.text.layers, 2);
  CHECK_EQ_INT(p.text.vocab, 200);
  CHECK_EQ_INT(embr_model_dim(m), 24);
  embr_model_free(m);
  embr__nn_st_close(&r.st);
  embr__nn_st_close(&in.st);
  free(in.images), free(in.ids);
}

/* Saved by embr and read back: the same embeddings, the configuration from the metadata. */
static void test_save_load(void) {
  ref r;
  if (ref_open(&r, "clip_openai.safetensors")) SKIP("tests/ref/clip_openai.safetensors unreadable");
  inputs_load(&r, &r.st);
  embr_model *m = load_foreign(&r.st, r.path), *m2 = NULL;
  REQUIRE(m);
  const char *path = th_path("clip.safetensors");
  REQUIRE(embr_model_save(m, path) == 0);
  CHECK_MSG(embr_model_load(path, &m2) == 0, "%s", embr_last_error());
  REQUIRE(m2);
  CHECK_EQ_INT(m2->p.vision.heads, 2);
  CHECK_EQ_INT(m2->p.input.crop, EMBR_CROP_CENTER); /* CLIP's preprocessing travels with the model */
  CHECK_EQ_INT(m2->p.input.alpha, EMBR_ALPHA_WHITE);
  CHECK_EQ_INT(m2->p.input.resize, EMBR_RESIZE_BICUBIC);
  check_embeddings(m2, &r, &r.st, "saved and loaded");
  int32_t ids[12];
  const char *text = "a cat";
  CHECK(embr_model_tokenize(m2, &text, 1, ids, NULL) == EMBR_EINVAL); /* no tokenizer in this model */
  embr_model_free(m), embr_model_free(m2);
  embr__nn_st_close(&r.st);
  free(r.images), free(r.ids);
}

/* A checkpoint with one tensor left out, or one of another shape, names it. */
static void test_damaged_checkpoints(void) {
  ref r;
  if (ref_open(&r, "clip_hf.safetensors")) SKIP("tests/ref/clip_hf.safetensors unreadable");
  nn_st_out *t = calloc((size_t)r.st.n, sizeof(nn_st_out));
  float **bufs = calloc((size_t)r.st.n, sizeof(float *));
  int n = 0;
  const char *drop = "text_model.encoder.layers.1.self_attn.k_proj.bias";
  for (int i = 0; i < r.st.n; i++) {
    const nn_st_tensor *s = &r.st.t[i];
    if (!strcmp(s->name, drop)) continue;
    bufs[n] = malloc(sizeof(float) * (size_t)(s->numel ? s->numel : 1));
    embr__nn_st_read_f32(s, bufs[n]);
    t[n] = (nn_st_out){s->name, s->ndim, {0}, bufs[n], NN_ST_F32};
    for (int d = 0; d < s->ndim; d++) t[n].shape[d] = s->shape[d];
    n++;
  }
  const char *path = th_path("missing.safetensors");
  REQUIRE(embr__nn_st_write(path, t, n, NULL, NULL, 0) == 0);
  embr_model *m = NULL;
  CHECK_EQ_INT(embr_model_load(path, &m), EMBR_EFORMAT);
  CHECK(m == NULL);
  CHECK_MSG(strstr(embr_last_error(), drop) && strstr(embr_last_error(), "missing"), "%s", embr_last_error());
  /* mis-shaped: the visual projection with a column fewer */
  for (int i = 0; i < n; i++)
    if (!strcmp(t[i].name, "visual_projection.weight")) t[i].shape[1]--;
  t[n] = (nn_st_out){drop, 1, {32}, bufs[0], NN_ST_F32};
  REQUIRE(embr__nn_st_write(path, t, n + 1, NULL, NULL, 0) == 0);
  CHECK_EQ_INT(embr_model_load(path, &m), EMBR_EFORMAT);
  CHECK_MSG(strstr(embr_last_error(), "visual_projection.weight"), "%s", embr_last_error());
  for (int i = 0; i < n; i++) free(bufs[i]);
  free(bufs), free(t);
  embr__nn_st_close(&r.st);
}

/* The named configurations have the published sizes: OpenAI's ViT-B/32 CLIP holds 151,277,313
 * parameters (ViT-B/16: 149,620,737). Counted on the parameter table, nothing allocated. */
static void test_named_configurations(void) {
  static const struct { const char *arch; int64_t params; } want[] = {{"clip-vit-b-32", 151277313}, {"clip-vit-b-16", 149620737}};
  for (int i = 0; i < 2; i++) {
    embr_model_params p = embr_model_params_arch(want[i].arch);
    embr_model *m = NULL;
    REQUIRE(embr__model_build(&p, 0, 0, &m) == 0);
    CHECK_MSG(embr_model_parameters(m) == want[i].params, "%s: %lld parameters, want %lld", want[i].arch,
              (long long)embr_model_parameters(m), (long long)want[i].params);
    embr_model_free(m);
  }
  embr_model_params p = embr_model_params_arch("clip-tiny");
  CHECK_EQ_INT(p.vision.width, 192);
  CHECK_EQ_INT(p.input.height, 64);
  CHECK_EQ_INT(p.text.context, 32);
  p.vision.heads = 5; /* 192 is not a multiple of 5 */
  embr_model *m = NULL;
  CHECK_EQ_INT(embr_model_create(&p, 1, &m), EMBR_EINVAL);
}

int main(int argc, char **argv) {
  return RUN_TESTS(argc, argv, test_golden_openai, test_golden_hf, test_save_load, test_damaged_checkpoints,
                   test_named_configurations);
}

/* DINO's Vision Transformer against a PyTorch reference written for the test
 * (tests/ref/dino_*.safetensors, made by scripts/make_dino_ref.py): class tokens, mean patch
 * tokens, the last block's class-token attention and every gradient, at the positions' own size
 * and at resampled ones, from facebookresearch names (under a training checkpoint's prefix) and
 * Hugging Face names (BF16, LayerScale); plus the named configurations, save/load, drop-path in a
 * whole network, and checkpoints of other networks. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embr/core.h"
#include "embr/model.h"
#include "harness.h"
#include "models/dino_vit.h"
#include "nn/nn.h"

static float *ref_floats(const nn_st *st, const char *name, int64_t *n) {
  const nn_st_tensor *t = embr__nn_st_find(st, name);
  CHECK_MSG(t != NULL, "reference lacks %s", name);
  if (!t) return NULL;
  float *f = malloc(sizeof(float) * (size_t)t->numel);
  embr__nn_st_read_f32(t, f);
  if (n) *n = t->numel;
  return f;
}

/* max |a - ref| over the reference's values, or the relative form max|a - r| / max|r| */
static double diff(const float *a, const nn_st *st, const char *name, int relative) {
  int64_t n = 0;
  float *r = ref_floats(st, name, &n);
  if (!r) return INFINITY;
  double d = 0, m = 0;
  for (int64_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - r[i])), m = fmax(m, fabs((double)r[i]));
  free(r);
  return relative ? d / fmax(m, 1e-6) : d;
}

typedef struct ref {
  nn_st st;
  char path[512];
} ref;

static int ref_open(ref *r, const char *file) {
  snprintf(r->path, sizeof r->path, "%s/tests/ref/%s", EMBR_SOURCE_DIR, file);
  return embr__nn_st_open(&r->st, r->path) ? -1 : 0;
}

static embr_model *load_ref(const ref *r) {
  embr_model_params hint = embr_model_params_default();
  hint.vision.heads = atoi(embr__nn_st_meta(&r->st, "heads"));
  embr_model *m = NULL;
  int rc = embr__dino_vit_load_foreign(&r->st, r->path, &hint, &m);
  CHECK_MSG(rc == 0, "%s", embr_last_error());
  return m;
}

/* One size S: tokens -> (class, mean patch) in a recording or an inference context; the values,
 * the attention and, when recording and the reference has them, every gradient. */
static void check_size(embr_model *m, const nn_st *st, int S, int record, const char *file) {
  char name[192];
  snprintf(name, sizeof name, "input.%d", S);
  int64_t nx = 0;
  float *x = ref_floats(st, name, &nx);
  REQUIRE(x);
  int B = (int)(nx / (3 * S * S)), D = m->p.vision.width, H = m->p.vision.heads, T = 1 + (S / m->p.vision.patch) * (S / m->p.vision.patch);
  nn_ctx ctx;
  embr__nn_ctx_init(&ctx, &m->P, record, record, 1);
  ctx.keep_cls_attn = 1;
  embr__nn_params_zero_grad(&m->P);
  nn_t *in = record ? embr__nn_tensor(&ctx, B, 3, S, S) : embr__nn_wrap(&ctx, x, B, 3, S, S);
  REQUIRE(in);
  if (record) memcpy(in->d, x, sizeof(float) * (size_t)nx);
  nn_t *y = embr__nn_cls_avg(&ctx, embr__dino_vit_tokens(&ctx, m->net, in));
  CHECK_MSG(y != NULL, "%s at %d px: %s", file, S, embr_last_error());
  if (!y) goto done;
  float *cls = malloc(sizeof(float) * (size_t)B * D), *avg = malloc(sizeof(float) * (size_t)B * D);
  for (int b = 0; b < B; b++)
    memcpy(cls + b * D, y->d + (int64_t)b * 2 * D, sizeof(float) * (size_t)D),
        memcpy(avg + b * D, y->d + (int64_t)b * 2 * D + D, sizeof(float) * (size_t)D);
  snprintf(name, sizeof name, "out.cls.%d", S);
  double dc = diff(cls, st, name, 0);
  snprintf(name, sizeof name, "out.avg.%d", S);
  double da = diff(avg, st, name, 0);
  snprintf(name, sizeof name, "out.attn.%d", S);
  CHECK(ctx.cls_attn_heads == H && ctx.cls_attn_tokens == T);
  double dt = diff(ctx.cls_attn, st, name, 0);
  CHECK_MSG(dc <= 1e-4 && da <= 1e-4 && dt <= 1e-5, "%s at %d px (%s): class %.2e, mean patch %.2e, attention %.2e", file, S,
            record ? "training" : "inference", dc, da, dt);
  fprintf(stderr, "  %s %d px %s: class %.1e, mean %.1e, attention %.1e", file, S, record ? "training" : "inference", dc, da, dt);
  snprintf(name, sizeof name, "grad%d:images", S);
  if (record && embr__nn_st_find(st, name)) {
    float *g = embr__nn_grad(&ctx, y);
    float *r = ref_floats(st, (snprintf(name, sizeof name, "r.%d", S), name), NULL), *q = ref_floats(st, (snprintf(name, sizeof name, "q.%d", S), name), NULL);
    for (int b = 0; b < B; b++)
      memcpy(g + (int64_t)b * 2 * D, r + b * D, sizeof(float) * (size_t)D), memcpy(g + (int64_t)b * 2 * D + D, q + b * D, sizeof(float) * (size_t)D);
    free(r), free(q);
    embr__nn_backward(&ctx);
    REQUIRE(ctx.rc == 0);
    snprintf(name, sizeof name, "grad%d:images", S);
    double worst = diff(in->g, st, name, 1);
    const char *wname = "images";
    for (int i = 0; i < m->P.n; i++) {
      snprintf(name, sizeof name, "grad%d:%s", S, m->P.p[i].name);
      double e = diff(m->P.grad + m->P.p[i].off, st, name, 1);
      if (e > worst) worst = e, wname = m->P.p[i].name;
    }
    CHECK_MSG(worst <= 1e-3, "%s at %d px: gradient of %s differs from PyTorch by %.2e (relative)", file, S, wname, worst);
    fprintf(stderr, ", %d gradients: worst %.1e (%s)", m->P.n + 1, worst, wname);
  }
  fprintf(stderr, "\n");
  free(cls), free(avg);
done:
  embr__nn_ctx_free(&ctx);
  free(x);
}

static void test_golden_facebookresearch(void) {
  ref r;
  if (ref_open(&r, "dino_fb.safetensors")) SKIP("tests/ref/dino_fb.safetensors unreadable");
  embr_model *m = load_ref(&r);
  REQUIRE(m);
  /* the configuration read off the shapes, under the prefix teacher.backbone. */
  CHECK_EQ_INT(m->p.vision.width, 48);
  CHECK_EQ_INT(m->p.vision.layers, 2);
  CHECK_EQ_INT(m->p.vision.patch, 4);
  CHECK_EQ_INT(m->p.pos_size, 16);
  CHECK_EQ_INT(m->p.input.height, 16);
  CHECK_EQ_INT(m->p.layer_scale, 0);
  for (int rec = 0; rec < 2; rec++) {
    check_size(m, &r.st, 16, rec, "dino_fb");
    check_size(m, &r.st, 24, rec, "dino_fb");
    check_size(m, &r.st, 8, rec, "dino_fb");
  }
  /* the model API at the native size: the class token, then class + mean */
  float *x = ref_floats(&r.st, "input.16", NULL), e[2 * 2 * 48], want[2 * 2 * 48];
  REQUIRE(x);
  CHECK(embr_model_embed(m, x, 2, 1, e) == 0);
  CHECK(diff(e, &r.st, "out.cls.16", 0) <= 1e-4);
  CHECK(embr_model_set_pool(m, EMBR_POOL_CLS_AVG) == 0);
  CHECK_EQ_INT(embr_model_dim(m), 96);
  CHECK(embr_model_embed(m, x, 2, 2, e) == 0);
  float *c = ref_floats(&r.st, "out.cls.16", NULL), *a = ref_floats(&r.st, "out.avg.16", NULL);
  for (int b = 0; b < 2; b++) memcpy(want + b * 96, c + b * 48, 48 * sizeof(float)), memcpy(want + b * 96 + 48, a + b * 48, 48 * sizeof(float));
  double d = 0;
  for (int i = 0; i < 2 * 96; i++) d = fmax(d, fabs((double)e[i] - want[i]));
  CHECK_MSG(d <= 1e-4, "class + mean embedding differs by %.2e", d);
  /* saved by embr, read back: the same (pooling travels with the model) */
  const char *path = th_path("vit.safetensors");
  REQUIRE(embr_model_save(m, path) == 0);
  embr_model *m2 = NULL;
  CHECK_MSG(embr_model_load(path, &m2) == 0, "%s", embr_last_error());
  REQUIRE(m2);
  CHECK_EQ_INT(embr_model_dim(m2), 96);
  CHECK_EQ_INT(m2->p.vision.heads, 3);
  CHECK_EQ_INT(m2->p.input.short_side, 18); /* 16 * 256 / 224, rounded */
  CHECK(strcmp(embr_model_arch(m2), "vit") == 0);
  float e2[2 * 96];
  CHECK(embr_model_embed(m2, x, 2, 2, e2) == 0);
  CHECK(memcmp(e, e2, sizeof e2) == 0);
  embr_model_free(m2);
  free(x), free(c), free(a);
  embr_model_free(m);
  embr__nn_st_close(&r.st);
}

static void test_golden_hugging_face(void) {
  ref r;
  if (ref_open(&r, "dino_hf.safetensors")) SKIP("tests/ref/dino_hf.safetensors unreadable");
  embr_model *m = load_ref(&r);
  REQUIRE(m);
  CHECK_EQ_INT(m->p.layer_scale, 1);
  CHECK_EQ_INT(m->p.vision.patch, 2);
  CHECK_EQ_INT(m->p.pos_size, 10);
  for (int rec = 0; rec < 2; rec++) {
    check_size(m, &r.st, 10, rec, "dino_hf (BF16)");
    check_size(m, &r.st, 14, rec, "dino_hf (BF16)");
  }
  embr_model_free(m);
  /* found without being told: embr_model_load, heads = 48 / 64 -> 1 */
  CHECK_MSG(embr_model_load(r.path, &m) == 0, "%s", embr_last_error());
  if (m) {
    CHECK_EQ_INT(m->p.vision.heads, 1);
    CHECK(strcmp(embr_model_arch(m), "vit") == 0);
  }
  embr_model_free(m);
  embr__nn_st_close(&r.st);
}

/* Copies a reference file's tensors, without `drop`, names starting with `from` renamed to
 * start with `to` (with dup: copied under the new name, the original kept). */
static void rewrite(const nn_st *st, const char *path, const char *drop, const char *from, const char *to, int dup) {
  nn_st_out *t = calloc((size_t)st->n * 2 + 1, sizeof(nn_st_out));
  float **bufs = calloc((size_t)st->n * 2 + 1, sizeof(float *));
  char **names = calloc((size_t)st->n * 2 + 1, sizeof(char *));
  int n = 0;
  for (int k = 0; k < st->n * (dup ? 2 : 1); k++) {
    int i = k % st->n;
    const nn_st_tensor *s = &st->t[i];
    if (k >= st->n && strncmp(s->name, from, strlen(from))) continue;
    if (drop && !strcmp(s->name, drop)) continue;
    bufs[n] = malloc(sizeof(float) * (size_t)(s->numel ? s->numel : 1));
    embr__nn_st_read_f32(s, bufs[n]);
    names[n] = malloc(strlen(s->name) + 64);
    if (from && (!dup || k >= st->n) && !strncmp(s->name, from, strlen(from))) sprintf(names[n], "%s%s", to, s->name + strlen(from));
    else strcpy(names[n], s->name);
    t[n] = (nn_st_out){names[n], s->ndim, {0}, bufs[n], NN_ST_F32};
    for (int d = 0; d < s->ndim; d++) t[n].shape[d] = s->shape[d];
    n++;
  }
  REQUIRE(embr__nn_st_write(path, t, n, NULL, NULL, 0) == 0);
  for (int i = 0; i < n; i++) free(bufs[i]), free(names[i]);
  free(bufs), free(names), free(t);
}

/* Files of other networks, a tensor missing, two backbones: one message naming file and tensor. */
static void test_bad_checkpoints(void) {
  static const char *others[] = {"clip_openai.safetensors", "nn_resnet18.safetensors"};
  embr_model_params p = embr_model_params_arch("vit");
  for (int i = 0; i < 2; i++) {
    ref r;
    if (ref_open(&r, others[i])) SKIP("tests/ref/%s unreadable", others[i]);
    embr__nn_st_close(&r.st);
    embr_model *m = NULL;
    CHECK_EQ_INT(embr_model_load_weights(r.path, &p, &m), EMBR_EFORMAT);
    CHECK(m == NULL);
    const char *e = embr_last_error();
    CHECK_MSG(strstr(e, r.path) && strstr(e, "patch_embed.proj.weight") && !strchr(e, '\n'), "%s", e);
  }
  ref r;
  if (ref_open(&r, "dino_fb.safetensors")) SKIP("tests/ref/dino_fb.safetensors unreadable");
  const char *path = th_path("damaged.safetensors"), *drop = "teacher.backbone.blocks.1.mlp.fc2.bias";
  rewrite(&r.st, path, drop, NULL, NULL, 0);
  embr_model *m = NULL;
  CHECK_EQ_INT(embr_model_load(path, &m), EMBR_EFORMAT);
  CHECK_MSG(strstr(embr_last_error(), drop) && strstr(embr_last_error(), "missing"), "%s", embr_last_error());
  /* the same backbone again as the student: which one is meant? */
  const char *two = th_path("two.safetensors");
  rewrite(&r.st, two, NULL, "teacher.backbone.", "student.module.backbone.", 1);
  CHECK_EQ_INT(embr_model_load_weights(two, &p, &m), EMBR_EFORMAT);
  CHECK_MSG(strstr(embr_last_error(), "two ViT backbones"), "%s", embr_last_error());
  CHECK_EQ_INT(embr_model_load(two, &m), EMBR_EFORMAT);
  CHECK_MSG(strstr(embr_last_error(), two) && strstr(embr_last_error(), "two ViT backbones"), "%s", embr_last_error());
  /* without a prefix, loaded by name */
  rewrite(&r.st, path, NULL, "teacher.backbone.", "", 0);
  CHECK_MSG(embr_model_load(path, &m) == 0, "%s", embr_last_error());
  embr_model_free(m);
  embr__nn_st_close(&r.st);
}

/* The named configurations have the published sizes (timm's vit_small_patch16_224 without its
 * classifier: 21,665,664 parameters; vit_base_patch16_224: 85,798,656), counted on the table. */
static void test_named_configurations(void) {
  static const struct { const char *arch; int64_t params; } want[] = {{"vit-s-16", 21665664}, {"vit-b-16", 85798656}};
  for (int i = 0; i < 2; i++) {
    embr_model_params p = embr_model_params_arch(want[i].arch);
    embr_model *m = NULL;
    REQUIRE(embr__model_build(&p, 0, 0, &m) == 0);
    CHECK_MSG(embr_model_parameters(m) == want[i].params, "%s: %lld parameters, want %lld", want[i].arch,
              (long long)embr_model_parameters(m), (long long)want[i].params);
    embr_model_free(m);
  }
  embr_model_params p = embr_model_params_arch("dinov2-vit-s-14");
  CHECK_EQ_INT(p.pos_size, 518);
  CHECK_EQ_INT(p.input.height, 224);
  CHECK_EQ_INT(p.input.short_side, 256);
  CHECK_EQ_INT(p.layer_scale, 1);
  p = embr_model_params_arch("vit-tiny");
  CHECK_EQ_INT(p.vision.width, 192);
  CHECK_EQ_INT(p.vision.heads, 3);
  CHECK_EQ_INT(p.input.height, 28);
  CHECK_EQ_INT(p.input.short_side, 32);
  p.vision.heads = 5;
  embr_model *m = NULL;
  CHECK_EQ_INT(embr_model_create(&p, 1, &m), EMBR_EINVAL);
}

/* Drop-path in a whole network: rates rising linearly over the blocks; in training the output
 * depends on the seed only, and a dropped branch changes it; at inference it is the network
 * without drop-path. */
static void test_drop_path_network(void) {
  embr_model_params p = embr_model_params_arch("vit-tiny");
  p.vision.layers = 3, p.vision.width = 24, p.embedding_dim = 24, p.drop_path = 0.5f;
  embr_model *m = NULL, *m0 = NULL;
  REQUIRE(embr_model_create(&p, 3, &m) == 0);
  p.drop_path = 0;
  REQUIRE(embr_model_create(&p, 3, &m0) == 0);
  const dino_vit *d = m->net;
  CHECK(d->v.tf.b[0].drop_path == 0 && fabsf(d->v.tf.b[1].drop_path - 0.25f) < 1e-7f && d->v.tf.b[2].drop_path == 0.5f);
  enum { B = 8, N = B * 3 * 28 * 28 };
  float *x = malloc(sizeof(float) * N), e[B * 24], e0[B * 24], t[3][B * 24];
  for (int i = 0; i < N; i++) x[i] = (float)sin(i * 0.37);
  CHECK(embr_model_embed(m, x, B, B, e) == 0);
  CHECK(embr_model_embed(m0, x, B, B, e0) == 0);
  CHECK(memcmp(e, e0, sizeof e) == 0);
  for (int k = 0; k < 3; k++) {
    nn_ctx ctx;
    embr__nn_ctx_init(&ctx, &m->P, 1, 0, k < 2 ? 5 : 6);
    nn_t *y = embr__model_forward(m, &ctx, embr__nn_wrap(&ctx, x, B, 3, 28, 28));
    REQUIRE(y);
    memcpy(t[k], y->d, sizeof t[k]);
    embr__nn_ctx_free(&ctx);
  }
  CHECK(memcmp(t[0], t[1], sizeof t[0]) == 0);
  CHECK(memcmp(t[0], t[2], sizeof t[0]) != 0);
  CHECK(memcmp(t[0], e, sizeof t[0]) != 0);
  free(x);
  embr_model_free(m), embr_model_free(m0);
}

/* An embr ViT file with its 'embr.vit' metadata replaced: malformed values are refused naming
 * the file and the key. */
static void test_bad_metadata(void) {
  ref r;
  if (ref_open(&r, "dino_fb.safetensors")) SKIP("tests/ref/dino_fb.safetensors unreadable");
  embr_model *m = load_ref(&r);
  REQUIRE(m);
  REQUIRE(embr_model_set_pool(m, EMBR_POOL_CLS_AVG) == 0);
  const char *good = th_path("good.safetensors"), *bad = th_path("bad.safetensors");
  REQUIRE(embr_model_save(m, good) == 0);
  embr_model_free(m);
  embr__nn_st_close(&r.st);
  nn_st st;
  REQUIRE(embr__nn_st_open(&st, good) == 0);
  nn_st_out *t = calloc((size_t)st.n, sizeof(nn_st_out));
  float **bufs = calloc((size_t)st.n, sizeof(float *));
  for (int i = 0; i < st.n; i++) {
    bufs[i] = malloc(sizeof(float) * (size_t)st.t[i].numel);
    embr__nn_st_read_f32(&st.t[i], bufs[i]);
    t[i] = (nn_st_out){st.t[i].name, st.t[i].ndim, {0}, bufs[i], NN_ST_F32};
    for (int d = 0; d < st.t[i].ndim; d++) t[i].shape[d] = st.t[i].shape[d];
  }
  static const char *vals[] = {"16,0,0,cls+avg", "16,2,0,cls+avg", "16,0,1.5,cls+avg", "16,0,0,mean", "x", "16,0,0,cls",
                               "0,0,0,cls+avg", "99999999999999999999,0,0,cls+avg", "16,0,0,cls+avg,", ""};
  for (size_t v = 0; v < sizeof vals / sizeof vals[0]; v++) {
    char *key[32], *val[32];
    int nm = 0;
    for (int i = 0; i < st.nmeta; i++)
      key[nm] = st.meta_key[i], val[nm++] = !strcmp(st.meta_key[i], "embr.vit") ? (char *)vals[v] : st.meta_val[i];
    REQUIRE(embr__nn_st_write(bad, t, st.n, key, val, nm) == 0);
    embr_model *m2 = NULL;
    int rc = embr_model_load(bad, &m2);
    if (v == 0) {
      CHECK_MSG(rc == 0, "%s", embr_last_error());
    } else {
      CHECK_MSG(rc == EMBR_EFORMAT && strstr(embr_last_error(), bad) &&
                    (strstr(embr_last_error(), "embr.vit") || strstr(embr_last_error(), "embr.embedding_dim")),
                "embr.vit '%s': %d %s", vals[v], rc, embr_last_error());
    }
    embr_model_free(m2);
  }
  for (int i = 0; i < st.n; i++) free(bufs[i]);
  free(bufs), free(t);
  embr__nn_st_close(&st);
}

/* ---- attention maps ------------------------------------------------------------------------------ */

/* The slow reference of the mask: value i is kept when the values strictly above it hold less
 * than `mass` of the total (so the largest values are kept until their share reaches mass, the
 * one that crosses included). Distinct values assumed. */
static void slow_mask(const float *a, int n, float mass, uint8_t *keep) {
  double total = 0;
  for (int i = 0; i < n; i++) total += a[i];
  for (int i = 0; i < n; i++) {
    double above = 0;
    for (int j = 0; j < n; j++)
      if (a[j] > a[i]) above += a[j];
    keep[i] = above / total < mass;
  }
}

static void test_attention_mask(void) {
  embr_rng r;
  embr_rng_seed(&r, 4);
  float a[400];
  uint8_t k1[400], k2[400];
  static const float masses[] = {0.6f, 0.1f, 0.5f, 0.9f, 1.0f, 0.001f};
  int bad = 0, cases = 0;
  for (int n = 1; n <= 400; n += 13)
    for (int mi = 0; mi < 6; mi++) {
      for (int i = 0; i < n; i++) a[i] = (float)embr_rng_double(&r) * (i % 5 == 0 ? 10.0f : 1.0f) + 1e-6f;
      REQUIRE(embr_attention_mask(a, n, masses[mi], k1) == 0);
      slow_mask(a, n, masses[mi], k2);
      bad += memcmp(k1, k2, (size_t)n) != 0;
      cases++;
    }
  CHECK_MSG(bad == 0, "%d of %d masks differ from the slow reference", bad, cases);
  /* by hand: 0.5 0.3 0.2 (shares) at 60 %: 0.5 is not enough, 0.5 + 0.3 crosses: keep both */
  float h[3] = {2, 5, 3};
  REQUIRE(embr_attention_mask(h, 3, 0.6f, k1) == 0);
  CHECK(k1[0] == 0 && k1[1] == 1 && k1[2] == 1);
  REQUIRE(embr_attention_mask(h, 3, 0.45f, k1) == 0); /* at 45 %: the largest share (0.5) alone */
  CHECK(k1[1] == 1 && k1[2] == 0 && k1[0] == 0);
  float z[2] = {0, 0}, neg[2] = {1, -1};
  CHECK_EQ_INT(embr_attention_mask(z, 2, 0.6f, k1), EMBR_EINVAL);
  CHECK_EQ_INT(embr_attention_mask(neg, 2, 0.6f, k1), EMBR_EINVAL);
  CHECK_EQ_INT(embr_attention_mask(h, 3, 0, k1), EMBR_EINVAL);
  CHECK_EQ_INT(embr_attention_mask(h, 3, 1.5f, k1), EMBR_EINVAL);
}

/* The model's maps are PyTorch's class-token attention to the patches; its masks are the slow
 * reference's on PyTorch's maps (per head, then the heads' mean); the picture's panels. */
static void test_attention_maps(void) {
  ref r;
  if (ref_open(&r, "dino_fb.safetensors")) SKIP("tests/ref/dino_fb.safetensors unreadable");
  embr_model *m = load_ref(&r);
  REQUIRE(m);
  static const int sides[] = {16, 24};
  for (int si = 0; si < 2; si++) {
    int S = sides[si], H = 0, g = 0;
    REQUIRE(embr_model_attention_size(m, S, &H, &g) == 0);
    CHECK(H == 3 && g == S / 4);
    int G = g * g, T = G + 1;
    char name[64];
    snprintf(name, sizeof name, "input.%d", S);
    float *x = ref_floats(&r.st, name, NULL);
    snprintf(name, sizeof name, "out.attn.%d", S);
    float *want = ref_floats(&r.st, name, NULL); /* (2, H, T) */
    float *maps = malloc(sizeof(float) * (size_t)(2 * H * G));
    uint8_t *masks = malloc((size_t)(2 * (H + 1) * G)), *ref_mask = malloc((size_t)G);
    float *mean = malloc(sizeof(float) * (size_t)G);
    REQUIRE(x && want && maps && masks);
    REQUIRE(embr_model_attention(m, x, 2, S, 0.6f, maps, masks) == 0);
    double d = 0;
    int bad = 0;
    for (int b = 0; b < 2; b++) {
      for (int i = 0; i < G; i++) mean[i] = 0;
      for (int h = 0; h < H; h++) {
        const float *w = want + ((int64_t)b * H + h) * T + 1;
        for (int i = 0; i < G; i++) d = fmax(d, fabs((double)maps[(b * H + h) * G + i] - w[i])), mean[i] += w[i] / H;
        slow_mask(w, G, 0.6f, ref_mask);
        bad += memcmp(ref_mask, masks + (b * (H + 1) + h) * G, (size_t)G) != 0;
      }
      slow_mask(mean, G, 0.6f, ref_mask);
      bad += memcmp(ref_mask, masks + (b * (H + 1) + H) * G, (size_t)G) != 0;
    }
    CHECK_MSG(d <= 1e-5, "%d px: maps differ from PyTorch's by %.2e", S, d);
    CHECK_MSG(bad == 0, "%d px: %d masks differ from the slow reference on PyTorch's maps", S, bad);
    if (si == 1) { /* the picture: view, 3 heads, mask; a dropped patch darkened, a kept one not */
      embr_image view = {S, S, 3, malloc((size_t)S * S * 3), NULL}, pic;
      for (int i = 0; i < S * S * 3; i++) view.px[i] = (uint8_t)(i * 7 % 251);
      REQUIRE(embr_attention_picture(&view, maps, masks, H, g, &pic) == 0);
      CHECK(pic.width == 5 * S + 4 * 4 && pic.height == S && pic.channels == 3);
      const uint8_t *mk = masks + H * G;
      int px_bad = 0;
      for (int y = 0; y < S; y++)
        for (int xx = 0; xx < S; xx++) {
          int keep = mk[(y / 4) * g + xx / 4];
          for (int c = 0; c < 3; c++) {
            int v = view.px[(y * S + xx) * 3 + c], got = pic.px[((int64_t)y * pic.width + 4 * (S + 4) + xx) * 3 + c];
            int w = keep ? v : (int)lrintf(v / 255.0f * 0.25f * 255.0f);
            px_bad += got != w || pic.px[((int64_t)y * pic.width + xx) * 3 + c] != v;
          }
        }
      CHECK_MSG(px_bad == 0, "%d picture values are not the view, or the mask panel's darkening", px_bad);
      embr_image_free(&pic);
      free(view.px);
    }
    free(x), free(want), free(maps), free(masks), free(ref_mask), free(mean);
  }
  CHECK_EQ_INT(embr_model_attention_size(m, 18, NULL, NULL), EMBR_EINVAL);
  embr_model_free(m);
  embr__nn_st_close(&r.st);
}

int main(int argc, char **argv) {
  return RUN_TESTS(argc, argv, test_golden_facebookresearch, test_golden_hugging_face, test_bad_checkpoints,
                   test_named_configurations, test_drop_path_network, test_bad_metadata, test_attention_mask,
                   test_attention_maps);
}

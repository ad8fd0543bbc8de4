/* Training end to end on a small synthetic problem: labelled 16x16 images (a smooth random
 * template per class, shifted and noisy per image) written to a folder; a small ResNet trained
 * with ArcFace must lower its loss and separate the classes (verification accuracy over all
 * pairs, against the untrained network's); checkpoints resume; bad inputs are refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "embr/embr.h"
#include "harness.h"
#include "nn/nn.h" /* to rewrite model files' metadata and tensors in the tests below */

enum { CLASSES = 4, PER = 12, SIDE = 16 };

static const char *dir; /* the image folder (class sub-folders) */

static void make_dataset(void) {
  dir = th_fresh_dir("train");
  embr_rng r;
  embr_rng_seed(&r, 5);
  for (int c = 0; c < CLASSES; c++) {
    char path[512];
    snprintf(path, sizeof(path), "%s/class%d", dir, c);
    mkdir(path, 0755);
    double fx = 1 + embr_rng_double(&r) * 3, fy = 1 + embr_rng_double(&r) * 3, ph = embr_rng_double(&r) * 6.28;
    for (int i = 0; i < PER; i++) {
      uint8_t px[SIDE * SIDE];
      int dx = (int)embr_rng_below(&r, 3) - 1, dy = (int)embr_rng_below(&r, 3) - 1;
      for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
          double v = 128 + 80 * sin(fx * (x + dx) / SIDE * 6.28 + ph) * cos(fy * (y + dy) / SIDE * 6.28) + 20 * embr_rng_normal(&r);
          px[y * SIDE + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
      embr_image im = {SIDE, SIDE, 1, px, NULL};
      snprintf(path, sizeof(path), "%s/class%d/%02d.png", dir, c, i);
      CHECK(embr_image_write(path, &im) == 0);
    }
  }
}

static embr_model *tiny_model(uint64_t seed, int dim) {
  embr_model_params p = embr_model_params_default();
  p.arch = "resnet18";
  p.width = 4;
  p.embedding_dim = dim;
  p.input.channels = 1;
  p.input.height = p.input.width = SIDE;
  embr_model *m = NULL;
  CHECK(embr_model_create(&p, seed, &m) == 0);
  return m;
}

/* Verification accuracy of the model's embeddings over all pairs of the dataset. */
static double pair_accuracy(embr_model *m, const embr_dataset *ds) {
  int64_t n = embr_dataset_size(ds);
  embr_image_spec s = embr_model_input(m);
  int64_t per = (int64_t)s.channels * s.height * s.width;
  float *x = malloc(sizeof(float) * (size_t)(n * per)), *emb = malloc(sizeof(float) * (size_t)n * embr_model_dim(m));
  int32_t *lab = malloc(sizeof(int32_t) * (size_t)n);
  for (int64_t i = 0; i < n; i++) {
    embr_image im;
    CHECK(embr_dataset_image(ds, i, &im) == 0);
    CHECK(embr_image_to_tensor(&im, &s, x + i * per) == 0);
    embr_image_free(&im);
    lab[i] = embr_dataset_label(ds, i);
  }
  CHECK(embr_model_embed(m, x, n, 16, emb) == 0);
  embr_pairs pairs;
  embr_verify_result r = {0};
  CHECK(embr_pairs_all(lab, n, &pairs) == 0);
  CHECK(embr_eval_verify(emb, n, embr_model_dim(m), embr_model_dim(m), &pairs, 4, 1e-2, 1, &r) == 0);
  embr_pairs_free(&pairs);
  free(x), free(emb), free(lab);
  return r.accuracy;
}

static embr_train_params quick_params(void) {
  embr_train_params p = embr_train_params_default(EMBR_OBJ_ARCFACE);
  p.scale = 16, p.m2 = 0.2f;
  p.epochs = 15, p.batch = 8, p.lr = 0.05f, p.pad = 1, p.flip = 0;
  p.n_threads = 2;
  return p;
}

static void test_arcface_separates_classes(void) {
  embr_dataset *ds = NULL;
  REQUIRE(embr_dataset_open_folder(dir, &ds) == 0);
  embr_model *m = tiny_model(1, 16);
  double before = pair_accuracy(m, ds);
  embr_train_params p = quick_params();
  p.epochs = 1;
  embr_train_stats first, last;
  CHECK(embr_model_train(m, ds, NULL, 0, &p, &first) == 0);
  p.epochs = 15;
  embr_model_free(m);
  m = tiny_model(1, 16);
  CHECK(embr_model_train(m, ds, NULL, 0, &p, &last) == 0);
  double after = pair_accuracy(m, ds);
  fprintf(stderr, "  loss after 1 epoch %.3f, after 15 %.3f; pair accuracy untrained %.3f, trained %.3f\n", first.last_loss,
          last.last_loss, before, after);
  CHECK_EQ_INT(last.epochs_done, 15);
  CHECK_MSG(last.last_loss < 0.5 * first.last_loss, "loss %.3f -> %.3f", first.last_loss, last.last_loss);
  CHECK_MSG(after >= 0.95 && after > before, "pair accuracy %.3f (untrained %.3f)", after, before);
  embr_model_free(m);
  embr_dataset_free(ds);
}

static void test_softmax_objective_trains(void) {
  embr_dataset *ds = NULL;
  REQUIRE(embr_dataset_open_folder(dir, &ds) == 0);
  embr_model *m = tiny_model(2, 16);
  embr_train_params p = quick_params();
  p.objective = EMBR_OBJ_SOFTMAX;
  embr_train_stats st;
  CHECK(embr_model_train(m, ds, NULL, 0, &p, &st) == 0);
  CHECK_MSG(st.last_accuracy > 0.8, "softmax training accuracy %.3f (chance: 0.25)", st.last_accuracy);
  embr_model_free(m);
  embr_dataset_free(ds);
}

/* A model file round trip gives the same embeddings; a checkpoint resumes; mismatches are refused. */
static void test_save_load_resume(void) {
  embr_dataset *ds = NULL;
  REQUIRE(embr_dataset_open_folder(dir, &ds) == 0);
  char model[512], ckpt[512];
  snprintf(model, sizeof(model), "%s/model.safetensors", dir);
  snprintf(ckpt, sizeof(ckpt), "%s/ckpt.safetensors", dir);
  embr_model *m = tiny_model(3, 16);
  embr_train_params p = quick_params();
  p.epochs = 3;
  p.checkpoint = ckpt;
  embr_train_stats st;
  CHECK(embr_model_train(m, ds, NULL, 0, &p, &st) == 0);
  CHECK(embr_model_save(m, model) == 0);
  embr_model *l = NULL;
  REQUIRE(embr_model_load(model, &l) == 0);
  CHECK(embr_model_dim(l) == 16 && !strcmp(embr_model_arch(l), "resnet18") && embr_model_input(l).channels == 1);
  float x[2 * SIDE * SIDE], a[32], b[32];
  for (int i = 0; i < 2 * SIDE * SIDE; i++) x[i] = (float)sin(i * 0.1);
  CHECK(embr_model_embed(m, x, 2, 2, a) == 0 && embr_model_embed(l, x, 2, 2, b) == 0);
  CHECK(!memcmp(a, b, sizeof(a)));
  /* Resume from the checkpoint for two more epochs. */
  p.checkpoint = NULL, p.resume = ckpt, p.epochs = 5;
  CHECK(embr_model_train(l, ds, NULL, 0, &p, &st) == 0);
  CHECK_EQ_INT(st.epochs_done, 5);
  /* A checkpoint of a network with another embedding size does not fit. */
  embr_model *other = tiny_model(3, 8);
  CHECK(embr_model_train(other, ds, NULL, 0, &p, &st) == EMBR_EFORMAT);
  CHECK(strstr(embr_last_error(), "shape") != NULL);
  /* A file that is not an embr model. */
  FILE *f = fopen(model, "wb");
  fputs("not a model", f);
  fclose(f);
  embr_model *bad = NULL;
  CHECK(embr_model_load(model, &bad) == EMBR_EFORMAT && bad == NULL);
  embr_model_free(m), embr_model_free(l), embr_model_free(other);
  embr_dataset_free(ds);
}

static void test_one_class_refused(void) {
  embr_dataset *ds = NULL;
  REQUIRE(embr_dataset_open_folder(dir, &ds) == 0);
  int64_t first_class[PER];
  for (int i = 0; i < PER; i++) first_class[i] = i; /* items are sorted by class */
  embr_model *m = tiny_model(4, 16);
  embr_train_params p = quick_params();
  embr_train_stats st;
  CHECK(embr_model_train(m, ds, first_class, PER, &p, &st) == EMBR_EINVAL);
  CHECK(strstr(embr_last_error(), "2 classes") != NULL);
  p.batch = 1000;
  CHECK(embr_model_train(m, ds, NULL, 0, &p, &st) == EMBR_EINVAL);
  embr_model_free(m);
  embr_dataset_free(ds);
}

static int cancel_cb(void *user, uint64_t done, uint64_t total, double rate, const char *detail) {
  (void)user, (void)total, (void)rate, (void)detail;
  return done > 0;
}

/* embr_model_embed_dataset against a reference built image by image (decode, tensor, embed):
 * subset order, batching, normalisation, labels; cancel and bad arguments. */
static void test_embed_dataset(void) {
  embr_dataset *ds = NULL;
  REQUIRE(embr_dataset_open_folder(dir, &ds) == 0);
  embr_model *m = tiny_model(3, 8);
  embr_image_spec sp = embr_model_input(m);
  int64_t per = (int64_t)sp.channels * sp.height * sp.width;
  const int64_t subset[] = {3, 0, 17, 40, 5, 9, 22};
  enum { NS = 7, D = 8 };
  float *x = malloc(sizeof(float) * (size_t)per), ref[D], got[NS * D], raw[NS * D];
  int32_t lab[NS];
  CHECK(embr_model_embed_dataset(m, ds, subset, NS, 3, 1, NULL, got, lab) == 0);
  CHECK(embr_model_embed_dataset(m, ds, subset, NS, 4, 0, NULL, raw, NULL) == 0);
  for (int i = 0; i < NS; i++) {
    embr_image im;
    REQUIRE(embr_dataset_image(ds, subset[i], &im) == 0);
    REQUIRE(embr_image_to_tensor(&im, &sp, x) == 0);
    embr_image_free(&im);
    REQUIRE(embr_model_embed(m, x, 1, 1, ref) == 0);
    double norm = 0;
    for (int j = 0; j < D; j++) norm += (double)ref[j] * ref[j];
    norm = sqrt(norm);
    for (int j = 0; j < D; j++) {
      CHECK_NEAR(raw[i * D + j], ref[j], 1e-4 * (1 + fabs(ref[j])));
      CHECK_NEAR(got[i * D + j], ref[j] / norm, 1e-4);
    }
    CHECK_EQ_INT(lab[i], embr_dataset_label(ds, subset[i]));
  }
  /* all items when no subset: n must be the dataset's size */
  int64_t n = embr_dataset_size(ds);
  float *all = malloc(sizeof(float) * (size_t)(n * D));
  CHECK(embr_model_embed_dataset(m, ds, NULL, n, 16, 1, NULL, all, NULL) == 0);
  for (int j = 0; j < D; j++) CHECK_NEAR(all[3 * D + j], got[j], 1e-4);
  CHECK(embr_model_embed_dataset(m, ds, NULL, n - 1, 16, 1, NULL, all, NULL) == EMBR_EINVAL);
  CHECK(embr_model_embed_dataset(m, ds, subset, NS, 0, 1, NULL, all, NULL) == EMBR_EINVAL);
  embr_progress pr = {cancel_cb, NULL, 1e-9};
  CHECK(embr_model_embed_dataset(m, ds, NULL, n, 4, 1, &pr, all, NULL) == EMBR_ECANCELED);
  free(all);
  free(x);
  embr_model_free(m);
  embr_dataset_free(ds);
}

/* ---- hostile and foreign model files ------------------------------------------------------------ */

typedef struct edit {
  const char *key, *val;   /* metadata to set (val NULL: remove the key) */
  const char *nan_tensor;  /* a tensor to poison with a NaN at element 1 */
  int plain;               /* drop all metadata and add PyTorch's I64 num_batches_tracked buffers */
} edit;

/* Copies safetensors file `src` to `dst`, changing it as `e` says. */
static int rewrite(const char *src, const char *dst, const edit *e) {
  nn_st st;
  if (embr__nn_st_open(&st, src)) return -1;
  int n = st.n, k = 0, nm = 0;
  nn_st_out *t = calloc((size_t)n * 2 + 1, sizeof(nn_st_out));
  float **bufs = calloc((size_t)n + 1, sizeof(float *));
  char **names = calloc((size_t)n + 1, sizeof(char *)), *mk[32], *mv[32];
  static const int64_t tracked = 7;
  for (int i = 0; i < n; i++) {
    const nn_st_tensor *x = &st.t[i];
    bufs[i] = malloc(sizeof(float) * (size_t)(x->numel ? x->numel : 1));
    embr__nn_st_read_f32(x, bufs[i]);
    if (e->nan_tensor && !strcmp(x->name, e->nan_tensor)) bufs[i][1] = NAN;
    t[k] = (nn_st_out){x->name, x->ndim, {x->shape[0], x->shape[1], x->shape[2], x->shape[3]}, bufs[i], NN_ST_F32};
    k++;
    size_t len = strlen(x->name);
    if (e->plain && len > 13 && !strcmp(x->name + len - 13, ".running_mean")) {
      names[i] = malloc(len + 16);
      snprintf(names[i], len + 16, "%.*s.num_batches_tracked", (int)(len - 13), x->name);
      t[k++] = (nn_st_out){names[i], 1, {1}, &tracked, NN_ST_I64};
    }
  }
  int replaced = 0;
  for (int i = 0; i < st.nmeta && !e->plain; i++) {
    if (e->key && !strcmp(st.meta_key[i], e->key)) {
      replaced = 1;
      if (!e->val) continue;
      mk[nm] = st.meta_key[i], mv[nm++] = (char *)e->val;
    } else {
      mk[nm] = st.meta_key[i], mv[nm++] = st.meta_val[i];
    }
  }
  if (e->key && e->val && !replaced) mk[nm] = (char *)e->key, mv[nm++] = (char *)e->val;
  int rc = embr__nn_st_write(dst, t, k, mk, mv, nm);
  for (int i = 0; i < n; i++) free(bufs[i]), free(names[i]);
  free(bufs), free(names), free(t);
  embr__nn_st_close(&st);
  return rc;
}

/* Every metadata number is parsed strictly and checked against the file's own tensors before a
 * buffer is sized from it: a width of 4096 in a file of a width-4 network is a shape error (not an
 * attempt to allocate ~180 GB). NaN weights are refused naming file and tensor. */
static void test_hostile_model_files(void) {
  char model[512], bad[512];
  snprintf(model, sizeof(model), "%s/h_model.safetensors", dir);
  snprintf(bad, sizeof(bad), "%s/h_bad.safetensors", dir);
  embr_model *m = tiny_model(6, 16), *l = NULL;
  REQUIRE(embr_model_save(m, model) == 0);
  static const edit shape_lies[] = {{"embr.width", "4096", NULL, 0}, {"embr.embedding_dim", "65536", NULL, 0},
                                    {"embr.input", "3x16x16", NULL, 0}, {"embr.head", "margin", NULL, 0},
                                    {"embr.arch", "mobilefacenet", NULL, 0}};
  for (size_t i = 0; i < sizeof shape_lies / sizeof shape_lies[0]; i++) {
    REQUIRE(rewrite(model, bad, &shape_lies[i]) == 0);
    embr_model_free(l), l = NULL;
    /* embr.head margin with embr.classes 0: refused as "a head with no classes" */
    int rc = embr_model_load(bad, &l);
    CHECK_MSG(rc == EMBR_EFORMAT && l == NULL && strstr(embr_last_error(), bad) &&
                  (strstr(embr_last_error(), "shape") || strstr(embr_last_error(), "missing") ||
                   strstr(embr_last_error(), "no classes") || strstr(embr_last_error(), "width")),
              "%s=%s: rc %d, %s", shape_lies[i].key, shape_lies[i].val, rc, embr_last_error());
  }
  static const edit number_lies[] = {
      {"embr.width", "4 ", NULL, 0},     {"embr.width", "+4", NULL, 0},   {"embr.width", " 4", NULL, 0},
      {"embr.width", "4x", NULL, 0},     {"embr.width", "-4", NULL, 0},   {"embr.width", "99999999999999999999", NULL, 0},
      {"embr.width", "4097", NULL, 0},   {"embr.width", NULL, NULL, 0},   {"embr.embedding_dim", "1e3", NULL, 0},
      {"embr.classes", "-1", NULL, 0},   {"embr.input", "1x16", NULL, 0}, {"embr.input", "1x16x16x", NULL, 0},
      {"embr.input", "1x-16x16", NULL, 0}, {"embr.input", "2x16x16", NULL, 0}, {"embr.input", "1x4x16", NULL, 0},
      {"embr.mean", "0.5,0.5", NULL, 0}, {"embr.mean", "nan,0,0", NULL, 0}, {"embr.std", "0.5,0,0.5", NULL, 0},
      {"embr.std", "0.5,0.5,inf", NULL, 0}, {"embr.head", "mystery", NULL, 0}, {"embr.resize", "lanczos", NULL, 0},
      {"embr.arch", "resnet\x01", NULL, 0}};
  for (size_t i = 0; i < sizeof number_lies / sizeof number_lies[0]; i++) {
    REQUIRE(rewrite(model, bad, &number_lies[i]) == 0);
    int rc = embr_model_load(bad, &l);
    const char *msg = embr_last_error();
    CHECK_MSG(rc == EMBR_EFORMAT && l == NULL && strstr(msg, bad) && !strchr(msg, '\n') && !strchr(msg, '\x01'),
              "%s='%s' accepted or badly reported: rc %d, %s", number_lies[i].key,
              number_lies[i].val ? number_lies[i].val : "(none)", rc, msg);
  }
  edit poison = {NULL, NULL, "layer2.0.conv1.weight", 0};
  REQUIRE(rewrite(model, bad, &poison) == 0);
  CHECK_EQ_INT(embr_model_load(bad, &l), EMBR_EVALUE);
  CHECK(strstr(embr_last_error(), bad) && strstr(embr_last_error(), "'layer2.0.conv1.weight'"));
  /* The untouched copy still loads. */
  edit none = {NULL, NULL, NULL, 0};
  REQUIRE(rewrite(model, bad, &none) == 0);
  CHECK_EQ_INT(embr_model_load(bad, &l), 0);
  embr_model_free(l);
  embr_model_free(m);
}

/* A PyTorch state dict of the same network (torchvision names, I64 num_batches_tracked buffers,
 * no embr metadata) loads with the architecture given, sizes read off its tensors, and embeds
 * exactly as the network it came from. */
static void test_plain_pytorch_weights(void) {
  char model[512], plain[512];
  snprintf(model, sizeof(model), "%s/p_model.safetensors", dir);
  snprintf(plain, sizeof(plain), "%s/p_plain.safetensors", dir);
  embr_model *m = tiny_model(7, 16), *l = NULL;
  REQUIRE(embr_model_save(m, model) == 0);
  edit e = {NULL, NULL, NULL, 1};
  REQUIRE(rewrite(model, plain, &e) == 0);
  CHECK_EQ_INT(embr_model_load(plain, &l), EMBR_EFORMAT);
  CHECK(strstr(embr_last_error(), "--arch") != NULL);
  embr_model_params p = embr_model_params_default();
  p.arch = "resnet18", p.width = 0, p.embedding_dim = 0, p.input.channels = 0;
  p.input.height = p.input.width = SIDE;
  REQUIRE(embr_model_load_weights(plain, &p, &l) == 0);
  CHECK_EQ_INT(embr_model_dim(l), 16);
  CHECK_EQ_INT(embr_model_input(l).channels, 1);
  float x[3 * SIDE * SIDE], a[48], b[48];
  for (int i = 0; i < 3 * SIDE * SIDE; i++) x[i] = (float)cos(i * 0.37);
  CHECK(embr_model_embed(m, x, 3, 3, a) == 0 && embr_model_embed(l, x, 3, 3, b) == 0);
  CHECK(!memcmp(a, b, sizeof a));
  embr_model_free(l), l = NULL;
  /* Another architecture, or a size that disagrees with the file: a message naming the tensor. */
  p.arch = "mobilefacenet";
  CHECK_EQ_INT(embr_model_load_weights(plain, &p, &l), EMBR_EFORMAT);
  CHECK(strstr(embr_last_error(), plain) && strstr(embr_last_error(), "conv1.conv.weight"));
  p.arch = "resnet18", p.embedding_dim = 8;
  CHECK_EQ_INT(embr_model_load_weights(plain, &p, &l), EMBR_EFORMAT);
  CHECK(strstr(embr_last_error(), "fc.weight") && strstr(embr_last_error(), "shape"));
  p.arch = "vgg16";
  CHECK_EQ_INT(embr_model_load_weights(plain, &p, &l), EMBR_EINVAL);
  CHECK(l == NULL);
  embr_model_free(m);
}

/* Checkpoint positions are parsed strictly and checked against the run: a negative epoch, an epoch
 * past the run's, a step that would overflow, or numbers that disagree are refused by name. */
static void test_hostile_checkpoints(void) {
  embr_dataset *ds = NULL;
  REQUIRE(embr_dataset_open_folder(dir, &ds) == 0);
  char ckpt[512], bad[512];
  snprintf(ckpt, sizeof(ckpt), "%s/hc_ckpt.safetensors", dir);
  snprintf(bad, sizeof(bad), "%s/hc_bad.safetensors", dir);
  embr_model *m = tiny_model(8, 16);
  embr_train_params p = quick_params();
  p.epochs = 1, p.checkpoint = ckpt;
  embr_train_stats st;
  REQUIRE(embr_model_train(m, ds, NULL, 0, &p, &st) == 0);
  p.checkpoint = NULL, p.resume = bad, p.epochs = 2;
  static const edit lies[] = {{"embr.epoch", "-1", NULL, 0},
                              {"embr.epoch", "3", NULL, 0},
                              {"embr.epoch", "1x", NULL, 0},
                              {"embr.epoch", "99999999999", NULL, 0},
                              {"embr.optim_step", "9223372036854775807", NULL, 0},
                              {"embr.optim_step", "-5", NULL, 0},
                              {"embr.optim_step", "0", NULL, 0},
                              {"embr.optim_step", "", NULL, 0},
                              {"embr.optim_step", NULL, NULL, 0}};
  for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
    REQUIRE(rewrite(ckpt, bad, &lies[i]) == 0);
    int rc = embr_model_train(m, ds, NULL, 0, &p, &st);
    CHECK_MSG(rc == EMBR_EFORMAT && strstr(embr_last_error(), bad) && strstr(embr_last_error(), "embr."),
              "%s='%s': rc %d, %s", lies[i].key, lies[i].val ? lies[i].val : "(none)", rc, embr_last_error());
  }
  edit poison = {NULL, NULL, "optim.m.fc.weight", 0};
  REQUIRE(rewrite(ckpt, bad, &poison) == 0);
  CHECK_EQ_INT(embr_model_train(m, ds, NULL, 0, &p, &st), EMBR_EVALUE);
  CHECK(strstr(embr_last_error(), "optim.m.fc.weight") != NULL);
  edit none = {NULL, NULL, NULL, 0};
  REQUIRE(rewrite(ckpt, bad, &none) == 0);
  CHECK_EQ_INT(embr_model_train(m, ds, NULL, 0, &p, &st), 0);
  CHECK_EQ_INT(st.epochs_done, 2);
  embr_model_free(m);
  embr_dataset_free(ds);
}

static unsigned char *slurp(const char *path, long *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)*len + 1);
  if (b && fread(b, 1, (size_t)*len, f) != (size_t)*len) *len = -1;
  fclose(f);
  return b;
}

/* Training that diverges stops at the first non-finite loss with EMBR_EVALUE naming the step, and
 * leaves the last good checkpoint as it was. */
static void test_divergence_stops(void) {
  embr_dataset *ds = NULL;
  REQUIRE(embr_dataset_open_folder(dir, &ds) == 0);
  char ckpt[512];
  snprintf(ckpt, sizeof(ckpt), "%s/dv_ckpt.safetensors", dir);
  embr_model *m = tiny_model(9, 16);
  embr_train_params p = quick_params();
  p.objective = EMBR_OBJ_SOFTMAX;
  p.epochs = 1, p.checkpoint = ckpt;
  embr_train_stats st;
  REQUIRE(embr_model_train(m, ds, NULL, 0, &p, &st) == 0);
  long len0 = 0, len1 = 0;
  unsigned char *before = slurp(ckpt, &len0);
  REQUIRE(before && len0 > 0);
  p.resume = ckpt, p.epochs = 4, p.lr = 1e30f, p.clip = 0, p.warmup_epochs = 0;
  int rc = embr_model_train(m, ds, NULL, 0, &p, &st);
  CHECK_EQ_INT(rc, EMBR_EVALUE);
  CHECK(strstr(embr_last_error(), "diverged at step") != NULL);
  CHECK_EQ_INT(st.epochs_done, 1); /* only the checkpoint's epoch counts */
  unsigned char *after = slurp(ckpt, &len1);
  CHECK(after && len1 == len0 && !memcmp(before, after, (size_t)len0));
  free(before), free(after);
  embr_model_free(m);
  embr_dataset_free(ds);
}

int main(int argc, char **argv) {
  make_dataset();
  int rc = RUN_TESTS(argc, argv, test_arcface_separates_classes, test_softmax_objective_trains, test_save_load_resume,
                     test_one_class_refused, test_embed_dataset, test_hostile_model_files, test_plain_pytorch_weights,
                     test_hostile_checkpoints, test_divergence_stops);
  return rc;
}

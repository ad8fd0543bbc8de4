/* One DINO training step of embr (embr__dino_step: teacher forward on the global crops, student
 * forward on every crop, DINO loss, backward, per-parameter clipping, AdamW, teacher EMA, center),
 * the C side of bench/run_dino_train.sh; bench/torch_dino_train.py is the PyTorch side, with the
 * same network, head, crops and settings:
 *   bench_dino_train ARCH BATCH LOCAL_CROPS STEPS THREADS [K HIDDEN BOTTLENECK [GLOBAL LOCAL]]
 * ARCH a ViT configuration (vit-tiny, vit-s-16, ...); the crops are random normal values (fixed
 * seed), 2 global crops at GLOBAL px (default: the network's) and LOCAL_CROPS at LOCAL px (default
 * GLOBAL x 96 / 224). Defaults of the head: DINO's (K 4096, hidden 2048, bottleneck 256); drop-path
 * 0.1 on the student as the default recipe. Prints one JSON line: median step time and images
 * per second, peak resident memory. The first step is a warm-up (not timed). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "embr/embr.h"
#include "models/dino.h"
#include "models/models.h"
#include "nn/nn.h"
#include "train/dino_internal.h"

static double peak_mib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

static nn_t *backbone(void *model, nn_ctx *ctx, nn_t *x) { return embr__model_forward(model, ctx, x); }

static embr_model *side(const char *arch, float drop_path, int K, int hidden, int bottleneck, dino_side *s) {
  embr_model_params mp = embr_model_params_arch(arch);
  mp.drop_path = drop_path;
  mp.embedding_dim = mp.vision.width;
  embr_model *m = NULL;
  if (embr__model_build(&mp, 0, 0, &m) ||
      embr__dino_head_make(&m->P, &s->head, "head", mp.vision.width, hidden, bottleneck, K) ||
      embr__nn_params_init(&m->P, 7)) {
    fprintf(stderr, "bench_dino_train: %s\n", embr_last_error());
    exit(1);
  }
  embr__dino_param_groups(&m->P);
  s->P = &m->P, s->backbone = backbone, s->net = m;
  return m;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc != 6 && argc != 9 && argc != 11) {
    fprintf(stderr, "usage: bench_dino_train ARCH BATCH LOCAL_CROPS STEPS THREADS [K HIDDEN BOTTLENECK [GLOBAL LOCAL]]\n");
    return 2;
  }
  const char *arch = argv[1];
  int B = atoi(argv[2]), n_local = atoi(argv[3]), steps = atoi(argv[4]), threads = atoi(argv[5]);
  int K = argc > 6 ? atoi(argv[6]) : 4096, hidden = argc > 6 ? atoi(argv[7]) : 2048, bott = argc > 6 ? atoi(argv[8]) : 256;
  embr_model_params ap = embr_model_params_arch(arch);
  int G = argc > 9 ? atoi(argv[9]) : ap.input.height;
  int L = argc > 9 ? atoi(argv[10]) : (G * 96 + 112) / 224;
  if (B < 1 || n_local < 0 || steps < 1 || threads < 1 || K < 1 || hidden < 1 || bott < 1 || G < 1 || L < 1) {
    fprintf(stderr, "bench_dino_train: sizes must be positive\n");
    return 2;
  }
  dino_core d;
  memset(&d, 0, sizeof d);
  embr_model *S = side(arch, 0.1f, K, hidden, bott, &d.s), *T = side(arch, 0, K, hidden, bott, &d.t);
  memcpy(T->P.data, S->P.data, sizeof(float) * (size_t)S->P.total);
  d.n_global = 2, d.n_local = n_local, d.channels = 3, d.global_size = G, d.local_size = L;
  d.s_temp = 0.1f, d.center_m = 0.9f, d.clip = 3;
  if (embr__dino_core_init(&d, B, threads)) {
    fprintf(stderr, "bench_dino_train: %s\n", embr_last_error());
    return 1;
  }
  int64_t ng = 2LL * B * 3 * G * G, nl = (int64_t)n_local * B * 3 * L * L;
  float *g = malloc(sizeof(float) * (size_t)ng), *l = malloc(sizeof(float) * (size_t)(nl ? nl : 1));
  embr_rng r;
  embr_rng_seed(&r, 3);
  for (int64_t i = 0; i < ng; i++) g[i] = (float)embr_rng_normal(&r);
  for (int64_t i = 0; i < nl; i++) l[i] = (float)embr_rng_normal(&r);
  nn_ctx ctx;
  embr__nn_ctx_init(&ctx, &S->P, 1, 1, 5);
  ctx.nt = threads;
  nn_optim opt;
  if (embr__nn_optim_init(&opt, &S->P, NN_ADAMW)) return 1;
  opt.nt = threads;
  dino_point pt = {5e-4 * B / 256.0, 0.04, 0.996, 0.04, 0};
  double *t = malloc(sizeof(double) * (size_t)steps), loss = 0;
  for (int s = 0; s <= steps; s++) {
    int rc = 0;
    double t0 = embr_now();
    loss = embr__dino_step(&d, &ctx, &opt, g, l, B, &pt, &rc);
    if (rc) {
      fprintf(stderr, "bench_dino_train: %s\n", embr_last_error());
      return 1;
    }
    if (s > 0) t[s - 1] = embr_now() - t0;
  }
  qsort(t, (size_t)steps, sizeof(double), cmp);
  double med = t[steps / 2];
  printf("{\"prog\": \"embr\", \"arch\": \"%s\", \"batch\": %d, \"global\": %d, \"local\": %d, \"n_local\": %d, "
         "\"K\": %d, \"threads\": %d, \"step_s\": %.4f, \"per_s\": %.2f, \"loss\": %.4f, \"peak_mib\": %.1f}\n",
         arch, B, G, L, n_local, K, threads, med, B / med, loss, peak_mib());
  free(t), free(g), free(l);
  embr__nn_optim_free(&opt);
  embr__nn_ctx_free(&ctx);
  embr__dino_core_free(&d);
  embr_model_free(S);
  embr_model_free(T);
  return 0;
}

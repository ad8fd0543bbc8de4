/* Training and inference throughput of embr's networks on random input, the C side of
 * bench/run_nn.sh (bench/torch_nn.py is the PyTorch side, same networks and settings):
 *   bench_nn ARCH SIDE TRAIN_BATCH INFER_BATCH STEPS THREADS
 * prints one JSON line: training images/s (forward + backward + SGD update, ArcFace head over
 * 1000 classes), inference images/s, peak resident memory. The first step of each is a warm-up.
 * TRAIN_BATCH 0: inference only (no train_img_s field). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "embr/embr.h"
#include "models/models.h"

static double peak_mib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: bench_nn ARCH SIDE TRAIN_BATCH INFER_BATCH STEPS THREADS\n");
    return 2;
  }
  embr_model_params p = embr_model_params_default();
  p.arch = argv[1];
  p.input.height = p.input.width = atoi(argv[2]);
  int tb = atoi(argv[3]), ib = atoi(argv[4]), steps = atoi(argv[5]), threads = atoi(argv[6]);
  embr_model *m;
  if (embr__model_build(&p, 2, 1000, &m) || embr__nn_params_init(&m->P, 1)) {
    fprintf(stderr, "bench_nn: %s\n", embr_last_error());
    return 1;
  }
  embr_model_set_threads(m, threads);
  int64_t per = 3LL * p.input.height * p.input.width;
  int bmax = tb > ib ? tb : ib;
  float *x = malloc(sizeof(float) * (size_t)(per * bmax)), *out = malloc(sizeof(float) * (size_t)ib * 128);
  int32_t *labels = malloc(sizeof(int32_t) * (size_t)tb);
  embr_rng r;
  embr_rng_seed(&r, 3);
  for (int64_t i = 0; i < per * bmax; i++) x[i] = (float)embr_rng_normal(&r);
  for (int i = 0; i < tb; i++) labels[i] = (int32_t)embr_rng_below(&r, 1000);
  /* Inference (also sets the thread counts). */
  double t0 = 0;
  for (int s = 0; s <= steps; s++) {
    if (s == 1) t0 = embr_now();
    if (embr_model_embed(m, x, ib, ib, out)) return fprintf(stderr, "bench_nn: %s\n", embr_last_error()), 1;
  }
  double infer = (double)ib * steps / (embr_now() - t0);
  if (tb == 0) { /* inference only */
    printf("{\"arch\":\"%s\",\"side\":%d,\"threads\":%d,\"infer_img_s\":%.2f,\"peak_mib\":%.0f}\n", p.arch,
           p.input.height, threads, infer, peak_mib());
    embr_model_free(m);
    free(x), free(out), free(labels);
    return 0;
  }
  /* Training steps. */
  nn_ctx ctx;
  embr__nn_ctx_init(&ctx, &m->P, 1, 1, 1);
  ctx.nt = embr_threads_resolve(threads); /* the context's default is every core */
  nn_optim opt;
  embr__nn_optim_init(&opt, &m->P, NN_SGD);
  for (int s = 0; s <= steps; s++) {
    if (s == 1) t0 = embr_now();
    embr__nn_ctx_reset(&ctx);
    embr__nn_params_zero_grad(&m->P);
    nn_t *emb = embr__model_forward(m, &ctx, embr__nn_wrap(&ctx, x, tb, 3, p.input.height, p.input.width));
    nn_t *z = embr__nn_margin_logits(&ctx, emb, &m->hd.mar, labels);
    if (!z) return fprintf(stderr, "bench_nn: %s\n", embr_last_error()), 1;
    embr__nn_grad(&ctx, z);
    embr__nn_softmax_xent(z, labels, NULL);
    embr__nn_backward(&ctx);
    embr__nn_optim_step(&opt, &m->P, 0.01f);
  }
  double train = (double)tb * steps / (embr_now() - t0);
  printf("{\"arch\":\"%s\",\"side\":%d,\"threads\":%d,\"train_img_s\":%.2f,\"infer_img_s\":%.2f,\"peak_mib\":%.0f}\n", p.arch,
         p.input.height, threads, train, infer, peak_mib());
  embr__nn_optim_free(&opt);
  embr__nn_ctx_free(&ctx);
  embr_model_free(m);
  free(x), free(out), free(labels);
  return 0;
}

/* DINO ViT image-embedding throughput of embr on random weights and input, the C side of
 * bench/run_dino.sh (bench/torch_dino.py is the PyTorch side, same network and settings):
 *   bench_dino ARCH BATCH STEPS THREADS [SIZE]
 * ARCH a ViT configuration (vit-s-16, vit-b-16, dinov2-vit-s-14, vit-tiny); SIZE the input side
 * (default: the configuration's). Prints one JSON line: images per second of embr_model_embed
 * (the class token), peak resident memory. The first step is a warm-up. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "embr/embr.h"

static double peak_mib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

int main(int argc, char **argv) {
  if (argc != 5 && argc != 6) {
    fprintf(stderr, "usage: bench_dino ARCH BATCH STEPS THREADS [SIZE]\n");
    return 2;
  }
  int batch = atoi(argv[2]), steps = atoi(argv[3]), threads = atoi(argv[4]);
  embr_model_params p = embr_model_params_arch(argv[1]);
  if (argc == 6) p.input.height = p.input.width = atoi(argv[5]);
  embr_model *m;
  if (embr_model_create(&p, 1, &m)) {
    fprintf(stderr, "bench_dino: %s\n", embr_last_error());
    return 1;
  }
  embr_model_set_threads(m, threads);
  int size = p.input.height, dim = embr_model_dim(m);
  int64_t per = 3LL * size * size;
  float *x = malloc(sizeof(float) * (size_t)(per * batch)), *out = malloc(sizeof(float) * (size_t)batch * (size_t)dim);
  embr_rng r;
  embr_rng_seed(&r, 3);
  for (int64_t i = 0; i < per * batch; i++) x[i] = (float)embr_rng_normal(&r);
  double t0 = 0;
  for (int s = 0; s <= steps; s++) {
    if (s == 1) t0 = embr_now();
    if (embr_model_embed(m, x, batch, batch, out)) {
      fprintf(stderr, "bench_dino: %s\n", embr_last_error());
      return 1;
    }
  }
  double rate = (double)batch * steps / (embr_now() - t0);
  printf("{\"prog\": \"embr\", \"arch\": \"%s\", \"size\": %d, \"batch\": %d, \"threads\": %d, \"per_s\": %.2f, "
         "\"peak_mib\": %.1f}\n", argv[1], size, batch, threads, rate, peak_mib());
  embr_model_free(m);
  free(x), free(out);
  return 0;
}

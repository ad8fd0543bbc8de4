/* bench_multicrop: time of embr_multicrop (DINO's augmentation) per image, one thread, the C side
 * of bench/run_multicrop.sh (the peer is bench/torch_multicrop.py: torchvision / Pillow).
 * Usage: bench_multicrop IMAGE GLOBAL_SIZE LOCAL_SIZE N_LOCAL IMAGES
 * Decodes IMAGE once, then augments it IMAGES times (embr_multicrop_params_dino, seed 1); prints
 * one JSON line with the mean milliseconds per image (decode excluded, as in the peer). */
#include "embr/embr.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s IMAGE GLOBAL_SIZE LOCAL_SIZE N_LOCAL IMAGES\n", argv[0]);
    return 2;
  }
  int gs = atoi(argv[2]), ls = atoi(argv[3]), nl = atoi(argv[4]), n = atoi(argv[5]);
  embr_multicrop_params p = embr_multicrop_params_dino(gs, ls, nl);
  if (n < 1 || embr_multicrop_params_check(&p)) {
    fprintf(stderr, "%s: bad sizes or count\n", argv[0]);
    return 2;
  }
  embr_image im;
  if (embr_image_read(argv[1], &im)) {
    fprintf(stderr, "%s: %s\n", argv[0], embr_last_error());
    return 1;
  }
  float *g = malloc(sizeof(float) * 2 * 3 * (size_t)gs * gs), *l = malloc(sizeof(float) * ((size_t)nl + 1) * 3 * ls * ls);
  embr_rng r;
  embr_rng_seed(&r, 1);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < n; i++)
    if (embr_multicrop(&im, &p, &r, g, l)) {
      fprintf(stderr, "%s: %s\n", argv[0], embr_last_error());
      return 1;
    }
  clock_gettime(CLOCK_MONOTONIC, &b);
  double ms = ((double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6) / n;
  printf("{\"impl\":\"embr\",\"image\":\"%dx%d\",\"views\":\"2x%d+%dx%d\",\"ms_per_image\":%.3f}\n", im.width, im.height, gs,
         nl, ls, ms);
  free(g);
  free(l);
  embr_image_free(&im);
  return 0;
}

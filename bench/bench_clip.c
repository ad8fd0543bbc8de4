/* CLIP throughput of embr on random weights and input, the C side of bench/run_clip.sh
 * (bench/torch_clip.py is the PyTorch side, same towers and settings):
 *   bench_clip ARCH MODE BATCH STEPS THREADS
 * MODE image: image embeddings per second; text: text embeddings per second (random ids, EOT at
 * a random position); train: image-text pairs per second of one training step (both towers
 * forward, CLIP loss, backward, AdamW). Prints one JSON line with the peak resident memory. The
 * first step is a warm-up. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "embr/embr.h"
#include "models/clip.h"

static double peak_mib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

static int fail(void) {
  fprintf(stderr, "bench_clip: %s\n", embr_last_error());
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: bench_clip ARCH image|text|train BATCH STEPS THREADS\n");
    return 2;
  }
  const char *mode = argv[2];
  int batch = atoi(argv[3]), steps = atoi(argv[4]), threads = atoi(argv[5]);
  embr_model_params p = embr_model_params_arch(argv[1]);
  embr_model *m;
  if (embr__model_build(&p, 0, 0, &m) || embr__nn_params_init(&m->P, 1)) return fail();
  embr_model_set_threads(m, threads);
  clip_net *c = m->net;
  int size = p.input.height, ctxlen = c->context, dim = embr_model_dim(m);
  int64_t per = 3LL * size * size;
  float *x = malloc(sizeof(float) * (size_t)(per * batch)), *out = malloc(sizeof(float) * (size_t)batch * (size_t)dim);
  int32_t *ids = calloc((size_t)batch * (size_t)ctxlen, sizeof(int32_t));
  embr_rng r;
  embr_rng_seed(&r, 3);
  for (int64_t i = 0; i < per * batch; i++) x[i] = (float)embr_rng_normal(&r);
  for (int b = 0; b < batch; b++) {
    int32_t *row = ids + (int64_t)b * ctxlen;
    int eot = 2 + (int)embr_rng_below(&r, (uint64_t)ctxlen - 2);
    row[0] = c->vocab - 2;
    for (int i = 1; i < eot; i++) row[i] = 1 + (int32_t)embr_rng_below(&r, (uint64_t)c->vocab - 3);
    row[eot] = c->vocab - 1;
  }
  nn_ctx ctx;
  nn_optim opt;
  int train = !strcmp(mode, "train");
  if (train) {
    embr__nn_ctx_init(&ctx, &m->P, 1, 1, 1);
    ctx.nt = embr_threads_resolve(threads);
    if (embr__nn_optim_init(&opt, &m->P, NN_ADAMW)) return fail();
    opt.nt = ctx.nt;
  }
  double t0 = 0;
  for (int s = 0; s <= steps; s++) {
    if (s == 1) t0 = embr_now();
    int rc = 0;
    if (!strcmp(mode, "image")) rc = embr_model_embed(m, x, batch, batch, out);
    else if (!strcmp(mode, "text")) rc = embr_model_embed_tokens(m, ids, batch, batch, out);
    else if (train) {
      embr__nn_ctx_reset(&ctx);
      embr__nn_params_zero_grad(&m->P);
      nn_t *img = embr__model_forward(m, &ctx, embr__nn_wrap(&ctx, x, batch, 3, size, size));
      nn_t *txt = embr__clip_forward_text(&ctx, c, ids, batch);
      if (!img || !txt) return fail();
      embr__nn_clip_loss(&ctx, img, txt, c->logit_scale, NULL, NULL, NULL);
      embr__nn_backward(&ctx);
      embr__nn_optim_step(&opt, &m->P, 1e-4f);
      rc = ctx.rc;
    } else {
      fprintf(stderr, "bench_clip: unknown mode '%s'\n", mode);
      return 2;
    }
    if (rc) return fail();
  }
  double rate = (double)batch * steps / (embr_now() - t0);
  printf("{\"prog\": \"embr\", \"arch\": \"%s\", \"mode\": \"%s\", \"batch\": %d, \"threads\": %d, \"per_s\": %.2f, "
         "\"peak_mib\": %.1f}\n", argv[1], mode, batch, threads, rate, peak_mib());
  return 0;
}

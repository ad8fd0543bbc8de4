/* CLIP's contrastive training: the shared epoch loop over an image loader (train.c), one caption
 * drawn per image per step, both towers forward, the symmetric InfoNCE loss with the learnable
 * temperature, backward, and the temperature clamped after each step as OpenAI's code does. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/clip.h"
#include "train/train_internal.h"

typedef struct captions {
  int32_t *ids;        /* n_captions x context token ids */
  int64_t *first, *of; /* CSR: the captions of image i are of[first[i] .. first[i+1]) */
  int32_t *batch_ids;  /* batch x context */
  int context;
} captions;

static double clip_step(run *r, const float *x, const int32_t *labels, const int64_t *items, int n, int64_t *correct,
                        int *rc) {
  (void)labels;
  embr_model *m = r->m;
  captions *c = r->obj;
  clip_net *cn = m->net;
  embr_rng g;
  embr_rng_seed(&g, embr_seed_split(r->p->seed, 1000 + (uint64_t)r->step)); /* the captions drawn: a function of the step */
  for (int i = 0; i < n; i++) {
    int64_t a = c->first[items[i]], k = c->first[items[i] + 1] - a;
    int64_t pick = c->of[a + (int64_t)embr_rng_below(&g, (uint64_t)k)];
    memcpy(c->batch_ids + (int64_t)i * c->context, c->ids + pick * c->context, sizeof(int32_t) * (size_t)c->context);
  }
  const embr_image_spec *s = &m->p.input;
  embr__nn_ctx_reset(&r->ctx);
  embr__nn_params_zero_grad(&m->P);
  nn_t *img = embr__model_forward(m, &r->ctx, embr__nn_wrap(&r->ctx, (float *)x, n, s->channels, s->height, s->width));
  nn_t *txt = embr__clip_forward_text(&r->ctx, cn, c->batch_ids, n);
  if (!img || !txt) {
    *rc = r->ctx.rc ? r->ctx.rc : embr_error(EMBR_ENOMEM, "out of memory");
    return 0;
  }
  double loss = embr__nn_clip_loss(&r->ctx, img, txt, cn->logit_scale, NULL, correct, NULL);
  if (r->ctx.rc) {
    *rc = r->ctx.rc;
    return 0;
  }
  loss = embr__train_finish_step(r, loss, rc);
  float *ls = m->P.data + cn->logit_scale; /* OpenAI: clamp(0, ln 100) after the update */
  *ls = fminf(fmaxf(*ls, 0.0f), logf(100.0f));
  return loss;
}

/* Tokenises every caption once and indexes them by image. */
static int captions_make(captions *c, embr_model *m, int64_t n_images, const char *const *texts, const int64_t *of_image,
                         int64_t n, int batch) {
  c->context = embr_model_context(m);
  c->ids = malloc(sizeof(int32_t) * (size_t)n * (size_t)c->context);
  c->first = calloc((size_t)n_images + 1, sizeof(int64_t));
  c->of = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
  c->batch_ids = malloc(sizeof(int32_t) * (size_t)batch * (size_t)c->context);
  if (!c->ids || !c->first || !c->of || !c->batch_ids) return embr_error(EMBR_ENOMEM, "out of memory");
  for (int64_t i = 0; i < n; i++) {
    if (of_image[i] < 0 || of_image[i] >= n_images)
      return embr_error(EMBR_EINVAL, "caption %lld names image %lld of %lld", (long long)i, (long long)of_image[i],
                        (long long)n_images);
    c->first[of_image[i] + 1]++;
  }
  for (int64_t i = 0; i < n_images; i++) {
    if (!c->first[i + 1]) return embr_error(EMBR_EINVAL, "image %lld has no caption", (long long)i);
    c->first[i + 1] += c->first[i];
  }
  int64_t *fill = calloc((size_t)n_images, sizeof(int64_t));
  if (!fill) return embr_error(EMBR_ENOMEM, "out of memory");
  for (int64_t i = 0; i < n; i++) c->of[c->first[of_image[i]] + fill[of_image[i]]++] = i;
  free(fill);
  return embr_model_tokenize(m, texts, n, c->ids, NULL);
}

static void captions_free(captions *c) {
  free(c->ids), free(c->first), free(c->of), free(c->batch_ids);
}

embr_status embr_model_train_clip(embr_model *m, const embr_dataset *images, const char *const *texts,
                                  const int64_t *caption_image, int64_t n_captions, const embr_train_params *p,
                                  embr_train_stats *stats) {
  embr_train_stats st = {0};
  if (!embr_model_has_text(m)) return embr_error(EMBR_EINVAL, "CLIP training needs a CLIP model (a %s)", m->arch);
  if (p->epochs < 1 || p->batch < 2) return embr_error(EMBR_EINVAL, "epochs must be >= 1 and batch >= 2");
  if (!(p->lr > 0) || p->weight_decay < 0) return embr_error(EMBR_EINVAL, "learning rate must be > 0, decay >= 0");
  int64_t n_images = embr_dataset_size(images);
  if (n_images < p->batch)
    return embr_error(EMBR_EINVAL, "%lld images is fewer than one batch of %d", (long long)n_images, p->batch);
  captions c = {0};
  int rc = captions_make(&c, m, n_images, texts, caption_image, n_captions, p->batch);
  embr_loader_params lp = embr_loader_params_default();
  lp.spec = m->p.input, lp.batch = p->batch, lp.shuffle = 1, lp.drop_last = 1, lp.cache = 1;
  lp.pad = p->pad, lp.flip = p->flip, lp.seed = p->seed;
  run r = {.m = m, .p = p, .step_fn = clip_step, .obj = &c};
  if (!rc) rc = embr__train_run(&r, images, &lp, &st);
  captions_free(&c);
  if (stats) *stats = st;
  return rc;
}

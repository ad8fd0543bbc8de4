/* libFuzzer target: model files and training checkpoints, through the paths `embr embed` and
 * `embr train --resume` take. The input is loaded as a model (embr_model_load_mem: strict
 * metadata, tensors matched before allocation, NaN/Inf refused); an accepted small model must
 * embed an image without a fault. The same input is then read as a checkpoint of a fixed tiny network
 * (ResNet-18 of width 2, 1x8x8 input, 4-dim embedding, a 2-class margin head, SGD): the position
 * must come back in range. A refusal must leave a one-line message naming the input. A broken
 * promise aborts, which libFuzzer reports as a crash. The seeds (fuzz/corpus/model) are such a
 * network's model file and checkpoint, and tiny CLIP models in OpenAI's, Hugging Face's and
 * embr's layouts (an accepted CLIP model must also embed token ids and, with its tokenizer, a text),
 * and tiny DINO ViTs in facebookresearch names (under a prefix) and Hugging Face names. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "models/clip.h"
#include "models/models.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char name[] = "fuzz.safetensors";

static void check_refusal(void) {
  const char *msg = embr_last_error();
  if (strncmp(msg, name, strlen(name)) != 0 || strchr(msg, '\n')) abort();
}

/* A CLIP model's text tower: one row of ids ([sot] 1 [eot] 0 ...), and a text through its
 * tokenizer when it carries one. */
static void as_text(embr_model *m, int dim) {
  const clip_net *c = m->net;
  if (c->context > 64 || c->vocab < 3) return;
  int32_t *ids = calloc((size_t)c->context, sizeof(int32_t));
  float *y = calloc((size_t)dim, sizeof(float));
  if (!ids || !y) abort();
  ids[0] = c->vocab - 2, ids[1] = 1, ids[c->context > 2 ? 2 : 1] = c->vocab - 1;
  if (embr_model_embed_tokens(m, ids, 1, 1, y)) abort(); /* ids in range: must succeed */
  const char *text = "a photo of a cat";
  if (m->bpe && embr_model_embed_texts(m, &text, 1, 1, y, NULL)) abort();
  free(ids);
  free(y);
}

static void as_model(const uint8_t *data, size_t size) {
  embr_model *m = NULL;
  if (embr_model_load_mem(data, size, name, &m) != 0) {
    if (m) abort();
    check_refusal();
    return;
  }
  embr_image_spec in = embr_model_input(m);
  int dim = embr_model_dim(m);
  /* Embedding costs grow with the input: only small networks are run (the seeds are). */
  if ((int64_t)in.channels * in.height * in.width <= 3 * 32 * 32 && embr_model_parameters(m) <= 100000) {
    size_t per = (size_t)in.channels * (size_t)in.height * (size_t)in.width;
    float *x = calloc(per, sizeof(float)), *y = calloc((size_t)dim, sizeof(float));
    if (!x || !y) abort();
    for (size_t i = 0; i < per; i++) x[i] = (float)(i % 7) * 0.1f;
    embr_model_set_threads(m, 1);
    embr_model_embed(m, x, 1, 1, y); /* huge finite weights may overflow to Inf: only faults count */
    free(x);
    free(y);
    if (embr_model_has_text(m)) as_text(m, dim);
  }
  embr_model_free(m);
}

static void as_checkpoint(const uint8_t *data, size_t size) {
  nn_st st;
  if (embr__nn_st_parse(&st, data, size, name) != 0) return; /* the safetensors target covers this */
  embr_model_params p = embr_model_params_default();
  p.arch = "resnet18", p.width = 2, p.embedding_dim = 4;
  p.input.channels = 1, p.input.height = p.input.width = 8;
  embr_model *m = NULL;
  nn_optim opt;
  memset(&opt, 0, sizeof opt);
  if (embr__model_build(&p, 2, 2, &m) || embr__nn_params_init(&m->P, 1) || embr__nn_optim_init(&opt, &m->P, NN_SGD))
    abort();
  int epoch = -1;
  int64_t step = -1;
  if (embr__checkpoint_read(m, &opt, &st, name, 20, 1000, &epoch, &step) == 0) {
    if (epoch < 0 || epoch > 20 || step < 0 || step > 1000 || (epoch == 0) != (step == 0)) abort();
    for (int64_t i = 0; i < m->P.total; i++)
      if (!isfinite(m->P.data[i]) || !isfinite(opt.m[i])) abort();
  } else {
    check_refusal();
  }
  embr__nn_optim_free(&opt);
  embr_model_free(m);
  embr__nn_st_close(&st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  as_model(data, size);
  as_checkpoint(data, size);
  return 0;
}

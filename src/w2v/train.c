/* word2vec training: vocabulary, tables, Hogwild threads over corpus slices, sentences, windows.
 * See include/embr/w2v.h for the model and w2v_internal.h for the update kernels. */
#include "w2v/w2v_internal.h"

#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NEGATIVE 64
enum { MAX_OUT = W2V_MAX_CODE + 1 + MAX_NEGATIVE }; /* a Huffman path + the word + negatives */
#define MAX_WINDOW 100
/* Streams of the seed (embr_seed_split): the initial vectors, and the workers' own streams. */
enum { STREAM_INIT = 1, STREAM_WORKERS = 2 };

embr_w2v_params embr_w2v_params_default(void) {
  embr_w2v_params p;
  memset(&p, 0, sizeof p);
  p.dim = 100;
  p.window = 5;
  p.negative = 5;
  p.sample = 1e-3;
  p.min_count = 5;
  p.epochs = 5;
  p.seed = 1;
  return p;
}

typedef struct trainer {
  const embr_w2v_params *p;
  const embr_vocab *vocab;
  const w2v_kernels *kern;
  int64_t V;
  int dim;
  float *syn0, *syn1neg, *syn1;
  w2v_huffman huff;
  w2v_sampler sampler;
  float *keep; /* probability of keeping each word under subsampling */
  const char *path;
  int64_t file_size;
  int64_t train_words; /* per epoch */
  float alpha0;
  int nt;
  _Atomic int64_t words_done;
  _Atomic int failed; /* first error status */
  _Atomic int canceled;
  embr_progress_state prog;
} trainer;

static int check_params(const embr_w2v_params *p) {
  if (p->dim < 1 || p->dim > 10000) return embr_error(EMBR_EINVAL, "dim must be in 1..10000 (got %d)", p->dim);
  if (p->window < 1 || p->window > MAX_WINDOW)
    return embr_error(EMBR_EINVAL, "window must be in 1..%d (got %d)", MAX_WINDOW, p->window);
  if (p->negative < 0 || p->negative > MAX_NEGATIVE)
    return embr_error(EMBR_EINVAL, "negative must be in 0..%d (got %d)", MAX_NEGATIVE, p->negative);
  if (p->negative == 0 && !p->hs)
    return embr_error(EMBR_EINVAL, "nothing to train: negative is 0 and hierarchical softmax is off");
  if (!(p->sample >= 0) || p->sample >= 1) return embr_error(EMBR_EINVAL, "sample must be in [0, 1)");
  if (!(p->alpha >= 0) || p->alpha > 10) return embr_error(EMBR_EINVAL, "alpha must be in [0, 10]");
  if (p->epochs < 1 || p->epochs > 100000) return embr_error(EMBR_EINVAL, "epochs must be at least 1");
  if (p->min_count < 1) return embr_error(EMBR_EINVAL, "min-count must be at least 1");
  return 0;
}

static int tables_init(trainer *t) {
  int64_t V = t->V;
  size_t cells;
  if (embr_size_mul((size_t)V, (size_t)t->dim, &cells)) return EMBR_ENOMEM;
  t->syn0 = embr_alloc(cells * sizeof(float));
  t->keep = embr_alloc((size_t)V * sizeof(float));
  if (t->p->negative) t->syn1neg = embr_calloc(cells, sizeof(float));
  if (t->p->hs) t->syn1 = embr_calloc(cells, sizeof(float));
  if (!t->syn0 || !t->keep || (t->p->negative && !t->syn1neg) || (t->p->hs && !t->syn1))
    return embr_error(EMBR_ENOMEM, "out of memory for %lld x %d word vectors", (long long)V, t->dim);
  /* Input vectors start uniform in [-1, 1) / dim, as in gensim 4 (word2vec.c: half that); one RNG stream
   * per block of rows keeps this independent of the thread count. */
  int64_t blocks = (V + 1023) / 1024;
#pragma omp parallel for num_threads(t->nt) schedule(static)
  for (int64_t b = 0; b < blocks; b++) {
    embr_rng r;
    embr_rng_split(&r, embr_seed_split(t->p->seed, STREAM_INIT), (uint64_t)b);
    int64_t hi = (b + 1) * 1024 < V ? (b + 1) * 1024 : V;
    for (int64_t i = b * 1024; i < hi; i++)
      for (int k = 0; k < t->dim; k++) t->syn0[i * t->dim + k] = (2.0f * embr_rng_float(&r) - 1.0f) / (float)t->dim;
  }
  double thr = t->p->sample * (double)t->train_words;
  for (int64_t i = 0; i < V; i++) {
    double c = (double)embr_vocab_count(t->vocab, i);
    t->keep[i] = thr > 0 ? (float)((sqrt(c / thr) + 1.0) * thr / c) : 1.0f;
  }
  int rc = 0;
  if (t->p->negative) rc = embr__w2v_sampler_build(&t->sampler, t->vocab, 0.75);
  if (!rc && t->p->hs) rc = embr__w2v_huffman_build(&t->huff, t->vocab);
  return rc;
}

static void tables_free(trainer *t) {
  embr_free(t->syn0);
  embr_free(t->syn1neg);
  embr_free(t->syn1);
  embr_free(t->keep);
  embr__w2v_huffman_free(&t->huff);
  embr__w2v_sampler_free(&t->sampler);
}

/* Per-thread state. */
typedef struct worker {
  trainer *t;
  int id;
  embr_rng rng;
  int32_t sen[W2V_MAX_SENTENCE];
  int len;
  float *scratch;
  float *in_rows[2 * MAX_WINDOW];
  float *out_rows[MAX_OUT];
  float label[MAX_OUT];
  int64_t local_words; /* not yet added to the shared count */
  float alpha;
} worker;

static float current_alpha(const trainer *t) {
  double total = (double)t->p->epochs * (double)t->train_words + 1.0;
  double a = t->alpha0 * (1.0 - (double)atomic_load(&t->words_done) / total);
  return (float)(a > t->alpha0 * 1e-4 ? a : t->alpha0 * 1e-4);
}

/* Outputs for centre word w: its Huffman path (syn1) and/or itself plus negatives (syn1neg). */
static int gather_outputs(worker *wk, int32_t w) {
  trainer *t = wk->t;
  int n = 0, dim = t->dim;
  if (t->p->hs) {
    for (int64_t d = t->huff.offset[w]; d < t->huff.offset[w + 1]; d++) {
      wk->out_rows[n] = t->syn1 + (int64_t)t->huff.point[d] * dim;
      wk->label[n++] = 1.0f - (float)t->huff.code[d];
    }
  }
  if (t->p->negative) {
    wk->out_rows[n] = t->syn1neg + (int64_t)w * dim;
    wk->label[n++] = 1.0f;
    for (int d = 0; d < t->p->negative; d++) {
      int32_t s = embr__w2v_sample(&t->sampler, &wk->rng);
      if (s == w) continue; /* as word2vec: a draw of the true word is dropped */
      wk->out_rows[n] = t->syn1neg + (int64_t)s * dim;
      wk->label[n++] = 0.0f;
    }
  }
  return n;
}

static void train_sentence(worker *wk) {
  trainer *t = wk->t;
  const embr_w2v_params *p = t->p;
  int dim = t->dim;
  for (int pos = 0; pos < wk->len; pos++) {
    int32_t w = wk->sen[pos];
    int reach = p->window - (int)embr_rng_below(&wk->rng, (uint64_t)p->window);
    int lo = pos - reach < 0 ? 0 : pos - reach, hi = pos + reach >= wk->len ? wk->len - 1 : pos + reach;
    int m = 0;
    for (int c = lo; c <= hi; c++)
      if (c != pos) wk->in_rows[m++] = t->syn0 + (int64_t)wk->sen[c] * dim;
    if (m == 0) continue;
    if (p->cbow) {
      int n = gather_outputs(wk, w);
      t->kern->cbow_update(wk->in_rows, m, wk->out_rows, wk->label, n, dim, wk->alpha, wk->scratch);
    } else if (p->classic) {
      /* word2vec.c: each (context, centre) pair on its own, with fresh negatives. */
      for (int i = 0; i < m; i++) {
        int n = gather_outputs(wk, w);
        t->kern->sg_update(&wk->in_rows[i], 1, wk->out_rows, wk->label, n, dim, wk->alpha, wk->scratch);
      }
    } else {
      int n = gather_outputs(wk, w);
      t->kern->sg_update(wk->in_rows, m, wk->out_rows, wk->label, n, dim, wk->alpha, wk->scratch);
    }
  }
}

/* Adds local progress to the shared count, refreshes alpha, reports (thread 0). */
static int sync_progress(worker *wk, int force) {
  trainer *t = wk->t;
  atomic_fetch_add(&t->words_done, wk->local_words);
  wk->local_words = 0;
  wk->alpha = current_alpha(t);
  if (wk->id == 0) {
    char detail[48];
    snprintf(detail, sizeof detail, "alpha %.5f", (double)wk->alpha);
    if (embr_progress_update(&t->prog, (uint64_t)atomic_load(&t->words_done), detail, force))
      atomic_store(&t->canceled, 1);
  }
  return atomic_load(&t->canceled) || atomic_load(&t->failed);
}

static int train_slice(worker *wk, embr_corpus *c) {
  trainer *t = wk->t;
  char word[EMBR_MAX_WORD_BYTES + 1];
  int nl, rc;
  int64_t since_sync = 0;
  wk->len = 0;
  for (;;) {
    rc = embr_corpus_next(c, word, &nl);
    if (rc < 0) return rc;
    if ((rc == 0 || nl || wk->len == W2V_MAX_SENTENCE) && wk->len > 0) {
      train_sentence(wk);
      wk->len = 0;
    }
    if (rc == 0) break;
    int64_t w = embr_vocab_find(t->vocab, word);
    if (w < 0) continue;
    wk->local_words++;
    if (++since_sync >= 10000) {
      since_sync = 0;
      if (sync_progress(wk, 0)) return 0;
    }
    if (embr_rng_float(&wk->rng) >= t->keep[w]) continue;
    wk->sen[wk->len++] = (int32_t)w;
  }
  return 0;
}

static void worker_run(trainer *t, int id) {
  worker *wk = embr_calloc(1, sizeof *wk);
  int rc = 0;
  if (wk) wk->scratch = embr_alloc(sizeof(float) * embr__w2v_scratch_floats(2 * MAX_WINDOW, MAX_OUT, t->dim));
  if (!wk || !wk->scratch) {
    rc = embr_error(EMBR_ENOMEM, "out of memory");
  } else {
    wk->t = t;
    wk->id = id;
    embr_rng_split(&wk->rng, embr_seed_split(t->p->seed, STREAM_WORKERS), (uint64_t)id);
    wk->alpha = t->alpha0;
    /* Threads take interleaved chunks (thread t: chunks t, t + nt, ...) rather than one slice
     * each, so at any moment, and at any learning rate, the model sees neighbouring parts of the
     * corpus, as a single reader would feed it; on corpora that change subject along the file
     * (a dictionary, then manuals...) this is worth about a point of analogy accuracy early on. */
    int64_t chunk = t->file_size / ((int64_t)t->nt * 64);
    if (chunk < (1 << 20)) chunk = 1 << 20;
    int64_t nchunks = (t->file_size + chunk - 1) / chunk;
    embr_corpus *c = NULL;
    rc = embr_corpus_open(&c, t->path, 0, 0);
    for (int e = 0; e < t->p->epochs && !rc; e++) {
      for (int64_t ch = id; ch < nchunks && !rc; ch += t->nt) {
        if ((rc = embr_corpus_range(c, ch * chunk, (ch + 1) * chunk < t->file_size ? (ch + 1) * chunk : -1))) break;
        rc = train_slice(wk, c);
        if (atomic_load(&t->canceled) || atomic_load(&t->failed)) break;
      }
      if (atomic_load(&t->canceled) || atomic_load(&t->failed)) break;
    }
    embr_corpus_close(c);
    if (!rc) sync_progress(wk, 0);
  }
  if (rc) {
    int expected = 0;
    atomic_compare_exchange_strong(&t->failed, &expected, rc);
  }
  if (wk) embr_free(wk->scratch);
  embr_free(wk);
}

static int export_vectors(const trainer *t, embr_matrix *out) {
  int rc = embr_matrix_alloc(out, t->V, t->dim);
  if (!rc) rc = embr_matrix_alloc_labels(out);
  for (int64_t i = 0; i < t->V && !rc; i++) {
    memcpy(out->data + i * out->ld, t->syn0 + i * t->dim, sizeof(float) * (size_t)t->dim);
    if (!(out->labels[i] = embr_strdup(embr_vocab_word(t->vocab, i)))) rc = embr_error(EMBR_ENOMEM, "out of memory");
  }
  if (rc) embr_matrix_free(out);
  return rc;
}

embr_status embr_w2v_train(const char *corpus_path, const embr_vocab *vocab, const embr_w2v_params *params,
                           embr_matrix *out, embr_w2v_stats *stats) {
  memset(out, 0, sizeof *out);
  embr_w2v_params defaults = embr_w2v_params_default();
  const embr_w2v_params *p = params ? params : &defaults;
  int rc = check_params(p);
  if (rc) return rc;
  int64_t size = embr_file_size(corpus_path);
  if (size < 0) return (int)size;
  if (size == 0) return embr_error(EMBR_EFORMAT, "%s: empty corpus", corpus_path);
  embr_vocab *own = NULL;
  if (!vocab) {
    if ((rc = embr_vocab_build(&own, corpus_path, p->min_count, p->max_vocab, &p->progress))) return rc;
    vocab = own;
  }
  trainer *t = embr_calloc(1, sizeof *t);
  if (!t) {
    embr_vocab_free(own);
    return embr_error(EMBR_ENOMEM, "out of memory");
  }
  t->p = p;
  t->vocab = vocab;
  t->kern = embr__w2v_kernels_get();
  t->V = embr_vocab_size(vocab);
  t->dim = p->dim;
  t->path = corpus_path;
  t->file_size = size;
  t->train_words = embr_vocab_total(vocab);
  t->alpha0 = (float)(p->alpha > 0 ? p->alpha : p->cbow ? 0.05 : 0.025);
  t->nt = embr_threads_resolve(p->n_threads);
  /* Work is handed out in chunks of at least 1 MiB: more threads than chunks would idle. */
  if (t->nt > 1 && size / t->nt < (1 << 20)) t->nt = (int)(size >> 20) > 1 ? (int)(size >> 20) : 1;
  if (t->V <= p->window) {
    rc = embr_error(EMBR_EINVAL,
                    "%s: the vocabulary has %lld word(s) (after min-count %lld), not more than the "
                    "window (%d): the corpus is too small or min-count too high",
                    corpus_path, (long long)t->V, (long long)p->min_count, p->window);
  }
  if (!rc) rc = tables_init(t);
  if (!rc) {
    embr_progress_begin(&t->prog, &p->progress, (uint64_t)(p->epochs * t->train_words));
    double t0 = embr_now();
    int nt = t->nt;
#pragma omp parallel num_threads(nt)
    worker_run(t, omp_get_thread_num());
    double secs = embr_now() - t0;
    rc = atomic_load(&t->failed);
    if (!rc && atomic_load(&t->canceled)) rc = embr_error(EMBR_ECANCELED, "training canceled");
    if (!rc) {
      embr_progress_update(&t->prog, (uint64_t)atomic_load(&t->words_done), "done", 1);
      rc = export_vectors(t, out);
    }
    if (stats) {
      stats->vocab_size = t->V;
      stats->corpus_words = t->train_words;
      stats->words_done = atomic_load(&t->words_done);
      stats->seconds = secs;
      stats->words_per_sec = secs > 0 ? (double)stats->words_done / secs : 0;
    }
  }
  tables_free(t);
  embr_free(t);
  embr_vocab_free(own);
  return rc;
}

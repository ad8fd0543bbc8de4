/* Internal pieces of word2vec training: the model's tables and the update kernels. */
#ifndef EMBR_W2V_INTERNAL_H
#define EMBR_W2V_INTERNAL_H

#include "embr/w2v.h"

#include <math.h>

/* Huffman code length limit. Depth d needs counts growing like Fibonacci numbers along the
 * path (a total of at least F(d+2)), so with int64 counts no tree is deeper than ~90; real
 * vocabularies stay under 40. Deeper trees are refused rather than cut. */
#define W2V_MAX_CODE 96
#define W2V_MAX_SENTENCE 10000 /* words per sentence; longer lines are cut into pieces */
#define W2V_MAX_EXP 6.0f     /* sigmoid argument clipped to [-6, 6], as word2vec */

/* Hierarchical softmax: each word's path from the root (inner-node indices, rows of syn1) and
 * branch bits, packed: word w's path is point[offset[w] .. offset[w+1]) and the same range of
 * code. */
typedef struct w2v_huffman {
  int64_t *offset;    /* V + 1 */
  uint8_t *code;      /* branch bit at each step */
  int32_t *point;     /* inner node at each step, root first (root = V - 2) */
} w2v_huffman;

int embr__w2v_huffman_build(w2v_huffman *h, const embr_vocab *v);
void embr__w2v_huffman_free(w2v_huffman *h);

/* Vose's alias method over count^0.75: O(1) draws from a vocabulary-sized table (word2vec uses a
 * 10^8-entry table; the alias table is exact and ~1000x smaller, so it stays in cache). */
typedef struct w2v_sampler {
  int64_t n;
  float *prob;
  int32_t *alias;
} w2v_sampler;

int embr__w2v_sampler_build(w2v_sampler *s, const embr_vocab *v, double power);
void embr__w2v_sampler_free(w2v_sampler *s);
static inline int32_t embr__w2v_sample(const w2v_sampler *s, embr_rng *r) {
  uint64_t x = embr_rng_next(r);
  int64_t i = (int64_t)(((x >> 32) * (uint64_t)s->n) >> 32);
  float u = (float)(x & 0xffffff) * 0x1.0p-24f;
  return u < s->prob[i] ? (int32_t)i : s->alias[i];
}

/* The update kernels. `in` are M input rows (syn0: context words, or for CBOW the words whose
 * mean is the hidden layer), `out` N output rows (syn1neg / syn1) with target labels (1 for the
 * true word or a Huffman 0-branch, 0 for a negative sample). One call performs:
 *   skip-gram: S = In Out^T, G = (label - sigmoid(S)) * alpha, Out += G^T In, In += G Out
 *              (both from the values before the call)
 *   CBOW:      h = mean(In), g = (label - sigmoid(h Out^T)) * alpha, Out += g^T h,
 *              every In row += g Out
 *              (also from the values before the call)
 * A row may appear more than once among In or among Out; its deltas are then all added.
 * scratch holds at least embr__w2v_scratch_floats(M, N, dim) floats. */
static inline size_t embr__w2v_scratch_floats(int m, int n, int dim) {
  size_t sg = (size_t)m * (size_t)n + (size_t)m * (size_t)dim;
  size_t cbow = 2 * (size_t)dim + (size_t)(m > n ? m : n);
  return sg > cbow ? sg : cbow;
}
typedef struct w2v_kernels {
  void (*sg_update)(float *const *in, int m, float *const *out, const float *label, int n, int dim,
                    float alpha, float *scratch);
  void (*cbow_update)(float *const *in, int m, float *const *out, const float *label, int n,
                      int dim, float alpha, float *scratch);
} w2v_kernels;

extern const w2v_kernels embr__w2v_kernels_scalar;
extern const w2v_kernels embr__w2v_kernels_avx2;
const w2v_kernels *embr__w2v_kernels_get(void);

/* Clipped logistic gradient factor, as word2vec: (label - sigmoid(f)) with f beyond +-6 treated as
 * saturated. */
static inline float embr__w2v_grad(float f, float label) {
  if (f > W2V_MAX_EXP) return label - 1.0f;
  if (f < -W2V_MAX_EXP) return label;
  return label - 1.0f / (1.0f + expf(-f));
}

#endif

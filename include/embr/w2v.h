/* embr w2v: word2vec training (skip-gram and CBOW; negative sampling and hierarchical softmax)
 * and queries on word vectors (nearest words, analogies, the analogy benchmark, word-similarity
 * correlation).
 *
 * Training follows Mikolov et al.'s word2vec: frequent-word subsampling, a window shrunk at random
 * per centre word, a unigram^0.75 noise distribution, a Huffman tree for hierarchical softmax, a
 * learning rate falling linearly to 1e-4 of its start, Hogwild threads over interleaved chunks of
 * the corpus.
 * By default the updates of one centre word are batched (Ji et al. 2016): its context words share
 * one set of negative samples, and the (contexts x outputs) block of dot products, gradients and
 * updates is computed as small dense products. `classic` keeps word2vec.c's one-pair-at-a-time
 * update with fresh negatives per pair, as a reference. */
#ifndef EMBR_W2V_H
#define EMBR_W2V_H

#include "embr/matrix.h"
#include "embr/text.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct embr_w2v_params {
  int dim;             /* vector size [100] */
  int window;          /* max distance between centre and context words [5] */
  int negative;        /* negative samples per centre word (0 = none) [5] */
  int hs;              /* hierarchical softmax [0] */
  int cbow;            /* CBOW instead of skip-gram [0] */
  double sample;       /* subsampling threshold (0 = off) [1e-3] */
  int64_t min_count;   /* drop words seen fewer times [5] */
  int64_t max_vocab;   /* keep at most this many most frequent words (0 = all) [0] */
  double alpha;        /* starting learning rate (0 = 0.025 skip-gram, 0.05 CBOW) [0] */
  int epochs;          /* passes over the corpus [5] */
  int n_threads;       /* 0 = all cores [0] */
  uint64_t seed;       /* with n_threads = 1, the same seed gives the same bytes [1] */
  int classic;         /* one (word, context) pair at a time, as word2vec.c [0] */
  embr_progress progress; /* reported in words processed (of epochs x corpus words) */
} embr_w2v_params;

EMBR_API embr_w2v_params embr_w2v_params_default(void); /* the [defaults] above */

typedef struct embr_w2v_stats {
  int64_t vocab_size;
  int64_t corpus_words;  /* words of the corpus that are in the vocabulary, per epoch */
  int64_t words_done;    /* processed over all epochs (including subsampled-away ones) */
  double seconds;        /* training only (not counting the vocabulary pass) */
  double words_per_sec;
} embr_w2v_stats;

/* Trains on the corpus file. `vocab` may be NULL (it is then counted from the corpus with
 * params->min_count / max_vocab). On success *out holds one row per vocabulary word, most frequent
 * first, with labels (free with embr_matrix_free; *out is overwritten, left empty on failure).
 * stats may be NULL. Errors: EMBR_EINVAL (a parameter out of range, naming it; no word reaches
 * min_count), the corpus reader's (EMBR_ENOTFOUND, EMBR_EIO, EMBR_EFORMAT), EMBR_ENOMEM,
 * EMBR_ECANCELED. Runs n_threads threads of its own; thread-safe (no shared state). */
EMBR_API embr_status embr_w2v_train(const char *corpus_path, const embr_vocab *vocab,
                                    const embr_w2v_params *params, embr_matrix *out,
                                    embr_w2v_stats *stats);

/* ---- queries ------------------------------------------------------------------------------------
 * A word index over a vectors matrix with labels: unit-normalised rows and a word -> row map. The
 * first occurrence of a repeated word wins. `restrict` > 0 keeps only the first `restrict` rows
 * (vectors files list frequent words first). Lookups are exact byte matches unless
 * `case_insensitive` (ASCII folding, as word2vec's compute-accuracy does).
 * create copies what it needs (the matrix may be freed afterwards) into *out (free with
 * embr_wordvecs_free; NULL is a no-op); a matrix without labels is EMBR_EINVAL. A word index is
 * read-only: any number of threads may query one at once. Rows are 0 .. size-1; words returned
 * belong to the index. Results are caller-allocated arrays of k entries. */
typedef struct embr_wordvecs embr_wordvecs;

EMBR_API embr_status embr_wordvecs_create(embr_wordvecs **out, const embr_matrix *vectors,
                                          int64_t restrict_rows, int case_insensitive);
EMBR_API void embr_wordvecs_free(embr_wordvecs *w);
EMBR_API int64_t embr_wordvecs_size(const embr_wordvecs *w);
EMBR_API int64_t embr_wordvecs_find(const embr_wordvecs *w, const char *word); /* -1 if absent */
EMBR_API const char *embr_wordvecs_word(const embr_wordvecs *w, int64_t row);

/* The k words most cosine-similar to `word` (itself excluded). Writes k rows and similarities
 * (caller-allocated), padded with -1; EMBR_ENOTFOUND names an unknown word, k < 1 EMBR_EINVAL. */
EMBR_API embr_status embr_w2v_similar(const embr_wordvecs *w, const char *word, int k, int64_t *rows,
                                      float *sims);

typedef enum embr_analogy_method {
  EMBR_ANALOGY_3COSADD = 0, /* argmax cos(x, b - a + c) (Mikolov et al.) */
  EMBR_ANALOGY_3COSMUL = 1  /* argmax cos'(x,b) cos'(x,c) / (cos'(x,a) + 0.001), cos' = (cos+1)/2
                               (Levy & Goldberg 2014) */
} embr_analogy_method;

/* "a is to b as c is to ?": the k best rows (and scores) excluding a, b and c, padded with -1.
 * EMBR_ENOTFOUND names an unknown word; k < 1 is EMBR_EINVAL. */
EMBR_API embr_status embr_w2v_analogy(const embr_wordvecs *w, const char *a, const char *b, const char *c,
                                      embr_analogy_method method, int k, int64_t *rows, float *scores);

/* Results of the analogy benchmark (questions-words.txt format: ": section" lines, then
 * "a b c d" lines), counted as word2vec's compute-accuracy counts them: a question is *seen* when
 * its four words are in the (restricted) vocabulary and only seen ones are scored; the first five
 * sections are semantic, the rest syntactic. */
typedef struct embr_analogy_section {
  char name[64];
  int64_t correct, seen, total;
} embr_analogy_section;

/* One question as the file gives it (each word at most 127 bytes) and how it fared. */
typedef struct embr_analogy_question {
  char word[4][128]; /* a b c d: "a is to b as c is to d" */
  int section;       /* index into sections */
  int outcome;       /* 1 answered d, 0 answered another word, -1 not seen */
} embr_analogy_question;

typedef struct embr_analogy_eval {
  embr_analogy_section *sections; /* owned; free with embr_analogy_eval_free */
  int nsections;
  int64_t correct, seen, total;
  int64_t sem_correct, sem_seen, syn_correct, syn_seen;
  embr_analogy_question *questions; /* owned: every question in file order (gensim's per-question
                                       lists are made from these) */
  int64_t nquestions;
} embr_analogy_eval;

/* Reads and scores the questions file into *out (overwritten; free with embr_analogy_eval_free,
 * NULL is a no-op) using n_threads threads (0 = all cores). Errors name the file and line:
 * EMBR_EFORMAT (a line neither ": section" nor four words, a question before the first section,
 * a line over the length limit, no questions), plus EMBR_ENOTFOUND/EMBR_EIO, EMBR_ENOMEM. */
EMBR_API embr_status embr_w2v_eval_analogies(const embr_wordvecs *w, const char *questions_path,
                                             embr_analogy_method method, int n_threads,
                                             embr_analogy_eval *out);
EMBR_API void embr_analogy_eval_free(embr_analogy_eval *e);

/* Word-similarity benchmark (WordSim-353, SimLex-999, MEN style files): each line holds two words
 * and, after them, the first numeric field is the human score; lines without one (headers,
 * comments) are skipped. Spearman's rho between human scores and cosine similarities over the
 * pairs whose words are both known (average ranks for ties), into *out. Fewer than two scored
 * pairs is EMBR_EFORMAT; EMBR_ENOTFOUND/EMBR_EIO for the file, EMBR_ENOMEM. */
typedef struct embr_similarity_eval {
  double spearman;
  int64_t pairs, oov;
} embr_similarity_eval;

EMBR_API embr_status embr_w2v_eval_similarity(const embr_wordvecs *w, const char *pairs_path,
                                              embr_similarity_eval *out);

#ifdef __cplusplus
}
#endif
#endif

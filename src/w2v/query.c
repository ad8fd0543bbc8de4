/* Queries on word vectors: nearest words, analogies (3CosAdd, 3CosMul), the analogy benchmark as
 * word2vec's compute-accuracy counts it, and the word-similarity (Spearman) benchmark. */
#include "embr/vec.h"
#include "embr/w2v.h"

#include "core/fileio.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct embr_wordvecs {
  int64_t n, dim;
  float *unit;        /* n x dim, rows scaled to unit length (zero rows stay zero) */
  char **words;       /* borrowed from the matrix, or folded copies */
  int owns_words;
  embr_vocab *index;  /* word -> first row, insertion order = row order */
  int64_t *row_of;    /* vocab index -> row (first occurrence) */
  int fold;
};

static void fold_ascii(char *s) {
  for (; *s; s++) *s = (char)toupper((unsigned char)*s);
}

void embr_wordvecs_free(embr_wordvecs *w) {
  if (!w) return;
  if (w->owns_words)
    for (int64_t i = 0; i < w->n; i++) embr_free(w->words[i]);
  embr_free(w->words);
  embr_free(w->unit);
  embr_vocab_free(w->index);
  embr_free(w->row_of);
  embr_free(w);
}

embr_status embr_wordvecs_create(embr_wordvecs **out, const embr_matrix *m, int64_t restrict_rows,
                                 int case_insensitive) {
  *out = NULL;
  if (!m->labels) return embr_error(EMBR_EINVAL, "the vectors have no words (use a word2vec or GloVe file)");
  embr_wordvecs *w = embr_calloc(1, sizeof *w);
  if (!w) return embr_error(EMBR_ENOMEM, "out of memory");
  w->n = restrict_rows > 0 && restrict_rows < m->n ? restrict_rows : m->n;
  w->dim = m->dim;
  w->fold = case_insensitive;
  w->unit = embr_alloc(sizeof(float) * (size_t)(w->n * w->dim));
  w->words = embr_calloc((size_t)w->n, sizeof(char *));
  w->row_of = embr_alloc(sizeof(int64_t) * (size_t)w->n);
  int rc = (w->unit && w->words && w->row_of) ? embr_vocab_create(&w->index) : EMBR_ENOMEM;
  w->owns_words = 1;
  for (int64_t i = 0; i < w->n && !rc; i++) {
    const float *src = m->data + i * m->ld;
    float *dst = w->unit + i * w->dim;
    float nn = embr_norm_sq(src, w->dim);
    float inv = nn > 0 ? 1.0f / sqrtf(nn) : 0.0f;
    for (int64_t k = 0; k < w->dim; k++) dst[k] = src[k] * inv;
    if (!(w->words[i] = embr_strdup(m->labels[i] ? m->labels[i] : ""))) {
      rc = EMBR_ENOMEM;
      break;
    }
    char key[512];
    snprintf(key, sizeof key, "%s", w->words[i]);
    if (case_insensitive) fold_ascii(key);
    if (!*key || embr_vocab_find(w->index, key) >= 0) continue; /* first occurrence wins */
    int64_t slot = embr_vocab_size(w->index);
    if ((rc = embr_vocab_add(w->index, key, 1))) break;
    w->row_of[slot] = i;
  }
  if (rc) {
    embr_wordvecs_free(w);
    return rc == EMBR_ENOMEM ? embr_error(rc, "out of memory") : rc;
  }
  *out = w;
  return 0;
}

int64_t embr_wordvecs_size(const embr_wordvecs *w) { return w->n; }
const char *embr_wordvecs_word(const embr_wordvecs *w, int64_t row) { return w->words[row]; }

int64_t embr_wordvecs_find(const embr_wordvecs *w, const char *word) {
  char key[512];
  snprintf(key, sizeof key, "%s", word);
  if (w->fold) fold_ascii(key);
  int64_t i = embr_vocab_find(w->index, key);
  return i < 0 ? -1 : w->row_of[i];
}

static int lookup(const embr_wordvecs *w, const char *word, int64_t *row) {
  *row = embr_wordvecs_find(w, word);
  if (*row < 0) return embr_error(EMBR_ENOTFOUND, "'%s' is not in the vocabulary", word);
  return 0;
}

/* Best k rows by score (descending), skipping `skip` rows; ties by lower row. */
static int top_rows(const float *score, int64_t n, const int64_t *skip, int nskip, int k,
                    int64_t *rows, float *out) {
  embr_topk t;
  int rc = embr_topk_init(&t, k);
  if (rc) return rc;
  for (int64_t i = 0; i < n; i++) {
    int skipped = 0;
    for (int s = 0; s < nskip; s++) skipped |= skip[s] == i;
    if (!skipped) embr_topk_push(&t, -score[i], i);
  }
  embr_topk_result(&t, out, rows, INFINITY);
  for (int i = 0; i < k; i++) out[i] = rows[i] >= 0 ? -out[i] : -INFINITY;
  embr_topk_free(&t);
  return 0;
}

embr_status embr_w2v_similar(const embr_wordvecs *w, const char *word, int k, int64_t *rows, float *sims) {
  if (k < 1) return embr_error(EMBR_EINVAL, "k must be at least 1");
  int64_t r;
  int rc = lookup(w, word, &r);
  if (rc) return rc;
  float *score = embr_alloc(sizeof(float) * (size_t)w->n);
  if (!score) return EMBR_ENOMEM;
  embr_distances(EMBR_METRIC_IP, w->unit + r * w->dim, w->unit, w->n, w->dim, w->dim, score);
  rc = top_rows(score, w->n, &r, 1, k, rows, sims);
  embr_free(score);
  return rc;
}

/* Scores every row for the analogy a:b :: c:? into score (n floats). */
static void analogy_scores(const embr_wordvecs *w, int64_t a, int64_t b, int64_t c,
                           embr_analogy_method method, float *score, float *tmp) {
  const float *va = w->unit + a * w->dim, *vb = w->unit + b * w->dim, *vc = w->unit + c * w->dim;
  if (method == EMBR_ANALOGY_3COSADD) {
    /* Normalised, so the scores are the cosines the method is defined by (the ranking is the
     * same either way). */
    for (int64_t k = 0; k < w->dim; k++) tmp[k] = vb[k] - va[k] + vc[k];
    float nn = embr_norm_sq(tmp, w->dim), inv = nn > 0 ? 1.0f / sqrtf(nn) : 0.0f;
    for (int64_t k = 0; k < w->dim; k++) tmp[k] *= inv;
    embr_distances(EMBR_METRIC_IP, tmp, w->unit, w->n, w->dim, w->dim, score);
    return;
  }
  float *sa = tmp, *sb = tmp + w->n;
  embr_distances(EMBR_METRIC_IP, va, w->unit, w->n, w->dim, w->dim, sa);
  embr_distances(EMBR_METRIC_IP, vb, w->unit, w->n, w->dim, w->dim, sb);
  embr_distances(EMBR_METRIC_IP, vc, w->unit, w->n, w->dim, w->dim, score);
  for (int64_t i = 0; i < w->n; i++)
    score[i] = ((sb[i] + 1) * 0.5f) * ((score[i] + 1) * 0.5f) / ((sa[i] + 1) * 0.5f + 0.001f);
}

static size_t analogy_tmp_size(const embr_wordvecs *w) {
  return (size_t)(2 * w->n > w->dim ? 2 * w->n : w->dim);
}

embr_status embr_w2v_analogy(const embr_wordvecs *w, const char *a, const char *b, const char *c,
                             embr_analogy_method method, int k, int64_t *rows, float *scores) {
  if (k < 1) return embr_error(EMBR_EINVAL, "k must be at least 1");
  int64_t r[3];
  int rc;
  if ((rc = lookup(w, a, &r[0])) || (rc = lookup(w, b, &r[1])) || (rc = lookup(w, c, &r[2]))) return rc;
  float *score = embr_alloc(sizeof(float) * (size_t)w->n);
  float *tmp = embr_alloc(sizeof(float) * analogy_tmp_size(w));
  if (!score || !tmp) {
    embr_free(score);
    embr_free(tmp);
    return EMBR_ENOMEM;
  }
  analogy_scores(w, r[0], r[1], r[2], method, score, tmp);
  rc = top_rows(score, w->n, r, 3, k, rows, scores);
  embr_free(score);
  embr_free(tmp);
  return rc;
}

/* ---- analogy benchmark ------------------------------------------------------------------------ */

typedef embr_analogy_question question;

void embr_analogy_eval_free(embr_analogy_eval *e) {
  if (!e) return;
  embr_free(e->sections);
  embr_free(e->questions);
  memset(e, 0, sizeof *e);
}

/* Splits the file into sections and questions. Lines that are neither ": name" nor four words are
 * refused, naming the line. */
static int parse_questions(const char *path, question **qs, int64_t *nq, embr_analogy_eval *e) {
  embr__filemap fm;
  int rc = embr__filemap_open(&fm, path, EMBR__READ_ANY);
  if (rc) return rc;
  int64_t cap = 1024, n = 0, line = 0;
  question *q = embr_alloc(sizeof *q * (size_t)cap);
  int capsec = 16;
  e->sections = embr_calloc((size_t)capsec, sizeof *e->sections);
  if (!q || !e->sections) rc = embr_error(EMBR_ENOMEM, "out of memory");
  size_t i = 0;
  while (!rc && i < fm.len) {
    line++;
    size_t s = i;
    while (i < fm.len && fm.data[i] != '\n') i++;
    size_t len = i - s;
    i++;
    char buf[1024];
    if (len >= sizeof buf) {
      rc = embr_error(EMBR_EFORMAT, "%s: line %lld is too long", path, (long long)line);
      break;
    }
    memcpy(buf, fm.data + s, len);
    buf[len] = '\0';
    char *save = NULL, *tok = strtok_r(buf, " \t\r", &save);
    if (!tok) continue;
    if (tok[0] == ':') {
      if (e->nsections == capsec) {
        embr_analogy_section *ns = embr_realloc(e->sections, sizeof *ns * (size_t)capsec, sizeof *ns * (size_t)capsec * 2);
        capsec *= 2;
        if (!ns) {
          rc = embr_error(EMBR_ENOMEM, "out of memory");
          break;
        }
        e->sections = ns;
      }
      embr_analogy_section *sec = &e->sections[e->nsections++];
      memset(sec, 0, sizeof *sec);
      char *name = tok[1] ? tok + 1 : strtok_r(NULL, " \t\r", &save);
      snprintf(sec->name, sizeof sec->name, "%s", name ? name : "");
      continue;
    }
    if (n == cap) {
      question *nq2 = embr_realloc(q, sizeof *q * (size_t)cap, sizeof *q * (size_t)cap * 2);
      cap *= 2;
      if (!nq2) {
        rc = embr_error(EMBR_ENOMEM, "out of memory");
        break;
      }
      q = nq2;
    }
    int k = 0;
    for (; tok && k < 4; k++, tok = strtok_r(NULL, " \t\r", &save)) snprintf(q[n].word[k], 128, "%s", tok);
    if (k != 4 || tok) {
      rc = embr_error(EMBR_EFORMAT, "%s: line %lld: expected four words or ': section'", path, (long long)line);
      break;
    }
    if (e->nsections == 0) {
      rc = embr_error(EMBR_EFORMAT, "%s: line %lld: a question before the first ': section' line", path, (long long)line);
      break;
    }
    q[n].outcome = -1;
    q[n++].section = e->nsections - 1;
  }
  embr__filemap_close(&fm);
  if (!rc && n == 0) rc = embr_error(EMBR_EFORMAT, "%s: no questions", path);
  if (rc) {
    embr_free(q);
    embr_analogy_eval_free(e);
    return rc;
  }
  *qs = q;
  *nq = n;
  return 0;
}

embr_status embr_w2v_eval_analogies(const embr_wordvecs *w, const char *questions_path,
                                    embr_analogy_method method, int n_threads, embr_analogy_eval *e) {
  memset(e, 0, sizeof *e);
  question *q;
  int64_t nq;
  int rc = parse_questions(questions_path, &q, &nq, e);
  if (rc) return rc;
  int failed = 0;
#pragma omp parallel num_threads(embr_threads_resolve(n_threads))
  {
    float *score = embr_alloc(sizeof(float) * (size_t)w->n);
    float *tmp = embr_alloc(sizeof(float) * analogy_tmp_size(w));
    if (!score || !tmp) {
#pragma omp atomic write
      failed = 1;
    }
#pragma omp for schedule(dynamic, 16)
    for (int64_t i = 0; i < nq; i++) {
      if (!score || !tmp) continue;
      int64_t r[4];
      int seen = 1;
      for (int k = 0; k < 4; k++) seen &= (r[k] = embr_wordvecs_find(w, q[i].word[k])) >= 0;
      if (!seen) continue; /* outcome stays -1 (parse_questions) */
      analogy_scores(w, r[0], r[1], r[2], method, score, tmp);
      /* compute-accuracy: the best row other than the three question words, first on ties. */
      int64_t best = -1;
      float bs = -INFINITY;
      for (int64_t j = 0; j < w->n; j++) {
        if (j == r[0] || j == r[1] || j == r[2]) continue;
        if (score[j] > bs) {
          bs = score[j];
          best = j;
        }
      }
      q[i].outcome = best == r[3];
    }
    embr_free(score);
    embr_free(tmp);
  }
  if (failed) {
    embr_free(q);
    embr_analogy_eval_free(e);
    return embr_error(EMBR_ENOMEM, "out of memory");
  }
  for (int64_t i = 0; i < nq; i++) {
    embr_analogy_section *s = &e->sections[q[i].section];
    int semantic = q[i].section < 5, ok = q[i].outcome;
    s->total++;
    e->total++;
    if (ok < 0) continue;
    s->seen++;
    e->seen++;
    s->correct += ok;
    e->correct += ok;
    if (semantic) {
      e->sem_seen++;
      e->sem_correct += ok;
    } else {
      e->syn_seen++;
      e->syn_correct += ok;
    }
  }
  e->questions = q;
  e->nquestions = nq;
  return 0;
}

/* ---- word similarity ---------------------------------------------------------------------------- */

/* Average ranks (1-based) of v[0..n), ties sharing the mean of their positions. */
static void ranks(const double *v, int64_t n, double *rank, int64_t *order) {
  for (int64_t i = 0; i < n; i++) order[i] = i;
  /* insertion sort by value: pair files hold hundreds to a few thousand lines */
  for (int64_t i = 1; i < n; i++) {
    int64_t x = order[i], j = i;
    while (j > 0 && v[order[j - 1]] > v[x]) {
      order[j] = order[j - 1];
      j--;
    }
    order[j] = x;
  }
  for (int64_t i = 0; i < n;) {
    int64_t j = i;
    while (j + 1 < n && v[order[j + 1]] == v[order[i]]) j++;
    double r = 0.5 * (double)(i + j) + 1.0;
    for (int64_t t = i; t <= j; t++) rank[order[t]] = r;
    i = j + 1;
  }
}

static double pearson(const double *x, const double *y, int64_t n) {
  double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
  for (int64_t i = 0; i < n; i++) {
    mx += x[i];
    my += y[i];
  }
  mx /= (double)n;
  my /= (double)n;
  for (int64_t i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : 0.0;
}

/* Splits a pairs-file line into fields: on tabs when it has any, else on commas (CSV), else on
 * runs of spaces; fields are trimmed. So a header like "Word 1,Word 2,Human (mean)" keeps
 * "Word 1" as one field and is skipped for want of a number. */
static int split_fields(char *line, char **tok, int max) {
  const char *sep = strchr(line, '\t') ? "\t" : strchr(line, ',') ? "," : " ";
  int n = 0;
  char *p = line;
  while (n < max) {
    char *end = sep[0] == ' ' ? p + strcspn(p, " \r") : strstr(p, sep);
    char *stop = end ? end : p + strlen(p);
    char saved = *stop;
    *stop = '\0';
    /* trim */
    while (*p == ' ' || *p == '\r') p++;
    char *q = p + strlen(p);
    while (q > p && (q[-1] == ' ' || q[-1] == '\r')) *--q = '\0';
    if (*p) tok[n++] = p;
    if (!end || saved == '\0') break;
    p = stop + 1;
  }
  return n;
}

/* First numeric field of a tokenised line after the two words, or NAN. */
static double first_number(char **tok, int ntok) {
  for (int i = 2; i < ntok; i++) {
    char *end;
    double d = strtod(tok[i], &end);
    if (end != tok[i] && *end == '\0' && isfinite(d)) return d;
  }
  return NAN;
}

embr_status embr_w2v_eval_similarity(const embr_wordvecs *w, const char *pairs_path, embr_similarity_eval *out) {
  memset(out, 0, sizeof *out);
  embr__filemap fm;
  int rc = embr__filemap_open(&fm, pairs_path, EMBR__READ_ANY);
  if (rc) return rc;
  int64_t cap = 256, n = 0;
  double *human = embr_alloc(sizeof(double) * (size_t)cap), *model = embr_alloc(sizeof(double) * (size_t)cap);
  if (!human || !model) rc = embr_error(EMBR_ENOMEM, "out of memory");
  size_t i = 0;
  while (!rc && i < fm.len) {
    size_t s = i;
    while (i < fm.len && fm.data[i] != '\n') i++;
    size_t len = i - s;
    i++;
    char buf[1024];
    if (len >= sizeof buf || len == 0 || fm.data[s] == '#') continue;
    memcpy(buf, fm.data + s, len);
    buf[len] = '\0';
    char *tok[16];
    int ntok = split_fields(buf, tok, 16);
    if (ntok < 3) continue;
    double score = first_number(tok, ntok);
    if (isnan(score)) continue; /* a header line */
    int64_t a = embr_wordvecs_find(w, tok[0]), b = embr_wordvecs_find(w, tok[1]);
    if (a < 0 || b < 0) {
      out->oov++;
      continue;
    }
    if (n == cap) {
      size_t was = sizeof(double) * (size_t)cap;
      cap *= 2;
      double *h2 = embr_realloc(human, was, 2 * was), *m2 = h2 ? embr_realloc(model, was, 2 * was) : NULL;
      if (h2) human = h2;
      if (m2) model = m2;
      if (!h2 || !m2) {
        rc = embr_error(EMBR_ENOMEM, "out of memory");
        break;
      }
    }
    human[n] = score;
    model[n] = embr_dot(w->unit + a * w->dim, w->unit + b * w->dim, w->dim);
    n++;
  }
  embr__filemap_close(&fm);
  if (!rc && n < 2)
    rc = embr_error(EMBR_EFORMAT, "%s: fewer than two scored pairs with both words known (%lld unknown)",
                    pairs_path, (long long)out->oov);
  if (!rc) {
    double *rh = embr_alloc(sizeof(double) * (size_t)n), *rm = embr_alloc(sizeof(double) * (size_t)n);
    int64_t *ord = embr_alloc(sizeof(int64_t) * (size_t)n);
    if (!rh || !rm || !ord) {
      rc = embr_error(EMBR_ENOMEM, "out of memory");
    } else {
      ranks(human, n, rh, ord);
      ranks(model, n, rm, ord);
      out->spearman = pearson(rh, rm, n);
      out->pairs = n;
    }
    embr_free(rh);
    embr_free(rm);
    embr_free(ord);
  }
  embr_free(human);
  embr_free(model);
  return rc;
}

/* Corpus reader and vocabulary (include/embr/text.h) against references written here: a
 * hand-written file with every kind of white space, a whole-buffer tokenizer for generated files
 * (compared word by word, newline flags included, and over many byte ranges), and a sort-based
 * word count for the vocabulary (counts, min_count, max_size, order, lookups, save/read). */
#include "embr/text.h"
#include "harness.h"

#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>


/* ---- temporary files ---------------------------------------------------------------------------- */

/* ---- a reference tokenizer over a whole buffer -------------------------------------------------- */

typedef struct ref_word {
  char w[EMBR_MAX_WORD_BYTES + 1];
  int newline; /* a '\n' between the previous word and this one */
} ref_word;

static int ref_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Splits data into words (cut at EMBR_MAX_WORD_BYTES); returns the count, words in *out. */
static size_t ref_tokenize(const unsigned char *data, size_t n, ref_word **out) {
  size_t cap = 1024, cnt = 0, i = 0;
  ref_word *w = malloc(cap * sizeof *w);
  int nl = 0;
  while (i < n) {
    if (ref_space(data[i])) {
      if (data[i] == '\n') nl = 1;
      i++;
      continue;
    }
    size_t s = i;
    while (i < n && !ref_space(data[i])) i++;
    if (cnt == cap) w = realloc(w, (cap *= 2) * sizeof *w);
    size_t len = i - s < EMBR_MAX_WORD_BYTES ? i - s : EMBR_MAX_WORD_BYTES;
    memcpy(w[cnt].w, data + s, len);
    w[cnt].w[len] = '\0';
    w[cnt].newline = nl;
    nl = 0;
    cnt++;
  }
  *out = w;
  return cnt;
}

/* ---- corpus reader: a hand-written file ---------------------------------------------------------- */

static void test_corpus_hand_written(void) {
  char longw[151];
  for (int i = 0; i < 150; i++) longw[i] = (char)('a' + i % 26);
  longw[150] = '\0';
  char text[1024];
  /* tabs, CR LF, blank lines, several spaces, VT and FF, a 150-byte word, no final newline */
  int len = snprintf(text, sizeof text,
                     "alpha\tbeta  gamma\r\ndelta\n\n   eps\r\n\tzeta\vEta\ftheta %s iota\nkappa   lambda",
                     longw);
  const char *path = th_path("hand.txt");
  th_write_file(path, text, (size_t)len);
  char want_long[EMBR_MAX_WORD_BYTES + 1];
  memcpy(want_long, longw, EMBR_MAX_WORD_BYTES);
  want_long[EMBR_MAX_WORD_BYTES] = '\0';
  const struct {
    const char *w;
    int nl;
  } want[] = {{"alpha", 0}, {"beta", 0}, {"gamma", 0}, {"delta", 1}, {"eps", 1},
              {"zeta", 1},  {"Eta", 0},  {"theta", 0}, {want_long, 0}, {"iota", 0},
              {"kappa", 1}, {"lambda", 0}};
  const int nwant = (int)(sizeof want / sizeof want[0]);
  embr_corpus *c;
  REQUIRE(embr_corpus_open(&c, path, 0, -1) == 0);
  char buf[EMBR_MAX_WORD_BYTES + 1];
  int nl, rc, i = 0;
  while ((rc = embr_corpus_next(c, buf, &nl)) == 1) {
    if (i < nwant) {
      CHECK_MSG(strcmp(buf, want[i].w) == 0, "word %d: got '%s', want '%s'", i, buf, want[i].w);
      CHECK_MSG(nl == want[i].nl, "word %d (%s): newline %d, want %d", i, buf, nl, want[i].nl);
    }
    CHECK(strlen(buf) <= EMBR_MAX_WORD_BYTES);
    i++;
  }
  CHECK_EQ_INT(rc, 0);
  CHECK_EQ_INT(i, nwant);
  CHECK_EQ_INT(embr_corpus_tell(c), len);
  /* At the end it stays at the end. */
  CHECK_EQ_INT(embr_corpus_next(c, buf, &nl), 0);
  embr_corpus_close(c);
  CHECK_EQ_INT(embr_file_size(path), len);

  /* A file of white space only, and an empty file: no words, no error. */
  const char *ws = th_path("ws.txt");
  th_write_file(ws, " \n\t\r\n  ", 7);
  REQUIRE(embr_corpus_open(&c, ws, 0, -1) == 0);
  CHECK_EQ_INT(embr_corpus_next(c, buf, &nl), 0);
  embr_corpus_close(c);
  const char *empty = th_path("empty.txt");
  th_write_file(empty, "", 0);
  REQUIRE(embr_corpus_open(&c, empty, 0, -1) == 0);
  CHECK_EQ_INT(embr_corpus_next(c, buf, &nl), 0);
  embr_corpus_close(c);
  /* UTF-8 passes through untouched. */
  const char *utf = th_path("utf8.txt");
  const char utext[] = "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\n";
  th_write_file(utf, utext, sizeof utext - 1);
  REQUIRE(embr_corpus_open(&c, utf, 0, -1) == 0);
  CHECK(embr_corpus_next(c, buf, &nl) == 1 && strcmp(buf, "caf\xc3\xa9") == 0);
  CHECK(embr_corpus_next(c, buf, &nl) == 1 && strcmp(buf, "\xe6\x97\xa5\xe6\x9c\xac") == 0);
  CHECK_EQ_INT(embr_corpus_next(c, buf, &nl), 0);
  embr_corpus_close(c);
  embr_corpus_close(NULL);
}

/* ---- corpus reader: generated files, whole and in byte ranges ------------------------------------ */

/* A random text: words of 1..14 bytes (a few of 90..130 bytes), separated by runs of ' ', '\t',
 * '\n', "\r\n", '\v', '\f'. */
static unsigned char *gen_text(size_t n, embr_rng *r) {
  unsigned char *t = malloc(n);
  size_t i = 0;
  while (i < n) {
    uint64_t kind = embr_rng_below(r, 1000);
    size_t wl = kind < 5 ? 90 + (size_t)embr_rng_below(r, 41) : 1 + (size_t)embr_rng_below(r, 14);
    for (size_t k = 0; k < wl && i < n; k++) t[i++] = (unsigned char)('a' + embr_rng_below(r, 26));
    size_t sl = 1 + (size_t)embr_rng_below(r, 3);
    for (size_t k = 0; k < sl && i < n; k++) {
      static const char seps[] = " \t\n\v\f";
      uint64_t s = embr_rng_below(r, 12);
      if (s < 6) t[i++] = ' ';
      else if (s < 8) t[i++] = '\n';
      else if (s == 8 && i + 1 < n) {
        t[i++] = '\r';
        t[i++] = '\n';
      } else
        t[i++] = (unsigned char)seps[embr_rng_below(r, 5)];
    }
  }
  return t;
}

static void test_corpus_generated_whole(void) {
  embr_rng r;
  embr_rng_seed(&r, 101);
  /* 2.5 MiB: the reader refills its 1 MiB buffer with words across the seams. */
  size_t n = (5u << 20) / 2;
  unsigned char *text = gen_text(n, &r);
  const char *path = th_path("gen.txt");
  th_write_file(path, text, n);
  ref_word *ref;
  size_t nref = ref_tokenize(text, n, &ref);
  embr_corpus *c;
  REQUIRE(embr_corpus_open(&c, path, 0, -1) == 0);
  char buf[EMBR_MAX_WORD_BYTES + 1];
  int nl, rc;
  size_t i = 0, bad = 0;
  while ((rc = embr_corpus_next(c, buf, &nl)) == 1) {
    if (i < nref && (strcmp(buf, ref[i].w) != 0 || nl != ref[i].newline) && bad++ < 5)
      fprintf(stderr, "  word %zu: got '%s' nl %d, want '%s' nl %d\n", i, buf, nl, ref[i].w, ref[i].newline);
    i++;
  }
  CHECK_EQ_INT(rc, 0);
  CHECK_EQ_INT(bad, 0);
  CHECK_EQ_INT(i, nref);
  CHECK_EQ_INT(embr_corpus_tell(c), (int64_t)n);
  embr_corpus_close(c);
  free(ref);
  free(text);
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* Reads the ranges [cut[k], cut[k+1]) in order and compares the concatenation with ref. */
static int check_ranges(const char *path, const int64_t *cut, int ncut, const ref_word *ref,
                        size_t nref, int last_as_minus_one) {
  char buf[EMBR_MAX_WORD_BYTES + 1];
  size_t i = 0;
  int nl, ok = 1;
  for (int k = 0; k + 1 < ncut && ok; k++) {
    embr_corpus *c;
    int64_t end = (last_as_minus_one && k + 2 == ncut) ? -1 : cut[k + 1];
    int rc = embr_corpus_open(&c, path, cut[k], end);
    if (rc) {
      fprintf(stderr, "  open [%lld, %lld): %s\n", (long long)cut[k], (long long)end, embr_last_error());
      return 0;
    }
    while ((rc = embr_corpus_next(c, buf, &nl)) == 1) {
      if (i >= nref || strcmp(buf, ref[i].w) != 0) {
        fprintf(stderr, "  range [%lld, %lld): word %zu '%s', want '%s'\n", (long long)cut[k],
                (long long)end, i, buf, i < nref ? ref[i].w : "(none)");
        ok = 0;
        break;
      }
      i++;
    }
    if (rc < 0) ok = 0;
    embr_corpus_close(c);
  }
  if (ok && i != nref) {
    fprintf(stderr, "  ranges gave %zu words, the file has %zu\n", i, nref);
    ok = 0;
  }
  return ok;
}

static void test_corpus_byte_ranges(void) {
  embr_rng r;
  embr_rng_seed(&r, 202);
  size_t n = (1u << 20) + 300000; /* one buffer seam inside */
  unsigned char *text = gen_text(n, &r);
  const char *path = th_path("ranges.txt");
  th_write_file(path, text, n);
  ref_word *ref;
  size_t nref = ref_tokenize(text, n, &ref);
  int64_t cut[80];
  for (int trial = 0; trial < 24; trial++) {
    int ncut = 2;
    cut[0] = 0;
    cut[1] = (int64_t)n;
    int extra = trial < 4 ? 1 : 2 + (int)embr_rng_below(&r, 60);
    for (int k = 0; k < extra; k++) {
      int64_t off;
      uint64_t kind = embr_rng_below(&r, 6);
      if (kind == 0) off = (int64_t)embr_rng_below(&r, 200); /* near the start */
      else if (kind == 1) off = (int64_t)n - (int64_t)embr_rng_below(&r, 200); /* near the end */
      else if (kind == 2) off = (1 << 20) - 2 + (int64_t)embr_rng_below(&r, 5); /* buffer seam */
      else off = (int64_t)embr_rng_below(&r, n + 1);
      if (kind == 3) /* move onto a space, or onto the first byte of a word */
        while (off < (int64_t)n && !ref_space(text[off])) off++;
      if (kind == 4 && off > 0 && off < (int64_t)n && !ref_space(text[off]))
        while (off > 0 && !ref_space(text[off - 1])) off--;
      cut[ncut++] = off;
    }
    /* Repeated offsets give empty ranges, which must be fine too. */
    qsort(cut, (size_t)ncut, sizeof cut[0], cmp_i64);
    CHECK_MSG(check_ranges(path, cut, ncut, ref, nref, trial & 1), "trial %d with %d cuts", trial, ncut);
  }
  /* Every offset of a small file, as a two-way split. */
  const char small[] = "ab  c\r\nde\tfgh\n\n i   jk";
  const char *sp = th_path("small.txt");
  th_write_file(sp, small, sizeof small - 1);
  ref_word *sref;
  size_t nsref = ref_tokenize((const unsigned char *)small, sizeof small - 1, &sref);
  for (int64_t off = 0; off <= (int64_t)(sizeof small - 1); off++) {
    int64_t c3[3] = {0, off, (int64_t)(sizeof small - 1)};
    CHECK_MSG(check_ranges(sp, c3, 3, sref, nsref, 0), "split at %lld", (long long)off);
    int64_t c4[4] = {0, off, off, (int64_t)(sizeof small - 1)};
    CHECK_MSG(check_ranges(sp, c4, 4, sref, nsref, 1), "split at %lld twice", (long long)off);
  }
  free(sref);
  free(ref);
  free(text);
}

static void test_corpus_refuses(void) {
  embr_corpus *c = (embr_corpus *)1;
  const char *bin = th_path("nul.txt");
  th_write_file(bin, "hello world\0 more words\n", 24);
  CHECK_EQ_INT(embr_corpus_open(&c, bin, 0, -1), EMBR_EFORMAT);
  CHECK(c == NULL);
  CHECK_MSG(strstr(embr_last_error(), bin) != NULL, "message: %s", embr_last_error());
  /* A NUL far in, but within the first 64 KiB, and asked from a later start offset. */
  size_t n = 60000;
  char *t = malloc(n);
  for (size_t i = 0; i < n; i++) t[i] = i % 7 == 6 ? ' ' : 'x';
  t[50000] = '\0';
  const char *bin2 = th_path("nul2.txt");
  th_write_file(bin2, t, n);
  CHECK_EQ_INT(embr_corpus_open(&c, bin2, 55000, -1), EMBR_EFORMAT);
  free(t);
  /* Mostly control bytes (not white space): binary. */
  unsigned char ctl[4096];
  for (size_t i = 0; i < sizeof ctl; i++) ctl[i] = (unsigned char)(1 + i % 8);
  const char *bin3 = th_path("ctl.dat");
  th_write_file(bin3, ctl, sizeof ctl);
  CHECK_EQ_INT(embr_corpus_open(&c, bin3, 0, -1), EMBR_EFORMAT);

  /* A NUL byte after the first 64 KiB (the header: "NUL bytes ... refused with EMBR_EFORMAT").
   * Reading on must not hand out a word with a NUL inside (an empty or cut C string). */
  n = 200000;
  t = malloc(n);
  for (size_t i = 0; i < n; i++) t[i] = i % 5 == 4 ? ' ' : 'y';
  t[100000] = ' ';
  t[100001] = '\0'; /* a word starting with NUL: an empty C string */
  t[150002] = '\0'; /* a NUL inside a word */
  const char *late = th_path("late-nul.txt");
  th_write_file(late, t, n);
  free(t);
  int rc2 = embr_corpus_open(&c, late, 0, -1);
  if (rc2 == 0) {
    char buf[EMBR_MAX_WORD_BYTES + 1];
    int nl, r;
    int64_t short_words = 0;
    while ((r = embr_corpus_next(c, buf, &nl)) == 1) short_words += strlen(buf) != 4;
    embr_corpus_close(c);
    CHECK(r == EMBR_EFORMAT);
    if (r == 0) fprintf(stderr, "  (a NUL after 64 KiB: %lld words cut or empty, no error)\n", (long long)short_words);
  }
  embr_vocab *lv = NULL;
  rc2 = embr_vocab_build(&lv, late, 1, 0, NULL);
  CHECK(rc2 < 0);
  CHECK(rc2 == EMBR_EFORMAT && strstr(embr_last_error(), late) != NULL);
  if (rc2 != EMBR_EFORMAT) fprintf(stderr, "  (vocab_build: status %d, '%s')\n", rc2, embr_last_error());
  embr_vocab_free(lv);

  const char *missing = th_path("does-not-exist.txt");
  c = (embr_corpus *)1;
  int rc = embr_corpus_open(&c, missing, 0, -1);
  CHECK(rc < 0);
  CHECK(c == NULL);
  CHECK_MSG(strstr(embr_last_error(), missing) != NULL, "message: %s", embr_last_error());
  CHECK(embr_file_size(missing) < 0);
  rc = embr_corpus_open(&c, th_scratch(), 0, -1);
  CHECK(rc < 0);
  CHECK_MSG(strstr(embr_last_error(), th_scratch()) != NULL, "message: %s", embr_last_error());
  CHECK(embr_file_size(th_scratch()) < 0);
  embr_vocab *v = NULL;
  CHECK(embr_vocab_build(&v, missing, 1, 0, NULL) < 0);
  CHECK(v == NULL);
  CHECK_EQ_INT(embr_vocab_build(&v, bin, 1, 0, NULL), EMBR_EFORMAT);
  CHECK(embr_vocab_build(&v, th_scratch(), 1, 0, NULL) < 0);
  const char *empty = th_path("empty-corpus.txt");
  th_write_file(empty, "\n\n", 2);
  CHECK(embr_vocab_build(&v, empty, 1, 0, NULL) < 0);
  CHECK_MSG(strstr(embr_last_error(), empty) != NULL, "message: %s", embr_last_error());
}

/* ---- vocabulary ---------------------------------------------------------------------------------- */

typedef struct ref_count {
  const char *w;
  int64_t count;
} ref_count;

static int cmp_str_ptr(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_ref_count(const void *a, const void *b) {
  const ref_count *x = a, *y = b;
  if (x->count != y->count) return x->count > y->count ? -1 : 1;
  return strcmp(x->w, y->w);
}

typedef struct zipf_corpus {
  char *text;
  size_t len;
  char **tokens; /* pointers into a copy */
  size_t ntok;
  char *copy;
  ref_count *ref; /* distinct words, sorted by count desc then bytes */
  size_t nref;
} zipf_corpus;

/* Words "w<k>" (and a few with upper-case or UTF-8 bytes) drawn with P(k) ~ 1 / (k+1). */
static void zipf_make(zipf_corpus *z, int nwords, size_t ntokens, embr_rng *r) {
  double *cdf = malloc(sizeof(double) * (size_t)nwords), s = 0;
  for (int k = 0; k < nwords; k++) cdf[k] = (s += 1.0 / (k + 1));
  size_t cap = ntokens * 16 + 16;
  z->text = malloc(cap);
  z->len = 0;
  for (size_t t = 0; t < ntokens; t++) {
    double u = embr_rng_double(r) * s;
    int lo = 0, hi = nwords - 1;
    while (lo < hi) {
      int mid = (lo + hi) / 2;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    const char *pre = lo % 11 == 3 ? "W" : lo % 13 == 5 ? "\xc3\xa9" : "w";
    z->len += (size_t)snprintf(z->text + z->len, cap - z->len, "%s%d%s", pre, lo,
                               embr_rng_below(r, 9) == 0 ? "\n" : " ");
  }
  free(cdf);
  /* The reference count: sort the tokens, count runs. */
  z->copy = malloc(z->len + 1);
  memcpy(z->copy, z->text, z->len);
  z->copy[z->len] = '\0';
  z->tokens = malloc(sizeof(char *) * ntokens);
  z->ntok = 0;
  char *save = NULL;
  for (char *tok = strtok_r(z->copy, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
    z->tokens[z->ntok++] = tok;
  qsort(z->tokens, z->ntok, sizeof(char *), cmp_str_ptr);
  z->ref = malloc(sizeof(ref_count) * z->ntok);
  z->nref = 0;
  for (size_t i = 0; i < z->ntok;) {
    size_t j = i;
    while (j < z->ntok && strcmp(z->tokens[j], z->tokens[i]) == 0) j++;
    z->ref[z->nref++] = (ref_count){z->tokens[i], (int64_t)(j - i)};
    i = j;
  }
  qsort(z->ref, z->nref, sizeof(ref_count), cmp_ref_count);
}

static void zipf_free(zipf_corpus *z) {
  free(z->text);
  free(z->copy);
  free(z->tokens);
  free(z->ref);
}

/* The vocabulary must hold exactly the reference words with count >= min_count, the first
 * max_size of them (0 = all), in the reference order. */
static int vocab_matches(const embr_vocab *v, const ref_count *ref, size_t nref, int64_t min_count,
                         int64_t max_size) {
  size_t want = 0;
  while (want < nref && ref[want].count >= min_count) want++;
  if (max_size > 0 && want > (size_t)max_size) want = (size_t)max_size;
  int ok = 1;
  if (embr_vocab_size(v) != (int64_t)want) {
    fprintf(stderr, "  min_count %lld max %lld: %lld words, want %zu\n", (long long)min_count,
            (long long)max_size, (long long)embr_vocab_size(v), want);
    return 0;
  }
  int64_t total = 0;
  for (size_t i = 0; i < want && ok; i++) {
    total += ref[i].count;
    if (strcmp(embr_vocab_word(v, (int64_t)i), ref[i].w) != 0 || embr_vocab_count(v, (int64_t)i) != ref[i].count) {
      fprintf(stderr, "  min_count %lld max %lld: word %zu is '%s' x %lld, want '%s' x %lld\n",
              (long long)min_count, (long long)max_size, i, embr_vocab_word(v, (int64_t)i),
              (long long)embr_vocab_count(v, (int64_t)i), ref[i].w, (long long)ref[i].count);
      ok = 0;
    }
    if (embr_vocab_find(v, ref[i].w) != (int64_t)i) {
      fprintf(stderr, "  find('%s') = %lld, want %zu\n", ref[i].w, (long long)embr_vocab_find(v, ref[i].w), i);
      ok = 0;
    }
  }
  for (size_t i = want; i < nref && ok; i++)
    if (embr_vocab_find(v, ref[i].w) != -1) {
      fprintf(stderr, "  dropped word '%s' is still found\n", ref[i].w);
      ok = 0;
    }
  if (ok && embr_vocab_total(v) != total) {
    fprintf(stderr, "  total %lld, want %lld\n", (long long)embr_vocab_total(v), (long long)total);
    ok = 0;
  }
  return ok;
}

static void test_vocab_counts_zipf(void) {
  embr_rng r;
  embr_rng_seed(&r, 303);
  zipf_corpus z;
  zipf_make(&z, 5000, 200000, &r);
  const char *path = th_path("zipf.txt");
  th_write_file(path, z.text, z.len);
  CHECK(z.nref > 1000); /* the generator gives a long tail */
  CHECK(z.ref[0].count > 10 * z.ref[100].count);
  const int64_t mins[] = {1, 2, 5, 37};
  const int64_t maxs[] = {0, 1, 100, 999999};
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 4; b++) {
      embr_vocab *v;
      int rc = embr_vocab_build(&v, path, mins[a], maxs[b], NULL);
      CHECK_MSG(rc == 0, "build: %s", embr_last_error());
      if (rc) continue;
      CHECK(vocab_matches(v, z.ref, z.nref, mins[a], maxs[b]));
      embr_vocab_free(v);
    }
  /* min_count above every count. */
  embr_vocab *v = NULL;
  CHECK(embr_vocab_build(&v, path, z.ref[0].count + 1, 0, NULL) < 0);
  CHECK(v == NULL);
  CHECK_MSG(strstr(embr_last_error(), path) != NULL, "message: %s", embr_last_error());

  /* The same words added by hand in another order (and in pieces) finalize the same way. */
  REQUIRE(embr_vocab_create(&v) == 0);
  CHECK_EQ_INT(embr_vocab_size(v), 0);
  CHECK_EQ_INT(embr_vocab_find(v, "w0"), -1);
  for (size_t i = z.nref; i-- > 0;) {
    int64_t c = z.ref[i].count, first = c / 3;
    if (first) CHECK(embr_vocab_add(v, z.ref[i].w, first) == 0);
    CHECK(embr_vocab_add(v, z.ref[i].w, c - first) == 0);
  }
  CHECK(embr_vocab_add(v, "", 1) == EMBR_EINVAL);
  CHECK_EQ_INT(embr_vocab_size(v), (int64_t)z.nref);
  CHECK(embr_vocab_finalize(v, 1, 0) == 0);
  CHECK(vocab_matches(v, z.ref, z.nref, 1, 0));
  /* Finalizing again with a higher threshold keeps the order. */
  CHECK(embr_vocab_finalize(v, 5, 50) == 0);
  CHECK(vocab_matches(v, z.ref, z.nref, 5, 50));
  CHECK_EQ_INT(embr_vocab_find(v, "not-a-word"), -1);
  CHECK_EQ_INT(embr_vocab_find(v, "w"), -1);
  embr_vocab_free(v);
  embr_vocab_free(NULL);
  zipf_free(&z);
}

/* Ties: equal counts are ordered by bytes (strcmp, so 'B' < 'a' and 0xc3 after ASCII), whatever
 * the input order. */
static void test_vocab_tie_order(void) {
  const char *words[] = {"b", "a", "\xc3\xa9t\xc3\xa9", "B", "ab", "aa", "zz", "a0"};
  int n = (int)(sizeof words / sizeof words[0]);
  embr_vocab *v1, *v2;
  REQUIRE(embr_vocab_create(&v1) == 0);
  REQUIRE(embr_vocab_create(&v2) == 0);
  for (int i = 0; i < n; i++) {
    CHECK(embr_vocab_add(v1, words[i], i == 6 ? 9 : 3) == 0);
    CHECK(embr_vocab_add(v2, words[n - 1 - i], n - 1 - i == 6 ? 9 : 3) == 0);
  }
  CHECK(embr_vocab_finalize(v1, 1, 0) == 0);
  CHECK(embr_vocab_finalize(v2, 1, 0) == 0);
  const char *want[] = {"zz", "B", "a", "a0", "aa", "ab", "b", "\xc3\xa9t\xc3\xa9"};
  REQUIRE(embr_vocab_size(v1) == n && embr_vocab_size(v2) == n);
  for (int i = 0; i < n; i++) {
    CHECK_MSG(strcmp(embr_vocab_word(v1, i), want[i]) == 0, "%d: %s", i, embr_vocab_word(v1, i));
    CHECK_MSG(strcmp(embr_vocab_word(v2, i), want[i]) == 0, "%d: %s", i, embr_vocab_word(v2, i));
  }
  CHECK_EQ_INT(embr_vocab_total(v1), 7 * 3 + 9);
  embr_vocab_free(v1);
  embr_vocab_free(v2);
}

/* Many distinct words force the hash table to grow several times. */
static void test_vocab_growth(void) {
  embr_vocab *v;
  REQUIRE(embr_vocab_create(&v) == 0);
  char w[32];
  const int n = 200000;
  for (int i = 0; i < n; i++) {
    snprintf(w, sizeof w, "x%d", i);
    CHECK(embr_vocab_add(v, w, 1 + i % 3) == 0);
  }
  CHECK_EQ_INT(embr_vocab_size(v), n);
  int bad = 0;
  for (int i = 0; i < n; i++) {
    snprintf(w, sizeof w, "x%d", i);
    int64_t k = embr_vocab_find(v, w);
    if (k != i || embr_vocab_count(v, k) != 1 + i % 3) bad++;
  }
  CHECK_EQ_INT(bad, 0);
  CHECK_EQ_INT(embr_vocab_find(v, "x200000"), -1);
  CHECK(embr_vocab_finalize(v, 3, 0) == 0);
  CHECK_EQ_INT(embr_vocab_size(v), n / 3); /* i % 3 == 2 */
  CHECK_EQ_INT(embr_vocab_total(v), 3 * (n / 3));
  embr_vocab_free(v);
}

static void test_vocab_save_read(void) {
  embr_rng r;
  embr_rng_seed(&r, 404);
  zipf_corpus z;
  zipf_make(&z, 800, 30000, &r);
  const char *cpath = th_path("zipf2.txt"), *vpath = th_path("vocab.txt");
  th_write_file(cpath, z.text, z.len);
  embr_vocab *v, *back;
  REQUIRE(embr_vocab_build(&v, cpath, 1, 0, NULL) == 0);
  REQUIRE(embr_vocab_save(v, vpath) == 0);
  REQUIRE(embr_vocab_read(&back, vpath, 1, 0) == 0);
  CHECK(vocab_matches(back, z.ref, z.nref, 1, 0));
  embr_vocab_free(back);
  /* The file is "word count" lines in order. */
  FILE *f = fopen(vpath, "r");
  REQUIRE(f != NULL);
  char line[256], want[256];
  size_t i = 0, bad = 0;
  while (fgets(line, sizeof line, f)) {
    if (i < z.nref) snprintf(want, sizeof want, "%s %lld\n", z.ref[i].w, (long long)z.ref[i].count);
    if (i >= z.nref || strcmp(line, want) != 0) bad++;
    i++;
  }
  fclose(f);
  CHECK_EQ_INT(bad, 0);
  CHECK_EQ_INT(i, z.nref);
  /* read with thresholds */
  REQUIRE(embr_vocab_read(&back, vpath, 4, 30) == 0);
  CHECK(vocab_matches(back, z.ref, z.nref, 4, 30));
  embr_vocab_free(back);
  /* Any order, CR LF, tabs, blank lines, repeated words (summed). */
  const char *hand = th_path("hand-vocab.txt");
  const char htext[] = "zeta 2\r\nalpha\t7\n\nbeta 7\nzeta 5\n";
  th_write_file(hand, htext, sizeof htext - 1);
  REQUIRE(embr_vocab_read(&back, hand, 1, 0) == 0);
  REQUIRE(embr_vocab_size(back) == 3);
  CHECK(strcmp(embr_vocab_word(back, 0), "alpha") == 0 && embr_vocab_count(back, 0) == 7);
  CHECK(strcmp(embr_vocab_word(back, 1), "beta") == 0 && embr_vocab_count(back, 1) == 7);
  CHECK(strcmp(embr_vocab_word(back, 2), "zeta") == 0 && embr_vocab_count(back, 2) == 7);
  CHECK_EQ_INT(embr_vocab_total(back), 21);
  embr_vocab_free(back);
  embr_vocab_free(v);
  zipf_free(&z);
}

static void check_bad_vocab(const char *name, const char *text, const char *want_in_msg) {
  const char *path = th_path(name);
  th_write_file(path, text, strlen(text));
  embr_vocab *v = (embr_vocab *)1;
  int rc = embr_vocab_read(&v, path, 1, 0);
  CHECK_MSG(rc == EMBR_EFORMAT, "%s: rc %d", name, rc);
  CHECK(v == NULL);
  const char *msg = embr_last_error();
  CHECK_MSG(strstr(msg, path) != NULL, "%s: message does not name the file: %s", name, msg);
  if (want_in_msg) CHECK_MSG(strstr(msg, want_in_msg) != NULL, "%s: message lacks '%s': %s", name, want_in_msg, msg);
}

static void test_vocab_read_malformed(void) {
  check_bad_vocab("v-nocount.txt", "the 10\nword\nof 3\n", "line 2");
  check_bad_vocab("v-nocount2.txt", "the 10\nof 3\nword \n", "line 3");
  check_bad_vocab("v-negative.txt", "the 10\nof -3\n", "line 2");
  check_bad_vocab("v-zero.txt", "the 0\n", "line 1");
  check_bad_vocab("v-junk.txt", "the 10\nand 1\nof 3x\n", "line 3");
  check_bad_vocab("v-float.txt", "the 1.5\n", "line 1");
  check_bad_vocab("v-huge.txt", "the 99999999999999999999999\n", "line 1");
  check_bad_vocab("v-empty.txt", "", NULL);
  check_bad_vocab("v-blank.txt", "\n\n", NULL);
  embr_vocab *v = (embr_vocab *)1;
  const char *missing = th_path("v-missing.txt");
  CHECK(embr_vocab_read(&v, missing, 1, 0) < 0);
  CHECK(v == NULL);
  CHECK_MSG(strstr(embr_last_error(), missing) != NULL, "message: %s", embr_last_error());
  /* A min_count that drops everything is refused too. */
  const char *ok = th_path("v-ok.txt");
  th_write_file(ok, "a 2\nb 1\n", 8);
  CHECK(embr_vocab_read(&v, ok, 3, 0) < 0);
  CHECK(v == NULL);
}

int main(int argc, char **argv) {
  int rc = RUN_TESTS(argc, argv, test_corpus_hand_written, test_corpus_generated_whole,
                     test_corpus_byte_ranges, test_corpus_refuses, test_vocab_counts_zipf,
                     test_vocab_tie_order, test_vocab_growth, test_vocab_save_read,
                     test_vocab_read_malformed);
  return rc;
}

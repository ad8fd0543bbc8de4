/* Word vectors: word2vec text ("n dim" header, then "word v1 .. vdim" lines), word2vec binary
 * (as written by word2vec.c and gensim) and GloVe text (no header). Words become row labels.
 * Layouts in docs/formats.md. */
#include "formats/formats_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* Next blank-separated token of [*p, e): returns 0 at the end of the line. */
static int next_token(const char **p, const char *e, const char **ts, size_t *tn) {
  const char *q = *p;
  while (q < e && is_blank(*q)) q++;
  if (q == e) {
    *p = q;
    return 0;
  }
  const char *s = q;
  while (q < e && !is_blank(*q)) q++;
  *ts = s;
  *tn = (size_t)(q - s);
  *p = q;
  return 1;
}

static int64_t count_tokens(const char *p, const char *e) {
  const char *ts;
  size_t tn;
  int64_t k = 0;
  while (next_token(&p, e, &ts, &tn)) k++;
  return k;
}

static char *copy_label(const char *s, size_t n) {
  char *l = embr_alloc(n + 1);
  if (l) {
    memcpy(l, s, n);
    l[n] = '\0';
  }
  return l;
}

/* Parses one "word v1 .. vdim" line into dst and *label. */
static int parse_word_line(const char *name, int64_t lineno, int64_t row, const char *s,
                           const char *e, int64_t dim, float *dst, char **label) {
  const char *p = s, *w, *t;
  size_t wn, tn;
  char qb[40];
  if (!next_token(&p, e, &w, &wn))
    return embr_error(EMBR_EFORMAT, "%s: line %lld is empty", name, (long long)lineno);
  if (memchr(w, '\0', wn))
    return embr_error(EMBR_EFORMAT, "%s: line %lld: the word contains a NUL byte", name,
                      (long long)lineno);
  int64_t j = 0;
  while (next_token(&p, e, &t, &tn)) {
    if (j == dim)
      return embr_error(EMBR_EFORMAT, "%s: line %lld has %lld values, expected %lld", name,
                        (long long)lineno, (long long)(dim + 1 + count_tokens(p, e)),
                        (long long)dim);
    int r = embr__parse_float(t, tn, &dst[j]);
    if (r == EMBR__NUM_SYNTAX)
      return embr_error(EMBR_EFORMAT, "%s: line %lld, value %lld: '%s' is not a number", name,
                        (long long)lineno, (long long)(j + 1), embr__quote(qb, t, tn));
    if (r == EMBR__NUM_NONFINITE)
      return embr_error(EMBR_EVALUE,
                        "%s: line %lld (row %lld), column %lld: '%s' is not a finite float32; NaN "
                        "and Inf are not allowed",
                        name, (long long)lineno, (long long)row, (long long)j,
                        embr__quote(qb, t, tn));
    j++;
  }
  if (j < dim)
    return embr_error(EMBR_EFORMAT, "%s: line %lld has %lld values, expected %lld", name,
                      (long long)lineno, (long long)j, (long long)dim);
  *label = copy_label(w, wn);
  if (!*label) return embr_error(EMBR_ENOMEM, "%s: out of memory", name);
  return 0;
}

/* "n dim": two positive integers separated by blanks. The message says which part is wrong and
 * shows the line, since a header is where a file of another kind is usually noticed. `text`: a
 * text file, where a missing header most likely means GloVe. */
static int parse_header(const char *name, const char *s, const char *e, int text, int64_t *n,
                        int64_t *dim) {
  const char *p = s, *a, *b, *c;
  size_t an, bn, cn;
  char qb[40], qc[40];
  int have_a = next_token(&p, e, &a, &an), have_b = have_a && next_token(&p, e, &b, &bn);
  if (!have_b || next_token(&p, e, &c, &cn))
    return embr_error(EMBR_EFORMAT,
                      "%s: line 1 '%s' is not a word2vec header '<rows> <dimension>' (two integers)%s",
                      name, embr__quote(qb, s, (size_t)(e - s)),
                      text ? "; a GloVe file has no header: read it with --format glove" : "");
  if (embr__parse_count(a, an, INT64_MAX, n))
    return embr_error(EMBR_EFORMAT, "%s: word2vec header: the row count '%s' is not a non-negative integer",
                      name, embr__quote(qb, a, an));
  if (embr__parse_count(b, bn, INT64_MAX, dim))
    return embr_error(EMBR_EFORMAT, "%s: word2vec header: the dimension '%s' is not a non-negative integer",
                      name, embr__quote(qc, b, bn));
  if (*dim > INT32_MAX)
    return embr_error(EMBR_EFORMAT, "%s: word2vec header: dimension %lld is too large (at most %d)", name,
                      (long long)*dim, INT32_MAX);
  if (*n == 0 || *dim == 0)
    return embr_error(EMBR_EFORMAT, "%s: no rows (header says %lld x %lld)", name, (long long)*n,
                      (long long)*dim);
  return 0;
}

int embr__w2v_has_header(const unsigned char *p, size_t len) {
  embr__lines L;
  const char *s, *e, *a, *b, *c;
  size_t an, bn, cn;
  int64_t v;
  embr__lines_init(&L, p, len);
  if (!embr__lines_next(&L, &s, &e)) return 0;
  return next_token(&s, e, &a, &an) && next_token(&s, e, &b, &bn) && !next_token(&s, e, &c, &cn) &&
         embr__parse_count(a, an, INT64_MAX, &v) == 0 &&
         embr__parse_count(b, bn, INT64_MAX, &v) == 0;
}

/* Checks, before anything is allocated, that `rows` rows of at least dim x per_value +
 * per_row bytes fit in the `have` bytes left (`slack`: the last row may lack its newline). */
static int check_fits(const char *name, int64_t rows, int64_t dim, size_t per_value,
                      size_t per_row, size_t slack, size_t have) {
  size_t row_min, need;
  if (embr_size_muladd((size_t)dim, per_value, per_row, &row_min) ||
      embr_size_mul((size_t)rows, row_min, &need) || need - slack > have)
    return embr_error(EMBR_EFORMAT,
                      "%s: truncated: header says %lld rows of dimension %lld, but only %zu bytes "
                      "follow it",
                      name, (long long)rows, (long long)dim, have);
  return 0;
}

static int alloc_with_labels(embr_matrix *out, int64_t n, int64_t dim, const char *name) {
  int rc = embr__matrix_alloc_named(out, n, dim, name);
  if (!rc && embr_matrix_alloc_labels(out))
    rc = embr_error(EMBR_ENOMEM, "%s: out of memory for %lld labels", name, (long long)n);
  return rc;
}

/* The lines after the last row may only be blank. */
static int check_tail(const char *name, embr__lines *L, int64_t rows) {
  const char *s, *e;
  while (embr__lines_next(L, &s, &e))
    if (!embr__all_space(s, (size_t)(e - s)))
      return embr_error(EMBR_EFORMAT, "%s: line %lld: more rows than the %lld the header announces",
                        name, (long long)L->lineno, (long long)rows);
  return 0;
}

int embr__w2v_text_parse(const unsigned char *p, size_t len, const char *name, embr_matrix *out) {
  embr__lines L;
  const char *s = NULL, *e = NULL;
  int64_t n, dim;
  embr__lines_init(&L, p, len);
  embr__lines_next(&L, &s, &e);
  int rc = parse_header(name, s, e, 1, &n, &dim);
  if (rc) return rc;
  /* A row is at least "w" + dim x " 0" + "\n". */
  if ((rc = check_fits(name, n, dim, 2, 2, 1, (size_t)(L.end - L.cur)))) return rc;
  if ((rc = alloc_with_labels(out, n, dim, name))) return rc;
  for (int64_t i = 0; i < n; i++) {
    const char *rest = L.cur;
    if (!embr__lines_next(&L, &s, &e) || embr__all_space(rest, (size_t)(L.end - rest)))
      return embr_error(EMBR_EFORMAT, "%s: truncated: header says %lld rows, file has %lld", name,
                        (long long)n, (long long)i);
    rc = parse_word_line(name, L.lineno, i, s, e, dim, out->data + i * out->ld, &out->labels[i]);
    if (rc) return rc;
  }
  return check_tail(name, &L, n);
}

int embr__glove_parse(const unsigned char *p, size_t len, const char *name, embr_matrix *out) {
  embr__lines L;
  const char *s = NULL, *e = NULL;
  embr__lines_init(&L, p, len);
  if (embr__all_space((const char *)p, len)) return embr_error(EMBR_EFORMAT, "%s: no rows", name);
  embr__lines_next(&L, &s, &e);
  int64_t dim = count_tokens(s, e) - 1;
  if (dim < 1)
    return embr_error(EMBR_EFORMAT, "%s: line 1 has %s; a GloVe line is a word and its values",
                      name, dim == 0 ? "a word but no values" : "no word");
  /* Rows are bounded by the lines and by the bytes: each is at least "w" + dim x " 0" + "\n". */
  size_t cap = embr__count_newlines(p, len) + 1;
  size_t by_size = (len + 1) / (2 * (size_t)dim + 2);
  if (by_size < cap) cap = by_size;
  /* One spare row: a malformed row past the bound is then parsed and reported precisely. */
  cap += 1;
  int rc = alloc_with_labels(out, (int64_t)cap, dim, name);
  if (rc) return rc;
  embr__lines_init(&L, p, len);
  int64_t i = 0;
  while (embr__lines_next(&L, &s, &e)) {
    if (embr__all_space(s, (size_t)(e - s))) {
      if (!embr__all_space(L.cur, (size_t)(L.end - L.cur)))
        return embr_error(EMBR_EFORMAT, "%s: line %lld is empty", name, (long long)L.lineno);
      break;
    }
    if ((size_t)i == cap) /* cannot happen for well-formed rows; keeps the bound honest */
      return embr_error(EMBR_EFORMAT, "%s: line %lld: too many rows for the file size", name,
                        (long long)L.lineno);
    rc = parse_word_line(name, L.lineno, i, s, e, dim, out->data + i * out->ld, &out->labels[i]);
    if (rc) return rc;
    i++;
  }
  out->n = i; /* labels beyond i are NULL and the spare rows are simply unused */
  return 0;
}

/* ---- word2vec binary ------------------------------------------------------------------------ */

enum { MAX_HEADER_LINE = 256 };

/* The word starting at p[*pos]: up to the single space that precedes the vector. */
static int read_bin_word(const unsigned char *p, size_t len, size_t *pos, const char *name,
                         int64_t row, size_t *ws, size_t *wn) {
  size_t i = *pos;
  while (i < len && p[i] != ' ') {
    if (p[i] == '\n' || p[i] == '\0') {
      char qb[40];
      return embr_error(EMBR_EFORMAT,
                        "%s: row %lld: word '%s' is followed by a %s instead of a space (is this "
                        "a text file?)",
                        name, (long long)row, embr__quote(qb, (const char *)p + *pos, i - *pos),
                        p[i] == '\n' ? "line break" : "NUL byte");
    }
    i++;
  }
  if (i == len)
    return embr_error(EMBR_EFORMAT, "%s: truncated: row %lld has a word but no vector", name,
                      (long long)row);
  *ws = *pos;
  *wn = i - *pos;
  *pos = i + 1;
  return 0;
}

static int bin_rows(const unsigned char *p, size_t len, size_t pos, const char *name,
                    embr_matrix *out) {
  size_t vbytes = (size_t)out->dim * 4, ws = 0, wn = 0;
  char qb[40];
  for (int64_t i = 0; i < out->n; i++) {
    /* word2vec.c ends a row with '\n'; some writers put it before the word instead. */
    while (pos < len && embr__is_space(p[pos])) pos++;
    if (pos == len)
      return embr_error(EMBR_EFORMAT, "%s: truncated: header says %lld rows, file has %lld", name,
                        (long long)out->n, (long long)i);
    int rc = read_bin_word(p, len, &pos, name, i, &ws, &wn);
    if (rc) return rc;
    if (len - pos < vbytes)
      return embr_error(EMBR_EFORMAT,
                        "%s: truncated: row %lld ('%s') has %zu of the %zu bytes of its vector",
                        name, (long long)i, embr__quote(qb, (const char *)p + ws, wn), len - pos,
                        vbytes);
    embr__copy_le_f32(out->data + i * out->ld, p + pos, (size_t)out->dim);
    pos += vbytes;
    out->labels[i] = copy_label((const char *)p + ws, wn);
    if (!out->labels[i]) return embr_error(EMBR_ENOMEM, "%s: out of memory", name);
  }
  while (pos < len && embr__is_space(p[pos])) pos++;
  if (pos != len)
    return embr_error(EMBR_EFORMAT, "%s: %zu bytes after the %lld rows the header announces", name,
                      len - pos, (long long)out->n);
  return 0;
}

int embr__w2v_bin_parse(const unsigned char *p, size_t len, const char *name, embr_matrix *out) {
  const unsigned char *nl = memchr(p, '\n', len < MAX_HEADER_LINE ? len : MAX_HEADER_LINE);
  if (!nl)
    return embr_error(EMBR_EFORMAT,
                      "%s: no word2vec header line '<rows> <dimension>' at the start of the file",
                      name);
  const char *s = (const char *)p, *e = (const char *)nl;
  if (e > s && e[-1] == '\r') e--;
  int64_t n, dim;
  int rc = parse_header(name, s, e, 0, &n, &dim);
  if (rc) return rc;
  size_t pos = (size_t)(nl - p) + 1;
  /* A row is at least a 1-byte word, the space and dim float32. */
  if ((rc = check_fits(name, n, dim, 4, 2, 0, len - pos))) return rc;
  if ((rc = alloc_with_labels(out, n, dim, name))) return rc;
  if ((rc = bin_rows(p, len, pos, name, out))) return rc;
  int64_t r, c;
  if (embr_matrix_find_nonfinite(out, &r, &c) == 0) {
    char qb[40];
    return embr_error(EMBR_EVALUE, "%s: row %lld ('%s'), column %lld is %s; values must be finite",
                      name, (long long)r, embr__quote(qb, out->labels[r], strlen(out->labels[r])),
                      (long long)c, isnan(out->data[r * out->ld + c]) ? "NaN" : "Inf");
  }
  return 0;
}

/* ---- writing ---------------------------------------------------------------------------------- */

int embr__labels_check(const char *name, const embr_matrix *m) {
  if (!m->labels)
    return embr_error(EMBR_EINVAL,
                      "%s: the matrix has no labels; word2vec and GloVe files need a word per row",
                      name);
  for (int64_t i = 0; i < m->n; i++) {
    const char *l = m->labels[i];
    if (!l || !*l)
      return embr_error(EMBR_EINVAL, "%s: row %lld has no label; every row needs a word", name,
                        (long long)i);
    for (const char *c = l; *c; c++) {
      if (embr__is_space((unsigned char)*c)) {
        char qb[40];
        return embr_error(EMBR_EINVAL,
                          "%s: row %lld: label '%s' contains whitespace, which the format cannot "
                          "store",
                          name, (long long)i, embr__quote(qb, l, strlen(l)));
      }
    }
  }
  return 0;
}

static int write_header(embr__wfile *w, const embr_matrix *m) {
  return embr__wfile_printf(w, "%lld %lld\n", (long long)m->n, (long long)m->dim);
}

int embr__w2v_text_write(embr__wfile *w, const embr_matrix *m) {
  int rc = write_header(w, m);
  return rc ? rc : embr__write_text_rows(w, m, 1, ' ');
}

int embr__glove_write(embr__wfile *w, const embr_matrix *m) {
  return embr__write_text_rows(w, m, 1, ' ');
}

int embr__w2v_bin_write(embr__wfile *w, const embr_matrix *m) {
  int rc = write_header(w, m);
  size_t dim = (size_t)m->dim;
  unsigned char *vec = embr_alloc(dim * 4);
  if (!vec) return embr_error(EMBR_ENOMEM, "%s: out of memory", w->path);
  /* As word2vec.c writes it: word, one space, the raw floats, '\n'. */
  for (int64_t i = 0; i < m->n && !rc; i++) {
    const float *src = m->data + i * m->ld;
    for (size_t j = 0; j < dim; j++) embr__put_le32(vec + 4 * j, embr__f32_bits(src[j]));
    const char *l = m->labels[i];
    rc = embr__wfile_write(w, l, strlen(l));
    if (!rc) rc = embr__wfile_write(w, " ", 1);
    if (!rc) rc = embr__wfile_write(w, vec, dim * 4);
    if (!rc) rc = embr__wfile_write(w, "\n", 1);
  }
  embr_free(vec);
  return rc;
}

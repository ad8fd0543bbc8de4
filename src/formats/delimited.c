/* CSV and TSV numeric matrices: one row per line, fields separated by ',' or '\t', an optional
 * non-numeric header line first, and (for maps as `embr tsne` writes them) optionally a last
 * column of labels. Layout and rules in docs/formats.md. */
#include "formats/formats_internal.h"

#include <stdlib.h>
#include <string.h>

/* Spaces around a field are allowed (and tabs, when tab is not the separator). */
static int is_pad(char c, char sep) { return c == ' ' || (c == '\t' && sep != '\t'); }

/* The field starting at *p, trimmed of padding; *p moves past its separator (or to e). */
static void take_field(const char **p, const char *e, char sep, const char **fs, size_t *fn) {
  const char *q = *p;
  const char *stop = memchr(q, sep, (size_t)(e - q));
  const char *fe = stop ? stop : e;
  while (q < fe && is_pad(*q, sep)) q++;
  const char *te = fe;
  while (te > q && is_pad(te[-1], sep)) te--;
  *fs = q;
  *fn = (size_t)(te - q);
  *p = stop ? stop + 1 : e;
}

static int64_t count_fields(const char *s, const char *e, char sep) {
  int64_t k = 1;
  for (const char *q = s; (q = memchr(q, sep, (size_t)(e - q))) != NULL; q++) k++;
  return k;
}

/* 1 when every field of the line is a number (finite or not), i.e. it is data, not a header. */
static int line_is_numeric(const char *s, const char *e, char sep) {
  const char *p = s, *fs;
  size_t fn;
  float v;
  for (int64_t k = count_fields(s, e, sep); k > 0; k--) {
    take_field(&p, e, sep, &fs, &fn);
    if (embr__parse_float(fs, fn, &v) == EMBR__NUM_SYNTAX) return 0;
  }
  return 1;
}

/* 1 when the first field of the line is a number: with a label column, data rather than a header. */
static int first_field_numeric(const char *s, const char *e, char sep) {
  const char *p = s, *fs;
  size_t fn;
  float v;
  take_field(&p, e, sep, &fs, &fn);
  return embr__parse_float(fs, fn, &v) != EMBR__NUM_SYNTAX;
}

/* The rest of the line after the numbers, as an owned string (matrix labels come from embr_alloc). */
static int take_label(const char *name, int64_t lineno, const char *p, const char *e, char **label) {
  size_t n = (size_t)(e - p);
  *label = embr_alloc(n + 1);
  if (!*label) return embr_error(EMBR_ENOMEM, "%s: out of memory at line %lld", name, (long long)lineno);
  memcpy(*label, p, n);
  (*label)[n] = '\0';
  return 0;
}

static int parse_line(const char *name, int64_t lineno, int64_t row, const char *s, const char *e,
                      char sep, int64_t dim, int label_last, float *dst, char **label) {
  int64_t k = count_fields(s, e, sep);
  if (k != dim + label_last)
    return embr_error(EMBR_EFORMAT, "%s: line %lld has %lld fields, expected %lld%s", name,
                      (long long)lineno, (long long)k, (long long)(dim + label_last),
                      label_last ? " (numbers and a label)" : "");
  const char *p = s, *fs;
  size_t fn;
  char qb[40];
  for (int64_t j = 0; j < dim; j++) {
    take_field(&p, e, sep, &fs, &fn);
    int r = embr__parse_float(fs, fn, &dst[j]);
    if (r == EMBR__NUM_SYNTAX)
      return embr_error(EMBR_EFORMAT, "%s: line %lld, column %lld: %s%s%s is not a number", name,
                        (long long)lineno, (long long)(j + 1), fn ? "'" : "",
                        fn ? embr__quote(qb, fs, fn) : "an empty field", fn ? "'" : "");
    if (r == EMBR__NUM_NONFINITE)
      return embr_error(EMBR_EVALUE,
                        "%s: line %lld (row %lld), column %lld: '%s' is not a finite float32; NaN "
                        "and Inf are not allowed",
                        name, (long long)lineno, (long long)row, (long long)(j + 1),
                        embr__quote(qb, fs, fn));
  }
  return label_last ? take_label(name, lineno, p, e, label) : 0;
}

/* pandas' DataFrame.to_csv() writes the row index as a first column with an empty header cell:
 * ",a,b\n0,1.5,2\n1,...". Read as data it would silently become a feature (and dominate every
 * distance), so a file whose header starts with an empty cell and whose first column counts
 * 0, 1, 2, ... has that column dropped. Both signs together do not happen by accident. */
static int header_first_cell_empty(const char *s, const char *e, char sep) {
  const char *p = s, *fs;
  size_t fn;
  take_field(&p, e, sep, &fs, &fn);
  return fn == 0;
}

/* The header must name every column of the rows, and a column must remain. */
static void drop_index_column(embr_matrix *m, int64_t header_fields) {
  if (m->dim < 2 || header_fields != m->dim) return;
  for (int64_t i = 0; i < m->n; i++) {
    if (m->data[i * m->ld] != (float)i) return;
  }
  int64_t d = m->dim - 1;
  for (int64_t i = 0; i < m->n; i++) memmove(m->data + i * d, m->data + i * m->ld + 1, sizeof(float) * (size_t)d);
  m->dim = m->ld = d;
}

int embr__delimited_parse(const unsigned char *p, size_t len, const char *name, char sep,
                          int label_last, embr_matrix *out) {
  embr__lines L;
  const char *s = NULL, *e = NULL;
  embr__lines_init(&L, p, len);
  if (embr__all_space((const char *)p, len)) return embr_error(EMBR_EFORMAT, "%s: no rows", name);
  embr__lines_next(&L, &s, &e);
  /* Only the first line may be a header; it is whatever does not parse as numbers. */
  int header = label_last ? !first_field_numeric(s, e, sep) : !line_is_numeric(s, e, sep);
  /* label_last files are t-SNE maps, never pandas frames. */
  int maybe_index = !label_last && header && header_first_cell_empty(s, e, sep);
  int64_t header_fields = count_fields(s, e, sep);
  const char *data = header ? L.cur : (const char *)p;
  int64_t first_line = header ? 2 : 1;
  size_t left = (size_t)(L.end - data);
  if (embr__all_space(data, left)) return embr_error(EMBR_EFORMAT, "%s: no rows after the header", name);
  embr__lines_init(&L, (const unsigned char *)data, left);
  embr__lines_next(&L, &s, &e);
  int64_t dim = count_fields(s, e, sep) - label_last;
  if (dim < 1)
    return embr_error(EMBR_EFORMAT, "%s: line %lld has a label but no numbers", name, (long long)first_line);
  /* Rows are bounded by the lines and by the bytes: each is at least dim x "0," (the last '\n'
   * optional). */
  size_t cap = embr__count_newlines((const unsigned char *)data, left) + 1;
  size_t by_size = (left + 1) / (2 * (size_t)dim);
  if (by_size < cap) cap = by_size;
  /* One spare row: a malformed row past the bound is then parsed and reported precisely. */
  cap += 1;
  int rc = embr__matrix_alloc_named(out, (int64_t)cap, dim, name);
  if (rc) return rc;
  if (label_last && embr_matrix_alloc_labels(out))
    return embr_error(EMBR_ENOMEM, "%s: out of memory for %lld labels", name, (long long)cap);
  embr__lines_init(&L, (const unsigned char *)data, left);
  L.lineno = first_line - 1;
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
    rc = parse_line(name, L.lineno, i, s, e, sep, dim, label_last, out->data + i * out->ld,
                    label_last ? &out->labels[i] : NULL);
    if (rc) return rc;
    i++;
  }
  out->n = i;
  if (maybe_index) drop_index_column(out, header_fields);
  return 0;
}

int embr__delimited_write(embr__wfile *w, char sep, const embr_matrix *m) {
  return embr__write_text_rows(w, m, 0, sep);
}

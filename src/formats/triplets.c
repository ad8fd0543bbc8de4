/* Sparse "i j value" files (t-SNE's precomputed sparse distances): text rows whose three fields
 * are separated by any run of spaces or tabs (what people write by hand, with awk or with
 * numpy.savetxt), or any 3-column matrix file (.npy, .fvecs, CSV). The result is an n x 3 float
 * matrix; indices are checked as integers here, exact in float32 up to 2^24. */
#include "formats/formats_internal.h"

enum { MAX_INDEX = (1 << 24) - 1 }; /* largest integer a float32 holds exactly, minus one */

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* Splits [s, e) at runs of blanks into at most 4 fields (a 4th means too many). */
static int split_blanks(const char *s, const char *e, const char **fs, size_t *fn) {
  int k = 0;
  while (k < 4) {
    while (s < e && is_blank(*s)) s++;
    if (s == e) break;
    const char *t = s;
    while (t < e && !is_blank(*t)) t++;
    fs[k] = s;
    fn[k++] = (size_t)(t - s);
    s = t;
  }
  return k;
}

static int parse_row(const char *name, int64_t lineno, const char *s, const char *e, float *row) {
  const char *fs[4];
  size_t fn[4];
  char q[40];
  int k = split_blanks(s, e, fs, fn);
  if (k != 3)
    return embr_error(EMBR_EFORMAT, "%s: line %lld has %s fields, expected 3 (i j distance, separated by spaces or tabs)",
                      name, (long long)lineno, k > 3 ? "more than 3" : k == 2 ? "2" : k == 1 ? "1" : "no");
  for (int c = 0; c < 2; c++) {
    int64_t v;
    if (embr__parse_count(fs[c], fn[c], MAX_INDEX, &v))
      return embr_error(EMBR_EFORMAT, "%s: line %lld, column %d: '%s' is not a point number (an integer 0..%d)", name,
                        (long long)lineno, c + 1, embr__quote(q, fs[c], fn[c]), MAX_INDEX);
    row[c] = (float)v;
  }
  int r = embr__parse_float(fs[2], fn[2], &row[2]);
  if (r != EMBR__NUM_OK)
    return embr_error(r == EMBR__NUM_SYNTAX ? EMBR_EFORMAT : EMBR_EVALUE, "%s: line %lld, column 3: '%s' is not a %s",
                      name, (long long)lineno, embr__quote(q, fs[2], fn[2]),
                      r == EMBR__NUM_SYNTAX ? "number" : "finite float32");
  return 0;
}

/* 1 when the line's first blank-separated field is not a number (a header). */
static int is_header(const char *s, const char *e) {
  const char *fs[4];
  size_t fn[4];
  float v;
  return split_blanks(s, e, fs, fn) > 0 && embr__parse_float(fs[0], fn[0], &v) == EMBR__NUM_SYNTAX;
}

static int parse_text(const unsigned char *p, size_t len, const char *name, embr_matrix *out) {
  /* Rows are bounded by the lines and by the bytes ("0 0 0" is 5 bytes and a newline). */
  size_t cap = embr__count_newlines(p, len) + 1, by_size = len / 6 + 1;
  if (by_size < cap) cap = by_size;
  int rc = embr__matrix_alloc_named(out, (int64_t)cap, 3, name);
  if (rc) return rc;
  embr__lines L;
  const char *s, *e;
  embr__lines_init(&L, p, len);
  int64_t n = 0;
  int first = 1;
  while (embr__lines_next(&L, &s, &e)) {
    if (embr__all_space(s, (size_t)(e - s))) continue;
    if (first && is_header(s, e)) {
      first = 0;
      continue;
    }
    first = 0;
    if ((size_t)n == cap)
      return embr_error(EMBR_EFORMAT, "%s: line %lld: too many rows for the file size", name, (long long)L.lineno);
    if ((rc = parse_row(name, L.lineno, s, e, out->data + n * 3))) return rc;
    n++;
  }
  if (n == 0) return embr_error(EMBR_EFORMAT, "%s: no rows (expected lines of i j distance)", name);
  out->n = n;
  return 0;
}

/* Binary and CSV inputs go through the matrix readers; everything else is text rows. */
static int is_matrix_format(embr_format f) {
  return f == EMBR_FORMAT_NPY || f == EMBR_FORMAT_FVECS || f == EMBR_FORMAT_IVECS || f == EMBR_FORMAT_BVECS ||
         f == EMBR_FORMAT_CSV;
}

embr_status embr_triplets_read_mem(const void *buf, size_t len, const char *name, embr_format fmt, embr_matrix *out) {
  if (!out) return embr_error(EMBR_EINVAL, "embr_triplets_read_mem: output matrix is NULL");
  memset(out, 0, sizeof *out);
  if (!name) name = "<memory>";
  if (!buf && len) return embr_error(EMBR_EINVAL, "%s: buffer is NULL", name);
  embr_format f = fmt != EMBR_FORMAT_AUTO ? fmt : embr_format_from_extension(name);
  int rc;
  if (fmt == EMBR_FORMAT_AUTO && len >= 6 && memcmp(buf, "\x93NUMPY", 6) == 0) f = EMBR_FORMAT_NPY; /* whatever its name */
  if (is_matrix_format(f)) {
    rc = embr_matrix_read_mem(buf, len, name, f, out);
    if (!rc && out->dim != 3)
      rc = embr_error(EMBR_EDIM, "%s: %lld columns, expected 3 (i, j, distance)", name, (long long)out->dim);
  } else {
    rc = len ? parse_text(buf, len, name, out) : embr_error(EMBR_EFORMAT, "%s: empty file", name);
  }
  if (rc) embr_matrix_free(out);
  return rc;
}

embr_status embr_triplets_read(const char *path, embr_format fmt, embr_matrix *out) {
  return embr__read_path(path, fmt, out, embr_triplets_read_mem);
}

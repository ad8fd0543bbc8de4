/* Internal interface of the matrix file formats: one parse and one write function per format,
 * plus the helpers they share (number parsing, byte order, checked allocation).
 *
 * Parsers take the whole file as bytes (mapped or in memory, NOT NUL-terminated), a `name` used
 * as the first word of every error message, and fill `out` (left zeroed on failure). format.c has
 * already refused an empty buffer, so parsers may assume len > 0. Writers get an open atomic output
 * file and a matrix that format.c has validated (n >= 1, dim >= 1, ld >= dim, data != NULL); they
 * check what is specific to their format before writing anything. */
#ifndef EMBR_FORMATS_INTERNAL_H
#define EMBR_FORMATS_INTERNAL_H

#include "core/fileio.h"
#include "embr/matrix.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- per-format entry points ----------------------------------------------------------------- */
int embr__npy_parse(const unsigned char *p, size_t len, const char *name, embr_matrix *out);
int embr__npy_write(embr__wfile *w, const embr_matrix *m);

/* fmt is one of FVECS, IVECS, BVECS. */
int embr__vecs_parse(const unsigned char *p, size_t len, const char *name, embr_format fmt,
                     embr_matrix *out);
int embr__vecs_check(const char *name, embr_format fmt, const embr_matrix *m);
int embr__vecs_write(embr__wfile *w, embr_format fmt, const embr_matrix *m);
/* .ivecs as int32: *data allocated with embr_alloc. */
int embr__ivecs_parse_int(const unsigned char *p, size_t len, const char *name, int32_t **data,
                          int64_t *n, int64_t *dim);
int embr__ivecs_write_int(embr__wfile *w, const int32_t *data, int64_t n, int64_t dim);

int embr__w2v_text_parse(const unsigned char *p, size_t len, const char *name, embr_matrix *out);
int embr__w2v_bin_parse(const unsigned char *p, size_t len, const char *name, embr_matrix *out);
int embr__glove_parse(const unsigned char *p, size_t len, const char *name, embr_matrix *out);
/* 1 when the first line of the buffer is exactly two integers (a word2vec text header). */
int embr__w2v_has_header(const unsigned char *p, size_t len);
/* Refuses missing labels and labels containing whitespace. */
int embr__labels_check(const char *name, const embr_matrix *m);
int embr__w2v_text_write(embr__wfile *w, const embr_matrix *m);
int embr__w2v_bin_write(embr__wfile *w, const embr_matrix *m);
int embr__glove_write(embr__wfile *w, const embr_matrix *m);

/* sep is ',' (CSV) or '\t' (TSV). With label_last, the last field of each row is its label
 * (out->labels) and a header is a first line whose first field is not a number. */
int embr__delimited_parse(const unsigned char *p, size_t len, const char *name, char sep,
                          int label_last, embr_matrix *out);
/* 1 when a TSV map's last column holds labels (map.c): the header names it "label", or the first
 * data row's last field is not a number, or (guess_classes) it is an integer after a decimal
 * first field, as digit classes after t-SNE coordinates. Rows need 3 or more fields. */
int embr__map_label_column(const unsigned char *p, size_t len, int guess_classes);
int embr__delimited_write(embr__wfile *w, char sep, const embr_matrix *m);

/* ---- shared helpers (format.c) --------------------------------------------------------------- */

/* Reads a file through a from-memory reader (embr_matrix_read_mem and its kin): maps or reads
 * the file, calls read_mem with the path as the name, releases the bytes. */
typedef embr_status (*embr__mem_reader)(const void *buf, size_t len, const char *name, embr_format fmt,
                                        embr_matrix *out);
int embr__read_path(const char *path, embr_format fmt, embr_matrix *out, embr__mem_reader read_mem);

/* Result of embr__parse_float. */
enum {
  EMBR__NUM_OK = 0,
  EMBR__NUM_SYNTAX = 1,   /* not a decimal number (or longer than EMBR__NUM_MAX_LEN) */
  EMBR__NUM_NONFINITE = 2 /* nan, inf, or a finite decimal beyond the float32 range */
};
enum { EMBR__NUM_MAX_LEN = 64 };

/* Parses the decimal number s[0..n) (no surrounding whitespace) into the nearest float32,
 * independent of the locale. Accepts [+-]digits[.digits][(e|E)[+-]digits] and the forms .5 and 5.;
 * recognises nan/inf/infinity only to report them as EMBR__NUM_NONFINITE. */
int embr__parse_float(const char *s, size_t n, float *out);

/* Parses a non-negative decimal integer s[0..n) (an optional leading '+'); 0 on success, -1 when
 * it is not one or exceeds `max`. */
int embr__parse_count(const char *s, size_t n, int64_t max, int64_t *out);

/* A token for messages: at most 32 bytes of s[0..n), non-printable bytes replaced by '?', and
 * "..." when cut. `buf` needs 40 bytes. */
const char *embr__quote(char *buf, const char *s, size_t n);

/* Allocates out as n x dim; on failure records an error naming the file. */
int embr__matrix_alloc_named(embr_matrix *out, int64_t n, int64_t dim, const char *name);

/* Writes the rows of m as text: [label sep] v1 sep v2 ... vdim '\n', values as "%.9g". */
int embr__write_text_rows(embr__wfile *w, const embr_matrix *m, int with_labels, char sep);

/* Formats v with "%.9g" (enough to round-trip every float32) into buf (>= 24 bytes); returns
 * the length. */
int embr__format_float(char *buf, float v);

/* ---- byte order ------------------------------------------------------------------------------
 * Every format here is little-endian. On a little-endian host the bulk copies are plain memcpy;
 * the byte-wise loads are the portable path and are used for single fields. */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define EMBR__HOST_LE 1
#endif
#endif
#ifndef EMBR__HOST_LE
#define EMBR__HOST_LE 0
#endif

static inline uint16_t embr__le16(const unsigned char *p) {
  return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t embr__le32(const unsigned char *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t embr__le64(const unsigned char *p) {
  return (uint64_t)embr__le32(p) | ((uint64_t)embr__le32(p + 4) << 32);
}
static inline void embr__put_le32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}
static inline float embr__le_f32(const unsigned char *p) {
  uint32_t u = embr__le32(p);
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}
static inline uint32_t embr__f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

/* Copies count little-endian float32 values from unaligned bytes. */
static inline void embr__copy_le_f32(float *dst, const unsigned char *src, size_t count) {
  if (EMBR__HOST_LE) {
    memcpy(dst, src, count * sizeof(float));
  } else {
    for (size_t i = 0; i < count; i++) dst[i] = embr__le_f32(src + 4 * i);
  }
}

static inline int embr__is_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* ---- lines of a text buffer -------------------------------------------------------------------
 * Yields each line without its line end, with its 1-based number. Lines end in "\n", "\r\n" or a
 * lone "\r" (classic Mac files, and what some spreadsheet exports still write): a CR inside a line
 * is never data in these formats, so treating it as a line end reads those files as their author
 * meant instead of as one huge line. */
typedef struct embr__lines {
  const char *cur, *end;
  const char *lf; /* the next '\n' at or after cur (end when none); NULL until searched */
  int64_t lineno; /* number of the line last returned */
} embr__lines;

static inline void embr__lines_init(embr__lines *L, const unsigned char *p, size_t len) {
  L->cur = (const char *)p;
  L->end = (const char *)p + len;
  L->lf = NULL;
  L->lineno = 0;
}

/* 1 and the line in [*s, *e), or 0 at the end of the buffer. */
static inline int embr__lines_next(embr__lines *L, const char **s, const char **e) {
  if (L->cur >= L->end) return 0;
  /* The LF position is kept across calls: a CR-only file has none, and searching the rest of the
   * file again for every line would take quadratic time. */
  if (!L->lf || L->lf < L->cur) {
    const char *nl = memchr(L->cur, '\n', (size_t)(L->end - L->cur));
    L->lf = nl ? nl : L->end;
  }
  const char *stop = L->lf;
  const char *cr = memchr(L->cur, '\r', (size_t)(stop - L->cur));
  *s = L->cur;
  L->lineno++;
  if (cr && cr + 1 < stop) { /* a lone CR ends this line */
    *e = cr;
    L->cur = cr + 1;
    return 1;
  }
  *e = cr ? cr : stop; /* "\r\n", or a final "\r" */
  L->cur = stop < L->end ? stop + 1 : L->end;
  return 1;
}

/* 1 when s[0..n) holds only whitespace. */
static inline int embr__all_space(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!embr__is_space((unsigned char)s[i])) return 0;
  return 1;
}

/* Number of line ends in the buffer as embr__lines_next counts them: each '\n', and each '\r' not
 * followed by '\n' (an upper bound on rows is this + 1). */
static inline size_t embr__count_newlines(const unsigned char *p, size_t len) {
  size_t n = 0;
  const unsigned char *end = p + len, *q = p;
  while (q < end && (q = memchr(q, '\n', (size_t)(end - q))) != NULL) {
    n++;
    q++;
  }
  for (q = p; q < end && (q = memchr(q, '\r', (size_t)(end - q))) != NULL; q++)
    if (q + 1 < end && q[1] != '\n') n++;
  return n;
}

#endif

/* The TEXMEX .fvecs / .ivecs / .bvecs formats (SIFT1M, GIST1M, ...): each row is a little-endian
 * int32 dimension followed by that many float32 / int32 / uint8 values. Layout in
 * docs/formats.md. */
#include "formats/formats_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* float32 holds every integer of magnitude up to 2^24 exactly. */
#define FLOAT_EXACT_INT 16777216

static size_t elem_size(embr_format fmt) { return fmt == EMBR_FORMAT_BVECS ? 1 : 4; }

/* Checks the first row's header and computes the row size and number of whole rows. */
static int vecs_layout(const unsigned char *p, size_t len, const char *name, size_t esz,
                       int32_t *dim, size_t *row_bytes) {
  if (len < 4)
    return embr_error(EMBR_EFORMAT, "%s: truncated: row 0 has %zu of the 4 bytes of its dimension",
                      name, len);
  int32_t d = (int32_t)embr__le32(p);
  if (d <= 0)
    return embr_error(EMBR_EFORMAT, "%s: row 0 has dimension %d; it must be positive", name, d);
  size_t rb;
  /* d < 2^31 so this cannot overflow on 64-bit; checked anyway for 32-bit size_t. */
  if (embr_size_muladd((size_t)d, esz, 4, &rb) || rb > len)
    return embr_error(EMBR_EFORMAT,
                      "%s: truncated: row 0 has dimension %d (%zu bytes per row), file has %zu "
                      "bytes",
                      name, d, (size_t)d * esz + 4, len);
  *dim = d;
  *row_bytes = rb;
  return 0;
}

static int dim_mismatch(const char *name, size_t row, int32_t got, int32_t want) {
  return embr_error(EMBR_EFORMAT, "%s: row %zu has dimension %d, expected %d", name, row, got,
                    want);
}

/* Checks every row header and the tail; returns the number of rows. Runs before conversion so a
 * bad file is refused without touching the output. */
static int vecs_rows(const unsigned char *p, size_t len, const char *name, int32_t dim,
                     size_t row_bytes, size_t *rows) {
  size_t n = len / row_bytes, rem = len % row_bytes;
  for (size_t i = 0; i < n; i++) {
    int32_t d = (int32_t)embr__le32(p + i * row_bytes);
    if (d != dim) return dim_mismatch(name, i, d, dim);
  }
  if (rem) {
    const unsigned char *t = p + n * row_bytes;
    if (rem >= 4 && (int32_t)embr__le32(t) != dim)
      return dim_mismatch(name, n, (int32_t)embr__le32(t), dim);
    return embr_error(EMBR_EFORMAT, "%s: truncated: row %zu has %zu of its %zu bytes", name, n,
                      rem, row_bytes);
  }
  *rows = n;
  return 0;
}

static int convert_rows(const unsigned char *p, const char *name, embr_format fmt,
                        size_t row_bytes, embr_matrix *out) {
  size_t dim = (size_t)out->dim;
  for (int64_t i = 0; i < out->n; i++) {
    const unsigned char *src = p + (size_t)i * row_bytes + 4;
    float *dst = out->data + i * out->ld;
    if (fmt == EMBR_FORMAT_FVECS) {
      embr__copy_le_f32(dst, src, dim);
    } else if (fmt == EMBR_FORMAT_BVECS) {
      for (size_t j = 0; j < dim; j++) dst[j] = (float)src[j];
    } else {
      for (size_t j = 0; j < dim; j++) {
        int32_t v = (int32_t)embr__le32(src + 4 * j);
        if (v > FLOAT_EXACT_INT || v < -FLOAT_EXACT_INT)
          return embr_error(EMBR_EVALUE,
                            "%s: row %lld, column %zu: %d is not exactly representable as float32 "
                            "(read it as int32 with embr_ivecs_read)",
                            name, (long long)i, j, v);
        dst[j] = (float)v;
      }
    }
  }
  int64_t r, c;
  if (fmt == EMBR_FORMAT_FVECS && embr_matrix_find_nonfinite(out, &r, &c) == 0)
    return embr_error(EMBR_EVALUE, "%s: row %lld, column %lld is %s; values must be finite", name,
                      (long long)r, (long long)c, isnan(out->data[r * out->ld + c]) ? "NaN" : "Inf");
  return 0;
}

int embr__vecs_parse(const unsigned char *p, size_t len, const char *name, embr_format fmt,
                     embr_matrix *out) {
  int32_t dim = 0;
  size_t row_bytes = 0, n = 0;
  int rc = vecs_layout(p, len, name, elem_size(fmt), &dim, &row_bytes);
  if (!rc) rc = vecs_rows(p, len, name, dim, row_bytes, &n);
  if (!rc) rc = embr__matrix_alloc_named(out, (int64_t)n, dim, name);
  if (!rc) rc = convert_rows(p, name, fmt, row_bytes, out);
  return rc;
}

int embr__ivecs_parse_int(const unsigned char *p, size_t len, const char *name, int32_t **data,
                          int64_t *n_out, int64_t *dim_out) {
  int32_t dim = 0;
  size_t row_bytes = 0, n = 0, bytes;
  int rc = vecs_layout(p, len, name, 4, &dim, &row_bytes);
  if (!rc) rc = vecs_rows(p, len, name, dim, row_bytes, &n);
  if (rc) return rc;
  /* n * dim * 4 < len, so no overflow is possible here. */
  bytes = n * (size_t)dim * 4;
  int32_t *d = embr_alloc(bytes);
  if (!d) return embr_error(EMBR_ENOMEM, "%s: out of memory for %zu x %d int32", name, n, dim);
  for (size_t i = 0; i < n; i++) {
    const unsigned char *src = p + i * row_bytes + 4;
    if (EMBR__HOST_LE) {
      memcpy(d + i * (size_t)dim, src, (size_t)dim * 4);
    } else {
      for (size_t j = 0; j < (size_t)dim; j++)
        d[i * (size_t)dim + j] = (int32_t)embr__le32(src + 4 * j);
    }
  }
  *data = d;
  *n_out = (int64_t)n;
  *dim_out = dim;
  return 0;
}

/* ---- writing ---------------------------------------------------------------------------------- */

int embr__vecs_check(const char *name, embr_format fmt, const embr_matrix *m) {
  if (m->dim > INT32_MAX)
    return embr_error(EMBR_EINVAL, "%s: dimension %lld does not fit the int32 row header", name,
                      (long long)m->dim);
  if (fmt == EMBR_FORMAT_FVECS) return 0;
  float lo = fmt == EMBR_FORMAT_BVECS ? 0.0f : -2147483648.0f;
  float hi = fmt == EMBR_FORMAT_BVECS ? 255.0f : 2147483520.0f; /* largest float < 2^31 */
  for (int64_t i = 0; i < m->n; i++) {
    const float *r = m->data + i * m->ld;
    for (int64_t j = 0; j < m->dim; j++) {
      float v = r[j];
      if (!(v >= lo && v <= hi) || v != truncf(v))
        return embr_error(EMBR_EVALUE, "%s: row %lld, column %lld: %.9g is not %s", name,
                          (long long)i, (long long)j, (double)v,
                          fmt == EMBR_FORMAT_BVECS ? "an integer in 0..255 (bvecs)"
                                                   : "an int32 integer (ivecs)");
    }
  }
  return 0;
}

int embr__vecs_write(embr__wfile *w, embr_format fmt, const embr_matrix *m) {
  size_t dim = (size_t)m->dim, esz = elem_size(fmt);
  unsigned char *row = malloc(4 + dim * esz);
  if (!row) return embr_error(EMBR_ENOMEM, "%s: out of memory", w->path);
  embr__put_le32(row, (uint32_t)m->dim);
  int rc = 0;
  for (int64_t i = 0; i < m->n && !rc; i++) {
    const float *src = m->data + i * m->ld;
    unsigned char *dst = row + 4;
    for (size_t j = 0; j < dim; j++) {
      if (fmt == EMBR_FORMAT_FVECS)
        embr__put_le32(dst + 4 * j, embr__f32_bits(src[j]));
      else if (fmt == EMBR_FORMAT_IVECS)
        embr__put_le32(dst + 4 * j, (uint32_t)(int32_t)src[j]);
      else
        dst[j] = (unsigned char)src[j];
    }
    rc = embr__wfile_write(w, row, 4 + dim * esz);
  }
  free(row);
  return rc;
}

int embr__ivecs_write_int(embr__wfile *w, const int32_t *data, int64_t n, int64_t dim) {
  unsigned char hdr[4];
  embr__put_le32(hdr, (uint32_t)dim);
  int rc = 0;
  unsigned char *row = EMBR__HOST_LE ? NULL : malloc((size_t)dim * 4);
  if (!EMBR__HOST_LE && !row) return embr_error(EMBR_ENOMEM, "%s: out of memory", w->path);
  for (int64_t i = 0; i < n && !rc; i++) {
    const int32_t *src = data + i * dim;
    rc = embr__wfile_write(w, hdr, 4);
    if (rc) break;
    if (EMBR__HOST_LE) {
      rc = embr__wfile_write(w, src, (size_t)dim * 4);
    } else {
      for (int64_t j = 0; j < dim; j++) embr__put_le32(row + 4 * j, (uint32_t)src[j]);
      rc = embr__wfile_write(w, row, (size_t)dim * 4);
    }
  }
  free(row);
  return rc;
}

/* ---- public int32 entry points ---------------------------------------------------------------- */

embr_status embr_ivecs_read(const char *path, int32_t **data, int64_t *n, int64_t *dim) {
  if (!data || !n || !dim) return embr_error(EMBR_EINVAL, "embr_ivecs_read: NULL output");
  *data = NULL;
  *n = *dim = 0;
  embr__filemap fm;
  int rc = embr__filemap_open(&fm, path, EMBR__READ_ANY);
  if (rc) return rc;
  if (fm.len == 0)
    rc = embr_error(EMBR_EFORMAT, "%s: empty file", path);
  else
    rc = embr__ivecs_parse_int(fm.data, fm.len, path, data, n, dim);
  embr__filemap_close(&fm);
  return rc;
}

embr_status embr_ivecs_write(const char *path, const int32_t *data, int64_t n, int64_t dim) {
  if (!path || !*path) return embr_error(EMBR_EINVAL, "empty output file name");
  if (n < 1 || dim < 1 || dim > INT32_MAX || !data)
    return embr_error(EMBR_EINVAL, "%s: cannot write %lld x %lld int32 rows", path, (long long)n,
                      (long long)dim);
  embr__wfile w;
  int rc = embr__wfile_open(&w, path);
  if (rc) return rc;
  rc = embr__ivecs_write_int(&w, data, n, dim);
  if (rc) {
    embr__wfile_abort(&w);
    return rc;
  }
  return embr__wfile_commit(&w);
}

/* Search results are int64 ids but .ivecs holds int32: an id that does not fit is refused, never
 * wrapped or replaced (one policy for every front end that writes ids). */
int embr_ids_write_ivecs(const char *path, const int64_t *ids, int64_t n, int64_t k) {
  if (!path || !*path) return embr_error(EMBR_EINVAL, "empty output file name");
  if (n < 1 || k < 1 || k > INT32_MAX || !ids || (uint64_t)n > SIZE_MAX / sizeof(int32_t) / (uint64_t)k)
    return embr_error(EMBR_EINVAL, "%s: cannot write %lld x %lld ids", path, (long long)n, (long long)k);
  for (int64_t i = 0; i < n * k; i++)
    if (ids[i] > INT32_MAX || ids[i] < -1)
      return embr_error(EMBR_EUNSUPPORTED,
                        "%s: row %lld: id %lld does not fit in .ivecs (int32); print the results as text or JSON instead",
                        path, (long long)(i / k), (long long)ids[i]);
  int32_t *v = embr_alloc(sizeof(int32_t) * (size_t)(n * k));
  if (!v) return embr_error(EMBR_ENOMEM, "%s: out of memory for %lld x %lld ids", path, (long long)n, (long long)k);
  for (int64_t i = 0; i < n * k; i++) v[i] = (int32_t)ids[i];
  int rc = embr_ivecs_write(path, v, n, k);
  embr_free(v);
  return rc;
}

/* NumPy .npy: versions 1.0, 2.0 and 3.0 read (float32, float64 and float16, either byte order,
 * C or Fortran order, 1-D or 2-D, zero rows allowed); version 1.0 float32 written. Layout in
 * docs/formats.md. Other tools write what numpy gives them -- np.save(path, A.T) is Fortran order,
 * arrays from network protocols or old Macs are big-endian -- so those are converted on read. */
#include "formats/formats_internal.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_NDIM = 32 };

/* What the header dictionary says. */
typedef struct {
  char descr[16];
  int have_descr, have_fortran, have_shape;
  int fortran;
  int ndim;
  int64_t shape[MAX_NDIM];
} npy_header;

/* A cursor over the header text; `name` for messages. */
typedef struct {
  const char *p, *end;
  const char *name;
} hcur;

static void skip_ws(hcur *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

static int expect(hcur *c, char ch) {
  skip_ws(c);
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return 0;
  }
  return embr_error(EMBR_EFORMAT, "%s: malformed .npy header: expected '%c'", c->name, ch);
}

/* A Python string literal without escapes, copied into buf (cap bytes incl. NUL). */
static int parse_str(hcur *c, char *buf, size_t cap) {
  skip_ws(c);
  if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
    return embr_error(EMBR_EFORMAT, "%s: malformed .npy header: expected a quoted string", c->name);
  char q = *c->p++;
  const char *s = c->p;
  while (c->p < c->end && *c->p != q && *c->p != '\\') c->p++;
  if (c->p >= c->end || *c->p != q)
    return embr_error(EMBR_EFORMAT, "%s: malformed .npy header: unterminated string", c->name);
  size_t n = (size_t)(c->p - s);
  c->p++;
  if (n + 1 > cap) {
    char qb[40];
    return embr_error(EMBR_EFORMAT, "%s: malformed .npy header: unexpected '%s'", c->name,
                      embr__quote(qb, s, n));
  }
  memcpy(buf, s, n);
  buf[n] = '\0';
  return 0;
}

static int parse_bool(hcur *c, int *out) {
  skip_ws(c);
  size_t left = (size_t)(c->end - c->p);
  if (left >= 4 && memcmp(c->p, "True", 4) == 0) {
    c->p += 4;
    *out = 1;
    return 0;
  }
  if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
    c->p += 5;
    *out = 0;
    return 0;
  }
  return embr_error(EMBR_EFORMAT, "%s: malformed .npy header: fortran_order is not True or False",
                    c->name);
}

/* A tuple of non-negative integers: "()", "(5,)", "(3, 4)"; Python 2 wrote "3L". */
static int parse_shape(hcur *c, npy_header *h) {
  int rc = expect(c, '(');
  if (rc) return rc;
  h->ndim = 0;
  for (;;) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ')') break;
    const char *s = c->p;
    while (c->p < c->end && (unsigned)(*c->p - '0') <= 9) c->p++;
    int64_t v;
    if (embr__parse_count(s, (size_t)(c->p - s), INT64_MAX, &v) != 0)
      return embr_error(EMBR_EFORMAT, "%s: malformed .npy header: bad shape", c->name);
    if (c->p < c->end && *c->p == 'L') c->p++;
    if (h->ndim == MAX_NDIM)
      return embr_error(EMBR_EUNSUPPORTED, "%s: array has more than %d dimensions", c->name,
                        MAX_NDIM);
    h->shape[h->ndim++] = v;
    skip_ws(c);
    if (c->p < c->end && *c->p == ',') {
      c->p++;
      continue;
    }
    if (c->p < c->end && *c->p == ')') break;
    return embr_error(EMBR_EFORMAT, "%s: malformed .npy header: bad shape", c->name);
  }
  c->p++; /* ')' */
  return 0;
}

static int parse_entry(hcur *c, npy_header *h) {
  char key[32];
  int rc = parse_str(c, key, sizeof key);
  if (rc) return rc;
  if ((rc = expect(c, ':'))) return rc;
  if (strcmp(key, "descr") == 0 && !h->have_descr) {
    h->have_descr = 1;
    skip_ws(c);
    if (c->p < c->end && *c->p == '[')
      return embr_error(EMBR_EUNSUPPORTED,
                        "%s: structured dtype (record array) is not supported; need float32 "
                        "'<f4', float64 '<f8' or float16 '<f2'",
                        c->name);
    return parse_str(c, h->descr, sizeof h->descr);
  }
  if (strcmp(key, "fortran_order") == 0 && !h->have_fortran) {
    h->have_fortran = 1;
    return parse_bool(c, &h->fortran);
  }
  if (strcmp(key, "shape") == 0 && !h->have_shape) {
    h->have_shape = 1;
    return parse_shape(c, h);
  }
  char qb[40];
  return embr_error(EMBR_EFORMAT, "%s: malformed .npy header: unexpected or repeated key '%s'",
                    c->name, embr__quote(qb, key, strlen(key)));
}

/* The header is a Python dict literal: keys in any order, optional trailing comma, then padding
 * (spaces, a final newline). */
static int parse_dict(const char *s, size_t n, const char *name, npy_header *h) {
  hcur c = {s, s + n, name};
  memset(h, 0, sizeof *h);
  int rc = expect(&c, '{');
  if (rc) return rc;
  for (;;) {
    skip_ws(&c);
    if (c.p < c.end && *c.p == '}') break;
    if ((rc = parse_entry(&c, h))) return rc;
    skip_ws(&c);
    if (c.p < c.end && *c.p == ',') {
      c.p++;
      continue;
    }
    if (c.p < c.end && *c.p == '}') break;
    return embr_error(EMBR_EFORMAT, "%s: malformed .npy header: expected ',' or '}'", name);
  }
  c.p++;
  skip_ws(&c);
  if (c.p != c.end)
    return embr_error(EMBR_EFORMAT, "%s: malformed .npy header: text after the dictionary", name);
  if (!h->have_descr || !h->have_fortran || !h->have_shape)
    return embr_error(EMBR_EFORMAT, "%s: malformed .npy header: missing '%s'", name,
                      !h->have_descr ? "descr" : !h->have_fortran ? "fortran_order" : "shape");
  return 0;
}

/* Item size and byte order (*big = 1 for '>') of the dtypes we convert, or an error explaining
 * the refusal. */
static int dtype_size(const char *name, const char *descr, size_t *size, int *big) {
  char qb[40];
  const char *q = embr__quote(qb, descr, strlen(descr)); /* the header is untrusted text */
  *big = descr[0] == '>';
  if ((descr[0] == '<' || descr[0] == '>') && descr[1] == 'f' && strchr("248", descr[2]) && descr[2] && !descr[3])
    *size = (size_t)(descr[2] - '0');
  else if (strchr(descr, 'O'))
    return embr_error(EMBR_EUNSUPPORTED, "%s: object arrays (pickled data) are not supported",
                      name);
  else
    return embr_error(EMBR_EUNSUPPORTED,
                      "%s: dtype '%s' is not supported; need float32 '<f4', float64 '<f8' or "
                      "float16 '<f2'",
                      name, q);
  return 0;
}

/* Rows and columns from the shape: (d,) is one row, (n, d) is n rows. */
static int shape_to_matrix(const char *name, const npy_header *h, int64_t *n, int64_t *dim) {
  if (h->ndim == 0)
    return embr_error(EMBR_EUNSUPPORTED, "%s: 0-dimensional array (a scalar); need 1-D or 2-D",
                      name);
  if (h->ndim > 2)
    return embr_error(EMBR_EUNSUPPORTED, "%s: %d-dimensional array; need 1-D or 2-D", name,
                      h->ndim);
  *n = h->ndim == 1 ? 1 : h->shape[0];
  *dim = h->shape[h->ndim - 1];
  /* (0, d) is a valid empty matrix (a filter that matched nothing); a row needs columns. */
  if (*dim == 0)
    return embr_error(EMBR_EFORMAT, "%s: rows of 0 columns (shape (%lld, 0)); need at least one column",
                      name, (long long)*n);
  return 0;
}

/* IEEE half to float, exactly: every half value (subnormals, inf, NaN) is a float32. */
static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {
      /* mant * 2^-24: shift the leading one into the implicit bit position. */
      uint32_t e = 113;
      while (!(mant & 0x400)) {
        mant <<= 1;
        e--;
      }
      bits = sign | (e << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13) | (mant ? 0x400000u : 0);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static int nonfinite_error(const char *name, int64_t i, int64_t j, double v) {
  return embr_error(EMBR_EVALUE, "%s: row %lld, column %lld is %s; values must be finite", name,
                    (long long)i, (long long)j, isnan(v) ? "NaN" : "Inf");
}

/* The isz-byte item at p as an unsigned integer, in the file's byte order. */
static uint64_t item_bits(const unsigned char *p, size_t isz, int big) {
  uint64_t u = 0;
  for (size_t b = 0; b < isz; b++) u |= (uint64_t)p[big ? isz - 1 - b : b] << (8 * b);
  return u;
}

/* The file's order of items: C order is row-major; Fortran order stores (n, dim) column by column,
 * so element (i, j) is item j * n + i. */
static size_t item_index(size_t k, int fortran, const embr_matrix *out) {
  if (!fortran) return k;
  size_t i = k / (size_t)out->dim, j = k % (size_t)out->dim;
  return j * (size_t)out->n + i;
}

/* Converts the data block into out, checking finiteness. */
static int convert(const unsigned char *d, size_t isz, int big, int fortran, const char *name, embr_matrix *out) {
  size_t count = (size_t)out->n * (size_t)out->dim;
  if (isz == 4 && !big && !fortran) {
    embr__copy_le_f32(out->data, d, count);
  } else if (isz == 4) {
    for (size_t k = 0; k < count; k++) {
      uint32_t u = (uint32_t)item_bits(d + 4 * item_index(k, fortran, out), 4, big);
      memcpy(&out->data[k], &u, sizeof u);
    }
  } else if (isz == 2) {
    for (size_t k = 0; k < count; k++)
      out->data[k] = half_to_float((uint16_t)item_bits(d + 2 * item_index(k, fortran, out), 2, big));
  } else {
    for (size_t k = 0; k < count; k++) {
      uint64_t u = item_bits(d + 8 * item_index(k, fortran, out), 8, big);
      double v;
      memcpy(&v, &u, sizeof v);
      if (!isfinite(v)) return nonfinite_error(name, (int64_t)(k / (size_t)out->dim),
                                               (int64_t)(k % (size_t)out->dim), v);
      /* Values that would round to infinity (from FLT_MAX + half an ulp) do not fit. */
      if (fabs(v) >= 0x1.ffffffp127)
        return embr_error(EMBR_EVALUE, "%s: row %lld, column %lld: %g is outside the float32 range",
                          name, (long long)(k / (size_t)out->dim),
                          (long long)(k % (size_t)out->dim), v);
      out->data[k] = (float)v;
    }
  }
  int64_t r, c;
  if (embr_matrix_find_nonfinite(out, &r, &c) == 0)
    return nonfinite_error(name, r, c, out->data[r * out->ld + c]);
  return 0;
}

static const char *dtype_label(size_t isz) {
  return isz == 4 ? "float32" : isz == 8 ? "float64" : "float16";
}

int embr__npy_parse(const unsigned char *p, size_t len, const char *name, embr_matrix *out) {
  static const unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (len < 6 || memcmp(p, magic, 6) != 0)
    return embr_error(EMBR_EFORMAT, "%s: not a .npy file (bad magic)", name);
  if (len < 8) return embr_error(EMBR_EFORMAT, "%s: truncated: no version after the magic", name);
  int major = p[6], minor = p[7];
  size_t hstart = major == 1 ? 10 : 12;
  if (major < 1 || major > 3)
    return embr_error(EMBR_EUNSUPPORTED, "%s: .npy format version %d.%d is not supported", name,
                      major, minor);
  if (len < hstart)
    return embr_error(EMBR_EFORMAT, "%s: truncated: header length field is incomplete", name);
  size_t hlen = major == 1 ? embr__le16(p + 8) : embr__le32(p + 8);
  if (hlen > len - hstart)
    return embr_error(EMBR_EFORMAT, "%s: truncated: header of %zu bytes, file has %zu after %zu",
                      name, hlen, len - hstart, hstart);
  npy_header h;
  int rc = parse_dict((const char *)p + hstart, hlen, name, &h);
  if (rc) return rc;
  size_t isz = 0;
  int64_t n = 0, dim = 0;
  int big = 0;
  if ((rc = dtype_size(name, h.descr, &isz, &big))) return rc;
  if ((rc = shape_to_matrix(name, &h, &n, &dim))) return rc;

  size_t off = hstart + hlen, have = len - off, need = 0;
  int overflow = (uint64_t)n > SIZE_MAX || (uint64_t)dim > SIZE_MAX ||
                 embr_size_mul((size_t)n, (size_t)dim, &need) || embr_size_mul(need, isz, &need);
  if (overflow || need > have) {
    if (overflow)
      return embr_error(EMBR_EFORMAT, "%s: truncated: header says %lld x %lld %s, file has %zu "
                        "bytes of data", name, (long long)n, (long long)dim, dtype_label(isz), have);
    return embr_error(EMBR_EFORMAT,
                      "%s: truncated: header says %lld x %lld %s (%zu bytes of data), file has %zu",
                      name, (long long)n, (long long)dim, dtype_label(isz), need, have);
  }
  if (need < have)
    return embr_error(EMBR_EFORMAT, "%s: %zu unexpected bytes after the %lld x %lld %s data", name,
                      have - need, (long long)n, (long long)dim, dtype_label(isz));
  if (n == 0) { /* an empty matrix: no data block, nothing to allocate */
    out->n = 0;
    out->dim = out->ld = dim;
    return 0;
  }
  if ((rc = embr__matrix_alloc_named(out, n, dim, name))) return rc;
  return convert(p + off, isz, big, h.fortran && h.ndim == 2, name, out);
}

/* ---- writing ---------------------------------------------------------------------------------- */

int embr__npy_write(embr__wfile *w, const embr_matrix *m) {
  /* numpy's own layout: v1.0, the dict, spaces, '\n', data starting at a multiple of 64. */
  char hdr[256];
  int k = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                   (long long)m->n, (long long)m->dim);
  if (k < 0 || (size_t)k + 1 > sizeof hdr - 64)
    return embr_error(EMBR_EINVAL, "%s: shape too large for a .npy header", w->path);
  size_t total = 10 + (size_t)k + 1;
  size_t padded = (total + 63) / 64 * 64;
  memset(hdr + k, ' ', padded - total);
  hdr[padded - 10 - 1] = '\n';
  size_t hlen = padded - 10;
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                           (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};
  int rc = embr__wfile_write(w, pre, sizeof pre);
  if (!rc) rc = embr__wfile_write(w, hdr, hlen);
  if (rc) return rc;
  size_t dim = (size_t)m->dim;
  if (EMBR__HOST_LE && m->ld == m->dim)
    return embr__wfile_write(w, m->data, (size_t)m->n * dim * sizeof(float));
  unsigned char *row = EMBR__HOST_LE ? NULL : malloc(dim * 4);
  if (!EMBR__HOST_LE && !row) return embr_error(EMBR_ENOMEM, "%s: out of memory", w->path);
  for (int64_t i = 0; i < m->n && !rc; i++) {
    const float *src = m->data + i * m->ld;
    if (EMBR__HOST_LE) {
      rc = embr__wfile_write(w, src, dim * sizeof(float));
    } else {
      for (size_t j = 0; j < dim; j++) embr__put_le32(row + 4 * j, embr__f32_bits(src[j]));
      rc = embr__wfile_write(w, row, dim * 4);
    }
  }
  free(row);
  return rc;
}

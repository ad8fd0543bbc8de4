/* Format names, detection, and the read/write entry points that dispatch to the per-format
 * parsers and writers; also the helpers those share (locale-independent number parsing). */
#include "formats/formats_internal.h"

#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- names ------------------------------------------------------------------------------------ */

const char *embr_format_name(embr_format f) {
  switch (f) {
    case EMBR_FORMAT_AUTO: return "auto";
    case EMBR_FORMAT_NPY: return "npy";
    case EMBR_FORMAT_FVECS: return "fvecs";
    case EMBR_FORMAT_IVECS: return "ivecs";
    case EMBR_FORMAT_BVECS: return "bvecs";
    case EMBR_FORMAT_W2V_TEXT: return "w2v-text";
    case EMBR_FORMAT_W2V_BIN: return "w2v-bin";
    case EMBR_FORMAT_GLOVE: return "glove";
    case EMBR_FORMAT_CSV: return "csv";
    case EMBR_FORMAT_TSV: return "tsv";
  }
  return "unknown";
}

static const struct {
  const char *name;
  embr_format fmt;
} format_names[] = {
    {"auto", EMBR_FORMAT_AUTO},         {"npy", EMBR_FORMAT_NPY},
    {"fvecs", EMBR_FORMAT_FVECS},       {"ivecs", EMBR_FORMAT_IVECS},
    {"bvecs", EMBR_FORMAT_BVECS},       {"w2v-text", EMBR_FORMAT_W2V_TEXT},
    {"word2vec-text", EMBR_FORMAT_W2V_TEXT}, {"text", EMBR_FORMAT_W2V_TEXT},
    {"w2v-bin", EMBR_FORMAT_W2V_BIN},   {"word2vec", EMBR_FORMAT_W2V_BIN},
    {"bin", EMBR_FORMAT_W2V_BIN},       {"glove", EMBR_FORMAT_GLOVE},
    {"csv", EMBR_FORMAT_CSV},           {"tsv", EMBR_FORMAT_TSV},
};

embr_status embr_format_parse(const char *name, embr_format *out) {
  if (!name || !out) return embr_error(EMBR_EINVAL, "format name is missing");
  for (size_t i = 0; i < sizeof format_names / sizeof format_names[0]; i++) {
    if (strcasecmp(name, format_names[i].name) == 0) {
      *out = format_names[i].fmt;
      return 0;
    }
  }
  return embr_error(EMBR_EINVAL,
                    "unknown format '%s' (expected npy, fvecs, ivecs, bvecs, w2v-text, w2v-bin, "
                    "glove, csv or tsv)",
                    name);
}

embr_format embr_format_from_extension(const char *path) {
  static const struct {
    const char *ext;
    embr_format fmt;
  } exts[] = {
      {"npy", EMBR_FORMAT_NPY},        {"fvecs", EMBR_FORMAT_FVECS}, {"ivecs", EMBR_FORMAT_IVECS},
      {"bvecs", EMBR_FORMAT_BVECS},    {"bin", EMBR_FORMAT_W2V_BIN}, {"txt", EMBR_FORMAT_W2V_TEXT},
      {"vec", EMBR_FORMAT_W2V_TEXT},   {"glove", EMBR_FORMAT_GLOVE}, {"csv", EMBR_FORMAT_CSV},
      {"tsv", EMBR_FORMAT_TSV},
  };
  if (!path) return EMBR_FORMAT_AUTO;
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  const char *dot = strrchr(base, '.');
  if (!dot || dot == base) return EMBR_FORMAT_AUTO; /* no extension, or a dot file */
  for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
    if (strcasecmp(dot + 1, exts[i].ext) == 0) return exts[i].fmt;
  return EMBR_FORMAT_AUTO;
}

/* ---- locale ------------------------------------------------------------------------------------
 * strtof and printf follow LC_NUMERIC; a program that set a locale with a decimal comma must still
 * read and write "0.5". The C locale is installed for the calling thread only, around each call. */
typedef struct {
  locale_t c, old;
} c_numeric;

static void c_numeric_enter(c_numeric *s) {
  s->c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
  s->old = s->c ? uselocale(s->c) : (locale_t)0;
}

static void c_numeric_leave(c_numeric *s) {
  if (s->c) {
    uselocale(s->old);
    freelocale(s->c);
  }
}

/* ---- reading ------------------------------------------------------------------------------------ */

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

static int has_npy_magic(const unsigned char *p, size_t len) {
  return len >= sizeof npy_magic && memcmp(p, npy_magic, sizeof npy_magic) == 0;
}

/* A zip archive (local file header or an empty archive's end record): what np.savez writes. */
static int is_zip(const unsigned char *p, size_t len) {
  return len >= 4 && p[0] == 'P' && p[1] == 'K' && ((p[2] == 3 && p[3] == 4) || (p[2] == 5 && p[3] == 6));
}

/* safetensors: an 8-byte little-endian header length, then a JSON object that fits the file. */
static int is_safetensors(const unsigned char *p, size_t len) {
  return len >= 10 && p[8] == '{' && embr__le64(p) >= 2 && embr__le64(p) <= len - 8 && p[9] == '"';
}

/* Files that are certainly not matrices get a message saying what they are and what to do. */
static int refuse_known_other(const unsigned char *p, size_t len, const char *name) {
  if (is_zip(p, len))
    return embr_error(EMBR_EUNSUPPORTED,
                      "%s: a zip archive (a NumPy .npz from np.savez?) is not supported; save each array "
                      "with np.save('name.npy', arr) and read the .npy",
                      name);
  if (is_safetensors(p, len))
    return embr_error(EMBR_EUNSUPPORTED,
                      "%s: a safetensors file (model weights), not a matrix file; use it with --model", name);
  return 0;
}

/* With AUTO the content decides first -- a magic number says more than a name, which users and
 * other tools pick freely (an .npy saved as data.bin) -- then the extension. */
embr_format embr_format_detect(const void *head, size_t len, const char *name) {
  const unsigned char *p = head;
  if (!p || is_zip(p, len) || is_safetensors(p, len)) return EMBR_FORMAT_AUTO;
  embr_format f = has_npy_magic(p, len) ? EMBR_FORMAT_NPY : embr_format_from_extension(name);
  /* .txt and .vec hold either: a header line of two integers is word2vec's. */
  if (f == EMBR_FORMAT_W2V_TEXT && !embr__w2v_has_header(p, len)) f = EMBR_FORMAT_GLOVE;
  return f;
}

/* Picks the concrete format for reading (embr_format_detect for AUTO). */
static int resolve_read_format(const unsigned char *p, size_t len, const char *name,
                               embr_format *fmt) {
  if (*fmt == EMBR_FORMAT_AUTO) {
    int rc = refuse_known_other(p, len, name);
    if (rc) return rc;
    *fmt = embr_format_detect(p, len, name);
    if (*fmt == EMBR_FORMAT_AUTO)
      return embr_error(EMBR_EINVAL,
                        "%s: cannot tell the format from the file name; name it explicitly "
                        "(npy, fvecs, ivecs, bvecs, w2v-text, w2v-bin, glove, csv, tsv)",
                        name);
  }
  if ((int)*fmt < (int)EMBR_FORMAT_NPY || (int)*fmt > (int)EMBR_FORMAT_TSV)
    return embr_error(EMBR_EINVAL, "%s: unknown format code %d", name, (int)*fmt);
  return 0;
}

static int is_gzip(const unsigned char *p, size_t len) {
  return len >= 3 && p[0] == 0x1f && p[1] == 0x8b && p[2] == 0x08;
}

static int parse_mem(const unsigned char *p, size_t len, const char *name, embr_format fmt,
                     embr_matrix *out) {
  int rc = resolve_read_format(p, len, name, &fmt);
  if (rc) return rc;
  /* A compressed download is a common mistake; a .vecs row header can start with these bytes
   * legitimately, so only the other formats get the friendly message. */
  if (is_gzip(p, len) && fmt != EMBR_FORMAT_FVECS && fmt != EMBR_FORMAT_IVECS &&
      fmt != EMBR_FORMAT_BVECS)
    return embr_error(EMBR_EUNSUPPORTED, "%s: file is gzip-compressed; decompress it first", name);
  c_numeric loc;
  c_numeric_enter(&loc);
  switch (fmt) {
    case EMBR_FORMAT_NPY: rc = embr__npy_parse(p, len, name, out); break;
    case EMBR_FORMAT_FVECS:
    case EMBR_FORMAT_IVECS:
    case EMBR_FORMAT_BVECS: rc = embr__vecs_parse(p, len, name, fmt, out); break;
    case EMBR_FORMAT_W2V_TEXT: rc = embr__w2v_text_parse(p, len, name, out); break;
    case EMBR_FORMAT_W2V_BIN: rc = embr__w2v_bin_parse(p, len, name, out); break;
    case EMBR_FORMAT_GLOVE: rc = embr__glove_parse(p, len, name, out); break;
    case EMBR_FORMAT_CSV: rc = embr__delimited_parse(p, len, name, ',', 0, out); break;
    case EMBR_FORMAT_TSV: /* a map with words, as `embr tsne` writes it, reads too */
      rc = embr__delimited_parse(p, len, name, '\t', embr__map_label_column(p, len, 0), out);
      break;
    default: rc = embr_error(EMBR_EINVAL, "%s: unknown format", name); break;
  }
  c_numeric_leave(&loc);
  if (rc) embr_matrix_free(out);
  return rc;
}

embr_status embr_matrix_read_mem(const void *buf, size_t len, const char *name, embr_format fmt,
                                 embr_matrix *out) {
  if (!out) return embr_error(EMBR_EINVAL, "embr_matrix_read_mem: output matrix is NULL");
  memset(out, 0, sizeof *out);
  if (!name) name = "<memory>";
  if (!buf && len) return embr_error(EMBR_EINVAL, "%s: buffer is NULL", name);
  if (len == 0) return embr_error(EMBR_EFORMAT, "%s: empty file", name);
  return parse_mem(buf, len, name, fmt, out);
}

int embr__read_path(const char *path, embr_format fmt, embr_matrix *out, embr__mem_reader read_mem) {
  if (!out) return embr_error(EMBR_EINVAL, "%s: output matrix is NULL", path ? path : "(null)");
  memset(out, 0, sizeof *out);
  embr__filemap fm;
  int rc = embr__filemap_open(&fm, path, EMBR__READ_ANY);
  if (rc) return rc;
  /* An empty file maps to no data: the reader then reports "empty file". */
  rc = read_mem(fm.data ? (const void *)fm.data : (const void *)"", fm.len, path, fmt, out);
  embr__filemap_close(&fm);
  return rc;
}

int embr_matrix_read(const char *path, embr_format fmt, embr_matrix *out) {
  return embr__read_path(path, fmt, out, embr_matrix_read_mem);
}

/* ---- writing ------------------------------------------------------------------------------------ */

static int check_matrix_for_write(const char *path, embr_format fmt, const embr_matrix *m) {
  if (!m) return embr_error(EMBR_EINVAL, "%s: matrix is NULL", path);
  /* Only .npy records a shape without rows; the other formats would be an empty file, which no
   * reader can tell from a truncated one. */
  if (m->n == 0 && fmt == EMBR_FORMAT_NPY && m->dim >= 1) return 0;
  if (m->n < 1)
    return embr_error(EMBR_EINVAL, "%s: the matrix has no rows; only .npy can hold an empty matrix (%s would be an empty file)",
                      path, embr_format_name(fmt));
  if (m->dim < 1 || m->ld < m->dim || !m->data)
    return embr_error(EMBR_EINVAL, "%s: matrix of %lld x %lld (ld %lld) is not valid", path,
                      (long long)m->n, (long long)m->dim, (long long)m->ld);
  int64_t r, c;
  /* Readers refuse NaN and Inf, so writing them would make a file embr cannot read back. */
  if (embr_matrix_find_nonfinite(m, &r, &c) == 0)
    return embr_error(EMBR_EVALUE, "%s: row %lld, column %lld is %s; values must be finite", path,
                      (long long)r, (long long)c, isnan(m->data[r * m->ld + c]) ? "NaN" : "Inf");
  return 0;
}

static int write_body(embr__wfile *w, embr_format fmt, const embr_matrix *m) {
  switch (fmt) {
    case EMBR_FORMAT_NPY: return embr__npy_write(w, m);
    case EMBR_FORMAT_FVECS:
    case EMBR_FORMAT_IVECS:
    case EMBR_FORMAT_BVECS: return embr__vecs_write(w, fmt, m);
    case EMBR_FORMAT_W2V_TEXT: return embr__w2v_text_write(w, m);
    case EMBR_FORMAT_W2V_BIN: return embr__w2v_bin_write(w, m);
    case EMBR_FORMAT_GLOVE: return embr__glove_write(w, m);
    case EMBR_FORMAT_CSV: return embr__delimited_write(w, ',', m);
    case EMBR_FORMAT_TSV: return embr__delimited_write(w, '\t', m);
    default: return embr_error(EMBR_EINVAL, "%s: unknown format", w->path);
  }
}

embr_status embr_matrix_write(const char *path, embr_format fmt, const embr_matrix *m) {
  if (!path || !*path) return embr_error(EMBR_EINVAL, "empty output file name");
  if (fmt == EMBR_FORMAT_AUTO) {
    fmt = embr_format_from_extension(path);
    if (fmt == EMBR_FORMAT_AUTO)
      return embr_error(EMBR_EINVAL,
                        "%s: cannot tell the format from the file name; name it explicitly", path);
  }
  if ((int)fmt < (int)EMBR_FORMAT_NPY || (int)fmt > (int)EMBR_FORMAT_TSV)
    return embr_error(EMBR_EINVAL, "%s: unknown format code %d", path, (int)fmt);
  int rc = check_matrix_for_write(path, fmt, m);
  if (rc) return rc;
  /* Everything that can be refused is refused before the temporary file exists. */
  if (fmt == EMBR_FORMAT_W2V_TEXT || fmt == EMBR_FORMAT_W2V_BIN || fmt == EMBR_FORMAT_GLOVE)
    rc = embr__labels_check(path, m);
  else if (fmt == EMBR_FORMAT_FVECS || fmt == EMBR_FORMAT_IVECS || fmt == EMBR_FORMAT_BVECS)
    rc = embr__vecs_check(path, fmt, m);
  if (rc) return rc;

  embr__wfile w;
  rc = embr__wfile_open(&w, path);
  if (rc) return rc;
  c_numeric loc;
  c_numeric_enter(&loc);
  rc = write_body(&w, fmt, m);
  c_numeric_leave(&loc);
  if (rc) {
    embr__wfile_abort(&w);
    return rc;
  }
  return embr__wfile_commit(&w);
}

/* ---- shared helpers -------------------------------------------------------------------------- */

int embr__matrix_alloc_named(embr_matrix *out, int64_t n, int64_t dim, const char *name) {
  int rc = embr_matrix_alloc(out, n, dim);
  if (rc)
    return embr_error(rc, "%s: cannot allocate a %lld x %lld matrix: %s", name, (long long)n,
                      (long long)dim, embr_strerror(rc));
  return 0;
}

const char *embr__quote(char *buf, const char *s, size_t n) {
  size_t k = n > 32 ? 32 : n, o = 0;
  for (size_t i = 0; i < k; i++) {
    unsigned char c = (unsigned char)s[i];
    buf[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
  }
  if (n > k) {
    memcpy(buf + o, "...", 3);
    o += 3;
  }
  buf[o] = '\0';
  return buf;
}

int embr__format_float(char *buf, float v) {
  /* 9 significant digits identify every float32 uniquely; %g drops trailing zeros. */
  return snprintf(buf, 24, "%.9g", (double)v);
}

int embr__parse_count(const char *s, size_t n, int64_t max, int64_t *out) {
  size_t i = 0;
  if (n > 0 && s[0] == '+') i = 1;
  if (i == n) return -1;
  int64_t v = 0;
  for (; i < n; i++) {
    unsigned d = (unsigned char)s[i] - (unsigned)'0';
    if (d > 9) return -1;
    if (v > (max - (int64_t)d) / 10) return -1;
    v = v * 10 + (int64_t)d;
  }
  *out = v;
  return 0;
}

/* Case-insensitive comparison of s[0..n) with a lowercase word. */
static int word_is(const char *s, size_t n, const char *word) {
  size_t k = strlen(word);
  if (n != k) return 0;
  for (size_t i = 0; i < n; i++)
    if ((char)(s[i] | 0x20) != word[i]) return 0;
  return 1;
}

static const double exact_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Clinger's fast path: mant <= 2^53 and 10^|e| <= 10^22 are exact doubles, so one IEEE division or
 * multiplication gives the correctly rounded double. Rounding that double again to float is exact
 * too unless the double lies exactly halfway between two floats (then the decimal may have been on
 * either side), or is outside the normal float range; those few cases go to strtof. */
static int fast_float(uint64_t mant, int64_t e10, float *out) {
  if (mant > (UINT64_C(1) << 53) || e10 < -22 || e10 > 22) return 0;
  double d = (double)mant;
  d = e10 < 0 ? d / exact_pow10[-e10] : d * exact_pow10[e10];
  if (d < FLT_MIN || d > FLT_MAX) return 0;
  uint64_t bits;
  memcpy(&bits, &d, sizeof bits);
  if ((bits & UINT64_C(0x1FFFFFFF)) == UINT64_C(0x10000000)) return 0;
  *out = (float)d;
  return 1;
}

/* strtof on a NUL-terminated copy; the caller has checked the syntax already. */
static int slow_float(const char *s, size_t n, float *out) {
  char buf[EMBR__NUM_MAX_LEN + 1];
  if (n > EMBR__NUM_MAX_LEN) return EMBR__NUM_SYNTAX;
  memcpy(buf, s, n);
  buf[n] = '\0';
  char *end;
  float f = strtof(buf, &end);
  if (end != buf + n) return EMBR__NUM_SYNTAX;
  if (!isfinite(f)) return EMBR__NUM_NONFINITE; /* overflow; underflow to 0/subnormal is fine */
  *out = f;
  return EMBR__NUM_OK;
}

int embr__parse_float(const char *s, size_t n, float *out) {
  size_t i = 0;
  int neg = 0;
  if (n == 0) return EMBR__NUM_SYNTAX;
  if (s[0] == '+' || s[0] == '-') {
    neg = s[0] == '-';
    i = 1;
  }
  if (i < n && ((s[i] | 0x20) == 'n' || (s[i] | 0x20) == 'i')) {
    const char *w = s + i;
    size_t k = n - i;
    return (word_is(w, k, "nan") || word_is(w, k, "inf") || word_is(w, k, "infinity"))
               ? EMBR__NUM_NONFINITE
               : EMBR__NUM_SYNTAX;
  }
  uint64_t mant = 0;
  int64_t e10 = 0;
  int sig = 0, digits = 0, inexact = 0;
  for (; i < n && (unsigned)(s[i] - '0') <= 9; i++) {
    int d = s[i] - '0';
    digits++;
    if (mant == 0 && d == 0) continue; /* leading zeros are not significant */
    if (sig < 19) {
      mant = mant * 10 + (uint64_t)d;
      sig++;
    } else {
      e10++;
      inexact |= d != 0;
    }
  }
  if (i < n && s[i] == '.') {
    for (i++; i < n && (unsigned)(s[i] - '0') <= 9; i++) {
      int d = s[i] - '0';
      digits++;
      if (mant == 0 && d == 0) {
        e10--;
        continue;
      }
      if (sig < 19) {
        mant = mant * 10 + (uint64_t)d;
        sig++;
        e10--;
      } else {
        inexact |= d != 0;
      }
    }
  }
  if (digits == 0) return EMBR__NUM_SYNTAX;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    int eneg = 0;
    int64_t ev = 0;
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-')) eneg = s[i++] == '-';
    if (i == n || (unsigned)(s[i] - '0') > 9) return EMBR__NUM_SYNTAX;
    for (; i < n && (unsigned)(s[i] - '0') <= 9; i++)
      if (ev < 100000) ev = ev * 10 + (s[i] - '0'); /* far beyond float range either way */
    e10 += eneg ? -ev : ev;
  }
  if (i != n) return EMBR__NUM_SYNTAX;
  float f;
  if (mant == 0) {
    f = 0.0f;
  } else if (inexact || !fast_float(mant, e10, &f)) {
    int rc = slow_float(s, n, &f);
    if (rc) return rc;
    *out = f; /* strtof saw the sign itself */
    return EMBR__NUM_OK;
  }
  *out = neg ? -f : f;
  return EMBR__NUM_OK;
}

int embr__write_text_rows(embr__wfile *w, const embr_matrix *m, int with_labels, char sep) {
  size_t longest = 0, cap;
  for (int64_t i = 0; with_labels && i < m->n; i++) {
    size_t k = strlen(m->labels[i]);
    if (k > longest) longest = k;
  }
  /* One row at a time: label, then at most 24 bytes per value and separator, then '\n'. */
  if (embr_size_muladd((size_t)m->dim, 25, longest + 2, &cap))
    return embr_error(EMBR_ENOMEM, "%s: row too long", w->path);
  char *buf = malloc(cap);
  if (!buf) return embr_error(EMBR_ENOMEM, "%s: out of memory", w->path);
  int rc = 0;
  for (int64_t i = 0; i < m->n && !rc; i++) {
    const float *r = m->data + i * m->ld;
    size_t o = 0;
    if (with_labels) {
      size_t k = strlen(m->labels[i]);
      memcpy(buf, m->labels[i], k);
      o = k;
    }
    for (int64_t j = 0; j < m->dim; j++) {
      if (with_labels || j > 0) buf[o++] = sep;
      o += (size_t)embr__format_float(buf + o, r[j]);
    }
    buf[o++] = '\n';
    rc = embr__wfile_write(w, buf, o);
  }
  free(buf);
  return rc;
}

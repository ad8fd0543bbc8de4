/* Matrix file formats: round trips, hand-written fixtures, and hostile inputs (truncations, bad
 * headers, non-finite values, giant sizes, mutated bytes). */
#include "embr/captions.h"
#include "embr/lines.h"
#include "embr/matrix.h"
#include "formats/formats_internal.h"
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <locale.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- scratch directory ------------------------------------------------------------------------ */

static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *p = malloc((size_t)n + 1);
  *len = fread(p, 1, (size_t)n, f);
  fclose(f);
  return p;
}

/* 1 when needle occurs in p[0..n). */
static int contains(const unsigned char *p, size_t n, const char *needle) {
  size_t k = strlen(needle);
  for (size_t i = 0; i + k <= n; i++)
    if (memcmp(p + i, needle, k) == 0) return 1;
  return 0;
}

/* ---- byte buffers for fixtures ----------------------------------------------------------------- */

typedef struct {
  unsigned char *p;
  size_t n, cap;
} bytes;

static void put(bytes *b, const void *p, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2 + 64;
    b->p = realloc(b->p, b->cap);
  }
  memcpy(b->p + b->n, p, n);
  b->n += n;
}
static void put_str(bytes *b, const char *s) { put(b, s, strlen(s)); }
static void put_i32(bytes *b, int32_t v) {
  unsigned char t[4];
  embr__put_le32(t, (uint32_t)v);
  put(b, t, 4);
}
static void put_f32(bytes *b, float v) { put_i32(b, (int32_t)embr__f32_bits(v)); }
static void put_f64(bytes *b, double v) {
  uint64_t u;
  memcpy(&u, &v, 8);
  put_i32(b, (int32_t)(uint32_t)u);
  put_i32(b, (int32_t)(uint32_t)(u >> 32));
}
static void put_u16(bytes *b, uint16_t v) {
  unsigned char t[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
  put(b, t, 2);
}

/* An .npy preamble: magic, version, header length, and the dict padded to `align` with '\n'. */
static void put_npy_header(bytes *b, int major, const char *dict, size_t align) {
  unsigned char magic[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)major, 0};
  put(b, magic, 8);
  size_t pre = major == 1 ? 10 : 12, hl = strlen(dict) + 1;
  while ((pre + hl) % align) hl++;
  if (major == 1)
    put_u16(b, (uint16_t)hl);
  else
    put_i32(b, (int32_t)hl);
  put_str(b, dict);
  for (size_t i = strlen(dict) + 1; i < hl; i++) put_str(b, " ");
  put_str(b, "\n");
}

/* ---- matrices ---------------------------------------------------------------------------------- */

/* Values that stress exact round trips: signed zeros, subnormals, extremes, short decimals. */
static const float tricky[] = {0.0f,        -0.0f,   1.0f,    -1.0f,     0.1f,         1e-45f,
                               -1.17549435e-38f,      FLT_MIN, FLT_MAX,   -FLT_MAX,     3.14159265f,
                               1e30f,       -2.5e-7f, 123456789.0f, 16777217.0f, 0.333333343f};

/* n x dim with leading dimension ld = dim + pad; row labels "w<i>" when `labels`. */
static void make_matrix(embr_matrix *m, int64_t n, int64_t dim, int64_t pad, int labels,
                        uint64_t seed) {
  memset(m, 0, sizeof *m);
  m->n = n;
  m->dim = dim;
  m->ld = dim + pad;
  m->data = embr_calloc((size_t)(n * m->ld), sizeof(float));
  embr_rng rng;
  embr_rng_seed(&rng, seed);
  for (int64_t i = 0; i < n; i++) {
    for (int64_t j = 0; j < dim; j++) {
      uint64_t r = embr_rng_below(&rng, 4);
      float v = r == 0 ? tricky[embr_rng_below(&rng, sizeof tricky / sizeof tricky[0])]
                       : (float)(embr_rng_normal(&rng) * (r == 1 ? 1e-3 : r == 2 ? 1.0 : 1e4));
      m->data[i * m->ld + j] = v;
    }
    for (int64_t j = dim; j < m->ld; j++) m->data[i * m->ld + j] = NAN; /* must never be read */
  }
  if (labels) {
    embr_matrix_alloc_labels(m);
    for (int64_t i = 0; i < n; i++) {
      char w[32];
      snprintf(w, sizeof w, i % 3 == 0 ? "w%lld" : i % 3 == 1 ? "\xc3\xa9t\xc3\xa9%lld" : "x_%lld.",
               (long long)i);
      m->labels[i] = embr_strdup(w);
    }
  }
}

/* Integer-valued matrix in [lo, hi]. */
static void make_int_matrix(embr_matrix *m, int64_t n, int64_t dim, int64_t lo, int64_t hi,
                            uint64_t seed) {
  make_matrix(m, n, dim, 1, 0, seed);
  embr_rng rng;
  embr_rng_seed(&rng, seed);
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < dim; j++)
      m->data[i * m->ld + j] = (float)(lo + (int64_t)embr_rng_below(&rng, (uint64_t)(hi - lo + 1)));
  m->data[0] = (float)lo;
  m->data[1] = (float)hi;
}

/* Bitwise equality of values (so -0 and 0 differ) and equality of labels. */
static int same_matrix(const embr_matrix *a, const embr_matrix *b, int check_labels) {
  if (a->n != b->n || a->dim != b->dim) return 0;
  for (int64_t i = 0; i < a->n; i++)
    if (memcmp(a->data + i * a->ld, b->data + i * b->ld, (size_t)a->dim * sizeof(float)) != 0)
      return 0;
  if (check_labels) {
    if (!a->labels || !b->labels) return 0;
    for (int64_t i = 0; i < a->n; i++)
      if (strcmp(a->labels[i], b->labels[i]) != 0) return 0;
  }
  return 1;
}

/* The last error starts with `name` and contains `needle`. */
static int msg_ok(const char *name, const char *needle) {
  const char *m = embr_last_error();
  return strncmp(m, name, strlen(name)) == 0 && strstr(m, needle) != NULL && !strchr(m, '\n');
}

#define CHECK_ERR(expr, status, name, needle)                                             \
  do {                                                                                    \
    int th_rc = (expr);                                                                   \
    CHECK_MSG(th_rc == (status), "%s -> %d (%s), expected %d; message: %s", #expr, th_rc, \
              embr_strerror(th_rc), (int)(status), embr_last_error());                    \
    CHECK_MSG(msg_ok(name, needle), "message '%s' lacks '%s' or '%s'", embr_last_error(), \
              name, needle);                                                              \
  } while (0)

static int read_buf(const bytes *b, const char *name, embr_format fmt, embr_matrix *m) {
  return embr_matrix_read_mem(b->p, b->n, name, fmt, m);
}

/* ---- names and numbers ------------------------------------------------------------------------- */

static void test_format_names(void) {
  for (int f = EMBR_FORMAT_AUTO; f <= EMBR_FORMAT_TSV; f++) {
    embr_format g;
    CHECK_EQ_INT(embr_format_parse(embr_format_name((embr_format)f), &g), 0);
    CHECK_EQ_INT(g, f);
  }
  embr_format g;
  CHECK_EQ_INT(embr_format_parse("word2vec", &g), 0);
  CHECK_EQ_INT(g, EMBR_FORMAT_W2V_BIN);
  CHECK_EQ_INT(embr_format_parse("TEXT", &g), 0);
  CHECK_EQ_INT(g, EMBR_FORMAT_W2V_TEXT);
  CHECK_EQ_INT(embr_format_parse("parquet", &g), EMBR_EINVAL);
  CHECK(strstr(embr_last_error(), "parquet") != NULL);
  CHECK_EQ_INT(embr_format_from_extension("a/b/base.fvecs"), EMBR_FORMAT_FVECS);
  CHECK_EQ_INT(embr_format_from_extension("X.NPY"), EMBR_FORMAT_NPY);
  CHECK_EQ_INT(embr_format_from_extension("GoogleNews.bin"), EMBR_FORMAT_W2V_BIN);
  CHECK_EQ_INT(embr_format_from_extension("glove.6B.50d.txt"), EMBR_FORMAT_W2V_TEXT);
  CHECK_EQ_INT(embr_format_from_extension("cc.en.300.vec"), EMBR_FORMAT_W2V_TEXT);
  CHECK_EQ_INT(embr_format_from_extension("x.tsv"), EMBR_FORMAT_TSV);
  CHECK_EQ_INT(embr_format_from_extension("dir.npy/file"), EMBR_FORMAT_AUTO);
  CHECK_EQ_INT(embr_format_from_extension(".csv"), EMBR_FORMAT_AUTO);
  CHECK_EQ_INT(embr_format_from_extension("noext"), EMBR_FORMAT_AUTO);
  /* Detection: content first, then the name. */
  CHECK_EQ_INT(embr_format_detect("\x93NUMPY\x01\x00", 8, "v.fvecs"), EMBR_FORMAT_NPY);
  CHECK_EQ_INT(embr_format_detect("1,2\n", 4, "v.fvecs"), EMBR_FORMAT_FVECS);
  CHECK_EQ_INT(embr_format_detect("3 2\na 1 2\n", 10, "v.txt"), EMBR_FORMAT_W2V_TEXT);
  CHECK_EQ_INT(embr_format_detect("a 1 2\n", 6, "v.txt"), EMBR_FORMAT_GLOVE);
  CHECK_EQ_INT(embr_format_detect("PK\x03\x04", 4, "a.npy"), EMBR_FORMAT_AUTO);
  CHECK_EQ_INT(embr_format_detect("1,2\n", 4, "noext"), EMBR_FORMAT_AUTO);
}

static int pf(const char *s, float *v) { return embr__parse_float(s, strlen(s), v); }

static void test_parse_float(void) {
  float v;
  CHECK(pf("1", &v) == 0 && v == 1.0f);
  CHECK(pf("-0", &v) == 0 && v == 0.0f && signbit(v));
  CHECK(pf("0.1", &v) == 0 && v == 0.1f);
  CHECK(pf(".5", &v) == 0 && v == 0.5f);
  CHECK(pf("5.", &v) == 0 && v == 5.0f);
  CHECK(pf("+2.5E+2", &v) == 0 && v == 250.0f);
  CHECK(pf("1e-45", &v) == 0 && v == 1e-45f);
  CHECK(pf("1e-50", &v) == 0 && v == 0.0f);
  CHECK(pf("3.40282347e+38", &v) == 0 && v == FLT_MAX);
  CHECK(pf("3.4028235e38", &v) == 0 && v == FLT_MAX);
  CHECK_EQ_INT(pf("3.4028236e38", &v), EMBR__NUM_NONFINITE); /* past FLT_MAX + half an ulp */
  CHECK(pf("0.000000000000000000000000000000000000000000000000000001e54", &v) == 0 && v == 1.0f);
  CHECK(pf("12345678901234567890123", &v) == 0 && v == 12345678901234567890123.0f);
  CHECK_EQ_INT(pf("3.5e38", &v), EMBR__NUM_NONFINITE);
  CHECK_EQ_INT(pf("1e999999999999", &v), EMBR__NUM_NONFINITE);
  CHECK_EQ_INT(pf("nan", &v), EMBR__NUM_NONFINITE);
  CHECK_EQ_INT(pf("-Inf", &v), EMBR__NUM_NONFINITE);
  CHECK_EQ_INT(pf("INFINITY", &v), EMBR__NUM_NONFINITE);
  const char *bad[] = {"", "-", "+", ".", "e5", "1e", "1e+", "--1", "1.2.3", "0x10", "1,5",
                       " 1", "1 ", "nanx", "in", "1f", "\xff"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_MSG(pf(bad[i], &v) == EMBR__NUM_SYNTAX, "'%s' accepted", bad[i]);
  /* A number longer than the limit that needs the slow path is refused, not truncated. */
  char longnum[100];
  memset(longnum, '1', sizeof longnum - 1);
  longnum[sizeof longnum - 1] = '\0';
  CHECK_EQ_INT(pf(longnum, &v), EMBR__NUM_SYNTAX);

  /* Against strtof: every float printed with %.9g, and random short decimals (these exercise the
   * fast path's halfway-case detection). */
  embr_rng rng;
  embr_rng_seed(&rng, 7);
  char buf[64];
  int mismatches = 0;
  for (int k = 0; k < 200000; k++) {
    if (k & 1) {
      uint32_t bits = (uint32_t)embr_rng_next(&rng);
      float f;
      memcpy(&f, &bits, 4);
      if (!isfinite(f)) continue;
      snprintf(buf, sizeof buf, "%.9g", (double)f);
    } else {
      snprintf(buf, sizeof buf, "%llu.%llue%d", (unsigned long long)embr_rng_below(&rng, 100000000),
               (unsigned long long)embr_rng_below(&rng, 1000000000),
               (int)embr_rng_below(&rng, 60) - 40);
    }
    float want = strtof(buf, NULL), got = -1;
    int rc = pf(buf, &got);
    if (isinf(want)) {
      if (rc != EMBR__NUM_NONFINITE) mismatches++;
    } else if (rc != 0 || embr__f32_bits(got) != embr__f32_bits(want)) {
      if (mismatches++ < 5) fprintf(stderr, "  '%s': got %.9g want %.9g\n", buf, got, want);
    }
  }
  CHECK_EQ_INT(mismatches, 0);
  /* Exactly halfway between two floats (ties go to even), and a hair either side. */
  CHECK(pf("16777217", &v) == 0 && v == 16777216.0f);
  CHECK(pf("16777219", &v) == 0 && v == 16777220.0f);
  CHECK(pf("16777217.00000001", &v) == 0 && v == 16777218.0f);
  CHECK(pf("-16777216.99999999", &v) == 0 && v == -16777216.0f);
  CHECK(pf("1.000000059604644775390625", &v) == 0 && v == 1.0f);
  CHECK(pf("1.000000059604644775390626", &v) == 0 && v == nextafterf(1.0f, 2.0f));
  CHECK(pf("1.000000178813934326171875", &v) == 0 && v == 1.0f + 2 * FLT_EPSILON);
}

/* ---- round trips ------------------------------------------------------------------------------- */

static void roundtrip(embr_format fmt, const char *file, const embr_matrix *m, int labels) {
  const char *path = th_path(file);
  int rc = embr_matrix_write(path, fmt, m);
  CHECK_MSG(rc == 0, "write %s: %s", file, embr_last_error());
  embr_matrix r = EMBR_MATRIX_INIT;
  rc = embr_matrix_read(path, fmt, &r);
  CHECK_MSG(rc == 0, "read %s: %s", file, embr_last_error());
  CHECK_MSG(same_matrix(m, &r, labels), "%s differs after a round trip", file);
  embr_matrix_free(&r);
  /* The same through AUTO (extension, and content for .txt). */
  rc = embr_matrix_read(path, EMBR_FORMAT_AUTO, &r);
  CHECK_MSG(rc == 0, "read %s (auto): %s", file, embr_last_error());
  CHECK_MSG(same_matrix(m, &r, labels), "%s differs after an auto round trip", file);
  embr_matrix_free(&r);
}

static void test_roundtrip_float_formats(void) {
  embr_matrix m;
  make_matrix(&m, 37, 13, 3, 1, 1);
  roundtrip(EMBR_FORMAT_NPY, "m.npy", &m, 0);
  roundtrip(EMBR_FORMAT_FVECS, "m.fvecs", &m, 0);
  roundtrip(EMBR_FORMAT_W2V_BIN, "m.bin", &m, 1);
  roundtrip(EMBR_FORMAT_W2V_TEXT, "m.txt", &m, 1);
  roundtrip(EMBR_FORMAT_W2V_TEXT, "m.vec", &m, 1);
  roundtrip(EMBR_FORMAT_GLOVE, "m.glove", &m, 1);
  roundtrip(EMBR_FORMAT_CSV, "m.csv", &m, 0);
  roundtrip(EMBR_FORMAT_TSV, "m.tsv", &m, 0);
  /* GloVe written as .txt is recognised by content. */
  const char *path = th_path("g.txt");
  CHECK_EQ_INT(embr_matrix_write(path, EMBR_FORMAT_GLOVE, &m), 0);
  embr_matrix r = EMBR_MATRIX_INIT;
  CHECK_EQ_INT(embr_matrix_read(path, EMBR_FORMAT_AUTO, &r), 0);
  CHECK(same_matrix(&m, &r, 1));
  embr_matrix_free(&r);
  embr_matrix_free(&m);
  /* One row, one column. */
  make_matrix(&m, 1, 1, 0, 1, 2);
  roundtrip(EMBR_FORMAT_NPY, "one.npy", &m, 0);
  roundtrip(EMBR_FORMAT_FVECS, "one.fvecs", &m, 0);
  roundtrip(EMBR_FORMAT_W2V_BIN, "one.bin", &m, 1);
  roundtrip(EMBR_FORMAT_W2V_TEXT, "one.txt", &m, 1);
  roundtrip(EMBR_FORMAT_CSV, "one.csv", &m, 0);
  embr_matrix_free(&m);
}

static void test_roundtrip_int_formats(void) {
  embr_matrix m;
  make_int_matrix(&m, 21, 9, -16777216, 16777216, 3);
  roundtrip(EMBR_FORMAT_IVECS, "m.ivecs", &m, 0);
  embr_matrix_free(&m);
  make_int_matrix(&m, 21, 9, 0, 255, 4);
  roundtrip(EMBR_FORMAT_BVECS, "m.bvecs", &m, 0);
  embr_matrix_free(&m);

  int32_t ids[6] = {INT32_MIN, -1, 0, 1, INT32_MAX, 16777217};
  const char *path = th_path("ids.ivecs");
  CHECK_EQ_INT(embr_ivecs_write(path, ids, 2, 3), 0);
  int32_t *got = NULL;
  int64_t n = 0, dim = 0;
  CHECK_EQ_INT(embr_ivecs_read(path, &got, &n, &dim), 0);
  CHECK(n == 2 && dim == 3 && got && memcmp(got, ids, sizeof ids) == 0);
  embr_free(got);
  /* As floats, 16777217 and INT32_MIN are not representable: refused, naming the cell. */
  embr_matrix r = EMBR_MATRIX_INIT;
  CHECK_ERR(embr_matrix_read(path, EMBR_FORMAT_IVECS, &r), EMBR_EVALUE, path, "row 0, column 0");
  CHECK(r.data == NULL);
}

static void test_npy_writer_layout(void) {
  embr_matrix m;
  make_matrix(&m, 3, 5, 0, 0, 5);
  const char *path = th_path("layout.npy");
  CHECK_EQ_INT(embr_matrix_write(path, EMBR_FORMAT_NPY, &m), 0);
  size_t len = 0;
  unsigned char *p = slurp(path, &len);
  REQUIRE(p != NULL && len > 10);
  CHECK(memcmp(p, "\x93NUMPY\x01\x00", 8) == 0);
  size_t hl = (size_t)(p[8] | p[9] << 8);
  CHECK_EQ_INT((10 + hl) % 64, 0);
  CHECK_EQ_INT(p[10 + hl - 1], '\n');
  CHECK(contains(p + 10, hl, "'descr': '<f4'"));
  CHECK(contains(p + 10, hl, "'shape': (3, 5)"));
  CHECK(contains(p + 10, hl, "'fortran_order': False"));
  CHECK_EQ_INT(len, 10 + hl + 3 * 5 * 4);
  CHECK(memcmp(p + 10 + hl, m.data, 60) == 0);
  free(p);
  embr_matrix_free(&m);
}

/* ---- .npy fixtures ----------------------------------------------------------------------------- */

static void test_npy_float64(void) {
  bytes b = {0};
  put_npy_header(&b, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", 64);
  double vals[6] = {1.0, -0.5, 1e-40, 3.4e38, 0.1, -123456.789};
  for (int i = 0; i < 6; i++) put_f64(&b, vals[i]);
  embr_matrix m = EMBR_MATRIX_INIT;
  CHECK_EQ_INT(read_buf(&b, "f8.npy", EMBR_FORMAT_NPY, &m), 0);
  REQUIRE(m.n == 2 && m.dim == 3);
  for (int i = 0; i < 6; i++) CHECK(m.data[i] == (float)vals[i]);
  embr_matrix_free(&m);
  /* A float64 beyond the float32 range is refused, not turned into Inf. */
  b.n -= 8;
  put_f64(&b, -1e300);
  CHECK_ERR(read_buf(&b, "big.npy", EMBR_FORMAT_NPY, &m), EMBR_EVALUE, "big.npy",
            "row 1, column 2");
  b.n -= 8;
  put_f64(&b, NAN);
  CHECK_ERR(read_buf(&b, "nan.npy", EMBR_FORMAT_NPY, &m), EMBR_EVALUE, "nan.npy", "NaN");
  free(b.p);
}

static void test_npy_float16(void) {
  static const struct {
    uint16_t h;
    float f;
  } cases[] = {
      {0x3C00, 1.0f},         {0xC000, -2.0f},        {0x0001, 5.9604644775390625e-8f},
      {0x03FF, 6.097555160522461e-5f}, {0x0400, 6.103515625e-5f}, {0x7BFF, 65504.0f},
      {0x8000, -0.0f},        {0x3555, 0.333251953125f}, {0x8001, -5.9604644775390625e-8f},
      {0x0000, 0.0f},         {0x3BFF, 0.99951171875f}, {0x0200, 3.0517578125e-5f},
  };
  const int nc = (int)(sizeof cases / sizeof cases[0]);
  bytes b = {0};
  char dict[128];
  snprintf(dict, sizeof dict, "{'descr': '<f2', 'fortran_order': False, 'shape': (%d,), }", nc);
  put_npy_header(&b, 1, dict, 64);
  for (int i = 0; i < nc; i++) put_u16(&b, cases[i].h);
  embr_matrix m = EMBR_MATRIX_INIT;
  CHECK_EQ_INT(read_buf(&b, "f2.npy", EMBR_FORMAT_NPY, &m), 0);
  REQUIRE(m.n == 1 && m.dim == nc);
  for (int i = 0; i < nc; i++)
    CHECK_MSG(embr__f32_bits(m.data[i]) == embr__f32_bits(cases[i].f), "half %04x -> %.9g",
              cases[i].h, (double)m.data[i]);
  embr_matrix_free(&m);
  /* Inf and NaN halves are refused. */
  b.n -= 2;
  put_u16(&b, 0x7C00);
  CHECK_ERR(read_buf(&b, "inf.npy", EMBR_FORMAT_NPY, &m), EMBR_EVALUE, "inf.npy",
            "column 11 is Inf");
  b.n -= 2;
  put_u16(&b, 0xFE01);
  CHECK_ERR(read_buf(&b, "nan.npy", EMBR_FORMAT_NPY, &m), EMBR_EVALUE, "nan.npy", "NaN");
  free(b.p);
}

/* Header variants numpy and other writers produce. */
static void test_npy_header_variants(void) {
  static const struct {
    int major;
    const char *dict;
    int64_t n, dim;
  } ok[] = {
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 2, 3},
      {2, "{\"shape\":(2,3),\"fortran_order\":False,\"descr\":\"<f4\"}", 2, 3},
      {3, "{ 'fortran_order' : False , 'descr' : '<f4' , 'shape' : ( 6 , ) , }", 1, 6},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }", 2, 3},
      {1, "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 6), }", 1, 6},
      {1, "{'descr': '<f4', 'fortran_order': True, 'shape': (6,), }", 1, 6},
  };
  for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
    bytes b = {0};
    put_npy_header(&b, ok[k].major, ok[k].dict, k == 1 ? 1 : 64);
    for (int i = 0; i < 6; i++) put_f32(&b, (float)i + 0.25f);
    embr_matrix m = EMBR_MATRIX_INIT;
    int rc = read_buf(&b, "v.npy", EMBR_FORMAT_NPY, &m);
    CHECK_MSG(rc == 0, "variant %zu: %s", k, embr_last_error());
    CHECK(m.n == ok[k].n && m.dim == ok[k].dim);
    for (int i = 0; rc == 0 && i < 6; i++) CHECK(m.data[i] == (float)i + 0.25f);
    embr_matrix_free(&m);
    free(b.p);
  }
}

/* What other tools' np.save writes, laid out by hand: np.save(p, A.T) is Fortran order (columns
 * one after the other), '>f4'/'>f8'/'>f2' big-endian, np.zeros((0, 3)) has no data block. */
static void put_be(bytes *b, uint64_t u, int size) {
  for (int k = size - 1; k >= 0; k--) put(b, &(unsigned char){(unsigned char)(u >> (8 * k))}, 1);
}

static const float npy_a[2][3] = {{1, 2, 3}, {-4.5f, 5e-3f, 6e20f}};

/* b must read as npy_a; frees b. */
static void check_reads_as_a(bytes *b, const char *name) {
  embr_matrix m = EMBR_MATRIX_INIT;
  CHECK_MSG(read_buf(b, name, EMBR_FORMAT_AUTO, &m) == 0, "%s: %s", name, embr_last_error());
  CHECK(m.n == 2 && m.dim == 3 && m.data && memcmp(m.data, npy_a, sizeof npy_a) == 0);
  embr_matrix_free(&m);
  free(b->p);
}

static void test_npy_other_layouts(void) {
  const float (*a)[3] = npy_a;
  embr_matrix m = EMBR_MATRIX_INIT;
  /* Fortran order, little-endian float32: a stored column by column. */
  bytes b = {0};
  put_npy_header(&b, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 64);
  for (int j = 0; j < 3; j++)
    for (int i = 0; i < 2; i++) put_f32(&b, a[i][j]);
  check_reads_as_a(&b, "f.npy");
  /* Big-endian float32, C order. */
  b = (bytes){0};
  put_npy_header(&b, 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 64);
  for (int i = 0; i < 6; i++) put_be(&b, embr__f32_bits(a[i / 3][i % 3]), 4);
  check_reads_as_a(&b, "be.npy");
  /* Big-endian float64 in Fortran order (both at once), shape (3, 2) = a transposed. */
  b = (bytes){0};
  put_npy_header(&b, 2, "{'descr': '>f8', 'fortran_order': True, 'shape': (3, 2), }", 64);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++) { /* column i of a.T is row i of a */
      double v = a[i][j];
      uint64_t u;
      memcpy(&u, &v, 8);
      put_be(&b, u, 8);
    }
  CHECK_EQ_INT(read_buf(&b, "bef.npy", EMBR_FORMAT_AUTO, &m), 0);
  REQUIRE(m.n == 3 && m.dim == 2);
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 2; c++) CHECK(m.data[r * 2 + c] == a[c][r]);
  embr_matrix_free(&m);
  free(b.p);
  /* Big-endian float16: 1.0 is 0x3c00, -2.0 is 0xc000. */
  b = (bytes){0};
  put_npy_header(&b, 1, "{'descr': '>f2', 'fortran_order': False, 'shape': (2,), }", 64);
  put_be(&b, 0x3c00, 2);
  put_be(&b, 0xc000, 2);
  CHECK_EQ_INT(read_buf(&b, "h.npy", EMBR_FORMAT_AUTO, &m), 0);
  REQUIRE(m.n == 1 && m.dim == 2);
  CHECK(m.data[0] == 1.0f && m.data[1] == -2.0f);
  embr_matrix_free(&m);
  free(b.p);
  /* Zero rows: an empty matrix that keeps its width, written back only as .npy. */
  b = (bytes){0};
  put_npy_header(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", 64);
  CHECK_EQ_INT(read_buf(&b, "zero.npy", EMBR_FORMAT_AUTO, &m), 0);
  CHECK(m.n == 0 && m.dim == 3);
  const char *zp = th_path("zero.npy");
  CHECK_EQ_INT(embr_matrix_write(zp, EMBR_FORMAT_AUTO, &m), 0);
  embr_matrix back = EMBR_MATRIX_INIT;
  CHECK_EQ_INT(embr_matrix_read(zp, EMBR_FORMAT_AUTO, &back), 0);
  CHECK(back.n == 0 && back.dim == 3);
  const char *zf = th_path("zero.fvecs");
  CHECK_ERR(embr_matrix_write(zf, EMBR_FORMAT_AUTO, &m), EMBR_EINVAL, zf, "only .npy");
  CHECK(access(zf, F_OK) != 0);
  embr_matrix_free(&back);
  embr_matrix_free(&m);
  /* The magic beats the extension: an .npy named .fvecs is an .npy. */
  CHECK_EQ_INT(read_buf(&b, "zero.fvecs", EMBR_FORMAT_AUTO, &m), 0);
  CHECK(m.n == 0 && m.dim == 3);
  embr_matrix_free(&m);
  free(b.p);
  /* np.savez writes a zip archive; an empty one is just the end record. */
  CHECK_ERR(embr_matrix_read_mem("PK\x03\x04\x14\x00\x00\x00", 8, "arrays.npz", EMBR_FORMAT_AUTO, &m),
            EMBR_EUNSUPPORTED, "arrays.npz", "np.save(");
  CHECK_ERR(embr_matrix_read_mem("PK\x05\x06\x00\x00\x00\x00", 8, "e.bin", EMBR_FORMAT_AUTO, &m),
            EMBR_EUNSUPPORTED, "e.bin", "zip archive");
  /* Model weights given where vectors are expected. */
  CHECK_ERR(embr_matrix_read_mem("\x04\x00\x00\x00\x00\x00\x00\x00{\"a\"}", 12, "w.safetensors", EMBR_FORMAT_AUTO, &m),
            EMBR_EUNSUPPORTED, "w.safetensors", "safetensors");
}

/* Text files with CR-only line ends (old Mac, some spreadsheet exports) read like LF files,
 * with the same line numbers in messages. */
static void test_cr_line_ends(void) {
  embr_matrix m = EMBR_MATRIX_INIT;
  static const char csv[] = "a,b\r1,2\r3,4.5\r";
  CHECK_EQ_INT(embr_matrix_read_mem(csv, strlen(csv), "cr.csv", EMBR_FORMAT_AUTO, &m), 0);
  REQUIRE(m.n == 2 && m.dim == 2);
  CHECK(m.data[0] == 1 && m.data[1] == 2 && m.data[2] == 3 && m.data[3] == 4.5f);
  embr_matrix_free(&m);
  static const char mixed[] = "1\t2\r\n3\t4\r5\t6";
  CHECK_EQ_INT(embr_matrix_read_mem(mixed, strlen(mixed), "mix.tsv", EMBR_FORMAT_AUTO, &m), 0);
  CHECK(m.n == 3 && m.dim == 2 && m.data[5] == 6);
  embr_matrix_free(&m);
  static const char bad[] = "1,2\r3,x\r";
  CHECK_ERR(embr_matrix_read_mem(bad, strlen(bad), "bad.csv", EMBR_FORMAT_AUTO, &m), EMBR_EFORMAT, "bad.csv",
            "line 2, column 2");
  static const char w2v[] = "2 2\rcat 1 2\rdog 3 4\r";
  CHECK_EQ_INT(embr_matrix_read_mem(w2v, strlen(w2v), "cr.txt", EMBR_FORMAT_AUTO, &m), 0);
  REQUIRE(m.n == 2 && m.labels);
  CHECK(!strcmp(m.labels[1], "dog") && m.data[3] == 4);
  embr_matrix_free(&m);
  static const char glove[] = "cat 1 2\rdog 3 4";
  CHECK_EQ_INT(embr_matrix_read_mem(glove, strlen(glove), "cr.glove", EMBR_FORMAT_AUTO, &m), 0);
  CHECK(m.n == 2 && m.labels && !strcmp(m.labels[0], "cat"));
  embr_matrix_free(&m);
}

/* The same layouts as numpy and pandas themselves write them (scripts/make_formats_ref.py). */
static const char *numpy_ref(const char *name) {
  static char buf[4][1024];
  static int slot;
  char *p = buf[slot++ % 4];
  snprintf(p, sizeof buf[0], "%s/tests/ref/numpy/%s", EMBR_SOURCE_DIR, name);
  return p;
}

static void test_numpy_written_files(void) {
  static const char *as_a[] = {"fortran.npy", "big_endian_f4.npy", "big_endian_f8_fortran.npy", "pandas.csv",
                               "pandas_named.tsv"};
  embr_matrix m = EMBR_MATRIX_INIT;
  for (size_t k = 0; k < sizeof as_a / sizeof as_a[0]; k++) {
    int rc = embr_matrix_read(numpy_ref(as_a[k]), EMBR_FORMAT_AUTO, &m);
    CHECK_MSG(rc == 0, "%s: %s", as_a[k], embr_last_error());
    CHECK_MSG(rc || (m.n == 2 && m.dim == 3 && memcmp(m.data, npy_a, sizeof npy_a) == 0), "%s read differently", as_a[k]);
    embr_matrix_free(&m);
  }
  const float h[6] = {1, -2, 0.5f, 65504, 0, -0.25f};
  CHECK_EQ_INT(embr_matrix_read(numpy_ref("big_endian_f2.npy"), EMBR_FORMAT_AUTO, &m), 0);
  CHECK(m.n == 2 && m.dim == 3 && m.data && memcmp(m.data, h, sizeof h) == 0);
  embr_matrix_free(&m);
  CHECK_EQ_INT(embr_matrix_read(numpy_ref("zero_rows.npy"), EMBR_FORMAT_AUTO, &m), 0);
  CHECK(m.n == 0 && m.dim == 3 && m.data == NULL);
  const char *npz = numpy_ref("arrays.npz");
  CHECK_ERR(embr_matrix_read(npz, EMBR_FORMAT_AUTO, &m), EMBR_EUNSUPPORTED, npz, "np.save(");
}

static void test_npy_refusals(void) {
  static const struct {
    const char *dict;
    int status;
    const char *needle;
  } bad[] = {
      {"{'descr': '>i4', 'fortran_order': False, 'shape': (2, 3), }", EMBR_EUNSUPPORTED, "'>i4'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 0), }", EMBR_EFORMAT, "0 columns"},
      {"{'descr': '|O', 'fortran_order': False, 'shape': (2, 3), }", EMBR_EUNSUPPORTED, "object"},
      {"{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", EMBR_EUNSUPPORTED, "'<i4'"},
      /* found by fuzzing: header text in a message must not break it into lines */
      {"{'descr': '  \n\x01<f2', 'fortran_order': False, 'shape': (2, 3), }", EMBR_EUNSUPPORTED,
       "'  ?\?<f2'"}, /* ?\? avoids a trigraph */
      {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 3), }", EMBR_EUNSUPPORTED,
       "structured"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }", EMBR_EUNSUPPORTED,
       "3-dimensional"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (), }", EMBR_EUNSUPPORTED, "0-dim"},
      {"{'descr': '<f4', 'fortran_order': False, }", EMBR_EFORMAT, "missing 'shape'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", EMBR_EFORMAT, "'x'"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", EMBR_EFORMAT,
       "repeated"},
      {"{'descr': '<f4', 'fortran_order': maybe, 'shape': (2, 3), }", EMBR_EFORMAT, "True or False"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", EMBR_EFORMAT, "shape"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } junk", EMBR_EFORMAT, "after"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)", EMBR_EFORMAT, "header"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }", EMBR_EFORMAT, "truncated"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", EMBR_EFORMAT, "unexpected bytes"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 3), }",
       EMBR_EFORMAT, "shape"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4611686018427387904), }",
       EMBR_EFORMAT, "truncated"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1000000000), }", EMBR_EFORMAT,
       "1000000000 x 1000000000 float32"},
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    bytes b = {0};
    put_npy_header(&b, 1, bad[k].dict, 64);
    for (int i = 0; i < 6; i++) put_f32(&b, 1.0f);
    embr_matrix m = EMBR_MATRIX_INIT;
    CHECK_ERR(read_buf(&b, "bad.npy", EMBR_FORMAT_NPY, &m), bad[k].status, "bad.npy",
              bad[k].needle);
    CHECK(m.data == NULL && m.n == 0);
    free(b.p);
  }
  embr_matrix m = EMBR_MATRIX_INIT;
  CHECK_ERR(embr_matrix_read_mem("\x93NUMPX\x01\x00\x10\x00", 10, "m.npy", EMBR_FORMAT_NPY, &m),
            EMBR_EFORMAT, "m.npy", "magic");
  CHECK_ERR(embr_matrix_read_mem("\x93NUMPY\x04\x00\x10\x00\x00\x00", 12, "m.npy",
                                 EMBR_FORMAT_NPY, &m),
            EMBR_EUNSUPPORTED, "m.npy", "version 4.0");
  /* A v2 header length of 4 GiB in a 20-byte file. */
  CHECK_ERR(embr_matrix_read_mem("\x93NUMPY\x02\x00\xff\xff\xff\xff{}      ", 20, "m.npy",
                                 EMBR_FORMAT_NPY, &m),
            EMBR_EFORMAT, "m.npy", "truncated");
}

/* ---- .vecs fixtures ---------------------------------------------------------------------------- */

static void test_vecs_refusals(void) {
  embr_matrix m = EMBR_MATRIX_INIT;
  bytes b = {0};
  /* Row 1 has another dimension. */
  put_i32(&b, 3);
  for (int i = 0; i < 3; i++) put_f32(&b, 1.0f);
  put_i32(&b, 2);
  for (int i = 0; i < 2; i++) put_f32(&b, 1.0f);
  put_i32(&b, 3);
  put_f32(&b, 1.0f);
  CHECK_ERR(read_buf(&b, "base.fvecs", EMBR_FORMAT_FVECS, &m), EMBR_EFORMAT, "base.fvecs",
            "row 1 has dimension 2, expected 3");
  /* Same, the odd row being the (short) last one. */
  b.n = 0;
  put_i32(&b, 2);
  put_f32(&b, 1.0f);
  put_f32(&b, 2.0f);
  put_i32(&b, 5);
  put_f32(&b, 1.0f);
  CHECK_ERR(read_buf(&b, "base.fvecs", EMBR_FORMAT_FVECS, &m), EMBR_EFORMAT, "base.fvecs",
            "row 1 has dimension 5, expected 2");
  /* Truncated last row. */
  b.n = 0;
  put_i32(&b, 2);
  put_f32(&b, 1.0f);
  put_f32(&b, 2.0f);
  put_i32(&b, 2);
  put_f32(&b, 1.0f);
  CHECK_ERR(read_buf(&b, "base.fvecs", EMBR_FORMAT_FVECS, &m), EMBR_EFORMAT, "base.fvecs",
            "row 1 has 8 of its 12 bytes");
  /* NaN and Inf. */
  b.n = 0;
  for (int r = 0; r < 2; r++) {
    put_i32(&b, 3);
    put_f32(&b, 0.0f);
    put_f32(&b, 1.0f);
    put_f32(&b, r ? NAN : 2.0f);
  }
  CHECK_ERR(read_buf(&b, "q.fvecs", EMBR_FORMAT_FVECS, &m), EMBR_EVALUE, "q.fvecs",
            "row 1, column 2 is NaN");
  b.n -= 4;
  put_f32(&b, -INFINITY);
  CHECK_ERR(read_buf(&b, "q.fvecs", EMBR_FORMAT_FVECS, &m), EMBR_EVALUE, "q.fvecs",
            "row 1, column 2 is Inf");
  /* Zero, negative and absurd dimensions. */
  b.n = 0;
  put_i32(&b, 0);
  CHECK_ERR(read_buf(&b, "z.fvecs", EMBR_FORMAT_FVECS, &m), EMBR_EFORMAT, "z.fvecs",
            "dimension 0");
  b.n = 0;
  put_i32(&b, -4);
  put_i32(&b, 0);
  CHECK_ERR(read_buf(&b, "z.bvecs", EMBR_FORMAT_BVECS, &m), EMBR_EFORMAT, "z.bvecs",
            "dimension -4");
  b.n = 0;
  put_i32(&b, INT32_MAX);
  for (int i = 0; i < 4; i++) put_f32(&b, 1.0f);
  CHECK_ERR(read_buf(&b, "huge.fvecs", EMBR_FORMAT_FVECS, &m), EMBR_EFORMAT, "huge.fvecs",
            "truncated");
  CHECK_ERR(embr_matrix_read_mem("\x03\x00", 2, "short.ivecs", EMBR_FORMAT_IVECS, &m),
            EMBR_EFORMAT, "short.ivecs", "truncated");
  /* ivecs values beyond 2^24 cannot become floats exactly. */
  b.n = 0;
  put_i32(&b, 2);
  put_i32(&b, 16777216);
  put_i32(&b, -16777217);
  CHECK_ERR(read_buf(&b, "gt.ivecs", EMBR_FORMAT_IVECS, &m), EMBR_EVALUE, "gt.ivecs",
            "row 0, column 1: -16777217");
  CHECK(m.data == NULL);
  free(b.p);
}

/* ---- word2vec / GloVe fixtures ------------------------------------------------------------------ */

static void check_words(const embr_matrix *m, const char *const *words, const float *vals) {
  for (int64_t i = 0; i < m->n; i++) {
    CHECK_MSG(m->labels && m->labels[i] && strcmp(m->labels[i], words[i]) == 0, "row %lld: %s",
              (long long)i, m->labels && m->labels[i] ? m->labels[i] : "(null)");
    for (int64_t j = 0; j < m->dim; j++) CHECK(m->data[i * m->ld + j] == vals[i * m->dim + j]);
  }
}

static void test_w2v_binary_fixtures(void) {
  const char *words[3] = {"the", "\xc3\xa9t\xc3\xa9", "</s>"};
  const float vals[6] = {0.5f, -1.25f, 1e-3f, 2.0f, 0.0f, -0.0f};
  /* 0: word2vec.c ("\n" after each row); 1: no newlines (older gensim); 2: "\n" before each word;
   * 3: CRLF header and "\r\n" row ends. */
  for (int variant = 0; variant < 4; variant++) {
    bytes b = {0};
    put_str(&b, variant == 3 ? "3 2\r\n" : "3 2\n");
    for (int i = 0; i < 3; i++) {
      if (variant == 2) put_str(&b, "\n");
      put_str(&b, words[i]);
      put_str(&b, " ");
      put_f32(&b, vals[2 * i]);
      put_f32(&b, vals[2 * i + 1]);
      if (variant == 0) put_str(&b, "\n");
      if (variant == 3) put_str(&b, "\r\n");
    }
    embr_matrix m = EMBR_MATRIX_INIT;
    int rc = read_buf(&b, "v.bin", EMBR_FORMAT_W2V_BIN, &m);
    CHECK_MSG(rc == 0, "variant %d: %s", variant, embr_last_error());
    CHECK(m.n == 3 && m.dim == 2);
    if (rc == 0) check_words(&m, words, vals);
    embr_matrix_free(&m);

    /* Every proper prefix is refused (header promises 3 rows), except the one that only drops
     * trailing whitespace. */
    for (size_t k = 0; k < b.n; k++) {
      rc = embr_matrix_read_mem(b.p, k, "v.bin", EMBR_FORMAT_W2V_BIN, &m);
      int trailing_only = embr__all_space((const char *)b.p + k, b.n - k) && k > 0;
      if (trailing_only) {
        CHECK_MSG(rc == 0, "variant %d prefix %zu: %s", variant, k, embr_last_error());
      } else {
        CHECK_MSG(rc != 0, "variant %d prefix %zu accepted", variant, k);
        CHECK(msg_ok("v.bin", ""));
      }
      embr_matrix_free(&m);
    }
    free(b.p);
  }
  embr_matrix m = EMBR_MATRIX_INIT;
  CHECK_ERR(embr_matrix_read_mem("99999999999 300\nthe ", 20, "g.bin", EMBR_FORMAT_W2V_BIN, &m),
            EMBR_EFORMAT, "g.bin", "truncated");
  CHECK_ERR(embr_matrix_read_mem("2 2147483647\nthe ", 17, "g.bin", EMBR_FORMAT_W2V_BIN, &m),
            EMBR_EFORMAT, "g.bin", "truncated");
  CHECK_ERR(embr_matrix_read_mem("2 -3\nthe ", 9, "g.bin", EMBR_FORMAT_W2V_BIN, &m), EMBR_EFORMAT,
            "g.bin", "header");
  CHECK_ERR(embr_matrix_read_mem("0 3\n", 4, "g.bin", EMBR_FORMAT_W2V_BIN, &m), EMBR_EFORMAT,
            "g.bin", "no rows");
  CHECK_ERR(embr_matrix_read_mem("1 1\nab\ncd 1234\n", 15, "t.bin", EMBR_FORMAT_W2V_BIN, &m),
            EMBR_EFORMAT, "t.bin", "text file");
  /* Extra data after the announced rows. */
  CHECK_ERR(embr_matrix_read_mem("1 1\na \0\0\0\0b \0\0\0\0", 16, "x.bin", EMBR_FORMAT_W2V_BIN, &m),
            EMBR_EFORMAT, "x.bin", "after the 1 rows");
  /* NaN names the word. */
  bytes b = {0};
  put_str(&b, "1 2\nbad ");
  put_f32(&b, 1.0f);
  put_f32(&b, NAN);
  CHECK_ERR(read_buf(&b, "n.bin", EMBR_FORMAT_W2V_BIN, &m), EMBR_EVALUE, "n.bin",
            "row 0 ('bad'), column 1 is NaN");
  free(b.p);
}

static void test_text_word_fixtures(void) {
  const char *words[3] = {"the", ",", "\xc3\xa9t\xc3\xa9"};
  const float vals[6] = {0.418f, 0.24968f, -0.5f, 1e-3f, 2.0f, -0.0f};
  /* word2vec.c writes a space after every value; CRLF from Windows tools. */
  const char *w2v = "3 2\r\nthe 0.418 0.24968 \r\n, -0.5 0.001 \r\n\xc3\xa9t\xc3\xa9 2 -0 \r\n\r\n";
  const char *glove = "the 0.418 0.24968\n,\t-0.5 1e-3\n\xc3\xa9t\xc3\xa9 2.0 -0.0";
  embr_matrix m = EMBR_MATRIX_INIT;
  CHECK_EQ_INT(embr_matrix_read_mem(w2v, strlen(w2v), "a.txt", EMBR_FORMAT_W2V_TEXT, &m), 0);
  CHECK(m.n == 3 && m.dim == 2);
  if (m.n == 3) check_words(&m, words, vals);
  embr_matrix_free(&m);
  CHECK_EQ_INT(embr_matrix_read_mem(w2v, strlen(w2v), "a.txt", EMBR_FORMAT_AUTO, &m), 0);
  CHECK(m.n == 3 && m.dim == 2 && m.labels);
  embr_matrix_free(&m);
  CHECK_EQ_INT(embr_matrix_read_mem(glove, strlen(glove), "g.glove", EMBR_FORMAT_GLOVE, &m), 0);
  CHECK(m.n == 3 && m.dim == 2);
  if (m.n == 3) check_words(&m, words, vals);
  embr_matrix_free(&m);
  /* .txt without a header is GloVe. */
  CHECK_EQ_INT(embr_matrix_read_mem(glove, strlen(glove), "g.txt", EMBR_FORMAT_AUTO, &m), 0);
  CHECK(m.n == 3 && m.dim == 2);
  embr_matrix_free(&m);

  /* word2vec text: every prefix that drops part of a row before the last is refused; prefixes
   * that cut into the last line may parse (a shorter number), and must then have 3 rows. */
  size_t last_line = (size_t)(strstr(w2v, "\xc3\xa9t") - w2v);
  for (size_t k = 0; k < strlen(w2v); k++) {
    int rc = embr_matrix_read_mem(w2v, k, "p.txt", EMBR_FORMAT_W2V_TEXT, &m);
    if (k <= last_line + 5) CHECK_MSG(rc != 0, "prefix %zu accepted", k);
    if (rc == 0) CHECK(m.n == 3 && m.dim == 2);
    else CHECK(msg_ok("p.txt", ""));
    embr_matrix_free(&m);
  }
  /* GloVe: any prefix is either refused or a valid smaller file. */
  for (size_t k = 0; k < strlen(glove); k++) {
    int rc = embr_matrix_read_mem(glove, k, "p.glove", EMBR_FORMAT_GLOVE, &m);
    if (rc == 0) CHECK(m.n >= 1 && m.n <= 3 && m.labels && m.labels[m.n - 1]);
    else CHECK(msg_ok("p.glove", ""));
    embr_matrix_free(&m);
  }

  static const struct {
    embr_format fmt;
    const char *text;
    int status;
    const char *needle;
  } bad[] = {
      {EMBR_FORMAT_W2V_TEXT, "2 2\na 1 2\n", EMBR_EFORMAT, "truncated: header says 2 rows"},
      {EMBR_FORMAT_W2V_TEXT, "2 2\na 1 2\n\n\n\n\n\n\n\n", EMBR_EFORMAT, "file has 1"},
      {EMBR_FORMAT_W2V_TEXT, "1 2\na 1 2\nb 3 4\n", EMBR_EFORMAT, "line 3: more rows"},
      {EMBR_FORMAT_W2V_TEXT, "2 2\na 1 2\nb 3333333\n", EMBR_EFORMAT, "line 3 has 1 values, expected 2"},
      {EMBR_FORMAT_W2V_TEXT, "2 2\na 1 2\nb 3 4 5 6\n", EMBR_EFORMAT, "line 3 has 4 values"},
      {EMBR_FORMAT_W2V_TEXT, "2 2\na 1 2\n\nb 3 4\n", EMBR_EFORMAT, "line 3 is empty"},
      {EMBR_FORMAT_W2V_TEXT, "1 2\na 1 x\n", EMBR_EFORMAT, "line 2, value 2: 'x' is not a number"},
      {EMBR_FORMAT_W2V_TEXT, "2 2\na 1 2\nb nan 1\n", EMBR_EVALUE, "line 3 (row 1), column 0"},
      {EMBR_FORMAT_W2V_TEXT, "1 1\na -Infinity\n", EMBR_EVALUE, "row 0"},
      {EMBR_FORMAT_W2V_TEXT, "1 1\na 1e39\n", EMBR_EVALUE, "'1e39'"},
      {EMBR_FORMAT_W2V_TEXT, "a 1 2\n", EMBR_EFORMAT, "not a word2vec header"},
      {EMBR_FORMAT_W2V_TEXT, "1000000000 1000000\na 1\n", EMBR_EFORMAT, "truncated"},
      {EMBR_FORMAT_W2V_TEXT, "1 99999999999\na 1\n", EMBR_EFORMAT, "dimension 99999999999 is too large"},
      {EMBR_FORMAT_W2V_TEXT, "-3 2\na 1 2\n", EMBR_EFORMAT, "row count '-3'"},
      {EMBR_FORMAT_W2V_TEXT, "3 2.5\na 1 2\n", EMBR_EFORMAT, "dimension '2.5'"},
      {EMBR_FORMAT_W2V_BIN, "3 2 1\n", EMBR_EFORMAT, "line 1 '3 2 1' is not a word2vec header"},
      {EMBR_FORMAT_W2V_TEXT, "0 5\n", EMBR_EFORMAT, "no rows"},
      {EMBR_FORMAT_W2V_TEXT, "1 1\na\0b 1\n", EMBR_EFORMAT, "NUL"},
      {EMBR_FORMAT_GLOVE, "a 1 2\nb 3\n", EMBR_EFORMAT, "line 2 has 1 values, expected 2"},
      {EMBR_FORMAT_GLOVE, "a 1 2\n\nb 3 4\n", EMBR_EFORMAT, "line 2 is empty"},
      {EMBR_FORMAT_GLOVE, "a 1 2\nb 3 inf\n", EMBR_EVALUE, "row 1), column 1"},
      {EMBR_FORMAT_GLOVE, "word\n", EMBR_EFORMAT, "no values"},
      {EMBR_FORMAT_GLOVE, " \n\t\n", EMBR_EFORMAT, "no rows"},
      {EMBR_FORMAT_GLOVE, "\x1f\x8b\x08\x00", EMBR_EUNSUPPORTED, "gzip"},
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    size_t len = strlen(bad[k].text);
    if (strcmp(bad[k].needle, "NUL") == 0) len = 10;
    CHECK_ERR(embr_matrix_read_mem(bad[k].text, len, "w.txt", bad[k].fmt, &m), bad[k].status,
              "w.txt", bad[k].needle);
    CHECK(m.data == NULL && m.labels == NULL);
  }
}

/* ---- CSV / TSV fixtures ------------------------------------------------------------------------ */

static void test_delimited_fixtures(void) {
  const float want[6] = {1.0f, -2.5f, 3e-3f, 4.0f, 0.0f, 6.25f};
  const char *good[] = {
      "a,b,c\r\n1,-2.5,3e-3\r\n4, 0 ,6.25\r\n\r\n",
      "1,-2.5,0.003\n4,0,6.25",
      ",0,1\n 1 , -2.5 ,\t3e-3\n4,0,6.25\n\n  \n",
      "\"x\",\"y\",\"z\"\n1,-2.5,3e-3\n4,0,6.25\n",
  };
  embr_matrix m = EMBR_MATRIX_INIT;
  for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) {
    int rc = embr_matrix_read_mem(good[k], strlen(good[k]), "d.csv", EMBR_FORMAT_CSV, &m);
    CHECK_MSG(rc == 0, "csv %zu: %s", k, embr_last_error());
    CHECK(m.n == 2 && m.dim == 3 && m.labels == NULL);
    for (int i = 0; rc == 0 && i < 6; i++) CHECK(m.data[i] == want[i]);
    embr_matrix_free(&m);
  }
  /* pandas to_csv(): an unnamed index column 0, 1, ... is dropped (also in TSV, sep='\t')... */
  const char *pandas[] = {",a,b,c\n0,1,-2.5,3e-3\n1,4,0,6.25\n", "\tx\ty\tz\n0\t1\t-2.5\t0.003\n1\t4\t0\t6.25\n"};
  for (int k = 0; k < 2; k++) {
    CHECK_EQ_INT(embr_matrix_read_mem(pandas[k], strlen(pandas[k]), k ? "p.tsv" : "p.csv", EMBR_FORMAT_AUTO, &m), 0);
    CHECK(m.n == 2 && m.dim == 3 && m.ld == 3);
    for (int i = 0; m.n == 2 && m.dim == 3 && i < 6; i++) CHECK(m.data[i] == want[i]);
    embr_matrix_free(&m);
  }
  /* ... but not a first column that does not count rows, nor one under a named header cell. */
  const char *keep[] = {",a,b\n0,1,2\n2,3,4\n", "i,a,b\n0,1,2\n1,3,4\n", ",a,b,c\n0,1,2\n1,3,4\n"};
  for (int k = 0; k < 3; k++) {
    CHECK_EQ_INT(embr_matrix_read_mem(keep[k], strlen(keep[k]), "k.csv", EMBR_FORMAT_AUTO, &m), 0);
    CHECK(m.n == 2 && m.dim == 3 && m.data[3] == (k ? 1 : 2));
    embr_matrix_free(&m);
  }
  /* Found by fuzzing: a single column is never dropped (nothing would remain). */
  static const char one[] = ",0,-4.5,0.005,6e0\n0\n";
  CHECK_EQ_INT(embr_matrix_read_mem(one, strlen(one), "one.csv", EMBR_FORMAT_AUTO, &m), 0);
  CHECK(m.n == 1 && m.dim == 1);
  embr_matrix_free(&m);
  const char *tsv = "c1\tc2\tc3\n1\t-2.5\t3e-3\n4 \t 0\t6.25\n";
  CHECK_EQ_INT(embr_matrix_read_mem(tsv, strlen(tsv), "d.tsv", EMBR_FORMAT_TSV, &m), 0);
  CHECK(m.n == 2 && m.dim == 3);
  for (int i = 0; m.n == 2 && i < 6; i++) CHECK(m.data[i] == want[i]);
  embr_matrix_free(&m);

  static const struct {
    char sep;
    const char *text;
    int status;
    const char *needle;
  } bad[] = {
      {',', "1,2\n3,x\n", EMBR_EFORMAT, "line 2, column 2: 'x' is not a number"},
      {',', "h1,h2\n1,2\n3,,\n", EMBR_EFORMAT, "line 3 has 3 fields, expected 2"},
      {',', "1,2\n3,\n", EMBR_EFORMAT, "line 2, column 2: an empty field"},
      {',', "1,2\nh1,h2\n", EMBR_EFORMAT, "line 2, column 1"},
      {',', "1,2\n\n3,4\n", EMBR_EFORMAT, "line 2 is empty"},
      {',', "1,2\n3,NaN\n", EMBR_EVALUE, "line 2 (row 1), column 2"},
      {',', "h\n1\n-inf\n", EMBR_EVALUE, "line 3 (row 1), column 1"},
      {',', "a,b,c\n", EMBR_EFORMAT, "no rows after the header"},
      {',', "\n \r\n", EMBR_EFORMAT, "no rows"},
      {'\t', "1\t2\n1,5\t2\n", EMBR_EFORMAT, "line 2, column 1: '1,5'"},
      {',', "1,2\n3,4.5.6\n", EMBR_EFORMAT, "'4.5.6'"},
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    const char *name = bad[k].sep == ',' ? "bad.csv" : "bad.tsv";
    CHECK_ERR(embr_matrix_read_mem(bad[k].text, strlen(bad[k].text), name,
                                   bad[k].sep == ',' ? EMBR_FORMAT_CSV : EMBR_FORMAT_TSV, &m),
              bad[k].status, name, bad[k].needle);
  }
  /* Every prefix: refused with the name, or a valid smaller matrix. */
  const char *full = good[0];
  for (size_t k = 0; k < strlen(full); k++) {
    int rc = embr_matrix_read_mem(full, k, "p.csv", EMBR_FORMAT_CSV, &m);
    if (rc == 0) CHECK(m.n >= 1 && m.n <= 2 && m.dim >= 1 && m.dim <= 3);
    else CHECK(msg_ok("p.csv", ""));
    embr_matrix_free(&m);
  }
}

/* ---- binary truncation at every length --------------------------------------------------------- */

static void truncations(embr_format fmt, const char *file, int labels) {
  embr_matrix m;
  make_matrix(&m, 4, 5, 0, labels, 11);
  if (fmt == EMBR_FORMAT_BVECS || fmt == EMBR_FORMAT_IVECS) {
    embr_matrix_free(&m);
    make_int_matrix(&m, 4, 5, 0, 255, 12);
  }
  const char *path = th_path(file);
  REQUIRE(embr_matrix_write(path, fmt, &m) == 0);
  size_t len = 0;
  unsigned char *p = slurp(path, &len);
  REQUIRE(p != NULL);
  size_t row_bytes = len / 4; /* for the .vecs formats: 4 equal rows */
  for (size_t k = 0; k < len; k++) {
    embr_matrix r = EMBR_MATRIX_INIT;
    int rc = embr_matrix_read_mem(p, k, file, fmt, &r);
    int valid_prefix = fmt != EMBR_FORMAT_NPY && fmt != EMBR_FORMAT_W2V_BIN && k > 0 &&
                       k % row_bytes == 0;
    if (fmt == EMBR_FORMAT_W2V_BIN && k == len - 1) valid_prefix = 1; /* final '\n' optional */
    if (valid_prefix) {
      CHECK_MSG(rc == 0, "%s prefix %zu: %s", file, k, embr_last_error());
    } else {
      CHECK_MSG(rc != 0, "%s prefix %zu of %zu accepted", file, k, len);
      CHECK_MSG(msg_ok(file, ""), "%s prefix %zu: message '%s'", file, k, embr_last_error());
      CHECK(r.data == NULL);
    }
    embr_matrix_free(&r);
  }
  free(p);
  embr_matrix_free(&m);
}

static void test_truncated_binary(void) {
  truncations(EMBR_FORMAT_NPY, "t.npy", 0);
  truncations(EMBR_FORMAT_FVECS, "t.fvecs", 0);
  truncations(EMBR_FORMAT_IVECS, "t.ivecs", 0);
  truncations(EMBR_FORMAT_BVECS, "t.bvecs", 0);
  truncations(EMBR_FORMAT_W2V_BIN, "t.bin", 1);
}

/* ---- files on disk ----------------------------------------------------------------------------- */

static void test_paths(void) {
  embr_matrix m = EMBR_MATRIX_INIT;
  const char *missing = th_path("missing.npy");
  CHECK_ERR(embr_matrix_read(missing, EMBR_FORMAT_AUTO, &m), EMBR_ENOTFOUND, missing, "cannot open");
  CHECK_ERR(embr_matrix_read(th_scratch(), EMBR_FORMAT_NPY, &m), EMBR_EIO, th_scratch(), "directory");
  const char *empty = th_path("empty.fvecs");
  th_write_file(empty, "", 0);
  CHECK_ERR(embr_matrix_read(empty, EMBR_FORMAT_AUTO, &m), EMBR_EFORMAT, empty, "empty file");
  CHECK_ERR(embr_matrix_read_mem("", 0, "e.csv", EMBR_FORMAT_CSV, &m), EMBR_EFORMAT, "e.csv",
            "empty file");
  const char *unknown = th_path("data.xyz");
  th_write_file(unknown, "1,2\n", 4);
  CHECK_ERR(embr_matrix_read(unknown, EMBR_FORMAT_AUTO, &m), EMBR_EINVAL, unknown, "format");
  CHECK_EQ_INT(embr_matrix_read(unknown, EMBR_FORMAT_CSV, &m), 0);
  CHECK(m.n == 1 && m.dim == 2);
  embr_matrix_free(&m);
  /* An .npy under another name is still recognised by its magic. */
  embr_matrix a;
  make_matrix(&a, 2, 3, 0, 0, 9);
  const char *npy = th_path("arr.npy");
  CHECK_EQ_INT(embr_matrix_write(npy, EMBR_FORMAT_AUTO, &a), 0);
  const char *renamed = th_path("arr.data");
  CHECK_EQ_INT(rename(npy, renamed), 0);
  CHECK_EQ_INT(embr_matrix_read(renamed, EMBR_FORMAT_AUTO, &m), 0);
  CHECK(same_matrix(&a, &m, 0));
  embr_matrix_free(&m);
  embr_matrix_free(&a);
  /* A gzip-compressed download. */
  const char *gz = th_path("vectors.txt");
  th_write_file(gz, "\x1f\x8b\x08\x00\x00\x00", 6);
  CHECK_ERR(embr_matrix_read(gz, EMBR_FORMAT_AUTO, &m), EMBR_EUNSUPPORTED, gz, "gzip");
}

static void test_write_refusals(void) {
  embr_matrix m;
  make_matrix(&m, 3, 4, 0, 0, 21);
  for (int k = 0; k < 12; k++) m.data[k] = (float)(k % 7); /* valid for every format */
  int before = th_count_entries(th_scratch(), "w.");
  const char *p = th_path("w.txt");
  CHECK_ERR(embr_matrix_write(p, EMBR_FORMAT_W2V_TEXT, &m), EMBR_EINVAL, p, "no labels");
  p = th_path("w.bin");
  embr_matrix_alloc_labels(&m);
  m.labels[0] = embr_strdup("ok");
  m.labels[2] = embr_strdup("z");
  CHECK_ERR(embr_matrix_write(p, EMBR_FORMAT_W2V_BIN, &m), EMBR_EINVAL, p, "row 1 has no label");
  m.labels[1] = embr_strdup("two words");
  p = th_path("w.glove");
  CHECK_ERR(embr_matrix_write(p, EMBR_FORMAT_GLOVE, &m), EMBR_EINVAL, p, "whitespace");
  p = th_path("w.bvecs");
  m.data[5] = 256.0f;
  CHECK_ERR(embr_matrix_write(p, EMBR_FORMAT_BVECS, &m), EMBR_EVALUE, p, "row 1, column 1");
  p = th_path("w.ivecs");
  m.data[5] = 0.5f;
  CHECK_ERR(embr_matrix_write(p, EMBR_FORMAT_IVECS, &m), EMBR_EVALUE, p, "row 1, column 1");
  m.data[5] = 3e9f;
  CHECK_ERR(embr_matrix_write(p, EMBR_FORMAT_IVECS, &m), EMBR_EVALUE, p, "int32");
  m.data[5] = NAN;
  p = th_path("w.npy");
  CHECK_ERR(embr_matrix_write(p, EMBR_FORMAT_NPY, &m), EMBR_EVALUE, p, "row 1, column 1 is NaN");
  p = th_path("w.unknown");
  CHECK_ERR(embr_matrix_write(p, EMBR_FORMAT_AUTO, &m), EMBR_EINVAL, p, "format");
  CHECK_EQ_INT(th_count_entries(th_scratch(), "w."), before); /* nothing left behind, not even temporary files */
  m.data[5] = 1.0f;
  /* Writing over a directory fails; an existing file survives a refused write untouched. */
  CHECK_ERR(embr_matrix_write(th_scratch(), EMBR_FORMAT_NPY, &m), EMBR_EIO, th_scratch(), "directory");
  p = th_path("keep.fvecs");
  th_write_file(p, "old", 3);
  m.data[0] = INFINITY;
  CHECK_EQ_INT(embr_matrix_write(p, EMBR_FORMAT_FVECS, &m), EMBR_EVALUE);
  size_t len = 0;
  unsigned char *old = slurp(p, &len);
  CHECK(old && len == 3 && memcmp(old, "old", 3) == 0);
  free(old);
  CHECK_EQ_INT(th_count_entries(th_scratch(), "keep."), 1);
  embr_matrix empty = EMBR_MATRIX_INIT;
  CHECK_EQ_INT(embr_matrix_write(th_path("e.npy"), EMBR_FORMAT_NPY, &empty), EMBR_EINVAL);
  CHECK_EQ_INT(embr_matrix_write(th_path("e.npy"), EMBR_FORMAT_NPY, NULL), EMBR_EINVAL);
  embr_matrix_free(&m);
}

/* A program that set a decimal-comma locale still reads and writes "0.5". */
static void test_locale_independent(void) {
  static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8",
                                      "ru_RU.UTF-8", "nl_NL.UTF-8"};
  const char *got = NULL;
  for (size_t i = 0; i < sizeof names / sizeof names[0] && !got; i++)
    got = setlocale(LC_NUMERIC, names[i]);
  if (!got) SKIP("no locale with a decimal comma is installed");
  embr_matrix m;
  make_matrix(&m, 3, 2, 0, 1, 41);
  m.data[0] = 0.5f;
  const char *path = th_path("loc.csv");
  int rc = embr_matrix_write(path, EMBR_FORMAT_CSV, &m);
  embr_matrix r = EMBR_MATRIX_INIT;
  int rc2 = embr_matrix_read(path, EMBR_FORMAT_CSV, &r);
  setlocale(LC_NUMERIC, "C");
  CHECK_EQ_INT(rc, 0);
  CHECK_EQ_INT(rc2, 0);
  CHECK(same_matrix(&m, &r, 0));
  size_t len = 0;
  unsigned char *p = slurp(path, &len);
  CHECK(p && len > 4 && memcmp(p, "0.5,", 4) == 0);
  free(p);
  embr_matrix_free(&r);
  embr_matrix_free(&m);
}

/* ---- mutations: random byte changes of valid files never crash -------------------------------- */

static void mutate_all(embr_format fmt, const char *file, int labels, uint64_t seed) {
  embr_matrix m;
  make_matrix(&m, 3, 4, 0, labels, seed);
  const char *path = th_path(file);
  REQUIRE(embr_matrix_write(path, fmt, &m) == 0);
  embr_matrix_free(&m);
  size_t len = 0;
  unsigned char *orig = slurp(path, &len);
  REQUIRE(orig != NULL);
  unsigned char *buf = malloc(len + 16);
  embr_rng rng;
  embr_rng_seed(&rng, seed);
  static const unsigned char interesting[] = {0, 1, 0x7f, 0x80, 0xff, ' ', '\n', '\r', '\t', ',',
                                              '.', '-', 'e', 'n', '(', ')', '\'', '9'};
  for (int it = 0; it < 3000; it++) {
    memcpy(buf, orig, len);
    size_t n = len;
    int edits = 1 + (int)embr_rng_below(&rng, 4);
    for (int e = 0; e < edits; e++) {
      size_t at = (size_t)embr_rng_below(&rng, n);
      if (embr_rng_below(&rng, 2))
        buf[at] = interesting[embr_rng_below(&rng, sizeof interesting)];
      else
        buf[at] = (unsigned char)embr_rng_next(&rng);
    }
    if (embr_rng_below(&rng, 4) == 0) n = (size_t)embr_rng_below(&rng, n + 1);
    embr_matrix r = EMBR_MATRIX_INIT;
    int rc = embr_matrix_read_mem(buf, n, file, fmt, &r);
    if (rc == 0) {
      int64_t i, j;
      CHECK(r.n >= 1 && r.dim >= 1 && r.data != NULL);
      CHECK(embr_matrix_find_nonfinite(&r, &i, &j) != 0);
    } else {
      CHECK_MSG(msg_ok(file, ""), "%s: message '%s'", file, embr_last_error());
    }
    embr_matrix_free(&r);
  }
  free(buf);
  free(orig);
}

static void test_mutations(void) {
  mutate_all(EMBR_FORMAT_NPY, "mu.npy", 0, 31);
  mutate_all(EMBR_FORMAT_FVECS, "mu.fvecs", 0, 32);
  mutate_all(EMBR_FORMAT_W2V_BIN, "mu.bin", 1, 33);
  mutate_all(EMBR_FORMAT_W2V_TEXT, "mu.txt", 1, 34);
  mutate_all(EMBR_FORMAT_GLOVE, "mu.glove", 1, 35);
  mutate_all(EMBR_FORMAT_CSV, "mu.csv", 0, 36);
  mutate_all(EMBR_FORMAT_TSV, "mu.tsv", 0, 37);
}

/* ---- line files, integer lists, ids to .ivecs, maps, sparse triplets ---------------------------- */

/* Reference split for line files: a plain loop over the bytes, written independently of lines.c. */
static int64_t ref_split(const char *s, size_t len, char out[][16], int max) {
  int64_t n = 0;
  size_t i = 0;
  while (i < len && n < max) {
    size_t j = i;
    while (j < len && s[j] != '\n') j++;
    size_t e = j;
    if (e > i && s[e - 1] == '\r') e--;
    snprintf(out[n], 16, "%.*s", (int)(e - i), s + i);
    n++;
    i = j + 1;
  }
  return n;
}

static void test_lines(void) {
  const char *cases[] = {"", "a", "a\n", "a\r\nb", "\n\n", "x\r\n\r\ny z\n", "one\ntwo\r\nthree", " \t\n"};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    char want[8][16];
    int64_t nw = ref_split(cases[c], strlen(cases[c]), want, 8);
    embr_lines l;
    int rc = embr_lines_read_mem(cases[c], strlen(cases[c]), "f.txt", -1, NULL, NULL, &l);
    CHECK_MSG(rc == 0, "case %zu: %s", c, embr_last_error());
    CHECK_MSG(l.n == nw, "case %zu: %lld lines, want %lld", c, (long long)l.n, (long long)nw);
    for (int64_t i = 0; rc == 0 && i < l.n && i < nw; i++) CHECK_MSG(!strcmp(l.line[i], want[i]), "case %zu line %lld", c, (long long)i);
    embr_lines_free(&l);
    embr_lines_free(&l); /* twice: a no-op */
  }
  embr_lines_free(NULL);
  embr_lines l;
  /* the expected count, named in the message before anything is allocated */
  CHECK_EQ_INT(embr_lines_read_mem("1\n2\n", 4, "ids.txt", 3, "ids", "vectors", &l), EMBR_EINVAL);
  CHECK(strstr(embr_last_error(), "ids.txt: 2 ids for 3 vectors") != NULL);
  CHECK(l.n == 0 && l.line == NULL);
  CHECK_EQ_INT(embr_lines_read_mem("1\n2\n", 4, "ids.txt", 2, "ids", "vectors", &l), 0);
  embr_lines_free(&l);
  /* a NUL byte names the file and the line */
  CHECK_EQ_INT(embr_lines_read_mem("a\nb\0c\n", 6, "meta.jsonl", -1, NULL, NULL, &l), EMBR_EFORMAT);
  CHECK(strstr(embr_last_error(), "meta.jsonl: line 2: NUL byte") != NULL);
  /* from a file, and a missing file */
  FILE *f = fopen(th_path("lines.txt"), "wb");
  REQUIRE(f != NULL);
  fputs("7\n 8 \r\n9\t\n", f);
  fclose(f);
  REQUIRE(embr_lines_read(th_path("lines.txt"), 3, "ids", "vectors", &l) == 0);
  int64_t ids[3];
  CHECK_EQ_INT(embr_lines_parse_ids(&l, "lines.txt", ids), 0);
  CHECK(ids[0] == 7 && ids[1] == 8 && ids[2] == 9);
  embr_lines_free(&l);
  CHECK_EQ_INT(embr_lines_read(th_path("missing.txt"), -1, NULL, NULL, &l), EMBR_ENOTFOUND);
  CHECK(strstr(embr_last_error(), "missing.txt") != NULL);
  /* ids: non-negative integers up to INT64_MAX, one per line */
  const char *bad_ids[] = {"1\n-2\n", "1\nx\n", "1\n\n", "1\n9223372036854775808\n", "1\n1 2\n", "1\n1.5\n"};
  for (size_t c = 0; c < sizeof bad_ids / sizeof bad_ids[0]; c++) {
    REQUIRE(embr_lines_read_mem(bad_ids[c], strlen(bad_ids[c]), "ids.txt", -1, NULL, NULL, &l) == 0);
    int64_t v[2];
    CHECK_EQ_INT(embr_lines_parse_ids(&l, "ids.txt", v), EMBR_EFORMAT);
    CHECK_MSG(strstr(embr_last_error(), "ids.txt: line 2") != NULL, "%s", embr_last_error());
    embr_lines_free(&l);
  }
  REQUIRE(embr_lines_read_mem("9223372036854775807", 19, "ids.txt", 1, NULL, NULL, &l) == 0);
  CHECK(embr_lines_parse_ids(&l, "ids.txt", ids) == 0 && ids[0] == INT64_MAX);
  embr_lines_free(&l);
}

static void test_int_list(void) {
  int64_t v[4];
  int n;
  CHECK(embr_int_list_parse("16,32,64", 1, 1000, v, 4, &n) == 0 && n == 3 && v[0] == 16 && v[1] == 32 && v[2] == 64);
  CHECK(embr_int_list_parse("5", 1, 1000, v, 4, &n) == 0 && n == 1 && v[0] == 5);
  CHECK(embr_int_list_parse("-3,0,3", -3, 3, v, 4, &n) == 0 && n == 3 && v[0] == -3 && v[2] == 3);
  const char *bad[] = {"", ",", "1,", ",1", "1,,2", "0", "1001", "1,2,3,4,5", "a", "1 ,2", "+1", "1.5", "-1"};
  for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++)
    CHECK_MSG(embr_int_list_parse(bad[c], 1, 1000, v, 4, &n) == EMBR_EINVAL, "'%s' accepted", bad[c]);
  CHECK(strstr(embr_last_error(), "'-1'") != NULL);
}

static void test_ids_ivecs(void) {
  const int64_t ids[6] = {3, 1, -1, 2147483647, 0, -1};
  REQUIRE(embr_ids_write_ivecs(th_path("ids.ivecs"), ids, 2, 3) == 0);
  int32_t *back = NULL;
  int64_t n = 0, d = 0;
  REQUIRE(embr_ivecs_read(th_path("ids.ivecs"), &back, &n, &d) == 0);
  CHECK(n == 2 && d == 3);
  for (int i = 0; i < 6; i++) CHECK(back[i] == ids[i]);
  embr_free(back);
  /* an id int32 cannot hold is refused naming the file, the row and the id; nothing is written */
  const int64_t big[4] = {0, 1, 2, 2147483648LL};
  CHECK_EQ_INT(embr_ids_write_ivecs(th_path("big.ivecs"), big, 2, 2), EMBR_EUNSUPPORTED);
  CHECK_MSG(strstr(embr_last_error(), "big.ivecs: row 1: id 2147483648") != NULL, "%s", embr_last_error());
  CHECK(access(th_path("big.ivecs"), F_OK) != 0);
  CHECK_EQ_INT(th_count_entries(th_scratch(), "big.ivecs"), 0);
  const int64_t neg[1] = {-2};
  CHECK_EQ_INT(embr_ids_write_ivecs(th_path("neg.ivecs"), neg, 1, 1), EMBR_EUNSUPPORTED);
}

static void test_map_read(void) {
  /* words in the last column: labels, for both the map reader and the matrix reader (convert) */
  const char *words = "1.5\t-2\tcat\n0.25\t4\tthe dog\n";
  embr_matrix m = EMBR_MATRIX_INIT;
  for (int which = 0; which < 2; which++) {
    int rc = which ? embr_matrix_read_mem(words, strlen(words), "map.tsv", EMBR_FORMAT_AUTO, &m)
                   : embr_map_read_mem(words, strlen(words), "map.tsv", EMBR_FORMAT_AUTO, &m);
    CHECK_MSG(rc == 0, "%s", embr_last_error());
    CHECK(m.n == 2 && m.dim == 2 && m.labels != NULL);
    if (rc == 0 && m.labels) {
      CHECK(m.data[0] == 1.5f && m.data[1] == -2.0f && m.data[2] == 0.25f && m.data[3] == 4.0f);
      CHECK(!strcmp(m.labels[0], "cat") && !strcmp(m.labels[1], "the dog"));
    }
    embr_matrix_free(&m);
  }
  /* integer classes after decimal coordinates: labels for the map reader only */
  const char *digits = "12.5\t-3.25\t7\n1.75\t2.5\t10\n";
  REQUIRE(embr_map_read_mem(digits, strlen(digits), "d.tsv", EMBR_FORMAT_AUTO, &m) == 0);
  CHECK(m.dim == 2 && m.labels && !strcmp(m.labels[1], "10"));
  embr_matrix_free(&m);
  REQUIRE(embr_matrix_read_mem(digits, strlen(digits), "d.tsv", EMBR_FORMAT_AUTO, &m) == 0);
  CHECK(m.dim == 3 && m.labels == NULL && m.data[5] == 10.0f);
  embr_matrix_free(&m);
  /* a header naming the last column "label"; 3-D maps */
  const char *hdr = "x\ty\tz\tlabel\n1\t2\t3\t0\n4\t5\t6\t1\n";
  REQUIRE(embr_map_read_mem(hdr, strlen(hdr), "h.tsv", EMBR_FORMAT_AUTO, &m) == 0);
  CHECK(m.n == 2 && m.dim == 3 && m.labels && !strcmp(m.labels[0], "0") && m.data[5] == 6.0f);
  embr_matrix_free(&m);
  /* plain numbers stay numbers; other formats go to the matrix readers */
  const char *plain = "1\t2\t3\n4\t5\t6\n";
  REQUIRE(embr_map_read_mem(plain, strlen(plain), "p.tsv", EMBR_FORMAT_AUTO, &m) == 0);
  CHECK(m.dim == 3 && m.labels == NULL);
  embr_matrix_free(&m);
  REQUIRE(embr_map_read_mem("1,2\n3,4\n", 8, "p.csv", EMBR_FORMAT_AUTO, &m) == 0);
  CHECK(m.n == 2 && m.dim == 2);
  embr_matrix_free(&m);
  /* errors name the file and the line */
  const char *bad = "1\t2\tcat\n3\tx\tdog\n";
  CHECK_EQ_INT(embr_map_read_mem(bad, strlen(bad), "bad.tsv", EMBR_FORMAT_AUTO, &m), EMBR_EFORMAT);
  CHECK_MSG(strstr(embr_last_error(), "bad.tsv: line 2, column 2") != NULL, "%s", embr_last_error());
  const char *ragged = "1\t2\tcat\n3\t4\t5\tdog\n";
  CHECK_EQ_INT(embr_map_read_mem(ragged, strlen(ragged), "r.tsv", EMBR_FORMAT_AUTO, &m), EMBR_EFORMAT);
  CHECK(strstr(embr_last_error(), "r.tsv: line 2 has 4 fields, expected 3") != NULL);
  CHECK(m.labels == NULL && m.data == NULL);
  /* a map written by the library (labels) reads back through a file */
  FILE *f = fopen(th_path("m.tsv"), "wb");
  REQUIRE(f != NULL);
  fputs(words, f);
  fclose(f);
  REQUIRE(embr_map_read(th_path("m.tsv"), EMBR_FORMAT_AUTO, &m) == 0);
  CHECK(m.n == 2 && m.labels && !strcmp(m.labels[1], "the dog"));
  embr_matrix_free(&m);
}

static void test_triplets(void) {
  const float want[6] = {0, 1, 0.5f, 2, 0, 1.25f};
  const char *good[] = {"0 1 0.5\n2 0 1.25\n", "0\t1\t0.5\n2\t0\t1.25", "i j d\n  0 \t 1   0.5\r\n\n2 0\t1.25\n\n"};
  embr_matrix m = EMBR_MATRIX_INIT;
  for (size_t c = 0; c < sizeof good / sizeof good[0]; c++) {
    int rc = embr_triplets_read_mem(good[c], strlen(good[c]), "s.tsv", EMBR_FORMAT_AUTO, &m);
    CHECK_MSG(rc == 0, "case %zu: %s", c, embr_last_error());
    CHECK(m.n == 2 && m.dim == 3);
    for (int i = 0; rc == 0 && i < 6; i++) CHECK(m.data[i] == want[i]);
    embr_matrix_free(&m);
  }
  /* CSV and .npy go through the matrix readers and need 3 columns */
  const char *csv = "0,1,0.5\n2,0,1.25\n";
  REQUIRE(embr_triplets_read_mem(csv, strlen(csv), "s.csv", EMBR_FORMAT_AUTO, &m) == 0);
  CHECK(m.n == 2 && m.data[5] == 1.25f);
  embr_matrix_free(&m);
  CHECK_EQ_INT(embr_triplets_read_mem("0,1\n", 4, "s.csv", EMBR_FORMAT_AUTO, &m), EMBR_EDIM);
  static const struct {
    const char *text, *needle;
  } bad[] = {
      {"0 1 0.5\n0 1\n", "line 2 has 2 fields"},
      {"0 1 0.5 9\n", "line 1 has more than 3 fields"},
      {"0 1 0.5\n-1 2 0.5\n", "line 2, column 1: '-1' is not a point number"},
      {"0 1.5 0.5\n", "line 1, column 2"},
      {"0 16777216 1\n", "line 1, column 2"},
      {"0 1 x\n", "line 1, column 3: 'x' is not a number"},
      {"0 1 nan\n", "line 1, column 3: 'nan' is not a finite"},
      {"\n\n", "no rows"},
      {"i j d\n", "no rows"},
  };
  for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
    CHECK_MSG(embr_triplets_read_mem(bad[c].text, strlen(bad[c].text), "s.txt", EMBR_FORMAT_AUTO, &m) != 0, "case %zu", c);
    CHECK_MSG(strstr(embr_last_error(), bad[c].needle) != NULL && strstr(embr_last_error(), "s.txt") != NULL,
              "case %zu: %s", c, embr_last_error());
    CHECK(m.data == NULL);
  }
}

/* ---- image-caption pairs ------------------------------------------------------------------------- */

static void test_captions_read(void) {
  const char *dir = th_fresh_dir("captions");
  mkdir(th_join(dir, "img"), 0755);
  th_write_file(th_join(dir, "img/a.png"), "x", 1);
  th_write_file(th_join(dir, "img/b.png"), "x", 1);
  th_write_file(th_join(dir, "c d.png"), "x", 1);
  /* BOM, CR LF, a lone CR, a blank line, a repeated image, spaces around the caption, UTF-8 */
  const char *text = "\xEF\xBB\xBFimg/b.png\ta red heart\r\nimg/a.png\t  smiling face \r\n\n"
                     "img/b.png\tlove\rc d.png\tcaf\xC3\xA9 \xE2\x98\x95\n   \n";
  const char *pairs = th_join(dir, "pairs.tsv");
  th_write_file(pairs, text, strlen(text));
  embr_captions c;
  REQUIRE(embr_captions_read(pairs, dir, &c) == 0);
  CHECK_EQ_INT(c.n_images, 3);
  CHECK_EQ_INT(c.n, 4);
  CHECK(!strcmp(c.image[0], "img/b.png") && !strcmp(c.image[1], "img/a.png") && !strcmp(c.image[2], "c d.png"));
  CHECK(!strcmp(c.image_path[1], th_join(dir, "img/a.png")));
  const char *want[] = {"a red heart", "smiling face", "love", "caf\xC3\xA9 \xE2\x98\x95"};
  int64_t idx[] = {0, 1, 0, 2}, line[] = {1, 2, 4, 5};
  for (int i = 0; i < 4; i++) {
    CHECK_MSG(!strcmp(c.text[i], want[i]), "caption %d is '%s'", i, c.text[i]);
    CHECK_EQ_INT(c.image_index[i], idx[i]);
    CHECK_EQ_INT(c.line[i], line[i]);
  }
  embr_captions_free(&c);
  embr_captions_free(&c); /* twice: a no-op */
  embr_captions_free(NULL);
  /* without a folder: no existence check, paths as written */
  REQUIRE(embr_captions_read_mem("x/y.png\tz\n", 10, "p.tsv", NULL, &c) == 0);
  CHECK(!strcmp(c.image_path[0], "x/y.png") && c.n == 1);
  embr_captions_free(&c);
  /* a missing image names the pairs file, the line and the path; so does a folder as an image */
  th_write_file(pairs, "img/a.png\tok\nimg/zz.png\tgone\n", 29);
  CHECK_EQ_INT(embr_captions_read(pairs, dir, &c), EMBR_ENOTFOUND);
  char want_msg[600];
  snprintf(want_msg, sizeof want_msg, "%s: line 2: image '%s/img/zz.png' not found", pairs, dir);
  CHECK_MSG(!strcmp(embr_last_error(), want_msg), "%s", embr_last_error());
  CHECK(c.n == 0 && c.text == NULL && c.buf == NULL);
  th_write_file(pairs, "img\tdir\n", 8);
  CHECK_EQ_INT(embr_captions_read(pairs, dir, &c), EMBR_EFORMAT);
  CHECK(strstr(embr_last_error(), "line 1: image") && strstr(embr_last_error(), "not a regular file"));
  CHECK_EQ_INT(embr_captions_read(th_join(dir, "nope.tsv"), dir, &c), EMBR_ENOTFOUND);
}

static void test_captions_refusals(void) {
  struct {
    const char *text;
    size_t len;
    const char *msg;
  } bad[] = {
      {"a.png\tok\nb.png caption\n", 0, "p.tsv: line 2: no tab"},
      {"a.png\tx\ty\n", 0, "p.tsv: line 1: more than one tab"},
      {"a.png\t   \n", 0, "p.tsv: line 1: empty caption"},
      {"a.png\t\r\n", 0, "p.tsv: line 1: empty caption"},
      {"\tcaption\n", 0, "p.tsv: line 1: empty file name"},
      {"/etc/passwd\tx\n", 0, "p.tsv: line 1: '/etc/passwd' leaves the data folder"},
      {"img/../../x.png\tx\n", 0, "leaves the data folder"},
      {"..\tx\n", 0, "leaves the data folder"},
      {"a.png\tok\nb.png\tbad\0byte\n", 23, "p.tsv: line 2, byte 10: NUL byte"},
      {"a.png\tcaf\xC3\n", 0, "p.tsv: line 1, byte 10: not UTF-8"},
      {"a.png\t\xC0\xAF\n", 0, "not UTF-8"},
      {"a.png\tbell\x07\n", 0, "p.tsv: line 1, byte 11: control byte"},
      {"", 0, "p.tsv: no pairs"},
      {"\n \r\n", 0, "p.tsv: no pairs"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    embr_captions c;
    size_t len = bad[i].len ? bad[i].len : strlen(bad[i].text);
    int rc = embr_captions_read_mem(bad[i].text, len, "p.tsv", NULL, &c);
    CHECK_MSG(rc == EMBR_EFORMAT, "case %zu: status %d", i, rc);
    CHECK_MSG(strstr(embr_last_error(), bad[i].msg) && !strchr(embr_last_error(), '\n'), "case %zu: '%s'", i,
              embr_last_error());
    CHECK(c.n == 0 && c.image == NULL);
  }
  /* names that merely contain dots are fine */
  embr_captions c;
  REQUIRE(embr_captions_read_mem("..a/b..png\tx\n./c.png\ty\n", 23, "p.tsv", NULL, &c) == 0);
  CHECK_EQ_INT(c.n_images, 2);
  embr_captions_free(&c);
  /* many images: the hash table grows with the lines, every caption finds its image */
  char *big = malloc(64 * 5000);
  size_t n = 0;
  for (int i = 0; i < 5000; i++) n += (size_t)sprintf(big + n, "i%d.png\tc%d\n", i % 1234, i);
  REQUIRE(embr_captions_read_mem(big, n, "big.tsv", NULL, &c) == 0);
  CHECK_EQ_INT(c.n_images, 1234);
  int ok = 1;
  for (int i = 0; i < 5000; i++) {
    char want[32];
    sprintf(want, "i%d.png", i % 1234);
    ok &= c.image_index[i] == i % 1234 && !strcmp(c.image[c.image_index[i]], want);
  }
  CHECK(ok);
  embr_captions_free(&c);
  free(big);
}

int main(int argc, char **argv) {
  int rc = RUN_TESTS(argc, argv, test_npy_other_layouts, test_numpy_written_files, test_cr_line_ends, test_format_names, test_parse_float, test_roundtrip_float_formats,
                     test_roundtrip_int_formats, test_npy_writer_layout, test_npy_float64,
                     test_npy_float16, test_npy_header_variants, test_npy_refusals,
                     test_vecs_refusals, test_w2v_binary_fixtures, test_text_word_fixtures,
                     test_delimited_fixtures, test_truncated_binary, test_paths,
                     test_write_refusals, test_locale_independent, test_mutations, test_lines, test_int_list,
                     test_ids_ivecs, test_map_read, test_triplets, test_captions_read,
                     test_captions_refusals);
  return rc;
}

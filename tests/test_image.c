/* Images: file round trips, JPEG against libjpeg's own encoder, hostile inputs, resizing against a
 * slow direct implementation, tensor conversion, augmentation, datasets and the batch loader. */
#include "embr/image.h"
#include "embr/matrix.h"
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <sys/resource.h>
#include <png.h>
#include <zlib.h>

/* ---- scratch files ------------------------------------------------------------------------------ */

static void make_dir(const char *path) {
  if (mkdir(path, 0755) != 0 && errno != EEXIST) {
    perror(path);
    exit(1);
  }
}

static int starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* ---- test images ---------------------------------------------------------------------------------- */

static embr_image make_image(int w, int h, int c, uint64_t seed) {
  embr_image im = {w, h, c, malloc((size_t)w * h * c), NULL};
  embr_rng r;
  embr_rng_seed(&r, seed);
  for (size_t i = 0; i < (size_t)w * h * c; i++) im.px[i] = (uint8_t)embr_rng_below(&r, 256);
  return im;
}

/* A smooth picture (JPEG keeps those well). */
static embr_image make_smooth(int w, int h, int c) {
  embr_image im = {w, h, c, malloc((size_t)w * h * c), NULL};
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int ch = 0; ch < c; ch++)
        im.px[((size_t)y * w + x) * c + ch] = (uint8_t)(40 + (x * 150) / w + (y * 50) / h + ch * 10);
  return im;
}

static void free_test_image(embr_image *im) {
  free(im->px);
  im->px = NULL;
}

static int same_pixels(const embr_image *a, const embr_image *b) {
  return a->width == b->width && a->height == b->height && a->channels == b->channels &&
         memcmp(a->px, b->px, (size_t)a->width * a->height * a->channels) == 0;
}

static unsigned char *slurp(const char *path, size_t *len) {
  *len = 0;
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

/* ---- encoders for fixtures (libpng and libjpeg directly) -------------------------------------------- */

typedef struct membuf {
  unsigned char *p;
  size_t n, cap;
} membuf;

static void mb_write(png_structp png, png_bytep d, size_t n) {
  membuf *m = png_get_io_ptr(png);
  if (m->n + n > m->cap) {
    m->cap = (m->n + n) * 2;
    m->p = realloc(m->p, m->cap);
  }
  memcpy(m->p + m->n, d, n);
  m->n += n;
}

static void mb_flush(png_structp png) { (void)png; }

/* A PNG of packed rows `data` (rowbytes each) in any layout libpng writes. */
static membuf png_encode(int w, int h, int depth, int ctype, int interlace, const unsigned char *data,
                         size_t rowbytes, const png_color *pal, int npal, const png_byte *trns, int ntrns) {
  membuf m = {0};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(png, &m, mb_write, mb_flush);
  png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, ctype, interlace, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (pal) png_set_PLTE(png, info, pal, npal);
  if (trns) png_set_tRNS(png, info, trns, ntrns, NULL);
  png_write_info(png, info);
  int passes = png_set_interlace_handling(png);
  for (int p = 0; p < passes; p++)
    for (int y = 0; y < h; y++) png_write_row(png, data + (size_t)y * rowbytes);
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return m;
}

/* How to encode a JPEG beyond the pixels: the stored colour space (JCS_UNKNOWN: libjpeg's default
 * for the input), 4:4:4 sampling, and a scan script (NULL: libjpeg's simple progression when
 * `progressive`, else one sequential scan). */
typedef struct jpeg_opts {
  J_COLOR_SPACE store;
  int full_chroma;
  const jpeg_scan_info *scans;
  int nscans;
} jpeg_opts;

/* Encodes w x h pixels of `comps` channels (1 grey, 3 RGB, 4 CMYK) with libjpeg. */
static unsigned char *jpeg_encode_px(const unsigned char *px, int w, int h, int comps, int quality, int progressive,
                                     const jpeg_opts *o, size_t *len) {
  struct jpeg_compress_struct ci;
  struct jpeg_error_mgr jerr;
  ci.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&ci);
  unsigned char *buf = NULL;
  unsigned long n = 0;
  jpeg_mem_dest(&ci, &buf, &n);
  ci.image_width = (JDIMENSION)w;
  ci.image_height = (JDIMENSION)h;
  ci.input_components = comps;
  ci.in_color_space = comps == 1 ? JCS_GRAYSCALE : comps == 3 ? JCS_RGB : JCS_CMYK;
  jpeg_set_defaults(&ci);
  if (o && o->store != JCS_UNKNOWN) jpeg_set_colorspace(&ci, o->store);
  jpeg_set_quality(&ci, quality, TRUE);
  for (int c = 0; o && o->full_chroma && c < ci.num_components; c++)
    ci.comp_info[c].h_samp_factor = ci.comp_info[c].v_samp_factor = 1;
  if (o && o->scans) ci.scan_info = o->scans, ci.num_scans = o->nscans;
  else if (progressive) jpeg_simple_progression(&ci);
  jpeg_start_compress(&ci, TRUE);
  while (ci.next_scanline < ci.image_height) {
    JSAMPROW row = (JSAMPROW)px + (size_t)ci.next_scanline * w * comps;
    jpeg_write_scanlines(&ci, &row, 1);
  }
  jpeg_finish_compress(&ci);
  jpeg_destroy_compress(&ci);
  *len = n;
  return buf;
}

static unsigned char *jpeg_encode(const embr_image *im, int quality, int progressive, size_t *len) {
  return jpeg_encode_px(im->px, im->width, im->height, im->channels, quality, progressive, NULL, len);
}

/* ---- round trips ---------------------------------------------------------------------------------- */

/* Whether a temporary file of a write (".tmp.") was left in the scratch directory. */
static int count_tmp_files(void) {
  DIR *d = opendir(th_scratch());
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) n += strstr(e->d_name, ".tmp.") != NULL;
  if (d) closedir(d);
  return n;
}

static void test_png_roundtrip(void) {
  static const int sizes[][2] = {{1, 1}, {7, 5}, {33, 17}, {2, 300}};
  for (int c = 1; c <= 3; c += 2)
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
      embr_image im = make_image(sizes[s][0], sizes[s][1], c, 10 + s), back;
      const char *p = th_path(c == 1 ? "rt_grey.png" : "rt_rgb.PNG");
      REQUIRE(embr_image_write(p, &im) == 0);
      CHECK(embr_image_read(p, &back) == 0);
      CHECK_MSG(same_pixels(&im, &back), "png %dx%dx%d", im.width, im.height, c);
      embr_image_free(&back);
      free_test_image(&im);
    }
  CHECK(!count_tmp_files());
  embr_image_free(NULL);
}

static void test_pnm_roundtrip(void) {
  embr_image g = make_image(13, 7, 1, 1), rgb = make_image(5, 9, 3, 2), back;
  REQUIRE(embr_image_write(th_path("a.pgm"), &g) == 0);
  CHECK(embr_image_read(th_path("a.pgm"), &back) == 0 && same_pixels(&g, &back));
  embr_image_free(&back);
  REQUIRE(embr_image_write(th_path("a.PPM"), &rgb) == 0);
  CHECK(embr_image_read(th_path("a.PPM"), &back) == 0 && same_pixels(&rgb, &back));
  embr_image_free(&back);
  REQUIRE(embr_image_write(th_path("a.pnm"), &rgb) == 0);
  CHECK(embr_image_read(th_path("a.pnm"), &back) == 0 && same_pixels(&rgb, &back));
  embr_image_free(&back);
  size_t len;
  unsigned char *raw = slurp(th_path("a.pgm"), &len);
  CHECK(raw && len == strlen("P5\n13 7\n255\n") + 13 * 7 && memcmp(raw, "P5\n13 7\n255\n", 12) == 0);
  free(raw);
  /* The extension must suit the channels; JPEG is not written; nothing is left behind. */
  CHECK(embr_image_write(th_path("bad.pgm"), &rgb) == EMBR_EINVAL);
  CHECK(embr_image_write(th_path("bad.ppm"), &g) == EMBR_EINVAL);
  CHECK(embr_image_write(th_path("bad.jpg"), &g) == EMBR_EUNSUPPORTED);
  CHECK(access(th_path("bad.pgm"), F_OK) != 0 && access(th_path("bad.jpg"), F_OK) != 0);
  embr_image bad = {0, 3, 1, g.px, NULL};
  CHECK(embr_image_write(th_path("bad.png"), &bad) == EMBR_EINVAL);
  CHECK(embr_image_write(th_path("nodir/x.png"), &g) == EMBR_EIO);
  CHECK(!count_tmp_files());
  free_test_image(&g);
  free_test_image(&rgb);
}

static void check_decode(const char *text, size_t len, int w, int h, int c, const uint8_t *expect) {
  embr_image im;
  int rc = embr_image_decode((const unsigned char *)text, len, "fixture", &im);
  CHECK_MSG(rc == 0, "%s", embr_last_error());
  if (rc) return;
  CHECK(im.width == w && im.height == h && im.channels == c);
  CHECK(memcmp(im.px, expect, (size_t)w * h * c) == 0);
  embr_image_free(&im);
}

static void test_pnm_variants(void) {
  const char *p2 = "P2\n# a comment\n3 2 # trailing comment\n15\n0 15 7\n  8\t1 15\n";
  const uint8_t e2[] = {0, 255, 119, 136, 17, 255};
  check_decode(p2, strlen(p2), 3, 2, 1, e2);
  const char *p3 = "P3 2 1 255 1 2 3 250 251 252";
  const uint8_t e3[] = {1, 2, 3, 250, 251, 252};
  check_decode(p3, strlen(p3), 2, 1, 3, e3);
  const char p5[] = "P5\n#c\n2 1\n65535\n\xff\xff\x80\x00";
  const uint8_t e5[] = {255, 128}; /* 0x8000 * 255 / 65535 = 127.5...: rounds to 128 */
  check_decode(p5, sizeof p5 - 1, 2, 1, 1, e5);
  const char p6[] = "P6 1 1 1000\n\x03\xe8\x00\x00\x01\xf4";
  const uint8_t e6[] = {255, 0, 128};
  check_decode(p6, sizeof p6 - 1, 1, 1, 3, e6);
  /* Trailing data after the pixels (a second image) is ignored. */
  const char p5b[] = "P5 1 1 255\n\x07P5 1 1 255\n\x08";
  const uint8_t e5b[] = {7};
  check_decode(p5b, sizeof p5b - 1, 1, 1, 1, e5b);
}

static void test_png_variants(void) {
  const int w = 5, h = 3;
  unsigned char d16[5 * 3 * 6], d8a[5 * 3 * 4], dga[5 * 3 * 2], dpal[5 * 3], d1[3] = {0xa8, 0x50, 0xf8};
  uint8_t e_rgb[5 * 3 * 3], e_grey[5 * 3], e_pal[5 * 3 * 3], e1[5 * 3];
  png_color pal[4] = {{10, 20, 30}, {40, 50, 60}, {70, 80, 90}, {200, 210, 220}};
  png_byte trns[2] = {0, 128};
  for (int i = 0; i < w * h; i++) {
    for (int ch = 0; ch < 3; ch++) {
      uint8_t v = (uint8_t)(i * 17 + ch * 50);
      e_rgb[3 * i + ch] = v;
      d16[6 * i + 2 * ch] = d16[6 * i + 2 * ch + 1] = v; /* v * 257: exactly v after scaling */
      d8a[4 * i + ch] = v;
    }
    d8a[4 * i + 3] = (uint8_t)(i * 3);
    e_grey[i] = dga[2 * i] = (uint8_t)(255 - i * 9);
    dga[2 * i + 1] = 7;
    dpal[i] = (uint8_t)(i % 4);
    memcpy(e_pal + 3 * i, &pal[i % 4], 3);
  }
  /* 1-bit grey rows 10101, 01010, 11111 (packed, MSB first). */
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) e1[y * w + x] = (d1[y] >> (7 - x) & 1) ? 255 : 0;
  struct {
    membuf m;
    int c;
    const uint8_t *e;
  } cases[] = {
      {png_encode(w, h, 16, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, d16, 30, NULL, 0, NULL, 0), 3, e_rgb},
      {png_encode(w, h, 8, PNG_COLOR_TYPE_RGBA, PNG_INTERLACE_NONE, d8a, 20, NULL, 0, NULL, 0), 3, e_rgb},
      {png_encode(w, h, 8, PNG_COLOR_TYPE_RGBA, PNG_INTERLACE_ADAM7, d8a, 20, NULL, 0, NULL, 0), 3, e_rgb},
      {png_encode(w, h, 8, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_INTERLACE_NONE, dga, 10, NULL, 0, NULL, 0), 1, e_grey},
      {png_encode(w, h, 8, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE, dpal, 5, pal, 4, trns, 2), 3, e_pal},
      {png_encode(w, h, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, d1, 1, NULL, 0, NULL, 0), 1, e1},
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    embr_image im;
    int rc = embr_image_decode(cases[k].m.p, cases[k].m.n, "variant.png", &im);
    CHECK_MSG(rc == 0, "case %zu: %s", k, embr_last_error());
    if (!rc) {
      CHECK(im.width == w && im.height == h && im.channels == cases[k].c);
      CHECK_MSG(memcmp(im.px, cases[k].e, (size_t)w * h * cases[k].c) == 0, "case %zu pixels", k);
    }
    embr_image_free(&im);
    free(cases[k].m.p);
  }
}

static void jpeg_compare(const embr_image *orig, const embr_image *dec, double mean_tol, int max_tol) {
  REQUIRE(dec->width == orig->width && dec->height == orig->height && dec->channels == orig->channels);
  size_t n = (size_t)orig->width * orig->height * orig->channels;
  double sum = 0;
  int worst = 0;
  for (size_t i = 0; i < n; i++) {
    int d = abs((int)orig->px[i] - (int)dec->px[i]);
    sum += d;
    if (d > worst) worst = d;
  }
  CHECK_MSG(sum / n <= mean_tol && worst <= max_tol, "mean %.3f max %d", sum / n, worst);
}

static void test_jpeg_decode(void) {
  for (int c = 1; c <= 3; c += 2)
    for (int prog = 0; prog <= 1; prog++) {
      embr_image im = make_smooth(37, 21, c), dec;
      size_t len;
      unsigned char *buf = jpeg_encode(&im, 95, prog, &len);
      int rc = embr_image_decode(buf, len, "t.jpg", &dec);
      CHECK_MSG(rc == 0, "%s", embr_last_error());
      if (!rc) jpeg_compare(&im, &dec, 2.0, 12);
      embr_image_free(&dec);
      th_write_file(th_path("t.jpeg"), buf, len);
      CHECK(embr_image_read(th_path("t.jpeg"), &dec) == 0);
      if (dec.px) jpeg_compare(&im, &dec, 2.0, 12);
      embr_image_free(&dec);
      free(buf);
      free_test_image(&im);
    }
}

/* ---- hostile inputs ---------------------------------------------------------------------------------- */

/* Decoding must fail with `want` (0: any error), a message naming the input, and an empty output. */
static void expect_fail(const unsigned char *buf, size_t len, int want, const char *what) {
  embr_image im = {1, 1, 1, NULL, NULL};
  int rc = embr_image_decode(buf, len, "hostile.img", &im);
  CHECK_MSG(rc < 0 && (want == 0 || rc == want), "%s: rc %d (%s)", what, rc, embr_last_error());
  CHECK_MSG(starts_with(embr_last_error(), "hostile.img: ") && !strchr(embr_last_error(), '\n'), "%s: %s", what,
            embr_last_error());
  CHECK(im.px == NULL && im.width == 0);
  embr_image_free(&im);
}

/* Every prefix shorter than `keep` bytes fails with EFORMAT. */
static void check_truncations(const unsigned char *buf, size_t len, size_t keep, const char *what) {
  char label[64];
  for (size_t n = 0; n + keep <= len; n++) {
    snprintf(label, sizeof label, "%s cut at %zu", what, n);
    expect_fail(buf, n, EMBR_EFORMAT, label);
  }
}

/* Random byte changes: decoding may succeed or fail but must stay in bounds (ASan watches). */
static void check_mutations(const unsigned char *buf, size_t len, int rounds) {
  unsigned char *m = malloc(len);
  embr_rng r;
  embr_rng_seed(&r, 99);
  for (int k = 0; k < rounds; k++) {
    memcpy(m, buf, len);
    int flips = 1 + (int)embr_rng_below(&r, 4);
    for (int f = 0; f < flips; f++) m[embr_rng_below(&r, len)] = (uint8_t)embr_rng_next(&r);
    embr_image im;
    int rc = embr_image_decode(m, len, "mutant", &im);
    if (rc == 0) CHECK(im.px && im.width >= 1 && im.height >= 1 && (im.channels == 1 || im.channels == 3));
    else CHECK(starts_with(embr_last_error(), "mutant: ") && im.px == NULL);
    embr_image_free(&im);
  }
  free(m);
}

static void set_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

/* Rewrites the IHDR size of a PNG (and its CRC) to claim w x h. */
static void png_patch_size(unsigned char *p, uint32_t w, uint32_t h) {
  set_be32(p + 16, w);
  set_be32(p + 20, h);
  set_be32(p + 29, (uint32_t)crc32(0, p + 12, 17));
}

static void test_corrupt_png(void) {
  embr_image im = make_image(9, 6, 3, 5);
  REQUIRE(embr_image_write(th_path("c.png"), &im) == 0);
  size_t len;
  unsigned char *buf = slurp(th_path("c.png"), &len);
  check_truncations(buf, len, 12 + 1, "png"); /* only the IEND chunk may be missing */
  check_mutations(buf, len, 300);
  unsigned char *big = malloc(len);
  memcpy(big, buf, len);
  png_patch_size(big, 16384, 16384);
  expect_fail(big, len, EMBR_EFORMAT, "png claiming 16384^2");
  png_patch_size(big, 16385, 2);
  expect_fail(big, len, EMBR_EFORMAT, "png wider than the limit");
  png_patch_size(big, 0x7fffffff, 0x7fffffff);
  expect_fail(big, len, EMBR_EFORMAT, "png of 2^31 a side");
  free(big);
  free(buf);
  free_test_image(&im);
}

/* Offset of the SOF0/SOF2 marker's height field in a JPEG. */
static size_t jpeg_sof(const unsigned char *p, size_t len) {
  for (size_t i = 2; i + 9 < len; i++)
    if (p[i] == 0xff && (p[i + 1] == 0xc0 || p[i + 1] == 0xc2)) return i + 5;
  return 0;
}

static void test_corrupt_jpeg(void) {
  for (int prog = 0; prog <= 1; prog++) {
    embr_image im = make_smooth(24, 16, 3);
    size_t len;
    unsigned char *buf = jpeg_encode(&im, 80, prog, &len);
    check_truncations(buf, len, 3, prog ? "progressive jpeg" : "jpeg"); /* EOI may be missing */
    check_mutations(buf, len, 300);
    size_t sof = jpeg_sof(buf, len);
    REQUIRE(sof > 0);
    buf[sof] = buf[sof + 1] = buf[sof + 2] = buf[sof + 3] = 0x40; /* 16448 x 16448 */
    expect_fail(buf, len, EMBR_EFORMAT, "jpeg above the side limit");
    buf[sof] = buf[sof + 2] = 0x40;
    buf[sof + 1] = buf[sof + 3] = 0x00; /* 16384 x 16384 from a few hundred bytes */
    expect_fail(buf, len, EMBR_EFORMAT, "jpeg claiming 16384^2");
    free(buf);
    free_test_image(&im);
  }
}

/* ---- hostile PNG chunks, many-scan and corrupt JPEGs, EXIF orientation, CMYK ------------------- */

/* A 45-byte PNG: signature, a 1x1 IHDR, then a chunk of `type` claiming 2 GiB. libpng used to
 * allocate (and zero) the claimed length before reading it; the decoder must refuse the file
 * without its peak memory growing by more than a few MB. */
static void test_png_chunk_bomb(void) {
  static const char *types[] = {"tEXt", "zTXt", "iTXt", "sPLT", "iCCP", "pCAL", "sCAL", "eXIf", "abCd"};
  for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
    unsigned char b[45] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    set_be32(b + 8, 13);
    memcpy(b + 12, "IHDR", 4);
    set_be32(b + 16, 1);
    set_be32(b + 20, 1);
    b[24] = 8; /* depth 8, grey, no interlace */
    set_be32(b + 29, (uint32_t)crc32(0, b + 12, 17));
    set_be32(b + 33, 0x7ffffff0u);
    memcpy(b + 37, types[t], 4);
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    embr_image im;
    int rc = embr_image_decode(b, sizeof b, "bomb.png", &im);
    getrusage(RUSAGE_SELF, &r1);
    CHECK_MSG(rc == EMBR_EFORMAT && starts_with(embr_last_error(), "bomb.png: "), "%s: rc %d", types[t], rc);
    CHECK_MSG(r1.ru_maxrss - r0.ru_maxrss < 64 * 1024, "%s chunk: peak memory grew by %ld KB", types[t],
              r1.ru_maxrss - r0.ru_maxrss);
  }
}

/* A progressive JPEG with a scan per coefficient band and successive-approximation bit (a valid
 * script of 1 + 3 x 63 x 4 = 757 scans), written by libjpeg. */
/* A progressive JPEG with a scan per coefficient band and successive-approximation bit (a valid
 * script of 1 + 3 x 63 x 4 = 757 scans), written by libjpeg. */
static unsigned char *jpeg_encode_many_scans(const embr_image *im, int *nscans, size_t *len) {
  static jpeg_scan_info scans[1 + 3 * 63 * 4];
  int n = 0;
  scans[n++] = (jpeg_scan_info){3, {0, 1, 2}, 0, 0, 0, 0};
  for (int c = 0; c < 3; c++)
    for (int k = 1; k < 64; k++)
      for (int al = 3; al >= 0; al--)
        scans[n++] = (jpeg_scan_info){1, {c}, k, k, al == 3 ? 0 : al + 1, al};
  jpeg_opts o = {JCS_UNKNOWN, 1, scans, n};
  *nscans = n;
  return jpeg_encode_px(im->px, im->width, im->height, 3, 90, 1, &o, len);
}

/* The decoder bounds its work (scans x blocks), not the scan count alone: 757 scans are fine on a
 * small image and refused on a 512 x 512 one, where libjpeg's ordinary 10-scan progression is fine. */
static void test_jpeg_many_scans(void) {
  int n;
  size_t len;
  embr_image small = make_smooth(16, 16, 3), big = make_smooth(512, 512, 3), dec;
  unsigned char *buf = jpeg_encode_many_scans(&small, &n, &len);
  CHECK_EQ_INT(n, 757);
  CHECK_EQ_INT(embr_image_decode(buf, len, "small.jpg", &dec), 0);
  if (dec.px) jpeg_compare(&small, &dec, 2.0, 12);
  embr_image_free(&dec);
  free(buf);
  buf = jpeg_encode_many_scans(&big, &n, &len);
  CHECK_EQ_INT(embr_image_decode(buf, len, "scans.jpg", &dec), EMBR_EFORMAT);
  CHECK(starts_with(embr_last_error(), "scans.jpg: JPEG: too many progressive scans for the image size"));
  CHECK(dec.px == NULL);
  free(buf);
  buf = jpeg_encode(&big, 90, 1, &len);
  CHECK_EQ_INT(embr_image_decode(buf, len, "prog.jpg", &dec), 0);
  embr_image_free(&dec);
  free(buf);
  free_test_image(&small);
  free_test_image(&big);
}

/* Damaged entropy-coded data is an error naming the file, not a grey-filled image. */
static void test_jpeg_corrupt_data(void) {
  embr_image im = make_smooth(64, 64, 3), dec;
  for (int prog = 0; prog <= 1; prog++) {
    size_t len;
    unsigned char *buf = jpeg_encode(&im, 90, prog, &len);
    size_t sos = 0;
    for (size_t i = 2; i + 1 < len && !sos; i++)
      if (buf[i] == 0xff && buf[i + 1] == 0xda) sos = i;
    REQUIRE(sos > 0);
    size_t mid = sos + (len - sos) / 3;
    buf[mid] = 0xff, buf[mid + 1] = 0xd9; /* an end-of-image marker in the middle of the data */
    CHECK_EQ_INT(embr_image_decode(buf, len, "broken.jpg", &dec), EMBR_EFORMAT);
    const char *msg = embr_last_error();
    CHECK_MSG(starts_with(msg, "broken.jpg: JPEG: ") && !strchr(msg, '\n'), "%s", msg);
    CHECK(dec.px == NULL);
    free(buf);
  }
  free_test_image(&im);
}

/* 24 x 16 grey: six flat 8x8 blocks A B C / D E F, exact through a quality-100 JPEG. */
static const uint8_t grid_vals[6] = {20, 60, 100, 140, 180, 220};

/* A JPEG of the grid with an Exif APP1 (byte order `mm`) recording `orientation` after SOI. */
static unsigned char *jpeg_with_exif(int orientation, int mm, size_t *len) {
  embr_image g = {24, 16, 1, malloc(24 * 16), NULL};
  for (int y = 0; y < 16; y++)
    for (int x = 0; x < 24; x++) g.px[y * 24 + x] = grid_vals[(y / 8) * 3 + x / 8];
  size_t n;
  unsigned char *j = jpeg_encode(&g, 100, 0, &n);
  free(g.px);
  unsigned char app1[4 + 6 + 8 + 2 + 12 + 4] = {0xff, 0xe1, 0, sizeof app1 - 2, 'E', 'x', 'i', 'f', 0, 0};
  unsigned char *t = app1 + 10, *e = t + 10;
  memcpy(t, mm ? "MM\0\x2a\0\0\0\x08" : "II\x2a\0\x08\0\0\0", 8);
  t[mm ? 9 : 8] = 1; /* one entry */
  e[mm ? 1 : 0] = 0x12, e[mm ? 0 : 1] = 0x01;  /* tag 0x0112 */
  e[mm ? 3 : 2] = 3;                            /* SHORT */
  e[mm ? 7 : 4] = 1;                            /* count 1 */
  e[mm ? 9 : 8] = (unsigned char)orientation;   /* value */
  unsigned char *out = malloc(n + sizeof app1);
  memcpy(out, j, 2);
  memcpy(out + 2, app1, sizeof app1);
  memcpy(out + 2 + sizeof app1, j + 2, n - 2);
  free(j);
  *len = n + sizeof app1;
  return out;
}

/* Each orientation gives the grid Pillow's exif_transpose gives, written out by hand. */
static void test_jpeg_exif_orientation(void) {
  static const struct {
    int w, h;
    const char *cells; /* row-major, in blocks */
  } want[9] = {{0, 0, ""},        {3, 2, "ABCDEF"}, {3, 2, "CBAFED"}, {3, 2, "FEDCBA"}, {3, 2, "DEFABC"},
               {2, 3, "ADBECF"}, {2, 3, "DAEBFC"}, {2, 3, "FCEBDA"}, {2, 3, "CFBEAD"}};
  for (int o = 1; o <= 8; o++) {
    size_t len;
    unsigned char *buf = jpeg_with_exif(o, o % 2, &len);
    embr_image im;
    REQUIRE(embr_image_decode(buf, len, "exif.jpg", &im) == 0);
    CHECK_MSG(im.width == want[o].w * 8 && im.height == want[o].h * 8, "orientation %d: %dx%d", o, im.width, im.height);
    for (int by = 0; by < want[o].h && im.width == want[o].w * 8; by++)
      for (int bx = 0; bx < want[o].w; bx++) {
        int v = grid_vals[want[o].cells[by * want[o].w + bx] - 'A'];
        for (int y = by * 8; y < by * 8 + 8; y++)
          for (int x = bx * 8; x < bx * 8 + 8; x++)
            CHECK_MSG(abs(im.px[y * im.width + x] - v) <= 2, "orientation %d pixel (%d,%d) = %d, want %d", o, x, y,
                      im.px[y * im.width + x], v);
      }
    embr_image_free(&im);
    free(buf);
  }
  /* Hostile Exif blocks mean "as stored", never an error or a read out of bounds. */
  size_t len;
  unsigned char *buf = jpeg_with_exif(6, 1, &len);
  const size_t tiff = 2 + 10, entry = tiff + 10;
  const struct {
    size_t at;
    unsigned char v;
  } pokes[] = {{tiff + 7, 0xf0}, {tiff + 4, 0xff}, {tiff + 9, 0}, {entry + 3, 4}, {entry + 7, 2}, {entry + 9, 9}, {tiff, 'X'}};
  for (size_t i = 0; i < sizeof pokes / sizeof pokes[0]; i++) {
    unsigned char *m = malloc(len);
    memcpy(m, buf, len);
    m[pokes[i].at] = pokes[i].v;
    embr_image im;
    CHECK_EQ_INT(embr_image_decode(m, len, "exif.jpg", &im), 0);
    CHECK_MSG(im.width == 24 && im.height == 16, "poke %zu: %dx%d", i, im.width, im.height);
    embr_image_free(&im);
    free(m);
  }
  free(buf);
}

/* CMYK and YCCK JPEGs (libjpeg writes Adobe's marker for both) decode to RGB as Pillow's
 * Image.open(...).convert("RGB"): the stored values read as inverted CMYK, then
 * R = (255 - K) * (1 - C / 255), each rounded. */
static void test_jpeg_cmyk(void) {
  static const uint8_t cmyk[4] = {30, 200, 90, 200}; /* the bytes given to the encoder */
  double k = 255 - (255 - cmyk[3]);                  /* 255 - K after inversion */
  int want[3];
  for (int c = 0; c < 3; c++) want[c] = (int)lround(k - (255.0 - cmyk[c]) * k / 255.0);
  for (int ycck = 0; ycck <= 1; ycck++) {
    unsigned char px[16 * 16 * 4];
    for (int i = 0; i < 16 * 16; i++) memcpy(px + 4 * i, cmyk, 4);
    jpeg_opts o = {ycck ? JCS_YCCK : JCS_CMYK, 0, NULL, 0};
    size_t n;
    unsigned char *buf = jpeg_encode_px(px, 16, 16, 4, 100, 0, &o, &n);
    embr_image im;
    REQUIRE(embr_image_decode(buf, n, "cmyk.jpg", &im) == 0);
    CHECK(im.width == 16 && im.height == 16 && im.channels == 3);
    for (int i = 0; i < 16 * 16 && im.channels == 3; i++)
      for (int c = 0; c < 3; c++)
        CHECK_MSG(abs(im.px[3 * i + c] - want[c]) <= 3, "%s pixel %d channel %d: %d, want %d", ycck ? "YCCK" : "CMYK", i,
                  c, im.px[3 * i + c], want[c]);
    embr_image_free(&im);
    free(buf);
  }
}

static void test_corrupt_pnm(void) {
  embr_image g = make_image(4, 3, 1, 7), rgb = make_image(3, 2, 3, 8);
  REQUIRE(embr_image_write(th_path("c.pgm"), &g) == 0 && embr_image_write(th_path("c.ppm"), &rgb) == 0);
  size_t len;
  unsigned char *buf = slurp(th_path("c.pgm"), &len);
  check_truncations(buf, len, 1, "pgm");
  check_mutations(buf, len, 200);
  free(buf);
  buf = slurp(th_path("c.ppm"), &len);
  check_truncations(buf, len, 1, "ppm");
  free(buf);
  static const struct {
    const char *text;
    int rc;
  } bad[] = {
      {"", EMBR_EFORMAT},
      {"hello world", EMBR_EFORMAT},
      {"P4\n1 1\n\x80", EMBR_EUNSUPPORTED},
      {"P7\nWIDTH 1\n", EMBR_EUNSUPPORTED},
      {"P5\n100000 100000\n255\n", EMBR_EFORMAT},
      {"P6\n16384 16384\n255\nabc", EMBR_EFORMAT},
      {"P5\n0 5\n255\n", EMBR_EFORMAT},
      {"P5\n99999999999999999999 1\n255\n", EMBR_EFORMAT},
      {"P5\n1 1\n0\n\x00", EMBR_EFORMAT},
      {"P5\n1 1\n70000\n\x00\x00", EMBR_EFORMAT},
      {"P5\n2 1\n100\n\x10\xc8", EMBR_EFORMAT}, /* 200 > maxval */
      {"P2\n2 1\n100\n5 101\n", EMBR_EFORMAT},
      {"P2\n2 2\n255\n1 2 3\n", EMBR_EFORMAT},
      {"P2\n2 1\n255\n1 x\n", EMBR_EFORMAT},
      {"P3\n16384 16384 255\n1 2 3\n", EMBR_EFORMAT},
      {"P5 x 1 255\n", EMBR_EFORMAT},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    expect_fail((const unsigned char *)bad[i].text, strlen(bad[i].text) + (i == 8 || i == 9 ? 1 : 0), bad[i].rc,
                bad[i].text);
  embr_image im;
  CHECK(embr_image_read(th_path("missing.png"), &im) == EMBR_ENOTFOUND && im.px == NULL);
  CHECK(embr_image_read(th_scratch(), &im) == EMBR_EIO);
  free_test_image(&g);
  free_test_image(&rgb);
}

/* ---- resizing ------------------------------------------------------------------------------------------ */

static double ref_kernel(int mode, double x) {
  x = fabs(x);
  if (mode == EMBR_RESIZE_BILINEAR) return x < 1 ? 1 - x : 0;
  const double a = -0.5;
  if (x < 1) return (a + 2) * x * x * x - (a + 3) * x * x + 1;
  if (x < 2) return a * x * x * x - 5 * a * x * x + 8 * a * x - 4 * a;
  return 0;
}

/* Weights of every input index for output index o: the kernel at the pixel-centre distance,
 * stretched by the scale when shrinking, normalised to sum 1. */
static void ref_weights(int mode, int in, int out, int o, double *w) {
  double scale = (double)in / out, stretch = scale > 1 ? scale : 1, centre = (o + 0.5) * scale, sum = 0;
  for (int i = 0; i < in; i++) sum += w[i] = ref_kernel(mode, (i + 0.5 - centre) / stretch);
  for (int i = 0; i < in; i++) w[i] /= sum;
}

/* Every output pixel straight from every input pixel, in double. */
static uint8_t ref_byte(double v) {
  v = floor(v + 0.5);
  return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Pillow's two passes, in doubles: horizontal into an 8-bit image (rounded and clipped, as
 * Pillow's intermediate image is), then vertical. */
static embr_image ref_resize(const embr_image *in, int ow, int oh, int mode) {
  int c = in->channels;
  embr_image out = {ow, oh, c, malloc((size_t)ow * oh * c), NULL};
  uint8_t *mid = malloc((size_t)ow * in->height * c);
  double *wx = malloc(sizeof(double) * in->width), *wy = malloc(sizeof(double) * in->height);
  for (int x = 0; x < ow; x++) {
    ref_weights(mode, in->width, ow, x, wx);
    for (int j = 0; j < in->height; j++)
      for (int ch = 0; ch < c; ch++) {
        double v = 0;
        for (int i = 0; i < in->width; i++) v += wx[i] * in->px[((size_t)j * in->width + i) * c + ch];
        mid[((size_t)j * ow + x) * c + ch] = ref_byte(v);
      }
  }
  for (int y = 0; y < oh; y++) {
    ref_weights(mode, in->height, oh, y, wy);
    for (int x = 0; x < ow; x++)
      for (int ch = 0; ch < c; ch++) {
        double v = 0;
        for (int j = 0; j < in->height; j++) v += wy[j] * mid[((size_t)j * ow + x) * c + ch];
        out.px[((size_t)y * ow + x) * c + ch] = ref_byte(v);
      }
  }
  free(mid);
  free(wx);
  free(wy);
  return out;
}

static void test_resize_reference(void) {
  static const int cases[][4] = {{5, 7, 13, 3}, {20, 20, 7, 9}, {9, 4, 9, 11}, {3, 3, 1, 1}, {1, 1, 4, 2},
                                 {64, 48, 17, 31}, {10, 3, 31, 3}, {2, 9, 5, 2}};
  for (int mode = 0; mode <= 1; mode++)
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++)
      for (int c = 1; c <= 3; c += 2) {
        embr_image in = make_image(cases[k][0], cases[k][1], c, k * 7 + (uint64_t)c), out;
        REQUIRE(embr_image_resize(&in, cases[k][2], cases[k][3], (embr_resize)mode, &out) == 0);
        embr_image ref = ref_resize(&in, cases[k][2], cases[k][3], mode);
        int worst = 0;
        for (size_t i = 0; i < (size_t)ref.width * ref.height * c; i++) {
          int d = abs((int)ref.px[i] - (int)out.px[i]);
          if (d > worst) worst = d;
        }
        CHECK_MSG(out.width == ref.width && out.height == ref.height && worst <= 1,
                  "mode %d %dx%d -> %dx%d c%d: worst %d", mode, in.width, in.height, ref.width, ref.height, c, worst);
        embr_image_free(&out);
        free_test_image(&ref);
        free_test_image(&in);
      }
}

static void test_resize_hand(void) {
  uint8_t px[4] = {0, 80, 160, 240};
  embr_image in = {2, 2, 1, px, NULL}, out;
  REQUIRE(embr_image_resize(&in, 4, 4, EMBR_RESIZE_BILINEAR, &out) == 0);
  /* Output centres map to input x = -0.25, 0.25, 0.75, 1.25: clamped, then weights 1, .75/.25,
   * .25/.75, 1 along each axis. */
  const uint8_t want[16] = {0, 20, 60, 80, 40, 60, 100, 120, 120, 140, 180, 200, 160, 180, 220, 240};
  CHECK(memcmp(out.px, want, 16) == 0);
  embr_image_free(&out);
  /* A constant image stays constant, bicubic overshoot or not. */
  uint8_t flat[12];
  memset(flat, 77, sizeof flat);
  embr_image f = {2, 2, 3, flat, NULL};
  REQUIRE(embr_image_resize(&f, 5, 3, EMBR_RESIZE_BICUBIC, &out) == 0);
  for (int i = 0; i < 5 * 3 * 3; i++) CHECK(out.px[i] == 77);
  embr_image_free(&out);
  CHECK(embr_image_resize(&f, 0, 3, EMBR_RESIZE_BILINEAR, &out) == EMBR_EINVAL && out.px == NULL);
  CHECK(embr_image_resize(&f, 3, 3, (embr_resize)7, &out) == EMBR_EINVAL);
}

static void test_resize_identity(void) {
  for (int mode = 0; mode <= 1; mode++) {
    embr_image in = make_image(11, 6, 3, 3), out;
    REQUIRE(embr_image_resize(&in, 11, 6, (embr_resize)mode, &out) == 0);
    CHECK(same_pixels(&in, &out));
    embr_image_free(&out);
    free_test_image(&in);
  }
}

/* ---- tensors and augmentation ---------------------------------------------------------------------------- */

static void test_to_tensor(void) {
  embr_image g = make_image(4, 3, 1, 21), rgb = make_image(4, 3, 3, 22);
  embr_image_spec s = embr_image_spec_default();
  CHECK(s.channels == 3 && s.width == 112 && s.height == 112 && s.mean[1] == 0.5f && s.std[2] == 0.5f &&
        s.resize == EMBR_RESIZE_BILINEAR);
  s.width = 4;
  s.height = 3;
  float mean[3] = {0.1f, 0.2f, 0.3f}, sd[3] = {0.5f, 0.25f, 2.0f};
  memcpy(s.mean, mean, sizeof mean);
  memcpy(s.std, sd, sizeof sd);
  float t[3 * 12];
  REQUIRE(embr_image_to_tensor(&g, &s, t) == 0); /* grey replicated to 3 channels */
  for (int c = 0; c < 3; c++)
    for (int i = 0; i < 12; i++) CHECK_NEAR(t[c * 12 + i], (g.px[i] / 255.0 - mean[c]) / sd[c], 1e-5);
  REQUIRE(embr_image_to_tensor(&rgb, &s, t) == 0); /* HWC to CHW */
  for (int c = 0; c < 3; c++)
    for (int i = 0; i < 12; i++) CHECK_NEAR(t[c * 12 + i], (rgb.px[3 * i + c] / 255.0 - mean[c]) / sd[c], 1e-5);
  s.channels = 1;
  REQUIRE(embr_image_to_tensor(&rgb, &s, t) == 0); /* RGB to luma */
  for (int i = 0; i < 12; i++) {
    double l = 0.299 * rgb.px[3 * i] + 0.587 * rgb.px[3 * i + 1] + 0.114 * rgb.px[3 * i + 2];
    CHECK_NEAR(t[i], (l / 255.0 - mean[0]) / sd[0], 1e-5);
  }
  /* A different size: the same as resizing first. */
  s.channels = 3;
  s.width = 7;
  s.height = 5;
  float t2[3 * 35];
  embr_image r;
  REQUIRE(embr_image_to_tensor(&rgb, &s, t2) == 0);
  REQUIRE(embr_image_resize(&rgb, 7, 5, EMBR_RESIZE_BILINEAR, &r) == 0);
  for (int c = 0; c < 3; c++)
    for (int i = 0; i < 35; i++) CHECK_NEAR(t2[c * 35 + i], (r.px[3 * i + c] / 255.0 - mean[c]) / sd[c], 1e-5);
  embr_image_free(&r);
  s.std[1] = 0;
  CHECK(embr_image_to_tensor(&rgb, &s, t2) == EMBR_EINVAL);
  s.std[1] = 1;
  s.channels = 2;
  CHECK(embr_image_to_tensor(&rgb, &s, t2) == EMBR_EINVAL);
  free_test_image(&g);
  free_test_image(&rgb);
}

/* PNG alpha: RGBA, grey + alpha and a palette's tRNS come back in `alpha`, the colour as stored;
 * files without alpha have none. */
static void test_png_alpha(void) {
  const int w = 5, h = 3;
  unsigned char d8a[5 * 3 * 4], dga[5 * 3 * 2], dpal[5 * 3], drgb[5 * 3 * 3];
  uint8_t a_rgba[15], a_ga[15], a_pal[15];
  png_color pal[4] = {{10, 20, 30}, {40, 50, 60}, {70, 80, 90}, {200, 210, 220}};
  png_byte trns[2] = {0, 128};
  for (int i = 0; i < w * h; i++) {
    for (int ch = 0; ch < 3; ch++) drgb[3 * i + ch] = d8a[4 * i + ch] = (uint8_t)(i * 17 + ch * 50);
    a_rgba[i] = d8a[4 * i + 3] = (uint8_t)(i * 18);
    dga[2 * i] = (uint8_t)(255 - i * 9);
    a_ga[i] = dga[2 * i + 1] = (uint8_t)(255 - i * 5);
    dpal[i] = (uint8_t)(i % 4);
    a_pal[i] = i % 4 < 2 ? trns[i % 4] : 255;
  }
  struct {
    membuf m;
    const uint8_t *alpha;
  } cases[] = {
      {png_encode(w, h, 8, PNG_COLOR_TYPE_RGBA, PNG_INTERLACE_ADAM7, d8a, 20, NULL, 0, NULL, 0), a_rgba},
      {png_encode(w, h, 8, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_INTERLACE_NONE, dga, 10, NULL, 0, NULL, 0), a_ga},
      {png_encode(w, h, 8, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE, dpal, 5, pal, 4, trns, 2), a_pal},
      {png_encode(w, h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, drgb, 15, NULL, 0, NULL, 0), NULL},
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    embr_image im;
    int rc = embr_image_decode(cases[k].m.p, cases[k].m.n, "alpha.png", &im);
    CHECK_MSG(rc == 0, "case %zu: %s", k, embr_last_error());
    if (!rc && cases[k].alpha) CHECK_MSG(im.alpha && memcmp(im.alpha, cases[k].alpha, 15) == 0, "case %zu alpha", k);
    if (!rc && !cases[k].alpha) CHECK(im.alpha == NULL);
    /* Resizing and writing give images without alpha (the colour as stored). */
    embr_image r;
    if (!rc && embr_image_resize(&im, 2, 2, EMBR_RESIZE_BICUBIC, &r) == 0) {
      CHECK(r.alpha == NULL);
      embr_image_free(&r);
    }
    embr_image_free(&im);
    CHECK(im.alpha == NULL && im.px == NULL);
    free(cases[k].m.p);
  }
}

/* Compositing on white, exactly as Pillow's paste with a mask rounds it, for every (value, alpha);
 * EMBR_ALPHA_IGNORE and images without alpha use the colour as stored. */
static void test_alpha_white(void) {
  uint8_t *px = malloc(256 * 256), *al = malloc(256 * 256);
  for (int v = 0; v < 256; v++)
    for (int a = 0; a < 256; a++) px[v * 256 + a] = (uint8_t)v, al[v * 256 + a] = (uint8_t)a;
  embr_image im = {256, 256, 1, px, al};
  embr_image_spec s = embr_image_spec_default();
  s.channels = 1, s.width = s.height = 256, s.mean[0] = 0.0f, s.std[0] = 1.0f;
  float *t = malloc(sizeof(float) * 256 * 256);
  int bad = 0;
  s.alpha = EMBR_ALPHA_WHITE;
  REQUIRE(embr_image_to_tensor(&im, &s, t) == 0);
  for (int i = 0; i < 256 * 256; i++) {
    long want = lround((px[i] * al[i] + 255.0 * (255 - al[i])) / 255.0);
    bad += lround(t[i] * 255.0f) != want;
  }
  CHECK_MSG(bad == 0, "%d of 65536 composites differ", bad);
  s.alpha = EMBR_ALPHA_IGNORE;
  REQUIRE(embr_image_to_tensor(&im, &s, t) == 0);
  bad = 0;
  for (int i = 0; i < 256 * 256; i++) bad += lround(t[i] * 255.0f) != px[i];
  CHECK(bad == 0);
  s.alpha = (embr_alpha)2;
  CHECK(embr_image_to_tensor(&im, &s, t) == EMBR_EINVAL && strstr(embr_last_error(), "alpha"));
  free(t);
  free(px);
  free(al);
}

/* The centre crop's offsets: images already of the resized size (no resampling), rows and columns
 * numbered in their pixels, so the tensor shows where the window starts. (h - 24) / 2 = 0.5, 1.5,
 * 2.5, 3.5 round (Python, halves to even) to 0, 2, 2, 4. */
static void test_center_crop(void) {
  static const int sides[][2] = {{25, 0}, {27, 2}, {29, 2}, {31, 4}, {24, 0}};
  embr_image_spec s = embr_image_spec_clip(24);
  CHECK(s.channels == 3 && s.width == 24 && s.height == 24 && s.resize == EMBR_RESIZE_BICUBIC &&
        s.crop == EMBR_CROP_CENTER && s.alpha == EMBR_ALPHA_WHITE && s.short_side == 0);
  CHECK(s.mean[0] == 0.48145466f && s.mean[2] == 0.40821073f && s.std[1] == 0.26130258f && s.std[2] == 0.27577711f);
  s.channels = 1, s.mean[0] = 0.0f, s.std[0] = 1.0f / 255.0f; /* the tensor holds the pixel values */
  float t[24 * 24];
  for (int k = 0; k < 5; k++) {
    for (int tall = 0; tall < 2; tall++) {
      int w = tall ? 24 : sides[k][0], h = tall ? sides[k][0] : 24;
      embr_image im = make_image(w, h, 1, 1);
      for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) im.px[y * w + x] = (uint8_t)(tall ? y : x);
      REQUIRE(embr_image_to_tensor(&im, &s, t) == 0);
      CHECK_MSG(lroundf(t[0]) == sides[k][1] && lroundf(t[24 * 24 - 1]) == sides[k][1] + 23, "side %d %s: starts at %ld",
                sides[k][0], tall ? "tall" : "wide", lroundf(t[0]));
      free_test_image(&im);
    }
  }
  /* A non-square window from an explicit short side; bad short sides; a side that would overflow. */
  embr_image im = make_image(30, 40, 1, 2);
  for (int y = 0; y < 40; y++)
    for (int x = 0; x < 30; x++) im.px[y * 30 + x] = (uint8_t)(y * 4 + x % 4);
  s.height = 20, s.width = 28, s.short_side = 30; /* no resampling: 30 x 40, top 10, left 1 */
  float t2[20 * 28];
  REQUIRE(embr_image_to_tensor(&im, &s, t2) == 0);
  CHECK(lroundf(t2[0]) == 10 * 4 + 1 && lroundf(t2[28]) == 11 * 4 + 1 && lroundf(t2[1]) == 10 * 4 + 2);
  s.short_side = 27;
  CHECK(embr_image_to_tensor(&im, &s, t2) == EMBR_EINVAL && strstr(embr_last_error(), "short side"));
  s.short_side = -1;
  CHECK(embr_image_to_tensor(&im, &s, t2) == EMBR_EINVAL);
  s.short_side = 0;
  s.crop = (embr_crop)9;
  CHECK(embr_image_to_tensor(&im, &s, t2) == EMBR_EINVAL && strstr(embr_last_error(), "crop"));
  free_test_image(&im);
  embr_image thin = make_image(1, 200, 1, 3);
  embr_image_spec c = embr_image_spec_clip(224);
  float *big = malloc(sizeof(float) * 3 * 224 * 224);
  CHECK(embr_image_to_tensor(&thin, &c, big) == EMBR_EINVAL && strstr(embr_last_error(), "1x200"));
  free(big);
  free_test_image(&thin);
  /* The default spec keeps the old geometry: no crop, the whole image stretched. */
  embr_image_spec d = embr_image_spec_default();
  CHECK(d.crop == EMBR_CROP_NONE && d.alpha == EMBR_ALPHA_IGNORE && d.short_side == 0);
}

/* CLIP preprocessing against Pillow (scripts/make_clip_preprocess_ref.py wrote tests/ref/clip/): the
 * fixture's PNGs through embr_image_read and embr_image_to_tensor, compared with the tensors
 * Pillow's resize, the torchvision crop arithmetic and the CLIP normalisation give.
 * Bound: 1 level of 8 bits, 1 / (255 std[c]) in the tensor's units, per value, and at least 99 %
 * of the values exact. Our resize follows Pillow's two passes with its 8-bit intermediate, so
 * only the weights differ (float here, 22-bit fixed point in Pillow): a sum landing within about
 * 1e-6 of a half can round the other way, one level. Measured on this fixture: 0 (all exact).
 * Before the intermediate was rounded and clipped like Pillow's, hard edges put us up to 6 levels
 * away (cubic overshoot clipped in Pillow's intermediate but not in ours). Compositing, crop
 * offsets and normalisation are exact, so a wrong offset or alpha shows as tens of levels. */
static void test_clip_reference(void) {
  static const struct {
    const char *png, *npy;
    int h, w, short_side;
    embr_alpha alpha;
  } cases[] = {
      {"rgb_53x37.png", "rgb_53x37.npy", 24, 24, 0, EMBR_ALPHA_WHITE},
      {"rgb_13x19.png", "rgb_13x19.npy", 24, 24, 0, EMBR_ALPHA_WHITE},
      {"grey_41x29.png", "grey_41x29.npy", 24, 24, 0, EMBR_ALPHA_WHITE},
      {"rgba_27x35.png", "rgba_27x35.npy", 24, 24, 0, EMBR_ALPHA_WHITE},
      {"rgba_27x35.png", "rgba_27x35_ignore.npy", 24, 24, 0, EMBR_ALPHA_IGNORE},
      {"la_31x22.png", "la_31x22.npy", 24, 24, 0, EMBR_ALPHA_WHITE},
      {"pal_29x41.png", "pal_29x41.npy", 24, 24, 0, EMBR_ALPHA_WHITE},
      {"rgb_45x61.png", "rgb_45x61_20x28.npy", 20, 28, 30, EMBR_ALPHA_WHITE},
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    char png[600], npy[600];
    snprintf(png, sizeof png, "%s/tests/ref/clip/%s", EMBR_SOURCE_DIR, cases[k].png);
    snprintf(npy, sizeof npy, "%s/tests/ref/clip/%s", EMBR_SOURCE_DIR, cases[k].npy);
    embr_image im;
    embr_matrix ref;
    REQUIRE(embr_image_read(png, &im) == 0);
    REQUIRE(embr_matrix_read(npy, EMBR_FORMAT_AUTO, &ref) == 0);
    embr_image_spec s = embr_image_spec_clip(24);
    s.height = cases[k].h, s.width = cases[k].w, s.short_side = cases[k].short_side, s.alpha = cases[k].alpha;
    size_t n = (size_t)3 * s.height * s.width, plane = n / 3;
    CHECK(ref.n == 1 && ref.dim == (int64_t)n);
    float *t = malloc(n * sizeof *t);
    CHECK(embr_image_to_tensor(&im, &s, t) == 0);
    double worst = 0, sum = 0;
    size_t exact = 0;
    for (size_t i = 0; ref.dim == (int64_t)n && i < n; i++) {
      double levels = fabs((double)t[i] - ref.data[i]) * 255.0 * s.std[i / plane];
      worst = levels > worst ? levels : worst;
      sum += levels;
      exact += levels < 0.01;
    }
    CHECK_MSG(worst <= 1.0 + 1e-3 && exact >= n * 99 / 100, "%s: %.3f levels apart (bound 1), %zu of %zu exact",
              cases[k].npy, worst, exact, n);
    if (getenv("EMBR_TEST_VERBOSE"))
      fprintf(stderr, "  %s: max %.3f levels, mean %.4f, %.1f%% exact\n", cases[k].npy, worst, sum / n, 100.0 * exact / n);
    free(t);
    embr_matrix_free(&ref);
    embr_image_free(&im);
  }
}

/* The documented draws: y offset, x offset in [0, 2 pad] (when pad > 0), then a coin (when flip):
 * crop of the zero-padded image at that offset, mirrored when the coin's top bit is 1. */
static void ref_augment(const float *in, float *out, int C, int H, int W, int pad, int flip, embr_rng *r) {
  int oy = pad, ox = pad, mirror = 0;
  if (pad > 0) {
    oy = (int)embr_rng_below(r, 2 * (uint64_t)pad + 1);
    ox = (int)embr_rng_below(r, 2 * (uint64_t)pad + 1);
  }
  if (flip) mirror = (int)(embr_rng_next(r) >> 63);
  for (int c = 0; c < C; c++)
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++) {
        int sx = mirror ? W - 1 - x : x;
        int py = y + oy - pad, px = sx + ox - pad; /* padded coordinate back to the original */
        out[(c * H + y) * W + x] = py < 0 || py >= H || px < 0 || px >= W ? 0.0f : in[(c * H + py) * W + px];
      }
}

static void test_augment(void) {
  const int C = 2, H = 5, W = 7;
  float in[2 * 5 * 7], got[2 * 5 * 7], want[2 * 5 * 7];
  for (int i = 0; i < C * H * W; i++) in[i] = (float)(i + 1);
  int flips = 0, seen[9][9] = {{0}};
  static const int pads[] = {0, 1, 4, 9};
  for (uint64_t seed = 0; seed < 400; seed++)
    for (size_t pi = 0; pi < sizeof pads / sizeof *pads; pi++) {
      int pad = pads[pi], flip = (int)(seed & 1) || pad == 4;
      embr_rng a, b;
      embr_rng_seed(&a, seed);
      b = a;
      memcpy(got, in, sizeof in);
      embr_image_augment(got, C, H, W, pad, flip, &a);
      ref_augment(in, want, C, H, W, pad, flip, &b);
      CHECK_MSG(memcmp(got, want, sizeof got) == 0, "seed %llu pad %d flip %d", (unsigned long long)seed, pad, flip);
      CHECK(memcmp(&a, &b, sizeof a) == 0); /* the same number of draws */
      if (pad == 4) {
        embr_rng c;
        embr_rng_seed(&c, seed);
        int oy = (int)embr_rng_below(&c, 9), ox = (int)embr_rng_below(&c, 9);
        seen[oy][ox] = 1;
        flips += (int)(embr_rng_next(&c) >> 63);
      }
    }
  int all = 1;
  for (int y = 0; y < 9; y++)
    for (int x = 0; x < 9; x++) all &= seen[y][x];
  CHECK(all);
  CHECK(flips > 150 && flips < 250);
  embr_rng r;
  embr_rng_seed(&r, 1);
  memcpy(got, in, sizeof in);
  embr_image_augment(got, C, H, W, 0, 0, &r);
  CHECK(memcmp(got, in, sizeof in) == 0);
}

/* ---- datasets -------------------------------------------------------------------------------------------- */

static void write_image_file(const char *path, int w, int h, int c, uint64_t seed) {
  embr_image im = make_image(w, h, c, seed);
  if (embr_image_write(path, &im) != 0) {
    fprintf(stderr, "%s\n", embr_last_error());
    exit(1);
  }
  free_test_image(&im);
}

static void test_folder_dataset(void) {
  const char *root = th_path("faces");
  char p[600];
  make_dir(root);
  snprintf(p, sizeof p, "%s/b", root), make_dir(p);
  snprintf(p, sizeof p, "%s/a", root), make_dir(p);
  snprintf(p, sizeof p, "%s/.hidden", root), make_dir(p);
  snprintf(p, sizeof p, "%s/b/2.pgm", root), write_image_file(p, 4, 3, 1, 1);
  snprintf(p, sizeof p, "%s/b/1.png", root), write_image_file(p, 5, 2, 3, 2);
  snprintf(p, sizeof p, "%s/b/10.PNG", root), write_image_file(p, 2, 2, 1, 3);
  snprintf(p, sizeof p, "%s/a/x.ppm", root), write_image_file(p, 3, 3, 3, 4);
  snprintf(p, sizeof p, "%s/a/.secret.png", root), write_image_file(p, 3, 3, 3, 5);
  snprintf(p, sizeof p, "%s/.hidden/y.png", root), write_image_file(p, 3, 3, 3, 6);
  snprintf(p, sizeof p, "%s/a/notes.txt", root), th_write_file(p, "hi", 2);
  snprintf(p, sizeof p, "%s/README", root), th_write_file(p, "hi", 2);
  embr_dataset *ds;
  int rc = embr_dataset_open_folder(root, &ds);
  REQUIRE(rc == 0);
  CHECK(embr_dataset_size(ds) == 4 && embr_dataset_classes(ds) == 2);
  CHECK(strcmp(embr_dataset_class_name(ds, 0), "a") == 0 && strcmp(embr_dataset_class_name(ds, 1), "b") == 0);
  CHECK(embr_dataset_class_name(ds, 2) == NULL && embr_dataset_label(ds, 4) == -1 && embr_dataset_item_name(ds, -1) == NULL);
  /* Files in natural order: 2 before 10. */
  static const char *names[] = {"a/x.ppm", "b/1.png", "b/2.pgm", "b/10.PNG"};
  static const int labels[] = {0, 1, 1, 1}, seeds[] = {4, 2, 1, 3}, ws[] = {3, 5, 4, 2};
  for (int i = 0; i < 4; i++) {
    CHECK(strcmp(embr_dataset_item_name(ds, i), names[i]) == 0);
    CHECK(embr_dataset_label(ds, i) == labels[i]);
    embr_image im;
    REQUIRE(embr_dataset_image(ds, i, &im) == 0);
    embr_image want = make_image(ws[i], im.height, im.channels, (uint64_t)seeds[i]);
    CHECK(same_pixels(&im, &want));
    free_test_image(&want);
    embr_image_free(&im);
  }
  embr_image im;
  CHECK(embr_dataset_image(ds, 4, &im) == EMBR_EINVAL);
  embr_dataset_free(ds);
  embr_dataset_free(NULL);
  /* Errors: an empty class folder, a file, a missing path, a folder without class folders. */
  snprintf(p, sizeof p, "%s/c", root), make_dir(p);
  CHECK(embr_dataset_open_folder(root, &ds) == EMBR_EFORMAT && ds == NULL);
  CHECK(strstr(embr_last_error(), "/c") != NULL);
  snprintf(p, sizeof p, "%s/README", root);
  CHECK(embr_dataset_open_folder(p, &ds) == EMBR_EINVAL && strstr(embr_last_error(), "not a folder"));
  CHECK(embr_dataset_open_folder(th_path("nowhere"), &ds) == EMBR_ENOTFOUND);
  snprintf(p, sizeof p, "%s/a", root);
  CHECK(embr_dataset_open_folder(p, &ds) == EMBR_EFORMAT);
}

/* A flat folder: its images in natural order, one class named as the folder was given; the
 * class-folder opener still refuses it, and embr_dataset_open picks the right one. */
static void test_flat_dataset(void) {
  const char *root = th_fresh_dir("flat");
  char p[600];
  snprintf(p, sizeof p, "%s/img10.png", root), write_image_file(p, 3, 2, 3, 1);
  snprintf(p, sizeof p, "%s/img2.pgm", root), write_image_file(p, 2, 2, 1, 2);
  snprintf(p, sizeof p, "%s/.hidden.png", root), write_image_file(p, 2, 2, 1, 3);
  snprintf(p, sizeof p, "%s/notes.txt", root), th_write_file(p, "x", 1);
  embr_dataset *ds;
  REQUIRE(embr_dataset_open_flat(root, &ds) == 0);
  CHECK(embr_dataset_size(ds) == 2 && embr_dataset_classes(ds) == 1);
  CHECK(strcmp(embr_dataset_class_name(ds, 0), root) == 0);
  CHECK(strcmp(embr_dataset_item_name(ds, 0), "img2.pgm") == 0 && strcmp(embr_dataset_item_name(ds, 1), "img10.png") == 0);
  CHECK(embr_dataset_label(ds, 0) == 0 && embr_dataset_label(ds, 1) == 0);
  embr_image im;
  REQUIRE(embr_dataset_image(ds, 1, &im) == 0);
  embr_image want = make_image(3, 2, 3, 1);
  CHECK(same_pixels(&im, &want));
  free_test_image(&want);
  embr_image_free(&im);
  embr_dataset_free(ds);
  /* The class-folder opener keeps refusing a folder without class folders. */
  CHECK(embr_dataset_open_folder(root, &ds) == EMBR_EFORMAT && ds == NULL);
  REQUIRE(embr_dataset_open(root, &ds) == 0);
  CHECK(embr_dataset_size(ds) == 2 && embr_dataset_classes(ds) == 1);
  embr_dataset_free(ds);
  /* A sub-folder makes it a folder of classes for embr_dataset_open (the top-level images ignored). */
  snprintf(p, sizeof p, "%s/cls", root), make_dir(p);
  snprintf(p, sizeof p, "%s/cls/a.png", root), write_image_file(p, 2, 2, 1, 4);
  REQUIRE(embr_dataset_open(root, &ds) == 0);
  CHECK(embr_dataset_size(ds) == 1 && strcmp(embr_dataset_item_name(ds, 0), "cls/a.png") == 0);
  embr_dataset_free(ds);
  /* Errors: no images, a file, missing, empty name, no output. */
  const char *empty = th_fresh_dir("flat_empty");
  snprintf(p, sizeof p, "%s/readme.txt", empty), th_write_file(p, "x", 1);
  CHECK(embr_dataset_open_flat(empty, &ds) == EMBR_EFORMAT && ds == NULL && strstr(embr_last_error(), "no images"));
  CHECK(embr_dataset_open(empty, &ds) == EMBR_EFORMAT && strstr(embr_last_error(), empty));
  CHECK(embr_dataset_open_flat(p, &ds) == EMBR_EINVAL && strstr(embr_last_error(), "not a folder"));
  CHECK(embr_dataset_open_flat(th_path("nowhere"), &ds) == EMBR_ENOTFOUND);
  CHECK(embr_dataset_open(th_path("nowhere"), &ds) == EMBR_ENOTFOUND && strstr(embr_last_error(), "nowhere"));
  CHECK(embr_dataset_open_flat("", &ds) == EMBR_EINVAL && embr_dataset_open_flat(root, NULL) == EMBR_EINVAL);
  CHECK(embr_dataset_open("", &ds) == EMBR_EINVAL && embr_dataset_open(root, NULL) == EMBR_EINVAL);
}

/* Opens list `text` written to dir/name; returns the status, *ds set on success. */
static int open_list_text(const char *dir, const char *name, const char *text, embr_dataset **ds) {
  const char *p = th_join(dir, name);
  th_write_file(p, text, strlen(text));
  return embr_dataset_open_list(p, ds);
}

/* A list file: rows in its order (repeats kept), relative paths relative to the list's folder,
 * absolute ones as they are, CRLF; hostile lists fail naming the list and the line. */
static void test_list_dataset(void) {
  const char *root = th_fresh_dir("list");
  char p[600], abs_png[700], text[2000];
  snprintf(p, sizeof p, "%s/imgs", root), make_dir(p);
  snprintf(p, sizeof p, "%s/imgs/b.png", root), write_image_file(p, 3, 2, 3, 1);
  snprintf(p, sizeof p, "%s/imgs/a.pgm", root), write_image_file(p, 2, 2, 1, 2);
  snprintf(p, sizeof p, "%s/imgs/photo.dat", root), write_image_file(p, 2, 3, 1, 3); /* a PGM by its bytes */
  snprintf(abs_png, sizeof abs_png, "%s/imgs/b.png", root);
  snprintf(p, sizeof p, "%s/notes.txt", root), th_write_file(p, "hello there", 11);
  snprintf(p, sizeof p, "%s/tiny", root), th_write_file(p, "P", 1);
  snprintf(text, sizeof text, "imgs/b.png\r\nimgs/a.pgm\n%s\nimgs/photo.dat\nimgs/b.png", abs_png);
  embr_dataset *ds;
  REQUIRE(open_list_text(root, "list.txt", text, &ds) == 0);
  CHECK(embr_dataset_size(ds) == 5 && embr_dataset_classes(ds) == 1 && embr_dataset_label(ds, 4) == 0);
  CHECK(strstr(embr_dataset_class_name(ds, 0), "list.txt") != NULL);
  const char *names[] = {"imgs/b.png", "imgs/a.pgm", abs_png, "imgs/photo.dat", "imgs/b.png"};
  static const int ws[] = {3, 2, 3, 2, 3};
  for (int i = 0; i < 5; i++) {
    CHECK_MSG(strcmp(embr_dataset_item_name(ds, i), names[i]) == 0, "item %d: %s", i, embr_dataset_item_name(ds, i));
    embr_image im;
    CHECK(embr_dataset_image(ds, i, &im) == 0 && im.width == ws[i]);
    embr_image_free(&im);
  }
  embr_dataset_free(ds);
  /* Through embr_dataset_open (a file is a list), and from another current directory the paths
   * still resolve against the list's folder. */
  snprintf(p, sizeof p, "%s/list.txt", root);
  REQUIRE(embr_dataset_open(p, &ds) == 0);
  CHECK(embr_dataset_size(ds) == 5);
  embr_dataset_free(ds);
  /* A list beside its images, named without a folder: relative to the current directory. */
  char cwd[4096];
  REQUIRE(getcwd(cwd, sizeof cwd) != NULL);
  snprintf(p, sizeof p, "%s/imgs", root);
  REQUIRE(chdir(p) == 0);
  th_write_file("here.txt", "a.pgm\n", 6);
  int rc = embr_dataset_open_list("here.txt", &ds);
  embr_image im = {0};
  if (!rc) rc = embr_dataset_image(ds, 0, &im);
  CHECK(chdir(cwd) == 0);
  CHECK(rc == 0 && im.width == 2);
  embr_image_free(&im);
  embr_dataset_free(ds);
  /* Hostile lists: the message names the list and the line. */
  static const struct {
    const char *text;
    int status;
    const char *msg;
  } bad[] = {
      {"", EMBR_EFORMAT, "no image paths"},
      {"imgs/b.png\n\nimgs/a.pgm\n", EMBR_EFORMAT, "line 2: empty line"},
      {"imgs/b.png\nimgs/missing.png\n", EMBR_ENOTFOUND, "line 2: "},
      {"imgs/b.png\nimgs/a.pgm\nnotes.txt\n", EMBR_EFORMAT, "line 3: "},
      {"tiny\n", EMBR_EFORMAT, "line 1: "},
      {"imgs\n", EMBR_EINVAL, "not a regular file"},
      {"imgs/b.png/x\n", EMBR_ENOTFOUND, "line 1: "},
      {"imgs/b.png\nimgs/a\0.pgm\n", EMBR_EFORMAT, "line 2"},
  };
  for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
    size_t len = strlen(bad[k].text);
    if (k == 7) len = 24; /* the NUL byte inside */
    const char *lp = th_join(root, "bad.txt");
    th_write_file(lp, bad[k].text, len);
    ds = (embr_dataset *)1;
    int st = embr_dataset_open_list(lp, &ds);
    CHECK_MSG(st == bad[k].status && ds == NULL && strstr(embr_last_error(), "bad.txt") &&
                  strstr(embr_last_error(), bad[k].msg),
              "case %zu: %d %s", k, st, embr_last_error());
  }
  CHECK(strstr(embr_last_error(), "\n") == NULL);
  CHECK(embr_dataset_open_list(th_path("no_list.txt"), &ds) == EMBR_ENOTFOUND && strstr(embr_last_error(), "no_list.txt"));
  CHECK(embr_dataset_open_list("", &ds) == EMBR_EINVAL && embr_dataset_open_list(p, NULL) == EMBR_EINVAL);
}

/* Class folders named as ORL names them (s1..s40) sort naturally, so that without the extra
 * folders below --classes 30:40 would be people s31..s40; names equal but for leading zeros keep a fixed (byte) order, other text sorts bytewise. */
static void test_folder_natural_order(void) {
  const char *root = th_path("orl");
  char p[600];
  make_dir(root);
  /* Created in a scrambled order so the directory's own order cannot pass the test. */
  for (int k = 0; k < 40; k++) {
    int person = (k * 17) % 40 + 1;
    snprintf(p, sizeof p, "%s/s%d", root, person), make_dir(p);
    snprintf(p, sizeof p, "%s/s%d/%d.pgm", root, person, 10 - k % 10), write_image_file(p, 2, 2, 1, (uint64_t)k);
  }
  static const char *extra[] = {"t10x", "s05", "t9y", "t09y", "u"};
  for (int k = 0; k < 5; k++) {
    snprintf(p, sizeof p, "%s/%s", root, extra[k]), make_dir(p);
    snprintf(p, sizeof p, "%s/%s/1.pgm", root, extra[k]), write_image_file(p, 2, 2, 1, 7);
  }
  embr_dataset *ds;
  REQUIRE(embr_dataset_open_folder(root, &ds) == 0);
  REQUIRE(embr_dataset_classes(ds) == 45);
  /* s05 and s5 are both "5": the tie goes to byte order, so s05 comes first. */
  const char *want[45];
  char names[45][8];
  int w = 0;
  for (int person = 1; person <= 40; person++) {
    if (person == 5) want[w++] = "s05";
    snprintf(names[w], sizeof names[w], "s%d", person);
    want[w] = names[w];
    w++;
  }
  want[w++] = "t09y", want[w++] = "t9y", want[w++] = "t10x", want[w++] = "u";
  REQUIRE(w == 45);
  for (int c = 0; c < 45; c++) {
    CHECK(strcmp(embr_dataset_class_name(ds, c), want[c]) == 0);
    if (strcmp(embr_dataset_class_name(ds, c), want[c]) != 0)
      fprintf(stderr, "class %d: got %s, want %s\n", c, embr_dataset_class_name(ds, c), want[c]);
  }
  /* One image per class, so item i is class i's image (s31 holds the image written at k = 30). */
  for (int i = 0; i < 45; i++) {
    char prefix[16];
    snprintf(prefix, sizeof prefix, "%s/", want[i]);
    CHECK(embr_dataset_label(ds, i) == i && starts_with(embr_dataset_item_name(ds, i), prefix));
  }
  CHECK(strcmp(embr_dataset_item_name(ds, 31), "s31/10.pgm") == 0);
  embr_dataset_free(ds);
}

/* idx files: images with pixel value f(i, k) and labels i % classes. */
static void write_idx(const char *images, const char *labels, int n, int rows, int cols, int classes, int gz,
                      uint32_t magic_img, int n_labels) {
  size_t ni = 16 + (size_t)n * rows * cols, nl = 8 + (size_t)n_labels;
  unsigned char *a = malloc(ni), *b = malloc(nl);
  set_be32(a, magic_img);
  set_be32(a + 4, (uint32_t)n);
  set_be32(a + 8, (uint32_t)rows);
  set_be32(a + 12, (uint32_t)cols);
  for (size_t k = 16; k < ni; k++) a[k] = (uint8_t)(((k - 16) / ((size_t)rows * cols)) * 10 + k % 7);
  set_be32(b, 2049);
  set_be32(b + 4, (uint32_t)n_labels);
  for (int i = 0; i < n_labels; i++) b[8 + i] = (uint8_t)(i % classes);
  if (gz) {
    gzFile f = gzopen(images, "wb");
    gzwrite(f, a, (unsigned)ni);
    gzclose(f);
    f = gzopen(labels, "wb");
    gzwrite(f, b, (unsigned)nl);
    gzclose(f);
  } else {
    th_write_file(images, a, ni);
    th_write_file(labels, b, nl);
  }
  free(a);
  free(b);
}

static void check_small_mnist(embr_dataset *ds, int n, int rows, int cols, int classes) {
  REQUIRE(ds);
  CHECK(embr_dataset_size(ds) == n && embr_dataset_classes(ds) == classes);
  for (int i = 0; i < n; i++) {
    CHECK(embr_dataset_label(ds, i) == i % classes);
    char name[32];
    snprintf(name, sizeof name, "mnist-%d", i);
    CHECK(strcmp(embr_dataset_item_name(ds, i), name) == 0);
    embr_image im;
    REQUIRE(embr_dataset_image(ds, i, &im) == 0);
    CHECK(im.width == cols && im.height == rows && im.channels == 1);
    for (int k = 0; k < rows * cols; k++) CHECK(im.px[k] == (uint8_t)(i * 10 + (16 + i * rows * cols + k) % 7));
    embr_image_free(&im);
  }
  CHECK(strcmp(embr_dataset_class_name(ds, classes - 1), "2") == 0);
}

static void test_mnist_small(void) {
  char img[600], lab[600];
  const char *d1 = th_path("m1"), *d2 = th_path("m2"), *d3 = th_path("m3");
  make_dir(d1), make_dir(d2), make_dir(d3);
  snprintf(img, sizeof img, "%s/train-images-idx3-ubyte", d1);
  snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte", d1);
  write_idx(img, lab, 5, 3, 4, 3, 0, 2051, 5);
  embr_dataset *ds = NULL;
  CHECK_MSG(embr_dataset_open_mnist(d1, &ds) == 0, "%s", embr_last_error());
  check_small_mnist(ds, 5, 3, 4, 3);
  embr_dataset_free(ds);
  CHECK(embr_dataset_open_mnist(img, &ds) == 0); /* the images file itself */
  check_small_mnist(ds, 5, 3, 4, 3);
  embr_dataset_free(ds);
  /* Gzipped, t10k only. */
  snprintf(img, sizeof img, "%s/t10k-images-idx3-ubyte.gz", d2);
  snprintf(lab, sizeof lab, "%s/t10k-labels-idx1-ubyte.gz", d2);
  write_idx(img, lab, 7, 2, 2, 3, 1, 2051, 7);
  CHECK_MSG(embr_dataset_open_mnist(d2, &ds) == 0, "%s", embr_last_error());
  check_small_mnist(ds, 7, 2, 2, 3);
  embr_dataset_free(ds);
  /* Bad magic, counts that disagree, truncation, trailing bytes, a giant claim, no files. */
  snprintf(img, sizeof img, "%s/train-images-idx3-ubyte", d3);
  snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte", d3);
  write_idx(img, lab, 4, 2, 2, 3, 0, 2049, 4);
  CHECK(embr_dataset_open_mnist(d3, &ds) == EMBR_EFORMAT && strstr(embr_last_error(), "magic") && ds == NULL);
  write_idx(img, lab, 4, 2, 2, 3, 0, 2051, 3);
  CHECK(embr_dataset_open_mnist(d3, &ds) == EMBR_EFORMAT && strstr(embr_last_error(), "labels"));
  write_idx(img, lab, 4, 2, 2, 3, 0, 2051, 4);
  size_t len;
  unsigned char *raw = slurp(img, &len);
  th_write_file(img, raw, len - 1);
  CHECK(embr_dataset_open_mnist(d3, &ds) == EMBR_EFORMAT && strstr(embr_last_error(), "truncated"));
  raw[len] = 0;
  th_write_file(img, raw, len + 1);
  CHECK(embr_dataset_open_mnist(d3, &ds) == EMBR_EFORMAT && strstr(embr_last_error(), "longer"));
  set_be32(raw + 4, 100000000);
  set_be32(raw + 8, 16384);
  set_be32(raw + 12, 16384);
  th_write_file(img, raw, len);
  CHECK(embr_dataset_open_mnist(img, &ds) == EMBR_EFORMAT);
  set_be32(raw + 8, 0);
  th_write_file(img, raw, len);
  CHECK(embr_dataset_open_mnist(img, &ds) == EMBR_EFORMAT);
  free(raw);
  CHECK(embr_dataset_open_mnist(th_scratch(), &ds) == EMBR_ENOTFOUND);
  CHECK(embr_dataset_open_mnist(th_path("nope"), &ds) == EMBR_ENOTFOUND);
}

static void test_mnist_real(void) {
  const char *dir = EMBR_SOURCE_DIR "/../shared/data/mnist";
  struct stat st;
  if (stat(dir, &st) != 0) SKIP("%s not present", dir);
  embr_dataset *ds;
  int rc = embr_dataset_open_mnist(dir, &ds);
  REQUIRE(rc == 0);
  CHECK(embr_dataset_size(ds) == 10000 && embr_dataset_classes(ds) == 10);
  int64_t counts[10] = {0}, total = 0;
  for (int64_t i = 0; i < embr_dataset_size(ds); i++) {
    int l = embr_dataset_label(ds, i);
    if (l >= 0 && l < 10) counts[l]++;
  }
  for (int c = 0; c < 10; c++) {
    CHECK(counts[c] > 500);
    total += counts[c];
  }
  CHECK(total == 10000);
  embr_image im;
  REQUIRE(embr_dataset_image(ds, 0, &im) == 0);
  CHECK(im.width == 28 && im.height == 28 && im.channels == 1);
  embr_image_free(&im);
  embr_dataset_free(ds);
}

/* ---- loader ------------------------------------------------------------------------------------------------ */

/* n items of 2x2 pixels whose first pixel is the item index (so a tensor tells its item). */
static embr_dataset *index_dataset(const char *dirname, int n) {
  char img[600], lab[600];
  const char *d = th_path(dirname);
  make_dir(d);
  snprintf(img, sizeof img, "%s/train-images-idx3-ubyte", d);
  snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte", d);
  unsigned char *a = calloc(16 + (size_t)n * 4, 1), *b = calloc(8 + (size_t)n, 1);
  set_be32(a, 2051), set_be32(a + 4, (uint32_t)n), set_be32(a + 8, 2), set_be32(a + 12, 2);
  set_be32(b, 2049), set_be32(b + 4, (uint32_t)n);
  for (int i = 0; i < n; i++) {
    a[16 + 4 * i] = (uint8_t)i;
    a[16 + 4 * i + 1] = 255;
    b[8 + i] = (uint8_t)(i % 4);
  }
  th_write_file(img, a, 16 + (size_t)n * 4);
  th_write_file(lab, b, 8 + (size_t)n);
  free(a);
  free(b);
  embr_dataset *ds = NULL;
  if (embr_dataset_open_mnist(d, &ds) != 0) fprintf(stderr, "%s\n", embr_last_error());
  return ds;
}

static embr_loader_params plain_params(int batch) {
  embr_loader_params p = embr_loader_params_default();
  CHECK(p.batch == 64 && p.shuffle == 1 && p.cache == 0 && p.pad == 0 && p.flip == 0);
  p.spec.channels = 1;
  p.spec.width = p.spec.height = 2;
  p.spec.mean[0] = 0;
  p.spec.std[0] = 1;
  p.batch = batch;
  p.seed = 42;
  return p;
}

/* Runs one epoch; writes the items in order to `order` and checks each batch's contents. */
static int run_epoch(embr_loader *ld, const embr_dataset *ds, int batch, int64_t *order, int64_t cap) {
  int64_t seen = 0;
  for (;;) {
    const float *x;
    const int32_t *labels;
    const int64_t *items;
    int count;
    int rc = embr_loader_next(ld, &x, &labels, &items, &count);
    CHECK_MSG(rc == 0, "%s", embr_last_error());
    if (rc || count == 0) break;
    CHECK(count <= batch);
    for (int j = 0; j < count; j++) {
      CHECK(labels[j] == embr_dataset_label(ds, items[j]));
      CHECK_NEAR(x[4 * j], items[j] / 255.0, 1e-6);
      CHECK_NEAR(x[4 * j + 1], 1.0, 1e-6);
      if (seen < cap) order[seen] = items[j];
      seen++;
    }
    if (count < batch) CHECK(seen == cap); /* only the last batch is short */
  }
  return (int)seen;
}

static void test_loader_epochs(void) {
  const int n = 23;
  embr_dataset *ds = index_dataset("load1", n);
  REQUIRE(ds);
  embr_loader_params p = plain_params(5);
  embr_loader *a, *b;
  REQUIRE(embr_loader_create(ds, &p, &a) == 0);
  REQUIRE(embr_loader_create(ds, &p, &b) == 0);
  CHECK(embr_loader_batches_per_epoch(a) == 5);
  int64_t o1[23], o2[23], o3[23];
  CHECK(run_epoch(a, ds, 5, o1, n) == n);
  CHECK(run_epoch(a, ds, 5, o2, n) == n);
  CHECK(run_epoch(b, ds, 5, o3, n) == n);
  int seen[23] = {0};
  for (int i = 0; i < n; i++) seen[o1[i]]++;
  for (int i = 0; i < n; i++) CHECK(seen[i] == 1);
  for (int i = 0; i < n; i++) seen[o2[i]]++;
  for (int i = 0; i < n; i++) CHECK(seen[i] == 2);
  CHECK(memcmp(o1, o3, sizeof o1) == 0);  /* same seed, same order */
  CHECK(memcmp(o1, o2, sizeof o1) != 0);  /* a new order each epoch */
  int sorted = 1;
  for (int i = 0; i < n; i++) sorted &= o1[i] == i;
  CHECK(!sorted);
  embr_loader_free(a);
  embr_loader_free(b);
  /* No shuffle: the dataset's order. drop_last: whole batches only. */
  p.shuffle = 0;
  p.drop_last = 1;
  REQUIRE(embr_loader_create(ds, &p, &a) == 0);
  CHECK(embr_loader_batches_per_epoch(a) == 4);
  for (int e = 0; e < 2; e++) {
    CHECK(run_epoch(a, ds, 5, o1, 20) == 20);
    for (int i = 0; i < 20; i++) CHECK(o1[i] == i);
  }
  embr_loader_free(a);
  /* A subset, shuffled. */
  int64_t sub[] = {3, 17, 4, 22, 9, 0, 11};
  p.shuffle = 1;
  p.drop_last = 0;
  p.subset = sub;
  p.n_subset = 7;
  REQUIRE(embr_loader_create(ds, &p, &a) == 0);
  CHECK(embr_loader_batches_per_epoch(a) == 2);
  CHECK(run_epoch(a, ds, 5, o1, 7) == 7);
  int in_sub = 0;
  for (int i = 0; i < 7; i++)
    for (int k = 0; k < 7; k++) in_sub += o1[i] == sub[k];
  CHECK(in_sub == 7);
  embr_loader_free(a);
  /* Bad parameters. */
  int64_t bad_sub[] = {1, 23};
  p.subset = bad_sub;
  p.n_subset = 2;
  CHECK(embr_loader_create(ds, &p, &a) == EMBR_EINVAL && a == NULL);
  p.subset = NULL;
  p.batch = 0;
  CHECK(embr_loader_create(ds, &p, &a) == EMBR_EINVAL);
  p.batch = 50;
  p.drop_last = 1;
  CHECK(embr_loader_create(ds, &p, &a) == EMBR_EINVAL);
  /* Freed in the middle of an epoch, and right after creation. */
  p = plain_params(3);
  REQUIRE(embr_loader_create(ds, &p, &a) == 0);
  const float *x;
  int count;
  CHECK(embr_loader_next(a, &x, NULL, NULL, &count) == 0 && count == 3);
  embr_loader_free(a);
  REQUIRE(embr_loader_create(ds, &p, &a) == 0);
  embr_loader_free(a);
  embr_loader_free(NULL);
  embr_dataset_free(ds);
}

static void test_loader_bad_file(void) {
  const char *root = th_path("withbad");
  char p[600];
  make_dir(root);
  snprintf(p, sizeof p, "%s/k", root), make_dir(p);
  snprintf(p, sizeof p, "%s/k/a.png", root), write_image_file(p, 4, 4, 3, 1);
  snprintf(p, sizeof p, "%s/k/b.png", root), th_write_file(p, "\x89PNG\r\n\x1a\nnot really", 18);
  snprintf(p, sizeof p, "%s/k/c.pgm", root), write_image_file(p, 6, 2, 1, 2);
  embr_dataset *ds;
  REQUIRE(embr_dataset_open_folder(root, &ds) == 0);
  embr_loader_params prm = embr_loader_params_default();
  prm.spec.width = prm.spec.height = 4;
  prm.batch = 1;
  prm.shuffle = 0;
  embr_loader *ld;
  REQUIRE(embr_loader_create(ds, &prm, &ld) == 0);
  const float *x;
  const int64_t *items;
  int count;
  CHECK(embr_loader_next(ld, &x, NULL, &items, &count) == 0 && count == 1 && items[0] == 0);
  CHECK(embr_loader_next(ld, &x, NULL, &items, &count) == EMBR_EFORMAT && count == 0 && x == NULL);
  CHECK_MSG(strstr(embr_last_error(), "k/b.png") != NULL, "%s", embr_last_error());
  CHECK(embr_loader_next(ld, &x, NULL, &items, &count) == 0 && count == 1 && items[0] == 2);
  CHECK(embr_loader_next(ld, &x, NULL, &items, &count) == 0 && count == 0);
  embr_loader_free(ld);
  embr_dataset_free(ds);
}

/* Collects two epochs of batches (with augmentation) into one buffer. */
static float *two_epochs(const embr_dataset *ds, int cache, size_t *n_out) {
  embr_loader_params p = embr_loader_params_default();
  p.spec.width = 6;
  p.spec.height = 5;
  p.batch = 3;
  p.pad = 2;
  p.flip = 1;
  p.cache = cache;
  p.seed = 7;
  embr_loader *ld;
  if (embr_loader_create(ds, &p, &ld) != 0) return NULL;
  size_t per = 3 * 6 * 5, cap = 2 * 8 * per, n = 0;
  float *all = malloc(cap * sizeof *all);
  for (int e = 0; e < 2; e++)
    for (;;) {
      const float *x;
      int count;
      if (embr_loader_next(ld, &x, NULL, NULL, &count) != 0 || count == 0) break;
      for (size_t i = 0; i < (size_t)count * per && n < cap; i++) all[n++] = x[i];
    }
  embr_loader_free(ld);
  *n_out = n;
  return all;
}

static void test_loader_cache(void) {
  const char *root = th_path("cachetree");
  char p[600];
  make_dir(root);
  for (int c = 0; c < 2; c++) {
    snprintf(p, sizeof p, "%s/c%d", root, c), make_dir(p);
    for (int i = 0; i < 4; i++) snprintf(p, sizeof p, "%s/c%d/%d.png", root, c, i), write_image_file(p, 8, 7, 3, (uint64_t)(c * 10 + i));
  }
  embr_dataset *ds;
  REQUIRE(embr_dataset_open_folder(root, &ds) == 0);
  size_t n1 = 0, n2 = 0, n3 = 0;
  float *a = two_epochs(ds, 0, &n1), *b = two_epochs(ds, 1, &n2), *c = two_epochs(ds, 1, &n3);
  CHECK(a && b && c && n1 == 2 * 8 * 90 && n1 == n2 && n2 == n3);
  if (a && b && c) {
    CHECK(memcmp(a, b, n1 * sizeof *a) == 0);
    CHECK(memcmp(b, c, n1 * sizeof *a) == 0);
  }
  free(a);
  free(b);
  free(c);
  embr_dataset_free(ds);
}

/* ---- main ------------------------------------------------------------------------------------------------ */

int main(int argc, char **argv) {
  return RUN_TESTS(argc, argv, test_png_roundtrip, test_pnm_roundtrip, test_pnm_variants, test_png_variants,
                   test_jpeg_decode, test_corrupt_png, test_corrupt_jpeg, test_corrupt_pnm,
                   test_png_chunk_bomb, test_jpeg_many_scans, test_jpeg_corrupt_data, test_jpeg_exif_orientation,
                   test_jpeg_cmyk, test_resize_reference,
                   test_resize_hand, test_resize_identity, test_to_tensor, test_png_alpha, test_alpha_white,
                   test_center_crop, test_clip_reference, test_augment, test_folder_dataset,
                   test_flat_dataset, test_list_dataset, test_folder_natural_order, test_mnist_small, test_mnist_real, test_loader_epochs,
                   test_loader_bad_file, test_loader_cache);
}

/* Plots: PNG pictures decoded back (size, where each label's colour lands, title and legend ink),
 * SVG point elements, PDF header, the HTML page's embedded data and escaping, label order and
 * palette, and errors (no file left behind).
 *
 * Also a checker for the HTML screenshot test (test_plot_html.sh):
 *   test_plot --check-screenshot SHOT.png X0 X1
 * passes when, between columns X0 and X1 (the canvas) and below the top bar, the first label's
 * colour is in the left half and not the right, and the second label's colour the other way. */
#include "embr/plot.h"
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <png.h>
#include <sys/stat.h>
#include <unistd.h>

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) n = 0;
  if (buf) buf[n] = '\0';
  fclose(f);
  if (len) *len = (size_t)n;
  return buf;
}

static int count_substr(const char *hay, const char *needle) {
  int k = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle)) k++;
  return k;
}

/* ---- PNG decoding and colour matching --------------------------------------------------------- */

typedef struct rgb_image {
  int w, h;
  unsigned char *px; /* w*h RGB */
} rgb_image;

static int png_load(const char *path, rgb_image *im) {
  png_image pi;
  memset(&pi, 0, sizeof pi);
  pi.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&pi, path)) return -1;
  pi.format = PNG_FORMAT_RGB;
  im->w = (int)pi.width;
  im->h = (int)pi.height;
  im->px = malloc(PNG_IMAGE_SIZE(pi));
  if (!im->px || !png_image_finish_read(&pi, NULL, im->px, 0, NULL)) {
    free(im->px);
    png_image_free(&pi);
    return -1;
  }
  return 0;
}

/* 1 when pixel p is colour c blended over white at some opacity: 255-p must be a multiple (0.3 to
 * 1.15, i.e. from faint to a few overlapping markers) of 255-c, within a small residual. */
static int is_shade_of(const unsigned char *p, const unsigned char c[3]) {
  double v[3], u[3], uu = 0, uv = 0;
  for (int i = 0; i < 3; i++) {
    v[i] = 255.0 - p[i];
    u[i] = 255.0 - c[i];
    uu += u[i] * u[i];
    uv += u[i] * v[i];
  }
  double t = uv / uu, res = 0;
  if (t < 0.3 || t > 1.15) return 0;
  for (int i = 0; i < 3; i++) res += (v[i] - t * u[i]) * (v[i] - t * u[i]);
  return sqrt(res) <= 0.1 * sqrt(uu) + 6;
}

/* Pixels of colour c in the rectangle [x0, x1) x [y0, y1). */
static long count_colour(const rgb_image *im, const unsigned char c[3], int x0, int x1, int y0, int y1) {
  long k = 0;
  for (int y = y0; y < y1 && y < im->h; y++)
    for (int x = x0; x < x1 && x < im->w; x++) k += is_shade_of(im->px + ((size_t)y * im->w + x) * 3, c);
  return k;
}

/* Pixels that are clearly not white background. */
static long count_ink(const rgb_image *im, int x0, int x1, int y0, int y1) {
  long k = 0;
  for (int y = y0; y < y1 && y < im->h; y++)
    for (int x = x0; x < x1 && x < im->w; x++) {
      const unsigned char *p = im->px + ((size_t)y * im->w + x) * 3;
      k += p[0] < 200 || p[1] < 200 || p[2] < 200;
    }
  return k;
}

/* ---- data -------------------------------------------------------------------------------------- */

/* Two clusters: rows 0..n/2-1 around (-10, 0) labelled "a", the rest around (+10, 0) labelled "b".
 * Three columns (ld = 3): the third holds huge values that would wreck the layout if used. */
static float *two_clusters(int n, const char ***labels) {
  float *xy = malloc(sizeof(float) * 3 * (size_t)n);
  *labels = malloc(sizeof(char *) * (size_t)n);
  embr_rng rng;
  embr_rng_seed(&rng, 7);
  for (int i = 0; i < n; i++) {
    int right = i >= n / 2;
    xy[3 * i] = (float)((right ? 10 : -10) + embr_rng_normal(&rng));
    xy[3 * i + 1] = (float)embr_rng_normal(&rng);
    xy[3 * i + 2] = (float)(i % 2 ? 1e30 : -1e30);
    (*labels)[i] = right ? "b" : "a";
  }
  return xy;
}

/* ---- tests ------------------------------------------------------------------------------------- */

static void test_params_and_formats(void) {
  embr_plot_params p = embr_plot_params_default();
  CHECK_EQ_INT(p.width, 1600);
  CHECK_EQ_INT(p.height, 1200);
  CHECK(p.show_legend == 1 && p.draw_texts == 1 && p.max_legend == 30 && p.point_size == 0);
  CHECK(embr_plot_format_from_path("a/b.png") == EMBR_PLOT_PNG);
  CHECK(embr_plot_format_from_path("B.SVG") == EMBR_PLOT_SVG);
  CHECK(embr_plot_format_from_path("x.pdf") == EMBR_PLOT_PDF);
  CHECK(embr_plot_format_from_path("x.htm") == EMBR_PLOT_HTML);
  CHECK(embr_plot_format_from_path("x.html") == EMBR_PLOT_HTML);
  CHECK(embr_plot_format_from_path("x.jpg") == EMBR_PLOT_AUTO);
  CHECK(embr_plot_format_from_path("dir.png/x") == EMBR_PLOT_AUTO);
  embr_plot_format f;
  CHECK(embr_plot_format_parse("Html", &f) == 0 && f == EMBR_PLOT_HTML);
  CHECK(embr_plot_format_parse("gif", &f) == EMBR_EINVAL);
}

static void test_palette(void) {
  unsigned char a[3], b[3];
  double min_d = 1e9;
  for (int i = 0; i < 20; i++)
    for (int j = i + 1; j < 20; j++) {
      embr_plot_color(i, a);
      embr_plot_color(j, b);
      double d = sqrt(pow(a[0] - b[0], 2) + pow(a[1] - b[1], 2) + pow(a[2] - b[2], 2));
      if (d < min_d) min_d = d;
    }
  CHECK_MSG(min_d > 40, "closest pair of the first 20 colours is %.1f apart", min_d);
  for (int i = 0; i < 20; i++) { /* none too close to the white background */
    embr_plot_color(i, a);
    CHECK(a[0] + a[1] + a[2] < 3 * 225);
  }
  for (int i = 20; i < 200; i++) { /* later labels: deterministic, and neighbours differ */
    embr_plot_color(i, a);
    embr_plot_color(i, b);
    CHECK(memcmp(a, b, 3) == 0);
    embr_plot_color(i + 1, b);
    CHECK(memcmp(a, b, 3) != 0);
  }
}

static void test_png_two_clusters(void) {
  const char **labels;
  int n = 400;
  float *xy = two_clusters(n, &labels);
  embr_plot_params p = embr_plot_params_default();
  p.title = "Two clusters";
  p.show_legend = 0;
  const char *path = th_path("two.png");
  REQUIRE(embr_plot_write(path, xy, n, 3, labels, NULL, &p) == 0);
  rgb_image im = {0, 0, NULL};
  REQUIRE(png_load(path, &im) == 0);
  CHECK_EQ_INT(im.w, 1600);
  CHECK_EQ_INT(im.h, 1200);
  unsigned char ca[3], cb[3];
  embr_plot_color(0, ca); /* "a" sorts first */
  embr_plot_color(1, cb);
  int mid = im.w / 2;
  long a_left = count_colour(&im, ca, 0, mid, 0, im.h), a_right = count_colour(&im, ca, mid, im.w, 0, im.h);
  long b_left = count_colour(&im, cb, 0, mid, 0, im.h), b_right = count_colour(&im, cb, mid, im.w, 0, im.h);
  CHECK_MSG(a_left > 2000 && a_right == 0, "colour of 'a': %ld left, %ld right", a_left, a_right);
  CHECK_MSG(b_right > 2000 && b_left == 0, "colour of 'b': %ld left, %ld right", b_left, b_right);
  /* The clusters sit at mid-height (y = 0 in the data); the title is ink in the top band. */
  CHECK(count_colour(&im, ca, 0, mid, im.h / 4, 3 * im.h / 4) > a_left * 9 / 10);
  CHECK(count_ink(&im, 0, im.w, 0, 70) > 300);
  CHECK_EQ_INT(count_colour(&im, ca, 0, im.w, 0, 70) + count_colour(&im, cb, 0, im.w, 0, 70), 0);
  /* The same call again gives the same bytes (seeded drawing order). */
  const char *again = th_path("two-again.png");
  REQUIRE(embr_plot_write(again, xy, n, 3, labels, NULL, &p) == 0);
  size_t l1, l2;
  char *b1 = read_file(path, &l1), *b2 = read_file(again, &l2);
  CHECK(b1 && b2 && l1 == l2 && memcmp(b1, b2, l1) == 0);
  free(b1);
  free(b2);
  unlink(again);
  free(im.px);
  free(xy);
  free(labels);
}

static void test_png_legend(void) {
  const char **labels;
  int n = 400;
  float *xy = two_clusters(n, &labels);
  const char *path = th_path("legend.png");
  REQUIRE(embr_plot_write(path, xy, n, 3, labels, NULL, NULL) == 0);
  rgb_image im = {0, 0, NULL};
  REQUIRE(png_load(path, &im) == 0);
  unsigned char ca[3], cb[3];
  embr_plot_color(0, ca);
  embr_plot_color(1, cb);
  /* The legend at the right edge: a marker of each colour (the left cluster's colour can only be
   * there through the legend) and the label names and counts in ink. */
  int x0 = im.w - 150;
  CHECK(count_colour(&im, ca, x0, im.w, 0, im.h) > 50);
  CHECK(count_colour(&im, cb, x0, im.w, 0, im.h) > 50);
  CHECK(count_ink(&im, x0, im.w, 0, im.h) > 200);
  /* The points moved left to make room for it; the left cluster is still at the left. */
  CHECK(count_colour(&im, ca, 0, im.w / 3, 0, im.h) > 2000);
  free(im.px);
  free(xy);
  free(labels);
}

static void test_png_texts(void) {
  enum { N = 60 };
  float xy[2 * N];
  const char *texts[N];
  for (int i = 0; i < N; i++) {
    xy[2 * i] = (float)(i % 6);
    xy[2 * i + 1] = (float)(i / 6);
    texts[i] = i == 3 ? "bad \xff\xfe utf-8" : i == 4 ? "caf\xc3\xa9 \xe2\x98\x95" : "word";
  }
  texts[5] = NULL;
  embr_plot_params p = embr_plot_params_default();
  p.title = "title with a bad byte \xc3("; /* cairo would refuse it: cleaned to U+FFFD */
  const char *with = th_path("texts.png"), *without = th_path("notexts.png");
  REQUIRE(embr_plot_write(with, xy, N, 2, NULL, texts, &p) == 0); /* invalid UTF-8 is no error */
  p.draw_texts = 0;
  REQUIRE(embr_plot_write(without, xy, N, 2, NULL, texts, &p) == 0);
  CHECK(embr_plot_write(th_path("texts.pdf"), xy, N, 2, texts, texts, &p) == 0);
  CHECK(embr_plot_write(th_path("texts.svg"), xy, N, 2, texts, texts, &p) == 0);
  rgb_image a = {0, 0, NULL}, b = {0, 0, NULL};
  REQUIRE(png_load(with, &a) == 0 && png_load(without, &b) == 0);
  /* Texts are dark grey: count near-grey ink pixels (markers are coloured). */
  long grey_a = 0, grey_b = 0;
  for (size_t i = (size_t)a.w * 100; i < (size_t)a.w * a.h; i++) { /* below the title */
    const unsigned char *pa = a.px + 3 * i, *pb = b.px + 3 * i;
    grey_a += pa[0] < 120 && abs(pa[0] - pa[2]) < 12;
    grey_b += pb[0] < 120 && abs(pb[0] - pb[2]) < 12;
  }
  CHECK_MSG(grey_a > 2000 && grey_b < 50, "text pixels: %ld drawn, %ld without texts", grey_a, grey_b);
  free(a.px);
  free(b.px);
}

/* Many labels: the legend keeps the largest, all still get colours; one point, equal points. */
static void test_png_edge_cases(void) {
  enum { N = 900 };
  float xy[2 * N];
  const char *labels[N];
  char names[45][16];
  for (int k = 0; k < 45; k++) snprintf(names[k], sizeof names[k], "class %d", k);
  for (int i = 0; i < N; i++) {
    xy[2 * i] = (float)(i % 30);
    xy[2 * i + 1] = (float)(i / 30);
    labels[i] = names[(i * 7) % 45];
  }
  CHECK(embr_plot_write(th_path("many.png"), xy, N, 2, labels, NULL, NULL) == 0);
  CHECK(embr_plot_write(th_path("one.png"), xy, 1, 2, labels, NULL, NULL) == 0);
  float same[6] = {3, 3, 3, 3, 3, 3};
  CHECK(embr_plot_write(th_path("same.pdf"), same, 3, 2, NULL, NULL, NULL) == 0);
  embr_plot_params p = embr_plot_params_default();
  p.width = 64;
  p.height = 64;
  CHECK(embr_plot_write(th_path("tiny.png"), xy, N, 2, labels, NULL, &p) == 0);
  rgb_image im = {0, 0, NULL};
  CHECK(png_load(th_path("tiny.png"), &im) == 0 && im.w == 64 && im.h == 64);
  free(im.px);
}

static void test_svg_pdf(void) {
  enum { N = 37 };
  float xy[2 * N];
  const char *labels[N];
  for (int i = 0; i < N; i++) {
    xy[2 * i] = (float)i;
    xy[2 * i + 1] = (float)(i * i % 11);
    labels[i] = i % 3 ? "x" : "y";
  }
  embr_plot_params p = embr_plot_params_default();
  p.opacity = 0.5; /* markers are the only elements with this opacity */
  p.title = "SVG & PDF";
  const char *svg = th_path("p.svg"), *pdf = th_path("p.pdf");
  REQUIRE(embr_plot_write(svg, xy, N, 2, labels, NULL, &p) == 0);
  char *s = read_file(svg, NULL);
  REQUIRE(s != NULL);
  CHECK(strncmp(s, "<?xml", 5) == 0);
  CHECK(strstr(s, "<svg") != NULL && strstr(s, "</svg>") != NULL);
  CHECK(strstr(s, "width=\"1600") != NULL);
  CHECK_EQ_INT(count_substr(s, "fill-opacity:0.5;"), N);
  free(s);
  REQUIRE(embr_plot_write(pdf, xy, N, 2, labels, NULL, &p) == 0);
  size_t len;
  s = read_file(pdf, &len);
  REQUIRE(s != NULL && len > 100);
  CHECK(memcmp(s, "%PDF-", 5) == 0);
  CHECK(strstr(s + len - 16, "%%EOF") != NULL);
  free(s);
  /* --format beats the extension. */
  p.format = EMBR_PLOT_PNG;
  REQUIRE(embr_plot_write(th_path("png.data"), xy, N, 2, labels, NULL, &p) == 0);
  s = read_file(th_path("png.data"), NULL);
  CHECK(s && memcmp(s, "\x89PNG", 4) == 0);
  free(s);
  unlink(th_path("png.data"));
}

/* The text between `after` and the next `end`, copied. */
static char *between(const char *s, const char *after, const char *end) {
  const char *a = strstr(s, after);
  if (!a) return NULL;
  a += strlen(after);
  const char *e = strstr(a, end);
  if (!e) return NULL;
  char *out = malloc((size_t)(e - a) + 1);
  memcpy(out, a, (size_t)(e - a));
  out[e - a] = '\0';
  return out;
}

static int count_array(const char *json, const char *key) {
  char *arr = between(json, key, "]");
  if (!arr) return -1;
  int k = *arr ? 1 : 0;
  for (char *p = arr; *p; p++) k += *p == ',';
  free(arr);
  return k;
}

static void test_html(void) {
  enum { N = 50 };
  float xy[3 * N];
  const char *labels[N], *texts[N];
  const char *evil = "</script><script>alert(\"x\")</script> & <!-- \xe2\x80\xa8";
  for (int i = 0; i < N; i++) {
    xy[3 * i] = (float)i * 0.5f;
    xy[3 * i + 1] = (float)(i % 7);
    xy[3 * i + 2] = NAN; /* not plotted: ld = 3 */
    labels[i] = i % 5 == 0 ? evil : i % 2 ? "caf\xc3\xa9" : "10";
    texts[i] = i == 1 ? "say \"hi\"\n\\ \xff" : "t";
  }
  embr_plot_params p = embr_plot_params_default();
  p.title = "Map </script> <b>";
  const char *path = th_path("map.html");
  REQUIRE(embr_plot_write(path, xy, N, 3, labels, texts, &p) == 0);
  char *s = read_file(path, NULL);
  REQUIRE(s != NULL);
  CHECK(strncmp(s, "<!DOCTYPE html>", 15) == 0);
  /* Exactly the page's own two script elements end, whatever the strings contain. */
  CHECK_EQ_INT(count_substr(s, "</script>"), 2);
  CHECK_EQ_INT(count_substr(s, "<!--"), 0);
  CHECK(strstr(s, "http://") == NULL && strstr(s, "https://") == NULL); /* self-contained */
  CHECK(strstr(s, "<title>Map &lt;/script&gt; &lt;b&gt;</title>") != NULL);
  char *data = between(s, "<script id=\"embr-data\" type=\"application/json\">", "</script>");
  REQUIRE(data != NULL);
  CHECK_EQ_INT(count_array(data, "\"x\":["), N);
  CHECK_EQ_INT(count_array(data, "\"y\":["), N);
  CHECK_EQ_INT(count_array(data, "\"c\":["), N);
  CHECK(strstr(data, "\"x\":[0,0.5,1,") != NULL);
  /* Labels sorted (numbers first), escaped for a script element; raw UTF-8 kept. */
  CHECK(strstr(data, "\"labels\":[\"10\",\"\\u003c/script\\u003e\\u003cscript\\u003e"
                     "alert(\\\"x\\\")\\u003c/script\\u003e \\u0026 \\u003c!-- \\u2028\",\"caf\xc3\xa9\"]") != NULL);
  CHECK(strstr(data, "\"counts\":[20,10,20]") != NULL);
  CHECK(strstr(data, "\"say \\\"hi\\\"\\u000a\\\\ \xef\xbf\xbd\"") != NULL); /* \xff -> U+FFFD */
  CHECK(strstr(data, "\"title\":\"Map \\u003c/script\\u003e \\u003cb\\u003e\"") != NULL);
  free(data);
  free(s);
}

static void test_label_order(void) {
  const char *labels[] = {"class 10", "b", "10", "9", "class 2", "-1.5", "a", "2", "9", "B"};
  float xy[20] = {0};
  for (int i = 0; i < 10; i++) xy[2 * i] = (float)i;
  const char *path = th_path("order.html");
  REQUIRE(embr_plot_write(path, xy, 10, 2, labels, NULL, NULL) == 0);
  char *s = read_file(path, NULL);
  REQUIRE(s != NULL);
  CHECK(strstr(s, "\"labels\":[\"-1.5\",\"2\",\"9\",\"10\",\"B\",\"a\",\"b\",\"class 2\",\"class 10\"]") != NULL);
  CHECK(strstr(s, "\"counts\":[1,1,2,1,1,1,1,1,1]") != NULL);
  /* point 0 is "class 10" (label 8), point 2 is "10" (label 3) */
  CHECK(strstr(s, "\"c\":[8,6,3,2,7,0,5,1,2,4]") != NULL);
  free(s);
  /* Without labels: no classes, one colour. */
  REQUIRE(embr_plot_write(path, xy, 10, 2, NULL, NULL, NULL) == 0);
  s = read_file(path, NULL);
  CHECK(s && strstr(s, "\"labels\":[],\"counts\":[],\"colors\":[\"#") && strstr(s, "\"c\":null"));
  free(s);
}

/* A failing write names the file, leaves nothing behind and keeps an existing file intact. */
static void expect_fail(const char *path, int status, const float *xy, int64_t n, int64_t ld,
                        const embr_plot_params *p) {
  int before = th_count_entries(th_scratch(), "");
  int rc = embr_plot_write(path, xy, n, ld, NULL, NULL, p);
  CHECK_MSG(rc == status, "%s: status %d, expected %d (%s)", path, rc, status, embr_last_error());
  CHECK_MSG(strstr(embr_last_error(), path) != NULL, "message does not name %s: %s", path, embr_last_error());
  CHECK_EQ_INT(th_count_entries(th_scratch(), ""), before);
}

static void test_errors(void) {
  float xy[8] = {0, 0, 1, 1, NAN, 2, 3, 3};
  const char *old = th_path("old.png");
  FILE *f = fopen(old, "wb");
  REQUIRE(f != NULL);
  fputs("previous contents", f);
  fclose(f);
  expect_fail(old, EMBR_EVALUE, xy, 4, 2, NULL);
  CHECK(strstr(embr_last_error(), "point 2") != NULL);
  char *s = read_file(old, NULL);
  CHECK(s && strcmp(s, "previous contents") == 0);
  free(s);
  xy[4] = INFINITY;
  expect_fail(th_path("inf.svg"), EMBR_EVALUE, xy, 4, 2, NULL);
  expect_fail(th_path("nan.html"), EMBR_EVALUE, xy, 4, 2, NULL);
  expect_fail(th_path("x.jpg"), EMBR_EINVAL, xy, 2, 2, NULL);
  expect_fail(th_path("noext"), EMBR_EINVAL, xy, 2, 2, NULL);
  expect_fail(th_path("empty.png"), EMBR_EINVAL, xy, 0, 2, NULL);
  expect_fail(th_path("ld.png"), EMBR_EINVAL, xy, 2, 1, NULL);
  embr_plot_params p = embr_plot_params_default();
  p.width = 10;
  expect_fail(th_path("small.png"), EMBR_EINVAL, xy, 2, 2, &p);
  p = embr_plot_params_default();
  p.opacity = 2;
  expect_fail(th_path("opaque.png"), EMBR_EINVAL, xy, 2, 2, &p);
  /* Unwritable: a missing directory, a "directory" that is a file, an existing directory. */
  expect_fail(th_path("missing/x.png"), EMBR_EIO, xy, 2, 2, NULL);
  expect_fail(th_path("old.png/x.html"), EMBR_EIO, xy, 2, 2, NULL);
  REQUIRE(mkdir(th_path("adir.pdf"), 0755) == 0);
  expect_fail(th_path("adir.pdf"), EMBR_EIO, xy, 2, 2, NULL);
  rmdir(th_path("adir.pdf"));
  unlink(old);
}

/* ---- the screenshot checker ---------------------------------------------------------------------- */

static int check_screenshot(const char *path, int x0, int x1) {
  rgb_image im = {0, 0, NULL};
  if (png_load(path, &im) != 0) {
    fprintf(stderr, "%s: cannot decode the PNG\n", path);
    return 1;
  }
  unsigned char ca[3], cb[3];
  embr_plot_color(0, ca);
  embr_plot_color(1, cb);
  int mid = (x0 + x1) / 2, top = 60; /* below the page's top bar */
  long al = count_colour(&im, ca, x0, mid, top, im.h), ar = count_colour(&im, ca, mid, x1, top, im.h);
  long bl = count_colour(&im, cb, x0, mid, top, im.h), br = count_colour(&im, cb, mid, x1, top, im.h);
  fprintf(stderr, "%s (%dx%d): first label %ld px left, %ld right; second %ld left, %ld right\n", path,
          im.w, im.h, al, ar, bl, br);
  free(im.px);
  /* A stray anti-aliased pixel may land on a colour; a cluster is thousands. */
  int ok = al > 1000 && br > 1000 && ar * 100 < al && bl * 100 < br;
  if (!ok) fprintf(stderr, "%s: the clusters are not where they were placed\n", path);
  return ok ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "--check-screenshot") == 0)
    return check_screenshot(argv[2], atoi(argv[3]), atoi(argv[4]));
  int rc = RUN_TESTS(argc, argv, test_params_and_formats, test_palette, test_png_two_clusters,
                     test_png_legend, test_png_texts, test_png_edge_cases, test_svg_pdf, test_html,
                     test_label_order, test_errors);
  embr_plot_cleanup();
  return rc;
}

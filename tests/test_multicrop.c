/* Multi-crop augmentation (DINO): every pixel operation against torchvision / Pillow golden outputs
 * (scripts/make_multicrop_ref.py wrote tests/ref/multicrop/), the crop sampler and the per-view
 * probabilities over many fixed-seed draws, embr_multicrop as plan + render, parameter checks, and
 * the multi-crop batch loader (layout, determinism, every dataset kind). */
#include "embr/image.h"
#include "embr/matrix.h"
#include "harness.h"
#include "image/multicrop_internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static char ref_dir[600];

static const char *ref(const char *name) {
  static char buf[4][800];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", ref_dir, name);
  return buf[k];
}

/* A view plan from the "view" case's arguments: top left h w size flip order b c s hue gray blur sol. */
static int parse_view(char **a, int n, embr__view_plan *v, int *size) {
  if (n != 14) return 0;
  memset(v, 0, sizeof *v);
  v->top = atoi(a[0]), v->left = atoi(a[1]), v->h = atoi(a[2]), v->w = atoi(a[3]);
  *size = atoi(a[4]);
  v->flip = atoi(a[5]);
  v->jitter = strcmp(a[6], "-") != 0;
  for (int k = 0; v->jitter && k < 4; k++) v->order[k] = a[6][k] - '0';
  v->brightness = strtof(a[7], NULL), v->contrast = strtof(a[8], NULL), v->saturation = strtof(a[9], NULL);
  v->hue = strtof(a[10], NULL);
  v->gray = atoi(a[11]);
  v->blur = strtof(a[12], NULL);
  v->solarize = atoi(a[13]);
  return 1;
}

/* Runs one 8-bit op of cases.txt on a copy of im. */
static int run_op(const char *op, char **a, int n, embr_image *im) {
  size_t np = (size_t)im->width * im->height;
  int c = im->channels;
  int32_t line[512];
  if (!strcmp(op, "crop_resize") && n == 5) {
    embr_image out;
    if (embr__crop_resize(im, atoi(a[0]), atoi(a[1]), atoi(a[2]), atoi(a[3]), atoi(a[4]), EMBR_RESIZE_BICUBIC, &out))
      return 0;
    embr_image_free(im);
    *im = out;
  } else if (!strcmp(op, "hflip")) embr__op_hflip(im->px, im->width, im->height, c);
  else if (!strcmp(op, "brightness") && n == 1) embr__op_brightness(im->px, np, c, strtof(a[0], NULL));
  else if (!strcmp(op, "contrast") && n == 1) embr__op_contrast(im->px, np, c, strtof(a[0], NULL));
  else if (!strcmp(op, "saturation") && n == 1) embr__op_saturation(im->px, np, c, strtof(a[0], NULL));
  else if (!strcmp(op, "hue") && n == 1) embr__op_hue(im->px, np, c, strtof(a[0], NULL));
  else if (!strcmp(op, "grayscale")) embr__op_grayscale(im->px, np, c);
  else if (!strcmp(op, "blur") && n == 1) embr__op_blur(im->px, im->width, im->height, c, strtof(a[0], NULL), line);
  else if (!strcmp(op, "solarize") && n == 1) embr__op_solarize(im->px, np, c, atoi(a[0]));
  else return 0;
  return 1;
}

/* Largest difference in levels between our image and Pillow's, and how many samples differ. */
static int compare_png(const embr_image *ours, const char *png, size_t *n_diff, size_t *n) {
  embr_image want;
  if (embr_image_read(png, &want)) return 999;
  int worst = 0;
  *n_diff = 0, *n = 0;
  if (want.width != ours->width || want.height != ours->height || want.channels != ours->channels) worst = 999;
  else {
    *n = (size_t)want.width * want.height * want.channels;
    for (size_t i = 0; i < *n; i++) {
      int d = abs((int)want.px[i] - (int)ours->px[i]);
      worst = d > worst ? d : worst;
      *n_diff += d != 0;
    }
  }
  embr_image_free(&want);
  return worst;
}

/* Normalised floats against torchvision's; returns the worst difference in 8-bit levels. */
static double compare_npy(const float *ours, size_t n, int channels, const embr_multicrop_params *p, const char *npy) {
  embr_matrix m;
  if (embr_matrix_read(npy, EMBR_FORMAT_AUTO, &m)) return 999;
  double worst = m.n == 1 && m.dim == (int64_t)n ? 0 : 999;
  size_t plane = n / (size_t)channels;
  for (size_t i = 0; worst < 999 && i < n; i++) {
    double d = fabs((double)ours[i] - m.data[i]) * 255.0 * p->std[i / plane];
    worst = d > worst ? d : worst;
  }
  embr_matrix_free(&m);
  return worst;
}

/* Every operation with fixed parameters against Pillow / torchvision on the same input.
 * Tolerances: 0 levels for flip, brightness, contrast, saturation, hue, grayscale, blur and
 * solarise: they redo Pillow's own integer / float32 arithmetic, so any difference is a bug (a 1 %
 * change of the blur radius, or the contrast mean truncated instead of rounded, fails by 1-2
 * levels). 1 level for crop + resize: our resize weights are floats, Pillow's 22-bit fixed point,
 * so a sum within ~1e-6 of a half may round the other way (as in test_image's CLIP test).
 * Normalisation: 1e-3 levels (float32 rounding of the same formula; a wrong mean or std is tens of
 * levels). Whole views: 3 levels, because a one-level resize difference can be carried further
 * by the later steps (contrast up to 1.4x, a hue sector change in the 8-bit HSV round trip).
 * Measured on this fixture: 0 everywhere (every value exact). */
static void test_ops_reference(void) {
  FILE *f = fopen(ref("cases.txt"), "r");
  REQUIRE(f);
  char buf[1024];
  int n_cases = 0, seen_ops = 0;
  const char *ops[] = {"crop_resize", "hflip", "brightness", "contrast", "saturation", "hue",
                       "grayscale", "blur", "solarize", "normalize", "view"};
  embr_multicrop_params p = embr_multicrop_params_dino(16, 8, 0);
  while (fgets(buf, sizeof buf, f)) {
    if (buf[0] == '#') continue;
    char *tok[32];
    int nt = 0;
    for (char *t = strtok(buf, " \n"); t && nt < 32; t = strtok(NULL, " \n")) tok[nt++] = t;
    REQUIRE(nt >= 3);
    const char *op = tok[0];
    embr_image im;
    REQUIRE(embr_image_read(ref(tok[1]), &im) == 0);
    for (int k = 0; k < 11; k++)
      if (!strcmp(op, ops[k])) seen_ops |= 1 << k;
    if (!strcmp(op, "normalize") || !strcmp(op, "view")) {
      embr__view_plan v;
      int size = 0;
      if (!strcmp(op, "normalize")) { /* the top-left m x m square, no resize: the float conversion alone */
        REQUIRE(nt == 4);
        memset(&v, 0, sizeof v);
        size = v.h = v.w = atoi(tok[3]);
      } else REQUIRE(parse_view(tok + 3, nt - 3, &v, &size));
      p.channels = im.channels;
      size_t n = (size_t)im.channels * size * size;
      float *out = malloc(n * sizeof *out);
      REQUIRE(embr__multicrop_render(&im, &p, &v, size, out) == 0);
      double worst = compare_npy(out, n, im.channels, &p, ref(tok[2]));
      double bound = !strcmp(op, "normalize") ? 1e-3 : 3.0;
      CHECK_MSG(worst <= bound, "%s %s: %.4g levels from torchvision (bound %g)", op, tok[2], worst, bound);
      if (getenv("EMBR_TEST_VERBOSE")) fprintf(stderr, "  %s %s: %.4g levels\n", op, tok[2], worst);
      free(out);
    } else {
      REQUIRE(run_op(op, tok + 3, nt - 3, &im));
      size_t nd = 0, n = 0;
      int worst = compare_png(&im, ref(tok[2]), &nd, &n);
      int bound = !strcmp(op, "crop_resize") ? 1 : 0;
      CHECK_MSG(worst <= bound, "%s %s: %d levels from Pillow (bound %d), %zu of %zu values differ", op, tok[2],
                worst, bound, nd, n);
      if (getenv("EMBR_TEST_VERBOSE")) fprintf(stderr, "  %s %s: %d levels, %zu of %zu differ\n", op, tok[2], worst, nd, n);
    }
    embr_image_free(&im);
    n_cases++;
  }
  fclose(f);
  CHECK(n_cases >= 70);
  CHECK(seen_ops == (1 << 11) - 1); /* every operation has a case */
}

/* ---- sampling ---------------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Kolmogorov-Smirnov distance of sorted samples from the uniform distribution on [lo, hi]. */
static double ks_uniform(double *x, int n, double lo, double hi) {
  qsort(x, (size_t)n, sizeof *x, cmp_double);
  double d = 0;
  for (int i = 0; i < n; i++) {
    double F = (x[i] - lo) / (hi - lo), a = fabs(F - (double)i / n), b = fabs(F - (double)(i + 1) / n);
    d = fmax(d, fmax(a, b));
  }
  return d;
}

/* On a large square image every first try fits (sides at most sqrt(0.4 * 4/3) of the image), so
 * the area fraction is uniform on the scale range and the log aspect uniform on the log ratio
 * range, up to rounding the sides to whole pixels (a relative error < 1/1000 here). N = 20000
 * draws from fixed seeds: the KS distance must stay under 0.015 (the 1 % critical value is
 * 1.63 / sqrt(N) = 0.0115, and rounding adds < 0.002); a wrong range or a uniform aspect in
 * place of a log-uniform one gives 0.03 or more. Offsets: uniform over every placement. */
static void test_rrc_statistics(void) {
  enum { N = 20000 };
  const float scale[2] = {0.05f, 0.4f}, ratio[2] = {3.0f / 4.0f, 4.0f / 3.0f};
  double *area = malloc(N * sizeof *area), *logr = malloc(N * sizeof *logr), *pos = malloc(N * sizeof *pos);
  embr_rng r;
  embr_rng_seed(&r, 1234);
  int first = 0;
  for (int i = 0; i < N; i++) {
    int top, left, h, w;
    first += embr__rrc_sample(2000, 2000, scale, ratio, &r, &top, &left, &h, &w) == 1;
    area[i] = (double)w * h / (2000.0 * 2000.0);
    logr[i] = log((double)w / h);
    pos[i] = (left + 0.5) / (2000 - w + 1); /* uniform placement: uniform on (0, 1) */
    CHECK(top >= 0 && left >= 0 && top + h <= 2000 && left + w <= 2000);
  }
  CHECK(first == N);
  double ka = ks_uniform(area, N, 0.05, 0.4), kr = ks_uniform(logr, N, log(0.75), log(4.0 / 3.0));
  double kp = ks_uniform(pos, N, 0, 1);
  CHECK_MSG(ka < 0.015 && kr < 0.015 && kp < 0.015, "KS: area %.4f, log ratio %.4f, position %.4f", ka, kr, kp);
  /* Global crops of a 4:3 image: every sample inside the documented ranges after rounding, and
   * some retries happen (big areas at extreme aspects do not fit). */
  const float gscale[2] = {0.4f, 1.0f};
  int retries = 0, fallback = 0;
  for (int i = 0; i < N; i++) {
    int top, left, h, w;
    int t = embr__rrc_sample(64, 48, gscale, ratio, &r, &top, &left, &h, &w);
    retries += t != 1, fallback += t == 0;
    double a = (double)w * h / (64.0 * 48.0), ar = (double)w / h;
    int ok = top >= 0 && left >= 0 && top + h <= 48 && left + w <= 64;
    if (t) ok = ok && a > 0.4 - 0.05 && a <= 1.0 + 0.05 && ar > 0.75 - 0.05 && ar < 4.0 / 3.0 + 0.05;
    CHECK_MSG(ok, "draw %d: %dx%d at (%d, %d), tries %d", i, w, h, left, top, t);
    if (!ok) break;
  }
  CHECK(retries > N / 50 && fallback < N / 100);
  /* The fallback, by hand: 1000x10 never fits (h >= sqrt(0.4 * 10000 * 3/4) = 55 > 10), so the
   * centre crop of ratio 4/3: h 10, w round(13.33) = 13, left (1000 - 13) / 2 = 493, top 0. */
  int top, left, h, w;
  CHECK(embr__rrc_sample(1000, 10, gscale, ratio, &r, &top, &left, &h, &w) == 0);
  CHECK(top == 0 && left == 493 && h == 10 && w == 13);
  /* ... and a tall one: 10x1000 -> w 10, h round(10 / 0.75) = 13, top 493. */
  CHECK(embr__rrc_sample(10, 1000, gscale, ratio, &r, &top, &left, &h, &w) == 0);
  CHECK(top == 493 && left == 0 && h == 13 && w == 10);
  free(area), free(logr), free(pos);
}

/* |observed - p| within 5 standard errors of N draws (a fixed seed: the bound cannot flake; a
 * probability off by 0.02 fails it), exactly 0 or N for p = 0 or 1. */
static void check_rate(const char *what, int count, int n, double p) {
  double f = (double)count / n, se = sqrt(p * (1 - p) / n);
  if (p == 0 || p == 1) CHECK_MSG(f == p, "%s: %d of %d, expected always %s", what, count, n, p ? "on" : "off");
  else CHECK_MSG(fabs(f - p) <= 5 * se, "%s: rate %.4f, expected %.3f (+- %.4f)", what, f, p, 5 * se);
}

static void test_plan_probabilities(void) {
  enum { N = 20000 };
  embr_multicrop_params p = embr_multicrop_params_dino(224, 96, 6);
  const double blur[3] = {1.0, 0.1, 0.5}, sol[3] = {0.0, 0.2, 0.0};
  embr_rng r;
  embr_rng_seed(&r, 99);
  for (int kind = 0; kind < 3; kind++) {
    int flip = 0, jit = 0, gray = 0, bl = 0, so = 0, perm[24] = {0};
    double fb[4] = {0};
    for (int i = 0; i < N; i++) {
      embr__view_plan v;
      embr__multicrop_plan(&p, kind, 300, 200, &r, &v);
      flip += v.flip, jit += v.jitter, gray += v.gray, bl += v.blur > 0, so += v.solarize;
      if (v.jitter) {
        int seen = 0, code = 0;
        for (int k = 0; k < 4; k++) seen |= 1 << v.order[k], code = code * 4 + v.order[k];
        CHECK(seen == 15);
        int idx = 0; /* rank of the permutation, Lehmer code */
        for (int a = 0; a < 4; a++) {
          int smaller = 0;
          for (int b = a + 1; b < 4; b++) smaller += v.order[b] < v.order[a];
          idx = idx * (4 - a) + smaller;
        }
        perm[idx]++;
        (void)code;
        CHECK(v.brightness >= 0.6f && v.brightness <= 1.4f && v.contrast >= 0.6f && v.contrast <= 1.4f);
        CHECK(v.saturation >= 0.8f && v.saturation <= 1.2f && v.hue >= -0.1f && v.hue <= 0.1f);
        fb[0] += v.brightness, fb[1] += v.contrast, fb[2] += v.saturation, fb[3] += v.hue;
      } else CHECK(v.brightness == 1.0f && v.hue == 0.0f);
      if (v.blur > 0) CHECK(v.blur >= 0.1f && v.blur <= 2.0f);
    }
    check_rate("flip", flip, N, 0.5);
    check_rate("jitter", jit, N, 0.8);
    check_rate("grayscale", gray, N, 0.2);
    check_rate("blur", bl, N, blur[kind]);
    check_rate("solarize", so, N, sol[kind]);
    for (int k = 0; k < 24; k++) check_rate("jitter order", perm[k], jit, 1.0 / 24);
    /* factor means: uniform on the ranges, so 1, 1, 1, 0 (5 standard errors: width / sqrt(12 n)) */
    CHECK(fabs(fb[0] / jit - 1.0) < 5 * 0.8 / sqrt(12.0 * jit) && fabs(fb[2] / jit - 1.0) < 5 * 0.4 / sqrt(12.0 * jit));
    CHECK(fabs(fb[3] / jit) < 5 * 0.2 / sqrt(12.0 * jit));
  }
}

/* ---- embr_multicrop -------------------------------------------------------------------------------- */

static embr_image pattern(int w, int h, int c, uint64_t seed) {
  embr_image im = {w, h, c, malloc((size_t)w * h * c), NULL};
  embr_rng r;
  embr_rng_seed(&r, seed);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int k = 0; k < c; k++)
        im.px[((size_t)y * w + x) * c + k] = (uint8_t)((x * 7 + y * 3 + k * 50) % 200 + embr_rng_below(&r, 50));
  return im;
}

/* embr_multicrop is the documented plan-then-render per view, globals then locals, from one rng. */
static void test_multicrop_matches_plan(void) {
  embr_multicrop_params p = embr_multicrop_params_dino(20, 9, 3);
  embr_image im = pattern(41, 33, 3, 5);
  size_t gs = 3 * 20 * 20, ls = 3 * 9 * 9;
  float *g = malloc(2 * gs * sizeof *g), *l = malloc(3 * ls * sizeof *l), *want = malloc(gs * sizeof *want);
  embr_rng r, r2;
  embr_rng_seed(&r, 7);
  r2 = r;
  REQUIRE(embr_multicrop(&im, &p, &r, g, l) == 0);
  for (int i = 0; i < 5; i++) {
    int kind = i == 0 ? 0 : i < 2 ? 1 : 2, size = kind < 2 ? 20 : 9;
    embr__view_plan v;
    embr__multicrop_plan(&p, kind, im.width, im.height, &r2, &v);
    REQUIRE(embr__multicrop_render(&im, &p, &v, size, want) == 0);
    const float *got = kind < 2 ? g + i * gs : l + (i - 2) * ls;
    CHECK(memcmp(got, want, (size_t)3 * size * size * sizeof *got) == 0);
  }
  CHECK(memcmp(&r, &r2, sizeof r) == 0); /* the same number of draws */
  /* Same seed, same bytes; another seed, other crops. */
  float *g2 = malloc(2 * gs * sizeof *g2), *l2 = malloc(3 * ls * sizeof *l2);
  embr_rng_seed(&r, 7);
  REQUIRE(embr_multicrop(&im, &p, &r, g2, l2) == 0);
  CHECK(memcmp(g, g2, 2 * gs * sizeof *g) == 0 && memcmp(l, l2, 3 * ls * sizeof *l) == 0);
  embr_rng_seed(&r, 8);
  REQUIRE(embr_multicrop(&im, &p, &r, g2, l2) == 0);
  CHECK(memcmp(g, g2, 2 * gs * sizeof *g) != 0);
  /* Values are normalised 8-bit levels: inside [(0 - mean) / std, (1 - mean) / std]. */
  for (size_t i = 0; i < 2 * gs; i++) {
    int c = (int)(i % gs / 400);
    CHECK(g[i] >= -p.mean[c] / p.std[c] - 1e-5f && g[i] <= (1 - p.mean[c]) / p.std[c] + 1e-5f);
  }
  free(g), free(l), free(g2), free(l2), free(want);
  free(im.px);
}

/* Grey images stay grey (3 equal planes), RGB becomes Pillow's luma for 1 channel, alpha is
 * composited on white before anything else. */
static void test_multicrop_channels(void) {
  embr_multicrop_params p = embr_multicrop_params_dino(12, 6, 2);
  embr_image grey = pattern(30, 30, 1, 2), rgb = pattern(30, 30, 3, 3);
  float g[2 * 3 * 144], l[2 * 3 * 36];
  embr_rng r;
  embr_rng_seed(&r, 1);
  REQUIRE(embr_multicrop(&grey, &p, &r, g, l) == 0);
  for (int v = 0; v < 2; v++)
    for (int i = 0; i < 144; i++) {
      /* same level in every channel: (x - mean_c) / std_c gives the same x back */
      float x0 = g[v * 432 + i] * p.std[0] + p.mean[0], x2 = g[v * 432 + 288 + i] * p.std[2] + p.mean[2];
      CHECK(fabsf(x0 - x2) < 1e-5f);
    }
  /* 1 channel from RGB: the same crops as the grey (luma) image of it */
  p.channels = 1;
  embr_image luma = {30, 30, 1, malloc(900), NULL};
  for (int i = 0; i < 900; i++) luma.px[i] = embr__luma8(rgb.px + 3 * i);
  float a[2 * 144], b[2 * 144], la[2 * 36], lb[2 * 36];
  embr_rng_seed(&r, 4);
  REQUIRE(embr_multicrop(&rgb, &p, &r, a, la) == 0);
  embr_rng_seed(&r, 4);
  REQUIRE(embr_multicrop(&luma, &p, &r, b, lb) == 0);
  CHECK(memcmp(a, b, sizeof a) == 0 && memcmp(la, lb, sizeof la) == 0);
  /* fully transparent -> white everywhere -> every value is (1 - mean) / std (no jitter or blur
   * can move a flat white image but brightness / contrast; switch them off) */
  p.channels = 3, p.jitter_p = 0, p.solarize_p[1] = 0;
  rgb.alpha = calloc(900, 1);
  embr_rng_seed(&r, 4);
  REQUIRE(embr_multicrop(&rgb, &p, &r, g, l) == 0);
  for (int i = 0; i < 2 * 432; i++) CHECK(fabsf(g[i] - (1 - p.mean[i % 432 / 144]) / p.std[i % 432 / 144]) < 1e-5f);
  free(rgb.alpha), free(rgb.px), free(grey.px), free(luma.px);
}

static void test_params_check(void) {
  embr_multicrop_params d = embr_multicrop_params_dino(224, 96, 8), p;
  CHECK(embr_multicrop_params_check(&d) == 0);
  CHECK(d.n_global == 2 && d.global_scale[0] == 0.4f && d.local_scale[1] == 0.4f && d.blur_p[0] == 1.0f &&
        d.solarize_p[1] == 0.2f && d.hue == 0.1f && d.resize == EMBR_RESIZE_BICUBIC);
#define BAD(stmt)                                                  \
  do {                                                             \
    p = d;                                                         \
    stmt;                                                          \
    CHECK_MSG(embr_multicrop_params_check(&p) == EMBR_EINVAL, #stmt); \
  } while (0)
  BAD(p.n_global = 0);
  BAD(p.n_local = -1);
  BAD(p.global_size = 0);
  BAD(p.local_size = EMBR_IMAGE_MAX_SIDE + 1);
  BAD(p.global_scale[0] = 0);
  BAD(p.local_scale[1] = 1.5f);
  BAD((p.global_scale[0] = 0.9f, p.global_scale[1] = 0.5f));
  BAD(p.ratio[0] = -1);
  BAD(p.channels = 2);
  BAD(p.std[1] = 0);
  BAD(p.mean[2] = NAN);
  BAD(p.flip_p = 1.5f);
  BAD(p.blur_p[2] = -0.1f);
  BAD(p.hue = 0.6f);
  BAD(p.contrast = -1);
  BAD(p.blur_sigma[0] = 0);
  BAD(p.solarize_threshold = 300);
  BAD(p.resize = 7);
#undef BAD
  p = d;
  p.n_local = 0, p.local_size = 0; /* no locals: their size does not matter */
  CHECK(embr_multicrop_params_check(&p) == 0);
  embr_image im = pattern(8, 8, 3, 1);
  float g[2 * 3 * 224 * 224 / 64];
  embr_rng r;
  embr_rng_seed(&r, 1);
  p = embr_multicrop_params_dino(8, 4, 1);
  CHECK(embr_multicrop(&im, &p, &r, g, NULL) == EMBR_EINVAL); /* locals wanted, no buffer */
  CHECK(embr_multicrop(NULL, &p, &r, g, g) == EMBR_EINVAL);
  im.channels = 2;
  CHECK(embr_multicrop(&im, &p, &r, g, g) == EMBR_EINVAL);
  free(im.px);
}

/* ---- the loader ---------------------------------------------------------------------------------- */

/* What the loader documents for item i of epoch e: embr_multicrop from
 * embr_rng_split(next(split(seed, 2e + 1)), i). */
static void expected_views(const embr_dataset *ds, const embr_multicrop_params *p, uint64_t seed, uint64_t epoch,
                           int64_t item, float *g, float *l) {
  embr_rng r;
  embr_rng_split(&r, seed, 2 * epoch + 1);
  uint64_t aug = embr_rng_next(&r);
  embr_rng_split(&r, aug, (uint64_t)item);
  embr_image im;
  REQUIRE(embr_dataset_image(ds, item, &im) == 0);
  REQUIRE(embr_multicrop(&im, p, &r, g, l) == 0);
  embr_image_free(&im);
}

/* Two epochs through a loader: every batch view-major, each item's views what embr_multicrop
 * gives from its documented stream; every item once per epoch; a second loader gives the same
 * bytes; epochs differ. */
static void check_loader(const embr_dataset *ds, const embr_multicrop_params *mp, int batch) {
  embr_loader_params lp = embr_loader_params_default();
  lp.batch = batch;
  lp.seed = 42;
  lp.multicrop = mp;
  embr_loader *a = NULL, *b = NULL;
  REQUIRE(embr_loader_create(ds, &lp, &a) == 0);
  REQUIRE(embr_loader_create(ds, &lp, &b) == 0);
  size_t gs = (size_t)mp->channels * mp->global_size * mp->global_size;
  size_t ls = (size_t)mp->channels * mp->local_size * mp->local_size;
  float *eg = malloc(mp->n_global * gs * sizeof *eg), *el = malloc((mp->n_local + 1) * ls * sizeof *el);
  int64_t n = embr_dataset_size(ds);
  for (uint64_t e = 0; e < 2; e++) {
    int64_t seen = 0;
    char *hit = calloc((size_t)n, 1);
    for (;;) {
      const float *g, *l, *g2, *l2;
      const int32_t *lab;
      const int64_t *items;
      int count, count2;
      REQUIRE(embr_loader_next_multicrop(a, &g, &l, &lab, &items, &count) == 0);
      REQUIRE(embr_loader_next_multicrop(b, &g2, &l2, NULL, NULL, &count2) == 0);
      CHECK(count == count2);
      if (count == 0) break;
      CHECK(memcmp(g, g2, mp->n_global * count * gs * sizeof *g) == 0);
      CHECK(mp->n_local == 0 ? l == NULL : memcmp(l, l2, mp->n_local * count * ls * sizeof *l) == 0);
      for (int j = 0; j < count; j++) {
        CHECK(lab[j] == embr_dataset_label(ds, items[j]));
        hit[items[j]]++;
        expected_views(ds, mp, 42, e, items[j], eg, el);
        for (int v = 0; v < mp->n_global; v++)
          CHECK(memcmp(g + ((size_t)v * count + j) * gs, eg + v * gs, gs * sizeof *g) == 0);
        for (int v = 0; v < mp->n_local; v++)
          CHECK(memcmp(l + ((size_t)v * count + j) * ls, el + v * ls, ls * sizeof *l) == 0);
      }
      seen += count;
    }
    CHECK(seen == n);
    for (int64_t i = 0; i < n; i++) CHECK(hit[i] == 1);
    free(hit);
  }
  /* epochs draw other crops: item 0's views in epoch 0 and 1 differ */
  float *e1 = malloc(mp->n_global * gs * sizeof *e1);
  expected_views(ds, mp, 42, 0, 0, eg, el);
  expected_views(ds, mp, 42, 1, 0, e1, el);
  CHECK(memcmp(eg, e1, mp->n_global * gs * sizeof *eg) != 0);
  free(e1);
  /* the ordinary call refuses a multicrop loader */
  const float *x;
  int count;
  CHECK(embr_loader_next(a, &x, NULL, NULL, &count) == EMBR_EINVAL);
  embr_loader_free(a);
  embr_loader_free(b);
  free(eg), free(el);
}

static void make_dir(const char *path) {
  if (mkdir(path, 0755) != 0 && errno != EEXIST) {
    perror(path);
    exit(1);
  }
}

static void set_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

static void test_loader_folder_flat_list(void) {
  const char *root = th_fresh_dir("folder");
  char path[900];
  FILE *list = fopen(th_path("list.txt"), "w");
  REQUIRE(list);
  for (int c = 0; c < 2; c++) {
    snprintf(path, sizeof path, "%s/c%d", root, c);
    make_dir(path);
    for (int i = 0; i < 4; i++) {
      embr_image im = pattern(20 + i * 3, 17 + c * 5, c ? 1 : 3, (uint64_t)(10 * c + i));
      snprintf(path, sizeof path, "%s/c%d/%d.png", root, c, i);
      REQUIRE(embr_image_write(path, &im) == 0);
      fprintf(list, "%s\n", path);
      free(im.px);
    }
  }
  fclose(list);
  embr_multicrop_params mp = embr_multicrop_params_dino(16, 8, 3);
  embr_dataset *ds = NULL;
  REQUIRE(embr_dataset_open_folder(root, &ds) == 0);
  check_loader(ds, &mp, 3); /* 8 items: batches of 3, 3, 2 */
  embr_dataset_free(ds);
  snprintf(path, sizeof path, "%s/c1", root);
  REQUIRE(embr_dataset_open_flat(path, &ds) == 0);
  mp.n_local = 0;
  check_loader(ds, &mp, 4);
  embr_dataset_free(ds);
  REQUIRE(embr_dataset_open_list(th_path("list.txt"), &ds) == 0);
  mp = embr_multicrop_params_dino(12, 6, 2);
  mp.channels = 1;
  mp.mean[0] = 0.5f, mp.std[0] = 0.25f;
  check_loader(ds, &mp, 5);
  embr_dataset_free(ds);
}

/* MNIST idx: grey digits; 3 channels replicate, 1 channel keeps them. */
static void test_loader_mnist(void) {
  const char *d = th_fresh_dir("mnist");
  enum { N = 7, R = 10, C = 9 };
  unsigned char img[16 + N * R * C], lab[8 + N];
  set_be32(img, 2051), set_be32(img + 4, N), set_be32(img + 8, R), set_be32(img + 12, C);
  for (int i = 0; i < N * R * C; i++) img[16 + i] = (unsigned char)((i * 37) % 251);
  set_be32(lab, 2049), set_be32(lab + 4, N);
  for (int i = 0; i < N; i++) lab[8 + i] = (unsigned char)(i % 3);
  th_write_file(th_join(d, "train-images-idx3-ubyte"), img, sizeof img);
  th_write_file(th_join(d, "train-labels-idx1-ubyte"), lab, sizeof lab);
  embr_dataset *ds = NULL;
  REQUIRE(embr_dataset_open_mnist(d, &ds) == 0);
  embr_multicrop_params mp = embr_multicrop_params_dino(8, 4, 2);
  check_loader(ds, &mp, 3);
  mp.channels = 1;
  check_loader(ds, &mp, 7);
  embr_dataset_free(ds);
}

/* A file that does not decode fails the batch holding it (message names it), the next goes on;
 * a loader made without multicrop refuses the multicrop call. */
static void test_loader_errors(void) {
  const char *dir = th_fresh_dir("bad");
  embr_image im = pattern(12, 12, 3, 1);
  REQUIRE(embr_image_write(th_join(dir, "a.png"), &im) == 0);
  th_write_file(th_join(dir, "b.png"), "\x89PNG\r\n\x1a\nxxxx", 12);
  REQUIRE(embr_image_write(th_join(dir, "c.png"), &im) == 0);
  free(im.px);
  embr_dataset *ds = NULL;
  REQUIRE(embr_dataset_open_flat(dir, &ds) == 0);
  embr_multicrop_params mp = embr_multicrop_params_dino(8, 4, 1);
  embr_loader_params lp = embr_loader_params_default();
  lp.batch = 1, lp.shuffle = 0, lp.multicrop = &mp;
  embr_loader *ld = NULL;
  REQUIRE(embr_loader_create(ds, &lp, &ld) == 0);
  const float *g, *l;
  int count;
  CHECK(embr_loader_next_multicrop(ld, &g, &l, NULL, NULL, &count) == 0 && count == 1);
  CHECK(embr_loader_next_multicrop(ld, &g, &l, NULL, NULL, &count) == EMBR_EFORMAT && count == 0 && g == NULL);
  CHECK(strstr(embr_last_error(), "b.png") != NULL);
  CHECK(embr_loader_next_multicrop(ld, &g, &l, NULL, NULL, &count) == 0 && count == 1);
  embr_loader_free(ld);
  mp.n_global = 0;
  CHECK(embr_loader_create(ds, &lp, &ld) == EMBR_EINVAL && ld == NULL);
  lp.multicrop = NULL;
  REQUIRE(embr_loader_create(ds, &lp, &ld) == 0);
  CHECK(embr_loader_next_multicrop(ld, &g, &l, NULL, NULL, &count) == EMBR_EINVAL);
  embr_loader_free(ld);
  embr_dataset_free(ds);
}

int main(int argc, char **argv) {
  snprintf(ref_dir, sizeof ref_dir, "%s/tests/ref/multicrop", EMBR_SOURCE_DIR);
  return RUN_TESTS(argc, argv, test_ops_reference, test_rrc_statistics, test_plan_probabilities,
                   test_multicrop_matches_plan, test_multicrop_channels, test_params_check,
                   test_loader_folder_flat_list, test_loader_mnist, test_loader_errors);
}

/* The neural engine: every layer's and loss's backward against central finite differences of its
 * forward (the loss sum(y * r) with fixed random r, accumulated in double), whole networks the
 * same way on a few coordinates, optimizers against their update rules written out by hand,
 * the schedule, clipping, safetensors round trips and hostile files; the transformer ops (and a
 * CLIP residual block built from them) the same way and against PyTorch's values and gradients. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "embr/core.h"
#include "harness.h"
#include "models/models.h"
#include "nn/dnnl.h"
#include "nn/gemm.h"
#include "nn/nn.h"
#include "nn/sgemm.h"
#include "nn/vmath.h"

typedef nn_t *(*op_fn)(nn_ctx *ctx, nn_t *x, const void *arg);

/* A loss an op computes besides its output (the cross-entropy of the margin head): part of the
 * probed function, so finite differences see it too. */
static double extra_loss;

typedef struct gcase {
  const char *name;
  op_fn op;
  const void *arg;
  int n, c, h, w;
  int training;
} gcase;

/* Forward with a fresh context (same dropout masks every time) and sum(y * r). */
static double probe(nn_params *P, const gcase *g, const float *x, const float *r, int record, float **dx) {
  nn_ctx ctx;
  embr__nn_ctx_init(&ctx, P, g->training, record, 7);
  nn_t *in = record ? embr__nn_tensor(&ctx, g->n, g->c, g->h, g->w) : embr__nn_wrap(&ctx, (float *)x, g->n, g->c, g->h, g->w);
  if (record) memcpy(in->d, x, sizeof(float) * (size_t)nn_numel(in));
  extra_loss = 0;
  nn_t *y = g->op(&ctx, in, g->arg);
  double s = extra_loss;
  if (y) {
    for (int64_t i = 0; i < nn_numel(y); i++) s += (double)y->d[i] * r[i];
    if (record) {
      float *gy = embr__nn_grad(&ctx, y);
      for (int64_t i = 0; i < nn_numel(y); i++) gy[i] += r[i];
      embr__nn_backward(&ctx);
      CHECK_MSG(in->g != NULL, "%s: no input gradient", g->name);
      if (in->g) memcpy(*dx, in->g, sizeof(float) * (size_t)nn_numel(in));
    }
  }
  CHECK_MSG(y != NULL, "%s: forward failed: %s", g->name, embr_last_error());
  embr__nn_ctx_free(&ctx);
  return s;
}

static int close_enough(double num, double ana) {
  return fabs(num - ana) <= 3e-3 + 3e-2 * fmax(fabs(num), fabs(ana));
}

/* Checks dx at up to 40 input coordinates and every parameter (up to 40 coordinates each). */
static void gradcheck(nn_params *P, const gcase *g) {
  int64_t nx = (int64_t)g->n * g->c * g->h * g->w;
  float *x = malloc(sizeof(float) * (size_t)nx), *dx = malloc(sizeof(float) * (size_t)nx), *r = malloc(sizeof(float) * 1000000);
  embr_rng rng;
  embr_rng_seed(&rng, 11);
  for (int64_t i = 0; i < nx; i++) x[i] = (float)embr_rng_normal(&rng);
  for (int i = 0; i < 1000000; i++) r[i] = (float)embr_rng_normal(&rng);
  embr__nn_params_zero_grad(P);
  probe(P, g, x, r, 1, &dx);
  float *pg = malloc(sizeof(float) * (size_t)(P->total ? P->total : 1));
  memcpy(pg, P->grad, sizeof(float) * (size_t)P->total);
  const double h = 1e-2;
  int bad = 0, checked = 0;
  for (int k = 0; k < 40 && k < nx; k++) {
    int64_t i = nx <= 40 ? k : (int64_t)embr_rng_below(&rng, (uint64_t)nx);
    float keep = x[i];
    x[i] = keep + (float)h;
    double up = probe(P, g, x, r, 0, NULL);
    x[i] = keep - (float)h;
    double dn = probe(P, g, x, r, 0, NULL);
    x[i] = keep;
    double num = (up - dn) / (2 * h);
    checked++;
    if (!close_enough(num, dx[i]) && bad++ < 3) fprintf(stderr, "  %s dx[%lld]: numeric %.6f analytic %.6f\n", g->name, (long long)i, num, dx[i]);
  }
  for (int p = 0; p < P->n; p++) {
    const nn_param *q = &P->p[p];
    if (q->kind == NN_BUFFER) continue;
    for (int k = 0; k < 40 && k < q->numel; k++) {
      int64_t i = q->off + (q->numel <= 40 ? k : (int64_t)embr_rng_below(&rng, (uint64_t)q->numel));
      float keep = P->data[i];
      P->data[i] = keep + (float)h;
      double up = probe(P, g, x, r, 0, NULL);
      P->data[i] = keep - (float)h;
      double dn = probe(P, g, x, r, 0, NULL);
      P->data[i] = keep;
      double num = (up - dn) / (2 * h);
      checked++;
      if (!close_enough(num, pg[i]) && bad++ < 3) fprintf(stderr, "  %s d%s[%lld]: numeric %.6f analytic %.6f\n", g->name, q->name, (long long)(i - q->off), num, pg[i]);
    }
  }
  CHECK_MSG(bad == 0, "%s: %d of %d gradient coordinates differ from finite differences", g->name, bad, checked);
  free(x), free(dx), free(r), free(pg);
}

/* Running statistics must not drift between probes: eval-mode checks read them. */
static void randomise(nn_params *P, uint64_t seed) {
  embr_rng r;
  embr_rng_seed(&r, seed);
  for (int p = 0; p < P->n; p++)
    for (int64_t i = 0; i < P->p[p].numel; i++) {
      float v = (float)embr_rng_normal(&r) * 0.5f;
      if (strstr(P->p[p].name, "running_var")) v = 0.5f + (float)embr_rng_double(&r);
      P->data[P->p[p].off + i] = v;
    }
}

static nn_t *op_conv(nn_ctx *c, nn_t *x, const void *a) { return embr__nn_conv2d(c, x, a); }
static nn_t *op_bn(nn_ctx *c, nn_t *x, const void *a) { return embr__nn_batchnorm(c, x, a); }
static nn_t *op_prelu(nn_ctx *c, nn_t *x, const void *a) { return embr__nn_prelu_f(c, x, a); }
static nn_t *op_linear(nn_ctx *c, nn_t *x, const void *a) { return embr__nn_linear_f(c, embr__nn_flatten(c, x), a); }
static nn_t *op_relu(nn_ctx *c, nn_t *x, const void *a) { (void)a; return embr__nn_relu(c, x); }
static nn_t *op_gelu(nn_ctx *c, nn_t *x, const void *a) { (void)a; return embr__nn_gelu(c, x); }
static nn_t *op_maxpool(nn_ctx *c, nn_t *x, const void *a) { (void)a; return embr__nn_maxpool(c, x, 3, 2, 1); }
static nn_t *op_avgpool(nn_ctx *c, nn_t *x, const void *a) { (void)a; return embr__nn_avgpool(c, x, 3, 2, 1); }
static nn_t *op_gap(nn_ctx *c, nn_t *x, const void *a) { (void)a; return embr__nn_global_avgpool(c, x); }
static nn_t *op_dropout(nn_ctx *c, nn_t *x, const void *a) { (void)a; return embr__nn_dropout(c, x, 0.3f); }
static nn_t *op_l2(nn_ctx *c, nn_t *x, const void *a) { (void)a; return embr__nn_l2norm(c, embr__nn_flatten(c, x)); }
static nn_t *op_add(nn_ctx *c, nn_t *x, const void *a) { (void)a; return embr__nn_add(c, embr__nn_relu(c, x), embr__nn_gelu(c, x)); }

static void test_conv_grads(void) {
  static const struct { int in, out, k, s, p, groups, bias, h, w; } cs[] = {
      {3, 4, 3, 1, 1, 1, 1, 7, 6}, {4, 6, 3, 2, 1, 2, 0, 9, 8}, {5, 5, 3, 2, 1, 5, 0, 8, 7}, /* depthwise */
      {6, 6, 5, 1, 2, 6, 1, 6, 6}, {4, 8, 1, 1, 0, 1, 0, 5, 5}, {3, 5, 7, 2, 3, 1, 0, 11, 10}, {4, 4, 4, 1, 0, 4, 0, 4, 4}};
  for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
    nn_params P = {0};
    nn_conv L;
    CHECK(embr__nn_conv_make(&P, &L, "conv", cs[i].in, cs[i].out, cs[i].k, cs[i].s, cs[i].p, cs[i].groups, cs[i].bias) == 0);
    CHECK(embr__nn_params_init(&P, 1) == 0);
    randomise(&P, 3 + i);
    char name[64];
    snprintf(name, sizeof(name), "conv case %zu", i);
    gcase g = {name, op_conv, &L, 2, cs[i].in, cs[i].h, cs[i].w, 1};
    gradcheck(&P, &g);
    embr__nn_params_free(&P);
  }
}

/* Convolution forward against a direct 7-loop reference. */
static void test_conv_forward_reference(void) {
  nn_params P = {0};
  nn_conv L;
  int N = 2, C = 6, H = 9, W = 7, O = 4, K = 3, S = 2, pad = 1, G = 2;
  CHECK(embr__nn_conv_make(&P, &L, "c", C, O, K, S, pad, G, 1) == 0);
  CHECK(embr__nn_params_init(&P, 5) == 0);
  randomise(&P, 5);
  nn_ctx ctx;
  embr__nn_ctx_init(&ctx, &P, 0, 0, 1);
  float x[2 * 6 * 9 * 7];
  embr_rng r;
  embr_rng_seed(&r, 9);
  for (size_t i = 0; i < sizeof(x) / sizeof(x[0]); i++) x[i] = (float)embr_rng_normal(&r);
  nn_t *y = embr__nn_conv2d(&ctx, embr__nn_wrap(&ctx, x, N, C, H, W), &L);
  REQUIRE(y);
  double worst = 0;
  const float *w = P.data + L.w, *b = P.data + L.b;
  for (int n = 0; n < N; n++)
    for (int o = 0; o < O; o++)
      for (int oy = 0; oy < y->h; oy++)
        for (int ox = 0; ox < y->w; ox++) {
          double acc = b[o];
          int g = o / (O / G), cg = C / G;
          for (int ci = 0; ci < cg; ci++)
            for (int i = 0; i < K; i++)
              for (int j = 0; j < K; j++) {
                int yy = oy * S - pad + i, xx = ox * S - pad + j;
                if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
                acc += (double)w[((o * cg + ci) * K + i) * K + j] * x[((n * C + g * cg + ci) * H + yy) * W + xx];
              }
          worst = fmax(worst, fabs(acc - y->d[((n * O + o) * y->h + oy) * y->w + ox]));
        }
  CHECK_MSG(worst < 1e-5, "grouped conv differs from the direct sum by %g", worst);
  CHECK_EQ_INT(y->h, 5);
  CHECK_EQ_INT(y->w, 4);
  embr__nn_ctx_free(&ctx);
  embr__nn_params_free(&P);
}

/* The Winograd path (3x3, stride 1, >= 16 channels) against the im2col path on odd sizes, and
 * its forward against the im2col backward by finite differences. */
static void test_winograd_matches_im2col(void) {
  static const struct { int c, o, h, w, bias; } cs[] = {{16, 16, 7, 5, 1}, {16, 24, 1, 1, 0}, {32, 16, 9, 12, 0}, {24, 32, 2, 3, 1}};
  for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
    nn_params P = {0};
    nn_conv L;
    CHECK(embr__nn_conv_make(&P, &L, "w", cs[i].c, cs[i].o, 3, 1, 1, 1, cs[i].bias) == 0);
    CHECK(embr__nn_params_init(&P, 8) == 0);
    randomise(&P, 8 + i);
    int n = 3;
    int64_t nx = (int64_t)n * cs[i].c * cs[i].h * cs[i].w, ny = (int64_t)n * cs[i].o * cs[i].h * cs[i].w;
    float *x = malloc(sizeof(float) * (size_t)nx), *ref = malloc(sizeof(float) * (size_t)ny);
    embr_rng r;
    embr_rng_seed(&r, 3);
    for (int64_t j = 0; j < nx; j++) x[j] = (float)embr_rng_normal(&r);
    double worst = 0, scale = 0;
    for (int pass = 0; pass < 2; pass++) {
      setenv("EMBR_WINOGRAD", pass ? "1" : "0", 1);
      nn_ctx ctx;
      embr__nn_ctx_init(&ctx, &P, 0, 0, 1);
      nn_t *y = embr__nn_conv2d(&ctx, embr__nn_wrap(&ctx, x, n, cs[i].c, cs[i].h, cs[i].w), &L);
      REQUIRE(y);
      for (int64_t j = 0; j < ny; j++) {
        if (!pass) ref[j] = y->d[j], scale = fmax(scale, fabs(y->d[j]));
        else worst = fmax(worst, fabs(y->d[j] - ref[j]));
      }
      embr__nn_ctx_free(&ctx);
    }
    CHECK_MSG(worst <= 1e-5 * scale, "Winograd case %zu differs from im2col by %.2e (scale %.2e)", i, worst, scale);
    gcase g = {"winograd conv", op_conv, &L, 2, cs[i].c, cs[i].h, cs[i].w, 1};
    if (i == 0) gradcheck(&P, &g);
    unsetenv("EMBR_WINOGRAD");
    free(x), free(ref);
    embr__nn_params_free(&P);
  }
}

/* The convolutions' single-threaded GEMM (oneDNN's sgemm when built in, else OpenBLAS) against
 * a double-precision triple loop: every transpose pair, odd sizes, leading dimensions wider than
 * the rows, alpha and beta, inside and outside a parallel region; the caller's OpenMP count is
 * as found afterwards. */
static void test_sgemm1(void) {
  static const int dims[][3] = {{1, 1, 1}, {7, 13, 5}, {33, 17, 70}, {64, 200, 96}};
  embr_rng r;
  embr_rng_seed(&r, 21);
  omp_set_num_threads(3);
  for (size_t d = 0; d < sizeof(dims) / sizeof(dims[0]); d++)
    for (int t = 0; t < 4; t++) {
      int m = dims[d][0], n = dims[d][1], k = dims[d][2], ta = t & 1, tb = t >> 1, pad = 3;
      int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
      int64_t na = (int64_t)(ta ? k : m) * lda, nb = (int64_t)(tb ? n : k) * ldb, nc = (int64_t)m * ldc;
      float *A = malloc(sizeof(float) * (size_t)na), *B = malloc(sizeof(float) * (size_t)nb),
            *C = malloc(sizeof(float) * (size_t)nc), *C0 = malloc(sizeof(float) * (size_t)nc);
      for (int64_t i = 0; i < na; i++) A[i] = (float)embr_rng_normal(&r);
      for (int64_t i = 0; i < nb; i++) B[i] = (float)embr_rng_normal(&r);
      for (int64_t i = 0; i < nc; i++) C0[i] = (float)embr_rng_normal(&r);
      for (int inside = 0; inside < 2; inside++) {
        memcpy(C, C0, sizeof(float) * (size_t)nc);
        if (inside) {
#pragma omp parallel num_threads(2)
          if (omp_get_thread_num() == 1)
            embr__nn_sgemm1(ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 0.5f, A, lda, B,
                            ldb, 2.0f, C, ldc);
        } else {
          embr__nn_sgemm1(ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 0.5f, A, lda, B, ldb,
                          2.0f, C, ldc);
        }
        double worst = 0, big = 1;
        for (int i = 0; i < m; i++)
          for (int j = 0; j < ldc; j++) {
            if (j >= n) { /* the padding past each row is not written */
              worst = fmax(worst, C[(int64_t)i * ldc + j] != C0[(int64_t)i * ldc + j] ? 1e30 : 0);
              continue;
            }
            double acc = 0;
            for (int q = 0; q < k; q++)
              acc += (double)(ta ? A[(int64_t)q * lda + i] : A[(int64_t)i * lda + q]) *
                     (tb ? B[(int64_t)j * ldb + q] : B[(int64_t)q * ldb + j]);
            double want = 0.5 * acc + 2.0 * C0[(int64_t)i * ldc + j];
            worst = fmax(worst, fabs(want - C[(int64_t)i * ldc + j])), big = fmax(big, fabs(want));
          }
        CHECK_MSG(worst <= 1e-5 * big, "sgemm1 %dx%dx%d trans %d%d (%s a parallel region): off by %.3g of %.3g", m, n,
                  k, ta, tb, inside ? "inside" : "outside", worst, big);
        CHECK_MSG(omp_get_max_threads() == 3, "sgemm1 left the caller's OpenMP count at %d", omp_get_max_threads());
      }
      free(A), free(B), free(C), free(C0);
    }
}

/* A convolution's output, input gradient and weight and bias gradients with its GEMMs on oneDNN
 * against the same with OpenBLAS (EMBR_DNNL=0, the reference; itself checked against finite
 * differences and PyTorch): 3x3 padded (Winograd and im2col), strided, 1x1 pointwise and strided,
 * 7x7, grouped; 1 and 2 threads; batches that chunk several images per GEMM and one per GEMM. */
static void test_conv_gemm_paths(void) {
  static const struct { int in, out, k, s, p, groups, bias, h, n; } cs[] = {
      {16, 32, 3, 1, 1, 1, 0, 9, 5},  {16, 32, 3, 1, 1, 1, 1, 30, 3}, {24, 16, 3, 2, 1, 1, 0, 11, 5},
      {32, 48, 1, 1, 0, 1, 0, 7, 5},  {32, 48, 1, 1, 0, 1, 1, 24, 2}, {32, 16, 1, 2, 0, 1, 0, 9, 4},
      {3, 16, 7, 2, 3, 1, 0, 20, 3},  {16, 32, 3, 1, 0, 2, 1, 8, 3},  {8, 8, 3, 1, 1, 1, 0, 6, 3}};
  for (size_t c = 0; c < sizeof(cs) / sizeof(cs[0]); c++) {
    nn_params P = {0};
    nn_conv L;
    CHECK(embr__nn_conv_make(&P, &L, "c", cs[c].in, cs[c].out, cs[c].k, cs[c].s, cs[c].p, cs[c].groups, cs[c].bias) == 0);
    CHECK(embr__nn_params_init(&P, 4) == 0);
    randomise(&P, 31 + c);
    int n = cs[c].n, H = cs[c].h, oh = (H + 2 * cs[c].p - cs[c].k) / cs[c].s + 1;
    int64_t nx = (int64_t)n * cs[c].in * H * H, ny = (int64_t)n * cs[c].out * oh * oh;
    float *x = malloc(sizeof(float) * (size_t)nx), *dy = malloc(sizeof(float) * (size_t)ny);
    float *out[2][3]; /* [path][y, dx, parameter gradients] */
    embr_rng g;
    embr_rng_seed(&g, 5 + c);
    for (int64_t i = 0; i < nx; i++) x[i] = (float)embr_rng_normal(&g);
    for (int64_t i = 0; i < ny; i++) dy[i] = (float)embr_rng_normal(&g);
    for (int nt = 1; nt <= 2; nt++) {
      for (int way = 0; way < 2; way++) {
        setenv("EMBR_DNNL", way ? "1" : "0", 1);
        nn_ctx ctx;
        embr__nn_ctx_init(&ctx, &P, 1, 1, 1);
        ctx.nt = nt;
        embr__nn_params_zero_grad(&P);
        nn_t *in = embr__nn_tensor(&ctx, n, cs[c].in, H, H);
        REQUIRE(in);
        memcpy(in->d, x, sizeof(float) * (size_t)nx);
        nn_t *y = embr__nn_conv2d(&ctx, in, &L);
        REQUIRE(y);
        float *gy = embr__nn_grad(&ctx, y);
        REQUIRE(gy);
        memcpy(gy, dy, sizeof(float) * (size_t)ny);
        embr__nn_backward(&ctx);
        REQUIRE(in->g);
        out[way][0] = malloc(sizeof(float) * (size_t)ny), out[way][1] = malloc(sizeof(float) * (size_t)nx);
        out[way][2] = malloc(sizeof(float) * (size_t)P.total);
        memcpy(out[way][0], y->d, sizeof(float) * (size_t)ny);
        memcpy(out[way][1], in->g, sizeof(float) * (size_t)nx);
        memcpy(out[way][2], P.grad, sizeof(float) * (size_t)P.total);
        embr__nn_ctx_free(&ctx);
      }
      unsetenv("EMBR_DNNL");
      static const char *what[3] = {"output", "input gradient", "weight gradient"};
      int64_t len[3] = {ny, nx, P.total};
      for (int q = 0; q < 3; q++) {
        double worst = 0, scale = 0;
        for (int64_t i = 0; i < len[q]; i++)
          worst = fmax(worst, fabs(out[0][q][i] - out[1][q][i])), scale = fmax(scale, fabs(out[0][q][i]));
        CHECK_MSG(scale > 0 && worst <= 1e-5 * scale, "conv gemm case %zu, %d threads: %s differs by %.2e (of %.2e)", c,
                  nt, what[q], worst, scale);
        free(out[0][q]), free(out[1][q]);
      }
    }
    free(x), free(dy);
    embr__nn_params_free(&P);
  }
}

static void test_bn_prelu_linear_grads(void) {
  nn_params P = {0};
  nn_bn bn;
  nn_prelu pr;
  nn_linear lin;
  CHECK(embr__nn_bn_make(&P, &bn, "bn", 3) == 0);
  CHECK(embr__nn_prelu_make(&P, &pr, "pr", 3) == 0);
  CHECK(embr__nn_linear_make(&P, &lin, "fc", 3 * 4 * 5, 7, 1) == 0);
  CHECK(embr__nn_params_init(&P, 2) == 0);
  randomise(&P, 2);
  gcase cases[] = {{"batchnorm (train)", op_bn, &bn, 4, 3, 4, 5, 1}, {"batchnorm (eval)", op_bn, &bn, 4, 3, 4, 5, 0},
                   {"batchnorm 1-D", op_bn, &bn, 6, 3, 1, 1, 1},      {"prelu", op_prelu, &pr, 2, 3, 4, 5, 1},
                   {"linear", op_linear, &lin, 3, 3, 4, 5, 1}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) gradcheck(&P, &cases[i]);
  embr__nn_params_free(&P);
}

static void test_parameterless_grads(void) {
  nn_params P = {0};
  CHECK(embr__nn_params_init(&P, 1) == 0);
  gcase cases[] = {{"relu", op_relu, NULL, 2, 3, 5, 4, 1},       {"gelu", op_gelu, NULL, 2, 3, 5, 4, 1},
                   {"maxpool", op_maxpool, NULL, 2, 2, 7, 6, 1}, {"avgpool", op_avgpool, NULL, 2, 2, 7, 6, 1},
                   {"global avgpool", op_gap, NULL, 2, 3, 5, 4, 1}, {"dropout", op_dropout, NULL, 2, 3, 5, 4, 1},
                   {"l2norm", op_l2, NULL, 3, 4, 2, 2, 1},       {"residual add", op_add, NULL, 2, 3, 4, 4, 1}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) gradcheck(&P, &cases[i]);
  embr__nn_params_free(&P);
}

/* ---- losses ------------------------------------------------------------------------------------ */

static int32_t loss_labels[6] = {0, 2, 1, 4, 2, 3};

static nn_t *op_margin(nn_ctx *c, nn_t *x, const void *a) {
  nn_t *z = embr__nn_margin_logits(c, embr__nn_flatten(c, x), a, loss_labels);
  if (!z) return NULL;
  embr__nn_grad(c, z); /* when recording: the cross-entropy writes its gradient here */
  /* Let the cross-entropy write its gradient; the probe adds r on top, which checks the sum of both. */
  extra_loss = embr__nn_softmax_xent(z, loss_labels, NULL);
  return z;
}

static void check_margin(const char *name, float m1, float m2, float m3, float s, float spread) {
  nn_params P = {0};
  nn_margin L;
  CHECK(embr__nn_margin_make(&P, &L, "head", 5, 8, m1, m2, m3, s) == 0);
  CHECK(embr__nn_params_init(&P, 4) == 0);
  (void)spread;
  gcase g = {name, op_margin, &L, 6, 8, 1, 1, 1};
  gradcheck(&P, &g);
  embr__nn_params_free(&P);
}

static void test_margin_grads(void) {
  check_margin("arcface", 1, 0.5f, 0, 4, 1);
  check_margin("cosface", 1, 0, 0.35f, 4, 1);
  check_margin("sphereface", 1.35f, 0, 0, 4, 1);
  check_margin("combined", 1.1f, 0.3f, 0.2f, 4, 1);
  check_margin("arcface, wide margin (fallback past pi)", 1, 2.5f, 0, 2, 1);
}

/* The margin logits by hand for one row: cos of the true class shifted, the rest plain. */
static void test_margin_values(void) {
  nn_params P = {0};
  nn_margin L;
  CHECK(embr__nn_margin_make(&P, &L, "head", 2, 2, 1, 0.5f, 0.1f, 10) == 0);
  CHECK(embr__nn_params_init(&P, 1) == 0);
  float *w = P.data + L.w;
  w[0] = 2, w[1] = 0, w[2] = 0, w[3] = 3; /* class 0 along x, class 1 along y */
  nn_ctx ctx;
  embr__nn_ctx_init(&ctx, &P, 1, 0, 1);
  float e[4] = {3, 4, -1, -1e-3f}; /* angle atan(4/3) to class 0; second row near 180 degrees from class 1 */
  int32_t lab[2] = {0, 1};
  nn_t *z = embr__nn_margin_logits(&ctx, embr__nn_wrap(&ctx, e, 2, 2, 1, 1), &L, lab);
  REQUIRE(z);
  double th = acos(0.6);
  CHECK_NEAR(z->d[0], 10 * (cos(th + 0.5) - 0.1), 1e-4);
  CHECK_NEAR(z->d[1], 10 * 0.8, 1e-4);
  double c1 = -1e-3 / sqrt(1 + 1e-6); /* theta ~ 90 degrees: no fallback */
  CHECK_NEAR(z->d[3], 10 * (cos(acos(c1) + 0.5) - 0.1), 1e-4);
  embr__nn_ctx_free(&ctx);
  embr__nn_params_free(&P);
}

static void test_softmax_xent_values(void) {
  float z[6] = {1, 2, 3, 1000, 0, -1000};
  int32_t lab[2] = {2, 0};
  nn_t t = {z, NULL, 2, 3, 1, 1, 0, NULL, 0, 0};
  int64_t hits;
  double l = embr__nn_softmax_xent(&t, lab, &hits);
  double want = (log(exp(1) + exp(2) + exp(3)) - 3 + 0) / 2; /* second row: log(1 + e^-1000 + e^-2000) - 0 */
  CHECK_NEAR(l, want, 1e-9);
  CHECK_EQ_INT(hits, 2);
}

/* ---- optimizers ---------------------------------------------------------------------------------- */

static void test_optimizers(void) {
  nn_params P = {0};
  int64_t s2[1] = {2};
  embr__nn_param_add(&P, "w", 1, s2, NN_WEIGHT, NN_INIT_CONST, 1.0f);
  embr__nn_param_add(&P, "b", 1, s2, NN_NODECAY, NN_INIT_CONST, 1.0f);
  embr__nn_param_add(&P, "rm", 1, s2, NN_BUFFER, NN_INIT_CONST, 1.0f);
  CHECK(embr__nn_params_init(&P, 1) == 0);
  CHECK(embr__nn_params_grad_alloc(&P) == 0); /* gradients are allocated by recording contexts; set by hand here */
  nn_optim o;
  CHECK(embr__nn_optim_init(&o, &P, NN_SGD) == 0);
  o.weight_decay = 0.1f;
  for (int64_t i = 0; i < P.total; i++) P.grad[i] = 0.5f;
  embr__nn_optim_step(&o, &P, 0.1f);
  embr__nn_optim_step(&o, &P, 0.1f);
  /* w: d = 0.5 + 0.1 w; buf1 = d1; p1 = 1 - 0.1 * 0.6 = 0.94; d2 = 0.594; buf2 = 0.9*0.6 + 0.594 */
  double w1 = 1 - 0.1 * 0.6, buf2 = 0.9 * 0.6 + (0.5 + 0.1 * w1);
  CHECK_NEAR(P.data[P.p[0].off], w1 - 0.1 * buf2, 1e-6);
  CHECK_NEAR(P.data[P.p[1].off], 1 - 0.1 * 0.5 - 0.1 * (0.9 * 0.5 + 0.5), 1e-6); /* no decay */
  CHECK_NEAR(P.data[P.p[2].off], 1.0, 0);                                          /* a buffer never moves */
  embr__nn_optim_free(&o);
  CHECK(embr__nn_optim_init(&o, &P, NN_ADAMW) == 0);
  o.weight_decay = 0.1f;
  for (int p = 0; p < 3; p++) P.data[P.p[p].off] = 1;
  embr__nn_optim_step(&o, &P, 0.01f);
  /* First AdamW step: decay, then m/(1-b1) = g and v/(1-b2) = g^2: a step of lr * g/|g|. */
  CHECK_NEAR(P.data[P.p[0].off], 1 * (1 - 0.01 * 0.1) - 0.01 * 0.5 / (0.5 + 1e-8), 1e-6);
  CHECK_NEAR(P.data[P.p[1].off], 1 - 0.01, 1e-6);
  embr__nn_optim_free(&o);
  /* Clipping to norm 1 of a gradient with norm sqrt(4 * 0.25) = 1 * ... (the buffer excluded). */
  for (int64_t i = 0; i < P.total; i++) P.grad[i] = 3.0f;
  double norm = embr__nn_clip_grad(&P, 1.0);
  CHECK_NEAR(norm, sqrt(4 * 9.0), 1e-5);
  CHECK_NEAR(P.grad[P.p[0].off], 3.0 / 6.0, 1e-5);
  embr__nn_params_free(&P);
  CHECK_NEAR(embr__nn_lr_at(1.0, 0, 10, 110), 0.1, 1e-12);
  CHECK_NEAR(embr__nn_lr_at(1.0, 9, 10, 110), 1.0, 1e-12);
  CHECK_NEAR(embr__nn_lr_at(1.0, 60, 10, 110), 0.5, 1e-12);
  CHECK_NEAR(embr__nn_lr_at(1.0, 110, 10, 110), 0.0, 1e-12);
}

/* ---- safetensors -------------------------------------------------------------------------------- */

/* Model metadata that builds no network (width 0): the message names the file like every other
 * load error, not just "width 0 out of range". */
static void test_model_load_names_file(void) {
  const char *path = th_path("w0.safetensors");
  float a[1] = {0};
  nn_st_out t[1] = {{"unused", 1, {1}, a, NN_ST_F32}};
  char *k[] = {"embr.format", "embr.arch", "embr.width", "embr.embedding_dim", "embr.classes", "embr.input", "embr.mean",
               "embr.std", "embr.head"};
  char *v[] = {"model 1", "resnet18", "0", "16", "0", "1x32x32", "0,0,0", "1,1,1", "none"};
  REQUIRE(embr__nn_st_write(path, t, 1, k, v, 9) == 0);
  embr_model *m = NULL;
  CHECK(embr_model_load(path, &m) != 0 && m == NULL);
  CHECK_MSG(!strncmp(embr_last_error(), path, strlen(path)), "%s", embr_last_error());
  unlink(path);
}

static void test_safetensors_round_trip(void) {
  const char *path = th_path("rt.safetensors");
  float a[6] = {1, 2, 3, 4, 5, 6}, b[3] = {-1, 0.5f, 1e-20f};
  nn_st_out t[2] = {{"layer.weight", 2, {2, 3}, a, NN_ST_F32}, {"layer.bias", 1, {3}, b, NN_ST_F32}};
  char *k[1] = {"embr.arch"}, *v[1] = {"tiny"};
  CHECK(embr__nn_st_write(path, t, 2, k, v, 1) == 0);
  nn_params P = {0};
  int64_t s23[2] = {2, 3}, s3[1] = {3}, s32[2] = {3, 2};
  embr__nn_param_add(&P, "layer.weight", 2, s23, NN_WEIGHT, NN_INIT_ZERO, 0);
  embr__nn_param_add(&P, "layer.bias", 1, s3, NN_NODECAY, NN_INIT_ZERO, 0);
  CHECK(embr__nn_params_init(&P, 1) == 0);
  nn_st st;
  REQUIRE(embr__nn_st_open(&st, path) == 0);
  CHECK(embr__nn_st_meta(&st, "embr.arch") && !strcmp(embr__nn_st_meta(&st, "embr.arch"), "tiny"));
  CHECK(embr__nn_params_load(&P, &st, NULL, path) == 0);
  CHECK(!memcmp(P.data + P.p[0].off, a, sizeof(a)) && !memcmp(P.data + P.p[1].off, b, sizeof(b)));
  /* A missing tensor and a mis-shaped one are errors that name them. */
  nn_params Q = {0};
  embr__nn_param_add(&Q, "layer.weight", 2, s32, NN_WEIGHT, NN_INIT_ZERO, 0);
  CHECK(embr__nn_params_init(&Q, 1) == 0);
  CHECK(embr__nn_params_load(&Q, &st, NULL, path) == EMBR_EFORMAT);
  CHECK(strstr(embr_last_error(), "layer.weight") && strstr(embr_last_error(), "3x2"));
  CHECK(embr__nn_params_load(&Q, &st, "x.", path) == EMBR_EFORMAT);
  CHECK(strstr(embr_last_error(), "missing"));
  embr__nn_st_close(&st);
  embr__nn_params_free(&P);
  embr__nn_params_free(&Q);
  unlink(path);
}

static void test_safetensors_hostile(void) {
  /* A valid file, then every truncation and a set of corruptions: errors, never crashes. */
  float a[4] = {1, 2, 3, 4};
  const char *path = th_path("h.safetensors");
  nn_st_out t[1] = {{"w", 2, {2, 2}, a, NN_ST_F32}};
  CHECK(embr__nn_st_write(path, t, 1, NULL, NULL, 0) == 0);
  FILE *f = fopen(path, "rb");
  REQUIRE(f);
  unsigned char buf[512];
  size_t len = fread(buf, 1, sizeof(buf), f);
  fclose(f);
  unlink(path);
  nn_st st;
  REQUIRE(embr__nn_st_parse(&st, buf, len, "ok") == 0);
  CHECK(st.n == 1 && st.t[0].numel == 4);
  embr__nn_st_close(&st);
  for (size_t cut = 0; cut < len; cut++) CHECK(embr__nn_st_parse(&st, buf, cut, "cut") != 0);
  static const char *bad[] = {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,17]}}",
                              "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,16]}}",
                              "{\"w\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[0,16]}}",
                              "{\"w\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[8,24]}}",
                              "{\"w\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,1]}}",
                              "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2,-2],\"data_offsets\":[0,16]}}",
                              "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[8,0]}}",
                              "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2]}}",
                              "{\"__metadata__\":{\"a\":1}}",
                              "[1,2]",
                              "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,16]}}"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    unsigned char b[512];
    size_t hl = strlen(bad[i]);
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)(hl >> (8 * k));
    memcpy(b + 8, bad[i], hl);
    memset(b + 8 + hl, 0, 16);
    CHECK_MSG(embr__nn_st_parse(&st, b, 8 + hl + 16, "bad") != 0, "corrupt header %zu accepted", i);
  }
}

/* A PyTorch state dict holds integer buffers (num_batches_tracked, I64): the file is accepted, the
 * integer tensor checked like any other and skipped when loading; asked for as a weight, or
 * holding NaN/Inf in a weight, it is refused with a message naming the file and the tensor. */
static void test_safetensors_integer_and_nonfinite(void) {
  const char *path = th_path("i64.safetensors");
  float w[4] = {1, -2, 3, -4};
  int64_t tracked[1] = {12345};
  nn_st_out t[2] = {{"bn.weight", 1, {4}, w, NN_ST_F32}, {"bn.num_batches_tracked", 1, {1}, tracked, NN_ST_I64}};
  REQUIRE(embr__nn_st_write(path, t, 2, NULL, NULL, 0) == 0);
  nn_st st;
  REQUIRE(embr__nn_st_open(&st, path) == 0);
  const nn_st_tensor *it = embr__nn_st_find(&st, "bn.num_batches_tracked");
  REQUIRE(it != NULL);
  CHECK(it->dtype == NN_ST_I64 && it->numel == 1 && !strcmp(embr__nn_st_dtype_name(it->dtype), "I64"));
  int64_t got;
  memcpy(&got, it->data, 8); /* the writer put the integer's bytes where the header says */
  CHECK_EQ_INT(got, 12345);
  nn_params P = {0};
  int64_t s4[1] = {4}, s1[1] = {1};
  embr__nn_param_add(&P, "bn.weight", 1, s4, NN_NODECAY, NN_INIT_ZERO, 0);
  REQUIRE(embr__nn_params_init(&P, 1) == 0);
  CHECK_EQ_INT(embr__nn_params_load(&P, &st, NULL, path), 0);
  CHECK(!memcmp(P.data, w, sizeof w));
  nn_params Q = {0};
  embr__nn_param_add(&Q, "bn.num_batches_tracked", 1, s1, NN_BUFFER, NN_INIT_ZERO, 0);
  REQUIRE(embr__nn_params_init(&Q, 1) == 0);
  CHECK_EQ_INT(embr__nn_params_load(&Q, &st, NULL, path), EMBR_EFORMAT);
  CHECK(strstr(embr_last_error(), "num_batches_tracked") && strstr(embr_last_error(), "I64"));
  embr__nn_st_close(&st);
  /* NaN and Inf weights */
  float bad[2][4] = {{1, NAN, 3, 4}, {1, 2, 3, -INFINITY}};
  for (int b = 0; b < 2; b++) {
    t[0].data = bad[b];
    REQUIRE(embr__nn_st_write(path, t, 2, NULL, NULL, 0) == 0);
    REQUIRE(embr__nn_st_open(&st, path) == 0);
    CHECK_EQ_INT(embr__nn_params_load(&P, &st, NULL, path), EMBR_EVALUE);
    CHECK(strstr(embr_last_error(), path) && strstr(embr_last_error(), "'bn.weight'") &&
          strstr(embr_last_error(), b ? "element 3" : "element 1"));
    embr__nn_st_close(&st);
  }
  embr__nn_params_free(&P);
  embr__nn_params_free(&Q);
  unlink(path);
}

static void test_half_precision(void) {
  /* F16 1.0 = 0x3c00, -2.5 = 0xc100, 2^-24 = 0x0001; BF16 3.0 = 0x4040. */
  unsigned char f16[6] = {0x00, 0x3c, 0x00, 0xc1, 0x01, 0x00}, bf[2] = {0x40, 0x40};
  nn_st_tensor t = {NULL, 1, 1, {3}, 3, f16};
  float out[3];
  embr__nn_st_read_f32(&t, out);
  CHECK(out[0] == 1.0f && out[1] == -2.5f && out[2] == ldexpf(1, -24));
  nn_st_tensor tb = {NULL, 2, 1, {1}, 1, bf};
  embr__nn_st_read_f32(&tb, out);
  CHECK(out[0] == 3.0f);
}

/* ---- golden tests against PyTorch (tests/ref, written by scripts/make_nn_ref.py) ------------- */

/* max |a - b| / max |b| over a tensor; `floor` bounds the denominator from below, for tensors
 * whose exact value is zero (a bias before a batch norm has gradient 0, and both sides hold only
 * rounding noise there). */
static double rel_err(const float *a, const nn_st_tensor *ref, float *tmp, double floor) {
  embr__nn_st_read_f32(ref, tmp);
  double num = 0, den = 0;
  for (int64_t i = 0; i < ref->numel; i++) {
    num = fmax(num, fabs((double)a[i] - tmp[i]));
    den = fmax(den, fabs((double)tmp[i]));
  }
  return num / fmax(den, floor);
}

static const nn_st_tensor *need(const nn_st *st, const char *name) {
  const nn_st_tensor *t = embr__nn_st_find(st, name);
  CHECK_MSG(t != NULL, "reference lacks %s", name);
  return t;
}

static void golden(const char *file) {
  char path[512];
  snprintf(path, sizeof(path), "%s/tests/ref/%s", EMBR_SOURCE_DIR, file);
  nn_st st;
  REQUIRE(embr__nn_st_open(&st, path) == 0);
  embr_model_params p = embr_model_params_default();
  p.arch = embr__nn_st_meta(&st, "embr.arch");
  p.width = atoi(embr__nn_st_meta(&st, "embr.width"));
  p.embedding_dim = atoi(embr__nn_st_meta(&st, "embr.embedding_dim"));
  REQUIRE(sscanf(embr__nn_st_meta(&st, "embr.input"), "%dx%dx%d", &p.input.channels, &p.input.height, &p.input.width) == 3);
  int classes = atoi(embr__nn_st_meta(&st, "embr.classes"));
  embr_model *m;
  REQUIRE(embr__model_build(&p, 2, classes, &m) == 0);
  REQUIRE(embr__nn_params_init(&m->P, 1) == 0);
  CHECK(embr__nn_params_load(&m->P, &st, NULL, path) == 0);
  const nn_st_tensor *tx = need(&st, "input"), *tl = need(&st, "labels");
  REQUIRE(tx && tl);
  int n = (int)tx->shape[0];
  float *x = malloc(sizeof(float) * (size_t)tx->numel), *tmp = malloc(sizeof(float) * 1000000), lab[64];
  int32_t labels[64];
  embr__nn_st_read_f32(tx, x);
  embr__nn_st_read_f32(tl, lab);
  for (int i = 0; i < n; i++) labels[i] = (int32_t)lab[i];
  float *saved = malloc(sizeof(float) * (size_t)m->P.total);
  memcpy(saved, m->P.data, sizeof(float) * (size_t)m->P.total);
  /* Training pass: embeddings, loss, every gradient, the updated running statistics; with the
   * convolutions' GEMMs on OpenBLAS (EMBR_DNNL=0, the reference) and on oneDNN when built in,
   * each at 1 and 2 threads (another chunking of the images, other per-thread weight sums). */
  double e = 0;
  for (int way = 0; way < 4; way++) {
    int nt = 1 + (way >> 1);
    setenv("EMBR_DNNL", way & 1 ? "1" : "0", 1);
    memcpy(m->P.data, saved, sizeof(float) * (size_t)m->P.total);
    nn_ctx ctx;
    embr__nn_ctx_init(&ctx, &m->P, 1, 1, 1);
    ctx.nt = nt;
    embr__nn_params_zero_grad(&m->P);
    nn_t *emb = embr__model_forward(m, &ctx, embr__nn_wrap(&ctx, x, n, p.input.channels, p.input.height, p.input.width));
    nn_t *z = embr__nn_margin_logits(&ctx, emb, &m->hd.mar, labels);
    REQUIRE(z);
    embr__nn_grad(&ctx, z);
    double loss = embr__nn_softmax_xent(z, labels, NULL);
    embr__nn_backward(&ctx);
    e = rel_err(emb->d, need(&st, "emb_train"), tmp, 1e-30);
    CHECK_MSG(e < 1e-4, "%s: training-mode embeddings (way %d) differ from PyTorch by %.2e (relative)", file, way, e);
    const nn_st_tensor *tloss = need(&st, "loss");
    embr__nn_st_read_f32(tloss, tmp);
    CHECK_MSG(fabs(loss - tmp[0]) < 1e-4 * fabs(tmp[0]), "%s: loss %.6f, PyTorch %.6f", file, loss, tmp[0]);
    double worst = 0, gscale = 0; /* gscale: the largest gradient of the model */
    const char *worst_name = "";
    for (int i = 0; i < m->P.n; i++)
      for (int64_t j = 0; j < m->P.p[i].numel; j++) gscale = fmax(gscale, fabs(m->P.grad[m->P.p[i].off + j]));
    int grads = 0;
    for (int i = 0; i < m->P.n; i++) {
      const nn_param *q = &m->P.p[i];
      char name[200];
      snprintf(name, sizeof(name), "%s.%s", q->kind == NN_BUFFER ? "after" : "grad", q->name);
      const nn_st_tensor *t = need(&st, name);
      if (!t) continue;
      const float *mine = q->kind == NN_BUFFER ? m->P.data + q->off : m->P.grad + q->off;
      /* Relative to the tensor's largest entry, or, for tensors whose gradient nearly cancels
       * (a batch-norm scale of a few channels: 1e-4 of the model's largest), to 1 % of the model's
       * largest gradient: float rounding upstream is of that order on both sides. */
      double r = rel_err(mine, t, tmp, 1e-2 * gscale), refmax = 0, minemax = 0;
      for (int64_t j = 0; j < t->numel; j++) refmax = fmax(refmax, fabs(tmp[j])), minemax = fmax(minemax, fabs(mine[j]));
      if (q->kind != NN_BUFFER && refmax < 1e-5 * gscale) { /* exactly zero (a bias feeding a batch norm): noise on both sides */
        CHECK_MSG(minemax < 1e-4 * gscale, "%s: gradient of %s should vanish, is %.2e", file, q->name, minemax);
        continue;
      }
      grads += q->kind != NN_BUFFER;
      if (r > worst) worst = r, worst_name = q->name;
    }
    CHECK_MSG(worst < 1e-3, "%s: gradient / running statistic of %s (%s GEMMs, %d threads) differs by %.2e (relative)",
              file, worst_name, way & 1 ? "oneDNN" : "OpenBLAS", nt, worst);
    fprintf(stderr, "  %s (%s GEMMs, %d threads): %d gradients, worst relative error %.1e (%s); embeddings %.1e\n",
            file, way & 1 ? "oneDNN" : "OpenBLAS", nt, grads, worst, worst_name, e);
    embr__nn_ctx_free(&ctx);
  }
  unsetenv("EMBR_DNNL");
  /* Inference with the statistics from before the training pass. */
  memcpy(m->P.data, saved, sizeof(float) * (size_t)m->P.total);
  float *out = malloc(sizeof(float) * (size_t)n * (size_t)p.embedding_dim);
  /* Both inference paths: the reference kernels (EMBR_DNNL=0) and, when built in, oneDNN with the
   * batch norms folded into the convolutions (1 and 2 threads: the primitive is rebuilt). The
   * test's own OpenMP count (3) must be as found afterwards: oneDNN's count is set per call. */
  omp_set_num_threads(3);
  for (int way = 0; way < 3; way++) {
    setenv("EMBR_DNNL", way ? "1" : "0", 1);
    embr_model_set_threads(m, way == 2 ? 2 : 1);
    CHECK(embr_model_embed(m, x, n, n, out) == 0);
    e = rel_err(out, need(&st, "emb_eval"), tmp, 1e-30);
    CHECK_MSG(e < 1e-4, "%s: inference embeddings (%s, %d threads) differ from PyTorch by %.2e (relative)", file,
              way ? "oneDNN" : "reference", way == 2 ? 2 : 1, e);
    CHECK_MSG(omp_get_max_threads() == 3, "%s: inference left the caller's OpenMP count at %d", file,
              omp_get_max_threads());
    if (way && embr__dnnl_enabled())
      CHECK_MSG(embr__dnnl_cached_layers(&m->P) > 0, "%s: oneDNN enabled but no layer ran on it", file);
  }
  unsetenv("EMBR_DNNL");
  embr__nn_st_close(&st);
  embr_model_free(m);
  free(x), free(tmp), free(saved), free(out);
}


/* The fused inference op (oneDNN: batch norm folded, residual and activation as post-ops) against
 * the chain of reference ops it stands for (EMBR_DNNL=0: conv2d, batchnorm, add, relu/prelu, each
 * checked against PyTorch above): a residual the op may overwrite (its output written in place)
 * and one it may not (a wrapped buffer: read by a binary post-op), PReLU with one slope per channel
 * and shared, 1x1, 3x3 strided and depthwise, 1 and 2 threads. */
static void test_fused_conv(void) {
  /* side: the input's; xl, rl: the layouts of the input and the residual (NCHW 0, NHWC 1, blocked
   * nChw16c 2); yl: the output's layout oneDNN's path must pick (-1: not checked). The last five
   * run oneDNN's Winograd (3x3 stride 1, 64 channels, 20x20 maps) and blocked direct kernels
   * (4x4 maps; a strided layer on a blocked input) and convert between layouts at the edges. */
  static const struct {
    int in, out, k, stride, groups, res, act, prelu_ch, side, xl, rl, yl;
  } cs[] = {{16, 32, 1, 1, 1, 1, NN_ACT_NONE, 0, 9, 0, 1, 1},    {16, 32, 1, 1, 1, 2, NN_ACT_RELU, 0, 9, 0, 1, 1},
            {16, 32, 3, 1, 1, 1, NN_ACT_RELU, 0, 9, 0, 1, 1},    {16, 32, 3, 2, 1, 0, NN_ACT_PRELU, 32, 9, 0, 1, 1},
            {32, 32, 3, 1, 32, 0, NN_ACT_PRELU, 32, 9, 0, 1, 1}, {16, 32, 1, 1, 1, 2, NN_ACT_PRELU, 1, 9, 0, 1, 1},
            {16, 32, 1, 1, 1, 0, NN_ACT_PRELU, 1, 9, 0, 1, 1},   {64, 64, 3, 1, 1, 1, NN_ACT_RELU, 0, 20, 1, 1, 2},
            {64, 64, 3, 1, 1, 2, NN_ACT_RELU, 0, 20, 2, 2, 2},   {32, 32, 3, 1, 1, 1, NN_ACT_RELU, 0, 4, 2, 2, 2},
            {32, 32, 3, 2, 1, 0, NN_ACT_RELU, 0, 9, 2, 1, 2},    {32, 64, 3, 1, 1, 2, NN_ACT_NONE, 0, 9, 2, 2, 1}};
  int nb = 3;
  for (size_t c = 0; c < sizeof(cs) / sizeof(cs[0]); c++)
    for (int nt = 1; nt <= 2; nt++) {
      int side = cs[c].side;
      nn_params P = {0};
      nn_conv L;
      nn_bn bn;
      nn_prelu pr = {0, -1};
      int pad = cs[c].k / 2;
      CHECK(embr__nn_conv_make(&P, &L, "c", cs[c].in, cs[c].out, cs[c].k, cs[c].stride, pad, cs[c].groups, 0) == 0);
      CHECK(embr__nn_bn_make(&P, &bn, "bn", cs[c].out) == 0);
      if (cs[c].act == NN_ACT_PRELU) CHECK(embr__nn_prelu_make(&P, &pr, "pr", cs[c].prelu_ch) == 0);
      CHECK(embr__nn_params_init(&P, 5) == 0);
      randomise(&P, 11 + c);
      int oh = (side + 2 * pad - cs[c].k) / cs[c].stride + 1;
      int64_t nx = (int64_t)nb * cs[c].in * side * side, ny = (int64_t)nb * cs[c].out * oh * oh;
      float *x = malloc(sizeof(float) * (size_t)nx), *r = malloc(sizeof(float) * (size_t)ny);
      float *out[2] = {malloc(sizeof(float) * (size_t)ny), malloc(sizeof(float) * (size_t)ny)};
      embr_rng g;
      embr_rng_seed(&g, 7 + c);
      for (int64_t i = 0; i < nx; i++) x[i] = (float)embr_rng_normal(&g);
      for (int64_t i = 0; i < ny; i++) r[i] = (float)embr_rng_normal(&g); /* in layout rl, as the op reads it */
      float *xin = malloc(sizeof(float) * (size_t)nx); /* x (NCHW) in layout xl */
      REQUIRE(xin);
      embr__nn_relayout_to(x, NN_NCHW, xin, cs[c].xl, nb, cs[c].in, side, side, 1);
      for (int way = 0; way < 2; way++) {
        setenv("EMBR_DNNL", way ? "1" : "0", 1);
        nn_ctx ctx;
        embr__nn_ctx_init(&ctx, &P, 0, 0, 1);
        ctx.nt = nt;
        nn_t *res = NULL;
        if (cs[c].res == 1) { /* the op's to overwrite */
          res = embr__nn_tensor(&ctx, nb, cs[c].out, oh, oh);
          REQUIRE(res);
          memcpy(res->d, r, sizeof(float) * (size_t)ny);
        } else if (cs[c].res == 2) { /* the caller's: read only */
          res = embr__nn_wrap(&ctx, r, nb, cs[c].out, oh, oh);
        }
        if (res) res->nhwc = cs[c].rl;
        float *res_buf = res ? res->d : NULL;
        nn_t *xt = embr__nn_wrap(&ctx, xin, nb, cs[c].in, side, side);
        REQUIRE(xt);
        xt->nhwc = cs[c].xl;
        nn_t *y = embr__nn_conv_bn_act(&ctx, xt, &L, &bn, res, cs[c].act, &pr);
        REQUIRE(y);
        if (way && embr__dnnl_enabled() && cs[c].res == 1)
          CHECK_MSG(y->d == res_buf, "fused case %zu: the output was not written over the residual", c);
        if (way && embr__dnnl_enabled())
          CHECK_MSG(y->nhwc == cs[c].yl, "fused case %zu: output layout %d, expected %d", c, y->nhwc, cs[c].yl);
        y = embr__nn_plain(&ctx, y);
        REQUIRE(y);
        memcpy(out[way], y->d, sizeof(float) * (size_t)ny);
        embr__nn_ctx_free(&ctx);
      }
      unsetenv("EMBR_DNNL");
      double worst = 0, scale = 0;
      for (int64_t i = 0; i < ny; i++) worst = fmax(worst, fabs(out[0][i] - out[1][i])), scale = fmax(scale, fabs(out[0][i]));
      embr_rng_seed(&g, 7 + c); /* the wrapped residual is intact: draw it again */
      for (int64_t i = 0; i < nx; i++) (void)embr_rng_normal(&g);
      int intact = 1;
      for (int64_t i = 0; i < ny; i++) intact &= r[i] == (float)embr_rng_normal(&g);
      CHECK_MSG(intact, "fused case %zu: the caller's residual was overwritten", c);
      CHECK_MSG(worst <= 1e-5 * scale, "fused case %zu, %d threads: differs from the reference chain by %.2e (of %.2e)",
                c, nt, worst, scale);
      free(x), free(xin), free(r), free(out[0]), free(out[1]);
      embr__nn_params_free(&P);
    }
}

/* embr_model_embed with a batch split across threads (each thread runs the whole network on its
 * share, one thread per op, primitives in cache slots of its own) against the reference kernels
 * (EMBR_DNNL=0, 1 thread) and against oneDNN unsplit: ResNet-18 at 80 x 80 (layer1 on 20x20 maps:
 * Winograd; layer4 on 3x3: the blocked direct kernel) and MobileFaceNet, 7 images in batches of 5
 * (shares of 2 and 3, then 1 and 1) at 2 threads. */
static void test_embed_split(void) {
  static const char *archs[] = {"resnet18", "mobilefacenet"};
  for (int a = 0; a < 2; a++) {
    embr_model_params mp = embr_model_params_default();
    mp.arch = archs[a];
    mp.embedding_dim = 32;
    mp.input.height = mp.input.width = 80;
    embr_model *m;
    REQUIRE(embr_model_create(&mp, 3, &m) == 0);
    const int n = 7, dim = 32;
    int64_t per = 3 * 80 * 80;
    float *x = malloc(sizeof(float) * (size_t)(n * per)), *out[3];
    REQUIRE(x);
    embr_rng g;
    embr_rng_seed(&g, 5);
    for (int64_t i = 0; i < n * per; i++) x[i] = (float)embr_rng_normal(&g);
    /* way 0: reference, 1 thread; 1: oneDNN unsplit, 2 threads; 2: oneDNN split, 2 threads */
    int unsplit_layers = 0;
    for (int way = 0; way < 3; way++) {
      out[way] = malloc(sizeof(float) * (size_t)(n * dim));
      REQUIRE(out[way]);
      setenv("EMBR_DNNL", way ? "1" : "0", 1);
      setenv("EMBR_BATCH_SPLIT", way == 2 ? "1" : "0", 1);
      embr_model_set_threads(m, way ? 2 : 1);
      CHECK(embr_model_embed(m, x, n, 5, out[way]) == 0);
      if (way == 1) unsplit_layers = embr__dnnl_cached_layers(&m->P);
    }
    if (embr__dnnl_enabled()) /* slot 0 kept, slots 1 and 2 filled by the split run */
      CHECK_MSG(unsplit_layers > 0 && embr__dnnl_cached_layers(&m->P) == 3 * unsplit_layers,
                "%s: %d oneDNN layers after the split run, %d before", archs[a], embr__dnnl_cached_layers(&m->P),
                unsplit_layers);
    unsetenv("EMBR_DNNL"), unsetenv("EMBR_BATCH_SPLIT");
    for (int way = 1; way < 3; way++) {
      double worst = 0, scale = 0;
      for (int i = 0; i < n * dim; i++) worst = fmax(worst, fabs(out[way][i] - out[0][i])), scale = fmax(scale, fabs(out[0][i]));
      CHECK_MSG(scale > 0 && worst <= 1e-4 * scale, "%s, %s: differs from the reference by %.2e (of %.2e)", archs[a],
                way == 2 ? "split" : "unsplit", worst, scale);
    }
    for (int way = 0; way < 3; way++) free(out[way]);
    free(x);
    embr_model_free(m);
  }
}

static void test_golden_resnet18(void) { golden("nn_resnet18.safetensors"); }
static void test_golden_mobilefacenet(void) { golden("nn_mobilefacenet.safetensors"); }

/* ---- transformer ops ---------------------------------------------------------------------------
 * Gradients by finite differences (every op, inputs and parameters), error paths, and golden
 * values against PyTorch (tests/ref/nn_transformer.safetensors, written by
 * scripts/make_transformer_ref.py). */

typedef struct attn_arg {
  int heads, causal;
} attn_arg;
typedef struct tok_arg {
  int64_t table, pos, cls;
  int vocab, B, T, D;
  const int32_t *idx;
} tok_arg;

static nn_t *op_ln(nn_ctx *c, nn_t *x, const void *a) { return embr__nn_layernorm(c, x, a); }
static nn_t *op_dense(nn_ctx *c, nn_t *x, const void *a) { return embr__nn_dense_f(c, x, a); }
static nn_t *op_qgelu(nn_ctx *c, nn_t *x, const void *a) { (void)a; return embr__nn_quick_gelu(c, x); }
static nn_t *op_attn(nn_ctx *c, nn_t *x, const void *a) {
  const attn_arg *g = a;
  return embr__nn_attention(c, x, g->heads, g->causal);
}
/* The embedding has no tensor input: the probe's x is added to it, so the op has one. */
static int32_t tok_ids[2 * 5] = {3, 0, 10, 4, 4, 7, 1, 4, 9, 2};
static nn_t *op_embed(nn_ctx *c, nn_t *x, const void *a) {
  const tok_arg *g = a;
  return embr__nn_add(c, embr__nn_embed_tokens(c, tok_ids, g->B, g->T, g->table, g->vocab, g->pos, g->D), x);
}
static nn_t *op_vit(nn_ctx *c, nn_t *x, const void *a) {
  const tok_arg *g = a;
  return embr__nn_vit_tokens(c, x, g->cls, g->pos);
}
static nn_t *op_take(nn_ctx *c, nn_t *x, const void *a) { return embr__nn_take_token(c, x, ((const tok_arg *)a)->idx); }

/* A pre-LN transformer block as OpenAI CLIP's ResidualAttentionBlock, then ln_final, pooling
 * and the projection x @ proj: its parameters under their OpenAI names. */
typedef struct tower {
  nn_ln ln_1, ln_2, ln_final;
  nn_dense in_proj, out_proj, c_fc, c_proj, proj;
  int heads, causal;
  const int32_t *idx;
} tower;

static int tower_make(nn_params *P, tower *m, int d, int heads, int out_dim, int causal, const int32_t *idx) {
  m->heads = heads, m->causal = causal, m->idx = idx;
  int rc = embr__nn_ln_make(P, &m->ln_1, "block.ln_1", d);
  rc = rc ? rc : embr__nn_dense_make(P, &m->in_proj, "block.attn.in_proj_weight", "block.attn.in_proj_bias", d, 3 * d, 0, 0.02f);
  rc = rc ? rc : embr__nn_dense_make(P, &m->out_proj, "block.attn.out_proj.weight", "block.attn.out_proj.bias", d, d, 0, 0);
  rc = rc ? rc : embr__nn_ln_make(P, &m->ln_2, "block.ln_2", d);
  rc = rc ? rc : embr__nn_dense_make(P, &m->c_fc, "block.mlp.c_fc.weight", "block.mlp.c_fc.bias", d, 4 * d, 0, 0);
  rc = rc ? rc : embr__nn_dense_make(P, &m->c_proj, "block.mlp.c_proj.weight", "block.mlp.c_proj.bias", 4 * d, d, 0, 0);
  rc = rc ? rc : embr__nn_ln_make(P, &m->ln_final, "ln_final", d);
  rc = rc ? rc : embr__nn_dense_make(P, &m->proj, "proj", NULL, d, out_dim, 1, 0);
  return rc;
}

static nn_t *tower_forward(nn_ctx *c, nn_t *x, const tower *m) {
  embr__nn_pin(x); /* read again by the residual add */
  nn_t *a = embr__nn_dense_f(c, embr__nn_layernorm(c, x, &m->ln_1), &m->in_proj);
  a = embr__nn_dense_f(c, embr__nn_attention(c, a, m->heads, m->causal), &m->out_proj);
  nn_t *x1 = embr__nn_add(c, x, a);
  embr__nn_unpin(c, x);
  embr__nn_pin(x1);
  nn_t *f = embr__nn_quick_gelu(c, embr__nn_dense_f(c, embr__nn_layernorm(c, x1, &m->ln_2), &m->c_fc));
  nn_t *x2 = embr__nn_add(c, x1, embr__nn_dense_f(c, f, &m->c_proj));
  embr__nn_unpin(c, x1);
  return embr__nn_dense_f(c, embr__nn_take_token(c, embr__nn_layernorm(c, x2, &m->ln_final), m->idx), &m->proj);
}
static nn_t *op_tower(nn_ctx *c, nn_t *x, const void *a) { return tower_forward(c, x, a); }

static void test_transformer_grads(void) {
  nn_params P = {0};
  nn_ln ln;
  nn_dense d0, d1, d2, d3;
  CHECK(embr__nn_ln_make(&P, &ln, "ln", 9) == 0);
  CHECK(embr__nn_dense_make(&P, &d0, "d0.weight", "d0.bias", 6, 5, 0, 0) == 0);
  CHECK(embr__nn_dense_make(&P, &d1, "d1.weight", NULL, 6, 5, 0, 0) == 0);
  CHECK(embr__nn_dense_make(&P, &d2, "d2.weight", "d2.bias", 6, 5, 1, 0.02f) == 0);
  CHECK(embr__nn_dense_make(&P, &d3, "d3.weight", NULL, 6, 5, 1, 0) == 0);
  CHECK(embr__nn_params_init(&P, 2) == 0);
  randomise(&P, 21);
  attn_arg a[] = {{2, 0}, {2, 1}, {3, 0}, {3, 1}, {1, 1}, {4, 0}};
  gcase cases[] = {{"layernorm", op_ln, &ln, 2, 5, 1, 9, 1},
                   {"layernorm, one token a row", op_ln, &ln, 3, 1, 1, 9, 1},
                   {"dense", op_dense, &d0, 2, 3, 1, 6, 1},
                   {"dense, no bias", op_dense, &d1, 2, 3, 1, 6, 1},
                   {"dense transposed", op_dense, &d2, 2, 3, 1, 6, 1},
                   {"dense transposed, no bias", op_dense, &d3, 3, 1, 1, 6, 1},
                   {"dense of a pooled embedding", op_dense, &d0, 3, 6, 1, 1, 1},
                   {"quick gelu", op_qgelu, NULL, 2, 3, 5, 4, 1},
                   {"attention T=5, 2 heads", op_attn, &a[0], 2, 5, 1, 3 * 8, 1},
                   {"attention T=5, 2 heads, causal", op_attn, &a[1], 2, 5, 1, 3 * 8, 1},
                   {"attention T=7, 3 heads", op_attn, &a[2], 2, 7, 1, 3 * 9, 1},
                   {"attention T=7, 3 heads, causal", op_attn, &a[3], 3, 7, 1, 3 * 9, 1},
                   {"attention T=1, causal", op_attn, &a[4], 2, 1, 1, 3 * 4, 1},
                   {"attention T=6, 4 heads of 1", op_attn, &a[5], 1, 6, 1, 3 * 4, 1}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) gradcheck(&P, &cases[i]);
  embr__nn_params_free(&P);
}

static void test_token_op_grads(void) {
  nn_params P = {0};
  int64_t ts[2] = {11, 6}, ps[2] = {7, 6}, cs[1] = {6}, vs[2] = {1 + 3 * 2, 6};
  tok_arg e = {embr__nn_param_add(&P, "tok", 2, ts, NN_WEIGHT, NN_INIT_NORMAL, 1), embr__nn_param_add(&P, "pos", 2, ps, NN_WEIGHT, NN_INIT_NORMAL, 1),
               -1, 11, 2, 5, 6, NULL};
  tok_arg v = {-1, embr__nn_param_add(&P, "vpos", 2, vs, NN_WEIGHT, NN_INIT_NORMAL, 1),
               embr__nn_param_add(&P, "cls", 1, cs, NN_WEIGHT, NN_INIT_NORMAL, 1), 0, 0, 0, 0, NULL};
  tok_arg e0 = e;
  e0.pos = -1;
  static const int32_t idx[3] = {4, 0, 2};
  tok_arg t0 = {0}, t1 = {0};
  t1.idx = idx;
  CHECK(embr__nn_params_init(&P, 3) == 0);
  gcase cases[] = {{"token embedding + positions", op_embed, &e, 2, 5, 1, 6, 1},
                   {"token embedding", op_embed, &e0, 2, 5, 1, 6, 1},
                   {"ViT tokens", op_vit, &v, 2, 6, 3, 2, 1},
                   {"take token 0", op_take, &t0, 3, 5, 1, 4, 1},
                   {"take token by index", op_take, &t1, 3, 5, 1, 4, 1}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) gradcheck(&P, &cases[i]);
  embr__nn_params_free(&P);
}

/* A whole pre-LN block (with pins and unpins in inference): through every op's backward. */
static void test_transformer_block_grads(void) {
  static const int32_t eot[2] = {4, 2};
  for (int causal = 0; causal < 2; causal++) {
    nn_params P = {0};
    tower m;
    CHECK(tower_make(&P, &m, 8, 2, 3, causal, causal ? eot : NULL) == 0);
    CHECK(embr__nn_params_init(&P, 4) == 0);
    randomise(&P, 4);
    gcase g = {causal ? "text block" : "image block", op_tower, &m, 2, 5, 1, 8, 1};
    gradcheck(&P, &g);
    embr__nn_params_free(&P);
  }
}

/* Out-of-range ids and indices, bad shapes, too few positions: EMBR_EINVAL in ctx->rc, NULL. */
static void test_transformer_errors(void) {
  nn_params P = {0};
  int64_t ts[2] = {5, 4}, ps[2] = {3, 4};
  int64_t tab = embr__nn_param_add(&P, "tok", 2, ts, NN_WEIGHT, NN_INIT_NORMAL, 1);
  int64_t pos = embr__nn_param_add(&P, "pos", 2, ps, NN_WEIGHT, NN_INIT_NORMAL, 1);
  nn_ln ln;
  nn_dense d;
  CHECK(embr__nn_ln_make(&P, &ln, "ln", 4) == 0);
  CHECK(embr__nn_dense_make(&P, &d, "d.weight", "d.bias", 4, 3, 0, 0) == 0);
  char longname[200];
  memset(longname, 'a', sizeof(longname) - 1);
  longname[sizeof(longname) - 1] = 0;
  nn_dense bad;
  CHECK_EQ_INT(embr__nn_dense_make(&P, &bad, longname, NULL, 4, 3, 0, 0), EMBR_EINVAL);
  CHECK(embr__nn_params_init(&P, 1) == 0);
  float x[2 * 3 * 12] = {0};
  int32_t ids[6] = {0, 1, 2, 3, 4, 0};
  for (int k = 0; k < 8; k++) {
    nn_ctx ctx;
    embr__nn_ctx_init(&ctx, &P, 1, k & 1, 1);
    nn_t *y = NULL;
    int32_t bad_ids[6] = {0, 1, 5, 3, 4, 0}, bad_idx[2] = {0, 3};
    switch (k / 2) {
      case 0: y = embr__nn_embed_tokens(&ctx, bad_ids, 2, 3, tab, 5, pos, 4); break;
      case 1: y = embr__nn_embed_tokens(&ctx, ids, 1, 6, tab, 5, pos, 4); break; /* 6 tokens, 3 positions */
      case 2: y = embr__nn_take_token(&ctx, embr__nn_wrap(&ctx, x, 2, 3, 1, 4), bad_idx); break;
      case 3: y = embr__nn_attention(&ctx, embr__nn_wrap(&ctx, x, 2, 3, 1, 12), 3, 0); break; /* D 4, 3 heads */
    }
    CHECK_MSG(y == NULL && ctx.rc == EMBR_EINVAL, "error case %d: rc %d", k / 2, ctx.rc);
    /* ctx->rc is sticky: later ops fall through. */
    CHECK(embr__nn_layernorm(&ctx, embr__nn_wrap(&ctx, x, 2, 3, 1, 4), &ln) == NULL);
    embr__nn_ctx_free(&ctx);
  }
  nn_ctx ctx;
  embr__nn_ctx_init(&ctx, &P, 1, 0, 1);
  nn_t *y = embr__nn_embed_tokens(&ctx, ids, 2, 3, tab, 5, pos, 4);
  CHECK(y != NULL && ctx.rc == 0);
  CHECK(embr__nn_layernorm(&ctx, embr__nn_wrap(&ctx, x, 2, 3, 1, 5), &ln) == NULL && ctx.rc == EMBR_EINVAL);
  embr__nn_ctx_reset(&ctx);
  CHECK(embr__nn_dense_f(&ctx, embr__nn_wrap(&ctx, x, 2, 3, 1, 5), &d) == NULL && ctx.rc == EMBR_EINVAL);
  embr__nn_ctx_reset(&ctx);
  CHECK(embr__nn_attention(&ctx, NULL, 2, 0) == NULL && ctx.rc == 0);
  embr__nn_ctx_free(&ctx);
  embr__nn_params_free(&P);
}

/* ---- golden values against PyTorch ---- */

static double tf_worst_fwd, tf_worst_grad;

/* A reference tensor as floats (malloc'd; NULL with a failed check when absent). */
static float *ref_floats(const nn_st *st, const char *name) {
  const nn_st_tensor *t = need(st, name);
  if (!t) return NULL;
  float *p = malloc(sizeof(float) * (size_t)t->numel);
  embr__nn_st_read_f32(t, p);
  return p;
}

/* Forward values: absolute error <= 1e-4; gradients: max |a - b| / max |b| <= 1e-3. */
static void tf_compare(const nn_st *st, const char *name, const float *mine, int grad) {
  const nn_st_tensor *t = need(st, name);
  CHECK_MSG(mine != NULL, "%s: no value", name);
  if (!t || !mine) return;
  float *ref = ref_floats(st, name);
  double num = 0, den = 0;
  for (int64_t i = 0; i < t->numel; i++) num = fmax(num, fabs((double)mine[i] - ref[i])), den = fmax(den, fabs((double)ref[i]));
  if (grad) {
    double r = num / fmax(den, 1e-30);
    tf_worst_grad = fmax(tf_worst_grad, r);
    CHECK_MSG(r <= 1e-3, "%s differs from PyTorch by %.2e (relative)", name, r);
  } else {
    tf_worst_fwd = fmax(tf_worst_fwd, num);
    CHECK_MSG(num <= 1e-4, "%s differs from PyTorch by %.2e", name, num);
  }
  free(ref);
}

/* A recorded input tensor (wants a gradient) holding the reference tensor `name`. */
static nn_t *ref_input(nn_ctx *ctx, const nn_st *st, const char *name, int n, int c, int h, int w) {
  const nn_st_tensor *t = need(st, name);
  nn_t *x = embr__nn_tensor(ctx, n, c, h, w);
  if (!t || !x || t->numel != nn_numel(x)) return NULL;
  embr__nn_st_read_f32(t, x->d);
  return x;
}

/* Seeds y's gradient with the reference's r (the loss sum(y * r)) and runs backward. */
static void ref_backward(nn_ctx *ctx, const nn_st *st, const char *rname, nn_t *y) {
  const nn_st_tensor *t = need(st, rname);
  float *g = embr__nn_grad(ctx, y);
  if (!t || !g || t->numel != nn_numel(y)) {
    CHECK_MSG(0, "%s: no output or wrong size", rname);
    return;
  }
  embr__nn_st_read_f32(t, g);
  embr__nn_backward(ctx);
}

static const float *pgrad(const nn_params *P, const char *name) {
  int i = embr__nn_param_find(P, name);
  CHECK_MSG(i >= 0, "no parameter %s", name);
  return i >= 0 ? P->grad + P->p[i].off : NULL;
}

static void test_golden_transformer_ops(void) {
  char path[512];
  snprintf(path, sizeof(path), "%s/tests/ref/nn_transformer.safetensors", EMBR_SOURCE_DIR);
  nn_st st;
  REQUIRE(embr__nn_st_open(&st, path) == 0);
  tf_worst_fwd = tf_worst_grad = 0;
  nn_params P = {0};
  nn_ln ln;
  nn_dense dense, denseT;
  nn_conv conv;
  int64_t s8[1] = {8}, s58[2] = {5, 8}, s118[2] = {11, 8}, s68[2] = {6, 8};
  CHECK(embr__nn_ln_make(&P, &ln, "ln", 8) == 0);
  CHECK(embr__nn_dense_make(&P, &dense, "dense.weight", "dense.bias", 8, 6, 0, 0) == 0);
  CHECK(embr__nn_dense_make(&P, &denseT, "denseT.weight", NULL, 8, 6, 1, 0) == 0);
  CHECK(embr__nn_conv_make(&P, &conv, "vit.conv", 3, 8, 4, 4, 0, 1, 0) == 0);
  int64_t cls = embr__nn_param_add(&P, "vit.cls", 1, s8, NN_WEIGHT, NN_INIT_ZERO, 0);
  int64_t vpos = embr__nn_param_add(&P, "vit.pos", 2, s58, NN_WEIGHT, NN_INIT_ZERO, 0);
  int64_t table = embr__nn_param_add(&P, "embed.table", 2, s118, NN_WEIGHT, NN_INIT_ZERO, 0);
  int64_t epos = embr__nn_param_add(&P, "embed.pos", 2, s68, NN_WEIGHT, NN_INIT_ZERO, 0);
  REQUIRE(embr__nn_params_init(&P, 1) == 0);
  CHECK(embr__nn_params_load(&P, &st, NULL, path) == 0);
  embr__nn_params_zero_grad(&P);
  for (int step = 0; step < 8; step++) {
    nn_ctx ctx;
    embr__nn_ctx_init(&ctx, &P, 1, 1, 1);
    nn_t *x = NULL, *y = NULL;
    switch (step) {
      case 0:
        x = ref_input(&ctx, &st, "ln.x", 2, 5, 1, 8);
        ref_backward(&ctx, &st, "ln.r", y = embr__nn_layernorm(&ctx, x, &ln));
        tf_compare(&st, "ln.y", y ? y->d : NULL, 0);
        tf_compare(&st, "ln.dx", x ? x->g : NULL, 1);
        tf_compare(&st, "ln.dweight", pgrad(&P, "ln.weight"), 1);
        tf_compare(&st, "ln.dbias", pgrad(&P, "ln.bias"), 1);
        break;
      case 1:
      case 2:
        x = ref_input(&ctx, &st, "act.x", 2, 5, 1, 8);
        y = step == 1 ? embr__nn_gelu(&ctx, x) : embr__nn_quick_gelu(&ctx, x);
        ref_backward(&ctx, &st, "act.r", y);
        tf_compare(&st, step == 1 ? "act.gelu.y" : "act.qgelu.y", y ? y->d : NULL, 0);
        tf_compare(&st, step == 1 ? "act.gelu.dx" : "act.qgelu.dx", x ? x->g : NULL, 1);
        break;
      case 3:
      case 4: {
        const char *pre = step == 3 ? "dense" : "denseT";
        char name[64];
        snprintf(name, sizeof(name), "%s.x", pre);
        x = ref_input(&ctx, &st, name, 2, 5, 1, 8);
        snprintf(name, sizeof(name), "%s.r", pre);
        ref_backward(&ctx, &st, name, y = embr__nn_dense_f(&ctx, x, step == 3 ? &dense : &denseT));
        snprintf(name, sizeof(name), "%s.y", pre);
        tf_compare(&st, name, y ? y->d : NULL, 0);
        snprintf(name, sizeof(name), "%s.dx", pre);
        tf_compare(&st, name, x ? x->g : NULL, 1);
        snprintf(name, sizeof(name), "%s.dweight", pre);
        tf_compare(&st, name, pgrad(&P, step == 3 ? "dense.weight" : "denseT.weight"), 1);
        if (step == 3) tf_compare(&st, "dense.dbias", pgrad(&P, "dense.bias"), 1);
        break;
      }
      case 5: {
        static const char *pre[3] = {"attn", "attnc", "attn5c"};
        for (int i = 0; i < 3; i++) {
          char name[64];
          snprintf(name, sizeof(name), "%s.qkv", pre[i]);
          const nn_st_tensor *t = need(&st, name);
          snprintf(name, sizeof(name), "%s.config", pre[i]);
          float *cfg = ref_floats(&st, name);
          if (!t || !cfg) {
            free(cfg);
            continue;
          }
          embr__nn_ctx_reset(&ctx);
          snprintf(name, sizeof(name), "%s.qkv", pre[i]);
          x = ref_input(&ctx, &st, name, (int)t->shape[0], (int)t->shape[1], 1, (int)t->shape[2]);
          y = embr__nn_attention(&ctx, x, (int)cfg[0], (int)cfg[1]);
          snprintf(name, sizeof(name), "%s.r", pre[i]);
          ref_backward(&ctx, &st, name, y);
          snprintf(name, sizeof(name), "%s.y", pre[i]);
          tf_compare(&st, name, y ? y->d : NULL, 0);
          snprintf(name, sizeof(name), "%s.dqkv", pre[i]);
          tf_compare(&st, name, x ? x->g : NULL, 1);
          /* Inference (per-thread scratch, no saved probabilities) gives the same output. */
          nn_ctx inf;
          embr__nn_ctx_init(&inf, &P, 0, 0, 1);
          nn_t *yi = x ? embr__nn_attention(&inf, embr__nn_wrap(&inf, x->d, x->n, x->c, 1, x->w), (int)cfg[0], (int)cfg[1]) : NULL;
          snprintf(name, sizeof(name), "%s.y", pre[i]);
          tf_compare(&st, name, yi ? yi->d : NULL, 0);
          embr__nn_ctx_free(&inf);
          free(cfg);
        }
        break;
      }
      case 6: {
        float *fid = ref_floats(&st, "embed.ids");
        int32_t ids[10];
        for (int i = 0; fid && i < 10; i++) ids[i] = (int32_t)fid[i];
        free(fid);
        y = embr__nn_embed_tokens(&ctx, ids, 2, 5, table, 11, epos, 8);
        ref_backward(&ctx, &st, "embed.r", y);
        tf_compare(&st, "embed.y", y ? y->d : NULL, 0);
        tf_compare(&st, "embed.dtable", pgrad(&P, "embed.table"), 1);
        tf_compare(&st, "embed.dpos", pgrad(&P, "embed.pos"), 1);
        break;
      }
      case 7:
        x = ref_input(&ctx, &st, "vit.image", 2, 3, 8, 8);
        y = embr__nn_vit_tokens(&ctx, embr__nn_conv2d(&ctx, x, &conv), cls, vpos);
        ref_backward(&ctx, &st, "vit.r", y);
        tf_compare(&st, "vit.y", y ? y->d : NULL, 0);
        tf_compare(&st, "vit.dimage", x ? x->g : NULL, 1);
        tf_compare(&st, "vit.dconv.weight", pgrad(&P, "vit.conv.weight"), 1);
        tf_compare(&st, "vit.dcls", pgrad(&P, "vit.cls"), 1);
        tf_compare(&st, "vit.dpos", pgrad(&P, "vit.pos"), 1);
        break;
    }
    embr__nn_ctx_free(&ctx);
  }
  fprintf(stderr, "  transformer ops vs PyTorch: forward %.1e (absolute), gradients %.1e (relative)\n", tf_worst_fwd, tf_worst_grad);
  embr__nn_params_free(&P);
  embr__nn_st_close(&st);
}

/* OpenAI CLIP's residual block (nn.MultiheadAttention), ln_final, pooling and projection:
 * the text tower's shape (causal, EOT pooling) and the image tower's (class token). */
static void golden_tower(const char *pre) {
  char path[512], name[200];
  snprintf(path, sizeof(path), "%s/tests/ref/nn_transformer.safetensors", EMBR_SOURCE_DIR);
  nn_st st;
  REQUIRE(embr__nn_st_open(&st, path) == 0);
  tf_worst_fwd = tf_worst_grad = 0;
  snprintf(name, sizeof(name), "%s.config", pre);
  float *cfg = ref_floats(&st, name);
  snprintf(name, sizeof(name), "%s.idx", pre);
  float *fidx = ref_floats(&st, name);
  snprintf(name, sizeof(name), "%s.x", pre);
  const nn_st_tensor *tx = need(&st, name);
  snprintf(name, sizeof(name), "%s.proj", pre);
  const nn_st_tensor *tp = need(&st, name);
  REQUIRE(cfg && fidx && tx && tp);
  int B = (int)tx->shape[0], T = (int)tx->shape[1], d = (int)tx->shape[2];
  int32_t idx[8];
  for (int i = 0; i < B && i < 8; i++) idx[i] = (int32_t)fidx[i];
  nn_params P = {0};
  tower m;
  REQUIRE(tower_make(&P, &m, d, (int)cfg[0], (int)tp->shape[1], (int)cfg[1], idx) == 0);
  REQUIRE(embr__nn_params_init(&P, 1) == 0);
  snprintf(name, sizeof(name), "%s.", pre);
  CHECK(embr__nn_params_load(&P, &st, name, path) == 0);
  embr__nn_params_zero_grad(&P);
  nn_ctx ctx;
  embr__nn_ctx_init(&ctx, &P, 1, 1, 1);
  snprintf(name, sizeof(name), "%s.x", pre);
  nn_t *x = ref_input(&ctx, &st, name, B, T, 1, d);
  nn_t *y = tower_forward(&ctx, x, &m);
  snprintf(name, sizeof(name), "%s.r", pre);
  ref_backward(&ctx, &st, name, y);
  snprintf(name, sizeof(name), "%s.y", pre);
  tf_compare(&st, name, y ? y->d : NULL, 0);
  snprintf(name, sizeof(name), "%s.dx", pre);
  tf_compare(&st, name, x ? x->g : NULL, 1);
  for (int i = 0; i < P.n; i++) {
    snprintf(name, sizeof(name), "grad.%s.%s", pre, P.p[i].name);
    tf_compare(&st, name, P.grad + P.p[i].off, 1);
  }
  /* Inference (buffers released as it goes, pins on the residual inputs): the same output. */
  nn_ctx inf;
  embr__nn_ctx_init(&inf, &P, 0, 0, 1);
  nn_t *yi = x ? tower_forward(&inf, embr__nn_wrap(&inf, x->d, B, T, 1, d), &m) : NULL;
  snprintf(name, sizeof(name), "%s.y", pre);
  tf_compare(&st, name, yi ? yi->d : NULL, 0);
  fprintf(stderr, "  %s vs PyTorch: %d parameters; forward %.1e (absolute), gradients %.1e (relative)\n", pre, P.n, tf_worst_fwd, tf_worst_grad);
  embr__nn_ctx_free(&inf);
  embr__nn_ctx_free(&ctx);
  embr__nn_params_free(&P);
  embr__nn_st_close(&st);
  free(cfg), free(fidx);
}

static void test_golden_text_block(void) { golden_tower("tblock"); }
static void test_golden_image_block(void) { golden_tower("vblock"); }

/* ---- CLIP loss ------------------------------------------------------------------------------------ */

/* One evaluation of the CLIP loss on fresh tensors; with grads, the gradients into gi, gt, *gs. */
static double clip_eval(nn_params *P, int64_t off, const float *img, const float *txt, int B, int E, const int32_t *group,
                        float *gi, float *gt, float *gs, int64_t *i2t, int64_t *t2i) {
  nn_ctx ctx;
  int grads = gi != NULL;
  embr__nn_ctx_init(&ctx, P, 1, grads, 1);
  embr__nn_params_zero_grad(P);
  nn_t *a = grads ? embr__nn_tensor(&ctx, B, E, 1, 1) : embr__nn_wrap(&ctx, (float *)img, B, E, 1, 1);
  nn_t *b = grads ? embr__nn_tensor(&ctx, B, E, 1, 1) : embr__nn_wrap(&ctx, (float *)txt, B, E, 1, 1);
  if (grads) {
    memcpy(a->d, img, sizeof(float) * (size_t)B * E);
    memcpy(b->d, txt, sizeof(float) * (size_t)B * E);
  }
  double loss = embr__nn_clip_loss(&ctx, a, b, off, group, i2t, t2i);
  CHECK_MSG(ctx.rc == 0, "clip loss failed: %s", embr_last_error());
  if (grads && a->g && b->g) {
    memcpy(gi, a->g, sizeof(float) * (size_t)B * E);
    memcpy(gt, b->g, sizeof(float) * (size_t)B * E);
    *gs = P->grad[off];
  }
  embr__nn_ctx_free(&ctx);
  return loss;
}

/* The loss's gradients against central differences (in double: h 1e-3 on float inputs). */
static void clip_gradcheck(const char *name, float s, const int32_t *group) {
  enum { B = 5, E = 4 };
  nn_params P = {0};
  int64_t off = embr__nn_param_add(&P, "logit_scale", 1, (int64_t[]){1}, NN_NODECAY, NN_INIT_CONST, s);
  REQUIRE(off >= 0 && embr__nn_params_init(&P, 1) == 0);
  float img[B * E], txt[B * E], gi[B * E], gt[B * E], gs = -1;
  embr_rng rng;
  embr_rng_seed(&rng, 3);
  for (int i = 0; i < B * E; i++) img[i] = (float)embr_rng_normal(&rng), txt[i] = img[i] + 0.8f * (float)embr_rng_normal(&rng);
  clip_eval(&P, off, img, txt, B, E, group, gi, gt, &gs, NULL, NULL);
  const double h = 1e-3;
  int bad = 0;
  for (int k = 0; k < 2 * B * E + 1; k++) {
    float *x = k < B * E ? &img[k] : k < 2 * B * E ? &txt[k - B * E] : &P.data[off];
    double ana = k < B * E ? gi[k] : k < 2 * B * E ? gt[k - B * E] : gs;
    float keep = *x;
    *x = keep + (float)h;
    double up = clip_eval(&P, off, img, txt, B, E, group, NULL, NULL, NULL, NULL, NULL);
    *x = keep - (float)h;
    double dn = clip_eval(&P, off, img, txt, B, E, group, NULL, NULL, NULL, NULL, NULL);
    *x = keep;
    double num = (up - dn) / (2 * h);
    if (!close_enough(num, ana) && bad++ < 3) fprintf(stderr, "  %s coordinate %d: numeric %.6f analytic %.6f\n", name, k, num, ana);
  }
  CHECK_MSG(bad == 0, "%s: %d CLIP-loss gradient coordinates differ from finite differences", name, bad);
  embr__nn_params_free(&P);
}

static void test_clip_loss_grads(void) {
  int32_t group[5] = {0, 1, 0, 2, 1};
  clip_gradcheck("clip", 2.659f, NULL);
  clip_gradcheck("clip, groups", 2.659f, group);
  clip_gradcheck("clip, scale 0.5", 0.5f, NULL);
}

/* Outside [0, ln 100] the scale is clamped: the loss is the bound's, its gradient 0. */
static void test_clip_loss_clamp(void) {
  enum { B = 3, E = 2 };
  float img[B * E] = {1, 0, 0, 1, 1, 1}, txt[B * E] = {1, 0.2f, 0.1f, 1, 2, 1.5f}, gi[B * E], gt[B * E], gs;
  nn_params P = {0};
  int64_t off = embr__nn_param_add(&P, "logit_scale", 1, (int64_t[]){1}, NN_NODECAY, NN_INIT_CONST, 0);
  REQUIRE(off >= 0 && embr__nn_params_init(&P, 1) == 0);
  P.data[off] = (float)log(100.0);
  double at = clip_eval(&P, off, img, txt, B, E, NULL, gi, gt, &gs, NULL, NULL);
  CHECK(gs != 0);
  P.data[off] = 7;
  CHECK_NEAR(clip_eval(&P, off, img, txt, B, E, NULL, gi, gt, &gs, NULL, NULL), at, 1e-6);
  CHECK(gs == 0);
  P.data[off] = -3;
  double low = clip_eval(&P, off, img, txt, B, E, NULL, gi, gt, &gs, NULL, NULL);
  CHECK(gs == 0);
  P.data[off] = 0;
  CHECK_NEAR(clip_eval(&P, off, img, txt, B, E, NULL, NULL, NULL, NULL, NULL, NULL), low, 1e-7);
  /* by hand at scale 1 for B = 1: a single pair has loss 0 */
  CHECK_NEAR(clip_eval(&P, off, img, txt, 1, E, NULL, NULL, NULL, NULL, NULL, NULL), 0, 1e-12);
  /* mismatched shapes and a bad offset are errors */
  nn_ctx ctx;
  embr__nn_ctx_init(&ctx, &P, 1, 0, 1);
  double l = embr__nn_clip_loss(&ctx, embr__nn_wrap(&ctx, img, 3, 2, 1, 1), embr__nn_wrap(&ctx, txt, 2, 3, 1, 1), off, NULL, NULL, NULL);
  CHECK(isnan(l) && ctx.rc == EMBR_EINVAL && strstr(embr_last_error(), "CLIP loss"));
  embr__nn_ctx_reset(&ctx);
  l = embr__nn_clip_loss(&ctx, embr__nn_wrap(&ctx, img, 3, 2, 1, 1), embr__nn_wrap(&ctx, txt, 3, 2, 1, 1), P.total, NULL, NULL, NULL);
  CHECK(isnan(l) && ctx.rc == EMBR_EINVAL);
  embr__nn_ctx_free(&ctx);
  embr__nn_params_free(&P);
}

/* Against PyTorch (scripts/make_clip_loss_ref.py): loss to 1e-5, gradients to 1e-4 (relative). */
static void clip_golden_case(const nn_st *st, const char *prefix) {
  char name[64];
#define CLIP_REF(field) (snprintf(name, sizeof name, "%s%s", prefix, field), need(st, name))
  const nn_st_tensor *ti = CLIP_REF("img"), *tt = CLIP_REF("txt"), *tg = CLIP_REF("group"), *ts = CLIP_REF("logit_scale");
  const nn_st_tensor *tl = CLIP_REF("loss"), *tgi = CLIP_REF("grad_img"), *tgt = CLIP_REF("grad_txt"), *tgs = CLIP_REF("grad_scale");
  const nn_st_tensor *th1 = CLIP_REF("i2t"), *th2 = CLIP_REF("t2i");
#undef CLIP_REF
  if (!ti || !tt || !tg || !ts || !tl || !tgi || !tgt || !tgs || !th1 || !th2) return;
  int B = (int)ti->shape[0], E = (int)ti->shape[1];
  REQUIRE(B <= 16 && E <= 16);
  float img[256], txt[256], gf[16], gi[256], gt[256], gs = 0, v[2], tmp[256];
  int32_t group[16];
  embr__nn_st_read_f32(ti, img);
  embr__nn_st_read_f32(tt, txt);
  embr__nn_st_read_f32(tg, gf);
  for (int i = 0; i < B; i++) group[i] = (int32_t)gf[i];
  nn_params P = {0};
  int64_t off = embr__nn_param_add(&P, "logit_scale", 1, (int64_t[]){1}, NN_NODECAY, NN_INIT_CONST, 0);
  REQUIRE(off >= 0 && embr__nn_params_init(&P, 1) == 0);
  embr__nn_st_read_f32(ts, &P.data[off]);
  int64_t i2t = -1, t2i = -1;
  double loss = clip_eval(&P, off, img, txt, B, E, group[0] < 0 ? NULL : group, gi, gt, &gs, &i2t, &t2i);
  embr__nn_st_read_f32(tl, v);
  CHECK_MSG(fabs(loss - v[0]) <= 1e-5 * fabs(v[0]), "%s loss %.8f, PyTorch %.8f", prefix, loss, v[0]);
  double ei = rel_err(gi, tgi, tmp, 1e-30), et = rel_err(gt, tgt, tmp, 1e-30);
  CHECK_MSG(ei <= 1e-4 && et <= 1e-4, "%s gradients differ from PyTorch: image %.2e, text %.2e", prefix, ei, et);
  embr__nn_st_read_f32(tgs, v);
  CHECK_MSG(fabs(gs - v[0]) <= 1e-4 * fabs(v[0]) || (v[0] == 0 && gs == 0), "%s scale gradient %.8f, PyTorch %.8f", prefix, gs, v[0]);
  embr__nn_st_read_f32(th1, v);
  embr__nn_st_read_f32(th2, v + 1);
  CHECK_EQ_INT(i2t, (int64_t)v[0]);
  CHECK_EQ_INT(t2i, (int64_t)v[1]);
  embr__nn_params_free(&P);
}

static void test_clip_loss_golden(void) {
  char path[512];
  snprintf(path, sizeof(path), "%s/tests/ref/nn_clip_loss.safetensors", EMBR_SOURCE_DIR);
  nn_st st;
  REQUIRE(embr__nn_st_open(&st, path) == 0);
  clip_golden_case(&st, "plain.");
  clip_golden_case(&st, "group.");
  clip_golden_case(&st, "clamped.");
  embr__nn_st_close(&st);
}

/* The vectorisable exponential against libm's on its range, its clamps, and NaN (which must stay
 * NaN without an undefined float-to-int conversion: UBSan flags one). */
static void test_vexpf(void) {
  double worst = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.01f) {
    double e = exp((double)x), r = fabs(embr__nn_expf(x) - e) / e;
    worst = r > worst ? r : worst;
  }
  CHECK_MSG(worst < 3e-7, "expf relative error %.2e", worst);
  CHECK(embr__nn_expf(-1000.0f) == embr__nn_expf(-87.0f));
  CHECK(embr__nn_expf(INFINITY) == embr__nn_expf(88.0f));
  CHECK(isnan(embr__nn_expf(NAN)));
}

/* The vectorisable erf against libm's (in double) over a dense range of floats (every 1e-5 up to
 * 6, where erf is 1 in float, then coarser out to 1e30): within 2.5e-7 absolute, odd to the bit,
 * exactly 0 at 0 and 1 at infinity, NaN kept. GELU (forward and backward) is built on it. */
static void test_verff(void) {
  double worst = 0;
  for (double x = 0; x <= 6.0; x += 1e-5) {
    float f = (float)x;
    double e = fabs((double)embr__nn_erff(f) - erf((double)f));
    worst = e > worst ? e : worst;
    CHECK(embr__nn_erff(-f) == -embr__nn_erff(f));
  }
  for (float f = 6.0f; f < 1e30f; f *= 1.37f) worst = fmax(worst, fabs((double)embr__nn_erff(f) - erf((double)f)));
  CHECK_MSG(worst <= 2.5e-7, "erff absolute error %.2e", worst);
  CHECK(embr__nn_erff(0.0f) == 0.0f && embr__nn_erff(INFINITY) == 1.0f && embr__nn_erff(-INFINITY) == -1.0f);
  CHECK(isnan(embr__nn_erff(NAN)));
}

/* GELU's two builds (baseline and AVX2, chosen at run time) give the same bits, forward and
 * backward, over values spanning both branches of erf and an odd length (a tail past the vector
 * width); and the forward agrees with x Phi(x) through libm's erf in double within 2e-7 x. */
static void test_gelu_dispatch(void) {
  enum { N = 5003 };
  nn_t *yy[2];
  float *gg[2];
  nn_ctx ctx[2];
  for (int k = 0; k < 2; k++) {
    embr_cpu_force(k == 0 ? EMBR_CPU_SCALAR : embr_cpu_detect());
    embr__nn_ctx_init(&ctx[k], NULL, 1, 1, 0);
    ctx[k].nt = 2;
    nn_t *x = embr__nn_tensor(&ctx[k], 1, 1, 1, N);
    CHECK(x != NULL);
    for (int i = 0; i < N; i++) x->d[i] = -9.0f + 18.0f * (float)i / (N - 1);
    nn_t *y = embr__nn_gelu(&ctx[k], x);
    CHECK(y != NULL);
    float *g = embr__nn_grad(&ctx[k], y);
    for (int i = 0; i < N; i++) g[i] = 1.0f + 0.001f * (float)(i % 7);
    embr__nn_grad(&ctx[k], x);
    yy[k] = y, gg[k] = x->g;
    embr__nn_backward(&ctx[k]);
    if (k == 0)
      for (int i = 0; i < N; i++) {
        double v = x->d[i], want = 0.5 * v * (1 + erf(v / sqrt(2.0)));
        CHECK_MSG(fabs(y->d[i] - want) <= 2e-7 * fmax(1, fabs(v)), "gelu(%g) = %.9g, want %.9g", v, y->d[i], want);
      }
  }
  embr_cpu_force(embr_cpu_detect());
  CHECK(memcmp(yy[0]->d, yy[1]->d, sizeof(float) * N) == 0);
  CHECK(memcmp(gg[0], gg[1], sizeof(float) * N) == 0);
  for (int k = 0; k < 2; k++) embr__nn_ctx_free(&ctx[k]);
}

/* embr__nn_gemm_rows against a product in double, for every transpose pair and beta 0 / 1, at
 * shapes that split rows (m large), split columns (m small, n large: DINO's head on 64 crops),
 * split columns at an n that is not a multiple of 16, and run on one thread (both small), with
 * 1 and 2 threads: within 1e-5 relative of the largest |C|. */
static void test_gemm_rows_split(void) {
  const int shapes[][3] = {{300, 70, 40}, {64, 1100, 300}, {20, 777, 900}, {10, 30, 20}};
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
    for (int tr = 0; tr < 4; tr++)
      for (int nt = 1; nt <= 2; nt++) {
        int m = shapes[si][0], n = shapes[si][1], k = shapes[si][2], ta = tr & 1, tb = tr >> 1;
        float *A = malloc(sizeof(float) * (size_t)m * k), *B = malloc(sizeof(float) * (size_t)k * n);
        float *C = malloc(sizeof(float) * (size_t)m * n);
        double *R = malloc(sizeof(double) * (size_t)m * n);
        for (int i = 0; i < m * k; i++) A[i] = (float)sin(0.37 * i + si);
        for (int i = 0; i < k * n; i++) B[i] = (float)cos(0.11 * i - tr);
        for (int i = 0; i < m * n; i++) C[i] = (float)(i % 5) - 2.0f;
        float beta = (float)(nt - 1); /* 0 with one thread, 1 with two */
        double big = 0, worst = 0;
        for (int i = 0; i < m; i++)
          for (int j = 0; j < n; j++) {
            double acc = beta * C[i * n + j];
            for (int l = 0; l < k; l++) acc += (double)(ta ? A[l * m + i] : A[i * k + l]) * (tb ? B[j * k + l] : B[l * n + j]);
            R[i * n + j] = acc;
            big = fmax(big, fabs(acc));
          }
        nn_ctx ctx;
        embr__nn_ctx_init(&ctx, NULL, 0, 0, 0);
        ctx.nt = nt;
        embr__nn_gemm_rows(&ctx, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, A, ta ? m : k, B,
                           tb ? k : n, beta, C, n);
        for (int i = 0; i < m * n; i++) worst = fmax(worst, fabs(C[i] - R[i]));
        CHECK_MSG(worst <= 1e-5 * big, "gemm_rows %dx%dx%d trans %d%d, %d threads: off by %.3g of %.3g", m, n, k, ta, tb,
                  nt, worst, big);
        embr__nn_ctx_free(&ctx);
        free(A), free(B), free(C), free(R);
      }
}

/* ---- DINO ViT ops: LayerScale, drop-path, resampled positions, class + mean pooling ---------- */

typedef struct vit_arg {
  int64_t gamma, pos, cls;
  int M, g, D;
  float p;
} vit_arg;
static nn_t *op_scale(nn_ctx *c, nn_t *x, const void *a) { return embr__nn_scale_cols(c, x, ((const vit_arg *)a)->gamma); }
/* Drop-path after a GELU: the probe's fresh context (seed 7) draws the same masks every time. */
static nn_t *op_drop_path(nn_ctx *c, nn_t *x, const void *a) { return embr__nn_drop_path(c, embr__nn_gelu(c, x), ((const vit_arg *)a)->p); }
/* The positions have no tensor input: the probe's x (1, 1 + g*g, 1, D) is added to them. */
static nn_t *op_pos(nn_ctx *c, nn_t *x, const void *a) {
  const vit_arg *v = a;
  return embr__nn_add(c, embr__nn_pos_resample(c, v->pos, v->M, v->g, v->D), x);
}
/* Patches (B, D, g, g) -> tokens with resampled positions -> class + mean pooling. */
static nn_t *op_vit_pos(nn_ctx *c, nn_t *x, const void *a) {
  const vit_arg *v = a;
  return embr__nn_cls_avg(c, embr__nn_vit_tokens_pos(c, x, v->cls, embr__nn_pos_resample(c, v->pos, v->M, v->g, v->D)));
}
static nn_t *op_cls_avg(nn_ctx *c, nn_t *x, const void *a) { (void)a; return embr__nn_cls_avg(c, x); }

static void test_dino_vit_op_grads(void) {
  nn_params P = {0};
  int64_t gs[1] = {6}, ps[3] = {1, 1 + 4 * 4, 6}, cs[3] = {1, 1, 6};
  vit_arg v = {embr__nn_param_add(&P, "gamma", 1, gs, NN_NODECAY, NN_INIT_NORMAL, 1),
               embr__nn_param_add(&P, "pos", 3, ps, NN_NODECAY, NN_INIT_NORMAL, 1),
               embr__nn_param_add(&P, "cls", 3, cs, NN_NODECAY, NN_INIT_NORMAL, 1), 4, 6, 6, 0.4f};
  CHECK(embr__nn_params_init(&P, 5) == 0);
  vit_arg down = v, same = v;
  down.g = 3, same.g = 4;
  gcase cases[] = {{"layer scale", op_scale, &v, 2, 3, 1, 6, 1},
                   {"drop-path p 0.4", op_drop_path, &v, 6, 3, 1, 4, 1},
                   {"positions 4 -> 6", op_pos, &v, 1, 1 + 36, 1, 6, 1},
                   {"positions 4 -> 3", op_pos, &down, 1, 1 + 9, 1, 6, 1},
                   {"positions 4 -> 4", op_pos, &same, 1, 1 + 16, 1, 6, 1},
                   {"ViT tokens, resampled positions, class + mean", op_vit_pos, &down, 2, 6, 3, 3, 1},
                   {"class + mean pooling", op_cls_avg, NULL, 3, 5, 1, 4, 1}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) gradcheck(&P, &cases[i]);
  embr__nn_params_free(&P);
}

/* Drop-path's masks: whole samples, kept ones scaled by 1/(1-p), about p of them dropped, the
 * same for the same seed; the identity at inference and at p = 0. */
static void test_drop_path_masks(void) {
  enum { B = 4000, W = 3 };
  float *x = malloc(sizeof(float) * B * W);
  for (int i = 0; i < B * W; i++) x[i] = 1.0f + (float)(i % 7);
  nn_ctx c1, c2, ci;
  embr__nn_ctx_init(&c1, NULL, 1, 0, 9), embr__nn_ctx_init(&c2, NULL, 1, 0, 9), embr__nn_ctx_init(&ci, NULL, 0, 0, 9);
  nn_t *a = embr__nn_drop_path(&c1, embr__nn_wrap(&c1, x, B, W, 1, 1), 0.3f);
  nn_t *b = embr__nn_drop_path(&c2, embr__nn_wrap(&c2, x, B, W, 1, 1), 0.3f);
  nn_t *in = embr__nn_wrap(&ci, x, B, W, 1, 1);
  REQUIRE(a && b);
  CHECK(embr__nn_drop_path(&ci, in, 0.3f) == in);
  CHECK(embr__nn_drop_path(&c1, in, 0) == in);
  int dropped = 0, bad = 0;
  for (int s = 0; s < B; s++) {
    int z = a->d[s * W] == 0;
    dropped += z;
    for (int j = 0; j < W; j++) {
      float want = z ? 0.0f : x[s * W + j] / 0.7f;
      if (fabsf(a->d[s * W + j] - want) > 1e-5f * fabsf(want) || a->d[s * W + j] != b->d[s * W + j]) bad++;
    }
  }
  CHECK_MSG(bad == 0, "%d values are neither 0 nor x / (1 - p) for a whole sample, or differ between equal seeds", bad);
  /* binomial(4000, 0.3): sd 29 */
  CHECK_MSG(abs(dropped - 1200) < 150, "%d of %d samples dropped at p = 0.3", dropped, B);
  CHECK(embr__nn_drop_path(&c1, in, 1.0f) == NULL && c1.rc == EMBR_EINVAL);
  embr__nn_ctx_free(&c1), embr__nn_ctx_free(&c2), embr__nn_ctx_free(&ci);
  free(x);
}

int main(int argc, char **argv) {
  return RUN_TESTS(argc, argv, test_model_load_names_file, test_conv_forward_reference, test_conv_grads, test_winograd_matches_im2col, test_sgemm1, test_conv_gemm_paths, test_bn_prelu_linear_grads,
                   test_parameterless_grads, test_margin_grads, test_margin_values, test_softmax_xent_values,
                   test_golden_resnet18, test_golden_mobilefacenet, test_fused_conv, test_embed_split, test_optimizers, test_safetensors_round_trip, test_safetensors_hostile, test_safetensors_integer_and_nonfinite, test_half_precision,
                   test_transformer_grads, test_token_op_grads, test_transformer_block_grads, test_transformer_errors,
                   test_golden_transformer_ops, test_golden_text_block, test_golden_image_block,
                   test_clip_loss_grads, test_clip_loss_clamp, test_clip_loss_golden, test_vexpf, test_verff, test_gelu_dispatch, test_gemm_rows_split, test_dino_vit_op_grads,
                   test_drop_path_masks);
}

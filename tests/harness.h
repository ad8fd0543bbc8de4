/* A small test harness: one executable per module, each a list of test functions.
 *
 *   static void test_something(void) { CHECK(x == 1); CHECK_NEAR(a, b, 1e-6); }
 *   int main(int argc, char **argv) { return RUN_TESTS(argc, argv, test_something, ...); }
 *
 * A failing CHECK prints file:line and the expression and marks the test failed (the test goes
 * on, so one run shows every failure). SKIP("reason") ends a test as skipped; an executable whose
 * tests all skipped exits 77, which ctest reports as skipped. `./test_x name` runs one test. */
#ifndef EMBR_TEST_HARNESS_H
#define EMBR_TEST_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int th_failed_checks;
static int th_skipped;

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      th_failed_checks++;                                                  \
    }                                                                      \
  } while (0)

#define CHECK_MSG(cond, ...)                                               \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "  %s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                        \
      fputc('\n', stderr);                                                 \
      th_failed_checks++;                                                  \
    }                                                                      \
  } while (0)

#define CHECK_EQ_INT(a, b)                                                 \
  do {                                                                     \
    long long th_a = (long long)(a), th_b = (long long)(b);               \
    if (th_a != th_b) {                                                    \
      fprintf(stderr, "  %s:%d: %s == %s failed: %lld vs %lld\n", __FILE__, __LINE__, #a, #b, \
              th_a, th_b);                                                 \
      th_failed_checks++;                                                  \
    }                                                                      \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                              \
  do {                                                                     \
    double th_a = (double)(a), th_b = (double)(b);                        \
    if (!(fabs(th_a - th_b) <= (tol))) {                                   \
      fprintf(stderr, "  %s:%d: |%s - %s| <= %g failed: %.9g vs %.9g\n", __FILE__, __LINE__, \
              #a, #b, (double)(tol), th_a, th_b);                          \
      th_failed_checks++;                                                  \
    }                                                                      \
  } while (0)

/* Stops the current test when a check already failed (for checks later code depends on). */
#define REQUIRE(cond)        \
  do {                       \
    int th_before = th_failed_checks; \
    CHECK(cond);             \
    if (th_failed_checks != th_before) return; \
  } while (0)

#define SKIP(...)                                  \
  do {                                             \
    fprintf(stderr, "  skipped: ");                \
    fprintf(stderr, __VA_ARGS__);                  \
    fputc('\n', stderr);                           \
    th_skipped = 1;                                \
    return;                                        \
  } while (0)

typedef struct th_case {
  const char *name;
  void (*fn)(void);
} th_case;

static int th_run(int argc, char **argv, const th_case *cases, int n) {
  int failed = 0, ran = 0, skipped = 0;
  for (int i = 0; i < n; i++) {
    if (argc > 1 && strcmp(argv[1], cases[i].name) != 0) continue;
    int before = th_failed_checks;
    th_skipped = 0;
    fprintf(stderr, "[ RUN  ] %s\n", cases[i].name);
    cases[i].fn();
    ran++;
    if (th_failed_checks != before) {
      failed++;
      fprintf(stderr, "[ FAIL ] %s\n", cases[i].name);
    } else if (th_skipped) {
      skipped++;
      fprintf(stderr, "[ SKIP ] %s\n", cases[i].name);
    } else {
      fprintf(stderr, "[  OK  ] %s\n", cases[i].name);
    }
  }
  fprintf(stderr, "%d run, %d failed, %d skipped\n", ran, failed, skipped);
  if (ran == 0) return 1;
  if (failed) return 1;
  return skipped == ran ? 77 : 0;
}

#define TH_CASE(f) {#f, f}
#define TH_EXPAND_1(f) TH_CASE(f)

/* RUN_TESTS(argc, argv, f1, f2, ...) */
#define RUN_TESTS(argc, argv, ...)                                         \
  th_run_list((argc), (argv), #__VA_ARGS__, (void (*[])(void)){__VA_ARGS__}, \
              (int)(sizeof((void (*[])(void)){__VA_ARGS__}) / sizeof(void (*)(void))))

/* Splits the stringified list of names so each test keeps its name. */
static int th_run_list(int argc, char **argv, const char *names, void (**fns)(void), int n) {
  th_case *cases = calloc((size_t)n, sizeof *cases);
  char *buf = strdup(names);
  char *save = NULL, *tok = strtok_r(buf, ", \t\n", &save);
  for (int i = 0; i < n; i++) {
    cases[i].name = tok ? tok : "?";
    cases[i].fn = fns[i];
    tok = strtok_r(NULL, ", \t\n", &save);
  }
  int rc = th_run(argc, argv, cases, n);
  free(cases);
  free(buf);
  return rc;
}

/* Path of a test fixture or of ../shared/data relative to the source tree (set by CMake). */
#ifndef EMBR_SOURCE_DIR
#define EMBR_SOURCE_DIR "."
#endif

#endif

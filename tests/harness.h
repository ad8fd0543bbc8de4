/* A small test harness: one executable per module, each a list of test functions.
 *
 *   static void test_something(void) { CHECK(x == 1); CHECK_NEAR(a, b, 1e-6); }
 *   int main(int argc, char **argv) { return RUN_TESTS(argc, argv, test_something, ...); }
 *
 * A failing CHECK prints file:line and the expression and marks the test failed (the test goes
 * on, so one run shows every failure). SKIP("reason") ends a test as skipped; an executable whose
 * tests all skipped exits 77, which ctest reports as skipped. `./test_x name` runs one test.
 *
 * Files: th_path("x.npy") is a path in the process's scratch directory ($TMPDIR or /tmp,
 * embr-test-XXXXXX, made on first use), removed with everything in it when the process exits,
 * unless a check failed (then its path is printed, for a look). th_fresh_dir("c") makes a new
 * empty directory inside it; th_join(dir, name) joins paths; th_write_file writes bytes. */
#ifndef EMBR_TEST_HARNESS_H
#define EMBR_TEST_HARNESS_H

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* ---- scratch files ----------------------------------------------------------------------------- */

#define TH_UNUSED __attribute__((unused)) /* not every test uses every helper */

static char th_scratch_dir[512];
static pid_t th_scratch_owner;

/* Removes a file or a directory tree (symbolic links are removed, not followed). */
TH_UNUSED static void th_rmtree(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return;
  if (!S_ISDIR(st.st_mode)) {
    unlink(path);
    return;
  }
  DIR *d = opendir(path);
  for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    size_t n = strlen(path) + strlen(e->d_name) + 2;
    char *sub = malloc(n);
    if (!sub) break;
    snprintf(sub, n, "%s/%s", path, e->d_name);
    th_rmtree(sub);
    free(sub);
  }
  if (d) closedir(d);
  rmdir(path);
}

TH_UNUSED static void th_scratch_cleanup(void) {
  if (!th_scratch_dir[0] || getpid() != th_scratch_owner) return; /* not in forked children */
  if (th_failed_checks) {
    fprintf(stderr, "  scratch files kept in %s\n", th_scratch_dir);
    return;
  }
  th_rmtree(th_scratch_dir);
}

/* The process's scratch directory, created on first use. */
TH_UNUSED static const char *th_scratch(void) {
  if (th_scratch_dir[0]) return th_scratch_dir;
  const char *base = getenv("TMPDIR");
  snprintf(th_scratch_dir, sizeof th_scratch_dir, "%s/embr-test-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(th_scratch_dir)) {
    perror(th_scratch_dir);
    exit(1);
  }
  th_scratch_owner = getpid();
  atexit(th_scratch_cleanup);
  return th_scratch_dir;
}

/* "dir/name" in one of 64 rotating buffers (plenty for the paths a test holds at once). */
TH_UNUSED static const char *th_join(const char *dir, const char *name) {
  static char bufs[64][1024];
  static int next;
  char tmp[1024];
  snprintf(tmp, sizeof tmp, "%s/%s", dir, name); /* dir may be an earlier result */
  char *b = bufs[next++ & 63];
  memcpy(b, tmp, sizeof tmp);
  return b;
}

/* A path in the scratch directory. */
TH_UNUSED static const char *th_path(const char *name) { return th_join(th_scratch(), name); }

/* A new empty directory <scratch>/<tag>-XXXXXX (its path stays valid for the next 63 calls). */
TH_UNUSED static const char *th_fresh_dir(const char *tag) {
  static char bufs[64][1024];
  static int next;
  char *b = bufs[next++ & 63];
  snprintf(b, sizeof bufs[0], "%s/%s-XXXXXX", th_scratch(), tag);
  if (!mkdtemp(b)) {
    perror(b);
    exit(1);
  }
  return b;
}

/* Entries of dir whose name starts with prefix ("" for all; "." and ".." never count). */
TH_UNUSED static int th_count_entries(const char *dir, const char *prefix) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d)) != NULL;)
    n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strncmp(e->d_name, prefix, strlen(prefix)) == 0;
  if (d) closedir(d);
  return n;
}

/* Writes n bytes to path, or ends the process with a message. */
TH_UNUSED static void th_write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(1);
  }
}

/* Path of a test fixture or of ../shared/data relative to the source tree (set by CMake). */
#ifndef EMBR_SOURCE_DIR
#define EMBR_SOURCE_DIR "."
#endif

#endif

/* Core: status strings, last error, aligned allocation, size arithmetic, RNG, progress, whole-file
 * input (caps, non-regular files, files changing under the reader), and the public releasers. */
#include "core/fileio.h"
#include "embr/embr.h"
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_status_strings(void) {
  CHECK(strcmp(embr_strerror(EMBR_OK), "success") == 0);
  CHECK(strcmp(embr_strerror(EMBR_EFORMAT), "malformed input") == 0);
  CHECK(strcmp(embr_strerror(-12345), "unknown error") == 0);
  for (int s = EMBR_ECHECKPOINT; s <= 0; s++) CHECK(strcmp(embr_strerror(s), "unknown error") != 0);
}

static void test_last_error(void) {
  embr_clear_error();
  CHECK(embr_last_error()[0] == '\0');
  int rc = embr_error(EMBR_EFORMAT, "%s: row %d", "x.fvecs", 12);
  CHECK_EQ_INT(rc, EMBR_EFORMAT);
  CHECK(strcmp(embr_last_error(), "x.fvecs: row 12") == 0);
  /* Bytes from a hostile input are recorded escaped: controls, DEL, invalid UTF-8 (a lone
   * continuation byte, an overlong form, a surrogate, a truncated sequence); valid UTF-8 stays. */
  embr_error(EMBR_EINVAL, "ids.txt: id '%s'", "a\x1b[2J\tb\x7f\xff\xc3\xa9\x80\xc0\xaf\xed\xa0\x80\xf0\x9f\x98\x80\xe2\x82\n");
  CHECK_MSG(strcmp(embr_last_error(),
                   "ids.txt: id 'a\\x1b[2J\\x09b\\x7f\\xff\xc3\xa9\\x80\\xc0\\xaf\\xed\\xa0\\x80\xf0\x9f\x98\x80\\xe2\\x82\\x0a'") == 0,
            "%s", embr_last_error());
  /* A long message is cut at a character boundary, never inside an escape. */
  char big[2048];
  memset(big, 1, sizeof big - 1);
  big[sizeof big - 1] = '\0';
  embr_error(EMBR_EINVAL, "%s", big);
  size_t n = strlen(embr_last_error());
  CHECK(n > 900 && n < 1024 && n % 4 == 0);
}

static void test_alloc_alignment(void) {
  for (size_t n = 0; n < 300; n += 7) {
    unsigned char *p = embr_alloc(n);
    REQUIRE(p != NULL);
    CHECK(((uintptr_t)p & 63) == 0);
    memset(p, 0xab, n);
    embr_free(p);
  }
  embr_free(NULL);
  int *z = embr_calloc(100, sizeof(int));
  REQUIRE(z != NULL);
  int sum = 0;
  for (int i = 0; i < 100; i++) sum += z[i];
  CHECK_EQ_INT(sum, 0);
  embr_free(z);
  CHECK(embr_calloc(SIZE_MAX / 2, 4) == NULL);
}

static void test_size_arith(void) {
  size_t out = 0;
  CHECK_EQ_INT(embr_size_mul(1000, 1000, &out), 0);
  CHECK_EQ_INT(out, 1000000);
  CHECK_EQ_INT(embr_size_mul(SIZE_MAX / 2 + 1, 2, &out), EMBR_ENOMEM);
  CHECK_EQ_INT(embr_size_muladd(10, 10, 5, &out), 0);
  CHECK_EQ_INT(out, 105);
  CHECK_EQ_INT(embr_size_muladd(SIZE_MAX / 2, 2, 2, &out), EMBR_ENOMEM);
}

/* Reference values from the published xoshiro256** definition: state seeded directly. */
static void test_rng_reference(void) {
  embr_rng r = {{1, 2, 3, 4}};
  /* First outputs of xoshiro256** from state {1,2,3,4}, computed by hand from the recurrence:
   * result = rotl(s1 * 5, 7) * 9 = rotl(10, 7) * 9 = 1280 * 9 = 11520. */
  CHECK(embr_rng_next(&r) == 11520u);
  /* Next state: t = 2<<17; s2^=s0 -> 2; s3^=s1 -> 6; s1^=s2 -> 0; s0^=s3 -> 7; s2^=t; s3=rotl(6,45).
   * result = rotl(0 * 5, 7) * 9 = 0. */
  CHECK(embr_rng_next(&r) == 0u);
  /* s1 is now 262146 ^ 7 = 262149: rotl(262149 * 5, 7) * 9. */
  CHECK(embr_rng_next(&r) == 1509978240u);
}

static void test_rng_determinism_and_streams(void) {
  embr_rng a, b, c;
  embr_rng_seed(&a, 42);
  embr_rng_seed(&b, 42);
  for (int i = 0; i < 1000; i++) CHECK(embr_rng_next(&a) == embr_rng_next(&b));
  embr_rng_split(&a, 42, 0);
  embr_rng_split(&b, 42, 1);
  embr_rng_split(&c, 42, 0);
  int same = 0;
  for (int i = 0; i < 100; i++) {
    uint64_t x = embr_rng_next(&a);
    same += x == embr_rng_next(&b);
    CHECK(x == embr_rng_next(&c));
  }
  CHECK(same == 0);
}

static void test_rng_distributions(void) {
  embr_rng r;
  embr_rng_seed(&r, 7);
  const int n = 200000;
  int hist[10] = {0};
  double fsum = 0, nsum = 0, nsq = 0;
  for (int i = 0; i < n; i++) {
    uint64_t v = embr_rng_below(&r, 10);
    REQUIRE(v < 10);
    hist[v]++;
    float f = embr_rng_float(&r);
    CHECK(f >= 0.0f && f < 1.0f);
    fsum += f;
    double g = embr_rng_normal(&r);
    nsum += g;
    nsq += g * g;
  }
  for (int i = 0; i < 10; i++) CHECK_NEAR(hist[i], n / 10, 5 * sqrt(n * 0.09));
  CHECK_NEAR(fsum / n, 0.5, 0.005);
  CHECK_NEAR(nsum / n, 0.0, 0.01);
  CHECK_NEAR(nsq / n, 1.0, 0.02);
  CHECK(embr_rng_below(&r, 0) == 0);
  CHECK(embr_rng_below(&r, 1) == 0);
}

static int calls;
static uint64_t last_done;
static int cancel_after(void *user, uint64_t done, uint64_t total, double rate, const char *d) {
  (void)total;
  (void)rate;
  (void)d;
  calls++;
  last_done = done;
  return done >= *(uint64_t *)user;
}

static void test_progress(void) {
  uint64_t stop_at = 5;
  embr_progress p = {cancel_after, &stop_at, 1e-9};
  embr_progress_state st;
  calls = 0;
  embr_progress_begin(&st, &p, 10);
  int canceled = 0;
  for (uint64_t i = 1; i <= 10 && !canceled; i++) canceled = embr_progress_update(&st, i, NULL, 0);
  CHECK(canceled);
  CHECK_EQ_INT(last_done, 5);
  CHECK(embr_progress_update(&st, 6, NULL, 1)); /* sticky */
  CHECK_EQ_INT(calls, 5);
  /* Throttling: a long interval suppresses non-forced updates after the first. */
  embr_progress slow = {cancel_after, &stop_at, 100.0};
  stop_at = 1000;
  calls = 0;
  embr_progress_begin(&st, &slow, 0);
  for (uint64_t i = 1; i <= 100; i++) embr_progress_update(&st, i, NULL, 0);
  CHECK_EQ_INT(calls, 0);
  embr_progress_update(&st, 100, NULL, 1);
  CHECK_EQ_INT(calls, 1);
  /* No callback: never cancels. */
  embr_progress_begin(&st, NULL, 3);
  CHECK(!embr_progress_update(&st, 3, NULL, 1));
}

static void test_cpu(void) {
  embr_cpu_level hw = embr_cpu_detect();
  CHECK(embr_cpu_active() <= hw);
  CHECK(strcmp(embr_cpu_name(EMBR_CPU_SCALAR), "scalar") == 0);
  CHECK(embr_threads_resolve(0) >= 1);
  CHECK_EQ_INT(embr_threads_resolve(3), 3);
}

/* Inputs are copies: truncating the file afterwards (what another process may do while embr reads)
 * leaves the bytes intact, where a mapping would raise SIGBUS on the next access. */
static void test_file_input_is_a_copy(void) {
  const char *p = th_path("copy.bin");
  unsigned char data[20000];
  for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i * 7 + 3);
  th_write_file(p, data, sizeof data);
  embr__filemap fm;
  REQUIRE(embr__filemap_open(&fm, p, EMBR__READ_ANY) == 0);
  CHECK_EQ_INT(fm.len, sizeof data);
  CHECK_EQ_INT(fm.mapped, 0);
  REQUIRE(truncate(p, 0) == 0);
  CHECK(memcmp(fm.data, data, sizeof data) == 0);
  embr__filemap_close(&fm);
  /* An empty file reads as no bytes. */
  REQUIRE(embr__filemap_open(&fm, p, EMBR__READ_ANY) == 0);
  CHECK(fm.data == NULL && fm.len == 0);
  embr__filemap_close(&fm);
}

static void test_file_input_caps(void) {
  const char *p = th_path("cap.bin");
  unsigned char data[100] = {1};
  th_write_file(p, data, sizeof data);
  embr__filemap fm;
  CHECK_EQ_INT(embr__filemap_open(&fm, p, 100), 0);
  embr__filemap_close(&fm);
  CHECK_EQ_INT(embr__filemap_open(&fm, p, 99), EMBR_EFORMAT);
  CHECK(strstr(embr_last_error(), p) != NULL);
  /* A device that never ends: refused at the cap, not read until memory runs out. */
  CHECK_EQ_INT(embr__filemap_open(&fm, "/dev/zero", (size_t)1 << 20), EMBR_EFORMAT);
  CHECK(strstr(embr_last_error(), "/dev/zero: more than 1048576 bytes") != NULL);
  CHECK(fm.data == NULL);
  CHECK_EQ_INT(embr__filemap_open(&fm, th_scratch(), EMBR__READ_ANY), EMBR_EIO);
  CHECK_EQ_INT(embr__filemap_open(&fm, th_path("missing"), EMBR__READ_ANY), EMBR_ENOTFOUND);
}

/* The small-file reader refuses a FIFO without waiting for a writer, and anything too large. */
static void test_file_read_small(void) {
  unsigned char buf[64];
  size_t len = 99;
  const char *p = th_path("small.bin");
  th_write_file(p, "0123456789", 10);
  CHECK_EQ_INT(embr__file_read_small(p, buf, sizeof buf, &len), 0);
  CHECK(len == 10 && memcmp(buf, "0123456789", 10) == 0);
  CHECK_EQ_INT(embr__file_read_small(p, buf, 9, &len), EMBR_EFORMAT);
  const char *fifo = th_path("fifo");
  REQUIRE(mkfifo(fifo, 0600) == 0);
  CHECK_EQ_INT(embr__file_read_small(fifo, buf, sizeof buf, &len), EMBR_EFORMAT);
  CHECK(strstr(embr_last_error(), "not a regular file") != NULL);
  CHECK_EQ_INT(embr__file_read_small("/dev/zero", buf, sizeof buf, &len), EMBR_EFORMAT);
  unlink(fifo);
}

static void test_realloc_strdup(void) {
  int64_t *a = embr_realloc(NULL, 0, 3 * sizeof(int64_t));
  REQUIRE(a != NULL);
  for (int i = 0; i < 3; i++) a[i] = 10 + i;
  int64_t *b = embr_realloc(a, 3 * sizeof(int64_t), 1000 * sizeof(int64_t));
  REQUIRE(b != NULL);
  CHECK(((uintptr_t)b & 63) == 0);
  CHECK(b[0] == 10 && b[1] == 11 && b[2] == 12);
  b = embr_realloc(b, 1000 * sizeof(int64_t), sizeof(int64_t)); /* shrinking keeps the prefix */
  REQUIRE(b != NULL);
  CHECK(b[0] == 10);
  embr_free(b);
  char *s = embr_strdup("héllo");
  CHECK(s && strcmp(s, "héllo") == 0);
  embr_free(s);
  s = embr_strndup("abcdef", 3);
  CHECK(s && strcmp(s, "abc") == 0);
  embr_free(s);
  s = embr_strndup("ab", 10);
  CHECK(s && strcmp(s, "ab") == 0);
  embr_free(s);
}

/* Every public function that releases something: each must accept NULL (free(NULL) semantics). */
static void free_matrix(void) { embr_matrix_free(NULL); }
static void free_topk(void) { embr_topk_free(NULL); }
static void free_index(void) { embr_index_free(NULL); }
static void close_collection(void) { CHECK_EQ_INT(embr_collection_close(NULL), 0); }
static void free_hits(void) { embr_collection_hits_free(NULL); }
static void close_corpus(void) { embr_corpus_close(NULL); }
static void free_vocab(void) { embr_vocab_free(NULL); }
static void free_wordvecs(void) { embr_wordvecs_free(NULL); }
static void free_analogy_eval(void) { embr_analogy_eval_free(NULL); }
static void free_affinities(void) { embr_affinities_free(NULL); }
static void free_image(void) { embr_image_free(NULL); }
static void free_dataset(void) { embr_dataset_free(NULL); }
static void free_loader(void) { embr_loader_free(NULL); }
static void free_model(void) { embr_model_free(NULL); }
static void free_pairs(void) { embr_pairs_free(NULL); }
static void free_lines(void) { embr_lines_free(NULL); }
static void free_captions(void) { embr_captions_free(NULL); }
static void free_bpe(void) { embr_bpe_free(NULL); }
static void free_any(void) { embr_free(NULL); }

static const struct {
  const char *name;
  void (*call)(void);
} releasers[] = {
    {"embr_free", free_any},
    {"embr_matrix_free", free_matrix},
    {"embr_topk_free", free_topk},
    {"embr_index_free", free_index},
    {"embr_collection_close", close_collection},
    {"embr_collection_hits_free", free_hits},
    {"embr_corpus_close", close_corpus},
    {"embr_vocab_free", free_vocab},
    {"embr_wordvecs_free", free_wordvecs},
    {"embr_analogy_eval_free", free_analogy_eval},
    {"embr_affinities_free", free_affinities},
    {"embr_image_free", free_image},
    {"embr_dataset_free", free_dataset},
    {"embr_loader_free", free_loader},
    {"embr_model_free", free_model},
    {"embr_pairs_free", free_pairs},
    {"embr_lines_free", free_lines},
    {"embr_captions_free", free_captions},
    {"embr_bpe_free", free_bpe},
};

static int listed(const char *name) {
  for (size_t i = 0; i < sizeof releasers / sizeof releasers[0]; i++)
    if (strcmp(releasers[i].name, name) == 0) return 1;
  return 0;
}

static void test_free_accepts_null(void) {
  for (size_t i = 0; i < sizeof releasers / sizeof releasers[0]; i++) releasers[i].call();
  /* The list above must cover every embr_*_free / embr_*_close the public headers declare, so a
   * new one cannot be added without this test calling it with NULL. */
  DIR *d = opendir(EMBR_SOURCE_DIR "/include/embr");
  REQUIRE(d != NULL);
  int found = 0;
  for (struct dirent *e; (e = readdir(d));) {
    size_t nl = strlen(e->d_name);
    if (nl < 3 || strcmp(e->d_name + nl - 2, ".h") != 0) continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/include/embr/%s", EMBR_SOURCE_DIR, e->d_name);
    FILE *f = fopen(path, "r");
    REQUIRE(f != NULL);
    char line[1024];
    while (fgets(line, sizeof line, f)) {
      char *p = strstr(line, "EMBR_API ");
      if (!p) continue;
      char *paren = strchr(p, '('), *name = paren;
      if (!paren) continue;
      while (name > p && (name[-1] == '_' || (name[-1] >= 'a' && name[-1] <= 'z'))) name--;
      *paren = 0; /* name: the identifier just before the parenthesis */
      size_t n = strlen(name);
      int releases = (n > 5 && strcmp(name + n - 5, "_free") == 0) ||
                     (n > 6 && strcmp(name + n - 6, "_close") == 0);
      if (!releases) continue;
      found++;
      CHECK_MSG(listed(name), "%s (%s) is not called with NULL here", name, e->d_name);
    }
    fclose(f);
  }
  closedir(d);
  CHECK(found >= 17);
}

int main(int argc, char **argv) {
  int rc = RUN_TESTS(argc, argv, test_status_strings, test_last_error, test_alloc_alignment,
                     test_size_arith, test_rng_reference, test_rng_determinism_and_streams,
                     test_rng_distributions, test_progress, test_cpu,
                     test_file_input_is_a_copy, test_file_input_caps, test_file_read_small,
                     test_realloc_strdup, test_free_accepts_null);
  return rc;
}

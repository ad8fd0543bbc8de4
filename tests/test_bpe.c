/* The CLIP tokenizer (include/embr/text.h, byte-level BPE) against OpenAI's own: every string of
 * tests/ref/clip_bpe.jsonl (written by scripts/make_bpe_ref.py from CLIP's simple_tokenizer) must
 * give the same ids at context 77 and the same untruncated length, with CLIP's merges file from
 * ../shared/data/clip (skipped when it is absent). Without the file: hand-computed cases on the
 * byte tokenizer and on tiny merges files (rank order, one left-to-right pass per merge, overlaps,
 * truncation), hostile merges files, and encodes from several threads at once. */
#include "embr/text.h"
#include "harness.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdint.h>
#include <zlib.h>

#define CLIP_BPE EMBR_SOURCE_DIR "/../shared/data/clip/bpe_simple_vocab_16e6.txt.gz"
#define CLIP_REF EMBR_SOURCE_DIR "/tests/ref/clip_bpe.jsonl"

/* ---- helpers ------------------------------------------------------------------------------------- */

static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap + 1);
  size_t k;
  while (buf && (k = fread(buf + n, 1, cap - n, f)) > 0) {
    n += k;
    if (n == cap) {
      char *nb = realloc(buf, (cap *= 2) + 1);
      if (!nb) {
        free(buf);
        buf = NULL;
      }
      buf = nb;
    }
  }
  fclose(f);
  if (buf) buf[n] = '\0';
  *len = n;
  return buf;
}

/* gzip of len bytes (malloc'd, *out_len bytes). */
static unsigned char *gz(const void *data, size_t len, size_t *out_len) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return NULL;
  size_t cap = deflateBound(&z, (uLong)len) + 64;
  unsigned char *out = malloc(cap);
  z.next_in = (unsigned char *)(uintptr_t)data;
  z.avail_in = (uInt)len;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  int rc = deflate(&z, Z_FINISH);
  *out_len = cap - z.avail_out;
  deflateEnd(&z);
  if (rc != Z_STREAM_END) {
    free(out);
    return NULL;
  }
  return out;
}

static embr_bpe *load_text(const char *text, int n_merges) {
  embr_bpe *b = NULL;
  int rc = embr_bpe_load_mem(text, strlen(text), "tiny", n_merges, &b);
  if (rc) fprintf(stderr, "  load failed: %s\n", embr_last_error());
  return b;
}

/* Encodes at context 77 and compares with want[0..nw) (the rest zero) and the length n. */
static int encode_is(const embr_bpe *b, const char *text, int context, const int32_t *want, int nw, int n) {
  int32_t ids[128];
  int got_n = -1;
  if (embr_bpe_encode(b, text, context, ids, &got_n) != 0) return 0;
  int ok = got_n == n;
  for (int i = 0; i < context; i++) ok &= ids[i] == (i < nw ? want[i] : 0);
  if (!ok) {
    fprintf(stderr, "  \"%s\": n=%d (want %d):", text, got_n, n);
    for (int i = 0; i < context && i < 12; i++) fprintf(stderr, " %d", (int)ids[i]);
    fputc('\n', stderr);
  }
  return ok;
}

/* ---- the byte tokenizer: ids computed by hand from CLIP's byte order -----------------------------
 * Entry i of the byte alphabet is '!'..'~' (i = b - 33), then U+00A1..U+00AC (94 + b - 161), then
 * U+00AE..U+00FF (106 + b - 174), then the 68 other bytes in order; +256 for a word's last byte. */

static void test_bytes_tokenizer(void) {
  embr_bpe *b;
  REQUIRE(embr_bpe_create_bytes(&b) == 0);
  CHECK_EQ_INT(embr_bpe_vocab_size(b), 514);
  CHECK_EQ_INT(embr_bpe_sot(b), 512);
  CHECK_EQ_INT(embr_bpe_eot(b), 513);
  CHECK_EQ_INT(embr_bpe_n_merges(b), 0);
  CHECK(strcmp(embr_bpe_token(b, 0), "!") == 0);
  CHECK(strcmp(embr_bpe_token(b, 256), "!</w>") == 0);
  CHECK(strcmp(embr_bpe_token(b, 188), "\xc4\x80") == 0); /* byte 0 -> U+0100 */
  CHECK(strcmp(embr_bpe_token(b, 512), "<|startoftext|>") == 0);
  CHECK(embr_bpe_token(b, 514) == NULL && embr_bpe_token(b, -1) == NULL);
  /* "Hi, ab!" -> "hi, ab!" -> hi | , | ab | ! */
  const int32_t hi[] = {512, 104 - 33, 256 + 105 - 33, 256 + 44 - 33, 97 - 33, 256 + 98 - 33, 256 + 0, 513};
  CHECK(encode_is(b, "Hi, ab!", 77, hi, 8, 8));
  /* "é" is C3 A9: 106 + 195 - 174 = 127, then 256 + 94 + 169 - 161 = 358 */
  const int32_t e[] = {512, 127, 358, 513};
  CHECK(encode_is(b, "\xc3\xa9", 77, e, 4, 4));
  /* U+00AD (C2 AD): 106 + 194 - 174 = 126, then 0xAD is the 68th other byte: 256 + 188 + 67 */
  const int32_t shy[] = {512, 126, 511, 513};
  CHECK(encode_is(b, "\xc2\xad", 77, shy, 4, 4));
  /* truncation: sot a b eot cut to 3 ends with eot; context 1 is [eot] */
  const int32_t ab3[] = {512, 64, 513};
  CHECK(encode_is(b, "ab", 3, ab3, 3, 4));
  const int32_t ab1[] = {513};
  CHECK(encode_is(b, "ab", 1, ab1, 1, 4));
  const int32_t empty[] = {512, 513};
  CHECK(encode_is(b, "  \t\n ", 77, empty, 2, 2));
  /* the literal special tokens */
  const int32_t sp[] = {512, 513, 256 + 64, 512, 513};
  CHECK(encode_is(b, "<|endoftext|> a <|startoftext|>", 77, sp, 5, 5));
  int32_t ids[4];
  CHECK(embr_bpe_encode(b, "x", 0, ids, NULL) == EMBR_EINVAL);
  /* decode undoes the byte mapping and turns "</w>" into spaces */
  int32_t *t;
  size_t n;
  REQUIRE(embr_bpe_tokenize(b, "Café au lait", &t, &n) == 0);
  CHECK_EQ_INT(n, 11);
  char *s;
  REQUIRE(embr_bpe_decode(b, t, n, &s) == 0);
  CHECK(strcmp(s, "café au lait ") == 0);
  embr_free(s);
  embr_free(t);
  int32_t bad = 514;
  CHECK(embr_bpe_decode(b, &bad, 1, &s) == EMBR_EINVAL);
  embr_bpe_free(b);
  embr_bpe_free(NULL);
}

/* ---- tiny merges files ----------------------------------------------------------------------------- */

static void test_tiny_merges(void) {
  /* merge 0: h + i</w> -> "hi</w>" (512); merge 1: a + b -> "ab" (513); sot 514, eot 515 */
  embr_bpe *b = load_text("#version: 0.2\nh i</w>\na b\n", 0 + 2);
  REQUIRE(b);
  CHECK_EQ_INT(embr_bpe_vocab_size(b), 516);
  CHECK(strcmp(embr_bpe_token(b, 512), "hi</w>") == 0);
  const int32_t hi[] = {514, 512, 515};
  CHECK(encode_is(b, "HI", 77, hi, 3, 3));
  /* "ab" ends in b</w>: (a, b) does not apply; "abab": only the first pair is (a, b) */
  const int32_t ab[] = {514, 64, 256 + 65, 515};
  CHECK(encode_is(b, "ab", 77, ab, 4, 4));
  const int32_t abab[] = {514, 513, 64, 256 + 65, 515};
  CHECK(encode_is(b, "abab", 77, abab, 5, 5));
  embr_bpe_free(b);

  /* overlapping occurrences: one left-to-right pass per merge */
  b = load_text("#version: 0.2\na a\n", 0 + 1);
  REQUIRE(b);
  const int32_t a3[] = {513, 512, 256 + 64, 514};
  CHECK(encode_is(b, "aaa", 77, a3, 4, 4));
  const int32_t a4[] = {513, 512, 64, 256 + 64, 514};
  CHECK(encode_is(b, "aaaa", 77, a4, 5, 5));
  const int32_t a5[] = {513, 512, 512, 256 + 64, 514};
  CHECK(encode_is(b, "aaaaa", 77, a5, 5, 5));
  embr_bpe_free(b);

  /* rank order decides, not position: (b, c) before (a, b) gives a | bc</w> */
  b = load_text("#version: 0.2\nb c</w>\na b\nab c</w>\n", 3);
  REQUIRE(b);
  const int32_t abc[] = {515, 64, 512, 516};
  CHECK(encode_is(b, "abc", 77, abc, 4, 4));
  embr_bpe_free(b);
  /* ... and a merge made after a lower-ranked one can unlock it: a+b first, then ab+c</w> */
  b = load_text("#version: 0.2\na b\nab c</w>\n", 2);
  REQUIRE(b);
  const int32_t abc2[] = {514, 513, 515};
  CHECK(encode_is(b, "abc", 77, abc2, 3, 3));
  embr_bpe_free(b);

  /* fewer merges than the file holds; gzip and plain give the same */
  const char *txt = "#version: 0.2\na b\nab c</w>\n";
  size_t gl;
  unsigned char *g = gz(txt, strlen(txt), &gl);
  REQUIRE(g);
  REQUIRE(embr_bpe_load_mem(g, gl, "tiny.gz", 1, &b) == 0);
  CHECK_EQ_INT(embr_bpe_vocab_size(b), 515);
  const int32_t abc1[] = {513, 512, 256 + 66, 514};
  CHECK(encode_is(b, "abc", 77, abc1, 4, 4));
  embr_bpe_free(b);
  free(g);
}

/* ---- hostile files ------------------------------------------------------------------------------- */

static void expect_fail(const void *data, size_t len, int n_merges, int status, const char *in_msg) {
  embr_bpe *b = (embr_bpe *)(uintptr_t)1;
  int rc = embr_bpe_load_mem(data, len, "m.txt", n_merges, &b);
  CHECK_MSG(rc == status, "got %d (%s), want %d", rc, embr_last_error(), status);
  CHECK(b == NULL);
  const char *msg = embr_last_error();
  CHECK_MSG(strncmp(msg, "m.txt: ", 7) == 0, "%s", msg);
  if (in_msg) CHECK_MSG(strstr(msg, in_msg) != NULL, "\"%s\" lacks \"%s\"", msg, in_msg);
}

static void test_hostile_files(void) {
  expect_fail("", 0, 0, EMBR_EFORMAT, "header");
  expect_fail("a b\nc d\n", 8, 1, EMBR_EFORMAT, "line 1");
  expect_fail("#version: 0.2\n", 14, 0, EMBR_EFORMAT, "48894");
  expect_fail("#version: 0.2\na b\nc d\n", 22, 3, EMBR_EINVAL, "holds 2");
  expect_fail("#version: 0.2\na b\nc d\n", 22, -1, EMBR_EINVAL, NULL);
  expect_fail("#version: 0.2\na b\nc d e\n", 24, 2, EMBR_EFORMAT, "line 3");
  expect_fail("#version: 0.2\na b\nc\n", 20, 2, EMBR_EFORMAT, "line 3");
  expect_fail("#version: 0.2\na b\n\nc d\n", 23, 3, EMBR_EFORMAT, "line 3");
  expect_fail("#version: 0.2\na \xff\n", 18, 1, EMBR_EFORMAT, "line 2");
  /* lines past n_merges are not parsed: the first merge of a bad file still loads */
  embr_bpe *b;
  CHECK(embr_bpe_load_mem("#version: 0.2\na b\nc d e\n", 24, "m.txt", 1, &b) == 0);
  embr_bpe_free(b);
  /* gzip: truncated, corrupt, trailing garbage, a bomb */
  const char *txt = "#version: 0.2\na b\nab c</w>\nx y\n";
  size_t gl;
  unsigned char *g = gz(txt, strlen(txt), &gl);
  REQUIRE(g);
  for (size_t cut = 2; cut < gl; cut += 3) expect_fail(g, cut, 1, EMBR_EFORMAT, "gzip");
  unsigned char *bad = malloc(gl + 4);
  memcpy(bad, g, gl);
  bad[12] ^= 0x55;
  expect_fail(bad, gl, 1, EMBR_EFORMAT, NULL);
  memcpy(bad, g, gl);
  memcpy(bad + gl, "junk", 4);
  expect_fail(bad, gl + 4, 1, EMBR_EFORMAT, "after the gzip");
  free(bad);
  free(g);
  size_t big = (size_t)EMBR_BPE_MAX_BYTES + 1024;
  char *zeros = calloc(big, 1);
  memcpy(zeros, "#version: 0.2\n", 14);
  g = gz(zeros, big, &gl);
  free(zeros);
  REQUIRE(g);
  expect_fail(g, gl, 1, EMBR_EFORMAT, "inflates to more than");
  free(g);
  /* a file on disk that does not exist, and a NULL out */
  CHECK(embr_bpe_load(th_path("missing.txt.gz"), 0, &b) == EMBR_ENOTFOUND);
  CHECK(embr_bpe_load_mem("x", 1, "m", 0, NULL) == EMBR_EINVAL);
}

/* ---- the reference -------------------------------------------------------------------------------- */

typedef struct ref_case {
  char *text;
  int32_t ids[EMBR_BPE_CLIP_CONTEXT];
  int n, mojibake;
} ref_case;

static ref_case *read_ref(int *count) {
  size_t len;
  char *all = read_all(CLIP_REF, &len);
  if (!all) return NULL;
  int cap = 1024, n = 0;
  ref_case *c = calloc((size_t)cap, sizeof *c);
  char *save = NULL;
  for (char *line = strtok_r(all, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    cJSON *j = cJSON_Parse(line);
    if (!j) continue;
    if (n == cap) c = realloc(c, (size_t)(cap *= 2) * sizeof *c);
    memset(&c[n], 0, sizeof c[n]);
    c[n].text = strdup(cJSON_GetObjectItem(j, "text")->valuestring);
    cJSON *ids = cJSON_GetObjectItem(j, "ids");
    for (int i = 0; i < cJSON_GetArraySize(ids) && i < EMBR_BPE_CLIP_CONTEXT; i++)
      c[n].ids[i] = (int32_t)cJSON_GetArrayItem(ids, i)->valueint;
    c[n].n = cJSON_GetObjectItem(j, "n")->valueint;
    c[n].mojibake = cJSON_GetObjectItem(j, "mojibake")->valueint;
    n++;
    cJSON_Delete(j);
  }
  free(all);
  *count = n;
  return c;
}

static void free_ref(ref_case *c, int n) {
  for (int i = 0; i < n; i++) free(c[i].text);
  free(c);
}

static void print_escaped(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    fprintf(stderr, *p < 0x20 || *p >= 0x7f ? "\\x%02x" : "%c", *p);
}

static void test_clip_reference(void) {
  if (access(CLIP_BPE, R_OK) != 0)
    SKIP("CLIP's merges file %s is not there (it lives in the shared data folder)", CLIP_BPE);
  embr_bpe *b;
  REQUIRE(embr_bpe_load(CLIP_BPE, 0, &b) == 0);
  CHECK_EQ_INT(embr_bpe_vocab_size(b), EMBR_BPE_CLIP_VOCAB);
  CHECK_EQ_INT(embr_bpe_sot(b), 49406);
  CHECK_EQ_INT(embr_bpe_eot(b), 49407);
  CHECK(strcmp(embr_bpe_token(b, 512), "in") == 0); /* the first merge, "i n" */
  int count = 0;
  ref_case *c = read_ref(&count);
  REQUIRE(c && count >= 500);
  int failed = 0, moji = 0, moji_same = 0;
  for (int k = 0; k < count; k++) {
    int32_t ids[EMBR_BPE_CLIP_CONTEXT];
    int n = -1;
    CHECK(embr_bpe_encode(b, c[k].text, EMBR_BPE_CLIP_CONTEXT, ids, &n) == 0);
    int same = n == c[k].n && memcmp(ids, c[k].ids, sizeof ids) == 0;
    if (c[k].mojibake) { /* ftfy's mojibake repair is not reproduced (text.h) */
      moji++;
      moji_same += same;
      continue;
    }
    if (!same) {
      failed++;
      fprintf(stderr, "  line %d \"", k + 1);
      print_escaped(c[k].text);
      fprintf(stderr, "\": n %d (want %d); first difference", n, c[k].n);
      for (int i = 0; i < EMBR_BPE_CLIP_CONTEXT; i++)
        if (ids[i] != c[k].ids[i]) {
          fprintf(stderr, " at %d: %d (want %d)", i, (int)ids[i], (int)c[k].ids[i]);
          break;
        }
      fputc('\n', stderr);
    }
  }
  CHECK_MSG(failed == 0, "%d of %d strings differ from CLIP's tokenizer", failed, count - moji);
  fprintf(stderr, "  %d strings match CLIP's ids; %d of %d that ftfy repairs as mojibake match too\n",
          count - moji - failed, moji_same, moji);
  /* decode gives the cleaned text back, a space after each word */
  int32_t *t;
  size_t n;
  REQUIRE(embr_bpe_tokenize(b, "A photo of a CAT, sitting.", &t, &n) == 0);
  char *s;
  REQUIRE(embr_bpe_decode(b, t, n, &s) == 0);
  CHECK_MSG(strcmp(s, "a photo of a cat , sitting . ") == 0, "%s", s);
  embr_free(s);
  embr_free(t);
  free_ref(c, count);
  embr_bpe_free(b);
}

/* The merges file uncompressed gives the same tokenizer as the .gz. */
static void test_plain_file(void) {
  if (access(CLIP_BPE, R_OK) != 0) SKIP("CLIP's merges file %s is not there", CLIP_BPE);
  gzFile f = gzopen(CLIP_BPE, "rb");
  REQUIRE(f);
  size_t cap = 8 << 20, n = 0;
  char *buf = malloc(cap);
  int k;
  while ((k = gzread(f, buf + n, (unsigned)(cap - n))) > 0) n += (size_t)k;
  gzclose(f);
  embr_bpe *a, *b;
  REQUIRE(embr_bpe_load_mem(buf, n, "plain", 0, &a) == 0);
  free(buf);
  REQUIRE(embr_bpe_load(CLIP_BPE, 1000, &b) == 0);
  CHECK_EQ_INT(embr_bpe_vocab_size(b), 512 + 1000 + 2);
  embr_bpe *c;
  REQUIRE(embr_bpe_load(CLIP_BPE, 0, &c) == 0);
  const char *texts[] = {"a photo of a dog", "Ünïcödé straße", "😀 emoji 👍🏽"};
  for (int i = 0; i < 3; i++) {
    int32_t x[77], y[77];
    CHECK(embr_bpe_encode(a, texts[i], 77, x, NULL) == 0);
    CHECK(embr_bpe_encode(c, texts[i], 77, y, NULL) == 0);
    CHECK(memcmp(x, y, sizeof x) == 0);
  }
  embr_bpe_free(c);
  embr_bpe_free(a);
  embr_bpe_free(b);
}

/* ---- threads -------------------------------------------------------------------------------------- */

typedef struct thread_job {
  const embr_bpe *b;
  const char *const *texts;
  int n;
  const int32_t *want; /* n x 77 */
  int bad;
} thread_job;

static void *encode_all(void *arg) {
  thread_job *j = arg;
  for (int rep = 0; rep < 20; rep++)
    for (int i = 0; i < j->n; i++) {
      int32_t ids[77];
      if (embr_bpe_encode(j->b, j->texts[i], 77, ids, NULL) != 0 || memcmp(ids, j->want + 77 * i, sizeof ids))
        j->bad++;
    }
  return NULL;
}

static void test_concurrent_encodes(void) {
  embr_bpe *b;
  int real = access(CLIP_BPE, R_OK) == 0;
  REQUIRE((real ? embr_bpe_load(CLIP_BPE, 0, &b) : embr_bpe_create_bytes(&b)) == 0);
  static const char *const texts[] = {"a photo of a cat", "Two dogs playing in the snow!", "東京タワーの夜景",
                                      "It's &amp; isn't “quoted”", "😀👍🏽 emoji", "ΟΔΟΣ İstanbul ﬁne"};
  const int n = (int)(sizeof texts / sizeof texts[0]);
  int32_t want[6 * 77];
  for (int i = 0; i < n; i++) CHECK(embr_bpe_encode(b, texts[i], 77, want + 77 * i, NULL) == 0);
  pthread_t th[4];
  thread_job jobs[4];
  for (int t = 0; t < 4; t++) {
    jobs[t] = (thread_job){b, texts, n, want, 0};
    CHECK(pthread_create(&th[t], NULL, encode_all, &jobs[t]) == 0);
  }
  for (int t = 0; t < 4; t++) {
    pthread_join(th[t], NULL);
    CHECK_EQ_INT(jobs[t].bad, 0);
  }
  embr_bpe_free(b);
}

int main(int argc, char **argv) {
  return RUN_TESTS(argc, argv, test_bytes_tokenizer, test_tiny_merges, test_hostile_files, test_clip_reference,
                   test_plain_file, test_concurrent_encodes);
}

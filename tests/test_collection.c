/* Collections: round trips against exact search, metadata, filters checked against conditions
 * evaluated here on the metadata, all-or-nothing batches, reopening, damaged / missing / stale
 * index checkpoints, deletes and compaction, readers and the writer lock, filter syntax errors. */
#include "harness.h"

#include "collection/filter.h"
#include "embr/collection.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <sqlite3.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------------------------------- */

static const char *tmp_root; /* the current test's directory */

/* A fresh scratch directory per test (collection dirs are created inside it). */
static const char *scratch(void) { return tmp_root = th_fresh_dir("coll"); }

static float *random_rows(int64_t n, int64_t dim, uint64_t seed) {
  embr_rng r;
  embr_rng_seed(&r, seed);
  float *x = malloc(sizeof(float) * (size_t)(n * dim));
  for (int64_t i = 0; i < n * dim; i++) x[i] = (float)embr_rng_normal(&r);
  return x;
}

/* ids "id-<i>" for i in [from, from + n) */
static char **make_ids(int64_t from, int64_t n) {
  char **ids = malloc(sizeof(char *) * (size_t)n);
  for (int64_t i = 0; i < n; i++) {
    ids[i] = malloc(32);
    snprintf(ids[i], 32, "id-%lld", (long long)(from + i));
  }
  return ids;
}

static void free_strs(char **s, int64_t n) {
  if (!s) return;
  for (int64_t i = 0; i < n; i++) free(s[i]);
  free(s);
}

static int64_t id_number(const char *ext) { return ext ? strtoll(ext + 3, NULL, 10) : -1; }

static int64_t count_of(embr_collection *c) {
  embr_collection_stats s;
  return embr_collection_info(c, &s) ? -1 : s.count;
}

static embr_index_origin origin_of(embr_collection *c, char *note, size_t cap) {
  embr_collection_stats s;
  embr_collection_info(c, &s);
  if (note) snprintf(note, cap, "%s", s.index_note);
  return s.index_origin;
}

/* A collection in `dir` holding rows x[0..n) as "id-0".. added in batches of `batch`. */
static embr_collection *make_collection(const char *dir, const char *spec, embr_metric m, const float *x, int64_t n,
                                        int64_t dim, int64_t batch, char **meta) {
  embr_collection *c = NULL;
  int rc = embr_collection_create(&c, dir, dim, m, spec);
  if (rc) {
    fprintf(stderr, "  create: %s\n", embr_last_error());
    return NULL;
  }
  char **ids = make_ids(0, n);
  for (int64_t i = 0; i < n && !rc; i += batch) {
    int64_t b = n - i < batch ? n - i : batch;
    rc = embr_collection_add(c, x + i * dim, b, dim, dim, (const char *const *)ids + i,
                             meta ? (const char *const *)meta + i : NULL);
    if (rc) fprintf(stderr, "  add: %s\n", embr_last_error());
  }
  free_strs(ids, n);
  if (rc) {
    embr_collection_close(c);
    return NULL;
  }
  return c;
}

/* Exact k-NN of q against x; results compared with a collection search (ids "id-<row>"). */
static void check_exact(embr_collection *c, embr_metric m, const float *x, int64_t n, const float *q, int64_t nq,
                        int64_t dim, int k) {
  float *dist = malloc(sizeof(float) * (size_t)(nq * k));
  int64_t *ids = malloc(sizeof(int64_t) * (size_t)(nq * k));
  embr_knn_params kp = embr_knn_params_default();
  REQUIRE(embr_knn(m, x, n, dim, q, nq, dim, dim, k, dist, ids, &kp) == 0);
  embr_collection_hits h;
  int rc = embr_collection_search(c, q, nq, dim, dim, k, NULL, NULL, &h);
  CHECK_MSG(rc == 0, "%s", embr_last_error());
  int bad = 0;
  for (int64_t i = 0; rc == 0 && i < nq * k; i++) {
    if (id_number(h.ext_ids[i]) != ids[i] && bad++ < 3)
      CHECK_MSG(0, "hit %lld: %s vs exact row %lld", (long long)i, h.ext_ids[i] ? h.ext_ids[i] : "(none)", (long long)ids[i]);
    if (ids[i] >= 0) CHECK_NEAR(h.dist[i], dist[i], 1e-4 * (1 + fabs(dist[i])));
  }
  embr_collection_hits_free(&h);
  free(dist);
  free(ids);
}

/* ---- create / open errors ---------------------------------------------------------------------- */

static void set_user_version(const char *db_path, int v) {
  sqlite3 *db;
  char sql[64];
  snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v);
  CHECK(sqlite3_open(db_path, &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close(db);
}

static void test_create_open_errors(void) {
  const char *t = scratch();
  embr_collection *c = NULL;
  CHECK_EQ_INT(embr_collection_open(&c, th_join(t, "nope"), 0), EMBR_ENOTFOUND);
  CHECK(c == NULL);
  CHECK_EQ_INT(embr_collection_open(&c, t, 0), EMBR_ENOTFOUND);
  CHECK(strstr(embr_last_error(), "not an embr collection") != NULL);
  const char *d = th_join(t, "c");
  CHECK_EQ_INT(embr_collection_create(NULL, d, 8, EMBR_METRIC_L2, "bogus:x=1"), EMBR_EINVAL);
  CHECK(access(d, F_OK) != 0 || access(th_join(d, "collection.db"), F_OK) != 0);
  CHECK_EQ_INT(embr_collection_create(NULL, d, 0, EMBR_METRIC_L2, "flat"), EMBR_EINVAL);
  REQUIRE(embr_collection_create(NULL, d, 8, EMBR_METRIC_L2, "flat") == 0);
  CHECK_EQ_INT(embr_collection_create(NULL, d, 8, EMBR_METRIC_L2, "flat"), EMBR_EINVAL);
  CHECK(strstr(embr_last_error(), "already holds a collection") != NULL);
  REQUIRE(embr_collection_open(&c, d, 0) == 0);
  embr_collection_stats s;
  REQUIRE(embr_collection_info(c, &s) == 0);
  CHECK_EQ_INT(s.dim, 8);
  CHECK(!strcmp(s.index_spec, "flat"));
  CHECK_EQ_INT(s.count, 0);
  CHECK(s.read_only);
  embr_collection_close(c);
  /* newer format */
  set_user_version(th_join(d, "collection.db"), 2);
  CHECK_EQ_INT(embr_collection_open(&c, d, 0), EMBR_EUNSUPPORTED);
  CHECK(strstr(embr_last_error(), "newer") != NULL);
  /* another program's database, and a file that is no database at all */
  const char *o = th_join(t, "other");
  mkdir(o, 0755);
  sqlite3 *db;
  CHECK(sqlite3_open(th_join(o, "collection.db"), &db) == SQLITE_OK);
  sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL);
  sqlite3_close(db);
  CHECK_EQ_INT(embr_collection_open(&c, o, 0), EMBR_EFORMAT);
  CHECK(strstr(embr_last_error(), "another program") != NULL);
  FILE *f = fopen(th_join(o, "collection.db"), "wb");
  fputs("this is not a database, just some text that is long enough to look like a header.......", f);
  fclose(f);
  CHECK_EQ_INT(embr_collection_open(&c, o, 0), EMBR_EFORMAT);
}

/* ---- search against exact k-NN ------------------------------------------------------------------- */

static void test_flat_matches_knn(void) {
  const int64_t n = 700, dim = 19, nq = 25;
  float *x = random_rows(n, dim, 1), *q = random_rows(nq, dim, 2);
  embr_metric ms[] = {EMBR_METRIC_L2, EMBR_METRIC_IP, EMBR_METRIC_COSINE, EMBR_METRIC_L1};
  for (int i = 0; i < 4; i++) {
    const char *d = th_join(scratch(), "c");
    embr_collection *c = make_collection(d, "flat", ms[i], x, n, dim, 250, NULL);
    REQUIRE(c != NULL);
    check_exact(c, ms[i], x, n, q, nq, dim, 10);
    /* k above the size: padded with NULL ids */
    embr_collection_hits h;
    REQUIRE(embr_collection_search(c, q, 1, dim, dim, (int)n + 5, NULL, NULL, &h) == 0);
    CHECK(h.ext_ids[n - 1] != NULL && h.ext_ids[n] == NULL && h.ids[n + 4] == -1);
    embr_collection_hits_free(&h);
    CHECK_EQ_INT(embr_collection_search(c, q, 1, dim + 1, dim + 1, 3, NULL, NULL, &h), EMBR_EDIM);
    CHECK_EQ_INT(embr_collection_close(c), 0);
  }
  free(x);
  free(q);
}

static void test_hnsw_recall(void) {
  const int64_t n = 3000, dim = 24, nq = 60;
  const int k = 10;
  float *x = random_rows(n, dim, 3), *q = random_rows(nq, dim, 4);
  embr_collection *c = make_collection(th_join(scratch(), "c"), "hnsw:M=16,efc=100", EMBR_METRIC_L2, x, n, dim, 1000, NULL);
  REQUIRE(c != NULL);
  float *dist = malloc(sizeof(float) * (size_t)(nq * k));
  int64_t *ids = malloc(sizeof(int64_t) * (size_t)(nq * k));
  embr_knn_params kp = embr_knn_params_default();
  REQUIRE(embr_knn(EMBR_METRIC_L2, x, n, dim, q, nq, dim, dim, k, dist, ids, &kp) == 0);
  embr_collection_hits h;
  embr_collection_search_params p = embr_collection_search_params_default();
  p.ef = 128;
  REQUIRE(embr_collection_search(c, q, nq, dim, dim, k, NULL, &p, &h) == 0);
  int64_t hit = 0;
  for (int64_t qi = 0; qi < nq; qi++)
    for (int a = 0; a < k; a++)
      for (int b = 0; b < k; b++) hit += id_number(h.ext_ids[qi * k + a]) == ids[qi * k + b];
  double recall = (double)hit / (double)(nq * k);
  CHECK_MSG(recall >= 0.95, "recall@10 = %.3f", recall);
  embr_collection_hits_free(&h);
  embr_collection_close(c);
  free(dist);
  free(ids);
  free(x);
  free(q);
}

/* ---- get, metadata ------------------------------------------------------------------------------ */

static void test_get_roundtrip(void) {
  const int64_t dim = 5;
  float x[3 * 5] = {-0.0f, 1e-40f, 1e15f, -1.5f, 0.1f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  const char *ids[] = {"a", "b b", "ünïcode/ид"};
  const char *meta[] = {"{\"k\": \"v\", \"n\": [1, 2, {\"x\": null}]}", NULL, "{}"};
  embr_collection *c = NULL;
  REQUIRE(embr_collection_create(&c, th_join(scratch(), "c"), dim, EMBR_METRIC_L2, "hnsw") == 0);
  REQUIRE(embr_collection_add(c, x, 3, dim, dim, ids, meta) == 0);
  for (int i = 0; i < 3; i++) {
    float v[5];
    char *m = (char *)"sentinel";
    REQUIRE(embr_collection_get(c, ids[i], v, &m) == 0);
    CHECK(memcmp(v, x + i * dim, sizeof v) == 0);
    CHECK(meta[i] ? m && !strcmp(m, meta[i]) : m == NULL);
    embr_free(m);
  }
  CHECK(embr_collection_get(c, "a", NULL, NULL) == 0);
  CHECK_EQ_INT(embr_collection_get(c, "zz", NULL, NULL), EMBR_ENOTFOUND);
  CHECK(strstr(embr_last_error(), "'zz'") != NULL);
  /* the metadata comes back with the hits too */
  embr_collection_hits h;
  embr_collection_search_params p = embr_collection_search_params_default();
  p.with_metadata = 1;
  REQUIRE(embr_collection_search(c, x, 1, dim, dim, 3, NULL, &p, &h) == 0);
  CHECK(!strcmp(h.ext_ids[0], "a") && !strcmp(h.metadata[0], meta[0]));
  CHECK_EQ_INT(h.dist[0], 0);
  for (int j = 0; j < 3; j++)
    if (h.ext_ids[j] && !strcmp(h.ext_ids[j], "b b")) CHECK(h.metadata[j] == NULL);
  embr_collection_hits_free(&h);
  embr_collection_close(c);
}

/* ---- validation: a bad batch changes nothing ------------------------------------------------- */

static void test_batch_all_or_nothing(void) {
  const int64_t dim = 4;
  float x[4 * 4] = {0};
  for (int i = 0; i < 16; i++) x[i] = (float)i;
  embr_collection *c = NULL;
  const char *d = th_join(scratch(), "c");
  REQUIRE(embr_collection_create(&c, d, dim, EMBR_METRIC_L2, "flat") == 0);
  const char *first[] = {"keep"};
  REQUIRE(embr_collection_add(c, x, 1, dim, dim, first, NULL) == 0);
  const char *ids[] = {"n0", "n1", "n2", "n3"};
  const char *okm[] = {"{\"a\":1}", NULL, "{}", "{\"b\":[1]}"};
  struct {
    const char *what;
    int64_t dim;
    const char *const *ids;
    const char *const *meta;
    int nan_at;
    int want;
    const char *msg;
  } cases[] = {
      {"wrong dimension", 3, ids, okm, -1, EMBR_EDIM, "dimension 3"},
      {"NaN", 4, ids, okm, 9, EMBR_EVALUE, "item 2"},
      {"duplicate in batch", 4, (const char *[]){"n0", "n1", "n0", "n3"}, okm, -1, EMBR_EINVAL, "appears twice"},
      {"already present", 4, (const char *[]){"n0", "n1", "keep", "n3"}, okm, -1, EMBR_EINVAL, "already in the collection"},
      {"bad JSON", 4, ids, (const char *[]){"{}", "{\"a\":", NULL, NULL}, -1, EMBR_EINVAL, "not valid JSON"},
      {"JSON array", 4, ids, (const char *[]){"{}", "{}", "[1,2]", NULL}, -1, EMBR_EINVAL, "got an array"},
      {"trailing garbage", 4, ids, (const char *[]){"{} x", NULL, NULL, NULL}, -1, EMBR_EINVAL, "not valid JSON"},
      {"empty id", 4, (const char *[]){"n0", "", "n2", "n3"}, okm, -1, EMBR_EINVAL, "empty id"},
      {"control character", 4, (const char *[]){"n0", "n1", "a\nb", "n3"}, okm, -1, EMBR_EINVAL, "control character"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    float y[16];
    memcpy(y, x, sizeof y);
    if (cases[i].nan_at >= 0) y[cases[i].nan_at] = NAN;
    int rc = embr_collection_add(c, y, 4, cases[i].dim, 4, cases[i].ids, cases[i].meta);
    CHECK_MSG(rc == cases[i].want, "%s: got %d (%s)", cases[i].what, rc, embr_last_error());
    CHECK_MSG(strstr(embr_last_error(), cases[i].msg) != NULL, "%s: message '%s'", cases[i].what, embr_last_error());
    CHECK_EQ_INT(count_of(c), 1);
    CHECK_EQ_INT(embr_collection_get(c, "n3", NULL, NULL), EMBR_ENOTFOUND);
  }
  CHECK(embr_collection_add(c, x, 4, dim, dim, ids, okm) == 0);
  CHECK_EQ_INT(count_of(c), 5);
  embr_collection_close(c);
  /* read-only handles refuse changes */
  REQUIRE(embr_collection_open(&c, d, EMBR_COLLECTION_RDONLY) == 0);
  CHECK_EQ_INT(embr_collection_add(c, x, 1, dim, dim, (const char *[]){"z"}, NULL), EMBR_EUNSUPPORTED);
  CHECK_EQ_INT(embr_collection_delete(c, (const char *[]){"keep"}, 1, NULL), EMBR_EUNSUPPORTED);
  CHECK_EQ_INT(count_of(c), 5);
  embr_collection_close(c);
}

/* ---- filters: each result set against the condition evaluated here --------------------------- */

static const char *const GENRES[] = {"jazz", "rock", "pop", "Jazz"};
static const char *const NAMES[] = {"O'Brien", "x\" OR 1=1 --", "'; DROP TABLE items; --", "plain", "a\\b"};

/* Random metadata with missing fields, numbers-vs-strings and nesting. */
static char *make_meta(embr_rng *r) {
  cJSON *o = cJSON_CreateObject();
  uint64_t u = embr_rng_below(r, 20);
  if (u >= 2) cJSON_AddStringToObject(o, "genre", GENRES[embr_rng_below(r, 4)]);
  if (u == 1) cJSON_AddNumberToObject(o, "genre", 7);
  u = embr_rng_below(r, 20);
  if (u >= 3) cJSON_AddNumberToObject(o, "year", (double)(1950 + embr_rng_below(r, 71)));
  if (u == 1) cJSON_AddStringToObject(o, "year", embr_rng_below(r, 2) ? "1990" : "2005");
  u = embr_rng_below(r, 4);
  if (u == 0) cJSON_AddNumberToObject(o, "code", 3);
  if (u == 1) cJSON_AddStringToObject(o, "code", "3");
  if (u == 2) cJSON_AddNumberToObject(o, "code", 3.5);
  cJSON_AddNumberToObject(o, "score", (double)embr_rng_float(r));
  u = embr_rng_below(r, 3);
  if (u < 2) cJSON_AddBoolToObject(o, "live", u == 1);
  if (embr_rng_below(r, 3)) {
    cJSON *t = cJSON_AddObjectToObject(o, "tags");
    cJSON_AddNumberToObject(t, "x", (double)embr_rng_below(r, 5));
  }
  if (embr_rng_below(r, 2)) cJSON_AddStringToObject(o, "name", NAMES[embr_rng_below(r, 5)]);
  char *s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return s;
}

static const cJSON *field(const cJSON *o, const char *path) {
  char buf[64];
  snprintf(buf, sizeof buf, "%s", path);
  const cJSON *v = o;
  for (char *save, *tok = strtok_r(buf, ".", &save); tok && v; tok = strtok_r(NULL, ".", &save))
    v = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, tok) : NULL;
  return v;
}
static int num_is(const cJSON *o, const char *f, double *v) {
  const cJSON *j = field(o, f);
  if (!cJSON_IsNumber(j)) return 0;
  *v = j->valuedouble;
  return 1;
}
static int str_eq(const cJSON *o, const char *f, const char *s) {
  const cJSON *j = field(o, f);
  return cJSON_IsString(j) && !strcmp(j->valuestring, s);
}
static int str_cmp(const cJSON *o, const char *f, const char *s, int *out) {
  const cJSON *j = field(o, f);
  if (!cJSON_IsString(j)) return 0;
  *out = strcmp(j->valuestring, s);
  return 1;
}
static int is_true(const cJSON *o, const char *f) { return cJSON_IsTrue(field(o, f)); }

#define NUM(f, cond) (num_is(o, f, &v) && (cond))
static int f_jazz(const cJSON *o) { return str_eq(o, "genre", "jazz"); }
static int f_not_jazz(const cJSON *o) { return !str_eq(o, "genre", "jazz"); }
static int f_lt(const cJSON *o) { double v; return NUM("year", v < 1970); }
static int f_le(const cJSON *o) { double v; return NUM("year", v <= 1970); }
static int f_gt(const cJSON *o) { double v; return NUM("year", v > 2000); }
static int f_ge(const cJSON *o) { double v; return NUM("year", v >= 2000); }
static int f_code_num(const cJSON *o) { double v; return NUM("code", v == 3); }
static int f_code_str(const cJSON *o) { return str_eq(o, "code", "3"); }
static int f_in(const cJSON *o) { return str_eq(o, "genre", "jazz") || str_eq(o, "genre", "pop"); }
static int f_in_mixed(const cJSON *o) { double v; return NUM("code", v == 3 || v == 3.5) || str_eq(o, "code", "x"); }
static int f_not_in(const cJSON *o) { double v; return !(str_eq(o, "genre", "jazz") || NUM("genre", v == 7)); }
static int f_live(const cJSON *o) { return is_true(o, "live"); }
static int f_not_live(const cJSON *o) { return !is_true(o, "live"); }
static int f_dead(const cJSON *o) { return cJSON_IsFalse(field(o, "live")); }
static int f_live_in(const cJSON *o) { return cJSON_IsBool(field(o, "live")); }
static int f_group(const cJSON *o) { double v; return (str_eq(o, "genre", "jazz") || str_eq(o, "genre", "rock")) && NUM("year", v >= 1990); }
static int f_prec(const cJSON *o) { double v; return str_eq(o, "genre", "jazz") || (str_eq(o, "genre", "rock") && NUM("year", v >= 1990)); }
static int f_not_gt(const cJSON *o) { double v; return !NUM("year", v > 1980); }
static int f_nested(const cJSON *o) { double v; return NUM("tags.x", v == 2); }
static int f_nested_ge(const cJSON *o) { double v; return NUM("tags.x", v >= 3); }
static int f_range(const cJSON *o) { double v; return NUM("score", v > 0.5 && v <= 0.75); }
static int f_inj1(const cJSON *o) { return str_eq(o, "name", NAMES[2]); }
static int f_inj2(const cJSON *o) { return str_eq(o, "name", NAMES[1]); }
static int f_quote(const cJSON *o) { return str_eq(o, "name", NAMES[0]); }
static int f_backslash(const cJSON *o) { return str_eq(o, "name", NAMES[4]); }
static int f_none(const cJSON *o) { (void)o; return 0; }
static int f_all(const cJSON *o) { (void)o; return 1; }
static int f_str_range(const cJSON *o) { int d; return str_cmp(o, "year", "1990", &d) && d >= 0; }
static int f_case(const cJSON *o) { double v; return str_eq(o, "genre", "Jazz") && !NUM("year", v > 2000); }
static int f_complex(const cJSON *o) {
  double v;
  return !(f_jazz(o) || f_live(o)) && (NUM("tags.x", v != 1) || !field(o, "tags"));
}

typedef struct filter_case {
  const char *expr;
  int (*pred)(const cJSON *);
} filter_case;

static const filter_case FILTERS[] = {
    {"genre = \"jazz\"", f_jazz},
    {"genre == 'jazz'", f_jazz},
    {"genre != \"jazz\"", f_not_jazz},
    {"year < 1970", f_lt},
    {"year <= 1970", f_le},
    {"year > 2000", f_gt},
    {"year >= 2000", f_ge},
    {"year >= 2e3", f_ge},
    {"code = 3", f_code_num},
    {"code = 3.0", f_code_num},
    {"code = \"3\"", f_code_str},
    {"genre in [\"jazz\", \"pop\"]", f_in},
    {"code in [3, \"x\", 3.5]", f_in_mixed},
    {"genre not in [\"jazz\", 7]", f_not_in},
    {"live = true", f_live},
    {"live != true", f_not_live},
    {"live = false", f_dead},
    {"live in [true, false]", f_live_in},
    {"(genre = \"jazz\" or genre = \"rock\") and year >= 1990", f_group},
    {"genre = \"jazz\" or genre = \"rock\" and year >= 1990", f_prec},
    {"not (year > 1980)", f_not_gt},
    {"NOT year > 1980", f_not_gt},
    {"tags.x = 2", f_nested},
    {"tags.x >= 3", f_nested_ge},
    {"score > 0.5 and score <= 0.75", f_range},
    {"name = \"'; DROP TABLE items; --\"", f_inj1},
    {"name = 'x\" OR 1=1 --'", f_inj2},
    {"name = 'O\\'Brien'", f_quote},
    {"name = \"a\\\\b\"", f_backslash},
    {"missing = 1", f_none},
    {"missing != 1", f_all},
    {"genre in []", f_none},
    {"year >= \"1990\"", f_str_range},
    {"genre = \"Jazz\" AND NOT year > 2000", f_case},
    {"not (genre = \"jazz\" or live = true) and (tags.x != 1)", f_complex},
};

static void test_filters(void) {
  const int64_t n = 800, dim = 6;
  float *x = random_rows(n, dim, 5);
  embr_rng r;
  embr_rng_seed(&r, 6);
  char **meta = malloc(sizeof(char *) * (size_t)n);
  cJSON **parsed = malloc(sizeof(cJSON *) * (size_t)n);
  for (int64_t i = 0; i < n; i++) {
    meta[i] = i % 50 == 7 ? NULL : make_meta(&r); /* a few items without metadata at all */
    parsed[i] = meta[i] ? cJSON_Parse(meta[i]) : cJSON_CreateObject();
  }
  embr_collection *c = make_collection(th_join(scratch(), "c"), "flat", EMBR_METRIC_L2, x, n, dim, 300, meta);
  REQUIRE(c != NULL);
  uint8_t *want = malloc((size_t)n), *got = malloc((size_t)n);
  for (size_t f = 0; f < sizeof FILTERS / sizeof FILTERS[0]; f++) {
    int64_t nwant = 0;
    for (int64_t i = 0; i < n; i++) nwant += want[i] = (uint8_t)FILTERS[f].pred(parsed[i]);
    /* k = n: the hits are exactly the admitted items */
    embr_collection_hits h;
    int rc = embr_collection_search(c, x, 1, dim, dim, (int)n, FILTERS[f].expr, NULL, &h);
    CHECK_MSG(rc == 0, "%s: %s", FILTERS[f].expr, embr_last_error());
    if (rc) continue;
    memset(got, 0, (size_t)n);
    int64_t ngot = 0;
    for (int64_t j = 0; j < n && h.ext_ids[j]; j++, ngot++) got[id_number(h.ext_ids[j])] = 1;
    CHECK_MSG(ngot == nwant && !memcmp(got, want, (size_t)n), "%s: %lld hits, expected %lld", FILTERS[f].expr,
              (long long)ngot, (long long)nwant);
    embr_collection_hits_free(&h);
  }
  /* a filtered top-5 equals brute force over the admitted rows */
  float *sub = malloc(sizeof(float) * (size_t)(n * dim));
  int64_t *rows = malloc(sizeof(int64_t) * (size_t)n), ns = 0;
  for (int64_t i = 0; i < n; i++)
    if (f_group(parsed[i])) {
      memcpy(sub + ns * dim, x + i * dim, sizeof(float) * (size_t)dim);
      rows[ns++] = i;
    }
  float d5[5];
  int64_t i5[5];
  embr_knn_params kp = embr_knn_params_default();
  REQUIRE(embr_knn(EMBR_METRIC_L2, sub, ns, dim, x + 3 * dim, 1, dim, dim, 5, d5, i5, &kp) == 0);
  embr_collection_hits h;
  REQUIRE(embr_collection_search(c, x + 3 * dim, 1, dim, dim, 5, FILTERS[18].expr, NULL, &h) == 0);
  for (int j = 0; j < 5; j++) CHECK_EQ_INT(id_number(h.ext_ids[j]), rows[i5[j]]);
  embr_collection_hits_free(&h);
  CHECK_EQ_INT(count_of(c), n); /* the injection-looking values did not touch the table */
  embr_collection_close(c);
  for (int64_t i = 0; i < n; i++) {
    cJSON_free(meta[i]);
    cJSON_Delete(parsed[i]);
  }
  free(meta), free(parsed), free(want), free(got), free(sub), free(rows), free(x);
}

static void expect_filter_error(const char *expr, int column, const char *words) {
  char col[32];
  snprintf(col, sizeof col, "column %d:", column);
  int rc = embr_collection_filter_check(expr);
  CHECK_MSG(rc == EMBR_EINVAL, "'%s' accepted", expr);
  CHECK_MSG(strstr(embr_last_error(), col) && strstr(embr_last_error(), words), "'%s': message '%s' (want %s ... %s)", expr,
            embr_last_error(), col, words);
}

static void test_filter_errors(void) {
  expect_filter_error("", 1, "empty filter");
  expect_filter_error("   ", 1, "empty filter");
  expect_filter_error("year >= ", 9, "expected a value");
  expect_filter_error("genre = \"jazz\" and", 19, "expected a condition");
  expect_filter_error("genre = \"jazz\" or or x = 1", 19, "expected a field name");
  expect_filter_error("(genre = \"jazz\"", 16, "expected ')' closing the '(' at column 1");
  expect_filter_error("genre = jazz", 9, "found 'jazz'");
  expect_filter_error("ge$nre = 1", 3, "unexpected character '$'");
  expect_filter_error("a..b = 1", 1, "bad field name");
  expect_filter_error("1year = 1", 1, "malformed number");
  expect_filter_error("year > true", 6, "true and false");
  expect_filter_error("\"x\" = genre", 1, "expected a field name");
  expect_filter_error("genre = \"unterminated", 9, "not closed");
  expect_filter_error("x in [1, 2", 11, "',' or ']'");
  expect_filter_error("x in 1", 6, "'['");
  expect_filter_error("x = 01", 5, "leading zeros");
  expect_filter_error("x = 1e999", 5, "out of range");
  expect_filter_error("x = \"\\q\"", 6, "bad escape");
  expect_filter_error("x = \"\\ud800\"", 6, "surrogate");
  expect_filter_error("x = 1 y = 2", 7, "expected 'and', 'or'");
  expect_filter_error("x not = 1", 7, "'in' after 'not'");
  expect_filter_error("and = 1", 1, "expected a field name");
  char deep[128] = "";
  for (int i = 0; i < 30; i++) strcat(deep, "(");
  strcat(deep, "x = 1");
  expect_filter_error(deep, 25, "nested too deeply");
  /* what is accepted compiles to SQL holding none of the user's text */
  embr__filter f;
  REQUIRE(embr__filter_compile("name = \"'; DROP TABLE items; --\" or \"x\" in [1] or evil_field in ['a'] ", &f) != 0);
  REQUIRE(embr__filter_compile("name = \"'; DROP TABLE items; --\" or evil_field in ['a', \"b\"]", &f) == 0);
  CHECK(strstr(f.sql, "DROP") == NULL && strstr(f.sql, "evil") == NULL);
  CHECK_EQ_INT(f.nparams, 5);
  CHECK(!strcmp(f.params[1].text, "'; DROP TABLE items; --") && !strcmp(f.params[2].text, "$.evil_field"));
  embr__filter_free(&f);
  /* a long chain stays within SQLite's expression depth (balanced emission) */
  size_t cap = 2000 * 12 + 16;
  char *longf = malloc(cap), *p = longf;
  for (int i = 0; i < 2000; i++) p += sprintf(p, "%sx = %d", i ? " or " : "", i);
  embr_collection *c = NULL;
  float v[2] = {1, 2};
  REQUIRE(embr_collection_create(&c, th_join(scratch(), "c"), 2, EMBR_METRIC_L2, "flat") == 0);
  REQUIRE(embr_collection_add(c, v, 1, 2, 2, (const char *[]){"a"}, (const char *[]){"{\"x\": 1999}"}) == 0);
  embr_collection_hits h;
  int rc = embr_collection_search(c, v, 1, 2, 2, 1, longf, NULL, &h);
  CHECK_MSG(rc == 0, "%s", embr_last_error());
  if (!rc) CHECK(h.ext_ids[0] && !strcmp(h.ext_ids[0], "a"));
  embr_collection_hits_free(&h);
  /* the deepest nesting the parser allows also passes SQLite's own parser */
  char nest[256] = "";
  for (int i = 0; i < EMBR__FILTER_MAX_DEPTH / 2 - 1; i++) strcat(nest, "(not ");
  strcat(nest, "(not x != 1999 and y in [1, \"a\", true] or z = false)");
  for (int i = 0; i < EMBR__FILTER_MAX_DEPTH / 2 - 1; i++) strcat(nest, ")");
  rc = embr_collection_search(c, v, 1, 2, 2, 1, nest, NULL, &h);
  CHECK_MSG(rc == 0, "%s", embr_last_error());
  if (!rc) CHECK(h.ext_ids[0] && !strcmp(h.ext_ids[0], "a"));
  embr_collection_hits_free(&h);
  CHECK_EQ_INT(embr_collection_search(c, v, 1, 2, 2, 1, "x >", NULL, &h), EMBR_EINVAL);
  CHECK(strstr(embr_last_error(), "column 4") != NULL);
  embr_collection_close(c);
  free(longf);
}

/* ---- reopen, damaged and stale checkpoints ------------------------------------------------------ */

static void copy_file(const char *from, const char *to) {
  FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
  char buf[65536];
  size_t n;
  while (a && b && (n = fread(buf, 1, sizeof buf, a)) > 0) fwrite(buf, 1, n, b);
  if (a) fclose(a);
  if (b) fclose(b);
}

static void expect_origin(const char *d, embr_index_origin want, const char *note_part, const float *x, int64_t n,
                          const float *q, int64_t dim) {
  embr_collection *c;
  REQUIRE(embr_collection_open(&c, d, EMBR_COLLECTION_RDONLY) == 0);
  char note[256];
  embr_index_origin o = origin_of(c, note, sizeof note);
  CHECK_MSG(o == want && strstr(note, note_part), "origin %d (note '%s'), expected %d with '%s'", (int)o, note, (int)want, note_part);
  check_exact(c, EMBR_METRIC_L2, x, n, q, 5, dim, 7);
  embr_collection_close(c);
}

static void test_reopen_and_damage(void) {
  const int64_t n = 400, dim = 12;
  float *x = random_rows(n, dim, 7), *q = random_rows(5, dim, 8);
  const char *d = th_join(scratch(), "c");
  embr_collection *c = make_collection(d, "flat", EMBR_METRIC_L2, x, n, dim, 100, NULL);
  REQUIRE(c != NULL);
  CHECK_EQ_INT(embr_collection_close(c), 0);
  expect_origin(d, EMBR_INDEX_LOADED, "", x, n, q, dim);
  const char *ix = th_join(d, "index.embr"), *st = th_join(d, "index.state"), *keep = th_join(tmp_root, "keep.embr");
  copy_file(ix, keep);
  struct stat sb;
  REQUIRE(stat(ix, &sb) == 0);
  /* missing */
  unlink(ix);
  expect_origin(d, EMBR_INDEX_REBUILT, "missing", x, n, q, dim);
  /* truncated */
  copy_file(keep, ix);
  REQUIRE(truncate(ix, sb.st_size / 2) == 0);
  expect_origin(d, EMBR_INDEX_REBUILT, "does not match", x, n, q, dim);
  /* one byte flipped */
  copy_file(keep, ix);
  FILE *f = fopen(ix, "r+b");
  fseek(f, sb.st_size / 2, SEEK_SET);
  int ch = fgetc(f);
  fseek(f, sb.st_size / 2, SEEK_SET);
  fputc(ch ^ 0x40, f);
  fclose(f);
  expect_origin(d, EMBR_INDEX_REBUILT, "does not match", x, n, q, dim);
  /* state damaged */
  copy_file(keep, ix);
  expect_origin(d, EMBR_INDEX_LOADED, "", x, n, q, dim);
  f = fopen(st, "r+b");
  fputc('X', f);
  fclose(f);
  expect_origin(d, EMBR_INDEX_REBUILT, "index.state is damaged", x, n, q, dim);
  /* a FIFO in its place (no writer): refused at once, not waited on */
  unlink(st);
  REQUIRE(mkfifo(st, 0600) == 0);
  expect_origin(d, EMBR_INDEX_REBUILT, "index.state is damaged", x, n, q, dim);
  unlink(st);
  /* the same for index.embr, with the state back in place */
  REQUIRE(embr_collection_open(&c, d, EMBR_COLLECTION_RDWR) == 0);
  CHECK_EQ_INT(embr_collection_close(c), 0);
  unlink(ix);
  REQUIRE(mkfifo(ix, 0600) == 0);
  expect_origin(d, EMBR_INDEX_REBUILT, "index.embr cannot be read", x, n, q, dim);
  unlink(ix);
  /* a read-write open repairs it for good */
  REQUIRE(embr_collection_open(&c, d, EMBR_COLLECTION_RDWR) == 0);
  CHECK_EQ_INT(embr_collection_close(c), 0);
  expect_origin(d, EMBR_INDEX_LOADED, "", x, n, q, dim);
  free(x);
  free(q);
}

/* An older checkpoint put back (as if the newest save were lost) is caught up from the db. */
static void test_stale_checkpoint(void) {
  const int64_t n = 600, dim = 10;
  float *x = random_rows(n, dim, 9), *q = random_rows(5, dim, 10);
  const char *d = th_join(scratch(), "c");
  embr_collection *c = make_collection(d, "hnsw:M=12,efc=80", EMBR_METRIC_L2, x, 400, dim, 100, NULL);
  REQUIRE(c != NULL);
  CHECK_EQ_INT(embr_collection_close(c), 0);
  const char *ix = th_join(d, "index.embr"), *st = th_join(d, "index.state");
  const char *old_ix = th_join(tmp_root, "old.embr"), *old_st = th_join(tmp_root, "old.state");
  copy_file(ix, old_ix);
  copy_file(st, old_st);
  /* 200 more rows; delete 50 old ones and 10 of the new ones */
  REQUIRE(embr_collection_open(&c, d, EMBR_COLLECTION_RDWR) == 0);
  char **ids = make_ids(400, 200), **del = make_ids(0, 400);
  REQUIRE(embr_collection_add(c, x + 400 * dim, 200, dim, dim, (const char *const *)ids, NULL) == 0);
  const char *gone[60];
  for (int i = 0; i < 50; i++) gone[i] = del[i * 8];
  for (int i = 0; i < 10; i++) gone[50 + i] = ids[i * 20];
  int64_t nd;
  REQUIRE(embr_collection_delete(c, gone, 60, &nd) == 0);
  CHECK_EQ_INT(nd, 60);
  CHECK_EQ_INT(embr_collection_close(c), 0);
  /* new index with the old state, and old index with the new state: rebuilt */
  char *new_st = strdup(th_join(tmp_root, "new.state"));
  copy_file(st, new_st);
  copy_file(old_st, st);
  REQUIRE(embr_collection_open(&c, d, EMBR_COLLECTION_RDONLY) == 0);
  CHECK_EQ_INT(origin_of(c, NULL, 0), EMBR_INDEX_REBUILT);
  embr_collection_close(c);
  copy_file(old_ix, ix);
  copy_file(new_st, st);
  REQUIRE(embr_collection_open(&c, d, EMBR_COLLECTION_RDONLY) == 0);
  CHECK_EQ_INT(origin_of(c, NULL, 0), EMBR_INDEX_REBUILT);
  embr_collection_close(c);
  /* the old pair: caught up */
  copy_file(old_st, st);
  REQUIRE(embr_collection_open(&c, d, EMBR_COLLECTION_RDONLY) == 0);
  char note[256];
  CHECK_EQ_INT(origin_of(c, note, sizeof note), EMBR_INDEX_CAUGHT_UP);
  CHECK_EQ_INT(count_of(c), 540);
  embr_collection_stats s;
  embr_collection_info(c, &s);
  CHECK_EQ_INT(s.index_items, 540);
  /* every remaining row finds itself; deleted ones never come back */
  embr_collection_search_params p = embr_collection_search_params_default();
  p.ef = 100;
  embr_collection_hits h;
  REQUIRE(embr_collection_search(c, x, n, dim, dim, 1, NULL, &p, &h) == 0);
  int self = 0, deleted_hit = 0;
  for (int64_t i = 0; i < n; i++) {
    int is_gone = 0;
    for (int j = 0; j < 60; j++) is_gone |= id_number(gone[j]) == i;
    int64_t got = id_number(h.ext_ids[i]);
    self += !is_gone && got == i;
    for (int j = 0; j < 60; j++) deleted_hit += got == id_number(gone[j]);
  }
  CHECK_MSG(self >= 535, "%d of 540 rows found themselves", self);
  CHECK_EQ_INT(deleted_hit, 0);
  embr_collection_hits_free(&h);
  embr_collection_close(c);
  free_strs(ids, 200);
  free_strs(del, 400);
  free(new_st);
  free(x);
  free(q);
}

/* ---- delete, compact ---------------------------------------------------------------------------- */

static void test_delete_compact(void) {
  const int64_t n = 600, dim = 8;
  float *x = random_rows(n, dim, 11);
  const char *d = th_join(scratch(), "c");
  embr_collection *c = make_collection(d, "hnsw:M=8,efc=60", EMBR_METRIC_L2, x, n, dim, 600, NULL);
  REQUIRE(c != NULL);
  char **ids = make_ids(0, n);
  const char *gone[401];
  int ng = 0;
  for (int i = 0; i < n; i++)
    if (i % 3) gone[ng++] = ids[i];
  gone[ng++] = "never-there";
  int64_t nd;
  REQUIRE(embr_collection_delete(c, gone, ng, &nd) == 0);
  CHECK_EQ_INT(nd, 400);
  CHECK_EQ_INT(count_of(c), 200);
  CHECK_EQ_INT(embr_collection_get(c, ids[1], NULL, NULL), EMBR_ENOTFOUND);
  embr_collection_stats before, after;
  REQUIRE(embr_collection_info(c, &before) == 0);
  CHECK_EQ_INT(before.deletes_logged, 400);
  CHECK_EQ_INT(before.index_items, 200);
  embr_collection_hits h;
  REQUIRE(embr_collection_search(c, x, n, dim, dim, 3, NULL, NULL, &h) == 0);
  for (int64_t i = 0; i < n * 3; i++)
    if (h.ext_ids[i]) CHECK(id_number(h.ext_ids[i]) % 3 == 0);
  embr_collection_hits_free(&h);
  REQUIRE(embr_collection_compact(c) == 0);
  REQUIRE(embr_collection_info(c, &after) == 0);
  CHECK_EQ_INT(after.deletes_logged, 0);
  CHECK_EQ_INT(after.index_items, 200);
  CHECK_MSG(after.index_memory < before.index_memory, "index memory %lld -> %lld", (long long)before.index_memory,
            (long long)after.index_memory);
  /* a deleted id can be added again (with a new internal id) */
  REQUIRE(embr_collection_add(c, x + dim, 1, dim, dim, (const char *const *)ids + 1, NULL) == 0);
  REQUIRE(embr_collection_info(c, &after) == 0);
  CHECK_EQ_INT(after.max_internal_id, n + 1);
  CHECK_EQ_INT(embr_collection_close(c), 0);
  REQUIRE(embr_collection_open(&c, d, EMBR_COLLECTION_RDONLY) == 0);
  CHECK_EQ_INT(origin_of(c, NULL, 0), EMBR_INDEX_LOADED);
  CHECK_EQ_INT(count_of(c), 201);
  REQUIRE(embr_collection_search(c, x + dim, 1, dim, dim, 1, NULL, NULL, &h) == 0);
  CHECK(h.ext_ids[0] && !strcmp(h.ext_ids[0], "id-1"));
  embr_collection_hits_free(&h);
  embr_collection_close(c);
  free_strs(ids, n);
  free(x);
}

/* A checkpoint older than the last compact cannot replay the deletes it no longer has. */
static void test_checkpoint_before_compact(void) {
  const int64_t n = 100, dim = 4;
  float *x = random_rows(n, dim, 12), *q = random_rows(5, dim, 13);
  const char *d = th_join(scratch(), "c");
  embr_collection *c = make_collection(d, "flat", EMBR_METRIC_L2, x, n, dim, 100, NULL);
  REQUIRE(c != NULL);
  REQUIRE(embr_collection_save(c) == 0);
  copy_file(th_join(d, "index.embr"), th_join(tmp_root, "o.embr"));
  copy_file(th_join(d, "index.state"), th_join(tmp_root, "o.state"));
  REQUIRE(embr_collection_delete(c, (const char *[]){"id-99"}, 1, NULL) == 0);
  REQUIRE(embr_collection_compact(c) == 0);
  CHECK_EQ_INT(embr_collection_close(c), 0);
  copy_file(th_join(tmp_root, "o.embr"), th_join(d, "index.embr"));
  copy_file(th_join(tmp_root, "o.state"), th_join(d, "index.state"));
  expect_origin(d, EMBR_INDEX_REBUILT, "predates the last compact", x, n - 1, q, dim);
  free(x);
  free(q);
}

/* The checkpoint cannot be written (here index.embr is a directory; a full disk behaves alike):
 * add and delete are committed and succeed, save/compact/close say EMBR_ECHECKPOINT -- not a
 * failed change -- and the next open has every item. */
static void test_checkpoint_unwritable(void) {
  const int64_t n = 60, dim = 4;
  float *x = random_rows(n, dim, 21);
  const char *d = th_join(scratch(), "c");
  embr_collection *c = make_collection(d, "flat", EMBR_METRIC_L2, x, 50, dim, 50, NULL);
  REQUIRE(c != NULL);
  CHECK_EQ_INT(embr_collection_close(c), 0);
  REQUIRE(embr_collection_open(&c, d, EMBR_COLLECTION_RDWR) == 0);
  REQUIRE(unlink(th_join(d, "index.embr")) == 0);
  REQUIRE(mkdir(th_join(d, "index.embr"), 0755) == 0);
  char **ids = make_ids(50, 10);
  CHECK_EQ_INT(embr_collection_add(c, x + 50 * dim, 10, dim, dim, (const char *const *)ids, NULL), 0);
  CHECK_EQ_INT(embr_collection_save(c), EMBR_ECHECKPOINT);
  CHECK_MSG(strstr(embr_last_error(), "index checkpoint was not saved") && strstr(embr_last_error(), "committed"),
            "%s", embr_last_error());
  CHECK_EQ_INT(embr_collection_delete(c, (const char *[]){"id-0"}, 1, NULL), 0);
  CHECK_EQ_INT(embr_collection_compact(c), EMBR_ECHECKPOINT);
  CHECK_MSG(strstr(embr_last_error(), "compact stopped"), "%s", embr_last_error());
  CHECK_EQ_INT(embr_collection_close(c), EMBR_ECHECKPOINT);
  REQUIRE(rmdir(th_join(d, "index.embr")) == 0);
  REQUIRE(embr_collection_open(&c, d, EMBR_COLLECTION_RDONLY) == 0);
  CHECK(origin_of(c, NULL, 0) != EMBR_INDEX_LOADED);
  CHECK_EQ_INT(count_of(c), 59);
  float v[4];
  CHECK_EQ_INT(embr_collection_get(c, "id-57", v, NULL), 0);
  CHECK(memcmp(v, x + 57 * dim, sizeof v) == 0);
  CHECK_EQ_INT(embr_collection_get(c, "id-0", NULL, NULL), EMBR_ENOTFOUND);
  embr_collection_close(c);
  free_strs(ids, 10);
  free(x);
}

/* ---- readers, refresh, the writer lock, autosave --------------------------------------------- */

static void test_readers_and_writer(void) {
  const int64_t dim = 3;
  float x[6 * 3];
  for (int i = 0; i < 18; i++) x[i] = (float)(i * i % 7);
  const char *d = th_join(scratch(), "c");
  embr_collection *w = NULL, *r = NULL, *w2 = NULL;
  REQUIRE(embr_collection_create(&w, d, dim, EMBR_METRIC_L2, "hnsw") == 0);
  CHECK_EQ_INT(embr_collection_open(&w2, d, EMBR_COLLECTION_RDWR), EMBR_EIO);
  CHECK(strstr(embr_last_error(), "one writer") != NULL);
  REQUIRE(embr_collection_add(w, x, 2, dim, dim, (const char *[]){"a", "b"}, NULL) == 0);
  REQUIRE(embr_collection_open(&r, d, EMBR_COLLECTION_RDONLY) == 0);
  CHECK_EQ_INT(count_of(r), 2);
  REQUIRE(embr_collection_add(w, x + 6, 2, dim, dim, (const char *[]){"c", "d"}, NULL) == 0);
  embr_collection_stats s;
  embr_collection_info(r, &s);
  CHECK_EQ_INT(s.index_items, 2); /* the reader's index is as of its open */
  embr_collection_hits h;
  REQUIRE(embr_collection_search(r, x + 6, 1, dim, dim, 1, NULL, NULL, &h) == 0);
  CHECK(h.ext_ids[0] && strcmp(h.ext_ids[0], "c") != 0);
  embr_collection_hits_free(&h);
  REQUIRE(embr_collection_refresh(r) == 0);
  embr_collection_info(r, &s);
  CHECK_EQ_INT(s.index_items, 4);
  REQUIRE(embr_collection_search(r, x + 6, 1, dim, dim, 1, NULL, NULL, &h) == 0);
  CHECK(h.ext_ids[0] && !strcmp(h.ext_ids[0], "c"));
  embr_collection_hits_free(&h);
  /* a delete the reader has not applied yet: the hit is dropped, not reported with a stale id */
  REQUIRE(embr_collection_delete(w, (const char *[]){"c"}, 1, NULL) == 0);
  REQUIRE(embr_collection_search(r, x + 6, 1, dim, dim, 4, NULL, NULL, &h) == 0);
  for (int j = 0; j < 4; j++) CHECK(!h.ext_ids[j] || strcmp(h.ext_ids[j], "c") != 0);
  CHECK(h.ext_ids[2] != NULL && h.ext_ids[3] == NULL);
  embr_collection_hits_free(&h);
  REQUIRE(embr_collection_refresh(r) == 0);
  embr_collection_info(r, &s);
  CHECK_EQ_INT(s.index_items, 3);
  CHECK_EQ_INT(embr_collection_save(r), EMBR_EUNSUPPORTED);
  /* autosave: a checkpoint once 2 changes accumulate */
  embr_collection_set_autosave(w, 2, 0);
  REQUIRE(embr_collection_add(w, x + 12, 2, dim, dim, (const char *[]){"e", "f"}, NULL) == 0);
  embr_collection_info(w, &s);
  CHECK_EQ_INT(s.unsaved_changes, 0);
  CHECK(s.index_file_bytes > 0);
  embr_collection_close(r);
  CHECK_EQ_INT(embr_collection_close(w), 0);
  REQUIRE(embr_collection_open(&w2, d, EMBR_COLLECTION_RDWR) == 0); /* the lock went with the handle */
  embr_collection_close(w2);
}

int main(int argc, char **argv) {
  int rc = RUN_TESTS(argc, argv, test_create_open_errors, test_flat_matches_knn, test_hnsw_recall, test_get_roundtrip,
                     test_batch_all_or_nothing, test_filters, test_filter_errors, test_reopen_and_damage,
                     test_stale_checkpoint, test_delete_compact, test_checkpoint_before_compact, test_checkpoint_unwritable,
                     test_readers_and_writer);
  return rc;
}

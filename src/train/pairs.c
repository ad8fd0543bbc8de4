/* Verification pairs: all pairs of a labelled set, or a pairs file ("NAME_A NAME_B SAME" lines)
 * resolved against item names. The file is read as hostile input: lines are bounded, every token
 * is checked, and each error names the file and line. */
#include "embr/evaluate.h"

#include "core/fileio.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A line longer than this is not a pairs line (names are file names, well under 4 KiB). */
enum { PAIRS_MAX_LINE = 1 << 16 };

void embr_pairs_free(embr_pairs *p) {
  if (!p) return;
  embr_free(p->a);
  embr_free(p->b);
  embr_free(p->same);
  memset(p, 0, sizeof *p);
}

static int pairs_alloc(embr_pairs *p, size_t cap) {
  size_t bytes = 0;
  if (embr_size_mul(cap, sizeof(int64_t), &bytes) != 0) return EMBR_ENOMEM;
  p->a = embr_alloc(bytes);
  p->b = embr_alloc(bytes);
  p->same = embr_alloc(cap);
  if (!p->a || !p->b || !p->same) {
    embr_pairs_free(p);
    return embr_error(EMBR_ENOMEM, "out of memory for %zu pairs", cap);
  }
  return 0;
}

embr_status embr_pairs_all(const int32_t *labels, int64_t n, embr_pairs *out) {
  if (!out) return embr_error(EMBR_EINVAL, "embr_pairs_all: out is NULL");
  memset(out, 0, sizeof *out);
  if (n < 0) return embr_error(EMBR_EINVAL, "embr_pairs_all: n = %lld is negative", (long long)n);
  if (n > 0 && !labels) return embr_error(EMBR_EINVAL, "embr_pairs_all: labels is NULL");
  for (int64_t i = 0; i < n; i++)
    if (labels[i] < 0)
      return embr_error(EMBR_EINVAL, "embr_pairs_all: label of row %lld is %d, expected >= 0",
                        (long long)i, (int)labels[i]);
  size_t count = 0;
  if (n > 1 && embr_size_mul((size_t)n, (size_t)(n - 1), &count) != 0) return EMBR_ENOMEM;
  count /= 2;
  if (count > (size_t)INT64_MAX) return embr_error(EMBR_ENOMEM, "too many pairs");
  int rc = pairs_alloc(out, count);
  if (rc) return rc;
  int64_t k = 0;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = i + 1; j < n; j++, k++) {
      out->a[k] = i;
      out->b[k] = j;
      out->same[k] = labels[i] == labels[j];
    }
  out->n = k;
  return 0;
}

/* ---- name lookup: open addressing over the names, built once per file ------------------------ */

typedef struct name_table {
  char *const *names;
  size_t *len;       /* strlen of each name */
  int64_t *slot;     /* row of the slot's name, -1 empty */
  uint8_t *ambiguous;/* 1: the slot's name occurs on more than one row */
  size_t mask;
} name_table;

static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

/* Slot holding the name s[0..n), or the empty slot where it would go. */
static size_t table_find(const name_table *t, const char *s, size_t n) {
  size_t i = (size_t)hash_bytes(s, n) & t->mask;
  while (t->slot[i] >= 0) {
    int64_t r = t->slot[i];
    if (t->len[r] == n && memcmp(t->names[r], s, n) == 0) return i;
    i = (i + 1) & t->mask;
  }
  return i;
}

static void table_free(name_table *t) {
  free(t->len);
  free(t->slot);
  free(t->ambiguous);
  memset(t, 0, sizeof *t);
}

static int table_build(name_table *t, char *const *names, int64_t n) {
  memset(t, 0, sizeof *t);
  size_t cap = 16;
  while (cap < 2 * (size_t)n) cap *= 2; /* load <= 1/2; n is bounded by memory, so no overflow */
  t->names = names;
  t->mask = cap - 1;
  t->len = malloc(sizeof *t->len * ((size_t)n + 1));
  t->slot = malloc(sizeof *t->slot * cap);
  t->ambiguous = calloc(cap, 1);
  if (!t->len || !t->slot || !t->ambiguous) {
    table_free(t);
    return embr_error(EMBR_ENOMEM, "out of memory for a table of %lld names", (long long)n);
  }
  memset(t->slot, 0xff, sizeof *t->slot * cap);
  for (int64_t r = 0; r < n; r++) {
    t->len[r] = strlen(names[r]);
    size_t i = table_find(t, names[r], t->len[r]);
    if (t->slot[i] >= 0)
      t->ambiguous[i] = 1;
    else
      t->slot[i] = r;
  }
  return 0;
}

/* ---- line parsing ------------------------------------------------------------------------------ */

typedef struct pairs_reader {
  const char *path;
  const char *p, *end; /* rest of the file */
  int64_t lineno;
  name_table names;
} pairs_reader;

/* A token fit for an error message: at most 60 bytes, control bytes shown as '?'. */
static const char *shown(const char *s, size_t n, char buf[72]) {
  size_t m = n > 60 ? 60 : n;
  for (size_t i = 0; i < m; i++) {
    unsigned char c = (unsigned char)s[i];
    buf[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
  }
  strcpy(buf + m, n > m ? "..." : "");
  return buf;
}

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* Splits [s, e) into at most `max` tokens; a token starting with '#' ends the line (comment).
 * Returns the number of tokens, or max + 1 when there are more. */
static int split(const char *s, const char *e, const char **tok, size_t *len, int max) {
  int k = 0;
  while (s < e) {
    while (s < e && is_blank(*s)) s++;
    if (s == e || *s == '#') break;
    const char *t = s;
    while (s < e && !is_blank(*s)) s++;
    if (k == max) return max + 1;
    tok[k] = t;
    len[k++] = (size_t)(s - t);
  }
  return k;
}

static int parse_same(const pairs_reader *r, const char *s, size_t n, uint8_t *same) {
  if (n == 1 && (s[0] == '0' || s[0] == '1')) {
    *same = (uint8_t)(s[0] - '0');
    return 0;
  }
  if (n == 4 && strncasecmp(s, "true", 4) == 0) {
    *same = 1;
    return 0;
  }
  if (n == 5 && strncasecmp(s, "false", 5) == 0) {
    *same = 0;
    return 0;
  }
  char b[72];
  return embr_error(EMBR_EFORMAT, "%s: line %lld: SAME must be 1/0 or true/false, got '%s'", r->path,
                    (long long)r->lineno, shown(s, n, b));
}

static int lookup(const pairs_reader *r, const char *s, size_t n, int64_t *row) {
  char b[72];
  size_t i = table_find(&r->names, s, n);
  if (r->names.slot[i] < 0)
    return embr_error(EMBR_ENOTFOUND, "%s: line %lld: unknown name '%s'", r->path,
                      (long long)r->lineno, shown(s, n, b));
  if (r->names.ambiguous[i])
    return embr_error(EMBR_EFORMAT, "%s: line %lld: name '%s' belongs to more than one row",
                      r->path, (long long)r->lineno, shown(s, n, b));
  *row = r->names.slot[i];
  return 0;
}

/* Parses the line [s, e) into pair k of out; *added is 1 when the line held a pair. */
static int parse_line(pairs_reader *r, const char *s, const char *e, embr_pairs *out, int *added) {
  const char *tok[3];
  size_t len[3];
  *added = 0;
  if (memchr(s, '\0', (size_t)(e - s)))
    return embr_error(EMBR_EFORMAT, "%s: line %lld contains a NUL byte", r->path,
                      (long long)r->lineno);
  int k = split(s, e, tok, len, 3);
  if (k == 0) return 0;
  if (k != 3)
    return embr_error(EMBR_EFORMAT, "%s: line %lld has %s fields, expected 3 (NAME_A NAME_B SAME)",
                      r->path, (long long)r->lineno, k > 3 ? "more than 3" : k == 2 ? "2" : "1");
  int64_t i = out->n;
  int rc = lookup(r, tok[0], len[0], &out->a[i]);
  if (!rc) rc = lookup(r, tok[1], len[1], &out->b[i]);
  if (!rc) rc = parse_same(r, tok[2], len[2], &out->same[i]);
  if (rc) return rc;
  out->n++;
  *added = 1;
  return 0;
}

static int read_lines(pairs_reader *r, embr_pairs *out) {
  while (r->p < r->end) {
    const char *nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
    const char *e = nl ? nl : r->end;
    r->lineno++;
    if (e - r->p > PAIRS_MAX_LINE)
      return embr_error(EMBR_EFORMAT, "%s: line %lld is longer than %d bytes", r->path,
                        (long long)r->lineno, PAIRS_MAX_LINE);
    int added = 0;
    int rc = parse_line(r, r->p, e, out, &added);
    if (rc) return rc;
    r->p = nl ? nl + 1 : r->end;
  }
  if (out->n == 0) return embr_error(EMBR_EFORMAT, "%s: no pairs in the file", r->path);
  return 0;
}

static int check_names(char *const *names, int64_t n) {
  if (n < 0) return embr_error(EMBR_EINVAL, "embr_pairs_read: n = %lld is negative", (long long)n);
  if (n > 0 && !names) return embr_error(EMBR_EINVAL, "embr_pairs_read: names is NULL");
  for (int64_t i = 0; i < n; i++)
    if (!names[i])
      return embr_error(EMBR_EINVAL, "embr_pairs_read: name of row %lld is NULL", (long long)i);
  return 0;
}

/* Lines in the file (an upper bound on its pairs). */
static size_t count_lines(const unsigned char *p, size_t len) {
  size_t k = 1;
  if (!p) return k;
  for (const unsigned char *e = p + len; p < e; p++) {
    p = memchr(p, '\n', (size_t)(e - p));
    if (!p) break;
    k++;
  }
  return k;
}

embr_status embr_pairs_read(const char *path, char *const *names, int64_t n, embr_pairs *out) {
  if (!out) return embr_error(EMBR_EINVAL, "embr_pairs_read: out is NULL");
  memset(out, 0, sizeof *out);
  if (!path) return embr_error(EMBR_EINVAL, "embr_pairs_read: path is NULL");
  int rc = check_names(names, n);
  if (rc) return rc;
  embr__filemap fm;
  rc = embr__filemap_open(&fm, path, EMBR__READ_ANY);
  if (rc) return rc;
  pairs_reader r = {.path = path, .p = (const char *)fm.data};
  r.end = fm.data ? r.p + fm.len : r.p; /* an empty file has no data pointer */
  rc = table_build(&r.names, names, n);
  if (!rc) rc = pairs_alloc(out, count_lines(fm.data, fm.len));
  if (!rc) rc = read_lines(&r, out);
  table_free(&r.names);
  embr__filemap_close(&fm);
  if (rc) embr_pairs_free(out);
  return rc;
}

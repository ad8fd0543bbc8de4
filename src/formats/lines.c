/* Line files (ids, labels, JSON-lines metadata) and integer lists: the one reader and the one
 * parser every front end uses, so the CLI's three line readers and two list parsers (which
 * disagreed on "\r\n", on NUL bytes and on size limits) cannot come back. See embr/lines.h. */
#include "embr/lines.h"

#include "formats/formats_internal.h"

#include <stdlib.h>
#include <string.h>

void embr_lines_free(embr_lines *l) {
  if (!l) return;
  embr_free(l->buf);
  embr_free(l->line);
  memset(l, 0, sizeof *l);
}

/* Lines in p[0..len): one per '\n', plus one for a last line without it. Fails at the first NUL. */
static int count_lines(const unsigned char *p, size_t len, const char *name, int64_t *n) {
  int64_t k = 0;
  for (size_t i = 0; i < len; i++) {
    if (p[i] == '\0')
      return embr_error(EMBR_EFORMAT, "%s: line %lld: NUL byte (not a text file? one item per line expected)", name,
                        (long long)k + 1);
    k += p[i] == '\n';
  }
  *n = k + (len > 0 && p[len - 1] != '\n');
  return 0;
}

embr_status embr_lines_read_mem(const void *buf, size_t len, const char *name, int64_t expect, const char *what,
                                const char *per, embr_lines *out) {
  memset(out, 0, sizeof *out);
  if (!name) name = "(memory)";
  if (len > 0 && !buf) return embr_error(EMBR_EINVAL, "%s: no buffer", name);
  if ((uint64_t)len > (uint64_t)EMBR_LINES_MAX_BYTES)
    return embr_error(EMBR_EFORMAT, "%s: %llu bytes, more than the %lld a line file may hold", name,
                      (unsigned long long)len, (long long)EMBR_LINES_MAX_BYTES);
  int64_t n = 0;
  int rc = count_lines(buf, len, name, &n);
  if (rc) return rc;
  if (expect >= 0 && n != expect)
    return embr_error(EMBR_EINVAL, "%s: %lld %s for %lld %s (one per line expected)", name, (long long)n,
                      what ? what : "lines", (long long)expect, per ? per : "rows");
  out->buf = embr_alloc(len + 1);
  out->line = embr_alloc(sizeof(char *) * (size_t)(n ? n : 1));
  if (!out->buf || !out->line) {
    embr_lines_free(out);
    return embr_error(EMBR_ENOMEM, "%s: out of memory for %lld lines", name, (long long)n);
  }
  if (len) memcpy(out->buf, buf, len);
  out->buf[len] = '\0';
  char *p = out->buf;
  for (int64_t i = 0; i < n; i++) {
    char *nl = memchr(p, '\n', (size_t)(out->buf + len - p));
    char *end = nl ? nl : out->buf + len;
    if (end > p && end[-1] == '\r') end--;
    *end = '\0';
    out->line[i] = p;
    p = nl ? nl + 1 : out->buf + len;
  }
  out->n = n;
  return 0;
}

embr_status embr_lines_read(const char *path, int64_t expect, const char *what, const char *per, embr_lines *out) {
  memset(out, 0, sizeof *out);
  embr__filemap fm;
  /* The cap also bounds what is read from a pipe or device before the size check below. */
  int rc = embr__filemap_open(&fm, path, (size_t)EMBR_LINES_MAX_BYTES);
  if (rc) return rc;
  rc = embr_lines_read_mem(fm.data, fm.len, path, expect, what, per, out);
  embr__filemap_close(&fm);
  return rc;
}

embr_status embr_lines_parse_ids(const embr_lines *l, const char *name, int64_t *ids) {
  if (!name) name = "(ids)";
  for (int64_t i = 0; i < l->n; i++) {
    const char *s = l->line[i];
    size_t a = 0, b = strlen(s);
    while (a < b && (s[a] == ' ' || s[a] == '\t')) a++;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) b--;
    if (embr__parse_count(s + a, b - a, INT64_MAX, &ids[i])) {
      char q[40];
      return embr_error(EMBR_EFORMAT, "%s: line %lld: '%s' is not an id (a non-negative integer)", name,
                        (long long)i + 1, embr__quote(q, s + a, b - a));
    }
  }
  return 0;
}

/* One item of a list: [-]digits within [min, max]. */
static int parse_item(const char *s, size_t n, int64_t min, int64_t max, int64_t *v) {
  int neg = n > 0 && s[0] == '-';
  int64_t m;
  if (n > 0 && s[0] == '+') return -1;
  if (embr__parse_count(s + neg, n - (size_t)neg, INT64_MAX, &m)) return -1;
  *v = neg ? -m : m;
  return *v < min || *v > max ? -1 : 0;
}

embr_status embr_int_list_parse(const char *s, int64_t min, int64_t max, int64_t *out, int max_n, int *n) {
  *n = 0;
  if (!s || !*s) return embr_error(EMBR_EINVAL, "empty list: expected integers separated by commas");
  for (const char *p = s;;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    char q[40];
    if (*n == max_n)
      return embr_error(EMBR_EINVAL, "'%s': more than %d values", embr__quote(q, s, strlen(s)), max_n);
    if (parse_item(p, len, min, max, &out[*n]))
      return embr_error(EMBR_EINVAL, "'%s': '%s' is not an integer in %lld..%lld", embr__quote(q, s, strlen(s)),
                        embr__quote((char[40]){0}, p, len), (long long)min, (long long)max);
    ++*n;
    if (!comma) return 0;
    p = comma + 1;
  }
}

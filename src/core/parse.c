/* Strict number parsing; see parse.h. */
#include "core/parse.h"

#include <errno.h>
#include <stdlib.h>

int embr__parse_int(const char *s, char **end, int64_t lo, int64_t hi, int64_t *out) {
  if (end) *end = (char *)s;
  if (!s) return -1;
  const char *d = s[0] == '-' ? s + 1 : s;
  if (*d < '0' || *d > '9') return -1; /* strtoll would skip spaces and take '+' */
  char *e;
  errno = 0;
  long long v = strtoll(s, &e, 10);
  if (errno == ERANGE || v < lo || v > hi) return -1;
  if (end) *end = e;
  *out = v;
  return 0;
}

int embr__parse_int_full(const char *s, int64_t lo, int64_t hi, int64_t *out) {
  char *e;
  int64_t v;
  if (embr__parse_int(s, &e, lo, hi, &v) || *e) return -1;
  *out = v;
  return 0;
}

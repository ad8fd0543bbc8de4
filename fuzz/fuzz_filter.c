/* libFuzzer target: the collection filter parser (src/collection/filter.c), parse and compile
 * only, no database. Checks what a result promises:
 *   - failure: EINVAL (or ENOMEM) with a one-line message "filter: ..." and an empty output;
 *   - success: SQL made only of the compiler's own text — identifiers, numbered parameters that
 *     exist, and quoted literals from a fixed list — so none of the input's bytes reached it;
 *     parentheses balanced and nested no deeper than SQLite's 1000-level limit allows. */
#include "collection/filter.h"
#include "embr/core.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int allowed_literal(const char *s, size_t n) {
  static const char *const lits[] = {"", "text", "integer", "real", "true", "false"};
  for (size_t i = 0; i < sizeof lits / sizeof lits[0]; i++)
    if (strlen(lits[i]) == n && !memcmp(lits[i], s, n)) return 1;
  return 0;
}

static void check_sql(const embr__filter *f) {
  const char *s = f->sql;
  int depth = 0, max_depth = 0;
  for (size_t i = 0; s[i]; i++) {
    char c = s[i];
    if (c == '\'') { /* a literal: must be one of ours */
      const char *end = strchr(s + i + 1, '\'');
      if (!end || !allowed_literal(s + i + 1, (size_t)(end - s - i - 1))) abort();
      i = (size_t)(end - s);
    } else if (c == '?') { /* ?N with 1 <= N <= nparams */
      long n = strtol(s + i + 1, NULL, 10);
      if (n < 1 || n > f->nparams) abort();
    } else if (c == '(') {
      if (++depth > max_depth) max_depth = depth;
    } else if (c == ')') {
      if (--depth < 0) abort();
    } else if (!isalnum((unsigned char)c) && !strchr(" _,=<>", c)) {
      abort();
    }
  }
  if (depth != 0 || max_depth > 400) abort();
  for (int i = 0; i < f->nparams; i++)
    if (f->params[i].type == EMBR__FP_TEXT && (!f->params[i].text || strlen(f->params[i].text) != f->params[i].len))
      abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0'; /* the API takes a C string; an embedded NUL simply ends it */
  embr__filter f;
  int rc = embr__filter_compile(text, &f);
  if (rc == 0) {
    if (!f.sql || f.nconds < 1) abort();
    check_sql(&f);
  } else {
    const char *msg = embr_last_error();
    if ((rc != EMBR_EINVAL && rc != EMBR_ENOMEM) || strchr(msg, '\n')) abort();
    if (rc == EMBR_EINVAL && strncmp(msg, "filter", 6) != 0) abort();
    if (f.sql || f.params || f.nparams) abort();
  }
  embr__filter_free(&f);
  free(text);
  return 0;
}

/* libFuzzer target: line files (ids, labels, JSON-lines metadata) and the integer lists of flags.
 * Every input is split into lines (checked against a plain count of its newlines), parsed as an
 * ids file, and (NUL-terminated) as a comma-separated integer list. Failures must be one line
 * naming the input. */
#include "embr/lines.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one_line_message(const char *name) {
  const char *msg = embr_last_error();
  if ((name && strncmp(msg, name, strlen(name)) != 0) || strchr(msg, '\n')) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  embr_lines l;
  int rc = embr_lines_read_mem(data, size, "ids.txt", -1, "ids", "vectors", &l);
  int has_nul = memchr(data, 0, size) != NULL;
  if (rc == 0) {
    int64_t nl = 0;
    for (size_t i = 0; i < size; i++) nl += data[i] == '\n';
    if (has_nul || l.n != nl + (size > 0 && data[size - 1] != '\n')) abort();
    for (int64_t i = 0; i < l.n; i++)
      if (!l.line[i] || strchr(l.line[i], '\n')) abort();
    int64_t *ids = malloc(sizeof(int64_t) * (size_t)(l.n + 1));
    if (ids && embr_lines_parse_ids(&l, "ids.txt", ids) == 0) {
      for (int64_t i = 0; i < l.n; i++)
        if (ids[i] < 0) abort();
    } else if (ids) {
      one_line_message("ids.txt");
    }
    free(ids);
    /* the expected-count check agrees with the count */
    embr_lines_free(&l);
    if (embr_lines_read_mem(data, size, "ids.txt", nl + 1, "ids", "vectors", &l) == 0 &&
        l.n != nl + 1)
      abort();
    embr_lines_free(&l);
  } else {
    one_line_message("ids.txt");
    if (l.n || l.line || l.buf) abort();
  }
  char *s = malloc(size + 1);
  if (!s) return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  int64_t v[16];
  int n = -1;
  if (embr_int_list_parse(s, -1000, 1000000, v, 16, &n) == 0) {
    if (n < 1 || n > 16) abort();
    for (int i = 0; i < n; i++)
      if (v[i] < -1000 || v[i] > 1000000) abort();
  } else {
    one_line_message(NULL);
  }
  free(s);
  return 0;
}

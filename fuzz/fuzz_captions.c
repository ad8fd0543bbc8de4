/* libFuzzer target: image-caption pairs files ("FILE<TAB>CAPTION" lines), read without a data
 * folder (no file-system checks). A successful read must give at least one caption, every caption
 * non-empty, trimmed, without tab, line end or NUL, pointing at an image in range; the images
 * distinct, in first-seen order, relative and without a ".." component. Failures must leave the
 * output empty with a one-line message naming the input. */
#include "embr/captions.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int has_dotdot(const char *f) {
  for (const char *c = f; c; c = strchr(c, '/')) {
    if (*c == '/') c++;
    if (!strncmp(c, "..", 2) && (c[2] == '/' || c[2] == '\0')) return 1;
  }
  return 0;
}

static void check_images(const embr_captions *c) {
  for (int64_t i = 0; i < c->n_images; i++) {
    const char *f = c->image[i];
    if (!f[0] || f[0] == '/' || has_dotdot(f) || strpbrk(f, "\t\r\n") || strcmp(c->image_path[i], f)) abort();
    for (int64_t j = 0; j < i && c->n_images <= 64; j++)
      if (!strcmp(c->image[j], f)) abort();
  }
}

static void check_captions(const embr_captions *c) {
  int64_t next_new = 0; /* images appear in first-seen order */
  for (int64_t i = 0; i < c->n; i++) {
    const char *t = c->text[i];
    size_t n = strlen(t);
    if (n == 0 || strpbrk(t, "\t\r\n") || t[0] == ' ' || t[n - 1] == ' ') abort();
    if (c->image_index[i] < 0 || c->image_index[i] > next_new || c->image_index[i] >= c->n_images) abort();
    if (c->image_index[i] == next_new) next_new++;
    if (c->line[i] < 1 || (i > 0 && c->line[i] <= c->line[i - 1])) abort();
  }
  if (next_new != c->n_images) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  embr_captions c;
  if (embr_captions_read_mem(data, size, "pairs.tsv", NULL, &c) == 0) {
    if (c.n < 1 || c.n_images < 1 || c.n_images > c.n) abort();
    check_images(&c);
    check_captions(&c);
    embr_captions_free(&c);
  } else {
    const char *msg = embr_last_error();
    if (strncmp(msg, "pairs.tsv", 9) != 0 || strchr(msg, '\n')) abort();
    if (c.n || c.text || c.image || c.buf) abort();
  }
  return 0;
}

/* Image-caption pairs files ("FILE<TAB>CAPTION" per line), the input of CLIP-style training and
 * cross-modal retrieval evaluation. One reader for every front end, strict because the file names
 * images to open: paths that could leave the data folder are refused, and every image is checked
 * to exist on read, so a missing picture is reported with its line before any training starts.
 * Distinct images are found with a small open-addressing hash table. See embr/captions.h. */
#include "embr/captions.h"

#include "core/fileio.h"
#include "core/parse.h"
#include "formats/formats_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void embr_captions_free(embr_captions *c) {
  if (!c) return;
  embr_free(c->image);
  embr_free(c->image_path);
  embr_free(c->text);
  embr_free(c->image_index);
  embr_free(c->line);
  embr_free(c->buf);
  embr_free(c->pbuf);
  memset(c, 0, sizeof *c);
}

/* State of one parse: the output, the image table and the names for messages. */
typedef struct cap_parse {
  embr_captions *out;
  const char *name, *dir;
  int64_t *slot; /* hash table of image index + 1 (0: empty), cap slots */
  size_t cap;
  char *path;    /* scratch for dir "/" file */
  size_t path_cap;
} cap_parse;

static uint64_t fnv1a(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* 0 when s[0..n) is UTF-8 without NUL or control bytes other than the tab; else 1 + the offset
 * of the first bad byte. s[n] must be readable (the line's terminator). */
static size_t bad_byte(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    int k = p[i] >= 0x80 ? embr__utf8_len(p + i) : (p[i] >= 0x20 && p[i] != 0x7f) || p[i] == '\t';
    if (k <= 0 || i + (size_t)k > n) return i + 1;
    i += (size_t)k;
  }
  return 0;
}

/* A path component equal to "..", or a leading '/': the file would not be inside the folder. */
static int leaves_folder(const char *f) {
  if (f[0] == '/') return 1;
  for (const char *c = f; c; c = strchr(c, '/')) {
    if (*c == '/') c++;
    if (c[0] == '.' && c[1] == '.' && (c[2] == '/' || c[2] == '\0')) return 1;
  }
  return 0;
}

static int check_exists(cap_parse *P, const char *file, int64_t lineno) {
  size_t need = strlen(P->dir) + strlen(file) + 2;
  if (need > P->path_cap) {
    embr_free(P->path);
    P->path_cap = need * 2;
    if (!(P->path = embr_alloc(P->path_cap))) return embr_error(EMBR_ENOMEM, "%s: out of memory", P->name);
  }
  snprintf(P->path, P->path_cap, "%s/%s", P->dir, file);
  struct stat st;
  if (stat(P->path, &st) != 0)
    return embr_error(EMBR_ENOTFOUND, "%s: line %lld: image '%s' not found", P->name, (long long)lineno, P->path);
  if (!S_ISREG(st.st_mode))
    return embr_error(EMBR_EFORMAT, "%s: line %lld: image '%s' is not a regular file", P->name, (long long)lineno, P->path);
  return 0;
}

/* The index of image `file`, adding it (and checking it exists) when first seen. */
static int64_t image_index(cap_parse *P, char *file, int64_t lineno) {
  embr_captions *c = P->out;
  size_t i = (size_t)fnv1a(file) & (P->cap - 1);
  for (; P->slot[i]; i = (i + 1) & (P->cap - 1))
    if (!strcmp(c->image[P->slot[i] - 1], file)) return P->slot[i] - 1;
  if (P->dir) {
    int rc = check_exists(P, file, lineno);
    if (rc) return rc;
  }
  c->image[c->n_images] = file;
  P->slot[i] = ++c->n_images;
  return c->n_images - 1;
}

static int line_error(const cap_parse *P, int64_t lineno, const char *what) {
  return embr_error(EMBR_EFORMAT, "%s: line %lld: %s (expected FILE<TAB>CAPTION)", P->name, (long long)lineno, what);
}

/* Checks the line's bytes and splits it at its one tab into *file and *caption. */
static int split_pair(const cap_parse *P, char *s, char *e, int64_t lineno, char **file, char **caption) {
  size_t bad = bad_byte(s, (size_t)(e - s));
  if (bad) {
    unsigned char b = (unsigned char)s[bad - 1];
    return embr_error(EMBR_EFORMAT, "%s: line %lld, byte %zu: %s", P->name, (long long)lineno, bad,
                      b == 0 ? "NUL byte (not a text file?)" : b < 0x80 ? "control byte" : "not UTF-8 text");
  }
  char *tab = memchr(s, '\t', (size_t)(e - s));
  if (!tab) return line_error(P, lineno, "no tab");
  if (memchr(tab + 1, '\t', (size_t)(e - tab - 1))) return line_error(P, lineno, "more than one tab");
  if (tab == s) return line_error(P, lineno, "empty file name");
  *tab = '\0';
  char *a = tab + 1;
  while (a < e && embr__is_space((unsigned char)*a)) a++;
  while (e > a && embr__is_space((unsigned char)e[-1])) e--;
  if (a == e) return line_error(P, lineno, "empty caption");
  *e = '\0';
  if (leaves_folder(s)) {
    char q[40];
    return embr_error(EMBR_EFORMAT, "%s: line %lld: '%s' leaves the data folder (absolute paths and '..' are refused)",
                      P->name, (long long)lineno, embr__quote(q, s, strlen(s)));
  }
  *file = s;
  *caption = a;
  return 0;
}

static int parse_lines(cap_parse *P, char *buf, size_t len) {
  embr_captions *c = P->out;
  embr__lines L;
  const char *cs, *ce;
  size_t skip = len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3) ? 3 : 0; /* a byte-order mark */
  embr__lines_init(&L, (unsigned char *)buf + skip, len - skip);
  while (embr__lines_next(&L, &cs, &ce)) {
    char *s = (char *)cs, *e = (char *)ce, *file = NULL, *caption = NULL;
    if (embr__all_space(s, (size_t)(e - s))) continue;
    *e = '\0'; /* the line end (or the terminator past the buffer) */
    int rc = split_pair(P, s, e, L.lineno, &file, &caption);
    if (rc) return rc;
    int64_t img = image_index(P, file, L.lineno);
    if (img < 0) return (int)img;
    c->text[c->n] = caption;
    c->image_index[c->n] = img;
    c->line[c->n++] = L.lineno;
  }
  if (c->n == 0) return embr_error(EMBR_EFORMAT, "%s: no pairs (expected FILE<TAB>CAPTION lines)", P->name);
  return 0;
}

/* image_path: dir "/" image in one block (or the image strings themselves without a dir). */
static int join_paths(embr_captions *c, const char *dir) {
  c->image_path = embr_alloc(sizeof(char *) * (size_t)(c->n_images ? c->n_images : 1));
  if (!c->image_path) return EMBR_ENOMEM;
  size_t total = 0;
  for (int64_t i = 0; dir && i < c->n_images; i++) total += strlen(dir) + strlen(c->image[i]) + 2;
  if (dir && !(c->pbuf = embr_alloc(total))) return EMBR_ENOMEM;
  char *p = c->pbuf;
  for (int64_t i = 0; i < c->n_images; i++) {
    if (!dir) {
      c->image_path[i] = c->image[i];
      continue;
    }
    c->image_path[i] = p;
    p += sprintf(p, "%s/%s", dir, c->image[i]) + 1;
  }
  return 0;
}

static int alloc_tables(cap_parse *P, const void *buf, size_t len) {
  embr_captions *c = P->out;
  size_t lines = embr__count_newlines(buf, len) + 1;
  for (P->cap = 16; P->cap < 2 * lines; P->cap *= 2) {}
  c->buf = embr_alloc(len + 1);
  c->text = embr_alloc(sizeof(char *) * lines);
  c->image = embr_alloc(sizeof(char *) * lines);
  c->image_index = embr_alloc(sizeof(int64_t) * lines);
  c->line = embr_alloc(sizeof(int64_t) * lines);
  P->slot = embr_calloc(P->cap, sizeof(int64_t));
  if (!c->buf || !c->text || !c->image || !c->image_index || !c->line || !P->slot)
    return embr_error(EMBR_ENOMEM, "%s: out of memory for %zu lines", P->name, lines);
  if (len) memcpy(c->buf, buf, len);
  c->buf[len] = '\0';
  return 0;
}

embr_status embr_captions_read_mem(const void *buf, size_t len, const char *name, const char *dir, embr_captions *out) {
  if (!out) return embr_error(EMBR_EINVAL, "embr_captions_read_mem: out is NULL");
  memset(out, 0, sizeof *out);
  if (!name) name = "(memory)";
  if (len > 0 && !buf) return embr_error(EMBR_EINVAL, "%s: no buffer", name);
  if ((uint64_t)len > (uint64_t)EMBR_CAPTIONS_MAX_BYTES)
    return embr_error(EMBR_EFORMAT, "%s: %zu bytes, more than the %lld a pairs file may hold", name, len,
                      (long long)EMBR_CAPTIONS_MAX_BYTES);
  cap_parse P = {out, name, dir, NULL, 0, NULL, 0};
  int rc = alloc_tables(&P, buf, len);
  if (!rc) rc = parse_lines(&P, out->buf, len);
  if (!rc && join_paths(out, dir)) rc = embr_error(EMBR_ENOMEM, "%s: out of memory", name);
  embr_free(P.slot);
  embr_free(P.path);
  if (rc) embr_captions_free(out);
  return rc;
}

embr_status embr_captions_read(const char *path, const char *dir, embr_captions *out) {
  if (!out) return embr_error(EMBR_EINVAL, "embr_captions_read: out is NULL");
  memset(out, 0, sizeof *out);
  if (!path) return embr_error(EMBR_EINVAL, "embr_captions_read: path is NULL");
  embr__filemap fm;
  /* The cap also bounds what is read from a pipe or device before the size check. */
  int rc = embr__filemap_open(&fm, path, (size_t)EMBR_CAPTIONS_MAX_BYTES);
  if (rc) return rc;
  rc = embr_captions_read_mem(fm.data, fm.len, path, dir, out);
  embr__filemap_close(&fm);
  return rc;
}

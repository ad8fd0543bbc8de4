/* Image datasets: a folder of class sub-folders, a flat folder of images or a list file of image
 * paths (files decoded on demand), or MNIST idx files (all pixels held in memory). A dataset is
 * read-only after it is opened, so any number of threads may read items at once. */
#include "core/natural.h"
#include "embr/lines.h"
#include "image/image_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <zlib.h>

typedef struct strlist {
  char **s;
  size_t n, cap;
} strlist;

struct embr_dataset {
  int mnist;           /* 0: folder */
  char *root;          /* folder: the folder given; list: the list's folder, NULL for the current one */
  int n_classes;
  char **class_names;
  int64_t n;
  int32_t *labels;
  char **names;        /* per item: path relative to root (a list's absolute paths as is), or "mnist-<i>" */
  uint8_t *pixels;     /* MNIST: n * rows * cols */
  int rows, cols;
};

/* ---- small helpers ---------------------------------------------------------------------------- */

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

static char *join_path(const char *a, const char *b) {
  size_t na = strlen(a), nb = strlen(b);
  char *p = malloc(na + nb + 2);
  if (!p) return NULL;
  memcpy(p, a, na);
  p[na] = '/';
  memcpy(p + na + 1, b, nb + 1);
  return p;
}

static int strlist_push(strlist *l, const char *s) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 16;
    char **ns = realloc(l->s, cap * sizeof *ns);
    if (!ns) return EMBR_ENOMEM;
    l->s = ns;
    l->cap = cap;
  }
  if (!(l->s[l->n] = dup_str(s))) return EMBR_ENOMEM;
  l->n++;
  return 0;
}

static void strlist_free(strlist *l) {
  for (size_t i = 0; i < l->n; i++) free(l->s[i]);
  free(l->s);
  memset(l, 0, sizeof *l);
}

/* Natural order (s2 before s10), as people number their folders and photos and as plot legends
 * order labels; names equal but for leading zeros fall back to byte order, so the order is total. */
static int cmp_name(const void *pa, const void *pb) {
  const char *a = *(char *const *)pa, *b = *(char *const *)pb;
  int c = embr__natural_cmp(a, b);
  return c ? c : strcmp(a, b);
}

void embr_dataset_free(embr_dataset *ds) {
  if (!ds) return;
  for (int c = 0; c < ds->n_classes; c++) free(ds->class_names ? ds->class_names[c] : NULL);
  for (int64_t i = 0; ds->names && i < ds->n; i++) free(ds->names[i]);
  free(ds->class_names);
  free(ds->names);
  free(ds->labels);
  free(ds->pixels);
  free(ds->root);
  free(ds);
}

/* ---- folder of class folders ---------------------------------------------------------------------- */

static int is_image_name(const char *name) {
  static const char *const exts[] = {".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".pnm"};
  const char *dot = strrchr(name, '.');
  if (!dot) return 0;
  for (size_t i = 0; i < sizeof exts / sizeof *exts; i++)
    if (strcasecmp(dot, exts[i]) == 0) return 1;
  return 0;
}

/* Naturally sorted names of the non-hidden entries of `dir` that are folders (want_dirs) or image files. */
static int list_dir(const char *dir, int want_dirs, strlist *out) {
  DIR *d = opendir(dir);
  if (!d) return embr_error(EMBR_EIO, "%s: cannot list: %s", dir, strerror(errno));
  int rc = 0;
  struct dirent *e;
  while (!rc && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue; /* hidden, "." and ".." */
    if (!want_dirs && !is_image_name(e->d_name)) continue;
    char *p = join_path(dir, e->d_name);
    struct stat st;
    if (!p) rc = embr_error(EMBR_ENOMEM, "%s: out of memory", dir);
    else if (stat(p, &st) == 0 && (want_dirs ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)) &&
             strlist_push(out, e->d_name))
      rc = embr_error(EMBR_ENOMEM, "%s: out of memory", dir);
    free(p);
  }
  closedir(d);
  if (!rc && out->n) qsort(out->s, out->n, sizeof *out->s, cmp_name);
  return rc;
}

/* Adds the images of class folder `cls` (label c) to the item lists. */
static int add_class(embr_dataset *ds, const char *cls, int c, strlist *names, int32_t **labels, size_t *cap) {
  char *dir = join_path(ds->root, cls);
  strlist files = {0};
  int rc = dir ? list_dir(dir, 0, &files) : embr_error(EMBR_ENOMEM, "out of memory");
  if (!rc && files.n == 0) rc = embr_error(EMBR_EFORMAT, "%s: class folder has no images (png, jpg, pgm, ppm)", dir);
  for (size_t i = 0; !rc && i < files.n; i++) {
    char *rel = join_path(cls, files.s[i]);
    if (!rel || strlist_push(names, rel)) rc = embr_error(EMBR_ENOMEM, "%s: out of memory", dir);
    free(rel);
    if (!rc && names->n > *cap) {
      size_t ncap = *cap ? 2 * *cap : 256;
      int32_t *nl = realloc(*labels, ncap * sizeof *nl);
      if (!nl) rc = embr_error(EMBR_ENOMEM, "%s: out of memory", dir);
      else *labels = nl, *cap = ncap;
    }
    if (!rc) (*labels)[names->n - 1] = c;
  }
  strlist_free(&files);
  free(dir);
  return rc;
}

static int open_folder(embr_dataset *ds, const char *dir) {
  struct stat st;
  if (stat(dir, &st) != 0)
    return embr_error(errno == ENOENT ? EMBR_ENOTFOUND : EMBR_EIO, "%s: %s", dir, strerror(errno));
  if (!S_ISDIR(st.st_mode)) return embr_error(EMBR_EINVAL, "%s: not a folder", dir);
  if (!(ds->root = dup_str(dir))) return embr_error(EMBR_ENOMEM, "out of memory");
  strlist classes = {0}, names = {0};
  int32_t *labels = NULL;
  size_t cap = 0;
  int rc = list_dir(dir, 1, &classes);
  if (!rc && classes.n == 0) rc = embr_error(EMBR_EFORMAT, "%s: no class folders", dir);
  if (!rc && classes.n > 1000000) rc = embr_error(EMBR_EFORMAT, "%s: too many class folders", dir);
  for (size_t c = 0; !rc && c < classes.n; c++) rc = add_class(ds, classes.s[c], (int)c, &names, &labels, &cap);
  if (rc) {
    strlist_free(&classes);
    strlist_free(&names);
    free(labels);
    return rc;
  }
  ds->class_names = classes.s;
  ds->n_classes = (int)classes.n;
  ds->names = names.s;
  ds->n = (int64_t)names.n;
  ds->labels = labels;
  return 0;
}

embr_status embr_dataset_open_folder(const char *dir, embr_dataset **out) {
  if (!out) return embr_error(EMBR_EINVAL, "dataset: no output pointer");
  *out = NULL;
  if (!dir || !*dir) return embr_error(EMBR_EINVAL, "dataset: empty folder name");
  embr_dataset *ds = calloc(1, sizeof *ds);
  if (!ds) return embr_error(EMBR_ENOMEM, "out of memory");
  int rc = open_folder(ds, dir);
  if (rc) {
    embr_dataset_free(ds);
    return rc;
  }
  *out = ds;
  return 0;
}

/* ---- single-class sources: a flat folder, a list file ------------------------------------------- */

/* Gives ds its one class, named `name`, and n labels of 0. */
static int one_class(embr_dataset *ds, const char *name, int64_t n) {
  ds->class_names = calloc(1, sizeof *ds->class_names);
  ds->labels = calloc((size_t)(n ? n : 1), sizeof *ds->labels);
  if (!ds->class_names || !ds->labels || !(ds->class_names[0] = dup_str(name)))
    return embr_error(EMBR_ENOMEM, "%s: out of memory", name);
  ds->n_classes = 1;
  return 0;
}

static int open_flat(embr_dataset *ds, const char *dir) {
  struct stat st;
  if (stat(dir, &st) != 0)
    return embr_error(errno == ENOENT ? EMBR_ENOTFOUND : EMBR_EIO, "%s: %s", dir, strerror(errno));
  if (!S_ISDIR(st.st_mode)) return embr_error(EMBR_EINVAL, "%s: not a folder", dir);
  if (!(ds->root = dup_str(dir))) return embr_error(EMBR_ENOMEM, "out of memory");
  strlist files = {0};
  int rc = list_dir(dir, 0, &files);
  if (!rc && files.n == 0) rc = embr_error(EMBR_EFORMAT, "%s: no images (png, jpg, pgm, ppm) in this folder", dir);
  if (rc) {
    strlist_free(&files);
    return rc;
  }
  ds->names = files.s;
  ds->n = (int64_t)files.n;
  return one_class(ds, dir, ds->n);
}

embr_status embr_dataset_open_flat(const char *dir, embr_dataset **out) {
  if (!out) return embr_error(EMBR_EINVAL, "dataset: no output pointer");
  *out = NULL;
  if (!dir || !*dir) return embr_error(EMBR_EINVAL, "dataset: empty folder name");
  embr_dataset *ds = calloc(1, sizeof *ds);
  if (!ds) return embr_error(EMBR_ENOMEM, "out of memory");
  int rc = open_flat(ds, dir);
  if (rc) {
    embr_dataset_free(ds);
    return rc;
  }
  *out = ds;
  return 0;
}

/* The file an item's name stands for: the name itself when absolute or when there is no root. */
static char *item_path(const embr_dataset *ds, const char *name) {
  return !ds->root || name[0] == '/' ? dup_str(name) : join_path(ds->root, name);
}

/* Whether the file at `p` starts like an image embr_image_decode knows (PNG, JPEG, PNM); EMBR_EIO
 * when it cannot be read. */
static int sniff_image(const char *p, int *is_image) {
  unsigned char b[8];
  FILE *f = fopen(p, "rb");
  if (!f) return EMBR_EIO;
  size_t n = fread(b, 1, sizeof b, f);
  int bad = ferror(f);
  fclose(f);
  if (bad) return EMBR_EIO;
  static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  *is_image = (n == 8 && memcmp(b, png_sig, 8) == 0) || (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) ||
              (n >= 3 && b[0] == 'P' && b[1] >= '2' && b[1] <= '6' && b[1] != '4' &&
               (strchr(" \t\r\n\v\f#", b[2]) != NULL && b[2] != '\0'));
  return 0;
}

/* Checks line k's entry (from 0) of list `list`: present, a regular file, an image. */
static int check_entry(const embr_dataset *ds, const char *list, int64_t k, const char *name) {
  long long line = (long long)k + 1;
  if (!*name) return embr_error(EMBR_EFORMAT, "%s: line %lld: empty line (one image path per line expected)", list, line);
  char *p = item_path(ds, name);
  if (!p) return embr_error(EMBR_ENOMEM, "%s: out of memory", list);
  struct stat st;
  int rc = 0, is_image = 0;
  if (stat(p, &st) != 0)
    rc = embr_error(errno == ENOENT || errno == ENOTDIR ? EMBR_ENOTFOUND : EMBR_EIO, "%s: line %lld: %s: %s", list, line, p,
                    strerror(errno));
  else if (!S_ISREG(st.st_mode))
    rc = embr_error(EMBR_EINVAL, "%s: line %lld: %s: not a regular file", list, line, p);
  else if (sniff_image(p, &is_image))
    rc = embr_error(EMBR_EIO, "%s: line %lld: %s: cannot read: %s", list, line, p, strerror(errno));
  else if (!is_image)
    rc = embr_error(EMBR_EFORMAT, "%s: line %lld: %s: not a PNG, JPEG, PGM or PPM image", list, line, p);
  free(p);
  return rc;
}

static int open_list(embr_dataset *ds, const char *path) {
  embr_lines l;
  int rc = embr_lines_read(path, -1, "paths", "images", &l);
  if (rc) return rc;
  if (l.n == 0) rc = embr_error(EMBR_EFORMAT, "%s: no image paths (one per line expected)", path);
  /* Relative entries are relative to the list's folder; "-" and a bare file name: the current one. */
  const char *slash = strcmp(path, "-") ? strrchr(path, '/') : NULL;
  if (!rc && slash) {
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    if (!(ds->root = malloc(n + 1))) rc = embr_error(EMBR_ENOMEM, "out of memory");
    else memcpy(ds->root, path, n), ds->root[n] = '\0';
  }
  if (!rc && !(ds->names = calloc((size_t)l.n, sizeof *ds->names))) rc = embr_error(EMBR_ENOMEM, "%s: out of memory", path);
  for (int64_t k = 0; !rc && k < l.n; k++) {
    rc = check_entry(ds, path, k, l.line[k]);
    if (!rc && !(ds->names[k] = dup_str(l.line[k]))) rc = embr_error(EMBR_ENOMEM, "%s: out of memory", path);
    if (!rc) ds->n = k + 1; /* names[0..n) are owned, for embr_dataset_free */
  }
  if (!rc) rc = one_class(ds, path, ds->n);
  embr_lines_free(&l);
  return rc;
}

embr_status embr_dataset_open_list(const char *path, embr_dataset **out) {
  if (!out) return embr_error(EMBR_EINVAL, "dataset: no output pointer");
  *out = NULL;
  if (!path || !*path) return embr_error(EMBR_EINVAL, "dataset: empty list file name");
  embr_dataset *ds = calloc(1, sizeof *ds);
  if (!ds) return embr_error(EMBR_ENOMEM, "out of memory");
  int rc = open_list(ds, path);
  if (rc) {
    embr_dataset_free(ds);
    return rc;
  }
  *out = ds;
  return 0;
}

embr_status embr_dataset_open_paths(const char *root, const char *const *paths, int64_t n, const char *name,
                                    embr_dataset **out) {
  if (!out) return embr_error(EMBR_EINVAL, "dataset: no output pointer");
  *out = NULL;
  if (!name) name = "images";
  if (!paths || n < 1) return embr_error(EMBR_EINVAL, "%s: no image paths", name);
  for (int64_t k = 0; k < n; k++)
    if (!paths[k] || !*paths[k]) return embr_error(EMBR_EINVAL, "%s: image %lld: empty path", name, (long long)k + 1);
  embr_dataset *ds = calloc(1, sizeof *ds);
  int rc = ds ? 0 : embr_error(EMBR_ENOMEM, "out of memory");
  if (!rc && root && !(ds->root = dup_str(root))) rc = embr_error(EMBR_ENOMEM, "out of memory");
  if (!rc && !(ds->names = calloc((size_t)n, sizeof *ds->names))) rc = embr_error(EMBR_ENOMEM, "%s: out of memory", name);
  for (int64_t k = 0; !rc && k < n; k++) {
    if (!(ds->names[k] = dup_str(paths[k]))) rc = embr_error(EMBR_ENOMEM, "%s: out of memory", name);
    else ds->n = k + 1; /* names[0..n) are owned, for embr_dataset_free */
  }
  if (!rc) rc = one_class(ds, name, ds->n);
  if (rc) {
    embr_dataset_free(ds);
    return rc;
  }
  *out = ds;
  return 0;
}

embr_status embr_dataset_open(const char *path, embr_dataset **out) {
  if (!out) return embr_error(EMBR_EINVAL, "dataset: no output pointer");
  *out = NULL;
  if (!path || !*path) return embr_error(EMBR_EINVAL, "dataset: empty path");
  if (strcmp(path, "-") == 0) return embr_dataset_open_list(path, out);
  struct stat st;
  if (stat(path, &st) != 0)
    return embr_error(errno == ENOENT || errno == ENOTDIR ? EMBR_ENOTFOUND : EMBR_EIO, "%s: %s", path, strerror(errno));
  if (!S_ISDIR(st.st_mode)) return embr_dataset_open_list(path, out);
  strlist sub = {0};
  int rc = list_dir(path, 1, &sub);
  size_t n_sub = sub.n;
  strlist_free(&sub);
  if (rc) return rc;
  return n_sub ? embr_dataset_open_folder(path, out) : embr_dataset_open_flat(path, out);
}

/* ---- MNIST idx ------------------------------------------------------------------------------------- */

#define IDX_IMAGES_MAGIC 2051u /* 00 00 08 03: unsigned bytes, 3 dimensions */
#define IDX_LABELS_MAGIC 2049u /* 00 00 08 01: unsigned bytes, 1 dimension */
#define IDX_MAX_ITEMS 100000000u

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads exactly `n` bytes after the header, growing the buffer as data arrives so a lying header
 * cannot make us allocate more than the file holds; a byte more than expected is an error too. */
static int gz_read_body(gzFile f, const char *path, size_t n, uint8_t **out) {
  size_t cap = n < (1u << 20) ? n : (1u << 20), got = 0;
  uint8_t *buf = malloc(cap ? cap : 1);
  if (!buf) return embr_error(EMBR_ENOMEM, "%s: out of memory", path);
  while (got < n) {
    if (got == cap) {
      size_t ncap = cap > n / 2 ? n : 2 * cap;
      uint8_t *nb = realloc(buf, ncap);
      if (!nb) {
        free(buf);
        return embr_error(EMBR_ENOMEM, "%s: out of memory", path);
      }
      buf = nb;
      cap = ncap;
    }
    size_t want = cap - got > (1u << 30) ? (1u << 30) : cap - got;
    int r = gzread(f, buf + got, (unsigned)want);
    if (r <= 0) {
      free(buf);
      return embr_error(EMBR_EFORMAT, "%s: truncated: %zu bytes of data, the header says %zu", path, got, n);
    }
    got += (size_t)r;
  }
  unsigned char extra;
  if (gzread(f, &extra, 1) != 0) {
    free(buf);
    return embr_error(EMBR_EFORMAT, "%s: longer than its header says (%zu bytes of data)", path, n);
  }
  *out = buf;
  return 0;
}

/* Opens an idx file (plain or gzip: gzread passes plain files through) and checks its header:
 * the magic, then `ndims` big-endian sizes into dims. */
static int idx_open(const char *path, uint32_t magic, int ndims, uint32_t *dims, gzFile *out) {
  gzFile f = gzopen(path, "rb");
  if (!f)
    return embr_error(errno == ENOENT ? EMBR_ENOTFOUND : EMBR_EIO, "%s: cannot open: %s", path,
                      errno ? strerror(errno) : "out of memory");
  unsigned char hd[16];
  int want = 4 + 4 * ndims, got = gzread(f, hd, (unsigned)want);
  int rc = 0;
  if (got != want) rc = embr_error(EMBR_EFORMAT, "%s: truncated idx header", path);
  else if (be32(hd) != magic) rc = embr_error(EMBR_EFORMAT, "%s: bad magic %u, expected %u (idx %s file)", path, be32(hd), magic,
                                               magic == IDX_IMAGES_MAGIC ? "images" : "labels");
  for (int i = 0; !rc && i < ndims; i++) dims[i] = be32(hd + 4 + 4 * i);
  if (rc) {
    gzclose(f);
    return rc;
  }
  *out = f;
  return 0;
}

static int read_idx_images(embr_dataset *ds, const char *path) {
  uint32_t d[3];
  gzFile f;
  int rc = idx_open(path, IDX_IMAGES_MAGIC, 3, d, &f);
  if (rc) return rc;
  if (d[0] < 1 || d[0] > IDX_MAX_ITEMS) rc = embr_error(EMBR_EFORMAT, "%s: %u images, expected 1..%u", path, d[0], IDX_MAX_ITEMS);
  else if (d[1] < 1 || d[2] < 1 || d[1] > EMBR_IMAGE_MAX_SIDE || d[2] > EMBR_IMAGE_MAX_SIDE)
    rc = embr_error(EMBR_EFORMAT, "%s: image size %ux%u out of range", path, d[1], d[2]);
  size_t n = 0;
  if (!rc) rc = embr_size_mul((size_t)d[0], (size_t)d[1] * d[2], &n);
  if (!rc) rc = gz_read_body(f, path, n, &ds->pixels);
  gzclose(f);
  if (rc) return rc;
  ds->n = d[0];
  ds->rows = (int)d[1];
  ds->cols = (int)d[2];
  return 0;
}

static int read_idx_labels(embr_dataset *ds, const char *path) {
  uint32_t d[1];
  gzFile f;
  uint8_t *raw = NULL;
  int rc = idx_open(path, IDX_LABELS_MAGIC, 1, d, &f);
  if (rc) return rc;
  if ((int64_t)d[0] != ds->n) rc = embr_error(EMBR_EFORMAT, "%s: %u labels for %lld images", path, d[0], (long long)ds->n);
  if (!rc) rc = gz_read_body(f, path, d[0], &raw);
  gzclose(f);
  if (!rc && !(ds->labels = malloc((size_t)ds->n * sizeof *ds->labels))) rc = embr_error(EMBR_ENOMEM, "%s: out of memory", path);
  for (int64_t i = 0; !rc && i < ds->n; i++) {
    ds->labels[i] = raw[i];
    if (raw[i] >= ds->n_classes) ds->n_classes = raw[i] + 1;
  }
  free(raw);
  return rc;
}

static int mnist_names(embr_dataset *ds) {
  ds->class_names = calloc((size_t)ds->n_classes, sizeof *ds->class_names);
  ds->names = calloc((size_t)ds->n, sizeof *ds->names);
  if (!ds->class_names || !ds->names) return embr_error(EMBR_ENOMEM, "out of memory");
  char buf[32];
  for (int c = 0; c < ds->n_classes; c++) {
    snprintf(buf, sizeof buf, "%d", c);
    if (!(ds->class_names[c] = dup_str(buf))) return embr_error(EMBR_ENOMEM, "out of memory");
  }
  for (int64_t i = 0; i < ds->n; i++) {
    snprintf(buf, sizeof buf, "mnist-%lld", (long long)i);
    if (!(ds->names[i] = dup_str(buf))) return embr_error(EMBR_ENOMEM, "out of memory");
  }
  return 0;
}

static int file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* The images file inside a folder: train preferred, t10k when only it exists; plain or .gz. */
static char *find_images_in(const char *dir) {
  static const char *const cand[] = {"train-images-idx3-ubyte", "train-images-idx3-ubyte.gz",
                                     "t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"};
  for (size_t i = 0; i < sizeof cand / sizeof *cand; i++) {
    char *p = join_path(dir, cand[i]);
    if (!p || file_exists(p)) return p;
    free(p);
  }
  return NULL;
}

/* The labels file beside an images file: "images-idx3" replaced by "labels-idx1" in the last path
 * component, also tried with ".gz" added or removed. */
static char *labels_path_for(const char *images) {
  const char *base = strrchr(images, '/');
  base = base ? base + 1 : images;
  const char *hit = strstr(base, "images-idx3");
  if (!hit) return NULL;
  size_t n = strlen(images), at = (size_t)(hit - images);
  char *p = malloc(n + 4);
  if (!p) return NULL;
  memcpy(p, images, n + 1);
  memcpy(p + at, "labels-idx1", 11);
  if (file_exists(p)) return p;
  if (n > 3 && strcmp(p + n - 3, ".gz") == 0) p[n - 3] = '\0';
  else memcpy(p + n, ".gz", 4);
  if (file_exists(p)) return p;
  memcpy(p, images, n + 1);
  memcpy(p + at, "labels-idx1", 11);
  return p; /* missing: the open reports it */
}

static int open_mnist(embr_dataset *ds, const char *path) {
  struct stat st;
  if (stat(path, &st) != 0)
    return embr_error(errno == ENOENT ? EMBR_ENOTFOUND : EMBR_EIO, "%s: %s", path, strerror(errno));
  char *images = S_ISDIR(st.st_mode) ? find_images_in(path) : dup_str(path);
  if (!images)
    return embr_error(S_ISDIR(st.st_mode) ? EMBR_ENOTFOUND : EMBR_ENOMEM,
                      "%s: no {train,t10k}-images-idx3-ubyte[.gz] in this folder", path);
  char *labels = labels_path_for(images);
  int rc = labels ? 0 : embr_error(EMBR_EINVAL, "%s: cannot tell the labels file (name has no \"images-idx3\")", images);
  if (!rc) rc = read_idx_images(ds, images);
  if (!rc) rc = read_idx_labels(ds, labels);
  if (!rc) rc = mnist_names(ds);
  free(images);
  free(labels);
  return rc;
}

embr_status embr_dataset_open_mnist(const char *path, embr_dataset **out) {
  if (!out) return embr_error(EMBR_EINVAL, "dataset: no output pointer");
  *out = NULL;
  if (!path || !*path) return embr_error(EMBR_EINVAL, "dataset: empty path");
  embr_dataset *ds = calloc(1, sizeof *ds);
  if (!ds) return embr_error(EMBR_ENOMEM, "out of memory");
  ds->mnist = 1;
  int rc = open_mnist(ds, path);
  if (rc) {
    embr_dataset_free(ds);
    return rc;
  }
  *out = ds;
  return 0;
}

/* ---- queries ----------------------------------------------------------------------------------------- */

int64_t embr_dataset_size(const embr_dataset *ds) { return ds ? ds->n : 0; }

int embr_dataset_classes(const embr_dataset *ds) { return ds ? ds->n_classes : 0; }

const char *embr_dataset_class_name(const embr_dataset *ds, int c) {
  return ds && c >= 0 && c < ds->n_classes ? ds->class_names[c] : NULL;
}

int embr_dataset_label(const embr_dataset *ds, int64_t i) {
  return ds && i >= 0 && i < ds->n ? ds->labels[i] : -1;
}

const char *embr_dataset_item_name(const embr_dataset *ds, int64_t i) {
  return ds && i >= 0 && i < ds->n ? ds->names[i] : NULL;
}

embr_status embr_dataset_image(const embr_dataset *ds, int64_t i, embr_image *out) {
  if (!out) return embr_error(EMBR_EINVAL, "dataset: no output image");
  memset(out, 0, sizeof *out);
  if (!ds || i < 0 || i >= ds->n)
    return embr_error(EMBR_EINVAL, "dataset: item %lld out of range (size %lld)", (long long)i,
                      (long long)embr_dataset_size(ds));
  if (!ds->mnist) {
    char *p = item_path(ds, ds->names[i]);
    if (!p) return embr_error(EMBR_ENOMEM, "out of memory");
    int rc = embr_image_read(p, out);
    free(p);
    return rc;
  }
  int rc = embr__image_alloc(out, ds->cols, ds->rows, 1, ds->names[i]);
  if (rc) return rc;
  size_t n = (size_t)ds->rows * ds->cols;
  memcpy(out->px, ds->pixels + (size_t)i * n, n);
  return 0;
}

/* Error reporting, input loading and all-or-nothing output for the commands. */
#include "common.h"

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_fail(int status) {
  const char *msg = embr_last_error();
  return cli_error("%s", *msg ? msg : embr_strerror(status));
}

/* The CSV/TSV reader drops pandas' index column (empty first header cell, values 0..n-1). That is
 * the right reading, but the user should know a column went: the header then has one field more
 * than the matrix has columns. */
static void note_dropped_index(const char *path, embr_format f, const embr_matrix *m) {
  FILE *fp = strcmp(path, "-") ? fopen(path, "rb") : NULL;
  if (!fp) return;
  char head[1 << 16];
  size_t len = fread(head, 1, sizeof head, fp);
  fclose(fp);
  if (f == EMBR_FORMAT_AUTO) f = embr_format_detect(head, len, path);
  char sep = f == EMBR_FORMAT_CSV ? ',' : f == EMBR_FORMAT_TSV ? '\t' : 0;
  if (!sep || !len || head[0] != sep) return;
  int64_t fields = 1;
  for (size_t i = 0; i < len && head[i] != '\n' && head[i] != '\r'; i++) fields += head[i] == sep;
  if (fields == m->dim + 1)
    fprintf(stderr, "embr %s: note: %s: the first column is a row index (as pandas' to_csv writes it) and was skipped\n",
            cli_name(), path);
}

int cli_read_matrix_any(const char *path, const char *format, embr_matrix *m) {
  embr_format f = EMBR_FORMAT_AUTO;
  if (format && embr_format_parse(format, &f) != 0) return cli_usage_error("%s", embr_last_error());
  int rc = embr_matrix_read(path, f, m);
  if (!rc) note_dropped_index(path, f, m);
  return rc ? cli_fail(rc) : EXIT_OK;
}

int cli_read_matrix(const char *path, const char *format, embr_matrix *m) {
  int rc = cli_read_matrix_any(path, format, m);
  if (!rc && m->n == 0) {
    rc = cli_error("%s: no rows (an empty %lld-column matrix); this command needs at least one", path, (long long)m->dim);
    embr_matrix_free(m);
  }
  return rc;
}

int cli_check_output(const char *path) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return cli_error("%s: is a directory, expected a file name", path);
  char *copy = strdup(path);
  if (!copy) return cli_fail(embr_error(EMBR_ENOMEM, "out of memory"));
  const char *dir = dirname(copy);
  int rc = EXIT_OK;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
    rc = cli_error("%s: directory '%s' does not exist", path, dir);
  else if (access(dir, W_OK) != 0)
    rc = cli_error("%s: cannot write in '%s': %s", path, dir, strerror(errno));
  free(copy);
  return rc;
}

/* The name a path will have once created: its directory resolved (symlinks, "..", "//"),
 * then the last component. NULL when the directory cannot be resolved. */
static char *resolved_name(const char *path) {
  char *d = strdup(path), *b = strdup(path), *out = NULL;
  char *dir = d ? realpath(dirname(d), NULL) : NULL;
  if (dir && b) {
    const char *base = basename(b);
    size_t n = strlen(dir) + strlen(base) + 2;
    if ((out = malloc(n))) snprintf(out, n, "%s/%s", dir, base);
  }
  free(dir);
  free(d);
  free(b);
  return out;
}

int cli_same_file(const char *a, const char *b) {
  if (!a || !b || strcmp(a, "-") == 0 || strcmp(b, "-") == 0) return 0;
  struct stat sa, sb;
  int ea = stat(a, &sa) == 0, eb = stat(b, &sb) == 0;
  if (ea && eb) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  if (ea != eb) return 0; /* one exists, the other does not: two names */
  char *ra = resolved_name(a), *rb = resolved_name(b);
  int same = ra && rb ? strcmp(ra, rb) == 0 : strcmp(a, b) == 0;
  free(ra);
  free(rb);
  return same;
}

int cli_check_files(const cli_file *files, int n) {
  /* Clashes first: they are usage errors, whatever the state of the disk. */
  for (int i = 0; i < n; i++) {
    if (!files[i].path || !files[i].output) continue;
    for (int j = 0; j < n; j++) {
      if (j == i || !files[j].path || (files[j].output && j < i)) continue;
      if (!cli_same_file(files[i].path, files[j].path)) continue;
      if (files[j].output)
        return cli_usage_error("%s and %s name the same file '%s'; give each output its own name", files[i].flag,
                               files[j].flag, files[i].path);
      return cli_usage_error("output %s '%s' is the input %s; it would be overwritten, write the output elsewhere",
                             files[i].flag, files[i].path, files[j].flag);
    }
  }
  for (int i = 0; i < n; i++)
    if (files[i].path && files[i].output && cli_check_output(files[i].path)) return EXIT_ERR;
  return EXIT_OK;
}

/* Writers record messages naming the path they were given: the temporary one. Users must see
 * the name they asked for, so every occurrence is replaced (one place for every writer). */
static void rename_in_message(int rc, const char *tmp, const char *path) {
  const char *msg = embr_last_error();
  size_t tl = strlen(tmp), pl = strlen(path), len = strlen(msg);
  char *out = tl ? malloc(len / tl * pl + len + 1) : NULL, *o = out;
  if (!out) return;
  for (const char *p = msg; *p;) {
    if (strncmp(p, tmp, tl) == 0) {
      memcpy(o, path, pl);
      o += pl;
      p += tl;
    } else {
      *o++ = *p++;
    }
  }
  *o = '\0';
  embr_error(rc, "%s", out);
  free(out);
}

int cli_write_outputs(cli_output *outs, int n) {
  if (n < 1) return EXIT_OK;
  /* Commands refuse clashing names up front (cli_check_files); this guards the rest, since two
   * outputs renamed onto one file would silently lose one of them. */
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++)
      if (cli_same_file(outs[i].path, outs[j].path))
        return cli_usage_error("two outputs name the same file '%s'; give each output its own name", outs[i].path);
  for (int i = 0; i < n; i++)
    if (cli_check_output(outs[i].path)) return EXIT_ERR;
  char **tmp = calloc((size_t)n, sizeof *tmp);
  int rc = tmp ? 0 : EMBR_ENOMEM, i;
  for (i = 0; i < n && !rc; i++) {
    size_t len = strlen(outs[i].path) + 64;
    tmp[i] = malloc(len);
    if (!tmp[i]) {
      rc = EMBR_ENOMEM;
      break;
    }
    /* Same directory, so the final rename stays atomic; the extension is kept so writers that
     * pick a format by it still see the right one; the index keeps the names of one run apart. */
    const char *slash = strrchr(outs[i].path, '/'), *dot = strrchr(outs[i].path, '.');
    snprintf(tmp[i], len, "%s.partial-%ld-%d%s", outs[i].path, (long)getpid(), i,
             dot && (!slash || dot > slash) ? dot : "");
    rc = outs[i].write(tmp[i], outs[i].ctx);
    if (rc) rename_in_message(rc, tmp[i], outs[i].path);
  }
  for (int j = 0; j < n && !rc; j++) {
    if (rename(tmp[j], outs[j].path) != 0)
      rc = embr_error(EMBR_EIO, "%s: cannot rename into place: %s", outs[j].path, strerror(errno));
  }
  if (tmp) {
    for (int j = 0; j < n; j++) {
      if (tmp[j]) unlink(tmp[j]); /* no-op for the renamed ones */
      free(tmp[j]);
    }
    free(tmp);
  }
  return rc ? cli_fail(rc) : EXIT_OK;
}

void cli_json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
      case '"': fputs("\\\"", f); break;
      case '\\': fputs("\\\\", f); break;
      case '\n': fputs("\\n", f); break;
      case '\r': fputs("\\r", f); break;
      case '\t': fputs("\\t", f); break;
      default:
        if (*p < 0x20)
          fprintf(f, "\\u%04x", *p);
        else
          fputc(*p, f);
    }
  }
  fputc('"', f);
}

void cli_json_float(FILE *f, float v) {
  if (isfinite(v))
    fprintf(f, "%.9g", (double)v);
  else
    fputs("null", f);
}

int cli_write_search_ids(const char *path, const void *ctx) {
  const cli_search_out *r = ctx;
  return embr_ids_write_ivecs(path, r->ids, r->nq, r->k);
}

int cli_write_search_dist(const char *path, const void *ctx) {
  const cli_search_out *r = ctx;
  embr_matrix m = {r->nq, r->k, r->k, (float *)r->dist, NULL};
  return embr_matrix_write(path, EMBR_FORMAT_FVECS, &m);
}

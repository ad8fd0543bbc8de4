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

int cli_read_matrix(const char *path, const char *format, embr_matrix *m) {
  embr_format f = EMBR_FORMAT_AUTO;
  if (format && embr_format_parse(format, &f) != 0) return cli_usage_error("%s", embr_last_error());
  int rc = embr_matrix_read(path, f, m);
  return rc ? cli_fail(rc) : EXIT_OK;
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

int cli_write_outputs(cli_output *outs, int n) {
  if (n < 1) return EXIT_OK;
  for (int i = 0; i < n; i++)
    if (cli_check_output(outs[i].path)) return EXIT_ERR;
  char **tmp = calloc((size_t)n, sizeof *tmp);
  int rc = tmp ? 0 : EMBR_ENOMEM, i;
  for (i = 0; i < n && !rc; i++) {
    size_t len = strlen(outs[i].path) + 48;
    tmp[i] = malloc(len);
    if (!tmp[i]) {
      rc = EMBR_ENOMEM;
      break;
    }
    /* Same directory, so the final rename stays atomic; the extension is kept so writers that
     * pick a format by it still see the right one. */
    snprintf(tmp[i], len, "%s.partial-%ld%s", outs[i].path, (long)getpid(),
             strrchr(outs[i].path, '.') ? strrchr(outs[i].path, '.') : "");
    rc = outs[i].write(tmp[i], outs[i].ctx);
  }
  for (int j = 0; j < n && !rc; j++) {
    if (rename(tmp[j], outs[j].path) != 0) rc = embr_error(EMBR_EIO, "%s: cannot rename into place", outs[j].path);
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

/* Reading the per-point files shared by the map commands (plot, tsne): one string per line, and
 * coordinates from any matrix file or from a TSV map whose last column holds labels. */
#include "commands.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- one string per line ----------------------------------------------------------------------- */

void cli_lines_free(char **v, int64_t n) {
  if (!v) return;
  for (int64_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

/* Appends s[0..len) to a growing string list. */
static int lines_push(char ***v, int64_t *n, int64_t *cap, const char *s, size_t len) {
  if (*n == *cap) {
    int64_t nc = *cap ? 2 * *cap : 1024;
    char **nv = realloc(*v, sizeof **v * (size_t)nc);
    if (!nv) return EMBR_ENOMEM;
    *v = nv;
    *cap = nc;
  }
  char *copy = malloc(len + 1);
  if (!copy) return EMBR_ENOMEM;
  memcpy(copy, s, len);
  copy[len] = '\0';
  (*v)[(*n)++] = copy;
  return 0;
}

static size_t chomp(char *line, size_t len) {
  while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
  return len;
}

/* Reads `path` as one string per line ('\n' or "\r\n"; the last line needs no newline) and
 * checks there is one per point. `what` names them in messages ("labels"). */
int cli_read_lines(const char *path, const char *what, int64_t npoints, char ***out) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return cli_error("%s: cannot open: %s", path, strerror(errno));
  char **v = NULL, *line = NULL;
  int64_t n = 0, cap = 0;
  size_t lcap = 0;
  ssize_t len;
  int rc = 0;
  while (!rc && (len = getline(&line, &lcap, f)) >= 0)
    rc = lines_push(&v, &n, &cap, line, chomp(line, (size_t)len));
  int read_err = ferror(f);
  free(line);
  fclose(f);
  if (rc || read_err) {
    cli_lines_free(v, n);
    return cli_fail(rc ? embr_error(rc, "%s: out of memory", path)
                               : embr_error(EMBR_EIO, "%s: read failed", path));
  }
  if (n != npoints) {
    cli_lines_free(v, n);
    return cli_error("%s: %lld %s for %lld points (one per line expected)", path, (long long)n, what,
                     (long long)npoints);
  }
  *out = v;
  return EXIT_OK;
}

/* ---- TSV maps with a label column (what `embr tsne` writes): x <TAB> y [<TAB> z] <TAB> label ---- */

/* Splits a line at tabs in place; returns the field count (at most max). */
static int split_tabs(char *line, char **fields, int max) {
  int k = 0;
  for (char *p = line; k < max;) {
    fields[k++] = p;
    p = strchr(p, '\t');
    if (!p) break;
    *p++ = '\0';
  }
  return k;
}

static int count_tabs(const char *s) {
  int k = 0;
  for (; *s; s++) k += *s == '\t';
  return k;
}

/* 1 when s is a whole finite number (the C locale: the CLI never changes it). */
static int parse_number(const char *s, float *v) {
  char *end;
  while (*s == ' ') s++;
  if (!*s) return 0;
  errno = 0;
  double d = strtod(s, &end);
  while (*end == ' ') end++;
  if (*end || !isfinite(d) || fabs(d) > 3.4028234663852886e38) return 0;
  *v = (float)d;
  return 1;
}

enum { MAX_TSV_FIELDS = 64 };

typedef struct tsv_map {
  float *xy;        /* n rows of ncols numbers */
  int64_t n, cap;
  int ncols;        /* numeric columns */
  char **labels;
  int64_t nlabels, lcap;
} tsv_map;

/* 1 for a plain integer token ("7", "-12"): a class id, where coordinates print as decimals. */
static int is_integer_token(const char *s) {
  if (*s == '-' || *s == '+') s++;
  if (!*s) return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return 0;
  return 1;
}

/* Decides from the first line (a header when its first field is not a number) and the first data
 * line whether the last column holds labels: when the header names it "label", when the first
 * data row's last field is not a number, or when it is an integer after a decimal x (digit classes
 * after t-SNE coordinates: "12.34567<TAB>-3.210987<TAB>7"). Otherwise it is one more coordinate. */
static void tsv_label_column(const char *path, int *has_label) {
  *has_label = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return; /* the matrix reader reports it */
  char *line = NULL, *fields[MAX_TSV_FIELDS];
  size_t cap = 0;
  ssize_t len;
  int header_label = 0, seen_header = 0;
  float v;
  while ((len = getline(&line, &cap, f)) >= 0) {
    if (chomp(line, (size_t)len) == 0) continue;
    int k = split_tabs(line, fields, MAX_TSV_FIELDS);
    int numeric_first = parse_number(fields[0], &v);
    if (!seen_header && !numeric_first) {
      header_label = k >= 3 && strcasecmp(fields[k - 1], "label") == 0;
      seen_header = 1;
      continue;
    }
    const char *last = fields[k - 1];
    *has_label = k >= 3 && (header_label || !parse_number(last, &v) ||
                            (is_integer_token(last) && !is_integer_token(fields[0])));
    break;
  }
  free(line);
  fclose(f);
}

static int tsv_push_row(tsv_map *m, const float *row, const char *label) {
  if (m->n == m->cap) {
    int64_t nc = m->cap ? 2 * m->cap : 4096;
    float *nx = realloc(m->xy, sizeof *nx * (size_t)nc * (size_t)m->ncols);
    if (!nx) return EMBR_ENOMEM;
    m->xy = nx;
    m->cap = nc;
  }
  memcpy(m->xy + m->n * m->ncols, row, sizeof *row * (size_t)m->ncols);
  m->n++;
  return lines_push(&m->labels, &m->nlabels, &m->lcap, label, strlen(label));
}

/* Parses one data line into the map; the first data line fixes the column count. */
static int tsv_parse_line(const char *path, int64_t lineno, char *line, tsv_map *m) {
  int k = count_tabs(line) + 1;
  if (m->ncols == 0) {
    if (k - 1 < 2 || k > MAX_TSV_FIELDS)
      return embr_error(EMBR_EFORMAT, "%s: line %lld has %d fields; expected 2 to %d numbers and a label",
                        path, (long long)lineno, k, MAX_TSV_FIELDS - 1);
    m->ncols = k - 1;
  }
  if (k != m->ncols + 1)
    return embr_error(EMBR_EFORMAT, "%s: line %lld has %d fields, expected %d (%d numbers and a label)",
                      path, (long long)lineno, k, m->ncols + 1, m->ncols);
  char *fields[MAX_TSV_FIELDS];
  float row[MAX_TSV_FIELDS];
  split_tabs(line, fields, k);
  for (int j = 0; j < m->ncols; j++)
    if (!parse_number(fields[j], &row[j]))
      return embr_error(EMBR_EFORMAT, "%s: line %lld, column %d: '%.40s' is not a finite number", path,
                        (long long)lineno, j + 1, fields[j]);
  int rc = tsv_push_row(m, row, fields[k - 1]);
  return rc ? embr_error(rc, "%s: out of memory at line %lld", path, (long long)lineno) : 0;
}

static int first_field_numeric(char *line) {
  char *tab = strchr(line, '\t');
  if (tab) *tab = '\0';
  float v;
  int yes = parse_number(line, &v);
  if (tab) *tab = '\t';
  return yes;
}

static int tsv_read(const char *path, tsv_map *m) {
  FILE *f = fopen(path, "rb");
  if (!f) return embr_error(EMBR_EIO, "%s: cannot open: %s", path, strerror(errno));
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int64_t lineno = 0;
  int rc = 0, first = 1;
  while (!rc && (len = getline(&line, &cap, f)) >= 0) {
    lineno++;
    if (chomp(line, (size_t)len) == 0) continue; /* blank lines (a trailing one) carry nothing */
    if (first && !first_field_numeric(line)) {
      first = 0;
      continue; /* the header line */
    }
    first = 0;
    rc = tsv_parse_line(path, lineno, line, m);
  }
  if (!rc && ferror(f)) rc = embr_error(EMBR_EIO, "%s: read failed", path);
  free(line);
  fclose(f);
  if (!rc && m->n == 0) rc = embr_error(EMBR_EFORMAT, "%s: no data rows", path);
  return rc;
}

/* Reads the coordinates: a labelled TSV map through tsv_read, anything else through the matrix
 * readers. *labels is set only for a labelled TSV. An explicit --in-format reads strictly. */
int cli_read_map(const char *path, const char *in_format, embr_matrix *m, char ***labels) {
  *labels = NULL;
  int tsv = !in_format && embr_format_from_extension(path) == EMBR_FORMAT_TSV;
  int has_label = 0;
  if (tsv) tsv_label_column(path, &has_label);
  if (!has_label) return cli_read_matrix(path, in_format, m);
  tsv_map t;
  memset(&t, 0, sizeof t);
  int rc = tsv_read(path, &t);
  if (!rc) rc = embr_matrix_alloc(m, t.n, t.ncols); /* matrices own embr_alloc'ed memory */
  if (!rc) memcpy(m->data, t.xy, sizeof *t.xy * (size_t)t.n * (size_t)t.ncols);
  free(t.xy);
  if (rc) {
    cli_lines_free(t.labels, t.nlabels);
    return cli_fail(rc);
  }
  *labels = t.labels;
  return EXIT_OK;
}


/* embr plot: a scatter plot of 2-D coordinates (a t-SNE map...) as PNG, SVG, PDF or an interactive
 * HTML page, coloured by label. */
#include "commands.h"

#include "embr/plot.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- one string per line ----------------------------------------------------------------------- */

static void lines_free(char **v, int64_t n) {
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
static int read_per_point(const char *path, const char *what, int64_t npoints, char ***out) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "embr plot: %s: cannot open: %s\n", path, strerror(errno));
    return EXIT_ERR;
  }
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
    lines_free(v, n);
    return cli_fail("plot", rc ? embr_error(rc, "%s: out of memory", path)
                               : embr_error(EMBR_EIO, "%s: read failed", path));
  }
  if (n != npoints) {
    fprintf(stderr, "embr plot: %s: %lld %s for %lld points (one per line expected)\n", path,
            (long long)n, what, (long long)npoints);
    lines_free(v, n);
    return EXIT_ERR;
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
static int read_coords(const char *path, const char *in_format, embr_matrix *m, char ***labels) {
  *labels = NULL;
  int tsv = !in_format && embr_format_from_extension(path) == EMBR_FORMAT_TSV;
  int has_label = 0;
  if (tsv) tsv_label_column(path, &has_label);
  if (!has_label) return cli_read_matrix("plot", path, in_format, m);
  tsv_map t;
  memset(&t, 0, sizeof t);
  int rc = tsv_read(path, &t);
  if (!rc) rc = embr_matrix_alloc(m, t.n, t.ncols); /* matrices own embr_alloc'ed memory */
  if (!rc) memcpy(m->data, t.xy, sizeof *t.xy * (size_t)t.n * (size_t)t.ncols);
  free(t.xy);
  if (rc) {
    lines_free(t.labels, t.nlabels);
    return cli_fail("plot", rc);
  }
  *labels = t.labels;
  return EXIT_OK;
}

/* ---- the command --------------------------------------------------------------------------------- */

typedef struct plot_inputs {
  embr_matrix m;
  char **labels, **texts; /* from --labels / the TSV label column, and --texts */
} plot_inputs;

static void inputs_free(plot_inputs *in) {
  lines_free(in->labels, in->m.n);
  lines_free(in->texts, in->m.n);
  embr_matrix_free(&in->m);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* 1 when the n labels are all different: the words of a word map rather than classes. */
static int all_distinct(char *const *labels, int64_t n) {
  char **copy = malloc(sizeof *copy * (size_t)n);
  if (!copy) return 0;
  memcpy(copy, labels, sizeof *copy * (size_t)n);
  qsort(copy, (size_t)n, sizeof *copy, cmp_str);
  int distinct = 1;
  for (int64_t i = 1; i < n && distinct; i++) distinct = strcmp(copy[i - 1], copy[i]) != 0;
  free(copy);
  return distinct;
}

static int load_inputs(plot_inputs *in, const char *coords, const char *in_format,
                       const char *labels_path, const char *texts_path) {
  int rc = read_coords(coords, in_format, &in->m, &in->labels);
  if (rc) return rc;
  if (in->m.dim < 2) {
    fprintf(stderr, "embr plot: %s: %lld column%s; a plot needs at least 2 (x, y)\n", coords,
            (long long)in->m.dim, in->m.dim == 1 ? "" : "s");
    return EXIT_ERR;
  }
  /* A TSV column of all-different labels holds words (`embr tsne` of word vectors writes them
   * there): they become the texts, since one colour per point would mean nothing. */
  if (in->labels && !texts_path && in->m.n > 1 && all_distinct(in->labels, in->m.n)) {
    in->texts = in->labels;
    in->labels = NULL;
  }
  if (labels_path) { /* an explicit --labels wins over a TSV label column */
    lines_free(in->labels, in->m.n);
    rc = read_per_point(labels_path, "labels", in->m.n, &in->labels);
  }
  if (!rc && texts_path) rc = read_per_point(texts_path, "texts", in->m.n, &in->texts);
  return rc;
}

int cli_plot_map(const char *cmd, const char *path, const float *xy, int64_t n, int ld,
                 char *const *labels, char *const *texts, const char *title) {
  embr_plot_params p = embr_plot_params_default();
  p.title = title;
  int rc = embr_plot_write(path, xy, n, ld, (const char *const *)labels, (const char *const *)texts, &p);
  embr_plot_cleanup();
  return rc ? cli_fail(cmd, rc) : EXIT_OK;
}

int cmd_plot(int argc, char **argv) {
  const char *in_path = NULL, *out_path = NULL, *labels_path = NULL, *texts_path = NULL;
  const char *title = NULL, *format = NULL, *in_format = NULL;
  int64_t width = 1600, height = 1200, max_legend = 30, seed = 1;
  double point_size = 0, opacity = 0;
  int no_legend = 0, no_texts = 0, quiet = 0;
  cli_opt opts[] = {
      OPT_STR_REQ("--input", "-i", &in_path, "FILE", "coordinates: any matrix file (first two columns), or a TSV map"),
      OPT_STR_REQ("--output", "-o", &out_path, "FILE", "the picture: .png .svg .pdf or .html"),
      OPT_STR("--labels", "-l", &labels_path, "FILE", "one class label per line (colours, legend)", "the TSV label column"),
      OPT_STR("--texts", NULL, &texts_path, "FILE", "one text per line, drawn beside the points", "none"),
      OPT_STR("--title", "-t", &title, "T", "title at the top", "none"),
      OPT_INT("--width", "-W", &width, "W", "image width (pixels; points for SVG/PDF)", "1600", 64, 16384),
      OPT_INT("--height", "-H", &height, "H", "image height", "1200", 64, 16384),
      OPT_DBL("--point-size", "-s", &point_size, "S", "marker diameter in pixels (0 = from the point count)", "0", 0, 200),
      OPT_DBL("--opacity", NULL, &opacity, "A", "marker opacity, 0..1 (0 = from the point count)", "0", 0, 1),
      OPT_STR("--format", "-f", &format, "FMT", "output format: png, svg, pdf or html", "by extension"),
      OPT_STR("--in-format", NULL, &in_format, "FMT", "input matrix format (npy, fvecs, csv, tsv, ...)", "by extension"),
      OPT_INT("--max-legend", NULL, &max_legend, "N", "legend entries before \"+N more\"", "30", 1, 100000),
      OPT_FLAG("--no-legend", NULL, &no_legend, "no legend"),
      OPT_FLAG("--no-texts", NULL, &no_texts, "do not draw texts (HTML still shows them on hover)"),
      OPT_INT("--seed", NULL, &seed, "N", "seed of the shuffled drawing order", "1", 0, 4294967295.0),
      OPT_FLAG("--quiet", "-q", &quiet, "print nothing on success"),
  };
  cli_command cmd = {"plot", "Draw 2-D coordinates as a PNG/SVG/PDF picture or an interactive HTML page.",
                     "embr plot -i COORDS -o OUT.(png|svg|pdf|html) [--labels FILE] [--texts FILE] [options]",
                     "COORDS: .npy, .fvecs, .csv, .tsv, ... with at least 2 columns (x, y; further\n"
                     "columns are ignored), or the TSV map `embr tsne` writes: numbers then a label per\n"
                     "line. Points are coloured by label (numeric labels in numeric order), drawn\n"
                     "semi-transparent in a shuffled order. The HTML page works offline: wheel to zoom,\n"
                     "drag to pan, hover for a point's label/text/row, a search box, and a legend whose\n"
                     "entries toggle their points. Guide: docs/plots.md.",
                     opts, (int)(sizeof opts / sizeof opts[0]), 0, 0, NULL, 0};
  int prc = cli_parse(&cmd, argc, argv);
  if (prc) return prc == CLI_HELP ? EXIT_OK : EXIT_USAGE;
  embr_plot_params p = embr_plot_params_default();
  if (format && embr_plot_format_parse(format, &p.format) != 0)
    return cli_usage_error(&cmd, "%s", embr_last_error());
  if (!format && embr_plot_format_from_path(out_path) == EMBR_PLOT_AUTO)
    return cli_usage_error(&cmd, "%s: cannot tell the format from the extension (.png .svg .pdf .html); use --format",
                           out_path);
  if (cli_check_output("plot", out_path)) return EXIT_ERR;
  p.width = (int)width;
  p.height = (int)height;
  p.title = title;
  p.point_size = point_size;
  p.opacity = opacity;
  p.show_legend = !no_legend;
  p.draw_texts = !no_texts;
  p.max_legend = (int)max_legend;
  p.seed = (uint64_t)seed;

  plot_inputs in;
  memset(&in, 0, sizeof in);
  int rc = load_inputs(&in, in_path, in_format, labels_path, texts_path);
  /* Words of a word2vec/GloVe file are the natural texts of a word map. */
  char *const *texts = in.texts ? in.texts : in.m.labels;
  double t0 = embr_now();
  if (!rc) {
    int s = embr_plot_write(out_path, in.m.data, in.m.n, in.m.ld, (const char *const *)in.labels,
                            (const char *const *)texts, &p);
    if (s) rc = cli_fail("plot", s);
    embr_plot_cleanup(); /* the command is done with cairo: leave no caches for leak checkers */
  }
  if (!rc && !quiet)
    fprintf(stderr, "wrote %s: %lld points in %.2f s\n", out_path, (long long)in.m.n, embr_now() - t0);
  inputs_free(&in);
  return rc;
}

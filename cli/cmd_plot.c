/* embr plot: a scatter plot of 2-D coordinates (a t-SNE map...) as PNG, SVG, PDF or an interactive
 * HTML page, coloured by label. */
#include "commands.h"

#include "embr/plot.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the command --------------------------------------------------------------------------------- */

typedef struct plot_inputs {
  embr_matrix m;                    /* m.labels: words of a word file, or a TSV map's label column */
  embr_lines labels_file, texts_file; /* --labels, --texts */
  char *const *labels, *const *texts; /* what is drawn: colours and texts */
} plot_inputs;

static void inputs_free(plot_inputs *in) {
  embr_lines_free(&in->labels_file);
  embr_lines_free(&in->texts_file);
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
  int rc = cli_read_map(coords, in_format, &in->m);
  if (rc) return rc;
  if (in->m.dim < 2)
    return cli_error("%s: %lld column%s; a plot needs at least 2 (x, y)", coords, (long long)in->m.dim,
                     in->m.dim == 1 ? "" : "s");
  /* Words of a word2vec/GloVe file are the natural texts of a word map. A TSV map's label
   * column holds classes (colours), unless its labels are all different: then they are words
   * (`embr tsne` of word vectors writes them there), since one colour per point means nothing. */
  int tsv_column = in->m.labels && embr_format_from_extension(coords) == EMBR_FORMAT_TSV;
  if (tsv_column && (texts_path || in->m.n < 2 || !all_distinct(in->m.labels, in->m.n)))
    in->labels = in->m.labels;
  else
    in->texts = in->m.labels;
  if (labels_path) { /* an explicit --labels wins over a TSV label column */
    rc = cli_read_lines(labels_path, "labels", in->m.n, &in->labels_file);
    in->labels = in->labels_file.line;
  }
  if (!rc && texts_path) {
    rc = cli_read_lines(texts_path, "texts", in->m.n, &in->texts_file);
    in->texts = in->texts_file.line;
  }
  return rc;
}

int cli_plot_write(const char *path, const float *xy, int64_t n, int ld, char *const *labels, char *const *texts,
                   const char *title) {
  embr_plot_params p = embr_plot_params_default();
  p.title = title;
  int rc = embr_plot_write(path, xy, n, ld, (const char *const *)labels, (const char *const *)texts, &p);
  embr_plot_cleanup();
  return rc;
}

static int cmd_plot(int argc, char **argv) {
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
      OPT_STR("--title", NULL, &title, "T", "title at the top", "none"),
      OPT_INT("--width", "-W", &width, "W", "image width (pixels; points for SVG/PDF)", "1600", 64, 16384),
      OPT_INT("--height", "-H", &height, "H", "image height", "1200", 64, 16384),
      OPT_DBL("--point-size", NULL, &point_size, "S", "marker diameter in pixels (0 = from the point count)", "0", 0, 200),
      OPT_DBL("--opacity", NULL, &opacity, "A", "marker opacity, 0..1 (0 = from the point count)", "0", 0, 1),
      OPT_STR("--format", NULL, &format, "FMT", "output format: png, svg, pdf or html", "by extension"),
      OPT_STR("--in-format", NULL, &in_format, "FMT", "input matrix format (npy, fvecs, csv, tsv, ...)", "by extension"),
      OPT_INT("--max-legend", NULL, &max_legend, "N", "legend entries before \"+N more\"", "30", 1, 100000),
      OPT_FLAG("--no-legend", NULL, &no_legend, "no legend"),
      OPT_FLAG("--no-texts", NULL, &no_texts, "do not draw texts (HTML still shows them on hover)"),
      OPT_SEED(&seed, " (the shuffled drawing order)"),
      OPT_QUIET(&quiet),
  };
  cli_command cmd = {"Draw 2-D coordinates as a PNG/SVG/PDF picture or an interactive HTML page.",
                     "embr plot -i COORDS -o OUT.(png|svg|pdf|html) [--labels FILE] [--texts FILE] [options]",
                     "COORDS: .npy, .fvecs, .csv, .tsv, ... with at least 2 columns (x, y; further\n"
                     "columns are ignored), or the TSV map `embr tsne` writes: numbers then a label per\n"
                     "line. Points are coloured by label (numeric labels in numeric order), drawn\n"
                     "semi-transparent in a shuffled order. The HTML page works offline: wheel to zoom,\n"
                     "drag to pan, hover for a point's label/text/row, a search box, and a legend whose\n"
                     "entries toggle their points. Guide: docs/plots.md.",
                     opts, CLI_NOPTS(opts), 0, 0, NULL, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  embr_plot_params p = embr_plot_params_default();
  if (format && embr_plot_format_parse(format, &p.format) != 0)
    return cli_usage_error("%s", embr_last_error());
  if (!format && embr_plot_format_from_path(out_path) == EMBR_PLOT_AUTO)
    return cli_usage_error("%s: cannot tell the format from the extension (.png .svg .pdf .html); use --format",
                           out_path);
  cli_file files[] = {{"--output", out_path, 1}, {"--input", in_path, 0}, {"--labels", labels_path, 0}, {"--texts", texts_path, 0}};
  int frc = cli_check_files(files, 4);
  if (frc) return frc;
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
  char *const *texts = in.texts;
  double t0 = embr_now();
  if (!rc) {
    int s = embr_plot_write(out_path, in.m.data, in.m.n, in.m.ld, (const char *const *)in.labels,
                            (const char *const *)texts, &p);
    if (s) rc = cli_fail(s);
    embr_plot_cleanup(); /* the command is done with cairo: leave no caches for leak checkers */
  }
  if (!rc && !quiet)
    fprintf(stderr, "wrote %s: %lld points in %.2f s\n", out_path, (long long)in.m.n, embr_now() - t0);
  inputs_free(&in);
  return rc;
}

const cli_entry cli_plot = {"plot", "draw 2-D coordinates: PNG, SVG, PDF or interactive HTML", cmd_plot, NULL, 0, NULL};

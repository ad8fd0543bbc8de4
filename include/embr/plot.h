/* embr plot: pictures of 2-D coordinates (a t-SNE or PCA map), one point per row, coloured by a
 * class label, optionally with a text beside each point (word maps).
 *
 * Formats, chosen by the output file's extension (or params.format):
 *   .png  raster image (cairo), width x height pixels
 *   .svg  vector image (cairo), width x height points; one <path> per data point
 *   .pdf  vector document (cairo), one page of width x height points
 *   .html one self-contained page (no network): a <canvas> with zoom, pan, hover, search and a
 *         legend that toggles labels; the data is embedded as JSON. See docs/plots.md.
 *
 * Layout: no axes; the points are scaled to fit the drawing area with a margin, keeping the aspect
 * ratio; the title sits on top and the legend (a marker, the label and its count) on the right.
 * Points are semi-transparent and drawn in a shuffled (seeded, deterministic) order so that no
 * class hides another just by being drawn last.
 *
 * Colours: the distinct labels are sorted -- labels that are numbers first, by value ("2" before
 * "10"), then the others by bytes except that digit runs compare as numbers ("class 2" before
 * "class 10") -- and the k-th label gets embr_plot_color(k).
 *
 * Thread-safety: the functions keep no state; concurrent calls on different paths are safe
 * (cairo is thread-safe for separate surfaces). */
#ifndef EMBR_PLOT_H
#define EMBR_PLOT_H

#include "embr/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum embr_plot_format {
  EMBR_PLOT_AUTO = 0, /* by the extension of the path */
  EMBR_PLOT_PNG,
  EMBR_PLOT_SVG,
  EMBR_PLOT_PDF,
  EMBR_PLOT_HTML
} embr_plot_format;

typedef struct embr_plot_params {
  int width, height;     /* image size in pixels (PNG) or points (SVG, PDF); 64..16384. The HTML
                            page fills the browser window instead. Default 1600 x 1200. */
  const char *title;     /* drawn at the top; NULL or "" for none. Default NULL */
  double point_size;     /* marker diameter in pixels; 0 = chosen from n and the image size
                            (about 11 px for 100 points, 2 px for 100,000 at 1600 x 1200). Default 0 */
  double opacity;        /* marker opacity in (0, 1]; 0 = chosen from n. Default 0 */
  int show_legend;       /* 1: a legend when labels are given (at most max_legend entries, the
                            largest classes, then "+N more"); 0: none. Default 1 */
  int max_legend;        /* legend entries before "+N more"; >= 1. Default 30 */
  int draw_texts;        /* 1: draw each text beside its point, skipping a text whose box would
                            overlap one already drawn (earlier rows win); 0: not drawn (HTML still
                            shows texts on hover and searches them). Default 1 */
  uint64_t seed;         /* drawing order shuffle. Default 1 */
  embr_plot_format format; /* EMBR_PLOT_AUTO: by the path's extension. Default AUTO */
} embr_plot_params;

EMBR_API embr_plot_params embr_plot_params_default(void); /* the defaults above */

/* Writes a scatter plot of n points to `path`, atomically (a temporary file beside the target,
 * renamed into place only when complete; nothing is left behind on failure).
 *   xy      n rows of (x, y), row i at xy + i*ld; ld >= 2, so the first two columns of a wider
 *           matrix can be plotted without a copy. All values must be finite.
 *   labels  NULL, or n class labels (NUL-terminated UTF-8; NULL entries count as ""), which
 *           choose the colours and the legend.
 *   texts   NULL, or n strings (NULL entries: none) drawn beside the points when
 *           params->draw_texts; in HTML also shown on hover and searchable.
 *   params  NULL for the defaults.
 * Invalid UTF-8 bytes in labels, texts and the title are drawn as U+FFFD.
 * Errors (the message names the file): EMBR_EINVAL for n < 1, ld < 2, NULL xy, out-of-range
 * parameters or an unknown extension; EMBR_EVALUE for a NaN or infinite coordinate (naming the
 * row); EMBR_EIO when the file cannot be created or written; EMBR_ENOMEM. */
EMBR_API embr_status embr_plot_write(const char *path, const float *xy, int64_t n, int64_t ld,
                                     const char *const *labels, const char *const *texts,
                                     const embr_plot_params *params);

/* The format a path's extension names (.png .svg .pdf .html/.htm, any case), or EMBR_PLOT_AUTO. */
EMBR_API embr_plot_format embr_plot_format_from_path(const char *path);
/* Parses "png", "svg", "pdf", "html" (any case) into *out; anything else is EMBR_EINVAL. */
EMBR_API embr_status embr_plot_format_parse(const char *name, embr_plot_format *out);

/* The colour of the k-th label in sorted order (k >= 0) as 8-bit sRGB. The first 20 come from a
 * fixed table of well-separated colours; later ones are spread over the hue circle. */
EMBR_API void embr_plot_color(int64_t k, unsigned char rgb[3]);

/* Releases the font caches cairo and fontconfig keep for the life of the process, so that leak
 * checkers see a clean exit. Call at most at the end of a program (the `embr` tool does), when no
 * plot is being drawn and nothing else in the process is using cairo or fontconfig. Plotting
 * afterwards still works: the caches are built again. */
EMBR_API void embr_plot_cleanup(void);

#ifdef __cplusplus
}
#endif
#endif

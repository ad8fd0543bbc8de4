/* Internal interface of the plot writers (plot.c: validation, cairo formats; plot_html.c: the
 * interactive page; palette.c: colours, label order and strings shared by both). */
#ifndef EMBR_VIZ_PLOT_INTERNAL_H
#define EMBR_VIZ_PLOT_INTERNAL_H

#include "core/fileio.h"
#include "embr/plot.h"

#include <stdint.h>

/* The distinct labels of a plot, in display order (see embr__label_cmp). */
typedef struct embr__plot_classes {
  int64_t count;       /* distinct labels; 0 without labels */
  const char **names;  /* count names, pointing into the caller's label strings ("" for NULL) */
  int64_t *sizes;      /* points per label */
  int32_t *of_point;   /* n entries: label index of each point; NULL without labels */
} embr__plot_classes;

/* Groups n labels (labels may be NULL: no classes). Fails only with EMBR_ENOMEM or when there
 * are more than INT32_MAX distinct labels; messages name `path`. */
int embr__plot_classes_build(embr__plot_classes *c, const char *const *labels, int64_t n,
                             const char *path);
void embr__plot_classes_free(embr__plot_classes *c);

/* Natural label order: labels that parse completely as finite numbers come first, by value; then
 * the others in byte order except that digit runs compare as numbers ("class 2" < "class 10");
 * remaining ties by bytes. */
int embr__label_cmp(const char *a, const char *b);

/* The marker colour of point i: its label's colour, or the first palette colour without labels. */
void embr__plot_point_rgb(const embr__plot_classes *c, int64_t i, unsigned char rgb[3]);

/* Defaults that depend on the data: marker diameter in pixels and opacity. */
double embr__plot_auto_point_size(int64_t n, int width, int height);
double embr__plot_auto_opacity(int64_t n);

/* A copy of s with every invalid UTF-8 sequence replaced by U+FFFD; NULL (and EMBR_ENOMEM
 * recorded) when out of memory. s == NULL gives "". Free with free(). */
char *embr__utf8_clean(const char *s);

/* Writes the interactive page to an open output. The inputs have been validated. */
int embr__plot_write_html(embr__wfile *w, const float *xy, int64_t n, int64_t ld,
                          const embr__plot_classes *c, const char *const *texts,
                          const embr_plot_params *p);

/* The page's CSS and JavaScript (plot_page.c): NULL-terminated lists of text pieces. */
extern const char *const embr__plot_page_css[];
extern const char *const embr__plot_page_js[];

#endif

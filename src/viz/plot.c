/* Scatter plots through cairo (PNG, SVG, PDF) and the dispatch to the HTML writer.
 *
 * One renderer draws on any cairo surface, so the three formats show the same picture; sizes are
 * in surface units (pixels for PNG, points for SVG/PDF) and scale with the image through the
 * factor `u` (1 at 1600 x 1200). */
#include "viz/plot_internal.h"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

embr_plot_params embr_plot_params_default(void) {
  embr_plot_params p;
  memset(&p, 0, sizeof p);
  p.width = 1600;
  p.height = 1200;
  p.title = NULL;
  p.point_size = 0;
  p.opacity = 0;
  p.show_legend = 1;
  p.max_legend = 30;
  p.draw_texts = 1;
  p.seed = 1;
  p.format = EMBR_PLOT_AUTO;
  return p;
}

static const char *const format_names[] = {"auto", "png", "svg", "pdf", "html"};

embr_status embr_plot_format_parse(const char *name, embr_plot_format *out) {
  for (int f = EMBR_PLOT_PNG; f <= EMBR_PLOT_HTML; f++)
    if (name && strcasecmp(name, format_names[f]) == 0) {
      *out = (embr_plot_format)f;
      return 0;
    }
  return embr_error(EMBR_EINVAL, "unknown plot format '%s' (expected png, svg, pdf or html)",
                    name ? name : "");
}

embr_plot_format embr_plot_format_from_path(const char *path) {
  const char *dot = path ? strrchr(path, '.') : NULL;
  if (!dot || strchr(dot, '/')) return EMBR_PLOT_AUTO;
  if (strcasecmp(dot, ".htm") == 0) return EMBR_PLOT_HTML;
  embr_plot_format f;
  return embr_plot_format_parse(dot + 1, &f) == 0 ? f : EMBR_PLOT_AUTO;
}

/* ---- validation ------------------------------------------------------------------------------ */

static int check_params(const char *path, const embr_plot_params *p) {
  if (p->width < 64 || p->width > 16384 || p->height < 64 || p->height > 16384)
    return embr_error(EMBR_EINVAL, "%s: image size %d x %d is outside 64..16384", path, p->width,
                      p->height);
  if (!(p->point_size >= 0 && p->point_size <= 200))
    return embr_error(EMBR_EINVAL, "%s: point size %g is outside 0..200 (0 = automatic)", path,
                      p->point_size);
  if (!(p->opacity >= 0 && p->opacity <= 1))
    return embr_error(EMBR_EINVAL, "%s: opacity %g is outside 0..1 (0 = automatic)", path,
                      p->opacity);
  if (p->max_legend < 1)
    return embr_error(EMBR_EINVAL, "%s: max_legend must be at least 1", path);
  return 0;
}

static int check_input(const char *path, const float *xy, int64_t n, int64_t ld) {
  if (n < 1) return embr_error(EMBR_EINVAL, "%s: nothing to plot (%lld points)", path, (long long)n);
  if (!xy) return embr_error(EMBR_EINVAL, "%s: no coordinates given", path);
  if (ld < 2)
    return embr_error(EMBR_EINVAL, "%s: leading dimension %lld is less than 2 (x, y)", path,
                      (long long)ld);
  for (int64_t i = 0; i < n; i++) {
    const float *r = xy + i * ld;
    if (!isfinite(r[0]) || !isfinite(r[1]))
      return embr_error(EMBR_EVALUE, "%s: point %lld has a non-finite coordinate (%g, %g)", path,
                        (long long)i, (double)r[0], (double)r[1]);
  }
  return 0;
}

/* ---- layout ---------------------------------------------------------------------------------- */

enum { TEXT_CELL = 4 }; /* pixels per cell of the text occupancy grid */

typedef struct legend_layout {
  int64_t *shown;     /* label indices shown, in label order */
  char **names;       /* their names as drawn: valid UTF-8, "(empty)" for "" */
  int64_t nshown;
  int64_t more, more_points; /* labels (and their points) left out */
  double x, y0, line, font, name_w, count_w;
} legend_layout;

typedef struct plot {
  const float *xy;
  int64_t n, ld;
  const embr__plot_classes *cls;
  const char *const *texts;
  const embr_plot_params *p;
  double w, h, u;           /* surface size and the scale factor for fonts and margins */
  double radius, opacity;
  double title_h, title_font;
  legend_layout lg;         /* lg.nshown == 0: no legend */
  double ax0, ay0, ax1, ay1; /* the rectangle the points are fitted into */
  double scale, cx, cy;     /* data centre (cx, cy) maps to the rectangle's centre */
} plot;

static void to_screen(const plot *pl, int64_t i, double *sx, double *sy) {
  const float *r = pl->xy + i * pl->ld;
  *sx = 0.5 * (pl->ax0 + pl->ax1) + pl->scale * ((double)r[0] - pl->cx);
  *sy = 0.5 * (pl->ay0 + pl->ay1) - pl->scale * ((double)r[1] - pl->cy); /* y grows upwards */
}

static void fit_points(plot *pl) {
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (int64_t i = 0; i < pl->n; i++) {
    const float *r = pl->xy + i * pl->ld;
    x0 = fmin(x0, r[0]), x1 = fmax(x1, r[0]), y0 = fmin(y0, r[1]), y1 = fmax(y1, r[1]);
  }
  pl->cx = 0.5 * (x0 + x1);
  pl->cy = 0.5 * (y0 + y1);
  double sx = x1 > x0 ? (pl->ax1 - pl->ax0) / (x1 - x0) : INFINITY;
  double sy = y1 > y0 ? (pl->ay1 - pl->ay0) / (y1 - y0) : INFINITY;
  pl->scale = fmin(sx, sy);
  if (!isfinite(pl->scale)) pl->scale = 1; /* all points in one place: draw them at the centre */
}

static void set_font(cairo_t *cr, double size, int bold) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

static double text_width(cairo_t *cr, const char *s) {
  cairo_text_extents_t e;
  cairo_text_extents(cr, s, &e);
  return e.x_advance;
}

/* "1234567" -> "1,234,567" */
static void format_count(char *buf, size_t cap, int64_t v) {
  char raw[32];
  int len = snprintf(raw, sizeof raw, "%lld", (long long)v), o = 0;
  for (int i = 0; i < len && (size_t)o + 2 < cap; i++) {
    if (i > 0 && (len - i) % 3 == 0) buf[o++] = ',';
    buf[o++] = raw[i];
  }
  buf[o] = '\0';
}

typedef struct class_size {
  int64_t size, index;
} class_size;

static int cmp_size_desc(const void *pa, const void *pb) {
  const class_size *a = pa, *b = pb;
  if (a->size != b->size) return a->size > b->size ? -1 : 1;
  return (a->index > b->index) - (a->index < b->index);
}

static int cmp_index(const void *pa, const void *pb) {
  int64_t i = *(const int64_t *)pa, j = *(const int64_t *)pb;
  return (i > j) - (i < j);
}

/* The max_legend largest labels (ties: the earlier label) into lg->shown, in label order. */
static int legend_largest(const embr__plot_classes *c, legend_layout *lg, int64_t keep) {
  class_size *by = malloc(sizeof *by * (size_t)c->count);
  if (!by) return embr_error(EMBR_ENOMEM, "out of memory for the legend");
  for (int64_t k = 0; k < c->count; k++) by[k] = (class_size){c->sizes[k], k};
  qsort(by, (size_t)c->count, sizeof *by, cmp_size_desc);
  for (int64_t k = 0; k < keep; k++) lg->shown[k] = by[k].index;
  for (int64_t k = keep; k < c->count; k++) lg->more_points += by[k].size;
  free(by);
  qsort(lg->shown, (size_t)keep, sizeof *lg->shown, cmp_index);
  lg->nshown = keep;
  lg->more = c->count - keep;
  return 0;
}

/* Cairo refuses invalid UTF-8 (the context stops drawing), so names are cleaned once here. */
static int legend_names(const embr__plot_classes *c, legend_layout *lg) {
  lg->names = calloc((size_t)lg->nshown, sizeof *lg->names);
  if (!lg->names) return embr_error(EMBR_ENOMEM, "out of memory for the legend");
  for (int64_t k = 0; k < lg->nshown; k++) {
    const char *name = c->names[lg->shown[k]];
    lg->names[k] = embr__utf8_clean(*name ? name : "(empty)");
    if (!lg->names[k]) return EMBR_ENOMEM;
  }
  return 0;
}

static void legend_free(legend_layout *lg) {
  for (int64_t k = 0; lg->names && k < lg->nshown; k++) free(lg->names[k]);
  free(lg->names);
  free(lg->shown);
}

/* Chooses the legend entries: all labels, or the max_legend largest shown in label order. */
static int legend_pick(plot *pl) {
  const embr__plot_classes *c = pl->cls;
  legend_layout *lg = &pl->lg;
  if (!pl->p->show_legend || c->count == 0) return 0;
  lg->shown = malloc(sizeof *lg->shown * (size_t)c->count);
  if (!lg->shown) return embr_error(EMBR_ENOMEM, "out of memory for the legend");
  int rc = 0;
  if (c->count > pl->p->max_legend) {
    rc = legend_largest(c, lg, pl->p->max_legend);
  } else {
    for (int64_t k = 0; k < c->count; k++) lg->shown[k] = k;
    lg->nshown = c->count;
  }
  return rc ? rc : legend_names(c, lg);
}

static void legend_more_text(const legend_layout *lg, char *line, size_t cap) {
  char a[32], b[32];
  format_count(a, sizeof a, lg->more);
  format_count(b, sizeof b, lg->more_points);
  snprintf(line, cap, "+%s more (%s points)", a, b);
}

/* Sizes the legend: one line per entry (+1 for "+N more"), shrunk to fit the height. */
static void legend_measure(plot *pl, cairo_t *cr, double margin) {
  legend_layout *lg = &pl->lg;
  double avail = fmax(pl->h - pl->title_h - 2 * margin, 16);
  double lines = (double)lg->nshown + (lg->more ? 1.5 : 0);
  lg->font = 17 * pl->u;
  lg->line = 1.65 * lg->font;
  if (lines * lg->line > avail) {
    lg->line = avail / lines;
    lg->font = fmax(lg->line / 1.3, 6);
  }
  set_font(cr, lg->font, 0);
  char buf[96];
  for (int64_t k = 0; k < lg->nshown; k++) {
    lg->name_w = fmax(lg->name_w, text_width(cr, lg->names[k]));
    format_count(buf, sizeof buf, pl->cls->sizes[lg->shown[k]]);
    lg->count_w = fmax(lg->count_w, text_width(cr, buf));
  }
  lg->name_w = fmin(lg->name_w, 0.2 * pl->w);
  double width = lg->font * (1.0 + 0.8 + 0.6) + lg->name_w + lg->font + lg->count_w + lg->font;
  if (lg->more) {
    legend_more_text(lg, buf, sizeof buf);
    width = fmax(width, text_width(cr, buf) + 1.6 * lg->font);
  }
  lg->x = pl->w - width;
  lg->y0 = pl->title_h + 0.5 * (pl->h - pl->title_h - lines * lg->line);
}

static int layout(plot *pl, cairo_t *cr) {
  pl->u = fmin(pl->w / 1600, pl->h / 1200);
  pl->u = fmin(fmax(pl->u, 0.35), 4);
  const char *title = pl->p->title;
  pl->title_font = fmax(30 * pl->u, 9);
  pl->title_h = title && *title ? 2.3 * pl->title_font : 0;
  double margin = 0.04 * fmin(pl->w, pl->h) + pl->radius;
  int rc = legend_pick(pl);
  if (rc) return rc;
  if (pl->lg.nshown) legend_measure(pl, cr, margin);
  pl->ax0 = margin;
  pl->ax1 = (pl->lg.nshown ? pl->lg.x : pl->w) - margin;
  pl->ay0 = pl->title_h ? pl->title_h + 0.5 * margin : margin;
  pl->ay1 = pl->h - margin;
  /* A tiny image with a wide legend or huge markers still gets a (cramped) drawing area. */
  if (pl->ax1 - pl->ax0 < 16) pl->ax1 = pl->ax0 + 16;
  if (pl->ay1 - pl->ay0 < 16) pl->ay1 = pl->ay0 + 16;
  fit_points(pl);
  return 0;
}

/* ---- drawing --------------------------------------------------------------------------------- */

static void set_rgb(cairo_t *cr, const unsigned char rgb[3], double alpha) {
  cairo_set_source_rgba(cr, rgb[0] / 255.0, rgb[1] / 255.0, rgb[2] / 255.0, alpha);
}

/* Draws s at (x, y) cut to max_w, ending in an ellipsis when cut (at a UTF-8 boundary). */
static void show_fitted(cairo_t *cr, double x, double y, const char *s, double max_w) {
  cairo_move_to(cr, x, y);
  if (text_width(cr, s) <= max_w) {
    cairo_show_text(cr, s);
    return;
  }
  size_t n = strlen(s);
  char *buf = malloc(n + 4);
  if (!buf) return;
  memcpy(buf, s, n + 1);
  while (n > 0) {
    do n--; while (n > 0 && ((unsigned char)buf[n] & 0xC0) == 0x80);
    memcpy(buf + n, "\xE2\x80\xA6", 4); /* U+2026 and the NUL */
    if (text_width(cr, buf) <= max_w) break;
  }
  cairo_show_text(cr, buf);
  free(buf);
}

static void draw_title(const plot *pl, cairo_t *cr) {
  if (!pl->title_h) return;
  const char *t = pl->p->title; /* cleaned by embr_plot_write */
  set_font(cr, pl->title_font, 1);
  cairo_set_source_rgb(cr, 0.13, 0.13, 0.13);
  double tw = fmin(text_width(cr, t), pl->w - 2 * pl->title_font);
  show_fitted(cr, 0.5 * (pl->w - tw), 1.45 * pl->title_font, t, pl->w - 2 * pl->title_font);
}

static void draw_legend_more(const plot *pl, cairo_t *cr, double y) {
  const legend_layout *lg = &pl->lg;
  char line[96];
  legend_more_text(lg, line, sizeof line);
  cairo_set_source_rgb(cr, 0.45, 0.45, 0.45);
  cairo_move_to(cr, lg->x + 0.6 * lg->font, y);
  cairo_show_text(cr, line);
}

static void draw_legend(const plot *pl, cairo_t *cr) {
  const legend_layout *lg = &pl->lg;
  if (!lg->nshown) return;
  set_font(cr, lg->font, 0);
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  double r = 0.4 * lg->font, mx = lg->x + 0.6 * lg->font + r;
  double name_x = mx + r + 0.6 * lg->font, right = pl->w - lg->font;
  for (int64_t k = 0; k < lg->nshown; k++) {
    int64_t c = lg->shown[k];
    double cy = lg->y0 + ((double)k + 0.5) * lg->line, base = cy + 0.5 * (fe.ascent - fe.descent);
    unsigned char rgb[3];
    embr_plot_color(c, rgb);
    set_rgb(cr, rgb, 1);
    cairo_new_sub_path(cr);
    cairo_arc(cr, mx, cy, r, 0, 2 * M_PI);
    cairo_fill(cr);
    char count[40];
    cairo_set_source_rgb(cr, 0.13, 0.13, 0.13);
    show_fitted(cr, name_x, base, lg->names[k], lg->name_w);
    format_count(count, sizeof count, pl->cls->sizes[c]);
    cairo_set_source_rgb(cr, 0.5, 0.5, 0.5);
    cairo_move_to(cr, right - text_width(cr, count), base);
    cairo_show_text(cr, count);
  }
  if (lg->more)
    draw_legend_more(pl, cr, lg->y0 + ((double)lg->nshown + 0.9) * lg->line + 0.5 * (fe.ascent - fe.descent));
}

/* A seeded Fisher-Yates permutation: the drawing order. */
static int64_t *shuffled_order(int64_t n, uint64_t seed) {
  int64_t *order = malloc(sizeof *order * (size_t)n);
  if (!order) return NULL;
  for (int64_t i = 0; i < n; i++) order[i] = i;
  embr_rng rng;
  embr_rng_seed(&rng, seed);
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)embr_rng_below(&rng, (uint64_t)i + 1), t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

static int draw_points(const plot *pl, cairo_t *cr) {
  int64_t *order = shuffled_order(pl->n, pl->p->seed);
  if (!order) return embr_error(EMBR_ENOMEM, "out of memory for %lld points", (long long)pl->n);
  double r = pl->radius;
  for (int64_t k = 0; k < pl->n; k++) {
    int64_t i = order[k];
    double sx, sy;
    unsigned char rgb[3];
    to_screen(pl, i, &sx, &sy);
    embr__plot_point_rgb(pl->cls, i, rgb);
    set_rgb(cr, rgb, pl->opacity);
    if (r < 1.25) {
      /* At this size a circle and a square look alike, and a square is a quarter of the SVG. */
      cairo_rectangle(cr, sx - r, sy - r, 2 * r, 2 * r);
    } else {
      cairo_new_sub_path(cr);
      cairo_arc(cr, sx, sy, r, 0, 2 * M_PI);
    }
    cairo_fill(cr);
  }
  free(order);
  return 0;
}

/* Occupancy of the text boxes drawn so far, in TEXT_CELL-pixel cells. */
typedef struct text_grid {
  unsigned char *cell;
  int gw, gh;
} text_grid;

/* 1 when the box is inside the grid and free; it is then marked as taken. */
static int grid_claim(text_grid *g, double x0, double y0, double x1, double y1) {
  int c0 = (int)floor(x0 / TEXT_CELL), r0 = (int)floor(y0 / TEXT_CELL);
  int c1 = (int)floor(x1 / TEXT_CELL), r1 = (int)floor(y1 / TEXT_CELL);
  if (c0 < 0 || r0 < 0 || c1 >= g->gw || r1 >= g->gh) return 0;
  for (int r = r0; r <= r1; r++)
    for (int c = c0; c <= c1; c++)
      if (g->cell[(size_t)r * (size_t)g->gw + (size_t)c]) return 0;
  for (int r = r0; r <= r1; r++) memset(g->cell + (size_t)r * (size_t)g->gw + c0, 1, (size_t)(c1 - c0 + 1));
  return 1;
}

static int grid_taken(const text_grid *g, double x, double y) {
  int c = (int)floor(x / TEXT_CELL), r = (int)floor(y / TEXT_CELL);
  if (c < 0 || r < 0 || c >= g->gw || r >= g->gh) return 1;
  return g->cell[(size_t)r * (size_t)g->gw + (size_t)c];
}

/* Places one text to the right of its point on a faint white box (legible over dense points);
 * the claimed area is padded so that neighbouring texts keep a gap. Errors: only ENOMEM. */
static int draw_one_text(const plot *pl, cairo_t *cr, text_grid *g, int64_t i,
                         const cairo_font_extents_t *fe) {
  double sx, sy;
  to_screen(pl, i, &sx, &sy);
  double pad = 0.3 * fe->height, x = sx + pl->radius + pad, top = sy - 0.5 * fe->height;
  if (grid_taken(g, x, sy)) return 0; /* cheap rejection before measuring the text */
  char *t = embr__utf8_clean(pl->texts[i]);
  if (!t) return EMBR_ENOMEM;
  double w = text_width(cr, t);
  if (grid_claim(g, x - pad, top - 0.5 * pad, x + w + pad, top + fe->height + 0.5 * pad)) {
    cairo_set_source_rgba(cr, 1, 1, 1, 0.6);
    cairo_rectangle(cr, x - 0.15 * pad, top, w + 0.3 * pad, fe->height);
    cairo_fill(cr);
    cairo_set_source_rgba(cr, 0.1, 0.1, 0.1, 0.95);
    cairo_move_to(cr, x, sy + 0.5 * (fe->ascent - fe->descent));
    cairo_show_text(cr, t);
  }
  free(t);
  return 0;
}

/* Texts in row order, so that earlier rows (the most frequent words of a word2vec file) win. */
static int draw_texts(const plot *pl, cairo_t *cr) {
  if (!pl->texts || !pl->p->draw_texts) return 0;
  double right = pl->lg.nshown ? pl->lg.x : pl->w;
  text_grid g = {NULL, (int)(right / TEXT_CELL), (int)(pl->h / TEXT_CELL)};
  g.cell = calloc((size_t)g.gw * (size_t)g.gh + 1, 1);
  if (!g.cell) return embr_error(EMBR_ENOMEM, "out of memory for the text grid");
  /* The title band is out of bounds for texts. */
  memset(g.cell, 1, (size_t)g.gw * (size_t)fmin(ceil(pl->title_h / TEXT_CELL), g.gh));
  set_font(cr, fmax(12 * pl->u, 7), 0);
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  int rc = 0;
  for (int64_t i = 0; i < pl->n && !rc; i++)
    if (pl->texts[i] && pl->texts[i][0]) rc = draw_one_text(pl, cr, &g, i, &fe);
  free(g.cell);
  return rc ? embr_error(rc, "out of memory drawing texts") : 0;
}

static int cairo_fail(const char *path, cairo_status_t st) {
  return embr_error(st == CAIRO_STATUS_NO_MEMORY ? EMBR_ENOMEM : EMBR_EIO, "%s: cairo: %s", path,
                    cairo_status_to_string(st));
}

static int render(plot *pl, cairo_surface_t *surface, const char *path) {
  cairo_t *cr = cairo_create(surface);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  int rc = layout(pl, cr);
  if (!rc) rc = draw_points(pl, cr);
  if (!rc) rc = draw_texts(pl, cr);
  if (!rc) draw_title(pl, cr);
  if (!rc) draw_legend(pl, cr);
  if (rc == EMBR_ENOMEM) rc = embr_error(rc, "%s: out of memory while drawing", path);
  cairo_status_t st = cairo_status(cr);
  cairo_destroy(cr);
  if (!rc && st != CAIRO_STATUS_SUCCESS) rc = cairo_fail(path, st);
  return rc;
}

/* ---- output ------------------------------------------------------------------------------------ */

static cairo_status_t write_to_wfile(void *closure, const unsigned char *data, unsigned int len) {
  return embr__wfile_write(closure, data, len) ? CAIRO_STATUS_WRITE_ERROR : CAIRO_STATUS_SUCCESS;
}

static cairo_surface_t *make_surface(embr_plot_format f, embr__wfile *w, const embr_plot_params *p) {
  if (f == EMBR_PLOT_SVG)
    return cairo_svg_surface_create_for_stream(write_to_wfile, w, p->width, p->height);
  if (f == EMBR_PLOT_PDF) {
    cairo_surface_t *s = cairo_pdf_surface_create_for_stream(write_to_wfile, w, p->width, p->height);
    if (p->title && *p->title && cairo_surface_status(s) == CAIRO_STATUS_SUCCESS)
      cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_TITLE, p->title);
    cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_CREATOR, "embr");
    return s;
  }
  return cairo_image_surface_create(CAIRO_FORMAT_ARGB32, p->width, p->height);
}

static int write_cairo(const char *path, embr_plot_format f, embr__wfile *w, plot *pl) {
  cairo_surface_t *s = make_surface(f, w, pl->p);
  cairo_status_t st = cairo_surface_status(s);
  int rc = st == CAIRO_STATUS_SUCCESS ? render(pl, s, path) : cairo_fail(path, st);
  if (!rc && f == EMBR_PLOT_PNG) {
    st = cairo_surface_write_to_png_stream(s, write_to_wfile, w);
    if (st != CAIRO_STATUS_SUCCESS && !w->failed) rc = cairo_fail(path, st);
    if (w->failed) rc = EMBR_EIO; /* the write callback recorded the message */
  }
  cairo_surface_finish(s); /* SVG and PDF are written out here */
  st = cairo_surface_status(s);
  if (!rc && w->failed) rc = EMBR_EIO;
  if (!rc && st != CAIRO_STATUS_SUCCESS) rc = cairo_fail(path, st);
  cairo_surface_destroy(s);
  return rc;
}

static int write_plot(const char *path, embr_plot_format f, plot *pl) {
  embr__wfile w;
  int rc = embr__wfile_open(&w, path);
  if (rc) return rc;
  if (f == EMBR_PLOT_HTML)
    rc = embr__plot_write_html(&w, pl->xy, pl->n, pl->ld, pl->cls, pl->texts, pl->p);
  else
    rc = write_cairo(path, f, &w, pl);
  if (rc) {
    embr__wfile_abort(&w);
    return rc;
  }
  return embr__wfile_commit(&w);
}

embr_status embr_plot_write(const char *path, const float *xy, int64_t n, int64_t ld,
                            const char *const *labels, const char *const *texts,
                            const embr_plot_params *params) {
  if (!path || !*path) return embr_error(EMBR_EINVAL, "empty output file name");
  embr_plot_params p = params ? *params : embr_plot_params_default();
  embr_plot_format f = p.format != EMBR_PLOT_AUTO ? p.format : embr_plot_format_from_path(path);
  if (f < EMBR_PLOT_PNG || f > EMBR_PLOT_HTML)
    return embr_error(EMBR_EINVAL, "%s: unknown plot format: use .png, .svg, .pdf or .html", path);
  int rc = check_params(path, &p);
  if (!rc) rc = check_input(path, xy, n, ld);
  if (rc) return rc;
  if (p.point_size == 0) p.point_size = embr__plot_auto_point_size(n, p.width, p.height);
  if (p.opacity == 0) p.opacity = embr__plot_auto_opacity(n);
  /* Cairo puts a context (or a PDF surface, for the metadata) in an error state on invalid UTF-8. */
  char *title = p.title ? embr__utf8_clean(p.title) : NULL;
  if (p.title && !title) return embr_error(EMBR_ENOMEM, "%s: out of memory", path);
  p.title = title;
  embr__plot_classes cls;
  rc = embr__plot_classes_build(&cls, labels, n, path);
  if (!rc) {
    plot pl = {.xy = xy, .n = n, .ld = ld, .cls = &cls, .texts = texts, .p = &p, .w = p.width,
               .h = p.height, .radius = 0.5 * p.point_size, .opacity = p.opacity};
    rc = write_plot(path, f, &pl);
    legend_free(&pl.lg);
    embr__plot_classes_free(&cls);
  }
  free(title);
  return rc;
}

void embr_plot_cleanup(void) {
  cairo_debug_reset_static_data();
  FcFini();
}

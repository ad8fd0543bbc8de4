/* The interactive HTML plot: one self-contained page (inline CSS and JavaScript, no network) that
 * draws the points on a <canvas>. The data travels as JSON inside <script type="application/json">
 * and is read with JSON.parse; every '<', '>' and '&' in it is written as a \u escape, so no label
 * or text can close the script element or open a comment, whatever it contains.
 *
 * In the page: the wheel zooms about the cursor, dragging pans, double-click refits; hovering shows
 * the nearest point's label, text and row (a uniform grid over the data keeps that fast at 100,000
 * points); the search box highlights the points whose label or text contains the typed string; a
 * click on a legend entry hides or shows that label. Points are drawn in a shuffled order cut into
 * 16 layers, each layer batched by colour, so a frame sets each colour at most 16 times while no
 * class is drawn wholly on top of another.
 *
 * The page's CSS and JavaScript live in plot_page.c. */
#include "viz/plot_internal.h"

#include <stdlib.h>
#include <string.h>

/* Writes s as a JSON string literal that is also safe inside a <script> element. Invalid UTF-8
 * becomes U+FFFD; U+2028 and U+2029 are escaped because older JavaScript parsers end a line there. */
static int json_string(embr__wfile *w, const char *s) {
  char *clean = embr__utf8_clean(s);
  if (!clean) return EMBR_ENOMEM;
  char buf[512];
  size_t o = 0;
  buf[o++] = '"';
  for (const unsigned char *p = (const unsigned char *)clean; *p; p++) {
    if (o > sizeof buf - 16) {
      embr__wfile_write(w, buf, o);
      o = 0;
    }
    unsigned c = *p;
    if (c == '"' || c == '\\') {
      buf[o++] = '\\';
      buf[o++] = (char)c;
    } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
      o += (size_t)snprintf(buf + o, 8, "\\u%04x", c);
    } else if (c == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9)) {
      o += (size_t)snprintf(buf + o, 8, "\\u%04x", 0x2028u + (unsigned)(p[2] - 0xA8));
      p += 2;
    } else {
      buf[o++] = (char)c;
    }
  }
  buf[o++] = '"';
  free(clean);
  return embr__wfile_write(w, buf, o);
}

/* The same text escaped for HTML element content (the <title>). */
static int html_text(embr__wfile *w, const char *s) {
  char *clean = embr__utf8_clean(s);
  if (!clean) return EMBR_ENOMEM;
  for (const char *p = clean; *p; p++) {
    const char *e = *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : *p == '&' ? "&amp;" : NULL;
    if (e)
      embr__wfile_write(w, e, strlen(e));
    else
      embr__wfile_write(w, p, 1);
  }
  free(clean);
  return w->failed ? EMBR_EIO : 0;
}

static int write_strings(embr__wfile *w, const char *const *parts) {
  for (int i = 0; parts[i]; i++) embr__wfile_write(w, parts[i], strlen(parts[i]));
  return w->failed ? EMBR_EIO : 0;
}

/* "key":[v0,v1,...] for one coordinate column. "%.7g" keeps float32 maps exact to the pixel at
 * any zoom a canvas can show, in about half the bytes of the round-trip "%.9g". */
static int write_column(embr__wfile *w, const char *key, const float *xy, int64_t n, int64_t ld) {
  embr__wfile_printf(w, ",\"%s\":[", key);
  for (int64_t i = 0; i < n; i++) embr__wfile_printf(w, i ? ",%.7g" : "%.7g", (double)xy[i * ld]);
  return embr__wfile_printf(w, "]");
}

static int write_classes(embr__wfile *w, const embr__plot_classes *c, int64_t n) {
  int rc = embr__wfile_printf(w, ",\"labels\":[");
  for (int64_t k = 0; k < c->count && !rc; k++) {
    if (k) embr__wfile_write(w, ",", 1);
    rc = json_string(w, c->names[k]);
  }
  embr__wfile_printf(w, "],\"counts\":[");
  for (int64_t k = 0; k < c->count; k++) embr__wfile_printf(w, k ? ",%lld" : "%lld", (long long)c->sizes[k]);
  embr__wfile_printf(w, "],\"colors\":[");
  for (int64_t k = 0; k < (c->count ? c->count : 1); k++) {
    unsigned char rgb[3];
    embr_plot_color(k, rgb);
    embr__wfile_printf(w, "%s\"#%02x%02x%02x\"", k ? "," : "", rgb[0], rgb[1], rgb[2]);
  }
  embr__wfile_printf(w, "],\"c\":");
  if (!c->of_point) return rc ? rc : embr__wfile_printf(w, "null");
  embr__wfile_write(w, "[", 1);
  for (int64_t i = 0; i < n; i++) embr__wfile_printf(w, i ? ",%d" : "%d", (int)c->of_point[i]);
  return rc ? rc : embr__wfile_printf(w, "]");
}

static int write_texts(embr__wfile *w, const char *const *texts, int64_t n) {
  if (!texts) return embr__wfile_printf(w, ",\"texts\":null");
  int rc = embr__wfile_printf(w, ",\"texts\":[");
  for (int64_t i = 0; i < n && !rc; i++) {
    if (i) embr__wfile_write(w, ",", 1);
    rc = json_string(w, texts[i]);
  }
  return rc ? rc : embr__wfile_printf(w, "]");
}

static int write_data(embr__wfile *w, const float *xy, int64_t n, int64_t ld,
                      const embr__plot_classes *c, const char *const *texts,
                      const embr_plot_params *p) {
  embr__wfile_printf(w, "{\"title\":");
  int rc = json_string(w, p->title);
  embr__wfile_printf(w, ",\"pointSize\":%.4g,\"opacity\":%.3g,\"showLegend\":%s,\"drawTexts\":%s,\"seed\":%u",
                     p->point_size, p->opacity, p->show_legend ? "true" : "false",
                     p->draw_texts ? "true" : "false", (unsigned)(p->seed & 0xFFFFFFFFu));
  if (!rc) rc = write_column(w, "x", xy, n, ld);
  if (!rc) rc = write_column(w, "y", xy + 1, n, ld);
  if (!rc) rc = write_classes(w, c, n);
  if (!rc) rc = write_texts(w, texts, n);
  if (!rc) rc = embr__wfile_printf(w, "}");
  return rc;
}

int embr__plot_write_html(embr__wfile *w, const float *xy, int64_t n, int64_t ld,
                          const embr__plot_classes *c, const char *const *texts,
                          const embr_plot_params *p) {
  embr__wfile_printf(w, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n"
                        "<meta name=\"generator\" content=\"embr %s\">\n<title>",
                     embr_version());
  int rc = html_text(w, p->title && *p->title ? p->title : "embr plot");
  embr__wfile_printf(w, "</title>\n<style>\n");
  if (!rc) rc = write_strings(w, embr__plot_page_css);
  embr__wfile_printf(w, "</style>\n</head>\n<body>\n"
                        "<div id=\"bar\"><h1 id=\"title\"></h1><span id=\"info\"></span>"
                        "<input id=\"search\" type=\"search\" placeholder=\"Search labels and texts\" "
                        "autocomplete=\"off\" spellcheck=\"false\">"
                        "<button id=\"reset\" title=\"Fit all points (or double-click the map)\">"
                        "Reset view</button></div>\n"
                        "<div id=\"main\"><div id=\"wrap\"><canvas id=\"plot\"></canvas></div>"
                        "<div id=\"legend\"></div></div>\n<div id=\"tip\"></div>\n"
                        "<script id=\"embr-data\" type=\"application/json\">");
  if (!rc) rc = write_data(w, xy, n, ld, c, texts, p);
  embr__wfile_printf(w, "</script>\n<script>\n");
  if (!rc) rc = write_strings(w, embr__plot_page_js);
  if (!rc) rc = embr__wfile_printf(w, "</script>\n</body>\n</html>\n");
  if (rc == EMBR_ENOMEM) return embr_error(rc, "%s: out of memory", w->path);
  return rc ? rc : (w->failed ? EMBR_EIO : 0);
}

/* Colours and labels of plots: the palette, the natural label order, grouping points by label,
 * the data-dependent marker defaults and UTF-8 cleaning (cairo refuses invalid UTF-8 and a
 * browser would show it inconsistently, so both writers get clean strings). */
#include "core/natural.h"
#include "formats/formats_internal.h"
#include "viz/plot_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Twenty colours chosen to stay apart from each other and from white: the first ten differ in hue
 * at similar strength, the next ten are darker or lighter variants that differ from the first ten
 * in lightness. Classes 0-9 (digits, the common case) therefore get the clearest contrast. */
static const unsigned char palette[20][3] = {
    {31, 111, 209},  /* blue */
    {242, 133, 34},  /* orange */
    {35, 164, 85},   /* green */
    {217, 49, 43},   /* red */
    {138, 85, 201},  /* purple */
    {140, 90, 43},   /* brown */
    {227, 91, 176},  /* pink */
    {107, 107, 107}, /* grey */
    {184, 176, 32},  /* olive */
    {23, 179, 198},  /* cyan */
    {13, 61, 122},   /* navy */
    {250, 190, 60},  /* amber */
    {15, 107, 59},   /* dark green */
    {255, 140, 140}, /* salmon */
    {195, 155, 230}, /* lavender */
    {90, 49, 16},    /* dark brown */
    {143, 209, 79},  /* lime */
    {120, 205, 225}, /* light cyan */
    {163, 18, 58},   /* crimson */
    {43, 43, 43},    /* near black */
};

static double hue_channel(double p, double q, double t) {
  if (t < 0) t += 1;
  if (t > 1) t -= 1;
  if (t < 1.0 / 6) return p + (q - p) * 6 * t;
  if (t < 0.5) return q;
  if (t < 2.0 / 3) return p + (q - p) * (2.0 / 3 - t) * 6;
  return p;
}

static void hsl_to_rgb(double h, double s, double l, unsigned char rgb[3]) {
  double q = l < 0.5 ? l * (1 + s) : l + s - l * s, p = 2 * l - q;
  double ch[3] = {hue_channel(p, q, h + 1.0 / 3), hue_channel(p, q, h), hue_channel(p, q, h - 1.0 / 3)};
  for (int i = 0; i < 3; i++) rgb[i] = (unsigned char)lround(ch[i] * 255);
}

void embr_plot_color(int64_t k, unsigned char rgb[3]) {
  if (k < 0) k = 0;
  if (k < 20) {
    memcpy(rgb, palette[k], 3);
    return;
  }
  /* Golden-ratio hue steps never repeat and keep consecutive labels far apart on the circle;
   * cycling three lightness levels separates labels whose hues land close together. */
  static const double light[3] = {0.45, 0.62, 0.33};
  int64_t j = k - 20;
  double h = fmod(0.07 + (double)j * 0.6180339887498949, 1.0);
  hsl_to_rgb(h, 0.70, light[j % 3], rgb);
}

/* 1 and the value when the whole label is a finite decimal number. */
static int label_number(const char *s, double *v) {
  size_t n = strlen(s);
  float f;
  if (n == 0 || embr__parse_float(s, n, &f) != EMBR__NUM_OK) return 0;
  *v = (double)f;
  return 1;
}

int embr__label_cmp(const char *a, const char *b) {
  double va, vb;
  int na = label_number(a, &va), nb = label_number(b, &vb);
  if (na != nb) return na ? -1 : 1;
  if (na && va != vb) return va < vb ? -1 : 1;
  int c = na ? 0 : embr__natural_cmp(a, b);
  return c ? c : strcmp(a, b);
}

typedef struct label_ref {
  const char *s;
  int64_t i;
} label_ref;

static int ref_bytes_cmp(const void *pa, const void *pb) {
  const label_ref *a = pa, *b = pb;
  int c = strcmp(a->s, b->s);
  if (c) return c;
  return (a->i > b->i) - (a->i < b->i);
}

typedef struct name_ref {
  const char *s;
  int64_t group; /* index in byte order */
  int64_t size;
} name_ref;

static int name_natural_cmp(const void *pa, const void *pb) {
  const name_ref *a = pa, *b = pb;
  return embr__label_cmp(a->s, b->s);
}

/* Sorts the points by label bytes to find the distinct labels, then orders those naturally. */
static int group_labels(embr__plot_classes *c, label_ref *refs, int64_t n, name_ref **names_out,
                        int64_t *count_out) {
  qsort(refs, (size_t)n, sizeof *refs, ref_bytes_cmp);
  int64_t count = 0;
  for (int64_t i = 0; i < n; i++)
    if (i == 0 || strcmp(refs[i].s, refs[i - 1].s) != 0) count++;
  if (count > INT32_MAX) return embr_error(EMBR_EINVAL, "more than %d distinct labels", INT32_MAX);
  name_ref *names = calloc((size_t)count, sizeof *names);
  if (!names) return embr_error(EMBR_ENOMEM, "out of memory for %lld labels", (long long)count);
  int64_t g = -1;
  for (int64_t i = 0; i < n; i++) {
    if (i == 0 || strcmp(refs[i].s, refs[i - 1].s) != 0) {
      g++;
      names[g] = (name_ref){refs[i].s, g, 0};
    }
    names[g].size++;
    c->of_point[refs[i].i] = (int32_t)g; /* byte-order group for now */
  }
  qsort(names, (size_t)count, sizeof *names, name_natural_cmp);
  *names_out = names;
  *count_out = count;
  return 0;
}

int embr__plot_classes_build(embr__plot_classes *c, const char *const *labels, int64_t n,
                             const char *path) {
  memset(c, 0, sizeof *c);
  if (!labels) return 0;
  label_ref *refs = malloc(sizeof *refs * (size_t)n);
  c->of_point = malloc(sizeof *c->of_point * (size_t)n);
  if (!refs || !c->of_point) {
    free(refs);
    embr__plot_classes_free(c);
    return embr_error(EMBR_ENOMEM, "%s: out of memory for %lld labels", path, (long long)n);
  }
  for (int64_t i = 0; i < n; i++) refs[i] = (label_ref){labels[i] ? labels[i] : "", i};
  name_ref *names = NULL;
  int64_t count = 0;
  int rc = group_labels(c, refs, n, &names, &count);
  free(refs);
  int32_t *remap = rc ? NULL : malloc(sizeof *remap * (size_t)count);
  c->names = rc ? NULL : malloc(sizeof *c->names * (size_t)count);
  c->sizes = rc ? NULL : malloc(sizeof *c->sizes * (size_t)count);
  if (!rc && (!remap || !c->names || !c->sizes))
    rc = embr_error(EMBR_ENOMEM, "%s: out of memory for %lld labels", path, (long long)count);
  if (!rc) {
    c->count = count;
    for (int64_t k = 0; k < count; k++) {
      c->names[k] = names[k].s;
      c->sizes[k] = names[k].size;
      remap[names[k].group] = (int32_t)k;
    }
    for (int64_t i = 0; i < n; i++) c->of_point[i] = remap[c->of_point[i]];
  }
  free(names);
  free(remap);
  if (rc) embr__plot_classes_free(c);
  return rc;
}

void embr__plot_classes_free(embr__plot_classes *c) {
  free(c->names);
  free(c->sizes);
  free(c->of_point);
  memset(c, 0, sizeof *c);
}

void embr__plot_point_rgb(const embr__plot_classes *c, int64_t i, unsigned char rgb[3]) {
  embr_plot_color(c->of_point ? c->of_point[i] : 0, rgb);
}

/* The diameter falls as n^-1/4: a tenfold denser map gets markers 1.8x smaller, so sparse maps
 * show distinct dots and dense ones still read as coloured regions rather than a solid blob. */
double embr__plot_auto_point_size(int64_t n, int width, int height) {
  double d = 36.0 * pow((double)(n > 1 ? n : 1), -0.25);
  d *= sqrt((double)width * (double)height / (1600.0 * 1200.0));
  return d < 1.5 ? 1.5 : d > 14 ? 14 : d;
}

/* Dense maps need more transparency so that overlap shows as density. */
double embr__plot_auto_opacity(int64_t n) {
  double a = 0.85 - 0.08 * log10((double)(n > 100 ? n : 100) / 100.0);
  return a < 0.55 ? 0.55 : a;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when the bytes there are not one. */
static int utf8_valid_len(const unsigned char *s) {
  unsigned c = s[0];
  if (c < 0x80) return 1;
  int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
  if (!len || c > 0xF4) return 0;
  for (int k = 1; k < len; k++)
    if ((s[k] & 0xC0) != 0x80) return 0; /* also stops at the terminating NUL */
  /* Overlong 3/4-byte forms, UTF-16 surrogates and code points above U+10FFFF. */
  if (c == 0xE0 && s[1] < 0xA0) return 0;
  if (c == 0xED && s[1] >= 0xA0) return 0;
  if (c == 0xF0 && s[1] < 0x90) return 0;
  if (c == 0xF4 && s[1] >= 0x90) return 0;
  return len;
}

char *embr__utf8_clean(const char *s) {
  if (!s) s = "";
  size_t n = strlen(s);
  char *out = n > (SIZE_MAX - 1) / 3 ? NULL : malloc(3 * n + 1);
  if (!out) {
    embr_error(EMBR_ENOMEM, "out of memory");
    return NULL;
  }
  const unsigned char *p = (const unsigned char *)s;
  size_t o = 0;
  while (*p) {
    int len = utf8_valid_len(p);
    if (len) {
      memcpy(out + o, p, (size_t)len);
      o += (size_t)len;
      p += len;
    } else {
      memcpy(out + o, "\xEF\xBF\xBD", 3); /* U+FFFD for each bad byte */
      o += 3;
      p++;
    }
  }
  out[o] = '\0';
  return out;
}

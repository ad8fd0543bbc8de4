/* Maps as `embr tsne` writes them: TSV rows "x <TAB> y [<TAB> z] [<TAB> label]", an optional
 * header. Deciding whether the last column is a label lives here, once, for every reader of maps
 * (plot, tsne transform/eval) and for embr_matrix_read's TSV (convert, info). */
#include "formats/formats_internal.h"

#include <strings.h>

/* Field j of the line [s, e) split at tabs, trimmed of spaces, in [*fs, *fs + *fn). */
static void tab_field(const char *s, const char *e, int64_t j, const char **fs, size_t *fn) {
  for (; j > 0; j--) {
    const char *t = memchr(s, '\t', (size_t)(e - s));
    s = t ? t + 1 : e;
  }
  const char *t = memchr(s, '\t', (size_t)(e - s));
  const char *fe = t ? t : e;
  while (s < fe && *s == ' ') s++;
  while (fe > s && fe[-1] == ' ') fe--;
  *fs = s;
  *fn = (size_t)(fe - s);
}

static int64_t tab_fields(const char *s, const char *e) {
  int64_t k = 1;
  for (const char *q = s; (q = memchr(q, '\t', (size_t)(e - q))) != NULL; q++) k++;
  return k;
}

static int is_number(const char *s, size_t n) {
  float v;
  return embr__parse_float(s, n, &v) != EMBR__NUM_SYNTAX;
}

/* A plain integer token ("7", "-12"): a class id, where coordinates print as decimals. */
static int is_integer(const char *s, size_t n) {
  size_t i = n > 0 && (s[0] == '-' || s[0] == '+');
  if (i == n) return 0;
  for (; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return 0;
  return 1;
}

int embr__map_label_column(const unsigned char *p, size_t len, int guess_classes) {
  embr__lines L;
  const char *s, *e, *fs, *ls;
  size_t fn, ln;
  int header_label = 0, seen_header = 0;
  embr__lines_init(&L, p, len);
  while (embr__lines_next(&L, &s, &e)) {
    if (embr__all_space(s, (size_t)(e - s))) continue;
    int64_t k = tab_fields(s, e);
    tab_field(s, e, 0, &fs, &fn);
    tab_field(s, e, k - 1, &ls, &ln);
    if (!seen_header && !is_number(fs, fn)) { /* the header: does it name a label column? */
      header_label = k >= 3 && ln == 5 && strncasecmp(ls, "label", 5) == 0;
      seen_header = 1;
      continue;
    }
    return k >= 3 && (header_label || !is_number(ls, ln) ||
                      (guess_classes && is_integer(ls, ln) && !is_integer(fs, fn)));
  }
  return 0;
}

embr_status embr_map_read_mem(const void *buf, size_t len, const char *name, embr_format fmt, embr_matrix *out) {
  if (!out) return embr_error(EMBR_EINVAL, "embr_map_read_mem: output matrix is NULL");
  memset(out, 0, sizeof *out);
  if (!name) name = "<memory>";
  if (!buf && len) return embr_error(EMBR_EINVAL, "%s: buffer is NULL", name);
  if (fmt != EMBR_FORMAT_AUTO || embr_format_from_extension(name) != EMBR_FORMAT_TSV || len == 0 ||
      !embr__map_label_column(buf, len, 1))
    return embr_matrix_read_mem(buf, len, name, fmt, out);
  int rc = embr__delimited_parse(buf, len, name, '\t', 1, out);
  if (rc) embr_matrix_free(out);
  return rc;
}

embr_status embr_map_read(const char *path, embr_format fmt, embr_matrix *out) {
  return embr__read_path(path, fmt, out, embr_map_read_mem);
}

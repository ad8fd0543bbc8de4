/* Reading the per-point files shared by the map commands (plot, tsne): the library reads them
 * (embr_lines_read, embr_map_read); these wrappers only print the message. */
#include "commands.h"

int cli_read_lines(const char *path, const char *what, int64_t npoints, embr_lines *out) {
  int rc = embr_lines_read(path, npoints, what, "points", out);
  return rc ? cli_fail(rc) : EXIT_OK;
}

int cli_read_map(const char *path, const char *in_format, embr_matrix *m) {
  if (in_format) return cli_read_matrix(path, in_format, m); /* an explicit format reads strictly */
  int rc = embr_map_read(path, EMBR_FORMAT_AUTO, m);
  return rc ? cli_fail(rc) : EXIT_OK;
}

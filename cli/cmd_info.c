/* embr info: what a matrix file holds (format, shape, words, value range). */
#include "commands.h"

#include <math.h>
#include <string.h>

static int cmd_info(int argc, char **argv) {
  const char *format = NULL, *pos[1];
  int json = 0;
  cli_opt opts[] = {
      OPT_FORMAT(&format),
      OPT_JSON(&json),
  };
  cli_command cmd = {"Describe a matrix file: rows, dimension, words, norms.",
                     "embr info FILE [--format FMT] [--json]", NULL, opts,
                     CLI_NOPTS(opts), 1, 1, pos, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  embr_matrix m = EMBR_MATRIX_INIT;
  int rc = cli_read_matrix_any(pos[0], format, &m);
  if (rc) return rc;
  double nmin = INFINITY, nmax = 0, nsum = 0;
  for (int64_t i = 0; i < m.n; i++) {
    double n = sqrt((double)embr_norm_sq(m.data + i * m.ld, m.dim));
    nmin = fmin(nmin, n);
    nmax = fmax(nmax, n);
    nsum += n;
  }
  embr_format f = EMBR_FORMAT_AUTO;
  if (format) embr_format_parse(format, &f);
  FILE *hf = f == EMBR_FORMAT_AUTO && strcmp(pos[0], "-") ? fopen(pos[0], "rb") : NULL;
  if (hf) { /* the format the reader chose: the content can overrule the name */
    unsigned char head[256];
    f = embr_format_detect(head, fread(head, 1, sizeof head, hf), pos[0]);
    fclose(hf);
  }
  if (f == EMBR_FORMAT_AUTO) f = embr_format_from_extension(pos[0]);
  if (json) {
    printf("{\"file\":");
    cli_json_string(stdout, pos[0]);
    printf(",\"format\":\"%s\",\"rows\":%lld,\"dim\":%lld,\"labels\":%s", embr_format_name(f),
           (long long)m.n, (long long)m.dim, m.labels ? "true" : "false");
    if (m.n)
      printf(",\"norm_min\":%.6g,\"norm_mean\":%.6g,\"norm_max\":%.6g}\n", nmin, nsum / (double)m.n, nmax);
    else
      printf(",\"norm_min\":null,\"norm_mean\":null,\"norm_max\":null}\n");
  } else if (m.n == 0) {
    printf("%s: %s, 0 rows x %lld dims\nnorms: none (no rows)\n", pos[0], embr_format_name(f), (long long)m.dim);
  } else {
    printf("%s: %s, %lld rows x %lld dims%s\nnorms: min %.6g, mean %.6g, max %.6g\n", pos[0],
           embr_format_name(f), (long long)m.n, (long long)m.dim, m.labels ? ", with words" : "",
           nmin, nsum / (double)m.n, nmax);
  }
  embr_matrix_free(&m);
  return EXIT_OK;
}

const cli_entry cli_info = {"info", "describe a matrix file", cmd_info, NULL, 0, NULL};

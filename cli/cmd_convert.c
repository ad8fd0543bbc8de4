/* embr convert: between the matrix formats (npy, fvecs, bvecs, ivecs, word2vec, GloVe, CSV, TSV). */
#include "commands.h"

typedef struct convert_out {
  const embr_matrix *m;
  embr_format format;
} convert_out;

static int write_matrix(const char *path, const void *ctx) {
  const convert_out *o = ctx;
  return embr_matrix_write(path, o->format, o->m);
}

static int cmd_convert(int argc, char **argv) {
  const char *from = NULL, *to = NULL, *pos[2];
  cli_opt opts[] = {
      OPT_STR("--from", NULL, &from, "FMT", "input format", "by extension"),
      OPT_STR("--to", "--format", &to, "FMT", "output format", "by extension"),
  };
  cli_command cmd = {"Convert a matrix file between formats.",
                     "embr convert IN OUT [--from FMT] [--to FMT]",
                     "Formats: npy, fvecs, ivecs, bvecs, w2v-bin, w2v-text, glove, csv, tsv.\n"
                     "Extensions: .npy .fvecs .ivecs .bvecs .bin (word2vec binary) .txt/.vec (word2vec\n"
                     "text, or GloVe when there is no header line) .glove .csv .tsv. Words survive\n"
                     "between word formats; writing a word format from a matrix without words is refused.",
                     opts, CLI_NOPTS(opts), 2, 2, pos, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  embr_format out_fmt = EMBR_FORMAT_AUTO;
  if (to && embr_format_parse(to, &out_fmt) != 0) return cli_usage_error("%s", embr_last_error());
  if (out_fmt == EMBR_FORMAT_AUTO) out_fmt = embr_format_from_extension(pos[1]);
  if (out_fmt == EMBR_FORMAT_AUTO)
    return cli_usage_error("%s: cannot tell the output format from the extension; use --to", pos[1]);
  cli_file files[] = {{"OUT", pos[1], 1}, {"IN", pos[0], 0}};
  int rc = cli_check_files(files, 2);
  if (rc) return rc;
  embr_matrix m = EMBR_MATRIX_INIT;
  rc = cli_read_matrix_any(pos[0], from, &m);
  if (!rc) {
    convert_out ctx = {&m, out_fmt};
    cli_output out = {pos[1], write_matrix, &ctx};
    rc = cli_write_outputs(&out, 1);
  }
  embr_matrix_free(&m);
  return rc;
}

const cli_entry cli_convert = {"convert", "convert a matrix file between formats", cmd_convert, NULL, 0, NULL};

/* embr synth: seeded clustered vectors (and queries from the same mixture) for demos and
 * benchmarks. */
#include "commands.h"

#include <stdlib.h>

typedef struct synth_out {
  const embr_matrix *m;
} synth_out;

static int write_rows(const char *path, const void *ctx) {
  const synth_out *o = ctx;
  return embr_matrix_write(path, embr_format_from_extension(path), o->m);
}

typedef struct synth_labels {
  const int32_t *c;
  int64_t n;
} synth_labels;

static int write_labels(const char *path, const void *ctx) {
  const synth_labels *l = ctx;
  FILE *f = fopen(path, "wb");
  if (!f) return embr_error(EMBR_EIO, "%s: cannot create", path);
  for (int64_t i = 0; i < l->n; i++) fprintf(f, "cluster %d\n", (int)l->c[i]);
  int bad = ferror(f);
  if (fclose(f) != 0 || bad) return embr_error(EMBR_EIO, "%s: write failed", path);
  return 0;
}

static int cmd_synth(int argc, char **argv) {
  const char *out = NULL, *qout = NULL, *lout = NULL;
  int64_t n = 10000, dim = 128, clusters = 100, nq = 0, seed = 1, threads = 0;
  double spread_min = 0.05, spread_max = 0.4, center_std = 1.0;
  int normalize = 0;
  cli_opt opts[] = {
      OPT_STR_REQ("--out", "-o|--output", &out, "FILE", "base vectors to write (.fvecs, .npy, .csv, ...)"),
      OPT_INT("-n", "--rows", &n, "N", "rows", "10000", 1, 1e10),
      OPT_INT("--dim", "-d", &dim, "D", "dimension", "128", 1, 1e6),
      OPT_INT("--clusters", "-c", &clusters, "C", "Gaussian clusters in the mixture", "100", 1, 1e7),
      OPT_INT("--queries", NULL, &nq, "NQ", "also draw NQ query rows from the same mixture", "0", 0, 1e9),
      OPT_STR("--query-out", NULL, &qout, "FILE", "where the queries go (needs --queries)", "none"),
      OPT_STR("--labels-out", NULL, &lout, "FILE", "each base row's cluster (\"cluster N\"), one per line", "none"),
      OPT_DBL("--center-std", NULL, &center_std, "S", "spread of the cluster centres", "1.0", 0, 1e6),
      OPT_DBL("--spread-min", NULL, &spread_min, "S", "smallest per-axis cluster std", "0.05", 1e-9, 1e6),
      OPT_DBL("--spread-max", NULL, &spread_max, "S", "largest per-axis cluster std", "0.4", 1e-9, 1e6),
      OPT_FLAG("--normalize", NULL, &normalize, "scale rows to unit length (cosine data)"),
      OPT_SEED(&seed, " (fixes the mixture and the rows)"),
      OPT_THREADS(&threads),
  };
  cli_command cmd = {"Generate clustered vectors: a seeded mixture of anisotropic Gaussians.",
                     "embr synth -o base.fvecs [-n N] [--dim D] [--queries NQ --query-out q.fvecs] [options]",
                     "Base rows and queries come from the same mixture but different random streams, so\n"
                     "no query is a copy of a base row. The same seed gives the same bytes on any machine.",
                     opts, CLI_NOPTS(opts), 0, 0, NULL, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  if ((nq > 0) != (qout != NULL)) return cli_usage_error("--queries and --query-out go together");
  if (spread_min > spread_max) return cli_usage_error("--spread-min must not exceed --spread-max");
  if (embr_format_from_extension(out) == EMBR_FORMAT_AUTO)
    return cli_usage_error("%s: cannot tell the output format from the extension", out);
  if (qout && embr_format_from_extension(qout) == EMBR_FORMAT_AUTO)
    return cli_usage_error("%s: cannot tell the output format from the extension", qout);

  cli_file files[] = {{"--out", out, 1}, {"--query-out", qout, 1}, {"--labels-out", lout, 1}};
  int frc = cli_check_files(files, 3);
  if (frc) return frc;
  embr_synth_params p = embr_synth_params_default();
  p.clusters = clusters;
  p.center_std = center_std;
  p.spread_min = spread_min;
  p.spread_max = spread_max;
  p.normalize = normalize;
  p.seed = (uint64_t)seed;
  p.n_threads = (int)threads;
  embr_matrix base = EMBR_MATRIX_INIT, q = EMBR_MATRIX_INIT;
  int32_t *labels = lout ? malloc(sizeof(int32_t) * (size_t)n) : NULL;
  if (lout && !labels) return cli_fail(embr_error(EMBR_ENOMEM, "out of memory"));
  int rc = embr_synth_clusters(&p, n, dim, 0, &base, labels);
  if (!rc && nq) rc = embr_synth_clusters(&p, nq, dim, 1, &q, NULL);
  if (rc) {
    embr_matrix_free(&base);
    free(labels);
    return cli_fail(rc);
  }
  synth_out so = {&base}, sq = {&q};
  synth_labels sl = {labels, n};
  cli_output outs[3] = {{out, write_rows, &so}};
  int nout = 1;
  if (nq) outs[nout++] = (cli_output){qout, write_rows, &sq};
  if (lout) outs[nout++] = (cli_output){lout, write_labels, &sl};
  rc = cli_write_outputs(outs, nout);
  free(labels);
  embr_matrix_free(&base);
  embr_matrix_free(&q);
  return rc;
}

const cli_entry cli_synth = {"synth", "generate clustered vectors (seeded Gaussian mixture)", cmd_synth, NULL, 0, NULL};

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

int cmd_synth(int argc, char **argv) {
  const char *out = NULL, *qout = NULL;
  int64_t n = 10000, dim = 128, clusters = 100, nq = 0, seed = 1, threads = 0;
  double spread_min = 0.05, spread_max = 0.4, center_std = 1.0;
  int normalize = 0;
  cli_opt opts[] = {
      OPT_STR_REQ("--out", "-o", &out, "FILE", "base vectors to write (.fvecs, .npy, .csv, ...)"),
      OPT_INT("-n", "--rows", &n, "N", "rows", "10000", 1, 1e10),
      OPT_INT("--dim", "-d", &dim, "D", "dimension", "128", 1, 1e6),
      OPT_INT("--clusters", "-c", &clusters, "C", "Gaussian clusters in the mixture", "100", 1, 1e7),
      OPT_INT("--queries", NULL, &nq, "NQ", "also draw NQ query rows from the same mixture", "0", 0, 1e9),
      OPT_STR("--query-out", NULL, &qout, "FILE", "where the queries go (needs --queries)", "none"),
      OPT_DBL("--center-std", NULL, &center_std, "S", "spread of the cluster centres", "1.0", 0, 1e6),
      OPT_DBL("--spread-min", NULL, &spread_min, "S", "smallest per-axis cluster std", "0.05", 1e-9, 1e6),
      OPT_DBL("--spread-max", NULL, &spread_max, "S", "largest per-axis cluster std", "0.4", 1e-9, 1e6),
      OPT_FLAG("--normalize", NULL, &normalize, "scale rows to unit length (cosine data)"),
      OPT_INT("--seed", NULL, &seed, "S", "random seed (fixes the mixture and the rows)", "1", 0, 9e18),
      OPT_INT("--threads", "-t", &threads, "N", "threads (0 = all cores); output does not depend on it", "0", 0, 4096),
  };
  cli_command cmd = {"synth", "Generate clustered vectors: a seeded mixture of anisotropic Gaussians.",
                     "embr synth -o base.fvecs [-n N] [--dim D] [--queries NQ --query-out q.fvecs] [options]",
                     "Base rows and queries come from the same mixture but different random streams, so\n"
                     "no query is a copy of a base row. The same seed gives the same bytes on any machine.",
                     opts, (int)(sizeof opts / sizeof opts[0]), 0, 0, NULL, 0};
  int prc = cli_parse(&cmd, argc, argv);
  if (prc) return prc == CLI_HELP ? EXIT_OK : EXIT_USAGE;
  if ((nq > 0) != (qout != NULL)) return cli_usage_error(&cmd, "--queries and --query-out go together");
  if (spread_min > spread_max) return cli_usage_error(&cmd, "--spread-min must not exceed --spread-max");
  if (embr_format_from_extension(out) == EMBR_FORMAT_AUTO)
    return cli_usage_error(&cmd, "%s: cannot tell the output format from the extension", out);
  if (qout && embr_format_from_extension(qout) == EMBR_FORMAT_AUTO)
    return cli_usage_error(&cmd, "%s: cannot tell the output format from the extension", qout);

  if (cli_check_output("synth", out) || (qout && cli_check_output("synth", qout))) return EXIT_ERR;
  embr_synth_params p = embr_synth_params_default();
  p.clusters = clusters;
  p.center_std = center_std;
  p.spread_min = spread_min;
  p.spread_max = spread_max;
  p.normalize = normalize;
  p.seed = (uint64_t)seed;
  p.n_threads = (int)threads;
  embr_matrix base = EMBR_MATRIX_INIT, q = EMBR_MATRIX_INIT;
  int rc = embr_synth_clusters(&p, n, dim, 0, &base, NULL);
  if (!rc && nq) rc = embr_synth_clusters(&p, nq, dim, 1, &q, NULL);
  if (rc) {
    embr_matrix_free(&base);
    return cli_fail("synth", rc);
  }
  synth_out so = {&base}, sq = {&q};
  cli_output outs[2] = {{out, write_rows, &so}, {qout, write_rows, &sq}};
  rc = cli_write_outputs("synth", outs, nq ? 2 : 1);
  embr_matrix_free(&base);
  embr_matrix_free(&q);
  return rc;
}

/* embr search: exact k-nearest-neighbour search of query vectors among base vectors. */
#include "commands.h"

#include <stdlib.h>
#include <string.h>

static void print_text(const cli_search_out *r, const embr_matrix *base) {
  for (int64_t qi = 0; qi < r->nq; qi++) {
    printf("%lld", (long long)qi);
    for (int j = 0; j < r->k; j++) {
      int64_t id = r->ids[qi * r->k + j];
      if (id < 0) break;
      if (base->labels && base->labels[id])
        printf("\t%s:%.6g", base->labels[id], (double)r->dist[qi * r->k + j]);
      else
        printf("\t%lld:%.6g", (long long)id, (double)r->dist[qi * r->k + j]);
    }
    printf("\n");
  }
}

void cli_print_results_json(int64_t nq, int k, const float *dist, const int64_t *ids, char *const *labels,
                            embr_metric metric) {
  printf("{\"metric\":\"%s\",\"k\":%d,\"results\":[", embr_metric_name(metric), k);
  for (int64_t qi = 0; qi < nq; qi++) {
    int n = 0;
    while (n < k && ids[qi * k + n] >= 0) n++;
    printf("%s{\"query\":%lld,\"ids\":[", qi ? "," : "", (long long)qi);
    for (int j = 0; j < n; j++) printf("%s%lld", j ? "," : "", (long long)ids[qi * k + j]);
    printf("],\"distances\":[");
    for (int j = 0; j < n; j++) {
      if (j) putchar(',');
      cli_json_float(stdout, dist[qi * k + j]);
    }
    printf("]");
    if (labels) {
      printf(",\"labels\":[");
      for (int j = 0; j < n; j++) {
        if (j) putchar(',');
        const char *l = labels[ids[qi * k + j]];
        cli_json_string(stdout, l ? l : "");
      }
      printf("]");
    }
    printf("}");
  }
  printf("]}\n");
}

static int cmd_search(int argc, char **argv) {
  const char *base_path = NULL, *query_path = NULL, *metric_name = "l2", *format = NULL;
  const char *out_ids = NULL, *out_dist = NULL;
  int64_t k = 10, threads = 0;
  int json = 0, quiet = 0;
  cli_opt opts[] = {
      OPT_STR_REQ("--base", NULL, &base_path, "FILE", "base vectors (any matrix format)"),
      OPT_STR_REQ("--query", NULL, &query_path, "FILE", "query vectors, same dimension as the base"),
      OPT_INT("-k", "--k", &k, "K", "neighbours per query", "10", 1, 100000),
      OPT_METRIC(&metric_name),
      OPT_THREADS(&threads),
      OPT_FORMAT(&format),
      OPT_STR("--out-ids", NULL, &out_ids, "FILE", "write ids as .ivecs (-1 pads when k > base size)", "none"),
      OPT_STR("--out-dist", NULL, &out_dist, "FILE", "write distances as .fvecs", "none"),
      OPT_JSON(&json),
      OPT_QUIET(&quiet),
  };
  cli_command cmd = {"Exact k-nearest-neighbour search (brute force, all four metrics).",
                     "embr search --base FILE --query FILE [-k K] [--metric M] [options]",
                     "Results are (distance, id) pairs, best first, ties by lower id. L2 is the squared\n"
                     "Euclidean distance and L1 the Manhattan distance (smaller is better); ip is the\n"
                     "inner product and cosine the cosine similarity (larger is better). Without\n"
                     "--out-ids/--out-dist the results are printed, one line per query:\n"
                     "  QUERY<TAB>ID:DIST<TAB>ID:DIST ...  (words instead of ids for word2vec/GloVe bases).",
                     opts, CLI_NOPTS(opts), 0, 0, NULL, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  embr_metric metric;
  if (embr_metric_parse(metric_name, &metric) != 0) return cli_usage_error("%s", embr_last_error());

  cli_file files[] = {{"--out-ids", out_ids, 1}, {"--out-dist", out_dist, 1}, {"--base", base_path, 0}, {"--query", query_path, 0}};
  int frc = cli_check_files(files, 4);
  if (frc) return frc;
  embr_matrix base = EMBR_MATRIX_INIT, query = EMBR_MATRIX_INIT;
  int rc = cli_read_matrix(base_path, format, &base);
  if (!rc) rc = cli_read_matrix(query_path, format, &query);
  if (!rc && query.dim != base.dim) {
    rc = cli_error("%s: dimension %lld does not match %s dimension %lld", query_path,
            (long long)query.dim, base_path, (long long)base.dim);
  }
  float *dist = NULL;
  int64_t *ids = NULL;
  if (!rc) {
    size_t n = (size_t)query.n * (size_t)k;
    dist = malloc(sizeof(float) * (n ? n : 1));
    ids = malloc(sizeof(int64_t) * (n ? n : 1));
    if (!dist || !ids) rc = cli_fail(embr_error(EMBR_ENOMEM, "out of memory for %lld x %lld results", (long long)query.n, (long long)k));
  }
  if (!rc) {
    cli_bar bar;
    cli_bar_init(&bar, "search", quiet);
    embr_knn_params p = embr_knn_params_default();
    p.n_threads = (int)threads;
    p.progress = cli_bar_progress(&bar);
    double t0 = embr_now();
    int s = embr_knn(metric, base.data, base.n, base.ld, query.data, query.n, query.ld, base.dim,
                     (int)k, dist, ids, &p);
    double secs = embr_now() - t0;
    cli_bar_done(&bar);
    if (s) rc = cli_fail(s);
    else if (!quiet)
      fprintf(stderr, "searched %lld queries in %lld base vectors (dim %lld, %s) in %.3f s: %.1f queries/s\n",
              (long long)query.n, (long long)base.n, (long long)base.dim, embr_metric_name(metric),
              secs, secs > 0 ? (double)query.n / secs : 0.0);
  }
  if (!rc) {
    cli_search_out r = {query.n, (int)k, dist, ids};
    cli_output outs[2];
    int nout = 0;
    if (out_ids) outs[nout++] = (cli_output){out_ids, cli_write_search_ids, &r};
    if (out_dist) outs[nout++] = (cli_output){out_dist, cli_write_search_dist, &r};
    if (nout)
      rc = cli_write_outputs(outs, nout);
    else if (json)
      cli_print_results_json(r.nq, r.k, r.dist, r.ids, base.labels, metric);
    else
      print_text(&r, &base);
  }
  free(dist);
  free(ids);
  embr_matrix_free(&base);
  embr_matrix_free(&query);
  return rc;
}

const cli_entry cli_search = {"search", "exact k-nearest-neighbour search (l2, ip, cosine, l1)", cmd_search, NULL, 0, NULL};

/* embr index: build an index file from vectors, search it (with parameter sweeps), describe it. */
#include "commands.h"

#include <stdlib.h>
#include <string.h>

typedef struct index_file {
  const embr_index *ix;
} index_file;

static int write_index(const char *path, const void *ctx) {
  return embr_index_save(((const index_file *)ctx)->ix, path);
}

static int index_build(int argc, char **argv) {
  const char *spec = "hnsw", *metric_name = "l2", *in = NULL, *out = NULL, *format = NULL, *ids_path = NULL;
  int64_t threads = 0;
  int quiet = 0;
  cli_opt opts[] = {
      OPT_STR("--spec", "-s", &spec, "SPEC", "flat | hnsw:M=16,efc=200,ef=64 | ivfflat:nlist=1024 | ivfpq:nlist=1024,m=16", "hnsw"),
      OPT_METRIC(&metric_name),
      OPT_STR_REQ("--input", "-i", &in, "FILE", "vectors (npy, fvecs, CSV, word2vec, ...)"),
      OPT_STR_REQ("--output", "-o", &out, "FILE", "the index file"),
      OPT_STR("--ids", NULL, &ids_path, "FILE", "one integer id per line (default 0, 1, 2, ...)", "row numbers"),
      OPT_THREADS(&threads),
      OPT_FORMAT(&format),
      OPT_QUIET(&quiet),
  };
  cli_command cmd = {"Build an index file from vectors.",
                     "embr index build --spec S --metric M -i base.fvecs -o my.idx", NULL, opts,
                     CLI_NOPTS(opts), 0, 0, NULL, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  embr_metric m;
  if (embr_metric_parse(metric_name, &m)) return cli_usage_error("%s", embr_last_error());
  cli_file files[] = {{"--output", out, 1}, {"--input", in, 0}, {"--ids", ids_path, 0}};
  int frc = cli_check_files(files, 3);
  if (frc) return frc;
  embr_matrix x = EMBR_MATRIX_INIT;
  int rc = cli_read_matrix(in, format, &x);
  if (rc) return rc;
  int64_t *ids = NULL;
  if (ids_path) {
    embr_lines l;
    int s = embr_lines_read(ids_path, x.n, "ids", "vectors", &l);
    ids = s ? NULL : malloc(sizeof(int64_t) * (size_t)(x.n + 1));
    if (!s && !ids) s = embr_error(EMBR_ENOMEM, "out of memory for %lld ids", (long long)x.n);
    if (!s) s = embr_lines_parse_ids(&l, ids_path, ids);
    embr_lines_free(&l);
    if (s) {
      free(ids);
      embr_matrix_free(&x);
      return cli_fail(s);
    }
  }
  embr_index *ix = NULL;
  int s = embr_index_create(&ix, spec, x.dim, m);
  if (s) {
    free(ids);
    embr_matrix_free(&x);
    return s == EMBR_EINVAL ? cli_usage_error("%s", embr_last_error()) : cli_fail(s); /* a bad --spec */
  }
  embr_index_set_threads(ix, (int)threads);
  cli_bar bar;
  cli_bar_init(&bar, "build", quiet);
  embr_progress pr = cli_bar_progress(&bar);
  double t0 = embr_now();
  s = embr_index_train(ix, x.data, x.n, x.ld, &pr);
  if (!s) s = embr_index_add(ix, x.data, x.n, x.ld, ids, &pr);
  double secs = embr_now() - t0;
  cli_bar_done(&bar);
  if (s) {
    rc = cli_fail(s);
  } else {
    if (!quiet)
      fprintf(stderr, "built %s over %lld vectors (dim %lld, %s) in %.2f s; %.1f MB in memory\n", embr_index_spec(ix),
              (long long)embr_index_size(ix), (long long)x.dim, embr_metric_name(m), secs, (double)embr_index_memory(ix) / 1e6);
    index_file f = {ix};
    cli_output o = {out, write_index, &f};
    rc = cli_write_outputs(&o, 1);
  }
  embr_index_free(ix);
  free(ids);
  embr_matrix_free(&x);
  return rc;
}

static int index_search(int argc, char **argv) {
  const char *qpath = NULL, *efs = NULL, *nprobes = NULL, *truth_path = NULL, *out_ids = NULL, *out_dist = NULL, *format = NULL, *pos[1];
  int64_t k = 10, threads = 0, refine = -1, repeat = 1;
  int json = 0, use_mmap = 0, quiet = 0;
  cli_opt opts[] = {
      OPT_STR_REQ("--query", NULL, &qpath, "FILE", "query vectors"),
      OPT_INT("-k", "--k", &k, "K", "neighbours per query", "10", 1, 100000),
      OPT_STR("--ef", NULL, &efs, "EF[,EF...]", "HNSW candidate list size; a list sweeps", "the index's"),
      OPT_STR("--nprobe", NULL, &nprobes, "N[,N...]", "IVF cells to visit; a list sweeps", "the index's"),
      OPT_INT("--refine", NULL, &refine, "R", "IVF-PQ: re-rank R*k candidates exactly (-1 = the index's)", "-1", -1, 10000),
      OPT_STR("--truth", NULL, &truth_path, "FILE", "ground-truth ids (.ivecs): print recall@k", "none"),
      OPT_THREADS(&threads),
      OPT_INT("--repeat", NULL, &repeat, "R", "time each setting R times, report the best", "1", 1, 1000),
      OPT_STR("--out-ids", NULL, &out_ids, "FILE", "write ids as .ivecs (single setting only)", "none"),
      OPT_STR("--out-dist", NULL, &out_dist, "FILE", "write distances as .fvecs (single setting only)", "none"),
      OPT_FLAG("--mmap", NULL, &use_mmap, "map the index file read-only instead of loading it"),
      OPT_FORMAT(&format),
      OPT_JSON(&json),
      OPT_QUIET(&quiet),
  };
  cli_command cmd = {"Search an index file; with --ef/--nprobe lists, sweep and report recall and queries/s.",
                     "embr index search my.idx -q Q.fvecs -k 10 [--ef 16,32,64,128 --truth gt.ivecs]", NULL, opts,
                     CLI_NOPTS(opts), 1, 1, pos, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  int64_t ef[64], np[64];
  int nef = 0, nnp = 0;
  if (efs && embr_int_list_parse(efs, 1, 1000000, ef, 64, &nef))
    return cli_usage_error("--ef takes positive integers separated by commas: %s", embr_last_error());
  if (nprobes && embr_int_list_parse(nprobes, 1, 1000000, np, 64, &nnp))
    return cli_usage_error("--nprobe takes positive integers separated by commas: %s", embr_last_error());
  if (nef > 1 && nnp > 1) return cli_usage_error("sweep one of --ef and --nprobe at a time");
  int settings = nef > 1 ? nef : nnp > 1 ? nnp : 1;
  if (settings > 1 && (out_ids || out_dist)) return cli_usage_error("--out-ids/--out-dist need a single setting");
  cli_file files[] = {{"--out-ids", out_ids, 1}, {"--out-dist", out_dist, 1}, {"INDEX", pos[0], 0}, {"--query", qpath, 0}, {"--truth", truth_path, 0}};
  int frc = cli_check_files(files, 5);
  if (frc) return frc;
  embr_index *ix = NULL;
  int s = embr_index_load(&ix, pos[0], use_mmap ? EMBR_LOAD_MMAP : 0);
  if (s) return cli_fail(s);
  embr_matrix q = EMBR_MATRIX_INIT;
  int rc = cli_read_matrix(qpath, format, &q);
  int32_t *truth = NULL;
  int64_t tn = 0, td = 0;
  if (!rc && q.dim != embr_index_dim(ix)) {
    rc = cli_error("%s: dimension %lld does not match the index's %lld", qpath, (long long)q.dim,
            (long long)embr_index_dim(ix));
  }
  if (!rc && truth_path) {
    if ((s = embr_ivecs_read(truth_path, &truth, &tn, &td))) rc = cli_fail(s);
    else if (tn != q.n || td < k) {
      rc = cli_error("%s: %lld x %lld, need %lld rows of at least %lld ids", truth_path, (long long)tn,
              (long long)td, (long long)q.n, (long long)k);
    }
  }
  float *dist = NULL;
  int64_t *ids = NULL;
  if (!rc) {
    dist = malloc(sizeof(float) * (size_t)(q.n * k));
    ids = malloc(sizeof(int64_t) * (size_t)(q.n * k));
    if (!dist || !ids) rc = cli_fail(embr_error(EMBR_ENOMEM, "out of memory"));
  }
  /* The knob a line reports: the swept one, else the one given (none when neither is). */
  const char *knob = nnp > 1 || (nnp && !nef) ? "nprobe" : nef ? "ef" : NULL;
  if (json && settings > 1 && !rc) printf("[");
  for (int st = 0; st < settings && !rc; st++) {
    embr_search_params p = embr_search_params_default();
    p.ef = nef ? (int)ef[nef > 1 ? st : 0] : 0;
    p.nprobe = nnp ? (int)np[nnp > 1 ? st : 0] : 0;
    p.refine = (int)refine;
    p.n_threads = (int)threads;
    double best = 1e30, rec = -1;
    for (int r = 0; r < repeat && !rc; r++) {
      double t0 = embr_now();
      if ((s = embr_index_search(ix, q.data, q.n, q.ld, (int)k, dist, ids, &p))) rc = cli_fail(s);
      double t = embr_now() - t0;
      if (t < best) best = t;
    }
    if (!rc && truth && (s = embr_recall_at_k(ids, k, truth, td, q.n, (int)k, &rec))) rc = cli_fail(s);
    if (rc) break;
    double qps = (double)q.n / best;
    int val = knob && !strcmp(knob, "nprobe") ? p.nprobe : p.ef;
    if (settings > 1 || truth) {
      if (json) {
        printf("%s{", st ? "," : "");
        if (knob) printf("\"%s\":%d,", knob, val);
        if (rec >= 0) printf("\"recall\":%.6f,", rec);
        else printf("\"recall\":null,");
        printf("\"qps\":%.1f}%s", qps, settings > 1 ? "" : "\n");
      } else {
        if (knob) printf("%s %-6d ", knob, val);
        if (rec >= 0) printf("recall@%lld %.4f  ", (long long)k, rec);
        printf("%.0f queries/s\n", qps);
      }
    } else if (!quiet) {
      fprintf(stderr, "searched %lld queries in %.3f s: %.1f queries/s\n", (long long)q.n, best, qps);
    }
  }
  if (json && settings > 1 && !rc) printf("]\n");
  /* A single setting writes its results (with or without --truth); without --truth and without
   * output files they are printed. */
  if (!rc && settings == 1) {
    cli_search_out r = {q.n, (int)k, dist, ids};
    cli_output outs[2];
    int nout = 0;
    if (out_ids) outs[nout++] = (cli_output){out_ids, cli_write_search_ids, &r};
    if (out_dist) outs[nout++] = (cli_output){out_dist, cli_write_search_dist, &r};
    if (nout)
      rc = cli_write_outputs(outs, nout);
    else if (json && !truth)
      cli_print_results_json(q.n, (int)k, dist, ids, NULL, embr_index_metric(ix));
    else if (!truth)
      for (int64_t i = 0; i < q.n; i++) {
        printf("%lld", (long long)i);
        for (int j = 0; j < k && ids[i * k + j] >= 0; j++) printf("\t%lld:%.6g", (long long)ids[i * k + j], (double)dist[i * k + j]);
        printf("\n");
      }
  }
  free(dist);
  free(ids);
  embr_free(truth);
  embr_matrix_free(&q);
  embr_index_free(ix);
  return rc;
}

static int index_info(int argc, char **argv) {
  const char *pos[1];
  int json = 0;
  cli_opt opts[] = {OPT_JSON(&json)};
  cli_command cmd = {"Describe an index file.", "embr index info my.idx [--json]", NULL, opts, 1, 1, 1, pos, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  embr_index *ix = NULL;
  int s = embr_index_load(&ix, pos[0], EMBR_LOAD_MMAP);
  if (s) return cli_fail(s);
  if (json) {
    printf("{\"file\":");
    cli_json_string(stdout, pos[0]);
    printf(",\"spec\":");
    cli_json_string(stdout, embr_index_spec(ix));
    printf(",\"metric\":\"%s\",\"dim\":%lld,\"size\":%lld,\"memory_bytes\":%lld}\n", embr_metric_name(embr_index_metric(ix)),
           (long long)embr_index_dim(ix), (long long)embr_index_size(ix), (long long)embr_index_memory(ix));
  } else {
    printf("%s: %s, metric %s, dim %lld, %lld items, %.1f MB when loaded\n", pos[0], embr_index_spec(ix),
           embr_metric_name(embr_index_metric(ix)), (long long)embr_index_dim(ix), (long long)embr_index_size(ix),
           (double)embr_index_memory(ix) / 1e6);
  }
  embr_index_free(ix);
  return EXIT_OK;
}

static const cli_entry index_commands[] = {
    {"build", "build an index file from vectors (flat, hnsw, ivfflat, ivfpq)", index_build, NULL, 0, NULL},
    {"search", "search it; --ef/--nprobe lists sweep recall and queries/s", index_search, NULL, 0, NULL},
    {"info", "describe an index file", index_info, NULL, 0, NULL},
};
const cli_entry cli_index = {"index", "build, search and describe approximate (HNSW, IVF) and exact indexes", NULL,
                             CLI_CHILDREN(index_commands), NULL};

/* embr tsne: maps vectors to 2-D/3-D (and `transform` new points, `eval` a map). */
#include "commands.h"

#include "embr/plot.h"
#include "embr/tsne.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- output ------------------------------------------------------------------------------- */

typedef struct map_out {
  const float *y;
  int64_t n;
  int d;
  char *const *labels;
} map_out;

/* The picture, written with the map through cli_write_outputs (both or neither). */
typedef struct plot_out {
  const map_out *m;
  char *const *labels, *const *texts;
  const char *title;
} plot_out;

static int write_plot(const char *path, const void *ctx) {
  const plot_out *po = ctx;
  return cli_plot_write(path, po->m->y, po->m->n, po->m->d, po->labels, po->texts, po->title);
}

/* .npy (coordinates only) or TSV: x, y[, z][, label] per line. */
static int write_map(const char *path, const void *ctx) {
  const map_out *m = ctx;
  embr_format f = embr_format_from_extension(path);
  if (f == EMBR_FORMAT_NPY || f == EMBR_FORMAT_FVECS || f == EMBR_FORMAT_CSV) {
    embr_matrix mm = {m->n, m->d, m->d, (float *)m->y, NULL};
    return embr_matrix_write(path, f, &mm);
  }
  FILE *fp = fopen(path, "wb");
  if (!fp) return embr_error(EMBR_EIO, "%s: cannot create: %s", path, strerror(errno));
  for (int64_t i = 0; i < m->n; i++) {
    for (int c = 0; c < m->d; c++) fprintf(fp, c ? "\t%.7g" : "%.7g", (double)m->y[i * m->d + c]);
    if (m->labels) fprintf(fp, "\t%s", m->labels[i]);
    fputc('\n', fp);
  }
  int bad = ferror(fp);
  if (fclose(fp) != 0 || bad) return embr_error(EMBR_EIO, "%s: write failed", path);
  return 0;
}

static int parse_method(const char *s, embr_tsne_method *m) {
  if (!strcmp(s, "auto")) *m = EMBR_TSNE_AUTO;
  else if (!strcmp(s, "exact")) *m = EMBR_TSNE_EXACT;
  else if (!strcmp(s, "bh") || !strcmp(s, "barnes-hut")) *m = EMBR_TSNE_BH;
  else if (!strcmp(s, "fft") || !strcmp(s, "fit-sne")) *m = EMBR_TSNE_FFT;
  else return -1;
  return 0;
}

static const char *method_name(int m) {
  return m == EMBR_TSNE_EXACT ? "exact" : m == EMBR_TSNE_BH ? "Barnes-Hut" : m == EMBR_TSNE_FFT ? "FFT" : "auto";
}

/* Options shared by the map-making subcommands. */
typedef struct tsne_opts {
  int64_t dims, iters, exag_iters, seed, threads, pca;
  double perplexity, exaggeration, lr, theta;
  const char *method, *init, *metric, *format;
  int quiet;
} tsne_opts;

static void tsne_opts_default(tsne_opts *o) {
  memset(o, 0, sizeof *o);
  o->dims = 2;
  o->iters = 1000;
  o->exag_iters = 250;
  o->seed = 1;
  o->pca = -1;
  o->perplexity = 30;
  o->exaggeration = 12;
  o->theta = 0.5;
  o->method = "auto";
  o->init = "pca";
  o->metric = "l2";
}

#define TSNE_COMMON_OPTS(o)                                                                                   \
  OPT_INT("--dims", NULL, &(o).dims, "D", "output dimensions (2 or 3)", "2", 2, 3),                          \
  OPT_DBL("--perplexity", "-p", &(o).perplexity, "P", "effective number of neighbours", "30", 1, 10000),       \
  OPT_INT("--iters", NULL, &(o).iters, "N", "iterations (including early exaggeration)", "1000", 1, 1000000), \
  OPT_DBL("--exaggeration", NULL, &(o).exaggeration, "E", "early exaggeration factor", "12", 1, 1000),         \
  OPT_INT("--exaggeration-iters", NULL, &(o).exag_iters, "N", "iterations of early exaggeration", "250", 0, 1000000), \
  OPT_DBL("--learning-rate", NULL, &(o).lr, "R", "learning rate (0 = auto: max(N/12, 50))", "auto", 0, 1e9),           \
  OPT_STR("--method", NULL, &(o).method, "M", "auto | exact | bh | fft (fft: 2-D only)", "auto"),             \
  OPT_DBL("--theta", NULL, &(o).theta, "T", "Barnes-Hut opening angle", "0.5", 0, 10),                         \
  OPT_STR("--init", NULL, &(o).init, "I", "pca | random", "pca"),                                              \
  OPT_INT("--pca", NULL, &(o).pca, "K", "reduce input to K dims by PCA first (0 = off, -1 = 50 when dim > 100)", "-1", -1, 100000), \
  OPT_METRIC(&(o).metric),                 \
  OPT_SEED(&(o).seed, " (with --threads 1: identical output)"),  \
  OPT_THREADS(&(o).threads),                      \
  OPT_FORMAT(&(o).format),                               \
  OPT_QUIET(&(o).quiet)

static int to_params(const tsne_opts *o, embr_tsne_params *p, cli_bar *bar) {
  *p = embr_tsne_params_default();
  p->out_dim = (int)o->dims;
  p->perplexity = o->perplexity;
  p->iters = (int)o->iters;
  p->exaggeration = o->exaggeration;
  p->exaggeration_iters = (int)o->exag_iters;
  p->learning_rate = o->lr;
  p->theta = o->theta;
  p->pca_dims = (int)o->pca;
  p->seed = (uint64_t)o->seed;
  p->n_threads = (int)o->threads;
  if (parse_method(o->method, &p->method)) return cli_usage_error("unknown --method '%s'", o->method);
  if (!strcmp(o->init, "pca")) p->init = EMBR_TSNE_INIT_PCA;
  else if (!strcmp(o->init, "random")) p->init = EMBR_TSNE_INIT_RANDOM;
  else return cli_usage_error("unknown --init '%s' (pca or random)", o->init);
  if (embr_metric_parse(o->metric, &p->metric)) return cli_usage_error("%s", embr_last_error());
  if (p->method == EMBR_TSNE_FFT && p->out_dim == 3) return cli_usage_error("--method fft is 2-D only (use bh for --dims 3)");
  cli_bar_init(bar, "tsne", o->quiet);
  p->progress = cli_bar_progress(bar);
  return 0;
}

/* Reads a precomputed input and makes P: dense (an n x n distance matrix) or sparse ("i j
 * distance" rows, read by embr_triplets_read). Prints the problem and returns an exit code. */
static int affinities_precomputed(const char *mode, const char *path, const char *format, const embr_tsne_params *p,
                                  embr_affinities *P) {
  embr_matrix m = EMBR_MATRIX_INIT;
  int s;
  if (!strcmp(mode, "dense")) {
    int rc = cli_read_matrix(path, format, &m);
    if (rc) return rc;
    s = m.n != m.dim ? embr_error(EMBR_EDIM, "%s: precomputed dense input must be square, got %lld x %lld", path,
                                  (long long)m.n, (long long)m.dim)
                     : embr_tsne_affinities_dense(m.data, m.n, m.ld, p, P);
  } else {
    embr_format f = EMBR_FORMAT_AUTO;
    if (format && embr_format_parse(format, &f)) return cli_usage_error("%s", embr_last_error());
    s = embr_triplets_read(path, f, &m);
    if (!s) s = embr_tsne_affinities_sparse(m.data, m.n, m.ld, p, P);
  }
  embr_matrix_free(&m);
  return s ? cli_fail(s) : EXIT_OK;
}

static int tsne_run(int argc, char **argv) {
  tsne_opts o;
  tsne_opts_default(&o);
  const char *in = NULL, *out = NULL, *labels_path = NULL, *plot = NULL, *precomputed = NULL, *title = NULL;
  cli_opt opts[] = {
      OPT_STR_REQ("--input", "-i", &in, "FILE", "vectors (npy, fvecs, word2vec, CSV/TSV, ...)"),
      OPT_STR_REQ("--output", "-o", &out, "FILE", "map coordinates: .tsv (with labels) or .npy"),
      OPT_STR("--labels", "-l", &labels_path, "FILE", "one label per line (colours, TSV column)", "none"),
      OPT_STR("--plot", NULL, &plot, "FILE", "also draw the map: .png .svg .pdf or .html", "none"),
      OPT_STR("--title", NULL, &title, "T", "plot title", "the input file name"),
      OPT_STR("--precomputed", NULL, &precomputed, "KIND", "input is distances: dense (n x n) or sparse (i j d rows)", "none"),
      TSNE_COMMON_OPTS(o),
  };
  cli_command cmd = {"t-SNE map of vectors in 2-D or 3-D.",
                     "embr tsne -i X -o map.tsv [--labels L] [--plot map.png] [options]",
                     "Word vectors keep their words: the TSV gets them as labels.",
                     opts, CLI_NOPTS(opts), 0, 0, NULL, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  embr_tsne_params p;
  cli_bar bar;
  if (to_params(&o, &p, &bar)) return EXIT_USAGE;
  if (precomputed && strcmp(precomputed, "dense") && strcmp(precomputed, "sparse"))
    return cli_usage_error("--precomputed takes dense or sparse");
  if (plot && embr_plot_format_from_path(plot) == EMBR_PLOT_AUTO)
    return cli_usage_error("--plot %s: use a .png, .svg, .pdf or .html name", plot);
  cli_file files[] = {{"--output", out, 1}, {"--plot", plot, 1}, {"--input", in, 0}, {"--labels", labels_path, 0}};
  int frc = cli_check_files(files, 4);
  if (frc) return frc;
  embr_matrix x = EMBR_MATRIX_INIT;
  embr_affinities P = {0, NULL, NULL, NULL};
  int rc = precomputed ? affinities_precomputed(precomputed, in, o.format, &p, &P) : cli_read_matrix(in, o.format, &x);
  if (rc) return rc;
  embr_lines lf = {0, NULL, NULL};
  char **labels = NULL;
  int64_t npts = precomputed ? P.n : x.n;
  if (labels_path && !(rc = cli_read_lines(labels_path, "labels", npts, &lf))) labels = lf.line;
  float *y = rc ? NULL : malloc(sizeof(float) * (size_t)npts * (size_t)o.dims);
  if (!rc && !y) rc = cli_fail(embr_error(EMBR_ENOMEM, "out of memory"));
  embr_tsne_stats st;
  memset(&st, 0, sizeof st);
  if (!rc) {
    double t0 = embr_now();
    int s = precomputed ? embr_tsne_optimize(&P, &p, y, 0, &st) : embr_tsne(x.data, x.n, x.ld, x.dim, &p, y, &st);
    cli_bar_done(&bar);
    if (s) rc = cli_fail(s);
    else if (!o.quiet)
      fprintf(stderr, "t-SNE of %lld points (%s gradient): KL %.4f, %.2f s (affinities %.2f s, optimisation %.2f s)\n",
              (long long)npts, method_name(st.method), st.kl, embr_now() - t0, st.seconds_affinities, st.seconds_optimize);
  }
  if (!rc) {
    char *const *lab = labels ? labels : x.labels; /* words of a word2vec file */
    map_out mo = {y, npts, (int)o.dims, precomputed ? labels : lab};
    plot_out po = {&mo, labels, labels ? NULL : x.labels, title ? title : in};
    cli_output outs[2] = {{out, write_map, &mo}, {plot, write_plot, &po}};
    rc = cli_write_outputs(outs, plot ? 2 : 1);
  }
  free(y);
  embr_lines_free(&lf);
  embr_affinities_free(&P);
  embr_matrix_free(&x);
  return rc;
}

/* ---- transform ---------------------------------------------------------------------------- */

static int tsne_transform(int argc, char **argv) {
  tsne_opts o;
  tsne_opts_default(&o);
  const char *ref = NULL, *ref_map = NULL, *in = NULL, *out = NULL;
  cli_opt opts[] = {
      OPT_STR_REQ("--ref", NULL, &ref, "FILE", "the vectors the map was made from"),
      OPT_STR_REQ("--ref-map", NULL, &ref_map, "FILE", "their map (.npy or .tsv as written by embr tsne, same row order)"),
      OPT_STR_REQ("--input", "-i", &in, "FILE", "new vectors to place"),
      OPT_STR_REQ("--output", "-o", &out, "FILE", "their map coordinates (.tsv or .npy)"),
      TSNE_COMMON_OPTS(o),
  };
  cli_command cmd = {"Place new points into an existing t-SNE map.",
                     "embr tsne transform --ref X --ref-map map.npy -i new.npy -o new_map.tsv [options]",
                     "Each new point starts at the median map position of its nearest reference points (in\n"
                     "input space) and is then optimised against the fixed map (Barnes-Hut repulsion).",
                     opts, CLI_NOPTS(opts), 0, 0, NULL, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  embr_tsne_params p;
  cli_bar bar;
  if (to_params(&o, &p, &bar)) return EXIT_USAGE;
  cli_file files[] = {{"--output", out, 1}, {"--ref", ref, 0}, {"--ref-map", ref_map, 0}, {"--input", in, 0}};
  int frc = cli_check_files(files, 4);
  if (frc) return frc;
  embr_matrix rx = EMBR_MATRIX_INIT, ry = EMBR_MATRIX_INIT, nx = EMBR_MATRIX_INIT;
  int rc = cli_read_matrix(ref, o.format, &rx);
  if (!rc) rc = cli_read_map(ref_map, NULL, &ry);
  if (!rc) rc = cli_read_matrix(in, o.format, &nx);
  if (!rc && ry.n != rx.n) {
    rc = cli_error("%s has %lld rows but %s has %lld", ref_map, (long long)ry.n, ref, (long long)rx.n);
  }
  if (!rc && ry.dim != o.dims) {
    rc = cli_error("%s has %lld columns, expected %lld (--dims)", ref_map, (long long)ry.dim, (long long)o.dims);
  }
  if (!rc && nx.dim != rx.dim) {
    rc = cli_error("%s: dimension %lld does not match %s dimension %lld", in, (long long)nx.dim, ref,
            (long long)rx.dim);
  }
  float *y = NULL, *refy = NULL;
  if (!rc) {
    y = malloc(sizeof(float) * (size_t)nx.n * (size_t)o.dims);
    refy = malloc(sizeof(float) * (size_t)ry.n * (size_t)o.dims);
    if (!y || !refy) rc = cli_fail(embr_error(EMBR_ENOMEM, "out of memory"));
  }
  if (!rc) {
    for (int64_t i = 0; i < ry.n; i++) memcpy(refy + i * o.dims, ry.data + i * ry.ld, sizeof(float) * (size_t)o.dims);
    int s = embr_tsne_transform(rx.data, rx.n, rx.ld, refy, nx.data, nx.n, nx.ld, rx.dim, &p, y);
    if (s) rc = cli_fail(s);
  }
  if (!rc) {
    map_out mo = {y, nx.n, (int)o.dims, nx.labels};
    cli_output outs[1] = {{out, write_map, &mo}};
    rc = cli_write_outputs(outs, 1);
  }
  free(y);
  free(refy);
  embr_matrix_free(&rx);
  embr_matrix_free(&ry);
  embr_matrix_free(&nx);
  return rc;
}

/* ---- eval --------------------------------------------------------------------------------- */

/* Fraction of each point's k input-space neighbours found among its k map neighbours, and the
 * leave-one-out k-NN label accuracy in the map (majority of the k map neighbours, ties to the
 * label of the nearest of the tied). */
static int map_scores(const embr_matrix *x, const float *y, int d, char **labels, int k, int nt,
                      double *preservation, double *accuracy) {
  int64_t n = x->n;
  int64_t *ix = malloc(sizeof(int64_t) * (size_t)(n * (k + 1))), *iy = malloc(sizeof(int64_t) * (size_t)(n * (k + 1)));
  float *dx = malloc(sizeof(float) * (size_t)(n * (k + 1)));
  if (!ix || !iy || !dx) {
    free(ix); free(iy); free(dx);
    return embr_error(EMBR_ENOMEM, "out of memory");
  }
  embr_knn_params kp = embr_knn_params_default();
  kp.n_threads = nt;
  int rc = embr_knn(EMBR_METRIC_L2, x->data, n, x->ld, x->data, n, x->ld, x->dim, k + 1, dx, ix, &kp);
  if (!rc) rc = embr_knn(EMBR_METRIC_L2, y, n, d, y, n, d, d, k + 1, dx, iy, &kp);
  double kept = 0, correct = 0;
  for (int64_t i = 0; i < n && !rc; i++) {
    int64_t *a = ix + i * (k + 1), *b = iy + i * (k + 1);
    for (int s = 0, cnt = 0; s <= k && cnt < k; s++) {
      if (a[s] == i) continue;
      cnt++;
      for (int t = 0, ct = 0; t <= k && ct < k; t++) {
        if (b[t] == i) continue;
        ct++;
        if (b[t] == a[s]) { kept++; break; }
      }
    }
    if (labels) {
      int best = 0;
      const char *vote = NULL;
      for (int s = 0, cnt = 0; s <= k && cnt < k; s++) {
        if (b[s] == i) continue;
        cnt++;
        int c = 0;
        for (int t = 0, ct = 0; t <= k && ct < k; t++) {
          if (b[t] == i) continue;
          ct++;
          c += strcmp(labels[b[t]], labels[b[s]]) == 0;
        }
        if (c > best) { best = c; vote = labels[b[s]]; }
      }
      correct += vote && strcmp(vote, labels[i]) == 0;
    }
  }
  *preservation = kept / ((double)n * k);
  *accuracy = labels ? correct / (double)n : NAN;
  free(ix); free(iy); free(dx);
  return rc;
}

static int tsne_eval(int argc, char **argv) {
  tsne_opts o;
  tsne_opts_default(&o);
  const char *in = NULL, *map = NULL, *labels_path = NULL;
  int64_t k = 10;
  int json = 0;
  cli_opt opts[] = {
      OPT_STR_REQ("--input", "-i", &in, "FILE", "the vectors the map was made from"),
      OPT_STR_REQ("--map", NULL, &map, "FILE", "the map (.npy or .tsv as written by embr tsne, same row order)"),
      OPT_STR("--labels", "-l", &labels_path, "FILE", "one label per line, for the k-NN label accuracy", "none"),
      OPT_INT("-k", "--k", &k, "K", "neighbours for preservation and accuracy", "10", 1, 1000),
      OPT_JSON(&json),
      TSNE_COMMON_OPTS(o),
  };
  cli_command cmd = {"Score a map: exact KL(P||Q), k-NN preservation, k-NN label accuracy.",
                     "embr tsne eval -i X --map map.npy [--labels L] [--perplexity 30] [--json]",
                     "P is built from X as 'embr tsne' builds it (same --perplexity, --metric, --pca); Q over\n"
                     "all pairs of the map, exactly (O(N^2)). Preservation: the fraction of each point's k\n"
                     "nearest input neighbours (Euclidean, on X as given) among its k nearest in the map.\n"
                     "Accuracy: leave-one-out majority vote of the k nearest map neighbours' labels.",
                     opts, CLI_NOPTS(opts), 0, 0, NULL, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  embr_tsne_params p;
  cli_bar bar;
  if (to_params(&o, &p, &bar)) return EXIT_USAGE;
  embr_matrix x = EMBR_MATRIX_INIT, y = EMBR_MATRIX_INIT;
  int rc = cli_read_matrix(in, o.format, &x);
  if (!rc) rc = cli_read_map(map, NULL, &y);
  if (!rc && (y.n != x.n || (y.dim != 2 && y.dim != 3))) {
    rc = cli_error("%s: %lld x %lld, expected %lld rows of 2 or 3 columns", map, (long long)y.n,
            (long long)y.dim, (long long)x.n);
  }
  embr_lines lf = {0, NULL, NULL};
  if (!rc && labels_path) rc = cli_read_lines(labels_path, "labels", x.n, &lf);
  char **labels = lf.line;
  float *yc = NULL;
  double kl = NAN, pres = NAN, acc = NAN;
  if (!rc) {
    p.out_dim = (int)y.dim;
    yc = malloc(sizeof(float) * (size_t)(y.n * y.dim));
    for (int64_t i = 0; yc && i < y.n; i++) memcpy(yc + i * y.dim, y.data + i * y.ld, sizeof(float) * (size_t)y.dim);
    embr_affinities P;
    int s = yc ? embr_tsne_affinities(x.data, x.n, x.ld, x.dim, &p, &P) : embr_error(EMBR_ENOMEM, "out of memory");
    if (!s) {
      s = embr_tsne_kl_exact(&P, yc, (int)y.dim, p.n_threads, &kl);
      embr_affinities_free(&P);
    }
    if (!s) s = map_scores(&x, yc, (int)y.dim, labels, (int)k, p.n_threads, &pres, &acc);
    if (s) rc = cli_fail(s);
  }
  if (!rc) {
    char accs[32];
    if (isnan(acc))
      snprintf(accs, sizeof accs, json ? "null" : "n/a");
    else
      snprintf(accs, sizeof accs, "%.6f", acc);
    if (json)
      printf("{\"points\":%lld,\"kl\":%.6f,\"knn_preservation\":%.6f,\"knn_accuracy\":%s,\"k\":%lld}\n",
             (long long)x.n, kl, pres, accs, (long long)k);
    else
      printf("points %lld  KL %.4f  %lld-NN preservation %.4f  %lld-NN label accuracy %s\n", (long long)x.n, kl,
             (long long)k, pres, (long long)k, accs);
  }
  free(yc);
  embr_lines_free(&lf);
  embr_matrix_free(&x);
  embr_matrix_free(&y);
  return rc;
}

static const cli_entry tsne_commands[] = {
    {"transform", "place new points into an existing map", tsne_transform, NULL, 0, NULL},
    {"eval", "score a map: exact KL, neighbour preservation, label accuracy", tsne_eval, NULL, 0, NULL},
};
const cli_entry cli_tsne = {"tsne", "t-SNE maps of vectors (2-D/3-D); transform new points; score a map", tsne_run,
                            CLI_CHILDREN(tsne_commands), NULL};

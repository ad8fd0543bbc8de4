/* embr w2v: train word vectors, and query them (similar, analogy, eval, similarity). */
#include "commands.h"

#include "embr/tsne.h"
#include "embr/w2v.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- train ----------------------------------------------------------------------------------- */

static int write_vectors(const char *path, const void *ctx) {
  const embr_matrix *m = ((const embr_matrix *const *)ctx)[0];
  const embr_format *f = ((const embr_format *const *)ctx)[1];
  return embr_matrix_write(path, *f, m);
}

static int w2v_train(int argc, char **argv) {
  const char *input = NULL, *output = NULL, *save_vocab = NULL, *read_vocab = NULL;
  int64_t dim = 100, window = 5, negative = 5, min_count = 5, max_vocab = 0, epochs = 5, threads = 0, seed = 1;
  double sample = 1e-3, alpha = 0;
  int hs = 0, cbow = 0, binary = -1, text = 0, classic = 0, quiet = 0;
  cli_opt opts[] = {
      OPT_STR_REQ("--input", "-i|-train", &input, "FILE", "training corpus: words separated by spaces, sentences by lines"),
      OPT_STR_REQ("--output", "-o|-output", &output, "FILE", "word vectors to write (.bin binary, .txt text)"),
      OPT_INT("--dim", "-size", &dim, "N", "vector size", "100", 1, 10000),
      OPT_INT("--window", "-window", &window, "N", "max distance between a word and its context", "5", 1, 100),
      OPT_INT("--negative", "-negative", &negative, "N", "negative samples (0 = none)", "5", 0, 64),
      OPT_FLAG_V("--hs", "-hs", &hs, "hierarchical softmax (with -hs 0|1)"),
      OPT_FLAG_V("--cbow", "-cbow", &cbow, "CBOW instead of skip-gram (with -cbow 0|1)"),
      OPT_DBL("--sample", "-sample", &sample, "T", "subsampling threshold for frequent words (0 = off)", "1e-3", 0, 0.999),
      OPT_INT("--min-count", "-min-count", &min_count, "N", "ignore words seen fewer times", "5", 1, 1e15),
      OPT_INT("--max-vocab", NULL, &max_vocab, "N", "keep only the N most frequent words (0 = all)", "0", 0, 1e12),
      OPT_DBL("--alpha", "-alpha", &alpha, "A", "starting learning rate", "0.025 skip-gram, 0.05 CBOW", 0, 10),
      OPT_INT("--epochs", "-iter", &epochs, "N", "passes over the corpus", "5", 1, 100000),
      CLI_THREADS_(&threads, "-t|-threads"),
      OPT_SEED(&seed, " (with --threads 1: identical output)"),
      {"--binary", "-binary", CLI_FLAG, &binary, NULL, "write the binary format (with -binary 0|1)",
       "by extension: .txt/.vec text, else binary", 0, 0, 0, 0, 1},
      OPT_FLAG("--text", NULL, &text, "write the text format"),
      OPT_STR("--save-vocab", "-save-vocab", &save_vocab, "FILE", "also write the vocabulary (word count per line)", "none"),
      OPT_STR("--read-vocab", "-read-vocab", &read_vocab, "FILE", "take the vocabulary from this file instead of counting", "none"),
      OPT_FLAG("--classic", NULL, &classic, "word2vec.c's one-pair-at-a-time update (reference, slower)"),
      OPT_QUIET(&quiet),
  };
  cli_command cmd = {"Train word2vec vectors (skip-gram or CBOW; negative sampling and/or hierarchical softmax).",
                     "embr w2v train -i corpus.txt -o vectors.bin [options]",
                     "word2vec.c's flag spellings are accepted (-train -output -size -window -sample\n"
                     "-negative -hs -cbow -threads -iter -min-count -alpha -binary -save-vocab -read-vocab);\n"
                     "unlike word2vec.c the default model is skip-gram. Output format: --binary/--text, else\n"
                     "by extension (.txt/.vec text, anything else binary).",
                     opts, CLI_NOPTS(opts), 0, 0, NULL, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  if (text && binary == 1) return cli_usage_error("--text and --binary exclude each other");
  if (negative == 0 && !hs) return cli_usage_error("--negative 0 needs --hs (nothing to train otherwise)");
  cli_file files[] = {{"--output", output, 1}, {"--save-vocab", save_vocab, 1}, {"--input", input, 0}, {"--read-vocab", read_vocab, 0}};
  int frc = cli_check_files(files, 4);
  if (frc) return frc;
  embr_format fmt = EMBR_FORMAT_W2V_BIN;
  if (text || binary == 0) fmt = EMBR_FORMAT_W2V_TEXT;
  else if (binary < 0 && embr_format_from_extension(output) == EMBR_FORMAT_W2V_TEXT) fmt = EMBR_FORMAT_W2V_TEXT;

  embr_w2v_params p = embr_w2v_params_default();
  p.dim = (int)dim;
  p.window = (int)window;
  p.negative = (int)negative;
  p.hs = hs;
  p.cbow = cbow;
  p.sample = sample;
  p.min_count = min_count;
  p.max_vocab = max_vocab;
  p.alpha = alpha;
  p.epochs = (int)epochs;
  p.n_threads = (int)threads;
  p.seed = (uint64_t)seed;
  p.classic = classic;
  cli_bar bar;
  cli_bar_init(&bar, "w2v", quiet);
  p.progress = cli_bar_progress(&bar);

  embr_vocab *vocab = NULL;
  int rc = 0;
  if (read_vocab) rc = embr_vocab_read(&vocab, read_vocab, min_count, max_vocab);
  else rc = embr_vocab_build(&vocab, input, min_count, max_vocab, &p.progress);
  cli_bar_done(&bar);
  if (rc) return cli_fail(rc);
  if (save_vocab && (rc = embr_vocab_save(vocab, save_vocab))) {
    embr_vocab_free(vocab);
    return cli_fail(rc);
  }
  if (!quiet)
    fprintf(stderr, "vocabulary: %lld words, %lld corpus words\n", (long long)embr_vocab_size(vocab),
            (long long)embr_vocab_total(vocab));
  embr_matrix vec = EMBR_MATRIX_INIT;
  embr_w2v_stats st;
  rc = embr_w2v_train(input, vocab, &p, &vec, &st);
  cli_bar_done(&bar);
  embr_vocab_free(vocab);
  if (rc) return cli_fail(rc);
  if (!quiet)
    fprintf(stderr, "trained %s%s, dim %d, %d epochs: %lld words in %.1f s, %.0f words/s\n",
            cbow ? "CBOW" : "skip-gram", classic ? " (classic)" : "", (int)dim, (int)epochs,
            (long long)st.words_done, st.seconds, st.words_per_sec);
  const void *ctx[2] = {&vec, &fmt};
  cli_output out = {output, write_vectors, ctx};
  rc = cli_write_outputs(&out, 1);
  embr_matrix_free(&vec);
  return rc;
}

/* ---- queries ----------------------------------------------------------------------------------- */

static int load_wordvecs(const char *path, const char *format, int64_t restrict_rows,
                         int fold, embr_wordvecs **w) {
  embr_matrix m = EMBR_MATRIX_INIT;
  int rc = cli_read_matrix(path, format, &m);
  if (rc) return rc;
  rc = embr_wordvecs_create(w, &m, restrict_rows, fold);
  embr_matrix_free(&m);
  if (rc) return cli_error("%s: %s", path, embr_last_error());
  return EXIT_OK;
}

static void print_word_list(const embr_wordvecs *w, const int64_t *rows, const float *s, int k, int json) {
  if (json) {
    printf("[");
    for (int i = 0, first = 1; i < k; i++) {
      if (rows[i] < 0) break;
      printf("%s{\"word\":", first ? "" : ",");
      cli_json_string(stdout, embr_wordvecs_word(w, rows[i]));
      printf(",\"score\":");
      cli_json_float(stdout, s[i]);
      printf("}");
      first = 0;
    }
    printf("]");
  } else {
    for (int i = 0; i < k && rows[i] >= 0; i++) printf("%-24s %.4f\n", embr_wordvecs_word(w, rows[i]), (double)s[i]);
  }
}

static int w2v_similar(int argc, char **argv) {
  const char *format = NULL, *pos[2];
  int64_t k = 10;
  int json = 0;
  cli_opt opts[] = {
      OPT_INT("-k", "--k", &k, "K", "how many words", "10", 1, 100000),
      OPT_FORMAT(&format),
      OPT_JSON(&json),
  };
  cli_command cmd = {"The words nearest to WORD by cosine similarity.",
                     "embr w2v similar VECTORS WORD [-k K] [--json]", NULL, opts,
                     CLI_NOPTS(opts), 2, 2, pos, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  embr_wordvecs *w;
  int rc = load_wordvecs(pos[0], format, 0, 0, &w);
  if (rc) return rc;
  int64_t *rows = malloc(sizeof(int64_t) * (size_t)k);
  float *s = malloc(sizeof(float) * (size_t)k);
  rc = rows && s ? embr_w2v_similar(w, pos[1], (int)k, rows, s) : embr_error(EMBR_ENOMEM, "out of memory");
  if (rc) {
    rc = cli_error("%s: %s", pos[0], embr_last_error());
  } else if (json) {
    printf("{\"word\":");
    cli_json_string(stdout, pos[1]);
    printf(",\"similar\":");
    print_word_list(w, rows, s, (int)k, 1);
    printf("}\n");
  } else {
    print_word_list(w, rows, s, (int)k, 0);
  }
  free(rows);
  free(s);
  embr_wordvecs_free(w);
  return rc;
}

static int parse_method(const char *name, embr_analogy_method *m) {
  if (strcmp(name, "3cosadd") == 0 || strcmp(name, "add") == 0) *m = EMBR_ANALOGY_3COSADD;
  else if (strcmp(name, "3cosmul") == 0 || strcmp(name, "mul") == 0) *m = EMBR_ANALOGY_3COSMUL;
  else return -1;
  return 0;
}

static int w2v_analogy(int argc, char **argv) {
  const char *format = NULL, *method_name = "3cosadd", *pos[4];
  int64_t k = 5;
  int json = 0;
  cli_opt opts[] = {
      OPT_INT("-k", "--k", &k, "K", "how many answers", "5", 1, 100000),
      OPT_STR("--method", NULL, &method_name, "M", "3cosadd | 3cosmul", "3cosadd"),
      OPT_FORMAT(&format),
      OPT_JSON(&json),
  };
  cli_command cmd = {"A is to B as C is to ?  (e.g. man king woman -> queen)",
                     "embr w2v analogy VECTORS A B C [-k K] [--method 3cosadd|3cosmul] [--json]",
                     "Answers exclude A, B and C. 3cosadd ranks by cos(x, B - A + C); 3cosmul by\n"
                     "cos'(x,B) cos'(x,C) / (cos'(x,A) + 0.001) with cos' = (cos + 1) / 2.",
                     opts, CLI_NOPTS(opts), 4, 4, pos, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  embr_analogy_method method;
  if (parse_method(method_name, &method)) return cli_usage_error("unknown --method '%s'", method_name);
  embr_wordvecs *w;
  int rc = load_wordvecs(pos[0], format, 0, 0, &w);
  if (rc) return rc;
  int64_t *rows = malloc(sizeof(int64_t) * (size_t)k);
  float *s = malloc(sizeof(float) * (size_t)k);
  rc = rows && s ? embr_w2v_analogy(w, pos[1], pos[2], pos[3], method, (int)k, rows, s)
                 : embr_error(EMBR_ENOMEM, "out of memory");
  if (rc) {
    rc = cli_error("%s: %s", pos[0], embr_last_error());
  } else if (json) {
    printf("{\"a\":");
    cli_json_string(stdout, pos[1]);
    printf(",\"b\":");
    cli_json_string(stdout, pos[2]);
    printf(",\"c\":");
    cli_json_string(stdout, pos[3]);
    printf(",\"method\":\"%s\",\"answers\":", method == EMBR_ANALOGY_3COSADD ? "3cosadd" : "3cosmul");
    print_word_list(w, rows, s, (int)k, 1);
    printf("}\n");
  } else {
    printf("%s : %s :: %s : ?\n", pos[1], pos[2], pos[3]);
    print_word_list(w, rows, s, (int)k, 0);
  }
  free(rows);
  free(s);
  embr_wordvecs_free(w);
  return rc;
}

static double pct(int64_t a, int64_t b) { return b ? 100.0 * (double)a / (double)b : 0.0; }

static int w2v_eval(int argc, char **argv) {
  const char *format = NULL, *method_name = "3cosadd", *pos[2];
  int64_t restrict_rows = 30000, threads = 0;
  int json = 0, case_sensitive = 0;
  cli_opt opts[] = {
      OPT_INT("--restrict", NULL, &restrict_rows, "N", "use only the N first (most frequent) words; 0 = all", "30000", 0, 1e12),
      OPT_STR("--method", NULL, &method_name, "M", "3cosadd | 3cosmul", "3cosadd"),
      OPT_FLAG("--case-sensitive", NULL, &case_sensitive, "match words exactly (compute-accuracy folds case)"),
      OPT_THREADS(&threads),
      OPT_FORMAT(&format),
      OPT_JSON(&json),
  };
  cli_command cmd = {"Analogy accuracy on a questions-words.txt style file, counted as word2vec's compute-accuracy.",
                     "embr w2v eval VECTORS QUESTIONS [--restrict 30000] [--json]",
                     "A question counts as seen when its four words are among the restricted vocabulary;\n"
                     "accuracy is over seen questions. The first five sections are semantic, the rest\n"
                     "syntactic; coverage is seen / total.",
                     opts, CLI_NOPTS(opts), 2, 2, pos, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  embr_analogy_method method;
  if (parse_method(method_name, &method)) return cli_usage_error("unknown --method '%s'", method_name);
  embr_wordvecs *w;
  int rc = load_wordvecs(pos[0], format, restrict_rows, !case_sensitive, &w);
  if (rc) return rc;
  embr_analogy_eval e;
  rc = embr_w2v_eval_analogies(w, pos[1], method, (int)threads, &e);
  embr_wordvecs_free(w);
  if (rc) return cli_fail(rc);
  if (json) {
    printf("{\"sections\":[");
    for (int i = 0; i < e.nsections; i++) {
      printf("%s{\"name\":", i ? "," : "");
      cli_json_string(stdout, e.sections[i].name);
      printf(",\"correct\":%lld,\"seen\":%lld,\"total\":%lld,\"accuracy\":%.4f}", (long long)e.sections[i].correct,
             (long long)e.sections[i].seen, (long long)e.sections[i].total,
             pct(e.sections[i].correct, e.sections[i].seen) / 100);
    }
    printf("],\"semantic\":%.4f,\"syntactic\":%.4f,\"total\":%.4f,\"correct\":%lld,\"seen\":%lld,"
           "\"questions\":%lld,\"coverage\":%.4f}\n",
           pct(e.sem_correct, e.sem_seen) / 100, pct(e.syn_correct, e.syn_seen) / 100, pct(e.correct, e.seen) / 100,
           (long long)e.correct, (long long)e.seen, (long long)e.total, pct(e.seen, e.total) / 100);
  } else {
    for (int i = 0; i < e.nsections; i++)
      if (e.sections[i].seen)
        printf("%-28s %6.2f %%  (%lld / %lld)\n", e.sections[i].name, pct(e.sections[i].correct, e.sections[i].seen),
               (long long)e.sections[i].correct, (long long)e.sections[i].seen);
    printf("semantic: %.2f %%  syntactic: %.2f %%  total: %.2f %%  (%lld / %lld)\n", pct(e.sem_correct, e.sem_seen),
           pct(e.syn_correct, e.syn_seen), pct(e.correct, e.seen), (long long)e.correct, (long long)e.seen);
    printf("questions seen / total: %lld / %lld  (%.2f %% coverage)\n", (long long)e.seen, (long long)e.total,
           pct(e.seen, e.total));
  }
  embr_analogy_eval_free(&e);
  return EXIT_OK;
}

static int w2v_similarity(int argc, char **argv) {
  const char *format = NULL, *pos[2];
  int json = 0, case_sensitive = 0;
  cli_opt opts[] = {
      OPT_FLAG("--case-sensitive", NULL, &case_sensitive, "match words exactly (default folds ASCII case)"),
      OPT_FORMAT(&format),
      OPT_JSON(&json),
  };
  cli_command cmd = {"Spearman correlation with human similarity scores (WordSim-353, SimLex-999, MEN files).",
                     "embr w2v similarity VECTORS PAIRS [--json]",
                     "Each line: two words, then (anywhere after them) the first number is the human score;\n"
                     "lines without one are skipped as headers. Pairs with an unknown word are counted as oov.",
                     opts, CLI_NOPTS(opts), 2, 2, pos, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  embr_wordvecs *w;
  int rc = load_wordvecs(pos[0], format, 0, !case_sensitive, &w);
  if (rc) return rc;
  embr_similarity_eval e;
  rc = embr_w2v_eval_similarity(w, pos[1], &e);
  embr_wordvecs_free(w);
  if (rc) return cli_fail(rc);
  if (json)
    printf("{\"spearman\":%.4f,\"pairs\":%lld,\"oov\":%lld}\n", e.spearman, (long long)e.pairs, (long long)e.oov);
  else
    printf("spearman rho = %.4f  (%lld pairs, %lld with unknown words)\n", e.spearman, (long long)e.pairs, (long long)e.oov);
  return EXIT_OK;
}

/* ---- map ---------------------------------------------------------------------------------- */

/* `w2v map` outputs, written through cli_write_outputs. */
typedef struct word_map {
  const float *y;
  int64_t n;
  char *const *words;
  const char *title;
} word_map;

static int write_word_plot(const char *path, const void *ctx) {
  const word_map *w = ctx;
  return cli_plot_write(path, w->y, w->n, 2, NULL, w->words, w->title);
}

static int write_word_coords(const char *path, const void *ctx) {
  const word_map *w = ctx;
  FILE *f = fopen(path, "wb");
  if (!f) return embr_error(EMBR_EIO, "%s: cannot create", path);
  for (int64_t i = 0; i < w->n; i++) fprintf(f, "%.6g\t%.6g\t%s\n", (double)w->y[2 * i], (double)w->y[2 * i + 1], w->words[i]);
  int bad = ferror(f);
  if (fclose(f) != 0 || bad) return embr_error(EMBR_EIO, "%s: write failed", path);
  return 0;
}

static int w2v_map(int argc, char **argv) {
  const char *format = NULL, *out = NULL, *coords = NULL, *title = NULL, *pos[1];
  int64_t top = 1000, seed = 1, threads = 0;
  double perplexity = 15;
  int quiet = 0;
  cli_opt opts[] = {
      OPT_STR_REQ("--output", "-o", &out, "FILE", "the picture: .svg .png .pdf or .html"),
      OPT_INT("--top", NULL, &top, "N", "the N most frequent words (the first N rows)", "1000", 10, 1000000),
      OPT_DBL("--perplexity", "-p", &perplexity, "P", "t-SNE perplexity", "15", 1, 1000),
      OPT_STR("--coords", NULL, &coords, "FILE", "also write the map as TSV (x, y, word)", "none"),
      OPT_STR("--title", NULL, &title, "T", "title", "the vectors file name"),
      OPT_SEED(&seed, ""),
      OPT_THREADS(&threads),
      OPT_FORMAT(&format),
      OPT_QUIET(&quiet),
  };
  cli_command cmd = {"A t-SNE map of the most frequent words, each drawn as its word.",
                     "embr w2v map VECTORS -o words.svg [--top 1000] [--perplexity 15]",
                     "Vectors are normalised first, so distances in the map follow cosine similarity.\n"
                     "Overlapping words are skipped in the static picture; the HTML map shows every\n"
                     "word on hover and has a search box.",
                     opts, CLI_NOPTS(opts), 1, 1, pos, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  cli_file files[] = {{"--output", out, 1}, {"--coords", coords, 1}, {"VECTORS", pos[0], 0}};
  int frc = cli_check_files(files, 3);
  if (frc) return frc;
  embr_matrix m = EMBR_MATRIX_INIT;
  int rc = cli_read_matrix(pos[0], format, &m);
  if (rc) return rc;
  if (!m.labels) {
    embr_matrix_free(&m);
    return cli_error("%s: no words in this file (a word2vec or GloVe file is needed)", pos[0]);
  }
  int64_t n = top < m.n ? top : m.n;
  float *x = malloc(sizeof(float) * (size_t)(n * m.dim)), *y = malloc(sizeof(float) * 2 * (size_t)n);
  if (!x || !y) rc = cli_fail(embr_error(EMBR_ENOMEM, "out of memory"));
  for (int64_t i = 0; i < n && !rc; i++) {
    const float *r = m.data + i * m.ld;
    float nn = embr_norm_sq(r, m.dim), inv = nn > 0 ? 1.0f / sqrtf(nn) : 0.0f;
    for (int64_t j = 0; j < m.dim; j++) x[i * m.dim + j] = r[j] * inv;
  }
  if (!rc) {
    embr_tsne_params p = embr_tsne_params_default();
    p.perplexity = perplexity;
    p.seed = (uint64_t)seed;
    p.n_threads = (int)threads;
    cli_bar bar;
    cli_bar_init(&bar, "w2v map", quiet);
    p.progress = cli_bar_progress(&bar);
    int s = embr_tsne(x, n, m.dim, m.dim, &p, y, NULL);
    cli_bar_done(&bar);
    if (s) rc = cli_fail(s);
  }
  if (!rc) { /* the picture and the coordinates: both or neither */
    word_map wm = {y, n, m.labels, title ? title : pos[0]};
    cli_output outs[2] = {{out, write_word_plot, &wm}, {coords, write_word_coords, &wm}};
    rc = cli_write_outputs(outs, coords ? 2 : 1);
  }
  free(x);
  free(y);
  embr_matrix_free(&m);
  return rc;
}

static const cli_entry w2v_commands[] = {
    {"train", "train word vectors from a text corpus", w2v_train, NULL, 0, NULL},
    {"similar", "nearest words by cosine similarity", w2v_similar, NULL, 0, NULL},
    {"analogy", "a is to b as c is to ?", w2v_analogy, NULL, 0, NULL},
    {"eval", "analogy benchmark accuracy (questions-words.txt)", w2v_eval, NULL, 0, NULL},
    {"similarity", "Spearman correlation with human word-similarity scores", w2v_similarity, NULL, 0, NULL},
    {"map", "t-SNE picture of the most frequent words (SVG/PNG/PDF/HTML)", w2v_map, NULL, 0, NULL},
};
const cli_entry cli_w2v = {"w2v", "word2vec: train word vectors; similar words, analogies, evaluation", NULL,
                           CLI_CHILDREN(w2v_commands), NULL};

/* embr eval: how well a model's embeddings tell identities apart, or match images and captions.
 *   verify     pairs of images, same person or not: 10-fold accuracy with the best threshold per
 *              fold (the LFW protocol), ROC AUC, TAR at a false-accept rate;
 *   identify   a gallery of known images per class and probes: rank-1 and recall@k;
 *   retrieval  image-caption pairs (a CLIP model, or embeddings computed elsewhere): recall@k,
 *              median and mean rank, text -> image and image -> text;
 *   knn        DINO's weighted k-NN classifier: a labelled memory and labelled queries, from a
 *              model, from raw pixels, or from embeddings computed elsewhere: top-1 and top-5. */
#include "commands.h"
#include "nn_common.h"

#include <stdlib.h>
#include <string.h>

typedef struct eval_data {
  embr_model *m;
  embr_dataset *ds;
  int64_t *subset, n;
  float *emb;
  int32_t *labels;
} eval_data;

static void eval_data_free(eval_data *e) {
  embr_model_free(e->m);
  embr_dataset_free(e->ds);
  free(e->subset);
  free(e->emb);
  free(e->labels);
}

static int load_and_embed(const cli_model_src *model, const char *data, const char *classes, const char *per_class,
                          int64_t threads, int quiet, eval_data *e) {
  memset(e, 0, sizeof(*e));
  int rc = cli_load_model(model, &e->m);
  if (rc) return rc;
  embr_model_set_threads(e->m, (int)threads);
  if ((rc = cli_open_dataset(data, &e->ds))) return rc;
  if ((rc = cli_select(e->ds, classes, per_class, &e->subset, &e->n))) return rc;
  e->labels = malloc(sizeof(int32_t) * (size_t)e->n);
  if (!e->labels) return cli_fail(embr_error(EMBR_ENOMEM, "out of memory"));
  return cli_embed_items(e->m, e->ds, e->subset, e->n, 32, 0, quiet, &e->emb, e->labels);
}

static int eval_verify(int argc, char **argv) {
  cli_model_src model = {NULL, NULL, 112};
  const char *data = NULL, *pairs_path = NULL, *classes = NULL, *per_class = NULL;
  int64_t folds = 10, seed = 1, threads = 0;
  double far = 1e-3;
  int json = 0, quiet = 0;
  cli_opt opts[] = {
      CLI_MODEL_OPTS(model, "a model from `embr train`"),
      OPT_STR_REQ("--data", NULL, &data, "DIR|mnist:PATH", "labelled images (a folder of class sub-folders)"),
      OPT_STR("--pairs", NULL, &pairs_path, "FILE", "pairs to score, \"NAME_A NAME_B SAME\" per line (names as `embed --ids`)", "all pairs"),
      OPT_STR("--classes", NULL, &classes, "A:B", "only classes A..B-1 (e.g. identities unseen in training)", "all"),
      OPT_STR("--per-class", NULL, &per_class, "A:B", "only images A..B-1 of each class", "all"),
      OPT_INT("--folds", NULL, &folds, "K", "cross-validation folds for the threshold", "10", 2, 1000000),
      OPT_DBL("--far", NULL, &far, "F", "false-accept rate for the TAR figure", "1e-3", 0, 1),
      OPT_SEED(&seed, " (the fold split)"),
      OPT_THREADS(&threads),
      OPT_JSON(&json),
      OPT_QUIET(&quiet),
  };
  cli_command cmd = {"Face-verification accuracy of a model's embeddings.",
                     "embr eval verify --model M --data DIR [--pairs F] [--classes A:B] [--json]",
                     "Scores are cosine similarities. Without --pairs every pair of the selected images is\n"
                     "scored. Accuracy: K folds, each judged with the threshold best on the other folds.",
                     opts, CLI_NOPTS(opts), 0, 0, NULL, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  eval_data e;
  int rc = load_and_embed(&model, data, classes, per_class, threads, quiet, &e);
  embr_pairs pairs = {0};
  if (!rc) {
    int st;
    if (pairs_path) {
      char **names = malloc(sizeof(char *) * (size_t)e.n);
      for (int64_t i = 0; names && i < e.n; i++) names[i] = (char *)embr_dataset_item_name(e.ds, e.subset[i]);
      st = names ? embr_pairs_read(pairs_path, names, e.n, &pairs) : embr_error(EMBR_ENOMEM, "out of memory");
      free(names);
    } else {
      st = embr_pairs_all(e.labels, e.n, &pairs);
    }
    embr_verify_result r;
    if (!st) st = embr_eval_verify(e.emb, e.n, embr_model_dim(e.m), embr_model_dim(e.m), &pairs, (int)folds, far, (uint64_t)seed, &r);
    if (st) {
      rc = cli_fail(st);
    } else if (json) {
      printf("{\"images\":%lld,\"pairs\":%lld,\"positives\":%lld,\"folds\":%lld,\"accuracy\":%.6f,\"accuracy_std\":%.6f,"
             "\"threshold\":%.6f,\"auc\":%.6f,\"far\":%g,\"tar\":%.6f}\n",
             (long long)e.n, (long long)r.pairs, (long long)r.positives, (long long)folds, r.accuracy, r.accuracy_std,
             r.threshold, r.auc, r.far, r.tar);
    } else {
      printf("verification: %lld images, %lld pairs (%lld same identity)\n", (long long)e.n, (long long)r.pairs,
             (long long)r.positives);
      printf("  accuracy %.4f +- %.4f (%lld folds, mean threshold %.4f)\n", r.accuracy, r.accuracy_std, (long long)folds,
             r.threshold);
      printf("  ROC AUC %.4f, TAR %.4f at FAR %g\n", r.auc, r.tar, r.far);
    }
  }
  embr_pairs_free(&pairs);
  eval_data_free(&e);
  return rc;
}

static int eval_identify(int argc, char **argv) {
  cli_model_src model = {NULL, NULL, 112};
  const char *data = NULL, *classes = NULL, *per_class = NULL, *kspec = "1,5,10";
  int64_t gallery = 1, threads = 0;
  int json = 0, quiet = 0;
  cli_opt opts[] = {
      CLI_MODEL_OPTS(model, "a model from `embr train`"),
      OPT_STR_REQ("--data", NULL, &data, "DIR|mnist:PATH", "labelled images (a folder of class sub-folders)"),
      OPT_INT("--gallery-per-class", NULL, &gallery, "G", "the first G images of each class form the gallery", "1", 1, 1000000),
      OPT_STR("-k", NULL, &kspec, "K,K,...", "recall@k cut-offs (at most 8)", "1,5,10"),
      OPT_STR("--classes", NULL, &classes, "A:B", "only classes A..B-1", "all"),
      OPT_STR("--per-class", NULL, &per_class, "A:B", "only images A..B-1 of each class", "all"),
      OPT_THREADS(&threads),
      OPT_JSON(&json),
      OPT_QUIET(&quiet),
  };
  cli_command cmd = {"Identification (rank-1, recall@k) with a gallery/probe split.",
                     "embr eval identify --model M --data DIR [--gallery-per-class G] [-k 1,5,10] [--json]",
                     "Each probe (an image past the first G of its class) is matched against all gallery\n"
                     "images by cosine similarity; recall@k: its class is among the k best matches.",
                     opts, CLI_NOPTS(opts), 0, 0, NULL, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  int64_t k64[EMBR_EVAL_MAX_K];
  int ks[EMBR_EVAL_MAX_K], nk;
  if (embr_int_list_parse(kspec, 1, 1000000, k64, EMBR_EVAL_MAX_K, &nk))
    return cli_usage_error("-k wants up to 8 positive integers like 1,5,10: %s", embr_last_error());
  for (int i = 0; i < nk; i++) ks[i] = (int)k64[i];
  eval_data e;
  int rc = load_and_embed(&model, data, classes, per_class, threads, quiet, &e);
  if (!rc) {
    embr_identify_result r;
    int st = embr_eval_identify(e.emb, e.n, embr_model_dim(e.m), embr_model_dim(e.m), e.labels, (int)gallery, ks, nk, &r);
    if (st) {
      rc = cli_fail(st);
    } else if (json) {
      printf("{\"gallery\":%lld,\"probes\":%lld,\"rank1\":%.6f,\"recall\":{", (long long)r.gallery, (long long)r.probes, r.rank1);
      for (int i = 0; i < r.nk; i++) printf("%s\"%d\":%.6f", i ? "," : "", r.k[i], r.recall[i]);
      printf("}}\n");
    } else {
      printf("identification: %lld gallery images, %lld probes\n  rank-1 %.4f", (long long)r.gallery, (long long)r.probes, r.rank1);
      for (int i = 0; i < r.nk; i++) printf(", recall@%d %.4f", r.k[i], r.recall[i]);
      printf("\n");
    }
  }
  eval_data_free(&e);
  return rc;
}

/* The images and captions of a pairs file embedded by a CLIP model (rows in the captions' order). */
static int retrieval_embed(const char *model, const char *bpe, const embr_captions *cap, const char *pairs, int batch,
                           int64_t threads, int quiet, embr_matrix *img, embr_matrix *txt) {
  cli_model_src src = {model, NULL, 0};
  embr_model *m = NULL;
  embr_dataset *ds = NULL;
  int rc = cli_load_model(&src, &m);
  if (!rc) {
    embr_model_set_threads(m, (int)threads);
    rc = cli_text_model(m, model, bpe);
  }
  if (!rc) {
    int s = embr_dataset_open_paths(NULL, (const char *const *)cap->image_path, cap->n_images, pairs, &ds);
    rc = s ? cli_fail(s) : EXIT_OK;
  }
  if (!rc) rc = cli_embed_texts(m, (const char *const *)cap->text, cap->n, batch, 0, quiet, &txt->data);
  if (!rc) rc = cli_embed_items(m, ds, NULL, cap->n_images, batch, 0, quiet, &img->data, NULL);
  if (!rc) {
    img->n = cap->n_images, txt->n = cap->n;
    img->dim = img->ld = txt->dim = txt->ld = embr_model_dim(m);
  }
  embr_dataset_free(ds);
  embr_model_free(m);
  return rc;
}

/* Precomputed embeddings: one row per distinct image (first-seen order) and one per caption. */
static int retrieval_read(const char *ipath, const char *tpath, const char *format, const embr_captions *cap,
                          const char *pairs, embr_matrix *img, embr_matrix *txt) {
  int rc = cli_read_matrix(ipath, format, img);
  if (!rc) rc = cli_read_matrix(tpath, format, txt);
  if (rc) return rc;
  if (img->n != cap->n_images)
    return cli_error("%s: %lld rows for the %lld distinct images of %s (one row per image, in first-seen order)", ipath,
                     (long long)img->n, (long long)cap->n_images, pairs);
  if (txt->n != cap->n)
    return cli_error("%s: %lld rows for the %lld captions of %s (one row per line)", tpath, (long long)txt->n,
                     (long long)cap->n, pairs);
  if (img->dim != txt->dim)
    return cli_error("%s: dimension %lld does not match %s dimension %lld", tpath, (long long)txt->dim, ipath,
                     (long long)img->dim);
  return EXIT_OK;
}

static void print_direction(const char *name, int nk, const int *k, const double *recall, double median, double mean,
                            int json) {
  if (json) {
    printf("\"%s\":{\"recall\":{", name);
    for (int i = 0; i < nk; i++) printf("%s\"%d\":%.6f", i ? "," : "", k[i], recall[i]);
    printf("},\"median_rank\":%.6g,\"mean_rank\":%.6g}", median, mean);
    return;
  }
  printf("  %s:", name);
  for (int i = 0; i < nk; i++) printf("%s R@%d %.4f", i ? "," : "", k[i], recall[i]);
  printf(", median rank %g, mean rank %.2f\n", median, mean);
}

static int eval_retrieval(int argc, char **argv) {
  const char *model = NULL, *bpe = NULL, *data = NULL, *pairs = NULL, *ipath = NULL, *tpath = NULL, *format = NULL;
  const char *kspec = "1,5,10";
  int64_t batch = 32, threads = 0;
  int json = 0, quiet = 0;
  cli_opt opts[] = {
      OPT_STR("--model", NULL, &model, "FILE", "a CLIP model (with --data)", NULL),
      OPT_BPE(&bpe),
      OPT_STR("--data", NULL, &data, "DIR", "the folder the pairs file's image paths are relative to (with --model)", NULL),
      OPT_STR_REQ("--pairs", NULL, &pairs, "FILE", "image-caption pairs, FILE<TAB>CAPTION per line (docs/formats.md)"),
      OPT_STR("--images-emb", NULL, &ipath, "FILE", "instead of --model: image embeddings, one row per distinct image of the pairs file, in first-seen order", NULL),
      OPT_STR("--texts-emb", NULL, &tpath, "FILE", "with --images-emb: caption embeddings, one row per line of the pairs file", NULL),
      OPT_FORMAT(&format),
      OPT_STR("-k", NULL, &kspec, "K,K,...", "recall@k cut-offs (at most 8)", "1,5,10"),
      OPT_INT("--batch", "-b", &batch, "B", "images or captions per forward pass", "32", 1, 100000),
      OPT_THREADS(&threads),
      OPT_JSON(&json),
      OPT_QUIET(&quiet),
  };
  cli_command cmd = {"Cross-modal retrieval (image <-> caption) recall@k and ranks.",
                     "embr eval retrieval (--model M --data DIR | --images-emb I.npy --texts-emb T.npy) --pairs P.tsv [-k 1,5,10] [--json]",
                     "Scores are cosine similarities. text->image: each caption ranks every image; image->text:\n"
                     "each image ranks every caption, its rank that of its best-placed own caption. Ties count\n"
                     "against the query (a collapsed model scores worst). Ranks are 1-based.",
                     opts, CLI_NOPTS(opts), 0, 0, NULL, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  if (!model == !ipath) return cli_usage_error("give either --model (with --data) or --images-emb and --texts-emb");
  if (model && !data) return cli_usage_error("--model needs --data, the folder of the pairs file's images");
  if (model && (tpath || format)) return cli_usage_error("%s goes with --images-emb, not --model", tpath ? "--texts-emb" : "--format");
  if (ipath && !tpath) return cli_usage_error("--images-emb needs --texts-emb");
  if (ipath && (data || bpe)) return cli_usage_error("%s goes with --model, not --images-emb", data ? "--data" : "--bpe");
  int64_t k64[EMBR_EVAL_MAX_K];
  int ks[EMBR_EVAL_MAX_K], nk;
  if (embr_int_list_parse(kspec, 1, 1000000, k64, EMBR_EVAL_MAX_K, &nk))
    return cli_usage_error("-k wants up to 8 positive integers like 1,5,10: %s", embr_last_error());
  for (int i = 0; i < nk; i++) ks[i] = (int)k64[i];
  embr_captions cap = {0};
  embr_matrix img = EMBR_MATRIX_INIT, txt = EMBR_MATRIX_INIT;
  int s = embr_captions_read(pairs, model ? data : NULL, &cap);
  int rc = s ? cli_fail(s) : EXIT_OK;
  if (!rc)
    rc = model ? retrieval_embed(model, bpe, &cap, pairs, (int)batch, threads, quiet, &img, &txt)
               : retrieval_read(ipath, tpath, format, &cap, pairs, &img, &txt);
  embr_retrieval_result r;
  if (!rc) {
    s = embr_eval_retrieval(img.data, img.n, img.ld, txt.data, txt.n, txt.ld, img.dim, cap.image_index, ks, nk, NULL, NULL, &r);
    if (s) rc = cli_fail(s);
  }
  if (!rc && json) {
    printf("{\"images\":%lld,\"texts\":%lld,", (long long)r.images, (long long)r.texts);
    print_direction("text_to_image", r.nk, r.k, r.t2i_recall, r.t2i_median_rank, r.t2i_mean_rank, 1);
    printf(",");
    print_direction("image_to_text", r.nk, r.k, r.i2t_recall, r.i2t_median_rank, r.i2t_mean_rank, 1);
    printf("}\n");
  } else if (!rc) {
    printf("retrieval: %lld images, %lld captions\n", (long long)r.images, (long long)r.texts);
    print_direction("text->image", r.nk, r.k, r.t2i_recall, r.t2i_median_rank, r.t2i_mean_rank, 0);
    print_direction("image->text", r.nk, r.k, r.i2t_recall, r.i2t_median_rank, r.i2t_mean_rank, 0);
  }
  if (model) { /* the matrices' rows came from malloc (cli_embed_*), not embr_matrix_alloc */
    free(img.data);
    free(txt.data);
  } else {
    embr_matrix_free(&img);
    embr_matrix_free(&txt);
  }
  embr_captions_free(&cap);
  return rc;
}

/* ---- knn ------------------------------------------------------------------------------------------ */

/* One side of the k-NN evaluation (the memory or the queries): rows and labels. */
typedef struct knn_side {
  float *x;       /* n x dim, malloc'd (or owned by mat) */
  int32_t *labels;
  int64_t n, dim;
  embr_matrix mat; /* --*-emb: the matrix read */
  embr_dataset *ds;
  int64_t *subset;
} knn_side;

static void knn_side_free(knn_side *s) {
  if (s->mat.data) embr_matrix_free(&s->mat);
  else free(s->x);
  free(s->labels);
  embr_dataset_free(s->ds);
  free(s->subset);
}

/* Raw pixels as features: each image resized (bilinear, whole image) to side x side RGB,
 * composited on white, values v / 255; embr_eval_knn then normalises the rows. */
static int raw_features(const embr_dataset *ds, const int64_t *subset, int64_t n, int64_t side, knn_side *s) {
  embr_image_spec spec = embr_image_spec_default();
  spec.height = spec.width = (int)side;
  spec.alpha = EMBR_ALPHA_WHITE;
  for (int c = 0; c < 3; c++) spec.mean[c] = 0.0f, spec.std[c] = 1.0f;
  s->dim = 3 * side * side;
  s->x = malloc(sizeof(float) * (size_t)n * (size_t)s->dim);
  if (!s->x) return cli_fail(embr_error(EMBR_ENOMEM, "out of memory for %lld rows of raw pixels", (long long)n));
  for (int64_t i = 0; i < n; i++) {
    embr_image im;
    int64_t item = subset ? subset[i] : i;
    int rc = embr_dataset_image(ds, item, &im);
    if (!rc) rc = embr_image_to_tensor(&im, &spec, s->x + i * s->dim);
    embr_image_free(&im);
    if (rc) return cli_fail(rc);
  }
  return EXIT_OK;
}

/* The rows of one side from a model or from raw pixels. */
static int knn_embed(embr_model *m, int64_t raw_side, int batch, int quiet, knn_side *s) {
  if (!m) return raw_features(s->ds, s->subset, s->n, raw_side, s);
  s->dim = embr_model_dim(m);
  return cli_embed_items(m, s->ds, s->subset, s->n, batch, 0, quiet, &s->x, NULL);
}

/* Class folders or MNIST: the two --*-per-class selections of one dataset, which must not share an
 * image (a query in the memory would find itself). */
static int knn_select(const char *data, const char *classes, const char *train_pc, const char *test_pc, knn_side *tr,
                      knn_side *te) {
  int rc = cli_open_dataset(data, &tr->ds);
  if (!rc) rc = cli_select(tr->ds, classes, train_pc, &tr->subset, &tr->n);
  if (!rc) rc = cli_select(tr->ds, classes, test_pc, &te->subset, &te->n);
  if (rc) return rc;
  int64_t size = embr_dataset_size(tr->ds), shared = 0;
  char *in_train = calloc((size_t)size, 1);
  tr->labels = malloc(sizeof(int32_t) * (size_t)tr->n);
  te->labels = malloc(sizeof(int32_t) * (size_t)te->n);
  if (!in_train || !tr->labels || !te->labels) {
    free(in_train);
    return cli_fail(embr_error(EMBR_ENOMEM, "out of memory"));
  }
  for (int64_t i = 0; i < tr->n; i++) in_train[tr->subset[i]] = 1, tr->labels[i] = embr_dataset_label(tr->ds, tr->subset[i]);
  for (int64_t i = 0; i < te->n; i++) shared += in_train[te->subset[i]], te->labels[i] = embr_dataset_label(tr->ds, te->subset[i]);
  free(in_train);
  if (shared)
    return cli_usage_error("--train-per-class %s and --test-per-class %s share %lld images of %s: the memory and the queries must be apart",
                           train_pc, test_pc, (long long)shared, data);
  return EXIT_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Labels given as text (list files, label files): class ids are the ranks of the distinct texts of
 * both sides in byte order, so equal texts get equal ids on both sides. */
static int knn_label_ids(char **tr_text, int64_t ntr, char **te_text, int64_t nte, knn_side *tr, knn_side *te) {
  int64_t n = ntr + nte, nu = 0;
  char **u = malloc(sizeof(char *) * (size_t)n);
  tr->labels = malloc(sizeof(int32_t) * (size_t)ntr);
  te->labels = malloc(sizeof(int32_t) * (size_t)nte);
  if (!u || !tr->labels || !te->labels) {
    free(u);
    return cli_fail(embr_error(EMBR_ENOMEM, "out of memory"));
  }
  memcpy(u, tr_text, sizeof(char *) * (size_t)ntr);
  memcpy(u + ntr, te_text, sizeof(char *) * (size_t)nte);
  qsort(u, (size_t)n, sizeof *u, cmp_str);
  for (int64_t i = 0; i < n; i++)
    if (i == 0 || strcmp(u[i], u[nu - 1])) u[nu++] = u[i];
  for (int s = 0; s < 2; s++) {
    char **t = s ? te_text : tr_text;
    int32_t *out = s ? te->labels : tr->labels;
    for (int64_t i = 0; i < (s ? nte : ntr); i++) {
      char **hit = bsearch(&t[i], u, (size_t)nu, sizeof *u, cmp_str);
      out[i] = (int32_t)(hit - u);
    }
  }
  free(u);
  return EXIT_OK;
}

/* A list file FILE<TAB>LABEL (paths relative to the data folder, each image once). */
static int knn_read_list(const char *path, const char *data, embr_captions *cap, knn_side *s) {
  int rc = embr_captions_read(path, data, cap);
  if (rc) return cli_fail(rc);
  if (cap->n != cap->n_images) { /* some image has two lines: name the first repeat */
    for (int64_t i = 0; i < cap->n; i++) /* first-seen order: line i names image i until a repeat */
      if (cap->image_index[i] != i)
        return cli_error("%s:%lld: %s is listed a second time (one label per image)", path, (long long)cap->line[i],
                         cap->image[cap->image_index[i]]);
  }
  /* one line per image, in first-seen order: line i names image i */
  rc = embr_dataset_open_paths(data, (const char *const *)cap->image, cap->n_images, path, &s->ds);
  if (rc) return cli_fail(rc);
  s->n = cap->n_images;
  return EXIT_OK;
}

/* Precomputed embeddings and one label per row (a text per line). */
static int knn_read_emb(const char *emb, const char *labels, const char *format, knn_side *s, embr_lines *lab) {
  int rc = cli_read_matrix(emb, format, &s->mat);
  if (rc) return rc;
  s->x = s->mat.data, s->n = s->mat.n, s->dim = s->mat.dim;
  int st = embr_lines_read(labels, s->n, "labels", "rows", lab);
  if (st) return cli_fail(st);
  for (int64_t i = 0; i < lab->n; i++)
    if (!lab->line[i][0]) return cli_error("%s:%lld: empty label", labels, (long long)i + 1);
  return EXIT_OK;
}

static void knn_print(const embr_knn_eval_result *r, const char *source, int json) {
  if (json) {
    printf("{\"features\":\"%s\",\"train\":%lld,\"test\":%lld,\"classes\":%d,\"k\":%d,\"temperature\":%g,"
           "\"top1\":%.6f,\"top5\":%.6f}\n",
           source, (long long)r->train, (long long)r->test, r->classes, r->k, r->temperature, r->top1, r->top5);
    return;
  }
  printf("k-NN (%s): %lld memory rows, %lld queries, %d classes, k %d, T %g\n", source, (long long)r->train,
         (long long)r->test, r->classes, r->k, r->temperature);
  printf("  top-1 %.4f, top-5 %.4f\n", r->top1, r->top5);
}

typedef struct knn_opts {
  const char *model, *data, *classes, *train_pc, *test_pc, *train_list, *test_list;
  const char *train_emb, *train_labels, *test_emb, *test_labels, *format;
  int raw, json, quiet;
  int64_t raw_side, k, batch, threads;
  double temperature;
} knn_opts;

static int knn_usage(const knn_opts *o) {
  int sources = !!o->model + !!o->raw + !!o->train_emb;
  if (sources != 1) return cli_usage_error("give one feature source: --model M, --raw, or --train-emb with --test-emb");
  if (o->train_emb) {
    if (!o->test_emb || !o->train_labels || !o->test_labels)
      return cli_usage_error("--train-emb needs --train-labels, --test-emb and --test-labels");
    if (o->data || o->train_list || o->train_pc || o->classes)
      return cli_usage_error("--train-emb takes no --data, --train-list, --classes or --*-per-class");
    return EXIT_OK;
  }
  if (o->test_emb || o->train_labels || o->test_labels || o->format)
    return cli_usage_error("--test-emb, --train-labels, --test-labels and --format go with --train-emb");
  if (!o->data) return cli_usage_error("--model and --raw need --data");
  if (!o->train_list != !o->test_list) return cli_usage_error("--train-list and --test-list go together");
  if (o->train_list && (o->train_pc || o->test_pc || o->classes))
    return cli_usage_error("--train-list takes no --classes or --*-per-class (the lists choose the images)");
  if (!o->train_list && (!o->train_pc || !o->test_pc))
    return cli_usage_error("with class folders, give --train-per-class A:B and --test-per-class C:D (the memory and the queries)");
  return EXIT_OK;
}

static int eval_knn(int argc, char **argv) {
  knn_opts o = {0};
  o.raw_side = 28, o.k = 20, o.batch = 32, o.temperature = 0.07;
  cli_opt opts[] = {
      OPT_STR("--model", NULL, &o.model, "FILE", "a model from `embr train` (or one embr loads): its embeddings are the features", NULL),
      OPT_FLAG("--raw", NULL, &o.raw, "instead of --model: raw pixels as features (RGB, --raw-size square, v / 255)"),
      OPT_INT("--raw-size", NULL, &o.raw_side, "PX", "with --raw: the side images are resized to", "28", 1, 1024),
      OPT_STR("--data", NULL, &o.data, "DIR|mnist:PATH", "labelled images: class sub-folders or MNIST, or the folder list paths are relative to", NULL),
      OPT_STR("--train-per-class", NULL, &o.train_pc, "A:B", "the memory: images A..B-1 of each class", NULL),
      OPT_STR("--test-per-class", NULL, &o.test_pc, "A:B", "the queries: images A..B-1 of each class (apart from the memory)", NULL),
      OPT_STR("--classes", NULL, &o.classes, "A:B", "only classes A..B-1", "all"),
      OPT_STR("--train-list", NULL, &o.train_list, "FILE", "instead of --*-per-class: the memory, FILE<TAB>LABEL per line", NULL),
      OPT_STR("--test-list", NULL, &o.test_list, "FILE", "with --train-list: the queries, FILE<TAB>LABEL per line", NULL),
      OPT_STR("--train-emb", NULL, &o.train_emb, "FILE", "instead of images: memory embeddings, one row per image", NULL),
      OPT_STR("--train-labels", NULL, &o.train_labels, "FILE", "with --train-emb: one label per line", NULL),
      OPT_STR("--test-emb", NULL, &o.test_emb, "FILE", "with --train-emb: query embeddings", NULL),
      OPT_STR("--test-labels", NULL, &o.test_labels, "FILE", "with --test-emb: one label per line", NULL),
      OPT_FORMAT(&o.format),
      OPT_INT("-k", NULL, &o.k, "K", "neighbours that vote", "20", 1, 100000),
      OPT_DBL("--temperature", NULL, &o.temperature, "T", "vote weight exp(cosine / T)", "0.07", 0.01, 1e6),
      OPT_INT("--batch", "-b", &o.batch, "B", "images per forward pass", "32", 1, 100000),
      OPT_THREADS(&o.threads),
      OPT_JSON(&o.json),
      OPT_QUIET(&o.quiet),
  };
  cli_command cmd = {"Weighted k-NN classification accuracy (DINO's protocol): top-1 and top-5.",
                     "embr eval knn (--model M | --raw) --data DIR (--train-per-class A:B --test-per-class C:D | --train-list F --test-list G) [-k 20] [--temperature 0.07] [--json]\n"
                     "       embr eval knn --train-emb X --train-labels L --test-emb Y --test-labels M [-k 20] [--json]",
                     "Rows are L2-normalised; each query's k most similar memory rows (cosine) vote for their\n"
                     "label with weight exp(cosine / T); the label with the largest sum is the prediction.\n"
                     "Labels of list and label files are texts (equal texts, equal classes).",
                     opts, CLI_NOPTS(opts), 0, 0, NULL, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  int rc = knn_usage(&o);
  if (rc) return rc;
  knn_side tr = {0}, te = {0};
  embr_captions ctr = {0}, cte = {0};
  embr_lines ltr = {0}, lte = {0};
  embr_model *m = NULL;
  if (o.train_emb) {
    rc = knn_read_emb(o.train_emb, o.train_labels, o.format, &tr, &ltr);
    if (!rc) rc = knn_read_emb(o.test_emb, o.test_labels, o.format, &te, &lte);
    if (!rc && tr.dim != te.dim)
      rc = cli_error("%s: dimension %lld does not match %s dimension %lld", o.test_emb, (long long)te.dim, o.train_emb,
                     (long long)tr.dim);
    if (!rc) rc = knn_label_ids(ltr.line, ltr.n, lte.line, lte.n, &tr, &te);
  } else {
    if (o.model) {
      cli_model_src src = {o.model, NULL, 112};
      rc = cli_load_model(&src, &m);
      if (!rc) embr_model_set_threads(m, (int)o.threads);
    }
    if (!rc && o.train_list) {
      rc = knn_read_list(o.train_list, o.data, &ctr, &tr);
      if (!rc) rc = knn_read_list(o.test_list, o.data, &cte, &te);
      if (!rc) rc = knn_label_ids(ctr.text, ctr.n, cte.text, cte.n, &tr, &te);
    } else if (!rc) {
      rc = knn_select(o.data, o.classes, o.train_pc, o.test_pc, &tr, &te);
      if (!rc) te.ds = NULL; /* both sides use tr's dataset */
    }
    if (!rc) rc = knn_embed(m, o.raw_side, (int)o.batch, o.quiet, &tr);
    if (!rc) {
      if (!te.ds) te.ds = tr.ds;
      rc = knn_embed(m, o.raw_side, (int)o.batch, o.quiet, &te);
      if (te.ds == tr.ds) te.ds = NULL;
    }
  }
  if (!rc) {
    embr_knn_eval_result r;
    int st = embr_eval_knn(tr.x, tr.n, tr.mat.data ? tr.mat.ld : tr.dim, tr.labels, te.x, te.n,
                           te.mat.data ? te.mat.ld : te.dim, te.labels, tr.dim, (int)o.k, o.temperature, (int)o.threads,
                           NULL, &r);
    if (st) rc = cli_fail(st);
    else knn_print(&r, o.model ? "model" : o.raw ? "raw pixels" : "embeddings", o.json);
  }
  embr_model_free(m);
  knn_side_free(&tr);
  knn_side_free(&te);
  embr_captions_free(&ctr);
  embr_captions_free(&cte);
  embr_lines_free(&ltr);
  embr_lines_free(&lte);
  return rc;
}

static const cli_entry eval_commands[] = {
    {"verify", "pair accuracy (10-fold, LFW protocol), ROC AUC, TAR at FAR", eval_verify, NULL, 0, NULL},
    {"identify", "rank-1 and recall@k with a gallery/probe split", eval_identify, NULL, 0, NULL},
    {"retrieval", "image <-> caption recall@k and ranks (CLIP models, or precomputed embeddings)", eval_retrieval, NULL, 0, NULL},
    {"knn", "weighted k-NN classification, top-1 / top-5 (DINO's protocol; a model, raw pixels or embeddings)", eval_knn, NULL, 0, NULL},
};
const cli_entry cli_eval = {"eval", "verification, identification, retrieval and k-NN accuracy of a model", NULL,
                            CLI_CHILDREN(eval_commands), NULL};

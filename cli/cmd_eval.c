/* embr eval: how well a model's embeddings tell identities apart, or match images and captions.
 *   verify     pairs of images, same person or not: 10-fold accuracy with the best threshold per
 *              fold (the LFW protocol), ROC AUC, TAR at a false-accept rate;
 *   identify   a gallery of known images per class and probes: rank-1 and recall@k;
 *   retrieval  image-caption pairs (a CLIP model, or embeddings computed elsewhere): recall@k,
 *              median and mean rank, text -> image and image -> text. */
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

static const cli_entry eval_commands[] = {
    {"verify", "pair accuracy (10-fold, LFW protocol), ROC AUC, TAR at FAR", eval_verify, NULL, 0, NULL},
    {"identify", "rank-1 and recall@k with a gallery/probe split", eval_identify, NULL, 0, NULL},
    {"retrieval", "image <-> caption recall@k and ranks (CLIP models, or precomputed embeddings)", eval_retrieval, NULL, 0, NULL},
};
const cli_entry cli_eval = {"eval", "verification, identification and retrieval accuracy of a model", NULL,
                            CLI_CHILDREN(eval_commands), NULL};

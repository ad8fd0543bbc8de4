/* embr clip: what an image-text (CLIP) model does beyond embedding, from the command line.
 *   classify  zero-shot classification: labels turned into prompts by templates ("a photo of a
 *             {}."), embedded by the text tower and averaged per label (embr_zeroshot_weights);
 *             each image's top-k labels by cosine similarity (embr_zeroshot_classify), and the
 *             accuracy when the images come from class folders named like the labels. */
#include "commands.h"
#include "nn_common.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_TEMPLATE "a photo of a {}."

/* The class labels: pointers into `buf` (a copy of --labels) or into `file` (--labels-file). */
typedef struct label_set {
  char **v;
  int64_t n;
  char *buf;
  embr_lines file;
} label_set;

static void label_set_free(label_set *l) {
  free(l->v);
  free(l->buf);
  embr_lines_free(&l->file);
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t' || *s == '\r') s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = '\0';
  return s;
}

/* Index of the first label before i equal to label i, or -1. */
static int64_t duplicate_of(const label_set *l, int64_t i) {
  for (int64_t j = 0; j < i; j++)
    if (!strcmp(l->v[j], l->v[i])) return j;
  return -1;
}

/* --labels "cat, dog,bird": items trimmed; an empty or repeated one is a usage error. */
static int labels_from_flag(const char *spec, label_set *l) {
  l->buf = strdup(spec);
  l->v = malloc(sizeof(char *) * (strlen(spec) / 2 + 2));
  if (!l->buf || !l->v) return cli_fail(embr_error(EMBR_ENOMEM, "out of memory"));
  for (char *p = l->buf;;) {
    char *comma = strchr(p, ',');
    if (comma) *comma = '\0';
    l->v[l->n] = trim(p);
    if (!*l->v[l->n]) return cli_usage_error("--labels: label %lld is empty in '%s'", (long long)l->n + 1, spec);
    int64_t d = duplicate_of(l, l->n);
    if (d >= 0) return cli_usage_error("--labels: '%s' is given twice (labels %lld and %lld)", l->v[l->n], (long long)d + 1, (long long)l->n + 1);
    l->n++;
    if (!comma) break;
    p = comma + 1;
  }
  return EXIT_OK;
}

/* --labels-file: one label per line, trimmed; an empty or repeated one names the line. */
static int labels_from_file(const char *path, label_set *l) {
  int rc = embr_lines_read(path, -1, NULL, NULL, &l->file);
  if (rc) return cli_fail(rc);
  if (l->file.n == 0) return cli_error("%s: no labels (one per line expected)", path);
  l->v = malloc(sizeof(char *) * (size_t)l->file.n);
  if (!l->v) return cli_fail(embr_error(EMBR_ENOMEM, "out of memory"));
  for (; l->n < l->file.n; l->n++) {
    l->v[l->n] = trim(l->file.line[l->n]);
    if (!*l->v[l->n]) return cli_error("%s: line %lld: empty label", path, (long long)l->n + 1);
    int64_t d = duplicate_of(l, l->n);
    if (d >= 0) return cli_error("%s: line %lld: label '%s' repeats line %lld", path, (long long)l->n + 1, l->v[l->n], (long long)d + 1);
  }
  return EXIT_OK;
}

/* A template holds "{}" exactly once. */
static int check_template(const char *t) {
  const char *p = strstr(t, "{}");
  if (!p || strstr(p + 2, "{}")) return cli_usage_error("--template must hold {} exactly once (where the label goes), got '%s'", t);
  return EXIT_OK;
}

/* The prompts, label-major: prompt c*nt + t is template t with label c. *buf holds the strings. */
static int make_prompts(const label_set *l, const cli_strings *tpl, char ***prompts, char **buf) {
  size_t total = 0;
  for (int64_t c = 0; c < l->n; c++)
    for (int t = 0; t < tpl->n; t++) total += strlen(tpl->v[t]) + strlen(l->v[c]) - 1;
  *prompts = malloc(sizeof(char *) * (size_t)(l->n * tpl->n));
  *buf = malloc(total);
  if (!*prompts || !*buf) return cli_fail(embr_error(EMBR_ENOMEM, "out of memory"));
  char *o = *buf;
  for (int64_t c = 0; c < l->n; c++)
    for (int t = 0; t < tpl->n; t++) {
      const char *at = strstr(tpl->v[t], "{}");
      int n = sprintf(o, "%.*s%s%s", (int)(at - tpl->v[t]), tpl->v[t], l->v[c], at + 2);
      (*prompts)[c * tpl->n + t] = o;
      o += n + 1;
    }
  return EXIT_OK;
}

/* Each image's class as a label index, when the images come from class folders named like the
 * labels (all of them); 0 otherwise. A note says why when some folders match and others not. */
static int truth_labels(const embr_dataset *ds, const label_set *l, int32_t *truth) {
  int nc = embr_dataset_classes(ds), matched = 0, unmatched = -1;
  int32_t *map = malloc(sizeof(int32_t) * (size_t)nc);
  if (!map) return 0;
  for (int c = 0; c < nc; c++) {
    map[c] = -1;
    for (int64_t j = 0; j < l->n && map[c] < 0; j++)
      if (!strcmp(embr_dataset_class_name(ds, c), l->v[j])) map[c] = (int32_t)j;
    if (map[c] >= 0) matched++;
    else if (unmatched < 0) unmatched = c;
  }
  int ok = matched == nc;
  if (matched && !ok)
    fprintf(stderr, "embr %s: note: no accuracy: class folder '%s' is not among the labels\n", cli_name(),
            embr_dataset_class_name(ds, unmatched));
  for (int64_t i = 0; ok && i < embr_dataset_size(ds); i++) truth[i] = map[embr_dataset_label(ds, i)];
  free(map);
  return ok;
}

typedef struct classify_result {
  int64_t n;
  int k;
  int32_t *top;
  float *score;
  int has_acc;
  double acc1, acck;
} classify_result;

static void print_classify(const embr_dataset *ds, const label_set *l, const cli_strings *tpl, const classify_result *r,
                           int json) {
  if (!json) {
    for (int64_t i = 0; i < r->n; i++) {
      printf("%s", embr_dataset_item_name(ds, i));
      for (int j = 0; j < r->k; j++) printf("\t%s:%.4f", l->v[r->top[i * r->k + j]], (double)r->score[i * r->k + j]);
      printf("\n");
    }
    if (r->has_acc) {
      printf("accuracy: top-1 %.4f", r->acc1);
      if (r->k > 1) printf(", top-%d %.4f", r->k, r->acck);
      printf(" (%lld images, class folders as the truth)\n", (long long)r->n);
    }
    return;
  }
  printf("{\"labels\":[");
  for (int64_t c = 0; c < l->n; c++) {
    if (c) putchar(',');
    cli_json_string(stdout, l->v[c]);
  }
  printf("],\"templates\":[");
  for (int t = 0; t < tpl->n; t++) {
    if (t) putchar(',');
    cli_json_string(stdout, tpl->v[t]);
  }
  printf("],\"k\":%d,\"results\":[", r->k);
  for (int64_t i = 0; i < r->n; i++) {
    printf("%s{\"image\":", i ? "," : "");
    cli_json_string(stdout, embr_dataset_item_name(ds, i));
    printf(",\"labels\":[");
    for (int j = 0; j < r->k; j++) {
      if (j) putchar(',');
      cli_json_string(stdout, l->v[r->top[i * r->k + j]]);
    }
    printf("],\"scores\":[");
    for (int j = 0; j < r->k; j++) {
      if (j) putchar(',');
      cli_json_float(stdout, r->score[i * r->k + j]);
    }
    printf("]}");
  }
  printf("],\"accuracy\":");
  if (r->has_acc)
    printf("{\"images\":%lld,\"top1\":%.6f,\"top%d\":%.6f}}\n", (long long)r->n, r->acc1, r->k, r->acck);
  else
    printf("null}\n");
}

static int clip_classify(int argc, char **argv) {
  const char *model = NULL, *bpe = NULL, *images = NULL, *labels = NULL, *labels_file = NULL;
  cli_strings tpl = {{NULL}, 0};
  int64_t k = 5, batch = 32, threads = 0;
  int json = 0, quiet = 0;
  cli_opt opts[] = {
      OPT_STR_REQ("--model", NULL, &model, "FILE", "a CLIP model (embr's, or a converted OpenAI / Hugging Face checkpoint)"),
      OPT_BPE(&bpe),
      OPT_STR_REQ("--images", "-i|--input", &images, "DIR|LIST",
                  "a folder (of class sub-folders, or of images), or a list file of image paths (- for stdin)"),
      OPT_STR("--labels", "-l", &labels, "A,B,...", "the class labels, comma-separated", NULL),
      OPT_STR("--labels-file", NULL, &labels_file, "FILE", "the class labels, one per line", NULL),
      OPT_STRS("--template", NULL, &tpl, "TEXT",
               "a prompt with {} where the label goes; repeat it to average several, as CLIP does", "\"" DEFAULT_TEMPLATE "\""),
      OPT_INT("-k", "--k", &k, "K", "labels printed per image", "5", 1, 100000),
      OPT_INT("--batch", "-b", &batch, "B", "images or prompts per forward pass", "32", 1, 100000),
      OPT_THREADS(&threads),
      OPT_JSON(&json),
      OPT_QUIET(&quiet),
  };
  cli_command cmd = {"Zero-shot classification of images with a CLIP model.",
                     "embr clip classify --model M --images DIR|LIST (--labels cat,dog | --labels-file F) [--template T]... [-k 5] [--json]",
                     "Each label becomes one prompt per template; a label's classifier is the mean of its\n"
                     "prompts' unit embeddings, renormalised. Scores are cosine similarities (CLIP's logits\n"
                     "are 100 times them). Prints one line per image: IMAGE<TAB>LABEL:SCORE ..., best first.\n"
                     "When the images come from class sub-folders all named like labels, the top-1 and\n"
                     "top-k accuracy follow (the folders are the truth).",
                     opts, CLI_NOPTS(opts), 0, 0, NULL, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  if (!labels == !labels_file) return cli_usage_error("give exactly one of --labels and --labels-file");
  if (tpl.n == 0) tpl.v[tpl.n++] = DEFAULT_TEMPLATE;
  for (int t = 0; t < tpl.n; t++)
    if (check_template(tpl.v[t])) return EXIT_USAGE;
  label_set l = {0};
  int rc = labels ? labels_from_flag(labels, &l) : labels_from_file(labels_file, &l);
  if (!rc && l.n < 2)
    rc = labels ? cli_usage_error("--labels: at least 2 labels are needed, got '%s'", labels)
                : cli_error("%s: at least 2 labels are needed, got 1", labels_file);
  if (rc) {
    label_set_free(&l);
    return rc;
  }
  cli_model_src src = {model, NULL, 0};
  embr_model *m = NULL;
  embr_dataset *ds = NULL;
  char **prompts = NULL, *pbuf = NULL;
  float *img = NULL, *txt = NULL, *w = NULL;
  int32_t *truth = NULL;
  classify_result r = {0};
  rc = cli_load_model(&src, &m);
  if (!rc) {
    embr_model_set_threads(m, (int)threads);
    rc = cli_text_model(m, model, bpe);
  }
  if (!rc) rc = cli_open_images(images, &ds);
  if (!rc) rc = make_prompts(&l, &tpl, &prompts, &pbuf);
  if (!rc) rc = cli_embed_texts(m, (const char *const *)prompts, l.n * tpl.n, (int)batch, 0, quiet, &txt);
  if (!rc) {
    r.n = embr_dataset_size(ds);
    r.k = k < l.n ? (int)k : (int)l.n;
    rc = cli_embed_items(m, ds, NULL, r.n, (int)batch, 0, quiet, &img, NULL);
  }
  if (!rc) {
    int64_t dim = embr_model_dim(m);
    w = malloc(sizeof(float) * (size_t)(l.n * dim));
    r.top = malloc(sizeof(int32_t) * (size_t)(r.n * r.k));
    r.score = malloc(sizeof(float) * (size_t)(r.n * r.k));
    truth = malloc(sizeof(int32_t) * (size_t)r.n);
    int s = w && r.top && r.score && truth ? 0 : embr_error(EMBR_ENOMEM, "out of memory");
    if (!s) s = embr_zeroshot_weights(txt, l.n, tpl.n, dim, dim, w);
    if (!s) s = embr_zeroshot_classify(img, r.n, dim, w, l.n, dim, r.k, r.top, r.score);
    if (!s && (r.has_acc = truth_labels(ds, &l, truth))) {
      s = embr_zeroshot_accuracy(r.top, r.n, r.k, truth, 1, &r.acc1);
      if (!s) s = embr_zeroshot_accuracy(r.top, r.n, r.k, truth, r.k, &r.acck);
    }
    if (s) rc = cli_fail(s);
  }
  if (!rc) print_classify(ds, &l, &tpl, &r, json);
  free(r.top);
  free(r.score);
  free(truth);
  free(w);
  free(img);
  free(txt);
  free(prompts);
  free(pbuf);
  embr_dataset_free(ds);
  embr_model_free(m);
  label_set_free(&l);
  return rc;
}

static const cli_entry clip_commands[] = {
    {"classify", "zero-shot classification of images by text labels", clip_classify, NULL, 0, NULL},
};
const cli_entry cli_clip = {"clip", "image-text (CLIP) models: zero-shot classification", NULL, CLI_CHILDREN(clip_commands),
                            "Commands for CLIP models. Embedding images and texts is `embr embed` (--images, --texts);\n"
                            "retrieval recall is `embr eval retrieval`; text queries are `embr collection search --text`."};

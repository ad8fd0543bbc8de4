/* Dataset specs, selections and batched embedding for the neural-network commands. */
#include "nn_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int cli_open_dataset(const char *spec, embr_dataset **out) {
  int rc = !strncmp(spec, "mnist:", 6) ? embr_dataset_open_mnist(spec + 6, out) : embr_dataset_open_folder(spec, out);
  return rc ? cli_fail(rc) : EXIT_OK;
}

int cli_open_images(const char *spec, embr_dataset **out) {
  int rc = !strncmp(spec, "mnist:", 6) ? embr_dataset_open_mnist(spec + 6, out) : embr_dataset_open(spec, out);
  return rc ? cli_fail(rc) : EXIT_OK;
}

/* "A:B", ":B", "A:", or "A" (just A); -1 marks an open end. */
static int parse_range(const char *s, int64_t *a, int64_t *b) {
  char *end;
  *a = 0, *b = -1;
  const char *colon = strchr(s, ':');
  if (s[0] && s[0] != ':') {
    *a = strtoll(s, &end, 10);
    if (end == s || *a < 0 || (*end && *end != ':')) return -1;
    if (!colon) *b = *a + 1;
  }
  if (colon && colon[1]) {
    *b = strtoll(colon + 1, &end, 10);
    if (*end || *b < 0) return -1;
  }
  return *b >= 0 && *b <= *a ? -1 : 0;
}

int cli_select(const embr_dataset *ds, const char *classes, const char *per_class, int64_t **subset,
               int64_t *n) {
  int64_t c0 = 0, c1 = -1, i0 = 0, i1 = -1, total = embr_dataset_size(ds);
  if (classes && parse_range(classes, &c0, &c1))
    return cli_usage_error("--classes wants A:B (class indices, end excluded), got '%s'", classes);
  if (per_class && parse_range(per_class, &i0, &i1))
    return cli_usage_error("--per-class wants A:B (image indices within a class), got '%s'", per_class);
  int nc = embr_dataset_classes(ds);
  int64_t *seen = calloc((size_t)nc + 1, sizeof(int64_t));
  *subset = malloc(sizeof(int64_t) * (size_t)(total ? total : 1));
  if (!seen || !*subset) {
    free(seen);
    return cli_fail(embr_error(EMBR_ENOMEM, "out of memory"));
  }
  *n = 0;
  for (int64_t i = 0; i < total; i++) {
    int c = embr_dataset_label(ds, i);
    int64_t k = seen[c]++;
    if (c < c0 || (c1 >= 0 && c >= c1) || k < i0 || (i1 >= 0 && k >= i1)) continue;
    (*subset)[(*n)++] = i;
  }
  free(seen);
  if (*n == 0) {
    free(*subset);
    *subset = NULL;
    return cli_fail(embr_error(EMBR_EINVAL, "the selection (--classes %s, --per-class %s) holds no images of the %d classes",
                                    classes ? classes : "all", per_class ? per_class : "all", nc));
  }
  return EXIT_OK;
}

int cli_load_model(const cli_model_src *src, embr_model **out) {
  *out = NULL;
  int rc;
  if (!src->arch) return (rc = embr_model_load(src->path, out)) ? cli_fail(rc) : EXIT_OK;
  if (!strcmp(src->arch, "vit")) { /* a ViT state dict (DINO, DINOv2): its sizes from the file */
    embr_model_params p = embr_model_params_arch("vit");
    return (rc = embr_model_load_weights(src->path, &p, out)) ? cli_fail(rc) : EXIT_OK;
  }
  if (strcmp(src->arch, "resnet18") && strcmp(src->arch, "resnet34") && strcmp(src->arch, "mobilefacenet"))
    return cli_usage_error("unknown --arch (resnet18, resnet34, mobilefacenet or vit)");
  embr_model_params p = embr_model_params_default();
  p.arch = src->arch, p.width = 0, p.embedding_dim = 0, p.input.channels = 0; /* read off the weights */
  p.input.height = p.input.width = (int)src->side;
  return (rc = embr_model_load_weights(src->path, &p, out)) ? cli_fail(rc) : EXIT_OK;
}

int cli_embed_items(embr_model *m, const embr_dataset *ds, const int64_t *subset, int64_t n,
                    int batch, int raw, int quiet, float **out, int32_t *labels) {
  *out = malloc(sizeof(float) * (size_t)n * (size_t)embr_model_dim(m) + 1);
  if (!*out) return cli_fail(embr_error(EMBR_ENOMEM, "out of memory for %lld embeddings", (long long)n));
  cli_bar bar;
  cli_bar_init(&bar, "embed", quiet);
  embr_progress pr = cli_bar_progress(&bar);
  int rc = embr_model_embed_dataset(m, ds, subset, n, batch, !raw, &pr, *out, labels);
  cli_bar_done(&bar);
  if (rc) {
    free(*out);
    *out = NULL;
    return cli_fail(rc);
  }
  return EXIT_OK;
}

/* ---- texts ---------------------------------------------------------------------------------------- */

int cli_text_model(embr_model *m, const char *path, const char *bpe) {
  if (!embr_model_has_text(m))
    return cli_error("%s: a %s model has no text tower; texts need a CLIP model", path, embr_model_arch(m));
  if (bpe) {
    int rc = embr_model_set_tokenizer(m, bpe);
    if (rc) return cli_fail(rc);
  }
  if (!embr_model_has_tokenizer(m))
    return cli_error("%s: the model carries no tokenizer (a converted checkpoint): give CLIP's merges file with --bpe", path);
  return EXIT_OK;
}

int cli_read_texts(const char *path, embr_lines *out) {
  int rc = embr_lines_read(path, -1, NULL, NULL, out);
  if (rc) return cli_fail(rc);
  if (out->n == 0) {
    embr_lines_free(out);
    return cli_error("%s: no texts (one text per line expected)", path);
  }
  for (int64_t i = 0; i < out->n; i++) {
    const char *p = out->line[i];
    while (*p == ' ' || *p == '\t' || *p == '\r') p++;
    if (!*p) {
      embr_lines_free(out);
      return cli_error("%s: line %lld: empty text (one text per line; rows follow the lines)", path, (long long)i + 1);
    }
  }
  return EXIT_OK;
}

void cli_normalize_rows(float *x, int64_t n, int64_t dim) {
  for (int64_t i = 0; i < n; i++) {
    float *r = x + i * dim;
    double s = embr_norm_sq(r, dim);
    if (s > 0) {
      float inv = (float)(1.0 / sqrt(s));
      for (int64_t j = 0; j < dim; j++) r[j] *= inv;
    }
  }
}

int cli_embed_texts(embr_model *m, const char *const *texts, int64_t n, int batch, int raw, int quiet, float **out) {
  int64_t dim = embr_model_dim(m), cut = 0;
  *out = malloc(sizeof(float) * (size_t)n * (size_t)dim + 1);
  if (!*out) return cli_fail(embr_error(EMBR_ENOMEM, "out of memory for %lld embeddings", (long long)n));
  cli_bar bar;
  cli_bar_init(&bar, "embed", quiet);
  embr_progress pr = cli_bar_progress(&bar);
  embr_progress_state ps;
  embr_progress_begin(&ps, &pr, (uint64_t)n);
  int64_t step = (int64_t)batch * 4, done = 0;
  int rc = 0;
  while (!rc && done < n) { /* in pieces, for the progress bar */
    int64_t nb = n - done < step ? n - done : step, c = 0;
    rc = embr_model_embed_texts(m, texts + done, nb, batch, *out + done * dim, &c);
    cut += c;
    done += nb;
    if (!rc && embr_progress_update(&ps, (uint64_t)done, NULL, done == n)) rc = embr_error(EMBR_ECANCELED, "canceled");
  }
  cli_bar_done(&bar);
  if (rc) {
    free(*out);
    *out = NULL;
    return cli_fail(rc);
  }
  if (!raw) cli_normalize_rows(*out, n, dim);
  if (cut)
    fprintf(stderr, "embr %s: note: %lld of %lld texts were longer than the model's context (%d tokens) and were truncated\n",
            cli_name(), (long long)cut, (long long)n, embr_model_context(m));
  return EXIT_OK;
}

/* embr embed: images (or, with a CLIP model, texts) to embedding vectors with a trained model; the
 * output feeds `embr search`, `embr index`, collections and `embr tsne`. */
#include "commands.h"
#include "nn_common.h"

#include <stdlib.h>
#include <string.h>

typedef struct embed_out {
  embr_matrix m;
  const embr_dataset *ds;
  const int64_t *subset;
  int labels; /* 1: write class names, 0: item names */
} embed_out;

static int write_matrix(const char *path, const void *ctx) {
  const embed_out *o = ctx;
  return embr_matrix_write(path, embr_format_from_extension(path), &o->m);
}

static int write_names(const char *path, const void *ctx) {
  const embed_out *o = ctx;
  FILE *f = fopen(path, "wb");
  if (!f) return embr_error(EMBR_EIO, "%s: cannot create", path);
  for (int64_t i = 0; i < o->m.n; i++) {
    int64_t it = o->subset[i];
    fprintf(f, "%s\n", o->labels ? embr_dataset_class_name(o->ds, embr_dataset_label(o->ds, it)) : embr_dataset_item_name(o->ds, it));
  }
  int bad = ferror(f);
  if (fclose(f) != 0 || bad) return embr_error(EMBR_EIO, "%s: write failed", path);
  return 0;
}

/* --texts: one row per line of the file. */
static int embed_texts(embr_model *m, const cli_model_src *model, const char *path, const char *bpe, const char *out,
                       int batch, int raw, int quiet) {
  embr_lines l = {0};
  float *emb = NULL;
  int rc = cli_read_texts(path, &l);
  if (!rc) rc = cli_text_model(m, model->path, bpe);
  if (!rc) rc = cli_embed_texts(m, (const char *const *)l.line, l.n, batch, raw, quiet, &emb);
  if (!rc) {
    embed_out mo = {{l.n, embr_model_dim(m), embr_model_dim(m), emb, NULL}, NULL, NULL, 0};
    cli_output o = {out, write_matrix, &mo};
    rc = cli_write_outputs(&o, 1);
    if (!rc && !quiet)
      fprintf(stderr, "embr %s: %lld texts -> %s (%d dimensions)\n", cli_name(), (long long)l.n, out, embr_model_dim(m));
  }
  free(emb);
  embr_lines_free(&l);
  return rc;
}

static int cmd_embed(int argc, char **argv) {
  cli_model_src model = {NULL, NULL, 112};
  const char *images = NULL, *texts = NULL, *bpe = NULL, *out = NULL, *ids = NULL, *labels = NULL, *classes = NULL, *per_class = NULL,
             *pool = NULL;
  int64_t batch = 32, threads = 0;
  int raw = 0, quiet = 0;
  cli_opt opts[] = {
      CLI_MODEL_OPTS(model, "a model from `embr train` (.safetensors)"),
      OPT_STR("--images", "-i|--input", &images, "DIR|LIST|mnist:PATH",
              "a folder (of class sub-folders, or of images), a list file of image paths (one a line; - for stdin), or MNIST idx files",
              NULL),
      OPT_STR("--texts", NULL, &texts, "FILE", "instead of --images, with a CLIP model: texts, one per line (- for stdin)", NULL),
      OPT_BPE(&bpe),
      OPT_STR_REQ("--out", "-o|--output", &out, "FILE", "embeddings, one row per image (.npy, .fvecs, .csv, ...)"),
      OPT_STR("--ids", NULL, &ids, "FILE", "each row's image name (class/file, file, or the list's path), one per line", "none"),
      OPT_STR("--labels", NULL, &labels, "FILE", "each row's class name, one per line (for plots and eval)", "none"),
      OPT_STR("--classes", NULL, &classes, "A:B", "only classes A..B-1 (natural order: s2 before s10)", "all"),
      OPT_STR("--per-class", NULL, &per_class, "A:B", "only images A..B-1 of each class", "all"),
      OPT_INT("--batch", "-b", &batch, "B", "images per forward pass", "32", 1, 100000),
      OPT_FLAG("--raw", NULL, &raw, "keep the network's output as is (default: rows scaled to unit length)"),
      OPT_STR("--pool", NULL, &pool, "cls|cls+avg",
              "with a ViT (DINO): the class token, or the class token followed by the mean patch token (DINO's linear evaluation)",
              "the model's"),
      OPT_THREADS(&threads),
      OPT_QUIET(&quiet),
  };
  cli_command cmd = {"Embed images, or texts with a CLIP model, with a trained model.",
                     "embr embed --model M.safetensors (--images DIR|LIST.txt | --texts FILE) -o emb.npy [--ids ids.txt] [--labels labels.txt]",
                     "Rows are unit length unless --raw, so l2, ip and cosine searches rank alike.\n"
                     "Images are resized to the model's input; grey and colour images both work.\n"
                     "Rows follow the images' order: class folders then files in natural order, or the list's lines.\n"
                     "A list file's relative paths are relative to the list's folder. A folder without class\n"
                     "sub-folders, or a list, is one class (named as given on the command line).\n"
                     "--texts: one text per line, rows in line order (an empty line is refused); a text longer\n"
                     "than the model's context is truncated, and a note on stderr counts them.\n"
                     "A ViT (DINO, DINOv2: an embr model or a converted state dict, see docs/dino.md) gives its\n"
                     "class token, or with --pool cls+avg the class token followed by the mean patch token.",
                     opts, CLI_NOPTS(opts), 0, 0, NULL, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  if (!images == !texts) return cli_usage_error("give exactly one of --images and --texts");
  if (pool && strcmp(pool, "cls") && strcmp(pool, "cls+avg")) return cli_usage_error("--pool must be cls or cls+avg");
  if (texts && (ids || labels || classes || per_class || pool))
    return cli_usage_error("%s goes with --images, not --texts",
                           ids ? "--ids" : labels ? "--labels" : classes ? "--classes" : per_class ? "--per-class" : "--pool");
  if (embr_format_from_extension(out) == EMBR_FORMAT_AUTO)
    return cli_usage_error("cannot tell the format of '%s' from its extension", out);
  cli_file files[] = {{"--out", out, 1},        {"--ids", ids, 1}, {"--labels", labels, 1}, {"--model", model.path, 0},
                      {"--texts", texts, 0}, {"--bpe", bpe, 0}};
  int frc = cli_check_files(files, 6);
  if (frc) return frc;
  embr_model *m = NULL;
  int rc = cli_load_model(&model, &m);
  if (rc) return rc;
  embr_model_set_threads(m, (int)threads);
  if (pool && (rc = embr_model_set_pool(m, strcmp(pool, "cls") ? EMBR_POOL_CLS_AVG : EMBR_POOL_CLS))) {
    rc = embr_error(rc, "%s: --pool: a %s model has no class and patch tokens (a ViT has)", model.path, embr_model_arch(m));
    embr_model_free(m);
    return cli_fail(rc);
  }
  if (texts) {
    rc = embed_texts(m, &model, texts, bpe, out, (int)batch, raw, quiet);
    embr_model_free(m);
    return rc;
  }
  embr_dataset *ds = NULL;
  int64_t *subset = NULL, n = 0;
  float *emb = NULL;
  rc = cli_open_images(images, &ds);
  if (!rc) rc = cli_select(ds, classes, per_class, &subset, &n);
  if (!rc) rc = cli_embed_items(m, ds, subset, n, (int)batch, raw, quiet, &emb, NULL);
  if (!rc) {
    embed_out mo = {{n, embr_model_dim(m), embr_model_dim(m), emb, NULL}, ds, subset, 0}, io = mo, lo = mo;
    lo.labels = 1;
    cli_output outs[3] = {{out, write_matrix, &mo}};
    int no = 1;
    if (ids) outs[no++] = (cli_output){ids, write_names, &io};
    if (labels) outs[no++] = (cli_output){labels, write_names, &lo};
    rc = cli_write_outputs(outs, no);
    if (!rc && !quiet) fprintf(stderr, "embr %s: %lld images -> %s (%d dimensions)\n", cli_name(), (long long)n, out, embr_model_dim(m));
  }
  free(emb);
  free(subset);
  embr_dataset_free(ds);
  embr_model_free(m);
  return rc;
}

const cli_entry cli_embed = {"embed", "images (or texts, with CLIP) to embedding vectors with a trained model", cmd_embed, NULL, 0, NULL};

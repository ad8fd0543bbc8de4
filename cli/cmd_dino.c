/* embr dino attention: the last-layer class-token attention of a ViT (DINO) per head, drawn over
 * each image, with the mask that keeps 60 % of the attention mass (the DINO paper's figure). The
 * maps, masks and pictures come from the library (embr_model_attention, embr_attention_picture);
 * this file picks the images and names the outputs. */
#include "commands.h"
#include "nn_common.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The network's input at `side` px, and the same geometry unnormalised (the picture's view). */
static embr_image_spec spec_at(const embr_model *m, int side, int raw) {
  embr_image_spec s = embr_model_input(m);
  if (s.crop == EMBR_CROP_CENTER && s.short_side)
    s.short_side = (int)lround((double)s.short_side * side / s.height);
  s.channels = 3, s.height = s.width = side;
  for (int c = 0; raw && c < 3; c++) s.mean[c] = 0, s.std[c] = 1;
  return s;
}

/* OUTDIR/<item name, '/' as '_', extension .png> */
static char *out_name(const char *dir, const char *item) {
  size_t n = strlen(dir) + strlen(item) + 8;
  char *p = malloc(n);
  if (!p) return NULL;
  snprintf(p, n, "%s/%s", dir, item);
  for (char *c = p + strlen(dir) + 1; *c; c++)
    if (*c == '/') *c = '_';
  char *dot = strrchr(p + strlen(dir) + 1, '.');
  strcpy(dot ? dot : p + strlen(p), ".png");
  return p;
}

/* One image: tensor, maps and masks, the picture written to `path`; *kept counts the patches of
 * the mean map's mask. */
static int one(embr_model *m, const embr_image *im, int side, double mass, const char *path, int *kept, int *grid) {
  int H, g, rc = embr_model_attention_size(m, side, &H, &g);
  if (rc) return rc;
  int64_t G = (int64_t)g * g;
  float *x = malloc(sizeof(float) * 3 * (size_t)side * (size_t)side), *maps = malloc(sizeof(float) * (size_t)(H * G));
  uint8_t *masks = malloc((size_t)((H + 1) * G));
  embr_image view = {0}, pic = {0};
  if (!x || !maps || !masks) rc = embr_error(EMBR_ENOMEM, "out of memory");
  embr_image_spec s = spec_at(m, side, 0), r = spec_at(m, side, 1);
  if (!rc) rc = embr_image_to_tensor(im, &s, x);
  if (!rc) rc = embr_model_attention(m, x, 1, side, (float)mass, maps, masks);
  if (!rc) rc = embr_image_to_tensor(im, &r, x); /* [0, 1]: the crop as the network saw it */
  if (!rc && !(view.px = embr_alloc((size_t)side * (size_t)side * 3))) rc = embr_error(EMBR_ENOMEM, "out of memory");
  if (!rc) {
    view.width = view.height = side, view.channels = 3;
    for (int c = 0; c < 3; c++)
      for (int64_t i = 0; i < (int64_t)side * side; i++)
        view.px[i * 3 + c] = (uint8_t)lrintf(fminf(fmaxf(x[c * (int64_t)side * side + i], 0.0f), 1.0f) * 255.0f);
    rc = embr_attention_picture(&view, maps, masks, H, g, &pic);
  }
  if (!rc) rc = embr_image_write(path, &pic);
  *kept = 0, *grid = g;
  for (int64_t i = 0; !rc && i < G; i++) *kept += masks[H * G + i];
  embr_image_free(&view), embr_image_free(&pic);
  free(x), free(maps), free(masks);
  return rc;
}

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int dino_attention(int argc, char **argv) {
  cli_model_src model = {NULL, NULL, 112};
  const char *image = NULL, *out = NULL;
  int64_t side = 0, threads = 0;
  double mass = 0.6;
  int quiet = 0;
  cli_opt opts[] = {
      CLI_MODEL_OPTS(model, "a ViT model (DINO, DINOv2: an embr model file or a converted state dict)"),
      OPT_STR_REQ("--image", NULL, &image, "IMG|DIR", "one image, or a folder of images (flat or class sub-folders)"),
      OPT_STR_REQ("--out", "-o|--output", &out, "OUT.png|OUTDIR", "the picture (one image), or a folder for one picture per image"),
      OPT_INT("--size", NULL, &side, "PX", "the side the image is resized and cropped to (a multiple of the patch)", "the model's input", 0, 8192),
      OPT_DBL("--mass", NULL, &mass, "F", "share of the attention the mask keeps", "0.6", 1e-6, 1),
      OPT_THREADS(&threads),
      OPT_QUIET(&quiet),
  };
  cli_command cmd = {"Draw a ViT's last-layer class-token attention per head over images, with the 60 % mask.",
                     "embr dino attention --model M.safetensors --image IMG|DIR -o OUT.png|OUTDIR [--size PX] [--mass 0.6]",
                     "Each picture shows the image as the network sees it (DINO's resize and centre crop),\n"
                     "then each head's attention of the class token to the patches (nearest per patch, scaled to\n"
                     "its maximum), then the image with what the mask leaves out darkened: the patches holding\n"
                     "--mass of the heads' mean attention (DINO's visualize_attention threshold).\n"
                     "With a folder, OUTDIR (created if missing) gets <image name>.png for each image ('/' as\n"
                     "'_'); every image is decoded before any picture is written. stdout: one line per image,\n"
                     "name, picture and the patches the mask keeps.",
                     opts, CLI_NOPTS(opts), 0, 0, NULL, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  int dir = is_dir(image);
  if (!dir) {
    const char *dot = strrchr(out, '.');
    if (!dot || strcmp(dot, ".png")) return cli_usage_error("with one --image, -o must name a .png file");
    cli_file files[] = {{"--out", out, 1}, {"--image", image, 0}, {"--model", model.path, 0}};
    int frc = cli_check_files(files, 3);
    if (frc) return frc;
  } else if (access(out, F_OK) == 0 && !is_dir(out)) {
    return cli_fail(embr_error(EMBR_EIO, "%s: exists and is not a folder", out));
  }
  embr_model *m = NULL;
  int rc = cli_load_model(&model, &m);
  if (rc) return rc;
  embr_model_set_threads(m, (int)threads);
  int s = (int)(side ? side : embr_model_input(m).height);
  if ((rc = embr_model_attention_size(m, s, NULL, NULL))) {
    rc = embr_error(rc, "%s: %s", model.path, embr_last_error());
    embr_model_free(m);
    return side ? cli_usage_error("%s", embr_last_error()) : cli_fail(rc);
  }
  embr_dataset *ds = NULL;
  rc = dir ? embr_dataset_open(image, &ds) : embr_dataset_open_paths(NULL, &image, 1, image, &ds);
  int64_t n = rc ? 0 : embr_dataset_size(ds);
  embr_image im = {0};
  for (int64_t i = 0; !rc && dir && i < n; i++) { /* every image decodes before anything is written */
    rc = embr_dataset_image(ds, i, &im);
    embr_image_free(&im);
  }
  if (!rc && dir && !is_dir(out) && mkdir(out, 0777) != 0)
    rc = embr_error(EMBR_EIO, "%s: cannot create the folder (%s)", out, strerror(errno));
  for (int64_t i = 0; !rc && i < n; i++) {
    char *path = dir ? out_name(out, embr_dataset_item_name(ds, i)) : NULL;
    int kept = 0, g = 0;
    if (dir && !path) rc = embr_error(EMBR_ENOMEM, "out of memory");
    if (!rc) rc = embr_dataset_image(ds, i, &im);
    if (!rc) rc = one(m, &im, s, mass, dir ? path : out, &kept, &g);
    if (!rc) printf("%s\t%s\t%d of %d patches\n", embr_dataset_item_name(ds, i), dir ? path : out, kept, g * g);
    embr_image_free(&im);
    free(path);
  }
  if (!rc && !quiet) fprintf(stderr, "embr %s: %lld picture%s\n", cli_name(), (long long)n, n == 1 ? "" : "s");
  embr_dataset_free(ds);
  embr_model_free(m);
  return rc ? cli_fail(rc) : EXIT_OK;
}

static const cli_entry dino_commands[] = {
    {"attention", "a ViT's class-token attention per head drawn over images, with the 60 % mask", dino_attention, NULL, 0, NULL},
};
const cli_entry cli_dino = {"dino", "DINO ViT models: attention maps", NULL, CLI_CHILDREN(dino_commands),
                            "Commands for DINO's Vision Transformers. Embedding images is `embr embed` (--pool cls+avg\n"
                            "for class + mean patch token); see docs/dino.md."};

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

/* The network's input at `side` px, and the same geometry unnormalised (the picture's view);
 * `whole`: the whole image resized to side x side (visualize_attention.py's resize), no crop. */
static embr_image_spec spec_at(const embr_model *m, int side, int raw, int whole) {
  embr_image_spec s = embr_model_input(m);
  if (whole) s.crop = EMBR_CROP_NONE, s.short_side = 0;
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

/* The mean map's mask (the last of `masks`, g x g) as a side x side grey PNG: 255 kept, 0 not,
 * each patch drawn nearest (side is a multiple of g), in the view's geometry. */
static int write_mask(const char *path, const uint8_t *mask, int g, int side) {
  embr_image im = {0};
  if (!(im.px = embr_alloc((size_t)side * (size_t)side))) return embr_error(EMBR_ENOMEM, "out of memory");
  im.width = im.height = side, im.channels = 1;
  int p = side / g;
  for (int y = 0; y < side; y++)
    for (int x = 0; x < side; x++) im.px[(size_t)y * side + x] = mask[(y / p) * g + x / p] ? 255 : 0;
  int rc = embr_image_write(path, &im);
  embr_image_free(&im);
  return rc;
}

/* One image: tensor, maps and masks, the picture written to `path` (and the mean map's mask to
 * `mask_path` unless NULL); *kept counts the patches of the mean map's mask. */
static int one(embr_model *m, const embr_image *im, int side, int whole, double mass, const char *path,
               const char *mask_path, int mask_head, int *kept, int *grid) {
  int H, g, rc = embr_model_attention_size(m, side, &H, &g);
  if (rc) return rc;
  int64_t G = (int64_t)g * g;
  float *x = malloc(sizeof(float) * 3 * (size_t)side * (size_t)side), *maps = malloc(sizeof(float) * (size_t)(H * G));
  uint8_t *masks = malloc((size_t)((H + 1) * G));
  embr_image view = {0}, pic = {0};
  if (!x || !maps || !masks) rc = embr_error(EMBR_ENOMEM, "out of memory");
  embr_image_spec s = spec_at(m, side, 0, whole), r = spec_at(m, side, 1, whole);
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
  if (!rc && mask_path) rc = write_mask(mask_path, masks + (int64_t)(mask_head ? mask_head - 1 : H) * G, g, side);
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
  const char *image = NULL, *out = NULL, *masks_out = NULL;
  int64_t side = 0, threads = 0, mask_head = 0;
  double mass = 0.6;
  int quiet = 0, whole = 0;
  cli_opt opts[] = {
      CLI_MODEL_OPTS(model, "a ViT model (DINO, DINOv2: an embr model file or a converted state dict)"),
      OPT_STR_REQ("--image", NULL, &image, "IMG|DIR", "one image, or a folder of images (flat or class sub-folders)"),
      OPT_STR_REQ("--out", "-o|--output", &out, "OUT.png|OUTDIR", "the picture (one image; .png or .ppm), or a folder for one picture per image"),
      OPT_INT("--size", NULL, &side, "PX", "the side the image is resized and cropped to (a multiple of the patch)", "the model's input", 0, 8192),
      OPT_DBL("--mass", NULL, &mass, "F", "share of the attention the mask keeps", "0.6", 1e-6, 1),
      OPT_STR("--masks-out", NULL, &masks_out, "MASK.png|MASKDIR",
              "also write the mean map's mask as a grey PNG (255 kept; one image: .png or .pgm), PX x PX; a folder with a folder --image", "none"),
      OPT_INT("--mask-head", NULL, &mask_head, "N", "--masks-out: head N's mask (1 = first) instead of the mean map's", "0 (mean)", 0, 1024),
      OPT_FLAG("--whole", NULL, &whole, "resize the whole image to PX x PX (no centre crop; aspect not kept)"),
      OPT_THREADS(&threads),
      OPT_QUIET(&quiet),
  };
  cli_command cmd = {"Draw a ViT's last-layer class-token attention per head over images, with the 60 % mask.",
                     "embr dino attention --model M.safetensors --image IMG|DIR -o OUT.png|OUTDIR [--size PX] [--mass 0.6]\n"
                     "       [--masks-out MASK.png|MASKDIR] [--whole]",
                     "Each picture shows the image as the network sees it (DINO's resize and centre crop),\n"
                     "then each head's attention of the class token to the patches (nearest per patch, scaled to\n"
                     "its maximum), then the image with what the mask leaves out darkened: the patches holding\n"
                     "--mass of the heads' mean attention (DINO's visualize_attention threshold).\n"
                     "With a folder, OUTDIR (created if missing) gets <image name>.png for each image ('/' as\n"
                     "'_'); every image is decoded before any picture is written. stdout: one line per image,\n"
                     "name, picture and the patches the mask keeps.\n"
                     "--masks-out writes that mask alone, PX x PX, one grey PNG per picture (named as the pictures\n"
                     "in a folder MASKDIR): 255 on the kept patches, 0 elsewhere, in the geometry the network saw\n"
                     "(the centre crop; with --whole, the whole image: what scripts/loc_composites.py score reads);\n"
                     "--mask-head N writes head N's own mask instead.",
                     opts, CLI_NOPTS(opts), 0, 0, NULL, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  int dir = is_dir(image);
  if (!dir) {
    const char *dot = strrchr(out, '.');
    if (!dot || (strcmp(dot, ".png") && strcmp(dot, ".ppm")))
      return cli_usage_error("with one --image, -o must name a .png (or .ppm) file");
    const char *mdot = masks_out ? strrchr(masks_out, '.') : NULL;
    if (masks_out && (!mdot || (strcmp(mdot, ".png") && strcmp(mdot, ".pgm"))))
      return cli_usage_error("with one --image, --masks-out must name a .png (or .pgm) file");
    cli_file files[] = {{"--out", out, 1}, {"--image", image, 0}, {"--model", model.path, 0}, {"--masks-out", masks_out, 1}};
    int frc = cli_check_files(files, 4);
    if (frc) return frc;
  } else {
    if (access(out, F_OK) == 0 && !is_dir(out)) return cli_fail(embr_error(EMBR_EIO, "%s: exists and is not a folder", out));
    if (masks_out && access(masks_out, F_OK) == 0 && !is_dir(masks_out))
      return cli_fail(embr_error(EMBR_EIO, "%s: exists and is not a folder", masks_out));
    if (masks_out && !strcmp(masks_out, out)) return cli_usage_error("--masks-out and -o name the same folder");
  }
  embr_model *m = NULL;
  int rc = cli_load_model(&model, &m);
  if (rc) return rc;
  embr_model_set_threads(m, (int)threads);
  int s = (int)(side ? side : embr_model_input(m).height);
  int heads = 0;
  if ((rc = embr_model_attention_size(m, s, &heads, NULL))) {
    rc = embr_error(rc, "%s: %s", model.path, embr_last_error());
    embr_model_free(m);
    return side ? cli_usage_error("%s", embr_last_error()) : cli_fail(rc);
  }
  if (mask_head > heads) {
    embr_model_free(m);
    return cli_usage_error("--mask-head %lld: the model has %d head%s", (long long)mask_head, heads, heads == 1 ? "" : "s");
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
  if (!rc && dir && masks_out && !is_dir(masks_out) && mkdir(masks_out, 0777) != 0)
    rc = embr_error(EMBR_EIO, "%s: cannot create the folder (%s)", masks_out, strerror(errno));
  for (int64_t i = 0; !rc && i < n; i++) {
    char *path = dir ? out_name(out, embr_dataset_item_name(ds, i)) : NULL;
    char *mpath = dir && masks_out ? out_name(masks_out, embr_dataset_item_name(ds, i)) : NULL;
    int kept = 0, g = 0;
    if (dir && (!path || (masks_out && !mpath))) rc = embr_error(EMBR_ENOMEM, "out of memory");
    if (!rc) rc = embr_dataset_image(ds, i, &im);
    if (!rc) rc = one(m, &im, s, whole, mass, dir ? path : out, dir ? mpath : masks_out, (int)mask_head, &kept, &g);
    if (rc && !dir && masks_out) unlink(out); /* the picture without its mask: nothing partial */
    if (!rc) printf("%s\t%s\t%d of %d patches\n", embr_dataset_item_name(ds, i), dir ? path : out, kept, g * g);
    embr_image_free(&im);
    free(path), free(mpath);
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

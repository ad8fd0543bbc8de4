/* Images and image datasets: decode PNG / JPEG / PGM / PPM, resize, crop, flip, normalise into
 * float tensors, datasets from a folder of class sub-folders, a flat folder of images, a list
 * file of image paths or MNIST idx files, and a loader that prepares the next batch on another
 * thread.
 *
 * Pixels of an embr_image are 8-bit, row-major, channels interleaved (HWC), 1 (grey) or 3 (RGB)
 * channels. Decoders expand palettes and reduce 16-bit samples to 8 bits; an alpha channel (PNG
 * RGBA, grey + alpha, or a tRNS chunk) is kept apart in `alpha`, the colour in `px` being the
 * stored colour as is (what Pillow's convert("RGB") / convert("L") gives). A spec with
 * EMBR_ALPHA_WHITE composites on white when converting to a tensor.
 * Tensors are float32 CHW (one image) or NCHW (a batch).
 *
 * Errors: every function returns an embr status; the detail (file name, what is wrong) is in
 * embr_last_error(). Readers treat files as hostile (truncated data, absurd sizes: at most
 * EMBR_IMAGE_MAX_SIDE pixels a side).
 *
 * Ownership: an embr_image filled by decode, read, resize or embr_dataset_image is overwritten (not
 * freed first) and owned by the caller, who frees it with embr_image_free. Thread-safety: the
 * image functions keep no state; calls on different images run concurrently. */
#ifndef EMBR_IMAGE_H
#define EMBR_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EMBR_IMAGE_MAX_SIDE 16384

typedef struct embr_image {
  int width, height, channels; /* channels: 1 or 3 */
  uint8_t *px;                 /* width*height*channels bytes, HWC; free with embr_image_free */
  /* width*height bytes of opacity (255 opaque), or NULL: no alpha (every pixel opaque). Set by the
   * decoders for PNGs with alpha or tRNS; kept by nothing else (resize, orient and write ignore it
   * and give images without one). Allocated with embr_alloc, freed by embr_image_free. */
  uint8_t *alpha;
} embr_image;

/* Decodes a PNG, JPEG, PGM (P2/P5) or PPM (P3/P6) image, chosen by its first bytes.
 * `name` is used in messages only (NULL: "image"). Malformed or truncated data, and sizes the
 * data cannot hold, give EMBR_EFORMAT (a JPEG lacking only its end marker is accepted); so do
 * JPEGs with damaged entropy-coded data (libjpeg's "Corrupt JPEG data" warnings: the image would
 * be partly grey) and progressive JPEGs whose scans would visit every block more than 64 times
 * on average. JPEGs are turned upright by their EXIF orientation, as Pillow's
 * ImageOps.exif_transpose does; CMYK and YCCK JPEGs become RGB as Pillow's convert("RGB") makes
 * them (Adobe's inverted CMYK). PNG text, ICC and palette-suggestion chunks are skipped unread,
 * and no allocation follows a chunk's claimed length. PBM (P1/P4) and PAM (P7) give
 * EMBR_EUNSUPPORTED. On failure *out is zeroed. */
EMBR_API embr_status embr_image_decode(const unsigned char *buf, size_t len, const char *name, embr_image *out);
/* The same from a file: EMBR_ENOTFOUND when missing, EMBR_EIO when unreadable or a directory. */
EMBR_API embr_status embr_image_read(const char *path, embr_image *out);
/* Writes 8-bit PNG (1 or 3 channels) or, when the path ends in .pgm/.ppm/.pnm (any case), binary
 * PNM (.pgm needs 1 channel, .ppm 3: EMBR_EINVAL otherwise). .jpg/.jpeg give EMBR_EUNSUPPORTED.
 * The file is written to a temporary name and renamed: no partial file on failure (EMBR_EIO). */
EMBR_API embr_status embr_image_write(const char *path, const embr_image *im);
EMBR_API void embr_image_free(embr_image *im); /* frees px and alpha, zeroes the struct; NULL ok */

typedef enum embr_resize { EMBR_RESIZE_BILINEAR = 0, EMBR_RESIZE_BICUBIC = 1 } embr_resize;

/* How an image becomes the spec's height x width. */
typedef enum embr_crop {
  EMBR_CROP_NONE = 0,  /* the whole image resized to width x height (aspect ratio not kept) */
  /* torchvision's Resize(s) + CenterCrop((height, width)) on a PIL image: the short side resized
   * to s = short_side (0: the larger of height and width), the long side to
   * int(s * long / short) (truncated), both with `resize` (an image already of that size is
   * left as is); then the window at top = int(round((h' - height) / 2.0)), likewise left, with
   * Python's round (halves to even) taken. */
  EMBR_CROP_CENTER = 1
} embr_crop;

/* What becomes of an image's alpha channel (embr_image.alpha) in embr_image_to_tensor. */
typedef enum embr_alpha {
  EMBR_ALPHA_IGNORE = 0, /* the stored colour, as Pillow's convert("RGB") and torchvision's loader */
  EMBR_ALPHA_WHITE = 1   /* composited on white first: v' = (v a + 255 (255 - a)) / 255, rounded as
                          * Pillow's paste with a mask */
} embr_alpha;

/* Normalisation and geometry of a model's input: pixels are scaled to [0,1], then
 * (v - mean[c]) / std[c]. Fields after `resize` came later: a zeroed tail (memset, or a spec from
 * embr_image_spec_default) keeps the earlier behaviour (no crop, alpha ignored). */
typedef struct embr_image_spec {
  int channels;          /* 1 or 3: grey is replicated to 3, RGB reduced to grey by luma */
  int height, width;     /* output size */
  float mean[3], std[3]; /* per output channel */
  embr_resize resize;
  embr_crop crop;
  int short_side;        /* EMBR_CROP_CENTER: 0, or the short side's size, >= height and width */
  embr_alpha alpha;
} embr_image_spec;
EMBR_API embr_image_spec embr_image_spec_default(void); /* 3 x 112 x 112, mean 0.5, std 0.5, bilinear */
/* CLIP's preprocessing (OpenAI CLIP / open_clip at `size`, e.g. 224 or 336): 3 x size x size,
 * bicubic resize of the short side to size, centre crop, mean (0.48145466, 0.4578275,
 * 0.40821073), std (0.26862954, 0.26130258, 0.27577711), alpha composited on white (the
 * reference pipelines' convert("RGB") drops alpha instead: set alpha = EMBR_ALPHA_IGNORE for
 * their exact input on transparent images). size outside 1..EMBR_IMAGE_MAX_SIDE gives a spec
 * that embr_image_to_tensor refuses. */
EMBR_API embr_image_spec embr_image_spec_clip(int size);

/* Converts an image of any size and channel count into one CHW float tensor of spec's shape
 * (dst holds channels*height*width floats), in this order: alpha (spec->alpha; images without
 * alpha are opaque), resize to 8 bits and crop (spec->crop), channel conversion (luma = 0.299 R +
 * 0.587 G + 0.114 B), normalisation. EMBR_EINVAL for a bad spec (channels, size, resize, crop or
 * alpha mode, short_side, a zero or non-finite std) or image; EMBR_ENOMEM. */
EMBR_API embr_status embr_image_to_tensor(const embr_image *im, const embr_image_spec *spec, float *dst);

/* Resizes an 8-bit image (1 or 3 channels) to w x h; *out is allocated. As Pillow (and torchvision
 * on PIL images): pixel centres at i + 0.5 (align_corners = false), triangle (bilinear) or Keys
 * cubic with a = -0.5 (bicubic) kernels, widened by the scale factor when shrinking (antialiased),
 * weights renormalised at the borders; the horizontal pass first, rounded and clipped to 8 bits
 * as Pillow's intermediate image is (results agree with Pillow's to within a level, mostly
 * exactly). Enlarging is plain bilinear / bicubic interpolation with edge clamping; the same size
 * copies the pixels. w, h in 1 .. EMBR_IMAGE_MAX_SIDE, else
 * EMBR_EINVAL; EMBR_ENOMEM. */
EMBR_API embr_status embr_image_resize(const embr_image *in, int w, int h, embr_resize mode, embr_image *out);

/* Training augmentation on one CHW float tensor in place: with `pad` > 0, pads by `pad` pixels
 * (zeros) on every side and takes a random crop of the original size; with `flip`, mirrors left
 * to right with probability 1/2. Draws, in this order: the crop's y then x offset, each
 * embr_rng_below(rng, 2*pad+1) (only when pad > 0), then one embr_rng_next whose top bit set means
 * mirror (only when flip). NULL chw or rng: nothing happens. */
EMBR_API void embr_image_augment(float *chw, int channels, int height, int width, int pad, int flip, embr_rng *rng);

/* ---- multi-crop augmentation (DINO) --------------------------------------------------------------
 * DINO's DataAugmentationDINO on one image: n_global "global" crops and n_local "local" crops, each
 * a RandomResizedCrop (torchvision's sampling: 10 tries of an area fraction uniform in scale[] and a
 * log-uniform aspect ratio in ratio[], then the centre-crop fallback; bicubic resize to the square
 * side) followed by, in this order: horizontal flip (flip_p); colour jitter (jitter_p: brightness,
 * contrast, saturation, hue factors drawn as torchvision's ColorJitter and applied in a random
 * order); grayscale (grayscale_p); Gaussian blur (sigma uniform in blur_sigma[], PIL's
 * ImageFilter.GaussianBlur); solarisation (pixels >= solarize_threshold inverted); then to float
 * and (v / 255 - mean[c]) / std[c]. Every operation works on 8-bit pixels and matches
 * torchvision / Pillow's functional form for the same parameters (tests/test_multicrop.c); the
 * random draws are embr_rng's, not torch's.
 * Per-view probabilities: the first global crop uses blur_p[0] / solarize_p[0], the second and any
 * further global crop blur_p[1] / solarize_p[1], local crops blur_p[2] / solarize_p[2] (DINO: blur
 * 1.0, 0.1, 0.5; solarise 0, 0.2, 0).
 * Channels: a grey image stays grey through the pipeline (saturation, hue and grayscale leave grey
 * unchanged, as in Pillow) and is replicated when channels is 3; an RGB image is made grey by luma
 * (as embr_image_to_tensor) first when channels is 1. Alpha as embr_image_to_tensor's `alpha`. */
typedef struct embr_multicrop_params {
  int n_global, n_local;                 /* DINO: 2 global crops, n_local local crops (0 allowed) */
  int global_size, local_size;           /* square output sides, e.g. 224 / 96; vit-tiny: 28 / 12 */
  float global_scale[2], local_scale[2]; /* RandomResizedCrop area ranges: (0.4, 1) and (0.05, 0.4) */
  int channels;                          /* 1 or 3 output channels (grey replicated as embr_image_spec does) */
  float mean[3], std[3];                 /* normalisation after augmentation (ImageNet's by default) */
  float ratio[2];                        /* RandomResizedCrop aspect (w/h) range: (3/4, 4/3) */
  embr_resize resize;                    /* crop resize kernel: EMBR_RESIZE_BICUBIC */
  embr_alpha alpha;                      /* EMBR_ALPHA_WHITE (DINO's loader drops alpha: IGNORE for that) */
  float flip_p;                          /* 0.5 */
  float jitter_p;                        /* 0.8: probability of the whole ColorJitter */
  /* ColorJitter strengths: brightness / contrast / saturation factors uniform in [max(0, 1-s), 1+s],
   * hue shift uniform in [-hue, hue] (hue <= 0.5); 0 leaves that adjustment out (no draw). */
  float brightness, contrast, saturation, hue; /* 0.4, 0.4, 0.2, 0.1 */
  float grayscale_p;                     /* 0.2 */
  float blur_p[3];                       /* first global, other globals, locals: 1.0, 0.1, 0.5 */
  float blur_sigma[2];                   /* 0.1, 2.0 */
  float solarize_p[3];                   /* first global, other globals, locals: 0, 0.2, 0 */
  int solarize_threshold;                /* 128 */
} embr_multicrop_params;
/* DINO's values (above) for those sizes: 2 global crops, 3 channels, ImageNet mean (0.485, 0.456,
 * 0.406) and std (0.229, 0.224, 0.225). */
EMBR_API embr_multicrop_params embr_multicrop_params_dino(int global_size, int local_size, int n_local);
/* Checks p (n_global 1..64, n_local 0..1024, sizes 1..EMBR_IMAGE_MAX_SIDE (local_size only with
 * local crops), 0 < scale[0] <= scale[1]
 * <= 1, 0 < ratio[0] <= ratio[1], channels, std != 0, probabilities in [0, 1], strengths >= 0, hue
 * <= 0.5, 0 < sigma[0] <= sigma[1], threshold 0..256); EMBR_EINVAL with a message naming the field. */
EMBR_API embr_status embr_multicrop_params_check(const embr_multicrop_params *p);
/* One image -> its crops: global gets n_global*C*G*G floats (crop after crop, CHW each), local
 * n_local*C*L*L (local may be NULL when n_local is 0). Deterministic given rng's state; thread-safe
 * for different rng's. EMBR_EINVAL for bad params or image; EMBR_ENOMEM. */
EMBR_API embr_status embr_multicrop(const embr_image *im, const embr_multicrop_params *p, embr_rng *rng,
                                    float *global, float *local);

/* ---- datasets ------------------------------------------------------------------------------
 * A dataset is read-only once opened: any number of threads may query it and decode items. */

typedef struct embr_dataset embr_dataset;

/* A folder with one sub-folder per class (class names = sub-folder names in natural order: runs of
 * digits compare as numbers, so s2 comes before s10 and class 30 of ORL's s1..s40 is s31; names
 * equal but for leading zeros go in byte order). The files directly inside each, in the same
 * order, with extensions png, jpg, jpeg, pgm, ppm, pnm, any case; hidden entries and other files
 * ignored. Images are decoded when asked for.
 * Errors: EMBR_ENOTFOUND missing, EMBR_EINVAL not a folder, EMBR_EFORMAT no class folders or a
 * class folder with no images (the message names it). */
EMBR_API embr_status embr_dataset_open_folder(const char *dir, embr_dataset **out);
/* A flat folder: the image files directly inside `dir` (same extensions, hidden entries and other
 * files ignored, sub-folders not entered), in the same natural order. One class, named `dir` as
 * given, every label 0; item names are the file names. Errors: EMBR_ENOTFOUND missing,
 * EMBR_EINVAL not a folder, EMBR_EFORMAT no images. */
EMBR_API embr_status embr_dataset_open_flat(const char *dir, embr_dataset **out);
/* A list file: one image path per line, items in the file's order (repeats kept). A relative path
 * is relative to the folder holding the list file (so a list travels with its images), an
 * absolute one is used as is; "-" reads standard input, its relative paths relative to the
 * current directory. Item names are the paths as written; one class, named `path` as given,
 * every label 0. Read with embr_lines_read (CRLF endings accepted, at most EMBR_LINES_MAX_BYTES);
 * every listed file is checked when opened: it must exist, be a regular file and start like a
 * PNG, JPEG, PGM or PPM image. Errors (one line naming the list and the line, from 1):
 * EMBR_ENOTFOUND (list or image missing), EMBR_EIO (unreadable), EMBR_EINVAL (an entry is not a
 * regular file), EMBR_EFORMAT (no lines, an empty line, a NUL byte, an entry not an image). */
EMBR_API embr_status embr_dataset_open_list(const char *path, embr_dataset **out);
/* Any of the three by what `path` is: "-" or a file other than a folder: a list file; a folder
 * with class sub-folders: embr_dataset_open_folder (images beside the class folders ignored); a
 * folder without class sub-folders: embr_dataset_open_flat. The errors of the opener chosen;
 * EMBR_ENOTFOUND when the path is missing. */
EMBR_API embr_status embr_dataset_open(const char *path, embr_dataset **out);
/* Images named in memory: items are paths[0..n) (n >= 1), in that order, relative to `root` when
 * root is not NULL and a path is not absolute; item names are the paths as given; one class, named
 * `name` (for messages, e.g. the file the paths came from). The files are not opened here: a
 * missing or undecodable one fails when its image is read, naming its path. For embedding the
 * images of a captions file (embr_captions: root NULL, its image_path; or root = the data folder,
 * its image). Errors: EMBR_EINVAL (n < 1, a NULL or empty path), EMBR_ENOMEM. */
EMBR_API embr_status embr_dataset_open_paths(const char *root, const char *const *paths, int64_t n, const char *name,
                                             embr_dataset **out);
/* MNIST idx files: `path` is a folder holding {train|t10k}-images-idx3-ubyte[.gz] and the matching
 * labels file (t10k preferred when only it exists; train preferred otherwise), or the images file
 * itself (the labels file named alike with "labels-idx1", with or without .gz). Gzip read through
 * zlib. Magic numbers, sizes, counts and the exact data length are checked (EMBR_EFORMAT). All
 * pixels are kept in memory; classes = largest label + 1, named "0", "1", ... */
EMBR_API embr_status embr_dataset_open_mnist(const char *path, embr_dataset **out);
/* *out of every opener is freed with embr_dataset_free (NULL is a no-op). */
EMBR_API void embr_dataset_free(embr_dataset *ds);

/* Accessors (indices not checked: 0 <= i < size, 0 <= c < classes). Strings belong to the
 * dataset and live as long as it. */
EMBR_API int64_t embr_dataset_size(const embr_dataset *ds);
EMBR_API int embr_dataset_classes(const embr_dataset *ds);
EMBR_API const char *embr_dataset_class_name(const embr_dataset *ds, int c);
EMBR_API int embr_dataset_label(const embr_dataset *ds, int64_t i); /* class of item i */
/* A name for item i: the file path relative to the folder ("s1/3.pgm", "3.jpg" in a flat folder),
 * the path as the list file writes it, or "mnist-<i>". */
EMBR_API const char *embr_dataset_item_name(const embr_dataset *ds, int64_t i);
/* Decodes item i into *out (free with embr_image_free); the file's errors as embr_image_read,
 * EMBR_EINVAL for i out of range. */
EMBR_API embr_status embr_dataset_image(const embr_dataset *ds, int64_t i, embr_image *out);

/* ---- batch loader ---------------------------------------------------------------------------- */

typedef struct embr_loader_params {
  embr_image_spec spec;
  int batch;         /* images per batch */
  int shuffle;       /* new random order every epoch */
  int drop_last;     /* skip a last, short batch */
  int pad, flip;     /* augmentation (embr_image_augment); 0 for evaluation */
  int cache;         /* keep every converted tensor in memory after its first load */
  uint64_t seed;
  const int64_t *subset; /* NULL: all items; else these item indices (n_subset of them) */
  int64_t n_subset;
  /* NULL: the ordinary loader. Else multi-crop batches (the params are copied at create; spec, pad,
   * flip and cache are then unused): use embr_loader_next_multicrop instead of embr_loader_next. */
  const embr_multicrop_params *multicrop;
} embr_loader_params;
EMBR_API embr_loader_params embr_loader_params_default(void); /* batch 64, shuffle, no aug, no cache */

typedef struct embr_loader embr_loader;
/* The loader keeps a pointer to ds (which must outlive it; the subset array is copied) and
 * prepares batches on one background thread, one batch ahead. Use one loader from one thread.
 * Batches depend only on (seed, epoch, item), never on timing or on `cache`: the order of epoch e
 * (from 0) comes from embr_rng_split(seed, 2e), each item's augmentation from its own stream of a
 * per-epoch seed; the cache keeps tensors before augmentation. EMBR_EINVAL for a bad spec, batch
 * < 1, subset indices out of range, or drop_last with fewer items than a batch; EMBR_ENOMEM.
 * *out is freed with embr_loader_free (NULL is a no-op), which stops the thread. */
EMBR_API embr_status embr_loader_create(const embr_dataset *ds, const embr_loader_params *p, embr_loader **out);
/* The next batch of the current epoch: *x points to count*C*H*W floats (NCHW), *labels to count
 * labels, *items to count item indices; valid until the next call. Returns 0 with *count = 0 at
 * the end of the epoch; the following call starts the next epoch. A decode error is returned from
 * the call whose batch held the bad item (message names the file; *count = 0, pointers NULL);
 * the call after it goes on with the next batch. Any output pointer may be NULL. */
EMBR_API embr_status embr_loader_next(embr_loader *ld, const float **x, const int32_t **labels, const int64_t **items,
                                      int *count);
/* With params.multicrop set: *global holds n_global*count*C*G*G floats, VIEW-MAJOR (all images'
 * view 0, then all images' view 1: the layout DINO's torch.cat(crops) gives), *local
 * n_local*count*C*L*L likewise (NULL when n_local is 0); labels, items, count, end of epoch and
 * errors as embr_loader_next. Item i of epoch e is embr_multicrop with the rng
 * embr_rng_split(rng, a, i), a = embr_rng_next of embr_rng_split(seed, 2e + 1), so batches depend
 * only on (seed, epoch, item), never on timing. The worker holds one decoded image and one item's
 * views at a time; the two slots hold (n_global G^2 + n_local L^2) C batch floats each.
 * EMBR_EINVAL on a loader made without multicrop (and embr_loader_next on one made with it). */
EMBR_API embr_status embr_loader_next_multicrop(embr_loader *ld, const float **global, const float **local,
                                                const int32_t **labels, const int64_t **items, int *count);
EMBR_API int64_t embr_loader_batches_per_epoch(const embr_loader *ld); /* with drop_last applied */
EMBR_API void embr_loader_free(embr_loader *ld);

#ifdef __cplusplus
}
#endif
#endif

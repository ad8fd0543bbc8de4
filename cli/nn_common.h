/* Pieces shared by the neural-network commands (train, embed, eval): opening an image dataset
 * from a --data spec, selecting classes and images, embedding a dataset with a model. */
#ifndef EMBR_CLI_NN_COMMON_H
#define EMBR_CLI_NN_COMMON_H

#include "common.h"

/* "mnist:PATH" or a folder of class sub-folders. Prints the problem and returns EXIT_ERR. */
int cli_open_dataset(const char *spec, embr_dataset **out);
/* The same for commands that need no classes (embed): also a flat folder of images or a list file
 * (embr_dataset_open). */
int cli_open_images(const char *spec, embr_dataset **out);

/* Items of classes [c0, c1) (in sorted class order) whose index within their class is in
 * [i0, i1). Ranges are "A:B" with either end optional ("30:", ":6"); NULL means all. Prints a
 * usage problem and returns EXIT_USAGE, or EXIT_ERR when nothing is selected. *subset is
 * malloc'd. */
int cli_select(const embr_dataset *ds, const char *classes, const char *per_class, int64_t **subset,
               int64_t *n);

/* Where a model comes from: an embr model file, or (with arch) plain PyTorch weights of that
 * network with `side` x `side` inputs. CLI_MODEL_OPTS(o, "what --model is") declares the flags. */
typedef struct cli_model_src {
  const char *path, *arch;
  int64_t side;
} cli_model_src;
#define CLI_MODEL_OPTS(o, help)                                                                                     \
  OPT_STR_REQ("--model", NULL, &(o).path, "FILE", help),                                                         \
      OPT_STR("--arch", NULL, &(o).arch, "NAME",                                                                  \
              "--model is plain PyTorch weights (no embr metadata) of resnet18, resnet34 or mobilefacenet, or a " \
              "ViT state dict (vit: DINO / DINOv2, sizes from the file)",                                         \
              "from the file"),                                                                                   \
      OPT_INT("--input-size", NULL, &(o).side, "PX", "with --arch: the network's input side in pixels", "112", 8, 4096)
/* Loads the model; prints the problem and returns EXIT_ERR (EXIT_USAGE for an unknown --arch). */
int cli_load_model(const cli_model_src *src, embr_model **out);

/* Embeds the selected items with the model (inference, no augmentation), rows L2-normalised
 * unless raw. *out (n x dim) is malloc'd; labels (may be NULL) receives each row's class. */
int cli_embed_items(embr_model *m, const embr_dataset *ds, const int64_t *subset, int64_t n,
                    int batch, int raw, int quiet, float **out, int32_t *labels);

/* ---- texts (CLIP's text tower) ------------------------------------------------------------------ */

/* --bpe: a tokenizer for a converted checkpoint that carries none. */
#define OPT_BPE(d)                                                                                                 \
  OPT_STR("--bpe", NULL, d, "MERGES",                                                                             \
          "CLIP's BPE merges file (bpe_simple_vocab_16e6.txt.gz) for a converted checkpoint without a tokenizer", \
          "the model's own")
/* Makes sure m (read from `path`) can embed texts: a text tower, and a tokenizer (set from `bpe`
 * when given). Prints the problem naming the file and returns EXIT_ERR. */
int cli_text_model(embr_model *m, const char *path, const char *bpe);
/* Reads a file of texts, one per line ("-" for stdin), rows in line order; an empty file and an
 * empty (all-blank) line are refused naming the file and the line. Free with embr_lines_free. */
int cli_read_texts(const char *path, embr_lines *out);
/* Embeds n texts into *out (n x dim, malloc'd), rows scaled to unit length unless raw; a note on
 * stderr counts the texts cut at the model's context. Prints the problem and returns EXIT_ERR. */
int cli_embed_texts(embr_model *m, const char *const *texts, int64_t n, int batch, int raw, int quiet, float **out);
/* Scales the n rows of x (n x dim) to unit length (an all-zero row stays zero). */
void cli_normalize_rows(float *x, int64_t n, int64_t dim);

#endif

/* Embedding networks: ResNet (BasicBlock, 18/34 layers) and MobileFaceNet, mapping an image
 * tensor (NCHW float32, normalised as the model's input spec says) to an embedding vector.
 *
 * A model file is safetensors: the network's weights under PyTorch-style names, an optional
 * training head ("head.weight"), and metadata (arch, width, embedding_dim, input geometry and
 * normalisation, class names) so that `embr embed` needs nothing but the file.
 *
 * Thread-safety: one model may serve one call at a time (embed uses an internal work arena);
 * different models may be used concurrently. Inputs are only read; outputs are caller-allocated. */
#ifndef EMBR_MODEL_H
#define EMBR_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"
#include "image.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The sizes of a transformer tower (CLIP's image and text towers). */
typedef struct embr_transformer_params {
  int width, layers, heads;
  int patch;          /* image tower: patch side in pixels (the input size is a multiple of it) */
  int context, vocab; /* text tower: tokens per text, vocabulary size */
} embr_transformer_params;

typedef enum embr_activation { EMBR_ACT_DEFAULT = 0, EMBR_ACT_GELU = 1, EMBR_ACT_QUICK_GELU = 2 } embr_activation;

typedef struct embr_model_params {
  const char *arch;   /* "resnet18", "resnet34", "mobilefacenet"; "clip" (see below) */
  int width;          /* CNNs: base channel width: 64 gives the published networks; smaller for tests */
  int embedding_dim;  /* default 128; CLIP: the joint image-text dimension */
  embr_image_spec input;
  /* CLIP ("clip", and the named configurations "clip-tiny", "clip-vit-b-32", "clip-vit-b-16",
   * which embr_model_params_arch fills in): the towers' sizes and the MLP activation
   * (EMBR_ACT_DEFAULT: QuickGELU, as OpenAI's CLIP was trained; open_clip's own models use GELU). */
  embr_transformer_params vision, text;
  embr_activation activation;
  /* DINO's Vision Transformer ("vit", and the named configurations "vit-tiny", "vit-s-16",
   * "vit-b-16", "dinov2-vit-s-14"; see docs/dino.md): its sizes in `vision` (width, layers,
   * heads, patch), embedding_dim = the width (the class token), and: */
  int pos_size;    /* pixels a side the learned positions cover (pos_size / patch of them; 0: the
                    * input size); other input sizes resample them bicubic */
  int layer_scale; /* 1: DINOv2's LayerScale (blocks.N.ls1.gamma, ls2.gamma) */
  float drop_path; /* stochastic depth in training: the last block's rate, linear from 0 over the
                    * depth as DINO's code; in [0, 1), 0: none; never at inference */
} embr_model_params;
EMBR_API embr_model_params embr_model_params_default(void); /* mobilefacenet, 64, 128, 3x112x112 */
/* The defaults of a named architecture: a CNN as embr_model_params_default with arch set; a ViT
 * configuration (vit-tiny: width 192, 6 layers, 3 heads, patch 4 at 28 px; vit-s-16: 384, 12,
 * 6, patch 16 at 224; vit-b-16: 768, 12, 12, patch 16 at 224; dinov2-vit-s-14: 384, 12, 6,
 * patch 14, LayerScale, 224 px input with positions for 518 as the released checkpoint) with
 * DINO's evaluation preprocessing (bicubic resize of the short side to 256/224 of the size,
 * centre crop, ImageNet's mean and std); a CLIP
 * configuration with every size filled in (clip-tiny: ViT width 192, 6 layers, 3 heads, patch 8
 * at 64 px; text width 256, 4 layers, 4 heads, context 32, vocabulary 49,408; joint 256.
 * clip-vit-b-32 / -b-16: OpenAI's ViT-B/32 and ViT-B/16: ViT width 768, 12 layers, 12 heads at
 * 224 px; text width 512, 12 layers, 8 heads, context 77; joint 512) and CLIP's preprocessing.
 * An unknown name gives the default with arch set (embr_model_create then refuses it). */
EMBR_API embr_model_params embr_model_params_arch(const char *arch);

typedef struct embr_model embr_model;

/* A new model with weights drawn from `seed` in *out (free with embr_model_free; NULL is a
 * no-op). EMBR_EINVAL for an unknown arch or out-of-range width, embedding_dim or input; ENOMEM. */
EMBR_API embr_status embr_model_create(const embr_model_params *p, uint64_t seed, embr_model **out);
/* Reads a model file (error: not safetensors, no embr metadata, missing or mis-shaped tensors).
 * A ViT state dict without embr metadata loads too: facebookresearch DINO / DINOv2 names
 * (cls_token, pos_embed, blocks.N.attn.qkv.weight, ...; one prefix such as "module." or
 * "teacher.backbone." is taken off when there is only one) or Hugging Face Dinov2Model names
 * (embeddings.*, encoder.layer.N.*, layernorm.*), F32/F16/BF16; its configuration is read off
 * the shapes (heads = width / 64, LayerScale when present, the input min(224, the positions'
 * size) rounded down to the patch) with DINO's evaluation preprocessing (see docs/dino.md).
 * A CLIP state dict without embr metadata, in OpenAI's or Hugging Face's names (see
 * docs/clip.md), loads too: its configuration is read off the shapes (heads = width / 64,
 * QuickGELU), and it has no tokenizer until embr_model_set_tokenizer.
 * The file is hostile until checked: every metadata number is parsed strictly and range-checked,
 * the network it describes must match the file's own tensors (names and shapes) before any
 * buffer is sized from it, and a NaN or Inf weight is EMBR_EVALUE naming the file and tensor.
 * Tensors the network does not use (integer buffers such as PyTorch's num_batches_tracked) are
 * checked for consistency and skipped. */
EMBR_API embr_status embr_model_load(const char *path, embr_model **out);
/* The same from memory (fuzzing, embedded models); `name` is used in messages. */
EMBR_API embr_status embr_model_load_mem(const void *buf, size_t len, const char *name, embr_model **out);
/* Loads a safetensors file that has no embr metadata — a PyTorch state dict saved with
 * safetensors.torch.save_file, say — into the network p describes. p->arch is required;
 * p->width, p->embedding_dim and p->input.channels, when 0, are read off the file's tensors;
 * p->input's size, normalisation and resize filter are taken as given (the file cannot tell).
 * Every tensor of the network must be present with its shape under its PyTorch name (ResNet:
 * torchvision's, plus fc to the embedding and a BatchNorm1d "features"; see docs/faces.md);
 * other tensors are ignored. The model has no training head.
 * A ViT arch ("vit" or a named one) reads the file as a ViT state dict (see embr_model_load;
 * p->vision.heads, when set, overrides width / 64): a file of another network is EMBR_EFORMAT
 * naming the file and the first tensor missing or of the wrong shape. */
EMBR_API embr_status embr_model_load_weights(const char *path, const embr_model_params *p, embr_model **out);
/* Writes weights, head and metadata atomically (EMBR_EIO on failure; no partial file). */
EMBR_API embr_status embr_model_save(const embr_model *m, const char *path);
EMBR_API void embr_model_free(embr_model *m);

/* Accessors: embedding size, the input geometry and normalisation embed expects, ... */
EMBR_API int embr_model_dim(const embr_model *m);
EMBR_API embr_image_spec embr_model_input(const embr_model *m);
EMBR_API const char *embr_model_arch(const embr_model *m); /* owned by the model */
EMBR_API int64_t embr_model_parameters(const embr_model *m); /* trained parameters */

/* What a ViT model's embedding is: EMBR_POOL_CLS the class token after the final norm (its
 * width), EMBR_POOL_CLS_AVG that token followed by the mean of the patch tokens (twice the width:
 * DINO's linear-evaluation features). embr_model_dim follows; saved with the model. EMBR_EINVAL
 * for other models or values. */
typedef enum embr_pool { EMBR_POOL_CLS = 0, EMBR_POOL_CLS_AVG = 1 } embr_pool;
EMBR_API embr_status embr_model_set_pool(embr_model *m, embr_pool pool);

/* Threads for embr_model_embed (0 = all cores, the default). */
EMBR_API void embr_model_set_threads(embr_model *m, int n_threads);

/* Embeds n images (n x C x H x W floats in the model's input geometry) into out (n x dim), in
 * inference mode (batch-norm running statistics), in batches of at most `batch` (>= 1; n >= 0,
 * else EMBR_EINVAL). EMBR_ENOMEM. Uses the threads set by embr_model_set_threads. */
EMBR_API embr_status embr_model_embed(embr_model *m, const float *x, int64_t n, int batch, float *out);

/* Embeds the items `subset[0..n)` of a dataset (all n = embr_dataset_size items, in order, when
 * subset is NULL) into out (n x embr_model_dim(m), row-major, caller-owned): each image is decoded
 * in the model's input geometry without augmentation and run in inference mode, `batch` at a time.
 * With normalize, rows are scaled to unit L2 norm (an all-zero row stays zero). labels (n entries,
 * may be NULL) receives each row's class. progress (may be NULL) counts images and may cancel
 * (EMBR_ECANCELED; out is then unspecified). Errors: EMBR_EINVAL (arguments), the loader's and
 * the decoder's errors naming the image file, EMBR_ENOMEM. Uses the model's inference state:
 * not concurrent with other calls on the same model. */
EMBR_API embr_status embr_model_embed_dataset(embr_model *m, const embr_dataset *ds, const int64_t *subset, int64_t n,
                                              int batch, int normalize, const embr_progress *progress, float *out,
                                              int32_t *labels);

/* ---- CLIP: the text tower ------------------------------------------------------------------
 * A CLIP model embeds images with embr_model_embed / embr_model_embed_dataset (its image tower)
 * and texts with the functions below, into one joint space: compare them by cosine similarity. */

/* 1 when the model has a text tower (CLIP); then embr_model_context is its tokens per text. */
EMBR_API int embr_model_has_text(const embr_model *m);
EMBR_API int embr_model_context(const embr_model *m);
/* Reads the tokenizer (OpenAI CLIP's merges file, bpe_simple_vocab_16e6.txt.gz, gzip or plain)
 * into m: a model file embr wrote carries its own; a converted OpenAI or Hugging Face checkpoint
 * needs this before texts can be embedded. Its vocabulary must be the text tower's (EMBR_EFORMAT
 * otherwise); the file's errors as embr_bpe_load. */
EMBR_API embr_status embr_model_set_tokenizer(embr_model *m, const char *merges_path);
/* 1 when the model can tokenise texts: it has a text tower and a tokenizer (its own, or one set
 * with embr_model_set_tokenizer). */
EMBR_API int embr_model_has_tokenizer(const embr_model *m);
/* Tokenises n texts into ids (n x context, caller-owned) as CLIP's tokenize(truncate=True):
 * <|startoftext|> tokens <|endoftext|>, zero-padded; a longer text is cut and ends in
 * <|endoftext|>; *n_truncated (may be NULL) counts the texts cut. EMBR_EINVAL without a text
 * tower or tokenizer. */
EMBR_API embr_status embr_model_tokenize(const embr_model *m, const char *const *texts, int64_t n, int32_t *ids,
                                         int64_t *n_truncated);
/* Embeds n tokenised texts (ids: n x context, each id below the vocabulary size) into out
 * (n x dim, caller-owned, not normalised), `batch` at a time, in inference mode. */
EMBR_API embr_status embr_model_embed_tokens(embr_model *m, const int32_t *ids, int64_t n, int batch, float *out);
/* Tokenises and embeds n UTF-8 texts (see embr_model_tokenize) into out (n x dim). */
EMBR_API embr_status embr_model_embed_texts(embr_model *m, const char *const *texts, int64_t n, int batch, float *out,
                                           int64_t *n_truncated);

/* ---- ViT attention maps (DINO) ---------------------------------------------------------------
 * DINO's last-layer attention outlines objects: the class token's attention to each patch, per
 * head, and the mask of the patches that hold 60 % of it (the paper's figure). */

/* The maps' sizes for square images of `side` px (0: the model's input side): *heads and the
 * patch grid *grid (grid x grid patches). EMBR_EINVAL for a model that is not a ViT or a side
 * that is not a positive multiple of its patch. */
EMBR_API embr_status embr_model_attention_size(const embr_model *m, int side, int *heads, int *grid);
/* For n images (n x 3 x side x side floats, prepared as embr_model_input says but at `side`;
 * 0: the model's input side), in inference mode:
 * maps (n x heads x grid x grid floats, or NULL): the last block's softmax attention of the class
 * token (query) to each patch (key), patches row-major — DINO's get_last_selfattention()[:, :, 0,
 * 1:], so a head's map sums to 1 minus its attention to the class token itself;
 * masks (n x (heads + 1) x grid x grid bytes, or NULL): per head embr_attention_mask of its map
 * with `mass`, then the same of the heads' mean map (one mask per image).
 * mass in (0, 1]. Errors: EMBR_EINVAL (arguments, not a ViT), EMBR_ENOMEM. Uses the model's
 * inference state (not concurrent with other calls on m). */
EMBR_API embr_status embr_model_attention(embr_model *m, const float *x, int64_t n, int side, float mass, float *maps,
                                          uint8_t *masks);
/* The mask of DINO's visualize_attention.py: of the n values a (>= 0, not all 0), keep[i] = 1 for
 * the largest ones that together hold `mass` of the total: sorted ascending, divided by their
 * sum, keep where the running sum exceeds 1 - mass (the value that crosses is kept; equal values
 * in index order). mass in (0, 1], else EMBR_EINVAL (also for a negative, non-finite or all-zero a). */
EMBR_API embr_status embr_attention_mask(const float *a, int n, float mass, uint8_t *keep);
/* One picture of an image's maps: `view` (the image as the network saw it, RGB or grey, square)
 * then one panel per head with its map (scaled to its maximum, each patch a block: nearest
 * upsampling as the paper's figures) blended over the view in a black-red-yellow-white ramp,
 * then the view with what the last mask (heads + 1 masks given: the mean map's) leaves out
 * darkened; panels side by side with 4 px white gaps. maps: heads x grid x grid; masks: (heads
 * + 1) x grid x grid, or NULL (no mask panel). *out (RGB) is allocated (free with
 * embr_image_free). EMBR_EINVAL, EMBR_ENOMEM. */
EMBR_API embr_status embr_attention_picture(const embr_image *view, const float *maps, const uint8_t *masks, int heads,
                                            int grid, embr_image *out);

/* ---- training ------------------------------------------------------------------------------ */

typedef enum embr_objective {
  EMBR_OBJ_SOFTMAX = 0, /* a linear classifier on the embedding: the baseline */
  EMBR_OBJ_ARCFACE,     /* additive angular margin m2 */
  EMBR_OBJ_COSFACE,     /* additive cosine margin m3 */
  EMBR_OBJ_SPHEREFACE,  /* multiplicative angular margin m1 */
  EMBR_OBJ_COMBINED,    /* cos(m1 theta + m2) - m3 */
  EMBR_OBJ_CLIP,        /* CLIP's contrastive image-text loss (embr_model_train_clip) */
  EMBR_OBJ_DINO         /* DINO's self-distillation without labels (embr_model_train_dino) */
} embr_objective;

typedef struct embr_train_params {
  embr_objective objective;
  float m1, m2, m3, scale; /* margins and scale: set by objective in the default (ArcFace 0.5, 64) */
  int epochs, batch;
  float lr, weight_decay;
  int adamw;               /* 0: SGD with momentum 0.9 */
  float warmup_epochs;     /* linear warm-up, then cosine decay */
  float clip;              /* global gradient-norm bound, <= 0: none */
  int pad, flip;           /* augmentation */
  uint64_t seed;
  int n_threads;           /* 0: all cores */
  const char *checkpoint;  /* NULL or a file written after every epoch (weights + optimizer state) */
  const char *resume;      /* NULL or a checkpoint to continue from */
  const embr_progress *progress; /* per batch; the detail line holds loss, accuracy, images/s */
  /* DINO (EMBR_OBJ_DINO; facebookresearch/dino's names in brackets). lr is the base rate for a
   * batch of 256, scaled by batch / 256 [lr], warmed up linearly from 0 over warmup_epochs, then
   * cosine down to min_lr [min_lr]; weight_decay rises by cosine to weight_decay_end
   * [weight_decay, weight_decay_end]; clip bounds each parameter's gradient norm on its own
   * [clip_grad]. */
  int dino_out;                 /* K, the head's outputs [out_dim]: 4096 (the paper: 65536) */
  int dino_hidden, dino_bottleneck; /* the head's MLP: 2048, 256 */
  int local_crops;              /* local crops per image [local_crops_number]: 8 (0 allowed) */
  int local_size;               /* their side: 0 = the input side * 96 / 224 rounded to whole patches (28 -> 12, 224 -> 96) */
  float global_scale[2], local_scale[2]; /* crop area ranges: (0.4, 1), (0.05, 0.4) */
  /* The crops' photometric augmentation (embr_multicrop_params' fields of the same names): the
   * probability of ColorJitter (0.8) and of grayscale (0.2) on every crop, Gaussian blur on the
   * first global, the other global and the local crops (1.0, 0.1, 0.5), solarisation on the
   * second global crop (0.2). 0 turns one off: colour is what tells some categories apart. */
  float jitter_p, grayscale_p, blur_p[3], solarize_p;
  float student_temp;           /* 0.1 */
  float teacher_temp, warmup_teacher_temp; /* 0.07, reached linearly from 0.04 over... */
  int warmup_teacher_temp_epochs;          /* ...30 epochs (per epoch, as the reference) */
  float momentum_teacher;       /* teacher EMA 0.996, cosine to 1 over the run (per step) */
  float center_momentum;        /* 0.9 */
  float weight_decay_end;       /* 0.4 */
  float min_lr;                 /* 1e-6 */
  int freeze_last_layer;        /* epochs with the head's last layer fixed: 1 */
  float drop_path;              /* the student ViT's stochastic depth [drop_path_rate]: 0.1 (teacher: 0) */
} embr_train_params;
/* Defaults for an objective: DINO: the reference's (main_dino.py, ViT-S/16 recipe): AdamW lr 5e-4
 * per 256 images, 10 warm-up epochs, decay 0.04 -> 0.4, per-parameter clip 3, 100 epochs, batch
 * 64, the DINO fields as documented above; CLIP: AdamW (betas 0.9/0.98, eps 1e-6 as OpenAI's CLIP) lr 5e-4,
 * decay 0.2, 1 warm-up epoch, clip 1, 30 epochs, batch 64, pad 4, no flip (captions say "left");
 * ArcFace m2 0.5 s 64; CosFace m3 0.35 s 64; SphereFace m1 1.35 s 64;
 * 20 epochs, batch 64, SGD lr 0.1, decay 5e-4, 1 warm-up epoch, clip 5, pad 4 when not at 28 px. */
EMBR_API embr_train_params embr_train_params_default(embr_objective obj);

typedef struct embr_train_stats {
  int epochs_done;
  double last_loss, last_accuracy, images_per_s, seconds;
} embr_train_stats;

/* Trains m on the dataset (items `subset`, n_subset of them, or all when NULL) with a head over
 * the dataset's classes; the head is kept in the model (saved as head.weight / head.bias). The
 * dataset is only read; stats may be NULL. Errors: EMBR_EINVAL (fewer than 2 classes, fewer
 * images than a batch, bad epochs, batch, lr or margins), a checkpoint that is not one
 * (EMBR_EFORMAT), image decode errors, EMBR_EIO writing the checkpoint, EMBR_ENOMEM,
 * EMBR_ECANCELED. Not concurrent with any other use of m. */
EMBR_API embr_status embr_model_train(embr_model *m, const embr_dataset *ds, const int64_t *subset, int64_t n_subset,
                                      const embr_train_params *p, embr_train_stats *stats);

/* CLIP's contrastive training (embr_train_params_default(EMBR_OBJ_CLIP)): each epoch visits
 * every image of `images` once (shuffled, batches of p->batch distinct images, the last short
 * batch dropped), pairs each with one of its captions drawn at random, and minimises the
 * symmetric InfoNCE loss of the batch with the model's learnable temperature (clamped to
 * [0, ln 100] after every step), AdamW on a warm-up + cosine schedule, gradients clipped.
 * captions[i] (UTF-8) describes image caption_image[i] (0 <= it < embr_dataset_size(images));
 * every image needs at least one caption. m must be a CLIP model with a tokenizer; texts longer
 * than the context are truncated (counted in stats->truncated... see the progress line).
 * Accuracy in the stats and progress: the share of the batch's images whose own caption is the
 * most similar (image -> text). Errors as embr_model_train, plus EMBR_EINVAL for a model without
 * a text tower or tokenizer, or an image without caption. */
EMBR_API embr_status embr_model_train_clip(embr_model *m, const embr_dataset *images, const char *const *captions,
                                           const int64_t *caption_image, int64_t n_captions, const embr_train_params *p,
                                           embr_train_stats *stats);

/* DINO (embr_train_params_default(EMBR_OBJ_DINO)): self-distillation without labels, as
 * facebookresearch/dino. m is the backbone (a ViT: its forward takes crops of other sides, its
 * positional embedding interpolated); a student (m's weights plus a DINO head, p->dino_* sizes)
 * and a teacher (the student's copy) are made inside. Each step: the multi-crop loader gives every
 * image p->local_crops local and 2 global crops (embr_multicrop_params_dino); the teacher embeds
 * the global crops, the student all; loss = cross-entropy between the teacher's centred, sharpened
 * softmax and the student's over every pair of different views; backward, per-parameter
 * clipping, the head's last layer frozen for p->freeze_last_layer epochs, AdamW on the schedules,
 * the teacher's EMA, the center's EMA. Labels are ignored. On success m holds the TEACHER's
 * backbone (what the DINO paper evaluates); on error m is unchanged. Checkpoints hold the student
 * (head included), the optimizer, the teacher (teacher.*) and the center (dino.center).
 * stats->last_accuracy holds the teacher's mean output entropy (nats) of the last epoch in place
 * of an accuracy: near 0 or near ln K means collapse. Errors as embr_model_train (no class
 * requirement), plus EMBR_EINVAL for bad DINO sizes or temperatures. */
EMBR_API embr_status embr_model_train_dino(embr_model *m, const embr_dataset *ds, const int64_t *subset,
                                           int64_t n_subset, const embr_train_params *p, embr_train_stats *stats);

#ifdef __cplusplus
}
#endif
#endif

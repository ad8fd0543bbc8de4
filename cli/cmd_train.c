/* embr train: trains an embedding network on labelled images (a folder of class sub-folders or
 * MNIST) with a classification-style objective: ArcFace, CosFace, SphereFace, their combined
 * margin, or plain softmax as the baseline; or a CLIP model on image-caption pairs. */
#include "commands.h"
#include "nn_common.h"

#include <stdlib.h>
#include <string.h>

#include "embr/captions.h"
#include "embr/text.h"

static int objective_of(const char *s, embr_objective *o) {
  static const char *names[] = {"softmax", "arcface", "cosface", "sphereface", "combined", "clip", "dino"};
  for (int i = 0; i < 7; i++)
    if (!strcmp(s, names[i])) {
      *o = (embr_objective)i;
      return 0;
    }
  return -1;
}

typedef struct train_opts {
  const char *objective, *data, *arch, *out, *optimizer, *classes, *per_class, *checkpoint, *resume, *pairs, *bpe;
  const char *global_scale, *local_scale; /* DINO crop area ranges "A:B" */
  const char *blur;                       /* DINO blur probabilities "A:B:C" */
  int64_t width, dim, side, channels, epochs, batch, pad, seed, threads;
  double lr, wd, warmup, clip, margin, scale, m1, m2, m3;
  int no_flip, quiet;
  /* DINO */
  int64_t local_crops, local_size, dino_out, dino_hidden, dino_bottleneck, tt_warmup, freeze_last;
  double teacher_temp, momentum_teacher, wd_end, min_lr, drop_path, jitter, grayscale, solarize;
} train_opts;

/* Margins: --margin sets the objective's own one (ArcFace m2, CosFace m3, SphereFace m1);
 * --m1/--m2/--m3 set the combined form's three. */
static void apply_margins(const train_opts *o, cli_opt *opts, int nopts, embr_train_params *p) {
  for (int i = 0; i < nopts; i++) {
    if (!opts[i].seen) continue;
    const char *n = opts[i].name;
    if (!strcmp(n, "--margin")) {
      if (p->objective == EMBR_OBJ_ARCFACE) p->m2 = (float)o->margin;
      if (p->objective == EMBR_OBJ_COSFACE) p->m3 = (float)o->margin;
      if (p->objective == EMBR_OBJ_SPHEREFACE) p->m1 = (float)o->margin;
    }
    if (!strcmp(n, "--m1")) p->m1 = (float)o->m1;
    if (!strcmp(n, "--m2")) p->m2 = (float)o->m2;
    if (!strcmp(n, "--m3")) p->m3 = (float)o->m3;
    if (!strcmp(n, "--scale")) p->scale = (float)o->scale;
    if (!strcmp(n, "--weight-decay")) p->weight_decay = (float)o->wd;
  }
}

static int seen(const cli_opt *opts, int nopts, const char *name) {
  for (int i = 0; i < nopts; i++)
    if (opts[i].seen && !strcmp(opts[i].name, name)) return 1;
  return 0;
}

/* CLIP: the model from --arch (clip-tiny) with the tokenizer's vocabulary, trained on --pairs. */
static int run_clip(const train_opts *o, embr_train_params *tp, const cli_opt *opts, int nopts) {
  if (!o->pairs) return cli_usage_error("--objective clip needs --pairs FILE (image<TAB>caption lines)");
  const char *arch = seen(opts, nopts, "--arch") ? o->arch : "clip-tiny";
  embr_model_params mp = embr_model_params_arch(arch);
  if (!mp.vision.width) return cli_usage_error("--arch %s is not a CLIP configuration (clip-tiny, clip-vit-b-32, clip-vit-b-16)", arch);
  if (seen(opts, nopts, "--embedding-dim")) mp.embedding_dim = (int)o->dim;
  if (seen(opts, nopts, "--input")) mp.input.height = mp.input.width = (int)o->side;
  embr_bpe *bpe = NULL;
  int st = o->bpe ? embr_bpe_load(o->bpe, 0, &bpe) : embr_bpe_create_bytes(&bpe);
  if (st) return cli_fail(st);
  mp.text.vocab = (int)embr_bpe_vocab_size(bpe);
  embr_bpe_free(bpe);
  embr_model *m = NULL;
  st = embr_model_create(&mp, (uint64_t)o->seed, &m);
  if (st) return st == EMBR_EINVAL ? cli_usage_error("%s", embr_last_error()) : cli_fail(st);
  embr_captions caps = {0};
  embr_dataset *ds = NULL;
  if (!(st = embr_model_set_tokenizer(m, o->bpe)) && !(st = embr_captions_read(o->pairs, o->data, &caps)))
    st = embr_dataset_open_paths(NULL, (const char *const *)caps.image_path, caps.n_images, o->pairs, &ds);
  cli_bar bar;
  cli_bar_init(&bar, "train", o->quiet);
  embr_progress pr = cli_bar_progress(&bar);
  tp->progress = &pr;
  embr_train_stats stats;
  if (!st && !o->quiet)
    fprintf(stderr, "embr %s: %s (%lld parameters), clip, %lld images, %lld captions, %dx%dx%d input, context %d\n",
            cli_name(), arch, (long long)embr_model_parameters(m), (long long)caps.n_images, (long long)caps.n,
            mp.input.channels, mp.input.height, mp.input.width, embr_model_context(m));
  memset(&stats, 0, sizeof stats);
  if (!st && tp->epochs > 0) /* 0: the initialised network, written as the untrained baseline */
    st = embr_model_train_clip(m, ds, (const char *const *)caps.text, caps.image_index, caps.n, tp, &stats);
  cli_bar_done(&bar);
  if (!st) st = embr_model_save(m, o->out);
  if (!st && !o->quiet)
    fprintf(stderr, "embr %s: %d epochs in %.1f s (%.0f pairs/s), last epoch loss %.4f, image->text accuracy %.3f; wrote %s\n",
            cli_name(), stats.epochs_done, stats.seconds, stats.images_per_s, stats.last_loss, stats.last_accuracy, o->out);
  embr_model_free(m);
  embr_dataset_free(ds);
  embr_captions_free(&caps);
  return st ? cli_fail(st) : EXIT_OK;
}

/* "A:B" with 0 < A <= B <= 1 into r[2]: a RandomResizedCrop area range. */
static int parse_scale(const char *flag, const char *s, float r[2]) {
  char *end;
  double a = strtod(s, &end), b;
  if (end == s || *end != ':') return cli_usage_error("%s '%s': expected A:B (area fractions)", flag, s);
  const char *t = end + 1;
  b = strtod(t, &end);
  if (end == t || *end || !(a > 0 && a <= b && b <= 1))
    return cli_usage_error("%s '%s': expected A:B with 0 < A <= B <= 1", flag, s);
  r[0] = (float)a, r[1] = (float)b;
  return 0;
}

/* "A:B:C", three probabilities in [0, 1] into r[3]: blur of the first global, the other global and
 * the local crops. */
static int parse_blur(const char *s, float r[3]) {
  const char *t = s;
  for (int k = 0; k < 3; k++) {
    char *end;
    double v = strtod(t, &end);
    if (end == t || *end != (k < 2 ? ':' : '\0') || !(v >= 0 && v <= 1))
      return cli_usage_error("--blur '%s': expected A:B:C, three probabilities in [0, 1]", s);
    r[k] = (float)v;
    t = end + 1;
  }
  return 0;
}

/* The data of --data (images only, or any dataset) and the --classes / --per-class selection of
 * it; on error nothing is left open. */
static int open_selection(const train_opts *o, int images_only, embr_dataset **ds, int64_t **subset, int64_t *n) {
  int rc = images_only ? cli_open_images(o->data, ds) : cli_open_dataset(o->data, ds);
  if (!rc) rc = cli_select(*ds, o->classes, o->per_class, subset, n);
  if (rc) {
    embr_dataset_free(*ds);
    *ds = NULL;
  }
  return rc;
}

/* DINO's flags over its own defaults (embr_train_params_default) for what is not given. */
static void dino_flags(const train_opts *o, embr_train_params *tp, const cli_opt *opts, int nopts) {
  if (seen(opts, nopts, "--epochs")) tp->epochs = (int)o->epochs;
  if (seen(opts, nopts, "--lr")) tp->lr = (float)o->lr;
  if (seen(opts, nopts, "--clip")) tp->clip = (float)o->clip;
  if (seen(opts, nopts, "--warmup")) tp->warmup_epochs = (float)o->warmup;
  if (seen(opts, nopts, "--local-crops")) tp->local_crops = (int)o->local_crops;
  if (seen(opts, nopts, "--local-size")) tp->local_size = (int)o->local_size;
  if (seen(opts, nopts, "--dino-out")) tp->dino_out = (int)o->dino_out;
  if (seen(opts, nopts, "--dino-hidden")) tp->dino_hidden = (int)o->dino_hidden;
  if (seen(opts, nopts, "--dino-bottleneck")) tp->dino_bottleneck = (int)o->dino_bottleneck;
  if (seen(opts, nopts, "--drop-path")) tp->drop_path = (float)o->drop_path;
  if (seen(opts, nopts, "--teacher-temp")) tp->teacher_temp = (float)o->teacher_temp;
  if (seen(opts, nopts, "--teacher-temp-warmup")) tp->warmup_teacher_temp_epochs = (int)o->tt_warmup;
  if (seen(opts, nopts, "--momentum-teacher")) tp->momentum_teacher = (float)o->momentum_teacher;
  if (seen(opts, nopts, "--weight-decay-end")) tp->weight_decay_end = (float)o->wd_end;
  if (seen(opts, nopts, "--min-lr")) tp->min_lr = (float)o->min_lr;
  if (seen(opts, nopts, "--freeze-last-layer")) tp->freeze_last_layer = (int)o->freeze_last;
  if (seen(opts, nopts, "--jitter")) tp->jitter_p = (float)o->jitter;
  if (seen(opts, nopts, "--grayscale")) tp->grayscale_p = (float)o->grayscale;
  if (seen(opts, nopts, "--solarize")) tp->solarize_p = (float)o->solarize;
}

/* DINO: a backbone from --arch (vit-tiny) trained without labels; the teacher's backbone is saved. */
static int run_dino(const train_opts *o, embr_train_params *tp, const cli_opt *opts, int nopts) {
  if (seen(opts, nopts, "--global-scale") && parse_scale("--global-scale", o->global_scale, tp->global_scale)) return 2;
  if (seen(opts, nopts, "--local-scale") && parse_scale("--local-scale", o->local_scale, tp->local_scale)) return 2;
  if (seen(opts, nopts, "--blur") && parse_blur(o->blur, tp->blur_p)) return 2;
  const char *arch = seen(opts, nopts, "--arch") ? o->arch : "vit-tiny";
  embr_model_params mp = embr_model_params_arch(arch);
  if (seen(opts, nopts, "--width")) mp.width = (int)o->width;
  if (seen(opts, nopts, "--embedding-dim")) mp.embedding_dim = (int)o->dim;
  if (seen(opts, nopts, "--input")) {
    mp.input.height = mp.input.width = (int)o->side;
    /* the evaluation transform keeps DINO's ratio (short side 256 for a 224 crop) at the new side */
    if (mp.input.crop == EMBR_CROP_CENTER) mp.input.short_side = (int)((o->side * 256 + 112) / 224);
  }
  if (seen(opts, nopts, "--channels")) mp.input.channels = (int)o->channels;
  embr_model *m = NULL;
  int st = embr_model_create(&mp, (uint64_t)o->seed, &m);
  if (st) return st == EMBR_EINVAL ? cli_usage_error("%s", embr_last_error()) : cli_fail(st);
  dino_flags(o, tp, opts, nopts);
  embr_dataset *ds = NULL;
  int64_t *subset = NULL, n = 0;
  int rc = open_selection(o, 1, &ds, &subset, &n);
  if (rc) {
    embr_model_free(m);
    return rc;
  }
  cli_bar bar;
  cli_bar_init(&bar, "train", o->quiet);
  embr_progress pr = cli_bar_progress(&bar);
  tp->progress = &pr;
  embr_train_stats stats;
  memset(&stats, 0, sizeof stats);
  embr_image_spec in = embr_model_input(m);
  if (!o->quiet)
    fprintf(stderr, "embr %s: %s (%lld parameters), dino, %lld images (labels ignored), %dx%dx%d input, 2 global + %d local "
            "crops, %d outputs\n", cli_name(), arch, (long long)embr_model_parameters(m), (long long)n, in.channels, in.height,
            in.width, tp->local_crops, tp->dino_out);
  if (tp->epochs > 0) /* 0: the initialised network, written as the untrained baseline */
    st = embr_model_train_dino(m, ds, subset, n, tp, &stats);
  cli_bar_done(&bar);
  if (!st) st = embr_model_save(m, o->out);
  if (!st && !o->quiet)
    fprintf(stderr, "embr %s: %d epochs in %.1f s (%.0f images/s), last epoch loss %.4f, teacher entropy %.3f; wrote the "
            "teacher to %s\n", cli_name(), stats.epochs_done, stats.seconds, stats.images_per_s, stats.last_loss,
            stats.last_accuracy, o->out);
  embr_model_free(m);
  embr_dataset_free(ds);
  free(subset);
  return st ? cli_fail(st) : EXIT_OK;
}

static int run_training(const train_opts *o, embr_train_params *tp) {
  /* The model first: it is made from flags alone, so a bad --arch is a usage error (exit 2). */
  embr_model_params mp = embr_model_params_default();
  mp.arch = o->arch, mp.width = (int)o->width, mp.embedding_dim = (int)o->dim;
  mp.input.channels = (int)o->channels, mp.input.height = mp.input.width = (int)o->side;
  embr_model *m = NULL;
  int st = embr_model_create(&mp, (uint64_t)o->seed, &m);
  if (st) return st == EMBR_EINVAL ? cli_usage_error("%s", embr_last_error()) : cli_fail(st);
  embr_dataset *ds = NULL;
  int64_t *subset = NULL, n = 0;
  int rc = open_selection(o, 0, &ds, &subset, &n);
  if (rc) {
    embr_model_free(m);
    return rc;
  }
  cli_bar bar;
  cli_bar_init(&bar, "train", o->quiet);
  embr_progress pr = cli_bar_progress(&bar);
  tp->progress = &pr;
  embr_train_stats stats;
  if (!st) {
    int classes = 0;
    char *seen = calloc((size_t)embr_dataset_classes(ds) + 1, 1);
    for (int64_t i = 0; seen && i < n; i++) {
      int c = embr_dataset_label(ds, subset[i]);
      classes += !seen[c];
      seen[c] = 1;
    }
    free(seen);
    if (!o->quiet)
      fprintf(stderr, "embr %s: %s (%lld parameters), %s, %lld images of %d classes, %dx%dx%d input\n", cli_name(), o->arch,
              (long long)embr_model_parameters(m), o->objective, (long long)n, classes, mp.input.channels,
              mp.input.height, mp.input.width);
    st = embr_model_train(m, ds, subset, n, tp, &stats);
  }
  cli_bar_done(&bar);
  if (!st) st = embr_model_save(m, o->out);
  if (!st && !o->quiet)
    fprintf(stderr, "embr %s: %d epochs in %.1f s (%.0f images/s), last epoch loss %.4f, accuracy %.3f; wrote %s\n", cli_name(),
            stats.epochs_done, stats.seconds, stats.images_per_s, stats.last_loss, stats.last_accuracy, o->out);
  embr_model_free(m);
  embr_dataset_free(ds);
  free(subset);
  return st ? cli_fail(st) : EXIT_OK;
}

static int cmd_train(int argc, char **argv) {
  train_opts o = {"arcface", NULL, "mobilefacenet", NULL, "sgd", NULL, NULL, NULL, NULL, NULL, NULL, "0.4:1", "0.05:0.4", "1:0.1:0.5",
                  64, 128, 112, 3, 20, 64, 4, 1, 0,
                  0.1, 5e-4, 1, 5, 0, 64, 1, 0, 0, 0, 0,
                  8, 0, 4096, 2048, 256, 30, 1, 0.07, 0.996, 0.4, 1e-6, 0.1, 0.8, 0.2, 0.2};
  cli_opt opts[] = {
      OPT_STR("--objective", NULL, &o.objective, "NAME", "arcface, cosface, sphereface, combined, softmax, clip or dino", "arcface"),
      OPT_STR_REQ("--data", NULL, &o.data, "DIR|mnist:PATH",
                  "a folder with one sub-folder of images per class, or MNIST idx files; clip: the folder --pairs names images in; "
                  "dino: also a flat folder (labels ignored)"),
      OPT_STR("--pairs", NULL, &o.pairs, "FILE", "clip: image<TAB>caption lines (images relative to --data; several captions per image allowed)", "none"),
      OPT_STR("--bpe", NULL, &o.bpe, "FILE", "clip: CLIP's merges file (bpe_simple_vocab_16e6.txt.gz), kept in the model", "bytes, no merges"),
      OPT_STR_REQ("--out", "-o|--output", &o.out, "FILE", "the trained model (.safetensors)"),
      OPT_STR("--arch", NULL, &o.arch, "NAME", "mobilefacenet, resnet18 or resnet34; clip: clip-tiny, clip-vit-b-32, clip-vit-b-16; "
              "dino: vit-tiny, vit-s-16, vit-b-16 (or a CNN)", "mobilefacenet (clip: clip-tiny, dino: vit-tiny)"),
      OPT_INT("--width", NULL, &o.width, "W", "base channel width (64: the published networks)", "64", 1, 4096),
      OPT_INT("--embedding-dim", NULL, &o.dim, "D", "embedding size", "128", 1, 65536),
      OPT_INT("--input", NULL, &o.side, "PX", "input side: images are resized to PX x PX", "112", 8, 4096),
      OPT_INT("--channels", NULL, &o.channels, "C", "input channels: 3 (grey replicated) or 1", "3", 1, 3),
      OPT_INT("--epochs", "-e", &o.epochs, "N", "passes over the training images (clip, dino: 0 writes the untrained model, a baseline)",
              "20 (clip: 30, dino: 100)", 0, 100000),
      OPT_INT("--batch", "-b", &o.batch, "B", "images per step", "64", 2, 1000000),
      OPT_DBL("--lr", NULL, &o.lr, "LR", "peak learning rate (linear warm-up, cosine decay; dino: per 256 images, scaled by batch / 256)", "0.1 (clip, dino: 5e-4)", 1e-9, 100),
      OPT_STR("--optimizer", NULL, &o.optimizer, "NAME", "sgd (momentum 0.9) or adamw", "sgd (clip: adamw)"),
      OPT_DBL("--weight-decay", NULL, &o.wd, "WD", "weight decay (not on biases, norms, PReLU; dino: at the start)", "5e-4 (sgd), 0.05 (adamw), 0.2 (clip), 0.04 (dino)", 0, 10),
      OPT_DBL("--warmup", NULL, &o.warmup, "EPOCHS", "warm-up length in epochs", "1 (dino: 10)", 0, 1e6),
      OPT_DBL("--clip", NULL, &o.clip, "NORM", "global gradient-norm bound (0: none; dino: per parameter)", "5 (clip: 1, dino: 3)", 0, 1e9),
      OPT_DBL("--margin", NULL, &o.margin, "M", "the objective's margin: ArcFace m2, CosFace m3, SphereFace m1",
              "0.5 / 0.35 / 1.35", 0, 10),
      OPT_DBL("--scale", NULL, &o.scale, "S", "logit scale of the margin objectives", "64", 1e-6, 1e6),
      OPT_DBL("--m1", NULL, &o.m1, "M1", "combined margin: cos(m1*theta + m2) - m3", "1", 1, 10),
      OPT_DBL("--m2", NULL, &o.m2, "M2", "combined margin m2", "0.5", 0, 10),
      OPT_DBL("--m3", NULL, &o.m3, "M3", "combined margin m3", "0", 0, 10),
      OPT_INT("--pad", NULL, &o.pad, "PX", "augmentation: pad by PX and crop at random (0: off)", "4", 0, 1024),
      OPT_FLAG("--no-flip", NULL, &o.no_flip, "augmentation: no random horizontal flips (clip: never flips)"),
      OPT_INT("--local-crops", NULL, &o.local_crops, "N", "dino: local crops per image", "8", 0, 64),
      OPT_INT("--local-size", NULL, &o.local_size, "PX", "dino: local crop side (0: input * 96 / 224 rounded to whole patches)", "0 (vit-tiny: 12)", 0, 4096),
      OPT_STR("--global-scale", NULL, &o.global_scale, "A:B", "dino: area range of the global crops (RandomResizedCrop)", "0.4:1"),
      OPT_STR("--local-scale", NULL, &o.local_scale, "A:B", "dino: area range of the local crops", "0.05:0.4"),
      OPT_DBL("--jitter", NULL, &o.jitter, "P", "dino: probability of the crops' colour jitter (0: none)", "0.8", 0, 1),
      OPT_DBL("--grayscale", NULL, &o.grayscale, "P", "dino: probability of a crop turned grey (0: none)", "0.2", 0, 1),
      OPT_STR("--blur", NULL, &o.blur, "A:B:C", "dino: blur probabilities of the first global, second global and local crops", "1:0.1:0.5"),
      OPT_DBL("--solarize", NULL, &o.solarize, "P", "dino: probability of solarising the second global crop (0: none)", "0.2", 0, 1),
      OPT_INT("--dino-out", NULL, &o.dino_out, "K", "dino: the head's outputs", "4096", 1, 1048576),
      OPT_INT("--dino-hidden", NULL, &o.dino_hidden, "H", "dino: the head's MLP width", "2048", 1, 65536),
      OPT_INT("--dino-bottleneck", NULL, &o.dino_bottleneck, "D", "dino: the head's bottleneck (before the last layer)", "256", 1, 65536),
      OPT_DBL("--drop-path", NULL, &o.drop_path, "P", "dino: the student ViT's stochastic depth rate", "0.1", 0, 0.99),
      OPT_DBL("--teacher-temp", NULL, &o.teacher_temp, "T", "dino: teacher temperature after its warm-up from 0.04", "0.07", 1e-4, 10),
      OPT_INT("--teacher-temp-warmup", NULL, &o.tt_warmup, "EPOCHS", "dino: epochs of the teacher temperature's warm-up", "30", 0, 100000),
      OPT_DBL("--momentum-teacher", NULL, &o.momentum_teacher, "M", "dino: teacher EMA momentum at the start (cosine to 1)", "0.996", 0, 1),
      OPT_DBL("--weight-decay-end", NULL, &o.wd_end, "WD", "dino: weight decay at the end (cosine from --weight-decay)", "0.4", 0, 10),
      OPT_DBL("--min-lr", NULL, &o.min_lr, "LR", "dino: learning rate at the end of the cosine", "1e-6", 0, 100),
      OPT_INT("--freeze-last-layer", NULL, &o.freeze_last, "EPOCHS", "dino: epochs with the head's last layer fixed", "1", 0, 100000),
      OPT_STR("--classes", NULL, &o.classes, "A:B", "train on classes A..B-1 only (natural order: s2 before s10)", "all"),
      OPT_STR("--per-class", NULL, &o.per_class, "A:B", "train on images A..B-1 of each class only", "all"),
      OPT_STR("--checkpoint", NULL, &o.checkpoint, "FILE", "write weights and optimizer state after every epoch", "none"),
      OPT_STR("--resume", NULL, &o.resume, "FILE", "continue from a --checkpoint file", "none"),
      OPT_SEED(&o.seed, " (weights, order, augmentation)"),
      OPT_THREADS(&o.threads),
      OPT_QUIET(&o.quiet),
  };
  int nopts = CLI_NOPTS(opts);
  cli_command cmd = {"Train an embedding network (ArcFace, CosFace, SphereFace or softmax) on labelled images, CLIP on\n"
                     "image-caption pairs, or DINO on unlabelled images.",
                     "embr train --data DIR|mnist:PATH -o model.safetensors [--objective arcface] [--arch mobilefacenet] [options]\n"
                     "       embr train --objective clip --data DIR --pairs PAIRS.tsv -o clip.safetensors [--bpe MERGES] [options]\n"
                     "       embr train --objective dino --data DIR|mnist:PATH -o dino.safetensors [--arch vit-tiny] [--local-crops N] [options]",
                     "Images of any size and channel count are resized to the input size; grey is replicated to 3\n"
                     "channels. The model file keeps the input size and normalisation, so `embr embed` and\n"
                     "`embr eval` need only it. Progress shows loss, accuracy (under the margin) and images/s.\n"
                     "Split example (ORL, unseen identities): --classes 0:30 here, --classes 30:40 in eval.\n"
                     "CLIP (docs/clip.md): each epoch pairs every image once with one of its captions at random;\n"
                     "progress shows the contrastive loss, the in-batch image->text accuracy and pairs/s.\n"
                     "DINO (docs/dino.md): self-supervised, labels ignored; --arch vit-tiny by default; 2 global and\n"
                     "--local-crops local crops per image; the saved model is the teacher's backbone; progress shows\n"
                     "the loss and the teacher's output entropy (near 0 or near ln K: collapsed). --epochs 0 writes the\n"
                     "untrained network (a baseline).",
                     opts, nopts, 0, 0, NULL, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  embr_objective obj;
  if (objective_of(o.objective, &obj)) return cli_usage_error("unknown --objective '%s'", o.objective);
  if (strcmp(o.optimizer, "sgd") && strcmp(o.optimizer, "adamw"))
    return cli_usage_error("unknown --optimizer '%s' (sgd or adamw)", o.optimizer);
  if (o.channels == 2) return cli_usage_error("--channels must be 1 or 3");
  embr_train_params tp = embr_train_params_default(obj);
  int clip = obj == EMBR_OBJ_CLIP, dino = obj == EMBR_OBJ_DINO;
  static const char *dino_only[] = {"--local-crops", "--local-size", "--dino-out", "--dino-hidden", "--dino-bottleneck",
                                    "--drop-path", "--teacher-temp", "--teacher-temp-warmup", "--momentum-teacher",
                                    "--weight-decay-end", "--min-lr", "--freeze-last-layer", "--global-scale",
                                    "--local-scale", "--jitter", "--grayscale", "--blur", "--solarize"};
  for (int i = 0; i < (int)(sizeof dino_only / sizeof *dino_only) && !dino; i++)
    if (seen(opts, nopts, dino_only[i])) return cli_usage_error("%s is for --objective dino", dino_only[i]);
  if (dino) {
    if (o.pairs) return cli_usage_error("--pairs is for --objective clip");
    if (seen(opts, nopts, "--weight-decay")) tp.weight_decay = (float)o.wd;
    if (seen(opts, nopts, "--optimizer")) tp.adamw = !strcmp(o.optimizer, "adamw");
    tp.batch = (int)o.batch, tp.seed = (uint64_t)o.seed;
    tp.n_threads = (int)o.threads, tp.checkpoint = o.checkpoint, tp.resume = o.resume;
    cli_file df[] = {{"--out", o.out, 1}, {"--checkpoint", o.checkpoint, 1}, {"--resume", o.resume, 0}};
    int drc = cli_check_files(df, 2);
    if (!drc) drc = cli_check_files((cli_file[]){df[0], df[2]}, 2);
    return drc ? drc : run_dino(&o, &tp, opts, nopts);
  }
  if (o.pairs && !clip) return cli_usage_error("--pairs is for --objective clip");
  if (o.epochs == 0 && !clip) return cli_usage_error("--epochs must be at least 1");
  if (seen(opts, nopts, "--optimizer") || !clip) tp.adamw = !strcmp(o.optimizer, "adamw");
  if (tp.adamw && !clip) tp.weight_decay = 0.05f;
  apply_margins(&o, opts, nopts, &tp);
  /* CLIP keeps its own defaults (embr_train_params_default) for what is not given. */
  if (!clip || seen(opts, nopts, "--epochs")) tp.epochs = (int)o.epochs;
  if (!clip || seen(opts, nopts, "--lr")) tp.lr = (float)o.lr;
  if (!clip || seen(opts, nopts, "--clip")) tp.clip = (float)o.clip;
  if (!clip || seen(opts, nopts, "--no-flip")) tp.flip = !o.no_flip;
  tp.batch = (int)o.batch, tp.warmup_epochs = (float)o.warmup;
  tp.pad = (int)o.pad, tp.seed = (uint64_t)o.seed;
  tp.n_threads = (int)o.threads, tp.checkpoint = o.checkpoint, tp.resume = o.resume;
  /* --checkpoint may name the --resume file (continuing in place); --out may not. */
  cli_file files[] = {{"--out", o.out, 1}, {"--checkpoint", o.checkpoint, 1}, {"--resume", o.resume, 0}};
  int frc = cli_check_files(files, 2);
  if (!frc) frc = cli_check_files((cli_file[]){files[0], files[2]}, 2);
  if (frc) return frc;
  return clip ? run_clip(&o, &tp, opts, nopts) : run_training(&o, &tp);
}

const cli_entry cli_train = {"train", "train an image embedding network (ArcFace, CosFace, SphereFace, softmax, CLIP, DINO)", cmd_train, NULL, 0, NULL};

/* Models: the architecture table, create / load / save (safetensors with embr metadata), and
 * batched inference. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/parse.h"
#include "embr/text.h"
#include "models/clip.h"
#include "models/dino_vit.h"
#include "models/models.h"
#include "nn/dnnl.h"

#include <omp.h>

static const net_ops *const all_nets[] = {&embr__resnet18_ops, &embr__resnet34_ops, &embr__mobilefacenet_ops};

const net_ops *embr__net_find(const char *arch) {
  if (embr__clip_arch(arch)) return &embr__clip_ops;
  if (embr__dino_vit_arch(arch)) return &embr__dino_vit_ops;
  for (size_t i = 0; i < sizeof(all_nets) / sizeof(all_nets[0]); i++)
    if (arch && !strcmp(all_nets[i]->name, arch)) return all_nets[i];
  return NULL;
}

embr_model_params embr_model_params_default(void) {
  embr_model_params p;
  memset(&p, 0, sizeof(p));
  p.arch = "mobilefacenet";
  p.width = 64;
  p.embedding_dim = 128;
  p.input = embr_image_spec_default();
  return p;
}

embr_model_params embr_model_params_arch(const char *arch) {
  embr_model_params p = embr_model_params_default();
  p.arch = arch;
  if (arch && !embr__clip_fill(&p)) embr__dino_vit_fill(&p);
  return p;
}

static int check_params(const embr_model_params *p) {
  if (!embr__net_find(p->arch))
    return embr_error(EMBR_EINVAL,
                      "unknown architecture '%s' (resnet18, resnet34, mobilefacenet, clip-tiny, clip-vit-b-32, "
                      "clip-vit-b-16, vit-tiny, vit-s-16, vit-b-16, dinov2-vit-s-14)", p->arch ? p->arch : "");
  if (embr__clip_arch(p->arch)) return embr__clip_check(p);
  if (embr__dino_vit_arch(p->arch)) return embr__dino_vit_check(p);
  if (p->width < 1 || p->width > 4096) return embr_error(EMBR_EINVAL, "width %d out of range", p->width);
  if (p->embedding_dim < 1 || p->embedding_dim > 65536)
    return embr_error(EMBR_EINVAL, "embedding dimension %d out of range", p->embedding_dim);
  if (p->input.channels != 1 && p->input.channels != 3) return embr_error(EMBR_EINVAL, "input channels must be 1 or 3");
  if (p->input.height < 8 || p->input.width < 8 || p->input.height > 4096 || p->input.width > 4096)
    return embr_error(EMBR_EINVAL, "input size %dx%d out of range (8 to 4096)", p->input.width, p->input.height);
  return 0;
}

static int make_head(embr_model *m, int kind, int classes) {
  m->hd.kind = kind;
  m->hd.classes = classes;
  if (kind == 1) return embr__nn_linear_make(&m->P, &m->hd.lin, "head", m->p.embedding_dim, classes, 1);
  if (kind == 2) return embr__nn_margin_make(&m->P, &m->hd.mar, "head", classes, m->p.embedding_dim, 1, 0.5f, 0, 64);
  return 0;
}

int embr__model_build(const embr_model_params *p0, int head_kind, int classes, embr_model **out) {
  *out = NULL;
  embr_model_params q = *p0, *p = &q;
  if (embr__clip_arch(p->arch) && !p->vision.width) embr__clip_fill(p); /* a named configuration's sizes */
  if (embr__dino_vit_arch(p->arch) && !p->vision.width) {
    float dp = p->drop_path; /* the named sizes, with the caller's training option */
    embr__dino_vit_fill(p);
    p->drop_path = dp;
  }
  int rc = check_params(p);
  if (rc) return rc;
  embr_model *m = embr_calloc(1, sizeof(embr_model));
  if (!m) return embr_error(EMBR_ENOMEM, "out of memory");
  m->p = *p;
  snprintf(m->arch, sizeof(m->arch), "%s", p->arch);
  m->p.arch = m->arch;
  m->ops = embr__net_find(p->arch);
  rc = m->ops->build(&m->P, &m->p, &m->net);
  if (!rc) rc = make_head(m, head_kind, classes);
  embr__nn_ctx_init(&m->infer, &m->P, 0, 0, 0);
  m->infer.block_size = (size_t)4 << 20;
  if (rc) {
    embr_model_free(m);
    return rc;
  }
  *out = m;
  return 0;
}

embr_status embr_model_create(const embr_model_params *p, uint64_t seed, embr_model **out) {
  int rc = embr__model_build(p, 0, 0, out);
  if (!rc && (rc = embr__nn_params_init(&(*out)->P, seed))) {
    embr_model_free(*out);
    *out = NULL;
  }
  return rc;
}

void embr_model_free(embr_model *m) {
  if (!m) return;
  if (m->ops && m->net) m->ops->destroy(m->net);
  embr__nn_params_free(&m->P);
  embr__nn_ctx_free(&m->infer);
  for (int i = 0; i < m->nsplit; i++) embr__nn_ctx_free(&m->split[i]);
  embr_free(m->split);
  for (int i = 0; i < m->nclass_names; i++) embr_free(m->class_names[i]);
  embr_free(m->class_names);
  embr_bpe_free(m->bpe);
  embr_free(m->bpe_bytes);
  embr_free(m);
}

int embr_model_dim(const embr_model *m) { return m->p.embedding_dim; }
embr_image_spec embr_model_input(const embr_model *m) { return m->p.input; }
const char *embr_model_arch(const embr_model *m) { return m->arch; }
int64_t embr_model_parameters(const embr_model *m) {
  int64_t n = 0;
  for (int i = 0; i < m->P.n; i++)
    if (m->P.p[i].kind != NN_BUFFER && strncmp(m->P.p[i].name, "head.", 5)) n += m->P.p[i].numel;
  return n;
}

nn_t *embr__model_forward(embr_model *m, nn_ctx *ctx, nn_t *x) { return m->ops->forward(ctx, m->net, x); }

void embr_model_set_threads(embr_model *m, int n_threads) { m->n_threads = n_threads; }

embr_status embr_model_set_pool(embr_model *m, embr_pool pool) {
  if (!m || m->ops != &embr__dino_vit_ops) return embr_error(EMBR_EINVAL, "pooling: only a ViT model has tokens to pool");
  if (pool != EMBR_POOL_CLS && pool != EMBR_POOL_CLS_AVG) return embr_error(EMBR_EINVAL, "pooling: unknown mode %d", (int)pool);
  ((dino_vit *)m->net)->pool = pool;
  m->p.embedding_dim = m->p.vision.width * (pool == EMBR_POOL_CLS_AVG ? 2 : 1);
  return 0;
}

/* A batch split across threads. The convolutional networks' inference is per image (batch norm
 * on running statistics) and runs on oneDNN, whose layers at 2 threads spend much of their time
 * at the barrier ending each parallel region (libgomp 31 % of ResNet-18's samples, 61 % of
 * MobileFaceNet's; more when another process takes a core for a moment): here each thread runs
 * the whole network on its share of the batch with one thread per op, in a context (arena, oneDNN
 * primitives: cache slot k + 1) of its own, and nothing waits until the end. EMBR_BATCH_SPLIT=0
 * turns it off (the benchmark compares both). */
static int split_ok(const embr_model *m, int nt, int nb) {
  const char *e = getenv("EMBR_BATCH_SPLIT");
  return nt > 1 && nb >= nt && embr__dnnl_enabled() && (!e || strcmp(e, "0")) &&
         (m->ops == &embr__resnet18_ops || m->ops == &embr__resnet34_ops || m->ops == &embr__mobilefacenet_ops);
}

static int split_contexts(embr_model *m, int nt) {
  if (m->nsplit < nt) {
    nn_ctx *c = embr_calloc((size_t)nt, sizeof(nn_ctx));
    if (!c) return embr_error(EMBR_ENOMEM, "out of memory");
    for (int k = 0; k < nt; k++) {
      if (k < m->nsplit) {
        c[k] = m->split[k];
        continue;
      }
      embr__nn_ctx_init(&c[k], &m->P, 0, 0, 0);
      c[k].block_size = (size_t)4 << 20, c[k].slot = k + 1;
    }
    embr_free(m->split);
    m->split = c, m->nsplit = nt;
  }
  return embr__dnnl_reserve(&m->P, nt + 1);
}

static int embed_split(embr_model *m, const float *x, int nb, float *out, int nt) {
  const embr_image_spec *s = &m->p.input;
  const int64_t per = (int64_t)s->channels * s->height * s->width, dim = m->p.embedding_dim;
  int rc = split_contexts(m, nt), failed = -1;
  char msg[256] = "";
  if (rc) return rc;
#pragma omp parallel num_threads(nt)
  {
    const int k = omp_get_thread_num(), team = omp_get_num_threads();
    const int lo = (int)((int64_t)nb * k / team), hi = (int)((int64_t)nb * (k + 1) / team);
    nn_ctx *c = &m->split[k];
    c->nt = 1;
    embr__nn_ctx_reset(c);
    nn_t *y = hi > lo ? embr__model_forward(m, c, embr__nn_wrap(c, (float *)(x + lo * per), hi - lo, s->channels,
                                                                   s->height, s->width))
                      : NULL;
    if (y) {
      memcpy(out + lo * dim, y->d, sizeof(float) * (size_t)(hi - lo) * (size_t)dim);
    } else if (hi > lo) {
#pragma omp critical(embr_embed_split)
      if (failed < 0) { /* the error's detail is the failing thread's: carried to the caller's */
        failed = k, rc = c->rc ? c->rc : EMBR_ENOMEM;
        snprintf(msg, sizeof(msg), "%s", c->rc ? embr_last_error() : "out of memory");
      }
    }
    embr__nn_ctx_reset(c);
  }
  return rc ? embr_error(rc, "%s", msg) : 0;
}

embr_status embr_model_embed(embr_model *m, const float *x, int64_t n, int batch, float *out) {
  if (n < 0 || batch < 1) return embr_error(EMBR_EINVAL, "bad image count or batch size");
  m->infer.nt = embr_threads_resolve(m->n_threads);
  const embr_image_spec *s = &m->p.input;
  int64_t per = (int64_t)s->channels * s->height * s->width;
  int step = batch;
  for (int64_t i = 0; i < n; i += step) {
    int nb = (int)(n - i < step ? n - i : step), rc;
    if (split_ok(m, m->infer.nt, nb)) {
      if ((rc = embed_split(m, x + i * per, nb, out + i * m->p.embedding_dim, m->infer.nt))) return rc;
      continue;
    }
    embr__nn_ctx_reset(&m->infer);
    nn_t *in = embr__nn_wrap(&m->infer, (float *)(x + i * per), nb, s->channels, s->height, s->width);
    nn_t *y = embr__model_forward(m, &m->infer, in);
    if (!y) return m->infer.rc ? m->infer.rc : embr_error(EMBR_ENOMEM, "out of memory");
    memcpy(out + i * m->p.embedding_dim, y->d, sizeof(float) * (size_t)nb * (size_t)m->p.embedding_dim);
  }
  embr__nn_ctx_reset(&m->infer);
  return 0;
}

/* ---- files ------------------------------------------------------------------------------------ */

enum { NMETA = 16 };

static char *join_names(char *const *v, int n) {
  size_t len = 1;
  for (int i = 0; i < n; i++) len += strlen(v[i]) + 1;
  char *s = embr_alloc(len), *o = s;
  if (!s) return NULL;
  *o = 0;
  for (int i = 0; i < n; i++) o += sprintf(o, i ? "\n%s" : "%s", v[i]);
  return s;
}

embr_status embr_model_save(const embr_model *m, const char *path) {
  nn_st_out *t = embr_calloc((size_t)m->P.n + 2, sizeof(nn_st_out));
  char buf[NMETA][96], *key[NMETA], *val[NMETA];
  if (!t) return embr_error(EMBR_ENOMEM, "out of memory");
  for (int i = 0; i < m->P.n; i++) t[i] = embr__nn_st_out_of(&m->P, i, m->P.data);
  const embr_image_spec *s = &m->p.input;
  static const char *keys[] = {"embr.format", "embr.arch", "embr.width", "embr.embedding_dim", "embr.input",
                               "embr.mean", "embr.std", "embr.resize", "embr.head", "embr.classes"};
  int nm = 10;
  snprintf(buf[0], 96, "model 1");
  snprintf(buf[1], 96, "%s", m->arch);
  snprintf(buf[2], 96, "%d", m->ops == &embr__clip_ops || m->ops == &embr__dino_vit_ops ? m->p.vision.width : m->p.width);
  snprintf(buf[3], 96, "%d", m->p.embedding_dim);
  snprintf(buf[4], 96, "%dx%dx%d", s->channels, s->height, s->width);
  snprintf(buf[5], 96, "%.9g,%.9g,%.9g", s->mean[0], s->mean[1], s->mean[2]);
  snprintf(buf[6], 96, "%.9g,%.9g,%.9g", s->std[0], s->std[1], s->std[2]);
  snprintf(buf[7], 96, "%s", s->resize == EMBR_RESIZE_BICUBIC ? "bicubic" : "bilinear");
  snprintf(buf[8], 96, "%s", m->hd.kind == 1 ? "linear" : m->hd.kind == 2 ? "margin" : "none");
  snprintf(buf[9], 96, "%d", m->hd.classes);
  for (int i = 0; i < nm; i++) key[i] = (char *)keys[i], val[i] = buf[i];
  char *names = NULL;
  if (m->nclass_names) {
    names = join_names(m->class_names, m->nclass_names);
    key[nm] = "embr.class_names", val[nm++] = names ? names : "";
  }
  if (s->crop == EMBR_CROP_CENTER || s->alpha == EMBR_ALPHA_WHITE) { /* absent: no crop, alpha ignored */
    snprintf(buf[nm], 96, "%s,%d,%s", s->crop == EMBR_CROP_CENTER ? "center" : "none", s->short_side,
             s->alpha == EMBR_ALPHA_WHITE ? "white" : "ignore");
    key[nm] = "embr.crop", val[nm] = buf[nm], nm++;
  }
  int nt = m->P.n;
  if (m->ops == &embr__clip_ops) {
    const embr_model_params *p = &m->p;
    snprintf(buf[nm], 96, "%d,%d,%d,%d", p->vision.width, p->vision.layers, p->vision.heads, p->vision.patch);
    key[nm] = "embr.vision", val[nm] = buf[nm], nm++;
    snprintf(buf[nm], 96, "%d,%d,%d,%d,%d", p->text.width, p->text.layers, p->text.heads, p->text.context, p->text.vocab);
    key[nm] = "embr.text", val[nm] = buf[nm], nm++;
    key[nm] = "embr.activation", val[nm++] = p->activation == EMBR_ACT_GELU ? "gelu" : "quick_gelu";
    if (m->bpe) { /* the tokenizer travels with the model: its merges file and how many it uses */
      snprintf(buf[nm], 96, "%d", embr_bpe_n_merges(m->bpe));
      key[nm] = "embr.bpe_merges", val[nm] = buf[nm], nm++;
    }
    if (m->bpe_bytes) t[nt++] = (nn_st_out){"embr.bpe", 1, {(int64_t)m->bpe_len}, m->bpe_bytes, NN_ST_U8};
  }
  if (m->ops == &embr__dino_vit_ops) {
    const embr_model_params *p = &m->p;
    snprintf(buf[nm], 96, "%d,%d,%d,%d", p->vision.width, p->vision.layers, p->vision.heads, p->vision.patch);
    key[nm] = "embr.vision", val[nm] = buf[nm], nm++;
    /* positions' size, LayerScale, drop-path rate, pooling */
    snprintf(buf[nm], 96, "%d,%d,%.9g,%s", p->pos_size ? p->pos_size : s->height, p->layer_scale ? 1 : 0,
             (double)p->drop_path, p->embedding_dim == 2 * p->vision.width ? "cls+avg" : "cls");
    key[nm] = "embr.vit", val[nm] = buf[nm], nm++;
  }
  int rc = embr__nn_st_write(path, t, nt, key, val, nm);
  embr_free(names);
  embr_free(t);
  return rc;
}

/* The fields of an embr model file's metadata, every one parsed strictly: a value that is not
 * exactly a number in range (trailing bytes, overflow, a sign where none belongs) is refused before
 * anything is allocated from it. */
static int meta_dims(const nn_st *st, const char *path, embr_image_spec *in) {
  const char *v = embr__nn_st_meta(st, "embr.input");
  int64_t d[3];
  char *end = (char *)v;
  for (int i = 0; v && i < 3; i++) {
    const char *s = end + (i ? 1 : 0);
    if ((i && *end != 'x') || embr__parse_int(s, &end, 1, 4096, &d[i])) v = NULL;
  }
  if (!v || *end)
    return embr_error(EMBR_EFORMAT, "%s: metadata 'embr.input' is missing or not CxHxW (1..4096 each)", path);
  in->channels = (int)d[0], in->height = (int)d[1], in->width = (int)d[2];
  return 0;
}

static int meta_floats(const nn_st *st, const char *key, const char *path, float *out) {
  const char *v = embr__nn_st_meta(st, key);
  char *end = (char *)v;
  for (int i = 0; v && i < 3; i++) {
    const char *s = end + (i ? 1 : 0);
    if ((i && *end != ',') || !((*s >= '0' && *s <= '9') || *s == '-' || *s == '.')) {
      v = NULL;
      break;
    }
    out[i] = strtof(s, &end);
    if (end == s || !isfinite(out[i]) || (!strcmp(key, "embr.std") && !(out[i] > 0))) v = NULL;
  }
  if (!v || *end)
    return embr_error(EMBR_EFORMAT, "%s: metadata '%s' is missing or not three finite numbers%s", path, key,
                      strcmp(key, "embr.std") ? "" : " above 0");
  return 0;
}

static int meta_choice(const nn_st *st, const char *key, const char *path, const char *const *names, int n, int dflt,
                       int *out) {
  const char *v = embr__nn_st_meta(st, key);
  *out = dflt;
  for (int i = 0; v && i < n; i++)
    if (!strcmp(v, names[i])) *out = i;
  if (v && *out == dflt && strcmp(v, names[dflt]))
    return embr_error(EMBR_EFORMAT, "%s: metadata '%s' is not one of %s, %s%s%s", path, key, names[0], names[1],
                      n > 2 ? ", " : "", n > 2 ? names[2] : "");
  return 0;
}

/* "a,b,c,...": n integers in [1, hi] */
static int meta_ints(const nn_st *st, const char *key, const char *path, int n, int64_t hi, int64_t *out) {
  const char *v = embr__nn_st_meta(st, key);
  char *end = (char *)v;
  for (int i = 0; v && i < n; i++) {
    const char *s = end + (i ? 1 : 0);
    if ((i && *end != ',') || embr__parse_int(s, &end, 1, hi, &out[i])) v = NULL;
  }
  if (!v || *end) return embr_error(EMBR_EFORMAT, "%s: metadata '%s' is missing or not %d numbers", path, key, n);
  return 0;
}

static int clip_meta(const nn_st *st, const char *path, embr_model_params *p) {
  static const char *acts[] = {"default", "gelu", "quick_gelu"};
  int64_t v[4], t[5];
  int act = 0;
  int rc = meta_ints(st, "embr.vision", path, 4, 8192, v);
  if (!rc) rc = meta_ints(st, "embr.text", path, 5, 1 << 20, t);
  if (!rc) rc = meta_choice(st, "embr.activation", path, acts, 3, 2, &act);
  if (rc) return rc;
  p->vision = (embr_transformer_params){(int)v[0], (int)v[1], (int)v[2], (int)v[3], 0, 0};
  p->text = (embr_transformer_params){(int)t[0], (int)t[1], (int)t[2], 0, (int)t[3], (int)t[4]};
  p->activation = (embr_activation)act;
  return 0;
}

/* A ViT's "width,layers,heads,patch" and "pos_size,layer_scale(0|1),drop_path,cls|cls+avg". */
static int vit_meta(const nn_st *st, const char *path, embr_model_params *p, int *cls_avg) {
  int64_t v[4];
  int rc = meta_ints(st, "embr.vision", path, 4, 8192, v);
  if (rc) return rc;
  p->vision = (embr_transformer_params){(int)v[0], (int)v[1], (int)v[2], (int)v[3], 0, 0};
  const char *s = embr__nn_st_meta(st, "embr.vit");
  char *end = NULL;
  int64_t pos = 0, ls = -1;
  float dp = -1;
  int ok = s && !embr__parse_int(s, &end, 1, 1 << 20, &pos) && *end == ',' &&
           !embr__parse_int(end + 1, &end, 0, 1, &ls) && *end == ',' && end[1] >= '0' && end[1] <= '9';
  if (ok) {
    const char *f = end + 1;
    dp = strtof(f, &end);
    ok = end != f && dp >= 0 && dp < 1 && *end == ',' && (!strcmp(end + 1, "cls") || !strcmp(end + 1, "cls+avg"));
  }
  if (!ok) return embr_error(EMBR_EFORMAT, "%s: metadata 'embr.vit' is missing or not POS_SIZE,0|1,DROP_PATH,cls|cls+avg", path);
  p->pos_size = (int)pos, p->layer_scale = (int)ls, p->drop_path = dp;
  *cls_avg = strcmp(end + 1, "cls") != 0;
  return 0;
}

/* "center|none,SHORT_SIDE,white|ignore" (absent: no crop, alpha ignored, as files before it) */
static int meta_crop(const nn_st *st, const char *path, embr_image_spec *in) {
  const char *v = embr__nn_st_meta(st, "embr.crop");
  if (!v) return 0;
  char crop[8], alpha[8];
  int short_side, k = 0;
  if (sscanf(v, "%7[a-z],%d,%7[a-z]%n", crop, &short_side, alpha, &k) != 3 || v[k] || short_side < 0 ||
      short_side > 65536 || (strcmp(crop, "center") && strcmp(crop, "none")) || (strcmp(alpha, "white") && strcmp(alpha, "ignore")))
    return embr_error(EMBR_EFORMAT, "%s: metadata 'embr.crop' is not center|none,SHORT_SIDE,white|ignore", path);
  in->crop = strcmp(crop, "center") ? EMBR_CROP_NONE : EMBR_CROP_CENTER;
  in->short_side = short_side;
  in->alpha = strcmp(alpha, "white") ? EMBR_ALPHA_IGNORE : EMBR_ALPHA_WHITE;
  return 0;
}

static int params_from_meta(const nn_st *st, const char *path, embr_model_params *p, int *head, int *classes) {
  static const char *heads[] = {"none", "linear", "margin"}, *resizes[] = {"bilinear", "bicubic"};
  int64_t width, dim, ncls;
  *p = embr_model_params_default();
  p->arch = embr__nn_st_meta(st, "embr.arch");
  if (!p->arch)
    return embr_error(EMBR_EFORMAT, "%s: no embr.arch metadata: not an embr model file (plain PyTorch weights load "
                      "with --arch, see docs/faces.md)", path);
  if (!embr__net_find(p->arch))
    return embr_error(EMBR_EFORMAT, "%s: metadata 'embr.arch' is not resnet18, resnet34, mobilefacenet, clip or vit", path);
  int cls_avg = -1; /* a ViT's pooling, which its embedding size must agree with */
  if (embr__clip_arch(p->arch) || embr__dino_vit_arch(p->arch)) {
    int rc = embr__clip_arch(p->arch) ? clip_meta(st, path, p) : vit_meta(st, path, p, &cls_avg);
    if (rc) return rc;
  }
  int rc = embr__nn_st_meta_int(st, "embr.width", path, 1, 4096, &width), resize = 0;
  if (!rc) rc = embr__nn_st_meta_int(st, "embr.embedding_dim", path, 1, 65536, &dim);
  if (!rc) rc = embr__nn_st_meta_int(st, "embr.classes", path, 0, 1 << 30, &ncls);
  if (!rc) rc = meta_dims(st, path, &p->input);
  if (!rc) rc = meta_floats(st, "embr.mean", path, p->input.mean);
  if (!rc) rc = meta_floats(st, "embr.std", path, p->input.std);
  if (!rc) rc = meta_choice(st, "embr.resize", path, resizes, 2, 0, &resize);
  if (!rc) rc = meta_crop(st, path, &p->input);
  if (!rc) rc = meta_choice(st, "embr.head", path, heads, 3, 0, head);
  if (rc) return rc;
  p->width = (int)width, p->embedding_dim = (int)dim, *classes = *head ? (int)ncls : 0;
  if (cls_avg >= 0 && dim != (int64_t)p->vision.width * (cls_avg ? 2 : 1))
    return embr_error(EMBR_EFORMAT, "%s: metadata 'embr.embedding_dim' %lld does not match the ViT's width %d and pooling %s",
                      path, (long long)dim, p->vision.width, cls_avg ? "cls+avg" : "cls");
  p->input.resize = resize ? EMBR_RESIZE_BICUBIC : EMBR_RESIZE_BILINEAR;
  if (*head && *classes < 1) return embr_error(EMBR_EFORMAT, "%s: a head with no classes", path);
  return 0;
}

static int read_class_names(embr_model *m, const nn_st *st) {
  const char *v = embr__nn_st_meta(st, "embr.class_names");
  if (!v || !m->hd.classes) return 0;
  m->class_names = embr_calloc((size_t)m->hd.classes, sizeof(char *));
  if (!m->class_names) return embr_error(EMBR_ENOMEM, "out of memory");
  for (int i = 0; i < m->hd.classes && *v; i++) {
    const char *e = strchr(v, '\n');
    size_t len = e ? (size_t)(e - v) : strlen(v);
    if (!(m->class_names[i] = embr_strndup(v, len))) return embr_error(EMBR_ENOMEM, "out of memory");
    m->nclass_names++;
    v += len + (e ? 1 : 0);
  }
  return 0;
}

/* A CLIP model's tokenizer: embr.bpe_merges merges of the merges file held in the U8 tensor
 * "embr.bpe" (0 merges: the byte-level tokenizer, no tensor). */
static int read_tokenizer(embr_model *m, const nn_st *st, const char *path) {
  int64_t n = 0;
  if (!embr_model_has_text(m) || !embr__nn_st_meta(st, "embr.bpe_merges")) return 0;
  int rc = embr__nn_st_meta_int(st, "embr.bpe_merges", path, 0, 1 << 20, &n);
  if (rc || n == 0) return rc ? rc : embr__model_take_bpe(m, NULL, 0, path, 0);
  const nn_st_tensor *t = embr__nn_st_find(st, "embr.bpe");
  if (!t || t->dtype != NN_ST_U8 || t->ndim != 1)
    return embr_error(EMBR_EFORMAT, "%s: tensor 'embr.bpe' (the tokenizer's merges) is missing or not bytes", path);
  unsigned char *b = embr_alloc((size_t)t->numel + 1);
  if (!b) return embr_error(EMBR_ENOMEM, "out of memory");
  memcpy(b, t->data, (size_t)t->numel);
  return embr__model_take_bpe(m, b, (size_t)t->numel, path, (int)n);
}

/* Builds the network p describes (its parameter table only), checks that the file holds every
 * tensor of it with the right shape — so no size from the metadata can ask for more memory than
 * the file's own tensors justify — then allocates and loads. NaN/Inf weights are refused. */
static int model_from_st(const nn_st *st, const char *path, const embr_model_params *p, int head, int classes,
                         embr_model **out) {
  int rc = embr__model_build(p, head, classes, out);
  if (rc == EMBR_EINVAL) { /* the sizes the file gave are out of range: say which file */
    char why[256];
    snprintf(why, sizeof why, "%s", embr_last_error());
    rc = embr_error(EMBR_EFORMAT, "%s: %s", path, why);
  }
  if (!rc) rc = embr__nn_params_match(&(*out)->P, st, NULL, path);
  if (!rc) rc = embr__nn_params_init(&(*out)->P, 0);
  if (!rc) rc = embr__nn_params_load(&(*out)->P, st, NULL, path);
  if (!rc) rc = read_class_names(*out, st);
  if (!rc) rc = read_tokenizer(*out, st, path);
  if (rc) {
    embr_model_free(*out);
    *out = NULL;
    /* Building from the file's values reports them without the file ("width 0 out of range"):
     * every message of a load names the file. */
    size_t pl = strlen(path);
    const char *msg = embr_last_error();
    if (strncmp(msg, path, pl) != 0 || msg[pl] != ':') rc = embr_error(rc, "%s: %s", path, msg);
  }
  return rc;
}

static int model_from_embr_file(const nn_st *st, const char *path, embr_model **out) {
  embr_model_params p;
  int head = 0, classes = 0;
  if (!embr__nn_st_meta(st, "embr.arch") && embr__clip_is_foreign(st)) return embr__clip_load_foreign(st, path, NULL, out);
  if (!embr__nn_st_meta(st, "embr.arch") && embr__dino_vit_is_foreign(st))
    return embr__dino_vit_load_foreign(st, path, NULL, out);
  int rc = params_from_meta(st, path, &p, &head, &classes);
  return rc ? rc : model_from_st(st, path, &p, head, classes, out);
}

embr_status embr_model_load(const char *path, embr_model **out) {
  nn_st st;
  *out = NULL;
  int rc = embr__nn_st_open(&st, path);
  if (rc) return rc;
  rc = model_from_embr_file(&st, path, out);
  embr__nn_st_close(&st);
  return rc;
}

embr_status embr_model_load_mem(const void *buf, size_t len, const char *name, embr_model **out) {
  nn_st st;
  *out = NULL;
  if (!name) name = "model";
  int rc = embr__nn_st_parse(&st, buf, len, name);
  if (rc) return rc;
  rc = model_from_embr_file(&st, name, out);
  embr__nn_st_close(&st);
  return rc;
}

/* Width, input channels and embedding size of a plain state dict, read off the network's first
 * tensor (the stem convolution, [width, channels, k, k]) and last (the final batch norm, [dim]):
 * the names come from a probe build, so this holds for every architecture in the table. */
static int infer_sizes(const nn_st *st, const char *path, embr_model_params *p) {
  embr_model_params q = *p;
  q.width = q.width ? q.width : 64, q.embedding_dim = q.embedding_dim ? q.embedding_dim : 128;
  q.input.channels = q.input.channels ? q.input.channels : 3;
  embr_model *probe;
  int rc = embr__model_build(&q, 0, 0, &probe);
  if (rc) return rc;
  const nn_param *first = &probe->P.p[0], *last = &probe->P.p[probe->P.n - 1];
  const nn_st_tensor *a = embr__nn_st_find(st, first->name), *b = embr__nn_st_find(st, last->name);
  if (!a || !b || a->ndim != 4 || b->ndim != 1)
    rc = embr_error(EMBR_EFORMAT, "%s: no tensors '%s' and '%s' of a %s (not its weights, or other names)", path,
                    first->name, last->name, p->arch);
  if (!rc && !p->width) p->width = a->shape[0] <= 4096 ? (int)a->shape[0] : -1;
  if (!rc && !p->input.channels) p->input.channels = a->shape[1] <= 3 ? (int)a->shape[1] : -1;
  if (!rc && !p->embedding_dim) p->embedding_dim = b->shape[0] <= 65536 ? (int)b->shape[0] : -1;
  embr_model_free(probe);
  return rc;
}

embr_status embr_model_load_weights(const char *path, const embr_model_params *p, embr_model **out) {
  nn_st st;
  *out = NULL;
  if (!p) return embr_error(EMBR_EINVAL, "%s: no model parameters", path);
  int rc = embr__nn_st_open(&st, path);
  if (rc) return rc;
  embr_model_params q = *p;
  if (embr__dino_vit_arch(q.arch)) {
    rc = embr__dino_vit_load_foreign(&st, path, &q, out);
    embr__nn_st_close(&st);
    return rc;
  }
  if (!embr__net_find(q.arch)) rc = check_params(&q); /* names the unknown architecture */
  if (!rc) rc = infer_sizes(&st, path, &q);
  if (!rc) rc = model_from_st(&st, path, &q, 0, 0, out);
  embr__nn_st_close(&st);
  return rc;
}

/* The neural-network engine (internal): float32 NCHW tensors in a per-step arena, one flat
 * parameter buffer with a name/shape table, explicit layers (one forward and one backward kernel
 * each) recorded on a tape during a training forward pass and replayed in reverse by backward.
 *
 * Use: a model registers its parameters (embr__nn_param_add), embr__nn_params_init allocates and initialises
 * them; each step: embr__nn_ctx_reset, forward through nn_* ops (NULL in, NULL out: after an allocation
 * failure the ops fall through and ctx->rc holds the error), set the loss gradient, embr__nn_backward. */
#ifndef EMBR_NN_NN_H
#define EMBR_NN_NN_H

#include <stddef.h>
#include <stdint.h>

#include "embr/core.h"

/* ---- parameters ------------------------------------------------------------------------------ */

typedef enum nn_kind {
  NN_WEIGHT = 0, /* trained, weight decay applies */
  NN_NODECAY,    /* trained, no decay (biases, norm scales, PReLU slopes) */
  NN_BUFFER      /* not trained (batch-norm running statistics) */
} nn_kind;

typedef enum nn_init { NN_INIT_ZERO, NN_INIT_ONE, NN_INIT_CONST, NN_INIT_KAIMING, NN_INIT_UNIFORM, NN_INIT_NORMAL } nn_init;

typedef struct nn_param {
  char name[96];
  int ndim;
  int64_t shape[4];
  int64_t off, numel;
  nn_kind kind;
  nn_init init;
  float init_arg; /* CONST: the value; KAIMING: fan; UNIFORM: bound; NORMAL: standard deviation */
} nn_param;

typedef struct nn_params {
  nn_param *p;
  int n, cap;
  int64_t total;
  float *data, *grad; /* total floats each, one block: optimizer and checkpoints are single loops */
  uint64_t version;   /* bumped by every writer of data (init, load, optimizer step) */
  float **derived;    /* per parameter: a transform of it cached for inference (Winograd), or NULL */
  uint64_t *derived_version;
  void *dnnl;         /* oneDNN's folded weights and primitives per convolution (src/nn/dnnl.c) */
} nn_params;

/* Registers a parameter; returns its offset into data/grad (or -1 on failure: ENOMEM, too long
 * a name). */
int64_t embr__nn_param_add(nn_params *P, const char *name, int ndim, const int64_t *shape, nn_kind kind, nn_init init,
                     float init_arg);
int embr__nn_params_init(nn_params *P, uint64_t seed); /* allocates and initialises data */
/* Allocates grad (zeroed) if absent: recording contexts do it (embr__nn_ctx_init), so a model
 * that only embeds holds no gradient buffer. */
int embr__nn_params_grad_alloc(nn_params *P);
void embr__nn_params_free(nn_params *P);
int embr__nn_param_find(const nn_params *P, const char *name); /* index or -1 */
void embr__nn_params_zero_grad(nn_params *P);

/* ---- tensors, arena, tape -------------------------------------------------------------------- */

typedef struct nn_t {
  float *d, *g; /* values; gradient (allocated during backward, NULL until then and after) */
  int n, c, h, w;
  int need_g;   /* an op's output while recording: backward gives it a gradient */
  float *own;   /* inference: the pooled buffer behind d, released after the tensor's last use */
  int pinned;   /* inference: more uses follow (a residual input); embr__nn_unpin releases it */
  int nhwc;     /* inference through oneDNN: the layout, NN_NCHW (0), NN_NHWC (1: (n, h, w, c)) or
                   NN_BLK16 (2: oneDNN's nChw16c, (n, c/16, h, w, 16), c a multiple of 16); ops
                   that read NCHW call embr__nn_plain first */
} nn_t;
enum { NN_NCHW = 0, NN_NHWC = 1, NN_BLK16 = 2 };
static inline int64_t nn_numel(const nn_t *t) { return (int64_t)t->n * t->c * t->h * t->w; }

typedef struct nn_block nn_block;
struct nn_ctx;
typedef void (*nn_backward_fn)(struct nn_ctx *ctx, void *node);

typedef struct nn_ctx {
  nn_block *blocks, *cur, *last; /* arena: a list of blocks, reset each step, pointers stable */
  size_t block_size;
  struct {
    nn_backward_fn fn;
    void *node;
    nn_t *y, *in[2]; /* the op's output and inputs: backward allocates and frees their gradients */
  } *tape;
  int ntape, captape;
  struct {
    float *p;
    size_t cap;
    int used;
  } *pool; /* gradient buffers, reused within and across steps */
  int npool, cappool;
  int training; /* batch norm uses batch statistics (and updates running ones), dropout drops */
  int record;   /* gradients allocated and ops recorded for backward */
  nn_params *P;
  embr_rng rng;
  int rc; /* first error (sticky until reset) */
  int nt; /* threads of the ops' parallel regions (num_threads); init: all cores */
  int slot; /* inference: which of P's oneDNN cache slots this context uses (contexts running at
               once over one P take different slots; embr__dnnl_reserve); init: 0 */
  /* Set by the caller: every attention op copies the class token's row of its probabilities
   * (query 0 over all T keys, per batch item and head) into cls_attn (B x H x T floats, arena
   * memory, replaced by each attention op: after a forward pass it holds the last block's). */
  int keep_cls_attn;
  float *cls_attn;
  int cls_attn_heads, cls_attn_tokens;
} nn_ctx;

void embr__nn_ctx_init(nn_ctx *ctx, nn_params *P, int training, int record, uint64_t seed);
void embr__nn_ctx_reset(nn_ctx *ctx); /* drops the tape and every tensor of the last step */
void embr__nn_ctx_free(nn_ctx *ctx);
void *embr__nn_alloc(nn_ctx *ctx, size_t bytes); /* 64-byte aligned, from the arena; NULL sets ctx->rc */
float *embr__nn_floats(nn_ctx *ctx, int64_t n, int zero);
nn_t *embr__nn_tensor(nn_ctx *ctx, int n, int c, int h, int w); /* wants a gradient when recording */
nn_t *embr__nn_wrap(nn_ctx *ctx, float *data, int n, int c, int h, int w); /* an input: no copy, no gradient */
/* Records an op: backward calls fn(node) once y's gradient is complete, with the inputs' gradient
 * buffers allocated (zeroed) if they want one; y's buffer is recycled afterwards, so gradients
 * take memory only while they are live (activations alone stay for the whole step). */
void embr__nn_record(nn_ctx *ctx, nn_backward_fn fn, void *node, nn_t *y, nn_t *in0, nn_t *in1);
/* Inference (not recording) frees activations as it goes: an op releases its inputs' buffers
 * once it has its output, unless pinned. A model pins a tensor it will read again (a residual
 * block's input) and unpins it after the last read. */
nn_t *embr__nn_done(nn_ctx *ctx, nn_t *x, nn_t *y); /* releases x (when allowed); returns y */
void embr__nn_pin(nn_t *t);
void embr__nn_unpin(nn_ctx *ctx, nn_t *t);
/* Drops one pin without releasing: the next op that takes t as an input owns it (and, when it is
 * the last reader, may release it or reuse its buffer for its output). */
void embr__nn_unpin_keep(nn_t *t);
/* Scratch memory for one op (not zeroed), returned with embr__nn_scratch_put when the op is done:
 * recycled, where the arena would keep every op's scratch until the step ends. */
float *embr__nn_scratch(nn_ctx *ctx, int64_t n);
void embr__nn_scratch_put(nn_ctx *ctx, float *p);
/* The gradient buffer of t (allocated zeroed if absent): callers seed the loss gradient with it. */
float *embr__nn_grad(nn_ctx *ctx, nn_t *t);
void embr__nn_backward(nn_ctx *ctx); /* walks the tape in reverse */
static inline float *nn_pd(const nn_ctx *ctx, int64_t off) { return ctx->P->data + off; }
static inline float *nn_pg(const nn_ctx *ctx, int64_t off) { return ctx->P->grad + off; }

/* ---- layers (descriptors hold parameter offsets) ---------------------------------------------- */

typedef struct nn_conv {
  int in, out, k, stride, pad, groups;
  int64_t w, b; /* weight (out, in/groups, k, k); bias or -1 */
  int widx;     /* the weight's index in the parameter table */
} nn_conv;
typedef struct nn_bn {
  int ch;
  int64_t gamma, beta, mean, var;
  float eps, momentum;
} nn_bn;
typedef struct nn_prelu {
  int ch;
  int64_t a;
} nn_prelu;
typedef struct nn_linear {
  int in, out;
  int64_t w, b; /* weight (out, in) as PyTorch; bias or -1 */
} nn_linear;

/* Registration helpers: names are prefix + ".weight" etc., as PyTorch modules name them. */
int embr__nn_conv_make(nn_params *P, nn_conv *L, const char *prefix, int in, int out, int k, int stride, int pad,
                 int groups, int bias);
int embr__nn_bn_make(nn_params *P, nn_bn *L, const char *prefix, int ch);
int embr__nn_prelu_make(nn_params *P, nn_prelu *L, const char *prefix, int ch);
int embr__nn_linear_make(nn_params *P, nn_linear *L, const char *prefix, int in, int out, int bias);

nn_t *embr__nn_conv2d(nn_ctx *ctx, nn_t *x, const nn_conv *L);
/* Convolution, batch norm (NULL: none), residual add of res (NULL: none), activation, as one op.
 * In inference with oneDNN available (src/nn/dnnl.c) the batch norm is folded into the weights,
 * the add and ReLU run as oneDNN post-ops and PReLU in one pass over the output, which is NHWC
 * (y->nhwc); otherwise (training, recording, EMBR_DNNL=0, a layer oneDNN has no fast kernel
 * for) it is exactly conv2d, batchnorm, add, then relu_/prelu_f, the reference. res is released
 * after use as embr__nn_add does (unless pinned). */
enum { NN_ACT_NONE = 0, NN_ACT_RELU = 1, NN_ACT_PRELU = 2 };
nn_t *embr__nn_conv_bn_act(nn_ctx *ctx, nn_t *x, const nn_conv *L, const nn_bn *bn, nn_t *res, int act,
                           const nn_prelu *pr);
/* x in NCHW: x itself when it is, else an NCHW copy (x released unless pinned). */
nn_t *embr__nn_plain(nn_ctx *ctx, nn_t *x);
nn_t *embr__nn_batchnorm(nn_ctx *ctx, nn_t *x, const nn_bn *L); /* 2-D (C,H,W) or 1-D (h = w = 1) */
nn_t *embr__nn_relu(nn_ctx *ctx, nn_t *x);
/* In place: x's values are overwritten (x must have no other reader, and its producer's
 * backward must not need its own output: true after batch norm and residual add). */
nn_t *embr__nn_relu_(nn_ctx *ctx, nn_t *x);
nn_t *embr__nn_prelu_f(nn_ctx *ctx, nn_t *x, const nn_prelu *L);
nn_t *embr__nn_gelu(nn_ctx *ctx, nn_t *x);
nn_t *embr__nn_maxpool(nn_ctx *ctx, nn_t *x, int k, int stride, int pad);
nn_t *embr__nn_avgpool(nn_ctx *ctx, nn_t *x, int k, int stride, int pad); /* counts padding, as PyTorch's default */
nn_t *embr__nn_global_avgpool(nn_ctx *ctx, nn_t *x);
nn_t *embr__nn_add(nn_ctx *ctx, nn_t *a, nn_t *b);
nn_t *embr__nn_flatten(nn_ctx *ctx, nn_t *x); /* (n, c*h*w, 1, 1), sharing storage */
nn_t *embr__nn_linear_f(nn_ctx *ctx, nn_t *x, const nn_linear *L);
nn_t *embr__nn_dropout(nn_ctx *ctx, nn_t *x, float p);
nn_t *embr__nn_l2norm(nn_ctx *ctx, nn_t *x); /* each row of (n, c*h*w) to unit length */

/* ---- transformer ops -------------------------------------------------------------------------
 * Token tensors are (n = batch, c = tokens, h = 1, w = width): one row of w floats per token, rows
 * of a sequence consecutive. Each op family has its forward and backward side by side:
 * src/nn/layernorm.c, src/nn/attention.c, src/nn/tokens.c (dense, embeddings, ViT tokens, pooling),
 * QuickGELU beside GELU in layers.c. */

/* LayerNorm over the last dimension (w), eps 1e-5 as torch.nn.LayerNorm; parameters
 * prefix.weight (ones) and prefix.bias (zeros). */
typedef struct nn_ln {
  int dim;
  int64_t gamma, beta;
  float eps;
} nn_ln;
int embr__nn_ln_make(nn_params *P, nn_ln *L, const char *prefix, int dim);
nn_t *embr__nn_layernorm(nn_ctx *ctx, nn_t *x, const nn_ln *L);

/* A linear map of the last dimension: every row of x's w = in floats becomes a row of out floats
 * (x (n, c, h, in) -> (n, c, h, out)); a pooled embedding (n, in, 1, 1), as embr__nn_take_token
 * returns, maps to (n, out, 1, 1). The weight is (out, in) as torch.nn.Linear, or (in, out)
 * when t is set (OpenAI's visual.proj and text_projection, applied as x @ W). Names are given
 * whole (OpenAI's attn.in_proj_weight is no prefix + ".weight"); bname NULL: no bias. Init:
 * uniform +-1/sqrt(in) as PyTorch's default (weight and bias), or, when std > 0, normal(std)
 * weights and zero biases (as nn.MultiheadAttention's and the transformer recipes'). */
typedef struct nn_dense {
  int in, out, t;
  int64_t w, b; /* bias or -1 */
} nn_dense;
int embr__nn_dense_make(nn_params *P, nn_dense *L, const char *wname, const char *bname, int in, int out, int t,
                        float std);
nn_t *embr__nn_dense_f(nn_ctx *ctx, nn_t *x, const nn_dense *L);

/* Multi-head self-attention after the fused projection: qkv (B, T, 1, 3D) holds each token's
 * [q | k | v]; the result (B, T, 1, D) is, for each head h of D/heads columns,
 * softmax(Q_h K_h^T / sqrt(D/heads), causal: key j > query i masked) V_h, written at the head's
 * columns. Heads are read and written as strided views of the rows: no split or transpose copy.
 * D must be a multiple of heads. */
nn_t *embr__nn_attention(nn_ctx *ctx, nn_t *qkv, int heads, int causal);
nn_t *embr__nn_quick_gelu(nn_ctx *ctx, nn_t *x); /* x * sigmoid(1.702 x), OpenAI CLIP's activation */

/* Token embedding: ids (B*T, each in [0, vocab)) look up rows of table (vocab, D); pos (T_max >= T,
 * D) adds the first T rows of a learned positional embedding (-1: none). -> (B, T, 1, D). An id
 * out of range is EMBR_EINVAL. */
nn_t *embr__nn_embed_tokens(nn_ctx *ctx, const int32_t *ids, int B, int T, int64_t table, int vocab, int64_t pos,
                            int D);
/* ViT input tokens: patches (B, D, gh, gw) from the stride-P patch convolution -> (B, 1 + gh*gw, 1, D):
 * the class token (parameter cls, D floats) first, then the patches in row-major order, plus the
 * positional embedding (parameter pos, (1 + gh*gw) x D). */
nn_t *embr__nn_vit_tokens(nn_ctx *ctx, nn_t *patches, int64_t cls, int64_t pos);
/* The same with the positions a tensor (1, 1 + gh*gw, 1, D), as embr__nn_pos_resample gives:
 * its gradient flows back through that op. */
nn_t *embr__nn_vit_tokens_pos(nn_ctx *ctx, nn_t *patches, int64_t cls, nn_t *pos);
/* A ViT's learned positions (parameter pos, (1 + M*M) x D: the class token's row, then an M x M
 * grid row-major) for a g x g grid -> (1, 1 + g*g, 1, D): the class row as is, the grid resampled
 * bicubic as DINO's interpolate_pos_encoding (and DINOv2's, and Hugging Face's Dinov2) computes
 * it: torch.nn.functional.interpolate(grid, scale_factor = (g + 0.1) / M, mode = "bicubic",
 * align_corners = False) — Keys' cubic A = -0.75, no antialiasing, source x = (i + 0.5) M /
 * (g + 0.1) - 0.5 — and for g == M the table unchanged. Backward adds into pos's gradient. */
nn_t *embr__nn_pos_resample(nn_ctx *ctx, int64_t pos, int M, int g, int D);
/* Pooling by token index: (B, T, 1, D) -> (B, D, 1, 1), row b taken from token idx[b] (idx NULL:
 * token 0, the class token). The text tower passes each row's EOT position. */
nn_t *embr__nn_take_token(nn_ctx *ctx, nn_t *x, const int32_t *idx);
/* DINO's linear-evaluation features: (B, T, 1, D) -> (B, 2D, 1, 1), row b the class token (token
 * 0) followed by the mean of tokens 1..T-1 (the patches). T >= 2. */
nn_t *embr__nn_cls_avg(nn_ctx *ctx, nn_t *x);

/* LayerScale (DINOv2's ls1/ls2): every row of x times the parameter gamma (x->w floats). */
nn_t *embr__nn_scale_cols(nn_ctx *ctx, nn_t *x, int64_t gamma);
/* Stochastic depth on a residual branch x (n samples): in training with p > 0, each sample
 * kept with probability 1 - p and scaled by 1 / (1 - p), else zeroed whole (one draw from
 * ctx->rng per sample, in order); otherwise x itself (inference, p = 0). p >= 1 is EMBR_EINVAL. */
nn_t *embr__nn_drop_path(nn_ctx *ctx, nn_t *x, float p);

/* ---- losses ------------------------------------------------------------------------------------ */

/* Mean softmax cross-entropy of logits (n, classes); writes the gradient into logits->g when
 * recording; *correct counts argmax hits (may be NULL). Returns the loss. */
double embr__nn_softmax_xent(nn_t *logits, const int32_t *labels, int64_t *correct);

/* The combined-margin head (ArcFace m2, CosFace m3, SphereFace m1): logits_ij = s * cos(theta_ij)
 * for j != y_i and s * (cos(m1 theta + m2) - m3) for the true class, theta the angle between the
 * normalised embedding and class weight; when m1 theta + m2 > pi the target falls back to
 * cos(theta) - m3 - m2 sin(m2) (keeps it monotonic in theta). W: (classes, dim) parameter. */
typedef struct nn_margin {
  int classes, dim;
  int64_t w;
  float m1, m2, m3, s;
} nn_margin;
int embr__nn_margin_make(nn_params *P, nn_margin *L, const char *prefix, int classes, int dim, float m1, float m2, float m3,
                   float s);
nn_t *embr__nn_margin_logits(nn_ctx *ctx, nn_t *emb, const nn_margin *L, const int32_t *labels);

/* CLIP's symmetric InfoNCE. img and txt: (B, E) rows (n = B, c*h*w = E), unnormalised, row i of
 * each a matching pair. logits = exp(s) * normalize(img) normalize(txt)^T (F.normalize's 1e-12
 * floor), loss = (CE(logits, arange B) + CE(logits^T, arange B)) / 2, each CE a mean over rows.
 * s is the parameter at offset logit_scale (one float; OpenAI initialises it to ln(1/0.07)).
 * The clamp is applied here, in the forward: s is clamped into [0, ln 100] before use (so the
 * scale exp(s) stays in [1, 100]) and the stored value is left alone; outside that range its
 * gradient is 0 (at the bounds it passes, as torch.clamp's). A training loop that wants
 * open_clip's behaviour also clamps the stored value after each optimizer step (the loss writes
 * no parameter).
 * group (B entries, or NULL): rows with the same group show the same picture (several captions
 * of one image in a batch); entry (i, j), i != j, of such rows is left out of both softmaxes, so
 * a second caption of the same picture is neither a negative nor a positive. NULL: every
 * off-diagonal entry is a negative (the CLIP paper's loss).
 * Gradients: added into img->g and txt->g (through embr__nn_grad: allocated when the tensor wants
 * one) and, when recording, into ctx->P->grad at logit_scale. *i2t_correct / *t2i_correct (may be
 * NULL): rows whose own text / image has the largest kept logit (ties to the lower index, as
 * torch.argmax). Returns the loss, or NaN with ctx->rc set (shape mismatch, a bad offset, a
 * non-finite s: EMBR_EINVAL/EMBR_EVALUE; ENOMEM). Memory: 2 B^2 + 4 B E floats of scratch. */
double embr__nn_clip_loss(nn_ctx *ctx, nn_t *img, nn_t *txt, int64_t logit_scale, const int32_t *group,
                          int64_t *i2t_correct, int64_t *t2i_correct);


/* ---- DINO (src/nn/dino.c) ----------------------------------------------------------------------
 * The weight-normalised last layer of DINO's head, its loss with centering and sharpening, the
 * center's update and the teacher's EMA: the pieces of facebookresearch/dino's training step that
 * are not a backbone. */

/* torch.nn.utils.weight_norm(nn.Linear(in, out, bias=False)) with the gain frozen (DINO's
 * norm_last_layer): W row k = g_k v_k / ||v_k||; parameters prefix.weight_g (out, 1; a buffer,
 * ones, never trained) and prefix.weight_v (out, in; decayed; PyTorch's default uniform
 * +-1/sqrt(in) init). y = x W^T: x (n, in, 1, 1) -> (n, out, 1, 1). Backward reaches v through the
 * direction: dv_k = g_k / ||v_k|| (dW_k - (dW_k . v^_k) v^_k); g gets no gradient. */
typedef struct nn_wnlin {
  int in, out;
  int64_t g, v;
} nn_wnlin;
int embr__nn_wnlin_make(nn_params *P, nn_wnlin *L, const char *prefix, int in, int out);
nn_t *embr__nn_wnlin_f(nn_ctx *ctx, nn_t *x, const nn_wnlin *L);

/* DINOLoss: student views sg (n_global*B rows of K: the global crops, view-major) and sl
 * (n_local*B rows, or NULL with n_local = 0); teacher (n_global*B x K, the teacher's outputs on
 * the global crops, no gradient). q = softmax((teacher - center) / t_temp), p_v =
 * log_softmax(student_v / s_temp); loss = mean over pairs (teacher view i, student view v != i) of
 * the batch mean of -sum_k q_i log p_v. Gradients go into sg->g and sl->g (embr__nn_grad). Returns
 * the loss, or NaN with ctx->rc set (shapes: EMBR_EINVAL; ENOMEM). *teacher_entropy (may be NULL):
 * the mean entropy of q (nats), a collapse signal (0: one-hot, ln K: uniform). */
double embr__nn_dino_loss(nn_ctx *ctx, nn_t *sg, int n_global, nn_t *sl, int n_local, int B, const float *teacher,
                          const float *center, float t_temp, float s_temp, double *teacher_entropy);
/* center = m center + (1 - m) * mean of the rows of teacher (rows x K): DINO's update_center,
 * run after the loss. */
void embr__nn_dino_center_update(float *center, const float *teacher, int64_t rows, int K, float m);
/* teacher = m teacher + (1 - m) student, over n floats (the whole flat buffers: same table). */
void embr__nn_ema(float *teacher, const float *student, int64_t n, double m, int nt);


/* ---- optimizers -------------------------------------------------------------------------------- */

typedef enum nn_optim_kind { NN_SGD = 0, NN_ADAMW = 1 } nn_optim_kind;

typedef struct nn_optim {
  nn_optim_kind kind;
  float momentum, weight_decay, beta1, beta2, eps;
  float *m, *v; /* state, P->total floats each (v: AdamW only) */
  int64_t step;
  int nt; /* threads of the update (init: all cores) */
  /* Per parameter (P->n entries): the updates it has had (AdamW's bias correction uses its own
   * count, as PyTorch keeps a step per parameter), and skip: set by the caller for a parameter
   * whose gradient is dropped this step (PyTorch's grad = None: no update, no decay, no count;
   * DINO's frozen last layer). */
  int64_t *pstep;
  unsigned char *skip;
  int n; /* entries of pstep and skip */
} nn_optim;

/* SGD: momentum 0.9, decay 5e-4; AdamW: betas 0.9/0.999, eps 1e-8, decay 0.05. */
int embr__nn_optim_init(nn_optim *o, const nn_params *P, nn_optim_kind kind);
void embr__nn_optim_free(nn_optim *o);
/* One update with learning rate lr (PyTorch's SGD and AdamW rules); decay applies to NN_WEIGHT
 * parameters only, buffers are never touched. */
void embr__nn_optim_step(nn_optim *o, nn_params *P, float lr);
/* Scales the gradients so that their global L2 norm is at most max_norm (<= 0: no clipping);
 * returns the norm before clipping. */
double embr__nn_clip_grad(nn_params *P, double max_norm);
/* DINO's clip_gradients: each parameter's gradient scaled to L2 norm at most max_norm on its own
 * (factor max_norm / (norm + 1e-6) when below 1); returns the global norm before clipping. */
double embr__nn_clip_grad_each(nn_params *P, double max_norm);
/* DINO's cosine_scheduler at iteration it of total: `warmup` iterations from start to base as
 * np.linspace (both ends included), then final + (base - final) (1 + cos(pi i / (total - warmup))) / 2. */
double embr__nn_cosine_at(double base, double final, int64_t it, int64_t total, int64_t warmup, double start);
/* Linear warm-up over `warmup` steps, then cosine decay to 0 at `total`. */
double embr__nn_lr_at(double base, int64_t step, int64_t warmup, int64_t total);

/* ---- safetensors ------------------------------------------------------------------------------
 * The format PyTorch users share weights in: an 8-byte little-endian header length, a JSON header
 * {name: {dtype, shape, data_offsets}, "__metadata__": {string: string}}, then the raw data. */

/* dtypes, indices into the reader's table: the float ones first (loadable), then the others
 * (accepted in a file, checked, never loaded). */
enum { NN_ST_F32 = 0, NN_ST_F16 = 1, NN_ST_BF16 = 2, NN_ST_FLOAT_DTYPES = 3, NN_ST_I64 = 4, NN_ST_U8 = 8, NN_ST_NDTYPES = 13 };

typedef struct nn_st_tensor {
  char *name;
  int dtype; /* NN_ST_F32, NN_ST_F16, NN_ST_BF16, or an index >= NN_ST_FLOAT_DTYPES (not loadable) */
  int ndim;
  int64_t shape[8];
  int64_t numel;
  const unsigned char *data;
} nn_st_tensor;

typedef struct nn_st {
  nn_st_tensor *t;
  int n;
  char **meta_key, **meta_val;
  int nmeta;
  void *file; /* the mapped file */
} nn_st;

int embr__nn_st_open(nn_st *st, const char *path);
int embr__nn_st_parse(nn_st *st, const unsigned char *buf, size_t len, const char *name); /* buf must outlive st */
void embr__nn_st_close(nn_st *st);
const nn_st_tensor *embr__nn_st_find(const nn_st *st, const char *name);
const char *embr__nn_st_meta(const nn_st *st, const char *key); /* NULL if absent */
/* Metadata `key` as an integer in [lo, hi], parsed strictly; missing or anything else is
 * EMBR_EFORMAT naming the file and the key. */
int embr__nn_st_meta_int(const nn_st *st, const char *key, const char *path, int64_t lo, int64_t hi, int64_t *out);
/* Copies float tensor `t` (dtype < NN_ST_FLOAT_DTYPES) into dst (numel floats), converting F16/BF16. */
void embr__nn_st_read_f32(const nn_st_tensor *t, float *dst);
const char *embr__nn_st_dtype_name(int dtype);
/* Checks, without reading data, that every parameter of P has a float tensor of its shape in st
 * (`prefix` prepended to P's names when looking up, NULL: none). Run before P's buffers are
 * allocated, it bounds them by the file's own size. An error names the file and the tensor. */
int embr__nn_params_match(const nn_params *P, const nn_st *st, const char *prefix, const char *path);
/* Loads every parameter of P by name: a missing tensor, a shape or dtype mismatch (as
 * embr__nn_params_match) or a NaN/Inf value (EMBR_EVALUE) is an error naming it; tensors of the
 * file not in P (integer buffers, a classifier the model lacks) are ignored. */
int embr__nn_params_load(nn_params *P, const nn_st *st, const char *prefix, const char *path);
/* The same into another buffer laid out like P->data (optimizer state, for example). */
int embr__nn_params_load_into(const nn_params *P, const nn_st *st, const char *prefix, const char *path, float *base);

/* A tensor to write: name, shape, data (float32, or int64_t when dtype is NN_ST_I64). */
typedef struct nn_st_out {
  const char *name;
  int ndim;
  int64_t shape[4];
  const void *data;
  int dtype; /* NN_ST_F32 (0, the default), NN_ST_I64 or NN_ST_U8 (bytes: a CLIP model's tokenizer) */
} nn_st_out;
/* Parameter i of P as a tensor to write, its values taken from `base` (laid out like P->data). */
nn_st_out embr__nn_st_out_of(const nn_params *P, int i, const float *base);
/* Writes atomically (temporary file, fsync, rename). meta: nmeta key/value pairs. */
int embr__nn_st_write(const char *path, const nn_st_out *t, int n, char *const *meta_key, char *const *meta_val, int nmeta);

#endif

/* The text side of a CLIP model's public API: its tokenizer (the BPE merges it was trained with,
 * carried in the model file) and text / token-id embedding in batches, in inference mode. */
#include <string.h>

#include "core/fileio.h"
#include "embr/text.h"
#include "models/clip.h"

static clip_net *text_net(const embr_model *m) { return m->ops == &embr__clip_ops ? m->net : NULL; }

int embr_model_has_text(const embr_model *m) { return text_net(m) != NULL; }
int embr_model_context(const embr_model *m) { return text_net(m) ? text_net(m)->context : 0; }
int embr_model_has_tokenizer(const embr_model *m) { return text_net(m) && m->bpe; }

/* Takes the tokenizer read from bytes (owned by the model afterwards) when its vocabulary is the
 * text tower's; bytes NULL: the byte-level tokenizer with no merges. */
int embr__model_take_bpe(embr_model *m, unsigned char *bytes, size_t len, const char *name, int n_merges) {
  clip_net *c = text_net(m);
  embr_bpe *b = NULL;
  int rc = !c ? embr_error(EMBR_EINVAL, "the model has no text tower")
           : bytes ? embr_bpe_load_mem(bytes, len, name, n_merges, &b)
                   : embr_bpe_create_bytes(&b);
  if (!rc && embr_bpe_vocab_size(b) != c->vocab)
    rc = embr_error(EMBR_EFORMAT, "%s: the tokenizer has %d tokens, the model's text tower %d", name,
                    (int)embr_bpe_vocab_size(b), c->vocab);
  if (rc) {
    embr_bpe_free(b);
    embr_free(bytes);
    return rc;
  }
  embr_bpe_free(m->bpe);
  embr_free(m->bpe_bytes);
  m->bpe = b, m->bpe_bytes = bytes, m->bpe_len = len;
  return 0;
}

embr_status embr_model_set_tokenizer(embr_model *m, const char *merges_path) {
  if (!merges_path) return embr__model_take_bpe(m, NULL, 0, "byte tokenizer", 0);
  embr__filemap fm;
  int rc = embr__filemap_open(&fm, merges_path, (size_t)EMBR_BPE_MAX_BYTES);
  if (rc) return rc;
  unsigned char *bytes = embr_alloc(fm.len ? fm.len : 1);
  if (bytes && fm.len) memcpy(bytes, fm.data, fm.len);
  size_t len = fm.len;
  embr__filemap_close(&fm);
  return bytes ? embr__model_take_bpe(m, bytes, len, merges_path, 0) : embr_error(EMBR_ENOMEM, "out of memory");
}

embr_status embr_model_embed_tokens(embr_model *m, const int32_t *ids, int64_t n, int batch, float *out) {
  clip_net *c = text_net(m);
  if (!c) return embr_error(EMBR_EINVAL, "the model has no text tower (a %s)", m->arch);
  if (n < 0 || batch < 1) return embr_error(EMBR_EINVAL, "bad text count or batch size");
  m->infer.nt = embr_threads_resolve(m->n_threads);
  int dim = m->p.embedding_dim;
  for (int64_t i = 0; i < n; i += batch) {
    int nb = (int)(n - i < batch ? n - i : batch);
    embr__nn_ctx_reset(&m->infer);
    nn_t *y = embr__clip_forward_text(&m->infer, c, ids + i * c->context, nb);
    if (!y) return m->infer.rc ? m->infer.rc : embr_error(EMBR_ENOMEM, "out of memory");
    memcpy(out + i * dim, y->d, sizeof(float) * (size_t)nb * (size_t)dim);
  }
  embr__nn_ctx_reset(&m->infer);
  return 0;
}

embr_status embr_model_tokenize(const embr_model *m, const char *const *texts, int64_t n, int32_t *ids,
                                int64_t *n_truncated) {
  clip_net *c = text_net(m);
  if (!c) return embr_error(EMBR_EINVAL, "the model has no text tower (a %s)", m->arch);
  if (!m->bpe)
    return embr_error(EMBR_EINVAL, "the model has no tokenizer: give the CLIP merges file (bpe_simple_vocab_16e6.txt.gz)");
  if (n_truncated) *n_truncated = 0;
  for (int64_t i = 0; i < n; i++) {
    int full = 0;
    int rc = embr_bpe_encode(m->bpe, texts[i], c->context, ids + i * c->context, &full);
    if (rc) return rc;
    if (n_truncated && full > c->context) ++*n_truncated;
  }
  return 0;
}

embr_status embr_model_embed_texts(embr_model *m, const char *const *texts, int64_t n, int batch, float *out,
                                   int64_t *n_truncated) {
  clip_net *c = text_net(m);
  if (!c) return embr_error(EMBR_EINVAL, "the model has no text tower (a %s)", m->arch);
  if (n < 0 || batch < 1) return embr_error(EMBR_EINVAL, "bad text count or batch size");
  int32_t *ids = embr_alloc(sizeof(int32_t) * (size_t)c->context * (size_t)(batch < n ? batch : (n ? n : 1)));
  if (!ids) return embr_error(EMBR_ENOMEM, "out of memory");
  if (n_truncated) *n_truncated = 0;
  int rc = 0;
  for (int64_t i = 0; i < n && !rc; i += batch) {
    int64_t nb = n - i < batch ? n - i : batch, cut = 0;
    rc = embr_model_tokenize(m, texts + i, nb, ids, &cut);
    if (!rc) rc = embr_model_embed_tokens(m, ids, nb, batch, out + i * m->p.embedding_dim);
    if (n_truncated) *n_truncated += cut;
  }
  embr_free(ids);
  return rc;
}

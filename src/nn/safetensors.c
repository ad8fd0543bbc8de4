/* safetensors read and write. The reader treats the file as hostile: the header length, every
 * shape and every data range are checked against the file before anything is used. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/parse.h"
#include "nn/nn.h"

#define MAX_HEADER ((uint64_t)100 << 20)

/* A name from the file, fit for a one-line message: at most 60 bytes, control bytes as '?'. */
static const char *safe(const char *s, char *buf) {
  size_t i = 0;
  for (; s && s[i] && i < 60; i++) buf[i] = (unsigned char)s[i] < 32 || s[i] == 127 ? '?' : s[i];
  buf[i] = 0;
  return buf;
}

/* The first NN_ST_FLOAT_DTYPES are read as weights; the others (PyTorch keeps integer buffers such
 * as batch norm's num_batches_tracked in every state dict) are parsed and checked like any tensor
 * so the file is accepted, but never loaded into a model. */
static const char *dtype_names[NN_ST_NDTYPES] = {"F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8",
                                                 "U8",  "U16", "U32",  "U64", "BOOL"};
static const int dtype_size[NN_ST_NDTYPES] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 2, 4, 8, 1};

void embr__nn_st_close(nn_st *st) {
  for (int i = 0; i < st->n; i++) free(st->t[i].name);
  for (int i = 0; i < st->nmeta; i++) free(st->meta_key[i]), free(st->meta_val[i]);
  free(st->t);
  free(st->meta_key);
  free(st->meta_val);
  if (st->file) {
    embr__filemap_close(st->file);
    free(st->file);
  }
  memset(st, 0, sizeof(*st));
}

static int parse_meta(nn_st *st, const cJSON *m, const char *name) {
  char nb[64];
  if (st->meta_key) return embr_error(EMBR_EFORMAT, "%s: __metadata__ appears twice", name);
  int n = cJSON_GetArraySize(m);
  st->meta_key = calloc((size_t)n + 1, sizeof(char *));
  st->meta_val = calloc((size_t)n + 1, sizeof(char *));
  if (!st->meta_key || !st->meta_val) return embr_error(EMBR_ENOMEM, "out of memory");
  for (const cJSON *e = m->child; e; e = e->next) {
    if (!cJSON_IsString(e)) return embr_error(EMBR_EFORMAT, "%s: metadata value of '%s' is not a string", name, safe(e->string, nb));
    st->meta_key[st->nmeta] = strdup(e->string);
    st->meta_val[st->nmeta] = strdup(e->valuestring);
    if (!st->meta_key[st->nmeta] || !st->meta_val[st->nmeta]) return embr_error(EMBR_ENOMEM, "out of memory");
    st->nmeta++;
  }
  return 0;
}

static int parse_tensor(nn_st_tensor *t, const cJSON *e, const unsigned char *data, uint64_t dlen, const char *name) {
  char nb[64], nb2[64];
  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype"), *sh = cJSON_GetObjectItemCaseSensitive(e, "shape"),
              *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
  if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2)
    return embr_error(EMBR_EFORMAT, "%s: tensor '%s' lacks dtype, shape or data_offsets", name, safe(e->string, nb));
  t->dtype = -1;
  for (int i = 0; i < NN_ST_NDTYPES; i++)
    if (!strcmp(dt->valuestring, dtype_names[i])) t->dtype = i;
  if (t->dtype < 0)
    return embr_error(EMBR_EUNSUPPORTED, "%s: tensor '%s' has unknown dtype %s", name, safe(e->string, nb),
                      safe(dt->valuestring, nb2));
  t->ndim = cJSON_GetArraySize(sh);
  if (t->ndim > 8) return embr_error(EMBR_EFORMAT, "%s: tensor '%s' has %d dimensions", name, safe(e->string, nb), t->ndim);
  uint64_t numel = 1;
  int i = 0;
  for (const cJSON *d = sh->child; d; d = d->next, i++) {
    if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1e15 || d->valuedouble != (double)(int64_t)d->valuedouble)
      return embr_error(EMBR_EFORMAT, "%s: tensor '%s' has a bad shape", name, safe(e->string, nb));
    t->shape[i] = (int64_t)d->valuedouble;
    if (t->shape[i] && numel > UINT64_MAX / 8 / (uint64_t)t->shape[i])
      return embr_error(EMBR_EFORMAT, "%s: tensor '%s' is too large", name, safe(e->string, nb));
    numel *= (uint64_t)t->shape[i];
  }
  double b = cJSON_GetArrayItem(off, 0)->valuedouble, en = cJSON_GetArrayItem(off, 1)->valuedouble;
  if (!cJSON_IsNumber(cJSON_GetArrayItem(off, 0)) || !cJSON_IsNumber(cJSON_GetArrayItem(off, 1)) || b < 0 || en < b ||
      en > (double)dlen || (uint64_t)en - (uint64_t)b != numel * (uint64_t)dtype_size[t->dtype])
    return embr_error(EMBR_EFORMAT, "%s: tensor '%s' has data offsets outside the file or not matching its shape", name,
                      safe(e->string, nb));
  t->numel = (int64_t)numel;
  t->data = data + (uint64_t)b;
  t->name = strdup(e->string);
  return t->name ? 0 : embr_error(EMBR_ENOMEM, "out of memory");
}

int embr__nn_st_parse(nn_st *st, const unsigned char *buf, size_t len, const char *name) {
  char nb[64];
  memset(st, 0, sizeof(*st));
  if (!name) name = "safetensors";
  if (len < 8) return embr_error(EMBR_EFORMAT, "%s: too short for a safetensors file", name);
  uint64_t hl = 0;
  for (int i = 7; i >= 0; i--) hl = hl << 8 | buf[i];
  if (hl > len - 8 || hl > MAX_HEADER || hl < 2)
    return embr_error(EMBR_EFORMAT, "%s: header length %llu does not fit the file (%zu bytes): not safetensors?", name,
                      (unsigned long long)hl, len);
  cJSON *root = cJSON_ParseWithLength((const char *)buf + 8, (size_t)hl);
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return embr_error(EMBR_EFORMAT, "%s: the header is not a JSON object", name);
  }
  int rc = 0, n = cJSON_GetArraySize(root);
  st->t = calloc((size_t)n + 1, sizeof(nn_st_tensor));
  if (!st->t) rc = embr_error(EMBR_ENOMEM, "out of memory");
  for (const cJSON *e = root->child; e && !rc; e = e->next) {
    if (!strcmp(e->string, "__metadata__")) {
      rc = cJSON_IsObject(e) ? parse_meta(st, e, name) : embr_error(EMBR_EFORMAT, "%s: __metadata__ is not an object", name);
      continue;
    }
    if (!cJSON_IsObject(e)) {
      rc = embr_error(EMBR_EFORMAT, "%s: entry '%s' is not an object", name, safe(e->string, nb));
      continue;
    }
    rc = parse_tensor(&st->t[st->n], e, buf + 8 + hl, len - 8 - hl, name);
    if (!rc) st->n++;
  }
  cJSON_Delete(root);
  if (rc) embr__nn_st_close(st);
  return rc;
}

int embr__nn_st_open(nn_st *st, const char *path) {
  embr__filemap *fm = malloc(sizeof(*fm));
  if (!fm) return embr_error(EMBR_ENOMEM, "out of memory");
  int rc = embr__filemap_open(fm, path, EMBR__READ_ANY);
  if (rc) {
    free(fm);
    memset(st, 0, sizeof(*st));
    return rc;
  }
  rc = embr__nn_st_parse(st, fm->data, fm->len, path);
  if (rc) {
    embr__filemap_close(fm);
    free(fm);
    return rc;
  }
  st->file = fm;
  return 0;
}

const nn_st_tensor *embr__nn_st_find(const nn_st *st, const char *name) {
  for (int i = 0; i < st->n; i++)
    if (!strcmp(st->t[i].name, name)) return &st->t[i];
  return NULL;
}

const char *embr__nn_st_meta(const nn_st *st, const char *key) {
  for (int i = 0; i < st->nmeta; i++)
    if (!strcmp(st->meta_key[i], key)) return st->meta_val[i];
  return NULL;
}

int embr__nn_st_meta_int(const nn_st *st, const char *key, const char *path, int64_t lo, int64_t hi, int64_t *out) {
  const char *v = embr__nn_st_meta(st, key);
  if (!v) return embr_error(EMBR_EFORMAT, "%s: metadata '%s' is missing", path, key);
  if (embr__parse_int_full(v, lo, hi, out))
    return embr_error(EMBR_EFORMAT, "%s: metadata '%s' is not an integer in %lld..%lld", path, key, (long long)lo,
                      (long long)hi);
  return 0;
}

static float half_to_float(uint16_t h) {
  uint32_t s = (uint32_t)(h >> 15) << 31, e = h >> 10 & 31, m = h & 1023, bits;
  if (e == 0) { /* zero or subnormal: m * 2^-24 */
    float f = (float)m / 16777216.0f;
    return s ? -f : f;
  }
  if (e == 31) bits = s | 0x7f800000u | m << 13;
  else bits = s | (e + 112) << 23 | m << 13;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

void embr__nn_st_read_f32(const nn_st_tensor *t, float *dst) {
  const unsigned char *p = t->data;
  for (int64_t i = 0; i < t->numel; i++) {
    if (t->dtype == 0) {
      uint32_t b = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
      memcpy(&dst[i], &b, 4);
    } else {
      uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
      if (t->dtype == 1) {
        dst[i] = half_to_float(h);
      } else {
        uint32_t b = (uint32_t)h << 16;
        memcpy(&dst[i], &b, 4);
      }
    }
  }
}

static void shape_str(const int64_t *shape, int ndim, char *out, size_t cap) {
  size_t o = 0;
  out[0] = 0;
  for (int i = 0; i < ndim && o < cap; i++) o += (size_t)snprintf(out + o, cap - o, i ? "x%lld" : "%lld", (long long)shape[i]);
}

const char *embr__nn_st_dtype_name(int dtype) { return dtype >= 0 && dtype < NN_ST_NDTYPES ? dtype_names[dtype] : "?"; }

int embr__nn_params_match(const nn_params *P, const nn_st *st, const char *prefix, const char *path) {
  char name[256], a[96], b[96];
  for (int k = 0; k < P->n; k++) {
    const nn_param *q = &P->p[k];
    snprintf(name, sizeof(name), "%s%s", prefix ? prefix : "", q->name);
    const nn_st_tensor *t = embr__nn_st_find(st, name);
    if (!t) return embr_error(EMBR_EFORMAT, "%s: tensor '%s' is missing", path, name);
    if (t->dtype >= NN_ST_FLOAT_DTYPES)
      return embr_error(EMBR_EFORMAT, "%s: tensor '%s' has dtype %s, the model expects F32, F16 or BF16", path, name,
                        dtype_names[t->dtype]);
    int same = t->ndim == q->ndim;
    for (int i = 0; i < q->ndim && same; i++) same = t->shape[i] == q->shape[i];
    if (!same) {
      shape_str(q->shape, q->ndim, a, sizeof(a));
      shape_str(t->shape, t->ndim, b, sizeof(b));
      return embr_error(EMBR_EFORMAT, "%s: tensor '%s' has shape %s, the model expects %s", path, name, b, a);
    }
  }
  return 0;
}

int embr__nn_params_load_into(const nn_params *P, const nn_st *st, const char *prefix, const char *path, float *base) {
  int rc = embr__nn_params_match(P, st, prefix, path);
  char name[256];
  for (int k = 0; k < P->n && !rc; k++) {
    const nn_param *q = &P->p[k];
    snprintf(name, sizeof(name), "%s%s", prefix ? prefix : "", q->name);
    float *d = base + q->off;
    embr__nn_st_read_f32(embr__nn_st_find(st, name), d);
    /* A NaN or Inf weight would turn every embedding into NaN without a word: refuse it here. */
    for (int64_t i = 0; i < q->numel; i++)
      if (!isfinite(d[i]))
        return embr_error(EMBR_EVALUE, "%s: tensor '%s' holds a non-finite value (%g) at element %lld", path, name,
                          (double)d[i], (long long)i);
  }
  return rc;
}

int embr__nn_params_load(nn_params *P, const nn_st *st, const char *prefix, const char *path) {
  int rc = embr__nn_params_load_into(P, st, prefix, path, P->data);
  P->version++;
  return rc;
}

nn_st_out embr__nn_st_out_of(const nn_params *P, int i, const float *base) {
  const nn_param *q = &P->p[i];
  nn_st_out o = {.name = q->name, .ndim = q->ndim, .data = base + q->off, .dtype = NN_ST_F32};
  memcpy(o.shape, q->shape, sizeof(o.shape));
  return o;
}

static int write_header(embr__wfile *w, const nn_st_out *t, int n, char *const *mk, char *const *mv, int nmeta) {
  cJSON *root = cJSON_CreateObject(), *meta = nmeta ? cJSON_AddObjectToObject(root, "__metadata__") : NULL;
  int rc = root ? 0 : embr_error(EMBR_ENOMEM, "out of memory");
  for (int i = 0; i < nmeta && !rc; i++)
    if (!cJSON_AddStringToObject(meta, mk[i], mv[i])) rc = embr_error(EMBR_ENOMEM, "out of memory");
  uint64_t off = 0;
  for (int i = 0; i < n && !rc; i++) {
    cJSON *e = cJSON_AddObjectToObject(root, t[i].name), *sh = e ? cJSON_AddArrayToObject(e, "shape") : NULL;
    uint64_t numel = 1;
    for (int d = 0; sh && d < t[i].ndim; d++) {
      cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t[i].shape[d]));
      numel *= (uint64_t)t[i].shape[d];
    }
    uint64_t bytes = (uint64_t)dtype_size[t[i].dtype] * numel;
    double range[2] = {(double)off, (double)(off + bytes)};
    cJSON *o = cJSON_CreateDoubleArray(range, 2);
    if (!sh || !o || !cJSON_AddStringToObject(e, "dtype", dtype_names[t[i].dtype])) rc = embr_error(EMBR_ENOMEM, "out of memory");
    cJSON_AddItemToObject(e, "data_offsets", o);
    off += bytes;
  }
  char *js = rc ? NULL : cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (!rc && !js) rc = embr_error(EMBR_ENOMEM, "out of memory");
  if (rc) return rc;
  size_t len = strlen(js), padded = (len + 7) & ~(size_t)7; /* data starts 8-byte aligned */
  unsigned char hl[8];
  for (int i = 0; i < 8; i++) hl[i] = (unsigned char)((uint64_t)padded >> (8 * i));
  embr__wfile_write(w, hl, 8);
  embr__wfile_write(w, js, len);
  for (size_t i = len; i < padded; i++) embr__wfile_write(w, " ", 1);
  free(js);
  return 0;
}

int embr__nn_st_write(const char *path, const nn_st_out *t, int n, char *const *meta_key, char *const *meta_val, int nmeta) {
  for (int i = 0; i < n; i++)
    if (t[i].dtype != NN_ST_F32 && t[i].dtype != NN_ST_I64 && t[i].dtype != NN_ST_U8)
      return embr_error(EMBR_EINVAL, "%s: tensor '%s': only F32, I64 and U8 are written", path, t[i].name);
  embr__wfile w;
  int rc = embr__wfile_open(&w, path);
  if (rc) return rc;
  rc = write_header(&w, t, n, meta_key, meta_val, nmeta);
  for (int i = 0; i < n && !rc; i++) {
    int64_t numel = 1;
    for (int d = 0; d < t[i].ndim; d++) numel *= t[i].shape[d];
    rc = embr__wfile_write(&w, t[i].data, (size_t)dtype_size[t[i].dtype] * (size_t)numel); /* x86-64 is little-endian, as the format */
  }
  if (rc) {
    embr__wfile_abort(&w);
    return rc;
  }
  return embr__wfile_commit(&w);
}

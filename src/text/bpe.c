/* Byte-level BPE as OpenAI's CLIP tokenizes captions: the merges file, the vocabulary built from
 * it, and the merging of pieces by rank. See include/embr/text.h.
 *
 * Symbols are token ids. The vocabulary is a list of strings (the 256 byte characters, the same
 * with "</w>", one concatenation per merge, the two special tokens); a string that occurs twice
 * belongs to its later id, as in a Python dict built from the list, so every string has one
 * canonical id and comparing ids is comparing strings. Merges live in an open-addressing table
 * from (left id, right id) to (rank, merged id).
 *
 * Merging a piece follows the reference's semantics exactly: the adjacent pair of lowest rank is
 * chosen, then every occurrence of that pair is merged in one left-to-right pass (overlaps go to
 * the leftmost), then the next lowest pair, until no pair has a rank. It runs in O(n log n) with a
 * heap of (rank, position) over a linked list of symbols: all entries of the lowest rank are taken
 * off the heap before any is applied, and applied in position order, which is that one pass;
 * stale entries are recognised by checking the pair's rank at apply time. No cache: every call
 * works in its own buffers, so encodes on one tokenizer may run on any number of threads. */
#include "embr/text.h"

#include "core/fileio.h"
#include "text/clip_clean.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct embr_bpe {
  int n_merges;
  int32_t vocab_size, sot, eot;
  int32_t first[256], last[256]; /* canonical id of a byte as a symbol, and as a word's last one */
  /* token strings, NUL-terminated, at str + off[id] */
  char *str;
  size_t *off;
  /* merges: key (left << 32 | right), EMPTY_KEY when free */
  uint64_t *key;
  int32_t *rank, *merged;
  size_t mask;
};

#define EMPTY_KEY UINT64_MAX
#define CLIP_HEADER_TAG "#version"

/* ---- bytes <-> characters ---------------------------------------------------------------------- */

/* CLIP's reversible map: printable Latin-1 bytes ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) stand
 * for themselves, the other 68 bytes for U+0100 onwards in byte order. order[i] is the byte of
 * vocabulary entry i (printable ones first). */
static int printable(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255); }

static void byte_order(int order[256], int32_t chr[256]) {
  int n = 0, extra = 0;
  for (int b = 0; b < 256; b++)
    if (printable(b)) order[n++] = b;
  for (int b = 0; b < 256; b++)
    if (!printable(b)) order[n++] = b;
  for (int b = 0; b < 256; b++) chr[b] = printable(b) ? b : 256 + extra++;
}

/* The byte a vocabulary character stands for, or -1. */
static int char_byte(int32_t c) {
  if (c < 256) return printable((int)c) ? (int)c : -1;
  if (c >= 256 + 68) return -1;
  int k = (int)c - 256;
  for (int b = 0; b < 256; b++)
    if (!printable(b) && k-- == 0) return b;
  return -1;
}

/* ---- hashing ----------------------------------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

static uint64_t mix64(uint64_t x) { /* splitmix64's finaliser */
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static size_t pow2_at_least(size_t n) {
  size_t p = 16;
  while (p < n) p *= 2;
  return p;
}

/* A temporary map from token string to its canonical (last) id. */
typedef struct strmap {
  int32_t *slot; /* id or -1 */
  size_t mask;
  const embr_bpe *b;
} strmap;

static const char *tok(const embr_bpe *b, int32_t id) { return b->str + b->off[id]; }
static size_t tok_len(const embr_bpe *b, int32_t id) { return b->off[id + 1] - b->off[id] - 1; }

static size_t strmap_pos(const strmap *m, const char *s, size_t n) {
  size_t h = (size_t)hash_bytes(s, n) & m->mask;
  for (;;) {
    int32_t id = m->slot[h];
    if (id < 0 || (tok_len(m->b, id) == n && memcmp(tok(m->b, id), s, n) == 0)) return h;
    h = (h + 1) & m->mask;
  }
}

static int32_t strmap_find(const strmap *m, const char *s, size_t n) { return m->slot[strmap_pos(m, s, n)]; }

static size_t pair_pos(const embr_bpe *b, uint64_t key) {
  size_t h = (size_t)mix64(key) & b->mask;
  while (b->key[h] != EMPTY_KEY && b->key[h] != key) h = (h + 1) & b->mask;
  return h;
}

/* Rank of the pair (l, r) and its merged id, or -1. */
static int32_t pair_rank(const embr_bpe *b, int32_t l, int32_t r, int32_t *merged) {
  if (!b->key) return -1;
  size_t h = pair_pos(b, (uint64_t)(uint32_t)l << 32 | (uint32_t)r);
  if (b->key[h] == EMPTY_KEY) return -1;
  *merged = b->merged[h];
  return b->rank[h];
}

/* ---- loading ----------------------------------------------------------------------------------- */

void embr_bpe_free(embr_bpe *b) {
  if (!b) return;
  embr_free(b->str);
  embr_free(b->off);
  embr_free(b->key);
  embr_free(b->rank);
  embr_free(b->merged);
  embr_free(b);
}

/* Inflates a gzip stream (one or more members) of at most EMBR_BPE_MAX_BYTES. */
static embr_status gunzip(const unsigned char *in, size_t len, const char *name, unsigned char **out,
                          size_t *out_len) {
  size_t cap = len * 3 + 1024;
  if (cap > EMBR_BPE_MAX_BYTES) cap = EMBR_BPE_MAX_BYTES;
  unsigned char *buf = embr_alloc(cap);
  if (!buf) return embr_error(EMBR_ENOMEM, "%s: out of memory inflating", name);
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit2(&z, 15 + 16) != Z_OK) {
    embr_free(buf);
    return embr_error(EMBR_ENOMEM, "%s: cannot start zlib", name);
  }
  size_t used = 0, pos = 0;
  embr_status rc = 0;
  for (;;) {
    if (used == cap) {
      if (cap >= EMBR_BPE_MAX_BYTES) {
        rc = embr_error(EMBR_EFORMAT, "%s: inflates to more than %d bytes", name, EMBR_BPE_MAX_BYTES);
        break;
      }
      size_t ncap = cap * 2 > EMBR_BPE_MAX_BYTES ? EMBR_BPE_MAX_BYTES : cap * 2;
      unsigned char *nb = embr_realloc(buf, cap, ncap);
      if (!nb) {
        rc = embr_error(EMBR_ENOMEM, "%s: out of memory inflating", name);
        break;
      }
      buf = nb;
      cap = ncap;
    }
    size_t avail_in = len - pos;
    z.next_in = (unsigned char *)(uintptr_t)(in + pos);
    z.avail_in = avail_in > UINT_MAX ? UINT_MAX : (unsigned)avail_in;
    z.next_out = buf + used;
    z.avail_out = (unsigned)(cap - used > UINT_MAX ? UINT_MAX : cap - used);
    unsigned in_before = z.avail_in, out_before = z.avail_out;
    int zr = inflate(&z, Z_NO_FLUSH);
    pos += in_before - z.avail_in;
    used += out_before - z.avail_out;
    if (zr == Z_STREAM_END) {
      if (pos == len) break;
      if (len - pos < 2 || in[pos] != 0x1f || in[pos + 1] != 0x8b) {
        rc = embr_error(EMBR_EFORMAT, "%s: data after the gzip stream", name);
        break;
      }
      inflateReset(&z); /* another member */
      continue;
    }
    if (zr == Z_OK) continue;
    if (zr == Z_BUF_ERROR && z.avail_out > 0) {
      rc = embr_error(EMBR_EFORMAT, "%s: truncated gzip stream", name);
      break;
    }
    if (zr == Z_BUF_ERROR) continue;
    if (zr == Z_MEM_ERROR) {
      rc = embr_error(EMBR_ENOMEM, "%s: out of memory inflating", name);
      break;
    }
    rc = embr_error(EMBR_EFORMAT, "%s: corrupt gzip stream (%s)", name, z.msg ? z.msg : "zlib error");
    break;
  }
  inflateEnd(&z);
  if (rc) {
    embr_free(buf);
    return rc;
  }
  *out = buf;
  *out_len = used;
  return 0;
}

/* Length of the valid UTF-8 prefix of s. */
static size_t utf8_valid_prefix(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned b = s[i];
    int need;
    unsigned lo = 0x80, hi = 0xBF;
    if (b < 0x80) {
      i++;
      continue;
    } else if (b >= 0xC2 && b <= 0xDF) {
      need = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      need = 2;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      need = 3;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (n - i <= (size_t)need) return i;
    for (int k = 1; k <= need; k++) {
      if (s[i + k] < lo || s[i + k] > hi) return i;
      lo = 0x80;
      hi = 0xBF;
    }
    i += (size_t)need + 1;
  }
  return n;
}

static int contains(const char *s, size_t n, const char *needle) {
  size_t k = strlen(needle);
  for (size_t i = 0; i + k <= n; i++)
    if (memcmp(s + i, needle, k) == 0) return 1;
  return 0;
}

static int line_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* Splits a merge line into its two symbols; 0 when it is not exactly two. */
static int split_merge(const char *s, size_t n, size_t *a0, size_t *a1, size_t *b0, size_t *b1) {
  size_t i = 0, parts = 0, st[3] = {0}, en[3] = {0};
  while (i < n) {
    while (i < n && line_space((unsigned char)s[i])) i++;
    if (i == n) break;
    if (parts == 2) return 0;
    st[parts] = i;
    while (i < n && !line_space((unsigned char)s[i])) i++;
    en[parts++] = i;
  }
  if (parts != 2) return 0;
  *a0 = st[0];
  *a1 = en[0];
  *b0 = st[1];
  *b1 = en[1];
  return 1;
}

/* Builds the tokenizer from the merges text (or none: text NULL, n_merges 0). */
static embr_status build(const char *text, size_t len, const char *name, int n_merges, embr_bpe **out) {
  /* Lines after the header: the merges. */
  size_t *lstart = NULL;
  int available = 0;
  size_t body = 0;
  if (text) {
    size_t valid = utf8_valid_prefix((const unsigned char *)text, len);
    if (valid < len) {
      long long line = 1;
      for (size_t i = 0; i < valid; i++) line += text[i] == '\n';
      return embr_error(EMBR_EFORMAT, "%s: line %lld: not UTF-8", name, line);
    }
    const char *nl = memchr(text, '\n', len);
    size_t hlen = nl ? (size_t)(nl - text) : len;
    if (!contains(text, hlen, CLIP_HEADER_TAG))
      return embr_error(EMBR_EFORMAT, "%s: line 1: expected a header with \"" CLIP_HEADER_TAG "\" (a CLIP merges file)", name);
    body = nl ? hlen + 1 : len;
    for (size_t i = body; i < len;) {
      const char *e = memchr(text + i, '\n', len - i);
      if (available == INT_MAX - 1024) return embr_error(EMBR_EFORMAT, "%s: too many lines", name);
      available++;
      i = e ? (size_t)(e - text) + 1 : len;
    }
    if (n_merges < 0)
      return embr_error(EMBR_EINVAL, "%s: n_merges %d is negative", name, n_merges);
    if (n_merges == 0) {
      if (available < EMBR_BPE_CLIP_MERGES)
        return embr_error(EMBR_EFORMAT, "%s: holds %d merges, CLIP's vocabulary needs %d", name,
                          available, EMBR_BPE_CLIP_MERGES);
      n_merges = EMBR_BPE_CLIP_MERGES;
    } else if (n_merges > available) {
      return embr_error(EMBR_EINVAL, "%s: %d merges asked for, the file holds %d", name, n_merges,
                        available);
    }
  }
  embr_status rc = 0;
  embr_bpe *b = embr_calloc(1, sizeof *b);
  size_t n_tok = 512 + (size_t)n_merges + 2;
  if (!b || !(lstart = embr_calloc((size_t)n_merges + 1, sizeof(size_t) * 4)) ||
      !(b->off = embr_calloc(n_tok + 1, sizeof(size_t)))) {
    rc = embr_error(EMBR_ENOMEM, "%s: out of memory", name);
    goto fail;
  }
  b->n_merges = n_merges;
  b->vocab_size = (int32_t)n_tok;
  b->sot = (int32_t)(512 + n_merges);
  b->eot = b->sot + 1;
  /* Parse the merge lines: lstart[4k..4k+3] = the two symbols' [start, end). */
  size_t bytes = 0, pos = body;
  for (int k = 0; k < n_merges; k++) {
    const char *e = memchr(text + pos, '\n', len - pos);
    size_t end = e ? (size_t)(e - text) : len;
    size_t *p = lstart + 4 * (size_t)k;
    if (!split_merge(text + pos, end - pos, &p[0], &p[1], &p[2], &p[3])) {
      rc = embr_error(EMBR_EFORMAT, "%s: line %d: expected two symbols separated by a space", name, k + 2);
      goto fail;
    }
    for (int q = 0; q < 4; q++) p[q] += pos;
    bytes += (p[1] - p[0]) + (p[3] - p[2]) + 1; /* at most the file's length plus a byte a line */
    pos = e ? end + 1 : len;
  }
  /* Token strings. */
  int order[256];
  int32_t chr[256];
  byte_order(order, chr);
  bytes += 512 * 9 + 64;
  if (!(b->str = embr_alloc(bytes))) {
    rc = embr_error(EMBR_ENOMEM, "%s: out of memory", name);
    goto fail;
  }
  size_t at = 0;
  int32_t id = 0;
  for (int w = 0; w < 2; w++) {
    for (int i = 0; i < 256; i++) {
      unsigned char u[4];
      int ul = embr__utf8_put(chr[order[i]], u);
      b->off[id++] = at;
      memcpy(b->str + at, u, (size_t)ul);
      at += (size_t)ul;
      if (w) {
        memcpy(b->str + at, "</w>", 4);
        at += 4;
      }
      b->str[at++] = '\0';
    }
  }
  for (int k = 0; k < n_merges; k++) {
    const size_t *p = lstart + 4 * (size_t)k;
    b->off[id++] = at;
    memcpy(b->str + at, text + p[0], p[1] - p[0]);
    at += p[1] - p[0];
    memcpy(b->str + at, text + p[2], p[3] - p[2]);
    at += p[3] - p[2];
    b->str[at++] = '\0';
  }
  static const char *const special[2] = {"<|startoftext|>", "<|endoftext|>"};
  for (int s = 0; s < 2; s++) {
    b->off[id++] = at;
    size_t sl = strlen(special[s]) + 1;
    memcpy(b->str + at, special[s], sl);
    at += sl;
  }
  b->off[id] = at;
  /* Canonical ids: a later duplicate string wins. */
  strmap m = {NULL, pow2_at_least(n_tok * 2) - 1, b};
  if (!(m.slot = embr_alloc(sizeof(int32_t) * (m.mask + 1)))) {
    rc = embr_error(EMBR_ENOMEM, "%s: out of memory", name);
    goto fail;
  }
  memset(m.slot, 0xff, sizeof(int32_t) * (m.mask + 1));
  for (int32_t t = 0; t < (int32_t)n_tok; t++) m.slot[strmap_pos(&m, tok(b, t), tok_len(b, t))] = t;
  for (int i = 0; i < 256; i++) {
    int32_t t0 = (int32_t)i, t1 = (int32_t)(256 + i);
    b->first[order[i]] = strmap_find(&m, tok(b, t0), tok_len(b, t0));
    b->last[order[i]] = strmap_find(&m, tok(b, t1), tok_len(b, t1));
  }
  if (n_merges > 0) {
    b->mask = pow2_at_least((size_t)n_merges * 2) - 1;
    b->key = embr_alloc(sizeof(uint64_t) * (b->mask + 1));
    b->rank = embr_alloc(sizeof(int32_t) * (b->mask + 1));
    b->merged = embr_alloc(sizeof(int32_t) * (b->mask + 1));
    if (!b->key || !b->rank || !b->merged) {
      embr_free(m.slot);
      rc = embr_error(EMBR_ENOMEM, "%s: out of memory", name);
      goto fail;
    }
    memset(b->key, 0xff, sizeof(uint64_t) * (b->mask + 1));
    for (int k = 0; k < n_merges; k++) {
      const size_t *p = lstart + 4 * (size_t)k;
      int32_t l = strmap_find(&m, text + p[0], p[1] - p[0]);
      int32_t r = strmap_find(&m, text + p[2], p[3] - p[2]);
      if (l < 0 || r < 0) continue; /* a symbol no merge makes: the pair never occurs */
      int32_t t = 512 + k;
      int32_t res = strmap_find(&m, tok(b, t), tok_len(b, t));
      uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
      size_t h = pair_pos(b, key);
      b->key[h] = key; /* a repeated pair takes its later rank */
      b->rank[h] = k;
      b->merged[h] = res;
    }
  }
  embr_free(m.slot);
  embr_free(lstart);
  *out = b;
  return 0;
fail:
  embr_free(lstart);
  embr_bpe_free(b);
  return rc;
}

embr_status embr_bpe_load_mem(const void *buf, size_t len, const char *name, int n_merges, embr_bpe **out) {
  if (!out) return embr_error(EMBR_EINVAL, "embr_bpe_load_mem: out is NULL");
  *out = NULL;
  if (!name) name = "merges";
  if (!buf && len) return embr_error(EMBR_EINVAL, "%s: no buffer", name);
  if (n_merges < 0) return embr_error(EMBR_EINVAL, "%s: n_merges %d is negative", name, n_merges);
  if (len > EMBR_BPE_MAX_BYTES)
    return embr_error(EMBR_EFORMAT, "%s: %zu bytes, more than a merges file's %d", name, len, EMBR_BPE_MAX_BYTES);
  const unsigned char *p = buf;
  if (len >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
    unsigned char *plain = NULL;
    size_t plen = 0;
    embr_status rc = gunzip(p, len, name, &plain, &plen);
    if (rc) return rc;
    rc = build((const char *)plain, plen, name, n_merges, out);
    embr_free(plain);
    return rc;
  }
  return build(len ? (const char *)p : "", len, name, n_merges, out);
}

embr_status embr_bpe_load(const char *path, int n_merges, embr_bpe **out) {
  if (!out || !path) return embr_error(EMBR_EINVAL, "embr_bpe_load: NULL argument");
  *out = NULL;
  embr__filemap fm;
  int rc = embr__filemap_open(&fm, path, EMBR_BPE_MAX_BYTES);
  if (rc) return rc;
  rc = embr_bpe_load_mem(fm.data, fm.len, path, n_merges, out);
  embr__filemap_close(&fm);
  return rc;
}

embr_status embr_bpe_create_bytes(embr_bpe **out) {
  if (!out) return embr_error(EMBR_EINVAL, "embr_bpe_create_bytes: out is NULL");
  *out = NULL;
  return build(NULL, 0, "bytes", 0, out);
}

int32_t embr_bpe_vocab_size(const embr_bpe *b) { return b->vocab_size; }
int embr_bpe_n_merges(const embr_bpe *b) { return b->n_merges; }
int32_t embr_bpe_sot(const embr_bpe *b) { return b->sot; }
int32_t embr_bpe_eot(const embr_bpe *b) { return b->eot; }
const char *embr_bpe_token(const embr_bpe *b, int32_t id) {
  return id >= 0 && id < b->vocab_size ? tok(b, id) : NULL;
}

/* ---- merging ----------------------------------------------------------------------------------- */

/* Per-call scratch, grown as pieces get longer. */
typedef struct scratch {
  int32_t *nodes; /* sym, next, prev: cap entries each */
  int32_t *sym, *next, *prev;
  uint64_t *heap;
  size_t cap, heap_cap, heap_n;
  int32_t *ids; /* the output */
  size_t n_ids, cap_ids;
  unsigned char *bytes;
  size_t cap_bytes;
} scratch;

static void scratch_free(scratch *s) {
  free(s->nodes);
  free(s->heap);
  free(s->bytes);
  embr_free(s->ids);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 0;
  size_t c = *cap ? *cap : 64;
  while (c < need) c *= 2;
  void *q = realloc(*p, c * elem);
  if (!q) return -1;
  *p = q;
  *cap = c;
  return 0;
}

static int emit(scratch *s, int32_t id) {
  if (s->n_ids == s->cap_ids) {
    size_t c = s->cap_ids ? s->cap_ids * 2 : 64;
    int32_t *q = embr_realloc(s->ids, s->cap_ids * sizeof(int32_t), c * sizeof(int32_t));
    if (!q) return -1;
    s->ids = q;
    s->cap_ids = c;
  }
  s->ids[s->n_ids++] = id;
  return 0;
}

static void heap_push(scratch *s, uint64_t x) {
  size_t i = s->heap_n++;
  s->heap[i] = x;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (s->heap[p] <= s->heap[i]) break;
    uint64_t t = s->heap[p];
    s->heap[p] = s->heap[i];
    s->heap[i] = t;
    i = p;
  }
}

static uint64_t heap_pop(scratch *s) {
  uint64_t top = s->heap[0];
  s->heap[0] = s->heap[--s->heap_n];
  size_t i = 0, n = s->heap_n;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && s->heap[l] < s->heap[m]) m = l;
    if (r < n && s->heap[r] < s->heap[m]) m = r;
    if (m == i) break;
    uint64_t t = s->heap[m];
    s->heap[m] = s->heap[i];
    s->heap[i] = t;
    i = m;
  }
  return top;
}

static void push_pair(const embr_bpe *b, scratch *s, int32_t at) {
  if (at < 0) return;
  int32_t nx = s->next[at], merged = 0;
  if (nx < 0) return;
  int32_t r = pair_rank(b, s->sym[at], s->sym[nx], &merged);
  if (r >= 0) heap_push(s, (uint64_t)(uint32_t)r << 32 | (uint32_t)at);
}

/* BPE of one piece of n bytes; appends its ids. */
static int bpe_piece(const embr_bpe *b, scratch *s, const unsigned char *p, size_t n) {
  if (n == 1) return emit(s, b->last[p[0]]);
  /* heap: n - 1 initial pairs, at most two new ones per merge, n - 1 merges */
  if (grow((void **)&s->nodes, &s->cap, 3 * n, sizeof(int32_t)) ||
      grow((void **)&s->heap, &s->heap_cap, 3 * n, sizeof(uint64_t)))
    return -1;
  s->sym = s->nodes;
  s->next = s->nodes + n;
  s->prev = s->nodes + 2 * n;
  for (size_t i = 0; i < n; i++) {
    s->sym[i] = i + 1 < n ? b->first[p[i]] : b->last[p[i]];
    s->next[i] = i + 1 < n ? (int32_t)(i + 1) : -1;
    s->prev[i] = (int32_t)i - 1;
  }
  s->heap_n = 0;
  for (size_t i = 0; i + 1 < n; i++) push_pair(b, s, (int32_t)i);
  while (s->heap_n > 0) {
    uint32_t rank = (uint32_t)(s->heap[0] >> 32);
    /* Take every entry of this rank off the heap (they come out in position order) and
     * apply the still-valid ones left to right: the reference's one pass over the word. */
    /* Popped entries are parked at the end of the heap's array: at most 3n - 3 entries are ever
     * pushed, so the heap and the parked ones never meet. */
    size_t cnt = 0;
    while (s->heap_n > 0 && (uint32_t)(s->heap[0] >> 32) == rank) {
      uint64_t x = heap_pop(s);
      s->heap[3 * n - 1 - cnt++] = x;
    }
    for (size_t q = 0; q < cnt; q++) {
      int32_t at = (int32_t)(uint32_t)s->heap[3 * n - 1 - q];
      int32_t nx = s->next[at], merged = 0;
      if (s->prev[at] == -2 || nx < 0) continue; /* consumed by an earlier merge */
      if (pair_rank(b, s->sym[at], s->sym[nx], &merged) != (int32_t)rank) continue;
      s->sym[at] = merged;
      s->next[at] = s->next[nx];
      if (s->next[nx] >= 0) s->prev[s->next[nx]] = at;
      s->prev[nx] = -2;
      push_pair(b, s, s->prev[at]);
      push_pair(b, s, at);
    }
  }
  for (int32_t at = 0; at >= 0; at = s->next[at])
    if (emit(s, s->sym[at])) return -1;
  return 0;
}

/* Cleans, splits and merges text into s->ids. */
static embr_status run(const embr_bpe *b, const char *text, scratch *s) {
  size_t len = strlen(text);
  if (len > EMBR_BPE_MAX_TEXT)
    return embr_error(EMBR_EINVAL, "text of %zu bytes, more than %d", len, EMBR_BPE_MAX_TEXT);
  embr__cps cp = {0};
  if (embr__clip_clean(text, len, &cp)) {
    embr__cps_free(&cp);
    return embr_error(EMBR_ENOMEM, "out of memory cleaning text");
  }
  size_t pos = 0, st, en;
  int rc = 0;
  while (rc == 0 && embr__clip_next_piece(cp.v, cp.n, &pos, &st, &en)) {
    if (grow((void **)&s->bytes, &s->cap_bytes, 4 * (en - st) + 1, 1)) {
      rc = -1;
      break;
    }
    size_t nb = 0;
    for (size_t i = st; i < en; i++) nb += (size_t)embr__utf8_put(cp.v[i], s->bytes + nb);
    if (nb == 15 && memcmp(s->bytes, "<|startoftext|>", 15) == 0)
      rc = emit(s, b->sot);
    else if (nb == 13 && memcmp(s->bytes, "<|endoftext|>", 13) == 0)
      rc = emit(s, b->eot);
    else
      rc = bpe_piece(b, s, s->bytes, nb);
  }
  embr__cps_free(&cp);
  return rc ? embr_error(EMBR_ENOMEM, "out of memory tokenizing") : 0;
}

embr_status embr_bpe_tokenize(const embr_bpe *b, const char *text, int32_t **ids, size_t *n) {
  if (!b || !text || !ids || !n) return embr_error(EMBR_EINVAL, "embr_bpe_tokenize: NULL argument");
  *ids = NULL;
  *n = 0;
  scratch s;
  memset(&s, 0, sizeof s);
  embr_status rc = run(b, text, &s);
  if (rc == 0 && !s.ids && !(s.ids = embr_alloc(sizeof(int32_t)))) rc = EMBR_ENOMEM;
  if (rc == 0) {
    *ids = s.ids;
    *n = s.n_ids;
    s.ids = NULL;
  }
  scratch_free(&s);
  return rc;
}

embr_status embr_bpe_encode(const embr_bpe *b, const char *text, int context, int32_t *ids, int *n_tokens) {
  if (!b || !text || !ids) return embr_error(EMBR_EINVAL, "embr_bpe_encode: NULL argument");
  if (context < 1) return embr_error(EMBR_EINVAL, "embr_bpe_encode: context %d, at least 1", context);
  scratch s;
  memset(&s, 0, sizeof s);
  embr_status rc = run(b, text, &s);
  if (rc == 0) {
    size_t total = s.n_ids + 2;
    for (int i = 0; i < context; i++) ids[i] = 0;
    ids[0] = b->sot;
    size_t k = 1;
    for (size_t i = 0; i < s.n_ids && k < (size_t)context; i++) ids[k++] = s.ids[i];
    if (k < (size_t)context) ids[k] = b->eot;
    if (total > (size_t)context) ids[context - 1] = b->eot;
    if (n_tokens) *n_tokens = total > (size_t)INT_MAX ? INT_MAX : (int)total;
  }
  scratch_free(&s);
  return rc;
}

embr_status embr_bpe_decode(const embr_bpe *b, const int32_t *ids, size_t n, char **text) {
  if (!b || (!ids && n) || !text) return embr_error(EMBR_EINVAL, "embr_bpe_decode: NULL argument");
  *text = NULL;
  size_t total = 1;
  for (size_t i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= b->vocab_size)
      return embr_error(EMBR_EINVAL, "embr_bpe_decode: id %d at %zu is outside the vocabulary (%d)",
                        (int)ids[i], i, (int)b->vocab_size);
    total += tok_len(b, ids[i]);
  }
  /* One byte per character of the byte alphabet, a space for "</w>"; any other character (only an
   * odd merges file has them) passes as its own UTF-8. */
  unsigned char *raw = embr_alloc(total);
  if (!raw) return EMBR_ENOMEM;
  size_t r = 0;
  for (size_t i = 0; i < n; i++) {
    const unsigned char *t = (const unsigned char *)tok(b, ids[i]);
    size_t tl = tok_len(b, ids[i]), j = 0;
    while (j < tl) {
      if (tl - j >= 4 && memcmp(t + j, "</w>", 4) == 0) {
        raw[r++] = ' ';
        j += 4;
        continue;
      }
      size_t step = t[j] < 0xC0 ? 1 : t[j] < 0xE0 ? 2 : t[j] < 0xF0 ? 3 : 4;
      if (step > tl - j) step = tl - j;
      int byte = -1;
      if (step == 1)
        byte = t[j];
      else if (step == 2)
        byte = char_byte(((t[j] & 0x1F) << 6) | (t[j + 1] & 0x3F));
      if (byte >= 0) {
        raw[r++] = (unsigned char)byte;
      } else {
        memcpy(raw + r, t + j, step);
        r += step;
      }
      j += step;
    }
  }
  /* invalid UTF-8 becomes U+FFFD, as Python's errors="replace" */
  embr__cps cp = {0};
  char *o = NULL;
  if (embr__utf8_decode(raw, r, &cp) == 0 && (o = embr_alloc(cp.n * 4 + 1)) != NULL) {
    size_t w = 0;
    for (size_t i = 0; i < cp.n; i++) w += (size_t)embr__utf8_put(cp.v[i], (unsigned char *)o + w);
    o[w] = '\0';
  }
  embr__cps_free(&cp);
  embr_free(raw);
  if (!o) return embr_error(EMBR_ENOMEM, "embr_bpe_decode: out of memory");
  *text = o;
  return 0;
}

/* The word vocabulary: an open-addressing hash table over words stored in an arena, then a
 * finalized order by count. See include/embr/text.h. */
#include "embr/text.h"

#include "core/fileio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct vword {
  char *word;
  int64_t count;
} vword;

struct embr_vocab {
  vword *words;
  int64_t n, cap;
  int64_t *table; /* index into words, -1 empty; size is a power of two */
  int64_t table_size;
  /* Word bytes live in arena blocks; never moved, so pointers stay valid. */
  char **blocks;
  int nblocks, cap_blocks;
  size_t block_used, block_size;
  int64_t total;
};

enum { ARENA_BLOCK = 1 << 20 };
/* Counting a huge corpus: above this many distinct words, rare ones are pruned (as word2vec
 * does), raising the pruning threshold each time, so memory stays bounded. */
#define VOCAB_PRUNE_AT 30000000

static uint64_t hash_word(const char *w) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (const unsigned char *p = (const unsigned char *)w; *p; p++) h = (h ^ *p) * 1099511628211ull;
  return h;
}

embr_status embr_vocab_create(embr_vocab **out) {
  embr_vocab *v = calloc(1, sizeof *v);
  if (!v) return embr_error(EMBR_ENOMEM, "out of memory");
  v->table_size = 1 << 16;
  v->table = malloc(sizeof(int64_t) * (size_t)v->table_size);
  if (!v->table) {
    free(v);
    return embr_error(EMBR_ENOMEM, "out of memory");
  }
  memset(v->table, 0xff, sizeof(int64_t) * (size_t)v->table_size);
  *out = v;
  return 0;
}

void embr_vocab_free(embr_vocab *v) {
  if (!v) return;
  for (int i = 0; i < v->nblocks; i++) free(v->blocks[i]);
  free(v->blocks);
  free(v->words);
  free(v->table);
  free(v);
}

int64_t embr_vocab_size(const embr_vocab *v) { return v->n; }
const char *embr_vocab_word(const embr_vocab *v, int64_t i) { return v->words[i].word; }
int64_t embr_vocab_count(const embr_vocab *v, int64_t i) { return v->words[i].count; }
int64_t embr_vocab_total(const embr_vocab *v) { return v->total; }

static int64_t *slot_of(const embr_vocab *v, const char *word) {
  uint64_t mask = (uint64_t)v->table_size - 1, h = hash_word(word) & mask;
  for (;;) {
    int64_t *s = &v->table[h];
    if (*s < 0 || strcmp(v->words[*s].word, word) == 0) return s;
    h = (h + 1) & mask;
  }
}

int64_t embr_vocab_find(const embr_vocab *v, const char *word) { return *slot_of(v, word); }

static int rehash(embr_vocab *v, int64_t size) {
  int64_t *t = malloc(sizeof(int64_t) * (size_t)size);
  if (!t) return embr_error(EMBR_ENOMEM, "out of memory growing the vocabulary");
  memset(t, 0xff, sizeof(int64_t) * (size_t)size);
  free(v->table);
  v->table = t;
  v->table_size = size;
  for (int64_t i = 0; i < v->n; i++) *slot_of(v, v->words[i].word) = i;
  return 0;
}

static char *arena_copy(embr_vocab *v, const char *word) {
  size_t len = strlen(word) + 1;
  if (v->nblocks == 0 || v->block_used + len > v->block_size) {
    if (v->nblocks == v->cap_blocks) {
      int nc = v->cap_blocks ? 2 * v->cap_blocks : 16;
      char **nb = realloc(v->blocks, sizeof(char *) * (size_t)nc);
      if (!nb) return NULL;
      v->blocks = nb;
      v->cap_blocks = nc;
    }
    size_t bs = len > ARENA_BLOCK ? len : ARENA_BLOCK;
    if (!(v->blocks[v->nblocks] = malloc(bs))) return NULL;
    v->nblocks++;
    v->block_used = 0;
    v->block_size = bs;
  }
  char *p = v->blocks[v->nblocks - 1] + v->block_used;
  memcpy(p, word, len);
  v->block_used += len;
  return p;
}

embr_status embr_vocab_add(embr_vocab *v, const char *word, int64_t count) {
  if (!*word) return embr_error(EMBR_EINVAL, "empty word");
  int64_t *s = slot_of(v, word);
  v->total += count;
  if (*s >= 0) {
    v->words[*s].count += count;
    return 0;
  }
  if (v->n == v->cap) {
    int64_t nc = v->cap ? 2 * v->cap : 1024;
    vword *nw = realloc(v->words, sizeof(vword) * (size_t)nc);
    if (!nw) return embr_error(EMBR_ENOMEM, "out of memory growing the vocabulary");
    v->words = nw;
    v->cap = nc;
  }
  char *copy = arena_copy(v, word);
  if (!copy) return embr_error(EMBR_ENOMEM, "out of memory growing the vocabulary");
  v->words[v->n] = (vword){copy, count};
  *s = v->n++;
  if (v->n * 10 > v->table_size * 7) return rehash(v, v->table_size * 2);
  return 0;
}

static int cmp_words(const void *a, const void *b) {
  const vword *x = a, *y = b;
  if (x->count != y->count) return x->count > y->count ? -1 : 1;
  return strcmp(x->word, y->word);
}

/* Keeps words with count >= min_count (arena bytes of dropped words are simply not reused). */
static int prune(embr_vocab *v, int64_t min_count) {
  int64_t w = 0;
  v->total = 0;
  for (int64_t i = 0; i < v->n; i++) {
    if (v->words[i].count >= min_count) {
      v->words[w++] = v->words[i];
      v->total += v->words[i].count;
    }
  }
  v->n = w;
  return rehash(v, v->table_size);
}

embr_status embr_vocab_finalize(embr_vocab *v, int64_t min_count, int64_t max_size) {
  int rc = prune(v, min_count > 1 ? min_count : 1);
  if (rc) return rc;
  qsort(v->words, (size_t)v->n, sizeof(vword), cmp_words);
  if (max_size > 0 && v->n > max_size) {
    for (int64_t i = max_size; i < v->n; i++) v->total -= v->words[i].count;
    v->n = max_size;
  }
  return rehash(v, v->table_size);
}

embr_status embr_vocab_build(embr_vocab **out, const char *corpus_path, int64_t min_count,
                             int64_t max_size, const embr_progress *progress) {
  *out = NULL;
  int64_t size = embr_file_size(corpus_path);
  if (size < 0) return (int)size;
  embr_corpus *c;
  int rc = embr_corpus_open(&c, corpus_path, 0, -1);
  if (rc) return rc;
  embr_vocab *v;
  if ((rc = embr_vocab_create(&v))) {
    embr_corpus_close(c);
    return rc;
  }
  embr_progress_state ps;
  embr_progress_begin(&ps, progress, (uint64_t)size);
  char word[EMBR_MAX_WORD_BYTES + 1];
  int nl;
  int64_t seen = 0, reduce = 1;
  while ((rc = embr_corpus_next(c, word, &nl)) == 1) {
    if ((rc = embr_vocab_add(v, word, 1))) break;
    if ((++seen & 0xffff) == 0) {
      if (v->n > VOCAB_PRUNE_AT && (rc = prune(v, ++reduce))) break;
      if (embr_progress_update(&ps, (uint64_t)embr_corpus_tell(c), "counting words", 0)) {
        rc = embr_error(EMBR_ECANCELED, "canceled");
        break;
      }
    }
  }
  embr_corpus_close(c);
  if (rc == 0 && v->n == 0) rc = embr_error(EMBR_EFORMAT, "%s: no words in the corpus", corpus_path);
  if (rc == 0) rc = embr_vocab_finalize(v, min_count, max_size);
  if (rc == 0 && v->n == 0)
    rc = embr_error(EMBR_EINVAL, "%s: no word occurs at least %lld times (--min-count)", corpus_path,
                    (long long)min_count);
  if (rc == 0) embr_progress_update(&ps, (uint64_t)size, "counting words", 1);
  if (rc) {
    embr_vocab_free(v);
    return rc;
  }
  *out = v;
  return 0;
}

embr_status embr_vocab_save(const embr_vocab *v, const char *path) {
  embr__wfile w;
  int rc = embr__wfile_open(&w, path);
  if (rc) return rc;
  for (int64_t i = 0; i < v->n && !rc; i++)
    rc = embr__wfile_printf(&w, "%s %lld\n", v->words[i].word, (long long)v->words[i].count);
  if (rc) {
    embr__wfile_abort(&w);
    return rc;
  }
  return embr__wfile_commit(&w);
}

embr_status embr_vocab_read(embr_vocab **out, const char *path, int64_t min_count, int64_t max_size) {
  *out = NULL;
  embr__filemap fm;
  int rc = embr__filemap_open(&fm, path, EMBR__READ_ANY);
  if (rc) return rc;
  embr_vocab *v;
  if ((rc = embr_vocab_create(&v))) {
    embr__filemap_close(&fm);
    return rc;
  }
  size_t i = 0, line = 0;
  while (i < fm.len && !rc) {
    line++;
    size_t s = i;
    while (i < fm.len && fm.data[i] != '\n') i++;
    size_t e = i++;
    if (e > s && fm.data[e - 1] == '\r') e--;
    if (e == s) continue; /* blank line */
    size_t sp = s;
    while (sp < e && fm.data[sp] != ' ' && fm.data[sp] != '\t') sp++;
    char word[EMBR_MAX_WORD_BYTES + 1], num[32];
    size_t wl = sp - s, nl2 = e > sp ? e - sp - 1 : 0;
    if (sp == e || wl == 0 || wl > EMBR_MAX_WORD_BYTES || nl2 == 0 || nl2 >= sizeof num) {
      rc = embr_error(EMBR_EFORMAT, "%s: line %zu: expected \"word count\"", path, line);
      break;
    }
    memcpy(word, fm.data + s, wl);
    word[wl] = '\0';
    memcpy(num, fm.data + sp + 1, nl2);
    num[nl2] = '\0';
    char *end;
    errno = 0;
    long long cnt = strtoll(num, &end, 10);
    if (*end || errno || cnt < 1) {
      rc = embr_error(EMBR_EFORMAT, "%s: line %zu: count '%s' is not a positive integer", path, line, num);
      break;
    }
    rc = embr_vocab_add(v, word, cnt);
  }
  embr__filemap_close(&fm);
  if (!rc && v->n == 0) rc = embr_error(EMBR_EFORMAT, "%s: empty vocabulary file", path);
  if (!rc) rc = embr_vocab_finalize(v, min_count, max_size);
  if (!rc && v->n == 0)
    rc = embr_error(EMBR_EINVAL, "%s: no word with count >= %lld", path, (long long)min_count);
  if (rc) {
    embr_vocab_free(v);
    return rc;
  }
  *out = v;
  return 0;
}

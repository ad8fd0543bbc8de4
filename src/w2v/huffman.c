/* Huffman tree over word counts for hierarchical softmax (word2vec's CreateBinaryTree): frequent
 * words get short codes. Words are sorted by count descending, so the two-queue construction runs
 * in linear time: leaves are consumed from the end of the word array, inner nodes in the order
 * they are made. */
#include "w2v/w2v_internal.h"

#include <stdlib.h>
#include <string.h>

void embr__w2v_huffman_free(w2v_huffman *h) {
  free(h->offset);
  free(h->code);
  free(h->point);
  memset(h, 0, sizeof *h);
}

/* Merges nodes: parent[] and binary[] of all 2n-1 nodes. */
static void build_tree(const embr_vocab *v, int64_t n, int64_t *count, int64_t *parent,
                       uint8_t *binary) {
  for (int64_t i = 0; i < n; i++) count[i] = embr_vocab_count(v, i);
  for (int64_t i = n; i < 2 * n; i++) count[i] = INT64_MAX;
  int64_t pos1 = n - 1, pos2 = n; /* next leaf (from the rarest), next inner node */
  for (int64_t a = 0; a < n - 1; a++) {
    int64_t min[2];
    for (int t = 0; t < 2; t++) {
      if (pos1 >= 0 && count[pos1] < count[pos2])
        min[t] = pos1--;
      else
        min[t] = pos2++;
    }
    count[n + a] = count[min[0]] + count[min[1]];
    parent[min[0]] = n + a;
    parent[min[1]] = n + a;
    binary[min[1]] = 1;
  }
}

static int depth_of(const int64_t *parent, int64_t n, int64_t w) {
  int d = 0;
  for (int64_t b = w; b != 2 * n - 2; b = parent[b]) d++;
  return d;
}

int embr__w2v_huffman_build(w2v_huffman *h, const embr_vocab *v) {
  memset(h, 0, sizeof *h);
  int64_t n = embr_vocab_size(v);
  if (n < 2) return embr_error(EMBR_EINVAL, "hierarchical softmax needs at least 2 words");
  int64_t *count = malloc(sizeof(int64_t) * (size_t)(2 * n));
  int64_t *parent = malloc(sizeof(int64_t) * (size_t)(2 * n));
  uint8_t *binary = calloc((size_t)(2 * n), 1);
  h->offset = malloc(sizeof(int64_t) * (size_t)(n + 1));
  int rc = 0;
  if (!count || !parent || !binary || !h->offset) {
    rc = embr_error(EMBR_ENOMEM, "out of memory building the Huffman tree");
    goto done;
  }
  build_tree(v, n, count, parent, binary);
  h->offset[0] = 0;
  for (int64_t w = 0; w < n; w++) {
    int d = depth_of(parent, n, w);
    if (d > W2V_MAX_CODE) {
      rc = embr_error(EMBR_EUNSUPPORTED,
                      "hierarchical softmax: the Huffman code of '%s' would be %d long (limit %d): "
                      "word counts too skewed",
                      embr_vocab_word(v, w), d, W2V_MAX_CODE);
      goto done;
    }
    h->offset[w + 1] = h->offset[w] + d;
  }
  h->code = malloc((size_t)h->offset[n]);
  h->point = malloc(sizeof(int32_t) * (size_t)h->offset[n]);
  if (!h->code || !h->point) {
    rc = embr_error(EMBR_ENOMEM, "out of memory building the Huffman tree");
    goto done;
  }
  /* Walk each leaf up to the root (node 2n-2), filling its range backwards so it reads
   * root-first. Inner node j is row j - n of syn1. */
  for (int64_t w = 0; w < n; w++) {
    int64_t at = h->offset[w + 1];
    for (int64_t b = w; b != 2 * n - 2; b = parent[b]) {
      at--;
      h->code[at] = binary[b];
      h->point[at] = (int32_t)(parent[b] - n);
    }
  }
done:
  free(count);
  free(parent);
  free(binary);
  if (rc) embr__w2v_huffman_free(h);
  return rc;
}

/* libFuzzer target: CLIP merges files (embr_bpe_load_mem, gzip or plain) and the tokenizer's text
 * side. The input up to its last NUL byte is the merges file (gzip has NUL bytes of its own), the
 * rest the text (without a NUL, the whole input is both). The file is loaded with as many merges as it has lines (then with
 * one); a loaded tokenizer, and the byte tokenizer, must encode the text into ids of their
 * vocabulary framed by sot/eot as clip.tokenize frames them, and decode what they tokenized.
 * A refusal must be one line naming the input. */
#include "embr/text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_encode(const embr_bpe *b, const char *text) {
  const int ctx = 16;
  int32_t ids[16];
  int n = -1;
  if (embr_bpe_encode(b, text, ctx, ids, &n) != 0) abort();
  int32_t v = embr_bpe_vocab_size(b), eot = embr_bpe_eot(b);
  if (n < 2 || ids[0] != (ctx == 1 ? eot : embr_bpe_sot(b))) abort();
  for (int i = 0; i < ctx; i++)
    if (ids[i] < 0 || ids[i] >= v) abort();
  if (n <= ctx) {
    if (ids[n - 1] != eot) abort();
    for (int i = n; i < ctx; i++)
      if (ids[i] != 0) abort();
  } else if (ids[ctx - 1] != eot) {
    abort();
  }
  int32_t *t;
  size_t nt;
  if (embr_bpe_tokenize(b, text, &t, &nt) != 0 || (int64_t)nt + 2 != n) abort();
  for (size_t i = 0; i < nt && (int)i + 1 < ctx - 1; i++)
    if (t[i] != ids[i + 1]) abort();
  char *s;
  if (embr_bpe_decode(b, t, nt, &s) != 0) abort();
  embr_free(s);
  embr_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nul = NULL;
  for (size_t i = size; i > 0 && !nul; i--)
    if (data[i - 1] == 0) nul = data + i - 1;
  size_t mlen = nul ? (size_t)(nul - data) : size;
  const uint8_t *tp = nul ? nul + 1 : data;
  size_t tlen = nul ? size - mlen - 1 : size;
  char *text = malloc(tlen + 1);
  if (!text) return 0;
  memcpy(text, tp, tlen);
  text[tlen] = '\0';
  int lines = 0;
  for (size_t i = 0; i < mlen; i++) lines += data[i] == '\n';
  const char *name = "merges.txt";
  for (int attempt = 0; attempt < 2; attempt++) {
    int n_merges = attempt == 0 ? (lines > 1 ? lines - 1 : 1) : 1;
    embr_bpe *b = NULL;
    int rc = embr_bpe_load_mem(data, mlen, name, n_merges, &b);
    if (rc == 0) {
      if (!b || embr_bpe_n_merges(b) != n_merges || embr_bpe_vocab_size(b) != 512 + n_merges + 2) abort();
      check_encode(b, text);
      embr_bpe_free(b);
      break;
    }
    const char *msg = embr_last_error();
    if (b || strncmp(msg, name, strlen(name)) != 0 || strchr(msg, '\n')) abort();
  }
  embr_bpe *bytes;
  if (embr_bpe_create_bytes(&bytes) != 0) abort();
  check_encode(bytes, text);
  embr_bpe_free(bytes);
  free(text);
  return 0;
}

/* libFuzzer target: word2vec text and binary and GloVe readers, plus the .txt content detection
 * (AUTO); every input is tried with each. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_one(data, size, "fuzz.txt", EMBR_FORMAT_W2V_TEXT, 1);
  fuzz_one(data, size, "fuzz.bin", EMBR_FORMAT_W2V_BIN, 1);
  fuzz_one(data, size, "fuzz.glove", EMBR_FORMAT_GLOVE, 1);
  fuzz_one(data, size, "fuzz.vec", EMBR_FORMAT_AUTO, 1);
  return 0;
}

/* libFuzzer target: the .npy reader (header dict parser, dtype conversion, size checks). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_one(data, size, "fuzz.npy", EMBR_FORMAT_NPY, 0);
  return 0;
}

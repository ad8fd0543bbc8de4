/* libFuzzer target: the .fvecs / .ivecs / .bvecs readers; every input is tried as all three. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_one(data, size, "fuzz.fvecs", EMBR_FORMAT_FVECS, 0);
  fuzz_one(data, size, "fuzz.ivecs", EMBR_FORMAT_IVECS, 0);
  fuzz_one(data, size, "fuzz.bvecs", EMBR_FORMAT_BVECS, 0);
  return 0;
}

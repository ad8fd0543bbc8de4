/* libFuzzer target: the .npy reader (header dict parser, dtype conversion -- both byte orders,
 * Fortran order --, size checks) and the content sniffing of EMBR_FORMAT_AUTO (npy magic, zip,
 * safetensors) on a name without an extension. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_one(data, size, "fuzz.npy", EMBR_FORMAT_NPY, 0);
  fuzz_one(data, size, "fuzz", EMBR_FORMAT_AUTO, 0);
  return 0;
}

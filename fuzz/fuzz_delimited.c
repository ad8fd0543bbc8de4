/* libFuzzer target: the CSV and TSV readers; every input is tried as both. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_one(data, size, "fuzz.csv", EMBR_FORMAT_CSV, 0);
  fuzz_one(data, size, "fuzz.tsv", EMBR_FORMAT_TSV, 0);
  return 0;
}

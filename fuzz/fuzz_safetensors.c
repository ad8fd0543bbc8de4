/* libFuzzer target: the safetensors reader (model files and checkpoints). An accepted file must
 * describe tensors whose data lies inside the input (every value is read back); a refused one
 * leaves a one-line message. A broken promise aborts, which libFuzzer reports as a crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  nn_st st;
  if (embr__nn_st_parse(&st, data, size, "fuzz.safetensors") != 0) {
    if (strchr(embr_last_error(), '\n')) abort();
    return 0;
  }
  for (int i = 0; i < st.n; i++) {
    const nn_st_tensor *t = &st.t[i];
    if (t->numel < 0 || t->data < data || t->data > data + size) abort();
    if (t->numel > 0 && t->numel <= (1 << 20)) {
      float *buf = malloc(sizeof(float) * (size_t)t->numel);
      if (!buf) abort();
      embr__nn_st_read_f32(t, buf); /* ASan sees any read past the input */
      free(buf);
    }
  }
  embr__nn_st_close(&st);
  return 0;
}

/* libFuzzer target: the image decoders (PNG through libpng, JPEG through libjpeg, PGM/PPM).
 * A decoded image must be well-formed (sides within the limit, 1 or 3 channels, pixels present)
 * and survive a resize; a refusal must leave the output empty with a one-line message naming the
 * input. A broken promise aborts, which libFuzzer reports as a crash. */
#include "embr/image.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char name[] = "fuzz.img";
  embr_image im;
  int rc = embr_image_decode(data, size, name, &im);
  if (rc == 0) {
    if (!im.px || im.width < 1 || im.height < 1 || im.width > EMBR_IMAGE_MAX_SIDE ||
        im.height > EMBR_IMAGE_MAX_SIDE || (im.channels != 1 && im.channels != 3))
      abort();
    /* Touch every pixel so ASan sees a short buffer. */
    unsigned sum = 0;
    for (size_t i = 0; i < (size_t)im.width * im.height * im.channels; i++) sum += im.px[i];
    (void)sum;
    embr_image small;
    if (embr_image_resize(&im, 5, 3, EMBR_RESIZE_BICUBIC, &small) != 0) abort();
    embr_image_free(&small);
  } else {
    const char *msg = embr_last_error();
    if (strncmp(msg, name, strlen(name)) != 0 || strchr(msg, '\n')) abort();
    if (im.px || im.width || im.height || im.channels) abort();
  }
  embr_image_free(&im);
  return 0;
}

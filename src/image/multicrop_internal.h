/* Private pieces of the multi-crop augmentation, exposed to tests/test_multicrop.c: the crop
 * sampler, the per-view plan, and the 8-bit pixel operations (pixel_ops.c), each the functional
 * form of a torchvision / Pillow transform for given parameters. */
#ifndef EMBR_MULTICROP_INTERNAL_H
#define EMBR_MULTICROP_INTERNAL_H

#include "embr/image.h"

#include <stddef.h>
#include <stdint.h>

/* torchvision's RandomResizedCrop.get_params on a w x h image with embr_rng draws: up to 10 tries
 * (area fraction uniform in scale, log aspect uniform in log ratio, sides rounded half to even,
 * accepted when 0 < side <= image side, then the top and left offsets uniform), else the central
 * crop clamped to the ratio range. Returns the tries used (1..10), or 0 for the fallback. */
int embr__rrc_sample(int w, int h, const float scale[2], const float ratio[2], embr_rng *rng, int *top, int *left,
                     int *ch, int *cw);

/* Everything random about one view, drawn before any pixel is touched. */
typedef struct embr__view_plan {
  int top, left, h, w; /* crop box */
  int tries;           /* embr__rrc_sample's return */
  int flip;
  int jitter;          /* ColorJitter applied; then order[] (0 brightness, 1 contrast, 2 saturation, 3 hue) */
  int order[4];
  float brightness, contrast, saturation, hue; /* factors (hue: shift); an unused strength gives 1 / 0 */
  int gray;
  float blur;          /* PIL GaussianBlur radius; 0: no blur */
  int solarize;
} embr__view_plan;

/* Draws view `kind` (0 first global, 1 other global, 2 local) of a w x h image. */
void embr__multicrop_plan(const embr_multicrop_params *p, int kind, int w, int h, embr_rng *rng,
                          embr__view_plan *v);

/* Carries a plan out on a prepared source (alpha and channel conversion done): crop + resize to
 * size x size, flip, jitter, grayscale, blur, solarise, then C x size x size normalised floats. */
int embr__multicrop_render(const embr_image *src, const embr_multicrop_params *p, const embr__view_plan *v,
                          int size, float *dst);

/* ---- 8-bit operations (pixel_ops.c) on HWC images of c = 1 or 3 channels, in place ---------------- */
void embr__op_hflip(uint8_t *px, int w, int h, int c);
/* ImageEnhance.Brightness / Contrast / Color (Image.blend with a float factor; Pillow's truncation
 * and clipping). Color is the identity on grey images. */
void embr__op_brightness(uint8_t *px, size_t npix, int c, float f);
void embr__op_contrast(uint8_t *px, size_t npix, int c, float f);
void embr__op_saturation(uint8_t *px, size_t npix, int c, float f);
/* torchvision's adjust_hue on a PIL image: to Pillow's 8-bit HSV, hue += uint8(hue * 255), back.
 * Identity on grey. */
void embr__op_hue(uint8_t *px, size_t npix, int c, float hue);
/* rgb_to_grayscale(num_output_channels = 3): Pillow's convert("L") replicated. Identity on grey. */
void embr__op_grayscale(uint8_t *px, size_t npix, int c);
/* Pillow's luma of one RGB pixel: (19595 r + 38470 g + 7471 b + 2^15) >> 16. */
static inline uint8_t embr__luma8(const uint8_t *rgb) {
  return (uint8_t)((rgb[0] * 19595u + rgb[1] * 38470u + rgb[2] * 7471u + 0x8000u) >> 16);
}
/* ImageFilter.GaussianBlur(radius): Pillow's three extended box passes each way. `line` holds
 * 2 * max(w, h) ints of scratch. radius <= 0 leaves the image. */
void embr__op_blur(uint8_t *px, int w, int h, int c, float radius, int32_t *line);
/* ImageOps.solarize: v >= threshold becomes 255 - v. */
void embr__op_solarize(uint8_t *px, size_t npix, int c, int threshold);

/* A copy of the w x h box at (top, left) of src resized to size x size (crop, then resize: the
 * kernel never reads outside the box, as torchvision's resized_crop). */
int embr__crop_resize(const embr_image *src, int top, int left, int h, int w, int size, embr_resize mode,
                      embr_image *out);

#endif

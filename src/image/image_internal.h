/* Private helpers shared by the image sources (decode, transform, dataset, loader). */
#ifndef EMBR_IMAGE_INTERNAL_H
#define EMBR_IMAGE_INTERNAL_H

#include "embr/image.h"

#include <stddef.h>
#include <stdint.h>

/* Allocates im->px for w x h x c (sides 1..EMBR_IMAGE_MAX_SIDE, c 1 or 3) and fills the sizes.
 * On failure *im is zeroed and EMBR_EINVAL / EMBR_ENOMEM returned with a message naming `name`. */
int embr__image_alloc(embr_image *im, int w, int h, int c, const char *name);

/* One sample v of opacity a composited on white, rounded as Pillow's paste with a mask: its DIV255
 * of t = v a + 255 (255 - a) + 128 is (t + (t >> 8)) >> 8. */
static inline uint8_t embr__composite_white8(uint8_t v, uint8_t a) {
  unsigned t = v * (unsigned)a + 255u * (255u - a) + 128u;
  return (uint8_t)((t + (t >> 8)) >> 8);
}

/* Checks a spec (channels, sizes, std != 0, resize mode); EMBR_EINVAL with a message otherwise. */
int embr__image_spec_check(const embr_image_spec *spec);

/* The orientation (1..8) an APP1 segment's Exif IFD0 records (tag 0x0112); 1 when the segment is
 * not Exif, holds no such tag, or is malformed in any way (the bytes are not trusted). */
int embr__exif_orientation(const unsigned char *app1, size_t len);
/* Turns *im upright for an EXIF orientation, as Pillow's ImageOps.exif_transpose: 2 mirror,
 * 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90
 * counter-clockwise (5-8 swap the sides); 1 or anything else leaves it. ENOMEM leaves *im. */
int embr__image_orient(embr_image *im, int orientation, const char *name);

#endif

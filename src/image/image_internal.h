/* Private helpers shared by the image sources (decode, transform, dataset, loader). */
#ifndef EMBR_IMAGE_INTERNAL_H
#define EMBR_IMAGE_INTERNAL_H

#include "embr/image.h"

/* Allocates im->px for w x h x c (sides 1..EMBR_IMAGE_MAX_SIDE, c 1 or 3) and fills the sizes.
 * On failure *im is zeroed and EMBR_EINVAL / EMBR_ENOMEM returned with a message naming `name`. */
int embr__image_alloc(embr_image *im, int w, int h, int c, const char *name);

/* Checks a spec (channels, sizes, std != 0, resize mode); EMBR_EINVAL with a message otherwise. */
int embr__image_spec_check(const embr_image_spec *spec);

#endif

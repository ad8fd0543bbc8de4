/* EXIF orientation: phone cameras store the sensor's pixels as they are and record in the Exif
 * block (APP1, IFD0 tag 0x0112) how to turn them upright. Decoding applies it, as Pillow's
 * ImageOps.exif_transpose does, so a portrait photo is embedded standing up.
 *
 * The Exif block is hostile input: every offset and count is checked against the block's length
 * before it is read, and anything doubtful means "no orientation" (1), never an error. */
#include "image/image_internal.h"

#include <stdlib.h>
#include <string.h>

enum { TAG_ORIENTATION = 0x0112, TYPE_SHORT = 3 };

static unsigned get16(const unsigned char *p, int le) { return le ? p[0] | p[1] << 8 : p[0] << 8 | p[1]; }
static uint32_t get32(const unsigned char *p, int le) {
  return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
            : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int embr__exif_orientation(const unsigned char *app1, size_t len) {
  if (len < 6 + 8 || memcmp(app1, "Exif\0\0", 6)) return 1;
  const unsigned char *t = app1 + 6; /* the TIFF header: byte order, 42, IFD0's offset */
  size_t n = len - 6;
  int le = t[0] == 'I' && t[1] == 'I';
  if (!le && !(t[0] == 'M' && t[1] == 'M')) return 1;
  if (get16(t + 2, le) != 42) return 1;
  uint32_t ifd = get32(t + 4, le);
  if (ifd < 8 || ifd > n - 2) return 1;
  unsigned count = get16(t + ifd, le);
  for (unsigned i = 0; i < count; i++) {
    size_t e = (size_t)ifd + 2 + (size_t)i * 12;
    if (e + 12 > n) return 1;
    if (get16(t + e, le) != TAG_ORIENTATION) continue;
    if (get16(t + e + 2, le) != TYPE_SHORT || get32(t + e + 4, le) != 1) return 1;
    unsigned v = get16(t + e + 8, le); /* a single SHORT sits in the value field's first 2 bytes */
    return v >= 1 && v <= 8 ? (int)v : 1;
  }
  return 1;
}

/* The source pixel of output pixel (x, y) for each orientation; the output is w x h. Source is
 * sw x sh. Orientations 5-8 swap the sides. Names as Pillow's transpose methods. */
static void source_of(int o, int x, int y, int sw, int sh, int *sx, int *sy) {
  switch (o) {
    case 2: *sx = sw - 1 - x, *sy = y; break;           /* FLIP_LEFT_RIGHT */
    case 3: *sx = sw - 1 - x, *sy = sh - 1 - y; break;  /* ROTATE_180 */
    case 4: *sx = x, *sy = sh - 1 - y; break;           /* FLIP_TOP_BOTTOM */
    case 5: *sx = y, *sy = x; break;                    /* TRANSPOSE */
    case 6: *sx = y, *sy = sh - 1 - x; break;           /* ROTATE_270 (90 degrees clockwise) */
    case 7: *sx = sw - 1 - y, *sy = sh - 1 - x; break;  /* TRANSVERSE */
    case 8: *sx = sw - 1 - y, *sy = x; break;           /* ROTATE_90 (counter-clockwise) */
    default: *sx = x, *sy = y; break;
  }
}

int embr__image_orient(embr_image *im, int orientation, const char *name) {
  if (orientation < 2 || orientation > 8) return 0;
  int sw = im->width, sh = im->height, c = im->channels, swap = orientation >= 5;
  embr_image out;
  int rc = embr__image_alloc(&out, swap ? sh : sw, swap ? sw : sh, c, name);
  if (rc) return rc;
  for (int y = 0; y < out.height; y++)
    for (int x = 0; x < out.width; x++) {
      int sx, sy;
      source_of(orientation, x, y, sw, sh, &sx, &sy);
      memcpy(out.px + ((size_t)y * out.width + x) * c, im->px + ((size_t)sy * sw + sx) * c, (size_t)c);
    }
  embr_image_free(im);
  *im = out;
  return 0;
}

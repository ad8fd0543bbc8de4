/* Image files: PNG through libpng, JPEG through libjpeg, PGM/PPM by hand; all decoded from a
 * memory buffer. Both libraries report errors by longjmp, so each decoder keeps its state in a
 * job struct owned by the caller: the function that calls setjmp modifies no local that is used
 * after the jump, and the caller frees whatever the job holds on either path. Nothing is printed. */
#include "image/image_internal.h"

#include "core/fileio.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

/* A header can claim any size; before allocating we check that the file could hold that much
 * pixel data. deflate expands at most 1032:1. A JPEG block costs at least a bit of Huffman code per
 * component, which bounds it near 1024:1; 2048 leaves room. The slack covers tiny files. */
#define PNG_MAX_RATIO 1032u
#define JPEG_MAX_RATIO 2048u
#define RATIO_SLACK 65536u
/* A progressive JPEG may have many scans, each a pass over the blocks of its components: the
 * work is scans x blocks, so both are bounded. Every block may be visited JPEG_MAX_PASSES times
 * on average (libjpeg's own progression visits each block at most ~10 times), or JPEG_WORK_FLOOR
 * blocks in all for small images; and the scans are capped, as libjpeg-turbo's tools do. */
#define JPEG_MAX_SCANS 1000
#define JPEG_MAX_PASSES 64u
#define JPEG_WORK_FLOOR ((uint64_t)1 << 20)

/* The largest ancillary PNG chunk kept in memory (ICC profiles run to a few hundred KB) and the
 * number of them cached. */
#define PNG_CHUNK_MAX ((png_alloc_size_t)8 << 20)
#define PNG_CHUNK_CACHE_MAX 128

#define MSG_LEN 256

int embr__image_alloc(embr_image *im, int w, int h, int c, const char *name) {
  memset(im, 0, sizeof *im);
  if (!name) name = "image";
  if (w < 1 || h < 1 || w > EMBR_IMAGE_MAX_SIDE || h > EMBR_IMAGE_MAX_SIDE)
    return embr_error(EMBR_EINVAL, "%s: image size %dx%d out of range (1..%d a side)", name, w, h,
                      EMBR_IMAGE_MAX_SIDE);
  if (c != 1 && c != 3) return embr_error(EMBR_EINVAL, "%s: %d channels, expected 1 or 3", name, c);
  /* At most 16384^2 * 3 bytes: fits in a 32-bit size_t too. */
  im->px = embr_alloc((size_t)w * (size_t)h * (size_t)c);
  if (!im->px) return embr_error(EMBR_ENOMEM, "%s: out of memory for a %dx%d image", name, w, h);
  im->width = w;
  im->height = h;
  im->channels = c;
  return 0;
}

void embr_image_free(embr_image *im) {
  if (!im) return;
  embr_free(im->px);
  embr_free(im->alpha);
  memset(im, 0, sizeof *im);
}

/* True when a header's w x h x c pixels could come from `len` bytes at `ratio`:1. */
static int plausible(uint64_t w, uint64_t h, uint64_t c, size_t len, uint64_t ratio) {
  return w * h * c <= (uint64_t)len * ratio + RATIO_SLACK;
}

/* ---- PGM / PPM ---------------------------------------------------------------------------------- */

typedef struct pnm_cur {
  const unsigned char *p;
  size_t len, pos;
  const char *name;
} pnm_cur;

static int is_space(int ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f'; }

/* Skips whitespace and '#' comments (to the end of their line). */
static void pnm_skip(pnm_cur *c) {
  while (c->pos < c->len) {
    unsigned char ch = c->p[c->pos];
    if (ch == '#') {
      while (c->pos < c->len && c->p[c->pos] != '\n' && c->p[c->pos] != '\r') c->pos++;
    } else if (is_space(ch)) {
      c->pos++;
    } else {
      break;
    }
  }
}

/* Reads a decimal number after optional space; values above `max` are refused. */
static int pnm_number(pnm_cur *c, const char *what, unsigned max, unsigned *out) {
  pnm_skip(c);
  size_t start = c->pos;
  uint64_t v = 0;
  while (c->pos < c->len && c->p[c->pos] >= '0' && c->p[c->pos] <= '9') {
    if (v <= max) v = v * 10 + (unsigned)(c->p[c->pos] - '0'); /* stays below 10*max+9 < 2^64 */
    c->pos++;
  }
  if (c->pos == start) {
    if (c->pos >= c->len) return embr_error(EMBR_EFORMAT, "%s: truncated: missing %s", c->name, what);
    return embr_error(EMBR_EFORMAT, "%s: expected %s at byte %zu", c->name, what, start);
  }
  if (v > max) return embr_error(EMBR_EFORMAT, "%s: %s is larger than %u", c->name, what, max);
  *out = (unsigned)v;
  return 0;
}

typedef struct pnm_header {
  int ascii, channels;
  unsigned w, h, maxval;
} pnm_header;

static int pnm_read_header(pnm_cur *c, pnm_header *hd) {
  char kind = (char)c->p[1];
  if (kind == '1' || kind == '4') return embr_error(EMBR_EUNSUPPORTED, "%s: PBM bitmaps are not supported", c->name);
  if (kind == '7') return embr_error(EMBR_EUNSUPPORTED, "%s: PAM images are not supported", c->name);
  hd->ascii = kind == '2' || kind == '3';
  hd->channels = kind == '3' || kind == '6' ? 3 : 1;
  c->pos = 2;
  int rc = pnm_number(c, "width", 1000000000u, &hd->w);
  if (!rc) rc = pnm_number(c, "height", 1000000000u, &hd->h);
  if (!rc) rc = pnm_number(c, "maxval", 1000000000u, &hd->maxval);
  if (rc) return rc;
  if (hd->w < 1 || hd->h < 1 || hd->w > EMBR_IMAGE_MAX_SIDE || hd->h > EMBR_IMAGE_MAX_SIDE)
    return embr_error(EMBR_EFORMAT, "%s: image size %ux%u out of range (1..%d a side)", c->name, hd->w, hd->h,
                      EMBR_IMAGE_MAX_SIDE);
  if (hd->maxval < 1 || hd->maxval > 65535)
    return embr_error(EMBR_EFORMAT, "%s: maxval %u out of range (1..65535)", c->name, hd->maxval);
  /* Binary data starts after exactly one whitespace byte. */
  if (c->pos >= c->len || !is_space(c->p[c->pos]))
    return embr_error(EMBR_EFORMAT, "%s: truncated or malformed header", c->name);
  c->pos++;
  return 0;
}

static uint8_t pnm_scale(unsigned v, unsigned maxval) {
  return (uint8_t)(maxval == 255 ? v : (v * 255u + maxval / 2) / maxval);
}

static int pnm_binary(pnm_cur *c, const pnm_header *hd, embr_image *im) {
  size_t n = (size_t)hd->w * hd->h * (size_t)hd->channels, bps = hd->maxval < 256 ? 1 : 2;
  if (c->len - c->pos < n * bps)
    return embr_error(EMBR_EFORMAT, "%s: truncated: %zu bytes of pixel data, expected %zu", c->name,
                      c->len - c->pos, n * bps);
  int rc = embr__image_alloc(im, (int)hd->w, (int)hd->h, hd->channels, c->name);
  if (rc) return rc;
  const unsigned char *s = c->p + c->pos;
  for (size_t i = 0; i < n; i++) {
    unsigned v = bps == 1 ? s[i] : (unsigned)s[2 * i] << 8 | s[2 * i + 1];
    if (v > hd->maxval) {
      embr_image_free(im);
      return embr_error(EMBR_EFORMAT, "%s: sample %zu is %u, above maxval %u", c->name, i, v, hd->maxval);
    }
    im->px[i] = pnm_scale(v, hd->maxval);
  }
  return 0;
}

static int pnm_ascii(pnm_cur *c, const pnm_header *hd, embr_image *im) {
  size_t n = (size_t)hd->w * hd->h * (size_t)hd->channels;
  /* Every sample takes a digit and a separator: refuse a claim the file cannot hold. */
  if (n > (c->len - c->pos) / 2 + 1)
    return embr_error(EMBR_EFORMAT, "%s: truncated: %zu samples cannot fit in %zu bytes", c->name, n,
                      c->len - c->pos);
  int rc = embr__image_alloc(im, (int)hd->w, (int)hd->h, hd->channels, c->name);
  if (rc) return rc;
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    rc = pnm_number(c, "a sample", hd->maxval, &v);
    if (rc) {
      embr_image_free(im);
      return rc;
    }
    im->px[i] = pnm_scale(v, hd->maxval);
  }
  return 0;
}

static int decode_pnm(const unsigned char *buf, size_t len, const char *name, embr_image *out) {
  pnm_cur c = {buf, len, 0, name};
  pnm_header hd;
  int rc = pnm_read_header(&c, &hd);
  if (rc) return rc;
  return hd.ascii ? pnm_ascii(&c, &hd, out) : pnm_binary(&c, &hd, out);
}

/* ---- PNG ------------------------------------------------------------------------------------------ */

typedef struct png_job {
  const unsigned char *buf;
  size_t len, pos;
  const char *name;
  png_structp png;
  png_infop info;
  png_bytep *rows;
  embr_image im;
  int status; /* set before a jump that is not a libpng error */
  char msg[MSG_LEN];
} png_job;

static void png_read_cb(png_structp png, png_bytep dst, size_t n) {
  png_job *j = png_get_io_ptr(png);
  if (n > j->len - j->pos) png_error(png, "truncated file");
  memcpy(dst, j->buf + j->pos, n);
  j->pos += n;
}

static void png_error_cb(png_structp png, png_const_charp msg) {
  png_job *j = png_get_error_ptr(png);
  snprintf(j->msg, sizeof j->msg, "%s", msg);
  png_longjmp(png, 1);
}

/* libpng's allocator: row buffers and zlib state are small, so anything above PNG_CHUNK_MAX can
 * only come from a chunk's claimed length; refusing it makes libpng fail with "out of memory". */
static png_voidp png_alloc_cb(png_structp png, png_alloc_size_t n) {
  (void)png;
  return n > PNG_CHUNK_MAX ? NULL : malloc(n);
}

static void png_free_cb(png_structp png, png_voidp p) {
  (void)png;
  free(p);
}

static void png_warning_cb(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg; /* warnings (bad ancillary chunks) do not stop decoding and must not be printed */
}

/* Fails the job from inside png_run with our own status and message. */
static void png_fail(png_job *j, int status, const char *msg) {
  j->status = status;
  snprintf(j->msg, sizeof j->msg, "%s", msg);
  png_longjmp(j->png, 1);
}

/* 8-bit grey or RGB whatever the file holds, with or without alpha: palettes expanded, a tRNS
 * chunk made an alpha channel, 16 bits scaled. The colour under the alpha is left as stored. */
static void png_set_transforms(png_structp png, png_infop info, int depth, int ctype) {
  if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (depth == 16) {
#ifdef PNG_READ_SCALE_16_TO_8_SUPPORTED
    png_set_scale_16(png);
#else
    png_set_strip_16(png);
#endif
  }
  png_set_interlace_handling(png);
}

static int png_run(png_job *j) {
  if (setjmp(png_jmpbuf(j->png))) return j->status ? j->status : EMBR_EFORMAT;
  png_set_read_fn(j->png, j, png_read_cb);
  png_set_user_limits(j->png, EMBR_IMAGE_MAX_SIDE, EMBR_IMAGE_MAX_SIDE);
  /* Ancillary chunks (text, sPLT, ICC profiles) are allocated whole at their declared (or
   * decompressed) length before their bytes are read: without a cap a 45-byte file claiming a
   * 2 GiB tEXt chunk makes libpng allocate and zero 2 GiB. Image data is streamed, not capped. */
  png_set_chunk_malloc_max(j->png, PNG_CHUNK_MAX);
  png_set_chunk_cache_max(j->png, PNG_CHUNK_CACHE_MAX);
  /* libpng 1.6 does not apply the chunk limit to every ancillary chunk (a 2 GiB tEXt still gets its
   * buffer), so chunks whose content is never used are skipped unread, and png_alloc_cb refuses
   * any single allocation above PNG_CHUNK_MAX whatever asks for it. */
  static const png_byte unused[] = "tEXt\0zTXt\0iTXt\0sPLT\0iCCP\0eXIf\0";
  png_set_keep_unknown_chunks(j->png, PNG_HANDLE_CHUNK_NEVER, unused, (int)(sizeof unused - 1) / 5);
  png_read_info(j->png, j->info);
  png_uint_32 w = png_get_image_width(j->png, j->info), h = png_get_image_height(j->png, j->info);
  if (!plausible(h, png_get_rowbytes(j->png, j->info) + 1, 1, j->len, PNG_MAX_RATIO))
    png_fail(j, EMBR_EFORMAT, "truncated: the image data cannot fit in the file");
  png_set_transforms(j->png, j->info, png_get_bit_depth(j->png, j->info), png_get_color_type(j->png, j->info));
  png_read_update_info(j->png, j->info);
  int c = png_get_channels(j->png, j->info), has_alpha = c == 2 || c == 4;
  if ((c < 1 || c > 4) || png_get_bit_depth(j->png, j->info) != 8 ||
      png_get_rowbytes(j->png, j->info) != (size_t)w * (size_t)c)
    png_fail(j, EMBR_EUNSUPPORTED, "unsupported pixel layout");
  if (w < 1 || h < 1 || w > EMBR_IMAGE_MAX_SIDE || h > EMBR_IMAGE_MAX_SIDE) png_fail(j, EMBR_EFORMAT, "image size out of range");
  /* Rows are read interleaved with their alpha (interlaced images need the whole buffer), then
   * split in place; px keeps the (unused) alpha bytes at its end. At most 16384^2 * 4 bytes. */
  size_t npx = (size_t)w * (size_t)h;
  j->im.width = (int)w, j->im.height = (int)h, j->im.channels = has_alpha ? c - 1 : c;
  if (!(j->im.px = embr_alloc(npx * (size_t)c))) png_fail(j, EMBR_ENOMEM, "out of memory");
  if (has_alpha && !(j->im.alpha = embr_alloc(npx))) png_fail(j, EMBR_ENOMEM, "out of memory");
  j->rows = malloc((size_t)h * sizeof *j->rows);
  if (!j->rows) png_fail(j, EMBR_ENOMEM, "out of memory");
  for (png_uint_32 y = 0; y < h; y++) j->rows[y] = j->im.px + (size_t)y * w * (size_t)c;
  png_read_image(j->png, j->rows);
  if (has_alpha) {
    /* Pixel i's colour moves to i*(c-1), before anything not yet read (i*c onwards). */
    int cc = c - 1;
    for (size_t i = 0; i < npx; i++) {
      const uint8_t *src = j->im.px + i * (size_t)c;
      j->im.alpha[i] = src[cc];
      for (int k = 0; k < cc; k++) j->im.px[i * (size_t)cc + (size_t)k] = src[k];
    }
  }
  return 0;
}

static int decode_png(const unsigned char *buf, size_t len, const char *name, embr_image *out) {
  png_job j;
  memset(&j, 0, sizeof j);
  j.buf = buf;
  j.len = len;
  j.name = name;
  j.png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &j, png_error_cb, png_warning_cb, NULL, png_alloc_cb,
                                   png_free_cb);
  if (j.png) j.info = png_create_info_struct(j.png);
  int rc = j.info ? png_run(&j) : EMBR_ENOMEM;
  png_destroy_read_struct(&j.png, &j.info, NULL);
  free(j.rows);
  if (rc) {
    embr_image_free(&j.im);
    return embr_error(rc, "%s: PNG: %s", name, j.msg[0] ? j.msg : "out of memory");
  }
  *out = j.im;
  return 0;
}

/* ---- JPEG ----------------------------------------------------------------------------------------- */

typedef struct jpeg_job {
  struct jpeg_error_mgr err; /* first: the callbacks get the job back from cinfo->err */
  struct jpeg_progress_mgr progress;
  jmp_buf jb;
  struct jpeg_decompress_struct cinfo;
  const unsigned char *buf;
  size_t len;
  const char *name;
  embr_image im;
  int status, orientation, last_scan;
  uint64_t work, work_max; /* blocks decoded so far over all scans; the bound */
  char msg[MSG_LEN > JMSG_LENGTH_MAX ? MSG_LEN : JMSG_LENGTH_MAX];
} jpeg_job;

static void jpeg_error_cb(j_common_ptr ci) {
  jpeg_job *j = (jpeg_job *)(void *)ci->err;
  ci->err->format_message(ci, j->msg);
  longjmp(j->jb, 1);
}

/* libjpeg reports damaged data as a warning and goes on, filling what it lost with grey (or
 * keeping a truncated file's last rows): an image that is not what the file meant. Every warning
 * is therefore an error, except those that leave the pixels intact. */
static int harmless_warning(int code) {
  return code == JWRN_EXTRANEOUS_DATA /* junk bytes between segments */ || code == JWRN_JFIF_MAJOR ||
         code == JWRN_ADOBE_XFORM || code == JWRN_BOGUS_ICC;
}

static void jpeg_emit_cb(j_common_ptr ci, int level) {
  if (level >= 0) return;
  ci->err->num_warnings++;
  if (harmless_warning(ci->err->msg_code)) return;
  jpeg_job *j = (jpeg_job *)(void *)ci->err;
  char m[JMSG_LENGTH_MAX];
  ci->err->format_message(ci, m);
  j->status = EMBR_EFORMAT;
  snprintf(j->msg, sizeof j->msg, "%s", ci->err->msg_code == JWRN_JPEG_EOF ? "truncated file" : m);
  longjmp(j->jb, 1);
}

static void jpeg_output_cb(j_common_ptr ci) { (void)ci; }

static void jpeg_fail(jpeg_job *j, int status, const char *msg) {
  j->status = status;
  snprintf(j->msg, sizeof j->msg, "%s", msg);
  longjmp(j->jb, 1);
}

static uint64_t blocks_of(jpeg_component_info *const *comp, int n) {
  uint64_t b = 0;
  for (int i = 0; i < n; i++) b += (uint64_t)comp[i]->width_in_blocks * comp[i]->height_in_blocks;
  return b;
}

/* Called before each unit of input: on a new scan, counts the blocks it will decode. */
static void jpeg_progress_cb(j_common_ptr ci) {
  j_decompress_ptr d = (j_decompress_ptr)ci;
  jpeg_job *j = (jpeg_job *)(void *)ci->err;
  if (d->input_scan_number > JPEG_MAX_SCANS) jpeg_fail(j, EMBR_EFORMAT, "too many progressive scans");
  if (d->input_scan_number == j->last_scan || d->comps_in_scan < 1) return;
  j->last_scan = d->input_scan_number;
  j->work += blocks_of(d->cur_comp_info, d->comps_in_scan);
  if (j->work > j->work_max)
    jpeg_fail(j, EMBR_EFORMAT, "too many progressive scans for the image size (decoding would take too long)");
}

/* The orientation recorded in an Exif APP1 segment (saved by jpeg_save_markers), or 1. */
static int jpeg_orientation(j_decompress_ptr d) {
  for (jpeg_saved_marker_ptr m = d->marker_list; m; m = m->next)
    if (m->marker == JPEG_APP0 + 1) {
      int o = embr__exif_orientation(m->data, m->data_length);
      if (o != 1) return o;
    }
  return 1;
}

/* Header checks between jpeg_read_header and jpeg_start_decompress: colour space and size. */
static void jpeg_check_header(jpeg_job *j) {
  j_decompress_ptr d = &j->cinfo;
  int cmyk = d->jpeg_color_space == JCS_CMYK || d->jpeg_color_space == JCS_YCCK;
  d->out_color_space = cmyk ? JCS_CMYK : d->num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  if (d->image_width > EMBR_IMAGE_MAX_SIDE || d->image_height > EMBR_IMAGE_MAX_SIDE)
    jpeg_fail(j, EMBR_EFORMAT, "image larger than EMBR_IMAGE_MAX_SIDE");
  if (!plausible(d->image_width, d->image_height, (uint64_t)d->num_components, j->len, JPEG_MAX_RATIO))
    jpeg_fail(j, EMBR_EFORMAT, "truncated: the image data cannot fit in the file");
  uint64_t all = 0;
  for (int i = 0; i < d->num_components; i++)
    all += (uint64_t)d->comp_info[i].width_in_blocks * d->comp_info[i].height_in_blocks;
  j->work_max = all * JPEG_MAX_PASSES > JPEG_WORK_FLOOR ? all * JPEG_MAX_PASSES : JPEG_WORK_FLOOR;
}

/* A CMYK row (libjpeg gives Adobe's inverted CMYK, as Photoshop writes it; YCCK arrives converted)
 * to RGB the way Pillow does: it reads CMYK JPEGs as inverted ("CMYK;I"), then
 * R = (255 - K) - (255 - K) * C / 255 rounded as its MULDIV255, likewise G from M and B from Y. */
static void cmyk_row_to_rgb(const unsigned char *in, unsigned char *out, unsigned w) {
  for (unsigned x = 0; x < w; x++, in += 4, out += 3) {
    unsigned nk = in[3]; /* 255 - K, with K = 255 - in[3] */
    for (int c = 0; c < 3; c++) {
      unsigned t = (255u - in[c]) * nk + 128;
      out[c] = (unsigned char)(nk - (((t >> 8) + t) >> 8));
    }
  }
}

static int jpeg_run(jpeg_job *j) {
  if (setjmp(j->jb)) return j->status ? j->status : EMBR_EFORMAT;
  jpeg_create_decompress(&j->cinfo);
  j->cinfo.progress = &j->progress;
  jpeg_mem_src(&j->cinfo, j->buf, (unsigned long)j->len);
  jpeg_save_markers(&j->cinfo, JPEG_APP0 + 1, 0xffff); /* Exif, for the orientation */
  jpeg_read_header(&j->cinfo, TRUE);
  jpeg_check_header(j);
  j->orientation = jpeg_orientation(&j->cinfo);
  jpeg_start_decompress(&j->cinfo);
  int c = j->cinfo.output_components, cmyk = c == 4;
  if (c != 1 && c != 3 && !cmyk) jpeg_fail(j, EMBR_EUNSUPPORTED, "unsupported colour layout");
  if (embr__image_alloc(&j->im, (int)j->cinfo.output_width, (int)j->cinfo.output_height, cmyk ? 3 : c, j->name))
    jpeg_fail(j, EMBR_ENOMEM, "out of memory");
  /* CMYK rows go through a buffer from libjpeg's pool (freed with the decompressor, even after a jump). */
  JSAMPARRAY tmp = cmyk ? j->cinfo.mem->alloc_sarray((j_common_ptr)&j->cinfo, JPOOL_IMAGE, j->cinfo.output_width * 4, 1)
                        : NULL;
  while (j->cinfo.output_scanline < j->cinfo.output_height) {
    JSAMPROW row = j->im.px + (size_t)j->cinfo.output_scanline * j->cinfo.output_width * (size_t)j->im.channels;
    jpeg_read_scanlines(&j->cinfo, cmyk ? tmp : &row, 1);
    if (cmyk) cmyk_row_to_rgb(tmp[0], row, j->cinfo.output_width);
  }
  /* The pixels are complete here (a truncated file was an error above); a missing end marker
   * after them is harmless, so no jpeg_finish_decompress (which would read on looking for it). */
  return 0;
}

static int decode_jpeg(const unsigned char *buf, size_t len, const char *name, embr_image *out) {
  jpeg_job *j = calloc(1, sizeof *j); /* a few KB; keep it off the loader's stack */
  if (!j) return embr_error(EMBR_ENOMEM, "%s: out of memory", name);
  j->buf = buf;
  j->len = len;
  j->name = name;
  j->cinfo.err = jpeg_std_error(&j->err);
  j->err.error_exit = jpeg_error_cb;
  j->err.emit_message = jpeg_emit_cb;
  j->err.output_message = jpeg_output_cb;
  j->progress.progress_monitor = jpeg_progress_cb;
  int rc = jpeg_run(j);
  jpeg_destroy_decompress(&j->cinfo); /* safe on a half-created struct: it checks cinfo->mem */
  if (!rc && (rc = embr__image_orient(&j->im, j->orientation, name))) { /* out of memory, already reported */
    embr_image_free(&j->im);
    free(j);
    return rc;
  }
  if (rc) {
    embr_image_free(&j->im);
    rc = embr_error(rc, "%s: JPEG: %s", name, j->msg);
  } else {
    *out = j->im;
  }
  free(j);
  return rc;
}

/* ---- entry points --------------------------------------------------------------------------------- */

embr_status embr_image_decode(const unsigned char *buf, size_t len, const char *name, embr_image *out) {
  if (!name) name = "image";
  if (!out) return embr_error(EMBR_EINVAL, "%s: no output image", name);
  memset(out, 0, sizeof *out);
  if (!buf || len == 0) return embr_error(EMBR_EFORMAT, "%s: empty file", name);
  static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (len >= 8 && memcmp(buf, png_sig, 8) == 0) return decode_png(buf, len, name, out);
  if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff) return decode_jpeg(buf, len, name, out);
  if (len >= 3 && buf[0] == 'P' && buf[1] >= '1' && buf[1] <= '7' && (is_space(buf[2]) || buf[2] == '#'))
    return decode_pnm(buf, len, name, out);
  return embr_error(EMBR_EFORMAT, "%s: not a PNG, JPEG, PGM or PPM image", name);
}

embr_status embr_image_read(const char *path, embr_image *out) {
  if (out) memset(out, 0, sizeof *out);
  embr__filemap fm;
  int rc = embr__filemap_open(&fm, path, EMBR__READ_ANY);
  if (rc) return rc;
  rc = embr_image_decode(fm.data, fm.len, path, out);
  embr__filemap_close(&fm);
  return rc;
}

/* ---- writing -------------------------------------------------------------------------------------- */

typedef struct png_wjob {
  embr__wfile *w;
  const embr_image *im;
  png_structp png;
  png_infop info;
  char msg[MSG_LEN];
} png_wjob;

static void png_write_cb(png_structp png, png_bytep p, size_t n) {
  png_wjob *j = png_get_io_ptr(png);
  if (embr__wfile_write(j->w, p, n)) png_error(png, "write failed");
}

static void png_flush_cb(png_structp png) { (void)png; }

static void png_werror_cb(png_structp png, png_const_charp msg) {
  png_wjob *j = png_get_error_ptr(png);
  snprintf(j->msg, sizeof j->msg, "%s", msg);
  png_longjmp(png, 1);
}

static int png_wrun(png_wjob *j) {
  if (setjmp(png_jmpbuf(j->png))) return EMBR_EIO;
  const embr_image *im = j->im;
  png_set_write_fn(j->png, j, png_write_cb, png_flush_cb);
  png_set_IHDR(j->png, j->info, (png_uint_32)im->width, (png_uint_32)im->height, 8,
               im->channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(j->png, j->info);
  size_t stride = (size_t)im->width * (size_t)im->channels;
  for (int y = 0; y < im->height; y++) png_write_row(j->png, im->px + (size_t)y * stride);
  png_write_end(j->png, j->info);
  return 0;
}

static int write_png(embr__wfile *w, const embr_image *im, const char *path) {
  png_wjob j;
  memset(&j, 0, sizeof j);
  j.w = w;
  j.im = im;
  j.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &j, png_werror_cb, png_warning_cb);
  if (j.png) j.info = png_create_info_struct(j.png);
  if (!j.info) {
    png_destroy_write_struct(&j.png, NULL);
    return embr_error(EMBR_ENOMEM, "%s: out of memory", path);
  }
  int rc = png_wrun(&j);
  png_destroy_write_struct(&j.png, &j.info);
  /* A failed write already recorded the system's message; otherwise report libpng's. */
  if (rc && !w->failed) rc = embr_error(EMBR_EIO, "%s: PNG: %s", path, j.msg);
  return rc;
}

static int write_pnm(embr__wfile *w, const embr_image *im) {
  size_t n = (size_t)im->width * (size_t)im->height * (size_t)im->channels;
  int rc = embr__wfile_printf(w, "P%c\n%d %d\n255\n", im->channels == 1 ? '5' : '6', im->width, im->height);
  return rc ? rc : embr__wfile_write(w, im->px, n);
}

/* The output kind from the extension: 'p' PNM (with the channel count it needs, 0 any), 'j' JPEG
 * (refused), 'n' PNG. */
static char out_kind(const char *path, int *need_channels) {
  const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
  *need_channels = 0;
  if (!dot || (slash && dot < slash)) return 'n';
  if (strcasecmp(dot, ".pgm") == 0) *need_channels = 1;
  if (strcasecmp(dot, ".ppm") == 0) *need_channels = 3;
  if (*need_channels || strcasecmp(dot, ".pnm") == 0) return 'p';
  if (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0) return 'j';
  return 'n';
}

static int check_image(const embr_image *im, const char *path) {
  if (!im || !im->px) return embr_error(EMBR_EINVAL, "%s: no image to write", path);
  if (im->width < 1 || im->height < 1 || im->width > EMBR_IMAGE_MAX_SIDE || im->height > EMBR_IMAGE_MAX_SIDE)
    return embr_error(EMBR_EINVAL, "%s: image size %dx%d out of range", path, im->width, im->height);
  if (im->channels != 1 && im->channels != 3)
    return embr_error(EMBR_EINVAL, "%s: %d channels, expected 1 or 3", path, im->channels);
  return 0;
}

embr_status embr_image_write(const char *path, const embr_image *im) {
  if (!path || !*path) return embr_error(EMBR_EINVAL, "empty output file name");
  int rc = check_image(im, path), need;
  if (rc) return rc;
  char kind = out_kind(path, &need);
  if (kind == 'j') return embr_error(EMBR_EUNSUPPORTED, "%s: writing JPEG is not supported (use .png)", path);
  if (need && need != im->channels)
    return embr_error(EMBR_EINVAL, "%s: a %s file needs %d channel(s), the image has %d", path,
                      need == 1 ? "PGM" : "PPM", need, im->channels);
  embr__wfile w;
  rc = embr__wfile_open(&w, path);
  if (rc) return rc;
  rc = kind == 'p' ? write_pnm(&w, im) : write_png(&w, im, path);
  if (rc) {
    embr__wfile_abort(&w);
    return rc;
  }
  return embr__wfile_commit(&w);
}

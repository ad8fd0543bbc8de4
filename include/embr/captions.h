/* embr captions: image-caption pairs files, the training and evaluation input of CLIP-style
 * models. One pair per line:
 *
 *     FILE<TAB>CAPTION
 *
 * FILE is an image path relative to a data folder; a file may appear on several lines with
 * different captions (several captions of one picture). The reader returns the distinct images in
 * first-seen order and, per caption, its text and the index of its image.
 *
 * Rules (every refusal is EMBR_EFORMAT unless noted, with a one-line message naming the file and
 * the line, from 1):
 *   - UTF-8 text; a leading byte-order mark is skipped; invalid UTF-8, a NUL byte or another
 *     control byte (below 0x20 other than the tab, or 0x7f) is refused naming the line.
 *   - Lines end in "\n", "\r\n" or a lone "\r"; blank (all-whitespace) lines are skipped.
 *   - Exactly one tab per line: none, or a second one (a third column, a tab inside a caption),
 *     is refused.
 *   - FILE is taken as written (not trimmed) and must be non-empty and relative: an absolute path
 *     or a ".." component (anything that could leave the data folder) is refused.
 *   - CAPTION is trimmed of surrounding whitespace and must not be empty then.
 *   - With a data folder, every image must exist there as a regular file (symbolic links are
 *     followed): checked on read, the first time each image is named; EMBR_ENOTFOUND naming the
 *     pairs file, the line and the joined path.
 *   - A file without pairs, or larger than EMBR_CAPTIONS_MAX_BYTES, is refused.
 * Memory: the file's bytes plus about 48 bytes per line. Thread-safe (no shared state). */
#ifndef EMBR_CAPTIONS_H
#define EMBR_CAPTIONS_H

#include "embr/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EMBR_CAPTIONS_MAX_BYTES ((int64_t)1 << 30)

typedef struct embr_captions {
  int64_t n_images;
  char **image;         /* n_images paths as written in the file, in first-seen order */
  char **image_path;    /* n_images paths to open: dir "/" image (equal to image without a dir) */
  int64_t n;            /* captions, in file order */
  char **text;          /* n captions, trimmed, NUL-terminated UTF-8 */
  int64_t *image_index; /* n: caption i describes image[image_index[i]] */
  int64_t *line;        /* n: the line of caption i in the file (from 1), for messages */
  char *buf, *pbuf;     /* storage of the strings (internal) */
} embr_captions;

/* Reads the pairs file `path` ("-" = standard input) into *out (overwritten; left empty on
 * failure; free with embr_captions_free). dir: the data folder the image paths are relative to;
 * each image is checked to exist there. dir NULL: no folder, no existence check (for embeddings
 * computed elsewhere; image_path then equals image). Errors: EMBR_ENOTFOUND/EMBR_EIO (the pairs
 * file, or an image), EMBR_EFORMAT (the rules above), EMBR_EINVAL (NULL out or path),
 * EMBR_ENOMEM. */
EMBR_API embr_status embr_captions_read(const char *path, const char *dir, embr_captions *out);
/* The same from memory (fuzzing, tests); `name` stands for the file in messages. The buffer need
 * not be NUL-terminated and is not kept. */
EMBR_API embr_status embr_captions_read_mem(const void *buf, size_t len, const char *name, const char *dir,
                                            embr_captions *out);
/* Frees what the readers allocated and zeroes *c. NULL or an empty struct is a no-op. */
EMBR_API void embr_captions_free(embr_captions *c);

#ifdef __cplusplus
}
#endif
#endif

/* embr lines: text files of one item per line (ids, labels, JSON-lines metadata), read the same
 * way by every front end, and the comma-separated integer lists of command-line flags.
 *
 * A line ends at '\n'; a "\r\n" ending counts as '\n' and a final line needs no newline (so an
 * empty file has 0 lines, "a\n" and "a" have 1). Empty lines are kept: they are items (an empty
 * label, "no metadata"). Files larger than EMBR_LINES_MAX_BYTES are refused before their lines are
 * split, and a NUL byte (a binary file given by mistake) is refused naming the line. Every error
 * leaves a one-line message naming the file and, where there is one, the line (from 1). */
#ifndef EMBR_LINES_H
#define EMBR_LINES_H

#include "embr/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EMBR_LINES_MAX_BYTES ((int64_t)1 << 30)

typedef struct embr_lines {
  int64_t n;   /* number of lines */
  char **line; /* n NUL-terminated strings without their line ending; owned by the struct */
  char *buf;   /* storage of the strings (internal) */
} embr_lines;

/* Reads `path` ("-" = standard input) into *out, which is overwritten and left empty on failure;
 * free it with embr_lines_free. With expect >= 0 the file must hold exactly that many lines, else
 * EMBR_EINVAL with "PATH: 2 ids for 3 vectors (one per line expected)", where `what` and `per`
 * name the items and what they belong to ("ids", "vectors"); checked before the line table is
 * allocated. Errors: EMBR_ENOTFOUND/EMBR_EIO (open, read), EMBR_EFORMAT (too large, NUL byte),
 * EMBR_EINVAL (count), EMBR_ENOMEM. Thread-safe (no shared state). */
EMBR_API embr_status embr_lines_read(const char *path, int64_t expect, const char *what, const char *per,
                                     embr_lines *out);
/* The same from memory (fuzzing, tests); `name` stands for the file in messages. The buffer need
 * not be NUL-terminated and is not kept. */
EMBR_API embr_status embr_lines_read_mem(const void *buf, size_t len, const char *name, int64_t expect,
                                         const char *what, const char *per, embr_lines *out);
/* Frees what embr_lines_read allocated and zeroes *l. NULL or an empty struct is a no-op. */
EMBR_API void embr_lines_free(embr_lines *l);

/* Parses every line as one id: a non-negative decimal integer up to INT64_MAX, with optional spaces
 * or tabs around it, into ids (l->n entries, caller-owned). Errors: EMBR_EFORMAT naming `name`, the
 * line and the text. */
EMBR_API embr_status embr_lines_parse_ids(const embr_lines *l, const char *name, int64_t *ids);

/* Parses a flag value such as "16,32,64": decimal integers in [min, max] separated by single
 * commas, at least one and at most max_n, into out; *n receives the count. Errors: EMBR_EINVAL
 * with a message quoting the value (empty items, signs where min >= 0, out-of-range or too many
 * values). Thread-safe. */
EMBR_API embr_status embr_int_list_parse(const char *s, int64_t min, int64_t max, int64_t *out, int max_n, int *n);

#ifdef __cplusplus
}
#endif
#endif

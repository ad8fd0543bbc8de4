/* Internal file helpers: whole-file input and atomic output (temporary file beside the target,
 * fsync, rename).
 *
 * Inputs are copied into memory with read(2), not mapped: a file truncated by another process while
 * it is read is then an error, where a mapping would kill the process with SIGBUS (and the library
 * installs no signal handlers). embr__filemap_map is the one exception, for index files the user
 * asked to search in place (EMBR_LOAD_MMAP). */
#ifndef EMBR_CORE_FILEIO_H
#define EMBR_CORE_FILEIO_H

#include <stddef.h>
#include <stdio.h>

#include <stdint.h>

/* What a pipe or device (not a regular file) may deliver at most, whatever the caller allows:
 * /dev/zero or an endless producer must end in an error, not in all of memory. */
#define EMBR__STREAM_MAX ((size_t)1 << 30)
/* max_bytes for inputs of any size (regular files are bounded by their own length). */
#define EMBR__READ_ANY SIZE_MAX

/* A file's bytes in memory. `data` is NULL for an empty file. */
typedef struct embr__filemap {
  const unsigned char *data;
  size_t len;
  int mapped; /* 1: munmap, 0: free */
} embr__filemap;

/* Reads `path` ("-": standard input) whole into memory: refuses a missing path, a directory,
 * anything unreadable, a file of more than max_bytes (a pipe or device: more than
 * min(max_bytes, EMBR__STREAM_MAX)), and a regular file whose size changes while it is read. */
int embr__filemap_open(embr__filemap *fm, const char *path, size_t max_bytes);
/* The same for a file that must be a regular file (a collection's own files): opened without
 * blocking, so a FIFO or device put in its place is refused at once instead of waited on. */
int embr__filemap_open_regular(embr__filemap *fm, const char *path, size_t max_bytes);
/* Maps a regular file read-only (other inputs are read as above). The caller accepts that a file
 * truncated by another process while mapped raises SIGBUS on access: only for EMBR_LOAD_MMAP. */
int embr__filemap_map(embr__filemap *fm, const char *path);
/* Reads a small regular file of at most `cap` bytes into buf (*len bytes). Never blocks: a FIFO,
 * device or anything else that is not a regular file is refused, as is a larger file. */
int embr__file_read_small(const char *path, void *buf, size_t cap, size_t *len);
void embr__filemap_close(embr__filemap *fm);

/* An output file written atomically. Use: open, write..., commit (or abort on any failure). */
typedef struct embr__wfile {
  FILE *f;
  char *path;
  char *tmp;
  int failed;
} embr__wfile;

int embr__wfile_open(embr__wfile *w, const char *path);
/* Returns 0 or EMBR_EIO; after a failure further writes are ignored and commit fails. */
int embr__wfile_write(embr__wfile *w, const void *p, size_t n);
int embr__wfile_printf(embr__wfile *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Flushes, fsyncs, renames over `path` and fsyncs the directory. Frees w either way. */
int embr__wfile_commit(embr__wfile *w);
/* Removes the temporary file and frees w. Safe after a failed open or commit. */
void embr__wfile_abort(embr__wfile *w);

#endif

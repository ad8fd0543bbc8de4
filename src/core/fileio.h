/* Internal file helpers: whole-file input (mmap for regular files) and atomic output
 * (temporary file beside the target, fsync, rename). */
#ifndef EMBR_CORE_FILEIO_H
#define EMBR_CORE_FILEIO_H

#include <stddef.h>
#include <stdio.h>

/* A file's bytes in memory. `data` is NULL for an empty file. */
typedef struct embr__filemap {
  const unsigned char *data;
  size_t len;
  int mapped; /* 1: munmap, 0: free */
} embr__filemap;

/* Opens `path` for reading: refuses a missing path, a directory, and (with a clear message)
 * anything unreadable. Regular files are mapped; pipes and devices are read whole. */
int embr__filemap_open(embr__filemap *fm, const char *path);
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

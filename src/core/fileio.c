/* Whole-file input and atomic output; see fileio.h. */
#include "core/fileio.h"

#include "embr/core.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads a pipe or device to its end, refusing more than `max` bytes (so /dev/zero or an endless
 * producer ends in an error, not in all of memory). */
static int read_stream(int fd, const char *path, size_t max, embr__filemap *fm) {
  size_t limit = max < SIZE_MAX ? max + 1 : SIZE_MAX; /* one byte past max tells "more than max" */
  size_t cap = limit < ((size_t)1 << 16) ? limit : (size_t)1 << 16, len = 0;
  unsigned char *buf = malloc(cap ? cap : 1);
  if (!buf) return embr_error(EMBR_ENOMEM, "%s: out of memory", path);
  for (;;) {
    if (len == cap) {
      if (cap >= limit) break;
      size_t ncap = cap > limit / 2 ? limit : cap * 2;
      unsigned char *nb = realloc(buf, ncap);
      if (!nb) {
        free(buf);
        return embr_error(EMBR_ENOMEM, "%s: out of memory reading the input", path);
      }
      buf = nb;
      cap = ncap;
    }
    ssize_t r = read(fd, buf + len, cap - len);
    if (r < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      free(buf);
      return embr_error(EMBR_EIO, "%s: read failed: %s", path, strerror(e));
    }
    if (r == 0) break;
    len += (size_t)r;
  }
  if (len > max) {
    free(buf);
    return embr_error(EMBR_EFORMAT, "%s: more than %zu bytes from a pipe or device (save it to a file first)", path, max);
  }
  if (len == 0) {
    free(buf);
    buf = NULL;
  }
  fm->data = buf;
  fm->len = len;
  return 0;
}

/* read(2) that retries on EINTR and returns the bytes read before end of file or an error. */
static ssize_t read_full(int fd, unsigned char *p, size_t n) {
  size_t got = 0;
  while (got < n) {
    size_t ask = n - got < ((size_t)1 << 30) ? n - got : ((size_t)1 << 30);
    ssize_t r = read(fd, p + got, ask);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) break;
    got += (size_t)r;
  }
  return (ssize_t)got;
}

/* Copies a regular file of `size` bytes into memory. A file that shrinks or grows meanwhile is an
 * error: the caller never sees a mix of two versions, and no mapped page can vanish (SIGBUS). */
static int read_regular(int fd, const char *path, size_t size, embr__filemap *fm) {
  if (size == 0) return 0;
  unsigned char *buf = malloc(size), extra;
  if (!buf) return embr_error(EMBR_ENOMEM, "%s: out of memory for its %zu bytes", path, size);
  ssize_t got = read_full(fd, buf, size);
  if (got < 0) {
    int e = errno;
    free(buf);
    return embr_error(EMBR_EIO, "%s: read failed: %s", path, strerror(e));
  }
  if ((size_t)got != size || read_full(fd, &extra, 1) != 0) {
    free(buf);
    return embr_error(EMBR_EIO, "%s: the file changed size while it was read (%zu bytes expected)", path, size);
  }
  fm->data = buf;
  fm->len = size;
  return 0;
}

/* Opens `path` ("-": standard input) and checks it is not a directory; *fd and *st on success. */
static int open_input(const char *path, int extra_flags, int *fd, struct stat *st) {
  if (!path || !*path) return embr_error(EMBR_EINVAL, "empty file name");
  *fd = strcmp(path, "-") == 0 ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC | extra_flags);
  if (*fd < 0) {
    int e = errno;
    return embr_error(e == ENOENT ? EMBR_ENOTFOUND : EMBR_EIO, "%s: cannot open: %s", path, strerror(e));
  }
  if (fstat(*fd, st) != 0) {
    int e = errno;
    close(*fd);
    return embr_error(EMBR_EIO, "%s: cannot stat: %s", path, strerror(e));
  }
  if (S_ISDIR(st->st_mode)) {
    close(*fd);
    return embr_error(EMBR_EIO, "%s: is a directory, expected a file", path);
  }
  return 0;
}

static int too_large(const char *path, uint64_t size, size_t max) {
  return embr_error(EMBR_EFORMAT, "%s: %llu bytes, more than the %zu this kind of file may hold", path,
                    (unsigned long long)size, max);
}

/* regular_only: opened without blocking (a FIFO with no writer would wait forever) and refused
 * unless it is a regular file. */
static int read_input(embr__filemap *fm, const char *path, size_t max_bytes, int regular_only) {
  memset(fm, 0, sizeof *fm);
  int fd, rc;
  struct stat st;
  if ((rc = open_input(path, regular_only ? O_NONBLOCK : 0, &fd, &st))) return rc;
  if (S_ISREG(st.st_mode)) {
    if ((uint64_t)st.st_size > max_bytes || (uint64_t)st.st_size > SIZE_MAX)
      rc = too_large(path, (uint64_t)st.st_size, max_bytes);
    else
      rc = read_regular(fd, path, (size_t)st.st_size, fm);
  } else if (regular_only) {
    rc = embr_error(EMBR_EFORMAT, "%s: not a regular file", path);
  } else {
    rc = read_stream(fd, path, max_bytes < EMBR__STREAM_MAX ? max_bytes : EMBR__STREAM_MAX, fm);
  }
  close(fd);
  return rc;
}

int embr__filemap_open(embr__filemap *fm, const char *path, size_t max_bytes) {
  return read_input(fm, path, max_bytes, 0);
}

int embr__filemap_open_regular(embr__filemap *fm, const char *path, size_t max_bytes) {
  return read_input(fm, path, max_bytes, 1);
}

int embr__filemap_map(embr__filemap *fm, const char *path) {
  memset(fm, 0, sizeof *fm);
  int fd, rc = 0;
  struct stat st;
  if ((rc = open_input(path, 0, &fd, &st))) return rc;
  if (!S_ISREG(st.st_mode)) {
    rc = read_stream(fd, path, EMBR__STREAM_MAX, fm);
  } else if (st.st_size > 0) {
    void *p = (uint64_t)st.st_size > SIZE_MAX ? MAP_FAILED : mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      rc = embr_error(EMBR_EIO, "%s: cannot map: %s", path, strerror(errno));
    } else {
      fm->data = p;
      fm->len = (size_t)st.st_size;
      fm->mapped = 1;
    }
  }
  close(fd);
  return rc;
}

int embr__file_read_small(const char *path, void *buf, size_t cap, size_t *len) {
  embr__filemap fm;
  *len = 0;
  int rc = embr__filemap_open_regular(&fm, path, cap);
  if (rc) return rc;
  if (fm.len) memcpy(buf, fm.data, fm.len);
  *len = fm.len;
  embr__filemap_close(&fm);
  return 0;
}

void embr__filemap_close(embr__filemap *fm) {
  if (fm->data) {
    if (fm->mapped)
      munmap((void *)fm->data, fm->len);
    else
      free((void *)fm->data);
  }
  memset(fm, 0, sizeof *fm);
}

int embr__wfile_open(embr__wfile *w, const char *path) {
  memset(w, 0, sizeof *w);
  if (!path || !*path) return embr_error(EMBR_EINVAL, "empty output file name");
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    return embr_error(EMBR_EIO, "%s: is a directory, expected a file name", path);
  size_t n = strlen(path);
  w->path = malloc(n + 1);
  w->tmp = malloc(n + 32);
  if (!w->path || !w->tmp) {
    free(w->path);
    free(w->tmp);
    memset(w, 0, sizeof *w);
    return embr_error(EMBR_ENOMEM, "out of memory");
  }
  memcpy(w->path, path, n + 1);
  snprintf(w->tmp, n + 32, "%s.tmp.XXXXXX", path);
  int fd = mkstemp(w->tmp);
  if (fd < 0) {
    int e = errno;
    free(w->path);
    free(w->tmp);
    memset(w, 0, sizeof *w);
    return embr_error(EMBR_EIO, "%s: cannot create: %s", path, strerror(e));
  }
  fchmod(fd, 0644); /* mkstemp makes 0600; outputs are ordinary shareable files */
  w->f = fdopen(fd, "wb");
  if (!w->f) {
    int e = errno;
    close(fd);
    unlink(w->tmp);
    free(w->path);
    free(w->tmp);
    memset(w, 0, sizeof *w);
    return embr_error(EMBR_EIO, "%s: cannot open: %s", path, strerror(e));
  }
  return 0;
}

int embr__wfile_write(embr__wfile *w, const void *p, size_t n) {
  if (w->failed) return EMBR_EIO;
  if (n && fwrite(p, 1, n, w->f) != n) {
    w->failed = errno ? errno : EIO;
    return embr_error(EMBR_EIO, "%s: write failed: %s", w->path, strerror(w->failed));
  }
  return 0;
}

int embr__wfile_printf(embr__wfile *w, const char *fmt, ...) {
  if (w->failed) return EMBR_EIO;
  va_list ap;
  va_start(ap, fmt);
  int r = vfprintf(w->f, fmt, ap);
  va_end(ap);
  if (r < 0) {
    w->failed = errno ? errno : EIO;
    return embr_error(EMBR_EIO, "%s: write failed: %s", w->path, strerror(w->failed));
  }
  return 0;
}

static void wfile_release(embr__wfile *w) {
  free(w->path);
  free(w->tmp);
  memset(w, 0, sizeof *w);
}

static void fsync_dir_of(const char *path) {
  char *copy = strdup(path);
  if (!copy) return;
  int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  free(copy);
}

int embr__wfile_commit(embr__wfile *w) {
  int rc = 0;
  if (!w->f) return embr_error(EMBR_EIO, "output file is not open");
  if (w->failed) rc = EMBR_EIO;
  if (!rc && fflush(w->f) != 0)
    rc = embr_error(EMBR_EIO, "%s: write failed: %s", w->path, strerror(errno));
  if (!rc && fsync(fileno(w->f)) != 0)
    rc = embr_error(EMBR_EIO, "%s: fsync failed: %s", w->path, strerror(errno));
  if (fclose(w->f) != 0 && !rc)
    rc = embr_error(EMBR_EIO, "%s: close failed: %s", w->path, strerror(errno));
  w->f = NULL;
  if (!rc && rename(w->tmp, w->path) != 0)
    rc = embr_error(EMBR_EIO, "%s: cannot rename into place: %s", w->path, strerror(errno));
  if (rc) {
    unlink(w->tmp);
  } else {
    fsync_dir_of(w->path);
  }
  wfile_release(w);
  return rc;
}

void embr__wfile_abort(embr__wfile *w) {
  if (w->f) {
    fclose(w->f);
    w->f = NULL;
  }
  if (w->tmp) unlink(w->tmp);
  wfile_release(w);
}

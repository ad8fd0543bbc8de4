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

static int read_all_fd(int fd, const char *path, embr__filemap *fm) {
  size_t cap = 1 << 16, len = 0;
  unsigned char *buf = malloc(cap);
  if (!buf) return embr_error(EMBR_ENOMEM, "%s: out of memory", path);
  for (;;) {
    if (len == cap) {
      unsigned char *nb = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
      if (!nb) {
        free(buf);
        return embr_error(EMBR_ENOMEM, "%s: out of memory reading the input", path);
      }
      buf = nb;
      cap *= 2;
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
  if (len == 0) {
    free(buf);
    buf = NULL;
  }
  fm->data = buf;
  fm->len = len;
  fm->mapped = 0;
  return 0;
}

int embr__filemap_open(embr__filemap *fm, const char *path) {
  memset(fm, 0, sizeof *fm);
  if (!path || !*path) return embr_error(EMBR_EINVAL, "empty file name");
  int fd = strcmp(path, "-") == 0 ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return embr_error(e == ENOENT ? EMBR_ENOTFOUND : EMBR_EIO, "%s: cannot open: %s", path,
                      strerror(e));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return embr_error(EMBR_EIO, "%s: cannot stat: %s", path, strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    close(fd);
    return embr_error(EMBR_EIO, "%s: is a directory, expected a file", path);
  }
  int rc = 0;
  if (S_ISREG(st.st_mode) && st.st_size > 0) {
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      rc = embr_error(EMBR_EIO, "%s: cannot map: %s", path, strerror(errno));
    } else {
      madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL);
      fm->data = p;
      fm->len = (size_t)st.st_size;
      fm->mapped = 1;
    }
  } else if (!S_ISREG(st.st_mode)) {
    rc = read_all_fd(fd, path, fm);
  }
  close(fd);
  return rc;
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

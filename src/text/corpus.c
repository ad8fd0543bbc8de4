/* Streaming word reader over a byte range of a corpus file; see include/embr/text.h. */
#include "embr/text.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { CORPUS_BUF = 1 << 20 };

struct embr_corpus {
  int fd;
  char *path;
  int64_t pos;   /* file offset of buf[0] */
  int64_t end;   /* stop after the word that straddles this offset (-1: end of file) */
  size_t len, at;
  int eof;
  unsigned char buf[CORPUS_BUF];
};

static int is_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int64_t embr_file_size(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    int e = errno;
    return embr_error(e == ENOENT ? EMBR_ENOTFOUND : EMBR_EIO, "%s: %s", path, strerror(e));
  }
  if (S_ISDIR(st.st_mode)) return embr_error(EMBR_EIO, "%s: is a directory, expected a file", path);
  return (int64_t)st.st_size;
}

/* Refills the buffer; returns 1 if bytes are available, 0 at EOF, negative on error. */
static int refill(embr_corpus *c) {
  if (c->at < c->len) return 1;
  if (c->eof) return 0;
  c->pos += (int64_t)c->len;
  c->len = c->at = 0;
  for (;;) {
    ssize_t r = read(c->fd, c->buf, CORPUS_BUF);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return embr_error(EMBR_EIO, "%s: read failed: %s", c->path, strerror(errno));
    if (r == 0) {
      c->eof = 1;
      return 0;
    }
    c->len = (size_t)r;
    return 1;
  }
}

/* Text check on the first bytes: NUL, or more than 30% bytes that are neither printable ASCII,
 * white space nor part of UTF-8 sequences (>= 0x80), means a binary file. */
static int looks_binary(const unsigned char *p, size_t n) {
  size_t bad = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] == 0) return 1;
    if (p[i] < 0x20 && !is_space(p[i])) bad++;
  }
  return n > 0 && bad * 10 > n * 3;
}

embr_status embr_corpus_open(embr_corpus **out, const char *path, int64_t start, int64_t end) {
  *out = NULL;
  int64_t size = embr_file_size(path);
  if (size < 0) return (int)size;
  embr_corpus *c = calloc(1, sizeof *c);
  if (!c) return embr_error(EMBR_ENOMEM, "out of memory");
  c->path = strdup(path);
  c->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (c->fd < 0 || !c->path) {
    int e = errno;
    if (c->fd >= 0) close(c->fd);
    free(c->path);
    free(c);
    return embr_error(EMBR_EIO, "%s: cannot open: %s", path, strerror(e));
  }
  /* The text check always looks at the start of the file, so every range agrees on it. */
  int rc = refill(c);
  if (rc < 0 || (rc > 0 && looks_binary(c->buf, c->len < 65536 ? c->len : 65536))) {
    if (rc > 0) rc = embr_error(EMBR_EFORMAT, "%s: looks like a binary file, expected text", path);
    embr_corpus_close(c);
    return rc;
  }
  if ((rc = embr_corpus_range(c, start, end))) {
    embr_corpus_close(c);
    return rc;
  }
  *out = c;
  return 0;
}

embr_status embr_corpus_range(embr_corpus *c, int64_t start, int64_t end) {
  c->end = end;
  /* Position one byte before `start` (or at 0): if that byte is not a space, the word there
   * began in the previous range, which reads it; skip to its end. */
  int64_t at = start > 0 ? start - 1 : 0;
  if (lseek(c->fd, (off_t)at, SEEK_SET) < 0)
    return embr_error(EMBR_EIO, "%s: seek failed: %s", c->path, strerror(errno));
  c->pos = at;
  c->len = c->at = 0;
  c->eof = 0;
  if (start == 0) return 0;
  int rc = refill(c);
  if (rc <= 0) return rc;
  int in_word = !is_space(c->buf[0]);
  c->at = 1;
  while (in_word) {
    if ((rc = refill(c)) <= 0) break;
    if (is_space(c->buf[c->at])) break;
    c->at++;
  }
  return rc < 0 ? rc : 0;
}

int64_t embr_corpus_tell(const embr_corpus *c) { return c->pos + (int64_t)c->at; }

void embr_corpus_close(embr_corpus *c) {
  if (!c) return;
  if (c->fd >= 0) close(c->fd);
  free(c->path);
  free(c);
}

int embr_corpus_next(embr_corpus *c, char buf[EMBR_MAX_WORD_BYTES + 1], int *newline) {
  *newline = 0;
  int rc;
  /* Skip white space, noting line breaks. */
  for (;;) {
    if ((rc = refill(c)) <= 0) return rc;
    unsigned char ch = c->buf[c->at];
    if (!is_space(ch)) break;
    if (ch == '\n') *newline = 1;
    c->at++;
  }
  /* A word starting at or after `end` belongs to the next range. */
  if (c->end >= 0 && c->pos + (int64_t)c->at >= c->end) return 0;
  size_t n = 0;
  for (;;) {
    if ((rc = refill(c)) < 0) return rc;
    if (rc == 0) break;
    unsigned char ch = c->buf[c->at];
    if (is_space(ch)) break;
    if (ch == 0) /* past the first 64 KiB the text check did not see it */
      return embr_error(EMBR_EFORMAT, "%s: NUL byte at offset %lld: not a text file", c->path,
                        (long long)(c->pos + (int64_t)c->at));
    if (n < EMBR_MAX_WORD_BYTES) buf[n++] = (char)ch;
    c->at++;
  }
  buf[n] = '\0';
  return 1;
}

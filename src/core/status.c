/* Status codes, their descriptions and the per-thread "last error" message. */
#include "embr/core.h"
#include "core/parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#ifndef EMBR_VERSION_STRING
#define EMBR_VERSION_STRING "0.1.0"
#endif

static _Thread_local char last_error[1024];

const char *embr_strerror(int status) {
  switch (status) {
    case EMBR_OK: return "success";
    case EMBR_EINVAL: return "invalid argument";
    case EMBR_ENOMEM: return "out of memory";
    case EMBR_EIO: return "input/output error";
    case EMBR_EFORMAT: return "malformed input";
    case EMBR_EUNSUPPORTED: return "unsupported";
    case EMBR_ECANCELED: return "canceled";
    case EMBR_ENOTFOUND: return "not found";
    case EMBR_EDIM: return "dimension mismatch";
    case EMBR_EVALUE: return "invalid value";
    case EMBR_ECHECKPOINT: return "committed, but the checkpoint was not saved";
    default: return "unknown error";
  }
}

const char *embr_last_error(void) { return last_error; }

void embr_clear_error(void) { last_error[0] = '\0'; }

int embr__utf8_len(const unsigned char *s) {
  unsigned c = s[0];
  int n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
  if (c >= 0xf5) n = 0;
  for (int i = 1; i < n; i++)
    if ((s[i] & 0xc0) != 0x80) return 0;
  if (n == 3 && ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0))) return 0;
  if (n == 4 && ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))) return 0;
  return n;
}

/* Messages quote file contents (a bad token, an id, a header); printing those raw would let an
 * input move the cursor, clear the terminal or split one message into several lines. Escaping
 * here, where every message is recorded, covers every reader and every front end at once. */
static void escape_message(const char *in, char *out, size_t cap) {
  const unsigned char *s = (const unsigned char *)in;
  size_t o = 0;
  while (*s && o + 5 <= cap) {
    int n = *s >= 0x80 ? embr__utf8_len(s) : (*s >= 0x20 && *s != 0x7f);
    if (n > 0) {
      if (o + (size_t)n + 1 > cap) break;
      memcpy(out + o, s, (size_t)n);
      o += (size_t)n;
      s += n;
    } else {
      snprintf(out + o, cap - o, "\\x%02x", *s++);
      o += 4;
    }
  }
  out[o] = '\0';
}

embr_status embr_error(int status, const char *fmt, ...) {
  char raw[sizeof last_error];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(raw, sizeof raw, fmt, ap);
  va_end(ap);
  escape_message(raw, last_error, sizeof last_error);
  return status;
}

const char *embr_version(void) { return EMBR_VERSION_STRING; }

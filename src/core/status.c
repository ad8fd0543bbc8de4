/* Status codes, their descriptions and the per-thread "last error" message. */
#include "embr/core.h"

#include <stdarg.h>
#include <stdio.h>

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
    default: return "unknown error";
  }
}

const char *embr_last_error(void) { return last_error; }

void embr_clear_error(void) { last_error[0] = '\0'; }

int embr_error(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return status;
}

const char *embr_version(void) { return EMBR_VERSION_STRING; }

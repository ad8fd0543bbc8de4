/* CPU feature detection and the EMBR_CPU override. The hardware probe and the environment are
 * read once, under pthread_once, so concurrent first calls cannot race; kernels consult the
 * level through the dispatch table in src/vec/dispatch.c. */
#include "embr/core.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static embr_cpu_level detected, from_env; /* written once by init_levels */
/* embr_cpu_force's override (-1: none); atomic because kernels read it on every call. */
static _Atomic int forced = -1;

static void init_levels(void) {
  detected = EMBR_CPU_SCALAR;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) detected = EMBR_CPU_AVX2;
#endif
  /* The environment is read once: kernels ask on every call, and getenv showed in profiles. */
  const char *env = getenv("EMBR_CPU");
  int scalar = env && (strcmp(env, "scalar") == 0 || strcmp(env, "generic") == 0);
  from_env = scalar ? EMBR_CPU_SCALAR : detected;
}

embr_cpu_level embr_cpu_detect(void) {
  pthread_once(&once, init_levels);
  return detected;
}

embr_cpu_level embr_cpu_active(void) {
  int f = forced;
  if (f >= 0) return (embr_cpu_level)f;
  pthread_once(&once, init_levels);
  return from_env;
}

embr_status embr_cpu_force(embr_cpu_level level) {
  if (level > embr_cpu_detect())
    return embr_error(EMBR_EUNSUPPORTED, "this CPU does not support %s", embr_cpu_name(level));
  forced = (int)level;
  return 0;
}

const char *embr_cpu_name(embr_cpu_level level) {
  switch (level) {
    case EMBR_CPU_SCALAR: return "scalar";
    case EMBR_CPU_AVX2: return "avx2+fma";
  }
  return "unknown";
}

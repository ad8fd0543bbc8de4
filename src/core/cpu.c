/* CPU feature detection and the EMBR_CPU override. The level is read once; kernels consult it
 * through the dispatch table in src/vec/dispatch.c. */
#include "embr/core.h"

#include <stdlib.h>
#include <string.h>

static int forced = -1;

embr_cpu_level embr_cpu_detect(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return EMBR_CPU_AVX2;
#endif
  return EMBR_CPU_SCALAR;
}

/* The environment is read once: kernels ask on every call, and getenv showed in profiles. */
static int from_env = -1;

embr_cpu_level embr_cpu_active(void) {
  if (forced >= 0) return (embr_cpu_level)forced;
  if (from_env < 0) {
    const char *env = getenv("EMBR_CPU");
    int scalar = env && (strcmp(env, "scalar") == 0 || strcmp(env, "generic") == 0);
    from_env = scalar ? EMBR_CPU_SCALAR : (int)embr_cpu_detect();
  }
  return (embr_cpu_level)from_env;
}

int embr_cpu_force(embr_cpu_level level) {
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

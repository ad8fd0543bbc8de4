/* embr core: status codes and errors, aligned memory, random numbers, CPU features, progress
 * reporting and thread counts. Every other part of the library uses these. */
#ifndef EMBR_CORE_H
#define EMBR_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(EMBR_BUILDING)
#define EMBR_API __attribute__((visibility("default")))
#else
#define EMBR_API
#endif

/* ---- status codes ----------------------------------------------------------------------------
 * Every fallible call returns an embr_status: 0 on success, a negative code otherwise. The detail
 * (which file, which offset, what was expected) is kept per thread and read with embr_last_error().
 * Codes only grow at the end. */
typedef enum embr_status {
  EMBR_OK = 0,
  EMBR_EINVAL = -1,      /* an argument is out of range or inconsistent */
  EMBR_ENOMEM = -2,      /* an allocation failed or a size would overflow */
  EMBR_EIO = -3,         /* the operating system refused a read, write, open, rename... */
  EMBR_EFORMAT = -4,     /* a file's contents are malformed, truncated or of the wrong kind */
  EMBR_EUNSUPPORTED = -5,/* valid, but a variant this build does not handle */
  EMBR_ECANCELED = -6,   /* a progress callback asked to stop */
  EMBR_ENOTFOUND = -7,   /* a named item (file, word, id) does not exist */
  EMBR_EDIM = -8,        /* dimensions of two inputs do not agree */
  EMBR_EVALUE = -9,      /* a value is not allowed (NaN, Inf) */
  EMBR_ECHECKPOINT = -10 /* the change is committed and durable; only a derived file (a
                            collection's index checkpoint) could not be written */
} embr_status;

/* A short constant description of a status code ("invalid argument"). Never NULL. */
EMBR_API const char *embr_strerror(int status);

/* The message of the last failure on this thread, e.g. "base.fvecs: row 12 has dimension 64,
 * expected 128". Empty string when no failure has been recorded. The pointer stays valid until the
 * next failing call on the same thread. */
EMBR_API const char *embr_last_error(void);

/* Records a message as this thread's last error and returns `status`, so a failing path can be
 * written `return embr_error(EMBR_EFORMAT, "%s: bad magic", path);`. The message is kept on one
 * printable line: control bytes (< 0x20, 0x7f) and bytes that are not valid UTF-8 -- typically
 * echoed from a hostile input -- are recorded as \xNN. */
EMBR_API embr_status embr_error(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears this thread's last error. All four error functions are thread-safe (per-thread state). */
EMBR_API void embr_clear_error(void);

/* Library version, "major.minor.patch". */
EMBR_API const char *embr_version(void);

/* ---- memory ------------------------------------------------------------------------------------
 * The library's allocator: everything embr allocates for the caller (matrix data and labels,
 * search hits, metadata copies, ...) comes from here and is freed with embr_free or the _free
 * function its header names. Alignment is 64 bytes (a cache line, and enough for any SIMD load).
 * embr_alloc(0) returns a valid unique pointer. They return NULL on failure and record
 * EMBR_ENOMEM as the last error. Thread-safe. */
EMBR_API void *embr_alloc(size_t bytes);
EMBR_API void *embr_calloc(size_t count, size_t size); /* zeroed; NULL when count*size overflows */
/* Resizes a block of old_bytes (p may be NULL) to new_bytes, keeping the common prefix. On
 * failure p is untouched and still owned by the caller. */
EMBR_API void *embr_realloc(void *p, size_t old_bytes, size_t new_bytes);
/* A copy of s (of at most n bytes of s) with a terminating NUL, e.g. for embr_matrix labels. */
EMBR_API char *embr_strdup(const char *s);
EMBR_API char *embr_strndup(const char *s, size_t n);
EMBR_API void embr_free(void *p);                       /* NULL is a no-op */

/* Overflow-checked size arithmetic: store a*b (a*b + c) in *out and return 0, or return
 * EMBR_ENOMEM (with a message) when it does not fit in size_t. */
EMBR_API embr_status embr_size_mul(size_t a, size_t b, size_t *out);
EMBR_API embr_status embr_size_muladd(size_t a, size_t b, size_t c, size_t *out);

/* ---- random numbers ------------------------------------------------------------------------------
 * xoshiro256** seeded through splitmix64: fast, 2^256 period, and splittable: embr_rng_split gives
 * stream i of a seed, independent of the others, so thread i of a parallel job can draw its own
 * numbers and the result depends only on (seed, i), never on scheduling. A job whose parts take a
 * seed of their own (a sub-step, a k-means inside a quantiser) passes them embr_seed_split(seed,
 * part), never seed ^ constant: one hash, so no two parts share a sequence. An embr_rng is plain
 * state: one per thread; the functions keep no global state. */
typedef struct embr_rng {
  uint64_t s[4];
} embr_rng;

EMBR_API void embr_rng_seed(embr_rng *rng, uint64_t seed); /* any seed, 0 included */
/* The seed of stream `stream` of `seed` (a splitmix64 hash of both): distinct streams give
 * unrelated seeds, and stream s of a seed never equals the seed itself in practice. */
EMBR_API uint64_t embr_seed_split(uint64_t seed, uint64_t stream);
/* Seeds rng with embr_seed_split(seed, stream). */
EMBR_API void embr_rng_split(embr_rng *rng, uint64_t seed, uint64_t stream);
EMBR_API uint64_t embr_rng_next(embr_rng *rng);
/* Uniform in [0, bound) without modulo bias; bound 0 returns 0. */
EMBR_API uint64_t embr_rng_below(embr_rng *rng, uint64_t bound);
/* Uniform float in [0, 1) with 24 random bits; double with 53. */
EMBR_API float embr_rng_float(embr_rng *rng);
EMBR_API double embr_rng_double(embr_rng *rng);
/* Standard normal (Box-Muller; one value per call). */
EMBR_API double embr_rng_normal(embr_rng *rng);

/* ---- CPU features ---------------------------------------------------------------------------------
 * Which kernels run. Detected once; the environment variable EMBR_CPU=scalar forces the portable
 * kernels (tests compare both paths on one machine), EMBR_CPU=avx2 asks for AVX2 and falls back to
 * scalar when the CPU lacks it. */
typedef enum embr_cpu_level {
  EMBR_CPU_SCALAR = 0,
  EMBR_CPU_AVX2 = 1 /* AVX2 + FMA */
} embr_cpu_level;

EMBR_API embr_cpu_level embr_cpu_detect(void);   /* what the hardware supports */
EMBR_API embr_cpu_level embr_cpu_active(void);   /* what the kernels use (detect + EMBR_CPU) */
/* Overrides the active level for this process (tests); a level the CPU lacks is refused with
 * EMBR_EUNSUPPORTED. Not safe while other threads run kernels. */
EMBR_API embr_status embr_cpu_force(embr_cpu_level level);
EMBR_API const char *embr_cpu_name(embr_cpu_level level); /* "scalar", "avx2+fma" */

/* ---- threads -------------------------------------------------------------------------------------
 * Every parallel call takes n_threads; 0 means all cores available to the process. The library
 * never changes the process's OpenMP settings (its parallel regions name their team size), and
 * OpenBLAS's process-wide thread count is changed only while a library call runs BLAS, then
 * restored (docs/design.md, "Threads"). */
EMBR_API int embr_threads_resolve(int n_threads); /* n_threads > 0 as is; else the cores available */
EMBR_API int embr_threads_available(void);        /* OpenMP processors (capped by its thread limit), >= 1 */

/* ---- progress ------------------------------------------------------------------------------------
 * Long operations report (done, total, rate per second) through a callback. Returning non-zero asks
 * the operation to stop; it then returns EMBR_ECANCELED and leaves outputs unspecified.
 * `total` is 0 when unknown. Callbacks are invoked from one thread at a time. */
typedef int (*embr_progress_fn)(void *user, uint64_t done, uint64_t total, double rate,
                                const char *detail);

typedef struct embr_progress {
  embr_progress_fn fn;  /* NULL: no reporting */
  void *user;
  double min_interval;  /* seconds between calls (0 = default 0.2 s); the final call always runs */
} embr_progress;

/* Internal helper state for throttled reporting; see src/core/progress.c. */
typedef struct embr_progress_state {
  const embr_progress *p;
  uint64_t total;
  double t_start, t_last;
  int canceled;
} embr_progress_state;

/* Starts reporting against p (NULL: nothing is reported) for `total` units (0 = unknown). */
EMBR_API void embr_progress_begin(embr_progress_state *st, const embr_progress *p, uint64_t total);
/* Reports `done`; returns 1 when the callback asked to cancel (sticky). Thread-safe only when
 * called from one thread at a time. `force` bypasses the interval throttle. */
EMBR_API int embr_progress_update(embr_progress_state *st, uint64_t done, const char *detail,
                                  int force);

/* Monotonic seconds. */
EMBR_API double embr_now(void);

#ifdef __cplusplus
}
#endif
#endif

/* xoshiro256** (Blackman & Vigna) seeded by splitmix64. Streams for threads and seeds for the
 * parts of a job come from hashing (seed, stream) through splitmix64 (embr_seed_split), so each
 * sequence depends only on its index. This is the one place seeds are derived from seeds. */
#include "embr/core.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void embr_rng_seed(embr_rng *rng, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&x);
  /* An all-zero state would be a fixed point; splitmix64 cannot produce four zeros, but be sure. */
  if (!(rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3])) rng->s[0] = 1;
}

uint64_t embr_seed_split(uint64_t seed, uint64_t stream) {
  uint64_t x = seed ^ 0x6A09E667F3BCC909ull;
  uint64_t a = splitmix64(&x);
  uint64_t y = stream ^ 0xBB67AE8584CAA73Bull;
  uint64_t b = splitmix64(&y);
  return a ^ rotl(b, 17) ^ (b >> 3);
}

void embr_rng_split(embr_rng *rng, uint64_t seed, uint64_t stream) {
  embr_rng_seed(rng, embr_seed_split(seed, stream));
}

uint64_t embr_rng_next(embr_rng *rng) {
  uint64_t *s = rng->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

uint64_t embr_rng_below(embr_rng *rng, uint64_t bound) {
  if (bound == 0) return 0;
  /* Lemire's multiply-shift with rejection of the biased low zone. */
  uint64_t x = embr_rng_next(rng);
  __uint128_t m = (__uint128_t)x * bound;
  uint64_t low = (uint64_t)m;
  if (low < bound) {
    uint64_t threshold = -bound % bound;
    while (low < threshold) {
      x = embr_rng_next(rng);
      m = (__uint128_t)x * bound;
      low = (uint64_t)m;
    }
  }
  return (uint64_t)(m >> 64);
}

float embr_rng_float(embr_rng *rng) { return (float)(embr_rng_next(rng) >> 40) * 0x1.0p-24f; }

double embr_rng_double(embr_rng *rng) { return (double)(embr_rng_next(rng) >> 11) * 0x1.0p-53; }

double embr_rng_normal(embr_rng *rng) {
  double u1 = embr_rng_double(rng);
  double u2 = embr_rng_double(rng);
  if (u1 < 1e-300) u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Internal: an exponential the compiler can vectorise. libm's expf is an opaque call (GCC maps it
 * to a vector routine only under -ffast-math, which embr does not use), so a loop calling it runs
 * one element at a time; the softmax of attention and the sigmoid of QuickGELU call this instead.
 * Cephes' expf: n = round(x log2 e) by the 1.5 * 2^23 trick (no floorf call), r = x - n ln 2 in
 * two parts, a degree-6 polynomial, then 2^n built in the exponent bits. Within 2 ulp of expf on
 * [-87, 88]; inputs beyond are clamped (exp(-87) ~ 1.6e-38, exp(88) ~ 1.7e38). Branch-free: the
 * clamps select bits by a mask, since GCC will not if-convert a float ?: (the comparison may
 * trap, under its default -ftrapping-math). The same code vectorised or not gives the same bits. */
#ifndef EMBR_NN_VMATH_H
#define EMBR_NN_VMATH_H

#include <stdint.h>
#include <string.h>

/* c ? a : b, without a branch */
static inline float embr__nn_selectf(int c, float a, float b) {
  uint32_t m = 0u - (uint32_t)c, ua, ub;
  memcpy(&ua, &a, sizeof(ua));
  memcpy(&ub, &b, sizeof(ub));
  uint32_t r = (ua & m) | (ub & ~m);
  float f;
  memcpy(&f, &r, sizeof(f));
  return f;
}

static inline float embr__nn_expf(float x) {
  x = embr__nn_selectf(x < -87.0f, -87.0f, x);
  x = embr__nn_selectf(x > 88.0f, 88.0f, x);
  /* A NaN (weights that overflowed upstream) passes both clamps: its exponent is taken from 0, so
   * no NaN is converted to an integer (undefined behaviour), while r and the result stay NaN. */
  float xn = embr__nn_selectf(x == x, x, 0.0f);
  float t = xn * 1.44269504088896341f + 12582912.0f; /* round to nearest: |x log2 e| < 2^22 */
  float n = t - 12582912.0f;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t e = ((int32_t)n + 127) * (1 << 23); /* n in [-126, 127]: a normal power of two */
  float s;
  memcpy(&s, &e, sizeof(s));
  return p * s;
}

#endif

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

/* erf in float, vectorisable (libm's erf is an opaque scalar call, and GELU computed it in
 * double). Below |x| = 0.75 the Maclaurin series of erf to the x^15 term (truncation < 1e-9
 * there); above, Abramowitz & Stegun 7.1.26: 1 - t (a1 + a2 t + ... + a5 t^4) exp(-x^2), t = 1 /
 * (1 + p |x|), whose error is at most 1.5e-7; the sign restored last. Both branches are computed
 * and one is selected by a mask (no branch, so the loop vectorises). Within 2.5e-7 absolute of
 * libm's erf (tests/test_nn.c, test_verff, checks a dense range); a NaN stays NaN. */
static inline float embr__nn_erff(float x) {
  uint32_t ux, sign;
  memcpy(&ux, &x, sizeof(ux));
  sign = ux & 0x80000000u;
  ux &= 0x7fffffffu;
  float a;
  memcpy(&a, &ux, sizeof(a));
  float t = 1.0f / (1.0f + 0.3275911f * a);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  float big = 1.0f - p * t * embr__nn_expf(-a * a);
  /* 2 / sqrt(pi) (-1)^n / (n! (2n + 1)), n = 7 down to 0 */
  float z = a * a, q = -1.492565036e-05f;
  q = q * z + 1.205533298e-04f;
  q = q * z - 8.548327023e-04f;
  q = q * z + 5.223977625e-03f;
  q = q * z - 2.686617065e-02f;
  q = q * z + 1.128379167e-01f;
  q = q * z - 3.761263890e-01f;
  q = q * z + 1.128379167e+00f;
  float r = embr__nn_selectf(a < 0.75f, a * q, big);
  uint32_t ur;
  memcpy(&ur, &r, sizeof(ur));
  ur |= sign;
  memcpy(&r, &ur, sizeof(r));
  return r;
}

#endif

/* gemmlowp / TensorFlow Lite fixed-point primitives for the kws C runtime, bit for bit.
 *
 * All arithmetic is on int32_t with int64_t products; no division, no floating point, no
 * library calls (divisions of int64_t by powers of two are written as shifts that truncate
 * toward zero, as C's '/' does). Right shifts of negative numbers go through kws_asr32, so
 * the results do not depend on how the compiler implements '>>' on negative values, and
 * wrapping sums go through unsigned arithmetic, so nothing here relies on signed overflow.
 *
 * Names follow the originals: TFLite's MultiplyByQuantizedMultiplier is
 * kws_multiply_by_quantized_multiplier (the double-rounding variant that LiteRT builds by
 * default, i.e. without TFLITE_SINGLE_ROUNDING).
 */
#ifndef KWS_FIXED_H_
#define KWS_FIXED_H_

#include <stdint.h>

/* Inlined even at -Os: the small helpers cost less than a call, and the kernels that
 * take a constant mode flag (kws_pool) specialise only when inlined. */
#if defined(__GNUC__)
#define KWS_FIXED_INLINE static inline __attribute__((always_inline))
#else
#define KWS_FIXED_INLINE static inline
#endif

/* floor(x / 2^n) for 0 <= n <= 31: an arithmetic right shift on any C99 compiler. */
KWS_FIXED_INLINE int32_t kws_asr32(int32_t x, int32_t n) {
#if defined(__GNUC__)
  return x >> n; /* GCC and Clang document '>>' of a negative value as sign-extending */
#else
  return x >= 0 ? (x >> n) : (int32_t)~(~x >> n);
#endif
}

/* floor(x / 2^31), an arithmetic right shift on any C99 compiler. */
KWS_FIXED_INLINE int64_t kws_asr64_31(int64_t x) {
#if defined(__GNUC__)
  return x >> 31;
#else
  return x >= 0 ? (x >> 31) : (int64_t)~(~x >> 31);
#endif
}

/* a + b modulo 2^32 (gemmlowp's plain int32 Add). */
static inline int32_t kws_add_wrap(int32_t a, int32_t b) {
  return (int32_t)((uint32_t)a + (uint32_t)b);
}

/* a - b modulo 2^32. */
static inline int32_t kws_sub_wrap(int32_t a, int32_t b) {
  return (int32_t)((uint32_t)a - (uint32_t)b);
}

/* x * 2^n modulo 2^32 for 0 <= n <= 31 (TFLite's x * (1 << n)). */
static inline int32_t kws_shl_wrap(int32_t x, int32_t n) {
  return (int32_t)((uint32_t)x << n);
}

/* gemmlowp's SaturatingRoundingDoublingHighMul: round(a * b / 2^31), ties away from zero,
 * with INT32_MIN * INT32_MIN saturating to INT32_MAX (ARM's VQRDMULH). */
static inline int32_t kws_saturating_rounding_doubling_high_mul(int32_t a, int32_t b) {
  int64_t ab;
  int64_t nudged;
  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
  ab = (int64_t)a * (int64_t)b;
  nudged = ab + (ab >= 0 ? (int64_t)(1 << 30) : (int64_t)(1 - (1 << 30)));
  /* nudged / 2^31, truncating toward zero */
  return (int32_t)(nudged >= 0 ? (nudged >> 31) : -((-nudged) >> 31));
}

/* gemmlowp's RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero,
 * for 0 <= exponent <= 31. */
static inline int32_t kws_rounding_divide_by_pot(int32_t x, int32_t exponent) {
  const int32_t mask = (int32_t)((UINT32_C(1) << exponent) - 1u);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return kws_asr32(x, exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLite's MultiplyByQuantizedMultiplier (double rounding): x * multiplier * 2^(shift - 31)
 * for a Q31 multiplier and shift in [-31, 30]; shift > 0 is a left shift. */
static inline int32_t kws_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier,
                                                           int32_t shift) {
  const int32_t left = shift > 0 ? shift : 0;
  const int32_t right = shift > 0 ? 0 : -shift;
  return kws_rounding_divide_by_pot(
      kws_saturating_rounding_doubling_high_mul(kws_shl_wrap(x, left), multiplier), right);
}

/* The same, for |x| < 2^30, a positive multiplier and shift < 0, in a few instructions and
 * no branch: for a positive Q31 multiplier SaturatingRoundingDoublingHighMul is
 * floor((x * multiplier + 2^30) / 2^31) for either sign of the product (its nudge 1 - 2^30
 * with truncation toward zero gives the same value for negative products), which is
 * SMMULR(2x, multiplier) on Armv7E-M; RoundingDivideByPOT(h, r) = (h + 2^(r-1) - (h < 0))
 * >> r equals (((h + (h < 0 ? -1 : 0)) >> (r - 1)) + 1) >> 1 for r >= 1. */
KWS_FIXED_INLINE int32_t kws_multiply_by_quantized_multiplier_right(int32_t x, int32_t multiplier,
                                                                 int32_t shift) {
  int32_t high;
#if defined(__ARM_FEATURE_DSP) && !defined(KWS_NO_DSP) && !defined(KWS_EMULATE_DSP)
  __asm__("smmulr %0, %1, %2" : "=r"(high) : "r"(x * 2), "r"(multiplier));
#else
  high = (int32_t)kws_asr64_31((int64_t)x * multiplier + (1 << 30));
#endif
  return kws_asr32(kws_asr32(high + kws_asr32(high, 31), -shift - 1) + 1, 1);
}

/* The same for shift <= 0 (a shift of 0 divides by nothing). */
KWS_FIXED_INLINE int32_t kws_multiply_by_quantized_multiplier_small(int32_t x, int32_t multiplier,
                                                                 int32_t shift) {
  if (shift < 0) return kws_multiply_by_quantized_multiplier_right(x, multiplier, shift);
#if defined(__ARM_FEATURE_DSP) && !defined(KWS_NO_DSP) && !defined(KWS_EMULATE_DSP)
  int32_t high;
  __asm__("smmulr %0, %1, %2" : "=r"(high) : "r"(x * 2), "r"(multiplier));
  return high;
#else
  return (int32_t)kws_asr64_31((int64_t)x * multiplier + (1 << 30));
#endif
}

#endif /* KWS_FIXED_H_ */

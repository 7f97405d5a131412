/* int8 SOFTMAX, MEAN, pooling and ADD kernels of the kws C runtime; see kws_ops_extra.h. */
#include "kws_ops_extra.h"

#include "kws_fixed.h"

static inline int32_t kws_clamp(int32_t v, int32_t lo, int32_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

/* ---- gemmlowp fixed point for the softmax ------------------------------------------------ */

/* gemmlowp's SaturatingRoundingMultiplyByPOT<exponent> for 1 <= exponent <= 30: a left
 * shift that saturates to INT32_MIN / INT32_MAX. */
static inline int32_t kws_saturating_shl(int32_t x, int32_t exponent) {
  const int32_t threshold = (int32_t)((UINT32_C(1) << (31 - exponent)) - 1u);
  if (x > threshold) return INT32_MAX;
  if (x < -threshold) return INT32_MIN;
  return kws_shl_wrap(x, exponent);
}

/* gemmlowp's RoundingHalfSum: (a + b) / 2 rounded half away from zero. */
static inline int32_t kws_rounding_half_sum(int32_t a, int32_t b) {
  const int64_t sum = (int64_t)a + (int64_t)b;
  const int64_t t = sum + (sum >= 0 ? 1 : -1);
  return (int32_t)(t >= 0 ? (t >> 1) : -((-t) >> 1)); /* t / 2, truncating */
}

/* Number of leading zero bits of x (32 for 0). */
static inline int32_t kws_clz32(uint32_t x) {
  int32_t n = 0;
  if (x == 0) return 32;
  if ((x & UINT32_C(0xFFFF0000)) == 0) { n += 16; x <<= 16; }
  if ((x & UINT32_C(0xFF000000)) == 0) { n += 8; x <<= 8; }
  if ((x & UINT32_C(0xF0000000)) == 0) { n += 4; x <<= 4; }
  if ((x & UINT32_C(0xC0000000)) == 0) { n += 2; x <<= 2; }
  if ((x & UINT32_C(0x80000000)) == 0) { n += 1; }
  return n;
}

#define KWS_MUL kws_saturating_rounding_doubling_high_mul

/* exp(a) for a in [-1/4, 0), a and the result in Q0.31: Taylor series around -1/8. */
static int32_t kws_exp_quarter(int32_t a) {
  const int32_t exp_minus_one_eighth = 1895147668; /* exp(-1/8) in Q0.31 */
  const int32_t one_third = 715827883;             /* 1/3 in Q0.31 */
  const int32_t x = kws_add_wrap(a, 1 << 28);      /* a + 1/8 */
  const int32_t x2 = KWS_MUL(x, x);
  const int32_t x3 = KWS_MUL(x2, x);
  const int32_t x4 = KWS_MUL(x2, x2);
  const int32_t x4_over_4 = kws_rounding_divide_by_pot(x4, 2);
  const int32_t poly = kws_rounding_divide_by_pot(
      kws_add_wrap(KWS_MUL(kws_add_wrap(x4_over_4, x3), one_third), x2), 1);
  return kws_add_wrap(exp_minus_one_eighth,
                      KWS_MUL(exp_minus_one_eighth, kws_add_wrap(x, poly)));
}

/* gemmlowp's exp_on_negative_values for a Q5.26 input a <= 0; result in Q0.31. */
static int32_t kws_exp_on_negative_values_q5(int32_t a) {
  /* exp(-2^k) in Q0.31 for k = -2 .. 4 */
  static const int32_t kExpPow2[7] = {1672461947, 1302514674, 790015084, 290630308,
                                      39332535,   720401,     242};
  const int32_t one_quarter = 1 << 24; /* 1/4 in Q5.26 */
  const int32_t a_mod_quarter_minus_quarter = kws_sub_wrap(a & (one_quarter - 1), one_quarter);
  const int32_t remainder = kws_sub_wrap(a_mod_quarter_minus_quarter, a);
  int32_t result = kws_exp_quarter(kws_saturating_shl(a_mod_quarter_minus_quarter, 5));
  int32_t k;
  for (k = 0; k < 7; ++k) {
    /* bit 26 + (k - 2) of -a's integer-and-quarters part */
    if (remainder & (int32_t)(UINT32_C(1) << (24 + k))) result = KWS_MUL(result, kExpPow2[k]);
  }
  return a == 0 ? INT32_MAX : result;
}

/* gemmlowp's one_over_one_plus_x_for_x_in_0_1: 1 / (1 + a) for a in [0, 1), both Q0.31;
 * three Newton-Raphson steps on the half denominator in Q2.29. */
static int32_t kws_one_over_one_plus_x(int32_t a) {
  const int32_t half_denominator = kws_rounding_half_sum(a, INT32_MAX); /* Q0.31 */
  const int32_t c48_over_17 = 1515870810;                               /* Q2.29 */
  const int32_t c_neg32_over_17 = -1010580540;                          /* Q2.29 */
  const int32_t one_q2 = 1 << 29;                                       /* 1.0 in Q2.29 */
  int32_t x = kws_add_wrap(c48_over_17, KWS_MUL(half_denominator, c_neg32_over_17));
  int32_t i;
  for (i = 0; i < 3; ++i) {
    const int32_t half_denominator_times_x = KWS_MUL(half_denominator, x); /* Q2.29 */
    const int32_t one_minus = kws_sub_wrap(one_q2, half_denominator_times_x);
    x = kws_add_wrap(x, kws_saturating_shl(KWS_MUL(x, one_minus), 2)); /* Q4.27 -> Q2.29 */
  }
  return kws_saturating_shl(x, 1); /* x / 2 in Q1.30 read as Q0.31 */
}

/* ---- SOFTMAX ----------------------------------------------------------------------------- */

/* exp(diff * beta * input_scale) in Q0.31 for input_diff <= 0 (within diff_min). */
static inline int32_t kws_softmax_exp(int32_t input_diff, int32_t input_multiplier,
                                      int32_t input_left_shift) {
  /* MultiplyByQuantizedMultiplierGreaterThanOne: the result is Q5.26 */
  const int32_t rescaled = KWS_MUL(kws_shl_wrap(input_diff, input_left_shift), input_multiplier);
  return kws_exp_on_negative_values_q5(rescaled);
}

void kws_softmax_s8(const int8_t *in, int8_t *out, int32_t rows, int32_t depth,
                    int32_t input_multiplier, int32_t input_left_shift, int32_t diff_min) {
  int32_t r, c;
  for (r = 0; r < rows; ++r) {
    const int8_t *x = in + r * depth;
    int8_t *y = out + r * depth;
    int32_t max_in_row = -128;
    int32_t sum_of_exps = 0; /* Q12.19 */
    int32_t headroom_plus_one, num_bits_over_unit, exponent, shifted_scale;
    for (c = 0; c < depth; ++c) {
      if (x[c] > max_in_row) max_in_row = x[c];
    }
    for (c = 0; c < depth; ++c) {
      const int32_t input_diff = (int32_t)x[c] - max_in_row;
      if (input_diff >= diff_min) {
        const int32_t e = kws_softmax_exp(input_diff, input_multiplier, input_left_shift);
        sum_of_exps = kws_add_wrap(sum_of_exps, kws_rounding_divide_by_pot(e, 12));
      }
    }
    /* TFLite's GetReciprocal(sum_of_exps, 12 integer bits) */
    headroom_plus_one = kws_clz32((uint32_t)sum_of_exps);
    num_bits_over_unit = 12 - headroom_plus_one;
    shifted_scale = kws_one_over_one_plus_x(
        (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - (UINT32_C(1) << 31)));
    exponent = num_bits_over_unit + 31 - 8;
    /* LiteRT aborts above 31 (a row with a sum of exps of 512 or more); saturate instead */
    if (exponent > 31) exponent = 31;
    for (c = 0; c < depth; ++c) {
      const int32_t input_diff = (int32_t)x[c] - max_in_row;
      if (input_diff >= diff_min) {
        const int32_t e = kws_softmax_exp(input_diff, input_multiplier, input_left_shift);
        const int32_t unsat = kws_rounding_divide_by_pot(KWS_MUL(shifted_scale, e), exponent);
        y[c] = (int8_t)kws_clamp(unsat - 128, -128, 127);
      } else {
        y[c] = -128;
      }
    }
  }
}

/* ---- MEAN -------------------------------------------------------------------------------- */

void kws_mean_hw_s8(const int8_t *in, int8_t *out, int32_t batches, int32_t height,
                    int32_t width, int32_t channels, int32_t input_zero_point,
                    int32_t multiplier, int32_t shift, int32_t output_zero_point) {
  const int32_t count = height * width;
  int32_t b, c, i;
  for (b = 0; b < batches; ++b) {
    const int8_t *x = in + b * count * channels;
    for (c = 0; c < channels; ++c) {
      int32_t sum = 0;
      for (i = 0; i < count; ++i) sum += x[i * channels + c];
      sum -= input_zero_point * count;
      sum = kws_multiply_by_quantized_multiplier(sum, multiplier, shift) + output_zero_point;
      out[b * channels + c] = (int8_t)kws_clamp(sum, -128, 127);
    }
  }
}

/* ---- AVERAGE_POOL_2D / MAX_POOL_2D ------------------------------------------------------- */

/* The window of output (oy, ox) clipped to the input: rows [*y0, *y1), columns [*x0, *x1). */
static inline void kws_pool_window(const kws_pool_params *p, int32_t oy, int32_t ox,
                                   int32_t *y0, int32_t *y1, int32_t *x0, int32_t *x1) {
  const int32_t iy = oy * p->stride_h - p->pad_top;
  const int32_t ix = ox * p->stride_w - p->pad_left;
  *y0 = iy > 0 ? iy : 0;
  *y1 = iy + p->filter_h < p->in_h ? iy + p->filter_h : p->in_h;
  *x0 = ix > 0 ? ix : 0;
  *x1 = ix + p->filter_w < p->in_w ? ix + p->filter_w : p->in_w;
}

/* Both pools walk the same clipped windows; they differ in how the taps combine: the sum,
 * averaged over the taps inside the input with halves rounded away from zero (C's '/'
 * truncates toward zero), or the maximum. */
KWS_FIXED_INLINE void kws_pool(const kws_pool_params *p, const int8_t *in, int8_t *out,
                               int32_t batches, int is_max) {
  const int32_t C = p->channels;
  int32_t b, oy, ox, c, y, x;
  for (b = 0; b < batches; ++b) {
    const int8_t *img = in + b * p->in_h * p->in_w * C;
    for (oy = 0; oy < p->out_h; ++oy) {
      for (ox = 0; ox < p->out_w; ++ox) {
        int32_t y0, y1, x0, x1, count;
        kws_pool_window(p, oy, ox, &y0, &y1, &x0, &x1);
        count = (y1 - y0) * (x1 - x0);
        for (c = 0; c < C; ++c) {
          int32_t acc = is_max ? -128 : 0;
          for (y = y0; y < y1; ++y) {
            for (x = x0; x < x1; ++x) {
              const int32_t v = img[(y * p->in_w + x) * C + c];
              acc = is_max ? (v > acc ? v : acc) : acc + v;
            }
          }
          if (!is_max && count > 0) {
            acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
          }
          *out++ = (int8_t)kws_clamp(acc, p->act_min, p->act_max);
        }
      }
    }
  }
}

void kws_avg_pool_s8(const kws_pool_params *p, const int8_t *in, int8_t *out, int32_t batches) {
  kws_pool(p, in, out, batches, 0);
}

void kws_max_pool_s8(const kws_pool_params *p, const int8_t *in, int8_t *out, int32_t batches) {
  kws_pool(p, in, out, batches, 1);
}

/* ---- ADD --------------------------------------------------------------------------------- */

static inline int8_t kws_add_one(const kws_add_params *p, int32_t a, int32_t b) {
  const int32_t x1 = kws_shl_wrap(p->input1_offset + a, p->left_shift);
  const int32_t x2 = kws_shl_wrap(p->input2_offset + b, p->left_shift);
  /* |x1|, |x2| <= 255 * 2^20 and |s1 + s2| < 2^29, and every shift is <= 0 (Prepare
   * refuses others): the small-input form of MultiplyByQuantizedMultiplier is exact */
  const int32_t s1 =
      kws_multiply_by_quantized_multiplier_small(x1, p->input1_multiplier, p->input1_shift);
  const int32_t s2 =
      kws_multiply_by_quantized_multiplier_small(x2, p->input2_multiplier, p->input2_shift);
  const int32_t raw =
      kws_multiply_by_quantized_multiplier_small(kws_add_wrap(s1, s2), p->output_multiplier,
                                                 p->output_shift) +
      p->output_offset;
  return (int8_t)kws_clamp(raw, p->act_min, p->act_max);
}

void kws_add_s8(const kws_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out,
                int32_t size) {
  int32_t i;
  for (i = 0; i < size; ++i) out[i] = kws_add_one(p, in1[i], in2[i]);
}

void kws_add_broadcast_s8(const kws_add_params *p, const int8_t *in1,
                          const int32_t in1_strides[4], const int8_t *in2,
                          const int32_t in2_strides[4], const int32_t out_shape[4],
                          int8_t *out) {
  int32_t i0, i1, i2, i3;
  for (i0 = 0; i0 < out_shape[0]; ++i0) {
    for (i1 = 0; i1 < out_shape[1]; ++i1) {
      for (i2 = 0; i2 < out_shape[2]; ++i2) {
        const int8_t *a = in1 + i0 * in1_strides[0] + i1 * in1_strides[1] + i2 * in1_strides[2];
        const int8_t *b = in2 + i0 * in2_strides[0] + i1 * in2_strides[1] + i2 * in2_strides[2];
        for (i3 = 0; i3 < out_shape[3]; ++i3) {
          *out++ = kws_add_one(p, a[i3 * in1_strides[3]], b[i3 * in2_strides[3]]);
        }
      }
    }
  }
}

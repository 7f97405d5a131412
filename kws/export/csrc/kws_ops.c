/* int8 convolution kernels of the kws C runtime; see kws_ops.h.
 *
 * Two builds of the inner loops: plain C, and one for cores with the Armv7E-M DSP
 * extension (Cortex-M4/M7/M33) that multiplies two 16-bit pairs per instruction (SMLAD,
 * SMLABB/SMLATT on bytes sign-extended in pairs by SXTB16). KWS_EMULATE_DSP builds the
 * DSP path on any host with C versions of those instructions, so the host tests cover the
 * code that runs on the device. */
#include "kws_ops.h"

#include "kws_fixed.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__arm__)
#pragma GCC optimize("no-schedule-insns")
#endif

#include <string.h>

#if defined(__ARM_FEATURE_DSP) && !defined(KWS_NO_DSP)
#include <arm_acle.h>
#define KWS_DSP 1
#define kws_sxtb16(x) ((uint32_t)__sxtb16(x))
static inline uint32_t kws_sxtb16_ror8(uint32_t x) {
  uint32_t r; /* GCC's arm_acle.h has no __ror to fold into SXTB16's rotation */
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}
#define kws_smlad(a, b, acc) __smlad((a), (b), (acc))
#define kws_smlabb(a, b, acc) __smlabb((a), (b), (acc))
#define kws_smlatt(a, b, acc) __smlatt((a), (b), (acc))
#elif defined(KWS_EMULATE_DSP)
#define KWS_DSP 1
static inline uint32_t kws_sxtb16(uint32_t x) {
  return ((uint32_t)(int32_t)(int8_t)(x & 0xff) & 0xffffu) |
         ((uint32_t)(int32_t)(int8_t)((x >> 16) & 0xff) << 16);
}
static inline uint32_t kws_sxtb16_ror8(uint32_t x) { return kws_sxtb16((x >> 8) | (x << 24)); }
static inline int32_t kws_lo16(uint32_t x) { return (int16_t)(x & 0xffffu); }
static inline int32_t kws_hi16(uint32_t x) { return (int16_t)(x >> 16); }
static inline int32_t kws_smlad(uint32_t a, uint32_t b, int32_t acc) {
  return acc + kws_lo16(a) * kws_lo16(b) + kws_hi16(a) * kws_hi16(b);
}
static inline int32_t kws_smlabb(uint32_t a, uint32_t b, int32_t acc) {
  return acc + kws_lo16(a) * kws_lo16(b);
}
static inline int32_t kws_smlatt(uint32_t a, uint32_t b, int32_t acc) {
  return acc + kws_hi16(a) * kws_hi16(b);
}
#else
#define KWS_DSP 0
#endif

/* KWS_NO_FAST_REQUANT builds every layer with the general requantisation (tests compare
 * the two paths). */
#if defined(KWS_NO_FAST_REQUANT)
#define KWS_FAST(p) 0
#else
#define KWS_FAST(p) ((p)->fast)
#endif

#if KWS_DSP
static inline uint32_t kws_load4(const int8_t *p) {
  uint32_t v;
  memcpy(&v, p, sizeof v); /* one LDR; Armv7-M allows unaligned word loads */
  return v;
}
#endif

/* TFLite's MultiplyByQuantizedMultiplier, in the two roundings LiteRT's reference kernels
 * use (measured: CONV_2D and DEPTHWISE_CONV_2D round twice, gemmlowp's
 * kws_multiply_by_quantized_multiplier of kws_fixed.h; FULLY_CONNECTED rounds once). */

/* Single (TFLITE_SINGLE_ROUNDING): round(acc * mult / 2^(31 - shift)), halves up. */
static inline int32_t kws_requantize_single(int32_t acc, int32_t mult, int32_t shift) {
  const int32_t total = 31 - shift;
  return (int32_t)(((int64_t)acc * mult + ((int64_t)1 << (total - 1))) >> total);
}

#if defined(__GNUC__)
#define KWS_INLINE static inline __attribute__((always_inline))
#else
#define KWS_INLINE static inline
#endif

/* Requantise, add the output zero point, clamp to the activation range. */
KWS_INLINE int8_t kws_finish(int32_t acc, int32_t mult, int32_t shift, int single,
                             int32_t offset, int32_t lo, int32_t hi) {
  int32_t v = single ? kws_requantize_single(acc, mult, shift)
                     : kws_multiply_by_quantized_multiplier(acc, mult, shift);
  v += offset;
  v = v < lo ? lo : v;
  return (int8_t)(v > hi ? hi : v);
}

/* The same, double rounding, for a layer whose shifts are all negative, whose activation
 * range is the whole int8 range and whose accumulators stay below 2^30 in magnitude for
 * every input (all checked at export): no branch (kws_fixed.h's small-input form, SMMULR
 * on Armv7E-M, and SSAT). */
KWS_INLINE int8_t kws_finish_fast(int32_t acc, int32_t mult, int32_t shift, int32_t offset) {
  const int32_t v = kws_multiply_by_quantized_multiplier_right(acc, mult, shift) + offset;
#if defined(__ARM_FEATURE_SAT) && KWS_DSP && !defined(KWS_EMULATE_DSP)
  return (int8_t)__ssat(v, 8);
#else
  return (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
#endif
}

static int32_t kws_dot_s8(const int8_t *a, const int8_t *b, int32_t n) {
  int32_t acc = 0;
  for (int32_t i = 0; i < n; ++i) acc += (int32_t)a[i] * b[i];
  return acc;
}

#if KWS_DSP
/* Two rows (x, x + depth) by two weight rows (w, w + depth): each 32-bit load brings
 * four int8 values, SXTB16 splits them into two int16 pairs (even and odd bytes), SMLAD
 * multiplies and adds a pair: 16 MACs per 4 loads, 8 SXTB16 and 8 SMLAD. One offset
 * register reaches the second row of both. */
KWS_INLINE void kws_dot_2x2(const int8_t *x, const int8_t *w, int32_t depth, int32_t acc[4]) {
  int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
  const int8_t *end = x + (depth & ~3);
#define KWS_DOT_2X2_STEP                                              \
  do {                                                                \
    const uint32_t xa = kws_load4(x);                                 \
    const uint32_t xa_e = kws_sxtb16(xa), xa_o = kws_sxtb16_ror8(xa); \
    const uint32_t wa = kws_load4(w);                                 \
    const uint32_t wa_e = kws_sxtb16(wa), wa_o = kws_sxtb16_ror8(wa); \
    a00 = kws_smlad(xa_e, wa_e, a00);                                 \
    a00 = kws_smlad(xa_o, wa_o, a00);                                 \
    const uint32_t wb = kws_load4(w + depth);                         \
    const uint32_t wb_e = kws_sxtb16(wb), wb_o = kws_sxtb16_ror8(wb); \
    a01 = kws_smlad(xa_e, wb_e, a01);                                 \
    a01 = kws_smlad(xa_o, wb_o, a01);                                 \
    const uint32_t xb = kws_load4(x + depth);                         \
    const uint32_t xb_e = kws_sxtb16(xb), xb_o = kws_sxtb16_ror8(xb); \
    a10 = kws_smlad(xb_e, wa_e, a10);                                 \
    a10 = kws_smlad(xb_o, wa_o, a10);                                 \
    a11 = kws_smlad(xb_e, wb_e, a11);                                 \
    a11 = kws_smlad(xb_o, wb_o, a11);                                 \
    x += 4;                                                           \
    w += 4;                                                           \
  } while (0)
  if ((depth & 7) == 0) {
    while (x != end) { /* two steps per iteration: less loop overhead per MAC */
      KWS_DOT_2X2_STEP;
      KWS_DOT_2X2_STEP;
    }
  }
  while (x != end) {
    const uint32_t xa = kws_load4(x);
    const uint32_t xa_e = kws_sxtb16(xa), xa_o = kws_sxtb16_ror8(xa);
    const uint32_t wa = kws_load4(w);
    const uint32_t wa_e = kws_sxtb16(wa), wa_o = kws_sxtb16_ror8(wa);
    a00 = kws_smlad(xa_e, wa_e, a00);
    a00 = kws_smlad(xa_o, wa_o, a00);
    const uint32_t wb = kws_load4(w + depth);
    const uint32_t wb_e = kws_sxtb16(wb), wb_o = kws_sxtb16_ror8(wb);
    a01 = kws_smlad(xa_e, wb_e, a01);
    a01 = kws_smlad(xa_o, wb_o, a01);
    const uint32_t xb = kws_load4(x + depth);
    const uint32_t xb_e = kws_sxtb16(xb), xb_o = kws_sxtb16_ror8(xb);
    a10 = kws_smlad(xb_e, wa_e, a10);
    a10 = kws_smlad(xb_o, wa_o, a10);
    a11 = kws_smlad(xb_e, wb_e, a11);
    a11 = kws_smlad(xb_o, wb_o, a11);
    x += 4;
    w += 4;
  }
  for (int32_t k = depth & 3; k > 0; --k, ++x, ++w) {
    a00 += (int32_t)x[0] * w[0];
    a01 += (int32_t)x[0] * w[depth];
    a10 += (int32_t)x[depth] * w[0];
    a11 += (int32_t)x[depth] * w[depth];
  }
  acc[0] = a00;
  acc[1] = a01;
  acc[2] = a10;
  acc[3] = a11;
#undef KWS_DOT_2X2_STEP
}
#endif

/* The matmul with the requantisation variant fixed at compile time where it is known. */
KWS_INLINE void kws_matmul_body(const kws_matmul_params *p, const int8_t *in, int32_t rows,
                                int8_t *out, int per_channel, int single, int fast) {
  const int32_t depth = p->depth, cols = p->cols;
  const int8_t *weights = p->weights;
  const int32_t *bias = p->bias, *mult = p->mult, *shift = p->shift;
  const int32_t offset = p->out_offset, lo = p->act_min, hi = p->act_max;
#define KWS_MM_OUT(acc, k)                                             \
  (fast ? kws_finish_fast((acc), mult[(k)], shift[(k)], offset)        \
        : kws_finish((acc), mult[(k)], shift[(k)], single, offset, lo, hi))
  int32_t r = 0;
#if KWS_DSP
  for (; r + 1 < rows; r += 2) {
    const int8_t *x = in + (size_t)r * depth;
    int8_t *y0 = out + (size_t)r * cols;
    int8_t *y1 = y0 + cols;
    int32_t n = 0;
    for (; n + 1 < cols; n += 2) {
      int32_t acc[4] = {bias[n], bias[n + 1], bias[n], bias[n + 1]};
      kws_dot_2x2(x, weights + (size_t)n * depth, depth, acc);
      const int32_t k0 = per_channel ? n : 0, k1 = per_channel ? n + 1 : 0;
      const int32_t m0 = mult[k0], s0 = shift[k0], m1 = mult[k1], s1 = shift[k1];
      if (fast) {
        y0[n] = kws_finish_fast(acc[0], m0, s0, offset);
        y0[n + 1] = kws_finish_fast(acc[1], m1, s1, offset);
        y1[n] = kws_finish_fast(acc[2], m0, s0, offset);
        y1[n + 1] = kws_finish_fast(acc[3], m1, s1, offset);
      } else {
        y0[n] = kws_finish(acc[0], m0, s0, single, offset, lo, hi);
        y0[n + 1] = kws_finish(acc[1], m1, s1, single, offset, lo, hi);
        y1[n] = kws_finish(acc[2], m0, s0, single, offset, lo, hi);
        y1[n + 1] = kws_finish(acc[3], m1, s1, single, offset, lo, hi);
      }
    }
    for (; n < cols; ++n) {
      const int8_t *w = weights + (size_t)n * depth;
      const int32_t k = per_channel ? n : 0;
      y0[n] = KWS_MM_OUT(bias[n] + kws_dot_s8(x, w, depth), k);
      y1[n] = KWS_MM_OUT(bias[n] + kws_dot_s8(x + depth, w, depth), k);
    }
  }
#endif
  for (; r < rows; ++r) {
    const int8_t *x = in + (size_t)r * depth;
    int8_t *y = out + (size_t)r * cols;
    const int8_t *w = weights;
    for (int32_t n = 0; n < cols; ++n, w += depth) {
      const int32_t k = per_channel ? n : 0;
      y[n] = KWS_MM_OUT(bias[n] + kws_dot_s8(x, w, depth), k);
    }
  }
#undef KWS_MM_OUT
}

void kws_matmul_s8(const kws_matmul_params *p, const int8_t *in, int32_t rows, int8_t *out) {
  if (KWS_FAST(p) && p->per_channel) {
    kws_matmul_body(p, in, rows, out, 1, 0, 1); /* the convolutions, usually */
  } else {
    kws_matmul_body(p, in, rows, out, p->per_channel, p->single_rounding, 0);
  }
}

/* One output pixel's receptive field as a contiguous OHWI-ordered patch; taps outside the
 * input read the zero point. */
static void kws_patch(const kws_conv_params *p, const int8_t *in, int32_t oy, int32_t ox,
                      int8_t *patch) {
  const int32_t c = p->in_c;
  const int32_t y0 = oy * p->stride_h - p->pad_top;
  const int32_t x0 = ox * p->stride_w - p->pad_left;
  for (int32_t ky = 0; ky < p->k_h; ++ky) {
    const int32_t iy = y0 + ky * p->dil_h;
    for (int32_t kx = 0; kx < p->k_w; ++kx, patch += c) {
      const int32_t ix = x0 + kx * p->dil_w;
      if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) {
        memset(patch, p->in_zero_point, (size_t)c);
      } else {
        memcpy(patch, in + ((size_t)iy * p->in_w + ix) * c, (size_t)c);
      }
    }
  }
}

void kws_conv_s8(const kws_conv_params *p, const int8_t *in, int8_t *out, int8_t *scratch) {
  const int32_t pixels = p->out_h * p->out_w;
  const int32_t depth = p->mm.depth;
  int32_t done = 0;
  while (done < pixels) {
    const int32_t n = pixels - done >= 2 ? 2 : 1;
    for (int32_t i = 0; i < n; ++i) {
      const int32_t pix = done + i;
      kws_patch(p, in, pix / p->out_w, pix % p->out_w, scratch + (size_t)i * depth);
    }
    kws_matmul_s8(&p->mm, scratch, n, out + (size_t)done * p->mm.cols);
    done += n;
  }
}

void kws_depthwise_s8(const kws_depthwise_params *p, const int8_t *in, int8_t *out,
                      void *scratch) {
  const int32_t c = p->in_c;
  const int32_t taps = p->k_h * p->k_w;
  /* scratch: one pointer per tap, then a row of c zero points that taps outside the
   * input read (so every tap runs the same code) */
  const int8_t **src = (const int8_t **)scratch;
  int8_t *zero_row = (int8_t *)(src + taps);
  memset(zero_row, p->in_zero_point, (size_t)c);
  const int8_t *weights = p->weights;
  const int32_t *bias = p->bias, *mult = p->mult, *shift = p->shift;
  const int32_t offset = p->out_offset, lo = p->act_min, hi = p->act_max;
  const int fast = KWS_FAST(p);
  for (int32_t oy = 0; oy < p->out_h; ++oy) {
    const int32_t y0 = oy * p->stride_h - p->pad_top;
    for (int32_t ox = 0; ox < p->out_w; ++ox) {
      const int32_t x0 = ox * p->stride_w - p->pad_left;
      for (int32_t ky = 0, t = 0; ky < p->k_h; ++ky) {
        const int32_t iy = y0 + ky * p->dil_h;
        for (int32_t kx = 0; kx < p->k_w; ++kx, ++t) {
          const int32_t ix = x0 + kx * p->dil_w;
          const int inside = iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w;
          src[t] = inside ? in + ((size_t)iy * p->in_w + ix) * c : zero_row;
        }
      }
      int32_t ch = 0;
#if KWS_DSP
      /* four channels at a time: bytes 0/2 and 1/3 as int16 pairs, SMLABB/SMLATT */
      for (; ch + 3 < c; ch += 4) {
        int32_t a0 = bias[ch], a1 = bias[ch + 1], a2 = bias[ch + 2], a3 = bias[ch + 3];
        const int8_t *w = weights + ch;
        for (int32_t t = 0; t < taps; ++t, w += c) {
          const uint32_t x = kws_load4(src[t] + ch), k = kws_load4(w);
          const uint32_t x_e = kws_sxtb16(x), x_o = kws_sxtb16_ror8(x);
          const uint32_t k_e = kws_sxtb16(k), k_o = kws_sxtb16_ror8(k);
          a0 = kws_smlabb(x_e, k_e, a0);
          a2 = kws_smlatt(x_e, k_e, a2);
          a1 = kws_smlabb(x_o, k_o, a1);
          a3 = kws_smlatt(x_o, k_o, a3);
        }
        if (fast) {
          out[ch] = kws_finish_fast(a0, mult[ch], shift[ch], offset);
          out[ch + 1] = kws_finish_fast(a1, mult[ch + 1], shift[ch + 1], offset);
          out[ch + 2] = kws_finish_fast(a2, mult[ch + 2], shift[ch + 2], offset);
          out[ch + 3] = kws_finish_fast(a3, mult[ch + 3], shift[ch + 3], offset);
        } else {
          out[ch] = kws_finish(a0, mult[ch], shift[ch], 0, offset, lo, hi);
          out[ch + 1] = kws_finish(a1, mult[ch + 1], shift[ch + 1], 0, offset, lo, hi);
          out[ch + 2] = kws_finish(a2, mult[ch + 2], shift[ch + 2], 0, offset, lo, hi);
          out[ch + 3] = kws_finish(a3, mult[ch + 3], shift[ch + 3], 0, offset, lo, hi);
        }
      }
#endif
      for (; ch < c; ++ch) {
        int32_t acc = bias[ch];
        const int8_t *w = weights + ch;
        for (int32_t t = 0; t < taps; ++t, w += c) acc += (int32_t)src[t][ch] * *w;
        out[ch] = fast ? kws_finish_fast(acc, mult[ch], shift[ch], offset)
                       : kws_finish(acc, mult[ch], shift[ch], 0, offset, lo, hi);
      }
      out += c;
    }
  }
}

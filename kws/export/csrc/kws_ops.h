/* int8 convolution kernels of the kws C runtime: TensorFlow Lite's reference arithmetic,
 * bit for bit, without an interpreter.
 *
 * Every kernel computes acc = bias' + sum(w * x) over int8 weights w and int8 inputs x,
 * where bias' = bias - input_zero_point * sum(w) is folded at export time, and padding
 * reads the input zero point (so padded taps add exactly 0, as TFLite skips them); then
 * TFLite's MultiplyByQuantizedMultiplier (each layer in the rounding LiteRT's reference
 * kernel uses), the output zero point and the activation clamp. Integer sums are exact, so the order of the terms does not matter.
 *
 * Layouts are TFLite's: activations HWC (batch 1), conv weights OHWI, depthwise weights
 * HWC, fully connected weights (out, in).
 */
#ifndef KWS_OPS_H_
#define KWS_OPS_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* out[p][n] for p < rows, n < cols: requantised dot products of K-long int8 rows. */
typedef struct {
  int32_t depth;           /* K */
  int32_t cols;            /* N (output channels) */
  const int8_t *weights;   /* N x K */
  const int32_t *bias;     /* N, folded */
  const int32_t *mult;     /* N, or 1 when per_channel == 0 */
  const int32_t *shift;    /* N, or 1 */
  int32_t per_channel;
  int32_t single_rounding; /* 1: FULLY_CONNECTED's rounding, 0: the convolutions' */
  int32_t fast;            /* set at export: double rounding, every shift < 0, full
                            * int8 activation range: the requantisation needs no branch */
  int32_t out_offset;
  int32_t act_min, act_max;
} kws_matmul_params;

typedef struct {
  int32_t in_h, in_w, in_c;
  int32_t out_h, out_w;
  int32_t k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;
  int32_t in_zero_point;
  kws_matmul_params mm;    /* depth = k_h * k_w * in_c, weights OHWI */
} kws_conv_params;

typedef struct {
  int32_t in_h, in_w, in_c;
  int32_t out_h, out_w;
  int32_t k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;
  int32_t in_zero_point, out_offset;
  int32_t act_min, act_max;
  int32_t fast;            /* as in kws_matmul_params */
  const int8_t *weights;   /* k_h x k_w x in_c (depth multiplier 1) */
  const int32_t *bias;     /* in_c, folded over all taps */
  const int32_t *mult;
  const int32_t *shift;
} kws_depthwise_params;

/* rows x depth inputs (row-major) -> rows x cols outputs. */
void kws_matmul_s8(const kws_matmul_params *p, const int8_t *in, int32_t rows, int8_t *out);

/* General 2-D convolution through a patch buffer of 2 * depth bytes (scratch). */
void kws_conv_s8(const kws_conv_params *p, const int8_t *in, int8_t *out, int8_t *scratch);

/* Depthwise 2-D convolution, depth multiplier 1; scratch: KWS_DEPTHWISE_SCRATCH bytes. */
#define KWS_DEPTHWISE_SCRATCH(taps, channels) (8 * (taps) + (channels))
void kws_depthwise_s8(const kws_depthwise_params *p, const int8_t *in, int8_t *out,
                      void *scratch);

#ifdef __cplusplus
}
#endif

#endif /* KWS_OPS_H_ */

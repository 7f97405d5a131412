/* int8 SOFTMAX, MEAN, AVERAGE_POOL_2D, MAX_POOL_2D and ADD kernels of the kws C runtime:
 * LiteRT's reference kernels (OpResolverType.BUILTIN_REF), bit for bit.
 *
 * Every integer parameter is computed at export time, exactly as LiteRT's Prepare does, by
 * kws/export/cops.py (softmax_params, mean_params, pool_params, add_params); the kernels only
 * run the integer arithmetic. Activations are NHWC, row-major. No allocation, no libm.
 */
#ifndef KWS_OPS_EXTRA_H_
#define KWS_OPS_EXTRA_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* SOFTMAX, int8 in, int8 out (scale 1/256, zero point -128), over the last axis:
 * in/out are rows x depth. input_multiplier / input_left_shift / diff_min come from
 * PreprocessSoftmaxScaling and CalculateInputRadius with 5 integer bits (beta folded in). */
void kws_softmax_s8(const int8_t *in, int8_t *out, int32_t rows, int32_t depth,
                    int32_t input_multiplier, int32_t input_left_shift, int32_t diff_min);

/* MEAN over axes 1 and 2 (height, width) of an NHWC tensor; out is batches x channels
 * (the same bytes whether keep_dims is true or false). multiplier / shift already include
 * the 1 / (height * width) factor, as LiteRT's QuantizedMeanOrSum folds it. */
void kws_mean_hw_s8(const int8_t *in, int8_t *out, int32_t batches, int32_t height,
                    int32_t width, int32_t channels, int32_t input_zero_point,
                    int32_t multiplier, int32_t shift, int32_t output_zero_point);

/* AVERAGE_POOL_2D and MAX_POOL_2D (input and output share scale and zero point). */
typedef struct {
  int32_t in_h, in_w, channels;
  int32_t out_h, out_w;
  int32_t filter_h, filter_w;
  int32_t stride_h, stride_w;
  int32_t pad_top, pad_left; /* SAME: leading padding; VALID: 0 */
  int32_t act_min, act_max;  /* fused activation, in output units */
} kws_pool_params;

/* in: batches x in_h x in_w x channels; out: batches x out_h x out_w x channels. The average
 * counts only the taps inside the input (padding is excluded) and rounds half away from
 * zero. */
void kws_avg_pool_s8(const kws_pool_params *p, const int8_t *in, int8_t *out, int32_t batches);
void kws_max_pool_s8(const kws_pool_params *p, const int8_t *in, int8_t *out, int32_t batches);

/* ADD of two int8 tensors with their own scales: both inputs are rescaled to a common
 * scale with 20 bits of headroom, summed, and requantised to the output. */
typedef struct {
  int32_t input1_offset, input2_offset; /* minus the input zero points */
  int32_t left_shift;                   /* 20 for int8 */
  int32_t input1_multiplier, input1_shift;
  int32_t input2_multiplier, input2_shift;
  int32_t output_multiplier, output_shift;
  int32_t output_offset; /* output zero point */
  int32_t act_min, act_max;
} kws_add_params;

/* Same shapes: size elements of in1 and in2. */
void kws_add_s8(const kws_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out,
                int32_t size);

/* Broadcasting ADD up to 4-D: out has shape out_shape (row-major); element [i0][i1][i2][i3]
 * reads in1[sum(ik * in1_strides[k])] and in2[sum(ik * in2_strides[k])], where a stride is 0
 * along each axis that input broadcasts (cops.broadcast_strides computes them). */
void kws_add_broadcast_s8(const kws_add_params *p, const int8_t *in1,
                          const int32_t in1_strides[4], const int8_t *in2,
                          const int32_t in2_strides[4], const int32_t out_shape[4],
                          int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* KWS_OPS_EXTRA_H_ */

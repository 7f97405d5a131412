"""Integer parameters and NumPy models of the int8 SOFTMAX, MEAN, pooling and ADD operators.

In: float scales, zero points and operator options from a .tflite file. Out: the integer
parameters that LiteRT's reference kernels (``OpResolverType.BUILTIN_REF``) derive in their
Prepare step, as small frozen dataclasses that the C kernels of ``csrc/kws_ops_extra.c``
take, and NumPy implementations of the kernels' integer arithmetic, bit for bit, for tests
and debugging.

The LiteRT code paths matched (LiteRT 2.x, ``tflite/kernels``):

* SOFTMAX: ``activations.cc`` SoftmaxPrepare for kReference (PreprocessSoftmaxScaling and
  CalculateInputRadius with 5 integer bits), then ``reference_ops::Softmax`` (gemmlowp's
  ``exp_on_negative_values`` and ``one_over_one_plus_x_for_x_in_0_1``); not the lookup
  table of the optimised kernel.
* MEAN: ``reduce.cc`` PrepareMeanOrSum (``QuantizeMultiplier(in_scale / out_scale)``), then
  ``reference_ops::QuantizedMeanOrSum``, which folds 1/N into the multiplier by an integer
  division. This is the only int8 path of the reference kernel, whatever ``keep_dims`` and
  whether or not the input and output share scale and zero point (older TensorFlow Lite had
  three paths: a separate 4-D kernel, a same-scale truncating mean and a float one).
* AVERAGE_POOL_2D, MAX_POOL_2D: ``reference_integer_ops::AveragePool`` / ``MaxPool``, the
  padding of ComputePaddingHeightWidth, CalculateActivationRangeQuantized.
* ADD: ``add.cc`` Prepare for int8 (left shift 20, QuantizeMultiplierSmallerThanOneExp), then
  ``reference_integer_ops::Add`` or ``BroadcastAdd6DSlow``.

Scales and ``beta`` are rounded to float32 first, as the flatbuffer stores them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kws.export.qmath import INT32_MAX, INT32_MIN, quantize_multiplier, round_half_away
from kws.export.qmath import multiply_by_quantized_multiplier as _mbqm
from kws.export.qmath import rounding_divide_by_pot as _rdbpot
from kws.export.qmath import saturating_rounding_doubling_high_mul as _srdhm
from kws.export.qmath import wrap32 as _wrap32

__all__ = [
    "ACTIVATIONS",
    "AddParams",
    "MeanParams",
    "PoolParams",
    "SoftmaxParams",
    "activation_range",
    "add_params",
    "add_s8",
    "avg_pool_s8",
    "broadcast_strides",
    "max_pool_s8",
    "mean_hw_s8",
    "mean_params",
    "pool_output_size",
    "pool_params",
    "softmax_params",
    "softmax_s8",
]


#: TFLite's ActivationFunctionType codes of the fused activations these operators accept.
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}

_SCALED_DIFF_INTEGER_BITS = 5  # softmax: exp() input in Q5.26
_ACCUMULATION_INTEGER_BITS = 12  # softmax: sum of exps in Q12.19
_ADD_LEFT_SHIFT = 20  # int8 ADD headroom


def _f32(x: float) -> float:
    """``x`` as the float32 that a .tflite file stores, widened back to a Python float."""
    return float(np.float32(x))


def activation_range(activation: str, scale: float, zero_point: int) -> tuple[int, int]:
    """TFLite's CalculateActivationRangeQuantized for an int8 output: ``(act_min, act_max)``.

    ``activation`` is ``"NONE"``, ``"RELU"``, ``"RELU6"`` or ``"RELU_N1_TO_1"``. As in TFLite,
    the bound is ``zero_point + round(f / scale)`` with a float32 division and halves rounded
    away from zero.
    """

    def q(f: float) -> int:
        return zero_point + round_half_away(float(np.float32(f) / np.float32(scale)))

    if activation == "NONE":
        return -128, 127
    if activation == "RELU":
        return max(-128, q(0.0)), 127
    if activation == "RELU6":
        return max(-128, q(0.0)), min(127, q(6.0))
    if activation == "RELU_N1_TO_1":
        return max(-128, q(-1.0)), min(127, q(1.0))
    raise ValueError(f"unsupported fused activation {activation!r}")


# ---- SOFTMAX ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SoftmaxParams:
    """Arguments of ``kws_softmax_s8`` (output scale 1/256, zero point -128)."""

    input_multiplier: int  # Q31 multiplier of beta * input_scale * 2^26
    input_left_shift: int  # its left shift, >= 0
    diff_min: int  # inputs below max - |diff_min| give exactly -128


def softmax_params(input_scale: float, beta: float = 1.0) -> SoftmaxParams:
    """PreprocessSoftmaxScaling and CalculateInputRadius with 5 integer bits (double rounding
    build: the real multiplier is capped at 2^31 - 1)."""
    real = min(
        _f32(beta) * _f32(input_scale) * (1 << (31 - _SCALED_DIFF_INTEGER_BITS)),
        float((1 << 31) - 1),
    )
    if not real > 1.0:
        raise ValueError(f"softmax: beta * input_scale = {beta * input_scale!r} is too small")
    multiplier, shift = quantize_multiplier(real)
    # CalculateInputRadius: floor((2^5 - 1) * 2^26 / 2^shift), exact in double
    radius = math.floor(
        ((1 << _SCALED_DIFF_INTEGER_BITS) - 1)
        * (1 << (31 - _SCALED_DIFF_INTEGER_BITS))
        / (1 << shift)
    )
    return SoftmaxParams(multiplier, shift, -radius)


# ---- MEAN ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeanParams:
    """Arguments of ``kws_mean_hw_s8`` for one input height and width."""

    input_zero_point: int
    output_zero_point: int
    multiplier: int  # QuantizeMultiplier(in_scale / out_scale) with 1/count folded in
    shift: int
    count: int  # height * width, the number of values averaged


def mean_params(
    input_scale: float,
    input_zero_point: int,
    output_scale: float,
    output_zero_point: int,
    height: int,
    width: int,
) -> MeanParams:
    """PrepareMeanOrSum's multiplier, then the 1/count folding of QuantizedMeanOrSum:
    ``multiplier = (m << s) // count`` with ``s = min(floor(log2 count), 32, 31 + shift)``
    (so a count that is not a power of two loses a few low bits of the multiplier, as in
    LiteRT)."""
    count = height * width
    if count <= 0:
        raise ValueError("mean over an empty window")
    multiplier, shift = quantize_multiplier(_f32(input_scale) / _f32(output_scale))
    s = min(count.bit_length() - 1, 32, 31 + shift)  # >= 0: QuantizeMultiplier keeps shift >= -31
    folded = (multiplier << s) // count  # < 2^31 since 2^s <= count
    return MeanParams(input_zero_point, output_zero_point, folded, shift - s, count)


# ---- pooling ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolParams:
    """Fields of ``kws_pool_params`` (NHWC; input and output share quantisation)."""

    in_h: int
    in_w: int
    channels: int
    out_h: int
    out_w: int
    filter_h: int
    filter_w: int
    stride_h: int
    stride_w: int
    pad_top: int
    pad_left: int
    act_min: int
    act_max: int


def pool_output_size(in_size: int, filter_size: int, stride: int, padding: str) -> int:
    """TFLite's ComputeOutSize."""
    if padding == "SAME":
        return (in_size + stride - 1) // stride
    if padding == "VALID":
        return (in_size + stride - filter_size) // stride
    raise ValueError(f"unknown padding {padding!r}")


def _leading_padding(in_size: int, filter_size: int, stride: int, out_size: int) -> int:
    total = (out_size - 1) * stride + filter_size - in_size
    return max(total, 0) // 2


def pool_params(
    in_h: int,
    in_w: int,
    channels: int,
    *,
    filter_h: int,
    filter_w: int,
    stride_h: int,
    stride_w: int,
    padding: str,
    activation: str = "NONE",
    output_scale: float = 1.0,
    output_zero_point: int = 0,
) -> PoolParams:
    """Pool2D's Prepare: output size and leading padding (ComputePaddingHeightWidth, the odd
    pixel of SAME goes after), and the activation range of the output."""
    out_h = pool_output_size(in_h, filter_h, stride_h, padding)
    out_w = pool_output_size(in_w, filter_w, stride_w, padding)
    if out_h <= 0 or out_w <= 0:
        raise ValueError("pooling window larger than its input")
    act_min, act_max = activation_range(activation, output_scale, output_zero_point)
    return PoolParams(
        in_h,
        in_w,
        channels,
        out_h,
        out_w,
        filter_h,
        filter_w,
        stride_h,
        stride_w,
        _leading_padding(in_h, filter_h, stride_h, out_h),
        _leading_padding(in_w, filter_w, stride_w, out_w),
        act_min,
        act_max,
    )


# ---- ADD -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddParams:
    """Fields of ``kws_add_params``."""

    input1_offset: int  # -input1 zero point
    input2_offset: int
    left_shift: int  # 20
    input1_multiplier: int
    input1_shift: int  # <= 0
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int
    output_offset: int  # output zero point
    act_min: int
    act_max: int


def _smaller_than_one(real: float, what: str) -> tuple[int, int]:
    """QuantizeMultiplierSmallerThanOneExp (LiteRT aborts when the shift comes out > 0)."""
    multiplier, shift = quantize_multiplier(real)
    if shift > 0:
        raise ValueError(f"add: {what} multiplier {real!r} is not below one")
    return multiplier, shift


def add_params(
    input1_scale: float,
    input1_zero_point: int,
    input2_scale: float,
    input2_zero_point: int,
    output_scale: float,
    output_zero_point: int,
    activation: str = "NONE",
) -> AddParams:
    """add.cc's Prepare for int8: both inputs go to twice the larger input scale with a
    2^20 headroom, the sum is requantised to the output scale."""
    s1, s2, so = _f32(input1_scale), _f32(input2_scale), _f32(output_scale)
    twice_max = 2.0 * max(s1, s2)
    m1, sh1 = _smaller_than_one(s1 / twice_max, "input1")
    m2, sh2 = _smaller_than_one(s2 / twice_max, "input2")
    mo, sho = _smaller_than_one(twice_max / (float(1 << _ADD_LEFT_SHIFT) * so), "output")
    act_min, act_max = activation_range(activation, output_scale, output_zero_point)
    return AddParams(
        -input1_zero_point,
        -input2_zero_point,
        _ADD_LEFT_SHIFT,
        m1,
        sh1,
        m2,
        sh2,
        mo,
        sho,
        output_zero_point,
        act_min,
        act_max,
    )


def broadcast_strides(
    in_shape: tuple[int, ...], out_shape: tuple[int, ...]
) -> tuple[int, int, int, int]:
    """Element strides of a row-major input read along a 4-D broadcast output (shapes are
    right-aligned, as in NumPy and TFLite; 0 along each broadcast axis)."""
    if len(out_shape) > 4 or len(in_shape) > len(out_shape):
        raise ValueError(f"cannot broadcast {in_shape} to {out_shape} in 4-D")
    ins = (1,) * (4 - len(in_shape)) + tuple(in_shape)
    outs = (1,) * (4 - len(out_shape)) + tuple(out_shape)
    strides = [0, 0, 0, 0]
    step = 1
    for k in range(3, -1, -1):
        if ins[k] == outs[k]:
            strides[k] = step if ins[k] > 1 else 0
        elif ins[k] != 1:
            raise ValueError(f"cannot broadcast {in_shape} to {out_shape}")
        step *= ins[k]
    return strides[0], strides[1], strides[2], strides[3]


# ---- NumPy models of the integer arithmetic -------------------------------------------------


def _sat_shl(x: np.ndarray, exponent: int) -> np.ndarray:
    """SaturatingRoundingMultiplyByPOT<exponent> for exponent > 0."""
    threshold = (1 << (31 - exponent)) - 1
    return np.where(
        x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, _wrap32(x << exponent))
    )


def _exp_quarter(a: np.ndarray) -> np.ndarray:
    """exp(a) for a in [-1/4, 0), Q0.31 (exp_on_interval_between_negative_one_quarter_and_0)."""
    constant_term, one_third = 1895147668, 715827883
    x = _wrap32(a + (1 << 28))
    x2 = _srdhm(x, x)
    x3 = _srdhm(x2, x)
    x4 = _srdhm(x2, x2)
    poly = _rdbpot(_wrap32(_srdhm(_wrap32(_rdbpot(x4, 2) + x3), one_third) + x2), 1)
    return _wrap32(constant_term + _srdhm(constant_term, _wrap32(x + poly)))


_EXP_POW2 = (1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242)


def _exp_on_negative_values_q5(a: np.ndarray) -> np.ndarray:
    """gemmlowp's exp_on_negative_values for Q5.26 inputs; Q0.31 result."""
    quarter = 1 << 24
    a_mod = _wrap32((a & (quarter - 1)) - quarter)
    remainder = _wrap32(a_mod - a)
    result = _exp_quarter(_sat_shl(a_mod, 5))
    for k, m in enumerate(_EXP_POW2):
        result = np.where(remainder & (1 << (24 + k)), _srdhm(result, m), result)
    return np.where(a == 0, INT32_MAX, result)


def _one_over_one_plus_x(a: np.ndarray) -> np.ndarray:
    """gemmlowp's one_over_one_plus_x_for_x_in_0_1 (Q0.31 in and out)."""
    s = a + INT32_MAX + np.where(a + INT32_MAX >= 0, 1, -1)
    half = np.where(s >= 0, s >> 1, -((-s) >> 1))
    x = _wrap32(1515870810 + _srdhm(half, -1010580540))
    for _ in range(3):
        one_minus = _wrap32((1 << 29) - _srdhm(half, x))
        x = _wrap32(x + _sat_shl(_srdhm(x, one_minus), 2))
    return _sat_shl(x, 1)


def _clz32(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64) & 0xFFFFFFFF
    n = np.zeros(x.shape, dtype=np.int64)
    for bits in (16, 8, 4, 2, 1):
        top = x >> (32 - bits) == 0
        n = np.where(top, n + bits, n)
        x = np.where(top, (x << bits) & 0xFFFFFFFF, x)
    return np.where(np.asarray(x) == 0, 32, n)


def softmax_s8(x: np.ndarray, p: SoftmaxParams) -> np.ndarray:
    """reference_ops::Softmax for int8 in and out, over the last axis."""
    x = np.asarray(x, dtype=np.int64)
    diff = x - x.max(axis=-1, keepdims=True)
    live = diff >= p.diff_min
    rescaled = _srdhm(_wrap32(diff << p.input_left_shift), p.input_multiplier)
    e = np.where(live, _exp_on_negative_values_q5(np.where(live, rescaled, 0)), 0)
    total = _wrap32(np.where(live, _rdbpot(e, _ACCUMULATION_INTEGER_BITS), 0).sum(-1))
    headroom = _clz32(total)
    bits_over_unit = _ACCUMULATION_INTEGER_BITS - headroom
    scale = _one_over_one_plus_x(_wrap32(((total << headroom) & 0xFFFFFFFF) - (1 << 31)))
    exponent = np.minimum(bits_over_unit + 31 - 8, 31)[..., None]
    out = _rdbpot(_srdhm(scale[..., None], e), exponent) - 128
    return np.where(live, np.clip(out, -128, 127), -128).astype(np.int8)


def mean_hw_s8(x: np.ndarray, p: MeanParams) -> np.ndarray:
    """QuantizedMeanOrSum over axes 1 and 2 of (N, H, W, C) int8 data: (N, C) int8."""
    x = np.asarray(x, dtype=np.int64)
    total = x.sum(axis=(1, 2)) - p.input_zero_point * p.count
    y = _mbqm(_wrap32(total), p.multiplier, p.shift) + p.output_zero_point
    return np.clip(y, -128, 127).astype(np.int8)


def _pool(x: np.ndarray, p: PoolParams, kind: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    out = np.empty((x.shape[0], p.out_h, p.out_w, p.channels), dtype=np.int64)
    for oy in range(p.out_h):
        iy = oy * p.stride_h - p.pad_top
        y0, y1 = max(iy, 0), min(iy + p.filter_h, p.in_h)
        for ox in range(p.out_w):
            ix = ox * p.stride_w - p.pad_left
            x0, x1 = max(ix, 0), min(ix + p.filter_w, p.in_w)
            window = x[:, y0:y1, x0:x1, :]
            if kind == "max":
                out[:, oy, ox] = window.max(axis=(1, 2), initial=-128)
            else:
                acc = window.sum(axis=(1, 2))
                n = max((y1 - y0) * (x1 - x0), 1)  # LiteRT fails on an empty window
                out[:, oy, ox] = np.sign(acc) * ((np.abs(acc) + n // 2) // n)
    return np.clip(out, p.act_min, p.act_max).astype(np.int8)


def avg_pool_s8(x: np.ndarray, p: PoolParams) -> np.ndarray:
    """reference_integer_ops::AveragePool on (N, H, W, C) int8 data."""
    return _pool(x, p, "avg")


def max_pool_s8(x: np.ndarray, p: PoolParams) -> np.ndarray:
    """reference_integer_ops::MaxPool on (N, H, W, C) int8 data."""
    return _pool(x, p, "max")


def add_s8(x1: np.ndarray, x2: np.ndarray, p: AddParams) -> np.ndarray:
    """reference_integer_ops::Add (NumPy broadcasting stands for BroadcastAdd6DSlow)."""

    def scaled(x: np.ndarray, offset: int, multiplier: int, shift: int) -> np.ndarray:
        shifted = _wrap32((np.asarray(x, dtype=np.int64) + offset) << p.left_shift)
        return _mbqm(shifted, multiplier, shift)

    total = _wrap32(
        scaled(x1, p.input1_offset, p.input1_multiplier, p.input1_shift)
        + scaled(x2, p.input2_offset, p.input2_multiplier, p.input2_shift)
    )
    y = _mbqm(total, p.output_multiplier, p.output_shift)
    return np.clip(y + p.output_offset, p.act_min, p.act_max).astype(np.int8)

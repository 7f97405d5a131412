"""TensorFlow Lite's integer requantisation parameters, computed exactly as its kernels do.

In: float scales from a .tflite file. Out: the (multiplier, shift) pairs that TFLite's
reference kernels (and TensorFlow Lite Micro) derive in their Prepare step, so that C code
generated from them rounds exactly like LiteRT. Also the one NumPy model of gemmlowp's
fixed-point primitives (wrapping int32 sums, SaturatingRoundingDoublingHighMul,
RoundingDivideByPOT, both MultiplyByQuantizedMultiplier roundings), used by `cops`' operator
references and the tests.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "multiply_by_quantized_multiplier",
    "multiply_by_quantized_multiplier_single",
    "quantize_multiplier",
    "round_half_away",
    "rounding_divide_by_pot",
    "saturating_rounding_doubling_high_mul",
    "wrap32",
]


def round_half_away(x: float) -> int:
    """C's ``round()`` (TfLiteRound): halves away from zero."""
    return math.floor(abs(x) + 0.5) * (1 if x >= 0 else -1)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier``: ``real ≈ multiplier · 2^(shift − 31)``.

    ``multiplier`` is a Q31 number in [2^30, 2^31) (0 for a zero scale); ``shift`` > 0 means a
    left shift. Scales below 2^-32 become (0, 0), as in TFLite.
    """
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = round_half_away(q * (1 << 31))
    if q_fixed > (1 << 31):
        raise ValueError(f"scale {real!r} cannot be represented")
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q_fixed), int(shift)


INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def wrap32(x: np.ndarray) -> np.ndarray:
    """int64 values reduced modulo 2^32 to int32's range (C's wrapping int32 arithmetic)."""
    return ((np.asarray(x, dtype=np.int64) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """gemmlowp's SaturatingRoundingDoublingHighMul, elementwise on int32 values (int64)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    s = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    q = np.where(s >= 0, s >> 31, -((-s) >> 31))  # C's division by 2^31 truncates toward 0
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, q)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray | int) -> np.ndarray:
    """gemmlowp's RoundingDivideByPOT (exponent 0..31, scalar or elementwise)."""
    x = np.asarray(x, dtype=np.int64)
    e = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << e) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + ((x & mask) > threshold)


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """TFLite's ``MultiplyByQuantizedMultiplier`` with gemmlowp's two roundings
    (SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT; a left shift wraps like
    int32): what LiteRT's reference CONV_2D and DEPTHWISE_CONV_2D compute (measured)."""
    shifted = wrap32(np.asarray(x, dtype=np.int64) << max(shift, 0))
    return rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(shifted, multiplier), max(-shift, 0)
    )


def multiply_by_quantized_multiplier_single(
    x: np.ndarray, multiplier: int, shift: int
) -> np.ndarray:
    """The single-rounding variant (``TFLITE_SINGLE_ROUNDING``):
    ``(x·multiplier + 2^(30−shift)) >> (31−shift)``. LiteRT's reference FULLY_CONNECTED
    computes this one (measured: the two-step rounding differs by 1 LSB on rare values)."""
    total = 31 - shift
    x = np.asarray(x, dtype=np.int64)
    return (x * np.int64(multiplier) + (np.int64(1) << np.int64(total - 1))) >> np.int64(total)

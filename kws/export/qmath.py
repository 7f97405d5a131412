"""TensorFlow Lite's integer requantisation parameters, computed exactly as its kernels do.

In: float scales from a .tflite file. Out: the (multiplier, shift) pairs that TFLite's
reference kernels (and TensorFlow Lite Micro) derive in their Prepare step, so that C code
generated from them rounds exactly like LiteRT. Also a NumPy model of the integer
arithmetic (`multiply_by_quantized_multiplier`) for tests.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "multiply_by_quantized_multiplier",
    "multiply_by_quantized_multiplier_single",
    "quantize_multiplier",
    "round_half_away",
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


def _srdhm(a: np.ndarray, b: int) -> np.ndarray:
    """gemmlowp's SaturatingRoundingDoublingHighMul on int64 arrays."""
    ab = a.astype(np.int64) * np.int64(b)
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    s = ab + nudge
    # C integer division by 2^31 truncates toward zero
    q = np.where(s >= 0, s >> 31, -((-s) >> 31))
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    return np.where(overflow, INT32_MAX, q)


def _rounding_divide_by_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """TFLite's ``MultiplyByQuantizedMultiplier`` with gemmlowp's two roundings
    (SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT): what LiteRT's reference
    CONV_2D and DEPTHWISE_CONV_2D compute (measured)."""
    x = np.asarray(x, dtype=np.int64)
    left = max(shift, 0)
    right = max(-shift, 0)
    return _rounding_divide_by_pot(_srdhm(x * (1 << left), multiplier), right).astype(np.int64)


def multiply_by_quantized_multiplier_single(
    x: np.ndarray, multiplier: int, shift: int
) -> np.ndarray:
    """The single-rounding variant (``TFLITE_SINGLE_ROUNDING``):
    ``(x·multiplier + 2^(30−shift)) >> (31−shift)``. LiteRT's reference FULLY_CONNECTED
    computes this one (measured: the two-step rounding differs by 1 LSB on rare values)."""
    total = 31 - shift
    x = np.asarray(x, dtype=np.int64)
    return (x * np.int64(multiplier) + (np.int64(1) << np.int64(total - 1))) >> np.int64(total)

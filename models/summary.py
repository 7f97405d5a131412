"""Size and cost of a built Keras model: parameters, MACs per inference, int8 bytes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Flatbuffer header, tensor and operator tables of a small int8 .tflite model (estimate).
TFLITE_OVERHEAD_BYTES = 2_000


@dataclass(frozen=True)
class ModelSummary:
    params: int
    macs: int
    int8_bytes: int  # estimate: int8 weights + int32 biases (BN folded) + overhead


def _macs(layer: Any) -> tuple[int, int, int]:
    """(MACs, int8 weights, int32 biases after folding) of one layer at inference."""
    from keras import layers

    out = layer.output.shape
    if isinstance(layer, layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        channels = layer.input.shape[-1] * layer.depth_multiplier
        return out[1] * out[2] * kh * kw * channels, kh * kw * channels, channels
    if isinstance(layer, layers.Conv2D):
        kh, kw = layer.kernel_size
        cin, cout = layer.input.shape[-1], layer.filters
        return out[1] * out[2] * kh * kw * cin * cout, kh * kw * cin * cout, cout
    if isinstance(layer, layers.Dense):
        cin, cout = layer.input.shape[-1], layer.units
        return cin * cout, cin * cout, cout
    return 0, 0, 0


def summarize(model: Any) -> ModelSummary:
    macs = weights = biases = 0
    for layer in model.layers:
        m, w, b = _macs(layer)
        macs, weights, biases = macs + m, weights + w, biases + b
    return ModelSummary(
        params=int(model.count_params()),
        macs=int(macs),
        int8_bytes=int(weights + 4 * biases + TFLITE_OVERHEAD_BYTES),
    )

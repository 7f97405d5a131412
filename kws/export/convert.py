"""Keras → TFLite: a float model and a fully int8 model (int8 input and output, builtin ops).

Both are converted with a fixed batch of 1, as a device runs them, so every shape is static
and no SHAPE/PACK operators appear. Full-integer post-training quantisation calibrates on a
representative set of training features.

Every Dense layer on a vector is exported as a 1×1 CONV_2D (RESHAPE → CONV_2D → RESHAPE, same
weights), never as FULLY_CONNECTED: LiteRT's reference FULLY_CONNECTED rounds its int8
requantisation once and TFLM's twice, so the two runtimes disagree by 1 LSB on rare
accumulators (measured: 3 of 300 random inputs for BC-ResNet-3, 2 of 872 validation examples),
while both round CONV_2D the same way. With the rewrite host and device are bit-identical, and
the classifier gets per-channel weight scales like every other convolution.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["strip_names", "to_tflite"]


def _dense_as_conv(dense: Any) -> Any:
    """A layer computing ``dense`` on a (batch, n) input as a 1×1 convolution of its weights."""
    import keras

    kernel, *bias = dense.get_weights()
    n_in, n_out = kernel.shape

    class PointwiseDense(keras.layers.Layer):
        def call(self, x: Any) -> Any:
            ops = keras.ops
            y = ops.conv(ops.reshape(x, (-1, 1, 1, n_in)), kernel.reshape(1, 1, n_in, n_out))
            if bias:
                y = y + bias[0]
            return dense.activation(ops.reshape(y, (-1, n_out)))

    return PointwiseDense(name=f"{dense.name}_as_conv")


def _without_fully_connected(model: Any) -> Any:
    """``model`` with every Dense layer on a vector replaced by `_dense_as_conv` (other
    layers are shared, not copied)."""
    import keras

    def clone(layer: Any) -> Any:
        if isinstance(layer, keras.layers.Dense) and len(layer.input.shape) == 2:
            return _dense_as_conv(layer)
        return layer

    return keras.models.clone_model(model, clone_function=clone)


def _fixed_batch(model: Any) -> Any:
    import keras

    model = _without_fully_connected(model)
    inputs = keras.Input(batch_shape=(1, *model.input_shape[1:]), name="features")
    return keras.Model(inputs, model(inputs), name=model.name)


def to_tflite(model: Any, *, representative: np.ndarray | None = None) -> bytes:
    """Float model, or full int8 when ``representative`` features (n, frames, coeffs) are given."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(_fixed_batch(model))
    if representative is not None:

        def examples() -> Iterator[list[np.ndarray]]:
            for x in representative:
                yield [x[None].astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = examples
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    from kws.quiet import quiet_stderr

    # Keras prints the traced signature, the quantiser a C++ line, the converter a warning
    # about input statistics that full-integer models do not need: none is for the user
    with (
        contextlib.redirect_stdout(io.StringIO()),
        quiet_stderr(),
        warnings.catch_warnings(),
    ):
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return converter.convert()


def strip_names(flatbuffer: bytes) -> bytes:
    """The same model without its tensor, subgraph and signature names (TensorFlow's
    ``flatbuffer_utils.strip_strings``). No runtime reads them; they are a fifth of an int8
    keyword model's bytes (measured: BC-ResNet-3 150,520 → 121,648 B, DS-CNN-S 49,528 →
    43,128 B), and LiteRT and TFLM give identical outputs with or without them."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    flatbuffer_utils.strip_strings(model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))

"""Keras → TFLite: a float model and a fully int8 model (int8 input and output, builtin ops).

Both are converted with a fixed batch of 1, as a device runs them, so every shape is static
and no SHAPE/PACK operators appear. Full-integer post-training quantisation calibrates on a
representative set of training features.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["to_tflite"]


def _fixed_batch(model: Any) -> Any:
    import keras

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
        # Per-tensor weights for fully connected layers: with per-channel ones, TFLM's FC kernel
        # rounds differently from LiteRT's reference kernel (measured: 1-3 LSB on 0.1-0.3 % of
        # validation examples of DS-CNN-S). Per-tensor FC differs far more rarely: LiteRT rounds
        # it once, TFLM twice, which disagree only on rare accumulators (one of 872 validation
        # examples for one DS-CNN-S run, none for others); the C export follows LiteRT.
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
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

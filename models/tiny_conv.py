"""micro_speech's "tiny_conv": the smallest model in TensorFlow's speech_commands examples.

Warden & Situnayake, "TinyML" (O'Reilly 2019), chapter 7; tensorflow/examples/speech_commands.

    features (frames, coeffs) → reshape (frames, coeffs, 1)
      → Conv2D 8, 10×8, stride 2×2 → ReLU → Dropout → Flatten → Dense(num_classes) → softmax
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TinyConvParams:
    filters: int = 8
    kernel: tuple[int, int] = (10, 8)
    stride: tuple[int, int] = (2, 2)
    dropout: float = 0.5


DEFAULT = TinyConvParams()


def tiny() -> TinyConvParams:
    return TinyConvParams(filters=2, dropout=0.0)


def build(params: TinyConvParams, input_shape: tuple[int, int], num_classes: int):  # -> keras.Model
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="features")
    x = layers.Reshape((*input_shape, 1))(inputs)
    x = layers.Conv2D(
        params.filters, params.kernel, strides=params.stride, padding="same", activation="relu"
    )(x)
    x = layers.Dropout(params.dropout)(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="tiny_conv")

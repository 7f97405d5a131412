"""TensorFlow speech_commands' "conv" model (cnn-trad-fpool3).

Sainath & Parada, "Convolutional Neural Networks for Small-footprint Keyword Spotting",
Interspeech 2015; as implemented in tensorflow/examples/speech_commands/models.py.

    features (frames, coeffs) → reshape (frames, coeffs, 1)
      → Conv2D 64, 20×8 → ReLU → Dropout → MaxPool 2×2
      → Conv2D 64, 10×4 → ReLU → Dropout
      → Flatten → Dense(num_classes) → softmax
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConvParams:
    filters: tuple[int, int] = (64, 64)
    kernels: tuple[tuple[int, int], tuple[int, int]] = ((20, 8), (10, 4))
    dropout: float = 0.5


DEFAULT = ConvParams()


def tiny() -> ConvParams:
    return ConvParams(filters=(4, 4), kernels=((5, 3), (3, 3)), dropout=0.0)


def build(params: ConvParams, input_shape: tuple[int, int], num_classes: int):  # -> keras.Model
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="features")
    x = layers.Reshape((*input_shape, 1))(inputs)
    x = layers.Conv2D(params.filters[0], params.kernels[0], padding="same", activation="relu")(x)
    x = layers.Dropout(params.dropout)(x)
    x = layers.MaxPooling2D((2, 2), padding="same")(x)
    x = layers.Conv2D(params.filters[1], params.kernels[1], padding="same", activation="relu")(x)
    x = layers.Dropout(params.dropout)(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="conv")

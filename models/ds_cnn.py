"""DS-CNN: depthwise-separable CNN for keyword spotting.

Zhang, Suda, Lai, Chandra, "Hello Edge: Keyword Spotting on Microcontrollers",
arXiv:1711.07128 (2017); size S is the MLPerf Tiny keyword-spotting reference model.

    features (frames, coeffs)
      → reshape (frames, coeffs, 1)
      → Conv2D first_filters, kernel first_kernel, stride first_stride → BN → ReLU → Dropout
      → blocks × [DepthwiseConv2D 3×3 → BN → ReLU → Conv2D 1×1 filters → BN → ReLU]
      → Dropout → global average pool → Dense(num_classes) → softmax
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DSCNNParams:
    first_filters: int = 64
    first_kernel: tuple[int, int] = (10, 4)
    first_stride: tuple[int, int] = (2, 2)
    block_filters: tuple[int, ...] = (64, 64, 64, 64)
    dropout_first: float = 0.2
    dropout_last: float = 0.4
    l2: float = 1e-4


S = DSCNNParams()  # MLPerf Tiny reference, ~24k parameters
M = DSCNNParams(first_filters=172, first_stride=(2, 1), block_filters=(172,) * 4)
L = DSCNNParams(first_filters=276, first_stride=(2, 1), block_filters=(276,) * 5)


def tiny() -> DSCNNParams:
    """A few hundred parameters, for tests."""
    return DSCNNParams(first_filters=8, block_filters=(8,), dropout_first=0.0, dropout_last=0.0)


def build(params: DSCNNParams, input_shape: tuple[int, int], num_classes: int):  # -> keras.Model
    import keras
    from keras import layers

    reg = keras.regularizers.L2(params.l2) if params.l2 else None
    inputs = keras.Input(shape=input_shape, name="features")
    x = layers.Reshape((*input_shape, 1))(inputs)
    x = layers.Conv2D(
        params.first_filters,
        params.first_kernel,
        strides=params.first_stride,
        padding="same",
        use_bias=False,
        kernel_regularizer=reg,
    )(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Dropout(params.dropout_first)(x)
    for filters in params.block_filters:
        x = layers.DepthwiseConv2D(
            (3, 3), padding="same", use_bias=False, depthwise_regularizer=reg
        )(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.Conv2D(filters, (1, 1), use_bias=False, kernel_regularizer=reg)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    x = layers.Dropout(params.dropout_last)(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(num_classes, activation="softmax", kernel_regularizer=reg)(x)
    return keras.Model(inputs, outputs, name="ds_cnn")

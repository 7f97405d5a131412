"""BC-ResNet: broadcasted residual learning.

Kim, Chang, Lee, Sung, "Broadcasted Residual Learning for Efficient Keyword Spotting",
Interspeech 2021 (arXiv:2106.04140). Each block does a cheap frequency-wise convolution on the
2-D map, averages over frequency, does the temporal work on the 1-D signal, and broadcasts it
back over frequency. Here the time axis comes first (features are (frames, coeffs)), plain
BatchNorm replaces SubSpectralNorm (so every norm folds into a convolution for int8), and
ReLU replaces swish (cheaper on microcontrollers). The paper feeds 40 log-mel bands; our
features are MFCCs, whose coefficient axis has no neighbourhoods for the frequency-wise
convolutions to exploit, so ``inverse_dct`` (registered as ``bc_resnet-2-idct``, which fits
the bluepill with 10 MFCCs, and ``bc_resnet-3-idct``) first turns the cepstra back into the
smoothed log-mel envelope they describe.

    features (T, F) → reshape (T, F, 1)
      [→ inverse DCT (fixed 1×F Conv2D, F filters) → reshape (T, F, 1): the log-mel envelope]
      → Conv2D 2·c₁, 5×5, stride (1, 2) → BN → ReLU
      → 4 stages × n blocks [channels cᵢ, frequency stride at the first block of stages 2-3,
                             temporal dilation dᵢ]:
           f2 = (1×1 Conv → BN → ReLU if channels change) → DW 1×3 over F → BN (→ every 2nd F)
           f1 = mean over F → DW 3×1 over T (dilated) → BN → ReLU → 1×1 Conv → Dropout
           out = ReLU(f2 + broadcast_F(f1) [+ input, when the shape is unchanged])
      → DW 1×F' (whole frequency) → 1×1 Conv 32·w → BN → ReLU → mean over T → Dense → softmax
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BCResNetParams:
    channels: tuple[int, ...] = (8, 12, 16, 20)
    blocks: tuple[int, ...] = (2, 2, 4, 4)
    freq_stride: tuple[int, ...] = (1, 2, 2, 1)
    dilation: tuple[int, ...] = (1, 2, 4, 8)
    head_channels: int = 32
    dropout: float = 0.1
    # the input is cepstra (MFCCs): a fixed inverse DCT first turns them back into a smoothed
    # log-mel envelope, the frequency axis BC-ResNet's frequency-wise convolutions were made for
    inverse_dct: bool = False


def width(k: float) -> BCResNetParams:
    """BC-ResNet-k: every channel count times k."""
    base = BCResNetParams()
    return BCResNetParams(
        channels=tuple(round(c * k) for c in base.channels),
        head_channels=round(base.head_channels * k),
    )


def inverse_dct_matrix(coefficients: int) -> np.ndarray:
    """(F, F) float32 matrix taking F cepstral coefficients (a DCT-II of log-mel bands, as in
    TensorFlow's ``mfccs_from_log_mel_spectrograms``) to their cosine series at F evenly
    spaced points of the mel axis: the log-mel envelope those coefficients describe, up to
    a scale (the first coefficient weighs half, as in a DCT-III). The points sit at the
    centres of F equal parts of the axis, so the matrix does not depend on the number of
    mel bands."""
    f = coefficients
    k = np.arange(f)[:, None]
    points = (2 * np.arange(f)[None, :] + 1) / (2 * f)
    m = np.cos(np.pi * k * points) / np.sqrt(f)
    m[0] *= 0.5
    return m.astype(np.float32)


def tiny() -> BCResNetParams:
    return BCResNetParams(
        channels=(4, 4),
        blocks=(1, 1),
        freq_stride=(1, 2),
        dilation=(1, 2),
        head_channels=4,
        dropout=0.0,
    )


def build(params: BCResNetParams, input_shape: tuple[int, int], num_classes: int):  # -> keras.Model
    import keras
    from keras import layers

    def block(x, channels: int, stride: int, dilation: int):
        same_shape = stride == 1 and x.shape[-1] == channels
        y = x
        if x.shape[-1] != channels:
            y = layers.Conv2D(channels, 1, use_bias=False)(y)
            y = layers.BatchNormalization()(y)
            y = layers.ReLU()(y)
        y = layers.DepthwiseConv2D((1, 3), padding="same", use_bias=False)(y)
        f2 = layers.BatchNormalization()(y)  # folds into the depthwise kernel
        if stride > 1:  # TensorFlow's CPU depthwise kernel has no unequal strides: subsample
            f2 = layers.MaxPooling2D(pool_size=(1, 1), strides=(1, stride))(f2)
        freq = f2.shape[2]
        z = layers.AveragePooling2D(pool_size=(1, freq))(f2)  # (T, 1, C)
        z = layers.DepthwiseConv2D(
            (3, 1), dilation_rate=(dilation, 1), padding="same", use_bias=False
        )(z)
        z = layers.BatchNormalization()(z)
        z = layers.ReLU()(z)
        z = layers.Conv2D(channels, 1, use_bias=False)(z)
        z = layers.Dropout(params.dropout)(z)  # (T, 1, C): Add broadcasts it over frequency
        parts = [f2, z, x] if same_shape else [f2, z]
        return layers.ReLU()(layers.Add()(parts))

    inputs = keras.Input(shape=input_shape, name="features")
    x = layers.Reshape((*input_shape, 1))(inputs)
    if params.inverse_dct:  # (T, F, 1) → 1×F convolution, F filters → (T, 1, F) → (T, F, 1)
        frames, coeffs = input_shape
        x = layers.Conv2D(
            coeffs,
            (1, coeffs),
            use_bias=False,
            trainable=False,
            kernel_initializer=keras.initializers.Constant(
                inverse_dct_matrix(coeffs).reshape(1, coeffs, 1, coeffs)
            ),
            name="inverse_dct",
        )(x)
        x = layers.Reshape((frames, coeffs, 1))(x)
    x = layers.Conv2D(2 * params.channels[0], 5, strides=(1, 2), padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    for channels, n, stride, dilation in zip(
        params.channels, params.blocks, params.freq_stride, params.dilation, strict=True
    ):
        for i in range(n):
            x = block(x, channels, stride if i == 0 else 1, dilation)
    x = layers.DepthwiseConv2D((1, x.shape[2]), use_bias=False)(x)
    x = layers.Conv2D(params.head_channels, 1, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="bc_resnet")

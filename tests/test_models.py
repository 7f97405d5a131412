"""Model registry: every architecture builds, reports its cost and converts to full int8."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

import models
from kws.cli import app

runner = CliRunner()
BUILTIN_INT8_OK = {
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "SOFTMAX",
    "RESHAPE",
    "MEAN",
    "AVERAGE_POOL_2D",
    "MAX_POOL_2D",
    "ADD",
    "RESIZE_NEAREST_NEIGHBOR",
    "QUANTIZE",
    "DEQUANTIZE",
    "RELU",
    "PAD",
}


def int8_tflite(model, rng: np.random.Generator) -> bytes:
    import tensorflow as tf

    def representative():
        for _ in range(8):
            yield [rng.normal(0, 5, (1, *model.input_shape[1:])).astype(np.float32)]

    import keras

    # A fixed batch of 1 (as on a device) keeps every shape static: no SHAPE/PACK ops.
    inputs = keras.Input(batch_shape=(1, *model.input_shape[1:]))
    converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inputs, model(inputs)))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def test_registry_builds_every_tiny_model() -> None:
    for name in models.MODELS:
        model = models.build(name, (49, 10), 5, tiny=True)
        assert model.output_shape == (None, 5)
        probs = model.predict(np.zeros((2, 49, 10), np.float32), verbose=0)
        np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        models.build("nope", (49, 10), 5)


def test_ds_cnn_s_matches_the_mlperf_reference_size() -> None:
    s = models.summarize(models.build("ds_cnn-s", (49, 10), 12))
    assert 23_000 <= s.params <= 25_000  # published: ~24 k parameters (with BatchNorm)
    assert 2_600_000 <= s.macs <= 2_700_000  # published: 2.66 M MACs


@pytest.mark.slow
@pytest.mark.parametrize("name", list(models.MODELS))
def test_every_model_converts_to_full_int8_with_builtin_ops(
    name: str, rng: np.random.Generator
) -> None:
    from ai_edge_litert.interpreter import Interpreter

    model = models.build(name, (49, 10), 12)
    flat = int8_tflite(model, rng)
    interpreter = Interpreter(model_content=flat)
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert ops <= BUILTIN_INT8_OK, ops - BUILTIN_INT8_OK
    interpreter.allocate_tensors()
    for detail in interpreter.get_tensor_details():
        if detail["dtype"] == np.float32:
            pytest.fail(f"float tensor left in the int8 model: {detail['name']}")
    assert interpreter.get_input_details()[0]["dtype"] == np.int8


def test_inverse_dct_gives_back_the_log_mel_bands(rng: np.random.Generator) -> None:
    """bc_resnet-3-idct's first layer against the front end: with as many coefficients as mel
    bands the cosine series at the band centres is the log-mel spectrum itself (÷√2, the
    scale of TensorFlow's MFCC DCT); with fewer it is scipy's inverse DCT of them."""
    import keras
    import scipy.fft

    import features
    from models.bc_resnet import inverse_dct_matrix

    spec = features.FeatureSpec(mel_bands=20, num_coefficients=20)
    audio = rng.normal(0, 0.1, 16_000).astype(np.float32)
    audio[4000:8000] += np.sin(2 * np.pi * 440 * np.arange(4000) / 16_000).astype(np.float32)
    mfcc, log_mel = features.mfcc(audio, spec=spec), features.log_mel(audio, spec=spec)
    model = models.build("bc_resnet-3-idct", mfcc.shape, 5, tiny=True)
    layer = model.get_layer("inverse_dct")
    assert not layer.trainable_weights
    envelope = keras.Model(model.input, layer.output)(mfcc[None]).numpy().reshape(mfcc.shape)
    np.testing.assert_allclose(envelope, log_mel / np.sqrt(2), atol=2e-4)
    coeffs = mfcc[:, :8]  # fewer coefficients: a smoothed envelope at 8 points
    expected = np.sqrt(8) * scipy.fft.idct(coeffs, type=2, axis=-1)
    np.testing.assert_allclose(coeffs @ inverse_dct_matrix(8), expected, rtol=1e-5, atol=1e-4)


def test_models_command_lists_every_model() -> None:
    result = runner.invoke(app, ["models", "--classes", "9"])
    assert result.exit_code == 0, result.output
    for name in models.MODELS:
        assert name in result.output
    assert "2,656,576" in result.output  # DS-CNN S MACs for 49 × 10 features

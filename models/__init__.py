"""Stage 3 — convolutional keyword models (Keras builders, one architecture per file).

Every entry builds a `keras.Model` from (frames, coefficients) features to class
probabilities with builtin TFLite ops only, so it converts to a fully int8 model. This
package imports Keras only when a model is built, and never imports `kws`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from models import bc_resnet, conv, ds_cnn, tiny_conv
from models.summary import ModelSummary, summarize

__all__ = ["MODELS", "ModelEntry", "ModelSummary", "build", "summarize"]


@dataclass(frozen=True)
class ModelEntry:
    """A named configuration: the builder, its parameters and a tiny() variant for tests."""

    build: Callable[..., Any]
    params: Any
    tiny: Any
    summary: str


def _bc_resnet_idct(k: int) -> ModelEntry:
    """BC-ResNet-k behind the fixed inverse DCT (``BCResNetParams.inverse_dct``)."""
    return ModelEntry(
        bc_resnet.build,
        replace(bc_resnet.width(k), inverse_dct=True),
        replace(bc_resnet.tiny(), inverse_dct=True),
        f"BC-ResNet-{k} on the log-mel envelope (a fixed inverse DCT of the MFCCs first)",
    )


MODELS: dict[str, ModelEntry] = {
    "ds_cnn-s": ModelEntry(
        ds_cnn.build, ds_cnn.S, ds_cnn.tiny(), "DS-CNN S, the MLPerf Tiny reference"
    ),
    "ds_cnn-m": ModelEntry(ds_cnn.build, ds_cnn.M, ds_cnn.tiny(), "DS-CNN M (Hello Edge)"),
    "ds_cnn-l": ModelEntry(ds_cnn.build, ds_cnn.L, ds_cnn.tiny(), "DS-CNN L (Hello Edge)"),
    "bc_resnet-1": ModelEntry(bc_resnet.build, bc_resnet.width(1), bc_resnet.tiny(), "BC-ResNet-1"),
    "bc_resnet-2": ModelEntry(bc_resnet.build, bc_resnet.width(2), bc_resnet.tiny(), "BC-ResNet-2"),
    "bc_resnet-3": ModelEntry(bc_resnet.build, bc_resnet.width(3), bc_resnet.tiny(), "BC-ResNet-3"),
    "bc_resnet-2-idct": _bc_resnet_idct(2),
    "bc_resnet-3-idct": _bc_resnet_idct(3),
    "conv": ModelEntry(conv.build, conv.DEFAULT, conv.tiny(), "TF speech_commands cnn-trad-fpool3"),
    "tiny_conv": ModelEntry(
        tiny_conv.build, tiny_conv.DEFAULT, tiny_conv.tiny(), "micro_speech tiny_conv"
    ),
}


def build(name: str, input_shape: tuple[int, int], num_classes: int, *, tiny: bool = False) -> Any:
    """Build a registered model (``tiny`` for the test-size variant)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    entry = MODELS[name]
    return entry.build(entry.tiny if tiny else entry.params, input_shape, num_classes)

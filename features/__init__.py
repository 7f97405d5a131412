"""Stage 2 — the one MFCC front end (training, streaming, export all use it).

`FeatureSpec` describes it; `mfcc` computes it for clips, `StreamingMfcc` for a live stream.
NumPy/SciPy only: importing `features` never imports TensorFlow.
"""

from features.frontend import (
    apply_window,
    dct,
    dct_matrix,
    frame,
    log,
    log_mel,
    log_mel_frames,
    mel,
    mel_frames,
    mel_matrix,
    mfcc,
    mfcc_frames,
    mfcc_from_mel,
    prepare_clips,
    spectrum,
    window,
)
from features.spec import (
    DEFAULT_PRESET,
    PRESETS,
    ClipNorm,
    FeatureSpec,
    ParameterError,
    Spectrum,
    Window,
    preset,
)
from features.streaming import StreamingMfcc

__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "ClipNorm",
    "FeatureSpec",
    "ParameterError",
    "Spectrum",
    "StreamingMfcc",
    "Window",
    "apply_window",
    "dct",
    "dct_matrix",
    "frame",
    "log",
    "log_mel",
    "log_mel_frames",
    "mel",
    "mel_frames",
    "mel_matrix",
    "mfcc",
    "mfcc_frames",
    "mfcc_from_mel",
    "prepare_clips",
    "preset",
    "spectrum",
    "window",
]

"""Reading recordings for the toolkit: mono float32 at a required sample rate."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf


class AudioError(Exception):
    """A recording cannot be used; the message names the file and the problem."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """soundfile's errors as `AudioError` naming the file."""
    try:
        yield
    except sf.LibsndfileError as e:
        raise AudioError(path, f"not a readable audio file ({e.error_string})") from None
    except (OSError, RuntimeError, TypeError) as e:
        raise AudioError(path, f"cannot read ({e})") from None


def audio_info(path: Path | str) -> Any:
    """soundfile's header info (sample rate, frames, channels), or `AudioError`."""
    path = Path(path)
    with _reading(path):
        info = sf.info(path)
    if info.frames == 0:
        raise AudioError(path, "zero length (no samples)")
    return info


def load_mono(path: Path | str, *, sample_rate_hz: int, resample: bool = False) -> np.ndarray:
    """Mono (channel mean) float32 samples in [-1, 1] at ``sample_rate_hz``.

    Raises `AudioError` for unreadable, empty or non-finite files, and for another sample
    rate unless ``resample`` (then soxr, high quality).
    """
    path = Path(path)
    with _reading(path):
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    if data.shape[0] == 0:
        raise AudioError(path, "zero length (no samples)")
    if not np.isfinite(data).all():
        raise AudioError(path, "contains NaN or Inf samples")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if rate != sample_rate_hz:
        if not resample:
            raise AudioError(
                path,
                f"sample rate is {rate} Hz, the features need {sample_rate_hz} Hz "
                "(pass --resample, or convert with `kws align --sample-rate`)",
            )
        import soxr

        mono = soxr.resample(mono, rate, sample_rate_hz, quality="HQ").astype(np.float32)
    return mono


SILENT_DBFS = -120.0  # what an all-zero stretch reads as


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level in dB relative to full scale (`SILENT_DBFS` for silence or no samples)."""
    if samples.size == 0:
        return SILENT_DBFS
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return max(SILENT_DBFS, 20 * float(np.log10(rms))) if rms > 0 else SILENT_DBFS

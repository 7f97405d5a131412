"""Reading recordings for the toolkit: mono float32 at a required sample rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


class AudioError(Exception):
    """A recording cannot be used; the message names the file and the problem."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


def load_mono(path: Path | str, *, sample_rate_hz: int, resample: bool = False) -> np.ndarray:
    """Mono (channel mean) float32 samples in [-1, 1] at ``sample_rate_hz``.

    Raises `AudioError` for unreadable, empty or non-finite files, and for another sample
    rate unless ``resample`` (then soxr, high quality).
    """
    path = Path(path)
    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except sf.LibsndfileError as e:
        raise AudioError(path, f"not a readable audio file ({e.error_string})") from None
    except (OSError, RuntimeError, TypeError) as e:
        raise AudioError(path, f"cannot read ({e})") from None
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

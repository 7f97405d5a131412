"""`FeatureSpec`: the one description of the MFCC front end that travels with every model.

In: settings (or JSON). Out: a frozen, hashable, validated spec with derived sizes in
samples and frames, serialisable to and from JSON, with a stable digest for cache keys.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "ClipNorm",
    "FeatureSpec",
    "ParameterError",
    "Spectrum",
    "Window",
    "preset",
]

SPEC_FORMAT = "kws.FeatureSpec/1"


class ParameterError(ValueError):
    """A feature setting or an input to the front end is invalid."""


class Window(str, enum.Enum):
    """Analysis window (periodic, as `tf.signal.hann_window(periodic=True)`)."""

    HANN = "hann"
    HAMMING = "hamming"


class Spectrum(str, enum.Enum):
    """|STFT| (magnitude, as tf.abs(stft)) or |STFT|² (power)."""

    MAGNITUDE = "magnitude"
    POWER = "power"


class ClipNorm(str, enum.Enum):
    """Per-clip scaling before padding.

    ``max``: divide by the clip's largest sample value (max, not max-abs), as decoded, before
    zero-padding: the MLPerf Tiny reference. ``none``: use the samples as they are.
    """

    MAX = "max"
    NONE = "none"


def _whole_samples(name: str, ms: float, rate: int) -> int:
    exact = ms * rate / 1000.0
    n = round(exact)
    if n < 1 or abs(exact - n) > 1e-6:
        raise ParameterError(
            f"{name} of {ms} ms is {exact:g} samples at {rate} Hz; it must be a positive whole "
            "number of samples"
        )
    return n


@dataclass(frozen=True)
class FeatureSpec:
    """MFCC front end settings. Defaults are the `mlperf-tiny` preset (49 × 10 MFCCs)."""

    sample_rate_hz: int = 16_000
    clip_ms: float = 1000.0
    frame_ms: float = 30.0
    stride_ms: float = 20.0
    window: Window = Window.HANN
    fft_size: int = 512
    spectrum: Spectrum = Spectrum.MAGNITUDE
    mel_bands: int = 40
    mel_low_hz: float = 20.0
    mel_high_hz: float = 4000.0
    log_offset: float = 1e-6
    num_coefficients: int = 10
    clip_norm: ClipNorm = ClipNorm.MAX

    def __post_init__(self) -> None:
        for name in ("window", "spectrum", "clip_norm"):
            kind = {"window": Window, "spectrum": Spectrum, "clip_norm": ClipNorm}[name]
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, kind(value))
            except ValueError:
                choices = ", ".join(k.value for k in kind)
                raise ParameterError(f"{name} {value!r} is not one of: {choices}") from None
        if not (isinstance(self.sample_rate_hz, int) and self.sample_rate_hz > 0):
            raise ParameterError(
                f"sample rate must be a positive integer, got {self.sample_rate_hz!r}"
            )
        clip = _whole_samples("clip", self.clip_ms, self.sample_rate_hz)
        frame = _whole_samples("frame", self.frame_ms, self.sample_rate_hz)
        stride = _whole_samples("stride", self.stride_ms, self.sample_rate_hz)
        if stride > frame:
            raise ParameterError(
                f"stride ({stride} samples) is longer than the frame ({frame} samples); "
                "frames must cover the signal"
            )
        if frame > clip:
            raise ParameterError(
                f"frame ({frame} samples) is longer than the clip ({clip} samples)"
            )
        if not (isinstance(self.fft_size, int) and self.fft_size >= frame):
            raise ParameterError(
                f"fft_size {self.fft_size!r} must be an integer >= the frame length ({frame})"
            )
        nyquist = self.sample_rate_hz / 2
        if not (0 <= self.mel_low_hz < self.mel_high_hz <= nyquist):
            raise ParameterError(
                f"mel edges must satisfy 0 <= low < high <= {nyquist:g} Hz (Nyquist), got "
                f"{self.mel_low_hz:g}..{self.mel_high_hz:g}"
            )
        if not (isinstance(self.mel_bands, int) and self.mel_bands >= 1):
            raise ParameterError(f"mel_bands must be a positive integer, got {self.mel_bands!r}")
        if not (
            isinstance(self.num_coefficients, int) and 1 <= self.num_coefficients <= self.mel_bands
        ):
            raise ParameterError(
                f"num_coefficients {self.num_coefficients!r} must be between 1 and mel_bands "
                f"({self.mel_bands})"
            )
        if not (math.isfinite(self.log_offset) and self.log_offset > 0):
            raise ParameterError(f"log_offset must be a positive number, got {self.log_offset!r}")

    # Derived sizes (cached: a streaming front end asks for them every hop) ------------
    @functools.cached_property
    def clip_samples(self) -> int:
        return round(self.clip_ms * self.sample_rate_hz / 1000)

    @functools.cached_property
    def frame_samples(self) -> int:
        return round(self.frame_ms * self.sample_rate_hz / 1000)

    @functools.cached_property
    def stride_samples(self) -> int:
        return round(self.stride_ms * self.sample_rate_hz / 1000)

    @functools.cached_property
    def num_frames(self) -> int:
        """Frames in one clip (no centre padding)."""
        return 1 + (self.clip_samples - self.frame_samples) // self.stride_samples

    @property
    def num_fft_bins(self) -> int:
        return self.fft_size // 2 + 1

    @property
    def shape(self) -> tuple[int, int]:
        """(frames, coefficients) of one clip's features."""
        return self.num_frames, self.num_coefficients

    # Serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": SPEC_FORMAT}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            out[field.name] = value.value if isinstance(value, enum.Enum) else value
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        data = dict(data)
        fmt = data.pop("format", SPEC_FORMAT)
        if fmt != SPEC_FORMAT:
            raise ParameterError(f"unknown feature spec format {fmt!r} (expected {SPEC_FORMAT!r})")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ParameterError(f"unknown feature spec field(s): {', '.join(unknown)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ParameterError(f"feature spec is not valid JSON: {e}") from None
        if not isinstance(data, dict):
            raise ParameterError("feature spec JSON must be an object")
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: Path | str) -> FeatureSpec:
        try:
            return cls.from_json(Path(path).read_text())
        except OSError as e:
            raise ParameterError(f"{path}: cannot read feature spec ({e.strerror})") from None
        except ParameterError as e:
            raise ParameterError(f"{path}: {e}") from None

    def digest(self) -> str:
        """Stable hex digest of the spec (cache keys across processes and versions)."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


PRESETS: dict[str, FeatureSpec] = {
    # MLPerf Tiny / ARM DS-CNN: 30 ms / 20 ms, 40 mel 20-4000 Hz, 10 MFCC, max-normalised.
    "mlperf-tiny": FeatureSpec(),
    # TensorFlow speech_commands parameters: 30 ms / 10 ms, 40 mel bands, 40 coefficients.
    "tf-speech-commands": FeatureSpec(stride_ms=10.0, num_coefficients=40, clip_norm=ClipNorm.NONE),
}
DEFAULT_PRESET = "mlperf-tiny"


def preset(name: str) -> FeatureSpec:
    """The named preset; raises `ParameterError` listing the choices."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ParameterError(
            f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}"
        ) from None

"""Picture of one clip's features: waveform, log-mel spectrogram and MFCC image.

Out: a PNG written atomically (temporary name, then rename; removed on any error or Ctrl-C).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from features.frontend import hz_to_mel, log_mel, mfcc, prepare_clips
from features.spec import FeatureSpec, ParameterError


def mel_centers_hz(spec: FeatureSpec) -> np.ndarray:
    """Centre frequency of each mel band in Hz."""
    edges = np.linspace(hz_to_mel(spec.mel_low_hz), hz_to_mel(spec.mel_high_hz), spec.mel_bands + 2)
    return 700.0 * np.expm1(edges[1:-1] / 1127.0)


@contextlib.contextmanager
def _atomic_output(out: Path) -> Iterator[Path]:
    """Yield a temporary name beside ``out``; rename it into place when the block succeeds,
    delete it when the block raises (KeyboardInterrupt included)."""
    tmp = out.with_name(f".{out.name}.partial")
    try:
        yield tmp
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def plot_features(
    audio: np.ndarray, *, spec: FeatureSpec, out: Path | str, title: str = ""
) -> None:
    """Three panels with time in seconds: prepared clip, log-mel (Hz axis), MFCC.

    Raises
    ------
    ParameterError
        ``out`` is a folder or cannot be written.
    """
    out = Path(out)
    if out.is_dir():
        raise ParameterError(f"{out}: --plot needs a file name, but this is a folder")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clip = prepare_clips(audio, spec=spec)[0]
    logmel = log_mel(audio, spec=spec)
    coeffs = mfcc(audio, spec=spec)
    frame_t = (
        np.arange(spec.num_frames) * spec.stride_samples + spec.frame_samples / 2
    ) / spec.sample_rate_hz
    half = spec.stride_ms / 2000
    extent_t = (frame_t[0] - half, frame_t[-1] + half)
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), layout="constrained", sharex=True)
    axes[0].plot(np.arange(clip.size) / spec.sample_rate_hz, clip, lw=0.6)
    axes[0].set(ylabel="amplitude", title=title or "clip (after clip preparation)")
    centers = mel_centers_hz(spec)
    mesh = axes[1].pcolormesh(frame_t, centers, logmel.T, shading="nearest", cmap="magma")
    axes[1].set(ylabel="mel band centre (Hz)", yscale="log", title="log-mel energies")
    fig.colorbar(mesh, ax=axes[1], label="log energy")
    im = axes[2].imshow(
        coeffs.T,
        aspect="auto",
        origin="lower",
        cmap="coolwarm",
        extent=(*extent_t, -0.5, spec.num_coefficients - 0.5),
    )
    axes[2].set(
        xlabel="time (s)", ylabel="coefficient", title=f"MFCC {spec.shape[0]} × {spec.shape[1]}"
    )
    fig.colorbar(im, ax=axes[2])
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with _atomic_output(out) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
    except OSError as e:
        raise ParameterError(f"{out}: cannot write the plot ({e.strerror or e})") from None
    finally:
        plt.close(fig)

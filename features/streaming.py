"""Streaming MFCCs: audio chunks of any length in, new feature frames out.

In: float audio chunks in [-1, 1] at the spec's sample rate, any length (one sample to
minutes). Out: the frames that became complete, identical to `mfcc_frames` (or
`mel_frames`) on the whole stream. Memory is bounded: fewer than one frame of samples is
kept between calls. Clip preparation (per-clip max normalisation) is a property of a
window, not of the stream: a detector applies it per window with `mfcc_from_mel`.
"""

from __future__ import annotations

import numpy as np

from features.frontend import mel_frames, mfcc_from_mel
from features.spec import FeatureSpec, ParameterError

__all__ = ["StreamingMfcc"]


class StreamingMfcc:
    """Incremental front end. `update` returns MFCC frames, `update_mel` linear mel energies.

    Examples
    --------
    >>> stream = StreamingMfcc(FeatureSpec())
    >>> stream.update(np.zeros(479, np.float32)).shape
    (0, 10)
    >>> stream.update(np.zeros(1, np.float32)).shape
    (1, 10)
    """

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        self.reset()

    def reset(self) -> None:
        """Back to the initial state: no samples pending, frame counter at 0."""
        self._pending = np.zeros(0, dtype=np.float32)
        self.frames_emitted = 0

    @property
    def pending_samples(self) -> int:
        """Samples kept for the next frame (always fewer than one frame)."""
        return self._pending.size

    def update_mel(self, chunk: np.ndarray) -> np.ndarray:
        """Feed samples; return the linear mel energies of the frames completed, (k, bands)."""
        x = np.asarray(chunk)
        if x.ndim != 1:
            raise ParameterError(f"audio chunks must have shape (n,), got {x.shape}")
        if not np.issubdtype(x.dtype, np.floating):
            raise ParameterError(f"audio chunks must be float in [-1, 1], got dtype {x.dtype}")
        buf = np.concatenate([self._pending, x.astype(np.float32, copy=False)])
        spec = self.spec
        if buf.size < spec.frame_samples:
            self._pending = buf
            return np.empty((0, spec.mel_bands), dtype=np.float32)
        count = 1 + (buf.size - spec.frame_samples) // spec.stride_samples
        used = (count - 1) * spec.stride_samples + spec.frame_samples
        out = mel_frames(buf[:used], spec=spec)
        self._pending = buf[count * spec.stride_samples :].copy()
        self.frames_emitted += count
        return out

    def update(self, chunk: np.ndarray) -> np.ndarray:
        """Feed samples; return the MFCC frames completed, shape (k, coefficients)."""
        return mfcc_from_mel(self.update_mel(chunk), spec=self.spec)

"""Batch MFCCs: one clip (n,) or a batch (b, n) of float audio in [-1, 1] → float32 features.

The body is a few named steps, each callable alone:

    prepare_clips → frame → apply_window → spectrum → mel → log → dct

and reproduces the MLPerf Tiny keyword-spotting reference, which is built from TensorFlow's
``tf.signal.stft`` (periodic Hann, zero-padded to the FFT size, no centre padding),
``linear_to_mel_weight_matrix`` (HTK mel scale, triangles in the mel domain, DC bin zeroed),
``log(mel + 1e-6)`` and ``mfccs_from_log_mel_spectrograms`` (unnormalised DCT-II scaled by
1/sqrt(2·bands)). Constant matrices are built once per spec and cached. The window and DCT
come from SciPy; the mel matrix is written here because TensorFlow's differs from librosa's
(see `mel_matrix`).
"""

from __future__ import annotations

import functools
import os
import queue
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from features.spec import ClipNorm, FeatureSpec, ParameterError, Spectrum

__all__ = [
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
    "spectrum",
    "window",
]

# TensorFlow's mel scale: mel = 1127 ln(1 + f / 700) (HTK).
MEL_BREAK_HZ = 700.0
MEL_HIGH_Q = 1127.0
# Clips processed together: keeps the (clips, frames, fft) work arrays in cache.
CHUNK_CLIPS = 16  # measured best on 2 cores: 16 > 8 > 32 > 64


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return MEL_HIGH_Q * np.log1p(np.asarray(hz, dtype=np.float64) / MEL_BREAK_HZ)


@functools.lru_cache(maxsize=16)
def window(spec: FeatureSpec) -> np.ndarray:
    """Periodic analysis window, shape (frame_samples,), float32 (scipy.signal.get_window)."""
    import scipy.signal  # heavy import (~0.5 s), only needed once per spec

    return scipy.signal.get_window(spec.window.value, spec.frame_samples, fftbins=True).astype(
        np.float32
    )


@functools.lru_cache(maxsize=16)
def _window64(spec: FeatureSpec) -> np.ndarray:
    """`window` in float64, as the FFT uses it (cached: the streaming path asks every hop)."""
    return window(spec).astype(np.float64)


@functools.lru_cache(maxsize=16)
def mel_matrix(spec: FeatureSpec) -> np.ndarray:
    """TensorFlow's ``linear_to_mel_weight_matrix``, shape (fft bins, mel bands), float32.

    Triangles are linear in *mel* between band edges spaced evenly in mel, evaluated at the
    FFT bin frequencies ``linspace(0, sr/2, bins)``; the DC bin gets no weight; no area
    normalisation. librosa's ``filters.mel(htk=True, norm=None)`` uses the same edges but
    draws the triangles linearly in Hz, so its weights differ by up to ~0.1 inside a band;
    the reference semantics need TensorFlow's, hence this function.
    """
    bins = spec.num_fft_bins
    freqs_mel = hz_to_mel(np.linspace(0.0, spec.sample_rate_hz / 2, bins))[1:, None]
    edges = np.linspace(hz_to_mel(spec.mel_low_hz), hz_to_mel(spec.mel_high_hz), spec.mel_bands + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (freqs_mel - lower) / (center - lower)
    falling = (upper - freqs_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.vstack([np.zeros((1, spec.mel_bands)), weights]).astype(np.float32)


@functools.lru_cache(maxsize=16)
def _mel_support(spec: FeatureSpec) -> tuple[int, int, np.ndarray]:
    """(first, last + 1) FFT bins with any mel weight, and the matrix rows for them."""
    m = mel_matrix(spec)
    used = np.flatnonzero(m.any(axis=1))
    lo, hi = int(used[0]), int(used[-1]) + 1
    return lo, hi, np.ascontiguousarray(m[lo:hi])


@functools.lru_cache(maxsize=16)
def dct_matrix(spec: FeatureSpec) -> np.ndarray:
    """(mel bands, coefficients) float32 matrix of ``tf.signal.mfccs_from_log_mel_spectrograms``.

    Unnormalised DCT-II (``scipy.fft.dct(type=2)``: 2·Σ x cos(...)) times 1/sqrt(2·bands).
    This equals the orthonormal DCT-II for every coefficient but the first, which is
    sqrt(2) larger than orthonormal (librosa's ``mfcc(norm='ortho')``).
    """
    import scipy.fft  # imported on first use: keeps `import features` light

    bands = spec.mel_bands
    basis = scipy.fft.dct(np.eye(bands), type=2, axis=-1)[:, : spec.num_coefficients]
    return (basis / np.sqrt(2.0 * bands)).astype(np.float32)


def _rfft(x: np.ndarray, **kwargs: object) -> np.ndarray:
    """scipy.fft.rfft (faster than numpy's here), imported on first use: `import features`
    stays light for command-line start-up."""
    import scipy.fft

    return scipy.fft.rfft(x, **kwargs)


def _as_batch(audio: np.ndarray) -> np.ndarray:
    x = np.asarray(audio)
    if x.ndim not in (1, 2):
        raise ParameterError(f"audio must have shape (n,) or (batch, n), got {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ParameterError(f"audio must be float in [-1, 1], got dtype {x.dtype}")
    return x.reshape(1, -1) if x.ndim == 1 else x


def prepare_clips(audio: np.ndarray, *, spec: FeatureSpec) -> np.ndarray:
    """Clip preparation: per-clip normalisation, then cut or zero-pad to the clip length.

    ``clip_norm='max'`` divides each clip by its largest sample value as given (before
    padding; a clip whose samples are all negative is divided by a negative number, as in
    the reference). A clip whose maximum is exactly 0 would give 0/0 in the reference; it is
    left unscaled here.

    Returns
    -------
    np.ndarray [shape=(batch, clip_samples)] float32
    """
    x = _as_batch(audio).astype(np.float32, copy=True)
    if x.shape[1] == 0:
        raise ParameterError("clip has 0 samples")
    if spec.clip_norm is ClipNorm.MAX:
        peak = x.max(axis=1, keepdims=True)
        x /= np.where(peak == 0, np.float32(1), peak)
    n = spec.clip_samples
    if x.shape[1] >= n:
        return x[:, :n]
    return np.pad(x, ((0, 0), (0, n - x.shape[1])))


def frame(signal: np.ndarray, *, spec: FeatureSpec) -> np.ndarray:
    """Frames without centre padding: view of shape (batch, frames, frame_samples)."""
    x = _as_batch(signal)
    if x.shape[1] < spec.frame_samples:
        raise ParameterError(
            f"signal has {x.shape[1]} samples, fewer than one frame ({spec.frame_samples})"
        )
    count = 1 + (x.shape[1] - spec.frame_samples) // spec.stride_samples
    # read-only strided view (what sliding_window_view(...)[:, ::stride] gives, at a tenth
    # of its call overhead: a streaming front end frames one hop at a time)
    return np.lib.stride_tricks.as_strided(
        x,
        shape=(x.shape[0], count, spec.frame_samples),
        strides=(x.strides[0], x.strides[1] * spec.stride_samples, x.strides[1]),
        writeable=False,
    )


def apply_window(frames: np.ndarray, *, spec: FeatureSpec) -> np.ndarray:
    """frames × window, in float64 (see `spectrum`)."""
    return frames * _window64(spec)


def spectrum(windowed: np.ndarray, *, spec: FeatureSpec, bins: slice | None = None) -> np.ndarray:
    """|rfft| (or |rfft|²) of each frame zero-padded to fft_size; shape (..., fft bins).

    The FFT runs in float64: recordings with a DC offset put most of a frame's energy in
    bin 0, and a float32 FFT leaks enough rounding error into bins 1-2 to move the lowest
    mel band's log energy by up to ~5e-4 (TensorFlow's float32 reference has the same
    error). In float64 that band matches a float64 oracle to ~1e-6.

    ``bins`` keeps only a range of bins (the mel step only needs the bins it weights).
    """
    X = _rfft(windowed, n=spec.fft_size, axis=-1)
    if bins is not None:
        X = X[..., bins]
    mag = np.abs(X).astype(np.float32)
    return mag * mag if spec.spectrum is Spectrum.POWER else mag


def mel(spectra: np.ndarray, *, spec: FeatureSpec) -> np.ndarray:
    """Mel energies from a full spectrum (..., fft bins) → (..., mel bands)."""
    return spectra @ mel_matrix(spec)


def log(mel_energies: np.ndarray, *, spec: FeatureSpec) -> np.ndarray:
    """log(mel + log_offset)."""
    return np.log(mel_energies + np.float32(spec.log_offset))


def dct(log_mels: np.ndarray, *, spec: FeatureSpec) -> np.ndarray:
    """MFCCs from log-mel energies: (..., mel bands) → (..., coefficients)."""
    return log_mels @ dct_matrix(spec)


def _mel_frames(signal: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Mel energies (batch, frames, bands) of any-length signals, in chunks of clips.

    The same steps as `frame` → `apply_window` → `spectrum` → `mel`, fused so that each
    chunk reuses a zero-padded FFT buffer and only the bins the mel matrix weights are kept
    (page faults on fresh work arrays cost more than the arithmetic here). Chunks run in
    one thread per core.
    """
    x = _as_batch(signal).astype(np.float32, copy=False)
    frames_per = 1 + (x.shape[1] - spec.frame_samples) // spec.stride_samples
    if frames_per < 1:
        raise ParameterError(
            f"signal has {x.shape[1]} samples, fewer than one frame ({spec.frame_samples})"
        )
    lo, hi, weights = _mel_support(spec)
    win = _window64(spec)
    out = np.empty((x.shape[0], frames_per, spec.mel_bands), dtype=np.float32)
    chunk = min(CHUNK_CLIPS, x.shape[0])
    starts = range(0, x.shape[0], chunk)
    threads = 1 if len(starts) == 1 else min(len(starts), os.cpu_count() or 1)
    buffers = queue.SimpleQueue()
    for _ in range(threads):
        buffers.put(np.zeros((chunk, frames_per, spec.fft_size)))

    def run(start: int) -> None:
        padded = buffers.get()
        frames = frame(x[start : start + chunk], spec=spec)
        n = frames.shape[0]
        np.multiply(frames, win, out=padded[:n, :, : spec.frame_samples])
        X = _rfft(padded[:n], axis=-1)[..., lo:hi]
        mags = np.abs(X).astype(np.float32)
        if spec.spectrum is Spectrum.POWER:
            mags *= mags
        # one vector-matrix product per frame: BLAS gives a row of a matrix product bits
        # that depend on how many rows came with it; this way a frame's mel energies do not
        # depend on the batch or chunk it was computed in (streaming == offline, exactly)
        np.matmul(mags[..., None, :], weights, out=out[start : start + n, :, None, :])
        buffers.put(padded)

    if threads == 1:
        for start in starts:
            run(start)
    else:  # NumPy and scipy.fft release the GIL: chunks run in parallel threads
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(run, starts))
    return out


def mel_frames(signal: np.ndarray, *, spec: FeatureSpec) -> np.ndarray:
    """Linear mel energies of a signal of any length (no clip preparation).

    Returns (frames, bands) for (n,) input, (batch, frames, bands) for (batch, n); zero
    frames when the signal is shorter than one frame.
    """
    x = _as_batch(signal)
    if x.shape[1] < spec.frame_samples:
        empty = np.empty((x.shape[0], 0, spec.mel_bands), dtype=np.float32)
        return _restore(empty, signal)
    return _restore(_mel_frames(x, spec), signal)


def mfcc_from_mel(mel_energies: np.ndarray, *, spec: FeatureSpec, gain: float = 1.0) -> np.ndarray:
    """MFCCs from linear mel energies of audio that is then scaled by ``gain``.

    Mel energies are linear in |STFT| (|STFT|² for power), so scaling the audio by g scales
    them by |g| (g²): ``mfcc(g·x) == mfcc_from_mel(mel_frames(x), gain=g)``. A streaming
    detector uses this to apply the per-clip max normalisation of the training clips to
    each window exactly, from frames computed once.
    """
    factor = abs(gain) if spec.spectrum is Spectrum.MAGNITUDE else gain * gain
    return dct(log(mel_energies * np.float32(factor), spec=spec), spec=spec)


def _restore(batch: np.ndarray, audio: np.ndarray) -> np.ndarray:
    return batch[0] if np.ndim(audio) == 1 else batch


def log_mel_frames(signal: np.ndarray, *, spec: FeatureSpec) -> np.ndarray:
    """log-mel energies of a signal of any length (no clip preparation)."""
    return _restore(log(_mel_frames(signal, spec), spec=spec), signal)


def mfcc_frames(signal: np.ndarray, *, spec: FeatureSpec) -> np.ndarray:
    """MFCCs of a signal of any length (no clip preparation): what `StreamingMfcc` yields."""
    return _restore(dct(log(_mel_frames(signal, spec), spec=spec), spec=spec), signal)


def _clip_mel(audio: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Mel energies of `prepare_clips(audio)`, without materialising the prepared clips.

    Clip normalisation multiplies the audio by 1/max, so it is applied to the mel energies
    instead (|g| for magnitude, g² for power; see `mfcc_from_mel`): one pass less over the
    samples, and clips that already have the clip length are framed in place.
    """
    x = _as_batch(audio)
    if x.shape[1] == 0:
        raise ParameterError("clip has 0 samples")
    x = x.astype(np.float32, copy=False)
    n = spec.clip_samples
    gains = None
    if spec.clip_norm is ClipNorm.MAX:
        peak = x.max(axis=1)
        gains = 1.0 / np.where(peak == 0, np.float32(1), peak)
    x = x[:, :n] if x.shape[1] >= n else np.pad(x, ((0, 0), (0, n - x.shape[1])))
    mel_energies = _mel_frames(x, spec)
    if gains is not None:
        factor = np.abs(gains) if spec.spectrum is Spectrum.MAGNITUDE else gains * gains
        mel_energies *= factor.astype(np.float32)[:, None, None]
    return mel_energies


def log_mel(audio: np.ndarray, *, spec: FeatureSpec) -> np.ndarray:
    """log-mel energies of clips, after clip preparation: (frames, bands) or (b, frames, bands)."""
    return _restore(log(_clip_mel(audio, spec), spec=spec), audio)


def mfcc(audio: np.ndarray, *, spec: FeatureSpec) -> np.ndarray:
    """MFCCs of clips after clip preparation.

    Parameters
    ----------
    audio : np.ndarray [shape=(n,) or (batch, n)]
        Float samples in [-1, 1] at ``spec.sample_rate_hz``; cut or zero-padded to the clip.
    spec : FeatureSpec

    Returns
    -------
    np.ndarray [shape=(frames, coefficients) or (batch, frames, coefficients)] float32
    """
    return _restore(dct(log(_clip_mel(audio, spec), spec=spec), spec=spec), audio)

"""Align one recording file: find its loudest window and write that window as a new file.

In: an audio file soundfile can read (wav, flac, ...; 8/16/24/32-bit integer or float; any
sample rate; mono or multichannel). Out: a mono file of exactly one window (16-bit PCM WAV by
default) written atomically (temporary name, then rename), and an `AlignResult`. A file cut
short (its header declares more audio than it holds) is aligned on what it holds, with a note
in the result's message.

Long files are scanned block by block (`LoudestWindowScanner`), so memory stays bounded by
the block size and the window length, not by the file length.
"""

from __future__ import annotations

import contextlib
import enum
import math
import os
import re
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from align.core import AlignParameterError, LoudestWindowScanner

__all__ = [
    "DEFAULT_MIN_LEVEL",
    "DEFAULT_WINDOW_MS",
    "MAX_WINDOW_MS",
    "AlignFileError",
    "AlignOptions",
    "AlignResult",
    "OutputFormat",
    "Pad",
    "Status",
    "align_file",
    "atomic_output",
    "partial_path",
]

DEFAULT_WINDOW_MS = 1000.0
# Longest window: a minute is far beyond any spoken word, and bounds the memory of one window.
MAX_WINDOW_MS = 60_000.0
DEFAULT_MIN_LEVEL = 0.004
BLOCK_FRAMES = 1 << 16
# Context read on each side of the window when resampling, so the resampler's filter sees
# real signal at the window edges instead of an artificial cut.
RESAMPLE_MARGIN_S = 0.02
# How each stored sample format is read: small integers as int16, wider ones as int32 (both
# exact), everything else (float, compressed) as float64.
INT16_SUBTYPES = frozenset({"PCM_S8", "PCM_U8", "PCM_16", "ALAW", "ULAW", "DPCM_8", "DPCM_16"})
INT32_SUBTYPES = frozenset({"PCM_24", "PCM_32", "DWVW_24", "ALAC_24", "ALAC_32", "ALAC_20"})
PARTIAL_SUFFIX = ".partial"
WAVE_FORMAT_PCM = 1
# libsndfile's log line for a data chunk the file does not hold in full (WAV "data", AIFF
# "SSND"): "data : 64000 (should be 29956)", sizes in bytes.
CUT_SHORT_LOG = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
# Sizes streaming writers put in a header when they do not know the length yet.
UNKNOWN_SIZES = frozenset({0xFFFFFFFF, 0x7FFFFFFF})


class Pad(str, enum.Enum):
    """Where a clip shorter than the window gets its zeros."""

    END = "end"
    CENTER = "center"


class OutputFormat(str, enum.Enum):
    """Container of the aligned files."""

    WAV = "wav"
    FLAC = "flac"


class Status(str, enum.Enum):
    """What happened to one input."""

    ALIGNED = "aligned"
    PADDED = "padded"
    SKIPPED_QUIET = "skipped-quiet"
    SKIPPED_EXISTS = "skipped-exists"
    FAILED = "failed"


class AlignFileError(Exception):
    """A recording cannot be aligned; the message names the file and the problem."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


@dataclass(frozen=True)
class AlignOptions:
    """Settings of the aligner, shared by the library and the CLI."""

    window_ms: float = DEFAULT_WINDOW_MS
    pad: Pad = Pad.END
    min_level: float = DEFAULT_MIN_LEVEL
    sample_rate_hz: int | None = None
    subtype: str = "PCM_16"
    format: OutputFormat = OutputFormat.WAV

    def __post_init__(self) -> None:
        if not (math.isfinite(self.window_ms) and 0 < self.window_ms <= MAX_WINDOW_MS):
            raise AlignParameterError(
                f"window must be a positive number of ms up to {MAX_WINDOW_MS:.0f} "
                f"(one minute), got {self.window_ms:g}"
            )
        if not (math.isfinite(self.min_level) and 0 <= self.min_level <= 1):
            raise AlignParameterError(
                f"minimum level is a fraction of full scale in [0, 1], got {self.min_level}"
            )
        if self.sample_rate_hz is not None and self.sample_rate_hz < 1:
            raise AlignParameterError(f"sample rate must be positive, got {self.sample_rate_hz}")
        fmt = self.format.value.upper()
        if not sf.check_format(fmt, self.subtype):
            raise AlignParameterError(
                f"subtype {self.subtype!r} cannot be written as {self.format.value}; "
                f"choose one of {sorted(sf.available_subtypes(fmt))}"
            )

    def window_samples(self, sample_rate_hz: int) -> int:
        """Window length in samples at a sample rate (at least one sample)."""
        return max(1, round(self.window_ms * sample_rate_hz / 1000.0))


@dataclass(frozen=True)
class AlignResult:
    """One row of the report."""

    input: str
    output: str
    status: Status
    start_ms: float | None = None
    window_ms: float | None = None
    level: float | None = None
    message: str = ""


def partial_path(output: Path) -> Path:
    """Temporary name an output is written under before it is renamed into place."""
    return output.with_name(f".{output.name}{PARTIAL_SUFFIX}")


@contextlib.contextmanager
def atomic_output(output: Path) -> Iterator[Path]:
    """Yield `partial_path` of ``output`` to write; rename it into place when the block
    succeeds, delete it when the block raises (KeyboardInterrupt included)."""
    tmp = partial_path(output)
    try:
        yield tmp
        os.replace(tmp, output)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _read_dtype(subtype: str) -> str:
    if subtype in INT16_SUBTYPES:
        return "int16"
    if subtype in INT32_SUBTYPES:
        return "int32"
    return "float64"


def _full_scale(dtype: np.dtype) -> float:
    """Value of a full-scale sample when read as ``dtype``."""
    return float(-np.iinfo(dtype).min) if np.issubdtype(dtype, np.integer) else 1.0


def _check_finite(path: Path, block: np.ndarray) -> None:
    if block.dtype.kind == "f" and not np.isfinite(block).all():
        raise AlignFileError(path, "contains NaN or Inf samples")


def _open(path: Path) -> sf.SoundFile:
    try:
        size = path.stat().st_size
    except OSError as e:
        raise AlignFileError(path, f"cannot read ({e.strerror})") from None
    if size == 0:
        raise AlignFileError(path, "empty file (0 bytes)")
    try:
        return sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        _raise_if_unopenable(path)
        why = e.error_string if isinstance(e, sf.LibsndfileError) else str(e)
        raise AlignFileError(path, f"not a readable audio file ({why})") from None


def _raise_if_unopenable(path: Path) -> None:
    """libsndfile says only "System error." when the OS refuses a file; ask the OS why."""
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise AlignFileError(path, f"cannot read ({e.strerror})") from None


def _cut_short_note(f: sf.SoundFile) -> str:
    """A note when the header declares more audio data than the file holds, else ""."""
    for declared, held in CUT_SHORT_LOG.findall(f.extra_info):
        if int(held) < int(declared) and int(declared) not in UNKNOWN_SIZES:
            return (
                f"file cut short: its header declares {declared} bytes of audio, "
                f"it holds {held}; aligned what is there"
            )
    return ""


class _Workspace(threading.local):
    """Per-thread scanner and read buffer, reused from file to file (see LoudestWindowScanner)."""

    def __init__(self) -> None:
        self.scanners: dict[int, LoudestWindowScanner] = {}
        self.buffers: dict[tuple[str, int], np.ndarray] = {}

    def scanner(self, length: int) -> LoudestWindowScanner:
        scanner = self.scanners.get(length)
        if scanner is None:
            scanner = self.scanners[length] = LoudestWindowScanner(length_samples=length)
        scanner.reset()
        return scanner

    def block(self, dtype: str, channels: int) -> np.ndarray:
        key = (dtype, channels)
        if key not in self.buffers:
            self.buffers[key] = np.empty((BLOCK_FRAMES, channels), dtype)
        return self.buffers[key]


_workspace = _Workspace()


def _read(path: Path, f: sf.SoundFile, frames: int, dtype: str) -> np.ndarray:
    try:
        data = f.read(frames, dtype=dtype, always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AlignFileError(path, f"corrupt audio data ({e})") from None
    _check_finite(path, data)
    return data


def _mono(window: np.ndarray) -> np.ndarray:
    """Channel mean; integers stay integers (rounded) so 16-bit mono copies bit-exactly."""
    if window.shape[1] == 1:
        return window[:, 0]
    if np.issubdtype(window.dtype, np.integer):
        return np.round(window.mean(axis=1)).astype(window.dtype)
    return window.mean(axis=1)


def _scan(
    path: Path, f: sf.SoundFile, length: int, dtype: str
) -> tuple[int, float | int, np.ndarray | None]:
    """(start, window sum, the whole signal when it was read in one block)."""
    scanner = _workspace.scanner(length)
    buffer = _workspace.block(dtype, f.channels)
    whole = 0 <= f.frames <= BLOCK_FRAMES
    while True:
        try:
            block = f.read(out=buffer)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise AlignFileError(path, f"corrupt audio data ({e})") from None
        if block.shape[0] == 0:
            break
        _check_finite(path, block)
        scanner.update(block)
        if whole:
            break
    if scanner.position == 0:
        raise AlignFileError(path, "zero length (no samples)")
    start, total = scanner.finish()
    return start, total, block if whole else None


def _resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    import soxr  # only needed when resampling

    return soxr.resample(x.astype(np.float64), rate_in, rate_out, quality="HQ")


def align_file(source: Path | str, output: Path | str, *, options: AlignOptions) -> AlignResult:
    """Align one file and write the loudest window to ``output`` atomically.

    Parameters
    ----------
    source : path of the recording (never modified).
    output : path of the aligned file; written via `partial_path` and renamed.
    options : `AlignOptions`.

    Returns
    -------
    AlignResult
        status ``aligned``, ``padded`` (clip shorter than the window) or ``skipped-quiet``
        (nothing written).

    Raises
    ------
    AlignFileError
        Empty, corrupt or non-audio file, zero length, NaN/Inf samples.
    """
    source, output = Path(source), Path(output)
    with _open(source) as f:
        cut_short = _cut_short_note(f)
        rate = f.samplerate
        length = options.window_samples(rate)
        dtype = _read_dtype(f.subtype)
        start, total, data = _scan(source, f, length, dtype)
        channels = f.channels
        level = float(total) / (length * channels * _full_scale(np.dtype(dtype)))
        if level < options.min_level:
            return AlignResult(
                str(source),
                "",
                Status.SKIPPED_QUIET,
                start * 1000.0 / rate,
                options.window_ms,
                level,
                _join(f"mean level {level:.5f} below --min-level {options.min_level}", cut_short),
            )
        out_rate = options.sample_rate_hz or rate
        margin = round(RESAMPLE_MARGIN_S * rate) if out_rate != rate else 0
        lo = max(0, start - margin)
        if data is None:
            f.seek(lo)
            window = _read(source, f, start + length + margin - lo, dtype)
        else:
            window = data[lo : start + length + margin]
    samples = _mono(window)
    n_valid = min(samples.shape[0] - (start - lo), length)
    padded = n_valid < length
    if out_rate != rate:
        scale = _full_scale(samples.dtype)
        samples = _resample(samples / scale, rate, out_rate)
        offset = round((start - lo) * out_rate / rate)
        out_length = options.window_samples(out_rate)
        n_valid = min(round(n_valid * out_rate / rate), out_length)
        samples = np.clip(samples[offset : offset + n_valid], -1.0, 1.0)
    else:
        out_length = length
        samples = samples[start - lo : start - lo + n_valid]
    if padded:
        before = (out_length - n_valid) // 2 if options.pad is Pad.CENTER else 0
        samples = np.pad(samples, (before, out_length - n_valid - before))
    _write_atomic(output, samples, out_rate, options)
    return AlignResult(
        str(source),
        str(output),
        Status.PADDED if padded else Status.ALIGNED,
        start * 1000.0 / rate,
        options.window_ms,
        level,
        _join(
            f"clip is {n_valid * 1000.0 / out_rate:.0f} ms, padded at the {options.pad.value}"
            if padded
            else "",
            cut_short,
        ),
    )


def _join(*notes: str) -> str:
    return "; ".join(note for note in notes if note)


def _pcm16_wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """A canonical mono 16-bit PCM WAV file (RIFF/WAVE, 'fmt ' chunk of 16 bytes, 'data')."""
    data = samples.astype("<i2", copy=False).tobytes()
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(data),
        b"WAVE",
        b"fmt ",
        16,
        WAVE_FORMAT_PCM,
        1,
        rate,
        rate * 2,
        2,
        16,
        b"data",
        len(data),
    )  # fmt fields: format, channels, rate, byte rate, block align, bits per sample
    return header + data


def _write_atomic(output: Path, samples: np.ndarray, rate: int, options: AlignOptions) -> None:
    """Write under `partial_path`, then rename; nothing is left behind on any exception.

    16-bit mono WAV (the default) is written in one system call (canonical 44-byte header +
    data); other formats through soundfile, via a Python file object because soundfile's own
    close fsyncs every file, which costs more than the whole alignment. Without fsync a power
    cut can lose the newest outputs, never an input, and a rerun redoes them.
    """
    if samples.dtype.kind == "f":
        samples = np.clip(samples, -1.0, 1.0)
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(output) as tmp, open(tmp, "wb") as fh:
        if (
            samples.dtype == np.int16
            and options.format is OutputFormat.WAV
            and options.subtype == "PCM_16"
        ):
            fh.write(_pcm16_wav_bytes(samples, rate))
        else:
            fmt = options.format.value.upper()
            sf.write(fh, samples, rate, subtype=options.subtype, format=fmt)

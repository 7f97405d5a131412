"""Loudest-window search: the core of the aligner.

In: samples, shape (n,) or (n, channels), integer or float. Out: the start index of the
window of ``length_samples`` whose sum of |mono down-mix| is largest (first one on ties).

The window sums come from a running (cumulative) sum, so the cost is O(n) whatever the
window length. Integer input is summed in int64 and is exact; the mono down-mix is scored as
the channel *sum* rather than the mean, which has the same maximum and stays in integers.
Float input is summed in float64.

`LoudestWindowScanner` does the same over a stream of blocks with memory bounded by the
window length, so hour-long recordings never need to be held in memory.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "LoudestWindowScanner",
    "accumulator",
    "loudest_window",
    "loudest_window_sum",
    "magnitude",
    "window_sums",
]


class AlignParameterError(ValueError):
    """A setting of the aligner is out of range."""


def _check_length(length_samples: int) -> int:
    if int(length_samples) != length_samples or length_samples < 1:
        raise AlignParameterError(
            f"window length must be a positive whole number of samples, got {length_samples!r}"
        )
    return int(length_samples)


def accumulator(dtype: np.dtype) -> type:
    """Exact running-sum type: int64 for integer samples, float64 for float samples."""
    return np.int64 if np.issubdtype(dtype, np.integer) else np.float64


def magnitude(samples: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    """|mono down-mix| of a block, in `accumulator` precision.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,) or (n, channels)]
    out : np.ndarray [shape=(n,)], optional
        Buffer to write into (of the accumulator dtype), so a caller scanning many blocks
        does not allocate fresh memory for each.

    Returns
    -------
    np.ndarray [shape=(n,)]
        ``|sum over channels|``; proportional to the |channel mean|, so it ranks windows
        exactly like the mean would.
    """
    x = np.asarray(samples)
    if x.ndim not in (1, 2):
        raise AlignParameterError(f"samples must have shape (n,) or (n, channels), got {x.shape}")
    if out is None:
        out = np.empty(x.shape[0], dtype=accumulator(x.dtype))
    if x.ndim == 2 and x.shape[1] > 1:
        np.sum(x, axis=1, dtype=out.dtype, out=out)
    else:
        out[:] = x.reshape(-1)
    return np.abs(out, out=out)


def window_sums(samples: np.ndarray, *, length_samples: int) -> np.ndarray:
    """Sum of |mono down-mix| for every window start, from a running sum.

    Returns
    -------
    np.ndarray [shape=(max(n - length_samples, 0) + 1,)]
        Entry ``i`` is the sum over samples ``i .. i + length_samples - 1``. A clip shorter
        than the window has a single entry: the sum of the whole clip (zero padding adds 0).
    """
    length = _check_length(length_samples)
    mag = magnitude(samples)
    prefix = np.empty(mag.size + 1, dtype=mag.dtype)
    prefix[0] = 0
    np.cumsum(mag, out=prefix[1:])
    if mag.size <= length:
        return prefix[-1:]
    return prefix[length:] - prefix[:-length]


def loudest_window_sum(samples: np.ndarray, *, length_samples: int) -> tuple[int, float | int]:
    """(start index of the loudest window, its sum of |mono down-mix|)."""
    sums = window_sums(samples, length_samples=length_samples)
    start = int(np.argmax(sums))
    return start, sums[start].item()


def loudest_window(samples: np.ndarray, *, length_samples: int) -> int:
    """Start index of the loudest window (first maximum on ties; 0 for short clips).

    Parameters
    ----------
    samples : np.ndarray [shape=(n,) or (n, channels)]
    length_samples : int
        Window length in samples.

    Examples
    --------
    >>> x = np.zeros(100, dtype=np.int16); x[60:70] = 1000
    >>> loudest_window(x, length_samples=10)
    60
    """
    return loudest_window_sum(samples, length_samples=length_samples)[0]


class LoudestWindowScanner:
    """`loudest_window` over a stream of blocks, in memory bounded by the window length.

    Feed blocks (any lengths, one dtype kind and channel count per stream) with `update`,
    then `finish` gives the loudest window and its sum. The result equals `loudest_window`
    on the concatenated blocks (exactly for integer input). `reset` starts a new stream and
    keeps the work buffers, so one scanner can serve many files without allocating fresh
    memory for each (page faults cost more than the arithmetic on small files).
    """

    def __init__(self, *, length_samples: int) -> None:
        self.length_samples = _check_length(length_samples)
        self._buffers: dict[tuple[str, str], np.ndarray] = {}
        self.reset()

    def reset(self) -> None:
        """Start a new stream: forget everything seen, keep the buffers."""
        self._tail: np.ndarray | None = None  # running sum at positions _base .. position
        self._base = 0
        self.position = 0
        self.start = 0
        self.total: float | int = 0
        self._found = False
        self._flip = False

    def _buffer(self, name: str, dtype: type, size: int) -> np.ndarray:
        key = (name, np.dtype(dtype).str)
        buf = self._buffers.get(key)
        if buf is None or buf.size < size:
            buf = self._buffers[key] = np.empty(
                max(size, 2 * (buf.size if buf is not None else 0)), dtype
            )
        return buf[:size]

    def update(self, samples: np.ndarray) -> None:
        """Add the next block of samples, shape (m,) or (m, channels)."""
        x = np.asarray(samples)
        mag = magnitude(x, out=self._buffer("magnitude", accumulator(x.dtype), len(x)))
        m = mag.size
        if m == 0:
            return
        if self._tail is None:
            self._tail = np.zeros(1, dtype=mag.dtype)
        length, k = self.length_samples, self._tail.size
        # Two prefix buffers used in turn: the tail of one is copied to the head of the other.
        self._flip = not self._flip
        prefix = self._buffer("prefix-a" if self._flip else "prefix-b", mag.dtype, k + m)
        prefix[:k] = self._tail
        np.cumsum(mag, out=prefix[k:])
        prefix[k:] += self._tail[-1]
        base, end = self._base, self.position + m
        first = max(base, self.position + 1 - length)  # window starts whose end is new
        last = end - length
        if last >= first:
            sums = self._buffer("sums", mag.dtype, last - first + 1)
            np.subtract(
                prefix[first - base + length : last - base + length + 1],
                prefix[first - base : last - base + 1],
                out=sums,
            )
            i = int(np.argmax(sums))
            if not self._found or sums[i] > self.total:
                self.start, self.total, self._found = first + i, sums[i].item(), True
        keep = min(prefix.size, length + 1)
        self._tail = prefix[-keep:]
        self._base = end - (keep - 1)
        self.position = end

    def finish(self) -> tuple[int, float | int]:
        """(start, window sum). A stream shorter than the window gives (0, sum of all)."""
        if not self._found:
            total = 0 if self._tail is None else self._tail[-1].item()
            return 0, total
        return self.start, self.total

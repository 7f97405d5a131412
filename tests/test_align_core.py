"""The loudest-window core against a brute-force oracle (sum of every window)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from align.core import AlignParameterError, LoudestWindowScanner, loudest_window, window_sums


def oracle(samples: np.ndarray, length: int) -> tuple[int, int]:
    """(first start with the largest sum, that sum): Python integers, every window summed."""
    x = samples.astype(np.int64)
    mono = np.abs(x.sum(axis=1)) if x.ndim == 2 else np.abs(x)
    values = [int(v) for v in mono]
    if len(values) <= length:
        return 0, sum(values)
    best, best_sum = 0, -1
    for start in range(len(values) - length + 1):
        s = sum(values[start : start + length])
        if s > best_sum:
            best, best_sum = start, s
    return best, best_sum


int16_signals = arrays(np.int16, st.integers(1, 300), elements=st.integers(-32768, 32767))
# Few distinct values make many windows tie: the first one must win.
tied_signals = arrays(np.int16, st.integers(1, 120), elements=st.integers(-2, 2))


@settings(max_examples=200, deadline=None)
@given(x=int16_signals, length=st.integers(1, 320))
def test_matches_oracle(x: np.ndarray, length: int) -> None:
    assert loudest_window(x, length_samples=length) == oracle(x, length)[0]


@settings(max_examples=200, deadline=None)
@given(x=tied_signals, length=st.integers(1, 40))
def test_ties_take_the_first_window(x: np.ndarray, length: int) -> None:
    assert loudest_window(x, length_samples=length) == oracle(x, length)[0]


@settings(max_examples=100, deadline=None)
@given(
    x=arrays(
        np.int16,
        st.tuples(st.integers(1, 200), st.integers(2, 4)),
        elements=st.integers(-32768, 32767),
    ),
    length=st.integers(1, 64),
)
def test_multichannel_is_scored_on_the_mono_downmix(x: np.ndarray, length: int) -> None:
    assert loudest_window(x, length_samples=length) == oracle(x, length)[0]


@settings(max_examples=150, deadline=None)
@given(
    x=int16_signals,
    length=st.integers(1, 100),
    cuts=st.lists(st.integers(0, 300), max_size=6),
)
def test_scanner_over_blocks_equals_whole_array(
    x: np.ndarray, length: int, cuts: list[int]
) -> None:
    scanner = LoudestWindowScanner(length_samples=length)
    for block in np.split(x, sorted(c for c in cuts if c <= x.size)):
        scanner.update(block)
    assert scanner.finish() == oracle(x, length)


def test_scanner_reset_reuses_buffers_without_leaking_state(rng: np.random.Generator) -> None:
    scanner = LoudestWindowScanner(length_samples=50)
    for _ in range(5):
        x = rng.integers(-32768, 32767, size=int(rng.integers(10, 400)), dtype=np.int16)
        scanner.reset()
        scanner.update(x)
        assert scanner.finish() == oracle(x, 50)


def test_int16_sums_are_exact_where_float32_is_not(rng: np.random.Generator) -> None:
    # A long full-scale signal: float32 running sums lose the low bits, int64 does not.
    x = rng.integers(-32768, 32767, size=200_000, dtype=np.int16)
    sums = window_sums(x, length_samples=16_000)
    mags = [abs(int(v)) for v in x]  # Python integers: exact
    for start in (0, 12_345, x.size - 16_000):
        assert sums[start] == sum(mags[start : start + 16_000])
    assert sums.dtype == np.int64
    prefix = np.concatenate([[0], np.cumsum(np.abs(x.astype(np.int64)))])
    x32 = np.abs(x.astype(np.float32)).cumsum(dtype=np.float32)
    assert not np.array_equal(x32.astype(np.int64), prefix[1:])  # float32 would drift


def test_float_input_finds_the_loudest_window(rng: np.random.Generator) -> None:
    x = rng.normal(0, 0.01, 5000)
    x[3000:3100] += 0.8
    start = loudest_window(x, length_samples=100)
    assert start == 3000
    sums = window_sums(x, length_samples=100)
    brute = np.array([np.abs(x[i : i + 100]).sum() for i in range(x.size - 99)])
    np.testing.assert_allclose(sums, brute, rtol=1e-9, atol=1e-9)


def test_burst_is_found_at_the_burst() -> None:
    x = np.zeros(48_000, dtype=np.int16)
    x[20_000:36_000] = 1000
    assert loudest_window(x, length_samples=16_000) == 20_000


def test_short_clip_starts_at_zero() -> None:
    assert loudest_window(np.ones(10, dtype=np.int16), length_samples=100) == 0


@pytest.mark.parametrize("bad", [0, -5, 2.5])
def test_invalid_window_length_raises(bad: float) -> None:
    with pytest.raises(AlignParameterError, match="positive whole number"):
        loudest_window(np.zeros(10), length_samples=bad)  # type: ignore[arg-type]


def test_bad_shape_raises() -> None:
    with pytest.raises(AlignParameterError, match=r"shape \(n,\) or \(n, channels\)"):
        loudest_window(np.zeros((2, 2, 2)), length_samples=1)

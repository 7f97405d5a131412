"""align_file: formats, channels, padding, quiet clips, resampling, bad files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import burst_clip, write

from align import AlignFileError, AlignOptions, Pad, Status, align_file, loudest_window
from align.files import BLOCK_FRAMES, partial_path

RATE = 16_000


def test_16bit_mono_window_is_copied_bit_exactly(tmp_path: Path, rng: np.random.Generator) -> None:
    x = (burst_clip(rng, n=3 * RATE, at=25_000, width=8000) * 32767).astype(np.int16)
    src = write(tmp_path / "in.wav", x)
    result = align_file(src, tmp_path / "out.wav", options=AlignOptions())
    start = loudest_window(x, length_samples=RATE)
    assert result.status is Status.ALIGNED
    assert result.start_ms == pytest.approx(start * 1000 / RATE)
    out, rate = sf.read(tmp_path / "out.wav", dtype="int16")
    info = sf.info(tmp_path / "out.wav")
    assert (rate, info.channels, info.subtype, info.format) == (RATE, 1, "PCM_16", "WAV")
    assert np.array_equal(out, x[start : start + RATE])
    assert 17_000 <= start <= 25_000  # the window covers the whole burst


@pytest.mark.parametrize(
    ("subtype", "fmt", "channels"),
    [
        ("PCM_24", "FLAC", 2),
        ("PCM_32", "WAV", 3),
        ("FLOAT", "WAV", 2),
        ("PCM_U8", "WAV", 1),
        ("PCM_S8", "FLAC", 1),
        ("DOUBLE", "WAV", 1),
    ],
)
def test_any_sample_format_and_channel_count(
    tmp_path: Path, rng: np.random.Generator, subtype: str, fmt: str, channels: int
) -> None:
    mono = burst_clip(rng, n=2 * 22_050, at=30_000, width=5000)
    data = np.stack([mono * (0.5 + 0.2 * c) for c in range(channels)], axis=1)
    src = tmp_path / f"in.{fmt.lower()}"
    sf.write(src, data, 22_050, subtype=subtype, format=fmt)
    result = align_file(src, tmp_path / "out.wav", options=AlignOptions())
    out, rate = sf.read(tmp_path / "out.wav")
    assert rate == 22_050 and out.shape == (22_050,)
    stored, _ = sf.read(src, always_2d=True)
    start = loudest_window(stored.mean(axis=1), length_samples=22_050)
    assert result.start_ms == pytest.approx(start * 1000 / 22_050)
    np.testing.assert_allclose(out, stored.mean(axis=1)[start : start + 22_050], atol=2 / 32768)


@pytest.mark.parametrize(("pad", "before"), [(Pad.END, 0), (Pad.CENTER, 5000)])
def test_short_clip_is_padded(
    tmp_path: Path, rng: np.random.Generator, pad: Pad, before: int
) -> None:
    x = (burst_clip(rng, n=6000, at=1000, width=3000) * 32767).astype(np.int16)
    src = write(tmp_path / "short.wav", x)
    result = align_file(src, tmp_path / "out.wav", options=AlignOptions(pad=pad))
    out, _ = sf.read(tmp_path / "out.wav", dtype="int16")
    assert result.status is Status.PADDED and out.size == RATE
    assert np.array_equal(out[before : before + 6000], x)
    assert not out[:before].any() and not out[before + 6000 :].any()


def test_quiet_file_is_skipped_not_written(tmp_path: Path, rng: np.random.Generator) -> None:
    src = write(tmp_path / "quiet.wav", rng.normal(0, 0.0005, RATE * 2))
    result = align_file(src, tmp_path / "out.wav", options=AlignOptions())
    assert result.status is Status.SKIPPED_QUIET and "below --min-level" in result.message
    assert not (tmp_path / "out.wav").exists()
    result = align_file(src, tmp_path / "out.wav", options=AlignOptions(min_level=0))
    assert result.status is Status.ALIGNED


def test_resampling_to_another_rate(tmp_path: Path, rng: np.random.Generator) -> None:
    n = 3 * 44_100
    x = rng.normal(0, 0.001, n)
    t = np.arange(44_100 // 2) / 44_100
    x[60_000 : 60_000 + t.size] += 0.5 * np.sin(2 * np.pi * 440 * t)
    src = write(tmp_path / "hi.wav", x, rate=44_100)
    result = align_file(src, tmp_path / "out.wav", options=AlignOptions(sample_rate_hz=RATE))
    out, rate = sf.read(tmp_path / "out.wav")
    assert rate == RATE and out.size == RATE
    start = round(result.start_ms * RATE / 1000)
    idx = np.arange(RATE) + start
    tone = (idx >= round(60_000 * RATE / 44_100)) & (idx < round((60_000 + t.size) * RATE / 44_100))
    spectrum = np.abs(np.fft.rfft(out))
    assert np.argmax(spectrum) == 440  # 1 Hz bins for a one-second clip
    assert np.abs(out[~tone]).max() < 0.05 and np.abs(out[tone]).max() > 0.45


def test_long_file_is_streamed_and_matches_whole_file(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    n = 3 * BLOCK_FRAMES + 123
    x = (burst_clip(rng, n=n, at=2 * BLOCK_FRAMES - 4000, width=9000) * 32767).astype(np.int16)
    src = write(tmp_path / "long.flac", x)
    result = align_file(src, tmp_path / "out.wav", options=AlignOptions())
    start = loudest_window(x, length_samples=RATE)
    assert result.start_ms == pytest.approx(start * 1000 / RATE)
    out, _ = sf.read(tmp_path / "out.wav", dtype="int16")
    assert np.array_equal(out, x[start : start + RATE])


def test_bad_files_raise_naming_the_file_and_problem(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("these are my notes, not audio\n")
    nan = write(tmp_path / "nan.wav", np.array([0.1, np.nan, 0.2] * 1000), subtype="FLOAT")
    zero = write(tmp_path / "zero.wav", np.zeros(0), subtype="PCM_16")
    good = write(tmp_path / "good.wav", np.full(RATE, 0.3))
    truncated = tmp_path / "truncated.flac"
    sf.write(truncated, np.random.default_rng(0).normal(0, 0.3, RATE * 2), RATE, format="FLAC")
    truncated.write_bytes(truncated.read_bytes()[:2000])
    cases = {
        empty: "empty file",
        text: "not a readable audio file",
        nan: "NaN or Inf",
        zero: "zero length",
    }
    for path, problem in cases.items():
        with pytest.raises(AlignFileError, match=problem) as info:
            align_file(path, tmp_path / "out" / path.name, options=AlignOptions())
        assert str(path) in str(info.value)
    with pytest.raises(AlignFileError, match=r"truncated\.flac"):
        align_file(truncated, tmp_path / "out" / "t.wav", options=AlignOptions())
    assert (
        align_file(good, tmp_path / "out" / "good.wav", options=AlignOptions()).status
        is Status.ALIGNED
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.wav"]


def test_interrupt_while_writing_leaves_no_file(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = write(tmp_path / "in.wav", burst_clip(rng, n=2 * RATE, at=5000, width=5000))
    out = tmp_path / "out" / "in.wav"
    import align.files

    def interrupted(samples: np.ndarray, rate: int) -> bytes:
        partial_path(out).write_bytes(b"RIFF half a header")  # as if killed mid-write
        raise KeyboardInterrupt

    monkeypatch.setattr(align.files, "_pcm16_wav_bytes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        align_file(src, out, options=AlignOptions())
    assert list((tmp_path / "out").iterdir()) == []


def test_invalid_options_raise() -> None:
    from align import AlignParameterError

    with pytest.raises(AlignParameterError, match="positive number of ms"):
        AlignOptions(window_ms=0)
    with pytest.raises(AlignParameterError, match=r"\[0, 1\]"):
        AlignOptions(min_level=2)
    with pytest.raises(AlignParameterError, match="cannot be written as wav"):
        AlignOptions(subtype="VORBIS")


def test_absurd_window_is_refused_naming_the_value() -> None:
    from align import AlignParameterError

    for bad in (1e12, 60_001.0, -5.0):
        with pytest.raises(
            AlignParameterError, match=rf"up to 60000 .*got {re.escape(f'{bad:g}')}$"
        ):
            AlignOptions(window_ms=bad)
    assert AlignOptions(window_ms=60_000.0).window_samples(RATE) == 60 * RATE


def test_file_cut_short_is_aligned_with_a_note(tmp_path: Path, rng: np.random.Generator) -> None:
    whole = write(tmp_path / "whole.wav", burst_clip(rng, n=2 * RATE, at=2000, width=5000))
    short = tmp_path / "short.wav"
    short.write_bytes(whole.read_bytes()[:30_000])  # a copy interrupted part way
    result = align_file(short, tmp_path / "out" / "short.wav", options=AlignOptions())
    assert result.status is Status.PADDED
    assert "clip is 936 ms" in result.message
    assert "cut short: its header declares 64000 bytes of audio, it holds 29956" in result.message
    result = align_file(whole, tmp_path / "out" / "whole.wav", options=AlignOptions())
    assert result.status is Status.ALIGNED and result.message == ""

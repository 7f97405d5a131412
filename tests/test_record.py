"""`kws record` with scripted takes and answers (no microphone here)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kws.live import MicSource
from kws.record import RecordError, RecordOptions, analyse_take, next_index, record_session

RATE = 16_000


def _take(rng: np.random.Generator, at_s: float, level: float = 0.5) -> np.ndarray:
    x = rng.normal(0, 0.002, 2 * RATE)
    i = int(at_s * RATE)
    x[i : i + 8000] += level * np.sin(np.arange(8000) * 0.3) * np.hanning(8000)
    return x.astype(np.float32)


class ScriptedSource:
    def __init__(self, takes: list[np.ndarray]) -> None:
        self.takes, self.closed = list(takes), False

    def take(self, seconds: float) -> np.ndarray:
        return self.takes.pop(0)

    def close(self) -> None:
        self.closed = True


def test_keep_redo_quit_and_alignment(tmp_path: Path, rng: np.random.Generator) -> None:
    takes = [_take(rng, 0.3), _take(rng, 0.9), _take(rng, 0.6), _take(rng, 0.1)]
    answers = iter(["", "n", "y", "q"])
    lines: list[str] = []
    source = ScriptedSource(takes)
    written = record_session(
        "yes", out=tmp_path / "yes", source=source,
        options=RecordOptions(count=5, speaker="ann"), show=lines.append,
        ask=lambda _: next(answers), sleep=lambda _: None,
    )  # fmt: skip
    assert source.closed
    assert [p.name for p in written] == ["ann_nohash_0.wav", "ann_nohash_1.wav"]
    for path, take, at in ((written[0], takes[0], 0.3), (written[1], takes[2], 0.6)):
        clip, rate = sf.read(path, dtype="float32")
        assert rate == RATE and clip.shape == (RATE,)
        # the loudest second holds the whole word
        start = round(analyse_take(take, window_ms=1000).start_s * RATE)
        assert start <= int(at * RATE) and int(at * RATE) + 8000 <= start + RATE
        np.testing.assert_allclose(clip, take[start : start + RATE], atol=1 / 32768)
    assert sum("3…" in line for line in lines) == 4  # a count-down per take
    assert any("peak" in line and "dBFS" in line for line in lines)


def test_a_second_session_adds_after_the_first(tmp_path: Path, rng: np.random.Generator) -> None:
    folder = tmp_path / "no"
    for _ in range(2):
        record_session(
            "no", out=folder, source=ScriptedSource([_take(rng, 0.5)] * 2),
            options=RecordOptions(count=2, speaker="bob"), show=lambda _: None,
            ask=lambda _: "y", sleep=lambda _: None,
        )  # fmt: skip
    assert sorted(p.name for p in folder.iterdir()) == [f"bob_nohash_{i}.wav" for i in range(4)]
    assert next_index(folder, "bob") == 4 and next_index(folder, "eve") == 0


def test_warnings_for_quiet_and_clipped_takes(rng: np.random.Generator) -> None:
    assert "quiet" in analyse_take(_take(rng, 0.5, level=0.005), window_ms=1000).warning
    loud = _take(rng, 0.5, level=3.0).clip(-1, 1)
    assert "clipped" in analyse_take(loud, window_ms=1000).warning
    assert analyse_take(_take(rng, 0.5), window_ms=1000).warning == ""


def test_bad_options() -> None:
    with pytest.raises(RecordError, match="--speaker"):
        RecordOptions(speaker="a b")
    with pytest.raises(RecordError, match="--take-seconds"):
        RecordOptions(take_seconds=0.5)


class PacedBackend:
    """A microphone that delivers 10 ms blocks of a recording at 20× real time."""

    def __init__(self, audio: np.ndarray) -> None:
        self.audio = audio

    def query_devices(self) -> list[dict]:
        return [{"name": "fake mic", "max_input_channels": 1, "default_samplerate": 16000.0}]

    def check_input_settings(self, **kwargs: object) -> None:
        pass

    def InputStream(self, **kwargs: object) -> object:  # sounddevice names it so
        audio, callback, block = self.audio, kwargs["callback"], int(kwargs["blocksize"])

        class Stream:
            active = False

            def start(self) -> None:
                self.active = True
                threading.Thread(target=self.run, daemon=True).start()

            def run(self) -> None:
                for pos in range(0, len(audio), block):
                    if not self.active:
                        return
                    callback(audio[pos : pos + block, None], block, None, None)  # type: ignore[operator]
                    time.sleep(block / RATE / 20)
                self.active = False

            def stop(self) -> None:
                self.active = False

            def close(self) -> None:
                pass

        return Stream()


def test_microphone_takes(rng: np.random.Generator) -> None:
    audio = np.concatenate([_take(rng, 0.5) for _ in range(6)])
    mic = MicSource(sample_rate_hz=RATE, block_ms=10, backend=PacedBackend(audio))
    first = mic.take(1.5)
    second = mic.take(1.5)
    mic.close()
    assert first.shape == second.shape == (int(1.5 * RATE),)
    # consecutive stretches of the recording, not the same one twice
    start = int(
        np.flatnonzero(
            np.all(np.lib.stride_tricks.sliding_window_view(audio, 100) == first[:100], axis=1)
        )[0]
    )
    np.testing.assert_array_equal(audio[start : start + first.size], first)
    assert not np.array_equal(first, second)

"""The live path without an audio device: a fake sounddevice backend feeds the microphone
adapter from a recording; missing PortAudio and devices give clear messages."""

from __future__ import annotations

import builtins
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import write

import features
from kws.audio import AudioError
from kws.live import FileSource, LiveError, LiveView, MicSource, listen, load_sounddevice
from kws.stream import SmoothingConfig, StreamingDetector, score_stream

RATE = 16_000


class ToneModel:
    """Scores 'yes' high when a window holds a tone far above its noise (a stand-in model):
    the window's c0 (frame energy) then spans far more than over noise alone."""

    labels = ("_silence_", "_unknown_", "yes")
    name = "tone"

    def __init__(self) -> None:
        self.spec = features.preset("mlperf-tiny")

    def scores(self, window: np.ndarray) -> np.ndarray:
        loud = float(np.ptp(window[:, 0]) > 15)  # ~30 with a tone, ~3 over noise alone
        return np.array([1 - loud, 0.0, loud], np.float32) * 0.98 + 0.01


def _audio(rng: np.random.Generator) -> np.ndarray:
    x = rng.normal(0, 0.003, 6 * RATE)
    t = np.arange(8000) / RATE
    for start in (RATE, 4 * RATE):
        x[start : start + 8000] += 0.6 * np.sin(2 * np.pi * 1000 * t)
    return x.astype(np.float32)


class FakeBackend:
    """What kws.live uses of sounddevice: query_devices, check_input_settings, InputStream."""

    def __init__(
        self,
        audio: np.ndarray,
        *,
        rate: int = RATE,
        devices: list[dict] | None = None,
        supports_rate: bool = True,
    ) -> None:
        self.audio, self.rate, self.supports_rate = audio, rate, supports_rate
        self.devices = (
            devices
            if devices is not None
            else [
                {"name": "speaker", "max_input_channels": 0, "default_samplerate": 48000.0},
                {"name": "fake mic", "max_input_channels": 1, "default_samplerate": float(rate)},
            ]
        )
        self.opened: dict[str, Any] = {}

    def query_devices(self) -> list[dict]:
        return self.devices

    def check_input_settings(self, **kwargs: Any) -> None:
        if not self.supports_rate and kwargs["samplerate"] != self.rate:
            raise RuntimeError("Invalid sample rate")

    def InputStream(self, **kwargs: Any) -> FakeStream:  # sounddevice names it so
        self.opened = kwargs
        audio = self.audio
        if kwargs["samplerate"] != RATE:  # the device records at its own rate
            import soxr

            audio = soxr.resample(audio, RATE, kwargs["samplerate"]).astype(np.float32)
        return FakeStream(audio, kwargs["blocksize"], kwargs["callback"])


class FakeStream:
    def __init__(self, audio: np.ndarray, block: int, callback: Any) -> None:
        self.audio, self.block, self.callback = audio, block, callback
        self.active = False
        self.closed = False

    def start(self) -> None:
        self.active = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for pos in range(0, len(self.audio), self.block):
            if not self.active:
                return
            block = self.audio[pos : pos + self.block]
            self.callback(block[:, None].copy(), len(block), None, None)
        self.active = False

    def stop(self) -> None:
        self.active = False

    def close(self) -> None:
        self.closed = True


def test_microphone_path_equals_file_path(rng: np.random.Generator) -> None:
    audio = _audio(rng)
    model = ToneModel()
    config = SmoothingConfig(threshold=0.6, average_window_ms=200, suppression_ms=2000)
    backend = FakeBackend(audio)
    mic = MicSource(sample_rate_hz=RATE, block_ms=30, backend=backend)
    assert backend.opened["samplerate"] == RATE and backend.opened["channels"] == 1
    seen = []
    stats = listen(mic, StreamingDetector(model, smoothing=config), on_detection=seen.append)
    assert mic.stream.closed and not stats.interrupted
    assert stats.audio_s == pytest.approx(6.0)
    assert [d.label for d in stats.detections] == ["yes", "yes"] and seen == stats.detections
    # each tone fires once, shortly after the window holds enough of it
    times = [d.time_s for d in stats.detections]
    assert 1.0 < times[0] < 1.8 and 4.0 < times[1] < 4.8
    # the same detections as the file path and as offline scoring
    path = write(Path(pytest.importorskip("tempfile").mkdtemp()) / "a.wav", audio, subtype="FLOAT")
    file_stats = listen(
        FileSource(path, sample_rate_hz=RATE, block_ms=100),
        StreamingDetector(model, smoothing=config),
    )
    assert file_stats.detections == stats.detections
    assert len(score_stream(model, audio)) == stats.hops


def test_microphone_resamples_when_the_device_cannot_record_at_16k(
    rng: np.random.Generator,
) -> None:
    audio = _audio(rng)
    backend = FakeBackend(
        audio,
        rate=48_000,
        supports_rate=False,
        devices=[{"name": "usb mic", "max_input_channels": 2, "default_samplerate": 48000.0}],
    )
    mic = MicSource(sample_rate_hz=RATE, block_ms=50, backend=backend)
    assert backend.opened["samplerate"] == 48_000 and "48000 Hz" in mic.name
    config = SmoothingConfig(threshold=0.6, average_window_ms=200, suppression_ms=2000)
    stats = listen(mic, StreamingDetector(ToneModel(), smoothing=config))
    assert stats.audio_s == pytest.approx(6.0, abs=0.05)
    assert [d.label for d in stats.detections] == ["yes", "yes"]


def test_ctrl_c_stops_cleanly(rng: np.random.Generator) -> None:
    audio = _audio(rng)

    class Interrupting:
        closed = False

        def __iter__(self):  # type: ignore[no-untyped-def]
            yield audio[:RATE]
            raise KeyboardInterrupt

        def close(self) -> None:
            self.closed = True

    source = Interrupting()
    stats = listen(source, StreamingDetector(ToneModel()))
    assert stats.interrupted and source.closed and stats.audio_s == 1.0


def test_no_device_and_bad_device_messages(rng: np.random.Generator) -> None:
    with pytest.raises(LiveError, match="no audio input device found"):
        MicSource(sample_rate_hz=RATE, backend=FakeBackend(_audio(rng), devices=[]))
    with pytest.raises(
        LiveError, match=r"--device 0 is not an input device; input devices: 1: fake mic"
    ):
        MicSource(sample_rate_hz=RATE, device=0, backend=FakeBackend(_audio(rng)))


def test_missing_portaudio_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def failing(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(__import__("sys").modules, "sounddevice", raising=False)
    monkeypatch.setattr(builtins, "__import__", failing)
    with pytest.raises(LiveError, match="apt install libportaudio2"):
        load_sounddevice()


def test_cli_reports_no_microphone_in_one_line(
    monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator
) -> None:
    from typer.testing import CliRunner

    import kws.live
    from kws.cli import app

    monkeypatch.setattr(kws.live, "load_sounddevice", lambda: FakeBackend(_audio(rng), devices=[]))
    result = CliRunner().invoke(app, ["listen", "--list-devices", "."])
    assert result.exit_code == 2
    assert "no audio input device found" in result.output


def test_live_view_renders(rng: np.random.Generator) -> None:
    from rich.console import Console

    model = ToneModel()
    view = LiveView(model.labels, source="test", threshold=0.6)
    detector = StreamingDetector(model, smoothing=SmoothingConfig(threshold=0.6))
    for chunk in np.split(_audio(rng), 60):
        hops, found = detector.update(chunk)
        view.on_chunk(chunk, hops)
        for d in found:
            view.on_detection(d)
    console = Console(record=True, width=100)
    console.print(view.render(RATE))
    text = console.export_text()
    assert "dBFS" in text and "yes" in text and "kws listen — test" in text


def test_file_source_streams_its_rate_and_resamples_others(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    audio = _audio(rng)
    stereo = write(tmp_path / "s.wav", np.stack([audio, audio], axis=1), subtype="FLOAT")
    source = FileSource(stereo, sample_rate_hz=RATE, block_ms=30)
    assert source.audio is None  # read block by block, never whole
    blocks = list(source)
    assert {len(b) for b in blocks[:-1]} == {480}
    np.testing.assert_array_equal(np.concatenate(blocks), audio)
    import soxr

    high = write(tmp_path / "h.wav", soxr.resample(audio, RATE, 48_000), 48_000, subtype="FLOAT")
    resampled = np.concatenate(list(FileSource(high, sample_rate_hz=RATE, block_ms=30)))
    assert abs(len(resampled) - len(audio)) <= 1
    bad = tmp_path / "nan.wav"
    write(bad, np.full(RATE, np.nan), subtype="FLOAT")
    with pytest.raises(Exception, match=r"nan\.wav: contains NaN"):
        list(FileSource(bad, sample_rate_hz=RATE))


def test_file_source_names_a_file_whose_audio_data_is_damaged(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    """A FLAC whose header reads but whose frames do not decode: one error naming the file,
    not libsndfile's exception from the middle of the stream."""
    import soundfile as sf

    good = tmp_path / "good.flac"
    sf.write(good, (0.3 * rng.standard_normal(3 * RATE)).astype(np.float32), RATE)
    data = bytearray(good.read_bytes())
    data[len(data) // 3 :] = rng.integers(
        0, 256, len(data) - len(data) // 3, dtype=np.uint8
    ).tobytes()
    bad = tmp_path / "damaged.flac"
    bad.write_bytes(bytes(data))
    source = FileSource(bad, sample_rate_hz=RATE, block_ms=20)
    with pytest.raises(AudioError, match=r"damaged\.flac: cannot decode the audio"):
        list(source)

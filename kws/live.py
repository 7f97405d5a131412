"""`kws listen`: the streaming detector on a microphone or a recording, with a terminal view.

In: an audio source (`MicSource`: a sounddevice input stream in a thin adapter; `FileSource`:
a recording read in blocks, as fast as possible or in real time) and a
`kws.stream.StreamingDetector`. Out: detections, handed to callbacks as they happen (the
terminal view, JSON lines), and `ListenStats` at the end. The detector never sees a device:
a source only yields float32 chunks at the model's sample rate.
"""

from __future__ import annotations

import json
import queue
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

import numpy as np
import soundfile as sf

from kws.audio import AudioError, audio_info, level_dbfs, load_mono
from kws.stream import Detection, StreamingDetector, WindowScores

__all__ = [
    "FileSource",
    "ListenStats",
    "LiveError",
    "LiveView",
    "MicSource",
    "input_devices",
    "listen",
    "load_sounddevice",
]

DEFAULT_BLOCK_MS = 20.0  # one hop: measured end-to-end latency p90 234 ms (100 ms blocks: 310)
QUEUE_SECONDS = 10.0  # audio the microphone queue holds before blocks are dropped
METER_FLOOR_DBFS = -90.0  # the bottom of the view's level meter


class LiveError(RuntimeError):
    """No audio input: PortAudio or sounddevice missing, no device, a device that fails."""


def load_sounddevice() -> ModuleType:
    """The sounddevice module, or a `LiveError` saying what to install."""
    try:
        import sounddevice
    except ImportError:
        raise LiveError(
            "the microphone needs the sounddevice package: pip install 'kws[live]'"
        ) from None
    except OSError as e:  # sounddevice raises OSError when libportaudio is missing
        raise LiveError(
            f"sounddevice cannot load the PortAudio library ({e}): install it "
            "(Debian/Ubuntu: sudo apt install libportaudio2; Fedora: sudo dnf install "
            "portaudio; macOS: brew install portaudio), or stream a recording with --file"
        ) from None
    return sounddevice


def input_devices(sd: Any) -> list[dict[str, Any]]:
    """Devices with input channels: index, name, channels, default sample rate."""
    try:
        devices = sd.query_devices()
    except Exception as e:  # PortAudioError has no stable base class across versions
        raise LiveError(f"cannot list audio devices ({e})") from None
    return [
        {
            "index": i,
            "name": d["name"],
            "channels": int(d["max_input_channels"]),
            "default_rate_hz": float(d["default_samplerate"]),
        }
        for i, d in enumerate(devices)
        if int(d["max_input_channels"]) > 0
    ]


def _devices_text(devices: list[dict[str, Any]]) -> str:
    return ", ".join(f"{d['index']}: {d['name']}" for d in devices)


class FileSource:
    """A recording in blocks of ``block_ms``; ``realtime`` paces them like a microphone.

    A file at the model's rate is read block by block (memory: one block, whatever its
    length); another rate is read whole and resampled (soxr), as `kws.audio.load_mono` does.
    """

    def __init__(
        self,
        path: Path,
        *,
        sample_rate_hz: int,
        block_ms: float = DEFAULT_BLOCK_MS,
        realtime: bool = False,
    ) -> None:
        self.path = Path(path)
        info = audio_info(self.path)
        self.audio: np.ndarray | None = None  # None: streamed from the file
        if info.samplerate != sample_rate_hz:
            self.audio = load_mono(self.path, sample_rate_hz=sample_rate_hz, resample=True)
        self.sample_rate_hz = sample_rate_hz
        self.block = max(1, round(block_ms * sample_rate_hz / 1000))
        self.realtime = realtime
        self.name = str(self.path)

    def _blocks(self) -> Iterator[np.ndarray]:
        if self.audio is not None:
            for pos in range(0, len(self.audio), self.block):
                yield self.audio[pos : pos + self.block]
            return
        blocks = sf.blocks(self.path, blocksize=self.block, dtype="float32", always_2d=True)
        while True:
            try:
                block = next(blocks)
            except StopIteration:
                return
            except RuntimeError as e:  # damaged data past a sound header (LibsndfileError)
                raise AudioError(self.path, f"cannot decode the audio ({e})") from None
            mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
            if not np.isfinite(mono).all():
                raise AudioError(self.path, "contains NaN or Inf samples")
            yield mono

    def __iter__(self) -> Iterator[np.ndarray]:
        start, pos = time.monotonic(), 0
        for block in self._blocks():
            pos += len(block)
            if self.realtime:
                delay = start + pos / self.sample_rate_hz - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            yield block

    def close(self) -> None:
        pass


class MicSource:
    """Microphone blocks through sounddevice's callback stream, resampled to the model's rate
    when the device cannot record at it. ``backend`` stands in for the sounddevice module
    (tests pass a fake one)."""

    def __init__(
        self,
        *,
        sample_rate_hz: int,
        device: int | None = None,
        block_ms: float = DEFAULT_BLOCK_MS,
        backend: Any = None,
    ) -> None:
        sd = backend if backend is not None else load_sounddevice()
        devices = input_devices(sd)
        if not devices:
            raise LiveError("no audio input device found (is a microphone connected and allowed?)")
        if device is not None and device not in [d["index"] for d in devices]:
            raise LiveError(
                f"--device {device} is not an input device; input devices: {_devices_text(devices)}"
            )
        self.sample_rate_hz = sample_rate_hz
        self.queue: queue.Queue[np.ndarray] = queue.Queue(
            maxsize=max(1, int(QUEUE_SECONDS * 1000 / block_ms))
        )
        self.dropped = 0
        self.overflows = 0
        self._resampler: Any = None
        rate = sample_rate_hz
        try:
            sd.check_input_settings(device=device, samplerate=rate, channels=1, dtype="float32")
        except Exception:  # the device cannot record at the model's rate: resample
            info = next(d for d in devices if device is None or d["index"] == device)
            rate = int(info["default_rate_hz"])
            import soxr

            self._resampler = soxr.ResampleStream(rate, sample_rate_hz, 1, dtype="float32")
        self.device_rate_hz = rate
        name = next((d["name"] for d in devices if d["index"] == device), None)
        self.name = f"microphone {name or 'default input'} ({rate} Hz)"
        try:
            self.stream = sd.InputStream(
                samplerate=rate,
                channels=1,
                dtype="float32",
                blocksize=max(1, round(block_ms * rate / 1000)),
                device=device,
                callback=self._callback,
            )
            self.stream.start()
        except Exception as e:
            raise LiveError(
                f"cannot open the audio input ({e}); input devices: {_devices_text(devices)}"
            ) from None

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status:
            self.overflows += 1
        try:
            self.queue.put_nowait(np.array(indata[:, 0], dtype=np.float32))
        except queue.Full:  # the consumer fell behind by QUEUE_SECONDS: drop, never block
            self.dropped += 1

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            try:
                block = self.queue.get(timeout=1.0)
            except queue.Empty:
                if not getattr(self.stream, "active", True):
                    return
                continue
            if self._resampler is not None:
                block = self._resampler.resample_chunk(block)
            yield block

    def take(self, seconds: float) -> np.ndarray:
        """The next ``seconds`` of audio; what arrived before the call is dropped (`kws record`)."""
        while True:
            try:
                self.queue.get_nowait()
            except queue.Empty:
                break
        need = round(seconds * self.sample_rate_hz)
        blocks, n = [], 0
        for block in self:
            blocks.append(block)
            n += len(block)
            if n >= need:
                break
        if n < need:
            raise LiveError("the audio input stopped before the take was complete")
        return np.concatenate(blocks)[:need]

    def close(self) -> None:
        self.stream.stop()
        self.stream.close()


@dataclass
class ListenStats:
    audio_s: float
    wall_s: float
    cpu_s: float
    hops: int
    detections: list[Detection]
    interrupted: bool

    @property
    def realtime_factor(self) -> float:
        """Wall time per second of audio (below 1: faster than real time)."""
        return self.wall_s / self.audio_s if self.audio_s else float("nan")

    @property
    def cpu_share(self) -> float:
        """CPU time per second of audio: the share of one core that real time needs."""
        return self.cpu_s / self.audio_s if self.audio_s else float("nan")


def listen(
    source: Any,
    detector: StreamingDetector,
    *,
    on_chunk: Callable[[np.ndarray, list[WindowScores]], None] | None = None,
    on_detection: Callable[[Detection], None] | None = None,
) -> ListenStats:
    """Run the detector over a source until it ends or Ctrl-C; the source is closed."""
    samples = hops = 0
    found: list[Detection] = []
    interrupted = False
    wall0, cpu0 = time.perf_counter(), time.process_time()
    try:
        for chunk in source:
            new_hops, detections = detector.update(chunk)
            samples += len(chunk)
            hops += len(new_hops)
            if on_chunk is not None:
                on_chunk(chunk, new_hops)
            for d in detections:
                found.append(d)
                if on_detection is not None:
                    on_detection(d)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        source.close()
    return ListenStats(
        samples / detector.scorer.spec.sample_rate_hz,
        time.perf_counter() - wall0,
        time.process_time() - cpu0,
        hops,
        found,
        interrupted,
    )


def json_printer(out: TextIO) -> Callable[[Detection], None]:
    """One JSON object per detection and line, flushed at once (for pipes)."""

    def emit(detection: Detection) -> None:
        out.write(json.dumps({"event": "detection", **detection.to_dict()}) + "\n")
        out.flush()

    return emit


class LiveView:
    """The terminal view: input level, the latest scores as bars, the detection log."""

    BAR = 30
    LOG = 8

    def __init__(self, labels: tuple[str, ...], *, source: str, threshold: float) -> None:
        self.labels, self.source, self.threshold = labels, source, threshold
        self.level = METER_FLOOR_DBFS
        self.scores = np.zeros(len(labels), np.float32)
        self.log: deque[Detection] = deque(maxlen=self.LOG)
        self.audio_s = 0.0

    def on_chunk(self, chunk: np.ndarray, hops: list[WindowScores]) -> None:
        self.level = level_dbfs(chunk)
        if hops:
            self.scores = hops[-1].scores
            self.audio_s = hops[-1].end_sample  # samples; converted when drawn

    def on_detection(self, detection: Detection) -> None:
        self.log.appendleft(detection)

    def render(self, sample_rate_hz: int) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        def bar(fraction: float, style: str) -> Text:
            filled = round(max(0.0, min(1.0, fraction)) * self.BAR)
            return Text("█" * filled + "·" * (self.BAR - filled), style=style)

        level = Table.grid(padding=(0, 1))
        level.add_row(
            "input",
            bar((self.level - METER_FLOOR_DBFS) / -METER_FLOOR_DBFS, "green"),
            f"{self.level:6.1f} dBFS",
        )
        scores = Table.grid(padding=(0, 1))
        for i in np.argsort(self.scores)[::-1][: min(5, len(self.labels))]:
            s = float(self.scores[i])
            scores.add_row(
                f"{self.labels[i]:>10}",
                bar(s, "bold cyan" if s >= self.threshold else "cyan"),
                f"{s:5.2f}",
            )
        log = Table("time", "word", "score", box=None, padding=(0, 1))
        for d in self.log:
            log.add_row(f"{d.time_s:8.2f} s", d.label, f"{d.score:.2f}")
        title = (
            f"kws listen — {self.source} — {self.audio_s / sample_rate_hz:6.1f} s (Ctrl-C to stop)"
        )
        return Panel(Group(level, Text(""), scores, Text(""), log), title=title)

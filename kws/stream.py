"""Streaming keyword detection: audio chunks of any length in, class scores and detections out.

In: float audio in [-1, 1] at the model's sample rate, in chunks of any length (one sample to
minutes). Out: for every hop (default 20 ms) whose window of one clip length is complete, the
model's class scores for that window (`WindowScores`); after posterior smoothing, a
`Detection` when a keyword fires.

The front end computes each new mel frame once (`features.StreamingMfcc`) and keeps only the
frames and samples of the windows still to come, so memory is bounded by one clip plus the
chunk being fed. A window is scored when its whole clip has arrived, exactly as the training
clips were prepared: the per-clip max normalisation is applied per window through
`features.mfcc_from_mel`. Scores therefore equal the model on `features.mfcc` of the same
clip cut from the recording (to float rounding), and do not depend on how the audio was
chunked (bit for bit).

`PosteriorSmoother` follows TensorFlow Lite Micro's RecognizeCommands: scores are averaged
over a window of time, the top keyword fires when its average reaches the threshold and at
least ``minimum_count`` results are in the window (with a model's calibration,
`kws.calibration`, the averages must also pass the keyword's own threshold, on the same score
as for single clips: the keyword's average against ``_unknown_``'s, a / (a + u)), and nothing
fires again within the suppression time after a detection (the same word may fire again once
it has passed).
Unlike RecognizeCommands, a *different* word cannot fire inside the suppression time either:
in a stream of one-second words a second label that soon is the same word scored twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

import features
from features.spec import ClipNorm
from kws.data.index import LABEL_SILENCE, LABEL_UNKNOWN

__all__ = [
    "DEFAULT_HOP_MS",
    "DEFAULT_SMOOTHING",
    "Detection",
    "PosteriorSmoother",
    "ScoreAverager",
    "SmoothingConfig",
    "StreamError",
    "StreamingDetector",
    "StreamingScorer",
    "WindowModel",
    "WindowScores",
    "check_reachable",
    "load_window_model",
]

DEFAULT_HOP_MS = 20.0
NON_KEYWORDS = (LABEL_SILENCE, LABEL_UNKNOWN)


class StreamError(ValueError):
    """Streaming settings that cannot work with the model (hop, thresholds, labels)."""


# --- the model, one window at a time ------------------------------------------------------
class WindowModel(Protocol):
    """A keyword model that scores one window of features, (frames, coefficients) → (classes,)."""

    labels: tuple[str, ...]
    spec: features.FeatureSpec
    name: str
    thresholds: np.ndarray | None  # per-label floors from the model's calibration

    def scores(self, window: np.ndarray) -> np.ndarray: ...


class _KerasWindowModel:
    def __init__(
        self, model: object, labels: tuple[str, ...], spec: features.FeatureSpec, name: str
    ) -> None:
        import tensorflow as tf

        self.labels, self.spec, self.name = labels, spec, name
        self.thresholds: np.ndarray | None = None
        self._call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def scores(self, window: np.ndarray) -> np.ndarray:
        return np.asarray(self._call(window[None].astype(np.float32)))[0]


class _TFLiteWindowModel:
    def __init__(
        self, model: object, labels: tuple[str, ...], spec: features.FeatureSpec, name: str
    ) -> None:
        self.labels, self.spec, self.name = labels, spec, name
        self.thresholds: np.ndarray | None = None
        self._model = model  # kws.export.runtime.TFLiteModel

    def scores(self, window: np.ndarray) -> np.ndarray:
        return self._model.predict_one(window)  # type: ignore[attr-defined]


def load_window_model(
    target: Path,
    *,
    labels: Sequence[str] | None = None,
    spec: features.FeatureSpec | None = None,
    calibrated: bool = True,
) -> WindowModel:
    """A run directory (its model.keras), a .keras or a .tflite file (float or int8), with the
    label order and feature spec of its run, or the ones given for a model trained elsewhere;
    with ``calibrated``, the per-keyword thresholds of its calibration when it has one."""
    from kws.calibration import load_calibration
    from kws.evaluate import KerasPredictor, load_predictor, model_file

    predictor, model_labels, model_spec, _ = load_predictor(Path(target), labels=labels, spec=spec)
    name = str(target)
    model: _KerasWindowModel | _TFLiteWindowModel
    if isinstance(predictor, KerasPredictor):
        model = _KerasWindowModel(predictor.model, model_labels, model_spec, name)
    else:
        model = _TFLiteWindowModel(predictor.model, model_labels, model_spec, name)  # type: ignore[attr-defined]
    if calibrated:
        calibration = load_calibration(model_file(Path(target)), model_labels)
        if calibration is not None:
            model.thresholds = np.asarray(calibration.thresholds, dtype=np.float64)
    return model


# --- scores per hop ------------------------------------------------------------------------
@dataclass(frozen=True)
class WindowScores:
    """The model's scores for the window of audio that ends at ``end_sample``."""

    end_sample: int
    scores: np.ndarray  # (classes,) float32
    peak: float  # the window's largest sample (its normalisation), for level meters


def hop_frames(spec: features.FeatureSpec, hop_ms: float) -> int:
    """Frames per hop; the hop must be a whole number of feature strides."""
    frames = hop_ms / spec.stride_ms
    if hop_ms <= 0 or abs(frames - round(frames)) > 1e-9:
        raise StreamError(
            f"--hop-ms must be a positive multiple of the feature stride ({spec.stride_ms:g} ms), "
            f"got {hop_ms:g}"
        )
    return round(frames)


class StreamingScorer:
    """Audio chunks in, `WindowScores` out for every hop whose clip-length window is complete.

    Window w covers samples [w·hop, w·hop + clip) and feature frames [w·h, w·h + frames), with
    h frames per hop; it is scored when its last sample has arrived.
    """

    def __init__(self, model: WindowModel, *, hop_ms: float = DEFAULT_HOP_MS) -> None:
        self.model = model
        spec = model.spec
        self.spec = spec
        self.hop_frames = hop_frames(spec, hop_ms)
        self.hop_samples = self.hop_frames * spec.stride_samples
        self._frontend = features.StreamingMfcc(spec)
        self.reset()

    def reset(self) -> None:
        """Back to the start of a stream: no samples, no frames, window 0 next."""
        self._frontend.reset()
        self._audio = np.zeros(0, np.float32)  # samples from the next window's start on
        self._mel = np.zeros((0, self.spec.mel_bands), np.float32)  # its frames on
        self._audio_start = 0  # stream sample index of self._audio[0]
        self._mel_start = 0  # stream frame index of self._mel[0]
        self.next_window = 0
        self.samples_seen = 0

    def update(self, chunk: np.ndarray) -> list[WindowScores]:
        """Feed a chunk (n,) of float audio; return the windows it completed, in order."""
        x = np.asarray(chunk)
        new_mel = self._frontend.update_mel(x)  # validates shape and dtype
        x = x.astype(np.float32, copy=False)
        self._audio = np.concatenate([self._audio, x]) if self._audio.size else x.copy()
        self._mel = np.concatenate([self._mel, new_mel]) if len(self._mel) else new_mel
        self.samples_seen += x.size
        spec = self.spec
        out = []
        while (
            start := self.next_window * self.hop_samples
        ) + spec.clip_samples <= self.samples_seen:
            a = start - self._audio_start
            clip = self._audio[a : a + spec.clip_samples]
            f = self.next_window * self.hop_frames - self._mel_start
            mel = self._mel[f : f + spec.num_frames]
            peak = float(clip.max())
            gain = 1.0
            if spec.clip_norm is ClipNorm.MAX and peak != 0:
                gain = 1.0 / float(np.float32(peak))
            window = features.mfcc_from_mel(mel, spec=spec, gain=gain)
            scores = np.asarray(self.model.scores(window), dtype=np.float32)
            out.append(WindowScores(start + spec.clip_samples, scores, peak))
            self.next_window += 1
        # keep only what the windows still to come need
        keep_from = self.next_window * self.hop_samples
        drop = keep_from - self._audio_start
        if drop > 0:
            self._audio = self._audio[drop:].copy()
            self._audio_start = keep_from
        frame_from = self.next_window * self.hop_frames
        drop = frame_from - self._mel_start
        if drop > 0:
            self._mel = self._mel[drop:].copy()
            self._mel_start = frame_from
        return out


# --- posterior smoothing -------------------------------------------------------------------
@dataclass(frozen=True)
class SmoothingConfig:
    """How scores become detections (RecognizeCommands' settings, times in milliseconds)."""

    average_window_ms: float = 400.0
    threshold: float = 0.7
    suppression_ms: float = 1500.0
    minimum_count: int = 3

    def __post_init__(self) -> None:
        # one type for the times (300 and 300.0 print and compare alike in reports)
        object.__setattr__(self, "average_window_ms", float(self.average_window_ms))
        object.__setattr__(self, "suppression_ms", float(self.suppression_ms))
        if not (math.isfinite(self.average_window_ms) and self.average_window_ms > 0):
            raise StreamError(f"average window must be > 0 ms, got {self.average_window_ms:g}")
        if not 0 <= self.threshold <= 1:
            raise StreamError(f"threshold must be in [0, 1], got {self.threshold:g}")
        if not (math.isfinite(self.suppression_ms) and self.suppression_ms >= 0):
            raise StreamError(f"suppression must be >= 0 ms, got {self.suppression_ms:g}")
        if self.minimum_count < 1:
            raise StreamError(f"minimum count must be >= 1, got {self.minimum_count}")


DEFAULT_SMOOTHING = SmoothingConfig()


def check_reachable(config: SmoothingConfig, spec: features.FeatureSpec, hop_ms: float) -> None:
    """Refuse an averaging window that can never hold ``minimum_count`` results at this hop
    (nothing would ever fire, silently); `StreamError` for a hop `hop_frames` refuses too."""
    hop = hop_frames(spec, hop_ms) * spec.stride_samples
    window = round(config.average_window_ms * spec.sample_rate_hz / 1000)
    most = window // hop + 1  # results whose time lies within the window, inclusive
    if most < config.minimum_count:
        raise StreamError(
            f"an average over {config.average_window_ms:g} ms holds at most {most} results "
            f"at a {hop_ms:g} ms hop, so --min-count {config.minimum_count} is never "
            "reached: lengthen the window or lower the count"
        )


@dataclass(frozen=True)
class Detection:
    """A keyword that fired: its label, averaged score and stream time (end of its window)."""

    label: str
    score: float
    time_s: float

    def to_dict(self) -> dict[str, object]:
        return {"label": self.label, "score": round(self.score, 4), "time_s": round(self.time_s, 3)}


class ScoreAverager:
    """Mean of the scores that arrived within the last ``window`` samples (inclusive)."""

    def __init__(self, *, window_samples: int) -> None:
        self.window_samples = window_samples
        self.reset()

    def reset(self) -> None:
        # rows [first, end) of a growing buffer hold the scores in the window, oldest first
        # (one contiguous slice to average, no per-hop stacking of a list)
        self._times = np.zeros(0, np.int64)
        self._rows = np.zeros((0, 0), np.float32)
        self._first = self._end = 0

    def push(self, scores: np.ndarray, sample: int) -> tuple[np.ndarray, int]:
        """Add scores at stream sample ``sample``; return (average, how many were averaged)."""
        row = np.asarray(scores, dtype=np.float32).reshape(-1)
        if self._end > self._first and sample < self._times[self._end - 1]:
            raise StreamError(
                f"scores must arrive in time order ({sample} after {self._times[self._end - 1]})"
            )
        if self._end == len(self._times) or self._rows.shape[1] != row.size:
            self._compact(row.size)
        self._times[self._end] = sample
        self._rows[self._end] = row
        self._end += 1
        while sample - self._times[self._first] > self.window_samples:
            self._first += 1
        return (
            np.mean(self._rows[self._first : self._end], axis=0, dtype=np.float64),
            self._end - self._first,
        )

    def _compact(self, classes: int) -> None:
        """Move the window's rows to the front of a buffer with room for as many again."""
        n = self._end - self._first
        if self._rows.shape[1] != classes:
            if n:
                raise StreamError(f"scores changed from {self._rows.shape[1]} to {classes} classes")
            self._rows = np.zeros((0, classes), np.float32)
        size = max(64, 2 * n + 1)
        times, rows = np.zeros(size, np.int64), np.zeros((size, classes), np.float32)
        times[:n] = self._times[self._first : self._end]
        rows[:n] = self._rows[self._first : self._end]
        self._times, self._rows, self._first, self._end = times, rows, 0, n


class _Decider:
    """Threshold, minimum count and suppression on averaged scores."""

    def __init__(
        self,
        config: SmoothingConfig,
        keyword: np.ndarray,
        suppression: int,
        floors: np.ndarray | None = None,
    ) -> None:
        self.config, self.keyword, self.suppression = config, keyword, suppression
        # the calibration's per-label thresholds on the score against _unknown_ (0: none)
        self.floors = np.zeros(len(keyword)) if floors is None else np.asarray(floors, float)
        self.reset()

    def reset(self) -> None:
        self.last_sample: int | None = None

    def step(self, top: int, score: float, versus: float, count: int, sample: int) -> bool:
        """``score``: the top label's average; ``versus``: that against ``_unknown_``'s."""
        if count < self.config.minimum_count or not self.keyword[top]:
            return False
        if score < self.config.threshold or versus < self.floors[top]:
            return False
        if self.last_sample is not None and sample - self.last_sample <= self.suppression:
            return False
        self.last_sample = sample
        return True


class PosteriorSmoother:
    """Scores per hop in, a `Detection` (or None) out; see the module docstring.

    ``_silence_`` and ``_unknown_`` never fire; they take part in the average, so a window
    that looks like silence or another word keeps the keywords' averages down.
    """

    def __init__(
        self,
        labels: Sequence[str],
        config: SmoothingConfig = DEFAULT_SMOOTHING,
        *,
        sample_rate_hz: int,
        class_thresholds: np.ndarray | None = None,
    ) -> None:
        self.labels = tuple(labels)
        self.config = config
        self.sample_rate_hz = sample_rate_hz
        keyword = np.array([label not in NON_KEYWORDS for label in self.labels])
        if not keyword.any():
            raise StreamError(f"no keyword among the model's labels {list(self.labels)}")
        self.unknown = _unknown_index(self.labels)
        self.averager = ScoreAverager(window_samples=self._samples(config.average_window_ms))
        if class_thresholds is not None and len(class_thresholds) != len(self.labels):
            raise StreamError(f"{len(class_thresholds)} thresholds for {len(self.labels)} labels")
        self.decider = _Decider(
            config, keyword, self._samples(config.suppression_ms), class_thresholds
        )

    def _samples(self, ms: float) -> int:
        return round(ms * self.sample_rate_hz / 1000)

    def reset(self) -> None:
        self.averager.reset()
        self.decider.reset()

    def update(self, scores: np.ndarray, *, sample: int) -> Detection | None:
        """Scores of the window ending at stream sample ``sample``."""
        if len(scores) != len(self.labels):
            raise StreamError(f"{len(scores)} scores for {len(self.labels)} labels")
        average, count = self.averager.push(scores, sample)
        top = int(np.argmax(average))
        versus = _versus_unknown(average, top, self.unknown)
        if not self.decider.step(top, float(average[top]), versus, count, sample):
            return None
        return Detection(self.labels[top], float(average[top]), sample / self.sample_rate_hz)


def _unknown_index(labels: Sequence[str]) -> int | None:
    return tuple(labels).index(LABEL_UNKNOWN) if LABEL_UNKNOWN in labels else None


def _versus_unknown(average: np.ndarray, top: int, unknown: int | None) -> float:
    """The top label's averaged score against ``_unknown_``'s (`kws.calibration`); 1 for
    labels without ``_unknown_`` (no calibration applies to them)."""
    if unknown is None:
        return 1.0
    total = float(average[top]) + float(average[unknown])
    return float(average[top]) / total if total > 0 else 0.0


def smoothed_tops(
    hops: Iterable[WindowScores],
    *,
    labels: Sequence[str],
    average_window_ms: float,
    sample_rate_hz: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(end samples, top label ids, top averaged scores, those against ``_unknown_``,
    counts) of a scored stream: what the smoother decides on, computed once so that many
    thresholds can be tried cheaply."""
    averager = ScoreAverager(window_samples=round(average_window_ms * sample_rate_hz / 1000))
    unknown = _unknown_index(labels)
    ends, tops, best, versus, counts = [], [], [], [], []
    for hop in hops:
        average, count = averager.push(hop.scores, hop.end_sample)
        top = int(np.argmax(average))
        ends.append(hop.end_sample)
        tops.append(top)
        best.append(float(average[top]))
        versus.append(_versus_unknown(average, top, unknown))
        counts.append(count)
    return (
        np.array(ends, np.int64),
        np.array(tops, np.int64),
        np.array(best, np.float64),
        np.array(versus, np.float64),
        np.array(counts, np.int64),
    )


def detections_at(
    labels: Sequence[str],
    tops: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    config: SmoothingConfig,
    *,
    sample_rate_hz: int,
    class_thresholds: np.ndarray | None = None,
) -> list[Detection]:
    """The detections `PosteriorSmoother` makes with ``config`` from `smoothed_tops` output
    (same averaging window): the same decisions, without re-averaging."""
    smoother = PosteriorSmoother(
        labels, config, sample_rate_hz=sample_rate_hz, class_thresholds=class_thresholds
    )
    decider = smoother.decider
    out = []
    for end, top, score, versus, count in zip(*tops, strict=True):
        if decider.step(int(top), float(score), float(versus), int(count), int(end)):
            out.append(
                Detection(smoother.labels[int(top)], float(score), int(end) / sample_rate_hz)
            )
    return out


class StreamingDetector:
    """`StreamingScorer` + `PosteriorSmoother`: audio chunks in, detections out."""

    def __init__(
        self,
        model: WindowModel,
        *,
        hop_ms: float = DEFAULT_HOP_MS,
        smoothing: SmoothingConfig = DEFAULT_SMOOTHING,
    ) -> None:
        self.scorer = StreamingScorer(model, hop_ms=hop_ms)
        check_reachable(smoothing, model.spec, hop_ms)
        self.smoother = PosteriorSmoother(
            model.labels,
            smoothing,
            sample_rate_hz=model.spec.sample_rate_hz,
            class_thresholds=getattr(model, "thresholds", None),
        )
        self.labels = model.labels

    def reset(self) -> None:
        self.scorer.reset()
        self.smoother.reset()

    def update(self, chunk: np.ndarray) -> tuple[list[WindowScores], list[Detection]]:
        """Feed a chunk; return the hops it completed and the detections they made."""
        hops = self.scorer.update(chunk)
        found = []
        for hop in hops:
            detection = self.smoother.update(hop.scores, sample=hop.end_sample)
            if detection is not None:
                found.append(detection)
        return hops, found


def chunks(audio: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """Consecutive pieces of ``size`` samples (the last may be shorter)."""
    for start in range(0, len(audio), size):
        yield audio[start : start + size]


def score_stream(
    model: WindowModel,
    audio: np.ndarray,
    *,
    hop_ms: float = DEFAULT_HOP_MS,
    chunk_ms: float = 100.0,
) -> list[WindowScores]:
    """Every hop's scores for a recording, fed through `StreamingScorer` in chunks."""
    scorer = StreamingScorer(model, hop_ms=hop_ms)
    size = max(1, math.floor(chunk_ms * model.spec.sample_rate_hz / 1000))
    out: list[WindowScores] = []
    for piece in chunks(audio, size):
        out.extend(scorer.update(piece))
    return out

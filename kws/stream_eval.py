"""`kws stream-eval`: how a streaming detector does on a long recording with known words.

In: a model (`kws.stream.WindowModel`), the recording, its ground truth (`StreamWord` list:
keywords and other words, each with the span of the spoken word), smoothing settings, a
matching tolerance, thresholds and (optionally) averaging windows to sweep. Out: a
`StreamReport`: the metrics at the chosen settings, the same metrics for every threshold of
the sweep at each averaging window (the operating curves; the model runs once whatever is
swept), the detections and their latencies.

Matching: a detection at time t belongs to a spoken word when t lies in
[start of the word's clip, word end + tolerance] (a detector may fire on the onset of a word,
before the voiced span that the truth marks begins, but not before its recording does); each
word takes at most one detection (a second one is a false accept), a detection of a word's
own label is preferred over one of another word's.

- correct: a keyword detected with its label; wrong: a keyword detected as another keyword;
  missed: a keyword with no detection. Percentages are of the keywords spoken.
- false accepts: detections on other (``_unknown_``) words and on no word at all (noise,
  silence, a second detection of the same word), per hour of audio.
- TensorFlow's streaming metrics (test_streaming_accuracy) are percentages of all words
  spoken, other words included: matched (any detection), correct, wrong (other label,
  including detections of other words), false positives (detections matching no word).
- latency: detection time minus the end of the word, for correct detections.

Each detection also keeps the word it was matched to (None on no word), so that false
accepts can be traced to the clips that caused them (`false_accept_sources`): a stream
built from a small pool of other words repeats each clip many times, and one clip that a
model takes for a keyword can make most of its false accepts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kws.data.index import LABEL_UNKNOWN
from kws.data.streams import StreamWord
from kws.stream import (
    DEFAULT_HOP_MS,
    DEFAULT_SMOOTHING,
    Detection,
    SmoothingConfig,
    WindowModel,
    check_reachable,
    detections_at,
    score_stream,
    smoothed_tops,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "FalseAcceptSource",
    "StreamMetrics",
    "StreamReport",
    "evaluate_stream",
    "false_accept_sources",
    "score_detections",
]

DEFAULT_TOLERANCE_MS = 750.0
DEFAULT_THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.30, 0.991, 0.02))


@dataclass
class StreamMetrics:
    average_window_ms: float  # the averaging window the detections were made with
    threshold: float
    hours: float
    keywords: int
    other_words: int
    correct: int
    wrong: int
    missed: int
    false_accepts: int
    false_accepts_on_words: int  # of the false accepts, those on other words
    tf_matched_pct: float
    tf_correct_pct: float
    tf_wrong_pct: float
    tf_false_positive_pct: float
    latency_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def correct_pct(self) -> float:
        return 100 * self.correct / self.keywords if self.keywords else float("nan")

    @property
    def wrong_pct(self) -> float:
        return 100 * self.wrong / self.keywords if self.keywords else float("nan")

    @property
    def miss_pct(self) -> float:
        return 100 * self.missed / self.keywords if self.keywords else float("nan")

    @property
    def false_accepts_per_hour(self) -> float:
        return self.false_accepts / self.hours if self.hours else float("nan")

    def latency_percentile(self, q: float) -> float:
        return float(np.percentile(self.latency_ms, q)) if self.latency_ms else float("nan")

    def to_dict(self, *, latencies: bool = False) -> dict[str, Any]:
        # fields in order, the window first: a sweep reads as (window, threshold) rows
        out = {k: v for k, v in dataclasses.asdict(self).items() if k != "latency_ms"}
        out.update(
            correct_pct=self.correct_pct,
            wrong_pct=self.wrong_pct,
            miss_pct=self.miss_pct,
            false_accepts_per_hour=self.false_accepts_per_hour,
            latency_median_ms=self.latency_percentile(50),
            latency_p90_ms=self.latency_percentile(90),
        )
        if latencies:
            out["latency_ms"] = self.latency_ms
        return out


@dataclass(frozen=True)
class FalseAcceptSource:
    """The false accepts of the operating point made on one clip of the stream (or, with
    ``word`` "", on no word at all: noise, silence, a second detection of a word). A truth
    without a ``source`` column names no clip: its words are then grouped by label alone."""

    source: str  # the clip's file, as the truth names it ("" for no word or a nameless clip)
    word: str  # its label in the truth ("" for no word, which no truth label is)
    count: int  # false accepts on it
    times_in_stream: int  # how often the stream plays this clip (0: no word, or not named)
    detected: tuple[tuple[str, int], ...]  # which keywords fired, and how often, by label

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "detected": dict(self.detected)}


@dataclass
class StreamReport:
    model: str
    hop_ms: float
    smoothing: SmoothingConfig
    tolerance_ms: float
    seconds: float
    operating: StreamMetrics
    sweep: list[StreamMetrics]
    detections: list[Detection]
    outcomes: list[str]  # per detection: correct, wrong, false_accept
    windows: list[StreamMetrics] = field(default_factory=list)  # each window, chosen threshold
    matched: list[StreamWord | None] = field(default_factory=list)  # per detection: its word
    false_accepts: list[FalseAcceptSource] = field(default_factory=list)  # by clip, most first

    def curve(self, average_window_ms: float | None = None) -> list[StreamMetrics]:
        """The threshold sweep at one averaging window (default: the chosen one)."""
        window = self.smoothing.average_window_ms
        if average_window_ms is not None:
            window = float(average_window_ms)
        return [m for m in self.sweep if m.average_window_ms == window]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "hop_ms": self.hop_ms,
            "smoothing": dataclasses.asdict(self.smoothing),
            "tolerance_ms": self.tolerance_ms,
            "seconds": self.seconds,
            "metrics": self.operating.to_dict(),
            "sweep": [m.to_dict() for m in self.sweep],
            "windows": [m.to_dict() for m in self.windows],
            "false_accept_sources": [f.to_dict() for f in self.false_accepts],
        }


def false_accept_sources(
    detections: Sequence[Detection],
    outcomes: Sequence[str],
    matched: Sequence[StreamWord | None],
    truth: Sequence[StreamWord] = (),
) -> list[FalseAcceptSource]:
    """The false accepts grouped by the clip they were made on, most first (ties by source);
    ``outcomes`` and ``matched`` as `score_detections` returns them (in the detections' time
    order); ``truth`` counts how often each clip is played (0 when not given or not named)."""
    plays: dict[tuple[str, str], int] = {}
    for w in truth:
        plays[w.source, w.label] = plays.get((w.source, w.label), 0) + 1
    groups: dict[tuple[str, str], dict[str, int]] = {}
    in_time = sorted(detections, key=lambda d: d.time_s)  # stable, as in score_detections
    for d, o, w in zip(in_time, outcomes, matched, strict=True):
        if o != "false_accept":
            continue
        key = ("", "") if w is None else (w.source, w.label)
        fired = groups.setdefault(key, {})
        fired[d.label] = fired.get(d.label, 0) + 1
    out = [
        FalseAcceptSource(
            source=source,
            word=word,
            count=sum(fired.values()),
            times_in_stream=plays.get((source, word), 0) if word and source else 0,
            detected=tuple(sorted(fired.items())),
        )
        for (source, word), fired in groups.items()
    ]
    return sorted(out, key=lambda f: (-f.count, f.source))


def score_detections(
    detections: Sequence[Detection],
    truth: Sequence[StreamWord],
    *,
    seconds: float,
    threshold: float,
    average_window_ms: float,
    tolerance_ms: float = DEFAULT_TOLERANCE_MS,
) -> tuple[StreamMetrics, list[str], list[StreamWord | None]]:
    """Match detections to the spoken words; see the module docstring. Returns the metrics,
    each detection's outcome and the word it was matched to (None: on no word), in the
    detections' time order."""
    tolerance = tolerance_ms / 1000
    words = sorted(truth, key=lambda w: w.start_s)
    starts = np.array([w.clip_start_s for w in words])
    ends = np.array([w.end_s for w in words])
    taken = np.zeros(len(words), dtype=bool)
    is_keyword = [w.label != LABEL_UNKNOWN for w in words]
    correct = wrong = fa = fa_words = 0
    tf_matched = tf_correct = tf_wrong = tf_fp = 0
    outcomes: list[str] = []
    matched: list[StreamWord | None] = []
    latency: list[float] = []
    for d in sorted(detections, key=lambda d: d.time_s):
        # words whose [start, end + tolerance] holds the detection and are not taken yet,
        # earliest first; a word of the detection's own label first of all
        candidates = np.flatnonzero((starts <= d.time_s) & (ends + tolerance >= d.time_s) & ~taken)
        own = [i for i in candidates if words[i].label == d.label]
        if candidates.size == 0:
            fa += 1
            tf_fp += 1
            outcomes.append("false_accept")
            matched.append(None)
            continue
        i = int(own[0] if own else candidates[0])
        taken[i] = True
        matched.append(words[i])
        tf_matched += 1
        if words[i].label == d.label:
            tf_correct += 1
        else:
            tf_wrong += 1
        if not is_keyword[i]:
            fa += 1
            fa_words += 1
            outcomes.append("false_accept")
        elif words[i].label == d.label:
            correct += 1
            latency.append(1000 * (d.time_s - words[i].end_s))
            outcomes.append("correct")
        else:
            wrong += 1
            outcomes.append("wrong")
    keywords = sum(is_keyword)
    n = len(words)

    def pct(k: int) -> float:
        return 100 * k / n if n else float("nan")

    metrics = StreamMetrics(
        threshold=threshold,
        hours=seconds / 3600,
        keywords=keywords,
        other_words=n - keywords,
        correct=correct,
        wrong=wrong,
        missed=keywords - correct - wrong,
        false_accepts=fa,
        false_accepts_on_words=fa_words,
        tf_matched_pct=pct(tf_matched),
        tf_correct_pct=pct(tf_correct),
        tf_wrong_pct=pct(tf_wrong),
        tf_false_positive_pct=pct(tf_fp),
        average_window_ms=average_window_ms,
        latency_ms=latency,
    )
    return metrics, outcomes, matched


def evaluate_stream(
    model: WindowModel,
    audio: np.ndarray,
    truth: Sequence[StreamWord],
    *,
    hop_ms: float = DEFAULT_HOP_MS,
    smoothing: SmoothingConfig = DEFAULT_SMOOTHING,
    tolerance_ms: float = DEFAULT_TOLERANCE_MS,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    average_windows_ms: Sequence[float] = (),
    chunk_ms: float = 100.0,
) -> StreamReport:
    """Stream the recording through the model once, then smooth, detect and match at the
    chosen settings and at every threshold of the sweep, for the chosen averaging window and
    each of ``average_windows_ms`` (sweep rows ordered by window, then threshold; ``windows``:
    each window at the chosen threshold)."""
    rate = model.spec.sample_rate_hz
    seconds = len(audio) / rate
    windows = sorted({smoothing.average_window_ms, *map(float, average_windows_ms)})
    for window in windows:  # a window that cannot work is refused before the model runs
        config = dataclasses.replace(smoothing, average_window_ms=window)
        check_reachable(config, model.spec, hop_ms)
    hops = score_stream(model, audio, hop_ms=hop_ms, chunk_ms=chunk_ms)
    tops = {
        w: smoothed_tops(hops, labels=model.labels, average_window_ms=w, sample_rate_hz=rate)
        for w in windows
    }

    def at(
        window: float, threshold: float
    ) -> tuple[StreamMetrics, list[Detection], list[str], list[StreamWord | None]]:
        config = dataclasses.replace(smoothing, threshold=threshold, average_window_ms=window)
        found = detections_at(
            model.labels, tops[window], config, sample_rate_hz=rate,
            class_thresholds=getattr(model, "thresholds", None),
        )  # fmt: skip
        found = sorted(found, key=lambda d: d.time_s)  # the order of outcomes and matched
        metrics, outcomes, matched = score_detections(
            found, truth, seconds=seconds, threshold=threshold, tolerance_ms=tolerance_ms,
            average_window_ms=window,
        )  # fmt: skip
        return metrics, found, outcomes, matched

    chosen = {w: at(w, smoothing.threshold) for w in windows}  # each window at the threshold
    operating, found, outcomes, matched = chosen[smoothing.average_window_ms]
    sweep = [at(w, t)[0] for w in windows for t in sorted(set(thresholds))]
    by_window = [chosen[w][0] for w in windows]
    return StreamReport(
        model.name, hop_ms, smoothing, tolerance_ms, seconds, operating, sweep, found, outcomes,
        by_window, matched, false_accept_sources(found, outcomes, matched, truth),
    )  # fmt: skip

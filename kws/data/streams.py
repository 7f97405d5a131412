"""Long test recordings for streaming evaluation, like TensorFlow's generate_streaming_test_wav.

In: a keyword dataset folder, the keywords, which splits to draw from (by default the
speakers not used for training: validation and testing), the length in minutes and a seed.
Out: the audio (float32, mono) and its ground truth, one `StreamWord` per spoken word: the
label (a keyword or ``_unknown_``), where the clip was placed, and where the word itself
starts and ends in the stream (its voiced part, found from the clip's energy), so that
detection latency can be measured from the end of the word.

Words are placed every ``word_gap_ms`` with a uniform jitter, about ``unknown_fraction`` of
them other words, over a bed of the dataset's background noise (segments of random files at
a random volume up to ``background_volume``). Everything random comes from one seeded
generator: the same data, options and seed give the same samples.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kws.audio import AudioError, load_mono
from kws.data.augment import voiced_span
from kws.data.index import (
    BACKGROUND_NOISE,
    LABEL_SILENCE,
    LABEL_UNKNOWN,
    SPLITS,
    DataError,
    IndexOptions,
    scan_folders,
    speaker_of,
    which_set,
)

__all__ = [
    "StreamOptions",
    "StreamWord",
    "make_stream",
    "pool_summary",
    "read_truth",
    "voiced_span",
    "write_truth",
]

NOISE_SEGMENT_S = (5.0, 20.0)  # the noise bed changes file and volume this often
INDEX_DEFAULTS = IndexOptions()
TRUTH_FIELDS = ("label", "start_s", "end_s", "clip_start_s", "source")


@dataclass(frozen=True)
class StreamOptions:
    """What `make_stream` builds (shared by the CLI and tests)."""

    minutes: float = 10.0
    word_gap_ms: float = 2000.0
    jitter_ms: float = 500.0
    unknown_fraction: float = 0.3
    background_volume: float = 0.1
    splits: tuple[str, ...] = ("validation", "testing")
    seed: int = 0

    def __post_init__(self) -> None:
        if self.minutes <= 0:
            raise DataError(f"--minutes must be > 0, got {self.minutes:g}")
        if self.word_gap_ms < 1000:
            raise DataError(f"--word-gap-ms must be >= 1000 (one clip), got {self.word_gap_ms:g}")
        if not 0 <= self.jitter_ms <= (self.word_gap_ms - 1000) / 2:
            raise DataError(
                f"--jitter-ms must be in [0, (word gap - 1000) / 2] so that clips never overlap, "
                f"got {self.jitter_ms:g}"
            )
        if not 0 <= self.unknown_fraction <= 1:
            raise DataError(f"--unknown-fraction must be in [0, 1], got {self.unknown_fraction:g}")
        if not 0 <= self.background_volume <= 1:
            raise DataError(
                f"--background-volume must be in [0, 1], got {self.background_volume:g}"
            )
        bad = [s for s in self.splits if s not in SPLITS]
        if bad or not self.splits:
            raise DataError(f"splits must be among {list(SPLITS)}, got {list(self.splits)}")


@dataclass(frozen=True)
class StreamWord:
    """One word of a stream: label, the word's voiced span and where its clip starts (s)."""

    label: str
    start_s: float
    end_s: float
    clip_start_s: float
    source: str


def _pools(
    root: Path, words: tuple[str, ...], options: StreamOptions, index: IndexOptions, as_test: bool
) -> tuple[dict[str, list[str]], list[str]]:
    folders, _ = scan_folders(root, index)
    noise = folders.pop(BACKGROUND_NOISE, [])
    missing = [w for w in words if not folders.get(w)]
    if missing:
        raise DataError(f"{root}: no files for word(s) {missing}")
    pools: dict[str, list[str]] = {w: [] for w in (*words, LABEL_UNKNOWN)}
    for folder, files in folders.items():
        if folder == LABEL_SILENCE:
            continue
        label = folder if folder in words else LABEL_UNKNOWN
        for f in files:
            split = (
                "testing"
                if as_test
                else which_set(
                    f,
                    validation_percentage=index.validation_percentage,
                    testing_percentage=index.testing_percentage,
                )
            )
            if split in options.splits or as_test:
                pools[label].append(f)
    empty = [w for w in words if not pools[w]]
    if empty:
        raise DataError(f"{root}: no files of {empty} in the {'/'.join(options.splits)} split")
    return pools, noise


def _noise_bed(
    root: Path, files: list[str], n: int, volume: float, rate: int, rng: np.random.Generator
) -> np.ndarray:
    bed = np.zeros(n, np.float32)
    recordings = []
    for rel in files:
        try:
            recordings.append(load_mono(root / rel, sample_rate_hz=rate, resample=True))
        except AudioError:
            continue
    recordings = [r for r in recordings if r.size > 0]
    if not recordings or volume == 0:
        return bed
    pos = 0
    while pos < n:
        length = min(n - pos, int(rng.uniform(*NOISE_SEGMENT_S) * rate))
        rec = recordings[int(rng.integers(len(recordings)))]
        gain = np.float32(rng.uniform(0, volume))
        if rec.size >= length:
            start = int(rng.integers(rec.size - length + 1))
            bed[pos : pos + length] = rec[start : start + length] * gain
        else:  # a short recording is looped
            reps = np.tile(rec, math.ceil(length / rec.size))[:length]
            bed[pos : pos + length] = reps * gain
        pos += length
    return bed


def pool_summary(truth: Sequence[StreamWord]) -> dict[str, tuple[int, int, int]]:
    """For the keywords and for the other words of a stream: (words played, distinct clips,
    distinct speakers). A stream built from a small pool plays each clip many times, and its
    false accepts then measure few speakers. Words whose clip the truth does not name count
    as played, not as clips."""
    out: dict[str, tuple[int, int, int]] = {}
    for kind, chosen in (
        ("keywords", [w for w in truth if w.label != LABEL_UNKNOWN]),
        ("other words", [w for w in truth if w.label == LABEL_UNKNOWN]),
    ):
        clips = {w.source for w in chosen if w.source}
        out[kind] = (len(chosen), len(clips), len({speaker_of(c) for c in clips}))
    return out


def make_stream(
    root: Path | str,
    *,
    words: list[str] | tuple[str, ...],
    options: StreamOptions = StreamOptions(),
    index: IndexOptions = INDEX_DEFAULTS,
    as_test: bool = False,
    sample_rate_hz: int = 16_000,
) -> tuple[np.ndarray, list[StreamWord]]:
    """Build a stream; see the module docstring. ``as_test`` reads an official test-set folder
    as it is (every file, other words' folders and ``_unknown_/`` as unknown words)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    words = tuple(words)
    if not words:
        raise DataError("no words given (--words yes,no,...)")
    pools, noise_files = _pools(root, words, options, index, as_test)
    rng = np.random.default_rng(options.seed)
    rate = sample_rate_hz
    total = int(options.minutes * 60 * rate)
    gap = options.word_gap_ms / 1000
    audio = _noise_bed(root, noise_files, total, options.background_volume, rate, rng)
    truth: list[StreamWord] = []
    slots = int((total / rate - 1 - options.jitter_ms / 1000) // gap)
    use_unknown = bool(pools[LABEL_UNKNOWN]) and options.unknown_fraction > 0
    for slot in range(slots):
        if use_unknown and rng.random() < options.unknown_fraction:
            label = LABEL_UNKNOWN
        else:
            label = words[int(rng.integers(len(words)))]
        pool = pools[label]
        rel = pool[int(rng.integers(len(pool)))]
        clip = load_mono(root / rel, sample_rate_hz=rate, resample=True)[:rate]
        jitter = rng.uniform(-options.jitter_ms, options.jitter_ms) / 1000
        start = round((gap / 2 + slot * gap + jitter) * rate)
        if start + clip.size > total:
            break
        audio[start : start + clip.size] += clip
        first, last = voiced_span(clip, sample_rate_hz=rate)
        truth.append(
            StreamWord(label, (start + first) / rate, (start + last) / rate, start / rate, rel)
        )
    np.clip(audio, -1.0, 1.0, out=audio)
    return audio, truth


def write_truth(path: Path, truth: list[StreamWord]) -> None:
    """The ground truth as CSV (label, start_s, end_s, clip_start_s, source)."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=TRUTH_FIELDS)
        writer.writeheader()
        for word in truth:
            row = asdict(word)
            for key in ("start_s", "end_s", "clip_start_s"):
                row[key] = f"{row[key]:.4f}"
            writer.writerow(row)


def read_truth(path: Path) -> list[StreamWord]:
    """Read `write_truth`'s CSV; a clear `DataError` names the file and the bad line."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = [k for k in TRUTH_FIELDS[:3] if k not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{path}: not a truth CSV (columns {missing} missing)")
            out = []
            for line, row in enumerate(reader, start=2):
                try:
                    start, end = float(row["start_s"]), float(row["end_s"])
                    clip = float(row.get("clip_start_s") or start)
                except (TypeError, ValueError):
                    raise DataError(f"{path}:{line}: start_s/end_s must be numbers") from None
                if not row["label"] or end < start:
                    raise DataError(f"{path}:{line}: needs a label and end_s >= start_s")
                out.append(StreamWord(row["label"], start, end, clip, row.get("source") or ""))
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text CSV file") from None
    return sorted(out, key=lambda w: w.start_s)

"""Batches for training and fixed features for evaluation, from a `DataIndex`.

In: an index, a `FeatureSpec`, augmentation settings, a seed. Out:
- `SplitClips`: every clip of a split decoded once, prepared per the spec (clip scaling,
  cut/pad) as float32 (n, clip_samples), cached on disk as .npy (memory-mapped on reuse),
  keyed by the file list (paths, sizes, times), the spec digest and the labels;
- `TrainingBatches`: shuffled, augmented feature batches, deterministic per (seed, epoch),
  computed in a background thread so the model is the bottleneck;
- `fixed_features`: the deterministic features of a validation or test split (silence gets
  noise at a fixed, seeded volume; nothing else is changed), cached the same way.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import features
from kws.audio import AudioError, load_mono
from kws.data.augment import (
    AugmentConfig,
    NoiseBank,
    augment_clips,
    keyword_negatives,
    silence_clips,
    spec_augment,
)
from kws.data.index import DataIndex, Example
from kws.fsutil import atomic_path
from kws.runs import write_json

__all__ = [
    "SplitClips",
    "TrainingBatches",
    "default_cache_dir",
    "fixed_features",
    "load_noise",
    "load_split",
]

CACHE_FORMAT = 2
UNKNOWN_ID, FIRST_WORD_ID = 1, 2  # label ids: _silence_, _unknown_, then the words
# the code whose output is cached: a change to any of these files invalidates the cache
CACHED_CODE = (
    "features/frontend.py",
    "features/spec.py",
    "kws/audio.py",
    "kws/data/augment.py",
    "kws/data/source.py",
)


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """SHA-256 (16 hex digits) of the source files that compute cached clips and features, so
    that a cache written by other code is never read back (a stale cache once gave silence
    features from before a fix)."""
    root = Path(__file__).resolve().parents[2]
    h = hashlib.sha256()
    for rel in CACHED_CODE:
        h.update(rel.encode() + b"\0" + (root / rel).read_bytes())
    return h.hexdigest()[:16]


def default_cache_dir() -> Path:
    """$KWS_CACHE, else $XDG_CACHE_HOME/kws, else ~/.cache/kws (never inside the data)."""
    if "KWS_CACHE" in os.environ:
        return Path(os.environ["KWS_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kws"


@dataclass
class SplitClips:
    """Prepared clips of one split, their label ids and which are silence."""

    clips: np.ndarray  # (n, clip_samples) float32, possibly memory-mapped
    labels: np.ndarray  # (n,) int64
    silence: np.ndarray  # (n,) bool
    fingerprint: str  # SHA-256 over the files' relative paths and bytes
    extra: np.ndarray  # (n,) bool: clips from outside the dataset (--extra-*)
    words: np.ndarray  # (n,) str: the word of each clip, its folder's name ("" for silence)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def other_words(self) -> np.ndarray:
        """(n,) bool: the dataset's own clips of words that are not keywords (`_unknown_`,
        neither silence nor --extra-unknown)."""
        return (self.labels == UNKNOWN_ID) & ~self.silence & ~self.extra


def _quick_key(
    index: DataIndex, examples: list[Example], spec: features.FeatureSpec, kind: str
) -> str:
    h = hashlib.sha256(
        f"{kind}/{CACHE_FORMAT}/{code_digest()}/{spec.digest()}/{index.labels}".encode()
    )
    for e in examples:
        if e.is_silence:
            h.update(b"<silence>\n")
            continue
        st = (index.root / e.path).stat()
        h.update(f"{e.path}\0{e.label}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def _save_atomic(path: Path, array: np.ndarray, meta: dict[str, object]) -> None:
    """The array, then its metadata (a cache entry counts only when both exist)."""
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        np.save(f, array)
    write_json(path.with_suffix(".json"), meta)


def _cached(path: Path) -> tuple[np.ndarray, dict[str, object]] | None:
    meta_path = path.with_suffix(".json")
    if not (path.exists() and meta_path.exists()):
        return None
    try:
        return np.load(path, mmap_mode="r"), json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None


def load_split(
    index: DataIndex,
    split: str,
    *,
    spec: features.FeatureSpec,
    cache_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SplitClips:
    """Decode and prepare every clip of a split (cached on disk when ``cache_dir``)."""
    examples = index.splits[split]
    labels = np.array([index.label_id(e.label) for e in examples], dtype=np.int64)
    silence = np.array([e.is_silence for e in examples], dtype=bool)
    extra = np.array([e.is_extra for e in examples], dtype=bool)
    words = np.array(["" if e.is_silence else Path(e.path).parent.name for e in examples])
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"clips-{_quick_key(index, examples, spec, 'clips')}.npy"
        hit = _cached(path)
        if hit is not None:
            return SplitClips(hit[0], labels, silence, str(hit[1]["fingerprint"]), extra, words)
    clips = np.zeros((len(examples), spec.clip_samples), dtype=np.float32)
    digest = hashlib.sha256()
    resample = set(index.resampled)
    for i, e in enumerate(examples):
        if not e.is_silence:
            digest.update(e.path.encode() + b"\0" + (index.root / e.path).read_bytes())
            audio = load_mono(
                index.root / e.path, sample_rate_hz=spec.sample_rate_hz, resample=e.path in resample
            )
            clips[i] = features.prepare_clips(audio, spec=spec)[0]
        if progress is not None:
            progress(i + 1, len(examples))
    fingerprint = digest.hexdigest()
    if path is not None:
        _save_atomic(
            path,
            clips,
            {
                "split": split,
                "count": len(examples),
                "fingerprint": fingerprint,
                "spec": spec.to_dict(),
            },
        )
    return SplitClips(clips, labels, silence, fingerprint, extra, words)


def load_noise(index: DataIndex, *, spec: features.FeatureSpec) -> NoiseBank:
    """The background-noise recordings of the index (resampled if needed)."""
    recordings = []
    for rel in index.noise_files:
        try:
            recordings.append(
                load_mono(index.root / rel, sample_rate_hz=spec.sample_rate_hz, resample=True)
            )
        except AudioError:
            index.skipped.append((rel, "unreadable background noise"))
    return NoiseBank(recordings, clip_samples=spec.clip_samples)


def _features(clips: np.ndarray, spec: features.FeatureSpec) -> np.ndarray:
    """Features of prepared clips (no second clip preparation)."""
    return features.mfcc_frames(np.asarray(clips, dtype=np.float32), spec=spec)


def fixed_features(
    data: SplitClips,
    *,
    noise: NoiseBank,
    spec: features.FeatureSpec,
    seed: int,
    config: AugmentConfig | None = None,
    cache_dir: Path | None = None,
) -> np.ndarray:
    """Deterministic features of an evaluation split: (n, frames, coefficients).

    Silence examples get a noise segment at a volume drawn from a generator seeded with
    ``seed`` (scaled to a peak of 1 when the spec normalises clips by their max, as a decoded
    silence clip is); word and unknown clips are used as they are.
    """
    config = config or AugmentConfig()
    path = None
    if cache_dir is not None:
        key = hashlib.sha256(
            f"{data.fingerprint}/{seed}/{config.silence_volume}/{spec.digest()}/{len(data)}/"
            f"{CACHE_FORMAT}/{code_digest()}".encode()
        )
        path = Path(cache_dir) / f"features-{key.hexdigest()[:24]}.npy"
        hit = _cached(path)
        if hit is not None:
            return np.asarray(hit[0])
    clips = np.array(data.clips, dtype=np.float32)
    rows = np.flatnonzero(data.silence)
    if rows.size:
        rng = np.random.default_rng([seed, 0x5111])
        clips[rows] = silence_clips(
            rows.size,
            noise=noise,
            rng=rng,
            volume=config.silence_volume,
            normalize=spec.clip_norm is features.ClipNorm.MAX,
        )
    out = _features(clips, spec)
    if path is not None:
        _save_atomic(path, out, {"count": len(data), "seed": seed, "spec": spec.to_dict()})
    return out


class TrainingBatches:
    """Augmented, shuffled feature batches; epoch ``e`` is the same for the same seed.

    Iterating `epoch(e)` yields (features (b, frames, coefficients) float32, labels (b,)):
    the clips' label ids, or their ``targets`` (one class id per clip of ``data``; e.g. each
    other word a class of its own) when given; generated negatives are ``_unknown_``.
    Which clips are repeated or cut up follows the labels either way. The next batch is
    computed in a background thread while the caller trains on this one (NumPy and SciPy
    release the GIL).
    """

    def __init__(
        self,
        data: SplitClips,
        *,
        noise: NoiseBank,
        spec: features.FeatureSpec,
        config: AugmentConfig,
        batch_size: int,
        seed: int,
        targets: np.ndarray | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be positive, got {batch_size}")
        if targets is not None and np.shape(targets) != data.labels.shape:
            raise ValueError(f"targets must have one class per clip, got {np.shape(targets)}")
        self.data, self.noise, self.spec, self.config = data, noise, spec, config
        self.batch_size, self.seed = batch_size, seed
        self.targets = data.labels if targets is None else np.asarray(targets)

    def _rows(self) -> np.ndarray:
        """The examples of one epoch: every clip, the dataset's `_unknown_` ones
        ``unknown_repeat`` times and those from outside it (--extra-unknown)
        ``extra_unknown_repeat`` times (each repeat augmented anew)."""
        rows = [np.arange(len(self.data))]
        unknown, extra = self.data.labels == UNKNOWN_ID, self.data.extra
        extra_repeat = self.config.extra_unknown_repeat or self.config.unknown_repeat
        for chosen, repeat in (
            (unknown & ~extra, self.config.unknown_repeat),
            (unknown & extra, extra_repeat),
        ):
            if repeat > 1:
                rows.append(np.repeat(np.flatnonzero(chosen), repeat - 1))
        return np.concatenate(rows)

    def __len__(self) -> int:
        return -(-len(self._rows()) // self.batch_size)

    def _batches(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        rng = np.random.default_rng([self.seed, epoch])
        rows = self._rows()
        order = rows[rng.permutation(rows.size)]
        for start in range(0, order.size, self.batch_size):
            # Sorted within the batch (order inside a batch does not matter to SGD): the
            # memory-mapped cache is then read front to back.
            rows = np.sort(order[start : start + self.batch_size])
            clips = np.asarray(self.data.clips[rows])
            labels = self.targets[rows]
            silence = self.data.silence[rows]
            if self.config.negatives > 0:
                clips, labels, silence = self._with_negatives(clips, rows, rng)
            clips = augment_clips(
                clips,
                silence=silence,
                noise=self.noise,
                rng=rng,
                config=self.config,
                sample_rate_hz=self.spec.sample_rate_hz,
                normalize_silence=self.spec.clip_norm is features.ClipNorm.MAX,
            )
            x = _features(clips, self.spec)
            if self.config.time_masks or self.config.freq_masks:
                x = spec_augment(x, rng=rng, config=self.config)
            yield x, labels

    def _with_negatives(
        self, clips: np.ndarray, rows: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The batch (``clips``, the data's ``rows``) plus generated non-keyword clips (label
        ``_unknown_``), about ``config.negatives`` per keyword clip of the batch; a borrowed
        consonant comes from the batch's clips of the dataset's other words."""
        labels, silence = self.data.labels[rows], self.data.silence[rows]
        words, targets = self.data.words[rows], self.targets[rows]
        keyword, other = labels >= FIRST_WORD_ID, self.data.other_words[rows]
        count = int(rng.binomial(int(keyword.sum()), min(self.config.negatives, 1.0)))
        if self.config.negatives > 1:
            count += int(rng.poisson((self.config.negatives - 1) * keyword.sum()))
        made = keyword_negatives(
            clips[keyword], labels[keyword], count, rng=rng,
            sample_rate_hz=self.spec.sample_rate_hz,
            normalize=self.spec.clip_norm is features.ClipNorm.MAX,
            kinds=self.config.negative_kinds, words=words[keyword], donors=clips[other],
            donor_words=words[other],
        )  # fmt: skip
        return (
            np.concatenate([clips, made]),
            np.concatenate([targets, np.full(count, UNKNOWN_ID, labels.dtype)]),
            np.concatenate([silence, np.zeros(count, bool)]),
        )

    def epoch(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The batches of one epoch, prefetched one ahead in a background thread."""
        q: queue.Queue[tuple[np.ndarray, np.ndarray] | BaseException | None] = queue.Queue(
            maxsize=2
        )
        stop = threading.Event()

        def produce() -> None:
            try:
                for item in self._batches(epoch):
                    while not stop.is_set():
                        try:
                            q.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                q.put(None)
            except BaseException as e:  # re-raised in the consumer
                q.put(e)

        thread = threading.Thread(target=produce, daemon=True)
        thread.start()
        try:
            while (item := q.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join()

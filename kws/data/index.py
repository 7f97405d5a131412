"""Index a keyword dataset folder: labels, the dataset's own hash split, silence and unknown.

In: a folder with one sub-folder per word (``.wav``/``.flac``), optionally
``_background_noise_/``; the wanted words. Out: a `DataIndex`: for each split (training,
validation, testing) a list of `Example` (file or silence) with its label, labels ordered
``_silence_``, ``_unknown_``, then the words as given; the noise files; the files skipped and
why. The split is TensorFlow's ``which_set`` (a hash of the speaker id), so results compare
with published ones; silence and unknown counts are percentages of each split's wanted-word
count, unknowns drawn with a seeded generator, as in TensorFlow's ``prepare_data_index``.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

__all__ = [
    "BACKGROUND_NOISE",
    "LABEL_SILENCE",
    "LABEL_UNKNOWN",
    "SPLITS",
    "DataError",
    "DataIndex",
    "Example",
    "IndexOptions",
    "build_index",
    "scan_folders",
    "which_set",
]

LABEL_SILENCE = "_silence_"
LABEL_UNKNOWN = "_unknown_"
BACKGROUND_NOISE = "_background_noise_"
SPLITS = ("training", "validation", "testing")
AUDIO_SUFFIXES = (".wav", ".flac")
MAX_NUM_WAVS_PER_CLASS = 2**27 - 1  # TensorFlow's constant in which_set
DEFAULT_SEED = 59185  # TensorFlow speech_commands' RANDOM_SEED


class DataError(ValueError):
    """The dataset folder or the options cannot give a usable index."""


def speaker_of(filename: str) -> str:
    """The speaker id of a Speech Commands file: its name up to ``_nohash_``
    (``six/6a27a9bf_nohash_0.flac`` → ``6a27a9bf``)."""
    return re.sub(r"_nohash_.*$", "", os.path.basename(filename))


def which_set(filename: str, *, validation_percentage: float, testing_percentage: float) -> str:
    """TensorFlow speech_commands' split of a file by the SHA-1 of its speaker id.

    Everything after ``_nohash_`` in the file name is ignored, so all takes of a speaker land
    in the same split.
    """
    hashed = hashlib.sha1(speaker_of(filename).encode("utf-8")).hexdigest()
    percentage = (int(hashed, 16) % (MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / MAX_NUM_WAVS_PER_CLASS)
    if percentage < validation_percentage:
        return "validation"
    if percentage < testing_percentage + validation_percentage:
        return "testing"
    return "training"


EXTRA_SHUFFLE = 0xE7  # seeds the generator that mixes --extra-* clips into training


@dataclass(frozen=True)
class Example:
    """One item of a split: a file (path relative to the root), silence (path "") or a
    clip from outside the dataset (--extra-unknown, --extra-keywords; absolute path)."""

    path: str
    label: str

    @property
    def is_silence(self) -> bool:
        return self.path == ""

    @property
    def is_extra(self) -> bool:
        return Path(self.path).is_absolute()


@dataclass(frozen=True)
class IndexOptions:
    """How to build the index (shared by the CLI and training)."""

    validation_percentage: float = 10.0
    testing_percentage: float = 10.0
    silence_percentage: float = 10.0
    unknown_percentage: float = 10.0
    seed: int = DEFAULT_SEED
    sample_rate_hz: int = 16_000
    resample: bool = False
    extra_unknown: str = ""  # a folder of other-word clips added to training as _unknown_
    extra_keywords: str = ""  # a folder of keyword clips (sub-folder = keyword) for training

    def __post_init__(self) -> None:
        for name in (
            "validation_percentage",
            "testing_percentage",
            "silence_percentage",
            "unknown_percentage",
        ):
            value = getattr(self, name)
            if not 0 <= value <= 100:
                raise DataError(
                    f"--{name.split('_')[0]} must be a percentage in [0, 100], got {value}"
                )
        if self.validation_percentage + self.testing_percentage >= 100:
            raise DataError("validation + testing percentages leave no training data")


@dataclass
class DataIndex:
    """Labels, splits, noise files and problems found."""

    root: Path
    words: tuple[str, ...]
    splits: dict[str, list[Example]]
    noise_files: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    resampled: list[str] = field(default_factory=list)

    @property
    def labels(self) -> tuple[str, ...]:
        return (LABEL_SILENCE, LABEL_UNKNOWN, *self.words)

    def label_id(self, label: str) -> int:
        return self.labels.index(label)

    def counts(self) -> dict[str, dict[str, int]]:
        """split → label → count (every label present, zeros included)."""
        out = {}
        for split, examples in self.splits.items():
            c = Counter(e.label for e in examples)
            out[split] = {label: c[label] for label in self.labels}
        return out

    def to_dict(self) -> dict[str, object]:
        return {
            "root": str(self.root),
            "labels": list(self.labels),
            "counts": self.counts(),
            "noise_files": self.noise_files,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "resampled": self.resampled,
        }


def _check_file(path: Path, options: IndexOptions) -> str | None:
    """None when usable, else the reason; 'resample' when it needs resampling."""
    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        return f"not a readable audio file ({getattr(e, 'error_string', e)})"
    if info.frames == 0:
        return "zero length (no samples)"
    if info.samplerate != options.sample_rate_hz:
        return (
            "resample"
            if options.resample
            else (f"sample rate is {info.samplerate} Hz, expected {options.sample_rate_hz} Hz")
        )
    return None


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes, kept by Python as surrogates
        return False
    return True


def _scan(root: Path, options: IndexOptions, index: DataIndex) -> dict[str, list[str]]:
    """folder name → usable files (relative paths), sorted; problems recorded in index."""
    folders: dict[str, list[str]] = {}
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        files = []
        for name in sorted(os.listdir(entry.path)):
            if not name.lower().endswith(AUDIO_SUFFIXES) or name.startswith("."):
                continue
            rel = f"{entry.name}/{name}"
            if not _is_utf8(rel):  # libsndfile and JSON need a text name
                shown = rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                index.skipped.append((shown, "file name is not valid UTF-8; rename it"))
                continue
            problem = _check_file(root / rel, options)
            if problem == "resample":
                index.resampled.append(rel)
            elif problem is not None:
                index.skipped.append((rel, problem))
                continue
            files.append(rel)
        folders[entry.name] = files
    return folders


def scan_folders(
    root: Path | str, options: IndexOptions = IndexOptions()
) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """Every usable audio file per sub-folder (paths relative to ``root``, sorted), and the
    files skipped with the reason."""
    root = Path(root)
    index = DataIndex(root, (), {s: [] for s in SPLITS}, [])
    folders = _scan(root, options, index)
    return folders, index.skipped


def _extra_clips(
    folder: str, option: str, options: IndexOptions, index: DataIndex
) -> dict[str, list[str]]:
    """Every usable clip in the sub-folders of ``folder`` (absolute paths, per sub-folder);
    skipped and resampled files are added to ``index``'s lists."""
    root = Path(folder).resolve()
    if not root.is_dir():
        raise DataError(f"{root}: {option} is not a folder")
    scratch = DataIndex(root, (), {s: [] for s in SPLITS}, [])
    folders = _scan(root, options, scratch)
    found = {
        name: [str(root / f) for f in fs]
        for name, fs in folders.items()
        if name != BACKGROUND_NOISE and fs
    }
    if not found:
        first = (
            f" ({root / scratch.skipped[0][0]}: {scratch.skipped[0][1]})" if scratch.skipped else ""
        )
        raise DataError(f"{root}: {option} has no usable .wav or .flac files in sub-folders{first}")
    index.resampled.extend(str(root / f) for f in scratch.resampled)
    index.skipped.extend((str(root / f), why) for f, why in scratch.skipped)
    return found


def _extra_examples(
    options: IndexOptions, index: DataIndex, words: tuple[str, ...]
) -> list[Example]:
    """The training examples from outside the dataset: every clip under
    ``options.extra_unknown`` as ``_unknown_``, and every clip under
    ``options.extra_keywords``, whose sub-folders must be named after keywords, as that
    keyword. Validation and testing stay the dataset's own."""
    examples: list[Example] = []
    if options.extra_unknown:
        found = _extra_clips(options.extra_unknown, "--extra-unknown", options, index)
        examples += [Example(f, LABEL_UNKNOWN) for fs in found.values() for f in fs]
    if options.extra_keywords:
        found = _extra_clips(options.extra_keywords, "--extra-keywords", options, index)
        others = sorted(set(found) - set(words))
        if others:
            root = Path(options.extra_keywords).resolve()
            raise DataError(
                f"{root}: --extra-keywords folders must be named after keywords {list(words)}, "
                f"found {others}"
            )
        examples += [Example(f, word) for word, fs in found.items() for f in fs]
    return examples


def build_index(
    root: Path | str,
    *,
    words: list[str] | tuple[str, ...],
    options: IndexOptions = IndexOptions(),
    as_test: bool = False,
) -> DataIndex:
    """Index a dataset folder; see the module docstring.

    ``as_test`` reads an official test-set folder as it is (``_silence_`` and ``_unknown_``
    folders already present; other words' folders count as ``_unknown_``): every file goes
    to the testing split and nothing is drawn at random.

    Raises
    ------
    DataError
        Missing or empty folder, no wanted words, a wanted word not found, files at another
        sample rate without ``resample``.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    words = tuple(words)
    if not words:
        raise DataError("no words given (--words yes,no,...)")
    reserved = {LABEL_SILENCE, LABEL_UNKNOWN, BACKGROUND_NOISE}
    bad = [w for w in words if w in reserved or not w or "/" in w]
    if bad or len(set(words)) != len(words):
        raise DataError(f"--words must be distinct word folder names, got {list(words)}")
    index = DataIndex(root, words, {s: [] for s in SPLITS}, [])
    folders = _scan(root, options, index)
    if not any(folders.values()):
        raise DataError(f"{root}: no .wav or .flac files in any sub-folder")
    rate_problems = [(p, r) for p, r in index.skipped if r.startswith("sample rate")]
    if rate_problems:
        path, reason = rate_problems[0]
        raise DataError(
            f"{root / path}: {reason} ({len(rate_problems)} such files); pass --resample to "
            "resample them, or convert them with `kws align --sample-rate`"
        )
    missing = [w for w in words if not folders.get(w)]
    if missing:
        found = sorted(k for k, v in folders.items() if v and k != BACKGROUND_NOISE)
        raise DataError(f"{root}: no files for word(s) {missing}; folders found: {found}")
    index.noise_files = folders.pop(BACKGROUND_NOISE, [])
    if as_test:
        for folder, files in folders.items():
            label = folder if folder in (*words, LABEL_SILENCE) else LABEL_UNKNOWN
            index.splits["testing"].extend(Example(f, label) for f in files)
        return index
    rng = np.random.default_rng(options.seed)
    unknown: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for folder, files in folders.items():
        for f in files:
            split = which_set(
                f,
                validation_percentage=options.validation_percentage,
                testing_percentage=options.testing_percentage,
            )
            if folder in words:
                index.splits[split].append(Example(f, folder))
            else:
                unknown[split].append(Example(f, LABEL_UNKNOWN))
    extra = _extra_examples(options, index, words)
    for split in SPLITS:
        examples = index.splits[split]
        wanted = len(examples)
        silence = math.ceil(wanted * options.silence_percentage / 100)
        examples.extend(Example("", LABEL_SILENCE) for _ in range(silence))
        pool = unknown[split]
        take = min(len(pool), math.ceil(wanted * options.unknown_percentage / 100))
        chosen = rng.permutation(len(pool))[:take]
        examples.extend(pool[i] for i in sorted(chosen))
        order = rng.permutation(len(examples))
        index.splits[split] = [examples[i] for i in order]
    if extra:
        # shuffled in by a generator of their own: the draws of the dataset's own splits
        # (validation and testing above all) are the same with and without extra clips
        training = index.splits["training"] + extra
        order = np.random.default_rng([options.seed, EXTRA_SHUFFLE]).permutation(len(training))
        index.splits["training"] = [training[i] for i in order]
    return index

"""Per-class rejection thresholds, calibrated on the training data's validation split.

In: a model's class scores on its run's validation split and how much keyword recall to give
up. Out: a `Calibration`: for every keyword a score threshold, below which the model's answer
becomes ``_unknown_``. For keyword c the threshold is the score below which the lowest
``1 - keep`` of the validation examples of c that the model gets right fall, so that about a
fraction ``keep`` of the keywords it recognises stay recognised, while other words, which it
takes for a keyword with lower scores, are rejected.

The score is the keyword's probability against ``_unknown_`` alone (`keyword_scores`):
p(c) / (p(c) + p(_unknown_)), the posterior of "c, not another word" given one of the two. The
probability the model gives to the *other keywords* does not lower it: a clip the model is
sure is a keyword but hesitates between two (a quiet "left" that also sounds like "yes")
is not thrown away with the other words. Measured on six DS-CNN-S runs against the top
probability (README, `kws calibrate`): on their validation splits the equal error rate fell
0.7-3.0 points for every float model and fell or stayed for every int8 one; on the
development half of the official test set, calibrated folded accuracy rose 1.3 points on
average for the float models (0.1 to 3.4) and 0.7 for the int8 ones (one of six lost 1.1).

In an int8 model the probabilities are multiples of 1/256: where ``_unknown_``'s is 0 the
score is 1 and no threshold rejects the keyword.

The int8 rule (`Int8Rule`, used by the exported C spotter and TFLM labels.h) decides the
same in integers: with a = s(c) - z and u = s(_unknown_) - z for int8 scores s and the
output zero point z, and the threshold as a fraction n/d, keyword c stays iff
a * (d - n) >= n * u.

A calibration belongs to one model file (int8 and float scores differ): it is saved beside it
as ``<model file>.calibration.json`` with the file's SHA-256, and `kws eval`, `kws listen`,
`kws stream-eval` and `kws export` use it when it is there. Never calibrate on a test set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from kws.data.index import LABEL_SILENCE, LABEL_UNKNOWN
from kws.fsutil import file_sha256

__all__ = [
    "DEFAULT_KEEP",
    "Calibration",
    "CalibrationError",
    "Int8Rule",
    "calibration_path",
    "fit_calibration",
    "keyword_scores",
    "load_calibration",
]

DEFAULT_KEEP = 0.97
FORMAT = "kws.Calibration/2"  # /1: thresholds on the top probability (before 2026-12-03)
SCORE = "keyword_vs_unknown"


class CalibrationError(ValueError):
    """A calibration that cannot be made or does not belong to the model."""


def keyword_scores(probs: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """Class scores (n, classes) with each keyword's column replaced by its score against
    ``_unknown_``: p(c) / (p(c) + p(_unknown_)), 0 where both are 0; the ``_silence_`` and
    ``_unknown_`` columns are left as they are. Float64."""
    labels = tuple(labels)
    probs = np.asarray(probs, dtype=np.float64)
    out = probs.copy()
    unknown = probs[:, [labels.index(LABEL_UNKNOWN)]]
    keyword = [i for i, label in enumerate(labels) if label not in (LABEL_SILENCE, LABEL_UNKNOWN)]
    total = probs[:, keyword] + unknown
    out[:, keyword] = np.divide(probs[:, keyword], total, out=np.zeros_like(total), where=total > 0)
    return out


@dataclass(frozen=True)
class Calibration:
    labels: tuple[str, ...]
    thresholds: tuple[float, ...]  # one per label; 0 for _silence_ and _unknown_
    keep: float
    model_sha256: str

    def predict(self, probs: np.ndarray) -> np.ndarray:
        """Class ids: the top class, or ``_unknown_`` where the top class is a keyword whose
        score against ``_unknown_`` (`keyword_scores`) is below its threshold."""
        probs = np.asarray(probs)
        top = probs.argmax(axis=1)
        score = keyword_scores(probs, self.labels)[np.arange(len(probs)), top]
        below = score < np.asarray(self.thresholds)[top]
        return np.where(below, self.labels.index(LABEL_UNKNOWN), top)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "score": SCORE,
            "keep": self.keep,
            "model_sha256": self.model_sha256,
            "thresholds": dict(zip(self.labels, self.thresholds, strict=True)),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        if d.get("format") == "kws.Calibration/1":
            raise CalibrationError(
                "made by an older kws, with thresholds on another score; run kws calibrate again"
            )
        if d.get("format") != FORMAT:
            raise CalibrationError(f"not a kws calibration (format {d.get('format')!r})")
        labels = tuple(d["thresholds"])
        return cls(labels, tuple(float(d["thresholds"][k]) for k in labels), float(d["keep"]),
                   str(d["model_sha256"]))  # fmt: skip


def calibration_path(model_file: Path) -> Path:
    return Path(model_file).with_name(Path(model_file).name + ".calibration.json")


def fit_calibration(
    probs: np.ndarray,
    truth: np.ndarray,
    labels: Sequence[str],
    *,
    keep: float = DEFAULT_KEEP,
    model_sha256: str,
) -> Calibration:
    """Thresholds from validation scores (n, classes) and true ids; see the module docstring."""
    if not 0 < keep <= 1:
        raise CalibrationError(f"--keep must be in (0, 1], got {keep}")
    labels = tuple(labels)
    probs, truth = np.asarray(probs), np.asarray(truth)
    top = probs.argmax(axis=1)
    scores = keyword_scores(probs, labels)
    thresholds = []
    for c, label in enumerate(labels):
        right = np.sort(scores[(truth == c) & (top == c), c])
        if label in (LABEL_SILENCE, LABEL_UNKNOWN) or keep == 1 or right.size == 0:
            thresholds.append(0.0)
            continue
        thresholds.append(float(right[int(np.floor((1 - keep) * right.size))]))
    return Calibration(labels, tuple(thresholds), keep, model_sha256)


@dataclass(frozen=True)
class Int8Rule:
    """A calibration as the integer rule of an int8 model's outputs (module docstring): one
    fraction n/d per label (0/1: no threshold). Exact for a model whose dequantised outputs
    are multiples of one scale, as an int8 softmax's are (scale 1/256)."""

    numerators: tuple[int, ...]
    denominators: tuple[int, ...]
    zero_point: int
    unknown: int

    @classmethod
    def of(cls, calibration: Calibration, *, zero_point: int) -> Int8Rule:
        """The rule of a calibration fitted on the int8 model's dequantised outputs: each
        threshold is a ratio a / (a + u) of two int8 levels, so a fraction with a
        denominator of at most 2 × 255."""
        if zero_point != -128:  # every int8 softmax's (its top output is then above it)
            raise CalibrationError(
                f"the int8 rule needs an int8 softmax output (zero point -128), got {zero_point}"
            )
        most = 2 * (127 - zero_point)
        fractions = []
        for t in calibration.thresholds:
            f = Fraction(t).limit_denominator(most) if t > 0 else Fraction(0)
            if abs(float(f) - t) > 1e-7:
                raise CalibrationError(f"threshold {t!r} is not a ratio of two int8 levels")
            fractions.append(f)
        return cls(
            tuple(f.numerator for f in fractions),
            tuple(f.denominator for f in fractions),
            int(zero_point),
            calibration.labels.index(LABEL_UNKNOWN),
        )

    def decide(self, scores: np.ndarray) -> np.ndarray:
        """Class ids from int8 scores (n, classes), as the C spotter's kws_decide: the top
        class (the first on ties), or ``_unknown_`` where a * (d - n) < n * u."""
        q = np.asarray(scores, dtype=np.int64) - self.zero_point
        top = q.argmax(axis=1)
        a, u = q[np.arange(len(q)), top], q[:, self.unknown]
        n, d = np.asarray(self.numerators)[top], np.asarray(self.denominators)[top]
        return np.where(a * (d - n) < n * u, self.unknown, top)


def load_calibration(model_file: Path, labels: Sequence[str]) -> Calibration | None:
    """The calibration saved beside a model file, or None; refused when it was made for
    another model or other labels."""
    import json

    path = calibration_path(model_file)
    if not path.exists():
        return None
    try:
        calibration = Calibration.from_dict(json.loads(path.read_text()))
    except CalibrationError as e:
        raise CalibrationError(f"{path}: {e}") from None
    except (OSError, ValueError, KeyError) as e:
        raise CalibrationError(f"{path}: unreadable calibration ({e})") from None
    if calibration.model_sha256 != file_sha256(model_file):
        raise CalibrationError(
            f"{path} was made for another version of {model_file}; run kws calibrate again "
            "(or delete it)"
        )
    if calibration.labels != tuple(labels):
        raise CalibrationError(f"{path}: its labels differ from the model's {list(labels)}")
    return calibration


def calibrate(
    target: Path, *, keep: float = DEFAULT_KEEP, cache_dir: Path | None = None
) -> tuple[Calibration, Any, Any]:
    """Fit and save the calibration of a run's model (a run directory, its model.keras or one
    of its exported .tflite files) on the run's validation split. Returns the calibration and
    the validation reports without and with it."""
    from kws.evaluate import full_report, model_file, scores_on
    from kws.runs import read_run_config, run_dir_of, write_json

    run = run_dir_of(target)
    if run is None:
        raise CalibrationError(
            f"{target}: calibration needs a model of a kws run (its validation split)"
        )
    data_dir = Path(read_run_config(run)["data_dir"])
    probs, y, labels, sources = scores_on(target, data_dir, split="validation", cache_dir=cache_dir)
    path = model_file(target)
    calibration = fit_calibration(probs, y, labels, keep=keep, model_sha256=file_sha256(path))
    before, after = (
        full_report(probs, y, labels, sources, predicted=predicted)
        for predicted in (probs.argmax(axis=1), calibration.predict(probs))
    )
    write_json(calibration_path(path), calibration.to_dict())  # atomic
    return calibration, before, after

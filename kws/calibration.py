"""Per-class rejection thresholds, calibrated on the training data's validation split.

In: a model's class scores on its run's validation split and how much keyword recall to give
up. Out: a `Calibration`: for every keyword a score threshold, below which the model's answer
becomes ``_unknown_``. For keyword c the threshold is the score below which the lowest
``1 - keep`` of the validation examples of c that the model gets right fall, so that about a
fraction ``keep`` of the keywords it recognises stay recognised, while other words, which it
takes for a keyword with lower scores, are rejected.

A calibration belongs to one model file (int8 and float scores differ): it is saved beside it
as ``<model file>.calibration.json`` with the file's SHA-256, and `kws eval`, `kws listen`,
`kws stream-eval` and `kws export` use it when it is there. Never calibrate on a test set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kws.data.index import LABEL_SILENCE, LABEL_UNKNOWN
from kws.fsutil import file_sha256

__all__ = [
    "DEFAULT_KEEP",
    "Calibration",
    "CalibrationError",
    "calibration_path",
    "fit_calibration",
    "load_calibration",
]

DEFAULT_KEEP = 0.97
FORMAT = "kws.Calibration/1"


class CalibrationError(ValueError):
    """A calibration that cannot be made or does not belong to the model."""


@dataclass(frozen=True)
class Calibration:
    labels: tuple[str, ...]
    thresholds: tuple[float, ...]  # one per label; 0 for _silence_ and _unknown_
    keep: float
    model_sha256: str

    def predict(self, probs: np.ndarray) -> np.ndarray:
        """Class ids: the top class, or ``_unknown_`` where a keyword's score is below its
        threshold."""
        probs = np.asarray(probs)
        top = probs.argmax(axis=1)
        score = probs[np.arange(len(probs)), top]
        below = score < np.asarray(self.thresholds)[top]
        return np.where(below, self.labels.index(LABEL_UNKNOWN), top)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "keep": self.keep,
            "model_sha256": self.model_sha256,
            "thresholds": dict(zip(self.labels, self.thresholds, strict=True)),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
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
    thresholds = []
    for c, label in enumerate(labels):
        right = np.sort(probs[(truth == c) & (top == c), c])
        if label in (LABEL_SILENCE, LABEL_UNKNOWN) or keep == 1 or right.size == 0:
            thresholds.append(0.0)
            continue
        thresholds.append(float(right[int(np.floor((1 - keep) * right.size))]))
    return Calibration(labels, tuple(thresholds), keep, model_sha256)


def load_calibration(model_file: Path, labels: Sequence[str]) -> Calibration | None:
    """The calibration saved beside a model file, or None; refused when it was made for
    another model or other labels."""
    import json

    path = calibration_path(model_file)
    if not path.exists():
        return None
    try:
        calibration = Calibration.from_dict(json.loads(path.read_text()))
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

"""`kws eval`: accuracy, per-class precision/recall and the confusion matrix of a model.

In: a run directory, a .keras model or a .tflite model (float or int8: inputs are quantised
with the model's own scale and zero point), a dataset folder and how to read it (a split of
the dataset's own hash split, or an official test-set folder as it is), optionally a label
order, a feature spec and a label map for models trained elsewhere. Out: an `EvalReport`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

import features
from kws import data as kdata
from kws.calibration import keyword_scores

__all__ = [
    "EvalError",
    "EvalReport",
    "OpenSetReport",
    "OperatingCurve",
    "evaluate",
    "evaluate_arrays",
    "load_predictor",
    "open_set_report",
    "operating_curve",
    "source_word",
]

PREDICT_BATCH = 256  # Keras predict batch


class EvalError(ValueError):
    """The model, labels or data cannot be evaluated together as given."""


@dataclass
class EvalReport:
    labels: tuple[str, ...]
    accuracy: float
    n: int
    precision: np.ndarray
    recall: np.ndarray
    support: np.ndarray
    confusion: np.ndarray  # rows: true, columns: predicted
    open_set: OpenSetReport | None = field(default=None)
    calibration: str | None = None  # the calibration file applied, if any

    def to_dict(self) -> dict[str, Any]:
        out = {
            "accuracy": self.accuracy,
            "n": self.n,
            "labels": list(self.labels),
            "per_class": {
                label: {
                    "precision": float(self.precision[i]),
                    "recall": float(self.recall[i]),
                    "support": int(self.support[i]),
                }
                for i, label in enumerate(self.labels)
            },
            "confusion": self.confusion.tolist(),
        }
        if self.open_set is not None:
            out["open_set"] = self.open_set.to_dict()
        out["calibration"] = self.calibration
        return out


@dataclass
class OpenSetReport:
    """How a keyword model treats what it must accept and what it must reject.

    keyword recall: keyword examples given their own label; rejection: examples of other
    words (true label ``_unknown_``) not given any keyword label (``_unknown_`` or
    ``_silence_`` both reject), overall and per source word; silence accuracy: silence
    examples given ``_silence_``; folded accuracy: the accuracy of the folded labels.
    """

    keyword_recall: float
    keywords: int
    rejection: float
    others: int
    rejection_per_word: dict[str, tuple[float, int]]
    silence_accuracy: float
    silences: int
    folded_accuracy: float
    curve: OperatingCurve | None = None  # threshold-free view, from the scores

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "keyword_recall": self.keyword_recall,
            "keywords": self.keywords,
            "rejection": self.rejection,
            "others": self.others,
            "rejection_per_word": {
                w: {"rejection": r, "n": n} for w, (r, n) in self.rejection_per_word.items()
            },
            "silence_accuracy": self.silence_accuracy,
            "silences": self.silences,
            "folded_accuracy": self.folded_accuracy,
        }
        if self.curve is not None:
            out["curve"] = self.curve.to_dict()
        return out


RECALL_LEVELS = (0.90, 0.95)


@dataclass(frozen=True)
class OperatingCurve:
    """Keyword recall against non-keyword rejection over one global threshold on the
    keyword score (the keyword given is the most probable one; its score is the one that
    `kws.calibration` thresholds, its probability against ``_unknown_``'s).

    ``rejection_at_recall[r]``: the rejection of the highest threshold that keeps recall ≥ r
    (None where even threshold 0 does not reach r); ``equal_error_rate``: where the miss
    rate (1 − recall) and the false-accept rate (1 − rejection) meet. The threshold is
    picked on the evaluated data itself, so these compare models independently of their
    thresholds; they are not figures a deployed threshold would give (use `kws calibrate`).
    """

    rejection_at_recall: dict[float, float | None]
    equal_error_rate: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "rejection_at_recall": {f"{r:g}": v for r, v in self.rejection_at_recall.items()},
            "equal_error_rate": self.equal_error_rate,
        }


def operating_curve(
    probs: np.ndarray,
    truth: np.ndarray,
    labels: Sequence[str],
    *,
    recall_levels: Sequence[float] = RECALL_LEVELS,
) -> OperatingCurve | None:
    """`OperatingCurve` of class scores (n, classes) against true ids; None without keyword
    or other-word examples."""
    labels = tuple(labels)
    keyword = np.array([lab not in (kdata.LABEL_SILENCE, kdata.LABEL_UNKNOWN) for lab in labels])
    columns = np.flatnonzero(keyword)
    probs, truth = np.asarray(probs, np.float64), np.asarray(truth)
    is_keyword = keyword[truth]
    is_other = truth == labels.index(kdata.LABEL_UNKNOWN)
    if not is_keyword.any() or not is_other.any() or columns.size == 0:
        return None
    given = columns[probs[:, columns].argmax(axis=1)]
    score = keyword_scores(probs, labels)[np.arange(len(probs)), given]
    hits = np.sort(score[is_keyword & (given == truth)])[::-1]  # accepted and right, best first
    others = np.sort(score[is_other])
    n_keywords, n_others = int(is_keyword.sum()), others.size

    def rejection_below(t: float) -> float:  # share of other words scoring under t
        return float(np.searchsorted(others, t, side="left") / n_others)

    at: dict[float, float | None] = {}
    for r in recall_levels:
        need = int(np.ceil(r * n_keywords - 1e-9))
        at[float(r)] = rejection_below(float(hits[need - 1])) if 0 < need <= hits.size else None
    # miss and false-accept rates at every candidate threshold (each score seen)
    thresholds = np.unique(np.concatenate([hits, others, [np.inf]]))
    recall = (hits.size - np.searchsorted(hits[::-1], thresholds, side="left")) / n_keywords
    false_accept = 1 - np.searchsorted(others, thresholds, side="left") / n_others
    miss = 1 - recall
    best = int(np.argmin(np.abs(miss - false_accept)))
    return OperatingCurve(at, float((miss[best] + false_accept[best]) / 2))


def open_set_report(
    predicted: np.ndarray, truth: np.ndarray, labels: Sequence[str], words: Sequence[str]
) -> OpenSetReport:
    """Open-set figures from predicted and true class ids and each example's source word."""
    labels = tuple(labels)
    silence, unknown = labels.index(kdata.LABEL_SILENCE), labels.index(kdata.LABEL_UNKNOWN)
    keyword = np.array(
        [label not in (kdata.LABEL_SILENCE, kdata.LABEL_UNKNOWN) for label in labels]
    )
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    words = np.asarray(words, dtype=object)

    def rate(mask: np.ndarray, hit: np.ndarray) -> float:
        return float(hit[mask].mean()) if mask.any() else float("nan")

    is_keyword = keyword[truth]
    is_other = truth == unknown
    rejected = ~keyword[predicted]
    per_word = {
        str(w): (rate(is_other & (words == w), rejected), int((is_other & (words == w)).sum()))
        for w in sorted(set(words[is_other]))
    }
    return OpenSetReport(
        keyword_recall=rate(is_keyword, predicted == truth),
        keywords=int(is_keyword.sum()),
        rejection=rate(is_other, rejected),
        others=int(is_other.sum()),
        rejection_per_word=per_word,
        silence_accuracy=rate(truth == silence, predicted == silence),
        silences=int((truth == silence).sum()),
        folded_accuracy=float((predicted == truth).mean()) if truth.size else float("nan"),
    )


def source_word(example: kdata.Example) -> str:
    """The word an example says: its folder, or for an official test set's ``_unknown_``
    folder the word its file name starts with (``backward_0c540988_nohash_0``)."""
    if example.is_silence:
        return kdata.LABEL_SILENCE
    folder, _, name = example.path.partition("/")
    if folder == kdata.LABEL_UNKNOWN:
        match = re.match(r"^([^_]+)_[^_]+_nohash_", name)
        return match.group(1) if match else kdata.LABEL_UNKNOWN
    return folder


def evaluate_arrays(
    probs: np.ndarray,
    truth: np.ndarray,
    labels: Sequence[str],
    *,
    predicted: np.ndarray | None = None,
) -> EvalReport:
    """Report from class scores (n, classes) and true class ids (n,); ``predicted`` replaces
    the top class (a calibration's decisions)."""
    k = len(labels)
    if predicted is None:
        predicted = np.asarray(probs).argmax(axis=1)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (truth, predicted), 1)
    support = confusion.sum(axis=1)
    called = confusion.sum(axis=0)
    diag = np.diag(confusion).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(called > 0, diag / np.maximum(called, 1), np.nan)
        recall = np.where(support > 0, diag / np.maximum(support, 1), np.nan)
    n = int(truth.size)
    return EvalReport(
        tuple(labels),
        float(diag.sum() / n) if n else float("nan"),
        n,
        precision,
        recall,
        support,
        confusion,
    )


class Predictor(Protocol):
    def __call__(self, x: np.ndarray) -> np.ndarray: ...


class KerasPredictor:
    def __init__(self, path: Path) -> None:
        from kws.runs import load_keras_model

        self.model = load_keras_model(path)
        self.input_shape = tuple(self.model.input_shape[1:])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict(x, batch_size=PREDICT_BATCH, verbose=0)


class TFLitePredictor:
    """A .tflite model through `kws.export.runtime.TFLiteModel` (LiteRT; int8 inputs are
    quantised with the model's own scale and zero point, outputs dequantised)."""

    def __init__(self, path: Path) -> None:
        from kws.export.runtime import TFLiteModel

        try:
            flatbuffer = path.read_bytes()
        except OSError as e:
            raise EvalError(f"{path}: cannot read ({e.strerror})") from None
        self.model = TFLiteModel(flatbuffer, name=str(path))
        self.input_shape = self.model.input_shape[1:]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict(x)


def load_predictor(
    target: Path, *, labels: Sequence[str] | None, spec: features.FeatureSpec | None
) -> tuple[Predictor, tuple[str, ...], features.FeatureSpec, dict[str, Any]]:
    """(predict function, label order, feature spec, the run's config or {}) for a target."""
    from kws.runs import read_run_config, run_dir_of

    target = Path(target)
    config: dict[str, Any] = {}
    if target.is_dir():
        if not (target / "config.json").exists() or not (target / "model.keras").exists():
            raise EvalError(f"{target}: not a run directory (config.json and model.keras expected)")
        config = read_run_config(target)
        run_labels = (kdata.LABEL_SILENCE, kdata.LABEL_UNKNOWN, *config["words"])
        run_spec = features.FeatureSpec.from_dict(config["spec"])
        if labels is not None and tuple(labels) != run_labels:
            raise EvalError(f"{target}: --labels differ from the run's labels {list(run_labels)}")
        if spec is not None and spec != run_spec:
            raise EvalError(
                f"{target}: the feature spec differs from the one the run was trained with"
            )
        predictor: Predictor = KerasPredictor(target / "model.keras")
        labels, spec = run_labels, run_spec
    elif target.suffix in (".keras", ".tflite"):
        predictor = KerasPredictor(target) if target.suffix == ".keras" else TFLitePredictor(target)
        run_dir = run_dir_of(target)
        if run_dir is not None and (labels is None or spec is None):
            # a model file inside a run (RUN_DIR/model.keras, RUN_DIR/export/*.tflite)
            config = read_run_config(run_dir)
            labels = labels or (kdata.LABEL_SILENCE, kdata.LABEL_UNKNOWN, *config["words"])
            spec = spec or features.FeatureSpec.from_dict(config["spec"])
    else:
        raise EvalError(f"{target}: expected a run directory, a .keras or a .tflite file")
    if labels is None:
        raise EvalError(f"{target}: give the model's label order with --labels")
    spec = spec or features.preset(features.DEFAULT_PRESET)
    expected = spec.shape
    got = getattr(predictor, "input_shape", expected)
    if tuple(got) != tuple(expected):
        raise EvalError(
            f"{target}: model input is {tuple(got)}, the feature spec gives {expected}; "
            "choose the matching --preset or --spec"
        )
    return predictor, tuple(labels), spec, config


def model_file(target: Path) -> Path:
    """The model file a target stands for (a run directory: its model.keras)."""
    target = Path(target)
    return target / "model.keras" if target.is_dir() else target


def evaluate(
    target: Path,
    data_dir: Path,
    *,
    split: str = "testing",
    as_test: bool = False,
    labels: Sequence[str] | None = None,
    spec: features.FeatureSpec | None = None,
    label_map: dict[str, str] | None = None,
    seed: int = 0,
    cache_dir: Path | None = None,
    calibrated: bool = True,
) -> EvalReport:
    """Evaluate a model on a dataset folder; see the module docstring.

    ``split`` is one of training, validation, testing or all (ignored with ``as_test``).
    ``label_map`` maps data folders (words) to model labels, e.g. {"go": "_unknown_"}.
    ``calibrated``: apply the model's calibration (`kws.calibration`) when it has one.
    """
    probs, y, model_labels, sources = scores_on(
        target, data_dir, split=split, as_test=as_test, labels=labels, spec=spec,
        label_map=label_map, seed=seed, cache_dir=cache_dir,
    )  # fmt: skip
    from kws.calibration import calibration_path, load_calibration

    calibration = load_calibration(model_file(target), model_labels) if calibrated else None
    predicted = calibration.predict(probs) if calibration else probs.argmax(axis=1)
    report = full_report(probs, y, model_labels, sources, predicted=predicted)
    if calibration is not None:
        report.calibration = str(calibration_path(model_file(target)))
    return report


def full_report(
    probs: np.ndarray,
    truth: np.ndarray,
    labels: Sequence[str],
    sources: Sequence[str],
    *,
    predicted: np.ndarray,
) -> EvalReport:
    """`evaluate_arrays` plus the open-set view when the labels have silence and unknown."""
    report = evaluate_arrays(probs, truth, labels, predicted=predicted)
    if {kdata.LABEL_SILENCE, kdata.LABEL_UNKNOWN} <= set(labels):
        report.open_set = open_set_report(predicted, truth, labels, sources)
        report.open_set.curve = operating_curve(probs, truth, labels)
    return report


def scores_on(
    target: Path,
    data_dir: Path,
    *,
    split: str = "testing",
    as_test: bool = False,
    labels: Sequence[str] | None = None,
    spec: features.FeatureSpec | None = None,
    label_map: dict[str, str] | None = None,
    seed: int = 0,
    cache_dir: Path | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], list[str]]:
    """(class scores, true ids, model labels, source words) of a model on a dataset."""
    predictor, model_labels, spec, config = load_predictor(target, labels=labels, spec=spec)
    label_map = dict(label_map or {})
    for word, label in label_map.items():
        if label not in model_labels:
            raise EvalError(
                f"--label-map {word}={label}: {label!r} is not a model label {list(model_labels)}"
            )
    special = (kdata.LABEL_SILENCE, kdata.LABEL_UNKNOWN)
    words = [w for w in model_labels if w not in special]
    words += [w for w in label_map if w not in words and w not in special]
    options = kdata.IndexOptions(**config["index"]) if "index" in config else kdata.IndexOptions()
    seed = int(config.get("seed", seed))  # a run's silence features are drawn with its seed
    index = kdata.build_index(data_dir, words=words, options=options, as_test=as_test)
    splits = ["testing"] if as_test else (list(kdata.SPLITS) if split == "all" else [split])
    if any(s not in kdata.SPLITS for s in splits):
        raise EvalError(f"--split must be one of training, validation, testing, all; got {split!r}")
    noise = kdata.load_noise(index, spec=spec)
    xs, ys, sources = [], [], []
    for s in splits:
        clips = kdata.load_split(index, s, spec=spec, cache_dir=cache_dir)
        if len(clips) == 0:
            continue
        xs.append(
            kdata.fixed_features(clips, noise=noise, spec=spec, seed=seed, cache_dir=cache_dir)
        )
        names = [label_map.get(index.labels[i], index.labels[i]) for i in clips.labels]
        missing = sorted({n for n in names if n not in model_labels})
        if missing:
            raise EvalError(
                f"data labels {missing} are not model labels; map them with --label-map"
            )
        ys.append(np.array([model_labels.index(n) for n in names], dtype=np.int64))
        sources += [source_word(e) for e in index.splits[s]]
    if not xs:
        raise EvalError(f"{data_dir}: no examples in the {'/'.join(splits)} split")
    x, y = np.concatenate(xs), np.concatenate(ys)
    return np.asarray(predictor(x)), y, model_labels, sources

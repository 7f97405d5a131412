"""`kws train`: train a keyword model into a run directory anyone can rebuild from.

In: a `TrainConfig` (data folder, words, model, feature spec, index and augmentation
options, optimiser settings, seed) and a run directory. Out: the run directory of DESIGN.md
(config.json, manifest.json, model.keras = best by validation accuracy, checkpoints/ for
resume, history.csv, curves.png, confusion.png, metrics.json, logs/ for TensorBoard) and a
`TrainResult`.

Reproducible: every random choice comes from the seed (data order and augmentation per
epoch, weight init, dropout), and TensorFlow runs with op determinism, so the same config,
data and machine give bit-identical weights. Resumable: after every epoch the model,
optimiser state and history are checkpointed atomically; `resume=True` continues from the
last completed epoch and gives the same weights as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import features
import models
from kws import data as kdata
from kws.fsutil import atomic_path
from kws.runs import load_keras_model, manifest, now, read_json, write_csv, write_json

__all__ = [
    "EpochLog",
    "Reproduction",
    "TrainConfig",
    "TrainError",
    "TrainResult",
    "compare_runs",
    "configure_tensorflow",
    "interrupted_start",
    "load_run_model",
    "mix_batch",
    "refuse_changed_teachers",
    "teacher_files",
    "train",
]

CONFIG_FORMAT = "kws.TrainConfig/1"
# TensorFlow's augmentation plus SpecAugment: 2 time masks (<= 5 frames), 2 coefficient masks.
DEFAULT_AUGMENT = kdata.AugmentConfig(time_masks=2, freq_masks=2)


class TrainError(ValueError):
    """The training request cannot be carried out as given."""


@dataclass(frozen=True)
class TrainConfig:
    """Every resolved option of a training run (saved as config.json)."""

    data_dir: str
    words: tuple[str, ...]
    model: str = "ds_cnn-s"
    tiny_model: bool = False
    spec: features.FeatureSpec = field(default_factory=features.FeatureSpec)
    index: kdata.IndexOptions = field(default_factory=kdata.IndexOptions)
    augment: kdata.AugmentConfig = DEFAULT_AUGMENT
    epochs: int = 40
    batch_size: int = 100
    lr: float = 0.003
    warmup_epochs: int = 2
    weight_decay: float = 0.0
    label_smoothing: float = 0.1
    bn_momentum: float = 0.99
    mixup: float = 0.0  # Beta(a, a) mixing of batch pairs, features and targets (0: off)
    ema: float = 0.0  # momentum of an exponential moving average of the weights (0: off)
    teachers: tuple[str, ...] = ()  # run directories or model files to distil from
    distill: float = 0.0  # weight of the teachers' averaged scores in the targets (0: off)
    word_classes: bool = False  # each other word a class while training, folded to _unknown_
    seed: int = 0

    def __post_init__(self) -> None:
        if self.model not in models.MODELS:
            raise TrainError(
                f"unknown model {self.model!r}; choose one of: {', '.join(models.MODELS)}"
            )
        if self.epochs < 1 or self.batch_size < 1:
            raise TrainError(
                f"epochs and batch size must be positive, got {self.epochs}, {self.batch_size}"
            )
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise TrainError(f"learning rate must be positive, got {self.lr}")
        if not 0 <= self.label_smoothing < 1:
            raise TrainError(f"label smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0 < self.bn_momentum < 1:
            raise TrainError(f"BatchNorm momentum must be in (0, 1), got {self.bn_momentum}")
        if not (self.mixup >= 0 and math.isfinite(self.mixup)):
            raise TrainError(f"mixup must be >= 0, got {self.mixup}")
        if not 0 <= self.ema < 1:
            raise TrainError(f"EMA momentum must be in [0, 1), got {self.ema}")
        if not 0 <= self.distill <= 1:
            raise TrainError(f"--distill must be in [0, 1], got {self.distill}")
        if self.distill > 0 and not self.teachers:
            raise TrainError("--distill needs at least one --teacher (the models to learn from)")
        if self.teachers and self.distill == 0:
            raise TrainError("--teacher needs --distill > 0 (the weight of its scores)")
        if self.word_classes and self.teachers:
            raise TrainError(
                "--word-classes cannot be combined with --teacher (the teachers score only "
                "the run's labels, not each other word)"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CONFIG_FORMAT,
            "data_dir": self.data_dir,
            "words": list(self.words),
            "model": self.model,
            "tiny_model": self.tiny_model,
            "spec": self.spec.to_dict(),
            "index": dataclasses.asdict(self.index),
            "augment": dataclasses.asdict(self.augment),
            **{
                k: getattr(self, k)
                for k in (
                    "epochs",
                    "batch_size",
                    "lr",
                    "warmup_epochs",
                    "weight_decay",
                    "label_smoothing",
                    "bn_momentum",
                    "mixup",
                    "ema",
                    "distill",
                    "word_classes",
                    "seed",
                )
            },
            "teachers": list(self.teachers),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        if d.get("format") != CONFIG_FORMAT:
            raise TrainError(f"not a kws training config (format {d.get('format')!r})")
        d = {k: v for k, v in d.items() if k != "format"}
        try:
            d["words"] = tuple(d["words"])
            d["spec"] = features.FeatureSpec.from_dict(d["spec"])
            d["index"] = kdata.IndexOptions(**d["index"])
            d["augment"] = kdata.AugmentConfig(**d["augment"])
            d["teachers"] = tuple(d.get("teachers", ()))
            return cls(**d)
        except (KeyError, TypeError, ValueError) as e:
            raise TrainError(f"not a valid kws training config ({type(e).__name__}: {e})") from None

    @property
    def labels(self) -> tuple[str, ...]:
        return (kdata.LABEL_SILENCE, kdata.LABEL_UNKNOWN, *self.words)


@dataclass(frozen=True)
class EpochLog:
    epoch: int
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float
    lr: float
    seconds: float


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    best_epoch: int
    val_accuracy: float
    history: list[EpochLog]
    train_seconds: float
    params: int
    resumed_from: int  # epochs already done when this call started


def configure_tensorflow(seed: int) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from kws.quiet import quiet_stderr

    with quiet_stderr():  # absl's start-up lines (CUDA stubs, oneDNN notice) before any setting
        import keras
        import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _schedule(config: TrainConfig, steps_per_epoch: int) -> Any:
    """Linear warm-up to ``lr``, then cosine decay to 0 over the remaining epochs."""
    import keras

    total = config.epochs * steps_per_epoch
    warmup = min(config.warmup_epochs * steps_per_epoch, total - 1)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else config.lr,
        decay_steps=total - warmup,
        warmup_target=config.lr if warmup else None,
        warmup_steps=warmup,
        alpha=0.0,
    )


def _compile(model: Any, config: TrainConfig, steps_per_epoch: int) -> None:
    import keras

    schedule = _schedule(config, steps_per_epoch)
    ema = {"use_ema": True, "ema_momentum": config.ema} if config.ema else {}
    optimizer = (
        keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay, **ema)
        if config.weight_decay
        else keras.optimizers.Adam(learning_rate=schedule, **ema)
    )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["categorical_accuracy"],
    )


def mix_batch(
    x: np.ndarray, targets: np.ndarray, rng: np.random.Generator, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mixup (Zhang et al., ICLR 2018): each example is mixed with a random other one of the
    batch, features and targets alike, with a weight drawn from Beta(alpha, alpha) and folded
    to >= 0.5 so that the example stays the dominant part. New arrays; inputs are unchanged."""
    lam = rng.beta(alpha, alpha, size=len(x)).astype(np.float32)
    lam = np.maximum(lam, 1 - lam)
    other = rng.permutation(len(x))
    shape = (-1,) + (1,) * (x.ndim - 1)
    mixed_x = lam.reshape(shape) * x + (1 - lam.reshape(shape)) * x[other]
    mixed_t = lam[:, None] * targets + (1 - lam[:, None]) * targets[other]
    return mixed_x.astype(x.dtype, copy=False), mixed_t


class _AveragedWeights:
    """With EMA on, the optimizer's moving average of the weights stands in for the weights
    while the model is evaluated or saved as the best model; the training weights come back
    afterwards (and are what the checkpoint continues from)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.saved: list[np.ndarray] | None = None

    def __enter__(self) -> Any:
        if self.model.optimizer.use_ema:
            variables = self.model.trainable_variables
            self.saved = [np.array(v.numpy()) for v in variables]
            self.model.optimizer.finalize_variable_values(variables)
        return self.model

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            for v, w in zip(self.model.trainable_variables, self.saved, strict=True):
                v.assign(w)
            self.saved = None


def _cross_entropy(probs: np.ndarray, labels: np.ndarray) -> float:
    p = np.clip(probs[np.arange(labels.size), labels], 1e-7, 1.0)
    return float(-np.log(p).mean())


def _folded(model: Any, fold: np.ndarray) -> Any:
    """The model with its scores summed by ``fold`` (classes × labels, 0/1): with
    --word-classes, a last layer that adds the other words' probabilities into _unknown_ (a
    fully connected layer, as int8 as the rest); without, the model itself."""
    if fold.shape[0] == fold.shape[1]:
        return model
    import keras

    layer = keras.layers.Dense(fold.shape[1], use_bias=False, trainable=False, name="fold_words")
    outputs = layer(model.outputs[0])
    layer.set_weights([fold.astype(np.float32)])
    return keras.Model(model.inputs, outputs, name=model.name)


def load_run_model(run_dir: Path, *, name: str = "model.keras") -> Any:
    return load_keras_model(Path(run_dir) / name)


def _save_model(model: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        model.save(tmp)


class _Data:
    """Everything the loop needs from the dataset, loaded once."""

    def __init__(self, config: TrainConfig, cache_dir: Path | None) -> None:
        index = kdata.build_index(config.data_dir, words=config.words, options=config.index)
        self.index = index
        self.train = kdata.load_split(index, "training", spec=config.spec, cache_dir=cache_dir)
        self.val = kdata.load_split(index, "validation", spec=config.spec, cache_dir=cache_dir)
        if len(self.train) == 0 or len(self.val) == 0:
            raise TrainError(
                f"{config.data_dir}: the split has {len(self.train)} training and {len(self.val)} "
                "validation examples; both must be non-empty (add speakers or change --validation)"
            )
        self.noise = kdata.load_noise(index, spec=config.spec)
        self.val_x = kdata.fixed_features(
            self.val,
            noise=self.noise,
            spec=config.spec,
            seed=config.seed,
            config=config.augment,
            cache_dir=cache_dir,
        )
        # --word-classes: each other word of the dataset (not --extra-unknown) is a class of
        # its own while training, after the run's labels; `fold` sums them into _unknown_
        self.word_classes: tuple[str, ...] = ()
        targets, unknown = self.train.labels, config.labels.index(kdata.LABEL_UNKNOWN)
        if config.word_classes:
            own = self.train.other_words
            self.word_classes = tuple(sorted(set(self.train.words[own].tolist())))
            if not self.word_classes:
                raise TrainError(
                    f"{config.data_dir}: --word-classes needs clips of other words in the "
                    "training split; it has none"
                )
            targets = self.train.labels.copy()
            ids = {w: len(config.labels) + i for i, w in enumerate(self.word_classes)}
            targets[own] = [ids[w] for w in self.train.words[own]]
        self.fold = np.zeros((len(config.labels) + len(self.word_classes), len(config.labels)))
        self.fold[np.arange(len(config.labels)), np.arange(len(config.labels))] = 1.0
        self.fold[len(config.labels) :, unknown] = 1.0
        self.batches = kdata.TrainingBatches(
            self.train,
            noise=self.noise,
            spec=config.spec,
            config=config.augment,
            batch_size=config.batch_size,
            seed=config.seed,
            targets=targets,
        )

    def fingerprint(self) -> dict[str, Any]:
        return {
            "training": self.train.fingerprint,
            "validation": self.val.fingerprint,
            "counts": self.index.counts(),
            "noise_files": self.index.noise_files,
        }


class _NoRetracingNotice(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warning (see `_Teachers`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def teacher_files(config: TrainConfig) -> list[dict[str, str]]:
    """Path and SHA-256 of each ``--teacher`` model file (what a run records to tell whether
    a teacher changed); `TrainError` for one that is not there."""
    from kws.evaluate import model_file
    from kws.fsutil import file_sha256

    out = []
    for given in config.teachers:
        file = model_file(Path(given))
        if not file.is_file():
            raise TrainError(f"--teacher {given}: no such file ({file})")
        out.append({"path": str(given), "sha256": file_sha256(file)})
    return out


def refuse_changed_teachers(
    recorded: list[dict[str, str]] | None, current: list[dict[str, str]], since: str
) -> None:
    """`TrainError` naming the first teacher whose file differs from what a run recorded
    (``since``: where it was recorded); nothing to compare when ``recorded`` is None."""
    for was, new in zip(recorded or [], current, strict=False):
        if was != new:
            raise TrainError(f"--teacher {new['path']}: the file changed since {since}")


class _Teachers:
    """The ``--teacher`` models, each checked to have the run's labels and feature spec and
    to give class probabilities; their averaged scores on a training batch are the
    distillation targets (Hinton et al., "Distilling the knowledge in a neural network",
    2015, at temperature 1). A model file from outside a run is trusted to have the run's
    labels in its order and spec (only its input shape and output size can be checked).

    While it is open, TensorFlow's "triggered tf.function retracing" warning is dropped: each
    teacher traces its predict function once per batch shape (probe, full batches, the last
    one), as meant. `close` puts the logger back."""

    def __init__(self, config: TrainConfig, run_dir: Path) -> None:
        from kws.evaluate import EvalError, KerasPredictor, load_predictor
        from kws.export.runtime import ModelFileError
        from kws.runs import RunFileError, run_dir_of

        self.files = teacher_files(config)
        self.predictors: list[Any] = []
        self._filter = _NoRetracingNotice()
        logging.getLogger("tensorflow").addFilter(self._filter)
        inside = Path(run_dir).resolve()
        for given in config.teachers:
            path = Path(given)
            if path.resolve() == inside or inside in path.resolve().parents:
                raise TrainError(
                    f"--teacher {path}: lies in the run directory {run_dir}, which training "
                    "overwrites; copy the teacher elsewhere"
                )
            bare = path.is_file() and run_dir_of(path) is None  # a model file outside a run
            try:
                predictor, labels, spec, _ = load_predictor(
                    path,
                    labels=config.labels if bare else None,
                    spec=config.spec if bare else None,
                )
            except (EvalError, RunFileError, ModelFileError) as e:
                raise TrainError(f"--teacher {e}") from None
            if tuple(labels) != config.labels:
                raise TrainError(
                    f"--teacher {path}: its labels {list(labels)} differ from this run's "
                    f"{list(config.labels)}"
                )
            if spec != config.spec:
                raise TrainError(f"--teacher {path}: trained on another feature spec than this run")
            if isinstance(predictor, KerasPredictor):  # one batch: no predict() overhead
                predictor = predictor.model.predict_on_batch
            probe = np.asarray(predictor(np.zeros((1, *config.spec.shape), np.float32)))
            if probe.shape != (1, len(config.labels)):
                raise TrainError(
                    f"--teacher {path}: gives {probe.shape[-1]} scores, this run has "
                    f"{len(config.labels)} labels"
                )
            if probe.min() < 0 or abs(float(probe.sum()) - 1) > 0.05:  # int8: about 1
                raise TrainError(
                    f"--teacher {path}: its outputs are not class probabilities (a softmax "
                    "output is needed)"
                )
            self.predictors.append(predictor)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        scores = [np.asarray(p(x), dtype=np.float32) for p in self.predictors]
        return np.mean(scores, axis=0)

    def close(self) -> None:
        logging.getLogger("tensorflow").removeFilter(self._filter)


# what `train` writes into a run directory before its first epoch is recorded as done
_BEFORE_FIRST_EPOCH = frozenset({"config.json", "checkpoints", "logs", "model.keras"})


def _state_path(run_dir: Path) -> Path:
    """checkpoints/state.json: written at the end of each epoch, so its presence means a run
    has an epoch to resume from."""
    return run_dir / "checkpoints" / "state.json"


def interrupted_start(run_dir: Path) -> bool:
    """True when ``run_dir`` holds a run stopped before its first epoch ended: its
    ``checkpoints/`` folder exists without ``state.json``, and nothing else is there but what
    `train` writes first. Such a run has nothing to keep; training into it starts again."""
    if not (run_dir / "checkpoints").is_dir() or _state_path(run_dir).exists():
        return False
    return {p.name for p in run_dir.iterdir()} <= _BEFORE_FIRST_EPOCH


def train(
    config: TrainConfig,
    run_dir: Path | str,
    *,
    resume: bool = False,
    cache_dir: Path | None = None,
    on_epoch_start: Callable[[int, int], None] | None = None,
    on_batch: Callable[[int, float, float], None] | None = None,
    on_epoch_end: Callable[[EpochLog], None] | None = None,
) -> TrainResult:
    """Train (or resume) a run; see the module docstring.

    Raises
    ------
    TrainError
        The run directory holds another run (without ``resume``), or a resumed run's
        config differs (or a teacher's file), a teacher does not fit the run, or the data
        give an empty split.
    """
    run_dir = Path(run_dir)
    state_path = _state_path(run_dir)
    if resume and not state_path.exists() and interrupted_start(run_dir):
        resume = False  # stopped before its first epoch ended: nothing to continue, start again
    if resume:
        if not state_path.exists():
            raise TrainError(f"{run_dir}: no checkpoint to resume from (checkpoints/state.json)")
        saved = read_json(run_dir / "config.json")
        if TrainConfig.from_dict(saved) != config:  # older runs: new options at defaults
            raise TrainError(
                f"{run_dir}: config.json differs from the options given; resume with "
                "the same options (or train into a new --out)"
            )
    elif run_dir.exists() and any(run_dir.iterdir()) and not interrupted_start(run_dir):
        raise TrainError(
            f"{run_dir}: already holds a run; use --resume to continue it or another --out"
        )
    configure_tensorflow(config.seed)
    teachers = _Teachers(config, run_dir) if config.teachers else None  # refused before writing
    try:
        if resume and teachers is not None:
            refuse_changed_teachers(
                read_json(state_path).get("teachers"),
                teachers.files,
                "this run started (SHA-256 in checkpoints/state.json); resuming would mix "
                "two teachers",
            )
        return _train_epochs(
            config,
            run_dir,
            teachers,
            resume=resume,
            cache_dir=cache_dir,
            on_epoch_start=on_epoch_start,
            on_batch=on_batch,
            on_epoch_end=on_epoch_end,
        )
    finally:
        if teachers is not None:
            teachers.close()


def _train_epochs(
    config: TrainConfig,
    run_dir: Path,
    teachers: _Teachers | None,
    *,
    resume: bool,
    cache_dir: Path | None,
    on_epoch_start: Callable[[int, int], None] | None,
    on_batch: Callable[[int, float, float], None] | None,
    on_epoch_end: Callable[[EpochLog], None] | None,
) -> TrainResult:
    """`train` after its checks: the epochs, checkpoints and the finished run directory."""
    state_path = _state_path(run_dir)
    ckpt_dir = state_path.parent
    data = _Data(config, cache_dir)  # bad data is refused before anything is written
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir.mkdir(exist_ok=True)
    import keras
    import tensorflow as tf

    steps = len(data.batches)
    started = now()
    if resume:
        state = read_json(state_path)
        model = keras.models.load_model(ckpt_dir / "last.keras")
        history = [EpochLog(**h) for h in state["history"]]
        best_epoch, best_acc = state["best_epoch"], state["best_val_accuracy"]
        done, started = state["epochs_done"], state["started"]
    else:
        model = models.build(
            config.model,
            config.spec.shape,
            len(config.labels) + len(data.word_classes),
            tiny=config.tiny_model,
        )
        for layer in model.layers:  # moving statistics: how fast they follow the weights
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = config.bn_momentum
        _compile(model, config, steps)
        history, best_epoch, best_acc, done = [], -1, -1.0, 0
        write_json(run_dir / "config.json", config.to_dict())
    writer = tf.summary.create_file_writer(str(run_dir / "logs"))
    eye = np.eye(len(data.fold), dtype=np.float32)
    train_seconds = sum(h.seconds for h in history)
    for epoch in range(done, config.epochs):
        keras.utils.set_random_seed(config.seed + 1000 * epoch)  # dropout: same on resume
        t0 = time.perf_counter()
        if on_epoch_start is not None:
            on_epoch_start(epoch, steps)
        losses, accs = [], []
        mix_rng = np.random.default_rng([config.seed, epoch, 0x6D1C])
        for x, y in data.batches.epoch(epoch):
            targets = eye[y]
            if config.mixup:
                x, targets = mix_batch(x, targets, mix_rng, config.mixup)
            if teachers is not None:
                targets = (1 - config.distill) * targets + config.distill * teachers(x)
            logs = model.train_on_batch(x, targets, return_dict=True)
            losses.append(float(logs["loss"]))
            accs.append(float(logs["categorical_accuracy"]))
            if on_batch is not None:
                on_batch(len(losses), losses[-1], accs[-1])
        with _AveragedWeights(model):
            probs = model.predict(data.val_x, batch_size=512, verbose=0) @ data.fold
            val_acc = float((probs.argmax(axis=1) == data.val.labels).mean())
            if val_acc > best_acc:
                best_acc, best_epoch = val_acc, epoch + 1
                _save_model(_folded(model, data.fold), run_dir / "model.keras")
        lr = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        log = EpochLog(
            epoch + 1,
            float(np.mean(losses)),
            float(np.mean(accs)),
            _cross_entropy(probs, data.val.labels),
            val_acc,
            lr,
            time.perf_counter() - t0,
        )
        history.append(log)
        train_seconds += log.seconds
        with writer.as_default(step=epoch + 1):
            for key, value in dataclasses.asdict(log).items():
                if key != "epoch":
                    tf.summary.scalar(key, value)
        _save_model(model, ckpt_dir / "last.keras")
        write_json(
            state_path,
            {
                "epochs_done": epoch + 1,
                "best_epoch": best_epoch,
                "best_val_accuracy": best_acc,
                "started": started,
                "history": [dataclasses.asdict(h) for h in history],
                **({"teachers": teachers.files} if teachers is not None else {}),
            },
        )
        write_csv(run_dir / "history.csv", [dataclasses.asdict(h) for h in history])
        if on_epoch_end is not None:
            on_epoch_end(log)
    writer.close()
    params = _finish(
        config, run_dir, data, teachers, history, best_epoch, best_acc, train_seconds, started
    )
    return TrainResult(run_dir, best_epoch, best_acc, history, train_seconds, params, done)


@dataclass(frozen=True)
class Reproduction:
    """How a re-run compares with the run it reproduces."""

    weights_identical: bool
    metrics_identical: bool
    val_accuracy: tuple[float, float]
    manifest_differences: list[str]

    @property
    def reproduced(self) -> bool:
        return self.weights_identical and self.metrics_identical


def compare_runs(original: Path, rerun: Path) -> Reproduction:
    """Compare two run directories: weights bit for bit, metrics, and what differs in the
    manifests (code, packages, platform, data) that could explain a difference."""
    from kws.runs import manifest_differences

    a, b = load_run_model(original), load_run_model(rerun)
    same = all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights(), strict=True))
    ma, mb = read_json(Path(original) / "metrics.json"), read_json(Path(rerun) / "metrics.json")
    same_metrics = (ma["val_accuracy"], ma["best_epoch"]) == (mb["val_accuracy"], mb["best_epoch"])
    diffs = manifest_differences(
        read_json(Path(original) / "manifest.json"), read_json(Path(rerun) / "manifest.json")
    )
    return Reproduction(same, same_metrics, (ma["val_accuracy"], mb["val_accuracy"]), diffs)


def _finish(
    config: TrainConfig,
    run_dir: Path,
    data: _Data,
    teachers: _Teachers | None,
    history: list[EpochLog],
    best_epoch: int,
    best_acc: float,
    train_seconds: float,
    started: str,
) -> int:
    """metrics.json, manifest.json and the plots, from the best model; returns its parameters."""
    from kws.evaluate import evaluate_arrays
    from kws.plots import plot_confusion, plot_curves

    model = load_run_model(run_dir)
    probs = model.predict(data.val_x, batch_size=512, verbose=0)
    report = evaluate_arrays(probs, data.val.labels, config.labels)
    summary = models.summarize(model)
    metrics = {
        "best_epoch": best_epoch,
        "val_accuracy": best_acc,
        "validation": report.to_dict(),
        "params": summary.params,
        "macs": summary.macs,
        "int8_bytes_estimate": summary.int8_bytes,
        "train_seconds": round(train_seconds, 1),
        "epochs": len(history),
    }
    if data.word_classes:
        metrics["word_classes"] = list(data.word_classes)
    write_json(run_dir / "metrics.json", metrics)
    write_json(
        run_dir / "manifest.json",
        manifest(
            data=data.fingerprint()
            | ({"teachers": teachers.files} if teachers is not None else {}),
            seeds={"seed": config.seed},
            started=started,
            finished=now(),
            train_seconds=round(train_seconds, 1),
        ),
    )
    plot_curves(history, run_dir / "curves.png")
    plot_confusion(
        report.confusion,
        config.labels,
        run_dir / "confusion.png",
        title=f"validation, accuracy {best_acc:.2%} (epoch {best_epoch})",
    )
    return summary.params

"""`kws train`, `kws eval`: run directory, reproducibility, resume, evaluation of every kind
of model file. Tiny models on generated tone "words"."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import make_word_dataset
from typer.testing import CliRunner

import features
from kws.cli import app
from kws.data import AugmentConfig, IndexOptions
from kws.evaluate import EvalError, evaluate, scores_on
from kws.train import (
    TrainConfig,
    TrainError,
    compare_runs,
    load_run_model,
    mix_batch,
    train,
)

runner = CliRunner()
WORDS = ("yes", "no", "up")
INDEX = IndexOptions(validation_percentage=20, testing_percentage=20)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_word_dataset(tmp_path_factory.mktemp("data") / "words", np.random.default_rng(3))


def config(data: Path, **kw: object) -> TrainConfig:
    base = dict(
        data_dir=str(data),
        words=WORDS,
        model="ds_cnn-s",
        tiny_model=True,
        epochs=2,
        batch_size=16,
        lr=0.01,
        warmup_epochs=0,
        index=INDEX,
        seed=5,
    )
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def weights(run: Path) -> list[np.ndarray]:
    return load_run_model(run).get_weights()


def test_cli_train_then_eval(tmp_path: Path, dataset: Path) -> None:
    run = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "train",
            str(dataset),
            "--words",
            "yes,no,up",
            "--model",
            "bc_resnet-1",
            "--tiny",
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--validation",
            "20",
            "--testing",
            "20",
            "--out",
            str(run),
            "--cache-dir",
            str(tmp_path / "c"),
        ],
    )
    assert result.exit_code == 0, result.output
    for name in (
        "config.json",
        "manifest.json",
        "model.keras",
        "history.csv",
        "curves.png",
        "confusion.png",
        "metrics.json",
        "checkpoints/last.keras",
        "checkpoints/state.json",
    ):
        assert (run / name).exists(), name
    assert list((run / "logs").iterdir())  # TensorBoard event files
    metrics = json.loads((run / "metrics.json").read_text())
    manifest = json.loads((run / "manifest.json").read_text())
    assert {
        "code",
        "packages",
        "python",
        "platform",
        "cpu",
        "data",
        "seeds",
        "started",
        "finished",
    } <= set(manifest)
    assert len(manifest["data"]["training"]) == 64  # SHA-256 of the training files
    assert "best validation accuracy" in result.output
    out = tmp_path / "eval.json"
    result = runner.invoke(
        app,
        [
            "eval",
            str(run),
            "--data",
            str(dataset),
            "--split",
            "validation",
            "--json",
            str(out),
            "--plot",
            str(tmp_path / "c.png"),
            "--cache-dir",
            str(tmp_path / "c"),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert {"accuracy", "per_class", "n"} <= set(report)
    assert report["accuracy"] == pytest.approx(metrics["val_accuracy"])  # same model, same data
    assert (tmp_path / "c.png").exists()
    open_set = report["open_set"]
    assert open_set["folded_accuracy"] == pytest.approx(report["accuracy"])
    assert open_set["keywords"] + open_set["others"] + open_set["silences"] == report["n"]
    assert "non-keyword rejection" in result.output
    again = runner.invoke(
        app, ["train", str(dataset), "--words", "yes,no,up", "--tiny", "--out", str(run)]
    )
    assert again.exit_code == 2 and "already holds a run" in again.output


def test_same_config_gives_bit_identical_weights_and_reproduce(
    tmp_path: Path, dataset: Path
) -> None:
    train(config(dataset), tmp_path / "a", cache_dir=tmp_path / "c")
    train(config(dataset), tmp_path / "b", cache_dir=tmp_path / "c")
    for x, y in zip(weights(tmp_path / "a"), weights(tmp_path / "b"), strict=True):
        assert np.array_equal(x, y)
    result = runner.invoke(
        app,
        [
            "train",
            "--reproduce",
            str(tmp_path / "a"),
            "--out",
            str(tmp_path / "r"),
            "--cache-dir",
            str(tmp_path / "c"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "reproduced: weights bit-identical" in result.output
    other = train(config(dataset, seed=6), tmp_path / "d", cache_dir=tmp_path / "c")
    assert other.run_dir.exists()
    verdict = compare_runs(tmp_path / "a", tmp_path / "d")
    assert not verdict.reproduced and not verdict.weights_identical
    assert not all(
        np.array_equal(x, y)
        for x, y in zip(weights(tmp_path / "a"), weights(tmp_path / "d"), strict=True)
    )


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {
            "mixup": 0.4,
            "ema": 0.9,
            "augment": AugmentConfig(
                channel=0.5,
                reverb=0.5,
                negatives=0.3,
                negative_kinds=("onset-swap", "coda-borrow"),
            ),
            "word_classes": True,
        },
    ],
    ids=["plain", "mixup-ema-channel-negatives-word-classes"],
)
def test_resume_after_interrupt_equals_uninterrupted(
    tmp_path: Path, dataset: Path, extra: dict[str, object]
) -> None:
    cfg = config(dataset, epochs=3, **extra)
    train(cfg, tmp_path / "full", cache_dir=tmp_path / "c")

    def interrupt(log: object) -> None:
        if log.epoch == 2:  # type: ignore[attr-defined]
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut", cache_dir=tmp_path / "c", on_epoch_end=interrupt)
    state = json.loads((tmp_path / "cut" / "checkpoints" / "state.json").read_text())
    assert state["epochs_done"] == 2
    if not extra:  # a run written before the newer options existed resumes with their defaults
        path = tmp_path / "cut" / "config.json"
        older = json.loads(path.read_text())
        del older["mixup"], older["ema"], older["augment"]["channel"]
        del older["teachers"], older["distill"], older["word_classes"]
        del older["augment"]["negative_kinds"], older["augment"]["reverb"]
        path.write_text(json.dumps(older))
    result = train(cfg, tmp_path / "cut", resume=True, cache_dir=tmp_path / "c")
    assert result.resumed_from == 2 and len(result.history) == 3
    for x, y in zip(
        load_run_model(tmp_path / "full", name="checkpoints/last.keras").get_weights(),
        load_run_model(tmp_path / "cut", name="checkpoints/last.keras").get_weights(),
        strict=True,
    ):
        assert np.array_equal(x, y)
    for x, y in zip(weights(tmp_path / "full"), weights(tmp_path / "cut"), strict=True):
        assert np.array_equal(x, y)  # the best model too (with EMA: the averaged weights)
    with pytest.raises(TrainError, match=r"config\.json differs"):
        train(
            config(dataset, epochs=4, lr=0.02),
            tmp_path / "cut",
            resume=True,
            cache_dir=tmp_path / "c",
        )


def test_distillation_learns_the_teachers_scores_and_is_recorded(
    tmp_path: Path, dataset: Path
) -> None:
    """With --distill 1 the targets are the teachers' scores alone: the student of a teacher
    that says "up" to everything says "up" to every validation clip, whatever their labels.
    The teacher's file hash goes into the manifest; a teacher of other words, or without
    --distill, is refused by name."""
    import keras

    labels = config(dataset).labels
    shape = config(dataset).spec.shape
    bias = np.zeros(len(labels), np.float32)
    bias[labels.index("up")] = 6.0
    inputs = keras.Input(shape)
    outputs = keras.layers.Dense(
        len(labels),
        activation="softmax",
        kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant(bias),
    )(keras.layers.Flatten()(inputs))
    teacher = tmp_path / "teacher.keras"
    keras.Model(inputs, outputs).save(teacher)

    cfg = config(dataset, epochs=10, lr=0.03, teachers=(str(teacher),), distill=1.0)
    train(cfg, tmp_path / "student", cache_dir=tmp_path / "c")
    last = tmp_path / "student" / "checkpoints" / "last.keras"  # (the best epoch is chosen
    probs, truth, _, _ = scores_on(last, dataset, split="validation")  # on the labels)
    assert (probs.argmax(axis=1) == labels.index("up")).all()
    assert (truth != labels.index("up")).mean() > 0.5
    manifest = json.loads((tmp_path / "student" / "manifest.json").read_text())
    (recorded,) = manifest["data"]["teachers"]
    assert recorded["path"] == str(teacher) and len(recorded["sha256"]) == 64
    plain = train(config(dataset, epochs=3), tmp_path / "plain", cache_dir=tmp_path / "c")
    probs, _, _, _ = scores_on(plain.run_dir / "checkpoints" / "last.keras", dataset)
    assert (probs.argmax(axis=1) != labels.index("up")).any()  # without the teacher

    other = train(config(dataset, words=("yes", "no")), tmp_path / "two", cache_dir=tmp_path / "c")
    with pytest.raises(TrainError, match=r"--teacher .*two: its labels .* differ"):
        train(
            config(dataset, teachers=(str(other.run_dir),), distill=0.5),
            tmp_path / "x",
            cache_dir=tmp_path / "c",
        )
    assert not (tmp_path / "x").exists()
    with pytest.raises(TrainError, match="--teacher needs --distill > 0"):
        config(dataset, teachers=(str(teacher),))


def _constant_model(path: Path, shape: tuple[int, ...], bias: np.ndarray, softmax: bool) -> None:
    import keras

    inputs = keras.Input(shape)
    outputs = keras.layers.Dense(
        bias.size,
        activation="softmax" if softmax else None,
        kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant(bias),
    )(keras.layers.Flatten()(inputs))
    keras.Model(inputs, outputs).save(path)


def test_distillation_resumes_and_refuses_a_changed_teacher(tmp_path: Path, dataset: Path) -> None:
    """Resume with a teacher gives the uninterrupted run's weights; a teacher file that
    changed since the run started is refused by --resume and --reproduce; a teacher without
    probabilities or inside the run directory is refused before anything is written."""
    shape, k = config(dataset).spec.shape, len(config(dataset).labels)
    teacher = tmp_path / "teacher.keras"
    _constant_model(teacher, shape, np.linspace(0, 2, k, dtype=np.float32), softmax=True)
    cfg = config(dataset, epochs=2, teachers=(str(teacher),), distill=0.7)
    train(cfg, tmp_path / "full", cache_dir=tmp_path / "c")

    def interrupt(log: object) -> None:
        if log.epoch == 1:  # type: ignore[attr-defined]
            raise KeyboardInterrupt

    for name in ("cut", "cut2"):
        with pytest.raises(KeyboardInterrupt):
            train(cfg, tmp_path / name, cache_dir=tmp_path / "c", on_epoch_end=interrupt)
    train(cfg, tmp_path / "cut", resume=True, cache_dir=tmp_path / "c")
    for x, y in zip(weights(tmp_path / "full"), weights(tmp_path / "cut"), strict=True):
        assert np.array_equal(x, y)

    _constant_model(teacher, shape, np.linspace(2, 0, k, dtype=np.float32), softmax=True)
    with pytest.raises(TrainError, match=r"--teacher .*teacher\.keras: the file changed"):
        train(cfg, tmp_path / "cut2", resume=True, cache_dir=tmp_path / "c")
    result = runner.invoke(
        app, ["train", "--reproduce", str(tmp_path / "full"), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2 and "it cannot be reproduced" in result.output, result.output
    assert not (tmp_path / "r").exists()

    scores = tmp_path / "scores.keras"  # no softmax: scores, not probabilities
    _constant_model(scores, shape, np.linspace(0, 2, k, dtype=np.float32), softmax=False)
    with pytest.raises(TrainError, match=rf"--teacher {scores}: .*not class probabilities"):
        train(config(dataset, teachers=(str(scores),), distill=0.5), tmp_path / "x")
    assert not (tmp_path / "x").exists()

    # a run stopped before its first epoch is trained into again: not with its own model
    def stop(epoch: int, steps: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config(dataset), tmp_path / "y", cache_dir=tmp_path / "c", on_epoch_start=stop)
    (tmp_path / "y" / "model.keras").write_bytes(teacher.read_bytes())
    own = tmp_path / "y" / "model.keras"
    with pytest.raises(TrainError, match="lies in the run directory"):
        train(config(dataset, teachers=(str(own),), distill=0.5), tmp_path / "y")
    assert own.read_bytes() == teacher.read_bytes()


def test_word_classes_are_trained_apart_and_folded_into_unknown(
    tmp_path: Path, dataset: Path
) -> None:
    """--word-classes: the other words (cat, dog) are classes of their own while training;
    the saved model adds their probabilities into _unknown_ in a last fixed layer, so it has
    the run's labels like any other and exports to int8."""
    import keras

    run = tmp_path / "run"
    result = train(config(dataset, epochs=3, word_classes=True), run, cache_dir=tmp_path / "c")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["word_classes"] == ["cat", "dog"]
    model = load_run_model(run)
    last = load_run_model(run, name="checkpoints/last.keras")
    assert model.output_shape == (None, 5) and last.output_shape == (None, 7)
    fold = model.get_layer("fold_words").get_weights()[0]
    expected = np.zeros((7, 5), np.float32)
    expected[np.arange(5), np.arange(5)] = 1
    expected[5:, 1] = 1  # cat and dog → _unknown_
    assert np.array_equal(fold, expected) and not model.get_layer("fold_words").trainable
    x = np.random.default_rng(0).normal(size=(8, *features.FeatureSpec().shape))
    x = x.astype(np.float32)
    inner = keras.Model(model.inputs, model.get_layer("fold_words").input)
    scores = inner.predict(x, verbose=0)
    assert scores.shape == (8, 7)
    np.testing.assert_allclose(model.predict(x, verbose=0), scores @ fold, rtol=1e-6)
    np.testing.assert_allclose(model.predict(x, verbose=0).sum(axis=1), 1.0, rtol=1e-5)
    # the run's validation accuracy is that of the folded model
    val = evaluate(run, dataset, split="validation")
    assert val.accuracy == pytest.approx(result.val_accuracy)
    with pytest.raises(TrainError, match="--word-classes cannot be combined with --teacher"):
        config(dataset, word_classes=True, teachers=(str(run),), distill=0.5)
    # a dataset without other words has nothing to make classes of
    bare = tmp_path / "bare"
    shutil.copytree(dataset, bare, ignore=shutil.ignore_patterns("cat", "dog"))
    with pytest.raises(TrainError, match="--word-classes needs clips of other words"):
        train(config(bare, word_classes=True), tmp_path / "r2", cache_dir=tmp_path / "c")
    assert not (tmp_path / "r2").exists()


def test_a_run_stopped_in_its_first_epoch_starts_again(tmp_path: Path, dataset: Path) -> None:
    """Ctrl-C before the first epoch ends leaves config.json and an empty checkpoints/: the
    same command, with --resume or without, trains it from the start; a folder with anything
    else in it is still refused."""
    cfg = config(dataset, epochs=1)

    def interrupt(epoch: int, steps: int) -> None:
        raise KeyboardInterrupt

    for resume in (True, False):
        run = tmp_path / f"cut{resume}"
        with pytest.raises(KeyboardInterrupt):
            train(cfg, run, cache_dir=tmp_path / "c", on_epoch_start=interrupt)
        assert (run / "config.json").exists() and not (run / "checkpoints" / "state.json").exists()
        result = train(cfg, run, resume=resume, cache_dir=tmp_path / "c")
        assert result.resumed_from == 0 and len(result.history) == 1
    # a folder that is not an interrupted start keeps its files
    stray = tmp_path / "stray"
    (stray / "checkpoints").mkdir(parents=True)
    (stray / "notes.txt").write_text("mine")
    copied = tmp_path / "copied"  # a model copied for export: no checkpoints/
    copied.mkdir()
    (copied / "config.json").write_text("{}")
    for folder in (stray, copied):
        with pytest.raises(TrainError, match="already holds a run"):
            train(cfg, folder, cache_dir=tmp_path / "c")
        with pytest.raises(TrainError, match="no checkpoint to resume from"):
            train(cfg, folder, resume=True, cache_dir=tmp_path / "c")
    assert (stray / "notes.txt").read_text() == "mine"


def test_mix_batch_mixes_pairs_with_the_example_dominant() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5, 3)).astype(np.float32)
    labels = rng.permutation(64)  # all different: a row's weight on its own label is lam
    targets = np.eye(64, dtype=np.float32)[labels]
    x0, t0 = x.copy(), targets.copy()
    mx, mt = mix_batch(x, targets, np.random.default_rng(1), 0.4)
    assert np.array_equal(x, x0) and np.array_equal(targets, t0)  # inputs untouched
    assert mx.shape == x.shape and mx.dtype == np.float32
    np.testing.assert_allclose(mt.sum(axis=1), 1.0, rtol=1e-6)
    lam = mt[np.arange(64), labels]
    assert (lam >= 0.5 - 1e-6).all() and (lam < 1 - 1e-6).any()
    # every row is lam·x_i + (1 - lam)·x_j for the row j whose label has the rest of the weight
    for i in range(64):
        if lam[i] > 1 - 1e-6:  # mixed with itself
            np.testing.assert_allclose(mx[i], x[i], rtol=1e-6)
            continue
        partner = int(np.flatnonzero(labels == np.argsort(mt[i])[-2])[0])
        np.testing.assert_allclose(
            mx[i], lam[i] * x[i] + (1 - lam[i]) * x[partner], rtol=1e-5, atol=1e-5
        )
    # seeded: the same generator state gives the same mix
    again = mix_batch(x, targets, np.random.default_rng(1), 0.4)
    assert np.array_equal(again[0], mx) and np.array_equal(again[1], mt)


def test_eval_keras_and_int8_tflite_with_label_map(tmp_path: Path, dataset: Path) -> None:
    import tensorflow as tf
    from test_models import int8_tflite

    run = tmp_path / "run"
    train(config(dataset, epochs=4), run, cache_dir=tmp_path / "c")
    labels = ["_silence_", "_unknown_", *WORDS]
    keras_report = evaluate(
        run / "model.keras", dataset, split="all", labels=labels, cache_dir=tmp_path / "c"
    )
    run_report = evaluate(run, dataset, split="all", cache_dir=tmp_path / "c")
    assert keras_report.accuracy == pytest.approx(run_report.accuracy)
    flat = int8_tflite(load_run_model(run), np.random.default_rng(0))
    (tmp_path / "m.tflite").write_bytes(flat)
    lite = evaluate(
        tmp_path / "m.tflite", dataset, split="all", labels=labels, cache_dir=tmp_path / "c"
    )
    assert lite.n == run_report.n
    assert abs(lite.accuracy - run_report.accuracy) <= 0.1
    # folding: the model's word "up" counted as _unknown_
    folded = evaluate(
        run, dataset, split="all", label_map={"cat": "_unknown_"}, cache_dir=tmp_path / "c"
    )
    assert folded.support[1] > run_report.support[1] and folded.n > run_report.n
    with pytest.raises(EvalError, match="not a model label"):
        evaluate(run, dataset, label_map={"cat": "kitten"}, cache_dir=tmp_path / "c")
    (tmp_path / "bad.tflite").write_bytes(flat[: len(flat) // 2])
    result = runner.invoke(
        app,
        [
            "eval",
            str(tmp_path / "bad.tflite"),
            "--data",
            str(dataset),
            "--labels",
            ",".join(labels),
        ],
    )
    assert result.exit_code == 2 and "bad.tflite: not a valid .tflite model" in result.output
    bare = tmp_path / "bare.keras"  # outside a run: nothing tells the label order
    bare.write_bytes((run / "model.keras").read_bytes())
    result = runner.invoke(app, ["eval", str(bare), "--data", str(dataset)])
    assert result.exit_code == 2 and "--labels" in result.output
    result = runner.invoke(
        app,
        [
            "eval",
            str(run / "model.keras"),
            "--data",
            str(dataset),
            "--labels",
            ",".join(labels),
            "--preset",
            "tf-speech-commands",
        ],
    )
    assert result.exit_code == 2 and "model input is (49, 10)" in result.output
    del tf


def test_open_set_report_and_source_words() -> None:
    from kws.data import Example
    from kws.evaluate import open_set_report, source_word

    labels = ("_silence_", "_unknown_", "yes", "no")
    examples = [
        Example("yes/a_nohash_0.wav", "yes"),
        Example("yes/b_nohash_0.wav", "yes"),
        Example("no/c_nohash_0.wav", "no"),
        Example("_unknown_/backward_0c540988_nohash_0.flac", "_unknown_"),
        Example("_unknown_/backward_1c540988_nohash_0.flac", "_unknown_"),
        Example("go/d_nohash_0.wav", "_unknown_"),
        Example("", "_silence_"),
    ]
    words = [source_word(e) for e in examples]
    assert words == ["yes", "yes", "no", "backward", "backward", "go", "_silence_"]
    truth = np.array([2, 2, 3, 1, 1, 1, 0])
    predicted = np.array([2, 3, 3, 0, 2, 3, 0])  # one keyword wrong; 'backward' 1 of 2 rejected
    o = open_set_report(predicted, truth, labels, words)
    assert (o.keyword_recall, o.keywords) == (pytest.approx(2 / 3), 3)
    assert (o.rejection, o.others) == (pytest.approx(1 / 3), 3)  # silence counts as rejection
    assert o.rejection_per_word == {"backward": (0.5, 2), "go": (0.0, 1)}
    assert (o.silence_accuracy, o.silences) == (1.0, 1)
    assert o.folded_accuracy == pytest.approx(3 / 7)  # rejected as silence is not folded-right


def test_operating_curve_equals_a_brute_force_threshold_sweep() -> None:
    from kws.evaluate import operating_curve

    rng = np.random.default_rng(3)
    labels = ("_silence_", "_unknown_", "yes", "no", "up")
    truth = rng.integers(0, 5, 400)
    logits = rng.normal(size=(400, 5)) + 2.0 * np.eye(5)[truth]
    probs = np.round(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), 2)  # ties
    curve = operating_curve(probs, truth, labels, recall_levels=(0.5, 0.8, 0.999))
    assert curve is not None
    given = 2 + probs[:, 2:].argmax(axis=1)
    top = probs[np.arange(len(probs)), given]
    score = top / (top + probs[:, 1])  # the keyword's probability against _unknown_'s
    right = given == truth
    keyword, other = truth >= 2, truth == 1
    points = []  # (recall, rejection) at every threshold, by brute force
    for t in [*np.unique(score), np.inf]:
        accepted = score >= t
        points.append(((accepted & right)[keyword].mean(), (~accepted)[other].mean()))
    for r, got in curve.rejection_at_recall.items():
        feasible = [rej for rec, rej in points if rec >= r]
        assert got == (max(feasible) if feasible else None), r
    assert curve.rejection_at_recall[0.999] is None  # some keywords are given the wrong word
    eer = min(points, key=lambda p: abs((1 - p[0]) - (1 - p[1])))
    assert curve.equal_error_rate == pytest.approx((2 - eer[0] - eer[1]) / 2)
    assert operating_curve(probs[truth != 1], truth[truth != 1], labels) is None  # no others


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--mixup", "-0.1", "mixup must be >= 0"),
        ("--ema", "1.0", "EMA momentum must be in [0, 1)"),
        ("--channel", "1.5", "channel must be a probability in [0, 1]"),
        ("--reverb", "2", "reverb must be a probability in [0, 1]"),
        ("--negative-kinds", "onset,vowel", "negative kinds must be distinct names from"),
        ("--distill", "0.5", "--distill needs at least one --teacher"),
        ("--distill", "1.5", "--distill must be in [0, 1]"),
    ],
)
def test_cli_rejects_bad_training_options(
    tmp_path: Path, dataset: Path, option: str, value: str, message: str
) -> None:
    result = runner.invoke(
        app,
        ["train", str(dataset), "--words", "yes,no", option, value, "--out", str(tmp_path / "r")],
    )
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()  # nothing written for a request that cannot run

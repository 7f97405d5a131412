"""Per-keyword rejection thresholds: fitted on validation scores, saved beside the model,
refused for another model, applied by eval and by the streaming smoother."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import train_tiny_run
from typer.testing import CliRunner

from kws.calibration import (
    Calibration,
    CalibrationError,
    Int8Rule,
    calibration_path,
    fit_calibration,
    keyword_scores,
    load_calibration,
)
from kws.cli import app
from kws.fsutil import file_sha256
from kws.stream import PosteriorSmoother, SmoothingConfig

LABELS = ("_silence_", "_unknown_", "yes", "no")
runner = CliRunner()


def test_thresholds_keep_the_asked_share_of_right_keywords(rng: np.random.Generator) -> None:
    n = 1000
    truth = rng.integers(0, 4, n)
    probs = rng.dirichlet(np.ones(4), n) * 0.5
    probs[np.arange(n), truth] += rng.uniform(0.3, 0.5, n)  # mostly right, varied confidence
    cal = fit_calibration(probs, truth, LABELS, keep=0.9, model_sha256="x")
    assert cal.thresholds[:2] == (0.0, 0.0)  # silence and unknown are never thresholded
    predicted = cal.predict(probs)
    for c in (2, 3):
        right = (truth == c) & (probs.argmax(1) == c)
        kept = (predicted[right] == c).mean()
        assert 0.89 <= kept <= 0.91
        versus = probs[:, c] / (probs[:, c] + probs[:, 1])  # the score against _unknown_
        assert (predicted[right & (versus < cal.thresholds[c])] == 1).all()
        assert (predicted[right & (versus >= cal.thresholds[c])] == c).all()
    assert (
        fit_calibration(probs, truth, LABELS, keep=1.0, model_sha256="x").thresholds == (0.0,) * 4
    )
    with pytest.raises(CalibrationError, match="--keep"):
        fit_calibration(probs, truth, LABELS, keep=0, model_sha256="x")


def test_the_score_is_the_keyword_against_unknown() -> None:
    """Probability given to another keyword does not count against a keyword; probability
    given to _unknown_ does."""
    probs = np.array(
        [
            [0.0, 0.02, 0.58, 0.40],  # sure it is a keyword, unsure which: yes stays
            [0.0, 0.38, 0.62, 0.00],  # a yes that may be another word: rejected
            [0.9, 0.05, 0.05, 0.00],  # silence is never thresholded
            [0.0, 0.00, 0.00, 0.00],  # no scores at all: no division by zero
        ]
    )
    scores = keyword_scores(probs, LABELS)
    np.testing.assert_allclose(scores[:2, 2], [0.58 / 0.60, 0.62 / 1.00])
    np.testing.assert_array_equal(scores[:, :2], probs[:, :2])
    assert scores[3, 2] == 0.0
    cal = Calibration(LABELS, (0.0, 0.0, 0.9, 0.9), 0.97, "x")
    np.testing.assert_array_equal(cal.predict(probs), [2, 1, 0, 0])


def test_int8_rule_decides_as_the_calibration(rng: np.random.Generator) -> None:
    """The exported integer rule agrees with Calibration.predict on int8 softmax outputs."""
    zero_point, n = -128, 5000
    raw = rng.integers(-128, 128, (n, 4))
    raw[:, 1] = rng.integers(-128, -60, n)  # _unknown_ mostly low: thresholds matter
    probs = (raw - zero_point) / 256.0
    truth = probs.argmax(axis=1)
    cal = fit_calibration(probs, truth, LABELS, keep=0.7, model_sha256="x")
    rule = Int8Rule.of(cal, zero_point=zero_point)
    assert rule.numerators[:2] == (0, 0) and rule.denominators[:2] == (1, 1)
    np.testing.assert_array_equal(rule.decide(raw), cal.predict(probs))
    assert (rule.decide(raw) == 1).sum() > (truth == 1).sum()  # some keywords were rejected
    with pytest.raises(CalibrationError, match="not a ratio"):
        Int8Rule.of(Calibration(LABELS, (0, 0, 0.5001, 0), 0.9, "x"), zero_point=-128)


def test_smoother_floors_per_keyword() -> None:
    config = SmoothingConfig(threshold=0.5, average_window_ms=20, minimum_count=1)
    floors = np.array([0.0, 0.0, 0.9, 0.0])
    smoother = PosteriorSmoother(LABELS, config, sample_rate_hz=16_000, class_thresholds=floors)
    # yes needs 0.9 against _unknown_: 0.8 / (0.8 + 0.2) is not enough
    assert smoother.update(np.array([0, 0.2, 0.8, 0]), sample=320) is None
    # ... but 0.6 / (0.6 + 0.05) is, though "no" took probability too
    assert smoother.update(np.array([0, 0.05, 0.6, 0.35]), sample=99_000) is not None
    # the global threshold still applies to the averaged probability
    assert smoother.update(np.array([0, 0.0, 0.45, 0.4]), sample=199_000) is None


def test_cli_calibrate_then_eval_and_listen_use_it(tmp_path: Path) -> None:
    run = train_tiny_run(tmp_path, seed=21, epochs=3, testing=20)
    result = runner.invoke(app, ["calibrate", str(run), "--keep", "0.8"])
    assert result.exit_code == 0, result.output
    assert "non-keyword rejection" in result.output
    path = calibration_path(run / "model.keras")
    saved = json.loads(path.read_text())
    assert saved["keep"] == 0.8 and saved["model_sha256"] == file_sha256(run / "model.keras")
    data = str(tmp_path / "words")
    with_cal = runner.invoke(app, ["eval", str(run), "--data", data, "--split", "validation"])
    without = runner.invoke(
        app, ["eval", str(run), "--data", data, "--split", "validation", "--no-calibration"]
    )
    assert with_cal.exit_code == without.exit_code == 0
    assert "calibrated: thresholds from" in with_cal.output
    assert "calibrated" not in without.output
    # a calibration made for other bytes is refused, in one line
    model = run / "model.keras"
    assert load_calibration(model, ("_silence_", "_unknown_", "yes", "no", "up")) is not None
    saved["model_sha256"] = "0" * 64
    path.write_text(json.dumps(saved))
    result = runner.invoke(app, ["eval", str(run), "--data", data, "--split", "validation"])
    assert result.exit_code == 2 and "was made for another version" in result.output
    # one of an older kws (thresholds on another score) is refused, saying what to do
    saved["model_sha256"], saved["format"] = file_sha256(model), "kws.Calibration/1"
    path.write_text(json.dumps(saved))
    result = runner.invoke(app, ["eval", str(run), "--data", data, "--split", "validation"])
    assert result.exit_code == 2 and "run kws calibrate again" in result.output

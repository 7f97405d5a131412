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
    CalibrationError,
    calibration_path,
    fit_calibration,
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
        assert (predicted[right & (probs[:, c] < cal.thresholds[c])] == 1).all()
    assert (
        fit_calibration(probs, truth, LABELS, keep=1.0, model_sha256="x").thresholds == (0.0,) * 4
    )
    with pytest.raises(CalibrationError, match="--keep"):
        fit_calibration(probs, truth, LABELS, keep=0, model_sha256="x")


def test_smoother_floors_per_keyword() -> None:
    config = SmoothingConfig(threshold=0.5, average_window_ms=20, minimum_count=1)
    floors = np.array([0.0, 0.0, 0.9, 0.0])
    smoother = PosteriorSmoother(LABELS, config, sample_rate_hz=16_000, class_thresholds=floors)
    assert smoother.update(np.array([0, 0, 0.8, 0.2]), sample=320) is None  # yes needs 0.9
    assert smoother.update(np.array([0, 0, 0.2, 0.8]), sample=99_000) is not None  # no: 0.5


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

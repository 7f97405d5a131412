"""`kws export`: int8 conversion, TFLM parity, arena, C sources that compile and match."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import train_tiny_run
from typer.testing import CliRunner

from kws.cli import app
from kws.evaluate import evaluate
from kws.export import ExportError, export
from kws.export.runtime import ModelFileError, TFLiteModel

runner = CliRunner()


def _tensor_names(flatbuffer: bytes) -> set[str]:
    import tflite

    graph = tflite.Model.GetRootAsModel(flatbuffer, 0).Subgraphs(0)
    return {(graph.Tensors(i).Name() or b"").decode() for i in range(graph.TensorsLength())}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("export"), seed=11, epochs=3)


def test_cli_export_writes_verified_files(run: Path) -> None:
    result = runner.invoke(
        app,
        [
            "export",
            str(run),
            "--calibration",
            "40",
            "--max-drop",
            "100",
            "--cache-dir",
            str(run.parent / "cache"),
        ],
    )
    assert result.exit_code == 0, result.output
    out = run / "export"
    for name in (
        "model_float.tflite",
        "model_int8.tflite",
        "model_data.cc",
        "model_data.h",
        "feature_spec.h",
        "labels.h",
        "sample_io.h",
        "report.json",
    ):
        assert (out / name).exists(), name
    report = json.loads((out / "report.json").read_text())
    assert (
        report["tflm_parity"]["identical_rate"] == 1.0
        and report["tflm_parity"]["max_diff_lsb"] == 0
    )
    assert report["tflm_parity"]["examples"] == report["validation_examples"] > 0
    assert 0 < report["int8"]["arena_bytes"] < 1 << 20
    assert set(report["fit"]["targets"]) == {"bluepill", "nano33ble", "m4-128k"}
    assert report["accuracy"]["float_tflite"] == pytest.approx(
        report["accuracy"]["keras"], abs=0.02
    )
    assert "DELEGATE" not in report["int8"]["operators"]
    assert _tensor_names((out / "model_int8.tflite").read_bytes()) == {""}  # stripped
    assert len(_tensor_names((out / "model_float.tflite").read_bytes())) > 5  # kept
    lite = TFLiteModel((out / "model_int8.tflite").read_bytes())
    assert lite.input_q.dtype == np.int8 and lite.output_q.dtype == np.int8
    # kws eval on the exported file reproduces the reported int8 accuracy
    data_dir = Path(json.loads((run / "config.json").read_text())["data_dir"])
    again = evaluate(
        out / "model_int8.tflite",
        data_dir,
        split="validation",
        cache_dir=run.parent / "cache",
        calibrated=False,
    )
    assert again.accuracy == pytest.approx(report["accuracy"]["int8_tflite"])
    # ... and with the calibration the export wrote beside it, the calibrated accuracy
    assert (out / "model_int8.tflite.calibration.json").exists()
    calibrated = evaluate(
        out / "model_int8.tflite", data_dir, split="validation", cache_dir=run.parent / "cache"
    )
    assert calibrated.calibration is not None
    assert calibrated.accuracy == pytest.approx(report["calibration"]["validation_accuracy"])
    assert "kKwsThresholdNum" in (out / "labels.h").read_text()
    assert (
        "TFLM vs LiteRT reference kernels" in result.output and "100.00% identical" in result.output
    )


@pytest.mark.skipif(shutil.which("g++") is None, reason="no host C++ compiler")
def test_c_sources_compile_and_hold_the_model_bytes(run: Path, tmp_path: Path) -> None:
    out = run / "export"
    if not (out / "model_data.cc").exists():
        export(run, calibration=40, max_drop=100, cache_dir=run.parent / "cache")
    main = tmp_path / "main.cc"
    main.write_text("""
#include <cstdio>
#include "model_data.h"
#include "feature_spec.h"
#include "labels.h"
#include "sample_io.h"
int main(int argc, char** argv) {
  FILE* f = std::fopen(argv[1], "wb");
  std::fwrite(g_kws_model_data, 1, g_kws_model_data_len, f);
  std::fclose(f);
  std::printf("%d %d %s %d %d\\n", KWS_NUM_FRAMES, KWS_NUM_COEFFICIENTS, kKwsLabels[2],
              (int)(reinterpret_cast<unsigned long>(g_kws_model_data) % 16),
              (int)sizeof(kKwsSampleInput));
  return 0;
}
""")
    exe = tmp_path / "dump"
    subprocess.run(
        [
            "g++",
            "-std=c++17",
            "-Wall",
            "-Werror",
            "-Wno-unused-variable",
            "-I",
            str(out),
            str(main),
            str(out / "model_data.cc"),
            "-o",
            str(exe),
        ],
        check=True,
    )
    printed = subprocess.run(
        [str(exe), str(tmp_path / "dumped.tflite")], check=True, capture_output=True, text=True
    ).stdout.split()
    assert (tmp_path / "dumped.tflite").read_bytes() == (out / "model_int8.tflite").read_bytes()
    assert printed == ["49", "10", "yes", "0", "490"]


def test_corrupt_and_truncated_models_give_clear_errors(run: Path) -> None:
    with pytest.raises(ModelFileError, match=r"broken\.tflite: not a valid \.tflite model"):
        TFLiteModel(b"definitely not a flatbuffer", name="broken.tflite")
    flat = (
        (run / "export" / "model_int8.tflite").read_bytes()
        if (run / "export" / "model_int8.tflite").exists()
        else b"x" * 100
    )
    with pytest.raises(ModelFileError, match=r"cut\.tflite"):
        TFLiteModel(flat[: len(flat) // 3], name="cut.tflite")


def test_export_fails_past_max_drop_and_for_non_runs(run: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="more than --max-drop -1"):
        export(run, calibration=10, max_drop=-1.0, cache_dir=run.parent / "cache")
    with pytest.raises(ExportError, match="not a run directory"):
        export(tmp_path)
    result = runner.invoke(app, ["export", str(run), "--board", "teensy"])
    assert result.exit_code == 2


def test_first_difference_names_the_operator(run: Path) -> None:
    from kws.export.runtime import first_difference

    flat = (run / "export" / "model_int8.tflite").read_bytes()
    lite = TFLiteModel(flat)
    example = np.zeros(lite.input_shape[1:], np.int8)
    assert first_difference(flat, example) is None


def test_dense_layers_export_as_convolutions_that_tflm_runs_bit_identically() -> None:
    """A Dense layer becomes a 1x1 CONV_2D, computing the same function. As a
    FULLY_CONNECTED this model's raw outputs differed between TFLM and LiteRT's reference
    kernels on 13 of these 300 inputs (one rounding against two); as a convolution, on none."""
    import keras

    from kws.export.convert import to_tflite
    from kws.export.runtime import run_micro

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    inputs = keras.Input((49, 10))
    outputs = keras.layers.Dense(64)(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    x = rng.normal(0.0, 1.0, (60, 49, 10)).astype(np.float32)
    floats = TFLiteModel(to_tflite(model))
    assert "FULLY_CONNECTED" not in floats.operators() and "CONV_2D" in floats.operators()
    np.testing.assert_allclose(
        floats.predict(x[:5]), model.predict(x[:5], verbose=0), rtol=1e-5, atol=1e-5
    )
    flat = to_tflite(model, representative=x)
    reference = TFLiteModel(flat, reference=True)
    assert "FULLY_CONNECTED" not in reference.operators()
    raw = rng.integers(-128, 128, (300, 49, 10), dtype=np.int8)
    np.testing.assert_array_equal(run_micro(flat, raw, arena=1 << 20), reference.run_raw(raw))


def test_strip_names_drops_only_the_names(run: Path, tmp_path: Path) -> None:
    from kws.export.convert import strip_names
    from kws.export.runtime import run_micro

    for name in ("config.json", "model.keras"):
        shutil.copy(run / name, tmp_path / name)
    report = export(
        tmp_path, keep_names=True, calibration=40, max_drop=100, cache_dir=run.parent / "cache"
    )
    named = (tmp_path / "export" / "model_int8.tflite").read_bytes()
    assert report["int8"]["bytes"] == len(named) and "" not in _tensor_names(named)
    stripped = strip_names(named)
    assert _tensor_names(stripped) == {""} and len(stripped) < 0.95 * len(named)
    a, b = TFLiteModel(named, reference=True), TFLiteModel(stripped, reference=True)
    raw = np.random.default_rng(0).integers(-128, 128, (50, *a.input_shape[1:]), dtype=np.int8)
    np.testing.assert_array_equal(a.run_raw(raw), b.run_raw(raw))
    np.testing.assert_array_equal(
        TFLiteModel(named).run_raw(raw), TFLiteModel(stripped).run_raw(raw)
    )
    np.testing.assert_array_equal(run_micro(stripped, raw, arena=1 << 20), b.run_raw(raw))


def test_damaged_run_files_are_one_line_errors(run: Path, tmp_path: Path) -> None:
    """A broken config.json or model.keras: exit 2 and one line naming the file, for every
    command that reads a run (no traceback)."""
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(run / "model.keras", bad / "model.keras")
    data = json.loads((run / "config.json").read_text())["data_dir"]
    commands = (["export", str(bad)], ["eval", str(bad), "--data", data], ["calibrate", str(bad)])
    cases = [
        ('{"words": 1', r"config\.json: not valid JSON"),
        ("{}", r"config\.json: not a kws run config \('data_dir' missing"),
        ('{"data_dir": "x", "words": ["a"], "spec": {"mel_bands": -1}}', r"invalid 'spec'"),
    ]
    for text, message in cases:
        (bad / "config.json").write_text(text)
        for command in commands:
            result = runner.invoke(app, command)
            assert result.exit_code == 2, (command, result.output)
            assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
            assert re.search(message, result.output.replace("\n", "")), (command, result.output)
    shutil.copy(run / "config.json", bad / "config.json")
    (bad / "model.keras").write_bytes((run / "model.keras").read_bytes()[:3000])
    for command in commands[:2]:
        result = runner.invoke(app, command)
        assert result.exit_code == 2, (command, result.output)
        assert "model.keras: not a Keras model" in result.output.replace("\n", "")


def test_an_export_that_cannot_start_leaves_no_folder(run: Path, tmp_path: Path) -> None:
    shutil.copy(run / "model.keras", tmp_path / "model.keras")
    config = json.loads((run / "config.json").read_text())
    config["data_dir"] = str(tmp_path / "moved away")
    (tmp_path / "config.json").write_text(json.dumps(config))
    result = runner.invoke(app, ["export", str(tmp_path)])
    assert result.exit_code == 2 and "moved away" in result.output
    assert not (tmp_path / "export").exists()

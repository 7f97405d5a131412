"""`kws export --target c`: the int8 model and the front end as plain C, bit-identical to
LiteRT's reference kernels on the host, layer by layer, and on a Cortex-M4 under QEMU."""

from __future__ import annotations

import json
import re
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import train_tiny_run
from typer.testing import CliRunner

import models
from kws.calibration import Calibration
from kws.cli import app
from kws.export import chost, cmodel, cortexm
from kws.export.cmodel import CModelError, _Buffer, _plan, write_c_model
from kws.export.qmath import (
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_single,
    quantize_multiplier,
)
from kws.export.runtime import TFLiteModel
from kws.export.tflgraph import GraphError, read_graph

runner = CliRunner()
needs_cc = pytest.mark.skipif(chost.find_compiler() is None, reason="no host C compiler")
SHAPE = (49, 10)


def _int8_model(model: object, rng: np.random.Generator) -> bytes:
    from kws.export.convert import to_tflite

    representative = rng.normal(-40.0, 30.0, (60, *SHAPE)).astype(np.float32)
    return to_tflite(model, representative=representative)


@pytest.fixture(scope="module")
def registry_models() -> dict[str, bytes]:
    """Every registry architecture (tiny config), converted to int8 with random weights."""
    import keras

    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    built = {
        name: _int8_model(models.build(name, SHAPE, 5, tiny=True), rng)
        for name in ("ds_cnn-s", "conv", "tiny_conv", "bc_resnet-3")
    }
    # ReLU6 after every convolution
    inputs = keras.Input(SHAPE)
    x = keras.layers.Reshape((*SHAPE, 1))(inputs)
    x = keras.layers.Conv2D(8, (5, 3), strides=2, padding="same", activation="relu6")(x)
    x = keras.layers.DepthwiseConv2D((3, 3), padding="same", activation="relu6")(x)
    x = keras.layers.Conv2D(6, 1, activation="relu6")(x)
    outputs = keras.layers.Dense(5)(keras.layers.Flatten()(x))
    built["relu6"] = _int8_model(keras.Model(inputs, outputs), rng)
    # a residual sum of two full maps: the ADD writes over one of its inputs
    inputs = keras.Input(SHAPE)
    x = keras.layers.Reshape((*SHAPE, 1))(inputs)
    a = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    b = keras.layers.Conv2D(8, 3, padding="same")(a)
    x = keras.layers.ReLU()(keras.layers.Add()([a, b]))
    outputs = keras.layers.Dense(5)(keras.layers.GlobalAveragePooling2D()(x))
    built["residual"] = _int8_model(keras.Model(inputs, outputs), rng)
    return built


def _build_variant(src: Path, build: Path, *defines: str) -> Path:
    """The model built with other code paths: -DKWS_EMULATE_DSP, the Cortex-M4 DSP path
    (SMLAD/SXTB16/SMMULR) on the host; -DKWS_NO_FAST_REQUANT, the general requantisation."""
    exe = build / ("kws_model" + "".join(d.lower() for d in defines))
    harness = build / chost.HARNESS
    subprocess.run(
        [chost.find_compiler(), *chost.HOST_FLAGS, *(f"-D{d}" for d in defines), f"-I{src}",
         str(harness), *sorted(map(str, src.glob("*.c"))), "-o", str(exe)],
        check=True, capture_output=True,
    )  # fmt: skip
    return exe


@needs_cc
@pytest.mark.parametrize(
    "name", ["ds_cnn-s", "conv", "tiny_conv", "bc_resnet-3", "relu6", "residual"]
)
def test_c_model_is_bit_identical_to_litert(
    name: str, registry_models: dict[str, bytes], tmp_path: Path
) -> None:
    flat = registry_models[name]
    model = write_c_model(tmp_path / "c", flat)
    exe = chost.build_host_model(tmp_path / "c", build=tmp_path / "build")
    rng = np.random.default_rng(7)
    # random inputs plus the extremes, which saturate every requantisation
    x = rng.integers(-128, 128, (150, *SHAPE)).astype(np.int8)
    x[0], x[1] = -128, 127
    reference = TFLiteModel(flat, reference=True).run_raw(x)
    variants = [
        ("KWS_EMULATE_DSP",),
        ("KWS_NO_FAST_REQUANT",),
        ("KWS_EMULATE_DSP", "KWS_NO_FAST_REQUANT"),
    ]
    builds = [exe] + [_build_variant(tmp_path / "c", tmp_path / "build", *v) for v in variants]
    for build in builds:
        parity = chost.model_parity(chost.run_c_model(build, x, model), reference)
        assert (parity.identical, parity.max_diff_lsb) == (len(x), 0), (build.name, parity)
    assert chost.compare_layers(flat, exe, x[5], model) is None
    assert model.arena_bytes > 0 and model.macs > 0


@needs_cc
def test_a_wrong_weight_is_found_at_its_layer(
    registry_models: dict[str, bytes], tmp_path: Path
) -> None:
    flat = registry_models["ds_cnn-s"]
    model = write_c_model(tmp_path / "c", flat)
    source = tmp_path / "c" / "kws_model.c"
    text = source.read_text()
    # the depthwise layer's first weight, changed by one
    match = re.search(r"static const int8_t (L\d+)_w\[\d+\] KWS_ALIGNED = \{\n  (-?\d+),", text)
    layers = {f"L{la.index}": la for la in model.layers}
    dw = next(la for la in model.layers if la.opcode == "DEPTHWISE_CONV_2D")
    match = re.search(
        rf"static const int8_t L{dw.index}_w\[\d+\] KWS_ALIGNED = \{{\n  (-?\d+),", text
    )
    assert match and f"L{dw.index}" in layers
    value = int(match.group(1))
    changed = value + 1 if value < 127 else value - 1
    start, end = match.span(1)
    source.write_text(text[:start] + str(changed) + text[end:])
    exe = chost.build_host_model(tmp_path / "c", build=tmp_path / "build")
    x = np.random.default_rng(1).integers(-128, 128, (20, *SHAPE)).astype(np.int8)
    found = [chost.compare_layers(flat, exe, example, model) for example in x]
    named = {d.layer for d in found if d is not None}
    assert named == {dw.index}
    assert "DEPTHWISE_CONV_2D" in str(next(d for d in found if d is not None))


def test_layouts_read_from_the_flatbuffer_match_keras(tmp_path: Path) -> None:
    """OHWI convolution filters (a Dense layer's too: it is exported as a 1x1 convolution),
    1HWC depthwise filters."""
    import keras

    from kws.export.convert import to_tflite

    keras.utils.set_random_seed(0)
    inputs = keras.Input((9, 6, 2))
    x = keras.layers.Conv2D(3, (4, 2), name="conv")(inputs)
    x = keras.layers.DepthwiseConv2D((2, 3), name="dw")(x)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(5, name="dense")(x)
    model = keras.Model(inputs, out)
    graph = read_graph(to_tflite(model))
    consts = {t.shape: t.data for t in graph.tensors if t.data is not None and t.data.ndim > 1}
    conv = model.get_layer("conv").kernel.numpy()  # HWIO
    dw = model.get_layer("dw").kernel.numpy()  # HW C 1
    dense = model.get_layer("dense").kernel.numpy()  # (in, out), exported as a 1x1 conv
    np.testing.assert_array_equal(consts[(3, 4, 2, 2)], conv.transpose(3, 0, 1, 2))
    np.testing.assert_array_equal(consts[(1, 2, 3, 3)], dw[..., 0][None])
    np.testing.assert_array_equal(consts[(5, 1, 1, dense.shape[0])], dense.T[:, None, None])
    with pytest.raises(GraphError, match="not a TFLite flatbuffer"):
        read_graph(b"not a model at all")


def test_requantisation_matches_exact_rational_rounding() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        real = float(np.exp(rng.uniform(np.log(1e-6), np.log(0.99))))
        m, shift = quantize_multiplier(real)
        assert 1 << 30 <= m < 1 << 31 and Fraction(m, 1 << 31) * Fraction(2) ** shift
        acc = rng.integers(-(1 << 24), 1 << 24, 50)
        single = multiply_by_quantized_multiplier_single(acc, m, shift)
        double = multiply_by_quantized_multiplier(acc, m, shift)
        for a, s, d in zip(acc.tolist(), single.tolist(), double.tolist(), strict=True):
            exact = Fraction(a * m, 1 << (31 - shift))
            assert s == (exact + Fraction(1, 2)).__floor__()  # one rounding, halves up
            # two roundings: half an LSB, plus half a unit of the Q31 product scaled down
            assert abs(d - exact) <= Fraction(1, 2) + Fraction(1, 2 << max(-shift, 0))


def test_a_residual_sum_is_written_in_place(
    registry_models: dict[str, bytes], tmp_path: Path
) -> None:
    """a = conv(x), b = conv(a), relu(a + b): the sum goes over a or b, so the arena holds
    two 49 × 10 × 8 maps and the second convolution's scratch, not three maps. (That the
    C model stays bit-identical is tested above.)"""
    plane = SHAPE[0] * SHAPE[1] * 8
    model = write_c_model(tmp_path / "c", registry_models["residual"])
    assert 2 * plane <= model.arena_bytes < 3 * plane
    text = (tmp_path / "c" / "kws_model.c").read_text()
    add = re.search(r"kws_add_s8\(&L\d+_p, (.*?), (.*?), (.*?), \d+\);", text)
    assert add is not None
    assert add.group(3).removeprefix("(int8_t *)") in {
        g.removeprefix("(const int8_t *)") for g in add.groups()[:2]
    }


def test_memory_plan_never_overlaps_live_buffers() -> None:
    rng = np.random.default_rng(2)
    for _ in range(50):
        buffers = []
        for _ in range(int(rng.integers(2, 12))):
            first = int(rng.integers(-1, 10))
            buffers.append(
                _Buffer(int(rng.integers(1, 500)), first, first + int(rng.integers(0, 4)))
            )
        size = _plan(buffers)
        for i, a in enumerate(buffers):
            assert a.offset % cmodel.ALIGN == 0 and a.offset + a.size <= size
            for b in buffers[i + 1 :]:
                live = a.first <= b.last and b.first <= a.last
                apart = a.offset + a.size <= b.offset or b.offset + b.size <= a.offset
                assert apart or not live
        assert size <= cmodel._align(sum(b.size for b in buffers)) + cmodel.ALIGN * len(buffers)


def test_unsupported_models_are_refused(tmp_path: Path) -> None:
    import keras

    from kws.export.convert import to_tflite

    inputs = keras.Input(SHAPE)
    float_flat = to_tflite(keras.Model(inputs, keras.layers.Dense(3)(inputs)))
    with pytest.raises(CModelError, match="expected int8"):
        write_c_model(tmp_path, float_flat)
    with pytest.raises(CModelError, match="TFL3"):
        write_c_model(tmp_path, b"\0" * 64)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("cexport"), seed=5, epochs=2)


@needs_cc
def test_cli_export_target_c_is_verified(run: Path) -> None:
    result = runner.invoke(
        app,
        ["export", str(run), "--target", "c", "--debug-layers", "--calibration", "40",
         "--max-drop", "100", "--cache-dir", str(run.parent / "cache")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    c_dir = run / "export" / "c"
    expected = "kws.h kws.c kws_model.c kws_model.h kws_features.c kws_features.h kws_ops.c"
    for name in [*expected.split(), "kws_ops_extra.c", "kws_fixed.h", "README.md"]:
        assert (c_dir / name).exists(), name
    assert not list(c_dir.glob("*main*")), "harnesses stay out of the export"
    report = json.loads((run / "export" / "report.json").read_text())["c"]
    host = report["host"]
    assert host["identical"] == host["examples"] > 0 and host["max_diff_lsb"] == 0
    assert host["first_differing_layer"] is None  # --debug-layers compared every layer
    dump = np.load(run / "export" / "debug_layers.npz")
    c_names = sorted(k for k in dump.files if k.startswith("c_"))
    assert c_names and all(np.array_equal(dump[k], dump["litert_" + k[2:]]) for k in c_names)
    fe = report["front_end"]
    assert fe["identical_rate"] >= 0.999 and fe["max_diff_lsb"] <= 1
    e2e = report["end_to_end"]
    assert e2e["clips"] == host["examples"] and e2e["identical"] >= 0.99 * e2e["clips"]
    arm = report["cortex_m4"]
    if cortexm.find_toolchain() is None:
        assert "skipped" in arm
    else:
        assert arm["matches_host"] and arm["vectors"] > 0
        assert arm["flash_bytes"] > report["model_const_bytes"]
    assert "C model vs LiteRT" in result.output
    assert "bit-identical" in (c_dir / "README.md").read_text()
    _check_calibrated_decision(run, c_dir)
    _check_cpp_caller(run, c_dir)


def _check_cpp_caller(run: Path, c_dir: Path) -> None:
    """A C++ program (an Arduino sketch is one) links against the C objects."""
    import shutil

    cxx = shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        return
    build = run.parent / "cpp"
    build.mkdir(exist_ok=True)
    objects = []
    for c_file in sorted(c_dir.glob("*.c")):
        obj = build / (c_file.stem + ".o")
        cmd = [chost.find_compiler(), *chost.HOST_FLAGS, f"-I{c_dir}", "-c", str(c_file)]
        subprocess.run([*cmd, "-o", str(obj)], check=True, capture_output=True)
        objects.append(str(obj))
    main = build / "main.cpp"
    main.write_text(
        '#include "kws.h"\n#include "kws_features.h"\n#include "kws_model.h"\n'
        "static int16_t audio[KWS_CLIP_SAMPLES];\n"
        "int main() { int8_t s[KWS_NUM_LABELS]; return kws_classify(audio, s) < 0 || "
        "kws_decide(s) < 0; }\n"
    )
    exe = build / "main"
    subprocess.run(
        [cxx, "-Wall", "-Werror", f"-I{c_dir}", str(main), *objects, "-o", str(exe)],
        check=True, capture_output=True,
    )  # fmt: skip
    assert subprocess.run([str(exe)]).returncode == 0


def _check_calibrated_decision(run: Path, c_dir: Path) -> None:
    """kws_decide applies the export's rejection rule exactly as Calibration.predict does on
    the dequantised scores."""
    report = json.loads((run / "export" / "report.json").read_text())
    rule = report["calibration"]["int8_rule"]
    calibration = Calibration.from_dict(report["calibration"])
    main = run.parent / "decide_main.c"
    main.write_text(
        '#include <stdio.h>\n#include "kws.h"\nint main(void) {\n'
        "  int8_t s[KWS_NUM_LABELS];\n"
        "  while (fread(s, 1, KWS_NUM_LABELS, stdin) == KWS_NUM_LABELS)\n"
        '    printf("%ld\\n", (long)kws_decide(s));\n  return 0;\n}\n'
    )
    exe = run.parent / "decide"
    subprocess.run(
        [chost.find_compiler(), *chost.HOST_FLAGS, f"-I{c_dir}", str(main),
         *sorted(map(str, c_dir.glob("*.c"))), "-o", str(exe)],
        check=True, capture_output=True,
    )  # fmt: skip
    rng = np.random.default_rng(4)
    n = len(calibration.labels)
    scores = rng.integers(-128, 128, (2000, n)).astype(np.int8)  # keyword vs _unknown_ varies
    out = subprocess.run([str(exe)], input=scores.tobytes(), capture_output=True, check=True)
    decided = np.array(out.stdout.split(), dtype=int)
    probs = (scores.astype(np.float64) - rule["zero_point"]) / 256.0
    np.testing.assert_array_equal(decided, calibration.predict(probs))
    if max(rule["numerators"]) > 0:
        top = scores.argmax(axis=1)
        assert (decided == 1).sum() > (top == 1).sum()  # some keywords were rejected


def test_cli_refuses_c_without_int8(run: Path) -> None:
    result = runner.invoke(app, ["export", str(run), "--target", "c", "--no-int8"])
    assert result.exit_code != 0
    assert "needs the int8 model" in result.output


@needs_cc
def test_export_c_without_the_cortex_m_tools(
    registry_models: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No arm-none-eabi-gcc / qemu: the host checks still run, the device check says what to
    install."""
    import features
    from kws.export.cexport import export_c

    monkeypatch.setattr(cortexm, "find_toolchain", lambda: None)
    monkeypatch.setattr(cortexm, "missing_tools", lambda: {"qemu-system-arm": "qemu-system-arm"})
    flat = registry_models["ds_cnn-s"]
    rng = np.random.default_rng(9)
    raw = rng.integers(-128, 128, (12, *SHAPE)).astype(np.int8)
    reference = TFLiteModel(flat, reference=True).run_raw(raw)
    audio = (rng.normal(0, 3000, (4, 16_000))).clip(-32768, 32767).astype(np.int16)
    labels = ("_silence_", "_unknown_", "yes", "no", "up")
    report = export_c(
        tmp_path / "c", int8_flat=flat, spec=features.FeatureSpec(), labels=labels,
        raw_inputs=raw, reference_outputs=reference, audio=audio,
    )  # fmt: skip
    assert report["host"]["identical"] == 12
    assert report["end_to_end"]["clips"] == 4
    assert report["cortex_m4"] == {
        "skipped": "Cortex-M4 check skipped: install Debian's qemu-system-arm to run it"
    }
    assert "Cortex-M4" not in (tmp_path / "c" / "README.md").read_text().split("## Verification")[1]


def test_cli_names_what_the_c_export_cannot_do(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model the C export cannot express is a one-line error naming the folder and why."""
    from kws.export import cexport

    def unsupported(out: Path, flatbuffer: bytes) -> None:
        raise CModelError("operator LSTM is not supported by the C export")

    monkeypatch.setattr(cexport, "write_c_model", unsupported)
    result = runner.invoke(
        app,
        ["export", str(run), "--target", "c", "--calibration", "40", "--max-drop", "100",
         "--cache-dir", str(run.parent / "cache")],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error")]
    assert len(lines) == 1 and "LSTM is not supported" in lines[0]
    assert str(run / "export" / "c") in result.output.replace("\n", "")

"""`kws export`: int8 models for microcontrollers, with proven device parity and a fit report.

In: a run directory (model.keras, config.json). Out: RUN_DIR/export/ with model_float.tflite,
model_int8.tflite (full-integer post-training quantisation, calibrated on training
features, int8 input and output, builtin ops), model_data.cc/.h, feature_spec.h, labels.h,
sample_io.h and report.json; and the report as a dict. Verification, every time:
int8 vs float accuracy on the validation split (raises `ExportError` past ``max_drop``
points), TensorFlow Lite Micro against LiteRT's reference kernels on the whole validation
split (bit-identical outputs expected), the measured TFLM arena, operators, MACs, host
latency, and a flash/RAM fit check against named targets.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import features
import models
from kws import data as kdata
from kws.calibration import DEFAULT_KEEP, Int8Rule, calibration_path, fit_calibration
from kws.export.convert import strip_names, to_tflite
from kws.export.csources import write_c_sources
from kws.export.runtime import (
    ModelFileError,
    TFLiteModel,
    first_difference,
    micro_arena_bytes,
    run_micro,
)
from kws.fsutil import atomic_path
from kws.runs import manifest, now, read_run_config, write_json

__all__ = ["TARGETS", "ExportError", "ModelFileError", "Target", "export"]


class ExportError(ValueError):
    """The export cannot be made or failed a check; the message says which."""


@dataclass(frozen=True)
class Target:
    description: str
    flash_bytes: int
    ram_bytes: int


TARGETS: dict[str, Target] = {
    "bluepill": Target("STM32F103C8 (Cortex-M3, 72 MHz)", 64 * 1024, 20 * 1024),
    "nano33ble": Target(
        "Arduino Nano 33 BLE, nRF52840 (Cortex-M4F, 64 MHz)", 1024 * 1024, 256 * 1024
    ),
    "m4-128k": Target("Cortex-M4 with 128 KB flash", 128 * 1024, 32 * 1024),
}
# Stated allowances (not measured here): TensorFlow Lite Micro's interpreter (~10 KB on a
# Cortex-M3, published) plus the reference kernels a keyword model uses, and the runtime's
# own RAM (interpreter state, stack headroom) besides the tensor arena.
RUNTIME_FLASH_BYTES = 32 * 1024
RUNTIME_RAM_BYTES = 3 * 1024
DEFAULT_CALIBRATION = 400
DEFAULT_MAX_DROP = 1.0


def front_end_ram_bytes(spec: features.FeatureSpec) -> int:
    """Feature buffers of a streaming front end: one frame of samples, the FFT buffer, the mel
    energies (float32) and the int8 feature window the model reads."""
    return (
        4 * (spec.frame_samples + spec.fft_size + 2 * spec.mel_bands)
        + spec.num_frames * spec.num_coefficients
    )


def _arm_sizes(out: Path) -> dict[str, Any]:
    """Section sizes of the generated sources built for a Cortex-M4, when the toolchain exists."""
    gcc = shutil.which("arm-none-eabi-g++")
    size = shutil.which("arm-none-eabi-size")
    if gcc is None or size is None:
        return {"skipped": "arm-none-eabi-g++ not installed (Debian: gcc-arm-none-eabi)"}
    with tempfile.TemporaryDirectory() as tmp:
        obj = Path(tmp) / "model_data.o"
        subprocess.run(
            [
                gcc,
                "-mcpu=cortex-m4",
                "-mthumb",
                "-Os",
                "-c",
                str(out / "model_data.cc"),
                "-o",
                str(obj),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        text = subprocess.run(
            [size, "-A", str(obj)], check=True, capture_output=True, text=True
        ).stdout
    sections = {}
    for line in text.splitlines():
        parts = line.split()
        if (
            len(parts) >= 2
            and parts[0] in (".text", ".rodata", ".data", ".bss")
            and parts[1].isdigit()
        ):
            sections[parts[0]] = int(parts[1])
    return {"compiler": gcc, "sections": sections}


def _representative(
    index: kdata.DataIndex,
    spec: features.FeatureSpec,
    count: int,
    seed: int,
    noise: kdata.NoiseBank,
    cache_dir: Path | None,
) -> np.ndarray:
    train = kdata.load_split(index, "training", spec=spec, cache_dir=cache_dir)
    rows = np.sort(np.random.default_rng([seed, 0xCA1]).permutation(len(train))[:count])
    subset = kdata.SplitClips(
        np.asarray(train.clips[rows]),
        train.labels[rows],
        train.silence[rows],
        f"{train.fingerprint}/{count}/{seed}",
        train.extra[rows],
        train.words[rows],
    )
    return kdata.fixed_features(subset, noise=noise, spec=spec, seed=seed)


def _check_c(c: dict[str, Any], out: Path) -> None:
    host = c.get("host", {})
    if host.get("examples") and host["identical"] < host["examples"]:
        raise ExportError(
            f"the C model differs from LiteRT's reference kernels on "
            f"{host['examples'] - host['identical']} of {host['examples']} validation examples "
            f"(max {host['max_diff_lsb']} LSB), first at {host['first_differing_layer']}; "
            f"see {out / 'report.json'}"
        )
    arm = c.get("cortex_m4", {})
    if "matches_host" in arm and not arm["matches_host"]:
        raise ExportError(
            f"the Cortex-M4 build's results differ from the host's on {arm['mismatches']} of "
            f"{arm['vectors']} test clips; see {out / 'report.json'}"
        )


def export(
    run_dir: Path | str,
    *,
    int8: bool = True,
    calibration: int = DEFAULT_CALIBRATION,
    max_drop: float = DEFAULT_MAX_DROP,
    max_lsb: int = 0,
    targets: Sequence[str] = tuple(TARGETS),
    c_code: bool = False,
    debug_layers: bool = False,
    keep_names: bool = False,
    cache_dir: Path | None = None,
    step: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Export a run; see the module docstring. Returns the report (also in report.json).

    ``max_lsb``: largest output difference between TFLM and LiteRT's reference kernels that
    is accepted (0: bit-identical required). ``c_code``: also write ``export/c/``, the
    framework-free C spotter (`kws.export.cexport`), verified on the host (bit-identical to
    LiteRT's reference kernels required) and, where the toolchain exists, on a Cortex-M4
    under QEMU. ``debug_layers``: name the first layer where C and LiteRT differ even when
    none does. ``keep_names``: keep the tensor names in the int8 model (for a model viewer);
    by default they are stripped, as no runtime needs them (`strip_names`).
    """
    from kws.evaluate import evaluate_arrays
    from kws.train import configure_tensorflow, load_run_model

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists() or not (run_dir / "model.keras").exists():
        raise ExportError(f"{run_dir}: not a run directory (config.json and model.keras expected)")
    if c_code and not int8:
        raise ExportError("the C export needs the int8 model (drop --no-int8)")
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise ExportError(f"unknown target(s) {unknown}; choose from {list(TARGETS)}")
    if calibration < 1:
        raise ExportError(f"--calibration must be positive, got {calibration}")
    say = step or (lambda _: None)
    config = read_run_config(run_dir)
    spec = features.FeatureSpec.from_dict(config["spec"])
    labels = (kdata.LABEL_SILENCE, kdata.LABEL_UNKNOWN, *config["words"])
    seed = int(config.get("seed", 0))
    configure_tensorflow(seed)
    out = run_dir / "export"  # made by the first file written (none if loading fails)

    say("loading the model and the validation split")
    model = load_run_model(run_dir)
    index = kdata.build_index(
        config["data_dir"], words=config["words"], options=kdata.IndexOptions(**config["index"])
    )
    noise = kdata.load_noise(index, spec=spec)
    val = kdata.load_split(index, "validation", spec=spec, cache_dir=cache_dir)
    val_x = kdata.fixed_features(val, noise=noise, spec=spec, seed=seed, cache_dir=cache_dir)
    keras_acc = evaluate_arrays(
        model.predict(val_x, batch_size=512, verbose=0), val.labels, labels
    ).accuracy

    say("converting to float TFLite")
    float_flat = to_tflite(model)
    with atomic_path(out / "model_float.tflite") as tmp:
        tmp.write_bytes(float_flat)
    float_model = TFLiteModel(float_flat, name="model_float.tflite")
    float_acc = evaluate_arrays(float_model.predict(val_x), val.labels, labels).accuracy
    summary = models.summarize(model)
    report: dict[str, Any] = {
        "run_dir": str(run_dir),
        "created": now(),
        "labels": list(labels),
        "spec": spec.to_dict(),
        "validation_examples": len(val),
        "macs": summary.macs,
        "params": summary.params,
        "accuracy": {"keras": keras_acc, "float_tflite": float_acc},
        "float": {
            "bytes": len(float_flat),
            "operators": float_model.operators(),
            "latency_ms": float_model.latency_ms(float_model.input_q.quantize(val_x[0])),
        },
    }
    if int8:
        say(f"calibrating full-integer quantisation on {calibration} training examples")
        representative = _representative(index, spec, calibration, seed, noise, cache_dir)
        int8_flat = to_tflite(model, representative=representative)
        if not keep_names:
            int8_flat = strip_names(int8_flat)
        with atomic_path(out / "model_int8.tflite") as tmp:
            tmp.write_bytes(int8_flat)
        lite = TFLiteModel(int8_flat, name="model_int8.tflite")
        ref = TFLiteModel(int8_flat, name="model_int8.tflite", reference=True)
        raw = lite.input_q.quantize(val_x)
        int8_out = lite.run_raw(raw).reshape(len(raw), -1)
        int8_probs = lite.output_q.dequantize(int8_out)
        int8_acc = evaluate_arrays(int8_probs, val.labels, labels).accuracy
        report["accuracy"]["int8_tflite"] = int8_acc
        report["accuracy"]["drop_points"] = round(100 * (float_acc - int8_acc), 3)

        # per-keyword rejection thresholds for the int8 model, on the same validation split
        rejection = fit_calibration(
            int8_probs, val.labels, labels, keep=DEFAULT_KEEP,
            model_sha256=hashlib.sha256(int8_flat).hexdigest(),
        )  # fmt: skip
        write_json(calibration_path(out / "model_int8.tflite"), rejection.to_dict())
        # the same decisions in integers, for the C spotter and TFLM's labels.h
        rule = Int8Rule.of(rejection, zero_point=lite.output_q.zero_point)
        calibrated = rejection.predict(int8_probs)
        if not np.array_equal(rule.decide(int8_out), calibrated):
            raise ExportError("the int8 rejection rule disagrees with the calibration")
        calibrated_acc = evaluate_arrays(
            int8_probs, val.labels, labels, predicted=calibrated
        ).accuracy
        report["calibration"] = {
            **rejection.to_dict(),
            "int8_rule": {
                "numerators": list(rule.numerators),
                "denominators": list(rule.denominators),
                "zero_point": rule.zero_point,
            },
            "validation_accuracy": calibrated_acc,
        }

        say("measuring the TFLM arena and checking TFLM against LiteRT's reference kernels")
        arena = micro_arena_bytes(int8_flat, raw[0])
        ref_out = ref.run_raw(raw)
        micro_out = run_micro(int8_flat, raw, arena=arena)
        diff = np.abs(ref_out.astype(np.int32) - micro_out.astype(np.int32))
        per_example = diff.reshape(len(diff), -1).max(axis=1)
        identical = float((per_example == 0).mean())
        first = None
        if identical < 1.0:
            first = first_difference(int8_flat, raw[int(np.argmax(per_example))])
        report["int8"] = {
            "bytes": len(int8_flat),
            "operators": lite.operators(),
            "arena_bytes": arena,
            "input_scale": lite.input_q.scale,
            "input_zero_point": lite.input_q.zero_point,
            "output_scale": lite.output_q.scale,
            "output_zero_point": lite.output_q.zero_point,
            "latency_ms": lite.latency_ms(raw[0]),
            "calibration_examples": calibration,
        }
        report["tflm_parity"] = {
            "examples": len(raw),
            "identical_rate": identical,
            "max_diff_lsb": int(diff.max()),
            "first_differing_operator": first,
            "reference": "LiteRT BUILTIN_REF kernels",
        }
        say("writing C sources")
        write_c_sources(
            out,
            model_int8=int8_flat,
            spec=spec,
            labels=labels,
            input_scale=lite.input_q.scale,
            input_zero_point=lite.input_q.zero_point,
            sample_input=raw[0].reshape(-1),
            sample_output=ref_out[0].reshape(-1),
            rejection=rule,
        )
        report["arm_cortex_m4"] = _arm_sizes(out)
        flash = len(int8_flat) + RUNTIME_FLASH_BYTES
        ram = arena + front_end_ram_bytes(spec) + RUNTIME_RAM_BYTES
        report["fit"] = {
            "assumptions": {
                "runtime_flash_bytes": RUNTIME_FLASH_BYTES,
                "runtime_ram_bytes": RUNTIME_RAM_BYTES,
                "front_end_ram_bytes": front_end_ram_bytes(spec),
            },
            "flash_bytes": flash,
            "ram_bytes": ram,
            "targets": {
                name: {
                    "description": TARGETS[name].description,
                    "flash_bytes": TARGETS[name].flash_bytes,
                    "ram_bytes": TARGETS[name].ram_bytes,
                    "fits": flash <= TARGETS[name].flash_bytes and ram <= TARGETS[name].ram_bytes,
                }
                for name in targets
            },
        }
        if c_code:
            from kws.export.cexport import C_EXPORT_ERRORS, export_c

            audio = np.clip(np.round(np.asarray(val.clips) * 32768.0), -32768, 32767)
            try:
                report["c"] = export_c(
                    out / "c",
                    int8_flat=int8_flat,
                    spec=spec,
                    labels=labels,
                    raw_inputs=raw,
                    reference_outputs=ref_out,
                    audio=audio.astype(np.int16),
                    rejection=rule,
                    debug_layers=debug_layers,
                    say=say,
                )
            except C_EXPORT_ERRORS as exc:  # a model it cannot express, a tool that failed
                raise ExportError(f"{out / 'c'}: {exc}") from exc
            arm = report["c"]["cortex_m4"]
            if "flash_bytes" in arm:
                report["c"]["fit"] = {
                    name: arm["flash_bytes"] <= TARGETS[name].flash_bytes
                    and arm["ram_bytes"] <= TARGETS[name].ram_bytes
                    for name in targets
                }
    report["manifest"] = manifest()
    write_json(out / "report.json", report)
    if c_code:
        _check_c(report["c"], out)
    if int8:
        if report["tflm_parity"]["max_diff_lsb"] > max_lsb:
            raise ExportError(
                f"TFLM differs from LiteRT's reference kernels on "
                f"{1 - report['tflm_parity']['identical_rate']:.2%} of examples "
                f"(max {report['tflm_parity']['max_diff_lsb']} LSB), first at "
                f"{report['tflm_parity']['first_differing_operator']}; all files are written, see "
                f"{out / 'report.json'} (--max-lsb accepts a known difference)"
            )
        if report["accuracy"]["drop_points"] > max_drop:
            raise ExportError(
                f"int8 accuracy {report['accuracy']['int8_tflite']:.2%} is "
                f"{report['accuracy']['drop_points']:.2f} points below float "
                f"{float_acc:.2%} (more than --max-drop {max_drop}); try more "
                f"--calibration examples; see {out / 'report.json'}"
            )
    return report

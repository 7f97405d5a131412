"""Run directories: the reproducibility manifest and small atomic JSON/CSV writers."""

from __future__ import annotations

import csv
import datetime as dt
import importlib.metadata
import json
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kws.fsutil import atomic_path

PACKAGES = (
    "kws",
    "numpy",
    "scipy",
    "soundfile",
    "librosa",
    "tensorflow",
    "keras",
    "ai-edge-litert",
)


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def write_json(path: Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


class RunFileError(ValueError):
    """A file of a run directory (config.json, state.json, model.keras, ...) is damaged."""


def read_json(path: Path) -> Any:
    """The JSON value in ``path``; `RunFileError` naming the file when it is not JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise RunFileError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except UnicodeDecodeError:
        raise RunFileError(f"{path}: not valid JSON (not UTF-8 text)") from None


RUN_CONFIG_KEYS = {"data_dir": str, "words": list, "spec": dict}


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """A run's config.json, checked for what every command reads from it (the data folder,
    the words, a valid FeatureSpec); `RunFileError` naming the file otherwise."""
    import features

    path = Path(run_dir) / "config.json"
    config = read_json(path)
    if not isinstance(config, dict):
        raise RunFileError(f"{path}: not a kws run config (a JSON object expected)")
    for key, kind in RUN_CONFIG_KEYS.items():
        if not isinstance(config.get(key), kind):
            raise RunFileError(
                f"{path}: not a kws run config ({key!r} missing or not a {kind.__name__})"
            )
    if not all(isinstance(w, str) and w for w in config["words"]):
        raise RunFileError(f"{path}: 'words' must be a list of words")
    try:
        features.FeatureSpec.from_dict(config["spec"])
    except (features.ParameterError, TypeError, ValueError, KeyError) as e:
        raise RunFileError(f"{path}: invalid 'spec' ({e})") from None
    return config


def load_keras_model(path: Path) -> Any:
    """A saved Keras model (inference only); `RunFileError` naming the file when it is
    missing, truncated or not a .keras archive."""
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        raise RunFileError(f"{path}: not a Keras model (.keras archive), or truncated")
    import keras

    try:
        return keras.models.load_model(path, compile=False)
    except (OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile) as e:
        raise RunFileError(f"{path}: cannot load the Keras model ({e})") from None


def run_dir_of(target: Path) -> Path | None:
    """The run directory a target belongs to: itself, or the run of RUN_DIR/model.keras or
    RUN_DIR/export/*.tflite; None for a model trained elsewhere."""
    target = Path(target)
    for candidate in (target, target.parent, target.parent.parent):
        if candidate.is_dir() and (candidate / "config.json").exists():
            return candidate
    return None


def write_csv(path: Path, rows: list[dict[str, Any]], fieldnames: Sequence[str] = ()) -> None:
    """Rows as CSV, atomically; with ``fieldnames`` the header is written even without rows
    (otherwise an empty list gives an empty file)."""
    names = list(fieldnames) or (list(rows[0]) if rows else [])
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        if names:
            writer = csv.DictWriter(f, fieldnames=names)
            writer.writeheader()
            writer.writerows(rows)


def code_version() -> dict[str, Any]:
    """Git commit and dirty flag of the source tree kws runs from (None outside git)."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                [
                    "git",
                    "-C",
                    str(root),
                    "status",
                    "--porcelain",
                    "--",
                    "kws",
                    "align",
                    "features",
                    "models",
                ],
                capture_output=True,
                text=True,
                check=True,
                timeout=10,
            ).stdout.strip()
        )
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "dirty": None}
    return {"git_commit": commit, "dirty": dirty}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def manifest(**extra: Any) -> dict[str, Any]:
    """Code version, packages, Python, platform, CPU, plus the caller's fields."""
    import os

    return {
        "code": code_version(),
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        **extra,
    }


def manifest_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """What differs between two manifests in the fields that can change results."""
    out = []
    for key in ("code", "packages", "python", "platform", "cpu", "data"):
        if a.get(key) != b.get(key):
            out.append(f"{key}: {a.get(key)} → {b.get(key)}")
    return out

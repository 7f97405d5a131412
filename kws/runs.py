"""Run directories: the reproducibility manifest and small atomic JSON/CSV writers."""

from __future__ import annotations

import csv
import datetime as dt
import importlib.metadata
import json
import platform
import subprocess
import sys
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


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def run_dir_of(target: Path) -> Path | None:
    """The run directory a target belongs to: itself, or the run of RUN_DIR/model.keras or
    RUN_DIR/export/*.tflite; None for a model trained elsewhere."""
    target = Path(target)
    for candidate in (target, target.parent, target.parent.parent):
        if candidate.is_dir() and (candidate / "config.json").exists():
            return candidate
    return None


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        if rows:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
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

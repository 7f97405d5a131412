"""Shared fixtures: a seeded generator and small audio files written to tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def burst_clip(
    rng: np.random.Generator,
    *,
    n: int,
    at: int,
    width: int,
    noise: float = 0.002,
    peak: float = 0.5,
) -> np.ndarray:
    """Low noise with a loud burst at ``at`` .. ``at + width``: float64 in [-1, 1]."""
    x = rng.normal(0.0, noise, n)
    x[at : at + width] += peak * np.sin(np.linspace(0, 200 * np.pi, width))
    return np.clip(x, -1, 1)


def write(path: Path, data: np.ndarray, rate: int = 16_000, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, rate, subtype=subtype)
    return path

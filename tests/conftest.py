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


def make_word_dataset(root: Path, rng: np.random.Generator, *, per_word: int = 24) -> Path:
    """Tone 'words' by speaker-named files (yes/no/up + two unknown words) and white noise."""
    t = np.arange(16_000) / 16_000
    words = [("yes", 300), ("no", 700), ("up", 1500), ("cat", 2500), ("dog", 3200)]
    for w, (word, f0) in enumerate(words):
        for _ in range(per_word if w < 3 else 6):
            speaker = f"{rng.integers(0, 2**32):08x}"
            n = int(rng.integers(9000, 16_001))
            x = 0.4 * np.sin(2 * np.pi * f0 * t[:n]) * np.hanning(n) + rng.normal(0, 0.01, n)
            write(root / word / f"{speaker}_nohash_0.wav", x)
    write(root / "_background_noise_" / "white.wav", rng.normal(0, 0.3, 48_000), subtype="FLOAT")
    return root


def train_tiny_run(
    root: Path, *, seed: int, epochs: int, per_word: int = 24, testing: float = 10.0
) -> Path:
    """A trained run of DS-CNN-S's tiny() config on `make_word_dataset` tone words (yes, no,
    up): what export, eval and streaming tests need of a real model, in seconds."""
    from kws.data import IndexOptions
    from kws.train import TrainConfig, train

    data = make_word_dataset(root / "words", np.random.default_rng(seed), per_word=per_word)
    config = TrainConfig(
        data_dir=str(data),
        words=("yes", "no", "up"),
        model="ds_cnn-s",
        tiny_model=True,
        epochs=epochs,
        batch_size=16,
        lr=0.01,
        warmup_epochs=0,
        index=IndexOptions(validation_percentage=25, testing_percentage=testing),
        seed=seed,
    )
    train(config, root / "run", cache_dir=root / "cache")
    return root / "run"

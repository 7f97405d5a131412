"""`kws demo`: the main job on a generated example folder.

For now the aligner: a folder of raw multi-second "takes" (a synthetic voiced word at a
random position in low noise, in several file formats) is aligned to one-second clips.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import soundfile as sf
from rich.console import Console

import align
from kws.alignment import align_summary, default_jobs, write_align_report
from kws.fsutil import atomic_path

DEMO_SEED = 20261122
DEMO_RATE_HZ = 16_000
TAKE_SECONDS = 3.0
WORDS = ("yes", "no", "up", "down")
TAKES_PER_WORD = 6
# (subtype, format, channels): the kinds of file a user's recorder produces.
FILE_KINDS = (("PCM_16", "WAV", 1), ("PCM_24", "FLAC", 1), ("FLOAT", "WAV", 2))


def synthetic_word(rng: np.random.Generator, *, rate_hz: int) -> np.ndarray:
    """A voiced, word-like burst: a few harmonics of a gliding pitch under a syllable envelope."""
    seconds = rng.uniform(0.35, 0.7)
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    f0 = rng.uniform(100, 220) * (1 + rng.uniform(-0.2, 0.2) * t / seconds)
    phase = 2 * np.pi * np.cumsum(f0) / rate_hz
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    syllables = rng.integers(1, 3)
    envelope = np.sin(np.pi * syllables * t / seconds) ** 2
    return (voice * envelope / 2.5).astype(np.float64)


def make_takes(folder: Path, *, rng: np.random.Generator) -> list[Path]:
    """Write raw takes under folder/<word>/ (kept when they already exist)."""
    paths = []
    n = int(TAKE_SECONDS * DEMO_RATE_HZ)
    for word in WORDS:
        for k in range(TAKES_PER_WORD):
            subtype, fmt, channels = FILE_KINDS[k % len(FILE_KINDS)]
            take = rng.normal(0, 0.003, n)
            word_audio = synthetic_word(rng, rate_hz=DEMO_RATE_HZ) * rng.uniform(0.2, 0.8)
            at = rng.integers(0, n - word_audio.size)
            take[at : at + word_audio.size] += word_audio
            data = np.repeat(take[:, None], channels, axis=1)
            path = folder / word / f"take{k}.{fmt.lower()}"
            paths.append(path)
            if not path.exists():
                with atomic_path(path) as tmp:
                    sf.write(tmp, data, DEMO_RATE_HZ, subtype=subtype, format=fmt)
    return paths


def run_demo(out: Path, *, console: Console) -> None:
    """Generate takes under out/takes, align them into out/aligned and print the summary."""
    rng = np.random.default_rng(DEMO_SEED)
    takes = make_takes(out / "takes", rng=rng)
    console.print(f"{len(takes)} raw takes in {out / 'takes'}")
    options = align.AlignOptions()
    plan = align.plan_jobs([out / "takes"], out / "aligned", options=options)
    t0 = time.perf_counter()
    results = align.align_jobs(plan, options=options, workers=default_jobs(), overwrite=True)
    seconds = time.perf_counter() - t0
    write_align_report(results, out / "align_report.csv")
    first = results[0]
    if first.start_ms is not None:
        from align.plot import plot_alignment

        plot_alignment(
            plan[0].source,
            start_ms=first.start_ms,
            window_ms=options.window_ms,
            out=out / "align.png",
        )
    console.print(align_summary(results, seconds))
    console.print(
        f"aligned clips: {out / 'aligned'}   report: {out / 'align_report.csv'}   "
        f"plot: {out / 'align.png'}"
    )

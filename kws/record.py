"""`kws record`: a guided recording session for one word at the microphone.

In: the word, how many takes, a take source (the microphone through `kws.live.MicSource`, or
any object with ``take(seconds)``; tests pass a fake), and two callbacks: ``show`` prints a
line, ``ask`` asks a question. For each take: a count-down, the take, its level meter, the
loudest one-second window found in it (the aligner of `align`), then keep, redo or quit.
Out: kept takes as aligned one-second clips ``OUT/<speaker>_nohash_<n>.wav`` (16 kHz 16-bit,
written atomically), numbered after those already there, so a second session adds to the
first and never overwrites it; the speaker name keeps all of a person's takes in one split.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile as sf

import align
from kws.audio import SILENT_DBFS, level_dbfs
from kws.fsutil import atomic_path

__all__ = ["RecordError", "RecordOptions", "Take", "TakeSource", "analyse_take", "record_session"]

SAMPLE_RATE_HZ = 16_000
QUIET_DBFS = -35.0  # a take whose peak is below this is probably not a word
CLIPPED = 0.999  # a take that reaches this is clipped
METER = 30


class RecordError(ValueError):
    """Bad session settings (word, speaker name, counts)."""


class TakeSource(Protocol):
    def take(self, seconds: float) -> np.ndarray: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RecordOptions:
    count: int = 10
    take_seconds: float = 2.0
    window_ms: float = 1000.0
    countdown: int = 3
    speaker: str = "me"

    def __post_init__(self) -> None:
        if self.count < 1:
            raise RecordError(f"--count must be >= 1, got {self.count}")
        if self.take_seconds * 1000 < self.window_ms:
            raise RecordError(
                f"--take-seconds must be at least the clip length ({self.window_ms / 1000:g} s)"
            )
        if not re.fullmatch(r"[A-Za-z0-9-]+", self.speaker):
            raise RecordError(
                f"--speaker must be letters, digits or '-', got {self.speaker!r} "
                "(it becomes the file name before _nohash_)"
            )


@dataclass(frozen=True)
class Take:
    clip: np.ndarray  # the loudest window, float32
    start_s: float  # where it starts in the take
    peak_dbfs: float
    snr_db: float  # the window's level over the rest of the take
    warning: str


def analyse_take(audio: np.ndarray, *, window_ms: float) -> Take:
    """The loudest window of a take, its level, and what is wrong with it, if anything."""
    n = round(window_ms * SAMPLE_RATE_HZ / 1000)
    start = align.loudest_window(audio, length_samples=n)
    clip = audio[start : start + n].astype(np.float32)
    if clip.size < n:
        clip = np.pad(clip, (0, n - clip.size))
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    peak_dbfs = 20 * float(np.log10(peak)) if peak > 0 else SILENT_DBFS
    rest = np.concatenate([audio[:start], audio[start + n :]])
    snr = level_dbfs(clip) - level_dbfs(rest) if rest.size else float("inf")
    warning = ""
    if peak >= CLIPPED:
        warning = "clipped: move back from the microphone or lower its gain"
    elif peak_dbfs < QUIET_DBFS:
        warning = "very quiet: speak louder or closer"
    elif snr < 10:
        warning = "the word hardly stands out from the background"
    return Take(clip, start / SAMPLE_RATE_HZ, peak_dbfs, snr, warning)


def level_meter(take: Take) -> str:
    filled = int(np.clip((take.peak_dbfs + 60) / 60, 0, 1) * METER)
    return (
        f"level {'█' * filled}{'·' * (METER - filled)} peak {take.peak_dbfs:6.1f} dBFS, "
        f"word at {take.start_s:.2f} s, {take.snr_db:.0f} dB above the rest"
    )


def next_index(folder: Path, speaker: str) -> int:
    """The first take number after every ``<speaker>_nohash_<n>.*`` in the folder."""
    pattern = re.compile(rf"^{re.escape(speaker)}_nohash_(\d+)\.\w+$")
    numbers = [int(m.group(1)) for p in folder.glob("*") if (m := pattern.match(p.name))]
    return max(numbers, default=-1) + 1


def record_session(
    word: str,
    *,
    out: Path,
    source: TakeSource,
    options: RecordOptions = RecordOptions(),
    show: Callable[[str], None] = print,
    ask: Callable[[str], str] = input,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Path]:
    """Run the session; see the module docstring. Returns the files written."""
    if not word or "/" in word or word.startswith(("_", ".")):
        raise RecordError(f"the word must be a folder name, got {word!r}")
    out = Path(out)
    written: list[Path] = []
    try:
        while len(written) < options.count:
            show(f"take {len(written) + 1}/{options.count}: say '{word}' after the count-down")
            for k in range(options.countdown, 0, -1):
                show(f"  {k}…")
                sleep(1.0)
            show("  speak now")
            take = analyse_take(source.take(options.take_seconds), window_ms=options.window_ms)
            show("  " + level_meter(take))
            if take.warning:
                show(f"  warning: {take.warning}")
            answer = ask("  keep it? [Y]es / [n]o, again / [q]uit: ").strip().lower()
            if answer in ("q", "quit"):
                break
            if answer not in ("", "y", "yes"):
                continue
            path = out / f"{options.speaker}_nohash_{next_index(out, options.speaker)}.wav"
            with atomic_path(path) as tmp:
                sf.write(tmp, take.clip, SAMPLE_RATE_HZ, subtype="PCM_16", format="WAV")
            written.append(path)
            show(f"  kept: {path}")
    finally:
        source.close()
    return written

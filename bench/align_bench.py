"""Benchmark of `kws align` (not a test): prints a table.

1. 2,000 three-second 16-bit mono clips at 16 kHz in a temporary folder, aligned to one
   second by `kws align --jobs 1`, `kws align` (default: all cores) and a plain
   single-process loop (soundfile read, NumPy cumulative sum, soundfile write). Each is run
   as its own process, start-up included, after `sync` so no one pays for another's
   write-back. files/s and MB/s of input read.
2. One 1-hour recording (16 kHz, 16-bit, 115 MB): time and peak RSS of `kws align`, and of
   the plain whole-file read for comparison.

Usage: python bench/align_bench.py [--clips 2000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16_000
CLIP_SECONDS = 3
HOUR_SECONDS = 3600

BASELINE = textwrap.dedent(
    """
    import sys, os, numpy as np, soundfile as sf
    src, dst = sys.argv[1], sys.argv[2]
    os.makedirs(dst, exist_ok=True)
    import time
    t0 = time.perf_counter()
    L = 16000
    for name in sorted(os.listdir(src)):
        x, rate = sf.read(os.path.join(src, name), dtype="int16")
        c = np.concatenate([[0], np.cumsum(np.abs(x.astype(np.int64)))])
        start = int(np.argmax(c[L:] - c[:-L]))
        sf.write(os.path.join(dst, name), x[start:start + L], rate, subtype="PCM_16")
    print(f"in {time.perf_counter() - t0:.3f} s")
    """
)

WHOLE_READ = "import sys, soundfile as sf; x, r = sf.read(sys.argv[1], dtype='int16')"


def run(cmd: list[str]) -> tuple[float, float, float]:
    """(wall seconds, seconds of work as the process reports it, peak RSS in MB)."""
    os.sync()
    time.sleep(1.0)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}")
    work = re.search(r"in ([0-9.]+) s", out)
    return seconds, float(work.group(1)) if work else float("nan"), usage.ru_maxrss / 1024


def make_clips(folder: Path, count: int) -> int:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    n = CLIP_SECONDS * RATE
    for i in range(count):
        x = rng.normal(0, 300, n)
        at = int(rng.integers(0, n - 8000))
        x[at : at + 8000] += 8000 * np.sin(np.arange(8000) * 0.1)
        sf.write(folder / f"clip{i:05d}.wav", np.clip(x, -32768, 32767).astype(np.int16), RATE)
    return sum(p.stat().st_size for p in folder.iterdir())


def make_hour(path: Path) -> None:
    rng = np.random.default_rng(1)
    with sf.SoundFile(path, "w", RATE, 1, "PCM_16") as f:
        for minute in range(HOUR_SECONDS // 60):
            x = rng.normal(0, 200, 60 * RATE)
            if minute == 37:
                x[100_000:110_000] += 9000
            f.write(np.clip(x, -32768, 32767).astype(np.int16))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=2000)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="kws-align-bench-"))
    kws = [sys.executable, "-m", "kws", "align"]
    try:
        clips = work / "clips" / "word"
        size_mb = make_clips(clips, args.clips) / 1e6
        rows = []
        for label, cmd in [
            ("kws align --jobs 1", [*kws, str(clips), "--out", str(work / "o1"), "--jobs", "1"]),
            (
                f"kws align (default, {os.cpu_count()} cores)",
                [*kws, str(clips), "--out", str(work / "o2")],
            ),
            (
                "plain loop (read, cumsum, write)",
                [sys.executable, "-c", BASELINE, str(clips), str(work / "o3")],
            ),
        ]:
            seconds, work_s, _ = run(cmd)
            rows.append(
                (
                    label,
                    f"{args.clips / seconds:,.0f}",
                    f"{args.clips / work_s:,.0f}",
                    f"{size_mb / seconds:,.1f}",
                    f"{seconds:.2f}",
                )
            )
        hour = work / "hour.wav"
        make_hour(hour)
        hour_s, _, hour_rss = run([*kws, str(hour), "--out", str(work / "o4"), "--jobs", "1"])
        read_s, _, read_rss = run([sys.executable, "-c", WHOLE_READ, str(hour)])
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    print(
        f"\n{args.clips} clips of {CLIP_SECONDS} s, 16-bit mono {RATE} Hz ({size_mb:.1f} MB), "
        f"process start-up included; {os.cpu_count()} cores\n"
    )
    print("files/s: whole process; after start-up: the work alone, as the process times it\n")
    print(
        f"| {'run':<40} | {'files/s':>8} | {'after start-up':>14} | {'MB/s':>6} | {'seconds':>7} |"
    )
    print(f"|{'-' * 42}|{'-' * 10}|{'-' * 16}|{'-' * 8}|{'-' * 9}|")
    for label, fps, work_fps, mbps, sec in rows:
        print(f"| {label:<40} | {fps:>8} | {work_fps:>14} | {mbps:>6} | {sec:>7} |")
    print(f"\n1-hour recording ({hour.stat().st_size / 1e6 if hour.exists() else 115.2:.1f} MB)\n")
    print(f"| {'run':<40} | {'seconds':>7} | {'peak RSS MB':>11} |")
    print(f"|{'-' * 42}|{'-' * 9}|{'-' * 13}|")
    print(f"| {'kws align (streamed in blocks)':<40} | {hour_s:>7.2f} | {hour_rss:>11.1f} |")
    print(f"| {'whole-file sf.read (for comparison)':<40} | {read_s:>7.2f} | {read_rss:>11.1f} |")


if __name__ == "__main__":
    main()

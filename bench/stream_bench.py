"""Benchmark of streaming detection (not a test): prints tables.

Builds a long stream (`kws data make-stream` defaults: a word every ~2 s, ~30 % other words,
background noise) from the speakers of ../shared/data/speech_commands_subset that training
does not use (validation + testing split), and, when present, one from
../shared/data/speech_commands_test_dev (evaluation only). Then, for the given model:

- cost: `kws listen --file` as a whole process (wall, CPU, real-time factor) and the
  detector loop alone (CPU per second of audio = share of one core at real time);
- latency: algorithmic (detection time minus the end of the word, from stream-eval) and end to
  end, with the file played in real time through `FileSource(realtime=True)`: the wall-clock
  time at which each correct detection is handed out, minus the moment the end of its word
  was due to arrive (this adds the audio block and the computation);
- accuracy: `kws stream-eval` metrics at the default smoothing settings.

Usage: python bench/stream_bench.py MODEL [--minutes 30] [--realtime-seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from kws.data.streams import StreamOptions, make_stream
from kws.live import DEFAULT_BLOCK_MS, FileSource, listen
from kws.stream import DEFAULT_SMOOTHING, StreamingDetector, load_window_model
from kws.stream_eval import evaluate_stream

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SUBSET = SHARED / "speech_commands_subset"
TEST_DEV = SHARED / "speech_commands_test_dev"
WORDS = ["yes", "no", "up", "down", "left", "right", "stop"]
RATE = 16_000


def whole_process(model: Path, wav: Path) -> tuple[float, float]:
    """(wall s, CPU s) of `kws listen MODEL --file WAV --json` as a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "kws", "listen", str(model), "--file", str(wav), "--json"],
        check=True,
        capture_output=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def realtime_latency(
    model: object, wav: Path, truth: list, seconds: float, block_ms: float
) -> list[float]:
    """End-to-end latency (ms) of correct detections with the file played in real time."""
    audio = sf.read(wav, dtype="float32", frames=int(seconds * RATE))[0]
    with tempfile.TemporaryDirectory() as tmp:
        part = Path(tmp) / "part.wav"
        sf.write(part, audio, RATE, subtype="FLOAT")
        source = FileSource(part, sample_rate_hz=RATE, block_ms=block_ms, realtime=True)
        handed: list[tuple[str, float]] = []
        start = time.monotonic()
        listen(
            source,
            StreamingDetector(model),  # type: ignore[arg-type]
            on_detection=lambda d: handed.append((d.label, time.monotonic() - start)),
        )
    out = []
    for label, wall in handed:
        words = [w for w in truth if w.label == label and w.clip_start_s <= wall <= w.end_s + 1.5]
        if words:
            out.append(1000 * (wall - words[0].end_s))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="run directory, .keras or .tflite")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--realtime-seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--block-ms", type=float, default=DEFAULT_BLOCK_MS)
    args = parser.parse_args()
    model = load_window_model(args.model)
    streams = [("subset validation+testing speakers", SUBSET, False)]
    if TEST_DEV.is_dir():
        streams.append(("speech_commands_test_dev (eval only)", TEST_DEV, True))
    rows = []
    cost_rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, data, as_test in streams:
            options = StreamOptions(minutes=args.minutes, seed=args.seed)
            t0 = time.perf_counter()
            audio, truth = make_stream(data, words=WORDS, options=options, as_test=as_test)
            build_s = time.perf_counter() - t0
            wav = Path(tmp) / "stream.wav"
            sf.write(wav, audio, RATE, subtype="PCM_16")
            report = evaluate_stream(model, sf.read(wav, dtype="float32")[0], truth)
            m = report.operating
            rows.append((name, m))
            if as_test:
                continue
            seconds = len(audio) / RATE
            wall, cpu = whole_process(args.model, wav)
            cost_rows.append(
                (f"kws listen --file ({args.minutes:g} min), whole process", wall, cpu, seconds)
            )
            stats = listen(
                FileSource(wav, sample_rate_hz=RATE, block_ms=args.block_ms),
                StreamingDetector(model),
            )
            cost_rows.append(
                (f"detector loop ({args.block_ms:g} ms blocks)", stats.wall_s, stats.cpu_s, seconds)
            )
            latency = realtime_latency(model, wav, truth, args.realtime_seconds, args.block_ms)
            print(f"stream built in {build_s:.1f} s", file=sys.stderr)
    smoothing = DEFAULT_SMOOTHING
    print(f"\nmodel {args.model}; smoothing {smoothing}; hop 20 ms; tolerance 750 ms\n")
    print("| run | wall s | CPU s | real-time factor | share of one core |")
    print("|---|---|---|---|---|")
    for name, wall, cpu, seconds in cost_rows:
        print(
            f"| {name} | {wall:.2f} | {cpu:.2f} | {wall / seconds:.4f} | "
            f"{100 * cpu / seconds:.2f} % |"
        )
    print()
    print(
        "| stream | keywords / other | correct | wrong | missed | false accepts/h (on other words)"
        " | latency after word end p50 / p90 |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, m in rows:
        print(
            f"| {name} | {m.keywords} / {m.other_words} | {m.correct_pct:.1f} % | "
            f"{m.wrong_pct:.1f} % | {m.miss_pct:.1f} % | {m.false_accepts_per_hour:.1f} "
            f"({m.false_accepts_on_words / m.hours:.1f}) | {m.latency_percentile(50):.0f} / "
            f"{m.latency_percentile(90):.0f} ms |"
        )
    if latency:
        print(
            f"\nend-to-end latency, {args.realtime_seconds:g} s played in real time "
            f"({args.block_ms:g} ms blocks), {len(latency)} correct detections: median "
            f"{np.median(latency):.0f} ms, p90 {np.percentile(latency, 90):.0f} ms, "
            f"max {max(latency):.0f} ms"
        )
    print(json.dumps({name: m.to_dict() for name, m in rows}, indent=1), file=sys.stderr)


if __name__ == "__main__":
    main()

"""Benchmark of `kws synth`'s engines (not a test): prints a table.

Times the synthesis of one word per take (the engine only, before the take is dressed as a
recording) for every engine installed: espeak-ng, flite, and Kokoro when `kws[kokoro]` is
installed (its model loading and the first call, which sets up ONNX Runtime, are timed
apart). Voices are drawn at random among the engine's own.

Usage: python bench/synth_bench.py [--takes 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from kws import kokoro
from kws.synth import SynthError, Voice, available_voices, synthesize

WORDS = ("seven", "house", "follow", "sheila", "on", "marvin", "backward", "tree")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--takes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = []
    for engine in ("espeak-ng", "flite", "kokoro"):
        try:
            voices = available_voices([engine])
        except SynthError:
            rows.append((engine, "not installed", "", "", ""))
            continue
        rng = np.random.default_rng(args.seed)
        first = ""
        if engine == "kokoro":
            t0 = time.perf_counter()
            synthesize("one", Voice("kokoro", "af_bella"), rng)
            first = f"{time.perf_counter() - t0:.2f} s"
        seconds = audio = 0.0
        for n in range(args.takes):
            voice = voices[int(rng.integers(len(voices)))]
            t0 = time.perf_counter()
            take = synthesize(WORDS[n % len(WORDS)], voice, rng)
            seconds += time.perf_counter() - t0
            audio += len(take) / 16_000
        rows.append(
            (
                engine,
                str(len(voices)),
                first,
                f"{1000 * seconds / args.takes:.0f}",
                f"{seconds / audio:.3f}",
            )
        )
    header = ("engine", "voices", "load + first take", "ms per take", "real-time factor")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    if kokoro.kokoro_available():
        print(f"kokoro: {kokoro.kokoro_version()}")


if __name__ == "__main__":
    main()

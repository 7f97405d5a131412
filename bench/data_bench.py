"""Benchmark of the training batch source (not a test): prints a table.

Indexes ../shared/data/speech_commands_subset (7 words), decodes the training split (first
run, then from the on-disk cache), and times one epoch of augmented feature batches
(background noise, time shift, MFCC; optional SpecAugment, and the rejection recipe's
repeated other words and random microphones) on this machine; then writes 2,000 generated
negatives of every kind with `kws data negatives`' code, and again (nothing to write).

Usage: python bench/data_bench.py [DATA_DIR] [--batch-size 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import features
from kws.data import AugmentConfig, TrainingBatches, build_index, load_noise, load_split
from kws.data.augment import NEGATIVE_KINDS
from kws.data.negatives import make_negatives

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech_commands_subset"
WORDS = ["yes", "no", "up", "down", "left", "right", "stop"]
NEGATIVES = 2000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()
    spec = features.FeatureSpec()
    rows = []
    t0 = time.perf_counter()
    index = build_index(args.data, words=WORDS)
    rows.append(("index (scan + check headers)", time.perf_counter() - t0, ""))
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        train = load_split(index, "training", spec=spec, cache_dir=Path(cache))
        rows.append(
            ("decode training split (first run)", time.perf_counter() - t0, f"{len(train)} clips")
        )
        t0 = time.perf_counter()
        train = load_split(index, "training", spec=spec, cache_dir=Path(cache))
        rows.append(("load training split (cached)", time.perf_counter() - t0, ""))
        noise = load_noise(index, spec=spec)
        for label, config in (
            ("", AugmentConfig()),
            (" + SpecAugment", AugmentConfig(time_masks=2, freq_masks=2)),
            (  # the rejection recipe of the README (s_bc3_ch10, s_ds_unk20_ch10)
                " + SpecAugment, --unknown-repeat 20 --channel 1",
                AugmentConfig(time_masks=2, freq_masks=2, unknown_repeat=20, channel=1.0),
            ),
        ):
            batches = TrainingBatches(
                train, noise=noise, spec=spec, config=config, batch_size=args.batch_size, seed=0
            )
            for epoch in (0, 1):  # epoch 0 also pays for first touches of the cache
                t0 = time.perf_counter()
                n = examples = 0
                for _, labels in batches.epoch(epoch):
                    n, examples = n + 1, examples + len(labels)
                seconds = time.perf_counter() - t0
                rate = f"{n / seconds:.1f} batches/s = {examples / seconds:,.0f} examples/s"
                rows.append((f"epoch {epoch} of batches{label}", seconds, rate))
        # kws data negatives: every kind written as files (training split from the cache)
        for run in ("", " (rerun: all there)"):
            t0 = time.perf_counter()
            report = make_negatives(
                args.data, words=WORDS, out=Path(cache) / "negatives", count=NEGATIVES,
                kinds=NEGATIVE_KINDS, spec=spec, cache_dir=Path(cache),
            )  # fmt: skip
            seconds = time.perf_counter() - t0
            note = (
                f"{report.written} written = {report.written / seconds:,.0f} clips/s"
                if report.written
                else f"{report.kept} already there"
            )
            rows.append((f"kws data negatives, {NEGATIVES} clips{run}", seconds, note))
    print(f"\n{args.data} (batch size {args.batch_size})\n")
    print(f"| {'step':<66} | {'seconds':>7} | {'':<34} |")
    print(f"|{'-' * 68}|{'-' * 9}|{'-' * 36}|")
    for name, seconds, note in rows:
        print(f"| {name:<66} | {seconds:>7.2f} | {note:<34} |")


if __name__ == "__main__":
    main()

"""Benchmark of the MFCC front end (not a test): prints a table.

Side by side in one run, on one-second 16 kHz clips (mlperf-tiny preset, 49 × 10):
- kws batch: `features.mfcc` on the whole batch;
- librosa per clip: `librosa.feature.mfcc` on each clip (closest settings: n_fft 512,
  window 480, hop 320, 40 HTK mel bands 20-4000 Hz, no centring);
- tf.signal in `tf.function`: the MLPerf Tiny reference pipeline, batched, in a separate
  process with TensorFlow's oneDNN optimisations on (its default) and off;
- kws streaming: `StreamingMfcc` on 60 s of audio in 20 ms chunks, CPU time per second of
  audio (share of one core for real-time input).
Each timed after a warm-up call (librosa's numba compilation, TensorFlow tracing).

Usage: python bench/features_bench.py [--clips 2000] [--librosa-clips 300]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

import features

SPEC = features.preset("mlperf-tiny")


def clips(count: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(SPEC.clip_samples) / SPEC.sample_rate_hz
    x = rng.normal(0, 0.02, (count, t.size))
    x += (
        0.3
        * np.sin(2 * np.pi * rng.uniform(100, 3000, (count, 1)) * t)
        * np.exp(-(((t - 0.5) / 0.15) ** 2))
    )
    return x.astype(np.float32)


def best_of(fn, repeats: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def tf_seconds(x: np.ndarray) -> float:
    """The MLPerf Tiny reference pipeline in tf.signal, batched, inside tf.function."""
    import tensorflow as tf

    weights = tf.signal.linear_to_mel_weight_matrix(40, 257, 16_000, 20.0, 4000.0)

    @tf.function
    def tf_mfcc(batch: tf.Tensor) -> tf.Tensor:
        batch = batch / tf.reduce_max(batch, axis=1, keepdims=True)
        stft = tf.signal.stft(batch, frame_length=480, frame_step=320, fft_length=512)
        log_mel = tf.math.log(tf.tensordot(tf.abs(stft), weights, 1) + 1e-6)
        return tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., :10]

    tensor = tf.constant(x)
    return best_of(lambda: tf_mfcc(tensor).numpy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=2000)
    parser.add_argument("--librosa-clips", type=int, default=300)
    parser.add_argument("--tf-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    x = clips(args.clips)
    if args.tf_only:
        print(args.clips / tf_seconds(x))
        return
    rows = []

    kws_s = best_of(lambda: features.mfcc(x, spec=SPEC))
    rows.append(("kws batch (features.mfcc)", args.clips / kws_s))

    import librosa

    def librosa_run() -> None:
        for clip in x[: args.librosa_clips]:
            librosa.feature.mfcc(
                y=clip / clip.max(),
                sr=16_000,
                n_mfcc=10,
                n_fft=512,
                win_length=480,
                hop_length=320,
                center=False,
                n_mels=40,
                fmin=20,
                fmax=4000,
                htk=True,
            )

    librosa_s = best_of(librosa_run, repeats=1)
    rows.append(("librosa per clip", args.librosa_clips / librosa_s))

    for onednn in ("1", "0"):
        env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn}
        cmd = [sys.executable, __file__, "--tf-only", "--clips", str(args.clips)]
        rate = float(
            subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        )
        label = "default, oneDNN on" if onednn == "1" else "oneDNN off"
        rows.append((f"tf.signal in tf.function ({label})", rate))

    stream = np.tile(x[:60].reshape(-1), 1)  # 60 s
    hop = SPEC.stride_samples

    def stream_run() -> None:
        front = features.StreamingMfcc(SPEC)
        for i in range(0, stream.size, hop):
            front.update(stream[i : i + hop])

    stream_run()
    c0 = time.process_time()
    stream_run()
    cpu = time.process_time() - c0
    seconds = stream.size / SPEC.sample_rate_hz

    print(
        f"\n{args.clips} one-second clips (librosa: {args.librosa_clips}), mlperf-tiny 49 × 10, "
        f"{os.cpu_count()} cores\n"
    )
    print(f"| {'front end':<44} | {'clips/s':>8} | {'vs librosa':>10} |")
    print(f"|{'-' * 46}|{'-' * 10}|{'-' * 12}|")
    base = rows[1][1]
    for name, rate in rows:
        print(f"| {name:<44} | {rate:>8,.0f} | {rate / base:>9.1f}× |")
    print(
        f"\nkws streaming, 20 ms chunks: {cpu / seconds * 100:.2f} % of one core for real-time "
        f"16 kHz audio ({cpu * 1e6 / (seconds * 50):.0f} µs CPU per 20 ms frame)"
    )


if __name__ == "__main__":
    main()

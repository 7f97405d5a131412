"""The `kws` command line (Typer). Commands only resolve options and call library functions;
library code raises, and this module turns the known errors into one-line messages."""

from __future__ import annotations

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
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

import align
import features
from kws import __version__
from kws.alignment import align_summary, default_jobs, write_align_report
from kws.audio import AudioError
from kws.data.download import DownloadError
from kws.data.index import DataError
from kws.fsutil import atomic_path

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
)

F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(func: F) -> F:
    """Turn a library's input errors into `error: ...` on stderr and exit status 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except USER_ERRORS as e:
            err_console.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None

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
        float, typer.Option(help="Window length in milliseconds.")
    ] = align.DEFAULT_WINDOW_MS,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs", "-j", help="Worker processes [default: all cores].", show_default=False
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
            help="Resample the output to this rate in Hz [default: keep the input's].",
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
        err_console.print(f"[red]failed:[/red] {r.message}", highlight=False, soft_wrap=True)
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


PRESET_HELP = f"Feature preset: {', '.join(features.PRESETS)} [default: {features.DEFAULT_PRESET}]."


@app.command("features")
@reports_errors
def features_cli(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Audio files (one clip each).", exists=True, dir_okay=False, show_default=False
        ),
    ],
    preset: Annotated[str | None, typer.Option(help=PRESET_HELP, show_default=False)] = None,
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
    help="Speech Commands and keyword folders: download, index.", no_args_is_help=True
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
    data_dir: Annotated[
        Path,
        typer.Argument(
            help="Dataset folder: one sub-folder per word.",
            exists=True,
            file_okay=False,
            show_default=False,
        ),
    ],
    words: Annotated[
        str, typer.Option(help="Wanted words, comma-separated, e.g. yes,no,up.", show_default=False)
    ],
    validation: Annotated[
        float, typer.Option(help="Validation percentage (hash split by speaker).")
    ] = 10.0,
    testing: Annotated[
        float, typer.Option(help="Testing percentage (hash split by speaker).")
    ] = 10.0,
    silence: Annotated[
        float, typer.Option(help="Silence examples, % of each split's word count.")
    ] = 10.0,
    unknown: Annotated[
        float, typer.Option(help="Unknown-word examples, % of each split's word count.")
    ] = 10.0,
    seed: Annotated[
        int, typer.Option(help="Seed for drawing unknown words and shuffling.")
    ] = 59185,
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
        err_console.print(f"skipped: {data_dir / path}: {reason}", highlight=False, soft_wrap=True)


def parse_words(text: str) -> list[str]:
    return [w.strip() for w in text.split(",") if w.strip()]


@app.command("demo")
def demo_cli(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the demo's files.")] = Path(
        "demo-out"
    ),
) -> None:
    """The main job on the embedded default (for now: align a generated folder of takes)."""
    from kws.demo import run_demo

    run_demo(out, console=console)


def main() -> None:
    """Console-script entry point."""
    app()

"""Align whole folders: plan which input goes to which output, then run the plan in parallel.

In: input files, folders (searched recursively) and glob patterns, and an output folder.
Out: one `AlignResult` per input, in input order. Each input's sub-folder relative to the
folder (or glob base) it was found under is kept under the output folder, so label folders
such as ``yes/`` and ``no/`` survive and same-named files never overwrite each other.

Safety: the output folder may not lie inside an input folder or a glob's base folder (the
part before the first wildcard), and no output may be an input; existing outputs are skipped
unless ``overwrite`` (so a rerun resumes); every output is written under a temporary name and
renamed, and an interrupted or crashed run removes the temporary files of the work it did
not finish. A folder that cannot be read is a failed job of its own, so no file goes missing
from the report unnoticed.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import glob
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from align.files import (
    AlignFileError,
    AlignOptions,
    AlignResult,
    Status,
    align_file,
    partial_path,
)

__all__ = ["AUDIO_SUFFIXES", "AlignInputError", "Job", "align_jobs", "plan_jobs"]

AUDIO_SUFFIXES = frozenset(
    {
        ".wav",
        ".flac",
        ".ogg",
        ".oga",
        ".aif",
        ".aiff",
        ".aifc",
        ".au",
        ".snd",
        ".caf",
        ".w64",
        ".rf64",
        ".mp3",
        ".opus",
        ".nist",
        ".sph",
        ".voc",
        ".wavex",
    }
)
MAX_FILES_PER_TASK = 64
TASKS_PER_WORKER = 8


class AlignInputError(ValueError):
    """The inputs or the output folder of a batch are unusable as given."""


@dataclass(frozen=True)
class Job:
    """One input file and the output it will be aligned to."""

    source: Path
    output: Path
    collision: str = ""  # set when two inputs would be written to the same output
    unreadable: str = ""  # set when ``source`` is a folder that cannot be listed


def _is_hidden_or_partial(path: Path) -> bool:
    return path.name.startswith(".")


def _scan_folder(folder: Path) -> Iterable[tuple[Path, Path, str]]:
    """(file, path relative to ``folder``, "") for every audio file below ``folder``, and
    (sub-folder, its relative path, the problem) for every sub-folder that cannot be listed."""
    errors: list[OSError] = []

    def unreadable() -> Iterable[tuple[Path, Path, str]]:
        for e in errors:
            where = Path(e.filename) if e.filename is not None else folder
            problem = f"{where}: cannot read this folder ({e.strerror}); its files were not aligned"
            yield where, where.relative_to(folder), problem
        errors.clear()

    for root, dirs, files in os.walk(folder, onerror=errors.append):
        yield from unreadable()
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(root, name)
            if path.suffix.lower() in AUDIO_SUFFIXES and not _is_hidden_or_partial(path):
                yield path, path.relative_to(folder), ""
    yield from unreadable()


def _glob_base(pattern: str) -> Path:
    parts = Path(pattern).parts
    base: list[str] = []
    for part in parts:
        if glob.has_magic(part):
            break
        base.append(part)
    return Path(*base) if base else Path(".")


def _expand(
    inputs: Sequence[str | os.PathLike[str]],
) -> tuple[list[tuple[Path, Path, str]], list[tuple[Path, str, bool]]]:
    """(source, path relative to the output folder, problem) triples (see `_scan_folder`),
    and the folders the inputs were searched in, each with how to name it in an error and
    whether an output folder may lie below it (not in it)."""
    found: list[tuple[Path, Path, str]] = []
    folders: list[tuple[Path, str, bool]] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            folders.append((path, f"the input folder {path}", False))
            found.extend(_scan_folder(path))
        elif path.is_file():
            found.append((path, Path(path.name), ""))
        elif glob.has_magic(str(item)):
            base = _glob_base(str(item))
            name = f"the input folder {base} (the base of the pattern {item})"
            # a pattern with wildcards in its file name only ('rec/*.wav') cannot match a
            # sub-folder's files, so an output folder below its base is safe; any other
            # ('rec/**/*.wav', 'rec/*/*.wav') could re-read the outputs as inputs
            flat = not any(glob.has_magic(part) for part in Path(str(item)).parts[:-1])
            folders.append((base, name, flat))
            matches = sorted(glob.glob(str(item), recursive=True))
            if not matches:
                raise AlignInputError(f"{item}: the pattern matches no file")
            for match in map(Path, matches):
                if match.is_dir():
                    folders.append((match, f"the input folder {match}", False))
                    found.extend(_scan_folder(match))
                elif match.is_file() and not _is_hidden_or_partial(match):
                    found.append((match, match.relative_to(base), ""))
        else:
            raise AlignInputError(f"{item}: no such file or folder")
    return found, folders


class _RealPaths:
    """Canonical path of a file's *entry*: real path of its folder (cached) + its name.

    Writing an output replaces the entry (os.replace), never a symlink's target, so this is
    the identity that matters, at one system call per folder instead of several per file.
    """

    def __init__(self) -> None:
        self._folders: dict[Path, str] = {}

    def __call__(self, path: Path) -> str:
        folder = self._folders.get(path.parent)
        if folder is None:
            folder = self._folders[path.parent] = os.path.realpath(path.parent)
        return os.path.join(folder, path.name)


def plan_jobs(
    inputs: Sequence[str | os.PathLike[str]], out_dir: Path | str, *, options: AlignOptions
) -> list[Job]:
    """Map every input file to its output path, refusing an output folder that would write
    into or over an input.

    Raises
    ------
    AlignInputError
        An input does not exist, a pattern matches nothing, no audio file was found, the
        output folder is a file, lies inside an input folder or a pattern's base folder, or
        an output would replace an input.

    A sub-folder that cannot be listed (permission denied) becomes a job with
    ``unreadable`` set, which fails when run.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise AlignInputError(f"{out_dir}: --out must be a folder, but a file has that name")
    found, folders = _expand(inputs)
    if not found:
        raise AlignInputError(f"no audio files found in {', '.join(map(str, inputs))}")
    out_resolved = out_dir.resolve()
    for folder, name, below_ok in folders:
        folder_resolved = folder.resolve()
        below = folder_resolved in out_resolved.parents
        if out_resolved == folder_resolved or (below and not below_ok):
            raise AlignInputError(
                f"{out_dir}: --out lies inside {name}; choose a folder "
                "outside it so inputs are never written over or re-read as inputs"
            )
    suffix = "." + options.format.value
    real = _RealPaths()
    sources_seen: set[str] = set()
    jobs: list[Job] = []
    by_output: dict[str, int] = {}
    input_paths = {real(src) for src, _, problem in found if not problem}
    for source, relative, problem in found:
        resolved = real(source)
        if resolved in sources_seen:
            continue
        sources_seen.add(resolved)
        if problem:
            jobs.append(Job(source, out_dir / relative, unreadable=problem))
            continue
        output = out_dir / relative.with_suffix(suffix)
        key = real(output)
        if key in input_paths:
            raise AlignInputError(
                f"{output}: this output would replace an input file; choose another --out"
            )
        if key in by_output:
            first = by_output[key]
            why = f"{jobs[first].source} and {source} would both be written to {output}"
            jobs[first] = Job(jobs[first].source, output, why)
            jobs.append(Job(source, output, why))
        else:
            by_output[key] = len(jobs)
            jobs.append(Job(source, output))
    return jobs


def _failed(job: Job, message: str) -> AlignResult:
    return AlignResult(str(job.source), "", Status.FAILED, message=message)


def _run_one(job: Job, options: AlignOptions) -> AlignResult:
    if job.unreadable:
        return _failed(job, job.unreadable)
    if job.collision:
        return _failed(job, f"output name collision: {job.collision}")
    try:
        return align_file(job.source, job.output, options=options)
    except AlignFileError as e:
        return _failed(job, str(e))
    except (OSError, sf.LibsndfileError) as e:
        return _failed(job, f"{job.source}: {e}")


def run_chunk(jobs: list[Job], options: AlignOptions) -> list[AlignResult]:
    """Align a few jobs in one worker task; per-file problems become failed results."""
    return [_run_one(job, options) for job in jobs]


ChunkRunner = Callable[[list[Job], AlignOptions], list[AlignResult]]


def _worker_init() -> None:
    # Ctrl-C goes to the whole process group; workers finish their current chunk (each
    # output is renamed into place whole) and the parent cancels the rest.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _remove_partials(jobs: Iterable[Job]) -> None:
    for job in jobs:
        with contextlib.suppress(FileNotFoundError):
            partial_path(job.output).unlink()


def align_jobs(
    jobs: Sequence[Job],
    *,
    options: AlignOptions,
    workers: int,
    overwrite: bool = False,
    on_result: Callable[[AlignResult], None] | None = None,
    chunk_runner: ChunkRunner | None = None,
) -> list[AlignResult]:
    """Run a plan; results come back in plan order.

    Existing outputs are reported as ``skipped-exists`` unless ``overwrite``. With
    ``workers > 1`` files are aligned in worker processes, a few dozen per task. A worker
    that dies (killed, out of memory) fails the files it had not finished; Ctrl-C
    (KeyboardInterrupt) lets running tasks finish, cancels the rest and re-raises. In both
    cases no temporary file is left behind. ``chunk_runner`` replaces the function that
    aligns a list of jobs in a worker (it must be importable by the worker processes).
    """
    if workers < 1:
        raise AlignInputError(f"--jobs must be at least 1, got {workers}")
    results: dict[int, AlignResult] = {}

    def record(index: int, result: AlignResult) -> None:
        results[index] = result
        if on_result is not None:
            on_result(result)

    todo: list[int] = []
    for i, job in enumerate(jobs):
        if not overwrite and not (job.collision or job.unreadable) and job.output.exists():
            record(
                i,
                AlignResult(
                    str(job.source),
                    str(job.output),
                    Status.SKIPPED_EXISTS,
                    message="output exists (use --overwrite to redo)",
                ),
            )
        else:
            todo.append(i)
    workers = min(workers, max(1, len(todo)))
    if workers == 1:
        for i in todo:
            record(i, _run_one(jobs[i], options))
    else:
        _run_parallel(jobs, todo, options, workers, record, chunk_runner or run_chunk)
    return [results[i] for i in range(len(jobs))]


def _run_parallel(
    jobs: Sequence[Job],
    todo: list[int],
    options: AlignOptions,
    workers: int,
    record: Callable[[int, AlignResult], None],
    chunk_runner: ChunkRunner,
) -> None:
    context = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
    pending: dict[cf.Future[list[AlignResult]], list[int]] = {}
    with cf.ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init) as pool:
        try:
            for chunk in _chunks_of_indices(todo, workers):
                future = pool.submit(chunk_runner, [jobs[i] for i in chunk], options)
                pending[future] = chunk
            for future in cf.as_completed(list(pending)):
                chunk = pending.pop(future)
                try:
                    chunk_results = future.result()
                except cf.process.BrokenProcessPool:
                    _remove_partials(jobs[i] for i in chunk)
                    for i in chunk:
                        record(
                            i,
                            _failed(
                                jobs[i],
                                f"{jobs[i].source}: worker process died "
                                "(killed or out of memory); rerun to retry",
                            ),
                        )
                    continue
                for i, result in zip(chunk, chunk_results, strict=True):
                    record(i, result)
        except BaseException:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            _remove_partials(jobs[i] for chunk in pending.values() for i in chunk)
            raise


def _chunks_of_indices(todo: list[int], workers: int) -> list[list[int]]:
    size = max(1, min(MAX_FILES_PER_TASK, len(todo) // (workers * TASKS_PER_WORKER)))
    return [todo[i : i + size] for i in range(0, len(todo), size)]

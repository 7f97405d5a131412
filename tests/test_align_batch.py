"""`kws align` on folders: mirroring, safety, resume, reports, failures, interruption."""

from __future__ import annotations

import csv
import hashlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import burst_clip, write
from typer.testing import CliRunner

from align import (
    AlignInputError,
    AlignOptions,
    AlignResult,
    Job,
    Status,
    align_jobs,
    plan_jobs,
)
from align.batch import run_chunk
from align.files import partial_path
from kws.cli import app

RATE = 16_000
runner = CliRunner()


def make_folder(root: Path, rng: np.random.Generator) -> list[Path]:
    files = []
    for label in ("yes", "no"):
        for k in range(3):
            x = burst_clip(rng, n=2 * RATE, at=int(rng.integers(0, RATE)), width=6000)
            files.append(write(root / label / f"take{k}.wav", x))
    files.append(
        write(root / "no" / "deeper" / "take0.flac", burst_clip(rng, n=RATE // 2, at=0, width=900))
    )
    (root / "README.txt").write_text("not audio, ignored when scanning folders")
    return files


def digest(paths: list[Path]) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_folders_are_mirrored_and_inputs_untouched(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    files = make_folder(tmp_path / "raw", rng)
    before = digest(files)
    result = runner.invoke(
        app,
        [
            "align",
            str(tmp_path / "raw"),
            "--out",
            str(tmp_path / "al"),
            "--jobs",
            "2",
            "--report",
            str(tmp_path / "r.csv"),
        ],
    )
    assert result.exit_code == 0, result.output
    outputs = sorted(
        p.relative_to(tmp_path / "al").as_posix() for p in (tmp_path / "al").rglob("*")
    )
    assert outputs == [
        "no",
        "no/deeper",
        "no/deeper/take0.wav",
        "no/take0.wav",
        "no/take1.wav",
        "no/take2.wav",
        "yes",
        "yes/take0.wav",
        "yes/take1.wav",
        "yes/take2.wav",
    ]
    assert digest(files) == before
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [r["status"] for r in rows].count("aligned") == 6
    assert {r["status"] for r in rows} == {"aligned", "padded"}
    assert set(rows[0]) == {
        "input",
        "output",
        "start_ms",
        "window_ms",
        "level",
        "status",
        "message",
    }
    assert "aligned" in result.output and "total" in result.output


def test_rerun_skips_existing_and_overwrite_redoes(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    make_folder(tmp_path / "raw", rng)
    args = ["align", str(tmp_path / "raw"), "--out", str(tmp_path / "al"), "--jobs", "1"]
    assert runner.invoke(app, args).exit_code == 0
    victim = tmp_path / "al" / "yes" / "take1.wav"
    victim.unlink()
    stamp = (tmp_path / "al" / "yes" / "take0.wav").stat().st_mtime_ns
    result = runner.invoke(app, [*args, "--report", str(tmp_path / "r.csv")])
    assert result.exit_code == 0
    statuses = {
        Path(r["input"]).name + r["input"].split("/")[-2]: r["status"]
        for r in csv.DictReader((tmp_path / "r.csv").open())
    }
    assert statuses["take1.wavyes"] == "aligned" and statuses["take0.wavyes"] == "skipped-exists"
    assert victim.exists()
    assert (tmp_path / "al" / "yes" / "take0.wav").stat().st_mtime_ns == stamp
    time.sleep(0.01)
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0
    assert (tmp_path / "al" / "yes" / "take0.wav").stat().st_mtime_ns != stamp


def test_failures_are_reported_and_the_rest_processed(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    make_folder(tmp_path / "raw", rng)
    (tmp_path / "raw" / "yes" / "broken.wav").write_bytes(b"RIFF\x00\x00garbage")
    (tmp_path / "raw" / "yes" / "empty.flac").write_bytes(b"")
    write(tmp_path / "raw" / "yes" / "quiet.wav", np.zeros(RATE))
    result = runner.invoke(
        app,
        [
            "align",
            str(tmp_path / "raw"),
            "--out",
            str(tmp_path / "al"),
            "-j",
            "2",
            "--report",
            str(tmp_path / "r.csv"),
        ],
    )
    assert result.exit_code == 1
    assert "broken.wav: not a readable audio file" in result.output
    assert "empty.flac: empty file" in result.output
    rows = {Path(r["input"]).name: r for r in csv.DictReader((tmp_path / "r.csv").open())}
    assert rows["quiet.wav"]["status"] == "skipped-quiet"
    assert rows["broken.wav"]["status"] == "failed"
    assert len(list((tmp_path / "al").rglob("*.wav"))) == 7


def test_quiet_only_run_exits_zero(tmp_path: Path) -> None:
    write(tmp_path / "raw" / "quiet.wav", np.zeros(RATE))
    result = runner.invoke(app, ["align", str(tmp_path / "raw"), "--out", str(tmp_path / "al")])
    assert result.exit_code == 0 and "skipped-quiet" in result.output


def test_out_inside_input_is_refused(tmp_path: Path, rng: np.random.Generator) -> None:
    make_folder(tmp_path / "raw", rng)
    result = runner.invoke(
        app, ["align", str(tmp_path / "raw"), "--out", str(tmp_path / "raw" / "x")]
    )
    assert result.exit_code == 2
    assert "lies inside the input folder" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "raw" / "x").exists()


def test_output_replacing_an_input_is_refused(tmp_path: Path, rng: np.random.Generator) -> None:
    src = write(tmp_path / "a.wav", burst_clip(rng, n=RATE * 2, at=0, width=5000))
    before = src.read_bytes()
    result = runner.invoke(app, ["align", str(src), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "would replace an input" in result.output
    assert src.read_bytes() == before


def test_name_collisions_fail_instead_of_overwriting(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    write(tmp_path / "raw" / "a.wav", burst_clip(rng, n=RATE * 2, at=0, width=5000))
    write(tmp_path / "raw" / "a.flac", burst_clip(rng, n=RATE * 2, at=0, width=5000))
    write(tmp_path / "raw" / "b.wav", burst_clip(rng, n=RATE * 2, at=0, width=5000))
    result = runner.invoke(app, ["align", str(tmp_path / "raw"), "--out", str(tmp_path / "al")])
    assert result.exit_code == 1
    assert "would both be written to" in result.output
    assert sorted(p.name for p in (tmp_path / "al").iterdir()) == ["b.wav"]


def test_globs_and_files_as_inputs(tmp_path: Path, rng: np.random.Generator) -> None:
    make_folder(tmp_path / "raw", rng)
    opts = AlignOptions()
    jobs = plan_jobs([str(tmp_path / "raw" / "*" / "take1.wav")], tmp_path / "al", options=opts)
    assert sorted(j.output.relative_to(tmp_path / "al").as_posix() for j in jobs) == [
        "no/take1.wav",
        "yes/take1.wav",
    ]
    jobs = plan_jobs(
        [tmp_path / "raw" / "no" / "deeper" / "take0.flac"], tmp_path / "al", options=opts
    )
    assert [j.output.name for j in jobs] == ["take0.wav"]
    result = runner.invoke(app, ["align", str(tmp_path / "nowhere" / "*.wav"), "--out", "x"])
    assert result.exit_code == 2 and "matches no file" in result.output
    result = runner.invoke(app, ["align", str(tmp_path / "missing.wav"), "--out", "x"])
    assert result.exit_code == 2 and "no such file or folder" in result.output


def test_plot_and_resample_options(tmp_path: Path, rng: np.random.Generator) -> None:
    src = write(tmp_path / "one.wav", burst_clip(rng, n=RATE * 3, at=RATE, width=5000), rate=48_000)
    result = runner.invoke(
        app,
        [
            "align",
            str(src),
            "--out",
            str(tmp_path / "al"),
            "--plot",
            str(tmp_path / "p.png"),
            "--sample-rate",
            "16000",
            "--window-ms",
            "500",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    info = sf.info(tmp_path / "al" / "one.wav")
    assert (info.samplerate, info.frames) == (16_000, 8000)
    result = runner.invoke(
        app,
        [
            "align",
            str(tmp_path),
            "--out",
            str(tmp_path.parent / "o2"),
            "--plot",
            str(tmp_path / "q.png"),
        ],
    )
    assert result.exit_code == 2 and "--plot draws one recording" in result.output


def killed_on_zz(jobs: list[Job], options: AlignOptions) -> list[AlignResult]:
    """Runs in a worker: dies like an OOM-killed process when it reaches the file zz_*."""
    results = []
    for job in jobs:
        if job.source.name.startswith("zz_"):
            partial_path(job.output).parent.mkdir(parents=True, exist_ok=True)
            partial_path(job.output).write_bytes(b"RIFF half-written")
            os.kill(os.getpid(), signal.SIGKILL)
        results.extend(run_chunk([job], options))
    return results


def test_worker_death_fails_its_files_and_leaves_no_partial(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    make_folder(tmp_path / "raw", rng)
    # A file whose name tells the test worker to kill itself, as the OOM killer would.
    write(
        tmp_path / "raw" / "yes" / "zz_kill_me.wav", burst_clip(rng, n=RATE * 2, at=0, width=5000)
    )
    opts = AlignOptions()
    jobs = plan_jobs([tmp_path / "raw"], tmp_path / "al", options=opts)
    results = align_jobs(jobs, options=opts, workers=2, chunk_runner=killed_on_zz)
    died = [r for r in results if "worker process died" in r.message]
    assert died and all(r.status is Status.FAILED for r in died)
    assert not list((tmp_path / "al").rglob("*.partial"))
    for out in (tmp_path / "al").rglob("*.wav"):
        assert sf.info(out).frames == RATE  # every output that exists is whole


@pytest.mark.slow
def test_ctrl_c_leaves_only_whole_files_and_rerun_resumes(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    x = (burst_clip(rng, n=RATE * 3, at=RATE, width=8000) * 32767).astype(np.int16)
    for k in range(3000):
        write(tmp_path / "raw" / f"c{k:04d}.wav", x)
    cmd = [
        sys.executable,
        "-m",
        "kws",
        "align",
        str(tmp_path / "raw"),
        "--out",
        str(tmp_path / "al"),
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # a shell's background job (`make test &`, CI runners) starts with SIGINT ignored, and
        # Python then never raises KeyboardInterrupt: give kws the terminal's default
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while not (tmp_path / "al").exists() or len(os.listdir(tmp_path / "al")) < 50:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert b"interrupted" in out and b"Traceback" not in out
    names = os.listdir(tmp_path / "al")
    assert not [n for n in names if n.endswith(".partial")]
    assert 0 < len(names) < 3000
    for name in names:
        assert sf.info(tmp_path / "al" / name).frames == RATE
    rerun = subprocess.run(cmd, capture_output=True, timeout=120)
    assert rerun.returncode == 0
    assert len(os.listdir(tmp_path / "al")) == 3000


def test_plot_to_a_folder_or_interrupted_leaves_no_partial(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matplotlib.figure import Figure

    from align import AlignFileError
    from align.plot import plot_alignment

    src = write(tmp_path / "in" / "one.wav", burst_clip(rng, n=RATE * 2, at=RATE, width=5000))
    (tmp_path / "rdir").mkdir()
    result = runner.invoke(
        app, ["align", str(src), "--out", str(tmp_path / "al"), "--plot", str(tmp_path / "rdir")]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{tmp_path / 'rdir'}: --plot needs a file name, but this is a folder" in result.output
    assert not (tmp_path / "al").exists()  # refused before any work

    failures: list[BaseException] = [KeyboardInterrupt(), OSError(28, "No space left on device")]

    def savefig(self: Figure, fname: Path, **kwargs: object) -> None:
        Path(fname).write_bytes(b"\x89PNG half")  # as if stopped mid-write
        raise failures.pop(0)

    monkeypatch.setattr(Figure, "savefig", savefig)
    with pytest.raises(KeyboardInterrupt):
        plot_alignment(src, start_ms=0.0, window_ms=1000.0, out=tmp_path / "p.png")
    with pytest.raises(AlignFileError, match=r"p\.png: cannot write the plot \(No space left"):
        plot_alignment(src, start_ms=0.0, window_ms=1000.0, out=tmp_path / "p.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "rdir"]


def test_unreadable_subfolder_is_a_failed_row(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a.wav", "b.wav", "sub/c.wav"):
        write(tmp_path / "raw" / name, burst_clip(rng, n=RATE * 2, at=0, width=5000))
    sub = tmp_path / "raw" / "sub"
    scandir = os.scandir

    def denied(path: object = ".") -> object:  # os.walk lists folders with os.scandir
        if Path(os.fsdecode(path)) == sub:  # type: ignore[arg-type]
            raise PermissionError(13, "Permission denied", os.fspath(path))  # type: ignore[arg-type]
        return scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", denied)
    jobs = plan_jobs([tmp_path / "raw"], tmp_path / "al", options=AlignOptions())
    results = align_jobs(jobs, options=AlignOptions(), workers=1)
    assert [(Path(r.input).name, r.status) for r in results] == [
        ("a.wav", Status.ALIGNED),
        ("b.wav", Status.ALIGNED),
        ("sub", Status.FAILED),
    ]
    assert results[2].message == (
        f"{sub}: cannot read this folder (Permission denied); its files were not aligned"
    )


def test_unreadable_folder_and_file_fail_with_permission_denied(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    """Real permissions; as root (which reads anything) the CLI runs under capsh without the
    capabilities that bypass them, and the test is skipped when neither is possible."""
    for name in ("a.wav", "b.wav", "locked.wav", "sub/c.wav"):
        write(tmp_path / "raw" / name, burst_clip(rng, n=RATE * 2, at=0, width=5000))
    sub, locked = tmp_path / "raw" / "sub", tmp_path / "raw" / "locked.wav"
    args = ["align", str(tmp_path / "raw"), "--out", str(tmp_path / "al"), "--jobs", "1"]
    sub.chmod(0)
    locked.chmod(0)
    try:
        try:
            os.listdir(sub)
        except PermissionError:
            result = runner.invoke(app, args)
            code, output = result.exit_code, result.output
        else:
            capsh = shutil.which("capsh")
            if os.geteuid() != 0 or capsh is None:
                pytest.skip("permissions are not enforced for this user")
            command = shlex.join([sys.executable, "-m", "kws", *args])
            drop = "--drop=cap_dac_override,cap_dac_read_search"
            proc = subprocess.run(
                [capsh, drop, "--", "-c", command], capture_output=True, text=True, timeout=120
            )
            code, output = proc.returncode, proc.stdout + proc.stderr
    finally:
        sub.chmod(0o755)
        locked.chmod(0o644)
    assert code == 1, output
    assert f"{sub}: cannot read this folder (Permission denied)" in output
    assert f"{locked}: cannot read (Permission denied)" in output
    assert sorted(p.name for p in (tmp_path / "al").iterdir()) == ["a.wav", "b.wav"]


def test_out_inside_a_glob_base_is_refused(tmp_path: Path, rng: np.random.Generator) -> None:
    take = burst_clip(rng, n=RATE * 2, at=0, width=5000)
    write(tmp_path / "g" / "b24.wav", take)
    write(tmp_path / "g" / "a" / "c.wav", take)
    with pytest.raises(AlignInputError, match=r"g/out: --out lies inside the input folder .*g "):
        plan_jobs(
            [str(tmp_path / "g" / "**" / "*.wav")], tmp_path / "g" / "out", options=AlignOptions()
        )
    g2 = tmp_path / "g2"
    write(g2 / "take.flac", take)
    unrelated = write(g2 / "take.wav", np.zeros(RATE))
    before = unrelated.read_bytes()
    result = runner.invoke(app, ["align", str(g2 / "*.flac"), "--out", str(g2), "--overwrite"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--out lies inside the input folder" in result.output
    assert unrelated.read_bytes() == before
    assert sorted(p.name for p in g2.iterdir()) == ["take.flac", "take.wav"]
    # wildcards in a folder part could match the outputs' folder: refused
    with pytest.raises(AlignInputError, match="--out lies inside"):
        plan_jobs(
            [str(tmp_path / "g" / "*" / "*.wav")], tmp_path / "g" / "out", options=AlignOptions()
        )
    # wildcards in the file name only ('*.wav --out aligned'): a sub-folder is safe, and a
    # rerun resumes without re-reading the outputs
    for _ in range(2):
        result = runner.invoke(app, ["align", str(g2 / "*.flac"), "--out", str(g2 / "aligned")])
        assert result.exit_code == 0, result.output
    assert (g2 / "aligned" / "take.wav").exists() and unrelated.read_bytes() == before

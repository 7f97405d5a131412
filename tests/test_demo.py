"""`kws demo` end to end on the embedded recordings, reduced (tiny model, few epochs)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from kws.cli import app
from kws.demo import DEFAULT_RECORDINGS

runner = CliRunner()


def test_recordings_are_raw_takes_of_distinct_voices() -> None:
    manifest = json.loads((DEFAULT_RECORDINGS / "synth.json").read_text())
    for word in ("yes", "no", "left", "right"):
        files = sorted((DEFAULT_RECORDINGS / word).glob("*.flac"))
        assert len(files) == 30
        assert len({f.name.split("_")[0] for f in files}) == 30
        assert {f.name.split("_")[0] for f in files} <= set(manifest["voices"])
        for f in files[:5]:
            info = sf.info(f)
            assert info.samplerate == 16_000 and info.duration > 1.0  # raw: longer than a clip
    size = sum(f.stat().st_size for f in DEFAULT_RECORDINGS.rglob("*") if f.is_file())
    assert size < 5_000_000


def test_recordings_are_the_projects_own_synthesis(tmp_path: Path) -> None:
    """Every take under recordings/ is what the `kws synth` commands in its synth.json make:
    no recording from elsewhere (a Speech Commands clip, say) can hide among them."""
    pytest.importorskip("espeakng_loader")
    manifest = json.loads((DEFAULT_RECORDINGS / "synth.json").read_text())
    out = tmp_path / "recordings"
    for run in manifest["runs"]:
        args = shlex.split(run["command"])[1:]  # without the leading "kws"
        args[args.index("--out") + 1] = str(out)
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    shipped = sorted(p.relative_to(DEFAULT_RECORDINGS) for p in DEFAULT_RECORDINGS.rglob("*.flac"))
    made = sorted(p.relative_to(out) for p in out.rglob("*.flac"))
    assert shipped == made and len(shipped) == 171
    for rel in shipped:
        a, _ = sf.read(DEFAULT_RECORDINGS / rel, dtype="int16")
        b, _ = sf.read(out / rel, dtype="int16")
        assert a.shape == b.shape, rel
        # byte-identical on this machine; a few LSBs of slack for other library versions
        assert np.abs(a.astype(np.int32) - b).max() <= 8, rel


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--tiny", "--epochs", "3", "--stream-minutes", "0.5"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["clips"] == 168
    assert 0 <= summary["accuracy_float"] <= 1 and 0 <= summary["accuracy_int8"] <= 1
    assert summary["int8_bytes"] > 0 and summary["arena_bytes"] > 0
    assert summary["tflm_identical"] == 1.0
    c = summary["c_spotter"]
    assert c["identical"] == c["examples"] > 0
    assert "C model = LiteRT reference" in result.output
    assert summary["stream"]["keywords"] > 0
    for path in summary["paths"].values():
        assert Path(path).exists(), path
    for line in ("accuracy float / int8", "int8 model / TFLM arena", "stream correct"):
        assert line in result.output
    assert len(list((out / "aligned").glob("*/*.wav"))) == 168
    assert len(list((out / "aligned" / "_background_noise_").glob("*.flac"))) == 3
    # a rerun reuses what is there: aligned clips and the finished run
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "reusing it" in again.output

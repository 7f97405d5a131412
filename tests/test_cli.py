"""The `kws` app as a user drives it: help, version, features."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from conftest import burst_clip, write
from typer.testing import CliRunner

import features
from kws import __version__
from kws.cli import app

runner = CliRunner()


def test_help_and_version() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("align", "features", "demo"):
        assert command in result.output
    assert runner.invoke(app, ["--version"]).output.strip() == f"kws {__version__}"
    for command in ("align", "features"):
        assert runner.invoke(app, [command, "--help"]).exit_code == 0


def all_commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    """Every command of a click group, sub-groups included, with its space-joined name."""
    found = []
    for name, sub in getattr(group, "commands", {}).items():
        if hasattr(sub, "commands"):
            found += all_commands(sub, (*path, name))
        else:
            found.append((" ".join((*path, name)), sub))
    return found


def test_readme_names_every_command_and_option() -> None:
    """Documentation cannot fall behind the CLI: each command and each of its long options
    (either spelling of a --flag/--no-flag pair) appears somewhere in README.md."""
    import typer.main

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    listed = all_commands(typer.main.get_command(app))
    assert len(listed) >= 13
    missing = []
    for name, command in listed:
        if f"kws {name}" not in readme:
            missing.append(f"kws {name}")
        for param in command.params:
            flags = [o for o in (*param.opts, *param.secondary_opts) if o.startswith("--")]
            if flags and flags != ["--help"] and not any(f in readme for f in flags):
                missing.append(f"kws {name} {flags[0]}")
    assert not missing, missing


def test_help_texts_survive_rich_markup() -> None:
    """Typer renders help texts as rich markup, where a bracketed word is a style tag and
    vanishes (``pip install 'kws[kokoro]'`` was printed as ``pip install 'kws'``): every
    help text must read the same after markup, so brackets are escaped."""
    import typer.main
    from rich.markup import render

    garbled = []
    for name, command in all_commands(typer.main.get_command(app)):
        texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
        for text in texts:
            if render(text).plain != text.replace("\\[", "["):
                garbled.append(f"kws {name}: {text}")
    assert not garbled, garbled


def test_features_saves_npy_and_plot(tmp_path: Path, rng: np.random.Generator) -> None:
    a = write(tmp_path / "a.wav", burst_clip(rng, n=12_000, at=2000, width=4000))
    b = write(tmp_path / "b.flac", burst_clip(rng, n=16_000, at=8000, width=4000))
    result = runner.invoke(
        app,
        [
            "features",
            str(a),
            str(b),
            "--out",
            str(tmp_path / "f.npy"),
            "--plot",
            str(tmp_path / "f.png"),
        ],
    )
    assert result.exit_code == 0, result.output
    saved = np.load(tmp_path / "f.npy")
    assert saved.shape == (2, 49, 10)
    np.testing.assert_allclose(
        saved[0],
        features.mfcc(sf.read(a, dtype="float32")[0], spec=features.FeatureSpec()),
        atol=1e-6,
    )
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert "49 × 10" in result.output


def test_features_spec_file_and_preset(tmp_path: Path, rng: np.random.Generator) -> None:
    a = write(tmp_path / "a.wav", burst_clip(rng, n=16_000, at=2000, width=4000))
    spec = features.FeatureSpec(num_coefficients=13)
    (tmp_path / "s.json").write_text(spec.to_json())
    out = tmp_path / "f.npy"
    assert (
        runner.invoke(
            app, ["features", str(a), "--spec", str(tmp_path / "s.json"), "--out", str(out)]
        ).exit_code
        == 0
    )
    assert np.load(out).shape == (1, 49, 13)
    assert (
        runner.invoke(
            app, ["features", str(a), "--preset", "tf-speech-commands", "--out", str(out)]
        ).exit_code
        == 0
    )
    assert np.load(out).shape == (1, 98, 40)
    result = runner.invoke(app, ["features", str(a), "--preset", "nope"])
    assert result.exit_code == 2 and "unknown preset 'nope'" in result.output


def test_features_bad_input_is_one_line(tmp_path: Path, rng: np.random.Generator) -> None:
    hi = write(tmp_path / "hi.wav", burst_clip(rng, n=44_100, at=0, width=4000), rate=44_100)
    result = runner.invoke(app, ["features", str(hi)])
    assert result.exit_code == 2
    assert "hi.wav: sample rate is 44100 Hz, the features need 16000 Hz" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(
        app, ["features", str(hi), "--resample", "--out", str(tmp_path / "x.npy")]
    )
    assert result.exit_code == 0 and np.load(tmp_path / "x.npy").shape == (1, 49, 10)
    junk = tmp_path / "junk.wav"
    junk.write_text("not audio")
    result = runner.invoke(app, ["features", str(junk)])
    assert result.exit_code == 2 and "junk.wav: not a readable audio file" in result.output


def test_unusable_output_paths_are_one_line_errors(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    """An output path that is a folder, or under a file: exit 2, one line naming the path
    the user gave (not a temporary name), and no temporary file left behind."""
    a = write(tmp_path / "a.wav", burst_clip(rng, n=16_000, at=2000, width=4000))
    (tmp_path / "taken").mkdir()
    cases = [
        (tmp_path / "taken", "taken: Is a directory"),
        (a / "f.npy", "a.wav: is a file, not a folder"),
    ]
    for out, message in cases:
        result = runner.invoke(app, ["features", str(a), "--out", str(out)])
        assert result.exit_code == 2, result.output
        assert result.output.strip().splitlines()[-1].endswith(message), result.output
        assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "taken"]
    assert not any((tmp_path / "taken").iterdir())


def test_out_of_range_numbers_are_refused_before_any_work(tmp_path: Path) -> None:
    result = runner.invoke(app, ["models", "--classes", "0"])
    assert result.exit_code == 2 and "--classes" in result.output
    out = tmp_path / "syn"
    for seconds in ("-1", "1e9"):
        result = runner.invoke(
            app, ["synth", "yes", "--count", "1", "--out", str(out), "--noise-seconds", seconds]
        )
        assert result.exit_code == 2 and "--noise-seconds" in result.output
    assert not out.exists()

"""The Kokoro engine of `kws synth`: voices, blends, its files (fetched from a local server
on 127.0.0.1, verified, cached) and, where Kokoro is installed, real takes."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from kws import kokoro
from kws.cli import app
from kws.data import Archive
from kws.synth import SynthOptions, Voice, available_voices, synthesize_takes

runner = CliRunner()


def test_voices_and_blends_are_distinct_speakers() -> None:
    names = kokoro.blend_names()
    assert len(kokoro.KOKORO_VOICES) == 28
    assert len(names) == 28 + 28 * 27 // 2 == len(set(names))
    ids = {Voice("kokoro", n).speaker_id for n in names}
    assert len(ids) == len(names)


def _voices_tarball(path: Path, *, skip: str | None = None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    styles = {}
    with tarfile.open(path, "w:gz") as tar:
        for name in (*kokoro.KOKORO_VOICES, "jf_alpha"):
            if name == skip:
                continue
            styles[name] = rng.standard_normal(kokoro.STYLE_SHAPE).astype("<f4")
            data = styles[name].tobytes()
            info = tarfile.TarInfo(f"package/voices/{name}.bin")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return styles


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Path]:
    """A folder served over HTTP on 127.0.0.1; its URL is in the folder's ``.url`` file."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    root.joinpath(".url").write_text(f"http://127.0.0.1:{httpd.server_address[1]}/")
    yield root
    httpd.shutdown()
    httpd.server_close()


def _archive(root: Path, name: str) -> Archive:
    payload = (root / name).read_bytes()
    url = root.joinpath(".url").read_text() + name
    return Archive("kokoro-js.tar.gz", url, len(payload), hashlib.sha256(payload).hexdigest())


def test_voices_are_fetched_verified_and_cached(tmp_path: Path, served: Path) -> None:
    styles = _voices_tarball(served / "voices.tgz")
    archive = _archive(served, "voices.tgz")
    cache = tmp_path / "cache"
    path = kokoro.voices_path(cache, archive)
    with np.load(path) as npz:
        assert sorted(npz.files) == sorted(kokoro.KOKORO_VOICES)  # English only
        np.testing.assert_array_equal(npz["am_adam"], styles["am_adam"])
    assert [p.name for p in cache.iterdir()] == [path.name]  # the package itself not kept
    (served / "voices.tgz").unlink()  # second call: from the cache, no network
    assert kokoro.voices_path(cache, archive) == path


def test_corrupt_or_incomplete_voices_are_refused(tmp_path: Path, served: Path) -> None:
    _voices_tarball(served / "voices.tgz")
    archive = _archive(served, "voices.tgz")
    wrong = Archive(archive.name, archive.url, archive.size, "0" * 64)
    with pytest.raises(kokoro.KokoroError, match=r"SHA-256 .* does not match"):
        kokoro.voices_path(tmp_path / "c1", wrong)
    _voices_tarball(served / "short.tgz", skip="bm_lewis")
    with pytest.raises(kokoro.KokoroError, match=r"bm_lewis\.bin: missing"):
        kokoro.voices_path(tmp_path / "c2", _archive(served, "short.tgz"))
    assert list((tmp_path / "c2").iterdir()) == []  # nothing half-made left behind


def test_not_installed_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kokoro, "kokoro_available", lambda: False)
    with pytest.raises(kokoro.KokoroError, match=r"pip install 'kws\[kokoro\]'"):
        kokoro.model_path(tmp_path)
    result = runner.invoke(app, ["synth", "go", "--engine", "kokoro", "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "pip install 'kws[kokoro]'" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_a_runtime_that_fails_to_load_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(cache_dir: str) -> None:
        raise RuntimeError("espeak-ng library not found")

    monkeypatch.setenv("KWS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(kokoro, "kokoro_available", lambda: True)
    monkeypatch.setattr(kokoro, "model_path", lambda folder: folder / "model.onnx")
    monkeypatch.setattr(kokoro, "voices_path", lambda folder: folder / "voices.npz")
    monkeypatch.setattr(kokoro, "_engine", broken)
    result = runner.invoke(app, ["synth", "go", "--engine", "kokoro", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "espeak-ng library not found" in errors[0]
    assert "delete that folder" in errors[0]
    assert not list((tmp_path / "o").rglob("*.flac"))


def test_unknown_voice_is_refused() -> None:
    with pytest.raises(kokoro.KokoroError, match="no voice 'af_nobody'"):
        kokoro.speak("go", "af_nobody", speed=1.0)


def test_default_engines_leave_kokoro_out() -> None:
    pytest.importorskip("espeakng_loader")
    assert {v.engine for v in available_voices()} <= {"espeak-ng", "flite"}


def _cached() -> bool:
    folder = kokoro.default_cache_dir()
    return (folder / kokoro.MODEL_NAME).exists() and any(folder.glob("voices-*.npz"))


@pytest.mark.slow
@pytest.mark.skipif(
    not (kokoro.kokoro_available() and _cached()),
    reason="Kokoro not installed (kws[kokoro]) or its files not in the cache (tests fetch nothing)",
)
def test_kokoro_takes_are_speech_and_deterministic_across_processes(tmp_path: Path) -> None:
    voices = [Voice("kokoro", "af_bella"), Voice("kokoro", "bm_george+am_adam")]
    options = SynthOptions(count=2, seed=4)
    first = synthesize_takes(["seven"], tmp_path / "a", options=options, voices=voices)
    code = (
        "import sys; from pathlib import Path; from kws.synth import SynthOptions, Voice, "
        "synthesize_takes; synthesize_takes(['seven'], Path(sys.argv[1]), "
        "options=SynthOptions(count=2, seed=4), voices=[Voice('kokoro', 'af_bella'), "
        "Voice('kokoro', 'bm_george+am_adam')])"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "b")], check=True)
    for a in first["seven"]:
        assert a.read_bytes() == (tmp_path / "b" / "seven" / a.name).read_bytes()
        audio, rate = sf.read(a)
        assert rate == 16_000 and np.abs(audio).max() > 0.15
        loud = np.flatnonzero(np.abs(audio) > 0.05)
        assert 0.25 < (loud[-1] - loud[0]) / rate < 1.2  # one word, not silence or a sentence
    assert {p.name.split("_")[0] for p in first["seven"]} == {v.speaker_id for v in voices}

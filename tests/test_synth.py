"""`kws synth`: deterministic takes that look like raw recordings, in distinct voices."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from kws.cli import app
from kws.record import analyse_take
from kws.synth import (
    SynthError,
    SynthOptions,
    Voice,
    available_voices,
    noise_recordings,
    synthesize,
    synthesize_takes,
)

pytest.importorskip("espeakng_loader")
runner = CliRunner()
RATE = 16_000


def test_voices_are_many_and_distinct() -> None:
    voices = available_voices(["espeak-ng"])
    assert len(voices) >= 100
    assert len({v.speaker_id for v in voices}) == len(voices)
    assert all(len(v.speaker_id) == 8 for v in voices)


def test_synthesis_is_deterministic_whatever_came_before() -> None:
    voice = Voice("espeak-ng", "en-us+f3")
    first = synthesize("left", voice, np.random.default_rng(3))
    synthesize("right", Voice("espeak-ng", "en+m2"), np.random.default_rng(9))  # state between
    again = synthesize("left", voice, np.random.default_rng(3))
    np.testing.assert_array_equal(first, again)
    faster = synthesize("left", voice, np.random.default_rng(4))  # another speed and pitch
    assert not np.array_equal(first, faster)
    with pytest.raises(SynthError, match="no voice"):
        synthesize("left", Voice("espeak-ng", "xx-nonexistent"), np.random.default_rng(0))


def test_takes_look_like_raw_recordings(tmp_path: Path) -> None:
    options = SynthOptions(count=6, seed=1)
    files = synthesize_takes(["yes", "stop"], tmp_path, options=options)
    assert [len(v) for v in files.values()] == [6, 6]
    for word, paths in files.items():
        assert len({p.name.split("_")[0] for p in paths}) == 6  # six voices
        for path in paths:
            assert path.parent.name == word and path.name.endswith(".flac")
            info = sf.info(path)
            assert info.samplerate == RATE and info.channels == 1 and info.subtype == "PCM_16"
            audio = sf.read(path, dtype="float32")[0]
            seconds = len(audio) / RATE
            assert 0.6 < seconds < 2.6  # word + 0.2-0.8 s of silence each side
            take = analyse_take(audio, window_ms=1000)
            assert 0.2 * 0.99 < np.abs(audio).max() < 0.9 * 1.01 + 0.01
            assert take.snr_db > 15 and not take.warning
            lead = audio[: int(0.15 * RATE)]  # the noise floor before the word
            assert 20 * np.log10(np.sqrt(np.mean(lead**2))) < -45


def test_same_seed_same_files_and_rerun_resumes(tmp_path: Path) -> None:
    options = SynthOptions(count=3, seed=5)
    a = synthesize_takes(["up"], tmp_path / "a", options=options)["up"]
    b = synthesize_takes(["up"], tmp_path / "b", options=options)["up"]
    assert [p.name for p in a] == [p.name for p in b]
    assert all(p.read_bytes() == q.read_bytes() for p, q in zip(a, b, strict=True))
    # more takes later: the first three are kept, byte for byte and untouched
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in a}
    more = synthesize_takes(["up"], tmp_path / "a", options=SynthOptions(count=5, seed=5))["up"]
    assert more[:3] == a and all((p.read_bytes(), p.stat().st_mtime_ns) == before[p] for p in a)
    other = synthesize_takes(["up"], tmp_path / "c", options=SynthOptions(count=3, seed=6))["up"]
    assert [p.read_bytes() for p in other] != [p.read_bytes() for p in a]


def test_noise_recordings() -> None:
    noise = noise_recordings(2.0, seed=0)
    assert set(noise) == {"white_noise", "pink_noise", "brown_noise_hum"}
    for x in noise.values():
        assert x.shape == (2 * RATE,) and np.isclose(np.abs(x).max(), 0.5)
    spectrum = {k: np.abs(np.fft.rfft(v)) for k, v in noise.items()}
    low, high = slice(20, 400), slice(10_000, 15_000)  # 10-200 Hz vs 5-7.5 kHz (0.5 Hz bins)
    ratio = {k: s[low].mean() / s[high].mean() for k, s in spectrum.items()}
    assert ratio["white_noise"] < 2 < ratio["pink_noise"] < ratio["brown_noise_hum"]


def test_cli_synth_writes_takes_noise_and_manifest(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    result = runner.invoke(
        app, ["synth", "go", "on", "--count", "2", "--out", str(out), "--noise-seconds", "1"]
    )
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*/*_nohash_*.flac"))) == 4
    assert len(list((out / "_background_noise_").glob("*.flac"))) == 3
    manifest = json.loads((out / "synth.json").read_text())
    assert manifest["runs"][0]["words"] == ["go", "on"]
    assert manifest["runs"][0]["engines"]["espeak-ng"]
    speakers = {p.name.split("_")[0] for p in out.glob("*/*_nohash_*.flac")}
    assert speakers <= set(manifest["voices"])
    result = runner.invoke(app, ["synth", "_bad", "--out", str(out)])
    assert result.exit_code == 2 and "words must be" in result.output


@pytest.mark.skipif(not shutil.which("flite"), reason="flite not installed")
def test_flite_voices_when_installed(tmp_path: Path) -> None:
    voices = available_voices(["flite"])
    assert {v.name for v in voices} >= {"kal", "slt"}
    take = synthesize("left", voices[0], np.random.default_rng(0))
    again = synthesize("left", voices[0], np.random.default_rng(0))
    np.testing.assert_array_equal(take, again)
    assert 0.2 < len(take) / RATE < 1.5 and np.abs(take).max() > 0.05


def test_breathy_voices_are_deterministic_across_processes() -> None:
    # breath noise drew on unseeded generators: the same take differed between processes
    code = (
        "import hashlib, numpy as np; from kws.synth import Voice, synthesize; "
        "a = synthesize('seven', Voice('espeak-ng', 'en-us+f3'), np.random.default_rng(0)); "
        "print(hashlib.sha256(a.tobytes()).hexdigest())"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(3)
    }
    assert len(runs) == 1

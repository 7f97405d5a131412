"""`kws synth`: text-to-speech keyword takes for any words, in many voices.

In: words, takes per word, a seed, the engines to use. Out: ``DIR/<word>/<voice>_nohash_<n>.flac``
(16 kHz, 16-bit mono) that look like raw takes: the word at a random position between random
leading and trailing silence over low background noise, at a random level, so that they need
`kws align` like a real recording session. ``<voice>`` is a hash of the voice, so the
dataset's hash split keeps each voice in one split, as it keeps each speaker; ``DIR/synth.json``
records the command, the engine versions and the voices.

Engines: espeak-ng through its C library (from the ``espeakng-loader`` wheel when installed,
else the system's libespeak-ng), every English accent it ships × its voice variants, with
speed and pitch jitter; flite's voices when the ``flite`` program is installed; Kokoro, a
neural model (`kws.kokoro`), only when asked for by name, with speed jitter. Resampled to
16 kHz with soxr. Deterministic for a given seed and engine version: each take draws from a
generator seeded by (seed, word, take number), so adding words or takes leaves the others
unchanged, and a rerun skips the takes already written (outputs are atomic).

Phonetic neighbours (`phonetic_neighbours`, ``kws synth --near``): pronunciations one or two
sound changes from each keyword (`kws.phonetic`), spoken by Kokoro from phonemes, one folder
per pronunciation named in ARPAbet ("g-ow"): the hard negatives a spotter must reject.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import hashlib
import multiprocessing
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from kws.fsutil import atomic_path

__all__ = [
    "SynthError",
    "SynthOptions",
    "Voice",
    "available_voices",
    "phonetic_neighbours",
    "synthesize",
    "synthesize_takes",
]

SAMPLE_RATE_HZ = 16_000
ESPEAK_ACCENTS = (
    "en",
    "en-us",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
# human-sounding variants of espeak-ng's voices/!v (robots, whispers and croaks left out)
ESPEAK_VARIANTS = (
    "",
    "m1", "m2", "m3", "m4", "m5", "m6", "m7",
    "f1", "f2", "f3", "f4", "f5",
    "adam", "anika", "aunty", "belinda", "benjamin", "caleb", "david", "edward", "grandpa",
    "ian", "john", "linda", "max", "norbert",
)  # fmt: skip
ESPEAK_NOISE_SEED = 1
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")
RATE_WPM = (120, 200)  # espeak-ng speaking rate jitter
PITCH = (25, 75)  # espeak-ng pitch (0-100) jitter
FLITE_STRETCH = (0.85, 1.25)  # flite duration_stretch jitter
KOKORO_SPEED = (0.85, 1.2)  # Kokoro speed jitter
DEFAULT_ENGINES = ("espeak-ng", "flite")  # Kokoro only when asked for: ~50x slower, 120 MB


class SynthError(RuntimeError):
    """No engine available, or an engine failed on a word."""


@dataclass(frozen=True)
class SynthOptions:
    """How each take is dressed as a raw recording (shared by the CLI and tests)."""

    count: int = 20
    seed: int = 0
    lead_s: tuple[float, float] = (0.2, 0.8)  # silence before the word
    trail_s: tuple[float, float] = (0.2, 0.8)  # silence after it
    peak: tuple[float, float] = (0.2, 0.9)  # level of the word's loudest sample
    noise_dbfs: tuple[float, float] = (-66.0, -50.0)  # RMS of the background noise

    def __post_init__(self) -> None:
        if self.count < 1:
            raise SynthError(f"--count must be >= 1, got {self.count}")
        for name in ("lead_s", "trail_s", "peak", "noise_dbfs"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise SynthError(f"{name} range is empty: {lo} > {hi}")


@dataclass(frozen=True)
class Voice:
    engine: str  # "espeak-ng", "flite" or "kokoro"
    name: str  # espeak-ng "en-us+f3", flite "slt", kokoro "af_bella" or "af_bella+am_adam"

    @property
    def speaker_id(self) -> str:
        """8 hex digits standing for the voice, like a Speech Commands speaker id."""
        return hashlib.sha1(f"{self.engine}/{self.name}".encode()).hexdigest()[:8]


# --- espeak-ng through its C library ------------------------------------------------------
AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_RATE, ESPEAK_PITCH = 1, 3
POS_CHARACTER = 1
ESPEAK_CHARS_UTF8 = 1
SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _Espeak:
    """The process-wide espeak-ng instance (the library keeps global state)."""

    def __init__(self) -> None:
        path, data = _espeak_paths()
        if path is None:
            raise SynthError(
                "espeak-ng not found: pip install espeakng-loader (bundles libespeak-ng), or "
                "install the system package (Debian/Ubuntu: sudo apt install espeak-ng)"
            )
        self.lib = ctypes.CDLL(path)
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_Initialize.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        self.rate = self.lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, 0, data.encode() if data else None, 0
        )
        if self.rate <= 0:
            raise SynthError(f"espeak-ng failed to initialise (data: {data})")
        self.lib.espeak_Info.restype = ctypes.c_char_p
        self.version = self.lib.espeak_Info(None).decode()
        self._chunks: list[np.ndarray] = []

        def collect(wav: ctypes.Array, count: int, events: ctypes.c_void_p) -> int:
            if count > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
            return 0

        self._callback = SYNTH_CALLBACK(collect)  # kept alive as long as the library uses it
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip

    def say(self, text: str, *, voice: str, rate_wpm: int, pitch: int) -> np.ndarray:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise SynthError(f"espeak-ng has no voice {voice!r}")
        self.lib.espeak_SetParameter(ESPEAK_RATE, rate_wpm, 0)
        self.lib.espeak_SetParameter(ESPEAK_PITCH, pitch, 0)
        self._chunks = []
        data = text.encode() + b"\0"
        err = self.lib.espeak_Synth(
            data, len(data), 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None
        )
        if err != 0:
            raise SynthError(f"espeak-ng failed on {text!r} with voice {voice} (error {err})")
        self.lib.espeak_Synchronize()
        if not self._chunks:
            raise SynthError(f"espeak-ng produced no audio for {text!r} with voice {voice}")
        return np.concatenate(self._chunks).astype(np.float32) / 32768.0


def _espeak_paths() -> tuple[str | None, str | None]:
    try:
        import espeakng_loader

        return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
    except (ImportError, RuntimeError):
        found = ctypes.util.find_library("espeak-ng")
        return found, None


@functools.lru_cache(maxsize=1)
def _espeak() -> _Espeak:
    return _Espeak()


def _flite(text: str, *, voice: str, stretch: float) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "take.wav"
        try:
            subprocess.run(
                ["flite", "-voice", voice, "--setf", f"duration_stretch={stretch:.3f}",
                 "-t", text, "-o", str(out)],
                check=True, capture_output=True, timeout=60,
            )  # fmt: skip
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
            raise SynthError(f"flite failed on {text!r} with voice {voice} ({e})") from None
        audio, rate = sf.read(out, dtype="float32")
    return _resample(audio, rate)


def _resample(audio: np.ndarray, rate: int) -> np.ndarray:
    if rate == SAMPLE_RATE_HZ:
        return audio.astype(np.float32)
    import soxr

    return soxr.resample(audio, rate, SAMPLE_RATE_HZ, quality="HQ").astype(np.float32)


def _espeak_version() -> str:
    return _espeak().version


def engine_versions(engines: Sequence[str] = DEFAULT_ENGINES) -> dict[str, str]:
    """Version of each engine asked for that is installed."""
    out = {}
    if "espeak-ng" in engines:
        with (
            contextlib.suppress(SynthError),
            ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool,
        ):
            out["espeak-ng"] = pool.submit(_espeak_version).result()
    if "flite" in engines and shutil.which("flite"):
        text = subprocess.run(["flite", "--version"], capture_output=True, text=True).stdout
        line = next((x for x in text.splitlines() if "version" in x), "version: unknown")
        out["flite"] = line.split("version:")[-1].strip()
    if "kokoro" in engines:
        from kws import kokoro

        if kokoro.kokoro_available():
            out["kokoro"] = kokoro.kokoro_version()
    return out


def available_voices(engines: Sequence[str] = DEFAULT_ENGINES) -> list[Voice]:
    """Every voice of the engines that are installed, espeak-ng first. Kokoro, when asked
    for, must be installed: its 28 voices and their 378 two-voice blends."""
    voices: list[Voice] = []
    if "espeak-ng" in engines and _espeak_paths()[0] is not None:
        voices += [
            Voice("espeak-ng", f"{accent}+{variant}" if variant else accent)
            for accent in ESPEAK_ACCENTS
            for variant in ESPEAK_VARIANTS
        ]
    if "flite" in engines and shutil.which("flite"):
        voices += [Voice("flite", v) for v in FLITE_VOICES]
    if "kokoro" in engines:
        from kws import kokoro

        if not kokoro.kokoro_available():
            raise SynthError(
                "Kokoro is not installed: pip install 'kws[kokoro]' (kokoro-onnx and its model)"
            )
        voices += [Voice("kokoro", v) for v in kokoro.blend_names()]
    if not voices:
        raise SynthError(
            "no text-to-speech engine found: pip install espeakng-loader (or install espeak-ng "
            "or flite from your system's packages)"
        )
    return voices


def _espeak_take(text: str, voice: str, rate_wpm: int, pitch: int) -> tuple[np.ndarray, int]:
    engine = _espeak()
    # voices with breath noise draw from espeak-ng's generator and from libc's rand(): seed both
    seed = getattr(engine.lib, "espeak_ng_SetRandSeed", None)
    if seed is not None:
        seed.argtypes = [ctypes.c_long]
        seed(ESPEAK_NOISE_SEED)
    ctypes.CDLL(None).srand(ESPEAK_NOISE_SEED)
    return engine.say(text, voice=voice, rate_wpm=rate_wpm, pitch=pitch), engine.rate


def synthesize(
    text: str, voice: Voice, rng: np.random.Generator, *, phonemes: str | None = None
) -> np.ndarray:
    """The spoken text (float32, 16 kHz), with the voice's speed and pitch jittered;
    ``phonemes`` (IPA, Kokoro only) is spoken instead of the text when given.

    espeak-ng keeps internal state from one utterance to the next (its output for the same
    text and settings changes from call to call within a process; neither its seed nor a
    re-initialisation resets it), so each take is synthesised in a fresh forked process:
    the same seed then gives the same samples, whatever was synthesised before.
    """
    if phonemes is not None and voice.engine != "kokoro":
        raise SynthError(f"only Kokoro speaks phonemes, not {voice.engine} ({text!r})")
    if voice.engine == "espeak-ng":
        rate_wpm, pitch = int(rng.integers(*RATE_WPM)), int(rng.integers(*PITCH))
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
            audio, rate = pool.submit(_espeak_take, text, voice.name, rate_wpm, pitch).result()
        return _resample(audio, rate)
    if voice.engine == "kokoro":
        from kws import kokoro

        speed = float(rng.uniform(*KOKORO_SPEED))
        try:
            if phonemes is not None:
                return kokoro.speak(phonemes, voice.name, speed=speed, phonemes=True)
            return kokoro.speak(text, voice.name, speed=speed)
        except kokoro.KokoroError as e:
            raise SynthError(str(e)) from None
    return _flite(text, voice=voice.name, stretch=float(rng.uniform(*FLITE_STRETCH)))


def _trim(audio: np.ndarray, floor: float = 1e-3) -> np.ndarray:
    """The audio without the engine's own leading and trailing silence."""
    loud = np.flatnonzero(np.abs(audio) > floor * max(float(np.abs(audio).max()), 1e-9))
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio


def dress_take(
    word_audio: np.ndarray, options: SynthOptions, rng: np.random.Generator
) -> np.ndarray:
    """Place the word between random silences over low noise, at a random level."""
    word = _trim(word_audio)
    word = word / max(float(np.abs(word).max()), 1e-9) * rng.uniform(*options.peak)
    lead = int(rng.uniform(*options.lead_s) * SAMPLE_RATE_HZ)
    trail = int(rng.uniform(*options.trail_s) * SAMPLE_RATE_HZ)
    take = np.concatenate([np.zeros(lead), word, np.zeros(trail)])
    # low noise, slightly coloured (one-pole low-pass) like a room and a cheap microphone
    white = rng.standard_normal(take.size + 1)
    pole = rng.uniform(0.0, 0.9)
    from scipy.signal import lfilter

    noise = lfilter([1 - pole], [1, -pole], white)[1:]
    noise *= 10 ** (rng.uniform(*options.noise_dbfs) / 20) / max(float(np.std(noise)), 1e-12)
    return np.clip(take + noise, -1, 1).astype(np.float32)


def _take_rng(seed: int, word: str, n: int) -> np.random.Generator:
    digest = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
    return np.random.default_rng([seed, digest, n])


def synthesize_takes(
    words: Sequence[str],
    out: Path,
    *,
    options: SynthOptions = SynthOptions(),
    voices: Sequence[Voice] | None = None,
    progress: Callable[[int, int], None] | None = None,
    phonemes: Mapping[str, str] | None = None,
) -> dict[str, list[Path]]:
    """Write ``options.count`` takes per word into ``out/<word>/``; returns the files (written
    now or found from an earlier run). Take n of a word uses voice number n of a voice order
    shuffled per word, so a word's takes use distinct voices while there are enough.
    ``phonemes`` maps a word (a folder name) to the IPA to speak for it (Kokoro only)."""
    out = Path(out)
    bad = [w for w in words if not w.strip() or "/" in w or w.startswith((".", "_"))]
    if bad or not words:
        raise SynthError(f"words must be non-empty folder names, got {list(words)}")
    voices = list(voices) if voices is not None else available_voices()
    phonemes = dict(phonemes or {})
    if phonemes and any(v.engine != "kokoro" for v in voices):
        raise SynthError("phonetic neighbours are spoken from phonemes: use --engine kokoro only")
    files: dict[str, list[Path]] = {}
    total, done = len(words) * options.count, 0
    for word in words:
        order = _take_rng(options.seed, word, 2**32).permutation(len(voices))  # not a take number
        files[word] = []
        counts: dict[str, int] = {}
        for n in range(options.count):
            voice = voices[int(order[n % len(voices)])]
            k = counts.get(voice.speaker_id, 0)
            counts[voice.speaker_id] = k + 1
            path = out / word / f"{voice.speaker_id}_nohash_{k}.flac"
            files[word].append(path)
            if not path.exists():
                rng = _take_rng(options.seed, word, n)
                audio = synthesize(word, voice, rng, phonemes=phonemes.get(word))
                take = dress_take(audio, options, rng)
                with atomic_path(path) as tmp:
                    sf.write(tmp, take, SAMPLE_RATE_HZ, subtype="PCM_16", format="FLAC")
            done += 1
            if progress is not None:
                progress(done, total)
    return files


def phonetic_neighbours(
    keywords: Sequence[str], *, per_keyword: int, edits: int = 2, seed: int = 0
) -> dict[str, dict[str, str]]:
    """For each keyword, ``per_keyword`` pronunciations near it (all those one change away,
    then two-change ones drawn with ``seed``): {keyword: {folder name: IPA to speak}}. The
    keywords are pronounced as Kokoro would say them, American and British; no neighbour is
    either pronunciation of any keyword."""
    from kws import kokoro
    from kws.phonetic import (
        PhoneticError,
        arpabet_to_ipa,
        ipa_to_arpabet,
        neighbour_name,
        sample_neighbours,
    )

    try:
        own = {w: ipa_to_arpabet(kokoro.pronounce(w)) for w in keywords}
        british = {ipa_to_arpabet(kokoro.pronounce(w, lang="en-gb")) for w in keywords}
        chosen = sample_neighbours(
            own, per_keyword=per_keyword, edits=edits, seed=seed, avoid=british
        )
    except (kokoro.KokoroError, PhoneticError) as e:
        raise SynthError(str(e)) from None
    return {
        w: {neighbour_name(p): arpabet_to_ipa(p) for p in phones} for w, phones in chosen.items()
    }


def write_manifest(
    out: Path,
    *,
    words: Sequence[str],
    options: SynthOptions,
    voices: Sequence[Voice],
    command: str,
    phonemes: Mapping[str, str] | None = None,
) -> None:
    """Add this run to ``out/synth.json`` (every command that wrote into the folder, with its
    options and engine versions, and the voice behind each speaker id), so that anyone can
    regenerate the takes."""
    import json

    from kws.runs import write_json

    path = Path(out) / "synth.json"
    manifest: dict = {"runs": [], "voices": {}}
    if path.exists():
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError):
            raise SynthError(f"{path}: not a kws synth manifest; move it away") from None
    run = {
        "command": command,
        "words": list(words),
        "options": asdict(options),
        "engines": engine_versions(sorted({v.engine for v in voices})),
    }
    if phonemes:
        run["phonemes"] = dict(phonemes)
    if run not in manifest["runs"]:
        manifest["runs"].append(run)
    manifest["voices"].update({v.speaker_id: f"{v.engine}:{v.name}" for v in voices})
    write_json(path, manifest)


def noise_recordings(seconds: float, *, seed: int) -> dict[str, np.ndarray]:
    """Background-noise recordings for ``_background_noise_/`` (16 kHz float32): white,
    pink (1/f) and brown (1/f²) noise with mains hum, each peaking at 0.5."""
    from scipy.signal import lfilter

    rng = np.random.default_rng([seed, 0xB6])
    n = int(seconds * SAMPLE_RATE_HZ)
    white = rng.standard_normal(n)
    # pink: Paul Kellet's economy filter (three poles), brown: an integrator with leak
    pink = lfilter([0.049922035, -0.095993537, 0.050612699, -0.004408786],
                   [1, -2.494956002, 2.017265875, -0.522189400], white)  # fmt: skip
    brown = lfilter([1.0], [1, -0.995], white)
    t = np.arange(n) / SAMPLE_RATE_HZ
    hum = sum(np.sin(2 * np.pi * 50 * k * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3))
    brown = brown / np.abs(brown).max() + 0.3 * hum / np.abs(hum).max()
    out = {}
    for name, x in (("white_noise", white), ("pink_noise", pink), ("brown_noise_hum", brown)):
        x = x - x.mean()
        out[name] = (0.5 * x / np.abs(x).max()).astype(np.float32)
    return out


def write_noise(out: Path, seconds: float, *, seed: int) -> list[Path]:
    """Write `noise_recordings` as ``out/_background_noise_/synth_<name>.flac`` (kept if
    present)."""
    paths = []
    for name, audio in noise_recordings(seconds, seed=seed).items():
        # named apart from Speech Commands' own noise files, which these are not
        path = Path(out) / "_background_noise_" / f"synth_{name}.flac"
        if not path.exists():
            with atomic_path(path) as tmp:
                sf.write(tmp, audio, SAMPLE_RATE_HZ, subtype="PCM_16", format="FLAC")
        paths.append(path)
    return paths

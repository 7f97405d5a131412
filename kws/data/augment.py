"""Training-time augmentation, seeded and vectorised over a batch (no Python loop over clips).

In: prepared clips (batch, n) float32 (already scaled per the feature spec and padded), a
mask of which are silence, the background noise recordings, a seeded generator. Out: the
augmented clips (new array; inputs are never modified), as TensorFlow speech_commands does
it: time shift with zero fill, background noise mixed in with some probability at a random
volume, then clipped to [-1, 1]; silence examples are noise alone at a random volume.
SpecAugment (time and frequency masks) works on features. `keyword_negatives` makes
non-keyword examples out of keyword clips (parts of words, reversed words, the onset of one
word spliced onto the end of another), so that the model learns to reject what merely
resembles a keyword.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.fft

from kws.data.index import DataError

__all__ = [
    "BORROW_KINDS",
    "AugmentConfig",
    "Negative",
    "NoiseBank",
    "augment_clips",
    "check_negative_kinds",
    "keyword_negative",
    "keyword_negatives",
    "random_channel",
    "random_reverb",
    "room_impulse_responses",
    "silence_clips",
    "spec_augment",
    "spelled_coda",
    "spelled_onset",
    "voiced_span",
    "word_segments",
]

VOICED_FRAME_MS = 10.0
VOICED_BELOW_PEAK_DB = 30.0  # frames within this of the loudest frame count as the word
NEGATIVE_KINDS = (
    "onset", "coda", "reversed", "splice", "onset-swap", "coda-swap", "onset-borrow",
    "coda-borrow",
)  # fmt: skip
DEFAULT_NEGATIVE_KINDS = ("onset", "coda", "reversed", "splice")
BORROW_KINDS = ("onset-borrow", "coda-borrow")  # the consonant from a word not a keyword
SEGMENT_FRAME_MS = 10.0
SEGMENT_SEARCH = 0.4  # a word's onset (coda) boundary lies in its first (last) 40 %
SEGMENT_SKIP_MS = 20.0  # ... and not in the first (last) 20 ms of it
SEGMENT_RISE_DB = 20.0  # the search starts where energy first comes within this of the peak
CROSSFADE_MS = 5.0


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation settings; defaults are TensorFlow speech_commands' (SpecAugment off)."""

    background_frequency: float = 0.8
    background_volume: float = 0.1
    silence_volume: float = 1.0
    time_shift_ms: float = 100.0
    time_masks: int = 0
    time_mask_frames: int = 5
    freq_masks: int = 0
    freq_mask_bins: int = 2
    negatives: float = 0.0  # generated non-keyword examples per keyword example
    unknown_repeat: int = 1  # each `_unknown_` clip this many times per epoch
    extra_unknown_repeat: int | None = None  # each --extra-unknown clip (None: unknown_repeat)
    speed_jitter: float = 0.0  # play each word at a speed in [1 - j, 1 + j] (pitch too)
    channel: float = 0.0  # probability of a random microphone/room response (spectral tilt,
    # low-pass, high-pass) on a word
    reverb: float = 0.0  # probability of a random room's reverberation on a word
    negative_kinds: tuple[str, ...] = DEFAULT_NEGATIVE_KINDS  # which `keyword_negatives`

    def __post_init__(self) -> None:
        if not 0 <= self.background_frequency <= 1:
            raise DataError(
                f"background_frequency must be in [0, 1], got {self.background_frequency}"
            )
        for name in ("background_volume", "silence_volume", "time_shift_ms", "negatives"):
            if getattr(self, name) < 0:
                raise DataError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("channel", "reverb"):
            if not 0 <= getattr(self, name) <= 1:
                raise DataError(
                    f"{name} must be a probability in [0, 1], got {getattr(self, name)}"
                )
        if not 0 <= self.speed_jitter < 0.5:
            raise DataError(f"speed_jitter must be in [0, 0.5), got {self.speed_jitter}")
        if not (isinstance(self.unknown_repeat, int) and self.unknown_repeat >= 1):
            raise DataError(f"unknown_repeat must be an integer >= 1, got {self.unknown_repeat}")
        extra = self.extra_unknown_repeat
        if extra is not None and not (isinstance(extra, int) and extra >= 1):
            raise DataError(f"extra_unknown_repeat must be an integer >= 1, got {extra}")
        # a list when read back from JSON
        object.__setattr__(self, "negative_kinds", check_negative_kinds(self.negative_kinds))


def check_negative_kinds(kinds: Sequence[str], *, what: str = "negative kinds") -> tuple[str, ...]:
    """``kinds`` as a tuple; `DataError` unless they are distinct names of NEGATIVE_KINDS."""
    kinds = tuple(kinds)
    if not kinds or any(k not in NEGATIVE_KINDS for k in kinds) or len(set(kinds)) != len(kinds):
        raise DataError(
            f"{what} must be distinct names from {', '.join(NEGATIVE_KINDS)}; "
            f"got {', '.join(kinds) or 'none'}"
        )
    return kinds


class NoiseBank:
    """Background noise recordings joined into one array, for vectorised segment gathers."""

    def __init__(self, recordings: list[np.ndarray], *, clip_samples: int) -> None:
        usable = [np.asarray(r, dtype=np.float32) for r in recordings if len(r) >= clip_samples]
        self.clip_samples = clip_samples
        self.samples = np.concatenate(usable) if usable else np.zeros(0, np.float32)
        lengths = np.array([len(r) for r in usable], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        self.spans = lengths - clip_samples + 1  # valid segment starts per recording

    def __len__(self) -> int:
        return len(self.spans)

    def segments(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` random clip-length segments, shape (count, clip_samples)."""
        if len(self) == 0:
            return np.zeros((count, self.clip_samples), np.float32)
        which = rng.integers(0, len(self), count)
        offsets = self.starts[which] + (rng.random(count) * self.spans[which]).astype(np.int64)
        windows = np.lib.stride_tricks.sliding_window_view(self.samples, self.clip_samples)
        return windows[offsets]  # one contiguous copy per row


def _time_shift(clips: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Shift each row by its number of samples (positive: later), filling with zeros."""
    b, n = clips.shape
    reach = int(np.abs(shifts).max(initial=0))
    padded = np.pad(clips, ((0, 0), (reach, reach)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, n, axis=1)  # (b, 2·reach+1, n)
    return windows[np.arange(b), reach - shifts]  # row i starts shifts[i] samples earlier


def augment_clips(
    clips: np.ndarray,
    *,
    silence: np.ndarray,
    noise: NoiseBank,
    rng: np.random.Generator,
    config: AugmentConfig,
    sample_rate_hz: int,
    normalize_silence: bool = False,
) -> np.ndarray:
    """Augment a batch of prepared clips; see the module docstring.

    ``normalize_silence``: scale each silence example (noise at a random volume) by 1/max, as
    the per-clip max normalisation of the feature spec does to a decoded silence clip in the
    reference pipeline; background noise is then mixed in like for any other example.
    """
    b = clips.shape[0]
    clips = clips.astype(np.float32, copy=False)
    if config.speed_jitter > 0:
        factors = rng.uniform(1 - config.speed_jitter, 1 + config.speed_jitter, b)
        clips = change_speed(clips, factors)
    if config.channel > 0:
        words = ~np.asarray(silence, dtype=bool)
        clips = random_channel(
            clips, rng=rng, sample_rate_hz=sample_rate_hz, probability=config.channel, rows=words
        )
    if config.reverb > 0:
        words = ~np.asarray(silence, dtype=bool)
        clips = random_reverb(
            clips, rng=rng, sample_rate_hz=sample_rate_hz, probability=config.reverb, rows=words
        )
    max_shift = round(config.time_shift_ms * sample_rate_hz / 1000)
    shifts = rng.integers(-max_shift, max_shift + 1, b) if max_shift else np.zeros(b, np.int64)
    out = _time_shift(clips, shifts)
    silence = np.asarray(silence, dtype=bool)
    out[silence] = silence_clips(
        int(silence.sum()),
        noise=noise,
        rng=rng,
        volume=config.silence_volume,
        normalize=normalize_silence,
    )
    use_noise = rng.random(b) < config.background_frequency
    volumes = rng.uniform(0, config.background_volume, b).astype(np.float32)
    if len(noise) and use_noise.any():
        rows = np.flatnonzero(use_noise)
        out[rows] += noise.segments(rows.size, rng) * volumes[rows, None]
    np.clip(out, -1.0, 1.0, out=out)
    return out


# random channel: tilt in dB per octave about 1 kHz, 4th-order low-pass, 2nd-order high-pass
CHANNEL_TILT_DB_PER_OCTAVE = 4.0
CHANNEL_LOWPASS_HZ = (1000.0, 8000.0)
CHANNEL_HIGHPASS_HZ = (40.0, 500.0)


def random_channel(
    clips: np.ndarray,
    *,
    rng: np.random.Generator,
    sample_rate_hz: int,
    probability: float,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Play each clip (of ``rows``, with the given probability) through a random microphone
    and room response, as recordings made on other devices sound: a spectral tilt of
    U(-4, 4) dB per octave about 1 kHz, and with probability 1/2 each a 4th-order low-pass at
    log-uniform 1-8 kHz and a 2nd-order high-pass at 40-500 Hz (Butterworth magnitudes,
    zero phase, applied in the frequency domain). Each changed clip keeps its maximum, so
    the feature spec's clip scaling is unaffected. Shape (b, n) → (b, n) float32, new array.
    """
    b, n = clips.shape
    out = np.array(clips, dtype=np.float32, copy=True)
    chosen = rng.random(b) < probability
    tilt = rng.uniform(-CHANNEL_TILT_DB_PER_OCTAVE, CHANNEL_TILT_DB_PER_OCTAVE, b)
    # a filter left out is one at the edge it never reaches: low-pass at ∞, high-pass at 0 Hz
    lowpass = np.exp(rng.uniform(*np.log(CHANNEL_LOWPASS_HZ), b))
    lowpass[rng.random(b) >= 0.5] = np.inf
    highpass = np.exp(rng.uniform(*np.log(CHANNEL_HIGHPASS_HZ), b))
    highpass[rng.random(b) >= 0.5] = 0.0
    if rows is not None:
        chosen &= np.asarray(rows, dtype=bool)
    idx = np.flatnonzero(chosen)
    if idx.size == 0:
        return out
    # room for the filters' ringing (no wrap-around), rounded up to a length FFTs are fast at
    size = scipy.fft.next_fast_len(n + sample_rate_hz // 10, real=True)
    freq = np.fft.rfftfreq(size, 1.0 / sample_rate_hz).astype(np.float32)[None, :]
    octaves = np.log2(np.clip(freq, 50.0, None) / np.float32(1000.0))
    gain_db = tilt[idx, None].astype(np.float32) * octaves
    # the filters' terms, only on the rows that have them (elsewhere they are exactly 0);
    # float32 throughout (a gain off by 1e-6 dB is no different microphone)
    low = np.flatnonzero(np.isfinite(lowpass[idx]))
    edge = lowpass[idx[low], None].astype(np.float32)
    gain_db[low] -= 10 * np.log10(1 + (freq / edge) ** 8)
    high = np.flatnonzero(highpass[idx] > 0)
    edge = highpass[idx[high], None].astype(np.float32)
    gain_db[high] -= 10 * np.log10(1 + (edge / np.clip(freq, 1.0, None)) ** 4)
    spectrum = scipy.fft.rfft(out[idx], n=size, axis=1) * 10 ** (gain_db / 20)
    shaped = scipy.fft.irfft(spectrum, n=size, axis=1)[:, :n]
    before = out[idx].max(axis=1, keepdims=True)  # the spec's clip scaling uses the maximum
    after = shaped.max(axis=1, keepdims=True)
    out[idx] = shaped * np.where(after > 0, before / np.where(after > 0, after, 1), 1)
    return out


# random room: reverberation time (log-uniform) and direct-to-reverberant energy ratio
REVERB_RT60_S = (0.1, 0.8)
REVERB_DRR_DB = (0.0, 12.0)


def room_impulse_responses(
    rt60_s: np.ndarray, drr_db: np.ndarray, *, rng: np.random.Generator, sample_rate_hz: int
) -> np.ndarray:
    """Synthetic room impulse responses, one row per (RT60, DRR) pair: a unit direct sound at
    sample 0, then a diffuse tail of Gaussian noise whose level falls 60 dB in ``rt60_s``
    seconds (the statistical model of late reverberation, Polack 1988), scaled so that
    direct energy / tail energy is ``drr_db``. Rows are as long as the longest RT60, shorter
    ones end in zeros. Shape (k, samples) float64."""
    rt60 = np.asarray(rt60_s, dtype=np.float64)
    length = max(2, int(np.ceil(rt60.max(initial=0.0) * sample_rate_hz)) + 1)
    t = np.arange(length)[None, :] / sample_rate_hz
    envelope = np.where(t <= rt60[:, None], 10 ** (-3 * t / rt60[:, None]), 0.0)
    tail = rng.standard_normal((rt60.size, length)) * envelope
    tail[:, 0] = 0.0
    energy = (tail**2).sum(axis=1, keepdims=True)
    drr = 10 ** (np.asarray(drr_db, dtype=np.float64)[:, None] / 10)
    rir = tail / np.sqrt(np.maximum(energy, 1e-30) * drr)
    rir[:, 0] = 1.0
    return rir


def random_reverb(
    clips: np.ndarray,
    *,
    rng: np.random.Generator,
    sample_rate_hz: int,
    probability: float,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Play each clip (of ``rows``, with the given probability) in a random room: convolve it
    with a `room_impulse_responses` of RT60 log-uniform in 0.1-0.8 s and direct-to-
    reverberant ratio uniform in 0-12 dB (near talkers in small rooms to far ones in halls).
    The reverberation that would ring past the clip's end is cut; each changed clip keeps its
    maximum, like `random_channel`. Shape (b, n) → (b, n) float32, new array."""
    b, n = clips.shape
    out = np.array(clips, dtype=np.float32, copy=True)
    chosen = rng.random(b) < probability
    rt60 = np.exp(rng.uniform(*np.log(REVERB_RT60_S), b))
    drr = rng.uniform(*REVERB_DRR_DB, b)
    if rows is not None:
        chosen &= np.asarray(rows, dtype=bool)
    idx = np.flatnonzero(chosen)
    if idx.size == 0:
        return out
    rir = room_impulse_responses(rt60[idx], drr[idx], rng=rng, sample_rate_hz=sample_rate_hz)
    size = scipy.fft.next_fast_len(n + rir.shape[1], real=True)  # linear, not circular
    spectrum = scipy.fft.rfft(out[idx], n=size, axis=1) * scipy.fft.rfft(rir, n=size, axis=1)
    wet = scipy.fft.irfft(spectrum, n=size, axis=1)[:, :n]
    before = out[idx].max(axis=1, keepdims=True)
    after = wet.max(axis=1, keepdims=True)
    out[idx] = wet * np.where(after > 0, before / np.where(after > 0, after, 1), 1)
    return out


def change_speed(clips: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Play each clip ``factor`` times faster about its centre (speed perturbation, as in
    Ko et al. 2015: tempo and pitch together), by linear interpolation; what moves in from
    outside the clip is silence. Shape (b, n) → (b, n) float32."""
    n = clips.shape[1]
    centre = (n - 1) / 2
    pos = centre + (np.arange(n)[None, :] - centre) * np.asarray(factors, np.float64)[:, None]
    inside = (pos >= 0) & (pos <= n - 1)
    i0 = np.clip(np.floor(pos), 0, n - 2).astype(np.int64)
    frac = (pos - i0).astype(np.float32)
    left = np.take_along_axis(clips, i0, axis=1)
    right = np.take_along_axis(clips, i0 + 1, axis=1)
    return np.where(inside, left + (right - left) * frac, np.float32(0)).astype(np.float32)


def silence_clips(
    count: int, *, noise: NoiseBank, rng: np.random.Generator, volume: float, normalize: bool
) -> np.ndarray:
    """Silence examples: noise segments at volume U(0, ``volume``), optionally scaled by 1/max
    (then the volume cancels out, as it does for a decoded clip in the reference)."""
    clips = noise.segments(count, rng) * rng.uniform(0, volume, count).astype(np.float32)[:, None]
    if normalize and count:
        peak = clips.max(axis=1, keepdims=True)
        clips /= np.where(peak > 0, peak, np.float32(1))
    return np.clip(clips, -1.0, 1.0).astype(np.float32)


def spec_augment(
    features: np.ndarray, *, rng: np.random.Generator, config: AugmentConfig
) -> np.ndarray:
    """SpecAugment masks (Park et al. 2019) on (batch, frames, coefficients); a new array."""
    out = np.array(features, dtype=np.float32, copy=True)
    b, frames, bins = out.shape
    for count, width, axis, size in (
        (config.time_masks, config.time_mask_frames, 1, frames),
        (config.freq_masks, config.freq_mask_bins, 2, bins),
    ):
        for _ in range(count):
            w = rng.integers(0, width + 1, b)
            start = (rng.random(b) * (size - w + 1)).astype(np.int64)
            pos = np.arange(size)[None, :]
            mask = (pos >= start[:, None]) & (pos < (start + w)[:, None])
            if axis == 1:
                out[mask[:, :, None].repeat(bins, axis=2)] = 0.0
            else:
                out[mask[:, None, :].repeat(frames, axis=1)] = 0.0
    return out


def voiced_span(clip: np.ndarray, *, sample_rate_hz: int) -> tuple[int, int]:
    """(first, last + 1) sample of the part of a clip within 30 dB of its loudest 10 ms."""
    step = max(1, round(sample_rate_hz * VOICED_FRAME_MS / 1000))
    n = len(clip) // step
    if n == 0:
        return 0, len(clip)
    energy = (clip[: n * step].astype(np.float64).reshape(n, step) ** 2).mean(axis=1)
    if energy.max() == 0:
        return 0, len(clip)
    loud = np.flatnonzero(energy >= energy.max() * 10 ** (-VOICED_BELOW_PEAK_DB / 10))
    return int(loud[0] * step), int((loud[-1] + 1) * step)


def word_segments(clip: np.ndarray, *, sample_rate_hz: int) -> tuple[int, int, int, int]:
    """(start, onset end, coda start, end) samples of the word in a clip: its voiced span
    (`voiced_span`), and within it the largest spectral change in the first 40 % (where the
    initial consonant meets the vowel) and in the last 40 % (vowel to final consonant).

    A rough phonetic segmentation from energy and spectrum alone (no transcript): for a
    vowel-initial word the "onset" is a few frames of the vowel. The search starts where the
    energy first comes within 20 dB of the word's peak (and ends where it last does), so the
    jump from silence into the word is not taken for the consonant-vowel boundary.
    """
    start, end = voiced_span(clip, sample_rate_hz=sample_rate_hz)
    step = max(1, round(sample_rate_hz * SEGMENT_FRAME_MS / 1000))
    skip = max(1, round(SEGMENT_SKIP_MS / SEGMENT_FRAME_MS))
    frames = (end - start) // step
    if frames < 4 * skip + 2:
        middle = (start + end) // 2
        return start, middle, middle, end
    x = clip[start : start + frames * step].astype(np.float64).reshape(frames, step)
    power = np.abs(np.fft.rfft(x * np.hanning(step), axis=1)) ** 2
    bands = np.array_split(power, 16, axis=1)  # 16 coarse linear bands
    log_bands = np.log10(np.stack([b.sum(axis=1) for b in bands], axis=1) + 1e-10)
    change = np.zeros(frames)
    change[1:-1] = np.linalg.norm(log_bands[2:] - log_bands[:-2], axis=1)
    energy = power.sum(axis=1)
    near = np.flatnonzero(energy >= energy.max() * 10 ** (-SEGMENT_RISE_DB / 10))
    reach = max(skip, int(frames * SEGMENT_SEARCH))
    lo = min(int(near[0]) + skip, frames - 2)
    hi = max(lo + 1, reach)
    onset = lo + int(np.argmax(change[lo:hi]))
    lo, hi = min(frames - reach, int(near[-1]) - skip), int(near[-1]) + 1 - skip
    lo = min(max(lo, onset + 1), frames - 1)
    hi = max(hi, lo + 1)
    coda = lo + int(np.argmax(change[lo:hi]))
    return start, start + onset * step, start + coda * step, start + frames * step


def _join(head: np.ndarray, tail: np.ndarray, fade: int) -> np.ndarray:
    """head then tail with a linear crossfade of ``fade`` samples (no click at the joint)."""
    fade = min(fade, head.size, tail.size)
    if fade == 0:
        return np.concatenate([head, tail])
    ramp = np.linspace(0.0, 1.0, fade + 2, dtype=np.float32)[1:-1]
    mixed = head[-fade:] * (1 - ramp) + tail[:fade] * ramp
    return np.concatenate([head[:-fade], mixed, tail[fade:]])


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def _swap(
    host: np.ndarray, donor: np.ndarray, *, onset: bool, sample_rate_hz: int, fade: int
) -> np.ndarray | None:
    """The host word with its initial (``onset``) or final consonant replaced by the
    donor's, the donor's part scaled by the ratio of the two words' vowel levels; None when
    neither word has such a consonant (both parts under 20 ms: nothing would change)."""
    h0, h1, h2, h3 = word_segments(host, sample_rate_hz=sample_rate_hz)
    d0, d1, d2, d3 = word_segments(donor, sample_rate_hz=sample_rate_hz)
    least = round(sample_rate_hz * SEGMENT_SKIP_MS / 1000)
    host_part, donor_part = (h1 - h0, d1 - d0) if onset else (h3 - h2, d3 - d2)
    if host_part < least and donor_part < least:
        return None
    gain = _rms(host[h1:h2]) / max(_rms(donor[d1:d2]), 1e-9)
    part = donor[d0:d1] if onset else donor[d2:d3]
    part = part * np.float32(gain)
    # the host clip around the word is kept (its own background), the joints crossfaded
    if onset:
        out = _join(_join(host[:h0], part, fade), host[h1:], fade)
    else:
        out = _join(_join(host[:h2], part, fade), host[h3:], fade)
    if out.size >= host.size:
        return out[: host.size]
    return np.pad(out, (0, host.size - out.size), mode="reflect")


_ONSET_SPELLINGS = (
    ("kn", "n"), ("wr", "r"), ("gn", "n"), ("ps", "s"), ("ph", "f"), ("wh", "w"), ("ch", "ch"),
    ("sh", "sh"), ("th", "th"), ("qu", "k"), ("one", "w"), ("once", "w"),
)  # fmt: skip
_CODA_SPELLINGS = (
    ("ght", "t"), ("gh", ""), ("ck", "k"), ("ng", "ng"), ("sh", "sh"), ("ch", "ch"),
    ("th", "th"), ("ph", "f"), ("ss", "s"), ("ll", "l"), ("ff", "f"), ("x", "s"), ("mb", "m"),
)  # fmt: skip
_VOWEL_LETTERS = "aeiou"


def _letters(word: str) -> str:
    return "".join(c for c in word.lower() if "a" <= c <= "z")


@functools.lru_cache(maxsize=4096)
def spelled_onset(word: str) -> str:
    """A word's first consonant sound guessed from its spelling, "" for a vowel: "kn", "wr",
    "ph", "wh" and "qu" read as n, r, f, w, k; c before e, i, y as s, else k; "one" as w.
    Rough (English spelling is), but enough to tell which words start alike."""
    w = _letters(word)
    if not w:
        return ""
    for spelling, sound in _ONSET_SPELLINGS:
        if w.startswith(spelling):
            return sound
    c = w[0]
    if c in _VOWEL_LETTERS:
        return ""
    if c == "c":
        return "s" if w[1:2] in ("e", "i", "y") else "k"
    return {"q": "k", "x": "z"}.get(c, c)


@functools.lru_cache(maxsize=4096)
def spelled_coda(word: str) -> str:
    """A word's last consonant sound guessed from its spelling, "" for a vowel: a silent
    final e is dropped ("five" ends in v), "ght" reads t, "x" s, "ck" k, a final y or w
    after a vowel is a vowel ("happy", "wow")."""
    w = _letters(word)
    if len(w) >= 3 and w[-1] == "e" and w[-2] not in _VOWEL_LETTERS and w[-3] in _VOWEL_LETTERS:
        w = w[:-1]
    if not w:
        return ""
    for spelling, sound in _CODA_SPELLINGS:
        if w.endswith(spelling):
            return sound
    c = w[-1]
    if c in _VOWEL_LETTERS + "y" or (c == "w" and w[-2:-1] in tuple(_VOWEL_LETTERS)):
        return ""
    return "k" if c == "c" else c


def _borrowable(host: str, donors: Sequence[str], *, onset: bool) -> np.ndarray:
    """Indices of the donor words whose initial (``onset``) or final consonant sound differs
    from the host's by their spelling: lending "nine"'s n to "no" would make "no" again."""
    key = spelled_onset if onset else spelled_coda
    own = key(host)
    return np.array([i for i, d in enumerate(donors) if key(d) != own], dtype=np.int64)


def keyword_negatives(
    clips: np.ndarray,
    labels: np.ndarray,
    count: int,
    *,
    rng: np.random.Generator,
    sample_rate_hz: int,
    normalize: bool,
    kinds: tuple[str, ...] = DEFAULT_NEGATIVE_KINDS,
    words: Sequence[str] | None = None,
    donors: np.ndarray | None = None,
    donor_words: Sequence[str] | None = None,
) -> np.ndarray:
    """``count`` non-keyword clips cut from keyword clips (rows of ``clips``, ``labels`` their
    word ids), each of a kind drawn from ``kinds``:

    - ``onset`` / ``coda``: the first or the last 30–60 % of a word's voiced span alone;
    - ``reversed``: a word reversed in time;
    - ``splice``: the first 30–60 % of one word followed by the last 40–70 % of a word with
      another label;
    - ``onset-swap`` / ``coda-swap``: a word whose initial (final) consonant is replaced by
      that of a word with another label (`word_segments`; crossfaded, level-matched), the
      minimal pairs that tell "no" from "go" or "up" from "us": e.g. "doe", "yo", "rown",
      "nope", "ut". A swap can recreate a keyword when two keywords share an initial (final)
      consonant (here "up" and "stop" end alike: "up" with the "p" of "stop"); a draw where
      neither word has the consonant is replaced by a ``splice``;
    - ``onset-borrow`` / ``coda-borrow``: the same with the consonant taken from one of
      ``donors``, clips of words that are not keywords (the dataset's other words: "no" with
      the g of "go" or the b of "bed", "up" with the f of "off"), never from a donor whose
      word starts (ends) with the host's sound by their spelling (``words``, ``donor_words``;
      `spelled_onset`, `spelled_coda`); without such a donor, a swap.

    ``normalize``: scale each to a peak of 1, as decoded clips are."""
    kinds = check_negative_kinds(kinds)
    out = np.zeros((count, clips.shape[1]), np.float32)
    if count == 0 or len(clips) == 0:
        return out
    for i in range(count):
        out[i] = keyword_negative(
            clips, labels, rng=rng, sample_rate_hz=sample_rate_hz, normalize=normalize,
            kinds=kinds, words=words, donors=donors, donor_words=donor_words,
        ).clip  # fmt: skip
    return out


@dataclass(frozen=True)
class Negative:
    """One generated non-keyword clip, the kind it is and the rows of the clips it was cut
    from (``donor``: the second word of a splice or swap, a row of the donors for a borrow,
    else None)."""

    clip: np.ndarray
    kind: str
    host: int
    donor: int | None


def keyword_negative(
    clips: np.ndarray,
    labels: np.ndarray,
    *,
    rng: np.random.Generator,
    sample_rate_hz: int,
    normalize: bool,
    kinds: tuple[str, ...] = DEFAULT_NEGATIVE_KINDS,
    words: Sequence[str] | None = None,
    donors: np.ndarray | None = None,
    donor_words: Sequence[str] | None = None,
) -> Negative:
    """One clip of `keyword_negatives` (which draws them in turn from one generator)."""
    n = clips.shape[1]
    out = np.zeros(n, np.float32)
    fade = round(sample_rate_hz * CROSSFADE_MS / 1000)
    a = int(rng.integers(len(clips)))
    clip = clips[a]
    start, end = voiced_span(clip, sample_rate_hz=sample_rate_hz)
    length = end - start
    kind = kinds[int(rng.integers(len(kinds)))]
    others = np.flatnonzero(labels != labels[a])
    if kind in BORROW_KINDS:
        onset = kind == "onset-borrow"
        lenders = np.empty(0, np.int64)
        if words is not None and donors is not None and donor_words is not None:
            lenders = _borrowable(str(words[a]), donor_words, onset=onset)
        if lenders.size:
            lender = int(lenders[int(rng.integers(lenders.size))])
            made = _swap(
                clip, donors[lender], onset=onset, sample_rate_hz=sample_rate_hz, fade=fade
            )
            if made is not None:
                return _negative(made, kind, a, lender, normalize=normalize)
        kind = "onset-swap" if onset else "coda-swap"
    if kind in ("splice", "onset-swap", "coda-swap") and others.size == 0:
        kind = "onset"
    donor: int | None = None
    if kind in ("onset-swap", "coda-swap"):
        donor = int(others[int(rng.integers(others.size))])
        made = _swap(
            clip, clips[donor], onset=kind == "onset-swap", sample_rate_hz=sample_rate_hz,
            fade=fade,
        )  # fmt: skip
        if made is not None:
            return _negative(made, kind, a, donor, normalize=normalize)
        kind = "splice"
    if kind == "onset":
        cut = start + int(length * rng.uniform(0.3, 0.6))
        out[start:cut] = clip[start:cut]
    elif kind == "coda":
        cut = end - int(length * rng.uniform(0.3, 0.6))
        out[cut:end] = clip[cut:end]
    elif kind == "reversed":
        out[:] = clip[::-1]
    else:
        cut = start + int(length * rng.uniform(0.3, 0.6))
        donor = int(others[int(rng.integers(others.size))])
        other = clips[donor]
        o_start, o_end = voiced_span(other, sample_rate_hz=sample_rate_hz)
        tail = other[o_end - int((o_end - o_start) * rng.uniform(0.4, 0.7)) : o_end]
        piece = np.concatenate([clip[start:cut], tail])[: n - start]
        out[start : start + piece.size] = piece
    return _negative(out, kind, a, donor, normalize=normalize)


def _negative(
    clip: np.ndarray, kind: str, host: int, donor: int | None, *, normalize: bool
) -> Negative:
    out = np.asarray(clip, np.float32)
    if normalize and (peak := out.max()) > 0:
        out = out / peak
    return Negative(out, kind, host, donor)

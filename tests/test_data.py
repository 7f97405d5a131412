"""Dataset index (TensorFlow's hash split), augmentation and the batch source."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.fft
import soundfile as sf
from typer.testing import CliRunner

import features
from kws.cli import app
from kws.data import (
    LABEL_SILENCE,
    LABEL_UNKNOWN,
    AugmentConfig,
    DataError,
    IndexOptions,
    NoiseBank,
    TrainingBatches,
    augment_clips,
    build_index,
    fixed_features,
    load_noise,
    load_split,
    spec_augment,
    which_set,
)

SPEC = features.FeatureSpec()
SUBSET = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech_commands_subset"
runner = CliRunner()

# Speakers listed in Speech Commands' own validation_list.txt / testing_list.txt, which
# TensorFlow's which_set(10, 10) produced.
VALIDATION_SPEAKERS = ["8b775397", "2643992f", "060cd039", "f5e5e8b0", "dbb40d24", "d57febf0"]
TESTING_SPEAKERS = ["2aa787cf", "ffa76c4a", "24ad3ebe", "d7467392", "5828dfa2", "91223b83"]


def test_which_set_matches_the_published_lists() -> None:
    for speaker in VALIDATION_SPEAKERS:
        assert (
            which_set(
                f"cat/{speaker}_nohash_0.wav", validation_percentage=10, testing_percentage=10
            )
            == "validation"
        )
    for speaker in TESTING_SPEAKERS:
        assert (
            which_set(f"go/{speaker}_nohash_3.wav", validation_percentage=10, testing_percentage=10)
            == "testing"
        )
    # the take number and folder are ignored: one speaker, one split
    assert (
        len(
            {
                which_set(
                    f"{w}/0a7c2a8d_nohash_{k}.wav", validation_percentage=10, testing_percentage=10
                )
                for w in ("yes", "no")
                for k in range(4)
            }
        )
        == 1
    )


def make_dataset(root: Path, rng: np.random.Generator, *, per_word: int = 12) -> Path:
    t = np.arange(16_000) / 16_000
    for w, (word, f0) in enumerate(
        [("yes", 300), ("no", 500), ("up", 800), ("cat", 1200), ("dog", 1500)]
    ):
        count = per_word if w < 3 else 4
        for k in range(count):
            speaker = f"{rng.integers(0, 2**32):08x}"
            n = int(rng.integers(9000, 16_001))
            x = 0.4 * np.sin(2 * np.pi * f0 * t[:n]) * np.hanning(n) + rng.normal(0, 0.01, n)
            (root / word).mkdir(parents=True, exist_ok=True)
            sf.write(root / word / f"{speaker}_nohash_{k % 2}.wav", x, 16_000, subtype="PCM_16")
    (root / "_background_noise_").mkdir()
    sf.write(root / "_background_noise_" / "white.wav", rng.normal(0, 0.3, 48_000), 16_000)
    return root


def test_index_labels_splits_and_counts(tmp_path: Path, rng: np.random.Generator) -> None:
    root = make_dataset(tmp_path / "d", rng)
    opts = IndexOptions(
        validation_percentage=25,
        testing_percentage=25,
        silence_percentage=50,
        unknown_percentage=50,
    )
    index = build_index(root, words=["yes", "no", "up"], options=opts)
    assert index.labels == (LABEL_SILENCE, LABEL_UNKNOWN, "yes", "no", "up")
    counts = index.counts()
    assert sum(counts[s][w] for s in counts for w in ("yes", "no", "up")) == 36
    for split, c in counts.items():
        words = c["yes"] + c["no"] + c["up"]
        assert c[LABEL_SILENCE] == -(-words * 50 // 100)
        assert c[LABEL_UNKNOWN] <= -(-words * 50 // 100)
        for e in index.splits[split]:
            if not e.is_silence:
                assert which_set(e.path, validation_percentage=25, testing_percentage=25) == split
    assert index.noise_files == ["_background_noise_/white.wav"]
    again = build_index(root, words=["yes", "no", "up"], options=opts)
    assert again.splits == index.splits  # seeded
    other = build_index(
        root,
        words=["yes", "no", "up"],
        options=IndexOptions(
            validation_percentage=25,
            testing_percentage=25,
            silence_percentage=50,
            unknown_percentage=50,
            seed=1,
        ),
    )
    assert [e.path for e in other.splits["training"]] != [e.path for e in index.splits["training"]]


def test_index_errors_and_skips(tmp_path: Path, rng: np.random.Generator) -> None:
    root = make_dataset(tmp_path / "d", rng)
    (root / "yes" / "broken.wav").write_bytes(b"RIFFbroken")
    index = build_index(root, words=["yes"])
    assert index.skipped == [("yes/broken.wav", index.skipped[0][1])]
    assert "not a readable audio file" in index.skipped[0][1]
    with pytest.raises(DataError, match=r"no files for word\(s\) \['maybe'\]; folders found"):
        build_index(root, words=["yes", "maybe"])
    with pytest.raises(DataError, match="not a folder"):
        build_index(tmp_path / "nothing", words=["yes"])
    (tmp_path / "empty" / "yes").mkdir(parents=True)
    with pytest.raises(DataError, match=r"no \.wav or \.flac files"):
        build_index(tmp_path / "empty", words=["yes"])
    sf.write(root / "no" / "abcdef01_nohash_0.wav", np.zeros(8000), 8000)
    with pytest.raises(
        DataError, match=r"sample rate is 8000 Hz, expected 16000 Hz .* pass --resample"
    ):
        build_index(root, words=["yes"])
    index = build_index(root, words=["yes"], options=IndexOptions(resample=True))
    assert index.resampled == ["no/abcdef01_nohash_0.wav"]


def test_as_test_reads_folders_as_they_are(tmp_path: Path, rng: np.random.Generator) -> None:
    root = make_dataset(tmp_path / "d", rng)
    (root / "_silence_").mkdir()
    sf.write(root / "_silence_" / "s_nohash_0.wav", np.zeros(16_000), 16_000)
    index = build_index(root, words=["yes", "no"], as_test=True)
    counts = index.counts()["testing"]
    assert counts == {"_silence_": 1, "_unknown_": 12 + 4 + 4, "yes": 12, "no": 12}
    assert not index.splits["training"] and not index.splits["validation"]


def test_cli_index_table_and_json(tmp_path: Path, rng: np.random.Generator) -> None:
    root = make_dataset(tmp_path / "d", rng)
    result = runner.invoke(app, ["data", "index", str(root), "--words", "yes,no", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["labels"] == ["_silence_", "_unknown_", "yes", "no"]
    assert set(data["counts"]) == {"training", "validation", "testing"}
    result = runner.invoke(app, ["data", "index", str(root), "--words", "yes,no"])
    assert result.exit_code == 0 and "training" in result.output and "_unknown_" in result.output
    result = runner.invoke(app, ["data", "index", str(root), "--words", "nope"])
    assert result.exit_code == 2 and "no files for word(s) ['nope']" in result.output
    # a file name that is not UTF-8 (Python keeps its bytes as surrogates) is skipped, named
    odd = root / "yes" / os.fsdecode(b"bad\xff_nohash_0.wav")
    odd.write_bytes(next((root / "yes").glob("*.wav")).read_bytes())
    result = runner.invoke(app, ["data", "index", str(root), "--words", "yes,no", "--json"])
    assert result.exit_code == 0, result.output
    skipped = json.loads(result.output)["skipped"]
    assert skipped == [
        {"path": "yes/bad\ufffd_nohash_0.wav", "reason": "file name is not valid UTF-8; rename it"}
    ]


# ---------------------------------------------------------------- augmentation
def test_augmentation_is_seeded_and_bounded(rng: np.random.Generator) -> None:
    clips = np.tile(np.hanning(16_000).astype(np.float32), (6, 1))
    silence = np.array([0, 0, 0, 0, 1, 1], dtype=bool)
    noise = NoiseBank([np.random.default_rng(1).normal(0, 0.5, 40_000)], clip_samples=16_000)
    cfg = AugmentConfig()
    a = augment_clips(
        clips,
        silence=silence,
        noise=noise,
        rng=np.random.default_rng(3),
        config=cfg,
        sample_rate_hz=16_000,
    )
    b = augment_clips(
        clips,
        silence=silence,
        noise=noise,
        rng=np.random.default_rng(3),
        config=cfg,
        sample_rate_hz=16_000,
    )
    assert np.array_equal(a, b) and a.shape == clips.shape
    assert np.abs(a).max() <= 1.0
    assert np.array_equal(
        clips, np.tile(np.hanning(16_000).astype(np.float32), (6, 1))
    )  # untouched
    quiet = AugmentConfig(background_frequency=0.0)
    ramp = np.tile(np.linspace(0.1, 0.9, 16_000, dtype=np.float32), (6, 1))  # no zeros
    shifted = augment_clips(
        ramp,
        silence=np.zeros(6, bool),
        noise=noise,
        rng=np.random.default_rng(4),
        config=quiet,
        sample_rate_hz=16_000,
    )
    for row in shifted:  # a pure shift, zero filled, by at most 100 ms
        nz = np.flatnonzero(row)
        lag = int(nz[0]) if nz[0] > 0 else -(16_000 - 1 - int(nz[-1]))
        assert abs(lag) <= 1600
        expected = np.roll(ramp[0], lag)
        if lag > 0:
            expected[:lag] = 0
        elif lag < 0:
            expected[lag:] = 0
        np.testing.assert_array_equal(row, expected)
        assert nz.size > 0
    sil = augment_clips(
        clips,
        silence=np.ones(6, bool),
        noise=noise,
        rng=np.random.default_rng(5),
        config=cfg,
        sample_rate_hz=16_000,
    )
    assert not np.allclose(sil, clips)  # silence is noise only
    assert np.abs(sil).max() <= 1.0


def test_spec_augment_masks_only_zeros() -> None:
    x = np.ones((4, 49, 10), np.float32)
    cfg = AugmentConfig(time_masks=2, time_mask_frames=5, freq_masks=1, freq_mask_bins=2)
    y = spec_augment(x, rng=np.random.default_rng(0), config=cfg)
    assert set(np.unique(y)) <= {0.0, 1.0} and (y == 0).any() and x.min() == 1.0
    assert ((y == 0).sum(axis=(1, 2)) <= 2 * 5 * 10 + 2 * 49).all()


# ---------------------------------------------------------------- batch source
def test_source_batches_cache_and_fixed_features(tmp_path: Path, rng: np.random.Generator) -> None:
    root = make_dataset(tmp_path / "d", rng, per_word=20)
    index = build_index(
        root, words=["yes", "no", "up"], options=IndexOptions(validation_percentage=30)
    )
    cache = tmp_path / "cache"
    train = load_split(index, "training", spec=SPEC, cache_dir=cache)
    assert train.clips.shape == (len(index.splits["training"]), 16_000)
    again = load_split(index, "training", spec=SPEC, cache_dir=cache)
    assert isinstance(again.clips, np.memmap) and np.array_equal(again.clips, train.clips)
    assert again.fingerprint == train.fingerprint
    first = index.splits["training"][int(np.flatnonzero(~train.silence)[0])]
    audio = sf.read(root / first.path, dtype="float32")[0]
    np.testing.assert_array_equal(
        train.clips[int(np.flatnonzero(~train.silence)[0])],
        features.prepare_clips(audio, spec=SPEC)[0],
    )
    noise = load_noise(index, spec=SPEC)
    batches = TrainingBatches(
        train, noise=noise, spec=SPEC, config=AugmentConfig(), batch_size=16, seed=7
    )
    epoch0 = list(batches.epoch(0))
    assert len(epoch0) == len(batches)
    assert epoch0[0][0].shape[1:] == (49, 10) and epoch0[0][0].dtype == np.float32
    assert sorted(np.concatenate([y for _, y in epoch0]).tolist()) == sorted(train.labels.tolist())
    again0 = list(batches.epoch(0))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(epoch0, again0, strict=True))
    epoch1 = list(batches.epoch(1))
    assert not np.array_equal(epoch0[0][0], epoch1[0][0])
    val = load_split(index, "validation", spec=SPEC, cache_dir=cache)
    f1 = fixed_features(val, noise=noise, spec=SPEC, seed=1, cache_dir=cache)
    f2 = fixed_features(val, noise=noise, spec=SPEC, seed=1, cache_dir=cache)
    assert f1.shape == (len(val), 49, 10) and np.array_equal(f1, f2)
    words = ~val.silence
    np.testing.assert_allclose(
        f1[words], features.mfcc_frames(np.asarray(val.clips)[words], spec=SPEC), atol=1e-6
    )


def test_cache_written_by_other_code_is_not_read(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kws.data.source as source

    root = make_dataset(tmp_path / "d", rng, per_word=6)
    index = build_index(root, words=["yes", "no", "up"], options=IndexOptions())
    cache = tmp_path / "cache"
    noise = load_noise(index, spec=SPEC)
    val = load_split(index, "training", spec=SPEC, cache_dir=cache)
    fixed_features(val, noise=noise, spec=SPEC, seed=1, cache_dir=cache)
    before = sorted(p.name for p in cache.glob("*.npy"))
    assert len(before) == 2
    monkeypatch.setattr(source, "code_digest", lambda: "other code")
    val = load_split(index, "training", spec=SPEC, cache_dir=cache)
    fixed_features(val, noise=noise, spec=SPEC, seed=1, cache_dir=cache)
    assert len(set(p.name for p in cache.glob("*.npy")) - set(before)) == 2


@pytest.mark.slow
@pytest.mark.skipif(not SUBSET.is_dir(), reason="../shared/data/speech_commands_subset absent")
def test_subset_index() -> None:
    index = build_index(SUBSET, words=["yes", "no", "up", "down", "left", "right", "stop"])
    counts = index.counts()
    assert sum(counts["training"].values()) > 5000
    assert len(index.noise_files) == 6 and not index.skipped
    assert counts["validation"]["yes"] > 80


def test_silence_is_normalised_like_a_decoded_clip() -> None:
    noise = NoiseBank([np.random.default_rng(2).normal(0, 0.05, 40_000)], clip_samples=16_000)
    clips = np.zeros((4, 16_000), np.float32)
    cfg = AugmentConfig(background_frequency=0.0, time_shift_ms=0)
    out = augment_clips(
        clips,
        silence=np.ones(4, bool),
        noise=noise,
        rng=np.random.default_rng(1),
        config=cfg,
        sample_rate_hz=16_000,
        normalize_silence=True,
    )
    np.testing.assert_allclose(out.max(axis=1), 1.0, rtol=1e-6)  # the max preset's clip scaling
    raw = augment_clips(
        clips,
        silence=np.ones(4, bool),
        noise=noise,
        rng=np.random.default_rng(1),
        config=cfg,
        sample_rate_hz=16_000,
    )
    assert (raw.max(axis=1) < 0.3).all()  # volume U(0, 1) × noise of σ 0.05


def test_keyword_negatives_are_pieces_of_keywords(rng: np.random.Generator) -> None:
    from kws.data.augment import keyword_negatives, voiced_span

    n = 16_000
    clips = np.zeros((2, n), np.float32)
    t = np.arange(8000) / n
    clips[0, 4000:12000] = np.sin(2 * np.pi * 300 * t) * np.hanning(8000)  # word 2
    clips[1, 2000:10000] = np.sin(2 * np.pi * 900 * t) * np.hanning(8000)  # word 3
    labels = np.array([2, 3])
    out = keyword_negatives(clips, labels, 200, rng=rng, sample_rate_hz=n, normalize=True)
    assert out.shape == (200, n) and out.dtype == np.float32
    assert np.allclose(out.max(axis=1), 1.0)
    spans = [voiced_span(c, sample_rate_hz=n) for c in clips]
    kinds = {"part": 0, "reversed": 0, "splice": 0}
    for x in out:
        loud = np.flatnonzero(np.abs(x) > 1e-3)
        if any(np.allclose(x, c[::-1] / c.max(), atol=1e-6) for c in clips):
            kinds["reversed"] += 1
        elif any(s <= loud[0] and loud[-1] < e and loud.size < 0.75 * (e - s) for s, e in spans):
            kinds["part"] += 1  # a part of one word, never all of it
        else:
            kinds["splice"] += 1
            # the onset of one word, then the end of the other
            assert loud.size < sum(e - s for s, e in spans)
    assert all(v > 20 for v in kinds.values()), kinds
    np.testing.assert_array_equal(
        out,
        keyword_negatives(
            clips, labels, 200, rng=np.random.default_rng(12345), sample_rate_hz=n, normalize=True
        ),
    )


def _cvc(rng: np.random.Generator, onset_hz: float, vowel_hz: float, coda_hz: float) -> np.ndarray:
    """A consonant-vowel-consonant 'word' at 16 kHz from 0.2 s: 80 ms of band noise about
    onset_hz, 300 ms of a harmonic vowel, 80 ms of band noise about coda_hz."""
    rate, out = 16_000, np.zeros(16_000, np.float32)

    def band_noise(hz: float, n: int) -> np.ndarray:
        spec = np.fft.rfft(rng.normal(size=n))
        f = np.fft.rfftfreq(n, 1 / rate)
        spec[np.abs(f - hz) > 400] = 0
        x = np.fft.irfft(spec, n)
        return 0.3 * x / np.abs(x).max()

    t = np.arange(int(0.3 * rate)) / rate
    vowel = sum(np.sin(2 * np.pi * vowel_hz * k * t) / k for k in range(1, 6))
    vowel = vowel / np.abs(vowel).max() * np.minimum(1, np.minimum(t, t[::-1]) / 0.02)
    word = np.concatenate([band_noise(onset_hz, 1280), vowel, band_noise(coda_hz, 1280)])
    out[3200 : 3200 + word.size] = word
    return out


def test_word_segments_find_consonant_vowel_boundaries(rng: np.random.Generator) -> None:
    from kws.data.augment import word_segments

    clip = _cvc(rng, 1500, 150, 6000)
    start, onset_end, coda_start, end = word_segments(clip, sample_rate_hz=16_000)
    assert abs(start - 3200) <= 160 and abs(end - (3200 + 7360)) <= 160
    assert abs(onset_end - (3200 + 1280)) <= 320  # within 20 ms of the true boundary
    assert abs(coda_start - (3200 + 1280 + 4800)) <= 320
    short = np.zeros(16_000, np.float32)
    short[8000:8400] = 0.5  # 25 ms: too short to segment, split in the middle
    s, a, b, e = word_segments(short, sample_rate_hz=16_000)
    assert s <= a == b <= e
    late = np.zeros(16_000, np.float32)  # quiet, then the loudest frame last: still in order
    late[4000:15000] = rng.normal(0, 0.02, 11_000)
    late[14_840:15_000] = rng.normal(0, 1, 160)
    s, a, b, e = word_segments(late, sample_rate_hz=16_000)
    assert 0 <= s <= a <= b <= e <= 16_000


def test_swap_negatives_exchange_consonants(rng: np.random.Generator) -> None:
    from kws.data.augment import keyword_negatives, word_segments

    n = 16_000
    host = _cvc(rng, 1500, 150, 6000)
    donor = _cvc(rng, 3500, 220, 2500)
    clips, labels = np.stack([host, donor]), np.array([2, 3])

    def band_share(x: np.ndarray, hz: float) -> float:
        f = np.fft.rfftfreq(x.size, 1 / n)
        power = np.abs(np.fft.rfft(x)) ** 2
        return float(power[np.abs(f - hz) <= 400].sum() / power.sum())

    for kind, own in (("onset-swap", (1500, 3500)), ("coda-swap", (6000, 2500))):
        out = keyword_negatives(
            clips, labels, 40, rng=rng, sample_rate_hz=n, normalize=True, kinds=(kind,)
        )
        assert np.allclose(out.max(axis=1), 1.0)
        for x in out:
            s, a, b, e = word_segments(x, sample_rate_hz=n)
            consonant = x[s:a] if kind == "onset-swap" else x[b:e]
            vowel = np.abs(np.fft.rfft(x[a:b]))
            pitch = np.fft.rfftfreq(b - a, 1 / n)[int(np.argmax(vowel))]
            host_word = abs(pitch - 150) < abs(pitch - 220)  # which word gave the vowel
            # the consonant now comes from the other word; the vowel stays the host's
            mine, other = (own[0], own[1]) if host_word else (own[1], own[0])
            assert band_share(consonant, other) > 5 * band_share(consonant, mine), kind
    # a swap between two words without consonants falls back to a splice, never a copy
    vowels = np.stack([_cvc(rng, 1500, 150, 6000), _cvc(rng, 1500, 220, 6000)])
    for v in vowels:
        v[3200 : 3200 + 1280] = 0
        v[3200 + 1280 + 4800 :] = 0
    out = keyword_negatives(
        vowels, labels, 20, rng=rng, sample_rate_hz=n, normalize=True, kinds=("onset-swap",)
    )
    assert not any(np.allclose(x, v / v.max(), atol=1e-4) for x in out for v in vowels)


def test_spelled_consonants() -> None:
    """The first and last consonant sounds read from spelling, on the subset's own words and
    the spellings English writes one sound with (silent e, kn, ph, ght, x, c before i)."""
    from kws.data.augment import spelled_coda, spelled_onset

    table = {
        "yes": ("y", "s"), "no": ("n", ""), "up": ("", "p"), "down": ("d", "n"),
        "left": ("l", "t"), "right": ("r", "t"), "stop": ("s", "p"), "go": ("g", ""),
        "off": ("", "f"), "on": ("", "n"), "one": ("w", "n"), "nine": ("n", "n"),
        "five": ("f", "v"), "house": ("h", "s"), "six": ("s", "s"), "eight": ("", "t"),
        "happy": ("h", ""), "wow": ("w", ""), "three": ("th", ""), "sheila": ("sh", ""),
        "know": ("n", ""), "phone": ("f", "n"), "write": ("r", "t"), "city": ("s", ""),
        "cat": ("k", "t"), "back": ("b", "k"), "the": ("th", ""), "Dog!": ("d", "g"), "": ("", ""),
    }  # fmt: skip
    for word, (onset, coda) in table.items():
        assert (spelled_onset(word), spelled_coda(word)) == (onset, coda), word


def test_borrow_negatives_take_consonants_from_other_words(rng: np.random.Generator) -> None:
    """onset-borrow / coda-borrow: a keyword with the initial (final) consonant of a clip of
    another word, never of a word that starts (ends) with the keyword's own sound; with no
    such word (or none given) a swap between keywords instead."""
    from kws.data.augment import keyword_negative, word_segments

    n = 16_000
    host = _cvc(rng, 1500, 150, 6000)  # "no"
    keywords, labels = np.stack([host, _cvc(rng, 1500, 150, 6000)]), np.array([2, 3])
    go, nine = _cvc(rng, 3500, 220, 2500), _cvc(rng, 500, 220, 4500)
    donors = np.stack([go, nine, go, nine])
    donor_words = ["go", "nine", "go", "nine"]

    def band_share(x: np.ndarray, hz: float) -> float:
        f = np.fft.rfftfreq(x.size, 1 / n)
        power = np.abs(np.fft.rfft(x)) ** 2
        return float(power[np.abs(f - hz) <= 400].sum() / power.sum())

    # "no" may borrow the g of "go" but not the n of "nine"; its vowel ending may be replaced
    # by "nine"'s n but not by the vowel ending of "go"
    for kind, lender, band, other in (
        ("onset-borrow", "go", 3500, 500),
        ("coda-borrow", "nine", 4500, 2500),
    ):
        for _ in range(10):
            made = keyword_negative(
                keywords, labels, rng=rng, sample_rate_hz=n, normalize=True, kinds=(kind,),
                words=["no", "no"], donors=donors, donor_words=donor_words,
            )  # fmt: skip
            assert made.kind == kind and made.donor is not None
            assert donor_words[made.donor] == lender
            s, a, b, e = word_segments(made.clip, sample_rate_hz=n)
            consonant = made.clip[s:a] if kind == "onset-borrow" else made.clip[b:e]
            assert band_share(consonant, band) > 5 * band_share(consonant, other), kind
            vowel = np.abs(np.fft.rfft(made.clip[a:b]))
            assert abs(np.fft.rfftfreq(b - a, 1 / n)[int(np.argmax(vowel))] - 150) < 20
            assert np.isclose(made.clip.max(), 1.0)
    # no lender with another sound, or no donors at all: a swap between keywords
    for donor_words_, donors_ in ((["nine"], nine[None]), (None, None)):
        made = keyword_negative(
            keywords, labels, rng=rng, sample_rate_hz=n, normalize=True,
            kinds=("onset-borrow",), words=["no", "no"], donors=donors_,
            donor_words=donor_words_,
        )  # fmt: skip
        assert made.kind == "onset-swap" and made.donor == 1 - made.host


def test_negative_kinds_are_checked() -> None:
    from kws.data.augment import keyword_negatives

    with pytest.raises(DataError, match="negative kinds"):
        AugmentConfig(negative_kinds=("onset", "middle"))
    with pytest.raises(DataError, match="negative kinds"):
        AugmentConfig(negative_kinds=())
    assert AugmentConfig(negative_kinds=["onset-swap"]).negative_kinds == ("onset-swap",)
    with pytest.raises(DataError, match="negative kinds"):
        keyword_negatives(
            np.zeros((1, 100), np.float32), np.array([2]), 1, rng=np.random.default_rng(0),
            sample_rate_hz=16_000, normalize=True, kinds=("x",),
        )  # fmt: skip


def test_batches_with_negatives(tmp_path: Path, rng: np.random.Generator) -> None:
    root = make_dataset(tmp_path / "d", rng, per_word=20)
    index = build_index(root, words=["yes", "no", "up"], options=IndexOptions())
    train = load_split(index, "training", spec=SPEC)
    noise = load_noise(index, spec=SPEC)
    plain = TrainingBatches(
        train, noise=noise, spec=SPEC, config=AugmentConfig(), batch_size=16, seed=7
    )
    more = TrainingBatches(
        train, noise=noise, spec=SPEC, config=AugmentConfig(negatives=0.5), batch_size=16, seed=7
    )
    y0 = np.concatenate([y for _, y in plain.epoch(0)])
    batches = list(more.epoch(0))
    y1 = np.concatenate([y for _, y in batches])
    keywords = int((y0 >= 2).sum())
    added = y1.size - y0.size
    assert 0.3 * keywords < added < 0.7 * keywords
    assert (y1 == 1).sum() - (y0 == 1).sum() == added  # all of them _unknown_
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(batches, more.epoch(0), strict=True))


def test_batches_borrow_from_the_other_words(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--negative-kinds onset-borrow: the lenders are the batch's clips of the dataset's
    other words (cat, dog), never keywords, silence or --extra-unknown clips."""
    import kws.data.source as source

    root = make_dataset(tmp_path / "d", rng, per_word=20)
    extra = tmp_path / "extra" / "bird"
    extra.mkdir(parents=True)
    for k in range(4):
        sf.write(extra / f"b{k}.wav", rng.normal(0, 0.1, 16_000), 16_000, subtype="PCM_16")
    opts = IndexOptions(unknown_percentage=50, extra_unknown=str(tmp_path / "extra"))
    index = build_index(root, words=["yes", "no", "up"], options=opts)
    train = load_split(index, "training", spec=SPEC)
    assert {"cat", "dog", "bird", ""} <= set(train.words[train.labels < 2])
    seen: list[tuple[list[str], list[str]]] = []
    real = source.keyword_negatives

    def spy(*args: Any, **kwargs: Any) -> np.ndarray:
        seen.append((list(kwargs["words"]), list(kwargs["donor_words"])))
        assert len(kwargs["donors"]) == len(kwargs["donor_words"])
        return real(*args, **kwargs)

    monkeypatch.setattr(source, "keyword_negatives", spy)
    config = AugmentConfig(negatives=0.5, negative_kinds=("onset-borrow", "coda-borrow"))
    batches = TrainingBatches(
        train, noise=load_noise(index, spec=SPEC), spec=SPEC, config=config, batch_size=16,
        seed=7,
    )  # fmt: skip
    assert sum((y == 1).sum() for _, y in batches.epoch(0)) > 0
    hosts = {w for h, _ in seen for w in h}
    lenders = {w for _, d in seen for w in d}
    assert hosts == {"yes", "no", "up"} and lenders == {"cat", "dog"}


def test_batches_repeat_unknown_clips(tmp_path: Path, rng: np.random.Generator) -> None:
    root = make_dataset(tmp_path / "d", rng, per_word=20)
    index = build_index(root, words=["yes", "no"], options=IndexOptions(unknown_percentage=50))
    train = load_split(index, "training", spec=SPEC)
    noise = load_noise(index, spec=SPEC)
    plain, more = (
        TrainingBatches(
            train,
            noise=noise,
            spec=SPEC,
            config=AugmentConfig(unknown_repeat=r),
            batch_size=16,
            seed=7,
        )
        for r in (1, 3)
    )
    y0 = np.concatenate([y for _, y in plain.epoch(0)])
    batches = list(more.epoch(0))
    y1 = np.concatenate([y for _, y in batches])
    unknown = int((train.labels == 1).sum())
    assert unknown > 0 and (y0 == 1).sum() == unknown and (y1 == 1).sum() == 3 * unknown
    assert np.array_equal(np.bincount(y1[y1 != 1]), np.bincount(y0[y0 != 1]))
    assert len(batches) == len(more) > len(plain)
    # each repeat is augmented anew: no two _unknown_ feature rows of the epoch are equal
    x1 = np.concatenate([x for x, _ in batches])[y1 == 1].reshape(3 * unknown, -1)
    assert len(np.unique(x1, axis=0)) == 3 * unknown
    with pytest.raises(DataError, match="unknown_repeat"):
        AugmentConfig(unknown_repeat=0)


def test_change_speed_scales_time_and_pitch(rng: np.random.Generator) -> None:
    from kws.data.augment import change_speed

    n, sr = 16000, 16000
    t = np.arange(n) / sr
    tone = np.sin(2 * np.pi * 500 * t).astype(np.float32)
    burst = np.zeros(n, np.float32)
    burst[6000:10000] = rng.normal(0, 0.3, 4000)
    clips = np.stack([tone, burst, rng.normal(0, 0.1, n).astype(np.float32)])
    np.testing.assert_allclose(change_speed(clips, np.ones(3)), clips, atol=1e-6)
    fast = change_speed(clips, np.array([1.2, 2.0, 0.8]))
    assert fast.shape == clips.shape and fast.dtype == np.float32
    peak_hz = np.argmax(np.abs(np.fft.rfft(fast[0, 4000:12000]))) * sr / 8000
    assert abs(peak_hz - 600) <= 2  # 500 Hz played 1.2x faster
    active = np.flatnonzero(np.abs(fast[1]) > 0)
    assert abs((active[-1] - active[0]) - 2000) <= 3  # 4000 samples at 2x speed
    assert abs((active[0] + active[-1]) / 2 - 8000) <= 3  # about the centre
    assert np.any(fast[2, :1000] != 0)  # slower: the edges still hold signal
    config = AugmentConfig(speed_jitter=0.1)
    out = augment_clips(
        clips, silence=np.zeros(3, bool), noise=NoiseBank([], clip_samples=n), rng=rng,
        config=config, sample_rate_hz=sr,
    )  # fmt: skip
    assert out.shape == clips.shape and not np.allclose(out, clips)
    with pytest.raises(DataError, match="speed_jitter"):
        AugmentConfig(speed_jitter=0.7)


def test_extra_unknown_clips_join_training_only(tmp_path: Path, rng: np.random.Generator) -> None:
    root = make_dataset(tmp_path / "d", rng)
    extra = tmp_path / "synth"
    for word in ("bird", "tree"):
        (extra / word).mkdir(parents=True)
        for k in range(3):
            sf.write(extra / word / f"v{k}.flac", rng.normal(0, 0.1, 16_000), 16_000)
    sf.write(extra / "bird" / "slow.wav", rng.normal(0, 0.1, 16_000), 8000)  # skipped
    plain = build_index(root, words=["yes", "no"], options=IndexOptions())
    more = build_index(root, words=["yes", "no"], options=IndexOptions(extra_unknown=str(extra)))
    added = [e for e in more.splits["training"] if e.path.startswith(str(extra.resolve()))]
    assert len(added) == 6 and all(e.label == LABEL_UNKNOWN for e in added)
    for split in ("validation", "testing"):
        assert more.splits[split] == plain.splits[split]
    assert any("slow.wav" in path for path, _ in more.skipped)
    spec = features.FeatureSpec()
    clips = load_split(more, "training", spec=spec)
    assert len(clips) == len(plain.splits["training"]) + 6
    assert clips.extra is not None and clips.extra.sum() == 6
    own = int(((clips.labels == 1) & ~clips.extra).sum())
    assert own > 0
    noise = load_noise(more, spec=spec)
    # --unknown-repeat weighs the dataset's own other words; --extra-unknown-repeat (by
    # default the same) the added ones
    for extra_repeat, want in ((None, 3 * (own + 6)), (1, 3 * own + 6), (2, 3 * own + 12)):
        config = AugmentConfig(unknown_repeat=3, extra_unknown_repeat=extra_repeat)
        batches = TrainingBatches(
            clips, noise=noise, spec=spec, config=config, batch_size=8, seed=1
        )
        labels = np.concatenate([y for _, y in batches.epoch(0)])
        assert (labels == 1).sum() == want
        assert np.array_equal(
            np.bincount(labels[labels != 1]), np.bincount(clips.labels[clips.labels != 1])
        )
    with pytest.raises(DataError, match="extra_unknown_repeat"):
        AugmentConfig(extra_unknown_repeat=0)
    with pytest.raises(DataError, match="not a folder"):
        build_index(root, words=["yes"], options=IndexOptions(extra_unknown=str(tmp_path / "x")))
    result = runner.invoke(
        app,
        ["train", str(root), "--words", "yes,no", "--extra-unknown", str(tmp_path / "nope"),
         "--out", str(tmp_path / "run")],
    )  # fmt: skip
    assert result.exit_code == 2 and "nope" in result.output
    result = runner.invoke(
        app,
        ["train", str(root), "--words", "yes,no", "--extra-unknown-repeat", "2",
         "--out", str(tmp_path / "run")],
    )  # fmt: skip
    assert result.exit_code != 0 and "--extra-unknown-repeat needs --extra-unknown" in result.output
    assert not (tmp_path / "run").exists()


def test_extra_clips_leave_the_dataset_splits_alone(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    # "yes" alone is a keyword: the other words make a pool of _unknown_ clips larger than
    # each split draws from it, so a draw that depended on the extra clips would show
    root = make_dataset(tmp_path / "d", rng, per_word=16)
    options = {
        "validation_percentage": 30.0,
        "testing_percentage": 30.0,
        "unknown_percentage": 20.0,
    }
    plain = build_index(root, words=["yes"], options=IndexOptions(**options))
    extra = tmp_path / "more"
    (extra / "bird").mkdir(parents=True)
    for count in range(1, 9):
        sf.write(extra / "bird" / f"v{count}.flac", rng.normal(0, 0.1, 16_000), 16_000)
        more = build_index(
            root, words=["yes"], options=IndexOptions(**options, extra_unknown=str(extra))
        )
        for split in ("validation", "testing"):
            assert more.splits[split] == plain.splits[split], (count, split)
        own = [e for e in more.splits["training"] if not e.is_extra]
        assert sorted(own, key=str) == sorted(plain.splits["training"], key=str)


def test_extra_keyword_clips_join_training_as_their_keyword(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    root = make_dataset(tmp_path / "d", rng)
    extra = tmp_path / "takes"
    for word, n in (("yes", 2), ("no", 3)):
        (extra / word).mkdir(parents=True)
        for k in range(n):
            sf.write(extra / word / f"v{k}.flac", rng.normal(0, 0.1, 16_000), 16_000)
    plain = build_index(root, words=["yes", "no"], options=IndexOptions())
    more = build_index(root, words=["yes", "no"], options=IndexOptions(extra_keywords=str(extra)))
    added = [e for e in more.splits["training"] if e.is_extra]
    assert sorted(e.label for e in added) == ["no", "no", "no", "yes", "yes"]
    assert all(Path(e.path).parent.name == e.label for e in added)
    for split in ("validation", "testing"):
        assert more.splits[split] == plain.splits[split]
    clips = load_split(more, "training", spec=features.FeatureSpec())
    assert len(clips) == len(plain.splits["training"]) + 5 and clips.extra.sum() == 5
    # a folder that is not a keyword is refused, naming it
    (extra / "bird").mkdir()
    sf.write(extra / "bird" / "v0.flac", rng.normal(0, 0.1, 16_000), 16_000)
    with pytest.raises(DataError, match=r"named after keywords \['yes', 'no'\], found \['bird'\]"):
        build_index(root, words=["yes", "no"], options=IndexOptions(extra_keywords=str(extra)))
    result = runner.invoke(
        app,
        ["train", str(root), "--words", "yes,no", "--extra-keywords", str(extra),
         "--out", str(tmp_path / "run")],
    )  # fmt: skip
    assert result.exit_code == 2 and "found ['bird']" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_random_channel_shapes_the_spectrum_within_its_ranges(rng: np.random.Generator) -> None:
    from kws.data.augment import CHANNEL_TILT_DB_PER_OCTAVE, random_channel

    n, sr, b = 16000, 16000, 200
    impulses = np.zeros((b, n), np.float32)
    impulses[:, 8000] = 1.0
    clips = impulses.copy()
    out = random_channel(clips, rng=np.random.default_rng(1), sample_rate_hz=sr, probability=1.0)
    assert np.array_equal(clips, impulses)  # input untouched
    assert out.shape == (b, n) and out.dtype == np.float32
    np.testing.assert_allclose(out.max(axis=1), 1.0, rtol=1e-5)  # the maximum is kept
    spectrum = np.abs(np.fft.rfft(out, axis=1))
    freq = np.fft.rfftfreq(n, 1 / sr)
    at = {f: spectrum[:, int(np.argmin(np.abs(freq - f)))] for f in (250, 1000, 7000)}
    rel_7k = 20 * np.log10(at[7000] / at[1000])
    rel_250 = 20 * np.log10(at[250] / at[1000])
    # tilt alone bounds the rise; the filters only cut (a low-pass at 1 kHz costs 1 kHz 3 dB)
    assert rel_7k.max() <= CHANNEL_TILT_DB_PER_OCTAVE * np.log2(7) + 3.1
    assert rel_250.max() <= CHANNEL_TILT_DB_PER_OCTAVE * 2 + 3.1
    assert (rel_7k < -20).mean() > 0.2  # low-passed microphones
    assert (rel_7k > 5).mean() > 0.1 and (rel_250 < -10).mean() > 0.05  # bright, thin ones
    # deterministic per generator; probability 0 and excluded rows are left as they are
    again = random_channel(clips, rng=np.random.default_rng(1), sample_rate_hz=sr, probability=1.0)
    assert np.array_equal(again, out)
    none = random_channel(clips, rng=rng, sample_rate_hz=sr, probability=0.0)
    assert np.array_equal(none, clips)
    rows = np.arange(b) % 2 == 0
    some = random_channel(clips, rng=rng, sample_rate_hz=sr, probability=1.0, rows=rows)
    assert np.array_equal(some[~rows], clips[~rows]) and not np.allclose(some[rows], clips[rows])
    # the documented formula on every row (the filters' terms are only computed on the rows
    # that have them), the same draws in the same order: here in float64, the augmentation
    # computes in float32
    draw = np.random.default_rng(1)
    chosen = draw.random(b) < 1.0
    tilt = draw.uniform(-CHANNEL_TILT_DB_PER_OCTAVE, CHANNEL_TILT_DB_PER_OCTAVE, b)
    low = np.exp(draw.uniform(np.log(1000), np.log(8000), b))
    low[draw.random(b) >= 0.5] = np.inf
    high = np.exp(draw.uniform(np.log(40), np.log(500), b))
    high[draw.random(b) >= 0.5] = 0.0
    size = scipy.fft.next_fast_len(n + sr // 10, real=True)
    f = np.fft.rfftfreq(size, 1 / sr)[None, :]
    gain = (
        tilt[:, None] * np.log2(np.clip(f, 50.0, None) / 1000.0)
        - 10 * np.log10(1 + (f / low[:, None]) ** 8)
        - 10 * np.log10(1 + (high[:, None] / np.clip(f, 1.0, None)) ** 4)
    )
    shaped = np.fft.irfft(np.fft.rfft(clips, n=size, axis=1) * 10 ** (gain / 20), n=size)[:, :n]
    expected = shaped * (clips.max(axis=1) / shaped.max(axis=1))[:, None]
    assert chosen.all()
    np.testing.assert_allclose(out, expected, rtol=0, atol=2e-6)
    with pytest.raises(DataError, match="channel"):
        AugmentConfig(channel=1.5)
    # through augment_clips: silence rows are noise, words get a channel
    config = AugmentConfig(channel=1.0, time_shift_ms=0, background_frequency=0)
    words = rng.normal(0, 0.1, (4, n)).astype(np.float32)
    mixed = augment_clips(
        words, silence=np.array([False, False, True, True]), noise=NoiseBank([], clip_samples=n),
        rng=rng, config=config, sample_rate_hz=sr,
    )  # fmt: skip
    assert not np.allclose(mixed[:2], words[:2]) and np.array_equal(mixed[2:], 0 * words[2:])


def schroeder_rt60(rir: np.ndarray, sr: int) -> float:
    """RT60 from the -5 to -35 dB span of the backward-integrated tail (ISO 3382 T30)."""
    energy = rir[1:] ** 2
    decay = 10 * np.log10(np.cumsum(energy[::-1])[::-1] / energy.sum() + 1e-300)
    return 2 * (np.argmax(decay < -35) - np.argmax(decay < -5)) / sr


def test_room_impulse_responses_have_the_asked_decay_and_direct_ratio(
    rng: np.random.Generator,
) -> None:
    from kws.data.augment import room_impulse_responses

    sr = 16000
    rt60 = np.array([0.1, 0.3, 0.8])
    drr = np.array([0.0, 6.0, 12.0])
    rir = room_impulse_responses(rt60, drr, rng=rng, sample_rate_hz=sr)
    assert rir.shape == (3, int(np.ceil(0.8 * sr)) + 1)
    assert np.all(rir[:, 0] == 1.0)  # the direct sound
    for row, t, d in zip(rir, rt60, drr, strict=True):
        assert schroeder_rt60(row, sr) == pytest.approx(t, rel=0.1)
        assert 10 * np.log10(1 / (row[1:] ** 2).sum()) == pytest.approx(d, abs=1e-9)
        assert not row[int(np.ceil(t * sr)) + 1 :].any()  # shorter rooms end in zeros


def test_random_reverb_convolves_each_word_with_its_room(rng: np.random.Generator) -> None:
    from kws.data.augment import random_reverb

    n, sr, b = 16000, 16000, 64
    impulses = np.zeros((b, n), np.float32)
    impulses[:, 4000] = 0.5
    out = random_reverb(impulses, rng=np.random.default_rng(3), sample_rate_hz=sr, probability=1)
    assert out.shape == (b, n) and out.dtype == np.float32 and not impulses[:, 4001:].any()
    np.testing.assert_allclose(out.max(axis=1), 0.5, rtol=1e-5)  # the maximum is kept
    assert np.abs(out[:, :3990]).max() < 1e-6  # causal: linear, not circular, convolution
    tails = out[:, 4000:] / out[:, 4000:4001]  # each row is now its room's impulse response
    rt60 = np.array([schroeder_rt60(np.r_[t, np.zeros(sr)], sr) for t in tails])
    assert rt60.min() > 0.08 and rt60.max() < 0.9 and rt60.std() > 0.1  # rooms differ
    direct = 10 * np.log10(1 / (tails[:, 1:] ** 2).sum(axis=1))
    assert direct.min() > -0.5 and direct.max() < 12.5 and direct.std() > 2
    # a clip convolved by hand with the same room gives the same result
    speech = rng.normal(0, 0.1, (1, n)).astype(np.float32)
    wet = random_reverb(speech, rng=np.random.default_rng(5), sample_rate_hz=sr, probability=1)
    room = random_reverb(
        np.eye(1, n, dtype=np.float32), rng=np.random.default_rng(5), sample_rate_hz=sr,
        probability=1,
    )[0]  # fmt: skip
    by_hand = np.convolve(speech[0].astype(np.float64), room.astype(np.float64))[:n]
    np.testing.assert_allclose(wet[0], by_hand * speech.max() / by_hand.max(), atol=2e-5)
    # deterministic; probability 0 and excluded rows untouched
    again = random_reverb(impulses, rng=np.random.default_rng(3), sample_rate_hz=sr, probability=1)
    assert np.array_equal(again, out)
    none = random_reverb(impulses, rng=rng, sample_rate_hz=sr, probability=0)
    assert np.array_equal(none, impulses)
    rows = np.arange(b) % 2 == 1
    some = random_reverb(impulses, rng=rng, sample_rate_hz=sr, probability=1, rows=rows)
    assert np.array_equal(some[~rows], impulses[~rows]) and some[rows, 4100:].any()
    with pytest.raises(DataError, match="reverb"):
        AugmentConfig(reverb=-0.1)


def test_cli_negatives_folder_is_seeded_resumable_and_trainable(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    """`kws data negatives`: training-split keywords cut up into numbered files per kind; a
    rerun (after Ctrl-C, or with a larger count) makes only what is missing and the same
    bytes; another recipe is refused; the folder works as --extra-unknown."""
    from conftest import make_word_dataset, write

    from kws.data.augment import keyword_negative
    from kws.data.negatives import make_negatives

    data = make_word_dataset(tmp_path / "words", rng)
    out, cache = tmp_path / "neg", tmp_path / "cache"
    words, kinds = ["yes", "no", "up"], "onset,reversed,splice"

    def negatives(count: int = 30, kinds: str = kinds, seed: int = 0) -> Any:
        return runner.invoke(app, [
            "data", "negatives", str(data), "--words", ",".join(words), "--out", str(out),
            "--count", str(count), "--kinds", kinds, "--seed", str(seed),
            "--cache-dir", str(cache),
        ])  # fmt: skip

    result = negatives()
    assert result.exit_code == 0, result.output
    assert "30 written, 0 already there" in result.output
    files = sorted(out.glob("*/*.wav"))
    assert len(files) == 30 and {f.parent.name for f in files} == {"onset", "reversed", "splice"}
    for f in files:
        _, *sources = f.stem.split("_")
        assert set(sources) <= set(words)
        assert len(sources) == (2 if f.parent.name == "splice" else 1)
        if len(sources) == 2:
            assert sources[0] != sources[1]  # a splice joins two different keywords
        audio, rate = sf.read(f)
        assert rate == 16_000 and audio.shape == (16_000,) and 0.99 < np.abs(audio).max() <= 1
    assert sorted(int(f.stem.split("_")[0]) for f in files) == list(range(30))
    manifest = json.loads((out / "negatives.json").read_text())
    index = build_index(data, words=words)
    training = load_split(index, "training", spec=features.preset("mlperf-tiny"))
    assert manifest["data_fingerprint"] == training.fingerprint  # the training split only
    assert manifest["clips"] == 30
    # each file, prepared as a decoded clip is (scaled to a maximum of 1), is clip n of
    # --negatives' generator seeded by (seed, n), to 16-bit rounding: nothing clipped
    keyword = training.labels >= 2
    for f in files:
        n = int(f.stem.split("_")[0])
        made = keyword_negative(
            training.clips[keyword], training.labels[keyword], rng=np.random.default_rng([0, n]),
            sample_rate_hz=16_000, normalize=True, kinds=tuple(kinds.split(",")),
        )  # fmt: skip
        audio = sf.read(f, dtype="float32")[0]
        assert f.parent.name == made.kind
        np.testing.assert_allclose(audio / audio.max(), made.clip, atol=3e-4)
    before = {f.name: f.read_bytes() for f in files}

    # interrupted after 10 clips: those 10 are whole files, nothing half-written is left
    for f in files:
        f.unlink()

    def stop(done: int, total: int) -> None:
        if done == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make_negatives(
            data, words=words, out=out, count=30, kinds=kinds.split(","), cache_dir=cache,
            progress=stop,
        )  # fmt: skip
    assert len(list(out.glob("*/*.wav"))) == 10
    assert {p.name for p in out.rglob("*") if p.is_file()} <= set(before) | {"negatives.json"}
    # the rerun finishes with the same bytes, and a larger count adds to the folder
    result = negatives(count=40)
    assert result.exit_code == 0, result.output
    assert "30 written, 10 already there" in result.output
    after = {f.name: f.read_bytes() for f in out.glob("*/*.wav")}
    assert len(after) == 40 and all(after[name] == b for name, b in before.items())

    # another recipe is refused in one line, and nothing is added
    for refused, why in (
        (negatives(seed=1), "made with other settings (seed)"),
        (negatives(kinds="onset"), "made with other settings (kinds)"),
        (negatives(kinds="onset,mumble"), "--kinds must be"),
        (negatives(seed=-1), "--seed must be >= 0"),
    ):
        assert refused.exit_code == 2 and why in refused.output
        assert len(refused.output.strip().splitlines()) == 1, refused.output
    assert len(list(out.glob("*/*.wav"))) == 40

    # a folder of other files, or one whose manifest is damaged, is refused and left alone
    other = tmp_path / "other"
    write(other / "mine.wav", np.zeros(160))
    refused = runner.invoke(app, ["data", "negatives", str(data), "--words", "yes,no,up",
                                  "--out", str(other), "--cache-dir", str(cache)])  # fmt: skip
    assert refused.exit_code == 2 and "not a kws negatives folder" in refused.output
    assert [p.name for p in other.rglob("*")] == ["mine.wav"]
    (out / "negatives.json").write_text("{not json")
    refused = negatives(count=40)
    assert refused.exit_code == 2 and "negatives.json: unreadable" in refused.output
    assert len(refused.output.strip().splitlines()) == 1, refused.output
    assert len(list(out.glob("*/*.wav"))) == 40

    # as --extra-unknown: 40 more _unknown_ training clips, validation and testing unchanged
    options = IndexOptions(extra_unknown=str(out))
    extra = build_index(data, words=words, options=options)
    assert len(extra.splits["training"]) == len(index.splits["training"]) + 40
    assert extra.splits["validation"] == index.splits["validation"]


def test_negatives_folder_with_borrowed_consonants(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    """`kws data negatives --kinds onset-borrow,coda-borrow`: each file is named by the keyword
    and the other word that lent its consonant (the training split's cat and dog clips)."""
    from conftest import make_word_dataset

    from kws.data.negatives import make_negatives

    data = make_word_dataset(tmp_path / "words", rng)
    report = make_negatives(
        data, words=["yes", "no", "up"], out=tmp_path / "neg", count=12,
        kinds=["onset-borrow", "coda-borrow"], cache_dir=tmp_path / "cache",
    )  # fmt: skip
    files = sorted((tmp_path / "neg").glob("*/*.wav"))
    assert report.written == 12 and len(files) == 12
    for f in files:
        _, host, lender = f.stem.split("_")
        assert f.parent.name in ("onset-borrow", "coda-borrow", "onset-swap", "coda-swap")
        assert host in ("yes", "no", "up")
        assert lender in (("cat", "dog") if "borrow" in f.parent.name else ("yes", "no", "up"))
    assert any("borrow" in f.parent.name for f in files)


def test_batches_yield_targets_and_repeat_by_label(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    """``targets``: each clip's training class instead of its label (here cat and dog apart);
    which clips are repeated still follows the labels, and a generated negative is
    _unknown_."""
    root = make_dataset(tmp_path / "d", rng, per_word=20)
    index = build_index(root, words=["yes", "no"], options=IndexOptions(unknown_percentage=50))
    train = load_split(index, "training", spec=SPEC)
    targets = train.labels.copy()
    targets[train.words == "cat"], targets[train.words == "dog"] = 4, 5
    assert (targets == 4).any() and (targets == 5).any()
    config = AugmentConfig(unknown_repeat=3, negatives=0.5)
    batches = TrainingBatches(
        train, noise=load_noise(index, spec=SPEC), spec=SPEC, config=config, batch_size=16,
        seed=7, targets=targets,
    )  # fmt: skip
    y = np.concatenate([y for _, y in batches.epoch(0)])
    for cls in (0, 2, 3, 4, 5):
        assert (y == cls).sum() == (targets == cls).sum() * (3 if cls >= 4 else 1), cls
    unknown_rows = (train.labels == 1) & ~np.isin(train.words, ["cat", "dog"])
    assert (y == 1).sum() > 3 * unknown_rows.sum()  # the generated negatives
    with pytest.raises(ValueError, match="one class per clip"):
        TrainingBatches(
            train, noise=load_noise(index, spec=SPEC), spec=SPEC, config=config, batch_size=16,
            seed=7, targets=targets[1:],
        )  # fmt: skip

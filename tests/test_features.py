"""The MFCC front end: spec validation, references (TensorFlow tf.signal, librosa), theory,
streaming against batch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import features
from features import ClipNorm, FeatureSpec, ParameterError, StreamingMfcc
from features.frontend import hz_to_mel

SPEC = features.preset("mlperf-tiny")
SUBSET = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech_commands_subset"


def speechlike(rng: np.random.Generator, n: int) -> np.ndarray:
    """int16-valued float32 samples: a voiced burst in noise, with a DC offset."""
    t = np.arange(n) / 16_000
    f0 = rng.uniform(90, 250)
    voice = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) / k for k in range(1, 12))
    env = np.exp(-(((t - t.mean()) / (0.15 * t.max() + 1e-3)) ** 2))
    x = 6000 * voice * env + rng.normal(0, 60, n) + rng.uniform(-300, 300)
    return np.clip(np.round(x), -32768, 32767).astype(np.float32)


# ---------------------------------------------------------------- FeatureSpec
def test_presets_have_the_documented_shapes() -> None:
    assert features.preset("mlperf-tiny").shape == (49, 10)
    assert features.preset("tf-speech-commands").shape == (98, 40)
    assert SPEC.frame_samples == 480 and SPEC.stride_samples == 320 and SPEC.fft_size == 512
    with pytest.raises(ParameterError, match="unknown preset 'nope'; choose one of: mlperf-tiny"):
        features.preset("nope")


def test_spec_json_round_trip_hash_and_digest(tmp_path: Path) -> None:
    spec = FeatureSpec(stride_ms=10.0, num_coefficients=13)
    again = FeatureSpec.from_json(spec.to_json())
    assert again == spec and hash(again) == hash(spec) and again.digest() == spec.digest()
    assert spec.digest() != SPEC.digest()
    assert json.loads(spec.to_json())["window"] == "hann"
    path = tmp_path / "spec.json"
    path.write_text(spec.to_json())
    assert FeatureSpec.load(path) == spec
    assert FeatureSpec(window="hann") == FeatureSpec()  # strings are accepted and normalised


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frame_ms": 30.03}, r"frame of 30.03 ms is 480.48 samples"),
        ({"stride_ms": 40.0}, r"stride \(640 samples\) is longer than the frame"),
        ({"fft_size": 256}, r"fft_size 256 must be an integer >= the frame length \(480\)"),
        ({"mel_high_hz": 9000.0}, r"<= 8000 Hz \(Nyquist\)"),
        ({"num_coefficients": 41}, r"between 1 and mel_bands \(40\)"),
        ({"log_offset": 0.0}, "log_offset must be a positive number"),
        ({"window": "kaiser"}, "window 'kaiser' is not one of: hann, hamming"),
        ({"sample_rate_hz": 0}, "sample rate must be a positive integer"),
        ({"clip_ms": 20.0}, r"frame \(480 samples\) is longer than the clip \(320 samples\)"),
    ],
)
def test_invalid_specs_raise(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        FeatureSpec(**kwargs)  # type: ignore[arg-type]


def test_bad_json_raises(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="unknown feature spec field"):
        FeatureSpec.from_json('{"mel_bins": 40}')
    with pytest.raises(ParameterError, match="not valid JSON"):
        FeatureSpec.from_json("{")
    with pytest.raises(ParameterError, match=r"missing\.json: cannot read feature spec"):
        FeatureSpec.load(tmp_path / "missing.json")


def test_stages_import_without_tensorflow() -> None:
    code = "import sys, align, features; assert 'tensorflow' not in sys.modules, 'tf imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- theory and shapes
def test_pure_tone_peaks_in_its_mel_band() -> None:
    t = np.arange(16_000) / 16_000
    centers_hz = 700 * np.expm1(np.linspace(hz_to_mel(20), hz_to_mel(4000), 42)[1:-1] / 1127)
    for band in (5, 17, 30):
        tone = 0.5 * np.sin(2 * np.pi * centers_hz[band] * t)
        logmel = features.log_mel(tone, spec=SPEC)
        assert logmel.shape == (49, 40)
        assert np.all(np.argmax(logmel, axis=1) == band)


def test_batch_equals_per_clip_and_shapes(rng: np.random.Generator) -> None:
    clips = np.stack([speechlike(rng, 16_000) / 32768 for _ in range(70)])  # > one chunk
    batch = features.mfcc(clips, spec=SPEC)
    assert batch.shape == (70, 49, 10) and batch.dtype == np.float32
    for i in (0, 37, 69):
        np.testing.assert_allclose(batch[i], features.mfcc(clips[i], spec=SPEC), atol=1e-6)


def test_clip_preparation_divides_by_max_before_padding(rng: np.random.Generator) -> None:
    negative = -np.abs(rng.normal(0.1, 0.05, 8000)).astype(np.float32) - 0.01
    prepared = features.prepare_clips(negative, spec=SPEC)[0]
    assert prepared.shape == (16_000,)
    np.testing.assert_allclose(prepared[:8000], negative / negative.max())  # positive values
    assert not prepared[8000:].any()
    assert np.isfinite(features.mfcc(np.zeros(16_000), spec=SPEC)).all()  # max 0: unscaled
    long = rng.normal(0, 0.1, 20_000)
    assert features.prepare_clips(long, spec=SPEC).shape == (1, 16_000)
    with pytest.raises(ParameterError, match="float in"):
        features.mfcc(np.zeros(16_000, dtype=np.int16), spec=SPEC)


def test_named_steps_compose_to_mfcc(rng: np.random.Generator) -> None:
    x = speechlike(rng, 16_000) / 32768
    clip = features.prepare_clips(x, spec=SPEC)
    frames = features.frame(clip, spec=SPEC)
    assert frames.shape == (1, 49, 480)
    steps = features.dct(
        features.log(
            features.mel(
                features.spectrum(features.apply_window(frames, spec=SPEC), spec=SPEC), spec=SPEC
            ),
            spec=SPEC,
        ),
        spec=SPEC,
    )
    np.testing.assert_allclose(steps[0], features.mfcc(x, spec=SPEC), atol=1e-5)
    with pytest.raises(ParameterError, match="fewer than one frame"):
        features.frame(np.zeros(100), spec=SPEC)


# ---------------------------------------------------------------- streaming
@pytest.mark.parametrize("chunk", [1, 160, 320, 1000, 16_000])
def test_streaming_equals_batch_for_any_chunking(rng: np.random.Generator, chunk: int) -> None:
    seconds = 1 if chunk == 1 else 3
    stream = (speechlike(rng, seconds * 16_000 + 123) / 32768).astype(np.float32)
    expected = features.mfcc_frames(stream, spec=SPEC)
    front = StreamingMfcc(SPEC)
    got = np.concatenate(
        [front.update(stream[i : i + chunk]) for i in range(0, stream.size, chunk)]
    )
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert front.pending_samples < SPEC.frame_samples
    front.reset()
    assert front.frames_emitted == 0 and front.pending_samples == 0
    np.testing.assert_allclose(front.update(stream), expected, atol=1e-5)


def test_streaming_windows_reproduce_max_normalised_clips(rng: np.random.Generator) -> None:
    stream = (speechlike(rng, 3 * 16_000) / 32768).astype(np.float32)
    front = StreamingMfcc(SPEC)
    mels = np.concatenate(
        [front.update_mel(stream[i : i + 777]) for i in range(0, stream.size, 777)]
    )
    frames, stride = SPEC.num_frames, SPEC.stride_samples
    for first in (0, 13, mels.shape[0] - frames):
        clip = stream[first * stride : first * stride + SPEC.clip_samples]
        windowed = features.mfcc_from_mel(
            mels[first : first + frames], spec=SPEC, gain=1 / clip.max()
        )
        np.testing.assert_allclose(windowed, features.mfcc(clip, spec=SPEC), atol=1e-4)


def test_streaming_rejects_bad_chunks() -> None:
    with pytest.raises(ParameterError, match=r"shape \(n,\)"):
        StreamingMfcc(SPEC).update(np.zeros((2, 2), np.float32))


# ---------------------------------------------------------------- librosa
def test_window_and_stft_magnitudes_match_librosa(rng: np.random.Generator) -> None:
    librosa = pytest.importorskip("librosa")
    np.testing.assert_array_equal(
        features.window(SPEC),
        librosa.filters.get_window("hann", 480, fftbins=True).astype(np.float32),
    )
    x = speechlike(rng, 16_000) / 32768
    ours = features.spectrum(
        features.apply_window(features.frame(x, spec=SPEC), spec=SPEC), spec=SPEC
    )[0]
    # librosa centres a 480-sample window inside each 512-sample frame; 16 leading zeros put
    # the same samples under the window (only the phase differs, not the magnitude).
    S = np.abs(
        librosa.stft(
            np.pad(x, (16, 0)),
            n_fft=512,
            hop_length=320,
            win_length=480,
            window="hann",
            center=False,
        )
    ).T
    assert S.shape == ours.shape == (49, 257)
    np.testing.assert_allclose(ours, S, atol=2e-4 * S.max())


def test_dct_matches_librosa_ortho_except_c0(rng: np.random.Generator) -> None:
    librosa = pytest.importorskip("librosa")
    logmel = rng.normal(-5, 2, (49, 40)).astype(np.float32)
    ours = features.dct(logmel, spec=SPEC)
    ortho = librosa.feature.mfcc(S=logmel.T, n_mfcc=10, dct_type=2, norm="ortho").T
    np.testing.assert_allclose(ours[:, 1:], ortho[:, 1:], atol=1e-4)
    np.testing.assert_allclose(ours[:, 0], np.sqrt(2) * ortho[:, 0], atol=1e-4)


def test_mel_matrix_differs_from_librosa_only_in_triangle_shape() -> None:
    librosa = pytest.importorskip("librosa")
    ours = features.mel_matrix(SPEC)
    theirs = librosa.filters.mel(
        sr=16_000, n_fft=512, n_mels=40, fmin=20, fmax=4000, htk=True, norm=None
    ).T
    assert np.array_equal(ours.argmax(axis=0), theirs.argmax(axis=0))  # same band centres
    assert np.abs(ours - theirs).max() < 0.01  # mel-domain vs Hz-domain triangles


# ---------------------------------------------------------------- TensorFlow reference
def tf_reference(
    tf, decoded: np.ndarray, spec: FeatureSpec, dtype: str
) -> tuple[np.ndarray, np.ndarray]:
    """The MLPerf Tiny keyword-spotting front end (get_dataset.py), in tf.signal.

    The clip is scaled in float32 as the reference does; ``dtype`` is the precision of the
    spectral part (float32 as in the reference, float64 to see the reference's own rounding).
    """
    w = tf.cast(decoded, tf.float32)
    # MLPerf Tiny divides the int16 values by their max; speech_commands decodes to [-1, 1].
    w = w / tf.reduce_max(w) if spec.clip_norm is ClipNorm.MAX else w / 32768
    dtype = tf.as_dtype(dtype)
    w = tf.cast(w, dtype)
    w = tf.pad(w, [[0, spec.clip_samples - tf.shape(w)[-1]]])
    stft = tf.signal.stft(
        w, frame_length=spec.frame_samples, frame_step=spec.stride_samples, fft_length=spec.fft_size
    )
    spectrogram = tf.abs(stft)
    weights = tf.signal.linear_to_mel_weight_matrix(
        spec.mel_bands,
        stft.shape[-1],
        spec.sample_rate_hz,
        spec.mel_low_hz,
        spec.mel_high_hz,
        dtype=dtype,
    )
    log_mel = tf.math.log(tf.tensordot(spectrogram, weights, 1) + spec.log_offset)
    mfccs = tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., : spec.num_coefficients]
    return log_mel.numpy(), mfccs.numpy()


def reference_clips(rng: np.random.Generator) -> list[np.ndarray]:
    clips = [speechlike(rng, int(n)) for n in rng.integers(6000, 16_001, 12)]
    clips.append(-np.abs(speechlike(rng, 12_000)) - 1)  # every sample negative
    if SUBSET.is_dir():
        for word in ("yes", "no", "up", "stop", "left"):
            for path in sorted((SUBSET / word).glob("*.flac"))[:20]:
                clips.append(sf.read(path, dtype="int16")[0].astype(np.float32))
    return clips


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlperf-tiny", "tf-speech-commands"])
def test_matches_tensorflow_reference(rng: np.random.Generator, name: str) -> None:
    tf = pytest.importorskip("tensorflow")
    spec = features.preset(name)
    for decoded in reference_clips(rng):  # int16 values, as the reference decodes them
        audio = decoded / 32768
        ours_log_mel = features.log_mel(audio, spec=spec)
        ours_mfcc = features.mfcc(audio, spec=spec)
        ref_log_mel, ref_mfcc = tf_reference(tf, decoded, spec, "float64")
        assert np.abs(ours_log_mel - ref_log_mel).max() <= 1e-4
        assert np.abs(ours_mfcc - ref_mfcc).max() <= 1e-3
        # TensorFlow's float32 pipeline rounds its FFT in float32: the lowest mel band of
        # clips with a DC offset moves by up to a few 1e-4 (see features.spectrum).
        ref32_log_mel, ref32_mfcc = tf_reference(tf, decoded, spec, "float32")
        assert np.abs(ours_log_mel - ref32_log_mel).max() <= 1e-3
        assert np.abs(ours_mfcc - ref32_mfcc).max() <= 1e-3


@pytest.mark.slow
def test_mel_and_dct_matrices_match_tensorflow(rng: np.random.Generator) -> None:
    tf = pytest.importorskip("tensorflow")
    for spec in features.PRESETS.values():
        theirs = tf.signal.linear_to_mel_weight_matrix(
            spec.mel_bands,
            spec.num_fft_bins,
            spec.sample_rate_hz,
            spec.mel_low_hz,
            spec.mel_high_hz,
            dtype=tf.float64,
        ).numpy()
        np.testing.assert_allclose(features.mel_matrix(spec), theirs, atol=1e-6)
        logmel = rng.normal(-4, 3, (7, spec.mel_bands))
        expected = tf.signal.mfccs_from_log_mel_spectrograms(logmel)[..., : spec.num_coefficients]
        np.testing.assert_allclose(
            features.dct(logmel.astype(np.float32), spec=spec), expected.numpy(), atol=1e-4
        )


# ---------------------------------------------------------------- plot
def test_plot_to_a_folder_or_interrupted_leaves_no_partial(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matplotlib.figure import Figure

    from features.plot import plot_features

    clip = speechlike(rng, 16_000)
    (tmp_path / "rdir").mkdir()
    with pytest.raises(
        ParameterError, match="rdir: --plot needs a file name, but this is a folder"
    ):
        plot_features(clip, spec=SPEC, out=tmp_path / "rdir")
    failures: list[BaseException] = [KeyboardInterrupt(), OSError(28, "No space left on device")]

    def savefig(self: Figure, fname: Path, **kwargs: object) -> None:
        Path(fname).write_bytes(b"\x89PNG half")  # as if stopped mid-write
        raise failures.pop(0)

    monkeypatch.setattr(Figure, "savefig", savefig)
    with pytest.raises(KeyboardInterrupt):
        plot_features(clip, spec=SPEC, out=tmp_path / "f.png")
    with pytest.raises(ParameterError, match=r"f\.png: cannot write the plot \(No space left"):
        plot_features(clip, spec=SPEC, out=tmp_path / "f.png")
    assert [p.name for p in tmp_path.iterdir()] == ["rdir"]
    monkeypatch.undo()
    plot_features(clip, spec=SPEC, out=tmp_path / "new" / "f.png")
    assert (tmp_path / "new" / "f.png").read_bytes()[:4] == b"\x89PNG"

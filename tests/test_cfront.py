"""The generated C front end (kws.export.cfront) against the Python one, built for the host."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import features
from kws.export import cfront

CC = shutil.which("cc")
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler (cc) on PATH")

INT16_MAX = 32767
INT16_MIN = -32768
# The int8 input quantisation of a model on the mlperf-tiny spec: min..max of the features of
# 300 Speech Commands clips (-123.6..25.6) over 255 steps.
REAL_SCALE = 0.585
REAL_ZERO_POINT = 83
MIN_IDENTICAL = 0.999
MAX_LSB = 1

OTHER_SPECS = {
    # every other option at once, and sizes unlike the default
    "hamming-power-none": features.FeatureSpec(
        frame_ms=25.0,
        stride_ms=10.0,
        window=features.Window.HAMMING,
        fft_size=1024,
        spectrum=features.Spectrum.POWER,
        mel_bands=32,
        mel_low_hz=60.0,
        mel_high_hz=7600.0,
        num_coefficients=13,
        clip_norm=features.ClipNorm.NONE,
    ),
    # 8 kHz, the top band reaches Nyquist, all 40 coefficients
    "8k-nyquist": features.FeatureSpec(
        sample_rate_hz=8000,
        frame_ms=30.0,
        stride_ms=15.0,
        fft_size=256,
        mel_high_hz=4000.0,
        num_coefficients=40,
    ),
}


def make_clips(rng: np.random.Generator, spec: features.FeatureSpec) -> np.ndarray:
    """int16 clips (11, clip_samples): tones, noise, speech-like bursts, DC offset, silence,
    all-negative samples, full scale."""
    n = spec.clip_samples
    t = np.arange(n) / spec.sample_rate_hz
    envelope = np.exp(-(((t - 0.5) / 0.15) ** 2))
    formants = sum(np.sin(2 * np.pi * f * t) / (k + 1) for k, f in enumerate((220, 700, 1200)))
    burst = np.zeros(n)
    burst[n // 4 : n // 4 + n // 5] = rng.normal(0.0, 0.3, n // 5)
    clips = [
        0.5 * np.sin(2 * np.pi * 440.0 * t),  # tone
        0.05 * np.sin(2 * np.pi * 3000.0 * t) + 0.3 * np.sin(2 * np.pi * 97.0 * t),
        rng.normal(0.0, 0.1, n),  # white noise
        0.3 * envelope * formants + rng.normal(0.0, 0.003, n),  # a vowel-like word
        burst + rng.normal(0.0, 0.001, n),  # a noise burst in near silence
        0.2 + 0.01 * rng.normal(0.0, 1.0, n),  # DC offset, low noise
        np.zeros(n),  # silence
        -0.1 - 0.05 * np.abs(rng.normal(0.0, 1.0, n)),  # every sample negative
        np.where(np.sin(2 * np.pi * 50.0 * t) >= 0, 1.0, -1.0),  # full-scale square wave
        np.sin(2 * np.pi * 1000.0 * t),  # full-scale tone
        rng.uniform(-1.0, 1.0, n),  # full-scale noise
    ]
    return np.clip(np.round(np.asarray(clips) * INT16_MAX), INT16_MIN, INT16_MAX).astype(np.int16)


@pytest.fixture
def clips(rng: np.random.Generator) -> np.ndarray:
    return make_clips(rng, features.FeatureSpec())


@pytest.fixture(scope="module")
def default_exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if CC is None:
        pytest.skip("no C compiler (cc) on PATH")
    out = tmp_path_factory.mktemp("cfront_default")
    cfront.write_front_end(
        out, features.FeatureSpec(), input_scale=REAL_SCALE, input_zero_point=REAL_ZERO_POINT
    )
    return cfront.build_front_end_host(out)


def quantisation_of(x: np.ndarray) -> tuple[float, int]:
    """Scale and zero point that map x's range onto int8, as calibration would."""
    lo, hi = float(x.min()), float(x.max())
    scale = (hi - lo) / 255
    return scale, round(-128 - lo / scale)


@needs_cc
def test_default_spec_matches_python(default_exe: Path, clips: np.ndarray) -> None:
    parity = cfront.front_end_parity(
        default_exe,
        clips,
        features.FeatureSpec(),
        input_scale=REAL_SCALE,
        input_zero_point=REAL_ZERO_POINT,
    )
    assert parity.total == len(clips) * 49 * 10
    assert parity.identical_share >= MIN_IDENTICAL
    assert parity.max_abs_diff_lsb <= MAX_LSB


@needs_cc
@pytest.mark.parametrize("name", sorted(OTHER_SPECS))
def test_other_specs_match_python(name: str, rng: np.random.Generator, tmp_path: Path) -> None:
    spec = OTHER_SPECS[name]
    x = make_clips(rng, spec)
    scale, zero_point = quantisation_of(features.mfcc(x.astype(np.float32) / 32768, spec=spec))
    cfront.write_front_end(tmp_path, spec, input_scale=scale, input_zero_point=zero_point)
    exe = cfront.build_front_end_host(tmp_path)
    parity = cfront.front_end_parity(exe, x, spec, input_scale=scale, input_zero_point=zero_point)
    assert parity.total == len(x) * spec.num_frames * spec.num_coefficients
    assert parity.identical_share >= MIN_IDENTICAL
    assert parity.max_abs_diff_lsb <= MAX_LSB


@needs_cc
def test_frame_filling_the_fft_matches_python_on_dithered_clips(
    rng: np.random.Generator, tmp_path: Path
) -> None:
    """A frame as long as the FFT: matches once the clips carry ±1 LSB of noise.

    Without it, a tone on an FFT bin whose int16 rounding error repeats with the tone leaves
    every other bin exactly 0 in float64; a float32 FFT leaves ~1e-7 of the frame's energy
    there, above the 1e-6 log offset of a max-normalised clip, and the empty bands' log
    energies differ. Recorded audio never has a spectrum that clean.
    """
    spec = features.FeatureSpec(
        sample_rate_hz=8000, frame_ms=32.0, stride_ms=16.0, fft_size=256, mel_high_hz=4000.0
    )
    dither = rng.integers(-1, 2, (11, spec.clip_samples))
    x = np.clip(make_clips(rng, spec) + dither, INT16_MIN, INT16_MAX).astype(np.int16)
    scale, zero_point = quantisation_of(features.mfcc(x.astype(np.float32) / 32768, spec=spec))
    cfront.write_front_end(tmp_path, spec, input_scale=scale, input_zero_point=zero_point)
    exe = cfront.build_front_end_host(tmp_path)
    parity = cfront.front_end_parity(exe, x, spec, input_scale=scale, input_zero_point=zero_point)
    assert parity.identical_share >= MIN_IDENTICAL
    assert parity.max_abs_diff_lsb <= MAX_LSB


@needs_cc
def test_fine_scale_still_matches(clips: np.ndarray, tmp_path: Path) -> None:
    """With 50 times finer int8 steps, disagreements stay rare and 1 LSB: the C features
    agree with Python's far below the real quantisation step."""
    spec = features.FeatureSpec()
    scale, zero_point = REAL_SCALE / 50, 0
    cfront.write_front_end(tmp_path, spec, input_scale=scale, input_zero_point=zero_point)
    exe = cfront.build_front_end_host(tmp_path)
    got = cfront.run_front_end_host(exe, clips, spec).astype(int)
    want = cfront.reference_features(
        clips, spec, input_scale=scale, input_zero_point=zero_point
    ).astype(int)
    unsaturated = (want > -128) & (want < 127)
    assert unsaturated.sum() > 500
    diff = np.abs(got - want)[unsaturated]
    assert diff.max() <= MAX_LSB
    assert (diff == 0).mean() >= 0.995


@needs_cc
def test_output_does_not_depend_on_the_other_clips(default_exe: Path, clips: np.ndarray) -> None:
    """The scratch buffer carries nothing from one call to the next."""
    spec = features.FeatureSpec()
    forward = cfront.run_front_end_host(default_exe, clips, spec)
    backward = cfront.run_front_end_host(default_exe, clips[::-1], spec)[::-1]
    np.testing.assert_array_equal(forward, backward)


@needs_cc
def test_log_matches_numpy(default_exe: Path, rng: np.random.Generator) -> None:
    tiny = np.float32(np.finfo(np.float32).tiny)
    one = np.float32(1.0)
    x = np.concatenate(
        [
            np.geomspace(1e-6, 1e4, 20_000),  # what the front end feeds it: mel + 1e-6
            np.geomspace(tiny, np.finfo(np.float32).max, 20_000, dtype=np.float64),
            rng.integers(0x00800000, 0x7F800000, 20_000).astype(np.uint32).view(np.float32),
            np.nextafter(one, np.float32(2)) + np.arange(200, dtype=np.float32) * 1e-7,
            one - np.arange(1, 201, dtype=np.float32) * np.float32(6e-8),
            np.array([1e-40, 1e-45, 3e-39], dtype=np.float32),  # subnormals
        ]
    ).astype(np.float32)
    got = cfront.host_log(default_exe, x).astype(np.float64)
    want = np.log(x.astype(np.float64))
    ulps = np.abs(got - want) / np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    assert ulps.max() <= 1.0
    np.testing.assert_allclose(got, want, rtol=2e-7, atol=0)
    special = cfront.host_log(default_exe, np.array([0.0, -0.0, -1.0, np.inf, np.nan, 1.0]))
    assert special[0] == special[1] == -np.inf
    assert np.isnan(special[2]) and np.isnan(special[4])
    assert special[3] == np.inf and special[5] == 0.0


@needs_cc
def test_object_calls_no_library_and_has_no_mutable_state(
    default_exe: Path, tmp_path: Path
) -> None:
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("no nm on PATH")
    obj = tmp_path / "kws_features.o"
    source = default_exe.parent / cfront.SOURCE
    subprocess.run([CC, "-O2", "-std=c99", "-c", str(source), "-o", str(obj)], check=True)
    symbols = subprocess.run([nm, str(obj)], capture_output=True, text=True, check=True).stdout
    kinds = {line.split()[-2] for line in symbols.splitlines()}
    assert "U" not in kinds  # no undefined symbol: no libm, no libc
    assert not kinds & {"b", "B", "d", "D"}  # no writable data


def test_header_states_the_api_and_sizes(tmp_path: Path) -> None:
    spec = features.FeatureSpec()
    header, source = cfront.write_front_end(
        tmp_path, spec, input_scale=REAL_SCALE, input_zero_point=REAL_ZERO_POINT
    )
    text = header.read_text()
    assert "#define KWS_CLIP_SAMPLES 16000" in text
    assert "#define KWS_NUM_FRAMES 49" in text
    assert "#define KWS_NUM_COEFFICIENTS 10" in text
    # one FFT buffer (fft_size + 2 floats) and one frame's mel energies
    assert f"#define KWS_FEATURES_SCRATCH_BYTES {4 * (512 + 2 + 40)}" in text
    assert "void kws_features(const int16_t *audio, int8_t *features, void *scratch);" in text
    assert "math.h" not in source.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == [cfront.SOURCE, cfront.HEADER]


@pytest.mark.parametrize(("fft_size", "suggested"), [(500, 512), (768, 1024)])
def test_fft_size_must_be_a_power_of_two(fft_size: int, suggested: int, tmp_path: Path) -> None:
    spec = features.FeatureSpec(fft_size=fft_size)
    with pytest.raises(
        ValueError, match=rf"fft_size {fft_size} is not a power of two.*{suggested}"
    ):
        cfront.write_front_end(tmp_path, spec, input_scale=1.0, input_zero_point=0)
    assert not list(tmp_path.iterdir())


def test_quantisation_is_checked(tmp_path: Path) -> None:
    spec = features.FeatureSpec()
    with pytest.raises(ValueError, match="input_zero_point must be an int8"):
        cfront.write_front_end(tmp_path, spec, input_scale=1.0, input_zero_point=200)
    with pytest.raises(ValueError, match="input_scale must be a positive"):
        cfront.write_front_end(tmp_path, spec, input_scale=0.0, input_zero_point=0)


def test_missing_compiler_is_reported(tmp_path: Path) -> None:
    cfront.write_front_end(tmp_path, features.FeatureSpec(), input_scale=1.0, input_zero_point=0)
    with pytest.raises(cfront.FrontEndBuildError, match="not found"):
        cfront.build_front_end_host(tmp_path, cc="no-such-compiler-kws")
